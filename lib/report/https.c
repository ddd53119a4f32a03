/*
 * https - POST reports to https: rua destinations (RFC 8460 5.4):
 * https_post_all() of deliver.h, with libcurl's multi interface.
 *
 * Per job: the URL must be https:// (else permanent failure, nothing sent);
 * POST of the raw gzip with Content-Type: application/tlsrpt+gzip and no
 * Content-Encoding; no redirects (a 3xx is a failure); https_connect_timeout
 * and https_timeout; certificate and host name verification unless
 * https_verify = no; https_ca_file; proxies from the environment ignored.
 * Failures are classed as deliver.h says: a refused URI or address, a
 * host that does not exist (NXDOMAIN) and 410 about the destination; 400,
 * 413, 415 and 422 about this report; everything else temporary.
 * Only 2xx counts as delivered, and a complete 2xx status does even when
 * the connection fails after it (no close_notify, reset, short body): the
 * endpoint has the report, a retry would be a duplicate. At most
 * https_concurrency transfers run at
 * once; connections to the same host are reused between jobs.
 *
 * SECURITY
 *	A rua URI is attacker-controlled DNS data. Every socket libcurl opens
 *	goes through open_socket(), which checks the address actually being
 *	connected to (after DNS, so rebinding and A records pointing inside
 *	cannot bypass it): loopback, private, link-local, unique-local,
 *	multicast, unspecified and reserved addresses (IPv4, IPv6 and IPv4
 *	embedded in IPv6) are refused unless allow_private_destinations (or,
 *	for loopback only, allow_loopback_destinations). A refused job is a
 *	permanent failure. The response body is read up to 64 KiB (more aborts
 *	the transfer) and only its start, made printable, goes into detail.
 */
#include "deliver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "netcheck.h"

#define URL_MAX 2048
#define RESPONSE_KEEP 160	/* body bytes kept for the detail */
#define RESPONSE_MAX (64 * 1024)	/* more aborts the transfer */

struct transfer {
	struct https_job *job;
	CURL *h;
	struct curl_slist *hdrs;
	bool allow_private, allow_loopback;
	const char *resolver;	/* dns_resolver, for the NXDOMAIN check */
	char cerr[CURL_ERROR_SIZE];
	char refused[320];	/* why the destination was refused (address, NXDOMAIN) */
	char body[RESPONSE_KEEP];
	size_t bodylen, total;
	bool too_big;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}


/* Every connection libcurl makes: refuse non-public addresses. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct transfer *t = arg;
	enum netcheck_class cls = netcheck_classify(&a->addr, (socklen_t)a->addrlen);
	int fd;

	(void)purpose;
	if (!netcheck_allowed(cls, t->allow_private, t->allow_loopback)) {
		char ip[INET6_ADDRSTRLEN];

		netcheck_addr_text(&a->addr, (socklen_t)a->addrlen, ip, sizeof(ip));
		snprintf(t->refused, sizeof(t->refused), "destination address %s is %s (%s = no)",
			 ip, netcheck_name(cls),
			 cls == NET_LOOPBACK ? "allow_loopback_destinations"
					     : "allow_private_destinations");
		return CURL_SOCKET_BAD;
	}
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct transfer *t = arg;
	size_t n = size * nmemb, k = n;

	if (k > sizeof(t->body) - t->bodylen)
		k = sizeof(t->body) - t->bodylen;
	memcpy(t->body + t->bodylen, data, k);
	t->bodylen += k;
	t->total += n;
	if (t->total > RESPONSE_MAX) {
		t->too_big = true;
		return 0;	/* abort: we have the status already */
	}
	return n;
}

/* Is the URL acceptable to try? (permanent failure otherwise) */
static bool url_ok(const char *url, struct delivery_result *res)
{
	char pr[200];
	size_t n, i;

	if (!url) {
		delivery_result_dest(res, 0, "no URL");
		return false;
	}
	n = strnlen(url, URL_MAX + 1);
	if (n > URL_MAX) {
		delivery_result_dest(res, 0, "URL longer than %d bytes", URL_MAX);
		return false;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f) {
			delivery_result_dest(res, 0, "URL \"%s\" has a space, control or non-ASCII byte",
				   log_printable(pr, sizeof(pr), url, n));
			return false;
		}
	if (n <= 8 || strncasecmp(url, "https://", 8) != 0) {
		delivery_result_dest(res, 0, "URL \"%s\" refused: only https:// is allowed",
			   log_printable(pr, sizeof(pr), url, n));
		return false;
	}
	return true;
}

static int start(CURLM *m, const struct conf *c, struct transfer *t)
{
	const char *ca = conf_str(c, "https_ca_file");
	bool verify = conf_bool(c, "https_verify");
	struct https_job *j = t->job;

	t->allow_private = conf_bool(c, "allow_private_destinations");
	t->allow_loopback = conf_bool(c, "allow_loopback_destinations");
	t->resolver = conf_str(c, "dns_resolver");
	t->h = curl_easy_init();
	if (!t->h)
		return -1;
	t->hdrs = curl_slist_append(NULL, "Content-Type: application/tlsrpt+gzip");
	if (t->hdrs)
		t->hdrs = curl_slist_append(t->hdrs, "Expect:");
	if (!t->hdrs)
		return -1;
	curl_easy_setopt(t->h, CURLOPT_URL, j->url);
	curl_easy_setopt(t->h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(t->h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(t->h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(t->h, CURLOPT_PROXY, "");
	curl_easy_setopt(t->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->h, CURLOPT_POST, 1L);
	curl_easy_setopt(t->h, CURLOPT_POSTFIELDS, (const char *)j->body);
	curl_easy_setopt(t->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->len);
	curl_easy_setopt(t->h, CURLOPT_HTTPHEADER, t->hdrs);
	curl_easy_setopt(t->h, CURLOPT_USERAGENT, "tlsrptd/" TLSRPT_VERSION);
	curl_easy_setopt(t->h, CURLOPT_CONNECTTIMEOUT, (long)conf_int(c, "https_connect_timeout"));
	curl_easy_setopt(t->h, CURLOPT_TIMEOUT, (long)conf_int(c, "https_timeout"));
	curl_easy_setopt(t->h, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
	curl_easy_setopt(t->h, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	if (*ca)
		curl_easy_setopt(t->h, CURLOPT_CAINFO, ca);
	curl_easy_setopt(t->h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(t->h, CURLOPT_OPENSOCKETDATA, t);
	curl_easy_setopt(t->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(t->h, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(t->h, CURLOPT_ERRORBUFFER, t->cerr);
	curl_easy_setopt(t->h, CURLOPT_PRIVATE, t);
	return curl_multi_add_handle(m, t->h) == CURLM_OK ? 0 : -1;
}

/*
 * curl could not resolve the host: is that because the name does not exist
 * (NXDOMAIN, about the destination) or because DNS did not answer (to be
 * retried)? Asks the resolver (dns_resolver, or the system's) once more;
 * true with the reason in t->refused when the name does not exist.
 */
static bool nxdomain(struct transfer *t)
{
	CURLU *u = curl_url();
	char *host = NULL, err[300];
	bool gone = false;

	if (u && curl_url_set(u, CURLUPART_URL, t->job->url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '[' &&
	    dns_name_exists(host, t->resolver, err, sizeof(err)) == DNS_NOTFOUND) {
		char pr[300];

		snprintf(t->refused, sizeof(t->refused), "host %s does not exist (NXDOMAIN)",
			 log_printable(pr, sizeof(pr), host, strlen(host)));
		gone = true;
	}
	curl_free(host);
	curl_url_cleanup(u);
	return gone;
}

/* Fill the job's result from a finished transfer. */
static void finish(struct transfer *t, CURLcode rc)
{
	struct delivery_result *res = &t->job->res;
	char body[RESPONSE_KEEP * 4 + 8], cerr[CURL_ERROR_SIZE * 4 + 8];
	long code = 0;
	size_t i;

	curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &code);
	for (i = 0; i < t->bodylen; i++)
		if (t->body[i] == '\r' || t->body[i] == '\n' || t->body[i] == '\t')
			t->body[i] = ' ';
	log_printable(body, sizeof(body), t->body, t->bodylen);
	if (code >= 200 && code <= 299) {
		/* The endpoint said it took the report; what happens to the
		 * connection afterwards (a peer that closes without TLS
		 * close_notify, which curl with OpenSSL 3.5 reports as error
		 * 56, a reset, a short body) does not undo that, and a retry
		 * would be a duplicate. */
		if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t->too_big)) {
			delivery_result_set(res, true, false, code, "HTTP %ld", code);
		} else {
			const char *e = t->cerr[0] ? t->cerr : curl_easy_strerror(rc);

			log_printable(cerr, sizeof(cerr), e, strlen(e));
			delivery_result_set(res, true, false, code, "HTTP %ld (then the connection "
					    "failed: %s (curl %d); the complete status counts)",
					    code, cerr, (int)rc);
		}
		return;
	}
	if (t->refused[0] && rc != CURLE_OK && rc != CURLE_WRITE_ERROR) {
		/* no other address of the host was usable (a refused address is
		 * fine when curl went on to a public one and delivered) */
		delivery_result_dest(res, 0, "refused: %s", t->refused);
		return;
	}
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t->too_big)) {
		if (code >= 300 && code <= 399) {
			const char *loc = NULL;
			char pr[256];

			curl_easy_getinfo(t->h, CURLINFO_REDIRECT_URL, &loc);
			delivery_result_set(res, false, false, code, "HTTP %ld: redirect to %s not followed",
				   code, loc ? log_printable(pr, sizeof(pr), loc, strlen(loc)) : "?");
		} else if (code == 410) {
			/* Gone: the endpoint says it is gone for good (RFC 9110 15.5.11) */
			delivery_result_dest(res, code, "HTTP %ld%s%s%s", code,
					     t->bodylen ? ": " : "", body, t->too_big ? " (body cut)" : "");
		} else {
			/* the request itself, i.e. this report, is refused */
			bool report = code == 400 || code == 413 || code == 415 || code == 422;

			delivery_result_set(res, false, report, code, "HTTP %ld%s%s%s", code,
				   t->bodylen ? ": " : "", body, t->too_big ? " (body cut)" : "");
		}
		return;
	}
	if (rc == CURLE_COULDNT_RESOLVE_HOST && nxdomain(t)) {
		delivery_result_dest(res, 0, "%s", t->refused);
		return;
	}
	log_printable(cerr, sizeof(cerr), t->cerr[0] ? t->cerr : curl_easy_strerror(rc),
		      strlen(t->cerr[0] ? t->cerr : curl_easy_strerror(rc)));
	delivery_result_set(res, false, false, code, "%s (curl %d)", cerr, (int)rc);
}

static void cleanup(CURLM *m, struct transfer *t)
{
	if (t->h) {
		curl_multi_remove_handle(m, t->h);
		curl_easy_cleanup(t->h);
	}
	curl_slist_free_all(t->hdrs);
	t->h = NULL;
	t->hdrs = NULL;
}

/* Tell the caller about the jobs in fin[0..*k) and empty the list; false
 * when it wants no more transfers started. */
static bool report_done(https_done_fn done, void *arg, struct https_job **fin, size_t *k)
{
	int rc = 0;

	if (done && *k > 0)
		rc = done(arg, fin, *k);
	*k = 0;
	return rc == 0;
}

void https_post_all(const struct conf *c, struct https_job *jobs, size_t n,
		    https_done_fn done, void *arg)
{
	size_t conc = (size_t)conf_int(c, "https_concurrency"), next = 0, active = 0, i, k = 0;
	struct transfer *ts;
	struct https_job **fin;
	bool more = true;	/* the caller still wants transfers started */
	CURLM *m;

	for (i = 0; i < n; i++) {
		memset(&jobs[i].res, 0, sizeof(jobs[i].res));
		delivery_result_set(&jobs[i].res, false, false, 0, "not attempted");
	}
	if (n == 0)
		return;
	pthread_once(&curl_once, curl_init_once);
	ts = calloc(n, sizeof(*ts));
	fin = calloc(n, sizeof(*fin));
	m = curl_multi_init();
	if (!ts || !fin || !m) {
		for (i = 0; i < n; i++) {
			delivery_result_set(&jobs[i].res, false, false, 0, "out of memory");
			if (fin)
				fin[k++] = &jobs[i];
		}
		if (fin)
			report_done(done, arg, fin, &k);
		free(ts);
		free(fin);
		if (m)
			curl_multi_cleanup(m);
		return;
	}
	for (;;) {
		struct CURLMsg *msg;
		int running, left;

		while (more && active < conc && next < n) {
			struct transfer *t = &ts[next];

			t->job = &jobs[next++];
			if (!url_ok(t->job->url, &t->job->res)) {
				fin[k++] = t->job;
				continue;
			}
			if (start(m, c, t) < 0) {
				delivery_result_set(&t->job->res, false, false, 0, "cannot set up transfer");
				cleanup(m, t);
				fin[k++] = t->job;
				continue;
			}
			active++;
		}
		if (k > 0)
			more = report_done(done, arg, fin, &k) && more;
		if (active == 0) {
			if (more && next < n)
				continue;
			break;
		}
		if (curl_multi_perform(m, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(m, &left))) {
			struct transfer *t;
			char *priv = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			t = (struct transfer *)(void *)priv;
			if (!t)
				continue;
			finish(t, msg->data.result);
			cleanup(m, t);
			active--;
			fin[k++] = t->job;
		}
		/* the outcomes that came in together, recorded before anything else */
		if (k > 0)
			more = report_done(done, arg, fin, &k) && more;
		if (active > 0 && (size_t)running == active &&
		    curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK)
			break;
	}
	/* only after a multi failure: whatever still runs is a failure */
	for (i = 0; i < n; i++)
		if (ts[i].h) {
			delivery_result_set(&ts[i].job->res, false, false, 0, "transfer aborted (curl multi error)");
			cleanup(m, &ts[i]);
			fin[k++] = ts[i].job;
		}
	report_done(done, arg, fin, &k);
	curl_multi_cleanup(m);
	free(ts);
	free(fin);
}
