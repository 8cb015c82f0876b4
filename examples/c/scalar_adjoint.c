/*
 * scalar_adjoint: XBraid_Adjoint on the scalar test equation
 *
 *    u'(t) = lambda u(t),  u(0) = 1,  lambda = -1,  t in [0, tstop],
 *
 * backward Euler u_{i+1} = u_i / (1 - lambda dt), with the objective
 *
 *    J = (1 / ntime) sum_{i=0}^{ntime} u_i^2
 *
 * and its derivative dJ/dlambda, both from one braid_Drive (the piggy-back iteration of state
 * and adjoint). Written only against the XBraid C interface.
 *
 *    mpiexec -n 1 build/examples/c/scalar_adjoint [-ntime 50] [-tstop 25] [-ml 2] [-cf 2]
 *        [-mi 20] [-tol 1e-6] [-tol_adj 1e-6] [-lambda -1] [-print 1]
 *
 * Prints the objective and the gradient as "  Objective = %1.14e" and "  Gradient  = %1.14e".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braid.h"

struct _braid_App_struct {
   double lambda;
   int ntime;
   double gradient; /* dJ/dlambda, accumulated by step_diff (and objectiveT_diff) */
};

struct _braid_Vector_struct {
   double value;
};

static braid_Int my_step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                         braid_StepStatus status)
{
   braid_Real tstart, tstop;
   (void) ustop;
   braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
   if (fstop != NULL) u->value += fstop->value;
   u->value = u->value / (1.0 - app->lambda * (tstop - tstart));
   return 0;
}

/* The transposed derivative of the step: u_bar (the adjoint of the result on entry) becomes
 * the adjoint of the input; d(result)/dlambda * u_bar goes into the gradient. */
static braid_Int my_step_diff(braid_App app, braid_Vector ustop, braid_Vector u,
                              braid_Vector ustop_bar, braid_Vector u_bar,
                              braid_StepStatus status)
{
   braid_Real tstart, tstop, dt, denom;
   (void) ustop;
   (void) ustop_bar;
   braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
   dt = tstop - tstart;
   denom = 1.0 - app->lambda * dt;
   app->gradient += u->value * dt / (denom * denom) * u_bar->value;
   u_bar->value = u_bar->value / denom;
   return 0;
}

static braid_Int my_objectiveT(braid_App app, braid_Vector u, braid_ObjectiveStatus ostatus,
                               braid_Real *objectiveT_ptr)
{
   (void) ostatus;
   *objectiveT_ptr = u->value * u->value / app->ntime;
   return 0;
}

static braid_Int my_objectiveT_diff(braid_App app, braid_Vector u, braid_Vector u_bar,
                                    braid_Real F_bar, braid_ObjectiveStatus ostatus)
{
   (void) ostatus;
   /* no explicit dependence on lambda */
   u_bar->value = 2.0 * u->value / app->ntime * F_bar;
   return 0;
}

static braid_Int my_reset_gradient(braid_App app)
{
   app->gradient = 0.0;
   return 0;
}

static braid_Int my_init(braid_App app, braid_Real t, braid_Vector *u_ptr)
{
   braid_Vector u = malloc(sizeof *u);
   (void) app;
   if (u == NULL) return 1;
   u->value = t == 0.0 ? 1.0 : 0.456;
   *u_ptr = u;
   return 0;
}

static braid_Int my_clone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{
   braid_Vector v = malloc(sizeof *v);
   (void) app;
   if (v == NULL) return 1;
   v->value = u->value;
   *v_ptr = v;
   return 0;
}

static braid_Int my_free(braid_App app, braid_Vector u)
{
   (void) app;
   free(u);
   return 0;
}

static braid_Int my_sum(braid_App app, braid_Real alpha, braid_Vector x, braid_Real beta,
                        braid_Vector y)
{
   (void) app;
   y->value = alpha * x->value + beta * y->value;
   return 0;
}

static braid_Int my_norm(braid_App app, braid_Vector u, braid_Real *norm_ptr)
{
   (void) app;
   *norm_ptr = fabs(u->value);
   return 0;
}

static braid_Int my_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{
   (void) app;
   (void) u;
   (void) status;
   return 0;
}

static braid_Int my_bufsize(braid_App app, braid_Int *size_ptr, braid_BufferStatus status)
{
   (void) app;
   (void) status;
   *size_ptr = (braid_Int) sizeof(double);
   return 0;
}

static braid_Int my_bufpack(braid_App app, braid_Vector u, void *buffer,
                            braid_BufferStatus status)
{
   (void) app;
   memcpy(buffer, &u->value, sizeof(double));
   braid_BufferStatusSetSize(status, (braid_Real) sizeof(double));
   return 0;
}

static braid_Int my_bufunpack(braid_App app, void *buffer, braid_Vector *u_ptr,
                              braid_BufferStatus status)
{
   braid_Vector u = malloc(sizeof *u);
   (void) app;
   (void) status;
   if (u == NULL) return 1;
   memcpy(&u->value, buffer, sizeof(double));
   *u_ptr = u;
   return 0;
}

int main(int argc, char *argv[])
{
   struct _braid_App_struct app;
   braid_Core core = NULL;
   int ntime = 50, ml = 2, cf = 2, mi = 20, print = 1, rank = 0, k, iters = 0;
   double tstop = 25.0, tol = 1e-6, tol_adj = 1e-6, lambda = -1.0, objective = 0.0;
   double rnorm_adj = 0.0;
   braid_Int err;

   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   for (k = 1; k + 1 < argc; k += 2)
   {
      if (!strcmp(argv[k], "-ntime")) ntime = atoi(argv[k + 1]);
      else if (!strcmp(argv[k], "-tstop")) tstop = atof(argv[k + 1]);
      else if (!strcmp(argv[k], "-ml")) ml = atoi(argv[k + 1]);
      else if (!strcmp(argv[k], "-cf")) cf = atoi(argv[k + 1]);
      else if (!strcmp(argv[k], "-mi")) mi = atoi(argv[k + 1]);
      else if (!strcmp(argv[k], "-tol")) tol = atof(argv[k + 1]);
      else if (!strcmp(argv[k], "-tol_adj")) tol_adj = atof(argv[k + 1]);
      else if (!strcmp(argv[k], "-lambda")) lambda = atof(argv[k + 1]);
      else if (!strcmp(argv[k], "-print")) print = atoi(argv[k + 1]);
      else
      {
         if (rank == 0) fprintf(stderr, "scalar_adjoint: unknown option %s\n", argv[k]);
         MPI_Finalize();
         return 2;
      }
   }
   app.lambda = lambda;
   app.ntime = ntime;
   app.gradient = 0.0;

   err = braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, tstop, ntime, &app, my_step, my_init,
                    my_clone, my_free, my_sum, my_norm, my_access, my_bufsize, my_bufpack,
                    my_bufunpack, &core);
   if (!err) err = braid_InitAdjoint(my_objectiveT, my_objectiveT_diff, my_step_diff,
                                     my_reset_gradient, &core);
   if (!err)
   {
      braid_SetMaxLevels(core, ml);
      braid_SetCFactor(core, -1, cf);
      braid_SetMaxIter(core, mi);
      braid_SetAbsTol(core, tol);
      braid_SetAbsTolAdjoint(core, tol_adj);
      braid_SetPrintLevel(core, print);
      err = braid_Drive(core);
   }
   if (!err)
   {
      /* each rank holds the gradient of its own steps: the user sums it over the ranks */
      double gradient = 0.0;
      MPI_Allreduce(&app.gradient, &gradient, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      braid_GetObjective(core, &objective);
      braid_GetRNormAdjoint(core, &rnorm_adj);
      braid_GetNumIter(core, &iters);
      if (rank == 0)
      {
         printf("  iterations = %d\n", iters);
         printf("  Objective = %1.14e\n", objective);
         printf("  Gradient  = %1.14e\n", gradient);
      }
   }
   braid_Destroy(core);
   MPI_Finalize();
   return err ? 1 : 0;
}
