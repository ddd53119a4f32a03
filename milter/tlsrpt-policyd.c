/*
 * tlsrpt-policyd - DANE first (RFC 7672), then MTA-STS (RFC 8461), for
 * Postfix's smtp_tls_policy_maps, over the socketmap protocol
 * (lib/sts/socketmap.h), with the TLSRPT attributes of Postfix 3.10 so that
 * reports name the policy that was applied.
 *
 * A separate program from the collector because it needs the network
 * (DNS, HTTPS fetches of policies) and the collector does not.
 *
 * Design: one thread runs a poll loop over the listening socket and every
 * Postfix connection and answers from the caches at once: DANE verdicts
 * (lib/dane/dane.h, kept for the DNS TTLs) and MTA-STS policies
 * (lib/sts/sts_cache.h). A lookup with nothing usable cached queues a job
 * (DANE lookups, then MTA-STS discovery + fetch when DANE does not apply)
 * for a bounded pool of worker threads (WORKERS threads, QUEUE_MAX jobs,
 * one job per key at a time) and waits for it at most sts_reply_budget;
 * then it answers from what is known (an expired DANE verdict, else the
 * fallback for an unknown domain, NOTFOUND, so that Postfix uses its
 * default level; never TEMP, which would defer all mail to the domain)
 * while the job completes in the background. Workers signal the loop
 * through a pipe. Cached policies are refreshed in the background:
 * discovery again when a domain is used and STS_CHECK_INTERVAL has passed
 * (a new TXT id fetches the new policy), and a sweep fetches policies older
 * than sts_refresh_interval or close to expiry.
 *
 * DANE (policy_dane = yes; lib/dane/dane.h has the verdict rules): with
 * DNSSEC-validated (AD bit) usable TLSA records for the destination's MX
 * hosts the reply is "OK dane-only" (policy_dane_level; or "dane"), with
 * only unusable ones or a failed TLSA lookup under a secure MX "OK dane":
 * Postfix then does DANE itself (its own TLSA lookups, its own tlsa
 * reports on 3.10), and MTA-STS never overrides it (RFC 8461 2). No TLSRPT
 * attributes go with a dane reply (Postfix allows them only for sts).
 * Otherwise the MTA-STS reply (lib/sts/sts_reply.h); a dane
 * policy_default_level still gives NOTFOUND for testing-mode policies.
 *
 * A failed fetch is never answered with policy_failure=: Postfix 3.10.13
 * ignores it at may and defers mail at levels that match certificates,
 * while RFC 8461 3.3 says to deliver as if there were no policy, or with
 * the cached one. Instead every failed fetch (at most one per
 * STS_RETRY_DELAY and policy id) is sent to the collector as a datagram
 * (lib/sts/sts_report.h). max_age 0: the policy fetched applies to the
 * lookups waiting for that fetch and is not cached; the next lookup
 * fetches again.
 *
 * Keys (lib/dane/dane.h dane_dest_parse): "domain", "domain:port",
 * "[domain]", "[domain]:port" (relayhost and transport next hops); the
 * Policy Domain is the domain (RFC 8461 3.4), DANE looks at its MX hosts
 * (not for "[domain]", which is the host itself) on that port. NOTFOUND
 * for ".parent" forms, address literals and anything that is not a host
 * name with a dot.
 *
 * Request names: any name gets replies for postfix_generation; "tlsrpt"
 * always 3.10-style replies (tlsrptd's log_policy_map on Postfix 3.7, so
 * that its log follower knows the sts policy, or the dane level after
 * which it looks up the TLSA records of the MX it saw); Postfix 3.7 itself
 * must use another name ("postfix"). "tlsrptctl-refresh" forces a lookup
 * and answers with a one-line status once it is done; "tlsrptctl-stats"
 * answers with the counters (replies by kind, policy lines Postfix's
 * syntax cannot carry).
 *
 * SECURITY: requests come from any process that can reach the socket: they
 * are bounded netstrings, keys are validated host names. The unix socket
 * is made before privileges are dropped (user, no-new-privs); the HTTPS
 * side is lib/sts/sts_fetch.h, DNS replies are parsed by bounded parsers.
 * DANE trusts the AD bit of dns_resolver: it must be a validating resolver
 * on this host (or reached over a trusted path).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
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
#include "confcheck.h"
#include "config.h"
#include "dane.h"
#include "dns.h"
#include "log.h"
#include "privs.h"
#include "result.h"
#include "socketmap.h"
#include "sts_cache.h"
#include "sts_fetch.h"
#include "sts_policy.h"
#include "usock.h"
#include "sts_reply.h"
#include "sts_report.h"
#include "workq.h"

#define DEFAULT_CONFIG SYSCONFDIR "/tlsrptd/tlsrptd.conf"
#define WORKERS 8		/* parallel lookups + fetches */
#define QUEUE_MAX 1024		/* jobs waiting for a worker */
#define MAX_CONNS 1000		/* Postfix connections at a time */
#define IDLE_TIMEOUT 300	/* s before an idle connection is closed */
#define SWEEP_INTERVAL 30	/* s between refresh sweeps */
#define REFRESH_NAME "tlsrptctl-refresh"
#define STATS_NAME "tlsrptctl-stats"
#define REPORT_NAME "tlsrpt"	/* 3.10 replies for tlsrptd's log_policy_map */

/* job flags (lib/core/workq.h): WORKQ_FORCE for tlsrptctl-refresh (DANE and
 * MTA-STS looked up again); JOB_DANE: the DANE lookups (unless fresh);
 * JOB_STS: MTA-STS discovery and fetch when due, unless DANE applies. A
 * max_age 0 policy fetched by a job is its result. */
#define JOB_DANE 2u
#define JOB_STS 4u
#define JOB_ALL (JOB_DANE | JOB_STS)

struct counters {
	uint64_t lookups, dane_only, dane, sts, notfound, waited, budget_spent;
	uint64_t lines_unsendable;	/* policy lines with { or }, per policy fetched */
	uint64_t once;			/* max_age 0 policies applied */
};

struct service {
	const struct conf *conf;
	enum sts_reply_gen gen;
	const char *level;		/* policy_default_level, or NULL for NOTFOUND */
	bool dane_on;
	const char *dane_level;		/* policy_dane_level */
	int64_t budget_ms, refresh;
	struct sts_fetch_opts fopts;
	const char *resolver;
	struct sts_cache *cache;
	struct dane_cache *dane;
	struct counters n;		/* loop thread only, but lines_unsendable (atomic) */
	struct workq *q;		/* lookups and fetches off the loop */
};

struct conn {
	int fd;
	char in[SOCKETMAP_MAX_QUERY + 32];
	size_t inlen;
	struct buf out;
	size_t outoff;
	bool waiting;			/* for a job on wait.key */
	bool wait_refresh;		/* ... started by tlsrptctl-refresh */
	bool wait_attrs;		/* ... for REPORT_NAME: reply as for 3.10 */
	struct dane_dest wait;
	int64_t deadline;		/* ms, monotonic */
	int64_t started;		/* unix time the wait began */
	int64_t active;			/* s, monotonic */
	char req[160];			/* "NAME KEY" of the request answered next (printable) */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- replies ---- */

/* The DANE level for a verdict, or NULL when MTA-STS decides. */
static const char *dane_reply_level(const struct service *s, enum dane_verdict v)
{
	switch (v) {
	case DANE_USABLE:
		return s->dane_level;
	case DANE_UNUSABLE:	/* TLS required, not authenticated; Postfix reports tlsa-invalid */
	case DANE_FAILED:	/* Postfix looks up again and defers if it fails too */
		return "dane";
	default:
		return NULL;
	}
}

/*
 * The reply for destination 'd' at 'now' for generation 'gen': status
 * (static) and data in 'data'. 'once' is a max_age 0 policy body fetched
 * for this lookup (or NULL).
 */
static const char *build_reply(struct service *s, enum sts_reply_gen gen,
			       const struct dane_dest *d, int64_t now, const char *once,
			       size_t once_len, struct buf *data)
{
	const char *status = "NOTFOUND";

	buf_reset(data);
	s->n.lookups++;
	if (s->dane_on) {
		struct dane_result dr;
		const char *lvl;

		if (dane_cache_get(s->dane, d->key, now, &dr) > 0 &&
		    (lvl = dane_reply_level(s, dr.verdict)) != NULL) {
			buf_adds(data, lvl);
			if (strcmp(lvl, "dane") == 0)
				s->n.dane++;
			else
				s->n.dane_only++;
			return "OK";
		}
	}
	if (once) {
		struct sts_policy p;
		char err[200];

		if (sts_policy_parse(once, once_len, SIZE_MAX, &p, err, sizeof(err)) ==
		    STS_POLICY_OK) {
			status = sts_reply_policy(gen, s->level, d->domain, &p, data);
			sts_policy_free(&p);
			s->n.once++;
		}
	} else {
		struct sts_entry e;

		if (sts_cache_get(s->cache, d->domain, &e) >= 0) {
			status = sts_reply_entry(gen, s->level, &e, now, data);
			sts_entry_free(&e);
		}
	}
	if (strcmp(status, "OK") == 0)
		s->n.sts++;
	else
		s->n.notfound++;
	return status;
}

static void build_stats(struct service *s, struct buf *data)
{
	uint64_t unsendable;

	unsendable = __atomic_load_n(&s->n.lines_unsendable, __ATOMIC_RELAXED);
	buf_reset(data);
	buf_printf(data, "lookups=%llu dane-only=%llu dane=%llu sts=%llu notfound=%llu "
		   "waited=%llu budget_spent=%llu max_age_0=%llu policy_lines_unsendable=%llu "
		   "dane_cached=%zu sts_cached=%zu",
		   (unsigned long long)s->n.lookups, (unsigned long long)s->n.dane_only,
		   (unsigned long long)s->n.dane, (unsigned long long)s->n.sts,
		   (unsigned long long)s->n.notfound, (unsigned long long)s->n.waited,
		   (unsigned long long)s->n.budget_spent, (unsigned long long)s->n.once,
		   (unsigned long long)unsendable, s->dane ? dane_cache_count(s->dane) : (size_t)0,
		   sts_cache_count(s->cache));
}

/* ---- workers ---- */

/* DANE lookups for the job's destination; true when DANE decides. */
static bool process_dane(struct service *s, const struct dane_dest *d, bool force)
{
	struct dane_result dr;
	int64_t now = (int64_t)time(NULL);
	int have = dane_cache_get(s->dane, d->key, now, &dr);

	if (have != 1 || force) {
		dane_check(s->resolver, d, &dr);
		now = (int64_t)time(NULL);
		if (dane_cache_put(s->dane, d->key, now, &dr) < 0)
			log_warn("%s: cannot cache the DANE verdict (out of memory)", d->key);
		if (dr.verdict == DANE_NONE)
			log_debug("%s: DANE %s, ttl %u: %s", d->key, dane_verdict_name(dr.verdict),
				  dr.ttl, dr.why);
		else
			log_info("%s: DANE %s, ttl %u: %s", d->key, dane_verdict_name(dr.verdict),
				 dr.ttl, dr.why);
		/* Postfix 3.10 defers such mail without a report of its own; the
		 * 3.7 log follower finds its "TLSA lookup error" line itself */
		if (dr.verdict == DANE_FAILED && s->gen == STS_GEN_310)
			sts_report_dane_failure(conf_str(s->conf, "socket_path"), s->resolver,
						d->domain, dr.fail_host, RESULT_DNSSEC_INVALID);
	}
	return dane_reply_level(s, dr.verdict) != NULL;
}

/* Discovery and, when due, a fetch for the job's domain. Runs in a worker. */
static void process_sts(struct service *s, const struct dane_dest *d, bool force,
			struct workq_job *j)
{
	const char *domain = d->domain;
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
			size_t bad = sts_reply_unsendable(&r.policy);

			log_info("%s: MTA-STS policy id=%s mode=%s max_age=%u fetched%s", domain, id,
				 sts_mode_name(r.policy.mode), max_age,
				 max_age == 0 ? " (applied to this lookup, not cached)" : "");
			if (bad) {
				log_warn("%s: %zu policy lines hold { or }, which Postfix's attribute "
					 "syntax cannot carry: left out of policy_string", domain, bad);
				__atomic_fetch_add(&s->n.lines_unsendable, bad, __ATOMIC_RELAXED);
			}
			if (max_age == 0) {
				free(j->result);
				j->result = r.body;
				j->result_len = r.len;
				sts_entry_fetched(&e, now, id, NULL, 0, 0);
			} else {
				sts_entry_fetched(&e, now, id, r.body, r.len, max_age);
			}
			r.body = NULL;
		} else {
			log_warn("%s: MTA-STS policy fetch failed (%s): %s%s", domain,
				 result_code_name(code), r.err,
				 sts_entry_valid(&e, now) ? "; using the cached policy" : "");
			sts_entry_failed(&e, now, id, code, r.err);
			sts_report_failure(conf_str(s->conf, "socket_path"), s->resolver, &e, code,
					   r.body, r.len);
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

/* One job of the work queue. Runs in a worker. */
static void process(void *arg, struct workq_job *j)
{
	struct service *s = arg;
	struct dane_dest d;
	bool force = j->flags & WORKQ_FORCE;

	if (dane_dest_parse(j->key, strlen(j->key), &d) < 0)
		return;
	if (s->dane_on && (j->flags & JOB_DANE) && process_dane(s, &d, force) && !force)
		return;		/* DANE applies: MTA-STS is not consulted */
	if (j->flags & JOB_STS)
		process_sts(s, &d, force, j);
}

/* Queue a lookup for 'd' with 'flags'. 1 if one is pending, 0 if the
 * queue is full. */
static int enqueue(struct service *s, const struct dane_dest *d, unsigned flags)
{
	return workq_add(s->q, d->key, flags);
}

/* A fresh DANE verdict in the last quarter of its TTL is looked up again in
 * the background, so that busy destinations never wait for it. */
static bool dane_refresh_due(const struct dane_result *dr, int64_t now)
{
	return dr->expires - now < (int64_t)dr->ttl / 4;
}

/* ---- connections ---- */

static void save_cache(struct service *s);

static void conn_reply(struct conn *c, const char *status, const struct buf *data)
{
	if (log_debug_on()) {
		char pr[120];

		log_debug("lookup %s: %s%s%s", c->req, status, data->len ? " " : "",
			  log_printable(pr, sizeof(pr), data->data ? data->data : "", data->len));
	}
	if (socketmap_reply(&c->out, status, data->data, data->len) < 0)
		socketmap_reply(&c->out, "TEMP", "reply too long", 14);
}

/* Answer a waiting connection now: its job 'j' is done, or (NULL) the
 * budget is spent. */
static void finish_wait(struct service *s, struct conn *c, const struct workq_job *j,
			struct buf *data)
{
	int64_t now = (int64_t)time(NULL);
	enum sts_reply_gen gen = c->wait_attrs ? STS_GEN_310 : s->gen;

	c->waiting = false;
	if (j == NULL)
		s->n.budget_spent++;
	if (c->wait_refresh) {
		struct sts_entry e;
		struct dane_result dr;
		struct buf st;

		if (sts_cache_get(s->cache, c->wait.domain, &e) < 0) {
			buf_reset(data);
			conn_reply(c, "TEMP", data);
			return;
		}
		save_cache(s);	/* tlsrptctl sts show reads the file next */
		sts_reply_status(&e, c->started, now, data);
		sts_entry_free(&e);
		if (s->dane_on && dane_cache_get(s->dane, c->wait.key, now, &dr) > 0 &&
		    dane_reply_level(s, dr.verdict)) {
			buf_init(&st, 1024);
			buf_printf(&st, "; dane %s: %s", dane_verdict_name(dr.verdict), dr.why);
			buf_add(data, st.data, st.len);
			buf_free(&st);
		}
		conn_reply(c, "OK", data);
		return;
	}
	conn_reply(c, build_reply(s, gen, &c->wait, now, j ? j->result : NULL,
				  j ? j->result_len : 0, data), data);
}

static bool name_is(const char *name, size_t nlen, const char *lit)
{
	return nlen == strlen(lit) && memcmp(name, lit, nlen) == 0;
}

/* One request; may leave the connection waiting. */
static void handle_request(struct service *s, struct conn *c, const char *req,
			   size_t len, struct buf *data)
{
	const char *name, *key;
	size_t nlen, klen;
	struct dane_dest d;
	struct sts_entry e;
	struct dane_result dr;
	int64_t now = (int64_t)time(NULL);
	int found, dane_have = 1;
	bool refresh, attrs, sts_fresh, need_sts;
	enum sts_reply_gen gen;

	buf_reset(data);
	log_printable(c->req, sizeof(c->req), req, len);
	if (socketmap_split(req, len, &name, &nlen, &key, &klen) < 0) {
		buf_adds(data, "malformed request");
		conn_reply(c, "PERM", data);
		return;
	}
	if (name_is(name, nlen, STATS_NAME)) {
		build_stats(s, data);
		conn_reply(c, "OK", data);
		return;
	}
	refresh = name_is(name, nlen, REFRESH_NAME);
	attrs = name_is(name, nlen, REPORT_NAME);
	gen = attrs ? STS_GEN_310 : s->gen;
	if (dane_dest_parse(key, klen, &d) < 0) {
		/* ".parent", "[ip]", paths: not ours */
		if (refresh) {
			buf_adds(data, "not a domain name");
			conn_reply(c, "PERM", data);
		} else {
			s->n.lookups++;
			s->n.notfound++;
			conn_reply(c, "NOTFOUND", data);
		}
		return;
	}
	c->wait = d;
	c->wait_attrs = attrs;
	c->wait_refresh = refresh;
	c->started = now;
	if (refresh) {
		if (!enqueue(s, &d, WORKQ_FORCE | JOB_ALL)) {
			buf_adds(data, "queue full");
			conn_reply(c, "TEMP", data);
			return;
		}
		c->waiting = true;
		c->deadline = mono_ms() + (s->fopts.timeout + 10) * 1000;
		return;
	}
	if (s->dane_on) {
		dane_have = dane_cache_get(s->dane, d.key, now, &dr);
		if (dane_have == 1 && dane_reply_level(s, dr.verdict)) {
			if (dane_refresh_due(&dr, now))
				enqueue(s, &d, JOB_DANE);
			conn_reply(c, build_reply(s, gen, &d, now, NULL, 0, data), data);
			return;		/* DANE decides: MTA-STS not consulted */
		}
	}
	found = sts_cache_get(s->cache, d.domain, &e);
	if (found < 0) {
		conn_reply(c, build_reply(s, gen, &d, now, NULL, 0, data), data);
		return;
	}
	sts_fresh = !e.zero_age &&
		    (sts_entry_valid(&e, now) || (found && now - e.checked < STS_CHECK_INTERVAL));
	need_sts = sts_fresh && sts_needs_check(&e, now, s->refresh);
	sts_entry_free(&e);
	if (dane_have == 1 && sts_fresh) {
		unsigned bg = (need_sts ? JOB_STS : 0) |
			      (s->dane_on && dane_refresh_due(&dr, now) ? JOB_DANE : 0);

		if (bg)
			enqueue(s, &d, bg);
		conn_reply(c, build_reply(s, gen, &d, now, NULL, 0, data), data);
	} else if (enqueue(s, &d, dane_have == 1 ? JOB_STS : sts_fresh ? JOB_DANE : JOB_ALL)) {
		s->n.waited++;
		c->waiting = true;
		c->deadline = mono_ms() + s->budget_ms;
	} else {
		conn_reply(c, build_reply(s, gen, &d, now, NULL, 0, data), data);
	}
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

static int check_conf(const struct conf *c, struct service *s)
{
	/* postfix_generation and policy_default_level are enumerated (conf.c) */
	const char *lvl = conf_str(c, "policy_default_level");
	char origin[1200];

	s->gen = strcmp(conf_str(c, "postfix_generation"), "3.7") == 0 ? STS_GEN_37 : STS_GEN_310;
	/* never lower a dane default: NOTFOUND */
	s->level = strcmp(lvl, "dane") == 0 ? NULL : lvl;
	s->dane_on = conf_bool(c, "policy_dane");
	s->dane_level = conf_str(c, "policy_dane_level");	/* dane-only or dane (conf.c) */
	if (strncmp(conf_str(c, "policy_socket"), "unix:", 5) != 0 &&
	    strncmp(conf_str(c, "policy_socket"), "inet:", 5) != 0) {
		log_fatal("%s: want unix:PATH or inet:HOST:PORT, not \"%s\"",
			  conf_origin(c, "policy_socket", origin, sizeof(origin)),
			  conf_str(c, "policy_socket"));
		return -1;
	}
	return 0;
}

/* -n beyond syntax: what the service needs, as the user it runs as. */
static int check_files(const struct conf *c)
{
	struct confcheck *cc = confcheck_new(c, "tlsrpt-policyd", "tlsrpt-policyd", true);
	const char *spec = conf_str(c, "policy_socket");

	if (cc == NULL)
		return 70;
	/* the socket is bound before privileges are dropped */
	if (strncmp(spec, "unix:", 5) == 0)
		confcheck_parent_dir(cc, "policy_socket", spec + 5, confcheck_starts_as_root(cc));
	confcheck_parent_dir(cc, "sts_cache_file", conf_str(c, "sts_cache_file"), false);
	confcheck_readable(cc, "sts_ca_file");
	return confcheck_finish(cc);
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
		rc = check_files(conf);
		conf_free(conf);
		return rc;
	}
	s.budget_ms = conf_int(conf, "sts_reply_budget") * 1000;
	s.refresh = conf_int(conf, "sts_refresh_interval");
	s.resolver = conf_str(conf, "dns_resolver");
	s.fopts.ca_file = conf_str(conf, "sts_ca_file");
	s.fopts.resolver = s.resolver;
	s.fopts.port = (int)conf_int(conf, "sts_https_port");
	s.fopts.timeout = (long)conf_int(conf, "sts_fetch_timeout");
	s.fopts.max_size = (size_t)conf_int(conf, "sts_max_policy_size");
	s.fopts.allow_private = conf_bool(conf, "sts_allow_private_destinations");
	s.fopts.allow_loopback = conf_bool(conf, "sts_allow_loopback_destinations");
	s.cache = sts_cache_new();
	s.dane = dane_cache_new((size_t)conf_int(conf, "dane_cache_size"));
	conns = calloc(MAX_CONNS, sizeof(*conns));
	pfd = calloc(MAX_CONNS + 3, sizeof(*pfd));
	if (s.cache == NULL || s.dane == NULL || conns == NULL || pfd == NULL || sts_fetch_global_init() < 0) {
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
	lfd = socketmap_listen(conf_str(conf, "policy_socket"), &is_unix, &us, err, sizeof(err));
	if (lfd < 0) {
		log_fatal("%s", err);
		return cmdline_status_of(err, 71);
	}
	if (sfd < 0)
		return 71;
	if (privs_drop(conf_str(conf, "user"), NULL, err, sizeof(err)) < 0) {
		char origin[1200];

		log_fatal("%s: %s", conf_origin(conf, "user", origin, sizeof(origin)), err);
		return strstr(err, "unknown user") ? 78 : cmdline_status_of(err, 71);
	}
	/* the cache is read and written as the service user only */
	loaded = sts_cache_load(s.cache, conf_str(conf, "sts_cache_file"),
				(size_t)conf_int(conf, "sts_max_policy_size"), &skipped, err,
				sizeof(err));
	if (loaded < 0) {
		log_fatal("%s", err);
		return cmdline_status_of(err, 73);
	}
	if (skipped)
		log_warn("policy cache: %zu bad entries skipped", skipped);
	s.q = workq_new(WORKERS, QUEUE_MAX, process, &s, err, sizeof(err));
	if (s.q == NULL) {
		log_fatal("%s", err);
		return 71;
	}
	buf_init(&data, SOCKETMAP_MAX_REPLY - 16);
	log_info("%s policy service on %s for Postfix %s, %ld cached policies",
		 s.dane_on ? "DANE and MTA-STS" : "MTA-STS", conf_str(conf, "policy_socket"),
		 s.gen == STS_GEN_310 ? "3.10" : "3.7", loaded);

	while (!stop) {
		size_t np = 0;
		int64_t now_ms = mono_ms(), next = now_ms + 1000;
		int64_t now = (int64_t)time(NULL);

		pfd[np++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = workq_fd(s.q), .events = POLLIN };
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
			struct workq_job *done = workq_take_done(s.q);

			while (done) {
				struct workq_job *next_job = done->next;

				for (size_t i = 0; i < nconns; i++)
					if (conns[i]->waiting &&
					    strcmp(conns[i]->wait.key, done->key) == 0) {
						finish_wait(&s, conns[i], done, &data);
						conn_process(&s, conns[i], &data);
					}
				workq_job_free(done);
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
				log_debug("%s: reply budget spent, fallback reply", c->wait.key);
				finish_wait(&s, c, NULL, &data);
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

			for (size_t i = 0; i < n; i++) {
				struct dane_dest d;

				if (dane_dest_parse(due[i], strlen(due[i]), &d) == 0)
					enqueue(&s, &d, JOB_STS);
			}
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
	workq_free(s.q);	/* waits for the running jobs */
	save_cache(&s);
	while (nconns)
		conn_close(conns, &nconns, 0);
	if (is_unix)
		usock_remove(&us);	/* closes lfd */
	else
		close(lfd);
	buf_free(&data);
	free(conns);
	free(pfd);
	sts_cache_free(s.cache);
	dane_cache_free(s.dane);
	conf_free(conf);
	return 0;
}
