/*
 * Delta correction and Lyapunov estimation (doc/delta.md): the options, the status functions
 * that hand basis vectors and exponents to step and access, and the hooks the cycle calls.
 *
 * On a coarse level L the step into point j becomes
 *    Phi~_j(v) = Phi_L(v) + sum_k D_jk <P_jk, v>,
 * P_j = the orthonormal basis psi at point j - 1 and D_jk = T_jk - Phi_L'(v_{j-1}) P_jk, where
 * T_jk is P_jk propagated by the tangent of level L - 1 over the fine interval (built in the
 * restriction sweep, whose steps carry the basis). With rank = the state's dimension
 * Phi~_j has the fine interval's Jacobian. FAS uses Phi~ on both sides, so the fixed point
 * (the fine solution) does not change; only the coarse grid does.
 */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "core_internal.h"
#include "delta.h"

/* ---- options ---- */

braid_Int braid_SetDeltaCorrection(braid_Core core, braid_Int rank,
                                   braid_PtFcnInitBasis basis_init,
                                   braid_PtFcnInnerProd inner_prod)
{
   const char *fn = "braid_SetDeltaCorrection";
   CHECK_CORE(fn);
   CHECK_NOT_BUILT(fn);
   if (rank < 0)
   {
      return _braid_Error(fn, "rank = %d is invalid; it must be >= 0 (0 turns Delta correction "
                          "off)", (int) rank);
   }
   if (rank > 0 && (basis_init == NULL || inner_prod == NULL))
   {
      return _braid_Error(fn, "basis_init and inner_prod must not be NULL when rank > 0 "
                          "(rank = %d)", (int) rank);
   }
   core->delta_rank = rank;
   core->basis_init = basis_init;
   if (inner_prod != NULL) core->inner_prod = inner_prod;
   return 0;
}

braid_Int braid_SetDeferDelta(braid_Core core, braid_Int level, braid_Int iter)
{
   const char *fn = "braid_SetDeferDelta";
   CHECK_CORE(fn);
   CHECK_NOT_BUILT(fn);
   if (level < 1 || iter < 0)
   {
      return _braid_Error(fn, "level = %d, iter = %d is invalid; Delta correction acts on "
                          "coarse levels (level >= 1) from an iteration >= 0", (int) level,
                          (int) iter);
   }
   core->delta_defer_level = level;
   core->delta_defer_iter = iter;
   return 0;
}

braid_Int braid_SetLyapunovEstimation(braid_Core core, braid_Int relax, braid_Int cglv,
                                      braid_Int exponents)
{
   const char *fn = "braid_SetLyapunovEstimation";
   CHECK_CORE(fn);
   CHECK_NOT_BUILT(fn);
   if (relax < 0 || relax > 1 || cglv < 0 || cglv > 1 || exponents < 0 || exponents > 1)
   {
      return _braid_Error(fn, "relax = %d, cglv = %d, exponents = %d: each must be 0 or 1",
                          (int) relax, (int) cglv, (int) exponents);
   }
   core->lyap_relax = relax;
   core->lyap_cglv = cglv;
   core->lyap_exponents = exponents;
   core->lyapunov = relax || cglv || exponents;
   return 0;
}

/* ---- status functions ---- */

#define S ((_braid_Status *) status)

braid_Int braid_StatusGetDeltaRank(braid_Status status, braid_Int *rank_ptr)
{
   if (status == NULL || rank_ptr == NULL) return braid_ERROR_ARG;
   *rank_ptr = S->delta_rank;
   return 0;
}

braid_Int braid_StatusGetBasisVec(braid_Status status, braid_Vector *v_ptr, braid_Int index)
{
   if (status == NULL || v_ptr == NULL) return braid_ERROR_ARG;
   *v_ptr = (S->basis != NULL && index >= 0 && index < S->delta_rank) ? S->basis[index] : NULL;
   return 0;
}

braid_Int braid_StatusGetLocalLyapExponents(braid_Status status, braid_Real *exp_ptr,
                                            braid_Int *num_returned)
{
   braid_Int n;
   if (status == NULL || num_returned == NULL || (exp_ptr == NULL && *num_returned > 0))
   {
      return braid_ERROR_ARG;
   }
   n = S->lyap_exps == NULL ? 0 : _braid_min(*num_returned, S->delta_rank);
   if (n > 0) memcpy(exp_ptr, S->lyap_exps, (size_t) n * sizeof(braid_Real));
   *num_returned = n < 0 ? 0 : n;
   return 0;
}

braid_Int braid_StatusSetBasisSize(braid_Status status, braid_Real size)
{
   if (status == NULL || !(size >= 0.0)) return braid_ERROR_ARG;
   S->basis_size = size;
   return 0;
}

#undef S

braid_Int braid_StepStatusGetDeltaRank(braid_StepStatus s, braid_Int *rank_ptr)
{ return braid_StatusGetDeltaRank((braid_Status) s, rank_ptr); }
braid_Int braid_StepStatusGetBasisVec(braid_StepStatus s, braid_Vector *v_ptr, braid_Int index)
{ return braid_StatusGetBasisVec((braid_Status) s, v_ptr, index); }
braid_Int braid_AccessStatusGetDeltaRank(braid_AccessStatus s, braid_Int *rank_ptr)
{ return braid_StatusGetDeltaRank((braid_Status) s, rank_ptr); }
braid_Int braid_AccessStatusGetBasisVec(braid_AccessStatus s, braid_Vector *v_ptr,
                                        braid_Int index)
{ return braid_StatusGetBasisVec((braid_Status) s, v_ptr, index); }
braid_Int braid_AccessStatusGetLocalLyapExponents(braid_AccessStatus s, braid_Real *exp_ptr,
                                                  braid_Int *num_returned)
{ return braid_StatusGetLocalLyapExponents((braid_Status) s, exp_ptr, num_returned); }
braid_Int braid_BufferStatusSetBasisSize(braid_BufferStatus s, braid_Real size)
{ return braid_StatusSetBasisSize((braid_Status) s, size); }

/* A failure during a solve: reported once, and sent to the other ranks so that they stop too
 * (a rank waiting for this one's message would otherwise wait forever). */
static braid_Int delta_fail(braid_Core core, const char *fmt, ...)
#if defined(__GNUC__)
   __attribute__((format(printf, 2, 3)))
#endif
   ;
static braid_Int delta_fail(braid_Core core, const char *fmt, ...)
{
   char text[512];
   va_list ap;
   if (core->failed) return braid_ERROR_GENERIC;
   va_start(ap, fmt);
   vsnprintf(text, sizeof(text), fmt, ap);
   va_end(ap);
   core->failed = 1;
   core->failure_rank = core->myid;
   snprintf(core->failure_text, sizeof(core->failure_text), "rank %d: %s", core->myid, text);
   if (!core->quiet_failures)
   {
      _braid_Error("braid_Drive", "%s; stopping the solve", core->failure_text);
   }
   _braid_NotifyFailure(core);
   return braid_ERROR_GENERIC;
}

/* ---- work space ---- */

/* What the current sweep does with the basis (the mode; carried in its messages unless NONE) */
enum { MODE_NONE, MODE_RESTRICT, MODE_RHS, MODE_RELAX, MODE_CHAIN, MODE_ACCESS };

typedef struct {
   braid_Int ilower, n;      /* local points */
   braid_Vector **psi;       /* [i - ilower]: the orthonormal basis at point i, or NULL */
   braid_Vector **dvec;      /* [i - ilower]: D_i (T_i until the coarse right-hand side) */
   braid_Vector **pvec;      /* [i - ilower]: P_i, the basis D_i projects on */
   braid_Int d_iter;         /* the iteration whose restriction built dvec; -1 none */
} delta_level;

struct _braid_DeltaState {
   braid_Int rank, base;     /* the basis lives on levels >= base (= defer level - 1) */
   braid_Int nlevels;
   delta_level *levels;
   braid_PtFcnStep user_step; /* core->step is the wrapper below while Delta is set up */
   braid_Int kind, mode, mode_level;
   braid_Vector *prop;       /* the basis propagated through the current interval */
   braid_Vector *recv;       /* the basis that came with the last message */
   braid_Real *coef;         /* [rank * (rank + 1)]: projections on P before a step */
   braid_Real *exps;         /* [rank]: local exponents of the last orthonormalisation */
   braid_Int have_exps, apply, rhs;
   braid_Int state_off, basis_stride; /* message layout: state, then rank basis vectors */
};

static void free_set(braid_Core core, braid_Vector **set)
{
   _braid_FreeVectors(core, set, core->delta_rank);
}

static void free_sets(braid_Core core, braid_Vector **sets, braid_Int n)
{
   braid_Int i;
   if (sets == NULL) return;
   for (i = 0; i < n; i++) free_set(core, &sets[i]);
   free(sets);
}

void _braid_DeltaFree(braid_Core core)
{
   struct _braid_DeltaState *ds = core->delta_state;
   braid_Int l;
   if (ds == NULL) return;
   core->step = ds->user_step;
   for (l = 0; l < ds->nlevels; l++)
   {
      free_sets(core, ds->levels[l].psi, ds->levels[l].n);
      free_sets(core, ds->levels[l].dvec, ds->levels[l].n);
      free_sets(core, ds->levels[l].pvec, ds->levels[l].n);
   }
   free(ds->levels);
   free_set(core, &ds->prop);
   free_set(core, &ds->recv);
   free(ds->coef);
   free(ds->exps);
   free(ds);
   core->delta_state = NULL;
}

/* *dst = a new set of rank clones of src */
static braid_Int clone_set(braid_Core core, braid_Vector *src, braid_Vector **dst)
{
   braid_Int k, err;
   free_set(core, dst);
   *dst = (braid_Vector *) _braid_Calloc(core, "a basis", core->delta_rank, sizeof(braid_Vector));
   if (*dst == NULL) return braid_ERROR_MEMORY;
   for (k = 0; k < core->delta_rank; k++)
   {
      if ((err = core->clone(core->app, src[k], &(*dst)[k])))
      {
         return _braid_CallbackFailed(core, "clone", err);
      }
   }
   return 0;
}

static braid_Int inner(braid_Core core, braid_Vector u, braid_Vector v, braid_Real *prod)
{
   braid_Int err = core->inner_prod(core->app, u, v, prod);
   return err ? _braid_CallbackFailed(core, "inner_prod", err) : 0;
}

static braid_Int axpy(braid_Core core, braid_Real a, braid_Vector x, braid_Real b, braid_Vector y)
{
   braid_Int err = core->sum(core->app, a, x, b, y);
   return err ? _braid_CallbackFailed(core, "sum", err) : 0;
}

/* Modified Gram-Schmidt on v[0..rank-1] in place; r[k] = the k-th diagonal entry of R. */
braid_Int _braid_DeltaGramSchmidt(braid_Core core, braid_Vector *v, braid_Int rank, braid_Real *r)
{
   braid_Int k, m, err;
   braid_Real a;
   for (k = 0; k < rank; k++)
   {
      for (m = 0; m < k; m++)
      {
         if ((err = inner(core, v[m], v[k], &a)) || (err = axpy(core, -a, v[m], 1.0, v[k])))
         {
            return err;
         }
      }
      if ((err = inner(core, v[k], v[k], &a))) return err;
      if (!isfinite(a))
      {
         return delta_fail(core, "Gram-Schmidt: <v, v> = %g for basis vector %d: "
                             "the propagated basis is not finite (is the step stable on "
                             "this level?)", a, (int) k);
      }
      if (!(a > 0.0))
      {
         return delta_fail(core, "Gram-Schmidt: basis vector %d is linearly "
                             "dependent on the ones before it (<v, v> = %g after projecting "
                             "them out); the basis needs %d independent vectors", (int) k, a,
                             (int) rank);
      }
      r[k] = sqrt(a);
      if ((err = axpy(core, 0.0, v[k], 1.0 / r[k], v[k]))) return err;
   }
   return 0;
}

/* ---- setup (braid_Drive) ---- */

static braid_Int delta_step(braid_App app, braid_Vector ustop, braid_Vector fstop,
                            braid_Vector u, braid_StepStatus status);

static braid_Int keeps_basis(const struct _braid_DeltaState *ds, braid_Core core, braid_Int l,
                             braid_Int i)
{
   /* the base level needs it at its C-points only, unless it is the coarsest (a chain) */
   return l > ds->base || l == core->nlevels - 1 || i % core->grids[l]->cfactor == 0;
}

static braid_Int init_basis_at(braid_Core core, braid_Int l, braid_Int i, braid_Vector **set)
{
   struct _braid_DeltaState *ds = core->delta_state;
   braid_Real t = _braid_Time(core, l, i);
   braid_Int k, err;
   *set = (braid_Vector *) _braid_Calloc(core, "a basis", ds->rank, sizeof(braid_Vector));
   if (*set == NULL) return braid_ERROR_MEMORY;
   for (k = 0; k < ds->rank; k++)
   {
      if ((err = core->basis_init(core->app, t, k, &(*set)[k])))
      {
         return _braid_CallbackFailed(core, "basis_init", err);
      }
   }
   return _braid_DeltaGramSchmidt(core, *set, ds->rank, ds->exps);
}

braid_Int _braid_DeltaSetup(braid_Core core)
{
   struct _braid_DeltaState *ds;
   braid_Int l, i, r = core->delta_rank, err;
   if (core->delta_state != NULL || r == 0) return 0;
   if (core->residual != NULL || core->scoarsen != NULL || core->srefine != NULL
       || core->richardson || core->est_error || core->refine || core->periodic
       || core->relax_only_cg)
   {
      return _braid_Error("braid_Drive", "Delta correction works with the engine's own "
                          "residual on one spatial grid and a sequentially solved coarsest "
                          "level: not with a user residual, spatial coarsening, Richardson "
                          "extrapolation, temporal refinement, periodic problems or "
                          "relax_only_cg");
   }
   ds = (struct _braid_DeltaState *) _braid_Calloc(core, "the Delta work space", 1, sizeof(*ds));
   if (ds == NULL) return braid_ERROR_MEMORY;
   core->delta_state = ds;
   ds->user_step = core->step;
   core->step = delta_step;
   ds->rank = r;
   ds->nlevels = core->nlevels;
   ds->base = core->delta_defer_level - 1;
   ds->levels = (delta_level *) _braid_Calloc(core, "the Delta levels", core->nlevels,
                                              sizeof(delta_level));
   ds->coef = (braid_Real *) _braid_Calloc(core, "projections", r * (r + 1), sizeof(braid_Real));
   ds->exps = (braid_Real *) _braid_Calloc(core, "exponents", r, sizeof(braid_Real));
   if (ds->levels == NULL || ds->coef == NULL || ds->exps == NULL) return braid_ERROR_MEMORY;
   for (l = ds->base; l < core->nlevels; l++)
   {
      delta_level *lv = &ds->levels[l];
      const _braid_Grid *g = core->grids[l];
      lv->ilower = g->ilower;
      lv->n = g->nupoints;
      lv->d_iter = -1;
      if (lv->n == 0) continue;
      lv->psi = (braid_Vector **) _braid_Calloc(core, "bases", lv->n, sizeof(braid_Vector *));
      lv->dvec = (braid_Vector **) _braid_Calloc(core, "Delta", lv->n, sizeof(braid_Vector *));
      lv->pvec = (braid_Vector **) _braid_Calloc(core, "Delta", lv->n, sizeof(braid_Vector *));
      if (lv->psi == NULL || lv->dvec == NULL || lv->pvec == NULL) return braid_ERROR_MEMORY;
      for (i = g->ilower; i <= g->iupper; i++)
      {
         if (keeps_basis(ds, core, l, i)
             && (err = init_basis_at(core, l, i, &lv->psi[i - g->ilower])))
         {
            return err;
         }
      }
   }
   return 0;
}

/* The basis kept at point i of level l, or NULL. */
static braid_Vector *psi_at(braid_Core core, braid_Int l, braid_Int i)
{
   struct _braid_DeltaState *ds = core->delta_state;
   delta_level *lv = &ds->levels[l];
   if (l < ds->base || lv->psi == NULL || i < lv->ilower || i >= lv->ilower + lv->n) return NULL;
   return lv->psi[i - lv->ilower];
}

/* Is the Delta correction of level l built for this iteration? */
static braid_Int level_active(braid_Core core, braid_Int l)
{
   const struct _braid_DeltaState *ds = core->delta_state;
   return l >= 1 && l >= core->delta_defer_level && ds->levels[l].d_iter == core->iter;
}

/* ---- sweeps ---- */

/* The basis at the points of level `to` from the same time points of level `from`, one level
 * apart either way: restriction injects it, interpolation brings a coarse level's Lyapunov
 * vectors back (only where the finer level keeps a basis, keeps_basis). */
static braid_Int copy_bases(braid_Core core, braid_Int from, braid_Int to)
{
   braid_Int coarse = from > to ? from : to, cf = core->grids[coarse - 1]->cfactor, j, err;
   const _braid_Grid *c = core->grids[coarse];
   delta_level *lv = &core->delta_state->levels[to];
   for (j = c->ilower; j <= c->iupper; j++)
   {
      braid_Int ito = to == coarse ? j : j * cf;
      braid_Vector *src = psi_at(core, from, from == coarse ? j : j * cf);
      if (src == NULL || (to < from && psi_at(core, to, ito) == NULL)) continue;
      if ((err = clone_set(core, src, &lv->psi[ito - lv->ilower]))) return err;
   }
   return 0;
}

braid_Int _braid_DeltaBegin(braid_Core core, braid_Int level, braid_Int kind)
{
   struct _braid_DeltaState *ds = core->delta_state;
   braid_Int mode = MODE_NONE;
   free_set(core, &ds->prop);
   free_set(core, &ds->recv);
   ds->have_exps = 0;
   switch (kind)
   {
      case _braid_DELTA_RESTRICT:
         if (level + 1 >= core->delta_defer_level && core->iter >= core->delta_defer_iter
             && level >= ds->base)
         {
            mode = MODE_RESTRICT;
         }
         break;
      case _braid_DELTA_RHS:
         if (level >= core->delta_defer_level && core->iter >= core->delta_defer_iter)
         {
            mode = MODE_RHS;
         }
         break;
      case _braid_DELTA_RELAX:
         if (core->lyap_relax && level >= ds->base) mode = MODE_RELAX;
         break;
      case _braid_DELTA_INTERP:
         /* the coarsest level's sequential solve is one chain over the whole trajectory (with
          * cglv); on finer levels each interval's chain starts from the C-point's vectors,
          * which came from the coarser level, so that every finer C-point gets them too */
         if (core->lyapunov && level >= core->delta_defer_level
             && (level < core->nlevels - 1 || core->lyap_cglv))
         {
            mode = MODE_CHAIN;
         }
         break;
      case _braid_DELTA_ACCESS:
         if (core->lyapunov && level == ds->base) mode = MODE_ACCESS;
         break;
      default:
         break;
   }
   ds->kind = kind;
   ds->mode = mode;
   ds->mode_level = level;
   /* the coarse level's basis: injected from the fine level's C-points */
   return kind == _braid_DELTA_RHS ? copy_bases(core, level - 1, level) : 0;
}

braid_Int _braid_DeltaEnd(braid_Core core)
{
   struct _braid_DeltaState *ds = core->delta_state;
   braid_Int level = ds->mode_level;
   if (ds->mode == MODE_RHS) ds->levels[level].d_iter = core->iter;
   ds->mode = MODE_NONE;
   free_set(core, &ds->prop);
   free_set(core, &ds->recv);
   /* the coarse level's Lyapunov vectors replace the finer level's at its C-points */
   if (ds->kind == _braid_DELTA_INTERP && core->lyapunov && level > 0)
   {
      return copy_bases(core, level, level - 1);
   }
   return 0;
}

braid_Int _braid_DeltaIntervalStart(braid_Core core, braid_Int level, braid_Int start)
{
   struct _braid_DeltaState *ds = core->delta_state;
   braid_Vector *src;
   ds->have_exps = 0;
   if (ds->mode == MODE_NONE || ds->mode == MODE_RHS || level != ds->mode_level) return 0;
   src = start >= core->grids[level]->ilower ? psi_at(core, level, start) : ds->recv;
   if (src == NULL)
   {
      return delta_fail(core, "internal error: no basis at point %d of level %d",
                          (int) start, (int) level);
   }
   return clone_set(core, src, &ds->prop);
}

/* ---- steps ---- */

/* Before the user's step into `index` from u (the value at index - 1). */
static braid_Int before_step(braid_Core core, braid_Int level, braid_Int index, braid_Vector u)
{
   struct _braid_DeltaState *ds = core->delta_state;
   delta_level *lv = &ds->levels[level];
   braid_Int r = ds->rank, k, m, err;
   braid_Vector *p;
   ds->apply = ds->rhs = 0;
   if (ds->mode == MODE_RHS && level == ds->mode_level)
   {
      /* the coarse right-hand side's step builds D_index: P = psi at index - 1 */
      braid_Vector *src = index - 1 >= lv->ilower ? psi_at(core, level, index - 1) : ds->recv;
      if (src == NULL || lv->dvec[index - lv->ilower] == NULL)
      {
         return delta_fail(core, "internal error: no basis for Delta at point %d "
                             "of level %d", (int) index, (int) level);
      }
      if ((err = clone_set(core, src, &lv->pvec[index - lv->ilower]))
          || (err = clone_set(core, src, &ds->prop)))
      {
         return err;
      }
      ds->rhs = 1;
   }
   else if (level_active(core, level))
   {
      ds->apply = 1;
   }
   if (ds->rhs || ds->apply)
   {
      p = lv->pvec[index - lv->ilower];
      for (k = 0; k < r; k++)
      {
         if ((err = inner(core, p[k], u, &ds->coef[k]))) return err;
         for (m = 0; ds->apply && ds->prop != NULL && m < r; m++)
         {
            if ((err = inner(core, p[k], ds->prop[m], &ds->coef[r + m * r + k]))) return err;
         }
      }
   }
   if (ds->prop != NULL)
   {
      core->status.delta_rank = r;
      core->status.basis = ds->prop;
   }
   return 0;
}

/* After it (u: the value at index). */
static braid_Int after_step(braid_Core core, braid_Int level, braid_Int index, braid_Vector u)
{
   struct _braid_DeltaState *ds = core->delta_state;
   delta_level *lv = &ds->levels[level];
   braid_Int r = ds->rank, k, m, err;
   braid_Vector *d = (ds->rhs || ds->apply) ? lv->dvec[index - lv->ilower] : NULL;
   if (ds->rhs)
   {
      /* D = T - Phi_L' P */
      for (k = 0; k < r; k++)
      {
         if ((err = axpy(core, -1.0, ds->prop[k], 1.0, d[k]))) return err;
      }
      free_set(core, &ds->prop);
   }
   for (k = 0; d != NULL && k < r; k++)
   {
      if ((err = axpy(core, ds->coef[k], d[k], 1.0, u))) return err;
      for (m = 0; ds->apply && ds->prop != NULL && m < r; m++)
      {
         if ((err = axpy(core, ds->coef[r + m * r + k], d[k], 1.0, ds->prop[m]))) return err;
      }
   }
   ds->rhs = ds->apply = 0;
   if (ds->prop != NULL && level == ds->mode_level && index % core->grids[level]->cfactor == 0
       && (ds->mode == MODE_RESTRICT || ds->mode == MODE_RELAX))
   {
      /* the end of an interval: the carried basis is T of the coarse point (restriction), or
       * orthonormalised the C-point's new basis (relaxation, Lyapunov estimation) */
      braid_Int j = index / core->grids[level]->cfactor;
      delta_level *dst = ds->mode == MODE_RESTRICT ? &ds->levels[level + 1] : lv;
      braid_Vector **slot = ds->mode == MODE_RESTRICT ? &dst->dvec[j - dst->ilower]
                                                     : &dst->psi[index - dst->ilower];
      if (ds->mode == MODE_RELAX && (err = _braid_DeltaGramSchmidt(core, ds->prop, r, ds->exps)))
      {
         return err;
      }
      free_set(core, slot);
      *slot = ds->prop;
      ds->prop = NULL;
      return 0;
   }
   if (ds->prop != NULL && level == ds->mode_level
       && (ds->mode == MODE_CHAIN || ds->mode == MODE_ACCESS))
   {
      /* the QR step of the trajectory: local exponents log R_kk / dt */
      braid_Real dt = _braid_Time(core, level, index) - _braid_Time(core, level, index - 1);
      if ((err = _braid_DeltaGramSchmidt(core, ds->prop, r, ds->exps))) return err;
      for (k = 0; k < r; k++) ds->exps[k] = log(ds->exps[k]) / dt;
      ds->have_exps = 1;
      if (ds->mode == MODE_CHAIN && (err = clone_set(core, ds->prop, &lv->psi[index - lv->ilower])))
      {
         return err;
      }
   }
   return 0;
}

/* core->step while Delta correction is set up: the user's step, with the basis handed to it
 * while a sweep carries one and the correction added on a corrected level. The status says
 * where: level, and tindex = the point the step starts from. */
static braid_Int delta_step(braid_App app, braid_Vector ustop, braid_Vector fstop,
                            braid_Vector u, braid_StepStatus status)
{
   _braid_Status *s = (_braid_Status *) status;
   braid_Core core = s->core;
   braid_Int level = s->level, index = s->tindex + 1;
   braid_Int err = before_step(core, level, index, u);
   if (!err) err = core->delta_state->user_step(app, ustop, fstop, u, status);
   return err ? err : after_step(core, level, index, u);
}

/* ---- access ---- */

void _braid_DeltaAccessStatus(braid_Core core, braid_Int level, braid_Int i, _braid_Status *s)
{
   struct _braid_DeltaState *ds = core->delta_state;
   braid_Vector *b = psi_at(core, level, i);
   if (b != NULL && i % core->grids[level]->cfactor == 0)
   {
      s->basis = b;
   }
   else if (ds->mode == MODE_ACCESS && ds->prop != NULL)
   {
      s->basis = ds->prop;
      if (core->lyap_exponents && ds->have_exps) s->lyap_exps = ds->exps;
   }
   s->delta_rank = s->basis != NULL ? ds->rank : 0;
}

/* ---- messages: the state, then rank basis vectors at 16-byte aligned offsets ---- */

braid_Int _braid_DeltaMessageBytes(braid_Core core, braid_Int *bytes)
{
   struct _braid_DeltaState *ds = core->delta_state;
   _braid_Status *s = _braid_StatusFor(core, 0, -1, 0.0, 0.0, braid_ASCaller_Drive_AfterInit);
   braid_Int size, err, total;
   err = core->bufsize(core->app, &size, (braid_BufferStatus) s);
   if (err) return _braid_CallbackFailed(core, "bufsize", err);
   ds->state_off = _braid_RoundUp(*bytes, 16);
   ds->basis_stride = _braid_RoundUp(s->basis_size >= 0.0 ? (braid_Int) s->basis_size : size, 16);
   s->basis_size = -1.0;
   if (_braid_MulInt(ds->basis_stride, ds->rank, &total)
       || _braid_AddInt(total, ds->state_off, &total))
   {
      return delta_fail(core, "a message with %d basis vectors of %d bytes does not "
                          "fit an int", (int) ds->rank, (int) ds->basis_stride);
   }
   *bytes = total;
   return 0;
}

braid_Int _braid_DeltaPack(braid_Core core, braid_Int level, braid_Int index, void *buffer,
                           braid_Int *bytes)
{
   struct _braid_DeltaState *ds = core->delta_state;
   braid_Vector *b;
   braid_Int k, err;
   if (ds->mode == MODE_NONE) return 0;
   b = ds->prop != NULL ? ds->prop : psi_at(core, level, index);
   if (b == NULL)
   {
      return delta_fail(core, "internal error: no basis to send at point %d of "
                          "level %d", (int) index, (int) level);
   }
   for (k = 0; k < ds->rank; k++)
   {
      _braid_Status *s = _braid_StatusFor(core, level, index, _braid_Time(core, level, index),
                                          0.0, core->status.calling_function);
      err = core->bufpack(core->app, b[k],
                          (char *) buffer + ds->state_off + k * ds->basis_stride,
                          (braid_BufferStatus) s);
      if (err) return _braid_CallbackFailed(core, "bufpack", err);
   }
   *bytes = core->msg_bytes;
   return 0;
}

braid_Int _braid_DeltaUnpack(braid_Core core, braid_Int level, braid_Int index, void *buffer)
{
   struct _braid_DeltaState *ds = core->delta_state;
   braid_Int k, err;
   if (ds->mode == MODE_NONE) return 0;
   free_set(core, &ds->recv);
   ds->recv = (braid_Vector *) _braid_Calloc(core, "a basis", ds->rank, sizeof(braid_Vector));
   if (ds->recv == NULL) return braid_ERROR_MEMORY;
   for (k = 0; k < ds->rank; k++)
   {
      _braid_Status *s = _braid_StatusFor(core, level, index, _braid_Time(core, level, index),
                                          0.0, core->status.calling_function);
      err = core->bufunpack(core->app, (char *) buffer + ds->state_off + k * ds->basis_stride,
                            &ds->recv[k], (braid_BufferStatus) s);
      if (err) return _braid_CallbackFailed(core, "bufunpack", err);
   }
   return 0;
}
