/*
 * rptread - the streaming reader of received reports: JSON tokens (jscan.h)
 * straight into the model of rptparse.h. See rptread.h.
 *
 * SECURITY: the input is untrusted. It is never built into a tree: only
 * what the model keeps is copied, within the RPT_MAX_* budgets of
 * rptparse.h, so memory stays proportional to what a real report needs,
 * whatever the input; time is linear. Every member's JSON type is checked
 * before use and named in the error otherwise; counts are range-checked.
 */
#include "rptread.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jscan.h"

/* ---------- helpers ---------- */

static void warn(struct rpt_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void warn(struct rpt_report *r, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (r->nwarn >= RPT_MAX_WARN)
		return;
	if (r->nwarn == RPT_MAX_WARN - 1) {
		r->warnings[r->nwarn] = strdup("more warnings left out");
		if (r->warnings[r->nwarn])
			r->nwarn++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	r->warnings[r->nwarn] = strdup(line);
	if (r->warnings[r->nwarn])
		r->nwarn++;
}

/* A NUL-terminated copy of 'n' bytes ("\u0000" in the JSON becomes '?'). */
static char *copy_str(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
		for (size_t i = 0; i < n; i++)
			if (d[i] == '\0')
				d[i] = '?';
		/* a cut must not split a UTF-8 character: drop an incomplete
		 * last one (its lead byte and the continuation bytes after it) */
		if (n > 0) {
			size_t k = n - 1;
			unsigned char lead;
			size_t want;

			while (k > 0 && n - k < 4 && ((unsigned char)d[k] & 0xc0) == 0x80)
				k--;
			lead = (unsigned char)d[k];
			want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
			if (n - k < want)
				d[k] = '\0';
		}
	}
	return d;
}

bool rptread_domain_like(const char *s)
{
	bool dot = false;

	if (*s == '\0' || *s == '.' || *s == '-')
		return false;
	for (; *s; s++) {
		if (*s == '.')
			dot = true;
		else if (!isalnum((unsigned char)*s) && *s != '-')
			return false;
	}
	return dot;
}

/* ---------- the streaming parser ---------- */

/*
 * The parse state: the scanner, the report being built and the budgets.
 * Nothing but the model grows, and the model is bounded by the RPT_MAX_*
 * limits (rptparse.h), whatever the input.
 */
struct pctx {
	struct jscan js;
	struct rpt_report *r;
	char *err;
	size_t errsz;
	size_t ndetails, nlist;		/* over the whole report */
	size_t text;			/* bytes of strings kept */
	bool have_policies, have_range[2];
	char *fallback;			/* from the caller (normalized), or NULL */
};

static int perr(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct pctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->errsz, fmt, ap);
	va_end(ap);
	return -1;
}

static int nomem(struct pctx *c)
{
	return perr(c, "out of memory");
}

/* The next token; a scanner error becomes the parse error. */
static enum jscan_tok next(struct pctx *c)
{
	enum jscan_tok t = jscan_next(&c->js);

	if (t == JSCAN_ERROR)
		perr(c, "report is not valid JSON: %s", c->js.err);
	return t;
}

static int skip(struct pctx *c, enum jscan_tok t)
{
	if (jscan_skip(&c->js, t) != 0)
		return perr(c, "report is not valid JSON: %s", c->js.err);
	return 0;
}

/* Copy the current string, cut at RPT_MAX_STRING, within the text budget. */
static char *take_str(struct pctx *c, const char *what)
{
	size_t n = c->js.str_len;
	char *d;

	if (c->js.str_cut || n > RPT_MAX_STRING)
		n = n > RPT_MAX_STRING ? RPT_MAX_STRING : n;
	if (c->text + n + 1 > RPT_MAX_TEXT) {
		perr(c, "the report's strings are larger than %d bytes in all", RPT_MAX_TEXT);
		return NULL;
	}
	if (c->js.str_full > RPT_MAX_STRING)
		warn(c->r, "%s longer than %d bytes: cut", what, RPT_MAX_STRING);
	d = copy_str(c->js.str, n);
	if (d == NULL) {
		nomem(c);
		return NULL;
	}
	c->text += strlen(d) + 1;
	return d;
}

/*
 * A string member's value: *dst (freed first) gets a copy, or NULL when the
 * value is null or "". Another type is noted and ignored. 0 or -1.
 */
static int opt_str(struct pctx *c, const char *what, char **dst)
{
	enum jscan_tok t = next(c);

	free(*dst);
	*dst = NULL;
	if (t == JSCAN_ERROR)
		return -1;
	if (t == JSCAN_STRING) {
		if (c->js.str_len == 0)
			return 0;
		*dst = take_str(c, what);
		return *dst ? 0 : -1;
	}
	if (t != JSCAN_NULL)
		warn(c->r, "%s is not a string (%s): ignored", what, jscan_tok_name(t));
	return skip(c, t);
}

/* "" where a member is required but absent or unusable. */
static int fill_empty(struct pctx *c, char **dst)
{
	if (*dst == NULL && (*dst = strdup("")) == NULL)
		return nomem(c);
	return 0;
}

/* An integer written as a string ("2"): its value, or -1 if it is not one. */
static int64_t digits_value(const char *s, size_t n)
{
	int64_t v = 0;

	if (n == 0 || n > 16)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * A session count: a JSON integer 0..2^53. Accepted and noted when it is
 * unambiguous: written as a string of digits ("2"), or as a number with a
 * fraction or exponent that is a whole number (2.0, 1e3). null: 0 with a
 * warning. Anything else is an error that says what it is.
 */
static int get_count(struct pctx *c, const char *where, const char *key, int64_t *out)
{
	enum jscan_tok t = next(c);
	char shown[48];

	*out = 0;
	switch (t) {
	case JSCAN_ERROR:
		return -1;
	case JSCAN_NULL:
		warn(c->r, "%s: %s is null, taken as 0", where, key);
		return 0;
	case JSCAN_STRING: {
		int64_t v = digits_value(c->js.str, c->js.str_len);

		snprintf(shown, sizeof(shown), "%.32s%s", c->js.str, c->js.str_len > 32 ? "..." : "");
		if (v < 0)
			return perr(c, "%s: %s is a string (\"%s\"), not an integer", where, key, shown);
		warn(c->r, "%s: %s written as a string (\"%s\"), taken as %lld", where, key, shown,
		     (long long)v);
		*out = v;
		return 0;
	}
	case JSCAN_NUMBER:
		snprintf(shown, sizeof(shown), "%.*s%s", (int)(c->js.num_len > 32 ? 32 : c->js.num_len),
			 c->js.num_text, c->js.num_len > 32 ? "..." : "");
		if (c->js.num_text[0] == '-' && !(c->js.num_is_int && c->js.num_int == 0))
			return perr(c, "%s: %s is negative (%s)", where, key, shown);
		if (c->js.num_is_int) {
			if (!c->js.num_range || c->js.num_int > RPT_MAX_COUNT)
				return perr(c, "%s: %s is absurdly large (above 2^53)", where, key);
			*out = c->js.num_int;
			return 0;
		}
		{
			char tmp[64];
			double d;

			if (c->js.num_len >= sizeof(tmp))
				return perr(c, "%s: %s is not an integer (%s)", where, key, shown);
			memcpy(tmp, c->js.num_text, c->js.num_len);
			tmp[c->js.num_len] = '\0';
			d = strtod(tmp, NULL);
			if (!(d >= 0 && d <= (double)RPT_MAX_COUNT) || d != (double)(int64_t)d)
				return perr(c, "%s: %s is not an integer (%s)", where, key, shown);
			warn(c->r, "%s: %s written as %s, taken as %lld", where, key, shown,
			     (long long)(int64_t)d);
			*out = (int64_t)d;
			return 0;
		}
	default:
		perr(c, "%s: %s is %s, not an integer", where, key, jscan_tok_name(t));
		return -1;
	}
}

/* Compare the current key. */
static bool key_is(const struct pctx *c, const char *name)
{
	size_t n = strlen(name);

	return c->js.str_len == n && memcmp(c->js.str, name, n) == 0;
}

/* Lower-case ASCII letters and drop one trailing dot (a domain name). */
static bool domain_normalize(char *d)
{
	bool changed = false;
	size_t n;

	for (char *p = d; *p; p++)
		if (*p >= 'A' && *p <= 'Z') {
			*p = (char)(*p + 32);
			changed = true;
		}
	n = strlen(d);
	if (n > 1 && d[n - 1] == '.') {
		d[n - 1] = '\0';
		changed = true;
	}
	return changed;
}

struct slist {
	char **v;
	size_t n, cap;
};

static void slist_free(struct slist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int slist_add(struct pctx *c, struct slist *l, char *s, const char *what)
{
	if (l->n >= RPT_MAX_STRINGS) {
		free(s);
		return perr(c, "%s has more than %d entries", what, RPT_MAX_STRINGS);
	}
	if (++c->nlist > RPT_MAX_LIST_ENTRIES) {
		free(s);
		return perr(c, "more than %d policy-string and mx-host entries in the report",
			    RPT_MAX_LIST_ENTRIES);
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL) {
			free(s);
			return nomem(c);
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = s;
	return 0;
}

/* The entries of a JSON array held in one string (Microsoft's TLSA list). */
static int decode_inner(struct pctx *c, const char *text, size_t len, struct slist *out)
{
	struct jscan in;
	char sb[RPT_MAX_STRING + 1];
	enum jscan_tok t;

	jscan_init(&in, text, len, 4, RPT_MAX_STRINGS + 1, sb, sizeof(sb));
	if (jscan_next(&in) != JSCAN_ARRAY)
		return 1;
	while ((t = jscan_next(&in)) != JSCAN_ARRAY_END) {
		char *s;

		if (t == JSCAN_ERROR)
			return 1;
		if (t != JSCAN_STRING) {
			if (jscan_skip(&in, t) != 0)
				return 1;
			continue;
		}
		if (c->text + in.str_len + 1 > RPT_MAX_TEXT)
			return perr(c, "the report's strings are larger than %d bytes in all",
				    RPT_MAX_TEXT);
		if ((s = copy_str(in.str, in.str_len)) == NULL)
			return nomem(c);
		c->text += in.str_len + 1;
		if (slist_add(c, out, s, "policy-string") != 0)
			return -1;
	}
	return jscan_next(&in) == JSCAN_EOF ? 0 : 1;
}

/*
 * policy-string or mx-host: an array of strings, or one string (erratum
 * 6241). mx-host entries lose an "mx:" prefix; "" entries of mx-host are
 * dropped. One policy-string element that holds a JSON array is decoded.
 */
static int string_list(struct pctx *c, const char *what, bool mx, char ***outv, size_t *outn)
{
	struct slist l = { 0 }, inner = { 0 };
	enum jscan_tok t = next(c);
	bool single = t == JSCAN_STRING, inner_ok = false;
	size_t seen = 0;

	for (size_t i = 0; i < *outn; i++)	/* given twice: the last counts */
		free((*outv)[i]);
	free(*outv);
	*outv = NULL;
	*outn = 0;
	if (t == JSCAN_ERROR)
		return -1;
	if (t == JSCAN_NULL)
		return 0;
	if (t != JSCAN_ARRAY && t != JSCAN_STRING) {
		warn(c->r, "%s is neither a string nor an array: ignored", what);
		return skip(c, t);
	}
	for (;;) {
		const char *s;
		size_t len;
		char *d;

		if (!single) {
			t = next(c);
			if (t == JSCAN_ARRAY_END)
				break;
			if (t == JSCAN_ERROR)
				goto fail;
			if (t != JSCAN_STRING) {
				warn(c->r, "%s: a non-string entry ignored", what);
				if (skip(c, t) != 0)
					goto fail;
				continue;
			}
		}
		seen++;
		s = c->js.str;
		len = c->js.str_len;
		if (!mx && seen == 1) {
			size_t k = 0;

			while (k < len && s[k] == ' ')
				k++;
			if (k < len && s[k] == '[') {
				int rc = decode_inner(c, s + k, len - k, &inner);

				if (rc < 0)
					goto fail;
				inner_ok = rc == 0;
			}
		}
		if (mx && len >= 3 && strncasecmp(s, "mx:", 3) == 0) {
			s += 3;
			len -= 3;
			while (len && *s == ' ') {
				s++;
				len--;
			}
			warn(c->r, "mx-host entry with an \"mx:\" prefix");
		}
		if (len > 0 || !mx) {
			if (c->js.str_full > RPT_MAX_STRING)
				warn(c->r, "%s longer than %d bytes: cut", what, RPT_MAX_STRING);
			if (len > RPT_MAX_STRING)
				len = RPT_MAX_STRING;
			if (c->text + len + 1 > RPT_MAX_TEXT) {
				perr(c, "the report's strings are larger than %d bytes in all", RPT_MAX_TEXT);
				goto fail;
			}
			if ((d = copy_str(s, len)) == NULL) {
				nomem(c);
				goto fail;
			}
			c->text += len + 1;
			if (slist_add(c, &l, d, what) != 0)
				goto fail;
		}
		if (single)
			break;
	}
	if (inner_ok && seen == 1) {
		slist_free(&l);
		l = inner;
		memset(&inner, 0, sizeof(inner));
		warn(c->r, "%s: one string holding a JSON array, decoded", what);
	}
	slist_free(&inner);
	/* policy-string "" entries are dropped too, but only after decoding */
	if (!mx) {
		size_t o = 0;

		for (size_t i = 0; i < l.n; i++) {
			if (l.v[i][0] == '\0')
				free(l.v[i]);
			else
				l.v[o++] = l.v[i];
		}
		l.n = o;
	}
	*outv = l.v;
	*outn = l.n;
	return 0;
fail:
	slist_free(&l);
	slist_free(&inner);
	return -1;
}

static int parse_detail(struct pctx *c, size_t pi, size_t di, struct rpt_detail *d)
{
	char where[96], *misspelled = NULL, *placeholder = NULL;
	enum jscan_tok t;
	bool have_count = false;
	int rc = -1;

	snprintf(where, sizeof(where), "policies[%zu].failure-details[%zu]", pi, di);
	while ((t = next(c)) == JSCAN_KEY) {
		static const char *const names[] = {
			"result-type", "sending-mta-ip", "receiving-mx-hostname",
			"receiving-mx-host-name", "receiving-mx-helo", "receiving-ip",
			"additional-information", "additional-info-uri", "failure-reason-code",
		};
		char **dsts[] = {
			&d->result_type, &d->sending_mta_ip, &d->receiving_mx_hostname, &misspelled,
			&d->receiving_mx_helo, &d->receiving_ip, &d->additional_information,
			&placeholder, &d->failure_reason_code,
		};
		size_t k;

		if (key_is(c, "failed-session-count")) {
			if (get_count(c, where, "failed-session-count", &d->failed_session_count) != 0)
				goto out;
			have_count = true;
			continue;
		}
		for (k = 0; k < sizeof(names) / sizeof(names[0]) && !key_is(c, names[k]); k++)
			;
		if (k == sizeof(names) / sizeof(names[0])) {
			if (skip(c, next(c)) != 0)
				goto out;
			continue;
		}
		if (opt_str(c, names[k], dsts[k]) != 0)
			goto out;
	}
	if (t != JSCAN_OBJECT_END)
		goto out;
	if (d->receiving_mx_hostname == NULL && misspelled) {
		d->receiving_mx_hostname = misspelled;
		misspelled = NULL;
		warn(c->r, "%s: misspelled key receiving-mx-host-name", where);
	}
	if (d->additional_information == NULL && placeholder) {
		d->additional_information = placeholder;
		placeholder = NULL;
		warn(c->r, "%s: key additional-info-uri (RFC placeholder name)", where);
	}
	if (d->result_type == NULL || d->result_type[0] == '\0')
		warn(c->r, "%s: result-type missing", where);
	if (!have_count)
		warn(c->r, "%s: failed-session-count missing, taken as 0", where);
	rc = fill_empty(c, &d->result_type);
out:
	free(misspelled);
	free(placeholder);
	return rc;
}

static int parse_details(struct pctx *c, size_t pi, struct rpt_policy *p)
{
	enum jscan_tok t;
	size_t cap = 0;

	while ((t = next(c)) != JSCAN_ARRAY_END) {
		struct rpt_detail *d;

		if (t == JSCAN_ERROR)
			return -1;
		if (t != JSCAN_OBJECT)
			return perr(c, "policies[%zu].failure-details[%zu] is not an object", pi,
				    p->ndetails);
		if (++c->ndetails > RPT_MAX_DETAILS)
			return perr(c, "more than %d failure-details in the report", RPT_MAX_DETAILS);
		if (p->ndetails == cap) {
			size_t ncap = cap ? cap * 2 : 4;

			d = realloc(p->details, ncap * sizeof(*d));
			if (d == NULL)
				return nomem(c);
			p->details = d;
			cap = ncap;
		}
		d = &p->details[p->ndetails++];
		memset(d, 0, sizeof(*d));
		if (parse_detail(c, pi, p->ndetails - 1, d) != 0)
			return -1;
	}
	return 0;
}

/* The "policy" object of a policy entry. */
static int parse_policy_desc(struct pctx *c, struct rpt_policy *p)
{
	enum jscan_tok t;

	while ((t = next(c)) == JSCAN_KEY) {
		int rc;

		if (key_is(c, "policy-type"))
			rc = opt_str(c, "policy-type", &p->policy_type);
		else if (key_is(c, "policy-domain"))
			rc = opt_str(c, "policy-domain", &p->policy_domain);
		else if (key_is(c, "policy-string"))
			rc = string_list(c, "policy-string", false, &p->policy_string, &p->nstrings);
		else if (key_is(c, "mx-host"))
			rc = string_list(c, "mx-host", true, &p->mx_host, &p->nmx);
		else
			rc = skip(c, next(c));
		if (rc != 0)
			return -1;
	}
	return t == JSCAN_OBJECT_END ? 0 : -1;
}

static int parse_summary(struct pctx *c, const char *where, struct rpt_policy *p, bool have[2])
{
	enum jscan_tok t;

	while ((t = next(c)) == JSCAN_KEY) {
		int rc;

		if (key_is(c, "total-successful-session-count")) {
			rc = get_count(c, where, "total-successful-session-count", &p->success);
			have[0] = true;
		} else if (key_is(c, "total-failure-session-count")) {
			rc = get_count(c, where, "total-failure-session-count", &p->failure);
			have[1] = true;
		} else {
			rc = skip(c, next(c));
		}
		if (rc != 0)
			return -1;
	}
	return t == JSCAN_OBJECT_END ? 0 : -1;
}

static int parse_policy(struct pctx *c, size_t pi, struct rpt_policy *p)
{
	char where[48], sw[64];
	enum jscan_tok t;
	bool have_policy = false, have_summary = false, have_fd = false, have[2] = { false, false };
	int64_t rows = 0;
	bool rows_over = false;

	snprintf(where, sizeof(where), "policies[%zu]", pi);
	snprintf(sw, sizeof(sw), "%s.summary", where);
	while ((t = next(c)) == JSCAN_KEY) {
		int rc;

		if (key_is(c, "policy")) {
			t = next(c);
			if (t == JSCAN_OBJECT && !have_policy) {
				have_policy = true;
				rc = parse_policy_desc(c, p);
			} else {
				rc = skip(c, t);
			}
		} else if (key_is(c, "summary")) {
			t = next(c);
			if (t == JSCAN_OBJECT) {
				have_summary = true;
				rc = parse_summary(c, sw, p, have);
			} else {
				rc = skip(c, t);
			}
		} else if (key_is(c, "failure-details")) {
			t = next(c);
			if (t == JSCAN_ARRAY && have_fd)
				return perr(c, "%s: failure-details given twice", where);
			if (t == JSCAN_ARRAY) {
				have_fd = true;
				rc = parse_details(c, pi, p);
			} else {
				if (t != JSCAN_NULL && t != JSCAN_ERROR)
					warn(c->r, "%s: failure-details is not an array: ignored", where);
				rc = skip(c, t);
			}
		} else {
			rc = skip(c, next(c));
		}
		if (rc != 0)
			return -1;
	}
	if (t != JSCAN_OBJECT_END)
		return -1;
	if (!have_policy)
		warn(c->r, "%s: policy missing", where);
	if (fill_empty(c, &p->policy_type) != 0)
		return -1;
	if (p->policy_domain && domain_normalize(p->policy_domain))
		warn(c->r, "%s: policy-domain in upper case or with a trailing dot, normalized to "
		     "\"%s\"", where, p->policy_domain);
	if (!have_summary) {
		warn(c->r, "%s: summary missing, counts taken as 0", where);
	} else {
		if (!have[0])
			warn(c->r, "%s: total-successful-session-count missing, taken as 0", sw);
		if (!have[1])
			warn(c->r, "%s: total-failure-session-count missing, taken as 0", sw);
	}
	for (size_t i = 0; i < p->ndetails; i++)
		if (__builtin_add_overflow(rows, p->details[i].failed_session_count, &rows))
			rows_over = true;
	if (rows_over)
		warn(c->r, "%s: failure-details sum to more than 2^63, total-failure-session-count "
		     "is %lld", where, (long long)p->failure);
	else if (p->ndetails && rows != p->failure)
		warn(c->r, "%s: failure-details sum to %lld, total-failure-session-count is %lld",
		     where, (long long)rows, (long long)p->failure);
	else if (p->ndetails == 0 && p->failure > 0)
		warn(c->r, "%s: %lld failures without failure-details", where, (long long)p->failure);
	return 0;
}

static int parse_policies(struct pctx *c)
{
	struct rpt_report *r = c->r;
	enum jscan_tok t;
	size_t cap = 0;

	while ((t = next(c)) != JSCAN_ARRAY_END) {
		struct rpt_policy *p;

		if (t == JSCAN_ERROR)
			return -1;
		if (t != JSCAN_OBJECT)
			return perr(c, "policies[%zu] is not an object", r->npolicies);
		if (r->npolicies >= RPT_MAX_POLICIES)
			return perr(c, "more than %d policies", RPT_MAX_POLICIES);
		if (r->npolicies == cap) {
			size_t ncap = cap ? cap * 2 : 4;

			p = realloc(r->policies, ncap * sizeof(*p));
			if (p == NULL)
				return nomem(c);
			r->policies = p;
			cap = ncap;
		}
		p = &r->policies[r->npolicies++];
		memset(p, 0, sizeof(*p));
		if (parse_policy(c, r->npolicies - 1, p) != 0)
			return -1;
	}
	return 0;
}

static int parse_date_range(struct pctx *c)
{
	enum jscan_tok t;

	while ((t = next(c)) == JSCAN_KEY) {
		int i = key_is(c, "start-datetime") ? 0 : key_is(c, "end-datetime") ? 1 : -1;
		const char *key = i ? "end-datetime" : "start-datetime";
		int64_t *tm = i ? &c->r->end : &c->r->start;

		if (i < 0) {
			if (skip(c, next(c)) != 0)
				return -1;
			continue;
		}
		t = next(c);
		if (t == JSCAN_ERROR)
			return -1;
		if (t == JSCAN_NUMBER)
			return perr(c, "date-range.%s is a number (%.*s), not an RFC 3339 date-time string",
				    key, (int)(c->js.num_len > 24 ? 24 : c->js.num_len), c->js.num_text);
		if (t != JSCAN_STRING)
			return perr(c, "date-range.%s is %s, not an RFC 3339 date-time string", key,
				    jscan_tok_name(t));
		if (c->js.str_cut || strlen(c->js.str) != c->js.str_len ||
		    rpt_parse_time(c->js.str, tm) != 0)
			return perr(c, "date-range.%s is not an RFC 3339 date-time (\"%.40s\")", key,
				    c->js.str);
		if (strpbrk(c->js.str + 19, "Zz+-") == NULL)
			warn(c->r, "date-range.%s without time zone, taken as UTC", key);
		c->have_range[i] = true;
	}
	return t == JSCAN_OBJECT_END ? 0 : -1;
}

/* The fallback policy domain: the caller's, else the report-id's tail
 * ("..._example.com" Google/sys4, "...+example.com" Microsoft). */
static void fallback_domain(const struct pctx *c, char *fb, size_t fbsz)
{
	const struct rpt_report *r = c->r;

	fb[0] = '\0';
	if (c->fallback && c->fallback[0]) {
		snprintf(fb, fbsz, "%s", c->fallback);
	} else {
		const char *a = strrchr(r->report_id, '_'), *b = strrchr(r->report_id, '+');
		const char *t = a > b ? a : b;

		if (t && rptread_domain_like(t + 1) && strlen(t + 1) < fbsz) {
			snprintf(fb, fbsz, "%s", t + 1);
			domain_normalize(fb);
		}
	}
}

static int parse_report(struct pctx *c)
{
	struct rpt_report *r = c->r;
	enum jscan_tok t = next(c);
	char fb[256];

	if (t == JSCAN_ERROR)
		return -1;
	if (t != JSCAN_OBJECT)
		return perr(c, "the report is not a JSON object (it is %s)", jscan_tok_name(t));
	while ((t = next(c)) == JSCAN_KEY) {
		int rc;

		if (key_is(c, "organization-name")) {
			rc = opt_str(c, "organization-name", &r->organization_name);
		} else if (key_is(c, "contact-info")) {
			rc = opt_str(c, "contact-info", &r->contact_info);
		} else if (key_is(c, "report-id")) {
			rc = opt_str(c, "report-id", &r->report_id);
		} else if (key_is(c, "date-range")) {
			t = next(c);
			if (t == JSCAN_OBJECT)
				rc = parse_date_range(c);
			else if (t == JSCAN_ERROR)
				rc = -1;
			else
				return perr(c, "date-range is %s, not an object", jscan_tok_name(t));
		} else if (key_is(c, "policies")) {
			t = next(c);
			if (t == JSCAN_ERROR)
				return -1;
			if (t != JSCAN_ARRAY)
				return perr(c, "policies missing or not an array (it is %s)",
					    jscan_tok_name(t));
			if (c->have_policies)
				return perr(c, "policies given twice");
			c->have_policies = true;
			rc = parse_policies(c);
		} else {
			rc = skip(c, next(c));
		}
		if (rc != 0)
			return -1;
	}
	if (t != JSCAN_OBJECT_END || next(c) != JSCAN_EOF)
		return -1;
	if (fill_empty(c, &r->organization_name) != 0 || fill_empty(c, &r->report_id) != 0)
		return -1;
	if (r->organization_name[0] == '\0')
		warn(r, "organization-name missing");
	if (r->report_id[0] == '\0')
		warn(r, "report-id missing");
	for (int i = 0; i < 2; i++)
		if (!c->have_range[i])
			return perr(c, "date-range%s missing", i ? ".end-datetime" :
				    c->have_range[1] ? ".start-datetime" : "");
	if (r->start > r->end)
		warn(r, "date-range: start after end");
	if (!c->have_policies)
		return perr(c, "policies missing or not an array");
	if (r->npolicies == 0)
		warn(r, "policies is empty");
	fallback_domain(c, fb, sizeof(fb));
	for (size_t i = 0; i < r->npolicies; i++) {
		struct rpt_policy *p = &r->policies[i];

		if (p->policy_domain)
			continue;
		if ((p->policy_domain = strdup(fb)) == NULL)
			return nomem(c);
		p->domain_from_fallback = true;
		warn(r, "policies[%zu]: policy-domain missing, used \"%s\"", i, p->policy_domain);
	}
	return 0;
}

int rptread_json(const char *json, size_t len, const char *fallback_domain,
		 struct rpt_report *r, char *err, size_t errsz)
{
	struct pctx c;
	char *strbuf;
	int rc;

	memset(&c, 0, sizeof(c));
	c.err = err;
	c.errsz = errsz;
	c.r = r;
	strbuf = malloc(RPT_SCAN_STRING);
	if (fallback_domain && fallback_domain[0])
		c.fallback = strdup(fallback_domain);
	if (strbuf == NULL || (fallback_domain && fallback_domain[0] && !c.fallback)) {
		free(strbuf);
		free(c.fallback);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (c.fallback)
		domain_normalize(c.fallback);
	err[0] = '\0';
	jscan_init(&c.js, json, len, RPT_JSON_DEPTH, RPT_MAX_VALUES, strbuf, RPT_SCAN_STRING);
	rc = parse_report(&c);
	if (rc != 0 && err[0] == '\0')
		snprintf(err, errsz, "report is not valid JSON: %s",
			 c.js.err[0] ? c.js.err : "unexpected structure");
	free(strbuf);
	free(c.fallback);
	return rc;
}
