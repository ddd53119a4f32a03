/*
 * rptparse - decompression and tolerant parsing of received TLS reports.
 * See rptparse.h.
 *
 * SECURITY: all input is untrusted. Decompressed output is bounded by the
 * caller's limit (zip bombs stop there); JSON nesting is bounded by the
 * json-c tokener depth; every member's JSON type is checked before use;
 * counts are range-checked; text must be UTF-8 without NUL bytes.
 */
#include "rptparse.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define CHUNK (64 * 1024)

/* ---------- decompression ---------- */

/* Grow *buf so that at least 'want' more bytes fit, never past max + 1. */
static int out_room(unsigned char **buf, size_t *cap, size_t used, size_t max)
{
	size_t ncap;
	unsigned char *p;

	if (*cap - used > 1)	/* room for a byte and the NUL */
		return 0;
	ncap = *cap ? *cap * 2 : CHUNK;
	if (ncap > max + 2)
		ncap = max + 2;
	if (ncap <= *cap)
		return -1;
	p = realloc(*buf, ncap);
	if (p == NULL)
		return -1;
	*buf = p;
	*cap = ncap;
	return 0;
}

/*
 * Inflate with zlib 'wbits' (31: gzip, -15: raw deflate). For gzip, further
 * members are read too. Returns 0, or -1 with err set.
 */
static int inflate_bounded(const unsigned char *in, size_t len, int wbits, size_t max_out,
			   unsigned char **out, size_t *outlen, char *err, size_t errsz)
{
	z_stream zs;
	unsigned char *buf = NULL;
	size_t cap = 0, used = 0;
	int zr = Z_OK, rc = -1;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, wbits) != Z_OK) {
		snprintf(err, errsz, "zlib initialisation failed");
		return -1;
	}
	zs.next_in = (Bytef *)(uintptr_t)in;
	/* zlib counts in uInt: feed at most 1 GiB at a time */
	zs.avail_in = (uInt)(len > (1u << 30) ? (1u << 30) : len);
	for (;;) {
		size_t before;

		if (out_room(&buf, &cap, used, max_out) != 0) {
			snprintf(err, errsz, "out of memory");
			goto out;
		}
		zs.next_out = buf + used;
		zs.avail_out = (uInt)(cap - used - 1 > (1u << 30) ? (1u << 30) : cap - used - 1);
		before = zs.avail_out;
		zr = inflate(&zs, Z_NO_FLUSH);
		used += before - zs.avail_out;
		if (used > max_out) {
			snprintf(err, errsz, "decompressed report larger than the limit of %zu bytes", max_out);
			goto out;
		}
		if (zr == Z_STREAM_END) {
			size_t consumed = (size_t)(zs.next_in - in);

			/* another gzip member? */
			if (wbits > 15 && len - consumed >= 2 && in[consumed] == 0x1f &&
			    in[consumed + 1] == 0x8b) {
				if (inflateReset(&zs) != Z_OK) {
					snprintf(err, errsz, "zlib reset failed");
					goto out;
				}
				continue;
			}
			break;
		}
		if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR) {
			snprintf(err, errsz, "corrupt compressed data (%s)", zs.msg ? zs.msg : "zlib error");
			goto out;
		}
		if (zr == Z_MEM_ERROR) {
			snprintf(err, errsz, "out of memory");
			goto out;
		}
		if (zr == Z_BUF_ERROR || (zs.avail_in == 0 && zs.avail_out != 0)) {
			size_t consumed = (size_t)(zs.next_in - in);

			if (consumed < len) {	/* more than 1 GiB input: feed the rest */
				size_t rest = len - consumed;
				zs.avail_in = (uInt)(rest > (1u << 30) ? (1u << 30) : rest);
				continue;
			}
			snprintf(err, errsz, "truncated compressed data");
			goto out;
		}
	}
	buf[used] = '\0';
	*out = buf;
	*outlen = used;
	buf = NULL;
	rc = 0;
out:
	inflateEnd(&zs);
	free(buf);
	return rc;
}

static uint32_t le16(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Extract one zip entry given its local header offset and sizes. */
static int zip_entry(const unsigned char *in, size_t len, size_t loff, uint32_t method,
		     size_t csize, size_t usize, uint32_t crc, size_t max_out,
		     unsigned char **out, size_t *outlen, char *err, size_t errsz)
{
	size_t data;
	unsigned char *d = NULL;
	size_t n = 0;

	if (loff > len || len - loff < 30 || le32(in + loff) != 0x04034b50) {
		snprintf(err, errsz, "zip: bad local header");
		return -1;
	}
	data = loff + 30 + le16(in + loff + 26) + le16(in + loff + 28);
	if (data > len || len - data < csize) {
		snprintf(err, errsz, "zip: truncated entry");
		return -1;
	}
	if (method == 0) {
		if (csize > max_out) {
			snprintf(err, errsz, "decompressed report larger than the limit of %zu bytes", max_out);
			return -1;
		}
		d = malloc(csize + 1);
		if (d == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		memcpy(d, in + data, csize);
		d[csize] = '\0';
		n = csize;
	} else if (method == 8) {
		if (inflate_bounded(in + data, csize, -15, max_out, &d, &n, err, errsz) != 0)
			return -1;
	} else {
		snprintf(err, errsz, "zip: unsupported compression method %u", method);
		return -1;
	}
	if (n != usize || crc32(0, d, (uInt)n) != crc) {
		free(d);
		snprintf(err, errsz, "zip: entry size or CRC mismatch (corrupt archive)");
		return -1;
	}
	*out = d;
	*outlen = n;
	return 0;
}

static bool name_ends(const unsigned char *name, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	return n >= m && strncasecmp((const char *)name + n - m, suffix, m) == 0;
}

static int unzip(const unsigned char *in, size_t len, size_t max_out,
		 unsigned char **out, size_t *outlen, char *err, size_t errsz)
{
	size_t eocd = 0, cd, pick = 0, count, off;
	bool found = false, have_pick = false;

	/* The end of central directory record: within the last 64 KiB + 22. */
	for (size_t i = len >= 22 ? len - 22 + 1 : 0; i-- > 0;) {
		if (len - i > 65535 + 22)
			break;
		if (le32(in + i) == 0x06054b50) {
			eocd = i;
			found = true;
			break;
		}
	}
	if (!found) {
		/* No directory (truncated?): try the first local header if it
		 * carries its sizes. */
		if (len >= 30 && le32(in) == 0x04034b50 && !(le16(in + 6) & 8))
			return zip_entry(in, len, 0, le16(in + 8), le32(in + 18), le32(in + 22),
					 le32(in + 14), max_out, out, outlen, err, errsz);
		snprintf(err, errsz, "zip: no central directory (truncated archive)");
		return -1;
	}
	count = le16(in + eocd + 10);
	cd = le32(in + eocd + 16);
	if (cd > eocd) {
		snprintf(err, errsz, "zip: bad central directory offset");
		return -1;
	}
	off = cd;
	for (size_t i = 0; i < count && i < 1000; i++) {
		size_t nlen;

		if (eocd - off < 46 || le32(in + off) != 0x02014b50) {
			snprintf(err, errsz, "zip: bad central directory entry");
			return -1;
		}
		nlen = le16(in + off + 28);
		if (eocd - off - 46 < nlen) {
			snprintf(err, errsz, "zip: bad central directory entry");
			return -1;
		}
		if (!have_pick || name_ends(in + off + 46, nlen, ".json")) {
			bool is_json = name_ends(in + off + 46, nlen, ".json");
			bool is_dir = nlen > 0 && in[off + 46 + nlen - 1] == '/';

			if (!is_dir) {
				pick = off;
				have_pick = true;
				if (is_json)
					break;
			}
		}
		off += 46 + nlen + le16(in + off + 30) + le16(in + off + 32);
		if (off > eocd)
			break;
	}
	if (!have_pick) {
		snprintf(err, errsz, "zip: no file in the archive");
		return -1;
	}
	if (le32(in + pick + 20) == 0xffffffffu || le32(in + pick + 24) == 0xffffffffu) {
		snprintf(err, errsz, "zip: ZIP64 archives are not supported");
		return -1;
	}
	return zip_entry(in, len, le32(in + pick + 42), le16(in + pick + 10),
			 le32(in + pick + 20), le32(in + pick + 24), le32(in + pick + 16),
			 max_out, out, outlen, err, errsz);
}

int rpt_decompress(const unsigned char *in, size_t len, size_t max_out,
		   unsigned char **out, size_t *outlen, enum rpt_format *fmt,
		   char *err, size_t errsz)
{
	enum rpt_format f = RPT_FMT_JSON;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (len >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
		f = RPT_FMT_GZIP;
		rc = inflate_bounded(in, len, 15 + 16, max_out, out, outlen, err, errsz);
	} else if (len >= 4 && memcmp(in, "PK\3\4", 4) == 0) {
		f = RPT_FMT_ZIP;
		rc = unzip(in, len, max_out, out, outlen, err, errsz);
	} else if (len > max_out) {
		snprintf(err, errsz, "report larger than the limit of %zu bytes", max_out);
		rc = -1;
	} else {
		*out = malloc(len + 1);
		if (*out == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		memcpy(*out, in, len);
		(*out)[len] = '\0';
		*outlen = len;
		rc = 0;
	}
	if (fmt)
		*fmt = f;
	return rc;
}

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

/* Copy a string cut at RPT_MAX_STRING on a UTF-8 character boundary. */
static char *copy_str(struct rpt_report *r, const char *s, size_t n, const char *what)
{
	char *d;

	if (n > RPT_MAX_STRING) {
		n = RPT_MAX_STRING;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		warn(r, "%s longer than %d bytes: cut", what, RPT_MAX_STRING);
	}
	d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
		for (size_t i = 0; i < n; i++)	/* "\u0000" in the JSON */
			if (d[i] == '\0')
				d[i] = '?';
	}
	return d;
}

/*
 * Optional string member 'key' of 'o': NULL when absent, null or "".
 * A non-string value is noted and treated as absent. *nomem on ENOMEM.
 */
static char *opt_str(struct rpt_report *r, struct json_object *o, const char *key, bool *nomem)
{
	struct json_object *v;
	char *d;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		warn(r, "%s is not a string: ignored", key);
		return NULL;
	}
	if (json_object_get_string_len(v) == 0)
		return NULL;
	d = copy_str(r, json_object_get_string(v), (size_t)json_object_get_string_len(v), key);
	if (d == NULL)
		*nomem = true;
	return d;
}

/* Like opt_str but "" instead of NULL. */
static char *req_str(struct rpt_report *r, struct json_object *o, const char *key, bool *nomem)
{
	char *s = opt_str(r, o, key, nomem);

	if (s == NULL && !*nomem) {
		s = strdup("");
		if (s == NULL)
			*nomem = true;
	}
	return s;
}

/* A session count. Absent/null: 0 with a warning; invalid: -1 and err. */
static int get_count(struct rpt_report *r, struct json_object *o, const char *key,
		     const char *where, int64_t *out, char *err, size_t errsz)
{
	struct json_object *v;
	int64_t n;

	*out = 0;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL) {
		warn(r, "%s: %s missing, taken as 0", where, key);
		return 0;
	}
	if (!json_object_is_type(v, json_type_int)) {
		snprintf(err, errsz, "%s: %s is not an integer", where, key);
		return -1;
	}
	n = json_object_get_int64(v);
	if (n < 0) {
		snprintf(err, errsz, "%s: %s is negative (%lld)", where, key, (long long)n);
		return -1;
	}
	if (n > RPT_MAX_COUNT) {
		snprintf(err, errsz, "%s: %s is absurdly large (above 2^53)", where, key);
		return -1;
	}
	*out = n;
	return 0;
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

/* ---------- the report ---------- */

static int string_list(struct rpt_report *r, struct json_object *v, const char *what,
		       bool mx, char ***outv, size_t *outn, char *err, size_t errsz)
{
	struct json_object *arr = v, *inner = NULL;
	size_t n;
	int rc = -1;

	*outv = NULL;
	*outn = 0;
	if (v == NULL)
		return 0;
	if (json_object_is_type(v, json_type_string)) {	/* one string (erratum 6241) */
		arr = json_object_new_array();
		if (arr == NULL)
			goto nomem;
		json_object_array_add(arr, json_object_get(v));
	} else if (!json_object_is_type(v, json_type_array)) {
		warn(r, "%s is neither a string nor an array: ignored", what);
		return 0;
	} else
		json_object_get(arr);
	/* One element holding a JSON array (Microsoft's TLSA policy-string). */
	if (!mx && json_object_array_length(arr) == 1) {
		struct json_object *e = json_object_array_get_idx(arr, 0);
		const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";

		while (*s == ' ')
			s++;
		if (*s == '[') {
			struct json_tokener *tok = json_tokener_new_ex(4);

			if (tok == NULL)
				goto nomem;
			inner = json_tokener_parse_ex(tok, s, (int)strlen(s));
			json_tokener_free(tok);
			if (inner && json_object_is_type(inner, json_type_array)) {
				json_object_put(arr);
				arr = inner;
				inner = NULL;
				warn(r, "%s: one string holding a JSON array, decoded", what);
			}
			json_object_put(inner);
			inner = NULL;
		}
	}
	n = json_object_array_length(arr);
	if (n > RPT_MAX_STRINGS) {
		snprintf(err, errsz, "%s has more than %d entries", what, RPT_MAX_STRINGS);
		json_object_put(arr);
		return -1;
	}
	*outv = calloc(n ? n : 1, sizeof(char *));
	if (*outv == NULL)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);
		const char *s;
		size_t len;

		if (!json_object_is_type(e, json_type_string)) {
			warn(r, "%s: a non-string entry ignored", what);
			continue;
		}
		s = json_object_get_string(e);
		len = (size_t)json_object_get_string_len(e);
		if (mx && len >= 3 && strncasecmp(s, "mx:", 3) == 0) {
			s += 3;
			len -= 3;
			while (len && *s == ' ') {
				s++;
				len--;
			}
			warn(r, "mx-host entry with an \"mx:\" prefix");
		}
		if (len == 0)
			continue;
		(*outv)[*outn] = copy_str(r, s, len, what);
		if ((*outv)[*outn] == NULL)
			goto nomem;
		(*outn)++;
	}
	rc = 0;
	json_object_put(arr);
	return rc;
nomem:
	json_object_put(arr);
	snprintf(err, errsz, "out of memory");
	return -1;
}

static int parse_detail(struct rpt_report *r, struct json_object *o, size_t pi, size_t di,
			struct rpt_detail *d, char *err, size_t errsz)
{
	char where[64];
	bool nomem = false;

	snprintf(where, sizeof(where), "policies[%zu].failure-details[%zu]", pi, di);
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errsz, "%s is not an object", where);
		return -1;
	}
	d->result_type = req_str(r, o, "result-type", &nomem);
	d->sending_mta_ip = opt_str(r, o, "sending-mta-ip", &nomem);
	d->receiving_mx_hostname = opt_str(r, o, "receiving-mx-hostname", &nomem);
	if (d->receiving_mx_hostname == NULL && !nomem) {
		d->receiving_mx_hostname = opt_str(r, o, "receiving-mx-host-name", &nomem);
		if (d->receiving_mx_hostname)
			warn(r, "%s: misspelled key receiving-mx-host-name", where);
	}
	d->receiving_mx_helo = opt_str(r, o, "receiving-mx-helo", &nomem);
	d->receiving_ip = opt_str(r, o, "receiving-ip", &nomem);
	d->additional_information = opt_str(r, o, "additional-information", &nomem);
	if (d->additional_information == NULL && !nomem) {
		d->additional_information = opt_str(r, o, "additional-info-uri", &nomem);
		if (d->additional_information)
			warn(r, "%s: key additional-info-uri (RFC placeholder name)", where);
	}
	d->failure_reason_code = opt_str(r, o, "failure-reason-code", &nomem);
	if (nomem) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (d->result_type[0] == '\0')
		warn(r, "%s: result-type missing", where);
	return get_count(r, o, "failed-session-count", where, &d->failed_session_count, err, errsz);
}

static int parse_policy(struct rpt_report *r, struct json_object *o, size_t pi,
			const char *fallback, struct rpt_policy *p, char *err, size_t errsz)
{
	struct json_object *pol, *sum, *fd, *v;
	char where[48];
	bool nomem = false;
	int64_t rows = 0;
	size_t n;

	snprintf(where, sizeof(where), "policies[%zu]", pi);
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errsz, "%s is not an object", where);
		return -1;
	}
	if (!json_object_object_get_ex(o, "policy", &pol) ||
	    !json_object_is_type(pol, json_type_object)) {
		warn(r, "%s: policy missing", where);
		pol = NULL;
	}
	p->policy_type = pol ? req_str(r, pol, "policy-type", &nomem) : strdup("");
	p->policy_domain = pol ? opt_str(r, pol, "policy-domain", &nomem) : NULL;
	if (nomem || p->policy_type == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (p->policy_domain == NULL) {
		p->policy_domain = strdup(fallback ? fallback : "");
		p->domain_from_fallback = true;
		if (p->policy_domain == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		warn(r, "%s: policy-domain missing, used \"%s\"", where, p->policy_domain);
	}
	if (pol) {
		v = NULL;
		json_object_object_get_ex(pol, "policy-string", &v);
		if (string_list(r, v, "policy-string", false, &p->policy_string, &p->nstrings,
				err, errsz) != 0)
			return -1;
		v = NULL;
		json_object_object_get_ex(pol, "mx-host", &v);
		if (string_list(r, v, "mx-host", true, &p->mx_host, &p->nmx, err, errsz) != 0)
			return -1;
	}
	if (!json_object_object_get_ex(o, "summary", &sum) ||
	    !json_object_is_type(sum, json_type_object)) {
		warn(r, "%s: summary missing, counts taken as 0", where);
	} else {
		char w[64];

		snprintf(w, sizeof(w), "%s.summary", where);
		if (get_count(r, sum, "total-successful-session-count", w, &p->success, err, errsz) ||
		    get_count(r, sum, "total-failure-session-count", w, &p->failure, err, errsz))
			return -1;
	}
	if (!json_object_object_get_ex(o, "failure-details", &fd) || fd == NULL)
		fd = NULL;
	else if (!json_object_is_type(fd, json_type_array)) {
		warn(r, "%s: failure-details is not an array: ignored", where);
		fd = NULL;
	}
	n = fd ? json_object_array_length(fd) : 0;
	if (n > RPT_MAX_DETAILS) {
		snprintf(err, errsz, "%s: more than %d failure-details", where, RPT_MAX_DETAILS);
		return -1;
	}
	if (n) {
		p->details = calloc(n, sizeof(*p->details));
		if (p->details == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
	}
	for (size_t i = 0; i < n; i++) {
		p->ndetails++;
		if (parse_detail(r, json_object_array_get_idx(fd, i), pi, i, &p->details[i],
				 err, errsz) != 0)
			return -1;
		rows += p->details[i].failed_session_count;
	}
	if (n && rows != p->failure)
		warn(r, "%s: failure-details sum to %lld, total-failure-session-count is %lld",
		     where, (long long)rows, (long long)p->failure);
	else if (n == 0 && p->failure > 0)
		warn(r, "%s: %lld failures without failure-details", where, (long long)p->failure);
	return 0;
}

static int parse_report(struct rpt_report *r, struct json_object *root, const char *fallback,
			char *err, size_t errsz)
{
	struct json_object *dr, *v, *pols;
	char fb[256] = "";
	bool nomem = false;
	size_t n;

	if (!json_object_is_type(root, json_type_object)) {
		snprintf(err, errsz, "the report is not a JSON object");
		return -1;
	}
	r->organization_name = req_str(r, root, "organization-name", &nomem);
	r->contact_info = opt_str(r, root, "contact-info", &nomem);
	r->report_id = req_str(r, root, "report-id", &nomem);
	if (nomem) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (r->organization_name[0] == '\0')
		warn(r, "organization-name missing");
	if (r->report_id[0] == '\0')
		warn(r, "report-id missing");
	if (!json_object_object_get_ex(root, "date-range", &dr) ||
	    !json_object_is_type(dr, json_type_object)) {
		snprintf(err, errsz, "date-range missing");
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		const char *key = i ? "end-datetime" : "start-datetime";
		int64_t *t = i ? &r->end : &r->start;
		const char *s;

		if (!json_object_object_get_ex(dr, key, &v) || !json_object_is_type(v, json_type_string)) {
			snprintf(err, errsz, "date-range.%s missing", key);
			return -1;
		}
		s = json_object_get_string(v);
		if (rpt_parse_time(s, t) != 0) {
			snprintf(err, errsz, "date-range.%s is not an RFC 3339 date-time", key);
			return -1;
		}
		if (strpbrk(s + 19, "Zz+-") == NULL)
			warn(r, "date-range.%s without time zone, taken as UTC", key);
	}
	if (r->start > r->end)
		warn(r, "date-range: start after end");
	if (!json_object_object_get_ex(root, "policies", &pols) ||
	    !json_object_is_type(pols, json_type_array)) {
		snprintf(err, errsz, "policies missing or not an array");
		return -1;
	}
	/* The fallback policy domain: the caller's, else the report-id's tail
	 * ("..._example.com" Google/sys4, "...+example.com" Microsoft). */
	if (fallback && fallback[0])
		snprintf(fb, sizeof(fb), "%s", fallback);
	else {
		const char *a = strrchr(r->report_id, '_'), *b = strrchr(r->report_id, '+');
		const char *t = a > b ? a : b;

		if (t && looks_like_domain(t + 1) && strlen(t + 1) < sizeof(fb))
			snprintf(fb, sizeof(fb), "%s", t + 1);
	}
	n = json_object_array_length(pols);
	if (n > RPT_MAX_POLICIES) {
		snprintf(err, errsz, "more than %d policies", RPT_MAX_POLICIES);
		return -1;
	}
	if (n == 0)
		warn(r, "policies is empty");
	r->policies = calloc(n ? n : 1, sizeof(*r->policies));
	if (r->policies == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		r->npolicies++;
		if (parse_policy(r, json_object_array_get_idx(pols, i), i, fb,
				 &r->policies[i], err, errsz) != 0)
			return -1;
	}
	return 0;
}

int rpt_parse_json(const char *json, size_t len, const char *fallback_domain,
		   struct rpt_report **out, char *err, size_t errsz)
{
	struct json_tokener *tok;
	struct json_object *root;
	struct rpt_report *r;
	size_t good, end;
	enum json_tokener_error je;

	*out = NULL;
	if (len >= 3 && memcmp(json, "\xef\xbb\xbf", 3) == 0) {	/* BOM */
		json += 3;
		len -= 3;
	}
	if (len > 0x7fffffff) {
		snprintf(err, errsz, "report too large");
		return -1;
	}
	good = utf8_valid((const unsigned char *)json, len);
	if (good != len) {
		snprintf(err, errsz, "report is not valid UTF-8 (bad byte 0x%02x at offset %zu)",
			 (unsigned char)json[good], good);
		return -1;
	}
	tok = json_tokener_new_ex(RPT_JSON_DEPTH);
	if (tok == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	root = json_tokener_parse_ex(tok, json, (int)len);
	je = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (root == NULL || je != json_tokener_success) {
		json_object_put(root);
		snprintf(err, errsz, "report is not valid JSON: %s",
			 je == json_tokener_continue ? "unexpected end of input"
			 : json_tokener_error_desc(je));
		return -1;
	}
	while (end < len && isspace((unsigned char)json[end]))
		end++;
	if (end != len) {
		json_object_put(root);
		snprintf(err, errsz, "report is not valid JSON: data after the object");
		return -1;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		json_object_put(root);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (parse_report(r, root, fallback_domain, err, errsz) != 0) {
		json_object_put(root);
		rpt_free(r);
		return -1;
	}
	json_object_put(root);
	*out = r;
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
	if (rpt_decompress(data, len, max_out, &json, &jlen, NULL, err, errsz) != 0)
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
