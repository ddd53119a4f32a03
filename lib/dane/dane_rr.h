/*
 * dane_rr - the bounded parser of DNS replies for DANE (RFC 7672): the MX
 * RRset of a next-hop domain and the TLSA RRset of "_PORT._tcp.HOST", with
 * the reply's rcode, its AD bit ("secure": validated by the resolver, RFC
 * 4035 3.2.3) and the TTL to cache the answer for.
 *
 * Input is a whole reply as lib/core/dns.h dns_query returns it: untrusted
 * bytes. The reply must answer the question asked (one question, same name
 * case-insensitively, same type, class IN, QR set); records of the asked
 * type are taken from the answer section whatever their owner (the
 * resolver follows CNAMEs; the AD bit covers the whole chain), CNAMEs
 * there count for the TTL, other types are ignored. At most DANE_MAX_MX
 * MX and DANE_MAX_TLSA TLSA records are kept (more: 'truncated'), TLSA
 * association data at most DANE_TLSA_DATA_MAX bytes each (longer: the
 * record is malformed and skipped, counted in 'skipped').
 *
 * TTL: the smallest TTL of the answer records; for a negative answer
 * (NXDOMAIN, NODATA) min(SOA TTL, SOA MINIMUM) of the authority section's
 * SOA (RFC 2308), else DANE_NEG_TTL; always clamped to
 * [DANE_MIN_TTL, DANE_MAX_TTL].
 *
 * Usable TLSA records (RFC 7672 3.1, as Postfix): usage DANE-TA(2) or
 * DANE-EE(3), selector 0 or 1, matching type 0 (any non-empty data), 1
 * (32 bytes, SHA2-256) or 2 (64 bytes, SHA2-512). PKIX-TA(0)/PKIX-EE(1)
 * and anything else are unusable (RFC 7672 3.1.3).
 *
 * Pure functions, no global state: thread safe. Nothing to free.
 */
#ifndef TLSRPT_DANE_RR_H
#define TLSRPT_DANE_RR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DANE_MAX_MX 16
#define DANE_MAX_TLSA 16
#define DANE_TLSA_DATA_MAX 2048
#define DANE_HOST_MAX 253
#define DANE_MIN_TTL 10
#define DANE_MAX_TTL 86400
#define DANE_NEG_TTL 300

enum dane_rr_status {
	DANE_RR_OK = 0,		/* NOERROR with >= 1 record of the type */
	DANE_RR_NODATA,		/* NOERROR, no record of the type */
	DANE_RR_NXDOMAIN,	/* rcode 3 */
	DANE_RR_SERVFAIL,	/* rcode 2: bogus (validating resolver) or failure */
	DANE_RR_REFUSED,	/* any other rcode */
	DANE_RR_MALFORMED,	/* not a well-formed reply to this question */
};

struct dane_reply {
	bool secure;		/* AD bit set */
	uint32_t ttl;		/* seconds to cache this answer */
	bool truncated;		/* more records than kept */
	size_t skipped;		/* malformed records of the type left out */
};

struct dane_mx {
	size_t n;
	uint16_t pref[DANE_MAX_MX];
	char host[DANE_MAX_MX][DANE_HOST_MAX + 1];	/* lower case, no trailing dot */
};

struct dane_tlsa_rr {
	uint8_t usage, selector, mtype;
	uint16_t len;
	unsigned char data[DANE_TLSA_DATA_MAX];
};

struct dane_tlsa {
	size_t n;
	struct dane_tlsa_rr rr[DANE_MAX_TLSA];
};

/*
 * Parse the reply 'msg' ('len' bytes) to the question (qname, MX). On
 * DANE_RR_OK 'out' holds the hosts sorted by preference ("." null MX,
 * RFC 7505, gives n = 0 with DANE_RR_OK). 'r' is filled for every status but
 * DANE_RR_MALFORMED.
 */
enum dane_rr_status dane_rr_mx(const unsigned char *msg, size_t len, const char *qname,
			       struct dane_mx *out, struct dane_reply *r);

/* The same for (qname, TLSA). */
enum dane_rr_status dane_rr_tlsa(const unsigned char *msg, size_t len, const char *qname,
				 struct dane_tlsa *out, struct dane_reply *r);

/*
 * Status, AD bit and TTL of a reply to the address question (qname, A or
 * AAAA), and in 'target' the name its records are at: qname, or where its
 * CNAME chain in the answer section ends (at most 8 links; lower case).
 * The AD bit of such a reply covers the whole chain. DANE_RR_MALFORMED
 * also for a chain through names we would not look up.
 */
enum dane_rr_status dane_rr_addr(const unsigned char *msg, size_t len, const char *qname,
				 int qtype, char *target, size_t targetsz, struct dane_reply *r);

/* RFC 7672 3.1 usability, see above. */
bool dane_tlsa_usable(const struct dane_tlsa_rr *rr);

/*
 * "USAGE SELECTOR MTYPE HEX" with upper-case hex, as Postfix writes a
 * TLSA record into a report's policy-string. Returns the length, or 0 when
 * 'outsz' is too small (nothing useful written).
 */
size_t dane_tlsa_format(const struct dane_tlsa_rr *rr, char *out, size_t outsz);

/* "nxdomain", "servfail", ...: for log lines. */
const char *dane_rr_status_name(enum dane_rr_status s);

#endif
