/*
 * The time-grid hierarchy and how its points are distributed over the ranks.
 *
 * The ntime + 1 fine points are split in contiguous blocks, the first (ntime+1) % nprocs
 * ranks holding one point more. A coarse point lives on the rank that owns the same time on
 * the fine grid, so restriction and interpolation never communicate.
 */
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

/* Block of fine points held by block number b (a rank, or its mirror with reverted ranks). */
static void fine_block(braid_Int npoints, int nblocks, int b, braid_Int *lo, braid_Int *hi)
{
   braid_Int quo = npoints / nblocks, rem = npoints % nblocks;
   *lo = (braid_Int) b * quo + (b < rem ? b : rem);
   *hi = *lo + quo + (b < rem ? 1 : 0) - 1;
}

static int my_block(braid_Core core)
{
   return core->reverted_ranks ? core->nprocs - 1 - core->myid : core->myid;
}

int _braid_Owner(braid_Core core, braid_Int level, braid_Int index)
{
   braid_Int fine = index * core->grids[level].fine_stride;
   braid_Int npoints = core->ntime + 1;
   braid_Int quo = npoints / core->nprocs, rem = npoints % core->nprocs;
   braid_Int split = rem * (quo + 1);  /* first point of the shorter blocks */
   int block = fine < split ? (int) (fine / (quo + 1)) : (int) (rem + (fine - split) / quo);
   return core->reverted_ranks ? core->nprocs - 1 - block : block;
}

braid_Real _braid_Time(braid_Core core, braid_Int level, braid_Int index)
{
   braid_Int fine = index * core->grids[level].fine_stride;
   return core->tstart + (((braid_Real) fine) / core->ntime) * (core->tstop - core->tstart);
}

void _braid_CRange(const _braid_Grid *grid, braid_Int cfactor, braid_Int *clower,
                   braid_Int *cupper)
{
   /* first multiple of cfactor >= ilower, last <= iupper (indices are >= 0); a first
    * multiple beyond INT_MAX is INT_MAX, past every index (iupper <= ntime < INT_MAX) */
   *clower = _braid_RoundUp(grid->ilower, cfactor);
   *cupper = (grid->iupper / cfactor) * cfactor;
}

braid_Vector _braid_Stored(braid_Core core, braid_Int level, braid_Int index)
{
   const _braid_Grid *g = &core->grids[level];
   return g->ua[index - g->ilower];
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

braid_Int _braid_BuildHierarchy(braid_Core core)
{
   _braid_Grid levels[_BRAID_MAX_LEVELS];
   braid_Int nlevels = 0, level, npoints;
   braid_Int gupper = core->ntime, stride = 1, ilower, iupper;

   /* braid_Init keeps ntime <= _BRAID_MAX_NTIME: the points and every index of them fit a
    * braid_Int; the level loop keeps stride * cfactor <= ntime and each index <= gupper. */
   if (_braid_AddInt(core->ntime, 1, &npoints))
   {
      return _braid_Error("braid_Drive", "ntime = %d is too large: it must be in [1, %d]",
                          (int) core->ntime, _BRAID_MAX_NTIME);
   }
   memset(levels, 0, sizeof(levels));
   fine_block(npoints, core->nprocs, my_block(core), &ilower, &iupper);
   for (;;)
   {
      _braid_Grid *g = &levels[nlevels];
      braid_Int cf = _braid_LevelCFactor(core, nlevels);
      g->ilower = ilower;
      g->iupper = iupper;
      g->gupper = gupper;
      g->fine_stride = stride;
      g->store_all = core->storage == 0 || (core->storage > 0 && nlevels >= core->storage);
      nlevels++;
      /* coarsen while allowed and the coarse grid keeps at least min_coarse intervals */
      if (nlevels >= core->max_levels || nlevels >= _BRAID_MAX_LEVELS
          || gupper / cf < core->min_coarse)
      {
         g->cfactor = gupper + 1; /* coarsest: only point 0 is a C-point (gupper < INT_MAX) */
         break;
      }
      g->cfactor = cf;
      ilower = _braid_CeilDiv(ilower, cf);
      iupper = iupper / cf;
      gupper = gupper / cf;
      if (_braid_MulInt(stride, cf, &stride))
      {
         return _braid_Error("braid_Drive", "the coarsening factors overflow the fine-grid "
                             "index at level %d (ntime = %d)", (int) nlevels, (int) core->ntime);
      }
   }

   core->grids = (_braid_Grid *) _braid_Calloc(core, "the time-grid hierarchy", nlevels,
                                               sizeof(_braid_Grid));
   if (core->grids == NULL) return braid_ERROR_MEMORY;
   core->nlevels = nlevels;
   for (level = 0; level < nlevels; level++)
   {
      _braid_Grid *g = &core->grids[level];
      braid_Int n = levels[level].iupper - levels[level].ilower + 1;
      *g = levels[level];
      g->ua = alloc_vectors(core, "vector", level, n);
      if (g->ua != NULL && level > 0)
      {
         g->va = alloc_vectors(core, "restricted-vector", level, n);
         if (g->va != NULL) g->fa = alloc_vectors(core, "FAS right-hand-side", level, n);
      }
      if (g->ua == NULL || (level > 0 && g->fa == NULL))
      {
         _braid_FreeHierarchy(core); /* braid_ERROR_MEMORY is already reported */
         return braid_ERROR_MEMORY;
      }
   }
   return 0;
}

static void free_array(braid_Core core, braid_Vector *a, braid_Int n)
{
   braid_Int k;
   if (a == NULL) return;
   for (k = 0; k < n; k++)
   {
      if (a[k] != NULL) core->free(core->app, a[k]);
   }
   free(a);
}

void _braid_FreeHierarchy(braid_Core core)
{
   braid_Int level;
   if (core->grids == NULL) return;
   for (level = 0; level < core->nlevels; level++)
   {
      _braid_Grid *g = &core->grids[level];
      braid_Int n = g->iupper - g->ilower + 1;
      free_array(core, g->ua, n);
      free_array(core, g->va, n);
      free_array(core, g->fa, n);
   }
   free(core->grids);
   core->grids = NULL;
   core->nlevels = 0;
}
