/*
 * A second braid_Drive starts from the stored solution: its first residual is below the first
 * solve's last one. Also checks the residual history reported by braid_GetRNorms.
 */
#include "test_app.h"

int main(int argc, char *argv[])
{
   braid_Core core;
   my_App *app;
   double first[8], second[8], tail[2];
   int n, niter, rank;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   app = app_create(128);
   core_create(app, 4.0, &core);
   braid_SetPrintLevel(core, 0);
   braid_SetMaxLevels(core, 3);
   braid_SetCFactor(core, -1, 4);
   braid_SetAbsTol(core, 1e-15); /* unreachable: run exactly max_iter cycles */
   braid_SetMaxIter(core, 4);

   EXPECT(braid_Drive(core) == 0, "first drive");
   braid_GetNumIter(core, &niter);
   EXPECT(niter == 4, "first drive ran %d cycles, expected max_iter = 4", niter);
   n = 8;
   braid_GetRNorms(core, &n, first);
   /* r_0 .. r_4: r_0 is skipped, r_4 repeats the last residual */
   EXPECT(n == 5, "history of %d entries, expected niter + 1 = 5", n);
   EXPECT(first[0] == -1.0, "r_0 = %g, expected -1 (skipped)", first[0]);
   EXPECT(first[4] == first[3], "last entry %g repeats the last residual %g", first[4], first[3]);
   EXPECT(first[3] < first[2] && first[2] < first[1], "residuals decrease: %g %g %g", first[1],
          first[2], first[3]);
   n = -2;
   braid_GetRNorms(core, &n, tail);
   EXPECT(n == 2 && tail[0] == first[3] && tail[1] == first[4], "last two entries");

   EXPECT(braid_Drive(core) == 0, "second drive");
   n = 8;
   braid_GetRNorms(core, &n, second);
   EXPECT(second[0] >= 0.0, "warm restart computes r_0 (got %g)", second[0]);
   EXPECT(second[0] < first[3], "warm restart r_0 = %g is not below the first solve's last "
          "residual %g", second[0], first[3]);
   EXPECT(second[1] < first[3], "second drive keeps converging (%g)", second[1]);

   braid_Destroy(core);
   app_destroy(app);
   return finish("warm_restart");
}
