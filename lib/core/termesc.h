/*
 * termesc - text from outside made harmless for a terminal.
 *
 * Received reports, day files, DNS records, MTA-STS policies and remote
 * SMTP replies carry bytes an attacker chose. Printed raw, ESC and CSI
 * sequences would move the cursor, rewrite earlier lines, change the window
 * title or worse; CR and Unicode direction overrides make a line read as
 * something else. One function decides what is unsafe: C0 controls, DEL,
 * C1 controls (U+0080-U+009F, also 8-bit CSI), the line and paragraph
 * separators and the bidirectional and mark controls (U+061C, U+200E,
 * U+200F, U+2028-U+202E, U+2066-U+2069); each is written as "\uXXXX"
 * (valid inside a JSON string too), a byte that is not UTF-8 as "\ufffd".
 *
 * Two uses of it:
 *   termesc_stream  every byte a program writes to stdout or stderr passes
 *                   through it ('\n' and '\t' kept), so no code path can
 *                   print a control sequence, JSON output stays valid;
 *   termesc         one field of text output ('\n', '\t' and '\\' escaped
 *                   too), so a value can not forge lines either.
 *
 * Thread safety: termesc uses per-thread buffers; termesc_stream is set up
 * once in main().
 */
#ifndef TLSRPT_TERMESC_H
#define TLSRPT_TERMESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"

/*
 * Append 'len' bytes of 's' to 'b', escaped. With 'keep_lines', '\n' and
 * '\t' pass and '\\' is not escaped (the stream filter); without, they are
 * escaped. With 'partial', an incomplete UTF-8 sequence at the very end is
 * not consumed: '*used' (may be NULL) tells how many bytes were. Returns 0,
 * or -1 when 'b' overflowed.
 */
int termesc_buf(struct buf *b, const char *s, size_t len, bool keep_lines, bool partial,
		size_t *used);

/* Is the code point one of the unsafe ones above (newline and tab are
 * not)? For formats with escaping rules of their own (Prometheus labels). */
bool termesc_unsafe(uint32_t cp);

/* True if 's' needs no escaping as a field. */
bool termesc_clean(const char *s, size_t len);

/*
 * An escaped copy of the NUL-terminated 's' for one field of text output
 * ("(null)" for NULL). It stays valid until TERMESC_SLOTS further calls in
 * the same thread, so several may be printed with one printf. Never NULL:
 * "(out of memory)" if a copy can not be made.
 */
#define TERMESC_SLOTS 8
const char *termesc(const char *s);

/*
 * Put the filter in front of '*fp' (stdout or stderr): '*fp' is replaced by
 * a stream whose every byte is escaped (keep_lines) and then written to the
 * original stream's descriptor; buffering follows the original (stderr
 * unbuffered, stdout line buffered on a terminal). The original FILE is
 * left open and no longer used. At most 4 filters are open at once (their
 * state is static: streams that live until exit leave nothing to free).
 * Returns 0, or -1 (and '*fp' unchanged).
 */
int termesc_stream(FILE **fp);

#endif
