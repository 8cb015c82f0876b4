/*
 * XBraid_Adjoint: the piggy-back iteration of S. Guenther, N. R. Gauger and J. B. Schroder,
 * "A non-intrusive parallel-in-time adjoint solver with the XBraid library" (Comput. Visual.
 * Sci. 19, 2018), written here from the paper and the interface's documented behaviour.
 *
 * Iteration k maps the fine C-points x_k to x_{k+1} = H(x_k) by one FAS V-cycle (FCF
 * relaxation, restriction with the objective evaluated on the way, coarse solve, correction)
 * and records it on the tape (adjoint.h). The objective J_k = F(sum of objectiveT over the
 * fine points in [tstart_obj, tstop_obj]) is taken in the F-relaxation of the restriction on
 * level 0 (F-points with their new values, C-points with their relaxed values). Evaluating
 * the tape backwards from the adjoint xbar_k of the output gives
 *    xbar_{k+1} = (dH/dx)^T xbar_k + (dJ/dx)^T,   gradient = (dH/drho)^T xbar_k + dJ/drho
 * (the app accumulates the gradient; reset_gradient before each sweep). The adjoint residual
 * is the temporal norm of xbar_{k+1} - xbar_k over the C-points 1 .. (the initial condition
 * is no unknown). The run stops when the state and the adjoint residual are both below their
 * tolerances. At the fixed point the gradient is the exact derivative of the discrete
 * objective.
 *
 * The cycle is distributed as the engine's grids are: each rank computes the points it owns
 * on each level (the arrays are indexed globally; only the owned entries are used). Where a
 * sweep's propagation crosses from one rank to the next, the vector travels left to right and
 * the tape records a send on one side and a receive on the other; evaluated backwards they
 * exchange roles, so the adjoint of that vector travels right to left. Every step and sum is
 * the one a single rank does, in the same order for each variable, and the objective is summed
 * over the points in index order after gathering the terms: the table, the objective and the
 * adjoint are the same, bit for bit, on any number of ranks. The gradient the app accumulates
 * is this rank's part (the user reduces it over the ranks, as with upstream).
 *
 * V-cycles only (no FMG); the state iteration is the engine's own cycle, step for step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adjoint.h"
#include "braid_layerbraid.h"

#define ADJ(core) ((core)->adjoint_state)
#define ADJOINT_TAG 70

static braid_Int mine(braid_Core core, braid_Int level, braid_Int i)
{
   return i >= core->grids[level]->ilower && i <= core->grids[level]->iupper;
}

/* this rank's fine C-points: indices jlo .. jhi (of i / cfactor); empty when jlo > jhi */
static void my_cpoints(braid_Core core, braid_Int *jlo, braid_Int *jhi)
{
   const _braid_Grid *g = core->grids[0];
   *jlo = _braid_CeilDiv(g->ilower, g->cfactor);
   *jhi = g->iupper >= 0 ? g->iupper / g->cfactor : -1;
}

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

static void free_vectors(braid_Core core, braid_Vector **a, braid_Int n)
{
   braid_Int i;
   if (*a == NULL) return;
   for (i = 0; i < n; i++)
   {
      if ((*a)[i] != NULL) core->free(core->app, (*a)[i]);
   }
   free(*a);
   *a = NULL;
}

void _braid_AdjointFree(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int l, n;
   if (adj == NULL) return;
   _braid_TapeFree(core, &adj->tape);
   for (l = 0; l < adj->nlevels; l++)
   {
      n = core->grids[l]->gupper + 1;
      free_vectors(core, &adj->U[l], n);
      free_vectors(core, &adj->V[l], n);
      free_vectors(core, &adj->F[l], n);
      free(adj->UI[l]);
      free(adj->VI[l]);
      free(adj->FI[l]);
   }
   if (adj->nlevels > 0) free_vectors(core, &adj->ubar, core->grids[0]->gupper / core->grids[0]->cfactor + 1);
   free(adj->xin);
   free(adj->norms);
   free(adj->obj_terms);
   free(adj->rnorms_adj);
   _braid_MessageRelease(core, &adj->send_msg);
   _braid_MessageRelease(core, &adj->recv_msg);
   free(adj);
   core->adjoint_state = NULL;
}

static braid_Int allocate(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int l, n, nc = core->grids[0]->gupper / core->grids[0]->cfactor + 1;
   adj->nlevels = core->nlevels;
   for (l = 0; l < core->nlevels; l++)
   {
      n = core->grids[l]->gupper + 1;
      adj->U[l] = (braid_Vector *) calloc((size_t) n, sizeof(braid_Vector));
      adj->V[l] = (braid_Vector *) calloc((size_t) n, sizeof(braid_Vector));
      adj->F[l] = (braid_Vector *) calloc((size_t) n, sizeof(braid_Vector));
      adj->UI[l] = (braid_Int *) calloc((size_t) n, sizeof(braid_Int));
      adj->VI[l] = (braid_Int *) calloc((size_t) n, sizeof(braid_Int));
      adj->FI[l] = (braid_Int *) calloc((size_t) n, sizeof(braid_Int));
      if (!adj->U[l] || !adj->V[l] || !adj->F[l] || !adj->UI[l] || !adj->VI[l] || !adj->FI[l])
      {
         return _braid_Error("braid_Drive", "out of memory (adjoint levels)");
      }
   }
   adj->ubar = (braid_Vector *) calloc((size_t) nc, sizeof(braid_Vector));
   adj->xin = (braid_Int *) calloc((size_t) nc, sizeof(braid_Int));
   adj->norms = (braid_Real *) calloc((size_t) nc, sizeof(braid_Real));
   adj->obj_terms = (braid_Real *) calloc((size_t) core->grids[0]->gupper + 1, sizeof(braid_Real));
   if (!adj->ubar || !adj->xin || !adj->norms || !adj->obj_terms) return _braid_Error("braid_Drive", "out of memory (adjoint)");
   return 0;
}

static braid_Int copy_into(braid_Core core, braid_Vector src, braid_Vector *dst)
{
   return _braid_CopyInto(core, src, dst);
}

/* ---- messages ---- */

braid_Int _braid_AdjointSend(braid_Core core, braid_Int level, braid_Int index, braid_Vector u,
                             int dest)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int err = _braid_MessageSend(core, &adj->send_msg, level, index, u, dest, ADJOINT_TAG);
   return err ? err : _braid_MessageWait(core, &adj->send_msg);
}

braid_Int _braid_AdjointRecv(braid_Core core, braid_Int level, braid_Int index, int source,
                             braid_Vector *u_ptr)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int err = _braid_MessageRecv(core, &adj->recv_msg, source, ADJOINT_TAG);
   return err ? err : _braid_MessageUnpack(core, &adj->recv_msg, level, index, u_ptr);
}

/* ---- recorded operations ---- */

/* send u (variable var), point `index` of `level`, to the owner of index + 1 */
static braid_Int rec_send(braid_Core core, braid_Int level, braid_Int index, braid_Vector u,
                          braid_Int var)
{
   struct _braid_AdjointState *adj = ADJ(core);
   int dest = _braid_Owner(core, level, index + 1);
   _braid_Action a;
   braid_Int err = _braid_AdjointSend(core, level, index, u, dest);
   if (err || !adj->recording) return err;
   a.kind = _braid_ACTION_SEND;
   a.level = level;
   a.index = index;
   a.in = var;
   a.in2 = a.out = -1;
   a.peer = dest;
   a.a = a.b = 0.0;
   a.u = a.ustop = NULL;
   return _braid_TapePush(core, &adj->tape, &a);
}

/* *u_ptr (new vector, variable *var) := point `index` of `level` from its owner */
static braid_Int rec_recv(braid_Core core, braid_Int level, braid_Int index, braid_Vector *u_ptr,
                          braid_Int *var)
{
   struct _braid_AdjointState *adj = ADJ(core);
   int source = _braid_Owner(core, level, index);
   _braid_Action a;
   braid_Int err = _braid_AdjointRecv(core, level, index, source, u_ptr);
   *var = -1;
   if (err || !adj->recording) return err;
   a.kind = _braid_ACTION_RECV;
   a.level = level;
   a.index = index;
   a.in = a.in2 = -1;
   a.out = _braid_TapeNewVar(&adj->tape);
   a.peer = source;
   a.a = a.b = 0.0;
   a.ustop = NULL;
   if ((err = core->clone(core->app, *u_ptr, &a.u))) return _braid_CallbackFailed(core, "clone", err);
   if ((err = _braid_TapePush(core, &adj->tape, &a))) return err;
   *var = a.out;
   return 0;
}

/* u (variable *var) := Phi_level(u) into point i, plus f_i (level > 0) when fas. */
static braid_Int rec_step(braid_Core core, braid_Int level, braid_Int i, braid_Vector u,
                          braid_Int *var, braid_Int fas, braid_Int caller)
{
   struct _braid_AdjointState *adj = ADJ(core);
   _braid_Action a;
   braid_Vector uin = NULL;
   braid_Int err;
   if (adj->recording && (err = core->clone(core->app, u, &uin))) return _braid_CallbackFailed(core, "clone", err);
   if ((err = _braid_Step(core, level, i, NULL, u, 0, caller)))
   {
      if (uin != NULL) core->free(core->app, uin);
      return err;
   }
   if (adj->recording)
   {
      a.kind = _braid_ACTION_STEP;
      a.level = level;
      a.index = i;
      a.in = *var;
      a.in2 = -1;
      a.out = _braid_TapeNewVar(&adj->tape);
      a.a = a.b = 0.0;
      a.peer = -1;
      a.u = uin;
      a.ustop = NULL;
      if ((err = core->clone(core->app, u, &a.ustop))) return _braid_CallbackFailed(core, "clone", err);
      if ((err = _braid_TapePush(core, &adj->tape, &a))) return err;
      *var = a.out;
   }
   if (fas && level > 0 && adj->F[level][i] != NULL)
   {
      if ((err = core->sum(core->app, 1.0, adj->F[level][i], 1.0, u))) return _braid_CallbackFailed(core, "sum", err);
      if (adj->recording)
      {
         a.kind = _braid_ACTION_AXPY;
         a.level = level;
         a.index = i;
         a.in = *var;
         a.in2 = adj->FI[level][i];
         a.out = _braid_TapeNewVar(&adj->tape);
         a.a = a.b = 1.0;
         a.peer = -1;
         a.u = a.ustop = NULL;
         if ((err = _braid_TapePush(core, &adj->tape, &a))) return err;
         *var = a.out;
      }
   }
   return 0;
}

/* y (variable *yvar) := a x + b y */
static braid_Int rec_axpy(braid_Core core, braid_Real a, braid_Vector x, braid_Int xvar,
                          braid_Real b, braid_Vector y, braid_Int *yvar)
{
   struct _braid_AdjointState *adj = ADJ(core);
   _braid_Action act;
   braid_Int err = core->sum(core->app, a, x, b, y);
   if (err) return _braid_CallbackFailed(core, "sum", err);
   if (!adj->recording) return 0;
   act.kind = _braid_ACTION_AXPY;
   act.level = act.index = 0;
   act.in = xvar;
   act.in2 = *yvar;
   act.a = a;
   act.b = b;
   act.out = _braid_TapeNewVar(&adj->tape);
   act.peer = -1;
   act.u = act.ustop = NULL;
   if ((err = _braid_TapePush(core, &adj->tape, &act))) return err;
   *yvar = act.out;
   return 0;
}

/* objective term at fine point i */
static braid_Int rec_objective(braid_Core core, braid_Int i, braid_Vector u, braid_Int var)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Real t = _braid_Time(core, 0, i), value = 0.0;
   _braid_Status *s;
   _braid_Action a;
   braid_Int err;
   if (t < adj->tstart_obj || t > adj->tstop_obj) return 0;
   s = _braid_StatusFor(core, 0, i, t, 0.0, braid_ASCaller_FRestrict);
   err = adj->objectiveT(core->app, u, (braid_ObjectiveStatus) s, &value);
   if (err) return _braid_CallbackFailed(core, "objectiveT", err);
   adj->obj_terms[i] = value;
   if (!adj->recording) return 0;
   a.kind = _braid_ACTION_OBJ;
   a.level = 0;
   a.index = i;
   a.in = var;
   a.in2 = a.out = -1;
   a.peer = -1;
   a.a = a.b = 0.0;
   a.ustop = NULL;
   if ((err = core->clone(core->app, u, &a.u))) return _braid_CallbackFailed(core, "clone", err);
   return _braid_TapePush(core, &adj->tape, &a);
}

/* ---- the cycle, distributed as the engine's grids ---- */

/* One F-relaxation sweep over `level`, intervals right to left as the engine's sweeps.
 * mode 0: FC-relaxation; 1: restriction (F-relax, residual, objective on level 0, inject);
 * 2: F-relaxation only (before the correction). A propagation that leaves this rank's points
 * is sent to the next rank, which receives it where its own points begin. */
static braid_Int sweep(braid_Core core, braid_Int level, braid_Int mode)
{
   struct _braid_AdjointState *adj = ADJ(core);
   const _braid_Grid *g = core->grids[level];
   braid_Int cf = g->cfactor, G = g->gupper, lo = g->ilower, hi = g->iupper;
   braid_Int c, i, end, last, var = -1, err = 0;
   braid_Int caller = mode == 1 ? braid_ASCaller_FRestrict
                      : mode == 0 ? braid_ASCaller_FCRelax : braid_ASCaller_FInterp;
   braid_Vector u = NULL;
   braid_Real w = _braid_LevelCRelaxWt(core, level);
   core->status.calling_function = caller;
   if (lo > hi) return 0;
   for (c = (G / cf) * cf; c >= 0; c -= cf)
   {
      end = c + cf <= G ? c + cf : G;
      if (c > hi || end < lo) continue;
      /* the last point the propagation computes (mode 2 does not touch the next C-point) */
      last = mode == 2 && end > c && end % cf == 0 ? end - 1 : end;
      if (mine(core, level, c) && last > c)
      {
         if ((err = core->clone(core->app, adj->U[level][c], &u))) return _braid_CallbackFailed(core, "clone", err);
         var = adj->UI[level][c];
      }
      for (i = c + 1; i <= last; i++)
      {
         if (i < lo) continue;
         if (i > hi)
         {
            err = rec_send(core, level, hi, u, var);
            break;
         }
         if (i == lo && (err = rec_recv(core, level, i - 1, &u, &var))) goto out;
         if ((err = rec_step(core, level, i, u, &var, 1, caller))) goto out;
         if (i % cf != 0)
         {
            if ((err = copy_into(core, u, &adj->U[level][i]))) goto out;
            adj->UI[level][i] = var;
            if (mode == 1 && level == 0 && (err = rec_objective(core, i, u, var))) goto out;
            continue;
         }
         /* the C-point i */
         if (mode == 0)
         {
            if (w == 1.0)
            {
               if ((err = copy_into(core, u, &adj->U[level][i]))) goto out;
               adj->UI[level][i] = var;
            }
            else if ((err = rec_axpy(core, w, u, var, 1.0 - w, adj->U[level][i], &adj->UI[level][i])))
            {
               goto out;
            }
         }
         else if (mode == 1)
         {
            braid_Int j = i / cf;
            if (level == 0)
            {
               /* residual Phi(u_{i-1}) - u_i, for the norm only */
               braid_Vector r = NULL;
               braid_Real norm;
               if ((err = core->clone(core->app, u, &r))) { err = _braid_CallbackFailed(core, "clone", err); goto out; }
               err = core->sum(core->app, -1.0, adj->U[0][i], 1.0, r);
               if (!err) err = core->spatialnorm(core->app, r, &norm);
               core->free(core->app, r);
               if (err) { err = _braid_CallbackFailed(core, "spatialnorm", err); goto out; }
               adj->norms[j] = norm;
            }
            /* f_j starts as the propagated value */
            if ((err = copy_into(core, u, &adj->F[level + 1][j]))) goto out;
            adj->FI[level + 1][j] = var;
         }
      }
      if (err) goto out;
      if ((err = _braid_FreeVector(core, &u))) goto out;
      if (mode == 1 && mine(core, level, c))
      {
         /* inject the C-point c; on level 0 its objective term */
         braid_Int j = c / cf;
         if (level == 0 && (err = rec_objective(core, c, adj->U[0][c], adj->UI[0][c]))) goto out;
         if ((err = copy_into(core, adj->U[level][c], &adj->V[level + 1][j]))) goto out;
         if ((err = copy_into(core, adj->U[level][c], &adj->U[level + 1][j]))) goto out;
         adj->VI[level + 1][j] = adj->UI[level + 1][j] = adj->UI[level][c];
      }
   }
out:
   if (u != NULL) core->free(core->app, u);
   return err;
}

/* f_j -= Phi_c(v_{j-1}) on the coarse level (v of the last point goes to the next rank) */
static braid_Int coarse_rhs(braid_Core core, braid_Int clevel)
{
   struct _braid_AdjointState *adj = ADJ(core);
   const _braid_Grid *g = core->grids[clevel];
   braid_Int j, var = -1, err;
   braid_Vector u = NULL;
   core->status.calling_function = braid_ASCaller_FRestrict;
   if (g->ilower > g->iupper) return 0;
   if (g->iupper < g->gupper
       && (err = rec_send(core, clevel, g->iupper, adj->V[clevel][g->iupper], adj->VI[clevel][g->iupper])))
   {
      return err;
   }
   for (j = g->iupper; j >= 1 && j >= g->ilower; j--)
   {
      if (j - 1 >= g->ilower)
      {
         if ((err = core->clone(core->app, adj->V[clevel][j - 1], &u))) return _braid_CallbackFailed(core, "clone", err);
         var = adj->VI[clevel][j - 1];
      }
      else if ((err = rec_recv(core, clevel, j - 1, &u, &var)))
      {
         return err;
      }
      err = rec_step(core, clevel, j, u, &var, 0, braid_ASCaller_FRestrict);
      if (!err) err = rec_axpy(core, -1.0, u, var, 1.0, adj->F[clevel][j], &adj->FI[clevel][j]);
      core->free(core->app, u);
      u = NULL;
      if (err) return err;
   }
   return 0;
}

/* the coarsest level: sequential solve, passed from rank to rank */
static braid_Int coarse_solve(braid_Core core, braid_Int level)
{
   struct _braid_AdjointState *adj = ADJ(core);
   const _braid_Grid *g = core->grids[level];
   braid_Int j, var = -1, err;
   braid_Vector u = NULL;
   core->status.calling_function = braid_ASCaller_FInterp;
   if (g->ilower > g->iupper) return 0;
   if (g->ilower == 0)
   {
      if ((err = core->clone(core->app, adj->U[level][0], &u))) return _braid_CallbackFailed(core, "clone", err);
      var = adj->UI[level][0];
   }
   else if ((err = rec_recv(core, level, g->ilower - 1, &u, &var)))
   {
      return err;
   }
   err = 0;
   for (j = g->ilower > 1 ? g->ilower : 1; j <= g->iupper; j++)
   {
      if ((err = rec_step(core, level, j, u, &var, 1, braid_ASCaller_FInterp))) break;
      if ((err = copy_into(core, u, &adj->U[level][j]))) break;
      adj->UI[level][j] = var;
   }
   if (!err && g->iupper < g->gupper) err = rec_send(core, level, g->iupper, u, var);
   core->free(core->app, u);
   return err;
}

/* correct level - 1 at the C-points: u_f += u_c - v_c (point 0 never changes) */
static braid_Int correct(braid_Core core, braid_Int level)
{
   struct _braid_AdjointState *adj = ADJ(core);
   const _braid_Grid *g = core->grids[level];
   braid_Int j, cf = core->grids[level - 1]->cfactor, err;
   for (j = g->iupper; j >= 1 && j >= g->ilower; j--)
   {
      if ((err = rec_axpy(core, 1.0, adj->U[level][j], adj->UI[level][j], -1.0, adj->V[level][j], &adj->VI[level][j]))) return err;
      if ((err = rec_axpy(core, 1.0, adj->V[level][j], adj->VI[level][j], 1.0, adj->U[level - 1][j * cf], &adj->UI[level - 1][j * cf]))) return err;
   }
   return 0;
}

static braid_Int vcycle(braid_Core core, braid_Int level)
{
   braid_Int nu, err;
   for (nu = 0; nu < _braid_LevelNRelax(core, level); nu++)
   {
      if ((err = sweep(core, level, 0))) return err;
   }
   if ((err = sweep(core, level, 1))) return err;
   if ((err = coarse_rhs(core, level + 1))) return err;
   if (level + 1 == core->nlevels - 1) err = coarse_solve(core, level + 1);
   else if (!(err = vcycle(core, level + 1))) err = sweep(core, level + 1, 2);
   if (err) return err;
   return correct(core, level + 1);
}

/* ---- braid_Drive with the adjoint ---- */

/* both residual histories get the same entry count (the adjoint's is r_adj per iteration) */
static braid_Int record_rnorms(braid_Core core, braid_Real rnorm, braid_Real rnorm_adj)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int err = _braid_HistoryAppend(core, "the residual history", &core->rnorms,
                                        &core->nrnorms, &core->rnorms_capacity, rnorm);
   if (err) return err;
   return _braid_HistoryAppend(core, "the adjoint residual history", &adj->rnorms_adj,
                               &adj->nrnorms_adj, &adj->rnorms_adj_capacity, rnorm_adj);
}

static braid_Int initial_guess(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   const _braid_Grid *g = core->grids[0];
   braid_Int i, err, jlo, jhi;
   core->status.calling_function = braid_ASCaller_InitGuess;
   my_cpoints(core, &jlo, &jhi);
   for (i = jlo * g->cfactor; i <= jhi * g->cfactor; i += g->cfactor)
   {
      core->status.tindex = i;
      if (adj->U[0][i] != NULL && i > 0) continue; /* warm restart: keep the solution */
      if ((err = _braid_FreeVector(core, &adj->U[0][i]))) return err;
      err = core->init(core->app, _braid_Time(core, 0, i), &adj->U[0][i]);
      if (err) return _braid_CallbackFailed(core, "init", err);
   }
   return 0;
}

/* One piggy-back iteration: record the V-cycle, then the adjoint sweep. */
static braid_Int iteration(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   const _braid_Grid *g = core->grids[0];
   braid_Int cf = g->cfactor, nc = g->gupper / cf, j, err, jlo, jhi, first, count, i;
   braid_Real F_bar = 1.0;

   my_cpoints(core, &jlo, &jhi);
   first = jlo > 1 ? jlo : 1;
   count = jhi >= first ? jhi - first + 1 : 0;
   _braid_TapeReset(core, &adj->tape);
   adj->recording = !adj->obj_only;
   for (j = jlo; j <= jhi; j++)
   {
      adj->UI[0][j * cf] = adj->xin[j] = _braid_TapeNewVar(&adj->tape);
   }
   memset(adj->obj_terms, 0, (size_t) (g->gupper + 1) * sizeof(braid_Real));
   if ((err = vcycle(core, 0))) return err;
   err = _braid_TemporalNorm(core, adj->norms + first, first, count, nc, &core->rnorm);
   if (err) return err;

   /* the objective: every rank gets every point's term (each has one owner, the others add
    * zeros, so the reduction is exact) and sums them in the order of the points */
   if (core->nprocs > 1)
   {
      MPI_Request request;
      MPI_Iallreduce(MPI_IN_PLACE, adj->obj_terms, (int) g->gupper + 1, MPI_DOUBLE, MPI_SUM,
                     core->tcomm, &request);
      if ((err = _braid_Wait(core, &request))) return err;
   }
   adj->sum_obj = 0.0;
   for (i = 0; i <= g->gupper; i++) adj->sum_obj += adj->obj_terms[i];

   adj->objective = adj->sum_obj;
   if (adj->post != NULL && (err = adj->post(core->app, adj->sum_obj, &adj->objective)))
   {
      return _braid_CallbackFailed(core, "postprocess_obj", err);
   }
   if (adj->post_diff != NULL && (err = adj->post_diff(core->app, adj->sum_obj, &F_bar)))
   {
      return _braid_CallbackFailed(core, "postprocess_obj_diff", err);
   }
   adj->rnorm_adj = braid_INVALID_RNORM;
   if (adj->obj_only) return 0;

   /* adjoint sweep: seed the outputs with the last adjoint, read the new one at the inputs */
   if ((err = adj->reset_gradient(core->app))) return _braid_CallbackFailed(core, "reset_gradient", err);
   for (j = first; j <= jhi; j++)
   {
      if (adj->ubar[j] != NULL
          && (err = _braid_TapeAddBar(core, &adj->tape, adj->UI[0][j * cf], 1.0, adj->ubar[j])))
      {
         return err;
      }
   }
   if ((err = _braid_TapeEvaluate(core, &adj->tape, F_bar))) return err;
   for (j = jlo; j <= jhi; j++)
   {
      braid_Vector xbar = adj->tape.bars[adj->xin[j]];
      braid_Real norm = 0.0;
      if (xbar == NULL && (err = _braid_ZeroLike(core, adj->U[0][j * cf], &xbar))) return err;
      adj->tape.bars[adj->xin[j]] = NULL;
      if (j > 0)
      {
         if (adj->ubar[j] != NULL
             && (err = core->sum(core->app, 1.0, xbar, -1.0, adj->ubar[j])))
         {
            core->free(core->app, xbar);
            return _braid_CallbackFailed(core, "sum", err);
         }
         err = core->spatialnorm(core->app, adj->ubar[j] != NULL ? adj->ubar[j] : xbar, &norm);
         if (err)
         {
            core->free(core->app, xbar);
            return _braid_CallbackFailed(core, "spatialnorm", err);
         }
         adj->norms[j] = norm;
      }
      if (adj->ubar[j] != NULL) core->free(core->app, adj->ubar[j]);
      adj->ubar[j] = xbar;
   }
   err = _braid_TemporalNorm(core, adj->norms + first, first, count, nc, &adj->rnorm_adj);
   _braid_TapeReset(core, &adj->tape);
   return err;
}

static braid_Int converged(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int state, adjoint;
   if (core->rnorm < 0.0) return 0;
   state = core->rtol ? core->rnorm < core->tol * core->rnorm0 : core->rnorm < core->tol;
   if (adj->obj_only) return state;
   adjoint = adj->rtol_adj ? adj->rnorm_adj < adj->tol_adj * adj->rnorm_adj0
                           : adj->rnorm_adj < adj->tol_adj;
   return state && adjoint;
}

static void print_line(braid_Core core, const char *fmt, braid_Int k, braid_Real a, braid_Real b,
                       braid_Real c)
{
   if (core->myid_world != 0 || core->print_level < 1) return;
   fprintf(core->outfile, fmt, (int) k, a, b, c);
   fflush(core->outfile);
}

braid_Int _braid_DriveAdjoint(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int err = 0, j, jlo, jhi;
   if (core->periodic || core->residual != NULL || core->scoarsen != NULL
       || core->srefine != NULL || core->refine || core->useshell || core->richardson
       || core->est_error)
   {
      return _braid_Error("braid_Drive", "XBraid_Adjoint in this version: no periodic "
                          "problem, user residual, spatial coarsening, temporal "
                          "refinement, shells or Richardson extrapolation");
   }
   if (adj->nlevels == 0 && (err = allocate(core))) return err;
   _braid_PrintBegin(core);
   if ((err = initial_guess(core))) return err;
   adj->rnorm_adj = adj->rnorm_adj0 = braid_INVALID_RNORM;
   adj->nrnorms_adj = 0;

   if (core->nlevels == 1)
   {
      /* one level: sequential solve and the exact adjoint in one pass */
      return _braid_Error("braid_Drive", "XBraid_Adjoint with one level is not implemented yet");
   }
   if (core->myid_world == 0 && core->print_level >= 1)
   {
      fprintf(core->outfile, "\n  Braid:      || r ||      || r_adj ||     Objective\n"
                             "  Braid:---------------------------------------------\n");
   }
   for (;;)
   {
      if ((err = iteration(core))) return err;
      if ((err = record_rnorms(core, core->rnorm, adj->rnorm_adj))) return err;
      if (core->rnorm0 < 0.0) core->rnorm0 = core->rnorm;
      if (adj->rnorm_adj0 < 0.0) adj->rnorm_adj0 = adj->rnorm_adj;
      print_line(core, "  Braid: %3d  %1.6e  %1.6e  %1.8e\n", core->iter, core->rnorm,
                 adj->rnorm_adj, adj->objective);
      if (core->rnorm != core->rnorm || (!adj->obj_only && adj->rnorm_adj != adj->rnorm_adj))
      {
         _braid_PrintMessage(core, "  Braid: Iterations diverged.\n");
         core->iter++;
         return _braid_Error("braid_Drive", "a residual norm is NaN at iteration %d",
                             (int) core->iter - 1);
      }
      core->iter++;
      if (converged(core)) break;
      if (core->iter >= core->max_iter)
      {
         _braid_PrintMessage(core, "  Braid: Max. iterations reached.\n");
         break;
      }
   }
   core->niter = core->iter;
   /* the histories end with a copy of the last entry, as braid_GetRNorms reports them */
   if ((err = record_rnorms(core, core->rnorms[core->nrnorms - 1], adj->rnorm_adj))) return err;
   core->done = 1;
   /* the engine's fine grid gets the solution: access, braid_UGetLast, a warm restart */
   my_cpoints(core, &jlo, &jhi);
   for (j = jlo * core->grids[0]->cfactor; j <= jhi * core->grids[0]->cfactor; j += core->grids[0]->cfactor)
   {
      if ((err = _braid_CopyInto(core, adj->U[0][j], _braid_Slot(core->grids[0], j)))) return err;
   }
   if (core->access_level >= 1 && (err = _braid_FAccess(core, 1, braid_ASCaller_FAccess))) return err;
   if (!err) err = _braid_AgreeSuccess(core);
   core->wall_time = MPI_Wtime() - core->wall_start;
   core->timers.drive += core->wall_time;
   if (!err && core->print_level >= 2) braid_PrintStats(core);
   return err;
}

void _braid_AdjointPrintResiduals(braid_Core core, FILE *out, braid_Real rnorm)
{
   const struct _braid_AdjointState *adj = ADJ(core);
   fprintf(out, "  state   residual norm = % e  (-> %s stopping tol. = %1.2e)\n", rnorm,
           core->rtol ? "rel." : "abs.", core->tol);
   if (adj->obj_only) return;
   fprintf(out, "  adjoint residual norm = % e  (-> %s stopping tol. = %1.2e)\n",
           adj->rnorm_adj, adj->rtol_adj ? "rel." : "abs.", adj->tol_adj);
}
