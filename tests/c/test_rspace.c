/*
 * Spatial refinement of the fine grid on request (braid_StepStatusSetRSpace): u' = -u for
 * every entry of a vector of n values, backward Euler. In iteration 2 the fine-level steps ask
 * for spatial refinement; the engine then sends every stored fine vector through srefine
 * (here: n doubles, each value repeated) and goes on. The solve must end with every point on
 * the refined grid, at the discrete solution (1/(1 + dt))^i in every entry, not in the
 * iteration that refined, and the same on any number of ranks. Coarse time levels use
 * coarsen/refine between levels as well (every other value / each value twice).
 */
#include "test_app.h"

typedef struct {
   int n;
   double v[];
} rvec;

struct rspace_app {
   int fine_n;     /* entries of the fine grid's vectors, doubled by the spatial refinement */
   int asked;      /* steps that asked for it */
};

#define RV(u) ((rvec *) (void *) (u))
#define RA(app) ((struct rspace_app *) (void *) (app))
enum { N = 32, N0 = 4 };

static double *sol;
static int *sol_n;

static braid_Vector rnew(int n, double value)
{
   rvec *u = malloc(sizeof(rvec) + (size_t) n * sizeof(double));
   int k;
   u->n = n;
   for (k = 0; k < n; k++) u->v[k] = value;
   return (braid_Vector) (void *) u;
}

static int r_step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                  braid_StepStatus status)
{
   double t0, t1;
   int level, iter, k;
   (void) ustop; (void) fstop;
   braid_StepStatusGetTstartTstop(status, &t0, &t1);
   braid_StepStatusGetLevel(status, &level);
   braid_StepStatusGetIter(status, &iter);
   for (k = 0; k < RV(u)->n; k++) RV(u)->v[k] /= 1.0 + (t1 - t0);
   if (level == 0 && iter == 2 && RA(app)->fine_n == N0)
   {
      RA(app)->asked++;
      braid_StepStatusSetRSpace(status, 1.0);
   }
   return 0;
}

static int r_init(braid_App app, double t, braid_Vector *u_ptr)
{
   *u_ptr = rnew(RA(app)->fine_n, t == 0.0 ? 1.0 : 0.4);
   return 0;
}

static int r_clone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{
   (void) app;
   *v_ptr = rnew(RV(u)->n, 0.0);
   memcpy(RV(*v_ptr)->v, RV(u)->v, (size_t) RV(u)->n * sizeof(double));
   return 0;
}

static int r_free(braid_App app, braid_Vector u) { (void) app; free(u); return 0; }

static int r_sum(braid_App app, double a, braid_Vector x, double b, braid_Vector y)
{
   int k;
   (void) app;
   if (RV(x)->n != RV(y)->n) return 9; /* vectors of two spatial grids must never meet */
   for (k = 0; k < RV(y)->n; k++) RV(y)->v[k] = a * RV(x)->v[k] + b * RV(y)->v[k];
   return 0;
}

static int r_norm(braid_App app, braid_Vector u, double *norm)
{
   double s = 0.0;
   int k;
   (void) app;
   for (k = 0; k < RV(u)->n; k++) s += RV(u)->v[k] * RV(u)->v[k];
   *norm = sqrt(s / RV(u)->n);
   return 0;
}

static int r_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{
   int done, i, k;
   (void) app;
   braid_AccessStatusGetDone(status, &done);
   braid_AccessStatusGetTIndex(status, &i);
   if (!done) return 0;
   sol_n[i] = RV(u)->n;
   sol[i] = RV(u)->v[0];
   for (k = 1; k < RV(u)->n; k++)
   {
      if (RV(u)->v[k] != RV(u)->v[0]) sol[i] = NAN; /* every entry the same */
   }
   return 0;
}

static int r_bufsize(braid_App app, int *size, braid_BufferStatus status)
{
   (void) status;
   *size = (int) ((RA(app)->fine_n + 1) * sizeof(double));
   return 0;
}

static int r_pack(braid_App app, braid_Vector u, void *buf, braid_BufferStatus status)
{
   double n = RV(u)->n;
   (void) app;
   memcpy(buf, &n, sizeof(double));
   memcpy((double *) buf + 1, RV(u)->v, (size_t) RV(u)->n * sizeof(double));
   braid_BufferStatusSetSize(status, (double) ((RV(u)->n + 1) * sizeof(double)));
   return 0;
}

static int r_unpack(braid_App app, void *buf, braid_Vector *u_ptr, braid_BufferStatus status)
{
   double n;
   (void) app; (void) status;
   memcpy(&n, buf, sizeof(double));
   *u_ptr = rnew((int) n, 0.0);
   memcpy(RV(*u_ptr)->v, (double *) buf + 1, (size_t) n * sizeof(double));
   return 0;
}

/* between time levels: every other value (n > 2), and back */
static int r_coarsen(braid_App app, braid_Vector fu, braid_Vector *cu_ptr,
                     braid_CoarsenRefStatus status)
{
   int k, nc = RV(fu)->n > 2 ? RV(fu)->n / 2 : RV(fu)->n;
   (void) app; (void) status;
   *cu_ptr = rnew(nc, 0.0);
   for (k = 0; k < nc; k++) RV(*cu_ptr)->v[k] = RV(fu)->v[k * (RV(fu)->n / nc)];
   return 0;
}

static int r_refine(braid_App app, braid_Vector cu, braid_Vector *fu_ptr,
                    braid_CoarsenRefStatus status)
{
   int k, level, caller, nf;
   braid_CoarsenRefStatusGetLevel(status, &level);
   braid_StatusGetCallingFunction((braid_Status) status, &caller);
   if (caller == braid_ASCaller_FRefine)
   {
      nf = 2 * RV(cu)->n; /* the spatial refinement of the fine grid */
      RA(app)->fine_n = nf;
   }
   else
   {
      nf = RA(app)->fine_n; /* back to level's grid: the fine one, halved per level */
      for (k = 0; k < level && nf > 2; k++) nf /= 2;
   }
   *fu_ptr = rnew(nf, 0.0);
   for (k = 0; k < nf; k++) RV(*fu_ptr)->v[k] = RV(cu)->v[k / (nf / RV(cu)->n)];
   return 0;
}

static void solve(MPI_Comm comm, double *u, int *n, int *niter, int *asked)
{
   struct rspace_app app = {N0, 0};
   braid_Core core;
   sol = calloc(N + 1, sizeof(double));
   sol_n = calloc(N + 1, sizeof(int));
   braid_Init(comm, comm, 0.0, 4.0, N, (braid_App) (void *) &app, r_step, r_init, r_clone,
              r_free, r_sum, r_norm, r_access, r_bufsize, r_pack, r_unpack, &core);
   braid_SetPrintLevel(core, 0);
   braid_SetMaxLevels(core, 3);
   braid_SetAbsTol(core, 1e-13);
   braid_SetSpatialCoarsen(core, r_coarsen);
   braid_SetSpatialRefine(core, r_refine);
   EXPECT(braid_Drive(core) == 0, "drive");
   braid_GetNumIter(core, niter);
   braid_Destroy(core);
   MPI_Reduce(sol, u, N + 1, MPI_DOUBLE, MPI_SUM, 0, comm);
   MPI_Reduce(sol_n, n, N + 1, MPI_INT, MPI_SUM, 0, comm);
   MPI_Allreduce(&app.asked, asked, 1, MPI_INT, MPI_SUM, comm);
   free(sol);
   free(sol_n);
}

int main(int argc, char *argv[])
{
   double u[N + 1], u_one[N + 1], exact = 1.0, dt = 4.0 / N;
   int n[N + 1], n_one[N + 1], rank, i, niter, niter_one, asked, asked_one;
   MPI_Comm self;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Comm_split(MPI_COMM_WORLD, rank, 0, &self);
   solve(MPI_COMM_WORLD, u, n, &niter, &asked);
   EXPECT(asked > 0, "no step asked for spatial refinement");
   if (rank == 0)
   {
      solve(self, u_one, n_one, &niter_one, &asked_one);
      EXPECT(niter > 3 && niter == niter_one, "%d iterations (%d on one rank)", niter, niter_one);
      for (i = 0; i <= N; i++)
      {
         EXPECT(n[i] == 2 * N0, "point %d has %d entries, the refined grid %d", i, n[i], 2 * N0);
         EXPECT(fabs(u[i] - exact) <= 1e-12, "point %d: %.15g, the discrete solution %.15g", i,
                u[i], exact);
         EXPECT(u[i] == u_one[i], "point %d: %.17g here, %.17g on one rank", i, u[i], u_one[i]);
         exact /= 1.0 + dt;
      }
   }
   MPI_Comm_free(&self);
   return finish("rspace");
}
