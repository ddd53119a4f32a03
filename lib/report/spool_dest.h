/*
 * spool_dest - one destination's delivery record and the rules that move
 * it: its state, its attempts, the retry schedule, what a failure does, and
 * what a clock that disagrees with the record means.
 *
 * The record is a JSON object (json-c) that the spool keeps (spool_fs):
 *   "uri", "scheme" (mailto|https), "address" (mailto)
 *   "state"          pending | delivered | given-up | suppressed | rejected
 *   "next-attempt"   when a pending destination is due (Unix seconds)
 *   "first-attempt"  start of the current retry period
 *   "in-flight"      an attempt begun at this time and not yet recorded
 *   "attempts"       [{start, end, ok, status, detail[, operator]}], the last 64
 *   "delivered-at", "delivered-by" (mail|https), "response"
 * These functions change the record in memory only; the caller stores it.
 * Every member is read defensively (missing or mistyped = absent).
 *
 * Rules (spool.h says why):
 *   - a temporary failure is retried: the k-th failure waits
 *     retry_initial * 2^(k-1), at most retry_period, the last attempt at
 *     first-attempt + retry_period; the destination is given up only when
 *     that time has passed AND the clock agrees with the schedule (the
 *     attempt was made within SPOOL_DEST_LATE_SLACK of when it was due, or
 *     the schedule's full number of attempts has been made);
 *   - a permanent failure about the destination (deliver.h) makes it
 *     "suppressed" (the caller also puts the URI on the suppression list);
 *     one about this report only makes it "rejected";
 *   - a next-attempt or first-attempt more than retry_period in the
 *     future was set by a clock that was ahead: it counts from now.
 * Not thread safe (one record is changed by one thread at a time).
 */
#ifndef TLSRPT_SPOOL_DEST_H
#define TLSRPT_SPOOL_DEST_H

#include <stdbool.h>
#include <stdint.h>

#include "deliver.h"
#include "spool.h"

#define SPOOL_DEST_MAX_ATTEMPTS 64	/* attempts kept per destination */
#define SPOOL_DEST_LATE_SLACK 7200	/* an attempt this late after it was due is not the last */

enum spool_dest_state {
	SPOOL_DEST_PENDING,
	SPOOL_DEST_DELIVERED,
	SPOOL_DEST_GIVEN_UP,
	SPOOL_DEST_SUPPRESSED,
	SPOOL_DEST_REJECTED,
	SPOOL_DEST_UNKNOWN		/* no or an unknown "state" */
};

/* A new, pending record due at 'now'; NULL when out of memory. */
struct json_object *spool_dest_new(const struct spool_dest_spec *d, int64_t now);

enum spool_dest_state spool_dest_state(struct json_object *d);
/* "pending", "delivered", ... for a state. */
const char *spool_dest_state_name(enum spool_dest_state st);

/* Pending and due at 'now' (after the clock check above, which may move
 * next-attempt or first-attempt to now). */
bool spool_dest_due(struct json_object *d, int64_t now, const struct spool_policy *p);

/* Neither pending nor with an attempt in flight: nothing more will happen. */
bool spool_dest_final(struct json_object *d);

/* An attempt begins at 'now' (first-attempt set once, in-flight). */
void spool_dest_begin(struct json_object *d, int64_t now);

/* The outcome of the attempt in flight, 'detail' printable: the new state.
 * For SPOOL_DEST_SUPPRESSED the caller suppresses the URI. */
enum spool_dest_state spool_dest_outcome(struct json_object *d, int64_t now,
					 const struct spool_policy *p,
					 const struct delivery_result *r, const char *by,
					 const char *detail);

/* An attempt found in flight (a crash): recorded as interrupted, outcome
 * unknown, and due again now unless given up. true if there was one. */
bool spool_dest_interrupted(struct json_object *d, int64_t now, const struct spool_policy *p);

/* Not attempted: the URI is on the suppression list until 'until'. */
void spool_dest_skip_suppressed(struct json_object *d, int64_t now, int64_t until, const char *why);

/* The operator's retry: a given-up, suppressed, rejected or failed pending
 * destination is due at once with a fresh retry period. true if changed. */
bool spool_dest_retry(struct json_object *d, int64_t now);

#endif
