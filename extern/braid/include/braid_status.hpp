// layerbraid MGRIT engine: the status classes of the C++ wrapper (braid.hpp includes this file;
// programs include braid.hpp, as with XBraid, whose braid.hpp holds them itself).
//
// BraidAccessStatus, BraidSyncStatus, BraidStepStatus, BraidCoarsenRefStatus,
// BraidBufferStatus and BraidObjectiveStatus, with XBraid's class and method names.
#ifndef LAYERBRAID_BRAID_STATUS_HPP
#define LAYERBRAID_BRAID_STATUS_HPP

#include "braid.h"

// ---------------------------------------------------------------------------------------------
// Status objects: each wraps the C handle given to the callback in progress (valid only during
// that call) and forwards to the braid_*StatusGet/Set functions of the same name.
// ---------------------------------------------------------------------------------------------

// Handed to BraidApp::Access.
class BraidAccessStatus
{
private:
   braid_AccessStatus astatus;

public:
   BraidAccessStatus(braid_AccessStatus _astatus) : astatus(_astatus) {}
   ~BraidAccessStatus() {}

   void GetTILD(braid_Real *t_ptr, braid_Int *iter_ptr, braid_Int *level_ptr,
                braid_Int *done_ptr)
   {
      braid_AccessStatusGetTILD(astatus, t_ptr, iter_ptr, level_ptr, done_ptr);
   }
   void GetT(braid_Real *t_ptr) { braid_AccessStatusGetT(astatus, t_ptr); }
   void GetTIndex(braid_Int *tindex_ptr) { braid_AccessStatusGetTIndex(astatus, tindex_ptr); }
   void GetDone(braid_Int *done_ptr) { braid_AccessStatusGetDone(astatus, done_ptr); }
   void GetLevel(braid_Int *level_ptr) { braid_AccessStatusGetLevel(astatus, level_ptr); }
   void GetNLevels(braid_Int *nlevels_ptr) { braid_AccessStatusGetNLevels(astatus, nlevels_ptr); }
   void GetIter(braid_Int *iter_ptr) { braid_AccessStatusGetIter(astatus, iter_ptr); }
   void GetWrapperTest(braid_Int *wtest_ptr)
   {
      braid_AccessStatusGetWrapperTest(astatus, wtest_ptr);
   }
   void GetResidual(braid_Real *rnorm_ptr) { braid_AccessStatusGetResidual(astatus, rnorm_ptr); }
   void GetNRefine(braid_Int *nrefine_ptr) { braid_AccessStatusGetNRefine(astatus, nrefine_ptr); }
   void GetNTPoints(braid_Int *ntpoints_ptr)
   {
      braid_AccessStatusGetNTPoints(astatus, ntpoints_ptr);
   }
   void GetSingleErrorEstAccess(braid_Real *estimate_ptr)
   {
      braid_AccessStatusGetSingleErrorEstAccess(astatus, estimate_ptr);
   }
   // Delta correction: the basis at this point (Lyapunov vectors with Lyapunov estimation)
   // and the local Lyapunov exponents.
   void GetDeltaRank(braid_Int *rank_ptr) { braid_AccessStatusGetDeltaRank(astatus, rank_ptr); }
   void GetBasisVec(braid_Vector *v_ptr, braid_Int index)
   {
      braid_AccessStatusGetBasisVec(astatus, v_ptr, index);
   }
   void GetLocalLyapExponents(braid_Real *exp_ptr, braid_Int *num_returned)
   {
      braid_AccessStatusGetLocalLyapExponents(astatus, exp_ptr, num_returned);
   }
   void GetCallingFunction(braid_Int *callingfcn_ptr)
   {
      braid_AccessStatusGetCallingFunction(astatus, callingfcn_ptr);
   }
};

// Handed to BraidApp::Sync.
class BraidSyncStatus
{
private:
   braid_SyncStatus sstatus;

public:
   BraidSyncStatus(braid_SyncStatus _sstatus) : sstatus(_sstatus) {}
   ~BraidSyncStatus() {}

   void GetTIUL(braid_Int *i_upper, braid_Int *i_lower, braid_Int level)
   {
      braid_SyncStatusGetTIUL(sstatus, i_upper, i_lower, level);
   }
   void GetTimeValues(braid_Real **tvalues_ptr, braid_Int i_upper, braid_Int i_lower,
                      braid_Int level)
   {
      braid_SyncStatusGetTimeValues(sstatus, tvalues_ptr, i_upper, i_lower, level);
   }
   void GetNLevels(braid_Int *nlevels_ptr) { braid_SyncStatusGetNLevels(sstatus, nlevels_ptr); }
   void GetIter(braid_Int *iter_ptr) { braid_SyncStatusGetIter(sstatus, iter_ptr); }
   void GetLevel(braid_Int *level_ptr) { braid_SyncStatusGetLevel(sstatus, level_ptr); }
   void GetNRefine(braid_Int *nrefine_ptr) { braid_SyncStatusGetNRefine(sstatus, nrefine_ptr); }
   void GetNTPoints(braid_Int *ntpoints_ptr)
   {
      braid_SyncStatusGetNTPoints(sstatus, ntpoints_ptr);
   }
   void GetDone(braid_Int *done_ptr) { braid_SyncStatusGetDone(sstatus, done_ptr); }
   void GetNumErrorEst(braid_Int *npoints_ptr)
   {
      braid_SyncStatusGetNumErrorEst(sstatus, npoints_ptr);
   }
   void GetAllErrorEst(braid_Real *error_est_ptr)
   {
      braid_SyncStatusGetAllErrorEst(sstatus, error_est_ptr);
   }
   void GetTComm(MPI_Comm *comm_ptr) { braid_SyncStatusGetTComm(sstatus, comm_ptr); }
   void GetProc(braid_Int *proc_ptr, braid_Int level, braid_Int index)
   {
      braid_SyncStatusGetProc(sstatus, proc_ptr, level, index);
   }
   void GetCallingFunction(braid_Int *callingfcn_ptr)
   {
      braid_SyncStatusGetCallingFunction(sstatus, callingfcn_ptr);
   }
};

// Handed to BraidApp::Step and BraidApp::Residual.
class BraidStepStatus
{
private:
   braid_StepStatus pstatus;

public:
   BraidStepStatus(braid_StepStatus _pstatus) : pstatus(_pstatus) {}
   ~BraidStepStatus() {}

   void GetRNorms(braid_Int *nrequest_ptr, braid_Real *rnorms)
   {
      braid_StepStatusGetRNorms(pstatus, nrequest_ptr, rnorms);
   }
   void GetTstartTstop(braid_Real *tstart_ptr, braid_Real *tstop_ptr)
   {
      braid_StepStatusGetTstartTstop(pstatus, tstart_ptr, tstop_ptr);
   }
   void GetTIUL(braid_Int *i_upper, braid_Int *i_lower, braid_Int level)
   {
      braid_StepStatusGetTIUL(pstatus, i_upper, i_lower, level);
   }
   void GetT(braid_Real *tstart_ptr) { braid_StepStatusGetT(pstatus, tstart_ptr); }
   void GetTstop(braid_Real *tstop_ptr) { braid_StepStatusGetTstop(pstatus, tstop_ptr); }
   void GetDone(braid_Int *done) { braid_StepStatusGetDone(pstatus, done); }
   void GetTIndex(braid_Int *tindex_ptr) { braid_StepStatusGetTIndex(pstatus, tindex_ptr); }
   void GetLevel(braid_Int *level_ptr) { braid_StepStatusGetLevel(pstatus, level_ptr); }
   void GetNLevels(braid_Int *nlevels_ptr) { braid_StepStatusGetNLevels(pstatus, nlevels_ptr); }
   void GetNRefine(braid_Int *nrefine_ptr) { braid_StepStatusGetNRefine(pstatus, nrefine_ptr); }
   void GetNTPoints(braid_Int *ntpoints_ptr)
   {
      braid_StepStatusGetNTPoints(pstatus, ntpoints_ptr);
   }
   void SetRFactor(braid_Int rfactor) { braid_StepStatusSetRFactor(pstatus, rfactor); }
   void SetRSpace(braid_Int rspace) { braid_StepStatusSetRSpace(pstatus, rspace); }
   void GetTol(braid_Real *tol_ptr) { braid_StepStatusGetTol(pstatus, tol_ptr); }
   void GetIter(braid_Int *iter_ptr) { braid_StepStatusGetIter(pstatus, iter_ptr); }
   void GetOldFineTolx(braid_Real *old_fine_tolx_ptr)
   {
      braid_StepStatusGetOldFineTolx(pstatus, old_fine_tolx_ptr);
   }
   void SetOldFineTolx(braid_Real old_fine_tolx)
   {
      braid_StepStatusSetOldFineTolx(pstatus, old_fine_tolx);
   }
   void SetTightFineTolx(braid_Real tight_fine_tolx)
   {
      braid_StepStatusSetTightFineTolx(pstatus, tight_fine_tolx);
   }
   void GetSingleErrorEstStep(braid_Real *estimate_ptr)
   {
      braid_StepStatusGetSingleErrorEstStep(pstatus, estimate_ptr);
   }
   // A tolerance for an inexact spatial solve in Step (braid_GetSpatialAccuracy).
   void GetSpatialAccuracy(braid_Real loose_tol, braid_Real tight_tol, braid_Real *tol_ptr)
   {
      braid_GetSpatialAccuracy(pstatus, loose_tol, tight_tol, tol_ptr);
   }
   // Delta correction: the basis vectors Step must propagate with its linearisation, in place.
   void GetDeltaRank(braid_Int *rank_ptr) { braid_StepStatusGetDeltaRank(pstatus, rank_ptr); }
   void GetBasisVec(braid_Vector *v_ptr, braid_Int index)
   {
      braid_StepStatusGetBasisVec(pstatus, v_ptr, index);
   }
   void GetCallingFunction(braid_Int *callingfcn_ptr)
   {
      braid_StepStatusGetCallingFunction(pstatus, callingfcn_ptr);
   }
};

// Handed to BraidApp::Coarsen and BraidApp::Refine.
class BraidCoarsenRefStatus
{
private:
   braid_CoarsenRefStatus cstatus;

public:
   BraidCoarsenRefStatus(braid_CoarsenRefStatus _cstatus) : cstatus(_cstatus) {}
   ~BraidCoarsenRefStatus() {}

   void GetTpriorTstop(braid_Real *tstart_ptr, braid_Real *f_tprior_ptr,
                       braid_Real *f_tstop_ptr, braid_Real *c_tprior_ptr,
                       braid_Real *c_tstop_ptr)
   {
      braid_CoarsenRefStatusGetTpriorTstop(cstatus, tstart_ptr, f_tprior_ptr, f_tstop_ptr,
                                           c_tprior_ptr, c_tstop_ptr);
   }
   void GetT(braid_Real *tstart_ptr) { braid_CoarsenRefStatusGetT(cstatus, tstart_ptr); }
   void GetTIndex(braid_Int *tindex_ptr) { braid_CoarsenRefStatusGetTIndex(cstatus, tindex_ptr); }
   void GetIter(braid_Int *iter_ptr) { braid_CoarsenRefStatusGetIter(cstatus, iter_ptr); }
   void GetFTstop(braid_Real *f_tstop_ptr)
   {
      braid_CoarsenRefStatusGetFTstop(cstatus, f_tstop_ptr);
   }
   void GetFTprior(braid_Real *f_tprior_ptr)
   {
      braid_CoarsenRefStatusGetFTprior(cstatus, f_tprior_ptr);
   }
   void GetCTstop(braid_Real *c_tstop_ptr)
   {
      braid_CoarsenRefStatusGetCTstop(cstatus, c_tstop_ptr);
   }
   void GetCTprior(braid_Real *c_tprior_ptr)
   {
      braid_CoarsenRefStatusGetCTprior(cstatus, c_tprior_ptr);
   }
   void GetLevel(braid_Int *level_ptr) { braid_CoarsenRefStatusGetLevel(cstatus, level_ptr); }
   void GetNLevels(braid_Int *nlevels_ptr)
   {
      braid_CoarsenRefStatusGetNLevels(cstatus, nlevels_ptr);
   }
   void GetNRefine(braid_Int *nrefine_ptr)
   {
      braid_CoarsenRefStatusGetNRefine(cstatus, nrefine_ptr);
   }
   void GetNTPoints(braid_Int *ntpoints_ptr)
   {
      braid_CoarsenRefStatusGetNTPoints(cstatus, ntpoints_ptr);
   }
};

// Handed to BraidApp::BufSize, BufPack, BufUnpack and BufAlloc.
class BraidBufferStatus
{
private:
   braid_BufferStatus bstatus;

public:
   BraidBufferStatus(braid_BufferStatus _bstatus) : bstatus(_bstatus) {}
   ~BraidBufferStatus() {}

   void GetMessageType(braid_Int *messagetype_ptr)
   {
      braid_BufferStatusGetMessageType(bstatus, messagetype_ptr);
   }
   // In BufPack: the bytes actually written, if fewer than BufSize's bound.
   void SetSize(braid_Int size) { braid_BufferStatusSetSize(bstatus, size); }
   void SetBasisSize(braid_Int size) { braid_BufferStatusSetBasisSize(bstatus, size); }
};

// Handed to BraidApp::ObjectiveT and ObjectiveT_diff.
class BraidObjectiveStatus
{
private:
   braid_ObjectiveStatus ostatus;

public:
   BraidObjectiveStatus(braid_ObjectiveStatus _ostatus) : ostatus(_ostatus) {}
   ~BraidObjectiveStatus() {}

   void GetT(braid_Real *tstart_ptr) { braid_ObjectiveStatusGetT(ostatus, tstart_ptr); }
   void GetTIndex(braid_Int *tindex_ptr) { braid_ObjectiveStatusGetTIndex(ostatus, tindex_ptr); }
   void GetIter(braid_Int *iter_ptr) { braid_ObjectiveStatusGetIter(ostatus, iter_ptr); }
   void GetLevel(braid_Int *level_ptr) { braid_ObjectiveStatusGetLevel(ostatus, level_ptr); }
   void GetNLevels(braid_Int *nlevels_ptr)
   {
      braid_ObjectiveStatusGetNLevels(ostatus, nlevels_ptr);
   }
   void GetNRefine(braid_Int *nrefine_ptr)
   {
      braid_ObjectiveStatusGetNRefine(ostatus, nrefine_ptr);
   }
   void GetNTPoints(braid_Int *ntpoints_ptr)
   {
      braid_ObjectiveStatusGetNTPoints(ostatus, ntpoints_ptr);
   }
   void GetTol(braid_Real *tol_ptr) { braid_ObjectiveStatusGetTol(ostatus, tol_ptr); }
};

#endif
