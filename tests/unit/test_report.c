/*
 * test_report - building one RFC 8460 report: exact JSON members, stable
 * report-id / unique-id / bytes, filename, gzip header, refusals.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "check.h"
#include "conf.h"
#include "report.h"

#define DAY_20250522 20230	/* 2025-05-22 */

static char *sts_strings[] = { (char *)"version: STSv1", (char *)"mode: testing", (char *)"mx: mail.example.com",
			       (char *)"max_age: 604800" };
static char *sts_mx[] = { (char *)"mail.example.com" };
static char *tlsa_strings[] = { (char *)"3 1 1 6007EEE553E85D8DF007A845D19EC343283D4E416E9A33F9EF3040C8B7C285BC" };

static struct agg_detail details[] = {
	{ 204, (char *)"192.0.2.10", (char *)"mail.example.com", NULL, (char *)"198.51.100.7", NULL, NULL, 2 },
};

static struct agg_policy policies[] = {
	{ 2, (char *)"example.com", sts_strings, 4, sts_mx, 1, 41, 2, details, 1, false },
	{ 1, (char *)"mail.example.com", tlsa_strings, 1, NULL, 0, 43, 0, NULL, 0, false },
};

static struct agg_domain dom = {
	(char *)"example.com", (char *)"v=TLSRPTv1; rua=mailto:tlsrpt@example.com", policies, 2, 84, 2, false,
};

static struct report_identity ident = {
	"Sender Example Org", "tlsrpt-noreply@sender.example", "sender.example",
};

static const char *jpath(struct json_object *o, const char *a, const char *b)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, a, &x))
		return NULL;
	if (b && !json_object_object_get_ex(x, b, &x))
		return NULL;
	return json_object_get_string(x);
}

static void test_fields(void)
{
	struct report r;
	char err[256] = "";
	struct json_object *o, *pol, *p0, *p1, *x;
	int rc = report_build(&dom, DAY_20250522, &ident, 100, &r, err, sizeof(err));

	CHECK(rc == 0, "report_build: got %d (%s), want 0", rc, err);
	if (rc != 0)
		return;
	o = json_tokener_parse(r.json);
	CHECK(o != NULL, "report JSON does not parse: %s", r.json);
	if (o == NULL)
		return;
	CHECK_STR(jpath(o, "organization-name", NULL), "Sender Example Org");
	CHECK_STR(jpath(o, "date-range", "start-datetime"), "2025-05-22T00:00:00Z");
	CHECK_STR(jpath(o, "date-range", "end-datetime"), "2025-05-22T23:59:59Z");
	CHECK_STR(jpath(o, "contact-info", NULL), "tlsrpt-noreply@sender.example");
	CHECK_STR(jpath(o, "report-id", NULL), r.report_id);
	/* top-level member order is fixed */
	CHECK(strncmp(r.json, "{\"organization-name\":\"Sender Example Org\",\"date-range\":{\"start-datetime\":"
		      "\"2025-05-22T00:00:00Z\",\"end-datetime\":\"2025-05-22T23:59:59Z\"},\"contact-info\":"
		      "\"tlsrpt-noreply@sender.example\",\"report-id\":\"", 190) == 0,
	      "JSON prefix: got %.190s", r.json);
	CHECK(json_object_object_get_ex(o, "policies", &pol) && json_object_is_type(pol, json_type_array),
	      "policies: want an array");
	CHECK_INT(json_object_array_length(pol), 2);
	p0 = json_object_array_get_idx(pol, 0);
	p1 = json_object_array_get_idx(pol, 1);
	/* in the order of the agg_domain's (already sorted) policies */
	CHECK_STR(jpath(p0, "policy", "policy-type"), "sts");
	CHECK_STR(jpath(p0, "policy", "policy-domain"), "example.com");
	CHECK_STR(jpath(p1, "policy", "policy-type"), "tlsa");
	CHECK_STR(jpath(p1, "policy", "policy-domain"), "mail.example.com");
	CHECK(json_object_object_get_ex(p0, "summary", &x), "sts summary missing");
	CHECK_STR(jpath(p0, "summary", "total-successful-session-count"), "41");
	CHECK_STR(jpath(p0, "summary", "total-failure-session-count"), "2");
	CHECK_STR(jpath(p1, "summary", "total-successful-session-count"), "43");
	CHECK_STR(jpath(p1, "summary", "total-failure-session-count"), "0");
	json_object_put(o);

	/* ids and filename */
	CHECK_INT(strlen(r.uid), 16);
	for (size_t i = 0; i < strlen(r.uid); i++)
		CHECK((r.uid[i] >= '0' && r.uid[i] <= '9') || (r.uid[i] >= 'a' && r.uid[i] <= 'f'),
		      "uid %s: character %zu is not lower-case hex", r.uid, i);
	{
		char want[256];

		snprintf(want, sizeof(want), "20250522.example.com.%s@sender.example", r.uid);
		CHECK_STR(r.report_id, want);
		snprintf(want, sizeof(want), "sender.example!example.com!1747872000!1747958399!%s.json.gz", r.uid);
		CHECK_STR(r.filename, want);
		snprintf(want, sizeof(want), "20250522-%s", r.uid);
		CHECK_STR(r.spool_id, want);
	}
	CHECK(strchr(r.report_id, ':') == NULL, "report-id %s contains ':'", r.report_id);
	CHECK_INT(r.file.begin, 1747872000);
	CHECK_INT(r.file.end, 1747958399);
	CHECK_INT(r.file.successes, 84);
	CHECK_INT(r.file.failures, 2);
	CHECK_STR(r.file.policy_domain, "example.com");
	CHECK_STR(r.file.submitter, "sender.example");
	CHECK_STR(r.file.filename, r.filename);
	CHECK(r.file.gz == r.gz && r.file.gzlen == r.gzlen, "file.gz does not point at the gzip");

	/* gzip: magic, deflate, mtime 0, OS Unix; decompresses to the JSON */
	CHECK(r.gzlen > 18 && r.gz[0] == 0x1f && r.gz[1] == 0x8b && r.gz[2] == 8,
	      "gzip magic: got %02x %02x %02x", r.gz[0], r.gz[1], r.gz[2]);
	CHECK(r.gz[4] == 0 && r.gz[5] == 0 && r.gz[6] == 0 && r.gz[7] == 0, "gzip mtime is not 0");
	CHECK_INT(r.gz[9], 3);
	{
		char *out;
		size_t len;

		CHECK_INT(report_gunzip(r.gz, r.gzlen, 1 << 20, &out, &len), 0);
		CHECK(len == r.jsonlen && memcmp(out, r.json, len) == 0, "gunzip: got %zu bytes, want the JSON (%zu)",
		      len, r.jsonlen);
		free(out);
		CHECK_INT(report_gunzip(r.gz, r.gzlen, 16, &out, &len), -1);
		CHECK_INT(report_gunzip(r.gz, r.gzlen - 5, 1 << 20, &out, &len), -1);
		CHECK_INT(report_gunzip((const unsigned char *)"not gzip", 8, 1 << 20, &out, &len), -1);
	}
	report_free(&r);
}

static void test_stable(void)
{
	struct report a, b, c, d, e;
	char err[256];

	CHECK_INT(report_build(&dom, DAY_20250522, &ident, 100, &a, err, sizeof(err)), 0);
	CHECK_INT(report_build(&dom, DAY_20250522, &ident, 100, &b, err, sizeof(err)), 0);
	CHECK(a.jsonlen == b.jsonlen && memcmp(a.json, b.json, a.jsonlen) == 0, "JSON differs between runs");
	CHECK(a.gzlen == b.gzlen && memcmp(a.gz, b.gz, a.gzlen) == 0, "gzip bytes differ between runs");
	CHECK_STR(a.report_id, b.report_id);
	CHECK_STR(a.filename, b.filename);

	/* another record, day or submitter: another id */
	{
		struct agg_domain d2 = dom;
		struct report_identity id2 = ident;

		d2.record = (char *)"v=TLSRPTv1; rua=mailto:other@example.com";
		CHECK_INT(report_build(&d2, DAY_20250522, &ident, 100, &c, err, sizeof(err)), 0);
		CHECK(strcmp(a.uid, c.uid) != 0, "uid of another record: got the same %s", c.uid);
		CHECK_INT(report_build(&dom, DAY_20250522 + 1, &ident, 100, &d, err, sizeof(err)), 0);
		CHECK(strcmp(a.uid, d.uid) != 0, "uid of another day: got the same %s", d.uid);
		CHECK(strncmp(d.filename + strlen("sender.example!example.com!"), "1747958400!1748044799!", 22) == 0,
		      "filename of the next day: got %s", d.filename);
		memcpy(id2.submitter, "other.example", 14);
		CHECK_INT(report_build(&dom, DAY_20250522, &id2, 100, &e, err, sizeof(err)), 0);
		CHECK(strcmp(a.uid, e.uid) != 0, "uid of another submitter: got the same %s", e.uid);
	}
	{
		char uid[REPORT_UID_LEN + 1];

		report_uid(DAY_20250522, "example.com", dom.record, "sender.example", uid);
		CHECK_STR(uid, a.uid);
	}
	report_free(&a);
	report_free(&b);
	report_free(&c);
	report_free(&e);
	/* d's filename was checked partly above; check it fully */
	report_free(&d);
}

static void test_refusals(void)
{
	static const struct {
		const char *domain, *pdomain;
		uint64_t ok, fail;
		const char *err;
		bool saturated;
	} c[] = {
		{ "b\xc3\xbc" "cher.example", "example.com", 1, 0, "not a lower-case A-label", false },
		{ "Example.com", "example.com", 1, 0, "not a lower-case A-label", false },
		{ "example.com.", "example.com", 1, 0, "not a lower-case A-label", false },
		{ "", "example.com", 1, 0, "not a lower-case A-label", false },
		{ "example.com", "example.com", 0, 0, "no sessions", false },
		{ "example.com", "m\xc3\xa4il.example.com", 1, 0, "policy-domain", false },
		{ "example.com", "xn--mil-ela.example.com", 1, 0, NULL, false },
		/* sums past 2^53-1 (agg.h): never a wrong or negative count */
		{ "example.com", "example.com", AGG_MAX_COUNT, 0, "more than 2^53-1", true },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct agg_policy p = { 9, (char *)c[i].pdomain, NULL, 0, NULL, 0, c[i].ok, c[i].fail, NULL, 0, false };
		struct agg_domain d = { (char *)c[i].domain, (char *)"v=TLSRPTv1;rua=mailto:a@b.example", &p, 1,
					c[i].ok, c[i].fail, c[i].saturated };
		struct report r;
		char err[256] = "";
		int rc = report_build(&d, DAY_20250522, &ident, 10, &r, err, sizeof(err));

		if (c[i].err == NULL)
			CHECK(rc == 0, "case %zu: got %d (%s), want 0", i, rc, err);
		else
			CHECK(rc == -1 && strstr(err, c[i].err), "case %zu: got %d \"%s\", want -1 \"%s\"",
			      i, rc, err, c[i].err);
		report_free(&r);
	}
}

static void test_domain_ok(void)
{
	static const struct {
		const char *d;
		bool ok;
	} c[] = {
		{ "example.com", true }, { "a.b-c.d", true }, { "xn--bcher-kva.example", true },
		{ "_dmarc.example.com", true }, { "localhost", true },
		{ "Example.com", false }, { "-a.com", false }, { "a-.com", false }, { "a..com", false },
		{ ".a.com", false }, { "a.com.", false }, { "a b.com", false }, { "a!b.com", false },
		{ "", false },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", false },	/* 64 */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", true },	/* 63 */
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		CHECK(report_domain_ok(c[i].d) == c[i].ok, "report_domain_ok(\"%s\"): got %d, want %d",
		      c[i].d, !c[i].ok, c[i].ok);
	CHECK(!report_domain_ok(NULL), "report_domain_ok(NULL): got true");
}

static void test_identity(void)
{
	static const struct {
		const char *conf;
		int rc;
		const char *submitter_or_err;
	} c[] = {
		{ "organization_name = Org\ncontact_info = tlsrpt@Sender.Example\n", 0, "sender.example" },
		{ "organization_name = Org\ncontact_info = a@b.example\nsubmitter_domain = mail.b.example\n", 0,
		  "mail.b.example" },
		{ "contact_info = a@b.example\n", -1, "organization_name is not set" },
		{ "organization_name = Org\n", -1, "contact_info is not set" },
		{ "organization_name = Org\ncontact_info = nobody\n", -1, "not a plain address" },
		{ "organization_name = Org\ncontact_info = Reports <a@b.example>\n", -1, "not a plain address" },
		{ "organization_name = Org\ncontact_info = a@b_c!.example\n", -1, "not an A-label domain" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct conf *cf = conf_new();
		struct report_identity id;
		char err[256] = "";
		int rc;

		CHECK_INT(conf_parse(cf, "test", c[i].conf, strlen(c[i].conf), err, sizeof(err)), 0);
		rc = report_identity_from_conf(cf, &id, err, sizeof(err));
		CHECK(rc == c[i].rc, "identity case %zu: got %d (%s), want %d", i, rc, err, c[i].rc);
		if (rc == 0 && c[i].rc == 0)
			CHECK_STR(id.submitter, c[i].submitter_or_err);
		else if (rc != 0)
			CHECK(strstr(err, c[i].submitter_or_err) != NULL, "identity case %zu: error \"%s\", want \"%s\"",
			      i, err, c[i].submitter_or_err);
		conf_free(cf);
	}
}

int main(void)
{
	test_fields();
	test_stable();
	test_refusals();
	test_domain_ok();
	test_identity();
	return check_done("test_report");
}
