/*
 * dane - does DANE (RFC 7672) apply to a next-hop destination? The lookups
 * tlsrpt-policyd makes before MTA-STS (RFC 8461 2: MTA-STS must never
 * override a failing DANE validation), the TTL-bound cache of their
 * verdicts, the destination key forms Postfix asks, and the TLSA lookup the
 * Postfix 3.7 log follower makes for the MX host it saw.
 *
 * Trust: "secure" is the AD bit of the configured resolver's reply, as
 * Postfix itself trusts it (smtp_dns_support_level = dnssec). That resolver
 * must validate DNSSEC and be local or reached over a trusted path: a
 * forged AD bit could turn DANE on (with TLSA records an attacker chose),
 * a stripped one could turn it off. Unsigned answers (no AD bit) never
 * enable DANE; a validating resolver answers bogus data with SERVFAIL.
 *
 * The verdict for a destination (domain, port, with or without MX lookup):
 *   1. MX lookup (unless "[domain]"): NXDOMAIN, null MX, or an MX RRset
 *      without the AD bit -> DANE_NONE; NODATA with the AD bit -> the domain
 *      itself is the one host (RFC 7672 2.2.2); SERVFAIL, timeout or a
 *      malformed reply -> DANE_UNKNOWN.
 *   2. For each host (at most DANE_MAX_MX), as Postfix does (RFC 7672 2.2.2,
 *      2.2.3): its A records must be secure (else no DANE for it, and no
 *      TLSA lookup; a failed or NXDOMAIN address lookup skips the host,
 *      which Postfix cannot reach either); then "_PORT._tcp.NAME" for NAME
 *      the end of the host's CNAME chain (if any), then the host name: the
 *      first secure TLSA RRset decides. A usable record counts the host as
 *      DANE; only unusable records as "unusable"; no AD bit, NODATA or
 *      NXDOMAIN try the next name. SERVFAIL, timeout, other rcodes count as
 *      a failure.
 *   3. DANE_USABLE if any host is DANE; else DANE_FAILED if any lookup
 *      failed (the host must not be reached without DANE, RFC 7672 2.1.2);
 *      else DANE_UNUSABLE if any host had only unusable records; else
 *      DANE_NONE.
 * TTL: the smallest TTL of the answers used (dane_rr.h clamps each);
 * DANE_UNKNOWN and DANE_FAILED at most DANE_FAIL_TTL.
 *
 * Thread safety: dane_check and dane_host_tlsa are reentrant; the cache
 * locks itself and hands out copies.
 */
#ifndef TLSRPT_DANE_H
#define TLSRPT_DANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dane_rr.h"

#define DANE_FAIL_TTL 60	/* s: failed or unknown verdicts */
#define DANE_KEY_MAX (DANE_HOST_MAX + 8)	/* "[" host "]:" port */

enum dane_verdict {
	DANE_NONE = 0,		/* DANE does not apply: MTA-STS may */
	DANE_USABLE,		/* >= 1 host with usable, DNSSEC-validated TLSA records */
	DANE_UNUSABLE,		/* secure TLSA records, none usable */
	DANE_FAILED,		/* secure MX, a TLSA lookup failed (bogus or timeout) */
	DANE_UNKNOWN,		/* the MX lookup failed: nothing known */
};

/* A next-hop destination as Postfix names it in a policy table lookup. */
struct dane_dest {
	char domain[DANE_HOST_MAX + 1];	/* lower case, no trailing dot */
	uint16_t port;			/* 25 unless ":port" */
	bool mx;			/* false for "[domain]": no MX lookup */
	char key[DANE_KEY_MAX + 1];	/* canonical: "d", "d:587", "[d]", "[d]:587" (":25" left out) */
};

struct dane_result {
	enum dane_verdict verdict;
	uint32_t ttl;			/* s */
	size_t hosts;			/* hosts looked at */
	size_t dane_hosts;		/* with usable TLSA */
	int64_t expires;		/* set by dane_cache_get: when it stops being fresh */
	char fail_host[DANE_HOST_MAX + 1];	/* DANE_FAILED: the first host whose lookup failed */
	char why[600];			/* printable, for logs */
};

/*
 * Parse a policy table key ("example.com", "example.com:25",
 * "[example.com]", "[example.com]:587"; a trailing dot allowed, case
 * ignored). Returns 0, or -1 for what is not a destination domain:
 * ".parent" forms, "[1.2.3.4]" and "[ipv6:...]" literals, names without a
 * dot, bad ports, anything else.
 */
int dane_dest_parse(const char *key, size_t len, struct dane_dest *out);

/* The verdict for 'd', looked up now through 'resolver' (NULL/"" for the
 * system's, else "ADDR[:PORT]"). Blocks for the lookups. */
void dane_check(const char *resolver, const struct dane_dest *d, struct dane_result *out);

/* "none", "usable", ... */
const char *dane_verdict_name(enum dane_verdict v);

/*
 * The TLSA records of MX host 'host', for the log follower, found as for
 * dane_check (signed address records, the CNAME-expanded name first).
 * Returns DANE_RR_OK only for a secure RRset, with its TLSA base domain in
 * 'base' (size >= DANE_HOST_MAX + 1); none gives DANE_RR_NODATA, a failed
 * lookup DANE_RR_SERVFAIL. 'r' (may be NULL) gets the TTL.
 */
enum dane_rr_status dane_host_tlsa(const char *resolver, const char *host, unsigned port,
				   struct dane_tlsa *out, struct dane_reply *r, char *base,
				   size_t basesz);

/* ---- the verdict cache ---- */

struct dane_cache;

/* At most 'max' entries (>= 1); NULL on ENOMEM. */
struct dane_cache *dane_cache_new(size_t max);
void dane_cache_free(struct dane_cache *c);
/*
 * The verdict for destination key 'key' at 'now': 1 and a copy in 'out'
 * while fresh, 2 (and the copy) once expired, 0 when absent.
 */
int dane_cache_get(struct dane_cache *c, const char *key, int64_t now, struct dane_result *out);
/* Store 'r' for 'key', fresh until now + r->ttl. 0, or -1 (ENOMEM). A full
 * cache forgets an expired entry, or else the one expiring first among a
 * few. */
int dane_cache_put(struct dane_cache *c, const char *key, int64_t now,
		   const struct dane_result *r);
size_t dane_cache_count(struct dane_cache *c);

#endif
