/*
 * layerbraid MGRIT engine: the status object behind every braid_*Status handle
 * (semi-private surface of the XBraid interface).
 *
 * The engine fills one _braid_Status just before each callback and passes its address cast
 * to the handle type the callback expects (braid_StepStatus, braid_AccessStatus, ...); the
 * getters of braid_status.h read it back. Programs should use those getters.
 *
 * Fields fall in two groups:
 * - the position, written by the engine before the call (t, tindex, level, ...);
 * - per-call requests a callback may make through a setter (rfactor, rdtvalues, r_space,
 *   size): reset before every callback, read by the engine right after it returns.
 * What must outlive a call (braid_StatusSetOldFineTolx, ...SetTightFineTolx) is kept in the
 * core (old_fine_tolx, tight_fine_tolx), not here.
 */
#ifndef LAYERBRAID_STATUS_H
#define LAYERBRAID_STATUS_H

#include "braid_status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct _braid_Core_struct;

typedef struct _braid_Status_struct {
   struct _braid_Core_struct *core; /* for getters that need the grids; NULL in the statuses
                                     * braid_Test* builds (getters then answer neutrally) */
   /* position */
   braid_Real t;                /* time of the vector (access, buffer), tstart (step), the
                                 * time being coarsened or refined (coarsen/refine) */
   braid_Real tstop;            /* step: end of the interval [t, tstop] */
   braid_Int  tindex;           /* index of t on `level` (-1: not tied to a point) */
   braid_Int  level;
   braid_Int  nlevels;
   braid_Int  iter;
   braid_Int  done;
   braid_Int  wrapper_test;     /* 1 when called from braid_Test* */
   braid_Int  calling_function; /* braid_ASCaller_* */
   braid_Int  messagetype;      /* buffer: 0 = step communication, 1 = load balancing */
   braid_Real rnorm;            /* last residual norm, -1 if none */
   braid_Real tol;              /* the halting tolerance (absolute or relative, core->rtol) */

   /* coarsen/refine: the neighbours of t on the fine and the coarse level. The fine level
    * is `level`, the coarse one level + 1. Equal to t outside a coarsen/refine call. */
   braid_Real f_tprior, f_tstop; /* coarsen/refine only: fine-level time points around t */
   braid_Real c_tprior, c_tstop; /* coarse-level time points before and after t */

   /* per-call requests (reset by _braid_StatusFor) */
   braid_Real size;             /* buffer: bytes written by bufpack, -1 = not set */
   braid_Int  rfactor;          /* step: refine [t, tstop] into rfactor intervals; 1 = no
                                 * refinement (braid_StatusSetRFactor, ...DtValues) */
   const braid_Real *rdtvalues; /* step: the first rfactor - 1 step sizes of a non-uniform
                                 * refinement of [t, tstop] (the last step is what remains),
                                 * NULL = uniform; points into rdt_copy */
   braid_Real *rdt_copy;        /* the setter's copy of the user's array (which may live on
                                 * the callback's stack); kept, and reused, until Destroy */
   braid_Int  rdt_capacity;
   braid_Int  r_space;          /* step: 1 asks for spatial refinement of the fine grid after
                                 * this iteration (braid_StatusSetRSpace) */

   /* Delta correction (delta.c sets them around the calls that see a basis, 0/NULL else) */
   braid_Int  delta_rank;       /* step, access: basis vectors available */
   struct _braid_Vector_struct **basis; /* [delta_rank] the engine's basis vectors */
   const braid_Real *lyap_exps; /* access: local Lyapunov exponents [delta_rank], or NULL */
   braid_Real basis_size;       /* bufsize: bytes of one basis vector, -1 = not set */
} _braid_Status;

/** The generic view of a typed status handle. */
#define _braid_StatusElt(status, elt) (((_braid_Status *) (status))->elt)

/** Reset every field to its neutral value (level 0, rnorm -1, size -1, rfactor 1, ...). */
void _braid_StatusInit(_braid_Status *s);

#ifdef __cplusplus
}
#endif

#endif
