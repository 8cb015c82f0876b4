/*
 * layerbraid MGRIT engine: basic types and constants of the XBraid C interface.
 *
 * The names and values here are fixed by the interface so that programs written against
 * XBraid compile unchanged; the engine itself is written from the published MGRIT algorithm.
 */
#ifndef LAYERBRAID_BRAID_DEFS_H
#define LAYERBRAID_BRAID_DEFS_H

#include <mpi.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int    braid_Int;
typedef double braid_Real;
typedef char   braid_Byte;

#define braid_MPI_INT  MPI_INT
#define braid_MPI_REAL MPI_DOUBLE
#define braid_MPI_Comm MPI_Comm

/** Value reported for a residual norm that was not computed. */
#define braid_INVALID_RNORM -1

/* Error codes returned by the API (bit flags). */
#define braid_ERROR_GENERIC 1
#define braid_ERROR_MEMORY  2
#define braid_ERROR_ARG     4

#define braid_RAND_MAX 32768

/* Fortran interface switches of the interface; this engine has no Fortran layer. */
#define braid_FMANGLE 1
#define braid_Fortran_SpatialCoarsen 0
#define braid_Fortran_Residual 1
#define braid_Fortran_TimeGrid 1
#define braid_Fortran_Sync 1

/* Codes reported by braid_*StatusGetCallingFunction: which engine routine made the call. */
#define braid_ASCaller_FInterp               0
#define braid_ASCaller_FRestrict             1
#define braid_ASCaller_FRefine               2
#define braid_ASCaller_FAccess               3
#define braid_ASCaller_FRefine_AfterInitHier 4
#define braid_ASCaller_Drive_TopCycle        5
#define braid_ASCaller_FCRelax               6
#define braid_ASCaller_Drive_AfterInit       7
#define braid_ASCaller_BaseStep_diff         8
#define braid_ASCaller_ComputeFullRNorm      9
#define braid_ASCaller_FASResidual          10
#define braid_ASCaller_Residual             11
#define braid_ASCaller_InitGuess            12
#define braid_ASCaller_Warmup               13

#ifdef __cplusplus
}
#endif

#endif
