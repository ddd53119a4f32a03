/*
 * pflookup - TLSRPT records and TLS policies for the log follower, cached.
 * See pflookup.h.
 *
 * SECURITY: DNS answers and table replies are untrusted: each is bounded
 * (PFLOOKUP_MAX_TXT records, PFLOOKUP_MAX_REPLY bytes, PFLOOKUP_MAX_STRINGS
 * values). Keys handed to postmap are validated domain names, so they
 * cannot be taken for options. postmap runs without a shell, with stdin on
 * /dev/null, and is killed (by its pid) when it exceeds its time limit.
 */
#include "pflookup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dane.h"
#include "dns.h"
#include "log.h"
#include "tlsrpt_record.h"

extern char **environ;

#define TEMPFAIL_TTL 60		/* seconds a temporary failure is remembered */
#define POSTMAP_TIMEOUT_MS 10000
#define MAX_PARENT_KEYS 8

/* ---- a small LRU cache keyed by domain ---- */

struct centry {
	char *key;
	uint32_t hash;
	int64_t expires;
	struct centry *hnext;		/* bucket chain */
	struct centry *prev, *next;	/* LRU list, head = most recently used */
	/* TLSRPT cache */
	char *rec;			/* NULL: no record */
	size_t reclen;
	/* policy cache */
	bool dane;			/* the table's level is dane or dane-only */
	int type;
	char *blob;			/* reply text the views point into */
	struct result_str pdomain;
	struct result_str *strings;
	size_t nstrings;
	struct result_str *mx;
	size_t nmx;
};

struct cache {
	struct centry **buckets;
	size_t nbuckets, n, max;
	struct centry *head, *tail;
};

struct pflookup {
	struct cache txt, pol, tlsa;
	int64_t ttl;
	bool default_dane;		/* log_tls_security_level is dane or dane-only */
	char *resolver;
	char *map;
	struct pflookup_ops ops;
};

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static int cache_init(struct cache *c, size_t max)
{
	c->nbuckets = 64;
	while (c->nbuckets < max && c->nbuckets < (1u << 22))
		c->nbuckets <<= 1;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	c->max = max;
	c->n = 0;
	c->head = c->tail = NULL;
	return c->buckets ? 0 : -1;
}

static void entry_free(struct centry *e)
{
	free(e->key);
	free(e->rec);
	free(e->blob);
	free(e->strings);
	free(e->mx);
	free(e);
}

static void lru_unlink(struct cache *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct cache *c, struct centry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

static void cache_remove(struct cache *c, struct centry *e)
{
	struct centry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(c, e);
	c->n--;
	entry_free(e);
}

static void cache_clear(struct cache *c)
{
	while (c->head)
		cache_remove(c, c->head);
}

static void cache_destroy(struct cache *c)
{
	if (c->buckets)
		cache_clear(c);
	free(c->buckets);
	c->buckets = NULL;
}

/* The live entry of 'key', moved to the front; NULL if absent or expired. */
static struct centry *cache_find(struct cache *c, const char *key, int64_t now)
{
	uint32_t h = hash_str(key);
	struct centry *e = c->buckets[h & (c->nbuckets - 1)];

	while (e && (e->hash != h || strcmp(e->key, key) != 0))
		e = e->hnext;
	if (e == NULL)
		return NULL;
	if (e->expires <= now) {
		cache_remove(c, e);
		return NULL;
	}
	lru_unlink(c, e);
	lru_push(c, e);
	return e;
}

/* A new, empty entry for 'key' (not present), evicting the least recently
 * used entry when full. NULL on ENOMEM. */
static struct centry *cache_insert(struct cache *c, const char *key, int64_t expires)
{
	struct centry *e;

	while (c->n >= c->max && c->tail)
		cache_remove(c, c->tail);
	e = calloc(1, sizeof(*e));
	if (e == NULL || (e->key = strdup(key)) == NULL) {
		free(e);
		return NULL;
	}
	e->hash = hash_str(key);
	e->expires = expires;
	e->hnext = c->buckets[e->hash & (c->nbuckets - 1)];
	c->buckets[e->hash & (c->nbuckets - 1)] = e;
	lru_push(c, e);
	c->n++;
	return e;
}

/* ---- default lookups ---- */

static int default_txt(void *arg, const char *name, struct pflookup_txt *out)
{
	struct pflookup *l = arg;
	struct dns_txt t;
	char err[256];
	enum dns_status st;

	memset(&t, 0, sizeof(t));
	st = dns_lookup_txt(name, l->resolver, &t, err, sizeof(err));
	if (st == DNS_NOTFOUND)
		return PFLOOKUP_NOTFOUND;
	if (st != DNS_OK) {
		static struct log_limit lim;
		log_warn_limited(&lim, "log follower: TXT lookup of %s failed: %s", name, err);
		return PFLOOKUP_TEMPFAIL;
	}
	for (size_t i = 0; i < t.n && out->n < PFLOOKUP_MAX_TXT; i++) {
		char *copy = malloc(t.len[i] + 1);

		if (copy == NULL)
			break;
		memcpy(copy, t.rec[i], t.len[i]);
		copy[t.len[i]] = '\0';
		out->rec[out->n] = copy;
		out->len[out->n++] = t.len[i];
	}
	dns_txt_free(&t);
	return PFLOOKUP_FOUND;
}

/* The DNSSEC-validated TLSA RRset of MX host 'host' (lib/dane): the TLSA
 * base domain on the first line, then one record a line as Postfix writes
 * them into reports. */
static int default_tlsa(void *arg, const char *host, char **text, uint32_t *ttl)
{
	struct pflookup *l = arg;
	struct dane_tlsa *t = malloc(sizeof(*t));
	struct dane_reply r;
	enum dane_rr_status st;
	char base[DANE_HOST_MAX + 1];
	size_t size, len;
	char *out;

	*text = NULL;
	*ttl = DANE_NEG_TTL;
	if (t == NULL)
		return PFLOOKUP_TEMPFAIL;
	st = dane_host_tlsa(l->resolver, host, 25, t, &r, base, sizeof(base));
	*ttl = r.ttl ? r.ttl : TEMPFAIL_TTL;
	if (st != DANE_RR_OK) {
		free(t);
		return st == DANE_RR_NODATA || st == DANE_RR_NXDOMAIN ? PFLOOKUP_NOTFOUND
								      : PFLOOKUP_TEMPFAIL;
	}
	size = strlen(base) + 2 + t->n * (2 * DANE_TLSA_DATA_MAX + 16) + 1;
	out = malloc(size);
	if (out == NULL) {
		free(t);
		return PFLOOKUP_TEMPFAIL;
	}
	len = (size_t)snprintf(out, size, "%s\n", base);
	for (size_t i = 0; i < t->n; i++) {
		size_t n = dane_tlsa_format(&t->rr[i], out + len, size - len);

		if (n == 0)
			continue;
		len += n;
		out[len++] = '\n';
	}
	out[len] = '\0';
	free(t);
	*text = out;
	return PFLOOKUP_FOUND;
}

/* Run "postmap -q KEY TABLE"; its stdout is the reply. */
static int default_policy(void *arg, const char *key, char **reply)
{
	struct pflookup *l = arg;
	char *argv[] = { (char *)"postmap", (char *)"-q", (char *)key, l->map, NULL };
	posix_spawn_file_actions_t fa;
	int pfd[2], status = 0, rc = PFLOOKUP_TEMPFAIL;
	pid_t pid = -1;
	char *out;
	size_t len = 0;
	struct timespec start, nowts;
	bool killed = false;
	static struct log_limit lim;

	out = malloc(PFLOOKUP_MAX_REPLY + 1);
	if (out == NULL)
		return PFLOOKUP_TEMPFAIL;
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		free(out);
		return PFLOOKUP_TEMPFAIL;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	if (posix_spawnp(&pid, "postmap", &fa, NULL, argv, environ) != 0 &&
	    posix_spawn(&pid, "/usr/sbin/postmap", &fa, NULL, argv, environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (pid < 0) {
		log_warn_limited(&lim, "log follower: cannot run postmap: %s", strerror(errno));
		close(pfd[0]);
		free(out);
		return PFLOOKUP_TEMPFAIL;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		long elapsed;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &nowts);
		elapsed = (nowts.tv_sec - start.tv_sec) * 1000 +
			(nowts.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed >= POSTMAP_TIMEOUT_MS || len >= PFLOOKUP_MAX_REPLY) {
			kill(pid, SIGKILL);
			killed = true;
			break;
		}
		if (poll(&p, 1, (int)(POSTMAP_TIMEOUT_MS - elapsed)) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n = read(pfd[0], out + len, PFLOOKUP_MAX_REPLY + 1 - len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (killed) {
		log_warn_limited(&lim, "log follower: postmap -q %s %s: %s", key, l->map,
				 len >= PFLOOKUP_MAX_REPLY ? "reply too long" : "timed out");
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
			len--;
		out[len] = '\0';
		*reply = out;
		return PFLOOKUP_FOUND;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
		rc = PFLOOKUP_NOTFOUND;
	} else {
		log_warn_limited(&lim, "log follower: postmap -q %s %s failed (status %d)",
				 key, l->map, status);
	}
	free(out);
	return rc;
}

/* ---- public ---- */

struct pflookup *pflookup_new(const struct conf *c, char *err, size_t errsz)
{
	struct pflookup *l = calloc(1, sizeof(*l));
	size_t max = (size_t)conf_int(c, "dns_cache_size");

	if (l == NULL || cache_init(&l->txt, max) != 0 || cache_init(&l->pol, max) != 0 ||
	    cache_init(&l->tlsa, max) != 0 ||
	    (l->resolver = strdup(conf_str(c, "dns_resolver"))) == NULL ||
	    (l->map = strdup(conf_str(c, "log_policy_map"))) == NULL) {
		snprintf(err, errsz, "out of memory");
		pflookup_free(l);
		return NULL;
	}
	l->ttl = conf_int(c, "dns_cache_ttl");
	l->ops.txt = default_txt;
	l->ops.policy = default_policy;
	l->ops.tlsa = default_tlsa;
	l->ops.arg = l;
	l->default_dane = strcmp(conf_str(c, "log_tls_security_level"), "dane") == 0 ||
			  strcmp(conf_str(c, "log_tls_security_level"), "dane-only") == 0;
	return l;
}

void pflookup_free(struct pflookup *l)
{
	if (l == NULL)
		return;
	cache_destroy(&l->txt);
	cache_destroy(&l->pol);
	cache_destroy(&l->tlsa);
	free(l->resolver);
	free(l->map);
	free(l);
}

void pflookup_set_ops(struct pflookup *l, const struct pflookup_ops *ops)
{
	l->ops = *ops;
	cache_clear(&l->txt);
	cache_clear(&l->pol);
	cache_clear(&l->tlsa);
}

size_t pflookup_domain(const char *in, size_t len, char *out, size_t outsz)
{
	size_t label = 0, n = 0;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || outsz <= len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			   ch == '-' || ch == '_') {
			label++;
		} else if (ch >= 'A' && ch <= 'Z') {
			ch = (unsigned char)(ch - 'A' + 'a');
			label++;
		} else {
			return 0;
		}
		if (label > 63)
			return 0;
		out[n++] = (char)ch;
	}
	if (label == 0 || out[0] == '-')
		return 0;
	out[n] = '\0';
	return n;
}

bool pflookup_tlsrpt(struct pflookup *l, const char *domain, int64_t now,
		     struct result_str *rec)
{
	struct centry *e = cache_find(&l->txt, domain, now);

	if (e == NULL) {
		struct pflookup_txt t;
		char name[300];
		int st, found = -1, ncand = 0;
		int64_t ttl = l->ttl;

		memset(&t, 0, sizeof(t));
		snprintf(name, sizeof(name), "_smtp._tls.%s", domain);
		st = l->ops.txt(l->ops.arg, name, &t);
		if (st == PFLOOKUP_FOUND) {
			for (size_t i = 0; i < t.n && i < PFLOOKUP_MAX_TXT; i++)
				if (t.rec[i] && tlsrpt_record_is_candidate(t.rec[i], t.len[i])) {
					ncand++;
					found = (int)i;
				}
		} else if (st != PFLOOKUP_NOTFOUND && ttl > TEMPFAIL_TTL) {
			ttl = TEMPFAIL_TTL;
		}
		e = cache_insert(&l->txt, domain, now + ttl);
		if (e && ncand == 1) {
			char *r = t.rec[found];

			for (size_t i = 0; i < t.len[found]; i++)
				if ((unsigned char)r[i] < 0x20 || (unsigned char)r[i] > 0x7e)
					r[i] = ' ';
			e->rec = r;
			e->reclen = t.len[found];
			t.rec[found] = NULL;
		}
		for (size_t i = 0; i < t.n && i < PFLOOKUP_MAX_TXT; i++)
			free(t.rec[i]);
		if (e == NULL)
			return false;
	}
	if (e->rec == NULL)
		return false;
	rec->p = e->rec;
	rec->len = e->reclen;
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool view_eq(struct result_str v, const char *lit)
{
	size_t n = strlen(lit);

	return v.p && v.len == n && memcmp(v.p, lit, n) == 0;
}

/* One name=value attribute into 'out'. */
static void reply_attr(struct pflookup_reply *out, struct result_str name, struct result_str val)
{
	if (view_eq(name, "policy_type")) {
		if (view_eq(val, "sts"))
			out->type = POLICY_STS;
		else if (view_eq(val, "no-policy-found"))
			out->type = POLICY_NONE;
	} else if (view_eq(name, "policy_domain")) {
		out->policy_domain = val;
	} else if (view_eq(name, "policy_string")) {
		if (out->nstrings < PFLOOKUP_MAX_STRINGS)
			out->strings[out->nstrings++] = val;
		else
			out->too_many = true;
	} else if (view_eq(name, "mx_host_pattern")) {
		if (out->nmx < PFLOOKUP_MAX_STRINGS)
			out->mx[out->nmx++] = val;
		else
			out->too_many = true;
	}
}

int pflookup_parse_reply(const char *text, size_t len, struct pflookup_reply *out)
{
	const char *p = text, *e = text + len;

	memset(out, 0, sizeof(*out));
	if (len > PFLOOKUP_MAX_REPLY)
		return -1;
	while (p < e && is_space(*p))
		p++;
	out->level.p = p;
	while (p < e && !is_space(*p))
		p++;
	out->level.len = (size_t)(p - out->level.p);
	if (out->level.len == 0)
		return -1;
	while (p < e) {
		struct result_str name, val;
		const char *eq, *end;

		while (p < e && is_space(*p))
			p++;
		if (p >= e)
			break;
		if (*p == '{') {
			/* { name = value }: whitespace after '{', around '=' and
			 * before '}' is not part of name or value */
			end = memchr(p, '}', (size_t)(e - p));
			if (end == NULL)
				return -1;
			p++;
			while (p < end && is_space(*p))
				p++;
			eq = memchr(p, '=', (size_t)(end - p));
			if (eq == NULL)
				return -1;
			name.p = p;
			name.len = (size_t)(eq - p);
			while (name.len > 0 && is_space(name.p[name.len - 1]))
				name.len--;
			val.p = eq + 1;
			while (val.p < end && is_space(*val.p))
				val.p++;
			val.len = (size_t)(end - val.p);
			while (val.len > 0 && is_space(val.p[val.len - 1]))
				val.len--;
			p = end + 1;
		} else {
			end = p;
			while (end < e && !is_space(*end))
				end++;
			eq = memchr(p, '=', (size_t)(end - p));
			if (eq == NULL)
				return -1;
			name.p = p;
			name.len = (size_t)(eq - p);
			val.p = eq + 1;
			val.len = (size_t)(end - val.p);
			p = end;
		}
		if (name.len == 0)
			return -1;
		reply_attr(out, name, val);
	}
	return 0;
}

/* Fill entry 'e' from a reply; false if the reply is no STS policy. */
static bool policy_from_reply(struct centry *e, char *reply)
{
	struct pflookup_reply r;

	if (pflookup_parse_reply(reply, strlen(reply), &r) != 0) {
		static struct log_limit lim;
		char pr[200];

		log_warn_limited(&lim, "log follower: malformed policy table reply \"%s\"",
				 log_printable(pr, sizeof(pr), reply, strlen(reply)));
		return false;
	}
	e->dane = view_eq(r.level, "dane") || view_eq(r.level, "dane-only");
	if (r.type != POLICY_STS || r.policy_domain.len == 0)
		return false;
	e->strings = calloc(r.nstrings + 1, sizeof(*e->strings));
	e->mx = calloc(r.nmx + 1, sizeof(*e->mx));
	if (e->strings == NULL || e->mx == NULL)
		return false;
	memcpy(e->strings, r.strings, r.nstrings * sizeof(*e->strings));
	memcpy(e->mx, r.mx, r.nmx * sizeof(*e->mx));
	e->nstrings = r.nstrings;
	e->nmx = r.nmx;
	e->pdomain = r.policy_domain;
	e->type = POLICY_STS;
	e->blob = reply;	/* the views point into it */
	return true;
}

bool pflookup_policy(struct pflookup *l, const char *domain, int64_t now,
		     struct result_policy *p)
{
	struct centry *e;

	p->type = POLICY_NONE;
	p->domain.p = domain;
	p->domain.len = strlen(domain);
	p->strings = NULL;
	p->nstrings = 0;
	p->mx = NULL;
	p->nmx = 0;
	if (l->map[0] == '\0')
		return l->default_dane;
	e = cache_find(&l->pol, domain, now);
	if (e == NULL) {
		const char *key = domain;
		char *reply = NULL;
		int st = PFLOOKUP_NOTFOUND;

		for (int i = 0; i < MAX_PARENT_KEYS && key; i++) {
			st = l->ops.policy(l->ops.arg, key, &reply);
			if (st != PFLOOKUP_NOTFOUND)
				break;
			/* Postfix's order: a.b.example, .b.example, .example */
			key = strchr(key + 1, '.');
		}
		e = cache_insert(&l->pol, domain,
				 now + (st == PFLOOKUP_TEMPFAIL && l->ttl > TEMPFAIL_TTL ?
					TEMPFAIL_TTL : l->ttl));
		if (e == NULL) {
			free(reply);
			return l->default_dane;
		}
		e->type = POLICY_NONE;
		e->dane = st != PFLOOKUP_FOUND && l->default_dane;
		if (st == PFLOOKUP_FOUND && reply) {
			if (!policy_from_reply(e, reply)) {
				free(e->strings);
				free(e->mx);
				e->strings = e->mx = NULL;
				e->nstrings = e->nmx = 0;
				e->type = POLICY_NONE;
				free(reply);
			}
		} else {
			free(reply);
		}
	}
	if (e->type != POLICY_STS)
		return e->dane;
	p->type = POLICY_STS;
	p->domain = e->pdomain;
	p->strings = e->strings;
	p->nstrings = e->nstrings;
	p->mx = e->mx;
	p->nmx = e->nmx;
	return false;
}

/* Fill a TLSA cache entry from the op's text: the base domain, then the
 * records. False (nothing kept) for text without a valid base domain or
 * records. */
static bool tlsa_from_text(struct centry *e, char *text)
{
	char *nl = strchr(text, '\n'), *q;
	char base[256];
	size_t n = 0;

	if (nl == NULL || pflookup_domain(text, (size_t)(nl - text), base, sizeof(base)) == 0)
		return false;
	for (q = nl + 1; *q; q++)
		n += *q == '\n';
	if (n == 0 || (e->strings = calloc(n + 1, sizeof(*e->strings))) == NULL)
		return false;
	e->pdomain.p = text;
	e->pdomain.len = (size_t)(nl - text);
	n = 0;
	for (q = nl + 1; *q && n < PFLOOKUP_MAX_STRINGS;) {
		char *end = strchr(q, '\n');
		size_t len = end ? (size_t)(end - q) : strlen(q);

		if (len) {
			e->strings[n].p = q;
			e->strings[n++].len = len;
		}
		q += len + (end ? 1 : 0);
	}
	e->nstrings = n;
	e->blob = text;
	e->type = n ? POLICY_TLSA : POLICY_NONE;
	return true;
}

bool pflookup_tlsa(struct pflookup *l, const char *host, int64_t now, struct result_policy *p)
{
	struct centry *e;

	if (l->ops.tlsa == NULL || host[0] == '\0')
		return false;
	e = cache_find(&l->tlsa, host, now);
	if (e == NULL) {
		char *text = NULL;
		uint32_t ttl = DANE_NEG_TTL;
		int st = l->ops.tlsa(l->ops.arg, host, &text, &ttl);
		int64_t keep = st == PFLOOKUP_TEMPFAIL ? TEMPFAIL_TTL : (int64_t)ttl;

		if (keep > l->ttl)
			keep = l->ttl;
		e = cache_insert(&l->tlsa, host, now + keep);
		if (e == NULL) {
			free(text);
			return false;
		}
		e->type = POLICY_NONE;
		if (st == PFLOOKUP_FOUND && text && tlsa_from_text(e, text))
			text = NULL;	/* the entry owns it */
		free(text);
	}
	if (e->type != POLICY_TLSA)
		return false;
	p->type = POLICY_TLSA;
	p->domain = e->pdomain;
	p->strings = e->strings;
	p->nstrings = e->nstrings;
	p->mx = NULL;
	p->nmx = 0;
	return true;
}
