/*
 * A solve whose residual becomes NaN stops and reports divergence with a nonzero return; a
 * step callback that fails stops the solve and its code comes back from braid_Drive.
 */
#include "test_app.h"

int main(int argc, char *argv[])
{
   braid_Core core;
   my_App *app;
   int niter, nprocs;
   MPI_Init(&argc, &argv);
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);

   app = app_create(64);
   app->nan_from_iter = 2;
   core_create(app, 2.0, &core);
   braid_SetPrintLevel(core, 1);
   braid_SetAbsTol(core, 1e-14);
   EXPECT(braid_Drive(core) != 0, "NaN residual must make braid_Drive fail");
   braid_GetNumIter(core, &niter);
   EXPECT(niter == 3, "stopped after the cycle whose residual was NaN (niter %d)", niter);
   braid_Destroy(core);
   app_destroy(app);

   if (nprocs == 1)
   {
      /* with one rank nobody waits for the failing rank, so the failure can be returned */
      app = app_create(64);
      app->fail_from_iter = 1;
      core_create(app, 2.0, &core);
      braid_SetPrintLevel(core, 0);
      EXPECT(braid_Drive(core) == 7, "the step's error code comes back from braid_Drive");
      braid_Destroy(core);
      app_destroy(app);
   }
   return finish("divergence");
}
