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

#include "test_util.h"

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

/* ---- braid_Warmup ---- */

/* Every callback once, in the order a solve first calls them (for JIT-compiled callbacks,
 * e.g. Julia's: their first call is slow). Nothing is logged or checked; the first nonzero
 * return code ends the warm-up and is returned. */
braid_Int braid_Warmup(braid_App app, MPI_Comm comm_x, braid_Real t, braid_Real fdt,
                       braid_Real cdt, braid_PtFcnInit init, braid_PtFcnAccess access,
                       braid_PtFcnFree freefn, braid_PtFcnClone clone, braid_PtFcnSum sum,
                       braid_PtFcnSpatialNorm spatialnorm, braid_PtFcnBufSize bufsize,
                       braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack,
                       braid_PtFcnSCoarsen coarsen, braid_PtFcnSRefine refine,
                       braid_PtFcnStep step, braid_PtFcnInitBasis init_basis,
                       braid_PtFcnInnerProd innerprod)
{
   _braid_Status s;
   braid_Vector u = NULL, v = NULL, w = NULL, cu = NULL, fu = NULL, psi = NULL;
   braid_Real norm, prod;
   braid_Int size = 0, rc = 0;
   void *buffer = NULL;

   (void)comm_x;
   if (init == NULL || freefn == NULL || clone == NULL || sum == NULL || spatialnorm == NULL
       || bufsize == NULL || bufpack == NULL || bufunpack == NULL || step == NULL) {
      fprintf(stderr, "braid error: braid_Warmup: init, free, clone, sum, spatialnorm, bufsize, "
                      "bufpack, bufunpack and step must not be NULL\n");
      return braid_ERROR_ARG;
   }
#define WARM(call)            \
   do {                       \
      if ((rc = (call))) {    \
         goto out;            \
      }                       \
   } while (0)
   test_status(&s, t, t + fdt, 0);
   WARM(init(app, t, &u));
   if (access != NULL) {
      WARM(access(app, u, (braid_AccessStatus)&s));
   }
   WARM(clone(app, u, &v));
   WARM(sum(app, 1.0, u, 0.0, v));
   WARM(spatialnorm(app, v, &norm));
   WARM(bufsize(app, &size, (braid_BufferStatus)&s));
   buffer = malloc((size_t)(size > 0 ? size : 1));
   if (buffer == NULL) {
      rc = braid_ERROR_MEMORY;
      goto out;
   }
   WARM(bufpack(app, u, buffer, (braid_BufferStatus)&s));
   WARM(bufunpack(app, buffer, &w, (braid_BufferStatus)&s));
   if (coarsen != NULL && refine != NULL) {
      s.f_tprior = t - fdt;
      s.f_tstop = t + fdt;
      s.c_tprior = t - cdt;
      s.c_tstop = t + cdt;
      WARM(coarsen(app, u, &cu, (braid_CoarsenRefStatus)&s));
      WARM(refine(app, cu, &fu, (braid_CoarsenRefStatus)&s));
   }
   if (init_basis != NULL && innerprod != NULL) {
      /* a step that also propagates one basis vector, as Delta correction makes it */
      WARM(init_basis(app, t, 0, &psi));
      WARM(innerprod(app, u, psi, &prod));
      s.delta_rank = 1;
      s.basis = &psi;
   }
   WARM(step(app, v, NULL, v, (braid_StepStatus)&s));
#undef WARM
out:
   free(buffer);
   if (u != NULL) freefn(app, u);
   if (v != NULL) freefn(app, v);
   if (w != NULL) freefn(app, w);
   if (cu != NULL) freefn(app, cu);
   if (fu != NULL) freefn(app, fu);
   if (psi != NULL) freefn(app, psi);
   return rc;
}
