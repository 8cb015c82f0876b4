// The binding of the MGRIT engine (engine.cpp) for the module definition in _core.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace layerbraid {

// Adds Engine, the status classes and the engine's exception types to the module.
void bind_engine(pybind11::module_ &m);

}  // namespace layerbraid
