/*
 * fuzz_dgram - the datagram parser, and counting what it accepts into a
 * store, must survive any bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dgram.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dgram_parser *p;
	static struct store *s;
	struct dgram d;

	if (p == NULL) {
		char dir[64], err[256];

		p = dgram_parser_new();
		snprintf(dir, sizeof(dir), "/tmp/fuzz_dgram.%d", (int)getpid());
		s = store_open(dir, 1, 1 << 22, 256, err, sizeof(err));
		if (s == NULL) {
			fprintf(stderr, "%s\n", err);
			abort();
		}
	}
	if (dgram_parse(p, (const char *)data, size, &d, NULL) == DGRAM_OK)
		for (size_t i = 0; i < d.npolicies; i++)
			store_add(s, d.d, d.pr, &d.policies[i]);
	return 0;
}
