/*
 * XBraid_Adjoint inside the engine: the action tape (tape.c), the recorded cycle
 * (adjoint_cycle.c), the piggy-back iteration (adjoint.c) and the options and state
 * (adjoint_options.c). Private to extern/braid.
 *
 * One state iteration (an FAS V-cycle) is recorded as a list of actions on numbered
 * variables: every vector the iteration computes gets a new number (copies and injections
 * reuse the number of their source). Reading the list backwards with the transposed
 * derivative of each action turns the adjoint of the iteration's output (the fine C-points)
 * into the adjoint of its input, and adds the derivative of the objective on the way.
 */
#ifndef LAYERBRAID_ADJOINT_H
#define LAYERBRAID_ADJOINT_H

#include "core_internal.h"

typedef enum {
   _braid_ACTION_STEP,  /* out = Phi_level(in): step into point `index` of `level` */
   _braid_ACTION_AXPY,  /* out = a * in + b * in2 */
   _braid_ACTION_OBJ,   /* objective += objectiveT(in) at fine point `index` (time t) */
   _braid_ACTION_SEND,  /* in (point `index` of `level`) sent to rank `peer` */
   _braid_ACTION_RECV   /* out = the vector of point `index` of `level` received from `peer` */
} _braid_ActionKind;

typedef struct {
   _braid_ActionKind kind;
   braid_Int level, index;
   braid_Int in, in2, out;     /* variable numbers; -1 = none (a zero vector) */
   int peer;                   /* send / receive: the other rank */
   braid_Real a, b;
   braid_Vector u;             /* step: the input (at tstart); objective: the state;
                                * receive: the received vector (its shape for a zero adjoint) */
   braid_Vector ustop;         /* step: the result (at tstop) */
   braid_Int u_shared;         /* u is owned by the action that produced it (_braid_TapeHeld) */
} _braid_Action;

typedef struct {
   _braid_Action *actions;
   braid_Int nactions, capacity;
   braid_Int nvars;            /* variables numbered 0 .. nvars - 1 */
   braid_Vector *bars;         /* adjoint of each variable, NULL = zero (during evaluation) */
   braid_Int bars_capacity;
   braid_Vector *held;         /* the vector an action keeps with each variable's value (a
                                * step's result, a received vector), NULL = none */
   braid_Int held_capacity;
} _braid_Tape;

/* ---- tape.c ---- */
braid_Int _braid_TapeNewVar(_braid_Tape *tape);
/** Append an action; u (unless u_shared) and ustop are owned by the tape from here on. */
braid_Int _braid_TapePush(braid_Core core, _braid_Tape *tape, const _braid_Action *action);
/** The vector the tape already keeps with the value of variable var, or NULL. Each value is
 *  kept once: an action that needs var's value shares this vector (u_shared) instead of a
 *  clone, so a recorded sweep costs about one vector per step. */
braid_Vector _braid_TapeHeld(const _braid_Tape *tape, braid_Int var);
/** bars[var] += coef * v (v is not kept). */
braid_Int _braid_TapeAddBar(braid_Core core, _braid_Tape *tape, braid_Int var, braid_Real coef,
                            braid_Vector v);
/** Evaluate the tape backwards (bars of the outputs seeded by the caller), F_bar the
 *  derivative of the postprocessed objective with respect to the summed objective. */
braid_Int _braid_TapeEvaluate(braid_Core core, _braid_Tape *tape, braid_Real F_bar);
/** Forget every action and bar (freeing the vectors); numbering starts again at 0. */
void _braid_TapeReset(braid_Core core, _braid_Tape *tape);
void _braid_TapeFree(braid_Core core, _braid_Tape *tape);
/** *v_ptr = a new zero vector shaped like u. */
braid_Int _braid_ZeroLike(braid_Core core, braid_Vector u, braid_Vector *v_ptr);

#define ADJ(core) ((core)->adjoint_state)

/* ---- adjoint_options.c ---- */
/** The per-level arrays, at the first adjoint braid_Drive (the hierarchy is built then). */
braid_Int _braid_AdjointAllocate(braid_Core core);

/* ---- adjoint_cycle.c ---- */
/** One FAS V-cycle from `level` down, recorded on the tape while adjoint_state->recording. */
braid_Int _braid_AdjointVCycle(braid_Core core, braid_Int level);
/** The sequential solve of level 0 (one level, braid_SetSeqSoln), recorded likewise; with the
 *  objective at every point of its window when `objective`. */
braid_Int _braid_AdjointSequential(braid_Core core, braid_Int objective, braid_Int caller);
/* one vector to / from a neighbouring rank (tag of its own, waited at once; every message
 * goes one way in a sweep, so a blocking wait cannot deadlock) */
braid_Int _braid_AdjointSend(braid_Core core, braid_Int level, braid_Int index, braid_Vector u,
                             int dest);
braid_Int _braid_AdjointRecv(braid_Core core, braid_Int level, braid_Int index, int source,
                             braid_Vector *u_ptr);

/* the adjoint's options and callbacks, and its solve state */
struct _braid_AdjointState {
   braid_PtFcnObjectiveT objectiveT;
   braid_PtFcnObjectiveTDiff objT_diff;
   braid_PtFcnStepDiff step_diff;
   braid_PtFcnResetGradient reset_gradient;
   braid_PtFcnPostprocessObjective post;
   braid_PtFcnPostprocessObjective_diff post_diff;
   braid_Real tstart_obj, tstop_obj;
   braid_Real tol_adj;
   braid_Int rtol_adj;
   braid_Int obj_only;

   braid_Real objective, sum_obj;   /* of the last iteration */
   braid_Real rnorm_adj, rnorm_adj0;
   braid_Real *rnorms_adj;          /* adjoint residual history, as core->rnorms for the state */
   braid_Int nrnorms_adj, rnorms_adj_capacity;

   /* per level l: U[l][i] the approximation (var UI), V the restricted approximation and F
    * the FAS right-hand side (levels > 0; vars VI, FI, -1 = zero) */
   braid_Int nlevels;
   braid_Vector *U[_BRAID_MAX_LEVELS], *V[_BRAID_MAX_LEVELS], *F[_BRAID_MAX_LEVELS];
   braid_Int *UI[_BRAID_MAX_LEVELS], *VI[_BRAID_MAX_LEVELS], *FI[_BRAID_MAX_LEVELS];
   braid_Vector *ubar;              /* adjoint at the fine C-points (index ci / cfactor) */
   braid_Int *xin;                  /* variables of the fine C-points at the iteration's start */
   braid_Real *norms;               /* scratch: per-C-point norms */
   braid_Real *obj_terms;           /* objective term of each fine point (0 where not mine) */
   _braid_Message send_msg, recv_msg;
   _braid_Tape tape;
   braid_Int recording;
};

#endif
