/*
 * fuzz_dayfile - a day file as a reader sees it (store_view_open validates
 * every offset, reference and count), then what the reporter does with it:
 * merge it twice (agg), normalize its rows and print the RFC 8460 policies.
 * Nothing read may crash, and no count printed may be negative or above
 * 2^53-1.
 */
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agg.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_counts(struct json_object *o)
{
	if (json_object_is_type(o, json_type_int)) {
		int64_t n = json_object_get_int64(o);

		if (n < 0 || n > (int64_t)AGG_MAX_COUNT)
			__builtin_trap();
	} else if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			check_counts(json_object_array_get_idx(o, i));
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v) {
			(void)k;
			check_counts(v);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("dayfile", MFD_CLOEXEC);
	char path[64], err[512];
	struct store_view *v;

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	v = store_view_open(path, err, sizeof(err));
	if (v) {
		struct agg *a = agg_new();

		if (a && agg_add_view(a, v) == 0 && agg_add_view(a, v) == 0) {
			agg_finish(a);
			for (size_t i = 0; i < agg_ndomains(a); i++) {
				struct json_object *p = agg_policies_json(agg_domain(a, i), 3);

				check_counts(p);
				json_object_to_json_string(p);
				json_object_put(p);
			}
		}
		agg_free(a);
		store_view_close(v);
	} else if (err[0] == '\0') {
		__builtin_trap();
	}
	close(fd);
	return 0;
}
