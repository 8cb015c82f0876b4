// propagate (the driver, propagate.cpp): option parsing and checks, the usage text, and the
// layers' parameters and u_0 (random or --input FILE). See propagate_options.hpp.
#include "propagate_options.hpp"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <ios>
#include <limits>
#include <string>
#include <vector>

namespace propagate_driver {

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

namespace {

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

}  // namespace

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

}  // namespace propagate_driver
