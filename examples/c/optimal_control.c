/*
 * optimal_control: gradient descent on a design parameter with XBraid_Adjoint, the gradient of
 * each step from one braid_Drive (the piggy-back iteration of state and adjoint).
 *
 *    mpiexec -n 2 build/examples/c/optimal_control [-nsteps 25] [-eta 1.4] [-lambda0 -1.5]
 *        [-ntime 64] [-ml 2] [-cf 4] [-tol 1e-10]
 *
 * Written only against the XBraid C interface. examples/python/optimal_control.py is its twin
 * and prints the same lines; the specification both follow, exactly:
 *
 * Problem. State u' = lambda u, u(0) = 1, t in [0, 5], ntime steps (dt = 5 / ntime, the times
 *    the engine passes to step), backward Euler u_{i+1} = u_i / (1 - (tstop - tstart) lambda).
 *    Target ubar_i = (1 + 0.5 dt)^(-i), computed as pow(1.0 + 0.5 * dt, -(double) i) (C's pow;
 *    Python: (1.0 + 0.5 * dt) ** float(-i)): the discrete solution for lambda* = -0.5.
 *    Objective J(lambda) = (1 / ntime) sum_{i=0}^{ntime} (u_i - ubar_i)^2, one term per time
 *    point (objectiveT: (u - ubar_i)^2 / ntime at the point's time index i; its derivative
 *    2 (u - ubar_i) / ntime * F_bar). The optimum is lambda* = -0.5 with J = 0.
 * Each optimisation step k = 0 .. nsteps - 1. A new core: braid_Init(MPI_COMM_WORLD,
 *    MPI_COMM_WORLD, 0, 5, ntime, ...), braid_InitAdjoint, max levels ml, cfactor cf on every
 *    level, max_iter 30, absolute tolerance tol for the state and for the adjoint, print level
 *    0; everything else the engine's default. One braid_Drive; J from braid_GetObjective, the
 *    iteration count from braid_GetNumIter.
 *    The gradient: step_diff adds (tstop - tstart) u / (1 - (tstop - tstart) lambda)^2 * u_bar
 *    (u the step's input, u_bar the adjoint of its result) to the slot of its level and time
 *    index (braid_StepStatusGetLevel, braid_StepStatusGetTIndex: slot level * (ntime + 1) +
 *    index), then divides u_bar by (1 - (tstop - tstart) lambda); reset_gradient zeroes every
 *    slot. After the drive the slots are summed over the ranks (MPI_Allreduce, MPI_SUM: each
 *    slot is written by one rank, so this is exact) and then added in slot order, starting
 *    from 0.0, one addition at a time. This makes dJ/dlambda, and so every printed number,
 *    the same bits on any number of ranks.
 *    Then lambda <- lambda - eta * dJ/dlambda, and the core is destroyed.
 * Output (rank 0 only): one line per step, with lambda and the results of that step's drive,
 *    printf("step %3d  lambda = %.12e  J = %.12e  dJ/dlambda = %.12e  iterations = %d\n",
 *           k, lambda, J, dJ/dlambda, iterations);
 *    and after the last step, the final lambda:
 *    printf("optimum lambda = %.12e  (exact -0.5)\n", lambda);
 * Defaults: nsteps 25, eta 1.4, lambda0 -1.5, ntime 64, ml 2, cf 4, tol 1e-10. The curvature
 *    J'' at the optimum is 0.683, so eta must stay below 2 / 0.683 = 2.9; from lambda0 = -1.5,
 *    eta = 1.4 reaches |lambda - lambda*| < 1e-6 in 15 steps (the exact discrete gradient
 *    needs as many); 25 steps leave lambda within the tolerance's reach of -0.5 (about 1e-12).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braid.h"

struct _braid_App_struct {
   double lambda;
   int ntime;
   double *target;    /* ubar_i, i = 0 .. ntime */
   double *slots;     /* gradient contributions by (level, time index), see above */
   int nslots;
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
   u->value = u->value / (1.0 - (tstop - tstart) * app->lambda);
   return 0;
}

/* u_bar: the adjoint of the result on entry, of the input on return; the lambda-derivative of
 * the step goes into its slot */
static braid_Int my_step_diff(braid_App app, braid_Vector ustop, braid_Vector u,
                              braid_Vector ustop_bar, braid_Vector u_bar,
                              braid_StepStatus status)
{
   braid_Real tstart, tstop, dt, denom;
   braid_Int level, index;
   (void) ustop;
   (void) ustop_bar;
   braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
   braid_StepStatusGetLevel(status, &level);
   braid_StepStatusGetTIndex(status, &index);
   if ((level + 1) * (app->ntime + 1) > app->nslots) return 1;
   dt = tstop - tstart;
   denom = 1.0 - dt * app->lambda;
   app->slots[level * (app->ntime + 1) + index] += dt * u->value / (denom * denom) * u_bar->value;
   u_bar->value = u_bar->value / denom;
   return 0;
}

static braid_Int my_objectiveT(braid_App app, braid_Vector u, braid_ObjectiveStatus status,
                               braid_Real *objective_ptr)
{
   braid_Int i;
   double r;
   braid_ObjectiveStatusGetTIndex(status, &i);
   r = u->value - app->target[i];
   *objective_ptr = r * r / app->ntime;
   return 0;
}

static braid_Int my_objectiveT_diff(braid_App app, braid_Vector u, braid_Vector u_bar,
                                    braid_Real F_bar, braid_ObjectiveStatus status)
{
   braid_Int i;
   braid_ObjectiveStatusGetTIndex(status, &i);
   u_bar->value = 2.0 * (u->value - app->target[i]) / app->ntime * F_bar;
   return 0;
}

static braid_Int my_reset_gradient(braid_App app)
{
   memset(app->slots, 0, (size_t) app->nslots * sizeof(double));
   return 0;
}

static braid_Int my_init(braid_App app, braid_Real t, braid_Vector *u_ptr)
{
   braid_Vector u = malloc(sizeof *u);
   (void) app;
   if (u == NULL) return 1;
   u->value = t == 0.0 ? 1.0 : 0.0;
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
   *size_ptr = sizeof(double);
   return 0;
}

static braid_Int my_bufpack(braid_App app, braid_Vector u, void *buffer,
                            braid_BufferStatus status)
{
   (void) app;
   memcpy(buffer, &u->value, sizeof(double));
   braid_BufferStatusSetSize(status, sizeof(double));
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

/* One optimisation step's drive: J, dJ/dlambda (the same bits on any number of ranks) and the
 * iteration count. */
static braid_Int solve(struct _braid_App_struct *app, int ml, int cf, double tol, double *J,
                       double *gradient, int *iters)
{
   braid_Core core = NULL;
   braid_Int err, niter = 0, k;
   err = braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 5.0, app->ntime, app, my_step,
                    my_init, my_clone, my_free, my_sum, my_norm, my_access, my_bufsize,
                    my_bufpack, my_bufunpack, &core);
   if (!err) err = braid_InitAdjoint(my_objectiveT, my_objectiveT_diff, my_step_diff,
                                     my_reset_gradient, &core);
   if (!err)
   {
      braid_SetMaxLevels(core, ml);
      braid_SetCFactor(core, -1, cf);
      braid_SetMaxIter(core, 30);
      braid_SetAbsTol(core, tol);
      braid_SetAbsTolAdjoint(core, tol);
      braid_SetPrintLevel(core, 0);
      err = braid_Drive(core);
   }
   if (!err)
   {
      braid_GetObjective(core, J);
      braid_GetNumIter(core, &niter);
      *iters = niter;
      MPI_Allreduce(MPI_IN_PLACE, app->slots, app->nslots, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      *gradient = 0.0;
      for (k = 0; k < app->nslots; k++) *gradient += app->slots[k];
   }
   braid_Destroy(core);
   return err;
}

int main(int argc, char *argv[])
{
   struct _braid_App_struct app;
   int nsteps = 25, ntime = 64, ml = 2, cf = 4, rank = 0, k, iters = 0;
   double eta = 1.4, lambda = -1.5, tol = 1e-10, dt, J = 0.0, gradient = 0.0;
   braid_Int err = 0;

   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   for (k = 1; k < argc; k += 2)
   {
      const char *value = k + 1 < argc ? argv[k + 1] : NULL;
      if (value != NULL && !strcmp(argv[k], "-nsteps")) nsteps = atoi(value);
      else if (value != NULL && !strcmp(argv[k], "-eta")) eta = atof(value);
      else if (value != NULL && !strcmp(argv[k], "-lambda0")) lambda = atof(value);
      else if (value != NULL && !strcmp(argv[k], "-ntime")) ntime = atoi(value);
      else if (value != NULL && !strcmp(argv[k], "-ml")) ml = atoi(value);
      else if (value != NULL && !strcmp(argv[k], "-cf")) cf = atoi(value);
      else if (value != NULL && !strcmp(argv[k], "-tol")) tol = atof(value);
      else
      {
         if (rank == 0) fprintf(stderr, "optimal_control: unknown option or missing value: %s\n", argv[k]);
         MPI_Finalize();
         return 2;
      }
   }
   if (nsteps < 0 || ntime < 1 || ml < 1 || cf < 2 || !(tol > 0.0))
   {
      if (rank == 0) fprintf(stderr, "optimal_control: need nsteps >= 0, ntime >= 1, ml >= 1, cf >= 2, tol > 0\n");
      MPI_Finalize();
      return 2;
   }
   dt = 5.0 / ntime;
   app.ntime = ntime;
   app.nslots = ml * (ntime + 1);
   app.target = malloc((size_t) (ntime + 1) * sizeof(double));
   app.slots = calloc((size_t) app.nslots, sizeof(double));
   if (app.target == NULL || app.slots == NULL)
   {
      fprintf(stderr, "optimal_control: out of memory\n");
      MPI_Abort(MPI_COMM_WORLD, 1);
   }
   for (k = 0; k <= ntime; k++) app.target[k] = pow(1.0 + 0.5 * dt, -(double) k);

   for (k = 0; k < nsteps && !err; k++)
   {
      app.lambda = lambda;
      err = solve(&app, ml, cf, tol, &J, &gradient, &iters);
      if (err) break;
      if (rank == 0)
      {
         printf("step %3d  lambda = %.12e  J = %.12e  dJ/dlambda = %.12e  iterations = %d\n",
                k, lambda, J, gradient, iters);
      }
      lambda -= eta * gradient;
   }
   if (!err && rank == 0) printf("optimum lambda = %.12e  (exact -0.5)\n", lambda);
   if (err && rank == 0) fprintf(stderr, "optimal_control: braid_Drive failed at step %d\n", k);
   free(app.target);
   free(app.slots);
   MPI_Finalize();
   return err ? 1 : 0;
}
