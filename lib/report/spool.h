/*
 * spool - every report built, and the delivery state of each destination.
 *
 * Layout under spool_directory:
 *   lock                    flock: one writer (tlsrpt-report, spool retry)
 *   reports/ID/meta.json    what the report is (domain, day, ids, counts)
 *   reports/ID/report.json.gz   the exact bytes sent
 *   reports/ID/dest-N.json  one per destination: state, attempts, next try
 *   reports/ID/done         no destination pending (a hint: runs skip it)
 *   days/YYYY-MM-DD         the day was reported (all its reports spooled)
 *   suppressed/HASH.json    a destination refused permanently, until a time
 *   tmp/                    reports being written; removed on open
 * ID is report.h's spool id "YYYYMMDD-<uid>", stable for (day, domain,
 * record, submitter).
 *
 * Atomicity: a report directory is written completely in tmp/ (made
 * durable by syncfs, once per batch), then renamed into reports/ and the
 * directory fsynced, so it exists completely or not at all; adding an
 * existing ID does nothing.
 * Every state change rewrites a destination's small file atomically (temp,
 * sync, rename, sync); the states of one delivery batch are written together
 * with one syncfs before and one after the renames. A crash at any point
 * leaves a consistent spool.
 *
 * Destination states: pending (next-attempt says when), delivered, given-up
 * (failed for retry_period since the first attempt), suppressed (permanent
 * failure, e.g. SMTP 5xx or a bad URI; the destination is also put on the
 * suppression list for suppress_period, so later reports skip it).
 * Retries: the k-th failure waits retry_initial * 2^(k-1), the last attempt
 * is made at first-attempt + retry_period. A report counts as delivered as
 * soon as one destination accepted it; the others are still tried.
 *
 * Delivery guarantee (the documented choice): each attempt is recorded as
 * "in-flight" (fsynced) BEFORE it is made and its outcome AFTER. A re-run
 * never repeats an attempt whose outcome was recorded, so nothing recorded
 * as delivered is ever delivered again and a crash between any two steps
 * repeats nothing. The only window is a crash after the destination accepted
 * but before the outcome was written (milliseconds): the attempt is then
 * found in-flight, recorded as "interrupted, outcome unknown" and retried
 * (at-least-once) for mail and HTTPS alike. We chose this over at-most-once
 * because a lost report is invisible while a duplicate carries the same
 * report-id (and the same Message-ID), which RFC 8460 receivers use to
 * "identify and ignore duplicate reports".
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

/* Performs the attempts of one batch; must fill every job's res. */
struct spool_transport {
	void (*send)(void *ctx, struct spool_job *jobs, size_t n, int64_t now);
	void *ctx;
};

struct spool_stats {
	size_t attempted, delivered, failed, given_up, suppressed, interrupted;
};

/*
 * Attempt every destination that is due at 'now', in batches (one send
 * call per batch), and record the outcomes. Returns 0, or -1 when the spool
 * could not be written (then stop: the state on disk is still consistent).
 */
int spool_deliver_due(struct spool *s, int64_t now, const struct spool_policy *p,
		      const struct spool_transport *t, struct spool_stats *st);

/* Make every failed, given-up or suppressed destination of report 'id'
 * due at once (next-attempt 0) with a fresh retry period from the next
 * attempt. *changed = how many; -1 if no
 * such report or on a write error ('err'). */
int spool_retry(struct spool *s, const char *id, int64_t now, size_t *changed,
		char *err, size_t errsz);

/* Remove reports older than the retention (and never before their
 * retries could end), old day marks and expired suppressions. */
int spool_prune(struct spool *s, int64_t now, const struct spool_policy *p,
		size_t *removed);

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
 * ("add-tmp-written", "add-renamed", "attempt-begun", "attempt-sent",
 * "attempt-recorded"), so a test can _exit() there. NULL in production. */
extern void (*spool_test_hook)(const char *point);

#endif
