/*
 * pflog - the Postfix 3.7-3.9 log follower: turns smtp(8) log lines
 * (smtp_tls_loglevel >= 1) into the same results the libtlsrpt datagrams of
 * Postfix 3.10+ give (postfix-integration.md section 5).
 *
 * Three layers, all in this module:
 *   1. pflog_parse(): one line -> one event. Bounded, no allocation. Finds
 *      "TAG[PID]: MESSAGE" after an RFC 3164 ("Nov 28 14:31:22 host"),
 *      ISO 8601 ("2026-11-28T14:31:22.123+00:00 host", journalctl -o
 *      short-iso, rsyslog), Postfix maillog_file ("Nov 28 14:31:22.123456
 *      host") or RFC 5424 ("<22>1 TS HOST APP PROCID MSGID SD MSG") prefix.
 *   2. A pairing state machine keyed by (syslog tag, PID): TLS summary and
 *      failure lines of one smtp(8) process are held until that process
 *      logs its next delivery line ("QUEUEID: to=<rcpt>, relay=...,
 *      status=..."), which gives the recipient domain (the next hop).
 *      One session per handshake, whatever the number of recipients.
 *      Lines of tlsproxy(8) give failure details only; its duplicate
 *      summary lines are skipped. "TLS connection reused" is never a
 *      session. qmgr's "QUEUEID: from=<sender>" marks our own report mail
 *      (the envelope sender tlsrpt-report uses: envelope_sender, else the
 *      address of from_address, else contact_info, lib/report/mail.h): its
 *      sessions are skipped (STC_OWN_REPORTS). Lines
 *      whose tag is a log_ignore_syslog_names entry, or starts with one
 *      followed by '/', are ignored ("postfix/tlsrpt-out" matches
 *      "postfix/tlsrpt-out/smtp", the tag Postfix logs under).
 *   3. Each finished session: the TLSRPT record and policy of its domain
 *      come from pflookup (lib/collect/pflookup.h); domains without a record are
 *      counted in STC_NO_TLSRPT and not reported; the rest go to the sink.
 *
 * Bounds: lines longer than PFLOG_MAX_LINE are cut (STC_LOG_CUT) and the
 * cut part parsed; at most PFLOG_MAX_PIDS process states (the least
 * recently active is dropped), each holding at most PFLOG_MAX_PENDING
 * sessions; a state idle for PFLOG_STATE_TTL seconds is dropped.
 *
 * Follower (pflog_open): log_source is a file path, "-" (stdin), or
 *   "journal" / "journal:DIR" (the systemd journal, lib/collect/pfjournal.h,
 *   which feeds its entries through pflog_feed_at).
 *   File: read from where log_position_file says; without a position file,
 *   from the end (old lines are not counted as today's). Rotation (path
 *   now names another inode): the old file is read to its end, then the new
 *   one from 0. At start-up, when the position names another inode, PATH.1
 *   is read from the position first if it is that inode. Truncation
 *   (copytruncate: size below our offset): restart at 0. A last line
 *   without newline is kept until its newline arrives.
 *
 *   Position guarantee: log_position_file holds "pflog1 DEV INO REPLAY
 *   DONE": DONE is the end of the last line processed, REPLAY the start of
 *   the oldest line of a session still waiting for its delivery line. It
 *   is written (temporary file + rename) after every batch of lines, after
 *   the sink has been called for them. On restart the lines from REPLAY to
 *   DONE are read again to rebuild the waiting sessions but nothing is
 *   counted for them. So: a line processed before the last position write
 *   is never counted again, and a session whose TLS line came before a
 *   restart and delivery line after it is still counted. Lines processed
 *   after the last write (a crash between the sink calls and the write)
 *   are counted again. qmgr "from=" lines before REPLAY are not re-read:
 *   report mail whose from= line came before REPLAY is recognised only by
 *   its syslog name after a restart.
 *
 *   stdin: read when pflog_fd() is readable; no position is kept.
 *
 * Not thread safe: one owner, one thread.
 */
#ifndef TLSRPT_PFLOG_H
#define TLSRPT_PFLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "pflookup.h"
#include "result.h"
#include "store.h"

#define PFLOG_MAX_LINE 8192
#define PFLOG_MAX_PIDS 4096
#define PFLOG_MAX_PENDING 8
#define PFLOG_STATE_TTL 900

/* Count one session. 'when' is the time the line was read (seconds since
 * the epoch); the strings are valid only during the call. */
typedef void (*pflog_sink_fn)(void *arg, int64_t when, struct result_str d,
			      struct result_str pr, const struct result_policy *p);
/* Add 'n' to ingest counter 'c' (STC_LOG_*, STC_OWN_REPORTS, STC_NO_TLSRPT,
 * STC_LOG_CUT). Same 'arg' as the sink. */
typedef void (*pflog_count_fn)(void *arg, int64_t when, enum store_counter c, uint64_t n);

struct pflog;

/*
 * Follow log_source (a path, or "-" for stdin). A missing file is not an
 * error: it is opened when it appears. NULL with 'err' if log_source is
 * empty or on ENOMEM.
 */
struct pflog *pflog_open(const struct conf *c, pflog_sink_fn sink, void *arg,
			 char *err, size_t errsz);
/* The same without a source: lines come from pflog_feed (tests, fuzzing). */
struct pflog *pflog_new(const struct conf *c, pflog_sink_fn sink, void *arg,
			char *err, size_t errsz);
void pflog_close(struct pflog *pf);	/* writes the position; NULL is fine */

void pflog_set_counter(struct pflog *pf, pflog_count_fn count);
/* Replace the DNS/policy lookups (tests). */
void pflog_set_ops(struct pflog *pf, const struct pflookup_ops *ops);
/* Read the current file from its beginning (tools, tests). */
void pflog_rewind(struct pflog *pf);

/* An fd to poll for POLLIN (stdin), or -1: call pflog_poll on a timer
 * (every 200 ms is fine) - files, and stdin after its end. */
int pflog_fd(const struct pflog *pf);
/* Read what is available, count it. 0, or -1 on a read error (logged; the
 * next call tries again). */
int pflog_poll(struct pflog *pf, int64_t now);
/* True once stdin reached its end. */
bool pflog_eof(const struct pflog *pf);

/* Process one line (no newline) read at 'now'. */
void pflog_feed(struct pflog *pf, const char *line, size_t len, int64_t now);

/*
 * For a source of lines other than a file (the journal, pfjournal.h):
 * process one line whose position in that source is 'off' (never smaller
 * than an earlier line's). With 'replay' the line only rebuilds the
 * sessions waiting for their delivery line; nothing is counted.
 */
void pflog_feed_at(struct pflog *pf, const char *line, size_t len, int64_t now,
		   uint64_t off, bool replay);
/* The position of the oldest line fed with pflog_feed_at that a waiting
 * session came from; 'done' when no session waits. */
uint64_t pflog_replay_from(const struct pflog *pf, uint64_t done);

struct pflog_stats {
	uint64_t lines, sessions, failures, unrecognised, own_reports,
		no_tlsrpt, cut, dropped_states, config_alerts;
};
const struct pflog_stats *pflog_stats(const struct pflog *pf);

/* ---- the line parser ---- */

enum pflog_kind {
	PFLOG_NONE = 0,		/* not a line of ours, or of no interest */
	PFLOG_ESTABLISHED,	/* "<TRUST> TLS connection established to H[A]:P" */
	PFLOG_REUSED,		/* "... TLS connection reused to ...": skipped */
	PFLOG_DETAIL,		/* certificate/TLSA failure detail for H[A]:P */
	PFLOG_HANDSHAKE,	/* "SSL_connect error to H[A]:P: ..." */
	PFLOG_NOT_VERIFIED,	/* "Server certificate not verified" (final) */
	PFLOG_CANNOT_START,	/* "Cannot start TLS: handshake failure" (final) */
	PFLOG_STARTTLS,		/* "TLS is required, but ..." (final) */
	PFLOG_POLICY_FAIL,	/* "TLS policy lookup for D/H: ..." (dane-only) */
	PFLOG_CONFIG,		/* TLSRPT attribute rejected: configuration error */
	PFLOG_DELIVERY,		/* "QUEUEID: to=<rcpt>, relay=..., status=..." */
	PFLOG_FROM,		/* "QUEUEID: from=<sender>" (qmgr) */
	PFLOG_KNOWN,		/* a known TLS line that is no result */
	PFLOG_UNRECOGNISED,	/* TLS-related but not understood */
};

enum pflog_prog { PFLOG_PROG_OTHER = 0, PFLOG_PROG_SMTP, PFLOG_PROG_TLSPROXY, PFLOG_PROG_QMGR };

enum pflog_trust { PFLOG_ANONYMOUS = 1, PFLOG_UNTRUSTED, PFLOG_TRUSTED, PFLOG_VERIFIED };

struct pflog_event {
	enum pflog_kind kind;
	enum pflog_prog prog;
	struct result_str tag;		/* "postfix/smtp" */
	long pid;
	struct result_str msg;		/* after "TAG[PID]: " */
	struct result_str qid;		/* queue ID prefix, if any */
	struct result_str host, addr;	/* the MX of the line */
	int trust;			/* PFLOG_ESTABLISHED */
	int code;			/* result_code of a failure */
	const char *reason;		/* failure-reason-code, NULL if none */
	char reason_buf[96];		/* storage for a derived reason */
	bool dane;			/* failure proves a DANE (tlsa) policy */
	struct result_str dest;		/* PFLOG_POLICY_FAIL: next-hop destination */
	struct result_str rcpt;		/* PFLOG_DELIVERY: address; PFLOG_FROM: sender */
	struct result_str status;	/* "sent", "deferred", ... */
	/* PFLOG_DELIVERY whose status text is a final TLS failure: */
	enum pflog_kind final;		/* PFLOG_NONE or one of the final kinds */
};

/* Parse one line (no newline) of at most PFLOG_MAX_LINE bytes (more is not
 * read). Views point into 'line'. Returns ev->kind. */
enum pflog_kind pflog_parse(const char *line, size_t len, struct pflog_event *ev);

#endif
