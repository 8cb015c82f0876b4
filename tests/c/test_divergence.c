/*
 * A solve whose residual becomes NaN stops and reports divergence with a nonzero return. A
 * step callback that fails on one rank stops every rank: the failing rank gets the step's
 * code back from braid_Drive, the others layerbraid_ERROR_REMOTE with the failure's text.
 */
#include "braid_layerbraid.h"
#include "test_app.h"

/* fails on the last rank only */
static int failing_step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                        braid_StepStatus status)
{
   int rank, nprocs, iter;
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
   braid_StepStatusGetIter(status, &iter);
   if (rank == nprocs - 1 && iter >= 1) return 7;
   return app_step(app, ustop, fstop, u, status);
}

/* fails on rank 1 in the final access phase, after every iteration succeeded */
static int failing_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{
   int rank, done;
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   braid_AccessStatusGetDone(status, &done);
   if (rank == 1 && done) return 5;
   return app_access(app, u, status);
}

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

   {
      int rank, err, failed_rank;
      char text[layerbraid_FAILURE_TEXT_MAX];
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      app = app_create(64);
      braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 2.0, 64, app, failing_step, app_init,
                 app_clone, app_free, app_sum, app_norm, app_access, app_bufsize, app_bufpack,
                 app_bufunpack, &core);
      braid_SetPrintLevel(core, 0);
      layerbraid_SetQuietFailures(core, 1);
      err = braid_Drive(core);
      layerbraid_GetFailure(core, &failed_rank, text, sizeof(text));
      if (rank == nprocs - 1)
      {
         EXPECT(err == 7, "the failing rank gets the step's code back (got %d)", err);
      }
      else
      {
         EXPECT(err == layerbraid_ERROR_REMOTE, "other ranks stop with the remote error (got %d)",
                err);
      }
      EXPECT(failed_rank == nprocs - 1, "the failure names rank %d (got %d)", nprocs - 1,
             failed_rank);
      EXPECT(strstr(text, "step callback failed") != NULL, "failure text: '%s'", text);
      EXPECT(braid_Drive(core) != 0, "a failed core refuses to drive again");
      braid_Destroy(core);
      app_destroy(app);
   }
   if (nprocs > 1)
   {
      /* every rank learns of a failure in the last phase, even one that finished its part */
      int rank, err;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      app = app_create(64);
      braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 2.0, 64, app, app_step, app_init,
                 app_clone, app_free, app_sum, app_norm, failing_access, app_bufsize,
                 app_bufpack, app_bufunpack, &core);
      braid_SetPrintLevel(core, 0);
      layerbraid_SetQuietFailures(core, 1);
      err = braid_Drive(core);
      EXPECT(err == (rank == 1 ? 5 : layerbraid_ERROR_REMOTE),
             "access failure on rank 1: rank %d got %d", rank, err);
      braid_Destroy(core);
      app_destroy(app);
   }
   return finish("divergence");
}
