/*
 * html - make untrusted text inert in generated web pages. See html.h.
 *
 * SECURITY: these functions are the only way input text reaches a page.
 * Escaping is by allow list of what may stay as it is: everything that
 * could start markup, end an attribute or a script element, or be an
 * invalid byte sequence is replaced.
 */
#include "html.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#define REPLACEMENT "\xef\xbf\xbd"	/* U+FFFD */

size_t html_utf8_len(const unsigned char *s, uint32_t *cp)
{
	uint32_t c;
	size_t n;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

void html_text(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (p && *p) {
		uint32_t cp;
		size_t n = html_utf8_len(p, &cp);

		if (n == 0) {
			buf_adds(b, REPLACEMENT);
			p++;
			continue;
		}
		switch (cp) {
		case '&': buf_adds(b, "&amp;"); break;
		case '<': buf_adds(b, "&lt;"); break;
		case '>': buf_adds(b, "&gt;"); break;
		case '"': buf_adds(b, "&quot;"); break;
		case '\'': buf_adds(b, "&#39;"); break;
		case '`': buf_adds(b, "&#96;"); break;
		default:
			if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f ||
			    (cp >= 0x80 && cp < 0xa0))
				buf_adds(b, REPLACEMENT);
			else
				buf_add(b, p, n);
		}
		p += n;
	}
}

void html_json(struct buf *b, const char *json)
{
	const unsigned char *p = (const unsigned char *)json;

	while (p && *p) {
		uint32_t cp;
		size_t n = html_utf8_len(p, &cp);

		if (n == 0) {
			buf_adds(b, "\\ufffd");	/* only reachable inside a string */
			p++;
			continue;
		}
		switch (cp) {
		case '<': buf_adds(b, "\\u003c"); break;
		case '>': buf_adds(b, "\\u003e"); break;
		case '&': buf_adds(b, "\\u0026"); break;
		case 0x2028: buf_adds(b, "\\u2028"); break;
		case 0x2029: buf_adds(b, "\\u2029"); break;
		default: buf_add(b, p, n);
		}
		p += n;
	}
}

void html_file_name(const char *name, char *out)
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t o = 0;

	if (name == NULL)
		name = "";
	for (const char *p = name; *p && o < 64; p++) {
		char c = (char)tolower((unsigned char)*p);

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    (c == '.' && o > 0))
			out[o++] = c;
		else if (o > 0 && out[o - 1] != '_')
			out[o++] = '_';
	}
	if (o == 0)
		out[o++] = 'x';
	out[o++] = '-';
	memset(md, 0, sizeof(md));
	EVP_Digest(name, strlen(name), md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++) {
		out[o++] = hx[md[i] >> 4];
		out[o++] = hx[md[i] & 15];
	}
	out[o] = '\0';
}
