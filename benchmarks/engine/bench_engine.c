/*
 * bench_engine: the MGRIT engine's own cost per iteration.
 *
 * An application written against the XBraid C interface whose callbacks are counted and
 * timed, so that the time of a solve splits into "inside the callbacks" (the application's
 * work) and "everything else" (the engine: bookkeeping, status filling, loops, MPI).
 *
 * Two step kinds:
 *   -step trivial   u <- u / (1 + dt): one double, a few nanoseconds; what is left is the
 *                   engine's own overhead.
 *   -step dense     a ResNet layer on a batch of B samples of width W:
 *                   u_b <- u_b + dt * tanh(K u_b + c), K a fixed W x W matrix; a few
 *                   microseconds, a realistic callback.
 *
 * What one run does, on every rank of MPI_COMM_WORLD:
 *   1. a sequential sweep (max_levels 1, same callbacks): the unit "one sweep" (the fastest
 *      of -reps runs);
 *   2. the MGRIT solve for exactly -iters cycles (max_iter = iters, absolute tolerance 0,
 *      skip 0 so every cycle is a full V-cycle, access level 0).
 * Each is run twice: once with plain callbacks (the wall times reported), once with
 * instrumented callbacks that count and time every call (the breakdown; the clock's own
 * cost per timed call, calibrated at start-up, is taken out). A sync callback (called by the
 * engine once per iteration) snapshots the clock and the counters, so the per-iteration
 * numbers come from the steady-state iterations 1 .. iters-1, without the first cycle (which
 * allocates the coarse-grid vectors) and without the initial guess. Of those, the fastest
 * iteration is reported (the one least disturbed by other processes on a shared machine);
 * the median and mean are reported beside it.
 * The engine's own overhead per iteration = plain wall time - time inside callbacks.
 * MPI time is measured by PMPI interposition of the point-to-point, wait/test/probe and
 * collective calls the engine makes; it is part of the engine's overhead.
 *
 * Rank 0 prints one JSON line on stdout (counts summed over ranks, times the max over ranks).
 *
 *   mpiexec -n 2 bench_engine -ntime 65536 -ml 2 -cf 4 -iters 5 -step dense -print 1
 *
 * benchmarks/engine/run.py builds it and runs the whole set of cases.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "braid.h"

/* ------------------------------------------------------------------------------------------
 * clocks and counters
 * ---------------------------------------------------------------------------------------- */

/* The clock: the time-stamp counter where there is one (about 10 ns a reading, against
 * 30-100 ns for clock_gettime on virtual machines), scaled to seconds by a calibration
 * against CLOCK_MONOTONIC at start-up; clock_gettime elsewhere. */
static double wall_clock(void)
{
   struct timespec ts;
   clock_gettime(CLOCK_MONOTONIC, &ts);
   return (double) ts.tv_sec + 1.0e-9 * (double) ts.tv_nsec;
}

/* CPU time of this thread: unlike wall time, not advanced while another process has the
 * core (the machine may be shared). Read only once per iteration (it is a system call). */
static double cpu_clock(void)
{
   struct timespec ts;
   clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
   return (double) ts.tv_sec + 1.0e-9 * (double) ts.tv_nsec;
}

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static double tick_seconds = 0.0; /* seconds per tick */
static inline double now(void) { return (double) __rdtsc() * tick_seconds; }
static void clock_calibrate(void)
{
   double w0 = wall_clock(), w1;
   unsigned long long c0 = __rdtsc(), c1;
   do { w1 = wall_clock(); } while (w1 - w0 < 0.02);
   c1 = __rdtsc();
   tick_seconds = (w1 - w0) / (double) (c1 - c0);
}
static const char *clock_name = "rdtsc";
#else
static inline double now(void) { return wall_clock(); }
static void clock_calibrate(void) {}
static const char *clock_name = "clock_gettime";
#endif

enum { CB_STEP, CB_INIT, CB_CLONE, CB_FREE, CB_SUM, CB_NORM, CB_ACCESS, CB_BUFSIZE, CB_PACK,
       CB_UNPACK, NCB };
static const char *cb_name[NCB] = {"step", "init", "clone", "free", "sum", "norm", "access",
                                   "bufsize", "pack", "unpack"};

/* What a step call is for, from the caller the status reports and the order of calls:
 *   relax     FCRelax sweeps (F- and C-points)
 *   restrict  the sweep of FRestrict: F-relaxation plus the step to each C-point that gives
 *             the fine residual / FAS value
 *   fas       Phi_c(v_{j-1}) on the coarse level, for the FAS right-hand side
 *   interp    FInterp on an intermediate level (F-relaxation before the correction)
 *   coarse    FInterp on the coarsest level: the sequential coarse solve
 *   seq       sequential stepping (one-level solve, initial guess)
 *   other     anything else (access sweeps, ...) */
enum { PH_RELAX, PH_RESTRICT, PH_FAS, PH_INTERP, PH_COARSE, PH_SEQ, PH_OTHER, NPH };
static const char *ph_name[NPH] = {"relax", "restrict", "fas", "interp", "coarse", "seq",
                                   "other"};

enum { MP_SEND, MP_RECV, MP_WAIT, MP_COLL, NMP };
static const char *mp_name[NMP] = {"send", "recv", "wait", "collective"};

#define MAXL 32

typedef struct {
   double t;                      /* clock at the snapshot */
   double cpu;                    /* thread CPU time at the snapshot */
   double cnt[NCB], tim[NCB];
   double sum_copy;               /* sums with beta = 0: copies into an existing vector */
   double dist_cnt[NCB], dist_tim[NCB]; /* calls disturbed by another process (see clean) */
   double step_cnt[MAXL][NPH], step_tim[MAXL][NPH];
   double mpi_cnt[NMP], mpi_tim[NMP];
   double wtime_cnt;              /* MPI_Wtime calls (counted, not timed: see mpi_wtime_cost) */
} Stats;

/* ------------------------------------------------------------------------------------------
 * the application
 * ---------------------------------------------------------------------------------------- */

enum { STEP_TRIVIAL, STEP_DENSE };

struct _braid_App_struct {
   int kind;
   int width, batch, n;           /* n = width * batch doubles per vector */
   double *K, *c;                 /* dense step: W x W matrix (row major) and bias */
   double *z;                     /* dense step: scratch, width doubles */
   double tstart;
   int nlevels;

   /* instrumentation */
   int timing;                    /* 1: count and time every callback */
   int nprocs;
   Stats cur;
   int last_level, last_caller, last_tindex, last_phase;
   Stats *snaps;                  /* one per sync call */
   int nsnaps, maxsnaps;
   double *plain_snaps;           /* plain runs: only the clock at each sync */
   double *plain_cpu;             /* plain runs: the thread's CPU time at each sync */
   double *plain_mpi;             /* plain runs: MPI time so far at each sync */
};

struct _braid_Vector_struct {
   double v[1];                   /* n doubles (allocated with the vector) */
};

static int App_alloc_fail = 0;

static braid_Vector vec_alloc(braid_App app)
{
   size_t bytes = sizeof(double) * (size_t) app->n;
   braid_Vector u = (braid_Vector) malloc(bytes);
   if (u == NULL) App_alloc_fail = 1;
   return u;
}

/* ---- the plain callbacks ---- */

static braid_Int my_step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                         braid_StepStatus status)
{
   braid_Real tstart, tstop, h;
   (void) ustop;
   braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
   h = tstop - tstart;
   if (fstop != NULL)
   {
      int k;
      for (k = 0; k < app->n; k++) u->v[k] += fstop->v[k];
   }
   if (app->kind == STEP_TRIVIAL)
   {
      u->v[0] = u->v[0] / (1.0 + h);
   }
   else
   {
      const int W = app->width;
      const double *restrict K = app->K, *restrict c = app->c;
      double *restrict z = app->z;
      int b, i, j;
      for (b = 0; b < app->batch; b++)
      {
         double *restrict x = u->v + (size_t) b * W;
         for (i = 0; i < W; i++)
         {
            const double *restrict row = K + (size_t) i * W;
            double s = c[i];
            for (j = 0; j < W; j++) s += row[j] * x[j];
            z[i] = s;
         }
         for (i = 0; i < W; i++) x[i] += h * tanh(z[i]);
      }
   }
   return 0;
}

static braid_Int my_init(braid_App app, braid_Real t, braid_Vector *u_ptr)
{
   braid_Vector u = vec_alloc(app);
   int k;
   if (u == NULL) return 1;
   for (k = 0; k < app->n; k++)
   {
      /* the initial condition at tstart; elsewhere a guess of the same size that is not
       * the solution (the dense step's cost depends a little on the size of its input) */
      double u0 = sin(0.1 * (k + 1)) + 1.0;
      u->v[k] = (t == app->tstart) ? u0 : 0.5 * u0;
   }
   *u_ptr = u;
   return 0;
}

static braid_Int my_clone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{
   braid_Vector v = vec_alloc(app);
   if (v == NULL) return 1;
   memcpy(v->v, u->v, sizeof(double) * (size_t) app->n);
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
   double *restrict yv = y->v;
   const double *restrict xv = x->v;
   int k;
   if (beta == 0.0)
   {
      for (k = 0; k < app->n; k++) yv[k] = alpha * xv[k];
   }
   else
   {
      for (k = 0; k < app->n; k++) yv[k] = alpha * xv[k] + beta * yv[k];
   }
   return 0;
}

static braid_Int my_norm(braid_App app, braid_Vector u, braid_Real *norm_ptr)
{
   double s = 0.0;
   int k;
   for (k = 0; k < app->n; k++) s += u->v[k] * u->v[k];
   *norm_ptr = sqrt(s);
   return 0;
}

static braid_Int my_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{
   (void) app;
   (void) u;
   (void) status;
   return 0;
}

static braid_Int my_bufsize(braid_App app, braid_Int *size_ptr, braid_BufferStatus status)
{
   (void) status;
   *size_ptr = (braid_Int) (sizeof(double) * (size_t) app->n);
   return 0;
}

static braid_Int my_pack(braid_App app, braid_Vector u, void *buffer, braid_BufferStatus status)
{
   memcpy(buffer, u->v, sizeof(double) * (size_t) app->n);
   braid_BufferStatusSetSize(status, (braid_Real) (sizeof(double) * (size_t) app->n));
   return 0;
}

static braid_Int my_unpack(braid_App app, void *buffer, braid_Vector *u_ptr,
                           braid_BufferStatus status)
{
   braid_Vector u = vec_alloc(app);
   (void) status;
   if (u == NULL) return 1;
   memcpy(u->v, buffer, sizeof(double) * (size_t) app->n);
   *u_ptr = u;
   return 0;
}

/* Plain runs: only a clock reading per iteration. */
static braid_Int plain_sync(braid_App app, braid_SyncStatus status)
{
   (void) status;
   if (app->nsnaps < app->maxsnaps)
   {
      int c;
      double m = 0.0;
      for (c = 0; c < NMP; c++) m += app->cur.mpi_tim[c];
      app->plain_mpi[app->nsnaps] = m;
      app->plain_cpu[app->nsnaps] = cpu_clock();
      app->plain_snaps[app->nsnaps++] = now();
   }
   return 0;
}

/* ---- the instrumented callbacks: count, time, call the plain one ---- */

/* A timed call that took far longer than the calls of its kind so far (more than 20 us plus
 * ten times their mean) was interrupted: on a shared machine, by another process taking the
 * core for a time slice. Its time is replaced by the mean, and the call is counted as
 * disturbed with the excess (in the JSON: disturbed_count, disturbed_time). */
static double clean_t[NCB], clean_n[NCB];

static void clean_reset(void)
{
   memset(clean_t, 0, sizeof(clean_t));
   memset(clean_n, 0, sizeof(clean_n));
}

static double clean(Stats *st, int idx, double dt)
{
   double mean = clean_n[idx] > 0.0 ? clean_t[idx] / clean_n[idx] : 0.0;
   if (clean_n[idx] >= 16.0 && dt > 20.0e-6 + 10.0 * mean)
   {
      st->dist_cnt[idx] += 1.0;
      st->dist_tim[idx] += dt - mean;
      return mean;
   }
   clean_t[idx] += dt;
   clean_n[idx] += 1.0;
   return dt;
}

#define TIMED(idx, call)                                              \
   do {                                                               \
      double t0_ = now();                                             \
      braid_Int rc_ = (call);                                         \
      app->cur.tim[idx] += clean(&app->cur, idx, now() - t0_);        \
      app->cur.cnt[idx] += 1.0;                                       \
      return rc_;                                                     \
   } while (0)

static int classify_step(braid_App app, int level, int caller, int tindex)
{
   int phase;
   switch (caller)
   {
      case braid_ASCaller_FCRelax: phase = PH_RELAX; break;
      case braid_ASCaller_FRestrict:
         /* The FAS coarse steps follow the restriction sweep of the level below, and walk
          * their level right to left one point at a time (a sweep never steps to the left
          * by exactly one point when cfactor >= 2). */
         if ((app->last_caller == braid_ASCaller_FRestrict && app->last_level == level - 1)
             || (app->last_phase == PH_FAS && app->last_level == level
                 && tindex == app->last_tindex - 1))
         {
            phase = PH_FAS;
         }
         else
         {
            phase = PH_RESTRICT;
         }
         break;
      case braid_ASCaller_FInterp:
         phase = level == app->nlevels - 1 ? PH_COARSE : PH_INTERP;
         break;
      case braid_ASCaller_InitGuess: phase = PH_SEQ; break;
      default: phase = PH_OTHER; break;
   }
   app->last_level = level;
   app->last_caller = caller;
   app->last_tindex = tindex;
   app->last_phase = phase;
   return phase;
}

static braid_Int i_step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                        braid_StepStatus status)
{
   braid_Int level = 0, caller = -1, tindex = 0, rc;
   int phase;
   double t0, dt;
   t0 = now();
   rc = my_step(app, ustop, fstop, u, status);
   dt = clean(&app->cur, CB_STEP, now() - t0);
   braid_StepStatusGetLevel(status, &level);
   braid_StepStatusGetCallingFunction(status, &caller);
   braid_StepStatusGetTIndex(status, &tindex);
   if (app->nlevels == 1) phase = PH_SEQ;
   else phase = classify_step(app, level, caller, tindex);
   if (level < 0) level = 0;
   if (level >= MAXL) level = MAXL - 1;
   app->cur.cnt[CB_STEP] += 1.0;
   app->cur.tim[CB_STEP] += dt;
   app->cur.step_cnt[level][phase] += 1.0;
   app->cur.step_tim[level][phase] += dt;
   return rc;
}

static braid_Int i_init(braid_App app, braid_Real t, braid_Vector *u_ptr)
{ TIMED(CB_INIT, my_init(app, t, u_ptr)); }
static braid_Int i_clone(braid_App app, braid_Vector u, braid_Vector *v_ptr)
{ TIMED(CB_CLONE, my_clone(app, u, v_ptr)); }
static braid_Int i_free(braid_App app, braid_Vector u)
{ TIMED(CB_FREE, my_free(app, u)); }
static braid_Int i_sum(braid_App app, braid_Real alpha, braid_Vector x, braid_Real beta,
                       braid_Vector y)
{
   if (beta == 0.0) app->cur.sum_copy += 1.0;
   TIMED(CB_SUM, my_sum(app, alpha, x, beta, y));
}
static braid_Int i_norm(braid_App app, braid_Vector u, braid_Real *norm_ptr)
{ TIMED(CB_NORM, my_norm(app, u, norm_ptr)); }
static braid_Int i_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{ TIMED(CB_ACCESS, my_access(app, u, status)); }
static braid_Int i_bufsize(braid_App app, braid_Int *size_ptr, braid_BufferStatus status)
{ TIMED(CB_BUFSIZE, my_bufsize(app, size_ptr, status)); }
static braid_Int i_pack(braid_App app, braid_Vector u, void *buffer, braid_BufferStatus status)
{ TIMED(CB_PACK, my_pack(app, u, buffer, status)); }
static braid_Int i_unpack(braid_App app, void *buffer, braid_Vector *u_ptr,
                          braid_BufferStatus status)
{ TIMED(CB_UNPACK, my_unpack(app, buffer, u_ptr, status)); }

static braid_Int i_sync(braid_App app, braid_SyncStatus status)
{
   (void) status;
   if (app->nsnaps < app->maxsnaps)
   {
      app->cur.cpu = cpu_clock();
      app->cur.t = now();
      app->snaps[app->nsnaps++] = app->cur;
   }
   return 0;
}

/* ------------------------------------------------------------------------------------------
 * MPI time, by PMPI interposition: the engine's objects are linked into this program, so its
 * MPI calls land here first. Only counted while `mpi_stats` is set (inside braid_Drive).
 * The engine waits for a message by polling (MPI_Test + MPI_Iprobe for failure notices) or
 * by MPI_Wait, depending on its version; both are counted as "wait". Calls the engine might
 * make that are not listed here are counted as engine time.
 * ---------------------------------------------------------------------------------------- */

static Stats *mpi_stats = NULL;

#define MPI_TIMED(idx, call)                                          \
   do {                                                               \
      double t0_;                                                     \
      int rc_;                                                        \
      if (mpi_stats == NULL) return call;                             \
      t0_ = now();                                                    \
      rc_ = call;                                                     \
      mpi_stats->mpi_tim[idx] += now() - t0_;                         \
      mpi_stats->mpi_cnt[idx] += 1.0;                                 \
      return rc_;                                                     \
   } while (0)

/* the clock: counted only (timing it would cost as much as the call); its cost per call is
 * measured once at start-up (mpi_wtime_cost in the JSON) */
double MPI_Wtime(void)
{
   if (mpi_stats != NULL) mpi_stats->wtime_cnt += 1.0;
   return PMPI_Wtime();
}

/* point to point */
int MPI_Isend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
              MPI_Comm comm, MPI_Request *request)
{ MPI_TIMED(MP_SEND, PMPI_Isend(buf, count, datatype, dest, tag, comm, request)); }
int MPI_Send(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
             MPI_Comm comm)
{ MPI_TIMED(MP_SEND, PMPI_Send(buf, count, datatype, dest, tag, comm)); }
int MPI_Irecv(void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm,
              MPI_Request *request)
{ MPI_TIMED(MP_RECV, PMPI_Irecv(buf, count, datatype, source, tag, comm, request)); }
int MPI_Recv(void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm,
             MPI_Status *status)
{ MPI_TIMED(MP_RECV, PMPI_Recv(buf, count, datatype, source, tag, comm, status)); }

/* waiting and polling */
int MPI_Wait(MPI_Request *request, MPI_Status *status)
{ MPI_TIMED(MP_WAIT, PMPI_Wait(request, status)); }
int MPI_Waitall(int count, MPI_Request array_of_requests[], MPI_Status *array_of_statuses)
{ MPI_TIMED(MP_WAIT, PMPI_Waitall(count, array_of_requests, array_of_statuses)); }
int MPI_Waitany(int count, MPI_Request array_of_requests[], int *indx, MPI_Status *status)
{ MPI_TIMED(MP_WAIT, PMPI_Waitany(count, array_of_requests, indx, status)); }
int MPI_Test(MPI_Request *request, int *flag, MPI_Status *status)
{ MPI_TIMED(MP_WAIT, PMPI_Test(request, flag, status)); }
int MPI_Testall(int count, MPI_Request array_of_requests[], int *flag,
                MPI_Status *array_of_statuses)
{ MPI_TIMED(MP_WAIT, PMPI_Testall(count, array_of_requests, flag, array_of_statuses)); }
int MPI_Testany(int count, MPI_Request array_of_requests[], int *indx, int *flag,
                MPI_Status *status)
{ MPI_TIMED(MP_WAIT, PMPI_Testany(count, array_of_requests, indx, flag, status)); }
int MPI_Iprobe(int source, int tag, MPI_Comm comm, int *flag, MPI_Status *status)
{ MPI_TIMED(MP_WAIT, PMPI_Iprobe(source, tag, comm, flag, status)); }
int MPI_Probe(int source, int tag, MPI_Comm comm, MPI_Status *status)
{ MPI_TIMED(MP_WAIT, PMPI_Probe(source, tag, comm, status)); }

/* collectives (the temporal norm), blocking and non-blocking */
int MPI_Gather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
               int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm)
{
   MPI_TIMED(MP_COLL, PMPI_Gather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype,
                                  root, comm));
}
int MPI_Gatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                const int recvcounts[], const int displs[], MPI_Datatype recvtype, int root,
                MPI_Comm comm)
{
   MPI_TIMED(MP_COLL, PMPI_Gatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs,
                                   recvtype, root, comm));
}
int MPI_Bcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm)
{ MPI_TIMED(MP_COLL, PMPI_Bcast(buffer, count, datatype, root, comm)); }
int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                  MPI_Op op, MPI_Comm comm)
{ MPI_TIMED(MP_COLL, PMPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm)); }
int MPI_Reduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
               MPI_Op op, int root, MPI_Comm comm)
{ MPI_TIMED(MP_COLL, PMPI_Reduce(sendbuf, recvbuf, count, datatype, op, root, comm)); }
int MPI_Igather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm,
                MPI_Request *request)
{
   MPI_TIMED(MP_COLL, PMPI_Igather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype,
                                   root, comm, request));
}
int MPI_Igatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                 const int recvcounts[], const int displs[], MPI_Datatype recvtype, int root,
                 MPI_Comm comm, MPI_Request *request)
{
   MPI_TIMED(MP_COLL, PMPI_Igatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs,
                                    recvtype, root, comm, request));
}
int MPI_Ibcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm,
               MPI_Request *request)
{ MPI_TIMED(MP_COLL, PMPI_Ibcast(buffer, count, datatype, root, comm, request)); }
int MPI_Iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                   MPI_Op op, MPI_Comm comm, MPI_Request *request)
{ MPI_TIMED(MP_COLL, PMPI_Iallreduce(sendbuf, recvbuf, count, datatype, op, comm, request)); }
int MPI_Ireduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                MPI_Op op, int root, MPI_Comm comm, MPI_Request *request)
{
   MPI_TIMED(MP_COLL, PMPI_Ireduce(sendbuf, recvbuf, count, datatype, op, root, comm,
                                   request));
}

/* ------------------------------------------------------------------------------------------
 * driver
 * ---------------------------------------------------------------------------------------- */

typedef struct {
   int ntime, ml, cf, nu, iters, kind, width, batch, print, skip, mincoarse, reps, instr;
} Options;

typedef struct {
   double wall;                   /* braid_Drive, this rank */
   int nlevels, niter;
   Stats total;                   /* instrumented: whole Drive */
   Stats first, steady;           /* instrumented: iteration 0; the fastest of 1..k-1 */
   double steady_wall_plain;      /* plain: the fastest of iterations 1..k-1 */
   double steady_wall_plain_median, steady_wall_plain_mean; /* plain: over 1..k-1 */
   double steady_cpu_plain;       /* plain: the least CPU time of iterations 1..k-1 */
   double steady_mpi_plain;       /* plain: MPI time of the fastest iteration (wall) */
   double cpu;                    /* CPU time of braid_Drive, this rank */
   double first_wall_plain;       /* plain: iteration 0 incl. initial guess */
   double steady_wall_instr, first_wall_instr;
} RunResult;

static int cmp_double(const void *a, const void *b)
{
   double x = *(const double *) a, y = *(const double *) b;
   return (x > y) - (x < y);
}

static void stats_sub(Stats *out, const Stats *a, const Stats *b, double scale)
{
   const double *pa = (const double *) a, *pb = (const double *) b;
   double *po = (double *) out;
   size_t k, n = sizeof(Stats) / sizeof(double);
   for (k = 0; k < n; k++) po[k] = (pa[k] - pb[k]) * scale;
}

static int check(int rc, const char *what)
{
   if (rc != 0)
   {
      fprintf(stderr, "bench_engine: %s failed (%d)\n", what, rc);
      MPI_Abort(MPI_COMM_WORLD, 1);
   }
   return rc;
}

/* One braid_Drive with max_levels = levels (1 = sequential sweep); instrumented or plain. */
static void run_once(braid_App app, const Options *o, int levels, int instrumented,
                     RunResult *res)
{
   braid_Core core;
   double t0, c0;
   int k;
   const int maxsnaps = o->iters + 4;

   memset(&app->cur, 0, sizeof(Stats));
   clean_reset();
   app->timing = instrumented;
   app->last_level = -1;
   app->last_caller = -1;
   app->last_tindex = -1;
   app->last_phase = -1;
   app->nsnaps = 0;
   app->maxsnaps = maxsnaps;
   app->snaps = instrumented ? (Stats *) calloc((size_t) maxsnaps, sizeof(Stats)) : NULL;
   app->plain_snaps = (double *) calloc((size_t) maxsnaps, sizeof(double));
   app->plain_cpu = (double *) calloc((size_t) maxsnaps, sizeof(double));
   app->plain_mpi = (double *) calloc((size_t) maxsnaps, sizeof(double));

   if (instrumented)
   {
      check(braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, o->ntime, app, i_step, i_init,
                       i_clone, i_free, i_sum, i_norm, i_access, i_bufsize, i_pack, i_unpack,
                       &core), "braid_Init");
      check(braid_SetSync(core, i_sync), "braid_SetSync");
   }
   else
   {
      check(braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, o->ntime, app, my_step,
                       my_init, my_clone, my_free, my_sum, my_norm, my_access, my_bufsize,
                       my_pack, my_unpack, &core), "braid_Init");
      check(braid_SetSync(core, plain_sync), "braid_SetSync");
   }
   check(braid_SetMaxLevels(core, levels), "braid_SetMaxLevels");
   check(braid_SetMinCoarse(core, o->mincoarse), "braid_SetMinCoarse");
   check(braid_SetCFactor(core, -1, o->cf), "braid_SetCFactor");
   check(braid_SetNRelax(core, -1, o->nu), "braid_SetNRelax");
   check(braid_SetMaxIter(core, o->iters), "braid_SetMaxIter");
   check(braid_SetAbsTol(core, 0.0), "braid_SetAbsTol");
   check(braid_SetSkip(core, o->skip), "braid_SetSkip");
   check(braid_SetAccessLevel(core, 0), "braid_SetAccessLevel");
   check(braid_SetPrintLevel(core, o->print >= 2 ? 1 : 0), "braid_SetPrintLevel");

   /* the number of levels the engine will build (for the coarse-solve classification) */
   {
      int nl = 1, g = o->ntime;
      while (nl < levels && nl < 32 && g / o->cf >= o->mincoarse)
      {
         g /= o->cf;
         nl++;
      }
      app->nlevels = nl;
   }

   /* The wall time runs from a barrier to a barrier, so that it covers the last rank. */
   PMPI_Barrier(MPI_COMM_WORLD);
   /* MPI calls are timed in both runs (they are few, or polling while waiting anyway) */
   mpi_stats = &app->cur;
   t0 = now();
   c0 = cpu_clock();
   check(braid_Drive(core), "braid_Drive");
   res->cpu = cpu_clock() - c0;
   mpi_stats = NULL;
   PMPI_Barrier(MPI_COMM_WORLD);
   res->wall = now() - t0;
   if (App_alloc_fail) check(1, "allocation");

   braid_GetNLevels(core, &res->nlevels);
   braid_GetNumIter(core, &res->niter);
   if (res->nlevels != app->nlevels && levels > 1)
   {
      fprintf(stderr, "bench_engine: expected %d levels, the engine built %d\n", app->nlevels,
              res->nlevels);
   }
   braid_Destroy(core);

   /* per-iteration numbers: iteration 0 from the start, steady state over 1 .. k-1 */
   k = res->niter;
   if (instrumented)
   {
      Stats zero;
      memset(&zero, 0, sizeof(zero));
      zero.t = t0;
      zero.cpu = c0;
      res->total = app->cur;
      res->total.t = res->wall;
      if (levels > 1 && app->nsnaps >= k && k >= 1)
      {
         stats_sub(&res->first, &app->snaps[0], &zero, 1.0);
         res->first_wall_instr = res->first.t;
         if (k >= 2)
         {
            /* the steady iteration least disturbed by other processes: the least CPU time
             * on one rank, the least wall time on several (where waiting for the neighbour
             * belongs to the iteration); the counts are the same in every steady iteration */
            int i, best = 1, by_cpu = app->nprocs == 1;
            for (i = 2; i < k; i++)
            {
               double di = by_cpu ? app->snaps[i].cpu - app->snaps[i - 1].cpu
                                  : app->snaps[i].t - app->snaps[i - 1].t;
               double db = by_cpu ? app->snaps[best].cpu - app->snaps[best - 1].cpu
                                  : app->snaps[best].t - app->snaps[best - 1].t;
               if (di < db) best = i;
            }
            stats_sub(&res->steady, &app->snaps[best], &app->snaps[best - 1], 1.0);
            res->steady_wall_instr = res->steady.t;
         }
      }
   }
   else if (levels > 1 && app->nsnaps >= k && k >= 1)
   {
      res->first_wall_plain = app->plain_snaps[0] - t0;
      if (k >= 2)
      {
         /* the fastest of the steady iterations (least disturbed by other processes) and
          * their median */
         double *d = (double *) malloc(sizeof(double) * (size_t) (k - 1));
         int i;
         for (i = 1; i < k; i++) d[i - 1] = app->plain_snaps[i] - app->plain_snaps[i - 1];
         qsort(d, (size_t) (k - 1), sizeof(double), cmp_double);
         res->steady_wall_plain = d[0];
         res->steady_wall_plain_median = (k - 1) % 2 ? d[(k - 1) / 2]
                                                     : 0.5 * (d[(k - 1) / 2 - 1] + d[(k - 1) / 2]);
         res->steady_wall_plain_mean = (app->plain_snaps[k - 1] - app->plain_snaps[0]) / (k - 1);
         for (i = 1; i < k; i++) d[i - 1] = app->plain_cpu[i] - app->plain_cpu[i - 1];
         qsort(d, (size_t) (k - 1), sizeof(double), cmp_double);
         res->steady_cpu_plain = d[0];
         /* the MPI time of the fastest iteration (by wall time) */
         {
            int best = 1;
            for (i = 2; i < k; i++)
            {
               if (app->plain_snaps[i] - app->plain_snaps[i - 1]
                   < app->plain_snaps[best] - app->plain_snaps[best - 1])
               {
                  best = i;
               }
            }
            res->steady_mpi_plain = app->plain_mpi[best] - app->plain_mpi[best - 1];
         }
         free(d);
      }
   }
   free(app->snaps);
   free(app->plain_snaps);
   free(app->plain_cpu);
   free(app->plain_mpi);
   app->plain_cpu = NULL;
   app->plain_mpi = NULL;
   app->snaps = NULL;
   app->plain_snaps = NULL;
}

/* Cost of one empty timed region (what the instrumentation adds inside a callback's time):
 * the median of several batch means. */
static double timer_cost(double *pair_cost)
{
   enum { NB = 7, N = 50000 };
   double means[NB], pairs[NB];
   int b, k;
   for (b = 0; b < NB; b++)
   {
      double acc = 0.0, start = now();
      for (k = 0; k < N; k++)
      {
         double t0 = now();
         acc += now() - t0;
      }
      pairs[b] = (now() - start) / N;
      means[b] = acc / N;
   }
   qsort(means, NB, sizeof(double), cmp_double);
   qsort(pairs, NB, sizeof(double), cmp_double);
   *pair_cost = pairs[NB / 2];
   return means[NB / 2];
}

/* Cost of one MPI_Wtime call (the engine reads it, e.g. to pace its checks for failure
 * notices): the median of several batch means. */
static double wtime_cost(void)
{
   enum { NB = 7, N = 20000 };
   double means[NB], sink = 0.0;
   int b, k;
   for (b = 0; b < NB; b++)
   {
      double t0 = now();
      for (k = 0; k < N; k++) sink += PMPI_Wtime();
      means[b] = (now() - t0) / N;
   }
   qsort(means, NB, sizeof(double), cmp_double);
   return sink > 0.0 ? means[NB / 2] : means[NB / 2];
}

/* ---- JSON output ---- */

static void json_stats(FILE *f, const char *name, const Stats *sum, const Stats *max,
                       int nlevels, double ntime, int with_levels)
{
   int c, l, p;
   fprintf(f, "\"%s\":{\"wall\":%.9g", name, max->t);
   fprintf(f, ",\"count\":{");
   for (c = 0; c < NCB; c++) fprintf(f, "%s\"%s\":%.9g", c ? "," : "", cb_name[c], sum->cnt[c]);
   fprintf(f, ",\"sum_copy\":%.9g}", sum->sum_copy);
   fprintf(f, ",\"time\":{");
   for (c = 0; c < NCB; c++) fprintf(f, "%s\"%s\":%.9g", c ? "," : "", cb_name[c], max->tim[c]);
   fprintf(f, "}");
   fprintf(f, ",\"disturbed_count\":{");
   for (c = 0; c < NCB; c++)
      fprintf(f, "%s\"%s\":%.9g", c ? "," : "", cb_name[c], sum->dist_cnt[c]);
   fprintf(f, "},\"disturbed_time\":{");
   for (c = 0; c < NCB; c++)
      fprintf(f, "%s\"%s\":%.9g", c ? "," : "", cb_name[c], max->dist_tim[c]);
   fprintf(f, "}");
   fprintf(f, ",\"mpi_wtime_count\":%.9g", sum->wtime_cnt);
   fprintf(f, ",\"mpi_count\":{");
   for (c = 0; c < NMP; c++)
      fprintf(f, "%s\"%s\":%.9g", c ? "," : "", mp_name[c], sum->mpi_cnt[c]);
   fprintf(f, "},\"mpi_time\":{");
   for (c = 0; c < NMP; c++)
      fprintf(f, "%s\"%s\":%.9g", c ? "," : "", mp_name[c], max->mpi_tim[c]);
   fprintf(f, "}");
   /* step calls by phase (all levels), in sweeps (calls / ntime), and by level */
   fprintf(f, ",\"step_sweeps\":{");
   for (p = 0; p < NPH; p++)
   {
      double s = 0.0;
      for (l = 0; l < MAXL; l++) s += sum->step_cnt[l][p];
      fprintf(f, "%s\"%s\":%.9g", p ? "," : "", ph_name[p], s / ntime);
   }
   fprintf(f, "},\"step_time\":{");
   for (p = 0; p < NPH; p++)
   {
      double s = 0.0;
      for (l = 0; l < MAXL; l++) s += max->step_tim[l][p];
      fprintf(f, "%s\"%s\":%.9g", p ? "," : "", ph_name[p], s);
   }
   fprintf(f, "}");
   if (with_levels)
   {
      fprintf(f, ",\"step_sweeps_by_level\":[");
      for (l = 0; l < nlevels && l < MAXL; l++)
      {
         fprintf(f, "%s{", l ? "," : "");
         for (p = 0; p < NPH; p++)
            fprintf(f, "%s\"%s\":%.9g", p ? "," : "", ph_name[p], sum->step_cnt[l][p] / ntime);
         fprintf(f, "}");
      }
      fprintf(f, "]");
   }
   fprintf(f, "}");
}

static void reduce_stats(const Stats *in, Stats *sum, Stats *max)
{
   int n = (int) (sizeof(Stats) / sizeof(double));
   PMPI_Reduce(in, sum, n, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
   PMPI_Reduce(in, max, n, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
}

static double reduce_max(double x)
{
   double y = 0.0;
   PMPI_Reduce(&x, &y, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
   return y;
}

static double reduce_max_all(double x)
{
   double y = 0.0;
   PMPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
   return y;
}

/* Σ callback time in a Stats, less the timer's own share (per timed call). */
static double callback_time(const Stats *s, double tcost)
{
   double t = 0.0, n = 0.0;
   int c;
   for (c = 0; c < NCB; c++)
   {
      t += s->tim[c];
      n += s->cnt[c];
   }
   t -= n * tcost;
   return t > 0.0 ? t : 0.0;
}

static double mpi_time(const Stats *s)
{
   double t = 0.0;
   int c;
   for (c = 0; c < NMP; c++) t += s->mpi_tim[c];
   return t;
}

static void usage(void)
{
   fprintf(stderr,
           "usage: bench_engine [-ntime N] [-ml L] [-cf m] [-nu n] [-iters k] "
           "[-step trivial|dense] [-width W] [-batch B] [-skip 0|1] [-mincoarse c] [-reps r] [-instr 0|1] [-print p]\n"
           "  -ntime N     time steps (default 1024)\n"
           "  -ml L        max levels (default 2; 1 = sequential only)\n"
           "  -cf m        coarsening factor on every level (default 2)\n"
           "  -nu n        FC relaxation sweeps per level (default 1 = FCF)\n"
           "  -iters k     MGRIT cycles, exactly (default 5; >= 2 for steady-state numbers)\n"
           "  -step kind   trivial (scalar) or dense (ResNet layer, W x W) (default trivial)\n"
           "  -width W     dense: layer width (default 64)\n"
           "  -batch B     dense: samples per vector (default 1)\n"
           "  -skip s      skip the first down-cycle (default 0: every cycle is a full V-cycle)\n"
           "  -mincoarse c minimum coarse intervals (default 2)\n"
           "  -reps r      plain sequential sweeps timed; the fastest is the unit (default 3)\n"
           "  -instr 0|1   0: skip the instrumented runs (plain timings only, e.g. under a "
           "profiler)\n"
           "  -print p     1: human-readable summary on stderr; 2: also the engine's output\n");
}

int main(int argc, char **argv)
{
   Options o;
   struct _braid_App_struct app_s;
   braid_App app = &app_s;
   RunResult seq_plain, seq_instr, mg_plain, mg_instr;
   int rank, nprocs, a;
   double tcost, tpair, twtime, t_step_seq, seq_cpu_min = 0.0;

   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);

   o.ntime = 1024;
   o.ml = 2;
   o.cf = 2;
   o.nu = 1;
   o.iters = 5;
   o.kind = STEP_TRIVIAL;
   o.width = 64;
   o.batch = 1;
   o.print = 0;
   o.skip = 0;
   o.mincoarse = 2;
   o.reps = 3;
   o.instr = 1;
   for (a = 1; a < argc; a++)
   {
      const char *arg = argv[a];
      const char *val = a + 1 < argc ? argv[a + 1] : NULL;
      if (strcmp(arg, "-help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
      {
         if (rank == 0) usage();
         MPI_Finalize();
         return 0;
      }
      if (val == NULL)
      {
         if (rank == 0) fprintf(stderr, "bench_engine: %s needs a value\n", arg);
         MPI_Finalize();
         return 2;
      }
      a++;
      if (strcmp(arg, "-ntime") == 0) o.ntime = atoi(val);
      else if (strcmp(arg, "-ml") == 0) o.ml = atoi(val);
      else if (strcmp(arg, "-cf") == 0) o.cf = atoi(val);
      else if (strcmp(arg, "-nu") == 0) o.nu = atoi(val);
      else if (strcmp(arg, "-iters") == 0) o.iters = atoi(val);
      else if (strcmp(arg, "-width") == 0) o.width = atoi(val);
      else if (strcmp(arg, "-batch") == 0) o.batch = atoi(val);
      else if (strcmp(arg, "-print") == 0) o.print = atoi(val);
      else if (strcmp(arg, "-skip") == 0) o.skip = atoi(val);
      else if (strcmp(arg, "-mincoarse") == 0) o.mincoarse = atoi(val);
      else if (strcmp(arg, "-reps") == 0) o.reps = atoi(val);
      else if (strcmp(arg, "-instr") == 0) o.instr = atoi(val);
      else if (strcmp(arg, "-step") == 0)
      {
         if (strcmp(val, "trivial") == 0) o.kind = STEP_TRIVIAL;
         else if (strcmp(val, "dense") == 0) o.kind = STEP_DENSE;
         else
         {
            if (rank == 0)
               fprintf(stderr, "bench_engine: -step %s: expected trivial or dense\n", val);
            MPI_Finalize();
            return 2;
         }
      }
      else
      {
         if (rank == 0)
         {
            fprintf(stderr, "bench_engine: unknown option %s\n", arg);
            usage();
         }
         MPI_Finalize();
         return 2;
      }
   }
   if (o.ntime < 2 || o.ml < 1 || o.ml > 30 || o.cf < 2 || o.nu < 0 || o.iters < 1
       || o.width < 1 || o.batch < 1 || o.mincoarse < 1 || o.reps < 1)
   {
      if (rank == 0)
         fprintf(stderr, "bench_engine: need ntime >= 2, 1 <= ml <= 30, cf >= 2, nu >= 0, "
                         "iters >= 1, width >= 1, batch >= 1, mincoarse >= 1, reps >= 1\n");
      MPI_Finalize();
      return 2;
   }

   memset(&app_s, 0, sizeof(app_s));
   app->kind = o.kind;
   app->width = o.kind == STEP_DENSE ? o.width : 1;
   app->batch = o.kind == STEP_DENSE ? o.batch : 1;
   app->n = app->width * app->batch;
   app->tstart = 0.0;
   if (o.kind == STEP_DENSE)
   {
      const int W = o.width;
      int i, j;
      unsigned s = 12345u;
      app->K = (double *) malloc(sizeof(double) * (size_t) W * W);
      app->c = (double *) malloc(sizeof(double) * (size_t) W);
      app->z = (double *) malloc(sizeof(double) * (size_t) W);
      /* a fixed pseudo-random matrix with entries of size 1/sqrt(W) */
      for (i = 0; i < W; i++)
      {
         for (j = 0; j < W; j++)
         {
            s = s * 1103515245u + 12345u;
            app->K[(size_t) i * W + j] = (((double) ((s >> 8) & 0xffff) / 65535.0) - 0.5)
                                         * 2.0 / sqrt((double) W);
         }
         app->c[i] = 0.01 * (i % 7);
      }
   }

   clock_calibrate();
   tcost = timer_cost(&tpair);
   twtime = wtime_cost();
   app->nprocs = nprocs;

   /* 1. the unit: one sequential sweep (plain, then instrumented for the step cost) */
   memset(&seq_plain, 0, sizeof(seq_plain));
   memset(&seq_instr, 0, sizeof(seq_instr));
   {
      int r;
      for (r = 0; r < o.reps; r++)
      {
         RunResult tmp;
         memset(&tmp, 0, sizeof(tmp));
         run_once(app, &o, 1, 0, &tmp);
         /* the fastest of the repetitions, by the slowest rank */
         tmp.wall = reduce_max_all(tmp.wall);
         tmp.cpu = reduce_max_all(tmp.cpu);
         if (r == 0 || tmp.wall < seq_plain.wall) seq_plain = tmp;
         if (r == 0 || tmp.cpu < seq_cpu_min) seq_cpu_min = tmp.cpu;
      }
   }
   if (o.instr) run_once(app, &o, 1, 1, &seq_instr);

   /* 2. MGRIT for exactly `iters` cycles */
   memset(&mg_plain, 0, sizeof(mg_plain));
   memset(&mg_instr, 0, sizeof(mg_instr));
   if (o.ml > 1)
   {
      run_once(app, &o, o.ml, 0, &mg_plain);
      if (o.instr) run_once(app, &o, o.ml, 1, &mg_instr);
      else mg_instr.nlevels = app->nlevels, mg_instr.niter = mg_plain.niter;
   }

   /* ---- reduce and print ---- */
   {
      Stats seq_sum, seq_max, tot_sum, tot_max, st_sum, st_max, f_sum, f_max;
      double seq_wall = reduce_max(seq_plain.wall);
      double seq_wall_instr = reduce_max(seq_instr.wall);
      double mg_wall = reduce_max(mg_plain.wall);
      double mg_wall_instr = reduce_max(mg_instr.wall);
      double it_wall = reduce_max(mg_plain.steady_wall_plain);
      double it_wall_mean = reduce_max(mg_plain.steady_wall_plain_mean);
      double it_wall_median = reduce_max(mg_plain.steady_wall_plain_median);
      double it_cpu = reduce_max(mg_plain.steady_cpu_plain);
      double it_mpi_plain = reduce_max(mg_plain.steady_mpi_plain);
      /* the instrumented iteration's own time (CPU on one rank, wall on several) and what
       * the clock readings added to it */
      double my_instr_it = nprocs == 1 ? mg_instr.steady.cpu : mg_instr.steady.t;
      double my_instr_clk = 0.0;
      double instr_it, instr_clk;
      {
         int c;
         for (c = 0; c < NCB; c++) my_instr_clk += mg_instr.steady.cnt[c] * tpair;
         for (c = 0; c < NMP; c++) my_instr_clk += mg_instr.steady.mpi_cnt[c] * tpair;
      }
      instr_it = reduce_max(my_instr_it);
      instr_clk = reduce_max(my_instr_clk);
      double it_wall_instr = reduce_max(mg_instr.steady_wall_instr);
      double first_wall = reduce_max(mg_plain.first_wall_plain);
      /* per rank: callback time and what is left, then the max over ranks */
      double my_cb = callback_time(&mg_instr.steady, tcost);
      double my_mpi = mpi_time(&mg_instr.steady);
      double my_ovh = mg_plain.steady_wall_plain - my_cb;
      double my_ovh_nompi = my_ovh - my_mpi;
      /* the same from the CPU time (robust on a shared machine) */
      double my_ovh_cpu = mg_plain.steady_cpu_plain - my_cb;
      double my_ovh_cpu_nompi = my_ovh_cpu - my_mpi;
      double my_cb_nostep = my_cb - (mg_instr.steady.tim[CB_STEP] - mg_instr.steady.cnt[CB_STEP] * tcost);
      double my_seq_cb = callback_time(&seq_instr.total, tcost);
      double cb_max = reduce_max(my_cb);
      double mpi_max = reduce_max(my_mpi);
      double ovh_max = reduce_max(my_ovh);
      double ovh_nompi_max = reduce_max(my_ovh_nompi);
      double ovh_cpu_max = reduce_max(my_ovh_cpu);
      double ovh_cpu_nompi_max = reduce_max(my_ovh_cpu_nompi);
      double cb_nostep_max = reduce_max(my_cb_nostep);
      double seq_cb_max = reduce_max(my_seq_cb);
      /* the step cost per call, as seen in the sequential sweep */
      double my_step_seq = seq_instr.total.cnt[CB_STEP] > 0
         ? (seq_instr.total.tim[CB_STEP] - seq_instr.total.cnt[CB_STEP] * tcost)
              / seq_instr.total.cnt[CB_STEP]
         : 0.0;
      t_step_seq = reduce_max(my_step_seq > 0.0 ? my_step_seq : 0.0);

      memset(&seq_sum, 0, sizeof(Stats));
      memset(&seq_max, 0, sizeof(Stats));
      reduce_stats(&seq_instr.total, &seq_sum, &seq_max);
      reduce_stats(&mg_instr.total, &tot_sum, &tot_max);
      reduce_stats(&mg_instr.steady, &st_sum, &st_max);
      reduce_stats(&mg_instr.first, &f_sum, &f_max);

      if (rank == 0)
      {
         double N = (double) o.ntime;
         double steps_per_it = st_sum.cnt[CB_STEP];
         printf("{\"ntime\":%d,\"nprocs\":%d,\"ml\":%d,\"nlevels\":%d,\"cf\":%d,\"nu\":%d,"
                "\"iters\":%d,\"niter\":%d,\"step\":\"%s\",\"width\":%d,\"batch\":%d,"
                "\"skip\":%d,\"clock\":\"%s\",\"timer_cost\":%.4g,\"timer_pair_cost\":%.4g,\"mpi_wtime_cost\":%.4g,",
                o.ntime, nprocs, o.ml, o.ml > 1 ? mg_instr.nlevels : 1, o.cf, o.nu, o.iters,
                mg_instr.niter, o.kind == STEP_TRIVIAL ? "trivial" : "dense", app->width,
                app->batch, o.skip, clock_name, tcost, tpair, twtime);
         /* the unit */
         printf("\"sweep\":{\"wall\":%.9g,\"cpu\":%.9g,\"wall_instr\":%.9g,"
                "\"wall_per_point\":%.6g,\"step_calls\":%.9g,\"step_time_per_call\":%.6g,"
                "\"callback_time\":%.9g},",
                seq_wall, seq_cpu_min, seq_wall_instr, seq_wall / N, seq_sum.cnt[CB_STEP],
                t_step_seq, seq_cb_max);
         if (o.ml > 1)
         {
            printf("\"mgrit\":{\"wall\":%.9g,\"wall_instr\":%.9g,\"first_iter_wall\":%.9g,",
                   mg_wall, mg_wall_instr, first_wall);
            /* steady-state, per iteration */
            printf("\"per_iter\":{\"wall\":%.9g,\"wall_median\":%.9g,\"wall_mean\":%.9g,\"instr_iter_time\":%.9g,\"instr_clock_overhead\":%.9g,\"mpi_time_plain\":%.9g,\"cpu\":%.9g,\"sweeps_cpu\":%.6g,\"wall_instr\":%.9g,\"wall_per_point\":%.6g,"
                   "\"sweeps_time\":%.6g,\"sweeps_steps\":%.6g,\"step_calls\":%.9g,"
                   "\"callback_time\":%.9g,\"callback_time_nonstep\":%.9g,"
                   "\"mpi_time\":%.9g,\"engine_overhead\":%.9g,"
                   "\"engine_overhead_excl_mpi\":%.9g,\"engine_overhead_per_point\":%.6g,"
                   "\"engine_overhead_cpu\":%.9g,\"engine_overhead_cpu_excl_mpi\":%.9g,"
                   "\"engine_overhead_cpu_per_point\":%.6g,",
                   it_wall, it_wall_median, it_wall_mean, instr_it, instr_clk, it_mpi_plain, it_cpu,
                   seq_cpu_min > 0 ? it_cpu / seq_cpu_min : 0.0, it_wall_instr, it_wall / N,
                   seq_wall > 0 ? it_wall / seq_wall : 0.0,
                   steps_per_it / N, steps_per_it, cb_max, cb_nostep_max, mpi_max, ovh_max,
                   ovh_nompi_max, ovh_max / N, ovh_cpu_max, ovh_cpu_nompi_max, ovh_cpu_max / N);
            {
               int c;
               printf("\"count_per_point\":{");
               for (c = 0; c < NCB; c++)
                  printf("%s\"%s\":%.6g", c ? "," : "", cb_name[c], st_sum.cnt[c] / N);
               printf("},");
            }
            json_stats(stdout, "detail", &st_sum, &st_max, mg_instr.nlevels, N, 1);
            printf("},");
            json_stats(stdout, "first_iter", &f_sum, &f_max, mg_instr.nlevels, N, 0);
            printf(",");
            json_stats(stdout, "total", &tot_sum, &tot_max, mg_instr.nlevels, N, 0);
            printf("}");
         }
         else
         {
            printf("\"mgrit\":null");
         }
         printf("}\n");
         fflush(stdout);

         if (o.print >= 1 && o.ml > 1)
         {
            fprintf(stderr,
                    "bench_engine: ntime %d, %d rank(s), %d levels, cf %d, nu %d, step %s\n"
                    "  sweep: %.4g s (%.3g us/point, step %.3g us)\n"
                    "  MGRIT per iteration: %.4g s = %.3f sweeps (time); %.4f sweeps of step "
                    "calls\n"
                    "  callbacks %.4g s (non-step %.4g s), MPI %.4g s, engine overhead %.4g s "
                    "(%.1f ns/point)\n",
                    o.ntime, nprocs, mg_instr.nlevels, o.cf, o.nu,
                    o.kind == STEP_TRIVIAL ? "trivial" : "dense", seq_wall,
                    1e6 * seq_wall / N, 1e6 * t_step_seq, it_wall,
                    seq_wall > 0 ? it_wall / seq_wall : 0.0, steps_per_it / N, cb_max,
                    cb_nostep_max, mpi_max, ovh_max, 1e9 * ovh_max / N);
         }
      }
   }

   free(app->K);
   free(app->c);
   free(app->z);
   MPI_Finalize();
   return 0;
}
