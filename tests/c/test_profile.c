/*
 * layerbraid_GetProfile: this rank's step calls (all levels, coarsest level), point-to-point
 * messages and bytes, and times, on a scalar backward-Euler problem with a known schedule.
 *  - max_levels = 1: the ranks step their own intervals once, so the steps sum to ntime, all
 *    on the (only, hence coarsest) level; one rank sends nothing, several send and receive the
 *    same number of messages (sizeof(double) bytes each);
 *  - 2 levels with a fixed number of cycles: the engine's work does not depend on the number
 *    of ranks, so the steps summed over the ranks equal a one-rank solve's (checked against a
 *    solve on MPI_COMM_SELF of rank 0), and some but not all of them are on the coarsest level;
 *  - timings level 2 fills the step and wait times and braid_PrintTimers writes the counts;
 *  - the counts accumulate over braid_Drive calls and braid_ResetTimer clears them;
 *  - the counts are kept only when asked for (layerbraid_SetProfile, layerbraid_SetTimeCalls,
 *    timings level 2): a solve without stays at 0 counts, on every rank.
 */
#include <stdio.h>

#include "braid_layerbraid.h"
#include "scalar_app.h"
#include "test_app.h"

enum { NTIME = 64 };

static double forcing(double t) { return sin(t); }

/* A solve of NTIME steps on comm; the core stays alive for more checks (caller destroys). */
static braid_Core make_core(struct scalar_app *app, MPI_Comm comm, int max_levels)
{
   braid_Core core;
   app->lambda = -1.0;
   app->forcing = forcing;
   app->u0 = 1.0;
   app->guess = 0.5;
   core = scalar_core(app, comm, 4.0, NTIME);
   braid_SetMaxLevels(core, max_levels);
   braid_SetCFactor(core, -1, 2);
   braid_SetAbsTol(core, 1e-300); /* unreachable: exactly max_iter cycles */
   braid_SetMaxIter(core, 3);
   return core;
}

static void destroy(struct scalar_app *app, braid_Core core)
{
   braid_Destroy(core);
   free(app->u);
   free(app->est);
   app->u = app->est = NULL;
}

static long isum(MPI_Comm comm, long v)
{
   long s = 0;
   MPI_Allreduce(&v, &s, 1, MPI_LONG, MPI_SUM, comm);
   return s;
}

static double dsum(MPI_Comm comm, double v)
{
   double s = 0;
   MPI_Allreduce(&v, &s, 1, MPI_DOUBLE, MPI_SUM, comm);
   return s;
}

static int profile_zero(const layerbraid_Profile *p)
{
   return p->steps == 0 && p->steps_coarsest == 0 && p->messages_sent == 0
          && p->messages_received == 0 && p->bytes_sent == 0.0 && p->time_step == 0.0
          && p->time_step_coarsest == 0.0 && p->time_wait == 0.0 && p->time_drive == 0.0;
}

static int counts_zero(const layerbraid_Profile *p)
{
   return p->steps == 0 && p->steps_coarsest == 0 && p->messages_sent == 0
          && p->messages_received == 0 && p->bytes_sent == 0.0;
}

/* No profile asked for (the default): the solve keeps no counts, nor step or wait times. */
static void check_off(int max_levels)
{
   struct scalar_app app = {0};
   layerbraid_Profile p;
   braid_Core core = make_core(&app, MPI_COMM_WORLD, max_levels);
   EXPECT(braid_Drive(core) == 0, "drive without a profile (%d levels)", max_levels);
   EXPECT(layerbraid_GetProfile(core, &p) == 0, "layerbraid_GetProfile");
   EXPECT(counts_zero(&p) && p.time_step == 0.0 && p.time_wait == 0.0,
          "%d levels, no profile asked for: counts stay 0 (steps %d, coarsest %d, sent %d, "
          "received %d, %g bytes; step time %g, wait %g)", max_levels, (int) p.steps,
          (int) p.steps_coarsest, (int) p.messages_sent, (int) p.messages_received,
          p.bytes_sent, p.time_step, p.time_wait);
   EXPECT(p.time_drive > 0.0, "drive time %g without a profile", p.time_drive);
   EXPECT(layerbraid_SetProfile(NULL, 1) != 0, "layerbraid_SetProfile: NULL core is an error");
   destroy(&app, core);
}

static void check_serial(int nprocs)
{
   struct scalar_app app = {0};
   layerbraid_Profile p;
   long sent, received;
   braid_Core core = make_core(&app, MPI_COMM_WORLD, 1);
   EXPECT(layerbraid_SetProfile(core, 1) == 0, "layerbraid_SetProfile");
   EXPECT(layerbraid_GetProfile(core, &p) == 0 && profile_zero(&p), "zero before braid_Drive");
   EXPECT(braid_Drive(core) == 0, "serial drive");
   EXPECT(layerbraid_GetProfile(core, &p) == 0, "layerbraid_GetProfile");
   EXPECT(isum(MPI_COMM_WORLD, p.steps) == NTIME, "serial: %ld steps over the ranks, expected %d",
          isum(MPI_COMM_WORLD, p.steps), NTIME);
   EXPECT(p.steps_coarsest == p.steps, "one level: steps_coarsest %d == steps %d",
          (int) p.steps_coarsest, (int) p.steps);
   EXPECT(p.time_step == 0.0 && p.time_wait == 0.0, "timings level 1: no step or wait times");
   EXPECT(p.time_drive > 0.0, "drive time %g", p.time_drive);
   sent = isum(MPI_COMM_WORLD, p.messages_sent);
   received = isum(MPI_COMM_WORLD, p.messages_received);
   if (nprocs == 1)
   {
      EXPECT(p.messages_sent == 0 && p.messages_received == 0 && p.bytes_sent == 0.0,
             "one rank: no messages (sent %d, received %d, %g bytes)", (int) p.messages_sent,
             (int) p.messages_received, p.bytes_sent);
   }
   else
   {
      EXPECT(sent > 0 && sent == received, "serial: %ld messages sent, %ld received", sent,
             received);
      EXPECT(dsum(MPI_COMM_WORLD, p.bytes_sent) == (double) sizeof(double) * (double) sent,
             "serial: %g bytes for %ld scalar messages", dsum(MPI_COMM_WORLD, p.bytes_sent),
             sent);
   }
   EXPECT(braid_ResetTimer(core) == 0, "braid_ResetTimer");
   EXPECT(layerbraid_GetProfile(core, &p) == 0 && profile_zero(&p),
          "braid_ResetTimer clears the profile");
   EXPECT(layerbraid_GetProfile(core, NULL) != 0, "NULL profile is an error");
   destroy(&app, core);
}

/* The steps of a 2-level solve with 3 cycles on rank 0 alone (-1 on the other ranks). */
static long two_level_steps_one_rank(int rank)
{
   struct scalar_app app = {0};
   layerbraid_Profile p;
   braid_Core core;
   if (rank != 0) return -1;
   core = make_core(&app, MPI_COMM_SELF, 2);
   layerbraid_SetProfile(core, 1);
   EXPECT(braid_Drive(core) == 0, "2-level drive on one rank");
   layerbraid_GetProfile(core, &p);
   destroy(&app, core);
   return p.steps;
}

static void check_two_level(int rank, int nprocs)
{
   struct scalar_app app = {0};
   layerbraid_Profile p, q;
   long steps, coarsest, sent, received, one_rank = two_level_steps_one_rank(rank);
   braid_Core core = make_core(&app, MPI_COMM_WORLD, 2);
   char name[64];
   FILE *f;
   int niter, nlevels;
   braid_SetTimings(core, 2); /* counts too, without layerbraid_SetProfile */
   braid_SetTimerFile(core, 14, "profile_timers");
   EXPECT(braid_Drive(core) == 0, "2-level drive");
   braid_GetNumIter(core, &niter);
   braid_GetNLevels(core, &nlevels);
   EXPECT(niter == 3 && nlevels == 2, "%d cycles on %d levels, expected 3 on 2", niter, nlevels);
   layerbraid_GetProfile(core, &p);
   steps = isum(MPI_COMM_WORLD, p.steps);
   coarsest = isum(MPI_COMM_WORLD, p.steps_coarsest);
   /* MGRIT does the same relaxation, restriction and coarse solve whatever the distribution:
    * the same steps in total (which rank does a step changes, the number does not) */
   MPI_Bcast(&one_rank, 1, MPI_LONG, 0, MPI_COMM_WORLD);
   EXPECT(steps == one_rank, "2 levels: %ld steps over %d ranks, %ld on one rank", steps, nprocs,
          one_rank);
   EXPECT(coarsest > 0 && coarsest < steps, "2 levels: %ld of %ld steps on the coarsest level",
          coarsest, steps);
   EXPECT(p.time_step > 0.0 && p.time_step_coarsest >= 0.0
          && p.time_step_coarsest <= p.time_step,
          "timings level 2: step time %g, coarsest %g", p.time_step, p.time_step_coarsest);
   EXPECT(p.time_wait >= 0.0 && p.time_drive >= p.time_step, "wait %g, drive %g", p.time_wait,
          p.time_drive);
   sent = isum(MPI_COMM_WORLD, p.messages_sent);
   received = isum(MPI_COMM_WORLD, p.messages_received);
   EXPECT(sent == received && (nprocs == 1 ? sent == 0 : sent > 0),
          "2 levels: %ld messages sent, %ld received", sent, received);

   /* braid_Drive wrote the timer file (level 2); the counts are in it */
   snprintf(name, sizeof(name), "profile_timers_%04d.txt", rank);
   f = fopen(name, "r");
   EXPECT(f != NULL, "timer file %s", name);
   if (f != NULL)
   {
      char line[256];
      int found = 0, n = -1;
      while (fgets(line, sizeof(line), f) != NULL)
      {
         if (sscanf(line, "  step calls %d", &n) == 1)
         {
            found = 1;
            break;
         }
      }
      fclose(f);
      EXPECT(found && n == (int) p.steps, "timer file: step calls %d, profile %d", n,
             (int) p.steps);
      remove(name);
   }

   /* a second solve adds to the counts; layerbraid_SetTimeCalls times it like level 2 does,
    * without writing the timer file, and counts */
   braid_SetTimings(core, 1);
   layerbraid_SetTimeCalls(core, 1);
   EXPECT(braid_Drive(core) == 0, "second 2-level drive");
   layerbraid_GetProfile(core, &q);
   EXPECT(q.steps > p.steps && q.time_drive > p.time_drive, "the counts accumulate: %d > %d",
          (int) q.steps, (int) p.steps);
   EXPECT(q.time_step > p.time_step, "layerbraid_SetTimeCalls: step time %g after %g",
          q.time_step, p.time_step);
   f = fopen(name, "r");
   EXPECT(f == NULL, "layerbraid_SetTimeCalls wrote the timer file %s", name);
   if (f != NULL) fclose(f);
   remove(name);
   braid_ResetTimer(core);
   layerbraid_GetProfile(core, &q);
   EXPECT(profile_zero(&q), "braid_ResetTimer clears the profile");

   /* layerbraid_SetTimeCalls(core, 0) at timings level 1: nothing is counted or timed again */
   layerbraid_SetTimeCalls(core, 0);
   EXPECT(braid_Drive(core) == 0, "third 2-level drive");
   layerbraid_GetProfile(core, &q);
   EXPECT(counts_zero(&q) && q.time_step == 0.0 && q.time_wait == 0.0 && q.time_drive > 0.0,
          "profile off again: steps %d, sent %d, step time %g", (int) q.steps,
          (int) q.messages_sent, q.time_step);
   destroy(&app, core);
}

int main(int argc, char *argv[])
{
   int rank, nprocs;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
   check_off(1);
   check_off(2);
   check_serial(nprocs);
   check_two_level(rank, nprocs);
   EXPECT(layerbraid_GetProfile(NULL, NULL) != 0, "NULL core is an error");
   return finish("profile");
}
