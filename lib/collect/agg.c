/*
 * agg - one day's results merged from day files, grouped like RFC 8460
 * reports. See agg.h.
 *
 * Merging is by sorting: every policy of every view is copied in, then
 * sorted by its full key, and equal neighbours are added up; the same for
 * failure details within a policy. Sorting also gives the stable output
 * order that makes a re-run produce the identical report.
 *
 * SECURITY: views come from validated day files, but their strings are
 * still remote-controlled bytes: they are made valid UTF-8 here, once, so
 * that every JSON written from them is I-JSON.
 */
#include "agg.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct agg {
	struct agg_policy *pol;
	char **pol_d, **pol_pr;		/* TLSRPT domain and record per policy */
	size_t npol, cap;
	struct agg_domain *dom;
	size_t ndom;
	bool finished;
};

/* a + b, at most AGG_MAX_COUNT; *sat set when it had to stop there. */
static uint64_t sat_add2(uint64_t a, uint64_t b, bool *sat)
{
	if (a > AGG_MAX_COUNT || b > AGG_MAX_COUNT - a) {
		*sat = true;
		return AGG_MAX_COUNT;
	}
	return a + b;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	bool sat = false;

	return sat_add2(a, b, &sat);
}

/* Copy bytes as valid UTF-8 (invalid sequences become U+FFFD). */
static char *dup_utf8(const char *p, size_t len)
{
	char *o = malloc(3 * len + 1), *q = o;
	const unsigned char *s = (const unsigned char *)p, *end = s + len;

	if (o == NULL)
		return NULL;
	while (s < end) {
		size_t n = 0;
		unsigned cp = 0;

		if (*s < 0x80) {
			*q++ = (char)*s++;
			continue;
		}
		if (*s >= 0xc2 && *s <= 0xdf) { n = 2; cp = *s & 0x1f; }
		else if (*s >= 0xe0 && *s <= 0xef) { n = 3; cp = *s & 0x0f; }
		else if (*s >= 0xf0 && *s <= 0xf4) { n = 4; cp = *s & 0x07; }
		if (n && (size_t)(end - s) >= n) {
			size_t i;

			for (i = 1; i < n && (s[i] & 0xc0) == 0x80; i++)
				cp = cp << 6 | (s[i] & 0x3f);
			if (i == n && !(n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) &&
			    !(n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
				memcpy(q, s, n);
				q += n;
				s += n;
				continue;
			}
		}
		memcpy(q, "\xef\xbf\xbd", 3);
		q += 3;
		s++;
	}
	*q = '\0';
	return o;
}

char *agg_utf8(const char *p, size_t len)
{
	return dup_utf8(p, len);
}

static char *dup_opt(struct result_str v, bool *oom)
{
	char *r;

	if (v.p == NULL)
		return NULL;
	r = dup_utf8(v.p, v.len);
	if (r == NULL)
		*oom = true;
	return r;
}

struct agg *agg_new(void)
{
	return calloc(1, sizeof(struct agg));
}

static void free_detail_fields(struct agg_detail *d)
{
	free(d->sending_ip);
	free(d->mx_hostname);
	free(d->mx_helo);
	free(d->receiving_ip);
	free(d->additional);
	free(d->reason);
}

void agg_policy_free(struct agg_policy *p)
{
	for (size_t i = 0; i < p->nstrings; i++)
		free(p->strings[i]);
	for (size_t i = 0; i < p->nmx; i++)
		free(p->mx[i]);
	free(p->strings);
	free(p->mx);
	free(p->domain);
	for (size_t i = 0; i < p->ndetails; i++)
		free_detail_fields(&p->details[i]);
	free(p->details);
}

void agg_free(struct agg *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->npol; i++) {
		agg_policy_free(&a->pol[i]);
		free(a->pol_d[i]);
		free(a->pol_pr[i]);
	}
	free(a->pol);
	free(a->pol_d);
	free(a->pol_pr);
	free(a->dom);
	free(a);
}

static char **dup_list(const struct result_str *v, size_t n, bool *oom)
{
	char **out;

	if (n == 0)
		return NULL;
	out = calloc(n, sizeof(*out));
	if (out == NULL) {
		*oom = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if ((out[i] = dup_utf8(v[i].p ? v[i].p : "", v[i].len)) == NULL)
			*oom = true;
	return out;
}

/* A domain name as the store keeps it: lower case, no trailing dot. */
static char *dup_domain(struct result_str v, bool *oom)
{
	char *r = dup_opt(v, oom);
	size_t n;

	if (r == NULL)
		return NULL;
	for (char *c = r; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
	n = strlen(r);
	if (n > 1 && r[n - 1] == '.')
		r[n - 1] = '\0';
	return r;
}

/* One policy as a day file holds it: copied, made valid UTF-8 and
 * normalized (result.h) the one way every source goes through. */
static int add_policy_view(struct agg *a, const struct store_policy_view *pv)
{
	struct agg_policy *p;
	bool oom = false;

	if (a->npol == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct agg_policy *np = realloc(a->pol, cap * sizeof(*np));
		char **nd, **npr;

		if (np == NULL)
			return -1;
		a->pol = np;
		nd = realloc(a->pol_d, cap * sizeof(*nd));
		if (nd == NULL)
			return -1;
		a->pol_d = nd;
		npr = realloc(a->pol_pr, cap * sizeof(*npr));
		if (npr == NULL)
			return -1;
		a->pol_pr = npr;
		a->cap = cap;
	}
	struct result_policy rp = {
		.type = pv->type, .strings = pv->strings, .nstrings = pv->nstrings,
		.mx = pv->mx, .nmx = pv->nmx,
	};

	/* a day file from elsewhere was not normalized by our store_add:
	 * key on what the report prints (result.h), so equal rows merge */
	result_policy_canon(&rp, &rp);
	p = &a->pol[a->npol];
	memset(p, 0, sizeof(*p));
	a->pol_d[a->npol] = dup_domain(pv->d, &oom);
	a->pol_pr[a->npol] = dup_opt(pv->pr, &oom);
	a->npol++;
	p->type = rp.type;
	p->domain = dup_domain(pv->domain, &oom);
	p->strings = dup_list(rp.strings, rp.nstrings, &oom);
	p->nstrings = p->strings ? rp.nstrings : 0;
	p->mx = dup_list(rp.mx, rp.nmx, &oom);
	p->nmx = p->mx ? rp.nmx : 0;
	p->successes = sat_add2(0, pv->successes, &p->saturated);
	p->failures = sat_add2(0, pv->failures, &p->saturated);
	if (pv->ndetails) {
		p->details = calloc(pv->ndetails, sizeof(*p->details));
		if (p->details == NULL)
			return -1;
		p->ndetails = pv->ndetails;
		for (size_t j = 0; j < pv->ndetails; j++) {
			const struct store_detail_view *dv = &pv->details[j];
			struct agg_detail *d = &p->details[j];
			struct result_detail rd = {
				.code = dv->code, .sending_ip = dv->sending_ip,
				.mx_hostname = dv->mx_hostname, .mx_helo = dv->mx_helo,
				.receiving_ip = dv->receiving_ip, .additional = dv->additional,
				.reason = dv->reason,
			}, c;
			struct result_canon_buf cb;

			result_detail_canon(&rd, &c, &cb);
			d->code = c.code;
			d->sending_ip = dup_opt(c.sending_ip, &oom);
			d->mx_hostname = dup_opt(c.mx_hostname, &oom);
			d->mx_helo = dup_opt(c.mx_helo, &oom);
			d->receiving_ip = dup_opt(c.receiving_ip, &oom);
			d->additional = dup_opt(c.additional, &oom);
			d->reason = dup_opt(c.reason, &oom);
			d->count = sat_add2(0, dv->count, &p->saturated);
		}
	}
	if (oom || !a->pol_d[a->npol - 1] || !a->pol_pr[a->npol - 1] || !p->domain)
		return -1;
	return 0;
}

int agg_add_view(struct agg *a, const struct store_view *v)
{
	size_t n = store_view_npolicies(v);

	for (size_t i = 0; i < n; i++)
		if (add_policy_view(a, store_view_policy(v, i)) != 0)
			return -1;
	return 0;
}

static struct result_str cstr(const char *s)
{
	struct result_str r = { s, s ? strlen(s) : 0 };

	return r;
}

int agg_add_policy(struct agg *a, const char *d, const char *pr, const struct agg_policy *src)
{
	struct store_policy_view pv;
	struct result_str *strs = NULL, *mx = NULL;
	struct store_detail_view *det = NULL;
	int rc = -1;

	if (d == NULL || pr == NULL || src->domain == NULL)
		return -1;
	memset(&pv, 0, sizeof(pv));
	if ((src->nstrings && (strs = calloc(src->nstrings, sizeof(*strs))) == NULL) ||
	    (src->nmx && (mx = calloc(src->nmx, sizeof(*mx))) == NULL) ||
	    (src->ndetails && (det = calloc(src->ndetails, sizeof(*det))) == NULL))
		goto out;
	pv.d = cstr(d);
	pv.pr = cstr(pr);
	pv.type = src->type;
	pv.domain = cstr(src->domain);
	for (size_t i = 0; i < src->nstrings; i++)
		strs[i] = cstr(src->strings[i] ? src->strings[i] : "");
	pv.strings = strs;
	pv.nstrings = src->nstrings;
	for (size_t i = 0; i < src->nmx; i++)
		mx[i] = cstr(src->mx[i] ? src->mx[i] : "");
	pv.mx = mx;
	pv.nmx = src->nmx;
	pv.successes = src->successes;
	pv.failures = src->failures;
	for (size_t j = 0; j < src->ndetails; j++) {
		const struct agg_detail *x = &src->details[j];

		det[j].code = x->code;
		det[j].sending_ip = cstr(x->sending_ip);
		det[j].mx_hostname = cstr(x->mx_hostname);
		det[j].mx_helo = cstr(x->mx_helo);
		det[j].receiving_ip = cstr(x->receiving_ip);
		det[j].additional = cstr(x->additional);
		det[j].reason = cstr(x->reason);
		det[j].count = x->count;
	}
	pv.details = det;
	pv.ndetails = src->ndetails;
	rc = add_policy_view(a, &pv);
out:
	free(strs);
	free(mx);
	free(det);
	return rc;
}

static int cmp_opt(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int cmp_list(char **a, size_t na, char **b, size_t nb)
{
	for (size_t i = 0; i < na && i < nb; i++) {
		int c = strcmp(a[i], b[i]);

		if (c)
			return c;
	}
	return (na > nb) - (na < nb);
}

static const struct agg *sort_ctx;

/* Full key order of policy index x vs y: domain, record, policy key. */
static int cmp_pol_idx(const void *x, const void *y)
{
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	const struct agg_policy *a = &sort_ctx->pol[i], *b = &sort_ctx->pol[j];
	int c;

	if ((c = strcmp(sort_ctx->pol_d[i], sort_ctx->pol_d[j])) ||
	    (c = strcmp(sort_ctx->pol_pr[i], sort_ctx->pol_pr[j])))
		return c;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if ((c = strcmp(a->domain, b->domain)) ||
	    (c = cmp_list(a->strings, a->nstrings, b->strings, b->nstrings)) ||
	    (c = cmp_list(a->mx, a->nmx, b->mx, b->nmx)))
		return c;
	return 0;
}

static int cmp_detail_key(const struct agg_detail *a, const struct agg_detail *b)
{
	int c;

	if (a->code != b->code)
		return a->code < b->code ? -1 : 1;
	if ((c = cmp_opt(a->sending_ip, b->sending_ip)) ||
	    (c = cmp_opt(a->mx_hostname, b->mx_hostname)) ||
	    (c = cmp_opt(a->mx_helo, b->mx_helo)) ||
	    (c = cmp_opt(a->receiving_ip, b->receiving_ip)) ||
	    (c = cmp_opt(a->additional, b->additional)) ||
	    (c = cmp_opt(a->reason, b->reason)))
		return c;
	return 0;
}

static int cmp_detail(const void *x, const void *y)
{
	return cmp_detail_key(x, y);
}

/* Report order: most sessions first, then by key (stable, total). */
static int cmp_detail_count(const void *x, const void *y)
{
	const struct agg_detail *a = x, *b = y;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return cmp_detail_key(a, b);
}

/* Add 'src' (same key) into 'dst' and free src's own memory. */
static void merge_policy(struct agg_policy *dst, struct agg_policy *src)
{
	struct agg_detail *d;

	dst->successes = sat_add2(dst->successes, src->successes, &dst->saturated);
	dst->failures = sat_add2(dst->failures, src->failures, &dst->saturated);
	dst->saturated |= src->saturated;
	if (src->ndetails) {
		d = realloc(dst->details, (dst->ndetails + src->ndetails) * sizeof(*d));
		if (d == NULL) {	/* keep the counts; drop src's detail list */
			for (size_t i = 0; i < src->ndetails; i++)
				free_detail_fields(&src->details[i]);
			free(src->details);
		} else {
			memcpy(d + dst->ndetails, src->details, src->ndetails * sizeof(*d));
			dst->details = d;
			dst->ndetails += src->ndetails;
			free(src->details);
		}
		src->details = NULL;
		src->ndetails = 0;
	}
	agg_policy_free(src);
	memset(src, 0, sizeof(*src));
}

static void finish_details(struct agg_policy *p)
{
	size_t out = 0;

	if (p->ndetails == 0)
		return;
	qsort(p->details, p->ndetails, sizeof(*p->details), cmp_detail);
	for (size_t i = 0; i < p->ndetails; i++) {
		if (out > 0 && cmp_detail_key(&p->details[out - 1], &p->details[i]) == 0) {
			p->details[out - 1].count = sat_add2(p->details[out - 1].count,
							     p->details[i].count, &p->saturated);
			free_detail_fields(&p->details[i]);
		} else {
			p->details[out++] = p->details[i];
		}
	}
	p->ndetails = out;
	qsort(p->details, p->ndetails, sizeof(*p->details), cmp_detail_count);
}

void agg_finish(struct agg *a)
{
	size_t *idx, out = 0;
	struct agg_policy *pol;
	char **pd, **ppr;

	if (a->finished || a->npol == 0) {
		a->finished = true;
		return;
	}
	idx = malloc(a->npol * sizeof(*idx));
	pol = malloc(a->npol * sizeof(*pol));
	pd = malloc(a->npol * sizeof(*pd));
	ppr = malloc(a->npol * sizeof(*ppr));
	a->dom = calloc(a->npol, sizeof(*a->dom));
	if (!idx || !pol || !pd || !ppr || !a->dom) {
		free(idx);
		free(pol);
		free(pd);
		free(ppr);
		free(a->dom);
		a->dom = NULL;
		return;		/* agg_ndomains() then reports nothing */
	}
	for (size_t i = 0; i < a->npol; i++)
		idx[i] = i;
	sort_ctx = a;
	qsort(idx, a->npol, sizeof(*idx), cmp_pol_idx);
	for (size_t k = 0; k < a->npol; k++) {
		size_t i = idx[k];

		if (out > 0 && cmp_pol_idx(&idx[k - 1], &idx[k]) == 0) {
			/* idx[k-1] was merged into pol[out-1]; its d/pr strings equal */
			merge_policy(&pol[out - 1], &a->pol[i]);
			free(a->pol_d[i]);
			free(a->pol_pr[i]);
			/* keep comparing against a live copy */
			a->pol[i] = pol[out - 1];
			a->pol_d[i] = pd[out - 1];
			a->pol_pr[i] = ppr[out - 1];
			continue;
		}
		pol[out] = a->pol[i];
		pd[out] = a->pol_d[i];
		ppr[out] = a->pol_pr[i];
		out++;
	}
	sort_ctx = NULL;
	free(idx);
	free(a->pol);
	free(a->pol_d);
	free(a->pol_pr);
	a->pol = pol;
	a->pol_d = pd;
	a->pol_pr = ppr;
	a->npol = a->cap = out;
	for (size_t i = 0; i < a->npol; i++) {
		struct agg_domain *d;

		finish_details(&a->pol[i]);
		if (a->ndom == 0 || strcmp(a->dom[a->ndom - 1].domain, a->pol_d[i]) ||
		    strcmp(a->dom[a->ndom - 1].record, a->pol_pr[i])) {
			d = &a->dom[a->ndom++];
			d->domain = a->pol_d[i];
			d->record = a->pol_pr[i];
			d->policies = &a->pol[i];
		}
		d = &a->dom[a->ndom - 1];
		d->npolicies++;
		d->successes = sat_add2(d->successes, a->pol[i].successes, &d->saturated);
		d->failures = sat_add2(d->failures, a->pol[i].failures, &d->saturated);
		d->saturated |= a->pol[i].saturated;
	}
	a->finished = true;
}

size_t agg_ndomains(const struct agg *a)
{
	return a->dom ? a->ndom : 0;
}

const struct agg_domain *agg_domain(const struct agg *a, size_t i)
{
	return i < agg_ndomains(a) ? &a->dom[i] : NULL;
}

static void put_str(struct json_object *o, const char *key, const char *val)
{
	if (val)
		json_object_object_add(o, key, json_object_new_string(val));
}

static struct json_object *str_array(char **v, size_t n)
{
	struct json_object *arr = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, json_object_new_string(v[i]));
	return arr;
}

static struct json_object *detail_json(const struct agg_detail *d)
{
	struct json_object *o = json_object_new_object();
	const char *name = result_code_name(d->code);
	char reason[64];

	json_object_object_add(o, "result-type",
			       json_object_new_string(name ? name : "validation-failure"));
	put_str(o, "sending-mta-ip", d->sending_ip);
	put_str(o, "receiving-mx-hostname", d->mx_hostname);
	put_str(o, "receiving-mx-helo", d->mx_helo);
	put_str(o, "receiving-ip", d->receiving_ip);
	json_object_object_add(o, "failed-session-count", json_object_new_int64((int64_t)d->count));
	if (d->additional &&
	    result_is_uri((struct result_str){ d->additional, strlen(d->additional) }))
		put_str(o, "additional-information", d->additional);
	if (name == NULL) {
		snprintf(reason, sizeof(reason), "unknown-result-code-%d", d->code);
		put_str(o, "failure-reason-code", reason);
	} else {
		put_str(o, "failure-reason-code", d->reason);
	}
	return o;
}

struct json_object *agg_policies_json(const struct agg_domain *dom, size_t max_details)
{
	struct json_object *arr = json_object_new_array();

	for (size_t i = 0; i < dom->npolicies; i++) {
		const struct agg_policy *p = &dom->policies[i];
		struct json_object *entry = json_object_new_object();
		struct json_object *pol = json_object_new_object();
		struct json_object *sum = json_object_new_object();
		const char *tname = result_policy_type_name(p->type);

		json_object_object_add(pol, "policy-type",
				       json_object_new_string(tname ? tname : "no-policy-found"));
		if (p->nstrings && p->type != POLICY_NONE)
			json_object_object_add(pol, "policy-string", str_array(p->strings, p->nstrings));
		json_object_object_add(pol, "policy-domain", json_object_new_string(p->domain));
		if (p->nmx && p->type == POLICY_STS)
			json_object_object_add(pol, "mx-host", str_array(p->mx, p->nmx));
		json_object_object_add(entry, "policy", pol);
		json_object_object_add(sum, "total-successful-session-count",
				       json_object_new_int64((int64_t)p->successes));
		json_object_object_add(sum, "total-failure-session-count",
				       json_object_new_int64((int64_t)p->failures));
		json_object_object_add(entry, "summary", sum);
		if (p->ndetails) {
			struct json_object *fd = json_object_new_array();
			size_t keep = p->ndetails <= max_details ? p->ndetails :
				      (max_details > 1 ? max_details - 1 : 1);

			for (size_t j = 0; j < keep; j++)
				json_object_array_add(fd, detail_json(&p->details[j]));
			if (keep < p->ndetails) {
				/* the rest, summed per result type so totals stay exact;
				 * into a kept row that prints the same, if there is one */
				for (size_t j = keep; j < p->ndetails; j++) {
					struct agg_detail m = { .code = p->details[j].code };
					bool done = false;
					size_t same = keep;

					for (size_t k = keep; k < j; k++)
						if (p->details[k].code == m.code)
							done = true;
					if (done)
						continue;
					for (size_t k = j; k < p->ndetails; k++)
						if (p->details[k].code == m.code)
							m.count = sat_add(m.count, p->details[k].count);
					m.reason = (char *)"details-merged";
					for (size_t k = 0; k < keep; k++)
						if (cmp_detail_key(&p->details[k], &m) == 0)
							same = k;
					if (same < keep) {
						struct json_object *row = json_object_array_get_idx(fd, same);

						json_object_object_add(row, "failed-session-count",
							json_object_new_int64((int64_t)sat_add(
								p->details[same].count, m.count)));
					} else {
						json_object_array_add(fd, detail_json(&m));
					}
				}
			}
			json_object_object_add(entry, "failure-details", fd);
		}
		json_object_array_add(arr, entry);
	}
	return arr;
}
