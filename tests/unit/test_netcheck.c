/*
 * test_netcheck - address classes and the allow rules used to refuse
 * non-public HTTPS destinations.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "netcheck.h"

static enum netcheck_class classify(const char *ip)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		return netcheck_classify((struct sockaddr *)&sin, sizeof(sin));
	}
	if (inet_pton(AF_INET6, ip, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		return netcheck_classify((struct sockaddr *)&sin6, sizeof(sin6));
	}
	return (enum netcheck_class)-1;
}

int main(void)
{
	static const struct {
		const char *ip;
		enum netcheck_class want;
	} cases[] = {
		{ "8.8.8.8", NET_PUBLIC },
		{ "1.1.1.1", NET_PUBLIC },
		{ "0.0.0.0", NET_UNSPECIFIED },
		{ "0.1.2.3", NET_UNSPECIFIED },
		{ "10.0.0.1", NET_PRIVATE },
		{ "100.64.0.1", NET_PRIVATE },
		{ "100.128.0.1", NET_PUBLIC },
		{ "127.0.0.1", NET_LOOPBACK },
		{ "127.255.255.254", NET_LOOPBACK },
		{ "169.254.169.254", NET_LINK_LOCAL },
		{ "172.15.255.255", NET_PUBLIC },
		{ "172.16.0.1", NET_PRIVATE },
		{ "172.31.255.255", NET_PRIVATE },
		{ "172.32.0.0", NET_PUBLIC },
		{ "192.0.0.8", NET_RESERVED },
		{ "192.0.2.1", NET_RESERVED },
		{ "192.168.1.1", NET_PRIVATE },
		{ "198.18.0.1", NET_RESERVED },
		{ "198.51.100.7", NET_RESERVED },
		{ "203.0.113.9", NET_RESERVED },
		{ "224.0.0.1", NET_MULTICAST },
		{ "239.255.255.250", NET_MULTICAST },
		{ "240.0.0.1", NET_RESERVED },
		{ "255.255.255.255", NET_RESERVED },
		{ "::", NET_UNSPECIFIED },
		{ "::1", NET_LOOPBACK },
		{ "::ffff:127.0.0.1", NET_LOOPBACK },
		{ "::ffff:10.1.2.3", NET_PRIVATE },
		{ "::ffff:8.8.8.8", NET_PUBLIC },
		{ "::127.0.0.1", NET_LOOPBACK },
		{ "::8.8.8.8", NET_RESERVED },
		{ "64:ff9b::192.168.0.1", NET_PRIVATE },
		{ "64:ff9b::8.8.8.8", NET_PUBLIC },
		{ "64:ff9b:1::1", NET_PRIVATE },
		{ "100::1", NET_RESERVED },
		{ "2001:db8::1", NET_RESERVED },
		{ "2002:7f00:1::1", NET_LOOPBACK },
		{ "2002:0808:0808::1", NET_PUBLIC },
		{ "2a00:1450:4001:82b::200e", NET_PUBLIC },
		{ "2606:4700::1111", NET_PUBLIC },
		{ "fc00::1", NET_UNIQUE_LOCAL },
		{ "fd12:3456::1", NET_UNIQUE_LOCAL },
		{ "fe80::1", NET_LINK_LOCAL },
		{ "febf::1", NET_LINK_LOCAL },
		{ "fec0::1", NET_PRIVATE },
		{ "ff02::1", NET_MULTICAST },
		{ "4000::1", NET_RESERVED },
	};
	static const struct {
		enum netcheck_class cls;
		bool priv, loop, want;
	} rules[] = {
		{ NET_PUBLIC, false, false, true },
		{ NET_LOOPBACK, false, false, false },
		{ NET_LOOPBACK, false, true, true },
		{ NET_LOOPBACK, true, false, true },
		{ NET_PRIVATE, false, true, false },
		{ NET_PRIVATE, true, false, true },
		{ NET_LINK_LOCAL, false, true, false },
		{ NET_MULTICAST, true, false, true },
		{ NET_UNKNOWN, true, true, false },
	};
	struct sockaddr sa;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum netcheck_class got = classify(cases[i].ip);

		CHECK(got == cases[i].want, "%s: got %s, want %s", cases[i].ip,
		      netcheck_name(got), netcheck_name(cases[i].want));
	}
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		CHECK(netcheck_allowed(rules[i].cls, rules[i].priv, rules[i].loop) == rules[i].want,
		      "allowed(%s, private=%d, loopback=%d): got %d, want %d",
		      netcheck_name(rules[i].cls), rules[i].priv, rules[i].loop, !rules[i].want,
		      rules[i].want);
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	CHECK_INT(netcheck_classify(&sa, sizeof(sa)), NET_UNKNOWN);
	CHECK_INT(netcheck_classify(NULL, 0), NET_UNKNOWN);
	sa.sa_family = AF_INET6;	/* too short for sockaddr_in6 */
	CHECK_INT(netcheck_classify(&sa, sizeof(sa)), NET_UNKNOWN);
	CHECK_STR(netcheck_name(NET_UNIQUE_LOCAL), "unique-local");
	{
		/* the text of a refused address, as the refusal message prints it */
		struct sockaddr_in sin = { .sin_family = AF_INET };
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
		char text[INET6_ADDRSTRLEN];

		inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
		inet_pton(AF_INET6, "2001:db8::25", &sin6.sin6_addr);
		CHECK_STR(netcheck_addr_text((struct sockaddr *)&sin, sizeof(sin), text, sizeof(text)),
			  "192.0.2.7");
		CHECK_STR(netcheck_addr_text((struct sockaddr *)&sin6, sizeof(sin6), text, sizeof(text)),
			  "2001:db8::25");
		CHECK_STR(netcheck_addr_text(&sa, sizeof(sa), text, sizeof(text)), "?");	/* short */
		sa.sa_family = AF_UNIX;
		CHECK_STR(netcheck_addr_text(&sa, sizeof(sa), text, sizeof(text)), "?");
	}
	return check_done("netcheck");
}
