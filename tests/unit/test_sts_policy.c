/*
 * test_sts_policy - RFC 8461 policy parser, TXT record parser, MX matcher.
 */
#include "check.h"
#include "sts_policy.h"

#define OK STS_POLICY_OK
#define INV STS_POLICY_INVALID
#define BIG STS_POLICY_TOO_BIG

static void test_policy(void)
{
	static const struct {
		const char *name;
		const char *text;
		int status;
		int mode;
		unsigned max_age;
		size_t nmx, nlines;
		const char *mx0, *line0, *err;
	} t[] = {
		{ "rfc example", "version: STSv1\nmode: enforce\nmx: mail.example.com\n"
		  "mx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n",
		  OK, STS_MODE_ENFORCE, 604800, 3, 6, "mail.example.com", "version: STSv1", "" },
		{ "crlf", "version: STSv1\r\nmode: testing\r\nmx: a.example\r\nmax_age: 86400\r\n",
		  OK, STS_MODE_TESTING, 86400, 1, 4, "a.example", "version: STSv1", "" },
		{ "no final newline", "version: STSv1\nmode: none\nmax_age: 0",
		  OK, STS_MODE_NONE, 0, 0, 3, NULL, "version: STSv1", "" },
		{ "mixed LF CRLF, blank lines, WSP", "version:STSv1\r\n\nmode:\t enforce \nmx: *.A.Example\nmax_age: 31557600\n\n",
		  OK, STS_MODE_ENFORCE, 31557600, 1, 4, "*.a.example", "version:STSv1", "" },
		{ "first duplicate wins", "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 60\nmax_age: bogus\n",
		  OK, STS_MODE_TESTING, 60, 1, 6, "a.example", "version: STSv1", "" },
		{ "unknown keys ignored", "version: STSv1\nfoo_bar-1.x: some value ü\nmode: enforce\nmx: a.example\nmax_age: 5\n",
		  OK, STS_MODE_ENFORCE, 5, 1, 5, "a.example", "version: STSv1", "" },
		{ "max_age 10 digits leading zeros", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 0000000001\n",
		  OK, STS_MODE_ENFORCE, 1, 1, 4, "a.example", "version: STSv1", "" },
		{ "mode none needs no mx", "version: STSv1\nmode: none\nmax_age: 86400\n",
		  OK, STS_MODE_NONE, 86400, 0, 3, NULL, "version: STSv1", "" },
		{ "no version", "mode: enforce\nmx: a.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "no version field" },
		{ "bad version", "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 1: version: want STSv1" },
		{ "version case", "Version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "no version field" },
		{ "no mode", "version: STSv1\nmx: a.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "no mode field" },
		{ "bad mode", "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 2: mode: unknown value" },
		{ "no max_age", "version: STSv1\nmode: enforce\nmx: a.example\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "no max_age field" },
		{ "max_age too large", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 4: max_age: larger than 31557600" },
		{ "max_age 11 digits", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 00000000001\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 4: max_age: want 1-10 digits" },
		{ "max_age negative", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 4: max_age: not a number" },
		{ "no mx in enforce", "version: STSv1\nmode: enforce\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "no mx field" },
		{ "no mx in testing", "version: STSv1\nmode: testing\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "no mx field" },
		{ "mx bare star", "version: STSv1\nmode: enforce\nmx: *\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 3: mx: invalid host pattern" },
		{ "mx inner star", "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 3: mx: invalid host pattern" },
		{ "mx trailing dot", "version: STSv1\nmode: enforce\nmx: a.example.\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 3: mx: invalid host pattern" },
		{ "mx hyphen edge", "version: STSv1\nmode: enforce\nmx: -a.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 3: mx: invalid host pattern" },
		{ "mx U-label", "version: STSv1\nmode: enforce\nmx: m\xc3\xbc.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 3: mx: invalid host pattern" },
		{ "line without colon", "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 2: no \":\"" },
		{ "key with space", "version: STSv1\n mode: enforce\nmx: a.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 2: invalid field name" },
		{ "control character", "version: STSv1\nmode: enforce\nx: a\x01" "b\nmx: a.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 3: invalid value" },
		{ "invalid utf-8", "version: STSv1\nmode: enforce\nx: a\xc3(\nmx: a.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 3: invalid value" },
		{ "bare CR inside", "version: STSv1\rmode: enforce\nmx: a.example\nmax_age: 5\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 1: invalid value" },
		{ "empty value", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age:\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 4: invalid value" },
		{ "html", "<html><body>Not here</body></html>\n",
		  INV, 0, 0, 0, 0, NULL, NULL, "line 1: no \":\"" },
		{ "empty", "", INV, 0, 0, 0, 0, NULL, NULL, "no version field" },
	};
	char err[200];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sts_policy p;
		enum sts_policy_status s = sts_policy_parse(t[i].text, strlen(t[i].text), 65536,
							    &p, err, sizeof(err));

		CHECK((int)s == t[i].status, "%s: got status %d, want %d (%s)", t[i].name, s,
		      t[i].status, err);
		CHECK(strcmp(err, t[i].err) == 0, "%s: got err \"%s\", want \"%s\"", t[i].name,
		      err, t[i].err);
		if (s == OK) {
			CHECK(p.mode == (enum sts_mode)t[i].mode, "%s: got mode %d, want %d",
			      t[i].name, p.mode, t[i].mode);
			CHECK(p.max_age == t[i].max_age, "%s: got max_age %u, want %u", t[i].name,
			      p.max_age, t[i].max_age);
			CHECK(p.nmx == t[i].nmx, "%s: got nmx %zu, want %zu", t[i].name, p.nmx,
			      t[i].nmx);
			CHECK(p.nlines == t[i].nlines, "%s: got nlines %zu, want %zu", t[i].name,
			      p.nlines, t[i].nlines);
			if (t[i].mx0 && p.nmx)
				CHECK(strcmp(p.mx[0], t[i].mx0) == 0, "%s: got mx0 \"%s\", want \"%s\"",
				      t[i].name, p.mx[0], t[i].mx0);
			if (t[i].line0 && p.nlines)
				CHECK(strcmp(p.lines[0], t[i].line0) == 0,
				      "%s: got line0 \"%s\", want \"%s\"", t[i].name, p.lines[0],
				      t[i].line0);
		} else {
			CHECK(p.nlines == 0 && p.nmx == 0 && p.lines == NULL,
			      "%s: failed parse left data behind", t[i].name);
		}
		sts_policy_free(&p);
	}
}

static void test_policy_lines_and_limit(void)
{
	const char *text = "version: STSv1\r\nmode: enforce\nmx: mail.example.com\r\n"
			   "mx: *.example.net \nmax_age: 604800\n";
	const char *want[] = { "version: STSv1", "mode: enforce", "mx: mail.example.com",
			       "mx: *.example.net ", "max_age: 604800" };
	struct sts_policy p;
	char err[200];

	CHECK_INT(sts_policy_parse(text, strlen(text), 1000, &p, err, sizeof(err)), OK);
	CHECK_INT(p.nlines, 5);
	for (size_t i = 0; i < p.nlines && i < 5; i++)
		CHECK_STR(p.lines[i], want[i]);
	CHECK_INT(p.nmx, 2);
	CHECK_STR(p.mx[1], "*.example.net");
	sts_policy_free(&p);

	CHECK_INT(sts_policy_parse(text, strlen(text), 20, &p, err, sizeof(err)), BIG);
	CHECK_STR(err, "policy larger than 20 bytes");
	sts_policy_free(&p);
}

static void test_txt(void)
{
	static const struct {
		const char *rec;
		int rc;
		const char *id;
		const char *err;
	} t[] = {
		{ "v=STSv1; id=20160831085700Z;", 0, "20160831085700Z", "" },
		{ "v=STSv1; id=20160831085700Z", 0, "20160831085700Z", "" },
		{ "v=STSv1;id=abc", 0, "abc", "" },
		{ "v=STSv1 ; id=abc ;", 0, "abc", "" },
		{ "v=STSv1; foo=bar; id=abc", 0, "abc", "" },
		{ "v=STSv1; id=abc; id=def", 0, "abc", "" },
		{ "v=STSv1; id=12345678901234567890123456789012", 0, "12345678901234567890123456789012", "" },
		{ "v=STSv1; id=123456789012345678901234567890123", -1, NULL, "id must be 1-32 letters or digits" },
		{ "v=STSv1; id=", -1, NULL, "id must be 1-32 letters or digits" },
		{ "v=STSv1; id=ab-c", -1, NULL, "id must be 1-32 letters or digits" },
		{ "v=STSv1;", -1, NULL, "no id field" },
		{ "v=STSv1", -1, NULL, "no id field" },
		{ "v=STSv1; foo=bar", -1, NULL, "no id field" },
		{ "id=abc; v=STSv1", -1, NULL, "record does not begin with v=STSv1" },
		{ "v=stsv1; id=abc", -1, NULL, "record does not begin with v=STSv1" },
		{ " v=STSv1; id=abc", -1, NULL, "record does not begin with v=STSv1" },
		{ "v=STSv1 id=abc", -1, NULL, "\";\" expected at offset 8" },
		{ "v=STSv1; id=abc def", -1, NULL, "\";\" expected at offset 16" },
		{ "v=STSv1; foo", -1, NULL, "field without \"=\"" },
		{ "v=STSv1; _foo=bar; id=abc", -1, NULL, "invalid field name" },
		{ "v=STSv1; foo=; id=abc", -1, NULL, "empty field value" },
		{ "v=STSv1; foo=a=b; id=abc", -1, NULL, "invalid character in field value" },
	};
	char id[STS_ID_MAX + 1], err[200];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int rc;

		id[0] = '\0';
		rc = sts_txt_parse(t[i].rec, strlen(t[i].rec), id, sizeof(id), err, sizeof(err));
		CHECK(rc == t[i].rc, "txt \"%s\": got %d, want %d (%s)", t[i].rec, rc, t[i].rc, err);
		CHECK(strcmp(err, t[i].err) == 0, "txt \"%s\": got err \"%s\", want \"%s\"",
		      t[i].rec, err, t[i].err);
		if (rc == 0)
			CHECK(strcmp(id, t[i].id) == 0, "txt \"%s\": got id \"%s\", want \"%s\"",
			      t[i].rec, id, t[i].id);
	}
}

static void test_txt_select(void)
{
	char spf[] = "v=spf1 -all", a1[] = "v=STSv1; id=a1", a2[] = "v=STSv1; id=a2";
	char v10[] = "v=STSv10; id=x", idx[] = "v=STSv1 ; idx=1";
	char *one[] = { spf, a1 };
	char *two[] = { a1, a2 };
	char *none[] = { spf, v10 };
	char *bad[] = { idx };
	size_t l1[] = { 11, 14 }, l2[] = { 14, 14 }, l3[] = { 11, 14 }, l4[] = { 15 };
	char id[STS_ID_MAX + 1], err[200];

	CHECK_INT(sts_txt_select(one, l1, 2, id, sizeof(id), err, sizeof(err)), 0);
	CHECK_STR(id, "a1");
	CHECK_INT(sts_txt_select(two, l2, 2, id, sizeof(id), err, sizeof(err)), -1);
	CHECK_STR(err, "2 v=STSv1 records");
	CHECK_INT(sts_txt_select(none, l3, 2, id, sizeof(id), err, sizeof(err)), -1);
	CHECK_STR(err, "no v=STSv1 record");
	CHECK_INT(sts_txt_select(bad, l4, 1, id, sizeof(id), err, sizeof(err)), -1);
	CHECK_STR(err, "no id field");
	CHECK_INT(sts_txt_select(NULL, NULL, 0, id, sizeof(id), err, sizeof(err)), -1);
}

static void test_mx_match(void)
{
	static const struct {
		const char *pattern, *host;
		bool want;
	} t[] = {
		{ "mail.example.com", "mail.example.com", true },
		{ "mail.example.com", "MAIL.Example.COM", true },
		{ "mail.example.com", "mail.example.com.", true },
		{ "mail.example.com", "mail.example.co", false },
		{ "mail.example.com", "xmail.example.com", false },
		{ "*.example.com", "mail.example.com", true },
		{ "*.example.com", "MX1.EXAMPLE.COM.", true },
		{ "*.example.com", "example.com", false },
		{ "*.example.com", "a.b.example.com", false },
		{ "*.example.com", ".example.com", false },
		{ "*.example.com", "mail.example.net", false },
		{ "*.example.com", "mailexample.com", false },
		{ "*.example.com", "", false },
		{ "*.", "a.", false },
		{ "mail.example.com", "", false },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		bool got = sts_mx_match(t[i].pattern, t[i].host);

		CHECK(got == t[i].want, "match(%s, %s): got %d, want %d", t[i].pattern,
		      t[i].host, got, t[i].want);
	}
}

int main(void)
{
	test_policy();
	test_policy_lines_and_limit();
	test_txt();
	test_txt_select();
	test_mx_match();
	return check_done("test_sts_policy");
}
