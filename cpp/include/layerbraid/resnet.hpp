// layerbraid::resnet: the ResNet-ODE residual layers for C++ users, on a real BLAS.
//
// One residual layer is one forward-Euler step of the layer ODE,
//
//     u <- u + dt * sigma(K(theta) u + b),
//
// and its adjoint step lam <- lam + dt * K^T (sigma'(z) (.) lam). The kernels perform the same
// operations, in the same order, as the NumPy reference (python/layerbraid/nn/layers.py and
// backends/numpy_ops.py), so both agree to round-off:
//   - Dense(width): states row-major (batch, width), weight (width, width), bias (width).
//   - Conv(channels, height, width, kernel): states channels-last NHWC (batch, height, width,
//     channels), same zero padding, kernel in PyTorch layout (C_out, C_in, k, k), bias (C);
//     forward by im2col + gemm, adjoint as the convolution with the flipped, transposed kernel.
// Both are instantiated for double and float. A step allocates nothing: scratch lives in a
// Workspace, reserved once per layer shape and batch size (one Workspace per thread).
//
// Bad shapes and names throw std::invalid_argument (std::length_error when a size does not fit
// the BLAS's 32-bit integers), with a message naming the bad value and what was expected.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace layerbraid::resnet {

// ------------------------------------------------------------------------------------------
// Span: a pointer and a length (C++17 has no std::span). An empty span means "not given".
// ------------------------------------------------------------------------------------------
template <class T>
class Span {
 public:
  constexpr Span() noexcept = default;
  constexpr Span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}
  // From a vector of the same (or, for a const span, the non-const) element type.
  template <class V,
            class = std::enable_if_t<std::is_convertible_v<decltype(std::declval<V&>().data()), T*>>>
  Span(V& v) noexcept : data_(v.data()), size_(v.size()) {}  // NOLINT: implicit by design
  // A Span<T> converts to a Span<const T>.
  template <class U, class = std::enable_if_t<std::is_convertible_v<U*, T*>>>
  constexpr Span(Span<U> other) noexcept : data_(other.data()), size_(other.size()) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr std::size_t size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  constexpr T& operator[](std::size_t i) const noexcept { return data_[i]; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

template <class T>
using CSpan = Span<const T>;

// ------------------------------------------------------------------------------------------
// Activations
// ------------------------------------------------------------------------------------------
enum class Activation { tanh, relu, smoothrelu };

// Half-width of SmoothReLU's quadratic blend: 0 below -eta, x above eta,
// x^2/(4 eta) + x/2 + eta/4 in between (value and slope continuous at both ends).
inline constexpr double smooth_relu_eta = 0.1;

// "tanh", "relu", "smoothrelu" (any case); anything else throws std::invalid_argument.
Activation parse_activation(std::string_view name);
const char* activation_name(Activation act);

// sigma(x) and sigma'(x), written plainly (the fused kernels below compute the same values;
// relu'(0) is taken as 0).
template <class T>
T activation_value(Activation act, T x) {
  const T eta = static_cast<T>(smooth_relu_eta);
  switch (act) {
    case Activation::tanh: return std::tanh(x);
    case Activation::relu: return x > T(0) ? x : T(0);
    case Activation::smoothrelu:
      if (x < -eta) return T(0);
      if (x > eta) return x;
      return x * x / (T(4) * eta) + x / T(2) + eta / T(4);
  }
  throw std::invalid_argument("activation_value: activation=" +
                              std::to_string(static_cast<int>(act)) + " is not a valid Activation");
}

template <class T>
T activation_derivative(Activation act, T x) {
  const T eta = static_cast<T>(smooth_relu_eta);
  switch (act) {
    case Activation::tanh: {
      const T t = std::tanh(x);
      return T(1) - t * t;
    }
    case Activation::relu: return x > T(0) ? T(1) : T(0);
    case Activation::smoothrelu:
      if (x < -eta) return T(0);
      if (x > eta) return T(1);
      return x / (T(2) * eta) + T(0.5);
  }
  throw std::invalid_argument("activation_derivative: activation=" +
                              std::to_string(static_cast<int>(act)) + " is not a valid Activation");
}

// The two fused element-wise passes of a step (NumpyOps.residual_update / scaled_product),
// on `rows` rows of `channels` values, bias broadcast along the rows:
//   z <- sigma(z + bias); [deriv <- sigma'(z + bias)]; z <- dt z; u <- u + z
// deriv may be empty (not wanted). z is overwritten (it ends as the step's increment).
template <class T>
void residual_update(Activation act, Span<T> z, CSpan<T> bias, Span<T> u, double dt,
                     Span<T> deriv);
//   out <- (deriv (.) lam) * dt
template <class T>
void scaled_product(CSpan<T> deriv, CSpan<T> lam, double dt, Span<T> out);

// The instruction set residual_update's passes run with: "avx2" or "baseline" (plain x86-64,
// or any non-x86 build). Chosen once per process, at the first call of active_isa() or
// residual_update() (a Propagation calls it when constructed), from the environment
// variable LAYERBRAID_NATIVE_ISA: auto (the default, also when unset or empty:
// AVX2 where the CPU has it), avx2 or baseline (any case). Both give bitwise equal results;
// the variable is there to test and compare them. An unknown value, or avx2 on a CPU (or a
// build) without it, throws std::invalid_argument naming the value, at that call and every
// later one.
const char* active_isa();

// ------------------------------------------------------------------------------------------
// Layers and their scratch
// ------------------------------------------------------------------------------------------
class Dense;
class Conv;

// Scratch of the steps, allocated by reserve() (or the constructors) and never during a step.
// reserve() only grows the buffers, so one Workspace serves every batch size up to the largest
// reserved. Not shared between threads.
template <class T>
class Workspace {
 public:
  Workspace() = default;
  Workspace(const Dense& layer, std::int64_t batch) { reserve(layer, batch); }
  Workspace(const Conv& layer, std::int64_t batch) { reserve(layer, batch); }

  void reserve(const Dense& layer, std::int64_t batch);
  void reserve(const Conv& layer, std::int64_t batch);

  // The buffers, for the kernels (layout described in src/; do not resize them directly).
  std::vector<T> z;       // pre-activation, then the step's increment
  std::vector<T> g;       // dt sigma'(z) (.) lam in the adjoint
  std::vector<T> padded;  // conv: zero-padded NHWC image (border stays zero)
  std::vector<T> cols;    // conv: im2col matrix, rows (b, y, x), columns (dy, dx, c)
  std::vector<T> kmat;    // conv: kernel as a (C_out, k k C_in) matrix, or its gradient
  // Shape (batch, height, width, channels, pad) whose border `padded` holds zeros for;
  // a conv step re-zeroes the buffer (no allocation) when its shape differs.
  std::int64_t padded_shape[5] = {0, 0, 0, 0, 0};
};

// u <- u + dt sigma(u W^T + b), u of shape (batch, width), W (width, width) row-major.
class Dense {
 public:
  explicit Dense(std::int64_t width);

  std::int64_t width() const noexcept { return width_; }
  std::int64_t features() const noexcept { return width_; }
  std::size_t state_size(std::int64_t batch) const;  // batch * width
  std::size_t weight_size() const noexcept { return static_cast<std::size_t>(width_ * width_); }
  std::size_t bias_size() const noexcept { return static_cast<std::size_t>(width_); }

  // One step in place on u. With cache_u, keep a copy of the input; with cache_deriv, keep
  // sigma'(z) (both for the adjoint). Empty spans are "not wanted".
  template <class T>
  void forward(Span<T> u, std::int64_t batch, CSpan<T> weight, CSpan<T> bias, double dt,
               Activation act, Workspace<T>& work, Span<T> cache_u = {},
               Span<T> cache_deriv = {}) const;

  // lam <- lam + dt W^T (sigma'(z) (.) lam), deriv = sigma'(z) cached by forward. With u_in
  // (the step's input), grad_weight and grad_bias are overwritten with this step's
  // dL/dW = g^T u_in and dL/db = sum over the batch of g, g = dt sigma'(z) (.) lam (the lam
  // given, before the update). Give all three or none.
  template <class T>
  void adjoint(Span<T> lam, std::int64_t batch, CSpan<T> weight, double dt, CSpan<T> deriv,
               Workspace<T>& work, CSpan<T> u_in = {}, Span<T> grad_weight = {},
               Span<T> grad_bias = {}) const;

 private:
  std::int64_t width_;
};

// u <- u + dt sigma(K * u + b): C x C kernels of odd size k, same zero padding, on NHWC images
// of height x width pixels; kernel (C_out, C_in, k, k) as PyTorch stores it.
class Conv {
 public:
  Conv(std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t kernel = 3);

  std::int64_t channels() const noexcept { return channels_; }
  std::int64_t height() const noexcept { return height_; }
  std::int64_t width() const noexcept { return width_; }
  std::int64_t kernel_size() const noexcept { return kernel_; }
  std::int64_t features() const noexcept { return channels_ * height_ * width_; }
  std::size_t state_size(std::int64_t batch) const;  // batch * height * width * channels
  std::size_t weight_size() const noexcept {
    return static_cast<std::size_t>(channels_ * channels_ * kernel_ * kernel_);
  }
  std::size_t bias_size() const noexcept { return static_cast<std::size_t>(channels_); }

  template <class T>
  void forward(Span<T> u, std::int64_t batch, CSpan<T> weight, CSpan<T> bias, double dt,
               Activation act, Workspace<T>& work, Span<T> cache_u = {},
               Span<T> cache_deriv = {}) const;

  // As Dense::adjoint; grad_weight in the kernel's layout (C_out, C_in, k, k).
  template <class T>
  void adjoint(Span<T> lam, std::int64_t batch, CSpan<T> weight, double dt, CSpan<T> deriv,
               Workspace<T>& work, CSpan<T> u_in = {}, Span<T> grad_weight = {},
               Span<T> grad_bias = {}) const;

 private:
  std::int64_t channels_, height_, width_, kernel_;
};

// Spatial coarsening of conv states between MGRIT levels (Propagation's
// SolverOptions::spatial_coarsen), by a factor 2 in height and width. With R the 2x2 mean
// (restrict_image) and P the copy of each coarse pixel to its 2x2 block (refine_image adds it),
// coarsen_kernel gives the kernel K_c of the Galerkin product R K P of the same-padded
// convolution K: exact, borders included, so the coarse layer u + dt sigma(K_c u + b) is the
// fine layer seen through R and P. K_c has the same shape (C_out, C_in, k, k): a fine offset d
// (from the kernel's centre) goes to the coarse offset d / 2 when d is even, and half to each
// of (d - 1) / 2 and (d + 1) / 2 when it is odd.
//   restrict_image: fine (batch, height, width, channels) NHWC, height and width even ->
//                   coarse (batch, height / 2, width / 2, channels), each pixel its block's mean.
//   refine_image:   fine[b, y, x, c] += coarse[b, y / 2, x / 2, c]; height, width: the fine
//                   sizes (even). It adds, because the engine refines corrections.
// std::invalid_argument for sizes that do not match or odd height/width.
template <class T>
void restrict_image(CSpan<T> fine, Span<T> coarse, std::int64_t batch, std::int64_t height,
                    std::int64_t width, std::int64_t channels);
template <class T>
void refine_image(CSpan<T> coarse, Span<T> fine, std::int64_t batch, std::int64_t height,
                  std::int64_t width, std::int64_t channels);
template <class T>
void coarsen_kernel(CSpan<T> fine, Span<T> coarse, std::int64_t channels, std::int64_t kernel);

// The BLAS the library was built against, e.g. "scipy-openblas32 (prefix scipy_)" or
// "system BLAS (FindBLAS)", for diagnostics.
const char* blas_description();

// The BLAS's threads in this process. layerbraid runs one rank per core: threaded products of
// these small matrices on cores that other ranks use only slow every rank down. Propagation's
// constructor therefore calls use_one_blas_thread_per_rank(), which sets one thread unless
// OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set (then the BLAS keeps what they say); call
// set_blas_threads afterwards to choose otherwise (e.g. one rank per socket).
// set_blas_threads: false (nothing done) for a BLAS without a thread control (not OpenBLAS);
// std::invalid_argument for threads < 1. blas_threads: the current count, -1 when unknown.
bool set_blas_threads(int threads);
int blas_threads();
void use_one_blas_thread_per_rank();

}  // namespace layerbraid::resnet
