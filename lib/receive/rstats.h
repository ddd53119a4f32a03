/*
 * rstats - the received reports of a period, added up per verification
 * class and policy domain: what the dashboard shows, what `received check`
 * compares, what the metrics export.
 *
 * A report belongs to the UTC day its date-range starts on (as in
 * `received summary`). The period is the 'days' days ending with the day
 * of 'now' (inclusive); the previous period is the 'days' days before it.
 * days = 0 means all the reports in the store, without a previous period.
 * Totals add up a report's policy entries (RFC 8460 section 4: a session
 * under both DANE and MTA-STS may be in a tlsa and an sts entry); all sums
 * saturate at INT64_MAX, so hostile counts can not wrap.
 *
 * Result: a json-c object (caller puts it):
 *   { "first", "last": the period's days "YYYY-MM-DD" (all time: of the data,
 *     "" when there is none), "prev_first", "prev_last" (absent for days = 0),
 *     "rejected": rejection records in the store,
 *     "verified", "unverified": { "DOMAIN": D, ... } }
 * D (policy domains lower-cased):
 *   "domain", "successful", "failed", "reports"        the period
 *   "prev_successful", "prev_failed", "prev_reports"   the previous period
 *   "days": { "YYYY-MM-DD": {"successful","failed","reports"} } the period
 *   "result_types", "failing_mx", "receiving_ips", "sending_ips",
 *   "failure_reasons": { VALUE: failed sessions } (the period)
 *   "policies": { KEY: {"type","domain","strings":[],"mx":[],"successful",
 *                 "failed","reports"} }                 (the period)
 *   "organizations": { ORG: {"successful","failed","reports" (period),
 *                 "signers": {DOMAIN: reports}, "history_days": distinct
 *                 days with a report within the lookback, "last_end": Unix
 *                 seconds of the latest end-datetime} }
 *   "last_failure_day": the latest day with a failure in the period
 *   "last_end": the latest end-datetime of any report
 *   "report_list": (with want_reports) [ {"id","day","organization",
 *                 "submitter","signer","dkim","report_id","start","end",
 *                 "successful","failed"} ] of the period, newest first
 * A domain is listed when it has a report in the loaded range (the
 * lookback, at least the period and the previous period).
 *
 * Thread safety: no shared state besides the store (received.h).
 */
#ifndef TLSRPT_RSTATS_H
#define TLSRPT_RSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct received_store;

struct rstats_opts {
	int64_t now;		/* Unix seconds */
	int days;		/* period length; 0: all time */
	int lookback_days;	/* load reports ending this many days back
				 * (raised to 2 * days; ignored for days = 0) */
	const char *domain;	/* only this policy domain (case-insensitive), or NULL */
	bool want_reports;	/* fill "reports" */
	/* Called for each stored report in the period (NULL: none), with its
	 * record (received.h); non-zero stops with an error. */
	int (*report_cb)(const char *cls, const char *id, struct json_object *rec, void *arg);
	void *arg;
};

/* NULL with 'err' on failure (ENOMEM, the callback failed). */
struct json_object *rstats_build(struct received_store *s, const struct rstats_opts *o,
				 char *err, size_t errsz);

/* Days since 1970-01-01 of Unix seconds 't' (floor), and back. */
int64_t rstats_day(int64_t t);
/* "YYYY-MM-DD" of a day number (out >= 11 bytes). */
void rstats_format_day(int64_t day, char *out, size_t outsz);

/* a + b for non-negative counts, saturating at INT64_MAX. */
int64_t rstats_add(int64_t a, int64_t b);

#endif
