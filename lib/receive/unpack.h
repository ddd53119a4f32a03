/*
 * unpack - the report inside a received file or mail part, decided by its
 * magic bytes: gzip (also several members), zip (stored or deflate; the
 * first entry whose name ends in .json, else the first file entry) or
 * plain JSON, with a hard limit on the output: a decompression bomb stops
 * at 'max_out' with an error, and no more than max_out + 2 bytes are ever
 * allocated for the output.
 *
 * Thread safety: no shared state.
 */
#ifndef TLSRPT_UNPACK_H
#define TLSRPT_UNPACK_H

#include <stddef.h>

enum unpack_format { UNPACK_JSON = 1, UNPACK_GZIP, UNPACK_ZIP };

/* The format by the magic bytes: gzip 1f 8b, zip "PK\3\4", else JSON. */
enum unpack_format unpack_format_of(const unsigned char *in, size_t len);

/*
 * Decompress 'in' by its magic bytes into a malloc'd, NUL-terminated
 * '*out' of at most 'max_out' bytes. Plain JSON is copied. Returns 0, or -1
 * with a reason in 'err' (truncated or corrupt data, over the limit, no
 * usable zip entry, ENOMEM). '*fmt' (may be NULL) gets the format found.
 */
int unpack_report(const unsigned char *in, size_t len, size_t max_out,
		  unsigned char **out, size_t *outlen, enum unpack_format *fmt,
		  char *err, size_t errsz);

#endif
