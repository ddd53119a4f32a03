/*
 * sstats - the spool of sent reports added up: what the sending side's
 * dashboard page shows and what the metrics export.
 *
 * sstats_build reads every report of an open spool (spool.h, read-only)
 * and returns a json-c object (caller puts):
 *   "reports": number of reports in the spool
 *   "status": { delivered, pending, failed, no-destinations: reports }
 *   "dest_states": { pending, delivered, given-up, suppressed, rejected: destinations }
 *   "attempts": { "mailto"|"https": { "ok": n, "failed": n } } recorded
 *               attempts (the spool keeps the latest ones per destination)
 *   "days": { "YYYY-MM-DD": { "reports", "delivered", "pending", "failed",
 *             "no-destinations", "successes", "failures" } } by report day
 *   "destinations": { URI: { "scheme", "reports", "delivered", "pending",
 *             "given-up", "suppressed", "rejected", "attempts_ok", "attempts_failed",
 *             "last_error", "last_error_at", "last_delivered_at" } }
 *   "failures": [ { "uri", "reason", "count", "last" } ] failed attempts by
 *             destination and reason (the attempt's detail, cut to 200
 *             bytes), most first
 *   "suppressed": spool_suppressions() at 'now'
 *   "last_created": newest report's creation time (0: none)
 *   "oldest_pending_created": creation time of the oldest report with a
 *             pending destination (0: none)
 * Counts saturate (rstats_add). Unreadable entries are counted in
 * "unreadable" and skipped.
 *
 * Thread safety: as the spool.
 */
#ifndef TLSRPT_SSTATS_H
#define TLSRPT_SSTATS_H

#include <stdint.h>

struct json_object;
struct spool;

struct json_object *sstats_build(struct spool *s, int64_t now);

#endif
