/*
 * Richardson extrapolation and error estimation on the fine grid
 * (braid_SetRichardsonEstimation).
 *
 * On a fine C-interval (ci - m, ci], m fine steps Phi^m and one coarse step Phi_c of the same
 * length both approximate the exact flow. With local order k (local error C dt^k per step)
 *    Phi^m(u) ~ exact + C S,   S = sum of the fine steps' dt_i^k,
 *    Phi_c(u) ~ exact + C D,   D = (t_ci - t_{ci-m})^k,
 * so C ~ (Phi^m - Phi_c) / (S - D), and the extrapolation that cancels the C terms is
 *    Phi_RE(u) = (D Phi^m(u) - S Phi_c(u)) / (D - S)          (2 Phi^2 - Phi_c for m = 2, k = 2).
 * With extrapolation the fine-grid equations at the C-points become u_ci = Phi_RE(u_{ci-m}):
 * C-relaxation and the FAS residual on level 0 use Phi_RE, so MGRIT converges to C-point
 * values of one order higher. The error estimate of fine point i of the interval is
 * ||C|| dt_i^k, the local error of the step into i.
 *
 * Each level-0 sweep that propagates to C-points starts by taking the coarse step
 * w_c = Phi_c(u_c) from every local C-point c; the one whose interval ends on the next rank
 * is sent there. A rank holding the first F-points of an interval whose C-point lies on the
 * next rank continues stepping to that C-point (m - 1 steps at most), so every point gets the
 * same estimate on any number of ranks. The exception: a rank holding fewer than m points may
 * have no C-point of its own; its points keep the estimate -1 (none).
 */
#include <math.h>
#include <stdlib.h>

#include "core_internal.h"

#define RICHARDSON_TAG 90

struct _braid_RichardsonState {
   braid_Vector *w;        /* [j - ilower_1]: Phi_c from level-0 C-point j * m, or NULL */
   braid_Int nw;
   braid_Vector w_left;    /* received: Phi_c from the last C-point of the rank on the left */
   _braid_Message send, recv;
   braid_Int receiving;
};

static braid_Int active(braid_Core core, braid_Int level)
{
   return level == 0 && core->nlevels > 1 && (core->richardson || core->est_error);
}

/* D and S of the interval ending at fine C-point ci (times from the grid, also remote ones). */
static void interval_weights(braid_Core core, braid_Int ci, braid_Real *D, braid_Real *S)
{
   braid_Int m = core->grids[0]->cfactor, i;
   braid_Real k = (braid_Real) core->order;
   *S = 0.0;
   for (i = ci - m + 1; i <= ci; i++)
   {
      *S += pow(_braid_Time(core, 0, i) - _braid_Time(core, 0, i - 1), k);
   }
   *D = pow(_braid_Time(core, 0, ci) - _braid_Time(core, 0, ci - m), k);
}

static void free_w(braid_Core core, struct _braid_RichardsonState *r)
{
   braid_Int k;
   for (k = 0; k < r->nw; k++) _braid_FreeVector(core, &r->w[k]);
   _braid_FreeVector(core, &r->w_left);
}

void _braid_RichardsonFree(braid_Core core)
{
   struct _braid_RichardsonState *r = core->richardson_state;
   if (r == NULL) return;
   free_w(core, r);
   free(r->w);
   _braid_MessageRelease(core, &r->send);
   _braid_MessageRelease(core, &r->recv);
   free(r);
   core->richardson_state = NULL;
}

static braid_Int ensure_state(braid_Core core)
{
   const _braid_Grid *c = core->grids[1];
   struct _braid_RichardsonState *r = core->richardson_state;
   braid_Int n = c->nupoints;
   if (r != NULL) return 0;
   r = (struct _braid_RichardsonState *) _braid_Calloc(core, "the Richardson state", 1,
                                                        sizeof(*r));
   if (r == NULL) return braid_ERROR_MEMORY;
   core->richardson_state = r;
   r->nw = n;
   r->w = (braid_Vector *) _braid_Calloc(core, "the coarse steps of the C-points", n,
                                         sizeof(braid_Vector));
   if (r->w == NULL) return braid_ERROR_MEMORY;
   if (core->estimate == NULL)
   {
      braid_Int k, np = core->grids[0]->nupoints;
      core->estimate = (braid_Real *) _braid_Calloc(core, "the error estimates", np,
                                                    sizeof(braid_Real));
      if (core->estimate == NULL) return braid_ERROR_MEMORY;
      for (k = 0; k < np; k++) core->estimate[k] = -1.0;
   }
   return 0;
}

braid_Int _braid_RichardsonBegin(braid_Core core, braid_Int level, braid_Int caller)
{
   const _braid_Grid *f, *c;
   struct _braid_RichardsonState *r;
   braid_Int m, j, err;
   if (!active(core, level)) return 0;
   if ((err = ensure_state(core))) return err;
   r = core->richardson_state;
   f = core->grids[0];
   c = core->grids[1];
   m = f->cfactor;
   free_w(core, r);
   /* the first interval starts on the rank on the left when its C-point is not point 0 */
   r->receiving = c->ilower <= c->iupper && c->ilower > 0 && (c->ilower - 1) * m < f->ilower;
   if (r->receiving
       && (err = _braid_MessageRecv(core, &r->recv, _braid_Owner(core, 1, c->ilower - 1),
                                    RICHARDSON_TAG)))
   {
      return err;
   }
   core->status.calling_function = caller;
   for (j = c->iupper; j >= c->ilower; j--)
   {
      braid_Vector *w = &r->w[j - c->ilower];
      if (j == c->gupper) continue; /* no interval after the last point */
      err = core->clone(core->app, _braid_Stored(core, 0, j * m), w);
      if (err) return _braid_CallbackFailed(core, "clone", err);
      /* the coarse step of the interval (j m, (j + 1) m], as level 1 takes it */
      if ((err = _braid_Step(core, 1, j + 1, NULL, *w, 0, caller))) return err;
      if (j == c->iupper && (j + 1) * m > f->iupper
          && (err = _braid_MessageSend(core, &r->send, 1, j, *w, _braid_Owner(core, 1, j + 1),
                                       RICHARDSON_TAG)))
      {
         return err;
      }
   }
   return 0;
}

/* The coarse step of the interval ending at fine C-point ci. */
static braid_Int coarse_step_into(braid_Core core, braid_Int ci, braid_Vector *w)
{
   struct _braid_RichardsonState *r = core->richardson_state;
   const _braid_Grid *c = core->grids[1];
   braid_Int j = ci / core->grids[0]->cfactor - 1, err;
   if (j >= c->ilower)
   {
      *w = r->w[j - c->ilower];
      return 0;
   }
   if (r->w_left == NULL)
   {
      if (!r->receiving)
      {
         _braid_Error("braid_Drive", "Richardson: no coarse step for the interval ending at %d",
                      (int) ci);
         return braid_ERROR_GENERIC;
      }
      if ((err = _braid_MessageUnpack(core, &r->recv, 1, j, &r->w_left))) return err;
      r->receiving = 0;
   }
   *w = r->w_left;
   return 0;
}

/* From Phi^m(u) and w = Phi_c(u) of the interval ending at ci: the estimates of its local
 * points, and (with extrapolation, when uprop is to be replaced) uprop = Phi_RE(u). */
static braid_Int combine(braid_Core core, braid_Int ci, braid_Vector uprop, braid_Vector w,
                         braid_Int extrapolate)
{
   const _braid_Grid *f = core->grids[0];
   braid_Real D, S, norm, C;
   braid_Vector diff = NULL;
   braid_Int i, err;
   interval_weights(core, ci, &D, &S);
   if (core->est_error)
   {
      err = core->clone(core->app, uprop, &diff);
      if (err) return _braid_CallbackFailed(core, "clone", err);
      err = core->sum(core->app, -1.0, w, 1.0, diff);
      if (!err) err = core->spatialnorm(core->app, diff, &norm);
      core->free(core->app, diff);
      if (err) return _braid_CallbackFailed(core, "spatialnorm", err);
      C = norm / fabs(S - D);
      for (i = ci - f->cfactor + 1; i <= ci; i++)
      {
         if (i >= f->ilower && i <= f->iupper)
         {
            core->estimate[i - f->ilower] =
               C * pow(_braid_Time(core, 0, i) - _braid_Time(core, 0, i - 1), core->order);
         }
      }
   }
   if (extrapolate && core->richardson)
   {
      err = core->sum(core->app, -S / (D - S), w, D / (D - S), uprop);
      if (err) return _braid_CallbackFailed(core, "sum", err);
   }
   return 0;
}

braid_Int _braid_RichardsonCPoint(braid_Core core, braid_Int level, braid_Int ci,
                                  braid_Vector uprop)
{
   braid_Vector w;
   braid_Int err;
   if (!active(core, level) || ci == 0) return 0;
   if ((err = coarse_step_into(core, ci, &w))) return err;
   return combine(core, ci, uprop, w, 1);
}

braid_Int _braid_RichardsonTrailing(braid_Core core, braid_Int level, braid_Vector u_iupper,
                                    braid_Int caller)
{
   const _braid_Grid *f = core->grids[0];
   struct _braid_RichardsonState *r = core->richardson_state;
   braid_Int m, cnext, i, err;
   braid_Vector u = NULL;
   if (!active(core, level) || !core->est_error) return 0;
   m = f->cfactor;
   cnext = (f->iupper / m + 1) * m;
   if (cnext > f->gupper || f->cupper < f->ilower) return 0; /* no local start of it */
   err = core->clone(core->app, u_iupper, &u);
   if (err) return _braid_CallbackFailed(core, "clone", err);
   for (i = f->iupper + 1; i <= cnext && !err; i++)
   {
      err = _braid_Step(core, 0, i, NULL, u, 0, caller);
   }
   if (!err) err = combine(core, cnext, u, r->w[f->cupper / m - core->grids[1]->ilower], 0);
   core->free(core->app, u);
   return err;
}

braid_Int _braid_RichardsonEnd(braid_Core core, braid_Int level)
{
   struct _braid_RichardsonState *r = core->richardson_state;
   if (!active(core, level) || r == NULL) return 0;
   return _braid_MessageWait(core, &r->send);
}
