/*
 * Drop-in behaviour that programs built on XBraid rely on, through the semi-private surface
 * (_braid.h): the reverted-ranks layout is the mirror image of each rank's forward block
 * (before and after braid_Drive), init is called only at fine-grid C-points whatever the
 * storage, stored vectors are reachable with _braid_UGetVectorRef, warm_restart says which
 * drive this is, and ta[] holds the time points with one neighbour on each side; util.h's
 * helpers and _braid_GetCFactor.
 */
#include "_braid.h"
#include "status.h"
#include "test_app.h"
#include "util.h"

static int ninit, init_bad, init_cf, init_ntime;
static double init_tstop;

/* app_init, counting its calls and checking each is at a fine C-point. */
static int counting_init(braid_App app, double t, braid_Vector *u_ptr)
{
   double x = t / init_tstop * init_ntime;
   long i = lround(x);
   ninit++;
   if (fabs(x - (double) i) > 1e-9 || i % init_cf != 0) init_bad++;
   return app_init(app, t, u_ptr);
}

static void check_layout(int ntime, int rank, int nprocs)
{
   braid_Core core;
   my_App *app = app_create(ntime);
   braid_Int lo, hi, flo, fhi, i, proc, mine = 0, total = 0;
   braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, ntime, app, app_step, app_init,
              app_clone, app_free, app_sum, app_norm, app_access, app_bufsize, app_bufpack,
              app_bufunpack, &core);
   braid_SetPrintLevel(core, 0);
   braid_SetRevertedRanks(core, 1);
   braid_SetMaxLevels(core, 3);
   _braid_GetBlockDistInterval(ntime + 1, nprocs, rank, &flo, &fhi);
   _braid_GetDistribution(core, &lo, &hi);
   EXPECT(lo == ntime - fhi && hi == ntime - flo,
          "ntime %d, rank %d of %d: reverted block [%d, %d] before Drive, expected the mirror "
          "[%d, %d] of the forward block", ntime, rank, nprocs, lo, hi, ntime - fhi, ntime - flo);
   EXPECT(braid_Drive(core) == 0, "reverted drive, ntime %d", ntime);
   EXPECT(core->grids[0]->ilower == lo && core->grids[0]->iupper == hi,
          "ntime %d rank %d: grid [%d, %d] after Drive, _braid_GetDistribution said [%d, %d]",
          ntime, rank, core->grids[0]->ilower, core->grids[0]->iupper, lo, hi);
   for (i = 0; i <= ntime; i++)
   {
      _braid_GetProc(core, 0, i, &proc);
      EXPECT((proc == rank) == (i >= lo && i <= hi), "ntime %d: _braid_GetProc(%d) = %d on "
             "rank %d holding [%d, %d]", ntime, i, proc, rank, lo, hi);
      mine += proc == rank;
   }
   MPI_Allreduce(&mine, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
   EXPECT(total == ntime + 1, "ntime %d: %d points owned in all, expected %d", ntime, total,
          ntime + 1);
   braid_Destroy(core);
   app_destroy(app);
}

static void check_init_and_storage(int storage, int cfactor, int rank)
{
   braid_Core core;
   my_App *app = app_create(36);
   braid_Int ilower, iupper, i, expected = 0;
   braid_BaseVector ref;
   ninit = init_bad = 0;
   init_cf = cfactor;
   init_ntime = 36;
   init_tstop = 2.0;
   braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 2.0, 36, app, app_step, counting_init,
              app_clone, app_free, app_sum, app_norm, app_access, app_bufsize, app_bufpack,
              app_bufunpack, &core);
   braid_SetPrintLevel(core, 0);
   braid_SetMaxLevels(core, 3);
   braid_SetCFactor(core, -1, cfactor);
   braid_SetStorage(core, storage);
   braid_SetAbsTol(core, 1e-12);
   EXPECT(braid_Drive(core) == 0, "drive, storage %d", storage);
   EXPECT(core->warm_restart == 0, "warm_restart = %d on the first drive", core->warm_restart);
   ilower = core->grids[0]->ilower;
   iupper = core->grids[0]->iupper;
   for (i = ilower; i <= iupper; i++) expected += i % cfactor == 0;
   EXPECT(ninit == expected && init_bad == 0, "storage %d, cf %d, rank %d: init called %d "
          "times (%d away from C-points), expected once per local fine C-point (%d)",
          storage, cfactor, rank, ninit, init_bad, expected);
   for (i = ilower; i <= iupper; i++)
   {
      int stored = storage == 0 || i % cfactor == 0;
      _braid_UGetVectorRef(core, 0, i, &ref);
      EXPECT((ref != NULL) == stored, "storage %d: point %d %s", storage, i,
             stored ? "has no stored vector" : "unexpectedly stored");
      if (ref != NULL)
      {
         int k;
         for (k = 0; k < NDIM; k++)
         {
            EXPECT(ref->userVector->v[k] == app->solution[i * NDIM + k], "UGetVectorRef at %d "
                   "is not the converged vector access saw", i);
         }
      }
   }
   for (i = ilower - 1; i <= iupper + 1; i++)
   {
      double t = (((double) i) / 36) * 2.0;
      EXPECT(core->grids[0]->ta[i - ilower] == t, "ta[%d] = %g, expected %g", i,
             core->grids[0]->ta[i - ilower], t);
   }
   ninit = 0;
   EXPECT(braid_Drive(core) == 0, "second drive");
   EXPECT(core->warm_restart == 1, "warm_restart = %d on the second drive", core->warm_restart);
   EXPECT(ninit == (ilower == 0), "a warm restart calls init only for the initial condition "
          "(%d calls on rank %d)", ninit, rank);
   braid_Destroy(core);
   app_destroy(app);
}

static void check_util(void)
{
   braid_Core core;
   my_App *app = app_create(20);
   braid_Int lo, hi, flo, fhi, ci, cf, k;
   braid_Real hist[4] = {1.0, 0.5, 0.25, 0.125}, got[4], mx;
   _braid_ProjectInterval(3, 17, 1, 4, &lo, &hi); /* 5, 9, 13, 17 */
   EXPECT(lo == 5 && hi == 17, "_braid_ProjectInterval(3, 17, 1, 4) = [%d, %d]", lo, hi);
   k = -2;
   _braid_GetNEntries(hist, 4, &k, got);
   EXPECT(k == 2 && got[0] == 0.25 && got[1] == 0.125, "_braid_GetNEntries(-2)");
   _braid_Max(hist, 4, &mx);
   EXPECT(mx == 1.0, "_braid_Max = %g", mx);
   core_create(app, 1.0, &core);
   braid_SetPrintLevel(core, 0);
   braid_SetCFactor(core, -1, 4);
   _braid_GetCFactor(core, 0, &cf);
   EXPECT(cf == 4, "_braid_GetCFactor before Drive: %d", cf);
   EXPECT(braid_Drive(core) == 0, "util drive");
   _braid_GetCFactor(core, 1, &cf);
   EXPECT(cf == core->grids[1]->gupper + 1, "_braid_GetCFactor of the coarsest level: %d", cf);
   /* interval 1 of level 0: F-points after the first C-point, then the next C-point */
   _braid_GetInterval(core, 0, 1, &flo, &fhi, &ci);
   if (core->grids[0]->clower + 4 <= core->grids[0]->iupper)
   {
      EXPECT(flo == core->grids[0]->clower + 1 && fhi == flo + 2 && ci == fhi + 1,
             "_braid_GetInterval(level 0, 1) = [%d, %d], C-point %d", flo, fhi, ci);
   }
   braid_Destroy(core);
   app_destroy(app);
}

int main(int argc, char *argv[])
{
   static const int ntimes[] = {4, 7, 10, 16, 33, 64};
   int rank, nprocs, k;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
   for (k = 0; k < (int) (sizeof(ntimes) / sizeof(ntimes[0])); k++)
   {
      check_layout(ntimes[k], rank, nprocs);
   }
   check_init_and_storage(-1, 2, rank);
   check_init_and_storage(0, 2, rank);
   check_init_and_storage(1, 3, rank);
   check_init_and_storage(0, 3, rank);
   check_util();
   return finish("dropin");
}
