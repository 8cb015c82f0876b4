/*
 * Richardson extrapolation and error estimation (braid_SetRichardsonEstimation) on the scalar
 * ODE u' = -u, backward Euler u_i = u_{i-1} / (1 + dt):
 *  - the converged C-point values equal the sequential extrapolated recurrence
 *    u_ci = 2 Phi^2(u_{ci-2}) - Phi_c(u_{ci-2}) (cfactor 2, local order 2), computed here;
 *  - they are second-order accurate: halving dt divides the error at tstop by about 4
 *    (without extrapolation: by about 2);
 *  - the error estimate of each fine point is within 10 % of the step's true local error
 *    |u_{i-1}| |exp(-dt) - 1/(1 + dt)|;
 *  - on any number of ranks the solution and the estimates are those of one rank, bitwise.
 */
#include "scalar_app.h"
#include "test_app.h"

/* Solve on comm with ntime steps on [0, 4]; u and est gathered on rank 0 of comm. */
static void solve(MPI_Comm comm, int ntime, int richardson, double *u, double *est)
{
   struct scalar_app app = {-1.0, NULL, 1.0, 0.5, NULL, NULL};
   braid_Core core = scalar_core(&app, comm, 4.0, ntime);
   int n = ntime + 1;
   braid_SetMaxLevels(core, 3);
   braid_SetAbsTol(core, 1e-14);
   braid_SetMaxIter(core, 50);
   EXPECT(braid_SetRichardsonEstimation(core, 1, richardson, 2) == 0, "set Richardson");
   EXPECT(braid_Drive(core) == 0, "drive ntime %d", ntime);
   braid_Destroy(core);
   /* each point is accessed on one rank; the others hold zeros there */
   MPI_Reduce(app.u, u, n, MPI_DOUBLE, MPI_SUM, 0, comm);
   MPI_Reduce(app.est, est, n, MPI_DOUBLE, MPI_SUM, 0, comm);
   free(app.u);
   free(app.est);
}

int main(int argc, char *argv[])
{
   enum { N = 64 };
   double u[N + 1], est[N + 1], est1[N + 1], uh[2 * N + 1], esth[2 * N + 1];
   double plain[N + 1], plainh[2 * N + 1], dt = 4.0 / N, ref;
   int rank, i;
   MPI_Comm self;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Comm_split(MPI_COMM_WORLD, rank, 0, &self);

   solve(MPI_COMM_WORLD, N, 1, u, est);
   solve(MPI_COMM_WORLD, 2 * N, 1, uh, esth);
   solve(MPI_COMM_WORLD, N, 0, plain, est1);
   solve(MPI_COMM_WORLD, 2 * N, 0, plainh, esth);
   if (rank == 0)
   {
      double e_re = fabs(u[N] - exp(-4.0)), e_re_h = fabs(uh[2 * N] - exp(-4.0));
      double e_be = fabs(plain[N] - exp(-4.0)), e_be_h = fabs(plainh[2 * N] - exp(-4.0));
      /* the extrapolated recurrence at the C-points, independently */
      ref = 1.0;
      for (i = 2; i <= N; i += 2)
      {
         double fine = ref / ((1.0 + dt) * (1.0 + dt)), coarse = ref / (1.0 + 2.0 * dt);
         ref = 2.0 * fine - coarse;
         EXPECT(fabs(u[i] - ref) <= 1e-12 * fabs(ref), "C-point %d: %.17g, the extrapolated "
                "recurrence gives %.17g", i, u[i], ref);
      }
      EXPECT(e_re / e_re_h > 3.5 && e_re / e_re_h < 4.5, "extrapolated error ratio %g (errors "
             "%g, %g), expected about 4", e_re / e_re_h, e_re, e_re_h);
      EXPECT(e_be / e_be_h > 1.8 && e_be / e_be_h < 2.2, "backward Euler error ratio %g, "
             "expected about 2", e_be / e_be_h);
      EXPECT(e_re < 0.1 * e_be, "extrapolation error %g not well below %g", e_re, e_be);
      {
         /* the estimate of the step into i against its true local error from the converged
          * value at i - 1: right to leading order, so the deviation halves with dt */
         double dev = 0.0, dev_h = 0.0;
         for (i = 1; i <= 2 * N; i++)
         {
            double h = 2.0 / N, lte = fabs(plainh[i - 1]) * fabs(exp(-h) - 1.0 / (1.0 + h));
            double d = fabs(esth[i] / lte - 1.0);
            if (d > dev_h) dev_h = d;
            if (i <= N)
            {
               lte = fabs(plain[i - 1]) * fabs(exp(-dt) - 1.0 / (1.0 + dt));
               d = fabs(est1[i] / lte - 1.0);
               if (!(d < 0.2)) EXPECT(0, "estimate at %d: %g, true local error %g", i, est1[i], lte);
               if (d > dev) dev = d;
            }
         }
         EXPECT(dev_h < 0.6 * dev, "estimate deviation %g at dt/2, %g at dt: it should halve",
                dev_h, dev);
      }
   }
   /* rank independence: the same solve on one rank */
   if (rank == 0)
   {
      double u_one[N + 1], est_one[N + 1];
      solve(self, N, 1, u_one, est_one);
      for (i = 0; i <= N; i++)
      {
         EXPECT(u_one[i] == u[i] && est_one[i] == est[i], "point %d: %.17g / %.17g on one rank, "
                "%.17g / %.17g here", i, u_one[i], est_one[i], u[i], est[i]);
      }
   }
   MPI_Comm_free(&self);
   return finish("richardson");
}
