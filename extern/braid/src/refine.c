/*
 * Temporal refinement of the fine grid (braid_SetRefine), as the XBraid interface defines it.
 *
 * While the solve iterates, the user's step on level 0 may ask for its interval [tstart, tstop]
 * to be split into rfactor sub-intervals (braid_StepStatusSetRFactor), evenly or at the step
 * sizes it gives (braid_StatusSetRefinementDtValues). The engine keeps, per fine interval, the
 * largest factor asked for during the relaxation and restriction on level 0 of the current
 * cycle (_braid_RefineRecord). At the top of the cycle, once its residual is known,
 * _braid_FRefine builds the refined fine grid if any rank asked for a factor > 1, fewer than
 * max_refinements refinements were done and the new grid keeps at most tpoints_cutoff steps:
 *
 *  1. the current approximation at every old fine point: an F-relaxation from the C-points
 *     (the F-points are not stored), plus the value of the point left of this rank's block;
 *  2. the values at the new points: the old points keep theirs, the points inside an old
 *     interval are stepped with the user's step from the old point on its left (the rank that
 *     owns the interval's right end does this, the intervals are independent);
 *  3. the times of the new fine grid, gathered on every rank into core->fine_times (the
 *     mechanism of user time grids: _braid_FineTime reads it, for every level);
 *  4. the hierarchy rebuilt for the new point count, which also rebalances the load: the new
 *     points are split over the ranks in contiguous blocks (reverted ranks mirror theirs);
 *  5. the values the new fine grid stores (its C-points, or every point with storage 0) sent
 *     to their new owners with the user's bufpack/bufunpack (buffer message type 1, load
 *     balancing), on the engine's communicator.
 *
 * The solve then iterates on the new grid. The residual that triggered the refinement
 * belongs to the old grid, so it does not end the solve, and a relative tolerance is measured
 * against the first residual on the new grid. Every step of this is deterministic and does
 * not depend on the distribution, so results are the same on any number of ranks.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

/* Tag of the load-balancing messages (level tags are 100 + level, failure notices 7). */
#define REFINE_TAG 61

typedef struct _braid_RefineState {
   braid_Int ilower, n;     /* the level-0 points the arrays cover */
   braid_Int *rfactor;      /* [i - ilower]: largest factor asked for the interval (i-1, i] */
   braid_Real **dt;         /* [i - ilower]: the user's first rfactor - 1 step sizes, or NULL */
} _braid_RefineState;

static void clear_requests(_braid_RefineState *st)
{
   braid_Int k;
   for (k = 0; k < st->n; k++)
   {
      st->rfactor[k] = 1;
      free(st->dt[k]);
      st->dt[k] = NULL;
   }
}

void _braid_RefineFree(braid_Core core)
{
   _braid_RefineState *st = core->refine_state;
   if (st == NULL) return;
   clear_requests(st);
   free(st->rfactor);
   free(st->dt);
   free(st);
   core->refine_state = NULL;
}

static braid_Int refine_state(braid_Core core, _braid_RefineState **st_ptr)
{
   const _braid_Grid *g = core->grids[0];
   _braid_RefineState *st = core->refine_state;
   braid_Int k;
   if (st == NULL)
   {
      st = (_braid_RefineState *) _braid_Calloc(core, "the refinement requests", 1,
                                                sizeof(_braid_RefineState));
      if (st == NULL) return braid_ERROR_MEMORY;
      core->refine_state = st;
      st->ilower = g->ilower;
      st->n = g->nupoints;
      st->rfactor = (braid_Int *) _braid_Calloc(core, "the refinement factors", st->n,
                                                sizeof(braid_Int));
      st->dt = (braid_Real **) _braid_Calloc(core, "the refinement step sizes", st->n,
                                             sizeof(braid_Real *));
      if (st->rfactor == NULL || st->dt == NULL)
      {
         _braid_RefineFree(core);
         return braid_ERROR_MEMORY;
      }
      for (k = 0; k < st->n; k++) st->rfactor[k] = 1;
   }
   *st_ptr = st;
   return 0;
}

braid_Int _braid_RefineRecord(braid_Core core, braid_Int level, braid_Int index)
{
   const _braid_Status *s = &core->status;
   _braid_RefineState *st;
   braid_Int k, r = s->rfactor, err;
   if (!core->refine || level != 0 || core->periodic || core->useshell) return 0;
   if (s->calling_function != braid_ASCaller_FCRelax
       && s->calling_function != braid_ASCaller_FRestrict)
   {
      return 0;
   }
   if (r <= 1 && core->refine_state == NULL) return 0;
   if ((err = refine_state(core, &st))) return err;
   k = index - st->ilower;
   if (k < 0 || k >= st->n || r < st->rfactor[k] || r <= 1) return 0;
   /* the largest factor of the pass; of equal ones the latest, with its step sizes */
   free(st->dt[k]);
   st->dt[k] = NULL;
   st->rfactor[k] = r;
   if (s->rdtvalues != NULL)
   {
      /* the user's array lives only during the step callback */
      st->dt[k] = (braid_Real *) _braid_Calloc(core, "a refinement's step sizes", r - 1,
                                               sizeof(braid_Real));
      if (st->dt[k] == NULL) return braid_ERROR_MEMORY;
      memcpy(st->dt[k], s->rdtvalues, (size_t) (r - 1) * sizeof(braid_Real));
   }
   return 0;
}

/* ---- 1. the current approximation at every old fine point ---- */

typedef struct {
   braid_Vector *u;   /* [i - ilower + 1] for i in ilower - 1 .. iupper */
} capture_ctx;

static braid_Int capture_fpoint(braid_Core core, braid_Int level, braid_Int i, braid_Vector u,
                                void *vctx)
{
   capture_ctx *ctx = (capture_ctx *) vctx;
   braid_Int k = i - core->grids[level]->ilower + 1;
   return _braid_CopyInto(core, u, &ctx->u[k]);
}

static braid_Int capture_cpoint(braid_Core core, braid_Int level, braid_Int ci,
                                braid_Vector uprop, braid_Int *taken, void *vctx)
{
   (void) uprop;
   (void) taken;
   return capture_fpoint(core, level, ci, _braid_Stored(core, level, ci), vctx);
}

static braid_Int capture(braid_Core core, braid_Vector *u)
{
   const _braid_Grid *g = core->grids[0];
   _braid_SweepHooks hooks;
   capture_ctx ctx;
   braid_Int err;
   memset(&hooks, 0, sizeof(hooks)); /* an F-relaxation that keeps every value */
   hooks.fpoint = capture_fpoint;
   hooks.cpoint = capture_cpoint;
   hooks.caller = braid_ASCaller_FRefine;
   ctx.u = u;
   if ((err = _braid_Sweep(core, 0, g->cfactor, &hooks, &ctx))) return err;
   if (g->ilower > g->iupper) return 0;
   /* the point left of this block: the step into the first local point starts there */
   core->status.calling_function = braid_ASCaller_FRefine;
   if (g->ilower > 0 && (err = _braid_RecvLeft(core, 0))) return err;
   if (g->iupper < g->gupper && (err = _braid_SendRight(core, 0, u[g->nupoints]))) return err;
   if (g->ilower > 0 && (err = _braid_RecvLeftWait(core, 0, &u[0]))) return err;
   return _braid_SendWait(core);
}

/* ---- 2. the new points of this rank's old intervals ---- */

typedef struct {
   long long offset, count; /* this rank's new points: offset .. offset + count - 1 */
   braid_Int cf0, store_all0;
   braid_Real *t;           /* [k - offset]: their times */
   braid_Vector *u;         /* [k - offset]: values the new fine grid stores, else NULL */
} produced;

static int stored_on_new_grid(const produced *p, long long k)
{
   return p->store_all0 || k % p->cf0 == 0;
}

/* The times inside the old interval (t0, t1] split into r: the user's step sizes if they
 * fit inside it (they are > 0: status.c checked them), else evenly. times[r-1] = t1. */
static void split_times(braid_Real t0, braid_Real t1, braid_Int r, const braid_Real *dt,
                        braid_Real *times)
{
   braid_Real sign = t1 > t0 ? 1.0 : -1.0, length = fabs(t1 - t0), sum = 0.0;
   braid_Int m, fits = dt != NULL;
   for (m = 0; fits && m < r - 1; m++)
   {
      sum += dt[m];
      fits = sum < length;
   }
   sum = 0.0;
   for (m = 1; m < r; m++)
   {
      if (fits)
      {
         sum += dt[m - 1];
         times[m - 1] = t0 + sign * sum;
      }
      else
      {
         times[m - 1] = t0 + ((braid_Real) m / (braid_Real) r) * (t1 - t0);
      }
   }
   times[r - 1] = t1;
}

static braid_Int refine_step(braid_Core core, long long tindex, braid_Real t0, braid_Real t1,
                             braid_Vector u)
{
   _braid_Status *s;
   braid_Real start;
   braid_Int err = _braid_CheckNotices(core);
   if (err) return err;
   s = _braid_StatusFor(core, 0, (braid_Int) tindex, t0, t1, braid_ASCaller_FRefine);
   start = _braid_TimerStart(core);
   err = core->step(core->app, u, NULL, u, (braid_StepStatus) s);
   _braid_StepDone(core, 0, start);
   return err ? _braid_CallbackFailed(core, "step", err) : 0;
}

static braid_Int produce(braid_Core core, braid_Vector *old, produced *p)
{
   const _braid_Grid *g = core->grids[0];
   const _braid_RefineState *st = core->refine_state;
   long long k = p->offset;
   braid_Int j, m, err = 0;
   braid_Vector u = NULL;

   for (j = g->ilower; j <= g->iupper; j++)
   {
      braid_Int r = j > 0 && st != NULL ? st->rfactor[j - st->ilower] : 1;
      braid_Real *times = &p->t[k - p->offset];
      if (j == 0)
      {
         times[0] = g->ta[0];
      }
      else
      {
         split_times(g->ta[j - 1 - g->ilower], g->ta[j - g->ilower], r,
                     st != NULL ? st->dt[j - st->ilower] : NULL, times);
      }
      if (r > 1)
      {
         /* the points inside: stepped from the old point on the left */
         err = core->clone(core->app, old[j - g->ilower], &u);
         if (err) return _braid_CallbackFailed(core, "clone", err);
         for (m = 1; m < r; m++)
         {
            braid_Real t0 = m == 1 ? g->ta[j - 1 - g->ilower] : times[m - 2];
            if ((err = refine_step(core, k + m - 2, t0, times[m - 1], u))) break;
            if (stored_on_new_grid(p, k + m - 1)
                && (err = _braid_CopyInto(core, u, &p->u[k + m - 1 - p->offset])))
            {
               break;
            }
         }
         if (core->free(core->app, u) && !err) err = _braid_CallbackFailed(core, "free", 1);
         u = NULL;
         if (err) return err;
      }
      /* the old point keeps its value */
      k += r;
      if (stored_on_new_grid(p, k - 1)
          && (err = _braid_CopyInto(core, old[j - g->ilower + 1], &p->u[k - 1 - p->offset])))
      {
         return err;
      }
   }
   return 0;
}

/* ---- 5. sending the new values to their owners ---- */

typedef struct {
   int rank;
   long long first, count; /* its new points */
} block;

static int by_first(const void *a, const void *b)
{
   const block *x = (const block *) a, *y = (const block *) b;
   return x->first < y->first ? -1 : x->first > y->first;
}

typedef struct {
   MPI_Request *req;
   char **buf;
   int *nvec, nreq;
   braid_Int slot;
} exchange;

static void release_exchange(braid_Core core, exchange *x, int nprocs, braid_Int failed)
{
   int p;
   for (p = 0; x->req != NULL && p < 2 * nprocs; p++)
   {
      if (x->buf[p] == NULL) continue;
      if (failed && x->req[p] != MPI_REQUEST_NULL)
      {
         /* after a failure the partner may never answer: MPI may still use the buffer */
         MPI_Cancel(&x->req[p]);
         MPI_Request_free(&x->req[p]);
         _braid_Abandon(x->buf[p]);
         continue;
      }
      if (core->buffree != NULL) core->buffree(core->app, (void **) &x->buf[p]);
      else free(x->buf[p]);
   }
   free(x->req);
   free(x->buf);
   free(x->nvec);
}

static braid_Int alloc_message(braid_Core core, int nvec, braid_Int slot, char **buf)
{
   braid_Int bytes;
   if (_braid_MulInt((braid_Int) nvec, slot, &bytes))
   {
      return _braid_Error("braid_Drive", "refinement: %d vectors of %d bytes do not fit one "
                          "message", nvec, (int) slot);
   }
   if (core->bufalloc != NULL)
   {
      _braid_Status *s = _braid_StatusFor(core, 0, -1, 0.0, 0.0, braid_ASCaller_FRefine);
      braid_Int err;
      s->messagetype = 1;
      err = core->bufalloc(core->app, (void **) buf, bytes, (braid_BufferStatus) s);
      if (err) return _braid_CallbackFailed(core, "bufalloc", err);
   }
   else
   {
      *buf = (char *) malloc((size_t) bytes);
   }
   return *buf == NULL ? _braid_OutOfMemory(core, "a load-balancing message", bytes, 1) : 0;
}

static braid_Int pack_at(braid_Core core, exchange *x, char *buf, int pos, long long k,
                         braid_Vector u)
{
   _braid_Status *s = _braid_StatusFor(core, 0, (braid_Int) k, _braid_FineTime(core, (braid_Int) k),
                                       0.0, braid_ASCaller_FRefine);
   braid_Int err;
   s->messagetype = 1;
   s->size = -1.0;
   err = core->bufpack(core->app, u, buf + (size_t) pos * (size_t) x->slot,
                       (braid_BufferStatus) s);
   if (err) return _braid_CallbackFailed(core, "bufpack", err);
   if (s->size > (braid_Real) x->slot)
   {
      return _braid_Error("braid_Drive", "bufpack reported %.0f bytes, more than the %d that "
                          "bufsize allowed", s->size, (int) x->slot);
   }
   return 0;
}

static braid_Int redistribute(braid_Core core, produced *p, const block *blocks)
{
   _braid_Grid *g = core->grids[0];
   _braid_Status *s;
   exchange x;
   long long k;
   int q, b, nprocs = core->nprocs, n;
   braid_Int err = 0, size;

   memset(&x, 0, sizeof(x));
   s = _braid_StatusFor(core, 0, -1, 0.0, 0.0, braid_ASCaller_FRefine);
   s->messagetype = 1;
   if ((err = core->bufsize(core->app, &size, (braid_BufferStatus) s)))
   {
      return _braid_CallbackFailed(core, "bufsize", err);
   }
   x.slot = size > 0 ? size : 1;
   x.req = (MPI_Request *) _braid_Calloc(core, "the load-balancing requests", 2 * nprocs,
                                         sizeof(MPI_Request));
   x.buf = (char **) _braid_Calloc(core, "the load-balancing messages", 2 * nprocs,
                                   sizeof(char *));
   x.nvec = (int *) _braid_Calloc(core, "the load-balancing counts", 2 * nprocs, sizeof(int));
   if (x.req == NULL || x.buf == NULL || x.nvec == NULL)
   {
      release_exchange(core, &x, nprocs, 0);
      return braid_ERROR_MEMORY;
   }
   for (q = 0; q < 2 * nprocs; q++) x.req[q] = MPI_REQUEST_NULL;

   /* counts: what goes where ([q]), what comes from where ([nprocs + q]) */
   for (k = p->offset; k < p->offset + p->count; k++)
   {
      q = _braid_Owner(core, 0, (braid_Int) k);
      if (p->u[k - p->offset] != NULL && q != core->myid) x.nvec[q]++;
   }
   for (b = 0, k = g->ilower; k <= g->iupper; k++)
   {
      while (blocks[b].first + blocks[b].count <= k) b++;
      if (stored_on_new_grid(p, k) && blocks[b].rank != core->myid)
      {
         x.nvec[nprocs + blocks[b].rank]++;
      }
   }
   for (q = 0; q < nprocs && !err; q++)
   {
      if (x.nvec[nprocs + q] == 0) continue;
      if ((err = alloc_message(core, x.nvec[nprocs + q], x.slot, &x.buf[nprocs + q]))) break;
      MPI_Irecv(x.buf[nprocs + q], x.nvec[nprocs + q] * (int) x.slot, MPI_BYTE, q, REFINE_TAG,
                core->tcomm, &x.req[nprocs + q]);
      _braid_CountRecv(core);
   }
   /* pack in increasing time index; the receiver unpacks in the same order */
   for (q = 0; q < nprocs && !err; q++)
   {
      if (x.nvec[q] > 0) err = alloc_message(core, x.nvec[q], x.slot, &x.buf[q]);
      x.nvec[q] = 0; /* from here on: packed so far */
   }
   for (k = p->offset; k < p->offset + p->count && !err; k++)
   {
      braid_Vector *u = &p->u[k - p->offset];
      if (*u == NULL) continue;
      q = _braid_Owner(core, 0, (braid_Int) k);
      if (q == core->myid)
      {
         *_braid_Slot(g, (braid_Int) k) = *u; /* stays here */
         *u = NULL;
         continue;
      }
      if ((err = pack_at(core, &x, x.buf[q], x.nvec[q]++, k, *u))) break;
      err = _braid_FreeVector(core, u);
   }
   for (q = 0; q < nprocs && !err; q++)
   {
      if (x.nvec[q] == 0) continue;
      MPI_Isend(x.buf[q], x.nvec[q] * (int) x.slot, MPI_BYTE, q, REFINE_TAG, core->tcomm,
                &x.req[q]);
      _braid_CountSend(core, x.nvec[q] * x.slot);
   }
   for (q = 0; q < 2 * nprocs && !err; q++)
   {
      if (x.req[q] != MPI_REQUEST_NULL) err = _braid_Wait(core, &x.req[q]);
   }
   /* unpack what came, in increasing time index */
   for (q = 0; q < nprocs; q++) x.nvec[nprocs + q] = 0;
   for (b = 0, k = g->ilower; k <= g->iupper && !err; k++)
   {
      while (blocks[b].first + blocks[b].count <= k) b++;
      q = blocks[b].rank;
      if (!stored_on_new_grid(p, k) || q == core->myid) continue;
      n = x.nvec[nprocs + q]++;
      s = _braid_StatusFor(core, 0, (braid_Int) k, _braid_FineTime(core, (braid_Int) k), 0.0,
                           braid_ASCaller_FRefine);
      s->messagetype = 1;
      err = core->bufunpack(core->app, x.buf[nprocs + q] + (size_t) n * (size_t) x.slot,
                            _braid_Slot(g, (braid_Int) k), (braid_BufferStatus) s);
      if (err) err = _braid_CallbackFailed(core, "bufunpack", err);
   }
   release_exchange(core, &x, nprocs, err != 0);
   return err;
}

/* ---- the refinement ---- */

static braid_Int call_sync(braid_Core core)
{
   _braid_Status *s;
   braid_Real start;
   braid_Int err;
   if (core->sync == NULL) return 0;
   s = _braid_StatusFor(core, 0, -1, 0.0, 0.0, braid_ASCaller_FRefine);
   start = _braid_TimerStart(core);
   err = core->sync(core->app, (braid_SyncStatus) s);
   _braid_TimerStop(core, &core->timers.sync, start);
   return err ? _braid_CallbackFailed(core, "sync", err) : 0;
}

/* The new point count of every rank's old block, in time order (blocks[], nblocks of them),
 * and the total. */
static braid_Int count_new_points(braid_Core core, long long mine, block **blocks_ptr,
                                  int *nblocks, long long *total)
{
   const _braid_Grid *g = core->grids[0];
   long long *all, pair[2];
   block *blocks;
   MPI_Request request;
   braid_Int err;
   int q, n = 0;

   all = (long long *) _braid_Calloc(core, "the new point counts", 2 * core->nprocs,
                                     sizeof(long long));
   blocks = (block *) _braid_Calloc(core, "the new point counts", core->nprocs, sizeof(block));
   if (all == NULL || blocks == NULL)
   {
      free(all);
      free(blocks);
      return braid_ERROR_MEMORY;
   }
   pair[0] = g->ilower <= g->iupper ? g->ilower : -1;
   pair[1] = mine;
   MPI_Iallgather(pair, 2, MPI_LONG_LONG, all, 2, MPI_LONG_LONG, core->tcomm, &request);
   if ((err = _braid_Wait(core, &request)))
   {
      _braid_Abandon(all); /* the collective may still write it */
      free(blocks);
      return err;
   }
   for (q = 0; q < core->nprocs; q++)
   {
      if (all[2 * q] < 0) continue;
      blocks[n].rank = q;
      blocks[n].first = all[2 * q]; /* old index for now */
      blocks[n].count = all[2 * q + 1];
      n++;
   }
   free(all);
   qsort(blocks, (size_t) n, sizeof(block), by_first);
   *total = 0;
   for (q = 0; q < n; q++)
   {
      blocks[q].first = *total; /* the new index of its first new point */
      *total += blocks[q].count;
   }
   *blocks_ptr = blocks;
   *nblocks = n;
   return 0;
}

static void free_vectors(braid_Core core, braid_Vector *u, long long n)
{
   long long k;
   for (k = 0; u != NULL && k < n; k++)
   {
      if (u[k] != NULL) core->free(core->app, u[k]);
   }
   free(u);
}

braid_Int _braid_FRefine(braid_Core core, braid_Int *refined)
{
   _braid_Grid *g;
   _braid_RefineState *st = core->refine_state;
   produced p;
   block *blocks = NULL;
   braid_Vector *old = NULL;
   braid_Real *times = NULL;
   int *counts = NULL, *displs = NULL, nblocks = 0, q;
   long long mine = 0, total = 0;
   braid_Int j, nold, err = 0;
   MPI_Request request;

   *refined = 0;
   /* periodic grids and shell vectors (F-point shells) are not refined */
   if (!core->refine || core->periodic || core->useshell || core->grids == NULL) return 0;
   g = core->grids[0];
   nold = g->nupoints + 1;
   memset(&p, 0, sizeof(p));
   for (j = g->ilower; j <= g->iupper; j++)
   {
      mine += j > 0 && st != NULL ? st->rfactor[j - st->ilower] : 1;
   }
   /* every rank takes part: the counts tell all of them whether anyone asked */
   if (core->nrefine >= core->max_refinements)
   {
      if (st != NULL) clear_requests(st);
      return 0;
   }
   if ((err = count_new_points(core, mine, &blocks, &nblocks, &total))) return err;
   if (total - 1 <= (long long) core->ntime || total - 1 > (long long) core->tpoints_cutoff
       || total - 1 > (long long) _BRAID_MAX_NTIME)
   {
      /* nothing asked for, or more steps than allowed: this grid stays */
      if (st != NULL) clear_requests(st);
      free(blocks);
      return 0;
   }
   for (q = 0; q < nblocks && blocks[q].rank != core->myid; q++) continue;
   p.offset = q < nblocks ? blocks[q].first : 0;
   p.count = mine;
   p.cf0 = _braid_LevelCFactor(core, 0);
   p.store_all0 = core->storage == 0;

   /* 1. and 2.: the old values, then the new ones */
   old = (braid_Vector *) _braid_Calloc(core, "the values of the old fine grid", nold,
                                        sizeof(braid_Vector));
   p.t = (braid_Real *) _braid_Calloc(core, "the times of the new points",
                                      (braid_Int) mine, sizeof(braid_Real));
   p.u = (braid_Vector *) _braid_Calloc(core, "the values of the new points",
                                        (braid_Int) mine, sizeof(braid_Vector));
   if (old == NULL || p.t == NULL || p.u == NULL) { err = braid_ERROR_MEMORY; goto out; }
   if ((err = capture(core, old))) goto out;
   if ((err = produce(core, old, &p))) goto out;
   free_vectors(core, old, nold);
   old = NULL;

   /* 3. the times of the new grid, on every rank */
   times = (braid_Real *) _braid_Calloc(core, "the times of the refined grid",
                                        (braid_Int) total, sizeof(braid_Real));
   counts = (int *) _braid_Calloc(core, "the refined grid's blocks", core->nprocs, sizeof(int));
   displs = (int *) _braid_Calloc(core, "the refined grid's blocks", core->nprocs, sizeof(int));
   if (times == NULL || counts == NULL || displs == NULL) { err = braid_ERROR_MEMORY; goto out; }
   for (q = 0; q < nblocks; q++)
   {
      counts[blocks[q].rank] = (int) blocks[q].count;
      displs[blocks[q].rank] = (int) blocks[q].first;
   }
   MPI_Iallgatherv(p.t, (int) mine, MPI_DOUBLE, times, counts, displs, MPI_DOUBLE, core->tcomm,
                   &request);
   if ((err = _braid_Wait(core, &request)))
   {
      _braid_Abandon(times);
      times = NULL;
      goto out;
   }

   /* 4. the new hierarchy: the old one goes (with these requests), the new grid's times stay */
   _braid_CommCleanup(core); /* message sizes are asked anew for the new levels */
   _braid_FreeHierarchy(core);
   free(core->local_norms);
   core->local_norms = NULL;
   core->ntime = (braid_Int) (total - 1);
   core->gupper = core->ntime;
   core->nrefine++;
   if (core->incr_max_levels && core->max_levels < _BRAID_MAX_LEVELS) core->max_levels++;
   core->fine_times = times;
   core->fine_times_lo = 0;
   core->fine_times_hi = core->ntime;
   times = NULL;
   if ((err = _braid_BuildHierarchy(core))) goto out;

   /* 5. the stored values to their new owners */
   if ((err = redistribute(core, &p, blocks))) goto out;

   core->rnorm0 = braid_INVALID_RNORM; /* a relative tolerance starts anew on this grid */
   *refined = 1;
   err = call_sync(core);

out:
   free_vectors(core, old, nold);
   free_vectors(core, p.u, p.count);
   free(p.t);
   free(times);
   free(counts);
   free(displs);
   free(blocks);
   return err;
}
