// Bad layer sizes, bad buffer shapes and unprepared workspaces: each throws, naming the value.
#include <cstdio>
#include <string>

#include "test_support.hpp"

using namespace lbtest;
using rn::Activation;
using E = std::invalid_argument;

namespace {

// Correctly sized buffers of one layer and batch, to break one at a time.
template <class Layer>
struct Buffers {
  Buffers(const Layer& l, std::int64_t batch)
      : u(l.state_size(batch), 0.1), cache(u.size()), deriv(u.size(), 1.0), lam(u.size(), 1.0),
        weight(l.weight_size(), 0.1), bias(l.bias_size()), gw(weight.size()), gb(bias.size()),
        work(l, batch) {}
  Vec u, cache, deriv, lam, weight, bias, gw, gb;
  rn::Workspace<double> work;
};

template <class Layer>
void shape_errors(const std::string& name, const Layer& l) {
  const std::int64_t batch = 2;
  using S = rn::Span<double>;
  using C = rn::CSpan<double>;

  {  // The correct call works (so the failures below are the broken argument's).
    Buffers<Layer> b(l, batch);
    l.forward(S(b.u), batch, C(b.weight), C(b.bias), 0.1, Activation::tanh, b.work, S(b.cache),
              S(b.deriv));
    l.adjoint(S(b.lam), batch, C(b.weight), 0.1, C(b.deriv), b.work, C(b.cache), S(b.gw), S(b.gb));
  }
  const std::string n = std::to_string(l.state_size(batch));
  expect_throw<E>(name + " u size", [&] {
    Buffers<Layer> b(l, batch);
    l.forward(S(b.u.data(), b.u.size() - 1), batch, C(b.weight), C(b.bias), 0.1, Activation::tanh, b.work);
  }, {"forward", "u has " + std::to_string(l.state_size(batch) - 1) + " elements", "= " + n});
  expect_throw<E>(name + " batch 0", [&] {
    Buffers<Layer> b(l, batch);
    l.forward(S(b.u), 0, C(b.weight), C(b.bias), 0.1, Activation::tanh, b.work);
  }, {"batch=0", ">= 1"});
  expect_throw<E>(name + " batch mismatch", [&] {
    Buffers<Layer> b(l, batch);
    l.forward(S(b.u), 3, C(b.weight), C(b.bias), 0.1, Activation::tanh, b.work);
  }, {"u has " + n + " elements", "batch"});
  expect_throw<E>(name + " weight size", [&] {
    Buffers<Layer> b(l, batch);
    Vec w(b.weight.size() + 1);
    l.forward(S(b.u), batch, C(w), C(b.bias), 0.1, Activation::tanh, b.work);
  }, {"weight has " + std::to_string(l.weight_size() + 1) + " elements",
      "= " + std::to_string(l.weight_size())});
  expect_throw<E>(name + " bias size", [&] {
    Buffers<Layer> b(l, batch);
    l.forward(S(b.u), batch, C(b.weight), C(b.bias.data(), 1), 0.1, Activation::tanh, b.work);
  }, {"bias has 1 elements"});
  expect_throw<E>(name + " cache_deriv size", [&] {
    Buffers<Layer> b(l, batch);
    l.forward(S(b.u), batch, C(b.weight), C(b.bias), 0.1, Activation::tanh, b.work, {},
              S(b.deriv.data(), 3));
  }, {"cache_deriv has 3 elements"});
  expect_throw<E>(name + " bad activation", [&] {
    Buffers<Layer> b(l, batch);
    l.forward(S(b.u), batch, C(b.weight), C(b.bias), 0.1, static_cast<Activation>(5), b.work);
  }, {"activation=5"});
  expect_throw<E>(name + " empty workspace", [&] {
    Buffers<Layer> b(l, batch);
    rn::Workspace<double> empty;
    l.forward(S(b.u), batch, C(b.weight), C(b.bias), 0.1, Activation::tanh, empty);
  }, {"workspace.z holds 0 elements", "batch=2", "reserve"});
  expect_throw<E>(name + " workspace for a smaller batch", [&] {
    Buffers<Layer> b(l, batch);
    rn::Workspace<double> small(l, 1);
    l.adjoint(S(b.lam), batch, C(b.weight), 0.1, C(b.deriv), small);
  }, {"workspace.", "batch=2", "reserve"});
  expect_throw<E>(name + " deriv size", [&] {
    Buffers<Layer> b(l, batch);
    l.adjoint(S(b.lam), batch, C(b.weight), 0.1, C(b.deriv.data(), 1), b.work);
  }, {"adjoint", "deriv has 1 elements"});
  expect_throw<E>(name + " gradients without u_in", [&] {
    Buffers<Layer> b(l, batch);
    l.adjoint(S(b.lam), batch, C(b.weight), 0.1, C(b.deriv), b.work, {}, S(b.gw), S(b.gb));
  }, {"u_in, grad_weight and grad_bias together", "u_in of 0"});
  expect_throw<E>(name + " grad_weight size", [&] {
    Buffers<Layer> b(l, batch);
    Vec gw(b.gw.size() - 1);
    l.adjoint(S(b.lam), batch, C(b.weight), 0.1, C(b.deriv), b.work, C(b.cache), S(gw), S(b.gb));
  }, {"grad_weight has " + std::to_string(l.weight_size() - 1) + " elements"});
  expect_throw<E>(name + " u_in size", [&] {
    Buffers<Layer> b(l, batch);
    l.adjoint(S(b.lam), batch, C(b.weight), 0.1, C(b.deriv), b.work, C(b.cache.data(), 2),
              S(b.gw), S(b.gb));
  }, {"u_in has 2 elements"});
}

}  // namespace

int main() {
  // Layer sizes.
  expect_throw<E>("Dense(0)", [] { rn::Dense d(0); }, {"Dense", "width=0", ">= 1"});
  expect_throw<E>("Dense(-3)", [] { rn::Dense d(-3); }, {"width=-3"});
  expect_throw<E>("Conv channels", [] { rn::Conv c(0, 4, 4, 3); }, {"channels=0"});
  expect_throw<E>("Conv height", [] { rn::Conv c(2, -1, 4, 3); }, {"height=-1"});
  expect_throw<E>("Conv width", [] { rn::Conv c(2, 4, 0, 3); }, {"width=0"});
  expect_throw<E>("Conv even kernel", [] { rn::Conv c(2, 4, 4, 4); }, {"kernel=4", "odd"});
  expect_throw<E>("Conv kernel 0", [] { rn::Conv c(2, 4, 4, 0); }, {"kernel=0"});
  expect_throw<std::length_error>("Dense too wide for the BLAS", [] { rn::Dense d(std::int64_t(1) << 33); },
                                  {"8589934592", "32-bit"});
  expect_throw<E>("state_size batch", [] { rn::Dense(3).state_size(-1); }, {"batch=-1"});
  expect_throw<E>("reserve batch", [] { rn::Workspace<double> w(rn::Conv(1, 2, 2, 1), 0); },
                  {"batch=0"});

  shape_errors("dense", rn::Dense(4));
  shape_errors("conv", rn::Conv(2, 3, 4, 3));

  // A dense workspace does not serve a conv step (no padded/cols buffers).
  expect_throw<E>("dense workspace for conv", [] {
    rn::Conv c(2, 3, 3, 3);
    rn::Workspace<double> w(rn::Dense(c.features()), 1);
    Vec u(c.state_size(1)), wt(c.weight_size()), b(c.bias_size());
    c.forward(rn::Span<double>(u), 1, rn::CSpan<double>(wt), rn::CSpan<double>(b), 0.1,
              Activation::relu, w);
  }, {"workspace.padded holds 0 elements", "reserve"});

  // BLAS threads: a bad count is refused; a good one is what the BLAS then reports.
  expect_throw<E>("set_blas_threads(0)", [] { rn::set_blas_threads(0); }, {"threads=0", ">= 1"});
  if (rn::set_blas_threads(2)) {
    check(rn::blas_threads() == 2, "blas_threads() after set_blas_threads(2) is " +
                                       std::to_string(rn::blas_threads()));
    rn::set_blas_threads(1);
    check(rn::blas_threads() == 1, "blas_threads() after set_blas_threads(1)");
  }

  return finish("test_resnet_errors");
}
