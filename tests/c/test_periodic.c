/*
 * Periodic problems (braid_SetPeriodic): u' = -u + cos(t) on one period [0, 2 pi], backward
 * Euler. The discrete periodic solution solves u_i = (u_{i-1} + dt cos t_i) / (1 + dt) for
 * i = 1..N with u_N = u_0; it is computed here directly (u_0 from the one-period map, then
 * the recurrence). MGRIT starts from a guess that is not the solution and must converge to
 * it, with 3, 4 and 5 levels, the same on any number of ranks.
 */
#include "scalar_app.h"
#include "test_app.h"

enum { N = 96 };

static double forcing(double t) { return cos(t); }

static void periodic_solution(double *u)
{
   double dt = 2.0 * M_PI / N, a = 1.0 / (1.0 + dt), b = 0.0;
   int i;
   /* u_N = a^N u_0 + b with b the image of 0: u_0 = b / (1 - a^N) */
   for (i = 1; i <= N; i++) b = a * (b + dt * cos(i * dt));
   u[0] = b / (1.0 - pow(a, N));
   for (i = 1; i < N; i++) u[i] = a * (u[i - 1] + dt * cos(i * dt));
}

static void solve(MPI_Comm comm, int max_levels, double *u, int *niter)
{
   struct scalar_app app = {-1.0, forcing, 0.7, 0.3, NULL, NULL};
   braid_Core core = scalar_core(&app, comm, 2.0 * M_PI, N);
   braid_SetMaxLevels(core, max_levels);
   braid_SetPeriodic(core, 1);
   braid_SetAbsTol(core, 1e-13);
   braid_SetMaxIter(core, 60);
   EXPECT(braid_Drive(core) == 0, "periodic drive, %d levels", max_levels);
   braid_GetNumIter(core, niter);
   braid_Destroy(core);
   MPI_Reduce(app.u, u, N, MPI_DOUBLE, MPI_SUM, 0, comm);
   free(app.u);
   free(app.est);
}

int main(int argc, char *argv[])
{
   double exact[N], u[N], u_one[N];
   int rank, i, ml, niter, niter_one;
   MPI_Comm self;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Comm_split(MPI_COMM_WORLD, rank, 0, &self);
   periodic_solution(exact);
   for (ml = 3; ml <= 5; ml++)
   {
      solve(MPI_COMM_WORLD, ml, u, &niter);
      if (rank == 0)
      {
         solve(self, ml, u_one, &niter_one);
         EXPECT(niter == niter_one && niter < 60, "%d levels: %d iterations (%d on one rank)",
                ml, niter, niter_one);
         for (i = 0; i < N; i++)
         {
            EXPECT(fabs(u[i] - exact[i]) < 1e-11, "%d levels, point %d: %.15g, the periodic "
                   "solution is %.15g", ml, i, u[i], exact[i]);
            EXPECT(u[i] == u_one[i], "%d levels, point %d: %.17g here, %.17g on one rank", ml,
                   i, u[i], u_one[i]);
         }
      }
   }
   MPI_Comm_free(&self);
   return finish("periodic");
}
