/*
 * report_fleet - `tlsrpt-report run` in fleet mode. See report_fleet.h.
 *
 * SECURITY: the database is shared by every host of the fleet; what is
 * read back from it is bounded and checked (dbagg.h), and every report is
 * built by report_build, which refuses domains that are not A-labels.
 */
#include "report_fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sysexits.h>

#include "agg.h"
#include "db.h"
#include "dbagg.h"
#include "fleetday.h"
#include "log.h"
#include "push.h"
#include "spool.h"
#include "spool_db.h"
#include "store.h"

#define CLAIM_BATCH 64
#define DNS_RETRY 900		/* a domain whose DNS lookup failed waits this long */

struct fleet {
	const struct conf *c;
	const struct run_opts *o;
	const struct report_identity *id;
	struct db *db;
	struct spool *sp;
	struct spool_policy pol;
	char node[PUSH_HOST_MAX + 1];
	struct run_archive *archive;	/* report_archive_address copies, or NULL */
};

struct day_stats {
	size_t built, existed, skipped, errors, waiting;
};

static int cmp_domain(const char *d, const char *pr, const struct agg_domain *x)
{
	int c = strcmp(d, x->domain);

	return c ? c : strcmp(pr, x->record);
}

/* The domain (d, pr) of a finished agg (sorted by domain, then record). */
static const struct agg_domain *find_domain(const struct agg *a, const char *d, const char *pr)
{
	size_t lo = 0, hi = agg_ndomains(a);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_domain(d, pr, agg_domain(a, mid));

		if (c == 0)
			return agg_domain(a, mid);
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* The whole day of the fleet, as the database has it now. */
static enum db_status read_day(struct fleet *f, int64_t day, struct agg **out, struct dbagg_info *info,
			       char *err, size_t errsz)
{
	struct agg *a = agg_new();
	enum db_status st;

	*out = NULL;
	if (a == NULL) {
		snprintf(err, errsz, "out of memory");
		return DB_ERROR;
	}
	if ((st = dbagg_day(f->db, day, a, info, err, errsz)) != DB_OK) {
		agg_free(a);
		return st;
	}
	agg_finish(a);
	*out = a;
	return DB_OK;
}

/* One claimed item: build, find its destinations, insert (in the claim's
 * transaction); its outcome goes into 'it'. DB errors end the batch; report
 * errors skip the item. */
static enum db_status one_item(struct fleet *f, int64_t day, const char *dayname,
			       const struct agg_domain *d, struct fleetday_item *it,
			       struct day_stats *ds, char *err, size_t errsz)
{
	struct report r;
	struct tlsrpt_record rec;
	struct spool_dest_spec dests[TLSRPT_MAX_RUA];
	const char *source = "record";
	char why[600], berr[512];
	enum run_resolve rs;
	size_t nd = 0;
	bool existed = false;
	enum db_status st = DB_OK;

	if (d == NULL || d->successes + d->failures == 0) {
		ds->skipped++;
		fleetday_item_done(it, false, NULL, "no sessions");
		return DB_OK;
	}
	if (report_build(d, day, f->id, (size_t)conf_int(f->c, "max_failure_details"), &r,
			 berr, sizeof(berr)) != 0) {
		log_err("day %s: %s", dayname, berr);
		report_free(&r);
		ds->errors++;
		fleetday_item_done(it, false, NULL, berr);
		return DB_OK;
	}
	rs = run_resolve(f->c, d, &rec, &source, why, sizeof(why));
	if (rs == RUN_TEMPFAIL) {
		report_free(&r);
		if (f->o->now < (day + 1) * 86400 + f->pol.retry_period) {
			log_warn("day %s: %s: %s; will try again", dayname, d->domain, why);
			ds->waiting++;
			fleetday_item_later(it, f->o->now + DNS_RETRY, why);
		} else {
			log_warn("day %s: %s: %s; given up after retry_period", dayname, d->domain, why);
			ds->skipped++;
			fleetday_item_done(it, false, NULL, why);
		}
		return DB_OK;
	}
	if (rs == RUN_NONE)
		log_warn("day %s: %s: %s; report kept without destinations", dayname, d->domain, why);
	else
		nd = run_dests(f->c, d->domain, &rec, dests);
	/* the insert says whether the report exists already (unique id, and
	 * unique day, domain and record) */
	if (spool_stage(f->sp, &r, dests, nd, source, f->o->now, &existed, berr, sizeof(berr)) != 0) {
		snprintf(err, errsz, "%s", berr);
		st = DB_UNAVAILABLE;	/* the transaction is lost: the items stay for the next run */
	} else {
		if (existed)
			ds->existed++;
		else
			ds->built++;
		log_info("report %s for %s (%s)%s: %llu successful, %llu failed sessions, %zu destination(s)%s",
			 r.spool_id, r.domain, dayname, it->late ? " (late)" : "",
			 (unsigned long long)d->successes, (unsigned long long)d->failures, nd,
			 existed ? ", built before" : "");
		if (nd > 0 && !existed)	/* an outgoing report: its archive copy, once committed */
			run_archive_add(f->c, f->archive, &r, f->o->now);
		fleetday_item_done(it, true, r.spool_id, it->late ? "late" : NULL);
	}
	if (rs == RUN_OK)
		tlsrpt_record_free(&rec);
	report_free(&r);
	return st;
}

/* Build every report of 'day' that no node has built, claiming 64 at a time. */
static enum db_status build_day(struct fleet *f, int64_t day, struct day_stats *ds,
				char *err, size_t errsz)
{
	char dayname[16], mark[128];
	struct dbagg_info info;
	struct agg *a = NULL;
	size_t added = 0;
	bool done = false, reread = false;
	enum db_status st;

	memset(ds, 0, sizeof(*ds));
	store_format_day(dayname, sizeof(dayname), day);
	if ((st = fleetday_open(f->db, day, f->node, &added, err, errsz)) != DB_OK ||
	    (st = read_day(f, day, &a, &info, err, errsz)) != DB_OK)
		return st;
	log_info("day %s: %zu host(s) pushed it (%zu after it ended), %zu domain(s), %zu new item(s)",
		 dayname, info.hosts, info.final_hosts, agg_ndomains(a), added);
	for (;;) {
		struct fleetday_item *items = NULL;
		size_t n = 0, missing = 0;

		if ((st = fleetday_claim(f->db, day, f->o->now, CLAIM_BATCH, &items, &n, err, errsz)) != DB_OK)
			break;
		if (n == 0)
			break;
		for (size_t i = 0; i < n; i++)
			if (find_domain(a, items[i].d, items[i].pr) == NULL)
				missing++;
		if (missing && !reread) {
			/* items made after this node read the day (a late push): read again */
			fleetday_finish(f->db, day, items, n, f->node, false, err, errsz);
			fleetday_items_free(items, n);
			agg_free(a);
			a = NULL;
			reread = true;
			if ((st = read_day(f, day, &a, &info, err, errsz)) != DB_OK)
				break;
			continue;
		}
		for (size_t i = 0; i < n && st == DB_OK; i++)
			st = one_item(f, day, dayname, find_domain(a, items[i].d, items[i].pr), &items[i],
				      ds, err, errsz);
		if (st != DB_OK) {
			fleetday_finish(f->db, day, items, n, f->node, false, err, errsz);
			fleetday_items_free(items, n);
			run_archive_flush(f->c, f->archive, false);
			break;
		}
		/* the batch's reports in one insert, then the items, one commit */
		if (spool_commit(f->sp, err, errsz) != 0) {
			fleetday_finish(f->db, day, items, n, f->node, false, err, errsz);
			fleetday_items_free(items, n);
			run_archive_flush(f->c, f->archive, false);
			st = DB_UNAVAILABLE;
			break;
		}
		st = fleetday_finish(f->db, day, items, n, f->node, true, err, errsz);
		fleetday_items_free(items, n);
		/* the copies of the reports this batch committed (a batch is at most
		 * CLAIM_BATCH reports, fewer than RUN_ARCHIVE_MAX) */
		run_archive_flush(f->c, f->archive, st == DB_OK);
		if (st != DB_OK)
			break;
	}
	agg_free(a);
	if (st != DB_OK)
		return st;
	snprintf(mark, sizeof(mark), "{\"reported\": %lld, \"by\": \"%s\"}", (long long)f->o->now, f->node);
	if ((st = fleetday_close(f->db, day, mark, &done, err, errsz)) != DB_OK)
		return st;
	if (done)
		log_info("day %s reported: %zu report(s) built by this node, %zu by others or before, "
			 "%zu skipped, %zu error(s)", dayname, ds->built, ds->existed, ds->skipped, ds->errors);
	else
		log_info("day %s: %zu report(s) built by this node; %zu domain(s) wait for DNS or "
			 "for another node", dayname, ds->built, ds->waiting);
	return DB_OK;
}

/* --dry-run: print the day's reports as the database has it; change nothing. */
static enum db_status dry_day(struct fleet *f, int64_t day, char *err, size_t errsz)
{
	struct dbagg_info info;
	struct agg *a = NULL;
	char dayname[16];
	enum db_status st = read_day(f, day, &a, &info, err, errsz);

	if (st != DB_OK)
		return st;
	store_format_day(dayname, sizeof(dayname), day);
	for (size_t i = 0; i < agg_ndomains(a); i++) {
		const struct agg_domain *d = agg_domain(a, i);
		struct report r;
		struct tlsrpt_record rec;
		struct spool_dest_spec dests[TLSRPT_MAX_RUA];
		const char *source = "record";
		char why[600], berr[512];
		size_t nd = 0;
		enum run_resolve rs;

		if (d->successes + d->failures == 0)
			continue;
		if (report_build(d, day, f->id, (size_t)conf_int(f->c, "max_failure_details"), &r,
				 berr, sizeof(berr)) != 0) {
			log_err("day %s: %s", dayname, berr);
			report_free(&r);
			continue;
		}
		rs = run_resolve(f->c, d, &rec, &source, why, sizeof(why));
		if (rs == RUN_OK)
			nd = run_dests(f->c, d->domain, &rec, dests);
		run_print_dry(f->c, &r, d, dests, nd, source, why);
		if (rs == RUN_OK)
			tlsrpt_record_free(&rec);
		report_free(&r);
	}
	agg_free(a);
	return DB_OK;
}

/* Counts of days no report will be made for any more (spool_retention),
 * and dictionary rows no count refers to. */
static void prune_counts(struct fleet *f, int64_t judge)
{
	char cut[16];
	const char *p[1] = { cut };
	struct db_res *r = NULL;
	int64_t removed = 0, newest = -1, horizon = judge;
	int64_t keep = f->pol.retention > f->pol.retry_period + 86400 ? f->pol.retention :
		       f->pol.retry_period + 86400;

	/* as spool_prune: never count ages past two days after the newest
	 * pushed day, so a clock far ahead does not wipe the counts */
	if (db_exec(f->db, "SELECT max(day) - date '1970-01-01' FROM tlsrpt.host_days", 0, NULL, &r) != DB_OK)
		return;
	if (db_res_int(r, 0, 0, &newest) && (newest + 2) * 86400 < horizon)
		horizon = (newest + 2) * 86400;
	db_res_free(r);
	r = NULL;
	store_format_day(cut, sizeof(cut), (horizon - keep) / 86400 - 2);
	if (db_begin(f->db) != DB_OK ||
	    db_exec(f->db, "DELETE FROM tlsrpt.detail_counts WHERE day < $1::date", 1, p, NULL) != DB_OK ||
	    db_exec(f->db, "WITH x AS (DELETE FROM tlsrpt.policy_counts WHERE day < $1::date RETURNING 1)"
		    " SELECT count(*) FROM x", 1, p, &r) != DB_OK ||
	    db_exec(f->db, "DELETE FROM tlsrpt.host_days WHERE day < $1::date", 1, p, NULL) != DB_OK ||
	    db_commit(f->db) != DB_OK) {
		log_warn("pruning old counts: %s", db_errmsg(f->db));
		db_rollback(f->db);
		db_res_free(r);
		return;
	}
	db_res_int(r, 0, 0, &removed);
	db_res_free(r);
	if (removed == 0)
		return;
	if (db_exec(f->db, "DELETE FROM tlsrpt.details d WHERE NOT EXISTS"
		    " (SELECT 1 FROM tlsrpt.detail_counts c WHERE c.detail_id = d.id)", 0, NULL, NULL) != DB_OK ||
	    db_exec(f->db, "DELETE FROM tlsrpt.policies p WHERE NOT EXISTS"
		    " (SELECT 1 FROM tlsrpt.policy_counts c WHERE c.policy_id = p.id)", 0, NULL, NULL) != DB_OK)
		log_warn("pruning unused policies (the next run tries again): %s", db_errmsg(f->db));
	log_info("pruned %lld count row(s) of days before %s", (long long)removed, cut);
}

static int unavailable(const char *what, const char *err)
{
	log_err("%s: %s; nothing is lost: what was recorded stays, the next run does the rest",
		what, err);
	return EX_TEMPFAIL;
}

int fleet_run(const struct conf *c, const struct run_opts *o, const struct report_identity *id)
{
	struct fleet f;
	char err[1024];
	int64_t today = o->now / 86400, judge = o->now, newest, *days = NULL;
	size_t ndays = 0;
	enum db_status st;
	int status = EX_OK;

	memset(&f, 0, sizeof(f));
	f.c = c;
	f.o = o;
	f.id = id;
	if (o->ninputs) {
		log_fatal("--input and fleet_database exclude each other: in fleet mode every host "
			  "sends its day files with tlsrptctl push");
		return EX_USAGE;
	}
	if (push_host_name(c, f.node, sizeof(f.node), err, sizeof(err)) != 0) {
		log_fatal("%s", err);
		return EX_CONFIG;
	}
	spool_policy_from_conf(c, &f.pol);
	if (*conf_str(c, "report_archive_address") && !o->dry_run) {
		if ((f.archive = calloc(1, sizeof(*f.archive))) == NULL)
			return EX_SOFTWARE;
		f.archive->address = conf_str(c, "report_archive_address");
	}
	f.sp = spool_db_open_conf(c, "tlsrpt-report", !o->dry_run, &f.db, &st, err, sizeof(err));
	if (f.sp == NULL) {
		free(f.archive);
		if (st == DB_UNAVAILABLE || st == DB_SCHEMA || st == DB_RETRY)
			return unavailable("fleet database", err);
		log_fatal("fleet database: %s", err);
		return EX_CONFIG;
	}
	/* a clock behind the newest reported day does not make old days look new */
	if ((newest = spool_newest_day(f.sp)) >= 0 && (newest + 1) * 86400 > o->now) {
		judge = (newest + 1) * 86400;
		log_warn("the clock is behind the newest reported day; days are judged too old by that day");
	}
	if (o->day >= 0) {
		if (o->day >= today) {
			store_format_day(err, sizeof(err), o->day);
			log_fatal("--day %s is not complete yet (UTC)", err);
			spool_close(f.sp);
			db_close(f.db);
			free(f.archive);
			return EX_USAGE;
		}
		if ((days = malloc(sizeof(*days))) != NULL)
			days[ndays++] = o->day;
	} else if ((st = fleetday_candidates(f.db, (judge - f.pol.retention) / 86400 - 1, today,
					     &days, &ndays, err, sizeof(err))) != DB_OK) {
		status = unavailable("fleet database", err);
	}
	for (size_t i = 0; i < ndays && status == EX_OK; i++) {
		int64_t d = days[i];
		int64_t due = (d + 1) * 86400 + run_day_delay(d, conf_int(c, "report_delay"));
		char name[16], missing[1024];
		bool done = false, ready = false;
		struct day_stats ds;

		store_format_day(name, sizeof(name), d);
		if (d >= today)
			continue;
		if (o->day < 0) {
			if ((d + 1) * 86400 + f.pol.retention <= judge)
				continue;
			if (o->now < due) {
				log_debug("day %s goes out at %lld", name, (long long)due);
				continue;
			}
		}
		if ((st = fleetday_is_done(f.db, d, &done, err, sizeof(err))) != DB_OK ||
		    (!done && (st = fleetday_ready(f.db, d, o->now, conf_int(c, "fleet_push_wait"), &ready,
						   missing, sizeof(missing), err, sizeof(err))) != DB_OK)) {
			status = unavailable("fleet database", err);
			break;
		}
		if (!done && !ready) {
			log_info("day %s waits for the final push of: %s (at most until %lld)", name, missing,
				 (long long)((d + 1) * 86400 + conf_int(c, "fleet_push_wait")));
			continue;
		}
		if (!done && missing[0])
			log_warn("day %s: reported without the final push of %s (fleet_push_wait passed); "
				 "what they push later is counted as late", name, missing);
		st = o->dry_run ? dry_day(&f, d, err, sizeof(err)) : build_day(&f, d, &ds, err, sizeof(err));
		if (st != DB_OK) {
			status = unavailable("day building stopped", err);
			break;
		}
	}
	free(days);
	if (!o->dry_run && status == EX_OK) {
		struct spool_transport t = { run_send_jobs, (void *)(uintptr_t)c };
		struct spool_stats sst;
		size_t pruned = 0;

		if (spool_deliver_due(f.sp, o->now, &f.pol, &t, &sst) != 0) {
			log_err("delivery stopped: an outcome could not be recorded in the database; "
				"attempts in progress are made again by the next run (at-least-once)");
			status = EX_TEMPFAIL;
		}
		if (sst.attempted || sst.interrupted || sst.suppressed)
			log_info("deliveries: %zu attempted, %zu delivered, %zu to retry, %zu given up, "
				 "%zu suppressed, %zu rejected, %zu interrupted earlier",
				 sst.attempted, sst.delivered, sst.failed, sst.given_up, sst.suppressed,
				 sst.rejected, sst.interrupted);
		if (status == EX_OK) {
			if (spool_prune(f.sp, o->now, &f.pol, &pruned) == 0 && pruned)
				log_info("pruned %zu old report(s)", pruned);
			prune_counts(&f, judge);
		}
	}
	spool_close(f.sp);
	db_close(f.db);
	free(f.archive);
	return status;
}
