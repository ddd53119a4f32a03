/*
 * rstats - received reports added up per class and policy domain.
 * See rstats.h.
 *
 * SECURITY: records come from the store, whose reports were parsed by
 * rptparse (bounded, counts <= 2^53); they are still read defensively here:
 * every member's type is checked, negative counts count as 0 and sums
 * saturate.
 */
#include "rstats.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "jget.h"
#include "received.h"
#include "rptparse.h"

struct ctx {
	const struct rstats_opts *o;
	struct json_object *root;
	int64_t first, last;		/* period days (inclusive) */
	int64_t prev_first;		/* previous period's first day */
	int64_t data_first, data_last;	/* days = 0: seen in the data */
	bool have_data;
	bool failed;
	char err[256];
};

int64_t rstats_add(int64_t a, int64_t b)
{
	if (a < 0)
		a = 0;
	if (b < 0)
		b = 0;
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

int64_t rstats_day(int64_t t)
{
	return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

void rstats_format_day(int64_t day, char *out, size_t outsz)
{
	char t[32];

	rpt_format_time(day * 86400, t, sizeof(t));
	snprintf(out, outsz, "%.10s", t);
}

/* A count of the store's: a negative one reads as 0. */
static int64_t jint(struct json_object *o, const char *k)
{
	int64_t n = jget_int(o, k);

	return n > 0 ? n : 0;
}

static void bump(struct json_object *map, const char *key, int64_t n)
{
	if (key == NULL || *key == '\0')
		return;
	json_object_object_add(map, key, json_object_new_int64(rstats_add(jint(map, key), n)));
}

static void set_max(struct json_object *o, const char *k, int64_t v)
{
	if (!json_object_object_get_ex(o, k, NULL) || jint(o, k) < v)
		json_object_object_add(o, k, json_object_new_int64(v));
}

static void set_max_str(struct json_object *o, const char *k, const char *v)
{
	const char *cur = jget_str(o, k);

	if (cur == NULL || strcmp(cur, v) < 0)
		json_object_object_add(o, k, json_object_new_string(v));
}

static struct json_object *domain_of(struct ctx *c, const char *cls, const char *dom)
{
	struct json_object *m = jget_map(c->root, cls), *d;

	if (json_object_object_get_ex(m, dom, &d))
		return d;
	d = json_object_new_object();
	json_object_object_add(d, "domain", json_object_new_string(dom));
	for (const char *const *k = (const char *const[]){ "successful", "failed", "reports",
		"prev_successful", "prev_failed", "prev_reports", NULL }; *k; k++)
		json_object_object_add(d, *k, json_object_new_int64(0));
	json_object_object_add(d, "last_end", json_object_new_int64(0));
	json_object_object_add(m, dom, d);
	return d;
}

/* "type\x1fdomain\x1fstring\x1e...\x1fmx..." identifies a policy. */
static void policy_key(char *out, size_t outsz, const char *type, const char *dom,
		       struct json_object *strs, struct json_object *mx)
{
	size_t o = 0;
	int n = snprintf(out, outsz, "%s\x1f%s\x1f", type, dom);

	o = n > 0 && (size_t)n < outsz ? (size_t)n : outsz - 1;
	for (int pass = 0; pass < 2; pass++) {
		struct json_object *a = pass ? mx : strs;

		for (size_t i = 0; a && i < json_object_array_length(a) && o + 1 < outsz; i++) {
			const char *s = json_object_get_string(json_object_array_get_idx(a, i));

			n = snprintf(out + o, outsz - o, "%s\x1e", s ? s : "");
			o = n > 0 && (size_t)n < outsz - o ? o + (size_t)n : outsz - 1;
		}
		if (o + 1 < outsz)
			out[o++] = '\x1f';
		out[o] = '\0';
	}
}

static struct json_object *str_array(struct json_object *a)
{
	struct json_object *r = json_object_new_array();

	for (size_t i = 0; a && json_object_is_type(a, json_type_array) &&
	     i < json_object_array_length(a); i++) {
		struct json_object *v = json_object_array_get_idx(a, i);

		if (json_object_is_type(v, json_type_string))
			json_object_array_add(r, json_object_new_string(json_object_get_string(v)));
	}
	return r;
}

/* One policy entry of a report, in the period (cur) or the previous one. */
static void add_policy(struct json_object *d, struct json_object *pol, bool cur,
		       const char *dayname, int64_t *ok_out, int64_t *failed_out)
{
	struct json_object *p = NULL, *su = NULL, *fd = NULL;
	int64_t ok, failed;

	json_object_object_get_ex(pol, "policy", &p);
	json_object_object_get_ex(pol, "summary", &su);
	ok = jint(su, "total-successful-session-count");
	failed = jint(su, "total-failure-session-count");
	*ok_out = rstats_add(*ok_out, ok);
	*failed_out = rstats_add(*failed_out, failed);
	if (!cur) {
		bump(d, "prev_successful", ok);
		bump(d, "prev_failed", failed);
		return;
	}
	bump(d, "successful", ok);
	bump(d, "failed", failed);
	{
		struct json_object *day = jget_map(jget_map(d, "days"), dayname);

		bump(day, "successful", ok);
		bump(day, "failed", failed);
	}
	if (failed > 0)
		set_max_str(d, "last_failure_day", dayname);
	{
		const char *type = jget_str(p, "policy-type"), *pd = jget_str(p, "policy-domain");
		struct json_object *strs = NULL, *mx = NULL, *pe, *pols;
		char key[4096];

		if (p) {
			json_object_object_get_ex(p, "policy-string", &strs);
			json_object_object_get_ex(p, "mx-host", &mx);
		}
		if (strs && !json_object_is_type(strs, json_type_array))
			strs = NULL;
		if (mx && !json_object_is_type(mx, json_type_array))
			mx = NULL;
		type = type && *type ? type : "(none)";
		policy_key(key, sizeof(key), type, pd ? pd : "", strs, mx);
		pols = jget_map(d, "policies");
		if (!json_object_object_get_ex(pols, key, &pe)) {
			pe = json_object_new_object();
			json_object_object_add(pe, "type", json_object_new_string(type));
			json_object_object_add(pe, "domain", json_object_new_string(pd ? pd : ""));
			json_object_object_add(pe, "strings", str_array(strs));
			json_object_object_add(pe, "mx", str_array(mx));
			json_object_object_add(pols, key, pe);
		}
		bump(pe, "successful", ok);
		bump(pe, "failed", failed);
		bump(pe, "reports", 1);
	}
	if (json_object_object_get_ex(pol, "failure-details", &fd) &&
	    json_object_is_type(fd, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(fd); i++) {
			struct json_object *x = json_object_array_get_idx(fd, i);
			int64_t n = jint(x, "failed-session-count");
			const char *rt = jget_str(x, "result-type");

			bump(jget_map(d, "result_types"), rt && *rt ? rt : "(none)", n);
			bump(jget_map(d, "failing_mx"), jget_str(x, "receiving-mx-hostname"), n);
			bump(jget_map(d, "receiving_ips"), jget_str(x, "receiving-ip"), n);
			bump(jget_map(d, "sending_ips"), jget_str(x, "sending-mta-ip"), n);
			bump(jget_map(d, "failure_reasons"), jget_str(x, "failure-reason-code"), n);
		}
	}
}

static int report_cb(const char *cls, const char *id, struct json_object *rec, void *arg)
{
	struct ctx *c = arg;
	struct json_object *rep, *pols, *dr = NULL;
	const char *sstart, *send, *org, *signer, *submitter;
	int64_t start, end = 0, day;
	bool cur, prev, any = false;
	char dayname[16], lower[RPT_MAX_STRING + 1];
	struct json_object *seen;

	if (strcmp(cls, "rejected") == 0) {
		json_object_object_add(c->root, "rejected",
				       json_object_new_int64(jint(c->root, "rejected") + 1));
		return 0;
	}
	if (!json_object_object_get_ex(rec, "report", &rep) ||
	    !json_object_object_get_ex(rep, "policies", &pols) ||
	    !json_object_is_type(pols, json_type_array))
		return 0;
	json_object_object_get_ex(rep, "date-range", &dr);
	sstart = jget_str(dr, "start-datetime");
	send = jget_str(dr, "end-datetime");
	if (sstart == NULL || rpt_parse_time(sstart, &start) != 0)
		return 0;
	if (send == NULL || rpt_parse_time(send, &end) != 0)
		end = start;
	day = rstats_day(start);
	if (c->o->days > 0) {
		cur = day >= c->first && day <= c->last;
		prev = day >= c->prev_first && day < c->first;
	} else {
		cur = true;
		prev = false;
		if (!c->have_data || day < c->data_first)
			c->data_first = day;
		if (!c->have_data || day > c->data_last)
			c->data_last = day;
		c->have_data = true;
	}
	rstats_format_day(day, dayname, sizeof(dayname));
	seen = json_object_new_object();	/* the report's domains so far */
	if (seen == NULL) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		c->failed = true;
		return 1;
	}
	org = jget_str(rep, "organization-name");
	if (org == NULL || *org == '\0')
		org = "(unnamed)";
	signer = jget_str(rec, "dkim_domain");
	submitter = jget_str(rec, "submitter");
	for (size_t i = 0; i < json_object_array_length(pols); i++) {
		struct json_object *pol = json_object_array_get_idx(pols, i), *p = NULL, *d, *o;
		const char *pd;
		int64_t ok = 0, failed = 0;
		bool first_of_domain;
		size_t k;

		json_object_object_get_ex(pol, "policy", &p);
		pd = jget_str(p, "policy-domain");
		for (k = 0; pd && pd[k] && k < sizeof(lower) - 1; k++)
			lower[k] = (char)tolower((unsigned char)pd[k]);
		lower[k] = '\0';
		if (c->o->domain && strcasecmp(c->o->domain, lower) != 0)
			continue;
		d = domain_of(c, cls, lower);
		if (d == NULL)
			continue;
		first_of_domain = !json_object_object_get_ex(seen, lower, NULL);
		if (first_of_domain)
			json_object_object_add(seen, lower, NULL);
		set_max(d, "last_end", end);
		o = jget_map(jget_map(d, "organizations"), org);
		set_max(o, "last_end", end);
		if (first_of_domain) {
			struct json_object *hd = jget_map(o, "history");

			json_object_object_add(hd, dayname, json_object_new_boolean(1));
		}
		if (!cur && !prev)
			continue;
		add_policy(d, pol, cur, dayname, &ok, &failed);
		if (!cur) {
			if (first_of_domain)
				bump(d, "prev_reports", 1);
			continue;
		}
		bump(o, "successful", ok);
		bump(o, "failed", failed);
		any = true;
		if (first_of_domain) {
			bump(d, "reports", 1);
			bump(jget_map(jget_map(d, "days"), dayname), "reports", 1);
			bump(o, "reports", 1);
			if (signer && *signer)
				bump(jget_map(o, "signers"), signer, 1);
		}
		if (c->o->want_reports) {
			struct json_object *list = jget_list(d, "report_list"), *r = NULL;
			size_t n = json_object_array_length(list);

			if (!first_of_domain && n > 0) {
				r = json_object_array_get_idx(list, n - 1);
			} else {
				r = json_object_new_object();
				json_object_object_add(r, "id", json_object_new_string(id));
				json_object_object_add(r, "day", json_object_new_string(dayname));
				json_object_object_add(r, "organization", json_object_new_string(org));
				json_object_object_add(r, "submitter",
						       json_object_new_string(submitter ? submitter : ""));
				json_object_object_add(r, "signer",
						       json_object_new_string(signer ? signer : ""));
				json_object_object_add(r, "dkim", json_object_new_string(
							       jget_text(rec, "dkim")));
				json_object_object_add(r, "report_id", json_object_new_string(
							       jget_text(rep, "report-id")));
				json_object_object_add(r, "start", json_object_new_int64(start));
				json_object_object_add(r, "end", json_object_new_int64(end));
				json_object_object_add(r, "successful", json_object_new_int64(0));
				json_object_object_add(r, "failed", json_object_new_int64(0));
				json_object_array_add(list, r);
			}
			bump(r, "successful", ok);
			bump(r, "failed", failed);
		}
	}
	json_object_put(seen);
	if (any && c->o->report_cb && c->o->report_cb(cls, id, rec, c->o->arg) != 0) {
		snprintf(c->err, sizeof(c->err), "writing report %s failed", id);
		c->failed = true;
		return 1;
	}
	return 0;
}

/* Replace each organization's "history" day set by its size. */
static void finish_domain(struct json_object *d)
{
	struct json_object *orgs;

	if (json_object_object_get_ex(d, "organizations", &orgs)) {
		json_object_object_foreach(orgs, k, o) {
			struct json_object *h;
			int64_t n = 0;

			(void)k;
			if (json_object_object_get_ex(o, "history", &h))
				n = json_object_object_length(h);
			json_object_object_del(o, "history");
			json_object_object_add(o, "history_days", json_object_new_int64(n));
			for (const char *const *f = (const char *const[]){ "successful", "failed",
				"reports", NULL }; *f; f++)
				if (!json_object_object_get_ex(o, *f, NULL))
					json_object_object_add(o, *f, json_object_new_int64(0));
		}
	}
}

static int newest_first(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;
	int64_t sx = jint(x, "start"), sy = jint(y, "start");
	const char *ix = jget_str(x, "id"), *iy = jget_str(y, "id");

	if (sx != sy)
		return sx > sy ? -1 : 1;
	return strcmp(ix ? ix : "", iy ? iy : "");
}

struct json_object *rstats_build(struct received_store *s, const struct rstats_opts *o,
				 char *err, size_t errsz)
{
	struct ctx c;
	int64_t since = INT64_MIN;
	char a[16], b[16];

	memset(&c, 0, sizeof(c));
	c.o = o;
	c.root = json_object_new_object();
	if (c.root == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	json_object_object_add(c.root, "rejected", json_object_new_int64(0));
	json_object_object_add(c.root, "verified", json_object_new_object());
	json_object_object_add(c.root, "unverified", json_object_new_object());
	c.last = rstats_day(o->now);
	if (o->days > 0) {
		int lb = o->lookback_days > 2 * o->days ? o->lookback_days : 2 * o->days;

		c.first = c.last - o->days + 1;
		c.prev_first = c.first - o->days;
		since = (c.last - lb + 1) * 86400;
	}
	received_foreach(s, since, report_cb, &c);
	if (c.failed) {
		snprintf(err, errsz, "%s", c.err);
		json_object_put(c.root);
		return NULL;
	}
	for (int i = 0; i < 2; i++) {
		struct json_object *m = json_object_object_get(c.root, i ? "unverified" : "verified");

		json_object_object_foreach(m, k, d) {
			struct json_object *list;

			(void)k;
			finish_domain(d);
			if (json_object_object_get_ex(d, "report_list", &list))
				json_object_array_sort(list, newest_first);
		}
	}
	if (o->days > 0) {
		rstats_format_day(c.first, a, sizeof(a));
		rstats_format_day(c.last, b, sizeof(b));
		json_object_object_add(c.root, "first", json_object_new_string(a));
		json_object_object_add(c.root, "last", json_object_new_string(b));
		rstats_format_day(c.prev_first, a, sizeof(a));
		rstats_format_day(c.first - 1, b, sizeof(b));
		json_object_object_add(c.root, "prev_first", json_object_new_string(a));
		json_object_object_add(c.root, "prev_last", json_object_new_string(b));
	} else {
		a[0] = b[0] = '\0';
		if (c.have_data) {
			rstats_format_day(c.data_first, a, sizeof(a));
			rstats_format_day(c.data_last, b, sizeof(b));
		}
		json_object_object_add(c.root, "first", json_object_new_string(a));
		json_object_object_add(c.root, "last", json_object_new_string(b));
	}
	return c.root;
}
