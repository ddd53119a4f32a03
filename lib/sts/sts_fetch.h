/*
 * sts_fetch - fetch and validate one MTA-STS policy (RFC 8461 3.3) with
 * libcurl: GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt, WebPKI
 * validation against the system store (or a CA file for tests), TLS 1.2 or
 * later, no redirects, no proxies, HTTP 200 only, media type text/plain,
 * size and time limits.
 *
 * Every failure is mapped to its RFC 8460 result type, in this one place:
 *   sts-policy-fetch-error  the policy host does not resolve, connect or
 *                           TLS error, timeout, HTTP status other than 200
 *                           (3xx included: redirects are not followed),
 *                           body over the size limit;
 *   sts-webpki-invalid      the certificate does not validate (untrusted,
 *                           expired, wrong name: CURLE_PEER_FAILED_
 *                           VERIFICATION, CURLE_SSL_ISSUER_ERROR, ...);
 *   sts-policy-invalid      the body was fetched but is not text/plain or
 *                           not a valid policy (sts_policy.h).
 *
 * SECURITY: the policy host's address comes from DNS that whoever owns
 * the domain controls. Every socket libcurl opens goes through the same
 * check as HTTPS report delivery (netcheck.h), on the address actually
 * being connected to (after DNS, so rebinding cannot bypass it): loopback,
 * private, link-local, unique-local, multicast, unspecified and reserved
 * addresses are refused unless allow_private (or, for loopback only,
 * allow_loopback), before any packet is sent. The fetch then fails as
 * sts-policy-fetch-error like an unreachable host, so the failure report
 * tells nobody whether something answered there.
 *
 * With 'resolver' set, the policy host's A and AAAA records are looked up
 * through that server (as lib/dns does for TXT) and handed to libcurl, so
 * tests can point mta-sts.<domain> at loopback; otherwise libcurl uses the
 * system resolver.
 *
 * Thread safe after sts_fetch_global_init() (one curl handle per call).
 */
#ifndef TLSRPT_STS_FETCH_H
#define TLSRPT_STS_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "sts_policy.h"

struct sts_fetch_opts {
	const char *ca_file;	/* NULL or "": system store */
	const char *resolver;	/* NULL or "": system resolver; else ADDR[:PORT] */
	int port;		/* policy host port, 443 normally */
	long timeout;		/* seconds for the whole fetch */
	size_t max_size;	/* largest body accepted */
	bool allow_private;	/* connect to non-public addresses too (netcheck.h) */
	bool allow_loopback;	/* ... to loopback ones only (tests) */
};

struct sts_fetch_result {
	int code;		/* 0 = valid policy, else a result_code 301-303 */
	long http_status;	/* 0 if no response */
	char *body;		/* the body received (NUL terminated) or NULL */
	size_t len;
	struct sts_policy policy;	/* filled when code == 0 */
	char err[512];		/* printable reason when code != 0 */
};

/* Call once in main() before any thread fetches. Returns 0 or -1. */
int sts_fetch_global_init(void);

/*
 * Fetch the policy of 'domain' (an A-label host name, validated by the
 * caller). Always fills 'r' (free it with sts_fetch_result_free); returns
 * r->code.
 */
int sts_fetch(const char *domain, const struct sts_fetch_opts *o,
	      struct sts_fetch_result *r);
void sts_fetch_result_free(struct sts_fetch_result *r);

#endif
