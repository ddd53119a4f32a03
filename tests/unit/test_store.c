/*
 * test_store - the day file: exact counting, interning, reopen after a
 * crash (the writer's process state thrown away), overflow when full, and
 * validation of damaged files like untrusted input.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "store.h"

#define S(x) ((struct result_str){ (x), sizeof(x) - 1 })
#define SI(x) { (x), sizeof(x) - 1 }	/* for static initializers */

static char dir[256];

static const struct result_str sts_lines[] = { SI("version: STSv1"), SI("mode: enforce"),
					       SI("mx: *.example.net"), SI("max_age: 604800") };
static const struct result_str sts_mx[] = { SI("*.example.net") };

static struct result_policy sts_policy(bool failed, const struct result_detail *d)
{
	struct result_policy p = {
		.type = POLICY_STS, .domain = S("example.net"),
		.strings = sts_lines, .nstrings = 4, .mx = sts_mx, .nmx = 1,
		.failed = failed, .details = d, .ndetails = d ? 1 : 0,
	};
	return p;
}

static const struct store_policy_view *find(struct store_view *v, const char *d, int type)
{
	for (size_t i = 0; i < store_view_npolicies(v); i++) {
		const struct store_policy_view *p = store_view_policy(v, i);

		if (p->type == type && p->d.len == strlen(d) && memcmp(p->d.p, d, p->d.len) == 0)
			return p;
	}
	return NULL;
}

static void test_days(void)
{
	char buf[32];

	CHECK_INT(store_parse_day("1970-01-01"), 0);
	CHECK_INT(store_parse_day("2026-11-28"), 20785);
	CHECK_INT(store_parse_day("2024-02-29"), 19782);
	CHECK_INT(store_parse_day("2023-02-29"), -1);
	CHECK_INT(store_parse_day("2026-13-01"), -1);
	CHECK_INT(store_parse_day("2026-1-01"), -1);
	CHECK_INT(store_parse_day("2026-11-28x"), -1);
	store_format_day(buf, sizeof(buf), 20785);
	CHECK_STR(buf, "2026-11-28");
}

static void test_count_and_reopen(void)
{
	char err[512], path[512];
	struct store *s = store_open(dir, 20555, 1 << 20, 2048, err, sizeof(err));
	struct result_detail exp = { .code = RESULT_CERTIFICATE_EXPIRED, .sending_ip = S("192.0.2.10"),
				     .mx_hostname = S("mx1.example.net"), .receiving_ip = S("203.0.113.25") };
	struct result_detail ss = exp;
	struct result_policy none = { .type = POLICY_NONE };
	struct store_view *v;
	const struct store_policy_view *p;
	pid_t pid;
	int status;

	CHECK(s != NULL, "store_open: %s", err);
	if (s == NULL)
		return;
	ss.code = RESULT_VALIDATION_FAILURE;
	ss.reason = S("self-signed_certificate");
	for (int i = 0; i < 41; i++) {
		struct result_policy ok = sts_policy(false, NULL);
		CHECK_INT(store_add(s, S("Example.NET."), S("v=TLSRPTv1; rua=mailto:t@example.net"), &ok), STORE_OK);
	}
	for (int i = 0; i < 2; i++) {
		struct result_policy f = sts_policy(true, &exp);
		CHECK_INT(store_add(s, S("example.net"), S("v=TLSRPTv1; rua=mailto:t@example.net"), &f), STORE_OK);
	}
	{
		struct result_policy f = sts_policy(true, &ss);
		store_add(s, S("example.net"), S("v=TLSRPTv1; rua=mailto:t@example.net"), &f);
	}
	store_add(s, S("example.org"), S("v=TLSRPTv1;rua=mailto:x@example.org"), &none);

	/* a crash: a child holds nothing, the parent's mapping is simply dropped */
	store_day_path(path, sizeof(path), dir, 20555);
	v = store_view_open(path, err, sizeof(err));
	CHECK(v != NULL, "view while the writer runs: %s", err);
	if (v) {
		CHECK_INT(store_view_npolicies(v), 2);
		p = find(v, "example.net", POLICY_STS);
		CHECK(p != NULL, "example.net sts policy missing");
		if (p) {
			CHECK_INT(p->successes, 41);
			CHECK_INT(p->failures, 3);
			CHECK_INT(p->nstrings, 4);
			CHECK_INT(p->nmx, 1);
			CHECK_INT(p->ndetails, 2);
			CHECK(p->domain.len == 11 && !memcmp(p->domain.p, "example.net", 11), "policy domain");
		}
		p = find(v, "example.org", POLICY_NONE);
		CHECK(p && p->successes == 1 && p->domain.len == 11 &&
		      !memcmp(p->domain.p, "example.org", 11), "absent policy-domain is the TLSRPT domain");
		CHECK_INT(store_view_info(v)->counters[STC_SESSIONS], 45);
		CHECK_INT(store_view_info(v)->counters[STC_FAILURES], 3);
		store_view_close(v);
	}
	/* simulate SIGKILL: reopen in a child while the parent never closed */
	pid = fork();
	if (pid == 0) {
		_exit(0);	/* the child did nothing; the parent "dies" below */
	}
	waitpid(pid, &status, 0);
	/* drop the writer without sync or unlock, as a killed process would */
	{
		struct store *again;

		/* a second writer while the first holds the file is refused */
		again = store_open(dir, 20555, 1 << 20, 2048, err, sizeof(err));
		CHECK(again == NULL && strstr(err, "another collector"), "second writer not refused: %s", err);
		store_close(s);
		again = store_open(dir, 20555, 1 << 20, 2048, err, sizeof(err));
		CHECK(again != NULL, "reopen: %s", err);
		if (again) {
			struct result_policy f = sts_policy(true, &exp);

			store_add(again, S("example.net"), S("v=TLSRPTv1; rua=mailto:t@example.net"), &f);
			store_close(again);
		}
	}
	v = store_view_open(path, err, sizeof(err));
	CHECK(v != NULL, "view after reopen: %s", err);
	if (v) {
		p = find(v, "example.net", POLICY_STS);
		CHECK(p && p->failures == 4 && p->ndetails == 2, "counting continued after reopen");
		for (size_t i = 0; p && i < p->ndetails; i++)
			if (p->details[i].code == RESULT_CERTIFICATE_EXPIRED)
				CHECK_INT(p->details[i].count, 3);
		CHECK_INT(store_view_npolicies(v), 2);
		store_view_close(v);
	}
}

static void test_overflow(void)
{
	char err[512];
	struct store *s = store_open(dir, 20556, 1 << 20, 2048, err, sizeof(err));
	int full = 0, ok = 0;

	CHECK(s != NULL, "store_open: %s", err);
	if (s == NULL)
		return;
	for (int i = 0; i < 100000 && !full; i++) {
		char d[64];
		struct result_policy none = { .type = POLICY_NONE };
		struct result_str ds = { d, (size_t)snprintf(d, sizeof(d), "domain%d.example", i) };

		if (store_add(s, ds, S("v=TLSRPTv1;rua=mailto:a@b"), &none) == STORE_FULL)
			full = 1;
		else
			ok++;
	}
	CHECK(full, "store never reported full");
	CHECK(ok > 1000, "only %d domains fit in 1 MiB", ok);
	{
		/* an existing key still counts when full */
		struct result_policy none = { .type = POLICY_NONE };
		CHECK_INT(store_add(s, S("domain0.example"), S("v=TLSRPTv1;rua=mailto:a@b"), &none), STORE_OK);
	}
	store_close(s);
}

static void test_long_strings(void)
{
	char err[512], path[512];
	struct store *s = store_open(dir, 20557, 1 << 20, 64, err, sizeof(err));
	char reason[300];
	struct result_detail d = { .code = 201 };
	struct result_policy p = { .type = POLICY_NONE, .failed = true, .details = &d, .ndetails = 1 };
	struct store_view *v;

	memset(reason, 'a', sizeof(reason));
	memcpy(reason + 63, "\xc3\xa4", 2);	/* a 2-byte character across the cut at 64 */
	d.reason = (struct result_str){ reason, sizeof(reason) };
	store_add(s, S("x.example"), S("v=TLSRPTv1;rua=mailto:a@b"), &p);
	store_close(s);
	store_day_path(path, sizeof(path), dir, 20557);
	v = store_view_open(path, err, sizeof(err));
	CHECK(v != NULL, "%s", err);
	if (v) {
		CHECK_INT(store_view_policy(v, 0)->details[0].reason.len, 63);
		CHECK_INT(store_view_info(v)->counters[STC_STRINGS_CUT], 1);
		store_view_close(v);
	}
}

/*
 * Rows are keyed on what a report prints (issue 10 item 1 and 2): a
 * non-URI additional-information, the EHLO capability lines, empty strings,
 * an unknown result code's reason, the case of MX names and the spelling of
 * IP addresses never split a row; a URI does.
 */
static void test_canonical_rows(void)
{
	char err[512], path[512];
	struct store *s = store_open(dir, 20600, 1 << 20, 2048, err, sizeof(err));
	static const struct {
		struct result_detail d;
		int row;	/* expected row, -1: none of the earlier */
	} c[] = {
		{ { .code = 301 }, 0 },
		{ { .code = 301, .additional = SI("see https://x.example/ for more") }, 0 },
		{ { .code = 301, .additional = SI("") }, 0 },
		{ { .code = 301, .sending_ip = SI(""), .mx_hostname = SI("") }, 0 },
		{ { .code = 301, .additional = SI("https://x.example/why") }, 1 },
		{ { .code = 204, .mx_hostname = SI("mx1.example.com"), .receiving_ip = SI("203.0.113.25"),
		    .mx_helo = SI("250-mx1.example.com ESMTP Postfix\r\n250-PIPELINING\r\n250 STARTTLS") }, 2 },
		{ { .code = 204, .mx_hostname = SI("MX1.Example.COM."), .receiving_ip = SI("::ffff:203.0.113.25"),
		    .mx_helo = SI("250 MX1.example.com\r\n") }, 2 },
		{ { .code = 204, .mx_hostname = SI("mx1.example.com"), .receiving_ip = SI("203.0.113.25"),
		    .mx_helo = SI("mx1.example.com") }, 2 },
		{ { .code = 204, .mx_hostname = SI("mx1.example.com"), .receiving_ip = SI("203.0.113.25"),
		    .mx_helo = SI("250-other.example.com\r\n250 STARTTLS") }, 3 },
		{ { .code = 999, .reason = SI("x") }, 4 },
		{ { .code = 999, .reason = SI("y") }, 4 },
		{ { .code = 205, .reason = SI("unknown-result-code-999") }, 4 },
		{ { .code = 205, .sending_ip = SI("2001:DB8::0:1") }, 5 },
		{ { .code = 205, .sending_ip = SI("2001:db8::1") }, 5 },
	};
	static const struct {
		int code;
		const char *helo, *additional, *reason, *sip, *mx, *rip;
		uint64_t count;
	} want[] = {
		{ 301, NULL, NULL, NULL, NULL, NULL, NULL, 4 },
		{ 301, NULL, "https://x.example/why", NULL, NULL, NULL, NULL, 1 },
		{ 204, "mx1.example.com", NULL, NULL, NULL, "mx1.example.com", "203.0.113.25", 3 },
		{ 204, "other.example.com", NULL, NULL, NULL, "mx1.example.com", "203.0.113.25", 1 },
		{ 205, NULL, NULL, "unknown-result-code-999", NULL, NULL, NULL, 3 },
		{ 205, NULL, NULL, NULL, "2001:db8::1", NULL, NULL, 2 },
	};
	struct store_view *v;

	CHECK(s != NULL, "store_open: %s", err);
	if (s == NULL)
		return;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct result_policy p = { .type = POLICY_STS, .domain = S("example.com"),
					   .failed = true, .details = &c[i].d, .ndetails = 1 };

		CHECK_INT(store_add(s, S("example.com"), S("v=TLSRPTv1;rua=mailto:a@b"), &p), STORE_OK);
	}
	store_close(s);
	store_day_path(path, sizeof(path), dir, 20600);
	v = store_view_open(path, err, sizeof(err));
	CHECK(v != NULL, "%s", err);
	if (v == NULL)
		return;
	CHECK_INT(store_view_npolicies(v), 1);
	CHECK_INT(store_view_policy(v, 0)->ndetails, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]) &&
			   i < store_view_policy(v, 0)->ndetails; i++) {
		const struct store_detail_view *d = &store_view_policy(v, 0)->details[i];
		const struct { struct result_str got; const char *want, *name; } f[] = {
			{ d->mx_helo, want[i].helo, "receiving-mx-helo" },
			{ d->additional, want[i].additional, "additional-information" },
			{ d->reason, want[i].reason, "failure-reason-code" },
			{ d->sending_ip, want[i].sip, "sending-mta-ip" },
			{ d->mx_hostname, want[i].mx, "receiving-mx-hostname" },
			{ d->receiving_ip, want[i].rip, "receiving-ip" },
		};

		CHECK_INT(d->code, want[i].code);
		CHECK(d->count == want[i].count, "row %zu: count got %llu, want %llu", i,
		      (unsigned long long)d->count, (unsigned long long)want[i].count);
		for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++)
			CHECK((f[k].got.p == NULL && f[k].want == NULL) ||
			      (f[k].got.p && f[k].want && f[k].got.len == strlen(f[k].want) &&
			       memcmp(f[k].got.p, f[k].want, f[k].got.len) == 0),
			      "row %zu %s: got \"%.*s\", want \"%s\"", i, f[k].name,
			      f[k].got.p ? (int)f[k].got.len : 6, f[k].got.p ? f[k].got.p : "(null)",
			      f[k].want ? f[k].want : "(null)");
	}
	store_view_close(v);
}

/* Damage a copy of a good file byte by byte: the reader must never crash. */
static void test_damaged(void)
{
	char err[512], path[512], copy[512];
	FILE *in, *out;
	unsigned char *data;
	long n;
	int rejected = 0;

	store_day_path(path, sizeof(path), dir, 20555);
	snprintf(copy, sizeof(copy), "%s/damaged.tlsrpt", dir);
	in = fopen(path, "rb");
	fseek(in, 0, SEEK_END);
	n = ftell(in);
	rewind(in);
	data = malloc((size_t)n);
	CHECK(fread(data, 1, (size_t)n, in) == (size_t)n, "read");
	fclose(in);
	/* the used part is small: flip every byte of it once */
	for (long i = 0; i < 6000; i += 3) {
		struct store_view *v;

		data[i] ^= 0x5a;
		out = fopen(copy, "wb");
		fwrite(data, 1, (size_t)n, out);
		fclose(out);
		v = store_view_open(copy, err, sizeof(err));
		if (v == NULL)
			rejected++;
		else
			store_view_close(v);
		data[i] ^= 0x5a;
	}
	CHECK(rejected > 50, "only %d of 2000 damaged files rejected", rejected);
	/* truncated file */
	out = fopen(copy, "wb");
	fwrite(data, 1, 5000, out);
	fclose(out);
	CHECK(store_view_open(copy, err, sizeof(err)) == NULL, "truncated file accepted");
	free(data);
}

/* Many distinct keys (the index grows several times), and raw variants of
 * one key (case, trailing dot): every count stays exact. */
static void test_many_keys(void)
{
	char err[512], path[512];
	struct store *s = store_open(dir, 20558, 64 << 20, 2048, err, sizeof(err));
	struct store_view *v;
	const int n = 40000;

	CHECK(s != NULL, "store_open: %s", err);
	if (s == NULL)
		return;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < n; i++) {
			char d[64];
			struct result_policy sts = sts_policy(round == 2, NULL);
			struct result_str ds = { d, (size_t)snprintf(d, sizeof(d), "d%d.example", i) };

			store_add(s, ds, S("v=TLSRPTv1;rua=mailto:a@b"), &sts);
		}
	}
	/* the same key written three ways */
	for (int i = 0; i < 100; i++) {
		struct result_policy sts = sts_policy(false, NULL);
		static const char *const forms[] = { "d7.example", "D7.Example", "d7.example." };

		store_add(s, (struct result_str){ forms[i % 3], strlen(forms[i % 3]) },
			  S("v=TLSRPTv1;rua=mailto:a@b"), &sts);
	}
	store_close(s);
	store_day_path(path, sizeof(path), dir, 20558);
	v = store_view_open(path, err, sizeof(err));
	CHECK(v != NULL, "%s", err);
	if (v) {
		int wrong = 0;

		CHECK_INT(store_view_npolicies(v), n);
		for (size_t i = 0; i < store_view_npolicies(v); i++) {
			const struct store_policy_view *p = store_view_policy(v, i);
			bool d7 = p->d.len == 10 && memcmp(p->d.p, "d7.example", 10) == 0;

			if (p->successes != (d7 ? 102u : 2u) || p->failures != 1)
				wrong++;
		}
		CHECK(wrong == 0, "%d policies with wrong counts", wrong);
		CHECK_INT(store_view_info(v)->counters[STC_SESSIONS], 3 * n + 100);
		store_view_close(v);
	}
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_store.%d", (int)getpid());
	test_days();
	test_count_and_reopen();
	test_overflow();
	test_long_strings();
	test_canonical_rows();
	test_many_keys();
	test_damaged();
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup failed\n");
	}
	return check_done("test_store");
}
