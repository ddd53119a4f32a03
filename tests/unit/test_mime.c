/*
 * test_mime - MIME extraction of the report part: parameters, boundaries,
 * transfer encodings, choice of the part, kept headers and limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "buf.h"
#include "mime.h"

static void test_param(void)
{
	static const struct {
		const char *value, *name, *want;	/* want NULL: absent */
	} t[] = {
		{ "multipart/report; boundary=\"abc\"; report-type=tlsrpt", "boundary", "abc" },
		{ "multipart/report; boundary=\"abc\"; report-type=tlsrpt", "report-type", "tlsrpt" },
		{ "multipart/report; report-type=\"tlsrpt\";\tboundary=----=_Next_1", "boundary", "----=_Next_1" },
		{ "multipart/report;report-type=tlsrpt;boundary=x", "boundary", "x" },
		{ "application/tlsrpt+gzip; name=\"a!b!1!2.json.gz\"", "name", "a!b!1!2.json.gz" },
		{ "attachment; filename=\"f.json.gz\"", "name", NULL },
		{ "attachment; filename=\"f.json.gz\"", "filename", "f.json.gz" },
		{ "attachment; FILENAME = \"sp ace.json\"", "filename", "sp ace.json" },
		{ "attachment; filename=\"q\\\"x\"; size=3", "filename", "q\"x" },
		{ "attachment; filename*=utf-8''r%C3%A9p.json", "filename", "r\xc3\xa9p.json" },
		{ "text/plain", "charset", NULL },
		{ "text/plain; charset", "charset", NULL },
		{ "text/plain; a=\"unterminated", "b", NULL },
		{ "text/plain; a=\"x;b=y\"; b=z", "b", "z" },
	};
	char out[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		bool got = mime_param(t[i].value, t[i].name, out, sizeof(out));

		CHECK(got == (t[i].want != NULL), "case %zu: present got %d, want %d", i, got,
		      t[i].want != NULL);
		if (got && t[i].want)
			CHECK(strcmp(out, t[i].want) == 0, "case %zu: got \"%s\", want \"%s\"", i,
			      out, t[i].want);
	}
}

static void test_decoders(void)
{
	unsigned char *d = NULL;
	long n;

	n = mime_decode_base64("eyJh\r\nIjoxfQ==\r\n", 16, 100, &d);
	CHECK_INT(n, 7);
	CHECK_STR((char *)d, "{\"a\":1}");
	free(d);
	n = mime_decode_base64("eyJhIjoxfQ==", 12, 3, &d);	/* over the limit */
	CHECK_INT(n, -1);
	n = mime_decode_qp("a=3Db=\r\nc=\nd =E2=80=93", 22, 100, &d);
	CHECK_INT(n, 9);
	CHECK(n == 9 && memcmp(d, "a=bcd \xe2\x80\x93", 9) == 0, "qp: got \"%s\"", (char *)d);
	free(d);
	n = mime_decode_qp("abc=", 4, 100, &d);	/* soft break at the end */
	CHECK_INT(n, 3);
	free(d);
	n = mime_decode_qp("a=ZZ", 4, 100, &d);	/* bad escape kept */
	CHECK_INT(n, 4);
	free(d);
}

#define JSON "{\"organization-name\":\"x\"}"
/* base64 of JSON */
#define JSON64 "eyJvcmdhbml6YXRpb24tbmFtZSI6IngifQ=="
/* base64 of a gzip of JSON */
#define GZ64 "H4sIAAAAAAACA6tWyi9KT8zLrEosyczP081LzE1VslKqUKoFAFC4kzQZAAAA"

struct mcase {
	const char *name;
	const char *msg;
	enum mime_status want;
	enum mime_found found;
	const char *part_type;		/* want */
	const char *part_filename;	/* want, NULL: none */
	const char *part_prefix;	/* first bytes of the decoded part */
	size_t nparts;
};

static const struct mcase cases[] = {
	{ "report part by type, unquoted parameters, report-type last",
	  "From: a@b\nSubject: Report\n Domain: x\nContent-Type: multipart/report; boundary=BB; report-type=tlsrpt\n\n"
	  "--BB\nContent-Type: text/plain\n\nhello\n--BB\n"
	  "Content-Type: application/tlsrpt+json\n\n" JSON "\n--BB--\n",
	  MIME_OK, MIME_BY_TYPE, "application/tlsrpt+json", NULL, JSON, 2 },
	{ "CRLF, missing closing boundary, quoted report-type first",
	  "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n boundary=\"=_x\"\r\n\r\n"
	  "preamble\r\n--=_x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--=_x\r\n"
	  "Content-Type: application/tlsrpt+gzip; name=\"g.json.gz\"\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\n" GZ64 "\r\n\r\n",
	  MIME_OK, MIME_BY_TYPE, "application/tlsrpt+gzip", "g.json.gz", "\x1f\x8b", 2 },
	{ "by filename only (octet-stream), filename in Content-Disposition",
	  "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\n"
	  "Content-Disposition: attachment;\n\tfilename=\"google.com!ex.com!1!2!001.json.gz\"\n"
	  "Content-Transfer-Encoding: base64\n\n" GZ64 "\n--b--\n",
	  MIME_OK, MIME_BY_NAME, "application/octet-stream", "google.com!ex.com!1!2!001.json.gz", "\x1f\x8b", 1 },
	{ "by sniffing gzip magic, no name",
	  "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nnot it\n--b\n"
	  "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" GZ64 "\n--b--\n",
	  MIME_OK, MIME_BY_SNIFF, "application/octet-stream", NULL, "\x1f\x8b", 2 },
	{ "type beats an earlier sniffed part",
	  "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/json\n\n{\"a\":1}\n--b\n"
	  "Content-Type: application/tlsrpt+json\n\n" JSON "\n--b--\n",
	  MIME_OK, MIME_BY_TYPE, "application/tlsrpt+json", NULL, JSON, 2 },
	{ "nested multipart/mixed inside multipart/report, QP part",
	  "Content-Type: multipart/report; report-type=tlsrpt; boundary=outer\n\n--outer\n"
	  "Content-Type: multipart/mixed; boundary=inner\n\n--inner\nContent-Type: text/plain\n\nx\n"
	  "--inner\nContent-Type: application/tlsrpt+json\nContent-Transfer-Encoding: quoted-printable\n\n"
	  "{\"organization-name\"=3A=\n\"x\"}\n--inner--\n--outer--\n",
	  MIME_OK, MIME_BY_TYPE, "application/tlsrpt+json", NULL, JSON, 2 },
	{ "whole message is the report (not multipart)",
	  "From: r@example.net\nContent-Type: application/tlsrpt+gzip\nContent-Transfer-Encoding: base64\n\n" GZ64 "\n",
	  MIME_OK, MIME_BY_TYPE, "application/tlsrpt+gzip", NULL, "\x1f\x8b", 1 },
	{ "bare JSON file, no headers at all",
	  JSON "\n", MIME_OK, MIME_BY_SNIFF, "text/plain", NULL, JSON, 1 },
	{ "text/html only: never sniffed",
	  "Content-Type: multipart/report; boundary=b\n\n--b\nContent-Type: text/html\n\n{html}\n--b--\n",
	  MIME_NOREPORT, 0, NULL, NULL, NULL, 1 },
	{ "plain text mail: no report",
	  "From: a@b\nSubject: hello\n\nJust a mail.\n", MIME_NOREPORT, 0, NULL, NULL, NULL, 1 },
	{ "empty input", "", MIME_NOREPORT, 0, NULL, NULL, NULL, 1 },
	{ "multipart without boundary parameter is a leaf",
	  "Content-Type: multipart/report\n\n" JSON "\n", MIME_OK, MIME_BY_SNIFF, "multipart/report", NULL, JSON, 1 },
	{ "mbox From line first (issue 11 item 8)",
	  "From noreply@google.com Sun Sep 15 00:00:00 2024\nFrom: a@b\n"
	  "Content-Type: multipart/report; boundary=BB; report-type=tlsrpt\n\n"
	  "--BB\nContent-Type: application/tlsrpt+json\n\n" JSON "\n--BB--\n",
	  MIME_OK, MIME_BY_TYPE, "application/tlsrpt+json", NULL, JSON, 1 },
	{ "+zip by type",
	  "Content-Type: multipart/report; boundary=b\n\n--b\nContent-Type: application/tlsrpt+zip\n"
	  "Content-Transfer-Encoding: base64\n\nUEsDBA==\n--b--\n",
	  MIME_OK, MIME_BY_TYPE, "application/tlsrpt+zip", NULL, "PK\3\4", 1 },
};

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct mcase *c = &cases[i];
		struct mime_report m;
		char err[256];
		enum mime_status st = mime_extract(c->msg, strlen(c->msg), 1 << 20, &m, err, sizeof(err));

		CHECK(st == c->want, "%s: status got %d, want %d (%s)", c->name, st, c->want, err);
		CHECK(m.nparts == c->nparts, "%s: nparts got %zu, want %zu", c->name, m.nparts, c->nparts);
		CHECK(m.mbox_from == (strncmp(c->msg, "From ", 5) == 0), "%s: mbox_from %d", c->name,
		      m.mbox_from);
		if (st == MIME_OK && c->want == MIME_OK) {
			CHECK(m.found == c->found, "%s: found got %d, want %d", c->name, m.found, c->found);
			CHECK(strcmp(m.part_type, c->part_type) == 0, "%s: type got %s, want %s",
			      c->name, m.part_type, c->part_type);
			CHECK((m.part_filename == NULL && c->part_filename == NULL) ||
			      (m.part_filename && c->part_filename &&
			       strcmp(m.part_filename, c->part_filename) == 0),
			      "%s: filename got %s, want %s", c->name,
			      m.part_filename ? m.part_filename : "(null)",
			      c->part_filename ? c->part_filename : "(null)");
			CHECK(m.part_len >= strlen(c->part_prefix) &&
			      memcmp(m.part, c->part_prefix, strlen(c->part_prefix)) == 0,
			      "%s: part starts \"%.20s\"", c->name, (char *)m.part);
		}
		mime_report_free(&m);
	}
}

static void test_headers(void)
{
	const char *msg =
		"Authentication-Results: mx.example.net;\r\n\tdkim=pass header.d=google.com\r\n"
		"Received: x\r\n"
		"Authentication-Results: other; dkim=fail\r\n"
		"Subject: Report Domain: example.com\r\n Submitter: google.com\r\n"
		"  Report-ID: <id@google.com>\r\n"
		"From: noreply@google.com\r\n"
		"TLS-Report-Domain:  example.com \r\n"
		"tls-report-submitter: google.com\r\n"
		"Message-ID: <m@x>\r\n"
		"Subject: second subject ignored\r\n"
		"Content-Type: application/tlsrpt+json\r\n\r\n" JSON;
	struct mime_report m;
	char err[256];

	CHECK_INT(mime_extract(msg, strlen(msg), 1 << 20, &m, err, sizeof(err)), MIME_OK);
	CHECK_STR(m.subject, "Report Domain: example.com Submitter: google.com  Report-ID: <id@google.com>");
	CHECK_STR(m.from, "noreply@google.com");
	CHECK_STR(m.report_domain, "example.com");
	CHECK_STR(m.report_submitter, "google.com");
	CHECK_STR(m.message_id, "<m@x>");
	CHECK_INT(m.nauth, 2);
	CHECK_STR(m.auth_results[0], "mx.example.net;\tdkim=pass header.d=google.com");
	CHECK_STR(m.auth_results[1], "other; dkim=fail");
	mime_report_free(&m);
}

static void test_limits(void)
{
	struct buf b;
	struct mime_report m;
	char err[256];
	enum mime_status st;

	/* nesting one deeper than allowed */
	buf_init(&b, 1 << 20);
	for (int i = 0; i <= MIME_MAX_DEPTH; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	buf_printf(&b, "Content-Type: application/tlsrpt+json\n\n%s\n", JSON);
	st = mime_extract(b.data, b.len, 1 << 20, &m, err, sizeof(err));
	CHECK(st == MIME_LIMIT, "depth: got %d, want MIME_LIMIT", st);
	CHECK(strstr(err, "too deep") != NULL, "depth: reason \"%s\"", err);
	mime_report_free(&m);
	buf_free(&b);

	/* exactly the allowed depth works */
	buf_init(&b, 1 << 20);
	for (int i = 0; i < MIME_MAX_DEPTH; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	buf_printf(&b, "Content-Type: application/tlsrpt+json\n\n%s\n", JSON);
	st = mime_extract(b.data, b.len, 1 << 20, &m, err, sizeof(err));
	CHECK(st == MIME_OK, "depth max: got %d (%s)", st, err);
	mime_report_free(&m);
	buf_free(&b);

	/* too many parts */
	buf_init(&b, 1 << 20);
	buf_adds(&b, "Content-Type: multipart/mixed; boundary=p\n\n");
	for (int i = 0; i < MIME_MAX_PARTS + 1; i++)
		buf_adds(&b, "--p\nContent-Type: text/plain\n\nx\n");
	buf_adds(&b, "--p--\n");
	st = mime_extract(b.data, b.len, 1 << 20, &m, err, sizeof(err));
	CHECK(st == MIME_LIMIT, "parts: got %d, want MIME_LIMIT", st);
	CHECK(strstr(err, "too many MIME parts") != NULL, "parts: reason \"%s\"", err);
	mime_report_free(&m);
	buf_free(&b);

	/* part larger than max_part */
	st = mime_extract("Content-Type: application/tlsrpt+json\n\n" JSON, 39 + strlen(JSON), 10,
			  &m, err, sizeof(err));
	CHECK(st == MIME_LIMIT, "size: got %d, want MIME_LIMIT", st);
	mime_report_free(&m);

	/* too many header fields */
	buf_init(&b, 1 << 22);
	for (int i = 0; i < MIME_MAX_HEADERS + 2; i++)
		buf_adds(&b, "X-A: b\n");
	buf_adds(&b, "\n" JSON);
	st = mime_extract(b.data, b.len, 1 << 20, &m, err, sizeof(err));
	CHECK(st == MIME_LIMIT, "headers: got %d, want MIME_LIMIT", st);
	mime_report_free(&m);
	buf_free(&b);

	mime_report_free(NULL);
}

int main(void)
{
	test_param();
	test_decoders();
	test_cases();
	test_headers();
	test_limits();
	return check_done("test_mime");
}
