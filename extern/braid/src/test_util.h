/*
 * The braid_Test* routines' shared machinery (test_util.c): the log in XBraid's words (see
 * test.c's header), the pass/fail bookkeeping, and the user's callbacks called with one log
 * line each. Used by test.c and delta_test.c.
 */
#ifndef LAYERBRAID_TEST_UTIL_H
#define LAYERBRAID_TEST_UTIL_H

#include <stdio.h>

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

/* external names in the engine's namespace, short names in the test code */
#define test_access _braid_test_access
#define test_begin _braid_test_begin
#define test_clone _braid_test_clone
#define test_close _braid_test_close
#define test_end _braid_test_end
#define test_expect_ratio _braid_test_expect_ratio
#define test_expect_zero _braid_test_expect_zero
#define test_fail _braid_test_fail
#define test_free _braid_test_free
#define test_init _braid_test_init
#define test_made _braid_test_made
#define test_need _braid_test_need
#define test_norm _braid_test_norm
#define test_print _braid_test_print
#define test_rc _braid_test_rc
#define test_start _braid_test_start
#define test_status _braid_test_status
#define test_sum _braid_test_sum

void test_print(const TestCtx *c, int step, const char *fmt, ...) TEST_PRINTF(3, 4);
void test_fail(TestCtx *c, const char *fmt, ...) TEST_PRINTF(2, 3);
void test_begin(TestCtx *c, MPI_Comm comm_x, FILE *fp, const char *name, int checks);
void test_start(TestCtx *c);
void test_close(const TestCtx *c);
braid_Int test_end(TestCtx *c);
/* A NULL callback (present = 0) or a nonzero return code fails the test; 1 if all is well. */
int test_need(TestCtx *c, int present, const char *callback);
int test_rc(TestCtx *c, braid_Int rc, const char *callback);
void test_status(_braid_Status *s, braid_Real t, braid_Real tstop, braid_Int level);
/* The vector a callback returned (rc) in *u; NULL (a failure) when rc or the vector is bad. */
braid_Vector test_made(TestCtx *c, braid_Int rc, const braid_Vector *u, const char *callback);
braid_Vector test_init(TestCtx *c, braid_App app, braid_PtFcnInit init, braid_Real t,
                       const char *un);
braid_Vector test_clone(TestCtx *c, braid_App app, braid_PtFcnClone clone,
                        braid_Vector u, const char *un, const char *vn);
void test_free(TestCtx *c, braid_App app, braid_PtFcnFree free_fn, braid_Vector *u,
               const char *un);
int test_sum(TestCtx *c, braid_App app, braid_PtFcnSum sum, braid_Real alpha,
             braid_Vector x, const char *xn, braid_Real beta, braid_Vector y,
             const char *yn);
int test_norm(TestCtx *c, braid_App app, braid_PtFcnSpatialNorm spatialnorm,
              braid_Vector u, const char *un, braid_Real *norm);
void test_access(TestCtx *c, braid_App app, braid_PtFcnAccess access, braid_Vector u,
                 braid_Real t);
void test_expect_zero(TestCtx *c, braid_Real value, braid_Real scale, braid_Real rtol,
                      const char *what);
void test_expect_ratio(TestCtx *c, braid_Real num, braid_Real den, braid_Real expected,
                       const char *what);
#define test_line(c, ...) test_print(c, 0, __VA_ARGS__)
#define test_log(c, ...) test_print(c, 1, __VA_ARGS__)

#endif
