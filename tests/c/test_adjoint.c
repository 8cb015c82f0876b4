/*
 * XBraid_Adjoint on the scalar reference problem of issue 15:
 *   u' = lambda u, u(0) = 1, backward Euler, J = (1/ntime) sum_{t_i in [t0, t1]} u_i^2.
 * 1. Upstream's reference run (ntime 50, tstop 25, 2 levels, cf 2, max_iter 20, abs tol 1e-6
 *    for state and adjoint): its residual table, iteration count, J and dJ/dlambda.
 * 2. Converged (tight tolerances) on other hierarchies: dJ/dlambda equals the exact derivative
 *    of the discrete objective and central finite differences of the objective
 *    (braid_SetObjectiveOnly runs), with and without a restricted objective window and a
 *    postprocessing function.
 * 3. On several ranks (the test runs on 1, 2 and 3): the residual table, the iteration count and
 *    the objective are bit-identical to a one-rank solve (rank 0 repeats each run on a
 *    communicator of its own) and the same on every rank; the gradient, summed by the user over
 *    the ranks, agrees to rounding.
 * 4. The layerbraid extensions: the adjoint residual history (layerbraid_GetRNormsAdjoint) and
 *    dJ/du_0 (layerbraid_GetInitialAdjoint, on the owner of point 0) against its exact value.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braid.h"
#include "braid_layerbraid.h"

struct _braid_App_struct {
   double lambda;
   int ntime;
   double gradient;
   int nreset;
};
struct _braid_Vector_struct {
   double value;
};

static braid_Int step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                      braid_StepStatus status)
{
   braid_Real t0, t1;
   (void) ustop;
   braid_StepStatusGetTstartTstop(status, &t0, &t1);
   if (fstop != NULL) u->value += fstop->value;
   u->value /= 1.0 - app->lambda * (t1 - t0);
   return 0;
}
static braid_Int step_diff(braid_App app, braid_Vector ustop, braid_Vector u,
                           braid_Vector ustop_bar, braid_Vector u_bar, braid_StepStatus status)
{
   braid_Real t0, t1, d;
   (void) ustop;
   (void) ustop_bar;
   braid_StepStatusGetTstartTstop(status, &t0, &t1);
   d = 1.0 - app->lambda * (t1 - t0);
   app->gradient += u->value * (t1 - t0) / (d * d) * u_bar->value;
   u_bar->value /= d;
   return 0;
}
static braid_Int objT(braid_App app, braid_Vector u, braid_ObjectiveStatus s, braid_Real *o)
{
   braid_Int level = -1;
   braid_ObjectiveStatusGetLevel(s, &level);
   if (level != 0) return 7;
   *o = u->value * u->value / app->ntime;
   return 0;
}
static braid_Int objT_diff(braid_App app, braid_Vector u, braid_Vector u_bar, braid_Real F_bar,
                           braid_ObjectiveStatus s)
{
   (void) s;
   u_bar->value = 2.0 * u->value / app->ntime * F_bar;
   return 0;
}
static braid_Int reset(braid_App app)
{
   app->gradient = 0.0;
   app->nreset++;
   return 0;
}
/* postprocessing: F(s) = s^2 / 2 + s */
static braid_Int post(braid_App app, braid_Real s, braid_Real *f)
{
   (void) app;
   *f = 0.5 * s * s + s;
   return 0;
}
static braid_Int post_diff(braid_App app, braid_Real s, braid_Real *fb)
{
   (void) app;
   *fb = s + 1.0;
   return 0;
}
/* vectors alive now and at most since the last reset: what the adjoint keeps */
static long live_vectors, peak_vectors;
static braid_Vector new_vector(void)
{
   if (++live_vectors > peak_vectors) peak_vectors = live_vectors;
   return malloc(sizeof(struct _braid_Vector_struct));
}
static braid_Int init(braid_App app, braid_Real t, braid_Vector *u_ptr)
{
   (void) app;
   *u_ptr = new_vector();
   (*u_ptr)->value = t == 0.0 ? 1.0 : 0.456;
   return 0;
}
static braid_Int clone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{
   (void) app;
   *v_ptr = new_vector();
   (*v_ptr)->value = u->value;
   return 0;
}
static braid_Int vfree(braid_App app, braid_Vector u)
{
   (void) app;
   live_vectors--;
   free(u);
   return 0;
}
static braid_Int sum(braid_App app, braid_Real a, braid_Vector x, braid_Real b, braid_Vector y)
{
   (void) app;
   y->value = a * x->value + b * y->value;
   return 0;
}
static braid_Int norm(braid_App app, braid_Vector u, braid_Real *n)
{
   (void) app;
   *n = fabs(u->value);
   return 0;
}
static braid_Int access(braid_App app, braid_Vector u, braid_AccessStatus s)
{
   (void) app;
   (void) u;
   (void) s;
   return 0;
}
static braid_Int bufsize(braid_App app, braid_Int *size, braid_BufferStatus s)
{
   (void) app;
   (void) s;
   *size = sizeof(double);
   return 0;
}
static braid_Int bufpack(braid_App app, braid_Vector u, void *buf, braid_BufferStatus s)
{
   (void) app;
   memcpy(buf, &u->value, sizeof(double));
   braid_BufferStatusSetSize(s, sizeof(double));
   return 0;
}
static braid_Int bufunpack(braid_App app, void *buf, braid_Vector *u_ptr, braid_BufferStatus s)
{
   (void) app;
   (void) s;
   *u_ptr = new_vector();
   memcpy(&(*u_ptr)->value, buf, sizeof(double));
   return 0;
}

typedef struct {
   int ntime, ml, cf, nrelax, mi, obj_only, postproc;
   double tstop, tol, t0, t1;
} Case;

typedef struct {
   double J, grad, rnorm_adj;
   int iters, nreset;
   double rnorms[64], rnorms_adj[64];
   int nrnorms, nrnorms_adj;
   double u0bar; /* dJ/du_0 (summed over the ranks: only the owner of point 0 has it) */
   long peak;    /* the most vectors alive at once on this rank */
} Result;

static int fails = 0;
static MPI_Comm self;

static int run_on(MPI_Comm comm, const Case *c, double lambda, Result *r)
{
   struct _braid_App_struct app = {lambda, c->ntime, 0.0, 0};
   braid_Core core = NULL;
   braid_Vector u0bar = NULL;
   braid_Int err, n = 64, nadj = 64;
   long live0 = live_vectors;
   peak_vectors = live_vectors;
   err = braid_Init(comm, comm, 0.0, c->tstop, c->ntime, &app, step, init,
                    clone, vfree, sum, norm, access, bufsize, bufpack, bufunpack, &core);
   if (!err) err = braid_InitAdjoint(objT, objT_diff, step_diff, reset, &core);
   if (err) return 1;
   braid_SetPrintLevel(core, 0);
   braid_SetMaxLevels(core, c->ml);
   braid_SetCFactor(core, -1, c->cf);
   braid_SetNRelax(core, -1, c->nrelax);
   braid_SetMaxIter(core, c->mi);
   braid_SetAbsTol(core, c->tol);
   braid_SetAbsTolAdjoint(core, c->tol);
   if (c->t0 > 0.0) braid_SetTStartObjective(core, c->t0);
   if (c->t1 > 0.0) braid_SetTStopObjective(core, c->t1);
   if (c->obj_only) braid_SetObjectiveOnly(core, 1);
   if (c->postproc)
   {
      braid_SetPostprocessObjective(core, post);
      braid_SetPostprocessObjective_diff(core, post_diff);
   }
   err = braid_Drive(core);
   if (!err)
   {
      braid_GetObjective(core, &r->J);
      braid_GetRNormAdjoint(core, &r->rnorm_adj);
      braid_GetNumIter(core, &r->iters);
      braid_GetRNorms(core, &n, r->rnorms);
      r->nrnorms = n;
      r->nrnorms_adj = 0;
      r->u0bar = 0.0;
      if (!c->obj_only)
      {
         double mine;
         int rank;
         MPI_Comm_rank(comm, &rank);
         layerbraid_GetRNormsAdjoint(core, &nadj, r->rnorms_adj);
         r->nrnorms_adj = nadj;
         err = layerbraid_GetInitialAdjoint(core, &u0bar);
         if (err || (u0bar != NULL) != (rank == 0))
         {
            printf("FAIL: layerbraid_GetInitialAdjoint on rank %d: error %d, vector %p\n",
                   rank, (int) err, (void *) u0bar);
            fails++;
         }
         mine = u0bar != NULL ? u0bar->value : 0.0;
         MPI_Allreduce(&mine, &r->u0bar, 1, MPI_DOUBLE, MPI_SUM, comm);
         if (u0bar != NULL) vfree(&app, u0bar);
      }
      /* each rank has the gradient of its own steps and objective terms */
      MPI_Allreduce(&app.gradient, &r->grad, 1, MPI_DOUBLE, MPI_SUM, comm);
      r->nreset = app.nreset;
   }
   braid_Destroy(core);
   r->peak = peak_vectors - live0;
   if (live_vectors != live0)
   {
      printf("FAIL: %ld vectors not freed\n", live_vectors - live0);
      fails++;
   }
   return err != 0;
}


/* every rank must report rank 0's history, iteration count and objective, bit for bit */
static void check_same_on_every_rank(const Case *c, const Result *r)
{
   Result r0 = *r;
   int rank, k, same;
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Bcast(&r0, (int) sizeof r0, MPI_BYTE, 0, MPI_COMM_WORLD);
   same = r0.iters == r->iters && r0.J == r->J && r0.rnorm_adj == r->rnorm_adj
          && r0.nrnorms == r->nrnorms && r0.nrnorms_adj == r->nrnorms_adj;
   for (k = 0; same && k < r->nrnorms; k++) same = r0.rnorms[k] == r->rnorms[k];
   for (k = 0; same && k < r->nrnorms_adj; k++) same = r0.rnorms_adj[k] == r->rnorms_adj[k];
   if (!same)
   {
      printf("FAIL: ntime %d: rank %d reports other results than rank 0\n", c->ntime, rank);
      fails++;
   }
}

/* the run on every rank; on rank 0 the same run on one rank, which must agree bit for bit */
static int run(const Case *c, double lambda, Result *r)
{
   int rank, k, err = run_on(MPI_COMM_WORLD, c, lambda, r);
   Result one;
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   if (!err) check_same_on_every_rank(c, r);
   if (err || rank != 0) return err;
   if (run_on(self, c, lambda, &one)) { printf("FAIL: one-rank drive\n"); fails++; return 0; }
   if (one.iters != r->iters || one.nrnorms != r->nrnorms || one.J != r->J
       || one.rnorm_adj != r->rnorm_adj || one.nreset != r->nreset)
   {
      printf("FAIL: ntime %d: not the one-rank result: iterations %d/%d, J %.17e/%.17e, "
             "r_adj %.17e/%.17e\n", c->ntime, r->iters, one.iters, r->J, one.J, r->rnorm_adj,
             one.rnorm_adj);
      fails++;
   }
   for (k = 0; k < r->nrnorms && k < one.nrnorms; k++)
   {
      if (r->rnorms[k] != one.rnorms[k])
      {
         printf("FAIL: ntime %d: r_%d %.17e, one rank %.17e\n", c->ntime, k, r->rnorms[k],
                one.rnorms[k]);
         fails++;
      }
   }
   if (r->nrnorms_adj != one.nrnorms_adj || r->u0bar != one.u0bar)
   {
      printf("FAIL: ntime %d: %d adjoint residuals, dJ/du0 %.17e; one rank %d, %.17e\n",
             c->ntime, r->nrnorms_adj, r->u0bar, one.nrnorms_adj, one.u0bar);
      fails++;
   }
   for (k = 0; k < r->nrnorms_adj && k < one.nrnorms_adj; k++)
   {
      if (r->rnorms_adj[k] != one.rnorms_adj[k])
      {
         printf("FAIL: ntime %d: r_adj_%d %.17e, one rank %.17e\n", c->ntime, k,
                r->rnorms_adj[k], one.rnorms_adj[k]);
         fails++;
      }
   }
   if (!(fabs(r->grad - one.grad) <= 1e-14 * fabs(one.grad)))
   {
      printf("FAIL: ntime %d: gradient %.17e, one rank %.17e\n", c->ntime, r->grad, one.grad);
      fails++;
   }
   return 0;
}

/* the discrete objective and its exact derivatives by lambda and by u_0 (u_i = a^i u_0, u_0 = 1) */
static void exact(const Case *c, double lambda, double *J, double *dJ, double *dJdu0)
{
   double dt = c->tstop / c->ntime, d = 1.0 - lambda * dt, a = 1.0 / d, da = dt / (d * d);
   double t1 = c->t1 > 0.0 ? c->t1 : c->tstop, s = 0.0, ds = 0.0, du0 = 0.0;
   int i;
   for (i = 0; i <= c->ntime; i++)
   {
      double t = i * dt;
      if (t < c->t0 || t > t1) continue;
      s += pow(a, 2 * i) / c->ntime;
      du0 += 2.0 * pow(a, 2 * i) / c->ntime;
      if (i > 0) ds += 2.0 * i * pow(a, 2 * i - 1) * da / c->ntime;
   }
   *J = c->postproc ? 0.5 * s * s + s : s;
   *dJ = c->postproc ? (s + 1.0) * ds : ds;
   *dJdu0 = c->postproc ? (s + 1.0) * du0 : du0;
}

static void check(const char *what, double got, double want, double rtol)
{
   double err = fabs(got - want) / fmax(fabs(want), 1e-300);
   if (!(err <= rtol))
   {
      printf("FAIL %s: got %.15e, want %.15e (rel. error %.2e > %.1e)\n", what, got, want, err, rtol);
      fails++;
   }
}

int main(int argc, char **argv)
{
   int rank, k, nprocs;
   Result r;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
   MPI_Comm_split(MPI_COMM_WORLD, rank, 0, &self);

   {
      /* 1. upstream's reference run */
      const Case ref = {50, 2, 2, 1, 20, 0, 0, 25.0, 1e-6, 0.0, 0.0};
      if (run(&ref, -1.0, &r)) { printf("FAIL: reference drive\n"); fails++; }
      else
      {
         if (r.iters != 6) { printf("FAIL: iterations %d, want 6\n", r.iters); fails++; }
         check("J", r.J, 3.59999999999874e-02, 1e-13);
         check("dJ/dlambda", r.grad, 1.92000799963229e-02, 1e-13);
         check("r_0", r.rnorms[0], 5.399995e-01, 1e-6);
         check("r_1", r.rnorms[1], 2.446737e-02, 1e-6);
         check("r_5", r.rnorms[5], 8.359592e-08, 1e-6);
         check("r_adj", r.rnorm_adj, 4.482596e-07, 1e-6);
         /* memory: the tape keeps each value once (559 vectors at once before it shared the
          * step results it reads again, and level 0's F-points were kept) */
         if (nprocs == 1 && r.peak > 386)
         {
            printf("FAIL: %ld vectors alive at once, want <= 386\n", r.peak);
            fails++;
         }
         if (r.nreset != 6) { printf("FAIL: reset_gradient called %d times, want 6\n", r.nreset); fails++; }
         /* the adjoint history: the table's column, then a copy of the last entry */
         if (r.nrnorms_adj != 7 || r.rnorms_adj[5] != r.rnorm_adj || r.rnorms_adj[6] != r.rnorm_adj)
         {
            printf("FAIL: adjoint history of %d entries, want 7 ending in r_adj twice\n",
                   r.nrnorms_adj);
            fails++;
         }
         else
         {
            check("r_adj_0", r.rnorms_adj[0], 2.521756e-02, 1e-6);
            check("r_adj_1", r.rnorms_adj[1], 2.604047e-02, 1e-6);
         }
      }
   }

   {
      /* 2. converged: exact derivative and finite differences */
      const Case cases[] = {
         {50, 2, 2, 1, 100, 0, 0, 25.0, 1e-13, 0.0, 0.0},
         {64, 3, 2, 1, 100, 0, 0, 8.0, 1e-13, 0.0, 0.0},
         {81, 4, 3, 0, 200, 0, 0, 20.0, 1e-13, 0.0, 0.0},
         {40, 2, 4, 2, 100, 0, 0, 10.0, 1e-13, 2.5, 7.5},
         {50, 3, 2, 1, 100, 0, 1, 25.0, 1e-13, 0.0, 0.0},
         {50, 2, 4, 1, 100, 0, 0, 25.0, 1e-13, 0.0, 0.0}, /* F-points after the last C-point */
         {51, 3, 3, 1, 100, 0, 0, 12.0, 1e-13, 0.0, 0.0},
      };
      for (k = 0; k < (int) (sizeof cases / sizeof cases[0]); k++)
      {
         Case c = cases[k];
         double J, dJ, dJdu0, h = 1e-5, lambda = -0.7;
         Result rp, rm;
         char what[64];
         if (run(&c, lambda, &r)) { printf("FAIL: case %d drive\n", k); fails++; continue; }
         exact(&c, lambda, &J, &dJ, &dJdu0);
         snprintf(what, sizeof what, "case %d J", k);
         check(what, r.J, J, 1e-11);
         snprintf(what, sizeof what, "case %d dJ exact", k);
         check(what, r.grad, dJ, 1e-9);
         snprintf(what, sizeof what, "case %d dJ/du0 exact", k);
         check(what, r.u0bar, dJdu0, 1e-9);
         c.obj_only = 1;
         if (run(&c, lambda + h, &rp) || run(&c, lambda - h, &rm))
         {
            printf("FAIL: case %d objective-only drive\n", k);
            fails++;
            continue;
         }
         snprintf(what, sizeof what, "case %d dJ central FD", k);
         check(what, r.grad, (rp.J - rm.J) / (2.0 * h), 1e-7);
      }
   }

   {
      /* 3. bad input: errors, never a crash */
      struct _braid_App_struct app = {-1.0, 10, 0.0, 0};
      braid_Core core = NULL, none = NULL;
      double x;
      braid_Vector v = NULL;
      braid_Int nreq = 1;
      braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 5.0, 10, &app, step, init, clone, vfree,
                 sum, norm, access, bufsize, bufpack, bufunpack, &core);
      braid_SetPrintLevel(core, 0);
      if (braid_SetAbsTolAdjoint(core, 1e-6) == 0 || braid_GetObjective(core, &x) == 0
          || layerbraid_GetInitialAdjoint(core, &v) == 0
          || layerbraid_GetRNormsAdjoint(core, &nreq, &x) == 0)
      {
         printf("FAIL: adjoint options accepted before braid_InitAdjoint\n");
         fails++;
      }
      if (braid_InitAdjoint(objT, NULL, step_diff, reset, &core) == 0
          || braid_InitAdjoint(objT, objT_diff, step_diff, reset, &none) == 0
          || braid_InitAdjoint(objT, objT_diff, step_diff, reset, NULL) == 0)
      {
         printf("FAIL: braid_InitAdjoint accepted a NULL callback or core\n");
         fails++;
      }
      if (braid_InitAdjoint(objT, objT_diff, step_diff, reset, &core) != 0
          || braid_SetAbsTolAdjoint(core, -1.0) == 0 || braid_SetObjectiveOnly(core, 2) == 0
          || braid_GetRNormAdjoint(core, NULL) == 0)
      {
         printf("FAIL: bad adjoint options accepted\n");
         fails++;
      }
      nreq = 1;
      if (layerbraid_GetInitialAdjoint(core, &v) == 0 || v != NULL
          || layerbraid_GetRNormsAdjoint(core, &nreq, &x) != 0 || nreq != 0)
      {
         printf("FAIL: before braid_Drive: an initial adjoint, or an adjoint history\n");
         fails++;
      }
      braid_Destroy(core); /* never driven */

      /* objective only: no adjoint to give */
      braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 5.0, 10, &app, step, init, clone, vfree,
                 sum, norm, access, bufsize, bufpack, bufunpack, &core);
      braid_InitAdjoint(objT, objT_diff, step_diff, reset, &core);
      braid_SetPrintLevel(core, 0);
      braid_SetObjectiveOnly(core, 1);
      if (braid_Drive(core) != 0 || layerbraid_GetInitialAdjoint(core, &v) == 0 || v != NULL)
      {
         printf("FAIL: objective-only drive, or an initial adjoint after it\n");
         fails++;
      }
      braid_Destroy(core);
   }

   {
      int all = 0;
      MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
      fails = all;
   }
   if (rank == 0) printf("test_adjoint: %s on %d ranks (%d failures)\n", fails ? "FAILED" : "passed", nprocs, fails);
   MPI_Comm_free(&self);
   MPI_Finalize();
   return fails ? 1 : 0;
}
