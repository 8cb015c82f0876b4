/*
 * XBraid_Adjoint's recorded cycle: one FAS V-cycle of the state (the engine's FCF relaxation,
 * restriction, coarse solve and correction, step for step), each operation recorded on the
 * tape (adjoint.h) for the adjoint sweep of adjoint.c.
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
 * V-cycles only (no FMG).
 */
#include <stdlib.h>

#include "adjoint.h"

#define ADJOINT_TAG 70

static braid_Int mine(braid_Core core, braid_Int level, braid_Int i)
{
   return i >= core->grids[level]->ilower && i <= core->grids[level]->iupper;
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
   a.u_shared = 0;
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
   a.u_shared = 0;
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
   braid_Vector uin = adj->recording ? _braid_TapeHeld(&adj->tape, *var) : NULL;
   braid_Int err, shared = uin != NULL;
   if (adj->recording && !shared && (err = core->clone(core->app, u, &uin))) return _braid_CallbackFailed(core, "clone", err);
   if ((err = _braid_Step(core, level, i, NULL, u, 0, caller)))
   {
      if (uin != NULL && !shared) core->free(core->app, uin);
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
      a.u_shared = shared;
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
         a.u_shared = 0;
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
   act.u_shared = 0;
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
   a.u = _braid_TapeHeld(&adj->tape, var);
   a.u_shared = a.u != NULL;
   if (!a.u_shared && (err = core->clone(core->app, u, &a.u))) return _braid_CallbackFailed(core, "clone", err);
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
            /* F-points of level 0 are not read again (each interval starts from its
             * C-point), those of coarse levels are (the correction) */
            if (level > 0 && (err = _braid_CopyInto(core, u, &adj->U[level][i]))) goto out;
            adj->UI[level][i] = var;
            if (mode == 1 && level == 0 && (err = rec_objective(core, i, u, var))) goto out;
            continue;
         }
         /* the C-point i */
         if (mode == 0)
         {
            if (w == 1.0)
            {
               if ((err = _braid_CopyInto(core, u, &adj->U[level][i]))) goto out;
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
            if ((err = _braid_CopyInto(core, u, &adj->F[level + 1][j]))) goto out;
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
         if ((err = _braid_CopyInto(core, adj->U[level][c], &adj->V[level + 1][j]))) goto out;
         if ((err = _braid_CopyInto(core, adj->U[level][c], &adj->U[level + 1][j]))) goto out;
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

/* Sequential solve of `level` from its point 0, passed from rank to rank: the coarsest level
 * of a cycle; level 0 for one level or braid_SetSeqSoln (then with the objective at every
 * point when `objective`). */
static braid_Int sequential(braid_Core core, braid_Int level, braid_Int objective,
                            braid_Int caller)
{
   struct _braid_AdjointState *adj = ADJ(core);
   const _braid_Grid *g = core->grids[level];
   braid_Int j, var = -1, err;
   braid_Vector u = NULL;
   core->status.calling_function = caller;
   if (g->ilower > g->iupper) return 0;
   if (g->ilower == 0)
   {
      if (objective && (err = rec_objective(core, 0, adj->U[0][0], adj->UI[0][0]))) return err;
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
      if ((err = rec_step(core, level, j, u, &var, 1, caller))) break;
      /* level 0 keeps its C-points only (as the sweeps) */
      if ((level > 0 || j % g->cfactor == 0) && (err = _braid_CopyInto(core, u, &adj->U[level][j])))
      {
         break;
      }
      adj->UI[level][j] = var;
      if (objective && (err = rec_objective(core, j, u, var))) break;
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

braid_Int _braid_AdjointVCycle(braid_Core core, braid_Int level)
{
   braid_Int nu, err;
   for (nu = 0; nu < _braid_LevelNRelax(core, level); nu++)
   {
      if ((err = sweep(core, level, 0))) return err;
   }
   if ((err = sweep(core, level, 1))) return err;
   if ((err = coarse_rhs(core, level + 1))) return err;
   if (level + 1 == core->nlevels - 1) err = sequential(core, level + 1, 0, braid_ASCaller_FInterp);
   else if (!(err = _braid_AdjointVCycle(core, level + 1))) err = sweep(core, level + 1, 2);
   if (err) return err;
   return correct(core, level + 1);
}

braid_Int _braid_AdjointSequential(braid_Core core, braid_Int objective, braid_Int caller)
{
   return sequential(core, 0, objective, caller);
}
