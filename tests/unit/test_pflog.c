/*
 * test_pflog - the Postfix log follower (lib/collect/pflog.c) and its lookups
 * (lib/collect/pflookup.c), with DNS and the policy table replaced by fakes.
 *
 * The main table runs every recorded log in ../data/postfix-logs/NAME.log
 * through the real follower and compares each result and counter with
 * NAME.expect:
 *   R D POLICY-TYPE POLICY-DOMAIN NSTRINGS NMX success
 *   R D POLICY-TYPE POLICY-DOMAIN NSTRINGS NMX RESULT-TYPE MX IP REASON
 *   C COUNTER N        (counters not listed must be 0)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "conf.h"
#include "log.h"
#include "pflog.h"
#include "pflookup.h"

#define DATA "../data/postfix-logs/"
#define NOW 1795860000	/* 2026-11-28 */

/* ---- fakes ---- */

static const struct {
	const char *name;
	int status;
	const char *rec[3];
} fake_dns[] = {
	{ "_smtp._tls.example.com", PFLOOKUP_FOUND,
	  { "v=spf1 -all", "v=TLSRPTv1; rua=mailto:tlsrpt@example.com" } },
	{ "_smtp._tls.example.org", PFLOOKUP_FOUND, { "v=TLSRPTv1;rua=mailto:tlsrpt@example.org" } },
	{ "_smtp._tls.sub.example.org", PFLOOKUP_FOUND, { "v=TLSRPTv1; rua=mailto:x@sub.example.org" } },
	{ "_smtp._tls.example.net", PFLOOKUP_FOUND,
	  { "v=TLSRPTv1; rua=mailto:a@example.net", "v=TLSRPTv1; rua=mailto:b@example.net" } },
	{ "_smtp._tls.dane.example", PFLOOKUP_FOUND, { "v=TLSRPTv1; rua=https://r.dane.example/" } },
	{ "_smtp._tls.verify.example", PFLOOKUP_FOUND, { "v=TLSRPTv1; rua=mailto:r@verify.example" } },
	{ "_smtp._tls.broken.example", PFLOOKUP_FOUND, { "v=TLSRPTv1; rua=mailto:r@broken.example" } },
	{ "_smtp._tls.spf.example", PFLOOKUP_FOUND, { "v=spf1 -all", "v=TLSRPTv10; rua=mailto:r@spf.example" } },
	{ "_smtp._tls.tempfail.example", PFLOOKUP_TEMPFAIL, { NULL } },
	{ "_smtp._tls.weird.example", PFLOOKUP_FOUND, { "v=TLSRPTv1;\001rua=mailto:a@weird.example\177" } },
};

static const struct {
	const char *key;
	const char *reply;
} fake_map[] = {
	{ "example.com", "secure match=mx1.example.com servername=hostname policy_type=sts "
	  "policy_domain=example.com mx_host_pattern=mx1.example.com "
	  "{ policy_string = version: STSv1 } { policy_string = mode: enforce } "
	  "{ policy_string = mx: mx1.example.com } {policy_string=max_age: 604800}" },
	{ ".example.org", "secure match=.example.org policy_type=sts policy_domain=example.org "
	  "mx_host_pattern=*.example.org { policy_string = version: STSv1 } "
	  "{ policy_string = mode: testing }" },
	{ "dane.example", "dane-only" },
	{ "verify.example", "secure match=.verify.example" },
	{ "broken.example", "secure { policy_string = x" },
};

static int txt_calls, policy_calls;
static char policy_keys[512];

static int fake_txt(void *arg, const char *name, struct pflookup_txt *out)
{
	txt_calls++;
	for (size_t i = 0; i < sizeof(fake_dns) / sizeof(fake_dns[0]); i++) {
		if (strcmp(fake_dns[i].name, name) != 0)
			continue;
		for (size_t j = 0; j < 3 && fake_dns[i].rec[j]; j++) {
			out->rec[out->n] = strdup(fake_dns[i].rec[j]);
			out->len[out->n++] = strlen(fake_dns[i].rec[j]);
		}
		return fake_dns[i].status;
	}
	return PFLOOKUP_NOTFOUND;
}

static int fake_policy(void *arg, const char *key, char **reply)
{
	size_t n = strlen(policy_keys);

	policy_calls++;
	if (n + strlen(key) + 2 < sizeof(policy_keys)) {
		if (n)
			policy_keys[n++] = ' ';
		memcpy(policy_keys + n, key, strlen(key) + 1);
	}
	for (size_t i = 0; i < sizeof(fake_map) / sizeof(fake_map[0]); i++)
		if (strcmp(fake_map[i].key, key) == 0) {
			*reply = strdup(fake_map[i].reply);
			return PFLOOKUP_FOUND;
		}
	return PFLOOKUP_NOTFOUND;
}

/* DNSSEC-validated TLSA records as lib/dane formats them */
static int tlsa_calls;

static int fake_tlsa(void *arg, const char *host, char **text, uint32_t *ttl)
{
	(void)arg;
	tlsa_calls++;
	*ttl = 300;
	if (strcmp(host, "mx.dane.example") == 0)
		*text = strdup("mx.dane.example\n"
			       "3 1 1 ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB\n"
			       "3 1 1 0102\n");
	else if (strcmp(host, "mx3.dane.example") == 0)
		*text = strdup("mx3.dane.example\n3 1 1 0102\n");
	else
		return PFLOOKUP_NOTFOUND;
	return PFLOOKUP_FOUND;
}

static const struct pflookup_ops fake_ops = { .txt = fake_txt, .policy = fake_policy, .tlsa = fake_tlsa };

/* ---- the sink: one canonical line per result ---- */

struct got {
	struct buf out;
	uint64_t counters[STC_MAX];
	int64_t last_when;
	char last_pr[256];
};

/* A view as a NUL-terminated string in 'out'. */
static char *vstr(char *out, size_t outsz, struct result_str v)
{
	size_t n = v.p ? (v.len < outsz - 1 ? v.len : outsz - 1) : 0;

	if (n)
		memcpy(out, v.p, n);
	out[n] = '\0';
	return out;
}

static void put_str(struct buf *b, struct result_str s)
{
	if (s.p == NULL || s.len == 0)
		buf_adds(b, "-");
	else
		buf_add(b, s.p, s.len);
}

static void sink(void *arg, int64_t when, struct result_str d, struct result_str pr,
		 const struct result_policy *p)
{
	struct got *g = arg;

	g->last_when = when;
	vstr(g->last_pr, sizeof(g->last_pr), pr);
	buf_adds(&g->out, "R ");
	put_str(&g->out, d);
	buf_printf(&g->out, " %s ", result_policy_type_name(p->type));
	put_str(&g->out, p->domain);
	buf_printf(&g->out, " %zu %zu", p->nstrings, p->nmx);
	if (!p->failed || p->ndetails == 0) {
		buf_adds(&g->out, " success\n");
		return;
	}
	buf_printf(&g->out, " %s ", result_code_name(p->details[0].code));
	put_str(&g->out, p->details[0].mx_hostname);
	buf_adds(&g->out, " ");
	put_str(&g->out, p->details[0].receiving_ip);
	buf_adds(&g->out, " ");
	put_str(&g->out, p->details[0].reason);
	buf_adds(&g->out, "\n");
}

static void counter(void *arg, int64_t when, enum store_counter c, uint64_t n)
{
	struct got *g = arg;

	g->counters[c] += n;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	buf_init(&b, 1 << 20);
	if (fp == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&b, chunk, n);
	fclose(fp);
	buf_addc(&b, '\0');
	return buf_steal(&b, &n);
}

static char tmpdir[] = "/tmp/test_pflog.XXXXXX";

static struct conf *make_conf(const char *source, const char *pos)
{
	struct conf *c = conf_new();
	char err[256], kv[4300];

	snprintf(kv, sizeof(kv), "log_source=%s", source);
	CHECK(conf_set(c, kv, err, sizeof(err)) == 0, "%s: %s", kv, err);
	snprintf(kv, sizeof(kv), "log_position_file=%s", pos);
	CHECK(conf_set(c, kv, err, sizeof(err)) == 0, "%s: %s", kv, err);
	conf_set(c, "report_sender=tlsrpt-noreply@sender.example", err, sizeof(err));
	conf_set(c, "log_policy_map=fake:map", err, sizeof(err));
	return c;
}

static struct pflog *open_fake(struct conf *c, struct got *g)
{
	char err[256] = "";
	struct pflog *pf = pflog_open(c, sink, g, err, sizeof(err));

	CHECK(pf != NULL, "pflog_open: %s", err);
	if (pf) {
		pflog_set_ops(pf, &fake_ops);
		pflog_set_counter(pf, counter);
	}
	return pf;
}

/* ---- 1. the recorded logs ---- */

static const char *const cases[] = {
	"success", "interleaved", "certificates", "handshake", "dane", "tlsproxy",
	"ignored", "ownreport", "unrecognised", "policy", "truncated",
};

static void test_case(const char *name)
{
	char path[512], pos[512], *expect, *line, *save = NULL;
	struct got g;
	struct buf want;
	struct conf *c;
	struct pflog *pf;
	const struct pflog_stats *st;
	uint64_t want_c[16] = { 0 };
	static const char *const cnames[] = {
		"lines", "sessions", "failures", "unrecognised", "own_reports",
		"no_tlsrpt", "cut", "config_alerts",
	};

	memset(&g, 0, sizeof(g));
	buf_init(&g.out, 1 << 20);
	buf_init(&want, 1 << 20);
	snprintf(path, sizeof(path), DATA "%s.expect", name);
	expect = slurp(path);
	CHECK(expect != NULL, "%s: cannot read", path);
	if (expect == NULL)
		return;
	for (line = strtok_r(expect, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == 'R') {
			buf_adds(&want, line);
			buf_addc(&want, '\n');
		} else if (line[0] == 'C') {
			char cn[32];
			unsigned long long v;
			size_t i;

			CHECK(sscanf(line, "C %31s %llu", cn, &v) == 2, "%s: bad line %s", name, line);
			for (i = 0; i < sizeof(cnames) / sizeof(cnames[0]); i++)
				if (strcmp(cn, cnames[i]) == 0)
					want_c[i] = v;
			CHECK(i <= sizeof(cnames) / sizeof(cnames[0]), "%s: counter %s", name, cn);
		}
	}
	free(expect);

	snprintf(path, sizeof(path), "%s/" DATA "%s.log", ".", name);
	{
		char abs[4096];

		CHECK(realpath(path, abs) != NULL, "%s: no such file", path);
		snprintf(pos, sizeof(pos), "%s/%s.pos", tmpdir, name);
		c = make_conf(abs, pos);
	}
	txt_calls = policy_calls = 0;
	pf = open_fake(c, &g);
	if (pf == NULL) {
		conf_free(c);
		return;
	}
	pflog_rewind(pf);
	CHECK(pflog_poll(pf, NOW) == 0, "%s: pflog_poll failed", name);
	st = pflog_stats(pf);

	CHECK(strcmp(g.out.data ? g.out.data : "", want.data ? want.data : "") == 0,
	      "%s: results\ngot:\n%swant:\n%s", name, g.out.data ? g.out.data : "",
	      want.data ? want.data : "");
	CHECK(st->lines == want_c[0], "%s: lines: got %llu, want %llu", name,
	      (unsigned long long)st->lines, (unsigned long long)want_c[0]);
	CHECK(st->sessions == want_c[1], "%s: sessions: got %llu, want %llu", name,
	      (unsigned long long)st->sessions, (unsigned long long)want_c[1]);
	CHECK(st->failures == want_c[2], "%s: failures: got %llu, want %llu", name,
	      (unsigned long long)st->failures, (unsigned long long)want_c[2]);
	CHECK(st->unrecognised == want_c[3], "%s: unrecognised: got %llu, want %llu", name,
	      (unsigned long long)st->unrecognised, (unsigned long long)want_c[3]);
	CHECK(st->own_reports == want_c[4], "%s: own_reports: got %llu, want %llu", name,
	      (unsigned long long)st->own_reports, (unsigned long long)want_c[4]);
	CHECK(st->no_tlsrpt == want_c[5], "%s: no_tlsrpt: got %llu, want %llu", name,
	      (unsigned long long)st->no_tlsrpt, (unsigned long long)want_c[5]);
	CHECK(st->cut == want_c[6], "%s: cut: got %llu, want %llu", name,
	      (unsigned long long)st->cut, (unsigned long long)want_c[6]);
	CHECK(st->config_alerts == want_c[7], "%s: config_alerts: got %llu, want %llu", name,
	      (unsigned long long)st->config_alerts, (unsigned long long)want_c[7]);
	/* the counter callback saw the same numbers */
	CHECK(g.counters[STC_LOG_LINES] == st->lines, "%s: STC_LOG_LINES %llu", name,
	      (unsigned long long)g.counters[STC_LOG_LINES]);
	CHECK(g.counters[STC_LOG_SESSIONS] == st->sessions, "%s: STC_LOG_SESSIONS %llu", name,
	      (unsigned long long)g.counters[STC_LOG_SESSIONS]);
	CHECK(g.counters[STC_LOG_UNRECOGNISED] == st->unrecognised, "%s: STC_LOG_UNRECOGNISED", name);
	CHECK(g.counters[STC_OWN_REPORTS] == st->own_reports, "%s: STC_OWN_REPORTS", name);
	CHECK(g.counters[STC_NO_TLSRPT] == st->no_tlsrpt, "%s: STC_NO_TLSRPT", name);
	CHECK(g.counters[STC_LOG_CUT] == st->cut, "%s: STC_LOG_CUT", name);
	if (st->sessions)
		CHECK_INT(g.last_when, NOW);
	pflog_close(pf);
	conf_free(c);
	buf_free(&g.out);
	buf_free(&want);
}

/* ---- 2. the line parser ---- */

static void test_parse(void)
{
	static const struct {
		const char *line;
		enum pflog_kind kind;
		const char *tag;
		long pid;
		const char *host, *addr;
		int code;
		const char *reason;
	} t[] = {
		{ "Nov 28 10:00:01 mail postfix/smtp[2001]: Trusted TLS connection established to mx1.example.com[192.0.2.10]:25: TLSv1.3",
		  PFLOG_ESTABLISHED, "postfix/smtp", 2001, "mx1.example.com", "192.0.2.10", 0, NULL },
		{ "Nov  8 10:00:01 mail postfix/smtp[7]: Verified TLS connection reused to mx[1.2.3.4]:25: x",
		  PFLOG_REUSED, "postfix/smtp", 7, NULL, NULL, 0, NULL },
		{ "2026-11-28T10:00:04.123456+00:00 h postfix/smtp[3]: SSL_connect error to a.b[::1]:25: -1",
		  PFLOG_HANDSHAKE, "postfix/smtp", 3, "a.b", "::1", RESULT_VALIDATION_FAILURE, "tls-handshake-failure" },
		{ "<22>1 2026-11-28T10:00:06.003Z mail postfix/tlsproxy 44 - [x y=\"a\\]b\"] CA certificate verification failed for m[1.1.1.1]:25: num=20:unable to get local issuer certificate",
		  PFLOG_DETAIL, "postfix/tlsproxy", 44, "m", "1.1.1.1", RESULT_VALIDATION_FAILURE, "unable_to_get_local_issuer_certificate" },
		{ "Nov 28 10:00:01 mail postfix/smtp[1]: server certificate verification failed for m[1.1.1.1]:25: num=10:certificate has expired",
		  PFLOG_DETAIL, "postfix/smtp", 1, "m", "1.1.1.1", RESULT_CERTIFICATE_EXPIRED, NULL },
		{ "Nov 28 10:00:01 mail postfix/smtp[1]: server certificate verification failed for m[1.1.1.1]:25: num=21:unable to verify the first certificate",
		  PFLOG_DETAIL, "postfix/smtp", 1, "m", "1.1.1.1", RESULT_CERTIFICATE_NOT_TRUSTED, NULL },
		{ "Nov 28 10:00:01 mail postfix/smtp[1]: 4N1ZZ: TLS is required, but was not offered by host m[1.1.1.1]",
		  PFLOG_STARTTLS, "postfix/smtp", 1, "m", "1.1.1.1", RESULT_STARTTLS_NOT_SUPPORTED, NULL },
		{ "Nov 28 10:00:01 mail postfix/smtp[1]: Server certificate not verified",
		  PFLOG_NOT_VERIFIED, "postfix/smtp", 1, NULL, NULL, 0, NULL },
		{ "Nov 28 10:00:01 mail postfix/smtp[1]: warning: TLS policy lookup for d.example/mx.d.example: non DNSSEC destination",
		  PFLOG_POLICY_FAIL, "postfix/smtp", 1, "mx.d.example", NULL, RESULT_DANE_REQUIRED, NULL },
		{ "Nov 28 10:00:01 mail postfix/qmgr[9]: 4N1ZZ: from=<a@b>, size=1, nrcpt=1 (queue active)",
		  PFLOG_FROM, "postfix/qmgr", 9, NULL, NULL, 0, NULL },
		{ "Nov 28 10:00:01 mail postfix/qmgr[9]: Trusted TLS connection established to m[1.1.1.1]:25: x",
		  PFLOG_NONE, "postfix/qmgr", 9, NULL, NULL, 0, NULL },
		{ "Nov 28 10:00:01 mail postfix/smtpd[9]: Trusted TLS connection established to m[1.1.1.1]:25: x",
		  PFLOG_NONE, "postfix/smtpd", 9, NULL, NULL, 0, NULL },
		{ "Nov 28 10:00:01 mail postfix/smtp[0]: Trusted TLS connection established to m[1.1.1.1]:25: x",
		  PFLOG_NONE, NULL, 0, NULL, NULL, 0, NULL },
		{ "Nov 28 10:00:01 mail postfix/smtp[99999999999]: Trusted TLS connection established to m[1.1.1.1]:25",
		  PFLOG_NONE, NULL, 0, NULL, NULL, 0, NULL },
		{ "", PFLOG_NONE, NULL, 0, NULL, NULL, 0, NULL },
		{ "[1]:", PFLOG_NONE, NULL, 0, NULL, NULL, 0, NULL },
		{ "<13>1 - - - -", PFLOG_NONE, NULL, 0, NULL, NULL, 0, NULL },
		{ "Nov 28 10:00:01 mail postfix/smtp[1]: Verified TLS connection established to [1.1.1.1]:25",
		  PFLOG_UNRECOGNISED, "postfix/smtp", 1, NULL, NULL, 0, NULL },
		{ "Nov 28 10:00:01 mail postfix/smtp[1]: Verified TLS connection established to m[1.1.1.1",
		  PFLOG_UNRECOGNISED, "postfix/smtp", 1, NULL, NULL, 0, NULL },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pflog_event ev;
		enum pflog_kind k = pflog_parse(t[i].line, strlen(t[i].line), &ev);
		char tag[64] = "", host[64] = "", addr[64] = "";

		snprintf(tag, sizeof(tag), "%.*s", (int)ev.tag.len, ev.tag.p ? ev.tag.p : "");
		snprintf(host, sizeof(host), "%.*s", (int)ev.host.len, ev.host.p ? ev.host.p : "");
		snprintf(addr, sizeof(addr), "%.*s", (int)ev.addr.len, ev.addr.p ? ev.addr.p : "");
		CHECK(k == t[i].kind, "parse %zu: kind: got %d, want %d", i, k, t[i].kind);
		if (t[i].tag) {
			CHECK(strcmp(tag, t[i].tag) == 0, "parse %zu: tag: got \"%s\", want \"%s\"", i, tag, t[i].tag);
			CHECK(ev.pid == t[i].pid, "parse %zu: pid: got %ld, want %ld", i, ev.pid, t[i].pid);
		}
		if (t[i].host)
			CHECK(strcmp(host, t[i].host) == 0, "parse %zu: host: got \"%s\", want \"%s\"", i, host, t[i].host);
		if (t[i].addr)
			CHECK(strcmp(addr, t[i].addr) == 0, "parse %zu: addr: got \"%s\", want \"%s\"", i, addr, t[i].addr);
		CHECK(ev.code == t[i].code, "parse %zu: code: got %d, want %d", i, ev.code, t[i].code);
		CHECK((ev.reason == NULL && t[i].reason == NULL) ||
		      (ev.reason && t[i].reason && strcmp(ev.reason, t[i].reason) == 0),
		      "parse %zu: reason: got \"%s\", want \"%s\"", i,
		      ev.reason ? ev.reason : "(null)", t[i].reason ? t[i].reason : "(null)");
	}

	/* a delivery line with every field */
	{
		const char *l = "Nov 28 10:00:01 mail postfix/smtp[1]: 4N1ZZ0001: to=<a@Example.COM>, "
			"relay=mx[1.1.1.1]:25, delay=1, delays=0/0/1/0, dsn=4.7.5, status=deferred "
			"(Server certificate not verified)";
		struct pflog_event ev;

		CHECK_INT(pflog_parse(l, strlen(l), &ev), PFLOG_DELIVERY);
		CHECK(ev.rcpt.len == 13 && memcmp(ev.rcpt.p, "a@Example.COM", 13) == 0, "rcpt");
		CHECK(ev.qid.len == 9 && memcmp(ev.qid.p, "4N1ZZ0001", 9) == 0, "qid");
		CHECK(ev.status.len == 8 && memcmp(ev.status.p, "deferred", 8) == 0, "status");
		CHECK_INT(ev.final, PFLOG_NOT_VERIFIED);
	}
}

/* ---- 3. the policy table reply parser ---- */

static void test_reply(void)
{
	static const struct {
		const char *in;
		int rc, type;
		const char *level, *pdomain, *first_string, *last_mx;
		size_t nstrings, nmx;
	} t[] = {
		{ "secure match=a policy_type=sts policy_domain=d.example mx_host_pattern=*.d.example "
		  "{ policy_string = version: STSv1 }{policy_string=mode: enforce}",
		  0, POLICY_STS, "secure", "d.example", "version: STSv1", "*.d.example", 2, 1 },
		{ "  may  ", 0, 0, "may", NULL, NULL, NULL, 0, 0 },
		{ "secure policy_type=no-policy-found", 0, POLICY_NONE, "secure", NULL, NULL, NULL, 0, 0 },
		{ "secure { policy_string = x", -1, 0, NULL, NULL, NULL, NULL, 0, 0 },
		{ "secure {  = x }", -1, 0, NULL, NULL, NULL, NULL, 0, 0 },
		{ "secure novalue", -1, 0, NULL, NULL, NULL, NULL, 0, 0 },
		{ "secure =x", -1, 0, NULL, NULL, NULL, NULL, 0, 0 },
		{ "", -1, 0, NULL, NULL, NULL, NULL, 0, 0 },
		{ "secure { policy_string = }", 0, 0, "secure", NULL, "", NULL, 1, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pflookup_reply r;
		int rc = pflookup_parse_reply(t[i].in, strlen(t[i].in), &r);
		char buf[128];

		CHECK(rc == t[i].rc, "reply %zu: rc: got %d, want %d", i, rc, t[i].rc);
		if (rc != 0)
			continue;
		CHECK(r.type == t[i].type, "reply %zu: type: got %d, want %d", i, r.type, t[i].type);
		vstr(buf, sizeof(buf), r.level);
		CHECK_STR(buf, t[i].level);
		CHECK(r.nstrings == t[i].nstrings, "reply %zu: nstrings: got %zu, want %zu", i,
		      r.nstrings, t[i].nstrings);
		CHECK(r.nmx == t[i].nmx, "reply %zu: nmx: got %zu, want %zu", i, r.nmx, t[i].nmx);
		if (t[i].pdomain) {
			vstr(buf, sizeof(buf), r.policy_domain);
			CHECK_STR(buf, t[i].pdomain);
		}
		if (t[i].first_string && r.nstrings) {
			vstr(buf, sizeof(buf), r.strings[0]);
			CHECK_STR(buf, t[i].first_string);
		}
		if (t[i].last_mx && r.nmx) {
			vstr(buf, sizeof(buf), r.mx[r.nmx - 1]);
			CHECK_STR(buf, t[i].last_mx);
		}
	}
	/* more than PFLOOKUP_MAX_STRINGS values are flagged, not stored */
	{
		struct buf b;
		struct pflookup_reply r;

		buf_init(&b, 1 << 16);
		buf_adds(&b, "secure");
		for (int i = 0; i < PFLOOKUP_MAX_STRINGS + 3; i++)
			buf_adds(&b, " mx_host_pattern=x");
		CHECK_INT(pflookup_parse_reply(b.data, b.len, &r), 0);
		CHECK_INT(r.nmx, PFLOOKUP_MAX_STRINGS);
		CHECK(r.too_many, "too_many not set");
		buf_free(&b);
	}
}

static void test_domain(void)
{
	static const struct {
		const char *in, *want;
	} t[] = {
		{ "Example.COM", "example.com" }, { "example.org.", "example.org" },
		{ "a-b.c_d.example", "a-b.c_d.example" }, { "", NULL }, { ".", NULL },
		{ "a..b", NULL }, { ".a", NULL }, { "-a.example", NULL }, { "[1.2.3.4]", NULL },
		{ "b\xc3\xbc" "cher.example", NULL }, { "a b", NULL },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", NULL },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char out[256];
		size_t n = pflookup_domain(t[i].in, strlen(t[i].in), out, sizeof(out));

		CHECK_STR(n ? out : NULL, t[i].want);
	}
}

/* ---- 4. caches: one lookup per domain and TTL, parents in Postfix's order ---- */

static void test_cache(void)
{
	struct conf *c = conf_new();
	char err[256];
	struct pflookup *l;
	struct result_str rec;
	struct result_policy p;

	conf_set(c, "dns_cache_size=16", err, sizeof(err));
	conf_set(c, "dns_cache_ttl=100", err, sizeof(err));
	conf_set(c, "log_policy_map=fake:map", err, sizeof(err));
	l = pflookup_new(c, err, sizeof(err));
	pflookup_set_ops(l, &fake_ops);
	txt_calls = policy_calls = 0;
	policy_keys[0] = '\0';

	CHECK(pflookup_tlsrpt(l, "example.com", 1000, &rec), "example.com has a record");
	CHECK(rec.len == 41 && memcmp(rec.p, "v=TLSRPTv1; rua=mailto:tlsrpt@example.com", 40) == 0,
	      "record: got %.*s", (int)rec.len, rec.p);
	CHECK(pflookup_tlsrpt(l, "example.com", 1099, &rec), "cached");
	CHECK_INT(txt_calls, 1);
	CHECK(pflookup_tlsrpt(l, "example.com", 1100, &rec), "expired, looked up again");
	CHECK_INT(txt_calls, 2);
	CHECK(!pflookup_tlsrpt(l, "nodns.example", 1000, &rec), "nodns.example has none");
	CHECK(!pflookup_tlsrpt(l, "nodns.example", 1099, &rec), "negative answer cached");
	CHECK_INT(txt_calls, 3);
	CHECK(!pflookup_tlsrpt(l, "tempfail.example", 1000, &rec), "tempfail");
	CHECK(!pflookup_tlsrpt(l, "tempfail.example", 1059, &rec), "tempfail cached 60 s");
	CHECK_INT(txt_calls, 4);
	CHECK(!pflookup_tlsrpt(l, "tempfail.example", 1060, &rec), "tempfail retried");
	CHECK_INT(txt_calls, 5);
	/* a full cache evicts the least recently used entry */
	for (int i = 0; i < 20; i++) {
		char d[32];

		snprintf(d, sizeof(d), "d%d.example", i);
		pflookup_tlsrpt(l, d, 1100, &rec);
	}
	CHECK_INT(txt_calls, 25);
	pflookup_tlsrpt(l, "d19.example", 1100, &rec);
	CHECK_INT(txt_calls, 25);
	pflookup_tlsrpt(l, "d0.example", 1100, &rec);
	CHECK_INT(txt_calls, 26);

	pflookup_policy(l, "a.sub.example.org", 1000, &p);
	CHECK_STR(policy_keys, "a.sub.example.org .sub.example.org .example.org");
	CHECK_INT(p.type, POLICY_STS);
	CHECK(p.domain.len == 11 && memcmp(p.domain.p, "example.org", 11) == 0, "policy domain");
	pflookup_policy(l, "a.sub.example.org", 1050, &p);
	CHECK_INT(policy_calls, 3);
	policy_keys[0] = '\0';
	pflookup_policy(l, "nothing.test", 1000, &p);
	CHECK_STR(policy_keys, "nothing.test .test");
	CHECK_INT(p.type, POLICY_NONE);
	CHECK(p.domain.len == 12 && memcmp(p.domain.p, "nothing.test", 12) == 0, "default domain");
	pflookup_free(l);

	/* no policy map: never asked */
	conf_set(c, "log_policy_map=", err, sizeof(err));
	l = pflookup_new(c, err, sizeof(err));
	pflookup_set_ops(l, &fake_ops);
	policy_calls = 0;
	pflookup_policy(l, "example.com", 1000, &p);
	CHECK_INT(policy_calls, 0);
	CHECK_INT(p.type, POLICY_NONE);
	pflookup_free(l);
	conf_free(c);
}

/* ---- 5. the follower: partial lines, rotation, truncation, restart ---- */

#define L_EST "Nov 28 10:00:01 mail postfix/smtp[%d]: Trusted TLS connection " \
	"established to mx1.example.com[192.0.2.10]:25: TLSv1.3 with cipher X (256/256 bits)\n"
#define L_DLV "Nov 28 10:00:01 mail postfix/smtp[%d]: 4N1Q%05d: to=<u@example.com>, " \
	"relay=mx1.example.com[192.0.2.10]:25, delay=1, delays=0/0/1/0, dsn=2.0.0, status=sent (250 OK)\n"

#define append(path, fmt, ...) do {					\
	FILE *fp_ = fopen(path, "a");					\
	if (fp_) {							\
		fprintf(fp_, fmt, __VA_ARGS__);				\
		fclose(fp_);						\
	}								\
} while (0)

static void append_raw(const char *path, const char *s)
{
	FILE *fp = fopen(path, "a");

	if (fp == NULL)
		return;
	fputs(s, fp);
	fclose(fp);
}

static void got_reset(struct got *g)
{
	buf_free(&g->out);
	memset(g, 0, sizeof(*g));
	buf_init(&g->out, 1 << 16);
}

static void test_follow(void)
{
	char log[512], old[512], pos[512];
	struct conf *c;
	struct got g;
	struct pflog *pf;

	snprintf(log, sizeof(log), "%s/mail.log", tmpdir);
	snprintf(old, sizeof(old), "%s/mail.log.1", tmpdir);
	snprintf(pos, sizeof(pos), "%s/follow.pos", tmpdir);
	unlink(log);
	unlink(pos);
	memset(&g, 0, sizeof(g));
	buf_init(&g.out, 1 << 16);
	c = make_conf(log, pos);

	/* the file does not exist yet: it is read from 0 once it appears */
	pf = open_fake(c, &g);
	CHECK_INT(pflog_fd(pf), -1);
	CHECK_INT(pflog_poll(pf, NOW), 0);
	append(log, L_EST, 1);
	append(log, L_DLV, 1, 1);
	pflog_poll(pf, NOW);
	CHECK_INT(pflog_stats(pf)->sessions, 1);

	/* a line without its newline waits */
	append(log, L_EST, 2);
	append_raw(log, "Nov 28 10:00:01 mail postfix/smtp[2]: 4N1Q00002: to=<u@example.com>, relay=mx1.");
	pflog_poll(pf, NOW);
	CHECK_INT(pflog_stats(pf)->sessions, 1);
	append_raw(log, "example.com[192.0.2.10]:25, delay=1, dsn=2.0.0, status=sent (250 OK)\n");
	pflog_poll(pf, NOW);
	CHECK_INT(pflog_stats(pf)->sessions, 2);

	/* rotation: the rest of the old file first, then the new one */
	append(log, L_EST, 3);
	CHECK(rename(log, old) == 0, "rename");
	append(old, L_DLV, 3, 3);
	append(log, L_EST, 4);
	append(log, L_DLV, 4, 4);
	pflog_poll(pf, NOW);
	CHECK_INT(pflog_stats(pf)->sessions, 4);

	/* truncation (copytruncate) */
	CHECK(truncate(log, 0) == 0, "truncate");
	pflog_poll(pf, NOW);
	append(log, L_EST, 5);
	append(log, L_DLV, 5, 5);
	pflog_poll(pf, NOW);
	CHECK_INT(pflog_stats(pf)->sessions, 5);

	/* restart between a TLS line and its delivery line: the session is
	 * rebuilt from the replay offset, nothing before is counted again */
	append(log, L_EST, 6);
	append(log, L_EST, 7);
	append(log, L_DLV, 7, 7);
	pflog_poll(pf, NOW);
	CHECK_INT(pflog_stats(pf)->sessions, 6);
	pflog_close(pf);

	got_reset(&g);
	pf = open_fake(c, &g);
	append(log, L_DLV, 6, 6);
	append(log, L_EST, 8);
	append(log, L_DLV, 8, 8);
	pflog_poll(pf, NOW);
	CHECK_INT(pflog_stats(pf)->sessions, 2);	/* 6 and 8, not 7 again */
	CHECK_INT(pflog_stats(pf)->lines, 3);
	pflog_close(pf);

	/* restart after rotation: the rest of mail.log.1 is read first */
	got_reset(&g);
	append(log, L_EST, 9);
	CHECK(rename(log, old) == 0, "rename");
	append(old, L_DLV, 9, 9);
	append(log, L_EST, 10);
	append(log, L_DLV, 10, 10);
	pf = open_fake(c, &g);
	pflog_poll(pf, NOW);
	CHECK_INT(pflog_stats(pf)->sessions, 2);
	CHECK_INT(pflog_stats(pf)->lines, 4);
	pflog_close(pf);

	/* no position file: start at the end */
	unlink(pos);
	got_reset(&g);
	pf = open_fake(c, &g);
	append(log, L_EST, 11);
	append(log, L_DLV, 11, 11);
	pflog_poll(pf, NOW);
	CHECK_INT(pflog_stats(pf)->sessions, 1);
	CHECK_INT(pflog_stats(pf)->lines, 2);
	pflog_close(pf);

	/* a broken position file: from the end as well */
	{
		FILE *fp = fopen(pos, "w");

		if (fp) {
			fputs("pflog1 1 2 9 3\n", fp);
			fclose(fp);
		}
	}
	got_reset(&g);
	pf = open_fake(c, &g);
	pflog_poll(pf, NOW);
	CHECK_INT(pflog_stats(pf)->lines, 0);
	pflog_close(pf);
	buf_free(&g.out);
	conf_free(c);
	unlink(log);
	unlink(old);
	unlink(pos);
}

/* ---- 6. bounds: process table size and state lifetime ---- */

static void test_bounds(void)
{
	struct conf *c = conf_new();
	struct got g;
	char err[256], line[512];
	struct pflog *pf;

	memset(&g, 0, sizeof(g));
	buf_init(&g.out, 1 << 16);
	pf = pflog_new(c, sink, &g, err, sizeof(err));
	pflog_set_ops(pf, &fake_ops);
	for (int pid = 1; pid <= PFLOG_MAX_PIDS + 10; pid++) {
		int n = snprintf(line, sizeof(line), L_EST, pid);

		pflog_feed(pf, line, (size_t)n - 1, NOW);
	}
	CHECK_INT(pflog_stats(pf)->dropped_states, 10);
	/* pid 1..10 were dropped: their deliveries count nothing */
	for (int pid = 1; pid <= 11; pid++) {
		int n = snprintf(line, sizeof(line), L_DLV, pid, pid);

		pflog_feed(pf, line, (size_t)n - 1, NOW);
	}
	CHECK_INT(pflog_stats(pf)->sessions, 1);
	/* idle states expire */
	{
		int n = snprintf(line, sizeof(line), L_DLV, 12, 12);

		pflog_feed(pf, line, (size_t)n - 1, NOW + PFLOG_STATE_TTL + 1);
	}
	CHECK_INT(pflog_stats(pf)->sessions, 1);
	CHECK_INT(pflog_stats(pf)->dropped_states, PFLOG_MAX_PIDS + 10 - 1);
	pflog_close(pf);

	/* pflog_open without a source is an error */
	CHECK(pflog_open(c, sink, &g, err, sizeof(err)) == NULL, "empty log_source accepted");
	CHECK_STR(err, "log_source is not set");
	conf_set(c, "log_source=relative/path", err, sizeof(err));
	CHECK(pflog_open(c, sink, &g, err, sizeof(err)) == NULL, "relative log_source accepted");
	buf_free(&g.out);
	conf_free(c);
}

int main(void)
{
	log_init("test_pflog", LOG_TO_STDERR, 0);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = tlsa_calls, want;

		test_case(cases[i]);
		/* one TLSA lookup per MX host of a session that shows DANE, cached
		 * for the rest: dane.log mx.example.org, mx.dane.example, mx2,
		 * mx3; certificates.log and tlsproxy.log one DANE failure each */
		want = strcmp(cases[i], "dane") == 0 ? 4 :
		       strcmp(cases[i], "certificates") == 0 || strcmp(cases[i], "tlsproxy") == 0;
		CHECK(tlsa_calls - before == want, "%s: TLSA lookups: got %d, want %d", cases[i],
		      tlsa_calls - before, want);
	}
	test_parse();
	test_reply();
	test_domain();
	test_cache();
	test_follow();
	test_bounds();
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	return check_done("test_pflog");
}
