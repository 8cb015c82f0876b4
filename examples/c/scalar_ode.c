/*
 * scalar_ode: MGRIT on the scalar test equation
 *
 *    u'(t) = lambda u(t),  lambda = -1,  u(0) = 1,  t in [0, ntime / 2],
 *
 * discretised with backward Euler, u_{i+1} = u_i / (1 - lambda dt), dt = 1/2, so the discrete
 * solution is u_i = (1 / 1.5)^i. The time steps are solved all at once with MGRIT, in parallel
 * over the ranks of MPI_COMM_WORLD.
 *
 * Written only against the XBraid C interface (braid.h, braid_test.h): it builds unchanged
 * against layerbraid's engine (extern/braid) and against upstream XBraid.
 *
 *    mpiexec -n 4 build/examples/c/scalar_ode -ml 3
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

/* ---- the application: what MGRIT needs to know about the problem ---- */

struct _braid_App_struct {
   double lambda;
   double tstart, dt;
   int ntime;
   int periodic; /* -periodic: the points are 0..ntime-1 (point ntime is point 0) */
   int refine;   /* -refine N: the step asks for every fine interval to be halved while
                  * fewer than N refinements were done */
   int nout;     /* with -out: the last time index the arrays hold (ntime * 2^refine) */
   int nfinal;   /* the number of time steps of the grid access last saw */
   /* with -out: the solution at the time points this rank accessed, by time index;
    * NULL otherwise */
   double *t_out, *u_out, *count_out;
};

struct _braid_Vector_struct {
   double value;
};

/* Backward Euler from tstart to tstop: (1 - lambda dt) u_new = u_old. */
static braid_Int ode_step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                          braid_StepStatus status)
{
   braid_Real tstart, tstop;

   (void)ustop; /* a direct solve needs no initial guess */
   braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
   if (fstop != NULL) { /* only given when a residual callback is set (-res) */
      u->value += fstop->value;
   }
   u->value = u->value / (1.0 - app->lambda * (tstop - tstart));
   if (app->refine > 0) { /* -refine: halve the fine grid's steps, refine times in all */
      braid_Int level = 0, nrefine = 0;

      braid_StepStatusGetLevel(status, &level);
      braid_StepStatusGetNRefine(status, &nrefine);
      if (level == 0 && nrefine < app->refine) {
         braid_StepStatusSetRFactor(status, 2.0);
      }
   }
   return 0;
}

/* -res: the residual of backward Euler, r = (1 - lambda dt) ustop - u(tstart), where r holds
 * u(tstart) on entry; ode_step solves residual(ustop) = fstop. */
static braid_Int ode_residual(braid_App app, braid_Vector ustop, braid_Vector r,
                              braid_StepStatus status)
{
   braid_Real tstart, tstop;

   braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
   r->value = (1.0 - app->lambda * (tstop - tstart)) * ustop->value - r->value;
   return 0;
}

/* -tg 2: the first ntime/2 steps are dt/2 long, the others share the rest of [tstart, tstop]
 * (3 dt/2 each when ntime is even). */
static braid_Int ode_timegrid(braid_App app, braid_Real *ta, braid_Int *ilower,
                              braid_Int *iupper)
{
   braid_Int i, half = app->ntime / 2;
   double rest = (app->ntime * app->dt - half * app->dt / 2.0) / (app->ntime - half);

   for (i = *ilower; i <= *iupper; i++) {
      ta[i - *ilower] = i <= half ? app->tstart + i * app->dt / 2.0
                                  : app->tstart + half * app->dt / 2.0 + (i - half) * rest;
   }
   return 0;
}

/* The initial condition at tstart; anywhere else an arbitrary guess that is not the solution. */
static braid_Int ode_init(braid_App app, braid_Real t, braid_Vector *u_ptr)
{
   braid_Vector u = malloc(sizeof *u);

   if (u == NULL) {
      return 1;
   }
   if (app->periodic) {
      /* no initial condition: like upstream's example, start from the periodic solution of
       * u' = -u, 0, which the solver must keep exact (tests/c/test_periodic.c starts a forced
       * periodic problem from a guess that is not its solution) */
      u->value = 0.0;
   } else {
      u->value = (t == app->tstart) ? 1.0 : 0.456;
   }
   *u_ptr = u;
   return 0;
}

static braid_Int ode_clone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{
   braid_Vector v = malloc(sizeof *v);

   (void)app;
   if (v == NULL) {
      return 1;
   }
   v->value = u->value;
   *v_ptr = v;
   return 0;
}

static braid_Int ode_free(braid_App app, braid_Vector u)
{
   (void)app;
   free(u);
   return 0;
}

/* y = alpha x + beta y */
static braid_Int ode_sum(braid_App app, braid_Real alpha, braid_Vector x, braid_Real beta,
                         braid_Vector y)
{
   (void)app;
   y->value = alpha * x->value + beta * y->value;
   return 0;
}

static braid_Int ode_norm(braid_App app, braid_Vector u, braid_Real *norm_ptr)
{
   (void)app;
   *norm_ptr = fabs(u->value);
   return 0;
}

/* Records the converged solution (done = 1, fine grid) for -out. */
static braid_Int ode_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{
   braid_Int done = 0, level = 0, index = 0;
   braid_Real t = 0.0;

   if (app->u_out == NULL) {
      return 0;
   }
   braid_AccessStatusGetDone(status, &done);
   braid_AccessStatusGetLevel(status, &level);
   braid_AccessStatusGetTIndex(status, &index);
   braid_AccessStatusGetT(status, &t);
   if (done && level == 0) {
      braid_Int ntpoints = 0;

      braid_AccessStatusGetNTPoints(status, &ntpoints);
      app->nfinal = ntpoints; /* -refine: the grid grew */
   }
   if (done && level == 0 && index >= 0 && index <= app->nout) {
      app->t_out[index] = t;
      app->u_out[index] = u->value;
      app->count_out[index] = 1.0;
   }
   return 0;
}

static braid_Int ode_bufsize(braid_App app, braid_Int *size_ptr, braid_BufferStatus status)
{
   (void)app;
   (void)status;
   *size_ptr = (braid_Int)sizeof(double);
   return 0;
}

static braid_Int ode_bufpack(braid_App app, braid_Vector u, void *buffer,
                             braid_BufferStatus status)
{
   (void)app;
   memcpy(buffer, &u->value, sizeof(double));
   braid_BufferStatusSetSize(status, (braid_Real)sizeof(double));
   return 0;
}

static braid_Int ode_bufunpack(braid_App app, void *buffer, braid_Vector *u_ptr,
                               braid_BufferStatus status)
{
   braid_Vector u = malloc(sizeof *u);

   (void)app;
   (void)status;
   if (u == NULL) {
      return 1;
   }
   memcpy(&u->value, buffer, sizeof(double));
   *u_ptr = u;
   return 0;
}

/* ---- command line ---- */

typedef struct {
   int ntime, max_levels, nrelax, nrelax0, nrelaxc, cfactor, max_iter, skip, fmg;
   int resid_compute, storage, tnorm, print_level, access_level, testall, help;
   int periodic, timegrid, residual, relax_only_cg, refine;
   double tol, rtol;
   const char *out;
} Options;

static void usage(FILE *f)
{
   fprintf(f,
           "usage: scalar_ode [options]\n"
           "  MGRIT on u' = -u, u(0) = 1, backward Euler with dt = 1/2 on [0, ntime/2].\n"
           "  -ntime N          number of time steps (default 10)\n"
           "  -ml N             maximum number of levels (default 2)\n"
           "  -nu N             relaxation sweeps on every level: 0 F, 1 FCF, ... (default 1)\n"
           "  -nu0 N            relaxation sweeps on the finest level (default: -nu)\n"
           "  -nuc N            relaxation sweeps on the coarsest level, level ml-1 "
           "(default: -nu)\n"
           "  -cf N             coarsening factor, >= 2 (default 2)\n"
           "  -mi N             maximum number of iterations (default 100)\n"
           "  -tol X            absolute halting tolerance (default 1e-6)\n"
           "  -rtol X           relative halting tolerance, used instead of -tol\n"
           "  -skip 0|1         skip the work of the first down-cycle (default 1)\n"
           "  -fmg              use F-cycles (full multigrid) instead of V-cycles\n"
           "  -periodic         periodic in time, u(0) = u(ntime/2); starts from u = 0\n"
           "  -tg 1|2           time grid: 1 uniform (default), 2 the first ntime/2 steps\n"
           "                    dt/2, the others share the rest (3dt/2 for an even ntime)\n"
           "  -res              use a residual callback (step then adds fstop)\n"
           "  -relax_only_cg    solve the coarsest grid by relaxation (-nuc sweeps)\n"
           "  -refine N         temporal refinement: halve every fine step, N times (default 0)\n"
           "  -resid_compute 0|1  compute the residual norm each iteration (default 1)\n"
           "  -storage N        -1 store C-points only, 0 all points, l > 0 all points from\n"
           "                    level l on (default -1)\n"
           "  -tnorm 1|2|3      temporal norm: 1 sum, 2 l2, 3 max (default 2)\n"
           "  -print N          print level 0..3 (default 2)\n"
           "  -access N         access level 0..2 (default 1)\n"
           "  -out FILE         write \"index t u\" at every time point to FILE "
           "(needs -access >= 1)\n"
           "  -testall          check the callbacks with braid_TestAll and exit\n"
           "  -help             this message\n");
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
      {"-ml", &o->max_levels, 1, 30},
      {"-nu", &o->nrelax, 0, 1000},
      {"-nu0", &o->nrelax0, 0, 1000},
      {"-nuc", &o->nrelaxc, 0, 1000},
      {"-cf", &o->cfactor, 2, 1000000000L},
      {"-mi", &o->max_iter, 1, 1000000000L},
      {"-skip", &o->skip, 0, 1},
      {"-resid_compute", &o->resid_compute, 0, 1},
      {"-storage", &o->storage, -1, 30},
      {"-tnorm", &o->tnorm, 1, 3},
      {"-print", &o->print_level, 0, 3},
      {"-access", &o->access_level, 0, 2},
      {"-tg", &o->timegrid, 1, 2},
      {"-refine", &o->refine, 0, 20},
   };
   const size_t nints = sizeof ints / sizeof ints[0];
   int i;
   size_t k;

   o->ntime = 10;
   o->max_levels = 2;
   o->nrelax = 1;
   o->nrelax0 = -1;
   o->nrelaxc = -1;
   o->cfactor = 2;
   o->max_iter = 100;
   o->tol = 1e-6;
   o->rtol = -1.0;
   o->skip = 1;
   o->fmg = 0;
   o->periodic = 0;
   o->timegrid = 1;
   o->residual = 0;
   o->relax_only_cg = 0;
   o->refine = 0;
   o->resid_compute = 1;
   o->storage = -1;
   o->tnorm = 2;
   o->print_level = 2;
   o->access_level = 1;
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
      if (strcmp(arg, "-testall") == 0) {
         o->testall = 1;
         continue;
      }
      if (strcmp(arg, "-periodic") == 0) {
         o->periodic = 1;
         continue;
      }
      if (strcmp(arg, "-res") == 0) {
         o->residual = 1;
         continue;
      }
      if (strcmp(arg, "-relax_only_cg") == 0) {
         o->relax_only_cg = 1;
         continue;
      }
      for (k = 0; k < nints; k++) {
         if (strcmp(arg, ints[k].name) == 0) {
            known = 1;
            ok = val != NULL && parse_int(val, ints[k].lo, ints[k].hi, ints[k].value);
            if (!ok && rank == 0) {
               fprintf(stderr, "scalar_ode: %s needs an integer in [%ld, %ld], got %s\n",
                       arg, ints[k].lo, ints[k].hi, val ? val : "nothing");
            }
         }
      }
      if (!known && (strcmp(arg, "-tol") == 0 || strcmp(arg, "-rtol") == 0)) {
         known = 1;
         ok = val != NULL && parse_positive(val, strcmp(arg, "-tol") == 0 ? &o->tol : &o->rtol);
         if (!ok && rank == 0) {
            fprintf(stderr, "scalar_ode: %s needs a number > 0, got %s\n", arg,
                    val ? val : "nothing");
         }
      }
      if (!known && strcmp(arg, "-out") == 0) {
         known = 1;
         ok = val != NULL && val[0] != '\0';
         o->out = val;
         if (!ok && rank == 0) {
            fprintf(stderr, "scalar_ode: -out needs a file name\n");
         }
      }
      if (!known) {
         if (rank == 0) {
            fprintf(stderr, "scalar_ode: unknown option %s\n", arg);
         }
         ok = 0;
      }
      if (!ok) {
         return 1;
      }
      i++; /* the value */
   }
   if ((long)o->ntime << o->refine > 1000000000L) {
      if (rank == 0) {
         fprintf(stderr, "scalar_ode: -ntime %d refined %d times exceeds 1e9 steps\n", o->ntime,
                 o->refine);
      }
      return 1;
   }
   if (o->out != NULL && o->access_level < 1) {
      if (rank == 0) {
         fprintf(stderr, "scalar_ode: -out needs -access 1 or more\n");
      }
      return 1;
   }
   return 0;
}

/* ---- -out: gather the solution on rank 0 and write it ---- */

static int write_solution(const struct _braid_App_struct *app, const char *path, int rank)
{
   int n, nfinal = 0, i, ok = 1;
   double *t = NULL, *u = NULL, *count = NULL;

   /* the final grid's steps (refinement changes them), as access saw them */
   MPI_Allreduce(&app->nfinal, &nfinal, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
   n = nfinal + (app->periodic ? 0 : 1);

   if (rank == 0) {
      t = malloc((size_t)n * sizeof(double));
      u = malloc((size_t)n * sizeof(double));
      count = malloc((size_t)n * sizeof(double));
      ok = t != NULL && u != NULL && count != NULL;
   }
   /* each time point was recorded by exactly one rank; the others hold 0 there */
   MPI_Reduce(app->t_out, t, n, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
   MPI_Reduce(app->u_out, u, n, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
   MPI_Reduce(app->count_out, count, n, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
   if (rank == 0 && ok) {
      FILE *f;

      for (i = 0; i < n && ok; i++) {
         if (count[i] != 1.0) {
            fprintf(stderr, "scalar_ode: time point %d was accessed %g times, not once\n", i,
                    count[i]);
            ok = 0;
         }
      }
      f = ok ? fopen(path, "w") : NULL;
      if (ok && f == NULL) {
         fprintf(stderr, "scalar_ode: cannot write %s: %s\n", path, strerror(errno));
         ok = 0;
      }
      if (f != NULL) {
         for (i = 0; i < n; i++) {
            fprintf(f, "%d %.17e %.17e\n", i, t[i], u[i]);
         }
         ok = fclose(f) == 0;
      }
   }
   free(t);
   free(u);
   free(count);
   MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
   return ok;
}

int main(int argc, char **argv)
{
   struct _braid_App_struct app;
   Options o;
   braid_Core core = NULL;
   int rank, status = 0;
   double tstart = 0.0, tstop, dt;
   braid_Int rc = 0;

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

   tstop = o.ntime / 2.0;
   dt = (tstop - tstart) / o.ntime;
   app.lambda = -1.0;
   app.tstart = tstart;
   app.dt = dt;
   app.ntime = o.ntime;
   app.periodic = o.periodic;
   app.refine = o.refine;
   app.nout = o.ntime << o.refine;
   app.nfinal = o.ntime;
   app.t_out = app.u_out = app.count_out = NULL;

   if (o.testall) {
      braid_Int passed = braid_TestAll(&app, MPI_COMM_WORLD, stdout, tstart, dt, o.cfactor * dt,
                                       ode_init, ode_free, ode_clone, ode_sum, ode_norm,
                                       ode_bufsize, ode_bufpack, ode_bufunpack, NULL, NULL,
                                       NULL, ode_step);
      MPI_Finalize();
      return passed ? 0 : 1;
   }

   if (o.out != NULL) {
      app.t_out = calloc((size_t)app.nout + 1, sizeof(double));
      app.u_out = calloc((size_t)app.nout + 1, sizeof(double));
      app.count_out = calloc((size_t)app.nout + 1, sizeof(double));
      if (app.t_out == NULL || app.u_out == NULL || app.count_out == NULL) {
         fprintf(stderr, "scalar_ode: out of memory for -out\n");
         MPI_Abort(MPI_COMM_WORLD, 1);
      }
   }

   rc = braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, tstart, tstop, o.ntime, &app, ode_step,
                   ode_init, ode_clone, ode_free, ode_sum, ode_norm, ode_access, ode_bufsize,
                   ode_bufpack, ode_bufunpack, &core);
   if (rc == 0) {
      braid_Int set = 0;

      set |= braid_SetMaxLevels(core, o.max_levels);
      set |= braid_SetNRelax(core, -1, o.nrelax);
      if (o.nrelax0 >= 0) {
         set |= braid_SetNRelax(core, 0, o.nrelax0);
      }
      if (o.nrelaxc >= 0) {
         set |= braid_SetNRelax(core, o.max_levels - 1, o.nrelaxc);
      }
      set |= braid_SetCFactor(core, -1, o.cfactor);
      set |= braid_SetMaxIter(core, o.max_iter);
      if (o.rtol > 0.0) {
         set |= braid_SetRelTol(core, o.rtol);
      } else {
         set |= braid_SetAbsTol(core, o.tol);
      }
      set |= braid_SetSkip(core, o.skip);
      if (o.fmg) {
         set |= braid_SetFMG(core);
      }
      set |= braid_SetResidualComputation(core, o.resid_compute);
      set |= braid_SetStorage(core, o.storage);
      set |= braid_SetTemporalNorm(core, o.tnorm);
      set |= braid_SetPrintLevel(core, o.print_level);
      set |= braid_SetAccessLevel(core, o.access_level);
      set |= braid_SetPeriodic(core, o.periodic);
      set |= braid_SetRelaxOnlyCG(core, o.relax_only_cg);
      if (o.timegrid == 2) {
         set |= braid_SetTimeGrid(core, ode_timegrid);
      }
      if (o.residual) {
         set |= braid_SetResidual(core, ode_residual);
      }
      if (o.refine > 0) {
         set |= braid_SetRefine(core, 1);
      }
      if (set != 0) {
         status = 2; /* the engine refused an option value; it said which */
      } else {
         rc = braid_Drive(core);
         if (rc != 0) {
            status = 1;
         } else if (o.out != NULL && !write_solution(&app, o.out, rank)) {
            status = 1;
         }
      }
      braid_Destroy(core);
   } else {
      status = 1;
   }

   free(app.t_out);
   free(app.u_out);
   free(app.count_out);
   MPI_Finalize();
   return status;
}
