/*
 * Temporal refinement (braid_SetRefine): the step asks for its fine interval to be split
 * (braid_StepStatusSetRFactor, braid_StatusSetRefinementDtValues), the engine refines the fine
 * grid at the top of the next cycle, rebalances the points over the ranks and converges to
 * the sequential solution of the refined grid. Checked here:
 *  - uniform halving twice: the solution at every point of the refined grid against forward
 *    Euler on that grid (computed here), its times, nrefine, ntime, the stats block's
 *    `number of refinements`, the new block distribution (plain and with reverted ranks);
 *  - a non-uniform split by the user's step sizes of the intervals in the first half (the
 *    points then move between ranks: buffer message type 1, load balancing);
 *  - max_refinements and tpoints_cutoff stop the refinement;
 *  - braid_SetIncrMaxLevels adds a level per refinement; sync is called after each refinement;
 *  - bitwise the same solution on one rank (MPI_COMM_SELF) and on all ranks, reverted or not.
 */
#include "_braid.h"
#include "test_app.h"

#define N0 16
#define TSTOP 4.0
#define CAPACITY (64 * N0)

/* what the step asks for: factor `rule_factor` while nrefine < rule_max, on every interval
 * (rule_first_half = 0) or on those that start before TSTOP / 2, by step sizes of fractions
 * rule_frac of the interval when rule_frac[0] > 0 */
static int rule_max, rule_factor, rule_first_half;
static double rule_frac[3];

/* seen by access and bufpack */
static int seen_nrefine, seen_ntpoints, seen_lb_packs, seen_refine_syncs;
static double seen_t[CAPACITY + 1];

static int refine_step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                       braid_StepStatus status)
{
   /* on the stack: braid_StatusSetRefinementDtValues copies the rfactor - 1 step sizes */
   double dt[3];
   double tstart, tstop;
   int level, nrefine, k, err = app_step(app, ustop, fstop, u, status);
   braid_StepStatusGetLevel(status, &level);
   braid_StepStatusGetNRefine(status, &nrefine);
   braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
   if (err || level != 0 || nrefine >= rule_max || (rule_first_half && tstart >= TSTOP / 2))
   {
      return err;
   }
   if (rule_frac[0] > 0.0)
   {
      for (k = 0; k < rule_factor - 1; k++) dt[k] = rule_frac[k] * (tstop - tstart);
      return braid_StatusSetRefinementDtValues((braid_Status) status, rule_factor, dt);
   }
   return braid_StepStatusSetRFactor(status, rule_factor);
}

static int refine_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{
   int index, done;
   double t;
   braid_AccessStatusGetTIndex(status, &index);
   braid_AccessStatusGetDone(status, &done);
   braid_AccessStatusGetT(status, &t);
   if (done)
   {
      braid_AccessStatusGetNRefine(status, &seen_nrefine);
      braid_AccessStatusGetNTPoints(status, &seen_ntpoints);
      if (index <= CAPACITY) seen_t[index] = t;
   }
   return app_access(app, u, status);
}

static int refine_bufpack(braid_App app, braid_Vector u, void *buffer, braid_BufferStatus status)
{
   int type;
   braid_BufferStatusGetMessageType(status, &type);
   if (type == 1) seen_lb_packs++;
   return app_bufpack(app, u, buffer, status);
}

/* sync after each refinement, with the calling function FRefine */
static int refine_sync(braid_App app, braid_SyncStatus status)
{
   int caller;
   (void) app;
   braid_SyncStatusGetCallingFunction(status, &caller);
   if (caller == braid_ASCaller_FRefine) seen_refine_syncs++;
   return 0;
}

typedef struct {
   MPI_Comm comm;
   int max_levels, reverted, incr, max_refinements, cutoff;
   const char *print_file;
} run_options;

/* One solve; on return app->solution holds this rank's points and *core_ptr the core. */
static int solve(my_App *app, const run_options *o, braid_Core *core_ptr)
{
   braid_Core core;
   int err;
   memset(app->solution, 0, sizeof(double) * (size_t) (CAPACITY + 1) * NDIM);
   memset(seen_t, 0, sizeof(seen_t));
   seen_nrefine = seen_ntpoints = -1;
   seen_refine_syncs = 0;
   braid_Init(o->print_file != NULL ? MPI_COMM_WORLD : o->comm, o->comm, 0.0, TSTOP, N0, app,
              refine_step, app_init, app_clone, app_free, app_sum, app_norm, refine_access,
              app_bufsize, refine_bufpack, app_bufunpack, &core);
   braid_SetPrintLevel(core, o->print_file != NULL ? 2 : 0);
   if (o->print_file != NULL) braid_SetPrintFile(core, o->print_file);
   braid_SetMaxLevels(core, o->max_levels);
   braid_SetCFactor(core, -1, 2);
   braid_SetAbsTol(core, 1e-13);
   braid_SetMaxIter(core, 60);
   braid_SetRefine(core, 1);
   braid_SetSync(core, refine_sync);
   if (o->reverted) braid_SetRevertedRanks(core, 1);
   if (o->incr) braid_SetIncrMaxLevels(core);
   if (o->max_refinements >= 0) braid_SetMaxRefinements(core, o->max_refinements);
   if (o->cutoff >= 0) braid_SetTPointsCutoff(core, o->cutoff);
   err = braid_Drive(core);
   *core_ptr = core;
   return err;
}

/* The whole solution on every rank of comm (each index was written by one rank). */
static void gather(my_App *app, MPI_Comm comm)
{
   MPI_Allreduce(MPI_IN_PLACE, app->solution, (CAPACITY + 1) * NDIM, MPI_DOUBLE, MPI_SUM, comm);
   MPI_Allreduce(MPI_IN_PLACE, seen_t, CAPACITY + 1, MPI_DOUBLE, MPI_SUM, comm);
}

/* Forward Euler on the time points t[0..n], against the solution; the largest difference. */
static double error_against_serial(const my_App *app, const double *t, int n)
{
   double u[NDIM], worst = 0.0;
   int i, k;
   for (k = 0; k < NDIM; k++) u[k] = init_value(0.0, k);
   for (i = 0; i <= n; i++)
   {
      if (i > 0) euler_step(t[i - 1], t[i], u);
      for (k = 0; k < NDIM; k++) worst = fmax(worst, fabs(u[k] - app->solution[i * NDIM + k]));
   }
   return worst;
}

static int stats_say(const char *path, const char *line)
{
   char buf[256];
   int found = 0;
   FILE *f = fopen(path, "r");
   if (f == NULL) return 0;
   while (fgets(buf, sizeof(buf), f) != NULL) found |= strstr(buf, line) != NULL;
   fclose(f);
   return found;
}

int main(int argc, char *argv[])
{
   my_App *app, *app1;
   braid_Core core;
   run_options o;
   double t[CAPACITY + 1], *plain;
   int rank, nprocs, i, lo, hi, nlevels, packs;
   char path[64];

   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
   app = app_create(CAPACITY);
   app1 = app_create(CAPACITY);
   memset(&o, 0, sizeof(o));
   o.comm = MPI_COMM_WORLD;
   o.max_levels = 3;
   o.max_refinements = o.cutoff = -1;

   /* uniform halving, twice: 16 -> 32 -> 64 steps */
   rule_max = 2;
   rule_factor = 2;
   snprintf(path, sizeof(path), "test_refine_np%d.out", nprocs);
   o.print_file = path;
   EXPECT(solve(app, &o, &core) == 0, "uniform refinement: braid_Drive failed");
   o.print_file = NULL;
   EXPECT(seen_nrefine == 2 && seen_ntpoints == 4 * N0, "nrefine %d (2), ntime %d (%d)",
          seen_nrefine, seen_ntpoints, 4 * N0);
   EXPECT(seen_refine_syncs == 2, "sync was called %d times from FRefine, expected 2",
          seen_refine_syncs);
   _braid_GetBlockDistInterval(4 * N0 + 1, nprocs, rank, &lo, &hi);
   EXPECT(core->grids[0]->ilower == lo && core->grids[0]->iupper == hi,
          "rank %d holds [%d, %d] of the refined grid, expected the block [%d, %d]", rank,
          core->grids[0]->ilower, core->grids[0]->iupper, lo, hi);
   braid_Destroy(core);
   gather(app, MPI_COMM_WORLD);
   for (i = 0; i <= 4 * N0; i++) t[i] = TSTOP * i / (4 * N0);
   for (i = 0; i <= 4 * N0; i++)
   {
      EXPECT(fabs(seen_t[i] - t[i]) < 1e-14, "t[%d] = %.17g, expected %.17g", i, seen_t[i], t[i]);
   }
   EXPECT(error_against_serial(app, t, 4 * N0) < 1e-11, "uniform: %.3e from forward Euler on "
          "the refined grid", error_against_serial(app, t, 4 * N0));
   if (rank == 0)
   {
      EXPECT(stats_say(path, "  number of refinements = 2\n"), "%s lacks the stats line", path);
      EXPECT(stats_say(path, "  time steps = 64\n"), "%s lacks time steps = 64", path);
      remove(path);
   }
   plain = (double *) malloc(sizeof(double) * (size_t) (CAPACITY + 1) * NDIM);
   memcpy(plain, app->solution, sizeof(double) * (size_t) (CAPACITY + 1) * NDIM);

   /* the same on one rank, and reverted: bitwise the same solution */
   o.comm = MPI_COMM_SELF;
   EXPECT(solve(app1, &o, &core) == 0, "one rank: braid_Drive failed");
   braid_Destroy(core);
   EXPECT(memcmp(app1->solution, plain, sizeof(double) * (size_t) (4 * N0 + 1) * NDIM) == 0,
          "the solution on %d ranks differs from the one-rank solution", nprocs);
   o.comm = MPI_COMM_WORLD;
   o.reverted = 1;
   EXPECT(solve(app, &o, &core) == 0, "reverted: braid_Drive failed");
   _braid_GetBlockDistInterval(4 * N0 + 1, nprocs, rank, &lo, &hi);
   if (lo <= hi)
   {
      EXPECT(core->grids[0]->ilower == 4 * N0 - hi && core->grids[0]->iupper == 4 * N0 - lo,
             "reverted rank %d holds [%d, %d], expected the mirror [%d, %d]", rank,
             core->grids[0]->ilower, core->grids[0]->iupper, 4 * N0 - hi, 4 * N0 - lo);
   }
   braid_Destroy(core);
   o.reverted = 0;
   gather(app, MPI_COMM_WORLD);
   EXPECT(memcmp(app->solution, plain, sizeof(double) * (size_t) (4 * N0 + 1) * NDIM) == 0,
          "the reverted-rank solution differs");

   /* non-uniform: the intervals of the first half split at 0.2 and 0.5 of their length */
   rule_max = 1;
   rule_factor = 3;
   rule_first_half = 1;
   seen_lb_packs = 0;
   rule_frac[0] = 0.2;
   rule_frac[1] = 0.3;
   rule_frac[2] = 0.5;
   EXPECT(solve(app, &o, &core) == 0, "dt values: braid_Drive failed");
   braid_Destroy(core);
   MPI_Allreduce(&seen_lb_packs, &packs, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
   EXPECT(nprocs == 1 || packs > 0, "no vector was packed with message type 1 on %d ranks",
          nprocs);
   gather(app, MPI_COMM_WORLD);
   {
      int n = 0;
      t[0] = 0.0;
      for (i = 1; i <= N0; i++)
      {
         double t0 = TSTOP * (i - 1) / N0, t1 = TSTOP * i / N0, h = t1 - t0;
         if (t0 < TSTOP / 2)
         {
            t[++n] = t0 + 0.2 * h;
            t[++n] = t0 + (0.2 * h + 0.3 * h);
         }
         t[++n] = t1;
      }
      EXPECT(seen_ntpoints == n && seen_nrefine == 1, "dt values: ntime %d (%d), nrefine %d",
             seen_ntpoints, n, seen_nrefine);
      for (i = 0; i <= n; i++)
      {
         EXPECT(fabs(seen_t[i] - t[i]) < 1e-14, "dt values: t[%d] = %.17g, expected %.17g", i,
                seen_t[i], t[i]);
      }
      EXPECT(error_against_serial(app, t, n) < 1e-11, "dt values: %.3e from forward Euler",
             error_against_serial(app, t, n));
   }
   rule_first_half = 0;
   rule_frac[0] = 0.0;

   /* the limits: always asked for, stopped by max_refinements, then by tpoints_cutoff */
   rule_max = 1000;
   rule_factor = 2;
   o.max_refinements = 1;
   EXPECT(solve(app, &o, &core) == 0, "max_refinements: braid_Drive failed");
   braid_Destroy(core);
   EXPECT(seen_nrefine == 1 && seen_ntpoints == 2 * N0, "max_refinements 1: nrefine %d, "
          "ntime %d", seen_nrefine, seen_ntpoints);
   gather(app, MPI_COMM_WORLD);
   for (i = 0; i <= 2 * N0; i++) t[i] = TSTOP * i / (2 * N0);
   EXPECT(error_against_serial(app, t, 2 * N0) < 1e-11, "max_refinements: %.3e",
          error_against_serial(app, t, 2 * N0));
   o.max_refinements = -1;
   o.cutoff = 5 * N0; /* 64 steps fit, 128 do not */
   EXPECT(solve(app, &o, &core) == 0, "tpoints_cutoff: braid_Drive failed");
   braid_Destroy(core);
   EXPECT(seen_nrefine == 2 && seen_ntpoints == 4 * N0, "tpoints_cutoff %d: nrefine %d, "
          "ntime %d", 5 * N0, seen_nrefine, seen_ntpoints);
   o.cutoff = -1;

   /* one more level per refinement */
   rule_max = 2;
   o.max_levels = 2;
   o.incr = 1;
   EXPECT(solve(app, &o, &core) == 0, "incr_max_levels: braid_Drive failed");
   braid_GetNLevels(core, &nlevels);
   braid_Destroy(core);
   EXPECT(nlevels == 4, "incr_max_levels: %d levels after 2 refinements from 2, expected 4",
          nlevels);
   gather(app, MPI_COMM_WORLD);
   for (i = 0; i <= 4 * N0; i++) t[i] = TSTOP * i / (4 * N0);
   EXPECT(error_against_serial(app, t, 4 * N0) < 1e-11, "incr_max_levels: %.3e",
          error_against_serial(app, t, 4 * N0));

   free(plain);
   app_destroy(app);
   app_destroy(app1);
   return finish("refine");
}
