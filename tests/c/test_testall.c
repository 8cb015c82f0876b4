/*
 * braid_TestAll passes a correct app and catches a broken one.
 */
#include "test_app.h"

static int broken_sum(braid_App app, double alpha, braid_Vector x, double beta, braid_Vector y)
{
   int k;
   (void) app;
   (void) beta; /* ignores beta: y = alpha x */
   for (k = 0; k < NDIM; k++) y->v[k] = alpha * x->v[k];
   return 0;
}

int main(int argc, char *argv[])
{
   my_App *app;
   int rank;
   FILE *log;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   app = app_create(8);
   log = rank == 0 ? stdout : NULL;
   EXPECT(braid_TestAll(app, MPI_COMM_WORLD, log, 0.0, 0.1, 0.2, app_init, app_free, app_clone,
                        app_sum, app_norm, app_bufsize, app_bufpack, app_bufunpack, NULL, NULL,
                        NULL, app_step) == 1, "a correct app passes");
   EXPECT(braid_TestAll(app, MPI_COMM_WORLD, log, 0.0, 0.1, 0.2, app_init, app_free, app_clone,
                        broken_sum, app_norm, app_bufsize, app_bufpack, app_bufunpack, NULL,
                        NULL, NULL, app_step) == 0, "a sum that ignores beta fails");
   app_destroy(app);
   return finish("testall");
}
