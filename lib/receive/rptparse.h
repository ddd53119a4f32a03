/*
 * rptparse - tolerant parsing of received TLS reports (RFC 8460 section
 * 4.4 JSON, as real senders write it: see real-world-reports.md section 6).
 *
 * rpt_parse unpacks (unpack.h: gzip, zip or plain JSON, with a hard limit
 * on the output) and parses. The parser (rpt_parse_json) accepts what real
 * senders send: dates with Z, an offset, fractions or no offset (UTC);
 * contact-info null or absent; policy-domain absent (the fallback domain is
 * used and a warning noted), in upper case or with a trailing dot
 * (normalized, noted); unknown policy-type and result-type kept as text;
 * policy-string absent, [] or one string holding a JSON array (Microsoft
 * TLSA); mx-host a string, an array, "" or entries prefixed "mx: ";
 * failure-details absent or []; the misspelled key receiving-mx-host-name;
 * counts written as strings of digits ("2") or as whole decimal numbers
 * (2.0), noted; count mismatches noted. It rejects, with a reason that
 * names the member and what it is: text that is not UTF-8, JSON that does
 * not parse, a missing, non-string or unparseable date-range, policies
 * that are not an array, counts that are negative, not whole numbers or
 * above 2^53, and input beyond the budgets below.
 *
 * Memory: the JSON is tokenized (jscan.h) and read straight into the
 * model (rptread.h), never built into a tree; only
 * the model is kept, and it is bounded by the RPT_MAX_* budgets, so one
 * parse costs at most a few MiB besides the input, whatever the input.
 * Time is linear in the input.
 *
 * Result: a normalized model, owned by the caller (rpt_free). Strings in it
 * are NUL-terminated valid UTF-8, cut to RPT_MAX_STRING bytes; an absent or
 * empty optional member is NULL.
 *
 * Thread safety: no shared state.
 */
#ifndef TLSRPT_RPTPARSE_H
#define TLSRPT_RPTPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* Budgets of one report: beyond them it is rejected with the reason. Real
 * reports need a small fraction (Google's have tens of rows). */
#define RPT_JSON_DEPTH 16		/* nesting */
#define RPT_MAX_VALUES 1000000		/* JSON values of all kinds, also skipped ones */
#define RPT_MAX_POLICIES 1000
#define RPT_MAX_DETAILS 10000		/* failure-details in the whole report */
#define RPT_MAX_STRINGS 1000		/* policy-string / mx-host entries of one policy */
#define RPT_MAX_LIST_ENTRIES 20000	/* ... of the whole report */
#define RPT_MAX_TEXT (4 << 20)		/* bytes of all strings kept */
#define RPT_MAX_STRING 2048		/* bytes per string kept (longer: cut, warned) */
#define RPT_SCAN_STRING 65536		/* bytes of one string decoded while parsing */
#define RPT_MAX_WARN 32
#define RPT_MAX_COUNT 9007199254740992LL	/* 2^53 */

struct rpt_detail {
	char *result_type;		/* as sent, never NULL ("" if absent) */
	char *sending_mta_ip;
	char *receiving_mx_hostname;	/* also from receiving-mx-host-name */
	char *receiving_mx_helo;
	char *receiving_ip;
	char *additional_information;	/* also from additional-info-uri */
	char *failure_reason_code;
	int64_t failed_session_count;
};

struct rpt_policy {
	char *policy_type;		/* as sent, never NULL ("" if absent) */
	char *policy_domain;		/* never NULL; fallback if absent */
	bool domain_from_fallback;
	char **policy_string;		/* nstrings entries */
	size_t nstrings;
	char **mx_host;			/* "mx: " prefix removed, "" dropped */
	size_t nmx;
	int64_t success;		/* total-successful-session-count */
	int64_t failure;		/* total-failure-session-count */
	struct rpt_detail *details;
	size_t ndetails;
};

struct rpt_report {
	char *organization_name;	/* never NULL */
	char *contact_info;		/* NULL if null/absent */
	char *report_id;		/* never NULL ("" if absent) */
	int64_t start, end;		/* Unix seconds, UTC */
	struct rpt_policy *policies;
	size_t npolicies;
	char *warnings[RPT_MAX_WARN];	/* tolerated oddities, for the record */
	size_t nwarn;
};

/*
 * Parse 'len' bytes of report JSON. 'fallback_domain' (may be NULL) is the
 * policy-domain used when a policy has none (TLS-Report-Domain, the file
 * name...). Returns 0 with '*out' set, or -1 with the reason in 'err'.
 */
int rpt_parse_json(const char *json, size_t len, const char *fallback_domain,
		   struct rpt_report **out, char *err, size_t errsz);

/* unpack_report (unpack.h) then rpt_parse_json. */
int rpt_parse(const unsigned char *data, size_t len, size_t max_out,
	      const char *fallback_domain, struct rpt_report **out,
	      char *err, size_t errsz);

void rpt_free(struct rpt_report *r);

/* The normalized report as RFC 8460 JSON (dates "YYYY-MM-DDTHH:MM:SSZ",
 * RFC keys only, absent members omitted). NULL on ENOMEM; caller puts it. */
struct json_object *rpt_to_json(const struct rpt_report *r);

/* Parse an RFC 3339 date-time (no offset: UTC) into Unix seconds.
 * Returns 0, or -1 if it is not one. Exposed for tests. */
int rpt_parse_time(const char *s, int64_t *out);

/* Format Unix seconds as "YYYY-MM-DDTHH:MM:SSZ" (buffer >= 21 bytes). */
void rpt_format_time(int64_t t, char *out, size_t outsz);

/* The policy domain found in an RFC 8460 filename
 * "submitter!domain!begin!end[!id].json[.gz]" (out: "" if none). */
void rpt_domain_from_filename(const char *name, char *out, size_t outsz);

#endif
