/*
 * netcheck - classify an IP address as public or one of the non-public
 * kinds that a destination taken from DNS must not reach (SSRF guard for
 * HTTPS report delivery and policy fetches).
 *
 * Pure functions, thread safe. IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
 * (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are
 * judged by the IPv4 address they carry.
 */
#ifndef TLSRPT_NETCHECK_H
#define TLSRPT_NETCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

enum netcheck_class {
	NET_PUBLIC = 0,
	NET_LOOPBACK,		/* 127/8, ::1 */
	NET_PRIVATE,		/* 10/8, 172.16/12, 192.168/16, 100.64/10, fec0::/10, 64:ff9b:1::/48 */
	NET_LINK_LOCAL,		/* 169.254/16, fe80::/10 */
	NET_UNIQUE_LOCAL,	/* fc00::/7 */
	NET_MULTICAST,		/* 224/4, ff00::/8 */
	NET_UNSPECIFIED,	/* 0/8, :: */
	NET_RESERVED,		/* documentation, benchmarking, 240/4, broadcast, 192.0.0/24, 100::/64 ... */
	NET_UNKNOWN,		/* not AF_INET / AF_INET6, or too short */
};

/* Class of the address in 'sa' (length 'len'). */
enum netcheck_class netcheck_classify(const struct sockaddr *sa, socklen_t len);

/* "loopback", "private", ...; "public" for NET_PUBLIC. */
const char *netcheck_name(enum netcheck_class cls);

/*
 * May a destination at this address be contacted? Public always; loopback
 * when allow_loopback or allow_private; every other class only when
 * allow_private (NET_UNKNOWN never).
 */
bool netcheck_allowed(enum netcheck_class cls, bool allow_private, bool allow_loopback);

/* The address in 'sa' as text ("192.0.2.1", "2001:db8::1") in 'out'
 * (INET6_ADDRSTRLEN is enough); "?" for any other family. Returns out. */
char *netcheck_addr_text(const struct sockaddr *sa, socklen_t len, char *out, size_t outsz);

#endif
