/*
 * layerbraid MGRIT engine: utility routines of the XBraid interface's semi-private surface.
 */
#ifndef LAYERBRAID_UTIL_H
#define LAYERBRAID_UTIL_H

#include "_braid.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The part of [ilower, iupper] on the lattice index + k * stride: [*pilower, *piupper]
 *  (empty when *pilower > *piupper). */
braid_Int _braid_ProjectInterval(braid_Int ilower, braid_Int iupper, braid_Int index,
                                 braid_Int stride, braid_Int *pilower, braid_Int *piupper);
/** Interval `interval_index` of this rank on `level` (0 = the leftmost): its F-points
 *  *flo_ptr..*fhi_ptr (none when flo > fhi) and the C-point *ci_ptr on their right (-1 when
 *  the interval ends on another rank). */
braid_Int _braid_GetInterval(braid_Core core, braid_Int level, braid_Int interval_index,
                             braid_Int *flo_ptr, braid_Int *fhi_ptr, braid_Int *ci_ptr);
/** Print to the engine's print file (stdout unless braid_SetPrintFile chose another). */
braid_Int _braid_printf(const char *format, ...)
#if defined(__GNUC__)
   __attribute__((format(printf, 1, 2)))
#endif
   ;
/** Print from rank myid == 0 only, and flush. */
braid_Int _braid_ParFprintfFlush(FILE *file, braid_Int myid, const char *message, ...)
#if defined(__GNUC__)
   __attribute__((format(printf, 3, 4)))
#endif
   ;
/** *max_val = the largest of array[0..size-1] (-1 for an empty array). */
braid_Int _braid_Max(braid_Real *array, braid_Int size, braid_Real *max_val);
/** Copy entries of _array (array_len of them): k > 0 the first k, k < 0 the last |k|; *k_ptr
 *  becomes the number copied (0 and array[0] = -1 when none). */
braid_Int _braid_GetNEntries(braid_Real *_array, braid_Int array_len, braid_Int *k_ptr,
                             braid_Real *array);
/** MPI_Wtime() when the core's timings level is at least timing_level, else -1. */
braid_Real _braid_MPI_Wtime(braid_Core core, braid_Int timing_level);

#ifdef __cplusplus
}
#endif

#endif
