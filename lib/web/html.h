/*
 * html - make untrusted text inert in generated web pages.
 *
 * Every string that comes from a received report, a spool entry or any
 * other input goes into a page through one of these functions, chosen by
 * where it lands:
 *
 *   html_text      element content and double-quoted attribute values:
 *                  & < > " ' become character references
 *   html_json      a JSON text inside <script type="application/json">:
 *                  < > & become \u003c \u003e \u0026 and U+2028/U+2029
 *                  \u2028/\u2029, so "</script>" or "<!--" can never end
 *                  or change the script element (JSON strings only hold
 *                  these characters inside strings, where the escapes mean
 *                  the same)
 *   html_file_name a file name for a page about an untrusted name: only
 *                  [a-z0-9._-], never starting with '.', cut, and a hash of
 *                  the whole name appended, so that different names never
 *                  share a file and no name can climb out of the directory
 *
 * Bytes that are not valid UTF-8, and C0 control characters other than
 * tab, newline and carriage return (which HTML forbids), become U+FFFD.
 * Output goes to a struct buf (buf.h), so its limit bounds the page.
 *
 * Thread safety: no shared state.
 */
#ifndef TLSRPT_HTML_H
#define TLSRPT_HTML_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Append 's' (NULL: nothing) escaped for element content or a
 * double-quoted attribute value. */
void html_text(struct buf *b, const char *s);

/* Append the JSON text 'json' made safe inside a <script> element. */
void html_json(struct buf *b, const char *json);

/* Length of the valid UTF-8 sequence at NUL-terminated 's' (1-4, '*cp'
 * its code point), or 0 if the bytes there are not one (overlong forms,
 * surrogates and code points past U+10FFFF are invalid). */
size_t html_utf8_len(const unsigned char *s, uint32_t *cp);

#define HTML_FILE_NAME_MAX 96	/* bytes, with the NUL */

/* The file name (without directory or extension) for 'name' (NULL is ""):
 * up to 64 bytes of [a-z0-9._-] taken from the lower-cased name, then '-'
 * and 16 hex digits of SHA-256 of 'name' as given. 'out' must hold
 * HTML_FILE_NAME_MAX bytes. */
void html_file_name(const char *name, char *out);

#endif
