/*
 * pflookup - what the log follower must find out itself, because Postfix
 * 3.7-3.9 logs no policy data: the TLSRPT record of a domain (TXT
 * _smtp._tls.<domain>) and the TLS policy in force for it (the Postfix table
 * log_policy_map, queried with "postmap -q").
 *
 * Both answers are cached, bounded by dns_cache_size entries each, for
 * dns_cache_ttl (negative answers too; temporary failures for at most 60 s).
 * The least recently used entry is evicted when a cache is full.
 *
 * The lookups themselves go through struct pflookup_ops so that tests can
 * inject fakes; the default ops call dns_lookup_txt() (lib/core/dns.h, with
 * dns_resolver), run "postmap -q KEY TABLE" with a 10 s time limit, and look
 * up TLSA records through lib/dane (AD bit of dns_resolver required).
 * Lookups are synchronous: the caller's loop waits for them.
 *
 * Record choice follows RFC 8460 section 3: of the TXT RRset, exactly one
 * record must start with "v=TLSRPTv1" (then WSP or ';'); none or several
 * means the domain has no TLSRPT policy. Non-printable bytes of the chosen
 * record are replaced by spaces, as Postfix does before sending it.
 *
 * Policy from the table reply ("LEVEL name=value ... { name = value } ..."),
 * as a Postfix 3.10 policy plugin would answer: policy_type=sts with
 * policy_domain, { policy_string = ... } and mx_host_pattern= gives an sts
 * policy; anything else (plain levels such as may, encrypt, dane,
 * dane-only, verify/secure with match=, NOTFOUND, errors) gives
 * no-policy-found with the TLSRPT domain as policy domain. A domain not
 * found is retried with its parent domains with a leading dot, as Postfix's
 * smtp_tls_policy_maps lookup does.
 *
 * Ownership: strings returned through struct result_str / result_policy
 * point into the cache; those of pflookup_tlsrpt stay valid until the next
 * pflookup_tlsrpt call, those of pflookup_policy until the next
 * pflookup_policy call (the caches are separate). Not thread safe: one
 * owner.
 */
#ifndef TLSRPT_PFLOOKUP_H
#define TLSRPT_PFLOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "result.h"

enum pflookup_status {
	PFLOOKUP_FOUND = 0,
	PFLOOKUP_NOTFOUND = 1,
	PFLOOKUP_TEMPFAIL = 2,
};

#define PFLOOKUP_MAX_TXT 16

/* A TXT RRset as the ops return it: each record malloc'ed, the
 * character-strings concatenated; pflookup frees them. */
struct pflookup_txt {
	size_t n;
	char *rec[PFLOOKUP_MAX_TXT];
	size_t len[PFLOOKUP_MAX_TXT];
};

struct pflookup_ops {
	/* TXT records of 'name' into 'out' (zeroed by the caller).
	 * Returns an enum pflookup_status. */
	int (*txt)(void *arg, const char *name, struct pflookup_txt *out);
	/* Reply of the policy table for 'key': on PFLOOKUP_FOUND *reply is a
	 * malloc'ed NUL-terminated string that pflookup frees. */
	int (*policy)(void *arg, const char *key, char **reply);
	/* DNSSEC-validated TLSA records of MX host HOST (NULL: never looked
	 * up): on PFLOOKUP_FOUND *text is a malloc'ed string, pflookup frees
	 * it: the TLSA base domain on the first line, then "U S M HEX" lines;
	 * *ttl the seconds to keep the answer (any status). */
	int (*tlsa)(void *arg, const char *host, char **text, uint32_t *ttl);
	void *arg;
};

struct pflookup;

/* Reads dns_cache_size, dns_cache_ttl, dns_resolver, log_policy_map.
 * NULL with 'err' on ENOMEM. */
struct pflookup *pflookup_new(const struct conf *c, char *err, size_t errsz);
void pflookup_free(struct pflookup *l);
/* Replace the lookup functions (tests); the caches are emptied. */
void pflookup_set_ops(struct pflookup *l, const struct pflookup_ops *ops);

/*
 * The TLSRPT record of 'domain' (lower-case, no trailing dot) at time 'now'
 * (seconds). Returns true and sets *rec when the domain has exactly one
 * record; false when it has none (or a lookup failed).
 */
bool pflookup_tlsrpt(struct pflookup *l, const char *domain, int64_t now,
		     struct result_str *rec);

/*
 * The policy in force for 'domain' at 'now': fills type, domain, strings
 * and mx of 'p' (the rest is left alone). Never fails: no-policy-found
 * with p->domain = 'domain' when nothing better is known. Returns true
 * when Postfix's level for the domain is dane or dane-only (the table's
 * reply says so, or without a table answer log_tls_security_level does):
 * the caller then asks pflookup_tlsa for the MX host it saw.
 */
bool pflookup_policy(struct pflookup *l, const char *domain, int64_t now,
		     struct result_policy *p);

/*
 * The tlsa policy of MX host 'host' at 'now' (RFC 8460: policy-domain =
 * the TLSA base domain, normally the MX host; one policy-string per record
 * of its DNSSEC-validated "_25._tcp" RRset, as Postfix 3.10 reports them).
 * Returns true and fills 'p' as pflookup_policy does when the host has such
 * records; false (p untouched) when not. Cached for the DNS TTL (at most
 * dns_cache_ttl; failures TEMPFAIL_TTL); views valid until the next call.
 */
bool pflookup_tlsa(struct pflookup *l, const char *host, int64_t now, struct result_policy *p);

/* ---- the reply parser, exposed for tests and fuzzing ---- */

#define PFLOOKUP_MAX_STRINGS 64
#define PFLOOKUP_MAX_REPLY 100000

struct pflookup_reply {
	struct result_str level;	/* first word ("secure") */
	int type;			/* POLICY_STS, POLICY_NONE, or 0 (absent) */
	struct result_str policy_domain;
	struct result_str strings[PFLOOKUP_MAX_STRINGS];
	size_t nstrings;
	struct result_str mx[PFLOOKUP_MAX_STRINGS];
	size_t nmx;
	bool too_many;			/* strings or patterns beyond the maximum */
};

/*
 * Parse a table reply of 'len' bytes (at most PFLOOKUP_MAX_REPLY). Views
 * point into 'text'. Returns 0, or -1 if the reply is malformed (unbalanced
 * braces, an attribute without '=', too long).
 */
int pflookup_parse_reply(const char *text, size_t len, struct pflookup_reply *out);

/* Normalise a domain into 'out' (size >= 254): lower-case, trailing dot
 * removed; only LDH labels (and '_') of 1..63 bytes, 253 bytes in all.
 * Returns the length, or 0 if 'in' is not such a domain. */
size_t pflookup_domain(const char *in, size_t len, char *out, size_t outsz);

#endif
