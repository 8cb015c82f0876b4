// Private: the MPI datatype of a floating-point type, for the library's own messages.
#pragma once

#include <mpi.h>

namespace layerbraid::resnet::detail {

template <class T>
MPI_Datatype mpi_type();
template <>
inline MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }
template <>
inline MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }

}  // namespace layerbraid::resnet::detail
