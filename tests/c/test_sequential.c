/*
 * max_levels = 1 is plain sequential time stepping, bit for bit; converged MGRIT agrees with it
 * to the tolerance; both are identical for any number of ranks (the test runs on 1-4 ranks and
 * checks against the same sequential loop).
 */
#include "test_app.h"

static double max_diff(const double *a, const double *b, int n)
{
   double d = 0.0;
   int k;
   for (k = 0; k < n; k++)
   {
      double e = fabs(a[k] - b[k]);
      if (e > d || e != e) d = e;
   }
   return d;
}

static void solve(int ntime, int max_levels, int cf, int storage, int reverted, double *out,
                  int *niter)
{
   braid_Core core;
   my_App *app = app_create(ntime);
   core_create(app, 2.0, &core);
   braid_SetPrintLevel(core, 0);
   braid_SetMaxLevels(core, max_levels);
   braid_SetCFactor(core, -1, cf);
   braid_SetStorage(core, storage);
   braid_SetRevertedRanks(core, reverted);
   braid_SetAbsTol(core, 1e-13);
   braid_SetMaxIter(core, 200);
   EXPECT(braid_Drive(core) == 0, "drive ml=%d cf=%d", max_levels, cf);
   braid_GetNumIter(core, niter);
   gather_solution(app);
   memcpy(out, app->solution, sizeof(double) * (size_t) (ntime + 1) * NDIM);
   braid_Destroy(core);
   app_destroy(app);
}

int main(int argc, char *argv[])
{
   const int ntime = 101;
   const int n = (ntime + 1) * NDIM;
   double *ref, *u = (double *) malloc(sizeof(double) * n);
   int rank, niter, storage, reverted, cf;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   ref = sequential_solution(ntime, 2.0);

   for (storage = -1; storage <= 0; storage++)
   {
      for (reverted = 0; reverted <= 1; reverted++)
      {
         solve(ntime, 1, 2, storage, reverted, u, &niter);
         if (rank == 0)
         {
            EXPECT(memcmp(u, ref, sizeof(double) * n) == 0,
                   "one level differs from sequential stepping (max %g, storage %d)",
                   max_diff(u, ref, n), storage);
            EXPECT(niter == 0, "one level reports %d iterations", niter);
         }
         for (cf = 2; cf <= 8; cf *= 2)
         {
            solve(ntime, 4, cf, storage, reverted, u, &niter);
            if (rank == 0)
            {
               EXPECT(max_diff(u, ref, n) < 1e-11, "MGRIT cf=%d storage=%d differs by %g", cf,
                      storage, max_diff(u, ref, n));
               EXPECT(niter > 1, "MGRIT cf=%d took %d iterations", cf, niter);
            }
         }
      }
   }
   free(ref);
   free(u);
   return finish("sequential");
}
