/*
 * netcheck - public or not, for IPv4 and IPv6 addresses. See netcheck.h.
 * Ranges from the IANA IPv4 and IPv6 Special-Purpose Address Registries.
 */
#include "netcheck.h"

#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

struct v4range {
	uint32_t net;
	int bits;
	enum netcheck_class cls;
};

static const struct v4range v4ranges[] = {
	{ 0x00000000u, 8, NET_UNSPECIFIED },	/* 0.0.0.0/8 "this network" */
	{ 0x0a000000u, 8, NET_PRIVATE },	/* 10/8 */
	{ 0x64400000u, 10, NET_PRIVATE },	/* 100.64/10 shared (CGN) */
	{ 0x7f000000u, 8, NET_LOOPBACK },	/* 127/8 */
	{ 0xa9fe0000u, 16, NET_LINK_LOCAL },	/* 169.254/16 */
	{ 0xac100000u, 12, NET_PRIVATE },	/* 172.16/12 */
	{ 0xc0000000u, 24, NET_RESERVED },	/* 192.0.0/24 IETF protocol assignments */
	{ 0xc0000200u, 24, NET_RESERVED },	/* 192.0.2/24 TEST-NET-1 */
	{ 0xc0586300u, 24, NET_RESERVED },	/* 192.88.99/24 6to4 relay anycast */
	{ 0xc0a80000u, 16, NET_PRIVATE },	/* 192.168/16 */
	{ 0xc6120000u, 15, NET_RESERVED },	/* 198.18/15 benchmarking */
	{ 0xc6336400u, 24, NET_RESERVED },	/* 198.51.100/24 TEST-NET-2 */
	{ 0xcb007100u, 24, NET_RESERVED },	/* 203.0.113/24 TEST-NET-3 */
	{ 0xe0000000u, 4, NET_MULTICAST },	/* 224/4 */
	{ 0xf0000000u, 4, NET_RESERVED },	/* 240/4 incl. 255.255.255.255 */
};

static enum netcheck_class classify_v4(uint32_t a)
{
	size_t i;

	for (i = 0; i < sizeof(v4ranges) / sizeof(v4ranges[0]); i++) {
		uint32_t mask = 0xffffffffu << (32 - v4ranges[i].bits);

		if ((a & mask) == v4ranges[i].net)
			return v4ranges[i].cls;
	}
	return NET_PUBLIC;
}

static uint32_t v4_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static enum netcheck_class classify_v6(const uint8_t *a)
{
	static const uint8_t zero[16];
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b };

	if (memcmp(a, zero, 16) == 0)
		return NET_UNSPECIFIED;
	if (memcmp(a, zero, 15) == 0 && a[15] == 1)
		return NET_LOOPBACK;
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
		return classify_v4(v4_at(a + 12));
	if (memcmp(a, zero, 12) == 0)	/* ::a.b.c.d, deprecated IPv4-compatible */
		return classify_v4(v4_at(a + 12)) == NET_PUBLIC ? NET_RESERVED
								: classify_v4(v4_at(a + 12));
	if (a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b &&
	    a[4] == 0x00 && a[5] == 0x01)
		return NET_PRIVATE;	/* 64:ff9b:1::/48 local-use NAT64 */
	if (a[0] == 0x01 && a[1] == 0x00 && memcmp(a + 2, zero, 6) == 0)
		return NET_RESERVED;	/* 100::/64 discard-only */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		return NET_RESERVED;	/* 2001:db8::/32 documentation */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x00 && (a[3] & 0xf0) == 0x10)
		return NET_RESERVED;	/* 2001:10::/28 ORCHID (deprecated) */
	if (a[0] == 0x20 && a[1] == 0x02)	/* 6to4: the embedded IPv4 */
		return classify_v4(v4_at(a + 2));
	if (a[0] == 0x3f && a[1] == 0xff && (a[2] & 0xf0) == 0x00)
		return NET_RESERVED;	/* 3fff::/20 documentation */
	if ((a[0] & 0xfe) == 0xfc)
		return NET_UNIQUE_LOCAL;	/* fc00::/7 */
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return NET_LINK_LOCAL;	/* fe80::/10 */
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		return NET_PRIVATE;	/* fec0::/10 site-local (deprecated) */
	if (a[0] == 0xff)
		return NET_MULTICAST;
	if ((a[0] & 0xe0) != 0x20)
		return NET_RESERVED;	/* outside 2000::/3, the only global unicast */
	return NET_PUBLIC;
}

enum netcheck_class netcheck_classify(const struct sockaddr *sa, socklen_t len)
{
	if (!sa)
		return NET_UNKNOWN;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;

		memcpy(&sin, sa, sizeof(sin));
		return classify_v4(ntohl(sin.sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, sa, sizeof(sin6));
		return classify_v6(sin6.sin6_addr.s6_addr);
	}
	return NET_UNKNOWN;
}

const char *netcheck_name(enum netcheck_class cls)
{
	switch (cls) {
	case NET_PUBLIC: return "public";
	case NET_LOOPBACK: return "loopback";
	case NET_PRIVATE: return "private";
	case NET_LINK_LOCAL: return "link-local";
	case NET_UNIQUE_LOCAL: return "unique-local";
	case NET_MULTICAST: return "multicast";
	case NET_UNSPECIFIED: return "unspecified";
	case NET_RESERVED: return "reserved";
	case NET_UNKNOWN: break;
	}
	return "unknown";
}

bool netcheck_allowed(enum netcheck_class cls, bool allow_private, bool allow_loopback)
{
	if (cls == NET_PUBLIC)
		return true;
	if (cls == NET_UNKNOWN)
		return false;
	if (cls == NET_LOOPBACK)
		return allow_loopback || allow_private;
	return allow_private;
}

char *netcheck_addr_text(const struct sockaddr *sa, socklen_t len, char *out, size_t outsz)
{
	/* copied out: the caller's buffer need not be aligned for the type */
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;

		memcpy(&sin, sa, sizeof(sin));
		if (inet_ntop(AF_INET, &sin.sin_addr, out, (socklen_t)outsz) != NULL)
			return out;
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, sa, sizeof(sin6));
		if (inet_ntop(AF_INET6, &sin6.sin6_addr, out, (socklen_t)outsz) != NULL)
			return out;
	}
	snprintf(out, outsz, "?");
	return out;
}
