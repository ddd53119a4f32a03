/*
 * test_sts_cache - cache rules (injected clock) and persistence.
 */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "sts_cache.h"

#define POLICY "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n"
#define T0 1700000000LL
#define DAY 86400LL

static char *xdup(const char *s)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1);

	memcpy(d, s, n + 1);
	return d;
}

static void test_rules(void)
{
	struct sts_entry e;

	memset(&e, 0, sizeof(e));
	snprintf(e.domain, sizeof(e.domain), "example.com");

	/* nothing cached: fetch, no failure to report, check due */
	CHECK_INT(sts_entry_valid(&e, T0), 0);
	CHECK_INT(sts_should_fetch(&e, "id1", T0, DAY, false), 1);
	CHECK_INT(sts_needs_check(&e, T0, DAY), 1);
	CHECK_INT(sts_entry_failure(&e, T0), 0);

	/* first fetch fails: no refetch for 5 minutes for that id, failure reported */
	sts_entry_discovered(&e, T0, true, "id1");
	sts_entry_failed(&e, T0, "id1", 301, "HTTP status 404");
	CHECK_INT(sts_entry_failure(&e, T0 + 10), 301);
	CHECK_INT(sts_should_fetch(&e, "id1", T0 + 299, DAY, false), 0);
	CHECK_INT(sts_should_fetch(&e, "id1", T0 + 300, DAY, false), 1);
	CHECK_INT(sts_should_fetch(&e, "id2", T0 + 10, DAY, false), 1);	/* new id */
	CHECK_INT(sts_should_fetch(&e, "id1", T0 + 10, DAY, true), 1);		/* forced */
	CHECK_INT(sts_needs_check(&e, T0 + 299, DAY), 0);
	CHECK_INT(sts_needs_check(&e, T0 + 300, DAY), 1);
	/* discovery now finds another id: the old failure is not this id's */
	sts_entry_discovered(&e, T0 + 20, true, "id2");
	CHECK_INT(sts_entry_failure(&e, T0 + 20), 0);

	/* a good fetch under id2 */
	sts_entry_fetched(&e, T0 + 400, "id2", xdup(POLICY), strlen(POLICY), 86400);
	CHECK_INT(e.expires, T0 + 400 + 86400);
	CHECK_INT(e.last_error_code, 0);
	CHECK_INT(sts_entry_valid(&e, T0 + 400 + 86399), 1);
	CHECK_INT(sts_entry_valid(&e, T0 + 400 + 86400), 0);
	CHECK_INT(sts_should_fetch(&e, "id2", T0 + 500, DAY, false), 0);	/* fresh, same id */
	CHECK_INT(sts_should_fetch(&e, "id3", T0 + 500, DAY, false), 1);	/* id changed */
	CHECK_INT(sts_should_fetch(&e, "id2", T0 + 400 + DAY, 3600, false), 1);	/* expired */
	CHECK_INT(sts_should_fetch(&e, "id2", T0 + 400 + 3600, 3600, false), 1);	/* refresh due */

	/* refresh fails: the cached policy stays valid and is used, no failure reply */
	sts_entry_failed(&e, T0 + 4000, "id3", 303, "certificate");
	CHECK_INT(e.have_policy, 1);
	CHECK_INT(sts_entry_valid(&e, T0 + 4000), 1);
	CHECK_INT(sts_entry_failure(&e, T0 + 4000), 0);
	/* after expiry, with the TXT still announcing id3, the failure shows */
	sts_entry_discovered(&e, T0 + 400 + DAY, true, "id3");
	CHECK_INT(sts_entry_failure(&e, T0 + 400 + DAY), 303);
	/* TXT gone: nothing to report */
	sts_entry_discovered(&e, T0 + 400 + DAY, false, NULL);
	CHECK_INT(sts_entry_failure(&e, T0 + 400 + DAY), 0);
	sts_entry_free(&e);
}

static void test_persistence(void)
{
	char dir[] = "/tmp/test_sts_cache.XXXXXX";
	char path[256], err[300];
	struct sts_cache *c = sts_cache_new(), *d;
	struct sts_entry e, got;
	size_t skipped = 99;
	FILE *fp;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp failed");
	snprintf(path, sizeof(path), "%s/cache", dir);

	/* missing file: empty cache */
	CHECK_INT(sts_cache_load(c, path, 65536, &skipped, err, sizeof(err)), 0);
	CHECK_INT(skipped, 0);

	memset(&e, 0, sizeof(e));
	snprintf(e.domain, sizeof(e.domain), "example.com");
	sts_entry_discovered(&e, T0, true, "id1");
	sts_entry_fetched(&e, T0, "id1", xdup(POLICY), strlen(POLICY), 86400);
	CHECK_INT(sts_cache_put(c, &e), 0);
	sts_entry_free(&e);

	memset(&e, 0, sizeof(e));
	snprintf(e.domain, sizeof(e.domain), "broken.example");
	sts_entry_discovered(&e, T0, true, "x9");
	sts_entry_failed(&e, T0 + 5, "x9", 302, "invalid policy: \"quoted\"");
	CHECK_INT(sts_cache_put(c, &e), 0);

	memset(&e, 0, sizeof(e));
	snprintf(e.domain, sizeof(e.domain), "nothing.example");
	sts_entry_discovered(&e, T0, false, NULL);
	CHECK_INT(sts_cache_save(c, path, err, sizeof(err)), 0);
	CHECK_INT(sts_cache_put(c, &e), 0);	/* not persisted: not dirty */
	CHECK_INT(sts_cache_dirty(c), 0);
	{	/* an entry with a policy makes it dirty again */
		struct sts_entry x;

		CHECK_INT(sts_cache_get(c, "example.com", &x), 1);
		CHECK_INT(sts_cache_put(c, &x), 0);
		sts_entry_free(&x);
	}

	CHECK_INT(sts_cache_count(c), 3);
	CHECK_INT(sts_cache_dirty(c), 1);
	CHECK_INT(sts_cache_save(c, path, err, sizeof(err)), 0);
	CHECK_INT(sts_cache_dirty(c), 0);

	/* add garbage lines: they are skipped */
	fp = fopen(path, "a");
	fputs("not json\n{\"domain\":\"UPPER.example\"}\n{\"domain\":\"a.example\",\"id\":\"1\","
	      "\"policy\":\"version: STSv1\\nmode: bogus\\n\",\"fetched\":1,\"expires\":2}\n"
	      "{\"domain\":\"b.example\",\"last_error_code\":999}\n[1,2]\n", fp);
	fclose(fp);

	d = sts_cache_new();
	CHECK_INT(sts_cache_load(d, path, 65536, &skipped, err, sizeof(err)), 2);
	CHECK_INT(skipped, 5);
	CHECK_INT(sts_cache_get(d, "example.com", &got), 1);
	CHECK_INT(got.have_policy, 1);
	CHECK_STR(got.id, "id1");
	CHECK_STR(got.text, POLICY);
	CHECK_INT(got.fetched, T0);
	CHECK_INT(got.expires, T0 + 86400);
	CHECK_STR(got.txt_id, "id1");
	sts_entry_free(&got);
	CHECK_INT(sts_cache_get(d, "broken.example", &got), 1);
	CHECK_INT(got.have_policy, 0);
	CHECK_INT(got.last_error_code, 302);
	CHECK_STR(got.last_error, "invalid policy: \"quoted\"");
	CHECK_STR(got.failed_id, "x9");
	CHECK_INT(got.last_failure, T0 + 5);
	sts_entry_free(&got);
	CHECK_INT(sts_cache_get(d, "nothing.example", &got), 0);
	CHECK_STR(got.domain, "nothing.example");
	sts_entry_free(&got);

	/* sweep: refresh due after the interval, not before */
	{
		char due[4][STS_DOMAIN_MAX + 1];

		CHECK_INT(sts_cache_due(d, T0 + 3599, 3600, due, 4), 0);
		CHECK_INT(sts_cache_due(d, T0 + 3600, 3600, due, 4), 1);
		CHECK_STR(due[0], "example.com");
	}

	/* prune: the negative entry goes after the check interval, the
	 * failure after a day, the policy a day after it expired */
	CHECK_INT(sts_cache_prune(c, T0 + 299), 0);
	CHECK_INT(sts_cache_prune(c, T0 + 300), 1);
	CHECK_INT(sts_cache_get(c, "nothing.example", &got), 0);
	CHECK_INT(sts_cache_prune(c, T0 + 5 + 86399), 0);
	CHECK_INT(sts_cache_prune(c, T0 + 5 + 86400), 1);
	CHECK_INT(sts_cache_prune(c, T0 + 86400 + 86399), 0);
	CHECK_INT(sts_cache_prune(c, T0 + 86400 + 86400), 1);
	CHECK_INT(sts_cache_count(c), 0);

	sts_cache_free(c);
	sts_cache_free(d);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	test_rules();
	test_persistence();
	return check_done("test_sts_cache");
}
