/*
 * layerbraid MGRIT engine: braid_Test*, checks of a user's callbacks outside any solve.
 *
 * Each test makes vectors with the user's init, runs the callbacks under test on them and
 * checks what the user's own sum and spatialnorm can check. Messages go to fp on rank 0 of
 * comm_x only (fp == NULL: no messages). Every rank of comm_x must call a test: the user's
 * callbacks may communicate over comm_x, and the ranks agree on the result with one reduction
 * at the end of each test, so every rank returns the same value (1 = no check failed).
 *
 * Some results cannot be checked without knowing the vector type (what access prints, how a
 * spatial coarsening should behave); those are logged for the user to judge.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "braid_test.h"
#include "status_internal.h"

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

/* State of one running test. */
typedef struct {
   FILE *fp;          /* where messages go; NULL except on rank 0 of comm */
   MPI_Comm comm;     /* comm_x; MPI_COMM_NULL when there is nothing to reduce over */
   const char *name;
   int pass;          /* 0 once a check failed on this rank */
} TestCtx;

static void test_log(const TestCtx *c, const char *fmt, ...) TEST_PRINTF(2, 3);
static void test_fail(TestCtx *c, const char *fmt, ...) TEST_PRINTF(2, 3);

static void test_log(const TestCtx *c, const char *fmt, ...)
{
   va_list ap;
   if (c->fp == NULL) {
      return;
   }
   va_start(ap, fmt);
   vfprintf(c->fp, fmt, ap);
   va_end(ap);
   fputc('\n', c->fp);
   fflush(c->fp);
}

static void test_fail(TestCtx *c, const char *fmt, ...)
{
   va_list ap;
   c->pass = 0;
   if (c->fp == NULL) {
      return;
   }
   fputs("    FAIL: ", c->fp);
   va_start(ap, fmt);
   vfprintf(c->fp, fmt, ap);
   va_end(ap);
   fputc('\n', c->fp);
   fflush(c->fp);
}

static void test_begin(TestCtx *c, MPI_Comm comm_x, FILE *fp, const char *name, braid_Real t)
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
   c->pass = 1;
   test_log(c, "Starting %s (t = %1.6e)", name, t);
}

/* Agree on the result over comm_x and report it. */
static braid_Int test_end(TestCtx *c)
{
   int local = c->pass, global = c->pass;

   if (c->comm != MPI_COMM_NULL) {
      MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MIN, c->comm);
   }
   if (global && local) {
      test_log(c, "Finished %s: no check failed", c->name);
   } else if (local) {
      test_log(c, "Finished %s: FAILED on another rank of comm_x", c->name);
   } else {
      test_log(c, "Finished %s: FAILED", c->name);
   }
   return global ? 1 : 0;
}

/* ---- calling the user's callbacks, with every failure recorded ---- */

static int test_need(TestCtx *c, int present, const char *callback)
{
   if (!present) {
      test_fail(c, "the %s callback is NULL", callback);
   }
   return present;
}

static int test_rc(TestCtx *c, braid_Int rc, const char *callback)
{
   if (rc != 0) {
      test_fail(c, "%s returned error code %d", callback, (int)rc);
      return 0;
   }
   return 1;
}

/* A status for a callback called from a test: tindex 0, wrapper_test 1. */
static void test_status(_braid_Status *s, braid_Real t, braid_Real tstop, braid_Int level)
{
   _braid_StatusInit(s);
   s->t = t;
   s->tstop = tstop;
   s->tindex = 0;
   s->level = level;
   s->nlevels = level + 1;
   s->wrapper_test = 1;
}

static braid_Vector test_init(TestCtx *c, braid_App app, braid_PtFcnInit init, braid_Real t)
{
   braid_Vector u = NULL;

   if (!test_need(c, init != NULL, "init")) {
      return NULL;
   }
   if (!test_rc(c, init(app, t, &u), "init")) {
      return NULL;
   }
   if (u == NULL) {
      test_fail(c, "init returned no vector");
   }
   return u;
}

static braid_Vector test_clone(TestCtx *c, braid_App app, braid_PtFcnClone clone,
                               braid_Vector u)
{
   braid_Vector v = NULL;

   if (u == NULL || !test_need(c, clone != NULL, "clone")) {
      return NULL;
   }
   if (!test_rc(c, clone(app, u, &v), "clone")) {
      return NULL;
   }
   if (v == NULL) {
      test_fail(c, "clone returned no vector");
   } else if (v == u) {
      test_fail(c, "clone returned the vector it was given instead of a copy");
      return NULL;
   }
   return v;
}

static void test_free(TestCtx *c, braid_App app, braid_PtFcnFree free_fn, braid_Vector *u)
{
   if (*u != NULL && free_fn != NULL) {
      test_rc(c, free_fn(app, *u), "free");
   }
   *u = NULL;
}

/* y = alpha x + beta y */
static int test_sum(TestCtx *c, braid_App app, braid_PtFcnSum sum, braid_Real alpha,
                    braid_Vector x, braid_Real beta, braid_Vector y)
{
   if (x == NULL || y == NULL || !test_need(c, sum != NULL, "sum")) {
      return 0;
   }
   return test_rc(c, sum(app, alpha, x, beta, y), "sum");
}

static int test_norm(TestCtx *c, braid_App app, braid_PtFcnSpatialNorm spatialnorm,
                     braid_Vector u, const char *what, braid_Real *norm)
{
   *norm = -1.0;
   if (u == NULL || !test_need(c, spatialnorm != NULL, "spatialnorm")) {
      return 0;
   }
   if (!test_rc(c, spatialnorm(app, u, norm), "spatialnorm")) {
      return 0;
   }
   test_log(c, "  spatialnorm(%s) = %1.6e", what, *norm);
   if (!(*norm >= 0.0) || !isfinite(*norm)) {
      test_fail(c, "the norm of %s is not a finite non-negative number", what);
      return 0;
   }
   return 1;
}

static void test_access(TestCtx *c, braid_App app, braid_PtFcnAccess access, braid_Vector u,
                        braid_Real t, const char *what)
{
   _braid_Status s;

   if (access == NULL || u == NULL) {
      return;
   }
   test_log(c, "  access on %s:", what);
   test_status(&s, t, t, 0);
   test_rc(c, access(app, u, (braid_AccessStatus)&s), "access");
}

/* value should be 0: at most rtol * scale. */
static void test_expect_zero(TestCtx *c, braid_Real value, braid_Real scale, braid_Real rtol,
                             const char *what)
{
   if (value <= rtol * scale) {
      test_log(c, "    ok: %s is %1.6e (expected 0)", what, value);
   } else {
      test_fail(c, "%s is %1.6e, expected 0 (at most %1.1e)", what, value, rtol * scale);
   }
}

/* num / den should be `expected`; skipped when den is 0. */
static void test_expect_ratio(TestCtx *c, braid_Real num, braid_Real den, braid_Real expected,
                              const char *what)
{
   braid_Real ratio;

   if (den == 0.0) {
      test_log(c, "    skipped: %s (the vector from init has norm 0)", what);
      return;
   }
   ratio = num / den;
   if (fabs(ratio - expected) <= TEST_ROUND_RTOL * expected) {
      test_log(c, "    ok: %s is %1.6e (expected %g)", what, ratio, expected);
   } else {
      test_fail(c, "%s is %1.6e, expected %g", what, ratio, expected);
   }
}

/* ---- the tests ---- */

braid_Int braid_TestInitAccess(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                               braid_PtFcnInit init, braid_PtFcnAccess access,
                               braid_PtFcnFree freefn)
{
   TestCtx c;
   braid_Vector u;

   test_begin(&c, comm_x, fp, "braid_TestInitAccess", t);
   u = test_init(&c, app, init, t);
   if (u != NULL) {
      test_log(&c, "  init made a vector at t = %1.6e", t);
      test_access(&c, app, access, u,
                  t, "it (user-interpreted: it should show the initial guess at this t)");
      test_free(&c, app, freefn, &u);
   }
   return test_end(&c);
}

braid_Int braid_TestClone(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                          braid_PtFcnInit init, braid_PtFcnAccess access,
                          braid_PtFcnFree freefn, braid_PtFcnClone clone)
{
   TestCtx c;
   braid_Vector u, v;

   test_begin(&c, comm_x, fp, "braid_TestClone", t);
   u = test_init(&c, app, init, t);
   test_access(&c, app, access, u, t, "u from init");
   v = test_clone(&c, app, clone, u);
   if (v != NULL) {
      test_log(&c, "  clone made v from u");
      test_access(&c, app, access, v, t, "v (user-interpreted: it should match u above)");
   }
   test_free(&c, app, freefn, &u);
   if (v != NULL) {
      test_access(&c, app, access, v, t,
                  "v after u was freed (user-interpreted: still the same values, "
                  "as clone must make a deep copy)");
   }
   test_free(&c, app, freefn, &v);
   return test_end(&c);
}

braid_Int braid_TestSum(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                        braid_PtFcnInit init, braid_PtFcnAccess access, braid_PtFcnFree freefn,
                        braid_PtFcnClone clone, braid_PtFcnSum sum)
{
   TestCtx c;
   braid_Vector u, v;

   test_begin(&c, comm_x, fp, "braid_TestSum", t);
   u = test_init(&c, app, init, t);
   test_access(&c, app, access, u, t, "u from init");
   v = test_clone(&c, app, clone, u);
   if (test_sum(&c, app, sum, 2.0, u, -1.0, v)) {
      test_log(&c, "  v = 2u - v, with v a clone of u");
      test_access(&c, app, access, v, t, "v (user-interpreted: it should equal u)");
      if (test_sum(&c, app, sum, -1.0, u, 1.0, v)) {
         test_log(&c, "  v = v - u");
         test_access(&c, app, access, v, t, "v (user-interpreted: it should be zero)");
      }
   }
   test_free(&c, app, freefn, &v);
   test_free(&c, app, freefn, &u);
   return test_end(&c);
}

/* w = clone(u); w = alpha u + beta w, which is (alpha + beta) u; then checks
 * ||w|| = |alpha + beta| ||u|| and, with w = w - (alpha + beta) u, that w is 0.
 * exact: whether the combination is exact in floating point. */
static void test_combination(TestCtx *c, braid_App app, braid_PtFcnFree free_fn,
                             braid_PtFcnClone clone, braid_PtFcnSum sum,
                             braid_PtFcnSpatialNorm spatialnorm, braid_Vector u, braid_Real nu,
                             braid_Real alpha, braid_Real beta, int exact)
{
   braid_Vector w;
   braid_Real gamma = alpha + beta, nw;
   char what[128];

   w = test_clone(c, app, clone, u);
   if (test_sum(c, app, sum, alpha, u, beta, w)) {
      snprintf(what, sizeof what, "w = %g u %c %g w, w = clone(u)", alpha,
               (beta < 0.0) ? '-' : '+', fabs(beta));
      if (test_norm(c, app, spatialnorm, w, what, &nw)) {
         snprintf(what, sizeof what, "||%g u|| / ||u||", gamma);
         test_expect_ratio(c, nw, nu, fabs(gamma), what);
      }
      if (test_sum(c, app, sum, -gamma, u, 1.0, w)) {
         snprintf(what, sizeof what, "w %c %g u", (gamma < 0.0) ? '+' : '-', fabs(gamma));
         if (test_norm(c, app, spatialnorm, w, what, &nw)) {
            test_expect_zero(c, nw, nu, exact ? TEST_EXACT_RTOL : TEST_ROUND_RTOL * fabs(gamma),
                             what);
         }
      }
   }
   test_free(c, app, free_fn, &w);
}

braid_Int braid_TestSpatialNorm(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                                braid_PtFcnInit init, braid_PtFcnFree freefn,
                                braid_PtFcnClone clone, braid_PtFcnSum sum,
                                braid_PtFcnSpatialNorm spatialnorm)
{
   TestCtx c;
   braid_Vector u, v;
   braid_Real nu = 0.0, nv;

   test_begin(&c, comm_x, fp, "braid_TestSpatialNorm", t);
   u = test_init(&c, app, init, t);
   if (test_norm(&c, app, spatialnorm, u, "u from init", &nu)) {
      if (nu == 0.0) {
         test_log(&c, "  the vector from init has norm 0 at this t: the checks of scaling "
                      "below are skipped, try another t");
      }

      /* a clone minus the original is exactly zero */
      v = test_clone(&c, app, clone, u);
      if (test_sum(&c, app, sum, 1.0, u, -1.0, v)
          && test_norm(&c, app, spatialnorm, v, "u - clone(u)", &nv)) {
         test_expect_zero(&c, nv, nu, TEST_EXACT_RTOL, "||u - clone(u)||");
      }
      test_free(&c, app, freefn, &v);

      /* 2u - u is u, exactly */
      test_combination(&c, app, freefn, clone, sum, spatialnorm, u, nu, 2.0, -1.0, 1);
      /* 3u + 0 w: homogeneity, and beta = 0 */
      test_combination(&c, app, freefn, clone, sum, spatialnorm, u, nu, 3.0, 0.0, 0);
      /* 0.5u - 1.5u is -u: the sign of the norm, and coefficients other than 1 and 2 */
      test_combination(&c, app, freefn, clone, sum, spatialnorm, u, nu, 0.5, -1.5, 0);
   }
   test_free(&c, app, freefn, &u);
   return test_end(&c);
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
   int k, guard_ok = 1;

   test_begin(&c, comm_x, fp, "braid_TestBuf", t);
   u = test_init(&c, app, init, t);
   if (u == NULL || !test_need(&c, bufsize != NULL, "bufsize")
       || !test_need(&c, bufpack != NULL, "bufpack")
       || !test_need(&c, bufunpack != NULL, "bufunpack")) {
      test_free(&c, app, freefn, &u);
      return test_end(&c);
   }

   test_status(&s, t, t, 0);
   s.messagetype = 0;
   if (!test_rc(&c, bufsize(app, &size, (braid_BufferStatus)&s), "bufsize")) {
      test_free(&c, app, freefn, &u);
      return test_end(&c);
   }
   test_log(&c, "  bufsize: at most %d bytes per vector", (int)size);
   if (size < 0) {
      test_fail(&c, "bufsize returned a negative size (%d)", (int)size);
      test_free(&c, app, freefn, &u);
      return test_end(&c);
   }

   buffer = malloc((size_t)size + TEST_GUARD_BYTES);
   if (buffer == NULL) {
      test_fail(&c, "could not allocate a buffer of %d bytes", (int)size);
      test_free(&c, app, freefn, &u);
      return test_end(&c);
   }
   memset(buffer, 0, (size_t)size);
   memset(buffer + size, TEST_GUARD_VALUE, TEST_GUARD_BYTES);

   test_status(&s, t, t, 0);
   s.messagetype = 0;
   if (test_rc(&c, bufpack(app, u, buffer, (braid_BufferStatus)&s), "bufpack")) {
      packed = (s.size >= 0.0) ? s.size : (braid_Real)size;
      test_log(&c, "  bufpack wrote u into the buffer (%g bytes)", packed);
      if (packed > (braid_Real)size) {
         test_fail(&c, "bufpack reported %g bytes, more than the %d bytes of bufsize",
                   packed, (int)size);
      }
      for (k = 0; k < TEST_GUARD_BYTES; k++) {
         if (buffer[size + k] != TEST_GUARD_VALUE) {
            guard_ok = 0;
         }
      }
      if (!guard_ok) {
         test_fail(&c, "bufpack wrote past the %d bytes that bufsize promised", (int)size);
      }

      test_status(&s, t, t, 0);
      s.messagetype = 0;
      s.size = packed;
      if (test_rc(&c, bufunpack(app, buffer, &v, (braid_BufferStatus)&s), "bufunpack")) {
         if (v == NULL) {
            test_fail(&c, "bufunpack returned no vector");
         } else {
            test_log(&c, "  bufunpack made v from the buffer");
            if (test_norm(&c, app, spatialnorm, u, "u", &nu)
                && test_sum(&c, app, sum, 1.0, u, -1.0, v)
                && test_norm(&c, app, spatialnorm, v, "u - v", &nv)) {
               test_expect_zero(&c, nv, nu, TEST_EXACT_RTOL, "||u - unpack(pack(u))||");
            }
         }
      }
   }

   free(buffer);
   test_free(&c, app, freefn, &v);
   test_free(&c, app, freefn, &u);
   return test_end(&c);
}

/* ||x - y|| logged for the user to judge (no pass/fail: it depends on the discretisation) */
static void test_log_difference(TestCtx *c, braid_App app, braid_PtFcnFree free_fn,
                                braid_PtFcnClone clone, braid_PtFcnSum sum,
                                braid_PtFcnSpatialNorm spatialnorm, braid_Vector x,
                                braid_Vector y, const char *what, const char *meaning)
{
   braid_Vector d;
   braid_Real nd;

   d = test_clone(c, app, clone, x);
   if (test_sum(c, app, sum, -1.0, y, 1.0, d) && test_norm(c, app, spatialnorm, d, what, &nd)) {
      test_log(c, "  user-interpreted: ||%s|| = %1.6e; %s", what, nd, meaning);
   }
   test_free(c, app, free_fn, &d);
}

static braid_Vector test_coarsen(TestCtx *c, braid_App app, braid_PtFcnSCoarsen coarsen,
                                 braid_Vector fu, braid_Real t, braid_Real fdt)
{
   _braid_Status s;
   braid_Vector cu = NULL;

   test_status(&s, t, t + fdt, 0);   /* from level 0 to level 1 */
   s.nlevels = 2;
   if (!test_rc(c, coarsen(app, fu, &cu, (braid_CoarsenRefStatus)&s), "coarsen")) {
      return NULL;
   }
   if (cu == NULL) {
      test_fail(c, "coarsen returned no vector");
   }
   return cu;
}

static braid_Vector test_refine(TestCtx *c, braid_App app, braid_PtFcnSRefine refine,
                                braid_Vector cu, braid_Real t, braid_Real cdt)
{
   _braid_Status s;
   braid_Vector fu = NULL;

   test_status(&s, t, t + cdt, 1);   /* from level 1 to level 0 */
   if (!test_rc(c, refine(app, cu, &fu, (braid_CoarsenRefStatus)&s), "refine")) {
      return NULL;
   }
   if (fu == NULL) {
      test_fail(c, "refine returned no vector");
   }
   return fu;
}

braid_Int braid_TestCoarsenRefine(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                                  braid_Real fdt, braid_Real cdt, braid_PtFcnInit init,
                                  braid_PtFcnAccess access, braid_PtFcnFree freefn,
                                  braid_PtFcnClone clone, braid_PtFcnSum sum,
                                  braid_PtFcnSpatialNorm spatialnorm,
                                  braid_PtFcnSCoarsen coarsen, braid_PtFcnSRefine refine)
{
   TestCtx c;
   braid_Vector u, cu = NULL, fu = NULL, ccu = NULL;
   braid_Real nu, ncu, nfu;

   test_begin(&c, comm_x, fp, "braid_TestCoarsenRefine", t);
   if (coarsen == NULL || refine == NULL) {
      test_log(&c, "  skipped: no spatial coarsen/refine callbacks were given");
      return test_end(&c);
   }
   test_log(&c, "  fine time step %1.6e, coarse time step %1.6e", fdt, cdt);

   u = test_init(&c, app, init, t);
   if (u != NULL) {
      test_access(&c, app, access, u, t, "u from init");
      cu = test_coarsen(&c, app, coarsen, u, t, fdt);
   }
   if (cu != NULL) {
      test_log(&c, "  cu = coarsen(u)");
      test_access(&c, app, access, cu, t, "cu");
      fu = test_refine(&c, app, refine, cu, t, cdt);
   }
   if (fu != NULL) {
      test_log(&c, "  fu = refine(cu)");
      test_access(&c, app, access, fu, t, "fu");
      if (test_norm(&c, app, spatialnorm, u, "u", &nu)
          && test_norm(&c, app, spatialnorm, cu, "cu", &ncu)
          && test_norm(&c, app, spatialnorm, fu, "fu", &nfu)) {
         test_log_difference(&c, app, freefn, clone, sum, spatialnorm, fu, u, "fu - u",
                             "small when coarsening loses little of u");
      }
      /* for a coarsening that keeps the coarse points and a refinement that interpolates,
       * coarsening fu again gives cu back */
      ccu = test_coarsen(&c, app, coarsen, fu, t, fdt);
      if (ccu != NULL) {
         test_log_difference(&c, app, freefn, clone, sum, spatialnorm, ccu, cu,
                             "coarsen(fu) - cu", "0 when coarsening undoes refinement");
      }
   }
   test_free(&c, app, freefn, &ccu);
   test_free(&c, app, freefn, &fu);
   test_free(&c, app, freefn, &cu);
   test_free(&c, app, freefn, &u);
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
   braid_Vector u, ustop, unext, r;
   braid_Real nu, nr;

   (void)sum;
   test_begin(&c, comm_x, fp, "braid_TestResidual", t);
   if (residual == NULL) {
      test_log(&c, "  skipped: no residual callback was given");
      return test_end(&c);
   }
   if (!test_need(&c, step != NULL, "step")) {
      return test_end(&c);
   }
   test_log(&c, "  time step %1.6e", dt);

   u = test_init(&c, app, myinit, t);
   test_access(&c, app, myaccess, u, t, "u from init");
   ustop = test_clone(&c, app, clone, u);  /* the initial guess step is given at t + dt */
   unext = test_clone(&c, app, clone, u);
   r = NULL;
   if (ustop != NULL && unext != NULL) {
      test_status(&s, t, t + dt, 0);
      if (test_rc(&c, step(app, ustop, NULL, unext, (braid_StepStatus)&s), "step")) {
         test_log(&c, "  unext = step(u) from t to t + dt");
         test_access(&c, app, myaccess, unext, t + dt, "unext");
         r = test_clone(&c, app, clone, u);
         test_status(&s, t, t + dt, 0);
         if (r != NULL
             && test_rc(&c, residual(app, unext, r, (braid_StepStatus)&s), "residual")
             && test_norm(&c, app, spatialnorm, u, "u", &nu)
             && test_norm(&c, app, spatialnorm, r, "residual(unext, u)", &nr)) {
            test_log(&c, "  user-interpreted: ||residual(step(u), u)|| = %1.6e; near 0 "
                         "(relative to ||u|| = %1.6e) when residual matches step",
                     nr, nu);
         }
      }
   }
   test_free(&c, app, myfree, &r);
   test_free(&c, app, myfree, &unext);
   test_free(&c, app, myfree, &ustop);
   test_free(&c, app, myfree, &u);
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
   braid_Real times[2];
   const char *first_failed = NULL;
   braid_Real first_failed_t = 0.0;
   int nfailed = 0, ntests = 0, k, i;
   braid_Int ok[5];
   static const char *const names[5] = {"braid_TestInitAccess", "braid_TestClone",
                                        "braid_TestSum", "braid_TestSpatialNorm",
                                        "braid_TestBuf"};

   /* No access callback is passed to braid_TestAll: the tests that take one run without. */
   test_begin(&c, comm_x, fp, "braid_TestAll", t);
   times[0] = t;
   times[1] = t + fdt;
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
         if (!ok[i]) {
            nfailed++;
            if (first_failed == NULL) {
               first_failed = names[i];
               first_failed_t = times[k];
            }
         }
      }
   }

   ntests++;
   if (!braid_TestCoarsenRefine(app, comm_x, fp, t, fdt, cdt, init, NULL, freefn, clone, sum,
                                spatialnorm, coarsen, refine)) {
      nfailed++;
      if (first_failed == NULL) {
         first_failed = "braid_TestCoarsenRefine";
         first_failed_t = t;
      }
   }
   if (residual != NULL) {
      ntests++;
      if (!braid_TestResidual(app, comm_x, fp, t, fdt, init, NULL, freefn, clone, sum,
                              spatialnorm, residual, step)) {
         nfailed++;
         if (first_failed == NULL) {
            first_failed = "braid_TestResidual";
            first_failed_t = t;
         }
      }
   }

   /* every sub-test already agreed on its result over comm_x */
   if (nfailed == 0) {
      test_log(&c, "Finished braid_TestAll: no fails detected, however some results must be");
      test_log(&c, "user-interpreted in the log messages");
      return 1;
   }
   test_log(&c, "Finished braid_TestAll: %d of %d tests failed, the first: %s at t = %1.6e",
            nfailed, ntests, first_failed, first_failed_t);
   return 0;
}
