/*
 * layerbraid MGRIT engine: checks of a user's callbacks (XBraid C interface, braid_test.h).
 *
 * Each test runs the callbacks on vectors made by init, logs what it did to fp (on rank 0 of
 * comm_x; fp NULL: no log), and returns 1 when every check it can make passed, 0 otherwise, the
 * same value on every rank of comm_x (all of which must call it). Some results must be judged
 * by the user from the log (for example what access shows).
 *
 * The log is in XBraid's words, so scripts that read XBraid's logs read it unchanged:
 *
 *   Starting braid_TestSpatialNorm
 *      braid_TestSpatialNorm:   Starting Test 1
 *      braid_TestSpatialNorm:   u = init(t=0.00e+00)
 *      braid_TestSpatialNorm:   spatialnorm(u) = 1.00e+00
 *      braid_TestSpatialNorm:   v = clone(u)
 *      braid_TestSpatialNorm:   v = u - v
 *      braid_TestSpatialNorm:   spatialnorm(v) = 0.00e+00
 *      braid_TestSpatialNorm:   free(v)
 *      braid_TestSpatialNorm:   Test 1 Passed
 *   ...
 *   Finished braid_TestSpatialNorm: all tests passed successfully
 *
 * one line per callback call ("free(v) " ends in a blank, as XBraid's does; access gets no
 * line, its output is the user's own); a failed check
 * logs why, then "Test N Failed", and the routine ends "Finished braid_TestX: some tests
 * failed". Tests with nothing to check end with a plain "Finished braid_TestX".
 */
#ifndef LAYERBRAID_BRAID_TEST_H
#define LAYERBRAID_BRAID_TEST_H

#include <stdio.h>

#include "braid.h"

#ifdef __cplusplus
extern "C" {
#endif

/** u = init(t), access(u) (the user checks what it shows), free(u). */
braid_Int braid_TestInitAccess(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                               braid_PtFcnInit init, braid_PtFcnAccess access,
                               braid_PtFcnFree free);

/** u = init(t), v = clone(u); access shows u, v, and v again after free(u) (all three the
 *  same for a deep copy). Checks that clone returns a new vector. */
braid_Int braid_TestClone(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                          braid_PtFcnInit init, braid_PtFcnAccess access,
                          braid_PtFcnFree free, braid_PtFcnClone clone);

/** Test 1: v = clone(u), v = u - v (access: zero); Test 2: v = 2u + v (access: 2u),
 *  v = -u + 0.5v (access: zero). Results are for the user to judge. */
braid_Int braid_TestSum(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                        braid_PtFcnInit init, braid_PtFcnAccess access, braid_PtFcnFree free,
                        braid_PtFcnClone clone, braid_PtFcnSum sum);

/** Checks, with the user's sum and spatialnorm: ||u - clone(u)|| = 0 (Test 1), and for
 *  w = clone(u), w = a u + b w with (a, b) = (2, -1), (3, 0), (0.5, -1.5) (Tests 2 to 4) that
 *  ||w|| = |a + b| ||u|| and w - (a + b) u = 0. Pick a t where init is not zero. */
braid_Int braid_TestSpatialNorm(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                                braid_PtFcnInit init, braid_PtFcnFree free,
                                braid_PtFcnClone clone, braid_PtFcnSum sum,
                                braid_PtFcnSpatialNorm spatialnorm);

/** Checks that v = bufunpack(bufpack(u)) equals u (||u - v|| = 0) and that bufpack stays
 *  within the bytes bufsize gave. */
braid_Int braid_TestBuf(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                        braid_PtFcnInit init, braid_PtFcnFree free, braid_PtFcnSum sum,
                        braid_PtFcnSpatialNorm spatialnorm, braid_PtFcnBufSize bufsize,
                        braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack);

/** cu = coarsen(u), fu = refine(cu), ccu = coarsen(fu); logs ||fu - u|| and ||ccu - cu|| for
 *  the user to judge. Skipped (and passes) when coarsen or refine is NULL. */
braid_Int braid_TestCoarsenRefine(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                                  braid_Real fdt, braid_Real cdt, braid_PtFcnInit init,
                                  braid_PtFcnAccess access, braid_PtFcnFree free,
                                  braid_PtFcnClone clone, braid_PtFcnSum sum,
                                  braid_PtFcnSpatialNorm spatialnorm,
                                  braid_PtFcnSCoarsen coarsen, braid_PtFcnSRefine refine);

/** v = step(u) from t to t + dt, r = residual(v, u); logs ||r||, near 0 when residual matches
 *  step, for the user to judge. Skipped (and passes) when residual is NULL. */
braid_Int braid_TestResidual(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t,
                             braid_Real dt, braid_PtFcnInit myinit,
                             braid_PtFcnAccess myaccess, braid_PtFcnFree myfree,
                             braid_PtFcnClone clone, braid_PtFcnSum sum,
                             braid_PtFcnSpatialNorm spatialnorm, braid_PtFcnResidual residual,
                             braid_PtFcnStep step);

/** Runs InitAccess, Clone, Sum, SpatialNorm and Buf at t and at t + fdt, then CoarsenRefine
 *  and Residual at t when those callbacks are given (they may be NULL); access is not used.
 *  Returns 1 if none failed, and then ends the log with the two lines
 *  "Finished braid_TestAll: no fails detected, however some results must be" and
 *  "user-interpreted in the log messages". */
braid_Int braid_TestAll(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t, braid_Real fdt,
                        braid_Real cdt, braid_PtFcnInit init, braid_PtFcnFree free,
                        braid_PtFcnClone clone, braid_PtFcnSum sum,
                        braid_PtFcnSpatialNorm spatialnorm, braid_PtFcnBufSize bufsize,
                        braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack,
                        braid_PtFcnSCoarsen coarsen, braid_PtFcnSRefine refine,
                        braid_PtFcnResidual residual, braid_PtFcnStep step);

/** Delta correction's inner product: u = init(t1) is normalised in the norm inner_prod induces,
 *  v = init(t2) is orthogonalised against it (one Gram-Schmidt step); checks symmetry,
 *  <u, u> > 0, <u, u> = 1 after normalising and <u, v> = 0 after the Gram-Schmidt step.
 *  Returns 1 if the tests pass, 0 if one fails (inconclusive, and passing, when a vector is
 *  zero or the two are orthogonal from the start). */
braid_Int braid_TestInnerProd(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t1,
                              braid_Real t2, braid_PtFcnInit init, braid_PtFcnFree free,
                              braid_PtFcnSum sum, braid_PtFcnInnerProd inner_prod);

/** The callbacks Delta correction needs: braid_TestInnerProd at t and t + dt; the rank basis
 *  vectors of init_basis at t are linearly independent (Gram-Schmidt keeps every one); each
 *  packs and unpacks unchanged with the basis size bufsize sets; and step's propagation of
 *  each (orthonormalised) basis vector psi from t to t + dt, J psi, matches the finite
 *  difference (step(u + eps psi) - step(u)) / eps: for the best of eps = 1e-3 .. 1e-6 times
 *  ||u||, the difference must be at most 1e-4 (||J psi|| + 1). access (may be NULL) sees
 *  step's result. Returns 1 if all pass, 0 otherwise. */
braid_Int braid_TestDelta(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t, braid_Real dt,
                          braid_Int rank, braid_PtFcnInit myinit,
                          braid_PtFcnInitBasis myinit_basis, braid_PtFcnAccess myaccess,
                          braid_PtFcnFree myfree, braid_PtFcnClone myclone,
                          braid_PtFcnSum mysum, braid_PtFcnBufSize bufsize,
                          braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack,
                          braid_PtFcnInnerProd myinner_prod, braid_PtFcnStep mystep);

/** Calls every callback once with sensible arguments (init and access at t; clone, sum,
 *  spatialnorm; bufsize, bufpack, bufunpack; coarsen and refine with steps fdt and cdt when
 *  both are given; init_basis and innerprod when both are given, then step from t to t + fdt
 *  propagating that basis vector), so that callbacks compiled on their first call (Julia's)
 *  are compiled before a solve. Nothing is checked or logged; returns 0, or the first nonzero
 *  code a callback returned. */
braid_Int braid_Warmup(braid_App app, MPI_Comm comm_x, braid_Real t, braid_Real fdt,
                       braid_Real cdt, braid_PtFcnInit init, braid_PtFcnAccess access,
                       braid_PtFcnFree free, braid_PtFcnClone clone, braid_PtFcnSum sum,
                       braid_PtFcnSpatialNorm spatialnorm, braid_PtFcnBufSize bufsize,
                       braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack,
                       braid_PtFcnSCoarsen coarsen, braid_PtFcnSRefine refine,
                       braid_PtFcnStep step, braid_PtFcnInitBasis init_basis,
                       braid_PtFcnInnerProd innerprod);

#ifdef __cplusplus
}
#endif

#endif
