// Activations by name and the two fused element-wise passes of a step.
//
// The passes repeat NumpyOps (python/layerbraid/backends/numpy_ops.py) operation for
// operation, constants rounded to T first as NumPy does with a Python float and a T array,
// so that results agree with the NumPy backend to round-off. (The target is compiled with
// -ffp-contract=off so no multiply-add is fused behind our back.)
//
// On x86-64 every pass is compiled twice, for AVX2 and for plain x86-64 (the baseline), and
// one table of function pointers is chosen once, at first use (active_isa()): by the CPU, or by
// the environment variable LAYERBRAID_NATIVE_ISA = auto (default) | avx2 | baseline, so that a
// test can force either path. Both paths perform the same IEEE operations on each element (no
// fused multiply-add in either), so their results are bitwise equal: AVX2 only does more
// elements at once. Other architectures have the baseline path only.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LAYERBRAID_X86_DISPATCH 1
#define LAYERBRAID_AVX2 __attribute__((target("avx2")))
#else
#define LAYERBRAID_X86_DISPATCH 0
#endif

// The helpers of the passes are always inlined, so that each copy of a pass (AVX2, baseline)
// compiles them for its own instruction set instead of calling one shared scalar copy.
#if defined(__GNUC__) || defined(__clang__)
#define LAYERBRAID_INLINE inline __attribute__((always_inline))
#else
#define LAYERBRAID_INLINE inline
#endif

// max(x, 0) as np.maximum computes it: a NaN stays NaN (so a diverging solve is seen).
template <class T>
LAYERBRAID_INLINE T max0(T x) {
  return x < T(0) ? T(0) : x;
}

// The tanh pass, within 4 ulp of std::tanh (measured by tests/cpp/test_resnet_activations).
// std::tanh is a scalar library call, and it was most of a dense forward step's time; this
// loop has no calls and no branches, so the compiler vectorises it (this file is built with
// -O3 -fno-trapping-math: the latter lets the final select be if-converted), and on x86-64 it
// is built twice, for AVX2 and for plain x86-64 (see pass_table below).
//   tanh|x| = e / (e + 2) with e = expm1(2|x|) = 2^k expm1(r) + (2^k - 1), where
//   2|x| = k ln2 + r, |r| <= ln2 / 2, and expm1(r) is its Taylor polynomial to r^13
//   (truncation below 1e-17). 2^k is assembled from the bits of the rounding shifter, which
//   holds k in its low bits; |x| > 20 (tanh rounds to 1) is selected at the end, and a NaN
//   passes through every operation.
LAYERBRAID_INLINE double tanh_fast(double x) {
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

// sigma and sigma' of one pre-activation x, as NumpyOps computes them, written without
// branches the vectoriser cannot turn into selects (a NaN passes through every one).
template <class T>
struct TanhValue {
  static LAYERBRAID_INLINE T value(T x, T* deriv) {
    const T t = static_cast<T>(tanh_fast(x));
    *deriv = T(1) - t * t;  // 1 - tanh^2, from the value
    return t;
  }
};

template <class T>
struct ReluValue {
  static LAYERBRAID_INLINE T value(T x, T* deriv) {
    *deriv = x > T(0) ? T(1) : T(0);
    return max0(x);
  }
};

// With c = clip(x, -eta, eta) + eta: sigma = c^2 / (4 eta) + max(x - eta, 0) and
// sigma' = c / (2 eta), in NumpyOps._smooth_relu's order.
template <class T>
struct SmoothReluValue {
  static LAYERBRAID_INLINE T value(T x, T* deriv) {
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
LAYERBRAID_INLINE void residual_pass(T* z, const T* bias, std::size_t rows, std::size_t channels,
                                     T* u, T h, T* d) {
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

// One copy per activation and type and instruction set: `attr` is empty (the baseline) or
// LAYERBRAID_AVX2, and `isa` names the copy.
template <class T>
using PassFn = void (*)(T* z, const T* bias, std::size_t rows, std::size_t channels, T* u, T h,
                        T* d);

#define LAYERBRAID_RESIDUAL_PASS(attr, isa, name, Act, T)                                    \
  attr void name##_##isa(T* z, const T* bias, std::size_t rows, std::size_t channels, T* u, \
                         T h, T* d) {                                                        \
    residual_pass<T, Act<T>>(z, bias, rows, channels, u, h, d);                              \
  }
#define LAYERBRAID_RESIDUAL_PASSES(attr, isa)                                    \
  LAYERBRAID_RESIDUAL_PASS(attr, isa, tanh_pass, TanhValue, double)              \
  LAYERBRAID_RESIDUAL_PASS(attr, isa, tanh_pass, TanhValue, float)               \
  LAYERBRAID_RESIDUAL_PASS(attr, isa, relu_pass, ReluValue, double)              \
  LAYERBRAID_RESIDUAL_PASS(attr, isa, relu_pass, ReluValue, float)               \
  LAYERBRAID_RESIDUAL_PASS(attr, isa, smooth_relu_pass, SmoothReluValue, double) \
  LAYERBRAID_RESIDUAL_PASS(attr, isa, smooth_relu_pass, SmoothReluValue, float)
LAYERBRAID_RESIDUAL_PASSES(, baseline)
#if LAYERBRAID_X86_DISPATCH
LAYERBRAID_RESIDUAL_PASSES(LAYERBRAID_AVX2, avx2)
#endif
#undef LAYERBRAID_RESIDUAL_PASSES
#undef LAYERBRAID_RESIDUAL_PASS

// The passes of one instruction set.
template <class T>
struct Passes {
  PassFn<T> tanh, relu, smooth_relu;
};

struct PassTable {
  const char* isa;  // "avx2" or "baseline"
  Passes<double> f64;
  Passes<float> f32;

  template <class T>
  const Passes<T>& of() const noexcept {
    if constexpr (std::is_same_v<T, double>) return f64;
    else return f32;
  }
};

const PassTable baseline_passes{
    "baseline",
    {tanh_pass_baseline, relu_pass_baseline, smooth_relu_pass_baseline},
    {tanh_pass_baseline, relu_pass_baseline, smooth_relu_pass_baseline}};
#if LAYERBRAID_X86_DISPATCH
const PassTable avx2_passes{"avx2",
                            {tanh_pass_avx2, relu_pass_avx2, smooth_relu_pass_avx2},
                            {tanh_pass_avx2, relu_pass_avx2, smooth_relu_pass_avx2}};
#endif

#if LAYERBRAID_X86_DISPATCH
bool cpu_has_avx2() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
}
#endif

// The table LAYERBRAID_NATIVE_ISA asks for (auto when unset or empty; any case);
// std::invalid_argument for an unknown value, or avx2 where there is no AVX2 copy to run.
const PassTable& choose_passes() {
  const char* env = std::getenv("LAYERBRAID_NATIVE_ISA");
  std::string want = env ? env : "";
  std::transform(want.begin(), want.end(), want.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (want.empty()) want = "auto";
  if (want == "baseline") return baseline_passes;
  if (want != "auto" && want != "avx2") {
    throw std::invalid_argument("LAYERBRAID_NATIVE_ISA='" + std::string(env) +
                                "' is not supported; use auto (the default: AVX2 where the CPU "
                                "has it), avx2 or baseline");
  }
#if LAYERBRAID_X86_DISPATCH
  if (cpu_has_avx2()) return avx2_passes;
  if (want == "avx2") {
    throw std::invalid_argument("LAYERBRAID_NATIVE_ISA=avx2, but this CPU does not support "
                                "AVX2; use auto or baseline");
  }
#else
  if (want == "avx2") {
    throw std::invalid_argument("LAYERBRAID_NATIVE_ISA=avx2, but this build has no AVX2 path "
                                "(it is not an x86-64 build); use auto or baseline");
  }
#endif
  return baseline_passes;
}

// Chosen once, at the first call; a failed choice throws again at every call.
const PassTable& pass_table() {
  static const PassTable& table = choose_passes();
  return table;
}

}  // namespace

const char* active_isa() { return pass_table().isa; }

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
  const Passes<T>& pass = pass_table().template of<T>();
  switch (act) {
    case Activation::tanh: pass.tanh(zp, b, rows, channels, u.data(), h, d); return;
    case Activation::relu: pass.relu(zp, b, rows, channels, u.data(), h, d); return;
    case Activation::smoothrelu: pass.smooth_relu(zp, b, rows, channels, u.data(), h, d); return;
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
