/*
 * test_rptparse - decompression limits and the tolerant report parser:
 * every real report in $SAMPLES with its exact content, then synthetic
 * odd inputs, rejections and decompression bombs.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "buf.h"
#include "mime.h"
#include "rptparse.h"

#define MAXP 4

struct want_policy {
	const char *type, *domain;
	long long success, failure;
	size_t ndetails, nstrings, nmx;
	const char *result_types;	/* sorted, unique, comma separated */
};

struct sample {
	const char *file;
	const char *warning;		/* a substring of one warning ("" = any) */
	const char *org, *report_id;
	long long start, end;
	size_t npolicies;
	struct want_policy p[MAXP];
};

/* Expected values read from the samples independently (Python's email and
 * json modules); policy-domain of sys4-1 comes from its report-id. */
static const struct sample samples[] = {
	{ "google-1.eml", "", "Google Inc.", "2024-09-03T00:00:00Z_cardinalhealth.ca", 1725321600, 1725407999, 1, {
		{ "no-policy-found", "cardinalhealth.ca", 48, 0, 0, 0, 0, "" } } },
	{ "google-2.json", "", "Example Inc.", "2024-01-09T00:00:00Z_example.com", 1704758400, 1704844799, 1, {
		{ "sts", "example.com", 0, 3, 2, 4, 0, "validation-failure" } } },
	{ "google-3.eml", "", "Google Inc.", "2026-05-12T00:00:00Z_example.com", 1778544000, 1778630399, 1, {
		{ "sts", "example.com", 4, 0, 0, 5, 2, "" } } },
	{ "google-4.eml", "", "Google Inc.", "2026-02-08T00:00:00Z_example.com", 1770508800, 1770595200, 1, {
		{ "sts", "example.com", 4523, 2, 1, 4, 0, "certificate-expired" } } },
	{ "google-5.eml", "", "Google Inc.", "2024-09-15T00:00:00Z_krvtz.net", 1726358400, 1726444799, 1, {
		{ "sts", "krvtz.net", 1, 0, 0, 4, 1, "" } } },
	{ "google-6.eml", "", "Google Inc.", "2024-09-18T00:00:00Z_krvtz.net", 1726617600, 1726703999, 1, {
		{ "sts", "krvtz.net", 2, 0, 0, 4, 1, "" } } },
	{ "google-7.json", "", "Google Inc.", "2020-03-02T00:00:00Z_fastmaildmarc.com", 1583107200, 1583193599, 1, {
		{ "no-policy-found", "fastmaildmarc.com", 343, 0, 0, 0, 0, "" } } },
	{ "google-8.json", "", "Google Inc.", "2024-02-17T00:00:00Z_example.com", 1708128000, 1708214399, 1, {
		{ "sts", "example.com", 53, 0, 0, 4, 1, "" } } },
	{ "google-9.json", "", "Google Inc.", "2025-03-27T00:00:00Z_foo-bar.io", 1743033600, 1743119999, 1, {
		{ "no-policy-found", "foo-bar.io", 1, 0, 0, 0, 0, "" } } },
	{ "google-10.json", "", "Google Inc.", "2025-04-12T00:00:00Z_domain.de", 1744416000, 1744502399, 1, {
		{ "no-policy-found", "domain.de", 2, 0, 0, 0, 0, "" } } },
	{ "google-11.json", "", "Google Inc.", "2020-02-06T00:00:00Z_test.mailflow.ovh", 1580947200, 1581033599, 3, {
		{ "no-policy-found", "test.mailflow.ovh", 1, 0, 0, 0, 0, "" },
		{ "sts", "test.mailflow.ovh", 0, 3, 3, 6, 0, "validation-failure" },
		{ "sts", "test.mailflow.ovh", 0, 10, 5, 6, 0, "validation-failure" } } },
	{ "mailru-1.eml", "", "Mail.ru", "c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.ru", 1674604800, 1674691200, 1, {
		{ "sts", "krvtz.net", 0, 1, 1, 0, 0, "sts-policy-fetch-error" } } },
	{ "mailru-2.json", "", "Mail.ru", "c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.ru", 1674604800, 1674691200, 1, {
		{ "sts", "krvtz.net", 0, 1, 1, 0, 0, "sts-policy-fetch-error" } } },
	{ "microsoft-1.eml", "without time zone", "Microsoft Corporation", "133198585438131172+test.xmox.nl", 1673308800, 1673395199, 1, {
		{ "sts", "test.xmox.nl", 2, 0, 0, 4, 0, "" } } },
	{ "microsoft-2.json", "without time zone", "Microsoft Corporation", "133561180919336230+example.com", 1711411200, 1711497599, 1, {
		{ "sts", "example.com", 7, 0, 0, 4, 0, "" } } },
	{ "microsoft-3.eml", "one string holding a JSON array", "Microsoft Corporation", "133708152202987951+krvtz.net", 1726185600, 1726271999, 2, {
		{ "sts", "krvtz.net", 2, 0, 0, 4, 0, "" },
		{ "tlsa", "krvtz.net", 2, 0, 0, 13, 0, "" } } },
	{ "microsoft-4.eml", "", "Microsoft Corporation", "134232617934286362+example.com", 1778630400, 1778716799, 1, {
		{ "sts", "example.com", 2, 0, 0, 5, 0, "" } } },
	{ "microsoft-5.json", "failure-details sum to 3, total-failure-session-count is 2", "Microsoft Corporation", "133988091029006454+josh.scot", 1754179200, 1754265599, 1, {
		{ "sts", "josh.scot", 2, 2, 1, 5, 0, "Testing" } } },
	{ "microsoft-6.json", "one string holding a JSON array", "Microsoft Corporation", "133925885310113267+random.net", 1747958400, 1748044799, 2, {
		{ "sts", "random.net", 2, 0, 0, 4, 0, "" },
		{ "tlsa", "random.net", 2, 0, 0, 2, 0, "" } } },
	{ "microsoft-7.json", "", "Microsoft Corporation", "133944884956529435+", 1749859200, 1749945599, 1, {
		{ "sts", "xxxxxxxx.xx", 0, 3, 1, 0, 0, "sts-policy-fetch-error" } } },
	{ "socketlabs-1.json", "misspelled key receiving-mx-host-name", "socketlabs.com", "13B8FEDF21D3DBD6997654968E563122", 1582761600, 1582848000, 2, {
		{ "sts", "test.mailflow.ovh", 12, 0, 0, 4, 1, "" },
		{ "sts", "test.mailflow.ovh", 0, 2, 1, 4, 0, "certificate-host-mismatch" } } },
	{ "socketlabs-2.json", "start after end", "ludemo.net", "13B8FEDF21D3DBD6997654968E563122", 1586736600, 1586736000, 2, {
		{ "sts", "test.mailflow.ovh", 12, 0, 0, 4, 1, "" },
		{ "sts", "test.mailflow.ovh", 0, 2, 1, 3, 0, "certificate-host-mismatch" } } },
	{ "stalwart-1.json", "", "refluxstop.de", "1768089600_5665667737528564296", 1768089600, 1768176000, 1, {
		{ "sts", "hin.ch", 1, 0, 0, 7, 4, "" } } },
	{ "stalwart-2.json", "\"mx:\" prefix", "server.com", "123_456", 1768089600, 1768176000, 1, {
		{ "sts", "server.com", 1, 0, 0, 4, 1, "" } } },
	{ "sys4-1.json", "policy-domain missing, used \"mpi-klsb.mpg.de\"", "sonne.floppy.org", "2025-09-20T00:00:00Z_idx1_mpi-klsb.mpg.de", 1758326400, 1758412799, 1, {
		{ "no-policy-found", "mpi-klsb.mpg.de", 1, 0, 0, 0, 0, "" } } },
};

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *d;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	d = malloc((size_t)n + 1);
	if (d && fread(d, 1, (size_t)n, fp) != (size_t)n) {
		free(d);
		d = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return d;
}

static void result_types(const struct rpt_policy *p, char *out, size_t outsz)
{
	const char *v[64];
	size_t n = 0;
	struct buf b;

	for (size_t i = 0; i < p->ndetails && n < 64; i++) {
		bool dup = false;

		for (size_t k = 0; k < n; k++)
			dup |= strcmp(v[k], p->details[i].result_type) == 0;
		if (!dup)
			v[n++] = p->details[i].result_type;
	}
	for (size_t i = 0; i < n; i++)	/* tiny insertion sort */
		for (size_t k = i; k > 0 && strcmp(v[k - 1], v[k]) > 0; k--) {
			const char *t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	buf_init(&b, outsz - 1);
	buf_adds(&b, "");
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s%s", i ? "," : "", v[i]);
	snprintf(out, outsz, "%s", b.data);
	buf_free(&b);
}

static bool has_warning(const struct rpt_report *r, const char *w)
{
	if (w[0] == '\0')
		return true;
	for (size_t i = 0; i < r->nwarn; i++)
		if (strstr(r->warnings[i], w))
			return true;
	return false;
}

static void test_samples(void)
{
	const char *dir = getenv("SAMPLES");
	int done = 0;

	CHECK(dir != NULL, "SAMPLES not set");
	if (dir == NULL)
		return;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct sample *s = &samples[i];
		char path[1024], err[512], fb[256] = "";
		unsigned char *data;
		size_t len;
		struct mime_report m;
		struct rpt_report *r = NULL;
		const unsigned char *part;
		size_t plen;
		bool eml = strstr(s->file, ".eml") != NULL;

		snprintf(path, sizeof(path), "%s/%s", dir, s->file);
		data = read_file(path, &len);
		CHECK(data != NULL, "%s: cannot read", path);
		if (data == NULL)
			continue;
		memset(&m, 0, sizeof(m));
		part = data;
		plen = len;
		if (eml) {
			enum mime_status st = mime_extract((char *)data, len, 1 << 24, &m, err, sizeof(err));

			CHECK(st == MIME_OK, "%s: mime got %d (%s)", s->file, st, err);
			CHECK(m.found == MIME_BY_TYPE, "%s: found got %d, want by type", s->file, m.found);
			part = m.part;
			plen = m.part_len;
			if (m.report_domain)
				snprintf(fb, sizeof(fb), "%s", m.report_domain);
		}
		if (part && rpt_parse(part, plen, 1 << 24, fb[0] ? fb : NULL, &r, err, sizeof(err)) == 0) {
			CHECK_STR(r->organization_name, s->org);
			CHECK_STR(r->report_id, s->report_id);
			CHECK(r->start == s->start, "%s: start got %lld, want %lld", s->file,
			      (long long)r->start, s->start);
			CHECK(r->end == s->end, "%s: end got %lld, want %lld", s->file,
			      (long long)r->end, s->end);
			CHECK(r->npolicies == s->npolicies, "%s: policies got %zu, want %zu", s->file,
			      r->npolicies, s->npolicies);
			for (size_t k = 0; k < r->npolicies && k < s->npolicies; k++) {
				const struct rpt_policy *p = &r->policies[k];
				const struct want_policy *w = &s->p[k];
				char rt[256];

				result_types(p, rt, sizeof(rt));
				CHECK(strcmp(p->policy_type, w->type) == 0 &&
				      strcmp(p->policy_domain, w->domain) == 0 &&
				      p->success == w->success && p->failure == w->failure &&
				      p->ndetails == w->ndetails && p->nstrings == w->nstrings &&
				      p->nmx == w->nmx && strcmp(rt, w->result_types) == 0,
				      "%s policy %zu: got %s %s %lld/%lld details %zu strings %zu mx %zu "
				      "types \"%s\", want %s %s %lld/%lld details %zu strings %zu mx %zu "
				      "types \"%s\"", s->file, k, p->policy_type, p->policy_domain,
				      (long long)p->success, (long long)p->failure, p->ndetails,
				      p->nstrings, p->nmx, rt, w->type, w->domain, w->success,
				      w->failure, w->ndetails, w->nstrings, w->nmx, w->result_types);
			}
			CHECK(has_warning(r, s->warning), "%s: no warning containing \"%s\"", s->file,
			      s->warning);
			done++;
		} else
			CHECK(0, "%s: rejected: %s", s->file, err);
		rpt_free(r);
		mime_report_free(&m);
		free(data);
	}
	CHECK_INT(done, 25);
}

/* Specific values of single samples. */
static void test_sample_details(void)
{
	const char *dir = getenv("SAMPLES");
	char path[1024], err[256];
	unsigned char *d;
	size_t len;
	struct rpt_report *r;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/socketlabs-1.json", dir);
	d = read_file(path, &len);
	if (d && rpt_parse(d, len, 1 << 20, NULL, &r, err, sizeof(err)) == 0) {
		CHECK_STR(r->policies[1].details[0].receiving_mx_hostname, "mta-sts.test.mailflow.ovh");
		CHECK_STR(r->policies[1].details[0].sending_mta_ip, "142.0.177.133");
		CHECK_INT(r->policies[1].details[0].failed_session_count, 2);
		rpt_free(r);
	} else
		CHECK(0, "socketlabs-1: %s", err);
	free(d);
	snprintf(path, sizeof(path), "%s/stalwart-2.json", dir);
	d = read_file(path, &len);
	if (d && rpt_parse(d, len, 1 << 20, NULL, &r, err, sizeof(err)) == 0) {
		CHECK_STR(r->policies[0].mx_host[0], "mx.server.com");
		CHECK(r->contact_info == NULL, "stalwart-2: contact-info got %s, want NULL", r->contact_info);
		rpt_free(r);
	} else
		CHECK(0, "stalwart-2: %s", err);
	free(d);
	snprintf(path, sizeof(path), "%s/microsoft-5.json", dir);
	d = read_file(path, &len);
	if (d && rpt_parse(d, len, 1 << 20, NULL, &r, err, sizeof(err)) == 0) {
		CHECK_STR(r->policies[0].details[0].additional_information, "testing.josh.scot");
		CHECK_STR(r->policies[0].details[0].result_type, "Testing");
		rpt_free(r);
	} else
		CHECK(0, "microsoft-5: %s", err);
	free(d);
}

/* ---------- synthetic ---------- */

#define HEAD "{\"organization-name\":\"O\",\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00Z\"," \
	"\"end-datetime\":\"2024-01-01T23:59:59Z\"},\"contact-info\":\"a@b.example\",\"report-id\":\"r1\","
#define POL(body) HEAD "\"policies\":[" body "]}"

struct jcase {
	const char *name, *json;
	const char *err;	/* NULL: accepted; else a substring of the reason */
	const char *check;	/* for accepted: "field=value" checked below */
};

static const struct jcase jcases[] = {
	{ "minimal", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d.example\"},"
		"\"summary\":{\"total-successful-session-count\":5,\"total-failure-session-count\":0}}"),
	  NULL, "success=5" },
	{ "unknown policy-type kept", POL("{\"policy\":{\"policy-type\":\"tls\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":1,\"total-failure-session-count\":0}}"),
	  NULL, "type=tls" },
	{ "mx-host as a string", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\","
		"\"mx-host\":\"mx.d\"},\"summary\":{\"total-successful-session-count\":1,"
		"\"total-failure-session-count\":0}}"), NULL, "mx0=mx.d" },
	{ "mx-host empty string", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\","
		"\"mx-host\":\"\"},\"summary\":{\"total-successful-session-count\":1,"
		"\"total-failure-session-count\":0}}"), NULL, "nmx=0" },
	{ "mx-host with mx: prefix", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\","
		"\"mx-host\":[\"mx:  a.d\",\"\"]},\"summary\":{\"total-successful-session-count\":1,"
		"\"total-failure-session-count\":0}}"), NULL, "mx0=a.d" },
	{ "policy-string empty array", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\","
		"\"policy-string\":[]},\"summary\":{\"total-successful-session-count\":1,"
		"\"total-failure-session-count\":0}}"), NULL, "nstrings=0" },
	{ "policy-string JSON in a string", POL("{\"policy\":{\"policy-type\":\"tlsa\",\"policy-domain\":\"d\","
		"\"policy-string\":[\"[\\\"3 1 1 AA\\\",\\\"3 1 1 BB\\\"]\"]},\"summary\":{"
		"\"total-successful-session-count\":1,\"total-failure-session-count\":0}}"), NULL, "str1=3 1 1 BB" },
	{ "policy-domain absent, fallback from report-id absent too",
	  POL("{\"policy\":{\"policy-type\":\"no-policy-found\"},\"summary\":{"
		"\"total-successful-session-count\":1,\"total-failure-session-count\":0}}"), NULL, "domain=" },
	{ "missing failure count taken as 0", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":1}}"), NULL, "failure=0" },
	{ "failures without rows", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":1,\"total-failure-session-count\":4},"
		"\"failure-details\":[]}"), NULL, "failure=4" },
	{ "empty-string detail members are absent", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":0,\"total-failure-session-count\":1},"
		"\"failure-details\":[{\"result-type\":\"starttls-not-supported\",\"sending-mta-ip\":\"\","
		"\"failed-session-count\":1,\"extra\":true}]}"), NULL, "ip0=(null)" },
	{ "offset date", "{\"organization-name\":\"O\",\"date-range\":{\"start-datetime\":\"2024-01-01T02:00:00+02:00\","
		"\"end-datetime\":\"2024-01-01T23:59:59.999-00:30\"},\"report-id\":\"x\",\"policies\":[]}",
	  NULL, "start=1704067200" },
	{ "lower-case t and z", "{\"organization-name\":\"O\",\"date-range\":{\"start-datetime\":\"2024-01-01t00:00:00z\","
		"\"end-datetime\":\"2024-01-01 23:59:59\"},\"report-id\":\"x\",\"policies\":[]}",
	  NULL, "end=1704153599" },
	{ "NUL escape in a string", "{\"organization-name\":\"a\\u0000b\",\"date-range\":{\"start-datetime\":"
		"\"2024-01-01T00:00:00Z\",\"end-datetime\":\"2024-01-01T00:00:00Z\"},\"policies\":[]}",
	  NULL, "org=a?b" },
	{ "BOM and whitespace", "\xef\xbb\xbf \n" POL("") "\n\n", NULL, "npolicies=0" },
	{ "negative count", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":-1,\"total-failure-session-count\":0}}"),
	  "total-successful-session-count is negative", NULL },
	{ "count above 2^53", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":9007199254740993,\"total-failure-session-count\":0}}"),
	  "absurdly large", NULL },
	{ "count above 2^64", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":99999999999999999999999,\"total-failure-session-count\":0}}"),
	  "total-successful-session-count", NULL },
	{ "fractional count", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":1.5,\"total-failure-session-count\":0}}"),
	  "is not an integer", NULL },
	{ "count as a string of digits (issue 11 item 8)", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":\"3\",\"total-failure-session-count\":0}}"),
	  NULL, "success=3" },
	{ "count as a whole decimal number", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":2.0e1,\"total-failure-session-count\":0}}"),
	  NULL, "success=20" },
	{ "count as another string", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":\"3 sessions\",\"total-failure-session-count\":0}}"),
	  "total-successful-session-count is a string (\"3 sessions\"), not an integer", NULL },
	{ "count as an object", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":{},\"total-failure-session-count\":0}}"),
	  "total-successful-session-count is an object, not an integer", NULL },
	{ "policy-domain in another case with a trailing dot", POL("{\"policy\":{\"policy-type\":\"sts\","
		"\"policy-domain\":\"Josh.Scot.\"},\"summary\":{\"total-successful-session-count\":1,"
		"\"total-failure-session-count\":0}}"), NULL, "domain=josh.scot" },
	{ "start-datetime a number", "{\"date-range\":{\"start-datetime\":1704067200,\"end-datetime\":"
		"\"2024-01-01T00:00:00Z\"},\"policies\":[]}",
	  "date-range.start-datetime is a number (1704067200), not an RFC 3339 date-time string", NULL },
	{ "end-datetime null", "{\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00Z\",\"end-datetime\":"
		"null},\"policies\":[]}", "date-range.end-datetime is null, not an RFC 3339 date-time string", NULL },
	{ "start-datetime absent", "{\"date-range\":{\"end-datetime\":\"2024-01-01T00:00:00Z\"},"
		"\"policies\":[]}", "date-range.start-datetime missing", NULL },
	{ "policies given twice", HEAD "\"policies\":[],\"policies\":[]}", "policies given twice", NULL },
	{ "negative detail count", POL("{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		"\"summary\":{\"total-successful-session-count\":0,\"total-failure-session-count\":1},"
		"\"failure-details\":[{\"result-type\":\"x\",\"failed-session-count\":-5}]}"),
	  "failure-details[0]: failed-session-count is negative", NULL },
	{ "not UTF-8", "{\"organization-name\":\"\xff\xfe\"}", "not valid UTF-8 (bad byte 0xff at offset 22)", NULL },
	{ "overlong UTF-8", "{\"organization-name\":\"\xc0\xaf\"}", "not valid UTF-8", NULL },
	{ "UTF-16 surrogate in UTF-8", "{\"o\":\"\xed\xa0\x80\"}", "not valid UTF-8", NULL },
	{ "no date-range", "{\"organization-name\":\"O\",\"policies\":[]}", "date-range missing", NULL },
	{ "bad date", "{\"date-range\":{\"start-datetime\":\"yesterday\",\"end-datetime\":\"2024-01-01T00:00:00Z\"},"
		"\"policies\":[]}", "start-datetime is not an RFC 3339 date-time", NULL },
	{ "Feb 30", "{\"date-range\":{\"start-datetime\":\"2024-02-30T00:00:00Z\",\"end-datetime\":\"2024-03-01T00:00:00Z\"},"
		"\"policies\":[]}", "not an RFC 3339", NULL },
	{ "policies not an array", "{\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00Z\","
		"\"end-datetime\":\"2024-01-01T00:00:00Z\"},\"policies\":{}}", "policies missing or not an array", NULL },
	{ "truncated JSON", "{\"organization-name\":\"O\",\"date-ra", "unterminated string at offset 33", NULL },
	{ "truncated JSON after a value", "{\"organization-name\":\"O\"", "unexpected end of input", NULL },
	{ "trailing garbage", POL("") "x", "data after the JSON value", NULL },
	{ "array at top", "[1,2]", "not a JSON object (it is an array)", NULL },
	{ "empty", "", "not valid JSON", NULL },
};

static void check_field(const char *name, const struct rpt_report *r, const char *spec)
{
	char key[32], want[128], got[256] = "?";
	const char *eq = strchr(spec, '=');
	const struct rpt_policy *p = r->npolicies ? &r->policies[0] : NULL;
	struct buf wb;

	size_t kl = (size_t)(eq - spec) < sizeof(key) - 1 ? (size_t)(eq - spec) : sizeof(key) - 1;

	memcpy(key, spec, kl);
	key[kl] = '\0';
	buf_init(&wb, sizeof(want) - 1);
	buf_adds(&wb, eq + 1);
	memcpy(want, wb.data, wb.len + 1);
	buf_free(&wb);
	if (!strcmp(key, "success") && p)
		snprintf(got, sizeof(got), "%lld", (long long)p->success);
	else if (!strcmp(key, "failure") && p)
		snprintf(got, sizeof(got), "%lld", (long long)p->failure);
	else if (!strcmp(key, "type") && p)
		snprintf(got, sizeof(got), "%s", p->policy_type);
	else if (!strcmp(key, "domain") && p)
		snprintf(got, sizeof(got), "%s", p->policy_domain);
	else if (!strcmp(key, "mx0") && p && p->nmx)
		snprintf(got, sizeof(got), "%s", p->mx_host[0]);
	else if (!strcmp(key, "nmx") && p)
		snprintf(got, sizeof(got), "%zu", p->nmx);
	else if (!strcmp(key, "nstrings") && p)
		snprintf(got, sizeof(got), "%zu", p->nstrings);
	else if (!strcmp(key, "str1") && p && p->nstrings > 1)
		snprintf(got, sizeof(got), "%s", p->policy_string[1]);
	else if (!strcmp(key, "ip0") && p && p->ndetails)
		snprintf(got, sizeof(got), "%s", p->details[0].sending_mta_ip ? p->details[0].sending_mta_ip : "(null)");
	else if (!strcmp(key, "start"))
		snprintf(got, sizeof(got), "%lld", (long long)r->start);
	else if (!strcmp(key, "end"))
		snprintf(got, sizeof(got), "%lld", (long long)r->end);
	else if (!strcmp(key, "org"))
		snprintf(got, sizeof(got), "%s", r->organization_name);
	else if (!strcmp(key, "npolicies"))
		snprintf(got, sizeof(got), "%zu", r->npolicies);
	CHECK(strcmp(got, want) == 0, "%s: %s got \"%s\", want \"%s\"", name, key, got, want);
}

static void test_json_cases(void)
{
	for (size_t i = 0; i < sizeof(jcases) / sizeof(jcases[0]); i++) {
		const struct jcase *c = &jcases[i];
		struct rpt_report *r = NULL;
		char err[512] = "";
		int rc = rpt_parse_json(c->json, strlen(c->json), NULL, &r, err, sizeof(err));

		if (c->err == NULL) {
			CHECK(rc == 0, "%s: rejected (%s), want accepted", c->name, err);
			if (rc == 0)
				check_field(c->name, r, c->check);
		} else {
			CHECK(rc == -1 && r == NULL, "%s: accepted, want rejected", c->name);
			CHECK(strstr(err, c->err) != NULL, "%s: reason got \"%s\", want \"%s\"", c->name,
			      err, c->err);
		}
		rpt_free(r);
	}
}

static void test_fallback_and_json_out(void)
{
	const char *j = POL("{\"policy\":{\"policy-type\":\"no-policy-found\"},\"summary\":{"
		"\"total-successful-session-count\":1,\"total-failure-session-count\":0}}");
	struct rpt_report *r = NULL;
	struct json_object *o;
	char err[256], dom[64];

	CHECK_INT(rpt_parse_json(j, strlen(j), "fb.example", &r, err, sizeof(err)), 0);
	if (r) {
		CHECK_STR(r->policies[0].policy_domain, "fb.example");
		CHECK(r->policies[0].domain_from_fallback, "fallback flag not set");
		o = rpt_to_json(r);
		CHECK_STR(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			  "{\"organization-name\":\"O\",\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00Z\","
			  "\"end-datetime\":\"2024-01-01T23:59:59Z\"},\"contact-info\":\"a@b.example\","
			  "\"report-id\":\"r1\",\"policies\":[{\"policy\":{\"policy-type\":\"no-policy-found\","
			  "\"policy-domain\":\"fb.example\"},\"summary\":{\"total-successful-session-count\":1,"
			  "\"total-failure-session-count\":0}}]}");
		json_object_put(o);
	}
	rpt_free(r);
	rpt_domain_from_filename("/x/google.com!example.com!1725321600!1725407999!001.json.gz", dom, sizeof(dom));
	CHECK_STR(dom, "example.com");
	rpt_domain_from_filename("sys4-1.json", dom, sizeof(dom));
	CHECK_STR(dom, "");
	rpt_domain_from_filename("a!b;c!1!2.json", dom, sizeof(dom));
	CHECK_STR(dom, "");
	rpt_free(NULL);
}

static void test_times(void)
{
	static const struct { const char *s; long long want; } t[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2024-02-29T12:00:00Z", 1709208000 },
		{ "2023-01-10T00:00:00", 1673308800 },
		{ "2024-01-01T00:00:00.123456+01:00", 1704063600 },
		{ "2016-12-31T23:59:60Z", 1483228799 },
		{ "9999-12-31T23:59:59Z", 253402300799LL },
		{ "1969-12-31T23:59:59Z", -1 },
		{ "2024-13-01T00:00:00Z", -1 },
		{ "2024-01-01T24:00:00Z", -1 },
		{ "2024-01-01T00:00:00+2:00", -1 },
		{ "2024-01-01T00:00:00.Z", -1 },
		{ "2024-01-01", -1 },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int64_t got = -1;
		int rc = rpt_parse_time(t[i].s, &got);

		if (t[i].want < 0)
			CHECK(rc == -1, "%s: accepted as %lld, want rejected", t[i].s, (long long)got);
		else
			CHECK(rc == 0 && got == t[i].want, "%s: got %lld (rc %d), want %lld", t[i].s,
			      (long long)got, rc, t[i].want);
	}
	rpt_format_time(1709208000, buf, sizeof(buf));
	CHECK_STR(buf, "2024-02-29T12:00:00Z");
	rpt_format_time(253402300799LL, buf, sizeof(buf));
	CHECK_STR(buf, "9999-12-31T23:59:59Z");
}

static void test_deep_json(void)
{
	struct buf b;
	struct rpt_report *r;
	char err[256];

	buf_init(&b, 1 << 20);
	buf_adds(&b, "{\"organization-name\":");
	for (int i = 0; i < 5000; i++)
		buf_addc(&b, '[');
	CHECK_INT(rpt_parse_json(b.data, b.len, NULL, &r, err, sizeof(err)), -1);
	CHECK(strstr(err, "not valid JSON") != NULL, "deep: reason \"%s\"", err);
	buf_free(&b);
}

/* A string cut at RPT_MAX_STRING never ends in half a character. */
static void test_cut_utf8(void)
{
	for (int lead = 0; lead < 4; lead++) {
		struct buf b;
		struct rpt_report *r = NULL;
		char err[256];
		static const char *const ch[] = { "\xc3\xa4", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "a" };

		buf_init(&b, 1 << 20);
		buf_adds(&b, "{\"organization-name\":\"");
		for (int i = 0; i < RPT_MAX_STRING - 1; i++)
			buf_addc(&b, 'x');
		for (int i = 0; i < 4; i++)
			buf_adds(&b, ch[lead]);
		buf_adds(&b, "\",\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00Z\","
			 "\"end-datetime\":\"2024-01-01T00:00:00Z\"},\"policies\":[]}");
		CHECK_INT(rpt_parse_json(b.data, b.len, NULL, &r, err, sizeof(err)), 0);
		if (r) {
			size_t n = strlen(r->organization_name);

			CHECK(n == (size_t)(lead == 3 ? RPT_MAX_STRING : RPT_MAX_STRING - 1),
			      "lead %d: cut at %zu", lead, n);
		}
		rpt_free(r);
		buf_free(&b);
	}
}

/* Issue 10 item 4: 1,100 rows of 2^53 sum past 2^63 (UBSan found the
 * signed overflow); the sum is checked and the mismatch noted. */
static void test_sum_overflow(void)
{
	struct buf b;
	struct rpt_report *r = NULL;
	char err[256];
	bool noted = false;

	buf_init(&b, 1 << 22);
	buf_adds(&b, HEAD "\"policies\":[{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d\"},"
		 "\"summary\":{\"total-successful-session-count\":0,\"total-failure-session-count\":1},"
		 "\"failure-details\":[");
	for (int i = 0; i < 1100; i++)
		buf_printf(&b, "%s{\"result-type\":\"x\",\"failed-session-count\":9007199254740992}",
			   i ? "," : "");
	buf_adds(&b, "]}]}");
	CHECK_INT(rpt_parse_json(b.data, b.len, NULL, &r, err, sizeof(err)), 0);
	for (size_t i = 0; r && i < r->nwarn; i++)
		noted |= strstr(r->warnings[i], "failure-details sum to more than 2^63") != NULL;
	CHECK(noted, "the overflowing sum is not noted");
	rpt_free(r);
	buf_free(&b);
}

/* Issue 10 item 3: the budgets, each reached by a small input. */
static void test_budgets(void)
{
	static const struct {
		const char *name, *unit, *want;
		const char *head, *tail;
		int n;
	} c[] = {
		{ "values", "{}", "more than 1000000 JSON values", "{\"x\":[", "]}", 1000001 },
		{ "depth", "[", "nested deeper than 16 levels", "{\"x\":", "", 20 },
		{ "failure-details", "{\"result-type\":\"x\",\"failed-session-count\":1}",
		  "more than 10000 failure-details in the report",
		  HEAD "\"policies\":[{\"failure-details\":[", "]}]}", 10001 },
		{ "policies", "{}", "more than 1000 policies", HEAD "\"policies\":[", "]}", 1001 },
		{ "list entries", "\"mx: a.example\"", "mx-host has more than 1000 entries",
		  HEAD "\"policies\":[{\"policy\":{\"mx-host\":[", "]}}]}", 1001 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct buf b;
		struct rpt_report *r = NULL;
		char err[256] = "";

		buf_init(&b, 64 << 20);
		buf_adds(&b, c[i].head);
		for (int k = 0; k < c[i].n; k++) {
			if (k && c[i].unit[0] != '[')
				buf_addc(&b, ',');
			buf_adds(&b, c[i].unit);
		}
		buf_adds(&b, c[i].tail);
		CHECK(rpt_parse_json(b.data, b.len, NULL, &r, err, sizeof(err)) == -1 &&
		      strstr(err, c[i].want), "%s: got \"%s\", want \"%s\"", c[i].name, err, c[i].want);
		rpt_free(r);
		buf_free(&b);
	}
	/* the text budget: 2,100 policy-strings of 2 KiB in 3 policies */
	{
		struct buf b;
		struct rpt_report *r = NULL;
		char err[256] = "", big[2049];

		memset(big, 'a', 2048);
		big[2048] = '\0';
		buf_init(&b, 64 << 20);
		buf_adds(&b, HEAD "\"policies\":[");
		for (int p = 0; p < 3; p++) {
			buf_printf(&b, "%s{\"policy\":{\"policy-string\":[", p ? "," : "");
			for (int k = 0; k < 700; k++)
				buf_printf(&b, "%s\"%s\"", k ? "," : "", big);
			buf_adds(&b, "]}}");
		}
		buf_adds(&b, "]}");
		CHECK(rpt_parse_json(b.data, b.len, NULL, &r, err, sizeof(err)) == -1 &&
		      strstr(err, "strings are larger than 4194304 bytes in all"), "text budget: \"%s\"", err);
		rpt_free(r);
		buf_free(&b);
	}
}

int main(void)
{
	test_samples();
	test_sample_details();
	test_json_cases();
	test_fallback_and_json_out();
	test_times();
	test_deep_json();
	test_sum_overflow();
	test_budgets();
	test_cut_utf8();
	return check_done("test_rptparse");
}
