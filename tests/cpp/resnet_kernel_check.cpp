// resnet_kernel_check IN OUT: one forward step (with caches) and one adjoint step (with
// parameter gradients) of a layerbraid::resnet layer on data from a file, results to a file.
// tests/test_cpp_kernels.py writes IN from NumPy and compares OUT with the NumPy backend.
//
// IN  (little-endian): 8 int64  kind (0 dense, 1 conv), activation (0 tanh, 1 relu,
//                               2 smoothrelu), value size in bytes (8 double, 4 float), batch,
//                               then dense: width 0 0 0 / conv: channels height width kernel;
//                      1 float64 dt;
//                      values: u (state), weight, bias, lam (state).
// OUT (values): u after the step, sigma'(z), lam after the adjoint step, dL/dW, dL/db.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "layerbraid/resnet.hpp"

namespace rn = layerbraid::resnet;

namespace {

template <class T>
std::vector<T> read_values(std::ifstream& in, std::size_t n, const char* what) {
  std::vector<T> v(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(T)));
  if (!in) throw std::runtime_error(std::string("input ends inside ") + what);
  return v;
}

template <class T>
void write_values(std::ofstream& out, const std::vector<T>& v) {
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
}

template <class T, class Layer>
void run(const Layer& layer, std::int64_t batch, rn::Activation act, double dt, std::ifstream& in,
         std::ofstream& out) {
  const std::size_t n = layer.state_size(batch);
  std::vector<T> u = read_values<T>(in, n, "u"), weight = read_values<T>(in, layer.weight_size(), "weight"),
                 bias = read_values<T>(in, layer.bias_size(), "bias"), lam = read_values<T>(in, n, "lam");
  std::vector<T> cache_u(n), deriv(n), gw(layer.weight_size()), gb(layer.bias_size());
  rn::Workspace<T> work(layer, batch);
  layer.forward(rn::Span<T>(u), batch, rn::CSpan<T>(weight), rn::CSpan<T>(bias), dt, act, work,
                rn::Span<T>(cache_u), rn::Span<T>(deriv));
  layer.adjoint(rn::Span<T>(lam), batch, rn::CSpan<T>(weight), dt, rn::CSpan<T>(deriv), work,
                rn::CSpan<T>(cache_u), rn::Span<T>(gw), rn::Span<T>(gb));
  for (const auto* v : {&u, &deriv, &lam, &gw, &gb}) write_values(out, *v);
}

template <class T>
void dispatch(const std::int64_t* h, double dt, std::ifstream& in, std::ofstream& out) {
  const auto act = static_cast<rn::Activation>(h[1]);
  if (h[0] == 0) {
    run<T>(rn::Dense(h[4]), h[3], act, dt, in, out);
  } else if (h[0] == 1) {
    run<T>(rn::Conv(h[4], h[5], h[6], h[7]), h[3], act, dt, in, out);
  } else {
    throw std::invalid_argument("layer kind=" + std::to_string(h[0]) + " (expected 0 dense, 1 conv)");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
    return 2;
  }
  try {
    std::ifstream in(argv[1], std::ios::binary);
    if (!in) throw std::runtime_error(std::string("cannot open ") + argv[1]);
    std::int64_t h[8];
    double dt = 0;
    in.read(reinterpret_cast<char*>(h), sizeof h);
    in.read(reinterpret_cast<char*>(&dt), sizeof dt);
    if (!in) throw std::runtime_error("input ends inside the header");
    if (h[1] < 0 || h[1] > 2) throw std::invalid_argument("activation=" + std::to_string(h[1]));
    std::ofstream out(argv[2], std::ios::binary);
    if (!out) throw std::runtime_error(std::string("cannot write ") + argv[2]);
    if (h[2] == 8) {
      dispatch<double>(h, dt, in, out);
    } else if (h[2] == 4) {
      dispatch<float>(h, dt, in, out);
    } else {
      throw std::invalid_argument("value size=" + std::to_string(h[2]) + " (expected 8 or 4)");
    }
    if (!out) throw std::runtime_error(std::string("writing ") + argv[2] + " failed");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resnet_kernel_check: %s\n", e.what());
    return 1;
  }
  return 0;
}
