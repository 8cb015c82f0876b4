/*
 * Relaxation: sweeps that recompute F-points (and optionally C-points) interval by interval.
 *
 * One sweep walks the intervals of a rank from right to left. Each interval starts from the
 * C-point on its left; walking leftwards means that C-point has not been touched yet in this
 * sweep, so a fused F-then-C sweep gives exactly F-relaxation followed by C-relaxation. The
 * rightmost point goes to the next rank first, so that rank can start while this one works.
 * The intervals of a sweep do not depend on each other: the loop body is one interval.
 */
#include <stdlib.h>

#include "core_internal.h"
#include "delta.h"

braid_Int _braid_Step(braid_Core core, braid_Int level, braid_Int index, braid_Vector ustop,
                      braid_Vector u, braid_Int with_fas, braid_Int caller)
{
   const _braid_Grid *g = core->grids[level];
   braid_Vector f = with_fas && level > 0 ? g->fa[index - g->ilower] : NULL;
   _braid_Status *s;
   braid_Real start;
   braid_Int err = _braid_CheckNotices(core);
   if (err) return err;
   s = _braid_StatusFor(core, level, index - 1, _braid_Time(core, level, index - 1),
                        _braid_Time(core, level, index), caller);
   /* with a user residual the step solves residual(u) = fstop itself */
   start = _braid_TimerStart(core);
   err = core->step(core->app, ustop != NULL ? ustop : u, core->residual != NULL ? f : NULL, u,
                    (braid_StepStatus) s);
   _braid_StepDone(core, level, start);
   if (err) return _braid_CallbackFailed(core, "step", err);
   if (core->refine && (err = _braid_RefineRecord(core, level, index))) return err;
   if (core->status.r_space && level == 0) core->r_space = 1; /* braid_StepStatusSetRSpace */
   if (f != NULL && core->residual == NULL)
   {
      err = core->sum(core->app, 1.0, f, 1.0, u);
      if (err) return _braid_CallbackFailed(core, "sum", err);
   }
   return 0;
}

braid_Int _braid_Residual(braid_Core core, braid_Int level, braid_Int index, braid_Vector ustop,
                          braid_Vector r)
{
   _braid_Status *s = _braid_StatusFor(core, level, index - 1,
                                       _braid_Time(core, level, index - 1),
                                       _braid_Time(core, level, index), braid_ASCaller_Residual);
   braid_Real start = _braid_TimerStart(core);
   braid_Int err = core->residual(core->app, ustop, r, (braid_StepStatus) s);
   _braid_TimerStop(core, &core->timers.residual, start);
   return err ? _braid_CallbackFailed(core, "residual", err) : 0;
}

braid_Int _braid_ShellFrom(braid_Core core, braid_Vector u, braid_Vector *shell_ptr)
{
   braid_Int err = core->sclone(core->app, u, shell_ptr);
   return err ? _braid_CallbackFailed(core, "sclone", err) : 0;
}

/* The stored value at point i (with shells, the shell at an F-point), a better initial guess
 * for an implicit step than u. */
static braid_Vector ustop_for(braid_Core core, braid_Int level, braid_Int i)
{
   return _braid_Stored(core, level, i);
}

/* Step u through points first..last of `level`, storing and reporting each. */
static braid_Int step_through(braid_Core core, braid_Int level, braid_Int first, braid_Int last,
                              braid_Vector u, const _braid_SweepHooks *hooks, void *ctx)
{
   _braid_Grid *g = core->grids[level];
   braid_Int i, err;
   for (i = first; i <= last; i++)
   {
      if (hooks->before_step != NULL && (err = hooks->before_step(core, level, i, u, ctx)))
      {
         return err;
      }
      if ((err = _braid_Step(core, level, i, ustop_for(core, level, i), u, 1, hooks->caller)))
      {
         return err;
      }
      if (g->store_all && (err = _braid_CopyInto(core, u, _braid_Slot(g, i)))) return err;
      if (!g->store_all && core->useshell && *_braid_Slot(g, i) == NULL
          && (err = _braid_ShellFrom(core, u, _braid_Slot(g, i))))
      {
         return err;
      }
      if (hooks->fpoint != NULL && (err = hooks->fpoint(core, level, i, u, ctx))) return err;
   }
   return 0;
}

/* The vector an interval starts from: a copy of the stored point `start`, or, when that point
 * belongs to the rank on the left, the value it sent. *first is the first point to compute. */
static braid_Int interval_start(braid_Core core, braid_Int level, braid_Int start,
                                braid_Vector *u, braid_Int *first)
{
   const _braid_Grid *g = core->grids[level];
   braid_Int err;
   if (start >= g->ilower)
   {
      *first = start + 1;
      err = core->clone(core->app, _braid_Stored(core, level, start), u);
      if (err) return _braid_CallbackFailed(core, "clone", err);
      return 0;
   }
   *first = g->ilower;
   return _braid_RecvLeftWait(core, level, u);
}

braid_Int _braid_Sweep(braid_Core core, braid_Int level, braid_Int cfactor,
                       const _braid_SweepHooks *hooks, void *ctx)
{
   _braid_Grid *g = core->grids[level];
   braid_Int clower, cupper, ci, first, err = 0, taken, richardson;
   braid_Int have_right = g->iupper < g->gupper || core->periodic;
   braid_Vector u = NULL;

   if (g->ilower > g->iupper) return 0;
   core->status.calling_function = hooks->caller;
   _braid_CRange(g, cfactor, &clower, &cupper);

   if ((g->ilower > 0 || core->periodic) && (err = _braid_RecvLeft(core, level))) return err;
   richardson = hooks->need_cprop == 1 && level == 0 && (core->richardson || core->est_error);
   if (richardson && (err = _braid_RichardsonBegin(core, level, hooks->caller))) return err;
   /* a C-point at the right end: the neighbour needs its value from before this sweep */
   if (have_right && cupper == g->iupper
       && (err = _braid_SendRight(core, level, _braid_Stored(core, level, cupper))))
   {
      return err;
   }

   /* F-points right of the last local C-point; their C-point lies on another rank */
   if (cupper < g->iupper)
   {
      if ((err = interval_start(core, level, cupper, &u, &first))) goto out;
      if (core->delta_state != NULL && (err = _braid_DeltaIntervalStart(core, level, cupper)))
      {
         goto out;
      }
      if ((err = step_through(core, level, first, g->iupper, u, hooks, ctx))) goto out;
      if (richardson && (err = _braid_RichardsonTrailing(core, level, u, hooks->caller)))
      {
         goto out;
      }
      if (have_right && (err = _braid_SendRight(core, level, u))) goto out;
      if ((err = _braid_FreeVector(core, &u))) goto out;
   }

   for (ci = cupper; ci >= clower; ci -= cfactor)
   {
      taken = 0;
      if (ci == 0 && !core->periodic)
      {
         /* the initial condition: nothing to relax, but hooks see the point */
         if (hooks->cpoint != NULL && (err = hooks->cpoint(core, level, 0, NULL, &taken, ctx)))
         {
            goto out;
         }
         continue;
      }
      if ((err = interval_start(core, level, ci - cfactor, &u, &first))) goto out;
      if (core->delta_state != NULL
          && (err = _braid_DeltaIntervalStart(core, level, ci - cfactor)))
      {
         goto out;
      }
      if ((err = step_through(core, level, first, ci - 1, u, hooks, ctx))) goto out;
      if (hooks->need_cprop)
      {
         if (hooks->need_cprop == 1
             && ((err = _braid_Step(core, level, ci, ustop_for(core, level, ci), u, 1,
                                    hooks->caller))
                 || (richardson && (err = _braid_RichardsonCPoint(core, level, ci, u)))))
         {
            goto out;
         }
         if (hooks->cpoint != NULL && (err = hooks->cpoint(core, level, ci, u, &taken, ctx)))
         {
            goto out;
         }
         if (taken) u = NULL;
      }
      else if (hooks->cpoint != NULL
               && (err = hooks->cpoint(core, level, ci, NULL, &taken, ctx)))
      {
         goto out;
      }
      if ((err = _braid_FreeVector(core, &u))) goto out;
   }

out:
   if (u != NULL) core->free(core->app, u);
   if (!err) err = _braid_SendWait(core);
   if (!err && richardson) err = _braid_RichardsonEnd(core, level);
   return err;
}

/* ---- FC-relaxation ---- */

static braid_Int crelax_cpoint(braid_Core core, braid_Int level, braid_Int ci, braid_Vector uprop,
                               braid_Int *taken, void *ctx)
{
   _braid_Grid *g = core->grids[level];
   braid_Vector *slot = _braid_Slot(g, ci);
   braid_Real w = _braid_LevelCRelaxWt(core, level);
   braid_Int err;
   (void) ctx;
   if (ci == 0 && !core->periodic) return 0;
   if (w == 1.0)
   {
      /* the propagated value becomes the C-point: no copy needed */
      if ((err = _braid_FreeVector(core, slot))) return err;
      *slot = uprop;
      *taken = 1;
      return 0;
   }
   err = core->sum(core->app, w, uprop, 1.0 - w, *slot);
   return err ? _braid_CallbackFailed(core, "sum", err) : 0;
}

braid_Int _braid_FCRelax(braid_Core core, braid_Int level)
{
   const _braid_SweepHooks hooks = {NULL, crelax_cpoint, 1, braid_ASCaller_FCRelax, NULL};
   braid_Int nu, nrelax = _braid_LevelNRelax(core, level), err;
   for (nu = 0; nu < nrelax; nu++)
   {
      if (core->delta_state != NULL) _braid_DeltaBegin(core, level, _braid_DELTA_RELAX);
      if ((err = _braid_Sweep(core, level, core->grids[level]->cfactor, &hooks, NULL))) return err;
      if (core->delta_state != NULL && (err = _braid_DeltaEnd(core))) return err;
   }
   return 0;
}

/* ---- access ---- */

static braid_Int call_access(braid_Core core, braid_Int level, braid_Int i, braid_Vector u)
{
   _braid_Status *s;
   braid_Real start;
   braid_Int err;
   if (core->access == NULL) return 0;
   s = _braid_StatusFor(core, level, i, _braid_Time(core, level, i), 0.0,
                        core->status.calling_function);
   if (core->delta_state != NULL) _braid_DeltaAccessStatus(core, level, i, s);
   start = _braid_TimerStart(core);
   err = core->access(core->app, u, (braid_AccessStatus) s);
   _braid_TimerStop(core, &core->timers.access, start);
   return err ? _braid_CallbackFailed(core, "access", err) : 0;
}

static braid_Int access_fpoint(braid_Core core, braid_Int level, braid_Int i, braid_Vector u,
                               void *ctx)
{
   (void) ctx;
   return call_access(core, level, i, u);
}

static braid_Int access_cpoint(braid_Core core, braid_Int level, braid_Int ci, braid_Vector uprop,
                               braid_Int *taken, void *ctx)
{
   (void) uprop;
   (void) taken;
   (void) ctx;
   return call_access(core, level, ci, _braid_Stored(core, level, ci));
}

braid_Int _braid_FAccess(braid_Core core, braid_Int done, braid_Int caller)
{
   const _braid_SweepHooks hooks = {access_fpoint, access_cpoint, 0, caller, NULL};
   braid_Int err;
   core->done = done;
   if (core->delta_state == NULL)
   {
      return _braid_Sweep(core, 0, core->grids[0]->cfactor, &hooks, NULL);
   }
   _braid_DeltaBegin(core, 0, _braid_DELTA_ACCESS);
   err = _braid_Sweep(core, 0, core->grids[0]->cfactor, &hooks, NULL);
   return err ? err : _braid_DeltaEnd(core);
}

/* ---- sequential solve ---- */

typedef struct {
   braid_Int with_access;
} sequential_ctx;

static braid_Int sequential_fpoint(braid_Core core, braid_Int level, braid_Int i, braid_Vector u,
                                   void *ctx)
{
   _braid_Grid *g = core->grids[level];
   braid_Int err;
   /* keep the C-points of the real grid (the sweep already keeps all with full storage) */
   if (!g->store_all && i % g->cfactor == 0
       && (err = _braid_CopyInto(core, u, _braid_Slot(g, i))))
   {
      return err;
   }
   return ((sequential_ctx *) ctx)->with_access ? call_access(core, level, i, u) : 0;
}

static braid_Int sequential_cpoint(braid_Core core, braid_Int level, braid_Int ci,
                                   braid_Vector uprop, braid_Int *taken, void *ctx)
{
   return ((sequential_ctx *) ctx)->with_access
             ? access_cpoint(core, level, ci, uprop, taken, ctx) : 0;
}

braid_Int _braid_SequentialSolve(braid_Core core, braid_Int with_access)
{
   const _braid_SweepHooks hooks = {sequential_fpoint, sequential_cpoint, 0,
                                    with_access ? braid_ASCaller_FAccess
                                                : braid_ASCaller_InitGuess,
                                    NULL};
   sequential_ctx ctx;
   ctx.with_access = with_access && core->access != NULL;
   /* one interval spanning the whole grid: only point 0 is a C-point */
   return _braid_Sweep(core, 0, core->grids[0]->gupper + 1, &hooks, &ctx);
}
