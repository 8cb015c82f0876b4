// propagate (the driver, propagate.cpp): the cost table's format, its JSON reader (--costs)
// and --calibrate. See propagate_costs.hpp.
#include "propagate_costs.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "layerbraid/resnet.hpp"
#include "layerbraid/resnet_app.hpp"

namespace propagate_driver {

namespace {

// The keys of a cost table (its format: propagate_costs.hpp).
const char* const cost_names[] = {"step_forward_fine", "step_forward_coarse", "step_adjoint_fine",
                                  "step_adjoint_coarse", "clone", "sum", "norm", "init", "pack",
                                  "unpack"};
const char* const spatial_cost_names[] = {"step_forward_coarse", "step_adjoint_coarse", "clone",
                                          "sum", "norm", "pack", "unpack", "coarsen", "refine"};

}  // namespace

std::string level_name(const char* name, int s) {
  return s == 0 ? std::string(name) : std::string(name) + "_s" + std::to_string(s);
}

std::vector<std::string> needed_costs(const Options& o) {
  std::vector<std::string> names(std::begin(cost_names), std::end(cost_names));
  for (int s = 1; o.conv && s <= o.spatial; ++s) {
    for (const char* n : spatial_cost_names) names.push_back(level_name(n, s));
  }
  if (o.conv && o.spatial > 0) names.push_back("kernel_coarsen");
  return names;
}

namespace {

class JsonReader {
 public:
  JsonReader(std::string text, std::string file) : t_(std::move(text)), file_(std::move(file)) {}

  // Top level: an object; numbers and strings by dotted key ("costs.sum").
  void parse(std::map<std::string, double>& numbers, std::map<std::string, std::string>& strings) {
    ws();
    object("", numbers, strings);
    ws();
    if (p_ != t_.size()) fail("text after the closing brace");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(file_ + ": not a costs file written by --calibrate: " + what +
                             " at offset " + std::to_string(p_));
  }
  void ws() {
    while (p_ < t_.size() && std::strchr(" \t\r\n", t_[p_]) != nullptr) ++p_;
  }
  void expect(char c) {
    ws();
    if (p_ >= t_.size() || t_[p_] != c) fail(std::string("expected '") + c + "'");
    ++p_;
  }
  std::string string() {
    expect('"');
    std::string s;
    while (p_ < t_.size() && t_[p_] != '"') {
      if (t_[p_] == '\\' || static_cast<unsigned char>(t_[p_]) < 0x20) {
        fail("escapes and control characters are not accepted in strings");
      }
      s += t_[p_++];
    }
    if (p_ >= t_.size()) fail("unterminated string");
    ++p_;
    return s;
  }
  void object(const std::string& prefix, std::map<std::string, double>& numbers,
              std::map<std::string, std::string>& strings) {
    expect('{');
    ws();
    if (p_ < t_.size() && t_[p_] == '}') {
      ++p_;
      return;
    }
    for (;;) {
      ws();
      const std::string key = prefix + string();
      if (numbers.count(key) || strings.count(key)) fail("duplicate key '" + key + "'");
      expect(':');
      ws();
      if (p_ >= t_.size()) fail("missing value");
      const char c = t_[p_];
      if (c == '{') {
        object(key + ".", numbers, strings);
      } else if (c == '"') {
        strings[key] = string();
      } else if (t_.compare(p_, 4, "null") == 0 || t_.compare(p_, 4, "true") == 0) {
        p_ += 4;
      } else if (t_.compare(p_, 5, "false") == 0) {
        p_ += 5;
      } else {
        const char* begin = t_.c_str() + p_;
        char* end = nullptr;
        const double v = std::strtod(begin, &end);
        if (end == begin || !std::isfinite(v)) fail("a value that is not a finite number");
        p_ += static_cast<std::size_t>(end - begin);
        numbers[key] = v;
      }
      ws();
      if (p_ < t_.size() && t_[p_] == ',') {
        ++p_;
        continue;
      }
      expect('}');
      return;
    }
  }
  std::string t_, file_;
  std::size_t p_ = 0;
};

}  // namespace

Costs read_costs(const std::string& file, const Options& o) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("--costs " + file + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> strings;
  JsonReader(ss.str(), file).parse(numbers, strings);
  Costs c;
  for (const char* key : {"width", "batch", "state_size"}) {
    if (!numbers.count(key)) throw std::runtime_error(file + ": no \"" + std::string(key) + "\"");
  }
  c.width = std::lround(numbers["width"]);
  c.batch = std::lround(numbers["batch"]);
  const std::string network = strings.count("network") ? strings["network"] : "";
  if (network != (o.conv ? "conv" : "dense") || strings["activation"] != "tanh") {
    throw std::runtime_error(file + ": calibrated for network/activation " + network + "/" +
                             strings["activation"] + ", this run is " +
                             (o.conv ? "conv" : "dense") + "/tanh (--network)");
  }
  if (!o.conv && (c.width != o.width || c.batch != o.batch)) {
    throw std::runtime_error(file + " was calibrated for width=" + std::to_string(c.width) +
                             " batch=" + std::to_string(c.batch) + ", not --width " +
                             std::to_string(o.width) + " --batch " + std::to_string(o.batch));
  }
  if (o.conv) {
    for (const char* key : {"channels", "height", "image_width", "kernel", "spatial"}) {
      if (!numbers.count(key)) {
        throw std::runtime_error(file + ": a conv cost table without \"" + std::string(key) +
                                 "\"");
      }
    }
    const long ch = std::lround(numbers["channels"]), h = std::lround(numbers["height"]),
               w = std::lround(numbers["image_width"]), k = std::lround(numbers["kernel"]),
               sp = std::lround(numbers["spatial"]);
    if (ch != o.channels || h != o.height || w != o.image_width || k != o.kernel ||
        c.batch != o.batch) {
      throw std::runtime_error(
          file + " was calibrated for channels=" + std::to_string(ch) + " image=" +
          std::to_string(h) + "x" + std::to_string(w) + " kernel=" + std::to_string(k) +
          " batch=" + std::to_string(c.batch) + ", not --channels " +
          std::to_string(o.channels) + " --image " + std::to_string(o.height) + "x" +
          std::to_string(o.image_width) + " --kernel " + std::to_string(o.kernel) +
          " --batch " + std::to_string(o.batch));
    }
    if (sp < o.spatial) {
      throw std::runtime_error(file + " was calibrated for --spatial " + std::to_string(sp) +
                               ", this run needs the costs of " + std::to_string(o.spatial) +
                               " spatial levels: calibrate with --spatial " +
                               std::to_string(o.spatial) + " (or more)");
    }
  }
  for (const std::string& name : needed_costs(o)) {
    const auto it = numbers.find("costs." + name);
    if (it == numbers.end() || !(it->second >= 0) || it->second > 1e3) {
      throw std::runtime_error(file + ": costs." + name +
                               " is missing or not a time in seconds in [0, 1000]");
    }
    c.s[name] = it->second;
  }
  return c;
}

// ------------------------------------------------------------------------------------------
// --calibrate: the callbacks' work, with the library's kernels and the loops of resnet_app.cpp
// ------------------------------------------------------------------------------------------
namespace {

volatile double sink = 0;

// Median over `batches` batches of the seconds per call of f (reps calls a batch, grown until
// a batch takes >= 20 ms).
template <class F>
double time_per_call(F&& f) {
  using clock = std::chrono::steady_clock;
  long reps = 1;
  for (;;) {
    const auto t0 = clock::now();
    for (long i = 0; i < reps; ++i) f(i);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (dt >= 0.02 || reps >= (1L << 24)) break;
    reps *= 2;
  }
  std::vector<double> per;
  for (int b = 0; b < 7; ++b) {
    const auto t0 = clock::now();
    for (long i = 0; i < reps; ++i) f(i);
    per.push_back(std::chrono::duration<double>(clock::now() - t0).count() / double(reps));
  }
  std::sort(per.begin(), per.end());
  return per[per.size() / 2];
}

}  // namespace

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

namespace {

// clone / init / unpack / pack / sum / norm on vectors of n values: xs and ys are pools of
// distinct vectors of that size (clone, pack, sum and norm read them in turn).
// clone / init / unpack: new double[] + copy (or zero fill), and the delete[] of the free
// that follows it (free itself is then counted as 0).
void time_vector_ops(std::map<std::string, double>& c, int s, std::size_t n,
                     std::vector<std::vector<double>>& xs, std::vector<std::vector<double>>& ys) {
  const std::size_t slots = xs.size();
  auto slot = [&](long i) { return static_cast<std::size_t>(i) % slots; };
  c[level_name("clone", s)] = time_per_call([&](long i) {
    double* v = new double[n];
    std::memcpy(v, xs[slot(i)].data(), n * sizeof(double));
    sink = v[n - 1];
    delete[] v;
  });
  if (s == 0) {
    c["init"] = time_per_call([&](long) {
      double* v = new double[n];
      std::fill(v, v + n, 0.0);
      sink = v[n - 1];
      delete[] v;
    });
  }
  c[level_name("unpack", s)] = c[level_name("clone", s)];
  c[level_name("pack", s)] = time_per_call([&](long i) {
    std::memcpy(ys[slot(i)].data(), xs[slot(i + 1)].data(), n * sizeof(double));
  });
  // y <- a x + b y, resnet_app.cpp's sum_cb loop
  c[level_name("sum", s)] = time_per_call([&](long i) {
    const double* __restrict__ x = xs[slot(i)].data();
    double* __restrict__ y = ys[slot(i + 1)].data();
    const double a = 1.0, bb = -1.0;
    for (std::size_t j = 0; j < n; ++j) y[j] = a * x[j] + bb * y[j];
  });
  c[level_name("norm", s)] = time_per_call([&](long i) {
    const double* v = xs[slot(i)].data();
    double sum = 0.0;
    for (std::size_t j = 0; j < n; ++j) sum += v[j] * v[j];
    sink = std::sqrt(sum);
  });
}

// The costs of one layer type L (Dense or Conv) at full resolution; for Conv also those of
// the spatial levels 1..spatial.
template <class L>
std::map<std::string, double> calibrate_layer(const Options& o, const L& layer) {
  const std::int64_t B = o.batch;
  const std::size_t ns = o.state_size();
  lr::Workspace<double> work(layer, B);
  const double dt = o.final_time / double(o.depth);
  // A pool of distinct states, caches and layers, used in turn, so that (as in a real solve
  // that walks through many layers) the operands are not all in cache: >= 64 MiB, <= 256 slots.
  const std::size_t slots = std::clamp<std::size_t>(
      (64u << 20) / (ns * sizeof(double)) + 1, 4, std::min<std::size_t>(256, o.depth + 1));
  std::vector<std::vector<double>> u(slots), cu(slots), cd(slots), w(slots), b(slots);
  std::vector<std::vector<double>> gw(slots), gb(slots);
  Random r(o.seed, 3, 0);
  for (std::size_t k = 0; k < slots; ++k) {
    u[k].resize(ns);
    for (double& x : u[k]) x = r.normal();
    cu[k].assign(ns, 0.0);
    cd[k].assign(ns, 0.0);
    w[k].resize(layer.weight_size());
    b[k].resize(layer.bias_size());
    fill_layer(o, static_cast<int>(k), w[k], b[k]);
    gw[k].assign(layer.weight_size(), 0.0);
    gb[k].assign(layer.bias_size(), 0.0);
  }
  // Caches from one real fine step, so the adjoint sees genuine sigma'(z).
  for (std::size_t k = 0; k < slots; ++k) {
    std::vector<double> v = u[k];
    layer.template forward<double>(v, B, w[k], b[k], dt, lr::Activation::tanh, work, cu[k],
                                   cd[k]);
  }
  auto slot = [&](long i) { return static_cast<std::size_t>(i) % slots; };
  std::map<std::string, double> c;
  // As in a solve's relaxation, one state (u, or lambda) is stepped through many layers and
  // stays in cache, while each step reads another layer's parameters and caches and writes
  // other caches or gradients (the pool). dt is small, so u stays O(1).
  std::vector<double> hot = u[0], lam = u[1];
  c["step_forward_fine"] = time_per_call([&](long i) {
    const std::size_t k = slot(i);
    layer.template forward<double>(hot, B, w[k], b[k], dt, lr::Activation::tanh, work, cu[k],
                                   cd[k]);
  });
  c["step_forward_coarse"] = time_per_call([&](long i) {
    const std::size_t k = slot(i);
    layer.template forward<double>(hot, B, w[k], b[k], dt, lr::Activation::tanh, work);
  });
  c["step_adjoint_fine"] = time_per_call([&](long i) {
    const std::size_t k = slot(i);
    layer.template adjoint<double>(lam, B, w[k], dt, cd[k], work, cu[k], gw[k], gb[k]);
  });
  c["step_adjoint_coarse"] = time_per_call([&](long i) {
    const std::size_t k = slot(i);
    layer.template adjoint<double>(lam, B, w[k], dt, cd[k], work);
  });
  time_vector_ops(c, 0, ns, u, cu);

  if constexpr (std::is_same_v<L, lr::Conv>) {
    const std::int64_t C = o.channels, K = o.kernel;
    // Spatial level s: the pools restricted (states, sigma'(z)) and the kernels coarsened s
    // times, as Propagation prepares them, and the Conv of the halved image.
    std::vector<std::vector<double>> us = u, cds = cd, ws = w;
    if (o.spatial > 0) {
      std::vector<double> scratch(layer.weight_size());
      c["kernel_coarsen"] = time_per_call([&](long i) {
        lr::coarsen_kernel<double>(w[slot(i)], scratch, C, K);
        sink = scratch[0];
      });
    }
    for (int s = 1; s <= o.spatial; ++s) {
      const std::int64_t hf = o.height >> (s - 1), wf = o.image_width >> (s - 1);
      const std::size_t nf = o.state_size(s - 1), nc = o.state_size(s);
      const lr::Conv coarse(C, hf / 2, wf / 2, K);
      lr::Workspace<double> cwork(coarse, B);
      std::vector<std::vector<double>> un(slots), cdn(slots), wn(slots), yn(slots);
      for (std::size_t k = 0; k < slots; ++k) {
        un[k].resize(nc);
        lr::restrict_image<double>(us[k], un[k], B, hf, wf, C);
        cdn[k].resize(nc);
        lr::restrict_image<double>(cds[k], cdn[k], B, hf, wf, C);
        wn[k].resize(layer.weight_size());
        lr::coarsen_kernel<double>(ws[k], wn[k], C, K);
        yn[k].assign(nc, 0.0);
      }
      // coarsen: a new coarse vector holding the 2x2 means of the finer one; refine: a new
      // finer vector, zero, plus each coarse pixel on its 2x2 block (both with the delete[]
      // of the free that follows)
      c[level_name("coarsen", s)] = time_per_call([&](long i) {
        double* v = new double[nc];
        lr::restrict_image<double>(us[slot(i)], lr::Span<double>(v, nc), B, hf, wf, C);
        sink = v[nc - 1];
        delete[] v;
      });
      c[level_name("refine", s)] = time_per_call([&](long i) {
        double* v = new double[nf];
        std::fill(v, v + nf, 0.0);
        lr::refine_image<double>(un[slot(i)], lr::Span<double>(v, nf), B, hf, wf, C);
        sink = v[nf - 1];
        delete[] v;
      });
      std::vector<double> hot_s = un[0], lam_s = un[1];
      c[level_name("step_forward_coarse", s)] = time_per_call([&](long i) {
        const std::size_t k = slot(i);
        coarse.forward<double>(hot_s, B, wn[k], b[k], dt, lr::Activation::tanh, cwork);
      });
      c[level_name("step_adjoint_coarse", s)] = time_per_call([&](long i) {
        const std::size_t k = slot(i);
        coarse.adjoint<double>(lam_s, B, wn[k], dt, cdn[k], cwork);
      });
      time_vector_ops(c, s, nc, un, yn);
      us = std::move(un);
      cds = std::move(cdn);
      ws = std::move(wn);
    }
  }
  return c;
}

}  // namespace

void calibrate(const Options& o) {
  const std::size_t ns = o.state_size();
  const std::map<std::string, double> c =
      o.conv ? calibrate_layer(o, lr::Conv(o.channels, o.height, o.image_width, o.kernel))
             : calibrate_layer(o, lr::Dense(o.width));
  char host[256] = "unknown";
  int len = 0;
  MPI_Get_processor_name(host, &len);
  std::ofstream out(o.calibrate_file);
  out << "{\"host\": \"" << host << "\", \"width\": " << o.width << ", \"batch\": " << o.batch
      << ", \"network\": \"" << (o.conv ? "conv" : "dense") << "\", \"activation\": \"tanh\", ";
  if (o.conv) {
    out << "\"channels\": " << o.channels << ", \"height\": " << o.height
        << ", \"image_width\": " << o.image_width << ", \"kernel\": " << o.kernel
        << ", \"spatial\": " << o.spatial << ", ";
  }
  out << "\"state_size\": " << ns << ", \"costs\": {";
  bool first = true;
  for (const std::string& name : needed_costs(o)) {
    out << (first ? "" : ", ") << "\"" << name << "\": " << json_number(c.at(name));
    first = false;
  }
  out << "}}\n";
  if (!out) throw std::runtime_error("--calibrate " + o.calibrate_file + ": cannot be written");
  if (o.conv) {
    std::printf("calibrated conv channels=%ld image=%ldx%ld kernel=%ld spatial=%d batch=%ld "
                "state_size=%zu: ", o.channels, o.height, o.image_width, o.kernel, o.spatial,
                o.batch, ns);
  } else {
    std::printf("calibrated width=%ld batch=%ld state_size=%zu: ", o.width, o.batch, ns);
  }
  std::printf("step_forward_fine=%.3g s step_adjoint_fine=%.3g s clone=%.3g s sum=%.3g s "
              "norm=%.3g s -> %s\n", c.at("step_forward_fine"), c.at("step_adjoint_fine"),
              c.at("clone"), c.at("sum"), c.at("norm"), o.calibrate_file.c_str());
}

}  // namespace propagate_driver
