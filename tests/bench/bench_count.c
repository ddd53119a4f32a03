/*
 * bench_count - the collector's work per datagram without the kernel:
 * parse (lib/dgram) and count (lib/store) pre-generated datagrams of the
 * benchmark mix. Prints ns per datagram for parse only and parse + count.
 *
 *   bench_count [DATAGRAMS [DOMAINS]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgram.h"
#include "store.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	unsigned long domains = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
	size_t ndg = 20000;
	char **dg = malloc(ndg * sizeof(*dg));
	size_t *len = malloc(ndg * sizeof(*len));
	struct dgram_parser *p = dgram_parser_new();
	char dir[64], err[256], cmd[128];
	struct store *s;
	struct dgram d;
	double t0, parse_ns, count_ns;

	for (size_t i = 0; i < ndg; i++) {
		unsigned long dom = (i * 2654435761UL) % domains;
		char buf[1024];
		int fail = i % 4 == 0;

		len[i] = (size_t)snprintf(buf, sizeof(buf),
			"{\"dpv\": \"1\",\"d\": \"d%lu.example\",\"pr\": \"v=TLSRPTv1; rua=mailto:tlsrpt@d%lu.example\","
			"\"policies\":[{\"policy-type\":2,\"policy-domain\": \"d%lu.example\",\"policy-string\":[\"version: STSv1\","
			"\"mode: enforce\",\"mx: *.d%lu.example\",\"max_age: 604800\"],\"mx-host\":[\"*.d%lu.example\"]%s,\"t\":%d,\"f\":%d}]}",
			dom, dom, dom, dom, dom,
			fail ? ",\"failure-details\":[{\"c\":205,\"s\": \"192.0.2.10\",\"n\": \"mx1.example\",\"r\": \"198.51.100.7\",\"f\": \"self-signed_certificate\"}]" : "",
			fail, fail);
		dg[i] = strdup(buf);
	}
	snprintf(dir, sizeof(dir), "/tmp/bench_count.%d", (int)getpid());
	s = store_open(dir, 1, 1ULL << 30, 2048, err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	t0 = now();
	for (unsigned long i = 0; i < n; i++)
		dgram_parse(p, dg[i % ndg], len[i % ndg], &d, NULL);
	parse_ns = (now() - t0) / (double)n * 1e9;
	t0 = now();
	for (unsigned long i = 0; i < n; i++)
		if (dgram_parse(p, dg[i % ndg], len[i % ndg], &d, NULL) == DGRAM_OK)
			store_add(s, d.d, d.pr, &d.policies[0]);
	count_ns = (now() - t0) / (double)n * 1e9;
	printf("| parse | %.0f ns/datagram |\n| parse + count | %.0f ns/datagram |\n", parse_ns, count_ns);
	store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
