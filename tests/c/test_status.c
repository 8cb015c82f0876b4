/*
 * The status interface (braid_status.h) as callbacks see it during a solve, and the helpers
 * around it:
 * - a 3-level solve of the test app whose step, access, sync and buffer callbacks ask every
 *   getter and compare the answers with what the solve must give (the distribution of
 *   _braid_GetDistribution and the grids, times from the time index, iterations counted by
 *   sync, the residual history that braid_GetRNorms reports afterwards, ...);
 * - the steering setters: stored, checked, and reset before the next callback;
 * - braid_GetSpatialAccuracy on a core whose residual history the test writes itself;
 * - the coarsen/refine status (_braid_CoarsenRefStatusFor) and a status without a core
 *   (as braid_Test* builds it);
 * - NULL statuses, NULL outputs and levels out of range: braid_ERROR_ARG, no crash.
 */
#include <float.h>

#include "test_app.h"
#include "_braid.h"
/* the engine's internal helpers that fill a status (the test checks them directly) */
#include "../../extern/braid/src/core_internal.h"

#define NTIME 20
#define TSTOP 2.0
#define MAXLEVELS 3
#define ARG braid_ERROR_ARG

/* What the callbacks learn, for checks during and after the solve. */
static braid_Core g_core;
static int g_nsync;          /* sync calls so far */
static int g_niter_final;    /* iterations, once known (sync with done = 1) */
static int g_steps[MAXLEVELS], g_callers[16], g_done_steps;
static int g_final_access[NTIME + 1], g_top_access;
static double g_top_residual[128];  /* residual seen by top-of-cycle access, per iteration */
static int g_nlevels;
static int g_packs, g_unpacks;
static int g_step_checked_null;

static int close_to(double a, double b)
{
   return fabs(a - b) <= 1e-12 * (1.0 + fabs(b));
}

/* Time of point `index` of `level` for a uniform grid with C-point spacing 2 on every level
 * but the coarsest. */
static double time_of(int level, int index)
{
   return TSTOP * (double) index * (double) (1 << level) / NTIME;
}

static void check_tiul(braid_Int level, braid_Int iupper, braid_Int ilower, const char *who)
{
   const _braid_Grid *g = g_core->grids[level];
   EXPECT(ilower == g->ilower && iupper == g->iupper, "%s: TIUL(level %d) = [%d, %d], grid "
          "holds [%d, %d]", who, (int) level, (int) ilower, (int) iupper, (int) g->ilower,
          (int) g->iupper);
   if (level == 0)
   {
      braid_Int lo, hi;
      _braid_GetDistribution(g_core, &lo, &hi);
      EXPECT(ilower == lo && iupper == hi, "%s: TIUL(0) = [%d, %d], _braid_GetDistribution "
             "[%d, %d]", who, (int) ilower, (int) iupper, (int) lo, (int) hi);
   }
}

static void check_cfactor(braid_Int level, braid_Int cf, const char *who)
{
   braid_Int expected = level < g_nlevels - 1 ? 2 : g_core->grids[level]->gupper + 1;
   EXPECT(cf == expected, "%s: CFactor(level %d) = %d, expected %d", who, (int) level,
          (int) cf, (int) expected);
}

/* Every getter with a NULL output (and bad levels) on a live status: braid_ERROR_ARG. */
static void check_null_outputs(braid_StepStatus s)
{
   braid_Int i;
   braid_Real r;
   braid_Real *rp = &r;
   EXPECT(braid_StepStatusGetT(s, NULL) == ARG, "GetT(NULL)");
   EXPECT(braid_StepStatusGetTIndex(s, NULL) == ARG, "GetTIndex(NULL)");
   EXPECT(braid_StepStatusGetIter(s, NULL) == ARG, "GetIter(NULL)");
   EXPECT(braid_StepStatusGetLevel(s, NULL) == ARG, "GetLevel(NULL)");
   EXPECT(braid_StepStatusGetNLevels(s, NULL) == ARG, "GetNLevels(NULL)");
   EXPECT(braid_StepStatusGetNRefine(s, NULL) == ARG, "GetNRefine(NULL)");
   EXPECT(braid_StepStatusGetNTPoints(s, NULL) == ARG, "GetNTPoints(NULL)");
   EXPECT(braid_StepStatusGetTstop(s, NULL) == ARG, "GetTstop(NULL)");
   EXPECT(braid_StepStatusGetTstartTstop(s, &r, NULL) == ARG, "GetTstartTstop(., NULL)");
   EXPECT(braid_StepStatusGetTstartTstop(s, NULL, &r) == ARG, "GetTstartTstop(NULL, .)");
   EXPECT(braid_StepStatusGetTol(s, NULL) == ARG, "GetTol(NULL)");
   EXPECT(braid_StepStatusGetRNorms(s, NULL, &r) == ARG, "GetRNorms(NULL, .)");
   i = 1;
   EXPECT(braid_StepStatusGetRNorms(s, &i, NULL) == ARG, "GetRNorms(1, NULL)");
   EXPECT(braid_StepStatusGetOldFineTolx(s, NULL) == ARG, "GetOldFineTolx(NULL)");
   EXPECT(braid_StepStatusGetDone(s, NULL) == ARG, "GetDone(NULL)");
   EXPECT(braid_StepStatusGetSingleErrorEstStep(s, NULL) == ARG, "GetSingleErrorEstStep");
   EXPECT(braid_StepStatusGetCallingFunction(s, NULL) == ARG, "GetCallingFunction(NULL)");
   EXPECT(braid_StepStatusGetTIUL(s, &i, NULL, 0) == ARG, "GetTIUL(., NULL)");
   EXPECT(braid_StepStatusGetTIUL(s, NULL, &i, 0) == ARG, "GetTIUL(NULL, .)");
   EXPECT(braid_StepStatusGetTIUL(s, &i, &i, -1) == ARG, "GetTIUL(level -1)");
   EXPECT(braid_StepStatusGetTIUL(s, &i, &i, g_nlevels) == ARG, "GetTIUL(level nlevels)");
   EXPECT(braid_StepStatusGetCFactor(s, NULL, 0) == ARG, "GetCFactor(NULL)");
   EXPECT(braid_StepStatusGetCFactor(s, &i, g_nlevels) == ARG, "GetCFactor(level nlevels)");
   EXPECT(braid_StepStatusGetCFactor(s, &i, -1) == ARG, "GetCFactor(level -1)");
   EXPECT(braid_StatusGetProc((braid_Status) s, NULL, 0, 0) == ARG, "GetProc(NULL)");
   EXPECT(braid_StatusGetProc((braid_Status) s, &i, g_nlevels, 0) == ARG, "GetProc(level)");
   EXPECT(braid_StatusGetTimeValues((braid_Status) s, NULL, 0, 0, 0) == ARG, "TimeValues");
   EXPECT(braid_StatusGetTimeValues((braid_Status) s, &rp, 0, 0, -1) == ARG, "TimeValues lev");
   EXPECT(braid_StatusGetTComm((braid_Status) s, NULL) == ARG, "GetTComm(NULL)");
   EXPECT(braid_StatusGetResidual((braid_Status) s, NULL) == ARG, "GetResidual(NULL)");
   EXPECT(braid_StatusGetWrapperTest((braid_Status) s, NULL) == ARG, "GetWrapperTest(NULL)");
   EXPECT(braid_StatusGetMessageType((braid_Status) s, NULL) == ARG, "GetMessageType(NULL)");
   EXPECT(braid_StatusGetTILD((braid_Status) s, &r, &i, &i, NULL) == ARG, "GetTILD(NULL)");
   EXPECT(braid_StatusGetTpriorTstop((braid_Status) s, &r, &r, &r, &r, NULL) == ARG,
          "GetTpriorTstop(NULL)");
   EXPECT(braid_StatusGetNumErrorEst((braid_Status) s, NULL) == ARG, "GetNumErrorEst(NULL)");
   EXPECT(braid_GetSpatialAccuracy(s, 1e-2, 1e-8, NULL) == ARG, "GetSpatialAccuracy(NULL)");
}

/* The steering setters: checked, stored in the status; the engine resets them before the
 * next callback. Leaves the status asking for nothing the engine must do. */
static void check_setters(braid_StepStatus s, double tstart, double tstop)
{
   _braid_Status *st = (_braid_Status *) s;
   braid_Real dts[2] = {0.25 * (tstop - tstart), 0.75 * (tstop - tstart)};
   braid_Real bad[2] = {-0.5, 0.5};
   EXPECT(st->rfactor == 1 && st->rdtvalues == NULL && st->r_space == 0 && st->size == -1.0,
          "requests of the previous callback were not reset (rfactor %d, r_space %d)",
          (int) st->rfactor, (int) st->r_space);
   EXPECT(braid_StepStatusSetRFactor(s, 0.5) == ARG, "SetRFactor(0.5)");
   EXPECT(braid_StepStatusSetRFactor(s, NAN) == ARG, "SetRFactor(NaN)");
   EXPECT(braid_StepStatusSetRFactor(s, 3.7) == 0 && st->rfactor == 3, "SetRFactor(3.7) -> %d",
          (int) st->rfactor);
   EXPECT(braid_StatusSetRefinementDtValues((braid_Status) s, 2.0, bad) == ARG,
          "SetRefinementDtValues with a negative step");
   EXPECT(st->rfactor == 3, "a refused request changed rfactor");
   EXPECT(braid_StatusSetRefinementDtValues((braid_Status) s, 2.0, dts) == 0
          && st->rfactor == 2 && st->rdtvalues != NULL && st->rdtvalues != dts
          && st->rdtvalues[0] == dts[0], "SetRefinementDtValues(2, dts): the rfactor - 1 = 1 "
          "step size, copied");
   EXPECT(braid_StepStatusSetRFactor(s, 1.0) == 0 && st->rfactor == 1 && st->rdtvalues == NULL,
          "SetRFactor(1) clears the step sizes");
   EXPECT(braid_StepStatusSetRSpace(s, 1.0) == 0 && st->r_space == 1, "SetRSpace(1)");
   EXPECT(braid_StepStatusSetRSpace(s, 0.0) == 0 && st->r_space == 0, "SetRSpace(0)");
   /* a request left standing (no refinement: rfactor 1): gone at the next callback */
   EXPECT(braid_StatusSetRefinementDtValues((braid_Status) s, 1.0, NULL) == 0, "DtValues(1)");
}

static int st_step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                   braid_StepStatus s)
{
   braid_Real tstart, tstop, t, t2, tol, rn[256], tail[2], est, spatial_tol;
   braid_Int tindex, level, nlevels, iter, nrefine, ntp, done, caller, iu, il, cf, n, l, top;
   char who[64];

   EXPECT(braid_StepStatusGetTstartTstop(s, &tstart, &tstop) == 0, "GetTstartTstop");
   braid_StepStatusGetT(s, &t);
   braid_StepStatusGetTstop(s, &t2);
   braid_StepStatusGetTIndex(s, &tindex);
   braid_StepStatusGetLevel(s, &level);
   braid_StepStatusGetNLevels(s, &nlevels);
   braid_StepStatusGetIter(s, &iter);
   braid_StepStatusGetNRefine(s, &nrefine);
   braid_StepStatusGetNTPoints(s, &ntp);
   braid_StepStatusGetTol(s, &tol);
   braid_StepStatusGetDone(s, &done);
   braid_StepStatusGetCallingFunction(s, &caller);
   snprintf(who, sizeof(who), "step(level %d, index %d)", (int) level, (int) tindex);

   EXPECT(t == tstart && t2 == tstop, "%s: GetT/GetTstop disagree with GetTstartTstop", who);
   EXPECT(level >= 0 && level < g_nlevels, "%s: level out of range", who);
   EXPECT(nlevels == g_nlevels, "%s: NLevels %d, expected %d", who, (int) nlevels, g_nlevels);
   EXPECT(close_to(tstart, time_of(level, tindex)), "%s: tstart %.17g, index says %.17g", who,
          tstart, time_of(level, tindex));
   EXPECT(close_to(tstop, time_of(level, tindex + 1)), "%s: tstop %.17g, expected %.17g", who,
          tstop, time_of(level, tindex + 1));
   EXPECT(tindex + 1 >= g_core->grids[level]->ilower && tindex + 1 <= g_core->grids[level]->iupper,
          "%s: steps to a point this rank does not hold", who);
   EXPECT(nrefine == 0 && ntp == NTIME, "%s: NRefine %d, NTPoints %d", who, (int) nrefine,
          (int) ntp);
   EXPECT(tol == 1e-10, "%s: Tol %g, expected the absolute tolerance 1e-10", who, tol);
   /* each cycle ends with one sync: cycle k (0-based) has seen k syncs, the final access
    * after the last cycle (done) as many as there were cycles; the top-of-cycle access
    * (access level 2) comes after its cycle's sync, before the count moves on */
   top = caller == braid_ASCaller_Drive_TopCycle;
   EXPECT(iter == g_nsync - top, "%s: Iter %d, but %d cycles ended before", who, (int) iter,
          g_nsync);
   EXPECT(done == 0 || caller == braid_ASCaller_FAccess, "%s: done %d in caller %d", who,
          (int) done, (int) caller);
   if (done) g_done_steps++;
   if (level >= 0 && level < MAXLEVELS) g_steps[level]++;
   if (caller >= 0 && caller < 16) g_callers[caller]++;

   /* the residual history so far: one entry per cycle ended, plus the final copy once done */
   n = 256;
   EXPECT(braid_StepStatusGetRNorms(s, &n, rn) == 0, "GetRNorms");
   EXPECT(n == iter + (done || top), "%s: %d residuals in the history at iteration %d", who,
          (int) n, (int) iter);
   if (n >= 2)
   {
      braid_Int m = -2;
      braid_StepStatusGetRNorms(s, &m, tail);
      EXPECT(m == 2 && tail[0] == rn[n - 2] && tail[1] == rn[n - 1], "%s: the last two "
             "residuals", who);
   }

   for (l = 0; l < g_nlevels; l++)
   {
      EXPECT(braid_StepStatusGetTIUL(s, &iu, &il, l) == 0, "GetTIUL");
      check_tiul(l, iu, il, who);
      EXPECT(braid_StepStatusGetCFactor(s, &cf, l) == 0, "GetCFactor");
      check_cfactor(l, cf, who);
   }
   EXPECT(braid_StepStatusGetSingleErrorEstStep(s, &est) == 0 && est == -1.0,
          "%s: no error estimation, yet an estimate %g", who, est);
   /* no user residual: the spatial tolerance is always the tight one */
   EXPECT(braid_GetSpatialAccuracy(s, 1e-2, 1e-8, &spatial_tol) == 0 && spatial_tol == 1e-8,
          "%s: spatial accuracy %g without a user residual", who, spatial_tol);

   check_setters(s, tstart, tstop);
   if (!g_step_checked_null)
   {
      g_step_checked_null = 1;
      check_null_outputs(s);
   }
   return app_step(app, ustop, fstop, u, s);
}

static int st_access(braid_App app, braid_Vector u, braid_AccessStatus s)
{
   braid_Real t, t2, rnorm, est;
   braid_Int index, iter, level, done, iter2, level2, done2, wtest, caller, nrefine, ntp,
      nlevels, cf;
   braid_AccessStatusGetT(s, &t);
   braid_AccessStatusGetTIndex(s, &index);
   braid_AccessStatusGetIter(s, &iter);
   braid_AccessStatusGetLevel(s, &level);
   braid_AccessStatusGetDone(s, &done);
   EXPECT(braid_AccessStatusGetTILD(s, &t2, &iter2, &level2, &done2) == 0, "GetTILD");
   EXPECT(t2 == t && iter2 == iter && level2 == level && done2 == done, "TILD disagrees");
   braid_AccessStatusGetWrapperTest(s, &wtest);
   braid_AccessStatusGetCallingFunction(s, &caller);
   braid_AccessStatusGetNRefine(s, &nrefine);
   braid_AccessStatusGetNTPoints(s, &ntp);
   braid_AccessStatusGetNLevels(s, &nlevels);
   braid_AccessStatusGetResidual(s, &rnorm);
   EXPECT(braid_AccessStatusGetCFactor(s, &cf, 0) == 0 && cf == 2, "access: CFactor(0)");
   EXPECT(braid_AccessStatusGetSingleErrorEstAccess(s, &est) == 0 && est == -1.0,
          "access: an estimate %g without estimation", est);

   EXPECT(level == 0 && wtest == 0 && nrefine == 0 && ntp == NTIME && nlevels == g_nlevels,
          "access(%d): level %d, wrapper test %d, nrefine %d, ntpoints %d, nlevels %d",
          (int) index, (int) level, (int) wtest, (int) nrefine, (int) ntp, (int) nlevels);
   EXPECT(index >= g_core->grids[0]->ilower && index <= g_core->grids[0]->iupper,
          "access(%d): not a point of this rank", (int) index);
   EXPECT(close_to(t, time_of(0, index)), "access(%d): t = %.17g", (int) index, t);
   if (done)
   {
      EXPECT(caller == braid_ASCaller_FAccess, "final access: caller %d", (int) caller);
      EXPECT(iter == g_nsync, "final access: iter %d after %d cycles", (int) iter, g_nsync);
      if (index >= 0 && index <= NTIME) g_final_access[index]++;
   }
   else
   {
      /* access level 2: top of each cycle, after that cycle's sync */
      EXPECT(caller == braid_ASCaller_Drive_TopCycle, "top access: caller %d", (int) caller);
      EXPECT(iter == g_nsync - 1, "top access: iter %d, %d syncs", (int) iter, g_nsync);
      if (iter >= 0 && iter < 128) g_top_residual[iter] = rnorm;
      g_top_access++;
   }
   return app_access(app, u, s);
}

static int st_sync(braid_App app, braid_SyncStatus s)
{
   braid_Int iu, il, l, iter, level, nlevels, nrefine, ntp, done, caller, proc, i, nest, cf,
      expected;
   braid_Real times[NTIME + 3], *tv = times, none;
   MPI_Comm comm;
   int cmp, nprocs;
   (void) app;
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
   braid_SyncStatusGetIter(s, &iter);
   braid_SyncStatusGetLevel(s, &level);
   braid_SyncStatusGetNLevels(s, &nlevels);
   braid_SyncStatusGetNRefine(s, &nrefine);
   braid_SyncStatusGetNTPoints(s, &ntp);
   braid_SyncStatusGetDone(s, &done);
   braid_SyncStatusGetCallingFunction(s, &caller);
   EXPECT(level == 0 && nlevels == g_nlevels && nrefine == 0 && ntp == NTIME,
          "sync: level %d, nlevels %d, nrefine %d, ntpoints %d", (int) level, (int) nlevels,
          (int) nrefine, (int) ntp);
   EXPECT(caller == braid_ASCaller_Drive_TopCycle, "sync: caller %d", (int) caller);
   if (done)
   {
      EXPECT(iter == g_nsync, "final sync: iter %d after %d cycles", (int) iter, g_nsync);
      g_niter_final = (int) iter;
   }
   else
   {
      EXPECT(iter == g_nsync, "sync of cycle %d reports iter %d", g_nsync, (int) iter);
      g_nsync++;
   }

   for (l = 0; l < g_nlevels; l++)
   {
      EXPECT(braid_SyncStatusGetTIUL(s, &iu, &il, l) == 0, "sync: GetTIUL");
      check_tiul(l, iu, il, "sync");
      EXPECT(braid_SyncStatusGetCFactor(s, &cf, l) == 0, "sync: GetCFactor");
      check_cfactor(l, cf, "sync");
      /* this rank's times and one neighbour on each side */
      EXPECT(braid_SyncStatusGetTimeValues(s, &tv, iu + 1, il - 1, l) == 0, "sync: TimeValues");
      for (i = il - 1; i <= iu + 1; i++)
      {
         EXPECT(close_to(times[i - il + 1], time_of(l, i)), "sync: time of %d on level %d = "
                "%.17g", (int) i, (int) l, times[i - il + 1]);
      }
      EXPECT(braid_SyncStatusGetTimeValues(s, &tv, iu, il - 2, l) == ARG,
             "sync: TimeValues beyond the neighbour");
      EXPECT(braid_SyncStatusGetTimeValues(s, &tv, iu + 2, il, l) == ARG,
             "sync: TimeValues beyond the neighbour");
      for (i = -1; i <= g_core->grids[l]->gupper + 1; i++)
      {
         EXPECT(braid_SyncStatusGetProc(s, &proc, l, i) == 0, "sync: GetProc");
         if (i < 0 || i > g_core->grids[l]->gupper) expected = -1;
         else
         {
            /* the rank whose fine block holds the level's point (grids are nested) */
            _braid_GetBlockDistProc(NTIME + 1, nprocs, i << l, 0, &expected);
         }
         EXPECT(proc == expected, "sync: GetProc(level %d, %d) = %d, expected %d", (int) l,
                (int) i, (int) proc, (int) expected);
      }
   }
   EXPECT(braid_SyncStatusGetTComm(s, &comm) == 0, "sync: GetTComm");
   MPI_Comm_compare(comm, MPI_COMM_WORLD, &cmp);
   EXPECT(cmp == MPI_IDENT || cmp == MPI_CONGRUENT, "sync: the temporal communicator");
   EXPECT(braid_SyncStatusGetNumErrorEst(s, &nest) == 0 && nest == 0, "sync: %d estimates",
          (int) nest);
   EXPECT(braid_SyncStatusGetAllErrorEst(s, NULL) == 0, "sync: no estimates to copy");
   EXPECT(braid_SyncStatusGetAllErrorEst(s, &none) == 0, "sync: no estimates to copy");
   return 0;
}

static int st_bufpack(braid_App app, braid_Vector u, void *buffer, braid_BufferStatus s)
{
   braid_Int type, index, level;
   braid_BufferStatusGetMessageType(s, &type);
   braid_BufferStatusGetTIndex(s, &index);
   braid_BufferStatusGetLevel(s, &level);
   EXPECT(type == 0, "bufpack: message type %d", (int) type);
   EXPECT(level >= 0 && level < g_nlevels && index == g_core->grids[level]->iupper,
          "bufpack: level %d, index %d (not this rank's last point)", (int) level, (int) index);
   EXPECT(braid_BufferStatusSetSize(s, -1.0) == ARG, "SetSize(-1)");
   EXPECT(braid_BufferStatusSetSize(s, NAN) == ARG, "SetSize(NaN)");
   g_packs++;
   return app_bufpack(app, u, buffer, s);
}

static int st_bufunpack(braid_App app, void *buffer, braid_Vector *u_ptr, braid_BufferStatus s)
{
   braid_Int type, index, level;
   braid_BufferStatusGetMessageType(s, &type);
   braid_BufferStatusGetTIndex(s, &index);
   braid_BufferStatusGetLevel(s, &level);
   EXPECT(type == 0, "bufunpack: message type %d", (int) type);
   EXPECT(level >= 0 && level < g_nlevels && index == g_core->grids[level]->ilower - 1,
          "bufunpack: level %d, index %d (not left of this rank)", (int) level, (int) index);
   g_unpacks++;
   return app_bufunpack(app, buffer, u_ptr, s);
}

static void solve_and_check(int nprocs)
{
   my_App *app = app_create(NTIME);
   braid_Real rnorms[128];
   braid_Int n, niter, i, ilower, iupper, k;
   braid_Core core;
   int total_done_steps = 0;

   braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, TSTOP, NTIME, app, st_step, app_init,
              app_clone, app_free, app_sum, app_norm, st_access, app_bufsize, st_bufpack,
              st_bufunpack, &core);
   g_core = core;
   braid_SetPrintLevel(core, 0);
   braid_SetMaxLevels(core, MAXLEVELS);
   braid_SetAbsTol(core, 1e-10);
   braid_SetAccessLevel(core, 2);
   braid_SetSync(core, st_sync);
   /* levels: 20, 10 and 5 intervals (min_coarse 2 would allow more; max_levels stops it) */
   g_nlevels = MAXLEVELS;

   EXPECT(braid_Drive(core) == 0, "drive");
   braid_GetNumIter(core, &niter);
   EXPECT(niter >= 3, "only %d iterations: too few to check the history", (int) niter);
   EXPECT(g_niter_final == niter, "final sync iter %d, braid_GetNumIter %d", g_niter_final,
          (int) niter);
   EXPECT(g_nsync == niter, "%d cycle syncs for %d iterations", g_nsync, (int) niter);
   EXPECT(g_top_access > 0, "no top-of-cycle access with access level 2");

   /* the residual each top-of-cycle access saw is the one the history kept */
   n = 128;
   braid_GetRNorms(core, &n, rnorms);
   EXPECT(n == niter + 1, "history of %d entries", (int) n);
   for (k = 0; k < niter && k < 128; k++)
   {
      EXPECT(g_top_residual[k] == rnorms[k], "access at iteration %d saw residual %g, the "
             "history holds %g", (int) k, g_top_residual[k], rnorms[k]);
   }

   /* the final access visits each local point once */
   _braid_GetDistribution(core, &ilower, &iupper);
   for (i = 0; i <= NTIME; i++)
   {
      int expected = i >= ilower && i <= iupper ? 1 : 0;
      EXPECT(g_final_access[i] == expected, "final access at %d: %d times", (int) i,
             g_final_access[i]);
   }
   EXPECT(g_steps[0] > 0 && g_steps[1] > 0 && g_steps[2] > 0, "steps per level: %d %d %d",
          g_steps[0], g_steps[1], g_steps[2]);
   EXPECT(g_callers[braid_ASCaller_FCRelax] > 0 && g_callers[braid_ASCaller_FRestrict] > 0
          && g_callers[braid_ASCaller_FInterp] > 0 && g_callers[braid_ASCaller_FAccess] > 0,
          "callers seen: FCRelax %d, FRestrict %d, FInterp %d, FAccess %d",
          g_callers[braid_ASCaller_FCRelax], g_callers[braid_ASCaller_FRestrict],
          g_callers[braid_ASCaller_FInterp], g_callers[braid_ASCaller_FAccess]);
   MPI_Allreduce(&g_done_steps, &total_done_steps, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
   EXPECT(total_done_steps > 0, "no step saw done = 1");
   if (nprocs > 1) EXPECT(g_packs > 0 || g_unpacks > 0, "no message between ranks");

   /* the coarsen/refine status the engine's spatial coarsening fills */
   {
      _braid_Status *st = _braid_CoarsenRefStatusFor(core, 0, ilower, time_of(0, ilower), 0.1,
                                                     0.3, 0.05, 0.45);
      braid_CoarsenRefStatus cs = (braid_CoarsenRefStatus) st;
      braid_Real t, fp, fs, cp, cst, v;
      braid_Int idx, it, lev, nlev, nref, ntp;
      EXPECT(braid_CoarsenRefStatusGetTpriorTstop(cs, &t, &fp, &fs, &cp, &cst) == 0,
             "CoarsenRef: GetTpriorTstop");
      EXPECT(t == time_of(0, ilower) && fp == 0.1 && fs == 0.3 && cp == 0.05 && cst == 0.45,
             "CoarsenRef: TpriorTstop %g %g %g %g %g", t, fp, fs, cp, cst);
      EXPECT(braid_CoarsenRefStatusGetFTprior(cs, &v) == 0 && v == 0.1, "FTprior");
      EXPECT(braid_CoarsenRefStatusGetFTstop(cs, &v) == 0 && v == 0.3, "FTstop");
      EXPECT(braid_CoarsenRefStatusGetCTprior(cs, &v) == 0 && v == 0.05, "CTprior");
      EXPECT(braid_CoarsenRefStatusGetCTstop(cs, &v) == 0 && v == 0.45, "CTstop");
      EXPECT(braid_CoarsenRefStatusGetT(cs, &v) == 0 && v == t, "CoarsenRef: GetT");
      braid_CoarsenRefStatusGetTIndex(cs, &idx);
      braid_CoarsenRefStatusGetIter(cs, &it);
      braid_CoarsenRefStatusGetLevel(cs, &lev);
      braid_CoarsenRefStatusGetNLevels(cs, &nlev);
      braid_CoarsenRefStatusGetNRefine(cs, &nref);
      braid_CoarsenRefStatusGetNTPoints(cs, &ntp);
      EXPECT(idx == ilower && it == niter && lev == 0 && nlev == g_nlevels && nref == 0
             && ntp == NTIME, "CoarsenRef: index %d iter %d level %d nlevels %d nrefine %d "
             "ntpoints %d", (int) idx, (int) it, (int) lev, (int) nlev, (int) nref, (int) ntp);
      EXPECT(braid_CoarsenRefStatusGetCTstop(cs, NULL) == ARG, "CTstop(NULL)");
   }

   braid_Destroy(core);
   app_destroy(app);
}

/* ---- braid_GetSpatialAccuracy on a core whose residual history the test writes ---- */

static int dummy_residual(braid_App app, braid_Vector ustop, braid_Vector r,
                          braid_StepStatus status)
{
   (void) app;
   (void) ustop;
   (void) r;
   (void) status;
   return 0;
}

static void set_history(braid_Core core, int n, const double *values)
{
   int k;
   if (core->rnorms_capacity < 16)
   {
      free(core->rnorms);
      core->rnorms = (braid_Real *) malloc(16 * sizeof(braid_Real));
      core->rnorms_capacity = 16;
   }
   for (k = 0; k < n; k++) core->rnorms[k] = values[k];
   core->nrnorms = n;
}

static double accuracy(braid_Core core, braid_Int level, braid_Real loose, braid_Real tight)
{
   _braid_Status *st = _braid_StatusFor(core, level, 0, 0.0, 0.1, braid_ASCaller_FCRelax);
   braid_Real tol = -7.0;
   EXPECT(braid_GetSpatialAccuracy((braid_StepStatus) st, loose, tight, &tol) == 0,
          "braid_GetSpatialAccuracy");
   return tol;
}

static void check_spatial_accuracy(void)
{
   my_App *app = app_create(8);
   braid_Core core, plain;
   _braid_Status bare;
   braid_Real old, tol;
   const double h1[] = {-1.0, 1.0}, h2[] = {-1.0, 1.0, 1e-3}, h3[] = {-1.0, 1.0, 1e-3, 1e-1},
                h4[] = {-1.0, 1.0, 1e-3, 1e-1, 1e-7}, h5[] = {1e-1, 1e-2};
   const double loose = 1e-2, tight = 1e-8;

   core_create(app, 1.0, &core);
   braid_SetPrintLevel(core, 0);
   braid_SetResidual(core, dummy_residual);
   braid_SetRelTol(core, 1e-6);

   /* no residual yet: tight, and nothing remembered */
   tol = accuracy(core, 0, loose, tight);
   EXPECT(tol == tight && core->old_fine_tolx == -1.0 && core->tight_fine_tolx == 1,
          "no history: %g (old %g)", tol, core->old_fine_tolx);
   /* the first residual: nothing gained yet, loose */
   set_history(core, 2, h1);
   tol = accuracy(core, 0, loose, tight);
   EXPECT(tol == loose && core->tight_fine_tolx == 0, "at r0: %g", tol);
   braid_StepStatusGetOldFineTolx((braid_StepStatus) &core->status, &old);
   EXPECT(old == loose, "old_fine_tolx %g after returning %g", old, loose);
   /* halfway to the threshold 1e-6 * r0 on a log scale: halfway from 1e-2 to 1e-8 */
   set_history(core, 3, h2);
   tol = accuracy(core, 0, loose, tight);
   EXPECT(fabs(tol - 1e-5) < 1e-5 * 1e-10, "halfway: %.17g, expected 1e-5", tol);
   /* the residual grew: the tolerance does not loosen */
   set_history(core, 4, h3);
   EXPECT(accuracy(core, 0, loose, tight) == tol, "the fine tolerance loosened");
   /* coarse levels: loose */
   EXPECT(accuracy(core, 1, loose, tight) == loose, "coarse level: not loose");
   /* below the threshold: tight */
   set_history(core, 5, h4);
   tol = accuracy(core, 0, loose, tight);
   EXPECT(tol == tight && core->tight_fine_tolx == 1, "converged: %g", tol);
   /* a loose_tol below tight_tol gives tight_tol */
   EXPECT(accuracy(core, 1, 1e-9, tight) == tight, "loose below tight");
   /* absolute tolerance 1e-4 from r0 = 1e-1: a third of the way at 1e-2 */
   braid_SetAbsTol(core, 1e-4);
   core->old_fine_tolx = -1.0;
   set_history(core, 2, h5);
   tol = accuracy(core, 0, loose, tight);
   EXPECT(fabs(tol - 1e-4) < 1e-4 * 1e-10, "absolute tolerance: %.17g, expected 1e-4", tol);
   /* bad tolerances */
   {
      braid_StepStatus s = (braid_StepStatus) &core->status;
      EXPECT(braid_GetSpatialAccuracy(s, 0.0, tight, &tol) == ARG, "loose_tol 0");
      EXPECT(braid_GetSpatialAccuracy(s, loose, -1.0, &tol) == ARG, "tight_tol -1");
      EXPECT(braid_GetSpatialAccuracy(s, loose, NAN, &tol) == ARG, "tight_tol NaN");
      EXPECT(braid_GetSpatialAccuracy(NULL, loose, tight, &tol) == ARG, "NULL status");
      EXPECT(braid_StepStatusSetOldFineTolx(s, 3e-3) == 0 && core->old_fine_tolx == 3e-3,
             "SetOldFineTolx");
      EXPECT(braid_StepStatusSetTightFineTolx(s, 0.0) == 0 && core->tight_fine_tolx == 0,
             "SetTightFineTolx(0)");
      EXPECT(braid_StepStatusSetTightFineTolx(s, 1.0) == 0 && core->tight_fine_tolx == 1,
             "SetTightFineTolx(1)");
   }
   braid_Destroy(core);

   /* without a user residual, and without a core: always tight */
   core_create(app, 1.0, &plain);
   braid_SetPrintLevel(plain, 0);
   set_history(plain, 2, h1);
   EXPECT(accuracy(plain, 0, loose, tight) == tight, "no user residual, fine level");
   EXPECT(accuracy(plain, 1, loose, tight) == tight, "no user residual, coarse level");
   braid_Destroy(plain);
   _braid_StatusInit(&bare);
   EXPECT(braid_GetSpatialAccuracy((braid_StepStatus) &bare, loose, tight, &tol) == 0
          && tol == tight, "no core: %g", tol);
   app_destroy(app);
}

/* ---- a status without a core (as braid_Test* builds it) and NULL statuses ---- */

static void check_bare_and_null(void)
{
   _braid_Status bare;
   braid_Status b = (braid_Status) &bare, z = NULL;
   braid_Int i, n;
   braid_Real r, *rp = &r;
   MPI_Comm comm;
   _braid_StatusInit(&bare);
   bare.t = 0.25;
   bare.wrapper_test = 1;
   EXPECT(braid_StatusGetT(b, &r) == 0 && r == 0.25, "bare: GetT");
   EXPECT(braid_StatusGetWrapperTest(b, &i) == 0 && i == 1, "bare: WrapperTest");
   EXPECT(braid_StatusGetNRefine(b, &i) == 0 && i == 0, "bare: NRefine");
   EXPECT(braid_StatusGetNTPoints(b, &i) == 0 && i == 0, "bare: NTPoints");
   n = 4;
   EXPECT(braid_StatusGetRNorms(b, &n, &r) == 0 && n == 0, "bare: no history");
   EXPECT(braid_StatusGetOldFineTolx(b, &r) == 0 && r == -1.0, "bare: OldFineTolx");
   EXPECT(braid_StatusSetOldFineTolx(b, 1e-3) == 0, "bare: SetOldFineTolx accepted");
   EXPECT(braid_StatusGetNumErrorEst(b, &i) == 0 && i == 0, "bare: NumErrorEst");
   EXPECT(braid_StatusGetSingleErrorEstAccess(b, &r) == 0 && r == -1.0, "bare: estimate");
   EXPECT(braid_StatusGetTIUL(b, &i, &i, 0) == ARG, "bare: TIUL needs a grid");
   EXPECT(braid_StatusGetCFactor(b, &i, 0) == ARG, "bare: CFactor needs a grid");
   EXPECT(braid_StatusGetProc(b, &i, 0, 0) == ARG, "bare: Proc needs a grid");
   EXPECT(braid_StatusGetTimeValues(b, &rp, 0, 0, 0) == ARG, "bare: TimeValues");
   EXPECT(braid_StatusGetTComm(b, &comm) == ARG, "bare: TComm");

   /* every generic function with a NULL status */
   EXPECT(braid_StatusGetT(z, &r) == ARG, "NULL: GetT");
   EXPECT(braid_StatusGetTIndex(z, &i) == ARG, "NULL: GetTIndex");
   EXPECT(braid_StatusGetIter(z, &i) == ARG, "NULL: GetIter");
   EXPECT(braid_StatusGetLevel(z, &i) == ARG, "NULL: GetLevel");
   EXPECT(braid_StatusGetNLevels(z, &i) == ARG, "NULL: GetNLevels");
   EXPECT(braid_StatusGetNRefine(z, &i) == ARG, "NULL: GetNRefine");
   EXPECT(braid_StatusGetNTPoints(z, &i) == ARG, "NULL: GetNTPoints");
   EXPECT(braid_StatusGetResidual(z, &r) == ARG, "NULL: GetResidual");
   EXPECT(braid_StatusGetDone(z, &i) == ARG, "NULL: GetDone");
   EXPECT(braid_StatusGetTIUL(z, &i, &i, 0) == ARG, "NULL: GetTIUL");
   EXPECT(braid_StatusGetTimeValues(z, &rp, 0, 0, 0) == ARG, "NULL: GetTimeValues");
   EXPECT(braid_StatusGetTILD(z, &r, &i, &i, &i) == ARG, "NULL: GetTILD");
   EXPECT(braid_StatusGetWrapperTest(z, &i) == ARG, "NULL: GetWrapperTest");
   EXPECT(braid_StatusGetCallingFunction(z, &i) == ARG, "NULL: GetCallingFunction");
   EXPECT(braid_StatusGetCFactor(z, &i, 0) == ARG, "NULL: GetCFactor");
   EXPECT(braid_StatusGetCTprior(z, &r) == ARG, "NULL: GetCTprior");
   EXPECT(braid_StatusGetCTstop(z, &r) == ARG, "NULL: GetCTstop");
   EXPECT(braid_StatusGetFTprior(z, &r) == ARG, "NULL: GetFTprior");
   EXPECT(braid_StatusGetFTstop(z, &r) == ARG, "NULL: GetFTstop");
   EXPECT(braid_StatusGetTpriorTstop(z, &r, &r, &r, &r, &r) == ARG, "NULL: GetTpriorTstop");
   EXPECT(braid_StatusGetTstop(z, &r) == ARG, "NULL: GetTstop");
   EXPECT(braid_StatusGetTstartTstop(z, &r, &r) == ARG, "NULL: GetTstartTstop");
   EXPECT(braid_StatusGetTol(z, &r) == ARG, "NULL: GetTol");
   n = 0;
   EXPECT(braid_StatusGetRNorms(z, &n, &r) == ARG, "NULL: GetRNorms");
   EXPECT(braid_StatusGetProc(z, &i, 0, 0) == ARG, "NULL: GetProc");
   EXPECT(braid_StatusGetOldFineTolx(z, &r) == ARG, "NULL: GetOldFineTolx");
   EXPECT(braid_StatusSetOldFineTolx(z, 1.0) == ARG, "NULL: SetOldFineTolx");
   EXPECT(braid_StatusSetTightFineTolx(z, 1.0) == ARG, "NULL: SetTightFineTolx");
   EXPECT(braid_StatusSetRFactor(z, 2.0) == ARG, "NULL: SetRFactor");
   EXPECT(braid_StatusSetRefinementDtValues(z, 1.0, NULL) == ARG, "NULL: DtValues");
   EXPECT(braid_StatusSetRSpace(z, 1.0) == ARG, "NULL: SetRSpace");
   EXPECT(braid_StatusGetMessageType(z, &i) == ARG, "NULL: GetMessageType");
   EXPECT(braid_StatusSetSize(z, 8.0) == ARG, "NULL: SetSize");
   EXPECT(braid_StatusGetSingleErrorEstStep(z, &r) == ARG, "NULL: ErrorEstStep");
   EXPECT(braid_StatusGetSingleErrorEstAccess(z, &r) == ARG, "NULL: ErrorEstAccess");
   EXPECT(braid_StatusGetNumErrorEst(z, &i) == ARG, "NULL: GetNumErrorEst");
   EXPECT(braid_StatusGetAllErrorEst(z, &r) == ARG, "NULL: GetAllErrorEst");
   EXPECT(braid_StatusGetTComm(z, &comm) == ARG, "NULL: GetTComm");
   /* a few typed ones, of each kind */
   EXPECT(braid_AccessStatusGetTILD(NULL, &r, &i, &i, &i) == ARG, "NULL: Access TILD");
   EXPECT(braid_SyncStatusGetTIUL(NULL, &i, &i, 0) == ARG, "NULL: Sync TIUL");
   EXPECT(braid_SyncStatusGetTComm(NULL, &comm) == ARG, "NULL: Sync TComm");
   EXPECT(braid_StepStatusSetRFactor(NULL, 1.0) == ARG, "NULL: Step SetRFactor");
   EXPECT(braid_BufferStatusSetSize(NULL, 1.0) == ARG, "NULL: Buffer SetSize");
   EXPECT(braid_CoarsenRefStatusGetTpriorTstop(NULL, &r, &r, &r, &r, &r) == ARG,
          "NULL: CoarsenRef TpriorTstop");
}

int main(int argc, char *argv[])
{
   int nprocs;
   MPI_Init(&argc, &argv);
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
   solve_and_check(nprocs);
   check_spatial_accuracy();
   check_bare_and_null();
   return finish("status");
}
