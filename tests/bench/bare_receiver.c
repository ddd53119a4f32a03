/*
 * bare_receiver - the benchmark's baseline: a receiver that only drains the
 * socket (the same recvmmsg batches and buffer sizes as tlsrptd) and
 * discards. Runs until COUNT datagrams arrived or IDLE seconds passed
 * without any; prints "received N in S s, cpu C s".
 *
 *   bare_receiver SOCKET COUNT IDLE
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define BUF (256 * 1024)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	unsigned long want, got = 0;
	int idle, s, rcvbuf = 4 << 20;
	char *bufs = malloc((size_t)BATCH * BUF);
	double t0 = 0, last = 0;
	struct rusage ru;

	if (argc != 4 || bufs == NULL)
		return 2;
	want = strtoul(argv[2], NULL, 10);
	idle = atoi(argv[3]);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", argv[1]);
	unlink(argv[1]);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (bind(s, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		perror("bind");
		return 1;
	}
	setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	printf("ready\n");
	fflush(stdout);
	while (got < want) {
		struct pollfd pfd = { .fd = s, .events = POLLIN };
		struct mmsghdr msgs[BATCH];
		struct iovec iov[BATCH];
		int n;

		if (poll(&pfd, 1, idle * 1000) == 0)
			break;
		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs + (size_t)i * BUF;
			iov[i].iov_len = BUF;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		while ((n = recvmmsg(s, msgs, BATCH, MSG_DONTWAIT, NULL)) > 0) {
			if (got == 0)
				t0 = now();
			got += (unsigned long)n;
			last = now();
			if (n < BATCH)
				break;
		}
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("received %lu in %.3f s, cpu %.3f s\n", got, last - t0,
	       (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	unlink(argv[1]);
	return 0;
}
