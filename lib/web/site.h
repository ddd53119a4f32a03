/*
 * site - the dashboard: a static web site generated from the received
 * reports (rstats.h) and the spool of sent reports (sstats.h).
 *
 * Layout under the output directory:
 *   index.html        received reports: one row per policy domain over the
 *                     period, newest problems first, signed and unverified
 *                     reports apart, filters
 *   d/NAME-v.html     one page per domain and class (v: DKIM verified,
 *   d/NAME-u.html     u: unverified): chart over the days of the period,
 *                     result types, failing MX hosts, IPs, organizations,
 *                     policies, the reports (html.h makes NAME)
 *   r/ID.json         each report of the period as stored (received.h)
 *   sent.html         the reports we sent: per day, per destination,
 *                     failures by destination and reason, suppressions
 *   assets/           chart.min.js (Chart.js, copied from the system's
 *                     package), dashboard.js, dashboard.css
 * Pages use no network, no inline script and no external resource; they
 * work from file:// and behind any web server. Every text from a report or
 * the spool goes through html.h. Charts draw from JSON in <script
 * type="application/json"> elements and each has a table with the same
 * numbers (the text alternative).
 *
 * Files are written under a temporary name and renamed, relative to
 * directory descriptors opened with O_NOFOLLOW, so a page is never seen
 * half written and no symlink is followed.
 *
 * Not thread safe.
 */
#ifndef TLSRPT_SITE_H
#define TLSRPT_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct site;

struct site_opts {
	int64_t now;		/* generation time (Unix seconds) */
	int days;		/* the period (0: all time) */
	bool sent;		/* sent.html is part of the site (link to it) */
};

/* Create (if needed) and open DIR with its d/, r/ and assets/. NULL with
 * 'err' on failure. */
struct site *site_open(const char *dir, char *err, size_t errsz);
void site_close(struct site *s);

/* Copy the Chart.js file 'chartjs' (at most 8 MiB) and write the site's
 * own script and style sheet. 0, or -1 with 'err'. */
int site_assets(struct site *s, const char *chartjs, char *err, size_t errsz);

/* r/ID.json: the stored record 'rec' of report 'id' (24 lower-case hex
 * digits, else refused). 0 or -1. */
int site_report(struct site *s, const char *id, struct json_object *rec);

/* index.html and the domain pages from rstats_build() output (built with
 * want_reports). 0, or -1 with 'err'. */
int site_received(struct site *s, struct json_object *stats, const struct site_opts *o,
		  char *err, size_t errsz);

/* sent.html from sstats_build() output (NULL: the spool could not be
 * read; the page says so). 0, or -1 with 'err'. */
int site_sent(struct site *s, struct json_object *sent, const char *spool_error,
	      const struct site_opts *o, char *err, size_t errsz);

/* Bytes written so far (for the benchmark). */
uint64_t site_bytes(const struct site *s);

/* The embedded script and style sheet (web_assets.c, generated). */
extern const char site_js[];
extern const char site_css[];

#endif
