/*
 * layerbraid MGRIT engine: the XBraid C interface.
 *
 * MGRIT (multigrid reduction in time) solves all time steps of u_{i+1} = Phi(u_i), i = 0..ntime-1,
 * at once: F/C relaxation on a hierarchy of coarser time grids, with a full-approximation-scheme
 * (FAS) coarse-grid correction, distributed over the ranks of `comm` along time.
 *
 * Every function returns 0 on success and a nonzero braid_ERROR_* code on failure, after
 * printing a message to stderr that names the bad value and what is accepted.
 */
#ifndef LAYERBRAID_BRAID_H
#define LAYERBRAID_BRAID_H

#include <stdio.h>

#include "braid_defs.h"
#include "braid_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The user's types, defined by the application. */
typedef struct _braid_App_struct    *braid_App;
typedef struct _braid_Vector_struct *braid_Vector;

/* The engine's solver object. */
typedef struct _braid_Core_struct *braid_Core;

/* ---- Callbacks (all return 0 on success; a nonzero return stops the solve) ---- */

/** Advance u from tstart to tstop (braid_StepStatusGetTstartTstop). ustop is the stored
 *  value at tstop, an initial guess for implicit solvers; it may be u itself. fstop is NULL
 *  unless a residual function was set (braid_SetResidual): without one the engine adds the
 *  FAS right-hand side to step's result itself; with one, step must solve its equation
 *  with fstop as right-hand side (residual(ustop, u) = fstop), when fstop is not NULL. */
typedef braid_Int (*braid_PtFcnStep)(braid_App app, braid_Vector ustop, braid_Vector fstop,
                                     braid_Vector u, braid_StepStatus status);
/** Allocate a vector holding the initial guess at time t (the initial condition at tstart). */
typedef braid_Int (*braid_PtFcnInit)(braid_App app, braid_Real t, braid_Vector *u_ptr);
/** Allocate a deep copy of u. */
typedef braid_Int (*braid_PtFcnClone)(braid_App app, braid_Vector u, braid_Vector *v_ptr);
typedef braid_Int (*braid_PtFcnFree)(braid_App app, braid_Vector u);
/** y = alpha x + beta y */
typedef braid_Int (*braid_PtFcnSum)(braid_App app, braid_Real alpha, braid_Vector x,
                                    braid_Real beta, braid_Vector y);
typedef braid_Int (*braid_PtFcnSpatialNorm)(braid_App app, braid_Vector u,
                                            braid_Real *norm_ptr);
typedef braid_Int (*braid_PtFcnAccess)(braid_App app, braid_Vector u,
                                       braid_AccessStatus status);
/** An upper bound on the bytes bufpack writes for one vector. */
typedef braid_Int (*braid_PtFcnBufSize)(braid_App app, braid_Int *size_ptr,
                                        braid_BufferStatus status);
typedef braid_Int (*braid_PtFcnBufPack)(braid_App app, braid_Vector u, void *buffer,
                                        braid_BufferStatus status);
/** Allocate a vector and fill it from buffer. */
typedef braid_Int (*braid_PtFcnBufUnpack)(braid_App app, void *buffer, braid_Vector *u_ptr,
                                          braid_BufferStatus status);
/** Optional: allocate / free MPI message buffers (e.g. device or pinned memory). */
typedef braid_Int (*braid_PtFcnBufAlloc)(braid_App app, void **buffer, braid_Int nbytes,
                                         braid_BufferStatus status);
typedef braid_Int (*braid_PtFcnBufFree)(braid_App app, void **buffer);
/** Optional: called once per iteration on every rank, and once after the solve. */
typedef braid_Int (*braid_PtFcnSync)(braid_App app, braid_SyncStatus status);
/** Optional (braid_SetSpatialCoarsen / braid_SetSpatialRefine): move a vector to the
 *  spatial grid of the next coarser / finer time level; the CoarsenRef status tells where. */
typedef braid_Int (*braid_PtFcnSCoarsen)(braid_App app, braid_Vector fu, braid_Vector *cu_ptr,
                                         braid_CoarsenRefStatus status);
typedef braid_Int (*braid_PtFcnSRefine)(braid_App app, braid_Vector cu, braid_Vector *fu_ptr,
                                        braid_CoarsenRefStatus status);
/** Optional (braid_SetResidual): on entry r holds u at tstart; on return the residual at
 *  tstop of the user's equation for ustop, A(ustop, r). */
typedef braid_Int (*braid_PtFcnResidual)(braid_App app, braid_Vector ustop, braid_Vector r,
                                         braid_StepStatus status);
/** Optional shell vectors (braid_SetShell): a vector's metadata without its data. */
typedef braid_Int (*braid_PtFcnSInit)(braid_App app, braid_Real t, braid_Vector *u_ptr);
typedef braid_Int (*braid_PtFcnSClone)(braid_App app, braid_Vector u, braid_Vector *v_ptr);
/** Free the data of u and keep its shell. */
typedef braid_Int (*braid_PtFcnSFree)(braid_App app, braid_Vector u);
/** Optional (braid_SetTimeGrid): fill ta[i - *ilower] with the time of fine point i for
 *  i = *ilower .. *iupper. */
typedef braid_Int (*braid_PtFcnTimeGrid)(braid_App app, braid_Real *ta, braid_Int *ilower,
                                         braid_Int *iupper);
/** Optional (braid_SetInnerProd): *prod_ptr = <u, v>. */
typedef braid_Int (*braid_PtFcnInnerProd)(braid_App app, braid_Vector u, braid_Vector v,
                                          braid_Real *prod_ptr);

/** Optional (braid_SetDeltaCorrection): allocate basis vector number `index` (0-based) at
 *  time t, the index-th column of the initial basis Psi; the columns must be linearly
 *  independent. */
typedef braid_Int (*braid_PtFcnInitBasis)(braid_App app, braid_Real t, braid_Int index,
                                          braid_Vector *u_ptr);

/* ---- XBraid_Adjoint callbacks (braid_InitAdjoint) ---- */

/** *objectiveT_ptr = the objective's integrand at the time of u (ostatus). */
typedef braid_Int (*braid_PtFcnObjectiveT)(braid_App app, braid_Vector u,
                                           braid_ObjectiveStatus ostatus,
                                           braid_Real *objectiveT_ptr);
/** u_bar = F_bar times the derivative of objectiveT with respect to u (transposed); the
 *  derivative with respect to the design goes into the gradient the app keeps. */
typedef braid_Int (*braid_PtFcnObjectiveTDiff)(braid_App app, braid_Vector u,
                                               braid_Vector u_bar, braid_Real F_bar,
                                               braid_ObjectiveStatus ostatus);
/** Optional: *postprocess_ptr = F(sum_obj), the objective from the sum over time. */
typedef braid_Int (*braid_PtFcnPostprocessObjective)(braid_App app, braid_Real sum_obj,
                                                     braid_Real *postprocess_ptr);
/** Optional: *F_bar_ptr = dF/dsum_obj. */
typedef braid_Int (*braid_PtFcnPostprocessObjective_diff)(braid_App app, braid_Real sum_obj,
                                                          braid_Real *F_bar_ptr);
/** The transposed step Jacobian, in place like step: u_bar holds the adjoint of the step's
 *  result on entry and the adjoint of its input u (at tstart) on return; ustop (the result at
 *  tstop) and u are the primal values; ustop_bar is the adjoint of the initial guess ustop.
 *  The derivative with respect to the design goes into the app's gradient. */
typedef braid_Int (*braid_PtFcnStepDiff)(braid_App app, braid_Vector ustop, braid_Vector u,
                                         braid_Vector ustop_bar, braid_Vector u_bar,
                                         braid_StepStatus status);
/** Set the app's gradient to zero (before each adjoint sweep). */
typedef braid_Int (*braid_PtFcnResetGradient)(braid_App app);

/* ---- Life cycle ---- */

/** Create a solver for ntime steps on [tstart, tstop] (ntime + 1 time points, split in
 *  blocks over the ranks of comm). On failure *core_ptr is set to NULL. */
braid_Int braid_Init(MPI_Comm comm_world, MPI_Comm comm, braid_Real tstart, braid_Real tstop,
                     braid_Int ntime, braid_App app, braid_PtFcnStep step,
                     braid_PtFcnInit init, braid_PtFcnClone clone, braid_PtFcnFree free,
                     braid_PtFcnSum sum, braid_PtFcnSpatialNorm spatialnorm,
                     braid_PtFcnAccess access, braid_PtFcnBufSize bufsize,
                     braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack,
                     braid_Core *core_ptr);
/** Solve. Calling it again on the same core warm-starts from the stored solution
 *  (the value at tstart is taken anew from init). */
braid_Int braid_Drive(braid_Core core);
/** Free the solver; safe whether or not braid_Drive ran, and for NULL. */
braid_Int braid_Destroy(braid_Core core);
braid_Int braid_PrintStats(braid_Core core);
/** Split comm_world into px-sized spatial groups (comm_x) and the temporal comm_t. */
braid_Int braid_SplitCommworld(const MPI_Comm *comm_world, braid_Int px, MPI_Comm *comm_x,
                               MPI_Comm *comm_t);

/* ---- Options (level = -1 sets every level) ---- */
braid_Int braid_SetMaxLevels(braid_Core core, braid_Int max_levels);
braid_Int braid_SetMinCoarse(braid_Core core, braid_Int min_coarse);
braid_Int braid_SetCFactor(braid_Core core, braid_Int level, braid_Int cfactor);
braid_Int braid_SetNRelax(braid_Core core, braid_Int level, braid_Int nrelax);
braid_Int braid_SetCRelaxWt(braid_Core core, braid_Int level, braid_Real Cwt);
braid_Int braid_SetMaxIter(braid_Core core, braid_Int max_iter);
braid_Int braid_SetAbsTol(braid_Core core, braid_Real atol);
braid_Int braid_SetRelTol(braid_Core core, braid_Real rtol);
braid_Int braid_SetTemporalNorm(braid_Core core, braid_Int tnorm);
braid_Int braid_SetSkip(braid_Core core, braid_Int skip);
braid_Int braid_SetFMG(braid_Core core);
braid_Int braid_SetNFMG(braid_Core core, braid_Int k);
braid_Int braid_SetNFMGVcyc(braid_Core core, braid_Int n);
braid_Int braid_SetStorage(braid_Core core, braid_Int storage);
braid_Int braid_SetSeqSoln(braid_Core core, braid_Int seq_soln);
braid_Int braid_SetFinalFCRelax(braid_Core core);
braid_Int braid_SetResidualComputation(braid_Core core, braid_Int residual_computation);
braid_Int braid_SetRevertedRanks(braid_Core core, braid_Int reverted_ranks);
braid_Int braid_SetBufAllocFree(braid_Core core, braid_PtFcnBufAlloc bufalloc,
                                braid_PtFcnBufFree buffree);
braid_Int braid_SetSync(braid_Core core, braid_PtFcnSync sync);
braid_Int braid_SetPrintLevel(braid_Core core, braid_Int print_level);
braid_Int braid_SetPrintFile(braid_Core core, const char *printfile_name);
braid_Int braid_SetDefaultPrintFile(braid_Core core);
braid_Int braid_SetFileIOLevel(braid_Core core, braid_Int io_level);
braid_Int braid_SetAccessLevel(braid_Core core, braid_Int access_level);
braid_Int braid_SetTimings(braid_Core core, braid_Int timing_level);

/* ---- Problem variants ---- */
/** Fine time points from the user instead of a uniform grid. */
braid_Int braid_SetTimeGrid(braid_Core core, braid_PtFcnTimeGrid tgrid);
/** Periodic in time: u(tstart) = u(tstop); the ntime points 0..ntime-1 are the unknowns and
 *  every level, the coarsest too, is solved by relaxation. Needs one cfactor for all levels
 *  and ntime divisible by cfactor^(nlevels-1). */
braid_Int braid_SetPeriodic(braid_Core core, braid_Int periodic);
/** Solve the coarsest grid by relaxation (its nrelax sweeps) instead of sequentially. */
braid_Int braid_SetRelaxOnlyCG(braid_Core core, braid_Int relax_only_cg);
/** The user's residual: from then on step receives the FAS right-hand side as fstop (NULL
 *  where it is zero) and must add it, and residuals are computed with this function. */
braid_Int braid_SetResidual(braid_Core core, braid_PtFcnResidual residual);
/** Also compute the residual norm over all points (C and F) with this function each
 *  iteration; when set, it decides halting. */
braid_Int braid_SetFullRNormRes(braid_Core core, braid_PtFcnResidual residual);
/** Keep shells (metadata without data) at the points where no vector is stored. */
braid_Int braid_SetShell(braid_Core core, braid_PtFcnSInit sinit, braid_PtFcnSClone sclone,
                         braid_PtFcnSFree sfree);
braid_Int braid_SetInnerProd(braid_Core core, braid_PtFcnInnerProd inner_prod);

/* ---- Spatial coarsening between time levels ---- */
braid_Int braid_SetSpatialCoarsen(braid_Core core, braid_PtFcnSCoarsen scoarsen);
braid_Int braid_SetSpatialRefine(braid_Core core, braid_PtFcnSRefine srefine);

/* ---- Temporal refinement (steered by braid_StepStatusSetRFactor) ---- */
braid_Int braid_SetRefine(braid_Core core, braid_Int refine);
/** At most this many refinements (default 200). */
braid_Int braid_SetMaxRefinements(braid_Core core, braid_Int max_refinements);
/** No refinement once the fine grid has more than this many points (default INT_MAX). */
braid_Int braid_SetTPointsCutoff(braid_Core core, braid_Int tpoints_cutoff);
/** After each refinement allow one level more. */
braid_Int braid_SetIncrMaxLevels(braid_Core core);

/* ---- Richardson extrapolation and error estimation ---- */
/** est_error: estimate the local error at each fine point; richardson: extrapolate the fine
 *  C-points; local_order: the local order of the time stepper (2 for backward Euler). */
braid_Int braid_SetRichardsonEstimation(braid_Core core, braid_Int est_error,
                                        braid_Int richardson, braid_Int local_order);

/* ---- Delta correction and Lyapunov estimation (delta.c, doc/delta.md) ---- */
/** Correct the coarse-grid propagators by a rank-`rank` approximation of the difference between
 *  the fine and the coarse Jacobian over each coarse interval (Vargas, Falgout, Guenther,
 *  Schroder, SIAM J. Sci. Comput. 45(4), 2023). step must then also apply its linearisation
 *  to the basis vectors braid_StepStatusGetBasisVec hands it (braid_StepStatusGetDeltaRank
 *  of them), in place. basis_init gives the initial basis, inner_prod orthonormalises it and
 *  projects on it (it also becomes the core's inner product, braid_SetInnerProd). rank 0
 *  turns Delta correction off. */
braid_Int braid_SetDeltaCorrection(braid_Core core, braid_Int rank,
                                   braid_PtFcnInitBasis basis_init,
                                   braid_PtFcnInnerProd inner_prod);
/** Delta correction only on levels >= level (>= 1; default 1) and only from iteration iter
 *  on (default 0); before that the coarse levels use the plain coarse propagator. */
braid_Int braid_SetDeferDelta(braid_Core core, braid_Int level, braid_Int iter);
/** Estimate Lyapunov vectors: the basis is propagated along the trajectory and
 *  re-orthonormalised at each point it reaches (instead of basis_init's fixed basis).
 *  relax: also during FC relaxation; cglv: on the coarsest level (default on); exponents:
 *  keep the local Lyapunov exponents (braid_AccessStatusGetLocalLyapExponents). */
braid_Int braid_SetLyapunovEstimation(braid_Core core, braid_Int relax, braid_Int cglv,
                                      braid_Int exponents);

/* ---- Timers ---- */
/** Stem of the per-rank timer files written with timings level 2 (length = strlen(stem)). */
braid_Int braid_SetTimerFile(braid_Core core, braid_Int length, const char *filestem);
braid_Int braid_ResetTimer(braid_Core core);
/** Write this rank's timers (timings level 2: to <stem>_<rank>.txt, else to the print file). */
braid_Int braid_PrintTimers(braid_Core core);

/** A tolerance for inexact implicit solves in step: loose_tol while the residual is large,
 *  moving towards tight_tol as the solve converges (tight_tol on coarse levels' residual
 *  computations and without a user residual). */
braid_Int braid_GetSpatialAccuracy(braid_StepStatus status, braid_Real loose_tol,
                                   braid_Real tight_tol, braid_Real *tol_ptr);

/* ---- Results ---- */
braid_Int braid_GetNumIter(braid_Core core, braid_Int *niter_ptr);
/** Residual history r_0 .. r_niter (-1 where not computed; the last entry repeats the last
 *  printed residual). *nrequest_ptr > 0 asks for the first n, < 0 for the last |n|; on
 *  return it holds the number copied. */
braid_Int braid_GetRNorms(braid_Core core, braid_Int *nrequest_ptr, braid_Real *rnorms);
braid_Int braid_GetNLevels(braid_Core core, braid_Int *nlevels_ptr);
/** This rank's index in the temporal communicator. */
braid_Int braid_GetMyID(braid_Core core, braid_Int *myid_ptr);
braid_Int braid_WriteConvHistory(braid_Core core, const char *filename);
/** After braid_Drive, on the rank holding the last time point: the engine's vector there (not
 *  a copy; valid until the next braid_Drive or braid_Destroy). *u_ptr = NULL elsewhere. */
braid_Int braid_UGetLast(braid_Core core, braid_Vector *u_ptr);

/* ---- XBraid_Adjoint (adjoint.c) ---- */

/** After braid_Init: braid_Drive then runs the piggy-back iteration (state and adjoint
 *  together) and computes the objective and its gradient. Sets skip = 0. */
braid_Int braid_InitAdjoint(braid_PtFcnObjectiveT objectiveT,
                            braid_PtFcnObjectiveTDiff objT_diff,
                            braid_PtFcnStepDiff step_diff,
                            braid_PtFcnResetGradient reset_gradient, braid_Core *core_ptr);
braid_Int braid_SetTStartObjective(braid_Core core, braid_Real tstart_obj);
braid_Int braid_SetTStopObjective(braid_Core core, braid_Real tstop_obj);
braid_Int braid_SetPostprocessObjective(braid_Core core,
                                        braid_PtFcnPostprocessObjective post_fcn);
braid_Int braid_SetPostprocessObjective_diff(braid_Core core,
                                             braid_PtFcnPostprocessObjective_diff
                                                post_fcn_diff);
braid_Int braid_SetAbsTolAdjoint(braid_Core core, braid_Real tol_adj);
braid_Int braid_SetRelTolAdjoint(braid_Core core, braid_Real rtol_adj);
braid_Int braid_SetObjectiveOnly(braid_Core core, braid_Int boolean);
braid_Int braid_GetObjective(braid_Core core, braid_Real *objective_ptr);
braid_Int braid_GetRNormAdjoint(braid_Core core, braid_Real *rnorm_adj);

/** The C standard's example generator (state starts at 1; one state per process). */
braid_Int braid_Rand(void);

#ifdef __cplusplus
}
#endif

#endif
