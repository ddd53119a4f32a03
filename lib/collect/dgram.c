/*
 * dgram - the bounded parser of libtlsrpt datagrams. See dgram.h.
 *
 * Written by hand because it is the collector's hot path: one pass, no
 * allocation per datagram once the parser's vectors have grown, strings
 * unescaped into one scratch area. It is still a complete JSON parser:
 * unknown members of any type are validated and skipped with an explicit
 * bracket stack (bounded depth, no recursion).
 *
 * SECURITY: every read checks the end pointer first; the scratch area is
 * sized for the worst case expansion (3 output bytes per input byte, for
 * invalid UTF-8 replaced by U+FFFD) before parsing starts.
 */
#include "dgram.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SKIP_DEPTH 64		/* nesting allowed inside skipped values */

/* Indices into the vectors; turned into pointers when parsing is done. */
struct pol_tmp {
	struct result_policy pol;
	size_t str0, nstr, mx0, nmx, det0, ndet;
	bool have_type, have_f, have_t;
	long long t;
};

struct dgram_parser {
	char *scratch;
	size_t scratch_cap, scratch_len;
	struct result_str *strs;
	size_t nstrs, strs_cap;
	struct result_detail *dets;
	size_t ndets, dets_cap;
	struct pol_tmp *pols;
	size_t npols, pols_cap;
	struct result_policy *out;
	size_t out_cap;
	unsigned flags;
	const char *why;
};

struct cur {
	const char *p, *end;
};

struct dgram_parser *dgram_parser_new(void)
{
	return calloc(1, sizeof(struct dgram_parser));
}

void dgram_parser_free(struct dgram_parser *p)
{
	if (p == NULL)
		return;
	free(p->scratch);
	free(p->strs);
	free(p->dets);
	free(p->pols);
	free(p->out);
	free(p);
}

static bool grow(void **v, size_t *cap, size_t need, size_t elem)
{
	size_t n;
	void *q;

	if (need <= *cap)
		return true;
	n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	q = realloc(*v, n * elem);
	if (q == NULL)
		return false;
	*v = q;
	*cap = n;
	return true;
}

static void ws(struct cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static bool eat(struct cur *c, char ch)
{
	ws(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

static int hexval(char h)
{
	if (h >= '0' && h <= '9') return h - '0';
	if (h >= 'a' && h <= 'f') return h - 'a' + 10;
	if (h >= 'A' && h <= 'F') return h - 'A' + 10;
	return -1;
}

static bool hex4(struct cur *c, unsigned *out)
{
	unsigned v = 0;

	if (c->end - c->p < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		int h = hexval(c->p[i]);

		if (h < 0)
			return false;
		v = v << 4 | (unsigned)h;
	}
	c->p += 4;
	*out = v;
	return true;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

#define REPLACEMENT 0xfffd

/* Length of a valid UTF-8 sequence at p (lead byte >= 0x80), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char b = p[0];
	size_t n;
	unsigned cp;

	if (b >= 0xc2 && b <= 0xdf) { n = 2; cp = b & 0x1f; }
	else if (b >= 0xe0 && b <= 0xef) { n = 3; cp = b & 0x0f; }
	else if (b >= 0xf0 && b <= 0xf4) { n = 4; cp = b & 0x07; }
	else return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* Bytes that need no attention inside a string: printable ASCII but '"' and '\\'. */
static const unsigned char plain_byte[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
	R16(0), R16(0),			/* 0x00-0x1f: control, invalid raw */
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0x20-0x2f: '"' */
	R16(1), R16(1),			/* 0x30-0x4f */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,	/* 0x50-0x5f: '\\' */
	R16(1), R16(1),			/* 0x60-0x7f */
	R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0),	/* UTF-8: checked */
#undef R16
};

/*
 * Does the 8-byte word hold any byte that is not plain: '"', '\\', a
 * control byte (< 0x20) or a non-ASCII byte? The zero-byte test
 * (x - 0x01..) & ~x & 0x80.. is exact for "some byte is zero".
 */
static inline bool word_has_special(uint64_t v)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');

	return (((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v) | v) & high;
}

/*
 * Parse a JSON string at c (after optional whitespace) into the scratch
 * area. If 'out' is NULL the string is validated and dropped. Runs of plain
 * bytes are found by table lookup and copied at once (the hot path).
 */
static bool parse_string(struct dgram_parser *ps, struct cur *c, struct result_str *out)
{
	char *o = ps->scratch + ps->scratch_len;
	char *start = o;

	ws(c);
	if (c->p >= c->end || *c->p != '"')
		return false;
	c->p++;
	while (c->p < c->end) {
		unsigned char ch;
		const char *run = c->p;

		while (c->end - run >= 8) {
			uint64_t v;

			memcpy(&v, run, 8);
			if (word_has_special(v))
				break;
			run += 8;
		}
		while (run < c->end && plain_byte[(unsigned char)*run])
			run++;
		if (run > c->p) {
			memcpy(o, c->p, (size_t)(run - c->p));
			o += run - c->p;
			c->p = run;
			if (c->p == c->end)
				break;
		}
		ch = (unsigned char)*c->p;
		if (ch == '"') {
			c->p++;
			if (out) {
				out->p = start;
				out->len = (size_t)(o - start);
				ps->scratch_len += out->len;
			}
			return true;
		}
		if (ch < 0x20)
			return false;	/* raw control character: not JSON */
		if (ch == '\\') {
			unsigned cp;

			if (++c->p >= c->end)
				return false;
			switch (*c->p++) {
			case '"': *o++ = '"'; break;
			case '\\': *o++ = '\\'; break;
			case '/': *o++ = '/'; break;
			case 'b': *o++ = '\b'; break;
			case 'f': *o++ = '\f'; break;
			case 'n': *o++ = '\n'; break;
			case 'r': *o++ = '\r'; break;
			case 't': *o++ = '\t'; break;
			case 'u':
				if (!hex4(c, &cp))
					return false;
				if (cp >= 0xd800 && cp <= 0xdbff) {
					unsigned lo;

					if (c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u') {
						struct cur t = { c->p + 2, c->end };

						if (!hex4(&t, &lo))
							return false;
						if (lo >= 0xdc00 && lo <= 0xdfff) {
							c->p = t.p;
							cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
						} else {
							cp = REPLACEMENT;
							ps->flags |= DGRAM_F_INVALID_UTF8;
						}
					} else {
						cp = REPLACEMENT;
						ps->flags |= DGRAM_F_INVALID_UTF8;
					}
				} else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
					cp = REPLACEMENT;	/* lone surrogate, or NUL */
					ps->flags |= DGRAM_F_INVALID_UTF8;
				}
				o += put_utf8(o, cp);
				break;
			default:
				return false;
			}
			continue;
		}
		if (ch < 0x80) {
			*o++ = (char)ch;
			c->p++;
			continue;
		}
		{
			size_t n = utf8_seq((const unsigned char *)c->p, (const unsigned char *)c->end);

			if (n == 0) {	/* libtlsrpt passes remote bytes raw */
				o += put_utf8(o, REPLACEMENT);
				ps->flags |= DGRAM_F_INVALID_UTF8;
				c->p++;
			} else {
				memcpy(o, c->p, n);
				o += n;
				c->p += n;
			}
		}
	}
	return false;
}

static bool parse_int(struct cur *c, long long *out)
{
	long long v = 0;
	bool neg = false, any = false;

	ws(c);
	if (c->p < c->end && *c->p == '-') {
		neg = true;
		c->p++;
	}
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		if (v > (1LL << 53))
			return false;
		v = v * 10 + (*c->p++ - '0');
		any = true;
	}
	if (!any)
		return false;
	if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E'))
		return false;	/* libtlsrpt sends integers only */
	*out = neg ? -v : v;
	return true;
}

/* Validate and skip any JSON value (no recursion: an explicit stack). */
static bool skip_value(struct dgram_parser *ps, struct cur *c)
{
	char stack[SKIP_DEPTH];
	int depth = 0;

	for (;;) {
		ws(c);
		if (c->p >= c->end)
			return false;
		/* a value */
		switch (*c->p) {
		case '{':
			if (depth == SKIP_DEPTH)
				return false;
			stack[depth++] = '}';
			c->p++;
			if (eat(c, '}')) {
				depth--;
				goto after_value;
			}
			if (!parse_string(ps, c, NULL) || !eat(c, ':'))
				return false;
			continue;
		case '[':
			if (depth == SKIP_DEPTH)
				return false;
			stack[depth++] = ']';
			c->p++;
			if (eat(c, ']')) {
				depth--;
				goto after_value;
			}
			continue;
		case '"':
			if (!parse_string(ps, c, NULL))
				return false;
			break;
		case 't':
			if (c->end - c->p < 4 || memcmp(c->p, "true", 4))
				return false;
			c->p += 4;
			break;
		case 'f':
			if (c->end - c->p < 5 || memcmp(c->p, "false", 5))
				return false;
			c->p += 5;
			break;
		case 'n':
			if (c->end - c->p < 4 || memcmp(c->p, "null", 4))
				return false;
			c->p += 4;
			break;
		default: {
			/* number: -? digits [. digits] [e [+-] digits] */
			const char *s = c->p;

			if (*c->p == '-')
				c->p++;
			while (c->p < c->end && ((*c->p >= '0' && *c->p <= '9') || *c->p == '.' ||
						 *c->p == 'e' || *c->p == 'E' || *c->p == '+' || *c->p == '-'))
				c->p++;
			if (c->p == s || (c->p == s + 1 && *s == '-'))
				return false;
			break;
		}
		}
after_value:
		/* after a value: close brackets or continue the container */
		for (;;) {
			if (depth == 0)
				return true;
			ws(c);
			if (c->p >= c->end)
				return false;
			if (*c->p == stack[depth - 1]) {
				c->p++;
				depth--;
				continue;
			}
			if (*c->p != ',')
				return false;
			c->p++;
			if (stack[depth - 1] == '}') {
				if (!parse_string(ps, c, NULL) || !eat(c, ':'))
					return false;
			}
			break;
		}
	}
}

/*
 * A known member's value could not be read as the wanted type: valid JSON
 * of another type is a shape error, anything else is malformed JSON.
 */
static enum dgram_status classify(struct dgram_parser *ps, struct cur *c, struct cur at)
{
	*c = at;
	return skip_value(ps, c) ? DGRAM_WRONG_SHAPE : DGRAM_MALFORMED;
}

/* Match a member name (already unescaped into scratch, then discarded). */
static bool key_is(struct result_str k, const char *name)
{
	size_t n = strlen(name);

	return k.len == n && memcmp(k.p, name, n) == 0;
}

static bool parse_key(struct dgram_parser *ps, struct cur *c, struct result_str *k)
{
	size_t mark = ps->scratch_len;

	if (!parse_string(ps, c, k) || !eat(c, ':'))
		return false;
	ps->scratch_len = mark;	/* the key's bytes stay readable until reused */
	return true;
}

/* Array of strings appended to ps->strs. */
static enum dgram_status parse_str_array(struct dgram_parser *ps, struct cur *c,
					 size_t *first, size_t *n)
{
	*first = ps->nstrs;
	*n = 0;
	if (!eat(c, '['))
		return DGRAM_WRONG_SHAPE;
	if (eat(c, ']'))
		return DGRAM_OK;
	do {
		if (!grow((void **)&ps->strs, &ps->strs_cap, ps->nstrs + 1, sizeof(*ps->strs)))
			return DGRAM_NOMEM;
		if (!parse_string(ps, c, &ps->strs[ps->nstrs]))
			return DGRAM_WRONG_SHAPE;
		ps->nstrs++;
		(*n)++;
	} while (eat(c, ','));
	return eat(c, ']') ? DGRAM_OK : DGRAM_MALFORMED;
}

static enum dgram_status parse_detail(struct dgram_parser *ps, struct cur *c)
{
	struct result_detail *d;
	bool have_c = false;
	struct result_str k;

	if (!grow((void **)&ps->dets, &ps->dets_cap, ps->ndets + 1, sizeof(*ps->dets)))
		return DGRAM_NOMEM;
	d = &ps->dets[ps->ndets];
	memset(d, 0, sizeof(*d));
	if (!eat(c, '{'))
		return DGRAM_WRONG_SHAPE;
	if (!eat(c, '}')) {
		do {
			struct result_str *field = NULL;

			if (!parse_key(ps, c, &k))
				return DGRAM_MALFORMED;
			if (key_is(k, "c")) {
				long long v;

				if (have_c || !parse_int(c, &v) || v < 0 || v > 100000)
					return DGRAM_WRONG_SHAPE;
				d->code = (int)v;
				have_c = true;
				continue;
			}
			if (k.len == 1) {
				switch (k.p[0]) {
				case 's': field = &d->sending_ip; break;
				case 'n': field = &d->mx_hostname; break;
				case 'h': field = &d->mx_helo; break;
				case 'r': field = &d->receiving_ip; break;
				case 'a': field = &d->additional; break;
				case 'f': field = &d->reason; break;
				default: break;
				}
			}
			if (field) {
				if (field->p)
					return DGRAM_WRONG_SHAPE;
				{
					struct cur at = *c;

					if (!parse_string(ps, c, field))
						return classify(ps, c, at);
				}
			} else if (!skip_value(ps, c)) {
				return DGRAM_MALFORMED;
			}
		} while (eat(c, ','));
		if (!eat(c, '}'))
			return DGRAM_MALFORMED;
	}
	if (!have_c)
		return DGRAM_WRONG_SHAPE;
	if (result_code_name(d->code) == NULL)
		ps->flags |= DGRAM_F_UNKNOWN_RESULT;
	ps->ndets++;
	return DGRAM_OK;
}

static enum dgram_status parse_policy(struct dgram_parser *ps, struct cur *c)
{
	struct pol_tmp *t;
	struct result_str k;
	enum dgram_status st;
	bool have_str = false, have_mx = false, have_det = false, have_dom = false;

	if (!grow((void **)&ps->pols, &ps->pols_cap, ps->npols + 1, sizeof(*ps->pols)))
		return DGRAM_NOMEM;
	t = &ps->pols[ps->npols];
	memset(t, 0, sizeof(*t));
	if (!eat(c, '{'))
		return DGRAM_WRONG_SHAPE;
	if (!eat(c, '}')) {
		do {
			long long v;

			if (!parse_key(ps, c, &k))
				return DGRAM_MALFORMED;
			if (key_is(k, "policy-type")) {
				if (t->have_type)
					return DGRAM_WRONG_SHAPE;
				{
					struct cur at = *c;

					if (!parse_int(c, &v))
						return classify(ps, c, at);
				}
				t->pol.type = v < 0 || v > 1000 ? -1 : (int)v;
				t->have_type = true;
			} else if (key_is(k, "policy-domain")) {
				if (have_dom)
					return DGRAM_WRONG_SHAPE;
				{
					struct cur at = *c;

					if (!parse_string(ps, c, &t->pol.domain))
						return classify(ps, c, at);
				}
				have_dom = true;
			} else if (key_is(k, "policy-string")) {
				if (have_str)
					return DGRAM_WRONG_SHAPE;
				have_str = true;
				if ((st = parse_str_array(ps, c, &t->str0, &t->nstr)) != DGRAM_OK)
					return st;
			} else if (key_is(k, "mx-host")) {
				if (have_mx)
					return DGRAM_WRONG_SHAPE;
				have_mx = true;
				if ((st = parse_str_array(ps, c, &t->mx0, &t->nmx)) != DGRAM_OK)
					return st;
			} else if (key_is(k, "failure-details")) {
				if (have_det || !eat(c, '['))
					return DGRAM_WRONG_SHAPE;
				have_det = true;
				t->det0 = ps->ndets;
				if (!eat(c, ']')) {
					do {
						if ((st = parse_detail(ps, c)) != DGRAM_OK)
							return st;
						t = &ps->pols[ps->npols];	/* not moved, but be explicit */
						t->ndet++;
					} while (eat(c, ','));
					if (!eat(c, ']'))
						return DGRAM_MALFORMED;
				}
			} else if (key_is(k, "t")) {
				if (t->have_t)
					return DGRAM_WRONG_SHAPE;
				{
					struct cur at = *c;

					if (!parse_int(c, &t->t))
						return classify(ps, c, at);
				}
				t->have_t = true;
			} else if (key_is(k, "f")) {
				if (t->have_f)
					return DGRAM_WRONG_SHAPE;
				{
					struct cur at = *c;

					if (!parse_int(c, &v))
						return classify(ps, c, at);
				}
				t->pol.failed = v != 0;
				t->have_f = true;
			} else if (!skip_value(ps, c)) {
				return DGRAM_MALFORMED;
			}
		} while (eat(c, ','));
		if (!eat(c, '}'))
			return DGRAM_MALFORMED;
	}
	if (!t->have_type || !t->have_f)
		return DGRAM_WRONG_SHAPE;
	if (t->have_t && t->t != (long long)t->ndet)
		ps->flags |= DGRAM_F_COUNT_MISMATCH;
	ps->npols++;
	return DGRAM_OK;
}

static enum dgram_status parse_top(struct dgram_parser *ps, struct cur *c, struct dgram *out)
{
	struct result_str k, dpv = { NULL, 0 };
	bool have_d = false, have_pr = false, have_pol = false, have_dpv = false;
	enum dgram_status st;

	if (!eat(c, '{')) {
		ws(c);
		/* valid JSON of another type is a shape error, garbage is malformed */
		return c->p < c->end && strchr("[\"-0123456789tfn", *c->p) ? DGRAM_WRONG_SHAPE
									   : DGRAM_MALFORMED;
	}
	if (eat(c, '}'))
		return DGRAM_WRONG_SHAPE;
	do {
		if (!parse_key(ps, c, &k))
			return DGRAM_MALFORMED;
		if (key_is(k, "d")) {
			if (have_d)
				return DGRAM_WRONG_SHAPE;
			{
				struct cur at = *c;

				if (!parse_string(ps, c, &out->d))
					return classify(ps, c, at);
			}
			have_d = true;
		} else if (key_is(k, "pr")) {
			if (have_pr)
				return DGRAM_WRONG_SHAPE;
			{
				struct cur at = *c;

				if (!parse_string(ps, c, &out->pr))
					return classify(ps, c, at);
			}
			have_pr = true;
		} else if (key_is(k, "dpv")) {
			if (have_dpv)
				return DGRAM_WRONG_SHAPE;
			{
				struct cur at = *c;

				if (!parse_string(ps, c, &dpv))
					return classify(ps, c, at);
			}
			have_dpv = true;
		} else if (key_is(k, "policies")) {
			if (have_pol || !eat(c, '['))
				return DGRAM_WRONG_SHAPE;
			have_pol = true;
			if (eat(c, ']'))
				return DGRAM_WRONG_SHAPE;	/* libtlsrpt never sends none */
			do {
				if ((st = parse_policy(ps, c)) != DGRAM_OK)
					return st;
			} while (eat(c, ','));
			if (!eat(c, ']'))
				return DGRAM_MALFORMED;
		} else if (!skip_value(ps, c)) {
			return DGRAM_MALFORMED;
		}
	} while (eat(c, ','));
	if (!eat(c, '}'))
		return DGRAM_MALFORMED;
	ws(c);
	if (c->p != c->end)
		return DGRAM_MALFORMED;	/* trailing bytes */
	if (!have_d || !have_pr || !have_pol || out->d.len == 0)
		return DGRAM_WRONG_SHAPE;
	if (have_dpv && !(dpv.len == 1 && dpv.p[0] == '1'))
		ps->flags |= DGRAM_F_UNKNOWN_DPV;
	return DGRAM_OK;
}

enum dgram_status dgram_parse(struct dgram_parser *ps, const char *data,
			      size_t len, struct dgram *out, const char **why)
{
	struct cur c = { data, data + len };
	enum dgram_status st;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	ps->nstrs = ps->ndets = ps->npols = 0;
	ps->scratch_len = 0;
	ps->flags = 0;
	if (len > ((size_t)1 << 30))
		st = DGRAM_MALFORMED;
	else if (!grow((void **)&ps->scratch, &ps->scratch_cap, 3 * len + 16, 1))
		st = DGRAM_NOMEM;
	else
		st = parse_top(ps, &c, out);
	if (st != DGRAM_OK) {
		if (why)
			*why = st == DGRAM_MALFORMED ? "not valid JSON" :
			       st == DGRAM_NOMEM ? "out of memory" :
			       "JSON, but not the libtlsrpt datagram format";
		return st;
	}
	if (!grow((void **)&ps->out, &ps->out_cap, ps->npols, sizeof(*ps->out))) {
		if (why)
			*why = "out of memory";
		return DGRAM_NOMEM;
	}
	for (size_t i = 0; i < ps->npols; i++) {
		struct pol_tmp *t = &ps->pols[i];
		struct result_policy *p;

		if (result_policy_type_name(t->pol.type) == NULL) {
			ps->flags |= DGRAM_F_UNKNOWN_POLICY;
			continue;
		}
		p = &ps->out[n++];
		*p = t->pol;
		p->strings = t->nstr ? &ps->strs[t->str0] : NULL;
		p->nstrings = t->nstr;
		p->mx = t->nmx ? &ps->strs[t->mx0] : NULL;
		p->nmx = t->nmx;
		p->details = t->ndet ? &ps->dets[t->det0] : NULL;
		p->ndetails = t->ndet;
	}
	out->policies = ps->out;
	out->npolicies = n;
	out->flags = ps->flags;
	return DGRAM_OK;
}
