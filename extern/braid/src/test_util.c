/*
 * The braid_Test* routines' shared machinery (test_util.h).
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"


static void test_out(const TestCtx *c, int step, const char *fmt, va_list ap)
{
   if (c->fp == NULL) {
      return;
   }
   if (step) {
      fprintf(c->fp, "   %s:   ", c->name);
   }
   vfprintf(c->fp, fmt, ap);
   fputc('\n', c->fp);
   fflush(c->fp);
}

/* step 0: a line of the routine ("Starting braid_TestX"); 1: a step, "   braid_TestX:   ..." */
void test_print(const TestCtx *c, int step, const char *fmt, ...)
{
   va_list ap;
   va_start(ap, fmt);
   test_out(c, step, fmt, ap);
   va_end(ap);
}

/* A failed check: says why, and fails the current test and the routine. */
void test_fail(TestCtx *c, const char *fmt, ...)
{
   va_list ap;
   c->pass = 0;
   c->test_pass = 0;
   va_start(ap, fmt);
   test_out(c, 1, fmt, ap);
   va_end(ap);
}

void test_begin(TestCtx *c, MPI_Comm comm_x, FILE *fp, const char *name, int checks)
{
   int initialized = 0, finalized = 0, rank = 0;

   MPI_Initialized(&initialized);
   MPI_Finalized(&finalized);
   c->comm = MPI_COMM_NULL;
   if (initialized && !finalized && comm_x != MPI_COMM_NULL) {
      c->comm = comm_x;
      MPI_Comm_rank(comm_x, &rank);
   }
   c->fp = (rank == 0) ? fp : NULL;
   c->name = name;
   c->checks = checks;
   c->pass = 1;
   c->test = 0;
   c->test_pass = 1;
   test_line(c, "Starting %s", name);
}

void test_start(TestCtx *c)
{
   c->test++;
   c->test_pass = 1;
   test_log(c, "Starting Test %d", c->test);
}

void test_close(const TestCtx *c)
{
   if (!c->test_pass) {
      test_log(c, "Test %d Failed", c->test);
   } else if (c->checks) {
      test_log(c, "Test %d Passed", c->test);
   }
}

/* Agree on the result over comm_x and report it. */
braid_Int test_end(TestCtx *c)
{
   int local = c->pass, global = c->pass;

   if (c->comm != MPI_COMM_NULL) {
      MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MIN, c->comm);
   }
   if (global) {
      test_line(c, c->checks ? "Finished %s: all tests passed successfully" : "Finished %s",
                c->name);
   } else {
      test_line(c, "Finished %s: some tests failed%s", c->name,
                local ? " on another rank of comm_x" : "");
   }
   return global ? 1 : 0;
}

/* ---- calling the user's callbacks: one log line each, every failure recorded ---- */

int test_need(TestCtx *c, int present, const char *callback)
{
   if (!present) {
      test_fail(c, "error: the %s callback is NULL", callback);
   }
   return present;
}

int test_rc(TestCtx *c, braid_Int rc, const char *callback)
{
   if (rc != 0) {
      test_fail(c, "error: %s returned error code %d", callback, (int)rc);
   }
   return rc == 0;
}

/* A status for a callback called from a test: tindex 0, message type 0, wrapper_test 1. */
void test_status(_braid_Status *s, braid_Real t, braid_Real tstop, braid_Int level)
{
   _braid_StatusInit(s);
   s->t = t;
   s->tstop = tstop;
   s->level = level;
   s->nlevels = level + 1;
   s->wrapper_test = 1;
}

/* The vector a callback returned (rc) in *u, read after the call; NULL (a failure) when rc or
 * the vector is bad. */
braid_Vector test_made(TestCtx *c, braid_Int rc, const braid_Vector *u,
                       const char *callback)
{
   if (!test_rc(c, rc, callback)) {
      return NULL;
   }
   if (*u == NULL) {
      test_fail(c, "error: %s returned no vector", callback);
   }
   return *u;
}

braid_Vector test_init(TestCtx *c, braid_App app, braid_PtFcnInit init, braid_Real t,
                       const char *un)
{
   braid_Vector u = NULL;

   if (!test_need(c, init != NULL, "init")) {
      return NULL;
   }
   test_log(c, "%s = init(t=%1.2e)", un, t);
   return test_made(c, init(app, t, &u), &u, "init");
}

braid_Vector test_clone(TestCtx *c, braid_App app, braid_PtFcnClone clone,
                        braid_Vector u, const char *un, const char *vn)
{
   braid_Vector v = NULL;

   if (u == NULL || !test_need(c, clone != NULL, "clone")) {
      return NULL;
   }
   test_log(c, "%s = clone(%s)", vn, un);
   v = test_made(c, clone(app, u, &v), &v, "clone");
   if (v != NULL && v == u) {
      test_fail(c, "error: clone returned the vector it was given instead of a copy");
      return NULL;
   }
   return v;
}

void test_free(TestCtx *c, braid_App app, braid_PtFcnFree free_fn, braid_Vector *u,
               const char *un)
{
   if (*u != NULL && free_fn != NULL) {
      test_log(c, "free(%s) ", un);
      test_rc(c, free_fn(app, *u), "free");
   }
   *u = NULL;
}

/* "2u", "u", "-u", "0.5u" */
static void test_term(char *buf, size_t len, braid_Real a, const char *xn)
{
   if (a == 1.0 || a == -1.0) {
      snprintf(buf, len, "%s%s", (a < 0.0) ? "-" : "", xn);
   } else {
      snprintf(buf, len, "%g%s", a, xn);
   }
}

/* y = alpha x + beta y, logged as "y = 2x - y" */
int test_sum(TestCtx *c, braid_App app, braid_PtFcnSum sum, braid_Real alpha,
             braid_Vector x, const char *xn, braid_Real beta, braid_Vector y,
             const char *yn)
{
   char ax[48], by[48];

   if (x == NULL || y == NULL || !test_need(c, sum != NULL, "sum")) {
      return 0;
   }
   test_term(ax, sizeof ax, alpha, xn);
   test_term(by, sizeof by, fabs(beta), yn);
   test_log(c, "%s = %s %c %s", yn, ax, (beta < 0.0) ? '-' : '+', by);
   return test_rc(c, sum(app, alpha, x, beta, y), "sum");
}

int test_norm(TestCtx *c, braid_App app, braid_PtFcnSpatialNorm spatialnorm,
              braid_Vector u, const char *un, braid_Real *norm)
{
   *norm = -1.0;
   if (u == NULL || !test_need(c, spatialnorm != NULL, "spatialnorm")) {
      return 0;
   }
   if (!test_rc(c, spatialnorm(app, u, norm), "spatialnorm")) {
      return 0;
   }
   test_log(c, "spatialnorm(%s) = %1.2e", un, *norm);
   if (!(*norm >= 0.0) || !isfinite(*norm)) {
      test_fail(c, "error: spatialnorm(%s) is not a finite non-negative number", un);
      return 0;
   }
   return 1;
}

/* access is called without a line of its own: what it shows is the user's output */
void test_access(TestCtx *c, braid_App app, braid_PtFcnAccess access, braid_Vector u,
                 braid_Real t)
{
   _braid_Status s;

   if (access != NULL && u != NULL) {
      test_status(&s, t, t, 0);
      test_rc(c, access(app, u, (braid_AccessStatus)&s), "access");
   }
}

/* value should be 0: at most rtol * scale. */
void test_expect_zero(TestCtx *c, braid_Real value, braid_Real scale, braid_Real rtol,
                      const char *what)
{
   if (!(value <= rtol * scale)) {
      test_fail(c, "%s = %1.2e, expected 0 (at most %1.2e)", what, value, rtol * scale);
   }
}

/* num / den should be `expected`; skipped when den is 0. */
void test_expect_ratio(TestCtx *c, braid_Real num, braid_Real den, braid_Real expected,
                       const char *what)
{
   if (den == 0.0) {
      test_log(c, "%s skipped: the vector from init has norm 0", what);
   } else if (!(fabs(num / den - expected) <= TEST_ROUND_RTOL * expected)) {
      test_fail(c, "%s = %1.2e, expected %1.2e", what, num / den, expected);
   }
}

