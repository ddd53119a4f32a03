/*
 * test_unpack - the report inside a file by its magic bytes: gzip (one or
 * several members, truncated, corrupt, a bomb against the limit), zip
 * (stored and deflated entries, the JSON entry preferred, truncated, CRC
 * mismatch, a bomb) and plain JSON over the limit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "buf.h"
#include "check.h"
#include "unpack.h"

/* ---------- compression ---------- */

/* gzip (wbits 31) or raw deflate (-15) of 'in' into a malloc'd buffer. */
static unsigned char *deflate_buf(const void *in, size_t len, int wbits, size_t *outlen)
{
	z_stream zs;
	size_t cap = len + len / 100 + 1024;
	unsigned char *out = malloc(cap);

	memset(&zs, 0, sizeof(zs));
	deflateInit2(&zs, 9, Z_DEFLATED, wbits, 9, Z_DEFAULT_STRATEGY);
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	deflate(&zs, Z_FINISH);
	*outlen = cap - zs.avail_out;
	deflateEnd(&zs);
	return out;
}

static void put16(struct buf *b, unsigned v)
{
	buf_addc(b, (char)(v & 255));
	buf_addc(b, (char)(v >> 8 & 255));
}

static void put32(struct buf *b, unsigned long v)
{
	put16(b, (unsigned)(v & 0xffff));
	put16(b, (unsigned)(v >> 16 & 0xffff));
}

/* A zip with entries (name, content, method 0 or 8). */
static void make_zip(struct buf *b, size_t n, const char *const *names,
		     const char *const *data, const size_t *dlen, const int *method)
{
	size_t offs[8], cd;

	for (size_t i = 0; i < n; i++) {
		size_t clen = dlen[i];
		unsigned char *c = NULL;
		unsigned long crc = crc32(0, (const Bytef *)data[i], (uInt)dlen[i]);

		if (method[i] == 8)
			c = deflate_buf(data[i], dlen[i], -15, &clen);
		offs[i] = b->len;
		put32(b, 0x04034b50);
		put16(b, 20);
		put16(b, 0);
		put16(b, (unsigned)method[i]);
		put32(b, 0);
		put32(b, crc);
		put32(b, clen);
		put32(b, dlen[i]);
		put16(b, (unsigned)strlen(names[i]));
		put16(b, 0);
		buf_adds(b, names[i]);
		buf_add(b, c ? (const void *)c : (const void *)data[i], clen);
		free(c);
	}
	cd = b->len;
	for (size_t i = 0; i < n; i++) {
		size_t clen = dlen[i];
		unsigned char *c = NULL;

		if (method[i] == 8) {
			c = deflate_buf(data[i], dlen[i], -15, &clen);
			free(c);
		}
		put32(b, 0x02014b50);
		put16(b, 20);
		put16(b, 20);
		put16(b, 0);
		put16(b, (unsigned)method[i]);
		put32(b, 0);
		put32(b, crc32(0, (const Bytef *)data[i], (uInt)dlen[i]));
		put32(b, clen);
		put32(b, dlen[i]);
		put16(b, (unsigned)strlen(names[i]));
		put16(b, 0);
		put16(b, 0);
		put16(b, 0);
		put16(b, 0);
		put32(b, 0);
		put32(b, offs[i]);
		buf_adds(b, names[i]);
	}
	put32(b, 0x06054b50);
	put16(b, 0);
	put16(b, 0);
	put16(b, (unsigned)n);
	put16(b, (unsigned)n);
	put32(b, b->len - cd - 0);
	put32(b, cd);
	put16(b, 0);
}

static void test_decompress(void)
{
	const char *json = "{\"organization-name\":\"O\",\"report-id\":\"r1\",\"policies\":[]}";
	size_t jlen = strlen(json), glen, glen2, outlen;
	unsigned char *gz = deflate_buf(json, jlen, 31, &glen), *out = NULL;
	unsigned char *gz2 = deflate_buf(json + 10, jlen - 10, 31, &glen2), *gz1;
	char err[256];
	enum unpack_format fmt;
	struct buf z;
	char *zeros;
	unsigned char *bomb;
	size_t blen;

	/* plain gzip */
	CHECK_INT(unpack_report(gz, glen, 1 << 20, &out, &outlen, &fmt, err, sizeof(err)), 0);
	CHECK_INT(fmt, UNPACK_GZIP);
	CHECK(outlen == jlen && memcmp(out, json, jlen) == 0, "gzip: got %zu bytes, want %zu", outlen, jlen);
	free(out);
	/* two members: first 10 bytes, then the rest */
	gz1 = deflate_buf(json, 10, 31, &blen);
	{
		struct buf two;

		buf_init(&two, 1 << 20);
		buf_add(&two, gz1, blen);
		buf_add(&two, gz2, glen2);
		CHECK_INT(unpack_report((unsigned char *)two.data, two.len, 1 << 20, &out, &outlen,
					 NULL, err, sizeof(err)), 0);
		CHECK(outlen == jlen && memcmp(out, json, jlen) == 0, "multi-member: got %zu bytes", outlen);
		free(out);
		buf_free(&two);
	}
	free(gz1);
	free(gz2);
	/* truncated gzip */
	CHECK_INT(unpack_report(gz, glen - 12, 1 << 20, &out, &outlen, NULL, err, sizeof(err)), -1);
	CHECK(strstr(err, "truncated") != NULL, "truncated gzip: reason \"%s\"", err);
	/* corrupt gzip */
	gz[12] ^= 0xff;
	gz[13] ^= 0xff;
	CHECK_INT(unpack_report(gz, glen, 1 << 20, &out, &outlen, NULL, err, sizeof(err)), -1);
	free(gz);

	/* gzip bomb: 16 MiB of zeros against a 1 MiB limit */
	zeros = calloc(1, 16 << 20);
	bomb = deflate_buf(zeros, 16 << 20, 31, &blen);
	CHECK(blen < 40000, "bomb is %zu bytes compressed", blen);
	CHECK_INT(unpack_report(bomb, blen, 1 << 20, &out, &outlen, NULL, err, sizeof(err)), -1);
	CHECK(strstr(err, "larger than the limit of 1048576 bytes") != NULL, "gzip bomb: reason \"%s\"", err);
	free(bomb);
	/* exactly at the limit is fine */
	bomb = deflate_buf(zeros, 1 << 20, 31, &blen);
	CHECK_INT(unpack_report(bomb, blen, 1 << 20, &out, &outlen, NULL, err, sizeof(err)), 0);
	CHECK_INT(outlen, 1 << 20);
	free(out);
	free(bomb);

	/* zip: a readme first, then the JSON deflated */
	{
		const char *names[] = { "README.txt", "google.com!d!1!2.json" };
		const char *data[] = { "hello", json };
		size_t dl[] = { 5, jlen };
		int meth[] = { 0, 8 };

		buf_init(&z, 1 << 24);
		make_zip(&z, 2, names, data, dl, meth);
		CHECK_INT(unpack_report((unsigned char *)z.data, z.len, 1 << 20, &out, &outlen, &fmt,
					 err, sizeof(err)), 0);
		CHECK_INT(fmt, UNPACK_ZIP);
		CHECK(outlen == jlen && memcmp(out, json, jlen) == 0, "zip deflate: got %zu bytes (%s)", outlen, err);
		free(out);
		/* truncated: no central directory; the first entry is not JSON */
		CHECK_INT(unpack_report((unsigned char *)z.data, z.len - 30, 1 << 20, &out, &outlen, NULL,
					 err, sizeof(err)), 0);
		CHECK(outlen == 5, "truncated zip: first entry got %zu bytes, want 5", outlen);
		free(out);
		CHECK_INT(unpack_report((unsigned char *)z.data, 40, 1 << 20, &out, &outlen, NULL,
					 err, sizeof(err)), -1);
		buf_free(&z);
	}
	/* zip stored */
	{
		const char *names[] = { "r.json" };
		const char *data[] = { json };
		size_t dl[] = { jlen };
		int meth[] = { 0 };

		buf_init(&z, 1 << 24);
		make_zip(&z, 1, names, data, dl, meth);
		CHECK_INT(unpack_report((unsigned char *)z.data, z.len, 1 << 20, &out, &outlen, NULL,
					 err, sizeof(err)), 0);
		CHECK(outlen == jlen, "zip stored: got %zu bytes (%s)", outlen, err);
		free(out);
		/* damage one byte of the stored data: CRC mismatch */
		z.data[30 + 6] ^= 1;
		CHECK_INT(unpack_report((unsigned char *)z.data, z.len, 1 << 20, &out, &outlen, NULL,
					 err, sizeof(err)), -1);
		CHECK(strstr(err, "CRC mismatch") != NULL, "zip crc: reason \"%s\"", err);
		buf_free(&z);
	}
	/* zip bomb: 16 MiB deflated entry, 1 MiB limit */
	{
		const char *names[] = { "bomb.json" };
		const char *data[] = { zeros };
		size_t dl[] = { 16 << 20 };
		int meth[] = { 8 };

		buf_init(&z, 1 << 24);
		make_zip(&z, 1, names, data, dl, meth);
		CHECK_INT(unpack_report((unsigned char *)z.data, z.len, 1 << 20, &out, &outlen, NULL,
					 err, sizeof(err)), -1);
		CHECK(strstr(err, "larger than the limit") != NULL, "zip bomb: reason \"%s\"", err);
		buf_free(&z);
	}
	free(zeros);
	/* plain JSON over the limit */
	CHECK_INT(unpack_report((const unsigned char *)json, jlen, 10, &out, &outlen, NULL, err, sizeof(err)), -1);
}

int main(void)
{
	test_decompress();
	return check_done("test_unpack");
}
