/*
 * Options of the interface's optional features: problem variants (time grid, periodic,
 * user residual, shell vectors), spatial coarsening, temporal refinement, Richardson
 * extrapolation and timers.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

/* A callback option: NULL switches the feature off. */
#define SET_CALLBACK(fn, field, value) \
   do {                                \
      CHECK_CORE(fn);                  \
      core->field = (value);           \
      return 0;                        \
   } while (0)

braid_Int braid_SetTimeGrid(braid_Core core, braid_PtFcnTimeGrid tgrid)
{
   CHECK_CORE("braid_SetTimeGrid");
   CHECK_NOT_BUILT("braid_SetTimeGrid");
   core->tgrid = tgrid;
   return 0;
}

braid_Int braid_SetPeriodic(braid_Core core, braid_Int periodic)
{
   braid_Int err;
   CHECK_CORE("braid_SetPeriodic");
   CHECK_NOT_BUILT("braid_SetPeriodic");
   err = _braid_SetIntOption(core, "braid_SetPeriodic", "periodic", periodic, 0, 1,
                             &core->periodic);
   /* the ntime points 0..ntime-1 are the unknowns; point ntime is point 0 again */
   if (!err) core->gupper = periodic ? core->ntime - 1 : core->ntime;
   return err;
}

braid_Int braid_SetRelaxOnlyCG(braid_Core core, braid_Int relax_only_cg)
{
   CHECK_CORE("braid_SetRelaxOnlyCG");
   CHECK_NOT_BUILT("braid_SetRelaxOnlyCG");
   return _braid_SetIntOption(core, "braid_SetRelaxOnlyCG", "relax_only_cg", relax_only_cg,
                              0, 1, &core->relax_only_cg);
}

braid_Int braid_SetResidual(braid_Core core, braid_PtFcnResidual residual)
{
   SET_CALLBACK("braid_SetResidual", residual, residual);
}

braid_Int braid_SetFullRNormRes(braid_Core core, braid_PtFcnResidual residual)
{
   SET_CALLBACK("braid_SetFullRNormRes", full_rnorm_res, residual);
}

braid_Int braid_SetShell(braid_Core core, braid_PtFcnSInit sinit, braid_PtFcnSClone sclone,
                         braid_PtFcnSFree sfree)
{
   CHECK_CORE("braid_SetShell");
   CHECK_NOT_BUILT("braid_SetShell");
   if ((sinit == NULL) != (sclone == NULL) || (sinit == NULL) != (sfree == NULL))
   {
      return _braid_Error("braid_SetShell", "sinit, sclone and sfree must all be set (or all "
                          "be NULL to switch shells off)");
   }
   core->sinit = sinit;
   core->sclone = sclone;
   core->sfree = sfree;
   core->useshell = sinit != NULL;
   return 0;
}

braid_Int braid_SetInnerProd(braid_Core core, braid_PtFcnInnerProd inner_prod)
{
   SET_CALLBACK("braid_SetInnerProd", inner_prod, inner_prod);
}

braid_Int braid_SetSpatialCoarsen(braid_Core core, braid_PtFcnSCoarsen scoarsen)
{
   SET_CALLBACK("braid_SetSpatialCoarsen", scoarsen, scoarsen);
}

braid_Int braid_SetSpatialRefine(braid_Core core, braid_PtFcnSRefine srefine)
{
   SET_CALLBACK("braid_SetSpatialRefine", srefine, srefine);
}

braid_Int braid_SetRefine(braid_Core core, braid_Int refine)
{
   return _braid_SetIntOption(core, "braid_SetRefine", "refine", refine, 0, 1,
                              core ? &core->refine : NULL);
}

braid_Int braid_SetMaxRefinements(braid_Core core, braid_Int max_refinements)
{
   return _braid_SetIntOption(core, "braid_SetMaxRefinements", "max_refinements",
                              max_refinements, 0, INT_MAX, core ? &core->max_refinements : NULL);
}

braid_Int braid_SetTPointsCutoff(braid_Core core, braid_Int tpoints_cutoff)
{
   return _braid_SetIntOption(core, "braid_SetTPointsCutoff", "tpoints_cutoff", tpoints_cutoff,
                              0, INT_MAX, core ? &core->tpoints_cutoff : NULL);
}

braid_Int braid_SetIncrMaxLevels(braid_Core core)
{
   CHECK_CORE("braid_SetIncrMaxLevels");
   core->incr_max_levels = 1;
   return 0;
}

braid_Int braid_SetRichardsonEstimation(braid_Core core, braid_Int est_error,
                                        braid_Int richardson, braid_Int local_order)
{
   const char *fn = "braid_SetRichardsonEstimation";
   CHECK_CORE(fn);
   CHECK_NOT_BUILT(fn);
   if (est_error < 0 || est_error > 1 || richardson < 0 || richardson > 1)
   {
      return _braid_Error(fn, "est_error = %d and richardson = %d must be 0 or 1",
                          (int) est_error, (int) richardson);
   }
   if ((est_error || richardson) && local_order < 2)
   {
      return _braid_Error(fn, "local_order = %d is invalid; the local order of a convergent "
                          "time stepper is >= 2 (2 for backward Euler)", (int) local_order);
   }
   core->est_error = est_error;
   core->richardson = richardson;
   core->order = local_order;
   return 0;
}

braid_Int braid_SetTimerFile(braid_Core core, braid_Int length, const char *filestem)
{
   char *stem;
   CHECK_CORE("braid_SetTimerFile");
   if (filestem == NULL || length < 0 || (size_t) length > strlen(filestem))
   {
      return _braid_Error("braid_SetTimerFile", "filestem must be a string of at least "
                          "length = %d characters", (int) length);
   }
   stem = (char *) malloc((size_t) length + 1);
   if (stem == NULL)
   {
      _braid_Error("braid_SetTimerFile", "out of memory");
      return braid_ERROR_MEMORY;
   }
   memcpy(stem, filestem, (size_t) length);
   stem[length] = '\0';
   free(core->timer_file_stem);
   core->timer_file_stem = stem;
   return 0;
}
