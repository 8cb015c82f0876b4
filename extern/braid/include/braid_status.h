/*
 * layerbraid MGRIT engine: the status objects handed to user callbacks (XBraid C interface).
 *
 * A status tells a callback where the engine is (the time interval, the level, the
 * iteration, ...) and lets some callbacks steer it (step: refinement requests and the
 * spatial-solve tolerance memory; bufpack: the bytes written). Users never create statuses.
 *
 * Every function returns 0 on success and braid_ERROR_ARG, writing nothing, for a NULL
 * status, a NULL output pointer or an argument out of range (a level outside
 * 0..nlevels-1, a time index this rank does not know). Typed functions
 * (braid_StepStatusGetT, ...) behave exactly like the generic one of the same name.
 */
#ifndef LAYERBRAID_BRAID_STATUS_H
#define LAYERBRAID_BRAID_STATUS_H

#include "braid_defs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The user's vector type (braid.h's braid_Vector), for the basis-vector getters. */
struct _braid_Vector_struct;

typedef struct _braid_Status_struct           *braid_Status;
typedef struct _braid_AccessStatus_struct     *braid_AccessStatus;
typedef struct _braid_StepStatus_struct       *braid_StepStatus;
typedef struct _braid_BufferStatus_struct     *braid_BufferStatus;
typedef struct _braid_SyncStatus_struct       *braid_SyncStatus;
typedef struct _braid_CoarsenRefStatus_struct *braid_CoarsenRefStatus;
typedef struct _braid_ObjectiveStatus_struct  *braid_ObjectiveStatus;

/* ---- Generic functions (any status) ---- */

/** The time of the vector; in step the start of the interval. */
braid_Int braid_StatusGetT(braid_Status status, braid_Real *t_ptr);
/** The index of that time on the current level (step: of tstart, not of tstop). */
braid_Int braid_StatusGetTIndex(braid_Status status, braid_Int *idx_ptr);
/** The iteration (cycle) the engine is in, counted from 0. */
braid_Int braid_StatusGetIter(braid_Status status, braid_Int *iter_ptr);
/** The level of the call, 0 = the fine grid. */
braid_Int braid_StatusGetLevel(braid_Status status, braid_Int *level_ptr);
/** The number of levels of the hierarchy. */
braid_Int braid_StatusGetNLevels(braid_Status status, braid_Int *nlevels_ptr);
/** The number of temporal refinements done so far. */
braid_Int braid_StatusGetNRefine(braid_Status status, braid_Int *nrefine_ptr);
/** The number of time steps of the fine grid (its points are 0..ntime). */
braid_Int braid_StatusGetNTPoints(braid_Status status, braid_Int *ntpoints_ptr);
/** The residual norm of the current iteration, -1 while it is not known. */
braid_Int braid_StatusGetResidual(braid_Status status, braid_Real *rnorm_ptr);
/** 1 once the engine has stopped iterating (converged or out of iterations). */
braid_Int braid_StatusGetDone(braid_Status status, braid_Int *done_ptr);
/** This rank's first (*iloc_lower) and last (*iloc_upper) point on `level`; lower > upper
 *  when the rank holds no point there. */
braid_Int braid_StatusGetTIUL(braid_Status status, braid_Int *iloc_upper,
                              braid_Int *iloc_lower, braid_Int level);
/** The times of points i_lower..i_upper of `level`, written to the caller's array
 *  (*tvalues_ptr)[0 .. i_upper - i_lower]. The points must lie in this rank's range
 *  widened by one on each side (ilower - 1 .. iupper + 1). */
braid_Int braid_StatusGetTimeValues(braid_Status status, braid_Real **tvalues_ptr,
                                    braid_Int i_upper, braid_Int i_lower, braid_Int level);
/** Time, iteration, level and done in one call. */
braid_Int braid_StatusGetTILD(braid_Status status, braid_Real *t_ptr, braid_Int *iter_ptr,
                              braid_Int *level_ptr, braid_Int *done_ptr);
/** 1 when the callback is called by a braid_Test* function, 0 inside a solve. */
braid_Int braid_StatusGetWrapperTest(braid_Status status, braid_Int *wtest_ptr);
/** Which part of the engine calls (braid_ASCaller_* of braid_defs.h). */
braid_Int braid_StatusGetCallingFunction(braid_Status status, braid_Int *cfunction_ptr);
/** The C-point spacing of `level` (gupper + 1 on a level solved sequentially). */
braid_Int braid_StatusGetCFactor(braid_Status status, braid_Int *cfactor_ptr, braid_Int level);
/** Coarsen/refine: the coarse-level time point before t. */
braid_Int braid_StatusGetCTprior(braid_Status status, braid_Real *ctprior_ptr);
/** Coarsen/refine: the coarse-level time point after t. */
braid_Int braid_StatusGetCTstop(braid_Status status, braid_Real *ctstop_ptr);
/** Coarsen/refine: the fine-level time point before t. */
braid_Int braid_StatusGetFTprior(braid_Status status, braid_Real *ftprior_ptr);
/** Coarsen/refine: the fine-level time point after t. */
braid_Int braid_StatusGetFTstop(braid_Status status, braid_Real *ftstop_ptr);
/** Coarsen/refine: t and its four neighbours in one call. */
braid_Int braid_StatusGetTpriorTstop(braid_Status status, braid_Real *t_ptr,
                                     braid_Real *ftprior_ptr, braid_Real *ftstop_ptr,
                                     braid_Real *ctprior_ptr, braid_Real *ctstop_ptr);
/** Step: the end of the interval. */
braid_Int braid_StatusGetTstop(braid_Status status, braid_Real *tstop_ptr);
/** Step: both ends of the interval. */
braid_Int braid_StatusGetTstartTstop(braid_Status status, braid_Real *tstart_ptr,
                                     braid_Real *tstop_ptr);
/** The halting tolerance (relative to the first residual when braid_SetRelTol was used). */
braid_Int braid_StatusGetTol(braid_Status status, braid_Real *tol_ptr);
/** The residual history so far: *nrequest_ptr > 0 asks for the first n norms, < 0 for the
 *  last |n|; on return it holds the number copied into rnorms. */
braid_Int braid_StatusGetRNorms(braid_Status status, braid_Int *nrequest_ptr,
                                braid_Real *rnorms);
/** The rank of the temporal communicator holding point `index` of `level`, -1 when the
 *  index is outside the level. */
braid_Int braid_StatusGetProc(braid_Status status, braid_Int *proc_ptr, braid_Int level,
                              braid_Int index);
/** The fine-grid spatial tolerance last recorded with braid_StatusSetOldFineTolx (or by
 *  braid_GetSpatialAccuracy), -1 before any. Kept by the core across calls and solves. */
braid_Int braid_StatusGetOldFineTolx(braid_Status status, braid_Real *old_fine_tolx_ptr);
/** Record the fine-grid spatial tolerance just used (see braid_GetSpatialAccuracy). */
braid_Int braid_StatusSetOldFineTolx(braid_Status status, braid_Real old_fine_tolx);
/** Record whether the tightest spatial tolerance is in use (nonzero = yes). */
braid_Int braid_StatusSetTightFineTolx(braid_Status status, braid_Real tight_fine_tolx);
/** Step: ask for the interval [tstart, tstop] to be refined into rfactor equal steps
 *  (1 = no refinement; the integer part is used, it must be at least 1). The engine reads
 *  the request when step returns; it acts on it only when temporal refinement is on
 *  (braid_SetRefine). */
braid_Int braid_StatusSetRFactor(braid_Status status, braid_Real rfactor);
/** Step: as braid_StatusSetRFactor, with the step sizes of the first rfactor - 1 refined
 *  steps given (dtarray[0] first, each positive, together shorter than the interval; the
 *  last step is what remains). The values are copied; NULL means equal steps. */
braid_Int braid_StatusSetRefinementDtValues(braid_Status status, braid_Real rfactor,
                                            braid_Real *dtarray);
/** Step: r_space = 1 asks for a spatial refinement of the fine grid after this iteration. */
braid_Int braid_StatusSetRSpace(braid_Status status, braid_Real r_space);
/** Buffer: 0 for a message between time steps, 1 for load balancing. */
braid_Int braid_StatusGetMessageType(braid_Status status, braid_Int *messagetype_ptr);
/** bufpack: the number of bytes actually written (at most the bufsize bound). */
braid_Int braid_StatusSetSize(braid_Status status, braid_Real size);
/** Step: the Richardson error estimate for the step being taken, that is at its end point
 *  tstop (fine grid only); -1 when none is available (estimation off, coarse level, before
 *  the first estimate). */
braid_Int braid_StatusGetSingleErrorEstStep(braid_Status status, braid_Real *estimate);
/** Access: the Richardson error estimate at the accessed point (fine grid only), -1 when
 *  none is available. */
braid_Int braid_StatusGetSingleErrorEstAccess(braid_Status status, braid_Real *estimate);
/** The number of error estimates this rank holds: its fine-grid points when estimation is
 *  on (braid_SetRichardsonEstimation), 0 otherwise. */
braid_Int braid_StatusGetNumErrorEst(braid_Status status, braid_Int *npoints);
/** Copy this rank's error estimates (fine-grid points ilower..iupper, -1 where none yet)
 *  into the caller's array of braid_StatusGetNumErrorEst entries. */
braid_Int braid_StatusGetAllErrorEst(braid_Status status, braid_Real *error_est);
/** The temporal communicator. */
braid_Int braid_StatusGetTComm(braid_Status status, MPI_Comm *comm_ptr);
/** Delta correction: the number of basis vectors available to this call (step: to propagate;
 *  access: the Lyapunov vector estimates at the point); 0 when Delta correction is off or
 *  not active on this level or iteration. */
braid_Int braid_StatusGetDeltaRank(braid_Status status, braid_Int *rank_ptr);
/** Delta correction: basis vector `index` (0 <= index < the Delta rank), the engine's own
 *  vector (not a copy): step applies its linearisation to it in place. *v_ptr = NULL when
 *  index is outside 0..rank-1 or no basis is held here. */
braid_Int braid_StatusGetBasisVec(braid_Status status, struct _braid_Vector_struct **v_ptr,
                                  braid_Int index);
/** Lyapunov estimation with exponents on: copy the local Lyapunov exponents of the accessed
 *  point (log |R_kk| / interval length of the last orthonormalisation) into exp_ptr, at most
 *  *num_returned of them; on return *num_returned holds the number copied (0 if none). */
braid_Int braid_StatusGetLocalLyapExponents(braid_Status status, braid_Real *exp_ptr,
                                            braid_Int *num_returned);
/** bufsize: the bytes one basis vector needs (default: the state's bufsize bound). */
braid_Int braid_StatusSetBasisSize(braid_Status status, braid_Real size);

/* ---- Access status: handed to the access callback ---- */
braid_Int braid_AccessStatusGetT(braid_AccessStatus s, braid_Real *t_ptr);
braid_Int braid_AccessStatusGetTIndex(braid_AccessStatus s, braid_Int *idx_ptr);
braid_Int braid_AccessStatusGetIter(braid_AccessStatus s, braid_Int *iter_ptr);
braid_Int braid_AccessStatusGetLevel(braid_AccessStatus s, braid_Int *level_ptr);
braid_Int braid_AccessStatusGetNLevels(braid_AccessStatus s, braid_Int *nlevels_ptr);
braid_Int braid_AccessStatusGetNRefine(braid_AccessStatus s, braid_Int *nrefine_ptr);
braid_Int braid_AccessStatusGetNTPoints(braid_AccessStatus s, braid_Int *ntpoints_ptr);
braid_Int braid_AccessStatusGetResidual(braid_AccessStatus s, braid_Real *rnorm_ptr);
braid_Int braid_AccessStatusGetDone(braid_AccessStatus s, braid_Int *done_ptr);
braid_Int braid_AccessStatusGetTILD(braid_AccessStatus s, braid_Real *t_ptr,
                                    braid_Int *iter_ptr, braid_Int *level_ptr,
                                    braid_Int *done_ptr);
braid_Int braid_AccessStatusGetWrapperTest(braid_AccessStatus s, braid_Int *wtest_ptr);
braid_Int braid_AccessStatusGetCallingFunction(braid_AccessStatus s, braid_Int *cfunction_ptr);
braid_Int braid_AccessStatusGetSingleErrorEstAccess(braid_AccessStatus s,
                                                    braid_Real *estimate_ptr);
braid_Int braid_AccessStatusGetCFactor(braid_AccessStatus s, braid_Int *cfactor_ptr,
                                       braid_Int level);
braid_Int braid_AccessStatusGetDeltaRank(braid_AccessStatus s, braid_Int *rank_ptr);
braid_Int braid_AccessStatusGetBasisVec(braid_AccessStatus s, struct _braid_Vector_struct **v_ptr,
                                        braid_Int index);
braid_Int braid_AccessStatusGetLocalLyapExponents(braid_AccessStatus s, braid_Real *exp_ptr,
                                                  braid_Int *num_returned);

/* ---- Sync status: handed to the sync callback, once per rank ---- */
braid_Int braid_SyncStatusGetTIUL(braid_SyncStatus s, braid_Int *iloc_upper,
                                  braid_Int *iloc_lower, braid_Int level);
braid_Int braid_SyncStatusGetTimeValues(braid_SyncStatus s, braid_Real **tvalues_ptr,
                                        braid_Int i_upper, braid_Int i_lower,
                                        braid_Int level);
braid_Int braid_SyncStatusGetProc(braid_SyncStatus s, braid_Int *proc_ptr, braid_Int level,
                                  braid_Int index);
braid_Int braid_SyncStatusGetIter(braid_SyncStatus s, braid_Int *iter_ptr);
braid_Int braid_SyncStatusGetLevel(braid_SyncStatus s, braid_Int *level_ptr);
braid_Int braid_SyncStatusGetNLevels(braid_SyncStatus s, braid_Int *nlevels_ptr);
braid_Int braid_SyncStatusGetNRefine(braid_SyncStatus s, braid_Int *nrefine_ptr);
braid_Int braid_SyncStatusGetNTPoints(braid_SyncStatus s, braid_Int *ntpoints_ptr);
braid_Int braid_SyncStatusGetDone(braid_SyncStatus s, braid_Int *done_ptr);
braid_Int braid_SyncStatusGetCallingFunction(braid_SyncStatus s, braid_Int *cfunction_ptr);
braid_Int braid_SyncStatusGetNumErrorEst(braid_SyncStatus s, braid_Int *npoints_ptr);
braid_Int braid_SyncStatusGetAllErrorEst(braid_SyncStatus s, braid_Real *error_est_ptr);
braid_Int braid_SyncStatusGetTComm(braid_SyncStatus s, MPI_Comm *comm_ptr);
braid_Int braid_SyncStatusGetCFactor(braid_SyncStatus s, braid_Int *cfactor_ptr,
                                     braid_Int level);

/* ---- CoarsenRef status: handed to the spatial coarsen and refine callbacks ---- */
braid_Int braid_CoarsenRefStatusGetT(braid_CoarsenRefStatus s, braid_Real *t_ptr);
braid_Int braid_CoarsenRefStatusGetTIndex(braid_CoarsenRefStatus s, braid_Int *idx_ptr);
braid_Int braid_CoarsenRefStatusGetIter(braid_CoarsenRefStatus s, braid_Int *iter_ptr);
braid_Int braid_CoarsenRefStatusGetLevel(braid_CoarsenRefStatus s, braid_Int *level_ptr);
braid_Int braid_CoarsenRefStatusGetNLevels(braid_CoarsenRefStatus s, braid_Int *nlevels_ptr);
braid_Int braid_CoarsenRefStatusGetNRefine(braid_CoarsenRefStatus s, braid_Int *nrefine_ptr);
braid_Int braid_CoarsenRefStatusGetNTPoints(braid_CoarsenRefStatus s,
                                            braid_Int *ntpoints_ptr);
braid_Int braid_CoarsenRefStatusGetCTprior(braid_CoarsenRefStatus s, braid_Real *ctprior_ptr);
braid_Int braid_CoarsenRefStatusGetCTstop(braid_CoarsenRefStatus s, braid_Real *ctstop_ptr);
braid_Int braid_CoarsenRefStatusGetFTprior(braid_CoarsenRefStatus s, braid_Real *ftprior_ptr);
braid_Int braid_CoarsenRefStatusGetFTstop(braid_CoarsenRefStatus s, braid_Real *ftstop_ptr);
braid_Int braid_CoarsenRefStatusGetTpriorTstop(braid_CoarsenRefStatus s, braid_Real *t_ptr,
                                               braid_Real *ftprior_ptr,
                                               braid_Real *ftstop_ptr,
                                               braid_Real *ctprior_ptr,
                                               braid_Real *ctstop_ptr);

/* ---- Step status: handed to the step and residual callbacks ---- */
braid_Int braid_StepStatusGetTIUL(braid_StepStatus s, braid_Int *iloc_upper,
                                  braid_Int *iloc_lower, braid_Int level);
braid_Int braid_StepStatusGetT(braid_StepStatus s, braid_Real *t_ptr);
braid_Int braid_StepStatusGetTIndex(braid_StepStatus s, braid_Int *idx_ptr);
braid_Int braid_StepStatusGetIter(braid_StepStatus s, braid_Int *iter_ptr);
braid_Int braid_StepStatusGetLevel(braid_StepStatus s, braid_Int *level_ptr);
braid_Int braid_StepStatusGetNLevels(braid_StepStatus s, braid_Int *nlevels_ptr);
braid_Int braid_StepStatusGetNRefine(braid_StepStatus s, braid_Int *nrefine_ptr);
braid_Int braid_StepStatusGetNTPoints(braid_StepStatus s, braid_Int *ntpoints_ptr);
braid_Int braid_StepStatusGetTstop(braid_StepStatus s, braid_Real *tstop_ptr);
braid_Int braid_StepStatusGetTstartTstop(braid_StepStatus s, braid_Real *tstart_ptr,
                                         braid_Real *tstop_ptr);
braid_Int braid_StepStatusGetTol(braid_StepStatus s, braid_Real *tol_ptr);
braid_Int braid_StepStatusGetRNorms(braid_StepStatus s, braid_Int *nrequest_ptr,
                                    braid_Real *rnorms);
braid_Int braid_StepStatusGetOldFineTolx(braid_StepStatus s, braid_Real *old_fine_tolx_ptr);
braid_Int braid_StepStatusSetOldFineTolx(braid_StepStatus s, braid_Real old_fine_tolx);
braid_Int braid_StepStatusSetTightFineTolx(braid_StepStatus s, braid_Real tight_fine_tolx);
braid_Int braid_StepStatusSetRFactor(braid_StepStatus s, braid_Real rfactor);
braid_Int braid_StepStatusSetRSpace(braid_StepStatus s, braid_Real r_space);
braid_Int braid_StepStatusGetDone(braid_StepStatus s, braid_Int *done_ptr);
braid_Int braid_StepStatusGetSingleErrorEstStep(braid_StepStatus s, braid_Real *estimate_ptr);
braid_Int braid_StepStatusGetCallingFunction(braid_StepStatus s, braid_Int *cfunction_ptr);
braid_Int braid_StepStatusGetCFactor(braid_StepStatus s, braid_Int *cfactor_ptr,
                                     braid_Int level);
braid_Int braid_StepStatusGetDeltaRank(braid_StepStatus s, braid_Int *rank_ptr);
braid_Int braid_StepStatusGetBasisVec(braid_StepStatus s, struct _braid_Vector_struct **v_ptr,
                                      braid_Int index);

/* ---- Buffer status: handed to bufsize, bufpack and bufunpack ---- */
braid_Int braid_BufferStatusGetMessageType(braid_BufferStatus s, braid_Int *messagetype_ptr);
braid_Int braid_BufferStatusGetTIndex(braid_BufferStatus s, braid_Int *idx_ptr);
braid_Int braid_BufferStatusGetLevel(braid_BufferStatus s, braid_Int *level_ptr);
braid_Int braid_BufferStatusSetSize(braid_BufferStatus s, braid_Real size);
braid_Int braid_BufferStatusSetBasisSize(braid_BufferStatus s, braid_Real size);

/* ---- Objective status: handed to objectiveT and objectiveT_diff (adjoint.c) ---- */
braid_Int braid_ObjectiveStatusGetT(braid_ObjectiveStatus s, braid_Real *t_ptr);
braid_Int braid_ObjectiveStatusGetTIndex(braid_ObjectiveStatus s, braid_Int *idx_ptr);
braid_Int braid_ObjectiveStatusGetIter(braid_ObjectiveStatus s, braid_Int *iter_ptr);
braid_Int braid_ObjectiveStatusGetLevel(braid_ObjectiveStatus s, braid_Int *level_ptr);
braid_Int braid_ObjectiveStatusGetNLevels(braid_ObjectiveStatus s, braid_Int *nlevels_ptr);
braid_Int braid_ObjectiveStatusGetNRefine(braid_ObjectiveStatus s, braid_Int *nrefine_ptr);
braid_Int braid_ObjectiveStatusGetNTPoints(braid_ObjectiveStatus s, braid_Int *ntpoints_ptr);
braid_Int braid_ObjectiveStatusGetTol(braid_ObjectiveStatus s, braid_Real *tol_ptr);

#ifdef __cplusplus
}
#endif

#endif
