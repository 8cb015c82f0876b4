/*
 * The semi-private surface of the interface (_braid.h, util.h): the distribution of time
 * points over ranks, references to stored vectors, and small utilities that programs built
 * on XBraid call. Everything here reads the engine's own data.
 */
#include <stdarg.h>

#include "core_internal.h"
#include "util.h"

FILE *_braid_printfile = NULL;

braid_Int _braid_GetBlockDistInterval(braid_Int npoints, braid_Int nprocs, braid_Int proc,
                                      braid_Int *ilower_ptr, braid_Int *iupper_ptr)
{
   braid_Int quo, rem;
   if (nprocs < 1 || npoints < 0 || ilower_ptr == NULL || iupper_ptr == NULL)
   {
      return braid_ERROR_ARG;
   }
   quo = npoints / nprocs;
   rem = npoints % nprocs;
   *ilower_ptr = proc * quo + (proc < rem ? proc : rem);
   *iupper_ptr = *ilower_ptr + quo + (proc < rem ? 1 : 0) - 1;
   return 0;
}

braid_Int _braid_GetBlockDistProc(braid_Int npoints, braid_Int nprocs, braid_Int index,
                                  braid_Int periodic, braid_Int *proc_ptr)
{
   braid_Int quo, rem, split;
   if (nprocs < 1 || npoints < 0 || proc_ptr == NULL) return braid_ERROR_ARG;
   if (periodic && npoints > 0) index = ((index % npoints) + npoints) % npoints;
   if (index < 0 || index >= npoints)
   {
      *proc_ptr = -1;
      return 0;
   }
   quo = npoints / nprocs;
   rem = npoints % nprocs;
   split = rem * (quo + 1); /* first point of the shorter blocks */
   *proc_ptr = index < split ? index / (quo + 1) : rem + (index - split) / quo;
   return 0;
}

braid_Int _braid_GetDistribution(braid_Core core, braid_Int *ilower_ptr, braid_Int *iupper_ptr)
{
   braid_Int n, lo, hi;
   if (core == NULL || ilower_ptr == NULL || iupper_ptr == NULL) return braid_ERROR_ARG;
   n = core->gupper;
   _braid_GetBlockDistInterval(n + 1, core->nprocs, core->myid, &lo, &hi);
   if (core->reverted_ranks && lo <= hi)
   {
      *ilower_ptr = n - hi;
      *iupper_ptr = n - lo;
   }
   else
   {
      *ilower_ptr = lo;
      *iupper_ptr = hi;
   }
   return 0;
}

braid_Int _braid_GetProc(braid_Core core, braid_Int level, braid_Int index, braid_Int *proc_ptr)
{
   braid_Int gupper;
   if (core == NULL || proc_ptr == NULL || core->grids == NULL || level < 0
       || level >= core->nlevels)
   {
      return braid_ERROR_ARG;
   }
   gupper = core->grids[level]->gupper;
   if (core->periodic) index = ((index % (gupper + 1)) + gupper + 1) % (gupper + 1);
   *proc_ptr = index < 0 || index > gupper ? -1 : _braid_Owner(core, level, index);
   return 0;
}

braid_Int _braid_GetCFactor(braid_Core core, braid_Int level, braid_Int *cfactor_ptr)
{
   if (core == NULL || cfactor_ptr == NULL || level < 0) return braid_ERROR_ARG;
   if (core->grids != NULL && level < core->nlevels) *cfactor_ptr = core->grids[level]->cfactor;
   else *cfactor_ptr = _braid_LevelCFactor(core, level);
   return 0;
}

braid_Int _braid_UGetIndex(braid_Core core, braid_Int level, braid_Int index,
                           braid_Int *uindex_ptr, braid_Int *store_flag_ptr)
{
   const _braid_Grid *g;
   if (core == NULL || uindex_ptr == NULL || store_flag_ptr == NULL || core->grids == NULL
       || level < 0 || level >= core->nlevels)
   {
      return braid_ERROR_ARG;
   }
   g = core->grids[level];
   *uindex_ptr = -1;
   *store_flag_ptr = -2;
   if (index >= g->ilower && index <= g->iupper
       && g->ua[index - g->ilower]->userVector != NULL)
   {
      /* F-points of a level without full storage hold shells (braid_SetShell) */
      *uindex_ptr = index - g->ilower;
      *store_flag_ptr = !g->store_all && index % g->cfactor != 0 ? -1 : 0;
   }
   return 0;
}

braid_Int _braid_UGetVectorRef(braid_Core core, braid_Int level, braid_Int index,
                               braid_BaseVector *u_ptr)
{
   braid_Int iu, flag, err;
   if (u_ptr == NULL) return braid_ERROR_ARG;
   *u_ptr = NULL;
   if ((err = _braid_UGetIndex(core, level, index, &iu, &flag))) return err;
   if (flag > -2) *u_ptr = core->grids[level]->ua[iu];
   return 0;
}

braid_Int braid_UGetLast(braid_Core core, braid_Vector *u_ptr)
{
   const _braid_Grid *g;
   if (core == NULL || u_ptr == NULL) return braid_ERROR_ARG;
   *u_ptr = NULL;
   if (core->grids == NULL) return 0;
   g = core->grids[0];
   if (g->ulast != NULL) *u_ptr = g->ulast;
   else if (g->ilower <= g->gupper && g->gupper <= g->iupper) *u_ptr = _braid_Stored(core, 0, g->gupper);
   return 0;
}

/* ---- util.h ---- */

braid_Int _braid_ProjectInterval(braid_Int ilower, braid_Int iupper, braid_Int index,
                                 braid_Int stride, braid_Int *pilower, braid_Int *piupper)
{
   braid_Int r;
   if (stride < 1 || pilower == NULL || piupper == NULL) return braid_ERROR_ARG;
   r = ((ilower - index) % stride + stride) % stride; /* ilower + (stride - r) % stride is on it */
   *pilower = ilower + (r == 0 ? 0 : stride - r);
   r = ((iupper - index) % stride + stride) % stride;
   *piupper = iupper - r;
   return 0;
}

braid_Int _braid_GetInterval(braid_Core core, braid_Int level, braid_Int interval_index,
                             braid_Int *flo_ptr, braid_Int *fhi_ptr, braid_Int *ci_ptr)
{
   const _braid_Grid *g;
   braid_Int cf, flo, fhi, ci;
   if (core == NULL || core->grids == NULL || level < 0 || level >= core->nlevels
       || flo_ptr == NULL || fhi_ptr == NULL || ci_ptr == NULL)
   {
      return braid_ERROR_ARG;
   }
   g = core->grids[level];
   cf = g->cfactor;
   /* interval 0 holds the F-points left of the first local C-point (if any) */
   flo = g->ilower;
   fhi = g->clower - 1;
   ci = g->clower;
   if (g->clower > g->iupper)
   {
      fhi = g->iupper; /* no local C-point */
      ci = -1;
   }
   if (interval_index > 0)
   {
      flo = g->clower + (interval_index - 1) * cf + 1;
      fhi = flo + cf - 2;
      ci = fhi + 1;
      if (fhi > g->iupper) fhi = g->iupper;
      if (ci > g->iupper) ci = -1;
   }
   *flo_ptr = flo;
   *fhi_ptr = fhi;
   *ci_ptr = ci;
   return 0;
}

braid_Int _braid_printf(const char *format, ...)
{
   FILE *out = _braid_printfile != NULL ? _braid_printfile : stdout;
   va_list ap;
   va_start(ap, format);
   vfprintf(out, format, ap);
   va_end(ap);
   fflush(out);
   return 0;
}

braid_Int _braid_ParFprintfFlush(FILE *file, braid_Int myid, const char *message, ...)
{
   va_list ap;
   if (myid != 0 || file == NULL) return 0;
   va_start(ap, message);
   vfprintf(file, message, ap);
   va_end(ap);
   fflush(file);
   return 0;
}

braid_Int _braid_Max(braid_Real *array, braid_Int size, braid_Real *max_val)
{
   braid_Int i;
   if (max_val == NULL || (size > 0 && array == NULL)) return braid_ERROR_ARG;
   *max_val = -1.0;
   for (i = 0; i < size; i++)
   {
      if (i == 0 || array[i] > *max_val) *max_val = array[i];
   }
   return 0;
}

braid_Int _braid_GetNEntries(braid_Real *_array, braid_Int array_len, braid_Int *k_ptr,
                             braid_Real *array)
{
   braid_Int k, n, first, i;
   if (k_ptr == NULL || array == NULL) return braid_ERROR_ARG;
   k = *k_ptr;
   n = k < 0 ? -k : k;
   if (n > array_len) n = array_len;
   if (n <= 0 || _array == NULL)
   {
      *k_ptr = 0;
      array[0] = braid_INVALID_RNORM;
      return 0;
   }
   first = k < 0 ? array_len - n : 0;
   for (i = 0; i < n; i++) array[i] = _array[first + i];
   *k_ptr = n;
   return 0;
}

braid_Real _braid_MPI_Wtime(braid_Core core, braid_Int timing_level)
{
   return core != NULL && core->timings >= timing_level ? MPI_Wtime() : -1.0;
}
