/*
 * Creating and destroying the solver, its options and the results it reports.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "delta.h"

braid_Int _braid_Error(const char *function, const char *fmt, ...)
{
   va_list args;
   int rank = 0, initialized = 0;
   MPI_Initialized(&initialized);
   if (initialized)
   {
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
   }
   fprintf(stderr, "braid error (rank %d): %s: ", rank, function);
   va_start(args, fmt);
   vfprintf(stderr, fmt, args);
   va_end(args);
   fputc('\n', stderr);
   fflush(stderr);
   return braid_ERROR_ARG;
}

braid_Int _braid_CallbackFailed(braid_Core core, const char *callback, braid_Int code)
{
   if (core->failed) return code; /* already reported (a failure inside a failure path) */
   core->failed = 1;
   core->failure_rank = core->myid;
   snprintf(core->failure_text, sizeof(core->failure_text),
            "rank %d: the %s callback failed (returned %d) at level %d, time index %d, "
            "iteration %d%s%.1900s", core->myid, callback, (int) code, (int) core->status.level,
            (int) core->status.tindex, (int) core->iter, core->pending_text[0] ? ": " : "",
            core->pending_text);
   if (!core->quiet_failures)
   {
      _braid_Error("braid_Drive", "%s; stopping the solve", core->failure_text);
   }
   _braid_NotifyFailure(core);
   return code;
}


braid_Int braid_Init(MPI_Comm comm_world, MPI_Comm comm, braid_Real tstart, braid_Real tstop,
                     braid_Int ntime, braid_App app, braid_PtFcnStep step,
                     braid_PtFcnInit init, braid_PtFcnClone clone, braid_PtFcnFree free_fn,
                     braid_PtFcnSum sum, braid_PtFcnSpatialNorm spatialnorm,
                     braid_PtFcnAccess access, braid_PtFcnBufSize bufsize,
                     braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack,
                     braid_Core *core_ptr)
{
   const char *fn = "braid_Init";
   const char *missing = NULL;
   braid_Core core;
   int l;

   if (core_ptr == NULL)
   {
      return _braid_Error(fn, "core_ptr is NULL; pass the address of a braid_Core");
   }
   *core_ptr = NULL;
   if (comm == MPI_COMM_NULL || comm_world == MPI_COMM_NULL)
   {
      return _braid_Error(fn, "comm and comm_world must be valid communicators, not MPI_COMM_NULL");
   }
   if (ntime < 1 || ntime > _BRAID_MAX_NTIME)
   {
      return _braid_Error(fn, "ntime = %d is invalid; it must be in [1, %d] (the number of time "
                          "steps: its ntime + 1 points must fit a braid_Int)", (int) ntime,
                          _BRAID_MAX_NTIME);
   }
   if (!isfinite(tstart) || !isfinite(tstop) || tstart == tstop)
   {
      return _braid_Error(fn, "tstart = %g, tstop = %g are invalid; they must be finite and differ",
                          tstart, tstop);
   }
   if (step == NULL) missing = "step";
   else if (init == NULL) missing = "init";
   else if (clone == NULL) missing = "clone";
   else if (free_fn == NULL) missing = "free";
   else if (sum == NULL) missing = "sum";
   else if (spatialnorm == NULL) missing = "spatialnorm";
   else if (bufsize == NULL) missing = "bufsize";
   else if (bufpack == NULL) missing = "bufpack";
   else if (bufunpack == NULL) missing = "bufunpack";
   if (missing != NULL)
   {
      return _braid_Error(fn, "the %s callback is NULL; step, init, clone, free, sum, "
                          "spatialnorm, bufsize, bufpack and bufunpack are required "
                          "(access may be NULL)", missing);
   }

   core = (braid_Core) calloc(1, sizeof(*core));
   if (core == NULL)
   {
      _braid_Error(fn, "out of memory");
      return braid_ERROR_MEMORY;
   }
   core->comm_world = comm_world;
   core->comm = comm;
   MPI_Comm_rank(comm, &core->myid);
   MPI_Comm_size(comm, &core->nprocs);
   MPI_Comm_rank(comm_world, &core->myid_world);
   core->collective_buffers = (_braid_CollectiveBuffers *) calloc(1, sizeof(_braid_CollectiveBuffers));
   if (core->collective_buffers == NULL)
   {
      free(core);
      _braid_Error(fn, "out of memory");
      return braid_ERROR_MEMORY;
   }
   if (MPI_Comm_dup(comm, &core->tcomm) != MPI_SUCCESS)
   {
      free(core->collective_buffers);
      free(core);
      return _braid_Error(fn, "MPI_Comm_dup failed (too many communicators? every failed solve "
                          "on several ranks keeps one until MPI_Finalize)");
   }
   core->tstart = tstart;
   core->tstop = tstop;
   core->ntime = ntime;
   core->gupper = ntime;
   core->app = app;

   core->step = step;
   core->init = init;
   core->clone = clone;
   core->free = free_fn;
   core->sum = sum;
   core->spatialnorm = spatialnorm;
   core->access = access;
   core->bufsize = bufsize;
   core->bufpack = bufpack;
   core->bufunpack = bufunpack;

   /* defaults of the interface */
   core->max_levels = 30;
   core->min_coarse = 2;
   core->cfactor_default = 2;
   core->nrelax_default = 1;
   core->cwt_default = 1.0;
   for (l = 0; l < _BRAID_MAX_LEVELS; l++)
   {
      core->cfactor[l] = 0;
      core->nrelax[l] = -1;
      core->cwt[l] = 0.0;
   }
   core->max_iter = 100;
   core->tol = 1.0e-09;
   core->rtol = 1;
   core->tnorm = 2;
   core->skip = 1;
   core->fmg = 0;
   core->nfmg = -1;
   core->nfmg_vcyc = 1;
   core->storage = -1;
   core->residual_computation = 1;
   core->max_refinements = 200;
   core->tpoints_cutoff = INT_MAX;
   core->old_fine_tolx = -1.0;
   core->delta_defer_level = 1;
   core->lyap_cglv = 1;
   core->print_level = 2;
   core->access_level = 1;
   core->io_level = 1;
   core->timings = 1;
   core->outfile = stdout;
   core->rnorm = braid_INVALID_RNORM;
   core->rnorm0 = braid_INVALID_RNORM;
   _braid_StatusInit(&core->status);
   core->status.core = core;

   *core_ptr = core;
   return 0;
}

braid_Int braid_Destroy(braid_Core core)
{
   if (core == NULL)
   {
      return 0;
   }
   _braid_CommCleanup(core);
   _braid_NoticeStop(core);
   if (core->adjoint) _braid_AdjointFree(core);
   _braid_DeltaFree(core);
   _braid_FreeHierarchy(core);
   free(core->rnorms);
   free(core->local_norms);
   free(core->local_norms_full);
   free(core->status.rdt_copy);
   free(core->estimate);
   free(core->timer_file_stem);
   if (core->failed && core->nprocs > 1)
   {
      /* MPI may still use these: messages nobody will receive keep MPI_Comm_free from
       * succeeding, and a collective the failed rank never joined may still write into the
       * buffers. They stay allocated until the process ends. */
      _braid_Abandon(core->collective_buffers);
   }
   else
   {
      free(core->collective_buffers);
      MPI_Comm_free(&core->tcomm);
   }
   if (core->outfile_owned)
   {
      if (_braid_printfile == core->outfile) _braid_printfile = NULL;
      fclose(core->outfile);
   }
   free(core);
   return 0;
}

braid_Int braid_SplitCommworld(const MPI_Comm *comm_world, braid_Int px, MPI_Comm *comm_x,
                               MPI_Comm *comm_t)
{
   int rank, size;
   if (comm_world == NULL || comm_x == NULL || comm_t == NULL)
   {
      return _braid_Error("braid_SplitCommworld", "comm_world, comm_x and comm_t must not be NULL");
   }
   MPI_Comm_rank(*comm_world, &rank);
   MPI_Comm_size(*comm_world, &size);
   if (px < 1 || size % px != 0)
   {
      return _braid_Error("braid_SplitCommworld", "px = %d is invalid; it must be >= 1 and "
                          "divide the number of ranks (%d)", (int) px, size);
   }
   /* ranks with the same rank / px share a spatial group; same rank % px share time */
   MPI_Comm_split(*comm_world, rank / px, rank, comm_x);
   MPI_Comm_split(*comm_world, rank % px, rank, comm_t);
   return 0;
}

/* ---- results ---- */

braid_Int braid_GetNumIter(braid_Core core, braid_Int *niter_ptr)
{
   CHECK_CORE("braid_GetNumIter");
   if (niter_ptr == NULL) return _braid_Error("braid_GetNumIter", "niter_ptr is NULL");
   *niter_ptr = core->niter;
   return 0;
}

braid_Int _braid_HistoryCopy(const char *fn, const braid_Real *values, braid_Int n,
                             braid_Int *nrequest_ptr, braid_Real *out)
{
   braid_Int first = 0, k;
   if (nrequest_ptr == NULL || (out == NULL && *nrequest_ptr != 0))
   {
      return _braid_Error(fn, "nrequest_ptr and rnorms must not be NULL");
   }
   if (*nrequest_ptr >= 0)
   {
      n = *nrequest_ptr < n ? *nrequest_ptr : n;
   }
   else
   {
      /* -*nrequest_ptr may not fit a braid_Int (INT_MIN): compare without negating */
      first = *nrequest_ptr > -n ? n + *nrequest_ptr : 0;
      n -= first;
   }
   for (k = 0; k < n; k++)
   {
      out[k] = values[first + k];
   }
   *nrequest_ptr = n;
   return 0;
}

braid_Int braid_GetRNorms(braid_Core core, braid_Int *nrequest_ptr, braid_Real *rnorms)
{
   CHECK_CORE("braid_GetRNorms");
   return _braid_HistoryCopy("braid_GetRNorms", core->rnorms, core->nrnorms, nrequest_ptr,
                             rnorms);
}

braid_Int braid_GetNLevels(braid_Core core, braid_Int *nlevels_ptr)
{
   CHECK_CORE("braid_GetNLevels");
   if (nlevels_ptr == NULL) return _braid_Error("braid_GetNLevels", "nlevels_ptr is NULL");
   *nlevels_ptr = core->nlevels;
   return 0;
}

braid_Int braid_GetMyID(braid_Core core, braid_Int *myid_ptr)
{
   CHECK_CORE("braid_GetMyID");
   if (myid_ptr == NULL) return _braid_Error("braid_GetMyID", "myid_ptr is NULL");
   *myid_ptr = core->myid;
   return 0;
}

braid_Int braid_WriteConvHistory(braid_Core core, const char *filename)
{
   FILE *f;
   braid_Int k;
   CHECK_CORE("braid_WriteConvHistory");
   if (filename == NULL) return _braid_Error("braid_WriteConvHistory", "filename is NULL");
   if (core->myid_world != 0) return 0;
   f = fopen(filename, "w");
   if (f == NULL)
   {
      return _braid_Error("braid_WriteConvHistory", "cannot open '%s' for writing", filename);
   }
   for (k = 0; k < core->nrnorms; k++)
   {
      fprintf(f, "%d %1.14e\n", (int) k, core->rnorms[k]);
   }
   fclose(f);
   return 0;
}

/* The generator of the C standard's rand() example, so that programs that draw initial
 * guesses from it get the same numbers as with the reference interface. */
static unsigned long rand_state = 1;

braid_Int braid_Rand(void)
{
   rand_state = rand_state * 1103515245UL + 12345UL;
   return (braid_Int) ((rand_state / 65536UL) % 32768UL);
}

/* ---- layerbraid extensions (braid_layerbraid.h) ---- */

braid_Int layerbraid_SetFailureText(braid_Core core, const char *text)
{
   CHECK_CORE("layerbraid_SetFailureText");
   snprintf(core->pending_text, sizeof(core->pending_text), "%s", text != NULL ? text : "");
   return 0;
}

braid_Int layerbraid_GetFailure(braid_Core core, braid_Int *rank_ptr, char *text, braid_Int len)
{
   CHECK_CORE("layerbraid_GetFailure");
   if (rank_ptr != NULL) *rank_ptr = core->failed ? core->failure_rank : -1;
   if (text != NULL && len > 0)
   {
      snprintf(text, (size_t) len, "%s", core->failed ? core->failure_text : "");
   }
   return 0;
}

braid_Int layerbraid_SetPollHook(braid_Core core, layerbraid_PtFcnPoll poll, void *data)
{
   CHECK_CORE("layerbraid_SetPollHook");
   core->poll = poll;
   core->poll_data = data;
   return 0;
}

braid_Int layerbraid_SetQuietFailures(braid_Core core, braid_Int quiet)
{
   CHECK_CORE("layerbraid_SetQuietFailures");
   core->quiet_failures = quiet != 0;
   return 0;
}

braid_Int layerbraid_SetTimeCalls(braid_Core core, braid_Int on)
{
   CHECK_CORE("layerbraid_SetTimeCalls");
   core->time_calls = on != 0;
   _braid_ProfileUpdate(core);
   return 0;
}
