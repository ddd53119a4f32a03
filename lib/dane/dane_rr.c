/*
 * dane_rr - MX and TLSA replies for DANE. See dane_rr.h.
 *
 * SECURITY: the reply is untrusted. ns_initparse/ns_parserr (glibc) check
 * every section and record length against the message; names in rdata are
 * expanded with dn_expand, bounded by the message end and checked to end
 * exactly at the end of their rdata; TLSA data is copied only after its
 * length is checked against DANE_TLSA_DATA_MAX. No recursion, no
 * allocation.
 */
#include "dane_rr.h"

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *dane_rr_status_name(enum dane_rr_status s)
{
	switch (s) {
	case DANE_RR_OK:
		return "ok";
	case DANE_RR_NODATA:
		return "nodata";
	case DANE_RR_NXDOMAIN:
		return "nxdomain";
	case DANE_RR_SERVFAIL:
		return "servfail";
	case DANE_RR_REFUSED:
		return "refused";
	case DANE_RR_MALFORMED:
		return "malformed";
	}
	return "unknown";
}

static uint32_t clamp_ttl(uint32_t t)
{
	if (t < DANE_MIN_TTL)
		return DANE_MIN_TTL;
	if (t > DANE_MAX_TTL)
		return DANE_MAX_TTL;
	return t;
}

/* Same name, case-insensitively, one trailing dot ignored on either side. */
static bool same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/* A host name we are willing to look up and report: LDH and '_' labels of
 * 1-63 bytes, 253 in all; lower-cased into 'out'. */
static bool host_ok(const char *in, char *out, size_t outsz)
{
	size_t len = strlen(in), label = 0;

	if (len && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DANE_HOST_MAX || len >= outsz)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			   c == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
		out[i] = c;
	}
	out[len] = '\0';
	return label > 0;
}

/*
 * The common part: header, question, rcode, AD bit, negative TTL. Returns
 * the status with 'msg' initialised, or DANE_RR_MALFORMED.
 */
static enum dane_rr_status reply_head(const unsigned char *buf, size_t len, const char *qname,
				      int qtype, ns_msg *msg, struct dane_reply *r)
{
	ns_rr q;
	int rcode;

	memset(r, 0, sizeof(*r));
	if (len < NS_HFIXEDSZ || len > 65535 || ns_initparse(buf, (int)len, msg) < 0)
		return DANE_RR_MALFORMED;
	if (!ns_msg_getflag(*msg, ns_f_qr) || ns_msg_count(*msg, ns_s_qd) != 1 ||
	    ns_parserr(msg, ns_s_qd, 0, &q) < 0 || (int)ns_rr_type(q) != qtype ||
	    ns_rr_class(q) != ns_c_in || !same_name(ns_rr_name(q), qname))
		return DANE_RR_MALFORMED;
	r->secure = ns_msg_getflag(*msg, ns_f_ad) != 0;
	r->ttl = DANE_NEG_TTL;
	rcode = ns_msg_getflag(*msg, ns_f_rcode);
	if (rcode == ns_r_servfail)
		return DANE_RR_SERVFAIL;
	if (rcode != ns_r_noerror && rcode != ns_r_nxdomain)
		return DANE_RR_REFUSED;
	/* negative TTL from the authority section's SOA (RFC 2308 5) */
	for (int i = 0; i < ns_msg_count(*msg, ns_s_ns); i++) {
		ns_rr rr;

		if (ns_parserr(msg, ns_s_ns, i, &rr) < 0)
			return DANE_RR_MALFORMED;
		if (ns_rr_type(rr) == ns_t_soa && ns_rr_rdlen(rr) >= 22) {
			const unsigned char *m = ns_rr_rdata(rr) + ns_rr_rdlen(rr) - 4;
			uint32_t minimum = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 |
					   (uint32_t)m[2] << 8 | m[3];

			r->ttl = ns_rr_ttl(rr) < minimum ? ns_rr_ttl(rr) : minimum;
			break;
		}
	}
	r->ttl = clamp_ttl(r->ttl);
	return rcode == ns_r_nxdomain ? DANE_RR_NXDOMAIN : DANE_RR_NODATA;
}

/* Walk the answer section: records of 'qtype' go to 'take'; the smallest
 * TTL of them and of CNAMEs becomes r->ttl. Returns the status. */
typedef int (*take_fn)(ns_msg *msg, const ns_rr *rr, void *out, struct dane_reply *r);

static enum dane_rr_status walk(const unsigned char *buf, size_t len, const char *qname,
				int qtype, take_fn take, void *out, struct dane_reply *r)
{
	ns_msg msg;
	enum dane_rr_status st = reply_head(buf, len, qname, qtype, &msg, r);
	uint32_t ttl = UINT32_MAX;
	bool any = false;

	if (st != DANE_RR_NODATA)
		return st;	/* errors, NXDOMAIN: no answer records taken */
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		ns_rr rr;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return DANE_RR_MALFORMED;
		if (ns_rr_class(rr) != ns_c_in)
			continue;
		if (ns_rr_type(rr) == ns_t_cname) {
			if (ns_rr_ttl(rr) < ttl)
				ttl = ns_rr_ttl(rr);
			continue;
		}
		if ((int)ns_rr_type(rr) != qtype)
			continue;
		any = true;
		if (ns_rr_ttl(rr) < ttl)
			ttl = ns_rr_ttl(rr);
		if (take(&msg, &rr, out, r) < 0)
			r->skipped++;
	}
	if (!any)
		return DANE_RR_NODATA;
	r->ttl = clamp_ttl(ttl);
	return DANE_RR_OK;
}

static int take_mx(ns_msg *msg, const ns_rr *rr, void *arg, struct dane_reply *r)
{
	struct dane_mx *mx = arg;
	const unsigned char *rd = ns_rr_rdata(*rr);
	size_t rdlen = ns_rr_rdlen(*rr);
	char name[NS_MAXDNAME], host[DANE_HOST_MAX + 1];
	uint16_t pref;
	int n;
	size_t i;

	if (rdlen < 3)
		return -1;
	pref = (uint16_t)(rd[0] << 8 | rd[1]);
	n = dn_expand(ns_msg_base(*msg), ns_msg_end(*msg), rd + 2, name, sizeof(name));
	if (n < 0 || (size_t)n != rdlen - 2)
		return -1;
	if (name[0] == '\0' || strcmp(name, ".") == 0)
		return 0;	/* null MX (RFC 7505): no host */
	if (mx->n >= DANE_MAX_MX) {
		r->truncated = true;
		return 0;
	}
	if (!host_ok(name, host, sizeof(host)))
		return -1;
	/* insert sorted by preference, stable */
	for (i = mx->n; i > 0 && mx->pref[i - 1] > pref; i--) {
		mx->pref[i] = mx->pref[i - 1];
		memcpy(mx->host[i], mx->host[i - 1], sizeof(mx->host[i]));
	}
	memcpy(mx->host[i], host, sizeof(host));
	mx->pref[i] = pref;
	mx->n++;
	return 0;
}

static int take_tlsa(ns_msg *msg, const ns_rr *rr, void *arg, struct dane_reply *r)
{
	struct dane_tlsa *t = arg;
	const unsigned char *rd = ns_rr_rdata(*rr);
	size_t rdlen = ns_rr_rdlen(*rr);
	struct dane_tlsa_rr *x;

	(void)msg;
	if (rdlen < 4 || rdlen - 3 > DANE_TLSA_DATA_MAX)
		return -1;	/* RFC 6698 2.1: data is required */
	if (t->n >= DANE_MAX_TLSA) {
		r->truncated = true;
		return 0;
	}
	x = &t->rr[t->n++];
	x->usage = rd[0];
	x->selector = rd[1];
	x->mtype = rd[2];
	x->len = (uint16_t)(rdlen - 3);
	memcpy(x->data, rd + 3, rdlen - 3);
	return 0;
}

enum dane_rr_status dane_rr_mx(const unsigned char *msg, size_t len, const char *qname,
			       struct dane_mx *out, struct dane_reply *r)
{
	out->n = 0;
	return walk(msg, len, qname, ns_t_mx, take_mx, out, r);
}

enum dane_rr_status dane_rr_tlsa(const unsigned char *msg, size_t len, const char *qname,
				 struct dane_tlsa *out, struct dane_reply *r)
{
	enum dane_rr_status st;

	out->n = 0;
	st = walk(msg, len, qname, ns_t_tlsa, take_tlsa, out, r);
	if (st == DANE_RR_OK && out->n == 0)
		st = DANE_RR_NODATA;	/* only malformed records */
	return st;
}

bool dane_tlsa_usable(const struct dane_tlsa_rr *rr)
{
	if (rr->usage != 2 && rr->usage != 3)
		return false;
	if (rr->selector > 1)
		return false;
	switch (rr->mtype) {
	case 0:
		return rr->len > 0;
	case 1:
		return rr->len == 32;
	case 2:
		return rr->len == 64;
	default:
		return false;
	}
}

size_t dane_tlsa_format(const struct dane_tlsa_rr *rr, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	int n = snprintf(out, outsz, "%u %u %u ", rr->usage, rr->selector, rr->mtype);
	size_t pos;

	if (n < 0 || (size_t)n + 2 * (size_t)rr->len + 1 > outsz) {
		if (outsz)
			out[0] = '\0';
		return 0;
	}
	pos = (size_t)n;
	for (size_t i = 0; i < rr->len; i++) {
		out[pos++] = hex[rr->data[i] >> 4];
		out[pos++] = hex[rr->data[i] & 15];
	}
	out[pos] = '\0';
	return pos;
}

static int take_none(ns_msg *msg, const ns_rr *rr, void *arg, struct dane_reply *r)
{
	(void)msg, (void)rr, (void)arg, (void)r;
	return 0;
}

#define MAX_CHAIN 8		/* CNAMEs followed */

enum dane_rr_status dane_rr_addr(const unsigned char *msg, size_t len, const char *qname,
				 int qtype, char *target, size_t targetsz, struct dane_reply *r)
{
	enum dane_rr_status st = walk(msg, len, qname, qtype, take_none, NULL, r);
	char cur[DANE_HOST_MAX + 1];
	ns_msg m;

	if (targetsz == 0)
		return DANE_RR_MALFORMED;
	target[0] = '\0';
	if (st == DANE_RR_MALFORMED || !host_ok(qname, cur, sizeof(cur)))
		return DANE_RR_MALFORMED;
	if (st == DANE_RR_OK || st == DANE_RR_NODATA || st == DANE_RR_NXDOMAIN) {
		/* follow the CNAME chain from qname: the name the records are at */
		if (ns_initparse(msg, (int)len, &m) < 0)
			return DANE_RR_MALFORMED;
		for (int hop = 0; hop < MAX_CHAIN; hop++) {
			bool moved = false;

			for (int i = 0; i < ns_msg_count(m, ns_s_an) && !moved; i++) {
				ns_rr rr;
				char name[NS_MAXDNAME];
				int n;

				if (ns_parserr(&m, ns_s_an, i, &rr) < 0)
					return DANE_RR_MALFORMED;
				if (ns_rr_type(rr) != ns_t_cname || ns_rr_class(rr) != ns_c_in ||
				    !same_name(ns_rr_name(rr), cur))
					continue;
				n = dn_expand(ns_msg_base(m), ns_msg_end(m), ns_rr_rdata(rr), name,
					      sizeof(name));
				if (n < 0 || (size_t)n != ns_rr_rdlen(rr) ||
				    !host_ok(name, cur, sizeof(cur)))
					return DANE_RR_MALFORMED;
				moved = true;
			}
			if (!moved)
				break;
		}
	}
	if (strlen(cur) >= targetsz)
		return DANE_RR_MALFORMED;
	memcpy(target, cur, strlen(cur) + 1);
	return st;
}
