/*
 * layerbraid MGRIT engine: the semi-private surface of the XBraid interface.
 *
 * Programs and packages built on XBraid include this header to read the solver's grids
 * (`core->grids[level]->ilower`, `->iupper`, `->gupper`, `->ta[]`), to ask for the
 * distribution of time points over ranks before the first solve, and to reach stored
 * vectors. The structures below are the engine's own data, not a copy: what a program reads
 * here is what the engine uses. Fields not documented as readable are the engine's and may
 * change between releases.
 */
#ifndef LAYERBRAID__BRAID_H
#define LAYERBRAID__BRAID_H

#include <stdio.h>
#include <stdlib.h>

#include "braid.h"
#include "braid_layerbraid.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Vectors as the engine stores them ---- */

/** Adjoint ("bar") storage of a vector; unused until the adjoint interface exists. */
typedef struct _braid_VectorBar_struct {
   braid_Vector userVector;
   braid_Int    useCount;
} _braid_VectorBar;
typedef _braid_VectorBar *braid_VectorBar;

/** A set of vectors per time point (Delta correction: the basis a step propagates). */
typedef struct _braid_Basis_struct {
   braid_Vector *userVecs;
   braid_Int     rank;
} _braid_Basis;
typedef _braid_Basis *braid_Basis;

/** One stored time point: userVector is the application's vector (NULL = nothing stored). */
typedef struct _braid_BaseVector_struct {
   braid_Vector    userVector;
   braid_VectorBar bar;
   braid_Basis     basis;
} _braid_BaseVector;
typedef _braid_BaseVector *braid_BaseVector;

/* ---- One level of the time-grid hierarchy, as this rank sees it ---- */
typedef struct {
   braid_Int level;
   braid_Int ilower, iupper;   /* this rank's points; empty when ilower > iupper */
   braid_Int clower, cupper;   /* this rank's first and last C-point */
   braid_Int gupper;           /* last point of the level (points are 0..gupper) */
   braid_Int cfactor;          /* C-point spacing; gupper + 1 on a sequentially solved level */
   braid_Int ncpoints;         /* local C-points */
   braid_Int nupoints;         /* local points (iupper - ilower + 1, or 0) */
   braid_BaseVector *ua;       /* [i - ilower]: current approximation (userVector NULL where
                                * not stored); never NULL itself for a local point */
   braid_Real *ta;             /* [i - ilower] for i in ilower - 1 .. iupper + 1: times */
   braid_Vector *va;           /* levels > 0: the restricted approximation, every point */
   braid_Vector *fa;           /* levels > 0: FAS right-hand side; NULL = zero */

   /* engine-private */
   braid_Int fine_stride;      /* point i of this level is point i * fine_stride of level 0
                                * (before any temporal refinement of level 0) */
   braid_Int store_all;        /* keep F-points too (storage option), not only C-points */
   _braid_BaseVector *ua_alloc;
   braid_Real *ta_alloc;
   braid_Vector ulast;         /* the last time point's value after the solve (last rank) */
} _braid_Grid;

/* ---- Engine-private pieces of the core ---- */

/* A subtree [lo, hi] of the reproducible norm reduction and its partial sum (doubles, so one
 * MPI datatype carries it). A rank has at most two maximal subtrees per tree level. */
typedef struct {
   double lo, hi, value;
} _braid_SubtreeSum;
#define _BRAID_MAX_SUBTREES 128

typedef struct {
   /* reduce.c: this rank's subtree sums of the temporal norm, merged with its children's */
   _braid_SubtreeSum mine[_BRAID_MAX_SUBTREES];
   int nmine;
   double incoming[1 + 3 * _BRAID_MAX_SUBTREES]; /* a child's: count, then lo, hi, value */
   double outgoing[1 + 3 * _BRAID_MAX_SUBTREES]; /* to the parent */
   double total;               /* the reduced value (max, min, or rank 0's sum) */
   /* the receive of another rank's failure notice, posted before the first wait of a solve
    * on several ranks and cancelled at its end (comm.c); abandoned with these buffers when
    * the solve failed, since MPI may still write into notice_text */
   MPI_Request notice_request;
   int notice_posted;
   int notice_kept, notice_source; /* a notice that arrived as the receive was cancelled */
   char notice_text[layerbraid_FAILURE_TEXT_MAX];
} _braid_CollectiveBuffers;

typedef struct {
   MPI_Request request;
   void *buffer;
   braid_Int active;
} _braid_Message;

/* Levels beyond this cannot exist: cfactor >= 2 and ntime fits a braid_Int. */
#define _BRAID_MAX_LEVELS 32

/* Wall-clock totals of the engine's phases and of the user's callbacks (braid_SetTimings). */
typedef struct {
   braid_Real drive, step, init, clone, free, sum, spatialnorm, access, bufsize, bufpack,
      bufunpack, residual, scoarsen, srefine, sync, mpi_wait;
   braid_Real step_coarsest;       /* the part of step spent on the coarsest level */
} _braid_Timers;

/* Counts of this rank's work and point-to-point messages (layerbraid_GetProfile), kept while
 * a profile is asked for (core->profile); cleared with the timers by braid_ResetTimer. */
typedef struct {
   braid_Int steps, steps_coarsest;          /* calls of the user's step */
   braid_Int messages_sent, messages_received;
   braid_Real bytes_sent;
} _braid_Counts;

struct _braid_Core_struct {
   /* problem */
   MPI_Comm comm_world, comm;
   MPI_Comm tcomm;                 /* private duplicate of comm: all engine messages go here */
   int myid, nprocs, myid_world;
   braid_Real tstart, tstop;
   braid_Int ntime;                /* intervals of the fine grid (grows with refinement) */
   braid_Int gupper;               /* last fine point: ntime, or ntime - 1 when periodic */
   braid_App app;

   /* callbacks */
   braid_PtFcnStep step;
   braid_PtFcnInit init;
   braid_PtFcnClone clone;
   braid_PtFcnFree free;
   braid_PtFcnSum sum;
   braid_PtFcnSpatialNorm spatialnorm;
   braid_PtFcnAccess access;
   braid_PtFcnBufSize bufsize;
   braid_PtFcnBufPack bufpack;
   braid_PtFcnBufUnpack bufunpack;
   braid_PtFcnBufAlloc bufalloc;
   braid_PtFcnBufFree buffree;
   braid_PtFcnSync sync;
   braid_PtFcnResidual residual;       /* user residual: step receives fstop */
   braid_PtFcnResidual full_rnorm_res; /* residual for the full (C and F) norm */
   braid_PtFcnTimeGrid tgrid;
   braid_PtFcnSCoarsen scoarsen;
   braid_PtFcnSRefine srefine;
   braid_PtFcnSInit sinit;
   braid_PtFcnSClone sclone;
   braid_PtFcnSFree sfree;
   braid_PtFcnInnerProd inner_prod;

   /* options */
   braid_Int max_levels, min_coarse, incr_max_levels;
   braid_Int cfactor_default, cfactor[_BRAID_MAX_LEVELS];   /* 0 = use default */
   braid_Int nrelax_default, nrelax[_BRAID_MAX_LEVELS];     /* -1 = use default */
   braid_Real cwt_default, cwt[_BRAID_MAX_LEVELS];          /* 0 = use default */
   braid_Int max_iter;
   braid_Real tol;
   braid_Int rtol;                 /* 1: tol is relative to the first residual */
   braid_Int tnorm;                /* 1 sum, 2 l2, 3 max */
   braid_Int skip;
   braid_Int fmg, nfmg, nfmg_vcyc;
   braid_Int storage;
   braid_Int useshell;
   braid_Int seq_soln;
   braid_Int final_fcrelax;
   braid_Int residual_computation;
   braid_Int reverted_ranks;
   braid_Int periodic;
   braid_Int relax_only_cg;
   braid_Int refine, max_refinements, tpoints_cutoff;
   braid_Int richardson, est_error, order;
   braid_Int print_level, access_level, io_level, timings;
   braid_Int time_calls;           /* layerbraid_SetTimeCalls: level-2 timers without files */
   braid_Int count_calls;          /* layerbraid_SetProfile: keep the counts */
   braid_Int profile;              /* what the step and message paths record, derived from
                                    * the three above (_braid_ProfileUpdate): 0 nothing, else
                                    * _BRAID_PROFILE_COUNT, plus _BRAID_PROFILE_TIME */
   FILE *outfile;                  /* rank 0 of comm_world prints here */
   braid_Int outfile_owned;
   char *timer_file_stem;

   /* hierarchy, built by the first braid_Drive (and rebuilt after a temporal refinement) */
   braid_Int nlevels;
   _braid_Grid **grids;
   braid_Int warm_restart;         /* 1 when braid_Drive runs on an existing solution */
   braid_Real *fine_times;         /* user time grid: times of fine points fine_times_lo.. */
   braid_Int fine_times_lo, fine_times_hi;

   /* solve state */
   braid_Int ndrives;              /* completed or started calls of braid_Drive */
   braid_Int iter;                 /* current cycle (top-of-cycle pass), 0-based */
   braid_Int niter;                /* cycles done by the last braid_Drive */
   braid_Int done;
   braid_Int nrefine;              /* temporal refinements done */
   braid_Int r_space;              /* a step of this cycle asked for spatial refinement */
   struct _braid_RefineState *refine_state; /* refine.c: refinement asked for per interval */
   braid_Real rnorm;               /* residual of the current cycle, -1 if not computed */
   braid_Real rnorm0;              /* reference for the relative tolerance */
   braid_Real full_rnorm, full_rnorm0;   /* braid_SetFullRNormRes; -1 if not computed */
   braid_Real *local_norms_full;         /* scratch: per-point full residual norms */
   braid_Real *rnorms;             /* history: nrnorms entries of rnorms_capacity */
   braid_Int nrnorms, rnorms_capacity;
   braid_Real *local_norms;        /* scratch: per-C-point residual norms of this rank */
   _braid_CollectiveBuffers *collective_buffers; /* separate: may outlive the core (_braid_Abandon) */
   braid_Real wall_start, wall_time;
   _braid_Timers timers;
   _braid_Counts counts;
   struct _braid_RichardsonState *richardson_state; /* richardson.c's work space */
   braid_Real *estimate;           /* Richardson error estimates at the local fine points
                                    * [i - ilower] of level 0, -1 where none is available */
   braid_Real old_fine_tolx;       /* braid_GetSpatialAccuracy's memory (-1 = none yet) */
   braid_Int tight_fine_tolx;      /* 1 once the tightest fine tolerance was used */

   /* failures: a failed callback here, or a notice that another rank's failed */
   braid_Int failed;
   int failure_rank;
   char failure_text[layerbraid_FAILURE_TEXT_MAX];
   char pending_text[layerbraid_FAILURE_TEXT_MAX]; /* set by the host before a failure */
   layerbraid_PtFcnPoll poll;
   void *poll_data;
   braid_Real last_poll;
   braid_Real last_notice_check;
   braid_Int steps_since_check;
   braid_Int quiet_failures;

   /* messages: at most one send and one receive in flight per rank */
   braid_Int msg_bytes;
   _braid_Message send_msg, recv_msg;
   _braid_Status status;           /* filled before each callback */

   /* Delta correction and Lyapunov estimation (delta.c): options, and the work space the
    * first braid_Drive with delta_rank > 0 allocates */
   braid_Int delta_rank;           /* 0 = off */
   braid_PtFcnInitBasis basis_init;
   braid_Int delta_defer_level, delta_defer_iter;
   braid_Int lyapunov, lyap_relax, lyap_cglv, lyap_exponents;
   struct _braid_DeltaState *delta_state;

   /* XBraid_Adjoint (adjoint.c): set by braid_InitAdjoint, NULL otherwise */
   braid_Int adjoint;
   struct _braid_AdjointState *adjoint_state;
};
typedef struct _braid_Core_struct _braid_Core;

/** Where _braid_printf writes: the print file last chosen with braid_SetPrintFile, else
 *  stdout (NULL). */
extern FILE *_braid_printfile;

/* ---- Accessors, as XBraid programs spell them ---- */
#define _braid_CoreElt(core, elt)  ((core)->elt)
#define _braid_CoreFcn(core, fcn)  (*((core)->fcn))
#define _braid_GridElt(grid, elt)  ((grid)->elt)

#ifndef _braid_max
#define _braid_max(a, b) (((a) < (b)) ? (b) : (a))
#endif
#ifndef _braid_min
#define _braid_min(a, b) (((a) < (b)) ? (a) : (b))
#endif
#ifndef _braid_isnan
#define _braid_isnan(a) ((a) != (a))
#endif

#define _braid_TAlloc(type, count)  ((type *) malloc((size_t) (sizeof(type) * (count))))
#define _braid_CTAlloc(type, count) ((type *) calloc((size_t) (count), sizeof(type)))
#define _braid_TReAlloc(ptr, type, count) \
   ((type *) realloc((void *) (ptr), (size_t) (sizeof(type) * (count))))
#define _braid_TFree(ptr) (free((void *) (ptr)), (ptr) = NULL)

/* Index arithmetic on a level with C-point spacing cfactor. */
#define _braid_MapFineToCoarse(findex, cfactor, cindex) ((cindex) = (findex) / (cfactor))
#define _braid_MapCoarseToFine(cindex, cfactor, findex) ((findex) = (cindex) * (cfactor))
#define _braid_IsFPoint(index, cfactor) ((index) % (cfactor))
#define _braid_IsCPoint(index, cfactor) (!_braid_IsFPoint(index, cfactor))
#define _braid_NextCPoint(index, cfactor) \
   (((braid_Int) ((index) + (cfactor) - 1) / (cfactor)) * (cfactor))
#define _braid_PriorCPoint(index, cfactor) (((braid_Int) (index) / (cfactor)) * (cfactor))

/* ---- The distribution of time points over ranks ---- */

/** The points [*ilower_ptr, *iupper_ptr] that block `proc` of nprocs holds when npoints
 *  points are split in contiguous blocks, the first npoints % nprocs blocks one point longer
 *  (empty, ilower > iupper, when there are more blocks than points). */
braid_Int _braid_GetBlockDistInterval(braid_Int npoints, braid_Int nprocs, braid_Int proc,
                                      braid_Int *ilower_ptr, braid_Int *iupper_ptr);
/** The block holding point `index` of that distribution, -1 if index is outside
 *  [0, npoints - 1]; with `periodic` the index is taken modulo npoints first. */
braid_Int _braid_GetBlockDistProc(braid_Int npoints, braid_Int nprocs, braid_Int index,
                                  braid_Int periodic, braid_Int *proc_ptr);
/** This rank's fine-grid points; valid right after braid_Init (before any braid_Drive) and
 *  honouring braid_SetRevertedRanks: reverted, rank r holds the mirror image
 *  [N - iupper_r, N - ilower_r] of its forward block. */
braid_Int _braid_GetDistribution(braid_Core core, braid_Int *ilower_ptr,
                                 braid_Int *iupper_ptr);
/** The rank (of the temporal communicator) holding point `index` of `level`; -1 outside the
 *  level (periodic problems wrap the index). */
braid_Int _braid_GetProc(braid_Core core, braid_Int level, braid_Int index,
                         braid_Int *proc_ptr);

/** The coarsening factor of `level`: the option as braid_SetCFactor left it (or its
 *  default), before the grids exist; the grid's own once they do (gupper + 1 on a level
 *  solved sequentially). */
braid_Int _braid_GetCFactor(braid_Core core, braid_Int level, braid_Int *cfactor_ptr);

/* ---- Stored vectors ---- */

/** Where point `index` of `level` is kept: *uindex_ptr = index - ilower and
 *  *store_flag_ptr = 0 when a vector is stored there, -1 when only a shell is (braid_SetShell);
 *  *uindex_ptr = -1 and *store_flag_ptr = -2 when nothing is. */
braid_Int _braid_UGetIndex(braid_Core core, braid_Int level, braid_Int index,
                           braid_Int *uindex_ptr, braid_Int *store_flag_ptr);
/** The engine's own stored vector (or shell) at point `index` of `level` (not a copy): its
 *  userVector is the application's vector. NULL when nothing is stored there or the point is
 *  not local. */
braid_Int _braid_UGetVectorRef(braid_Core core, braid_Int level, braid_Int index,
                               braid_BaseVector *u_ptr);
#ifdef __cplusplus
}
#endif

#endif
