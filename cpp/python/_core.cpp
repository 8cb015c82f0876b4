// layerbraid._core: the compiled half of the Python package.
//
// Conversion only: no algorithm lives here. It reports which MPI library it was linked
// against, so that layerbraid/__init__.py can check that mpi4py loaded the same one, and binds
// the MGRIT engine (engine.cpp).
#include <mpi.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <stdexcept>
#include <string>

#include "engine.hpp"

namespace {

// MPI_Get_library_version may be called before MPI_Init, so importing needs no MPI set-up.
std::string mpi_library_version() {
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  if (MPI_Get_library_version(version, &length) != MPI_SUCCESS) {
    throw std::runtime_error("MPI_Get_library_version failed");
  }
  return std::string(version, static_cast<std::size_t>(length));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "layerbraid compiled core (MPI engine binding)";
  m.attr("__version__") = LAYERBRAID_VERSION;
  m.def("mpi_library_version", &mpi_library_version,
        "Version string of the MPI library this module is linked against "
        "(MPI_Get_library_version).");
  layerbraid::bind_engine(m);
}
