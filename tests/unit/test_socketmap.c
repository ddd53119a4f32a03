/*
 * test_socketmap - netstring framing of the socketmap protocol.
 */
#include <stdlib.h>

#include "check.h"
#include "socketmap.h"

static const char *st_name(enum socketmap_status s)
{
	return s == SOCKETMAP_OK ? "OK" : s == SOCKETMAP_MORE ? "MORE" : "BAD";
}

static void test_parse(void)
{
	static const struct {
		const char *in;
		size_t max;
		const char *want_status;
		const char *want_payload;	/* for OK */
		size_t want_used;
	} t[] = {
		{ "19:postfix example.com,", 10000, "OK", "postfix example.com", 23 },
		{ "0:,", 10000, "OK", "", 3 },
		{ "3:abc,4:defg,", 10000, "OK", "abc", 6 },
		{ "", 10000, "MORE", NULL, 0 },
		{ "1", 10000, "MORE", NULL, 0 },
		{ "19", 10000, "MORE", NULL, 0 },
		{ "19:", 10000, "MORE", NULL, 0 },
		{ "19:postfix example.co", 10000, "MORE", NULL, 0 },
		{ "19:postfix example.com", 10000, "MORE", NULL, 0 },
		{ "19:postfix example.com;", 10000, "BAD", NULL, 0 },
		{ ":abc,", 10000, "BAD", NULL, 0 },
		{ "x:abc,", 10000, "BAD", NULL, 0 },
		{ "03:abc,", 10000, "BAD", NULL, 0 },
		{ "1234567", 10000000, "BAD", NULL, 0 },
		{ "10001:", 10000, "BAD", NULL, 0 },
		{ "10000:", 10000, "MORE", NULL, 0 },
		{ "5 :hello,", 10000, "BAD", NULL, 0 },
		{ "-1:,", 10000, "BAD", NULL, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *p = NULL, *why = NULL;
		size_t plen = 0, used = 0;
		enum socketmap_status s = socketmap_parse(t[i].in, strlen(t[i].in), t[i].max,
							  &p, &plen, &used, &why);

		CHECK(strcmp(st_name(s), t[i].want_status) == 0,
		      "parse \"%s\": got %s, want %s", t[i].in, st_name(s), t[i].want_status);
		if (s == SOCKETMAP_OK && t[i].want_payload) {
			CHECK(plen == strlen(t[i].want_payload) &&
			      memcmp(p, t[i].want_payload, plen) == 0,
			      "parse \"%s\": got payload \"%.*s\", want \"%s\"", t[i].in,
			      (int)plen, p, t[i].want_payload);
			CHECK(used == t[i].want_used, "parse \"%s\": got used %zu, want %zu",
			      t[i].in, used, t[i].want_used);
		}
		if (s == SOCKETMAP_BAD)
			CHECK(why != NULL, "parse \"%s\": no reason", t[i].in);
	}
}

/* Feed a stream of several requests one byte at a time. */
static void test_incremental(void)
{
	const char *stream = "19:postfix example.com,12:postfix .com,22:postfix [192.0.2.1]:25,";
	const char *want[] = { "postfix example.com", "postfix .com", "postfix [192.0.2.1]:25" };
	char acc[256];
	size_t alen = 0, got = 0, len = strlen(stream);

	for (size_t i = 0; i < len; i++) {
		acc[alen++] = stream[i];
		for (;;) {
			const char *p;
			size_t plen, used;
			enum socketmap_status s = socketmap_parse(acc, alen, SOCKETMAP_MAX_QUERY,
								  &p, &plen, &used, NULL);

			CHECK(s != SOCKETMAP_BAD, "byte %zu: got BAD", i);
			if (s != SOCKETMAP_OK)
				break;
			if (got < 3)
				CHECK(plen == strlen(want[got]) && memcmp(p, want[got], plen) == 0,
				      "request %zu: got \"%.*s\", want \"%s\"", got, (int)plen, p,
				      want[got]);
			got++;
			memmove(acc, acc + used, alen - used);
			alen -= used;
		}
	}
	CHECK_INT(got, 3);
	CHECK_INT(alen, 0);
}

static void test_split(void)
{
	static const struct {
		const char *in;
		int rc;
		const char *name, *key;
	} t[] = {
		{ "postfix example.com", 0, "postfix", "example.com" },
		{ "postfix a b", 0, "postfix", "a b" },
		{ "postfix ", -1, NULL, NULL },
		{ " example.com", -1, NULL, NULL },
		{ "postfix", -1, NULL, NULL },
		{ "", -1, NULL, NULL },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *n = NULL, *k = NULL;
		size_t nl = 0, kl = 0;
		int rc = socketmap_split(t[i].in, strlen(t[i].in), &n, &nl, &k, &kl);

		CHECK(rc == t[i].rc, "split \"%s\": got %d, want %d", t[i].in, rc, t[i].rc);
		if (rc == 0) {
			CHECK(nl == strlen(t[i].name) && memcmp(n, t[i].name, nl) == 0,
			      "split \"%s\": got name \"%.*s\", want \"%s\"", t[i].in, (int)nl, n,
			      t[i].name);
			CHECK(kl == strlen(t[i].key) && memcmp(k, t[i].key, kl) == 0,
			      "split \"%s\": got key \"%.*s\", want \"%s\"", t[i].in, (int)kl, k,
			      t[i].key);
		}
	}
}

static void test_reply(void)
{
	struct buf b;
	char *big;
	int rc;

	buf_init(&b, 1 << 20);
	CHECK_INT(socketmap_reply(&b, "NOTFOUND", NULL, 0), 0);
	CHECK_STR(b.data, "9:NOTFOUND ,");
	buf_reset(&b);
	CHECK_INT(socketmap_reply(&b, "OK", "secure match=a.example", 22), 0);
	CHECK_STR(b.data, "25:OK secure match=a.example,");
	buf_reset(&b);
	CHECK_INT(socketmap_reply(&b, "TEMP", "busy", 4), 0);
	CHECK_STR(b.data, "9:TEMP busy,");

	/* 100000 bytes of payload is the limit: "OK " + 99997 fits, one more does not */
	big = malloc(100000);
	memset(big, 'x', 100000);
	buf_reset(&b);
	rc = socketmap_reply(&b, "OK", big, 99997);
	CHECK_INT(rc, 0);
	CHECK_INT(b.len, 100000 + 8);
	buf_reset(&b);
	CHECK_INT(socketmap_reply(&b, "OK", big, 99998), -1);
	CHECK_INT(b.len, 0);
	free(big);

	/* a refused append leaves the buffer as it was */
	buf_free(&b);
	buf_init(&b, 10);
	buf_adds(&b, "abc");
	CHECK_INT(socketmap_reply(&b, "OK", "0123456789", 10), -1);
	CHECK_STR(b.data, "abc");
	buf_free(&b);
}

int main(void)
{
	test_parse();
	test_incremental();
	test_split();
	test_reply();
	return check_done("test_socketmap");
}
