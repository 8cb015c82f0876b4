// propagate: forward + backward propagation through a tanh ResNet (dense, or convolutional with
// optional spatial coarsening on the MGRIT levels) with MGRIT, timed.
// One source for the real MPI (mpiexec) and SimGrid SMPI (smpirun); see README.md here.
//
//   real      layerbraid::resnet::Propagation<double>: random weights, a random batch u_0 (or
//             --input FILE), the forward solve, then the adjoint solve from lambda_N = u_N (the
//             gradient of 0.5 |u_N|^2), giving every layer's weight and bias gradients.
//             --network dense (default): Dense(--width). --network conv: Conv(--channels,
//             --image HxW, --kernel), and with --spatial S the time level l works on images
//             halved min(l, S) times (SolverOptions::spatial_coarsen): by default full-size
//             states with low-resolution updates, with --spatial-states small states on the
//             coarse levels (SolverOptions::spatial_states).
//   modelled  the same engine, options and reverted-rank adjoint solve, with an app whose
//             callbacks do no arithmetic but take the time that callback costs (--costs, a
//             table written by --calibrate): under SMPI smpi_execute_benched(seconds) (the
//             simulated host computes that long), under the real MPI a busy wait. Vectors hold
//             no data but messages have the real size, and the exchanges Propagation makes
//             around the adjoint solve (boundary layers' parameters and caches, gradients back)
//             are sent with their real sizes. With --spatial S a coarse step costs the step at
//             its resolution (plus the moves of the low-resolution update); with
//             --spatial-states the vectors carry their resolution, the engine's spatial
//             coarsen/refine callbacks are set as Propagation sets them, and every cost and
//             message size is that resolution's. The iteration counts come
//             from --iters-forward / --iters-adjoint (a real run's counts: MGRIT's iterations do
//             not depend on the number of ranks).
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
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
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
  long depth = 64, width = 32, batch = 64;  // width: features (conv: channels*height*image_width)
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
  std::string costs_file, calibrate_file, json_file, input_file;
  // --network conv: Conv(channels, height, image_width, kernel); spatial: SolverOptions::
  // spatial_coarsen (time level l computes on images halved min(l, spatial) times)
  bool conv = false;
  long channels = 4, height = 8, image_width = 8, kernel = 3;
  int spatial = 0;
  bool spatial_states = false;  // SolverOptions::spatial_states: coarse levels' states are small

  // Sizes (checked by parse_options to fit their uses).
  std::size_t weight_size() const {
    return conv ? static_cast<std::size_t>(channels * channels * kernel * kernel)
                : static_cast<std::size_t>(width * width);
  }
  std::size_t bias_size() const { return static_cast<std::size_t>(conv ? channels : width); }
  std::size_t layer_size() const { return weight_size() + bias_size(); }
  // Values of one state on spatial level s (0: full resolution; dense: always s = 0).
  std::size_t state_size(int s = 0) const {
    if (!conv) return static_cast<std::size_t>(batch * width);
    return static_cast<std::size_t>(batch) * static_cast<std::size_t>(height >> s) *
           static_cast<std::size_t>(image_width >> s) * static_cast<std::size_t>(channels);
  }
  lr::Layer layer() const {
    if (conv) return lr::Conv(channels, height, image_width, kernel);
    return lr::Dense(width);
  }
};

const char* usage_text =
    "usage: propagate [--network dense|conv] [--depth N] [--width W] [--batch B]\n"
    "                 [--channels C] [--image HxW] [--kernel K] [--spatial S]\n"
    "                 [--spatial-states] [--input FILE]\n"
    "                 [--final-time T] [--seed S]\n"
    "                 [--levels L] [--cfactor C] [--relax F|FCF] [--min-coarse M]\n"
    "                 [--tol X | --iters K | --iters-forward K --iters-adjoint K]\n"
    "                 [--repeat R] [--serial-reference] [--no-skip] [--compute real|modelled]\n"
    "                 [--costs FILE] [--calibrate FILE] [--json FILE]\n"
    "  dense: --width W features; conv: --channels C (default 4) on --image HxW (8x8) images,\n"
    "  odd --kernel K (3), --spatial S (0) halvings of the image on the coarse MGRIT levels\n"
    "  (H and W divisible by 2^S), --spatial-states: the coarse levels' states are the small\n"
    "  images (else full size, with low-resolution updates); --input FILE: u_0 as raw\n"
    "  little-endian float64 (conv: NHWC)\n";

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
  bool tol_set = false, iters_set = false, width_set = false, conv_set = false;
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
    if (a == "--spatial-states") {
      o.spatial_states = true;
      conv_set = true;
      continue;
    }
    if (i + 1 >= argc) throw UsageError(a + " needs a value (or is unknown)");
    const std::string v = argv[++i];
    if (a == "--depth") o.depth = parse_long(a, v, 1, imax - 1);
    else if (a == "--width") {
      o.width = parse_long(a, v, 1, 46340);  // width^2 fits an int
      width_set = true;
    } else if (a == "--network") {
      if (v == "dense") o.conv = false;
      else if (v == "conv") o.conv = true;
      else throw UsageError("--network=" + v + " must be dense or conv");
    } else if (a == "--channels") {
      o.channels = parse_long(a, v, 1, 46340);
      conv_set = true;
    } else if (a == "--image") {
      const std::size_t x = v.find('x');
      if (x == std::string::npos) throw UsageError("--image=" + v + " must be HxW, e.g. 8x8");
      o.height = parse_long("--image height", v.substr(0, x), 1, 1L << 20);
      o.image_width = parse_long("--image width", v.substr(x + 1), 1, 1L << 20);
      conv_set = true;
    } else if (a == "--kernel") {
      o.kernel = parse_long(a, v, 1, 1023);
      if (o.kernel % 2 == 0) {
        throw UsageError("--kernel=" + v + " must be odd (same padding: 1, 3, 5, ...)");
      }
      conv_set = true;
    } else if (a == "--spatial") {
      o.spatial = static_cast<int>(parse_long(a, v, 0, 20));
      conv_set = true;
    } else if (a == "--input") {
      o.input_file = v;
    }
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
  if (o.conv && width_set) {
    throw UsageError("--width is for --network dense; a conv network's state is given by "
                     "--channels and --image");
  }
  if (!o.conv && conv_set) {
    throw UsageError("--channels, --image, --kernel, --spatial and --spatial-states need "
                     "--network conv");
  }
  if (o.spatial_states && o.spatial == 0) {
    throw UsageError("--spatial-states needs --spatial S with S >= 1");
  }
  if (o.spatial_states && o.nrelax == 0) {
    throw UsageError("--spatial-states with --relax F never corrects the fine detail of the "
                     "C-points (the solve would not converge); use --relax FCF");
  }
  if (!o.input_file.empty() && (o.modelled || !o.calibrate_file.empty())) {
    throw UsageError("--input FILE (u_0) is for real runs: not with --compute modelled or "
                     "--calibrate, which compute no states");
  }
  if (o.conv) {
    const long div = 1L << o.spatial;
    if (o.height % div != 0 || o.image_width % div != 0) {
      throw UsageError("--spatial " + std::to_string(o.spatial) + " halves the image " +
                       std::to_string(o.spatial) + " times: height and width (--image " +
                       std::to_string(o.height) + "x" + std::to_string(o.image_width) +
                       ") must be divisible by 2^" + std::to_string(o.spatial) + " = " +
                       std::to_string(div));
    }
    // Per layer: C*C*k*k + C values (one MPI message in the exchanges around the adjoint);
    // the im2col row k*k*C and the pixels H*W are BLAS ints.
    const double layer = double(o.channels) * double(o.channels) * double(o.kernel) *
                             double(o.kernel) + double(o.channels);
    if (layer > double(imax)) {
      throw UsageError("channels^2 * kernel^2 + channels = " + std::to_string(layer) +
                       " values per layer, more than an MPI count holds; reduce --channels "
                       "or --kernel");
    }
    const double pixels = double(o.height) * double(o.image_width);
    if (pixels * double(o.channels) > double(imax)) {
      throw UsageError("channels * height * width = " +
                       std::to_string(pixels * double(o.channels)) +
                       " features per sample, more than an int holds");
    }
    o.width = o.channels * o.height * o.image_width;  // the features, as "width" in the JSON
  }
  if (nranks > o.depth + 1) {
    throw UsageError(std::to_string(nranks) + " ranks cannot share depth=" +
                     std::to_string(o.depth) + " layers (" + std::to_string(o.depth + 1) +
                     " points); use at most depth + 1 ranks");
  }
  // Sizes: a state (batch * width doubles) is one MPI message and one BLAS matrix; a message
  // also has Propagation's 16-byte header.
  const double state_bytes = double(o.batch) * double(o.width) * sizeof(double);
  if (state_bytes > double(imax - 16)) {
    throw UsageError(std::string(o.conv ? "batch * channels * height * width" : "batch * width") +
                     " * 8 = " + std::to_string(state_bytes) + " bytes is too large for one "
                     "message (at most " + std::to_string(imax - 16) + " and a 16-byte header); "
                     "reduce --batch or " + (o.conv ? "--channels or --image" : "--width"));
  }
  if (o.conv) {
    // The im2col scratch of a conv step: k*k values per state value.
    const double cols = state_bytes * double(o.kernel) * double(o.kernel);
    if (cols > 16.0 * std::pow(2.0, 30)) {
      throw UsageError("batch * channels * height * width * kernel^2 * 8 = " +
                       std::to_string(cols / std::pow(2.0, 30)) +
                       " GiB of im2col scratch per rank (at most 16); reduce --batch, "
                       "--image or --kernel");
    }
  }
  if (!o.modelled && o.calibrate_file.empty()) {
    // The forward caches: two states per layer, spread over the ranks.
    const double cache = 2.0 * double(o.depth) * state_bytes / nranks;
    if (cache > 0.5 * std::pow(2.0, 40)) {
      throw UsageError("depth * batch * width is too large: the forward caches would take " +
                       std::to_string(cache / std::pow(2.0, 30)) + " GiB per rank");
    }
  }
  if (o.serial_reference && !o.conv) {
    const double all = double(o.depth) * double(o.width) * double(o.width + 1);
    if (all > double(imax)) {
      throw UsageError("--serial-reference gathers depth * width * (width + 1) = " +
                       std::to_string(all) + " values, more than an MPI count holds");
    }
  }
  if (o.serial_reference && o.conv) {
    const double all = double(o.depth) * (double(o.channels) * double(o.channels) *
                                              double(o.kernel) * double(o.kernel) +
                                          double(o.channels));
    if (all > double(imax)) {
      throw UsageError("--serial-reference gathers depth * (channels^2 * kernel^2 + channels) "
                       "= " + std::to_string(all) + " values, more than an MPI count holds");
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

// Layer n: dense, weight N(0, 1/width) (the library's and the Python package's dense init
// scale), bias N(0, 1/width); conv, weight N(0, 1/(channels*kernel^2)) (the fan-in), bias
// N(0, 1/channels). The weight's values first, then the bias's, from one stream.
void fill_layer(const Options& o, int n, lr::Span<double> weight, lr::Span<double> bias) {
  Random r(o.seed, 1, static_cast<unsigned long long>(n));
  const double fan_w = o.conv ? double(o.channels * o.kernel * o.kernel) : double(o.width);
  const double fan_b = o.conv ? double(o.channels) : double(o.width);
  const double sw = 1.0 / std::sqrt(fan_w), sb = 1.0 / std::sqrt(fan_b);
  for (std::size_t i = 0; i < weight.size(); ++i) weight[i] = sw * r.normal();
  for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = sb * r.normal();
}

std::vector<double> make_u0(const Options& o) {
  Random r(o.seed, 2, 0);
  std::vector<double> u(o.state_size());
  for (double& x : u) x = r.normal();
  return u;
}

// --input FILE: u_0 as raw little-endian float64, exactly state_size() values (conv: NHWC,
// dense: batch x width, row-major). The size is checked before anything is read; every value
// must be finite. Errors are UsageErrors (the file is an argument).
std::vector<double> read_input(const Options& o) {
  const std::size_t n = o.state_size();
  const std::string name = "--input " + o.input_file;
  std::ifstream in(o.input_file, std::ios::binary);
  if (!in) throw UsageError(name + ": cannot be opened");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (!in || size < 0) throw UsageError(name + ": cannot tell its size (not a regular file?)");
  const double expected = double(n) * 8.0;
  if (double(size) != expected) {
    throw UsageError(name + " has " + std::to_string(size) + " bytes; u_0 needs " +
                     std::to_string(n) + " float64 values = " + std::to_string(n * 8) +
                     " bytes (" + (o.conv ? "batch*height*width*channels, NHWC"
                                          : "batch*width") + ")");
  }
  in.seekg(0, std::ios::beg);
  std::vector<unsigned char> bytes(n * 8);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!in || in.gcount() != static_cast<std::streamsize>(bytes.size())) {
    throw UsageError(name + ": reading " + std::to_string(bytes.size()) + " bytes failed");
  }
  std::vector<double> u(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t bits = 0;  // little-endian, whatever the host's order
    for (int k = 7; k >= 0; --k) bits = (bits << 8) | bytes[i * 8 + std::size_t(k)];
    std::memcpy(&u[i], &bits, sizeof(double));
    if (!std::isfinite(u[i])) {
      throw UsageError(name + ": value " + std::to_string(i) + " is not a finite number");
    }
  }
  return u;
}

// ------------------------------------------------------------------------------------------
// Costs: the seconds each callback takes, for one network and batch.
// File format: one flat JSON object (written by --calibrate), read by a small parser that
// accepts objects, strings, numbers, true/false/null and rejects anything else.
// A conv table with spatial S also has, for each spatial level s = 1..S, the costs on images
// halved s times (spatial_cost_names with the suffix _s<s>) and kernel_coarsen.
// ------------------------------------------------------------------------------------------
const char* const cost_names[] = {"step_forward_fine", "step_forward_coarse", "step_adjoint_fine",
                                  "step_adjoint_coarse", "clone", "sum", "norm", "init", "pack",
                                  "unpack"};
const char* const spatial_cost_names[] = {"step_forward_coarse", "step_adjoint_coarse", "clone",
                                          "sum", "norm", "pack", "unpack", "coarsen", "refine"};

// name on spatial level s: the base name for s = 0, name_s<s> otherwise
std::string level_name(const char* name, int s) {
  return s == 0 ? std::string(name) : std::string(name) + "_s" + std::to_string(s);
}

// Every key a run with these options needs.
std::vector<std::string> needed_costs(const Options& o) {
  std::vector<std::string> names(std::begin(cost_names), std::end(cost_names));
  for (int s = 1; o.conv && s <= o.spatial; ++s) {
    for (const char* n : spatial_cost_names) names.push_back(level_name(n, s));
  }
  if (o.conv && o.spatial > 0) names.push_back("kernel_coarsen");
  return names;
}

struct Costs {
  std::map<std::string, double> s;
  long width = 0, batch = 0;
  double get(const std::string& name) const {
    const auto it = s.find(name);
    if (it == s.end()) throw std::logic_error("cost " + name + " was not read");
    return it->second;
  }
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
  s.spatial_coarsen = o.conv ? o.spatial : 0;
  s.spatial_states = o.spatial_states;
  return s;
}

struct RealSetup {
  std::unique_ptr<lr::Propagation<double>> prop;
  lr::LayerParameters<double> params;
  std::vector<double> u0;
};

// u_0 (rank 0 of comm) is `input` when given (--input), else N(0, 1).
RealSetup real_setup(const Options& o, MPI_Comm comm, const lr::SolverOptions& fo,
                     const lr::SolverOptions& ao, const std::vector<double>& input) {
  RealSetup s;
  s.prop = std::make_unique<lr::Propagation<double>>(o.layer(), lr::Activation::tanh,
                                                     static_cast<int>(o.depth), o.final_time,
                                                     o.batch, comm, fo, ao);
  s.params = s.prop->make_parameters();
  const lr::LayerRange own = s.params.layers();
  for (int n = own.first; n < own.end(); ++n) {
    fill_layer(o, n, s.params.weight(n), s.params.bias(n));
  }
  if (s.prop->layout().has_first_point()) s.u0 = o.input_file.empty() ? make_u0(o) : input;
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
// Propagation's messages: the state's values; with low-resolution coarse states
// (--spatial-states) a 16-byte header (the state's spatial index) first, and pack reports the
// bytes at the state's resolution (braid_BufferStatusSetSize).
constexpr std::size_t message_header = 16;

// A vector of the modelled app: no data, only the spatial level of the image it stands for
// (0: full resolution; always 0 for dense networks and without --spatial).
struct Token {
  int s;
};

// One direction's costs, by spatial level s = 0..spatial (index s).
struct ModelApp {
  bool adjoint = false;
  int spatial = 0;          // --spatial (0 for dense)
  bool low_states = false;  // --spatial-states: the vectors of coarse levels are small images
  std::size_t header = 0;   // bytes before the state in a message (Propagation's header)
  bool set_size = false;    // pack reports its size (braid_BufferStatusSetSize)
  std::vector<std::size_t> bytes;  // of one state on level s
  double fine = 0, init = 0;
  // coarse: the step on time levels >= 1 (index min(level, spatial)); coarsen[s] / refine[s]:
  // between spatial levels s - 1 and s (index 0 unused)
  std::vector<double> coarse, clone, sum, norm, pack, unpack, coarsen, refine;
};

ModelApp* model(braid_App app) { return reinterpret_cast<ModelApp*>(app); }
braid_Vector token(int s) { return reinterpret_cast<braid_Vector>(new Token{s}); }
int level_of(braid_Vector u) { return reinterpret_cast<Token*>(u)->s; }

braid_Int m_step(braid_App app, braid_Vector, braid_Vector, braid_Vector, braid_StepStatus st) {
  braid_Int level = 0;
  braid_StepStatusGetLevel(st, &level);
  const ModelApp& m = *model(app);
  spend(level == 0 ? m.fine : m.coarse[std::min<std::size_t>(level, m.spatial)]);
  return 0;
}
braid_Int m_init(braid_App app, braid_Real, braid_Vector* u) {
  spend(model(app)->init);
  *u = token(0);
  return 0;
}
braid_Int m_clone(braid_App app, braid_Vector u, braid_Vector* v) {
  const int s = level_of(u);
  spend(model(app)->clone[s]);
  *v = token(s);
  return 0;
}
braid_Int m_free(braid_App, braid_Vector u) {
  delete reinterpret_cast<Token*>(u);
  return 0;
}
braid_Int m_sum(braid_App app, braid_Real, braid_Vector, braid_Real, braid_Vector y) {
  spend(model(app)->sum[level_of(y)]);
  return 0;
}
// A constant, nonzero norm: with tolerance 0 the engine never stops early.
braid_Int m_norm(braid_App app, braid_Vector u, braid_Real* norm) {
  spend(model(app)->norm[level_of(u)]);
  *norm = 1.0;
  return 0;
}
braid_Int m_access(braid_App, braid_Vector, braid_AccessStatus) { return 0; }
// The largest message (the engine takes the maximum over the levels): a full-size state.
braid_Int m_bufsize(braid_App app, braid_Int* size, braid_BufferStatus) {
  *size = static_cast<braid_Int>(model(app)->header + model(app)->bytes[0]);
  return 0;
}
// With spatial coarsening, the bytes of this level's state (as Propagation's pack reports).
braid_Int m_pack(braid_App app, braid_Vector u, void*, braid_BufferStatus status) {
  const ModelApp& m = *model(app);
  const int s = level_of(u);
  spend(m.pack[s]);
  if (m.set_size) {
    braid_BufferStatusSetSize(status, static_cast<braid_Real>(m.header + m.bytes[s]));
  }
  return 0;
}
braid_Int m_unpack(braid_App app, void*, braid_Vector* u, braid_BufferStatus status) {
  const ModelApp& m = *model(app);
  braid_Int level = 0;
  braid_BufferStatusGetLevel(status, &level);
  const int s = m.low_states ? std::min<int>(level, m.spatial) : 0;
  spend(m.unpack[s]);
  *u = token(s);
  return 0;
}
// The engine's spatial coarsen / refine between time levels l and l + 1 (the status gives the
// fine level l): below `spatial` the image is halved (2x2 means) or doubled (each coarse pixel
// on its 2x2 block); from there on a plain copy.
braid_Int m_scoarsen(braid_App app, braid_Vector, braid_Vector* cu,
                     braid_CoarsenRefStatus status) {
  const ModelApp& m = *model(app);
  braid_Int level = 0;
  braid_CoarsenRefStatusGetLevel(status, &level);
  const int from = std::min<int>(level, m.spatial), to = std::min<int>(level + 1, m.spatial);
  spend(from != to ? m.coarsen[std::size_t(to)] : m.clone[std::size_t(from)]);
  *cu = token(to);
  return 0;
}
braid_Int m_srefine(braid_App app, braid_Vector, braid_Vector* fu,
                    braid_CoarsenRefStatus status) {
  const ModelApp& m = *model(app);
  braid_Int level = 0;
  braid_CoarsenRefStatusGetLevel(status, &level);
  const int from = std::min<int>(level + 1, m.spatial), to = std::min<int>(level, m.spatial);
  spend(from != to ? m.refine[std::size_t(from)] : m.clone[std::size_t(from)]);
  *fu = token(to);
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
    ns_ = o.state_size();
    nl_ = o.layer_size();
    const int S = o.conv ? o.spatial : 0;
    for (ModelApp* a : {&fwd_, &bwd_}) {
      a->spatial = S;
      a->low_states = o.spatial_states;
      a->header = o.spatial_states ? message_header : 0;
      a->set_size = o.spatial_states;
      a->init = c.get("init");
      a->coarsen.assign(1, 0.0);
      a->refine.assign(1, 0.0);
      for (int l = 0; l <= S; ++l) {
        a->bytes.push_back(o.state_size(l) * sizeof(double));
        a->coarse.push_back(
            c.get(level_name(a == &fwd_ ? "step_forward_coarse" : "step_adjoint_coarse", l)));
        a->clone.push_back(c.get(level_name("clone", l)));
        a->sum.push_back(c.get(level_name("sum", l)));
        a->norm.push_back(c.get(level_name("norm", l)));
        a->pack.push_back(c.get(level_name("pack", l)));
        a->unpack.push_back(c.get(level_name("unpack", l)));
        if (l > 0) {
          a->coarsen.push_back(c.get(level_name("coarsen", l)));
          a->refine.push_back(c.get(level_name("refine", l)));
        }
      }
    }
    fwd_.fine = c.get("step_forward_fine");
    bwd_.adjoint = true;
    bwd_.fine = c.get("step_adjoint_fine");
    if (!o.spatial_states) {
      // Full-size states: a step on a level of spatial index s > 0 restricts the state s
      // times, keeps a copy of the small image, steps it, subtracts the copy and refines the
      // update s times back onto the state.
      for (ModelApp* a : {&fwd_, &bwd_}) {
        for (int l = 1; l <= S; ++l) {
          double move = 0;
          for (int t = 1; t <= l; ++t) move += a->coarsen[t] + a->refine[t];
          a->coarse[l] += move + a->pack[l] + a->sum[l];
        }
      }
    }
    // Before each solve Propagation coarsens the kernels of its layers S times (forward: the
    // layers this rank owns; adjoint: those whose adjoint steps it takes, which also get
    // sigma'(z_n) restricted S times).
    if (S > 0) {
      const double kc = c.get("kernel_coarsen");
      double deriv = 0;
      for (int l = 1; l <= S; ++l) deriv += c.get(level_name("coarsen", l));
      prepare_forward_ = layout_->owned_layers().count * S * kc;
      prepare_adjoint_ = layout_->adjoint_layers().count * (S * kc + deriv);
    }
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
    spend(prepare_forward_);
    solve(fwd_, o_.iters_forward, r.it_forward, r.levels, r.profile);
    const double t1 = MPI_Wtime();
    agree();
    send_adjoint_inputs();
    spend(prepare_adjoint_);
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
    if (app.spatial > 0 && app.low_states) {  // as Propagation: only with small states
      braid_SetSpatialCoarsen(core, m_scoarsen);
      braid_SetSpatialRefine(core, m_srefine);
    }
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
  double prepare_forward_ = 0, prepare_adjoint_ = 0;  // seconds before each solve
  std::vector<int> foreign_, sent_;
  std::vector<double> recv_, send_, grad_in_;
};

// ------------------------------------------------------------------------------------------
// The serial reference on rank 0, and the gradient comparison
// ------------------------------------------------------------------------------------------
struct Reference {
  double time = -1, rel_error = -1;
};

Reference serial_reference(const Options& o, const RealSetup& par,
                           const std::vector<double>& input) {
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
    RealSetup s = real_setup(o, MPI_COMM_SELF, serial, serial, input);
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
    << ", \"depth\": " << o.depth << ", \"width\": " << o.width << ", \"batch\": " << o.batch;
  if (o.conv) {  // dense runs keep the keys they always had
    j << ", \"network\": \"conv\", \"channels\": " << o.channels << ", \"height\": " << o.height
      << ", \"image_width\": " << o.image_width << ", \"kernel\": " << o.kernel
      << ", \"spatial\": " << o.spatial
      << ", \"spatial_states\": " << (o.spatial_states ? "true" : "false");
  }
  j << ", \"final_time\": " << json_number(o.final_time) << ", \"seed\": " << o.seed
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
  std::string shape = "width=" + std::to_string(o.width);
  if (o.conv) {
    shape = "conv channels=" + std::to_string(o.channels) + " image=" +
            std::to_string(o.height) + "x" + std::to_string(o.image_width) + " kernel=" +
            std::to_string(o.kernel) + " spatial=" + std::to_string(o.spatial) +
            (o.spatial_states ? " (states)" : "");
  }
  std::printf("propagate %s%s: ranks=%d depth=%ld %s batch=%ld levels=%d(%d) cf=%d %s "
              "iters=%d/%d time=%.6g s (fwd %.6g, adj %.6g) steps=%.0f",
              o.modelled ? "modelled" : "real", PROPAGATE_UNDER_SMPI ? " (SMPI)" : "", size,
              o.depth, shape.c_str(), o.batch, o.levels, best.levels, o.cfactor,
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
  // --input: read and checked on rank 0 (which alone needs u_0); a bad file ends every rank
  // with code 2, as a bad argument does.
  std::vector<double> input;
  if (!o.input_file.empty()) {
    std::string error;
    if (rank == 0) {
      try {
        input = read_input(o);
      } catch (const UsageError& e) {
        error = e.what();
      }
    }
    int bad = error.empty() ? 0 : 1;
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (bad) {
      if (rank == 0) std::fprintf(stderr, "propagate: %s\n%s", error.c_str(), usage_text);
      return 2;
    }
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
                             solver_options(o, o.iters_adjoint), input);
    for (int k = 0; k < o.repeat; ++k) runs.push_back(real_once(s));
    if (o.serial_reference) ref = serial_reference(o, s, input);
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
