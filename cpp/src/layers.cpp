// Dense and convolutional residual layers: forward and adjoint steps, and their workspace.
//
// Each step is the sequence of operations of python/layerbraid/nn/layers.py (same products,
// same element-wise passes, same order), with the matrix products done by the BLAS gemm.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "blas.hpp"
#include "check.hpp"
#include "layerbraid/resnet.hpp"

#ifndef LAYERBRAID_BLAS_DESCRIPTION
#define LAYERBRAID_BLAS_DESCRIPTION "unknown BLAS"
#endif

namespace layerbraid::resnet {

using detail::blas_int;
using detail::checked_mul;
using detail::require_positive;
using detail::require_scratch;
using detail::require_size;

const char* blas_description() { return LAYERBRAID_BLAS_DESCRIPTION; }

bool set_blas_threads(int threads) {
  if (threads < 1) {
    throw std::invalid_argument("set_blas_threads: threads=" + std::to_string(threads) +
                                " must be >= 1");
  }
#if LAYERBRAID_BLAS_HAS_THREADS
  LAYERBRAID_CBLAS(openblas_set_num_threads)(threads);
  return true;
#else
  return false;
#endif
}

int blas_threads() {
#if LAYERBRAID_BLAS_HAS_THREADS
  return LAYERBRAID_CBLAS(openblas_get_num_threads)();
#else
  return -1;
#endif
}

void use_one_blas_thread_per_rank() {
  // The user's choice, where there is one, wins; OpenBLAS has read it at load time.
  for (const char* name : {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}) {
    if (std::getenv(name) != nullptr) return;
  }
  set_blas_threads(1);
}

namespace {

std::string str(std::int64_t v) { return std::to_string(v); }

// Buffers only grow, so a workspace keeps serving smaller batches without reallocating.
template <class T>
void grow(std::vector<T>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
}

// The common checks of a step's state, parameters and optional outputs.
// state_text: a callable giving the expected state size's text (built only on failure).
template <class T, class Text>
void check_forward(const char* who, std::size_t state, const Text& state_text,
                   std::size_t weight_size, std::size_t bias_size, Span<T> u, CSpan<T> weight,
                   CSpan<T> bias, Span<T> cache_u, Span<T> cache_deriv) {
  require_size(who, "u", u.size(), state, state_text);
  require_size(who, "weight", weight.size(), weight_size, "the layer's weight_size()");
  require_size(who, "bias", bias.size(), bias_size, "the layer's bias_size()");
  if (!cache_u.empty()) require_size(who, "cache_u", cache_u.size(), state, "u's size");
  if (!cache_deriv.empty())
    require_size(who, "cache_deriv", cache_deriv.size(), state, "u's size");
}

template <class T, class Text>
bool check_adjoint(const char* who, std::size_t state, const Text& state_text,
                   std::size_t weight_size, std::size_t bias_size, Span<T> lam, CSpan<T> weight,
                   CSpan<T> deriv, CSpan<T> u_in, Span<T> grad_weight, Span<T> grad_bias) {
  require_size(who, "lam", lam.size(), state, state_text);
  require_size(who, "weight", weight.size(), weight_size, "the layer's weight_size()");
  require_size(who, "deriv", deriv.size(), state, "lam's size");
  const int given = int(!u_in.empty()) + int(!grad_weight.empty()) + int(!grad_bias.empty());
  if (given == 0) return false;
  if (given != 3) {
    throw std::invalid_argument(
        std::string(who) + ": parameter gradients need u_in, grad_weight and grad_bias together; "
        "got u_in of " + std::to_string(u_in.size()) + ", grad_weight of " +
        std::to_string(grad_weight.size()) + " and grad_bias of " +
        std::to_string(grad_bias.size()) + " elements (0 = not given)");
  }
  require_size(who, "u_in", u_in.size(), state, "lam's size");
  require_size(who, "grad_weight", grad_weight.size(), weight_size, "the layer's weight_size()");
  require_size(who, "grad_bias", grad_bias.size(), bias_size, "the layer's bias_size()");
  return true;
}

// grad_bias <- sum over rows of g (rows x channels), row after row.
template <class T>
void sum_rows(const T* g, std::size_t rows, std::size_t channels, T* out) {
  std::fill(out, out + channels, T(0));
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < channels; ++c) out[c] += g[r * channels + c];
}

template <class T>
void add_to(Span<T> lam, const T* z) {
  for (std::size_t i = 0; i < lam.size(); ++i) lam[i] += z[i];
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Dense
// ------------------------------------------------------------------------------------------
Dense::Dense(std::int64_t width) : width_(width) {
  require_positive("Dense", "width", width);
  blas_int(static_cast<std::size_t>(width), "Dense width");
}

std::size_t Dense::state_size(std::int64_t batch) const {
  require_positive("Dense::state_size", "batch", batch);
  return checked_mul("Dense::state_size", static_cast<std::size_t>(batch),
                     static_cast<std::size_t>(width_));
}

template <class T>
void Workspace<T>::reserve(const Dense& layer, std::int64_t batch) {
  const std::size_t n = layer.state_size(batch);
  grow(z, n);
  grow(g, n);
}

template <class T>
void Dense::forward(Span<T> u, std::int64_t batch, CSpan<T> weight, CSpan<T> bias, double dt,
                    Activation act, Workspace<T>& work, Span<T> cache_u,
                    Span<T> cache_deriv) const {
  constexpr const char* who = "Dense::forward";
  require_positive(who, "batch", batch);
  const std::size_t n = state_size(batch);
  check_forward(who, n, [&] { return "batch*width = " + str(batch) + "*" + str(width_); },
                weight_size(), bias_size(), u, weight, bias, cache_u, cache_deriv);
  require_scratch(who, "z", work.z.size(), n, batch);
  const int rows = blas_int(static_cast<std::size_t>(batch), "batch");
  const int w = static_cast<int>(width_);

  detail::gemm(false, true, rows, w, w, u.data(), weight.data(), work.z.data());  // z = u W^T
  if (!cache_u.empty()) std::memcpy(cache_u.data(), u.data(), n * sizeof(T));
  residual_update<T>(act, Span<T>(work.z.data(), n), bias, u, dt, cache_deriv);
}

template <class T>
void Dense::adjoint(Span<T> lam, std::int64_t batch, CSpan<T> weight, double dt, CSpan<T> deriv,
                    Workspace<T>& work, CSpan<T> u_in, Span<T> grad_weight,
                    Span<T> grad_bias) const {
  constexpr const char* who = "Dense::adjoint";
  require_positive(who, "batch", batch);
  const std::size_t n = state_size(batch);
  const bool grads = check_adjoint(
      who, n, [&] { return "batch*width = " + str(batch) + "*" + str(width_); }, weight_size(),
      bias_size(), lam, weight, deriv, u_in, grad_weight, grad_bias);
  require_scratch(who, "z", work.z.size(), n, batch);
  require_scratch(who, "g", work.g.size(), n, batch);
  const int rows = blas_int(static_cast<std::size_t>(batch), "batch");
  const int w = static_cast<int>(width_);

  scaled_product<T>(deriv, lam, dt, Span<T>(work.g.data(), n));           // g = dt sigma' lam
  detail::gemm(false, false, rows, w, w, work.g.data(), weight.data(), work.z.data());  // g W
  if (grads) {
    detail::gemm(true, false, w, w, rows, work.g.data(), u_in.data(), grad_weight.data());
    sum_rows(work.g.data(), static_cast<std::size_t>(batch), bias_size(), grad_bias.data());
  }
  add_to(lam, work.z.data());
}

// ------------------------------------------------------------------------------------------
// Conv
// ------------------------------------------------------------------------------------------
Conv::Conv(std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t kernel)
    : channels_(channels), height_(height), width_(width), kernel_(kernel) {
  require_positive("Conv", "channels", channels);
  require_positive("Conv", "height", height);
  require_positive("Conv", "width", width);
  require_positive("Conv", "kernel", kernel);
  if (kernel % 2 == 0) {
    throw std::invalid_argument("Conv: kernel=" + str(kernel) +
                                " is even; same padding needs an odd kernel size (1, 3, 5, ...)");
  }
  // One image's sizes and the kernel matrix must fit the BLAS's integers; the batch is
  // checked per step.
  const std::size_t k2c = checked_mul(
      "Conv", checked_mul("Conv", static_cast<std::size_t>(kernel), static_cast<std::size_t>(kernel)),
      static_cast<std::size_t>(channels));
  blas_int(k2c, "Conv kernel*kernel*channels");
  blas_int(checked_mul("Conv", static_cast<std::size_t>(height), static_cast<std::size_t>(width)),
           "Conv height*width");
}

std::size_t Conv::state_size(std::int64_t batch) const {
  constexpr const char* who = "Conv::state_size";
  require_positive(who, "batch", batch);
  return checked_mul(who, checked_mul(who, static_cast<std::size_t>(batch),
                                      static_cast<std::size_t>(height_ * width_)),
                     static_cast<std::size_t>(channels_));
}

template <class T>
void Workspace<T>::reserve(const Conv& layer, std::int64_t batch) {
  constexpr const char* who = "Workspace::reserve";
  const std::size_t n = layer.state_size(batch);
  const std::size_t k = static_cast<std::size_t>(layer.kernel_size());
  const std::size_t p = k / 2;
  const std::size_t c = static_cast<std::size_t>(layer.channels());
  grow(z, n);
  grow(g, n);
  grow(padded, checked_mul(who, checked_mul(who, static_cast<std::size_t>(batch),
                                            (static_cast<std::size_t>(layer.height()) + 2 * p) *
                                                (static_cast<std::size_t>(layer.width()) + 2 * p)),
                           c));
  grow(cols, checked_mul(who, n, k * k));
  grow(kmat, c * c * k * k);
}

namespace {

// Geometry of one conv step, in size_t.
struct ConvShape {
  std::size_t batch, h, w, c, k, p;
  std::size_t hp() const { return h + 2 * p; }
  std::size_t wp() const { return w + 2 * p; }
  std::size_t rows() const { return batch * h * w; }  // im2col rows (b, y, x)
  std::size_t kcols() const { return k * k * c; }     // im2col columns (dy, dx, c)
};

// work.cols <- the k x k neighbourhoods of every pixel of src (NHWC), through work.padded,
// whose zero border is (re)made here when the shape changed since its last use.
template <class T>
void im2col(const ConvShape& s, const T* src, Workspace<T>& work) {
  const std::int64_t shape[5] = {std::int64_t(s.batch), std::int64_t(s.h), std::int64_t(s.w),
                                 std::int64_t(s.c), std::int64_t(s.p)};
  if (!std::equal(shape, shape + 5, work.padded_shape)) {
    std::fill(work.padded.begin(), work.padded.begin() + s.batch * s.hp() * s.wp() * s.c, T(0));
    std::copy(shape, shape + 5, work.padded_shape);
  }
  T* padded = work.padded.data();
  const std::size_t row = s.w * s.c;  // one image row of src
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t y = 0; y < s.h; ++y)
      std::memcpy(padded + ((b * s.hp() + y + s.p) * s.wp() + s.p) * s.c,
                  src + (b * s.h + y) * row, row * sizeof(T));
  T* cols = work.cols.data();
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t y = 0; y < s.h; ++y)
      for (std::size_t x = 0; x < s.w; ++x)
        for (std::size_t dy = 0; dy < s.k; ++dy) {
          // The k neighbours (dx = 0..k-1) of one kernel row are contiguous in padded.
          const T* from = padded + ((b * s.hp() + y + dy) * s.wp() + x) * s.c;
          std::memcpy(cols, from, s.k * s.c * sizeof(T));
          cols += s.k * s.c;
        }
}

// kmat (C_out, k k C_in) <- the kernel (C_out, C_in, k, k) as a matrix matching the im2col
// columns; flipped: the kernel of the transposed convolution, W[b, a, k-1-dy, k-1-dx] at [a, b, dy, dx].
template <class T>
void kernel_matrix(const ConvShape& s, const T* weight, bool flipped, T* kmat) {
  const std::size_t k = s.k, c = s.c;
  for (std::size_t o = 0; o < c; ++o)
    for (std::size_t i = 0; i < c; ++i)
      for (std::size_t dy = 0; dy < k; ++dy)
        for (std::size_t dx = 0; dx < k; ++dx) {
          const std::size_t src = flipped ? ((i * c + o) * k + (k - 1 - dy)) * k + (k - 1 - dx)
                                          : ((o * c + i) * k + dy) * k + dx;
          kmat[o * s.kcols() + (dy * k + dx) * c + i] = weight[src];
        }
}

}  // namespace

template <class T>
void Conv::forward(Span<T> u, std::int64_t batch, CSpan<T> weight, CSpan<T> bias, double dt,
                   Activation act, Workspace<T>& work, Span<T> cache_u,
                   Span<T> cache_deriv) const {
  constexpr const char* who = "Conv::forward";
  require_positive(who, "batch", batch);
  const std::size_t n = state_size(batch);
  const auto state_text = [&] {
    return "batch*height*width*channels = " + str(batch) + "*" + str(height_) + "*" +
           str(width_) + "*" + str(channels_);
  };
  check_forward(who, n, state_text, weight_size(), bias_size(), u, weight, bias, cache_u,
                cache_deriv);
  const ConvShape s{static_cast<std::size_t>(batch), std::size_t(height_), std::size_t(width_),
                    std::size_t(channels_), std::size_t(kernel_), std::size_t(kernel_ / 2)};
  require_scratch(who, "z", work.z.size(), n, batch);
  require_scratch(who, "padded", work.padded.size(), s.batch * s.hp() * s.wp() * s.c, batch);
  require_scratch(who, "cols", work.cols.size(), s.rows() * s.kcols(), batch);
  require_scratch(who, "kmat", work.kmat.size(), s.c * s.kcols(), batch);
  const int rows = blas_int(s.rows(), "batch*height*width");

  im2col(s, u.data(), work);
  kernel_matrix(s, weight.data(), false, work.kmat.data());
  // z (rows x C) = cols (rows x k k C) kmat^T
  detail::gemm(false, true, rows, int(s.c), int(s.kcols()), work.cols.data(), work.kmat.data(),
               work.z.data());
  if (!cache_u.empty()) std::memcpy(cache_u.data(), u.data(), n * sizeof(T));
  residual_update<T>(act, Span<T>(work.z.data(), n), bias, u, dt, cache_deriv);
}

template <class T>
void Conv::adjoint(Span<T> lam, std::int64_t batch, CSpan<T> weight, double dt, CSpan<T> deriv,
                   Workspace<T>& work, CSpan<T> u_in, Span<T> grad_weight,
                   Span<T> grad_bias) const {
  constexpr const char* who = "Conv::adjoint";
  require_positive(who, "batch", batch);
  const std::size_t n = state_size(batch);
  const auto state_text = [&] {
    return "batch*height*width*channels = " + str(batch) + "*" + str(height_) + "*" +
           str(width_) + "*" + str(channels_);
  };
  const bool grads = check_adjoint(who, n, state_text, weight_size(), bias_size(), lam, weight,
                                   deriv, u_in, grad_weight, grad_bias);
  const ConvShape s{static_cast<std::size_t>(batch), std::size_t(height_), std::size_t(width_),
                    std::size_t(channels_), std::size_t(kernel_), std::size_t(kernel_ / 2)};
  require_scratch(who, "z", work.z.size(), n, batch);
  require_scratch(who, "g", work.g.size(), n, batch);
  require_scratch(who, "padded", work.padded.size(), s.batch * s.hp() * s.wp() * s.c, batch);
  require_scratch(who, "cols", work.cols.size(), s.rows() * s.kcols(), batch);
  require_scratch(who, "kmat", work.kmat.size(), s.c * s.kcols(), batch);
  const int rows = blas_int(s.rows(), "batch*height*width");
  const int c = int(s.c), kc = int(s.kcols());

  scaled_product<T>(deriv, lam, dt, Span<T>(work.g.data(), n));  // g = dt sigma' lam
  if (grads) {
    // dk (C_out x k k C_in) = g^T im2col(u_in), then back to (C_out, C_in, k, k).
    im2col(s, u_in.data(), work);
    detail::gemm(true, false, c, kc, rows, work.g.data(), work.cols.data(), work.kmat.data());
    const std::size_t k = s.k;
    for (std::size_t o = 0; o < s.c; ++o)
      for (std::size_t i = 0; i < s.c; ++i)
        for (std::size_t dy = 0; dy < k; ++dy)
          for (std::size_t dx = 0; dx < k; ++dx)
            grad_weight[((o * s.c + i) * k + dy) * k + dx] =
                work.kmat[o * s.kcols() + (dy * k + dx) * s.c + i];
    sum_rows(work.g.data(), s.rows(), s.c, grad_bias.data());
  }
  // The transposed convolution is the convolution of g with the flipped, transposed kernel.
  im2col(s, work.g.data(), work);
  kernel_matrix(s, weight.data(), true, work.kmat.data());
  detail::gemm(false, true, rows, c, kc, work.cols.data(), work.kmat.data(), work.z.data());
  add_to(lam, work.z.data());
}

// ------------------------------------------------------------------------------------------
// Instantiations: double and float.
// ------------------------------------------------------------------------------------------
#define LAYERBRAID_RESNET_INSTANTIATE(T)                                                       \
  template class Workspace<T>;                                                                 \
  template void Dense::forward<T>(Span<T>, std::int64_t, CSpan<T>, CSpan<T>, double,           \
                                  Activation, Workspace<T>&, Span<T>, Span<T>) const;          \
  template void Dense::adjoint<T>(Span<T>, std::int64_t, CSpan<T>, double, CSpan<T>,           \
                                  Workspace<T>&, CSpan<T>, Span<T>, Span<T>) const;            \
  template void Conv::forward<T>(Span<T>, std::int64_t, CSpan<T>, CSpan<T>, double,            \
                                 Activation, Workspace<T>&, Span<T>, Span<T>) const;           \
  template void Conv::adjoint<T>(Span<T>, std::int64_t, CSpan<T>, double, CSpan<T>,            \
                                 Workspace<T>&, CSpan<T>, Span<T>, Span<T>) const;

LAYERBRAID_RESNET_INSTANTIATE(double)
LAYERBRAID_RESNET_INSTANTIATE(float)

}  // namespace layerbraid::resnet
