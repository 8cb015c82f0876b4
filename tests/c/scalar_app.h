/*
 * A scalar test application for the C tests: u' = lambda u + forcing(t), backward Euler
 * u_i = (u_{i-1} + dt forcing(t_i)) / (1 - lambda dt), with the solution that access sees
 * (done = 1) collected by time index, and its error estimates.
 */
#ifndef LAYERBRAID_SCALAR_APP_H
#define LAYERBRAID_SCALAR_APP_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "braid.h"

struct scalar_app {
   double lambda;
   double (*forcing)(double t);  /* NULL: none */
   double u0, guess;             /* init: u0 at t = 0, guess elsewhere */
   double *u, *est;              /* [ntime + 1], filled by access where this rank has points */
};

struct scalar_vec {
   double v;
};

#define SV(u) (((struct scalar_vec *) (void *) (u))->v)
#define SA(app) ((struct scalar_app *) (void *) (app))

static inline braid_Vector scalar_new(double v)
{
   struct scalar_vec *u = (struct scalar_vec *) malloc(sizeof(*u));
   u->v = v;
   return (braid_Vector) (void *) u;
}

static inline int scalar_step(braid_App app, braid_Vector ustop, braid_Vector fstop,
                              braid_Vector u, braid_StepStatus status)
{
   double t0, t1, dt;
   (void) ustop;
   braid_StepStatusGetTstartTstop(status, &t0, &t1);
   dt = t1 - t0;
   if (fstop != NULL) SV(u) += SV(fstop);
   if (SA(app)->forcing != NULL) SV(u) += dt * SA(app)->forcing(t1);
   SV(u) /= 1.0 - SA(app)->lambda * dt;
   return 0;
}

static inline int scalar_init(braid_App app, double t, braid_Vector *u_ptr)
{
   *u_ptr = scalar_new(t == 0.0 ? SA(app)->u0 : SA(app)->guess);
   return 0;
}

static inline int scalar_clone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{
   (void) app;
   *v_ptr = scalar_new(SV(u));
   return 0;
}

static inline int scalar_free(braid_App app, braid_Vector u)
{
   (void) app;
   free(u);
   return 0;
}

static inline int scalar_sum(braid_App app, double a, braid_Vector x, double b, braid_Vector y)
{
   (void) app;
   SV(y) = a * SV(x) + b * SV(y);
   return 0;
}

static inline int scalar_norm(braid_App app, braid_Vector u, double *n)
{
   (void) app;
   *n = fabs(SV(u));
   return 0;
}

static inline int scalar_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{
   int done, i;
   double est;
   braid_AccessStatusGetDone(status, &done);
   braid_AccessStatusGetTIndex(status, &i);
   braid_AccessStatusGetSingleErrorEstAccess(status, &est);
   if (done)
   {
      SA(app)->u[i] = SV(u);
      SA(app)->est[i] = est;
   }
   return 0;
}

static inline int scalar_bufsize(braid_App app, int *size, braid_BufferStatus status)
{
   (void) app;
   (void) status;
   *size = sizeof(double);
   return 0;
}

static inline int scalar_pack(braid_App app, braid_Vector u, void *buf,
                              braid_BufferStatus status)
{
   (void) app;
   (void) status;
   memcpy(buf, &SV(u), sizeof(double));
   return 0;
}

static inline int scalar_unpack(braid_App app, void *buf, braid_Vector *u_ptr,
                                braid_BufferStatus status)
{
   double v;
   (void) app;
   (void) status;
   memcpy(&v, buf, sizeof(double));
   *u_ptr = scalar_new(v);
   return 0;
}

/* A core for app on comm, ntime steps on [0, tstop], printing nothing; app->u and app->est
 * are (re)allocated for ntime + 1 points and zeroed. */
static inline braid_Core scalar_core(struct scalar_app *app, MPI_Comm comm, double tstop,
                                     int ntime)
{
   braid_Core core;
   free(app->u);
   free(app->est);
   app->u = (double *) calloc((size_t) ntime + 1, sizeof(double));
   app->est = (double *) calloc((size_t) ntime + 1, sizeof(double));
   braid_Init(comm, comm, 0.0, tstop, ntime, (braid_App) (void *) app, scalar_step, scalar_init,
              scalar_clone, scalar_free, scalar_sum, scalar_norm, scalar_access, scalar_bufsize,
              scalar_pack, scalar_unpack, &core);
   braid_SetPrintLevel(core, 0);
   return core;
}

#endif
