/*
 * pflog - the Postfix 3.7-3.9 log follower. See pflog.h.
 *
 * SECURITY: log lines are untrusted (a remote server's reply text, host
 * names from DNS, recipient addresses): the parser reads at most
 * PFLOG_MAX_LINE bytes, never writes into the line, and copies fields into
 * fixed-size buffers with explicit bounds. Text quoted in our own log
 * messages goes through log_printable. All per-process state is bounded in
 * number and lifetime.
 */
#include "pflog.h"
#include "pfjournal.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mail.h"

/* ==== the line parser ==== */

static const char *find(const char *p, const char *e, const char *lit)
{
	size_t n = strlen(lit);

	if (p == NULL || e == NULL || p >= e || (size_t)(e - p) < n)
		return NULL;
	return memmem(p, (size_t)(e - p), lit, n);
}

static bool prefix(const char *p, const char *e, const char *lit)
{
	size_t n = strlen(lit);

	return p <= e && (size_t)(e - p) >= n && memcmp(p, lit, n) == 0;
}

/* Skip 'lit' at *p; true if it was there. */
static bool eat(const char **p, const char *e, const char *lit)
{
	if (!prefix(*p, e, lit))
		return false;
	*p += strlen(lit);
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static struct result_str view(const char *p, const char *e)
{
	struct result_str v = { p, (size_t)(e - p) };

	return v;
}

/*
 * "HOST[ADDR]" with an optional ":PORT" at *p: sets host and addr and
 * advances *p past it. Host: no space or brackets; addr: no space or ']'.
 */
static bool host_addr(const char **p, const char *e, struct pflog_event *ev)
{
	const char *h = *p, *lb, *rb;

	for (lb = h; lb < e && *lb != '[' && *lb != ' ' && *lb != ']'; lb++)
		;
	if (lb == h || lb >= e || *lb != '[')
		return false;
	for (rb = lb + 1; rb < e && *rb != ']' && *rb != ' ' && *rb != '['; rb++)
		;
	if (rb >= e || *rb != ']' || rb == lb + 1)
		return false;
	ev->host = view(h, lb);
	ev->addr = view(lb + 1, rb);
	*p = rb + 1;
	if (*p < e && **p == ':' && *p + 1 < e && is_digit((*p)[1])) {
		(*p)++;
		while (*p < e && is_digit(**p))
			(*p)++;
	}
	return true;
}

/* "TAG[PID]:" token; sets tag and pid. */
static bool tag_token(const char *s, const char *t, struct pflog_event *ev)
{
	const char *lb;
	long pid = 0;

	if (t - s < 5 || t[-1] != ':' || t[-2] != ']')
		return false;
	for (lb = t - 3; lb > s && is_digit(*lb); lb--)
		;
	if (*lb != '[' || lb == s || lb == t - 3 || t - 3 - lb > 10)
		return false;
	for (const char *d = lb + 1; d < t - 2; d++)
		pid = pid * 10 + (*d - '0');
	if (pid <= 0 || pid > 0x7fffffffL)
		return false;
	for (const char *c = s; c < lb; c++)
		if (*c == '[' || *c == ']')
			return false;
	ev->tag = view(s, lb);
	ev->pid = pid;
	return true;
}

/* RFC 5424: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG". */
static bool header_5424(const char *p, const char *e, struct pflog_event *ev)
{
	const char *tok[6];
	const char *end[6];
	long pid = 0;

	for (int i = 0; i < 6; i++) {
		while (p < e && *p == ' ')
			p++;
		tok[i] = p;
		while (p < e && *p != ' ')
			p++;
		end[i] = p;
		if (tok[i] == end[i])
			return false;
	}
	/* tok[0] "<PRI>1", tok[1] time, tok[2] host, tok[3] app, tok[4] procid */
	if (end[4] - tok[4] > 10)
		return false;
	for (const char *d = tok[4]; d < end[4]; d++) {
		if (!is_digit(*d))
			return false;
		pid = pid * 10 + (*d - '0');
	}
	if (pid <= 0 || pid > 0x7fffffffL)
		return false;
	ev->tag = view(tok[3], end[3]);
	ev->pid = pid;
	while (p < e && *p == ' ')
		p++;
	if (p < e && *p == '-') {
		p++;
	} else {
		/* structured data: one or more [...] with \] escapes */
		while (p < e && *p == '[') {
			p++;
			while (p < e && *p != ']') {
				if (*p == '\\' && p + 1 < e)
					p++;
				p++;
			}
			if (p >= e)
				return false;
			p++;
		}
	}
	if (p < e && *p == ' ')
		p++;
	if (e - p >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	ev->msg = view(p, e);
	return true;
}

/* Find "TAG[PID]: " among the first tokens of the line. */
static bool header(const char *p, const char *e, struct pflog_event *ev)
{
	if (p < e && *p == '<') {
		const char *q = p + 1;

		while (q < e && q - p < 5 && is_digit(*q))
			q++;
		if (q + 2 < e && q > p + 1 && q[0] == '>' && q[1] == '1' && q[2] == ' ')
			return header_5424(p, e, ev);
	}
	for (int i = 0; i < 8 && p < e; i++) {
		const char *t;

		while (p < e && *p == ' ')
			p++;
		for (t = p; t < e && *t != ' '; t++)
			;
		if (tag_token(p, t, ev)) {
			if (t < e)
				t++;
			ev->msg = view(t, e);
			return true;
		}
		p = t;
	}
	return false;
}

static enum pflog_prog program(struct result_str tag)
{
	const char *s = tag.p, *e = tag.p + tag.len, *base = s;

	for (const char *c = s; c < e; c++)
		if (*c == '/')
			base = c + 1;
	if ((size_t)(e - base) == 4 && memcmp(base, "smtp", 4) == 0)
		return PFLOG_PROG_SMTP;
	if ((size_t)(e - base) == 8 && memcmp(base, "tlsproxy", 8) == 0)
		return PFLOG_PROG_TLSPROXY;
	if ((size_t)(e - base) == 4 && memcmp(base, "qmgr", 4) == 0)
		return PFLOG_PROG_QMGR;
	return PFLOG_PROG_OTHER;
}

static void set_fail(struct pflog_event *ev, int code, const char *reason)
{
	ev->code = code;
	ev->reason = reason;
}

/* OpenSSL's verify text as a failure-reason-code: spaces become '_'. */
static void derived_reason(struct pflog_event *ev, const char *p, const char *e)
{
	size_t n = 0;

	while (p < e && n + 1 < sizeof(ev->reason_buf)) {
		char c = *p++;

		if ((unsigned char)c < 0x20 || (unsigned char)c > 0x7e)
			c = '?';
		ev->reason_buf[n++] = c == ' ' ? '_' : c;
	}
	ev->reason_buf[n] = '\0';
	ev->reason = ev->reason_buf;
}

/* "... verification failed for H[A]:P: TEXT" (table rows 6-15). */
static enum pflog_kind cert_detail(const char *p, const char *e, struct pflog_event *ev)
{
	if (!host_addr(&p, e, ev) || !eat(&p, e, ": "))
		return PFLOG_UNRECOGNISED;
	if (prefix(p, e, "not trusted by local or TLSA policy")) {
		set_fail(ev, RESULT_CERTIFICATE_NOT_TRUSTED, NULL);
	} else if (prefix(p, e, "self-signed certificate") ||
		   prefix(p, e, "self signed certificate")) {
		set_fail(ev, RESULT_VALIDATION_FAILURE, "self-signed_certificate");
	} else if (prefix(p, e, "untrusted issuer")) {
		set_fail(ev, RESULT_VALIDATION_FAILURE, "unable_to_get_local_issuer_certificate");
	} else if (prefix(p, e, "certificate not yet valid")) {
		set_fail(ev, RESULT_VALIDATION_FAILURE, "certificate_is_not_yet_valid");
	} else if (prefix(p, e, "certificate has expired")) {
		set_fail(ev, RESULT_CERTIFICATE_EXPIRED, NULL);
	} else if (prefix(p, e, "not designated for use as a")) {
		set_fail(ev, RESULT_VALIDATION_FAILURE, "unsupported_certificate_purpose");
	} else if (prefix(p, e, "certificate chain longer than limit")) {
		set_fail(ev, RESULT_VALIDATION_FAILURE, "certificate_chain_too_long");
	} else if (eat(&p, e, "num=")) {
		int num = 0;
		const char *d = p;

		while (p < e && is_digit(*p) && p - d < 6)
			num = num * 10 + (*p++ - '0');
		if (p == d || !eat(&p, e, ":"))
			return PFLOG_UNRECOGNISED;
		switch (num) {
		case 9:		/* certificate is not yet valid */
		case 18:	/* self-signed certificate */
		case 19:	/* self-signed certificate in certificate chain */
		case 20:	/* unable to get local issuer certificate */
		case 22:	/* certificate chain too long */
		case 26:	/* unsupported certificate purpose */
			ev->code = RESULT_VALIDATION_FAILURE;
			derived_reason(ev, p, e);
			break;
		case 10:
			set_fail(ev, RESULT_CERTIFICATE_EXPIRED, NULL);
			break;
		case 62:
			set_fail(ev, RESULT_CERTIFICATE_HOST_MISMATCH, NULL);
			break;
		case 65:
			set_fail(ev, RESULT_CERTIFICATE_NOT_TRUSTED, NULL);
			ev->dane = true;
			break;
		default:	/* 21, 23 revoked, 27 untrusted, ... */
			set_fail(ev, RESULT_CERTIFICATE_NOT_TRUSTED, NULL);
			break;
		}
	} else {
		return PFLOG_UNRECOGNISED;
	}
	return PFLOG_DETAIL;
}

/* The final lines of a failed session (rows 1, 2, 5, 17), alone, after a
 * queue ID, or in a delivery's status text. */
static enum pflog_kind final_line(const char *p, const char *e, struct pflog_event *ev)
{
	if (prefix(p, e, "Server certificate not verified") ||
	    prefix(p, e, "Server certificate not trusted"))
		return PFLOG_NOT_VERIFIED;
	if (prefix(p, e, "Cannot start TLS: handshake failure"))
		return PFLOG_CANNOT_START;
	if (eat(&p, e, "TLS is required, but was not offered by host ")) {
		if (host_addr(&p, e, ev)) {
			set_fail(ev, RESULT_STARTTLS_NOT_SUPPORTED, NULL);
			return PFLOG_STARTTLS;
		}
		return PFLOG_UNRECOGNISED;
	}
	if (eat(&p, e, "TLS is required, but host ")) {
		if (host_addr(&p, e, ev) && prefix(p, e, " refused to start TLS")) {
			set_fail(ev, RESULT_STARTTLS_NOT_SUPPORTED, NULL);
			return PFLOG_STARTTLS;
		}
		return PFLOG_UNRECOGNISED;
	}
	return PFLOG_NONE;
}

static bool tls_words(const char *p, const char *e)
{
	return find(p, e, "TLS") || find(p, e, "SSL") || find(p, e, "ertificate") ||
		find(p, e, "DANE");
}

/* TLS lines known to carry no result (connection trouble, remote text,
 * context lines, higher log levels, Postfix 3.10's own TLSRPT lines). */
static bool known_line(const char *p, const char *e)
{
	static const char *const prefixes[] = {
		"TLS library problem", "DANE TLSA lookup problem", "TLS policy lookup error",
		"TLSRPT:", "Could not report TLS", "Host offered STARTTLS", "SSL_connect:",
		"TLS is required, but our TLS engine is unavailable",
		"TLS is required, but unavailable",
		"setting up TLS connection", "lost connection with", "conversation with",
		"connect to ", "host ", "client certificate verification failed",
		"SSL_accept error", "initializing the client-side TLS engine",
	};
	static const char *const inside[] = {
		" said: ", " refused to talk to me", "TLS connection established from ",
		"certificate verification depth=", "subject_CN=", "Matched subjectAltName",
		"TLS connection reused from ", "SSL_accept:",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (prefix(p, e, prefixes[i]))
			return true;
	for (size_t i = 0; i < sizeof(inside) / sizeof(inside[0]); i++)
		if (find(p, e, inside[i]))
			return true;
	return false;
}

/* "to=<RCPT>, [orig_to=<...>, ]relay=H[A]:P, ..., status=WORD (TEXT)" */
static enum pflog_kind delivery(const char *p, const char *e, struct pflog_event *ev)
{
	const char *r = p, *q, *end = NULL, *st;

	/* the address ends at the first ">, relay=" or ">, orig_to=" */
	for (q = r; q < e && (q = memchr(q, '>', (size_t)(e - q))) != NULL; q++)
		if (prefix(q, e, ">, relay=") || prefix(q, e, ">, orig_to=")) {
			end = q;
			break;
		}
	if (end == NULL)
		return PFLOG_NONE;
	ev->rcpt = view(r, end);
	q = find(end, e, ", relay=");
	st = find(end, e, ", status=");
	if (q == NULL || st == NULL || st < q)
		return PFLOG_NONE;
	q += strlen(", relay=");
	if (!host_addr(&q, e, ev)) {
		ev->host.p = ev->addr.p = NULL;
		ev->host.len = ev->addr.len = 0;
	}
	st += strlen(", status=");
	for (q = st; q < e && *q != ' '; q++)
		;
	ev->status = view(st, q);
	if (eat(&q, e, " (")) {
		struct pflog_event f;
		enum pflog_kind k;

		memset(&f, 0, sizeof(f));
		k = final_line(q, e, &f);
		if (k == PFLOG_NOT_VERIFIED || k == PFLOG_CANNOT_START || k == PFLOG_STARTTLS) {
			ev->final = k;
			ev->code = f.code;
			if (f.host.p) {
				ev->host = f.host;
				ev->addr = f.addr;
			}
		}
	}
	return PFLOG_DELIVERY;
}

static enum pflog_kind policy_fail(const char *p, const char *e, struct pflog_event *ev)
{
	const char *slash, *colon;

	colon = find(p, e, ": ");
	if (colon == NULL)
		return PFLOG_UNRECOGNISED;
	slash = memchr(p, '/', (size_t)(colon - p));
	if (slash == NULL || slash == p)
		return PFLOG_UNRECOGNISED;
	ev->dest = view(p, slash);
	ev->host = view(slash + 1, colon);
	p = colon + 2;
	ev->dane = true;
	if (prefix(p, e, "TLSA lookup error for"))
		set_fail(ev, RESULT_DNSSEC_INVALID, NULL);
	else if (prefix(p, e, "non DNSSEC destination") || prefix(p, e, "no TLSA records found"))
		set_fail(ev, RESULT_DANE_REQUIRED, NULL);
	else if (prefix(p, e, "TLSA records unusable"))
		set_fail(ev, RESULT_TLSA_INVALID, "all-TLSA-records-unusable");
	else
		return PFLOG_UNRECOGNISED;
	return PFLOG_POLICY_FAIL;
}

static enum pflog_kind classify(const char *p, const char *e, struct pflog_event *ev)
{
	const char *q;
	enum pflog_kind k;
	static const char *const trusts[] = { "Anonymous ", "Untrusted ", "Trusted ", "Verified " };

	eat(&p, e, "warning: ");
	/* queue ID prefix: 5..20 alphanumerics, then ": " */
	for (q = p; q < e && q - p <= 20 && is_alnum(*q); q++)
		;
	if (q - p >= 5 && q - p <= 20 && prefix(q, e, ": ")) {
		ev->qid = view(p, q);
		p = q + 2;
		if (eat(&p, e, "to=<"))
			return delivery(p, e, ev);
		if (eat(&p, e, "from=<")) {
			for (q = p; q < e && !prefix(q, e, ">, ") && !prefix(q, e, ">"); q++)
				;
			ev->rcpt = view(p, q);
			return q < e ? PFLOG_FROM : PFLOG_NONE;
		}
		k = final_line(p, e, ev);
		if (k != PFLOG_NONE)
			return k;
		if (known_line(p, e) || !tls_words(p, e))
			return tls_words(p, e) ? PFLOG_KNOWN : PFLOG_NONE;
		return PFLOG_UNRECOGNISED;
	}
	for (size_t i = 0; i < sizeof(trusts) / sizeof(trusts[0]); i++) {
		q = p;
		if (!eat(&q, e, trusts[i]))
			continue;
		if (eat(&q, e, "TLS connection established to ")) {
			if (!host_addr(&q, e, ev))
				return PFLOG_UNRECOGNISED;
			ev->trust = (int)i + PFLOG_ANONYMOUS;
			return PFLOG_ESTABLISHED;
		}
		if (eat(&q, e, "TLS connection reused to "))
			return PFLOG_REUSED;
		break;
	}
	q = p;
	if (eat(&q, e, "server certificate verification failed for ") ||
	    eat(&q, e, "CA certificate verification failed for ") ||
	    eat(&q, e, "certificate verification failed for "))
		return cert_detail(q, e, ev);
	q = p;
	if (eat(&q, e, "SSL_connect error to ")) {
		if (!host_addr(&q, e, ev))
			return PFLOG_UNRECOGNISED;
		set_fail(ev, RESULT_VALIDATION_FAILURE, "tls-handshake-failure");
		return PFLOG_HANDSHAKE;
	}
	q = p;
	if (eat(&q, e, "TLS policy lookup for "))
		return policy_fail(q, e, ev);
	if ((q = find(p, e, ": invalid attribute name: \"")) != NULL) {
		q += strlen(": invalid attribute name: \"");
		if (prefix(q, e, "policy_") || prefix(q, e, "mx_host_pattern"))
			return PFLOG_CONFIG;
		return PFLOG_KNOWN;
	}
	k = final_line(p, e, ev);
	if (k != PFLOG_NONE)
		return k;
	q = p;
	if (host_addr(&q, e, ev) && eat(&q, e, ": ")) {
		if (prefix(q, e, "re-using session with untrusted certificate")) {
			set_fail(ev, RESULT_CERTIFICATE_NOT_TRUSTED, NULL);
			return PFLOG_DETAIL;
		}
		if (prefix(q, e, "all TLSA records unusable")) {
			set_fail(ev, RESULT_TLSA_INVALID, "all-TLSA-records-unusable");
			ev->dane = true;
			return PFLOG_DETAIL;
		}
		/* tls_client.c: fingerprint and secure/verify levels */
		if (prefix(q, e, "all fingerprints unusable")) {
			set_fail(ev, RESULT_VALIDATION_FAILURE, "all-fingerprints-unusable");
			return PFLOG_DETAIL;
		}
		if (prefix(q, e, "all trust anchors unusable")) {
			set_fail(ev, RESULT_VALIDATION_FAILURE, "all-trust-anchors-unusable");
			return PFLOG_DETAIL;
		}
	}
	ev->host.p = ev->addr.p = NULL;
	ev->host.len = ev->addr.len = 0;
	if (!tls_words(p, e))
		return PFLOG_NONE;
	return known_line(p, e) ? PFLOG_KNOWN : PFLOG_UNRECOGNISED;
}

enum pflog_kind pflog_parse(const char *line, size_t len, struct pflog_event *ev)
{
	const char *e;

	memset(ev, 0, sizeof(*ev));
	if (len > PFLOG_MAX_LINE)
		len = PFLOG_MAX_LINE;
	e = line + len;
	while (e > line && (e[-1] == '\r' || e[-1] == ' '))
		e--;
	if (!header(line, e, ev))
		return ev->kind = PFLOG_NONE;
	ev->prog = program(ev->tag);
	if (ev->prog == PFLOG_PROG_OTHER)
		return ev->kind = PFLOG_NONE;
	ev->kind = classify(ev->msg.p, ev->msg.p + ev->msg.len, ev);
	if (ev->prog == PFLOG_PROG_QMGR && ev->kind != PFLOG_FROM)
		ev->kind = PFLOG_NONE;
	if (ev->prog != PFLOG_PROG_QMGR && ev->kind == PFLOG_FROM)
		ev->kind = PFLOG_NONE;
	return ev->kind;
}

/* ==== the pairing state machine ==== */

#define HOST_MAX 256
#define ADDR_MAX 64
#define TAG_MAX 64
#define QID_MAX 24
#define PROXY_SLOTS 64
#define OWN_SLOTS 256
#define OWN_TTL 86400
#define PROXY_TTL 120
#define PATTERN_SLOTS 256

struct sess {
	char host[HOST_MAX], addr[ADDR_MAX];
	char reason[96];
	char dest[256];		/* next hop given by the line itself */
	int code;
	int trust;
	bool dane;
	bool summary;		/* "TLS connection established" seen */
	bool ended;		/* handshake failed: no summary will follow */
	bool final;		/* a final failure line was seen */
	uint64_t gen, off;	/* file generation and offset of its first line */
};

struct pstate {
	char tag[TAG_MAX];
	long pid;
	uint32_t hash;
	int64_t last;
	struct pstate *hnext, *prev, *next;
	bool has_cur;
	struct sess cur;
	size_t ndone;
	struct sess done[PFLOG_MAX_PENDING];
};

struct proxy_detail {
	char host[HOST_MAX], addr[ADDR_MAX], reason[96];
	int code;
	bool dane;
	int64_t when;
};

#define NBUCKETS 1024

struct pflog {
	pflog_sink_fn sink;
	pflog_count_fn count;
	void *arg;
	struct pflookup *lookup;
	struct pflog_stats st;
	char *report_sender;
	char **ignore;
	size_t nignore;

	struct pstate *buckets[NBUCKETS];
	struct pstate *head, *tail;	/* LRU of process states */
	size_t nstates;
	struct proxy_detail proxy[PROXY_SLOTS];
	size_t proxy_next;
	struct { char qid[QID_MAX]; int64_t when; } own[OWN_SLOTS];
	size_t own_next;
	uint32_t patterns[PATTERN_SLOTS];
	size_t npatterns;

	/* follower */
	char *path;		/* NULL: stdin or no source */
	char *pos_path;
	bool from_stdin, has_source, eof, start_at_zero;
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t gen;		/* bumped when the file changes (offsets restart) */
	uint64_t off;		/* bytes of the current file consumed */
	uint64_t line_off;	/* offset of the line being assembled */
	uint64_t quiet_until;	/* replay: lines ending at or before are not counted */
	uint64_t cur_line_off;	/* offset of the line being fed */
	bool quiet;
	char line[PFLOG_MAX_LINE];
	size_t linelen;
	bool cut;
	bool dirty;		/* lines processed since the last position write */
	int open_errno;		/* why the path could not be opened last, or 0 */
	int64_t open_err_said;	/* when that was logged (CLOCK_MONOTONIC s) */
	struct pfjournal *journal;	/* log_source = journal[:DIR], or NULL */
};

static void bump(struct pflog *pf, int64_t now, enum store_counter c, uint64_t n)
{
	if (pf->count)
		pf->count(pf->arg, now, c, n);
}

static void copy_view(char *out, size_t outsz, struct result_str v)
{
	size_t n = v.len < outsz - 1 ? v.len : outsz - 1;

	if (v.p)
		memcpy(out, v.p, n);
	else
		n = 0;
	out[n] = '\0';
}

static bool view_is(const char *s, struct result_str v)
{
	return v.p && strlen(s) == v.len && memcmp(s, v.p, v.len) == 0;
}

static uint32_t state_hash(struct result_str tag, long pid)
{
	uint32_t h = 2166136261u ^ (uint32_t)pid;

	for (size_t i = 0; i < tag.len && i < TAG_MAX - 1; i++)
		h = (h ^ (unsigned char)tag.p[i]) * 16777619u;
	return h;
}

static void lru_unlink(struct pflog *pf, struct pstate *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		pf->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		pf->tail = s->prev;
	s->prev = s->next = NULL;
}

static void lru_push(struct pflog *pf, struct pstate *s)
{
	s->next = pf->head;
	s->prev = NULL;
	if (pf->head)
		pf->head->prev = s;
	pf->head = s;
	if (pf->tail == NULL)
		pf->tail = s;
}

static void state_drop(struct pflog *pf, struct pstate *s)
{
	struct pstate **pp = &pf->buckets[s->hash % NBUCKETS];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
	lru_unlink(pf, s);
	if (s->has_cur || s->ndone)
		pf->st.dropped_states++;
	pf->nstates--;
	free(s);
}

static struct pstate *state_get(struct pflog *pf, const struct pflog_event *ev, int64_t now,
				bool create)
{
	uint32_t h = state_hash(ev->tag, ev->pid);
	struct pstate *s;
	char tag[TAG_MAX];

	copy_view(tag, sizeof(tag), ev->tag);
	for (s = pf->buckets[h % NBUCKETS]; s; s = s->hnext)
		if (s->hash == h && s->pid == ev->pid && strcmp(s->tag, tag) == 0)
			break;
	if (s == NULL) {
		if (!create)
			return NULL;
		while (pf->nstates >= PFLOG_MAX_PIDS && pf->tail)
			state_drop(pf, pf->tail);
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			return NULL;
		memcpy(s->tag, tag, sizeof(tag));
		s->pid = ev->pid;
		s->hash = h;
		s->hnext = pf->buckets[h % NBUCKETS];
		pf->buckets[h % NBUCKETS] = s;
		pf->nstates++;
	} else {
		lru_unlink(pf, s);
	}
	lru_push(pf, s);
	s->last = now;
	return s;
}

static void expire_states(struct pflog *pf, int64_t now)
{
	while (pf->tail && pf->tail->last + PFLOG_STATE_TTL < now)
		state_drop(pf, pf->tail);
}

static bool same_mx(const struct sess *s, const struct pflog_event *ev)
{
	return ev->host.p == NULL ||
		(view_is(s->host, ev->host) && view_is(s->addr, ev->addr));
}

static void sess_start(struct pflog *pf, struct sess *s, const struct pflog_event *ev)
{
	memset(s, 0, sizeof(*s));
	copy_view(s->host, sizeof(s->host), ev->host);
	copy_view(s->addr, sizeof(s->addr), ev->addr);
	s->gen = pf->gen;
	s->off = pf->cur_line_off;
}

static void sess_fail(struct sess *s, int code, const char *reason, bool dane)
{
	if (s->code)
		return;		/* the first outcome wins, as in Postfix 3.10 */
	s->code = code;
	s->dane = dane;
	if (reason)
		snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

/* Take the failure detail tlsproxy(8) logged for this MX, if any; only a
 * DANE fallback detail ("all TLSA records unusable") when 'dane_only'. */
static bool proxy_take(struct pflog *pf, struct sess *s, int64_t now, bool dane_only)
{
	for (size_t i = 0; i < PROXY_SLOTS; i++) {
		struct proxy_detail *d = &pf->proxy[(pf->proxy_next + PROXY_SLOTS - 1 - i) % PROXY_SLOTS];

		if (d->code == 0 || d->when + PROXY_TTL < now || (dane_only && !d->dane))
			continue;
		if (strcmp(d->host, s->host) == 0 && strcmp(d->addr, s->addr) == 0) {
			sess_fail(s, d->code, d->reason[0] ? d->reason : NULL, d->dane);
			d->code = 0;
			return true;
		}
	}
	return false;
}

static void proxy_put(struct pflog *pf, const struct pflog_event *ev, int64_t now)
{
	struct proxy_detail *d = &pf->proxy[pf->proxy_next++ % PROXY_SLOTS];

	copy_view(d->host, sizeof(d->host), ev->host);
	copy_view(d->addr, sizeof(d->addr), ev->addr);
	snprintf(d->reason, sizeof(d->reason), "%s", ev->reason ? ev->reason : "");
	d->code = ev->code;
	d->dane = ev->dane;
	d->when = now;
}

/* Finish the current session of 's' and queue it for the delivery line. */
static void close_cur(struct pflog *pf, struct pstate *s, int64_t now)
{
	struct sess *c = &s->cur;

	if (!s->has_cur)
		return;
	s->has_cur = false;
	/* a session that completed despite a failure (DANE fallback) has no
	 * final line: only such a detail is taken for it */
	if (c->code == 0 && (c->final || c->trust != PFLOG_VERIFIED))
		proxy_take(pf, c, now, !c->final);
	/* "Server certificate not verified" without a detail: a trusted chain
	 * whose name did not match, else an untrusted one (Postfix 3.10) */
	if (c->code == 0 && c->final)
		c->code = c->trust == PFLOG_TRUSTED ? RESULT_CERTIFICATE_HOST_MISMATCH
						    : RESULT_CERTIFICATE_NOT_TRUSTED;
	if (c->code == 0 && !c->summary)
		return;
	if (s->ndone == PFLOG_MAX_PENDING) {
		memmove(&s->done[0], &s->done[1], sizeof(s->done[0]) * (PFLOG_MAX_PENDING - 1));
		s->ndone--;
		pf->st.dropped_states++;
	}
	s->done[s->ndone++] = *c;
}

/* The current session, or a new one for the MX of 'ev'. */
static struct sess *cur_for(struct pflog *pf, struct pstate *s, const struct pflog_event *ev,
			    int64_t now, bool is_summary)
{
	if (s->has_cur && (!same_mx(&s->cur, ev) || s->cur.ended ||
			   (is_summary && s->cur.summary)))
		close_cur(pf, s, now);
	if (!s->has_cur) {
		sess_start(pf, &s->cur, ev);
		s->has_cur = true;
	}
	return &s->cur;
}

static bool is_own(struct pflog *pf, struct result_str qid, int64_t now)
{
	char q[QID_MAX];

	if (qid.p == NULL)
		return false;
	copy_view(q, sizeof(q), qid);
	for (size_t i = 0; i < OWN_SLOTS; i++)
		if (pf->own[i].qid[0] && pf->own[i].when + OWN_TTL >= now &&
		    strcmp(pf->own[i].qid, q) == 0)
			return true;
	return false;
}

static void emit(struct pflog *pf, const struct sess *s, const char *rcpt_domain,
		 bool own, int64_t now)
{
	char domain[256];
	struct result_str d, pr;
	struct result_policy p;
	struct result_detail det;
	bool dane;

	if (pf->quiet)
		return;
	if (own) {
		pf->st.own_reports++;
		bump(pf, now, STC_OWN_REPORTS, 1);
		return;
	}
	if (s->dest[0] ? pflookup_domain(s->dest, strlen(s->dest), domain, sizeof(domain)) == 0
		       : rcpt_domain == NULL) {
		pf->st.no_tlsrpt++;
		bump(pf, now, STC_NO_TLSRPT, 1);
		return;
	}
	if (!s->dest[0])
		snprintf(domain, sizeof(domain), "%s", rcpt_domain);
	if (!pflookup_tlsrpt(pf->lookup, domain, now, &pr)) {
		pf->st.no_tlsrpt++;
		bump(pf, now, STC_NO_TLSRPT, 1);
		return;
	}
	memset(&p, 0, sizeof(p));
	dane = pflookup_policy(pf->lookup, domain, now, &p);
	if ((dane || s->dane) && pflookup_tlsa(pf->lookup, s->host, now, &p)) {
		/* Postfix did DANE: the MX host's TLSA records are the policy */
	} else if (s->dane) {
		/* the failure itself shows a DANE policy, but the TLSA records
		 * are not known (no secure RRset, lookup failed) */
		p.type = POLICY_TLSA;
		p.domain.p = s->host[0] ? s->host : domain;
		p.domain.len = strlen(p.domain.p);
		p.strings = p.mx = NULL;
		p.nstrings = p.nmx = 0;
	}
	memset(&det, 0, sizeof(det));
	if (s->code) {
		det.code = s->code;
		if (s->host[0]) {
			det.mx_hostname.p = s->host;
			det.mx_hostname.len = strlen(s->host);
		}
		if (s->addr[0]) {
			det.receiving_ip.p = s->addr;
			det.receiving_ip.len = strlen(s->addr);
		}
		if (s->reason[0]) {
			det.reason.p = s->reason;
			det.reason.len = strlen(s->reason);
		}
		p.failed = true;
		p.details = &det;
		p.ndetails = 1;
		pf->st.failures++;
	}
	d.p = domain;
	d.len = strlen(domain);
	pf->st.sessions++;
	bump(pf, now, STC_LOG_SESSIONS, 1);
	if (pf->sink)
		pf->sink(pf->arg, now, d, pr, &p);
}

/* A delivery line: the queued sessions belong to its recipient domain. */
static void on_delivery(struct pflog *pf, struct pstate *s, const struct pflog_event *ev,
			int64_t now)
{
	char domain[256];
	const char *at = NULL, *dom = NULL;
	bool own;

	if (ev->final != PFLOG_NONE) {
		struct pflog_event f = *ev;

		f.kind = ev->final;
		if (f.kind == PFLOG_STARTTLS) {
			close_cur(pf, s, now);
			sess_start(pf, &s->cur, &f);
			s->has_cur = true;
			sess_fail(&s->cur, RESULT_STARTTLS_NOT_SUPPORTED, NULL, false);
		} else {
			struct sess *c;

			if (s->has_cur && !same_mx(&s->cur, &f))
				close_cur(pf, s, now);
			if (f.kind == PFLOG_CANNOT_START && s->has_cur && s->cur.ended) {
				close_cur(pf, s, now);
				goto closed;
			}
			c = cur_for(pf, s, &f, now, false);
			c->final = true;
			if (f.kind == PFLOG_CANNOT_START) {
				proxy_take(pf, c, now, false);
				sess_fail(c, RESULT_VALIDATION_FAILURE, "tls-handshake-failure", false);
			}
		}
	}
	close_cur(pf, s, now);
closed:
	if (s->ndone == 0)
		return;
	for (size_t i = 0; i < ev->rcpt.len; i++)
		if (ev->rcpt.p[i] == '@')
			at = ev->rcpt.p + i;
	if (at && pflookup_domain(at + 1, (size_t)(ev->rcpt.p + ev->rcpt.len - at - 1),
				  domain, sizeof(domain)) > 0)
		dom = domain;
	own = is_own(pf, ev->qid, now);
	for (size_t i = 0; i < s->ndone; i++)
		emit(pf, &s->done[i], dom, own, now);
	s->ndone = 0;
}

static void unrecognised(struct pflog *pf, const struct pflog_event *ev, int64_t now)
{
	static struct log_limit lim;
	char pat[80], pr[300];
	size_t n = 0;
	uint32_t h = 2166136261u;
	const char *p = ev->msg.p, *e = ev->msg.p + ev->msg.len;

	if (pf->quiet)
		return;
	pf->st.unrecognised++;
	bump(pf, now, STC_LOG_UNRECOGNISED, 1);
	/* the pattern: digits and bracketed parts folded, at most 79 bytes */
	while (p < e && n < sizeof(pat) - 1) {
		if (is_digit(*p)) {
			while (p < e && is_digit(*p))
				p++;
			pat[n++] = '#';
		} else if (*p == '[') {
			while (p < e && *p != ']')
				p++;
			pat[n++] = '[';
			if (p < e)
				p++;
		} else {
			pat[n++] = *p++;
		}
	}
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)pat[i]) * 16777619u;
	for (size_t i = 0; i < pf->npatterns && i < PATTERN_SLOTS; i++)
		if (pf->patterns[i] == h)
			return;
	pf->patterns[pf->npatterns++ % PATTERN_SLOTS] = h;
	log_warn_limited(&lim, "log follower: TLS log line not understood (%.*s): %s",
			 (int)(ev->tag.len > 64 ? 64 : ev->tag.len), ev->tag.p,
			 log_printable(pr, sizeof(pr), ev->msg.p, ev->msg.len));
}

static bool ignored_tag(const struct pflog *pf, struct result_str tag)
{
	for (size_t i = 0; i < pf->nignore; i++) {
		size_t n = strlen(pf->ignore[i]);

		if (n == 0 || tag.len < n || memcmp(tag.p, pf->ignore[i], n) != 0)
			continue;
		if (tag.len == n || tag.p[n] == '/')
			return true;
	}
	return false;
}

void pflog_feed(struct pflog *pf, const char *line, size_t len, int64_t now)
{
	struct pflog_event ev;
	struct pstate *s;

	if (!pf->quiet) {
		pf->st.lines++;
		bump(pf, now, STC_LOG_LINES, 1);
	}
	expire_states(pf, now);
	if (pflog_parse(line, len, &ev) == PFLOG_NONE || ignored_tag(pf, ev.tag))
		return;
	if (ev.kind == PFLOG_FROM) {
		char sender[320];

		copy_view(sender, sizeof(sender), ev.rcpt);
		if (pf->report_sender[0] && ev.qid.len < QID_MAX &&
		    strcasecmp(sender, pf->report_sender) == 0) {
			copy_view(pf->own[pf->own_next].qid, QID_MAX, ev.qid);
			pf->own[pf->own_next].when = now;
			pf->own_next = (pf->own_next + 1) % OWN_SLOTS;
		}
		return;
	}
	if (ev.kind == PFLOG_UNRECOGNISED) {
		if (ev.prog == PFLOG_PROG_SMTP)
			unrecognised(pf, &ev, now);
		return;
	}
	if (ev.kind == PFLOG_CONFIG) {
		static struct log_limit lim;
		char pr[300];

		pf->st.config_alerts++;
		log_warn_limited(&lim, "log follower: Postfix rejects the policy table's TLSRPT "
				 "attributes (turn off the plugin's TLSRPT option on Postfix <= 3.9): %s",
				 log_printable(pr, sizeof(pr), ev.msg.p, ev.msg.len));
		return;
	}
	if (ev.kind == PFLOG_KNOWN || ev.kind == PFLOG_REUSED)
		return;
	if (ev.prog == PFLOG_PROG_TLSPROXY) {
		/* details only; its summaries duplicate smtp(8)'s */
		if ((ev.kind == PFLOG_DETAIL || ev.kind == PFLOG_HANDSHAKE) && ev.code)
			proxy_put(pf, &ev, now);
		return;
	}
	s = state_get(pf, &ev, now, ev.kind != PFLOG_DELIVERY || ev.final != PFLOG_NONE);
	if (s == NULL)
		return;
	switch (ev.kind) {
	case PFLOG_ESTABLISHED: {
		struct sess *c = cur_for(pf, s, &ev, now, true);

		c->summary = true;
		c->trust = ev.trust;
		break;
	}
	case PFLOG_DETAIL:
		sess_fail(cur_for(pf, s, &ev, now, false), ev.code, ev.reason, ev.dane);
		break;
	case PFLOG_HANDSHAKE: {
		struct sess *c = cur_for(pf, s, &ev, now, false);

		sess_fail(c, ev.code, ev.reason, false);
		c->ended = true;
		break;
	}
	case PFLOG_NOT_VERIFIED:
		if (!s->has_cur) {
			sess_start(pf, &s->cur, &ev);
			s->has_cur = true;
		}
		s->cur.final = true;
		close_cur(pf, s, now);
		break;
	case PFLOG_CANNOT_START:
		if (s->has_cur && s->cur.ended) {
			close_cur(pf, s, now);
			break;
		}
		if (!s->has_cur) {
			sess_start(pf, &s->cur, &ev);
			s->has_cur = true;
		}
		s->cur.final = true;
		proxy_take(pf, &s->cur, now, false);
		sess_fail(&s->cur, RESULT_VALIDATION_FAILURE, "tls-handshake-failure", false);
		close_cur(pf, s, now);
		break;
	case PFLOG_STARTTLS:
		close_cur(pf, s, now);
		sess_start(pf, &s->cur, &ev);
		s->has_cur = true;
		sess_fail(&s->cur, ev.code, NULL, false);
		close_cur(pf, s, now);
		break;
	case PFLOG_POLICY_FAIL:
		/* logged once per address of the MX host: one session per host */
		for (size_t i = 0; i < s->ndone; i++)
			if (s->done[i].code == ev.code && view_is(s->done[i].host, ev.host) &&
			    view_is(s->done[i].dest, ev.dest))
				return;
		close_cur(pf, s, now);
		sess_start(pf, &s->cur, &ev);
		copy_view(s->cur.dest, sizeof(s->cur.dest), ev.dest);
		s->has_cur = true;
		sess_fail(&s->cur, ev.code, ev.reason, true);
		close_cur(pf, s, now);
		break;
	case PFLOG_DELIVERY:
		on_delivery(pf, s, &ev, now);
		if (!s->has_cur && s->ndone == 0)
			state_drop(pf, s);
		break;
	default:
		break;
	}
}

/* ==== setup ==== */

static int split_ignore(struct pflog *pf, const char *list)
{
	const char *p = list;

	while (*p) {
		const char *s, *e;
		char **n;

		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		s = p;
		while (*p && *p != ',')
			p++;
		e = p;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == s)
			continue;
		n = realloc(pf->ignore, (pf->nignore + 1) * sizeof(*n));
		if (n == NULL)
			return -1;
		pf->ignore = n;
		if ((n[pf->nignore] = strndup(s, (size_t)(e - s))) == NULL)
			return -1;
		pf->nignore++;
	}
	return 0;
}

struct pflog *pflog_new(const struct conf *c, pflog_sink_fn sink, void *arg,
			char *err, size_t errsz)
{
	struct pflog *pf = calloc(1, sizeof(*pf));
	char sender[MAIL_ADDR_MAX + 1], why[300];

	if (pf == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	pf->fd = -1;
	pf->sink = sink;
	pf->arg = arg;
	pf->lookup = pflookup_new(c, err, errsz);
	if (pf->lookup == NULL) {
		pflog_close(pf);
		return NULL;
	}
	/* the envelope sender tlsrpt-report sends with (none: nothing skipped) */
	if (mail_envelope_sender(c, sender, sizeof(sender), why, sizeof(why)) != 0)
		sender[0] = '\0';
	if ((pf->report_sender = strdup(sender)) == NULL ||
	    split_ignore(pf, conf_str(c, "log_ignore_syslog_names")) != 0) {
		snprintf(err, errsz, "out of memory");
		pflog_close(pf);
		return NULL;
	}
	return pf;
}

void pflog_set_counter(struct pflog *pf, pflog_count_fn count)
{
	pf->count = count;
}

static uint64_t replay_offset(const struct pflog *pf, uint64_t done);

void pflog_feed_at(struct pflog *pf, const char *line, size_t len, int64_t now,
		   uint64_t off, bool replay)
{
	pf->cur_line_off = off;
	pf->quiet = replay;
	pflog_feed(pf, line, len, now);
	pf->quiet = false;
}

uint64_t pflog_replay_from(const struct pflog *pf, uint64_t done)
{
	return replay_offset(pf, done);
}

void pflog_set_ops(struct pflog *pf, const struct pflookup_ops *ops)
{
	pflookup_set_ops(pf->lookup, ops);
}

const struct pflog_stats *pflog_stats(const struct pflog *pf)
{
	return &pf->st;
}

/* ==== the follower ==== */

#define POS_MAGIC "pflog1"
#define POLL_BUDGET (4u << 20)	/* bytes read per pflog_poll */

struct pos {
	unsigned long long dev, ino, replay, done;
};

static bool read_pos(const struct pflog *pf, struct pos *pos)
{
	FILE *fp = fopen(pf->pos_path, "r");
	char magic[8];
	int n;

	if (fp == NULL)
		return false;
	n = fscanf(fp, "%7s %llu %llu %llu %llu", magic, &pos->dev, &pos->ino,
		   &pos->replay, &pos->done);
	fclose(fp);
	if (n != 5 || strcmp(magic, POS_MAGIC) != 0 || pos->replay > pos->done) {
		log_warn("log follower: %s is not a position file; reading from the end",
			 pf->pos_path);
		return false;
	}
	return true;
}

/* The start of the oldest line that a waiting session of this file
 * generation came from; 'done' if there is none. */
static uint64_t replay_offset(const struct pflog *pf, uint64_t done)
{
	uint64_t r = done;

	for (const struct pstate *s = pf->head; s; s = s->next) {
		if (s->has_cur && s->cur.gen == pf->gen && s->cur.off < r)
			r = s->cur.off;
		for (size_t i = 0; i < s->ndone; i++)
			if (s->done[i].gen == pf->gen && s->done[i].off < r)
				r = s->done[i].off;
	}
	return r;
}

static void write_pos(struct pflog *pf)
{
	static struct log_limit lim;
	char tmp[4200], text[128];
	int fd, len;
	uint64_t done = pf->line_off;

	if (pf->pos_path == NULL || pf->fd < 0)
		return;
	pf->dirty = false;
	len = snprintf(text, sizeof(text), POS_MAGIC " %llu %llu %llu %llu\n",
		       (unsigned long long)pf->dev, (unsigned long long)pf->ino,
		       (unsigned long long)replay_offset(pf, done), (unsigned long long)done);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", pf->pos_path) >= (int)sizeof(tmp))
		return;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, (size_t)len) != len || close(fd) != 0 ||
	    rename(tmp, pf->pos_path) != 0) {
		log_warn_limited(&lim, "log follower: cannot write %s: %s", pf->pos_path,
				 strerror(errno));
		if (fd >= 0)
			unlink(tmp);
	}
}

static void finish_line(struct pflog *pf, int64_t now)
{
	pf->quiet = pf->off <= pf->quiet_until;
	pf->cur_line_off = pf->line_off;
	if (pf->cut && !pf->quiet) {
		static struct log_limit lim;

		pf->st.cut++;
		bump(pf, now, STC_LOG_CUT, 1);
		log_warn_limited(&lim, "log follower: a line of %s longer than %d bytes was cut",
				 pf->path ? pf->path : "standard input", PFLOG_MAX_LINE);
	}
	pflog_feed(pf, pf->line, pf->linelen, now);
	pf->quiet = false;
	pf->linelen = 0;
	pf->cut = false;
	pf->line_off = pf->off;
	pf->dirty = true;
}

static void consume(struct pflog *pf, const char *buf, size_t n, int64_t now)
{
	const char *p = buf, *e = buf + n;

	while (p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *se = nl ? nl : e;
		size_t seg = (size_t)(se - p), room = PFLOG_MAX_LINE - pf->linelen;

		if (seg > room) {
			pf->cut = true;
			seg = room;
		}
		memcpy(pf->line + pf->linelen, p, seg);
		pf->linelen += seg;
		pf->off += (uint64_t)(se - p);
		p = se;
		if (nl) {
			pf->off++;
			p++;
			finish_line(pf, now);
		}
	}
}

/* An open error that goes on is said again this often (seconds). */
#define OPEN_ERR_REPEAT 3600

/*
 * The path cannot be opened (errno 'e'). A file that does not exist (yet,
 * or between a rotation's rename and the new file) is waited for, said
 * once. Any other reason (EACCES: the collector's user may not read it) is
 * an error that would otherwise count nothing without a word: logged with
 * the file, the reason and the user, once when it starts or changes, then
 * hourly while it lasts (the follower retries 5 times a second).
 */
static void open_failed(struct pflog *pf, int e)
{
	struct timespec ts;
	struct passwd *pw;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (e == pf->open_errno && (e == ENOENT || ts.tv_sec - pf->open_err_said < OPEN_ERR_REPEAT))
		return;
	pf->open_errno = e;
	pf->open_err_said = ts.tv_sec;
	if (e == ENOENT) {
		log_info("log follower: %s does not exist (yet); following it once it does", pf->path);
		return;
	}
	if (e == EACCES || e == EPERM) {
		pw = getpwuid(geteuid());
		log_err("log follower: cannot open %s: %s (user %s may not read it; for rsyslog's "
			"files: adduser %s adm); nothing is counted from it until it can",
			pf->path, strerror(e), pw ? pw->pw_name : "?", pw ? pw->pw_name : "USER");
	} else {
		log_err("log follower: cannot open %s: %s; nothing is counted from it until it can "
			"be opened", pf->path, strerror(e));
	}
}

/* Start on a (new) file: fd, identity, offset 0. */
static void use_file(struct pflog *pf, int fd, const struct stat *st)
{
	if (pf->open_errno != 0 && pf->path) {
		log_info("log follower: %s can be read now", pf->path);
		pf->open_errno = 0;
	}
	pf->fd = fd;
	pf->dev = st->st_dev;
	pf->ino = st->st_ino;
	pf->off = pf->line_off = 0;
	pf->linelen = 0;
	pf->cut = false;
	pf->quiet_until = 0;
	pf->gen++;
}

static int open_at_zero(struct pflog *pf)
{
	struct stat st;
	int fd = open(pf->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		open_failed(pf, errno);
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		close(fd);
		return -1;
	}
	use_file(pf, fd, &st);
	return 0;
}

/* Continue 'fd' from a remembered position. */
static void resume(struct pflog *pf, int fd, const struct stat *st, const struct pos *pos)
{
	use_file(pf, fd, st);
	if (lseek(fd, (off_t)pos->replay, SEEK_SET) < 0)
		return;
	pf->off = pf->line_off = pos->replay;
	pf->quiet_until = pos->done;
}

static void initial_open(struct pflog *pf)
{
	struct stat st, ost;
	struct pos pos;
	bool have = read_pos(pf, &pos);
	int fd = open(pf->path, O_RDONLY | O_CLOEXEC);
	int e = errno;
	char old[4200];

	if (fd >= 0 && fstat(fd, &st) != 0) {
		e = errno;
		close(fd);
		fd = -1;
	}
	if (fd >= 0 && !have) {
		/* first start: what is in the file now is not today's news */
		use_file(pf, fd, &st);
		if (lseek(fd, 0, SEEK_END) >= 0)
			pf->off = pf->line_off = (uint64_t)st.st_size;
		return;
	}
	if (fd >= 0 && pos.dev == (unsigned long long)st.st_dev &&
	    pos.ino == (unsigned long long)st.st_ino) {
		if (pos.done <= (unsigned long long)st.st_size)
			resume(pf, fd, &st, &pos);
		else
			use_file(pf, fd, &st);	/* truncated while we were away */
		return;
	}
	/* rotated while we were away: finish PATH.1 if it is our file */
	if (have && snprintf(old, sizeof(old), "%s.1", pf->path) < (int)sizeof(old)) {
		int ofd = open(old, O_RDONLY | O_CLOEXEC);

		if (ofd >= 0 && fstat(ofd, &ost) == 0 &&
		    pos.dev == (unsigned long long)ost.st_dev &&
		    pos.ino == (unsigned long long)ost.st_ino &&
		    pos.done <= (unsigned long long)ost.st_size) {
			if (fd >= 0)
				close(fd);
			resume(pf, ofd, &ost, &pos);
			log_info("log follower: finishing %s before %s", old, pf->path);
			return;
		}
		if (ofd >= 0)
			close(ofd);
	}
	if (fd >= 0)
		use_file(pf, fd, &st);
	else
		open_failed(pf, e);
}

struct pflog *pflog_open(const struct conf *c, pflog_sink_fn sink, void *arg,
			 char *err, size_t errsz)
{
	const char *src = conf_str(c, "log_source");
	struct pflog *pf;

	if (src[0] == '\0') {
		snprintf(err, errsz, "log_source is not set");
		return NULL;
	}
	if (strcmp(src, "-") != 0 && src[0] != '/' && strcmp(src, "journal") != 0 &&
	    strncmp(src, "journal:/", 9) != 0) {
		snprintf(err, errsz, "log_source must be an absolute path, \"-\", \"journal\" or "
			 "\"journal:DIRECTORY\"");
		return NULL;
	}
	pf = pflog_new(c, sink, arg, err, errsz);
	if (pf == NULL)
		return NULL;
	pf->has_source = true;
	if (strncmp(src, "journal", 7) == 0) {
		pf->journal = pfjournal_open(pf, src[7] == ':' ? src + 8 : NULL,
					     conf_str(c, "log_position_file"), err, errsz);
		if (pf->journal == NULL) {
			pflog_close(pf);
			return NULL;
		}
		return pf;
	}
	if (strcmp(src, "-") == 0) {
		int fl = fcntl(0, F_GETFL);

		pf->from_stdin = true;
		pf->fd = 0;
		if (fl < 0 || fcntl(0, F_SETFL, fl | O_NONBLOCK) < 0) {
			snprintf(err, errsz, "standard input: %s", strerror(errno));
			pf->fd = -1;
			pflog_close(pf);
			return NULL;
		}
		return pf;
	}
	if ((pf->path = strdup(src)) == NULL ||
	    (pf->pos_path = strdup(conf_str(c, "log_position_file"))) == NULL) {
		snprintf(err, errsz, "out of memory");
		pflog_close(pf);
		return NULL;
	}
	initial_open(pf);
	return pf;
}

void pflog_rewind(struct pflog *pf)
{
	if (pf->from_stdin || pf->fd < 0 || lseek(pf->fd, 0, SEEK_SET) < 0)
		return;
	pf->off = pf->line_off = 0;
	pf->linelen = 0;
	pf->cut = false;
	pf->quiet_until = 0;
	pf->gen++;
}

int pflog_fd(const struct pflog *pf)
{
	if (pf->journal)
		return pfjournal_fd(pf->journal);
	return pf->from_stdin && !pf->eof ? pf->fd : -1;
}

bool pflog_eof(const struct pflog *pf)
{
	return pf->eof;
}

/* At the end of the file: was it truncated (copytruncate)? */
static bool truncated(struct pflog *pf)
{
	struct stat st;

	if (fstat(pf->fd, &st) != 0 || (uint64_t)st.st_size >= pf->off)
		return false;
	log_info("log follower: %s was truncated; reading it from the start", pf->path);
	if (lseek(pf->fd, 0, SEEK_SET) < 0)
		return false;
	use_file(pf, pf->fd, &st);
	return true;
}

/* At the end of the file: does the path name another file now? */
static bool rotated(struct pflog *pf, int64_t now)
{
	struct stat st;
	int fd;

	if (stat(pf->path, &st) != 0 || (st.st_dev == pf->dev && st.st_ino == pf->ino))
		return false;
	fd = open(pf->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		/* the new file is there but not ours to read: say so (the old
		 * one is finished meanwhile, and nothing more comes to it) */
		open_failed(pf, errno);
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (pf->linelen > 0)	/* the old file ended without a newline */
		finish_line(pf, now);
	close(pf->fd);
	use_file(pf, fd, &st);
	log_info("log follower: %s was rotated; following the new file", pf->path);
	return true;
}

static int poll_stdin(struct pflog *pf, int64_t now)
{
	static char buf[65536];
	size_t total = 0;

	while (total < POLL_BUDGET) {
		ssize_t n = read(pf->fd, buf, sizeof(buf));

		if (n > 0) {
			consume(pf, buf, (size_t)n, now);
			total += (size_t)n;
		} else if (n == 0) {
			if (pf->linelen > 0)
				finish_line(pf, now);
			pf->eof = true;
			log_info("log follower: end of standard input");
			return 0;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return 0;
		} else {
			log_err("log follower: reading standard input: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

int pflog_poll(struct pflog *pf, int64_t now)
{
	static char buf[65536];
	size_t total = 0;
	int rc = 0;

	expire_states(pf, now);
	if (!pf->has_source)
		return 0;
	if (pf->journal)
		return pfjournal_poll(pf->journal, now);
	if (pf->from_stdin)
		return pf->eof ? 0 : poll_stdin(pf, now);
	if (pf->fd < 0 && open_at_zero(pf) != 0)
		return 0;
	while (total < POLL_BUDGET) {
		ssize_t n = read(pf->fd, buf, sizeof(buf));

		if (n > 0) {
			consume(pf, buf, (size_t)n, now);
			total += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			static struct log_limit lim;

			log_warn_limited(&lim, "log follower: reading %s: %s", pf->path,
					 strerror(errno));
			rc = -1;
			break;
		}
		if (truncated(pf) || rotated(pf, now))
			continue;
		break;
	}
	if (pf->dirty)
		write_pos(pf);
	return rc;
}

void pflog_close(struct pflog *pf)
{
	if (pf == NULL)
		return;
	if (pf->path && pf->fd >= 0) {
		write_pos(pf);
		close(pf->fd);
	}
	pfjournal_close(pf->journal);	/* writes the journal position */
	while (pf->head)
		state_drop(pf, pf->head);
	pflookup_free(pf->lookup);
	for (size_t i = 0; i < pf->nignore; i++)
		free(pf->ignore[i]);
	free(pf->ignore);
	free(pf->report_sender);
	free(pf->path);
	free(pf->pos_path);
	free(pf);
}
