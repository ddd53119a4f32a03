/*
 * fuzz_rptparse - decompression (gzip, zip, plain) and the tolerant report
 * parser, then the normalized JSON of what was accepted.
 */
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rptparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpt_report *r = NULL;
	char err[512];

	if (rpt_parse(data, size, 1 << 20, "fallback.example", &r, err, sizeof(err)) == 0) {
		struct json_object *o = rpt_to_json(r);

		if (o == NULL)
			__builtin_trap();
		json_object_to_json_string(o);
		json_object_put(o);
		for (size_t i = 0; i < r->npolicies; i++)
			if (r->policies[i].policy_domain == NULL || r->policies[i].success < 0)
				__builtin_trap();
	} else if (err[0] == '\0' || r != NULL) {
		__builtin_trap();
	}
	rpt_free(r);
	return 0;
}
