// propagate (the driver, propagate.cpp): the cost tables of modelled mode. The table's keys,
// reading a table (--costs FILE, with a small JSON reader) and writing one (--calibrate FILE,
// which times each callback's work with the library's kernels).
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "propagate_options.hpp"

namespace propagate_driver {

// ------------------------------------------------------------------------------------------
// Costs: the seconds each callback takes, for one network and batch.
// File format: one flat JSON object (written by --calibrate), read by a small parser that
// accepts objects, strings, numbers, true/false/null and rejects anything else.
// A conv table with spatial S also has, for each spatial level s = 1..S, the costs on images
// halved s times (spatial_cost_names with the suffix _s<s>) and kernel_coarsen.
// ------------------------------------------------------------------------------------------

// name on spatial level s: the base name for s = 0, name_s<s> otherwise
std::string level_name(const char* name, int s);

// Every key a run with these options needs.
std::vector<std::string> needed_costs(const Options& o);

struct Costs {
  std::map<std::string, double> s;
  long width = 0, batch = 0;
  double get(const std::string& name) const {
    const auto it = s.find(name);
    if (it == s.end()) throw std::logic_error("cost " + name + " was not read");
    return it->second;
  }
};

// The table in `file` (--costs), checked against the run's options: its network and sizes,
// and every key the run needs (needed_costs), each a time in [0, 1000] s.
Costs read_costs(const std::string& file, const Options& o);

// v with 9 significant digits, "null" if not finite (the JSON outputs' numbers).
std::string json_number(double v);

// --calibrate FILE: times the callbacks' work for these options and writes the table (rank 0).
void calibrate(const Options& o);

}  // namespace propagate_driver
