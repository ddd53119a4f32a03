/*
 * ctl_metrics - `tlsrptctl metrics`: both sides in the Prometheus text
 * format, for node_exporter's textfile collector (or any scraper of a file).
 *
 *   metrics [--output FILE] [--sending] [--receiving] [--now TIME]
 *
 * --sending: the collector's counters of today's day file (they start at 0
 * with each UTC day: Prometheus counters that reset) and how full it is;
 * the spool's reports, destinations and delivery attempts. --receiving:
 * the received store's reports and sessions per class, policy domain and
 * result type since the store began (at most metrics_max_domains domains by
 * sessions, the rest summed as domain="_other"). Neither option: both.
 * --output writes FILE atomically (else standard output). The names are
 * documented in README.md and conf/tlsrpt-alerts.yml.
 *
 * Exit: 0, CTL_IOERR if FILE can not be written. A side that can not be
 * read (no day file yet, no spool) is reported by tlsrpt_metrics_source_up
 * = 0, not as an error, so the file keeps being written.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "ctl.h"
#include "db.h"
#include "jget.h"
#include "prom.h"
#include "received.h"
#include "rstats.h"
#include "spool.h"
#include "sstats.h"
#include "store.h"

#define METRICS_MAX (256u << 20)

const char ctl_metrics_usage[] =
	"metrics [--output FILE] [--sending] [--receiving] [--now TIME]\n"
	"    the counters of both sides in the Prometheus text format (--output:\n"
	"    written atomically to FILE, for node_exporter's textfile collector)\n";

static void metrics_usage(void)
{
	ctl_usage(ctl_metrics_usage);
}

static void up(struct buf *b, const char *source, bool ok)
{
	prom_sample(b, "tlsrpt_metrics_source_up", (const char *const[]){ "source", source, NULL },
		    ok ? 1 : 0);
}

static void collector(struct buf *b, const struct conf *c, int64_t now, bool *ok)
{
	char path[4200], err[512], name[128];
	struct store_view *v;
	const struct store_view_info *in;

	*ok = false;
	if (store_day_path(path, sizeof(path), conf_str(c, "state_directory"), rstats_day(now)) != 0)
		return;
	v = store_view_open(path, err, sizeof(err));
	if (v == NULL)
		return;
	*ok = true;
	in = store_view_info(v);
	for (int i = 0; i < STC_MAX && store_counter_name((enum store_counter)i); i++) {
		snprintf(name, sizeof(name), "tlsrpt_collector_%s_total", store_counter_name((enum store_counter)i));
		prom_family(b, name, "counter", "collector counter of the current UTC day "
			    "(tlsrptctl stats; starts at 0 with each day file)");
		prom_sample(b, name, NULL, (double)in->counters[i]);
	}
	prom_family(b, "tlsrpt_collector_day_file_used_bytes", "gauge",
		    "bytes of today's day file in use");
	prom_sample(b, "tlsrpt_collector_day_file_used_bytes", NULL, (double)in->used);
	prom_family(b, "tlsrpt_collector_day_file_size_bytes", "gauge",
		    "size of today's day file (store_max_size): overflow starts when used reaches it");
	prom_sample(b, "tlsrpt_collector_day_file_size_bytes", NULL, (double)in->file_size);
	prom_family(b, "tlsrpt_collector_day_policies", "gauge",
		    "distinct (domain, record, policy) entries counted today");
	prom_sample(b, "tlsrpt_collector_day_policies", NULL, (double)store_view_npolicies(v));
	store_view_close(v);
}

static void spool(struct buf *b, const struct conf *c, int64_t now, bool *ok)
{
	char err[512];
	struct db *db = NULL;
	struct spool *s = ctl_spool_open_read(c, &db, err, sizeof(err));
	struct json_object *st, *m;

	*ok = false;
	if (s == NULL)
		return;
	st = sstats_build(s, now);
	spool_close(s);
	db_close(db);
	if (st == NULL)
		return;
	*ok = true;
	prom_family(b, "tlsrpt_spool_reports", "gauge",
		    "reports in the spool by status (delivered: at least one destination accepted)");
	if ((m = jget_obj(st, "status")) != NULL) {
		json_object_object_foreach(m, k, v)
			prom_sample(b, "tlsrpt_spool_reports", (const char *const[]){ "status", k, NULL },
				    (double)json_object_get_int64(v));
	}
	prom_family(b, "tlsrpt_spool_destinations", "gauge",
		    "destinations (report x rua) in the spool by delivery state");
	if ((m = jget_obj(st, "dest_states")) != NULL) {
		json_object_object_foreach(m, k, v)
			prom_sample(b, "tlsrpt_spool_destinations", (const char *const[]){ "state", k, NULL },
				    (double)json_object_get_int64(v));
	}
	prom_family(b, "tlsrpt_spool_attempts", "gauge",
		    "delivery attempts recorded in the spool by scheme and outcome");
	if ((m = jget_obj(st, "attempts")) != NULL) {
		json_object_object_foreach(m, scheme, v) {
			prom_sample(b, "tlsrpt_spool_attempts", (const char *const[]){ "scheme", scheme,
				    "outcome", "ok", NULL }, (double)jget_int(v, "ok"));
			prom_sample(b, "tlsrpt_spool_attempts", (const char *const[]){ "scheme", scheme,
				    "outcome", "failed", NULL }, (double)jget_int(v, "failed"));
		}
	}
	prom_family(b, "tlsrpt_spool_suppressed_destinations", "gauge",
		    "destinations on the suppression list (permanent failure, suppress_period)");
	prom_sample(b, "tlsrpt_spool_suppressed_destinations", NULL,
		    (double)json_object_array_length(json_object_object_get(st, "suppressed")));
	prom_family(b, "tlsrpt_spool_unreadable_reports", "gauge", "spool entries that could not be read");
	prom_sample(b, "tlsrpt_spool_unreadable_reports", NULL, (double)jget_int(st, "unreadable"));
	prom_family(b, "tlsrpt_spool_last_report_created_timestamp_seconds", "gauge",
		    "when the newest report was built (0: none)");
	prom_sample(b, "tlsrpt_spool_last_report_created_timestamp_seconds", NULL,
		    (double)jget_int(st, "last_created"));
	prom_family(b, "tlsrpt_spool_oldest_pending_created_timestamp_seconds", "gauge",
		    "when the oldest report with a pending destination was built (0: none)");
	prom_sample(b, "tlsrpt_spool_oldest_pending_created_timestamp_seconds", NULL,
		    (double)jget_int(st, "oldest_pending_created"));
	json_object_put(st);
}

struct dom {
	const char *cls, *name;
	struct json_object *d;
	int64_t sessions;
};

static int by_sessions(const void *a, const void *b)
{
	const struct dom *x = a, *y = b;

	if (x->sessions != y->sessions)
		return x->sessions > y->sessions ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Add 'src' (a {key: n} map) into 'dst'. */
static void merge(struct json_object *dst, struct json_object *src)
{
	if (src == NULL)
		return;
	json_object_object_foreach(src, k, v)
		json_object_object_add(dst, k, json_object_new_int64(rstats_add(jget_int(dst, k),
							json_object_get_int64(v))));
}

static void received(struct buf *b, const struct conf *c, int64_t now, bool *ok)
{
	struct received_store *rs;
	struct rstats_opts ro = { .now = now, .days = 0 };
	struct json_object *st, *other[2];
	struct dom *doms;
	size_t n = 0, cap = 0, max = (size_t)conf_int(c, "metrics_max_domains");
	char err[512];

	*ok = false;
	if (ctl_received_open(c, &rs, err, sizeof(err)) != 0)
		return;
	st = rstats_build(rs, &ro, err, sizeof(err));
	received_close(rs);
	if (st == NULL)
		return;
	for (int k = 0; k < 2; k++)
		if (jget_obj(st, k ? "unverified" : "verified"))
			cap += (size_t)json_object_object_length(jget_obj(st, k ? "unverified" : "verified"));
	doms = calloc(cap + 2, sizeof(*doms));	/* + the two "_other" rows */
	if (doms == NULL) {
		json_object_put(st);
		return;
	}
	*ok = true;
	for (int k = 0; k < 2; k++) {
		const char *cls = k ? "unverified" : "verified";
		struct json_object *m = jget_obj(st, cls);

		if (m == NULL)
			continue;
		json_object_object_foreach(m, name, d) {
			doms[n].cls = cls;
			doms[n].name = name;
			doms[n].d = d;
			doms[n].sessions = rstats_add(jget_int(d, "successful"), jget_int(d, "failed"));
			n++;
		}
	}
	qsort(doms, n, sizeof(*doms), by_sessions);
	/* past metrics_max_domains (over both classes): summed as "_other" */
	for (int k = 0; k < 2; k++) {
		other[k] = json_object_new_object();
		json_object_object_add(other[k], "domain", json_object_new_string("_other"));
		json_object_object_add(other[k], "result_types", json_object_new_object());
		for (const char *const *f = (const char *const[]){ "successful", "failed", "reports",
			"last_end", NULL }; *f; f++)
			json_object_object_add(other[k], *f, json_object_new_int64(0));
	}
	for (size_t i = max; i < n; i++) {
		struct json_object *o = other[strcmp(doms[i].cls, "verified") != 0];

		for (const char *const *f = (const char *const[]){ "successful", "failed", "reports",
			NULL }; *f; f++)
			json_object_object_add(o, *f, json_object_new_int64(rstats_add(jget_int(o, *f),
								jget_int(doms[i].d, *f))));
		if (jget_int(doms[i].d, "last_end") > jget_int(o, "last_end"))
			json_object_object_add(o, "last_end", json_object_new_int64(jget_int(doms[i].d, "last_end")));
		merge(jget_obj(o, "result_types"), jget_obj(doms[i].d, "result_types"));
	}
	if (n > max) {
		size_t keep = max;

		for (int k = 0; k < 2; k++) {
			doms[keep].cls = k ? "unverified" : "verified";
			doms[keep].name = "_other";
			doms[keep].d = other[k];
			if (jget_int(other[k], "reports") > 0)
				keep++;
		}
		n = keep;
	}
	prom_family(b, "tlsrpt_received_rejected_total", "counter",
		    "inputs the received store kept as rejections (could not be used)");
	prom_sample(b, "tlsrpt_received_rejected_total", NULL, (double)jget_int(st, "rejected"));
	prom_family(b, "tlsrpt_received_reports_total", "counter",
		    "reports received per class (verified: DKIM) and policy domain");
	for (size_t i = 0; i < n; i++)
		prom_sample(b, "tlsrpt_received_reports_total", (const char *const[]){ "class",
			    doms[i].cls, "domain", doms[i].name, NULL }, (double)jget_int(doms[i].d, "reports"));
	prom_family(b, "tlsrpt_received_sessions_total", "counter",
		    "sessions in received reports per class, policy domain and result "
		    "(successful, failed); policy entries added up");
	for (size_t i = 0; i < n; i++) {
		prom_sample(b, "tlsrpt_received_sessions_total", (const char *const[]){ "class",
			    doms[i].cls, "domain", doms[i].name, "result", "successful", NULL },
			    (double)jget_int(doms[i].d, "successful"));
		prom_sample(b, "tlsrpt_received_sessions_total", (const char *const[]){ "class",
			    doms[i].cls, "domain", doms[i].name, "result", "failed", NULL },
			    (double)jget_int(doms[i].d, "failed"));
	}
	prom_family(b, "tlsrpt_received_failed_sessions_total", "counter",
		    "failed sessions in received reports per class, policy domain and result type");
	for (size_t i = 0; i < n; i++) {
		struct json_object *rt = jget_obj(doms[i].d, "result_types");

		if (rt == NULL)
			continue;
		json_object_object_foreach(rt, k, v)
			prom_sample(b, "tlsrpt_received_failed_sessions_total", (const char *const[]){
				    "class", doms[i].cls, "domain", doms[i].name, "result_type", k, NULL },
				    (double)json_object_get_int64(v));
	}
	prom_family(b, "tlsrpt_received_last_report_end_timestamp_seconds", "gauge",
		    "end of the date range of the newest report per class and policy domain");
	for (size_t i = 0; i < n; i++)
		prom_sample(b, "tlsrpt_received_last_report_end_timestamp_seconds", (const char *const[]){
			    "class", doms[i].cls, "domain", doms[i].name, NULL },
			    (double)jget_int(doms[i].d, "last_end"));
	free(doms);
	json_object_put(other[0]);
	json_object_put(other[1]);
	json_object_put(st);
}

int ctl_metrics(int argc, char **argv, const struct conf *c)
{
	const char *out = NULL;
	bool sending = false, receiving = false;
	int64_t now = (int64_t)time(NULL);
	struct buf b;
	char err[512];
	int rc = CTL_OK;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--output") == 0 && i + 1 < argc) {
			out = argv[++i];
		} else if (strcmp(argv[i], "--sending") == 0) {
			sending = true;
		} else if (strcmp(argv[i], "--receiving") == 0) {
			receiving = true;
		} else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) {
			if (ctl_parse_now(argv[++i], &now) != 0) {
				fprintf(stderr, "tlsrptctl: --now: not a date: %s\n", argv[i]);
				return CTL_USAGE;
			}
		} else {
			metrics_usage();
			return CTL_USAGE;
		}
	}
	if (!sending && !receiving)
		sending = receiving = true;
	buf_init(&b, METRICS_MAX);
	prom_family(&b, "tlsrpt_metrics_generated_timestamp_seconds", "gauge",
		    "when tlsrptctl metrics wrote these metrics");
	prom_sample(&b, "tlsrpt_metrics_generated_timestamp_seconds", NULL, (double)now);
	{
		struct buf body;
		bool cok = false, sok = false, rok = false;

		buf_init(&body, METRICS_MAX);
		if (sending) {
			collector(&body, c, now, &cok);
			spool(&body, c, now, &sok);
		}
		if (receiving)
			received(&body, c, now, &rok);
		prom_family(&b, "tlsrpt_metrics_source_up", "gauge",
			    "1 when the source could be read (collector: today's day file exists)");
		if (sending) {
			up(&b, "collector", cok);
			up(&b, "spool", sok);
		}
		if (receiving)
			up(&b, "received", rok);
		buf_add(&b, body.data ? body.data : "", body.len);
		if (body.overflow)
			b.overflow = true;
		buf_free(&body);
	}
	if (out) {
		if (prom_write_file(&b, out, err, sizeof(err)) != 0) {
			fprintf(stderr, "tlsrptctl: %s\n", err);
			rc = ctl_status_of(err, CTL_IOERR);
		}
	} else if (b.overflow) {
		fprintf(stderr, "tlsrptctl: the metrics are too large\n");
		rc = CTL_SOFTWARE;
	} else {
		fwrite(b.data ? b.data : "", 1, b.len, stdout);
	}
	buf_free(&b);
	return rc;
}
