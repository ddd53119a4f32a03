/*
 * buf - a growable byte buffer with a hard maximum size.
 *
 * All generated text (JSON, MIME, log lines, file images) is built in a buf.
 * An append that would pass 'max' fails, sets the sticky 'overflow' flag and
 * leaves the content as it was, so a caller can check once at the end.
 * The content is always NUL terminated (the NUL is not counted in len).
 *
 * Not thread safe: one owner at a time.
 */
#ifndef TLSRPT_BUF_H
#define TLSRPT_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;		/* NUL terminated; NULL until first append */
	size_t len;
	size_t cap;
	size_t max;		/* hard limit for len */
	bool overflow;		/* an append was refused (limit or ENOMEM) */
};

/* An empty buffer limited to 'max' bytes. Never fails (allocates lazily). */
void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
/* Forget the content, keep the memory and the limit; clears overflow. */
void buf_reset(struct buf *b);

/* Append; return 0 on success, -1 (and set overflow) when refused. */
int buf_add(struct buf *b, const void *data, size_t len);
int buf_adds(struct buf *b, const char *s);
int buf_addc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Take ownership of the data (caller frees); the buf becomes empty. */
char *buf_steal(struct buf *b, size_t *len);

#endif
