// layerbraid::resnet::Propagation under mpiexec (run with 1, 2, 3 and 4 ranks):
//   - serial propagation (max_levels 1) on all ranks equals a plain loop over the kernels bit
//     for bit: the states u_n, u_N, the gradients and lambda_0;
//   - MGRIT (cf 2 or 4, abs_tol 1e-10, smooth weights) equals the serial result to 1e-8, and
//     equals the same MGRIT solve on one rank (MPI_COMM_SELF) bit for bit;
//   - the gradients of the loss <c, u_N> agree with central finite differences (dense and
//     conv, every activation);
//   - bad input makes every rank throw (no hang), and a diverged solve is reported;
//   - an interrupt check that says stop on one rank ends the solve on every rank (Interrupted
//     there, RemoteFailure elsewhere), and the next solve gives the uninterrupted results;
//   - SolveInfo's profile: serial steps sum to depth over the ranks with no messages on one
//     rank, MGRIT steps on the coarsest level are some but not all, the summed counts equal
//     the one-rank solve's, and SolverOptions::profile fills the times.
// Every rank checks the parts it holds against the reference it computed itself; the failure
// counts are summed, and rank 0 prints the measured errors.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "layerbraid/resnet_app.hpp"
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
  std::int64_t batch;
  double final_time;
  rn::SolverOptions mgrit;  // the layer-parallel options tested for this problem
};

std::size_t state_size(const Problem& p) {
  return std::visit([&](const auto& l) { return l.state_size(p.batch); }, p.layer);
}
std::size_t weight_size(const Problem& p) {
  return std::visit([](const auto& l) { return l.weight_size(); }, p.layer);
}
std::size_t bias_size(const Problem& p) {
  return std::visit([](const auto& l) { return l.bias_size(); }, p.layer);
}

// All layers' parameters, layer after layer [weight, bias], smooth in the layer index
// (theta_n = A + sin(pi n / N) B): what MGRIT's coarse grids rely on.
template <class T>
std::vector<T> all_params(const Problem& p, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::size_t per = weight_size(p) + bias_size(p);
  const double scale = 1.0 / std::sqrt(double(weight_size(p)) / double(bias_size(p)));
  const lbtest::Vec a = lbtest::random_vec(rng, per, 1.2 * scale);
  const lbtest::Vec b = lbtest::random_vec(rng, per, 0.6 * scale);
  std::vector<T> out(per * static_cast<std::size_t>(p.depth));
  for (int n = 0; n < p.depth; ++n) {
    const double s = std::sin(std::acos(-1.0) * n / p.depth);
    for (std::size_t i = 0; i < per; ++i) out[n * per + i] = T(a[i] + s * b[i]);
  }
  return out;
}

template <class T>
std::vector<T> random_state(const Problem& p, std::uint64_t seed, double scale) {
  std::mt19937_64 rng(seed);
  const lbtest::Vec v = lbtest::random_vec(rng, state_size(p), scale);
  return std::vector<T>(v.begin(), v.end());
}

// The engine's time of point i: tstart + (i / N) (tstop - tstart), tstart = 0.
double point_time(const Problem& p, int i) { return (double(i) / p.depth) * p.final_time; }

// The reference: a plain loop over the kernels, with the step sizes the engine's grid gives
// (forward step to point n + 1: t_{n+1} - t_n; adjoint step to point n, adjoint index
// i = N - n: t_i - t_{i-1}).
template <class T>
struct Reference {
  std::vector<std::vector<T>> u, deriv, lam, grad;  // u, lam: N + 1 points; deriv, grad: N layers
};

template <class T>
Reference<T> plain_loop(const Problem& p, const std::vector<T>& theta, const std::vector<T>& u0,
                        const std::vector<T>* c) {
  const std::size_t ns = state_size(p), nw = weight_size(p), nb = bias_size(p), per = nw + nb;
  Reference<T> r;
  rn::Workspace<T> work;
  std::visit([&](const auto& l) { work.reserve(l, p.batch); }, p.layer);
  r.u.assign(p.depth + 1, std::vector<T>(ns));
  r.deriv.assign(p.depth, std::vector<T>(ns));
  r.u[0] = u0;
  std::vector<T> u = u0;
  for (int n = 0; n < p.depth; ++n) {
    const double dt = point_time(p, n + 1) - point_time(p, n);
    std::vector<T> cache(ns);
    std::visit([&](const auto& l) {
      l.template forward<T>(rn::Span<T>(u), p.batch, rn::CSpan<T>(theta.data() + n * per, nw),
                            rn::CSpan<T>(theta.data() + n * per + nw, nb), dt, p.act, work,
                            rn::Span<T>(cache), rn::Span<T>(r.deriv[n]));
    }, p.layer);
    r.u[n + 1] = u;
  }
  if (c == nullptr) return r;
  r.lam.assign(p.depth + 1, std::vector<T>(ns));
  r.grad.assign(p.depth, std::vector<T>(per));
  std::vector<T> lam = *c;
  r.lam[p.depth] = lam;
  for (int n = p.depth - 1; n >= 0; --n) {
    const int i = p.depth - n;
    const double dt = point_time(p, i) - point_time(p, i - 1);
    std::visit([&](const auto& l) {
      l.template adjoint<T>(rn::Span<T>(lam), p.batch, rn::CSpan<T>(theta.data() + n * per, nw),
                            dt, rn::CSpan<T>(r.deriv[n]), work, rn::CSpan<T>(r.u[n]),
                            rn::Span<T>(r.grad[n].data(), nw),
                            rn::Span<T>(r.grad[n].data() + nw, nb));
    }, p.layer);
    r.lam[n] = lam;
  }
  return r;
}

// What one rank holds after a forward and an adjoint solve.
template <class T>
struct Held {
  rn::LayerRange layers;
  std::vector<std::vector<T>> u, grad;  // by n - layers.first
  std::vector<T> final_state, lambda0;  // where held
  rn::SolveInfo fwd, adj;
};

template <class T>
Held<T> run(const Problem& p, const rn::SolverOptions& opts, MPI_Comm comm,
            const std::vector<T>& theta, const std::vector<T>& u0, const std::vector<T>& c) {
  rn::Propagation<T> prop(p.layer, p.act, p.depth, p.final_time, p.batch, comm, opts);
  rn::LayerParameters<T> params = prop.make_parameters();
  const rn::LayerRange own = prop.layout().owned_layers();
  const std::size_t per = weight_size(p) + bias_size(p);
  for (int n = own.first; n < own.end(); ++n)
    std::copy(theta.begin() + n * per, theta.begin() + (n + 1) * per, params.layer(n).data());
  Held<T> h;
  h.layers = own;
  const bool first = prop.layout().has_first_point(), last = prop.layout().has_last_point();
  h.fwd = prop.forward(params, first ? rn::CSpan<T>(u0) : rn::CSpan<T>());
  auto fs = prop.final_state();
  check(last == !fs.empty(), std::string(p.name) + ": u_N is held by the last rank only");
  h.final_state.assign(fs.data(), fs.data() + fs.size());
  for (int n = own.first; n < own.end(); ++n) {
    auto s = prop.state(n);
    h.u.emplace_back(s.data(), s.data() + s.size());
  }
  h.adj = prop.adjoint(last ? rn::CSpan<T>(c) : rn::CSpan<T>());
  auto l0 = prop.initial_adjoint();
  check(first == !l0.empty(), std::string(p.name) + ": lambda_0 is held by rank 0 only");
  h.lambda0.assign(l0.data(), l0.data() + l0.size());
  for (int n = own.first; n < own.end(); ++n) {
    auto g = prop.gradient().layer(n);
    h.grad.emplace_back(g.data(), g.data() + g.size());
  }
  return h;
}

template <class T>
double max_abs_diff(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

template <class T>
double max_abs(const std::vector<T>& a) {
  double m = 0;
  for (T x : a) m = std::max(m, std::fabs(double(x)));
  return m;
}

// Differences between what this rank holds and a full reference: the largest absolute
// difference of every held state (and u_N, lambda_0), and of every held gradient, each
// relative to the largest entry of the reference's states / gradients.
struct Diffs {
  double state = 0, grad = 0;
  bool bitwise = true;
};

template <class T>
Diffs compare(const Problem& p, const Held<T>& h, const Reference<T>& r) {
  Diffs d;
  double smax = 0, gmax = 0;
  for (const auto& u : r.u) smax = std::max(smax, max_abs(u));
  for (const auto& l : r.lam) smax = std::max(smax, max_abs(l));
  for (const auto& g : r.grad) gmax = std::max(gmax, max_abs(g));
  auto state = [&](const std::vector<T>& got, const std::vector<T>& want) {
    d.state = std::max(d.state, max_abs_diff(got, want) / smax);
    d.bitwise = d.bitwise && got == want;
  };
  for (int n = h.layers.first; n < h.layers.end(); ++n) {
    const std::size_t i = static_cast<std::size_t>(n - h.layers.first);
    state(h.u[i], r.u[n]);
    d.grad = std::max(d.grad, max_abs_diff(h.grad[i], r.grad[n]) / gmax);
    d.bitwise = d.bitwise && h.grad[i] == r.grad[n];
  }
  if (!h.final_state.empty()) state(h.final_state, r.u[p.depth]);
  if (!h.lambda0.empty()) state(h.lambda0, r.lam[0]);
  return d;
}

// The same comparison between two runs with the same layout (bitwise only).
template <class T>
bool identical(const Held<T>& a, const Held<T>& b) {
  return a.u == b.u && a.grad == b.grad && a.final_state == b.final_state &&
         a.lambda0 == b.lambda0 && a.fwd.iterations == b.fwd.iterations &&
         a.adj.iterations == b.adj.iterations;
}

// A Held of the full problem (one rank) restricted to the layers `own` and the points `rank`
// holds, for comparison with a run on more ranks.
template <class T>
Held<T> restrict_to(const Held<T>& full, const rn::Layout& lay) {
  Held<T> h = full;
  const rn::LayerRange own = lay.owned_layers();
  h.layers = own;
  h.u.assign(full.u.begin() + own.first, full.u.begin() + own.end());
  h.grad.assign(full.grad.begin() + own.first, full.grad.begin() + own.end());
  if (!lay.has_last_point()) h.final_state.clear();
  if (!lay.has_first_point()) h.lambda0.clear();
  return h;
}

double allmax(double v) {
  double out = v;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

int rank_of(MPI_Comm comm) {
  int r = 0;
  MPI_Comm_rank(comm, &r);
  return r;
}

// <c, u_N> of the plain loop.
double loss(const Problem& p, const std::vector<double>& theta, const std::vector<double>& u0,
            const std::vector<double>& c) {
  const Reference<double> r = plain_loop<double>(p, theta, u0, nullptr);
  return lbtest::dot(c, r.u[p.depth]);
}

// Central differences of <c, u_N> along random directions in one layer's weight and in its
// bias, against <gradient, direction>; returns the largest relative error on this rank.
double finite_differences(const Problem& p, const Held<double>& h,
                          const std::vector<double>& theta, const std::vector<double>& u0,
                          const std::vector<double>& c) {
  const std::size_t nw = weight_size(p), nb = bias_size(p), per = nw + nb;
  // Smooth activations: a step large enough that rounding in <c, u_N> stays far below 1e-6 of
  // a small directional derivative. ReLU: a smaller step, so that no pre-activation crosses 0.
  const double eps = p.act == rn::Activation::relu ? 1e-6 : 1e-5;
  double worst = 0;
  for (int n = h.layers.first; n < h.layers.end(); ++n) {
    const auto& g = h.grad[static_cast<std::size_t>(n - h.layers.first)];
    for (int part = 0; part < 2; ++part) {  // 0: weight, 1: bias
      std::mt19937_64 rng(1000 + 2 * n + part);
      const std::size_t begin = part == 0 ? 0 : nw, size = part == 0 ? nw : nb;
      const lbtest::Vec d = lbtest::random_vec(rng, size, 1.0);
      std::vector<double> plus = theta, minus = theta;
      double exact = 0, gg = 0, dd = 0;
      for (std::size_t i = 0; i < size; ++i) {
        plus[n * per + begin + i] += eps * d[i];
        minus[n * per + begin + i] -= eps * d[i];
        exact += g[begin + i] * d[i];
        gg += g[begin + i] * g[begin + i];
        dd += d[i] * d[i];
      }
      const double fd = (loss(p, plus, u0, c) - loss(p, minus, u0, c)) / (2 * eps);
      // Relative to |g| |d|, the largest the derivative along d could be: a direction nearly
      // orthogonal to the gradient has a tiny derivative whose central difference is mostly
      // the rounding of two nearly equal losses (it depended on the BLAS kernel).
      const double scale = std::max(std::fabs(exact), std::sqrt(gg * dd));
      const double rel = std::fabs(fd - exact) / std::max(scale, 1e-300);
      worst = std::max(worst, rel);
      check(rel <= 1e-6, std::string(p.name) + ": finite differences of layer " +
                             std::to_string(n) + (part == 0 ? " weight" : " bias") + ": fd " +
                             std::to_string(fd) + " vs adjoint " + std::to_string(exact) +
                             " (rel " + std::to_string(rel) + ")");
    }
  }
  return worst;
}

#if __has_include("braid_layerbraid.h")
constexpr bool kEngineProfile = true;  // layerbraid's engine: SolveInfo has the counts
#else
constexpr bool kEngineProfile = false;  // upstream XBraid: they stay 0
#endif

long allsum(long v) {
  long s = 0;
  MPI_Allreduce(&v, &s, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  return s;
}

// The counts of the serial and MGRIT solves: serial steps sum to depth (all on the only
// level), MGRIT has some but not all steps on the coarsest level, messages go only between
// ranks and every one sent is received, and the work summed over the ranks is the one-rank
// solve's (MGRIT's schedule does not depend on the distribution).
void check_profile(const Problem& p, const Held<double>& serial, const Held<double>& mg,
                   const Held<double>& mg_self) {
  if (!kEngineProfile) return;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::string name = std::string(p.name) + ": profile: ";
  for (const rn::SolveInfo* i : {&serial.fwd, &serial.adj}) {
    const long steps = allsum(i->steps);
    check(steps == p.depth, name + "serial solve made " + std::to_string(steps) +
                                " steps over the ranks, depth " + std::to_string(p.depth));
    check(i->steps_coarsest == i->steps, name + "serial steps are all on the only level");
    check(size > 1 || (i->messages_sent == 0 && i->messages_received == 0),
          name + "one rank sends no messages");
    check(i->time_solve >= 0 && i->time_step == 0 && i->time_wait == 0,
          name + "step and wait times only with profile");
  }
  for (int k = 0; k < 2; ++k) {
    const rn::SolveInfo& i = k == 0 ? mg.fwd : mg.adj;
    const rn::SolveInfo& one = k == 0 ? mg_self.fwd : mg_self.adj;
    const long steps = allsum(i.steps), coarsest = allsum(i.steps_coarsest);
    const long sent = allsum(i.messages_sent), received = allsum(i.messages_received);
    const std::string what = name + (k == 0 ? "MGRIT forward: " : "MGRIT adjoint: ");
    check(coarsest > 0 && coarsest < steps,
          what + std::to_string(coarsest) + " of " + std::to_string(steps) +
              " steps on the coarsest level");
    check(steps == one.steps && coarsest == one.steps_coarsest,
          what + std::to_string(steps) + " steps over the ranks, " + std::to_string(one.steps) +
              " on one rank");
    check(sent == received && (size == 1) == (sent == 0),
          what + std::to_string(sent) + " messages sent, " + std::to_string(received) +
              " received");
    check(one.messages_sent == 0 && one.bytes_sent == 0, what + "one rank sends nothing");
  }
}

rn::SolverOptions mgrit(int max_levels, int cfactor, int nrelax);

// SolverOptions::profile: the step and wait times are filled (the engine's timer file that
// comes with them is removed again).
void test_profile_times() {
  if (!kEngineProfile) return;
  const int rank = rank_of(MPI_COMM_WORLD);
  Problem p{"profile", rn::Dense(4), rn::Activation::tanh, 32, 3, 1.0, mgrit(2, 2, 1)};
  p.mgrit.profile = true;
  const std::vector<double> theta = all_params<double>(p, 5);
  const std::vector<double> u0 = random_state<double>(p, 6, 1.0);
  const std::vector<double> c = random_state<double>(p, 8, 1.0);
  const Held<double> h = run(p, p.mgrit, MPI_COMM_WORLD, theta, u0, c);
  for (const rn::SolveInfo* i : {&h.fwd, &h.adj}) {
    check(i->steps > 0 && i->time_step > 0 && i->time_step_coarsest > 0 &&
              i->time_step_coarsest < i->time_step && i->time_wait >= 0 &&
              i->time_solve >= i->time_step,
          "profile: times step " + std::to_string(i->time_step) + ", coarsest " +
              std::to_string(i->time_step_coarsest) + ", wait " + std::to_string(i->time_wait) +
              ", solve " + std::to_string(i->time_solve));
  }
  char file[64];
  std::snprintf(file, sizeof(file), "braid_timings_%04d.txt", rank);
#if __has_include("braid_layerbraid.h")
  // layerbraid's engine times the calls without writing upstream's timer file
  std::FILE* written = std::fopen(file, "r");
  if (written != nullptr) std::fclose(written);
  check(written == nullptr, std::string("profile: the engine wrote ") + file);
#else
  std::remove(file);  // upstream XBraid writes it at timings level 2
#endif
}

void test_problem(const Problem& p) {
  const int rank = rank_of(MPI_COMM_WORLD);
  const std::vector<double> theta = all_params<double>(p, 7);
  const std::vector<double> u0 = random_state<double>(p, 11, 1.0);
  const std::vector<double> c = random_state<double>(p, 13, 1.0);
  const Reference<double> ref = plain_loop(p, theta, u0, &c);

  // Serial, on all ranks: the plain loop, bit for bit.
  const Held<double> serial = run(p, rn::SolverOptions{}, MPI_COMM_WORLD, theta, u0, c);
  const Diffs ds = compare(p, serial, ref);
  check(ds.bitwise, std::string(p.name) + ": serial propagation differs from the plain loop "
                    "(state " + std::to_string(ds.state) + ", gradient " +
                    std::to_string(ds.grad) + ")");
  check(serial.fwd.iterations == 0 && serial.fwd.levels == 1,
        std::string(p.name) + ": serial solve used " + std::to_string(serial.fwd.levels) +
        " levels");

  // MGRIT on all ranks: close to serial, and identical to MGRIT on one rank.
  const Held<double> mg = run(p, p.mgrit, MPI_COMM_WORLD, theta, u0, c);
  const Held<double> mg_self = run(p, p.mgrit, MPI_COMM_SELF, theta, u0, c);
  const Diffs dm = compare(p, mg, ref);
  check(mg.fwd.levels >= 2 && mg.adj.levels >= 2 && mg.fwd.iterations >= 1,
        std::string(p.name) + ": MGRIT used " + std::to_string(mg.fwd.levels) + " levels");
  check(dm.state <= 1e-8 && dm.grad <= 1e-8,
        std::string(p.name) + ": MGRIT vs serial: state " + std::to_string(dm.state) +
        ", gradient " + std::to_string(dm.grad));
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const rn::Layout lay(p.depth, size, rank);
  check(identical(mg, restrict_to(mg_self, lay)),
        std::string(p.name) + ": MGRIT on " + std::to_string(size) +
        " ranks differs from MGRIT on one rank");

  check_profile(p, serial, mg, mg_self);

  const double fd = finite_differences(p, serial, theta, u0, c);
  const double fd_mg = finite_differences(p, mg, theta, u0, c);

  // float: serial equals the float plain loop bit for bit.
  const std::vector<float> theta_f(theta.begin(), theta.end()), u0_f(u0.begin(), u0.end()),
      c_f(c.begin(), c.end());
  const Reference<float> ref_f = plain_loop(p, theta_f, u0_f, &c_f);
  const Held<float> serial_f = run(p, rn::SolverOptions{}, MPI_COMM_WORLD, theta_f, u0_f, c_f);
  check(compare(p, serial_f, ref_f).bitwise,
        std::string(p.name) + ": float serial propagation differs from the plain loop");

  const double e_ds = allmax(ds.state + ds.grad), e_ms = allmax(dm.state),
               e_mg = allmax(dm.grad), e_fd = allmax(fd), e_fdm = allmax(fd_mg);
  if (rank == 0) {
    std::printf("%-18s serial vs loop %.1e | MGRIT %d levels, %d+%d iterations: state %.1e, "
                "gradient %.1e vs serial | FD rel err serial %.1e, MGRIT %.1e\n",
                p.name, e_ds, mg.fwd.levels, mg.fwd.iterations, mg.adj.iterations, e_ms, e_mg,
                e_fd, e_fdm);
  }
}

rn::SolverOptions mgrit(int max_levels, int cfactor, int nrelax) {
  rn::SolverOptions o;
  o.max_levels = max_levels;
  o.cfactor = cfactor;
  o.nrelax = nrelax;
  o.min_coarse = 2;
  o.abs_tol = 1e-10;
  o.max_iter = 50;
  return o;
}

// Bad input: every rank throws, with the bad value named; no rank is left waiting.
void test_errors() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int rank = rank_of(MPI_COMM_WORLD);
  const rn::Dense dense(3);
  using IA = std::invalid_argument;
  auto make = [&](int depth, double T, std::int64_t batch, rn::SolverOptions o) {
    rn::Propagation<double> p(dense, rn::Activation::tanh, depth, T, batch, MPI_COMM_WORLD, o);
  };
  rn::SolverOptions o;
  expect_throw<IA>("depth 0", [&] { make(0, 1.0, 2, o); }, {"depth=0"});
  expect_throw<IA>("final_time nan", [&] { make(8, std::nan(""), 2, o); }, {"final_time=nan"});
  expect_throw<IA>("batch 0", [&] { make(8, 1.0, 0, o); }, {"batch=0"});
  o.max_levels = 0;
  expect_throw<IA>("max_levels 0", [&] { make(8, 1.0, 2, o); }, {"max_levels=0", ">= 1"});
  o = {};
  o.cfactor = 1;
  expect_throw<IA>("cfactor 1", [&] { make(8, 1.0, 2, o); }, {"cfactor=1", ">= 2"});
  o = {};
  o.abs_tol = -1;
  expect_throw<IA>("abs_tol -1", [&] { make(8, 1.0, 2, o); }, {"abs_tol=-1"});
  o = {};
  o.nrelax = -1;
  expect_throw<IA>("nrelax -1", [&] { make(8, 1.0, 2, o); }, {"nrelax=-1"});
  o = {};
  o.spatial_coarsen = 1;
  expect_throw<IA>("spatial coarsening of dense layers", [&] { make(8, 1.0, 2, o); },
                   {"spatial_coarsen=1 needs Conv layers"});
  const rn::Conv conv(2, 6, 4, 3);
  o.spatial_coarsen = 2;  // 6 is not divisible by 4
  expect_throw<IA>("spatial coarsening of 6 x 4 images twice", [&] {
    rn::Propagation<double>(conv, rn::Activation::tanh, 8, 1.0, 2, MPI_COMM_WORLD, o);
  }, {"spatial_coarsen=2", "6 x 4", "divisible by 4"});
  o = mgrit(3, 2, 0);
  o.spatial_coarsen = 1;
  o.spatial_states = true;
  expect_throw<IA>("low-resolution states with F-relaxation", [&] {
    rn::Propagation<double>(conv, rn::Activation::tanh, 8, 1.0, 2, MPI_COMM_WORLD, o);
  }, {"spatial_states", "nrelax >= 1"});
  o = {};
  o.spatial_coarsen = -1;
  expect_throw<IA>("spatial_coarsen -1", [&] { make(8, 1.0, 2, o); }, {"spatial_coarsen=-1"});
  if (size > 2) {
    expect_throw<IA>("too many ranks", [&] { make(1, 1.0, 2, rn::SolverOptions{}); },
                     {"ranks cannot share depth=1", "at most 2"});
  }

  rn::Propagation<double> prop(dense, rn::Activation::tanh, 8, 1.0, 2, MPI_COMM_WORLD);
  std::vector<double> u0(prop.state_size(), 0.5), lam(prop.state_size(), 1.0);
  expect_throw<IA>("adjoint before forward", [&] { prop.adjoint(lam); }, {"call forward()"});
  auto params = prop.make_parameters();
  // A wrong u0 on rank 0 only: every rank throws rank 0's message.
  std::vector<double> short_u0(prop.state_size() - 1, 0.5);
  expect_throw<IA>("short u0", [&] { prop.forward(params, short_u0); },
                   {"u0 has 5 elements", "state_size() = 6"});
  // No rank owns 9 of 8 layers.
  const rn::LayerParameters<double> wrong(rn::LayerRange{0, 9}, 9, 3);
  expect_throw<IA>("wrong parameter layout", [&] { prop.forward(wrong, u0); },
                   {"params hold layers [0, 9)", "use make_parameters()"});
  // A valid solve afterwards works.
  prop.forward(params, u0);
  prop.adjoint(lam);

  // NaN weights with MGRIT: the solve diverges; every rank reports it; the next solve works.
  rn::Propagation<double> mg(dense, rn::Activation::tanh, 8, 1.0, 2, MPI_COMM_WORLD,
                             mgrit(3, 2, 1));
  auto bad = mg.make_parameters();
  for (int n = bad.layers().first; n < bad.layers().end(); ++n) bad.weight(n)[0] = std::nan("");
  if (rank == 0) std::fprintf(stderr, "(the engine's divergence message below is expected)\n");
  expect_throw<std::runtime_error>("NaN weights", [&] { mg.forward(bad, u0); },
                                   {"Propagation::forward failed"});
  auto good = mg.make_parameters();
  const auto& info = mg.forward(good, u0);
  check(info.levels >= 2, "MGRIT solve after a failed one");
  if (mg.layout().has_last_point()) {
    // zero weights: u_N = u_0 + T tanh(0) = u_0
    const auto uN = mg.final_state();
    check(std::vector<double>(uN.data(), uN.data() + uN.size()) == u0, "zero weights keep u_0");
  }
}

// What a call threw: "ok", "Interrupted: <what>", "RemoteFailure: <what>", "other: <what>".
template <class F>
std::string outcome(F&& fn) {
  try {
    fn();
    return "ok";
  } catch (const rn::Interrupted& e) {
    return std::string("Interrupted: ") + e.what();
  } catch (const rn::RemoteFailure& e) {
    return std::string("RemoteFailure: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("other: ") + e.what();
  }
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// The interrupt check: on rank `target` it says stop at its second call (or throws there);
// elsewhere it never does. Forward and adjoint, serial and MGRIT, and (serial, last rank) while
// the target waits inside the engine for slow earlier ranks, so that the engine's poll hook
// asks; every rank must see the failure, and a solve after it (check removed) must equal an
// uninterrupted one.
void test_interrupt() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int rank = rank_of(MPI_COMM_WORLD);
  const Problem p{"interrupt", rn::Dense(3), rn::Activation::tanh, 16, 2, 1.0, mgrit(3, 2, 1)};
  const std::vector<double> theta = all_params<double>(p, 21);
  const std::vector<double> u0 = random_state<double>(p, 22, 1.0);
  const std::vector<double> c = random_state<double>(p, 23, 1.0);
  int cases = 0;
  for (const rn::SolverOptions& o : {rn::SolverOptions{}, p.mgrit}) {
    const Held<double> clean = run(p, o, MPI_COMM_WORLD, theta, u0, c);
    for (int target = 0; target < size; target += std::max(1, size - 1)) {  // first, last
      // forward, adjoint, a check that throws, waiting for slow ranks
      for (int phase = 0; phase < 4; ++phase) {
        const bool waits = phase == 3;
        if (waits && (o.max_levels != 1 || size == 1 || target != size - 1)) continue;
        rn::Propagation<double> prop(p.layer, p.act, p.depth, p.final_time, p.batch,
                                     MPI_COMM_WORLD, o);
        auto params = prop.make_parameters();
        const rn::LayerRange own = prop.layout().owned_layers();
        const std::size_t per = weight_size(p) + bias_size(p);
        for (int n = own.first; n < own.end(); ++n)
          std::copy(theta.begin() + n * per, theta.begin() + (n + 1) * per,
                    params.layer(n).data());
        int calls = 0;
        const bool throws = phase == 2;
        auto stop_on_target = [&] {
          if (waits && rank != target) {  // the earlier ranks step slowly: the target waits
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
            return false;
          }
          if (rank != target || ++calls < 2) return false;
          if (throws) throw std::runtime_error("the check failed");
          return true;
        };
        const std::string label = "interrupt (" + std::string(o.max_levels == 1 ? "serial" :
                                  "MGRIT") + ", rank " + std::to_string(target) + ", " +
                                  (phase == 0   ? "forward"
                                   : phase == 1 ? "adjoint"
                                   : phase == 2 ? "throws"
                                                : "waiting") +
                                  ") on rank " + std::to_string(rank) + ": ";
        std::string got;
        if (phase == 1) {
          got = outcome([&] { prop.forward(params, u0); });
          check(got == "ok", label + "the forward solve: " + got);
          prop.set_interrupt_check(stop_on_target);
          got = outcome([&] { prop.adjoint(c); });
        } else {
          prop.set_interrupt_check(stop_on_target);
          got = outcome([&] { prop.forward(params, u0); });
        }
        const char* who = phase == 1 ? "Propagation::adjoint" : "Propagation::forward";
        if (rank == target && !throws) {
          check(got == std::string("Interrupted: ") + who + " interrupted on rank " +
                           std::to_string(rank) + " (its interrupt check asked to stop)",
                label + got);
        } else if (rank == target) {
          check(starts_with(got, std::string("other: ") + who + " failed:") &&
                    got.find("the check failed") != std::string::npos,
                label + got);
        } else {
          // the check runs in the step callback, or in the poll hook if the target waited
          check(starts_with(got, std::string("RemoteFailure: ") + who + " failed: rank " +
                                     std::to_string(target) +
                                     (waits ? ": the poll callback failed" : ": the ")) &&
                    got.find(throws ? "the check failed" : ": interrupted") != std::string::npos,
                label + got);
        }
        // Without the check, the next solves give the uninterrupted results, bit for bit.
        prop.set_interrupt_check({});
        got = outcome([&] {
          prop.forward(params, u0);
          prop.adjoint(c);
        });
        check(got == "ok", label + "the solves after it: " + got);
        bool same = true;
        for (int n = own.first; n < own.end(); ++n) {
          const auto g = prop.gradient().layer(n);
          const auto& want = clean.grad.at(static_cast<std::size_t>(n - own.first));
          same = same && std::equal(g.data(), g.data() + g.size(), want.begin(), want.end());
        }
        const auto uN = prop.final_state();
        same = same && std::equal(uN.data(), uN.data() + uN.size(), clean.final_state.begin(),
                                  clean.final_state.end());
        const auto l0 = prop.initial_adjoint();
        same = same && std::equal(l0.data(), l0.data() + l0.size(), clean.lambda0.begin(),
                                  clean.lambda0.end());
        check(same, label + "the solves after it differ from an uninterrupted one");
        ++cases;
      }
    }
  }
  if (rank == 0) std::printf("%-18s %d interrupted solves stopped on every rank\n", p.name, cases);
}

// warm_start keeps the engine's solution between calls: a second solve with the same
// parameters starts converged; without it every call starts afresh.
void test_warm_start() {
  const int rank = rank_of(MPI_COMM_WORLD);
  const Problem p{"warm start", rn::Dense(4), rn::Activation::tanh, 32, 3, 1.0, mgrit(3, 2, 1)};
  const std::vector<double> theta = all_params<double>(p, 5);
  const std::vector<double> u0 = random_state<double>(p, 6, 1.0);
  const std::vector<double> c = random_state<double>(p, 8, 1.0);
  const Reference<double> ref = plain_loop(p, theta, u0, &c);
  int iters[2][2][2] = {};  // [warm][call][forward, adjoint]
  for (int warm = 0; warm < 2; ++warm) {
    rn::SolverOptions o = p.mgrit;
    o.warm_start = warm == 1;
    rn::Propagation<double> prop(p.layer, p.act, p.depth, p.final_time, p.batch, MPI_COMM_WORLD,
                                 o);
    auto params = prop.make_parameters();
    const rn::LayerRange own = prop.layout().owned_layers();
    const std::size_t per = weight_size(p) + bias_size(p);
    for (int n = own.first; n < own.end(); ++n)
      std::copy(theta.begin() + n * per, theta.begin() + (n + 1) * per, params.layer(n).data());
    for (int call = 0; call < 2; ++call) {
      iters[warm][call][0] = prop.forward(params, u0).iterations;
      iters[warm][call][1] = prop.adjoint(c).iterations;
      for (int n = own.first; n < own.end(); ++n) {
        const auto g = prop.gradient().layer(n);
        const double e = max_abs_diff(std::vector<double>(g.data(), g.data() + g.size()),
                                      ref.grad[n]) / max_abs(ref.grad[n]);
        check(e <= 1e-8, "warm start: gradient of layer " + std::to_string(n) + " off by " +
                             std::to_string(e));
      }
    }
  }
  check(iters[0][1][0] == iters[0][0][0] && iters[0][1][1] == iters[0][0][1],
        "without warm_start, a repeated solve takes the same iterations");
  check(iters[1][1][0] < iters[1][0][0] && iters[1][1][1] < iters[1][0][1],
        "with warm_start, a repeated solve takes fewer iterations");
  if (rank == 0) {
    std::printf("%-18s forward iterations cold %d, %d; warm %d, %d (adjoint warm %d, %d)\n",
                p.name, iters[0][0][0], iters[0][1][0], iters[1][0][0], iters[1][1][0],
                iters[1][0][1], iters[1][1][1]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  try {
    std::vector<Problem> problems = {
        {"dense/tanh", rn::Dense(4), rn::Activation::tanh, 64, 3, 1.0, mgrit(3, 4, 1)},
        {"dense/relu", rn::Dense(5), rn::Activation::relu, 48, 4, 1.5, mgrit(4, 2, 0)},
        {"dense/smoothrelu", rn::Dense(3), rn::Activation::smoothrelu, 40, 2, 1.0,
         mgrit(2, 2, 1)},
        {"conv/smoothrelu", rn::Conv(2, 3, 3, 3), rn::Activation::smoothrelu, 32, 2, 1.0,
         mgrit(3, 2, 1)},
        {"conv/tanh", rn::Conv(2, 4, 3, 3), rn::Activation::tanh, 32, 2, 1.0, mgrit(2, 4, 2)},
    };
    // Spatial coarsening: coarse levels compute on halved images (once; twice, down to 2x1),
    // and with low-resolution coarse states (which need FCF relaxation).
    rn::SolverOptions spatial1 = mgrit(3, 2, 1), spatial2 = mgrit(4, 2, 0),
                      states1 = mgrit(3, 2, 1);
    spatial1.spatial_coarsen = 1;
    spatial2.spatial_coarsen = 2;
    states1.spatial_coarsen = 1;
    states1.spatial_states = true;
    problems.push_back({"conv/tanh spatial 1", rn::Conv(2, 4, 6, 3), rn::Activation::tanh, 32,
                        2, 1.0, spatial1});
    problems.push_back({"conv/tanh spatial 2", rn::Conv(3, 8, 4, 3), rn::Activation::tanh, 32,
                        2, 1.0, spatial2});
    problems.push_back({"conv/tanh states 1", rn::Conv(2, 4, 6, 3), rn::Activation::tanh, 32, 2,
                        1.0, states1});
    for (const Problem& p : problems) test_problem(p);
    // N = 3: with 4 ranks rank 0 owns no layer, and every adjoint layer is another rank's.
    rn::SolverOptions short_mgrit = mgrit(2, 2, 1);
    short_mgrit.min_coarse = 1;
    test_problem({"dense/tanh N=3", rn::Dense(3), rn::Activation::tanh, 3, 2, 1.0, short_mgrit});
    test_warm_start();
    test_profile_times();
    test_errors();
    test_interrupt();
  } catch (const std::exception& e) {
    check(false, std::string("unexpected exception: ") + e.what());
  }
  int mine = lbtest::failures(), total = 0;
  MPI_Allreduce(&mine, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) {
    if (total == 0) std::printf("resnet_propagation (%d ranks): all checks passed\n", size);
    else std::printf("resnet_propagation (%d ranks): %d check(s) failed\n", size, total);
  }
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
