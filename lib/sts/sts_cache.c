/*
 * sts_cache - MTA-STS policy cache with a persistent file. See sts_cache.h.
 *
 * SECURITY: the cache file is written by the daemon only, but read back as
 * untrusted input (a crash or a disk error can leave anything in it).
 */
#include "sts_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

#define NBUCKETS 4096

struct node {
	struct node *next;
	struct sts_entry e;
};

struct sts_cache {
	pthread_mutex_t lock;
	struct node *bucket[NBUCKETS];
	size_t count;
	bool dirty;
};

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % NBUCKETS;
}

struct sts_cache *sts_cache_new(void)
{
	struct sts_cache *c = calloc(1, sizeof(*c));

	if (c)
		pthread_mutex_init(&c->lock, NULL);
	return c;
}

void sts_entry_free(struct sts_entry *e)
{
	free(e->text);
	e->text = NULL;
	e->len = 0;
}

void sts_cache_free(struct sts_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < NBUCKETS; i++) {
		struct node *n = c->bucket[i], *next;

		for (; n; n = next) {
			next = n->next;
			sts_entry_free(&n->e);
			free(n);
		}
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int copy_entry(struct sts_entry *dst, const struct sts_entry *src)
{
	*dst = *src;
	dst->text = NULL;
	if (src->text) {
		dst->text = malloc(src->len + 1);
		if (dst->text == NULL)
			return -1;
		memcpy(dst->text, src->text, src->len);
		dst->text[src->len] = '\0';
	}
	return 0;
}

static struct node *find(struct sts_cache *c, const char *domain)
{
	for (struct node *n = c->bucket[hash(domain)]; n; n = n->next)
		if (strcmp(n->e.domain, domain) == 0)
			return n;
	return NULL;
}

int sts_cache_get(struct sts_cache *c, const char *domain, struct sts_entry *out)
{
	struct node *n;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	n = find(c, domain);
	if (n) {
		rc = copy_entry(out, &n->e) < 0 ? -1 : 1;
	} else {
		memset(out, 0, sizeof(*out));
		snprintf(out->domain, sizeof(out->domain), "%s", domain);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Insert with the lock held. */
static int put_locked(struct sts_cache *c, const struct sts_entry *e)
{
	struct node *n = find(c, e->domain);
	struct sts_entry copy;
	bool persisted = e->have_policy || e->last_error_code;

	if (copy_entry(&copy, e) < 0)
		return -1;
	if (n) {
		persisted |= n->e.have_policy || n->e.last_error_code;
		sts_entry_free(&n->e);
		n->e = copy;
	} else {
		unsigned h = hash(e->domain);

		if (c->count >= STS_CACHE_MAX_ENTRIES || (n = calloc(1, sizeof(*n))) == NULL) {
			sts_entry_free(&copy);
			return -1;
		}
		n->e = copy;
		n->next = c->bucket[h];
		c->bucket[h] = n;
		c->count++;
	}
	if (persisted)		/* negative entries are not in the file */
		c->dirty = true;
	return 0;
}

int sts_cache_put(struct sts_cache *c, const struct sts_entry *e)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = put_locked(c, e);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

bool sts_cache_dirty(struct sts_cache *c)
{
	bool d;

	pthread_mutex_lock(&c->lock);
	d = c->dirty;
	pthread_mutex_unlock(&c->lock);
	return d;
}

size_t sts_cache_count(struct sts_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->count;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* ---- rules ---- */

bool sts_entry_valid(const struct sts_entry *e, int64_t now)
{
	return e->have_policy && now < e->expires;
}

bool sts_should_fetch(const struct sts_entry *e, const char *id, int64_t now,
		      int64_t refresh, bool force)
{
	if (force)
		return true;
	if (e->last_error_code && strcmp(e->failed_id, id) == 0 &&
	    now - e->last_failure < STS_RETRY_DELAY)
		return false;
	if (sts_entry_valid(e, now) && strcmp(e->id, id) == 0 && now - e->fetched < refresh)
		return false;
	return true;
}

bool sts_needs_check(const struct sts_entry *e, int64_t now, int64_t refresh)
{
	(void)refresh;
	return now - e->checked >= STS_CHECK_INTERVAL;
}

int sts_entry_failure(const struct sts_entry *e, int64_t now)
{
	if (sts_entry_valid(e, now) || !e->txt_present || e->last_error_code == 0)
		return 0;
	return strcmp(e->failed_id, e->txt_id) == 0 ? e->last_error_code : 0;
}

void sts_entry_discovered(struct sts_entry *e, int64_t now, bool present, const char *id)
{
	e->checked = now;
	e->txt_present = present;
	snprintf(e->txt_id, sizeof(e->txt_id), "%s", present && id ? id : "");
}

void sts_entry_fetched(struct sts_entry *e, int64_t now, const char *id,
		       char *text, size_t len, uint32_t max_age)
{
	free(e->text);
	e->text = text;
	e->len = len;
	e->have_policy = true;
	e->zero_age = false;
	if (max_age == 0) {
		/* applies to the delivery at hand only: not kept (RFC 8461 3.2) */
		free(e->text);
		e->text = NULL;
		e->len = 0;
		e->have_policy = false;
		e->zero_age = true;
	}
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->fetched = now;
	e->expires = now + (int64_t)max_age;
	e->last_attempt = now;
	e->last_error_code = 0;
	e->last_error[0] = '\0';
	e->failed_id[0] = '\0';
}

void sts_entry_failed(struct sts_entry *e, int64_t now, const char *id, int code,
		      const char *why)
{
	e->last_attempt = now;
	e->last_failure = now;
	e->last_error_code = code;
	snprintf(e->last_error, sizeof(e->last_error), "%s", why ? why : "");
	snprintf(e->failed_id, sizeof(e->failed_id), "%s", id);
}

size_t sts_cache_due(struct sts_cache *c, int64_t now, int64_t refresh,
		     char (*out)[STS_DOMAIN_MAX + 1], size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < NBUCKETS && n < max; i++)
		for (struct node *p = c->bucket[i]; p && n < max; p = p->next) {
			const struct sts_entry *e = &p->e;

			if (!e->have_policy || now - e->checked < STS_CHECK_INTERVAL)
				continue;
			/* proactive refresh, and before expiry */
			if (now - e->fetched >= refresh || e->expires - now < 2 * STS_CHECK_INTERVAL)
				snprintf(out[n++], STS_DOMAIN_MAX + 1, "%s", e->domain);
		}
	pthread_mutex_unlock(&c->lock);
	return n;
}

size_t sts_cache_prune(struct sts_cache *c, int64_t now)
{
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < NBUCKETS; i++) {
		struct node **pp = &c->bucket[i];

		while (*pp) {
			struct node *p = *pp;
			const struct sts_entry *e = &p->e;
			bool keep = (e->have_policy && now - e->expires < 86400) ||
				    (e->last_error_code && now - e->last_failure < 86400) ||
				    now - e->checked < STS_CHECK_INTERVAL;

			if (keep) {
				pp = &p->next;
				continue;
			}
			*pp = p->next;
			if (p->e.have_policy || p->e.last_error_code)
				c->dirty = true;
			sts_entry_free(&p->e);
			free(p);
			c->count--;
			n++;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* ---- persistence ---- */

static void add_int(struct json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

int sts_cache_save(struct sts_cache *c, const char *path, char *err, size_t errsz)
{
	struct buf tb;
	const char *tmp;
	FILE *fp;
	int fd, rc = 0;

	buf_init(&tb, 8192);
	if (buf_printf(&tb, "%s.tmp", path) < 0) {
		snprintf(err, errsz, "cache file path too long");
		buf_free(&tb);
		return -1;
	}
	tmp = tb.data;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0 || (fp = fdopen(fd, "w")) == NULL) {
		snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		buf_free(&tb);
		return -1;
	}
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < NBUCKETS; i++)
		for (struct node *p = c->bucket[i]; p; p = p->next) {
			const struct sts_entry *e = &p->e;
			struct json_object *o;

			if (!e->have_policy && e->last_error_code == 0)
				continue;
			o = json_object_new_object();
			add_str(o, "domain", e->domain);
			if (e->have_policy) {
				add_str(o, "id", e->id);
				json_object_object_add(o, "policy",
					json_object_new_string_len(e->text, (int)e->len));
				add_int(o, "fetched", e->fetched);
				add_int(o, "expires", e->expires);
			}
			add_int(o, "checked", e->checked);
			json_object_object_add(o, "txt_present", json_object_new_boolean(e->txt_present));
			add_str(o, "txt_id", e->txt_id);
			add_int(o, "last_attempt", e->last_attempt);
			add_int(o, "last_failure", e->last_failure);
			add_int(o, "last_error_code", e->last_error_code);
			add_str(o, "last_error", e->last_error);
			add_str(o, "failed_id", e->failed_id);
			fprintf(fp, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
			json_object_put(o);
		}
	c->dirty = false;
	pthread_mutex_unlock(&c->lock);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
		rc = -1;
	if (fclose(fp) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		unlink(tmp);
		pthread_mutex_lock(&c->lock);
		c->dirty = true;
		pthread_mutex_unlock(&c->lock);
	}
	buf_free(&tb);
	return rc;
}

static bool get_int(struct json_object *o, const char *k, int64_t *v, bool required)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, k, &x))
		return !required;
	if (!json_object_is_type(x, json_type_int))
		return false;
	*v = json_object_get_int64(x);
	return *v >= 0;
}

static bool get_str(struct json_object *o, const char *k, char *dst, size_t dsz,
		    bool required)
{
	struct json_object *x;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(o, k, &x))
		return !required;
	if (!json_object_is_type(x, json_type_string))
		return false;
	s = json_object_get_string(x);
	n = (size_t)json_object_get_string_len(x);
	if (n >= dsz || strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	memcpy(dst, s, n + 1);
	return true;
}

static bool valid_domain_key(const char *d)
{
	if (*d == '\0')
		return false;
	for (; *d; d++)
		if (!((*d >= 'a' && *d <= 'z') || (*d >= '0' && *d <= '9') || *d == '-' || *d == '.'))
			return false;
	return true;
}

static bool valid_id(const char *id)
{
	for (; *id; id++)
		if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') ||
		      (*id >= '0' && *id <= '9')))
			return false;
	return true;
}

/* One line of the cache file into 'e'. */
static bool load_line(struct json_object *o, struct sts_entry *e, size_t max_policy)
{
	struct json_object *pol, *b;
	int64_t code = 0;

	memset(e, 0, sizeof(*e));
	if (!json_object_is_type(o, json_type_object) ||
	    !get_str(o, "domain", e->domain, sizeof(e->domain), true) ||
	    !valid_domain_key(e->domain) ||
	    !get_str(o, "txt_id", e->txt_id, sizeof(e->txt_id), false) ||
	    !get_str(o, "failed_id", e->failed_id, sizeof(e->failed_id), false) ||
	    !get_str(o, "last_error", e->last_error, sizeof(e->last_error), false) ||
	    !get_int(o, "checked", &e->checked, false) ||
	    !get_int(o, "last_attempt", &e->last_attempt, false) ||
	    !get_int(o, "last_failure", &e->last_failure, false) ||
	    !get_int(o, "last_error_code", &code, false) ||
	    !valid_id(e->txt_id) || !valid_id(e->failed_id))
		return false;
	if (code != 0 && (code < 301 || code > 303))
		return false;
	e->last_error_code = (int)code;
	if (json_object_object_get_ex(o, "txt_present", &b)) {
		if (!json_object_is_type(b, json_type_boolean))
			return false;
		e->txt_present = json_object_get_boolean(b);
	}
	if (json_object_object_get_ex(o, "policy", &pol)) {
		struct sts_policy p;
		char perr[128];
		size_t n;

		if (!json_object_is_type(pol, json_type_string) ||
		    !get_str(o, "id", e->id, sizeof(e->id), true) || !valid_id(e->id) ||
		    !get_int(o, "fetched", &e->fetched, true) ||
		    !get_int(o, "expires", &e->expires, true))
			return false;
		n = (size_t)json_object_get_string_len(pol);
		if (sts_policy_parse(json_object_get_string(pol), n, max_policy, &p,
				     perr, sizeof(perr)) != STS_POLICY_OK)
			return false;
		if (e->expires > e->fetched + (int64_t)p.max_age || e->expires < e->fetched) {
			sts_policy_free(&p);
			return false;
		}
		sts_policy_free(&p);
		e->text = malloc(n + 1);
		if (e->text == NULL)
			return false;
		memcpy(e->text, json_object_get_string(pol), n + 1);
		e->len = n;
		e->have_policy = true;
	}
	return true;
}

long sts_cache_load(struct sts_cache *c, const char *path, size_t max_policy,
		    size_t *skipped, char *err, size_t errsz)
{
	/* never through a link: tlsrptctl may read the service's cache as root */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FILE *fp = fd >= 0 ? fdopen(fd, "r") : NULL;
	struct stat st;
	char *text, *p, *end;
	long loaded = 0;
	size_t bad = 0;

	if (fd >= 0 && fp == NULL)
		close(fd);
	if (skipped)
		*skipped = 0;
	if (fp == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > STS_CACHE_FILE_MAX) {
		snprintf(err, errsz, "%s: not a regular file or larger than %u bytes",
			 path, STS_CACHE_FILE_MAX);
		fclose(fp);
		return -1;
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL || fread(text, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
		snprintf(err, errsz, "%s: read error", path);
		free(text);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	text[st.st_size] = '\0';
	end = text + st.st_size;
	for (p = text; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		struct json_tokener *tok;
		struct json_object *o;
		struct sts_entry e;

		if (n == 0) {
			p = nl ? nl + 1 : end;
			continue;
		}
		tok = json_tokener_new_ex(8);
		o = tok ? json_tokener_parse_ex(tok, p, (int)n) : NULL;
		if (o && json_tokener_get_parse_end(tok) == n && load_line(o, &e, max_policy)) {
			pthread_mutex_lock(&c->lock);
			if (put_locked(c, &e) == 0)
				loaded++;
			else
				bad++;
			pthread_mutex_unlock(&c->lock);
			sts_entry_free(&e);
		} else {
			bad++;
		}
		json_object_put(o);
		if (tok)
			json_tokener_free(tok);
		p = nl ? nl + 1 : end;
	}
	free(text);
	pthread_mutex_lock(&c->lock);
	c->dirty = false;
	pthread_mutex_unlock(&c->lock);
	if (skipped)
		*skipped = bad;
	return loaded;
}
