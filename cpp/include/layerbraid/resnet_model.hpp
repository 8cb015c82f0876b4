// layerbraid::resnet: the whole ResNet-ODE classifier for C++ users, layer-parallel over MPI.
//
//     x --DenseOpening--> u_0 --N residual layers (Propagation)--> u_N --Classifier--> loss
//
// This is the C++ twin of python/layerbraid/nn (openings.py DenseOpening, classifier.py,
// network.py's initialisation) tied to resnet_app.hpp's Propagation:
//   - DenseOpening: u_0 = sigma(x W^T + b), W of shape (width, in_features).
//   - Classifier: scores = u_N W^T + b, W of shape (classes, features); the loss is the softmax
//     cross-entropy averaged over the batch; lambda_N = dLoss/du_N starts the adjoint.
//   - Network: the three over the ranks of a communicator. Rank 0 holds the opening (it has
//     u_0 and lambda_0), the last rank the classifier (it has u_N), and every rank the
//     residual layers Layout::owned_layers() gives it. Losses and accuracies are the same on
//     every rank; gradients are those of the parameters a rank holds. Results do not depend on
//     the number of ranks (initial parameters included).
// Double and float are instantiated; losses are accumulated in double either way.
//
// Bad arguments throw std::invalid_argument naming the bad value and what is accepted. The
// Network checks its inputs on every rank and agrees on them before any solve, so a bad
// input on one rank makes every rank throw instead of hanging.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "layerbraid/resnet.hpp"
#include "layerbraid/resnet_app.hpp"

namespace layerbraid::resnet {

// u_0 = sigma(x W^T + b): inputs (batch, in_features) row-major to states (batch, width).
class DenseOpening {
 public:
  DenseOpening(std::int64_t in_features, std::int64_t width);

  std::int64_t in_features() const noexcept { return in_features_; }
  std::int64_t width() const noexcept { return width_; }
  std::size_t weight_size() const noexcept;  // width * in_features
  std::size_t bias_size() const noexcept { return static_cast<std::size_t>(width_); }

  // u0 <- sigma(x W^T + b); with deriv (not empty), deriv <- sigma'(x W^T + b) for adjoint().
  template <class T>
  void forward(CSpan<T> x, std::int64_t batch, CSpan<T> weight, CSpan<T> bias, Activation act,
               Span<T> u0, Span<T> deriv = {}) const;

  // The parameters' gradients from lambda0 = dLoss/du_0: with g = sigma'(z) (.) lambda0,
  // grad_weight = g^T x and grad_bias = the sum of g over the batch. lambda0 is overwritten
  // with g (the opening needs no scratch of its own).
  template <class T>
  void adjoint(Span<T> lambda0, CSpan<T> x, std::int64_t batch, CSpan<T> deriv,
               Span<T> grad_weight, Span<T> grad_bias) const;

 private:
  std::int64_t in_features_, width_;
};

// What Classifier::loss measured on a batch.
struct ClassifierResult {
  double loss = 0;            // mean softmax cross-entropy
  std::int64_t correct = 0;   // samples whose largest score (first of equals) is their label
};

// scores = u W^T + b: states (batch, features) to class scores (batch, classes).
class Classifier {
 public:
  Classifier(std::int64_t features, std::int64_t classes);  // classes >= 2

  std::int64_t features() const noexcept { return features_; }
  std::int64_t classes() const noexcept { return classes_; }
  std::size_t weight_size() const noexcept;  // classes * features
  std::size_t bias_size() const noexcept { return static_cast<std::size_t>(classes_); }

  template <class T>
  void scores(CSpan<T> u, std::int64_t batch, CSpan<T> weight, CSpan<T> bias,
              Span<T> scores) const;

  // The loss and the correct count of `scores` (as scores() wrote them) against labels in
  // [0, classes); scores is overwritten with dLoss/dscores. Softmax is shifted by each row's
  // largest score, so no exponential overflows.
  template <class T>
  ClassifierResult loss(Span<T> scores, CSpan<std::int64_t> labels, std::int64_t batch) const;

  // From dscores (what loss() left in scores): lambda = dscores W = dLoss/du,
  // grad_weight = dscores^T u, grad_bias = the sum of dscores over the batch.
  template <class T>
  void adjoint(CSpan<T> dscores, CSpan<T> u, std::int64_t batch, CSpan<T> weight,
               Span<T> lambda, Span<T> grad_weight, Span<T> grad_bias) const;

 private:
  std::int64_t features_, classes_;
};

// The parameters (or gradients) a rank holds. Parts a rank does not hold are empty.
template <class T>
struct NetworkParameters {
  std::vector<T> opening_weight, opening_bias;        // rank 0
  LayerParameters<T> layers;                          // Layout::owned_layers()
  std::vector<T> classifier_weight, classifier_bias;  // the last rank

  // The five parts in the order above, empty ones included: what an optimiser loops over.
  std::vector<Span<T>> parts();
  std::vector<CSpan<T>> parts() const;
};

// How Network::init_parameters draws the residual layers (python/layerbraid/nn/network.py's
// WEIGHT_INITS); the opening and the classifier are always drawn at random.
enum class LayerInit {
  random,  // independent N(0, scale^2 / fan_in) weights, N(0, (scale / 10)^2) biases per layer
  smooth,  // theta_n = A cos(pi n / N) + B sin(pi n / N), A and B drawn as for random:
           // weights smooth in the layer index, which MGRIT's coarse grids rely on
  zero,    // every residual layer the identity
};

// The regularisers of python/layerbraid/nn/network.py, each weight finite and >= 0 (0: off):
//   tikhonov:   0.5 tikhonov |theta|^2 over the opening's and every residual layer's weights
//               and biases;
//   classifier: 0.5 classifier |theta|^2 over the classifier's;
//   smoothness: 0.5 (smoothness / h^2) |theta_n - theta_{n-1}|^2 over neighbouring residual
//               layers (h = final_time / depth): weights that vary smoothly with the layer,
//               which MGRIT's coarse grids rely on.
struct Regularization {
  double tikhonov = 0, classifier = 0, smoothness = 0;
};

// What a pass over one batch measured; the same on every rank.
struct Evaluation {
  double loss = 0;           // the objective: data_loss plus the regularisers
  double data_loss = 0;      // mean softmax cross-entropy
  std::int64_t correct = 0;  // correctly classified samples
  std::int64_t count = 0;    // samples (the batch size)
  SolveInfo forward, adjoint;  // the solves as this rank's engine reported them (adjoint:
                               // default for evaluate())
  double accuracy() const noexcept { return count > 0 ? double(correct) / double(count) : 0.0; }
};

// The whole classifier, layer-parallel over the ranks of a communicator. All ranks call the
// members that compute (loss_and_gradient, evaluate, predict) together.
//
// Inputs x (batch, in_features) are read on rank 0 only and labels on the last rank only;
// other ranks may pass empty spans. The batch size is rank 0's; every batch size gets its own
// Propagation (caches and, with warm_start, the engine's solution from the last call of that
// size), created at its first use and kept, so use a few sizes (a training batch, a
// validation set), not many.
template <class T>
class Network {
 public:
  // std::invalid_argument when the opening's width is not the residual layer's features()
  // (Dense: width; Conv: channels * height * width, the opening's output read as NHWC), when
  // the classifier's features differ from it, or for what Propagation rejects (depth,
  // final_time, options, more ranks than depth + 1). `adjoint` defaults to the forward options.
  // Collective over comm (duplicates it).
  Network(const DenseOpening& opening, const Layer& layer, Activation act, int depth,
          double final_time, const Classifier& classifier, MPI_Comm comm,
          const SolverOptions& forward = {});
  Network(const DenseOpening& opening, const Layer& layer, Activation act, int depth,
          double final_time, const Classifier& classifier, MPI_Comm comm,
          const SolverOptions& forward, const SolverOptions& adjoint);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;
  Network(Network&&) noexcept;
  Network& operator=(Network&&) noexcept;

  const Layout& layout() const noexcept;
  // The regularisers of loss_and_gradient and evaluate (none by default). Give every rank the
  // same; std::invalid_argument for a negative or non-finite weight.
  void set_regularization(const Regularization& reg);
  const Regularization& regularization() const noexcept;
  const DenseOpening& opening() const noexcept;
  const Classifier& classifier() const noexcept;
  bool has_opening() const noexcept { return layout().has_first_point(); }
  bool has_classifier() const noexcept { return layout().has_last_point(); }

  // Zeros in the shapes this rank holds (also the shape of the gradients).
  NetworkParameters<T> make_parameters() const;
  // Seeded initial parameters of this rank's parts. Every part is drawn from its own stream,
  // derived from (seed, part, layer index), so a layer's values do not depend on the number
  // of ranks, nor on the platform (the generator is std::mt19937_64, the normal deviates
  // Box-Muller). Opening weights N(0, 1 / in_features), biases N(0, 0.01); classifier
  // weights N(0, 1 / features), biases 0; residual layers see LayerInit. scale: finite, >= 0.
  NetworkParameters<T> init_parameters(std::uint64_t seed, LayerInit init = LayerInit::random,
                                       double scale = 1.0) const;

  // Forward and adjoint through the network: the objective and accuracy, and in `gradient`
  // (which is overwritten and reshaped to make_parameters()) the gradient of the objective
  // with respect to this rank's parameters. The objective's terms are summed in one order
  // (opening, layers, classifier, data loss) whatever the number of ranks.
  Evaluation loss_and_gradient(const NetworkParameters<T>& params, CSpan<T> x,
                               CSpan<std::int64_t> labels, NetworkParameters<T>& gradient);
  // The forward pass only: the objective and accuracy.
  Evaluation evaluate(const NetworkParameters<T>& params, CSpan<T> x,
                      CSpan<std::int64_t> labels);
  // The predicted class of every sample (the largest score, first of equals), on every rank.
  std::vector<std::int64_t> predict(const NetworkParameters<T>& params, CSpan<T> x);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

extern template struct NetworkParameters<double>;
extern template struct NetworkParameters<float>;
extern template class Network<double>;
extern template class Network<float>;

}  // namespace layerbraid::resnet
