// Activations by name and the two fused element-wise passes of a step.
//
// The passes repeat NumpyOps (python/layerbraid/backends/numpy_ops.py) operation for
// operation, constants rounded to T first as NumPy does with a Python float and a T array,
// so that results agree with the NumPy backend to round-off. (The target is compiled with
// -ffp-contract=off so no multiply-add is fused behind our back.)
#include <algorithm>
#include <cctype>
#include <cmath>
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

  // z += bias, broadcast along rows.
  for (std::size_t i = 0; i < n; i += channels)
    for (std::size_t c = 0; c < channels; ++c) zp[i + c] += b[c];

  switch (act) {
    case Activation::tanh:
      for (std::size_t i = 0; i < n; ++i) zp[i] = std::tanh(zp[i]);
      if (d) {  // 1 - tanh^2, from the value
        for (std::size_t i = 0; i < n; ++i) {
          const T sq = zp[i] * zp[i];
          d[i] = T(1) - sq;
        }
      }
      break;
    case Activation::relu:
      if (d)
        for (std::size_t i = 0; i < n; ++i) d[i] = zp[i] > T(0) ? T(1) : T(0);
      for (std::size_t i = 0; i < n; ++i) zp[i] = max0(zp[i]);
      break;
    case Activation::smoothrelu: {
      // With c = clip(z, -eta, eta) + eta: sigma = c^2 / (4 eta) + max(z - eta, 0) and
      // sigma' = c / (2 eta), in NumpyOps._smooth_relu's order.
      const T eta = static_cast<T>(smooth_relu_eta);
      const T inv2 = static_cast<T>(1.0 / (2 * smooth_relu_eta));
      const T inv4 = static_cast<T>(1.0 / (4 * smooth_relu_eta));
      for (std::size_t i = 0; i < n; ++i) {
        const T x = zp[i];
        T c = x < -eta ? -eta : (x > eta ? eta : x);  // a NaN passes through
        c += eta;
        if (d) d[i] = c * inv2;
        c = c * c;
        c *= inv4;
        zp[i] = max0(x - eta) + c;
      }
      break;
    }
    default:
      throw std::invalid_argument(std::string(who) + ": activation=" +
                                  std::to_string(static_cast<int>(act)) +
                                  " is not a valid Activation");
  }

  const T h = static_cast<T>(dt);
  T* up = u.data();
  for (std::size_t i = 0; i < n; ++i) {
    zp[i] *= h;
    up[i] += zp[i];
  }
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
