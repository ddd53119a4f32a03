/*
 * ctl_collector - `tlsrptctl stats` and `tlsrptctl dump`: the collector's
 * day files, read without talking to the daemon (lib/collect/store.h views).
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agg.h"
#include "ctl.h"
#include "result.h"
#include "store.h"
#include "termesc.h"

#define MAX_INPUTS 256

const char ctl_stats_usage[] =
	"stats [--day YYYY-MM-DD] [--json]\n"
	"    a day's counters (default: today, UTC)\n";
const char ctl_dump_usage[] =
	"dump [--day YYYY-MM-DD] [--json] [--input DAYFILE...]\n"
	"    a day's results per TLSRPT domain and record (--json: RFC 8460 shape);\n"
	"    --input reads these day files (copied from other hosts) instead\n";

struct day_args {
	int64_t day;
	bool json;
	const char *inputs[MAX_INPUTS];
	int ninputs;
};

static int parse_day_args(int argc, char **argv, struct day_args *a, bool allow_input,
			  const char *usage)
{
	static const struct option opts[] = {
		{ "day", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "input", no_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	bool input = false;

	a->day = time(NULL) / 86400;
	a->json = false;
	a->ninputs = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			a->day = store_parse_day(optarg);
			if (a->day < 0) {
				fprintf(stderr, "tlsrptctl: bad day \"%s\" (want YYYY-MM-DD)\n", optarg);
				return ctl_usage(usage);
			}
			break;
		case 'j': a->json = true; break;
		case 'i':
			if (!allow_input)
				return ctl_usage(usage);
			input = true;
			break;
		default: return ctl_usage(usage);
		}
	}
	if (optind < argc && !input) {
		fprintf(stderr, "tlsrptctl: unexpected argument \"%s\"\n", argv[optind]);
		return ctl_usage(usage);
	}
	for (; optind < argc; optind++) {
		if (a->ninputs == MAX_INPUTS) {
			fprintf(stderr, "tlsrptctl: too many input files\n");
			return CTL_USAGE;
		}
		a->inputs[a->ninputs++] = argv[optind];
	}
	return CTL_OK;
}

/* Open the views: the inputs if given, else the day's file of this host. */
static int open_views(const struct conf *c, const struct day_args *a,
		      struct store_view **views, int *n)
{
	char path[4096], err[600];

	*n = 0;
	if (a->ninputs == 0) {
		store_day_path(path, sizeof(path), conf_str(c, "state_directory"), a->day);
		views[0] = store_view_open(path, err, sizeof(err));
		if (views[0] == NULL) {
			char ds[16];

			store_format_day(ds, sizeof(ds), a->day);
			fprintf(stderr, "tlsrptctl: no data for %s: %s\n", ds, err);
			return strstr(err, "No such file") ? CTL_EMPTY : ctl_status_of(err, CTL_DATAERR);
		}
		*n = 1;
		return CTL_OK;
	}
	for (int i = 0; i < a->ninputs; i++) {
		views[i] = store_view_open(a->inputs[i], err, sizeof(err));
		if (views[i] == NULL) {
			fprintf(stderr, "tlsrptctl: %s\n", err);
			for (int j = 0; j < i; j++)
				store_view_close(views[j]);
			return ctl_status_of(err, CTL_DATAERR);
		}
	}
	*n = a->ninputs;
	return CTL_OK;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const char *const *)a, y = (uintptr_t)*(const char *const *)b;

	return x < y ? -1 : x > y;
}

int ctl_stats(int argc, char **argv, const struct conf *c)
{
	struct day_args a;
	struct store_view *v[1];
	const struct store_view_info *info;
	int n, rc = parse_day_args(argc, argv, &a, false, ctl_stats_usage);
	size_t domains = 0, policies, details = 0;
	char ds[16];

	if (rc != CTL_OK || (rc = open_views(c, &a, v, &n)) != CTL_OK)
		return rc;
	info = store_view_info(v[0]);
	policies = store_view_npolicies(v[0]);
	if (policies) {
		/* domains are interned: equal domains share one pointer */
		const char **ds_ptr = malloc(policies * sizeof(*ds_ptr));

		if (ds_ptr == NULL) {
			store_view_close(v[0]);
			return CTL_SOFTWARE;
		}
		for (size_t i = 0; i < policies; i++) {
			ds_ptr[i] = store_view_policy(v[0], i)->d.p;
			details += store_view_policy(v[0], i)->ndetails;
		}
		qsort(ds_ptr, policies, sizeof(*ds_ptr), cmp_ptr);
		for (size_t i = 0; i < policies; i++)
			domains += i == 0 || ds_ptr[i] != ds_ptr[i - 1];
		free(ds_ptr);
	}
	store_format_day(ds, sizeof(ds), info->day);
	if (a.json) {
		struct json_object *o = json_object_new_object(), *cn = json_object_new_object();

		json_object_object_add(o, "day", json_object_new_string(ds));
		json_object_object_add(o, "host", json_object_new_string(info->host));
		json_object_object_add(o, "tlsrpt_domains", json_object_new_int64((int64_t)domains));
		json_object_object_add(o, "policies", json_object_new_int64((int64_t)policies));
		json_object_object_add(o, "failure_details", json_object_new_int64((int64_t)details));
		json_object_object_add(o, "store_used_bytes", json_object_new_int64((int64_t)info->used));
		json_object_object_add(o, "store_max_bytes", json_object_new_int64((int64_t)info->file_size));
		for (int i = 0; i < STC_MAX; i++)
			if (store_counter_name(i))
				json_object_object_add(cn, store_counter_name(i),
					json_object_new_int64((int64_t)info->counters[i]));
		json_object_object_add(o, "counters", cn);
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		printf("day %s (UTC), host %s\n", ds, info->host);
		printf("  %-32s %zu\n", "TLSRPT domains", domains);
		printf("  %-32s %zu\n", "policies", policies);
		printf("  %-32s %zu\n", "failure-detail rows", details);
		printf("  %-32s %llu of %llu bytes (%.1f%%)\n", "day file used",
		       (unsigned long long)info->used, (unsigned long long)info->file_size,
		       100.0 * (double)info->used / (double)info->file_size);
		for (int i = 0; i < STC_MAX; i++)
			if (store_counter_name(i) && (info->counters[i] || i <= STC_FAILURES))
				printf("  %-32s %llu\n", store_counter_name(i),
				       (unsigned long long)info->counters[i]);
	}
	store_view_close(v[0]);
	return CTL_OK;
}

static void print_text(const struct agg *ag)
{
	for (size_t i = 0; i < agg_ndomains(ag); i++) {
		const struct agg_domain *d = agg_domain(ag, i);

		printf("%s  (record \"%s\")\n", termesc(d->domain), termesc(d->record));
		for (size_t j = 0; j < d->npolicies; j++) {
			const struct agg_policy *p = &d->policies[j];
			const char *t = result_policy_type_name(p->type);

			printf("  policy %s %s: %llu successful, %llu failed sessions\n",
			       t ? t : "?", termesc(p->domain), (unsigned long long)p->successes,
			       (unsigned long long)p->failures);
			for (size_t k = 0; k < p->nstrings; k++)
				printf("    policy-string \"%s\"\n", termesc(p->strings[k]));
			for (size_t k = 0; k < p->nmx; k++)
				printf("    mx-host \"%s\"\n", termesc(p->mx[k]));
			for (size_t k = 0; k < p->ndetails; k++) {
				const struct agg_detail *dt = &p->details[k];
				const char *rn = result_code_name(dt->code);

				printf("    %6llu x %s", (unsigned long long)dt->count, rn ? rn : "unknown");
				if (dt->reason)
					printf(" (%s)", termesc(dt->reason));
				if (dt->mx_hostname || dt->receiving_ip)
					printf(" mx %s[%s]", dt->mx_hostname ? termesc(dt->mx_hostname) : "?",
					       dt->receiving_ip ? termesc(dt->receiving_ip) : "?");
				if (dt->sending_ip)
					printf(" from %s", termesc(dt->sending_ip));
				printf("\n");
			}
		}
	}
}

int ctl_dump(int argc, char **argv, const struct conf *c)
{
	struct day_args a;
	struct store_view *v[MAX_INPUTS];
	struct agg *ag;
	int n, rc = parse_day_args(argc, argv, &a, true, ctl_dump_usage);
	char ds[16];

	if (rc != CTL_OK || (rc = open_views(c, &a, v, &n)) != CTL_OK)
		return rc;
	ag = agg_new();
	for (int i = 0; i < n; i++) {
		if (ag == NULL || agg_add_view(ag, v[i]) < 0) {
			fprintf(stderr, "tlsrptctl: out of memory\n");
			rc = CTL_SOFTWARE;
		}
	}
	if (rc == CTL_OK) {
		agg_finish(ag);
		store_format_day(ds, sizeof(ds), store_view_info(v[0])->day);
		if (a.json) {
			struct json_object *o = json_object_new_object(), *arr = json_object_new_array();

			json_object_object_add(o, "day", json_object_new_string(ds));
			for (size_t i = 0; i < agg_ndomains(ag); i++) {
				const struct agg_domain *d = agg_domain(ag, i);
				struct json_object *e = json_object_new_object();

				json_object_object_add(e, "domain", json_object_new_string(d->domain));
				json_object_object_add(e, "record", json_object_new_string(d->record));
				json_object_object_add(e, "policies", agg_policies_json(d, (size_t)-1));
				json_object_array_add(arr, e);
			}
			json_object_object_add(o, "domains", arr);
			printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
			json_object_put(o);
		} else {
			printf("day %s (UTC): %zu reports (TLSRPT domain and record)\n", ds, agg_ndomains(ag));
			print_text(ag);
		}
	}
	agg_free(ag);
	for (int i = 0; i < n; i++)
		store_view_close(v[i]);
	return rc;
}
