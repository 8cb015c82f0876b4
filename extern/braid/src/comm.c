/*
 * Communication between ranks: the boundary vector of a sweep travels one way, from a rank to
 * the rank holding the next time point, as a non-blocking message posted early so that it
 * overlaps the sweep's computation; the failure notices; and every wait of the engine
 * (_braid_Wait). The reductions over ranks are in reduce.c.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200112L /* nanosleep */
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include "core_internal.h"
#include "delta.h"

/* Message tags: one per level, so a message can only match a receive of its own level.
 * Failure notices have a tag of their own. All traffic uses the engine's private communicator. */
#define NOTICE_TAG 7
static int level_tag(braid_Int level)
{
   return 100 + (int) level;
}

static braid_Int buffer_status_call_size(braid_Core core, braid_Int level, braid_Int *size)
{
   _braid_Status *s = _braid_StatusFor(core, level, -1, 0.0, 0.0, braid_ASCaller_Drive_AfterInit);
   braid_Int err = core->bufsize(core->app, size, (braid_BufferStatus) s);
   if (err) return _braid_CallbackFailed(core, "bufsize", err);
   return 0;
}

static braid_Int alloc_buffer(braid_Core core, void **buffer)
{
   if (core->bufalloc != NULL)
   {
      _braid_Status *s = _braid_StatusFor(core, 0, -1, 0.0, 0.0, braid_ASCaller_Drive_AfterInit);
      braid_Int err = core->bufalloc(core->app, buffer, core->msg_bytes, (braid_BufferStatus) s);
      if (err) return _braid_CallbackFailed(core, "bufalloc", err);
   }
   else
   {
      *buffer = malloc((size_t) core->msg_bytes);
   }
   if (*buffer == NULL)
   {
      return _braid_OutOfMemory(core, "a message buffer of the size bufsize gave",
                                core->msg_bytes, 1);
   }
   return 0;
}

/* The message size is the largest bound bufsize gives over all levels. */
static braid_Int ensure_buffers(braid_Core core)
{
   braid_Int level, size, err;
   if (core->send_msg.buffer != NULL) return 0;
   core->msg_bytes = 1;
   for (level = 0; level < core->nlevels; level++)
   {
      if ((err = buffer_status_call_size(core, level, &size))) return err;
      if (size < 0)
      {
         _braid_Error("braid_Drive", "bufsize returned %d bytes; it must be >= 0", (int) size);
         return braid_ERROR_ARG;
      }
      if (size > core->msg_bytes) core->msg_bytes = size;
   }
   if (core->delta_state != NULL && (err = _braid_DeltaMessageBytes(core, &core->msg_bytes)))
   {
      return err;
   }
   if ((err = alloc_buffer(core, &core->send_msg.buffer))) return err;
   return alloc_buffer(core, &core->recv_msg.buffer);
}

braid_Int _braid_MessageRecv(braid_Core core, _braid_Message *msg, int source, int tag)
{
   braid_Int err;
   if ((err = ensure_buffers(core))) return err;
   if (msg->buffer == NULL && (err = alloc_buffer(core, &msg->buffer))) return err;
   MPI_Irecv(msg->buffer, (int) core->msg_bytes, MPI_BYTE, source, tag, core->tcomm,
             &msg->request);
   msg->active = 1;
   return 0;
}

braid_Int _braid_MessageUnpack(braid_Core core, _braid_Message *msg, braid_Int level,
                               braid_Int index, braid_Vector *u_ptr)
{
   _braid_Status *s;
   braid_Int err;
   if ((err = _braid_Wait(core, &msg->request))) return err;
   msg->active = 0;
   _braid_CountRecv(core);
   s = _braid_StatusFor(core, level, index, _braid_Time(core, level, index), 0.0,
                        core->status.calling_function);
   err = core->bufunpack(core->app, msg->buffer, u_ptr, (braid_BufferStatus) s);
   if (err) return _braid_CallbackFailed(core, "bufunpack", err);
   return core->delta_state != NULL ? _braid_DeltaUnpack(core, level, index, msg->buffer) : 0;
}

braid_Int _braid_MessageSend(braid_Core core, _braid_Message *msg, braid_Int level,
                             braid_Int index, braid_Vector u, int dest, int tag)
{
   _braid_Status *s;
   braid_Int err, bytes;
   if ((err = ensure_buffers(core))) return err;
   if (msg->buffer == NULL && (err = alloc_buffer(core, &msg->buffer))) return err;
   s = _braid_StatusFor(core, level, index, _braid_Time(core, level, index), 0.0,
                        core->status.calling_function);
   s->size = -1.0;
   err = core->bufpack(core->app, u, msg->buffer, (braid_BufferStatus) s);
   if (err) return _braid_CallbackFailed(core, "bufpack", err);
   if (s->size > (braid_Real) core->msg_bytes) /* compared before it becomes an int */
   {
      _braid_Error("braid_Drive", "bufpack reported %.0f bytes, more than the %d that bufsize "
                   "allowed", s->size, (int) core->msg_bytes);
      return braid_ERROR_ARG;
   }
   bytes = s->size >= 0.0 ? (braid_Int) s->size : core->msg_bytes;
   if (core->delta_state != NULL
       && (err = _braid_DeltaPack(core, level, index, msg->buffer, &bytes)))
   {
      return err;
   }
   MPI_Isend(msg->buffer, (int) bytes, MPI_BYTE, dest, tag, core->tcomm, &msg->request);
   msg->active = 1;
   _braid_CountSend(core, bytes);
   return 0;
}

braid_Int _braid_MessageWait(braid_Core core, _braid_Message *msg)
{
   braid_Int err;
   if (msg->active)
   {
      if ((err = _braid_Wait(core, &msg->request))) return err;
      msg->active = 0;
   }
   return 0;
}

braid_Int _braid_RecvLeft(braid_Core core, braid_Int level)
{
   return _braid_MessageRecv(core, &core->recv_msg,
                             _braid_Owner(core, level, core->grids[level]->ilower - 1),
                             level_tag(level));
}

braid_Int _braid_RecvLeftWait(braid_Core core, braid_Int level, braid_Vector *u_ptr)
{
   return _braid_MessageUnpack(core, &core->recv_msg, level, core->grids[level]->ilower - 1,
                               u_ptr);
}

braid_Int _braid_SendRight(braid_Core core, braid_Int level, braid_Vector u)
{
   const _braid_Grid *g = core->grids[level];
   return _braid_MessageSend(core, &core->send_msg, level, g->iupper, u,
                             _braid_Owner(core, level, g->iupper + 1), level_tag(level));
}

braid_Int _braid_SendWait(braid_Core core)
{
   return _braid_MessageWait(core, &core->send_msg);
}

void _braid_NotifyFailure(braid_Core core)
{
   /* without memory for a copy of the text the notice still goes out, with this one */
   static const char no_memory_text[] = "a rank failed, and ran out of memory to say why";
   int p, len = (int) strlen(core->failure_text) + 1;
   const char *text;
   char *copy;
   if (core->nprocs == 1) return;
   /* nobody waits for delivery, so the message outlives the core */
   copy = (char *) malloc((size_t) len);
   if (copy != NULL)
   {
      memcpy(copy, core->failure_text, (size_t) len);
      _braid_Abandon(copy);
      text = copy;
   }
   else
   {
      text = no_memory_text;
      len = (int) sizeof(no_memory_text);
   }
   for (p = 0; p < core->nprocs; p++)
   {
      MPI_Request request;
      if (p == core->myid) continue;
      MPI_Isend(text, len, MPI_CHAR, p, NOTICE_TAG, core->tcomm, &request);
      MPI_Request_free(&request);
   }
}

/* ---- failure notices and waits ----
 *
 * Every wait must make progress without relying on wall-clock polling: under a simulator
 * (SimGrid SMPI) a polling loop hardly moves the simulated clock, and on a busy node a
 * process that spins on MPI_Test takes a core from the ranks it waits for. So:
 *  - on one rank nothing can fail elsewhere: a plain MPI_Wait (SMPI 3.32's MPI_Test never
 *    reports a one-rank MPI_Ibcast complete, while its MPI_Wait does);
 *  - without a poll hook (C programs): MPI_Waitany over the request and a receive of the
 *    failure notice posted beforehand, so a failed rank's notice still ends the wait;
 *  - with a poll hook (an interpreter that must see Ctrl-C): a test loop that calls the hook
 *    about every 50 ms, yields the core between tests for the first millisecond and then
 *    sleeps between tests (50 us doubling up to 250 us) instead of spinning hot.
 * The notice receive stays posted from the first wait of a solve to its end
 * (_braid_NoticeStop); between steps _braid_CheckNotices tests it. */

static void post_notice(braid_Core core)
{
   _braid_CollectiveBuffers *ns = core->collective_buffers;
   if (ns->notice_posted || ns->notice_kept) return;
   MPI_Irecv(ns->notice_text, layerbraid_FAILURE_TEXT_MAX, MPI_CHAR, MPI_ANY_SOURCE, NOTICE_TAG,
             core->tcomm, &ns->notice_request);
   ns->notice_posted = 1;
}

/* The notice receive completed (its request is already MPI_REQUEST_NULL). */
static braid_Int take_notice(braid_Core core, const MPI_Status *status)
{
   _braid_CollectiveBuffers *ns = core->collective_buffers;
   ns->notice_posted = 0;
   ns->notice_kept = 0;
   ns->notice_request = MPI_REQUEST_NULL;
   memcpy(core->failure_text, ns->notice_text, layerbraid_FAILURE_TEXT_MAX);
   core->failure_text[layerbraid_FAILURE_TEXT_MAX - 1] = '\0';
   core->failed = 1;
   core->failure_rank = status->MPI_SOURCE;
   if (!core->quiet_failures)
   {
      _braid_Error("braid_Drive", "stopping because another rank failed: %s", core->failure_text);
   }
   return layerbraid_ERROR_REMOTE;
}

void _braid_NoticeStop(braid_Core core)
{
   _braid_CollectiveBuffers *ns = core->collective_buffers;
   if (ns == NULL || !ns->notice_posted) return;
   MPI_Cancel(&ns->notice_request);
   if (core->failed)
   {
      /* the buffer is abandoned with the collective buffers; no need to wait */
      MPI_Request_free(&ns->notice_request);
   }
   else
   {
      /* a cancelled receive ends locally; if a notice matched it first (a rank that already
       * failed in its next solve), it is kept for the next wait or check, as an unreceived
       * message would have been */
      MPI_Status status;
      int cancelled = 0;
      MPI_Wait(&ns->notice_request, &status);
      MPI_Test_cancelled(&status, &cancelled);
      if (!cancelled)
      {
         ns->notice_kept = 1;
         ns->notice_source = status.MPI_SOURCE;
      }
   }
   ns->notice_request = MPI_REQUEST_NULL;
   ns->notice_posted = 0;
}

/* A notice kept by _braid_NoticeStop ends the next wait or check at once. */
static braid_Int kept_notice(braid_Core core)
{
   MPI_Status status;
   status.MPI_SOURCE = core->collective_buffers->notice_source;
   return take_notice(core, &status);
}

braid_Int _braid_CheckNotices(braid_Core core)
{
   int notice = 0;
   MPI_Status status;
   braid_Real now;
   /* a clock read costs more than a trivial step, so only every 16th step reads it */
   if (core->nprocs == 1 || ++core->steps_since_check < 16) return 0;
   core->steps_since_check = 0;
   now = MPI_Wtime();
   if (now - core->last_notice_check < 0.01) return 0;
   core->last_notice_check = now;
   if (core->collective_buffers->notice_kept) return kept_notice(core);
   post_notice(core);
   MPI_Test(&core->collective_buffers->notice_request, &notice, &status);
   return notice ? take_notice(core, &status) : 0;
}

static braid_Int wait_blocking(braid_Core core, MPI_Request *request)
{
   _braid_CollectiveBuffers *ns = core->collective_buffers;
   MPI_Request both[2];
   MPI_Status status;
   int which = MPI_UNDEFINED;
   if (ns->notice_kept) return kept_notice(core);
   post_notice(core);
   both[0] = *request;
   both[1] = ns->notice_request;
   MPI_Waitany(2, both, &which, &status);
   *request = both[0];
   ns->notice_request = both[1];
   /* a failed rank never joins, so the notice alone ends the wait; the request stays pending
    * and its buffers are abandoned with the failed core */
   return which == 1 ? take_notice(core, &status) : 0;
}

static void pause_for(long nanoseconds)
{
   struct timespec pause;
   pause.tv_sec = 0;
   pause.tv_nsec = nanoseconds;
   nanosleep(&pause, NULL);
}

static braid_Int wait_polling(braid_Core core, MPI_Request *request)
{
   _braid_CollectiveBuffers *ns = core->collective_buffers;
   braid_Real start = MPI_Wtime();
   long pause_ns = 50000;
   if (ns->notice_kept) return kept_notice(core);
   post_notice(core);
   for (;;)
   {
      int done = 0, notice = 0;
      MPI_Status status;
      braid_Real now;
      MPI_Test(request, &done, MPI_STATUS_IGNORE);
      if (done) return 0;
      MPI_Test(&ns->notice_request, &notice, &status);
      if (notice) return take_notice(core, &status);
      now = MPI_Wtime();
      if (now - core->last_poll >= 0.05)
      {
         braid_Int err;
         core->last_poll = now;
         if ((err = core->poll(core->poll_data))) return _braid_CallbackFailed(core, "poll", err);
      }
      /* the first millisecond (a neighbour's message about to arrive) only yields the core
       * to whoever else wants it; after that the loop sleeps, 50 us doubling up to 250 us,
       * so a long wait costs almost no CPU and overshoots by at most 250 us */
      if (now - start < 1e-3)
      {
         sched_yield();
      }
      else
      {
         pause_for(pause_ns);
         if (pause_ns < 250000) pause_ns = pause_ns * 2 < 250000 ? pause_ns * 2 : 250000;
      }
   }
}

braid_Int _braid_Wait(braid_Core core, MPI_Request *request)
{
   braid_Real start;
   braid_Int err;
   if (*request == MPI_REQUEST_NULL) return 0;
   start = _braid_TimerStart(core);
   if (core->nprocs == 1)
   {
      MPI_Wait(request, MPI_STATUS_IGNORE);
      err = 0;
   }
   else
   {
      err = core->poll == NULL ? wait_blocking(core, request) : wait_polling(core, request);
   }
   _braid_TimerStop(core, &core->timers.mpi_wait, start);
   return err;
}

void _braid_Abandon(void *memory)
{
   /* a process-wide list, so leak checkers see the memory as still referenced */
   static void **abandoned = NULL;
   static size_t count = 0, capacity = 0;
   if (memory == NULL) return;
   if (count == capacity)
   {
      size_t grown = capacity ? 2 * capacity : 16;
      void **list = (void **) realloc(abandoned, grown * sizeof(void *));
      if (list == NULL) return; /* then it is merely leaked */
      abandoned = list;
      capacity = grown;
   }
   abandoned[count++] = memory;
}

void _braid_MessageRelease(braid_Core core, _braid_Message *msg)
{
   if (msg->active)
   {
      /* only after a failure: the partner may never match this message */
      int done = 0;
      MPI_Cancel(&msg->request);
      MPI_Test(&msg->request, &done, MPI_STATUS_IGNORE);
      msg->active = 0;
      if (!done)
      {
         MPI_Request_free(&msg->request);
         _braid_Abandon(msg->buffer); /* MPI may still read or write it */
         msg->buffer = NULL;
         return;
      }
   }
   if (msg->buffer == NULL) return;
   if (core->buffree != NULL)
   {
      core->buffree(core->app, &msg->buffer);
   }
   else
   {
      free(msg->buffer);
   }
   msg->buffer = NULL;
}

void _braid_CommCleanup(braid_Core core)
{
   _braid_MessageRelease(core, &core->send_msg);
   _braid_MessageRelease(core, &core->recv_msg);
   core->msg_bytes = 0;
}
