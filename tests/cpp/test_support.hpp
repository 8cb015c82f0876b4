// Small helpers of the layerbraid::resnet unit tests: checks that count failures, exception
// expectations, seeded random data, and plain loop implementations of the layers' linear maps
// (the independent reference the BLAS kernels are tested against).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "layerbraid/resnet.hpp"

namespace lbtest {

using Vec = std::vector<double>;
namespace rn = layerbraid::resnet;

inline int& failures() {
  static int n = 0;
  return n;
}

// Report a failed check; the test program exits 1 at the end if any failed.
inline void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures();
    std::printf("FAIL: %s\n", what.c_str());
  }
}

inline int finish(const char* name) {
  if (failures() == 0) {
    std::printf("%s: all checks passed\n", name);
    return 0;
  }
  std::printf("%s: %d check(s) failed\n", name, failures());
  return 1;
}

// fn() must throw E with a message containing every one of `parts`.
template <class E, class F>
void expect_throw(const std::string& label, F&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) check(msg.find(p) != std::string::npos,
                                      label + ": message '" + msg + "' lacks '" + p + "'");
    return;
  } catch (const std::exception& e) {
    check(false, label + ": threw the wrong exception type: " + e.what());
    return;
  }
  check(false, label + ": did not throw");
}

inline Vec random_vec(std::mt19937_64& rng, std::size_t n, double scale) {
  std::normal_distribution<double> normal(0.0, 1.0);
  Vec v(n);
  for (auto& x : v) x = scale * normal(rng);
  return v;
}

inline double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline double norm(const Vec& a) { return std::sqrt(dot(a, a)); }

inline Vec axpy(const Vec& x, double alpha, const Vec& d) {  // x + alpha d
  Vec r(x);
  for (std::size_t i = 0; i < r.size(); ++i) r[i] += alpha * d[i];
  return r;
}

// max |a - b| / max |b| (0 when both vanish).
inline double rel_diff(const Vec& a, const Vec& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(a[i] - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return den > 0 ? num / den : num;
}

// K v without bias, by plain loops: dense v W^T.
inline Vec apply_linear(const rn::Dense& layer, std::int64_t batch, const Vec& w, const Vec& v) {
  const std::size_t n = static_cast<std::size_t>(layer.width());
  Vec out(static_cast<std::size_t>(batch) * n, 0.0);
  for (std::size_t b = 0; b < static_cast<std::size_t>(batch); ++b)
    for (std::size_t o = 0; o < n; ++o) {
      double s = 0;
      for (std::size_t i = 0; i < n; ++i) s += w[o * n + i] * v[b * n + i];
      out[b * n + o] = s;
    }
  return out;
}

// K v without bias, by plain loops: the same-padded convolution of NHWC v with the kernel
// w[o, i, dy, dx] (PyTorch layout, cross-correlation as torch.nn.functional.conv2d).
inline Vec apply_linear(const rn::Conv& layer, std::int64_t batch, const Vec& w, const Vec& v) {
  const long C = layer.channels(), H = layer.height(), W = layer.width(), k = layer.kernel_size();
  const long p = k / 2;
  Vec out(static_cast<std::size_t>(batch * H * W * C), 0.0);
  for (long b = 0; b < batch; ++b)
    for (long y = 0; y < H; ++y)
      for (long x = 0; x < W; ++x)
        for (long o = 0; o < C; ++o) {
          double s = 0;
          for (long i = 0; i < C; ++i)
            for (long dy = 0; dy < k; ++dy)
              for (long dx = 0; dx < k; ++dx) {
                const long yy = y + dy - p, xx = x + dx - p;
                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                s += w[static_cast<std::size_t>(((o * C + i) * k + dy) * k + dx)] *
                     v[static_cast<std::size_t>(((b * H + yy) * W + xx) * C + i)];
              }
          out[static_cast<std::size_t>(((b * H + y) * W + x) * C + o)] = s;
        }
  return out;
}

inline std::size_t channels_of(const rn::Dense& l) { return static_cast<std::size_t>(l.width()); }
inline std::size_t channels_of(const rn::Conv& l) { return static_cast<std::size_t>(l.channels()); }

}  // namespace lbtest
