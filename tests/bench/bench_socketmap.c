/*
 * bench_socketmap - load generator for tlsrpt-policyd: CONNS threads, each
 * on one connection, send socketmap lookups back to back (one outstanding
 * request per connection, as Postfix does) for SECONDS, cycling through
 * the domains given. Prints "LOOKUPS ERRORS" on stdout.
 *
 *   bench_socketmap SOCKET_PATH CONNS SECONDS DOMAIN...
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *path;
static char **domains;
static int ndomains;
static double seconds;

struct result {
	long ok, errors;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read one netstring reply; 0 if it starts with "OK ". */
static int read_reply(int fd, char *buf, size_t sz)
{
	size_t have = 0, need = 0;

	for (;;) {
		char *colon;
		ssize_t n = read(fd, buf + have, sz - have - 1);

		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		colon = strchr(buf, ':');
		if (colon) {
			need = (size_t)strtoul(buf, NULL, 10) + (size_t)(colon - buf) + 2;
			if (have >= need)
				return strncmp(colon + 1, "OK ", 3) == 0 ? 0 : 1;
		}
		if (have + 1 >= sz)
			return -1;
	}
}

static void *run(void *arg)
{
	struct result *r = arg;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	static __thread char buf[200000];
	double end = now() + seconds;
	long i = 0;

	memcpy(sun.sun_path, path, strlen(path));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		perror(path);
		r->errors++;
		return NULL;
	}
	while ((i & 63) != 0 || now() < end) {
		char req[600];
		const char *d = domains[i++ % ndomains];
		int n = snprintf(req, sizeof(req), "%zu:postfix %s,", strlen(d) + 8, d);

		if (write(fd, req, (size_t)n) != n)
			break;
		if (read_reply(fd, buf, sizeof(buf)) == 0)
			r->ok++;
		else
			r->errors++;
	}
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	int conns;
	pthread_t *t;
	struct result *r;
	long ok = 0, errors = 0;

	if (argc < 5) {
		fprintf(stderr, "usage: bench_socketmap SOCKET CONNS SECONDS DOMAIN...\n");
		return 64;
	}
	path = argv[1];
	conns = atoi(argv[2]);
	seconds = atof(argv[3]);
	domains = argv + 4;
	ndomains = argc - 4;
	if (conns < 1 || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return 64;
	t = calloc((size_t)conns, sizeof(*t));
	r = calloc((size_t)conns, sizeof(*r));
	for (int i = 0; i < conns; i++)
		pthread_create(&t[i], NULL, run, &r[i]);
	for (int i = 0; i < conns; i++) {
		pthread_join(t[i], NULL);
		ok += r[i].ok;
		errors += r[i].errors;
	}
	printf("%ld %ld\n", ok, errors);
	free(t);
	free(r);
	return 0;
}
