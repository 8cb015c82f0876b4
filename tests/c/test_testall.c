/*
 * braid_TestAll and its parts: a correct app passes, a broken one fails, and the log reads in
 * upstream XBraid's words (the exact lines scripts written for XBraid's logs grep for).
 *
 * Every rank passes its own log file; only rank 0 of comm_x may write to it.
 */
#include "test_app.h"

static int broken_sum(braid_App app, double alpha, braid_Vector x, double beta, braid_Vector y)
{
   int k;
   (void) app;
   (void) beta; /* ignores beta: y = alpha x */
   for (k = 0; k < NDIM; k++) y->v[k] = alpha * x->v[k];
   return 0;
}

static int failing_init(braid_App app, double t, braid_Vector *u_ptr)
{
   (void) app;
   (void) t;
   *u_ptr = NULL;
   return 3;
}

/* Coarsening and refinement that keep every value: refine(coarsen(u)) == u. */
static int copy_space(braid_App app, braid_Vector u, braid_Vector *v_ptr,
                      braid_CoarsenRefStatus status)
{
   (void) status;
   return app_clone(app, u, v_ptr);
}

/* The residual of the forward-Euler step: r = ustop - step(r), 0 for ustop = step(u). */
static int euler_residual(braid_App app, braid_Vector ustop, braid_Vector r,
                          braid_StepStatus status)
{
   double tstart, tstop;
   int k;
   (void) app;
   braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
   euler_step(tstart, tstop, r->v);
   for (k = 0; k < NDIM; k++) r->v[k] = ustop->v[k] - r->v[k];
   return 0;
}

static int naccess = 0, access_wrapper_test = 0;

static int counting_access(braid_App app, braid_Vector u, braid_AccessStatus status)
{
   (void) app;
   (void) u;
   naccess++;
   braid_AccessStatusGetWrapperTest(status, &access_wrapper_test);
   return 0;
}

static FILE *log_fp;

/* Everything written to log_fp since the last call; the file is emptied. Free the result. */
static char *take_log(void)
{
   long n;
   char *text;
   fflush(log_fp);
   n = ftell(log_fp);
   text = (char *) calloc((size_t) n + 1, 1);
   rewind(log_fp);
   if (n > 0 && fread(text, 1, (size_t) n, log_fp) != (size_t) n) text[0] = '\0';
   fclose(log_fp);
   log_fp = tmpfile();
   return text;
}

/* The lines, each ending in a newline, after `start` (NULL for none). */
static void join_lines(char *text, size_t len, const char *start, const char *const *lines,
                       int nlines)
{
   int k;
   snprintf(text, len, "%s", start != NULL ? start : "");
   for (k = 0; k < nlines; k++)
   {
      strncat(text, lines[k], len - strlen(text) - 1);
      strncat(text, "\n", len - strlen(text) - 1);
   }
}

/* How many times the lines occur in the log one after another, each a whole line. */
static int count_block(const char *log, const char *const *lines, int nlines)
{
   char block[2048], *whole = (char *) malloc(strlen(log) + 2);
   const char *p;
   int count = 0;
   join_lines(block, sizeof block, "\n", lines, nlines);
   whole[0] = '\n';
   strcpy(whole + 1, log);
   for (p = strstr(whole, block); p != NULL; p = strstr(p + 1, block)) count++;
   free(whole);
   return count;
}

static int count_line(const char *log, const char *line)
{
   return count_block(log, &line, 1);
}

static int ends_with(const char *log, const char *tail)
{
   size_t n = strlen(log), m = strlen(tail);
   return n >= m && strcmp(log + n - m, tail) == 0;
}

#define LINE_COUNT(log, line, n) \
   EXPECT(count_line(log, line) == (n), "the line \"%s\" %d times, expected %d", line, \
          count_line(log, line), n)
#define BLOCK(log, lines, n) \
   EXPECT(count_block(log, lines, (int) (sizeof(lines) / sizeof(lines[0]))) == (n), \
          "the block starting \"%s\" %d times, expected %d", lines[0], \
          count_block(log, lines, (int) (sizeof(lines) / sizeof(lines[0]))), n)

static const char *const testall_done =
   "Finished braid_TestAll: no fails detected, however some results must be\n"
   "user-interpreted in the log messages\n";

static void check_correct_app(my_App *app, int rank)
{
   static const char *const init_access[] = {
      "Starting braid_TestInitAccess",
      "   braid_TestInitAccess:   Starting Test 1",
      "   braid_TestInitAccess:   u = init(t=0.00e+00)",
      "   braid_TestInitAccess:   free(u) ",
      "Finished braid_TestInitAccess"};
   static const char *const sum[] = {
      "Starting braid_TestSum",
      "   braid_TestSum:   Starting Test 1",
      "   braid_TestSum:   u = init(t=0.00e+00)",
      "   braid_TestSum:   v = clone(u)",
      "   braid_TestSum:   v = u - v",
      "   braid_TestSum:   Starting Test 2"};
   static const char *const norm_test1[] = {
      "   braid_TestSpatialNorm:   Starting Test 1",
      "   braid_TestSpatialNorm:   u = init(t=1.00e-01)",
      "   braid_TestSpatialNorm:   spatialnorm(u) = 3.74e-01",
      "   braid_TestSpatialNorm:   v = clone(u)",
      "   braid_TestSpatialNorm:   v = u - v",
      "   braid_TestSpatialNorm:   spatialnorm(v) = 0.00e+00",
      "   braid_TestSpatialNorm:   free(v) ",
      "   braid_TestSpatialNorm:   Test 1 Passed"};
   static const char *const norm_test3[] = {
      "   braid_TestSpatialNorm:   Starting Test 3",
      "   braid_TestSpatialNorm:   w = clone(u)",
      "   braid_TestSpatialNorm:   w = 3u + 0w",
      "   braid_TestSpatialNorm:   spatialnorm(w) = 1.12e+00"};
   static const char *const buf[] = {
      "   braid_TestBuf:   size = bufsize() = 24",
      "   braid_TestBuf:   buffer = bufpack(u)",
      "   braid_TestBuf:   v = bufunpack(buffer)",
      "   braid_TestBuf:   v = u - v",
      "   braid_TestBuf:   spatialnorm(v) = 0.00e+00"};
   static const char *const coarsen_refine[] = {
      "   braid_TestCoarsenRefine:   cu = coarsen(u)",
      "   braid_TestCoarsenRefine:   fu = refine(cu)"};
   static const char *const residual[] = {
      "   braid_TestResidual:   r = residual(v, r)",
      "   braid_TestResidual:   spatialnorm(u) = 2.19e+00",
      "   braid_TestResidual:   spatialnorm(r) = 0.00e+00"};
   char *log;
   int k;

   EXPECT(braid_TestAll(app, MPI_COMM_WORLD, log_fp, 0.0, 0.1, 0.2, app_init, app_free, app_clone,
                        app_sum, app_norm, app_bufsize, app_bufpack, app_bufunpack, copy_space,
                        copy_space, euler_residual, app_step) == 1, "a correct app passes");
   log = take_log();
   if (rank == 0)
   {
      LINE_COUNT(log, "Starting braid_TestAll", 1);
      BLOCK(log, init_access, 1);   /* at t; the other at t + fdt */
      LINE_COUNT(log, "Finished braid_TestInitAccess", 2);
      LINE_COUNT(log, "Finished braid_TestClone", 2);
      BLOCK(log, sum, 1);
      LINE_COUNT(log, "Finished braid_TestSum", 2);
      BLOCK(log, norm_test1, 1);
      BLOCK(log, norm_test3, 1);
      for (k = 1; k <= 4; k++)
      {
         char line[64];
         snprintf(line, sizeof line, "   braid_TestSpatialNorm:   Test %d Passed", k);
         LINE_COUNT(log, line, 2);
      }
      LINE_COUNT(log, "Finished braid_TestSpatialNorm: all tests passed successfully", 2);
      BLOCK(log, buf, 2);
      LINE_COUNT(log, "   braid_TestBuf:   Test 1 Passed", 2);
      LINE_COUNT(log, "Finished braid_TestBuf: all tests passed successfully", 2);
      BLOCK(log, coarsen_refine, 1);
      LINE_COUNT(log, "   braid_TestCoarsenRefine:   user-interpreted: spatialnorm(fu - u) = "
                      "0.00e+00, small when coarsening loses little of u", 1);
      LINE_COUNT(log, "Finished braid_TestCoarsenRefine", 1);
      BLOCK(log, residual, 1);
      LINE_COUNT(log, "Finished braid_TestResidual", 1);
      EXPECT(strstr(log, "Failed") == NULL && strstr(log, "error") == NULL,
             "no Failed or error line for a correct app");
      EXPECT(ends_with(log, testall_done), "the log ends with the two closing lines");
   }
   else
   {
      EXPECT(log[0] == '\0', "rank %d wrote %d bytes of log", rank, (int) strlen(log));
   }
   free(log);
}

static void check_broken_sum(my_App *app, int rank)
{
   char *log;

   EXPECT(braid_TestAll(app, MPI_COMM_WORLD, log_fp, 0.0, 0.1, 0.2, app_init, app_free, app_clone,
                        broken_sum, app_norm, app_bufsize, app_bufpack, app_bufunpack, NULL,
                        NULL, NULL, app_step) == 0, "a sum that ignores beta fails");
   log = take_log();
   if (rank == 0)
   {
      /* u - clone(u) is u: its norm is not 0 */
      LINE_COUNT(log, "   braid_TestSpatialNorm:   spatialnorm(v) = 2.19e+00", 1);
      LINE_COUNT(log, "   braid_TestSpatialNorm:   Test 1 Failed", 2);
      LINE_COUNT(log, "Finished braid_TestSpatialNorm: some tests failed", 2);
      LINE_COUNT(log, "   braid_TestBuf:   Test 1 Failed", 2);
      LINE_COUNT(log, "Finished braid_TestBuf: some tests failed", 2);
      LINE_COUNT(log, "Finished braid_TestSum", 2);  /* nothing it can check */
      EXPECT(strstr(log, "Passed") == NULL, "no check passes with this sum");
      EXPECT(strstr(log, "no fails detected") == NULL, "no success line");
      EXPECT(ends_with(log, "Finished braid_TestAll: 4 of 10 tests failed, "
                            "see the Failed lines above\n"), "the closing line counts the fails");
      EXPECT(strstr(log, "Starting braid_TestCoarsenRefine") == NULL
             && strstr(log, "Starting braid_TestResidual") == NULL,
             "no coarsen/refine or residual test without those callbacks");
   }
   free(log);

   EXPECT(braid_TestSpatialNorm(app, MPI_COMM_WORLD, log_fp, 0.0, app_init, app_free, app_clone,
                                broken_sum, app_norm) == 0, "TestSpatialNorm alone fails too");
   free(take_log());
}

static void check_init_access(my_App *app, int rank)
{
   static const char *const init_access[] = {
      "Starting braid_TestInitAccess",
      "   braid_TestInitAccess:   Starting Test 1",
      "   braid_TestInitAccess:   u = init(t=0.00e+00)",
      "   braid_TestInitAccess:   free(u) ",
      "Finished braid_TestInitAccess"};
   static const char *const init_fails[] = {
      "Starting braid_TestInitAccess",
      "   braid_TestInitAccess:   Starting Test 1",
      "   braid_TestInitAccess:   u = init(t=0.00e+00)",
      "   braid_TestInitAccess:   error: init returned error code 3",
      "   braid_TestInitAccess:   Test 1 Failed",
      "Finished braid_TestInitAccess: some tests failed"};
   char *log;

   EXPECT(braid_TestInitAccess(app, MPI_COMM_WORLD, log_fp, 0.0, app_init, counting_access,
                               app_free) == 1, "TestInitAccess passes");
   EXPECT(naccess == 1 && access_wrapper_test == 1,
          "access called once, as a wrapper test (%d calls, wrapper_test %d)", naccess,
          access_wrapper_test);
   log = take_log();
   if (rank == 0)
   {
      char whole[1024];
      join_lines(whole, sizeof whole, NULL, init_access, 5);
      EXPECT(strcmp(log, whole) == 0, "the log of TestInitAccess is exactly\n%s\nnot\n%s",
             whole, log);
   }
   free(log);

   EXPECT(braid_TestInitAccess(app, MPI_COMM_WORLD, log_fp, 0.0, failing_init, counting_access,
                               app_free) == 0, "an init that returns an error fails");
   log = take_log();
   if (rank == 0) BLOCK(log, init_fails, 1);
   free(log);
}

int main(int argc, char *argv[])
{
   my_App *app;
   int rank;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   app = app_create(8);
   log_fp = tmpfile();
   EXPECT(log_fp != NULL, "tmpfile for the log");
   if (log_fp != NULL)
   {
      check_correct_app(app, rank);
      check_broken_sum(app, rank);
      check_init_access(app, rank);
      fclose(log_fp);
   }
   app_destroy(app);
   return finish("testall");
}
