/*
 * unpack - the report inside a received file or mail part, by its magic
 * bytes: gzip, zip or plain JSON, with a hard limit on the output. See
 * unpack.h.
 *
 * SECURITY: the input is untrusted. Output grows in chunks and never past
 * the caller's limit plus one byte (a decompression bomb stops there);
 * every zip header field is checked against the input length before use.
 */
#include "unpack.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define CHUNK (64 * 1024)

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

enum unpack_format unpack_format_of(const unsigned char *in, size_t len)
{
	if (len >= 2 && in[0] == 0x1f && in[1] == 0x8b)
		return UNPACK_GZIP;
	if (len >= 4 && memcmp(in, "PK\3\4", 4) == 0)
		return UNPACK_ZIP;
	return UNPACK_JSON;
}

int unpack_report(const unsigned char *in, size_t len, size_t max_out,
		   unsigned char **out, size_t *outlen, enum unpack_format *fmt,
		   char *err, size_t errsz)
{
	enum unpack_format f = unpack_format_of(in, len);
	int rc;

	*out = NULL;
	*outlen = 0;
	if (f == UNPACK_GZIP) {
		rc = inflate_bounded(in, len, 15 + 16, max_out, out, outlen, err, errsz);
	} else if (f == UNPACK_ZIP) {
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

