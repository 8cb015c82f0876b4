/*
 * XBraid_Adjoint: the piggy-back iteration of S. Guenther, N. R. Gauger and J. B. Schroder,
 * "A non-intrusive parallel-in-time adjoint solver with the XBraid library" (Comput. Visual.
 * Sci. 19, 2018), written here from the paper and the interface's documented behaviour.
 *
 * Iteration k maps the fine C-points x_k to x_{k+1} = H(x_k) by one FAS V-cycle (FCF
 * relaxation, restriction with the objective evaluated on the way, coarse solve, correction)
 * and records it on the tape (adjoint.h). The objective J_k = F(sum of objectiveT over the
 * fine points in [tstart_obj, tstop_obj]) is taken in the F-relaxation of the restriction on
 * level 0 (F-points with their new values, C-points with their relaxed values). Evaluating
 * the tape backwards from the adjoint xbar_k of the output gives
 *    xbar_{k+1} = (dH/dx)^T xbar_k + (dJ/dx)^T,   gradient = (dH/drho)^T xbar_k + dJ/drho
 * (the app accumulates the gradient; reset_gradient before each sweep). The adjoint residual
 * is the temporal norm of xbar_{k+1} - xbar_k over the C-points 1 .. (the initial condition
 * is no unknown). The run stops when the state and the adjoint residual are both below their
 * tolerances. At the fixed point the gradient is the exact derivative of the discrete
 * objective. With one level, H is the sequential solve from u_0 (recorded with the objective at
 * every point): one sweep from xbar = 0 gives the exact gradient at once.
 *
 * The recorded cycle and its distribution over the ranks: adjoint_cycle.c; the options and
 * results: adjoint_options.c.
 */
#include <stdlib.h>
#include <string.h>

#include "adjoint.h"

/* this rank's fine C-points: indices jlo .. jhi (of i / cfactor); empty when jlo > jhi */
static void my_cpoints(braid_Core core, braid_Int *jlo, braid_Int *jhi)
{
   const _braid_Grid *g = core->grids[0];
   *jlo = _braid_CeilDiv(g->ilower, g->cfactor);
   *jhi = g->iupper >= 0 ? g->iupper / g->cfactor : -1;
}

/* ---- braid_Drive with the adjoint ---- */

/* both residual histories get the same entry count (the adjoint's is r_adj per iteration) */
static braid_Int record_rnorms(braid_Core core, braid_Real rnorm, braid_Real rnorm_adj)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int err = _braid_HistoryAppend(core, "the residual history", &core->rnorms,
                                        &core->nrnorms, &core->rnorms_capacity, rnorm);
   if (err) return err;
   return _braid_HistoryAppend(core, "the adjoint residual history", &adj->rnorms_adj,
                               &adj->nrnorms_adj, &adj->rnorms_adj_capacity, rnorm_adj);
}

/* The C-points from init, or (braid_SetSeqSoln, several levels) from a sequential solve. A
 * warm restart (a second braid_Drive) keeps the last solution and adjoint; u_0 is set anew. */
static braid_Int initial_guess(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   const _braid_Grid *g = core->grids[0];
   braid_Int i, err, jlo, jhi;
   core->status.calling_function = braid_ASCaller_InitGuess;
   my_cpoints(core, &jlo, &jhi);
   for (i = jlo * g->cfactor; i <= jhi * g->cfactor; i += g->cfactor)
   {
      core->status.tindex = i;
      if (adj->U[0][i] != NULL && i > 0) continue; /* warm restart: keep the solution */
      if ((err = _braid_FreeVector(core, &adj->U[0][i]))) return err;
      err = core->init(core->app, _braid_Time(core, 0, i), &adj->U[0][i]);
      if (err) return _braid_CallbackFailed(core, "init", err);
   }
   if (core->warm_restart || !core->seq_soln || core->nlevels == 1) return 0;
   adj->recording = 0;
   return _braid_AdjointSequential(core, 0, braid_ASCaller_InitGuess);
}

/* One piggy-back iteration: record the V-cycle, then the adjoint sweep. */
static braid_Int iteration(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   const _braid_Grid *g = core->grids[0];
   braid_Int cf = g->cfactor, nc = g->gupper / cf, j, err, jlo, jhi, first, count, i;
   braid_Real F_bar = 1.0;

   my_cpoints(core, &jlo, &jhi);
   first = jlo > 1 ? jlo : 1;
   count = jhi >= first ? jhi - first + 1 : 0;
   _braid_TapeReset(core, &adj->tape);
   adj->recording = !adj->obj_only;
   for (j = jlo; j <= jhi; j++)
   {
      adj->UI[0][j * cf] = adj->xin[j] = _braid_TapeNewVar(&adj->tape);
   }
   memset(adj->obj_terms, 0, (size_t) (g->gupper + 1) * sizeof(braid_Real));
   if (core->nlevels == 1) err = _braid_AdjointSequential(core, 1, braid_ASCaller_FInterp);
   else if (!(err = _braid_AdjointVCycle(core, 0)))
   {
      err = _braid_TemporalNorm(core, adj->norms + first, first, count, nc, &core->rnorm);
   }
   if (err) return err;

   /* the objective: every rank gets every point's term (each has one owner, the others add
    * zeros, so the reduction is exact) and sums them in the order of the points */
   if (core->nprocs > 1)
   {
      MPI_Request request;
      MPI_Iallreduce(MPI_IN_PLACE, adj->obj_terms, (int) g->gupper + 1, MPI_DOUBLE, MPI_SUM,
                     core->tcomm, &request);
      if ((err = _braid_Wait(core, &request))) return err;
   }
   adj->sum_obj = 0.0;
   for (i = 0; i <= g->gupper; i++) adj->sum_obj += adj->obj_terms[i];

   adj->objective = adj->sum_obj;
   if (adj->post != NULL && (err = adj->post(core->app, adj->sum_obj, &adj->objective)))
   {
      return _braid_CallbackFailed(core, "postprocess_obj", err);
   }
   if (adj->post_diff != NULL && (err = adj->post_diff(core->app, adj->sum_obj, &F_bar)))
   {
      return _braid_CallbackFailed(core, "postprocess_obj_diff", err);
   }
   adj->rnorm_adj = braid_INVALID_RNORM;
   if (adj->obj_only) return 0;

   /* adjoint sweep: seed the outputs with the last adjoint, read the new one at the inputs */
   if ((err = adj->reset_gradient(core->app))) return _braid_CallbackFailed(core, "reset_gradient", err);
   for (j = first; j <= jhi; j++)
   {
      if (adj->ubar[j] != NULL
          && (err = _braid_TapeAddBar(core, &adj->tape, adj->UI[0][j * cf], 1.0, adj->ubar[j])))
      {
         return err;
      }
   }
   if ((err = _braid_TapeEvaluate(core, &adj->tape, F_bar))) return err;
   for (j = jlo; j <= jhi; j++)
   {
      braid_Vector xbar = adj->tape.bars[adj->xin[j]];
      braid_Real norm = 0.0;
      if (xbar == NULL && (err = _braid_ZeroLike(core, adj->U[0][j * cf], &xbar))) return err;
      adj->tape.bars[adj->xin[j]] = NULL;
      if (j > 0)
      {
         if (adj->ubar[j] != NULL
             && (err = core->sum(core->app, 1.0, xbar, -1.0, adj->ubar[j])))
         {
            core->free(core->app, xbar);
            return _braid_CallbackFailed(core, "sum", err);
         }
         err = core->spatialnorm(core->app, adj->ubar[j] != NULL ? adj->ubar[j] : xbar, &norm);
         if (err)
         {
            core->free(core->app, xbar);
            return _braid_CallbackFailed(core, "spatialnorm", err);
         }
         adj->norms[j] = norm;
      }
      if (adj->ubar[j] != NULL) core->free(core->app, adj->ubar[j]);
      adj->ubar[j] = xbar;
   }
   err = _braid_TemporalNorm(core, adj->norms + first, first, count, nc, &adj->rnorm_adj);
   _braid_TapeReset(core, &adj->tape);
   return err;
}

static braid_Int converged(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int state, adjoint;
   if (core->rnorm < 0.0) return 0;
   state = core->rtol ? core->rnorm < core->tol * core->rnorm0 : core->rnorm < core->tol;
   if (adj->obj_only) return state;
   adjoint = adj->rtol_adj ? adj->rnorm_adj < adj->tol_adj * adj->rnorm_adj0
                           : adj->rnorm_adj < adj->tol_adj;
   return state && adjoint;
}

static void print_line(braid_Core core, const char *fmt, braid_Int k, braid_Real a, braid_Real b,
                       braid_Real c)
{
   if (core->myid_world != 0 || core->print_level < 1) return;
   fprintf(core->outfile, fmt, (int) k, a, b, c);
   fflush(core->outfile);
}

/* the engine's fine grid gets the C-points: access, braid_UGetLast, a warm restart */
static braid_Int publish(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int cf = core->grids[0]->cfactor, j, jlo, jhi, err;
   my_cpoints(core, &jlo, &jhi);
   for (j = jlo * cf; j <= jhi * cf; j += cf)
   {
      if ((err = _braid_CopyInto(core, adj->U[0][j], _braid_Slot(core->grids[0], j)))) return err;
   }
   return 0;
}

/* Two or more levels: piggy-back iterations until the state and the adjoint converge. */
static braid_Int iterate(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int err;
   if (core->myid_world == 0 && core->print_level >= 1)
   {
      fprintf(core->outfile, "\n  Braid:      || r ||      || r_adj ||     Objective\n"
                             "  Braid:---------------------------------------------\n");
   }
   for (;;)
   {
      if ((err = iteration(core))) return err;
      if ((err = record_rnorms(core, core->rnorm, adj->rnorm_adj))) return err;
      if (core->rnorm0 < 0.0) core->rnorm0 = core->rnorm;
      if (adj->rnorm_adj0 < 0.0) adj->rnorm_adj0 = adj->rnorm_adj;
      if (core->access_level >= 2
          && ((err = publish(core)) || (err = _braid_FAccess(core, 0, braid_ASCaller_Drive_TopCycle))))
      {
         return err;
      }
      print_line(core, "  Braid: %3d  %1.6e  %1.6e  %1.8e\n", core->iter, core->rnorm,
                 adj->rnorm_adj, adj->objective);
      if (core->rnorm != core->rnorm || (!adj->obj_only && adj->rnorm_adj != adj->rnorm_adj))
      {
         _braid_PrintMessage(core, "  Braid: Iterations diverged.\n");
         core->iter++;
         return _braid_Error("braid_Drive", "a residual norm is NaN at iteration %d",
                             (int) core->iter - 1);
      }
      core->iter++;
      if (converged(core)) break;
      if (core->iter >= core->max_iter)
      {
         _braid_PrintMessage(core, "  Braid: Max. iterations reached.\n");
         break;
      }
   }
   core->niter = core->iter;
   /* the histories end with a copy of the last entry, as braid_GetRNorms reports them */
   return record_rnorms(core, core->rnorms[core->nrnorms - 1], adj->rnorm_adj);
}

/* One level: the sequential solve and one adjoint sweep over it give the exact objective and
 * gradient at once. Reported as the engine's one-level solve is: no iteration (0), and
 * residual histories of one entry, -1 (not computed), for the state and the adjoint. */
static braid_Int one_level(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int err = iteration(core);
   if (err) return err;
   core->rnorm = adj->rnorm_adj = braid_INVALID_RNORM;
   return record_rnorms(core, braid_INVALID_RNORM, braid_INVALID_RNORM);
}

static braid_Int drive(braid_Core core)
{
   struct _braid_AdjointState *adj = ADJ(core);
   braid_Int err;
   if (adj->nlevels == 0 && (err = _braid_AdjointAllocate(core))) return err;
   _braid_PrintBegin(core);
   if ((err = initial_guess(core))) return err;
   adj->rnorm_adj = adj->rnorm_adj0 = braid_INVALID_RNORM;
   adj->nrnorms_adj = 0;
   if ((err = core->nlevels == 1 ? one_level(core) : iterate(core))) return err;
   core->done = 1;
   if ((err = publish(core))) return err;
   if (core->final_fcrelax)
   {
      braid_Int saved = core->nrelax[0];
      core->nrelax[0] = 1;
      err = _braid_FCRelax(core, 0);
      core->nrelax[0] = saved;
      if (err) return err;
   }
   if (core->access_level >= 1 && (err = _braid_FAccess(core, 1, braid_ASCaller_FAccess))) return err;
   if ((err = _braid_AgreeSuccess(core))) return err;
   core->wall_time = MPI_Wtime() - core->wall_start;
   core->timers.drive += core->wall_time;
   if (core->timings >= 2 && (err = braid_PrintTimers(core))) return err;
   if (core->print_level >= 2) braid_PrintStats(core);
   return 0;
}

/* Options whose result the adjoint iteration would get wrong are refused. */
static braid_Int refuse_unsupported(braid_Core core)
{
   if (core->periodic || core->richardson || core->est_error || core->fmg)
   {
      return _braid_Error("braid_Drive", "XBraid_Adjoint does not do %s: the adjoint iteration "
                          "runs V-cycles for an initial value problem on the engine's own "
                          "residual", core->periodic ? "periodic problems (braid_SetPeriodic)"
                          : core->fmg ? "F-cycles (braid_SetFMG)"
                                      : "Richardson extrapolation or error estimation "
                                        "(braid_SetRichardsonEstimation)");
   }
   return 0;
}

/* Options the adjoint iteration does not use. As upstream, they are not refused: rank 0 warns
 * once per drive, and they have no effect on the result (the iteration converges to the same
 * discrete solution, and the gradient is exact there). */
static void warn_ignored(braid_Core core)
{
   const char *names[12];
   int n = 0, k;
   if (core->residual != NULL) names[n++] = "braid_SetResidual";
   if (core->full_rnorm_res != NULL) names[n++] = "braid_SetFullRNormRes";
   if (core->scoarsen != NULL || core->srefine != NULL) names[n++] = "braid_SetSpatialCoarsen/Refine";
   if (core->sync != NULL) names[n++] = "braid_SetSync";
   if (core->useshell) names[n++] = "braid_SetShell";
   if (core->refine) names[n++] = "braid_SetRefine";
   if (core->storage >= 0) names[n++] = "braid_SetStorage (every needed point is kept)";
   if (core->relax_only_cg) names[n++] = "braid_SetRelaxOnlyCG";
   if (core->skip) names[n++] = "braid_SetSkip after braid_InitAdjoint";
   if (core->delta_rank > 0 || core->lyapunov) names[n++] = "Delta correction / Lyapunov estimation";
   if (n == 0 || core->myid_world != 0) return;
   fprintf(stderr, "braid_Drive: warning: XBraid_Adjoint ignores ");
   for (k = 0; k < n; k++) fprintf(stderr, "%s%s", k > 0 ? ", " : "", names[k]);
   fprintf(stderr, "\n");
}

braid_Int _braid_DriveAdjoint(braid_Core core)
{
   braid_Int refine = core->refine, err;
   if ((err = refuse_unsupported(core))) return err;
   warn_ignored(core);
   /* temporal refinement stays out of the engine's step for this drive (Delta correction is
    * never set up in adjoint mode: drive.c) */
   core->refine = 0;
   err = drive(core);
   core->refine = refine;
   return err;
}

void _braid_AdjointPrintResiduals(braid_Core core, FILE *out, braid_Real rnorm)
{
   const struct _braid_AdjointState *adj = ADJ(core);
   fprintf(out, "  state   residual norm = % e  (-> %s stopping tol. = %1.2e)\n", rnorm,
           core->rtol ? "rel." : "abs.", core->tol);
   if (adj->obj_only) return;
   fprintf(out, "  adjoint residual norm = % e  (-> %s stopping tol. = %1.2e)\n",
           adj->rnorm_adj, adj->rtol_adj ? "rel." : "abs.", adj->tol_adj);
}
