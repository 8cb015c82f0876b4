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

/** Allocate the work space and the initial basis (braid_Drive, once the grids exist);
 *  refuses the features Delta correction does not work with. */
braid_Int _braid_DeltaSetup(braid_Core core);
/** Free the Delta work space (braid_Destroy). */
void _braid_DeltaFree(braid_Core core);

braid_Int _braid_DeltaBegin(braid_Core core, braid_Int level, braid_Int kind);
braid_Int _braid_DeltaEnd(braid_Core core);
/** An interval of `level` starts at point `start` (after its value arrived). */
braid_Int _braid_DeltaIntervalStart(braid_Core core, braid_Int level, braid_Int start);
/** _braid_Step with Delta correction: the plain step, with the basis handed to the user's
 *  step while a sweep carries one, and the correction added on a corrected level. */
braid_Int _braid_DeltaStep(braid_Core core, braid_Int level, braid_Int index, braid_Vector ustop,
                           braid_Vector u, braid_Int with_fas, braid_Int caller);
/** Restriction at fine C-point ci of `level`; C-relaxation at ci; interpolation to the
 *  C-point of level - 1 from point i of `level`. */
braid_Int _braid_DeltaRestrictPoint(braid_Core core, braid_Int level, braid_Int ci);
braid_Int _braid_DeltaCRelaxPoint(braid_Core core, braid_Int level, braid_Int ci);
braid_Int _braid_DeltaInterpPoint(braid_Core core, braid_Int level, braid_Int i);
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
