/*
 * layerbraid MGRIT engine: the status object behind every braid_*Status handle
 * (semi-private surface of the XBraid interface).
 *
 * The engine fills one _braid_Status just before each callback and passes its address cast
 * to the handle type the callback expects (braid_StepStatus, braid_AccessStatus, ...); the
 * getters of braid_status.h read it back. Programs should use those getters.
 */
#ifndef LAYERBRAID_STATUS_H
#define LAYERBRAID_STATUS_H

#include "braid_status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct _braid_Core_struct;

typedef struct _braid_Status_struct {
   struct _braid_Core_struct *core; /* for getters that need the grids; may be NULL */
   braid_Real t;                /* time of the vector (access) or tstart (step) */
   braid_Real tstop;            /* step: end of the interval */
   braid_Int  tindex;           /* index of t on `level` */
   braid_Int  level;
   braid_Int  nlevels;
   braid_Int  iter;
   braid_Int  done;
   braid_Int  wrapper_test;     /* 1 when called from braid_Test* */
   braid_Int  calling_function; /* braid_ASCaller_* */
   braid_Int  messagetype;      /* buffer: 0 = step communication */
   braid_Real size;             /* buffer: bytes written by bufpack, -1 = not set */
   braid_Real rnorm;            /* last residual norm, -1 if none */
   braid_Real tol;
} _braid_Status;

/** The generic view of a typed status handle. */
#define _braid_StatusElt(status, elt) (((_braid_Status *) (status))->elt)

/** Reset every field to its neutral value (level 0, rnorm -1, size -1, ...). */
void _braid_StatusInit(_braid_Status *s);

#ifdef __cplusplus
}
#endif

#endif
