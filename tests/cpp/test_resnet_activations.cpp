// Activations: names, sigma' against central differences of sigma, SmoothReLU's continuity at
// +-eta, and the fused passes (residual_update, scaled_product) against the plain formulas.
//
// CTest runs this program once per instruction set of the passes (LAYERBRAID_NATIVE_ISA unset,
// baseline, avx2) and once with a bad value, which must be refused with a clear message;
// active_isa() must report what the variable asked for. (That the two paths agree bitwise is
// checked by tests/test_native_backend.py, which compares whole solves across processes.)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "test_support.hpp"

using namespace lbtest;
using rn::Activation;

namespace {

bool cpu_has_avx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
#else
  return false;
#endif
}

// The path LAYERBRAID_NATIVE_ISA selects. false: the rest of the test cannot run (a value that
// must be refused, and was).
bool check_isa_choice() {
  const char* env = std::getenv("LAYERBRAID_NATIVE_ISA");
  const std::string want = env ? env : "";
  const bool refuse = !(want.empty() || want == "auto" || want == "baseline" || want == "avx2") ||
                      (want == "avx2" && !cpu_has_avx2());
  if (refuse) {
    const std::string part = want == "avx2" ? "LAYERBRAID_NATIVE_ISA=avx2, but" : "'" + want + "'";
    for (int attempt = 0; attempt < 2; ++attempt) {  // refused again at a later call
      expect_throw<std::invalid_argument>("LAYERBRAID_NATIVE_ISA=" + want, [] { rn::active_isa(); },
                                          {"LAYERBRAID_NATIVE_ISA", part, "baseline"});
    }
    expect_throw<std::invalid_argument>("residual_update with LAYERBRAID_NATIVE_ISA=" + want, [] {
      Vec z(3), b(3), u(3);
      rn::residual_update<double>(Activation::tanh, rn::Span<double>(z), rn::CSpan<double>(b),
                                  rn::Span<double>(u), 0.1, {});
    }, {"LAYERBRAID_NATIVE_ISA", part});
    return false;
  }
  const std::string active = rn::active_isa();
  std::printf("passes: %s (LAYERBRAID_NATIVE_ISA=%s, CPU %s AVX2)\n", active.c_str(),
              env ? env : "<unset>", cpu_has_avx2() ? "with" : "without");
  const std::string expected =
      want == "baseline" ? "baseline" : (cpu_has_avx2() ? "avx2" : "baseline");
  check(active == expected, "active_isa() is " + active + ", expected " + expected);
  return true;
}

}  // namespace

int main() {
  if (!check_isa_choice()) return finish("test_resnet_activations");
  const Activation acts[] = {Activation::tanh, Activation::relu, Activation::smoothrelu};
  const double eta = rn::smooth_relu_eta;

  // Names round-trip, any case; unknown names are refused with the accepted list.
  for (Activation a : acts) check(rn::parse_activation(rn::activation_name(a)) == a, "name round trip");
  check(rn::parse_activation("SmoothReLU") == Activation::smoothrelu, "names ignore case");
  expect_throw<std::invalid_argument>("unknown name", [] { rn::parse_activation("sigmoid"); },
                                      {"'sigmoid'", "'tanh', 'relu', 'smoothrelu'"});
  expect_throw<std::invalid_argument>("bad enum", [] { rn::activation_name(static_cast<Activation>(7)); },
                                      {"activation=7"});

  // sigma' against central differences, away from the kinks.
  double worst_fd = 0;
  for (Activation a : acts) {
    for (double x = -2.0; x <= 2.0; x += 0.01375) {
      if (std::fabs(x) < 1e-3 || std::fabs(std::fabs(x) - eta) < 1e-3) continue;
      const double h = 1e-6;
      const double fd = (rn::activation_value(a, x + h) - rn::activation_value(a, x - h)) / (2 * h);
      const double err = std::fabs(fd - rn::activation_derivative(a, x));
      worst_fd = std::max(worst_fd, err);
      check(err < 1e-8, std::string(rn::activation_name(a)) + ": sigma'(" + std::to_string(x) +
                            ") vs differences: " + std::to_string(err));
    }
  }

  // SmoothReLU is C^1: value 0 and slope 0 at -eta, value eta and slope 1 at +eta.
  for (double side : {-1e-9, 1e-9}) {
    check(std::fabs(rn::activation_value(Activation::smoothrelu, -eta + side)) < 1e-8 &&
              std::fabs(rn::activation_value(Activation::smoothrelu, eta + side) - eta) < 1e-8,
          "smoothrelu value continuous at +-eta");
    check(std::fabs(rn::activation_derivative(Activation::smoothrelu, -eta + side)) < 1e-7 &&
              std::fabs(rn::activation_derivative(Activation::smoothrelu, eta + side) - 1) < 1e-7,
          "smoothrelu slope continuous at +-eta");
  }
  check(rn::activation_derivative(Activation::relu, 0.0) == 0.0, "relu'(0) is 0");

  // The fused pass against the formulas, with many points inside SmoothReLU's blend.
  std::mt19937_64 rng(3);
  const std::size_t rows = 40, ch = 6;
  double worst_fused = 0;
  for (Activation a : acts) {
    const Vec z0 = random_vec(rng, rows * ch, 0.3), bias = random_vec(rng, ch, 0.1),
              u0 = random_vec(rng, rows * ch, 1.0);
    for (bool with_deriv : {true, false}) {
      Vec z(z0), u(u0), d(with_deriv ? rows * ch : 0, std::nan(""));
      rn::residual_update<double>(a, rn::Span<double>(z), rn::CSpan<double>(bias),
                                  rn::Span<double>(u), 0.25, rn::Span<double>(d));
      for (std::size_t i = 0; i < rows * ch; ++i) {
        const double x = z0[i] + bias[i % ch];
        const double eu = std::fabs(u[i] - (u0[i] + 0.25 * rn::activation_value(a, x)));
        const double ez = std::fabs(z[i] - 0.25 * rn::activation_value(a, x));
        double ed = 0;
        if (with_deriv) ed = std::fabs(d[i] - rn::activation_derivative(a, x));
        worst_fused = std::max({worst_fused, eu, ez, ed});
        check(eu <= 1e-15 && ez <= 1e-15 && ed <= 1e-15,
              std::string(rn::activation_name(a)) + ": fused pass off the formulas at " +
                  std::to_string(i));
      }
    }
    // float: the same pass within single-precision round-off.
    std::vector<float> zf(z0.begin(), z0.end()), bf(bias.begin(), bias.end()),
        uf(u0.begin(), u0.end()), df(rows * ch);
    rn::residual_update<float>(a, rn::Span<float>(zf), rn::CSpan<float>(bf), rn::Span<float>(uf),
                               0.25, rn::Span<float>(df));
    for (std::size_t i = 0; i < rows * ch; ++i) {
      const double x = double(float(z0[i])) + double(float(bias[i % ch]));
      check(std::fabs(uf[i] - (u0[i] + 0.25 * rn::activation_value(a, x))) < 1e-6 &&
                std::fabs(df[i] - rn::activation_derivative(a, x)) < 1e-6,
            std::string(rn::activation_name(a)) + ": float fused pass off at " + std::to_string(i));
    }
  }

  // The fused tanh pass is a fast formula, not std::tanh: within 4 ulp of it everywhere,
  // exact at 0 and at the saturation ends, odd, in double and float.
  {
    std::vector<double> xs{0.0, -0.0, 1e-300, 4e-320, -1e-8, 19.9, 20.0, 20.5, 700.0, -1e300,
                           HUGE_VAL, -HUGE_VAL};
    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    for (int i = 0; i < 200000; ++i) xs.push_back(unit(rng) * std::pow(10.0, 4.0 * unit(rng)));
    const std::size_t n = xs.size();
    Vec z(xs), u(n, 0.0), zero{0.0};
    rn::residual_update<double>(Activation::tanh, rn::Span<double>(z), rn::CSpan<double>(zero),
                                rn::Span<double>(u), 1.0, {});
    double worst_ulp = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double want = std::tanh(xs[i] + 0.0);  // + the zero bias, as the pass adds it
      const double ulp = std::nextafter(std::fabs(want), 2.0) - std::fabs(want);
      const double err = std::fabs(z[i] - want) / ulp;  // z ends as dt tanh(x), dt = 1
      worst_ulp = std::max(worst_ulp, err);
      check(err <= 4 && std::signbit(z[i]) == std::signbit(want),
            "tanh pass at x=" + std::to_string(xs[i]) + ": " + std::to_string(z[i]) +
                " against std::tanh " + std::to_string(want));
    }
    std::printf("tanh pass: worst %.2f ulp from std::tanh over %zu values\n", worst_ulp, n);
    std::vector<float> zf(xs.begin(), xs.end()), uf(n, 0.0f), zerof{0.0f};
    rn::residual_update<float>(Activation::tanh, rn::Span<float>(zf), rn::CSpan<float>(zerof),
                               rn::Span<float>(uf), 1.0, {});
    for (std::size_t i = 0; i < n; ++i) {
      const float want = std::tanh(static_cast<float>(xs[i]));
      check(std::fabs(zf[i] - want) <= 2 * (std::nextafter(std::fabs(want), 2.0f) - std::fabs(want)),
            "float tanh pass at x=" + std::to_string(xs[i]));
    }
  }

  // A NaN stays NaN through every activation (so the engine can see a diverging solve).
  for (Activation a : acts) {
    Vec z{std::nan("")}, b{0.0}, u{1.0}, d{0.0};
    rn::residual_update<double>(a, rn::Span<double>(z), rn::CSpan<double>(b), rn::Span<double>(u),
                                0.5, rn::Span<double>(d));
    check(std::isnan(u[0]), std::string(rn::activation_name(a)) + ": NaN did not propagate");
  }

  // scaled_product: out = (deriv * lam) * dt.
  {
    const Vec d = random_vec(rng, 10, 1.0), l = random_vec(rng, 10, 1.0);
    Vec out(10);
    rn::scaled_product<double>(rn::CSpan<double>(d), rn::CSpan<double>(l), 0.7, rn::Span<double>(out));
    for (std::size_t i = 0; i < 10; ++i) check(out[i] == (d[i] * l[i]) * 0.7, "scaled_product");
  }

  // Shape errors of the fused passes.
  expect_throw<std::invalid_argument>("z not a multiple of bias", [] {
    Vec z(7), b(3), u(7);
    rn::residual_update<double>(Activation::tanh, rn::Span<double>(z), rn::CSpan<double>(b),
                                rn::Span<double>(u), 0.1, {});
  }, {"z has 7 elements", "bias's 3"});
  expect_throw<std::invalid_argument>("u of the wrong size", [] {
    Vec z(6), b(3), u(5);
    rn::residual_update<double>(Activation::tanh, rn::Span<double>(z), rn::CSpan<double>(b),
                                rn::Span<double>(u), 0.1, {});
  }, {"u has 5 elements", "= 6"});
  expect_throw<std::invalid_argument>("bad enum in the fused pass", [] {
    Vec z(3), b(3), u(3);
    rn::residual_update<double>(static_cast<Activation>(9), rn::Span<double>(z),
                                rn::CSpan<double>(b), rn::Span<double>(u), 0.1, {});
  }, {"activation=9"});
  expect_throw<std::invalid_argument>("scaled_product sizes", [] {
    Vec d(4), l(3), o(4);
    rn::scaled_product<double>(rn::CSpan<double>(d), rn::CSpan<double>(l), 0.1, rn::Span<double>(o));
  }, {"lam has 3 elements", "= 4"});

  std::printf("worst: sigma' vs differences %.2e, fused pass vs formulas %.2e\n", worst_fd,
              worst_fused);
  return finish("test_resnet_activations");
}
