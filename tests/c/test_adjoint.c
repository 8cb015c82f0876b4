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
 * 5. Options: one level (exact in one sweep, reported as the engine's one-level solve), a user
 *    time grid, a sequential initial guess, reverted ranks, access every iteration with a final
 *    FC relaxation (access sees the converged solution); the options the adjoint ignores change
 *    nothing, bit for bit; FMG and periodic problems are refused; a second braid_Drive on the
 *    same core (warm restart) solves for the app's new parameter.
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
   double tstop;
   long naccess[2];         /* access calls during (0) and after (1) the iterations */
   double access_err;       /* largest |u - u_exact| access saw after the iterations */
   const double *u_exact;   /* the discrete solution at every fine point */
};

/* braid_SetTimeGrid: a non-uniform grid, finer at the start */
static double grid_time(double tstop, int ntime, int i)
{
   double s = (double) i / ntime;
   return tstop * (0.5 * s + 0.5 * s * s);
}
static braid_Int tgrid(braid_App app, braid_Real *ta, braid_Int *ilower, braid_Int *iupper)
{
   braid_Int i;
   for (i = *ilower; i <= *iupper; i++) ta[i - *ilower] = grid_time(app->tstop, app->ntime, i);
   return 0;
}
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
   braid_Int done, i;
   braid_AccessStatusGetDone(s, &done);
   braid_AccessStatusGetTIndex(s, &i);
   app->naccess[done != 0]++;
   if (done && app->u_exact != NULL)
   {
      app->access_err = fmax(app->access_err, fabs(u->value - app->u_exact[i]));
   }
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

enum {
   TGRID = 1,     /* braid_SetTimeGrid(grid_time) */
   SEQ = 2,       /* braid_SetSeqSoln(1) */
   IGNORED = 4,   /* options the adjoint ignores: storage 0, skip 1, relax_only_cg, refine,
                   * Delta correction */
   REVERTED = 8,  /* braid_SetRevertedRanks(1) */
   ACCESS2 = 16   /* braid_SetAccessLevel(2), braid_SetFinalFCRelax */
};

typedef struct {
   int ntime, ml, cf, nrelax, mi, obj_only, postproc;
   double tstop, tol, t0, t1;
   int opts;
} Case;

typedef struct {
   double J, grad, rnorm_adj;
   int iters, nreset;
   double rnorms[64], rnorms_adj[64];
   int nrnorms, nrnorms_adj;
   double u0bar; /* dJ/du_0 (summed over the ranks: only the owner of point 0 has it) */
   long peak;    /* the most vectors alive at once on this rank */
   long naccess[2];   /* access calls during / after the iterations, all ranks */
   double access_err; /* largest error of the solution access saw, all ranks */
} Result;

static void exact(const Case *c, double lambda, double *J, double *dJ, double *dJdu0,
                  double *u);

/* Delta correction's callbacks (the adjoint ignores them) */
static braid_Int init_basis(braid_App app, braid_Real t, braid_Int index, braid_Vector *u_ptr)
{
   (void) t;
   (void) index;
   return init(app, 0.0, u_ptr);
}
static braid_Int inner_prod(braid_App app, braid_Vector u, braid_Vector v, braid_Real *prod)
{
   (void) app;
   *prod = u->value * v->value;
   return 0;
}

static int fails = 0;
static MPI_Comm self;

static int run_on(MPI_Comm comm, const Case *c, double lambda, Result *r)
{
   struct _braid_App_struct app = {lambda, c->ntime, 0.0, 0, c->tstop, {0, 0}, 0.0, NULL};
   double J, dJ, dJdu0, *u_exact = malloc((size_t) (c->ntime + 1) * sizeof(double));
   braid_Core core = NULL;
   braid_Vector u0bar = NULL;
   braid_Int err, n = 64, nadj = 64;
   long live0 = live_vectors;
   peak_vectors = live_vectors;
   err = braid_Init(comm, comm, 0.0, c->tstop, c->ntime, &app, step, init,
                    clone, vfree, sum, norm, access, bufsize, bufpack, bufunpack, &core);
   if (!err) err = braid_InitAdjoint(objT, objT_diff, step_diff, reset, &core);
   if (err) return 1;
   exact(c, lambda, &J, &dJ, &dJdu0, u_exact);
   app.u_exact = u_exact;
   if (c->opts & TGRID) braid_SetTimeGrid(core, tgrid);
   if (c->opts & SEQ) braid_SetSeqSoln(core, 1);
   if (c->opts & REVERTED) braid_SetRevertedRanks(core, 1);
   if (c->opts & ACCESS2)
   {
      braid_SetAccessLevel(core, 2);
      braid_SetFinalFCRelax(core);
   }
   if (c->opts & IGNORED)
   {
      braid_SetStorage(core, 0);
      braid_SetSkip(core, 1);
      braid_SetRelaxOnlyCG(core, 1);
      braid_SetRefine(core, 1);
      braid_SetDeltaCorrection(core, 1, init_basis, inner_prod);
   }
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
         int rank, size, owner;
         MPI_Comm_rank(comm, &rank);
         MPI_Comm_size(comm, &size);
         owner = c->opts & REVERTED ? size - 1 : 0; /* of time point 0 */
         layerbraid_GetRNormsAdjoint(core, &nadj, r->rnorms_adj);
         r->nrnorms_adj = nadj;
         err = layerbraid_GetInitialAdjoint(core, &u0bar);
         if (err || (u0bar != NULL) != (rank == owner))
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
      MPI_Allreduce(app.naccess, r->naccess, 2, MPI_LONG, MPI_SUM, comm);
      MPI_Allreduce(&app.access_err, &r->access_err, 1, MPI_DOUBLE, MPI_MAX, comm);
      r->nreset = app.nreset;
   }
   braid_Destroy(core);
   free(u_exact);
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

static double time_of(const Case *c, int i)
{
   return c->opts & TGRID ? grid_time(c->tstop, c->ntime, i) : i * (c->tstop / c->ntime);
}

/* The discrete solution u (u_0 = 1, u_i = u_{i-1} / (1 - lambda dt_i)), the objective and its
 * exact derivatives by lambda and by u_0 (u is linear in u_0). */
static void exact(const Case *c, double lambda, double *J, double *dJ, double *dJdu0,
                  double *u)
{
   double t1 = c->t1 > 0.0 ? c->t1 : c->tstop, s = 0.0, ds = 0.0, du0 = 0.0, du = 0.0;
   int i;
   u[0] = 1.0;
   for (i = 0; i <= c->ntime; i++)
   {
      double t = time_of(c, i);
      if (i > 0)
      {
         double dt = t - time_of(c, i - 1), d = 1.0 - lambda * dt;
         du = du / d + u[i - 1] * dt / (d * d);
         u[i] = u[i - 1] / d;
      }
      if (t < c->t0 || t > t1) continue;
      s += u[i] * u[i] / c->ntime;
      du0 += 2.0 * u[i] * u[i] / c->ntime;
      ds += 2.0 * u[i] * du / c->ntime;
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

/* A second and third braid_Drive on one core: the state and adjoint of the last drive are the
 * start; the result is the app's current lambda's, and an unchanged lambda needs one iteration. */
static void warm_restart(void)
{
   const Case c = {50, 2, 2, 1, 100, 0, 0, 25.0, 1e-13, 0.0, 0.0, 0};
   struct _braid_App_struct app = {-0.7, c.ntime, 0.0, 0, c.tstop, {0, 0}, 0.0, NULL};
   double J, dJ, dJdu0, Jgot = 0.0, grad = 0.0, u[51];
   braid_Core core = NULL;
   braid_Int iters = 0;
   int k;
   char what[64];
   braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, c.tstop, c.ntime, &app, step, init, clone,
              vfree, sum, norm, access, bufsize, bufpack, bufunpack, &core);
   braid_InitAdjoint(objT, objT_diff, step_diff, reset, &core);
   braid_SetPrintLevel(core, 0);
   braid_SetMaxIter(core, c.mi);
   braid_SetAbsTol(core, c.tol);
   braid_SetAbsTolAdjoint(core, c.tol);
   for (k = 0; k < 3; k++)
   {
      app.lambda = k == 0 ? -0.7 : -0.6;
      if (braid_Drive(core) != 0) { printf("FAIL: warm restart: drive %d\n", k); fails++; break; }
      braid_GetObjective(core, &Jgot);
      braid_GetNumIter(core, &iters);
      MPI_Allreduce(&app.gradient, &grad, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      exact(&c, app.lambda, &J, &dJ, &dJdu0, u);
      snprintf(what, sizeof what, "warm restart, drive %d: J", k);
      check(what, Jgot, J, 1e-11);
      snprintf(what, sizeof what, "warm restart, drive %d: dJ", k);
      check(what, grad, dJ, 1e-9);
   }
   if (iters != 1)
   {
      printf("FAIL: warm restart at the solution: %d iterations, want 1\n", (int) iters);
      fails++;
   }
   braid_Destroy(core);
}

/* options the adjoint ignores leave the result as it is, bit for bit; those it cannot do are
 * refused on every rank */
static void ignored_and_refused(void)
{
   Case c = {50, 2, 2, 1, 20, 0, 0, 25.0, 1e-6, 0.0, 0.0, 0};
   Result plain, with;
   struct _braid_App_struct app = {-1.0, 10, 0.0, 0, 5.0, {0, 0}, 0.0, NULL};
   braid_Core core = NULL;
   int k, same;
   if (run(&c, -1.0, &plain)) { printf("FAIL: plain drive\n"); fails++; return; }
   c.opts = IGNORED;
   if (run(&c, -1.0, &with)) { printf("FAIL: drive with ignored options\n"); fails++; return; }
   same = plain.J == with.J && plain.grad == with.grad && plain.iters == with.iters
          && plain.nrnorms == with.nrnorms;
   for (k = 0; same && k < plain.nrnorms; k++) same = plain.rnorms[k] == with.rnorms[k];
   if (!same)
   {
      printf("FAIL: storage/skip/relax_only_cg/refine/Delta changed the adjoint's result\n");
      fails++;
   }
   for (k = 0; k < 2; k++)
   {
      braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 5.0, 10, &app, step, init, clone, vfree,
                 sum, norm, access, bufsize, bufpack, bufunpack, &core);
      braid_InitAdjoint(objT, objT_diff, step_diff, reset, &core);
      braid_SetPrintLevel(core, 0);
      if (k == 0) braid_SetFMG(core);
      else braid_SetPeriodic(core, 1);
      if (braid_Drive(core) == 0)
      {
         printf("FAIL: the adjoint ran %s\n", k == 0 ? "F-cycles" : "a periodic problem");
         fails++;
      }
      braid_Destroy(core);
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
      const Case ref = {50, 2, 2, 1, 20, 0, 0, 25.0, 1e-6, 0.0, 0.0, 0};
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
         {50, 2, 2, 1, 100, 0, 0, 25.0, 1e-13, 0.0, 0.0, 0},
         {64, 3, 2, 1, 100, 0, 0, 8.0, 1e-13, 0.0, 0.0, 0},
         {81, 4, 3, 0, 200, 0, 0, 20.0, 1e-13, 0.0, 0.0, 0},
         {40, 2, 4, 2, 100, 0, 0, 10.0, 1e-13, 2.5, 7.5, 0},
         {50, 3, 2, 1, 100, 0, 1, 25.0, 1e-13, 0.0, 0.0, 0},
         {50, 2, 4, 1, 100, 0, 0, 25.0, 1e-13, 0.0, 0.0, 0}, /* F-points after the last C-point */
         {51, 3, 3, 1, 100, 0, 0, 12.0, 1e-13, 0.0, 0.0, 0},
         {50, 1, 2, 1, 100, 0, 0, 25.0, 1e-13, 0.0, 0.0, 0}, /* one level */
         {50, 1, 2, 1, 100, 0, 1, 25.0, 1e-13, 2.0, 20.0, 0},
         {48, 3, 2, 1, 100, 0, 0, 6.0, 1e-13, 0.0, 0.0, TGRID},
         {48, 2, 4, 1, 100, 0, 0, 12.0, 1e-13, 1.0, 9.0, TGRID | SEQ},
         {50, 3, 2, 1, 100, 0, 0, 25.0, 1e-13, 0.0, 0.0, REVERTED},
         {50, 2, 2, 1, 100, 0, 0, 25.0, 1e-13, 0.0, 0.0, ACCESS2},
      };
      for (k = 0; k < (int) (sizeof cases / sizeof cases[0]); k++)
      {
         Case c = cases[k];
         double J, dJ, dJdu0, h = 1e-5, lambda = -0.7, *u = malloc((c.ntime + 1) * sizeof(double));
         Result rp, rm;
         char what[64];
         if (run(&c, lambda, &r)) { printf("FAIL: case %d drive\n", k); fails++; continue; }
         exact(&c, lambda, &J, &dJ, &dJdu0, u);
         free(u);
         snprintf(what, sizeof what, "case %d J", k);
         check(what, r.J, J, 1e-11);
         snprintf(what, sizeof what, "case %d dJ exact", k);
         check(what, r.grad, dJ, 1e-9);
         snprintf(what, sizeof what, "case %d dJ/du0 exact", k);
         check(what, r.u0bar, dJdu0, 1e-9);
         if (c.ml == 1)
         {
            /* one sequential solve and one sweep: exact up to rounding, no iteration */
            snprintf(what, sizeof what, "case %d one level: dJ exact to rounding", k);
            check(what, r.grad, dJ, 1e-12);
            if (r.iters != 0 || r.nrnorms != 1 || r.rnorms[0] != -1.0 || r.rnorm_adj != -1.0
                || r.nrnorms_adj != 1 || r.rnorms_adj[0] != -1.0)
            {
               printf("FAIL: case %d: one level reports %d iterations, %d residuals (%g), "
                      "r_adj %g\n", k, r.iters, r.nrnorms, r.rnorms[0], r.rnorm_adj);
               fails++;
            }
         }
         if (c.opts & ACCESS2)
         {
            /* every point at the top of every iteration, then once the converged solution */
            if (r.naccess[0] != (long) r.iters * (c.ntime + 1) || r.naccess[1] != c.ntime + 1
                || !(r.access_err <= 1e-12))
            {
               printf("FAIL: case %d: access %ld times during %d iterations, %ld after; error "
                      "%.3e\n", k, r.naccess[0], r.iters, r.naccess[1], r.access_err);
               fails++;
            }
         }
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

   warm_restart();
   ignored_and_refused();

   {
      /* 3. bad input: errors, never a crash */
      struct _braid_App_struct app = {-1.0, 10, 0.0, 0, 5.0, {0, 0}, 0.0, NULL};
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
