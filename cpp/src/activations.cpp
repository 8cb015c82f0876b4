// Activations by name and the two fused element-wise passes of a step.
//
// The passes repeat NumpyOps (python/layerbraid/backends/numpy_ops.py) operation for
// operation, constants rounded to T first as NumPy does with a Python float and a T array,
// so that results agree with the NumPy backend to round-off. (The target is compiled with
// -ffp-contract=off so no multiply-add is fused behind our back.)
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "check.hpp"
#include "layerbraid/resnet.hpp"

namespace layerbraid::resnet {

Activation parse_activation(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "tanh") return Activation::tanh;
  if (lower == "relu") return Activation::relu;
  if (lower == "smoothrelu") return Activation::smoothrelu;
  throw std::invalid_argument("activation='" + std::string(name) +
                              "' is not supported; use one of 'tanh', 'relu', 'smoothrelu'");
}

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::tanh: return "tanh";
    case Activation::relu: return "relu";
    case Activation::smoothrelu: return "smoothrelu";
  }
  throw std::invalid_argument("activation=" + std::to_string(static_cast<int>(act)) +
                              " is not a valid Activation");
}

namespace {

// max(x, 0) as np.maximum computes it: a NaN stays NaN (so a diverging solve is seen).
template <class T>
inline T max0(T x) {
  return x < T(0) ? T(0) : x;
}

// The tanh pass, within 4 ulp of std::tanh (measured by tests/cpp/test_resnet_activations).
// std::tanh is a scalar library call, and it was most of a dense forward step's time; this
// loop has no calls and no branches, so the compiler vectorises it (this file is built with
// -O3 -fno-trapping-math: the latter lets the final select be if-converted), and on x86-64 it
// is built twice, for AVX2 and for plain x86-64, chosen at load time.
//   tanh|x| = e / (e + 2) with e = expm1(2|x|) = 2^k expm1(r) + (2^k - 1), where
//   2|x| = k ln2 + r, |r| <= ln2 / 2, and expm1(r) is its Taylor polynomial to r^13
//   (truncation below 1e-17). 2^k is assembled from the bits of the rounding shifter, which
//   holds k in its low bits; |x| > 20 (tanh rounds to 1) is selected at the end, and a NaN
//   passes through every operation.
inline double tanh_fast(double x) {
  constexpr double inv_ln2 = 1.4426950408889634;
  constexpr double ln2_hi = 6.93147180369123816490e-01;  // ln 2's leading bits: k ln2_hi exact
  constexpr double ln2_lo = 1.90821492927058770002e-10;  // ln 2 - ln2_hi
  constexpr double shifter = 6755399441055744.0;         // 1.5 * 2^52: v - shifter = round(v)
  const double a = std::fabs(x);
  const double y = a + a;
  const double v = y * inv_ln2 + shifter;
  const double k = v - shifter;
  const double r = (y - k * ln2_hi) - k * ln2_lo;
  double q = 1.0 / 6227020800.0;  // 1 / 13!, then Horner down to 1: expm1(r) = r q
  q = q * r + 1.0 / 479001600.0;
  q = q * r + 1.0 / 39916800.0;
  q = q * r + 1.0 / 3628800.0;
  q = q * r + 1.0 / 362880.0;
  q = q * r + 1.0 / 40320.0;
  q = q * r + 1.0 / 5040.0;
  q = q * r + 1.0 / 720.0;
  q = q * r + 1.0 / 120.0;
  q = q * r + 1.0 / 24.0;
  q = q * r + 1.0 / 6.0;
  q = q * r + 0.5;
  q = q * r + 1.0;
  const double p = q * r;
  std::uint64_t v_bits, shifter_bits;
  const double shifter_value = shifter;
  std::memcpy(&v_bits, &v, sizeof v);
  std::memcpy(&shifter_bits, &shifter_value, sizeof shifter_value);
  const std::uint64_t scale_bits = (v_bits - shifter_bits + 1023u) << 52;  // 2^k
  double scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  const double e = scale * p + (scale - 1.0);
  const double t = e / (e + 2.0);
  return std::copysign(a > 20.0 ? 1.0 : t, x);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__ELF__)
#define LAYERBRAID_X86_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LAYERBRAID_X86_CLONES
#endif

// sigma and sigma' of one pre-activation x, as NumpyOps computes them, written without
// branches the vectoriser cannot turn into selects (a NaN passes through every one).
template <class T>
struct TanhValue {
  static T value(T x, T* deriv) {
    const T t = static_cast<T>(tanh_fast(x));
    *deriv = T(1) - t * t;  // 1 - tanh^2, from the value
    return t;
  }
};

template <class T>
struct ReluValue {
  static T value(T x, T* deriv) {
    *deriv = x > T(0) ? T(1) : T(0);
    return max0(x);
  }
};

// With c = clip(x, -eta, eta) + eta: sigma = c^2 / (4 eta) + max(x - eta, 0) and
// sigma' = c / (2 eta), in NumpyOps._smooth_relu's order.
template <class T>
struct SmoothReluValue {
  static T value(T x, T* deriv) {
    const T eta = static_cast<T>(smooth_relu_eta);
    const T inv2 = static_cast<T>(1.0 / (2 * smooth_relu_eta));
    const T inv4 = static_cast<T>(1.0 / (4 * smooth_relu_eta));
    T c = x < -eta ? -eta : (x > eta ? eta : x);
    c += eta;
    *deriv = c * inv2;
    c = c * c;
    c *= inv4;
    return max0(x - eta) + c;
  }
};

// The whole step in one pass over the rows (of `channels` values): x = z + bias, sigma(x),
// sigma'(x) into d (when given), the increment h sigma(x) into z and u += z. Each value sees
// NumpyOps.residual_update's operations in its order; one pass instead of four keeps the
// state in cache, and the loop has no calls, so it is vectorised.
template <class T, class Act>
inline void residual_pass(T* z, const T* bias, std::size_t rows, std::size_t channels, T* u,
                          T h, T* d) {
  for (std::size_t r = 0; r < rows; ++r) {
    T* zr = z + r * channels;
    T* ur = u + r * channels;
    T* dr = d ? d + r * channels : nullptr;
    for (std::size_t c = 0; c < channels; ++c) {
      T slope;
      const T increment = Act::value(zr[c] + bias[c], &slope) * h;
      if (dr) dr[c] = slope;
      zr[c] = increment;
      ur[c] += increment;
    }
  }
}

// One copy per activation and type, each built for AVX2 and plain x86-64.
#define LAYERBRAID_RESIDUAL_PASS(name, Act, T)                                                \
  LAYERBRAID_X86_CLONES void name(T* z, const T* bias, std::size_t rows, std::size_t channels, \
                                  T* u, T h, T* d) {                                           \
    residual_pass<T, Act<T>>(z, bias, rows, channels, u, h, d);                                \
  }
LAYERBRAID_RESIDUAL_PASS(tanh_pass, TanhValue, double)
LAYERBRAID_RESIDUAL_PASS(tanh_pass, TanhValue, float)
LAYERBRAID_RESIDUAL_PASS(relu_pass, ReluValue, double)
LAYERBRAID_RESIDUAL_PASS(relu_pass, ReluValue, float)
LAYERBRAID_RESIDUAL_PASS(smooth_relu_pass, SmoothReluValue, double)
LAYERBRAID_RESIDUAL_PASS(smooth_relu_pass, SmoothReluValue, float)
#undef LAYERBRAID_RESIDUAL_PASS

}  // namespace

template <class T>
void residual_update(Activation act, Span<T> z, CSpan<T> bias, Span<T> u, double dt,
                     Span<T> deriv) {
  constexpr const char* who = "residual_update";
  const std::size_t channels = bias.size();
  if (channels == 0 || z.size() % channels != 0) {
    throw std::invalid_argument(std::string(who) + ": z has " + std::to_string(z.size()) +
                                " elements, not a multiple of bias's " +
                                std::to_string(channels));
  }
  detail::require_size(who, "u", u.size(), z.size(), "z's size");
  if (!deriv.empty()) detail::require_size(who, "deriv", deriv.size(), z.size(), "z's size");
  const std::size_t n = z.size();
  T* zp = z.data();
  const T* b = bias.data();
  T* d = deriv.empty() ? nullptr : deriv.data();

  const T h = static_cast<T>(dt);
  const std::size_t rows = n / channels;
  switch (act) {
    case Activation::tanh: tanh_pass(zp, b, rows, channels, u.data(), h, d); return;
    case Activation::relu: relu_pass(zp, b, rows, channels, u.data(), h, d); return;
    case Activation::smoothrelu:
      smooth_relu_pass(zp, b, rows, channels, u.data(), h, d);
      return;
  }
  throw std::invalid_argument(std::string(who) + ": activation=" +
                              std::to_string(static_cast<int>(act)) +
                              " is not a valid Activation");
}

template <class T>
void scaled_product(CSpan<T> deriv, CSpan<T> lam, double dt, Span<T> out) {
  constexpr const char* who = "scaled_product";
  detail::require_size(who, "lam", lam.size(), deriv.size(), "deriv's size");
  detail::require_size(who, "out", out.size(), deriv.size(), "deriv's size");
  const T h = static_cast<T>(dt);
  for (std::size_t i = 0; i < deriv.size(); ++i) {
    T v = deriv[i] * lam[i];
    v *= h;
    out[i] = v;
  }
}

template void residual_update<double>(Activation, Span<double>, CSpan<double>, Span<double>,
                                      double, Span<double>);
template void residual_update<float>(Activation, Span<float>, CSpan<float>, Span<float>, double,
                                     Span<float>);
template void scaled_product<double>(CSpan<double>, CSpan<double>, double, Span<double>);
template void scaled_product<float>(CSpan<float>, CSpan<float>, double, Span<float>);

}  // namespace layerbraid::resnet
