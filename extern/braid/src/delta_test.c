/*
 * braid_TestInnerProd and braid_TestDelta: checks of the callbacks Delta correction adds
 * (inner_prod, init_basis, the basis size of bufsize, and step's propagation of basis vectors),
 * logged like the other braid_Test* routines (test_util.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* A tangent must match the finite difference of step to this relative accuracy for the best
 * of the step sizes tried: a correct one does by orders of magnitude, a wrong one (a missing
 * or transposed derivative) misses by O(dt) or more. */
#define TEST_TANGENT_RTOL 1e-4

static int test_inner(TestCtx *c, braid_App app, braid_PtFcnInnerProd inner_prod,
                      braid_Vector u, const char *un, braid_Vector v, const char *vn,
                      braid_Real *prod)
{
   *prod = 0.0;
   if (u == NULL || v == NULL || !test_need(c, inner_prod != NULL, "inner_prod")) return 0;
   if (!test_rc(c, inner_prod(app, u, v, prod), "inner_prod")) return 0;
   test_log(c, "inner_prod(%s, %s) = %1.2e", un, vn, *prod);
   if (!isfinite(*prod))
   {
      test_fail(c, "error: inner_prod(%s, %s) is not a finite number", un, vn);
      return 0;
   }
   return 1;
}

braid_Int braid_TestInnerProd(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t1,
                              braid_Real t2, braid_PtFcnInit init, braid_PtFcnFree free_fn,
                              braid_PtFcnSum sum, braid_PtFcnInnerProd inner_prod)
{
   TestCtx c;
   braid_Vector u, v;
   braid_Real uu = 0.0, vv = 0.0, uv = 0.0, vu = 0.0, p;

   test_begin(&c, comm_x, fp, "braid_TestInnerProd", 1);
   test_start(&c);   /* Test 1: <u, u> > 0, <v, v> >= 0 and <u, v> = <v, u> */
   u = test_init(&c, app, init, t1, "u");
   v = test_init(&c, app, init, t2, "v");
   if (test_inner(&c, app, inner_prod, u, "u", u, "u", &uu)
       && test_inner(&c, app, inner_prod, v, "v", v, "v", &vv)
       && test_inner(&c, app, inner_prod, u, "u", v, "v", &uv)
       && test_inner(&c, app, inner_prod, v, "v", u, "u", &vu))
   {
      if (uu < 0.0 || vv < 0.0)
      {
         test_fail(&c, "error: <u, u> = %1.2e, <v, v> = %1.2e: an inner product is never "
                   "negative", uu, vv);
      }
      test_expect_zero(&c, fabs(uv - vu), sqrt(fabs(uu * vv)), TEST_ROUND_RTOL,
                       "|<u, v> - <v, u>|");
      if (vv == 0.0 || uv == 0.0)
      {
         test_log(&c, "Warning: v = init(t2) is zero or orthogonal to u, the symmetry and "
                      "Gram-Schmidt checks are inconclusive: try another t2");
      }
   }
   test_close(&c);

   if (c.pass && !(uu > 0.0))
   {
      test_log(&c, "Warning: <u, u> = 0 at t1, the remaining tests are inconclusive: try "
                   "another t1");
   }
   else if (c.pass)
   {
      test_start(&c);   /* Test 2: u / sqrt(<u, u>) has <u, u> = 1 */
      if (test_sum(&c, app, sum, 0.0, u, "u", 1.0 / sqrt(uu), u, "u")
          && test_inner(&c, app, inner_prod, u, "u", u, "u", &p))
      {
         test_expect_zero(&c, fabs(p - 1.0), 1.0, TEST_ROUND_RTOL, "|<u, u> - 1|");
      }
      test_close(&c);

      test_start(&c);   /* Test 3: one Gram-Schmidt step leaves v orthogonal to u */
      if (test_inner(&c, app, inner_prod, u, "u", v, "v", &uv))
      {
         if (uv == 0.0)
         {
            test_log(&c, "Warning: u and v are orthogonal already, the test is "
                         "inconclusive: try other t1, t2");
         }
         else if (test_sum(&c, app, sum, -uv, u, "u", 1.0, v, "v")
                  && test_inner(&c, app, inner_prod, u, "u", v, "v", &p))
         {
            test_expect_zero(&c, fabs(p), sqrt(vv), TEST_ROUND_RTOL, "|<u, v>|");
         }
      }
      test_close(&c);
   }
   test_free(&c, app, free_fn, &u, "u");
   test_free(&c, app, free_fn, &v, "v");
   return test_end(&c);
}

/* ---- braid_TestDelta ---- */

typedef struct {
   braid_App app;
   braid_PtFcnFree free_fn;
   braid_Int n;
   braid_Vector *v;
} test_set;

static void set_free(TestCtx *c, test_set *s, const char *name)
{
   braid_Int k;
   char vn[32];
   for (k = 0; s->v != NULL && k < s->n; k++)
   {
      snprintf(vn, sizeof vn, "%s[%d]", name, (int) k);
      test_free(c, s->app, s->free_fn, &s->v[k], vn);
   }
   free(s->v);
   s->v = NULL;
}

/* u = step(u) from t to t + dt, propagating the basis `basis` (n vectors, NULL: none) */
static int test_step(TestCtx *c, braid_App app, braid_PtFcnStep step, braid_Vector u,
                     const char *un, braid_Real t, braid_Real dt, braid_Int n,
                     braid_Vector *basis)
{
   _braid_Status s;
   if (u == NULL || !test_need(c, step != NULL, "step")) return 0;
   test_status(&s, t, t + dt, 0);
   s.delta_rank = n;
   s.basis = basis;
   test_log(c, "%s = step(%s, t=%1.2e, dt=%1.2e)%s", un, un, t, dt,
            n > 0 ? " with the basis" : "");
   return test_rc(c, step(app, u, NULL, u, (braid_StepStatus) &s), "step");
}

/* Test 3: basis vector k through bufpack and bufunpack with the basis size */
static void test_basis_buffer(TestCtx *c, braid_App app, braid_PtFcnFree free_fn,
                              braid_PtFcnSum sum, braid_PtFcnBufSize bufsize,
                              braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack,
                              braid_PtFcnInnerProd inner_prod, braid_Vector psi, braid_Real t)
{
   _braid_Status s;
   braid_Int size = 0;
   braid_Vector w = NULL;
   braid_Real ww, pp;
   void *buffer;
   if (!test_need(c, bufsize != NULL && bufpack != NULL && bufunpack != NULL,
                  "bufsize, bufpack or bufunpack"))
   {
      return;
   }
   test_status(&s, t, t, 0);
   if (!test_rc(c, bufsize(app, &size, (braid_BufferStatus) &s), "bufsize")) return;
   if (s.basis_size >= 0.0) size = (braid_Int) s.basis_size;
   test_log(c, "basis size = %d bytes", (int) size);
   buffer = calloc((size_t) (size > 0 ? size : 1), 1);
   if (buffer == NULL)
   {
      test_fail(c, "error: no memory for a buffer of %d bytes", (int) size);
      return;
   }
   test_status(&s, t, t, 0);
   test_log(c, "buffer = bufpack(psi)");
   if (test_rc(c, bufpack(app, psi, buffer, (braid_BufferStatus) &s), "bufpack"))
   {
      if (s.size > (braid_Real) size)
      {
         test_fail(c, "error: bufpack wrote %g bytes, more than the basis size %d", s.size,
                   (int) size);
      }
      test_log(c, "w = bufunpack(buffer)");
      w = test_made(c, bufunpack(app, buffer, &w, (braid_BufferStatus) &s), &w, "bufunpack");
      if (w != NULL && test_inner(c, app, inner_prod, psi, "psi", psi, "psi", &pp)
          && test_sum(c, app, sum, -1.0, psi, "psi", 1.0, w, "w")
          && test_inner(c, app, inner_prod, w, "w", w, "w", &ww))
      {
         test_expect_zero(c, sqrt(fabs(ww)), sqrt(fabs(pp)), TEST_EXACT_RTOL, "||w - psi||");
      }
      test_free(c, app, free_fn, &w, "w");
   }
   free(buffer);
}

/* Test 4: the propagated basis vector jpsi against (step(u + eps psi) - step(u)) / eps */
static void test_tangent(TestCtx *c, braid_App app, braid_PtFcnFree free_fn,
                         braid_PtFcnClone clone, braid_PtFcnSum sum,
                         braid_PtFcnInnerProd inner_prod, braid_PtFcnStep step, braid_Vector u,
                         braid_Vector su, braid_Vector psi, braid_Vector jpsi, braid_Real t,
                         braid_Real dt, braid_Real scale)
{
   const braid_Real rel[4] = {1e-3, 1e-4, 1e-5, 1e-6};
   braid_Real best = -1.0, jj = 0.0, e, eps;
   braid_Vector w = NULL;
   int m;
   if (!test_inner(c, app, inner_prod, jpsi, "Jpsi", jpsi, "Jpsi", &jj)) return;
   for (m = 0; m < 4 && c->test_pass; m++)
   {
      eps = rel[m] * scale;
      test_log(c, "eps = %1.2e", eps);
      w = test_clone(c, app, clone, u, "u", "w");
      if (w == NULL || !test_sum(c, app, sum, eps, psi, "psi", 1.0, w, "w")
          || !test_step(c, app, step, w, "w", t, dt, 0, NULL)
          || !test_sum(c, app, sum, -1.0 / eps, su, "step(u)", 1.0 / eps, w, "w")
          || !test_sum(c, app, sum, -1.0, jpsi, "Jpsi", 1.0, w, "w")
          || !test_inner(c, app, inner_prod, w, "w", w, "w", &e))
      {
         test_free(c, app, free_fn, &w, "w");
         return;
      }
      test_free(c, app, free_fn, &w, "w");
      e = sqrt(fabs(e));
      if (best < 0.0 || e < best) best = e;
   }
   test_log(c, "min over eps of ||(step(u + eps psi) - step(u)) / eps - Jpsi|| = %1.2e", best);
   if (!(best <= TEST_TANGENT_RTOL * (sqrt(fabs(jj)) + 1.0)))
   {
      test_fail(c, "error: the basis vector step propagated does not match the finite "
                "difference of step (%1.2e, at most %1.2e allowed): step must apply the "
                "derivative of its map to each basis vector, in place", best,
                TEST_TANGENT_RTOL * (sqrt(fabs(jj)) + 1.0));
   }
}

braid_Int braid_TestDelta(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t, braid_Real dt,
                          braid_Int rank, braid_PtFcnInit myinit,
                          braid_PtFcnInitBasis myinit_basis, braid_PtFcnAccess myaccess,
                          braid_PtFcnFree myfree, braid_PtFcnClone myclone,
                          braid_PtFcnSum mysum, braid_PtFcnBufSize bufsize,
                          braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack,
                          braid_PtFcnInnerProd myinner_prod, braid_PtFcnStep mystep)
{
   TestCtx c;
   test_set psi = {NULL, NULL, 0, NULL}, jpsi = {NULL, NULL, 0, NULL};
   braid_Vector u = NULL, su = NULL;
   braid_Int k, j, ok_inner;
   braid_Real p, uu = 0.0;
   char vn[32], wn[32];

   ok_inner = braid_TestInnerProd(app, comm_x, fp, t, t + dt, myinit, myfree, mysum,
                                  myinner_prod);
   test_begin(&c, comm_x, fp, "braid_TestDelta", 1);
   if (!ok_inner) test_fail(&c, "braid_TestInnerProd failed");
   if (rank < 1)
   {
      test_fail(&c, "error: rank = %d; Delta correction needs rank >= 1", (int) rank);
      return test_end(&c);
   }
   psi.app = jpsi.app = app;
   psi.free_fn = jpsi.free_fn = myfree;
   psi.v = (braid_Vector *) calloc((size_t) rank, sizeof(braid_Vector));
   jpsi.v = (braid_Vector *) calloc((size_t) rank, sizeof(braid_Vector));
   if (psi.v == NULL || jpsi.v == NULL)
   {
      test_fail(&c, "error: no memory for %d basis vectors", (int) rank);
      goto out;
   }
   psi.n = jpsi.n = rank;

   test_start(&c);   /* Test 1: init_basis gives linearly independent vectors */
   for (k = 0; k < rank && c.test_pass; k++)
   {
      snprintf(vn, sizeof vn, "psi[%d]", (int) k);
      if (!test_need(&c, myinit_basis != NULL, "init_basis")) break;
      test_log(&c, "%s = init_basis(t=%1.2e, index=%d)", vn, t, (int) k);
      psi.v[k] = test_made(&c, myinit_basis(app, t, k, &psi.v[k]), &psi.v[k], "init_basis");
      for (j = 0; j < k && psi.v[k] != NULL && c.test_pass; j++)
      {
         snprintf(wn, sizeof wn, "psi[%d]", (int) j);
         if (test_inner(&c, app, myinner_prod, psi.v[j], wn, psi.v[k], vn, &p))
         {
            test_sum(&c, app, mysum, -p, psi.v[j], wn, 1.0, psi.v[k], vn);
         }
      }
      if (c.test_pass && test_inner(&c, app, myinner_prod, psi.v[k], vn, psi.v[k], vn, &p))
      {
         if (!(p > 0.0))
         {
            test_fail(&c, "error: %s depends linearly on the vectors before it (<v, v> = "
                      "%1.2e after Gram-Schmidt)", vn, p);
         }
         else
         {
            test_sum(&c, app, mysum, 0.0, psi.v[k], vn, 1.0 / sqrt(p), psi.v[k], vn);
         }
      }
   }
   test_close(&c);
   if (!c.pass) goto out;

   test_start(&c);   /* Test 2: each basis vector packs and unpacks unchanged */
   for (k = 0; k < rank && c.test_pass; k++)
   {
      test_basis_buffer(&c, app, myfree, mysum, bufsize, bufpack, bufunpack, myinner_prod,
                        psi.v[k], t);
   }
   test_close(&c);

   test_start(&c);   /* Test 3: step's basis propagation is the derivative of step */
   u = test_init(&c, app, myinit, t, "u");
   su = test_clone(&c, app, myclone, u, "u", "v");
   for (k = 0; k < rank && su != NULL; k++)
   {
      snprintf(vn, sizeof vn, "psi[%d]", (int) k);
      snprintf(wn, sizeof wn, "Jpsi[%d]", (int) k);
      jpsi.v[k] = test_clone(&c, app, myclone, psi.v[k], vn, wn);
   }
   if (c.test_pass && test_inner(&c, app, myinner_prod, u, "u", u, "u", &uu)
       && test_step(&c, app, mystep, su, "v", t, dt, rank, jpsi.v))
   {
      test_access(&c, app, myaccess, su, t + dt);
      for (k = 0; k < rank && c.test_pass; k++)
      {
         test_tangent(&c, app, myfree, myclone, mysum, myinner_prod, mystep, u, su, psi.v[k],
                      jpsi.v[k], t, dt, uu > 0.0 ? sqrt(uu) : 1.0);
      }
   }
   test_close(&c);

out:
   test_free(&c, app, myfree, &u, "u");
   test_free(&c, app, myfree, &su, "v");
   set_free(&c, &psi, "psi");
   set_free(&c, &jpsi, "Jpsi");
   return test_end(&c);
}
