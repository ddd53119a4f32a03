/*
 * tlsrpt-policyd - MTA-STS (RFC 8461) for Postfix's smtp_tls_policy_maps,
 * over the socketmap protocol (lib/sts/socketmap.h), with the TLSRPT attributes
 * of Postfix 3.10 so that reports name the policy that was applied.
 *
 * A separate program from the collector because it needs the network
 * (HTTPS fetches of policies) and the collector does not.
 *
 * Design: one thread runs a poll loop over the listening socket and every
 * Postfix connection and answers from the cache (lib/sts/sts_cache.h) at once.
 * A lookup with nothing usable cached queues a discovery + fetch job for a
 * bounded pool of worker threads (WORKERS threads, QUEUE_MAX jobs, one job
 * per domain at a time) and waits for it at most sts_reply_budget; then it
 * answers with the fallback for an unknown domain, NOTFOUND, so that
 * Postfix uses its default level (never TEMP, which would defer all mail to
 * the domain) while the fetch completes in the background. Workers signal
 * the loop through a pipe. Cached policies are refreshed in the background:
 * discovery again when a domain is used and STS_CHECK_INTERVAL has passed
 * (a new TXT id fetches the new policy), and a sweep fetches policies older
 * than sts_refresh_interval or close to expiry.
 *
 * Replies (postfix_generation = 3.10):
 *   enforce:  OK secure match=P1:P2 servername=hostname policy_type=sts
 *             policy_domain=D mx_host_pattern=P... { policy_string = L }...
 *             ("*.example.net" is written ".example.net" in match=; 3.10.5+
 *             applies the exact RFC rule from mx_host_pattern).
 *   testing:  OK LEVEL policy_type=sts policy_domain=D mx_host_pattern=P...
 *             { policy_string = L }...
 *             LEVEL is policy_default_level (may or encrypt): never more
 *             than the sender's own default, so delivery is not enforced
 *             (RFC 8461 5). Seen with Debian 13's Postfix 3.10.13: at may
 *             and encrypt, mail goes to any MX (mx_host_pattern is not
 *             enforced at these levels), and each session is reported under
 *             the sts policy with its strings and patterns; an untrusted,
 *             expired or wrong-name certificate is still reported as
 *             success, because Postfix checks certificates only at levels
 *             that require a match (a Postfix limitation, not curable from
 *             a policy map without enforcing).
 *   mode none, no valid policy, dane as default level: NOTFOUND (Postfix's
 *             own default level applies).
 * A failed fetch is never answered with policy_failure=: Postfix 3.10.13
 * ignores it at may (the session is reported as an sts *success* without
 * policy strings, which is false), and at levels that match certificates it
 * forces the match to fail and defers the mail, while RFC 8461 3.3 says to
 * deliver as if there were no policy (no cache) or to apply the cached
 * policy (valid cache). Instead, with either generation, every failed fetch
 * (at most one per STS_RETRY_DELAY and policy id) is reported to the
 * collector as one libtlsrpt datagram (no dpv, one sts policy with f=1, one
 * failure detail with only c, the cached policy's strings when there is
 * one) for the domain's TLSRPT record, when it has exactly one; not when
 * the cached policy's mode is none (RFC 8461 6). The report then shows the
 * failure once per failed fetch, next to the sessions Postfix reported.
 * With 3.7 the TLSRPT attributes are rejected by Postfix, so: enforce gives
 * "OK secure match=... servername=hostname", everything else NOTFOUND.
 * The request name "tlsrpt" is always answered as for 3.10, whatever the
 * generation: it is for tlsrptd's log follower (log_policy_map =
 * socketmap:unix:PATH:tlsrpt, queried with postmap -q), so that on 3.7 the
 * sessions are reported under the sts policy Postfix applied (the log has
 * no policy data). Postfix 3.7 itself must use another name ("postfix").
 *
 * Keys: the next-hop domain. NOTFOUND for ".parent" forms, "[ip]",
 * "host:port" and anything that is not a host name with a dot. The request
 * name "tlsrptctl-refresh" (tlsrptctl sts refresh) forces a fetch and
 * answers with a one-line status once it is done.
 *
 * SECURITY: requests come from any process that can reach the socket: they
 * are bounded netstrings, keys are validated host names. The unix socket
 * is made before privileges are dropped (user, no-new-privs); the HTTPS
 * side is lib/sts/sts_fetch.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cmdline.h"
#include "conf.h"
#include "config.h"
#include "dns.h"
#include "log.h"
#include "privs.h"
#include "result.h"
#include "socketmap.h"
#include "sts_cache.h"
#include "sts_fetch.h"
#include "sts_policy.h"
#include "usock.h"

#define DEFAULT_CONFIG SYSCONFDIR "/tlsrptd/tlsrptd.conf"
#define WORKERS 8		/* parallel discoveries + fetches */
#define QUEUE_MAX 1024		/* jobs waiting for a worker */
#define MAX_CONNS 1000		/* Postfix connections at a time */
#define IDLE_TIMEOUT 300	/* s before an idle connection is closed */
#define SWEEP_INTERVAL 30	/* s between refresh sweeps */
#define REFRESH_NAME "tlsrptctl-refresh"
#define REPORT_NAME "tlsrpt"	/* 3.10 replies for tlsrptd's log_policy_map */
#define DGRAM_MAX (200 * 1024)

enum generation { GEN_37, GEN_310 };

struct job {
	struct job *next;
	char domain[STS_DOMAIN_MAX + 1];
	bool force;
};

struct service {
	const struct conf *conf;
	enum generation gen;
	const char *level;		/* policy_default_level, or NULL for NOTFOUND */
	int64_t budget_ms, refresh;
	struct sts_fetch_opts fopts;
	const char *resolver;
	struct sts_cache *cache;

	pthread_mutex_t lock;		/* the queue, busy list and done list */
	pthread_cond_t cond;
	struct job *qhead, *qtail;
	size_t queued;
	char busy[WORKERS][STS_DOMAIN_MAX + 1];	/* domain each worker works on */
	struct job *done;		/* finished jobs for the loop */
	bool stop;
	int wake[2];			/* workers -> loop */
	pthread_t workers[WORKERS];
};

struct conn {
	int fd;
	char in[SOCKETMAP_MAX_QUERY + 32];
	size_t inlen;
	struct buf out;
	size_t outoff;
	bool waiting;			/* for a job on wait_domain */
	bool wait_refresh;		/* ... started by tlsrptctl-refresh */
	bool wait_attrs;		/* ... for REPORT_NAME: reply as for 3.10 */
	char wait_domain[STS_DOMAIN_MAX + 1];
	int64_t deadline;		/* ms, monotonic */
	int64_t started;		/* unix time the wait began */
	int64_t active;			/* s, monotonic */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- validation of keys ---- */

/* A lower-case host name with at least one dot, or -1. */
static int normalise_domain(const char *key, size_t klen, char *out, size_t outsz)
{
	size_t label = 0, dots = 0;

	if (klen > 0 && key[klen - 1] == '.')
		klen--;
	if (klen == 0 || klen > STS_DOMAIN_MAX || klen >= outsz)
		return -1;
	for (size_t i = 0; i < klen; i++) {
		char c = key[i];

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
		} else {
			return -1;
		}
		out[i] = c;
	}
	out[klen] = '\0';
	if (label == 0 || out[klen - 1] == '-' || dots == 0)
		return -1;
	return 0;
}

/* ---- replies ---- */

/* Postfix's match= syntax: "*.example.net" -> ".example.net". */
static void add_match(struct buf *b, const struct sts_policy *p)
{
	buf_adds(b, "secure match=");
	for (size_t i = 0; i < p->nmx; i++) {
		const char *m = p->mx[i];

		if (i)
			buf_addc(b, ':');
		buf_adds(b, m[0] == '*' ? m + 1 : m);
	}
	buf_adds(b, " servername=hostname");
}

static void add_tlsrpt(struct buf *b, const char *domain, const struct sts_policy *p,
		       bool patterns)
{
	buf_printf(b, " policy_type=sts policy_domain=%s", domain);
	if (patterns)
		for (size_t i = 0; i < p->nmx; i++)
			buf_printf(b, " mx_host_pattern=%s", p->mx[i]);
	for (size_t i = 0; i < p->nlines; i++) {
		const char *l = p->lines[i];

		/* braces would end Postfix's { name = value } early: leave out */
		if (strpbrk(l, "{}"))
			continue;
		buf_printf(b, " { policy_string = %s }", l);
	}
}

/*
 * The reply for 'e' at 'now' for Postfix generation 'gen': status (static)
 * and data in 'data'.
 */
static const char *build_reply(const struct service *s, enum generation gen,
			       const struct sts_entry *e, int64_t now, struct buf *data)
{
	struct sts_policy p;
	char err[200];

	buf_reset(data);
	if (sts_entry_valid(e, now)) {
		if (sts_policy_parse(e->text, e->len, SIZE_MAX, &p, err, sizeof(err)) !=
		    STS_POLICY_OK)
			return "NOTFOUND";
		if (p.mode == STS_MODE_ENFORCE) {
			add_match(data, &p);
			if (gen == GEN_310) {
				add_tlsrpt(data, e->domain, &p, true);
				if (data->overflow) {	/* too long: without the report data */
					log_warn("%s: reply too long, sent without policy strings",
						 e->domain);
					buf_reset(data);
					add_match(data, &p);
				}
			}
		} else if (p.mode == STS_MODE_TESTING && gen == GEN_310 && s->level) {
			buf_adds(data, s->level);
			add_tlsrpt(data, e->domain, &p, true);
			if (data->overflow) {
				buf_reset(data);
				buf_printf(data, "%s policy_type=sts policy_domain=%s",
					   s->level, e->domain);
			}
		}
		sts_policy_free(&p);
		if (data->len == 0 || data->overflow) {
			if (data->overflow)
				log_warn("%s: reply too long for socketmap", e->domain);
			buf_reset(data);
			return "NOTFOUND";
		}
		return "OK";
	}
	return "NOTFOUND";
}

/* One-line status for tlsrptctl sts refresh. */
static void build_status(const struct sts_entry *e, int64_t since, int64_t now,
			 struct buf *data)
{
	buf_reset(data);
	if (!e->txt_present && e->checked >= since)
		buf_printf(data, "no-policy no valid _mta-sts.%s TXT record", e->domain);
	else if (e->last_attempt >= since && e->last_error_code)
		buf_printf(data, "failed %s %s", result_code_name(e->last_error_code),
			   e->last_error);
	else if (e->last_attempt >= since && sts_entry_valid(e, now))
		buf_printf(data, "fetched id=%s expires=%lld", e->id, (long long)e->expires);
	else if (e->checked >= since)
		buf_printf(data, "unchanged id=%s", e->txt_id);
	else
		buf_printf(data, "pending");
}

/* ---- the TLSRPT datagram of Postfix 3.7 mode ---- */

static void json_str(struct buf *b, const char *s, size_t n)
{
	buf_addc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			buf_addc(b, '\\');
			buf_addc(b, (char)c);
		} else if (c < 0x20 || c == 0x7f) {
			buf_printf(b, "\\u%04x", c);
		} else {
			buf_addc(b, (char)c);
		}
	}
	buf_addc(b, '"');
}

/* The one TLSRPT record of 'domain' (printable), or -1. */
static int tlsrpt_record(const struct service *s, const char *domain, struct buf *pr)
{
	struct dns_txt t;
	char name[STS_DOMAIN_MAX + 16], err[200];
	int found = 0, which = 0;

	snprintf(name, sizeof(name), "_smtp._tls.%s", domain);
	if (dns_lookup_txt(name, s->resolver, &t, err, sizeof(err)) != DNS_OK)
		return -1;
	for (size_t i = 0; i < t.n; i++) {
		const char *r = t.rec[i];
		size_t k = 10;

		if (t.len[i] < 10 || memcmp(r, "v=TLSRPTv1", 10) != 0)
			continue;
		while (k < t.len[i] && (r[k] == ' ' || r[k] == '\t'))
			k++;
		if (k < t.len[i] && r[k] == ';') {
			found++;
			which = (int)i;
		}
	}
	if (found == 1) {
		for (size_t k = 0; k < t.len[which]; k++) {
			unsigned char c = (unsigned char)t.rec[which][k];

			buf_addc(pr, c < 0x20 || c == 0x7f ? ' ' : (char)c);
		}
	}
	dns_txt_free(&t);
	return found == 1 ? 0 : -1;
}

static void add_lines(struct buf *b, const char *key, char **v, size_t n)
{
	if (n == 0)
		return;
	buf_printf(b, ",\"%s\":[", key);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addc(b, ',');
		json_str(b, v[i], strlen(v[i]));
	}
	buf_addc(b, ']');
}

/*
 * Tell the collector that the fetch of 'domain' failed with 'code'. The
 * policy strings are those of the cached policy, or for an invalid policy
 * the lines fetched (RFC 8460 4.5); a body that does not even split into
 * lines is left out.
 */
static void send_failure(const struct service *s, const struct sts_entry *e, int code,
			 const struct sts_fetch_result *r)
{
	struct buf pr, d;
	struct sts_policy cached;
	bool have_cached = false;
	char err[200];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = conf_str(s->conf, "socket_path");
	int fd;

	buf_init(&pr, 8192);
	if (tlsrpt_record(s, e->domain, &pr) < 0) {
		log_debug("%s: no TLSRPT record, failure not reported", e->domain);
		buf_free(&pr);
		return;
	}
	if (e->have_policy && sts_policy_parse(e->text, e->len, SIZE_MAX, &cached, err,
					       sizeof(err)) == STS_POLICY_OK)
		have_cached = true;
	if (have_cached && cached.mode == STS_MODE_NONE && sts_entry_valid(e, time(NULL))) {
		sts_policy_free(&cached);	/* RFC 8461 6: not for mode none */
		buf_free(&pr);
		return;
	}
	buf_init(&d, DGRAM_MAX);
	buf_adds(&d, "{\"d\": ");
	json_str(&d, e->domain, strlen(e->domain));
	buf_adds(&d, ",\"pr\": ");
	json_str(&d, pr.data ? pr.data : "", pr.len);
	buf_adds(&d, ",\"policies\":[{\"policy-type\":2,\"policy-domain\": ");
	json_str(&d, e->domain, strlen(e->domain));
	if (have_cached) {
		add_lines(&d, "policy-string", cached.lines, cached.nlines);
		add_lines(&d, "mx-host", cached.mx, cached.nmx);
	} else if (code == RESULT_STS_POLICY_INVALID && r->body) {
		/* the lines fetched, including their errors */
		char **lines = NULL;
		size_t n = 0;
		const char *p = r->body, *end = r->body + r->len;

		while (p < end && n < 1000) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			char **nv = realloc(lines, (n + 1) * sizeof(*lines));

			if (nv == NULL)
				break;
			lines = nv;
			if (le > p && le[-1] == '\r')
				le--;
			lines[n] = strndup(p, (size_t)(le - p));
			if (lines[n] == NULL)
				break;
			n++;
			p = nl ? nl + 1 : end;
		}
		add_lines(&d, "policy-string", lines, n);
		for (size_t i = 0; i < n; i++)
			free(lines[i]);
		free(lines);
	}
	buf_printf(&d, ",\"failure-details\":[{\"c\":%d}],\"t\":1,\"f\":1}]}", code);
	if (have_cached)
		sts_policy_free(&cached);
	buf_free(&pr);
	if (d.overflow || strlen(path) >= sizeof(sun.sun_path)) {
		log_warn("%s: failure datagram not sent (too long)", e->domain);
		buf_free(&d);
		return;
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, d.data, d.len, MSG_DONTWAIT | MSG_NOSIGNAL,
			     (struct sockaddr *)&sun, sizeof(sun)) < 0)
		log_warn("%s: cannot send the failure to %s: %s", e->domain, path,
			 strerror(errno));
	else
		log_debug("%s: reported %s to the collector", e->domain, result_code_name(code));
	if (fd >= 0)
		close(fd);
	buf_free(&d);
}

/* ---- workers ---- */

/* Discovery and, when due, a fetch for one domain. Runs in a worker. */
static void process(struct service *s, const char *domain, bool force)
{
	struct sts_entry e;
	struct dns_txt t;
	char name[STS_DOMAIN_MAX + 16], err[256], id[STS_ID_MAX + 1] = "";
	int64_t now = (int64_t)time(NULL);
	enum dns_status ds;
	bool present = false;

	if (sts_cache_get(s->cache, domain, &e) < 0)
		return;
	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	ds = dns_lookup_txt(name, s->resolver, &t, err, sizeof(err));
	if (ds == DNS_OK) {
		present = sts_txt_select(t.rec, t.len, t.n, id, sizeof(id), err, sizeof(err)) == 0;
		if (!present)
			log_debug("%s: no usable MTA-STS record: %s", domain, err);
		dns_txt_free(&t);
	} else if (ds != DNS_NOTFOUND) {
		/* temporary: keep what we know, try again at the next check */
		log_info("%s: MTA-STS discovery failed: %s", domain, err);
		e.checked = now;
		sts_cache_put(s->cache, &e);
		sts_entry_free(&e);
		return;
	}
	sts_entry_discovered(&e, now, present, id);
	/* no TXT record: a cached policy stays in use until it expires */
	if (present && sts_should_fetch(&e, id, now, s->refresh, force)) {
		struct sts_fetch_result r;
		int code = sts_fetch(domain, &s->fopts, &r);

		now = (int64_t)time(NULL);
		if (code == 0) {
			uint32_t max_age = r.policy.max_age;

			log_info("%s: MTA-STS policy id=%s mode=%s max_age=%u fetched", domain, id,
				 sts_mode_name(r.policy.mode), max_age);
			sts_entry_fetched(&e, now, id, r.body, r.len, max_age);
			r.body = NULL;
		} else {
			log_warn("%s: MTA-STS policy fetch failed (%s): %s%s", domain,
				 result_code_name(code), r.err,
				 sts_entry_valid(&e, now) ? "; using the cached policy" : "");
			sts_entry_failed(&e, now, id, code, r.err);
			send_failure(s, &e, code, &r);
		}
		sts_fetch_result_free(&r);
	}
	if (sts_cache_put(s->cache, &e) < 0) {
		static struct log_limit lim;

		log_warn_limited(&lim, "%s: cannot update the policy cache (full: %zu entries)",
				 domain, sts_cache_count(s->cache));
	}
	sts_entry_free(&e);
}

static void *worker_main(void *arg)
{
	struct service *s = arg;
	size_t me;

	pthread_mutex_lock(&s->lock);
	for (me = 0; me < WORKERS && !pthread_equal(s->workers[me], pthread_self()); me++)
		;
	for (;;) {
		struct job *j;

		while (!s->stop && s->qhead == NULL)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stop)
			break;
		j = s->qhead;
		s->qhead = j->next;
		if (s->qhead == NULL)
			s->qtail = NULL;
		s->queued--;
		if (me < WORKERS)
			snprintf(s->busy[me], sizeof(s->busy[me]), "%s", j->domain);
		pthread_mutex_unlock(&s->lock);

		process(s, j->domain, j->force);

		pthread_mutex_lock(&s->lock);
		if (me < WORKERS)
			s->busy[me][0] = '\0';
		j->next = s->done;
		s->done = j;
		if (write(s->wake[1], "x", 1) < 0 && errno != EAGAIN)
			log_err("wake-up pipe: %s", strerror(errno));
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/*
 * Queue a job unless one for the domain is queued or running. Returns 1 if
 * one is (now) pending, 0 if the queue is full.
 */
static int enqueue(struct service *s, const char *domain, bool force)
{
	struct job *j;
	int rc = 1;

	pthread_mutex_lock(&s->lock);
	for (j = s->qhead; j; j = j->next)
		if (strcmp(j->domain, domain) == 0) {
			j->force |= force;
			goto out;
		}
	for (size_t i = 0; i < WORKERS; i++)
		if (strcmp(s->busy[i], domain) == 0 && !force)
			goto out;
	if (s->queued >= QUEUE_MAX || (j = calloc(1, sizeof(*j))) == NULL) {
		rc = 0;
		goto out;
	}
	snprintf(j->domain, sizeof(j->domain), "%s", domain);
	j->force = force;
	if (s->qtail)
		s->qtail->next = j;
	else
		s->qhead = j;
	s->qtail = j;
	s->queued++;
	pthread_cond_signal(&s->cond);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- connections ---- */

static void save_cache(struct service *s);

static void conn_reply(struct conn *c, const char *status, const struct buf *data)
{
	if (socketmap_reply(&c->out, status, data->data, data->len) < 0)
		socketmap_reply(&c->out, "TEMP", "reply too long", 14);
}

/* Answer a waiting connection now. */
static void finish_wait(struct service *s, struct conn *c, struct buf *data)
{
	struct sts_entry e;
	int64_t now = (int64_t)time(NULL);

	c->waiting = false;
	if (sts_cache_get(s->cache, c->wait_domain, &e) < 0) {
		buf_reset(data);
		conn_reply(c, "TEMP", data);
		return;
	}
	if (c->wait_refresh) {
		save_cache(s);	/* tlsrptctl sts show reads the file next */
		build_status(&e, c->started, now, data);
		conn_reply(c, "OK", data);
	} else {
		conn_reply(c, build_reply(s, c->wait_attrs ? GEN_310 : s->gen, &e, now, data),
			   data);
	}
	sts_entry_free(&e);
}

/* One request; may leave the connection waiting. */
static void handle_request(struct service *s, struct conn *c, const char *req,
			   size_t len, struct buf *data)
{
	const char *name, *key;
	size_t nlen, klen;
	char domain[STS_DOMAIN_MAX + 1];
	struct sts_entry e;
	int64_t now = (int64_t)time(NULL);
	int found;
	bool refresh, attrs;
	enum generation gen;

	buf_reset(data);
	if (socketmap_split(req, len, &name, &nlen, &key, &klen) < 0) {
		buf_adds(data, "malformed request");
		conn_reply(c, "PERM", data);
		return;
	}
	refresh = nlen == strlen(REFRESH_NAME) && memcmp(name, REFRESH_NAME, nlen) == 0;
	attrs = nlen == strlen(REPORT_NAME) && memcmp(name, REPORT_NAME, nlen) == 0;
	gen = attrs ? GEN_310 : s->gen;
	if (normalise_domain(key, klen, domain, sizeof(domain)) < 0) {
		/* ".parent", "[ip]", "host:port", paths: not ours */
		if (refresh) {
			buf_adds(data, "not a domain name");
			conn_reply(c, "PERM", data);
		} else {
			conn_reply(c, "NOTFOUND", data);
		}
		return;
	}
	if (refresh) {
		if (!enqueue(s, domain, true)) {
			buf_adds(data, "queue full");
			conn_reply(c, "TEMP", data);
			return;
		}
		c->waiting = c->wait_refresh = true;
		snprintf(c->wait_domain, sizeof(c->wait_domain), "%s", domain);
		c->started = now;
		c->deadline = mono_ms() + (s->fopts.timeout + 10) * 1000;
		return;
	}
	found = sts_cache_get(s->cache, domain, &e);
	if (found < 0) {
		conn_reply(c, "NOTFOUND", data);
		return;
	}
	if (sts_entry_valid(&e, now) || (found && now - e.checked < STS_CHECK_INTERVAL)) {
		if (sts_needs_check(&e, now, s->refresh))
			enqueue(s, domain, false);
		conn_reply(c, build_reply(s, gen, &e, now, data), data);
	} else if (enqueue(s, domain, false)) {
		c->waiting = true;
		c->wait_refresh = false;
		c->wait_attrs = attrs;
		snprintf(c->wait_domain, sizeof(c->wait_domain), "%s", domain);
		c->started = now;
		c->deadline = mono_ms() + s->budget_ms;
	} else {
		conn_reply(c, build_reply(s, gen, &e, now, data), data);
	}
	sts_entry_free(&e);
}

/* Parse and answer what has arrived, up to the first request that waits. */
static int conn_process(struct service *s, struct conn *c, struct buf *data)
{
	size_t off = 0;

	while (!c->waiting) {
		const char *p, *why;
		size_t plen, used;
		enum socketmap_status st = socketmap_parse(c->in + off, c->inlen - off,
							   SOCKETMAP_MAX_QUERY, &p, &plen,
							   &used, &why);

		if (st == SOCKETMAP_BAD) {
			log_warn("closing a connection: %s", why);
			return -1;
		}
		if (st == SOCKETMAP_MORE)
			break;
		handle_request(s, c, p, plen, data);
		off += used;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	return 0;
}

/* Read what is there. -1: close. */
static int conn_read(struct service *s, struct conn *c, struct buf *data)
{
	for (;;) {
		ssize_t n;

		if (c->inlen == sizeof(c->in))
			return c->waiting ? 0 : -1;	/* cannot be a valid request */
		n = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->inlen += (size_t)n;
		if (conn_process(s, c, data) < 0)
			return -1;
	}
}

static int conn_write(struct conn *c)
{
	while (c->outoff < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->outoff, c->out.len - c->outoff,
				 MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->outoff += (size_t)n;
	}
	buf_reset(&c->out);
	c->outoff = 0;
	return 0;
}

static void conn_close(struct conn **conns, size_t *n, size_t i)
{
	close(conns[i]->fd);
	buf_free(&conns[i]->out);
	free(conns[i]);
	conns[i] = conns[--*n];
}

/* ---- setup ---- */

static int listen_on(const char *spec, bool *is_unix, struct usock *us)
{
	int fd = -1;

	*is_unix = false;
	if (strncmp(spec, "unix:", 5) == 0) {
		/* mode 0660: Postfix (group postfix, from the setgid socket
		 * directory) connects; bound safely as root (lib/core/usock.h) */
		struct usock_opts o = { .type = SOCK_STREAM, .mode = 0660, .backlog = 128 };
		char err[512];

		*is_unix = true;
		if (usock_bind(spec + 5, &o, us, err, sizeof(err)) != 0) {
			log_fatal("policy_socket: %s", err);
			return -1;
		}
		return us->fd;
	}
	if (strncmp(spec, "inet:", 5) == 0) {
		char host[256];
		const char *colon = strrchr(spec + 5, ':');
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
		struct addrinfo *ai;
		int one = 1, rc;

		if (colon == NULL || (size_t)(colon - spec - 5) >= sizeof(host)) {
			log_fatal("policy_socket %s: want inet:HOST:PORT", spec);
			return -1;
		}
		memcpy(host, spec + 5, (size_t)(colon - spec - 5));
		host[colon - spec - 5] = '\0';
		if ((rc = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &ai)) != 0) {
			log_fatal("policy_socket %s: %s", spec, gai_strerror(rc));
			return -1;
		}
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
			log_fatal("%s: %s", spec, strerror(errno));
			if (fd >= 0)
				close(fd);
			fd = -1;
		}
		freeaddrinfo(ai);
		return fd;
	}
	log_fatal("policy_socket %s: want unix:PATH or inet:HOST:PORT", spec);
	return -1;
}

static int check_conf(const struct conf *c, struct service *s)
{
	const char *gen = conf_str(c, "postfix_generation");
	const char *lvl = conf_str(c, "policy_default_level");

	if (strcmp(gen, "3.10") == 0) {
		s->gen = GEN_310;
	} else if (strcmp(gen, "3.7") == 0) {
		s->gen = GEN_37;
	} else {
		log_fatal("postfix_generation: want 3.10 or 3.7, not \"%s\"", gen);
		return -1;
	}
	if (strcmp(lvl, "may") == 0 || strcmp(lvl, "encrypt") == 0) {
		s->level = lvl;
	} else if (strcmp(lvl, "dane") == 0) {
		s->level = NULL;	/* never lower a dane default: NOTFOUND */
	} else {
		log_fatal("policy_default_level: want may, encrypt or dane, not \"%s\"", lvl);
		return -1;
	}
	if (strncmp(conf_str(c, "policy_socket"), "unix:", 5) != 0 &&
	    strncmp(conf_str(c, "policy_socket"), "inet:", 5) != 0) {
		log_fatal("policy_socket: want unix:PATH or inet:HOST:PORT");
		return -1;
	}
	return 0;
}

static void save_cache(struct service *s)
{
	char err[600];

	if (sts_cache_dirty(s->cache) &&
	    sts_cache_save(s->cache, conf_str(s->conf, "sts_cache_file"), err, sizeof(err)) < 0)
		log_err("cannot save the policy cache: %s", err);
}

int main(int argc, char **argv)
{
	struct cmdline cl;
	bool foreground, is_unix;
	struct usock us = { .fd = -1, .dirfd = -1 };
	int verbose, rc, sfd, lfd;
	struct conf *conf = conf_new();
	static struct service s;
	struct conn **conns;
	size_t nconns = 0, skipped;
	struct pollfd *pfd;
	struct buf data;
	char err[600];
	sigset_t mask;
	long loaded;
	int64_t last_sweep = 0, last_save = 0;
	bool stop = false;

	if (conf == NULL)
		return 70;
	rc = cmdline_daemon(argc, argv, "tlsrpt-policyd", DEFAULT_CONFIG,
			    "check the configuration and exit", conf, &cl);
	if (rc >= 0) {
		conf_free(conf);
		return rc;
	}
	foreground = cl.foreground;
	verbose = cl.verbose;
	s.conf = conf;
	if (check_conf(conf, &s) < 0)
		return 78;
	if (cl.check) {
		printf("tlsrpt-policyd: configuration OK\n");
		conf_free(conf);
		return 0;
	}
	s.budget_ms = conf_int(conf, "sts_reply_budget") * 1000;
	s.refresh = conf_int(conf, "sts_refresh_interval");
	s.resolver = conf_str(conf, "dns_resolver");
	s.fopts.ca_file = conf_str(conf, "sts_ca_file");
	s.fopts.resolver = s.resolver;
	s.fopts.port = (int)conf_int(conf, "sts_https_port");
	s.fopts.timeout = (long)conf_int(conf, "sts_fetch_timeout");
	s.fopts.max_size = (size_t)conf_int(conf, "sts_max_policy_size");
	s.cache = sts_cache_new();
	conns = calloc(MAX_CONNS, sizeof(*conns));
	pfd = calloc(MAX_CONNS + 3, sizeof(*pfd));
	if (s.cache == NULL || conns == NULL || pfd == NULL || sts_fetch_global_init() < 0) {
		log_fatal("out of memory");
		return 70;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);	/* workers inherit the mask */
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);

	umask(027);
	lfd = listen_on(conf_str(conf, "policy_socket"), &is_unix, &us);
	if (lfd < 0 || sfd < 0)
		return 71;
	if (privs_drop(conf_str(conf, "user"), NULL, err, sizeof(err)) < 0) {
		log_fatal("%s", err);
		return 71;
	}
	/* the cache is read and written as the service user only */
	loaded = sts_cache_load(s.cache, conf_str(conf, "sts_cache_file"),
				(size_t)conf_int(conf, "sts_max_policy_size"), &skipped, err,
				sizeof(err));
	if (loaded < 0) {
		log_fatal("%s", err);
		return 73;
	}
	if (skipped)
		log_warn("policy cache: %zu bad entries skipped", skipped);
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	if (pipe2(s.wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		log_fatal("pipe: %s", strerror(errno));
		return 71;
	}
	pthread_mutex_lock(&s.lock);	/* workers find their slot after this */
	for (size_t i = 0; i < WORKERS; i++)
		if (pthread_create(&s.workers[i], NULL, worker_main, &s) != 0) {
			log_fatal("cannot start worker threads");
			return 71;
		}
	pthread_mutex_unlock(&s.lock);
	buf_init(&data, SOCKETMAP_MAX_REPLY - 16);
	log_info("MTA-STS policy service on %s for Postfix %s, %ld cached policies",
		 conf_str(conf, "policy_socket"), s.gen == GEN_310 ? "3.10" : "3.7", loaded);

	while (!stop) {
		size_t np = 0;
		int64_t now_ms = mono_ms(), next = now_ms + 1000;
		int64_t now = (int64_t)time(NULL);

		pfd[np++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = s.wake[0], .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = nconns < MAX_CONNS ? lfd : -1, .events = POLLIN };
		for (size_t i = 0; i < nconns; i++) {
			struct conn *c = conns[i];

			/* a waiting connection is not read: its next request waits too */
			pfd[np++] = (struct pollfd){ .fd = c->fd,
				.events = (short)((c->waiting ? 0 : POLLIN) |
						  (c->out.len > c->outoff ? POLLOUT : 0)) };
			if (c->waiting && c->deadline < next)
				next = c->deadline;
		}
		if (poll(pfd, (nfds_t)np, (int)(next > now_ms ? next - now_ms : 0)) < 0 &&
		    errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGHUP)
					log_init("tlsrpt-policyd", foreground ? LOG_TO_STDERR :
						 LOG_TO_SYSLOG, verbose);
				else
					stop = true;
			}
		}
		/* finished jobs: answer who waits for them */
		if (pfd[1].revents & POLLIN) {
			char drain[256];
			struct job *done;

			while (read(s.wake[0], drain, sizeof(drain)) > 0)
				;
			pthread_mutex_lock(&s.lock);
			done = s.done;
			s.done = NULL;
			pthread_mutex_unlock(&s.lock);
			while (done) {
				struct job *next_job = done->next;

				for (size_t i = 0; i < nconns; i++)
					if (conns[i]->waiting &&
					    strcmp(conns[i]->wait_domain, done->domain) == 0) {
						finish_wait(&s, conns[i], &data);
						conn_process(&s, conns[i], &data);
					}
				free(done);
				done = next_job;
			}
		}
		/* connections: the budget, then I/O */
		now_ms = mono_ms();
		for (size_t i = 0, k = 3; i < nconns; k++) {
			struct conn *c = conns[i];
			short rev = pfd[k].fd == c->fd ? pfd[k].revents : 0;
			int bad = 0;

			if (c->waiting && now_ms >= c->deadline) {
				log_debug("%s: reply budget spent, fallback reply", c->wait_domain);
				finish_wait(&s, c, &data);
				bad = conn_process(&s, c, &data) < 0;
			}
			if (!bad && (rev & (POLLIN | POLLHUP | POLLERR)))
				bad = conn_read(&s, c, &data) < 0;
			if (!bad)
				bad = conn_write(c) < 0;
			if (rev & (POLLIN | POLLOUT))
				c->active = now_ms / 1000;
			if (!bad && now_ms / 1000 - c->active > IDLE_TIMEOUT && !c->waiting)
				bad = 1;
			if (bad)
				conn_close(conns, &nconns, i);	/* moves the last one here */
			else
				i++;
		}
		/* new connections */
		if (pfd[2].revents & POLLIN) {
			int fd;

			while (nconns < MAX_CONNS &&
			       (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				struct conn *c = calloc(1, sizeof(*c));

				if (c == NULL) {
					close(fd);
					break;
				}
				c->fd = fd;
				c->active = now_ms / 1000;
				buf_init(&c->out, 4 * SOCKETMAP_MAX_REPLY);
				conns[nconns++] = c;
			}
		}
		/* background refresh, cache on disk */
		if (now - last_sweep >= SWEEP_INTERVAL) {
			char due[64][STS_DOMAIN_MAX + 1];
			size_t n = sts_cache_due(s.cache, now, s.refresh, due, 64);

			for (size_t i = 0; i < n; i++)
				enqueue(&s, due[i], false);
			n = sts_cache_prune(s.cache, now);
			if (n)
				log_debug("forgot %zu cache entries", n);
			last_sweep = now;
		}
		if (now != last_save) {
			save_cache(&s);
			last_save = now;
		}
	}

	log_info("stopping");
	pthread_mutex_lock(&s.lock);
	s.stop = true;
	pthread_cond_broadcast(&s.cond);
	pthread_mutex_unlock(&s.lock);
	for (size_t i = 0; i < WORKERS; i++)
		pthread_join(s.workers[i], NULL);
	save_cache(&s);
	while (nconns)
		conn_close(conns, &nconns, 0);
	while (s.qhead) {
		struct job *j = s.qhead;

		s.qhead = j->next;
		free(j);
	}
	while (s.done) {
		struct job *j = s.done;

		s.done = j->next;
		free(j);
	}
	if (is_unix)
		usock_remove(&us);	/* closes lfd */
	else
		close(lfd);
	buf_free(&data);
	free(conns);
	free(pfd);
	sts_cache_free(s.cache);
	conf_free(conf);
	return 0;
}
