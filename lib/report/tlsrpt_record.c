/*
 * tlsrpt_record - strict, bounded parser of RFC 8460 section 3 records.
 * See tlsrpt_record.h.
 *
 * SECURITY: the input comes from DNS (or from a datagram that copied it from
 * DNS) and is untrusted. The parser works on (pointer, length), never reads
 * past 'len', never recurses, and copies only bounded pieces. Diagnostics
 * quote the input through log_printable, so they are safe to print.
 *
 * Choices beyond the ABNF:
 *   - Diagnostics are either errors (the record is not usable: ok = false)
 *     or start with "warning: " (a destination skipped, the record still
 *     usable). A record whose only problems are warnings but that has no
 *     usable destination gets a final error.
 *   - mailto: URIs are percent-decoded completely (the address is what we
 *     send to); https: URIs get only %2C %21 %3B decoded (the characters
 *     RFC 8460 forces to be encoded) so that the URL stays a valid URL.
 *   - Identical destinations (after decoding) are kept once.
 */
#include "tlsrpt_record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define VERSION "v=TLSRPTv1"
#define VERSION_LEN (sizeof(VERSION) - 1)

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Add one diagnostic; the last slot says that more were dropped. */
static int diag(struct tlsrpt_record *rec, bool error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int diag(struct tlsrpt_record *rec, bool error, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int off = 0;

	if (error)
		rec->ok = false;
	if (rec->ndiag >= TLSRPT_MAX_DIAG)
		return 0;
	if (rec->ndiag == TLSRPT_MAX_DIAG - 1) {
		rec->diag[rec->ndiag] = strdup("more problems not shown");
		if (rec->diag[rec->ndiag] == NULL)
			return -1;
		rec->ndiag++;
		return 0;
	}
	if (!error)
		off = snprintf(line, sizeof(line), "warning: ");
	va_start(ap, fmt);
	vsnprintf(line + off, sizeof(line) - (size_t)off, fmt, ap);
	va_end(ap);
	rec->diag[rec->ndiag] = strdup(line);
	if (rec->diag[rec->ndiag] == NULL)
		return -1;
	rec->ndiag++;
	return 0;
}

/* Printable quote of untrusted text for a diagnostic. */
static const char *q(char *out, size_t outsz, const char *s, size_t len)
{
	return log_printable(out, outsz, s, len);
}

bool tlsrpt_record_is_candidate(const char *s, size_t len)
{
	if (s == NULL || len <= VERSION_LEN || memcmp(s, VERSION, VERSION_LEN) != 0)
		return false;
	return s[VERSION_LEN] == ';' || is_wsp(s[VERSION_LEN]);
}

void tlsrpt_record_free(struct tlsrpt_record *rec)
{
	if (rec == NULL)
		return;
	for (size_t i = 0; i < rec->nrua; i++) {
		free(rec->rua[i].uri);
		free(rec->rua[i].address);
	}
	for (size_t i = 0; i < rec->ndiag; i++)
		free(rec->diag[i]);
	memset(rec, 0, sizeof(*rec));
}

/* RFC 3986 characters allowed literally in a URI (besides '%'). */
static bool uri_char(char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	return strchr("-._~:/?#[]@$&'()*+=", c) != NULL && c != '\0';
}

/*
 * Percent-decode 's' (already checked for well-formed escapes). With
 * 'only_tlsrpt', only %2C %21 %3B are decoded. NULL on ENOMEM.
 */
static char *pct_decode(const char *s, size_t len, bool only_tlsrpt)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len) {
			int v = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);

			if (!only_tlsrpt || v == ',' || v == '!' || v == ';') {
				out[o++] = (char)v;
				i += 2;
				continue;
			}
		}
		out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* addr-spec check of a decoded mailto address (dot-atom local part,
 * LDH domain); returns NULL or a reason. */
static const char *check_address(const char *a)
{
	const char *at = strrchr(a, '@');
	size_t llen, dlen;
	const char *d;

	if (at == NULL)
		return "has no '@'";
	llen = (size_t)(at - a);
	d = at + 1;
	dlen = strlen(d);
	if (llen == 0 || llen > 64)
		return "has an empty or too long local part";
	if (dlen == 0 || dlen > 253)
		return "has an empty or too long domain";
	for (size_t i = 0; i < llen; i++) {
		char c = a[i];
		if (!(is_alpha(c) || is_digit(c) || strchr("!#$%&'*+/=?^_`{|}~-.", c)))
			return "local part is not a dot-atom (one address only, no spaces, quotes, <> or ',')";
	}
	if (a[0] == '.' || a[llen - 1] == '.' || memmem(a, llen, "..", 2))
		return "local part has a misplaced '.'";
	if (d[0] == '.' || d[0] == '-' || d[dlen - 1] == '.' || strstr(d, ".."))
		return "domain has a misplaced '.' or '-'";
	for (size_t i = 0; i < dlen; i++) {
		char c = d[i];
		if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '.'))
			return "domain is not a host name (A-labels: letters, digits, '-', '.')";
	}
	return NULL;
}

/* Check an https URI: "https://" authority with a non-empty host. */
static const char *check_https(const char *u)
{
	const char *h, *e, *at, *p;

	if (strncasecmp(u, "https://", 8) != 0)
		return "must start with https://";
	h = u + 8;
	e = h + strcspn(h, "/?#");
	at = memchr(h, '@', (size_t)(e - h));
	if (at)
		h = at + 1;
	if (h == e)
		return "has no host";
	if (*h == '[') {
		p = memchr(h, ']', (size_t)(e - h));
		if (p == NULL)
			return "has an unterminated IPv6 literal";
		return NULL;
	}
	p = memchr(h, ':', (size_t)(e - h));
	if (p == h)
		return "has no host";
	if (p) {
		if (p + 1 == e)
			return "has an empty port";
		for (const char *c = p + 1; c < e; c++)
			if (!is_digit(*c))
				return "has a non-numeric port";
	}
	return NULL;
}

static bool rua_seen(const struct tlsrpt_record *rec, const char *uri)
{
	for (size_t i = 0; i < rec->nrua; i++)
		if (strcmp(rec->rua[i].uri, uri) == 0)
			return true;
	return false;
}

/* One URI of a rua list (trimmed, non-empty). -1 on ENOMEM. */
static int parse_uri(struct tlsrpt_record *rec, const char *s, size_t len,
		     bool *too_many)
{
	char qs[200];
	size_t slen;
	const char *why;
	char *uri, *addr = NULL;
	enum rua_scheme scheme;

	q(qs, sizeof(qs), s, len);
	/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
	slen = 0;
	if (len && is_alpha(s[0]))
		for (slen = 1; slen < len && (is_alpha(s[slen]) || is_digit(s[slen]) ||
					     s[slen] == '+' || s[slen] == '-' || s[slen] == '.'); slen++)
			;
	if (slen == 0 || slen >= len || s[slen] != ':')
		return diag(rec, true, "URI \"%s\" has no scheme (a bare address, or an unencoded ',' inside a URI?)", qs);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '!')
			return diag(rec, true, "URI \"%s\": '!' must be percent-encoded (%%21)", qs);
		if (c == ' ' || c == '\t')
			return diag(rec, true, "URI \"%s\" contains a space (use ',' between URIs)", qs);
		if (c == '%') {
			if (i + 2 >= len || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				return diag(rec, true, "URI \"%s\": bad percent-encoding at offset %zu", qs, i);
			int v = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
			if (v < 0x20 || v == 0x7f)
				return diag(rec, true, "URI \"%s\": percent-encoded control character at offset %zu", qs, i);
			i += 2;
			continue;
		}
		if (!uri_char(c))
			return diag(rec, true, "URI \"%s\": character '%s' is not allowed in a URI at offset %zu",
				    qs, q((char[8]){0}, 8, &s[i], 1), i);
	}
	if (slen == 6 && strncasecmp(s, "mailto", 6) == 0) {
		scheme = RUA_MAILTO;
	} else if (slen == 5 && strncasecmp(s, "https", 5) == 0) {
		scheme = RUA_HTTPS;
	} else {
		return diag(rec, false, "skipped \"%s\": only mailto: and https: are supported", qs);
	}
	if (scheme == RUA_MAILTO) {
		const char *p = s + 7, *e = s + len;
		const char *qm = memchr(p, '?', (size_t)(e - p));

		if (qm)
			e = qm;
		if (p == e)
			return diag(rec, true, "URI \"%s\": mailto: without an address", qs);
		addr = pct_decode(p, (size_t)(e - p), false);
		if (addr == NULL)
			return -1;
		why = check_address(addr);
		if (why) {
			free(addr);
			return diag(rec, true, "URI \"%s\": address %s", qs, why);
		}
		uri = pct_decode(s, len, false);
	} else {
		uri = pct_decode(s, len, true);
		if (uri && (why = check_https(uri)) != NULL) {
			free(uri);
			return diag(rec, true, "URI \"%s\" %s", qs, why);
		}
	}
	if (uri == NULL) {
		free(addr);
		return -1;
	}
	if (rua_seen(rec, uri)) {
		free(uri);
		free(addr);
		return 0;
	}
	if (rec->nrua >= TLSRPT_MAX_RUA) {
		free(uri);
		free(addr);
		if (!*too_many) {
			*too_many = true;
			return diag(rec, false, "more than %d destinations; the rest are ignored", TLSRPT_MAX_RUA);
		}
		return 0;
	}
	rec->rua[rec->nrua].scheme = scheme;
	rec->rua[rec->nrua].uri = uri;
	rec->rua[rec->nrua].address = addr;
	rec->nrua++;
	return 0;
}

/* The value of one rua= field. */
static int parse_rua(struct tlsrpt_record *rec, const char *v, size_t len, bool *too_many)
{
	const char *p = v, *e = v + len;

	if (len == 0)
		return diag(rec, true, "rua= has no URI");
	while (p <= e) {
		const char *c = memchr(p, ',', (size_t)(e - p));
		const char *s = p, *ue = c ? c : e;

		while (s < ue && is_wsp(*s))
			s++;
		while (ue > s && is_wsp(ue[-1]))
			ue--;
		if (s == ue) {
			if (diag(rec, true, "empty URI in rua= (stray ',')") < 0)
				return -1;
		} else if (parse_uri(rec, s, (size_t)(ue - s), too_many) < 0) {
			return -1;
		}
		if (c == NULL)
			break;
		p = c + 1;
	}
	return 0;
}

/* One field (already trimmed of surrounding WSP, non-empty). */
static int parse_field(struct tlsrpt_record *rec, const char *f, size_t len,
		       bool *have_rua, bool *too_many)
{
	const char *eq = memchr(f, '=', len);
	char qs[200];
	size_t nlen, vlen;
	const char *v;

	q(qs, sizeof(qs), f, len);
	if (eq == NULL)
		return diag(rec, true, "field \"%s\" has no '=' (an unencoded ';' inside a URI?)", qs);
	nlen = (size_t)(eq - f);
	v = eq + 1;
	vlen = len - nlen - 1;
	if (nlen == 0)
		return diag(rec, true, "field \"%s\" has an empty name", qs);
	if (is_wsp(f[nlen - 1]))
		return diag(rec, true, "field \"%s\": no space allowed before '='", qs);
	if (vlen && is_wsp(v[0]))
		return diag(rec, true, "field \"%s\": no space allowed after '='", qs);
	if (nlen == 3 && memcmp(f, "rua", 3) == 0) {
		*have_rua = true;
		return parse_rua(rec, v, vlen, too_many);
	}
	/* tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
	if (nlen > 32)
		return diag(rec, true, "field name \"%s\" is longer than 32 characters",
			    q(qs, sizeof(qs), f, nlen));
	for (size_t i = 0; i < nlen; i++) {
		char c = f[i];
		if (!(is_alpha(c) || is_digit(c) || (i > 0 && (c == '_' || c == '-' || c == '.'))))
			return diag(rec, true, "field name \"%s\" is not a valid name",
				    q(qs, sizeof(qs), f, nlen));
	}
	if (nlen == 3 && strncasecmp(f, "rua", 3) == 0)
		return diag(rec, true, "field \"%s\": the name must be lower-case \"rua\"",
			    q(qs, sizeof(qs), f, nlen));
	if (nlen == 1 && f[0] == 'v')
		return diag(rec, true, "a second v= field");
	/* tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E) */
	if (vlen == 0)
		return diag(rec, true, "field \"%s\" has an empty value", qs);
	for (size_t i = 0; i < vlen; i++)
		if (v[i] == '=' || v[i] == ' ' || v[i] == '\t')
			return diag(rec, true, "field \"%s\": '%c' is not allowed in a value",
				    qs, v[i] == '=' ? '=' : ' ');
	return 0;
}

/* Report a bad start: wrong version, version not first, spaces. */
static int bad_version(struct tlsrpt_record *rec, const char *t, size_t len)
{
	char qs[64];
	const char *semi = memchr(t, ';', len);
	size_t flen = semi ? (size_t)(semi - t) : len;

	q(qs, sizeof(qs), t, flen);
	if (len >= 1 && is_wsp(t[0]))
		return diag(rec, true, "record starts with a space; it must start with \"v=TLSRPTv1\"");
	if (len >= VERSION_LEN && strncasecmp(t, VERSION, VERSION_LEN) == 0 &&
	    (len == VERSION_LEN || t[VERSION_LEN] == ';' || is_wsp(t[VERSION_LEN])))
		return diag(rec, true, "version \"%s\" must be exactly \"v=TLSRPTv1\" (case-sensitive)", qs);
	if (len >= 3 && (t[0] == 'v' || t[0] == 'V') &&
	    (is_wsp(t[1]) || (t[1] == '=' && is_wsp(t[2]))))
		return diag(rec, true, "first field \"%s\" is not \"v=TLSRPTv1\" (no spaces around '=')", qs);
	if (memmem(t, len, VERSION, VERSION_LEN))
		return diag(rec, true, "\"v=TLSRPTv1\" must be the first field, found \"%s\" first", qs);
	return diag(rec, true, "not a TLSRPT record: it must start with \"v=TLSRPTv1\", found \"%s\"", qs);
}

int tlsrpt_record_parse(const char *text, size_t len, struct tlsrpt_record *rec)
{
	const char *p, *e;
	bool have_rua = false, too_many = false, bytes_ok = true;

	memset(rec, 0, sizeof(*rec));
	rec->ok = true;
	if (text == NULL)
		len = 0;
	if (len > TLSRPT_RECORD_MAX) {
		return diag(rec, true, "record too long: %zu bytes, at most %d",
			    len, TLSRPT_RECORD_MAX) < 0 ? -1 : 0;
	}
	if (len == 0)
		return diag(rec, true, "empty record") < 0 ? -1 : 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			if (diag(rec, true, "control character 0x%02x at offset %zu", c, i) < 0)
				return -1;
			bytes_ok = false;
			break;
		}
		if (c >= 0x80) {
			if (diag(rec, true, "non-ASCII byte 0x%02x at offset %zu (URIs and domains must be ASCII)", c, i) < 0)
				return -1;
			bytes_ok = false;
			break;
		}
	}
	if (!bytes_ok)
		return 0;
	/* tlsrpt-version, then *WSP ";" or the end */
	if (len < VERSION_LEN || memcmp(text, VERSION, VERSION_LEN) != 0)
		return bad_version(rec, text, len) < 0 ? -1 : 0;
	p = text + VERSION_LEN;
	e = text + len;
	{
		const char *s = p;

		while (s < e && is_wsp(*s))
			s++;
		if (s == e)
			return diag(rec, true, "no rua= field (the record is only \"v=TLSRPTv1\")") < 0 ? -1 : 0;
		if (*s != ';') {
			char qs[64];
			const char *semi = memchr(text, ';', len);
			size_t n = semi ? (size_t)(semi - text) : len;

			return diag(rec, true, "version \"%s\" must be exactly \"v=TLSRPTv1\" followed by ';'",
				    q(qs, sizeof(qs), text, n)) < 0 ? -1 : 0;
		}
		p = s + 1;
	}
	/* 1*(field-delim tlsrpt-field) [field-delim] */
	for (;;) {
		const char *semi = memchr(p, ';', (size_t)(e - p));
		const char *fs = p, *fe = semi ? semi : e;

		while (fs < fe && is_wsp(*fs))
			fs++;
		while (fe > fs && is_wsp(fe[-1]))
			fe--;
		if (fs == fe) {
			/* only the last one may be empty: a trailing ';' */
			if (semi != NULL && diag(rec, true, "empty field (\";;\")") < 0)
				return -1;
		} else if (parse_field(rec, fs, (size_t)(fe - fs), &have_rua, &too_many) < 0) {
			return -1;
		}
		if (semi == NULL)
			break;
		p = semi + 1;
	}
	if (!have_rua)
		return diag(rec, true, "no rua= field") < 0 ? -1 : 0;
	if (rec->nrua == 0 && rec->ok)
		return diag(rec, true, "no usable mailto: or https: destination") < 0 ? -1 : 0;
	return 0;
}
