/*
 * spool - every report built, and the delivery state of each destination.
 *
 * What is recorded (this module): per report its record (domain, day, ids,
 * counts), the exact bytes and one record per destination (state,
 * attempts, next try: spool_dest.h, with the rules that move it); a mark
 * per reported day; a suppression per destination URI. How it is kept,
 * atomically and durably, is spool_fs.h's contract (files under
 * spool_directory; another backend can replace it).
 * A report's ID is report.h's spool id "YYYYMMDD-<uid>", stable for (day,
 * domain, record, submitter); adding an existing ID does nothing.
 *
 * Destination states: pending (next-attempt says when), delivered, given-up
 * (failed for retry_period since the first attempt), suppressed (a
 * permanent failure about the destination itself: unknown mailbox, no such
 * domain, a URI or address we refuse, HTTP 410; the destination is also put
 * on the suppression list for suppress_period, so later reports skip it),
 * rejected (a permanent failure about this report only: 5xx to DATA, 552
 * size, HTTP 413...; not retried, and later reports are still tried).
 * deliver.h lists which failure is which.
 * Retries: the k-th failure waits retry_initial * 2^(k-1) (at most
 * retry_period), the last attempt is made at first-attempt + retry_period.
 * A report counts as delivered as soon as one destination accepted it; the
 * others are still tried.
 *
 * Clocks (the reporter's 'now' may jump either way): a jump never makes a
 * report go out twice or a pending retry be given up. A destination is
 * given up only when the retry period is over and the clock agrees with
 * the schedule (the attempt was made within two hours of when it was due,
 * or the schedule's full number of attempts was made); a next-attempt or
 * first-attempt more than retry_period in the future (written by a clock
 * that was ahead) counts from now; a suppression longer than
 * suppress_period from now is cut to that; pruning counts ages only up to
 * two days past the newest day the spool holds (spool_prune).
 *
 * Delivery guarantee (the documented choice): each attempt is recorded as
 * "in-flight" (synced) BEFORE it is made, and its outcome as soon as it is
 * known, durably, before the next attempt of the transport's sequence is
 * made (mail goes out one message at a time; HTTPS posts run up to
 * https_concurrency at once, each recorded when it finishes). A re-run
 * never repeats an attempt whose outcome was recorded, so nothing recorded
 * as delivered is ever delivered again. The only window is a crash while
 * attempts are in progress (handed over or posted, outcome not yet
 * written): those are found in-flight, recorded as "interrupted, outcome
 * unknown" and retried (at-least-once). So a crash re-sends at most the
 * attempts in progress: at most one mail and at most https_concurrency
 * posts, each to its own destination, each once. We chose this over
 * at-most-once because a lost report is invisible while a duplicate
 * carries the same report-id (and the same Message-ID), which RFC 8460
 * receivers use to "identify and ignore duplicate reports".
 *
 * Not thread safe. A spool opened for writing holds the lock until closed.
 */
#ifndef TLSRPT_SPOOL_H
#define TLSRPT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver.h"
#include "report.h"
#include "tlsrpt_record.h"

struct json_object;
struct spool;

struct spool_policy {
	int64_t retry_initial;		/* first retry delay, doubles */
	int64_t retry_period;		/* give up this long after the first attempt */
	int64_t suppress_period;	/* skip a permanently failed destination this long */
	int64_t retention;		/* prune reports older than this */
};

/* retry_initial, retry_period, suppress_period, spool_retention. */
void spool_policy_from_conf(const struct conf *c, struct spool_policy *p);

/*
 * Open the spool at 'dir' (created if missing). With 'write', take the
 * lock (fails at once if another writer holds it) and clean tmp/.
 * NULL with 'err' on failure.
 */
struct spool *spool_open(const char *dir, bool write, char *err, size_t errsz);
void spool_close(struct spool *s);

/* ---- days ---- */

bool spool_day_done(struct spool *s, int64_t day);
int spool_day_mark(struct spool *s, int64_t day, int64_t now, size_t nreports,
		   char *err, size_t errsz);

/* ---- adding reports ---- */

struct spool_dest_spec {
	enum rua_scheme scheme;
	const char *uri;
	const char *address;	/* mailto only */
};

bool spool_has(struct spool *s, const char *id);

/*
 * Store report 'r' with its destinations (none is allowed: it is kept for
 * inspection). 'source' says where the destinations came from ("record",
 * "dns"). If the ID exists already nothing is written and *existed is set.
 * spool_add is spool_stage + spool_commit. 0, or -1 with 'err'.
 */
int spool_add(struct spool *s, const struct report *r,
	      const struct spool_dest_spec *dests, size_t ndests,
	      const char *source, int64_t now, bool *existed,
	      char *err, size_t errsz);

/*
 * Batched adding: spool_stage writes the report into tmp/ only; spool_commit
 * makes every staged report durable with one syncfs, renames each into
 * reports/ and fsyncs reports/ once. Staged reports not committed are
 * discarded by the next spool_open (they are rebuilt by the next run).
 */
int spool_stage(struct spool *s, const struct report *r,
		const struct spool_dest_spec *dests, size_t ndests,
		const char *source, int64_t now, bool *existed,
		char *err, size_t errsz);
int spool_commit(struct spool *s, char *err, size_t errsz);

/* ---- delivery ---- */

/* One delivery attempt handed to the transport. */
struct spool_job {
	const struct report_file *file;	/* the report (valid during send) */
	enum rua_scheme scheme;
	const char *uri;
	const char *address;		/* mailto: the recipient */
	struct delivery_result res;	/* the transport fills this */
	void *priv;			/* spool's own */
};

/*
 * Called by the transport as soon as the outcome of one job (or of several
 * that finished together) is known, its res filled: the spool records it
 * durably before returning. Calls never overlap (a transport that works in
 * several threads serialises them). Returns -1 when the outcome could not
 * be recorded: the transport then starts no further attempt.
 */
typedef int (*spool_done_fn)(void *arg, struct spool_job *const *jobs, size_t n);

/*
 * Performs the attempts of one batch, calling done for each job as soon as
 * its outcome is known (mail and HTTPS may interleave). Returns when no
 * attempt is running any more; a job it did not report is recorded then,
 * with whatever its res holds.
 */
struct spool_transport {
	void (*send)(void *ctx, struct spool_job *jobs, size_t n, int64_t now,
		     spool_done_fn done, void *done_arg);
	void *ctx;
};

struct spool_stats {
	size_t attempted, delivered, failed, given_up, suppressed, rejected, interrupted;
};

/*
 * Attempt every destination that is due at 'now', in batches (one send
 * call per batch), and record the outcomes. Returns 0, or -1 when the spool
 * could not be written (then stop: the state on disk is still consistent).
 */
int spool_deliver_due(struct spool *s, int64_t now, const struct spool_policy *p,
		      const struct spool_transport *t, struct spool_stats *st);

/* Make every failed, given-up, suppressed or rejected destination of report 'id'
 * due at once (next-attempt 0) with a fresh retry period from the next
 * attempt. *changed = how many; -1 if no
 * such report or on a write error ('err'). */
int spool_retry(struct spool *s, const char *id, int64_t now, size_t *changed,
		char *err, size_t errsz);

/*
 * Remove reports older than the retention (and never before their retries
 * could end), old day marks and expired suppressions. Ages are counted up
 * to 'now', but never past two days after the newest day the spool holds:
 * a clock that disagrees with the data prunes nothing more.
 */
int spool_prune(struct spool *s, int64_t now, const struct spool_policy *p,
		size_t *removed);

/* The newest day with a day mark (days since 1970-01-01), -1 if none: what
 * the spool's data says about the date, to check a clock against. */
int64_t spool_newest_day(struct spool *s);

/* ---- inspection (tlsrptctl spool) ---- */

/* Sorted IDs of all reports; free with spool_ids_free. */
int spool_ids(struct spool *s, char ***ids, size_t *n);
void spool_ids_free(char **ids, size_t n);

/*
 * {"id", "meta": {...}, "destinations": [ {...}, ... ], "status"} of one
 * report (json-c, caller puts). "status" is delivered, pending, failed
 * (all given up or suppressed) or no-destinations. NULL if unknown ID.
 */
struct json_object *spool_entry(struct spool *s, const char *id);

/* The suppression list: [{"uri", "until" (Unix seconds), "reason"}] of
 * the entries still in force at 'now' (json-c, caller puts; empty when
 * there are none or the list can not be read). */
struct json_object *spool_suppressions(struct spool *s, int64_t now);

/* The stored gzip bytes; caller frees. -1 if absent. */
int spool_report_gz(struct spool *s, const char *id, unsigned char **gz, size_t *len);

/* Test hook: called at named points of spool_add and spool_deliver_due
 * ("add-tmp-written", "add-renamed", "attempt-begun", "outcome-known" and
 * "outcome-recorded" around each recording of outcomes, "attempt-sent"
 * when the transport returned, "attempt-recorded" when the batch is
 * recorded), so a test can _exit() there. NULL in production. */
extern void (*spool_test_hook)(const char *point);

#endif
