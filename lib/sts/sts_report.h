/*
 * sts_report - a failed MTA-STS policy fetch (or a failed DANE lookup),
 * told to the collector as one
 * libtlsrpt datagram, so that it reaches the domain's report with either
 * Postfix generation (Postfix reports no fetch failures of a policy
 * service it was not told about, and tlsrpt-policyd never holds mail with
 * policy_failure=).
 *
 * The datagram: no dpv, d = the domain, pr = its one TLSRPT record (none
 * or several: nothing is sent), one sts policy with f=1 and one failure
 * detail with only c; policy-string/mx-host are those of the cached policy
 * when one parses, else for sts-policy-invalid the lines fetched
 * (RFC 8460 4.5; at most 1000). Not sent when the cached, valid policy has
 * mode none (RFC 8461 6).
 *
 * Thread safe (a socket per call); blocks for the TXT lookup.
 */
#ifndef TLSRPT_STS_REPORT_H
#define TLSRPT_STS_REPORT_H

#include <stddef.h>

#include "sts_cache.h"

/*
 * Send the failure 'code' (301-303) of the fetch for entry 'e' to the
 * collector's datagram socket 'path'; 'body'/'blen' is what was fetched
 * (may be NULL). 'resolver' as for dns_lookup_txt. Problems are logged.
 */
void sts_report_failure(const char *path, const char *resolver, const struct sts_entry *e,
			int code, const char *body, size_t blen);

/*
 * The same for a DANE failure that Postfix itself does not report: 'code'
 * (dnssec-invalid: a TLSA lookup failed, bogus data or no answer, under a
 * signed MX RRset) for destination 'domain' and MX host 'host': one tlsa
 * policy (policy-domain the host) with f=1 and one failure detail with c
 * and n = the host.
 */
void sts_report_dane_failure(const char *path, const char *resolver, const char *domain,
			     const char *host, int code);

#endif
