/*
 * Timers (braid_SetTimings, braid_SetTimerFile, braid_ResetTimer, braid_PrintTimers).
 *
 * Level 1 (the default) times each braid_Drive as a whole. Level 2 also times every call of
 * the user's step, residual, init, access, sync and spatial coarsen/refine, and the engine's
 * waits for messages, and writes each rank's totals to <stem>_<rank>.txt after every
 * braid_Drive (stem "braid_timings" unless braid_SetTimerFile chose another).
 */
#include <string.h>

#include "core_internal.h"

braid_Int braid_ResetTimer(braid_Core core)
{
   CHECK_CORE("braid_ResetTimer");
   memset(&core->timers, 0, sizeof(core->timers));
   return 0;
}

braid_Int braid_PrintTimers(braid_Core core)
{
   const _braid_Timers *t;
   char name[512];
   FILE *f;
   CHECK_CORE("braid_PrintTimers");
   t = &core->timers;
   snprintf(name, sizeof(name), "%s_%04d.txt",
            core->timer_file_stem != NULL ? core->timer_file_stem : "braid_timings",
            core->myid);
   f = fopen(name, "w");
   if (f == NULL) return _braid_Error("braid_PrintTimers", "cannot open '%s' for writing", name);
   fprintf(f, "Timings for rank %d of the temporal communicator (seconds; timings level %d)\n",
           core->myid, (int) core->timings);
   fprintf(f, "  braid_Drive        %e\n", t->drive);
   fprintf(f, "  MPI wait           %e\n", t->mpi_wait);
   fprintf(f, "  step               %e\n", t->step);
   fprintf(f, "  residual           %e\n", t->residual);
   fprintf(f, "  init               %e\n", t->init);
   fprintf(f, "  access             %e\n", t->access);
   fprintf(f, "  sync               %e\n", t->sync);
   fprintf(f, "  spatial coarsen    %e\n", t->scoarsen);
   fprintf(f, "  spatial refine     %e\n", t->srefine);
   if (fclose(f) != 0) return _braid_Error("braid_PrintTimers", "cannot write '%s'", name);
   return 0;
}
