/*
 * Bad input gives a clear message and a nonzero return, never a crash; braid_Destroy is safe
 * without braid_Drive and for NULL. Run under the sanitizers, this also checks for leaks.
 */
#include "test_app.h"

int main(int argc, char *argv[])
{
   braid_Core core = NULL;
   my_App *app;
   MPI_Init(&argc, &argv);
   app = app_create(16);

   /* braid_Init refuses bad sizes and missing callbacks, and leaves core NULL */
   EXPECT(braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, 0, app, app_step, app_init,
                     app_clone, app_free, app_sum, app_norm, app_access, app_bufsize,
                     app_bufpack, app_bufunpack, &core) != 0 && core == NULL, "ntime = 0");
   EXPECT(braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, -5, app, app_step, app_init,
                     app_clone, app_free, app_sum, app_norm, app_access, app_bufsize,
                     app_bufpack, app_bufunpack, &core) != 0 && core == NULL, "ntime < 0");
   EXPECT(braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, 16, app, NULL, app_init,
                     app_clone, app_free, app_sum, app_norm, app_access, app_bufsize,
                     app_bufpack, app_bufunpack, &core) != 0 && core == NULL, "no step");
   EXPECT(braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, 16, app, app_step, app_init,
                     app_clone, app_free, app_sum, app_norm, app_access, app_bufsize,
                     NULL, app_bufunpack, &core) != 0 && core == NULL, "no bufpack");
   EXPECT(braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 1.0, 1.0, 16, app, app_step, app_init,
                     app_clone, app_free, app_sum, app_norm, app_access, app_bufsize,
                     app_bufpack, app_bufunpack, &core) != 0 && core == NULL, "tstart == tstop");
   EXPECT(braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, 16, app, app_step, app_init,
                     app_clone, app_free, app_sum, app_norm, app_access, app_bufsize,
                     app_bufpack, app_bufunpack, NULL) != 0, "core_ptr NULL");

   /* every entry point refuses a NULL core */
   EXPECT(braid_Drive(NULL) != 0, "Drive(NULL)");
   EXPECT(braid_SetMaxLevels(NULL, 2) != 0, "SetMaxLevels(NULL)");
   EXPECT(braid_PrintStats(NULL) != 0, "PrintStats(NULL)");
   EXPECT(braid_Destroy(NULL) == 0, "Destroy(NULL) is a no-op");

   /* a core that never drives is destroyed cleanly */
   EXPECT(core_create(app, 1.0, &core) == 0 && core != NULL, "valid init");
   EXPECT(braid_Destroy(core) == 0, "Destroy without Drive");

   /* out-of-range options are refused and leave the defaults in place */
   EXPECT(core_create(app, 1.0, &core) == 0, "valid init");
   braid_SetPrintLevel(core, 0);
   EXPECT(braid_SetCFactor(core, -1, 1) != 0, "cfactor 1");
   EXPECT(braid_SetCFactor(core, 0, 0) != 0, "cfactor 0 on level 0");
   EXPECT(braid_SetCFactor(core, -2, 4) != 0, "level -2");
   EXPECT(braid_SetMaxLevels(core, 0) != 0, "max_levels 0");
   EXPECT(braid_SetMinCoarse(core, 0) != 0, "min_coarse 0");
   EXPECT(braid_SetAbsTol(core, -1e-3) != 0, "negative absolute tolerance");
   EXPECT(braid_SetRelTol(core, -1.0) != 0, "negative relative tolerance");
   EXPECT(braid_SetRelTol(core, NAN) != 0, "NaN tolerance");
   EXPECT(braid_SetNRelax(core, -1, -1) != 0, "nrelax -1");
   EXPECT(braid_SetMaxIter(core, 0) != 0, "max_iter 0");
   EXPECT(braid_SetTemporalNorm(core, 4) != 0, "tnorm 4");
   EXPECT(braid_SetSkip(core, 2) != 0, "skip 2");
   EXPECT(braid_SetStorage(core, -3) != 0, "storage -3");
   EXPECT(braid_SetCRelaxWt(core, -1, 0.0) != 0, "C-relaxation weight 0");
   EXPECT(braid_SetNFMG(core, -2) != 0, "nfmg -2");
   EXPECT(braid_SetPrintLevel(core, 9) != 0, "print level 9");
   EXPECT(braid_SetBufAllocFree(core, NULL, (braid_PtFcnBufFree) app_free) != 0,
          "buffree without bufalloc");

   /* the defaults survived: the solve still converges with 2 levels and cfactor 2 */
   braid_SetAbsTol(core, 1e-10);
   EXPECT(braid_Drive(core) == 0, "drive after refused options");
   {
      int nlevels = 0, niter = 0;
      braid_GetNLevels(core, &nlevels);
      braid_GetNumIter(core, &niter);
      EXPECT(nlevels > 1, "default max_levels kept (%d levels)", nlevels);
      EXPECT(niter > 0 && niter < 100, "converged in %d iterations", niter);
   }
   /* options that shape the hierarchy cannot change after it is built */
   EXPECT(braid_SetCFactor(core, -1, 4) != 0, "cfactor after Drive");
   EXPECT(braid_SetMaxLevels(core, 3) != 0, "max_levels after Drive");
   braid_Destroy(core);

   app_destroy(app);
   return finish("bad_input");
}
