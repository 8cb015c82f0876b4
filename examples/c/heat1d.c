/*
 * heat1d: MGRIT on the one-dimensional heat equation
 *
 *    u_t = u_xx,  x in [0, pi],  t in [0, tstop] (tstop = 1 unless -tstop),
 *    u(0, x) = sin(x),  u(t, 0) = u(t, pi) = 0,  exact solution u = exp(-t) sin(x).
 *
 * Space: second-order central differences on nspace points x_j = j h, h = pi / (nspace - 1),
 * boundaries included (and held at 0). Time: backward Euler, ntime steps of dt = tstop / ntime;
 * each step solves the tridiagonal system (I - dt D_xx) u_new = u_old with the Thomas
 * algorithm. All time steps are solved at once with MGRIT, in parallel over the ranks of
 * MPI_COMM_WORLD.
 *
 * The spatial norm MGRIT uses to measure residuals is the discrete L2 norm
 * sqrt(h sum_j u_j^2). After the solve, rank 0 prints the discretisation error, the max norm
 * over x of the difference to the exact solution, at the final time and the largest over all
 * time points.
 *
 * Written only against the XBraid C interface (braid.h, braid_test.h): it builds unchanged
 * against layerbraid's engine (extern/braid) and against upstream XBraid.
 *
 *    mpiexec -n 4 build/examples/c/heat1d -ntime 64 -nspace 33
 *
 * See README.md beside this file for every flag.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braid.h"
#include "braid_test.h"

static const double kPi = 3.14159265358979323846;

/* ---- the application ---- */

struct _braid_App_struct {
   int nspace;        /* points of the finest spatial grid */
   double h;
   int scoarsen;      /* -sc: halve the spatial grid on every coarser time level */
   double tstart;
   int ntime;
   double *cprime;    /* Thomas algorithm scratch, nspace entries */
   /* filled by access with the converged solution (done = 1) */
   double err_final;  /* max-norm error at the last time point; 0 on ranks that lack it */
   double err_max;    /* largest max-norm error over the time points this rank accessed */
   int accessed;      /* number of time points accessed */
   double *u_final;   /* the solution at the last time point; zeros on ranks that lack it */
};

struct _braid_Vector_struct {
   int n;
   double u[]; /* u[0] and u[n-1] are the boundary values, always 0 */
};

static braid_Vector heat_alloc(int n)
{
   braid_Vector v = malloc(sizeof *v + (size_t)n * sizeof(double));

   if (v != NULL) {
      v->n = n;
   }
   return v;
}

static double heat_x(const struct _braid_App_struct *app, int j)
{
   return j * app->h;
}

/* exp(-t) sin(x_j), exactly 0 on the boundary. */
static double heat_exact(const struct _braid_App_struct *app, double t, int j)
{
   if (j == 0 || j == app->nspace - 1) {
      return 0.0;
   }
   return exp(-t) * sin(heat_x(app, j));
}

/* Backward Euler: solve (I - dt D_xx) u_new = u_old on the interior points of u's grid
 * (with -sc, coarse time levels have coarser spatial grids: h follows u->n). */
static braid_Int heat_step(braid_App app, braid_Vector ustop, braid_Vector fstop,
                           braid_Vector u, braid_StepStatus status)
{
   braid_Real tstart, tstop;
   double r, diag, off, denom;
   double *d = u->u, *cp = app->cprime;
   int n = u->n, m = n - 2, i, j;
   double h = kPi / (n - 1);

   (void)ustop; /* a direct solve needs no initial guess */
   braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
   if (fstop != NULL) { /* only given when a residual callback is set; none is here */
      for (j = 0; j < n; j++) {
         d[j] += fstop->u[j];
      }
   }
   r = (tstop - tstart) / (h * h);
   diag = 1.0 + 2.0 * r;
   off = -r;

   /* Thomas algorithm on unknowns j = 1..m; d[] is overwritten with the modified right-hand
    * side, then with the solution. */
   cp[1] = off / diag;
   d[1] = d[1] / diag;
   for (i = 2; i <= m; i++) {
      denom = diag - off * cp[i - 1];
      cp[i] = off / denom;
      d[i] = (d[i] - off * d[i - 1]) / denom;
   }
   for (i = m - 1; i >= 1; i--) {
      d[i] -= cp[i] * d[i + 1];
   }
   d[0] = 0.0;
   d[n - 1] = 0.0;
   return 0;
}

/* The initial condition at tstart; elsewhere a fixed guess that is not the solution:
 * x (pi - x) / pi^2, a bump of height 1/4. */
static braid_Int heat_init(braid_App app, braid_Real t, braid_Vector *u_ptr)
{
   braid_Vector u = heat_alloc(app->nspace);
   int j, n = app->nspace;

   if (u == NULL) {
      return 1;
   }
   for (j = 0; j < n; j++) {
      double x = heat_x(app, j);
      u->u[j] = (t == app->tstart) ? sin(x) : x * (kPi - x) / (kPi * kPi);
   }
   u->u[0] = 0.0;
   u->u[n - 1] = 0.0;
   *u_ptr = u;
   return 0;
}

static braid_Int heat_clone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{
   braid_Vector v = heat_alloc(u->n);

   (void)app;
   if (v == NULL) {
      return 1;
   }
   memcpy(v->u, u->u, (size_t)u->n * sizeof(double));
   *v_ptr = v;
   return 0;
}

static braid_Int heat_free(braid_App app, braid_Vector u)
{
   (void)app;
   free(u);
   return 0;
}

/* y = alpha x + beta y */
static braid_Int heat_sum(braid_App app, braid_Real alpha, braid_Vector x, braid_Real beta,
                          braid_Vector y)
{
   int j;

   (void)app;
   for (j = 0; j < y->n; j++) {
      y->u[j] = alpha * x->u[j] + beta * y->u[j];
   }
   return 0;
}

/* Discrete L2 norm sqrt(h sum_j u_j^2), h of u's own grid. */
static braid_Int heat_norm(braid_App app, braid_Vector u, braid_Real *norm_ptr)
{
   double s = 0.0;
   int j;

   (void)app;
   for (j = 0; j < u->n; j++) {
      s += u->u[j] * u->u[j];
   }
   *norm_ptr = sqrt(kPi / (u->n - 1) * s);
   return 0;
}

/* -sc: the spatial grid of time level `level`: the finest halved once per level while the
 * interval count stays even and at least 4. */
static int heat_level_size(const struct _braid_App_struct *app, int level)
{
   int n = app->nspace, l;

   for (l = 0; l < level && app->scoarsen && (n - 1) % 2 == 0 && (n - 1) / 2 >= 4; l++) {
      n = (n - 1) / 2 + 1;
   }
   return n;
}

/* -sc: full weighting (1/4, 1/2, 1/4) onto the next coarser time level's grid. */
static braid_Int heat_coarsen(braid_App app, braid_Vector fu, braid_Vector *cu_ptr,
                              braid_CoarsenRefStatus status)
{
   braid_Int level = 0;
   braid_Vector cu;
   int j, nc;

   braid_CoarsenRefStatusGetLevel(status, &level);
   nc = heat_level_size(app, level + 1);
   cu = heat_alloc(nc);
   if (cu == NULL) {
      return 1;
   }
   if (nc == fu->n) {
      memcpy(cu->u, fu->u, (size_t)nc * sizeof(double));
   } else {
      for (j = 1; j < nc - 1; j++) {
         cu->u[j] = 0.25 * fu->u[2 * j - 1] + 0.5 * fu->u[2 * j] + 0.25 * fu->u[2 * j + 1];
      }
      cu->u[0] = cu->u[nc - 1] = 0.0;
   }
   *cu_ptr = cu;
   return 0;
}

/* -sc: linear interpolation back onto time level `level`'s grid. */
static braid_Int heat_refine(braid_App app, braid_Vector cu, braid_Vector *fu_ptr,
                             braid_CoarsenRefStatus status)
{
   braid_Int level = 0;
   braid_Vector fu;
   int j, nf;

   braid_CoarsenRefStatusGetLevel(status, &level);
   nf = heat_level_size(app, level);
   fu = heat_alloc(nf);
   if (fu == NULL) {
      return 1;
   }
   if (nf == cu->n) {
      memcpy(fu->u, cu->u, (size_t)nf * sizeof(double));
   } else {
      for (j = 0; j < cu->n; j++) {
         fu->u[2 * j] = cu->u[j];
      }
      for (j = 0; j + 1 < cu->n; j++) {
         fu->u[2 * j + 1] = 0.5 * (cu->u[j] + cu->u[j + 1]);
      }
   }
   *fu_ptr = fu;
   return 0;
}

/* Measures the error of the converged solution (done = 1, fine grid). */
static braid_Int heat_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{
   braid_Int done = 0, level = 0, index = 0;
   braid_Real t = 0.0;
   double err = 0.0;
   int j;

   braid_AccessStatusGetDone(status, &done);
   braid_AccessStatusGetLevel(status, &level);
   braid_AccessStatusGetTIndex(status, &index);
   braid_AccessStatusGetT(status, &t);
   if (!done || level != 0) {
      return 0;
   }
   for (j = 0; j < app->nspace; j++) {
      double e = fabs(u->u[j] - heat_exact(app, t, j));
      if (e > err) {
         err = e;
      }
   }
   if (err > app->err_max) {
      app->err_max = err;
   }
   app->accessed++;
   if (index == app->ntime) {
      app->err_final = err;
      memcpy(app->u_final, u->u, (size_t)app->nspace * sizeof(double));
   }
   return 0;
}

/* A message: the point count (as a double), then the values (any level's grid). */
static braid_Int heat_bufsize(braid_App app, braid_Int *size_ptr, braid_BufferStatus status)
{
   (void)status;
   *size_ptr = (braid_Int)((size_t)(app->nspace + 1) * sizeof(double));
   return 0;
}

static braid_Int heat_bufpack(braid_App app, braid_Vector u, void *buffer,
                              braid_BufferStatus status)
{
   size_t bytes = (size_t)u->n * sizeof(double);
   double n = u->n;

   (void)app;
   memcpy(buffer, &n, sizeof(double));
   memcpy((char *)buffer + sizeof(double), u->u, bytes);
   braid_BufferStatusSetSize(status, (braid_Real)(bytes + sizeof(double)));
   return 0;
}

static braid_Int heat_bufunpack(braid_App app, void *buffer, braid_Vector *u_ptr,
                                braid_BufferStatus status)
{
   braid_Vector u;
   double n;

   (void)status;
   memcpy(&n, buffer, sizeof(double));
   if (!(n >= 3.0 && n <= app->nspace)) {
      return 1; /* not a message of this app */
   }
   u = heat_alloc((int)n);
   if (u == NULL) {
      return 1;
   }
   memcpy(u->u, (char *)buffer + sizeof(double), (size_t)u->n * sizeof(double));
   *u_ptr = u;
   return 0;
}

/* ---- command line ---- */

typedef struct {
   int ntime, nspace, max_levels, nrelax, cfactor, max_iter, skip, fmg, print_level;
   int testall, help, scoarsen, richardson;
   double tstop, tol;
   const char *out;
} Options;

static void usage(FILE *f)
{
   fprintf(f,
           "usage: heat1d [options]\n"
           "  MGRIT on u_t = u_xx on [0, pi] x [0, tstop], u(0, x) = sin(x), u = 0 at x = 0, pi;\n"
           "  backward Euler in time, central differences in space.\n"
           "  -ntime N     number of time steps (default 64)\n"
           "  -nspace N    number of grid points in x, boundaries included, >= 3 (default 33)\n"
           "  -tstop X     final time (default 1.0)\n"
           "  -ml N        maximum number of levels (default 3)\n"
           "  -nu N        relaxation sweeps on every level: 0 F, 1 FCF, ... (default 1)\n"
           "  -cf N        coarsening factor, >= 2 (default 2)\n"
           "  -mi N        maximum number of iterations (default 100)\n"
           "  -tol X       absolute halting tolerance (default 1e-8)\n"
           "  -skip 0|1    skip the work of the first down-cycle (default 1)\n"
           "  -fmg         use F-cycles (full multigrid) instead of V-cycles\n"
           "  -richardson  Richardson extrapolation at the fine C-points (backward Euler has\n"
           "               local order 2): second order in time there\n"
           "  -sc          spatial coarsening: each coarser time level halves the spatial grid\n"
           "               (full weighting down, linear interpolation up)\n"
           "  -print N     print level 0..3 (default 2)\n"
           "  -out FILE    write \"j x_j u_j exact_j\" at the final time to FILE\n"
           "  -testall     check the callbacks with braid_TestAll and exit\n"
           "  -help        this message\n");
}

static int parse_int(const char *text, long lo, long hi, int *value)
{
   char *end;
   long v;

   errno = 0;
   v = strtol(text, &end, 10);
   if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
      return 0;
   }
   *value = (int)v;
   return 1;
}

static int parse_positive(const char *text, double *value)
{
   char *end;
   double v;

   errno = 0;
   v = strtod(text, &end);
   if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || !(v > 0.0)) {
      return 0;
   }
   *value = v;
   return 1;
}

/* Returns 0 to run, 1 after a bad option (message printed on rank 0). */
static int parse_options(int argc, char **argv, int rank, Options *o)
{
   struct {
      const char *name;
      int *value;
      long lo, hi;
   } ints[] = {
      {"-ntime", &o->ntime, 1, 1000000000L},
      {"-nspace", &o->nspace, 3, 100000000L},
      {"-ml", &o->max_levels, 1, 30},
      {"-nu", &o->nrelax, 0, 1000},
      {"-cf", &o->cfactor, 2, 1000000000L},
      {"-mi", &o->max_iter, 1, 1000000000L},
      {"-skip", &o->skip, 0, 1},
      {"-print", &o->print_level, 0, 3},
   };
   struct {
      const char *name;
      double *value;
   } reals[] = {
      {"-tstop", &o->tstop},
      {"-tol", &o->tol},
   };
   const size_t nints = sizeof ints / sizeof ints[0];
   const size_t nreals = sizeof reals / sizeof reals[0];
   int i;
   size_t k;

   o->ntime = 64;
   o->nspace = 33;
   o->tstop = 1.0;
   o->max_levels = 3;
   o->nrelax = 1;
   o->cfactor = 2;
   o->max_iter = 100;
   o->tol = 1e-8;
   o->skip = 1;
   o->fmg = 0;
   o->scoarsen = 0;
   o->richardson = 0;
   o->print_level = 2;
   o->testall = 0;
   o->help = 0;
   o->out = NULL;

   for (i = 1; i < argc; i++) {
      const char *arg = argv[i];
      const char *val = (i + 1 < argc) ? argv[i + 1] : NULL;
      int known = 0, ok = 1;

      if (strcmp(arg, "-help") == 0 || strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
         o->help = 1;
         continue;
      }
      if (strcmp(arg, "-fmg") == 0) {
         o->fmg = 1;
         continue;
      }
      if (strcmp(arg, "-richardson") == 0) {
         o->richardson = 1;
         continue;
      }
      if (strcmp(arg, "-sc") == 0) {
         o->scoarsen = 1;
         continue;
      }
      if (strcmp(arg, "-testall") == 0) {
         o->testall = 1;
         continue;
      }
      for (k = 0; k < nints; k++) {
         if (strcmp(arg, ints[k].name) == 0) {
            known = 1;
            ok = val != NULL && parse_int(val, ints[k].lo, ints[k].hi, ints[k].value);
            if (!ok && rank == 0) {
               fprintf(stderr, "heat1d: %s needs an integer in [%ld, %ld], got %s\n", arg,
                       ints[k].lo, ints[k].hi, val ? val : "nothing");
            }
         }
      }
      for (k = 0; k < nreals; k++) {
         if (strcmp(arg, reals[k].name) == 0) {
            known = 1;
            ok = val != NULL && parse_positive(val, reals[k].value);
            if (!ok && rank == 0) {
               fprintf(stderr, "heat1d: %s needs a number > 0, got %s\n", arg,
                       val ? val : "nothing");
            }
         }
      }
      if (!known && strcmp(arg, "-out") == 0) {
         known = 1;
         ok = val != NULL && val[0] != '\0';
         o->out = val;
         if (!ok && rank == 0) {
            fprintf(stderr, "heat1d: -out needs a file name\n");
         }
      }
      if (!known) {
         if (rank == 0) {
            fprintf(stderr, "heat1d: unknown option %s\n", arg);
         }
         ok = 0;
      }
      if (!ok) {
         return 1;
      }
      i++; /* the value */
   }
   return 0;
}

/* ---- after the solve: errors and -out, gathered on rank 0 ---- */

static int report(struct _braid_App_struct *app, const Options *o, int rank)
{
   double local[2], global[2] = {0.0, 0.0};
   int accessed = 0, ok = 1, j, n = app->nspace;
   double *u = NULL;

   local[0] = app->err_final;
   local[1] = app->err_max;
   MPI_Reduce(local, global, 2, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
   MPI_Reduce(&app->accessed, &accessed, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
   if (rank == 0) {
      if (accessed == o->ntime + 1) {
         printf("  discretisation error at t = %g: %e (max norm vs exact solution)\n",
                o->tstop, global[0]);
         printf("  max discretisation error over all %d time points: %e\n", accessed,
                global[1]);
      } else {
         printf("  discretisation error: not available (access saw %d of %d time points)\n",
                accessed, o->ntime + 1);
      }
      fflush(stdout);
   }

   if (o->out != NULL) {
      if (rank == 0) {
         u = malloc((size_t)n * sizeof(double));
         ok = u != NULL;
      }
      /* only the rank that owns the last time point holds nonzeros */
      MPI_Reduce(app->u_final, u, n, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
      if (rank == 0 && ok) {
         FILE *f = fopen(o->out, "w");

         if (f == NULL) {
            fprintf(stderr, "heat1d: cannot write %s: %s\n", o->out, strerror(errno));
            ok = 0;
         } else {
            for (j = 0; j < n; j++) {
               fprintf(f, "%d %.17e %.17e %.17e\n", j, heat_x(app, j), u[j],
                       heat_exact(app, o->tstop, j));
            }
            ok = fclose(f) == 0;
         }
      }
      free(u);
      MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
   }
   return ok;
}

int main(int argc, char **argv)
{
   struct _braid_App_struct app;
   Options o;
   braid_Core core = NULL;
   int rank, status = 0;
   double tstart = 0.0, dt;
   braid_Int rc;

   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);

   if (parse_options(argc, argv, rank, &o) != 0) {
      if (rank == 0) {
         usage(stderr);
      }
      MPI_Finalize();
      return 2;
   }
   if (o.help) {
      if (rank == 0) {
         usage(stdout);
      }
      MPI_Finalize();
      return 0;
   }

   dt = (o.tstop - tstart) / o.ntime;
   app.nspace = o.nspace;
   app.scoarsen = o.scoarsen;
   app.h = kPi / (o.nspace - 1);
   app.tstart = tstart;
   app.ntime = o.ntime;
   app.err_final = 0.0;
   app.err_max = 0.0;
   app.accessed = 0;
   app.cprime = calloc((size_t)o.nspace, sizeof(double));
   app.u_final = calloc((size_t)o.nspace, sizeof(double));
   if (app.cprime == NULL || app.u_final == NULL) {
      fprintf(stderr, "heat1d: out of memory for nspace = %d\n", o.nspace);
      MPI_Abort(MPI_COMM_WORLD, 1);
   }

   if (o.testall) {
      braid_Int passed = braid_TestAll(&app, MPI_COMM_WORLD, stdout, tstart, dt,
                                       o.cfactor * dt, heat_init, heat_free, heat_clone,
                                       heat_sum, heat_norm, heat_bufsize, heat_bufpack,
                                       heat_bufunpack, o.scoarsen ? heat_coarsen : NULL,
                                       o.scoarsen ? heat_refine : NULL, NULL, heat_step);
      free(app.cprime);
      free(app.u_final);
      MPI_Finalize();
      return passed ? 0 : 1;
   }

   rc = braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, tstart, o.tstop, o.ntime, &app, heat_step,
                   heat_init, heat_clone, heat_free, heat_sum, heat_norm, heat_access,
                   heat_bufsize, heat_bufpack, heat_bufunpack, &core);
   if (rc == 0) {
      braid_Int set = 0;

      set |= braid_SetMaxLevels(core, o.max_levels);
      set |= braid_SetNRelax(core, -1, o.nrelax);
      set |= braid_SetCFactor(core, -1, o.cfactor);
      set |= braid_SetMaxIter(core, o.max_iter);
      set |= braid_SetAbsTol(core, o.tol);
      set |= braid_SetSkip(core, o.skip);
      if (o.fmg) {
         set |= braid_SetFMG(core);
      }
      if (o.richardson) {
         set |= braid_SetRichardsonEstimation(core, 1, 1, 2);
      }
      if (o.scoarsen) {
         set |= braid_SetSpatialCoarsen(core, heat_coarsen);
         set |= braid_SetSpatialRefine(core, heat_refine);
      }
      set |= braid_SetPrintLevel(core, o.print_level);
      if (set != 0) {
         status = 2; /* the engine refused an option value; it said which */
      } else {
         rc = braid_Drive(core);
         if (rc != 0) {
            status = 1;
         } else if (!report(&app, &o, rank)) {
            status = 1;
         }
      }
      braid_Destroy(core);
   } else {
      status = 1;
   }

   free(app.cprime);
   free(app.u_final);
   MPI_Finalize();
   return status;
}
