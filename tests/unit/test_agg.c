/*
 * test_agg - the day's results as reports print them, from day files our
 * store wrote and from day files written elsewhere (edited here byte by
 * byte, as a hostile or foreign writer could): rows that a report prints
 * alike are one row, no report lists a failure-details tuple twice, every
 * count of a day file is at most 2^53-1 (a larger one is an error naming
 * file and record) and sums never pass it (issue 10 items 1, 2, 4, 5).
 */
#include <fcntl.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agg.h"
#include "check.h"
#include "store.h"

#define S(x) ((struct result_str){ (x), sizeof(x) - 1 })
#define DAY 20600

static char dir[256];

static const struct result_str sts_lines[] = { { "version: STSv1", 14 }, { "mode: enforce", 13 } };
static const struct result_str sts_mx[] = { { "mx.a.example", 12 } };

static void add(struct store *s, const char *d, bool failed, const struct result_detail *det,
		int times)
{
	struct result_policy p = {
		.type = POLICY_STS, .domain = { d, strlen(d) }, .strings = sts_lines, .nstrings = 2,
		.mx = sts_mx, .nmx = 1, .failed = failed, .details = det, .ndetails = det ? 1 : 0,
	};

	for (int i = 0; i < times; i++)
		CHECK_INT(store_add(s, (struct result_str){ d, strlen(d) },
				    S("v=TLSRPTv1;rua=mailto:r@a.example"), &p), STORE_OK);
}

static int read_file(const char *path, unsigned char **data, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	long n;

	if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0) {
		if (fp)
			fclose(fp);
		return -1;
	}
	rewind(fp);
	*data = malloc((size_t)n);
	*len = (size_t)n;
	if (*data == NULL || fread(*data, 1, *len, fp) != *len) {
		fclose(fp);
		return -1;
	}
	fclose(fp);
	return 0;
}

/* Copy 'from' to 'to', replacing the one occurrence of 'old' by 'new' (same
 * length): what another writer, or an attacker, could have put there. */
static void patch_copy(const char *from, const char *to, const void *old, const void *new,
		       size_t n)
{
	unsigned char *d = NULL, *hit = NULL;
	size_t len = 0;
	int found = 0;
	FILE *fp;

	CHECK(read_file(from, &d, &len) == 0, "cannot read %s", from);
	for (size_t i = 0; d && i + n <= len; i++)
		if (memcmp(d + i, old, n) == 0) {
			hit = d + i;
			found++;
		}
	CHECK(found == 1, "patch: %d occurrences in %s, want 1", found, from);
	if (hit)
		memcpy(hit, new, n);
	fp = fopen(to, "wb");
	CHECK(fp && fwrite(d, 1, len, fp) == len && fclose(fp) == 0, "cannot write %s", to);
	free(d);
}

/*
 * Copy 'from' to 'to' with one field of the records of 'kind' (store.h: 3
 * policy, 4 failure detail) changed: the u64 at 'off' from 'old' to 'new'
 * (or, with 'off32', the i32 at 'off32' of the record whose u64 at 'off'
 * is 'old'). Returns how many records were changed.
 */
static int edit_records(const char *from, const char *to, uint32_t kind, size_t off,
			uint64_t old, uint64_t new, size_t off32, int32_t new32)
{
	unsigned char *d = NULL;
	size_t len = 0, pos = 4096;
	uint64_t used;
	int n = 0;
	FILE *fp;

	if (read_file(from, &d, &len) != 0 || len < 4096)
		return -1;
	memcpy(&used, d + 32, 8);	/* header: magic, version, header size, file size, day, used */
	while (pos + 8 <= used && pos + 8 <= len) {
		uint32_t k, sz;
		uint64_t v;

		memcpy(&k, d + pos, 4);
		memcpy(&sz, d + pos + 4, 4);
		if (sz < 8)
			break;
		if (k == kind && pos + off + 8 <= len) {
			memcpy(&v, d + pos + off, 8);
			if (v == old) {
				if (off32)
					memcpy(d + pos + off32, &new32, 4);
				else
					memcpy(d + pos + off, &new, 8);
				n++;
			}
		}
		pos += sz;
	}
	fp = fopen(to, "wb");
	if (fp == NULL || fwrite(d, 1, len, fp) != len || fclose(fp) != 0)
		n = -1;
	free(d);
	return n;
}

static void make_day(const char *name, void (*fill)(struct store *), char *path, size_t pathsz)
{
	char sub[300], err[256];
	struct store *s;

	snprintf(sub, sizeof(sub), "%s/%s", dir, name);
	mkdir(sub, 0700);
	s = store_open(sub, DAY, 1 << 20, 2048, err, sizeof(err));
	CHECK(s != NULL, "store_open: %s", err);
	if (s == NULL)
		return;
	fill(s);
	store_close(s);
	store_day_path(path, pathsz, sub, DAY);
}

/* The failure-details of the only policy of 'a', as a report prints them:
 * no tuple twice, counts checked against 'want' (tuple text -> count). */
static void check_printed(struct agg *a, const char *const *want_keys, const uint64_t *want_counts,
			  size_t nwant, uint64_t want_failed)
{
	struct json_object *pols, *fd = NULL, *seen = json_object_new_object();
	uint64_t sum = 0;

	CHECK_INT(agg_ndomains(a), 1);
	if (agg_ndomains(a) != 1)
		return;
	CHECK_INT(agg_domain(a, 0)->npolicies, 1);
	pols = agg_policies_json(agg_domain(a, 0), (size_t)-1);
	json_object_object_get_ex(json_object_array_get_idx(pols, 0), "failure-details", &fd);
	for (size_t i = 0; fd && i < json_object_array_length(fd); i++) {
		struct json_object *row = json_object_array_get_idx(fd, i), *n;
		char key[2048] = "";
		static const char *const f[] = { "result-type", "sending-mta-ip", "receiving-mx-hostname",
						 "receiving-mx-helo", "receiving-ip",
						 "additional-information", "failure-reason-code" };

		for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
			struct json_object *v;
			size_t l = strlen(key);

			if (l + 300 < sizeof(key))
				snprintf(key + l, 300, "%s%.280s", k ? "|" : "",
					 json_object_object_get_ex(row, f[k], &v) ?
					 json_object_get_string(v) : "-");
		}
		CHECK(!json_object_object_get_ex(seen, key, NULL), "tuple %s listed twice", key);
		json_object_object_get_ex(row, "failed-session-count", &n);
		json_object_object_add(seen, key, json_object_get(n));
		CHECK(json_object_get_int64(n) > 0, "tuple %s: count %lld", key,
		      (long long)json_object_get_int64(n));
		sum += (uint64_t)json_object_get_int64(n);
	}
	CHECK_INT(json_object_object_length(seen), nwant);
	for (size_t i = 0; i < nwant; i++) {
		struct json_object *n = NULL;

		CHECK(json_object_object_get_ex(seen, want_keys[i], &n) &&
		      (uint64_t)json_object_get_int64(n) == want_counts[i],
		      "tuple %s: got %lld, want %llu", want_keys[i],
		      n ? (long long)json_object_get_int64(n) : -1LL, (unsigned long long)want_counts[i]);
	}
	CHECK(sum == want_failed, "rows sum to %llu, want %llu", (unsigned long long)sum,
	      (unsigned long long)want_failed);
	json_object_put(seen);
	json_object_put(pols);
}

/* A day file with placeholders of the right lengths for the edits below. */
static void fill_rows(struct store *s)
{
	struct result_detail uri = { .code = 301, .additional = S("https://a.example/1") };
	struct result_detail other = { .code = 301, .additional = S("https://a.example/2") };
	struct result_detail none = { .code = 301 };
	struct result_detail h1 = { .code = 204, .mx_hostname = S("mx.a.example"),
				    .mx_helo = S("helo1.a.example") };
	struct result_detail h2 = { .code = 204, .mx_hostname = S("mx.a.example"),
				    .mx_helo = S("placeholder-for-a-whole-ehlo-reply.example") };
	struct result_detail h3 = { .code = 204, .mx_hostname = S("mx.a.example"),
				    .mx_helo = S("helo3.a.example") };

	add(s, "a.example", false, NULL, 5);
	add(s, "a.example", true, &uri, 1);
	add(s, "a.example", true, &other, 2);
	add(s, "a.example", true, &none, 3);
	add(s, "a.example", true, &h1, 4);
	add(s, "a.example", true, &h2, 6);
	add(s, "a.example", true, &h3, 7);
}

/* Item 1 and 2 for day files from elsewhere: agg merges what prints alike. */
static void test_foreign_rows(void)
{
	char path[512], edited[600], edited2[600];
	static const char *const keys[] = {
		"sts-policy-fetch-error|-|-|-|-|https://a.example/1|-",
		"sts-policy-fetch-error|-|-|-|-|-|-",
		"certificate-expired|-|mx.a.example|helo1.a.example|-|-|-",
		"validation-failure|-|mx.a.example|helo1.a.example|-|-|unknown-result-code-999",
	};
	static const uint64_t counts[] = { 1, 5, 10, 7 };
	struct agg *a = agg_new();
	struct store_view *v;
	char err[512];

	make_day("rows", fill_rows, path, sizeof(path));
	snprintf(edited, sizeof(edited), "%s/edited.tlsrpt", dir);
	snprintf(edited2, sizeof(edited2), "%s/edited2.tlsrpt", dir);
	/* a non-URI additional-information where the store kept a URI */
	patch_copy(path, edited, "https://a.example/2", "see a.example/ now!", 19);
	/* a whole EHLO reply where the store keeps the greeting name */
	patch_copy(edited, edited2, "placeholder-for-a-whole-ehlo-reply.example",
		   "250-HELO1.A.Example. ESMTP\r\n250-PIPELINING", 42);
	/* an unknown result code where the store writes validation-failure,
	 * for the row of helo3 (7 sessions), now also named helo1 */
	patch_copy(edited2, edited, "helo3.a.example", "helo1.a.example", 15);
	CHECK_INT(edit_records(edited, edited2, 4, 40, 7, 0, 12, 999), 1);
	v = store_view_open(edited2, err, sizeof(err));
	CHECK(v != NULL, "edited day file: %s", err);
	if (v) {
		CHECK(a && agg_add_view(a, v) == 0, "agg_add_view");
		store_view_close(v);
	}
	agg_finish(a);
	check_printed(a, keys, counts, 4, 1 + 5 + 10 + 7);
	agg_free(a);
}

/* Item 5: a count above 2^53-1 anywhere is an error naming file and record. */
static void fill_counts(struct store *s)
{
	struct result_detail d = { .code = 204, .mx_hostname = S("mx.a.example") };

	add(s, "a.example", false, NULL, 1234);
	add(s, "a.example", true, &d, 777);
	store_bump(s, STC_LOG_LINES, 424242);
}

static void test_counts(void)
{
	char path[512], bad[600], err[512];
	static const struct {
		uint32_t kind;	/* 3 policy, 4 detail, 0 the header */
		size_t off;
		uint64_t old, new;
		const char *want;
	} c[] = {
		{ 3, 32, 1234, UINT64_MAX, "successful session count 18446744073709551615 is above 2^53-1" },
		{ 3, 32, 1234, UINT64_C(1) << 63, "policy record at offset 4" },
		{ 3, 40, 777, UINT64_MAX, "failed session count 18446744073709551615 is above 2^53-1" },
		{ 4, 40, 777, UINT64_C(1) << 53, "failed-session-count 9007199254740992 is above 2^53-1" },
		{ 0, 0, 424242, UINT64_MAX, "header counter log_lines is 18446744073709551615" },
		{ 3, 32, 1234, STORE_MAX_COUNT, NULL },
		{ 4, 40, 777, STORE_MAX_COUNT, NULL },
	};

	make_day("counts", fill_counts, path, sizeof(path));
	snprintf(bad, sizeof(bad), "%s/counts.tlsrpt", dir);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct store_view *v;

		err[0] = '\0';
		if (c[i].kind)
			CHECK_INT(edit_records(path, bad, c[i].kind, c[i].off, c[i].old, c[i].new, 0, 0), 1);
		else
			patch_copy(path, bad, &c[i].old, &c[i].new, 8);
		v = store_view_open(bad, err, sizeof(err));
		if (c[i].want == NULL)
			CHECK(v != NULL, "case %zu: %s", i, err);
		else
			CHECK(v == NULL && strstr(err, bad) && strstr(err, c[i].want),
			      "case %zu: got \"%s\", want \"%s\" naming the file", i, err, c[i].want);
		store_view_close(v);
	}
}

/* Item 4: sums over files never pass 2^53-1 and are flagged when they would. */
static void test_saturation(void)
{
	char path[512], big[600], err[512];
	struct agg *a = agg_new();

	make_day("sat", fill_counts, path, sizeof(path));
	snprintf(big, sizeof(big), "%s/sat.tlsrpt", dir);
	CHECK_INT(edit_records(path, big, 3, 32, 1234, STORE_MAX_COUNT, 0, 0), 1);
	for (int i = 0; i < 3; i++) {
		struct store_view *v = store_view_open(big, err, sizeof(err));

		CHECK(v != NULL, "%s", err);
		if (v) {
			agg_add_view(a, v);
			store_view_close(v);
		}
	}
	agg_finish(a);
	CHECK_INT(agg_ndomains(a), 1);
	if (agg_ndomains(a) == 1) {
		const struct agg_domain *d = agg_domain(a, 0);
		struct json_object *pols = agg_policies_json(d, 10), *su = NULL, *ok = NULL;

		CHECK(d->saturated, "domain not flagged saturated");
		CHECK(d->successes == AGG_MAX_COUNT, "successes %llu", (unsigned long long)d->successes);
		CHECK(d->failures == 3 * 777, "failures %llu", (unsigned long long)d->failures);
		json_object_object_get_ex(json_object_array_get_idx(pols, 0), "summary", &su);
		json_object_object_get_ex(su, "total-successful-session-count", &ok);
		CHECK(ok && json_object_get_int64(ok) == (int64_t)AGG_MAX_COUNT,
		      "printed successes %lld", ok ? (long long)json_object_get_int64(ok) : -1LL);
		json_object_put(pols);
	}
	agg_free(a);
}

int main(void)
{
	char cmd[300];

	snprintf(dir, sizeof(dir), "/tmp/test_agg.%d", (int)getpid());
	mkdir(dir, 0700);
	test_foreign_rows();
	test_counts();
	test_saturation();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
	return check_done("agg");
}
