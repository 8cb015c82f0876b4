/*
 * Sizes without overflow, allocations that never go unchecked.
 *
 * Every count the engine derives from ntime and cfactor (points of a level, a rank's block,
 * the byte count of an array) goes through these helpers, and every allocation either
 * succeeds or becomes braid_ERROR_MEMORY: reported like a failed callback (message, notice
 * to the other ranks, so that their braid_Drive returns too) rather than a crash.
 */
#ifndef LAYERBRAID_CHECKED_H
#define LAYERBRAID_CHECKED_H

#include <limits.h>
#include <stddef.h>

#include "braid.h"

/* Largest ntime: its ntime + 1 points, and every index of them, must fit a braid_Int. */
#define _BRAID_MAX_NTIME (INT_MAX - 1)

/** *sum = a + b; returns 1 (and leaves *sum alone) when it does not fit a braid_Int. */
int _braid_AddInt(braid_Int a, braid_Int b, braid_Int *sum);
/** *product = a * b; returns 1 (and leaves *product alone) when it does not fit a braid_Int. */
int _braid_MulInt(braid_Int a, braid_Int b, braid_Int *product);
/** ceil(a / b) for a >= 0, b > 0, without the overflow of (a + b - 1) / b. */
braid_Int _braid_CeilDiv(braid_Int a, braid_Int b);
/** The first multiple of m that is >= a (a >= 0, m > 0), or INT_MAX when that multiple does
 *  not fit a braid_Int (then it lies beyond every index anyway). */
braid_Int _braid_RoundUp(braid_Int a, braid_Int m);

/** Record an allocation of count elements of size bytes that failed: the message (unless
 *  the host asked for quiet failures), the failure text and the notice to the other ranks.
 *  Returns braid_ERROR_MEMORY. */
braid_Int _braid_OutOfMemory(braid_Core core, const char *what, braid_Int count, size_t size);
/** count (>= 0) zeroed elements of size bytes, or NULL after _braid_OutOfMemory. A count of
 *  0 allocates one element, so that NULL always means failure. */
void *_braid_Calloc(braid_Core core, const char *what, braid_Int count, size_t size);
/** Resize *ptr to count elements; on failure *ptr is kept and braid_ERROR_MEMORY returned
 *  after _braid_OutOfMemory. */
braid_Int _braid_Realloc(braid_Core core, const char *what, void **ptr, braid_Int count,
                         size_t size);
/** Append value to a residual history (*values, *n entries, room for *capacity), which
 *  doubles as it fills (max_iter may be as large as INT_MAX). */
braid_Int _braid_HistoryAppend(braid_Core core, const char *what, braid_Real **values,
                               braid_Int *n, braid_Int *capacity, braid_Real value);

#endif
