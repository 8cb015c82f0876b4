/*
 * Status getters: what a callback may ask about the engine's position.
 *
 * Every typed handle (braid_StepStatus, braid_AccessStatus, ...) points at the same
 * _braid_Status, so the typed getters forward to the generic ones.
 */
#include "core_internal.h"

void _braid_StatusInit(_braid_Status *s)
{
   s->core = NULL;
   s->t = 0.0;
   s->tstop = 0.0;
   s->tindex = 0;
   s->level = 0;
   s->nlevels = 1;
   s->iter = 0;
   s->done = 0;
   s->wrapper_test = 0;
   s->calling_function = -1;
   s->messagetype = 0;
   s->size = -1.0;
   s->rnorm = braid_INVALID_RNORM;
   s->tol = 0.0;
}

_braid_Status *_braid_StatusFor(braid_Core core, braid_Int level, braid_Int tindex,
                                braid_Real t, braid_Real tstop, braid_Int caller)
{
   _braid_Status *s = &core->status;
   s->core = core;
   s->t = t;
   s->tstop = tstop;
   s->tindex = tindex;
   s->level = level;
   s->nlevels = core->nlevels;
   s->iter = core->iter;
   s->done = core->done;
   s->wrapper_test = 0;
   s->calling_function = caller;
   s->messagetype = 0;
   s->size = -1.0;
   s->rnorm = core->rnorm;
   s->tol = core->tol;
   return s;
}

#define S ((_braid_Status *) status)
#define CHECK(ptr)                                             \
   do {                                                        \
      if (status == NULL || (ptr) == NULL) return braid_ERROR_ARG; \
   } while (0)

braid_Int braid_StatusGetT(braid_Status status, braid_Real *t_ptr)
{ CHECK(t_ptr); *t_ptr = S->t; return 0; }
braid_Int braid_StatusGetTstop(braid_Status status, braid_Real *tstop_ptr)
{ CHECK(tstop_ptr); *tstop_ptr = S->tstop; return 0; }
braid_Int braid_StatusGetTIndex(braid_Status status, braid_Int *idx_ptr)
{ CHECK(idx_ptr); *idx_ptr = S->tindex; return 0; }
braid_Int braid_StatusGetIter(braid_Status status, braid_Int *iter_ptr)
{ CHECK(iter_ptr); *iter_ptr = S->iter; return 0; }
braid_Int braid_StatusGetLevel(braid_Status status, braid_Int *level_ptr)
{ CHECK(level_ptr); *level_ptr = S->level; return 0; }
braid_Int braid_StatusGetNLevels(braid_Status status, braid_Int *nlevels_ptr)
{ CHECK(nlevels_ptr); *nlevels_ptr = S->nlevels; return 0; }
braid_Int braid_StatusGetNRefine(braid_Status status, braid_Int *nrefine_ptr)
{ CHECK(nrefine_ptr); *nrefine_ptr = 0; return 0; } /* no temporal refinement */
braid_Int braid_StatusGetResidual(braid_Status status, braid_Real *rnorm_ptr)
{ CHECK(rnorm_ptr); *rnorm_ptr = S->rnorm; return 0; }
braid_Int braid_StatusGetDone(braid_Status status, braid_Int *done_ptr)
{ CHECK(done_ptr); *done_ptr = S->done; return 0; }
braid_Int braid_StatusGetTol(braid_Status status, braid_Real *tol_ptr)
{ CHECK(tol_ptr); *tol_ptr = S->tol; return 0; }
braid_Int braid_StatusGetWrapperTest(braid_Status status, braid_Int *wtest_ptr)
{ CHECK(wtest_ptr); *wtest_ptr = S->wrapper_test; return 0; }
braid_Int braid_StatusGetCallingFunction(braid_Status status, braid_Int *cfunction_ptr)
{ CHECK(cfunction_ptr); *cfunction_ptr = S->calling_function; return 0; }
braid_Int braid_StatusGetMessageType(braid_Status status, braid_Int *messagetype_ptr)
{ CHECK(messagetype_ptr); *messagetype_ptr = S->messagetype; return 0; }

braid_Int braid_StatusGetNTPoints(braid_Status status, braid_Int *ntpoints_ptr)
{
   CHECK(ntpoints_ptr);
   *ntpoints_ptr = S->core != NULL ? S->core->ntime : 0;
   return 0;
}

braid_Int braid_StatusGetTstartTstop(braid_Status status, braid_Real *tstart_ptr,
                                     braid_Real *tstop_ptr)
{
   CHECK(tstart_ptr);
   CHECK(tstop_ptr);
   *tstart_ptr = S->t;
   *tstop_ptr = S->tstop;
   return 0;
}

braid_Int braid_StatusGetTILD(braid_Status status, braid_Real *t_ptr, braid_Int *iter_ptr,
                              braid_Int *level_ptr, braid_Int *done_ptr)
{
   CHECK(t_ptr);
   CHECK(iter_ptr);
   CHECK(level_ptr);
   CHECK(done_ptr);
   *t_ptr = S->t;
   *iter_ptr = S->iter;
   *level_ptr = S->level;
   *done_ptr = S->done;
   return 0;
}

braid_Int braid_StatusGetRNorms(braid_Status status, braid_Int *nrequest_ptr,
                                braid_Real *rnorms)
{
   CHECK(nrequest_ptr);
   if (S->core == NULL)
   {
      *nrequest_ptr = 0;
      return 0;
   }
   return braid_GetRNorms((braid_Core) S->core, nrequest_ptr, rnorms);
}

braid_Int braid_StatusGetTIUL(braid_Status status, braid_Int *iupper_ptr,
                              braid_Int *ilower_ptr, braid_Int level)
{
   CHECK(iupper_ptr);
   CHECK(ilower_ptr);
   if (S->core == NULL || S->core->grids == NULL || level < 0 || level >= S->core->nlevels)
   {
      return braid_ERROR_ARG;
   }
   *ilower_ptr = S->core->grids[level]->ilower;
   *iupper_ptr = S->core->grids[level]->iupper;
   return 0;
}

braid_Int braid_StatusGetCFactor(braid_Status status, braid_Int *cfactor_ptr, braid_Int level)
{
   CHECK(cfactor_ptr);
   if (S->core == NULL || S->core->grids == NULL || level < 0 || level >= S->core->nlevels)
   {
      return braid_ERROR_ARG;
   }
   *cfactor_ptr = S->core->grids[level]->cfactor;
   return 0;
}

braid_Int braid_StatusGetTComm(braid_Status status, MPI_Comm *comm_ptr)
{
   CHECK(comm_ptr);
   if (S->core == NULL) return braid_ERROR_ARG;
   *comm_ptr = S->core->comm;
   return 0;
}

braid_Int braid_StatusSetSize(braid_Status status, braid_Real size)
{
   if (status == NULL || !(size >= 0.0)) return braid_ERROR_ARG;
   S->size = size;
   return 0;
}

braid_Int braid_StatusSetRFactor(braid_Status status, braid_Real rfactor)
{
   (void) rfactor; /* temporal refinement is not supported; accepted for compatibility */
   return status == NULL ? braid_ERROR_ARG : 0;
}

/* ---- typed wrappers ---- */
#define G(status) ((braid_Status) (status))

braid_Int braid_AccessStatusGetT(braid_AccessStatus s, braid_Real *t_ptr)
{ return braid_StatusGetT(G(s), t_ptr); }
braid_Int braid_AccessStatusGetTIndex(braid_AccessStatus s, braid_Int *idx_ptr)
{ return braid_StatusGetTIndex(G(s), idx_ptr); }
braid_Int braid_AccessStatusGetIter(braid_AccessStatus s, braid_Int *iter_ptr)
{ return braid_StatusGetIter(G(s), iter_ptr); }
braid_Int braid_AccessStatusGetLevel(braid_AccessStatus s, braid_Int *level_ptr)
{ return braid_StatusGetLevel(G(s), level_ptr); }
braid_Int braid_AccessStatusGetNLevels(braid_AccessStatus s, braid_Int *nlevels_ptr)
{ return braid_StatusGetNLevels(G(s), nlevels_ptr); }
braid_Int braid_AccessStatusGetNRefine(braid_AccessStatus s, braid_Int *nrefine_ptr)
{ return braid_StatusGetNRefine(G(s), nrefine_ptr); }
braid_Int braid_AccessStatusGetNTPoints(braid_AccessStatus s, braid_Int *ntpoints_ptr)
{ return braid_StatusGetNTPoints(G(s), ntpoints_ptr); }
braid_Int braid_AccessStatusGetResidual(braid_AccessStatus s, braid_Real *rnorm_ptr)
{ return braid_StatusGetResidual(G(s), rnorm_ptr); }
braid_Int braid_AccessStatusGetDone(braid_AccessStatus s, braid_Int *done_ptr)
{ return braid_StatusGetDone(G(s), done_ptr); }
braid_Int braid_AccessStatusGetTILD(braid_AccessStatus s, braid_Real *t_ptr,
                                    braid_Int *iter_ptr, braid_Int *level_ptr,
                                    braid_Int *done_ptr)
{ return braid_StatusGetTILD(G(s), t_ptr, iter_ptr, level_ptr, done_ptr); }
braid_Int braid_AccessStatusGetWrapperTest(braid_AccessStatus s, braid_Int *wtest_ptr)
{ return braid_StatusGetWrapperTest(G(s), wtest_ptr); }
braid_Int braid_AccessStatusGetCallingFunction(braid_AccessStatus s, braid_Int *cfunction_ptr)
{ return braid_StatusGetCallingFunction(G(s), cfunction_ptr); }
braid_Int braid_AccessStatusGetCFactor(braid_AccessStatus s, braid_Int *cfactor_ptr,
                                       braid_Int level)
{ return braid_StatusGetCFactor(G(s), cfactor_ptr, level); }

braid_Int braid_StepStatusGetT(braid_StepStatus s, braid_Real *t_ptr)
{ return braid_StatusGetT(G(s), t_ptr); }
braid_Int braid_StepStatusGetTstop(braid_StepStatus s, braid_Real *tstop_ptr)
{ return braid_StatusGetTstop(G(s), tstop_ptr); }
braid_Int braid_StepStatusGetTstartTstop(braid_StepStatus s, braid_Real *tstart_ptr,
                                         braid_Real *tstop_ptr)
{ return braid_StatusGetTstartTstop(G(s), tstart_ptr, tstop_ptr); }
braid_Int braid_StepStatusGetTIndex(braid_StepStatus s, braid_Int *idx_ptr)
{ return braid_StatusGetTIndex(G(s), idx_ptr); }
braid_Int braid_StepStatusGetLevel(braid_StepStatus s, braid_Int *level_ptr)
{ return braid_StatusGetLevel(G(s), level_ptr); }
braid_Int braid_StepStatusGetNLevels(braid_StepStatus s, braid_Int *nlevels_ptr)
{ return braid_StatusGetNLevels(G(s), nlevels_ptr); }
braid_Int braid_StepStatusGetIter(braid_StepStatus s, braid_Int *iter_ptr)
{ return braid_StatusGetIter(G(s), iter_ptr); }
braid_Int braid_StepStatusGetNRefine(braid_StepStatus s, braid_Int *nrefine_ptr)
{ return braid_StatusGetNRefine(G(s), nrefine_ptr); }
braid_Int braid_StepStatusGetNTPoints(braid_StepStatus s, braid_Int *ntpoints_ptr)
{ return braid_StatusGetNTPoints(G(s), ntpoints_ptr); }
braid_Int braid_StepStatusGetTol(braid_StepStatus s, braid_Real *tol_ptr)
{ return braid_StatusGetTol(G(s), tol_ptr); }
braid_Int braid_StepStatusGetRNorms(braid_StepStatus s, braid_Int *nrequest_ptr,
                                    braid_Real *rnorms)
{ return braid_StatusGetRNorms(G(s), nrequest_ptr, rnorms); }
braid_Int braid_StepStatusGetTIUL(braid_StepStatus s, braid_Int *iupper_ptr,
                                  braid_Int *ilower_ptr, braid_Int level)
{ return braid_StatusGetTIUL(G(s), iupper_ptr, ilower_ptr, level); }
braid_Int braid_StepStatusGetDone(braid_StepStatus s, braid_Int *done_ptr)
{ return braid_StatusGetDone(G(s), done_ptr); }
braid_Int braid_StepStatusGetCallingFunction(braid_StepStatus s, braid_Int *cfunction_ptr)
{ return braid_StatusGetCallingFunction(G(s), cfunction_ptr); }
braid_Int braid_StepStatusGetCFactor(braid_StepStatus s, braid_Int *cfactor_ptr,
                                     braid_Int level)
{ return braid_StatusGetCFactor(G(s), cfactor_ptr, level); }
braid_Int braid_StepStatusSetRFactor(braid_StepStatus s, braid_Real rfactor)
{ return braid_StatusSetRFactor(G(s), rfactor); }

braid_Int braid_BufferStatusGetMessageType(braid_BufferStatus s, braid_Int *messagetype_ptr)
{ return braid_StatusGetMessageType(G(s), messagetype_ptr); }
braid_Int braid_BufferStatusGetTIndex(braid_BufferStatus s, braid_Int *idx_ptr)
{ return braid_StatusGetTIndex(G(s), idx_ptr); }
braid_Int braid_BufferStatusGetLevel(braid_BufferStatus s, braid_Int *level_ptr)
{ return braid_StatusGetLevel(G(s), level_ptr); }
braid_Int braid_BufferStatusSetSize(braid_BufferStatus s, braid_Real size)
{ return braid_StatusSetSize(G(s), size); }

braid_Int braid_SyncStatusGetTIUL(braid_SyncStatus s, braid_Int *iupper_ptr,
                                  braid_Int *ilower_ptr, braid_Int level)
{ return braid_StatusGetTIUL(G(s), iupper_ptr, ilower_ptr, level); }
braid_Int braid_SyncStatusGetIter(braid_SyncStatus s, braid_Int *iter_ptr)
{ return braid_StatusGetIter(G(s), iter_ptr); }
braid_Int braid_SyncStatusGetLevel(braid_SyncStatus s, braid_Int *level_ptr)
{ return braid_StatusGetLevel(G(s), level_ptr); }
braid_Int braid_SyncStatusGetNLevels(braid_SyncStatus s, braid_Int *nlevels_ptr)
{ return braid_StatusGetNLevels(G(s), nlevels_ptr); }
braid_Int braid_SyncStatusGetNRefine(braid_SyncStatus s, braid_Int *nrefine_ptr)
{ return braid_StatusGetNRefine(G(s), nrefine_ptr); }
braid_Int braid_SyncStatusGetNTPoints(braid_SyncStatus s, braid_Int *ntpoints_ptr)
{ return braid_StatusGetNTPoints(G(s), ntpoints_ptr); }
braid_Int braid_SyncStatusGetDone(braid_SyncStatus s, braid_Int *done_ptr)
{ return braid_StatusGetDone(G(s), done_ptr); }
braid_Int braid_SyncStatusGetCallingFunction(braid_SyncStatus s, braid_Int *cfunction_ptr)
{ return braid_StatusGetCallingFunction(G(s), cfunction_ptr); }
braid_Int braid_SyncStatusGetTComm(braid_SyncStatus s, MPI_Comm *comm_ptr)
{ return braid_StatusGetTComm(G(s), comm_ptr); }
