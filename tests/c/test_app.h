/*
 * A small nonlinear test problem for the engine's C tests, written against the XBraid C
 * interface: u' = -u^3 + cos(t) * rot(u) for a vector of NDIM values, one forward-Euler step per
 * time step. Access records the solution by time index, so a test can gather it and compare
 * it with plain sequential time stepping.
 */
#ifndef LAYERBRAID_TEST_APP_H
#define LAYERBRAID_TEST_APP_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braid.h"
#include "braid_test.h"

#define NDIM 3

typedef struct _braid_Vector_struct {
   double v[NDIM];
} my_Vector;

typedef struct _braid_App_struct {
   int ntime;
   double *solution;   /* (ntime + 1) * NDIM, filled by access where this rank has points */
   int nan_from_iter;  /* step returns NaN on level 0 from this iteration on (-1: never) */
   int fail_from_iter; /* step returns 7 from this iteration on (-1: never) */
   int nsteps;         /* steps taken by this rank */
} my_App;

static inline double init_value(double t, int k)
{
   return t == 0.0 ? 1.0 + 0.25 * k : 0.3 - 0.1 * k;
}

static inline void euler_step(double tstart, double tstop, double *u)
{
   double dt = tstop - tstart, old[NDIM];
   int k;
   memcpy(old, u, sizeof(old));
   for (k = 0; k < NDIM; k++)
   {
      u[k] = old[k] + dt * (-old[k] * old[k] * old[k] + cos(tstart) * old[(k + 1) % NDIM]);
   }
}

static inline int app_step(braid_App app, braid_Vector ustop, braid_Vector fstop,
                           braid_Vector u, braid_StepStatus status)
{
   double tstart, tstop;
   int iter, level, k;
   (void) ustop;
   braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
   braid_StepStatusGetIter(status, &iter);
   braid_StepStatusGetLevel(status, &level);
   app->nsteps++;
   if (app->fail_from_iter >= 0 && iter >= app->fail_from_iter) return 7;
   euler_step(tstart, tstop, u->v);
   if (app->nan_from_iter >= 0 && iter >= app->nan_from_iter && level == 0) u->v[0] = NAN;
   if (fstop != NULL)
   {
      for (k = 0; k < NDIM; k++) u->v[k] += fstop->v[k];
   }
   return 0;
}

static inline int app_init(braid_App app, double t, braid_Vector *u_ptr)
{
   my_Vector *u = (my_Vector *) malloc(sizeof(my_Vector));
   int k;
   (void) app;
   for (k = 0; k < NDIM; k++) u->v[k] = init_value(t, k);
   *u_ptr = u;
   return 0;
}

static inline int app_clone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{
   my_Vector *v = (my_Vector *) malloc(sizeof(my_Vector));
   (void) app;
   *v = *u;
   *v_ptr = v;
   return 0;
}

static inline int app_free(braid_App app, braid_Vector u)
{
   (void) app;
   free(u);
   return 0;
}

static inline int app_sum(braid_App app, double alpha, braid_Vector x, double beta,
                          braid_Vector y)
{
   int k;
   (void) app;
   for (k = 0; k < NDIM; k++) y->v[k] = alpha * x->v[k] + beta * y->v[k];
   return 0;
}

static inline int app_norm(braid_App app, braid_Vector u, double *norm_ptr)
{
   double s = 0.0;
   int k;
   (void) app;
   for (k = 0; k < NDIM; k++) s += u->v[k] * u->v[k];
   *norm_ptr = sqrt(s);
   return 0;
}

static inline int app_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{
   int index, done;
   braid_AccessStatusGetTIndex(status, &index);
   braid_AccessStatusGetDone(status, &done);
   if (done && app->solution != NULL)
   {
      memcpy(&app->solution[index * NDIM], u->v, sizeof(u->v));
   }
   return 0;
}

static inline int app_bufsize(braid_App app, int *size_ptr, braid_BufferStatus status)
{
   (void) app;
   (void) status;
   *size_ptr = (int) sizeof(my_Vector);
   return 0;
}

static inline int app_bufpack(braid_App app, braid_Vector u, void *buffer,
                              braid_BufferStatus status)
{
   (void) app;
   memcpy(buffer, u->v, sizeof(u->v));
   braid_BufferStatusSetSize(status, sizeof(u->v));
   return 0;
}

static inline int app_bufunpack(braid_App app, void *buffer, braid_Vector *u_ptr,
                                braid_BufferStatus status)
{
   my_Vector *u = (my_Vector *) malloc(sizeof(my_Vector));
   (void) app;
   (void) status;
   memcpy(u->v, buffer, sizeof(u->v));
   *u_ptr = u;
   return 0;
}

/* A fresh app for ntime steps; free with app_destroy. */
static inline my_App *app_create(int ntime)
{
   my_App *app = (my_App *) calloc(1, sizeof(my_App));
   app->ntime = ntime;
   app->solution = (double *) calloc((size_t) (ntime + 1) * NDIM, sizeof(double));
   app->nan_from_iter = -1;
   app->fail_from_iter = -1;
   return app;
}

static inline void app_destroy(my_App *app)
{
   free(app->solution);
   free(app);
}

static inline int core_create(my_App *app, double tstop, braid_Core *core)
{
   return braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, tstop, app->ntime, app, app_step,
                     app_init, app_clone, app_free, app_sum, app_norm, app_access, app_bufsize,
                     app_bufpack, app_bufunpack, core);
}

/* Sum the per-rank solutions onto rank 0 (each time index is written by one rank only). */
static inline void gather_solution(my_App *app)
{
   int rank, n = (app->ntime + 1) * NDIM;
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Reduce(rank == 0 ? MPI_IN_PLACE : app->solution, app->solution, n, MPI_DOUBLE, MPI_SUM, 0,
              MPI_COMM_WORLD);
}

/* Sequential forward-Euler reference with the engine's time points. */
static inline double *sequential_solution(int ntime, double tstop)
{
   double *u = (double *) malloc(sizeof(double) * (size_t) (ntime + 1) * NDIM);
   int i, k;
   for (k = 0; k < NDIM; k++) u[k] = init_value(0.0, k);
   for (i = 1; i <= ntime; i++)
   {
      double t0 = (((double) (i - 1)) / ntime) * tstop, t1 = (((double) i) / ntime) * tstop;
      memcpy(&u[i * NDIM], &u[(i - 1) * NDIM], sizeof(double) * NDIM);
      euler_step(t0, t1, &u[i * NDIM]);
   }
   return u;
}

static int failures = 0;

#define EXPECT(cond, ...)                                                \
   do {                                                                  \
      if (!(cond))                                                       \
      {                                                                  \
         fprintf(stderr, "FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond); \
         fprintf(stderr, __VA_ARGS__);                                   \
         fputc('\n', stderr);                                            \
         failures++;                                                     \
      }                                                                  \
   } while (0)

/* Every rank's verdict: exit code 1 if any rank failed. */
static inline int finish(const char *name)
{
   int total = 0, rank;
   MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   if (rank == 0) printf("%s: %s (%d failed checks)\n", name, total ? "FAILED" : "passed", total);
   MPI_Finalize();
   return total ? 1 : 0;
}

#endif
