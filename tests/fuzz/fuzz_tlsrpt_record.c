/*
 * fuzz_tlsrpt_record - the TLSRPT TXT record parser on arbitrary bytes.
 * Checks the invariants the reporter relies on: ok implies at least one
 * destination, every destination has a supported scheme and a URI, mailto
 * destinations have an address, and the counts stay within their bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlsrpt_record r;
	char *copy = malloc(size ? size : 1);

	if (copy == NULL)
		return 0;
	if (size)
		memcpy(copy, data, size);	/* exact length, no NUL: catches overreads */
	if (tlsrpt_record_parse(copy, size, &r) == 0) {
		if (r.ok && r.nrua == 0)
			abort();
		if (r.nrua > TLSRPT_MAX_RUA || r.ndiag > TLSRPT_MAX_DIAG)
			abort();
		for (size_t i = 0; i < r.nrua; i++) {
			if (r.rua[i].uri == NULL)
				abort();
			if (r.rua[i].scheme == RUA_MAILTO && (r.rua[i].address == NULL ||
							     strchr(r.rua[i].address, '@') == NULL))
				abort();
			if (r.rua[i].scheme != RUA_MAILTO && r.rua[i].scheme != RUA_HTTPS)
				abort();
			for (const char *p = r.rua[i].uri; *p; p++)
				if ((unsigned char)*p < 0x20)
					abort();
		}
		for (size_t i = 0; i < r.ndiag; i++)
			if (r.diag[i] == NULL)
				abort();
	}
	tlsrpt_record_free(&r);
	(void)tlsrpt_record_is_candidate(copy, size);
	free(copy);
	return 0;
}
