/*
 * Delta correction and Lyapunov estimation (delta.c, doc/delta.md): what the cycle calls.
 */
#ifndef LAYERBRAID_DELTA_H
#define LAYERBRAID_DELTA_H

#include "_braid.h"

/** Free the Delta work space (braid_Destroy). */
void _braid_DeltaFree(braid_Core core);

#endif
