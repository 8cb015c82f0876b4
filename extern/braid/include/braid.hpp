// layerbraid MGRIT engine: the C++ wrapper of the XBraid interface (braid.hpp).
//
// A C++ program derives its problem from BraidApp, overriding the callbacks as virtual methods,
// and hands it to a BraidCore, whose methods set the solver's options and run it:
//
//    class MyApp : public BraidApp { ... Step, Residual, Clone, Init, Free, Sum, SpatialNorm,
//                                        Access, BufSize, BufPack, BufUnpack ... };
//    MyApp app(MPI_COMM_WORLD, 0.0, 1.0, 64);
//    BraidCore core(MPI_COMM_WORLD, &app);
//    core.SetMaxLevels(3);
//    core.Drive();
//
// The class and method names, their arguments and the names of the C callbacks below are the
// interface's, so programs written for XBraid's braid.hpp compile against this header
// unchanged. Everything here is a thin layer over the C functions of braid.h, braid_status.h
// and braid_test.h: the app object itself is the braid_App the engine passes back to every
// callback, and each status class holds the C status handle of the call in progress.
//
// XBraid_Adjoint: BraidApp::ObjectiveT, ObjectiveT_diff, Step_diff and ResetGradient, the
// BraidObjectiveStatus class (as upstream's), BraidCore::InitAdjoint and the objective and
// adjoint-tolerance methods. Delta correction: BraidApp::InitBasis and InnerProd,
// BraidCore::SetDeltaCorrection (upstream's braid.hpp has no Delta part; these, and the
// adjoint's methods beside BraidObjectiveStatus, follow the C interface one to one).
#ifndef LAYERBRAID_BRAID_HPP
#define LAYERBRAID_BRAID_HPP

#include <cstdio>
#include <cstdlib>

#include "_braid.h"
#include "braid.h"
#include "braid_test.h"
#include "braid_status.hpp"  // the status classes (BraidStepStatus ...)

// ---------------------------------------------------------------------------------------------
// The application. The engine calls these methods through the C callbacks further down, with
// the BraidApp object as braid_App; braid_Vector is the application's own vector type.
// ---------------------------------------------------------------------------------------------
class BraidApp
{
public:
   // The temporal problem, read by BraidCore's constructor (braid_Init's arguments).
   MPI_Comm   comm_t;   // ranks that share the time steps
   braid_Real tstart;
   braid_Real tstop;
   braid_Int  ntime;    // number of time steps: ntime + 1 time points

   BraidApp(MPI_Comm   _comm_t,
            braid_Real _tstart = 0.0,
            braid_Real _tstop  = 1.0,
            braid_Int  _ntime  = 100)
      : comm_t(_comm_t), tstart(_tstart), tstop(_tstop), ntime(_ntime)
   {
   }

   virtual ~BraidApp() {}

   // ---- required ----

   // Advance u_ in place from tstart to tstop (pstatus.GetTstartTstop). ustop_ is the current
   // value at tstop, a starting guess for an implicit solve (it may be u_ itself); fstop_ is a
   // right-hand side to include, NULL unless BraidCore::SetResidual was called.
   virtual braid_Int Step(braid_Vector     u_,
                          braid_Vector     ustop_,
                          braid_Vector     fstop_,
                          BraidStepStatus &pstatus) = 0;

   // Residual of the time-step equation at tstop: on entry r_ holds the value at tstart, u_ is
   // the value at tstop; on return r_ holds the residual. Only called after
   // BraidCore::SetResidual (or as the function given to the residual test).
   virtual braid_Int Residual(braid_Vector     u_,
                              braid_Vector     r_,
                              BraidStepStatus &pstatus) = 0;

   // *v_ptr = a new vector holding a copy of u_.
   virtual braid_Int Clone(braid_Vector  u_,
                           braid_Vector *v_ptr) = 0;

   // *u_ptr = a new vector: the initial condition when t is tstart, else an initial guess.
   virtual braid_Int Init(braid_Real    t,
                          braid_Vector *u_ptr) = 0;

   // Release a vector made by Init, Clone or BufUnpack.
   virtual braid_Int Free(braid_Vector u_) = 0;

   // y_ = alpha x_ + beta y_
   virtual braid_Int Sum(braid_Real   alpha,
                         braid_Vector x_,
                         braid_Real   beta,
                         braid_Vector y_) = 0;

   // *norm_ptr = a norm of u_ in space (combined over time by the temporal norm).
   virtual braid_Int SpatialNorm(braid_Vector  u_,
                                 braid_Real   *norm_ptr) = 0;

   // Look at (write out, record) u_; astatus tells when and where.
   virtual braid_Int Access(braid_Vector       u_,
                            BraidAccessStatus &astatus) = 0;

   // *size_ptr = an upper bound on the bytes BufPack writes for one vector.
   virtual braid_Int BufSize(braid_Int         *size_ptr,
                             BraidBufferStatus &bstatus) = 0;

   // Write u_ into buffer (bstatus.SetSize may report the bytes actually written).
   virtual braid_Int BufPack(braid_Vector       u_,
                             void              *buffer,
                             BraidBufferStatus &bstatus) = 0;

   // *u_ptr = a new vector read from buffer.
   virtual braid_Int BufUnpack(void              *buffer,
                               braid_Vector      *u_ptr,
                               BraidBufferStatus &bstatus) = 0;

   // ---- optional: used only after the matching BraidCore setter ----

   // Message buffers from the application's allocator (e.g. device memory), after
   // BraidCore::SetBufAllocFree. The defaults use malloc and free, and say that they do.
   virtual braid_Int BufAlloc(void             **buffer,
                              braid_Int          nbytes,
                              BraidBufferStatus &bstatus)
   {
      (void)bstatus;
      std::fprintf(stderr, "BraidApp::BufAlloc: not overridden, using malloc; call "
                           "BraidCore::SetBufAllocFree only with BufAlloc and BufFree defined\n");
      *buffer = std::malloc(nbytes > 0 ? (size_t)nbytes : 1);
      return *buffer == NULL ? braid_ERROR_MEMORY : 0;
   }

   virtual braid_Int BufFree(void **buffer)
   {
      std::fprintf(stderr, "BraidApp::BufFree: not overridden, using free; call "
                           "BraidCore::SetBufAllocFree only with BufAlloc and BufFree defined\n");
      std::free(*buffer);
      *buffer = NULL;
      return 0;
   }

   // Move a vector to the spatial grid of the next coarser (Coarsen) or finer (Refine) time
   // level, after BraidCore::SetSpatialCoarsenAndRefine. The defaults copy the vector unchanged
   // and say so.
   virtual braid_Int Coarsen(braid_Vector           fu_,
                             braid_Vector          *cu_ptr,
                             BraidCoarsenRefStatus &status)
   {
      (void)status;
      std::fprintf(stderr, "BraidApp::Coarsen: not overridden, copying the vector; define "
                           "Coarsen and Refine before BraidCore::SetSpatialCoarsenAndRefine\n");
      return Clone(fu_, cu_ptr);
   }

   virtual braid_Int Refine(braid_Vector           cu_,
                            braid_Vector          *fu_ptr,
                            BraidCoarsenRefStatus &status)
   {
      (void)status;
      std::fprintf(stderr, "BraidApp::Refine: not overridden, copying the vector; define "
                           "Coarsen and Refine before BraidCore::SetSpatialCoarsenAndRefine\n");
      return Clone(cu_, fu_ptr);
   }

   // Delta correction (BraidCore::SetDeltaCorrection): *u_ptr = a new vector, basis vector
   // `index` of the initial basis at time t (the basis vectors must be linearly independent).
   virtual braid_Int InitBasis(braid_Real t, braid_Int index, braid_Vector *u_ptr)
   {
      (void)t;
      (void)index;
      (void)u_ptr;
      std::fprintf(stderr, "BraidApp::InitBasis: not overridden; define InitBasis and "
                           "InnerProd before BraidCore::SetDeltaCorrection\n");
      return 1;
   }

   // Delta correction: *prod_ptr = the inner product of u_ and v_.
   virtual braid_Int InnerProd(braid_Vector u_, braid_Vector v_, braid_Real *prod_ptr)
   {
      (void)u_;
      (void)v_;
      (void)prod_ptr;
      std::fprintf(stderr, "BraidApp::InnerProd: not overridden; define InitBasis and "
                           "InnerProd before BraidCore::SetDeltaCorrection\n");
      return 1;
   }

   // Called once per rank at set points of the solve (e.g. once per iteration), after
   // BraidCore::SetSync.
   virtual braid_Int Sync(BraidSyncStatus &sstatus)
   {
      (void)sstatus;
      std::fprintf(stderr, "BraidApp::Sync: not overridden; define Sync before "
                           "BraidCore::SetSync\n");
      return 0;
   }

   // ---- XBraid_Adjoint (after BraidCore::InitAdjoint); see braid.h's braid_PtFcnObjectiveT,
   // braid_PtFcnObjectiveTDiff, braid_PtFcnStepDiff and braid_PtFcnResetGradient ----

   // *objectiveT_ptr = the objective's term at the time point of ostatus.
   virtual braid_Int ObjectiveT(braid_Vector          u_,
                                BraidObjectiveStatus &ostatus,
                                braid_Real           *objectiveT_ptr)
   {
      (void)u_;
      (void)ostatus;
      (void)objectiveT_ptr;
      return NotOverridden("ObjectiveT");
   }

   // u_bar_ = (d objectiveT / d u)^T F_bar (u_bar_ is zero on entry); the design derivative
   // goes into the app's gradient.
   virtual braid_Int ObjectiveT_diff(braid_Vector          u_,
                                     braid_Vector          u_bar_,
                                     braid_Real            F_bar,
                                     BraidObjectiveStatus &ostatus)
   {
      (void)u_;
      (void)u_bar_;
      (void)F_bar;
      (void)ostatus;
      return NotOverridden("ObjectiveT_diff");
   }

   // The transposed derivative of Step at u_ (its input; ustop_ its result): u_bar_ holds the
   // adjoint of the result on entry and of the input on return; the design derivative times
   // u_bar_ goes into the app's gradient.
   virtual braid_Int Step_diff(braid_Vector     ustop_,
                               braid_Vector     u_,
                               braid_Vector     ustop_bar_,
                               braid_Vector     u_bar_,
                               BraidStepStatus &pstatus)
   {
      (void)ustop_;
      (void)u_;
      (void)ustop_bar_;
      (void)u_bar_;
      (void)pstatus;
      return NotOverridden("Step_diff");
   }

   // Sets the app's gradient to zero (before each adjoint sweep).
   virtual braid_Int ResetGradient() { return NotOverridden("ResetGradient"); }

private:
   static braid_Int NotOverridden(const char *method)
   {
      std::fprintf(stderr, "BraidApp::%s: not overridden; define ObjectiveT, ObjectiveT_diff, "
                           "Step_diff and ResetGradient before BraidCore::InitAdjoint\n", method);
      return 1;
   }
};

// ---------------------------------------------------------------------------------------------
// The C callbacks given to the engine. The braid_App they receive is the BraidApp; each makes
// the status object for the call and forwards to the virtual method. (Programs may pass these
// to the C functions directly, e.g. to braid_TestAll.)
// ---------------------------------------------------------------------------------------------
static inline BraidApp *_BraidAppOf(braid_App app) { return reinterpret_cast<BraidApp *>(app); }

static inline braid_Int _BraidAppStep(braid_App        _app,
                                      braid_Vector     _ustop,
                                      braid_Vector     _fstop,
                                      braid_Vector     _u,
                                      braid_StepStatus _pstatus)
{
   BraidStepStatus pstatus(_pstatus);
   return _BraidAppOf(_app)->Step(_u, _ustop, _fstop, pstatus);
}

static inline braid_Int _BraidAppResidual(braid_App        _app,
                                          braid_Vector     _ustop,
                                          braid_Vector     _r,
                                          braid_StepStatus _pstatus)
{
   BraidStepStatus pstatus(_pstatus);
   return _BraidAppOf(_app)->Residual(_ustop, _r, pstatus);
}

static inline braid_Int _BraidAppClone(braid_App _app, braid_Vector _u, braid_Vector *v_ptr)
{
   return _BraidAppOf(_app)->Clone(_u, v_ptr);
}

static inline braid_Int _BraidAppInit(braid_App _app, braid_Real t, braid_Vector *u_ptr)
{
   return _BraidAppOf(_app)->Init(t, u_ptr);
}

static inline braid_Int _BraidAppFree(braid_App _app, braid_Vector _u)
{
   return _BraidAppOf(_app)->Free(_u);
}

static inline braid_Int _BraidAppSum(braid_App    _app,
                                     braid_Real   alpha,
                                     braid_Vector _x,
                                     braid_Real   beta,
                                     braid_Vector _y)
{
   return _BraidAppOf(_app)->Sum(alpha, _x, beta, _y);
}

static inline braid_Int _BraidAppSpatialNorm(braid_App _app, braid_Vector _u, braid_Real *norm_ptr)
{
   return _BraidAppOf(_app)->SpatialNorm(_u, norm_ptr);
}

static inline braid_Int _BraidAppInitBasis(braid_App _app, braid_Real t, braid_Int index,
                                           braid_Vector *u_ptr)
{
   return _BraidAppOf(_app)->InitBasis(t, index, u_ptr);
}

static inline braid_Int _BraidAppInnerProd(braid_App _app, braid_Vector _u, braid_Vector _v,
                                           braid_Real *prod_ptr)
{
   return _BraidAppOf(_app)->InnerProd(_u, _v, prod_ptr);
}

static inline braid_Int _BraidAppAccess(braid_App _app, braid_Vector _u,
                                        braid_AccessStatus _astatus)
{
   BraidAccessStatus astatus(_astatus);
   return _BraidAppOf(_app)->Access(_u, astatus);
}

static inline braid_Int _BraidAppSync(braid_App _app, braid_SyncStatus _sstatus)
{
   BraidSyncStatus sstatus(_sstatus);
   return _BraidAppOf(_app)->Sync(sstatus);
}

static inline braid_Int _BraidAppBufSize(braid_App _app, braid_Int *size_ptr,
                                         braid_BufferStatus _bstatus)
{
   BraidBufferStatus bstatus(_bstatus);
   return _BraidAppOf(_app)->BufSize(size_ptr, bstatus);
}

static inline braid_Int _BraidAppBufPack(braid_App _app, braid_Vector _u, void *buffer,
                                         braid_BufferStatus _bstatus)
{
   BraidBufferStatus bstatus(_bstatus);
   return _BraidAppOf(_app)->BufPack(_u, buffer, bstatus);
}

static inline braid_Int _BraidAppBufUnpack(braid_App _app, void *buffer, braid_Vector *u_ptr,
                                           braid_BufferStatus _bstatus)
{
   BraidBufferStatus bstatus(_bstatus);
   return _BraidAppOf(_app)->BufUnpack(buffer, u_ptr, bstatus);
}

static inline braid_Int _BraidBufAlloc(braid_App _app, void **buffer, braid_Int nbytes,
                                       braid_BufferStatus _bstatus)
{
   BraidBufferStatus bstatus(_bstatus);
   return _BraidAppOf(_app)->BufAlloc(buffer, nbytes, bstatus);
}

static inline braid_Int _BraidBufFree(braid_App _app, void **buffer)
{
   return _BraidAppOf(_app)->BufFree(buffer);
}

static inline braid_Int _BraidAppCoarsen(braid_App _app, braid_Vector _fu, braid_Vector *cu_ptr,
                                         braid_CoarsenRefStatus _cstatus)
{
   BraidCoarsenRefStatus cstatus(_cstatus);
   return _BraidAppOf(_app)->Coarsen(_fu, cu_ptr, cstatus);
}

static inline braid_Int _BraidAppRefine(braid_App _app, braid_Vector _cu, braid_Vector *fu_ptr,
                                        braid_CoarsenRefStatus _cstatus)
{
   BraidCoarsenRefStatus cstatus(_cstatus);
   return _BraidAppOf(_app)->Refine(_cu, fu_ptr, cstatus);
}

static inline braid_Int _BraidAppObjectiveT(braid_App _app, braid_Vector _u,
                                            braid_ObjectiveStatus _ostatus,
                                            braid_Real *objectiveT_ptr)
{
   BraidObjectiveStatus ostatus(_ostatus);
   return _BraidAppOf(_app)->ObjectiveT(_u, ostatus, objectiveT_ptr);
}

static inline braid_Int _BraidAppObjectiveT_diff(braid_App _app, braid_Vector _u,
                                                 braid_Vector _u_bar, braid_Real F_bar,
                                                 braid_ObjectiveStatus _ostatus)
{
   BraidObjectiveStatus ostatus(_ostatus);
   return _BraidAppOf(_app)->ObjectiveT_diff(_u, _u_bar, F_bar, ostatus);
}

static inline braid_Int _BraidAppStep_diff(braid_App _app, braid_Vector _ustop, braid_Vector _u,
                                           braid_Vector _ustop_bar, braid_Vector _u_bar,
                                           braid_StepStatus _pstatus)
{
   BraidStepStatus pstatus(_pstatus);
   return _BraidAppOf(_app)->Step_diff(_ustop, _u, _ustop_bar, _u_bar, pstatus);
}

static inline braid_Int _BraidAppResetGradient(braid_App _app)
{
   return _BraidAppOf(_app)->ResetGradient();
}

// ---------------------------------------------------------------------------------------------
// The solver. The constructor creates the C core for the app's time problem (braid_Init with
// the callbacks above), the destructor frees it; every Set*/Get* forwards to the C function of
// the same name. The app must outlive the BraidCore.
// ---------------------------------------------------------------------------------------------
class BraidCore
{
private:
   braid_Core core;

public:
   BraidCore(MPI_Comm comm_world, BraidApp *app) : core(NULL)
   {
      braid_Init(comm_world, app->comm_t, app->tstart, app->tstop, app->ntime,
                 reinterpret_cast<braid_App>(app), _BraidAppStep, _BraidAppInit, _BraidAppClone,
                 _BraidAppFree, _BraidAppSum, _BraidAppSpatialNorm, _BraidAppAccess,
                 _BraidAppBufSize, _BraidAppBufPack, _BraidAppBufUnpack, &core);
   }

   ~BraidCore() { braid_Destroy(core); }

   // ---- cycling ----
   void SetMaxLevels(braid_Int max_levels) { braid_SetMaxLevels(core, max_levels); }
   void SetIncrMaxLevels() { braid_SetIncrMaxLevels(core); }
   void SetSkip(braid_Int skip) { braid_SetSkip(core, skip); }
   void SetMinCoarse(braid_Int min_coarse) { braid_SetMinCoarse(core, min_coarse); }
   void SetRelaxOnlyCG(braid_Int relax_only_cg) { braid_SetRelaxOnlyCG(core, relax_only_cg); }
   void SetNRelax(braid_Int level, braid_Int nrelax) { braid_SetNRelax(core, level, nrelax); }
   void SetCFactor(braid_Int level, braid_Int cfactor) { braid_SetCFactor(core, level, cfactor); }
   // The coarsening factor of the finest level only; a negative value changes nothing.
   void SetAggCFactor(braid_Int cfactor0)
   {
      if (cfactor0 >= 0)
      {
         braid_SetCFactor(core, 0, cfactor0);
      }
   }
   void SetCRelaxWt(braid_Int level, braid_Real Cwt) { braid_SetCRelaxWt(core, level, Cwt); }
   void SetFMG() { braid_SetFMG(core); }
   void SetNFMG(braid_Int k) { braid_SetNFMG(core, k); }
   void SetNFMGVcyc(braid_Int nfmg_Vcyc) { braid_SetNFMGVcyc(core, nfmg_Vcyc); }
   void SetFinalFCRelax() { braid_SetFinalFCRelax(core); }

   // ---- halting ----
   void SetAbsTol(braid_Real tol) { braid_SetAbsTol(core, tol); }
   void SetRelTol(braid_Real tol) { braid_SetRelTol(core, tol); }
   void SetTemporalNorm(braid_Int tnorm) { braid_SetTemporalNorm(core, tnorm); }
   void SetMaxIter(braid_Int max_iter) { braid_SetMaxIter(core, max_iter); }
   void SetResidualComputation(braid_Int resid_compute)
   {
      braid_SetResidualComputation(core, resid_compute);
   }

   // ---- problem variants, with the app's optional methods as callbacks ----
   void SetSpatialCoarsenAndRefine()
   {
      braid_SetSpatialCoarsen(core, _BraidAppCoarsen);
      braid_SetSpatialRefine(core, _BraidAppRefine);
   }
   void SetSync() { braid_SetSync(core, _BraidAppSync); }
   // Delta correction with the app's InitBasis and InnerProd.
   void SetDeltaCorrection(braid_Int rank)
   {
      braid_SetDeltaCorrection(core, rank, _BraidAppInitBasis, _BraidAppInnerProd);
   }
   void SetDeferDelta(braid_Int level, braid_Int iter) { braid_SetDeferDelta(core, level, iter); }
   void SetLyapunovEstimation(braid_Int relax, braid_Int cglv, braid_Int exponents)
   {
      braid_SetLyapunovEstimation(core, relax, cglv, exponents);
   }
   void SetResidual() { braid_SetResidual(core, _BraidAppResidual); }
   void SetBufAllocFree() { braid_SetBufAllocFree(core, _BraidBufAlloc, _BraidBufFree); }
   void SetPeriodic(braid_Int periodic) { braid_SetPeriodic(core, periodic); }
   void SetFullRNormRes(braid_PtFcnResidual residual) { braid_SetFullRNormRes(core, residual); }
   void SetTimeGrid(braid_PtFcnTimeGrid tgrid) { braid_SetTimeGrid(core, tgrid); }
   void SetSeqSoln(braid_Int use_seq_soln) { braid_SetSeqSoln(core, use_seq_soln); }
   void SetStorage(braid_Int storage) { braid_SetStorage(core, storage); }
   void SetRevertedRanks(braid_Int reverted_ranks)
   {
      braid_SetRevertedRanks(core, reverted_ranks);
   }

   // ---- temporal refinement and error estimation ----
   void SetRefine(braid_Int refine) { braid_SetRefine(core, refine); }
   void SetMaxRefinements(braid_Int max_refinements)
   {
      braid_SetMaxRefinements(core, max_refinements);
   }
   void SetTPointsCutoff(braid_Int tpoints_cutoff)
   {
      braid_SetTPointsCutoff(core, tpoints_cutoff);
   }
   void SetRichardsonEstimation(braid_Int est_error, braid_Int richardson, braid_Int local_order)
   {
      braid_SetRichardsonEstimation(core, est_error, richardson, local_order);
   }

   // ---- output ----
   void SetPrintLevel(braid_Int print_level) { braid_SetPrintLevel(core, print_level); }
   void SetPrintFile(const char *printfile_name) { braid_SetPrintFile(core, printfile_name); }
   void SetDefaultPrintFile() { braid_SetDefaultPrintFile(core); }
   void SetFileIOLevel(braid_Int io_level) { braid_SetFileIOLevel(core, io_level); }
   void SetAccessLevel(braid_Int access_level) { braid_SetAccessLevel(core, access_level); }
   void SetTimings(braid_Int timing_level) { braid_SetTimings(core, timing_level); }

   // ---- results and state ----
   void GetNumIter(braid_Int *niter_ptr) { braid_GetNumIter(core, niter_ptr); }
   void GetRNorms(braid_Int *nrequest_ptr, braid_Real *rnorms)
   {
      braid_GetRNorms(core, nrequest_ptr, rnorms);
   }
   void GetNLevels(braid_Int *nlevels_ptr) { braid_GetNLevels(core, nlevels_ptr); }
   void GetMyID(braid_Int *myid_ptr) { braid_GetMyID(core, myid_ptr); }
   // The coarsening factor of the finest level / of `level` (_braid_GetCFactor).
   void GetCFactor(braid_Int *cfactor_ptr) { GetCFactor(0, cfactor_ptr); }
   void GetCFactor(braid_Int level, braid_Int *cfactor_ptr)
   {
      _braid_GetCFactor(core, level, cfactor_ptr);
   }
   // This rank's fine time points [*ilower_ptr, *iupper_ptr].
   void GetDistribution(braid_Int *ilower_ptr, braid_Int *iupper_ptr)
   {
      _braid_GetDistribution(core, ilower_ptr, iupper_ptr);
   }
   // 1 when the next Drive continues from the solution of an earlier one.
   braid_Int GetWarmRestart() { return _braid_CoreElt(core, warm_restart); }
   // The C core, for the C functions that have no method here.
   braid_Core GetCore() { return core; }

   // ---- XBraid_Adjoint: the piggy-back iteration with the app's ObjectiveT, ObjectiveT_diff,
   // Step_diff and ResetGradient; the objective's window, postprocessing and tolerances ----
   void InitAdjoint()
   {
      braid_InitAdjoint(_BraidAppObjectiveT, _BraidAppObjectiveT_diff, _BraidAppStep_diff,
                        _BraidAppResetGradient, &core);
   }
   void SetTStartObjective(braid_Real tstart_obj) { braid_SetTStartObjective(core, tstart_obj); }
   void SetTStopObjective(braid_Real tstop_obj) { braid_SetTStopObjective(core, tstop_obj); }
   void SetPostprocessObjective(braid_PtFcnPostprocessObjective post_fcn)
   {
      braid_SetPostprocessObjective(core, post_fcn);
   }
   void SetPostprocessObjective_diff(braid_PtFcnPostprocessObjective_diff post_fcn_diff)
   {
      braid_SetPostprocessObjective_diff(core, post_fcn_diff);
   }
   void SetAbsTolAdjoint(braid_Real tol_adj) { braid_SetAbsTolAdjoint(core, tol_adj); }
   void SetRelTolAdjoint(braid_Real rtol_adj) { braid_SetRelTolAdjoint(core, rtol_adj); }
   void SetObjectiveOnly(braid_Int boolean) { braid_SetObjectiveOnly(core, boolean); }
   void GetObjective(braid_Real *objective_ptr) { braid_GetObjective(core, objective_ptr); }
   void GetRNormAdjoint(braid_Real *rnorm_adj) { braid_GetRNormAdjoint(core, rnorm_adj); }

   void Drive() { braid_Drive(core); }
};

// ---------------------------------------------------------------------------------------------
// Helpers: the communicator split, the spatial tolerance rule and the braid_Test* checks of an
// app's methods (each calls the C test with the callbacks above).
// ---------------------------------------------------------------------------------------------
class BraidUtil
{
public:
   BraidUtil() {}
   ~BraidUtil() {}

   void SplitCommworld(const MPI_Comm *comm_world, braid_Int px, MPI_Comm *comm_x,
                       MPI_Comm *comm_t)
   {
      braid_SplitCommworld(comm_world, px, comm_x, comm_t);
   }

   void GetSpatialAccuracy(braid_StepStatus sstatus, braid_Real loose_tol, braid_Real tight_tol,
                           braid_Real *tol_ptr)
   {
      braid_GetSpatialAccuracy(sstatus, loose_tol, tight_tol, tol_ptr);
   }

   void TestInitAccess(BraidApp *app, MPI_Comm comm_x, FILE *fp, braid_Real t)
   {
      braid_TestInitAccess(reinterpret_cast<braid_App>(app), comm_x, fp, t, _BraidAppInit,
                           _BraidAppAccess, _BraidAppFree);
   }

   void TestClone(BraidApp *app, MPI_Comm comm_x, FILE *fp, braid_Real t)
   {
      braid_TestClone(reinterpret_cast<braid_App>(app), comm_x, fp, t, _BraidAppInit,
                      _BraidAppAccess, _BraidAppFree, _BraidAppClone);
   }

   void TestSum(BraidApp *app, MPI_Comm comm_x, FILE *fp, braid_Real t)
   {
      braid_TestSum(reinterpret_cast<braid_App>(app), comm_x, fp, t, _BraidAppInit,
                    _BraidAppAccess, _BraidAppFree, _BraidAppClone, _BraidAppSum);
   }

   braid_Int TestSpatialNorm(BraidApp *app, MPI_Comm comm_x, FILE *fp, braid_Real t)
   {
      return braid_TestSpatialNorm(reinterpret_cast<braid_App>(app), comm_x, fp, t,
                                   _BraidAppInit, _BraidAppFree, _BraidAppClone, _BraidAppSum,
                                   _BraidAppSpatialNorm);
   }

   braid_Int TestBuf(BraidApp *app, MPI_Comm comm_x, FILE *fp, braid_Real t)
   {
      return braid_TestBuf(reinterpret_cast<braid_App>(app), comm_x, fp, t, _BraidAppInit,
                           _BraidAppFree, _BraidAppSum, _BraidAppSpatialNorm, _BraidAppBufSize,
                           _BraidAppBufPack, _BraidAppBufUnpack);
   }

   braid_Int TestCoarsenRefine(BraidApp *app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                               braid_Real fdt, braid_Real cdt)
   {
      return braid_TestCoarsenRefine(reinterpret_cast<braid_App>(app), comm_x, fp, t, fdt, cdt,
                                     _BraidAppInit, _BraidAppAccess, _BraidAppFree,
                                     _BraidAppClone, _BraidAppSum, _BraidAppSpatialNorm,
                                     _BraidAppCoarsen, _BraidAppRefine);
   }

   braid_Int TestResidual(BraidApp *app, MPI_Comm comm_x, FILE *fp, braid_Real t, braid_Real dt)
   {
      return braid_TestResidual(reinterpret_cast<braid_App>(app), comm_x, fp, t, dt,
                                _BraidAppInit, _BraidAppAccess, _BraidAppFree, _BraidAppClone,
                                _BraidAppSum, _BraidAppSpatialNorm, _BraidAppResidual,
                                _BraidAppStep);
   }

   braid_Int TestAll(BraidApp *app, MPI_Comm comm_x, FILE *fp, braid_Real t, braid_Real fdt,
                     braid_Real cdt)
   {
      return braid_TestAll(reinterpret_cast<braid_App>(app), comm_x, fp, t, fdt, cdt,
                           _BraidAppInit, _BraidAppFree, _BraidAppClone, _BraidAppSum,
                           _BraidAppSpatialNorm, _BraidAppBufSize, _BraidAppBufPack,
                           _BraidAppBufUnpack, _BraidAppCoarsen, _BraidAppRefine,
                           _BraidAppResidual, _BraidAppStep);
   }
};

#endif
