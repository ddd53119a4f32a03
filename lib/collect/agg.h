/*
 * agg - one day's results, merged from one or more day files, grouped the
 * way RFC 8460 reports are: per TLSRPT domain and record, its policies, and
 * per policy its summary and failure details.
 *
 * Used by `tlsrptctl dump` and by the reporter. Merging is exact: the same
 * key in two files (two hosts of a fleet) adds up. Output order is sorted
 * and therefore stable: the same input always gives the same report.
 *
 * Not thread safe. Strings are copied; the views may be closed after adding.
 */
#ifndef TLSRPT_AGG_H
#define TLSRPT_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct json_object;

/* Counts are JSON integers (RFC 8460 reports, I-JSON): at most 2^53-1.
 * Day files are checked for it (store.h); a sum above it stays at it and
 * marks the policy and domain 'saturated' (report_build refuses them). */
#define AGG_MAX_COUNT ((UINT64_C(1) << 53) - 1)

struct agg_detail {
	int code;
	char *sending_ip, *mx_hostname, *mx_helo, *receiving_ip, *additional,
		*reason;	/* NULL: absent */
	uint64_t count;
};

struct agg_policy {
	int type;
	char *domain;		/* policy-domain, never NULL */
	char **strings;		/* policy-string[] */
	size_t nstrings;
	char **mx;		/* mx-host[] */
	size_t nmx;
	uint64_t successes, failures;
	struct agg_detail *details;	/* sorted by count desc, then fields */
	size_t ndetails;
	bool saturated;		/* a sum reached AGG_MAX_COUNT */
};

struct agg_domain {
	char *domain;		/* TLSRPT domain (d), lower case A-labels */
	char *record;		/* the TLSRPT record seen with it (pr) */
	struct agg_policy *policies;	/* sorted by type, domain, strings */
	size_t npolicies;
	uint64_t successes, failures;	/* sums over the policies */
	bool saturated;		/* a sum reached AGG_MAX_COUNT */
};

struct agg;

struct agg *agg_new(void);
void agg_free(struct agg *a);
/* Free what a policy owns (its domain, strings, MX names and failure
 * details), not the struct itself: for policies built outside an agg. */
void agg_policy_free(struct agg_policy *p);
/* Merge one validated day file view; -1 on ENOMEM. */
int agg_add_view(struct agg *a, const struct store_view *v);
/*
 * Merge one policy given as plain strings, as a day file holds it (fleet
 * mode: rows read back from the database, pushed from hosts' day files):
 * 'd' and 'pr' are its TLSRPT domain and record, 'p' the policy with its
 * details (p->domain must not be NULL; NULL detail fields are absent).
 * It goes through exactly what agg_add_view does to a day file's policy
 * (copy, UTF-8 repair, result.h normalization, saturating counts), so the
 * same results give the same report whichever way they arrive. -1 on
 * ENOMEM.
 */
int agg_add_policy(struct agg *a, const char *d, const char *pr, const struct agg_policy *p);
/* A copy of 'len' bytes made valid UTF-8 the way agg copies every string
 * (invalid sequences become U+FFFD); NULL on ENOMEM. */
char *agg_utf8(const char *p, size_t len);

/* Sort everything; call once after the last agg_add_view/agg_add_policy. */
void agg_finish(struct agg *a);
size_t agg_ndomains(const struct agg *a);
const struct agg_domain *agg_domain(const struct agg *a, size_t i);

/*
 * The RFC 8460 "policies" array of one domain (json-c, caller puts it).
 * Every policy has policy-type, policy-domain, both summary counts;
 * policy-string and mx-host (sts only) as arrays; failure-details only when
 * there are any, at most 'max_details' per policy (the rest merged into
 * entries that keep result-type and count, so the sums stay exact).
 * Unknown result codes are reported as validation-failure with the
 * failure-reason-code "unknown-result-code-N".
 */
struct json_object *agg_policies_json(const struct agg_domain *d, size_t max_details);

#endif
