/*
 * dane - DANE verdicts for next-hop destinations, cached. See dane.h.
 *
 * SECURITY: keys come from Postfix's socketmap requests (any process that
 * reaches the socket): parsed strictly, bounded. DNS replies are parsed by
 * dane_rr (bounded). Only the AD bit of the configured resolver counts as
 * DNSSEC validation.
 */
#include "dane.h"

#include <arpa/nameser.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

const char *dane_verdict_name(enum dane_verdict v)
{
	switch (v) {
	case DANE_NONE:
		return "none";
	case DANE_USABLE:
		return "usable";
	case DANE_UNUSABLE:
		return "unusable";
	case DANE_FAILED:
		return "failed";
	case DANE_UNKNOWN:
		return "unknown";
	}
	return "?";
}

/* ---- keys ---- */

/* A host name with a dot, lower-cased; not an address literal. */
static int dest_domain(const char *p, size_t len, char *out, size_t outsz)
{
	size_t label = 0, dots = 0;
	bool alpha = false;

	if (len > 0 && p[len - 1] == '.')
		len--;
	if (len == 0 || len > DANE_HOST_MAX || len >= outsz)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0 || out[i - 1] == '-')
				return -1;
			label = 0;
			dots++;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   (c == '-' && label > 0)) {
			if (++label > 63)
				return -1;
			if (c >= 'a' && c <= 'z')
				alpha = true;
		} else {
			return -1;
		}
		out[i] = c;
	}
	out[len] = '\0';
	/* "1.2.3.4" is an address, not a domain: a TLD has a letter */
	if (label == 0 || out[len - 1] == '-' || dots == 0 || !alpha)
		return -1;
	for (size_t i = len; i > 0 && out[i - 1] != '.'; i--)
		if (out[i - 1] >= 'a' && out[i - 1] <= 'z')
			return 0;
	return -1;
}

int dane_dest_parse(const char *key, size_t len, struct dane_dest *out)
{
	const char *host = key, *colon = NULL;
	size_t hlen = len;
	unsigned long port = 25;

	memset(out, 0, sizeof(*out));
	out->mx = true;
	if (len == 0 || len > DANE_KEY_MAX)
		return -1;
	if (key[0] == '[') {
		const char *close = memchr(key, ']', len);

		if (close == NULL)
			return -1;
		host = key + 1;
		hlen = (size_t)(close - host);
		out->mx = false;
		if (close + 1 < key + len) {
			if (close[1] != ':')
				return -1;
			colon = close + 1;
		}
	} else {
		colon = memchr(key, ':', len);
		if (colon)
			hlen = (size_t)(colon - key);
	}
	if (colon) {
		const char *p = colon + 1, *end = key + len;

		if (p == end || end - p > 5 || *p == '0')
			return -1;
		port = 0;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			port = port * 10 + (unsigned long)(*p - '0');
		}
		if (port == 0 || port > 65535)
			return -1;
	}
	if (dest_domain(host, hlen, out->domain, sizeof(out->domain)) < 0)
		return -1;
	out->port = (uint16_t)port;
	/* ":25" is the default: one key (and one cache entry) for both forms */
	if (out->mx)
		snprintf(out->key, sizeof(out->key), port != 25 ? "%s:%u" : "%s", out->domain,
			 (unsigned)out->port);
	else
		snprintf(out->key, sizeof(out->key), port != 25 ? "[%s]:%u" : "[%s]", out->domain,
			 (unsigned)out->port);
	return 0;
}

/* ---- lookups ---- */

struct query {
	unsigned char *ans;
	size_t len;
	char err[256];
};

static enum dane_rr_status ask(const char *resolver, const char *name, int type,
			       struct query *q)
{
	if (dns_query(name, type, resolver, q->ans, DNS_ANSWER_MAX, &q->len, q->err,
		      sizeof(q->err)) != DNS_OK)
		return DANE_RR_SERVFAIL;
	return DANE_RR_OK;
}

__attribute__((format(printf, 2, 3)))
static void why(struct dane_result *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->why, sizeof(out->why), fmt, ap);
	va_end(ap);
}

static uint32_t min_ttl(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

enum host_tlsa { HOST_NONE, HOST_DANE, HOST_UNUSABLE, HOST_FAILED };

/*
 * One host (RFC 7672 2.2.2, 2.2.3, as Postfix does it): its address records
 * must come from a signed zone (else no DANE, and no TLSA lookup); the TLSA
 * base domain is the end of a (secure) CNAME chain first, then the name as
 * given. 'base' gets the base domain of a secure TLSA RRset; '*ttl' is
 * lowered to the TTLs seen. A host whose address lookup fails is skipped:
 * Postfix cannot reach it either.
 */
static enum host_tlsa host_tlsa(const char *resolver, const char *host, unsigned port,
				struct query *q, struct dane_tlsa *tlsa, uint32_t *ttl,
				char *base, size_t basesz)
{
	char expanded[DANE_HOST_MAX + 1];
	const char *cand[2];
	size_t ncand = 0;
	struct dane_reply r;
	enum dane_rr_status st = ask(resolver, host, ns_t_a, q);

	base[0] = '\0';
	if (st == DANE_RR_OK)
		st = dane_rr_addr(q->ans, q->len, host, ns_t_a, expanded, sizeof(expanded), &r);
	if (st != DANE_RR_OK && st != DANE_RR_NODATA && st != DANE_RR_NXDOMAIN) {
		*ttl = min_ttl(*ttl, DANE_FAIL_TTL);
		return HOST_NONE;
	}
	*ttl = min_ttl(*ttl, r.ttl);
	if (st == DANE_RR_NXDOMAIN || !r.secure)
		return HOST_NONE;	/* no such host, or an unsigned zone */
	if (strcmp(expanded, host) != 0)
		cand[ncand++] = expanded;
	cand[ncand++] = host;
	for (size_t c = 0; c < ncand; c++) {
		char name[DANE_HOST_MAX + 16];
		size_t usable = 0;

		snprintf(name, sizeof(name), "_%u._tcp.%s", port, cand[c]);
		st = ask(resolver, name, ns_t_tlsa, q);
		if (st == DANE_RR_OK)
			st = dane_rr_tlsa(q->ans, q->len, name, tlsa, &r);
		if (st == DANE_RR_OK && r.secure) {
			*ttl = min_ttl(*ttl, r.ttl);
			snprintf(base, basesz, "%s", cand[c]);
			for (size_t k = 0; k < tlsa->n; k++)
				usable += dane_tlsa_usable(&tlsa->rr[k]);
			return usable ? HOST_DANE : HOST_UNUSABLE;
		}
		if (st != DANE_RR_OK && st != DANE_RR_NODATA && st != DANE_RR_NXDOMAIN) {
			*ttl = min_ttl(*ttl, DANE_FAIL_TTL);
			return HOST_FAILED;	/* bogus or no answer: must not be bypassed */
		}
		*ttl = min_ttl(*ttl, r.ttl);	/* no (secure) TLSA here: next candidate */
	}
	return HOST_NONE;
}

enum dane_rr_status dane_host_tlsa(const char *resolver, const char *host, unsigned port,
				   struct dane_tlsa *out, struct dane_reply *r, char *base,
				   size_t basesz)
{
	struct query q;
	struct dane_reply rr;
	uint32_t ttl = DANE_MAX_TTL;
	enum host_tlsa ht;

	out->n = 0;
	if (r == NULL)
		r = &rr;
	memset(r, 0, sizeof(*r));
	base[0] = '\0';
	q.ans = malloc(DNS_ANSWER_MAX);
	if (q.ans == NULL)
		return DANE_RR_SERVFAIL;
	ht = host_tlsa(resolver, host, port, &q, out, &ttl, base, basesz);
	free(q.ans);
	r->ttl = ttl;
	r->secure = ht == HOST_DANE || ht == HOST_UNUSABLE;
	if (ht == HOST_FAILED)
		return DANE_RR_SERVFAIL;
	if (!r->secure) {
		out->n = 0;
		return DANE_RR_NODATA;
	}
	return DANE_RR_OK;
}

void dane_check(const char *resolver, const struct dane_dest *d, struct dane_result *out)
{
	struct query q;
	struct dane_mx *mx = NULL;
	struct dane_tlsa *tlsa = NULL;
	struct dane_reply r;
	enum dane_rr_status st;
	size_t nhosts = 0, failed = 0, unusable = 0;
	char fail_host[DANE_HOST_MAX + 1] = "", dane_host[DANE_HOST_MAX + 1] = "";
	char base[DANE_HOST_MAX + 1];
	uint32_t ttl = DANE_MAX_TTL;

	memset(out, 0, sizeof(*out));
	out->verdict = DANE_UNKNOWN;
	out->ttl = DANE_FAIL_TTL;
	q.ans = malloc(DNS_ANSWER_MAX);
	mx = malloc(sizeof(*mx));
	tlsa = malloc(sizeof(*tlsa));
	if (q.ans == NULL || mx == NULL || tlsa == NULL) {
		why(out, "out of memory");
		goto done;
	}
	mx->n = 0;
	if (d->mx) {
		st = ask(resolver, d->domain, ns_t_mx, &q);
		if (st == DANE_RR_OK)
			st = dane_rr_mx(q.ans, q.len, d->domain, mx, &r);
		else
			why(out, "MX lookup: %s", q.err);
		switch (st) {
		case DANE_RR_OK:
			if (!r.secure) {
				out->verdict = DANE_NONE;
				out->ttl = r.ttl;
				why(out, "MX of %s not DNSSEC-validated", d->domain);
				goto done;
			}
			if (mx->n == 0) {
				out->verdict = DANE_NONE;
				out->ttl = r.ttl;
				why(out, "null MX for %s", d->domain);
				goto done;
			}
			ttl = r.ttl;
			nhosts = mx->n;
			break;
		case DANE_RR_NODATA:
			if (!r.secure) {
				out->verdict = DANE_NONE;
				out->ttl = r.ttl;
				why(out, "no MX for %s, not DNSSEC-validated", d->domain);
				goto done;
			}
			/* RFC 7672 2.2.2: the domain itself is the host */
			ttl = r.ttl;
			snprintf(mx->host[0], sizeof(mx->host[0]), "%s", d->domain);
			nhosts = 1;
			break;
		case DANE_RR_NXDOMAIN:
			out->verdict = DANE_NONE;
			out->ttl = r.ttl;
			why(out, "%s: no such domain", d->domain);
			goto done;
		default:
			if (st != DANE_RR_SERVFAIL || out->why[0] == '\0')
				why(out, "MX lookup for %s: %s", d->domain, dane_rr_status_name(st));
			goto done;	/* DANE_UNKNOWN */
		}
	} else {
		snprintf(mx->host[0], sizeof(mx->host[0]), "%s", d->domain);
		nhosts = 1;
	}
	out->hosts = nhosts;
	for (size_t i = 0; i < nhosts; i++) {
		enum host_tlsa ht = host_tlsa(resolver, mx->host[i], d->port, &q, tlsa, &ttl,
					      base, sizeof(base));

		if (ht == HOST_DANE) {
			if (out->dane_hosts++ == 0)
				snprintf(dane_host, sizeof(dane_host), "%s", base);
		} else if (ht == HOST_UNUSABLE) {
			unusable++;
		} else if (ht == HOST_FAILED) {
			if (failed++ == 0)
				snprintf(fail_host, sizeof(fail_host), "%s", mx->host[i]);
		}
	}
	out->ttl = ttl;
	if (out->dane_hosts) {
		out->verdict = DANE_USABLE;
		why(out, "%zu of %zu hosts with usable TLSA records (%s)", out->dane_hosts,
		    nhosts, dane_host);
	} else if (failed) {
		out->verdict = DANE_FAILED;
		snprintf(out->fail_host, sizeof(out->fail_host), "%s", fail_host);
		why(out, "TLSA lookup failed for %s (DNSSEC bogus or no answer)", fail_host);
	} else if (unusable) {
		out->verdict = DANE_UNUSABLE;
		why(out, "%zu hosts with only unusable TLSA records", unusable);
	} else {
		out->verdict = DANE_NONE;
		why(out, "no DNSSEC-validated TLSA records for %zu hosts", nhosts);
	}
done:
	if (out->verdict == DANE_FAILED || out->verdict == DANE_UNKNOWN)
		out->ttl = min_ttl(out->ttl, DANE_FAIL_TTL);
	if (out->ttl < DANE_MIN_TTL)
		out->ttl = DANE_MIN_TTL;
	free(q.ans);
	free(mx);
	free(tlsa);
}

/* ---- cache ---- */

#define SCAN 16		/* buckets looked at to evict one entry */

struct centry {
	struct centry *next;
	int64_t expires;
	struct dane_result r;
	char key[DANE_KEY_MAX + 1];
};

struct dane_cache {
	pthread_mutex_t lock;
	struct centry **bucket;
	size_t nbuckets, count, max;
};

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct dane_cache *dane_cache_new(size_t max)
{
	struct dane_cache *c = calloc(1, sizeof(*c));
	size_t nb = 64;

	if (c == NULL)
		return NULL;
	if (max == 0)
		max = 1;
	while (nb < max && nb < ((size_t)1 << 24))
		nb <<= 1;
	c->bucket = calloc(nb, sizeof(*c->bucket));
	if (c->bucket == NULL) {
		free(c);
		return NULL;
	}
	c->nbuckets = nb;
	c->max = max;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void dane_cache_free(struct dane_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nbuckets; i++)
		while (c->bucket[i]) {
			struct centry *e = c->bucket[i];

			c->bucket[i] = e->next;
			free(e);
		}
	free(c->bucket);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int dane_cache_get(struct dane_cache *c, const char *key, int64_t now, struct dane_result *out)
{
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	for (struct centry *e = c->bucket[hash(key) & (c->nbuckets - 1)]; e; e = e->next)
		if (strcmp(e->key, key) == 0) {
			*out = e->r;
			out->expires = e->expires;
			rc = now < e->expires ? 1 : 2;
			break;
		}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Forget one entry near bucket 'start': the first expired one, else the
 * one that expires first among SCAN buckets (or more, until one is found).
 * Locked. */
static void evict(struct dane_cache *c, size_t start, int64_t now)
{
	struct centry **victim = NULL, *e;

	for (size_t k = 0; k < c->nbuckets && (k < SCAN || victim == NULL); k++) {
		for (struct centry **pp = &c->bucket[(start + k) & (c->nbuckets - 1)]; *pp;
		     pp = &(*pp)->next) {
			if (victim == NULL || (*pp)->expires < (*victim)->expires)
				victim = pp;
			if ((*pp)->expires <= now)
				break;
		}
		if (victim && (*victim)->expires <= now)
			break;
	}
	if (victim == NULL)
		return;
	e = *victim;
	*victim = e->next;
	free(e);
	c->count--;
}

int dane_cache_put(struct dane_cache *c, const char *key, int64_t now,
		   const struct dane_result *r)
{
	size_t b = hash(key) & (c->nbuckets - 1);
	struct centry *e;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	for (e = c->bucket[b]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e == NULL) {
		if (c->count >= c->max)
			evict(c, b, now);
		e = calloc(1, sizeof(*e));
		if (e == NULL) {
			rc = -1;
			goto out;
		}
		snprintf(e->key, sizeof(e->key), "%s", key);
		e->next = c->bucket[b];
		c->bucket[b] = e;
		c->count++;
	}
	e->r = *r;
	e->expires = now + r->ttl;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

size_t dane_cache_count(struct dane_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->count;
	pthread_mutex_unlock(&c->lock);
	return n;
}
