/*
 * tlsrpt-report - the daily reporter: builds the RFC 8460 report of every
 * completed UTC day not yet reported, spools it, delivers what is due
 * (mail and HTTPS), and prunes the spool. Meant to run hourly (timer/cron).
 *
 *   tlsrpt-report [-c FILE] [-n] [-v] run [--dry-run] [--day YYYY-MM-DD]
 *                 [--now UNIXTIME|YYYY-MM-DDTHH:MM:SSZ] [--input FILE...]
 *
 * Destinations (rua_source):
 *   record          the TLSRPT record Postfix saw (datagram "pr"); default.
 *   dns             look _smtp._tls.<domain> up again now; no valid record
 *                   now means no report; a temporary DNS failure leaves the
 *                   domain for the next run (until retry_period has passed).
 *   dns-then-record DNS wins when it gives exactly one valid record;
 *                   otherwise (none, several, invalid, failure) the record
 *                   Postfix saw is used.
 *
 * SECURITY: runs as an unprivileged user; reads day files as untrusted
 * input (store_view validates them) and the configuration as trusted.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "config.h"
#include "agg.h"
#include "buf.h"
#include "conf.h"
#include "deliver.h"
#include "dkim.h"
#include "dns.h"
#include "log.h"
#include "privs.h"
#include "report.h"
#include "spool.h"
#include "store.h"
#include "tlsrpt_record.h"

#define DEFAULT_CONFIG SYSCONFDIR "/tlsrptd/tlsrptd.conf"
#define EX_OK 0
#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_SOFTWARE 70
#define EX_IOERR 74
#define EX_TEMPFAIL 75
#define EX_CONFIG 78
#define MAX_INPUTS 256
#define MAX_DAYS 4096
#define MAIL_MAX (32u * 1024 * 1024)

struct opts {
	const char *config;
	bool check_only, verbose, dry_run;
	int64_t day;		/* -1: all pending */
	int64_t now;
	const char *inputs[MAX_INPUTS];
	size_t ninputs;
};

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: tlsrpt-report [-c FILE] [-n] [-v] run [--dry-run] [--day YYYY-MM-DD]\n"
		"                     [--now UNIXTIME|YYYY-MM-DDTHH:MM:SSZ] [--input FILE...]\n"
		"  -c FILE     configuration (default " DEFAULT_CONFIG ")\n"
		"  -n          check the configuration and exit\n"
		"  -v          verbose logging\n"
		"  run         report completed days, deliver what is due, prune the spool\n");
}

/* UNIXTIME or YYYY-MM-DDTHH:MM:SSZ (or YYYY-MM-DD). -1 if invalid. */
static int64_t parse_time(const char *s)
{
	char *end;
	long long v;
	int64_t day;
	int hh, mm, ss, n = 0;

	if (s[0] >= '0' && s[0] <= '9' && strchr(s, '-') == NULL) {
		errno = 0;
		v = strtoll(s, &end, 10);
		return (errno || *end || v < 0) ? -1 : (int64_t)v;
	}
	if (strlen(s) < 10)
		return -1;
	{
		char d[11];

		memcpy(d, s, 10);
		d[10] = '\0';
		day = store_parse_day(d);
	}
	if (day < 0)
		return -1;
	if (s[10] == '\0')
		return day * 86400;
	if ((s[10] != 'T' && s[10] != ' ') ||
	    sscanf(s + 11, "%2d:%2d:%2d%n", &hh, &mm, &ss, &n) != 3 ||
	    hh > 23 || mm > 59 || ss > 60 || (s[11 + n] != 'Z' && s[11 + n] != '\0') ||
	    (s[11 + n] == 'Z' && s[12 + n] != '\0'))
		return -1;
	return day * 86400 + hh * 3600 + mm * 60 + ss;
}

/* The configuration check of -n and of run. */
static int check_conf(const struct conf *c, struct report_identity *id, char *err, size_t errsz)
{
	const char *rs = conf_str(c, "rua_source"), *dm = conf_str(c, "delivery_mail");

	if (report_identity_from_conf(c, id, err, errsz) != 0)
		return -1;
	if (strcmp(rs, "record") && strcmp(rs, "dns") && strcmp(rs, "dns-then-record")) {
		snprintf(err, errsz, "rua_source \"%s\": must be record, dns or dns-then-record", rs);
		return -1;
	}
	if (strcmp(dm, "sendmail") && strcmp(dm, "smtp") && strcmp(dm, "off")) {
		snprintf(err, errsz, "delivery_mail \"%s\": must be sendmail, smtp or off", dm);
		return -1;
	}
	if (!strcmp(dm, "smtp") && conf_str(c, "smtp_relay")[0] == '\0') {
		snprintf(err, errsz, "delivery_mail = smtp needs smtp_relay");
		return -1;
	}
	if (strcmp(dm, "off") && conf_bool(c, "dkim_sign")) {
		if (conf_str(c, "dkim_selector")[0] == '\0' || conf_str(c, "dkim_key_file")[0] == '\0') {
			snprintf(err, errsz, "dkim_sign = yes needs dkim_selector and dkim_key_file "
				 "(or set dkim_sign = no when the MTA signs)");
			return -1;
		}
	}
	return 0;
}

/* A stable pseudo-random delay in [0, max] for 'day', so that hourly runs
 * agree on when a day goes out. */
static int64_t day_delay(int64_t day, int64_t max)
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

enum resolve_status { RES_OK, RES_NONE, RES_TEMPFAIL };

/* The single valid TLSRPT record of 'domain' in DNS, parsed into 'rec'. */
static enum resolve_status lookup(const struct conf *c, const char *domain,
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
		return RES_NONE;
	}
	if (st != DNS_OK) {
		snprintf(why, whysz, "DNS lookup of %s failed: %s", name, err);
		return RES_TEMPFAIL;
	}
	for (size_t i = 0; i < t.n; i++)
		if (tlsrpt_record_is_candidate(t.rec[i], t.len[i])) {
			found++;
			idx = i;
		}
	if (found != 1) {
		snprintf(why, whysz, "%zu TLSRPT records at %s (RFC 8460: exactly one)", found, name);
		dns_txt_free(&t);
		return RES_NONE;
	}
	if (tlsrpt_record_parse(t.rec[idx], t.len[idx], rec) != 0 || !rec->ok) {
		snprintf(why, whysz, "record at %s is invalid: %s", name,
			 rec->ndiag ? rec->diag[0] : "out of memory");
		tlsrpt_record_free(rec);
		dns_txt_free(&t);
		return RES_NONE;
	}
	dns_txt_free(&t);
	return RES_OK;
}

/* Where reports of 'd' go; *source says which record was used. */
static enum resolve_status resolve(const struct conf *c, const struct agg_domain *d,
				   struct tlsrpt_record *rec, const char **source,
				   char *why, size_t whysz)
{
	const char *mode = conf_str(c, "rua_source");
	const char *pr = d->record ? d->record : "";
	enum resolve_status st;

	memset(rec, 0, sizeof(*rec));
	why[0] = '\0';
	if (strcmp(mode, "record") != 0) {
		st = lookup(c, d->domain, rec, why, whysz);
		if (st == RES_OK) {
			*source = "dns";
			return RES_OK;
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
		return RES_NONE;
	}
	return RES_OK;
}

/* ---- transport ---- */

static void send_jobs(void *ctx, struct spool_job *jobs, size_t n, int64_t now)
{
	const struct conf *c = ctx;
	struct https_job *hj = calloc(n ? n : 1, sizeof(*hj));
	size_t *map = calloc(n ? n : 1, sizeof(*map));
	size_t nh = 0;

	if (hj == NULL || map == NULL) {
		for (size_t i = 0; i < n; i++) {
			jobs[i].res.ok = false;
			snprintf(jobs[i].res.detail, sizeof(jobs[i].res.detail), "out of memory");
		}
		free(hj);
		free(map);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct spool_job *j = &jobs[i];

		memset(&j->res, 0, sizeof(j->res));
		if (j->scheme == RUA_HTTPS) {
			hj[nh].url = j->uri;
			hj[nh].body = j->file->gz;
			hj[nh].len = j->file->gzlen;
			map[nh++] = i;
			continue;
		}
		{
			struct buf msg;
			char err[256];

			buf_init(&msg, MAIL_MAX);
			if (mail_build(j->file, j->address, c, now, &msg, err, sizeof(err)) != 0) {
				/* our failure, not the destination's: never permanent */
				j->res.ok = false;
				j->res.permanent = false;
				snprintf(j->res.detail, sizeof(j->res.detail), "message not built: %s", err);
			} else {
				mail_send(c, j->address, msg.data, msg.len, &j->res);
			}
			buf_free(&msg);
		}
	}
	if (nh > 0) {
		https_post_all(c, hj, nh);
		for (size_t k = 0; k < nh; k++)
			jobs[map[k]].res = hj[k].res;
	}
	free(hj);
	free(map);
}

/* ---- days ---- */

static int cmp_day(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void add_day(int64_t *days, size_t *n, int64_t d)
{
	for (size_t i = 0; i < *n; i++)
		if (days[i] == d)
			return;
	if (*n < MAX_DAYS)
		days[(*n)++] = d;
}

/* Days that have a day file locally or among the inputs. */
static void find_days(const struct conf *c, const struct opts *o, int64_t *days, size_t *n)
{
	char p[4096];
	DIR *dir;
	struct dirent *de;

	*n = 0;
	snprintf(p, sizeof(p), "%s/days", conf_str(c, "state_directory"));
	if ((dir = opendir(p)) != NULL) {
		while ((de = readdir(dir)) != NULL) {
			size_t len = strlen(de->d_name);
			char d[11];
			int64_t day;

			if (len != 17 || strcmp(de->d_name + 10, ".tlsrpt") != 0)
				continue;
			memcpy(d, de->d_name, 10);
			d[10] = '\0';
			if ((day = store_parse_day(d)) >= 0)
				add_day(days, n, day);
		}
		closedir(dir);
	}
	for (size_t i = 0; i < o->ninputs; i++) {
		char err[256];
		struct store_view *v = store_view_open(o->inputs[i], err, sizeof(err));

		if (v == NULL)
			continue;	/* reported when the day is built */
		add_day(days, n, store_view_info(v)->day);
		store_view_close(v);
	}
	qsort(days, *n, sizeof(*days), cmp_day);
}

struct day_result {
	size_t reports, skipped, tempfail, errors;
	size_t bad_sources;	/* day files that could not be read: the day stays open */
};

/* Aggregate, build and spool (or print) every report of one day. */
static int do_day(const struct conf *c, const struct opts *o, struct spool *sp,
		  const struct report_identity *id, int64_t day, struct day_result *res)
{
	struct agg *a = agg_new();
	char p[4096], err[512], dayname[16];
	size_t nsrc = 0, staged = 0;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	store_format_day(dayname, sizeof(dayname), day);
	if (a == NULL)
		return -1;
	if (store_day_path(p, sizeof(p), conf_str(c, "state_directory"), day) == 0 &&
	    access(p, F_OK) == 0) {
		struct store_view *v = store_view_open(p, err, sizeof(err));

		if (v == NULL) {
			log_err("%s: %s; day %s not reported", p, err, dayname);
			agg_free(a);
			res->bad_sources++;
			return 0;
		}
		if (agg_add_view(a, v) != 0)
			rc = -1;
		store_view_close(v);
		nsrc++;
	}
	for (size_t i = 0; i < o->ninputs && rc == 0; i++) {
		struct store_view *v = store_view_open(o->inputs[i], err, sizeof(err));

		if (v == NULL) {
			log_err("--input %s: %s; day %s not reported", o->inputs[i], err, dayname);
			res->bad_sources++;
			agg_free(a);
			return 0;
		}
		if (store_view_info(v)->day == day) {
			if (agg_add_view(a, v) != 0)
				rc = -1;
			nsrc++;
		}
		store_view_close(v);
	}
	if (rc != 0) {
		agg_free(a);
		return -1;
	}
	agg_finish(a);
	log_info("day %s: %zu day file(s), %zu domain(s)", dayname, nsrc, agg_ndomains(a));
	for (size_t i = 0; i < agg_ndomains(a); i++) {
		const struct agg_domain *d = agg_domain(a, i);
		struct report r;
		struct tlsrpt_record rec;
		struct spool_dest_spec dests[TLSRPT_MAX_RUA];
		size_t nd = 0;
		const char *source = "record";
		char why[600];
		enum resolve_status st;
		bool existed = false;

		if (d->successes + d->failures == 0)
			continue;	/* never a report without sessions */
		if (report_build(d, day, id, (size_t)conf_int(c, "max_failure_details"), &r,
				 err, sizeof(err)) != 0) {
			log_err("day %s: %s", dayname, err);
			report_free(&r);
			res->errors++;
			continue;
		}
		if (sp && spool_has(sp, r.spool_id)) {
			report_free(&r);
			res->reports++;
			continue;	/* spooled by an earlier (interrupted) run */
		}
		st = resolve(c, d, &rec, &source, why, sizeof(why));
		if (st == RES_TEMPFAIL) {
			log_warn("day %s: %s: %s; will try again", dayname, d->domain, why);
			res->tempfail++;
			report_free(&r);
			continue;
		}
		if (st == RES_NONE)
			log_warn("day %s: %s: %s; report kept without destinations", dayname, d->domain, why);
		for (size_t k = 0; st == RES_OK && k < rec.nrua; k++) {
			if (rec.rua[k].scheme == RUA_MAILTO && strcmp(conf_str(c, "delivery_mail"), "off") == 0) {
				log_info("%s: %s skipped (delivery_mail = off)", d->domain, rec.rua[k].uri);
				continue;
			}
			if (rec.rua[k].scheme == RUA_HTTPS && !conf_bool(c, "delivery_https")) {
				log_info("%s: %s skipped (delivery_https = no)", d->domain, rec.rua[k].uri);
				continue;
			}
			dests[nd].scheme = rec.rua[k].scheme;
			dests[nd].uri = rec.rua[k].uri;
			dests[nd].address = rec.rua[k].address;
			nd++;
		}
		if (o->dry_run) {
			struct json_object *j = json_tokener_parse(r.json);

			printf("report %s  %s  %s\n  report-id %s\n  sessions %llu successful, %llu failed\n",
			       r.spool_id, r.domain, r.filename, r.report_id,
			       (unsigned long long)d->successes, (unsigned long long)d->failures);
			for (size_t k = 0; k < nd; k++)
				printf("  destination %s (%s)\n", dests[k].uri, source);
			if (nd == 0)
				printf("  no destination: %s\n", why);
			printf("%s\n", j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
									 JSON_C_TO_STRING_NOSLASHESCAPE) : r.json);
			json_object_put(j);
			res->reports++;
		} else if (spool_stage(sp, &r, dests, nd, source, o->now, &existed, err, sizeof(err)) != 0 ||
			   (++staged % 512 == 0 && spool_commit(sp, err, sizeof(err)) != 0)) {
			log_err("%s", err);
			rc = -1;
		} else {
			res->reports++;
			log_info("report %s for %s (%s): %llu successful, %llu failed sessions, %zu destination(s)",
				 r.spool_id, r.domain, dayname, (unsigned long long)d->successes,
				 (unsigned long long)d->failures, nd);
		}
		tlsrpt_record_free(&rec);
		report_free(&r);
		if (rc != 0)
			break;
	}
	if (rc == 0 && sp && !o->dry_run && spool_commit(sp, err, sizeof(err)) != 0) {
		log_err("%s", err);
		rc = -1;
	}
	agg_free(a);
	return rc;
}

/*
 * A DKIM key that is missing or unreadable is our problem, not the
 * destinations': say so and stop before anything is built or sent, so no
 * destination is marked failed or suppressed because of it. The reports
 * go out on the first run after the key is fixed.
 */
static int check_dkim_key(const struct conf *c, const struct report_identity *id)
{
	const char *domain = conf_str(c, "dkim_domain");
	struct dkim_signer *s;
	char err[512];

	if (!strcmp(conf_str(c, "delivery_mail"), "off") || !conf_bool(c, "dkim_sign"))
		return 0;
	s = dkim_signer_new(conf_str(c, "dkim_key_file"), conf_str(c, "dkim_algorithm"),
			    *domain ? domain : id->submitter, conf_str(c, "dkim_selector"),
			    err, sizeof(err));
	if (s == NULL) {
		log_fatal("DKIM key: %s; nothing was reported or sent (tlsrptctl dkim generate "
			  "makes a key, or set dkim_sign = no when the MTA signs)", err);
		return -1;
	}
	dkim_signer_free(s);
	return 0;
}

static int cmd_run(const struct conf *c, struct opts *o)
{
	struct report_identity id;
	struct spool *sp = NULL;
	struct spool_policy pol;
	char err[512];
	int64_t days[MAX_DAYS], today = o->now / 86400;
	size_t ndays = 0;
	int status = EX_OK;

	if (check_conf(c, &id, err, sizeof(err)) != 0) {
		log_fatal("configuration: %s", err);
		return EX_CONFIG;
	}
	spool_policy_from_conf(c, &pol);
	if (!o->dry_run && check_dkim_key(c, &id) != 0)
		return EX_CONFIG;
	if (!o->dry_run) {
		/* run by hand as root: write the spool as its owner, never leave
		 * root's files where the service writes (README "Privileges") */
		if (geteuid() == 0 && access(conf_str(c, "spool_directory"), F_OK) == 0 &&
		    privs_become_owner_of(conf_str(c, "spool_directory"), err, sizeof(err)) != 0) {
			log_fatal("cannot act as the owner of the spool: %s", err);
			return EX_IOERR;
		}
		sp = spool_open(conf_str(c, "spool_directory"), true, err, sizeof(err));
		if (sp == NULL) {
			log_fatal("spool: %s", err);
			return EX_TEMPFAIL;
		}
	} else {
		sp = spool_open(conf_str(c, "spool_directory"), false, err, sizeof(err));	/* may be NULL */
	}
	if (o->day >= 0) {
		if (o->day >= today) {
			char d[16];

			store_format_day(d, sizeof(d), o->day);
			log_fatal("--day %s is not complete yet (UTC)", d);
			spool_close(sp);
			return EX_USAGE;
		}
		days[ndays++] = o->day;
	} else {
		find_days(c, o, days, &ndays);
	}
	for (size_t i = 0; i < ndays; i++) {
		int64_t d = days[i];
		int64_t due = (d + 1) * 86400 + day_delay(d, conf_int(c, "report_delay"));
		char name[16];
		struct day_result dr;

		store_format_day(name, sizeof(name), d);
		if (d >= today)
			continue;		/* not complete */
		if (sp && spool_day_done(sp, d)) {
			if (o->day >= 0)
				log_info("day %s was reported already", name);
			continue;
		}
		if (o->day < 0) {
			if ((d + 1) * 86400 + pol.retention <= o->now) {
				log_debug("day %s is older than spool_retention; not reported", name);
				continue;
			}
			if (o->now < due) {
				log_debug("day %s goes out at %lld", name, (long long)due);
				continue;
			}
		}
		if (do_day(c, o, sp, &id, d, &dr) != 0) {
			log_err("day %s: stopped: the spool could not be written", name);
			status = EX_IOERR;
			break;
		}
		if (o->dry_run || dr.bad_sources > 0)
			continue;	/* an unreadable day file: tried again by the next run */
		if (dr.tempfail > 0 && o->now < (d + 1) * 86400 + pol.retry_period) {
			log_warn("day %s: %zu domain(s) wait for DNS; the day stays open", name, dr.tempfail);
			continue;
		}
		if (spool_day_mark(sp, d, o->now, dr.reports, err, sizeof(err)) != 0) {
			log_err("%s", err);
			status = EX_IOERR;
			break;
		}
		log_info("day %s reported: %zu report(s), %zu error(s)%s", name, dr.reports, dr.errors,
			 dr.tempfail ? ", some domains given up after DNS failures" : "");
	}
	if (!o->dry_run && status == EX_OK) {
		struct spool_transport t = { send_jobs, (void *)(uintptr_t)c };
		struct spool_stats st;
		size_t pruned = 0;

		if (spool_deliver_due(sp, o->now, &pol, &t, &st) != 0) {
			log_err("delivery stopped: the spool could not be written");
			status = EX_IOERR;
		}
		if (st.attempted || st.interrupted || st.suppressed)
			log_info("deliveries: %zu attempted, %zu delivered, %zu to retry, %zu given up, "
				 "%zu suppressed, %zu interrupted earlier",
				 st.attempted, st.delivered, st.failed, st.given_up, st.suppressed,
				 st.interrupted);
		if (spool_prune(sp, o->now, &pol, &pruned) == 0 && pruned)
			log_info("pruned %zu old report(s)", pruned);
	}
	spool_close(sp);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "dry-run", no_argument, NULL, 'D' },
		{ "day", required_argument, NULL, 'd' },
		{ "now", required_argument, NULL, 'N' },
		{ "input", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	struct conf *c;
	char err[512];
	int ch, rc;

	/* Each report allocates and frees zlib's and the mail builder's buffers;
	 * without this glibc gives the heap top back and refaults it every time
	 * (measured: 35x slower report building once DKIM signing runs). */
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	memset(&o, 0, sizeof(o));
	o.config = DEFAULT_CONFIG;
	o.day = -1;
	o.now = (int64_t)time(NULL);
	/* global options, then the command */
	while ((ch = getopt(argc, argv, "+c:nvh")) != -1) {
		switch (ch) {
		case 'c': o.config = optarg; break;
		case 'n': o.check_only = true; break;
		case 'v': o.verbose = true; break;
		case 'h': usage(stdout); return EX_OK;
		default: usage(stderr); return EX_USAGE;
		}
	}
	log_init("tlsrpt-report", LOG_TO_STDERR, o.verbose);
	c = conf_new();
	if (c == NULL)
		return EX_SOFTWARE;
	if (conf_load(c, o.config, err, sizeof(err)) != 0) {
		log_fatal("%s", err);
		conf_free(c);
		return EX_CONFIG;
	}
	if (o.check_only) {
		struct report_identity id;

		if (check_conf(c, &id, err, sizeof(err)) != 0) {
			fprintf(stderr, "tlsrpt-report: %s: %s\n", o.config, err);
			conf_free(c);
			return EX_CONFIG;
		}
		printf("%s: configuration OK (submitter %s)\n", o.config, id.submitter);
		conf_free(c);
		return EX_OK;
	}
	if (optind >= argc || strcmp(argv[optind], "run") != 0) {
		usage(stderr);
		conf_free(c);
		return EX_USAGE;
	}
	optind++;
	while (optind < argc) {
		int li = -1;

		ch = getopt_long(argc, argv, "+", lopts, &li);
		if (ch == -1) {
			/* more files after --input FILE */
			if (o.ninputs > 0 && argv[optind][0] != '-') {
				if (o.ninputs >= MAX_INPUTS)
					goto bad;
				o.inputs[o.ninputs++] = argv[optind++];
				continue;
			}
			goto bad;
		}
		switch (ch) {
		case 'D': o.dry_run = true; break;
		case 'd':
			if ((o.day = store_parse_day(optarg)) < 0) {
				fprintf(stderr, "tlsrpt-report: --day %s: want YYYY-MM-DD\n", optarg);
				goto bad;
			}
			break;
		case 'N':
			if ((o.now = parse_time(optarg)) < 0) {
				fprintf(stderr, "tlsrpt-report: --now %s: want UNIXTIME or YYYY-MM-DDTHH:MM:SSZ\n", optarg);
				goto bad;
			}
			break;
		case 'i':
			if (o.ninputs >= MAX_INPUTS)
				goto bad;
			o.inputs[o.ninputs++] = optarg;
			break;
		case 'h': usage(stdout); conf_free(c); return EX_OK;
		default: goto bad;
		}
	}
	rc = cmd_run(c, &o);
	conf_free(c);
	return rc;
bad:
	usage(stderr);
	conf_free(c);
	return EX_USAGE;
}
