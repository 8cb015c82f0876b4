// propagate (the driver, propagate.cpp): its options. Parsing and checking the command line
// (Options, parse_options, the usage text, UsageError), and what the options determine before
// any solve: the deterministic random numbers, the layers' parameters and u_0 (random or
// --input FILE).
#pragma once

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "layerbraid/resnet.hpp"
#include "layerbraid/resnet_app.hpp"

// The driver's code is in namespace propagate_driver (one executable; the names shared by its
// files); what a file uses alone stays in that file's anonymous namespace.
namespace propagate_driver {

namespace lr = layerbraid::resnet;

// ------------------------------------------------------------------------------------------
// Errors: a bad argument is found identically on every rank (rank 0 prints it, all exit 2);
// anything else ends every rank through MPI_Abort after this rank prints its message.
// ------------------------------------------------------------------------------------------
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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

extern const char* usage_text;

// Options from argv, checked (against the number of ranks too); a bad argument throws
// UsageError (what(): "help" for --help / -h).
Options parse_options(int argc, char** argv, int nranks);

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
void fill_layer(const Options& o, int n, lr::Span<double> weight, lr::Span<double> bias);

// u_0: N(0, 1) values from stream (seed, 2, 0).
std::vector<double> make_u0(const Options& o);

// --input FILE: u_0 as raw little-endian float64, exactly state_size() values (conv: NHWC,
// dense: batch x width, row-major). The size is checked before anything is read; every value
// must be finite. Errors are UsageErrors (the file is an argument).
std::vector<double> read_input(const Options& o);

}  // namespace propagate_driver
