/*
 * Status objects: filling the one status of a core before a callback, and the generic
 * braid_Status* getters and setters that read and steer it (the typed wrappers are in
 * status_typed.c).
 *
 * Every typed handle (braid_StepStatus, braid_AccessStatus, ...) points at the same
 * _braid_Status. Most answers come from the status itself; those about the grids, the
 * residual history and the error estimates are read from its core, which is NULL in the
 * statuses braid_Test* builds: there such getters answer as for a solve that has not
 * started (no history, no estimates) or report braid_ERROR_ARG where an answer needs a grid.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
   s->rnorm = braid_INVALID_RNORM;
   s->tol = 0.0;
   s->f_tprior = s->f_tstop = s->c_tprior = s->c_tstop = 0.0;
   s->size = -1.0;
   s->rfactor = 1;
   s->rdtvalues = NULL;
   s->rdt_copy = NULL;
   s->rdt_capacity = 0;
   s->r_space = 0;
   s->delta_rank = 0;
   s->basis = NULL;
   s->lyap_exps = NULL;
   s->basis_size = -1.0;
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
   s->rnorm = core->rnorm;
   s->tol = core->tol;
   /* requests of the previous callback are gone: the engine read them when it returned */
   s->size = -1.0;
   s->rfactor = 1;
   s->rdtvalues = NULL;
   s->r_space = 0;
   s->delta_rank = 0;
   s->basis = NULL;
   s->lyap_exps = NULL;
   s->basis_size = -1.0;
   return s;
}

_braid_Status *_braid_CoarsenRefStatusFor(braid_Core core, braid_Int level, braid_Int tindex,
                                          braid_Real t, braid_Real f_tprior,
                                          braid_Real f_tstop, braid_Real c_tprior,
                                          braid_Real c_tstop)
{
   _braid_Status *s = _braid_StatusFor(core, level, tindex, t, t,
                                       core->status.calling_function);
   s->f_tprior = f_tprior;
   s->f_tstop = f_tstop;
   s->c_tprior = c_tprior;
   s->c_tstop = c_tstop;
   return s;
}

#define S ((_braid_Status *) status)
#define CHECK(ptr)                                                 \
   do {                                                            \
      if (status == NULL || (ptr) == NULL) return braid_ERROR_ARG; \
   } while (0)

/* The core of a status whose grids exist, and a valid level of it; NULL otherwise. */
static _braid_Core *grids_of(braid_Status status, braid_Int level)
{
   _braid_Core *core = S->core;
   if (core == NULL || core->grids == NULL || level < 0 || level >= core->nlevels) return NULL;
   return core;
}

/* ---- position ---- */

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
braid_Int braid_StatusGetCTprior(braid_Status status, braid_Real *ctprior_ptr)
{ CHECK(ctprior_ptr); *ctprior_ptr = S->c_tprior; return 0; }
braid_Int braid_StatusGetCTstop(braid_Status status, braid_Real *ctstop_ptr)
{ CHECK(ctstop_ptr); *ctstop_ptr = S->c_tstop; return 0; }
braid_Int braid_StatusGetFTprior(braid_Status status, braid_Real *ftprior_ptr)
{ CHECK(ftprior_ptr); *ftprior_ptr = S->f_tprior; return 0; }
braid_Int braid_StatusGetFTstop(braid_Status status, braid_Real *ftstop_ptr)
{ CHECK(ftstop_ptr); *ftstop_ptr = S->f_tstop; return 0; }

braid_Int braid_StatusGetNRefine(braid_Status status, braid_Int *nrefine_ptr)
{
   CHECK(nrefine_ptr);
   *nrefine_ptr = S->core != NULL ? S->core->nrefine : 0;
   return 0;
}

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

braid_Int braid_StatusGetTpriorTstop(braid_Status status, braid_Real *t_ptr,
                                     braid_Real *ftprior_ptr, braid_Real *ftstop_ptr,
                                     braid_Real *ctprior_ptr, braid_Real *ctstop_ptr)
{
   CHECK(t_ptr);
   CHECK(ftprior_ptr);
   CHECK(ftstop_ptr);
   CHECK(ctprior_ptr);
   CHECK(ctstop_ptr);
   *t_ptr = S->t;
   *ftprior_ptr = S->f_tprior;
   *ftstop_ptr = S->f_tstop;
   *ctprior_ptr = S->c_tprior;
   *ctstop_ptr = S->c_tstop;
   return 0;
}

/* ---- the grids ---- */

braid_Int braid_StatusGetTIUL(braid_Status status, braid_Int *iloc_upper,
                              braid_Int *iloc_lower, braid_Int level)
{
   _braid_Core *core;
   CHECK(iloc_upper);
   CHECK(iloc_lower);
   if ((core = grids_of(status, level)) == NULL) return braid_ERROR_ARG;
   *iloc_lower = core->grids[level]->ilower;
   *iloc_upper = core->grids[level]->iupper;
   return 0;
}

braid_Int braid_StatusGetTimeValues(braid_Status status, braid_Real **tvalues_ptr,
                                    braid_Int i_upper, braid_Int i_lower, braid_Int level)
{
   _braid_Core *core;
   const _braid_Grid *g;
   braid_Int i;
   CHECK(tvalues_ptr);
   if ((core = grids_of(status, level)) == NULL) return braid_ERROR_ARG;
   g = core->grids[level];
   if (i_upper < i_lower) return 0; /* an empty range */
   /* ta[] holds this rank's points and one neighbour on each side */
   if (*tvalues_ptr == NULL || i_lower < g->ilower - 1 || i_upper > g->iupper + 1)
   {
      return braid_ERROR_ARG;
   }
   for (i = i_lower; i <= i_upper; i++)
   {
      (*tvalues_ptr)[i - i_lower] = g->ta[i - g->ilower];
   }
   return 0;
}

braid_Int braid_StatusGetCFactor(braid_Status status, braid_Int *cfactor_ptr, braid_Int level)
{
   _braid_Core *core;
   CHECK(cfactor_ptr);
   if ((core = grids_of(status, level)) == NULL) return braid_ERROR_ARG;
   *cfactor_ptr = core->grids[level]->cfactor;
   return 0;
}

braid_Int braid_StatusGetProc(braid_Status status, braid_Int *proc_ptr, braid_Int level,
                              braid_Int index)
{
   _braid_Core *core;
   CHECK(proc_ptr);
   if ((core = grids_of(status, level)) == NULL) return braid_ERROR_ARG;
   return _braid_GetProc(core, level, index, proc_ptr);
}

braid_Int braid_StatusGetTComm(braid_Status status, MPI_Comm *comm_ptr)
{
   CHECK(comm_ptr);
   if (S->core == NULL) return braid_ERROR_ARG;
   *comm_ptr = S->core->comm;
   return 0;
}

/* ---- the residual history ---- */

braid_Int braid_StatusGetRNorms(braid_Status status, braid_Int *nrequest_ptr,
                                braid_Real *rnorms)
{
   CHECK(nrequest_ptr);
   if (rnorms == NULL && *nrequest_ptr != 0) return braid_ERROR_ARG;
   if (S->core == NULL)
   {
      *nrequest_ptr = 0;
      return 0;
   }
   return braid_GetRNorms((braid_Core) S->core, nrequest_ptr, rnorms);
}

/* ---- Richardson error estimates (core->estimate, level-0 points of this rank) ---- */

/* The estimate at fine point i, -1 when there is none. */
static braid_Real estimate_at(const _braid_Core *core, braid_Int i)
{
   const _braid_Grid *g;
   if (core == NULL || core->estimate == NULL || core->grids == NULL) return -1.0;
   g = core->grids[0];
   if (i < g->ilower || i > g->iupper) return -1.0;
   return core->estimate[i - g->ilower];
}

braid_Int braid_StatusGetSingleErrorEstStep(braid_Status status, braid_Real *estimate)
{
   CHECK(estimate);
   /* step advances point tindex to tindex + 1: the estimate belongs to the point it makes */
   *estimate = S->level == 0 ? estimate_at(S->core, S->tindex + 1) : -1.0;
   return 0;
}

braid_Int braid_StatusGetSingleErrorEstAccess(braid_Status status, braid_Real *estimate)
{
   CHECK(estimate);
   *estimate = S->level == 0 ? estimate_at(S->core, S->tindex) : -1.0;
   return 0;
}

braid_Int braid_StatusGetNumErrorEst(braid_Status status, braid_Int *npoints)
{
   const _braid_Core *core;
   CHECK(npoints);
   core = S->core;
   *npoints = core != NULL && core->est_error && core->grids != NULL
                 ? core->grids[0]->nupoints : 0;
   return 0;
}

braid_Int braid_StatusGetAllErrorEst(braid_Status status, braid_Real *error_est)
{
   braid_Int n, k, err;
   if (status == NULL) return braid_ERROR_ARG;
   if ((err = braid_StatusGetNumErrorEst(status, &n))) return err;
   if (n == 0) return 0;
   if (error_est == NULL) return braid_ERROR_ARG;
   for (k = 0; k < n; k++)
   {
      error_est[k] = estimate_at(S->core, S->core->grids[0]->ilower + k);
   }
   return 0;
}

/* ---- steering: per-call requests, read by the engine after the callback ---- */

braid_Int braid_StatusSetSize(braid_Status status, braid_Real size)
{
   if (status == NULL || !(size >= 0.0)) return braid_ERROR_ARG;
   S->size = size;
   return 0;
}

/* rfactor as a number of intervals: its integer part, at least 1. */
static braid_Int rfactor_value(braid_Real rfactor, braid_Int *value)
{
   if (!(rfactor >= 1.0) || !(rfactor < 2147483648.0)) return braid_ERROR_ARG;
   *value = (braid_Int) rfactor;
   return 0;
}

braid_Int braid_StatusSetRFactor(braid_Status status, braid_Real rfactor)
{
   braid_Int value;
   if (status == NULL || rfactor_value(rfactor, &value)) return braid_ERROR_ARG;
   S->rfactor = value;
   S->rdtvalues = NULL;
   return 0;
}

braid_Int braid_StatusSetRefinementDtValues(braid_Status status, braid_Real rfactor,
                                            braid_Real *dtarray)
{
   braid_Int value, k;
   if (status == NULL || rfactor_value(rfactor, &value)) return braid_ERROR_ARG;
   for (k = 0; dtarray != NULL && k < value - 1; k++)
   {
      if (!(dtarray[k] > 0.0) || isinf(dtarray[k])) return braid_ERROR_ARG;
   }
   S->rdtvalues = NULL;
   if (dtarray != NULL && value > 1)
   {
      /* the user's array may live on the step callback's stack: keep a copy */
      if (S->rdt_capacity < value - 1)
      {
         braid_Real *grown = (braid_Real *) realloc(S->rdt_copy,
                                                    (size_t) (value - 1) * sizeof(braid_Real));
         if (grown == NULL) return braid_ERROR_MEMORY;
         S->rdt_copy = grown;
         S->rdt_capacity = value - 1;
      }
      memcpy(S->rdt_copy, dtarray, (size_t) (value - 1) * sizeof(braid_Real));
      S->rdtvalues = S->rdt_copy;
   }
   S->rfactor = value;
   return 0;
}

braid_Int braid_StatusSetRSpace(braid_Status status, braid_Real r_space)
{
   if (status == NULL || r_space != r_space) return braid_ERROR_ARG;
   S->r_space = r_space != 0.0;
   return 0;
}

/* ---- the spatial-solve tolerance memory (kept by the core across calls) ---- */

braid_Int braid_StatusGetOldFineTolx(braid_Status status, braid_Real *old_fine_tolx_ptr)
{
   CHECK(old_fine_tolx_ptr);
   *old_fine_tolx_ptr = S->core != NULL ? S->core->old_fine_tolx : -1.0;
   return 0;
}

braid_Int braid_StatusSetOldFineTolx(braid_Status status, braid_Real old_fine_tolx)
{
   if (status == NULL || old_fine_tolx != old_fine_tolx) return braid_ERROR_ARG;
   if (S->core != NULL) S->core->old_fine_tolx = old_fine_tolx;
   return 0;
}

braid_Int braid_StatusSetTightFineTolx(braid_Status status, braid_Real tight_fine_tolx)
{
   if (status == NULL || tight_fine_tolx != tight_fine_tolx) return braid_ERROR_ARG;
   if (S->core != NULL) S->core->tight_fine_tolx = tight_fine_tolx != 0.0;
   return 0;
}

/* ---- braid_GetSpatialAccuracy ---- */

/* The first and the last residual norm of the history that were computed (>= 0); 0 when
 * the history has none yet. */
static braid_Int residual_range(const _braid_Core *core, braid_Real *first, braid_Real *last)
{
   braid_Int k, lo = -1, hi = -1;
   for (k = 0; k < core->nrnorms; k++)
   {
      if (core->rnorms[k] >= 0.0)
      {
         if (lo < 0) lo = k;
         hi = k;
      }
   }
   if (lo < 0) return 0;
   *first = core->rnorms[lo];
   *last = core->rnorms[hi];
   return 1;
}

/*
 * How far the solve has come from its first residual r0 to the halting threshold
 * (tol * r0 with a relative tolerance, tol otherwise), on a log scale: 0 at r0 (or above),
 * 1 at the threshold (or below).
 */
static braid_Real progress(const _braid_Core *core, braid_Real r0, braid_Real r)
{
   braid_Real threshold = core->rtol ? core->tol * r0 : core->tol, p;
   if (!(r > threshold) || !(r0 > threshold)) return 1.0;
   if (r >= r0) return 0.0;
   p = log(r0 / r) / log(r0 / threshold);
   return p < 0.0 ? 0.0 : (p > 1.0 ? 1.0 : p);
}

braid_Int braid_GetSpatialAccuracy(braid_StepStatus status, braid_Real loose_tol,
                                   braid_Real tight_tol, braid_Real *tol_ptr)
{
   _braid_Core *core;
   braid_Real r0, r, p, tol;
   CHECK(tol_ptr);
   if (!(tight_tol > 0.0) || isinf(tight_tol) || !(loose_tol > 0.0) || isinf(loose_tol))
   {
      return braid_ERROR_ARG;
   }
   if (loose_tol < tight_tol) loose_tol = tight_tol; /* nothing looser than tight_tol */
   core = S->core;

   /* Without a user residual the engine measures residuals with step itself, so every
    * step must be accurate; the same outside a solve (braid_Test*). */
   if (core == NULL || core->residual == NULL)
   {
      *tol_ptr = tight_tol;
      if (core != NULL && S->level == 0) core->tight_fine_tolx = 1;
      return 0;
   }
   /* Coarse levels only shape the correction: a loose solve is enough there. */
   if (S->level > 0)
   {
      *tol_ptr = loose_tol;
      return 0;
   }
   /* Fine grid, no residual measured yet: nothing tells how far the solve is, so stay on
    * the safe side; this is not remembered, the taper below starts once there is one. */
   if (!residual_range(core, &r0, &r))
   {
      *tol_ptr = tight_tol;
      core->tight_fine_tolx = 1;
      return 0;
   }
   /* Fine grid: from loose_tol to tight_tol, geometrically, as the residual falls from r0
    * to the halting threshold; the same history on every rank gives every rank the same
    * tolerance. Never looser than the fine tolerance used before, so that the fine-grid
    * problem only ever gets more accurate. */
   p = progress(core, r0, r);
   if (p >= 1.0) tol = tight_tol;
   else if (p <= 0.0) tol = loose_tol;
   else tol = exp(log(loose_tol) + p * (log(tight_tol) - log(loose_tol)));
   if (core->old_fine_tolx > 0.0 && tol > core->old_fine_tolx) tol = core->old_fine_tolx;
   if (tol <= tight_tol) tol = tight_tol;
   core->old_fine_tolx = tol;
   core->tight_fine_tolx = tol == tight_tol;
   *tol_ptr = tol;
   return 0;
}
