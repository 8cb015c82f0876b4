/*
 * Timers (braid_SetTimings, braid_SetTimerFile, braid_ResetTimer, braid_PrintTimers).
 *
 * Level 1 (the default) times each braid_Drive as a whole. Level 2 also times every call of
 * the user's step, residual, init, access, sync and spatial coarsen/refine, and the engine's
 * waits for messages, and writes each rank's totals to <stem>_<rank>.txt after every
 * braid_Drive (stem "braid_timings" unless braid_SetTimerFile chose another).
 *
 * Counts (integer increments): the user's step calls, split off those on the coarsest level,
 * and the point-to-point engine messages this rank sent and received, with the bytes sent.
 * layerbraid_GetProfile gives them with the matching timer totals. They are kept only when a
 * profile is asked for: layerbraid_SetProfile, layerbraid_SetTimeCalls or timings level 2
 * (whose timer files list them); else they stay 0. Off by default because even integer
 * increments cost a cheap step measurably (always on, they added about 12 instructions per
 * step call: a few percent of the instructions of an iteration with a no-op step); off, the
 * step path compares one flag word (core->profile) before and one after each call, as the
 * timers alone did.
 */
#include <string.h>

#include "core_internal.h"

void _braid_ProfileUpdate(braid_Core core)
{
   braid_Int timed = core->timings >= 2 || core->time_calls;
   core->profile = timed ? _BRAID_PROFILE_COUNT | _BRAID_PROFILE_TIME
                         : (core->count_calls ? _BRAID_PROFILE_COUNT : 0);
}

void _braid_StepRecord(braid_Core core, braid_Int level, braid_Real start)
{
   braid_Int coarsest = level == core->nlevels - 1;
   core->counts.steps++;
   if (coarsest) core->counts.steps_coarsest++;
   if (core->profile & _BRAID_PROFILE_TIME)
   {
      braid_Real elapsed = MPI_Wtime() - start;
      core->timers.step += elapsed;
      if (coarsest) core->timers.step_coarsest += elapsed;
   }
}

braid_Int layerbraid_SetProfile(braid_Core core, braid_Int on)
{
   CHECK_CORE("layerbraid_SetProfile");
   core->count_calls = on != 0;
   _braid_ProfileUpdate(core);
   return 0;
}

braid_Int braid_ResetTimer(braid_Core core)
{
   CHECK_CORE("braid_ResetTimer");
   memset(&core->timers, 0, sizeof(core->timers));
   memset(&core->counts, 0, sizeof(core->counts));
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
   fprintf(f, "  step, coarsest     %e\n", t->step_coarsest);
   fprintf(f, "  step calls         %d\n", (int) core->counts.steps);
   fprintf(f, "  step calls, coarsest %d\n", (int) core->counts.steps_coarsest);
   fprintf(f, "  messages sent      %d\n", (int) core->counts.messages_sent);
   fprintf(f, "  messages received  %d\n", (int) core->counts.messages_received);
   fprintf(f, "  bytes sent         %.0f\n", core->counts.bytes_sent);
   if (fclose(f) != 0) return _braid_Error("braid_PrintTimers", "cannot write '%s'", name);
   return 0;
}

braid_Int layerbraid_GetProfile(braid_Core core, layerbraid_Profile *profile)
{
   CHECK_CORE("layerbraid_GetProfile");
   if (profile == NULL) return _braid_Error("layerbraid_GetProfile", "profile is NULL");
   profile->steps = core->counts.steps;
   profile->steps_coarsest = core->counts.steps_coarsest;
   profile->messages_sent = core->counts.messages_sent;
   profile->messages_received = core->counts.messages_received;
   profile->bytes_sent = core->counts.bytes_sent;
   profile->time_step = core->timers.step;
   profile->time_step_coarsest = core->timers.step_coarsest;
   profile->time_wait = core->timers.mpi_wait;
   profile->time_drive = core->timers.drive;
   return 0;
}
