// propagate: forward + backward propagation through a dense tanh ResNet with MGRIT, timed.
// One source for the real MPI (mpiexec) and SimGrid SMPI (smpirun); see README.md here.
//
//   real      layerbraid::resnet::Propagation<double>: random weights, a random batch u_0,
//             the forward solve, then the adjoint solve from lambda_N = u_N (the gradient of
//             0.5 |u_N|^2), giving every layer's weight and bias gradients.
//   modelled  the same engine, options and reverted-rank adjoint solve, with an app whose
//             callbacks do no arithmetic but take the time that callback costs (--costs, a
//             table written by --calibrate): under SMPI smpi_execute_benched(seconds) (the
//             simulated host computes that long), under the real MPI a busy wait. Vectors hold
//             no data but messages have the real size, and the exchanges Propagation makes
//             around the adjoint solve (boundary layers' parameters and caches, gradients back)
//             are sent with their real sizes. The iteration counts come from --iters-forward /
//             --iters-adjoint (a real run's counts: MGRIT's iterations do not depend on the
//             number of ranks).
//   --calibrate FILE   times each callback's work with the library's kernels and writes FILE.
//
// Rank 0 prints one summary line and, with --json FILE, writes one JSON object.
#include <mpi.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "braid.h"
#include "braid_layerbraid.h"
#include "layerbraid/resnet.hpp"
#include "layerbraid/resnet_app.hpp"

#if defined(LAYERBRAID_SMPI_BUILD) || defined(SMPI_H)
#define PROPAGATE_UNDER_SMPI 1
#include <smpi/smpi.h>
#else
#define PROPAGATE_UNDER_SMPI 0
#endif

namespace lr = layerbraid::resnet;

namespace {

// ------------------------------------------------------------------------------------------
// Errors: a bad argument is found identically on every rank (rank 0 prints it, all exit 2);
// anything else ends every rank through MPI_Abort after this rank prints its message.
// ------------------------------------------------------------------------------------------
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// ------------------------------------------------------------------------------------------
// Options
// ------------------------------------------------------------------------------------------
struct Options {
  long depth = 64, width = 32, batch = 64;
  double final_time = 1.0;
  unsigned long long seed = 1;
  int levels = 4, cfactor = 4, nrelax = 1, min_coarse = 2;
  double tol = 1e-8;
  bool tol_given = true;
  int iters = -1, iters_forward = -1, iters_adjoint = -1;
  int repeat = 1;
  bool serial_reference = false;
  bool skip = true;  // skip the first down-cycle (a solve from zero); off: warm-started steps
  bool modelled = false;
  std::string costs_file, calibrate_file, json_file;
};

const char* usage_text =
    "usage: propagate [--depth N] [--width W] [--batch B] [--final-time T] [--seed S]\n"
    "                 [--levels L] [--cfactor C] [--relax F|FCF] [--min-coarse M]\n"
    "                 [--tol X | --iters K | --iters-forward K --iters-adjoint K]\n"
    "                 [--repeat R] [--serial-reference] [--no-skip] [--compute real|modelled]\n"
    "                 [--costs FILE] [--calibrate FILE] [--json FILE]\n";

long parse_long(const std::string& name, const std::string& text, long lo, long hi) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
    throw UsageError(name + "=" + text + " must be an integer in [" + std::to_string(lo) +
                     ", " + std::to_string(hi) + "]");
  }
  return static_cast<long>(v);
}

double parse_double(const std::string& name, const std::string& text, double lo, bool lo_open) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v) || v < lo || (lo_open && v == lo)) {
    throw UsageError(name + "=" + text + " must be a finite number " + (lo_open ? ">" : ">=") +
                     " " + std::to_string(lo));
  }
  return v;
}

Options parse_options(int argc, char** argv, int nranks) {
  Options o;
  const long imax = std::numeric_limits<int>::max();
  bool tol_set = false, iters_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") throw UsageError("help");
    if (a == "--serial-reference") {
      o.serial_reference = true;
      continue;
    }
    if (a == "--no-skip") {
      o.skip = false;
      continue;
    }
    if (i + 1 >= argc) throw UsageError(a + " needs a value (or is unknown)");
    const std::string v = argv[++i];
    if (a == "--depth") o.depth = parse_long(a, v, 1, imax - 1);
    else if (a == "--width") o.width = parse_long(a, v, 1, 46340);  // width^2 fits an int
    else if (a == "--batch") o.batch = parse_long(a, v, 1, imax);
    else if (a == "--final-time") o.final_time = parse_double(a, v, 0.0, true);
    else if (a == "--seed") {
      o.seed = static_cast<unsigned long long>(
          parse_long(a, v, 0, std::numeric_limits<long>::max()));
    }
    else if (a == "--levels") o.levels = static_cast<int>(parse_long(a, v, 1, 64));
    else if (a == "--cfactor") o.cfactor = static_cast<int>(parse_long(a, v, 2, imax));
    else if (a == "--min-coarse") o.min_coarse = static_cast<int>(parse_long(a, v, 1, imax));
    else if (a == "--relax") {
      if (v == "F") o.nrelax = 0;
      else if (v == "FCF") o.nrelax = 1;
      else throw UsageError("--relax=" + v + " must be F or FCF");
    } else if (a == "--tol") {
      o.tol = parse_double(a, v, 0.0, true);
      tol_set = true;
    } else if (a == "--iters") {
      o.iters = static_cast<int>(parse_long(a, v, 1, 100000));
      iters_set = true;
    } else if (a == "--iters-forward") {
      o.iters_forward = static_cast<int>(parse_long(a, v, 0, 100000));
    } else if (a == "--iters-adjoint") {
      o.iters_adjoint = static_cast<int>(parse_long(a, v, 0, 100000));
    } else if (a == "--repeat") o.repeat = static_cast<int>(parse_long(a, v, 1, 100000));
    else if (a == "--compute") {
      if (v == "real") o.modelled = false;
      else if (v == "modelled") o.modelled = true;
      else throw UsageError("--compute=" + v + " must be real or modelled");
    } else if (a == "--costs") o.costs_file = v;
    else if (a == "--calibrate") o.calibrate_file = v;
    else if (a == "--json") o.json_file = v;
    else throw UsageError("unknown option " + a);
  }
  const bool replay = o.iters_forward >= 0 || o.iters_adjoint >= 0;
  if (replay && (o.iters_forward < 0 || o.iters_adjoint < 0)) {
    throw UsageError("--iters-forward and --iters-adjoint go together");
  }
  if ((tol_set ? 1 : 0) + (iters_set ? 1 : 0) + (replay ? 1 : 0) > 1) {
    throw UsageError("give one of --tol, --iters, --iters-forward/--iters-adjoint");
  }
  if (iters_set) o.iters_forward = o.iters_adjoint = o.iters;
  o.tol_given = !(iters_set || replay);
  if (o.modelled) {
    if (o.costs_file.empty()) throw UsageError("--compute modelled needs --costs FILE");
    if (o.tol_given && o.levels > 1) {
      throw UsageError("--compute modelled needs the iteration counts: --iters K or "
                       "--iters-forward K --iters-adjoint K (a real run's iterations)");
    }
  } else if (!o.costs_file.empty()) {
    throw UsageError("--costs is for --compute modelled");
  }
  if (o.serial_reference && o.modelled) {
    throw UsageError("--serial-reference needs --compute real (modelled mode computes nothing)");
  }
  if (nranks > o.depth + 1) {
    throw UsageError(std::to_string(nranks) + " ranks cannot share depth=" +
                     std::to_string(o.depth) + " layers (" + std::to_string(o.depth + 1) +
                     " points); use at most depth + 1 ranks");
  }
  // Sizes: a state (batch * width doubles) is one MPI message and one BLAS matrix.
  const double state_bytes = double(o.batch) * double(o.width) * sizeof(double);
  if (state_bytes > double(imax)) {
    throw UsageError("batch * width * 8 = " + std::to_string(state_bytes) +
                     " bytes is too large for one message (at most " + std::to_string(imax) +
                     "); reduce --batch or --width");
  }
  if (!o.modelled && o.calibrate_file.empty()) {
    // The forward caches: two states per layer, spread over the ranks.
    const double cache = 2.0 * double(o.depth) * state_bytes / nranks;
    if (cache > 0.5 * std::pow(2.0, 40)) {
      throw UsageError("depth * batch * width is too large: the forward caches would take " +
                       std::to_string(cache / std::pow(2.0, 30)) + " GiB per rank");
    }
  }
  if (o.serial_reference) {
    const double all = double(o.depth) * double(o.width) * double(o.width + 1);
    if (all > double(imax)) {
      throw UsageError("--serial-reference gathers depth * width * (width + 1) = " +
                       std::to_string(all) + " values, more than an MPI count holds");
    }
  }
  return o;
}

// ------------------------------------------------------------------------------------------
// Deterministic random numbers, independent of the number of ranks: layer n's parameters
// come from stream (seed, 1, n), u_0 from (seed, 2, 0).
// ------------------------------------------------------------------------------------------
class Random {
 public:
  Random(unsigned long long seed, unsigned long long stream, unsigned long long index)
      : state_(mix(seed ^ mix(stream * 0x9E3779B97F4A7C15ull + mix(index + 1)))) {}
  double uniform() {  // (0, 1)
    return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }
  double normal() {  // Box-Muller, one value per call
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static unsigned long long mix(unsigned long long z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  unsigned long long next() { return state_ = mix(state_); }
  unsigned long long state_;
};

// Layer n: weight N(0, 1/width) (the library's and the Python package's dense init scale),
// bias N(0, 1/width).
void fill_layer(const Options& o, int n, lr::Span<double> weight, lr::Span<double> bias) {
  Random r(o.seed, 1, static_cast<unsigned long long>(n));
  const double s = 1.0 / std::sqrt(static_cast<double>(o.width));
  for (std::size_t i = 0; i < weight.size(); ++i) weight[i] = s * r.normal();
  for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = s * r.normal();
}

std::vector<double> make_u0(const Options& o) {
  Random r(o.seed, 2, 0);
  std::vector<double> u(static_cast<std::size_t>(o.batch * o.width));
  for (double& x : u) x = r.normal();
  return u;
}

// ------------------------------------------------------------------------------------------
// Costs: the seconds each callback takes, for one width and batch.
// File format: one flat JSON object (written by --calibrate), read by a small parser that
// accepts objects, strings, numbers, true/false/null and rejects anything else.
// ------------------------------------------------------------------------------------------
const char* const cost_names[] = {"step_forward_fine", "step_forward_coarse", "step_adjoint_fine",
                                  "step_adjoint_coarse", "clone", "sum", "norm", "init", "pack",
                                  "unpack"};

struct Costs {
  std::map<std::string, double> s;
  long width = 0, batch = 0;
  double get(const char* name) const { return s.at(name); }
};

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
  if (c.width != o.width || c.batch != o.batch) {
    throw std::runtime_error(file + " was calibrated for width=" + std::to_string(c.width) +
                             " batch=" + std::to_string(c.batch) + ", not --width " +
                             std::to_string(o.width) + " --batch " + std::to_string(o.batch));
  }
  if (strings["network"] != "dense" || strings["activation"] != "tanh") {
    throw std::runtime_error(file + ": network/activation must be dense/tanh");
  }
  for (const char* name : cost_names) {
    const auto it = numbers.find(std::string("costs.") + name);
    if (it == numbers.end() || !(it->second >= 0) || it->second > 1e3) {
      throw std::runtime_error(file + ": costs." + name +
                               " is missing or not a time in seconds in [0, 1000]");
    }
    c.s[name] = it->second;
  }
  return c;
}

// ------------------------------------------------------------------------------------------
// Injecting a cost: simulated computation under SMPI, a busy wait under the real MPI.
// ------------------------------------------------------------------------------------------
void spend(double seconds) {
  if (seconds <= 0) return;
#if PROPAGATE_UNDER_SMPI
  smpi_execute_benched(seconds);
#else
  using clock = std::chrono::steady_clock;
  const auto until = clock::now() + std::chrono::duration<double>(seconds);
  while (clock::now() < until) {
  }
#endif
}

// ------------------------------------------------------------------------------------------
// --calibrate: the callbacks' work, with the library's kernels and the loops of resnet_app.cpp
// ------------------------------------------------------------------------------------------
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

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void calibrate(const Options& o) {
  const std::int64_t B = o.batch, W = o.width;
  const std::size_t ns = static_cast<std::size_t>(B * W);
  const lr::Dense layer(W);
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
    layer.forward<double>(v, B, w[k], b[k], dt, lr::Activation::tanh, work, cu[k], cd[k]);
  }
  auto slot = [&](long i) { return static_cast<std::size_t>(i) % slots; };
  std::map<std::string, double> c;
  // As in a solve's relaxation, one state (u, or lambda) is stepped through many layers and
  // stays in cache, while each step reads another layer's parameters and caches and writes
  // other caches or gradients (the pool). dt is small, so u stays O(1).
  std::vector<double> hot = u[0], lam = u[1];
  c["step_forward_fine"] = time_per_call([&](long i) {
    const std::size_t k = slot(i);
    layer.forward<double>(hot, B, w[k], b[k], dt, lr::Activation::tanh, work, cu[k], cd[k]);
  });
  c["step_forward_coarse"] = time_per_call([&](long i) {
    const std::size_t k = slot(i);
    layer.forward<double>(hot, B, w[k], b[k], dt, lr::Activation::tanh, work);
  });
  c["step_adjoint_fine"] = time_per_call([&](long i) {
    const std::size_t k = slot(i);
    layer.adjoint<double>(lam, B, w[k], dt, cd[k], work, cu[k], gw[k], gb[k]);
  });
  c["step_adjoint_coarse"] = time_per_call([&](long i) {
    const std::size_t k = slot(i);
    layer.adjoint<double>(lam, B, w[k], dt, cd[k], work);
  });
  // clone / init / unpack: new double[] + copy (or zero fill), and the delete[] of the free
  // that follows it (free itself is then counted as 0).
  c["clone"] = time_per_call([&](long i) {
    double* v = new double[ns];
    std::memcpy(v, u[slot(i)].data(), ns * sizeof(double));
    sink = v[ns - 1];
    delete[] v;
  });
  c["init"] = time_per_call([&](long) {
    double* v = new double[ns];
    std::fill(v, v + ns, 0.0);
    sink = v[ns - 1];
    delete[] v;
  });
  c["unpack"] = c["clone"];
  c["pack"] = time_per_call([&](long i) {
    std::memcpy(cu[slot(i)].data(), u[slot(i + 1)].data(), ns * sizeof(double));
  });
  c["sum"] = time_per_call([&](long i) {  // y <- a x + b y, resnet_app.cpp's sum_cb loop
    const double* __restrict__ xs = u[slot(i)].data();
    double* __restrict__ ys = cu[slot(i + 1)].data();
    const double a = 1.0, bb = -1.0;
    for (std::size_t j = 0; j < ns; ++j) ys[j] = a * xs[j] + bb * ys[j];
  });
  c["norm"] = time_per_call([&](long i) {
    const double* v = u[slot(i)].data();
    double s = 0.0;
    for (std::size_t j = 0; j < ns; ++j) s += v[j] * v[j];
    sink = std::sqrt(s);
  });

  char host[256] = "unknown";
  int len = 0;
  MPI_Get_processor_name(host, &len);
  std::ofstream out(o.calibrate_file);
  out << "{\"host\": \"" << host << "\", \"width\": " << W << ", \"batch\": " << B
      << ", \"network\": \"dense\", \"activation\": \"tanh\", \"state_size\": " << ns
      << ", \"costs\": {";
  bool first = true;
  for (const char* name : cost_names) {
    out << (first ? "" : ", ") << "\"" << name << "\": " << json_number(c[name]);
    first = false;
  }
  out << "}}\n";
  if (!out) throw std::runtime_error("--calibrate " + o.calibrate_file + ": cannot be written");
  std::printf("calibrated width=%ld batch=%ld state_size=%zu: step_forward_fine=%.3g s "
              "step_adjoint_fine=%.3g s clone=%.3g s sum=%.3g s norm=%.3g s -> %s\n",
              o.width, o.batch, ns, c["step_forward_fine"], c["step_adjoint_fine"], c["clone"],
              c["sum"], c["norm"], o.calibrate_file.c_str());
}

// ------------------------------------------------------------------------------------------
// Per-rank results of one forward + adjoint
// ------------------------------------------------------------------------------------------
struct Profile {
  double steps = 0, steps_coarsest = 0, messages_sent = 0, messages_received = 0;
  double bytes_sent = 0, time_step = 0, time_step_coarsest = 0, time_wait = 0;
  static constexpr int fields = 8;
  void add(const lr::SolveInfo& i) {
    steps += double(i.steps);
    steps_coarsest += double(i.steps_coarsest);
    messages_sent += double(i.messages_sent);
    messages_received += double(i.messages_received);
    bytes_sent += i.bytes_sent;
    time_step += i.time_step;
    time_step_coarsest += i.time_step_coarsest;
    time_wait += i.time_wait;
  }
  void add(const layerbraid_Profile& p) {
    steps += double(p.steps);
    steps_coarsest += double(p.steps_coarsest);
    messages_sent += double(p.messages_sent);
    messages_received += double(p.messages_received);
    bytes_sent += p.bytes_sent;
    time_step += p.time_step;
    time_step_coarsest += p.time_step_coarsest;
    time_wait += p.time_wait;
  }
  void to(double* v) const {
    const double a[fields] = {steps, steps_coarsest, messages_sent, messages_received,
                              bytes_sent, time_step, time_step_coarsest, time_wait};
    std::copy(a, a + fields, v);
  }
};
const char* const profile_names[Profile::fields] = {
    "steps", "steps_coarsest", "messages_sent", "messages_received",
    "bytes_sent", "time_step", "time_step_coarsest", "time_wait"};

struct Run {
  double t_forward = 0, t_adjoint = 0;  // this rank
  int it_forward = 0, it_adjoint = 0, levels = 0;
  Profile profile;
};

// ------------------------------------------------------------------------------------------
// Real mode
// ------------------------------------------------------------------------------------------
lr::SolverOptions solver_options(const Options& o, int iters) {
  lr::SolverOptions s;
  s.max_levels = o.levels;
  s.min_coarse = o.min_coarse;
  s.cfactor = o.cfactor;
  s.nrelax = o.nrelax;
  s.skip = o.skip;
  if (iters >= 0) {  // exactly `iters` iterations: a tolerance no residual reaches
    s.abs_tol = std::numeric_limits<double>::min();
    s.max_iter = std::max(iters, 1);
  } else {
    s.abs_tol = o.tol;
    s.max_iter = 100;
  }
  s.profile = true;
  return s;
}

struct RealSetup {
  std::unique_ptr<lr::Propagation<double>> prop;
  lr::LayerParameters<double> params;
  std::vector<double> u0;
};

RealSetup real_setup(const Options& o, MPI_Comm comm, const lr::SolverOptions& fo,
                     const lr::SolverOptions& ao) {
  RealSetup s;
  s.prop = std::make_unique<lr::Propagation<double>>(lr::Dense(o.width), lr::Activation::tanh,
                                                     static_cast<int>(o.depth), o.final_time,
                                                     o.batch, comm, fo, ao);
  s.params = s.prop->make_parameters();
  const lr::LayerRange own = s.params.layers();
  for (int n = own.first; n < own.end(); ++n) {
    fill_layer(o, n, s.params.weight(n), s.params.bias(n));
  }
  if (s.prop->layout().has_first_point()) s.u0 = make_u0(o);
  return s;
}

// lambda_N = u_N: the gradient of 0.5 |u_N|^2 (on the last rank).
Run real_once(RealSetup& s) {
  Run r;
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = MPI_Wtime();
  const lr::SolveInfo fi = s.prop->forward(s.params, s.u0);
  const double t1 = MPI_Wtime();
  const std::vector<double> lambda(s.prop->final_state().data(),
                                   s.prop->final_state().data() + s.prop->final_state().size());
  const lr::SolveInfo ai = s.prop->adjoint(lambda);
  const double t2 = MPI_Wtime();
  r.t_forward = t1 - t0;
  r.t_adjoint = t2 - t1;
  r.it_forward = fi.iterations;
  r.it_adjoint = ai.iterations;
  r.levels = fi.levels;
  r.profile.add(fi);
  r.profile.add(ai);
  return r;
}

// ------------------------------------------------------------------------------------------
// Modelled mode: the engine with an app that only spends the calibrated time
// ------------------------------------------------------------------------------------------
struct Token {
  int unused;
};

struct ModelApp {
  const Costs* costs = nullptr;
  bool adjoint = false;
  std::size_t bytes = 0;  // of one state
  double fine = 0, coarse = 0, clone = 0, sum = 0, norm = 0, init = 0, pack = 0, unpack = 0;
};

ModelApp* model(braid_App app) { return reinterpret_cast<ModelApp*>(app); }
braid_Vector token() { return reinterpret_cast<braid_Vector>(new Token{0}); }

braid_Int m_step(braid_App app, braid_Vector, braid_Vector, braid_Vector, braid_StepStatus st) {
  braid_Int level = 0;
  braid_StepStatusGetLevel(st, &level);
  spend(level == 0 ? model(app)->fine : model(app)->coarse);
  return 0;
}
braid_Int m_init(braid_App app, braid_Real, braid_Vector* u) {
  spend(model(app)->init);
  *u = token();
  return 0;
}
braid_Int m_clone(braid_App app, braid_Vector, braid_Vector* v) {
  spend(model(app)->clone);
  *v = token();
  return 0;
}
braid_Int m_free(braid_App, braid_Vector u) {
  delete reinterpret_cast<Token*>(u);
  return 0;
}
braid_Int m_sum(braid_App app, braid_Real, braid_Vector, braid_Real, braid_Vector) {
  spend(model(app)->sum);
  return 0;
}
// A constant, nonzero norm: with tolerance 0 the engine never stops early.
braid_Int m_norm(braid_App app, braid_Vector, braid_Real* norm) {
  spend(model(app)->norm);
  *norm = 1.0;
  return 0;
}
braid_Int m_access(braid_App, braid_Vector, braid_AccessStatus) { return 0; }
braid_Int m_bufsize(braid_App app, braid_Int* size, braid_BufferStatus) {
  *size = static_cast<braid_Int>(model(app)->bytes);
  return 0;
}
braid_Int m_pack(braid_App app, braid_Vector, void*, braid_BufferStatus) {
  spend(model(app)->pack);
  return 0;
}
braid_Int m_unpack(braid_App app, void*, braid_Vector* u, braid_BufferStatus) {
  spend(model(app)->unpack);
  *u = token();
  return 0;
}

class Model {
 public:
  Model(const Options& o, const Costs& c, MPI_Comm world) : o_(o) {
    MPI_Comm_dup(world, &comm_);
    int size = 0, rank = 0;
    MPI_Comm_size(comm_, &size);
    MPI_Comm_rank(comm_, &rank);
    layout_ = std::make_unique<lr::Layout>(static_cast<int>(o.depth), size, rank);
    ns_ = static_cast<std::size_t>(o.batch * o.width);
    nl_ = static_cast<std::size_t>(o.width * o.width + o.width);
    for (ModelApp* a : {&fwd_, &bwd_}) {
      a->costs = &c;
      a->bytes = ns_ * sizeof(double);
      a->clone = c.get("clone");
      a->sum = c.get("sum");
      a->norm = c.get("norm");
      a->init = c.get("init");
      a->pack = c.get("pack");
      a->unpack = c.get("unpack");
    }
    fwd_.fine = c.get("step_forward_fine");
    fwd_.coarse = c.get("step_forward_coarse");
    bwd_.adjoint = true;
    bwd_.fine = c.get("step_adjoint_fine");
    bwd_.coarse = c.get("step_adjoint_coarse");
    const lr::LayerRange own = layout_->owned_layers(), back = layout_->adjoint_layers();
    for (int n = back.first; n < back.end(); ++n)
      if (!own.contains(n)) foreign_.push_back(n);
    for (int n = own.first; n < own.end(); ++n)
      if (layout_->adjoint_owner(n) != rank) sent_.push_back(n);
    recv_.assign(std::max<std::size_t>(1, foreign_.size() * (nl_ + 2 * ns_)), 0.0);
    send_.assign(std::max(ns_, nl_), 0.0);
  }
  ~Model() { MPI_Comm_free(&comm_); }

  Run once() {
    Run r;
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    agree();
    solve(fwd_, o_.iters_forward, r.it_forward, r.levels, r.profile);
    const double t1 = MPI_Wtime();
    agree();
    send_adjoint_inputs();
    int levels = 0;
    solve(bwd_, o_.iters_adjoint, r.it_adjoint, levels, r.profile);
    return_gradients();
    const double t2 = MPI_Wtime();
    r.t_forward = t1 - t0;
    r.t_adjoint = t2 - t1;
    return r;
  }

 private:
  // Propagation checks its inputs on every rank with one MPI_Allreduce before each solve.
  void agree() {
    int mine = 0, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm_);
  }

  void solve(ModelApp& app, int iters, int& it, int& levels, Profile& profile) {
    braid_Core core = nullptr;
    if (braid_Init(comm_, comm_, 0.0, o_.final_time, static_cast<braid_Int>(o_.depth),
                   reinterpret_cast<braid_App>(&app), m_step, m_init, m_clone, m_free, m_sum,
                   m_norm, m_access, m_bufsize, m_pack, m_unpack, &core) != 0) {
      throw std::runtime_error("modelled: braid_Init failed");
    }
    braid_SetMaxLevels(core, o_.levels);
    braid_SetMinCoarse(core, o_.min_coarse);
    braid_SetCFactor(core, -1, o_.cfactor);
    braid_SetNRelax(core, -1, o_.nrelax);
    braid_SetSkip(core, o_.skip ? 1 : 0);
    braid_SetAbsTol(core, 0.0);
    braid_SetMaxIter(core, std::max(iters, 1));
    braid_SetPrintLevel(core, 0);
    braid_SetAccessLevel(core, 1);
    layerbraid_SetTimeCalls(core, 1);  // as SolverOptions::profile: step and wait times
    layerbraid_SetQuietFailures(core, 1);
    // no poll hook, as Propagation without an interrupt check: the engine's waits block in
    // MPI_Waitany (extern/braid/doc/waits.md)
    if (app.adjoint) braid_SetRevertedRanks(core, 1);
    const int err = braid_Drive(core);
    braid_Int n = 0, l = 0;
    braid_GetNumIter(core, &n);
    braid_GetNLevels(core, &l);
    layerbraid_Profile p;
    layerbraid_GetProfile(core, &p);
    braid_Destroy(core);
    if (err != 0) {
      throw std::runtime_error("modelled: braid_Drive failed with code " + std::to_string(err));
    }
    it = n;
    levels = l;
    profile.add(p);
  }

  // As Propagation: layers this rank owns whose adjoint steps run elsewhere send their
  // parameters (weight + bias) and the two cached states there; gradients come back after.
  void send_adjoint_inputs() {
    std::vector<MPI_Request> req;
    const int ns = static_cast<int>(ns_), nl = static_cast<int>(nl_);
    for (std::size_t k = 0; k < foreign_.size(); ++k) {
      const int src = layout_->layer_owner(foreign_[k]);
      double* base = recv_.data() + k * (nl_ + 2 * ns_);
      req.resize(req.size() + 3);
      MPI_Irecv(base, nl, MPI_DOUBLE, src, 1, comm_, &req[req.size() - 3]);
      MPI_Irecv(base + nl_, ns, MPI_DOUBLE, src, 2, comm_, &req[req.size() - 2]);
      MPI_Irecv(base + nl_ + ns_, ns, MPI_DOUBLE, src, 3, comm_, &req[req.size() - 1]);
    }
    for (int n : sent_) {
      const int dest = layout_->adjoint_owner(n);
      req.resize(req.size() + 3);
      MPI_Isend(send_.data(), nl, MPI_DOUBLE, dest, 1, comm_, &req[req.size() - 3]);
      MPI_Isend(send_.data(), ns, MPI_DOUBLE, dest, 2, comm_, &req[req.size() - 2]);
      MPI_Isend(send_.data(), ns, MPI_DOUBLE, dest, 3, comm_, &req[req.size() - 1]);
    }
    MPI_Waitall(static_cast<int>(req.size()), req.data(), MPI_STATUSES_IGNORE);
  }
  void return_gradients() {
    std::vector<MPI_Request> req(sent_.size() + foreign_.size());
    const int nl = static_cast<int>(nl_);
    grad_in_.resize(std::max<std::size_t>(1, sent_.size() * nl_));
    std::size_t i = 0;
    for (std::size_t k = 0; k < sent_.size(); ++k) {
      MPI_Irecv(grad_in_.data() + k * nl_, nl, MPI_DOUBLE, layout_->adjoint_owner(sent_[k]), 4,
                comm_, &req[i++]);
    }
    for (std::size_t k = 0; k < foreign_.size(); ++k) {
      MPI_Isend(send_.data(), nl, MPI_DOUBLE, layout_->layer_owner(foreign_[k]), 4, comm_,
                &req[i++]);
    }
    MPI_Waitall(static_cast<int>(req.size()), req.data(), MPI_STATUSES_IGNORE);
  }

  const Options& o_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::unique_ptr<lr::Layout> layout_;
  std::size_t ns_ = 0, nl_ = 0;
  ModelApp fwd_, bwd_;
  std::vector<int> foreign_, sent_;
  std::vector<double> recv_, send_, grad_in_;
};

// ------------------------------------------------------------------------------------------
// The serial reference on rank 0, and the gradient comparison
// ------------------------------------------------------------------------------------------
struct Reference {
  double time = -1, rel_error = -1;
};

Reference serial_reference(const Options& o, const RealSetup& par) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  // The parallel gradients, layer after layer, gathered on rank 0 (owned ranges are in rank order).
  const lr::LayerParameters<double>& g = par.prop->gradient();
  const int mine = static_cast<int>(g.values().size());
  std::vector<int> counts(size), displs(size);
  MPI_Gather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<double> all;
  if (rank == 0) {
    for (int r = 1; r < size; ++r) displs[r] = displs[r - 1] + counts[r - 1];
    all.resize(static_cast<std::size_t>(displs[size - 1] + counts[size - 1]));
  }
  MPI_Gatherv(g.values().data(), mine, MPI_DOUBLE, all.data(), counts.data(), displs.data(),
              MPI_DOUBLE, 0, MPI_COMM_WORLD);
  Reference ref;
  if (rank == 0) {
    lr::SolverOptions serial;  // max_levels 1: sequential stepping, exact backpropagation
    serial.profile = false;
    RealSetup s = real_setup(o, MPI_COMM_SELF, serial, serial);
    const double t0 = MPI_Wtime();
    s.prop->forward(s.params, s.u0);
    const std::vector<double> lambda(s.prop->final_state().data(),
                                     s.prop->final_state().data() + s.prop->final_state().size());
    s.prop->adjoint(lambda);
    ref.time = MPI_Wtime() - t0;
    const lr::CSpan<double> gs = s.prop->gradient().values();
    if (gs.size() != all.size()) throw std::logic_error("gradient sizes differ");
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < gs.size(); ++i) {
      diff = std::max(diff, std::fabs(all[i] - gs[i]));
      scale = std::max(scale, std::fabs(gs[i]));
    }
    ref.rel_error = scale > 0 ? diff / scale : diff;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return ref;
}

// ------------------------------------------------------------------------------------------
// Reporting
// ------------------------------------------------------------------------------------------
std::string opt_number(bool given, double v) { return given ? json_number(v) : "null"; }

void report(const Options& o, int size, const Run& best, double time, double tf, double ta,
            const std::vector<double>& per_rank, const Reference& ref) {
  std::ostringstream j;
  j << "{\"mode\": \"" << (o.modelled ? "modelled" : "real") << "\", \"simulated\": "
    << (PROPAGATE_UNDER_SMPI ? "true" : "false") << ", \"ranks\": " << size
    << ", \"depth\": " << o.depth << ", \"width\": " << o.width << ", \"batch\": " << o.batch
    << ", \"final_time\": " << json_number(o.final_time) << ", \"seed\": " << o.seed
    << ", \"levels\": " << o.levels << ", \"cfactor\": " << o.cfactor
    << ", \"min_coarse\": " << o.min_coarse << ", \"relax\": \""
    << (o.nrelax == 0 ? "F" : "FCF") << "\", \"skip\": " << (o.skip ? "true" : "false")
    << ", \"tol\": " << opt_number(o.tol_given, o.tol)
    << ", \"iters\": " << (o.iters >= 0 ? std::to_string(o.iters) : "null")
    << ", \"repeat\": " << o.repeat
    << ", \"iterations_forward\": " << best.it_forward
    << ", \"iterations_adjoint\": " << best.it_adjoint << ", \"levels_used\": " << best.levels
    << ", \"time\": " << json_number(time) << ", \"time_forward\": " << json_number(tf)
    << ", \"time_adjoint\": " << json_number(ta)
    << ", \"serial_time\": " << opt_number(ref.time >= 0, ref.time)
    << ", \"gradient_rel_error\": " << opt_number(ref.rel_error >= 0, ref.rel_error)
    << ", \"per_rank\": {";
  for (int f = 0; f < Profile::fields; ++f) {
    j << (f ? ", " : "") << "\"" << profile_names[f] << "\": [";
    for (int r = 0; r < size; ++r) {
      const double v = per_rank[static_cast<std::size_t>(r * Profile::fields + f)];
      j << (r ? ", " : "") << (f < 4 ? std::to_string(std::llround(v)) : json_number(v));
    }
    j << "]";
  }
  j << "}}\n";
  if (!o.json_file.empty()) {
    std::ofstream out(o.json_file);
    out << j.str();
    if (!out) throw std::runtime_error("--json " + o.json_file + ": cannot be written");
  }
  double steps = 0;
  for (int r = 0; r < size; ++r) steps += per_rank[static_cast<std::size_t>(r * Profile::fields)];
  std::printf("propagate %s%s: ranks=%d depth=%ld width=%ld batch=%ld levels=%d(%d) cf=%d %s "
              "iters=%d/%d time=%.6g s (fwd %.6g, adj %.6g) steps=%.0f",
              o.modelled ? "modelled" : "real", PROPAGATE_UNDER_SMPI ? " (SMPI)" : "", size,
              o.depth, o.width, o.batch, o.levels, best.levels, o.cfactor,
              o.nrelax == 0 ? "F" : "FCF", best.it_forward, best.it_adjoint, time, tf, ta, steps);
  if (ref.time >= 0) {
    std::printf(" serial_time=%.6g s grad_rel_err=%.3e", ref.time, ref.rel_error);
  }
  std::printf("\n");
  std::fflush(stdout);
}

int run(int argc, char** argv) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  Options o;
  try {
    o = parse_options(argc, argv, size);
  } catch (const UsageError& e) {
    if (rank == 0) {
      if (std::string(e.what()) != "help") std::fprintf(stderr, "propagate: %s\n", e.what());
      std::fprintf(stderr, "%s", usage_text);
    }
    return std::string(e.what()) == "help" ? 0 : 2;
  }
  lr::set_blas_threads(1);
  if (!o.calibrate_file.empty()) {
    if (rank == 0) calibrate(o);
    MPI_Barrier(MPI_COMM_WORLD);
    return 0;
  }

  std::vector<Run> runs;
  Reference ref;
  if (o.modelled) {
    const Costs costs = read_costs(o.costs_file, o);
    Model m(o, costs, MPI_COMM_WORLD);
    for (int k = 0; k < o.repeat; ++k) runs.push_back(m.once());
  } else {
    RealSetup s = real_setup(o, MPI_COMM_WORLD, solver_options(o, o.iters_forward),
                             solver_options(o, o.iters_adjoint));
    for (int k = 0; k < o.repeat; ++k) runs.push_back(real_once(s));
    if (o.serial_reference) ref = serial_reference(o, s);
  }
  // The fastest repetition by its total time (the slowest rank's); the first is a warm-up
  // when there are several.
  std::size_t best = runs.size() > 1 ? 1 : 0;
  double best_time = 0, best_f = 0, best_a = 0;
  for (std::size_t k = runs.size() > 1 ? 1 : 0; k < runs.size(); ++k) {
    double mine[3] = {runs[k].t_forward + runs[k].t_adjoint, runs[k].t_forward,
                      runs[k].t_adjoint};
    double all[3];
    MPI_Allreduce(mine, all, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (k == (runs.size() > 1 ? 1u : 0u) || all[0] < best_time) {
      best = k;
      best_time = all[0];
      best_f = all[1];
      best_a = all[2];
    }
  }
  double mine[Profile::fields];
  runs[best].profile.to(mine);
  std::vector<double> per_rank(rank == 0 ? static_cast<std::size_t>(size * Profile::fields) : 0);
  MPI_Gather(mine, Profile::fields, MPI_DOUBLE, per_rank.data(), Profile::fields, MPI_DOUBLE, 0,
             MPI_COMM_WORLD);
  if (rank == 0) report(o, size, runs[best], best_time, best_f, best_a, per_rank, ref);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int code = 0;
  try {
    code = run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "propagate: rank %d: %s\n", world_rank(), e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return code;
}
