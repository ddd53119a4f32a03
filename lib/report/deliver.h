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

struct delivery_result {
	bool ok;		/* accepted: mail handed over, or HTTP 2xx */
	bool permanent;		/* do not retry this destination (e.g. 5xx SMTP reply, bad URI) */
	long status;		/* HTTP status, SMTP reply code or sendmail exit code; 0 if none */
	char detail[512];	/* printable one-line description */
};

/* Fill 'res' (detail formatted like printf, cut to fit). */
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

/*
 * POST each job's body (Content-Type: application/tlsrpt+gzip) to its url,
 * at most https_concurrency at a time (curl multi), with the configured
 * timeouts, no redirects, TLS verification unless https_verify = no, and
 * refusal of non-public addresses unless allowed. Always fills every res.
 */
void https_post_all(const struct conf *c, struct https_job *jobs, size_t n);

#endif
