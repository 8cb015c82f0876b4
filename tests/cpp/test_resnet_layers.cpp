// Dense and conv residual layers, every activation, in double:
//   - the forward step against plain loops (u + dt sigma(K u + b)) and its caches;
//   - the adjoint's input, weight and bias gradients of L = <w, step(u)> against central
//     finite differences along directions (relative error <= 1e-6);
//   - the adjoint as the transpose of the step's Jacobian, <J v, w> = <v, J^T w>, for the
//     input and the parameters (relative 1e-12), J v taken by plain loops;
//   - one reused workspace (shapes changing between steps) giving bit-identical results;
//   - the float instantiation against the double one.
#include <cstdio>
#include <string>

#include "test_support.hpp"

using namespace lbtest;
using rn::Activation;

namespace {

constexpr double kDt = 0.3;
const Activation kActs[] = {Activation::tanh, Activation::relu, Activation::smoothrelu};

// Smallest distance of sigma's argument to a point where sigma is not smooth (relu: 0,
// smoothrelu: +-eta), where finite differences would be meaningless.
double kink_distance(Activation act, const Vec& z) {
  double d = 1e300;
  for (double x : z) {
    if (act == Activation::relu) d = std::min(d, std::fabs(x));
    if (act == Activation::smoothrelu)
      d = std::min({d, std::fabs(x - rn::smooth_relu_eta), std::fabs(x + rn::smooth_relu_eta)});
  }
  return d;
}

Vec pre_activation(const rn::Dense& l, std::int64_t batch, const Vec& w, const Vec& b, const Vec& u) {
  Vec z = apply_linear(l, batch, w, u);
  for (std::size_t i = 0; i < z.size(); ++i) z[i] += b[i % b.size()];
  return z;
}
Vec pre_activation(const rn::Conv& l, std::int64_t batch, const Vec& w, const Vec& b, const Vec& u) {
  Vec z = apply_linear(l, batch, w, u);
  for (std::size_t i = 0; i < z.size(); ++i) z[i] += b[i % b.size()];
  return z;
}

template <class Layer>
struct Case {
  const Layer& layer;
  std::int64_t batch;
  Activation act;
  Vec u, weight, bias, w;  // w: the loss weights, L = <w, step(u)>
};

template <class Layer>
double loss(const Case<Layer>& c, const Vec& u, const Vec& weight, const Vec& bias) {
  rn::Workspace<double> work(c.layer, c.batch);
  Vec out(u);
  c.layer.forward(rn::Span<double>(out), c.batch, rn::CSpan<double>(weight),
                  rn::CSpan<double>(bias), kDt, c.act, work);
  return dot(c.w, out);
}

// Random data whose pre-activations keep clear of the activation's kinks.
template <class Layer>
Case<Layer> make_case(const Layer& layer, std::int64_t batch, Activation act, unsigned seed) {
  const std::size_t n = layer.state_size(batch);
  for (unsigned attempt = 0; attempt < 200; ++attempt) {
    std::mt19937_64 rng(seed * 1000 + attempt);
    const double scale = 1.0 / std::sqrt(double(layer.weight_size()) / double(layer.bias_size()));
    Case<Layer> c{layer, batch, act, random_vec(rng, n, 1.0),
                  random_vec(rng, layer.weight_size(), scale), random_vec(rng, layer.bias_size(), 0.1),
                  random_vec(rng, n, 1.0)};
    const Vec z = pre_activation(layer, batch, c.weight, c.bias, c.u);
    // ... and with some sigma' > 0, else every gradient but the input's is zero.
    const bool active = std::any_of(z.begin(), z.end(),
                                    [&](double x) { return rn::activation_derivative(act, x) > 0; });
    if (active && kink_distance(act, z) > 2e-3) return c;
  }
  throw std::runtime_error("no random case clear of the kinks");
}

// Central difference of L along d in one argument (0: u, 1: weight, 2: bias).
template <class Layer>
double directional_fd(const Case<Layer>& c, int which, const Vec& d) {
  double dmax = 0;
  for (double x : d) dmax = std::max(dmax, std::fabs(x));
  const double eps = 1e-5 / dmax;
  auto at = [&](double s) {
    return loss(c, which == 0 ? axpy(c.u, s, d) : c.u, which == 1 ? axpy(c.weight, s, d) : c.weight,
                which == 2 ? axpy(c.bias, s, d) : c.bias);
  };
  return (at(eps) - at(-eps)) / (2 * eps);
}

struct Worst {
  double fd = 0, transpose = 0, forward = 0, f32 = 0;
};

template <class Layer>
void run(const std::string& name, const Layer& layer, std::int64_t batch, unsigned seed,
         rn::Workspace<double>& shared, Worst& worst) {
  for (Activation act : kActs) {
    const std::string label = name + "/" + rn::activation_name(act);
    const Case<Layer> c = make_case(layer, batch, act, seed);
    const std::size_t n = layer.state_size(batch);

    // Forward with caches, on a fresh workspace.
    rn::Workspace<double> work(layer, batch);
    Vec u(c.u), cache_u(n, -1.0), deriv(n, -1.0);
    layer.forward(rn::Span<double>(u), batch, rn::CSpan<double>(c.weight),
                  rn::CSpan<double>(c.bias), kDt, act, work, rn::Span<double>(cache_u),
                  rn::Span<double>(deriv));
    const Vec z = pre_activation(layer, batch, c.weight, c.bias, c.u);
    Vec u_ref(n), d_ref(n);
    for (std::size_t i = 0; i < n; ++i) {
      u_ref[i] = c.u[i] + kDt * rn::activation_value(act, z[i]);
      d_ref[i] = rn::activation_derivative(act, z[i]);
    }
    const double e_fwd = std::max(rel_diff(u, u_ref), rel_diff(deriv, d_ref));
    worst.forward = std::max(worst.forward, e_fwd);
    check(e_fwd <= 1e-13, label + ": forward differs from plain loops by " + std::to_string(e_fwd));
    check(cache_u == c.u, label + ": cache_u is not the step's input");

    // Adjoint with lam = w: dL/du, dL/dW, dL/db.
    Vec lam(c.w), gw(layer.weight_size(), -1.0), gb(layer.bias_size(), -1.0);
    layer.adjoint(rn::Span<double>(lam), batch, rn::CSpan<double>(c.weight), kDt,
                  rn::CSpan<double>(deriv), work, rn::CSpan<double>(cache_u),
                  rn::Span<double>(gw), rn::Span<double>(gb));

    // The same steps on the shared workspace, reserved for other shapes and batches
    // before: bit-identical (the padded border is re-zeroed, no stale data leaks in).
    shared.reserve(layer, batch);
    Vec u2(c.u), d2(n), lam2(c.w), gw2(gw.size()), gb2(gb.size());
    layer.forward(rn::Span<double>(u2), batch, rn::CSpan<double>(c.weight),
                  rn::CSpan<double>(c.bias), kDt, act, shared, {}, rn::Span<double>(d2));
    layer.adjoint(rn::Span<double>(lam2), batch, rn::CSpan<double>(c.weight), kDt,
                  rn::CSpan<double>(d2), shared, rn::CSpan<double>(c.u), rn::Span<double>(gw2),
                  rn::Span<double>(gb2));
    check(u2 == u && d2 == deriv && lam2 == lam && gw2 == gw && gb2 == gb,
          label + ": a reused workspace changed the results");

    // Finite differences along d = grad + r (r random of the gradient's size, so that
    // <grad, d> is well away from zero).
    std::mt19937_64 rng(seed + 17);
    const Vec* grads[3] = {&lam, &gw, &gb};
    const char* names[3] = {"input", "weight", "bias"};
    for (int which = 0; which < 3; ++which) {
      const Vec& g = *grads[which];
      const Vec d = axpy(g, 1.0, random_vec(rng, g.size(), norm(g) / std::sqrt(double(g.size()))));
      const double an = dot(g, d), fd = directional_fd(c, which, d);
      const double err = std::fabs(fd - an) / std::fabs(an);
      worst.fd = std::max(worst.fd, err);
      check(err <= 1e-6, label + ": " + names[which] + " gradient vs finite differences: rel err " +
                             std::to_string(err) + " (analytic " + std::to_string(an) + ", fd " +
                             std::to_string(fd) + ")");
    }

    // <J v, w> = <v, J^T w>: J v = v + dt sigma' (.) K v (plain loops), J^T w by the adjoint
    // without parameter gradients. Parameters: J_theta (dW, db) = dt sigma' (.) (dW u + db).
    {
      const Vec v = random_vec(rng, n, 1.0);
      const Vec kv = apply_linear(layer, batch, c.weight, v);
      Vec jv(n);
      for (std::size_t i = 0; i < n; ++i) jv[i] = v[i] + kDt * deriv[i] * kv[i];
      Vec jtw(c.w);
      layer.adjoint(rn::Span<double>(jtw), batch, rn::CSpan<double>(c.weight), kDt,
                    rn::CSpan<double>(deriv), work);
      const double a = dot(jv, c.w), b = dot(v, jtw);
      const double err = std::fabs(a - b) / std::max(std::fabs(a), std::fabs(b));
      worst.transpose = std::max(worst.transpose, err);
      check(err <= 1e-12, label + ": <J v, w> - <v, J^T w> rel " + std::to_string(err));
      check(jtw == lam, label + ": adjoint without gradients differs from the one with");

      const Vec dw = random_vec(rng, c.weight.size(), 1.0), db = random_vec(rng, c.bias.size(), 1.0);
      const Vec kdu = pre_activation(layer, batch, dw, db, c.u);
      double lhs = 0;
      for (std::size_t i = 0; i < n; ++i) lhs += kDt * deriv[i] * kdu[i] * c.w[i];
      const double rhs = dot(dw, gw) + dot(db, gb);
      const double perr = std::fabs(lhs - rhs) / std::max(std::fabs(lhs), std::fabs(rhs));
      worst.transpose = std::max(worst.transpose, perr);
      check(perr <= 1e-12, label + ": parameter <J dtheta, w> - <dtheta, J^T w> rel " +
                               std::to_string(perr));
    }

    // float: the same step in single precision, against the double results.
    {
      auto to_f = [](const Vec& v) { return std::vector<float>(v.begin(), v.end()); };
      std::vector<float> uf = to_f(c.u), wf = to_f(c.weight), bf = to_f(c.bias), df(n),
                         lf = to_f(c.w), gwf(gw.size()), gbf(gb.size());
      const std::vector<float> u0f = uf;
      rn::Workspace<float> wsf(layer, batch);
      layer.forward(rn::Span<float>(uf), batch, rn::CSpan<float>(wf), rn::CSpan<float>(bf), kDt,
                    act, wsf, {}, rn::Span<float>(df));
      layer.adjoint(rn::Span<float>(lf), batch, rn::CSpan<float>(wf), kDt, rn::CSpan<float>(df),
                    wsf, rn::CSpan<float>(u0f), rn::Span<float>(gwf), rn::Span<float>(gbf));
      auto back = [](const std::vector<float>& v) { return Vec(v.begin(), v.end()); };
      const double e = std::max({rel_diff(back(uf), u), rel_diff(back(lf), lam),
                                 rel_diff(back(gwf), gw), rel_diff(back(gbf), gb)});
      worst.f32 = std::max(worst.f32, e);
      check(e <= 1e-5, label + ": float differs from double by " + std::to_string(e));
    }
  }
}

// Spatial coarsening: the coarse kernel is the Galerkin product R K P of the fine convolution
// (plain loops, borders included), restrict_image averages 2x2 blocks, refine_image adds each
// coarse pixel to its block, and bad sizes are refused.
void spatial(const char* name, std::int64_t channels, std::int64_t height, std::int64_t width,
             std::int64_t kernel, std::int64_t batch, unsigned seed, double& worst) {
  std::mt19937_64 rng(seed);
  const rn::Conv fine(channels, height, width, kernel), coarse(channels, height / 2, width / 2,
                                                               kernel);
  const Vec w = random_vec(rng, fine.weight_size(), 1.0);
  const Vec c = random_vec(rng, coarse.state_size(batch), 1.0);
  Vec wc(w.size(), 0.0), up(fine.state_size(batch), 0.0), down(c.size(), 0.0);
  rn::coarsen_kernel<double>(w, wc, channels, kernel);
  rn::refine_image<double>(c, up, batch, height, width, channels);  // P c
  const Vec kpc = apply_linear(fine, batch, w, up);
  rn::restrict_image<double>(kpc, down, batch, height, width, channels);  // R K P c
  const Vec want = apply_linear(coarse, batch, wc, c);
  const double err = rel_diff(down, want);
  worst = std::max(worst, err);
  check(err <= 1e-13, std::string(name) + ": R K P c differs from K_c c by " +
                          std::to_string(err));
  // restrict after refine is the identity; refine adds
  Vec back(c.size(), 0.0);
  rn::restrict_image<double>(up, back, batch, height, width, channels);
  check(rel_diff(back, c) == 0.0, std::string(name) + ": R P c != c");
  Vec twice = up;
  rn::refine_image<double>(c, twice, batch, height, width, channels);
  check(rel_diff(twice, axpy(up, 1.0, up)) == 0.0, std::string(name) + ": refine does not add");
  // the kernel's sum is kept (a constant image's response away from the border)
  double fs = 0, cs = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    fs += w[i];
    cs += wc[i];
  }
  check(std::fabs(fs - cs) <= 1e-12 * (1 + std::fabs(fs)), std::string(name) + ": kernel sum");
}

void spatial_errors() {
  Vec odd(2 * 3 * 4 * 1), small(2 * 1 * 2 * 1), k(4 * 9), kc(4 * 9), k2(4 * 4);
  expect_throw<std::invalid_argument>("restrict_image: odd height", [&] {
    rn::restrict_image<double>(odd, small, 2, 3, 4, 1);
  }, {"height=3"});
  Vec fine(2 * 4 * 4 * 1), wrong(3);
  expect_throw<std::invalid_argument>("refine_image: wrong coarse size", [&] {
    rn::refine_image<double>(wrong, fine, 2, 4, 4, 1);
  }, {"coarse has 3 elements"});
  expect_throw<std::invalid_argument>("coarsen_kernel: even kernel", [&] {
    rn::coarsen_kernel<double>(k2, kc, 2, 2);
  }, {"kernel=2"});
  expect_throw<std::invalid_argument>("coarsen_kernel: wrong output size", [&] {
    rn::coarsen_kernel<double>(k, k2, 2, 3);
  }, {"coarse has 16 elements"});
}

}  // namespace

int main() {
  Worst worst;
  rn::Workspace<double> shared;  // grows and changes shape across all cases
  run("dense w5 b3", rn::Dense(5), 3, 1, shared, worst);
  run("dense w1 b1", rn::Dense(1), 1, 2, shared, worst);
  run("conv c2 4x3 k3 b2", rn::Conv(2, 4, 3, 3), 2, 3, shared, worst);
  run("conv c3 3x5 k1 b2", rn::Conv(3, 3, 5, 1), 2, 4, shared, worst);
  run("conv c2 2x3 k5 b3", rn::Conv(2, 2, 3, 5), 3, 5, shared, worst);  // kernel beyond the image
  run("conv c2 4x3 k3 b1", rn::Conv(2, 4, 3, 3), 1, 6, shared, worst);  // smaller batch, reused
  double galerkin = 0;
  spatial("spatial c2 4x6 k3 b2", 2, 4, 6, 3, 2, 7, galerkin);
  spatial("spatial c3 8x8 k5 b1", 3, 8, 8, 5, 1, 8, galerkin);
  spatial("spatial c1 2x2 k3 b3", 1, 2, 2, 3, 3, 9, galerkin);  // coarse image of one pixel
  spatial_errors();
  std::printf("spatial coarsening: R K P vs coarse kernel %.2e\n", galerkin);
  std::printf("BLAS: %s\n", rn::blas_description());
  std::printf("worst: forward vs loops %.2e, finite differences %.2e, transpose %.2e, "
              "float vs double %.2e\n",
              worst.forward, worst.fd, worst.transpose, worst.f32);
  return finish("test_resnet_layers");
}
