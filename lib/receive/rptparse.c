/*
 * rptparse - tolerant parsing of received TLS reports. See rptparse.h.
 *
 * SECURITY: all input is untrusted. Decompression (unpack.c) is bounded by
 * the caller's limit. The JSON is never turned into a tree: jscan.c
 * tokenizes it with bounded depth, a bounded number of values and strings
 * decoded into one fixed buffer, and only what the model keeps is copied,
 * within the RPT_MAX_* budgets; so memory stays proportional to what a
 * real report needs, whatever the input. Every member's JSON type is
 * checked before use; counts are range-checked; text must be UTF-8.
 */
#include "rptparse.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jscan.h"
#include "unpack.h"

/* ---------- helpers ---------- */

/* Length of the valid UTF-8 prefix; == len when all is valid (RFC 3629). */
static size_t utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return i;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else
			return i;
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return i;
		i += n + 1;
	}
	return i;
}

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

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int rpt_parse_time(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p;

	while (*s == ' ')
		s++;
	if (strlen(s) < 19 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &se))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60 ||
	    y < 1970)
		return -1;
	p = s + 19;
	if (*p == '.') {		/* fractions: ignored */
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		p += 6;
	}
	while (*p == ' ')
		p++;
	if (*p)
		return -1;
	if (se == 60)
		se = 59;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
	       sign * (oh * 3600 + om * 60);
	return 0;
}

void rpt_format_time(int64_t t, char *out, size_t outsz)
{
	int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400, secs = t - days * 86400;
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;

	y += m <= 2;
	snprintf(out, outsz, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", (long long)y,
		 (long long)m, (long long)d, (long long)(secs / 3600),
		 (long long)(secs / 60 % 60), (long long)(secs % 60));
}

static bool looks_like_domain(const char *s)
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

void rpt_domain_from_filename(const char *name, char *out, size_t outsz)
{
	const char *base = strrchr(name, '/'), *a, *b;
	size_t n;

	out[0] = '\0';
	base = base ? base + 1 : name;
	a = strchr(base, '!');
	b = a ? strchr(a + 1, '!') : NULL;
	if (b == NULL || (n = (size_t)(b - a - 1)) == 0 || n >= outsz)
		return;
	memcpy(out, a + 1, n);
	out[n] = '\0';
	if (!looks_like_domain(out))
		out[0] = '\0';
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

		if (t && looks_like_domain(t + 1) && strlen(t + 1) < fbsz) {
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

int rpt_parse_json(const char *json, size_t len, const char *fallback_domain,
		   struct rpt_report **out, char *err, size_t errsz)
{
	struct pctx c;
	size_t good;
	char *strbuf;
	int rc;

	*out = NULL;
	if (len >= 3 && memcmp(json, "\xef\xbb\xbf", 3) == 0) {	/* BOM */
		json += 3;
		len -= 3;
	}
	good = utf8_valid((const unsigned char *)json, len);
	if (good != len) {
		snprintf(err, errsz, "report is not valid UTF-8 (bad byte 0x%02x at offset %zu)",
			 (unsigned char)json[good], good);
		return -1;
	}
	memset(&c, 0, sizeof(c));
	c.err = err;
	c.errsz = errsz;
	c.r = calloc(1, sizeof(*c.r));
	strbuf = malloc(RPT_SCAN_STRING);
	if (fallback_domain && fallback_domain[0])
		c.fallback = strdup(fallback_domain);
	if (c.r == NULL || strbuf == NULL || (fallback_domain && fallback_domain[0] && !c.fallback)) {
		free(c.r);
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
	if (rc != 0) {
		rpt_free(c.r);
		return -1;
	}
	*out = c.r;
	return 0;
}

int rpt_parse(const unsigned char *data, size_t len, size_t max_out,
	      const char *fallback_domain, struct rpt_report **out,
	      char *err, size_t errsz)
{
	unsigned char *json;
	size_t jlen;
	int rc;

	*out = NULL;
	if (unpack_format_of(data, len) == UNPACK_JSON) {	/* parsed where it is, no copy */
		if (len > max_out) {
			snprintf(err, errsz, "report larger than the limit of %zu bytes", max_out);
			return -1;
		}
		return rpt_parse_json((const char *)data, len, fallback_domain, out, err, errsz);
	}
	if (unpack_report(data, len, max_out, &json, &jlen, NULL, err, errsz) != 0)
		return -1;
	rc = rpt_parse_json((const char *)json, jlen, fallback_domain, out, err, errsz);
	free(json);
	return rc;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void rpt_free(struct rpt_report *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->npolicies; i++) {
		struct rpt_policy *p = &r->policies[i];

		free(p->policy_type);
		free(p->policy_domain);
		free_strv(p->policy_string, p->nstrings);
		free_strv(p->mx_host, p->nmx);
		for (size_t k = 0; k < p->ndetails; k++) {
			struct rpt_detail *d = &p->details[k];

			free(d->result_type);
			free(d->sending_mta_ip);
			free(d->receiving_mx_hostname);
			free(d->receiving_mx_helo);
			free(d->receiving_ip);
			free(d->additional_information);
			free(d->failure_reason_code);
		}
		free(p->details);
	}
	free(r->policies);
	for (size_t i = 0; i < r->nwarn; i++)
		free(r->warnings[i]);
	free(r->organization_name);
	free(r->contact_info);
	free(r->report_id);
	free(r);
}

/* ---------- normalized JSON ---------- */

static int add_str(struct json_object *o, const char *key, const char *val)
{
	struct json_object *v;

	if (val == NULL)
		return 0;
	v = json_object_new_string(val);
	if (v == NULL)
		return -1;
	return json_object_object_add(o, key, v);
}

static int add_int(struct json_object *o, const char *key, int64_t val)
{
	struct json_object *v = json_object_new_int64(val);

	if (v == NULL)
		return -1;
	return json_object_object_add(o, key, v);
}

static int add_strv(struct json_object *o, const char *key, char **v, size_t n)
{
	struct json_object *a;

	if (n == 0)
		return 0;
	a = json_object_new_array();
	if (a == NULL || json_object_object_add(o, key, a) != 0) {
		json_object_put(a);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (json_object_array_add(a, json_object_new_string(v[i])) != 0)
			return -1;
	return 0;
}

struct json_object *rpt_to_json(const struct rpt_report *r)
{
	struct json_object *root = json_object_new_object(), *dr = json_object_new_object();
	struct json_object *pols = json_object_new_array();
	char t[32];
	int bad = 0;

	if (root == NULL || dr == NULL || pols == NULL) {
		json_object_put(root);
		json_object_put(dr);
		json_object_put(pols);
		return NULL;
	}
	bad |= add_str(root, "organization-name", r->organization_name);
	rpt_format_time(r->start, t, sizeof(t));
	bad |= add_str(dr, "start-datetime", t);
	rpt_format_time(r->end, t, sizeof(t));
	bad |= add_str(dr, "end-datetime", t);
	bad |= json_object_object_add(root, "date-range", dr);
	bad |= add_str(root, "contact-info", r->contact_info);
	bad |= add_str(root, "report-id", r->report_id);
	bad |= json_object_object_add(root, "policies", pols);
	for (size_t i = 0; i < r->npolicies && !bad; i++) {
		const struct rpt_policy *p = &r->policies[i];
		struct json_object *e = json_object_new_object(), *po = json_object_new_object();
		struct json_object *su = json_object_new_object(), *fd = NULL;

		if (e == NULL || po == NULL || su == NULL || json_object_array_add(pols, e) != 0) {
			json_object_put(e);
			json_object_put(po);
			json_object_put(su);
			bad = 1;
			break;
		}
		bad |= json_object_object_add(e, "policy", po);
		bad |= json_object_object_add(e, "summary", su);
		bad |= add_str(po, "policy-type", p->policy_type);
		bad |= add_strv(po, "policy-string", p->policy_string, p->nstrings);
		bad |= add_str(po, "policy-domain", p->policy_domain);
		bad |= add_strv(po, "mx-host", p->mx_host, p->nmx);
		bad |= add_int(su, "total-successful-session-count", p->success);
		bad |= add_int(su, "total-failure-session-count", p->failure);
		if (p->ndetails) {
			fd = json_object_new_array();
			if (fd == NULL || json_object_object_add(e, "failure-details", fd) != 0) {
				json_object_put(fd);
				bad = 1;
				break;
			}
		}
		for (size_t k = 0; k < p->ndetails && !bad; k++) {
			const struct rpt_detail *d = &p->details[k];
			struct json_object *o = json_object_new_object();

			if (o == NULL || json_object_array_add(fd, o) != 0) {
				json_object_put(o);
				bad = 1;
				break;
			}
			bad |= add_str(o, "result-type", d->result_type);
			bad |= add_str(o, "sending-mta-ip", d->sending_mta_ip);
			bad |= add_str(o, "receiving-mx-hostname", d->receiving_mx_hostname);
			bad |= add_str(o, "receiving-mx-helo", d->receiving_mx_helo);
			bad |= add_str(o, "receiving-ip", d->receiving_ip);
			bad |= add_int(o, "failed-session-count", d->failed_session_count);
			bad |= add_str(o, "additional-information", d->additional_information);
			bad |= add_str(o, "failure-reason-code", d->failure_reason_code);
		}
	}
	if (bad) {
		json_object_put(root);
		return NULL;
	}
	return root;
}
