// The fused elementwise operations of a ResNet layer step, as CUDA kernels.
//
// These are the GPU twins of layerbraid/backends/numpy_ops.py and compute the same formulas
// in the same order: the arithmetic rounds exactly as the NumPy reference does, so the two
// backends differ only in the last bits of tanh. CuPy compiles this file at run time with
// NVRTC (layerbraid/backends/cupy_ops.py); it needs no headers.
//
// Every kernel is a template on the float type T (float, double); the activation kernels are
// also templates on the activation (Tanh, Relu, SmoothRelu). Arrays are C-contiguous and
// indexed flat; the bias broadcasts along the last axis, so entry i takes bias[i % nbias].
//
// Compile with -DLAYERBRAID_SMOOTH_RELU_ETA=<eta>: SmoothReLU's blend half-width is defined
// once, in layerbraid.nn.activations.SMOOTH_RELU_ETA, and passed in by the Python side.

#ifndef LAYERBRAID_SMOOTH_RELU_ETA
#error "define LAYERBRAID_SMOOTH_RELU_ETA (layerbraid.nn.activations.SMOOTH_RELU_ETA)"
#endif

namespace layerbraid {

// ---- helpers ------------------------------------------------------------------------------

// A product the compiler may not fuse with a following addition into an FMA: NumPy rounds
// the product and the sum separately, and so must we to agree with it bit for bit.
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

// tanh per float type, so that float never goes through the double routine.
__device__ __forceinline__ float tanh_of(float x) { return tanhf(x); }
__device__ __forceinline__ double tanh_of(double x) { return tanh(x); }

// Grid-stride loops with 64-bit indices: a batch of states may exceed 2^31 entries, and the
// launch may use fewer threads than entries.
__device__ __forceinline__ unsigned long long first_index() {
  return static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ unsigned long long grid_stride() {
  return static_cast<unsigned long long>(gridDim.x) * blockDim.x;
}

// ---- activations: value sigma(x) and derivative sigma'(x) in one evaluation -----------------

struct Tanh {
  template <typename T>
  static __device__ __forceinline__ T eval(T x, T& deriv) {
    const T a = tanh_of(x);
    deriv = T(1) - mul_rn(a, a);  // 1 - tanh^2 from the value: one transcendental, not two
    return a;
  }
};

struct Relu {
  template <typename T>
  static __device__ __forceinline__ T eval(T x, T& deriv) {
    deriv = x > T(0) ? T(1) : T(0);  // 0 at x = 0, as the reference
    return x < T(0) ? T(0) : x;      // written so that NaN passes through, as np.maximum
  }
};

struct SmoothRelu {
  // With c = clip(x, -eta, eta) + eta: sigma = c^2 / (4 eta) + max(x - eta, 0) and
  // sigma' = c / (2 eta); the pieces meet with value eta and slope 1 at x = eta.
  template <typename T>
  static __device__ __forceinline__ T eval(T x, T& deriv) {
    constexpr double eta = LAYERBRAID_SMOOTH_RELU_ETA;
    const T e = T(eta);
    // Comparisons rather than fmin/fmax, which would turn NaN into a number.
    T c = x < -e ? -e : (x > e ? e : x);
    c = c + e;
    deriv = mul_rn(c, T(1.0 / (2.0 * eta)));
    const T quadratic = mul_rn(mul_rn(c, c), T(1.0 / (4.0 * eta)));
    T linear = x - e;
    linear = linear < T(0) ? T(0) : linear;
    return linear + quadratic;
  }
};

// ---- the operations -----------------------------------------------------------------------

// z <- sigma(z + bias); deriv <- sigma'(z + bias) unless deriv is null.
template <typename T, typename Act>
__global__ void activate(T* z, const T* __restrict__ bias, unsigned long long nbias, T* deriv,
                         unsigned long long n) {
  for (unsigned long long i = first_index(); i < n; i += grid_stride()) {
    T d;
    z[i] = Act::eval(z[i] + bias[i % nbias], d);
    if (deriv != nullptr) deriv[i] = d;
  }
}

// u <- u + h sigma(z + bias); deriv <- sigma'(z + bias) unless deriv is null. One pass over
// memory: the activation never goes back to z (the caller's scratch), it goes straight into u.
template <typename T, typename Act>
__global__ void residual_update(const T* z, const T* __restrict__ bias, unsigned long long nbias,
                                T* u, T h, T* deriv, unsigned long long n) {
  for (unsigned long long i = first_index(); i < n; i += grid_stride()) {
    T d;
    const T a = Act::eval(z[i] + bias[i % nbias], d);
    u[i] = u[i] + mul_rn(a, h);
    if (deriv != nullptr) deriv[i] = d;
  }
}

// out <- h * deriv * lam: the adjoint's sigma'(z) (.) lambda, scaled by the step; the product
// is taken before the scaling, as the reference does.
template <typename T>
__global__ void scaled_product(const T* deriv, const T* lam, T h, T* out,
                               unsigned long long n) {
  for (unsigned long long i = first_index(); i < n; i += grid_stride()) {
    out[i] = mul_rn(mul_rn(deriv[i], lam[i]), h);
  }
}

}  // namespace layerbraid
