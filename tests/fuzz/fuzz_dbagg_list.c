/*
 * fuzz_dbagg_list - the reader of policy-string and mx-host lists as the
 * fleet database returns them (array_to_json text, written by any host of
 * the fleet) on arbitrary bytes. Checks: within the bounds dbagg.h states,
 * every entry a NUL-free string no longer than DBAGG_STRING_MAX, and
 * nothing read past the input (the copy has no terminating NUL).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dbagg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1), **v = NULL;
	size_t n = 0;

	if (copy == NULL)
		return 0;
	if (size)
		memcpy(copy, data, size);
	if (dbagg_parse_list(copy, size, &v, &n) == 0) {
		if (n > DBAGG_LIST_MAX || (n > 0 && v == NULL))
			abort();
		for (size_t i = 0; i < n; i++)
			if (v[i] == NULL || strlen(v[i]) > DBAGG_STRING_MAX)
				abort();
		dbagg_free_list(v, n);
	} else if (v != NULL || n != 0) {
		abort();
	}
	free(copy);
	return 0;
}
