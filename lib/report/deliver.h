/*
 * deliver - hand one built report to its destinations: report mail (built,
 * DKIM-signed, piped to sendmail or sent over SMTP) and HTTPS POST.
 *
 * The spool (spool.c) decides what is due and records the outcome; this
 * module only performs attempts and says precisely what happened. It never
 * retries by itself and never blocks longer than the configured timeouts.
 *
 * Implemented in mail.c (message + DKIM: dkim.c), mailsend.c and https.c.
 */
#ifndef TLSRPT_DELIVER_H
#define TLSRPT_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conf.h"

/* One report as built by report.c: everything a message or POST needs. */
struct report_file {
	const char *policy_domain;	/* A-label, lower case */
	const char *submitter;		/* submitter domain */
	const char *organization;	/* organization-name */
	const char *contact;		/* contact-info */
	const char *report_id;		/* JSON report-id, "left@right" atext */
	const char *filename;		/* RFC 8460 5.1 name, ".json.gz" */
	int64_t begin, end;		/* date range, Unix seconds (end = begin + 86399) */
	uint64_t successes, failures;	/* totals, for the human-readable part */
	const unsigned char *gz;	/* gzip of the report JSON */
	size_t gzlen;
};

/*
 * What a failure is about (issue 10 item 13). A report is never retried
 * after a permanent failure; only a failure about the destination itself
 * makes the spool skip the destination for later reports (suppress_period):
 *
 *   destination (permanent, destination): every report to it would fail
 *     - mail: RCPT refused with enhanced status 5.1.x (5.1.1 no such
 *       mailbox, 5.1.2 no such domain / NXDOMAIN, 5.1.3 bad address,
 *       5.1.10 null MX); sendmail exit 67 EX_NOUSER or 68 EX_NOHOST; an
 *       address that is not a valid mailbox;
 *     - HTTPS: a URI we refuse (not https://, bad bytes), an address our
 *       policy refuses to connect to (loopback, private, ...), a host name
 *       that does not exist (NXDOMAIN, checked after curl could not
 *       resolve it), HTTP 410 Gone.
 *   this report (permanent, not destination): this report would fail again,
 *   others may not
 *     - mail: any other 5xx to RCPT (policy, 5.7.x), a 5xx to DATA or to
 *       the message (552 too big, 554 content), sendmail exit 65
 *       EX_DATAERR, a message that cannot be built;
 *     - HTTPS: 400, 413, 415, 422 (the request, i.e. the report, is refused).
 *   temporary (not permanent): everything else, retried within
 *   retry_period: 4xx SMTP replies; 5xx before RCPT (greeting, EHLO,
 *   STARTTLS, MAIL FROM: about our relay or our sender, which the operator
 *   fixes, not about the destination or the report); connection and TLS
 *   failures; HTTP 3xx, 404 (RFC 9110: not a statement that the resource is
 *   gone for good; 410 is), 401, 403, 408, 429, 5xx; sendmail's other exits.
 */
struct delivery_result {
	bool ok;		/* accepted: mail handed over, or HTTP 2xx */
	bool permanent;		/* do not retry this report to this destination */
	bool destination;	/* with permanent: the failure is about the destination */
	long status;		/* HTTP status, SMTP reply code or sendmail exit code; 0 if none */
	char detail[512];	/* printable one-line description */
};

/* Fill 'res' (detail formatted like printf, cut to fit); destination = false. */
void delivery_result_set(struct delivery_result *res, bool ok, bool permanent,
			 long status, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/*
 * Build the complete RFC 5322 message of 'r' for recipient 'rcpt' into
 * 'out': headers (From, To, Date, Message-ID, Subject, TLS-Report-Domain,
 * TLS-Report-Submitter, TLS-Required: No, Auto-Submitted, MIME), text part,
 * base64 gzip part, DKIM-Signature when dkim_sign = yes. Values that came
 * from DNS or datagrams are validated so no header can be injected.
 * 'now' is the Date: time. Returns 0, or -1 with 'err'.
 */
int mail_build(const struct report_file *r, const char *rcpt,
	       const struct conf *c, int64_t now, struct buf *out,
	       char *err, size_t errsz);

/* Send a built message to one recipient by the configured method. */
void mail_send(const struct conf *c, const char *rcpt, const char *msg,
	       size_t len, struct delivery_result *res);

/* One HTTPS delivery job; res is filled by https_post_all. */
struct https_job {
	const char *url;
	const unsigned char *body;
	size_t len;
	struct delivery_result res;
};

/* A permanent failure about the destination (sets 'destination' too). */
void delivery_result_dest(struct delivery_result *res, long status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Told about jobs whose res is final; returning nonzero asks that no
 * further transfer be started (those not started keep "not attempted" and
 * are not reported). */
typedef int (*https_done_fn)(void *arg, struct https_job *const *jobs, size_t n);

/*
 * POST each job's body (Content-Type: application/tlsrpt+gzip) to its url,
 * at most https_concurrency at a time (curl multi), with the configured
 * timeouts, no redirects, TLS verification unless https_verify = no, and
 * refusal of non-public addresses unless allowed. Always fills every res.
 * With 'done' (may be NULL), each job's outcome is reported as soon as it
 * is known (the jobs that finished together in one call), from the
 * calling thread, before another transfer is started.
 */
void https_post_all(const struct conf *c, struct https_job *jobs, size_t n,
		    https_done_fn done, void *arg);

#endif
