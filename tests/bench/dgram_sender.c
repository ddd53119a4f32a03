/*
 * dgram_sender - load for the collector benchmark.
 *
 *   dgram_sender bulk SOCKET COUNT DOMAINS
 *       one process, one socket, blocking sends (nothing lost): the
 *       sustained rate a receiver keeps up with. Prints "sent N in S s".
 *   dgram_sender burst SOCKET PROCS PER DOMAINS
 *       Postfix-like: PROCS processes start together, each sends PER
 *       results, each on a new non-blocking socket (as libtlsrpt does for
 *       Postfix). Prints "sent N lost L" (L = EAGAIN: the datagram is gone).
 *
 * Datagrams are a realistic mix in libtlsrpt's exact layout: each domain has
 * one policy type (a third each sts, tlsa, no-policy-found), 25 % of the
 * results are failures with one detail.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int make(char *buf, size_t sz, unsigned long i, unsigned long domains)
{
	unsigned long d = (i * 2654435761UL) % domains;
	int failed = i % 4 == 0;
	char details[400] = "";

	if (failed)
		snprintf(details, sizeof(details),
			 ",\"failure-details\":[{\"c\":205,\"s\": \"192.0.2.10\",\"n\": \"mx1.d%lu.example\","
			 "\"h\": \"250-mx1.d%lu.example\\r\\n250 STARTTLS\",\"r\": \"198.51.100.%lu\","
			 "\"f\": \"self-signed_certificate\"}]", d, d, d % 250);
	switch (d % 3) {
	case 0:
		return snprintf(buf, sz, "{\"dpv\": \"1\",\"d\": \"d%lu.example\",\"pr\": \"v=TLSRPTv1; rua=mailto:tlsrpt@d%lu.example\","
			"\"policies\":[{\"policy-type\":2,\"policy-domain\": \"d%lu.example\",\"policy-string\":[\"version: STSv1\","
			"\"mode: enforce\",\"mx: *.d%lu.example\",\"max_age: 604800\"],\"mx-host\":[\"*.d%lu.example\"]%s,\"t\":%d,\"f\":%d}]}",
			d, d, d, d, d, details, failed, failed);
	case 1:
		return snprintf(buf, sz, "{\"dpv\": \"1\",\"d\": \"d%lu.example\",\"pr\": \"v=TLSRPTv1; rua=mailto:tlsrpt@d%lu.example\","
			"\"policies\":[{\"policy-type\":1,\"policy-domain\": \"mx1.d%lu.example\",\"policy-string\":"
			"[\"3 1 1 6007EEE553E85D8DF007A845D19EC343283D4E416E9A33F9EF3040C8B7C285BC\"]%s,\"t\":%d,\"f\":%d}]}",
			d, d, d, details, failed, failed);
	default:
		return snprintf(buf, sz, "{\"dpv\": \"1\",\"d\": \"d%lu.example\",\"pr\": \"v=TLSRPTv1; rua=mailto:tlsrpt@d%lu.example\","
			"\"policies\":[{\"policy-type\":9,\"policy-domain\": \"d%lu.example\"%s,\"t\":%d,\"f\":%d}]}",
			d, d, d, details, failed, failed);
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void addr(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", path);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sun;
	char buf[2048];

	if (argc == 5 && !strcmp(argv[1], "bulk")) {
		unsigned long count = strtoul(argv[3], NULL, 10), domains = strtoul(argv[4], NULL, 10);
		int s = socket(AF_UNIX, SOCK_DGRAM, 0);
		double t0;

		addr(&sun, argv[2]);
		if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
			perror("connect");
			return 1;
		}
		t0 = now();
		for (unsigned long i = 0; i < count; i++) {
			int n = make(buf, sizeof(buf), i, domains);

			while (send(s, buf, (size_t)n, 0) < 0) {
				if (errno != EINTR && errno != ENOBUFS && errno != EAGAIN) {
					perror("send");
					return 1;
				}
			}
		}
		printf("sent %lu in %.3f s\n", count, now() - t0);
		return 0;
	}
	if (argc == 6 && !strcmp(argv[1], "burst")) {
		int procs = atoi(argv[3]), per = atoi(argv[4]);
		unsigned long domains = strtoul(argv[5], NULL, 10);
		int go[2], res[2];
		long sent = 0, lost = 0;

		addr(&sun, argv[2]);
		if (pipe(go) != 0 || pipe(res) != 0)
			return 1;
		for (int p = 0; p < procs; p++) {
			if (fork() == 0) {
				char c;
				long counts[2] = { 0, 0 };

				close(go[1]);
				if (read(go[0], &c, 1) < 0)	/* start together */
					_exit(1);
				for (int i = 0; i < per; i++) {
					int n = make(buf, sizeof(buf), (unsigned long)(p * per + i), domains);
					int s = socket(AF_UNIX, SOCK_DGRAM, 0);

					if (sendto(s, buf, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&sun,
						   sizeof(sun)) < 0)
						counts[1]++;
					else
						counts[0]++;
					close(s);
				}
				if (write(res[1], counts, sizeof(counts)) != sizeof(counts))
					_exit(1);
				_exit(0);
			}
		}
		close(go[0]);
		close(go[1]);		/* EOF releases every child at once */
		close(res[1]);
		for (int p = 0; p < procs; p++) {
			long counts[2];

			if (read(res[0], counts, sizeof(counts)) == sizeof(counts)) {
				sent += counts[0];
				lost += counts[1];
			}
		}
		while (wait(NULL) > 0)
			;
		printf("sent %ld lost %ld\n", sent, lost);
		return 0;
	}
	fprintf(stderr, "usage: dgram_sender bulk SOCKET COUNT DOMAINS | burst SOCKET PROCS PER DOMAINS\n");
	return 2;
}
