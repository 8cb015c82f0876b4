/*
 * Consumer of an installed layerbraid: solves u' = -u on [0, 1], u(0) = 1, with backward
 * Euler over ntime steps by two-level MGRIT and checks u(1) against sequential stepping,
 * (1 + dt)^-ntime. Also checks that braid_Init rejects a negative ntime.
 * Prints "consumer: OK" on rank 0 and exits 0 on success.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <braid.h>

struct _braid_App_struct {
  double u_final; /* u(tstop), seen by access on the rank that owns the last point */
  int have_final;
};

struct _braid_Vector_struct {
  double value;
};

static braid_Int step(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                      braid_StepStatus status) {
  braid_Real tstart, tstop;
  (void)app;
  (void)ustop;
  (void)fstop;
  braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
  u->value = u->value / (1.0 + (tstop - tstart));
  return 0;
}

static braid_Int init(braid_App app, braid_Real t, braid_Vector *u_ptr) {
  braid_Vector u = malloc(sizeof(*u));
  (void)app;
  if (u == NULL) return 1;
  u->value = (t == 0.0) ? 1.0 : 0.5;
  *u_ptr = u;
  return 0;
}

static braid_Int clone(braid_App app, braid_Vector u, braid_Vector *v_ptr) {
  braid_Vector v = malloc(sizeof(*v));
  (void)app;
  if (v == NULL) return 1;
  v->value = u->value;
  *v_ptr = v;
  return 0;
}

static braid_Int vfree(braid_App app, braid_Vector u) {
  (void)app;
  free(u);
  return 0;
}

static braid_Int sum(braid_App app, braid_Real alpha, braid_Vector x, braid_Real beta,
                     braid_Vector y) {
  (void)app;
  y->value = alpha * x->value + beta * y->value;
  return 0;
}

static braid_Int norm(braid_App app, braid_Vector u, braid_Real *norm_ptr) {
  (void)app;
  *norm_ptr = fabs(u->value);
  return 0;
}

static braid_Int access_final(braid_App app, braid_Vector u, braid_AccessStatus status) {
  braid_Real t;
  braid_AccessStatusGetT(status, &t);
  if (fabs(t - 1.0) < 1e-12) {
    app->u_final = u->value;
    app->have_final = 1;
  }
  return 0;
}

static braid_Int bufsize(braid_App app, braid_Int *size_ptr, braid_BufferStatus status) {
  (void)app;
  (void)status;
  *size_ptr = (braid_Int)sizeof(double);
  return 0;
}

static braid_Int bufpack(braid_App app, braid_Vector u, void *buffer, braid_BufferStatus status) {
  (void)app;
  *(double *)buffer = u->value;
  braid_BufferStatusSetSize(status, (braid_Real)sizeof(double));
  return 0;
}

static braid_Int bufunpack(braid_App app, void *buffer, braid_Vector *u_ptr,
                           braid_BufferStatus status) {
  braid_Vector u = malloc(sizeof(*u));
  (void)app;
  (void)status;
  if (u == NULL) return 1;
  u->value = *(double *)buffer;
  *u_ptr = u;
  return 0;
}

int main(int argc, char *argv[]) {
  const int ntime = 16;
  struct _braid_App_struct app = {0.0, 0};
  braid_Core core = NULL;
  braid_Int niter = -1;
  double local[2], global[2], expected;
  int rank, failed = 0;

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);

  if (braid_Rand() < 0) failed = 1;

  /* bad input: a negative number of steps is refused, and no core is returned */
  if (braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, -1, &app, step, init, clone, vfree,
                 sum, norm, access_final, bufsize, bufpack, bufunpack, &core) == 0 || core != NULL) {
    if (rank == 0) printf("consumer: braid_Init accepted ntime = -1\n");
    failed = 1;
    if (core != NULL) braid_Destroy(core);
    core = NULL;
  }

  braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, ntime, &app, step, init, clone, vfree, sum,
             norm, access_final, bufsize, bufpack, bufunpack, &core);
  braid_SetMaxLevels(core, 2);
  braid_SetCFactor(core, -1, 2);
  braid_SetAbsTol(core, 1e-13);
  braid_SetMaxIter(core, 30);
  braid_SetPrintLevel(core, 0);
  braid_Drive(core);
  braid_GetNumIter(core, &niter);
  braid_Destroy(core);

  local[0] = app.have_final ? app.u_final : 0.0;
  local[1] = app.have_final;
  MPI_Allreduce(local, global, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  expected = pow(1.0 + 1.0 / ntime, -ntime);
  if (global[1] != 1.0 || fabs(global[0] - expected) > 1e-10 * expected) failed = 1;

  if (rank == 0) {
    printf("consumer: u(1) = %.15e expected %.15e iterations %d\n", global[0], expected,
           (int)niter);
    printf("consumer: %s\n", failed ? "FAILED" : "OK");
  }
  MPI_Finalize();
  return failed;
}
