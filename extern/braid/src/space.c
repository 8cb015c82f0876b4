/*
 * Spatial coarsening and refinement between time levels (braid_SetSpatialCoarsen /
 * braid_SetSpatialRefine). A vector moves to level l + 1 through the user's coarsen and back
 * through refine; without them the same vector (a copy) serves every level.
 *
 * Spatial refinement of the fine grid itself (braid_StepStatusSetRSpace): at the top of the
 * cycle after a fine step asked for it, every vector stored on the fine grid is replaced by
 * its refinement. The coarse levels follow in the next cycle's restriction; the message
 * buffers are sized anew (bufsize may give more once the vectors grew).
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

braid_Int _braid_FRefineSpace(braid_Core core, braid_Int *refined)
{
   _braid_Grid *g;
   MPI_Request request;
   int mine, any = 0;
   braid_Int i, level, err;
   *refined = 0;
   if (core->srefine == NULL) return 0; /* requests need the user's refine */
   mine = core->r_space != 0;
   core->r_space = 0;
   MPI_Iallreduce(&mine, &any, 1, MPI_INT, MPI_MAX, core->tcomm, &request);
   if ((err = _braid_Wait(core, &request))) return err;
   if (!any) return 0;
   g = core->grids[0];
   core->status.calling_function = braid_ASCaller_FRefine;
   for (i = g->ilower; i <= g->iupper; i++)
   {
      braid_Vector *slot = _braid_Slot(g, i), fine = NULL;
      braid_Real t = _braid_Time(core, 0, i), tp = _braid_Time(core, 0, i - 1);
      braid_Real tn = _braid_Time(core, 0, i + 1), start;
      if (*slot == NULL || (core->useshell && !g->store_all && i % g->cfactor != 0)) continue;
      start = _braid_TimerStart(core);
      err = core->srefine(core->app, *slot, &fine,
                          (braid_CoarsenRefStatus) _braid_CoarsenRefStatusFor(core, 0, i, t, tp,
                                                                               tn, tp, tn));
      _braid_TimerStop(core, &core->timers.srefine, start);
      if (err) return _braid_CallbackFailed(core, "srefine", err);
      if (fine == NULL)
      {
         _braid_Error("braid_Drive", "srefine returned no vector (spatial refinement, index %d)",
                      (int) i);
         return braid_ERROR_GENERIC;
      }
      if ((err = _braid_FreeVector(core, slot))) return err;
      *slot = fine;
   }
   /* the coarse levels' vectors have the old spatial grid: the next restriction makes them
    * anew (they are rewritten before they are read) */
   for (level = 1; level < core->nlevels; level++)
   {
      _braid_Grid *c = core->grids[level];
      braid_Int k;
      for (k = 0; k < c->nupoints; k++)
      {
         _braid_FreeVector(core, &c->ua[k]->userVector);
         _braid_FreeVector(core, &c->va[k]);
         _braid_FreeVector(core, &c->fa[k]);
      }
   }
   _braid_CommCleanup(core); /* bufsize is asked again for the larger vectors */
   *refined = 1;
   return 0;
}
