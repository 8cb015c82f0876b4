/*
 * Delta correction and Lyapunov estimation (delta.c, doc/delta.md): the hooks the cycle calls.
 * Every hook is called only when core->delta_state is not NULL (braid_SetDeltaCorrection with
 * rank > 0), so a solve without Delta correction runs exactly as before.
 */
#ifndef LAYERBRAID_DELTA_H
#define LAYERBRAID_DELTA_H

#include "_braid.h"

/* The sweep a hook is called in (_braid_DeltaBegin decides what it does with the basis). */
enum {
   _braid_DELTA_RESTRICT, /* FRestrict's sweep on the fine level: carry the basis across
                           * each interval (T of the coarse level) */
   _braid_DELTA_RHS,      /* the coarse right-hand side: build D of the coarse level */
   _braid_DELTA_RELAX,    /* FC-relaxation: Lyapunov vectors at C-points (lyap relax) */
   _braid_DELTA_INTERP,   /* FInterp: the coarsest level's Lyapunov chain (lyap cglv) */
   _braid_DELTA_ACCESS    /* FAccess: Lyapunov vectors and exponents at every fine point */
};

/** Allocate the work space and the initial basis (braid_Drive, once the grids exist), and
 *  put Delta's wrapper around the user's step in core->step (the engine's own step code has
 *  no hook: without Delta it runs exactly as before); refuses the features Delta correction
 *  does not work with. */
braid_Int _braid_DeltaSetup(braid_Core core);
/** Free the Delta work space (braid_Destroy). */
void _braid_DeltaFree(braid_Core core);

/** Around a sweep of `level` (RHS: of the coarse level, after the fine level's sweep);
 *  Begin(RHS) also injects the basis to the coarse level, End after INTERP brings Lyapunov
 *  vectors back to the finer level's C-points. */
braid_Int _braid_DeltaBegin(braid_Core core, braid_Int level, braid_Int kind);
braid_Int _braid_DeltaEnd(braid_Core core);
/** An interval of `level` starts at point `start` (after its value arrived). */
braid_Int _braid_DeltaIntervalStart(braid_Core core, braid_Int level, braid_Int start);
/** The basis (and local exponents) access sees at point i of `level`. */
void _braid_DeltaAccessStatus(braid_Core core, braid_Int level, braid_Int i, _braid_Status *s);
/** Messages: room for rank basis vectors after the state; pack and unpack them. */
braid_Int _braid_DeltaMessageBytes(braid_Core core, braid_Int *bytes);
braid_Int _braid_DeltaPack(braid_Core core, braid_Int level, braid_Int index, void *buffer,
                           braid_Int *bytes);
braid_Int _braid_DeltaUnpack(braid_Core core, braid_Int level, braid_Int index, void *buffer);
/** Modified Gram-Schmidt with inner_prod on v[0..rank-1]; r = the diagonal of R. */
braid_Int _braid_DeltaGramSchmidt(braid_Core core, braid_Vector *v, braid_Int rank,
                                  braid_Real *r);

#endif
