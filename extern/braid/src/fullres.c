/*
 * The full residual norm (braid_SetFullRNormRes): the user's residual at every point of the
 * fine grid, C- and F-points, after each cycle; when set, it decides halting.
 *
 * At point i the residual is residual(u_i, u_{i-1}) with the values the solver holds after
 * the cycle: the stored vector where there is one, else the value F-relaxation gives (at the
 * F-points of a grid that stores only C-points), and u_{i-1} as that F-relaxation carries it.
 */
#include "core_internal.h"

typedef struct {
   braid_Vector prev;  /* u_{i-1} of the step about to happen */
} fullres_ctx;

static braid_Int point_norm(braid_Core core, braid_Int i, braid_Vector ui, braid_Vector r)
{
   const _braid_Grid *g = core->grids[0];
   _braid_Status *s = _braid_StatusFor(core, 0, i - 1, _braid_Time(core, 0, i - 1),
                                       _braid_Time(core, 0, i), braid_ASCaller_ComputeFullRNorm);
   braid_Int err = core->full_rnorm_res(core->app, ui, r, (braid_StepStatus) s);
   if (err) return _braid_CallbackFailed(core, "full residual", err);
   err = core->spatialnorm(core->app, r, &core->local_norms_full[i - g->ilower]);
   return err ? _braid_CallbackFailed(core, "spatialnorm", err) : 0;
}

static braid_Int keep_prev(braid_Core core, braid_Int level, braid_Int i, braid_Vector uprev,
                           void *vctx)
{
   (void) level;
   (void) i;
   return _braid_CopyInto(core, uprev, &((fullres_ctx *) vctx)->prev);
}

static braid_Int fpoint_residual(braid_Core core, braid_Int level, braid_Int i, braid_Vector u,
                                 void *vctx)
{
   fullres_ctx *ctx = (fullres_ctx *) vctx;
   const _braid_Grid *g = core->grids[level];
   /* a stored full vector if this grid keeps F-points, else the relaxed value */
   braid_Vector ui = g->store_all ? _braid_Stored(core, level, i) : u;
   return point_norm(core, i, ui, ctx->prev);
}

static braid_Int cpoint_residual(braid_Core core, braid_Int level, braid_Int ci,
                                 braid_Vector uprev, braid_Int *taken, void *vctx)
{
   (void) taken;
   (void) vctx;
   if (uprev == NULL) return 0; /* point 0: the initial condition */
   return point_norm(core, ci, _braid_Stored(core, level, ci), uprev);
}

braid_Int _braid_FullResidualNorm(braid_Core core)
{
   _braid_SweepHooks hooks = {fpoint_residual, cpoint_residual, 2,
                              braid_ASCaller_ComputeFullRNorm, keep_prev};
   const _braid_Grid *g = core->grids[0];
   fullres_ctx ctx;
   braid_Int first, count, err;
   if (core->full_rnorm_res == NULL || core->nlevels < 2) return 0;
   if (core->local_norms_full == NULL)
   {
      core->local_norms_full = (braid_Real *) _braid_Calloc(
         core, "the full residual norms of the points", g->nupoints, sizeof(braid_Real));
      if (core->local_norms_full == NULL) return braid_ERROR_MEMORY;
   }
   ctx.prev = NULL;
   err = _braid_Sweep(core, 0, g->cfactor, &hooks, &ctx);
   _braid_FreeVector(core, &ctx.prev);
   if (err) return err;
   /* points 1..gupper (periodic: 0..gupper, numbered from 1 for the reduction) */
   first = g->ilower > 0 || core->periodic ? g->ilower : 1;
   count = g->iupper - first + 1;
   if (count < 0) count = 0;
   return _braid_TemporalNorm(core, core->local_norms_full + (first - g->ilower),
                              first + (core->periodic ? 1 : 0), count,
                              g->gupper + (core->periodic ? 1 : 0), &core->full_rnorm);
}
