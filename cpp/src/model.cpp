// The model ends (dense opening, classifier) and the Network that ties them to Propagation
// over MPI (see resnet_model.hpp). The products run on the BLAS gemm, the element-wise passes
// as in python/layerbraid/nn/openings.py and classifier.py.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <variant>

#include "blas.hpp"
#include "check.hpp"
#include "layerbraid/resnet_model.hpp"
#include "mpi_types.hpp"

namespace layerbraid::resnet {

using detail::blas_int;
using detail::checked_mul;
using detail::require_positive;
using detail::require_size;

namespace {

std::string str(std::int64_t v) { return std::to_string(v); }

// out[j] = sum over the rows of m (rows x cols, row-major) of m[row][j].
template <class T>
void column_sums(const T* m, std::size_t rows, std::size_t cols, T* out) {
  std::fill(out, out + cols, T(0));
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < cols; ++j) out[j] += m[r * cols + j];
}

// The state entries of one sample of a residual layer.
std::int64_t layer_features(const Layer& layer) {
  return std::visit([](const auto& l) { return l.features(); }, layer);
}

}  // namespace

// ------------------------------------------------------------------------------------------
// DenseOpening
// ------------------------------------------------------------------------------------------
DenseOpening::DenseOpening(std::int64_t in_features, std::int64_t width)
    : in_features_(in_features), width_(width) {
  require_positive("DenseOpening", "in_features", in_features);
  require_positive("DenseOpening", "width", width);
  // weight_size() is then safe
  checked_mul("DenseOpening", static_cast<std::size_t>(width),
              static_cast<std::size_t>(in_features));
}

std::size_t DenseOpening::weight_size() const noexcept {
  return static_cast<std::size_t>(width_) * static_cast<std::size_t>(in_features_);
}

template <class T>
void DenseOpening::forward(CSpan<T> x, std::int64_t batch, CSpan<T> weight, CSpan<T> bias,
                           Activation act, Span<T> u0, Span<T> deriv) const {
  constexpr const char* who = "DenseOpening::forward";
  require_positive(who, "batch", batch);
  const std::size_t rows = static_cast<std::size_t>(batch), w = bias_size();
  const std::size_t n = checked_mul(who, rows, w);
  require_size(who, "x", x.size(), checked_mul(who, rows, std::size_t(in_features_)),
               "batch*in_features");
  require_size(who, "weight", weight.size(), weight_size(), "width*in_features");
  require_size(who, "bias", bias.size(), w, "width");
  require_size(who, "u0", u0.size(), n, "batch*width");
  if (!deriv.empty()) require_size(who, "deriv", deriv.size(), n, "batch*width");

  detail::gemm(false, true, blas_int(rows, "batch"), int(w), int(in_features_), x.data(),
               weight.data(), u0.data());  // z = x W^T
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < w; ++j) {
      const T z = u0[r * w + j] + bias[j];
      u0[r * w + j] = activation_value(act, z);
      if (!deriv.empty()) deriv[r * w + j] = activation_derivative(act, z);
    }
}

template <class T>
void DenseOpening::adjoint(Span<T> lambda0, CSpan<T> x, std::int64_t batch, CSpan<T> deriv,
                           Span<T> grad_weight, Span<T> grad_bias) const {
  constexpr const char* who = "DenseOpening::adjoint";
  require_positive(who, "batch", batch);
  const std::size_t rows = static_cast<std::size_t>(batch), w = bias_size();
  const std::size_t n = checked_mul(who, rows, w);
  require_size(who, "lambda0", lambda0.size(), n, "batch*width");
  require_size(who, "x", x.size(), checked_mul(who, rows, std::size_t(in_features_)),
               "batch*in_features");
  require_size(who, "deriv", deriv.size(), n, "batch*width");
  require_size(who, "grad_weight", grad_weight.size(), weight_size(), "width*in_features");
  require_size(who, "grad_bias", grad_bias.size(), w, "width");

  for (std::size_t i = 0; i < n; ++i) lambda0[i] *= deriv[i];  // g = sigma'(z) (.) lambda0
  detail::gemm(true, false, int(w), int(in_features_), blas_int(rows, "batch"), lambda0.data(),
               x.data(), grad_weight.data());  // g^T x
  column_sums(lambda0.data(), rows, w, grad_bias.data());
}

// ------------------------------------------------------------------------------------------
// Classifier
// ------------------------------------------------------------------------------------------
Classifier::Classifier(std::int64_t features, std::int64_t classes)
    : features_(features), classes_(classes) {
  require_positive("Classifier", "features", features);
  if (classes < 2) {
    throw std::invalid_argument("Classifier: classes=" + str(classes) + " must be >= 2");
  }
  // weight_size() is then safe
  checked_mul("Classifier", static_cast<std::size_t>(classes),
              static_cast<std::size_t>(features));
}

std::size_t Classifier::weight_size() const noexcept {
  return static_cast<std::size_t>(classes_) * static_cast<std::size_t>(features_);
}

template <class T>
void Classifier::scores(CSpan<T> u, std::int64_t batch, CSpan<T> weight, CSpan<T> bias,
                        Span<T> scores) const {
  constexpr const char* who = "Classifier::scores";
  require_positive(who, "batch", batch);
  const std::size_t rows = static_cast<std::size_t>(batch), c = bias_size();
  require_size(who, "u", u.size(), checked_mul(who, rows, std::size_t(features_)),
               "batch*features");
  require_size(who, "weight", weight.size(), weight_size(), "classes*features");
  require_size(who, "bias", bias.size(), c, "classes");
  require_size(who, "scores", scores.size(), checked_mul(who, rows, c), "batch*classes");

  detail::gemm(false, true, blas_int(rows, "batch"), int(c), int(features_), u.data(),
               weight.data(), scores.data());  // u W^T
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < c; ++j) scores[r * c + j] += bias[j];
}

template <class T>
ClassifierResult Classifier::loss(Span<T> scores, CSpan<std::int64_t> labels,
                                  std::int64_t batch) const {
  constexpr const char* who = "Classifier::loss";
  require_positive(who, "batch", batch);
  const std::size_t rows = static_cast<std::size_t>(batch), c = bias_size();
  require_size(who, "scores", scores.size(), checked_mul(who, rows, c), "batch*classes");
  require_size(who, "labels", labels.size(), rows, "batch");
  for (std::size_t r = 0; r < rows; ++r) {
    if (labels[r] < 0 || labels[r] >= classes_) {
      throw std::invalid_argument(std::string(who) + ": labels[" + str(std::int64_t(r)) +
                                  "]=" + str(labels[r]) + " is not a class; classes are 0 to " +
                                  str(classes_ - 1));
    }
  }

  ClassifierResult result;
  double total = 0;
  const T inv_batch = T(1) / T(batch);
  for (std::size_t r = 0; r < rows; ++r) {
    T* row = scores.data() + r * c;
    const std::size_t best = static_cast<std::size_t>(std::max_element(row, row + c) - row);
    const T top = row[best];
    T sum = 0;
    for (std::size_t j = 0; j < c; ++j) sum += std::exp(row[j] - top);
    const T log_norm = std::log(sum);
    const std::size_t label = static_cast<std::size_t>(labels[r]);
    total -= double(row[label] - top - log_norm);
    if (best == label) ++result.correct;
    // dLoss/dscores = (softmax - onehot(label)) / batch
    for (std::size_t j = 0; j < c; ++j) {
      T p = std::exp(row[j] - top - log_norm);
      if (j == label) p -= T(1);
      row[j] = p * inv_batch;
    }
  }
  result.loss = total / double(batch);
  return result;
}

template <class T>
void Classifier::adjoint(CSpan<T> dscores, CSpan<T> u, std::int64_t batch, CSpan<T> weight,
                         Span<T> lambda, Span<T> grad_weight, Span<T> grad_bias) const {
  constexpr const char* who = "Classifier::adjoint";
  require_positive(who, "batch", batch);
  const std::size_t rows = static_cast<std::size_t>(batch), c = bias_size();
  const std::size_t n = checked_mul(who, rows, std::size_t(features_));
  require_size(who, "dscores", dscores.size(), checked_mul(who, rows, c), "batch*classes");
  require_size(who, "u", u.size(), n, "batch*features");
  require_size(who, "weight", weight.size(), weight_size(), "classes*features");
  require_size(who, "lambda", lambda.size(), n, "batch*features");
  require_size(who, "grad_weight", grad_weight.size(), weight_size(), "classes*features");
  require_size(who, "grad_bias", grad_bias.size(), c, "classes");

  const int m = blas_int(rows, "batch"), f = int(features_);
  detail::gemm(false, false, m, f, int(c), dscores.data(), weight.data(), lambda.data());
  detail::gemm(true, false, int(c), f, m, dscores.data(), u.data(), grad_weight.data());
  column_sums(dscores.data(), rows, c, grad_bias.data());
}

// ------------------------------------------------------------------------------------------
// NetworkParameters
// ------------------------------------------------------------------------------------------
template <class T>
std::vector<Span<T>> NetworkParameters<T>::parts() {
  return {Span<T>(opening_weight), Span<T>(opening_bias), layers.values(),
          Span<T>(classifier_weight), Span<T>(classifier_bias)};
}

template <class T>
std::vector<CSpan<T>> NetworkParameters<T>::parts() const {
  return {CSpan<T>(opening_weight), CSpan<T>(opening_bias), layers.values(),
          CSpan<T>(classifier_weight), CSpan<T>(classifier_bias)};
}

// ------------------------------------------------------------------------------------------
// Network
// ------------------------------------------------------------------------------------------
namespace {

// Every rank learns whether any rank's check failed; then all throw the lowest failing rank's
// message, so that no rank is left waiting in a collective call.
void agree(MPI_Comm comm, const std::string& local_error) {
  int size = 0, rank = 0;
  MPI_Comm_size(comm, &size);
  MPI_Comm_rank(comm, &rank);
  int mine = local_error.empty() ? size : rank, first = size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return;
  std::string text = local_error;
  int len = static_cast<int>(text.size());
  MPI_Bcast(&len, 1, MPI_INT, first, comm);
  text.resize(static_cast<std::size_t>(len));
  MPI_Bcast(text.data(), len, MPI_CHAR, first, comm);
  if (first != rank) text += " (on rank " + str(first) + ")";
  throw std::invalid_argument(text);
}

// Normal deviates of one part of the initial parameters. std::seed_seq, std::mt19937_64 and
// Box-Muller are fully specified (std::normal_distribution is not), so the values are the
// same with every standard library.
class NormalStream {
 public:
  NormalStream(std::uint64_t seed, std::uint32_t part, std::uint32_t index) {
    std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                      part, index};
    rng_.seed(seq);
  }

  template <class T>
  void fill(std::vector<T>& out, std::size_t n, double std_dev) {
    out.resize(n);
    for (auto& v : out) v = static_cast<T>(std_dev * next());
  }

 private:
  double next() {
    const double pi = 3.14159265358979323846;
    const double u1 = (double(rng_() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]: log(u1) is finite
    const double u2 = double(rng_() >> 11) * 0x1.0p-53;          // [0, 1)
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * pi * u2);
  }
  std::mt19937_64 rng_;
};

// The streams' part tags (as python/layerbraid/nn/network.py numbers them).
enum : std::uint32_t { part_opening = 0, part_layer = 1, part_anchors = 2, part_classifier = 3 };

}  // namespace

template <class T>
struct Network<T>::Impl {
  DenseOpening opening;
  Layer layer;
  Activation act;
  int depth;
  double final_time;
  Classifier classifier;
  SolverOptions forward_options, adjoint_options;
  Layout layout;
  MPI_Comm comm = MPI_COMM_NULL;
  // One Propagation per batch size, made at its first use.
  std::map<std::int64_t, std::unique_ptr<Propagation<T>>> propagations;
  std::vector<T> u0, deriv0, scores, lambda;  // reused between calls
  Regularization reg;
  std::vector<T> before, after;  // layers first - 1 and end, for the smoothness term

  Impl(const DenseOpening& opening_, const Layer& layer_, Activation act_, int depth_,
       double final_time_, const Classifier& classifier_, const SolverOptions& fwd,
       const SolverOptions& adj, const Layout& layout_, MPI_Comm comm_)
      : opening(opening_), layer(layer_), act(act_), depth(depth_), final_time(final_time_),
        classifier(classifier_), forward_options(fwd), adjoint_options(adj), layout(layout_) {
    if (MPI_Comm_dup(comm_, &comm) != MPI_SUCCESS) {
      throw std::runtime_error("Network: MPI_Comm_dup failed");
    }
  }
  ~Impl() {
    propagations.clear();  // they hold communicators of their own; free ours last
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  std::size_t weight_size() const {
    return std::visit([](const auto& l) { return l.weight_size(); }, layer);
  }
  std::size_t bias_size() const {
    return std::visit([](const auto& l) { return l.bias_size(); }, layer);
  }

  // Empty when `p` has the shapes this rank holds, else the first mismatch.
  std::string check_parameters(const std::string& who, const NetworkParameters<T>& p) const {
    const bool first = layout.has_first_point(), last = layout.has_last_point();
    const std::string where = " on rank " + str(layout.rank()) +
                              " (make them with make_parameters() or init_parameters())";
    auto part = [&](const char* name, std::size_t got, std::size_t want) {
      return got == want ? std::string()
                         : who + ": " + name + " has " + str(std::int64_t(got)) +
                               " elements, expected " + str(std::int64_t(want)) + where;
    };
    for (const std::string& e :
         {part("params.opening_weight", p.opening_weight.size(), first ? opening.weight_size() : 0),
          part("params.opening_bias", p.opening_bias.size(), first ? opening.bias_size() : 0),
          part("params.classifier_weight", p.classifier_weight.size(),
               last ? classifier.weight_size() : 0),
          part("params.classifier_bias", p.classifier_bias.size(),
               last ? classifier.bias_size() : 0)}) {
      if (!e.empty()) return e;
    }
    const LayerRange own = layout.owned_layers(), got = p.layers.layers();
    if (got.first != own.first || got.count != own.count ||
        p.layers.weight_size() != weight_size() || p.layers.bias_size() != bias_size()) {
      return who + ": params.layers holds layers [" + str(got.first) + ", " + str(got.end()) +
             ") of weight/bias sizes " + str(std::int64_t(p.layers.weight_size())) + "/" +
             str(std::int64_t(p.layers.bias_size())) + "; expected layers [" + str(own.first) +
             ", " + str(own.end()) + ") of sizes " + str(std::int64_t(weight_size())) + "/" +
             str(std::int64_t(bias_size())) + where;
    }
    return {};
  }

  // Checks the inputs on every rank and agrees on them; the batch size (rank 0's).
  std::int64_t prepare(const std::string& who, const NetworkParameters<T>& params, CSpan<T> x,
                       const CSpan<std::int64_t>* labels) {
    std::string error;
    std::int64_t batch = 0;
    if (layout.has_first_point()) {
      const std::size_t in = static_cast<std::size_t>(opening.in_features());
      if (x.empty() || x.size() % in != 0) {
        error = who + ": x has " + str(std::int64_t(x.size())) +
                " elements, expected batch*in_features = batch*" + str(std::int64_t(in)) +
                " with batch >= 1";
      } else {
        batch = static_cast<std::int64_t>(x.size() / in);
      }
    }
    MPI_Bcast(&batch, 1, MPI_INT64_T, 0, comm);
    if (error.empty()) error = check_parameters(who, params);
    if (error.empty() && labels != nullptr && layout.has_last_point() && batch > 0) {
      if (labels->size() != static_cast<std::size_t>(batch)) {
        error = who + ": labels has " + str(std::int64_t(labels->size())) +
                " elements, expected one per sample of x: batch = " + str(batch);
      }
      for (std::size_t i = 0; error.empty() && i < labels->size(); ++i) {
        const std::int64_t l = (*labels)[i];
        if (l < 0 || l >= classifier.classes()) {
          error = who + ": labels[" + str(std::int64_t(i)) + "]=" + str(l) +
                  " is not a class; classes are 0 to " + str(classifier.classes() - 1);
        }
      }
    }
    agree(comm, error);
    return batch;
  }

  Propagation<T>& propagation(std::int64_t batch) {
    auto it = propagations.find(batch);
    if (it == propagations.end()) {
      it = propagations
               .emplace(batch, std::make_unique<Propagation<T>>(layer, act, depth, final_time,
                                                                 batch, comm, forward_options,
                                                                 adjoint_options))
               .first;
    }
    return *it->second;
  }

  // Opening (rank 0), the forward solve, and the scores on the last rank (into `scores`).
  SolveInfo forward(Propagation<T>& prop, const NetworkParameters<T>& params, CSpan<T> x,
                    std::int64_t batch) {
    const std::size_t n = prop.state_size();
    if (layout.has_first_point()) {
      u0.resize(n);
      deriv0.resize(n);
      opening.forward<T>(x, batch, params.opening_weight, params.opening_bias, act, u0, deriv0);
    }
    SolveInfo info = prop.forward(params.layers, layout.has_first_point() ? CSpan<T>(u0)
                                                                          : CSpan<T>());
    if (layout.has_last_point()) {
      scores.resize(static_cast<std::size_t>(batch) * classifier.bias_size());
      classifier.scores<T>(prop.final_state(), batch, params.classifier_weight,
                           params.classifier_bias, scores);
    }
    return info;
  }

  // ---- regularisers ----

  // Layers own.first - 1 and own.end() from their owners (where they exist; the smoothness
  // term couples each layer to both neighbours). Each rank sends its first layer back and its
  // last layer on, so the messages pair up whatever the layout.
  void exchange_neighbours(const NetworkParameters<T>& p) {
    const LayerRange own = layout.owned_layers();
    const std::size_t nl = weight_size() + bias_size();
    const int count = static_cast<int>(nl);  // Propagation checked that it fits an int
    const MPI_Datatype type = detail::mpi_type<T>();
    enum { tag_on = 21, tag_back = 22 };
    before.assign(nl, T(0));
    after.assign(nl, T(0));
    MPI_Request requests[4];
    int posted = 0;
    if (own.count > 0 && own.first >= 1) {
      const int owner = layout.layer_owner(own.first - 1);
      MPI_Irecv(before.data(), count, type, owner, tag_on, comm, &requests[posted++]);
      MPI_Isend(p.layers.layer(own.first).data(), count, type, owner, tag_back, comm,
                &requests[posted++]);
    }
    if (own.count > 0 && own.end() < depth) {
      const int owner = layout.layer_owner(own.end());
      MPI_Irecv(after.data(), count, type, owner, tag_back, comm, &requests[posted++]);
      MPI_Isend(p.layers.layer(own.end() - 1).data(), count, type, owner, tag_on, comm,
                &requests[posted++]);
    }
    if (MPI_Waitall(posted, requests, MPI_STATUSES_IGNORE) != MPI_SUCCESS) {
      throw std::runtime_error("Network: exchanging neighbouring layers failed");
    }
  }

  static double sqnorm(const T* v, std::size_t n) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += double(v[i]) * double(v[i]);
    return sum;
  }

  // 0.5 gamma |v|^2 onto terms, gamma v into g (when given).
  static void tikhonov(double gamma, CSpan<T> v, T* g, std::vector<double>& terms) {
    if (gamma == 0 || v.empty()) return;
    terms.push_back(0.5 * gamma * sqnorm(v.data(), v.size()));
    if (g) {
      const T c = static_cast<T>(gamma);
      for (std::size_t i = 0; i < v.size(); ++i) g[i] += c * v[i];
    }
  }

  // This rank's regulariser terms in the global order (opening, its layers in order, the
  // classifier), their gradient added into `g` when given. Collective (the neighbour layers).
  std::vector<double> regularization_terms(const NetworkParameters<T>& p,
                                           NetworkParameters<T>* g) {
    std::vector<double> terms;
    const bool first = layout.has_first_point(), last = layout.has_last_point();
    if (first) {
      tikhonov(reg.tikhonov, p.opening_weight, g ? g->opening_weight.data() : nullptr, terms);
      tikhonov(reg.tikhonov, p.opening_bias, g ? g->opening_bias.data() : nullptr, terms);
    }
    if (reg.smoothness != 0) exchange_neighbours(p);
    const double h = final_time / depth, w = reg.smoothness / (h * h);
    const T wt = static_cast<T>(w);
    const LayerRange own = layout.owned_layers();
    const std::size_t nw = weight_size(), nb = bias_size();
    std::vector<T> step;
    for (int n = own.first; n < own.end(); ++n) {
      const T* here = p.layers.layer(n).data();
      const T* prev = n == own.first ? before.data() : p.layers.layer(n - 1).data();
      const T* next = n + 1 == own.end() ? after.data() : p.layers.layer(n + 1).data();
      T* gn = g ? g->layers.layer(n).data() : nullptr;
      for (const auto& [offset, size] : {std::pair{std::size_t(0), nw}, std::pair{nw, nb}}) {
        tikhonov(reg.tikhonov, CSpan<T>(here + offset, size), gn ? gn + offset : nullptr, terms);
        if (w == 0) continue;
        if (n >= 1) {  // the pair (n - 1, n) belongs to layer n
          step.resize(size);
          for (std::size_t i = 0; i < size; ++i) step[i] = here[offset + i] - prev[offset + i];
          terms.push_back(0.5 * w * sqnorm(step.data(), size));
          if (gn)
            for (std::size_t i = 0; i < size; ++i) gn[offset + i] += wt * step[i];
        }
        if (gn && n + 1 < depth) {
          for (std::size_t i = 0; i < size; ++i) {
            gn[offset + i] -= wt * (next[offset + i] - here[offset + i]);
          }
        }
      }
    }
    if (last) {
      tikhonov(reg.classifier, p.classifier_weight, g ? g->classifier_weight.data() : nullptr,
               terms);
      tikhonov(reg.classifier, p.classifier_bias, g ? g->classifier_bias.data() : nullptr,
               terms);
    }
    return terms;
  }

  // The regularisers' value: every rank's terms gathered in rank order, which is the global
  // order for any number of ranks, and summed in that order on every rank.
  double regularization_value(const std::vector<double>& terms) const {
    const int size = layout.size();
    int mine = static_cast<int>(terms.size());
    std::vector<int> counts(static_cast<std::size_t>(size)), offsets(counts.size(), 0);
    MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, comm);
    for (std::size_t r = 1; r < counts.size(); ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
    std::vector<double> all(static_cast<std::size_t>(offsets.back() + counts.back()));
    MPI_Allgatherv(terms.data(), mine, MPI_DOUBLE, all.data(), counts.data(), offsets.data(),
                   MPI_DOUBLE, comm);
    double sum = 0;
    for (double t : all) sum += t;
    return sum;
  }

  bool regularized() const {
    return reg.tikhonov != 0 || reg.classifier != 0 || reg.smoothness != 0;
  }

  // The last rank's result on every rank.
  void share(Evaluation& e) const {
    double v[2] = {e.data_loss, double(e.correct)};  // counts below 2^53 are exact as doubles
    MPI_Bcast(v, 2, MPI_DOUBLE, layout.size() - 1, comm);
    e.data_loss = v[0];
    e.correct = static_cast<std::int64_t>(v[1]);
  }

  // data_loss (shared) plus the regularisers, into e.loss.
  void total(Evaluation& e, const NetworkParameters<T>& params, NetworkParameters<T>* gradient) {
    share(e);
    e.loss = e.data_loss;
    if (regularized()) {
      e.loss = regularization_value(regularization_terms(params, gradient)) + e.data_loss;
    }
  }

  Evaluation loss_and_gradient(const NetworkParameters<T>& params, CSpan<T> x,
                               CSpan<std::int64_t> labels, NetworkParameters<T>& gradient) {
    const std::int64_t batch = prepare("Network::loss_and_gradient", params, x, &labels);
    Propagation<T>& prop = propagation(batch);
    const bool first = layout.has_first_point(), last = layout.has_last_point();
    Evaluation e;
    e.count = batch;
    e.forward = forward(prop, params, x, batch);

    gradient.opening_weight.resize(first ? opening.weight_size() : 0);
    gradient.opening_bias.resize(first ? opening.bias_size() : 0);
    gradient.classifier_weight.resize(last ? classifier.weight_size() : 0);
    gradient.classifier_bias.resize(last ? classifier.bias_size() : 0);
    if (last) {
      const ClassifierResult r = classifier.loss<T>(scores, labels, batch);
      e.data_loss = r.loss;
      e.correct = r.correct;
      lambda.resize(prop.state_size());
      classifier.adjoint<T>(scores, prop.final_state(), batch, params.classifier_weight, lambda,
                            gradient.classifier_weight, gradient.classifier_bias);
    }
    e.adjoint = prop.adjoint(last ? CSpan<T>(lambda) : CSpan<T>());
    if (first) {
      const CSpan<T> lambda0 = prop.initial_adjoint();
      lambda.assign(lambda0.data(), lambda0.data() + lambda0.size());
      opening.adjoint<T>(lambda, x, batch, deriv0, gradient.opening_weight,
                         gradient.opening_bias);
    }
    gradient.layers = prop.gradient();
    total(e, params, &gradient);
    return e;
  }

  Evaluation evaluate(const NetworkParameters<T>& params, CSpan<T> x,
                      CSpan<std::int64_t> labels) {
    const std::int64_t batch = prepare("Network::evaluate", params, x, &labels);
    Propagation<T>& prop = propagation(batch);
    Evaluation e;
    e.count = batch;
    e.forward = forward(prop, params, x, batch);
    if (layout.has_last_point()) {
      const ClassifierResult r = classifier.loss<T>(scores, labels, batch);
      e.data_loss = r.loss;
      e.correct = r.correct;
    }
    total(e, params, nullptr);
    return e;
  }

  std::vector<std::int64_t> predict(const NetworkParameters<T>& params, CSpan<T> x) {
    const std::int64_t batch = prepare("Network::predict", params, x, nullptr);
    Propagation<T>& prop = propagation(batch);
    forward(prop, params, x, batch);
    std::vector<std::int64_t> classes(static_cast<std::size_t>(batch));
    if (layout.has_last_point()) {
      const std::size_t c = classifier.bias_size();
      for (std::size_t r = 0; r < classes.size(); ++r) {
        const T* row = scores.data() + r * c;
        classes[r] = std::max_element(row, row + c) - row;
      }
    }
    // batch fits an int: Propagation checked that batch*features does
    MPI_Bcast(classes.data(), static_cast<int>(batch), MPI_INT64_T, layout.size() - 1, comm);
    return classes;
  }
};

template <class T>
Network<T>::Network(const DenseOpening& opening, const Layer& layer, Activation act, int depth,
                    double final_time, const Classifier& classifier, MPI_Comm comm,
                    const SolverOptions& forward)
    : Network(opening, layer, act, depth, final_time, classifier, comm, forward, forward) {}

template <class T>
Network<T>::Network(const DenseOpening& opening, const Layer& layer, Activation act, int depth,
                    double final_time, const Classifier& classifier, MPI_Comm comm,
                    const SolverOptions& forward, const SolverOptions& adjoint) {
  // Every check here gives the same answer on every rank, so all ranks throw together.
  const std::int64_t features = layer_features(layer);
  if (opening.width() != features) {
    throw std::invalid_argument(
        "Network: the opening's width=" + str(opening.width()) + " must equal the residual "
        "layer's features=" + str(features) +
        " (Dense: width; Conv: channels*height*width, the opening's output read as NHWC)");
  }
  if (classifier.features() != features) {
    throw std::invalid_argument("Network: the classifier's features=" +
                                str(classifier.features()) + " must equal the residual layer's "
                                "features=" + str(features));
  }
  if (depth < 1) throw std::invalid_argument("Network: depth=" + str(depth) + " must be >= 1");
  if (!(final_time > 0) || !std::isfinite(final_time)) {
    throw std::invalid_argument("Network: final_time=" + std::to_string(final_time) +
                                " must be a finite number > 0");
  }
  activation_name(act);  // throws for a value outside the enum
  forward.validate("Network (forward options)");
  adjoint.validate("Network (adjoint options)");
  if (comm == MPI_COMM_NULL) {
    throw std::invalid_argument("Network: comm is MPI_COMM_NULL; pass a communicator");
  }
  int size = 0, rank = 0;
  MPI_Comm_size(comm, &size);
  MPI_Comm_rank(comm, &rank);
  const Layout layout(depth, size, rank);  // throws for more ranks than points
  impl_ = std::make_unique<Impl>(opening, layer, act, depth, final_time, classifier, forward,
                                 adjoint, layout, comm);
}

template <class T>
Network<T>::~Network() = default;
template <class T>
Network<T>::Network(Network&&) noexcept = default;
template <class T>
Network<T>& Network<T>::operator=(Network&&) noexcept = default;

template <class T>
const Layout& Network<T>::layout() const noexcept { return impl_->layout; }
template <class T>
void Network<T>::set_regularization(const Regularization& reg) {
  for (const auto& [name, value] : {std::pair{"tikhonov", reg.tikhonov},
                                    std::pair{"classifier", reg.classifier},
                                    std::pair{"smoothness", reg.smoothness}}) {
    if (!(value >= 0) || !std::isfinite(value)) {
      throw std::invalid_argument(std::string("Network::set_regularization: ") + name + "=" +
                                  std::to_string(value) + " must be a finite number >= 0");
    }
  }
  impl_->reg = reg;
}

template <class T>
const Regularization& Network<T>::regularization() const noexcept { return impl_->reg; }

template <class T>
const DenseOpening& Network<T>::opening() const noexcept { return impl_->opening; }
template <class T>
const Classifier& Network<T>::classifier() const noexcept { return impl_->classifier; }

template <class T>
NetworkParameters<T> Network<T>::make_parameters() const {
  const Impl& m = *impl_;
  NetworkParameters<T> p;
  if (m.layout.has_first_point()) {
    p.opening_weight.assign(m.opening.weight_size(), T(0));
    p.opening_bias.assign(m.opening.bias_size(), T(0));
  }
  p.layers = LayerParameters<T>(m.layout.owned_layers(), m.weight_size(), m.bias_size());
  if (m.layout.has_last_point()) {
    p.classifier_weight.assign(m.classifier.weight_size(), T(0));
    p.classifier_bias.assign(m.classifier.bias_size(), T(0));
  }
  return p;
}

template <class T>
NetworkParameters<T> Network<T>::init_parameters(std::uint64_t seed, LayerInit init,
                                                 double scale) const {
  if (!(scale >= 0) || !std::isfinite(scale)) {
    throw std::invalid_argument("Network::init_parameters: scale=" + std::to_string(scale) +
                                " must be a finite number >= 0");
  }
  if (init != LayerInit::random && init != LayerInit::smooth && init != LayerInit::zero) {
    throw std::invalid_argument("Network::init_parameters: init=" +
                                str(static_cast<int>(init)) +
                                " is not a LayerInit (random, smooth or zero)");
  }
  const Impl& m = *impl_;
  NetworkParameters<T> p = make_parameters();
  if (m.layout.has_first_point()) {
    NormalStream s(seed, part_opening, 0);
    s.fill(p.opening_weight, m.opening.weight_size(),
           1.0 / std::sqrt(double(m.opening.in_features())));
    s.fill(p.opening_bias, m.opening.bias_size(), 0.1);
  }
  const std::size_t nw = m.weight_size(), nb = m.bias_size();
  const double std_w = scale / std::sqrt(double(nw / nb)), std_b = scale / 10;  // fan_in = nw/nb
  std::vector<T> weight, bias, a_weight, a_bias, b_weight, b_bias;
  if (init == LayerInit::smooth) {
    NormalStream s(seed, part_anchors, 0);
    s.fill(a_weight, nw, std_w);
    s.fill(a_bias, nb, std_b);
    s.fill(b_weight, nw, std_w);
    s.fill(b_bias, nb, std_b);
  }
  const LayerRange own = m.layout.owned_layers();
  for (int n = own.first; n < own.end() && init != LayerInit::zero; ++n) {
    if (init == LayerInit::random) {
      NormalStream s(seed, part_layer, static_cast<std::uint32_t>(n));
      s.fill(weight, nw, std_w);
      s.fill(bias, nb, std_b);
    } else {
      const double phase = 3.14159265358979323846 * n / m.depth;
      const T c = T(std::cos(phase)), sn = T(std::sin(phase));
      weight.resize(nw);
      bias.resize(nb);
      for (std::size_t i = 0; i < nw; ++i) weight[i] = c * a_weight[i] + sn * b_weight[i];
      for (std::size_t i = 0; i < nb; ++i) bias[i] = c * a_bias[i] + sn * b_bias[i];
    }
    std::copy(weight.begin(), weight.end(), p.layers.weight(n).data());
    std::copy(bias.begin(), bias.end(), p.layers.bias(n).data());
  }
  if (m.layout.has_last_point()) {
    NormalStream s(seed, part_classifier, 0);
    s.fill(p.classifier_weight, m.classifier.weight_size(),
           1.0 / std::sqrt(double(m.classifier.features())));
  }
  return p;
}

template <class T>
Evaluation Network<T>::loss_and_gradient(const NetworkParameters<T>& params, CSpan<T> x,
                                         CSpan<std::int64_t> labels,
                                         NetworkParameters<T>& gradient) {
  return impl_->loss_and_gradient(params, x, labels, gradient);
}

template <class T>
Evaluation Network<T>::evaluate(const NetworkParameters<T>& params, CSpan<T> x,
                                CSpan<std::int64_t> labels) {
  return impl_->evaluate(params, x, labels);
}

template <class T>
std::vector<std::int64_t> Network<T>::predict(const NetworkParameters<T>& params, CSpan<T> x) {
  return impl_->predict(params, x);
}

#define LAYERBRAID_INSTANTIATE_MODEL(T)                                                       \
  template void DenseOpening::forward<T>(CSpan<T>, std::int64_t, CSpan<T>, CSpan<T>,          \
                                         Activation, Span<T>, Span<T>) const;                 \
  template void DenseOpening::adjoint<T>(Span<T>, CSpan<T>, std::int64_t, CSpan<T>, Span<T>,  \
                                         Span<T>) const;                                      \
  template void Classifier::scores<T>(CSpan<T>, std::int64_t, CSpan<T>, CSpan<T>, Span<T>)   \
      const;                                                                                  \
  template ClassifierResult Classifier::loss<T>(Span<T>, CSpan<std::int64_t>, std::int64_t)   \
      const;                                                                                  \
  template void Classifier::adjoint<T>(CSpan<T>, CSpan<T>, std::int64_t, CSpan<T>, Span<T>,   \
                                       Span<T>, Span<T>) const;                               \
  template struct NetworkParameters<T>;                                                       \
  template class Network<T>;

LAYERBRAID_INSTANTIATE_MODEL(double)
LAYERBRAID_INSTANTIATE_MODEL(float)
#undef LAYERBRAID_INSTANTIATE_MODEL

}  // namespace layerbraid::resnet
