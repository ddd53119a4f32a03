/*
 * test_dane - lib/dane: the bounded MX/TLSA reply parser (rcode, AD bit,
 * TTLs, malformed replies), TLSA usability and formatting, the destination
 * key forms, and the verdict cache (TTL, eviction). Replies are built here
 * byte by byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "dane.h"
#include "dane_rr.h"

#define T_A 1
#define T_CNAME 5
#define T_SOA 6
#define T_MX 15
#define T_TLSA 52
#define F_QR 0x8000
#define F_AD 0x0020

struct msg {
	unsigned char b[8192];
	size_t n;
};

static void put8(struct msg *m, unsigned v)
{
	m->b[m->n++] = (unsigned char)v;
}

static void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 255);
}

static void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

static void putname(struct msg *m, const char *name)
{
	const char *p = name;

	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		put8(m, (unsigned)n);
		memcpy(m->b + m->n, p, n);
		m->n += n;
		p += n + (dot ? 1 : 0);
	}
	put8(m, 0);
}

/* header + question */
static void start(struct msg *m, unsigned flags, const char *qname, unsigned qtype,
		  unsigned an, unsigned ns)
{
	m->n = 0;
	put16(m, 0x1234);
	put16(m, flags);
	put16(m, 1);
	put16(m, an);
	put16(m, ns);
	put16(m, 0);
	putname(m, qname);
	put16(m, qtype);
	put16(m, 1);
}

static void rr_head(struct msg *m, const char *owner, unsigned type, uint32_t ttl, unsigned rdlen)
{
	putname(m, owner);
	put16(m, type);
	put16(m, 1);
	put32(m, ttl);
	put16(m, rdlen);
}

static void rr_mx(struct msg *m, const char *owner, uint32_t ttl, unsigned pref, const char *host)
{
	struct msg tmp = { .n = 0 };

	putname(&tmp, host);
	rr_head(m, owner, T_MX, ttl, (unsigned)tmp.n + 2);
	put16(m, pref);
	memcpy(m->b + m->n, tmp.b, tmp.n);
	m->n += tmp.n;
}

static void rr_tlsa(struct msg *m, const char *owner, uint32_t ttl, unsigned u, unsigned s,
		    unsigned mt, size_t dlen, unsigned fill)
{
	rr_head(m, owner, T_TLSA, ttl, (unsigned)(3 + dlen));
	put8(m, u);
	put8(m, s);
	put8(m, mt);
	for (size_t i = 0; i < dlen; i++)
		put8(m, (fill + i) & 255);
}

static void rr_soa(struct msg *m, const char *owner, uint32_t ttl, uint32_t minimum)
{
	rr_head(m, owner, T_SOA, ttl, 1 + 1 + 20);
	put8(m, 0);	/* mname "." */
	put8(m, 0);	/* rname "." */
	put32(m, 1);
	put32(m, 2);
	put32(m, 3);
	put32(m, 4);
	put32(m, minimum);
}

static void test_mx(void)
{
	struct msg m;
	struct dane_mx mx;
	struct dane_reply r;

	/* two hosts out of order, AD set: sorted, min TTL */
	start(&m, F_QR | F_AD, "example.com", T_MX, 3, 0);
	rr_mx(&m, "example.com", 3600, 20, "MX2.Example.com");
	rr_mx(&m, "example.com", 600, 10, "mx1.example.com.");
	rr_head(&m, "example.com", T_A, 5, 4);
	put32(&m, 0x7f000001);
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_OK);
	CHECK_INT(mx.n, 2);
	CHECK_STR(mx.host[0], "mx1.example.com");
	CHECK_STR(mx.host[1], "mx2.example.com");
	CHECK_INT(r.secure, 1);
	CHECK_INT(r.ttl, 600);	/* the A record is not an MX: its TTL does not count */

	/* same without AD; question name case and trailing dot ignored */
	start(&m, F_QR, "EXAMPLE.com.", T_MX, 1, 0);
	rr_mx(&m, "example.com", 5, 10, "mx1.example.com");
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_OK);
	CHECK_INT(r.secure, 0);
	CHECK_INT(r.ttl, DANE_MIN_TTL);	/* clamped */

	/* null MX (RFC 7505) */
	start(&m, F_QR | F_AD, "example.com", T_MX, 1, 0);
	rr_mx(&m, "example.com", 300, 0, "");
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_OK);
	CHECK_INT(mx.n, 0);

	/* NODATA with an SOA: negative TTL = min(SOA TTL, MINIMUM) */
	start(&m, F_QR | F_AD, "example.com", T_MX, 0, 1);
	rr_soa(&m, "example.com", 900, 120);
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_NODATA);
	CHECK_INT(r.ttl, 120);
	CHECK_INT(r.secure, 1);

	/* NXDOMAIN without SOA: the default negative TTL */
	start(&m, F_QR | 3, "example.com", T_MX, 0, 0);
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_NXDOMAIN);
	CHECK_INT(r.ttl, DANE_NEG_TTL);

	/* SERVFAIL (a validating resolver's answer to bogus data), REFUSED */
	start(&m, F_QR | 2, "example.com", T_MX, 0, 0);
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_SERVFAIL);
	start(&m, F_QR | 5, "example.com", T_MX, 0, 0);
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_REFUSED);

	/* not an answer to our question */
	start(&m, F_QR | F_AD, "other.com", T_MX, 1, 0);
	rr_mx(&m, "other.com", 300, 10, "mx.other.com");
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_MALFORMED);
	start(&m, F_QR | F_AD, "example.com", T_TLSA, 0, 0);
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_MALFORMED);
	start(&m, F_AD, "example.com", T_MX, 0, 0);	/* QR clear: a query */
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_MALFORMED);

	/* cut anywhere: malformed, never a read past the end */
	start(&m, F_QR | F_AD, "example.com", T_MX, 1, 0);
	rr_mx(&m, "example.com", 300, 10, "mx1.example.com");
	for (size_t cut = 0; cut < m.n; cut++)
		CHECK(dane_rr_mx(m.b, cut, "example.com", &mx, &r) == DANE_RR_MALFORMED,
		      "cut at %zu of %zu: want malformed", cut, m.n);

	/* an MX name that runs past its rdata: that record skipped */
	start(&m, F_QR | F_AD, "example.com", T_MX, 2, 0);
	rr_head(&m, "example.com", T_MX, 300, 4);
	put16(&m, 10);
	put8(&m, 5);
	put8(&m, 'a');
	rr_mx(&m, "example.com", 300, 10, "good.example.com");
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_OK);
	CHECK_INT(mx.n, 1);
	CHECK_INT(r.skipped, 1);
	CHECK_STR(mx.host[0], "good.example.com");
	/* a name that ends before its rdata does */
	start(&m, F_QR | F_AD, "example.com", T_MX, 2, 0);
	rr_head(&m, "example.com", T_MX, 300, 2 + 5 + 2);
	put16(&m, 10);
	putname(&m, "a.b");	/* 5 bytes + 2 junk bytes inside the rdata */
	put16(&m, 0);
	rr_mx(&m, "example.com", 300, 20, "good.example.com");
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_OK);
	CHECK_INT(mx.n, 1);
	CHECK_INT(r.skipped, 1);
	CHECK_STR(mx.host[0], "good.example.com");

	/* a host name we would not look up */
	start(&m, F_QR | F_AD, "example.com", T_MX, 1, 0);
	rr_mx(&m, "example.com", 300, 10, "bad host.example.com");
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_OK);
	CHECK_INT(mx.n, 0);
	CHECK_INT(r.skipped, 1);

	/* more than DANE_MAX_MX */
	start(&m, F_QR | F_AD, "example.com", T_MX, DANE_MAX_MX + 2, 0);
	for (unsigned i = 0; i < DANE_MAX_MX + 2; i++) {
		char h[64];

		snprintf(h, sizeof(h), "mx%u.example.com", i);
		rr_mx(&m, "example.com", 300, 100 - i, h);
	}
	CHECK_INT(dane_rr_mx(m.b, m.n, "example.com", &mx, &r), DANE_RR_OK);
	CHECK_INT(mx.n, DANE_MAX_MX);
	CHECK_INT(r.truncated, 1);
	CHECK_INT(mx.pref[0] <= mx.pref[1], 1);
}

static void test_tlsa(void)
{
	struct msg m;
	static struct dane_tlsa t;
	struct dane_reply r;
	char s[5000];
	const char *q = "_25._tcp.mx.example.com";

	/* through a CNAME: the CNAME's TTL counts */
	start(&m, F_QR | F_AD, q, T_TLSA, 5, 0);
	rr_head(&m, q, T_CNAME, 50, 0);
	m.n -= 2;
	{
		struct msg tmp = { .n = 0 };

		putname(&tmp, "_25._tcp.other.example.com");
		put16(&m, (unsigned)tmp.n);
		memcpy(m.b + m.n, tmp.b, tmp.n);
		m.n += tmp.n;
	}
	rr_tlsa(&m, "_25._tcp.other.example.com", 3600, 3, 1, 1, 32, 0xa0);	/* usable */
	rr_tlsa(&m, "_25._tcp.other.example.com", 3600, 3, 1, 1, 2, 1);	/* short digest */
	rr_tlsa(&m, "_25._tcp.other.example.com", 3600, 1, 0, 1, 32, 0);	/* PKIX-EE */
	rr_tlsa(&m, "_25._tcp.other.example.com", 3600, 2, 0, 2, 64, 0);	/* DANE-TA sha512 */
	CHECK_INT(dane_rr_tlsa(m.b, m.n, q, &t, &r), DANE_RR_OK);
	CHECK_INT(t.n, 4);
	CHECK_INT(r.ttl, 50);
	CHECK_INT(r.secure, 1);
	CHECK_INT(dane_tlsa_usable(&t.rr[0]), 1);
	CHECK_INT(dane_tlsa_usable(&t.rr[1]), 0);
	CHECK_INT(dane_tlsa_usable(&t.rr[2]), 0);
	CHECK_INT(dane_tlsa_usable(&t.rr[3]), 1);
	CHECK_INT(dane_tlsa_format(&t.rr[1], s, sizeof(s)), 10);
	CHECK_STR(s, "3 1 1 0102");
	dane_tlsa_format(&t.rr[0], s, sizeof(s));
	CHECK_STR(s, "3 1 1 A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF");
	CHECK_INT(dane_tlsa_format(&t.rr[0], s, 20), 0);	/* too small: nothing */
	CHECK_STR(s, "");

	/* more usability: selector 2, mtype 3, mtype 0 */
	{
		struct dane_tlsa_rr x = { .usage = 3, .selector = 2, .mtype = 1, .len = 32 };

		CHECK_INT(dane_tlsa_usable(&x), 0);
		x.selector = 0;
		x.mtype = 3;
		CHECK_INT(dane_tlsa_usable(&x), 0);
		x.mtype = 0;
		x.len = 300;
		CHECK_INT(dane_tlsa_usable(&x), 1);
		x.usage = 0;
		CHECK_INT(dane_tlsa_usable(&x), 0);
	}

	/* data too long for us, or empty: skipped; only such records: NODATA */
	start(&m, F_QR | F_AD, q, T_TLSA, 2, 0);
	rr_tlsa(&m, q, 300, 3, 0, 0, DANE_TLSA_DATA_MAX + 1, 0);
	rr_tlsa(&m, q, 300, 3, 1, 1, 0, 0);
	CHECK_INT(dane_rr_tlsa(m.b, m.n, q, &t, &r), DANE_RR_NODATA);
	CHECK_INT(r.skipped, 2);

	/* unsigned answer: parsed, not secure */
	start(&m, F_QR, q, T_TLSA, 1, 0);
	rr_tlsa(&m, q, 300, 3, 1, 1, 32, 0);
	CHECK_INT(dane_rr_tlsa(m.b, m.n, q, &t, &r), DANE_RR_OK);
	CHECK_INT(r.secure, 0);

	/* the longest kept */
	start(&m, F_QR | F_AD, q, T_TLSA, 1, 0);
	rr_tlsa(&m, q, 300, 3, 0, 0, DANE_TLSA_DATA_MAX, 7);
	CHECK_INT(dane_rr_tlsa(m.b, m.n, q, &t, &r), DANE_RR_OK);
	CHECK_INT(t.rr[0].len, DANE_TLSA_DATA_MAX);
	CHECK_INT(dane_tlsa_format(&t.rr[0], s, sizeof(s)), 6 + 2 * DANE_TLSA_DATA_MAX);
}

static void rr_cname(struct msg *m, const char *owner, uint32_t ttl, const char *target)
{
	struct msg tmp = { .n = 0 };

	putname(&tmp, target);
	rr_head(m, owner, T_CNAME, ttl, (unsigned)tmp.n);
	memcpy(m->b + m->n, tmp.b, tmp.n);
	m->n += tmp.n;
}

static void test_addr(void)
{
	struct msg m;
	struct dane_reply r;
	char t[DANE_HOST_MAX + 1];

	/* no CNAME: the name itself */
	start(&m, F_QR | F_AD, "mx.example.com", T_A, 1, 0);
	rr_head(&m, "mx.example.com", T_A, 300, 4);
	put32(&m, 0x7f000001);
	CHECK_INT(dane_rr_addr(m.b, m.n, "mx.example.com", T_A, t, sizeof(t), &r), DANE_RR_OK);
	CHECK_STR(t, "mx.example.com");
	CHECK_INT(r.secure, 1);

	/* a chain of two, in any order in the answer: its end */
	start(&m, F_QR | F_AD, "mail.example.com", T_A, 3, 0);
	rr_cname(&m, "mx.provider.net", 100, "Host.Provider.NET");
	rr_cname(&m, "mail.example.com", 200, "mx.provider.net");
	rr_head(&m, "host.provider.net", T_A, 300, 4);
	put32(&m, 0x7f000001);
	CHECK_INT(dane_rr_addr(m.b, m.n, "mail.example.com", T_A, t, sizeof(t), &r), DANE_RR_OK);
	CHECK_STR(t, "host.provider.net");
	CHECK_INT(r.ttl, 100);

	/* NODATA at the end of a chain: still expanded */
	start(&m, F_QR | F_AD, "mail.example.com", T_A, 1, 0);
	rr_cname(&m, "mail.example.com", 200, "v6only.example.net");
	CHECK_INT(dane_rr_addr(m.b, m.n, "mail.example.com", T_A, t, sizeof(t), &r),
		  DANE_RR_NODATA);
	CHECK_STR(t, "v6only.example.net");

	/* a loop stops after 8 links; a target we would not look up: malformed */
	start(&m, F_QR | F_AD, "a.example", T_A, 2, 0);
	rr_cname(&m, "a.example", 60, "b.example");
	rr_cname(&m, "b.example", 60, "a.example");
	CHECK_INT(dane_rr_addr(m.b, m.n, "a.example", T_A, t, sizeof(t), &r), DANE_RR_NODATA);
	CHECK_STR(t, "a.example");
	start(&m, F_QR | F_AD, "a.example", T_A, 1, 0);
	rr_cname(&m, "a.example", 60, "bad name.example");
	CHECK_INT(dane_rr_addr(m.b, m.n, "a.example", T_A, t, sizeof(t), &r), DANE_RR_MALFORMED);
	/* too small for the target */
	start(&m, F_QR | F_AD, "a.example", T_A, 1, 0);
	rr_cname(&m, "a.example", 60, "a-much-longer-name.example");
	CHECK_INT(dane_rr_addr(m.b, m.n, "a.example", T_A, t, 10, &r), DANE_RR_MALFORMED);
	/* SERVFAIL: the name itself */
	start(&m, F_QR | 2, "a.example", T_A, 0, 0);
	CHECK_INT(dane_rr_addr(m.b, m.n, "a.example", T_A, t, sizeof(t), &r), DANE_RR_SERVFAIL);
	CHECK_STR(t, "a.example");
}

static void test_dest(void)
{
	static const struct {
		const char *key;
		int rc;
		const char *domain, *canon;
		unsigned port;
		bool mx;
	} cases[] = {
		{ "example.com", 0, "example.com", "example.com", 25, true },
		{ "Example.COM.", 0, "example.com", "example.com", 25, true },
		{ "example.com:25", 0, "example.com", "example.com", 25, true },
		{ "example.com:587", 0, "example.com", "example.com:587", 587, true },
		{ "[example.com]", 0, "example.com", "[example.com]", 25, false },
		{ "[Relay.Example.com]:587", 0, "relay.example.com", "[relay.example.com]:587", 587,
		  false },
		{ "[relay.example.com.]:25", 0, "relay.example.com", "[relay.example.com]", 25,
		  false },
		{ ".example.com", -1, NULL, NULL, 0, false },
		{ "[192.0.2.1]", -1, NULL, NULL, 0, false },
		{ "[192.0.2.1]:25", -1, NULL, NULL, 0, false },
		{ "192.0.2.1", -1, NULL, NULL, 0, false },
		{ "[ipv6:2001:db8::1]", -1, NULL, NULL, 0, false },
		{ "localhost", -1, NULL, NULL, 0, false },
		{ "example.com:", -1, NULL, NULL, 0, false },
		{ "example.com:0", -1, NULL, NULL, 0, false },
		{ "example.com:025", -1, NULL, NULL, 0, false },
		{ "example.com:65536", -1, NULL, NULL, 0, false },
		{ "example.com:smtp", -1, NULL, NULL, 0, false },
		{ "[example.com", -1, NULL, NULL, 0, false },
		{ "[example.com]x", -1, NULL, NULL, 0, false },
		{ "[example.com]:", -1, NULL, NULL, 0, false },
		{ "ex ample.com", -1, NULL, NULL, 0, false },
		{ "example.com:25:25", -1, NULL, NULL, 0, false },
		{ "-x.example.com", -1, NULL, NULL, 0, false },
		{ "", -1, NULL, NULL, 0, false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dane_dest d;
		int rc = dane_dest_parse(cases[i].key, strlen(cases[i].key), &d);

		CHECK(rc == cases[i].rc, "%s: got %d, want %d", cases[i].key, rc, cases[i].rc);
		if (rc == 0 && cases[i].rc == 0) {
			CHECK(strcmp(d.domain, cases[i].domain) == 0, "%s: domain got %s, want %s",
			      cases[i].key, d.domain, cases[i].domain);
			CHECK(strcmp(d.key, cases[i].canon) == 0, "%s: key got %s, want %s",
			      cases[i].key, d.key, cases[i].canon);
			CHECK(d.port == cases[i].port, "%s: port got %u, want %u", cases[i].key,
			      d.port, cases[i].port);
			CHECK(d.mx == cases[i].mx, "%s: mx got %d, want %d", cases[i].key, d.mx,
			      cases[i].mx);
		}
	}
}

static void test_cache(void)
{
	struct dane_cache *c = dane_cache_new(3);
	struct dane_result r = { .verdict = DANE_USABLE, .ttl = 100 }, got;
	char key[32];

	CHECK(c != NULL, "dane_cache_new");
	CHECK_INT(dane_cache_get(c, "a.test", 1000, &got), 0);
	CHECK_INT(dane_cache_put(c, "a.test", 1000, &r), 0);
	CHECK_INT(dane_cache_get(c, "a.test", 1099, &got), 1);
	CHECK_INT(got.verdict, DANE_USABLE);
	CHECK_INT(dane_cache_get(c, "a.test", 1100, &got), 2);	/* expired, still known */
	r.verdict = DANE_NONE;
	CHECK_INT(dane_cache_put(c, "a.test", 1100, &r), 0);	/* replaced */
	CHECK_INT(dane_cache_get(c, "a.test", 1101, &got), 1);
	CHECK_INT(got.verdict, DANE_NONE);
	CHECK_INT(dane_cache_count(c), 1);
	/* full: an expired entry goes first, then the one expiring first */
	r.ttl = 10;
	dane_cache_put(c, "b.test", 1100, &r);	/* expires 1110 */
	r.ttl = 500;
	dane_cache_put(c, "c.test", 1100, &r);
	dane_cache_put(c, "d.test", 1200, &r);	/* b expired: b goes */
	CHECK_INT(dane_cache_count(c), 3);
	CHECK_INT(dane_cache_get(c, "b.test", 1200, &got), 0);
	CHECK_INT(dane_cache_get(c, "a.test", 1150, &got), 1);
	dane_cache_put(c, "e.test", 1150, &r);	/* none expired: a (1200) goes */
	CHECK_INT(dane_cache_get(c, "a.test", 1150, &got), 0);
	CHECK_INT(dane_cache_get(c, "c.test", 1150, &got), 1);
	CHECK_INT(dane_cache_get(c, "e.test", 1150, &got), 1);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d.test", i);
		dane_cache_put(c, key, 2000 + i, &r);
	}
	CHECK_INT(dane_cache_count(c), 3);
	dane_cache_free(c);
}

int main(void)
{
	test_mx();
	test_tlsa();
	test_addr();
	test_dest();
	test_cache();
	return check_done("test_dane");
}
