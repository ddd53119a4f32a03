/*
 * termesc - text from outside made harmless for a terminal. See termesc.h.
 *
 * SECURITY: this is the last step before untrusted text reaches an
 * operator's terminal; it decodes UTF-8 strictly (no overlong forms, no
 * surrogates) and escapes everything that is not plainly printable.
 */
#include "termesc.h"
#include "fsio.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Is this code point one that changes what a terminal shows? */
static bool unsafe_cp(uint32_t cp, bool keep_lines)
{
	if (cp < 0x20)
		return !(keep_lines && (cp == '\n' || cp == '\t'));
	if (cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
		return true;
	return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

bool termesc_unsafe(uint32_t cp)
{
	return cp != '\n' && cp != '\t' && unsafe_cp(cp, true);
}

/*
 * The character at s: its length (1-4) and code point. Returns 0 for a
 * byte that does not start a valid sequence, -1 for a valid but incomplete
 * sequence at the end of the input.
 */
static int next_char(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if (i >= len)
			return -1;
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
		/* reject overlong and out-of-range forms as early as possible */
		if (i == 1 && ((n == 3 && v < 0x20) || (n == 3 && v >= 0x360 && v <= 0x37f) ||
			       (n == 4 && (v < 0x10 || v > 0x10f))))
			return 0;
	}
	*cp = v;
	return (int)n;
}

int termesc_buf(struct buf *b, const char *s, size_t len, bool keep_lines, bool partial,
		size_t *used)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = 0;

	while (i < len) {
		uint32_t cp = 0;
		int n = next_char(p + i, len - i, &cp);

		if (n < 0 && partial)
			break;
		if (n > 0 && !unsafe_cp(cp, keep_lines) && (keep_lines || cp != '\\')) {
			i += (size_t)n;
			continue;
		}
		buf_add(b, p + start, i - start);
		if (n <= 0)
			buf_adds(b, "\\ufffd");	/* not UTF-8 (or cut off) */
		else if (cp == '\\')
			buf_adds(b, "\\\\");
		else
			buf_printf(b, "\\u%04x", (unsigned)cp);
		i += n > 0 ? (size_t)n : 1;
		start = i;
	}
	buf_add(b, p + start, i - start);
	if (used)
		*used = i;
	return b->overflow ? -1 : 0;
}

bool termesc_clean(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		int n = next_char(p + i, len - i, &cp);

		if (n <= 0 || unsafe_cp(cp, false) || cp == '\\')
			return false;
		i += (size_t)n;
	}
	return true;
}

const char *termesc(const char *s)
{
	static _Thread_local struct buf slots[TERMESC_SLOTS];
	static _Thread_local unsigned next;
	struct buf *b;

	if (s == NULL)
		return "(null)";
	if (termesc_clean(s, strlen(s)))
		return s;
	b = &slots[next++ % TERMESC_SLOTS];
	if (b->max == 0)
		buf_init(b, 1 << 26);
	buf_reset(b);
	if (termesc_buf(b, s, strlen(s), false, false, NULL) != 0 || b->data == NULL)
		return "(out of memory)";
	return b->data;
}

/* ---------- the stream filter ---------- */

struct filter {
	bool used;
	int fd;
	unsigned char pending[4];	/* an incomplete UTF-8 sequence */
	size_t npending;
};

static ssize_t filter_write(void *cookie, const char *data, size_t size)
{
	struct filter *f = cookie;
	const char *in = data;
	char *joined = NULL;
	size_t n = size, used = 0;
	struct buf b;
	int rc;

	if (f->npending) {	/* the sequence cut at the end of the last write */
		joined = malloc(f->npending + size);
		if (joined == NULL)
			return -1;
		memcpy(joined, f->pending, f->npending);
		memcpy(joined + f->npending, data, size);
		in = joined;
		n = f->npending + size;
		f->npending = 0;
	}
	buf_init(&b, 6 * n + 64);	/* at most 6 bytes out per byte in */
	termesc_buf(&b, in, n, true, true, &used);
	if (used < n) {		/* at most 3 bytes of a valid beginning */
		f->npending = n - used;
		memcpy(f->pending, in + used, f->npending);
	}
	rc = b.overflow ? -1 : fsio_write_all(f->fd, b.data ? b.data : "", b.len);
	buf_free(&b);
	free(joined);
	return rc < 0 ? -1 : (ssize_t)size;
}

static int filter_close(void *cookie)
{
	struct filter *f = cookie;
	int rc = 0;

	if (f->npending)	/* cut off for good */
		rc = fsio_write_all(f->fd, "\\ufffd", 6);
	memset(f, 0, sizeof(*f));	/* the slot is free again */
	return rc;
}

int termesc_stream(FILE **fp)
{
	/* static: the streams live until exit, which flushes but does not
	 * close them; nothing to free (or for a leak checker to find) */
	static struct filter filters[4];
	cookie_io_functions_t io = { .write = filter_write, .close = filter_close };
	struct filter *f = NULL;
	FILE *nf;

	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]) && f == NULL; i++)
		if (!filters[i].used)
			f = &filters[i];
	if (f == NULL)
		return -1;
	fflush(*fp);
	f->fd = fileno(*fp);
	if (f->fd < 0 || (nf = fopencookie(f, "w", io)) == NULL) {
		memset(f, 0, sizeof(*f));
		return -1;
	}
	f->used = true;
	setvbuf(nf, NULL, *fp == stderr ? _IONBF : isatty(f->fd) ? _IOLBF : _IOFBF, 0);
	*fp = nf;
	return 0;
}
