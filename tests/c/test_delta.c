/*
 * Delta correction and Lyapunov estimation (extern/braid/src/delta.c) on linear problems,
 * where the answers are known exactly:
 *
 *  1. u_{i+1} = (I + dt A(t_i)) u_i with a full 3x3 A(t): with full rank (3) the corrected
 *     coarse propagator has the fine interval's Jacobian, which for a linear problem makes the
 *     coarse grid exact: two- and three-level MGRIT reach round-off in one iteration; without
 *     Delta they do not. A lower rank (2) still converges, to the sequential solution.
 *  2. Every run gives the same bits on this communicator as on one rank (MPI_COMM_SELF): the
 *     solution and the residual history.
 *  3. Lyapunov estimation on a constant upper-triangular A: the QR chain keeps the identity
 *     basis and every local exponent is log(1 + dt a_kk) / dt.
 *  4. Bad input is refused with an error (and a failure in the middle of a solve ends every
 *     rank); braid_TestInnerProd and braid_TestDelta pass on this app and fail on broken ones;
 *     braid_Warmup runs and passes a failing callback's code on.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braid.h"
#include "braid_test.h"

#define DIM 3

static int failures = 0;

#define EXPECT(cond, ...)                                                  \
   do {                                                                    \
      if (!(cond))                                                         \
      {                                                                    \
         fprintf(stderr, "FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
         fprintf(stderr, __VA_ARGS__);                                     \
         fputc('\n', stderr);                                              \
         failures++;                                                       \
      }                                                                    \
   } while (0)

struct _braid_Vector_struct {
   double v[DIM];
};

struct _braid_App_struct {
   int ntime, triangular;
   int broken;             /* 1: step ignores the basis; 2: inner_prod is not symmetric;
                            * 3: init_basis gives the same vector for every index;
                            * 4: step fails (returns 9) */
   double *solution;       /* [(ntime + 1) * DIM] by access (0 where not local) */
   double *exps;           /* [(ntime + 1) * DIM] local exponents by access */
   int *has_exps;
};

static const double tri_diag[DIM] = {0.5, -0.2, -1.0};

/* A(t) applied to u into f */
static void apply_a(const struct _braid_App_struct *app, double t, const double *u, double *f)
{
   if (app->triangular)
   {
      f[0] = tri_diag[0] * u[0] + 0.3 * u[1] - 0.1 * u[2];
      f[1] = tri_diag[1] * u[1] + 0.4 * u[2];
      f[2] = tri_diag[2] * u[2];
      return;
   }
   f[0] = -1.0 * u[0] + (2.0 + cos(t)) * u[1];
   f[1] = -2.0 * u[0] - 0.5 * u[1] + 0.5 * sin(t) * u[2];
   f[2] = 0.3 * u[0] - 0.5 * u[1] - 0.3 * u[2];
}

/* forward Euler: u += dt A(t) u (linear: its derivative is the same map) */
static void euler(const struct _braid_App_struct *app, double t, double dt, double *u)
{
   double f[DIM];
   int k;
   apply_a(app, t, u, f);
   for (k = 0; k < DIM; k++) u[k] += dt * f[k];
}

static braid_Int my_step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                         braid_StepStatus status)
{
   braid_Real t0, t1;
   braid_Int rank = 0, m;
   (void) ustop;
   (void) fstop;
   if (app->broken == 4) return 9;
   braid_StepStatusGetTstartTstop(status, &t0, &t1);
   braid_StepStatusGetDeltaRank(status, &rank);
   euler(app, t0, t1 - t0, u->v);
   for (m = 0; m < rank && app->broken != 1; m++)
   {
      braid_Vector psi = NULL;
      braid_StepStatusGetBasisVec(status, &psi, m);
      if (psi == NULL) return 5;
      euler(app, t0, t1 - t0, psi->v);
   }
   return 0;
}

static braid_Int my_init(braid_App app, braid_Real t, braid_Vector *u_ptr)
{
   braid_Vector u = (braid_Vector) malloc(sizeof(*u));
   (void) app;
   if (u == NULL) return 1;
   /* a nonzero guess away from t = 0, so that braid_TestInnerProd's checks are conclusive */
   u->v[0] = t == 0.0 ? 1.0 : 0.3;
   u->v[1] = t == 0.0 ? -0.5 : 0.2;
   u->v[2] = t == 0.0 ? 2.0 : -0.1;
   *u_ptr = u;
   return 0;
}

static braid_Int my_init_basis(braid_App app, braid_Real t, braid_Int index, braid_Vector *u_ptr)
{
   braid_Vector u = (braid_Vector) calloc(1, sizeof(*u));
   (void) t;
   if (u == NULL) return 1;
   u->v[app->broken == 3 ? 0 : index % DIM] = 1.0;
   *u_ptr = u;
   return 0;
}

static braid_Int my_inner_prod(braid_App app, braid_Vector u, braid_Vector v, braid_Real *prod)
{
   *prod = u->v[0] * v->v[0] + u->v[1] * v->v[1] + u->v[2] * v->v[2];
   if (app->broken == 2) *prod += u->v[0] * v->v[1];
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

static braid_Int my_sum(braid_App app, braid_Real a, braid_Vector x, braid_Real b, braid_Vector y)
{
   int k;
   (void) app;
   for (k = 0; k < DIM; k++) y->v[k] = a * x->v[k] + b * y->v[k];
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
   braid_Int i, n = DIM;
   braid_AccessStatusGetTIndex(astatus, &i);
   if (app->solution == NULL || i < 0 || i > app->ntime) return 0;
   memcpy(&app->solution[i * DIM], u->v, sizeof(u->v));
   braid_AccessStatusGetLocalLyapExponents(astatus, &app->exps[i * DIM], &n);
   app->has_exps[i] = n;
   return 0;
}

static braid_Int my_bufsize(braid_App app, braid_Int *size, braid_BufferStatus bstatus)
{
   (void) app;
   (void) bstatus;
   *size = sizeof(double) * DIM;
   return 0;
}

static braid_Int my_bufpack(braid_App app, braid_Vector u, void *buffer, braid_BufferStatus s)
{
   (void) app;
   (void) s;
   memcpy(buffer, u->v, sizeof(u->v));
   return 0;
}

static braid_Int my_bufunpack(braid_App app, void *buffer, braid_Vector *u_ptr,
                              braid_BufferStatus s)
{
   braid_Vector u = (braid_Vector) malloc(sizeof(*u));
   (void) app;
   (void) s;
   if (u == NULL) return 1;
   memcpy(u->v, buffer, sizeof(u->v));
   *u_ptr = u;
   return 0;
}

static braid_Int my_residual(braid_App app, braid_Vector ustop, braid_Vector r,
                             braid_StepStatus status)
{
   (void) app;
   (void) ustop;
   (void) r;
   (void) status;
   return 0;
}

typedef struct {
   int ml, cf, rank, lyap, triangular;
   double tstop;
} config;

typedef struct {
   int err, niter;
   double rnorms[40];
   double *solution, *exps; /* gathered on every rank */
   int *has_exps;
} result;

#define NTIME 64

/* One solve on comm; the solution and exponents gathered over comm (each point has one
 * owner, so the sums are exact). */
static void solve(MPI_Comm comm, const config *cf, result *res)
{
   struct _braid_App_struct app;
   braid_Core core = NULL;
   braid_Int n = 40, niter = 0;
   int count = (NTIME + 1) * DIM;
   memset(&app, 0, sizeof(app));
   app.ntime = NTIME;
   app.triangular = cf->triangular;
   app.solution = (double *) calloc((size_t) count, sizeof(double));
   app.exps = (double *) calloc((size_t) count, sizeof(double));
   app.has_exps = (int *) calloc(NTIME + 1, sizeof(int));
   memset(res, 0, sizeof(*res));
   res->solution = (double *) calloc((size_t) count, sizeof(double));
   res->exps = (double *) calloc((size_t) count, sizeof(double));
   res->has_exps = (int *) calloc(NTIME + 1, sizeof(int));
   res->err = braid_Init(comm, comm, 0.0, cf->tstop, NTIME, &app, my_step, my_init, my_clone,
                         my_free, my_sum, my_norm, my_access, my_bufsize, my_bufpack,
                         my_bufunpack, &core);
   if (!res->err && cf->rank > 0)
   {
      res->err = braid_SetDeltaCorrection(core, cf->rank, my_init_basis, my_inner_prod);
      if (!res->err && cf->lyap) res->err = braid_SetLyapunovEstimation(core, 0, 1, 1);
   }
   braid_SetPrintLevel(core, 0);
   braid_SetMaxLevels(core, cf->ml);
   braid_SetCFactor(core, -1, cf->cf);
   braid_SetMaxIter(core, 30);
   braid_SetAbsTol(core, 1e-13);
   braid_SetSkip(core, 0);
   if (!res->err) res->err = braid_Drive(core);
   if (!res->err)
   {
      braid_GetNumIter(core, &niter);
      braid_GetRNorms(core, &n, res->rnorms);
      res->niter = niter;
   }
   braid_Destroy(core);
   MPI_Allreduce(app.solution, res->solution, count, MPI_DOUBLE, MPI_SUM, comm);
   MPI_Allreduce(app.exps, res->exps, count, MPI_DOUBLE, MPI_SUM, comm);
   MPI_Allreduce(app.has_exps, res->has_exps, NTIME + 1, MPI_INT, MPI_SUM, comm);
   free(app.solution);
   free(app.exps);
   free(app.has_exps);
}

static void result_free(result *res)
{
   free(res->solution);
   free(res->exps);
   free(res->has_exps);
}

static double max_diff_sequential(const config *cf, const double *sol)
{
   struct _braid_App_struct app;
   double u[DIM], d = 0.0;
   int i, k;
   memset(&app, 0, sizeof(app));
   app.triangular = cf->triangular;
   u[0] = 1.0;
   u[1] = -0.5;
   u[2] = 2.0;
   for (i = 0; i <= NTIME; i++)
   {
      if (i > 0)
      {
         double t0 = cf->tstop * (double) (i - 1) / NTIME, t1 = cf->tstop * (double) i / NTIME;
         euler(&app, t0, t1 - t0, u);
      }
      for (k = 0; k < DIM; k++) d = fmax(d, fabs(sol[i * DIM + k] - u[k]));
   }
   return d;
}

/* 1 and 2: convergence, the sequential solution, the same bits as on one rank */
static void check_config(const config *cf, int *niter_out)
{
   result par, one;
   solve(MPI_COMM_WORLD, cf, &par);
   solve(MPI_COMM_SELF, cf, &one);
   EXPECT(par.err == 0 && one.err == 0, "ml %d cf %d rank %d: Drive failed", cf->ml, cf->cf,
          cf->rank);
   EXPECT(par.niter == one.niter
          && !memcmp(par.rnorms, one.rnorms, sizeof(double) * (size_t) (par.niter + 1))
          && !memcmp(par.solution, one.solution, sizeof(double) * (NTIME + 1) * DIM)
          && !memcmp(par.exps, one.exps, sizeof(double) * (NTIME + 1) * DIM),
          "ml %d cf %d rank %d: not the bits of the one-rank solve", cf->ml, cf->cf, cf->rank);
   EXPECT(max_diff_sequential(cf, par.solution) <= 1e-11,
          "ml %d cf %d rank %d: max |u - u_sequential| = %g", cf->ml, cf->cf, cf->rank,
          max_diff_sequential(cf, par.solution));
   *niter_out = par.niter;
   if (cf->rank == DIM && !cf->lyap)
   {
      /* an exact coarse grid: round-off after one cycle */
      EXPECT(par.rnorms[1] <= 1e-12 * par.rnorms[0], "ml %d cf %d: r_1 / r_0 = %g with full "
             "rank", cf->ml, cf->cf, par.rnorms[1] / par.rnorms[0]);
   }
   if (cf->rank == 0)
   {
      EXPECT(par.rnorms[1] > 1e-6 * par.rnorms[0], "ml %d cf %d: r_1 / r_0 = %g without Delta "
             "(the comparison needs a coarse grid that is not exact)", cf->ml, cf->cf,
             par.rnorms[1] / par.rnorms[0]);
   }
   if (cf->lyap)
   {
      /* upper-triangular A: Q stays I, R_kk = 1 + dt a_kk at every step */
      double dt = cf->tstop / NTIME;
      int i, k, nexp = 0;
      for (i = 0; i <= NTIME; i++)
      {
         if (!par.has_exps[i]) continue;
         nexp++;
         for (k = 0; k < DIM; k++)
         {
            double expected = log(1.0 + dt * tri_diag[k]) / dt;
            EXPECT(fabs(par.exps[i * DIM + k] - expected) <= 1e-9, "exponent %d at point %d: "
                   "%.15g, expected %.15g", k, i, par.exps[i * DIM + k], expected);
         }
      }
      /* every F-point of the fine grid reports them */
      EXPECT(nexp == NTIME - NTIME / cf->cf, "%d points have exponents", nexp);
   }
   result_free(&par);
   result_free(&one);
}

static braid_Core new_core(struct _braid_App_struct *app)
{
   braid_Core core = NULL;
   braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, NTIME, app, my_step, my_init, my_clone,
              my_free, my_sum, my_norm, my_access, my_bufsize, my_bufpack, my_bufunpack, &core);
   braid_SetPrintLevel(core, 0);
   braid_SetMaxLevels(core, 2);
   return core;
}

/* 4: bad input, and braid_TestInnerProd / braid_TestDelta */
static void check_errors(void)
{
   struct _braid_App_struct app;
   braid_Core core;
   braid_Vector v = (braid_Vector) 1;
   int b;
   memset(&app, 0, sizeof(app));
   app.ntime = NTIME;

   EXPECT(braid_SetDeltaCorrection(NULL, 1, my_init_basis, my_inner_prod) != 0, "NULL core");
   core = new_core(&app);
   EXPECT(braid_SetDeltaCorrection(core, -1, my_init_basis, my_inner_prod) != 0, "rank -1");
   EXPECT(braid_SetDeltaCorrection(core, 2, NULL, my_inner_prod) != 0, "NULL basis_init");
   EXPECT(braid_SetDeltaCorrection(core, 2, my_init_basis, NULL) != 0, "NULL inner_prod");
   EXPECT(braid_SetDeferDelta(core, 0, 0) != 0, "defer to level 0");
   EXPECT(braid_SetDeferDelta(core, 1, -1) != 0, "defer to iteration -1");
   EXPECT(braid_SetLyapunovEstimation(core, 2, 1, 0) != 0, "relax = 2");
   EXPECT(braid_StatusGetBasisVec(NULL, &v, 0) != 0, "NULL status");
   /* Delta with a user residual: refused by braid_Drive on every rank */
   EXPECT(braid_SetDeltaCorrection(core, 2, my_init_basis, my_inner_prod) == 0, "rank 2");
   braid_SetResidual(core, my_residual);
   EXPECT(braid_Drive(core) != 0, "Delta with a user residual");
   braid_Destroy(core);
   /* more basis vectors than the state has dimensions: a clear error, every rank stops */
   core = new_core(&app);
   braid_SetDeltaCorrection(core, DIM + 1, my_init_basis, my_inner_prod);
   EXPECT(braid_Drive(core) != 0, "rank %d > the dimension %d", DIM + 1, DIM);
   braid_Destroy(core);
   /* options cannot change once the grids exist */
   core = new_core(&app);
   braid_SetMaxIter(core, 2);
   EXPECT(braid_Drive(core) == 0, "plain solve");
   EXPECT(braid_SetDeltaCorrection(core, 1, my_init_basis, my_inner_prod) != 0, "after Drive");
   braid_Destroy(core);

   /* braid_Warmup calls everything once, the basis included; a failing callback's code */
   EXPECT(braid_Warmup(&app, MPI_COMM_WORLD, 0.0, 0.1, 0.2, my_init, my_access, my_free,
                       my_clone, my_sum, my_norm, my_bufsize, my_bufpack, my_bufunpack, NULL,
                       NULL, my_step, my_init_basis, my_inner_prod) == 0, "braid_Warmup");
   app.broken = 4;
   EXPECT(braid_Warmup(&app, MPI_COMM_WORLD, 0.0, 0.1, 0.2, my_init, my_access, my_free,
                       my_clone, my_sum, my_norm, my_bufsize, my_bufpack, my_bufunpack, NULL,
                       NULL, my_step, my_init_basis, my_inner_prod) == 9, "braid_Warmup with "
          "a failing step");

   /* the wrapper tests: a correct app passes, each broken one fails */
   for (b = 0; b <= 3; b++)
   {
      int ok_ip, ok_delta;
      app.broken = b;
      ok_ip = braid_TestInnerProd(&app, MPI_COMM_WORLD, NULL, 0.0, 1.0, my_init, my_free, my_sum,
                                  my_inner_prod);
      ok_delta = braid_TestDelta(&app, MPI_COMM_WORLD, NULL, 0.0, 0.1, DIM, my_init,
                                 my_init_basis, my_access, my_free, my_clone, my_sum,
                                 my_bufsize, my_bufpack, my_bufunpack, my_inner_prod, my_step);
      EXPECT(ok_ip == (b != 2), "braid_TestInnerProd = %d with broken = %d", ok_ip, b);
      EXPECT(ok_delta == (b == 0), "braid_TestDelta = %d with broken = %d", ok_delta, b);
   }
}

int main(int argc, char *argv[])
{
   const config configs[] = {
      {2, 4, 0, 0, 0, 2.0}, {2, 4, 3, 0, 0, 2.0}, {3, 2, 0, 0, 0, 2.0}, {3, 2, 3, 0, 0, 2.0},
      {3, 2, 2, 0, 0, 2.0}, {3, 4, 3, 1, 1, 2.0},
   };
   int c, niter[6], total = 0, myid;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &myid);
   for (c = 0; c < 6; c++) check_config(&configs[c], &niter[c]);
   EXPECT(niter[1] < niter[0] && niter[3] < niter[2], "iterations with Delta %d %d, without "
          "%d %d", niter[1], niter[3], niter[0], niter[2]);
   if (myid == 0)
   {
      printf("iterations: 2 levels %d without Delta, %d with rank 3; 3 levels %d without, %d "
             "with rank 3, %d with rank 2\n", niter[0], niter[1], niter[2], niter[3], niter[4]);
   }
   check_errors();
   MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
   if (myid == 0) printf("delta: %s (%d failed checks)\n", total ? "FAILED" : "passed", total);
   MPI_Finalize();
   return total ? 1 : 0;
}
