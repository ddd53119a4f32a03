/*
 * dns - TXT lookups for the collector's log follower, the reporter, the
 * record checker and the MTA-STS policy service; whether a name exists at
 * all (NXDOMAIN) for the reporter's HTTPS delivery.
 *
 * A thin wrapper over the system resolver (res_nquery, thread safe with one
 * state per call); the answer is parsed with bounds checks (ns_initparse).
 * An optional resolver address ("127.0.0.1:5353") replaces the system's, so
 * tests can run their own DNS server on loopback.
 */
#ifndef TLSRPT_DNS_H
#define TLSRPT_DNS_H

#include <stdbool.h>
#include <stddef.h>

enum dns_status {
	DNS_OK = 0,		/* answer with >= 1 record of the type */
	DNS_NOTFOUND,		/* NXDOMAIN or no record of the type */
	DNS_TEMPFAIL,		/* SERVFAIL, timeout, network: try again later */
	DNS_ERROR,		/* malformed answer, bad name, ENOMEM */
};

#define DNS_MAX_TXT 16		/* records kept per answer */
#define DNS_MAX_TXT_LEN 4096	/* bytes per record (strings concatenated) */

struct dns_txt {
	size_t n;			/* records */
	char *rec[DNS_MAX_TXT];		/* NUL terminated, strings concatenated */
	size_t len[DNS_MAX_TXT];	/* may contain NUL bytes: use len */
	bool truncated;			/* more records or longer than kept */
	bool authenticated;		/* AD bit set (DNSSEC-validated) */
};

/*
 * Look up TXT records of 'name'. 'resolver' is NULL/"" for the system
 * resolver, or "ADDR[:PORT]". On DNS_OK the caller frees with dns_txt_free.
 * 'err' gets a short reason for anything but DNS_OK.
 */
enum dns_status dns_lookup_txt(const char *name, const char *resolver,
			       struct dns_txt *out, char *err, size_t errsz);
void dns_txt_free(struct dns_txt *t);

#define DNS_ANSWER_MAX 65536	/* largest reply dns_query returns */

/*
 * Send one query for ('name', 'type', class IN) with EDNS0, the DO bit and
 * the AD bit trusted (RES_TRUSTAD), and hand back the whole reply, whatever
 * its rcode, in 'ans' (size 'anssz', at least 512): *anslen bytes, to be
 * parsed as untrusted input (lib/dane/dane_rr.h does). Returns DNS_OK when a
 * reply arrived, DNS_TEMPFAIL on timeout or network failure, DNS_ERROR for a
 * bad name or resolver address. The AD bit means what the resolver says:
 * only a validating resolver on the local host (or one reached over a
 * trusted path) makes it mean "DNSSEC-validated", as for Postfix.
 */
enum dns_status dns_query(const char *name, int type, const char *resolver,
			  unsigned char *ans, size_t anssz, size_t *anslen,
			  char *err, size_t errsz);

/*
 * Does 'name' exist? DNS_OK: it has records (of any type: an A query that
 * answers or says NODATA), DNS_NOTFOUND: NXDOMAIN, DNS_TEMPFAIL: no answer
 * to go by (one try of 2 s per server). 'resolver' as above; 'err' gets a
 * short reason.
 */
enum dns_status dns_name_exists(const char *name, const char *resolver, char *err, size_t errsz);

#endif
