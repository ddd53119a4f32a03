/*
 * site - the dashboard's static web site. See site.h.
 *
 * SECURITY: all text from reports and the spool is untrusted. It reaches
 * a page only through html_text (element content, quoted attributes) and
 * html_json (data for the charts); file names only through html_file_name
 * or validated hex ids. Pages carry a Content-Security-Policy that allows
 * scripts only from the site's own files, as a second line of defence.
 * Output files are created with O_EXCL|O_NOFOLLOW relative to directory
 * descriptors and renamed into place.
 */
#include "site.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsio.h"
#include "html.h"
#include "jget.h"
#include "rptparse.h"
#include "rstats.h"

#define PAGE_MAX (256u << 20)
#define CHARTJS_MAX (8u << 20)

struct site {
	int dirfd, dfd, rfd, afd;
	uint64_t bytes;
	unsigned seq;
};

/* ---------- files ---------- */

static int open_subdir(int parent, const char *name)
{
	if (mkdirat(parent, name, 0755) != 0 && errno != EEXIST)
		return -1;
	return openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

struct site *site_open(const char *dir, char *err, size_t errsz)
{
	struct site *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	s->dirfd = s->dfd = s->rfd = s->afd = -1;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errsz, "%s: %s", dir, strerror(errno));
		free(s);
		return NULL;
	}
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->dirfd < 0 || (s->dfd = open_subdir(s->dirfd, "d")) < 0 ||
	    (s->rfd = open_subdir(s->dirfd, "r")) < 0 ||
	    (s->afd = open_subdir(s->dirfd, "assets")) < 0) {
		snprintf(err, errsz, "%s: %s", dir, strerror(errno));
		site_close(s);
		return NULL;
	}
	return s;
}

void site_close(struct site *s)
{
	if (s == NULL)
		return;
	for (int *fd = &s->dirfd; fd <= &s->afd; fd++)
		if (*fd >= 0)
			close(*fd);
	free(s);
}

uint64_t site_bytes(const struct site *s)
{
	return s->bytes;
}

/* Write 'name' in directory 'dfd' atomically. 0 or -1 (errno). */
static int put(struct site *s, int dfd, const char *name, const void *data, size_t len)
{
	char tmp[160];
	int fd, saved;

	snprintf(tmp, sizeof(tmp), ".tmp.%ld.%u", (long)getpid(), s->seq++);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (fsio_write_all(fd, data, len) != 0) {
		saved = errno;
		close(fd);
		unlinkat(dfd, tmp, 0);
		errno = saved;
		return -1;
	}
	if (close(fd) != 0 || renameat(dfd, tmp, dfd, name) != 0) {
		saved = errno;
		unlinkat(dfd, tmp, 0);
		errno = saved;
		return -1;
	}
	s->bytes += len;
	return 0;
}

static int put_buf(struct site *s, int dfd, const char *name, struct buf *b, char *err, size_t errsz)
{
	if (b->overflow) {
		snprintf(err, errsz, "%s: the page is larger than %u MiB", name, PAGE_MAX >> 20);
		return -1;
	}
	if (put(s, dfd, name, b->data ? b->data : "", b->len) != 0) {
		snprintf(err, errsz, "%s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

int site_assets(struct site *s, const char *chartjs, char *err, size_t errsz)
{
	int fd = open(chartjs, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *d;
	size_t n = 0;

	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CHARTJS_MAX) {
		snprintf(err, errsz, "%s: %s (the chart library: Debian package libjs-chart.js, "
			 "configuration key dashboard_chartjs)", chartjs,
			 fd < 0 ? strerror(errno) : "not a regular file of at most 8 MiB");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	d = malloc((size_t)st.st_size + 1);
	while (d && n < (size_t)st.st_size) {
		ssize_t r = read(fd, d + n, (size_t)st.st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (d == NULL || n != (size_t)st.st_size) {
		snprintf(err, errsz, "%s: read error", chartjs);
		free(d);
		return -1;
	}
	if (put(s, s->afd, "chart.min.js", d, n) != 0 ||
	    put(s, s->afd, "dashboard.js", site_js, strlen(site_js)) != 0 ||
	    put(s, s->afd, "dashboard.css", site_css, strlen(site_css)) != 0) {
		snprintf(err, errsz, "assets: %s", strerror(errno));
		free(d);
		return -1;
	}
	free(d);
	return 0;
}

static bool valid_id(const char *id)
{
	size_t n = 0;

	for (; id && id[n]; n++)
		if (!((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
			return false;
	return n == 24;
}

int site_report(struct site *s, const char *id, struct json_object *rec)
{
	char name[40];
	const char *text;

	if (!valid_id(id))
		return -1;
	text = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text == NULL)
		return -1;
	snprintf(name, sizeof(name), "%s.json", id);
	return put(s, s->rfd, name, text, strlen(text));
}

/* ---------- reading the statistics ---------- */

/* [{"k": key, "n": value}] of a {key: count} map, largest first, then by key. */
static int by_n(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;
	int64_t nx = jget_int(x, "n"), ny = jget_int(y, "n");

	if (nx != ny)
		return nx > ny ? -1 : 1;
	return strcmp(jget_text(x, "k"), jget_text(y, "k"));
}

static struct json_object *ranked(struct json_object *map)
{
	struct json_object *arr = json_object_new_array();

	if (map) {
		json_object_object_foreach(map, k, v) {
			struct json_object *e = json_object_new_object();

			json_object_object_add(e, "k", json_object_new_string(k));
			json_object_object_add(e, "n", json_object_new_int64(
						       json_object_is_type(v, json_type_int) ?
						       json_object_get_int64(v) : 0));
			json_object_array_add(arr, e);
		}
	}
	json_object_array_sort(arr, by_n);
	return arr;
}

/* ---------- HTML pieces ---------- */

#define T(b, s) html_text((b), (s))

static void num(struct buf *b, int64_t n)
{
	char d[32];
	int len = snprintf(d, sizeof(d), "%lld", (long long)(n < 0 ? 0 : n));

	for (int i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			buf_addc(b, ',');
		buf_addc(b, d[i]);
	}
}

/* Success rate rounded down to 0.01 %, so 100.00 % means no failure. */
static void rate(struct buf *b, int64_t ok, int64_t failed)
{
	double total = (double)ok + (double)failed;
	long long hundredths;

	if (total <= 0) {
		buf_adds(b, "&ndash;");
		return;
	}
	hundredths = (long long)((double)ok * 10000.0 / total);
	if (failed > 0 && hundredths >= 10000)
		hundredths = 9999;
	buf_printf(b, "%lld.%02lld&nbsp;%%", hundredths / 100, hundredths % 100);
}

static double fail_pct(int64_t ok, int64_t failed)
{
	double total = (double)ok + (double)failed;

	return total > 0 ? 100.0 * (double)failed / total : 0;
}

static void time_of(int64_t t, char *out, size_t outsz)
{
	if (t <= 0)
		snprintf(out, outsz, "-");
	else
		rpt_format_time(t, out, outsz);
}

static void page_begin(struct buf *b, const char *title, const char *up, const char *active,
		       const struct site_opts *o)
{
	char gen[32];

	time_of(o->now, gen, sizeof(gen));
	buf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		 "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		 "script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
		 "form-action 'none'\">\n"
		 "<meta name=\"referrer\" content=\"no-referrer\">\n<title>");
	T(b, title);
	buf_printf(b, " &ndash; TLS reports</title>\n"
		   "<link rel=\"stylesheet\" href=\"%sassets/dashboard.css\">\n"
		   "<script src=\"%sassets/chart.min.js\" defer></script>\n"
		   "<script src=\"%sassets/dashboard.js\" defer></script>\n</head>\n<body>\n"
		   "<a class=\"skip\" href=\"#main\">Skip to content</a>\n"
		   "<header><nav aria-label=\"Sections\"><ul>\n", up, up, up);
	buf_printf(b, "<li><a href=\"%sindex.html\"%s>Received reports</a></li>\n", up,
		   strcmp(active, "received") == 0 ? " aria-current=\"page\"" : "");
	if (o->sent)
		buf_printf(b, "<li><a href=\"%ssent.html\"%s>Sent reports</a></li>\n", up,
			   strcmp(active, "sent") == 0 ? " aria-current=\"page\"" : "");
	buf_printf(b, "</ul></nav><p class=\"generated\">Generated <time datetime=\"%s\">%s</time>"
		   " by tlsrptctl dashboard</p></header>\n<main id=\"main\">\n", gen, gen);
}

static void page_end(struct buf *b)
{
	buf_adds(b, "</main>\n</body>\n</html>\n");
}

/* <script type="application/json" id="ID">JSON</script> */
static void json_block(struct buf *b, const char *id, struct json_object *data)
{
	buf_printf(b, "<script type=\"application/json\" id=\"%s\">", id);
	html_json(b, json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
	buf_adds(b, "</script>\n");
}

/* A two-column table of a ranked map. */
static void ranked_table(struct buf *b, const char *id, const char *caption, const char *what,
			 const char *count, struct json_object *map, size_t limit)
{
	struct json_object *arr = ranked(map);
	size_t n = json_object_array_length(arr);

	buf_printf(b, "<section class=\"breakdown\" aria-labelledby=\"h-%s\">\n<h3 id=\"h-%s\">", id, id);
	T(b, caption);
	buf_adds(b, "</h3>\n");
	if (n == 0) {
		buf_adds(b, "<p class=\"none\">None in this period.</p>\n</section>\n");
		json_object_put(arr);
		return;
	}
	buf_printf(b, "<table id=\"%s\"><thead><tr><th scope=\"col\">", id);
	T(b, what);
	buf_adds(b, "</th><th scope=\"col\" class=\"n\">");
	T(b, count);
	buf_adds(b, "</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < n && i < limit; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);

		buf_adds(b, "<tr><td class=\"key\">");
		T(b, jget_text(e, "k"));
		buf_adds(b, "</td><td class=\"n\">");
		num(b, jget_int(e, "n"));
		buf_adds(b, "</td></tr>\n");
	}
	buf_adds(b, "</tbody></table>\n");
	if (n > limit)
		buf_printf(b, "<p class=\"note\">%zu more not shown.</p>\n", n - limit);
	buf_adds(b, "</section>\n");
	json_object_put(arr);
}

/* ---------- the received side ---------- */

struct drow {
	const char *cls;
	struct json_object *d;
	const char *worst;	/* result type with most failed sessions */
	int64_t worst_n;
	char file[HTML_FILE_NAME_MAX + 8];
};

static void worst_of(struct drow *r)
{
	struct json_object *rt = jget_obj(r->d, "result_types");

	r->worst = NULL;
	r->worst_n = 0;
	if (rt == NULL)
		return;
	json_object_object_foreach(rt, k, v) {
		int64_t n = json_object_get_int64(v);

		if (n > r->worst_n || (n == r->worst_n && r->worst && strcmp(k, r->worst) < 0)) {
			r->worst = k;
			r->worst_n = n;
		}
	}
}

/* Newest problem first; then most failed; then domains without failures by
 * name. */
static int cmp_rows(const void *a, const void *b)
{
	const struct drow *x = a, *y = b;
	const char *lx = jget_text(x->d, "last_failure_day"), *ly = jget_text(y->d, "last_failure_day");
	int c = strcmp(ly, lx);
	int64_t fx = jget_int(x->d, "failed"), fy = jget_int(y->d, "failed");

	if (c)
		return c;
	if (fx != fy)
		return fx > fy ? -1 : 1;
	return strcmp(jget_text(x->d, "domain"), jget_text(y->d, "domain"));
}

static void trend(struct buf *b, struct json_object *d, const struct site_opts *o)
{
	int64_t ok = jget_int(d, "successful"), f = jget_int(d, "failed");
	int64_t pok = jget_int(d, "prev_successful"), pf = jget_int(d, "prev_failed");
	double now = fail_pct(ok, f), before = fail_pct(pok, pf), delta = now - before;

	if (o->days == 0) {
		buf_adds(b, "<td class=\"trend\">&ndash;</td>");
		return;
	}
	if (pok + pf == 0) {
		buf_adds(b, ok + f ? "<td class=\"trend\" data-trend=\"new\">new</td>"
			 : "<td class=\"trend\" data-trend=\"none\">&ndash;</td>");
		return;
	}
	if (ok + f == 0) {
		buf_adds(b, "<td class=\"trend worse\" data-trend=\"silent\">no reports "
			 "<span class=\"sub\">(");
		num(b, pok + pf);
		buf_adds(b, " sessions before)</span></td>");
		return;
	}
	if (delta > 0.005)
		buf_printf(b, "<td class=\"trend worse\" data-trend=\"worse\"><span aria-hidden=\"true\">"
			   "&#9650;</span> failures +%.2f&nbsp;pp", delta);
	else if (delta < -0.005)
		buf_printf(b, "<td class=\"trend better\" data-trend=\"better\"><span aria-hidden=\"true\">"
			   "&#9660;</span> failures &minus;%.2f&nbsp;pp", -delta);
	else
		buf_adds(b, "<td class=\"trend\" data-trend=\"same\">failures unchanged");
	buf_adds(b, " <span class=\"sub\">(sessions ");
	if (ok + f >= pok + pf)
		buf_printf(b, "+%.0f&nbsp;%%", 100.0 * (double)(ok + f - pok - pf) / (double)(pok + pf));
	else
		buf_printf(b, "&minus;%.0f&nbsp;%%", 100.0 * (double)(pok + pf - ok - f) / (double)(pok + pf));
	buf_adds(b, ")</span></td>");
}

static void period_text(struct buf *b, struct json_object *stats, const struct site_opts *o)
{
	const char *first = jget_text(stats, "first"), *last = jget_text(stats, "last");

	if (o->days == 0 && *first == '\0') {
		buf_adds(b, "all time (no reports)");
		return;
	}
	buf_printf(b, "<time datetime=\"%s\">", first);
	T(b, first);
	buf_printf(b, "</time> to <time datetime=\"%s\">", last);
	T(b, last);
	buf_adds(b, "</time>");
	if (o->days > 0)
		buf_printf(b, " (%d day%s, UTC, by the day a report's range starts)", o->days,
			   o->days == 1 ? "" : "s");
	else
		buf_adds(b, " (all reports, UTC)");
}

static const char *class_title(const char *cls)
{
	return strcmp(cls, "verified") == 0 ? "Signed reports (DKIM verified)"
					      : "Unverified reports";
}

static void overview_section(struct buf *b, const char *cls, struct drow *rows, size_t n,
			     const struct site_opts *o)
{
	int64_t ok = 0, f = 0, reports = 0;
	size_t ndom = 0;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].cls, cls) != 0)
			continue;
		ndom++;
		ok = rstats_add(ok, jget_int(rows[i].d, "successful"));
		f = rstats_add(f, jget_int(rows[i].d, "failed"));
		reports = rstats_add(reports, jget_int(rows[i].d, "reports"));
	}
	buf_printf(b, "<section class=\"cls\" data-class=\"%s\" aria-labelledby=\"h-%s\">\n"
		   "<h2 id=\"h-%s\">%s</h2>\n", cls, cls, cls, class_title(cls));
	if (strcmp(cls, "unverified") == 0)
		buf_adds(b, "<p class=\"warn\">These reports came without a DKIM signature that "
			 "our mail server verified (or were imported without <code>--trusted</code>). "
			 "RFC 8460 says to ignore them: anyone can send them.</p>\n");
	buf_printf(b, "<dl class=\"totals\" id=\"totals-%s\">"
		   "<div><dt>Domains</dt><dd class=\"t-domains\">%zu</dd></div>"
		   "<div><dt>Reports</dt><dd class=\"t-reports\">", cls, ndom);
	num(b, reports);
	buf_adds(b, "</dd></div><div><dt>Sessions</dt><dd class=\"t-sessions\">");
	num(b, rstats_add(ok, f));
	buf_adds(b, "</dd></div><div><dt>Failed sessions</dt><dd class=\"t-failed\">");
	num(b, f);
	buf_adds(b, "</dd></div><div><dt>Success rate</dt><dd class=\"t-rate\">");
	rate(b, ok, f);
	buf_adds(b, "</dd></div></dl>\n");
	if (ndom == 0) {
		buf_adds(b, "<p class=\"none\">No reports in this period.</p>\n</section>\n");
		return;
	}
	buf_printf(b, "<table class=\"domains\" id=\"domains-%s\">\n<caption>Policy domains, "
		   "newest problems first</caption>\n<thead><tr>"
		   "<th scope=\"col\">Domain</th><th scope=\"col\" class=\"n\">Sessions</th>"
		   "<th scope=\"col\" class=\"n\">Success rate</th>"
		   "<th scope=\"col\" class=\"n\">Failed sessions</th>"
		   "<th scope=\"col\">Trend%s</th>"
		   "<th scope=\"col\">Worst failure type</th><th scope=\"col\">Last failure</th>"
		   "<th scope=\"col\" class=\"n\">Reports</th></tr></thead>\n<tbody>\n", cls,
		   o->days ? " against the previous period" : "");
	for (size_t i = 0; i < n; i++) {
		struct drow *r = &rows[i];
		int64_t rok = jget_int(r->d, "successful"), rf = jget_int(r->d, "failed");

		if (strcmp(r->cls, cls) != 0)
			continue;
		buf_adds(b, "<tr data-domain=\"");
		T(b, jget_text(r->d, "domain"));
		buf_printf(b, "\" data-failed=\"%lld\" data-sessions=\"%lld\"%s>"
			   "<th scope=\"row\" class=\"domain\"><a href=\"d/%s\">",
			   (long long)rf, (long long)rstats_add(rok, rf), rf ? " class=\"fail\"" : "",
			   r->file);
		T(b, *jget_text(r->d, "domain") ? jget_text(r->d, "domain") : "(no domain)");
		buf_adds(b, "</a></th><td class=\"n sessions\">");
		num(b, rstats_add(rok, rf));
		buf_adds(b, "</td><td class=\"n rate\">");
		rate(b, rok, rf);
		buf_adds(b, "</td><td class=\"n failed\">");
		num(b, rf);
		buf_adds(b, "</td>");
		trend(b, r->d, o);
		buf_adds(b, "<td class=\"worst\">");
		if (r->worst) {
			T(b, r->worst);
			buf_adds(b, " <span class=\"sub\">(");
			num(b, r->worst_n);
			buf_adds(b, ")</span>");
		} else {
			buf_adds(b, "&ndash;");
		}
		buf_adds(b, "</td><td class=\"last\">");
		if (*jget_text(r->d, "last_failure_day"))
			T(b, jget_text(r->d, "last_failure_day"));
		else
			buf_adds(b, "&ndash;");
		buf_adds(b, "</td><td class=\"n reports\">");
		num(b, jget_int(r->d, "reports"));
		buf_adds(b, "</td></tr>\n");
	}
	buf_adds(b, "</tbody></table>\n</section>\n");
}

static int write_overview(struct site *s, struct json_object *stats, struct drow *rows, size_t n,
			  const struct site_opts *o, char *err, size_t errsz)
{
	struct buf b;
	int rc;

	buf_init(&b, PAGE_MAX);
	page_begin(&b, "Received reports", "", "received", o);
	buf_adds(&b, "<h1>TLS reports received</h1>\n<p class=\"period\">Period: ");
	period_text(&b, stats, o);
	buf_printf(&b, ". Rejected inputs in the store: <span id=\"rejected\">%lld</span> "
		   "(<code>tlsrptctl received show ID</code>).</p>\n", (long long)jget_int(stats, "rejected"));
	buf_adds(&b, "<form class=\"filters\" id=\"filters\" role=\"search\" aria-label=\"Filter domains\">\n"
		 "<label for=\"f-domain\">Domain contains</label> "
		 "<input type=\"search\" id=\"f-domain\" autocomplete=\"off\">\n"
		 "<label><input type=\"checkbox\" id=\"f-failing\"> only domains with failures</label>\n"
		 "<label for=\"f-class\">Reports</label> <select id=\"f-class\">"
		 "<option value=\"all\">signed and unverified</option>"
		 "<option value=\"verified\">signed only</option>"
		 "<option value=\"unverified\">unverified only</option></select>\n"
		 "<output id=\"f-count\" for=\"f-domain f-failing f-class\" aria-live=\"polite\"></output>\n"
		 "</form>\n");
	overview_section(&b, "verified", rows, n, o);
	overview_section(&b, "unverified", rows, n, o);
	page_end(&b);
	rc = put_buf(s, s->dirfd, "index.html", &b, err, errsz);
	buf_free(&b);
	return rc;
}

/* The chart data of a domain: every day of the period (all time: the days
 * with reports), so that the axis is a real date axis with gaps. */
static struct json_object *days_data(struct json_object *d, struct json_object *stats,
				     const struct site_opts *o)
{
	struct json_object *arr = json_object_new_array(), *days = jget_obj(d, "days");

	if (o->days > 0) {
		int64_t t, first, last;
		char iso[40];

		snprintf(iso, sizeof(iso), "%sT00:00:00Z", jget_text(stats, "first"));
		first = rpt_parse_time(iso, &t) == 0 ? rstats_day(t) : rstats_day(o->now);
		snprintf(iso, sizeof(iso), "%sT00:00:00Z", jget_text(stats, "last"));
		last = rpt_parse_time(iso, &t) == 0 ? rstats_day(t) : first;
		for (int64_t day = first; day <= last; day++) {
			char name[16];
			struct json_object *e = json_object_new_object(), *v = NULL;

			rstats_format_day(day, name, sizeof(name));
			if (days)
				json_object_object_get_ex(days, name, &v);
			json_object_object_add(e, "day", json_object_new_string(name));
			json_object_object_add(e, "successful", json_object_new_int64(jget_int(v, "successful")));
			json_object_object_add(e, "failed", json_object_new_int64(jget_int(v, "failed")));
			json_object_object_add(e, "reports", json_object_new_int64(jget_int(v, "reports")));
			json_object_array_add(arr, e);
		}
		return arr;
	}
	if (days) {
		json_object_object_foreach(days, k, v) {
			struct json_object *e = json_object_new_object();

			json_object_object_add(e, "day", json_object_new_string(k));
			json_object_object_add(e, "successful", json_object_new_int64(jget_int(v, "successful")));
			json_object_object_add(e, "failed", json_object_new_int64(jget_int(v, "failed")));
			json_object_object_add(e, "reports", json_object_new_int64(jget_int(v, "reports")));
			json_object_array_add(arr, e);
		}
	}
	return arr;
}

static int by_day(const void *a, const void *b)
{
	return strcmp(jget_text(*(struct json_object *const *)a, "day"),
		      jget_text(*(struct json_object *const *)b, "day"));
}

static void org_table(struct buf *b, struct json_object *d)
{
	struct json_object *orgs = jget_obj(d, "organizations"), *arr = json_object_new_array();

	if (orgs) {
		json_object_object_foreach(orgs, k, v) {
			struct json_object *e;

			if (jget_int(v, "reports") == 0)
				continue;
			e = json_object_new_object();
			json_object_object_add(e, "k", json_object_new_string(k));
			json_object_object_add(e, "n", json_object_new_int64(
						       rstats_add(jget_int(v, "successful"), jget_int(v, "failed"))));
			json_object_object_add(e, "v", json_object_get(v));
			json_object_array_add(arr, e);
		}
	}
	json_object_array_sort(arr, by_n);
	buf_adds(b, "<section class=\"breakdown wide\" aria-labelledby=\"h-orgs\">\n"
		 "<h3 id=\"h-orgs\">Reporting organizations</h3>\n");
	if (json_object_array_length(arr) == 0) {
		buf_adds(b, "<p class=\"none\">None in this period.</p>\n</section>\n");
		json_object_put(arr);
		return;
	}
	buf_adds(b, "<table id=\"orgs\"><thead><tr><th scope=\"col\">Organization</th>"
		 "<th scope=\"col\" class=\"n\">Reports</th><th scope=\"col\" class=\"n\">Sessions</th>"
		 "<th scope=\"col\" class=\"n\">Failed</th><th scope=\"col\" class=\"n\">Success rate</th>"
		 "<th scope=\"col\">Signed by (DKIM d=)</th><th scope=\"col\">Last report ends</th>"
		 "</tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *e = json_object_array_get_idx(arr, i), *v = jget_obj(e, "v");
		struct json_object *signers = ranked(jget_obj(v, "signers"));
		char t[32];

		buf_adds(b, "<tr><th scope=\"row\" class=\"key\">");
		T(b, jget_text(e, "k"));
		buf_adds(b, "</th><td class=\"n\">");
		num(b, jget_int(v, "reports"));
		buf_adds(b, "</td><td class=\"n\">");
		num(b, jget_int(e, "n"));
		buf_adds(b, "</td><td class=\"n\">");
		num(b, jget_int(v, "failed"));
		buf_adds(b, "</td><td class=\"n\">");
		rate(b, jget_int(v, "successful"), jget_int(v, "failed"));
		buf_adds(b, "</td><td>");
		if (json_object_array_length(signers) == 0)
			buf_adds(b, "&ndash;");
		for (size_t k = 0; k < json_object_array_length(signers); k++) {
			if (k)
				buf_adds(b, ", ");
			T(b, jget_text(json_object_array_get_idx(signers, k), "k"));
		}
		time_of(jget_int(v, "last_end"), t, sizeof(t));
		buf_printf(b, "</td><td>%s</td></tr>\n", t);
		json_object_put(signers);
	}
	buf_adds(b, "</tbody></table>\n</section>\n");
	json_object_put(arr);
}

static void strings_cell(struct buf *b, struct json_object *a)
{
	size_t n = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;

	if (n == 0) {
		buf_adds(b, "&ndash;");
		return;
	}
	buf_adds(b, "<ul class=\"plain\">");
	for (size_t i = 0; i < n && i < 50; i++) {
		buf_adds(b, "<li>");
		T(b, json_object_get_string(json_object_array_get_idx(a, i)));
		buf_adds(b, "</li>");
	}
	if (n > 50)
		buf_printf(b, "<li>(%zu more)</li>", n - 50);
	buf_adds(b, "</ul>");
}

static int by_sessions(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;
	int64_t nx = rstats_add(jget_int(x, "successful"), jget_int(x, "failed"));
	int64_t ny = rstats_add(jget_int(y, "successful"), jget_int(y, "failed"));

	if (nx != ny)
		return nx > ny ? -1 : 1;
	return strcmp(jget_text(x, "type"), jget_text(y, "type"));
}

static void policy_table(struct buf *b, struct json_object *d)
{
	struct json_object *pols = jget_obj(d, "policies"), *arr = json_object_new_array();

	if (pols) {
		json_object_object_foreach(pols, k, v) {
			(void)k;
			json_object_array_add(arr, json_object_get(v));
		}
	}
	json_object_array_sort(arr, by_sessions);
	buf_adds(b, "<section class=\"breakdown wide\" aria-labelledby=\"h-policies\">\n"
		 "<h3 id=\"h-policies\">Policies</h3>\n");
	if (json_object_array_length(arr) == 0) {
		buf_adds(b, "<p class=\"none\">None in this period.</p>\n</section>\n");
		json_object_put(arr);
		return;
	}
	buf_adds(b, "<table id=\"policies\"><thead><tr><th scope=\"col\">Type</th>"
		 "<th scope=\"col\">Policy domain</th><th scope=\"col\">Policy</th>"
		 "<th scope=\"col\">MX hosts</th><th scope=\"col\" class=\"n\">Reports</th>"
		 "<th scope=\"col\" class=\"n\">Sessions</th><th scope=\"col\" class=\"n\">Failed</th>"
		 "</tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < json_object_array_length(arr) && i < 200; i++) {
		struct json_object *p = json_object_array_get_idx(arr, i), *v;

		buf_adds(b, "<tr><td>");
		T(b, jget_text(p, "type"));
		buf_adds(b, "</td><td>");
		T(b, jget_text(p, "domain"));
		buf_adds(b, "</td><td>");
		strings_cell(b, json_object_object_get_ex(p, "strings", &v) ? v : NULL);
		buf_adds(b, "</td><td>");
		strings_cell(b, json_object_object_get_ex(p, "mx", &v) ? v : NULL);
		buf_adds(b, "</td><td class=\"n\">");
		num(b, jget_int(p, "reports"));
		buf_adds(b, "</td><td class=\"n\">");
		num(b, rstats_add(jget_int(p, "successful"), jget_int(p, "failed")));
		buf_adds(b, "</td><td class=\"n\">");
		num(b, jget_int(p, "failed"));
		buf_adds(b, "</td></tr>\n");
	}
	buf_adds(b, "</tbody></table>\n");
	if (json_object_array_length(arr) > 200)
		buf_printf(b, "<p class=\"note\">%zu more not shown.</p>\n",
			   json_object_array_length(arr) - 200);
	buf_adds(b, "</section>\n");
	json_object_put(arr);
}

static void reports_table(struct buf *b, struct json_object *d)
{
	struct json_object *list, *orgs = ranked(NULL);
	size_t n;

	if (!json_object_object_get_ex(d, "report_list", &list) || !json_object_is_type(list, json_type_array))
		list = NULL;
	n = list ? json_object_array_length(list) : 0;
	buf_adds(b, "<section aria-labelledby=\"h-reports\">\n<h2 id=\"h-reports\">Reports</h2>\n");
	if (n == 0) {
		buf_adds(b, "<p class=\"none\">None in this period.</p>\n</section>\n");
		json_object_put(orgs);
		return;
	}
	{
		struct json_object *seen = json_object_new_object();

		for (size_t i = 0; i < n; i++)
			json_object_object_add(seen, jget_text(json_object_array_get_idx(list, i), "organization"),
					       json_object_new_int64(1));
		json_object_put(orgs);
		orgs = ranked(seen);
		json_object_put(seen);
	}
	buf_adds(b, "<form class=\"filters\" role=\"search\" aria-label=\"Filter reports\">\n"
		 "<label for=\"f-org\">Organization</label> <select id=\"f-org\">"
		 "<option value=\"\">all</option>");
	for (size_t i = 0; i < json_object_array_length(orgs); i++) {
		const char *k = jget_text(json_object_array_get_idx(orgs, i), "k");

		buf_adds(b, "<option value=\"");
		T(b, k);
		buf_adds(b, "\">");
		T(b, k);
		buf_adds(b, "</option>");
	}
	buf_adds(b, "</select>\n<label><input type=\"checkbox\" id=\"f-rfailing\"> only reports "
		 "with failures</label>\n<output id=\"r-count\" for=\"f-org f-rfailing\" "
		 "aria-live=\"polite\"></output>\n</form>\n");
	buf_adds(b, "<table id=\"reports\"><thead><tr><th scope=\"col\">Day</th>"
		 "<th scope=\"col\">Organization</th><th scope=\"col\">Submitter</th>"
		 "<th scope=\"col\">Signed by</th><th scope=\"col\">Report-ID</th>"
		 "<th scope=\"col\" class=\"n\">Sessions</th><th scope=\"col\" class=\"n\">Failed</th>"
		 "<th scope=\"col\">Report</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(list, i);
		int64_t ok = jget_int(r, "successful"), f = jget_int(r, "failed");
		const char *id = jget_text(r, "id");

		buf_adds(b, "<tr data-org=\"");
		T(b, jget_text(r, "organization"));
		buf_printf(b, "\" data-failed=\"%lld\"%s><td>", (long long)f, f ? " class=\"fail\"" : "");
		T(b, jget_text(r, "day"));
		buf_adds(b, "</td><td>");
		T(b, jget_text(r, "organization"));
		buf_adds(b, "</td><td>");
		T(b, jget_text(r, "submitter"));
		buf_adds(b, "</td><td>");
		if (*jget_text(r, "signer"))
			T(b, jget_text(r, "signer"));
		else if (strcmp(jget_text(r, "dkim"), "trusted") == 0)
			buf_adds(b, "<span class=\"sub\">imported as trusted</span>");
		else {
			buf_adds(b, "<span class=\"sub\">not verified (dkim ");
			T(b, *jget_text(r, "dkim") ? jget_text(r, "dkim") : "unknown");
			buf_adds(b, ")</span>");
		}
		buf_adds(b, "</td><td class=\"rid\">");
		T(b, jget_text(r, "report_id"));
		buf_adds(b, "</td><td class=\"n\">");
		num(b, rstats_add(ok, f));
		buf_adds(b, "</td><td class=\"n\">");
		num(b, f);
		buf_adds(b, "</td><td>");
		if (valid_id(id))
			buf_printf(b, "<a href=\"../r/%s.json\" type=\"application/json\">JSON "
				   "<span class=\"sub\">%s</span></a>", id, id);
		buf_adds(b, "</td></tr>\n");
	}
	buf_adds(b, "</tbody></table>\n</section>\n");
	json_object_put(orgs);
}

static int write_domain(struct site *s, struct json_object *stats, struct drow *r,
			const struct site_opts *o, char *err, size_t errsz)
{
	struct json_object *d = r->d, *chart = json_object_new_object(), *days, *rts;
	int64_t ok = jget_int(d, "successful"), f = jget_int(d, "failed");
	const char *dom = *jget_text(d, "domain") ? jget_text(d, "domain") : "(no domain)";
	struct buf b;
	int rc;

	buf_init(&b, PAGE_MAX);
	page_begin(&b, dom, "../", "received", o);
	buf_printf(&b, "<p class=\"crumbs\"><a href=\"../index.html\">Received reports</a> &rsaquo; "
		   "%s</p>\n<h1>", class_title(r->cls));
	T(&b, dom);
	buf_printf(&b, " <span class=\"badge %s\">%s</span></h1>\n", r->cls,
		   strcmp(r->cls, "verified") == 0 ? "signed" : "unverified");
	if (strcmp(r->cls, "unverified") == 0)
		buf_adds(&b, "<p class=\"warn\">Reports without a verified DKIM signature: anyone can "
			 "send these (RFC 8460 says to ignore them).</p>\n");
	buf_adds(&b, "<p class=\"period\">Period: ");
	period_text(&b, stats, o);
	buf_adds(&b, ".</p>\n<dl class=\"totals\" id=\"totals\">"
		 "<div><dt>Sessions</dt><dd class=\"t-sessions\">");
	num(&b, rstats_add(ok, f));
	buf_adds(&b, "</dd></div><div><dt>Success rate</dt><dd class=\"t-rate\">");
	rate(&b, ok, f);
	buf_adds(&b, "</dd></div><div><dt>Failed sessions</dt><dd class=\"t-failed\">");
	num(&b, f);
	buf_adds(&b, "</dd></div><div><dt>Reports</dt><dd class=\"t-reports\">");
	num(&b, jget_int(d, "reports"));
	buf_adds(&b, "</dd></div></dl>\n");

	/* the time chart and its table */
	days = days_data(d, stats, o);
	json_object_array_sort(days, by_day);
	json_object_object_add(chart, "days", json_object_get(days));
	rts = ranked(jget_obj(d, "result_types"));
	json_object_object_add(chart, "result_types", json_object_get(rts));
	json_block(&b, "chart-data", chart);
	buf_adds(&b, "<section aria-labelledby=\"h-days\">\n<h2 id=\"h-days\">Sessions per day</h2>\n"
		 "<p class=\"chart-note\" id=\"days-desc\">Successful and failed sessions for each day "
		 "of the period on a date axis. The scale is logarithmic, so a few failures stay "
		 "visible next to many successes; with the linear scale, failures have their own "
		 "axis on the right. The same numbers are in the table below the chart.</p>\n"
		 "<label><input type=\"checkbox\" id=\"linear-scale\"> linear scale</label>\n"
		 "<div class=\"chart\"><canvas id=\"chart-days\" role=\"img\" "
		 "aria-label=\"Chart of successful and failed sessions per day; the table "
		 "below has the same numbers\" aria-describedby=\"days-desc\"></canvas></div>\n"
		 "<details><summary>Sessions per day as a table</summary>\n"
		 "<table id=\"days-table\"><thead><tr><th scope=\"col\">Day</th>"
		 "<th scope=\"col\" class=\"n\">Successful</th><th scope=\"col\" class=\"n\">Failed</th>"
		 "<th scope=\"col\" class=\"n\">Reports</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < json_object_array_length(days); i++) {
		struct json_object *e = json_object_array_get_idx(days, i);

		if (jget_int(e, "reports") == 0 && jget_int(e, "successful") == 0 && jget_int(e, "failed") == 0)
			continue;
		buf_adds(&b, "<tr><th scope=\"row\">");
		T(&b, jget_text(e, "day"));
		buf_adds(&b, "</th><td class=\"n\">");
		num(&b, jget_int(e, "successful"));
		buf_adds(&b, "</td><td class=\"n\">");
		num(&b, jget_int(e, "failed"));
		buf_adds(&b, "</td><td class=\"n\">");
		num(&b, jget_int(e, "reports"));
		buf_adds(&b, "</td></tr>\n");
	}
	buf_adds(&b, "</tbody></table>\n</details>\n</section>\n");
	json_object_put(days);

	buf_adds(&b, "<section aria-labelledby=\"h-failures\">\n<h2 id=\"h-failures\">Failures</h2>\n");
	if (json_object_array_length(rts) > 0)
		buf_adds(&b, "<div class=\"chart small\"><canvas id=\"chart-types\" role=\"img\" "
			 "aria-label=\"Bar chart of failed sessions by result type; the table "
			 "Result types has the same numbers\"></canvas></div>\n");
	json_object_put(rts);
	buf_adds(&b, "<div class=\"grid\">\n");
	ranked_table(&b, "result-types", "Result types", "Result type", "Failed sessions",
		     jget_obj(d, "result_types"), 100);
	ranked_table(&b, "reasons", "Failure reason codes", "Reason", "Failed sessions",
		     jget_obj(d, "failure_reasons"), 100);
	ranked_table(&b, "failing-mx", "Failing MX hosts", "MX host", "Failed sessions",
		     jget_obj(d, "failing_mx"), 100);
	ranked_table(&b, "receiving-ips", "Receiving IPs", "IP address", "Failed sessions",
		     jget_obj(d, "receiving_ips"), 100);
	ranked_table(&b, "sending-ips", "Sending IPs (the reporters' MTAs)", "IP address",
		     "Failed sessions", jget_obj(d, "sending_ips"), 100);
	buf_adds(&b, "</div>\n</section>\n<section aria-labelledby=\"h-who\">\n"
		 "<h2 id=\"h-who\">Who reported, under which policy</h2>\n");
	org_table(&b, d);
	policy_table(&b, d);
	buf_adds(&b, "</section>\n");
	reports_table(&b, d);
	page_end(&b);
	json_object_put(chart);
	rc = put_buf(s, s->dfd, r->file, &b, err, errsz);
	buf_free(&b);
	return rc;
}

int site_received(struct site *s, struct json_object *stats, const struct site_opts *o,
		  char *err, size_t errsz)
{
	struct drow *rows;
	size_t n = 0, cap = 0;
	int rc = 0;

	for (int c = 0; c < 2; c++)
		if (jget_obj(stats, c ? "unverified" : "verified"))
			cap += (size_t)json_object_object_length(jget_obj(stats, c ? "unverified" : "verified"));
	rows = calloc(cap ? cap : 1, sizeof(*rows));
	if (rows == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (int c = 0; c < 2; c++) {
		const char *cls = c ? "unverified" : "verified";
		struct json_object *m = jget_obj(stats, cls);
		char name[HTML_FILE_NAME_MAX];

		if (m == NULL)
			continue;
		json_object_object_foreach(m, k, d) {
			(void)k;
			/* listed: reports in the period, or in the previous one */
			if (jget_int(d, "reports") == 0 && jget_int(d, "prev_reports") == 0)
				continue;
			rows[n].cls = cls;
			rows[n].d = d;
			worst_of(&rows[n]);
			html_file_name(jget_text(d, "domain"), name);
			snprintf(rows[n].file, sizeof(rows[n].file), "%s-%c.html", name, cls[0]);
			n++;
		}
	}
	qsort(rows, n, sizeof(*rows), cmp_rows);
	rc = write_overview(s, stats, rows, n, o, err, errsz);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = write_domain(s, stats, &rows[i], o, err, errsz);
	free(rows);
	return rc;
}

/* ---------- the sending side ---------- */

static int by_key(const void *a, const void *b)
{
	return strcmp(jget_text(*(struct json_object *const *)a, "k"),
		      jget_text(*(struct json_object *const *)b, "k"));
}

int site_sent(struct site *s, struct json_object *sent, const char *spool_error,
	      const struct site_opts *o, char *err, size_t errsz)
{
	struct json_object *days, *chart, *dests, *arr, *st, *ds;
	struct buf b;
	int rc;

	buf_init(&b, PAGE_MAX);
	page_begin(&b, "Sent reports", "", "sent", o);
	buf_adds(&b, "<h1>TLS reports sent</h1>\n");
	if (sent == NULL) {
		buf_adds(&b, "<p class=\"warn\">The spool could not be read: ");
		T(&b, spool_error ? spool_error : "unknown error");
		buf_adds(&b, "</p>\n");
		page_end(&b);
		rc = put_buf(s, s->dirfd, "sent.html", &b, err, errsz);
		buf_free(&b);
		return rc;
	}
	st = jget_obj(sent, "status");
	ds = jget_obj(sent, "dest_states");
	buf_adds(&b, "<p class=\"period\">Every report in the spool (kept for spool_retention), "
		 "by the UTC day it reports on.</p>\n<dl class=\"totals\" id=\"totals\">"
		 "<div><dt>Reports</dt><dd class=\"t-reports\">");
	num(&b, jget_int(sent, "reports"));
	buf_adds(&b, "</dd></div><div><dt>Delivered</dt><dd class=\"t-delivered\">");
	num(&b, jget_int(st, "delivered"));
	buf_adds(&b, "</dd></div><div><dt>Pending</dt><dd class=\"t-pending\">");
	num(&b, jget_int(st, "pending"));
	buf_adds(&b, "</dd></div><div><dt>Failed</dt><dd class=\"t-failed\">");
	num(&b, jget_int(st, "failed"));
	buf_adds(&b, "</dd></div><div><dt>No destination</dt><dd class=\"t-nodest\">");
	num(&b, jget_int(st, "no-destinations"));
	buf_adds(&b, "</dd></div><div><dt>Destinations suppressed</dt><dd class=\"t-suppressed\">");
	num(&b, (int64_t)json_object_array_length(json_object_object_get(sent, "suppressed")));
	buf_adds(&b, "</dd></div></dl>\n");

	/* reports per day */
	arr = json_object_new_array();
	days = jget_obj(sent, "days");
	if (days) {
		json_object_object_foreach(days, k, v) {
			struct json_object *e = json_object_new_object();

			json_object_object_add(e, "k", json_object_new_string(k));
			json_object_object_add(e, "v", json_object_get(v));
			json_object_array_add(arr, e);
		}
	}
	json_object_array_sort(arr, by_key);
	chart = json_object_new_object();
	{
		struct json_object *cd = json_object_new_array();

		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *e = json_object_array_get_idx(arr, i), *v = jget_obj(e, "v");
			struct json_object *x = json_object_new_object();

			json_object_object_add(x, "day", json_object_new_string(jget_text(e, "k")));
			for (const char *const *k = (const char *const[]){ "delivered", "pending",
				"failed", "no-destinations", NULL }; *k; k++)
				json_object_object_add(x, *k, json_object_new_int64(jget_int(v, *k)));
			json_object_array_add(cd, x);
		}
		json_object_object_add(chart, "days", cd);
	}
	json_block(&b, "sent-data", chart);
	json_object_put(chart);
	buf_adds(&b, "<section aria-labelledby=\"h-sdays\">\n<h2 id=\"h-sdays\">Reports per day</h2>\n"
		 "<div class=\"chart\"><canvas id=\"chart-sent\" role=\"img\" aria-label=\"Chart of "
		 "reports per day by delivery state; the table below has the same numbers\">"
		 "</canvas></div>\n<details><summary>Reports per day as a table</summary>\n"
		 "<table id=\"sent-days\"><thead><tr><th scope=\"col\">Day</th>"
		 "<th scope=\"col\" class=\"n\">Reports</th><th scope=\"col\" class=\"n\">Delivered</th>"
		 "<th scope=\"col\" class=\"n\">Pending</th><th scope=\"col\" class=\"n\">Failed</th>"
		 "<th scope=\"col\" class=\"n\">No destination</th>"
		 "<th scope=\"col\" class=\"n\">Sessions reported</th>"
		 "<th scope=\"col\" class=\"n\">of which failed</th></tr></thead>\n<tbody>\n");
	for (size_t i = json_object_array_length(arr); i-- > 0;) {
		struct json_object *e = json_object_array_get_idx(arr, i), *v = jget_obj(e, "v");

		buf_adds(&b, "<tr><th scope=\"row\">");
		T(&b, jget_text(e, "k"));
		buf_adds(&b, "</th>");
		for (const char *const *k = (const char *const[]){ "reports", "delivered", "pending",
			"failed", "no-destinations", NULL }; *k; k++) {
			buf_adds(&b, "<td class=\"n\">");
			num(&b, jget_int(v, *k));
			buf_adds(&b, "</td>");
		}
		buf_adds(&b, "<td class=\"n\">");
		num(&b, rstats_add(jget_int(v, "successes"), jget_int(v, "failures")));
		buf_adds(&b, "</td><td class=\"n\">");
		num(&b, jget_int(v, "failures"));
		buf_adds(&b, "</td></tr>\n");
	}
	buf_adds(&b, "</tbody></table>\n</details>\n</section>\n");
	json_object_put(arr);

	/* per destination */
	buf_adds(&b, "<section aria-labelledby=\"h-dests\">\n<h2 id=\"h-dests\">Delivery state per "
		 "destination</h2>\n<p>Destinations: ");
	num(&b, jget_int(ds, "delivered"));
	buf_adds(&b, " delivered, ");
	num(&b, jget_int(ds, "pending"));
	buf_adds(&b, " pending, ");
	num(&b, jget_int(ds, "given-up"));
	buf_adds(&b, " given up, ");
	num(&b, jget_int(ds, "suppressed"));
	buf_adds(&b, " suppressed, ");
	num(&b, jget_int(ds, "rejected"));
	buf_adds(&b, " rejected (one per report and rua).</p>\n");
	dests = jget_obj(sent, "destinations");
	arr = json_object_new_array();
	if (dests) {
		json_object_object_foreach(dests, k, v) {
			struct json_object *e = json_object_new_object();

			json_object_object_add(e, "k", json_object_new_string(k));
			json_object_object_add(e, "n", json_object_new_int64(jget_int(v, "attempts_failed")));
			json_object_object_add(e, "v", json_object_get(v));
			json_object_array_add(arr, e);
		}
	}
	json_object_array_sort(arr, by_n);
	if (json_object_array_length(arr) == 0) {
		buf_adds(&b, "<p class=\"none\">No destinations.</p>\n");
	} else {
		buf_adds(&b, "<form class=\"filters\" role=\"search\" aria-label=\"Filter destinations\">"
			 "<label for=\"f-dest\">Destination contains</label> "
			 "<input type=\"search\" id=\"f-dest\" autocomplete=\"off\">\n"
			 "<label><input type=\"checkbox\" id=\"f-dfailing\"> only destinations with "
			 "failures</label>\n<output id=\"d-count\" for=\"f-dest f-dfailing\" "
			 "aria-live=\"polite\"></output></form>\n"
			 "<table id=\"destinations\"><thead><tr><th scope=\"col\">Destination</th>"
			 "<th scope=\"col\" class=\"n\">Reports</th><th scope=\"col\" class=\"n\">Delivered</th>"
			 "<th scope=\"col\" class=\"n\">Pending</th><th scope=\"col\" class=\"n\">Given up</th>"
			 "<th scope=\"col\" class=\"n\">Suppressed</th><th scope=\"col\" class=\"n\">Rejected</th>"
			 "<th scope=\"col\" class=\"n\">Failed attempts</th><th scope=\"col\">Last delivery</th>"
			 "<th scope=\"col\">Last error</th></tr></thead>\n<tbody>\n");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *e = json_object_array_get_idx(arr, i), *v = jget_obj(e, "v");
			int64_t bad = rstats_add(rstats_add(rstats_add(jget_int(v, "given-up"), jget_int(v, "suppressed")),
							    jget_int(v, "rejected")), jget_int(v, "attempts_failed"));
			char t[32];

			buf_adds(&b, "<tr data-dest=\"");
			T(&b, jget_text(e, "k"));
			buf_printf(&b, "\" data-failed=\"%lld\"%s><th scope=\"row\" class=\"key\">",
				   (long long)bad, bad ? " class=\"fail\"" : "");
			T(&b, jget_text(e, "k"));
			buf_adds(&b, "</th>");
			for (const char *const *k = (const char *const[]){ "reports", "delivered",
				"pending", "given-up", "suppressed", "rejected", "attempts_failed", NULL }; *k; k++) {
				buf_adds(&b, "<td class=\"n\">");
				num(&b, jget_int(v, *k));
				buf_adds(&b, "</td>");
			}
			time_of(jget_int(v, "last_delivered_at"), t, sizeof(t));
			buf_printf(&b, "<td>%s</td><td>", t);
			T(&b, jget_text(v, "last_error"));
			buf_adds(&b, "</td></tr>\n");
		}
		buf_adds(&b, "</tbody></table>\n");
	}
	buf_adds(&b, "</section>\n");
	json_object_put(arr);

	/* failures by destination and reason */
	arr = json_object_object_get(sent, "failures");
	buf_adds(&b, "<section aria-labelledby=\"h-fails\">\n<h2 id=\"h-fails\">Failed attempts by "
		 "destination and reason</h2>\n");
	if (arr == NULL || json_object_array_length(arr) == 0) {
		buf_adds(&b, "<p class=\"none\">No failed attempts.</p>\n");
	} else {
		buf_adds(&b, "<table id=\"failures\"><thead><tr><th scope=\"col\">Destination</th>"
			 "<th scope=\"col\">Reason</th><th scope=\"col\" class=\"n\">Attempts</th>"
			 "<th scope=\"col\">Last</th></tr></thead>\n<tbody>\n");
		for (size_t i = 0; i < json_object_array_length(arr) && i < 1000; i++) {
			struct json_object *e = json_object_array_get_idx(arr, i);
			char t[32];

			buf_adds(&b, "<tr><td>");
			T(&b, jget_text(e, "uri"));
			buf_adds(&b, "</td><td>");
			T(&b, jget_text(e, "reason"));
			buf_adds(&b, "</td><td class=\"n\">");
			num(&b, jget_int(e, "count"));
			time_of(jget_int(e, "last"), t, sizeof(t));
			buf_printf(&b, "</td><td>%s</td></tr>\n", t);
		}
		buf_adds(&b, "</tbody></table>\n");
	}
	buf_adds(&b, "</section>\n");

	/* suppressions */
	arr = json_object_object_get(sent, "suppressed");
	buf_adds(&b, "<section aria-labelledby=\"h-supp\">\n<h2 id=\"h-supp\">Suppressed "
		 "destinations</h2>\n<p>A destination that refused a report permanently is skipped "
		 "until the time shown (<code>suppress_period</code>); <code>tlsrptctl spool retry "
		 "ID</code> lifts it.</p>\n");
	if (arr == NULL || json_object_array_length(arr) == 0) {
		buf_adds(&b, "<p class=\"none\">None.</p>\n");
	} else {
		buf_adds(&b, "<table id=\"suppressed\"><thead><tr><th scope=\"col\">Destination</th>"
			 "<th scope=\"col\">Until</th><th scope=\"col\">Reason</th></tr></thead>\n<tbody>\n");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *e = json_object_array_get_idx(arr, i);
			char t[32];

			buf_adds(&b, "<tr><td>");
			T(&b, jget_text(e, "uri"));
			time_of(jget_int(e, "until"), t, sizeof(t));
			buf_printf(&b, "</td><td>%s</td><td>", t);
			T(&b, jget_text(e, "reason"));
			buf_adds(&b, "</td></tr>\n");
		}
		buf_adds(&b, "</tbody></table>\n");
	}
	buf_adds(&b, "</section>\n");
	page_end(&b);
	rc = put_buf(s, s->dirfd, "sent.html", &b, err, errsz);
	buf_free(&b);
	return rc;
}
