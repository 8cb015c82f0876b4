/*
 * layerbraid MGRIT engine: braid_Test*, checks of a user's callbacks outside any solve.
 *
 * Each test makes vectors with the user's init, runs the callbacks under test on them and
 * checks what the user's own sum and spatialnorm can check. Messages go to fp on rank 0 of
 * comm_x only (fp == NULL: no messages). Every rank of comm_x must call a test: the user's
 * callbacks may communicate over comm_x, and the ranks agree on the result with one reduction
 * at the end of each test, so every rank returns the same value (1 = no check failed).
 *
 * The log is in XBraid's words, so scripts written for XBraid's logs read it unchanged: a
 * routine logs "Starting braid_TestX", then steps "   braid_TestX:   <text>" ("Starting Test N",
 * and one line per callback call in XBraid's notation: "u = init(t=0.00e+00)", "v = clone(u)",
 * "v = u - v" for sum(1, u, -1, v), "spatialnorm(v) = 0.00e+00", "free(u) " with its trailing
 * blank; access gets no line, what it shows is the user's own output), then "Finished
 * braid_TestX". A routine that checks results ends each test with "Test N Passed" or "Test N
 * Failed", and when all passed with "Finished braid_TestX: all tests passed successfully"; one
 * whose results are for the user to judge (init, clone, sum, coarsen/refine, residual) says
 * "Test N Failed" only when a callback returned an error or no vector.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "braid_test.h"
#include "status.h"

/* Results that are exact in floating point whatever the precision of the vector and whether
 * or not sum uses fused multiply-adds (u - clone(u), 2u - u - u, a pack/unpack round trip)
 * must be at most this times ||u||: anything larger is a bug, not round-off. */
#define TEST_EXACT_RTOL 1e-12
/* Results that carry the rounding of a scaling by 3 or 1.5 must match to this relative
 * accuracy: loose enough for single-precision vectors and any summation order in the norm. */
#define TEST_ROUND_RTOL 1e-5
/* Bytes after the packing buffer that bufpack must leave alone. */
#define TEST_GUARD_BYTES 64
#define TEST_GUARD_VALUE 0xA5

#if defined(__GNUC__)
#define TEST_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define TEST_PRINTF(fmt_index, first_arg)
#endif

/* State of one running test routine. */
typedef struct {
   FILE *fp;          /* where messages go; NULL except on rank 0 of comm */
   MPI_Comm comm;     /* comm_x; MPI_COMM_NULL when there is nothing to reduce over */
   const char *name;
   int checks;        /* 1: the routine checks results (Passed lines, "all tests passed") */
   int pass;          /* 0 once a check failed on this rank */
   int test;          /* number of the current test, from 1 */
   int test_pass;     /* 0 once a check of the current test failed on this rank */
} TestCtx;

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
static void test_print(const TestCtx *c, int step, const char *fmt, ...) TEST_PRINTF(3, 4);
static void test_print(const TestCtx *c, int step, const char *fmt, ...)
{
   va_list ap;
   va_start(ap, fmt);
   test_out(c, step, fmt, ap);
   va_end(ap);
}
#define test_line(c, ...) test_print(c, 0, __VA_ARGS__)
#define test_log(c, ...) test_print(c, 1, __VA_ARGS__)

/* A failed check: says why, and fails the current test and the routine. */
static void test_fail(TestCtx *c, const char *fmt, ...) TEST_PRINTF(2, 3);
static void test_fail(TestCtx *c, const char *fmt, ...)
{
   va_list ap;
   c->pass = 0;
   c->test_pass = 0;
   va_start(ap, fmt);
   test_out(c, 1, fmt, ap);
   va_end(ap);
}

static void test_begin(TestCtx *c, MPI_Comm comm_x, FILE *fp, const char *name, int checks)
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

static void test_start(TestCtx *c)
{
   c->test++;
   c->test_pass = 1;
   test_log(c, "Starting Test %d", c->test);
}

static void test_close(const TestCtx *c)
{
   if (!c->test_pass) {
      test_log(c, "Test %d Failed", c->test);
   } else if (c->checks) {
      test_log(c, "Test %d Passed", c->test);
   }
}

/* Agree on the result over comm_x and report it. */
static braid_Int test_end(TestCtx *c)
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

static int test_need(TestCtx *c, int present, const char *callback)
{
   if (!present) {
      test_fail(c, "error: the %s callback is NULL", callback);
   }
   return present;
}

static int test_rc(TestCtx *c, braid_Int rc, const char *callback)
{
   if (rc != 0) {
      test_fail(c, "error: %s returned error code %d", callback, (int)rc);
   }
   return rc == 0;
}

/* A status for a callback called from a test: tindex 0, message type 0, wrapper_test 1. */
static void test_status(_braid_Status *s, braid_Real t, braid_Real tstop, braid_Int level)
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
static braid_Vector test_made(TestCtx *c, braid_Int rc, const braid_Vector *u,
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

static braid_Vector test_init(TestCtx *c, braid_App app, braid_PtFcnInit init, braid_Real t,
                              const char *un)
{
   braid_Vector u = NULL;

   if (!test_need(c, init != NULL, "init")) {
      return NULL;
   }
   test_log(c, "%s = init(t=%1.2e)", un, t);
   return test_made(c, init(app, t, &u), &u, "init");
}

static braid_Vector test_clone(TestCtx *c, braid_App app, braid_PtFcnClone clone,
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

static void test_free(TestCtx *c, braid_App app, braid_PtFcnFree free_fn, braid_Vector *u,
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
static int test_sum(TestCtx *c, braid_App app, braid_PtFcnSum sum, braid_Real alpha,
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

static int test_norm(TestCtx *c, braid_App app, braid_PtFcnSpatialNorm spatialnorm,
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
static void test_access(TestCtx *c, braid_App app, braid_PtFcnAccess access, braid_Vector u,
                        braid_Real t)
{
   _braid_Status s;

   if (access != NULL && u != NULL) {
      test_status(&s, t, t, 0);
      test_rc(c, access(app, u, (braid_AccessStatus)&s), "access");
   }
}

/* value should be 0: at most rtol * scale. */
static void test_expect_zero(TestCtx *c, braid_Real value, braid_Real scale, braid_Real rtol,
                             const char *what)
{
   if (!(value <= rtol * scale)) {
      test_fail(c, "%s = %1.2e, expected 0 (at most %1.2e)", what, value, rtol * scale);
   }
}

/* num / den should be `expected`; skipped when den is 0. */
static void test_expect_ratio(TestCtx *c, braid_Real num, braid_Real den, braid_Real expected,
                              const char *what)
{
   if (den == 0.0) {
      test_log(c, "%s skipped: the vector from init has norm 0", what);
   } else if (!(fabs(num / den - expected) <= TEST_ROUND_RTOL * expected)) {
      test_fail(c, "%s = %1.2e, expected %1.2e", what, num / den, expected);
   }
}

/* ---- the tests ---- */

braid_Int braid_TestInitAccess(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                               braid_PtFcnInit init, braid_PtFcnAccess access,
                               braid_PtFcnFree freefn)
{
   TestCtx c;
   braid_Vector u;

   test_begin(&c, comm_x, fp, "braid_TestInitAccess", 0);
   test_start(&c);
   u = test_init(&c, app, init, t, "u");
   test_access(&c, app, access, u, t);   /* user-interpreted: the initial guess at t */
   test_free(&c, app, freefn, &u, "u");
   test_close(&c);
   return test_end(&c);
}

braid_Int braid_TestClone(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                          braid_PtFcnInit init, braid_PtFcnAccess access,
                          braid_PtFcnFree freefn, braid_PtFcnClone clone)
{
   TestCtx c;
   braid_Vector u, v;

   test_begin(&c, comm_x, fp, "braid_TestClone", 0);
   test_start(&c);
   u = test_init(&c, app, init, t, "u");
   test_access(&c, app, access, u, t);
   v = test_clone(&c, app, clone, u, "u", "v");
   test_access(&c, app, access, v, t);   /* user-interpreted: the same as u */
   test_free(&c, app, freefn, &u, "u");
   test_access(&c, app, access, v, t);   /* still the same: clone must make a deep copy */
   test_free(&c, app, freefn, &v, "v");
   test_close(&c);
   return test_end(&c);
}

braid_Int braid_TestSum(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                        braid_PtFcnInit init, braid_PtFcnAccess access, braid_PtFcnFree freefn,
                        braid_PtFcnClone clone, braid_PtFcnSum sum)
{
   TestCtx c;
   braid_Vector u, v;

   test_begin(&c, comm_x, fp, "braid_TestSum", 0);
   test_start(&c);
   u = test_init(&c, app, init, t, "u");
   v = test_clone(&c, app, clone, u, "u", "v");
   if (test_sum(&c, app, sum, 1.0, u, "u", -1.0, v, "v")) {
      test_access(&c, app, access, v, t);   /* user-interpreted: zero */
   }
   test_close(&c);
   if (c.test_pass) {
      test_start(&c);
      if (test_sum(&c, app, sum, 2.0, u, "u", 1.0, v, "v")) {
         test_access(&c, app, access, v, t);   /* user-interpreted: 2u */
         if (test_sum(&c, app, sum, -1.0, u, "u", 0.5, v, "v")) {
            test_access(&c, app, access, v, t);   /* user-interpreted: zero again */
         }
      }
      test_close(&c);
   }
   test_free(&c, app, freefn, &v, "v");
   test_free(&c, app, freefn, &u, "u");
   return test_end(&c);
}

/* Test N: w = clone(u); w = alpha u + beta w, which is (alpha + beta) u; checks
 * ||w|| = |alpha + beta| ||u||, then with w = w - (alpha + beta) u that w is 0.
 * exact: whether the combination is exact in floating point. */
static void test_combination(TestCtx *c, braid_App app, braid_PtFcnFree free_fn,
                             braid_PtFcnClone clone, braid_PtFcnSum sum,
                             braid_PtFcnSpatialNorm spatialnorm, braid_Vector u, braid_Real nu,
                             braid_Real alpha, braid_Real beta, int exact)
{
   braid_Vector w;
   braid_Real gamma = alpha + beta, nw;

   test_start(c);
   w = test_clone(c, app, clone, u, "u", "w");
   if (test_sum(c, app, sum, alpha, u, "u", beta, w, "w")) {
      if (test_norm(c, app, spatialnorm, w, "w", &nw)) {
         test_expect_ratio(c, nw, nu, fabs(gamma), "spatialnorm(w) / spatialnorm(u)");
      }
      if (test_sum(c, app, sum, -gamma, u, "u", 1.0, w, "w")
          && test_norm(c, app, spatialnorm, w, "w", &nw)) {
         test_expect_zero(c, nw, nu, exact ? TEST_EXACT_RTOL : TEST_ROUND_RTOL * fabs(gamma),
                          "spatialnorm(w)");
      }
   }
   test_free(c, app, free_fn, &w, "w");
   test_close(c);
}

braid_Int braid_TestSpatialNorm(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                                braid_PtFcnInit init, braid_PtFcnFree freefn,
                                braid_PtFcnClone clone, braid_PtFcnSum sum,
                                braid_PtFcnSpatialNorm spatialnorm)
{
   TestCtx c;
   braid_Vector u, v;
   braid_Real nu = 0.0, nv;

   test_begin(&c, comm_x, fp, "braid_TestSpatialNorm", 1);
   test_start(&c);   /* Test 1: u - clone(u) is exactly zero */
   u = test_init(&c, app, init, t, "u");
   if (test_norm(&c, app, spatialnorm, u, "u", &nu)) {
      if (nu == 0.0) {
         test_log(&c, "Warning: spatialnorm(u) = 0 at this t, the scaling checks are "
                      "skipped: try another t");
      }
      v = test_clone(&c, app, clone, u, "u", "v");
      if (test_sum(&c, app, sum, 1.0, u, "u", -1.0, v, "v")
          && test_norm(&c, app, spatialnorm, v, "v", &nv)) {
         test_expect_zero(&c, nv, nu, TEST_EXACT_RTOL, "spatialnorm(v)");
      }
      test_free(&c, app, freefn, &v, "v");
      test_close(&c);

      /* Test 2: 2u - u is u, exactly */
      test_combination(&c, app, freefn, clone, sum, spatialnorm, u, nu, 2.0, -1.0, 1);
      /* Test 3: 3u + 0 w: homogeneity, and beta = 0 */
      test_combination(&c, app, freefn, clone, sum, spatialnorm, u, nu, 3.0, 0.0, 0);
      /* Test 4: 0.5u - 1.5u is -u: the sign, and coefficients other than 1 and 2 */
      test_combination(&c, app, freefn, clone, sum, spatialnorm, u, nu, 0.5, -1.5, 0);
   } else {
      test_close(&c);
   }
   test_free(&c, app, freefn, &u, "u");
   return test_end(&c);
}

/* buffer = bufpack(u) into size bytes (plus a guard that must stay untouched);
 * returns the bytes written, or -1 after a failure */
static braid_Real test_pack(TestCtx *c, braid_App app, braid_PtFcnBufPack bufpack,
                            braid_Vector u, braid_Real t, unsigned char *buffer, braid_Int size)
{
   _braid_Status s;
   braid_Real packed;
   int k;

   memset(buffer, 0, (size_t)size);
   memset(buffer + size, TEST_GUARD_VALUE, TEST_GUARD_BYTES);
   test_status(&s, t, t, 0);
   test_log(c, "buffer = bufpack(u)");
   if (!test_rc(c, bufpack(app, u, buffer, (braid_BufferStatus)&s), "bufpack")) {
      return -1.0;
   }
   packed = (s.size >= 0.0) ? s.size : (braid_Real)size;
   if (packed > (braid_Real)size) {
      test_fail(c, "error: bufpack reported %g bytes, more than the %d bytes of bufsize",
                packed, (int)size);
   }
   for (k = 0; k < TEST_GUARD_BYTES; k++) {
      if (buffer[size + k] != TEST_GUARD_VALUE) {
         test_fail(c, "error: bufpack wrote past the %d bytes that bufsize gave", (int)size);
         break;
      }
   }
   return packed;
}

braid_Int braid_TestBuf(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                        braid_PtFcnInit init, braid_PtFcnFree freefn, braid_PtFcnSum sum,
                        braid_PtFcnSpatialNorm spatialnorm, braid_PtFcnBufSize bufsize,
                        braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack)
{
   TestCtx c;
   _braid_Status s;
   braid_Vector u, v = NULL;
   braid_Int size = -1;
   unsigned char *buffer = NULL;
   braid_Real nu, nv, packed;

   test_begin(&c, comm_x, fp, "braid_TestBuf", 1);
   test_start(&c);   /* Test 1: unpack(pack(u)) is u */
   u = test_init(&c, app, init, t, "u");
   if (u != NULL && test_need(&c, bufsize != NULL, "bufsize")
       && test_need(&c, bufpack != NULL, "bufpack")
       && test_need(&c, bufunpack != NULL, "bufunpack")
       && test_norm(&c, app, spatialnorm, u, "u", &nu)) {
      test_status(&s, t, t, 0);
      if (test_rc(&c, bufsize(app, &size, (braid_BufferStatus)&s), "bufsize")) {
         test_log(&c, "size = bufsize() = %d", (int)size);
         if (size < 0) {
            test_fail(&c, "error: bufsize returned a negative size");
         } else if ((buffer = malloc((size_t)size + TEST_GUARD_BYTES)) == NULL) {
            test_fail(&c, "error: could not allocate a buffer of %d bytes", (int)size);
         }
      }
   }
   if (buffer != NULL && (packed = test_pack(&c, app, bufpack, u, t, buffer, size)) >= 0.0) {
      test_status(&s, t, t, 0);
      s.size = packed;
      test_log(&c, "v = bufunpack(buffer)");
      v = test_made(&c, bufunpack(app, buffer, &v, (braid_BufferStatus)&s), &v, "bufunpack");
      if (test_sum(&c, app, sum, 1.0, u, "u", -1.0, v, "v")
          && test_norm(&c, app, spatialnorm, v, "v", &nv)) {
         test_expect_zero(&c, nv, nu, TEST_EXACT_RTOL, "spatialnorm(v)");
      }
   }
   free(buffer);
   test_free(&c, app, freefn, &v, "v");
   test_free(&c, app, freefn, &u, "u");
   test_close(&c);
   return test_end(&c);
}

/* d = x - y logged for the user to judge (no pass/fail: it depends on the discretisation) */
static void test_log_difference(TestCtx *c, braid_App app, braid_PtFcnFree free_fn,
                                braid_PtFcnClone clone, braid_PtFcnSum sum,
                                braid_PtFcnSpatialNorm spatialnorm, braid_Vector x,
                                const char *xn, braid_Vector y, const char *yn,
                                const char *meaning)
{
   braid_Vector d;
   braid_Real nd;

   d = test_clone(c, app, clone, x, xn, "d");
   if (test_sum(c, app, sum, -1.0, y, yn, 1.0, d, "d")
       && test_norm(c, app, spatialnorm, d, "d", &nd)) {
      test_log(c, "user-interpreted: spatialnorm(%s - %s) = %1.2e, %s", xn, yn, nd, meaning);
   }
   test_free(c, app, free_fn, &d, "d");
}

/* level 0 to level 1 (coarsen) or back (refine); the status describes the pair as the solver
 * does: the fine level 0 and the neighbours of t on both grids (fine step fdt, coarse cdt) */
static braid_Vector test_space(TestCtx *c, braid_App app, braid_PtFcnSCoarsen fn, int refine,
                               braid_Vector u, const char *un, const char *vn, braid_Real t,
                               braid_Real fdt, braid_Real cdt)
{
   _braid_Status s;
   braid_Vector v = NULL;
   const char *what = refine ? "refine" : "coarsen";

   test_status(&s, t, t, 0);
   s.nlevels = 2;
   s.f_tprior = t - fdt;
   s.f_tstop = t + fdt;
   s.c_tprior = t - cdt;
   s.c_tstop = t + cdt;
   test_log(c, "%s = %s(%s)", vn, what, un);
   return test_made(c, fn(app, u, &v, (braid_CoarsenRefStatus)&s), &v, what);
}

braid_Int braid_TestCoarsenRefine(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                                  braid_Real fdt, braid_Real cdt, braid_PtFcnInit init,
                                  braid_PtFcnAccess access, braid_PtFcnFree freefn,
                                  braid_PtFcnClone clone, braid_PtFcnSum sum,
                                  braid_PtFcnSpatialNorm spatialnorm,
                                  braid_PtFcnSCoarsen coarsen, braid_PtFcnSRefine refine)
{
   TestCtx c;
   braid_Vector u = NULL, cu = NULL, fu = NULL, ccu = NULL;
   braid_Real nu, ncu, nfu;

   test_begin(&c, comm_x, fp, "braid_TestCoarsenRefine", 0);
   if (coarsen == NULL || refine == NULL) {
      test_log(&c, "skipped: coarsen or refine is NULL");
      return test_end(&c);
   }
   test_start(&c);   /* Test 1: refine(coarsen(u)) against u */
   u = test_init(&c, app, init, t, "u");
   test_access(&c, app, access, u, t);
   if (u != NULL) {
      cu = test_space(&c, app, coarsen, 0, u, "u", "cu", t, fdt, cdt);
      test_access(&c, app, access, cu, t);
   }
   if (cu != NULL) {
      fu = test_space(&c, app, refine, 1, cu, "cu", "fu", t, fdt, cdt);
      test_access(&c, app, access, fu, t);
   }
   if (fu != NULL && test_norm(&c, app, spatialnorm, u, "u", &nu)
       && test_norm(&c, app, spatialnorm, cu, "cu", &ncu)
       && test_norm(&c, app, spatialnorm, fu, "fu", &nfu)) {
      test_log_difference(&c, app, freefn, clone, sum, spatialnorm, fu, "fu", u, "u",
                          "small when coarsening loses little of u");
   }
   test_close(&c);
   if (fu != NULL) {
      /* Test 2: for a coarsening that keeps the coarse points and a refinement that
       * interpolates, coarsening fu again gives cu back */
      test_start(&c);
      ccu = test_space(&c, app, coarsen, 0, fu, "fu", "ccu", t, fdt, cdt);
      if (ccu != NULL) {
         test_log_difference(&c, app, freefn, clone, sum, spatialnorm, ccu, "ccu", cu, "cu",
                             "0 when coarsening undoes refinement");
      }
      test_close(&c);
   }
   test_free(&c, app, freefn, &ccu, "ccu");
   test_free(&c, app, freefn, &fu, "fu");
   test_free(&c, app, freefn, &cu, "cu");
   test_free(&c, app, freefn, &u, "u");
   return test_end(&c);
}

braid_Int braid_TestResidual(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                             braid_Real dt, braid_PtFcnInit myinit,
                             braid_PtFcnAccess myaccess, braid_PtFcnFree myfree,
                             braid_PtFcnClone clone, braid_PtFcnSum sum,
                             braid_PtFcnSpatialNorm spatialnorm, braid_PtFcnResidual residual,
                             braid_PtFcnStep step)
{
   TestCtx c;
   _braid_Status s;
   braid_Vector u, ustop, v, r = NULL;
   braid_Real nu, nr;

   (void)sum;
   test_begin(&c, comm_x, fp, "braid_TestResidual", 0);
   if (residual == NULL) {
      test_log(&c, "skipped: residual is NULL");
      return test_end(&c);
   }
   test_start(&c);   /* Test 1: residual(step(u), u) is near 0 */
   u = test_init(&c, app, myinit, t, "u");
   test_access(&c, app, myaccess, u, t);
   ustop = test_clone(&c, app, clone, u, "u", "ustop");   /* step's guess of the new value */
   v = test_clone(&c, app, clone, u, "u", "v");
   if (ustop != NULL && v != NULL && test_need(&c, step != NULL, "step")) {
      test_status(&s, t, t + dt, 0);
      test_log(&c, "v = step(ustop, fstop=NULL, v), t=%1.2e to %1.2e", t, t + dt);
      if (test_rc(&c, step(app, ustop, NULL, v, (braid_StepStatus)&s), "step")) {
         test_access(&c, app, myaccess, v, t + dt);
         r = test_clone(&c, app, clone, u, "u", "r");
         test_status(&s, t, t + dt, 0);
         if (r != NULL) {
            test_log(&c, "r = residual(v, r)");
         }
         if (r != NULL && test_rc(&c, residual(app, v, r, (braid_StepStatus)&s), "residual")
             && test_norm(&c, app, spatialnorm, u, "u", &nu)
             && test_norm(&c, app, spatialnorm, r, "r", &nr)) {
            test_log(&c, "user-interpreted: spatialnorm(r) = %1.2e should be near 0 "
                         "(relative to spatialnorm(u) = %1.2e) when residual matches step",
                     nr, nu);
         }
      }
   }
   test_free(&c, app, myfree, &r, "r");
   test_free(&c, app, myfree, &v, "v");
   test_free(&c, app, myfree, &ustop, "ustop");
   test_free(&c, app, myfree, &u, "u");
   test_close(&c);
   return test_end(&c);
}

braid_Int braid_TestAll(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t, braid_Real fdt,
                        braid_Real cdt, braid_PtFcnInit init, braid_PtFcnFree freefn,
                        braid_PtFcnClone clone, braid_PtFcnSum sum,
                        braid_PtFcnSpatialNorm spatialnorm, braid_PtFcnBufSize bufsize,
                        braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack,
                        braid_PtFcnSCoarsen coarsen, braid_PtFcnSRefine refine,
                        braid_PtFcnResidual residual, braid_PtFcnStep step)
{
   TestCtx c;
   braid_Real times[2] = {t, t + fdt};
   int nfailed = 0, ntests = 0, k, i;
   braid_Int ok[5];

   /* No access callback is passed to braid_TestAll: the tests that take one run without. */
   test_begin(&c, comm_x, fp, "braid_TestAll", 0);
   for (k = 0; k < 2; k++) {
      ok[0] = braid_TestInitAccess(app, comm_x, fp, times[k], init, NULL, freefn);
      ok[1] = braid_TestClone(app, comm_x, fp, times[k], init, NULL, freefn, clone);
      ok[2] = braid_TestSum(app, comm_x, fp, times[k], init, NULL, freefn, clone, sum);
      ok[3] = braid_TestSpatialNorm(app, comm_x, fp, times[k], init, freefn, clone, sum,
                                    spatialnorm);
      ok[4] = braid_TestBuf(app, comm_x, fp, times[k], init, freefn, sum, spatialnorm, bufsize,
                            bufpack, bufunpack);
      for (i = 0; i < 5; i++) {
         ntests++;
         nfailed += !ok[i];
      }
   }
   if (coarsen != NULL && refine != NULL) {
      ntests++;
      nfailed += !braid_TestCoarsenRefine(app, comm_x, fp, t, fdt, cdt, init, NULL, freefn,
                                          clone, sum, spatialnorm, coarsen, refine);
   }
   if (residual != NULL) {
      ntests++;
      nfailed += !braid_TestResidual(app, comm_x, fp, t, fdt, init, NULL, freefn, clone, sum,
                                     spatialnorm, residual, step);
   }

   /* every routine already agreed on its result over comm_x */
   if (nfailed == 0) {
      test_line(&c, "Finished braid_TestAll: no fails detected, however some results must be");
      test_line(&c, "user-interpreted in the log messages");
      return 1;
   }
   test_line(&c, "Finished braid_TestAll: %d of %d tests failed, see the Failed lines above",
             nfailed, ntests);
   return 0;
}
