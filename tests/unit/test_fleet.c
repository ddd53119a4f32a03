/*
 * test_fleet - the parts of lib/fleet that need no server: the password
 * file's checks, COPY and array-literal escaping, the content keys of
 * policies and details, the bounded reader of lists from the database, and
 * agg_add_policy giving the same merge as day files. (The database itself
 * is exercised by tests/integration/test_fleet_*.py with a real PostgreSQL.)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agg.h"
#include "buf.h"
#include "check.h"
#include "db.h"
#include "dbagg.h"
#include "push.h"

static char tmpdir[256];

/* string literals where the structs take char * (they are never written) */
#define W(s) ((char *)(uintptr_t)(s))

static void write_file(const char *name, const char *content, mode_t mode)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content))
		perror(p);
	if (fd >= 0)
		close(fd);
	chmod(p, mode);
}

static void test_password(void)
{
	static const struct {
		const char *name, *content;
		mode_t mode;
		int want;
		const char *password, *msg;
	} cases[] = {
		{ "ok", "s3cret\n", 0600, 0, "s3cret", NULL },
		{ "group-read", "s3cret\r\nsecond line\n", 0640, 0, "s3cret", NULL },
		{ "no-newline", "s3cret", 0400, 0, "s3cret", NULL },
		{ "spaces", " a b \n", 0600, 0, " a b ", NULL },
		{ "world-read", "s3cret\n", 0644, -1, "", "mode 0644" },
		{ "group-write", "s3cret\n", 0660, -1, "", "mode 0660" },
		{ "world-write", "s3cret\n", 0602, -1, "", "mode 0602" },
		{ "empty", "", 0600, -1, "", "first line is empty" },
		{ "empty-line", "\nsecond\n", 0600, -1, "", "first line is empty" },
	};
	char pw[DB_PASSWORD_MAX], err[512], p[512], big[DB_PASSWORD_MAX + 10];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		write_file(cases[i].name, cases[i].content, cases[i].mode);
		snprintf(p, sizeof(p), "%s/%s", tmpdir, cases[i].name);
		err[0] = '\0';
		rc = db_read_password(p, (unsigned)geteuid(), pw, sizeof(pw), err, sizeof(err));
		CHECK(rc == cases[i].want, "%s: got %d, want %d (%s)", cases[i].name, rc, cases[i].want, err);
		CHECK_STR(pw, cases[i].password);
		if (cases[i].msg)
			CHECK(strstr(err, cases[i].msg) != NULL, "%s: message \"%s\" lacks \"%s\"",
			      cases[i].name, err, cases[i].msg);
	}
	/* a symlink to a good file is refused */
	snprintf(p, sizeof(p), "%s/link", tmpdir);
	{
		char target[512];

		snprintf(target, sizeof(target), "%s/ok", tmpdir);
		unlink(p);
		CHECK(symlink(target, p) == 0, "symlink");
	}
	CHECK_INT(db_read_password(p, (unsigned)geteuid(), pw, sizeof(pw), err, sizeof(err)), -1);
	CHECK(strstr(err, "symlink") != NULL, "symlink message: %s", err);
	/* a directory, a missing file */
	CHECK_INT(db_read_password(tmpdir, (unsigned)geteuid(), pw, sizeof(pw), err, sizeof(err)), -1);
	snprintf(p, sizeof(p), "%s/missing", tmpdir);
	CHECK_INT(db_read_password(p, (unsigned)geteuid(), pw, sizeof(pw), err, sizeof(err)), -1);
	/* an owner that is neither root nor the caller (only testable as root) */
	if (geteuid() == 0) {
		snprintf(p, sizeof(p), "%s/ok", tmpdir);
		CHECK(chown(p, 12345, 0) == 0, "chown");
		CHECK_INT(db_read_password(p, 0, pw, sizeof(pw), err, sizeof(err)), -1);
		CHECK(strstr(err, "owned by uid 12345") != NULL, "owner message: %s", err);
		CHECK_INT(db_read_password(p, 12345, pw, sizeof(pw), err, sizeof(err)), 0);
	}
	/* longer than the limit */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file("big", big, 0600);
	snprintf(p, sizeof(p), "%s/big", tmpdir);
	CHECK_INT(db_read_password(p, (unsigned)geteuid(), pw, sizeof(pw), err, sizeof(err)), -1);
	CHECK(strstr(err, "longer than") != NULL, "long message: %s", err);
	CHECK_STR(pw, "");
}

static void test_escaping(void)
{
	static const struct {
		const char *in, *copy;
	} copy[] = {
		{ "plain", "plain" },
		{ "a\tb", "a\\tb" },
		{ "a\nb\r", "a\\nb\\r" },
		{ "back\\slash", "back\\\\slash" },
		{ "\\N", "\\\\N" },
		{ "\x01\x1f\x7f", "\\001\\037\\177" },
		{ "ünï", "ünï" },
		{ "", "" },
	};
	struct buf b;

	buf_init(&b, 1024);
	for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
		buf_reset(&b);
		CHECK_INT(db_copy_escape(&b, copy[i].in, strlen(copy[i].in)), 0);
		CHECK_STR(b.data ? b.data : "", copy[i].copy);
	}
	{
		char *v[] = { W("a"), W("b,c"), W("q\"uote"), W("back\\s"), W("NULL"), W("{x}"), W("") };

		buf_reset(&b);
		CHECK_INT(db_array_literal(&b, v, 7), 0);
		CHECK_STR(b.data, "{\"a\",\"b,c\",\"q\\\"uote\",\"back\\\\s\",\"NULL\",\"{x}\",\"\"}");
		buf_reset(&b);
		CHECK_INT(db_array_literal(&b, NULL, 0), 0);
		CHECK_STR(b.data, "{}");
	}
	/* a limit is an error, never a cut */
	buf_free(&b);
	buf_init(&b, 8);
	CHECK_INT(db_copy_escape(&b, "\t\t\t\t\t", 5), -1);
	buf_free(&b);
}

static void test_lists(void)
{
	static const struct {
		const char *json;
		int want;
		size_t n;
	} cases[] = {
		{ "[]", 0, 0 },
		{ "[\"a\",\"b\"]", 0, 2 },
		{ "[\"tab\\there\",\"\\u00fc\"]", 0, 2 },
		{ "[1]", -1, 0 },
		{ "[[\"a\"]]", -1, 0 },
		{ "{\"a\":1}", -1, 0 },
		{ "[\"a\"] x", -1, 0 },
		{ "[\"a\\u0000b\"]", -1, 0 },
		{ "", -1, 0 },
		{ "[null]", -1, 0 },
	};
	char **v;
	size_t n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = dbagg_parse_list(cases[i].json, strlen(cases[i].json), &v, &n);

		CHECK(rc == cases[i].want, "list %s: got %d, want %d", cases[i].json, rc, cases[i].want);
		CHECK(rc != 0 || n == cases[i].n, "list %s: got %zu entries, want %zu",
		      cases[i].json, n, cases[i].n);
		dbagg_free_list(v, n);
	}
	CHECK_INT(dbagg_parse_list("[\"tab\\there\"]", 13, &v, &n), 0);
	CHECK_STR(n == 1 ? v[0] : NULL, "tab\there");
	dbagg_free_list(v, n);
	/* more entries than DBAGG_LIST_MAX */
	{
		struct buf b;

		buf_init(&b, 1 << 20);
		buf_addc(&b, '[');
		for (int i = 0; i <= DBAGG_LIST_MAX; i++)
			buf_adds(&b, i ? ",\"x\"" : "\"x\"");
		buf_addc(&b, ']');
		CHECK_INT(dbagg_parse_list(b.data, b.len, &v, &n), -1);
		buf_free(&b);
	}
}

static void test_hashes(void)
{
	char *s1[] = { W("ab"), W("c") }, *s2[] = { W("a"), W("bc") }, *mx[] = { W("*.x") };
	struct agg_policy p1 = { .type = 2, .domain = W("x"), .strings = s1, .nstrings = 2, .mx = mx, .nmx = 1 };
	struct agg_policy p2 = p1;
	struct agg_detail d1 = { .code = 202, .sending_ip = W("192.0.2.1") };
	struct agg_detail d2 = { .code = 202, .sending_ip = NULL, .mx_hostname = W("192.0.2.1") };
	struct agg_detail d3 = { .code = 202, .sending_ip = W("") };
	struct agg_detail d4 = { .code = 202, .sending_ip = NULL };
	unsigned char h1[PUSH_HASH_LEN], h2[PUSH_HASH_LEN];

	push_policy_hash("x", "v=TLSRPTv1;rua=mailto:a@x", &p1, h1);
	push_policy_hash("x", "v=TLSRPTv1;rua=mailto:a@x", &p2, h2);
	CHECK(memcmp(h1, h2, sizeof(h1)) == 0, "same policy, same key");
	p2.strings = s2;	/* the same bytes split differently */
	push_policy_hash("x", "v=TLSRPTv1;rua=mailto:a@x", &p2, h2);
	CHECK(memcmp(h1, h2, sizeof(h1)) != 0, "policy strings split differently: different keys");
	p2 = p1;
	p2.mx = NULL;
	p2.nmx = 0;
	push_policy_hash("x", "v=TLSRPTv1;rua=mailto:a@x", &p2, h2);
	CHECK(memcmp(h1, h2, sizeof(h1)) != 0, "mx-host dropped: different key");
	push_policy_hash("x", "v=TLSRPTv1;rua=mailto:a@y", &p1, h2);
	CHECK(memcmp(h1, h2, sizeof(h1)) != 0, "another record: different key");
	push_detail_hash(&d1, h1);
	push_detail_hash(&d2, h2);
	CHECK(memcmp(h1, h2, sizeof(h1)) != 0, "a value in another field: different key");
	push_detail_hash(&d3, h1);
	push_detail_hash(&d4, h2);
	CHECK(memcmp(h1, h2, sizeof(h1)) != 0, "empty and absent: different keys");
}

/* agg_add_policy merges like day files: the same key adds up, order is stable */
static void test_agg_add_policy(void)
{
	char *strs[] = { W("version: STSv1") };
	struct agg_detail det = { .code = 204, .sending_ip = W("192.0.2.1"), .count = 2 };
	struct agg_policy p = { .type = 2, .domain = W("a.example"), .strings = strs, .nstrings = 1,
				.successes = 3, .failures = 2, .details = &det, .ndetails = 1 };
	struct agg_policy q = { .type = 9, .domain = W("b.example"), .successes = 1 };
	struct agg *a = agg_new();
	const struct agg_domain *d;

	CHECK(a != NULL, "agg_new");
	CHECK_INT(agg_add_policy(a, "b.example", "rec-b", &q), 0);
	CHECK_INT(agg_add_policy(a, "a.example", "rec-a", &p), 0);
	CHECK_INT(agg_add_policy(a, "a.example", "rec-a", &p), 0);
	CHECK_INT(agg_add_policy(a, "a.example", "rec-a\xff", &q), 0);	/* repaired, own key */
	agg_finish(a);
	CHECK_INT(agg_ndomains(a), 3);
	d = agg_domain(a, 0);
	CHECK_STR(d->domain, "a.example");
	CHECK_STR(d->record, "rec-a");
	CHECK_INT(d->npolicies, 1);
	CHECK_INT(d->successes, 6);
	CHECK_INT(d->failures, 4);
	CHECK_INT(d->policies[0].ndetails, 1);
	CHECK_INT(d->policies[0].details[0].count, 4);
	CHECK_STR(agg_domain(a, 1)->record, "rec-a\xef\xbf\xbd");
	CHECK_STR(agg_domain(a, 2)->domain, "b.example");
	agg_free(a);
	/* a policy without a domain is refused */
	a = agg_new();
	q.domain = NULL;
	CHECK_INT(agg_add_policy(a, "b.example", "rec", &q), -1);
	agg_free(a);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_fleet.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_password();
	test_escaping();
	test_lists();
	test_hashes();
	test_agg_add_policy();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return check_done("test_fleet");
}
