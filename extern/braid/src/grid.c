/*
 * The time-grid hierarchy and how its points are distributed over the ranks.
 *
 * The ntime + 1 fine points are split in contiguous blocks, the first (ntime+1) % nprocs
 * ranks holding one point more. A coarse point lives on the rank that owns the same time on
 * the fine grid, so restriction and interpolation never communicate.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

int _braid_Owner(braid_Core core, braid_Int level, braid_Int index)
{
   braid_Int fine, proc, npoints = core->grids[level]->gupper + 1;
   if (core->periodic) index = ((index % npoints) + npoints) % npoints;
   fine = index * core->grids[level]->fine_stride;
   if (core->reverted_ranks) fine = core->gupper - fine;
   _braid_GetBlockDistProc(core->gupper + 1, core->nprocs, fine, 0, &proc);
   return (int) proc;
}

braid_Real _braid_FineTime(braid_Core core, braid_Int fine)
{
   if (core->fine_times != NULL && fine >= core->fine_times_lo && fine <= core->fine_times_hi)
   {
      return core->fine_times[fine - core->fine_times_lo];
   }
   return core->tstart + (((braid_Real) fine) / core->ntime) * (core->tstop - core->tstart);
}

/* Time of point index of a level with the given stride, also for the neighbours beyond the
 * last point, whose fine index may not fit a braid_Int (uniform extrapolation there). */
static braid_Real level_time(braid_Core core, braid_Int stride, braid_Int index)
{
   braid_Int fine;
   if (_braid_MulInt(index, stride, &fine))
   {
      return core->tstart + ((braid_Real) index * stride / core->ntime) * (core->tstop - core->tstart);
   }
   return _braid_FineTime(core, fine);
}

braid_Real _braid_TimeFar(braid_Core core, braid_Int level, braid_Int index)
{
   return level_time(core, core->grids[level]->fine_stride, index);
}

void _braid_CRange(const _braid_Grid *grid, braid_Int cfactor, braid_Int *clower,
                   braid_Int *cupper)
{
   /* first multiple of cfactor >= ilower, last <= iupper (indices are >= 0); a first
    * multiple beyond INT_MAX is INT_MAX, past every index (iupper <= ntime < INT_MAX) */
   *clower = _braid_RoundUp(grid->ilower, cfactor);
   *cupper = (grid->iupper / cfactor) * cfactor;
}

braid_Int _braid_FreeVector(braid_Core core, braid_Vector *u)
{
   braid_Int err = 0;
   if (*u != NULL)
   {
      err = core->free(core->app, *u);
      *u = NULL;
      if (err) return _braid_CallbackFailed(core, "free", err);
   }
   return 0;
}

braid_Int _braid_CopyInto(braid_Core core, braid_Vector src, braid_Vector *dst)
{
   braid_Int err;
   if (*dst == NULL)
   {
      err = core->clone(core->app, src, dst);
      if (err) return _braid_CallbackFailed(core, "clone", err);
   }
   else
   {
      /* dst = 1 * src + 0 * dst reuses dst's memory */
      err = core->sum(core->app, 1.0, src, 0.0, *dst);
      if (err) return _braid_CallbackFailed(core, "sum", err);
   }
   return 0;
}

/* Slots for the n vectors of one array of `level` (n <= 0: an empty block). */
static braid_Vector *alloc_vectors(braid_Core core, const char *array, braid_Int level,
                                   braid_Int n)
{
   char what[96];
   if (n < 0) n = 0;
   snprintf(what, sizeof(what), "the %d %s slots of level %d", (int) n, array, (int) level);
   return (braid_Vector *) _braid_Calloc(core, what, n, sizeof(braid_Vector));
}

/* Last point of the level coarsened from one ending at gupper with spacing cf. A periodic
 * level's points 0..gupper wrap around, so it keeps (gupper + 1) / cf of them. */
static braid_Int coarse_gupper(braid_Core core, braid_Int gupper, braid_Int cf)
{
   return core->periodic ? (gupper + 1) / cf - 1 : gupper / cf;
}

/* The user's time grid: the times of every fine point some level of this rank needs (its
 * points and one neighbour on each side). */
static braid_Int fetch_time_grid(braid_Core core, _braid_Grid *levels, braid_Int nlevels)
{
   braid_Int lo = core->ntime, hi = 0, level, ilower, iupper, err;
   for (level = 0; level < nlevels; level++)
   {
      const _braid_Grid *g = &levels[level];
      braid_Int first, last;
      if (g->ilower > g->iupper) continue;
      first = (g->ilower > 0 ? g->ilower - 1 : 0) * g->fine_stride;
      if (level == 0 && (core->richardson || core->est_error))
      {
         /* Richardson: the whole intervals around this rank's points */
         first = g->ilower > g->cfactor ? g->ilower - g->cfactor : 0;
      }
      /* the right neighbour's fine index is at most ntime (in long long: it may not fit) */
      last = (braid_Int) (g->iupper < g->gupper
                             ? (long long) (g->iupper + 1) * g->fine_stride
                             : (long long) g->iupper * g->fine_stride);
      if (core->periodic && g->iupper == g->gupper) last = core->ntime;
      if (level == 0 && (core->richardson || core->est_error))
      {
         last = g->iupper < core->ntime - g->cfactor ? g->iupper + g->cfactor : core->ntime;
      }
      if (first < lo) lo = first;
      if (last > hi) hi = last;
   }
   if (lo > hi) return 0;
   if (core->periodic)
   {
      lo = 0; /* the wrap-around neighbours need the last interval's times */
      hi = core->ntime;
   }
   core->fine_times = (braid_Real *) _braid_Calloc(core, "the user's time grid",
                                                   (braid_Int) (hi - lo + 1), sizeof(braid_Real));
   if (core->fine_times == NULL) return braid_ERROR_MEMORY;
   ilower = lo;
   iupper = hi;
   err = core->tgrid(core->app, core->fine_times, &ilower, &iupper);
   if (err) return _braid_CallbackFailed(core, "tgrid", err);
   core->fine_times_lo = lo;
   core->fine_times_hi = hi;
   return 0;
}

static braid_Int alloc_level(braid_Core core, _braid_Grid *g)
{
   braid_Int n = g->nupoints, k;
   char what[96];
   snprintf(what, sizeof(what), "the %d stored points of level %d", (int) n, (int) g->level);
   g->ua_alloc = (_braid_BaseVector *) _braid_Calloc(core, what, n, sizeof(_braid_BaseVector));
   if (g->ua_alloc == NULL) return braid_ERROR_MEMORY;
   g->ua = (braid_BaseVector *) _braid_Calloc(core, what, n, sizeof(braid_BaseVector));
   if (g->ua == NULL) return braid_ERROR_MEMORY;
   if (n > INT_MAX - 2)
   {
      return _braid_OutOfMemory(core, "the times of a level (more than INT_MAX entries)", n, 1);
   }
   g->ta_alloc = (braid_Real *) _braid_Calloc(core, "the times of a level", n + 2,
                                              sizeof(braid_Real));
   if (g->ta_alloc == NULL) return braid_ERROR_MEMORY;
   g->ta = g->ta_alloc + 1; /* ta[-1] and ta[n]: the neighbours' times */
   for (k = 0; k < n; k++) g->ua[k] = &g->ua_alloc[k];
   for (k = -1; k <= n; k++)
   {
      g->ta[k] = level_time(core, g->fine_stride, g->ilower + k);
   }
   if (core->periodic && g->ilower == 0)
   {
      /* point -1 is the last point of the previous period */
      g->ta[-1] = _braid_FineTime(core, g->gupper * g->fine_stride) - (core->tstop - core->tstart);
   }
   if (g->level > 0)
   {
      g->va = alloc_vectors(core, "restricted-vector", g->level, n);
      if (g->va != NULL) g->fa = alloc_vectors(core, "FAS right-hand-side", g->level, n);
      if (g->fa == NULL) return braid_ERROR_MEMORY;
   }
   return 0;
}

braid_Int _braid_BuildHierarchy(braid_Core core)
{
   _braid_Grid levels[_BRAID_MAX_LEVELS];
   braid_Int nlevels = 0, level, err;
   braid_Int gupper = core->gupper, stride = 1, ilower, iupper;

   /* braid_Init keeps ntime <= _BRAID_MAX_NTIME: the points and every index of them fit a
    * braid_Int; the level loop keeps stride * cfactor <= ntime and each index <= gupper. */
   memset(levels, 0, sizeof(levels));
   /* this rank's block, mirrored with reverted ranks (semiprivate.c) */
   _braid_GetDistribution(core, &ilower, &iupper);
   for (;;)
   {
      _braid_Grid *g = &levels[nlevels];
      braid_Int cf = _braid_LevelCFactor(core, nlevels);
      g->level = nlevels;
      g->ilower = ilower;
      g->iupper = iupper;
      g->gupper = gupper;
      g->nupoints = iupper >= ilower ? iupper - ilower + 1 : 0;
      g->fine_stride = stride;
      g->store_all = core->storage == 0 || (core->storage > 0 && nlevels >= core->storage);
      nlevels++;
      /* coarsen while allowed and the coarse grid keeps at least min_coarse intervals */
      if (nlevels >= core->max_levels || nlevels >= _BRAID_MAX_LEVELS
          || coarse_gupper(core, gupper, cf) < core->min_coarse)
      {
         /* coarsest: only point 0 is a C-point (a sequential solve), unless it is relaxed */
         g->cfactor = core->periodic || core->relax_only_cg ? cf : gupper + 1;
         break;
      }
      if (core->periodic && (gupper + 1) % cf != 0)
      {
         return _braid_Error("braid_Drive", "periodic: the %d points of level %d are not "
                             "divisible by its cfactor %d; choose ntime divisible by "
                             "cfactor^(levels - 1)", (int) (gupper + 1), (int) (nlevels - 1),
                             (int) cf);
      }
      g->cfactor = cf;
      ilower = _braid_CeilDiv(ilower, cf);
      iupper = iupper / cf;
      gupper = coarse_gupper(core, gupper, cf);
      if (_braid_MulInt(stride, cf, &stride))
      {
         return _braid_Error("braid_Drive", "the coarsening factors overflow the fine-grid "
                             "index at level %d (ntime = %d)", (int) nlevels, (int) core->ntime);
      }
   }
   for (level = 0; level < nlevels; level++)
   {
      _braid_Grid *g = &levels[level];
      _braid_CRange(g, g->cfactor, &g->clower, &g->cupper);
      g->ncpoints = g->cupper >= g->clower ? (g->cupper - g->clower) / g->cfactor + 1 : 0;
   }
   /* after a temporal refinement fine_times already holds the refined grid (refine.c) */
   if (core->tgrid != NULL && core->fine_times == NULL
       && (err = fetch_time_grid(core, levels, nlevels)))
   {
      return err;
   }

   core->grids = (_braid_Grid **) _braid_Calloc(core, "the time-grid hierarchy", nlevels,
                                                sizeof(_braid_Grid *));
   if (core->grids == NULL) return braid_ERROR_MEMORY;
   core->nlevels = nlevels;
   for (level = 0; level < nlevels; level++)
   {
      core->grids[level] = (_braid_Grid *) _braid_Calloc(core, "a time grid", 1,
                                                         sizeof(_braid_Grid));
      if (core->grids[level] == NULL) break;
      *core->grids[level] = levels[level];
      if ((err = alloc_level(core, core->grids[level]))) break;
   }
   if (level < nlevels)
   {
      _braid_FreeHierarchy(core); /* braid_ERROR_MEMORY is already reported */
      return braid_ERROR_MEMORY;
   }
   return 0;
}

void _braid_FreeVectors(braid_Core core, braid_Vector **a, braid_Int n)
{
   braid_Int k;
   if (*a == NULL) return;
   for (k = 0; k < n; k++)
   {
      if ((*a)[k] != NULL) core->free(core->app, (*a)[k]);
   }
   free(*a);
   *a = NULL;
}

void _braid_FreeHierarchy(braid_Core core)
{
   braid_Int level, k;
   if (core->grids == NULL) return;
   for (level = 0; level < core->nlevels; level++)
   {
      _braid_Grid *g = core->grids[level];
      if (g == NULL) continue;
      if (g->ua_alloc != NULL)
      {
         for (k = 0; k < g->nupoints; k++)
         {
            if (g->ua_alloc[k].userVector != NULL) core->free(core->app, g->ua_alloc[k].userVector);
         }
      }
      free(g->ua_alloc);
      free(g->ua);
      free(g->ta_alloc);
      _braid_FreeVectors(core, &g->va, g->nupoints);
      _braid_FreeVectors(core, &g->fa, g->nupoints);
      if (g->ulast != NULL) core->free(core->app, g->ulast);
      free(g);
   }
   free(core->grids);
   core->grids = NULL;
   core->nlevels = 0;
   free(core->fine_times);
   core->fine_times = NULL;
   _braid_RefineFree(core); /* the refinement requests of this hierarchy's fine grid */
   _braid_RichardsonFree(core);
   free(core->estimate); /* per point of the hierarchy's fine grid */
   core->estimate = NULL;
}
