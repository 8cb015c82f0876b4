/*
 * Moving between levels: FAS restriction and the coarse-grid correction.
 *
 * Restriction is injection at the C-points. With v the restricted approximation, the coarse
 * problem is u_j = Phi_c(u_{j-1}) + f_j with the FAS right-hand side
 *    f_j = [Phi(u_{ci-1}) + f_ci]_fine - Phi_c(v_{j-1}),
 * so that v solves it exactly when the fine residual vanishes. The correction u - v found on
 * the coarse grid is added back at the fine C-points.
 */
#include <stdlib.h>

#include "core_internal.h"
#include "delta.h"

/* Does `level` keep a vector at point j (a C-point, or every point with full storage)? */
static int keeps_point(const _braid_Grid *g, braid_Int j)
{
   return g->store_all || j % g->cfactor == 0;
}

typedef struct {
   braid_Int compute_norm;
   braid_Int first; /* coarse index of local_norms[0] */
} restrict_ctx;

/* With a user residual function: r = f_ci - A(u_ci, u_{ci-1}) from the sweep's u_{ci-1}
 * (overwritten). */
static braid_Int user_residual(braid_Core core, braid_Int level, braid_Int ci, braid_Vector uc,
                               braid_Vector uprev)
{
   const _braid_Grid *g = core->grids[level];
   braid_Vector f = level > 0 ? g->fa[ci - g->ilower] : NULL;
   braid_Int err = _braid_Residual(core, level, ci, uc, uprev);
   if (err) return err;
   /* f - r, or -r where f is zero */
   err = f != NULL ? core->sum(core->app, 1.0, f, -1.0, uprev)
                   : core->sum(core->app, 0.0, uprev, -1.0, uprev);
   return err ? _braid_CallbackFailed(core, "sum", err) : 0;
}

static braid_Int restrict_cpoint(braid_Core core, braid_Int level, braid_Int ci,
                                 braid_Vector uprop, braid_Int *taken, void *vctx)
{
   restrict_ctx *ctx = (restrict_ctx *) vctx;
   _braid_Grid *c = core->grids[level + 1];
   braid_Vector uc = _braid_Stored(core, level, ci);
   braid_Int j = ci / core->grids[level]->cfactor, k = j - c->ilower, err;
   (void) taken;

   if ((err = _braid_CoarsenInto(core, level, ci, uc, &c->va[k]))) return err;
   if (keeps_point(c, j) && (err = _braid_CopyInto(core, c->va[k], &c->ua[k]->userVector)))
   {
      return err;
   }
   if (ci == 0 && !core->periodic) return 0;

   if (core->residual != NULL)
   {
      /* uprop is u_{ci-1}: it becomes the residual f - A(u_ci, u_{ci-1}), the start of f_j */
      if ((err = user_residual(core, level, ci, uc, uprop))) return err;
      if ((err = _braid_CoarsenInto(core, level, ci, uprop, &c->fa[k]))) return err;
   }
   else
   {
      /* f_j starts as the propagated fine value; Phi_c(v_{j-1}) is subtracted later */
      if ((err = _braid_CoarsenInto(core, level, ci, uprop, &c->fa[k]))) return err;
      /* residual r = Phi(u_{ci-1}) - u_ci, computed in the sweep's own vector */
      if (ctx->compute_norm && (err = core->sum(core->app, -1.0, uc, 1.0, uprop)))
      {
         return _braid_CallbackFailed(core, "sum", err);
      }
   }
   if (ctx->compute_norm)
   {
      braid_Real norm;
      err = core->spatialnorm(core->app, uprop, &norm);
      if (err) return _braid_CallbackFailed(core, "spatialnorm", err);
      core->local_norms[j - ctx->first] = norm;
   }
   return 0;
}

/* Complete the coarse right-hand side at coarse point j from v_{j-1} (in u, overwritten):
 * f_j -= Phi_c(v_{j-1}), or f_j += A_c(v_j, v_{j-1}) with a user residual function. */
static braid_Int coarse_rhs(braid_Core core, braid_Int clevel, braid_Int j, braid_Vector u)
{
   _braid_Grid *c = core->grids[clevel];
   braid_Int err;
   if (core->residual != NULL)
   {
      if ((err = _braid_Residual(core, clevel, j, c->va[j - c->ilower], u))) return err;
      err = core->sum(core->app, 1.0, u, 1.0, c->fa[j - c->ilower]);
   }
   else
   {
      if ((err = _braid_Step(core, clevel, j, NULL, u, 0, braid_ASCaller_FRestrict))) return err;
      err = core->sum(core->app, -1.0, u, 1.0, c->fa[j - c->ilower]);
   }
   return err ? _braid_CallbackFailed(core, "sum", err) : 0;
}

/* The coarse right-hand side at every local coarse point j >= 1 (coarse_rhs); v_{j-1} of the
 * first point comes from the rank on the left. */
static braid_Int subtract_coarse_step(braid_Core core, braid_Int clevel)
{
   _braid_Grid *c = core->grids[clevel];
   braid_Int j, first, err = 0;
   braid_Vector u = NULL;

   if (c->ilower > c->iupper) return 0;
   core->status.calling_function = braid_ASCaller_FRestrict;
   if ((c->ilower > 0 || core->periodic) && (err = _braid_RecvLeft(core, clevel))) return err;
   if ((c->iupper < c->gupper || core->periodic)
       && (err = _braid_SendRight(core, clevel, c->va[c->iupper - c->ilower])))
   {
      return err;
   }
   first = c->ilower > 1 || core->periodic ? c->ilower : 1;
   for (j = c->iupper; j >= first; j--)
   {
      if (j - 1 >= c->ilower)
      {
         err = core->clone(core->app, c->va[j - 1 - c->ilower], &u);
         if (err) { err = _braid_CallbackFailed(core, "clone", err); goto out; }
      }
      else if ((err = _braid_RecvLeftWait(core, clevel, &u)))
      {
         goto out;
      }
      if ((err = coarse_rhs(core, clevel, j, u))) goto out;
      if ((err = _braid_FreeVector(core, &u))) goto out;
   }
out:
   if (u != NULL) core->free(core->app, u);
   if (!err) err = _braid_SendWait(core);
   return err;
}

braid_Int _braid_FRestrict(braid_Core core, braid_Int level)
{
   const _braid_SweepHooks hooks = {NULL, restrict_cpoint, core->residual != NULL ? 2 : 1,
                                    braid_ASCaller_FRestrict, NULL};
   _braid_Grid *c = core->grids[level + 1];
   restrict_ctx ctx;
   braid_Int count, err;

   ctx.compute_norm = level == 0 && core->residual_computation;
   ctx.first = c->ilower > 1 || core->periodic ? c->ilower : 1;
   count = c->iupper - ctx.first + 1;
   if (count < 0) count = 0;
   if (ctx.compute_norm && core->local_norms == NULL)
   {
      core->local_norms = (braid_Real *) _braid_Calloc(core, "the residual norms of the "
                                                       "C-points", count, sizeof(braid_Real));
      if (core->local_norms == NULL) return braid_ERROR_MEMORY;
   }

   if (core->delta_state != NULL) _braid_DeltaBegin(core, level, _braid_DELTA_RESTRICT);
   if ((err = _braid_Sweep(core, level, core->grids[level]->cfactor, &hooks, &ctx))) return err;
   if (core->delta_state != NULL && (err = _braid_DeltaBegin(core, level + 1, _braid_DELTA_RHS)))
   {
      return err;
   }
   if ((err = subtract_coarse_step(core, level + 1))) return err;
   if (core->delta_state != NULL && (err = _braid_DeltaEnd(core))) return err;

   if (level == 0)
   {
      core->rnorm = braid_INVALID_RNORM;
      if (ctx.compute_norm)
      {
         /* the reduction numbers the points 1..n; a periodic grid's start at 0 */
         braid_Int shift = core->periodic ? 1 : 0;
         err = _braid_TemporalNorm(core, core->local_norms, ctx.first + shift, count,
                                   c->gupper + shift, &core->rnorm);
      }
   }
   return err;
}

/* ---- coarse-grid correction ---- */

/* e = u - v at coarse point i (kept in v, which is not needed any more), added to the fine
 * C-point at the same time. */
static braid_Int correct_fine(braid_Core core, braid_Int level, braid_Int i, braid_Vector u)
{
   _braid_Grid *c = core->grids[level], *f = core->grids[level - 1];
   braid_Int fi = i * f->cfactor;
   braid_Vector e = c->va[i - c->ilower], ef = e;
   braid_Int err = core->sum(core->app, 1.0, u, -1.0, e);
   if (err) return _braid_CallbackFailed(core, "sum", err);
   if (core->srefine != NULL && (err = _braid_RefineNew(core, level - 1, fi, e, &ef))) return err;
   err = core->sum(core->app, 1.0, ef, 1.0, f->ua[fi - f->ilower]->userVector);
   if (ef != e) core->free(core->app, ef);
   return err ? _braid_CallbackFailed(core, "sum", err) : 0;
}

static braid_Int interp_fpoint(braid_Core core, braid_Int level, braid_Int i, braid_Vector u,
                               void *ctx)
{
   (void) ctx;
   return correct_fine(core, level, i, u);
}

static braid_Int interp_cpoint(braid_Core core, braid_Int level, braid_Int ci, braid_Vector uprop,
                               braid_Int *taken, void *ctx)
{
   (void) uprop;
   (void) taken;
   (void) ctx;
   return correct_fine(core, level, ci, _braid_Stored(core, level, ci));
}

braid_Int _braid_FInterp(braid_Core core, braid_Int level)
{
   const _braid_SweepHooks hooks = {interp_fpoint, interp_cpoint, 0, braid_ASCaller_FInterp, NULL};
   braid_Int err;
   /* a coarsest level that is not solved sequentially is relaxed instead */
   if (level == core->nlevels - 1 && (core->relax_only_cg || core->periodic)
       && (err = _braid_FCRelax(core, level)))
   {
      return err;
   }
   if (core->delta_state == NULL)
   {
      return _braid_Sweep(core, level, core->grids[level]->cfactor, &hooks, NULL);
   }
   _braid_DeltaBegin(core, level, _braid_DELTA_INTERP);
   err = _braid_Sweep(core, level, core->grids[level]->cfactor, &hooks, NULL);
   return err ? err : _braid_DeltaEnd(core);
}

braid_Int _braid_InjectInitialGuess(braid_Core core)
{
   braid_Int level, j, err;
   for (level = 1; level < core->nlevels; level++)
   {
      _braid_Grid *c = core->grids[level];
      const _braid_Grid *f = core->grids[level - 1];
      for (j = c->ilower; j <= c->iupper; j++)
      {
         braid_Vector uf = f->ua[j * f->cfactor - f->ilower]->userVector;
         if ((err = _braid_CoarsenInto(core, level - 1, j * f->cfactor, uf,
                                       &c->va[j - c->ilower])))
         {
            return err;
         }
         if (keeps_point(c, j)
             && (err = _braid_CopyInto(core, c->va[j - c->ilower], _braid_Slot(c, j))))
         {
            return err;
         }
      }
   }
   return 0;
}
