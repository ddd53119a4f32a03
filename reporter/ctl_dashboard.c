/*
 * ctl_dashboard - `tlsrptctl dashboard`: a static web site of the reports
 * received (received_directory) and sent (spool_directory).
 *
 *   dashboard --output DIR [--days N] [--now TIME] [--chartjs FILE] [--no-sent]
 *         writes DIR/index.html (received reports per domain over the last
 *         N days, default dashboard_days), one page per domain, each report
 *         of the period as DIR/r/ID.json, DIR/sent.html (the spool) and the
 *         assets (Chart.js from dashboard_chartjs). --now (YYYY-MM-DD or
 *         RFC 3339) sets the day the period ends (tests, old data). Prints
 *         what it wrote. CTL_IOERR when a file can not be written or the
 *         chart library is missing.
 *
 * Reads the stores only; writes only below DIR (lib/web/site.h).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "received.h"
#include "rptparse.h"
#include "rstats.h"
#include "site.h"
#include "spool.h"
#include "sstats.h"

const char ctl_dashboard_usage[] =
	"dashboard --output DIR [--days N] [--now TIME] [--chartjs FILE] [--no-sent]\n"
	"    write a static web site of the reports received and sent (the last N\n"
	"    days, default dashboard_days) into DIR\n";

static void dashboard_usage(void)
{
	ctl_usage(ctl_dashboard_usage);
}

/* "YYYY-MM-DD" (noon UTC of that day) or an RFC 3339 time; 0 or -1. */
int ctl_parse_now(const char *s, int64_t *out)
{
	char iso[40];

	if (strlen(s) == 10) {
		snprintf(iso, sizeof(iso), "%sT12:00:00Z", s);
		return rpt_parse_time(iso, out);
	}
	return rpt_parse_time(s, out);
}

struct dash_ctx {
	struct site *site;
	size_t written, failed;
};

static int write_report(const char *cls, const char *id, struct json_object *rec, void *arg)
{
	struct dash_ctx *d = arg;

	(void)cls;
	if (site_report(d->site, id, rec) != 0) {
		d->failed++;
		return 1;
	}
	d->written++;
	return 0;
}

int ctl_dashboard(int argc, char **argv, const struct conf *c)
{
	const char *out = NULL, *chartjs = conf_str(c, "dashboard_chartjs");
	struct site_opts so = { .now = (int64_t)time(NULL), .days = (int)conf_int(c, "dashboard_days"),
				.sent = true };
	struct rstats_opts ro = { 0 };
	struct dash_ctx dc = { 0 };
	struct received_store *rs = NULL;
	struct json_object *stats = NULL, *sent = NULL;
	struct spool *sp;
	char err[512] = "", serr[512] = "";
	size_t ndomains = 0;
	int rc = CTL_OK;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--output") == 0 && i + 1 < argc) {
			out = argv[++i];
		} else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
			char *end;
			long d = strtol(argv[++i], &end, 10);

			if (*end || end == argv[i] || d < 0 || d > 3650) {
				dashboard_usage();
				return CTL_USAGE;
			}
			so.days = (int)d;
		} else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) {
			if (ctl_parse_now(argv[++i], &so.now) != 0) {
				fprintf(stderr, "tlsrptctl: --now: not a date: %s\n", argv[i]);
				return CTL_USAGE;
			}
		} else if (strcmp(argv[i], "--chartjs") == 0 && i + 1 < argc) {
			chartjs = argv[++i];
		} else if (strcmp(argv[i], "--no-sent") == 0) {
			so.sent = false;
		} else {
			dashboard_usage();
			return CTL_USAGE;
		}
	}
	if (out == NULL) {
		dashboard_usage();
		return CTL_USAGE;
	}
	dc.site = site_open(out, err, sizeof(err));
	if (dc.site == NULL) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		return ctl_status_of(err, CTL_IOERR);
	}
	if (site_assets(dc.site, chartjs, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		site_close(dc.site);
		return ctl_status_of(err, CTL_IOERR);
	}
	if (received_open(conf_str(c, "received_directory"), &rs, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		site_close(dc.site);
		return ctl_status_of(err, CTL_IOERR);
	}
	ro.now = so.now;
	ro.days = so.days;
	ro.want_reports = true;
	ro.report_cb = write_report;
	ro.arg = &dc;
	stats = rstats_build(rs, &ro, err, sizeof(err));
	received_close(rs);
	if (stats == NULL) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		site_close(dc.site);
		return ctl_status_of(err, CTL_IOERR);
	}
	if (site_received(dc.site, stats, &so, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		rc = ctl_status_of(err, CTL_IOERR);
	}
	for (int i = 0; i < 2; i++) {
		struct json_object *m = json_object_object_get(stats, i ? "unverified" : "verified");

		if (m) {
			json_object_object_foreach(m, k, d) {
				struct json_object *v;

				(void)k;
				if ((json_object_object_get_ex(d, "reports", &v) && json_object_get_int64(v)) ||
				    (json_object_object_get_ex(d, "prev_reports", &v) && json_object_get_int64(v)))
					ndomains++;
			}
		}
	}
	if (rc == CTL_OK && so.sent) {
		sp = spool_open(conf_str(c, "spool_directory"), false, serr, sizeof(serr));
		if (sp) {
			sent = sstats_build(sp, so.now);
			spool_close(sp);
		}
		if (site_sent(dc.site, sent, serr, &so, err, sizeof(err)) != 0) {
			fprintf(stderr, "tlsrptctl: %s\n", err);
			rc = ctl_status_of(err, CTL_IOERR);
		}
	}
	if (rc == CTL_OK)
		printf("%s: %zu domain pages, %zu reports, %llu bytes written\n", out, ndomains,
		       dc.written, (unsigned long long)site_bytes(dc.site));
	json_object_put(stats);
	json_object_put(sent);
	site_close(dc.site);
	return rc;
}
