/*
 * Solver options: braid_Set* with their range checks, and the per-level lookups.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

/* ---- per-level option lookup ---- */

braid_Int _braid_LevelCFactor(braid_Core core, braid_Int level)
{
   if (level < _BRAID_MAX_LEVELS && core->cfactor[level] > 0)
   {
      return core->cfactor[level];
   }
   return core->cfactor_default;
}

braid_Int _braid_LevelNRelax(braid_Core core, braid_Int level)
{
   if (level < _BRAID_MAX_LEVELS && core->nrelax[level] >= 0)
   {
      return core->nrelax[level];
   }
   return core->nrelax_default;
}

braid_Real _braid_LevelCRelaxWt(braid_Core core, braid_Int level)
{
   if (level < _BRAID_MAX_LEVELS && core->cwt[level] > 0.0)
   {
      return core->cwt[level];
   }
   return core->cwt_default;
}

/* ---- options ---- */

static braid_Int check_level(const char *fn, braid_Int level)
{
   if (level < -1)
   {
      return _braid_Error(fn, "level = %d is invalid; use -1 for every level or a level >= 0",
                          (int) level);
   }
   return 0;
}

braid_Int braid_SetMaxLevels(braid_Core core, braid_Int max_levels)
{
   CHECK_CORE("braid_SetMaxLevels");
   CHECK_NOT_BUILT("braid_SetMaxLevels");
   if (max_levels < 1)
   {
      return _braid_Error("braid_SetMaxLevels", "max_levels = %d is invalid; it must be >= 1",
                          (int) max_levels);
   }
   core->max_levels = max_levels;
   return 0;
}

braid_Int braid_SetMinCoarse(braid_Core core, braid_Int min_coarse)
{
   CHECK_CORE("braid_SetMinCoarse");
   CHECK_NOT_BUILT("braid_SetMinCoarse");
   if (min_coarse < 1)
   {
      return _braid_Error("braid_SetMinCoarse", "min_coarse = %d is invalid; it must be >= 1",
                          (int) min_coarse);
   }
   core->min_coarse = min_coarse;
   return 0;
}

braid_Int braid_SetCFactor(braid_Core core, braid_Int level, braid_Int cfactor)
{
   CHECK_CORE("braid_SetCFactor");
   CHECK_NOT_BUILT("braid_SetCFactor");
   if (check_level("braid_SetCFactor", level)) return braid_ERROR_ARG;
   if (cfactor < 2)
   {
      return _braid_Error("braid_SetCFactor", "cfactor = %d is invalid; it must be >= 2",
                          (int) cfactor);
   }
   if (level == -1)
   {
      core->cfactor_default = cfactor;
   }
   else if (level < _BRAID_MAX_LEVELS)
   {
      core->cfactor[level] = cfactor;
   }
   return 0;
}

braid_Int braid_SetNRelax(braid_Core core, braid_Int level, braid_Int nrelax)
{
   CHECK_CORE("braid_SetNRelax");
   if (check_level("braid_SetNRelax", level)) return braid_ERROR_ARG;
   if (nrelax < 0)
   {
      return _braid_Error("braid_SetNRelax", "nrelax = %d is invalid; it must be >= 0 "
                          "(0 = F-relaxation, 1 = FCF, 2 = FCFCF, ...)", (int) nrelax);
   }
   if (level == -1)
   {
      int l;
      core->nrelax_default = nrelax;
      for (l = 0; l < _BRAID_MAX_LEVELS; l++)
      {
         core->nrelax[l] = -1;
      }
   }
   else if (level < _BRAID_MAX_LEVELS)
   {
      core->nrelax[level] = nrelax;
   }
   return 0;
}

braid_Int braid_SetCRelaxWt(braid_Core core, braid_Int level, braid_Real Cwt)
{
   CHECK_CORE("braid_SetCRelaxWt");
   if (check_level("braid_SetCRelaxWt", level)) return braid_ERROR_ARG;
   if (!(Cwt > 0.0 && Cwt <= 2.0))
   {
      return _braid_Error("braid_SetCRelaxWt", "Cwt = %g is invalid; it must be in (0, 2]", Cwt);
   }
   if (level == -1)
   {
      core->cwt_default = Cwt;
   }
   else if (level < _BRAID_MAX_LEVELS)
   {
      core->cwt[level] = Cwt;
   }
   return 0;
}

braid_Int braid_SetMaxIter(braid_Core core, braid_Int max_iter)
{
   CHECK_CORE("braid_SetMaxIter");
   if (max_iter < 1)
   {
      return _braid_Error("braid_SetMaxIter", "max_iter = %d is invalid; it must be >= 1",
                          (int) max_iter);
   }
   core->max_iter = max_iter;
   return 0;
}

static braid_Int set_tol(braid_Core core, const char *fn, braid_Real tol, braid_Int relative)
{
   CHECK_CORE(fn);
   if (!(tol >= 0.0) || !isfinite(tol))
   {
      return _braid_Error(fn, "tolerance = %g is invalid; it must be finite and >= 0", tol);
   }
   core->tol = tol;
   core->rtol = relative;
   return 0;
}

braid_Int braid_SetAbsTol(braid_Core core, braid_Real atol)
{
   return set_tol(core, "braid_SetAbsTol", atol, 0);
}

braid_Int braid_SetRelTol(braid_Core core, braid_Real rtol)
{
   return set_tol(core, "braid_SetRelTol", rtol, 1);
}

braid_Int _braid_SetIntOption(braid_Core core, const char *fn, const char *name, braid_Int value,
                         braid_Int lo, braid_Int hi, braid_Int *field)
{
   CHECK_CORE(fn);
   if (value < lo || value > hi)
   {
      return _braid_Error(fn, "%s = %d is invalid; it must be in [%d, %d]", name, (int) value,
                          (int) lo, (int) hi);
   }
   *field = value;
   return 0;
}

braid_Int braid_SetTemporalNorm(braid_Core core, braid_Int tnorm)
{
   return _braid_SetIntOption(core, "braid_SetTemporalNorm", "tnorm (1 sum, 2 l2, 3 max)", tnorm, 1, 3,
                  core ? &core->tnorm : NULL);
}

braid_Int braid_SetSkip(braid_Core core, braid_Int skip)
{
   return _braid_SetIntOption(core, "braid_SetSkip", "skip", skip, 0, 1, core ? &core->skip : NULL);
}

braid_Int braid_SetFMG(braid_Core core)
{
   CHECK_CORE("braid_SetFMG");
   core->fmg = 1;
   return 0;
}

braid_Int braid_SetNFMG(braid_Core core, braid_Int k)
{
   CHECK_CORE("braid_SetNFMG");
   if (k < -1)
   {
      return _braid_Error("braid_SetNFMG", "k = %d is invalid; it must be >= 0, or -1 for F-cycles "
                          "throughout", (int) k);
   }
   core->fmg = 1;
   core->nfmg = k;
   return 0;
}

braid_Int braid_SetNFMGVcyc(braid_Core core, braid_Int n)
{
   return _braid_SetIntOption(core, "braid_SetNFMGVcyc", "n", n, 1, 1000000, core ? &core->nfmg_vcyc : NULL);
}

braid_Int braid_SetStorage(braid_Core core, braid_Int storage)
{
   CHECK_CORE("braid_SetStorage");
   CHECK_NOT_BUILT("braid_SetStorage");
   return _braid_SetIntOption(core, "braid_SetStorage",
                  "storage (-1 C-points only, 0 all points, l > 0 all points from level l)",
                  storage, -2, _BRAID_MAX_LEVELS, &core->storage);
}

braid_Int braid_SetSeqSoln(braid_Core core, braid_Int seq_soln)
{
   return _braid_SetIntOption(core, "braid_SetSeqSoln", "seq_soln", seq_soln, 0, 1,
                  core ? &core->seq_soln : NULL);
}

braid_Int braid_SetFinalFCRelax(braid_Core core)
{
   CHECK_CORE("braid_SetFinalFCRelax");
   core->final_fcrelax = 1;
   return 0;
}

braid_Int braid_SetResidualComputation(braid_Core core, braid_Int residual_computation)
{
   return _braid_SetIntOption(core, "braid_SetResidualComputation", "residual_computation",
                  residual_computation, 0, 1, core ? &core->residual_computation : NULL);
}

braid_Int braid_SetRevertedRanks(braid_Core core, braid_Int reverted_ranks)
{
   CHECK_CORE("braid_SetRevertedRanks");
   CHECK_NOT_BUILT("braid_SetRevertedRanks");
   return _braid_SetIntOption(core, "braid_SetRevertedRanks", "reverted_ranks", reverted_ranks, 0, 1,
                  &core->reverted_ranks);
}

braid_Int braid_SetBufAllocFree(braid_Core core, braid_PtFcnBufAlloc bufalloc,
                                braid_PtFcnBufFree buffree)
{
   CHECK_CORE("braid_SetBufAllocFree");
   if ((bufalloc == NULL) != (buffree == NULL))
   {
      return _braid_Error("braid_SetBufAllocFree", "bufalloc and buffree must both be set "
                          "or both be NULL");
   }
   if (core->send_msg.buffer != NULL || core->recv_msg.buffer != NULL)
   {
      return _braid_Error("braid_SetBufAllocFree", "buffers are already allocated; set this "
                          "before braid_Drive");
   }
   core->bufalloc = bufalloc;
   core->buffree = buffree;
   return 0;
}

braid_Int braid_SetSync(braid_Core core, braid_PtFcnSync sync)
{
   CHECK_CORE("braid_SetSync");
   core->sync = sync;
   return 0;
}

braid_Int braid_SetPrintLevel(braid_Core core, braid_Int print_level)
{
   return _braid_SetIntOption(core, "braid_SetPrintLevel", "print_level", print_level, 0, 3,
                  core ? &core->print_level : NULL);
}

braid_Int braid_SetPrintFile(braid_Core core, const char *printfile_name)
{
   FILE *f;
   CHECK_CORE("braid_SetPrintFile");
   if (printfile_name == NULL)
   {
      return _braid_Error("braid_SetPrintFile", "the file name is NULL");
   }
   if (core->myid_world != 0)
   {
      return 0; /* only rank 0 prints */
   }
   f = fopen(printfile_name, "w");
   if (f == NULL)
   {
      return _braid_Error("braid_SetPrintFile", "cannot open '%s' for writing", printfile_name);
   }
   if (core->outfile_owned)
   {
      fclose(core->outfile);
   }
   core->outfile = f;
   core->outfile_owned = 1;
   _braid_printfile = f;
   return 0;
}

braid_Int braid_SetDefaultPrintFile(braid_Core core)
{
   return braid_SetPrintFile(core, "braid_runtime.out");
}

braid_Int braid_SetFileIOLevel(braid_Core core, braid_Int io_level)
{
   /* accepted for compatibility; this engine writes no cycle file */
   return _braid_SetIntOption(core, "braid_SetFileIOLevel", "io_level", io_level, 0, 1,
                  core ? &core->io_level : NULL);
}

braid_Int braid_SetAccessLevel(braid_Core core, braid_Int access_level)
{
   return _braid_SetIntOption(core, "braid_SetAccessLevel", "access_level", access_level, 0, 2,
                  core ? &core->access_level : NULL);
}

braid_Int braid_SetTimings(braid_Core core, braid_Int timing_level)
{
   braid_Int err = _braid_SetIntOption(core, "braid_SetTimings", "timing_level", timing_level,
                                       0, 2, core ? &core->timings : NULL);
   if (!err) _braid_ProfileUpdate(core);
   return err;
}

