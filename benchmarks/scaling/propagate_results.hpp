// propagate (the driver, propagate.cpp): what one forward + adjoint gives on a rank, in real
// and in modelled mode: times, iterations and the engine's per-rank profile.
#pragma once

#include <algorithm>

#include "braid_layerbraid.h"
#include "layerbraid/resnet.hpp"
#include "layerbraid/resnet_app.hpp"

namespace propagate_driver {

// ------------------------------------------------------------------------------------------
// Per-rank results of one forward + adjoint
// ------------------------------------------------------------------------------------------
struct Profile {
  double steps = 0, steps_coarsest = 0, messages_sent = 0, messages_received = 0;
  double bytes_sent = 0, time_step = 0, time_step_coarsest = 0, time_wait = 0;
  static constexpr int fields = 8;
  // From a real solve's lr::SolveInfo or a modelled one's layerbraid_Profile (same fields).
  template <class Counts>
  void add(const Counts& i) {
    steps += double(i.steps);
    steps_coarsest += double(i.steps_coarsest);
    messages_sent += double(i.messages_sent);
    messages_received += double(i.messages_received);
    bytes_sent += double(i.bytes_sent);
    time_step += i.time_step;
    time_step_coarsest += i.time_step_coarsest;
    time_wait += i.time_wait;
  }
  void to(double* v) const {
    const double a[fields] = {steps, steps_coarsest, messages_sent, messages_received,
                              bytes_sent, time_step, time_step_coarsest, time_wait};
    std::copy(a, a + fields, v);
  }
};
inline const char* const profile_names[Profile::fields] = {
    "steps", "steps_coarsest", "messages_sent", "messages_received",
    "bytes_sent", "time_step", "time_step_coarsest", "time_wait"};

struct Run {
  double t_forward = 0, t_adjoint = 0;  // this rank
  int it_forward = 0, it_adjoint = 0, levels = 0;
  Profile profile;
};

}  // namespace propagate_driver
