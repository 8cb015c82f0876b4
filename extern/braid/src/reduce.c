/*
 * Reductions over the ranks, by point-to-point messages along a binomial tree (up to rank 0,
 * then back down): the temporal norm of the residual, reproducible whatever the number of
 * ranks, and the success vote at the end of a solve.
 *
 * Why not MPI's collectives: the engine must keep watching for another rank's failure notice
 * while it waits, so it would need non-blocking collectives, and the norm needs its sum in a
 * fixed order, which a gather to rank 0 gives at O(P) work and message count there. Here each
 * rank exchanges O(log P) messages of O(log N) values; every wait is on one point-to-point
 * request (_braid_Wait), which a simulator such as SimGrid's SMPI also handles cheaply (its
 * non-blocking collectives cost host time that grows faster than P^2).
 *
 * The reproducible sum: the sum over points 1..N is defined as a pairwise sum over a fixed
 * binary tree of the point indices. A rank sums the largest subtrees that lie inside its own
 * points; a parent in the binomial tree of ranks merges its children's lists, which cover
 * adjacent ranges of points, into the largest subtrees inside their union, and rank 0 completes
 * the tree. Every addition is one node of the fixed tree, its left child plus its right child,
 * so the result does not depend on how the points are distributed.
 */
#include <math.h>
#include <string.h>

#include "core_internal.h"

#define REDUCE_TAG 8    /* a child's partial result, up the tree */
#define BROADCAST_TAG 9 /* the result, down the tree */

static double tree_sum_local(const braid_Real *norms, braid_Int first, braid_Int lo, braid_Int hi)
{
   braid_Int mid;
   if (lo == hi) return norms[lo - first];
   mid = lo + (hi - lo) / 2;
   return tree_sum_local(norms, first, lo, mid) + tree_sum_local(norms, first, mid + 1, hi);
}

/* The value of tree node [lo, hi] from subtree sums that cover it. */
static double tree_sum_parts(const _braid_SubtreeSum *parts, int nparts, braid_Int lo,
                             braid_Int hi)
{
   braid_Int mid;
   int k;
   for (k = 0; k < nparts; k++)
   {
      if (parts[k].lo == (double) lo && parts[k].hi == (double) hi) return parts[k].value;
   }
   if (lo == hi) return NAN; /* not covered: cannot happen for adjacent ranges */
   mid = lo + (hi - lo) / 2;
   return tree_sum_parts(parts, nparts, lo, mid) + tree_sum_parts(parts, nparts, mid + 1, hi);
}

/* The largest subtrees of node [lo, hi] inside [a, b], valued from the local norms (parts ==
 * NULL; norms[0] is point a) or from subtree sums covering [a, b]. */
static void collect_subtrees(const braid_Real *norms, const _braid_SubtreeSum *parts,
                             int nparts, braid_Int a, braid_Int b, braid_Int lo, braid_Int hi,
                             _braid_SubtreeSum *out, int *nout)
{
   braid_Int mid;
   if (hi < a || lo > b) return;
   if (a <= lo && hi <= b)
   {
      out[*nout].lo = (double) lo;
      out[*nout].hi = (double) hi;
      out[*nout].value = parts == NULL ? tree_sum_local(norms, a, lo, hi)
                                       : tree_sum_parts(parts, nparts, lo, hi);
      (*nout)++;
      return;
   }
   mid = lo + (hi - lo) / 2;
   collect_subtrees(norms, parts, nparts, a, b, lo, mid, out, nout);
   collect_subtrees(norms, parts, nparts, a, b, mid + 1, hi, out, nout);
}

/* Merge a child's list (incoming: count, then lo, hi, value triples) into this rank's. */
static void merge_subtrees(_braid_CollectiveBuffers *ns, braid_Int npoints)
{
   _braid_SubtreeSum both[2 * _BRAID_MAX_SUBTREES];
   int n = ns->nmine, m = (int) ns->incoming[0], k;
   double a, b;
   if (m <= 0) return;
   memcpy(both, ns->mine, (size_t) n * sizeof(_braid_SubtreeSum));
   memcpy(both + n, ns->incoming + 1, (size_t) m * sizeof(_braid_SubtreeSum));
   a = both[0].lo;
   b = both[0].hi;
   for (k = 1; k < n + m; k++)
   {
      if (both[k].lo < a) a = both[k].lo;
      if (both[k].hi > b) b = both[k].hi;
   }
   ns->nmine = 0;
   collect_subtrees(NULL, both, n + m, (braid_Int) a, (braid_Int) b, 1, npoints, ns->mine,
                    &ns->nmine);
}

typedef enum { REDUCE_SUBTREES, REDUCE_MAX, REDUCE_MIN } reduce_kind;

/* This rank's part in the binomial reduction to rank 0: receive from the children (ranks
 * r + 1, r + 2, r + 4, ... below the lowest set bit of r), combining, then send to the parent
 * r - lowbit(r). The partial result is ns->mine (subtrees) or ns->total (max, min). */
static braid_Int reduce_up(braid_Core core, reduce_kind kind, braid_Int npoints)
{
   _braid_CollectiveBuffers *ns = core->collective_buffers;
   int me = (int) core->myid, nprocs = (int) core->nprocs, mask, count;
   MPI_Request request;
   braid_Int err;
   for (mask = 1; mask < nprocs; mask <<= 1)
   {
      if (me & mask)
      {
         if (kind == REDUCE_SUBTREES)
         {
            ns->outgoing[0] = (double) ns->nmine;
            memcpy(ns->outgoing + 1, ns->mine, (size_t) ns->nmine * sizeof(_braid_SubtreeSum));
            count = 1 + 3 * ns->nmine;
         }
         else
         {
            ns->outgoing[0] = ns->total;
            count = 1;
         }
         MPI_Isend(ns->outgoing, count, MPI_DOUBLE, me - mask, REDUCE_TAG, core->tcomm,
                   &request);
         return _braid_Wait(core, &request);
      }
      if (me + mask >= nprocs) continue;
      MPI_Irecv(ns->incoming, 1 + 3 * _BRAID_MAX_SUBTREES, MPI_DOUBLE, me + mask, REDUCE_TAG,
                core->tcomm, &request);
      if ((err = _braid_Wait(core, &request))) return err;
      if (kind == REDUCE_SUBTREES)
      {
         merge_subtrees(ns, npoints);
      }
      else if (kind == REDUCE_MAX)
      {
         /* NaN must survive: fmax would drop it */
         if (ns->incoming[0] != ns->incoming[0] || ns->incoming[0] > ns->total)
         {
            ns->total = ns->incoming[0];
         }
      }
      else if (ns->incoming[0] < ns->total)
      {
         ns->total = ns->incoming[0];
      }
   }
   return 0;
}

/* ns->total from rank 0 to every rank, down the same binomial tree. */
static braid_Int broadcast_down(braid_Core core)
{
   _braid_CollectiveBuffers *ns = core->collective_buffers;
   int me = (int) core->myid, nprocs = (int) core->nprocs, mask = 1;
   MPI_Request request;
   braid_Int err;
   while (mask < nprocs && !(me & mask)) mask <<= 1; /* lowbit(me), or past nprocs on rank 0 */
   if (me != 0)
   {
      MPI_Irecv(&ns->total, 1, MPI_DOUBLE, me - mask, BROADCAST_TAG, core->tcomm, &request);
      if ((err = _braid_Wait(core, &request))) return err;
   }
   for (mask >>= 1; mask > 0; mask >>= 1)
   {
      if (me + mask >= nprocs) continue;
      MPI_Isend(&ns->total, 1, MPI_DOUBLE, me + mask, BROADCAST_TAG, core->tcomm, &request);
      if ((err = _braid_Wait(core, &request))) return err;
   }
   return 0;
}

braid_Int _braid_AgreeSuccess(braid_Core core)
{
   /* a rank that failed returned without joining, and its notice ends this wait */
   _braid_CollectiveBuffers *ns = core->collective_buffers;
   braid_Int err;
   if (core->nprocs == 1) return 0;
   ns->total = 1.0;
   if ((err = reduce_up(core, REDUCE_MIN, 0))) return err;
   return broadcast_down(core);
}

braid_Int _braid_TemporalNorm(braid_Core core, const braid_Real *norms, braid_Int first,
                              braid_Int count, braid_Int npoints_global, braid_Real *result)
{
   _braid_CollectiveBuffers *ns = core->collective_buffers;
   braid_Int k, err;

   if (core->tnorm == 3)
   {
      ns->total = 0.0;
      for (k = 0; k < count; k++)
      {
         if (norms[k] != norms[k] || norms[k] > ns->total) ns->total = norms[k];
      }
      if (core->nprocs > 1)
      {
         if ((err = reduce_up(core, REDUCE_MAX, 0)) || (err = broadcast_down(core))) return err;
      }
      *result = ns->total;
      return 0;
   }

   /* squares for the l2 norm, plain norms for the sum */
   ns->nmine = 0;
   if (count > 0)
   {
      braid_Real *terms = (braid_Real *) _braid_Calloc(core, "the terms of the temporal norm",
                                                       count, sizeof(braid_Real));
      if (terms == NULL) return braid_ERROR_MEMORY;
      for (k = 0; k < count; k++)
      {
         terms[k] = core->tnorm == 2 ? norms[k] * norms[k] : norms[k];
      }
      collect_subtrees(terms, NULL, 0, first, first + count - 1, 1, npoints_global, ns->mine,
                       &ns->nmine);
      free(terms);
   }
   if (core->nprocs > 1 && (err = reduce_up(core, REDUCE_SUBTREES, npoints_global))) return err;
   ns->total = 0.0;
   if (core->myid == 0 && npoints_global > 0)
   {
      ns->total = tree_sum_parts(ns->mine, ns->nmine, 1, npoints_global);
   }
   if (core->nprocs > 1 && (err = broadcast_down(core))) return err;
   *result = core->tnorm == 2 ? sqrt(ns->total) : ns->total;
   return 0;
}
