/*
 * jscan - a bounded pull tokenizer for JSON text. See jscan.h.
 *
 * SECURITY: the input is untrusted. Every read is checked against the
 * input length; strings are decoded into the caller's fixed buffer and
 * never grow anything; the container stack is a 64-bit mask, so depth
 * costs no memory and no recursion; values are counted as they start.
 */
#include "jscan.h"

#include <stdio.h>
#include <string.h>

enum {
	ST_VALUE,		/* a value must follow (top level, after ':' or ',' in an array) */
	ST_VALUE_OR_END,	/* after '[' */
	ST_KEY_OR_END,		/* after '{' */
	ST_KEY,			/* after ',' in an object */
	ST_AFTER,		/* after a value in a container: ',' or the end */
	ST_DONE,		/* the top-level value is complete */
	ST_ERROR,
};

void jscan_init(struct jscan *s, const char *buf, size_t len, int max_depth,
		size_t max_values, char *strbuf, size_t strcap)
{
	memset(s, 0, sizeof(*s));
	s->buf = buf;
	s->len = len;
	s->strbuf = strbuf;
	s->strcap = strcap;
	s->str = strbuf;
	s->max_depth = max_depth < 1 ? 1 : max_depth > JSCAN_MAX_DEPTH ? JSCAN_MAX_DEPTH : max_depth;
	s->max_values = max_values;
	s->state = ST_VALUE;
	if (strcap)
		strbuf[0] = '\0';
}

const char *jscan_tok_name(enum jscan_tok t)
{
	switch (t) {
	case JSCAN_OBJECT: return "an object";
	case JSCAN_ARRAY: return "an array";
	case JSCAN_STRING: case JSCAN_KEY: return "a string";
	case JSCAN_NUMBER: return "a number";
	case JSCAN_TRUE: case JSCAN_FALSE: return "a boolean";
	case JSCAN_NULL: return "null";
	case JSCAN_OBJECT_END: case JSCAN_ARRAY_END: return "the end of a container";
	case JSCAN_EOF: return "the end of the input";
	default: return "an error";
	}
}

static enum jscan_tok fail(struct jscan *s, const char *what)
{
	snprintf(s->err, sizeof(s->err), "%s at offset %zu", what, s->pos);
	s->state = ST_ERROR;
	return JSCAN_ERROR;
}

static void skip_space(struct jscan *s)
{
	while (s->pos < s->len) {
		char c = s->buf[s->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		s->pos++;
	}
}

static bool in_object(const struct jscan *s)
{
	return s->depth > 0 && (s->kinds >> (s->depth - 1) & 1);
}

/* After a complete value: what may follow. */
static void after_value(struct jscan *s)
{
	s->state = s->depth == 0 ? ST_DONE : ST_AFTER;
}

/* Append one decoded character of 'n' bytes if it fits whole. */
static void put_char(struct jscan *s, const char *p, size_t n)
{
	s->str_full += n;
	if (!s->str_cut && s->str_len + n < s->strcap) {
		memcpy(s->strbuf + s->str_len, p, n);
		s->str_len += n;
	} else {
		s->str_cut = true;	/* nothing more, so no character is split */
	}
}

static void put_cp(struct jscan *s, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	put_char(s, u, n);
}

static int hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Decode the string starting at the opening quote. */
static bool scan_string(struct jscan *s)
{
	s->str_len = s->str_full = 0;
	s->str_cut = false;
	s->pos++;		/* the quote */
	while (s->pos < s->len) {
		unsigned char c = (unsigned char)s->buf[s->pos];

		if (c == '"') {
			s->pos++;
			s->strbuf[s->str_len] = '\0';
			return true;
		}
		if (c == '\\') {
			uint32_t cp, lo;

			if (s->len - s->pos < 2)
				break;
			c = (unsigned char)s->buf[s->pos + 1];
			s->pos += 2;
			switch (c) {
			case '"': put_char(s, "\"", 1); continue;
			case '\\': put_char(s, "\\", 1); continue;
			case '/': put_char(s, "/", 1); continue;
			case 'b': put_char(s, "\b", 1); continue;
			case 'f': put_char(s, "\f", 1); continue;
			case 'n': put_char(s, "\n", 1); continue;
			case 'r': put_char(s, "\r", 1); continue;
			case 't': put_char(s, "\t", 1); continue;
			case 'u': break;
			default:
				s->pos -= 2;
				fail(s, "bad escape in a string");
				return false;
			}
			if (s->len - s->pos < 4 || hex4(s->buf + s->pos, &cp) != 0) {
				fail(s, "bad \\u escape in a string");
				return false;
			}
			s->pos += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && s->len - s->pos >= 6 &&
			    s->buf[s->pos] == '\\' && s->buf[s->pos + 1] == 'u' &&
			    hex4(s->buf + s->pos + 2, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				s->pos += 6;
			} else if (cp >= 0xd800 && cp <= 0xdfff) {
				cp = 0xfffd;	/* a lone surrogate */
			}
			put_cp(s, cp);
			continue;
		}
		{
			/* one UTF-8 character as it is (the caller validated the text;
			 * raw control characters are tolerated) */
			size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;

			if (n > s->len - s->pos)
				n = s->len - s->pos;
			put_char(s, s->buf + s->pos, n);
			s->pos += n;
		}
	}
	fail(s, "unterminated string");
	return false;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool scan_number(struct jscan *s)
{
	size_t p = s->pos, start = p;
	bool neg = false, overflow = false;
	uint64_t mag = 0;

	if (p < s->len && s->buf[p] == '-') {
		neg = true;
		p++;
	}
	if (p >= s->len || !is_digit(s->buf[p])) {
		fail(s, "bad number");
		return false;
	}
	if (s->buf[p] == '0') {
		p++;
	} else {
		while (p < s->len && is_digit(s->buf[p])) {
			unsigned d = (unsigned)(s->buf[p] - '0');

			if (mag > (UINT64_MAX - d) / 10)
				overflow = true;
			else
				mag = mag * 10 + d;
			p++;
		}
	}
	s->num_is_int = true;
	if (p < s->len && s->buf[p] == '.') {
		p++;
		if (p >= s->len || !is_digit(s->buf[p])) {
			s->pos = p;
			fail(s, "bad number");
			return false;
		}
		while (p < s->len && is_digit(s->buf[p]))
			p++;
		s->num_is_int = false;
	}
	if (p < s->len && (s->buf[p] == 'e' || s->buf[p] == 'E')) {
		p++;
		if (p < s->len && (s->buf[p] == '+' || s->buf[p] == '-'))
			p++;
		if (p >= s->len || !is_digit(s->buf[p])) {
			s->pos = p;
			fail(s, "bad number");
			return false;
		}
		while (p < s->len && is_digit(s->buf[p]))
			p++;
		s->num_is_int = false;
	}
	s->num_text = s->buf + start;
	s->num_len = p - start;
	s->num_range = s->num_is_int && !overflow &&
		       (neg ? mag <= (uint64_t)INT64_MAX + 1 : mag <= (uint64_t)INT64_MAX);
	if (s->num_range)
		s->num_int = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag)
				 : (int64_t)mag;
	else
		s->num_int = 0;
	s->pos = p;
	return true;
}

static bool literal(struct jscan *s, const char *word)
{
	size_t n = strlen(word);

	if (s->len - s->pos < n || memcmp(s->buf + s->pos, word, n) != 0)
		return false;
	s->pos += n;
	return true;
}

/* A value starts at s->pos (space skipped). */
static enum jscan_tok value(struct jscan *s)
{
	char c;

	if (s->pos >= s->len)
		return fail(s, "unexpected end of input");
	if (++s->nvalues > s->max_values) {
		char why[96];

		snprintf(why, sizeof(why), "more than %zu JSON values", s->max_values);
		return fail(s, why);
	}
	c = s->buf[s->pos];
	if (c == '{' || c == '[') {
		char why[64];

		if (s->depth >= s->max_depth) {
			snprintf(why, sizeof(why), "nested deeper than %d levels", s->max_depth);
			return fail(s, why);
		}
		s->pos++;
		if (c == '{')
			s->kinds |= UINT64_C(1) << s->depth;
		else
			s->kinds &= ~(UINT64_C(1) << s->depth);
		s->depth++;
		s->state = c == '{' ? ST_KEY_OR_END : ST_VALUE_OR_END;
		return c == '{' ? JSCAN_OBJECT : JSCAN_ARRAY;
	}
	if (c == '"') {
		if (!scan_string(s))
			return JSCAN_ERROR;
		after_value(s);
		return JSCAN_STRING;
	}
	if (c == '-' || is_digit(c)) {
		if (!scan_number(s))
			return JSCAN_ERROR;
		after_value(s);
		return JSCAN_NUMBER;
	}
	if (literal(s, "true")) {
		after_value(s);
		return JSCAN_TRUE;
	}
	if (literal(s, "false")) {
		after_value(s);
		return JSCAN_FALSE;
	}
	if (literal(s, "null")) {
		after_value(s);
		return JSCAN_NULL;
	}
	return fail(s, "unexpected character");
}

static enum jscan_tok close_container(struct jscan *s, bool object)
{
	if (in_object(s) != object)
		return fail(s, "mismatched bracket");
	s->pos++;
	s->depth--;
	after_value(s);
	return object ? JSCAN_OBJECT_END : JSCAN_ARRAY_END;
}

enum jscan_tok jscan_next(struct jscan *s)
{
	for (;;) {
		skip_space(s);
		s->tok_off = s->pos;
		switch (s->state) {
		case ST_ERROR:
			return JSCAN_ERROR;
		case ST_DONE:
			if (s->pos < s->len)
				return fail(s, "data after the JSON value");
			return JSCAN_EOF;
		case ST_VALUE:
			return value(s);
		case ST_VALUE_OR_END:
			if (s->pos < s->len && s->buf[s->pos] == ']')
				return close_container(s, false);
			return value(s);
		case ST_KEY_OR_END:
		case ST_KEY:
			if (s->pos >= s->len)
				return fail(s, "unexpected end of input");
			if (s->state == ST_KEY_OR_END && s->buf[s->pos] == '}')
				return close_container(s, true);
			if (s->buf[s->pos] != '"')
				return fail(s, "expected a member name");
			if (!scan_string(s))
				return JSCAN_ERROR;
			skip_space(s);
			if (s->pos >= s->len || s->buf[s->pos] != ':')
				return fail(s, s->pos >= s->len ? "unexpected end of input"
								: "expected ':'");
			s->pos++;
			s->state = ST_VALUE;
			return JSCAN_KEY;
		case ST_AFTER:
			if (s->pos >= s->len)
				return fail(s, "unexpected end of input");
			if (s->buf[s->pos] == ',') {
				s->pos++;
				s->state = in_object(s) ? ST_KEY : ST_VALUE;
				continue;
			}
			if (s->buf[s->pos] == '}' || s->buf[s->pos] == ']')
				return close_container(s, s->buf[s->pos] == '}');
			return fail(s, "expected ',' or the end of a container");
		default:
			return fail(s, "scanner state");
		}
	}
}

int jscan_skip(struct jscan *s, enum jscan_tok t)
{
	int target;

	if (t == JSCAN_ERROR)
		return -1;
	if (t != JSCAN_OBJECT && t != JSCAN_ARRAY)
		return 0;
	target = s->depth - 1;
	for (;;) {
		enum jscan_tok k = jscan_next(s);

		if (k == JSCAN_ERROR)
			return -1;
		if (k == JSCAN_EOF) {
			fail(s, "unexpected end of input");
			return -1;
		}
		if ((k == JSCAN_OBJECT_END || k == JSCAN_ARRAY_END) && s->depth == target)
			return 0;
	}
}
