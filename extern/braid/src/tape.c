/*
 * The action tape of XBraid_Adjoint: recording the actions of one state iteration and
 * evaluating them backwards (reverse-mode differentiation at the level of the user's
 * callbacks: step_diff for a step, objectiveT_diff for an objective term, the transposed
 * linear combination for a sum).
 */
#include <stdlib.h>

#include "adjoint.h"

braid_Int _braid_TapeNewVar(_braid_Tape *tape)
{
   return tape->nvars++;
}

braid_Vector _braid_TapeHeld(const _braid_Tape *tape, braid_Int var)
{
   return var >= 0 && var < tape->held_capacity ? tape->held[var] : NULL;
}

/* the value of action's output, if it keeps one */
static braid_Int hold(braid_Core core, _braid_Tape *tape, const _braid_Action *action)
{
   braid_Vector v = action->kind == _braid_ACTION_STEP   ? action->ustop
                    : action->kind == _braid_ACTION_RECV ? action->u : NULL;
   braid_Int k;
   if (v == NULL || action->out < 0) return 0;
   if (action->out >= tape->held_capacity)
   {
      braid_Int capacity = tape->nvars > 2 * tape->held_capacity ? tape->nvars
                                                                 : 2 * tape->held_capacity;
      void *held = tape->held;
      braid_Int err = _braid_Realloc(core, "the adjoint's kept values", &held, capacity,
                                     sizeof(braid_Vector));
      if (err) return err;
      tape->held = (braid_Vector *) held;
      for (k = tape->held_capacity; k < capacity; k++) tape->held[k] = NULL;
      tape->held_capacity = capacity;
   }
   tape->held[action->out] = v;
   return 0;
}

braid_Int _braid_TapePush(braid_Core core, _braid_Tape *tape, const _braid_Action *action)
{
   if (tape->nactions == tape->capacity)
   {
      braid_Int capacity = tape->capacity > 0 ? 2 * tape->capacity : 256;
      void *actions = tape->actions;
      braid_Int err = _braid_Realloc(core, "the adjoint's action tape", &actions, capacity,
                                     sizeof(_braid_Action));
      if (err) return err;
      tape->actions = (_braid_Action *) actions;
      tape->capacity = capacity;
   }
   tape->actions[tape->nactions++] = *action;
   return hold(core, tape, action);
}

braid_Int _braid_ZeroLike(braid_Core core, braid_Vector u, braid_Vector *v_ptr)
{
   braid_Int err = core->clone(core->app, u, v_ptr);
   if (err) return _braid_CallbackFailed(core, "clone", err);
   err = core->sum(core->app, 0.0, u, 0.0, *v_ptr);
   return err ? _braid_CallbackFailed(core, "sum", err) : 0;
}

static braid_Int ensure_bars(braid_Core core, _braid_Tape *tape)
{
   braid_Int k;
   if (tape->bars_capacity >= tape->nvars) return 0;
   {
      void *bars = tape->bars;
      braid_Int err = _braid_Realloc(core, "the adjoint variables", &bars, tape->nvars,
                                     sizeof(braid_Vector));
      if (err) return err;
      tape->bars = (braid_Vector *) bars;
   }
   for (k = tape->bars_capacity; k < tape->nvars; k++) tape->bars[k] = NULL;
   tape->bars_capacity = tape->nvars;
   return 0;
}

braid_Int _braid_TapeAddBar(braid_Core core, _braid_Tape *tape, braid_Int var, braid_Real coef,
                            braid_Vector v)
{
   braid_Int err;
   if (var < 0 || coef == 0.0) return 0;
   if ((err = ensure_bars(core, tape))) return err;
   if (tape->bars[var] == NULL)
   {
      err = core->clone(core->app, v, &tape->bars[var]);
      if (err) return _braid_CallbackFailed(core, "clone", err);
      if (coef == 1.0) return 0;
      err = core->sum(core->app, 0.0, v, coef, tape->bars[var]);
   }
   else
   {
      err = core->sum(core->app, coef, v, 1.0, tape->bars[var]);
   }
   return err ? _braid_CallbackFailed(core, "sum", err) : 0;
}

/* in_bar += Phi'(u)^T out_bar (and the design part into the app), through step_diff. */
static braid_Int reverse_step(braid_Core core, _braid_Tape *tape, const _braid_Action *a)
{
   struct _braid_AdjointState *adj = core->adjoint_state;
   braid_Vector out_bar = tape->bars[a->out], u_bar = NULL, ustop_bar = NULL;
   _braid_Status *s;
   braid_Int err;
   if (out_bar == NULL) return 0;
   if ((err = core->clone(core->app, out_bar, &u_bar))) return _braid_CallbackFailed(core, "clone", err);
   if ((err = _braid_ZeroLike(core, out_bar, &ustop_bar))) goto out;
   s = _braid_StatusFor(core, a->level, a->index - 1, _braid_Time(core, a->level, a->index - 1),
                        _braid_Time(core, a->level, a->index), braid_ASCaller_BaseStep_diff);
   err = adj->step_diff(core->app, a->ustop, a->u, ustop_bar, u_bar, (braid_StepStatus) s);
   if (err) { err = _braid_CallbackFailed(core, "step_diff", err); goto out; }
   err = _braid_TapeAddBar(core, tape, a->in, 1.0, u_bar);
out:
   if (u_bar != NULL) core->free(core->app, u_bar);
   if (ustop_bar != NULL) core->free(core->app, ustop_bar);
   return err;
}

static braid_Int reverse_objective(braid_Core core, _braid_Tape *tape, const _braid_Action *a,
                                   braid_Real F_bar)
{
   struct _braid_AdjointState *adj = core->adjoint_state;
   braid_Vector u_bar = NULL;
   _braid_Status *s;
   braid_Int err;
   if ((err = _braid_ZeroLike(core, a->u, &u_bar))) return err;
   s = _braid_StatusFor(core, 0, a->index, _braid_Time(core, 0, a->index), 0.0,
                        braid_ASCaller_FRestrict);
   err = adj->objT_diff(core->app, a->u, u_bar, F_bar, (braid_ObjectiveStatus) s);
   if (err) err = _braid_CallbackFailed(core, "objT_diff", err);
   else err = _braid_TapeAddBar(core, tape, a->in, 1.0, u_bar);
   core->free(core->app, u_bar);
   return err;
}

/* The adjoint of a receive is a send back: the adjoint of the received variable (zero when
 * nothing used it) goes to the rank it came from. */
static braid_Int reverse_recv(braid_Core core, _braid_Tape *tape, const _braid_Action *a)
{
   braid_Vector bar = tape->bars[a->out], zero = NULL;
   braid_Int err;
   if (bar == NULL)
   {
      if ((err = _braid_ZeroLike(core, a->u, &zero))) return err;
      bar = zero;
   }
   err = _braid_AdjointSend(core, a->level, a->index, bar, a->peer);
   if (zero != NULL) core->free(core->app, zero);
   return err;
}

/* The adjoint of a send is a receive: the adjoint of the sent variable on the other rank. */
static braid_Int reverse_send(braid_Core core, _braid_Tape *tape, const _braid_Action *a)
{
   braid_Vector bar = NULL;
   braid_Int err = _braid_AdjointRecv(core, a->level, a->index, a->peer, &bar);
   if (err) return err;
   err = _braid_TapeAddBar(core, tape, a->in, 1.0, bar);
   core->free(core->app, bar);
   return err;
}

braid_Int _braid_TapeEvaluate(braid_Core core, _braid_Tape *tape, braid_Real F_bar)
{
   braid_Int k, err;
   if ((err = ensure_bars(core, tape))) return err;
   for (k = tape->nactions - 1; k >= 0; k--)
   {
      const _braid_Action *a = &tape->actions[k];
      switch (a->kind)
      {
      case _braid_ACTION_STEP:
         err = reverse_step(core, tape, a);
         break;
      case _braid_ACTION_AXPY:
         if (tape->bars[a->out] == NULL) break;
         err = _braid_TapeAddBar(core, tape, a->in, a->a, tape->bars[a->out]);
         if (!err) err = _braid_TapeAddBar(core, tape, a->in2, a->b, tape->bars[a->out]);
         break;
      case _braid_ACTION_OBJ:
         err = reverse_objective(core, tape, a, F_bar);
         break;
      case _braid_ACTION_SEND:
         err = reverse_send(core, tape, a);
         break;
      case _braid_ACTION_RECV:
         err = reverse_recv(core, tape, a);
         break;
      }
      if (err) return err;
      /* an output is written once: its adjoint is complete and no longer needed */
      if (a->out >= 0 && tape->bars[a->out] != NULL)
      {
         core->free(core->app, tape->bars[a->out]);
         tape->bars[a->out] = NULL;
      }
   }
   return 0;
}

void _braid_TapeReset(braid_Core core, _braid_Tape *tape)
{
   braid_Int k;
   for (k = 0; k < tape->nactions; k++)
   {
      if (tape->actions[k].u != NULL && !tape->actions[k].u_shared)
      {
         core->free(core->app, tape->actions[k].u);
      }
      if (tape->actions[k].ustop != NULL) core->free(core->app, tape->actions[k].ustop);
   }
   for (k = 0; k < tape->bars_capacity; k++)
   {
      if (tape->bars[k] != NULL) core->free(core->app, tape->bars[k]);
      tape->bars[k] = NULL;
   }
   for (k = 0; k < tape->held_capacity; k++) tape->held[k] = NULL;
   tape->nactions = 0;
   tape->nvars = 0;
}

void _braid_TapeFree(braid_Core core, _braid_Tape *tape)
{
   _braid_TapeReset(core, tape);
   free(tape->actions);
   free(tape->bars);
   free(tape->held);
   tape->actions = NULL;
   tape->bars = NULL;
   tape->held = NULL;
   tape->capacity = tape->bars_capacity = tape->held_capacity = 0;
}
