/*
 * test_mail - mail_build(): message structure, headers, folding, base64
 * round trip, and refusal of every value that could inject a header;
 * the syntax checks of mail.h; mail_send() with delivery off.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "buf.h"
#include "check.h"
#include "conf.h"
#include "deliver.h"
#include "mail.h"

#define NOW 1747970262	/* Fri, 23 May 2025 03:17:42 +0000 */

static struct conf *make_conf(const char *const *set)
{
	struct conf *c = conf_new();
	char err[256];

	if (!c)
		abort();
	for (; *set; set++)
		if (conf_set(c, *set, err, sizeof(err)) < 0) {
			fprintf(stderr, "conf_set %s: %s\n", *set, err);
			abort();
		}
	return c;
}

static unsigned char gz[1000];

static struct report_file base_report(void)
{
	struct report_file r = {
		.policy_domain = "example.com",
		.submitter = "sender.example",
		.organization = "Sender \x01 Example",
		.contact = "tlsrpt@sender.example",
		.report_id = "20250522.example.com@sender.example",
		.filename = "sender.example!example.com!1747872000!1747958399.json.gz",
		.begin = 1747872000,
		.end = 1747958399,
		.successes = 1234,
		.failures = 5,
		.gz = gz,
		.gzlen = sizeof(gz),
	};
	return r;
}

/* The unfolded value of header 'name' in the header block of 'msg' into
 * 'out'; number of occurrences returned. */
static int header(const char *msg, const char *name, char *out, size_t outsz)
{
	const char *end = strstr(msg, "\r\n\r\n"), *p = msg;
	size_t nl = strlen(name);
	int count = 0;

	out[0] = '\0';
	while (p && p < end) {
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			size_t o = 0;

			count++;
			while (*v == ' ')
				v++;
			for (; v < end + 2; v++) {
				if (v[0] == '\r' && v[1] == '\n') {
					if (v[2] != ' ' && v[2] != '\t')
						break;
					v++;
					continue;
				}
				if (o + 1 < outsz)
					out[o++] = *v;
			}
			out[o] = '\0';
		}
		p = strstr(p, "\r\n");
		if (p)
			p += 2;
	}
	return count;
}

static void test_checks(void)
{
	static const struct {
		int kind;	/* 0 domain, 1 addr, 2 report-id, 3 filename */
		const char *in;
		int want;
	} cases[] = {
		{ 0, "example.com", 0 },
		{ 0, "xn--bcher-kva.example", 0 },
		{ 0, "_mta-sts.example.com", 0 },
		{ 0, "localhost", 0 },
		{ 0, "", -1 },
		{ 0, "example.com.", -1 },
		{ 0, "exa mple.com", -1 },
		{ 0, "example.com\r\nBcc: a@b", -1 },
		{ 0, "-example.com", -1 },
		{ 0, "example-.com", -1 },
		{ 0, "a..b", -1 },
		{ 0, "b\xc3\xbc" "cher.example", -1 },
		{ 0, "exa\x7fmple.com", -1 },
		{ 1, "reports@example.com", 0 },
		{ 1, "tls.rpt+x@example.com", 0 },
		{ 1, "a@b@example.com", -1 },
		{ 1, "<a@example.com>", -1 },
		{ 1, "a b@example.com", -1 },
		{ 1, "\"a b\"@example.com", -1 },
		{ 1, ".a@example.com", -1 },
		{ 1, "a..b@example.com", -1 },
		{ 1, "a@example.com\r\nBcc: x@y", -1 },
		{ 1, "a@example.com\n", -1 },
		{ 1, "@example.com", -1 },
		{ 1, "a@", -1 },
		{ 2, "20250522.example.com@sender.example", 0 },
		{ 2, "735ff.e317+bf22029@mailexample.net", 0 },
		{ 2, "a@b>", -1 },
		{ 2, "a:b@c", -1 },
		{ 2, "a b@c", -1 },
		{ 2, "abc", -1 },
		{ 2, "a@b\r\nX: y", -1 },
		{ 3, "sender.example!example.com!1!2.json.gz", 0 },
		{ 3, "s!d!1!2!001.json.gz", 0 },
		{ 3, ".json.gz", -1 },
		{ 3, "a.json", -1 },
		{ 3, "a\".json.gz", -1 },
		{ 3, "a b.json.gz", -1 },
		{ 3, "a\r\n.json.gz", -1 },
		{ 3, "a/b.json.gz", -1 },
	};
	char err[512], big[400];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got;

		err[0] = '\0';
		switch (cases[i].kind) {
		case 0: got = mail_check_domain(cases[i].in, "domain", err, sizeof(err)); break;
		case 1: got = mail_check_addr(cases[i].in, "addr", err, sizeof(err)); break;
		case 2: got = mail_check_report_id(cases[i].in, err, sizeof(err)); break;
		default: got = mail_check_filename(cases[i].in, err, sizeof(err)); break;
		}
		CHECK(got == cases[i].want, "check kind %d \"%s\": got %d, want %d (%s)",
		      cases[i].kind, cases[i].in, got, cases[i].want, err);
		if (got < 0)
			CHECK(strstr(err, "refused") && !strchr(err, '\r') && !strchr(err, '\n'),
			      "error for \"%s\" not a one-line refusal: %s", cases[i].in, err);
	}
	/* length bounds */
	memset(big, 'a', sizeof(big));
	big[63] = '\0';
	CHECK_INT(mail_check_domain(big, "d", err, sizeof(err)), 0);
	big[63] = 'a';
	big[64] = '\0';
	CHECK_INT(mail_check_domain(big, "d", err, sizeof(err)), -1);
	big[64] = 'a';
	for (i = 0; i < 300; i += 50)
		big[i] = '.';
	big[300] = '\0';
	CHECK_INT(mail_check_domain(big + 1, "d", err, sizeof(err)), -1);	/* 299 > 253 */
	big[65] = '\0';
	big[64] = '@';
	CHECK_INT(mail_check_addr(big + 51, "a", err, sizeof(err)), -1);	/* "aaa.@..." */
	memset(big, 'a', 65);
	big[65] = '@';
	big[66] = 'b';
	big[67] = '\0';
	CHECK_INT(mail_check_addr(big, "a", err, sizeof(err)), -1);	/* local part 65 */
	CHECK_INT(mail_check_addr(big + 1, "a", err, sizeof(err)), 0);	/* local part 64 */
}

static void test_addr_of(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "tlsrpt@sender.example", "tlsrpt@sender.example" },
		{ "mailto:tlsrpt@sender.example", "tlsrpt@sender.example" },
		{ "TLS reporting <tlsrpt@sender.example>", "tlsrpt@sender.example" },
		{ "<tlsrpt@sender.example>", "tlsrpt@sender.example" },
		{ "  x <a@b.example>  ", "a@b.example" },
		{ "x <a@b.example> trailing", NULL },
		{ "x <a@b.example", NULL },
		{ "x\t<a@b.example>", NULL },
		{ "   ", NULL },
		{ "", NULL },
		{ "mailto:", NULL },
		{ "<>", NULL },
	};
	char out[300], err[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = mail_addr_of(cases[i].in, "from", out, sizeof(out), err, sizeof(err));

		if (cases[i].want) {
			CHECK(rc == 0, "addr_of \"%s\": got error %s", cases[i].in, err);
			if (rc == 0)
				CHECK_STR(out, cases[i].want);
		} else {
			CHECK(rc == -1, "addr_of \"%s\": got %s, want error", cases[i].in, out);
		}
	}
}

static void test_envelope(void)
{
	static const struct {
		const char *set[3];
		const char *want;
	} cases[] = {
		{ { "contact_info=c@sender.example", NULL }, "c@sender.example" },
		{ { "contact_info=c@sender.example", "from_address=F <f@sender.example>", NULL },
		  "f@sender.example" },
		{ { "from_address=f@sender.example", "envelope_sender=bounces@sender.example", NULL },
		  "bounces@sender.example" },
		{ { NULL }, NULL },
	};
	char out[300], err[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *c = make_conf(cases[i].set);
		int rc = mail_envelope_sender(c, out, sizeof(out), err, sizeof(err));

		if (cases[i].want) {
			CHECK(rc == 0, "envelope case %zu: error %s", i, err);
			if (rc == 0)
				CHECK_STR(out, cases[i].want);
		} else {
			CHECK(rc == -1 && strstr(err, "contact_info"),
			      "envelope case %zu: got %d (%s), want error naming contact_info",
			      i, rc, err);
		}
		conf_free(c);
	}
}

/* The whole message: headers, structure, base64 round trip. */
static void test_structure(void)
{
	static const char *const set[] = { "dkim_sign=no",
		"from_address=TLS reporting <tlsrpt-noreply@sender.example>",
		"contact_info=tlsrpt@sender.example", NULL };
	struct conf *c = make_conf(set);
	struct report_file r = base_report();
	struct buf out;
	char err[512], v[2048], boundary[128], want[1024];
	const char *p, *q, *end;
	size_t i, lines = 0, decoded = 0, b64lines = 0;
	unsigned char dec[2000];
	int count;

	for (i = 0; i < sizeof(gz); i++)
		gz[i] = (unsigned char)(i * 7 + 3);
	gz[0] = 0x1f;
	gz[1] = 0x8b;
	buf_init(&out, 1024 * 1024);
	CHECK(mail_build(&r, "reports@example.com", c, NOW, &out, err, sizeof(err)) == 0,
	      "mail_build: %s", err);
	if (!out.data)
		return;

	/* every line ends in CRLF, none longer than 78 + CRLF */
	for (p = out.data; *p; p = q + 1) {
		q = strchr(p, '\n');
		if (!q)
			break;
		CHECK(q > p && q[-1] == '\r', "line %zu: bare LF", lines);
		CHECK(q - p - 1 <= 78, "line %zu: %d columns", lines, (int)(q - p - 1));
		lines++;
	}
	CHECK(out.len >= 2 && memcmp(out.data + out.len - 2, "\r\n", 2) == 0,
	      "message does not end with CRLF");

	static const struct {
		const char *name, *value;
	} hdrs[] = {
		{ "From", "TLS reporting <tlsrpt-noreply@sender.example>" },
		{ "To", "reports@example.com" },
		{ "Date", "Fri, 23 May 2025 03:17:42 +0000" },
		{ "Subject", "Report Domain: example.com Submitter: sender.example "
			     "Report-ID: <20250522.example.com@sender.example>" },
		{ "TLS-Report-Domain", "example.com" },
		{ "TLS-Report-Submitter", "sender.example" },
		{ "TLS-Required", "No" },
		{ "Auto-Submitted", "auto-generated" },
		{ "MIME-Version", "1.0" },
	};
	for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		count = header(out.data, hdrs[i].name, v, sizeof(v));
		CHECK(count == 1, "%s: %d occurrences, want 1", hdrs[i].name, count);
		CHECK(strcmp(v, hdrs[i].value) == 0, "%s: got \"%s\", want \"%s\"", hdrs[i].name,
		      v, hdrs[i].value);
	}
	CHECK_INT(header(out.data, "DKIM-Signature", v, sizeof(v)), 0);
	header(out.data, "Message-ID", v, sizeof(v));
	CHECK(strncmp(v, "<20250522.example.com.", 22) == 0 &&
	      strlen(v) == 22 + 8 + strlen("@sender.example>") &&
	      strcmp(v + 30, "@sender.example>") == 0,
	      "Message-ID: got \"%s\", want <20250522.example.com.HHHHHHHH@sender.example>", v);
	header(out.data, "Content-Type", v, sizeof(v));
	p = strstr(v, "boundary=\"");
	CHECK(strncmp(v, "multipart/report; report-type=\"tlsrpt\";", 39) == 0 && p,
	      "Content-Type: got \"%s\"", v);
	if (!p)
		goto done;
	snprintf(boundary, sizeof(boundary), "%.*s", (int)(strcspn(p + 10, "\"") & 63), p + 10);
	CHECK(strlen(boundary) == 9 + 24, "boundary \"%s\": want =_tlsrpt_ + 24 hex", boundary);

	/* the parts in order, then the closing delimiter, then nothing */
	snprintf(want, sizeof(want), "\r\n--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n",
		 boundary);
	p = strstr(out.data, want);
	CHECK(p != NULL, "first part (text/plain) missing");
	if (!p)
		goto done;
	CHECK(strstr(p, "Successful sessions: 1234\r\n") && strstr(p, "Failed sessions:     5\r\n") &&
	      strstr(p, "2025-05-22T00:00:00Z to 2025-05-22T23:59:59Z"),
	      "text part lacks totals or period");
	CHECK(strstr(p, "Organization:  Sender ? Example\r\n") != NULL, "control char in organization not replaced");
	snprintf(want, sizeof(want), "\r\n--%s\r\nContent-Type: application/tlsrpt+gzip;\r\n"
		 " name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n"
		 "Content-Disposition: attachment;\r\n filename=\"%s\"\r\n\r\n",
		 boundary, r.filename, r.filename);
	p = strstr(out.data, want);
	CHECK(p != NULL, "attachment headers missing or different");
	if (!p)
		goto done;
	p += strlen(want);
	snprintf(want, sizeof(want), "--%s--\r\n", boundary);
	end = strstr(p, want);
	CHECK(end && end[strlen(want)] == '\0', "closing delimiter missing or not last");
	if (!end)
		goto done;
	/* base64 lines of exactly 76 columns but the last; decode and compare */
	for (q = p; q < end; q = strchr(q, '\n') + 1) {
		size_t n = strcspn(q, "\r");
		int k;

		b64lines++;
		CHECK(n == 76 || q + n + 2 == end, "base64 line %zu: %zu columns", b64lines, n);
		k = EVP_DecodeBlock(dec + decoded, (const unsigned char *)q, (int)n);
		CHECK(k >= 0, "base64 line %zu does not decode", b64lines);
		if (k < 0)
			break;
		decoded += (size_t)k;
		if (n >= 1 && q[n - 1] == '=')
			decoded--;
		if (n >= 2 && q[n - 2] == '=')
			decoded--;
	}
	CHECK_INT(b64lines, (sizeof(gz) + 56) / 57);
	CHECK_INT(decoded, sizeof(gz));
	CHECK(memcmp(dec, gz, sizeof(gz)) == 0, "base64 round trip differs");
done:
	buf_free(&out);
	conf_free(c);
}

/* Long names: Subject folded at spaces, unfolds to the exact text. */
static void test_folding(void)
{
	static const char *const set[] = { "dkim_sign=no", "contact_info=t@s.example", NULL };
	struct conf *c = make_conf(set);
	struct report_file r = base_report();
	char dom[300], id[210], want[1024], v[2048], err[512];
	struct buf out;
	const char *p, *e;
	int folds = 0;

	snprintf(dom, sizeof(dom), "%s.%s.%s.example", "a123456789b123456789c123456789d123456789",
		 "e123456789f123456789g123456789h123456789", "i123456789j123456789");
	snprintf(id, sizeof(id), "%s@%s", "2025-05-22T00.00.00Z.long-report-identifier.0123456789",
		 "reporting-host.sender.example");
	r.policy_domain = dom;
	r.report_id = id;
	r.filename = "s!d!1!2.json.gz";
	buf_init(&out, 1024 * 1024);
	CHECK(mail_build(&r, "reports@example.com", c, NOW, &out, err, sizeof(err)) == 0,
	      "mail_build: %s", err);
	if (!out.data)
		return;
	header(out.data, "Subject", v, sizeof(v));
	snprintf(want, sizeof(want), "Report Domain: %s Submitter: sender.example Report-ID: <%s>",
		 dom, id);
	CHECK_STR(v, want);
	p = strstr(out.data, "\r\nSubject:");
	e = p ? strstr(p + 2, "\r\nTLS-Report-Domain:") : NULL;
	for (; p && e && p < e; p++)
		if (p[0] == '\r' && p[1] == '\n' && p[2] == ' ')
			folds++;
	CHECK(folds >= 2, "Subject: %d folds, want >= 2", folds);
	/* the Report-ID token is never split */
	snprintf(want, sizeof(want), "<%s>", id);
	CHECK(strstr(out.data, want) != NULL, "Report-ID split by folding");
	buf_free(&out);
	conf_free(c);
}

/* Every value that could carry a header is refused; nothing is written. */
static void test_injection(void)
{
	static const char *const set[] = { "dkim_sign=no", "contact_info=t@s.example", NULL };
	static const struct {
		int field;	/* 0 policy domain, 1 submitter, 2 report-id, 3 filename, 4 rcpt */
		const char *value, *want_err;
	} cases[] = {
		{ 0, "example.com\r\nBcc: victim@evil.example", "policy domain" },
		{ 0, "example.com\nX-Injected: 1", "policy domain" },
		{ 0, "example.com\rX: 1", "policy domain" },
		{ 0, "example.com X-Injected: 1", "policy domain" },
		{ 0, "", "policy domain" },
		{ 1, "sender.example\r\nX: y", "submitter" },
		{ 2, "id@x\r\nBcc: victim@evil.example", "report-id" },
		{ 2, "id@x>\r\n", "report-id" },
		{ 2, "id", "report-id" },
		{ 3, "x\r\nContent-Type: text/html\r\n.json.gz", "filename" },
		{ 3, "x\"; evil=\".json.gz", "filename" },
		{ 4, "reports@example.com\r\nBcc: victim@evil.example", "recipient" },
		{ 4, "reports@example.com, victim@evil.example", "recipient" },
		{ 4, "Name <reports@example.com>", "recipient" },
		{ 4, "reports@example.com\t", "recipient" },
	};
	struct conf *c = make_conf(set);
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct report_file r = base_report();
		const char *rcpt = "reports@example.com";
		struct buf out;
		int rc;

		switch (cases[i].field) {
		case 0: r.policy_domain = cases[i].value; break;
		case 1: r.submitter = cases[i].value; break;
		case 2: r.report_id = cases[i].value; break;
		case 3: r.filename = cases[i].value; break;
		default: rcpt = cases[i].value; break;
		}
		buf_init(&out, 1024 * 1024);
		err[0] = '\0';
		rc = mail_build(&r, rcpt, c, NOW, &out, err, sizeof(err));
		CHECK(rc == -1, "injection case %zu: got %d, want -1", i, rc);
		CHECK(out.len == 0, "injection case %zu: %zu bytes written", i, out.len);
		CHECK(strncmp(err, cases[i].want_err, strlen(cases[i].want_err)) == 0 &&
		      strstr(err, "refused") && !strpbrk(err, "\r\n"),
		      "injection case %zu: error \"%s\", want \"%s ... refused\"", i, err,
		      cases[i].want_err);
		buf_free(&out);
	}
	conf_free(c);
}

/* From: display names, quoting, refusals; DKIM misconfiguration. */
static void test_from(void)
{
	static const struct {
		const char *from, *want;	/* want NULL: mail_build fails */
	} cases[] = {
		{ "from_address=tlsrpt@sender.example", "tlsrpt@sender.example" },
		{ "from_address=TLS reporting <tlsrpt@sender.example>",
		  "TLS reporting <tlsrpt@sender.example>" },
		{ "from_address=Sender, Inc. <tlsrpt@sender.example>",
		  "\"Sender, Inc.\" <tlsrpt@sender.example>" },
		{ "from_address=\"Quoted Name\" <tlsrpt@sender.example>",
		  "Quoted Name <tlsrpt@sender.example>" },
		{ "from_address=Bad\"Name <tlsrpt@sender.example>", NULL },
		{ "from_address=Name <not an address>", NULL },
		{ "contact_info=mailto:c@sender.example", "c@sender.example" },
	};
	char err[512], v[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *set[] = { "dkim_sign=no", cases[i].from, NULL };
		struct conf *c = make_conf(set);
		struct report_file r = base_report();
		struct buf out;
		int rc;

		buf_init(&out, 1024 * 1024);
		rc = mail_build(&r, "reports@example.com", c, NOW, &out, err, sizeof(err));
		if (cases[i].want) {
			CHECK(rc == 0, "from case %zu: error %s", i, err);
			if (rc == 0) {
				header(out.data, "From", v, sizeof(v));
				CHECK_STR(v, cases[i].want);
			}
		} else {
			CHECK(rc == -1 && strstr(err, "from_address"),
			      "from case %zu: got %d (%s), want error naming from_address", i, rc, err);
		}
		buf_free(&out);
		conf_free(c);
	}
	{
		const char *set[] = { "contact_info=t@s.example", NULL };	/* dkim_sign = yes */
		struct conf *c = make_conf(set);
		struct report_file r = base_report();
		struct buf out;

		buf_init(&out, 1024 * 1024);
		CHECK_INT(mail_build(&r, "reports@example.com", c, NOW, &out, err, sizeof(err)), -1);
		CHECK_STR(err, "dkim_sign = yes needs dkim_key_file");
		buf_free(&out);
		conf_free(c);
	}
	{
		const char *set[] = { "dkim_sign=no", NULL };	/* no sender at all */
		struct conf *c = make_conf(set);
		struct report_file r = base_report();
		struct buf out;

		buf_init(&out, 1024 * 1024);
		CHECK_INT(mail_build(&r, "reports@example.com", c, NOW, &out, err, sizeof(err)), -1);
		CHECK_STR(err, "no From address: set from_address or contact_info");
		buf_free(&out);
		conf_free(c);
	}
	{
		const char *set[] = { "dkim_sign=no", "contact_info=t@s.example", NULL };
		struct conf *c = make_conf(set);
		struct report_file r = base_report();
		struct buf out;

		buf_init(&out, 1000);	/* too small */
		CHECK_INT(mail_build(&r, "reports@example.com", c, NOW, &out, err, sizeof(err)), -1);
		CHECK_STR(err, "report message larger than 1000 bytes");
		CHECK_INT(out.len, 0);
		buf_free(&out);
		conf_free(c);
	}
}

static void test_send_off(void)
{
	const char *set[] = { "delivery_mail=off", "contact_info=t@s.example", NULL };
	struct conf *c = make_conf(set);
	struct delivery_result res;

	mail_send(c, "reports@example.com", "x", 1, &res);
	CHECK_INT(res.ok, 0);
	CHECK_INT(res.permanent, 1);
	CHECK_STR(res.detail, "mail delivery is off (delivery_mail = off)");
	conf_free(c);
	set[0] = "delivery_mail=sendmail";
	c = make_conf(set);
	mail_send(c, "bad\r\n@example.com", "x", 1, &res);
	CHECK_INT(res.ok, 0);
	CHECK_INT(res.permanent, 1);
	CHECK(strstr(res.detail, "recipient") && strstr(res.detail, "refused"),
	      "bad rcpt detail: %s", res.detail);
	conf_free(c);
}

int main(void)
{
	test_checks();
	test_addr_of();
	test_envelope();
	test_structure();
	test_folding();
	test_injection();
	test_from();
	test_send_off();
	return check_done("mail");
}
