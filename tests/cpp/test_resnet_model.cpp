// layerbraid::resnet::Network under mpiexec (run with 1, 2, 3 and 4 ranks):
//   - init_parameters gives every rank the slice of the one-rank (MPI_COMM_SELF) values;
//   - the gradient of the whole network (opening, every residual layer, classifier) agrees
//     with central finite differences of the loss (dense/tanh and conv/smoothrelu, double):
//     in every coordinate on one rank, in a sample of them on more;
//   - loss, accuracy, gradients and predictions equal the one-rank network's bit for bit, for
//     serial propagation and for MGRIT with a fixed number of iterations (warm-started, two
//     training steps); converged MGRIT equals serial to 1e-8; float agrees with double;
//   - with the regularisers on (Tikhonov, classifier, smoothness), the objective's extra value
//     equals the formulas evaluated here on the gathered parameters, and the FD and rank
//     checks above hold for it too;
//   - bad arguments make every rank throw std::invalid_argument naming the bad value, and the
//     network still works afterwards.
// Gradients are gathered into one vector in the order opening, layers 0 .. N-1, classifier.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "layerbraid/resnet_model.hpp"
#include "test_support.hpp"

namespace {

using lbtest::check;
using lbtest::expect_throw;
namespace rn = layerbraid::resnet;

struct Problem {
  const char* name;
  rn::Layer layer;
  rn::Activation act;
  int depth;
  std::int64_t in_features, classes, batch;
  rn::Regularization reg = {};
};

std::int64_t features(const Problem& p) {
  return std::visit([](const auto& l) { return l.features(); }, p.layer);
}

template <class T>
rn::Network<T> make_network(const Problem& p, MPI_Comm comm, const rn::SolverOptions& o = {}) {
  rn::Network<T> net(rn::DenseOpening(p.in_features, features(p)), p.layer, p.act, p.depth,
                     1.5, rn::Classifier(features(p), p.classes), comm, o);
  net.set_regularization(p.reg);
  return net;
}

struct Data {
  std::vector<double> x;
  std::vector<std::int64_t> labels;
};

Data make_data(const Problem& p, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Data d;
  d.x = lbtest::random_vec(rng, std::size_t(p.batch * p.in_features), 1.0);
  for (std::int64_t i = 0; i < p.batch; ++i) d.labels.push_back(std::int64_t(rng() % p.classes));
  return d;
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// Where each of the five parts() of this rank's parameters starts in the gathered vector.
template <class T>
std::vector<std::size_t> offsets(const rn::Network<T>& net, const rn::NetworkParameters<T>& p,
                                 int depth) {
  const std::size_t ow = net.opening().weight_size(), ob = net.opening().bias_size();
  const std::size_t per = p.layers.weight_size() + p.layers.bias_size();
  const std::size_t layers = ow + ob, cls = layers + per * std::size_t(depth);
  return {0, ow, layers + per * std::size_t(p.layers.layers().first), cls,
          cls + net.classifier().weight_size()};
}

template <class T>
std::size_t total_size(const rn::Network<T>& net, const rn::NetworkParameters<T>& p, int depth) {
  return offsets(net, p, depth)[4] + net.classifier().bias_size();
}

// All ranks' values in one vector, on every rank (a sum with zeros elsewhere: exact).
template <class T>
std::vector<double> gather(const rn::Network<T>& net, const rn::NetworkParameters<T>& p,
                           int depth, MPI_Comm comm) {
  std::vector<double> mine(total_size(net, p, depth), 0.0), all(mine.size());
  const auto off = offsets(net, p, depth);
  const auto parts = p.parts();
  for (std::size_t k = 0; k < parts.size(); ++k)
    for (std::size_t i = 0; i < parts[k].size(); ++i) mine[off[k] + i] = double(parts[k][i]);
  MPI_Allreduce(mine.data(), all.data(), int(mine.size()), MPI_DOUBLE, MPI_SUM, comm);
  return all;
}

// Adds delta to the gathered coordinate g where this rank holds it.
template <class T>
void perturb(const rn::Network<T>& net, rn::NetworkParameters<T>& p, int depth, std::size_t g,
             double delta) {
  const auto off = offsets(net, p, depth);
  auto parts = p.parts();
  for (std::size_t k = 0; k < parts.size(); ++k)
    if (g >= off[k] && g < off[k] + parts[k].size()) parts[k][g - off[k]] += T(delta);
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// ---- finite differences of the whole network -------------------------------------------
void test_gradient_fd(const Problem& p) {
  const std::string name = std::string(p.name) + " FD";
  rn::Network<double> net = make_network<double>(p, MPI_COMM_WORLD);
  rn::NetworkParameters<double> params = net.init_parameters(7, rn::LayerInit::random, 1.5);
  const Data d = make_data(p, 11);
  rn::NetworkParameters<double> grad;
  const rn::Evaluation e = net.loss_and_gradient(params, d.x, d.labels, grad);
  check(std::isfinite(e.loss) && e.loss > 0, name + ": loss " + std::to_string(e.loss));
  const std::vector<double> g = gather(net, grad, p.depth, MPI_COMM_WORLD);

  // Every coordinate on one rank; on more, every 11th (each evaluation is a few collective
  // calls, slow when ranks outnumber cores), since the gradients are also compared with the
  // one-rank network's bit for bit below.
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::size_t stride = size == 1 ? 1 : 11;
  const double h = 1e-6;
  double worst = 0;
  std::size_t worst_at = 0, checked = 0;
  for (std::size_t i = 0; i < g.size(); i += stride, ++checked) {
    perturb(net, params, p.depth, i, h);
    const double plus = net.evaluate(params, d.x, d.labels).loss;
    perturb(net, params, p.depth, i, -2 * h);
    const double minus = net.evaluate(params, d.x, d.labels).loss;
    perturb(net, params, p.depth, i, h);
    const double fd = (plus - minus) / (2 * h);
    const double err = std::fabs(fd - g[i]) / (1e-3 + std::fabs(g[i]));
    if (err > worst) {
      worst = err;
      worst_at = i;
    }
  }
  check(worst < 1e-5, name + ": gradient vs central differences, worst relative error " +
                          std::to_string(worst) + " at coordinate " + std::to_string(worst_at));
  // opening, layers and classifier all have nonzero gradients (else the check is vacuous)
  const std::size_t layers = net.opening().weight_size() + net.opening().bias_size();
  const std::size_t cls = g.size() - net.classifier().weight_size() - net.classifier().bias_size();
  for (auto [lo, hi] : {std::pair{std::size_t(0), layers}, std::pair{layers, cls},
                        std::pair{cls, g.size()}}) {
    double largest = 0;
    for (std::size_t i = lo; i < hi; ++i) largest = std::max(largest, std::fabs(g[i]));
    check(largest > 1e-4, name + ": the gradient of coordinates [" + std::to_string(lo) + ", " +
                              std::to_string(hi) + ") vanishes");
  }
  if (world_rank() == 0)
    std::printf("%s: %zu of %zu coordinates, worst relative error %.2e\n", name.c_str(), checked,
                g.size(), worst);
}

// ---- the same on every rank count -------------------------------------------------------
struct Result {
  std::vector<double> params, grad1, grad2;  // initial values; gradients of steps 1 and 2
  double loss1 = 0, loss2 = 0, eval_loss = 0;
  std::int64_t correct1 = 0, eval_correct = 0;
  std::vector<std::int64_t> predicted;
};

// Two gradient-descent steps (warm-started solves when the options say so), then an
// evaluation and predictions on other data.
Result run(const Problem& p, const rn::SolverOptions& o, MPI_Comm comm) {
  rn::Network<double> net = make_network<double>(p, comm, o);
  rn::NetworkParameters<double> params = net.init_parameters(3, rn::LayerInit::smooth);
  const Data d = make_data(p, 5), v = make_data(p, 6);
  Result r;
  r.params = gather(net, params, p.depth, comm);
  rn::NetworkParameters<double> grad;
  rn::Evaluation e = net.loss_and_gradient(params, d.x, d.labels, grad);
  r.loss1 = e.loss;
  r.correct1 = e.correct;
  r.grad1 = gather(net, grad, p.depth, comm);
  auto ps = params.parts();
  const auto gs = grad.parts();
  for (std::size_t k = 0; k < ps.size(); ++k)
    for (std::size_t i = 0; i < ps[k].size(); ++i) ps[k][i] -= 0.5 * gs[k][i];
  r.loss2 = net.loss_and_gradient(params, d.x, d.labels, grad).loss;
  r.grad2 = gather(net, grad, p.depth, comm);
  const rn::Evaluation ev = net.evaluate(params, v.x, v.labels);
  r.eval_loss = ev.loss;
  r.eval_correct = ev.correct;
  r.predicted = net.predict(params, v.x);
  return r;
}

void test_rank_independence(const Problem& p, const char* method, const rn::SolverOptions& o) {
  const std::string name = std::string(p.name) + " " + method;
  const Result world = run(p, o, MPI_COMM_WORLD), self = run(p, o, MPI_COMM_SELF);
  check(world.params == self.params, name + ": init_parameters differ from the one-rank values");
  check(world.loss1 == self.loss1 && world.loss2 == self.loss2,
        name + ": losses differ from one rank: " + std::to_string(world.loss1 - self.loss1) +
            ", " + std::to_string(world.loss2 - self.loss2));
  check(world.grad1 == self.grad1 && world.grad2 == self.grad2,
        name + ": gradients differ from one rank by " +
            std::to_string(std::max(max_abs_diff(world.grad1, self.grad1),
                                    max_abs_diff(world.grad2, self.grad2))));
  check(world.correct1 == self.correct1 && world.eval_loss == self.eval_loss &&
            world.eval_correct == self.eval_correct,
        name + ": evaluation differs from one rank");
  check(world.predicted == self.predicted, name + ": predictions differ from one rank");
  check(world.loss2 < world.loss1, name + ": a gradient step did not lower the loss");
  // every rank must see the same loss (it is broadcast from the last rank)
  double mine = world.loss2, low = 0, high = 0;
  MPI_Allreduce(&mine, &low, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&mine, &high, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  check(low == high, name + ": ranks report different losses");
  if (world_rank() == 0)
    std::printf("%s: loss %.6f -> %.6f, equal to the one-rank run\n", name.c_str(), world.loss1,
                world.loss2);
}

// Converged MGRIT equals serial propagation to round-off; float equals double to float's.
void test_converged_and_float(const Problem& p) {
  const std::string name = p.name;
  rn::SolverOptions mgrit;
  mgrit.max_levels = 3;
  mgrit.abs_tol = 1e-13;
  const Result serial = run(p, {}, MPI_COMM_WORLD), parallel = run(p, mgrit, MPI_COMM_WORLD);
  const double gmax = std::fabs(*std::max_element(serial.grad1.begin(), serial.grad1.end(),
                                                  [](double a, double b) {
                                                    return std::fabs(a) < std::fabs(b);
                                                  }));
  const double dg = max_abs_diff(parallel.grad1, serial.grad1) / gmax;
  check(std::fabs(parallel.loss1 - serial.loss1) < 1e-10 && dg < 1e-8,
        name + ": converged MGRIT differs from serial: loss by " +
            std::to_string(parallel.loss1 - serial.loss1) + ", gradient by " +
            std::to_string(dg));

  rn::Network<float> net = make_network<float>(p, MPI_COMM_WORLD);
  rn::NetworkParameters<float> params = net.init_parameters(3, rn::LayerInit::smooth);
  const Data d = make_data(p, 5);
  rn::NetworkParameters<float> grad;
  const std::vector<float> xf = cast<float>(d.x);
  const rn::Evaluation e = net.loss_and_gradient(params, xf, d.labels, grad);
  const std::vector<double> g = gather(net, grad, p.depth, MPI_COMM_WORLD);
  const double df = max_abs_diff(g, serial.grad1) / gmax;
  check(std::fabs(e.loss - serial.loss1) < 1e-5 * serial.loss1 && df < 1e-4,
        name + ": float differs from double: loss by " + std::to_string(e.loss - serial.loss1) +
            ", gradient by " + std::to_string(df));
  if (world_rank() == 0)
    std::printf("%s: converged MGRIT vs serial %.1e, float vs double %.1e (relative gradient)\n",
                name.c_str(), dg, df);
}

// ---- the regularisers' value against the formulas ------------------------------------
void test_regularization_value(const Problem& p) {
  const std::string name = std::string(p.name) + " regularisers";
  rn::Network<double> net = make_network<double>(p, MPI_COMM_WORLD);
  const rn::NetworkParameters<double> params = net.init_parameters(9, rn::LayerInit::random);
  const Data d = make_data(p, 4);
  const rn::Evaluation e = net.evaluate(params, d.x, d.labels);
  rn::Network<double> bare = make_network<double>(p, MPI_COMM_WORLD);
  bare.set_regularization({});
  const double data = bare.evaluate(params, d.x, d.labels).loss;

  // The same sums written out over the gathered vector: opening, layers, classifier.
  const std::vector<double> all = gather(net, params, p.depth, MPI_COMM_WORLD);
  const std::size_t ends = net.opening().weight_size() + net.opening().bias_size();
  const std::size_t per = params.layers.weight_size() + params.layers.bias_size();
  const std::size_t cls = ends + per * std::size_t(p.depth);
  auto sq = [&](std::size_t lo, std::size_t hi) {
    double s = 0;
    for (std::size_t i = lo; i < hi; ++i) s += all[i] * all[i];
    return s;
  };
  const double h = 1.5 / p.depth;
  double want = 0.5 * p.reg.tikhonov * sq(0, cls) + 0.5 * p.reg.classifier * sq(cls, all.size());
  for (int n = 1; n < p.depth; ++n) {
    double s = 0;
    for (std::size_t i = 0; i < per; ++i) {
      const double diff = all[ends + n * per + i] - all[ends + (n - 1) * per + i];
      s += diff * diff;
    }
    want += 0.5 * p.reg.smoothness / (h * h) * s;
  }
  const double got = e.loss - e.data_loss;
  check(e.data_loss == data, name + ": data_loss differs from the unregularised loss");
  check(want > 0.1 * e.data_loss && std::fabs(got - want) <= 1e-12 * want,
        name + ": regulariser value " + std::to_string(got) + ", formulas give " +
            std::to_string(want));
  expect_throw<std::invalid_argument>("negative smoothness", [&] {
    net.set_regularization({0.0, 0.0, -1.0});
  }, {"smoothness=-1", ">= 0"});
  if (world_rank() == 0) {
    std::printf("%s: %.6e, formulas %.6e\n", name.c_str(), got, want);
  }
}

// ---- bad arguments ---------------------------------------------------------------------
void test_errors(const Problem& p, int size) {
  using IA = std::invalid_argument;
  const std::int64_t f = features(p);
  const rn::DenseOpening opening(p.in_features, f);
  const rn::Classifier classifier(f, p.classes);
  auto network = [&](const rn::DenseOpening& op, const rn::Classifier& cl, int depth) {
    return rn::Network<double>(op, p.layer, p.act, depth, 1.0, cl, MPI_COMM_WORLD);
  };
  expect_throw<IA>("opening width", [&] { network(rn::DenseOpening(2, f + 1), classifier, 4); },
                   {"opening's width=" + std::to_string(f + 1), "features=" + std::to_string(f)});
  expect_throw<IA>("classifier features",
                   [&] { network(opening, rn::Classifier(f - 1, 3), 4); },
                   {"classifier's features=" + std::to_string(f - 1)});
  expect_throw<IA>("classes", [&] { rn::Classifier(f, 1); }, {"classes=1", ">= 2"});
  expect_throw<IA>("in_features", [&] { rn::DenseOpening(0, f); }, {"in_features=0", ">= 1"});
  expect_throw<IA>("depth", [&] { network(opening, classifier, 0); }, {"depth=0", ">= 1"});
  expect_throw<IA>("final_time",
                   [&] {
                     rn::Network<double>(opening, p.layer, p.act, 4, -1.0, classifier,
                                         MPI_COMM_WORLD);
                   },
                   {"final_time=-1", "> 0"});
  rn::SolverOptions bad;
  bad.cfactor = 1;
  expect_throw<IA>("options",
                   [&] {
                     rn::Network<double>(opening, p.layer, p.act, 4, 1.0, classifier,
                                         MPI_COMM_WORLD, bad);
                   },
                   {"cfactor=1"});
  if (size > 2) {
    expect_throw<IA>("too many ranks", [&] { network(opening, classifier, 1); },
                     {"size=" + std::to_string(size), "ranks"});
  }

  rn::Network<double> net = make_network<double>(p, MPI_COMM_WORLD);
  const rn::NetworkParameters<double> params = net.init_parameters(1);
  const int rank = world_rank();
  const bool first = net.has_opening(), last = net.has_classifier();
  Data d = make_data(p, 2);
  rn::NetworkParameters<double> grad;
  expect_throw<IA>("scale", [&] { net.init_parameters(1, rn::LayerInit::random, -1.0); },
                   {"scale=-1", ">= 0"});
  // x is read on rank 0: a bad size there makes every rank throw, naming rank 0's x
  std::vector<double> short_x(d.x.begin(), d.x.end() - 1);
  expect_throw<IA>("x size",
                   [&] { net.loss_and_gradient(params, first ? short_x : d.x, d.labels, grad); },
                   {"x has " + std::to_string(short_x.size()), "batch*in_features"});
  // labels are read on the last rank
  std::vector<std::int64_t> bad_labels = d.labels;
  bad_labels[1] = p.classes;
  expect_throw<IA>("label value",
                   [&] { net.evaluate(params, d.x, last ? bad_labels : d.labels); },
                   {"labels[1]=" + std::to_string(p.classes), "0 to " +
                                                                  std::to_string(p.classes - 1)});
  std::vector<std::int64_t> few(d.labels.begin(), d.labels.end() - 1);
  expect_throw<IA>("label count", [&] { net.evaluate(params, d.x, last ? few : d.labels); },
                   {"labels has " + std::to_string(few.size()), "batch = "});
  // parameters of another shape on one rank only
  rn::NetworkParameters<double> wrong = params;
  if (rank == size - 1) wrong.classifier_bias.push_back(0.0);
  expect_throw<IA>("parameter shape", [&] { net.predict(wrong, d.x); },
                   {"params.classifier_bias has", "make_parameters()"});
  if (size > 1) {
    expect_throw<IA>("the failing rank is named", [&] { net.predict(wrong, d.x); },
                     {rank == size - 1 ? "on rank " + std::to_string(size - 1)
                                       : "(on rank " + std::to_string(size - 1) + ")"});
  }
  // still usable after the errors
  const rn::Evaluation e = net.loss_and_gradient(params, d.x, d.labels, grad);
  check(std::isfinite(e.loss) && e.count == p.batch, "the network works after rejected input");
  check(first == !grad.opening_weight.empty() && last == !grad.classifier_weight.empty(),
        "gradients hold the parts this rank holds");
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int status = 1;
  try {
    const Problem dense{"dense/tanh", rn::Dense(4), rn::Activation::tanh, 6, 3, 3, 5};
    const Problem conv{"conv/smoothrelu", rn::Conv(2, 3, 3), rn::Activation::smoothrelu, 4, 3,
                       4, 3};
    rn::SolverOptions mgrit;  // two warm-started cycles per solve (fewer only at residual 0)
    mgrit.max_levels = 2;
    mgrit.max_iter = 2;
    mgrit.abs_tol = 1e-300;
    mgrit.warm_start = true;
    Problem regularised = dense;
    regularised.name = "dense/tanh regularised";
    regularised.reg = {0.05, 0.03, 0.02};
    for (const Problem* p : {&dense, &conv}) {
      test_gradient_fd(*p);
      test_rank_independence(*p, "serial", {});
      test_rank_independence(*p, "MGRIT 2 iterations", mgrit);
      test_converged_and_float(*p);
    }
    test_regularization_value(regularised);
    test_gradient_fd(regularised);
    test_rank_independence(regularised, "serial", {});
    test_rank_independence(regularised, "MGRIT 2 iterations", mgrit);
    test_errors(dense, size);
    int mine = lbtest::failures(), total = 0;
    MPI_Allreduce(&mine, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (world_rank() == 0) {
      lbtest::failures() = total;
      status = lbtest::finish("test_resnet_model");
    } else {
      status = total == 0 ? 0 : 1;
    }
  } catch (const std::exception& e) {
    std::printf("rank %d: unexpected exception: %s\n", world_rank(), e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return status;
}
