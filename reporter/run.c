/*
 * run - what single-host and fleet reporting share. See run.h.
 *
 * SECURITY: destinations come from the TLSRPT record Postfix saw (datagram
 * "pr") or from DNS; both are parsed by tlsrpt_record's strict parser and
 * only mailto: and https: URIs survive.
 */
#include "run.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "buf.h"
#include "deliver.h"
#include "dns.h"
#include "log.h"
#include "mail.h"
#include "store.h"

#define MAIL_MAX (32u * 1024 * 1024)

/* A stable pseudo-random delay in [0, max] for 'day', so that hourly runs
 * agree on when a day goes out. */
int64_t run_day_delay(int64_t day, int64_t max)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	uint64_t v = 0;
	char b[32];
	int len = snprintf(b, sizeof(b), "delay-%lld", (long long)day);

	if (max <= 0)
		return 0;
	EVP_Digest(b, (size_t)len, md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++)
		v = (v << 8) | md[i];
	return (int64_t)(v % (uint64_t)(max + 1));
}

/* ---- destinations ---- */

/* The single valid TLSRPT record of 'domain' in DNS, parsed into 'rec'. */
static enum run_resolve lookup(const struct conf *c, const char *domain,
				  struct tlsrpt_record *rec, char *why, size_t whysz)
{
	char name[300], err[256];
	struct dns_txt t;
	enum dns_status st;
	size_t found = 0, idx = 0;

	snprintf(name, sizeof(name), "_smtp._tls.%s", domain);
	st = dns_lookup_txt(name, conf_str(c, "dns_resolver"), &t, err, sizeof(err));
	if (st == DNS_NOTFOUND) {
		snprintf(why, whysz, "no TXT record at %s", name);
		return RUN_NONE;
	}
	if (st != DNS_OK) {
		snprintf(why, whysz, "DNS lookup of %s failed: %s", name, err);
		return RUN_TEMPFAIL;
	}
	for (size_t i = 0; i < t.n; i++)
		if (tlsrpt_record_is_candidate(t.rec[i], t.len[i])) {
			found++;
			idx = i;
		}
	if (found != 1) {
		snprintf(why, whysz, "%zu TLSRPT records at %s (RFC 8460: exactly one)", found, name);
		dns_txt_free(&t);
		return RUN_NONE;
	}
	if (tlsrpt_record_parse(t.rec[idx], t.len[idx], rec) != 0 || !rec->ok) {
		snprintf(why, whysz, "record at %s is invalid: %s", name,
			 rec->ndiag ? rec->diag[0] : "out of memory");
		tlsrpt_record_free(rec);
		dns_txt_free(&t);
		return RUN_NONE;
	}
	dns_txt_free(&t);
	return RUN_OK;
}

/* Where reports of 'd' go; *source says which record was used. */
enum run_resolve run_resolve(const struct conf *c, const struct agg_domain *d,
				   struct tlsrpt_record *rec, const char **source,
				   char *why, size_t whysz)
{
	const char *mode = conf_str(c, "rua_source");
	const char *pr = d->record ? d->record : "";
	enum run_resolve st;

	memset(rec, 0, sizeof(*rec));
	why[0] = '\0';
	if (strcmp(mode, "record") != 0) {
		st = lookup(c, d->domain, rec, why, whysz);
		if (st == RUN_OK) {
			*source = "dns";
			return RUN_OK;
		}
		if (strcmp(mode, "dns") == 0)
			return st;
		log_info("%s: %s; using the record Postfix saw", d->domain, why);
	}
	*source = "record";
	if (tlsrpt_record_parse(pr, strlen(pr), rec) != 0 || !rec->ok) {
		char p[200];

		snprintf(why, whysz, "the record \"%s\" is not usable: %s",
			 log_printable(p, sizeof(p), pr, strlen(pr)),
			 rec->ndiag ? rec->diag[0] : "out of memory");
		tlsrpt_record_free(rec);
		return RUN_NONE;
	}
	return RUN_OK;
}

/* ---- transport ---- */

/*
 * One batch of attempts: mail (one message at a time, in a thread of its
 * own) and HTTPS (https_concurrency posts at once, in the calling thread)
 * run side by side, and each outcome goes to the spool's done callback as
 * soon as it is known, so the spool records it before the next message is
 * handed over. The callback runs under 'lock': never two at once.
 */
struct sender {
	const struct conf *c;
	struct spool_job *jobs;
	size_t n;
	int64_t now;
	spool_done_fn done;
	void *done_arg;
	pthread_mutex_t lock;
	bool stop;			/* the spool cannot record: start nothing more */
	struct https_job *hj;
	size_t *map;			/* hj[k] is jobs[map[k]] */
};

static int sender_done(struct sender *x, struct spool_job *const *jobs, size_t n)
{
	int rc;

	pthread_mutex_lock(&x->lock);
	rc = x->done(x->done_arg, jobs, n);
	if (rc != 0)
		x->stop = true;
	pthread_mutex_unlock(&x->lock);
	return rc;
}

static bool sender_stopped(struct sender *x)
{
	bool stop;

	pthread_mutex_lock(&x->lock);
	stop = x->stop;
	pthread_mutex_unlock(&x->lock);
	return stop;
}

static void *send_mails(void *arg)
{
	struct sender *x = arg;

	for (size_t i = 0; i < x->n && !sender_stopped(x); i++) {
		struct spool_job *j = &x->jobs[i];
		struct buf msg;
		char err[256];

		if (j->scheme != RUA_MAILTO)
			continue;
		buf_init(&msg, MAIL_MAX);
		if (mail_build(j->file, j->address, x->c, x->now, &msg, err, sizeof(err)) != 0)
			/* our failure (often the configuration), neither the
			 * destination's nor the report's: never permanent, it is
			 * tried again once fixed; the next report may build */
			delivery_result_set(&j->res, false, false, 0, "message not built: %s", err);
		else
			mail_send(x->c, j->address, msg.data, msg.len, &j->res);
		buf_free(&msg);
		sender_done(x, &j, 1);
	}
	return NULL;
}

static int https_done(void *arg, struct https_job *const *hj, size_t n)
{
	struct sender *x = arg;
	struct spool_job **jobs = calloc(n ? n : 1, sizeof(*jobs));
	int rc;

	if (jobs == NULL)
		return -1;
	for (size_t k = 0; k < n; k++) {
		size_t i = x->map[hj[k] - x->hj];

		x->jobs[i].res = hj[k]->res;
		jobs[k] = &x->jobs[i];
	}
	rc = sender_done(x, jobs, n);
	free(jobs);
	return rc;
}

void run_send_jobs(void *ctx, struct spool_job *jobs, size_t n, int64_t now,
		      spool_done_fn done, void *done_arg)
{
	struct sender x = { .c = ctx, .jobs = jobs, .n = n, .now = now, .done = done,
			    .done_arg = done_arg };
	size_t nh = 0, nm = 0;
	pthread_t mailer;
	bool threaded = false;

	pthread_mutex_init(&x.lock, NULL);
	x.hj = calloc(n ? n : 1, sizeof(*x.hj));
	x.map = calloc(n ? n : 1, sizeof(*x.map));
	for (size_t i = 0; i < n; i++) {
		memset(&jobs[i].res, 0, sizeof(jobs[i].res));
		delivery_result_set(&jobs[i].res, false, false, 0, "not attempted");
		if (jobs[i].scheme == RUA_MAILTO) {
			nm++;
		} else if (x.hj && x.map) {
			x.hj[nh].url = jobs[i].uri;
			x.hj[nh].body = jobs[i].file->gz;
			x.hj[nh].len = jobs[i].file->gzlen;
			x.map[nh++] = i;
		}
	}
	if (x.hj == NULL || x.map == NULL) {
		for (size_t i = 0; i < n; i++)
			delivery_result_set(&jobs[i].res, false, false, 0, "out of memory");
		free(x.hj);
		free(x.map);
		pthread_mutex_destroy(&x.lock);
		return;		/* the spool records them all */
	}
	/* mail in its own thread when there is HTTPS to do meanwhile (each side
	 * has its own curl handles; libcurl here is built thread safe, so their
	 * two curl_global_init calls may meet) */
	if (nm > 0 && nh > 0 && pthread_create(&mailer, NULL, send_mails, &x) == 0)
		threaded = true;
	if (nh > 0)
		https_post_all(x.c, x.hj, nh, https_done, &x);
	if (threaded)
		pthread_join(mailer, NULL);
	else if (nm > 0)
		send_mails(&x);
	free(x.hj);
	free(x.map);
	pthread_mutex_destroy(&x.lock);
}

/* ---- archive copies ---- */


void run_archive_add(const struct conf *c, struct run_archive *q, const struct report *r,
			int64_t now)
{
	char err[256];

	if (q == NULL || q->n == RUN_ARCHIVE_MAX)
		return;
	buf_init(&q->msg[q->n], MAIL_MAX);
	if (mail_build(&r->file, q->address, c, now, &q->msg[q->n], err, sizeof(err)) != 0) {
		log_warn("report %s: archive copy to %s not built: %s", r->spool_id, q->address, err);
		buf_free(&q->msg[q->n]);
		return;
	}
	snprintf(q->id[q->n], sizeof(q->id[q->n]), "%s", r->spool_id);
	q->n++;
}

/* Send the queued copies ('send'), or drop them (the commit failed). */
void run_archive_flush(const struct conf *c, struct run_archive *q, bool send)
{
	for (size_t i = 0; q && i < q->n; i++) {
		struct delivery_result res;

		if (send) {
			memset(&res, 0, sizeof(res));
			mail_send(c, q->address, q->msg[i].data, q->msg[i].len, &res);
			if (res.ok)
				log_info("report %s: archive copy sent to %s", q->id[i], q->address);
			else	/* a copy is not a destination: never retried */
				log_warn("report %s: archive copy to %s failed: %s", q->id[i],
					 q->address, res.detail);
		}
		buf_free(&q->msg[i]);
	}
	if (q)
		q->n = 0;
}

size_t run_dests(const struct conf *c, const char *domain, const struct tlsrpt_record *rec,
		 struct spool_dest_spec *dests)
{
	size_t nd = 0;

	for (size_t k = 0; k < rec->nrua && nd < TLSRPT_MAX_RUA; k++) {
		if (rec->rua[k].scheme == RUA_MAILTO && strcmp(conf_str(c, "delivery_mail"), "off") == 0) {
			log_info("%s: %s skipped (delivery_mail = off)", domain, rec->rua[k].uri);
			continue;
		}
		if (rec->rua[k].scheme == RUA_HTTPS && !conf_bool(c, "delivery_https")) {
			log_info("%s: %s skipped (delivery_https = no)", domain, rec->rua[k].uri);
			continue;
		}
		dests[nd].scheme = rec->rua[k].scheme;
		dests[nd].uri = rec->rua[k].uri;
		dests[nd].address = rec->rua[k].address;
		nd++;
	}
	return nd;
}

void run_print_dry(const struct conf *c, const struct report *r, const struct agg_domain *d,
		   const struct spool_dest_spec *dests, size_t nd, const char *source,
		   const char *why)
{
	struct json_object *j = json_tokener_parse(r->json);

	printf("report %s  %s  %s\n  report-id %s\n  sessions %llu successful, %llu failed\n",
	       r->spool_id, r->domain, r->filename, r->report_id,
	       (unsigned long long)d->successes, (unsigned long long)d->failures);
	for (size_t k = 0; k < nd; k++)
		printf("  destination %s (%s)\n", dests[k].uri, source);
	if (nd == 0)
		printf("  no destination: %s\n", why);
	else if (*conf_str(c, "report_archive_address"))
		printf("  archive copy to %s\n", conf_str(c, "report_archive_address"));
	printf("%s\n", j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_NOSLASHESCAPE) : r->json);
	json_object_put(j);
}
