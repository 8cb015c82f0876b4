/*
 * braid_Drive: the initial guess, the multigrid cycles, and the stopping test.
 *
 * A cycle on level l relaxes (FCRelax), restricts (FRestrict), treats level l+1 (recursively,
 * or by the sequential solve on the coarsest level) and corrects level l (FInterp). Each cycle
 * is one "iteration"; its residual is the one FRestrict measured on level 0, that is after
 * the relaxation and before the coarse-grid correction of that cycle.
 */
#include <math.h>
#include <stdlib.h>

#include "core_internal.h"
#include "delta.h"

/* ---- initial guess ---- */

static braid_Int init_point(braid_Core core, braid_Int i)
{
   _braid_Grid *g = core->grids[0];
   braid_Vector *slot = _braid_Slot(g, i);
   braid_Real start;
   braid_Int err;
   if ((err = _braid_FreeVector(core, slot))) return err;
   core->status.calling_function = braid_ASCaller_InitGuess;
   core->status.tindex = i;
   start = _braid_TimerStart(core);
   err = core->init(core->app, _braid_Time(core, 0, i), slot);
   _braid_TimerStop(core, &core->timers.init, start);
   if (err) return _braid_CallbackFailed(core, "init", err);
   if (*slot == NULL)
   {
      _braid_Error("braid_Drive", "init returned no vector at time index %d", (int) i);
      return braid_ERROR_GENERIC;
   }
   return 0;
}

static braid_Int initial_guess(braid_Core core)
{
   const _braid_Grid *g = core->grids[0];
   braid_Int i, err;
   if (core->seq_soln)
   {
      if (g->ilower == 0 && (err = init_point(core, 0))) return err;
      return _braid_SequentialSolve(core, 0);
   }
   /* the C-points only, whatever the storage: relaxation fills the F-points */
   for (i = g->clower; i <= g->iupper; i += g->cfactor)
   {
      if ((err = init_point(core, i))) return err;
      if (i > g->iupper - g->cfactor) break; /* the next C-point is not here (nor a braid_Int) */
   }
   /* shells (braid_SetShell) at the F-points that keep no vector */
   for (i = g->ilower; core->useshell && !g->store_all && i <= g->iupper; i++)
   {
      if (i % g->cfactor != 0)
      {
         err = core->sinit(core->app, _braid_Time(core, 0, i), _braid_Slot(g, i));
         if (err) return _braid_CallbackFailed(core, "sinit", err);
      }
   }
   return 0;
}

/* ---- cycles ---- */

static braid_Int down(braid_Core core, braid_Int level)
{
   braid_Int err;
   if ((err = _braid_FCRelax(core, level))) return err;
   return _braid_FRestrict(core, level);
}

static braid_Int vcycle(braid_Core core, braid_Int level)
{
   braid_Int err;
   if ((err = down(core, level))) return err;
   if (level + 1 < core->nlevels - 1 && (err = vcycle(core, level + 1))) return err;
   return _braid_FInterp(core, level + 1);
}

/* F-cycle: the coarse problem is itself treated by an F-cycle followed by V-cycles. */
static braid_Int fcycle(braid_Core core, braid_Int level)
{
   braid_Int err, k;
   if ((err = down(core, level))) return err;
   if (level + 1 < core->nlevels - 1)
   {
      if ((err = fcycle(core, level + 1))) return err;
      for (k = 0; k < core->nfmg_vcyc; k++)
      {
         if ((err = vcycle(core, level + 1))) return err;
      }
   }
   return _braid_FInterp(core, level + 1);
}

/* The first cycle with skip: no relaxation on the way down; the coarse grids start from the
 * injected initial guess with a zero right-hand side. On the way up, with FMG, each level
 * below the finest gets nfmg_vcyc V-cycles of its own before it corrects the next finer one
 * (nested iteration). */
static braid_Int skip_cycle(braid_Core core, braid_Int nested)
{
   braid_Int level, err, k;
   if ((err = _braid_InjectInitialGuess(core))) return err;
   for (level = core->nlevels - 1; level > 0; level--)
   {
      if (nested && level < core->nlevels - 1)
      {
         for (k = 0; k < core->nfmg_vcyc; k++)
         {
            if ((err = vcycle(core, level))) return err;
         }
      }
      if ((err = _braid_FInterp(core, level))) return err;
   }
   return 0;
}

static braid_Int use_fmg(braid_Core core)
{
   return core->fmg && (core->nfmg < 0 || core->iter < core->nfmg);
}

static braid_Int call_sync(braid_Core core)
{
   _braid_Status *s;
   braid_Real start;
   braid_Int err;
   if (core->sync == NULL) return 0;
   s = _braid_StatusFor(core, 0, -1, 0.0, 0.0, braid_ASCaller_Drive_TopCycle);
   start = _braid_TimerStart(core);
   err = core->sync(core->app, (braid_SyncStatus) s);
   _braid_TimerStop(core, &core->timers.sync, start);
   return err ? _braid_CallbackFailed(core, "sync", err) : 0;
}

static braid_Int record_rnorm(braid_Core core, braid_Real rnorm)
{
   return _braid_HistoryAppend(core, "the residual history", &core->rnorms, &core->nrnorms,
                               &core->rnorms_capacity, rnorm);
}

static braid_Int converged(braid_Core core)
{
   /* the full residual (braid_SetFullRNormRes) decides when there is one */
   braid_Real r = core->full_rnorm_res != NULL ? core->full_rnorm : core->rnorm;
   braid_Real r0 = core->full_rnorm_res != NULL ? core->full_rnorm0 : core->rnorm0;
   if (r < 0.0) return 0;
   if (core->rtol) return r0 >= 0.0 && r < core->tol * r0;
   return r < core->tol;
}

static braid_Int iterate(braid_Core core, braid_Int skip_first)
{
   braid_Int err, refined;
   for (;;)
   {
      core->rnorm = braid_INVALID_RNORM;
      if (core->iter == 0 && skip_first) err = skip_cycle(core, use_fmg(core));
      else if (use_fmg(core)) err = fcycle(core, 0);
      else err = vcycle(core, 0);
      if (err) return err;

      if ((err = record_rnorm(core, core->rnorm))) return err;
      if (core->rnorm0 < 0.0) core->rnorm0 = core->rnorm;
      if ((err = _braid_FullResidualNorm(core))) return err;
      if (core->full_rnorm0 < 0.0) core->full_rnorm0 = core->full_rnorm;
      if ((err = call_sync(core))) return err;
      if (core->access_level >= 2 && (err = _braid_FAccess(core, 0, braid_ASCaller_Drive_TopCycle)))
      {
         return err;
      }
      _braid_PrintIteration(core);
      if (core->rnorm != core->rnorm || isinf(core->rnorm))
      {
         _braid_PrintMessage(core, "  Braid: Iterations diverged.\n");
         _braid_Error("braid_Drive", "the residual norm is %g at iteration %d: the iteration "
                      "diverged", core->rnorm, (int) core->iter);
         core->iter++;
         return braid_ERROR_GENERIC;
      }
      core->iter++;
      /* temporal refinement (refine.c): on a refined grid the solve goes on */
      if ((err = _braid_FRefine(core, &refined))) return err;
      /* spatial refinement (space.c), asked for by a step with braid_StepStatusSetRSpace */
      if (!refined && (err = _braid_FRefineSpace(core, &refined))) return err;
      if (!refined && converged(core)) return 0;
      if (core->iter >= core->max_iter)
      {
         _braid_PrintMessage(core, "  Braid: Max. iterations reached.\n");
         return 0;
      }
   }
}

static braid_Int drive(braid_Core core)
{
   braid_Int err = 0, first_drive, skip_first;

   if (core->failed)
   {
      return _braid_Error("braid_Drive", "an earlier solve on this core failed (%s); create a "
                          "new core", core->failure_text);
   }
   core->wall_start = MPI_Wtime();
   first_drive = core->grids == NULL;
   core->warm_restart = !first_drive;
   if (first_drive && (err = _braid_BuildHierarchy(core))) return err;
   /* the adjoint ignores Delta correction (with a warning, as upstream: adjoint.c) */
   if (core->delta_rank > 0 && core->nlevels > 1 && !core->adjoint
       && (err = _braid_DeltaSetup(core)))
   {
      return err;
   }
   if ((core->richardson || core->est_error)
       && (core->periodic || core->residual != NULL || core->scoarsen != NULL))
   {
      return _braid_Error("braid_Drive", "Richardson extrapolation and error estimation work "
                          "with the engine's own residual on one spatial grid: not with "
                          "periodic problems, a user residual or spatial coarsening");
   }
   if (core->periodic && (core->nlevels < 2 || core->seq_soln))
   {
      return _braid_Error("braid_Drive", "periodic problems need at least 2 levels (ntime = %d "
                          "gives %d) and no sequential initial guess (seq_soln = %d)",
                          (int) core->ntime, (int) core->nlevels, (int) core->seq_soln);
   }
   core->iter = 0;
   core->niter = 0;
   core->nrnorms = 0;
   core->done = 0;
   core->rnorm = braid_INVALID_RNORM;
   core->rnorm0 = braid_INVALID_RNORM;
   core->full_rnorm = braid_INVALID_RNORM;
   core->full_rnorm0 = braid_INVALID_RNORM;
   core->ndrives++;
   if (core->adjoint) return _braid_DriveAdjoint(core);
   _braid_PrintBegin(core);

   if (first_drive) err = initial_guess(core);
   else if (core->grids[0]->ilower == 0 && !core->periodic)
   {
      err = init_point(core, 0); /* warm restart: the initial condition anew */
   }
   if (err) return err;

   if (core->nlevels == 1)
   {
      /* one level: plain sequential time stepping */
      core->done = 1;
      err = _braid_SequentialSolve(core, core->access_level >= 1);
      if (!err) err = record_rnorm(core, braid_INVALID_RNORM);
   }
   else
   {
      skip_first = first_drive && core->skip && !core->seq_soln;
      err = iterate(core, skip_first);
      core->niter = core->iter;
      if (!err && core->nrnorms > 0)
      {
         /* the history ends with a copy of the last residual, as the interface reports it */
         err = record_rnorm(core, core->rnorms[core->nrnorms - 1]);
      }
      core->done = 1;
      if (!err && core->final_fcrelax)
      {
         braid_Int saved = core->nrelax[0];
         core->nrelax[0] = 1;
         err = _braid_FCRelax(core, 0);
         core->nrelax[0] = saved;
      }
      if (!err && core->access_level >= 1)
      {
         err = _braid_FAccess(core, 1, braid_ASCaller_FAccess);
      }
   }
   if (!err) err = call_sync(core);
   if (!err) err = _braid_AgreeSuccess(core);
   core->wall_time = MPI_Wtime() - core->wall_start;
   core->timers.drive += core->wall_time;
   if (!err && core->timings >= 2) err = braid_PrintTimers(core);
   if (!err && core->print_level >= 2) braid_PrintStats(core);
   return err;
}

braid_Int braid_Drive(braid_Core core)
{
   braid_Int err;
   if (core == NULL)
   {
      return _braid_Error("braid_Drive", "core is NULL (braid_Init failed or was not called)");
   }
   err = drive(core);
   _braid_NoticeStop(core); /* no receive stays posted between solves */
   return err;
}
