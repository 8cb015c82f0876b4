/*
 * Shell vectors (braid_SetShell) and the full residual norm (braid_SetFullRNormRes) on the
 * scalar ODE u' = -u, backward Euler:
 *  - with shells, every step into an F-point receives as ustop the shell of that point (its
 *    metadata: the time it belongs to), sinit is called once per fine F-point of this rank,
 *    and the solution is bit-identical to the run without shells and to full storage;
 *  - the full residual norm is the l2 norm over all fine points of (1 + dt) u_i - u_{i-1},
 *    recomputed here from the converged solution, and halting follows it.
 */
#include "_braid.h"
#include "test_app.h"

typedef struct _braid_Vector_struct_s {
   double t;       /* metadata, kept by the shell: the time of the point */
   double *value;  /* the data; NULL in a shell */
} svec;

static int nsinit, shell_checks, shell_bad, access_n;
static double *sol;

#define V(u) ((svec *) (void *) (u))

static int s_step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                  braid_StepStatus status)
{
   double t0, t1;
   int level;
   (void) app; (void) fstop;
   braid_StepStatusGetTstartTstop(status, &t0, &t1);
   braid_StepStatusGetLevel(status, &level);
   if (ustop != u && V(ustop)->value == NULL)
   {
      shell_checks++;
      if (V(ustop)->t != t1) shell_bad++; /* the shell of the point the step goes to */
   }
   *V(u)->value /= 1.0 + (t1 - t0);
   V(u)->t = t1;
   return 0;
}

static svec *s_new(double t, double value)
{
   svec *u = malloc(sizeof(*u));
   u->t = t;
   u->value = malloc(sizeof(double));
   *u->value = value;
   return u;
}

static int s_init(braid_App app, double t, braid_Vector *u_ptr)
{
   (void) app;
   *u_ptr = (braid_Vector) (void *) s_new(t, t == 0.0 ? 1.0 : 0.5);
   return 0;
}

static int s_sinit(braid_App app, double t, braid_Vector *u_ptr)
{
   svec *u = malloc(sizeof(*u));
   (void) app;
   nsinit++;
   u->t = t;
   u->value = NULL;
   *u_ptr = (braid_Vector) (void *) u;
   return 0;
}

static int s_clone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{
   (void) app;
   *v_ptr = (braid_Vector) (void *) s_new(V(u)->t, *V(u)->value);
   return 0;
}

static int s_sclone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{
   svec *v = malloc(sizeof(*v));
   (void) app;
   v->t = V(u)->t;
   v->value = NULL;
   *v_ptr = (braid_Vector) (void *) v;
   return 0;
}

static int s_sfree(braid_App app, braid_Vector u)
{
   (void) app;
   free(V(u)->value);
   V(u)->value = NULL;
   return 0;
}

static int s_free(braid_App app, braid_Vector u)
{
   (void) app;
   free(V(u)->value);
   free(u);
   return 0;
}

static int s_sum(braid_App app, double a, braid_Vector x, double b, braid_Vector y)
{
   (void) app;
   *V(y)->value = a * *V(x)->value + b * *V(y)->value;
   return 0;
}

static int s_norm(braid_App app, braid_Vector u, double *n)
{
   (void) app;
   *n = fabs(*V(u)->value);
   return 0;
}

static int s_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{
   int done, i;
   (void) app;
   braid_AccessStatusGetDone(status, &done);
   braid_AccessStatusGetTIndex(status, &i);
   if (done)
   {
      sol[i] = *V(u)->value;
      access_n++;
   }
   return 0;
}

static int s_bufsize(braid_App app, int *size, braid_BufferStatus status)
{
   (void) app; (void) status;
   *size = 2 * sizeof(double);
   return 0;
}

static int s_pack(braid_App app, braid_Vector u, void *buf, braid_BufferStatus status)
{
   (void) app; (void) status;
   memcpy(buf, &V(u)->t, sizeof(double));
   memcpy((char *) buf + sizeof(double), V(u)->value, sizeof(double));
   return 0;
}

static int s_unpack(braid_App app, void *buf, braid_Vector *u_ptr, braid_BufferStatus status)
{
   double t, v;
   (void) app; (void) status;
   memcpy(&t, buf, sizeof(double));
   memcpy(&v, (char *) buf + sizeof(double), sizeof(double));
   *u_ptr = (braid_Vector) (void *) s_new(t, v);
   return 0;
}

/* (1 + dt) ustop - r, r = u(tstart) on entry */
static int s_residual(braid_App app, braid_Vector ustop, braid_Vector r, braid_StepStatus status)
{
   double t0, t1;
   (void) app;
   braid_StepStatusGetTstartTstop(status, &t0, &t1);
   *V(r)->value = (1.0 + (t1 - t0)) * *V(ustop)->value - *V(r)->value;
   return 0;
}

enum { N = 48 };

/* mode 0 plain, 1 shells, 2 full storage, 3 full residual norm; solution on rank 0 */
static void solve(int mode, double *u, int *niter, double *full_rnorm)
{
   braid_Core core;
   int i;
   sol = calloc(N + 1, sizeof(double));
   braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 6.0, N, NULL, s_step, s_init, s_clone, s_free,
              s_sum, s_norm, s_access, s_bufsize, s_pack, s_unpack, &core);
   braid_SetPrintLevel(core, 0);
   braid_SetMaxLevels(core, 3);
   braid_SetCFactor(core, -1, 3);
   braid_SetAbsTol(core, 1e-11);
   if (mode == 1) EXPECT(braid_SetShell(core, s_sinit, s_sclone, s_sfree) == 0, "SetShell");
   if (mode == 2) braid_SetStorage(core, 0);
   if (mode == 3) braid_SetFullRNormRes(core, s_residual);
   EXPECT(braid_Drive(core) == 0, "drive, mode %d", mode);
   braid_GetNumIter(core, niter);
   *full_rnorm = core->full_rnorm;
   if (mode == 1)
   {
      braid_Int iu, flag;
      const _braid_Grid *g = core->grids[0];
      for (i = g->ilower; i <= g->iupper; i++)
      {
         _braid_UGetIndex(core, 0, i, &iu, &flag);
         EXPECT(flag == (i % 3 == 0 ? 0 : -1), "point %d: store flag %d (shells at F-points)",
                i, flag);
      }
   }
   braid_Destroy(core);
   MPI_Reduce(sol, u, N + 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
   free(sol);
}

int main(int argc, char *argv[])
{
   double plain[N + 1], shell[N + 1], full[N + 1], fres[N + 1], rn, rn_full;
   int rank, it_plain, it_shell, it_full, it_fres, i, lo, hi, nf = 0;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   solve(0, plain, &it_plain, &rn);
   EXPECT(rn == -1.0, "no full residual without braid_SetFullRNormRes (%g)", rn);
   nsinit = shell_checks = shell_bad = 0;
   solve(1, shell, &it_shell, &rn);
   {
      int nprocs, r;
      MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
      MPI_Comm_rank(MPI_COMM_WORLD, &r);
      _braid_GetBlockDistInterval(N + 1, nprocs, r, &lo, &hi);
      for (i = lo; i <= hi; i++) nf += i % 3 != 0;
   }
   EXPECT(nsinit == nf, "sinit called %d times, expected once per local fine F-point (%d)",
          nsinit, nf);
   EXPECT(shell_checks > 0 && shell_bad == 0, "%d steps into F-points saw a shell, %d of them "
          "the wrong one", shell_checks, shell_bad);
   solve(2, full, &it_full, &rn);
   solve(3, fres, &it_fres, &rn_full);
   if (rank == 0)
   {
      double s = 0.0, dt = 6.0 / N;
      EXPECT(it_shell == it_plain && it_full == it_plain, "iterations %d / %d / %d", it_plain,
             it_shell, it_full);
      for (i = 0; i <= N; i++)
      {
         EXPECT(shell[i] == plain[i] && full[i] == plain[i], "point %d: %.17g (shells), %.17g "
                "(full storage), %.17g (plain)", i, shell[i], full[i], plain[i]);
      }
      for (i = 1; i <= N; i++)
      {
         double r = (1.0 + dt) * fres[i] - fres[i - 1];
         s += r * r;
      }
      EXPECT(fabs(sqrt(s) - rn_full) <= 1e-6 * sqrt(s) + 1e-300, "full residual norm %.10g, "
             "recomputed from the solution %.10g", rn_full, sqrt(s));
      EXPECT(rn_full < 1e-11, "halting on the full residual: %g", rn_full);
   }
   return finish("shell_fullres");
}
