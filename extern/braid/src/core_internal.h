/*
 * Internal data structures of the layerbraid MGRIT engine and the functions its modules share.
 *
 * Notation (Falgout et al., SIAM J. Sci. Comput. 36(6), 2014): level 0 is the fine time grid with
 * points 0..ntime; level l+1 keeps the C-points of level l (every cfactor-th point); an
 * interval is the F-points after a C-point plus the next C-point. The problem on level l is
 * u_i = Phi_l(u_{i-1}) + f_i, with f = 0 on level 0 and the FAS right-hand side below.
 */
#ifndef LAYERBRAID_CORE_INTERNAL_H
#define LAYERBRAID_CORE_INTERNAL_H

#include <stdio.h>

#include "_braid.h"
#include "checked.h"

/* Slot of point i of grid g: where the engine keeps the user's vector (NULL = not stored). */
#define _braid_Slot(g, i) (&(g)->ua[(i) - (g)->ilower]->userVector)

/* ---- core.c (checked.c: size arithmetic and allocations, see checked.h) ---- */
braid_Int _braid_Error(const char *function, const char *fmt, ...)
#if defined(__GNUC__)
   __attribute__((format(printf, 2, 3)))
#endif
   ;
/** Report a callback that returned nonzero, tell the other ranks, and pass its code on. */
braid_Int _braid_CallbackFailed(braid_Core core, const char *callback, braid_Int code);
braid_Int _braid_LevelCFactor(braid_Core core, braid_Int level);
braid_Int _braid_LevelNRelax(braid_Core core, braid_Int level);
braid_Real _braid_LevelCRelaxWt(braid_Core core, braid_Int level);
/** braid_GetRNorms' convention on a history of n entries: *nrequest_ptr >= 0 the first ones,
 *  < 0 the last ones; on return the number copied. fn names the caller in errors. */
braid_Int _braid_HistoryCopy(const char *fn, const braid_Real *values, braid_Int n,
                             braid_Int *nrequest_ptr, braid_Real *out);

/* Argument checks shared by the API functions. */
#define CHECK_CORE(fn)                                                        \
   do {                                                                       \
      if (core == NULL)                                                       \
      {                                                                       \
         return _braid_Error(fn, "core is NULL (braid_Init failed or was not called)"); \
      }                                                                       \
   } while (0)

/* Options that shape the grid hierarchy cannot change once it is built. */
#define CHECK_NOT_BUILT(fn)                                                   \
   do {                                                                       \
      if (core->grids != NULL)                                                \
      {                                                                       \
         return _braid_Error(fn, "cannot change the grid hierarchy after braid_Drive; " \
                             "create a new core instead");                    \
      }                                                                       \
   } while (0)

/* ---- options.c ---- */
/** Set *field = value after checking lo <= value <= hi (flags and small enumerations). */
braid_Int _braid_SetIntOption(braid_Core core, const char *fn, const char *name, braid_Int value,
                              braid_Int lo, braid_Int hi, braid_Int *field);

/* ---- grid.c ---- */
braid_Int _braid_BuildHierarchy(braid_Core core);
void _braid_FreeHierarchy(braid_Core core);
/** Time of fine point `fine` (the user's time grid, or uniform). */
braid_Real _braid_FineTime(braid_Core core, braid_Int fine);
/** Time of point `index` on `level` beyond its neighbours (not in ta[]). */
braid_Real _braid_TimeFar(braid_Core core, braid_Int level, braid_Int index);
/** Time of point `index` on `level` (inline: two per step call). */
static inline braid_Real _braid_Time(braid_Core core, braid_Int level, braid_Int index)
{
   const _braid_Grid *g = core->grids[level];
   if (index >= g->ilower - 1 && index <= g->iupper + 1) return g->ta[index - g->ilower];
   return _braid_TimeFar(core, level, index);
}
/** Rank of `comm` that owns point `index` of `level`. */
int _braid_Owner(braid_Core core, braid_Int level, braid_Int index);
/** The first and last C-point of this rank on `level` for C-point spacing cfactor. */
void _braid_CRange(const _braid_Grid *grid, braid_Int cfactor, braid_Int *clower,
                   braid_Int *cupper);
/** Stored vector at point `index` of `level` (must be local), or NULL. */
static inline braid_Vector _braid_Stored(braid_Core core, braid_Int level, braid_Int index)
{
   const _braid_Grid *g = core->grids[level];
   return g->ua[index - g->ilower]->userVector;
}
/** Set *dst to a copy of src, reusing the vector already there. */
braid_Int _braid_CopyInto(braid_Core core, braid_Vector src, braid_Vector *dst);
braid_Int _braid_FreeVector(braid_Core core, braid_Vector *u);
/** Free the n vectors of *a (NULL entries skipped) and the array; *a becomes NULL. For
 *  teardown: free's return value is not checked. */
void _braid_FreeVectors(braid_Core core, braid_Vector **a, braid_Int n);

/* ---- comm.c ---- */
/* One message carrying one packed vector, on the engine's communicator; the buffer is
 * allocated on first use (bufalloc or malloc) and kept until _braid_MessageRelease. */
braid_Int _braid_MessageRecv(braid_Core core, _braid_Message *msg, int source, int tag);
/** Wait for msg's receive and unpack it (point index of level) into a new vector. */
braid_Int _braid_MessageUnpack(braid_Core core, _braid_Message *msg, braid_Int level,
                               braid_Int index, braid_Vector *u_ptr);
braid_Int _braid_MessageSend(braid_Core core, _braid_Message *msg, braid_Int level,
                             braid_Int index, braid_Vector u, int dest, int tag);
braid_Int _braid_MessageWait(braid_Core core, _braid_Message *msg);
/** Free msg's buffer (cancelling a pending request after a failure). */
void _braid_MessageRelease(braid_Core core, _braid_Message *msg);
/** Post the receive of point ilower - 1 of `level` from its owner. */
braid_Int _braid_RecvLeft(braid_Core core, braid_Int level);
/** Wait for the posted receive and unpack it into a new vector. */
braid_Int _braid_RecvLeftWait(braid_Core core, braid_Int level, braid_Vector *u_ptr);
/** Pack u (point iupper of `level`) and send it to the owner of iupper + 1. */
braid_Int _braid_SendRight(braid_Core core, braid_Int level, braid_Vector u);
braid_Int _braid_SendWait(braid_Core core);
/** Wait for a request while listening for failure notices of other ranks (returns
 *  layerbraid_ERROR_REMOTE if one arrives) and calling the host's poll hook. */
braid_Int _braid_Wait(braid_Core core, MPI_Request *request);
/** Keep memory that MPI may still use after a failure (a collective the failed rank never
 *  joined, an undelivered message) alive, and reachable, until the process ends. */
void _braid_Abandon(void *memory);
/** Send this rank's failure text to every other rank. */
void _braid_NotifyFailure(braid_Core core);
/** Between steps: has another rank failed? Reads the clock every 16 steps and tests the
 *  posted notice receive at most every 10 ms; returns layerbraid_ERROR_REMOTE when a notice
 *  arrived. */
braid_Int _braid_CheckNotices(braid_Core core);
/** At the end of a solve (and in braid_Destroy): cancel the posted notice receive. */
void _braid_NoticeStop(braid_Core core);
/** At the end of a solve: all ranks agree that it succeeded (or learn that one failed). */
braid_Int _braid_AgreeSuccess(braid_Core core);
/** Cancel pending messages (after a failure) and release the buffers. */
void _braid_CommCleanup(braid_Core core);
/** Combine per-point norms into the temporal norm, identically for any number of ranks.
 *  norms[k] belongs to global point first + k (points 1..npoints_global). */
braid_Int _braid_TemporalNorm(braid_Core core, const braid_Real *norms, braid_Int first,
                              braid_Int count, braid_Int npoints_global, braid_Real *result);

/* ---- relax.c ---- */
/** Advance u from point index - 1 to point `index` of `level`; with_fas adds f_index (the
 *  engine itself, or step through fstop when the user gave a residual function). */
braid_Int _braid_Step(braid_Core core, braid_Int level, braid_Int index, braid_Vector ustop,
                      braid_Vector u, braid_Int with_fas, braid_Int caller);

/* What a sweep does at each point; any hook may be NULL. */
typedef struct {
   /* called with the new value at F-point i (owned by the sweep: read, do not keep) */
   braid_Int (*fpoint)(braid_Core core, braid_Int level, braid_Int i, braid_Vector u, void *ctx);
   /* called at C-point ci; uprop = Phi(u_{ci-1}) + f_ci (need_cprop = 1), or u_{ci-1}
    * itself (need_cprop = 2, for residuals of a user residual function), or NULL when
    * need_cprop is 0 or ci = 0. The hook may take ownership of uprop by setting
    * *uprop_taken = 1. */
   braid_Int (*cpoint)(braid_Core core, braid_Int level, braid_Int ci, braid_Vector uprop,
                       braid_Int *uprop_taken, void *ctx);
   braid_Int need_cprop;
   braid_Int caller;         /* braid_ASCaller_* reported to step */
   /* called before the step into F-point i with u_{i-1} (owned by the sweep) */
   braid_Int (*before_step)(braid_Core core, braid_Int level, braid_Int i, braid_Vector uprev,
                            void *ctx);
} _braid_SweepHooks;

/** One F-relaxation sweep over `level` with C-point spacing cfactor, intervals right to left,
 *  exchanging the boundary point with the neighbouring ranks. */
braid_Int _braid_Sweep(braid_Core core, braid_Int level, braid_Int cfactor,
                       const _braid_SweepHooks *hooks, void *ctx);
/** nrelax sweeps of F- then C-relaxation. */
braid_Int _braid_FCRelax(braid_Core core, braid_Int level);
/** F-relaxation that calls access at every point of level 0. */
braid_Int _braid_FAccess(braid_Core core, braid_Int done, braid_Int caller);
/** Sequential time stepping over all of level 0 (initial guess option and one-level solve). */
braid_Int _braid_SequentialSolve(braid_Core core, braid_Int with_access);

/** *shell_ptr = the shell of u (braid_SetShell's sclone). F-points of levels that do not store
 *  them keep shells: step receives the shell of its target point as ustop. */
braid_Int _braid_ShellFrom(braid_Core core, braid_Vector u, braid_Vector *shell_ptr);
/** The user's residual A(ustop, uprev) of the step into point `index` of `level`, into r
 *  (which holds uprev on entry). */
braid_Int _braid_Residual(braid_Core core, braid_Int level, braid_Int index, braid_Vector ustop,
                          braid_Vector r);

/* ---- fullres.c ---- */
/** core->full_rnorm: the user's full residual (braid_SetFullRNormRes) over every fine point. */
braid_Int _braid_FullResidualNorm(braid_Core core);

/* ---- timers and counts (timers.c: braid_ResetTimer, braid_PrintTimers,
 *      layerbraid_GetProfile, layerbraid_SetProfile) ----
 * Inline: they sit around every step call, where a trivial step costs a few nanoseconds. The
 * step path reads one flag word, core->profile, once before and once after the call (as the
 * timers alone did): with no profile asked for, that is all. */
#define _BRAID_PROFILE_COUNT 1 /* keep core->counts */
#define _BRAID_PROFILE_TIME 2  /* time every call (timings level 2, layerbraid_SetTimeCalls) */
/** Set core->profile from the timings level, layerbraid_SetTimeCalls and
 *  layerbraid_SetProfile; every one of their setters calls it. */
void _braid_ProfileUpdate(braid_Core core);
/** MPI_Wtime() when calls are timed (else 0): the start of a timed call. */
static inline braid_Real _braid_TimerStart(braid_Core core)
{
   return (core->profile & _BRAID_PROFILE_TIME) ? MPI_Wtime() : 0.0;
}
/** Add the time since start to *total (when calls are timed). */
static inline void _braid_TimerStop(braid_Core core, braid_Real *total, braid_Real start)
{
   if (core->profile & _BRAID_PROFILE_TIME) *total += MPI_Wtime() - start;
}
/** The counting and timing of _braid_StepDone (timers.c), out of line. */
void _braid_StepRecord(braid_Core core, braid_Int level, braid_Real start);
/** After a call of the user's step on `level` that began at start: count it (when counting)
 *  and add its time (when timing), both also to the coarsest level's totals when level is the
 *  coarsest. Timing implies counting (_braid_ProfileUpdate), so when neither is on this is
 *  one bit test of core->profile in memory and a branch, as the timer's test alone was (the
 *  rest out of line: inline, the compiler kept the flag in a register, one more instruction
 *  per step). */
static inline void _braid_StepDone(braid_Core core, braid_Int level, braid_Real start)
{
   if (core->profile & _BRAID_PROFILE_COUNT) _braid_StepRecord(core, level, start);
}
/** Count a point-to-point engine message posted to another rank (bytes of payload). */
static inline void _braid_CountSend(braid_Core core, braid_Int bytes)
{
   if (core->profile & _BRAID_PROFILE_COUNT)
   {
      core->counts.messages_sent++;
      core->counts.bytes_sent += (braid_Real) bytes;
   }
}
/** Count a point-to-point engine message received from another rank. */
static inline void _braid_CountRecv(braid_Core core)
{
   if (core->profile & _BRAID_PROFILE_COUNT) core->counts.messages_received++;
}

/* ---- richardson.c (level 0 sweeps that propagate to C-points) ---- */
/** Before the sweep: the coarse step from every local C-point (one sent to the next rank). */
braid_Int _braid_RichardsonBegin(braid_Core core, braid_Int level, braid_Int caller);
/** At C-point ci with uprop = Phi^m(u_{ci-m}): error estimates of the interval's points, and
 *  uprop = Phi_RE(u_{ci-m}) with extrapolation. */
braid_Int _braid_RichardsonCPoint(braid_Core core, braid_Int level, braid_Int ci,
                                  braid_Vector uprop);
/** After the F-points right of the last local C-point (u = their last value): complete the
 *  interval to estimate their errors. */
braid_Int _braid_RichardsonTrailing(braid_Core core, braid_Int level, braid_Vector u_iupper,
                                    braid_Int caller);
braid_Int _braid_RichardsonEnd(braid_Core core, braid_Int level);
void _braid_RichardsonFree(braid_Core core);

/* ---- space.c ---- */
/** *cu_ptr = fine vector fu (point i of `level`) on level + 1's spatial grid: the user's
 *  scoarsen, or a copy; the vector already in *cu_ptr is reused or freed. */
braid_Int _braid_CoarsenUser(braid_Core core, braid_Int level, braid_Int i, braid_Vector fu,
                             braid_Vector *cu_ptr);
static inline braid_Int _braid_CoarsenInto(braid_Core core, braid_Int level, braid_Int i,
                                           braid_Vector fu, braid_Vector *cu_ptr)
{
   return core->scoarsen == NULL ? _braid_CopyInto(core, fu, cu_ptr)
                                 : _braid_CoarsenUser(core, level, i, fu, cu_ptr);
}
/** *fu_ptr = a new vector: coarse vector cu (at fine point i of `level`) on level's spatial
 *  grid: the user's srefine, or a clone. */
braid_Int _braid_RefineNew(braid_Core core, braid_Int level, braid_Int i, braid_Vector cu,
                           braid_Vector *fu_ptr);

/** At the top of a cycle: if a fine-level step asked for spatial refinement (on any rank) and
 *  srefine is set, every vector the fine grid stores goes through srefine (calling function
 *  FRefine); *refined = 1 then, and the solve goes on. */
braid_Int _braid_FRefineSpace(braid_Core core, braid_Int *refined);

/* ---- transfer.c ---- */
/** F-relax `level`, compute the FAS residual at its C-points and restrict to level + 1.
 *  On level 0 also computes core->rnorm. */
braid_Int _braid_FRestrict(braid_Core core, braid_Int level);
/** F-relax `level` (the sequential solve on the coarsest) and correct level - 1. */
braid_Int _braid_FInterp(braid_Core core, braid_Int level);
/** Copy the approximation at the C-points of every level to the next (initial guess). */
braid_Int _braid_InjectInitialGuess(braid_Core core);

/* ---- refine.c (temporal refinement, braid_SetRefine) ---- */
/** After a step into point `index` of `level`: keep the refinement the step asked for (level
 *  0, relaxation and restriction only). */
braid_Int _braid_RefineRecord(braid_Core core, braid_Int level, braid_Int index);
/** At the top of a cycle: refine the fine grid as asked (*refined = 1) or leave it. */
braid_Int _braid_FRefine(braid_Core core, braid_Int *refined);
/** Forget the requests (the hierarchy they belong to goes). */
void _braid_RefineFree(braid_Core core);

/* ---- adjoint.c (XBraid_Adjoint) ---- */
/** braid_Drive with braid_InitAdjoint: the piggy-back iteration of state and adjoint. Called
 *  after the hierarchy is built and the solve state reset. */
braid_Int _braid_DriveAdjoint(braid_Core core);
void _braid_AdjointFree(braid_Core core);
/** braid_PrintStats: the state and adjoint residual lines (instead of the state's two). */
void _braid_AdjointPrintResiduals(braid_Core core, FILE *out, braid_Real rnorm);

/* ---- print.c ---- */
void _braid_PrintBegin(braid_Core core);
void _braid_PrintIteration(braid_Core core);
void _braid_PrintMessage(braid_Core core, const char *message);

/* ---- status.c (typed wrappers: status_typed.c) ---- */
/** Fill core->status for a callback and return it. */
_braid_Status *_braid_StatusFor(braid_Core core, braid_Int level, braid_Int tindex,
                                braid_Real t, braid_Real tstop, braid_Int caller);
/** The status for a spatial coarsen or refine callback at time t (index tindex) between
 *  `level` (fine) and level + 1 (coarse): the neighbours of t there are f_tprior, f_tstop
 *  and c_tprior, c_tstop. The calling function stays the one last set. */
_braid_Status *_braid_CoarsenRefStatusFor(braid_Core core, braid_Int level, braid_Int tindex,
                                          braid_Real t, braid_Real f_tprior,
                                          braid_Real f_tstop, braid_Real c_tprior,
                                          braid_Real c_tstop);

#endif
