// The process-wide interrupt request, shared by layerbraid._core and layerbraid._native.
//
// One flag per process: the number of the signal that asked the running solve to stop, 0 for
// none. Python sets it (layerbraid._core.set_interrupt(signum), typically from a signal
// handler; set_interrupt(0) clears it); both engines read it while they solve and stop the
// solve on every rank when it is set (the rank that saw it raises layerbraid._core.Interrupted,
// the others RemoteRankError). It stays set until Python clears it.
//
// _core owns the flag (engine.cpp). The two modules are separate shared libraries whose
// symbols are hidden, so a variable defined here would exist once per module; instead _core
// publishes an InterruptApi in the capsule `layerbraid._core._interrupt_api`, and _native
// imports it when it is itself imported (PyCapsule_Import, which imports _core first) and
// calls through it: one relaxed atomic load per check.
#pragma once

namespace layerbraid {

struct InterruptApi {
  int version;                  // interrupt_api_version of the module that made it
  int (*requested)();           // the flag: a signal number, 0 for none (never blocks)
  void (*request)(int signum);  // set the flag (0 clears it)
};

inline constexpr int interrupt_api_version = 1;
inline constexpr const char* interrupt_capsule_name = "layerbraid._core._interrupt_api";

}  // namespace layerbraid
