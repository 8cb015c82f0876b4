/*
 * lorenz: MGRIT with Delta correction and Lyapunov estimation on the chaotic Lorenz system
 *
 *    x' = sigma (y - x),  y' = x (rho - z) - y,  z' = x y - beta z,
 *    sigma = 10, rho = 28, beta = 8/3,
 *
 * classical RK4 on every level; step also applies the exact derivative of the RK4 map (its
 * tangent-linear step) to the basis vectors Delta correction hands it. The initial condition is
 * a point on the attractor (20 time units of RK4 from (1, 1, 1) with dt = 0.01). Written only
 * against the XBraid C interface.
 *
 *    mpiexec -n 2 build/examples/c/lorenz [-ntime 1024] [-tstop 10.24] [-ml 2] [-cf 4] [-nu 1]
 *        [-rank 3] [-lyap] [-relaxlyap] [-defer-lvl 1] [-defer-iter 0] [-mi 30] [-tol 1e-8]
 *        [-out file] [-test]
 *
 * -rank 0 turns Delta correction off; -lyap estimates Lyapunov vectors (on the coarsest level)
 * and the local exponents. Prints the iterations, max |u - u_serial| over the time points (the
 * serial RK4 solution on the same grid), and with -lyap the Lyapunov exponents: the local
 * exponents averaged over the points that have them. -out writes "i x y z" (%.17e) per point;
 * -test runs braid_TestInnerProd and braid_TestDelta instead of solving.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braid.h"
#include "braid_test.h"

#define DIM 3

struct _braid_App_struct {
   int ntime, rank, myid;
   double *serial;   /* [(ntime + 1) * DIM]: the serial solution, for comparison */
   double *solution; /* [(ntime + 1) * DIM]: access writes the solution here (0 elsewhere) */
   double *exps;     /* [(ntime + 1) * DIM]: local Lyapunov exponents (0 where none) */
   int *has_exps;    /* [ntime + 1] */
   double u0[DIM];
};

struct _braid_Vector_struct {
   double v[DIM];
};

static void rhs(const double *u, double *f)
{
   f[0] = 10.0 * (u[1] - u[0]);
   f[1] = u[0] * (28.0 - u[2]) - u[1];
   f[2] = u[0] * u[1] - (8.0 / 3.0) * u[2];
}

/* The Jacobian of rhs at u applied to d. */
static void rhs_tangent(const double *u, const double *d, double *f)
{
   f[0] = 10.0 * (d[1] - d[0]);
   f[1] = d[0] * (28.0 - u[2]) - u[0] * d[2] - d[1];
   f[2] = d[0] * u[1] + u[0] * d[1] - (8.0 / 3.0) * d[2];
}

/* One RK4 step of size h on u; with nd > 0 also the derivative of that map applied to each
 * d[m] (stages differentiated along with the state). */
static void rk4(double *u, double h, int nd, double (*d)[DIM])
{
   double k[4][DIM], y[DIM], dk[4][DIM], dy[DIM];
   const double c[4] = {0.0, 0.5, 0.5, 1.0}, w[4] = {1.0, 2.0, 2.0, 1.0};
   int s, i, m;
   for (m = -1; m < nd; m++)
   {
      for (s = 0; s < 4; s++)
      {
         for (i = 0; i < DIM; i++)
         {
            y[i] = u[i] + (s > 0 ? c[s] * h * k[s - 1][i] : 0.0);
            if (m >= 0) dy[i] = d[m][i] + (s > 0 ? c[s] * h * dk[s - 1][i] : 0.0);
         }
         if (m < 0) rhs(y, k[s]);
         else rhs_tangent(y, dy, dk[s]);
      }
      if (m >= 0)
      {
         for (i = 0; i < DIM; i++)
         {
            d[m][i] += h / 6.0 * (w[0] * dk[0][i] + w[1] * dk[1][i] + w[2] * dk[2][i]
                                  + w[3] * dk[3][i]);
         }
      }
   }
   for (i = 0; i < DIM; i++)
   {
      u[i] += h / 6.0 * (k[0][i] + 2.0 * k[1][i] + 2.0 * k[2][i] + k[3][i]);
   }
}

static braid_Int my_step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                         braid_StepStatus status)
{
   braid_Real tstart, tstop;
   braid_Int rank = 0, m;
   double d[DIM][DIM];
   (void) app;
   (void) ustop;
   (void) fstop;
   braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
   braid_StepStatusGetDeltaRank(status, &rank);
   for (m = 0; m < rank; m++)
   {
      braid_Vector psi;
      braid_StepStatusGetBasisVec(status, &psi, m);
      memcpy(d[m], psi->v, sizeof(d[m]));
   }
   rk4(u->v, tstop - tstart, (int) rank, d);
   for (m = 0; m < rank; m++)
   {
      braid_Vector psi;
      braid_StepStatusGetBasisVec(status, &psi, m);
      memcpy(psi->v, d[m], sizeof(d[m]));
   }
   return 0;
}

static braid_Int my_init(braid_App app, braid_Real t, braid_Vector *u_ptr)
{
   braid_Vector u = (braid_Vector) malloc(sizeof(*u));
   int i;
   if (u == NULL) return 1;
   for (i = 0; i < DIM; i++) u->v[i] = t == 0.0 ? app->u0[i] : 0.0;
   *u_ptr = u;
   return 0;
}

/* The columns of the identity. */
static braid_Int my_init_basis(braid_App app, braid_Real t, braid_Int index, braid_Vector *u_ptr)
{
   braid_Vector u = (braid_Vector) calloc(1, sizeof(*u));
   (void) app;
   (void) t;
   if (u == NULL) return 1;
   u->v[index % DIM] = 1.0;
   *u_ptr = u;
   return 0;
}

static braid_Int my_inner_prod(braid_App app, braid_Vector u, braid_Vector v, braid_Real *prod)
{
   (void) app;
   *prod = u->v[0] * v->v[0] + u->v[1] * v->v[1] + u->v[2] * v->v[2];
   return 0;
}

static braid_Int my_clone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{
   braid_Vector v = (braid_Vector) malloc(sizeof(*v));
   (void) app;
   if (v == NULL) return 1;
   *v = *u;
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
   int i;
   (void) app;
   for (i = 0; i < DIM; i++) y->v[i] = alpha * x->v[i] + beta * y->v[i];
   return 0;
}

static braid_Int my_norm(braid_App app, braid_Vector u, braid_Real *norm)
{
   (void) app;
   *norm = sqrt(u->v[0] * u->v[0] + u->v[1] * u->v[1] + u->v[2] * u->v[2]);
   return 0;
}

static braid_Int my_access(braid_App app, braid_Vector u, braid_AccessStatus astatus)
{
   braid_Int index, level, n = DIM;
   braid_AccessStatusGetTIndex(astatus, &index);
   braid_AccessStatusGetLevel(astatus, &level);
   if (level != 0 || index < 0 || index > app->ntime) return 0;
   memcpy(&app->solution[index * DIM], u->v, sizeof(u->v));
   braid_AccessStatusGetLocalLyapExponents(astatus, &app->exps[index * DIM], &n);
   app->has_exps[index] = n > 0;
   return 0;
}

static braid_Int my_bufsize(braid_App app, braid_Int *size, braid_BufferStatus bstatus)
{
   (void) app;
   *size = DIM * sizeof(double);
   braid_BufferStatusSetBasisSize(bstatus, DIM * sizeof(double));
   return 0;
}

static braid_Int my_bufpack(braid_App app, braid_Vector u, void *buffer,
                            braid_BufferStatus bstatus)
{
   (void) app;
   memcpy(buffer, u->v, sizeof(u->v));
   braid_BufferStatusSetSize(bstatus, sizeof(u->v));
   return 0;
}

static braid_Int my_bufunpack(braid_App app, void *buffer, braid_Vector *u_ptr,
                              braid_BufferStatus bstatus)
{
   braid_Vector u = (braid_Vector) malloc(sizeof(*u));
   (void) app;
   (void) bstatus;
   if (u == NULL) return 1;
   memcpy(u->v, buffer, sizeof(u->v));
   *u_ptr = u;
   return 0;
}

int main(int argc, char *argv[])
{
   struct _braid_App_struct app;
   braid_Core core = NULL;
   int ntime = 1024, ml = 2, cf = 4, nu = 1, rank = 3, lyap = 0, relaxlyap = 0, mi = 30;
   int defer_lvl = 1, defer_iter = 0, test = 0, nprocs, k, i, err;
   double tstop = 10.24, tol = 1e-8, u[DIM] = {1.0, 1.0, 1.0};
   const char *out = NULL;

   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &app.myid);
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
   for (k = 1; k < argc; k++)
   {
      int has = k + 1 < argc;
      if (!strcmp(argv[k], "-lyap")) { lyap = 1; continue; }
      if (!strcmp(argv[k], "-relaxlyap")) { relaxlyap = 1; continue; }
      if (!strcmp(argv[k], "-test")) { test = 1; continue; }
      if (!has) k = argc; /* a value is missing: reported below */
      else if (!strcmp(argv[k], "-ntime")) ntime = atoi(argv[++k]);
      else if (!strcmp(argv[k], "-tstop")) tstop = atof(argv[++k]);
      else if (!strcmp(argv[k], "-ml")) ml = atoi(argv[++k]);
      else if (!strcmp(argv[k], "-cf")) cf = atoi(argv[++k]);
      else if (!strcmp(argv[k], "-nu")) nu = atoi(argv[++k]);
      else if (!strcmp(argv[k], "-rank")) rank = atoi(argv[++k]);
      else if (!strcmp(argv[k], "-defer-lvl")) defer_lvl = atoi(argv[++k]);
      else if (!strcmp(argv[k], "-defer-iter")) defer_iter = atoi(argv[++k]);
      else if (!strcmp(argv[k], "-mi")) mi = atoi(argv[++k]);
      else if (!strcmp(argv[k], "-tol")) tol = atof(argv[++k]);
      else if (!strcmp(argv[k], "-out")) out = argv[++k];
      else k = argc;
      if (k == argc)
      {
         if (app.myid == 0) fprintf(stderr, "lorenz: unknown option or missing value\n");
         MPI_Finalize();
         return 2;
      }
   }

   /* a point on the attractor, then the serial solution on the grid */
   for (k = 0; k < 2000; k++) rk4(u, 0.01, 0, NULL);
   app.ntime = ntime;
   app.rank = rank;
   memcpy(app.u0, u, sizeof(u));
   app.serial = (double *) calloc((size_t) (ntime + 1) * DIM, sizeof(double));
   app.solution = (double *) calloc((size_t) (ntime + 1) * DIM, sizeof(double));
   app.exps = (double *) calloc((size_t) (ntime + 1) * DIM, sizeof(double));
   app.has_exps = (int *) calloc((size_t) ntime + 1, sizeof(int));
   if (ntime < 1 || !app.serial || !app.solution || !app.exps || !app.has_exps)
   {
      fprintf(stderr, "lorenz: ntime must be >= 1 (and memory enough)\n");
      MPI_Abort(MPI_COMM_WORLD, 2);
   }
   memcpy(app.serial, u, sizeof(u));
   for (i = 1; i <= ntime; i++)
   {
      double t0 = tstop * (double) (i - 1) / ntime, t1 = tstop * (double) i / ntime;
      rk4(u, t1 - t0, 0, NULL);
      memcpy(&app.serial[i * DIM], u, sizeof(u));
   }

   if (test)
   {
      int ok = braid_TestInnerProd(&app, MPI_COMM_WORLD, stdout, 0.0, 1.0, my_init, my_free,
                                   my_sum, my_inner_prod);
      ok = braid_TestDelta(&app, MPI_COMM_WORLD, stdout, 0.0, tstop / ntime, rank, my_init,
                           my_init_basis, my_access, my_free, my_clone, my_sum, my_bufsize,
                           my_bufpack, my_bufunpack, my_inner_prod, my_step) && ok;
      err = !ok;
   }
   else
   {
      err = braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, tstop, ntime, &app, my_step, my_init,
                       my_clone, my_free, my_sum, my_norm, my_access, my_bufsize, my_bufpack,
                       my_bufunpack, &core);
      if (!err && rank > 0)
      {
         err = braid_SetDeltaCorrection(core, rank, my_init_basis, my_inner_prod);
         if (!err) err = braid_SetDeferDelta(core, defer_lvl, defer_iter);
         if (!err && (lyap || relaxlyap))
         {
            err = braid_SetLyapunovEstimation(core, relaxlyap, lyap, 1);
         }
      }
      if (!err) err = braid_SetMaxLevels(core, ml);
      if (!err) err = braid_SetCFactor(core, -1, cf);
      if (!err) err = braid_SetNRelax(core, -1, nu);
      if (!err) err = braid_SetMaxIter(core, mi);
      if (!err) err = braid_SetAbsTol(core, tol);
      if (!err) err = braid_SetSkip(core, 0);
      if (!err) err = braid_SetPrintLevel(core, 1);
      if (!err) err = braid_Drive(core);
      if (!err)
      {
         /* every point is written by exactly one rank: the sums below are exact */
         double *sol = (double *) calloc((size_t) (ntime + 1) * DIM, sizeof(double));
         double *exps = (double *) calloc((size_t) (ntime + 1) * DIM, sizeof(double));
         int *has = (int *) calloc((size_t) ntime + 1, sizeof(int));
         braid_Int niter;
         MPI_Reduce(app.solution, sol, (ntime + 1) * DIM, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
         MPI_Reduce(app.exps, exps, (ntime + 1) * DIM, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
         MPI_Reduce(app.has_exps, has, ntime + 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
         braid_GetNumIter(core, &niter);
         if (app.myid == 0)
         {
            double diff = 0.0, avg[DIM] = {0.0, 0.0, 0.0};
            int count = 0;
            for (i = 0; i <= ntime; i++)
            {
               for (k = 0; k < DIM; k++)
               {
                  diff = fmax(diff, fabs(sol[i * DIM + k] - app.serial[i * DIM + k]));
                  if (has[i]) avg[k] += exps[i * DIM + k];
               }
               count += has[i] > 0;
            }
            printf("  Iterations = %d\n", (int) niter);
            printf("  max |u - u_serial| = %.6e\n", diff);
            if (count > 0)
            {
               printf("  Lyapunov exponents (average of %d local ones):", count);
               for (k = 0; k < (rank < DIM ? rank : DIM); k++) printf(" %.6f", avg[k] / count);
               printf("\n");
            }
            if (out != NULL)
            {
               FILE *f = fopen(out, "w");
               for (i = 0; f != NULL && i <= ntime; i++)
               {
                  fprintf(f, "%d %.17e %.17e %.17e\n", i, sol[i * DIM], sol[i * DIM + 1],
                          sol[i * DIM + 2]);
               }
               if (f != NULL) fclose(f);
            }
         }
         free(sol);
         free(exps);
         free(has);
      }
      braid_Destroy(core);
   }
   free(app.serial);
   free(app.solution);
   free(app.exps);
   free(app.has_exps);
   MPI_Finalize();
   return err ? 1 : 0;
}
