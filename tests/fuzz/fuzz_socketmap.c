/*
 * fuzz_socketmap - the socketmap request framing: the input is a byte
 * stream as a connection delivers it, parsed the way tlsrpt-policyd does
 * (append, parse all complete requests, keep the rest), in two chunk sizes;
 * every request is split and answered.
 */
#include <stdint.h>
#include <string.h>

#include "socketmap.h"

static void run(const uint8_t *data, size_t size, size_t chunk)
{
	static char acc[SOCKETMAP_MAX_QUERY + 64];
	size_t alen = 0, off = 0;
	struct buf out;

	buf_init(&out, SOCKETMAP_MAX_REPLY + 64);
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (n > sizeof(acc) - alen)
			n = sizeof(acc) - alen;
		memcpy(acc + alen, data + off, n);
		alen += n;
		off += n;
		for (;;) {
			const char *p, *name, *key, *why;
			size_t plen, used, nl, kl;
			enum socketmap_status s = socketmap_parse(acc, alen, SOCKETMAP_MAX_QUERY,
								  &p, &plen, &used, &why);

			if (s == SOCKETMAP_BAD) {
				buf_free(&out);
				return;
			}
			if (s == SOCKETMAP_MORE)
				break;
			if (socketmap_split(p, plen, &name, &nl, &key, &kl) == 0)
				socketmap_reply(&out, "OK", key, kl);
			else
				socketmap_reply(&out, "PERM", "bad request", 11);
			memmove(acc, acc + used, alen - used);
			alen -= used;
		}
		if (alen == sizeof(acc))
			break;
	}
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size, 1);
	run(data, size, 4096);
	return 0;
}
