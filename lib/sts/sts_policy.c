/*
 * sts_policy - MTA-STS policy file, TXT record and MX pattern rules
 * (RFC 8461). See sts_policy.h.
 *
 * SECURITY: policy bodies come from any HTTPS server that holds a
 * certificate for mta-sts.<domain>, TXT records from DNS. Both are bounded
 * by the caller's limit, scanned once, never recursively.
 */
#include "sts_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ISALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define ISDIGIT(c) ((c) >= '0' && (c) <= '9')
#define ISALNUM(c) (ISALPHA(c) || ISDIGIT(c))
#define ISWSP(c) ((c) == ' ' || (c) == '\t')

const char *sts_mode_name(enum sts_mode m)
{
	switch (m) {
	case STS_MODE_ENFORCE: return "enforce";
	case STS_MODE_TESTING: return "testing";
	default: return "none";
	}
}

void sts_policy_free(struct sts_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nmx; i++)
		free(p->mx[i]);
	for (size_t i = 0; i < p->nlines; i++)
		free(p->lines[i]);
	free(p->mx);
	free(p->lines);
	memset(p, 0, sizeof(*p));
}

/* Length of a valid UTF-8 sequence at s (n bytes available), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t need;
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		need = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		need = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		need = 4;
	else
		return 0;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	if (c == 0xE0 && s[1] < 0xA0)
		return 0;	/* overlong */
	if (c == 0xED && s[1] > 0x9F)
		return 0;	/* surrogate */
	if (c == 0xF0 && s[1] < 0x90)
		return 0;
	if (c == 0xF4 && s[1] > 0x8F)
		return 0;
	return need;
}

/* RFC 5321 Domain: labels of let-dig [*(let-dig / "-") let-dig]. */
static bool valid_domain(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!ISALNUM(c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

static bool valid_ext_name(const char *s, size_t len)
{
	if (len == 0 || len > 32 || !ISALNUM(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!ISALNUM(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/* sts-policy-ext-value: vchar [*(SP / vchar) vchar], vchar = %x21-7E / UTF-8. */
static bool valid_ext_value(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	if (len == 0 || u[0] == ' ' || u[len - 1] == ' ')
		return false;
	for (size_t i = 0; i < len;) {
		size_t n;

		if (u[i] == ' ' || (u[i] >= 0x21 && u[i] <= 0x7E)) {
			i++;
			continue;
		}
		n = utf8_len(u + i, len - i);
		if (n < 2)
			return false;
		i += n;
	}
	return true;
}

/* Append a copy; the array doubles when *n reaches a power of two. */
static int push(char ***arr, size_t *n, const char *s, size_t len, bool lower)
{
	char **na = *arr;
	char *copy;

	if ((*n & (*n - 1)) == 0) {	/* 0, 1, 2, 4, ...: full */
		na = realloc(*arr, (*n ? 2 * *n : 1) * sizeof(**arr));
		if (na == NULL)
			return -1;
		*arr = na;
	}
	copy = malloc(len + 1);
	if (copy == NULL)
		return -1;
	memcpy(copy, s, len);
	copy[len] = '\0';
	if (lower)
		for (size_t i = 0; i < len; i++)
			if (copy[i] >= 'A' && copy[i] <= 'Z')
				copy[i] = (char)(copy[i] - 'A' + 'a');
	na[(*n)++] = copy;
	return 0;
}

#define KEYIS(k, kl, lit) ((kl) == sizeof(lit) - 1 && memcmp((k), (lit), (kl)) == 0)

enum sts_policy_status sts_policy_parse(const char *text, size_t len, size_t max,
					struct sts_policy *out, char *err,
					size_t errsz)
{
	bool have_version = false, have_mode = false, have_age = false;
	const char *p = text, *end = text + len;
	unsigned lineno = 0;

	memset(out, 0, sizeof(*out));
	if (len > max) {
		snprintf(err, errsz, "policy larger than %zu bytes", max);
		return STS_POLICY_TOO_BIG;
	}
#define FAIL(...) do { snprintf(err, errsz, __VA_ARGS__); \
		sts_policy_free(out); return STS_POLICY_INVALID; } while (0)
#define NOMEM() do { snprintf(err, errsz, "out of memory"); \
		sts_policy_free(out); return STS_POLICY_NOMEM; } while (0)

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *ls = p, *le = nl ? nl : end;
		const char *colon, *vs, *ve;
		size_t klen;

		p = nl ? nl + 1 : end;
		lineno++;
		if (le > ls && le[-1] == '\r')
			le--;
		if (le == ls)
			continue;	/* empty line */
		colon = memchr(ls, ':', (size_t)(le - ls));
		if (colon == NULL)
			FAIL("line %u: no \":\"", lineno);
		klen = (size_t)(colon - ls);
		if (!valid_ext_name(ls, klen))
			FAIL("line %u: invalid field name", lineno);
		vs = colon + 1;
		while (vs < le && ISWSP(*vs))
			vs++;
		ve = le;
		while (ve > vs && ISWSP(ve[-1]))
			ve--;
		for (const char *q = vs; q < ve; q++)
			if (*q == '\t')
				FAIL("line %u: TAB inside value", lineno);
		if (!valid_ext_value(vs, (size_t)(ve - vs)))
			FAIL("line %u: invalid value", lineno);
		if (push(&out->lines, &out->nlines, ls, (size_t)(le - ls), false) < 0)
			NOMEM();

		if (KEYIS(ls, klen, "version")) {
			if (have_version)
				continue;
			if (!KEYIS(vs, (size_t)(ve - vs), "STSv1"))
				FAIL("line %u: version: want STSv1", lineno);
			have_version = true;
		} else if (KEYIS(ls, klen, "mode")) {
			size_t vl = (size_t)(ve - vs);

			if (have_mode)
				continue;
			if (KEYIS(vs, vl, "enforce"))
				out->mode = STS_MODE_ENFORCE;
			else if (KEYIS(vs, vl, "testing"))
				out->mode = STS_MODE_TESTING;
			else if (KEYIS(vs, vl, "none"))
				out->mode = STS_MODE_NONE;
			else
				FAIL("line %u: mode: unknown value", lineno);
			have_mode = true;
		} else if (KEYIS(ls, klen, "max_age")) {
			size_t vl = (size_t)(ve - vs);
			uint64_t n = 0;

			if (have_age)
				continue;
			if (vl == 0 || vl > 10)
				FAIL("line %u: max_age: want 1-10 digits", lineno);
			for (size_t i = 0; i < vl; i++) {
				if (!ISDIGIT(vs[i]))
					FAIL("line %u: max_age: not a number", lineno);
				n = n * 10 + (uint64_t)(vs[i] - '0');
			}
			if (n > STS_MAX_AGE_LIMIT)
				FAIL("line %u: max_age: larger than %u", lineno,
				     STS_MAX_AGE_LIMIT);
			out->max_age = (uint32_t)n;
			have_age = true;
		} else if (KEYIS(ls, klen, "mx")) {
			size_t vl = (size_t)(ve - vs);
			const char *d = vs;

			if (vl > 2 && vs[0] == '*' && vs[1] == '.')
				d += 2;
			if (!valid_domain(d, (size_t)(ve - d)))
				FAIL("line %u: mx: invalid host pattern", lineno);
			if (push(&out->mx, &out->nmx, vs, vl, true) < 0)
				NOMEM();
		}
		/* other keys: extensions, ignored */
	}
	if (!have_version)
		FAIL("no version field");
	if (!have_mode)
		FAIL("no mode field");
	if (!have_age)
		FAIL("no max_age field");
	if (out->mode != STS_MODE_NONE && out->nmx == 0)
		FAIL("no mx field");
	err[0] = '\0';
	return STS_POLICY_OK;
#undef FAIL
#undef NOMEM
}

/* sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E) */
static bool txt_ext_value_char(char c)
{
	return (c >= 0x21 && c <= 0x3A) || c == 0x3C || (c >= 0x3E && c <= 0x7E);
}

int sts_txt_parse(const char *rec, size_t len, char *id, size_t idsz,
		  char *err, size_t errsz)
{
	static const char ver[] = "v=STSv1";
	size_t i = sizeof(ver) - 1, nfields = 0;
	bool have_id = false;

	if (len > STS_TXT_MAX) {
		snprintf(err, errsz, "record too long");
		return -1;
	}
	if (len < i || memcmp(rec, ver, i) != 0) {
		snprintf(err, errsz, "record does not begin with v=STSv1");
		return -1;
	}
	while (i < len) {
		size_t ns, ne, vs, ve;

		/* field delimiter *WSP ";" *WSP */
		while (i < len && ISWSP(rec[i]))
			i++;
		if (i == len || rec[i] != ';') {
			snprintf(err, errsz, "\";\" expected at offset %zu", i);
			return -1;
		}
		i++;
		while (i < len && ISWSP(rec[i]))
			i++;
		if (i == len)
			break;	/* trailing delimiter */
		ns = i;
		while (i < len && rec[i] != '=')
			i++;
		ne = i;
		if (i == len) {
			snprintf(err, errsz, "field without \"=\"");
			return -1;
		}
		i++;
		vs = i;
		while (i < len && !ISWSP(rec[i]) && rec[i] != ';')
			i++;
		ve = i;
		nfields++;
		if (ne - ns == 2 && memcmp(rec + ns, "id", 2) == 0) {
			if (ve == vs || ve - vs > STS_ID_MAX) {
				snprintf(err, errsz, "id must be 1-32 letters or digits");
				return -1;
			}
			for (size_t k = vs; k < ve; k++)
				if (!ISALNUM(rec[k])) {
					snprintf(err, errsz, "id must be 1-32 letters or digits");
					return -1;
				}
			if (!have_id) {
				if (idsz < ve - vs + 1) {
					snprintf(err, errsz, "id buffer too small");
					return -1;
				}
				memcpy(id, rec + vs, ve - vs);
				id[ve - vs] = '\0';
				have_id = true;
			}
			continue;
		}
		if (!valid_ext_name(rec + ns, ne - ns)) {
			snprintf(err, errsz, "invalid field name");
			return -1;
		}
		if (ve == vs) {
			snprintf(err, errsz, "empty field value");
			return -1;
		}
		for (size_t k = vs; k < ve; k++)
			if (!txt_ext_value_char(rec[k])) {
				snprintf(err, errsz, "invalid character in field value");
				return -1;
			}
	}
	if (nfields == 0 || !have_id) {
		snprintf(err, errsz, "no id field");
		return -1;
	}
	err[0] = '\0';
	return 0;
}

int sts_txt_select(char *const *recs, const size_t *lens, size_t n, char *id,
		   size_t idsz, char *err, size_t errsz)
{
	size_t found = 0, which = 0;

	for (size_t i = 0; i < n; i++) {
		const char *r = recs[i];
		size_t l = lens[i];

		if (l >= 7 && memcmp(r, "v=STSv1", 7) == 0 &&
		    (l == 7 || r[7] == ';' || ISWSP(r[7]))) {
			found++;
			which = i;
		}
	}
	if (found == 0) {
		snprintf(err, errsz, "no v=STSv1 record");
		return -1;
	}
	if (found > 1) {
		snprintf(err, errsz, "%zu v=STSv1 records", found);
		return -1;
	}
	return sts_txt_parse(recs[which], lens[which], id, idsz, err, errsz);
}

bool sts_mx_match(const char *pattern, const char *host)
{
	size_t hl = strlen(host), pl = strlen(pattern);

	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (hl == 0 || pl == 0)
		return false;
	if (pl > 2 && pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = memchr(host, '.', hl);
		size_t rest;

		if (dot == NULL || dot == host)
			return false;
		rest = hl - (size_t)(dot + 1 - host);
		return rest == pl - 2 && strncasecmp(dot + 1, pattern + 2, rest) == 0;
	}
	return hl == pl && strncasecmp(host, pattern, hl) == 0;
}

bool sts_policy_mx_match(const struct sts_policy *p, const char *host)
{
	for (size_t i = 0; i < p->nmx; i++)
		if (sts_mx_match(p->mx[i], host))
			return true;
	return false;
}
