/*
 * spool - what the spool records about reports and their delivery, and the
 * rules that change it. See spool.h. How the records are kept (files,
 * atomic replacement, syncs) is spool_fs.c's business.
 *
 * SECURITY: the records are our own output, but they are still read
 * defensively: a missing or mistyped member is treated as absent, and a
 * report whose records cannot be read is skipped with an error, never
 * fatal.
 */
#include "spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "jget.h"
#include "log.h"
#include "spool_dest.h"
#include "spool_fs.h"
#include "spool_store.h"
#include "store.h"

#define SPOOL_BATCH 256		/* destinations per transport call */

void (*spool_test_hook)(const char *point);

static void hook(const char *point)
{
	if (spool_test_hook)
		spool_test_hook(point);
}

struct spool {
	const struct spool_store_ops *ops;	/* where the records are kept */
	void *h;				/* its handle */
};

void spool_policy_from_conf(const struct conf *c, struct spool_policy *p)
{
	p->retry_initial = conf_int(c, "retry_initial");
	p->retry_period = conf_int(c, "retry_period");
	p->suppress_period = conf_int(c, "suppress_period");
	p->retention = conf_int(c, "spool_retention");
}

/* ---- json helpers ---- */

static void jset_int(struct json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void jset_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

/* ---- open / close ---- */

struct spool *spool_open(const char *dir, bool write, char *err, size_t errsz)
{
	struct spool *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	spool_fs_test_hook = hook;
	s->ops = &spool_fs_ops;
	s->h = spool_fs_open(dir, write, err, errsz);
	if (s->h == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

struct spool *spool_open_store(const struct spool_store_ops *ops, void *h)
{
	struct spool *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->ops = ops;
	s->h = h;
	return s;
}

void spool_close(struct spool *s)
{
	if (s == NULL)
		return;
	s->ops->close(s->h);
	free(s);
}

/* ---- days ---- */

bool spool_day_done(struct spool *s, int64_t day)
{
	return s->ops->day_exists(s->h, day);
}

int spool_day_mark(struct spool *s, int64_t day, int64_t now, size_t nreports,
		   char *err, size_t errsz)
{
	struct json_object *o = json_object_new_object();
	char name[16];
	int rc = -1;

	if (o != NULL) {
		jset_int(o, "reported", now);
		jset_int(o, "reports", (int64_t)nreports);
		rc = s->ops->day_put(s->h, day, o);
	} else {
		errno = ENOMEM;
	}
	json_object_put(o);
	if (rc != 0) {
		store_format_day(name, sizeof(name), day);
		snprintf(err, errsz, "day mark %s: %s", name, strerror(errno));
	}
	return rc;
}

/* ---- suppression list ---- */

/* Suppressed until when (0: not suppressed); 'why' gets the reason. A
 * suppression that ends more than suppress_period from now was written by a
 * clock that was ahead: it is cut to suppress_period from now (and
 * rewritten so), not kept for as long as that clock was wrong. */
static int64_t suppressed_until(struct spool *s, const char *uri, int64_t now,
				const struct spool_policy *p, char *why, size_t whysz)
{
	struct json_object *o = s->ops->suppression(s->h, uri);
	int64_t until = 0;

	if (o && jget_int(o, "until") > now) {
		until = jget_int(o, "until");
		snprintf(why, whysz, "%s", jget_text(o, "reason"));
		if (until > now + p->suppress_period) {
			until = now + p->suppress_period;
			jset_int(o, "until", until);
			if (s->ops->suppression_put(s->h, uri, o) != 0)
				log_err("spool: cannot rewrite the suppression of %s: %s", uri, strerror(errno));
		}
	}
	json_object_put(o);
	return until;
}

static int suppress(struct spool *s, const char *uri, int64_t until, const char *reason)
{
	struct json_object *o = json_object_new_object();
	int rc = -1;

	if (o) {
		jset_str(o, "uri", uri);
		jset_int(o, "until", until);
		jset_str(o, "reason", reason);
		rc = s->ops->suppression_put(s->h, uri, o);
	}
	json_object_put(o);
	return rc;
}

static void unsuppress(struct spool *s, const char *uri)
{
	s->ops->suppression_remove(s->h, uri);
}

/* ---- adding ---- */

bool spool_has(struct spool *s, const char *id)
{
	return s->ops->has(s->h, id);
}

int spool_stage(struct spool *s, const struct report *r,
		const struct spool_dest_spec *dests, size_t ndests,
		const char *source, int64_t now, bool *existed,
		char *err, size_t errsz)
{
	struct json_object *meta = json_object_new_object(), *d[TLSRPT_MAX_RUA];
	char day[16];
	size_t nd = 0;
	int rc = -1;

	*existed = false;
	if (ndests > TLSRPT_MAX_RUA) {
		snprintf(err, errsz, "spool %s: %zu destinations (at most %d)", r->spool_id, ndests,
			 TLSRPT_MAX_RUA);
		json_object_put(meta);
		return -1;
	}
	if (meta == NULL)
		goto oom;
	store_format_day(day, sizeof(day), r->day);
	jset_str(meta, "id", r->spool_id);
	jset_str(meta, "report-id", r->report_id);
	jset_str(meta, "policy-domain", r->domain);
	jset_str(meta, "day", day);
	jset_int(meta, "begin", r->file.begin);
	jset_int(meta, "end", r->file.end);
	jset_str(meta, "record", r->record);
	jset_str(meta, "filename", r->filename);
	jset_str(meta, "submitter", r->id.submitter);
	jset_str(meta, "organization", r->id.organization);
	jset_str(meta, "contact", r->id.contact);
	jset_int(meta, "successes", (int64_t)r->file.successes);
	jset_int(meta, "failures", (int64_t)r->file.failures);
	jset_int(meta, "created", now);
	jset_str(meta, "destination-source", source);
	jset_int(meta, "destinations", (int64_t)ndests);
	for (nd = 0; nd < ndests; nd++)
		if ((d[nd] = spool_dest_new(&dests[nd], now)) == NULL)
			goto oom;
	rc = s->ops->stage(s->h, r->spool_id, r->gz, r->gzlen, meta, d, ndests, existed, err, errsz);
	goto out;
oom:
	snprintf(err, errsz, "spool %s: out of memory", r->spool_id);
out:
	for (size_t i = 0; i < nd; i++)
		json_object_put(d[i]);
	json_object_put(meta);
	return rc;
}

int spool_commit(struct spool *s, char *err, size_t errsz)
{
	return s->ops->commit(s->h, err, errsz);
}

int spool_add(struct spool *s, const struct report *r,
	      const struct spool_dest_spec *dests, size_t ndests,
	      const char *source, int64_t now, bool *existed,
	      char *err, size_t errsz)
{
	if (spool_stage(s, r, dests, ndests, source, now, existed, err, errsz) != 0)
		return -1;
	return spool_commit(s, err, errsz);
}

/* ---- one report loaded for delivery ---- */

struct loaded {
	char id[48];
	struct json_object *meta;
	struct report_file file;
	unsigned char *gz;
	size_t ndest;
	struct json_object *dest[TLSRPT_MAX_RUA];
};

static void loaded_free(struct loaded *l)
{
	if (l == NULL)
		return;
	json_object_put(l->meta);
	free(l->gz);
	for (size_t i = 0; i < l->ndest; i++)
		json_object_put(l->dest[i]);
	free(l);
}

static struct loaded *load(struct spool *s, const char *id, bool with_gz)
{
	struct loaded *l = calloc(1, sizeof(*l));
	int64_t n;

	if (l == NULL || !spool_fs_valid_id(id)) {
		free(l);
		return NULL;
	}
	snprintf(l->id, sizeof(l->id), "%s", id);
	if (!s->ops->has(s->h, id)) {
		free(l);
		return NULL;
	}
	if ((l->meta = s->ops->meta(s->h, id)) == NULL)
		goto bad;
	n = jget_int(l->meta, "destinations");
	if (n < 0 || n > TLSRPT_MAX_RUA)
		goto bad;
	for (int64_t i = 0; i < n; i++) {
		if ((l->dest[l->ndest] = s->ops->dest(s->h, id, (size_t)i)) == NULL)
			goto bad;
		l->ndest++;
	}
	if (with_gz) {
		if (s->ops->gz(s->h, id, &l->gz, &l->file.gzlen) != 0)
			goto bad;
		l->file.gz = l->gz;
	}
	l->file.policy_domain = jget_str(l->meta, "policy-domain");
	l->file.submitter = jget_str(l->meta, "submitter");
	l->file.organization = jget_str(l->meta, "organization");
	l->file.contact = jget_str(l->meta, "contact");
	l->file.report_id = jget_str(l->meta, "report-id");
	l->file.filename = jget_str(l->meta, "filename");
	l->file.begin = jget_int(l->meta, "begin");
	l->file.end = jget_int(l->meta, "end");
	l->file.successes = (uint64_t)jget_int(l->meta, "successes");
	l->file.failures = (uint64_t)jget_int(l->meta, "failures");
	if (!l->file.policy_domain || !l->file.submitter || !l->file.organization ||
	    !l->file.contact || !l->file.report_id || !l->file.filename)
		goto bad;
	return l;
bad:
	log_err("spool: report %s is unreadable or incomplete; skipped", id);
	loaded_free(l);
	return NULL;
}

static int save_dest(struct spool *s, const struct loaded *l, size_t i)
{
	return s->ops->put_dest(s->h, l->id, i, l->dest[i]);
}

/* No destination of 'l' is pending any more. */
static bool all_final(const struct loaded *l)
{
	for (size_t i = 0; i < l->ndest; i++)
		if (!spool_dest_final(l->dest[i]))
			return false;
	return true;
}

static void mark_done(struct spool *s, const char *id)
{
	s->ops->set_final(s->h, id, true);
}

/* Attempts that were begun but never recorded: a crash. */
static int recover_in_flight(struct spool *s, struct loaded *l, size_t i, int64_t now,
			     const struct spool_policy *p, struct spool_stats *st)
{
	if (!spool_dest_interrupted(l->dest[i], now, p))
		return 0;
	st->interrupted++;
	if (spool_dest_state(l->dest[i]) == SPOOL_DEST_GIVEN_UP)
		st->given_up++;
	return save_dest(s, l, i);
}

struct job_ref {
	struct loaded *l;
	size_t dest;
};

/* Write the state of every destination in 'refs' at once, durably. */
static int save_dests(struct spool *s, const struct job_ref *refs, size_t n)
{
	struct spool_fs_ref *fr = calloc(n ? n : 1, sizeof(*fr));
	int rc;

	if (fr == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		fr[i].id = refs[i].l->id;
		fr[i].index = refs[i].dest;
		fr[i].rec = refs[i].l->dest[refs[i].dest];
	}
	rc = s->ops->put_dests(s->h, fr, n);
	free(fr);
	return rc;
}

/* One batch being attempted: what record_outcomes needs. */
struct batch {
	struct spool *s;
	struct spool_job *jobs;
	struct job_ref *refs;
	bool *recorded;
	size_t n;
	int64_t now;
	const struct spool_policy *p;
	struct spool_stats *st;
	bool write_failed;
};

/* Apply one job's outcome to its destination's record (in memory), and to
 * the suppression list when it is about the destination. */
static void apply_outcome(struct batch *b, size_t i)
{
	struct json_object *d = b->refs[i].l->dest[b->refs[i].dest];
	const struct delivery_result *r = &b->jobs[i].res;
	const char *id = b->refs[i].l->id, *uri = b->jobs[i].uri;
	enum spool_dest_state st;
	char pd[600];

	log_printable(pd, sizeof(pd), r->detail, strnlen(r->detail, sizeof(r->detail)));
	st = spool_dest_outcome(d, b->now, b->p, r, b->jobs[i].scheme == RUA_MAILTO ? "mail" : "https", pd);
	b->st->attempted++;
	switch (st) {
	case SPOOL_DEST_DELIVERED:
		b->st->delivered++;
		log_info("report %s delivered to %s: %s", id, uri, pd);
		return;
	case SPOOL_DEST_SUPPRESSED:
		b->st->suppressed++;
		if (b->p->suppress_period > 0 && uri)
			suppress(b->s, uri, b->now + b->p->suppress_period, pd);
		break;
	case SPOOL_DEST_REJECTED:
		b->st->rejected++;
		break;
	case SPOOL_DEST_GIVEN_UP:
		b->st->given_up++;
		break;
	default:
		b->st->failed++;
		break;
	}
	log_warn("report %s to %s failed%s: %s (%s)", id, uri,
		 !r->permanent ? "" : r->destination ? " permanently (the destination)"
		 : " permanently (this report)", pd, spool_dest_state_name(st));
}

/*
 * The transport's done callback: record the outcomes of 'n' jobs durably,
 * now, before the next attempt is made. Returns -1 (the transport then
 * starts no more attempts) when they cannot be written.
 */
static int record_outcomes(void *arg, struct spool_job *const *jobs, size_t n)
{
	struct batch *b = arg;
	struct job_ref *refs = calloc(n ? n : 1, sizeof(*refs));
	size_t k = 0;

	if (refs == NULL) {
		b->write_failed = true;
		return -1;
	}
	hook("outcome-known");
	for (size_t j = 0; j < n; j++) {
		size_t i = (size_t)(jobs[j] - b->jobs);

		if (jobs[j] < b->jobs || i >= b->n || b->recorded[i])
			continue;	/* not ours, or told twice */
		b->recorded[i] = true;
		apply_outcome(b, i);
		refs[k++] = b->refs[i];
	}
	if (k > 0 && !b->write_failed && save_dests(b->s, refs, k) != 0) {
		log_err("spool: cannot record the outcomes: %s", strerror(errno));
		b->write_failed = true;
	}
	free(refs);
	hook("outcome-recorded");
	return b->write_failed ? -1 : 0;
}

/*
 * Attempt one batch: record every attempt as in-flight (one sync for the
 * batch), hand the batch to the transport, which reports each outcome as
 * soon as it is known (record_outcomes writes it at once), and record what
 * the transport did not report.
 */
static int run_batch(struct spool *s, struct spool_job *jobs, struct job_ref *refs, size_t n,
		     int64_t now, const struct spool_policy *p,
		     const struct spool_transport *t, struct spool_stats *st)
{
	struct batch b = { s, jobs, refs, NULL, n, now, p, st, false };
	struct spool_job **rest;
	size_t nrest = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		spool_dest_begin(refs[i].l->dest[refs[i].dest], now);
	if (save_dests(s, refs, n) != 0) {
		/* nothing was sent; attempts recorded so far are recovered next run */
		log_err("spool: cannot record the attempts: %s", strerror(errno));
		return -1;
	}
	hook("attempt-begun");
	b.recorded = calloc(n ? n : 1, sizeof(*b.recorded));
	rest = calloc(n ? n : 1, sizeof(*rest));
	if (b.recorded == NULL || rest == NULL) {
		free(b.recorded);
		free(rest);
		return -1;	/* in-flight on disk: recovered by the next run */
	}
	t->send(t->ctx, jobs, n, now, record_outcomes, &b);
	hook("attempt-sent");
	/* a transport that did not report a job: its res is what it is */
	for (size_t i = 0; i < n && !b.write_failed; i++)
		if (!b.recorded[i]) {
			if (jobs[i].res.detail[0] == '\0')
				delivery_result_set(&jobs[i].res, false, false, 0, "no outcome reported");
			rest[nrest++] = &jobs[i];
		}
	if (nrest > 0)
		record_outcomes(&b, rest, nrest);
	rc = b.write_failed ? -1 : 0;
	free(b.recorded);
	free(rest);
	if (rc == 0)
		hook("attempt-recorded");
	return rc;
}

int spool_ids(struct spool *s, char ***ids, size_t *n)
{
	return s->ops->ids(s->h, ids, n);
}

void spool_ids_free(char **ids, size_t n)
{
	spool_fs_ids_free(ids, n);
}

/* Is destination i of 'l' due at 'now'? Marks it suppressed when the list says so. */
static bool due(struct spool *s, struct loaded *l, size_t i, int64_t now,
		const struct spool_policy *p, struct spool_stats *st)
{
	struct json_object *d = l->dest[i];
	char why[300];
	int64_t until;

	if (!spool_dest_due(d, now, p))
		return false;
	until = suppressed_until(s, jget_str(d, "uri"), now, p, why, sizeof(why));
	if (until > 0) {
		spool_dest_skip_suppressed(d, now, until, why);
		st->suppressed++;
		if (save_dest(s, l, i) != 0)
			log_err("spool %s: %s", l->id, strerror(errno));
		return false;
	}
	return true;
}

int spool_deliver_due(struct spool *s, int64_t now, const struct spool_policy *p,
		      const struct spool_transport *t, struct spool_stats *st)
{
	char **ids;
	size_t nids, njobs = 0, nloaded = 0;
	struct spool_job *jobs = calloc(SPOOL_BATCH, sizeof(*jobs));
	struct job_ref *refs = calloc(SPOOL_BATCH, sizeof(*refs));
	struct loaded **batch = calloc(SPOOL_BATCH, sizeof(*batch));
	int rc = 0;

	memset(st, 0, sizeof(*st));
	if (jobs == NULL || refs == NULL || batch == NULL ||
	    (s->ops->ids_due ? s->ops->ids_due(s->h, now, &ids, &nids) : spool_ids(s, &ids, &nids)) != 0) {
		free(jobs);
		free(refs);
		free(batch);
		return -1;
	}
	for (size_t r = 0; r < nids && rc == 0; r++) {
		struct loaded *l;
		bool any = false;
		if (s->ops->final(s->h, ids[r]))
			continue;
		l = load(s, ids[r], false);
		if (l == NULL)
			continue;
		for (size_t i = 0; i < l->ndest; i++) {
			if (recover_in_flight(s, l, i, now, p, st) != 0) {
				rc = -1;
				break;
			}
			if (due(s, l, i, now, p, st))
				any = true;
		}
		if (!any || rc != 0) {
			if (rc == 0 && all_final(l))
				mark_done(s, l->id);
			loaded_free(l);
			continue;
		}
		/* a batch has room for every destination of this report */
		if (njobs + l->ndest > SPOOL_BATCH || nloaded == SPOOL_BATCH) {
			rc = run_batch(s, jobs, refs, njobs, now, p, t, st);
			for (size_t k = 0; k < nloaded; k++) {
				if (rc == 0 && all_final(batch[k]))
					mark_done(s, batch[k]->id);
				loaded_free(batch[k]);
			}
			njobs = nloaded = 0;
			memset(jobs, 0, SPOOL_BATCH * sizeof(*jobs));
			if (rc != 0) {
				loaded_free(l);
				break;
			}
		}
		loaded_free(l);
		l = load(s, ids[r], true);
		if (l == NULL)
			continue;
		batch[nloaded++] = l;
		for (size_t i = 0; i < l->ndest; i++) {
			struct json_object *d = l->dest[i];

			if (!spool_dest_due(d, now, p))
				continue;
			jobs[njobs].file = &l->file;
			jobs[njobs].scheme = strcmp(jget_text(d, "scheme"), "mailto") == 0
				? RUA_MAILTO : RUA_HTTPS;
			jobs[njobs].uri = jget_str(d, "uri");
			jobs[njobs].address = jget_str(d, "address");
			if (jobs[njobs].scheme == RUA_MAILTO && jobs[njobs].address == NULL)
				continue;
			refs[njobs].l = l;
			refs[njobs].dest = i;
			njobs++;
		}
	}
	if (rc == 0 && njobs > 0)
		rc = run_batch(s, jobs, refs, njobs, now, p, t, st);
	for (size_t k = 0; k < nloaded; k++) {
		if (rc == 0 && all_final(batch[k]))
			mark_done(s, batch[k]->id);
		loaded_free(batch[k]);
	}
	spool_ids_free(ids, nids);
	free(jobs);
	free(refs);
	free(batch);
	return rc;
}

int spool_retry(struct spool *s, const char *id, int64_t now, size_t *changed,
		char *err, size_t errsz)
{
	struct loaded *l;

	*changed = 0;
	if (s->ops->claim && s->ops->claim(s->h, id) != 0) {
		if (errno == EBUSY)
			snprintf(err, errsz, "report %s is being delivered by another node; try again later", id);
		else
			snprintf(err, errsz, "no report %s in the spool", id);
		return -1;
	}
	if ((l = load(s, id, false)) == NULL) {
		snprintf(err, errsz, "no report %s in the spool", id);
		return -1;
	}
	s->ops->set_final(s->h, id, false);
	for (size_t i = 0; i < l->ndest; i++) {
		struct json_object *d = l->dest[i];

		if (!spool_dest_retry(d, now))
			continue;
		if (jget_str(d, "uri"))
			unsuppress(s, jget_str(d, "uri"));
		if (save_dest(s, l, i) != 0) {
			snprintf(err, errsz, "spool %s: %s", id, strerror(errno));
			loaded_free(l);
			return -1;
		}
		(*changed)++;
	}
	loaded_free(l);
	return 0;
}

struct supp_check {
	int64_t now, horizon, period;
};

/* Expired suppressions go; one that ends more than suppress_period from
 * now (written by a clock that was ahead) is cut to that. */
static enum spool_fs_verdict suppression_check(void *arg, struct json_object *rec)
{
	const struct supp_check *c = arg;
	int64_t until = jget_int(rec, "until");

	if (rec == NULL || until <= c->horizon)
		return SPOOL_FS_REMOVE;
	if (until > c->now + c->period) {
		jset_int(rec, "until", c->now + c->period);
		return SPOOL_FS_REWRITE;
	}
	return SPOOL_FS_KEEP;
}

int64_t spool_newest_day(struct spool *s)
{
	int64_t *days, newest = -1;
	size_t n;

	if (s->ops->days(s->h, &days, &n) == 0) {
		if (n > 0)
			newest = days[n - 1];
		free(days);
	}
	return newest;
}

struct prune_item {
	char *id;
	int64_t ref;	/* the report's age is counted from here */
};

/*
 * Pruning trusts the clock only as far as the spool's own data agrees
 * (issue 10 item 10): the horizon is the clock, but never more than two
 * days past the newest day the spool holds (a day mark or a report). A
 * clock far ahead so prunes nothing it would not prune at the right time;
 * an idle spool keeps its last retention's worth until new days come.
 */
int spool_prune(struct spool *s, int64_t now, const struct spool_policy *p, size_t *removed)
{
	char **ids;
	size_t n, ndays, nitems = 0;
	int64_t keep = p->retention > p->retry_period + 86400 ? p->retention : p->retry_period + 86400;
	int64_t *days = NULL, newest = -1, horizon = now;
	struct prune_item *items;

	*removed = 0;
	if (s->ops->days(s->h, &days, &ndays) != 0)
		ndays = 0;
	if (ndays > 0)
		newest = days[ndays - 1];
	if (spool_ids(s, &ids, &n) != 0) {
		free(days);
		return -1;
	}
	items = calloc(n ? n : 1, sizeof(*items));
	if (items == NULL) {
		spool_ids_free(ids, n);
		free(days);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *meta = s->ops->meta(s->h, ids[i]);
		int64_t begin = jget_int_or(meta, "begin", -1), created = jget_int_or(meta, "created", -1);
		int64_t day_end = begin + 86400;

		json_object_put(meta);
		if (begin < 0)
			continue;	/* an unreadable report stays for the operator */
		if (begin / 86400 > newest)
			newest = begin / 86400;
		/* spooled late (an old day, --input): counted from when it was
		 * spooled, unless that time is from a clock that was ahead */
		items[nitems].id = ids[i];
		items[nitems++].ref = created > day_end && created <= now ? created : day_end;
	}
	if (newest >= 0 && (newest + 2) * 86400 < horizon) {
		char d[16];

		horizon = (newest + 2) * 86400;
		store_format_day(d, sizeof(d), newest);
		if (now - horizon > 86400)
			log_warn("spool: the clock is %lld days past the newest day in the spool (%s); "
				 "pruning counts from that day, not from the clock",
				 (long long)((now - horizon) / 86400), d);
	}
	for (size_t i = 0; i < nitems; i++) {
		if (items[i].ref + keep >= horizon)
			continue;
		if (s->ops->remove(s->h, items[i].id) != 0) {
			log_err("spool: cannot prune %s: %s", items[i].id, strerror(errno));
			continue;
		}
		(*removed)++;
	}
	free(items);
	spool_ids_free(ids, n);
	/* day marks: kept 2 days longer than the reporter looks back */
	for (size_t i = 0; i < ndays; i++)
		if ((days[i] + 2) * 86400 + p->retention < horizon)
			s->ops->day_remove(s->h, days[i]);
	free(days);
	/* expired suppressions */
	{
		struct supp_check c = { now, horizon, p->suppress_period };

		s->ops->suppressions_filter(s->h, suppression_check, &c);
	}
	return 0;
}

struct json_object *spool_entry(struct spool *s, const char *id)
{
	struct loaded *l = load(s, id, false);
	struct json_object *o, *arr;
	size_t delivered = 0, pending = 0;
	const char *status;

	if (l == NULL)
		return NULL;
	o = json_object_new_object();
	arr = json_object_new_array();
	if (o == NULL || arr == NULL) {
		json_object_put(o);
		json_object_put(arr);
		loaded_free(l);
		return NULL;
	}
	for (size_t i = 0; i < l->ndest; i++) {
		const char *st = jget_str(l->dest[i], "state");

		if (st && strcmp(st, "delivered") == 0)
			delivered++;
		else if (st && strcmp(st, "pending") == 0)
			pending++;
		json_object_array_add(arr, json_object_get(l->dest[i]));
	}
	status = l->ndest == 0 ? "no-destinations" : delivered ? "delivered" : pending ? "pending" : "failed";
	jset_str(o, "id", l->id);
	jset_str(o, "status", status);
	json_object_object_add(o, "meta", json_object_get(l->meta));
	json_object_object_add(o, "destinations", arr);
	loaded_free(l);
	return o;
}

int spool_report_gz(struct spool *s, const char *id, unsigned char **gz, size_t *len)
{
	return s->ops->gz(s->h, id, gz, len);
}

struct supp_list {
	struct json_object *arr;
	int64_t now;
};

static enum spool_fs_verdict suppression_collect(void *arg, struct json_object *o)
{
	struct supp_list *l = arg;
	struct json_object *e;
	const char *uri = jget_str(o, "uri");

	if (uri && jget_int(o, "until") > l->now && (e = json_object_new_object()) != NULL) {
		jset_str(e, "uri", uri);
		jset_int(e, "until", jget_int(o, "until"));
		jset_str(e, "reason", jget_text(o, "reason"));
		json_object_array_add(l->arr, e);
	}
	return SPOOL_FS_KEEP;
}

struct json_object *spool_suppressions(struct spool *s, int64_t now)
{
	struct supp_list l = { json_object_new_array(), now };

	if (l.arr != NULL)
		s->ops->suppressions_filter(s->h, suppression_collect, &l);
	return l.arr;
}
