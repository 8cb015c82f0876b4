/*
 * Output on rank 0 of comm_world, in the line formats of the XBraid interface (programs and
 * test harnesses parse them).
 */
#include "core_internal.h"

static int prints(braid_Core core, braid_Int min_level)
{
   return core->myid_world == 0 && core->print_level >= min_level;
}

void _braid_PrintMessage(braid_Core core, const char *message)
{
   if (!prints(core, 1)) return;
   fputs(message, core->outfile);
   fflush(core->outfile);
}

void _braid_PrintBegin(braid_Core core)
{
   if (!prints(core, 1)) return;
   fprintf(core->outfile, "  Braid: Begin simulation, %d time steps\n", (int) core->ntime);
   fflush(core->outfile);
}

void _braid_PrintIteration(braid_Core core)
{
   braid_Int k = core->nrnorms - 1;
   braid_Real wtime = MPI_Wtime() - core->wall_start;
   if (!prints(core, 1)) return;
   if (core->rnorm == braid_INVALID_RNORM)
   {
      fprintf(core->outfile, "  Braid: || r_%d || not available, wall time = %1.2e\n",
              (int) core->iter, wtime);
   }
   else
   {
      /* the convergence factor needs the previous residual; 1 when there is none */
      braid_Real prev = k > 0 ? core->rnorms[k - 1] : braid_INVALID_RNORM;
      braid_Real factor = prev > 0.0 ? core->rnorm / prev : 1.0;
      fprintf(core->outfile, "  Braid: || r_%d || = %1.6e, conv factor = %1.2e, wall time = %1.2e\n",
              (int) core->iter, core->rnorm, factor, wtime);
   }
   fflush(core->outfile);
}

braid_Int braid_PrintStats(braid_Core core)
{
   FILE *out;
   braid_Int level;
   braid_Real rnorm;
   if (core == NULL)
   {
      return _braid_Error("braid_PrintStats", "core is NULL (braid_Init failed or was not called)");
   }
   if (core->myid_world != 0) return 0;
   out = core->outfile;
   rnorm = core->nrnorms > 0 ? core->rnorms[core->nrnorms - 1] : braid_INVALID_RNORM;

   /* upstream's words and layout: scripts written for XBraid grep these lines */
   fprintf(out, "\n  Braid Solver Stats:\n");
   fprintf(out, "  start time = %e\n", core->tstart);
   fprintf(out, "  stop time  = %e\n", core->tstop);
   fprintf(out, "  time steps = %d\n\n", (int) core->ntime);
   fprintf(out, "  use seq soln?         = %d\n", (int) core->seq_soln);
   fprintf(out, "  storage               = %d\n\n", (int) core->storage);
   fprintf(out, "  max iterations        = %d\n", (int) core->max_iter);
   fprintf(out, "  iterations            = %d\n\n", (int) core->niter);
   if (core->adjoint) _braid_AdjointPrintResiduals(core, out, rnorm); /* adjoint.c */
   else
   {
      fprintf(out, "  residual norm         = %e\n", rnorm);
      fprintf(out, "  stopping tolerance    = %e\n", core->tol);
   }
   fprintf(out, "  use relative tol?     = %d\n", (int) core->rtol);
   fprintf(out, "                                          --> %s TemporalNorm \n\n",
           core->tnorm == 1 ? "1-norm" : core->tnorm == 3 ? "Inf-norm" : "2-norm");
   fprintf(out, "  use fmg?              = %d\n", (int) core->fmg);
   fprintf(out, "  access_level          = %d\n", (int) core->access_level);
   fprintf(out, "  print_level           = %d\n\n", (int) core->print_level);
   fprintf(out, "  max number of levels  = %d\n", (int) core->max_levels);
   fprintf(out, "  min coarse            = %d\n", (int) core->min_coarse);
   fprintf(out, "  number of levels      = %d\n", (int) core->nlevels);
   fprintf(out, "  skip down cycle       = %d\n", (int) core->skip);
   fprintf(out, "  periodic              = %d\n", (int) core->periodic);
   fprintf(out, "  relax_only_cg         = %d\n", (int) core->relax_only_cg);
   fprintf(out, "  finalFCRelax          = %d\n", (int) core->final_fcrelax);
   fprintf(out, "  resid_compute         = %d\n", (int) core->residual_computation);
   fprintf(out, "  tracking timings      = %d\n", (int) (core->timings >= 2));
   fprintf(out, "  number of refinements = %d\n\n", (int) core->nrefine);
   fprintf(out, "  level   time-pts   cfactor   nrelax   Crelax Wt\n");
   for (level = 0; level < core->nlevels; level++)
   {
      const _braid_Grid *g = core->grids[level];
      if (level < core->nlevels - 1 || core->relax_only_cg || core->periodic)
      {
         fprintf(out, "  %5d  %8d  %7d  %7d  %10.2f\n", (int) level, (int) g->gupper,
                 (int) g->cfactor, (int) _braid_LevelNRelax(core, level),
                 _braid_LevelCRelaxWt(core, level));
      }
      else
      {
         fprintf(out, "  %5d  %8d  \n", (int) level, (int) g->gupper); /* solved sequentially */
      }
   }
   fprintf(out, "\n  wall time = %f\n\n", core->wall_time);
   fflush(out);
   return 0;
}
