/*
 * layerbraid extensions to the XBraid C interface. Programs that use only braid.h do not need
 * them; everything here is additive and prefixed layerbraid_.
 *
 * Failure handling: when a callback returns nonzero on one rank, the engine sends a notice
 * to every other rank of the temporal communicator. Every wait inside the engine listens for
 * such notices, so the other ranks stop too: their braid_Drive returns
 * layerbraid_ERROR_REMOTE instead of waiting forever for the failed rank.
 */
#ifndef LAYERBRAID_BRAID_LAYERBRAID_H
#define LAYERBRAID_BRAID_LAYERBRAID_H

#include "braid.h"

#ifdef __cplusplus
extern "C" {
#endif

/** braid_Drive's return value on a rank that stopped because another rank failed. */
#define layerbraid_ERROR_REMOTE 8

/** The longest failure text that travels between ranks (bytes, including the final NUL). */
#define layerbraid_FAILURE_TEXT_MAX 2048

/** Text describing the failure of the callback that is about to return nonzero (for example
 *  a formatted exception); it is sent to the other ranks with the failure notice. */
braid_Int layerbraid_SetFailureText(braid_Core core, const char *text);

/** After braid_Drive failed: the rank (in the temporal communicator) whose callback failed,
 *  and its failure text, truncated to len bytes. */
braid_Int layerbraid_GetFailure(braid_Core core, braid_Int *rank_ptr, char *text,
                                braid_Int len);

/** A function the engine calls about every 50 ms while it waits for other ranks, so that a
 *  host (an interpreter) can react to signals such as Ctrl-C. A nonzero return stops the
 *  solve like a failed callback. */
typedef braid_Int (*layerbraid_PtFcnPoll)(void *data);
braid_Int layerbraid_SetPollHook(braid_Core core, layerbraid_PtFcnPoll poll, void *data);

/** When set (nonzero), messages about failed callbacks are not printed to stderr: the host
 *  reports them itself. */
braid_Int layerbraid_SetQuietFailures(braid_Core core, braid_Int quiet);

/* ---- Profile: per-rank work and communication ---- */

/** This rank's counts and times, accumulated over the life of the core (every braid_Drive)
 *  and cleared by braid_ResetTimer, like the timers. The counts are kept only while a profile
 *  is asked for: layerbraid_SetProfile, layerbraid_SetTimeCalls or braid_SetTimings(core, 2);
 *  otherwise they stay 0 (the default: counting costs a cheap step measurably). The step and
 *  wait times need braid_SetTimings(core, 2) or layerbraid_SetTimeCalls (else they stay 0);
 *  the drive time is kept at every level. */
typedef struct {
   braid_Int steps;              /* calls of the user's step on this rank, all levels */
   braid_Int steps_coarsest;     /* of which on the coarsest level of the hierarchy */
   braid_Int messages_sent;      /* point-to-point engine messages (Isend) posted to other
                                  * ranks: the solution and adjoint values between
                                  * neighbours, the points moved by temporal refinement; not
                                  * failure notices, not the small messages of the reductions
                                  * over ranks (residual norm, success vote) */
   braid_Int messages_received;  /* point-to-point engine messages received (the same kinds) */
   double bytes_sent;            /* payload bytes of the messages sent */
   double time_step;             /* seconds in calls of the user's step (timings level >= 2) */
   double time_step_coarsest;    /* of which on the coarsest level */
   double time_wait;             /* seconds waiting for messages and collectives in the
                                  * engine (timings level >= 2) */
   double time_drive;            /* seconds in braid_Drive */
} layerbraid_Profile;

/** Copy this rank's profile into *profile. On a core that never counted (no
 *  layerbraid_SetProfile, layerbraid_SetTimeCalls or timings level 2), the counts are 0. */
braid_Int layerbraid_GetProfile(braid_Core core, layerbraid_Profile *profile);

/** When set (nonzero), keep the counts of layerbraid_GetProfile (step calls, messages, bytes)
 *  in every following braid_Drive; cleared (0, the default), they are not kept unless
 *  layerbraid_SetTimeCalls or timings level 2 asks for them. Turning it off keeps the counts
 *  so far. No timers, no files. */
braid_Int layerbraid_SetProfile(braid_Core core, braid_Int on);

/** Time every step call and wait, as timings level 2 does, without writing the per-rank timer
 *  files level 2 writes after each braid_Drive (for profiles read with layerbraid_GetProfile
 *  in runs of many ranks); it also keeps the counts, as layerbraid_SetProfile does. Off by
 *  default. */
braid_Int layerbraid_SetTimeCalls(braid_Core core, braid_Int on);

/* ---- XBraid_Adjoint (after braid_InitAdjoint) ---- */

/** The adjoint residual history of the last braid_Drive, one entry per iteration plus a copy
 *  of the last, as braid_GetRNorms gives the state's: *nrequest_ptr > 0 the first ones, < 0 the
 *  last ones; on return the number copied. The same on every rank. */
braid_Int layerbraid_GetRNormsAdjoint(braid_Core core, braid_Int *nrequest_ptr,
                                      braid_Real *rnorms);

/** After braid_Drive with the adjoint: a new vector (free it with the app's free) holding the
 *  adjoint of the initial condition u_0, dJ/du_0 from the last adjoint sweep, for the gradient
 *  through whatever produced u_0. NULL on ranks that do not own time point 0. An error when
 *  the adjoint is off, braid_SetObjectiveOnly is set or no braid_Drive has completed. */
braid_Int layerbraid_GetInitialAdjoint(braid_Core core, braid_Vector *ubar_ptr);

#ifdef __cplusplus
}
#endif

#endif
