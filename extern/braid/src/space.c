/*
 * Spatial coarsening and refinement between time levels (braid_SetSpatialCoarsen /
 * braid_SetSpatialRefine). A vector moves to level l + 1 through the user's coarsen and back
 * through refine; without them the same vector (a copy) serves every level.
 */
#include "core_internal.h"

/* The CoarsenRef status for fine point i of `level` (coarse point j = i / cfactor). */
static _braid_Status *coarsen_ref_status(braid_Core core, braid_Int level, braid_Int i)
{
   braid_Int j = i / core->grids[level]->cfactor;
   return _braid_CoarsenRefStatusFor(core, level, j, _braid_Time(core, level, i),
                                     _braid_Time(core, level, i - 1),
                                     _braid_Time(core, level, i + 1),
                                     _braid_Time(core, level + 1, j - 1),
                                     _braid_Time(core, level + 1, j + 1));
}

braid_Int _braid_CoarsenUser(braid_Core core, braid_Int level, braid_Int i, braid_Vector fu,
                             braid_Vector *cu_ptr)
{
   braid_Vector cu = NULL;
   braid_Real start;
   braid_Int err;
   start = _braid_TimerStart(core);
   err = core->scoarsen(core->app, fu, &cu,
                        (braid_CoarsenRefStatus) coarsen_ref_status(core, level, i));
   _braid_TimerStop(core, &core->timers.scoarsen, start);
   if (err) return _braid_CallbackFailed(core, "scoarsen", err);
   if (cu == NULL)
   {
      _braid_Error("braid_Drive", "scoarsen returned no vector (level %d, index %d)",
                   (int) level, (int) i);
      return braid_ERROR_GENERIC;
   }
   if ((err = _braid_FreeVector(core, cu_ptr))) return err;
   *cu_ptr = cu;
   return 0;
}

braid_Int _braid_RefineNew(braid_Core core, braid_Int level, braid_Int i, braid_Vector cu,
                           braid_Vector *fu_ptr)
{
   braid_Real start;
   braid_Int err;
   *fu_ptr = NULL;
   if (core->srefine == NULL)
   {
      err = core->clone(core->app, cu, fu_ptr);
      return err ? _braid_CallbackFailed(core, "clone", err) : 0;
   }
   start = _braid_TimerStart(core);
   err = core->srefine(core->app, cu, fu_ptr,
                       (braid_CoarsenRefStatus) coarsen_ref_status(core, level, i));
   _braid_TimerStop(core, &core->timers.srefine, start);
   if (err) return _braid_CallbackFailed(core, "srefine", err);
   if (*fu_ptr == NULL)
   {
      _braid_Error("braid_Drive", "srefine returned no vector (level %d, index %d)",
                   (int) level, (int) i);
      return braid_ERROR_GENERIC;
   }
   return 0;
}
