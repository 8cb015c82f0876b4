// The Python views of the engine's status objects (status.cpp), shared with engine.cpp.
//
// A braid_Vector is a box around one Python object, the user's state. One view of each status
// kind lives as long as its Engine and is handed to every callback: StatusScope points it at
// the engine's status for the length of one callback, so a view kept past its callback raises
// instead of reading freed memory.
#pragma once

#include <pybind11/pybind11.h>

extern "C" {
#include "braid.h"
}

struct _braid_Vector_struct {
  pybind11::object state;
};

namespace layerbraid {

struct StepStatus {
  braid_StepStatus s = nullptr;
};
struct AccessStatus {
  braid_AccessStatus s = nullptr;
};
struct BufferStatus {
  braid_BufferStatus s = nullptr;
};
struct CoarsenRefStatus {
  braid_CoarsenRefStatus s = nullptr;
};
struct ObjectiveStatus {
  braid_ObjectiveStatus s = nullptr;
};

// Points a Python status view at the engine's status for the length of one callback, and
// clears it again however the callback ends (a view kept past its callback must not dangle).
template <typename View, typename Raw>
class StatusScope {
 public:
  StatusScope(View *view, Raw raw) : view_(view) { view_->s = raw; }
  ~StatusScope() { view_->s = nullptr; }
  StatusScope(const StatusScope &) = delete;
  StatusScope &operator=(const StatusScope &) = delete;

 private:
  View *view_;
};

// Adds the status classes (StepStatus, AccessStatus, BufferStatus, CoarsenRefStatus,
// ObjectiveStatus and the Delta correction basis view) to the module.
void bind_status(pybind11::module_ &m);

}  // namespace layerbraid
