/*
 * ctl_sts - "tlsrptctl sts": the MTA-STS policy cache of tlsrpt-policyd.
 *
 *   sts show DOMAIN     the cached policy, when it was fetched, when it
 *                       expires, what discovery found, the last error; read
 *                       from sts_cache_file (validated like untrusted input)
 *   sts refresh DOMAIN  asks the running tlsrpt-policyd over policy_socket
 *                       (request name "tlsrptctl-refresh") to look up DANE
 *                       and discover and fetch now; the daemon stays the only
 *                       writer of the cache file and saves it before it
 *                       answers
 *   sts stats           the running tlsrpt-policyd's counters (request name
 *                       "tlsrptctl-stats"), one "name value" line each
 *
 * Exit: 0 done (refresh: fetched or unchanged), 1 domain not cached or
 * without policy, 64 usage, 69 the service is unreachable or the fetch
 * failed, 74 the cache file is unreadable, 77 permission denied (the cache
 * file, the socket).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"
#include "log.h"
#include "result.h"
#include "socketmap.h"
#include "sts_cache.h"
#include "sts_policy.h"

static int lower_domain(const char *in, char *out, size_t outsz)
{
	size_t n = strlen(in);

	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n >= outsz)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return -1;
		out[i] = c;
	}
	out[n] = '\0';
	return 0;
}

static const char *when(int64_t t, char *buf, size_t sz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0)
		return "never";
	gmtime_r(&tt, &tm);
	strftime(buf, sz, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static int sts_show(const struct conf *c, const char *domain)
{
	struct sts_cache *cache = sts_cache_new();
	struct sts_entry e;
	char err[600], t1[32];
	size_t skipped;
	int64_t now = (int64_t)time(NULL);
	int found;

	if (cache == NULL)
		return CTL_SOFTWARE;
	if (sts_cache_load(cache, conf_str(c, "sts_cache_file"),
			   (size_t)conf_int(c, "sts_max_policy_size"), &skipped, err,
			   sizeof(err)) < 0) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		sts_cache_free(cache);
		return ctl_status_of(err, CTL_IOERR);
	}
	found = sts_cache_get(cache, domain, &e);
	sts_cache_free(cache);
	if (found <= 0) {
		fprintf(stderr, "tlsrptctl: %s: not in the policy cache\n", domain);
		return CTL_EMPTY;
	}
	printf("domain: %s\n", e.domain);
	if (e.have_policy) {
		struct sts_policy p;

		printf("policy id: %s\n", e.id);
		printf("fetched: %s\n", when(e.fetched, t1, sizeof(t1)));
		printf("expires: %s (%s)\n", when(e.expires, t1, sizeof(t1)),
		       sts_entry_valid(&e, now) ? "valid" : "expired");
		if (sts_policy_parse(e.text, e.len, SIZE_MAX, &p, err, sizeof(err)) == STS_POLICY_OK) {
			printf("policy:\n");
			for (size_t i = 0; i < p.nlines; i++) {
				char line[1024];

				printf("  %s\n", log_printable(line, sizeof(line), p.lines[i],
							       strlen(p.lines[i])));
			}
			sts_policy_free(&p);
		}
	} else {
		printf("policy: none cached\n");
	}
	printf("discovery: %s at %s\n", e.txt_present ? "TXT record" : "no valid TXT record",
	       when(e.checked, t1, sizeof(t1)));
	if (e.txt_present)
		printf("discovered id: %s\n", e.txt_id);
	printf("last fetch attempt: %s\n", when(e.last_attempt, t1, sizeof(t1)));
	if (e.last_error_code) {
		char line[600];

		printf("last error: %s at %s: %s\n", result_code_name(e.last_error_code),
		       when(e.last_failure, t1, sizeof(t1)),
		       log_printable(line, sizeof(line), e.last_error, strlen(e.last_error)));
	} else {
		printf("last error: none\n");
	}
	sts_entry_free(&e);
	return CTL_OK;
}

static int connect_service(const char *spec)
{
	int fd = -1;

	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		if (strlen(spec + 5) >= sizeof(sun.sun_path))
			return -1;
		memcpy(sun.sun_path, spec + 5, strlen(spec + 5));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
			close(fd);
			fd = -1;
		}
	} else if (strncmp(spec, "inet:", 5) == 0) {
		char host[256];
		const char *colon = strrchr(spec + 5, ':');
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;

		if (colon == NULL || (size_t)(colon - spec - 5) >= sizeof(host))
			return -1;
		memcpy(host, spec + 5, (size_t)(colon - spec - 5));
		host[colon - spec - 5] = '\0';
		if (getaddrinfo(*host ? host : "127.0.0.1", colon + 1, &hints, &ai) != 0)
			return -1;
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
		freeaddrinfo(ai);
	}
	return fd;
}

/*
 * Send the request "NAME KEY" to the running tlsrpt-policyd and put its
 * reply, made printable, into 'line'. Returns CTL_OK, or CTL_UNAVAILABLE
 * after saying why.
 */
static int ask_service(const struct conf *c, const char *name, const char *key, char *line,
		       size_t linesz)
{
	const char *spec = conf_str(c, "policy_socket");
	char req[400], in[SOCKETMAP_MAX_REPLY + 16];
	size_t inlen = 0;
	int fd = connect_service(spec), n, timeout_ms;
	const char *p = NULL;
	size_t plen = 0, used;

	if (fd < 0) {
		int e = errno;

		fprintf(stderr, "tlsrptctl: cannot reach tlsrpt-policyd at %s: %s\n", spec,
			strerror(e));
		return ctl_errno_status(e, CTL_UNAVAILABLE);
	}
	n = snprintf(req, sizeof(req), "%zu:%s %s,", strlen(name) + 1 + strlen(key), name, key);
	if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
		fprintf(stderr, "tlsrptctl: %s: %s\n", spec, strerror(errno));
		close(fd);
		return CTL_UNAVAILABLE;
	}
	timeout_ms = (int)(conf_int(c, "sts_fetch_timeout") + 20) * 1000;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;
		enum socketmap_status st = socketmap_parse(in, inlen, SOCKETMAP_MAX_REPLY, &p, &plen,
							   &used, NULL);

		if (st == SOCKETMAP_OK)
			break;
		if (st == SOCKETMAP_BAD || inlen == sizeof(in) || poll(&pfd, 1, timeout_ms) <= 0 ||
		    (r = read(fd, in + inlen, sizeof(in) - inlen)) <= 0) {
			fprintf(stderr, "tlsrptctl: no valid answer from tlsrpt-policyd\n");
			close(fd);
			return CTL_UNAVAILABLE;
		}
		inlen += (size_t)r;
	}
	close(fd);
	log_printable(line, linesz, p, plen);
	return CTL_OK;
}

static int sts_refresh(const struct conf *c, const char *domain)
{
	char line[1024];
	int rc = ask_service(c, "tlsrptctl-refresh", domain, line, sizeof(line));

	if (rc != CTL_OK)
		return rc;
	if (strncmp(line, "OK ", 3) == 0) {
		printf("%s: %s\n", domain, line + 3);
		if (strncmp(line + 3, "fetched", 7) == 0 || strncmp(line + 3, "unchanged", 9) == 0)
			return CTL_OK;
		if (strncmp(line + 3, "no-policy", 9) == 0)
			return CTL_EMPTY;
		return CTL_UNAVAILABLE;
	}
	fprintf(stderr, "tlsrptctl: %s: %s\n", domain, line);
	return strncmp(line, "PERM", 4) == 0 ? CTL_USAGE : CTL_UNAVAILABLE;
}

const char ctl_sts_usage[] =
	"sts show DOMAIN\n"
	"    the cached MTA-STS policy of a domain, its expiry and the last error\n"
	"sts refresh DOMAIN\n"
	"    ask tlsrpt-policyd to discover and fetch the domain's policy now\n"
	"sts stats\n"
	"    the policy service's counters (lookups, replies, fetches, DANE)\n";

/* The service's counters, one "name value" line each. */
static int sts_stats(const struct conf *c)
{
	char line[2048], *save = NULL;
	int rc = ask_service(c, "tlsrptctl-stats", "-", line, sizeof(line));

	if (rc != CTL_OK)
		return rc;
	if (strncmp(line, "OK ", 3) != 0) {
		fprintf(stderr, "tlsrptctl: %s\n", line);
		return CTL_UNAVAILABLE;
	}
	for (char *kv = strtok_r(line + 3, " ", &save); kv; kv = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(kv, '=');

		if (eq) {
			*eq = '\0';
			printf("%s %s\n", kv, eq + 1);
		}
	}
	return CTL_OK;
}

int ctl_sts(int argc, char **argv, const struct conf *c)
{
	char domain[STS_DOMAIN_MAX + 1];

	if (argc == 2 && strcmp(argv[1], "stats") == 0)
		return sts_stats(c);
	if (argc != 3 || (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "refresh") != 0))
		return ctl_usage(ctl_sts_usage);
	if (lower_domain(argv[2], domain, sizeof(domain)) < 0) {
		fprintf(stderr, "tlsrptctl: %s: not a domain name\n", argv[2]);
		return CTL_USAGE;
	}
	return strcmp(argv[1], "show") == 0 ? sts_show(c, domain) : sts_refresh(c, domain);
}
