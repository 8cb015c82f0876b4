/*
 * The typed status functions (braid_AccessStatus*, braid_SyncStatus*, braid_CoarsenRefStatus*,
 * braid_StepStatus*, braid_BufferStatus*): each handle points at the core's one
 * _braid_Status, so each typed function is its generic braid_Status* namesake (status.c).
 */
#include "core_internal.h"

#define G(s) ((braid_Status) (s))

/* A plain field: read here rather than through the generic getter, because a step callback
 * asks for several of them on every call (a trivial step costs a few nanoseconds). */
#define FIELD(s, ptr, field)                                           \
   do {                                                                \
      if ((s) == NULL || (ptr) == NULL) return braid_ERROR_ARG;        \
      *(ptr) = ((const _braid_Status *) (const void *) (s))->field;    \
      return 0;                                                        \
   } while (0)

/* ---- Access status ---- */

braid_Int braid_AccessStatusGetT(braid_AccessStatus s, braid_Real *t_ptr)
{ FIELD(s, t_ptr, t); }
braid_Int braid_AccessStatusGetTIndex(braid_AccessStatus s, braid_Int *idx_ptr)
{ FIELD(s, idx_ptr, tindex); }
braid_Int braid_AccessStatusGetIter(braid_AccessStatus s, braid_Int *iter_ptr)
{ FIELD(s, iter_ptr, iter); }
braid_Int braid_AccessStatusGetLevel(braid_AccessStatus s, braid_Int *level_ptr)
{ FIELD(s, level_ptr, level); }
braid_Int braid_AccessStatusGetNLevels(braid_AccessStatus s, braid_Int *nlevels_ptr)
{ FIELD(s, nlevels_ptr, nlevels); }
braid_Int braid_AccessStatusGetNRefine(braid_AccessStatus s, braid_Int *nrefine_ptr)
{ return braid_StatusGetNRefine(G(s), nrefine_ptr); }
braid_Int braid_AccessStatusGetNTPoints(braid_AccessStatus s, braid_Int *ntpoints_ptr)
{ return braid_StatusGetNTPoints(G(s), ntpoints_ptr); }
braid_Int braid_AccessStatusGetResidual(braid_AccessStatus s, braid_Real *rnorm_ptr)
{ FIELD(s, rnorm_ptr, rnorm); }
braid_Int braid_AccessStatusGetDone(braid_AccessStatus s, braid_Int *done_ptr)
{ FIELD(s, done_ptr, done); }
braid_Int braid_AccessStatusGetTILD(braid_AccessStatus s, braid_Real *t_ptr,
                                    braid_Int *iter_ptr, braid_Int *level_ptr,
                                    braid_Int *done_ptr)
{ return braid_StatusGetTILD(G(s), t_ptr, iter_ptr, level_ptr, done_ptr); }
braid_Int braid_AccessStatusGetWrapperTest(braid_AccessStatus s, braid_Int *wtest_ptr)
{ FIELD(s, wtest_ptr, wrapper_test); }
braid_Int braid_AccessStatusGetCallingFunction(braid_AccessStatus s, braid_Int *cfunction_ptr)
{ FIELD(s, cfunction_ptr, calling_function); }
braid_Int braid_AccessStatusGetSingleErrorEstAccess(braid_AccessStatus s,
                                                    braid_Real *estimate_ptr)
{ return braid_StatusGetSingleErrorEstAccess(G(s), estimate_ptr); }
braid_Int braid_AccessStatusGetCFactor(braid_AccessStatus s, braid_Int *cfactor_ptr,
                                       braid_Int level)
{ return braid_StatusGetCFactor(G(s), cfactor_ptr, level); }

/* ---- Sync status ---- */

braid_Int braid_SyncStatusGetTIUL(braid_SyncStatus s, braid_Int *iloc_upper,
                                  braid_Int *iloc_lower, braid_Int level)
{ return braid_StatusGetTIUL(G(s), iloc_upper, iloc_lower, level); }
braid_Int braid_SyncStatusGetTimeValues(braid_SyncStatus s, braid_Real **tvalues_ptr,
                                        braid_Int i_upper, braid_Int i_lower, braid_Int level)
{ return braid_StatusGetTimeValues(G(s), tvalues_ptr, i_upper, i_lower, level); }
braid_Int braid_SyncStatusGetProc(braid_SyncStatus s, braid_Int *proc_ptr, braid_Int level,
                                  braid_Int index)
{ return braid_StatusGetProc(G(s), proc_ptr, level, index); }
braid_Int braid_SyncStatusGetIter(braid_SyncStatus s, braid_Int *iter_ptr)
{ FIELD(s, iter_ptr, iter); }
braid_Int braid_SyncStatusGetLevel(braid_SyncStatus s, braid_Int *level_ptr)
{ FIELD(s, level_ptr, level); }
braid_Int braid_SyncStatusGetNLevels(braid_SyncStatus s, braid_Int *nlevels_ptr)
{ FIELD(s, nlevels_ptr, nlevels); }
braid_Int braid_SyncStatusGetNRefine(braid_SyncStatus s, braid_Int *nrefine_ptr)
{ return braid_StatusGetNRefine(G(s), nrefine_ptr); }
braid_Int braid_SyncStatusGetNTPoints(braid_SyncStatus s, braid_Int *ntpoints_ptr)
{ return braid_StatusGetNTPoints(G(s), ntpoints_ptr); }
braid_Int braid_SyncStatusGetDone(braid_SyncStatus s, braid_Int *done_ptr)
{ FIELD(s, done_ptr, done); }
braid_Int braid_SyncStatusGetCallingFunction(braid_SyncStatus s, braid_Int *cfunction_ptr)
{ FIELD(s, cfunction_ptr, calling_function); }
braid_Int braid_SyncStatusGetNumErrorEst(braid_SyncStatus s, braid_Int *npoints_ptr)
{ return braid_StatusGetNumErrorEst(G(s), npoints_ptr); }
braid_Int braid_SyncStatusGetAllErrorEst(braid_SyncStatus s, braid_Real *error_est_ptr)
{ return braid_StatusGetAllErrorEst(G(s), error_est_ptr); }
braid_Int braid_SyncStatusGetTComm(braid_SyncStatus s, MPI_Comm *comm_ptr)
{ return braid_StatusGetTComm(G(s), comm_ptr); }
braid_Int braid_SyncStatusGetCFactor(braid_SyncStatus s, braid_Int *cfactor_ptr,
                                     braid_Int level)
{ return braid_StatusGetCFactor(G(s), cfactor_ptr, level); }

/* ---- CoarsenRef status ---- */

braid_Int braid_CoarsenRefStatusGetT(braid_CoarsenRefStatus s, braid_Real *t_ptr)
{ FIELD(s, t_ptr, t); }
braid_Int braid_CoarsenRefStatusGetTIndex(braid_CoarsenRefStatus s, braid_Int *idx_ptr)
{ FIELD(s, idx_ptr, tindex); }
braid_Int braid_CoarsenRefStatusGetIter(braid_CoarsenRefStatus s, braid_Int *iter_ptr)
{ FIELD(s, iter_ptr, iter); }
braid_Int braid_CoarsenRefStatusGetLevel(braid_CoarsenRefStatus s, braid_Int *level_ptr)
{ FIELD(s, level_ptr, level); }
braid_Int braid_CoarsenRefStatusGetNLevels(braid_CoarsenRefStatus s, braid_Int *nlevels_ptr)
{ FIELD(s, nlevels_ptr, nlevels); }
braid_Int braid_CoarsenRefStatusGetNRefine(braid_CoarsenRefStatus s, braid_Int *nrefine_ptr)
{ return braid_StatusGetNRefine(G(s), nrefine_ptr); }
braid_Int braid_CoarsenRefStatusGetNTPoints(braid_CoarsenRefStatus s, braid_Int *ntpoints_ptr)
{ return braid_StatusGetNTPoints(G(s), ntpoints_ptr); }
braid_Int braid_CoarsenRefStatusGetCTprior(braid_CoarsenRefStatus s, braid_Real *ctprior_ptr)
{ return braid_StatusGetCTprior(G(s), ctprior_ptr); }
braid_Int braid_CoarsenRefStatusGetCTstop(braid_CoarsenRefStatus s, braid_Real *ctstop_ptr)
{ return braid_StatusGetCTstop(G(s), ctstop_ptr); }
braid_Int braid_CoarsenRefStatusGetFTprior(braid_CoarsenRefStatus s, braid_Real *ftprior_ptr)
{ return braid_StatusGetFTprior(G(s), ftprior_ptr); }
braid_Int braid_CoarsenRefStatusGetFTstop(braid_CoarsenRefStatus s, braid_Real *ftstop_ptr)
{ return braid_StatusGetFTstop(G(s), ftstop_ptr); }
braid_Int braid_CoarsenRefStatusGetTpriorTstop(braid_CoarsenRefStatus s, braid_Real *t_ptr,
                                               braid_Real *ftprior_ptr, braid_Real *ftstop_ptr,
                                               braid_Real *ctprior_ptr, braid_Real *ctstop_ptr)
{
   return braid_StatusGetTpriorTstop(G(s), t_ptr, ftprior_ptr, ftstop_ptr, ctprior_ptr,
                                     ctstop_ptr);
}

/* ---- Step status ---- */

braid_Int braid_StepStatusGetTIUL(braid_StepStatus s, braid_Int *iloc_upper,
                                  braid_Int *iloc_lower, braid_Int level)
{ return braid_StatusGetTIUL(G(s), iloc_upper, iloc_lower, level); }
braid_Int braid_StepStatusGetT(braid_StepStatus s, braid_Real *t_ptr)
{ FIELD(s, t_ptr, t); }
braid_Int braid_StepStatusGetTIndex(braid_StepStatus s, braid_Int *idx_ptr)
{ FIELD(s, idx_ptr, tindex); }
braid_Int braid_StepStatusGetIter(braid_StepStatus s, braid_Int *iter_ptr)
{ FIELD(s, iter_ptr, iter); }
braid_Int braid_StepStatusGetLevel(braid_StepStatus s, braid_Int *level_ptr)
{ FIELD(s, level_ptr, level); }
braid_Int braid_StepStatusGetNLevels(braid_StepStatus s, braid_Int *nlevels_ptr)
{ FIELD(s, nlevels_ptr, nlevels); }
braid_Int braid_StepStatusGetNRefine(braid_StepStatus s, braid_Int *nrefine_ptr)
{ return braid_StatusGetNRefine(G(s), nrefine_ptr); }
braid_Int braid_StepStatusGetNTPoints(braid_StepStatus s, braid_Int *ntpoints_ptr)
{ return braid_StatusGetNTPoints(G(s), ntpoints_ptr); }
braid_Int braid_StepStatusGetTstop(braid_StepStatus s, braid_Real *tstop_ptr)
{ FIELD(s, tstop_ptr, tstop); }
braid_Int braid_StepStatusGetTstartTstop(braid_StepStatus s, braid_Real *tstart_ptr,
                                         braid_Real *tstop_ptr)
{
   const _braid_Status *st = (const _braid_Status *) (const void *) s;
   if (st == NULL || tstart_ptr == NULL || tstop_ptr == NULL) return braid_ERROR_ARG;
   *tstart_ptr = st->t;
   *tstop_ptr = st->tstop;
   return 0;
}
braid_Int braid_StepStatusGetTol(braid_StepStatus s, braid_Real *tol_ptr)
{ FIELD(s, tol_ptr, tol); }
braid_Int braid_StepStatusGetRNorms(braid_StepStatus s, braid_Int *nrequest_ptr,
                                    braid_Real *rnorms)
{ return braid_StatusGetRNorms(G(s), nrequest_ptr, rnorms); }
braid_Int braid_StepStatusGetOldFineTolx(braid_StepStatus s, braid_Real *old_fine_tolx_ptr)
{ return braid_StatusGetOldFineTolx(G(s), old_fine_tolx_ptr); }
braid_Int braid_StepStatusSetOldFineTolx(braid_StepStatus s, braid_Real old_fine_tolx)
{ return braid_StatusSetOldFineTolx(G(s), old_fine_tolx); }
braid_Int braid_StepStatusSetTightFineTolx(braid_StepStatus s, braid_Real tight_fine_tolx)
{ return braid_StatusSetTightFineTolx(G(s), tight_fine_tolx); }
braid_Int braid_StepStatusSetRFactor(braid_StepStatus s, braid_Real rfactor)
{ return braid_StatusSetRFactor(G(s), rfactor); }
braid_Int braid_StepStatusSetRSpace(braid_StepStatus s, braid_Real r_space)
{ return braid_StatusSetRSpace(G(s), r_space); }
braid_Int braid_StepStatusGetDone(braid_StepStatus s, braid_Int *done_ptr)
{ FIELD(s, done_ptr, done); }
braid_Int braid_StepStatusGetSingleErrorEstStep(braid_StepStatus s, braid_Real *estimate_ptr)
{ return braid_StatusGetSingleErrorEstStep(G(s), estimate_ptr); }
braid_Int braid_StepStatusGetCallingFunction(braid_StepStatus s, braid_Int *cfunction_ptr)
{ FIELD(s, cfunction_ptr, calling_function); }
braid_Int braid_StepStatusGetCFactor(braid_StepStatus s, braid_Int *cfactor_ptr,
                                     braid_Int level)
{ return braid_StatusGetCFactor(G(s), cfactor_ptr, level); }

/* ---- Buffer status ---- */

braid_Int braid_BufferStatusGetMessageType(braid_BufferStatus s, braid_Int *messagetype_ptr)
{ return braid_StatusGetMessageType(G(s), messagetype_ptr); }
braid_Int braid_BufferStatusGetTIndex(braid_BufferStatus s, braid_Int *idx_ptr)
{ FIELD(s, idx_ptr, tindex); }
braid_Int braid_BufferStatusGetLevel(braid_BufferStatus s, braid_Int *level_ptr)
{ FIELD(s, level_ptr, level); }
braid_Int braid_BufferStatusSetSize(braid_BufferStatus s, braid_Real size)
{ return braid_StatusSetSize(G(s), size); }
