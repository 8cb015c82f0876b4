/*
 * XBraid_Adjoint's options, results and objective status (the generic getters), the
 * layerbraid extensions that read its results, and the lifetime of its state: created by
 * braid_InitAdjoint, its per-level arrays at the first adjoint braid_Drive, freed by
 * braid_Destroy. The iteration itself: adjoint.c and adjoint_cycle.c.
 */
#include <stdlib.h>

#include "adjoint.h"
#include "checked.h"
#include "braid_layerbraid.h"

/* ---- options and results ---- */

braid_Int braid_InitAdjoint(braid_PtFcnObjectiveT objectiveT,
                            braid_PtFcnObjectiveTDiff objT_diff,
                            braid_PtFcnStepDiff step_diff,
                            braid_PtFcnResetGradient reset_gradient, braid_Core *core_ptr)
{
   braid_Core core;
   struct _braid_AdjointState *adj;
   if (core_ptr == NULL || *core_ptr == NULL)
   {
      return _braid_Error("braid_InitAdjoint", "core is NULL (call braid_Init first)");
   }
   core = *core_ptr;
   if (objectiveT == NULL || objT_diff == NULL || step_diff == NULL || reset_gradient == NULL)
   {
      return _braid_Error("braid_InitAdjoint", "objectiveT, objT_diff, step_diff and "
                          "reset_gradient must all be given");
   }
   if (core->adjoint)
   {
      return _braid_Error("braid_InitAdjoint", "the adjoint is already initialised on this core");
   }
   adj = (struct _braid_AdjointState *) calloc(1, sizeof(*adj));
   if (adj == NULL) return _braid_Error("braid_InitAdjoint", "out of memory");
   adj->objectiveT = objectiveT;
   adj->objT_diff = objT_diff;
   adj->step_diff = step_diff;
   adj->reset_gradient = reset_gradient;
   adj->tstart_obj = core->tstart;
   adj->tstop_obj = core->tstop;
   adj->tol_adj = 1e-6;
   adj->rtol_adj = 1;
   adj->rnorm_adj = adj->rnorm_adj0 = braid_INVALID_RNORM;
   core->adjoint_state = adj;
   core->adjoint = 1;
   core->skip = 0;
   return 0;
}

#define CHECK_ADJ(fn)                                                                   \
   do {                                                                                 \
      CHECK_CORE(fn);                                                                   \
      if (!core->adjoint) return _braid_Error(fn, "call braid_InitAdjoint first");      \
   } while (0)

braid_Int braid_SetTStartObjective(braid_Core core, braid_Real tstart_obj)
{
   CHECK_ADJ("braid_SetTStartObjective");
   ADJ(core)->tstart_obj = tstart_obj;
   return 0;
}

braid_Int braid_SetTStopObjective(braid_Core core, braid_Real tstop_obj)
{
   CHECK_ADJ("braid_SetTStopObjective");
   ADJ(core)->tstop_obj = tstop_obj;
   return 0;
}

braid_Int braid_SetPostprocessObjective(braid_Core core, braid_PtFcnPostprocessObjective post_fcn)
{
   CHECK_ADJ("braid_SetPostprocessObjective");
   ADJ(core)->post = post_fcn;
   return 0;
}

braid_Int braid_SetPostprocessObjective_diff(braid_Core core,
                                             braid_PtFcnPostprocessObjective_diff post_fcn_diff)
{
   CHECK_ADJ("braid_SetPostprocessObjective_diff");
   ADJ(core)->post_diff = post_fcn_diff;
   return 0;
}

braid_Int braid_SetAbsTolAdjoint(braid_Core core, braid_Real tol_adj)
{
   CHECK_ADJ("braid_SetAbsTolAdjoint");
   if (!(tol_adj >= 0.0)) return _braid_Error("braid_SetAbsTolAdjoint", "tol_adj = %g must be >= 0", tol_adj);
   ADJ(core)->tol_adj = tol_adj;
   ADJ(core)->rtol_adj = 0;
   return 0;
}

braid_Int braid_SetRelTolAdjoint(braid_Core core, braid_Real rtol_adj)
{
   CHECK_ADJ("braid_SetRelTolAdjoint");
   if (!(rtol_adj >= 0.0)) return _braid_Error("braid_SetRelTolAdjoint", "rtol_adj = %g must be >= 0", rtol_adj);
   ADJ(core)->tol_adj = rtol_adj;
   ADJ(core)->rtol_adj = 1;
   return 0;
}

braid_Int braid_SetObjectiveOnly(braid_Core core, braid_Int boolean)
{
   CHECK_ADJ("braid_SetObjectiveOnly");
   return _braid_SetIntOption(core, "braid_SetObjectiveOnly", "boolean", boolean, 0, 1,
                              &ADJ(core)->obj_only);
}

braid_Int braid_GetObjective(braid_Core core, braid_Real *objective_ptr)
{
   CHECK_ADJ("braid_GetObjective");
   if (objective_ptr == NULL) return _braid_Error("braid_GetObjective", "objective_ptr is NULL");
   *objective_ptr = ADJ(core)->objective;
   return 0;
}

braid_Int braid_GetRNormAdjoint(braid_Core core, braid_Real *rnorm_adj)
{
   CHECK_ADJ("braid_GetRNormAdjoint");
   if (rnorm_adj == NULL) return _braid_Error("braid_GetRNormAdjoint", "rnorm_adj is NULL");
   *rnorm_adj = ADJ(core)->rnorm_adj;
   return 0;
}

braid_Int layerbraid_GetRNormsAdjoint(braid_Core core, braid_Int *nrequest_ptr, braid_Real *rnorms)
{
   CHECK_ADJ("layerbraid_GetRNormsAdjoint");
   return _braid_HistoryCopy("layerbraid_GetRNormsAdjoint", ADJ(core)->rnorms_adj,
                             ADJ(core)->nrnorms_adj, nrequest_ptr, rnorms);
}

braid_Int layerbraid_GetInitialAdjoint(braid_Core core, braid_Vector *ubar_ptr)
{
   struct _braid_AdjointState *adj;
   braid_Int err;
   CHECK_ADJ("layerbraid_GetInitialAdjoint");
   adj = ADJ(core);
   if (ubar_ptr == NULL) return _braid_Error("layerbraid_GetInitialAdjoint", "ubar_ptr is NULL");
   *ubar_ptr = NULL;
   if (!core->done)
   {
      return _braid_Error("layerbraid_GetInitialAdjoint", "no completed braid_Drive on this core");
   }
   if (adj->obj_only)
   {
      return _braid_Error("layerbraid_GetInitialAdjoint", "braid_SetObjectiveOnly: no adjoint "
                          "was computed");
   }
   if (core->grids[0]->ilower != 0 || core->grids[0]->iupper < 0) return 0; /* not point 0's owner */
   err = core->clone(core->app, adj->ubar[0], ubar_ptr);
   return err ? _braid_CallbackFailed(core, "clone", err) : 0;
}

/* ---- objective status: the generic getters ---- */
braid_Int braid_ObjectiveStatusGetT(braid_ObjectiveStatus s, braid_Real *t_ptr)
{ return braid_StatusGetT((braid_Status) s, t_ptr); }
braid_Int braid_ObjectiveStatusGetTIndex(braid_ObjectiveStatus s, braid_Int *idx_ptr)
{ return braid_StatusGetTIndex((braid_Status) s, idx_ptr); }
braid_Int braid_ObjectiveStatusGetIter(braid_ObjectiveStatus s, braid_Int *iter_ptr)
{ return braid_StatusGetIter((braid_Status) s, iter_ptr); }
braid_Int braid_ObjectiveStatusGetLevel(braid_ObjectiveStatus s, braid_Int *level_ptr)
{ return braid_StatusGetLevel((braid_Status) s, level_ptr); }
braid_Int braid_ObjectiveStatusGetNLevels(braid_ObjectiveStatus s, braid_Int *nlevels_ptr)
{ return braid_StatusGetNLevels((braid_Status) s, nlevels_ptr); }
braid_Int braid_ObjectiveStatusGetNRefine(braid_ObjectiveStatus s, braid_Int *nrefine_ptr)
{ return braid_StatusGetNRefine((braid_Status) s, nrefine_ptr); }
braid_Int braid_ObjectiveStatusGetNTPoints(braid_ObjectiveStatus s, braid_Int *ntpoints_ptr)
{ return braid_StatusGetNTPoints((braid_Status) s, ntpoints_ptr); }
braid_Int braid_ObjectiveStatusGetTol(braid_ObjectiveStatus s, braid_Real *tol_ptr)
{ return braid_StatusGetTol((braid_Status) s, tol_ptr); }

/* ---- storage ---- */

void _braid_AdjointFree(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int l, n;
   if (adj == NULL) return;
   _braid_TapeFree(core, &adj->tape);
   for (l = 0; l < adj->nlevels; l++)
   {
      n = core->grids[l]->gupper + 1;
      _braid_FreeVectors(core, &adj->U[l], n);
      _braid_FreeVectors(core, &adj->V[l], n);
      _braid_FreeVectors(core, &adj->F[l], n);
      free(adj->UI[l]);
      free(adj->VI[l]);
      free(adj->FI[l]);
   }
   if (adj->nlevels > 0) _braid_FreeVectors(core, &adj->ubar, core->grids[0]->gupper / core->grids[0]->cfactor + 1);
   free(adj->xin);
   free(adj->norms);
   free(adj->obj_terms);
   free(adj->rnorms_adj);
   _braid_MessageRelease(core, &adj->send_msg);
   _braid_MessageRelease(core, &adj->recv_msg);
   free(adj);
   core->adjoint_state = NULL;
}

braid_Int _braid_AdjointAllocate(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int l, n, nc = core->grids[0]->gupper / core->grids[0]->cfactor + 1;
   adj->nlevels = core->nlevels;
   for (l = 0; l < core->nlevels; l++)
   {
      n = core->grids[l]->gupper + 1;
      /* _braid_Calloc reports a failure once and tells the other ranks */
      if (!(adj->U[l] = _braid_Calloc(core, "the adjoint's states", n, sizeof(braid_Vector))) ||
          !(adj->V[l] = _braid_Calloc(core, "the adjoint's states", n, sizeof(braid_Vector))) ||
          !(adj->F[l] = _braid_Calloc(core, "the adjoint's states", n, sizeof(braid_Vector))) ||
          !(adj->UI[l] = _braid_Calloc(core, "the adjoint's tape indices", n, sizeof(braid_Int))) ||
          !(adj->VI[l] = _braid_Calloc(core, "the adjoint's tape indices", n, sizeof(braid_Int))) ||
          !(adj->FI[l] = _braid_Calloc(core, "the adjoint's tape indices", n, sizeof(braid_Int))))
      {
         return braid_ERROR_MEMORY;
      }
   }
   if (!(adj->ubar = _braid_Calloc(core, "the adjoint's C-points", nc, sizeof(braid_Vector))) ||
       !(adj->xin = _braid_Calloc(core, "the adjoint's C-points", nc, sizeof(braid_Int))) ||
       !(adj->norms = _braid_Calloc(core, "the adjoint's C-points", nc, sizeof(braid_Real))) ||
       !(adj->obj_terms = _braid_Calloc(core, "the objective's terms",
                                        core->grids[0]->gupper + 1, sizeof(braid_Real))))
   {
      return braid_ERROR_MEMORY;
   }
   return 0;
}
