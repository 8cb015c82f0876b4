/*
 * Sizes at the engine's limits: an ntime whose points do not fit a braid_Int is refused by
 * braid_Init; a representable ntime whose storage cannot be allocated, and any allocation
 * that fails inside braid_Drive, end in braid_ERROR_MEMORY on the rank that failed (and
 * layerbraid_ERROR_REMOTE on the others, which hear of it), never in a crash or a hang.
 *
 * Allocations are made to fail deterministically: in a plain build RLIMIT_AS caps the address
 * space at what the process uses after MPI_Init plus 512 MiB; under AddressSanitizer (which
 * reserves terabytes of address space, so RLIMIT_AS cannot work) its allocator returns NULL
 * for any request over 1 GiB. Every failing request below is far larger than both caps, and
 * every allocation of the successful solves far smaller. Run under the sanitizers, the
 * solves also check that the size arithmetic near INT_MAX never overflows.
 */
#include <limits.h>
#include <sys/resource.h>

#include "test_app.h"
#include "braid_layerbraid.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifdef UNDER_ASAN
/* Read before ASAN_OPTIONS, which still adds its own flags (detect_leaks=1 in CTest). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
   return "allocator_may_return_null=1:max_allocation_size_mb=1024";
}
#endif

/* A bufsize that asks for HUGE_BUFFER bytes on the last rank (its message buffers then
 * cannot be allocated, in the middle of the first cycle) and the real size elsewhere. */
#define HUGE_BUFFER (1536 << 20)

static int huge_bufsize_on_last_rank(braid_App app, int *size_ptr, braid_BufferStatus status)
{
   int rank, nprocs;
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
   app_bufsize(app, size_ptr, status);
   if (rank == nprocs - 1) *size_ptr = HUGE_BUFFER;
   return 0;
}

static void limit_address_space(void)
{
#ifndef UNDER_ASAN
   long pages = 0;
   struct rlimit limit;
   FILE *f = fopen("/proc/self/statm", "r");
   rlim_t used;
   if (f == NULL || fscanf(f, "%ld", &pages) != 1) pages = 1L << 20; /* 4 GiB of 4 KiB pages */
   if (f != NULL) fclose(f);
   used = (rlim_t) pages * 4096;
   getrlimit(RLIMIT_AS, &limit);
   if (limit.rlim_max == RLIM_INFINITY || limit.rlim_max > used + (512u << 20))
   {
      limit.rlim_cur = used + (512u << 20);
   }
   if (setrlimit(RLIMIT_AS, &limit) != 0) perror("setrlimit(RLIMIT_AS)");
#endif
}

/* An app that records nothing (its ntime may have no room for a solution array). */
static my_App bare_app(int ntime)
{
   my_App app;
   memset(&app, 0, sizeof(app));
   app.ntime = ntime;
   app.nan_from_iter = -1;
   app.fail_from_iter = -1;
   return app;
}

static int init_core(my_App *app, braid_Core *core)
{
   return braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, app->ntime, app, app_step,
                     app_init, app_clone, app_free, app_sum, app_norm, app_access, app_bufsize,
                     app_bufpack, app_bufunpack, core);
}

/* braid_Init refuses ntime and leaves the core NULL. */
static void expect_refused(int ntime)
{
   my_App app = bare_app(ntime);
   braid_Core core = NULL;
   int err = init_core(&app, &core);
   EXPECT(err == braid_ERROR_ARG && core == NULL, "braid_Init(ntime = %d) returned %d", ntime,
          err);
   braid_Destroy(core);
}

/* A representable ntime whose storage does not fit: braid_Drive returns braid_ERROR_MEMORY
 * on every rank (each fails on its own block), and the core is still destroyed cleanly. */
static void expect_out_of_memory(int ntime, int max_levels, int min_coarse, int cfactor)
{
   my_App app = bare_app(ntime);
   braid_Core core = NULL;
   int err, rank = -2;
   char text[layerbraid_FAILURE_TEXT_MAX];
   EXPECT(init_core(&app, &core) == 0 && core != NULL, "braid_Init(ntime = %d)", ntime);
   if (core == NULL) return;
   braid_SetPrintLevel(core, 0);
   braid_SetMaxLevels(core, max_levels);
   braid_SetMinCoarse(core, min_coarse);
   braid_SetCFactor(core, -1, cfactor);
   err = braid_Drive(core);
   EXPECT(err == braid_ERROR_MEMORY, "braid_Drive(ntime = %d, max_levels = %d, cfactor = %d) "
          "returned %d, not braid_ERROR_MEMORY", ntime, max_levels, cfactor, err);
   layerbraid_GetFailure(core, &rank, text, (int) sizeof(text));
   EXPECT(strstr(text, "out of memory") != NULL, "failure text '%s'", text);
   EXPECT(app.nsteps == 0, "%d steps taken", app.nsteps);
   EXPECT(braid_Drive(core) != 0, "a second braid_Drive after the failure");
   braid_Destroy(core);
}

/* One rank's message buffers cannot be allocated: it returns braid_ERROR_MEMORY, the others
 * stop with layerbraid_ERROR_REMOTE and learn which rank ran out of memory. */
static void expect_one_rank_out_of_memory(int myid, int nprocs)
{
   my_App *app = app_create(64);
   braid_Core core = NULL;
   int err, rank = -2;
   char text[layerbraid_FAILURE_TEXT_MAX];
   EXPECT(braid_Init(MPI_COMM_WORLD, MPI_COMM_WORLD, 0.0, 1.0, app->ntime, app, app_step,
                     app_init, app_clone, app_free, app_sum, app_norm, app_access,
                     huge_bufsize_on_last_rank, app_bufpack, app_bufunpack, &core) == 0,
          "braid_Init");
   braid_SetPrintLevel(core, 0);
   braid_SetMaxLevels(core, 3);
   err = braid_Drive(core);
   layerbraid_GetFailure(core, &rank, text, (int) sizeof(text));
   if (myid == nprocs - 1)
   {
      EXPECT(err == braid_ERROR_MEMORY, "the rank without memory returned %d", err);
   }
   else
   {
      EXPECT(err == layerbraid_ERROR_REMOTE, "rank %d returned %d, not layerbraid_ERROR_REMOTE",
             myid, err);
   }
   EXPECT(rank == nprocs - 1, "failed rank reported as %d", rank);
   EXPECT(strstr(text, "out of memory") != NULL && strstr(text, "message buffer") != NULL,
          "failure text '%s'", text);
   braid_Destroy(core);
   app_destroy(app);
}

/* max_iter = INT_MAX is valid: the residual history must not be sized max_iter + 1. */
static void expect_huge_max_iter_solves(void)
{
   my_App *app = app_create(32);
   braid_Core core = NULL;
   int niter = 0;
   EXPECT(core_create(app, 1.0, &core) == 0, "braid_Init");
   braid_SetPrintLevel(core, 0);
   braid_SetMaxIter(core, INT_MAX);
   braid_SetAbsTol(core, 1e-10);
   EXPECT(braid_Drive(core) == 0, "braid_Drive with max_iter = INT_MAX");
   braid_GetNumIter(core, &niter);
   EXPECT(niter > 0 && niter < 100, "converged in %d iterations", niter);
   braid_Destroy(core);
   app_destroy(app);
}

int main(int argc, char *argv[])
{
   int myid, nprocs;
   MPI_Init(&argc, &argv);
   MPI_Comm_rank(MPI_COMM_WORLD, &myid);
   MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
   limit_address_space();

   /* ntime + 1 points must fit a braid_Int */
   expect_refused(INT_MAX);
   expect_refused(INT_MIN);

   /* the largest accepted ntime, with the default hierarchy, one level (the coarsest-level
    * C-point spacing is then INT_MAX) and a cfactor past half of INT_MAX (the coarse index of
    * a block start, rounded up, is then near INT_MAX); and 2^30 steps */
   expect_out_of_memory(INT_MAX - 1, 30, 2, 2);
   expect_out_of_memory(INT_MAX - 1, 1, 2, 2);
   expect_out_of_memory(INT_MAX - 1, 2, 1, (1 << 30) + 1);
   expect_out_of_memory(1 << 30, 30, 2, 2);

   if (nprocs > 1) expect_one_rank_out_of_memory(myid, nprocs);
   expect_huge_max_iter_solves();
   return finish("engine_limits");
}
