/*
 * dns - TXT lookups and name existence through the system resolver. See dns.h.
 *
 * SECURITY: answers are untrusted; ns_initparse/ns_parserr check every
 * length against the message, and each TXT character-string is checked
 * against its RR's rdata length before it is copied.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_MAX 65536

/* Point 'st' at "ADDR[:PORT]" (IPv4 only: tests use loopback). */
static int set_resolver(res_state st, const char *resolver, char *err, size_t errsz)
{
	char addr[64];
	const char *colon = strrchr(resolver, ':');
	unsigned long port = 53;
	struct in_addr in;

	if (strlen(resolver) >= sizeof(addr)) {
		snprintf(err, errsz, "resolver address too long");
		return -1;
	}
	snprintf(addr, sizeof(addr), "%s", resolver);
	if (colon) {
		char *end;

		addr[colon - resolver] = '\0';
		port = strtoul(colon + 1, &end, 10);
		if (*end || port == 0 || port > 65535) {
			snprintf(err, errsz, "bad resolver port in \"%s\"", resolver);
			return -1;
		}
	}
	if (inet_pton(AF_INET, addr, &in) != 1) {
		snprintf(err, errsz, "bad resolver address \"%s\"", resolver);
		return -1;
	}
	st->nscount = 1;
	st->nsaddr_list[0].sin_family = AF_INET;
	st->nsaddr_list[0].sin_addr = in;
	st->nsaddr_list[0].sin_port = htons((uint16_t)port);
	return 0;
}

void dns_txt_free(struct dns_txt *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->rec[i]);
	memset(t, 0, sizeof(*t));
}

/* Append the character-strings of one TXT rdata as one record. */
static int add_txt(struct dns_txt *t, const unsigned char *rd, size_t rdlen)
{
	char *rec;
	size_t pos = 0, len = 0;

	if (t->n >= DNS_MAX_TXT) {
		t->truncated = true;
		return 0;
	}
	rec = malloc(rdlen + 1);
	if (rec == NULL)
		return -1;
	while (pos < rdlen) {
		size_t n = rd[pos++];

		if (n > rdlen - pos) {	/* string runs past the rdata */
			free(rec);
			return -2;
		}
		memcpy(rec + len, rd + pos, n);
		len += n;
		pos += n;
	}
	if (len > DNS_MAX_TXT_LEN) {
		len = DNS_MAX_TXT_LEN;
		t->truncated = true;
	}
	rec[len] = '\0';
	t->rec[t->n] = rec;
	t->len[t->n++] = len;
	return 0;
}

enum dns_status dns_lookup_txt(const char *name, const char *resolver,
			       struct dns_txt *out, char *err, size_t errsz)
{
	struct __res_state st;
	unsigned char *answer;
	ns_msg msg;
	int n, status = DNS_OK;

	memset(out, 0, sizeof(*out));
	memset(&st, 0, sizeof(st));
	if (strlen(name) > 253 || name[0] == '\0') {
		snprintf(err, errsz, "bad domain name");
		return DNS_ERROR;
	}
	if (res_ninit(&st) != 0) {
		snprintf(err, errsz, "resolver initialisation failed");
		return DNS_TEMPFAIL;
	}
	st.options |= RES_USE_EDNS0;
#ifdef RES_TRUSTAD
	st.options |= RES_TRUSTAD;	/* keep the AD bit (glibc >= 2.31) */
#endif
	if (resolver && *resolver && set_resolver(&st, resolver, err, errsz) < 0) {
		res_nclose(&st);
		return DNS_ERROR;
	}
	answer = malloc(ANSWER_MAX);
	if (answer == NULL) {
		res_nclose(&st);
		snprintf(err, errsz, "out of memory");
		return DNS_ERROR;
	}
	n = res_nquery(&st, name, ns_c_in, ns_t_txt, answer, ANSWER_MAX);
	if (n < 0) {
		switch (st.res_h_errno) {
		case HOST_NOT_FOUND:
			snprintf(err, errsz, "%s: no such domain", name);
			status = DNS_NOTFOUND;
			break;
		case NO_DATA:
			snprintf(err, errsz, "%s: no TXT record", name);
			status = DNS_NOTFOUND;
			break;
		default:
			snprintf(err, errsz, "%s: lookup failed (server failure or timeout)", name);
			status = DNS_TEMPFAIL;
			break;
		}
		goto done;
	}
	if (ns_initparse(answer, n, &msg) < 0) {
		snprintf(err, errsz, "%s: malformed answer", name);
		status = DNS_ERROR;
		goto done;
	}
	out->authenticated = ns_msg_getflag(msg, ns_f_ad) != 0;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		ns_rr rr;
		int rc;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
			snprintf(err, errsz, "%s: malformed answer record", name);
			status = DNS_ERROR;
			break;
		}
		if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in)
			continue;	/* CNAME chain members */
		rc = add_txt(out, ns_rr_rdata(rr), ns_rr_rdlen(rr));
		if (rc < 0) {
			snprintf(err, errsz, "%s: %s", name, rc == -1 ? "out of memory" : "malformed TXT record");
			status = DNS_ERROR;
			break;
		}
	}
	if (status == DNS_OK && out->n == 0) {
		snprintf(err, errsz, "%s: no TXT record", name);
		status = DNS_NOTFOUND;
	}
done:
	if (status != DNS_OK)
		dns_txt_free(out);
	free(answer);
	res_nclose(&st);
	return status;
}

enum dns_status dns_query(const char *name, int type, const char *resolver,
			  unsigned char *ans, size_t anssz, size_t *anslen,
			  char *err, size_t errsz)
{
	struct __res_state st;
	unsigned char q[NS_PACKETSZ + 64];
	int qlen, n;

	*anslen = 0;
	if (strlen(name) > 253 || name[0] == '\0' || anssz < NS_PACKETSZ) {
		snprintf(err, errsz, "bad domain name");
		return DNS_ERROR;
	}
	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) != 0) {
		snprintf(err, errsz, "resolver initialisation failed");
		return DNS_TEMPFAIL;
	}
	st.options |= RES_USE_EDNS0 | RES_USE_DNSSEC;
#ifdef RES_TRUSTAD
	st.options |= RES_TRUSTAD;
#endif
	if (resolver && *resolver && set_resolver(&st, resolver, err, errsz) < 0) {
		res_nclose(&st);
		return DNS_ERROR;
	}
	qlen = res_nmkquery(&st, ns_o_query, name, ns_c_in, type, NULL, 0, NULL, q,
			    (int)sizeof(q));
	if (qlen < 0) {
		res_nclose(&st);
		snprintf(err, errsz, "%s: cannot build the query", name);
		return DNS_ERROR;
	}
	n = res_nsend(&st, q, qlen, ans, (int)(anssz > INT32_MAX ? INT32_MAX : anssz));
	res_nclose(&st);
	if (n < 0) {
		snprintf(err, errsz, "%s: no reply (timeout or network)", name);
		return DNS_TEMPFAIL;
	}
	*anslen = (size_t)n > anssz ? anssz : (size_t)n;
	return DNS_OK;
}

enum dns_status dns_name_exists(const char *name, const char *resolver, char *err, size_t errsz)
{
	struct __res_state st;
	unsigned char answer[512];
	enum dns_status status = DNS_OK;

	memset(&st, 0, sizeof(st));
	if (strlen(name) > 253 || name[0] == '\0') {
		snprintf(err, errsz, "bad domain name");
		return DNS_ERROR;
	}
	if (res_ninit(&st) != 0) {
		snprintf(err, errsz, "resolver initialisation failed");
		return DNS_TEMPFAIL;
	}
	if (resolver && *resolver && set_resolver(&st, resolver, err, errsz) < 0) {
		res_nclose(&st);
		return DNS_ERROR;
	}
	/* asked after a failure, in a loop others wait on: one short try */
	st.retrans = 2;
	st.retry = 1;
	/* the answer itself does not matter, only whether the name exists */
	if (res_nquery(&st, name, ns_c_in, ns_t_a, answer, sizeof(answer)) < 0) {
		switch (st.res_h_errno) {
		case HOST_NOT_FOUND:
			snprintf(err, errsz, "%s: no such domain (NXDOMAIN)", name);
			status = DNS_NOTFOUND;
			break;
		case NO_DATA:
			break;
		default:
			snprintf(err, errsz, "%s: lookup failed (server failure or timeout)", name);
			status = DNS_TEMPFAIL;
			break;
		}
	}
	res_nclose(&st);
	return status;
}
