/*
 * result - one TLS result as both event sources deliver it: the datagram
 * parser (Postfix 3.10+) and the log follower (Postfix 3.7-3.9) produce it,
 * the day store counts it. Codes are libtlsrpt's, so the wire values pass
 * through unchanged.
 *
 * Strings are (pointer, length) views, not NUL terminated, owned by the
 * producer and valid only for the duration of the call that takes them.
 */
#ifndef TLSRPT_RESULT_H
#define TLSRPT_RESULT_H

#include <stdbool.h>
#include <stddef.h>

enum result_policy_type {
	POLICY_TLSA = 1,
	POLICY_STS = 2,
	POLICY_NONE = 9,	/* no-policy-found */
};

enum result_code {
	RESULT_STARTTLS_NOT_SUPPORTED = 201,
	RESULT_CERTIFICATE_HOST_MISMATCH = 202,
	RESULT_CERTIFICATE_NOT_TRUSTED = 203,
	RESULT_CERTIFICATE_EXPIRED = 204,
	RESULT_VALIDATION_FAILURE = 205,
	RESULT_STS_POLICY_FETCH_ERROR = 301,
	RESULT_STS_POLICY_INVALID = 302,
	RESULT_STS_WEBPKI_INVALID = 303,
	RESULT_TLSA_INVALID = 304,
	RESULT_DNSSEC_INVALID = 305,
	RESULT_DANE_REQUIRED = 306,
};

struct result_str {
	const char *p;		/* NULL means absent */
	size_t len;
};

/* One failure detail: the RFC 8460 failure-details tuple. */
struct result_detail {
	int code;			/* c: result_code, or an unknown value */
	struct result_str sending_ip;	/* s */
	struct result_str mx_hostname;	/* n */
	struct result_str mx_helo;	/* h */
	struct result_str receiving_ip;	/* r */
	struct result_str additional;	/* a */
	struct result_str reason;	/* f (failure-reason-code) */
};

/* One policy of one session. */
struct result_policy {
	int type;			/* result_policy_type */
	struct result_str domain;	/* policy-domain; absent: use the TLSRPT domain */
	const struct result_str *strings;	/* policy-string[] */
	size_t nstrings;
	const struct result_str *mx;		/* mx-host[] */
	size_t nmx;
	bool failed;			/* final result f != 0 */
	const struct result_detail *details;
	size_t ndetails;
};

/*
 * Normalization, done once where results are counted (store_add) and again
 * by readers of day files from elsewhere (agg), so that a row is keyed on
 * exactly what a report prints and equal rows merge:
 *   - an unknown result code becomes validation-failure with the
 *     failure-reason-code "unknown-result-code-N";
 *   - additional-information is kept only when it is a URI (RFC 8460 4.4);
 *   - receiving-mx-helo is the greeting name the server gave (the first
 *     word of the first EHLO reply line, after its "250-" or "250 "; none
 *     when the reply has another code), at most
 *     RESULT_HELO_MAX bytes, lower case, no trailing dot; Postfix passes
 *     the whole multi-line reply;
 *   - receiving-mx-hostname of at most RESULT_HELO_MAX bytes: lower case,
 *     no trailing dot;
 *   - IP addresses that parse: in canonical form (RFC 5952; IPv4-mapped
 *     IPv6 as IPv4);
 *   - empty strings are absent.
 * The output views point into 'in''s strings or into 'buf'.
 */
#define RESULT_HELO_MAX 255

struct result_canon_buf {
	char reason[40];
	char sending_ip[48], receiving_ip[48];
	char mx_hostname[RESULT_HELO_MAX + 1], mx_helo[RESULT_HELO_MAX + 1];
};

void result_detail_canon(const struct result_detail *in, struct result_detail *out,
			 struct result_canon_buf *buf);

/* The greeting name in an EHLO/HELO reply ("250-mx.example.com ESMTP\r\n
 * 250-PIPELINING..." gives "mx.example.com"); absent if there is none or
 * it is longer than RESULT_HELO_MAX. Case is kept. */
struct result_str result_helo_name(struct result_str reply);

/* Is it a URI (RFC 3986: scheme ":" then no space, control, '"', '<', '>')? */
bool result_is_uri(struct result_str s);

/* The policy as a report prints it: policy-string only for sts and tlsa,
 * mx-host only for sts; an unknown type is no-policy-found. */
void result_policy_canon(const struct result_policy *in, struct result_policy *out);

/* RFC 8460 name of a result code ("certificate-expired"), NULL if unknown. */
const char *result_code_name(int code);
/* Code of an RFC 8460 name, 0 if unknown. Accepts '_' for '-' (log lines). */
int result_code_from_name(const char *name, size_t len);
/* "tlsa", "sts", "no-policy-found"; NULL if unknown. */
const char *result_policy_type_name(int type);

#endif
