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
 * Archive copies (report_archive_address): every report built with at
 * least one destination is also mailed, once, to the operator's archive
 * address, after the spool holds it. The copy is not a destination: it is
 * not in the spool, never retried, never suppressed, and its failure
 * changes nothing but a warning in the log.
 *
 * SECURITY: runs as an unprivileged user; reads day files as untrusted
 * input (store_view validates them) and the configuration as trusted.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <malloc.h>
#include <pthread.h>
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
#include "cmdline.h"
#include "conf.h"
#include "confcheck.h"
#include "deliver.h"
#include "dkim.h"
#include "dns.h"
#include "log.h"
#include "mail.h"
#include "privs.h"
#include "report.h"
#include "spool.h"
#include "store.h"
#include "tlsrpt_record.h"
#include "db.h"
#include "report_fleet.h"
#include "run.h"

#define DEFAULT_CONFIG SYSCONFDIR "/tlsrptd/tlsrptd.conf"
#define EX_OK 0
#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_SOFTWARE 70
#define EX_IOERR 74
#define EX_TEMPFAIL 75
#define EX_NOPERM 77
#define EX_CONFIG 78
#define MAX_DAYS 4096
#define MAIL_MAX (32u * 1024 * 1024)
#define STAGE_BATCH 512			/* reports between two spool commits */

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: tlsrpt-report [-c FILE] [-v] -n\n"
		"       tlsrpt-report [-c FILE] [-v] run [--dry-run] [--day YYYY-MM-DD]\n"
		"                     [--now UNIXTIME|YYYY-MM-DDTHH:MM:SSZ] [--input DAYFILE...]\n"
		"  -c FILE          configuration (default " DEFAULT_CONFIG ")\n"
		"  -n               check the configuration, and the files it names as the\n"
		"                   reporter's user, and exit\n"
		"  -v               verbose logging\n"
		"  -h, --help       this help (also: run --help)\n"
		"  run              report completed days, deliver what is due, prune the spool\n"
		"  --dry-run        build the reports that are due and print them; write and\n"
		"                   send nothing\n"
		"  --day DAY        report only this completed UTC day, without waiting\n"
		"  --now TIME       pretend that it is TIME (tests, catching up)\n"
		"  --input DAYFILE  also count these day files (copied from other hosts)\n"
		"Exit status: 0 done; 64 usage; 74 the spool could not be written; 75 another\n"
		"run holds the spool; 77 permission denied; 78 configuration error.\n");
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

/* What is wrong with report_archive_address (empty, or an address mail
 * can be sent to): NULL, or the reason written into 'why'. */
static const char *archive_problem(const struct conf *c, char *why, size_t whysz)
{
	const char *a = conf_str(c, "report_archive_address");
	char e[300];

	if (*a == '\0')
		return NULL;
	if (mail_check_addr(a, "the address", e, sizeof(e)) != 0) {
		snprintf(why, whysz, "%s", e);
		return why;
	}
	if (strcmp(conf_str(c, "delivery_mail"), "off") == 0) {
		snprintf(why, whysz, "the copies are mail, but delivery_mail = off");
		return why;
	}
	return NULL;
}

/* What is wrong with the fleet settings (fleet_database set): the
 * conninfo, the password file, fleet_lease against the delivery timeouts;
 * NULL, or the reason in 'why'. Nothing is checked in single-host mode. */
static const char *fleet_problem(const struct conf *c, char *why, size_t whysz)
{
	if (db_check_conf(c, why, whysz) != 0)
		return why;
	if (db_configured(c) && (conf_int(c, "fleet_lease") <= conf_int(c, "mail_timeout") ||
				 conf_int(c, "fleet_lease") <= conf_int(c, "https_timeout"))) {
		snprintf(why, whysz, "fleet_lease (%llds) must be longer than mail_timeout (%llds) and "
			 "https_timeout (%llds): another node would take over a delivery still running",
			 (long long)conf_int(c, "fleet_lease"), (long long)conf_int(c, "mail_timeout"),
			 (long long)conf_int(c, "https_timeout"));
		return why;
	}
	return NULL;
}

/* The configuration check of run (rua_source and delivery_mail are
 * enumerated, conf.c). */
static int check_conf(const struct conf *c, struct report_identity *id, char *err, size_t errsz)
{
	const char *dm = conf_str(c, "delivery_mail");
	char origin[1200], why[300];

	if (report_identity_from_conf(c, id, why, sizeof(why)) != 0) {
		/* the message begins with the key it is about: say where it was set */
		const char *key = strncmp(why, "organization_name", 17) == 0 ? "organization_name" :
				  strncmp(why, "contact_info", 12) == 0 ? "contact_info" : "submitter_domain";

		size_t n = strlen(key);

		snprintf(err, errsz, "%s: %s", conf_origin(c, key, origin, sizeof(origin)),
			 strncmp(why, key, n) == 0 && why[n] == ' ' ? why + n + 1 : why);
		return -1;
	}
	if (!strcmp(dm, "smtp") && conf_str(c, "smtp_relay")[0] == '\0') {
		snprintf(err, errsz, "%s: smtp needs smtp_relay",
			 conf_origin(c, "delivery_mail", origin, sizeof(origin)));
		return -1;
	}
	if (strcmp(dm, "off") && conf_bool(c, "dkim_sign")) {
		if (conf_str(c, "dkim_selector")[0] == '\0' || conf_str(c, "dkim_key_file")[0] == '\0') {
			snprintf(err, errsz, "%s: yes needs dkim_selector and dkim_key_file "
				 "(or set dkim_sign = no when the MTA signs)",
				 conf_origin(c, "dkim_sign", origin, sizeof(origin)));
			return -1;
		}
	}
	if (archive_problem(c, why, sizeof(why))) {
		snprintf(err, errsz, "%s: %s",
			 conf_origin(c, "report_archive_address", origin, sizeof(origin)), why);
		return -1;
	}
	if (fleet_problem(c, why, sizeof(why))) {
		snprintf(err, errsz, "%s", why);
		return -1;
	}
	return 0;
}

/*
 * -n: everything run needs, each problem with the key and where it was
 * set, as the reporter's user (tlsrpt-report when it exists and -n runs
 * as root): the identity, the day files to read, the spool to write, the
 * DKIM key, the mail and HTTPS settings.
 */
static int check_all(const struct conf *c)
{
	struct confcheck *cc = confcheck_new(c, "tlsrpt-report", "tlsrpt-report", false);
	const char *dm = conf_str(c, "delivery_mail");
	struct report_identity id;
	char err[600], addr[MAIL_ADDR_MAX + 1];
	int before;

	if (cc == NULL)
		return EX_SOFTWARE;
	before = confcheck_problems(cc);
	confcheck_required(cc, "organization_name", "every report names it");
	confcheck_required(cc, "contact_info", "every report carries it");
	confcheck_address(cc, "contact_info");
	/* what is left: lengths, the submitter domain */
	if (confcheck_problems(cc) == before &&
	    report_identity_from_conf(c, &id, err, sizeof(err)) != 0)
		confcheck_problem(cc, "submitter_domain", "%s", err);
	if (!db_configured(c)) {	/* in fleet mode both are in the database */
		confcheck_dir(cc, "state_directory", NULL, CC_DIR_READ);
		confcheck_dir(cc, "spool_directory", NULL, CC_DIR_WRITE);
	}
	if (strcmp(dm, "off") != 0) {
		if (*conf_str(c, "contact_info") &&
		    mail_envelope_sender(c, addr, sizeof(addr), err, sizeof(err)) != 0)
			confcheck_problem(cc, *conf_str(c, "envelope_sender") ? "envelope_sender" :
					  "from_address", "%s", err);
		if (conf_bool(c, "dkim_sign")) {
			confcheck_required(cc, "dkim_selector", "dkim_sign = yes; or dkim_sign = no "
					   "when the MTA signs");
			confcheck_required(cc, "dkim_key_file", "dkim_sign = yes; or dkim_sign = no "
					   "when the MTA signs");
			confcheck_readable(cc, "dkim_key_file");
		}
	}
	if (strcmp(dm, "sendmail") == 0)
		confcheck_command(cc, "sendmail_command");
	if (strcmp(dm, "smtp") == 0) {
		confcheck_required(cc, "smtp_relay", "delivery_mail = smtp");
		confcheck_readable(cc, "smtp_ca_file");
	}
	if (conf_bool(c, "delivery_https"))
		confcheck_readable(cc, "https_ca_file");
	if (archive_problem(c, err, sizeof(err)))
		confcheck_problem(cc, "report_archive_address", "%s", err);
	if (fleet_problem(c, err, sizeof(err)))
		confcheck_problem(cc, strncmp(err, "fleet_lease", 11) == 0 ? "fleet_lease" :
				  strncmp(err, "fleet_password_file", 19) == 0 ? "fleet_password_file" :
				  "fleet_database", "%s", err);
	return confcheck_finish(cc);
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
static void find_days(const struct conf *c, const struct run_opts *o, int64_t *days, size_t *n)
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
static int do_day(const struct conf *c, const struct run_opts *o, struct spool *sp,
		  const struct report_identity *id, int64_t day, struct day_result *res)
{
	struct agg *a = agg_new();
	char p[4096], err[512], dayname[16];
	size_t nsrc = 0, staged = 0;
	int rc = 0;
	struct run_archive *aq = NULL;

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
	if (*conf_str(c, "report_archive_address") && !o->dry_run) {
		aq = calloc(1, sizeof(*aq));
		if (aq == NULL) {
			agg_free(a);
			return -1;
		}
		aq->address = conf_str(c, "report_archive_address");
	}
	for (size_t i = 0; i < agg_ndomains(a); i++) {
		const struct agg_domain *d = agg_domain(a, i);
		struct report r;
		struct tlsrpt_record rec;
		struct spool_dest_spec dests[TLSRPT_MAX_RUA];
		size_t nd = 0;
		const char *source = "record";
		char why[600];
		enum run_resolve st;
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
		st = run_resolve(c, d, &rec, &source, why, sizeof(why));
		if (st == RUN_TEMPFAIL) {
			log_warn("day %s: %s: %s; will try again", dayname, d->domain, why);
			res->tempfail++;
			report_free(&r);
			continue;
		}
		if (st == RUN_NONE)
			log_warn("day %s: %s: %s; report kept without destinations", dayname, d->domain, why);
		if (st == RUN_OK)
			nd = run_dests(c, d->domain, &rec, dests);
		if (o->dry_run) {
			run_print_dry(c, &r, d, dests, nd, source, why);
			res->reports++;
		} else if (spool_stage(sp, &r, dests, nd, source, o->now, &existed, err, sizeof(err)) != 0) {
			log_err("%s", err);
			rc = -1;
		} else {
			res->reports++;
			log_info("report %s for %s (%s): %llu successful, %llu failed sessions, %zu destination(s)",
				 r.spool_id, r.domain, dayname, (unsigned long long)d->successes,
				 (unsigned long long)d->failures, nd);
			if (nd > 0 && !existed)	/* an outgoing report: its archive copy */
				run_archive_add(c, aq, &r, o->now);
			if (++staged % STAGE_BATCH == 0) {
				rc = spool_commit(sp, err, sizeof(err));
				if (rc != 0)
					log_err("%s", err);
				run_archive_flush(c, aq, rc == 0);
			}
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
	run_archive_flush(c, aq, rc == 0);
	free(aq);
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

static int cmd_run(const struct conf *c, struct run_opts *o)
{
	struct report_identity id;
	struct spool *sp = NULL;
	struct spool_policy pol;
	char err[512];
	int64_t days[MAX_DAYS], today = o->now / 86400, newest, judge = o->now;
	size_t ndays = 0;
	int status = EX_OK;

	if (check_conf(c, &id, err, sizeof(err)) != 0) {
		log_fatal("%s", err);
		return EX_CONFIG;
	}
	if (!o->dry_run && check_dkim_key(c, &id) != 0)
		return EX_CONFIG;
	if (db_configured(c))
		return fleet_run(c, o, &id);	/* report_fleet.c: the fleet database */
	spool_policy_from_conf(c, &pol);
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
			return cmdline_status_of(err, EX_TEMPFAIL);
		}
	} else {
		sp = spool_open(conf_str(c, "spool_directory"), false, err, sizeof(err));	/* may be NULL */
	}
	/*
	 * Which days are too old to report is judged by the clock, or by the
	 * newest reported day when the clock is behind it: a clock set back
	 * must not make days whose marks were pruned long ago look recent
	 * enough to be reported (and delivered) a second time.
	 */
	if (sp && (newest = spool_newest_day(sp)) >= 0 && (newest + 1) * 86400 > o->now) {
		char nd[16], nowd[16];

		judge = (newest + 1) * 86400;
		store_format_day(nd, sizeof(nd), newest);
		store_format_day(nowd, sizeof(nowd), o->now / 86400);
		log_warn("the clock (%s) is behind the newest reported day (%s); days are judged "
			 "too old by that day", nowd, nd);
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
		int64_t due = (d + 1) * 86400 + run_day_delay(d, conf_int(c, "report_delay"));
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
			if ((d + 1) * 86400 + pol.retention <= judge) {
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
		struct spool_transport t = { run_send_jobs, (void *)(uintptr_t)c };
		struct spool_stats st;
		size_t pruned = 0;

		if (spool_deliver_due(sp, o->now, &pol, &t, &st) != 0) {
			log_err("delivery stopped: the spool could not be written");
			status = EX_IOERR;
		}
		if (st.attempted || st.interrupted || st.suppressed)
			log_info("deliveries: %zu attempted, %zu delivered, %zu to retry, %zu given up, "
				 "%zu suppressed, %zu rejected, %zu interrupted earlier",
				 st.attempted, st.delivered, st.failed, st.given_up, st.suppressed,
				 st.rejected, st.interrupted);
		if (spool_prune(sp, o->now, &pol, &pruned) == 0 && pruned)
			log_info("pruned %zu old report(s)", pruned);
	}
	spool_close(sp);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option gopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option lopts[] = {
		{ "dry-run", no_argument, NULL, 'D' },
		{ "day", required_argument, NULL, 'd' },
		{ "now", required_argument, NULL, 'N' },
		{ "input", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_opts o;
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
	while ((ch = getopt_long(argc, argv, "+c:nvh", gopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.config = optarg; break;
		case 'n': o.check_only = true; break;
		case 'v': o.verbose = true; break;
		case 'h': usage(stdout); return EX_OK;
		default: usage(stderr); return EX_USAGE;
		}
	}
	log_init("tlsrpt-report", LOG_TO_STDERR, o.verbose);
	/* run --help answers before the configuration is read */
	for (int i = optind; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return EX_OK;
		}
	c = conf_new();
	if (c == NULL)
		return EX_SOFTWARE;
	if (conf_load(c, o.config, err, sizeof(err)) != 0) {
		cmdline_log_conf_messages(c);
		conf_free(c);
		return cmdline_status_of(err, EX_CONFIG);
	}
	cmdline_log_conf_messages(c);
	if (o.check_only) {
		rc = check_all(c);
		conf_free(c);
		return rc;
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
				if (o.ninputs >= RUN_MAX_INPUTS)
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
			if (o.ninputs >= RUN_MAX_INPUTS)
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
