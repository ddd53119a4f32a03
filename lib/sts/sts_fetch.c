/*
 * sts_fetch - HTTPS fetch of an MTA-STS policy with libcurl. See
 * sts_fetch.h.
 *
 * SECURITY: the server is remote and untrusted until its certificate has
 * been validated, and the body stays untrusted after: it is bounded while
 * it is received, then given to the strict parser.
 */
#include "sts_fetch.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "log.h"
#include "netcheck.h"
#include "result.h"

#define MAX_ADDRS 8

int sts_fetch_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void sts_fetch_result_free(struct sts_fetch_result *r)
{
	free(r->body);
	sts_policy_free(&r->policy);
	r->body = NULL;
	r->len = 0;
}

static void fail(struct sts_fetch_result *r, int code, const char *what, const char *host)
{
	r->code = code;
	snprintf(r->err, sizeof(r->err), "%s%s%s", host, *host ? ": " : "", what);
}

/* Point a resolver state at "ADDR[:PORT]". */
static int use_resolver(res_state st, const char *resolver)
{
	char addr[64];
	const char *colon = strrchr(resolver, ':');
	long port = 53;
	struct in_addr in;

	if (strlen(resolver) >= sizeof(addr))
		return -1;
	snprintf(addr, sizeof(addr), "%s", resolver);
	if (colon) {
		char *end;

		addr[colon - resolver] = '\0';
		port = strtol(colon + 1, &end, 10);
		if (*end || port < 1 || port > 65535)
			return -1;
	}
	if (inet_pton(AF_INET, addr, &in) != 1)
		return -1;
	st->nscount = 1;
	st->nsaddr_list[0].sin_family = AF_INET;
	st->nsaddr_list[0].sin_addr = in;
	st->nsaddr_list[0].sin_port = htons((uint16_t)port);
	return 0;
}

/*
 * Look up A and AAAA of 'host' through 'resolver' and build a CURLOPT_RESOLVE
 * entry "HOST:PORT:ADDR,ADDR". Returns the number of addresses (0: none),
 * or -1 on a temporary failure.
 */
static int resolve_host(const char *host, int port, const char *resolver,
			struct buf *entry)
{
	struct __res_state st;
	unsigned char answer[4096];
	int naddr = 0, tempfail = 0;
	static const int types[] = { ns_t_a, ns_t_aaaa };

	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) != 0)
		return -1;
	if (use_resolver(&st, resolver) < 0) {
		res_nclose(&st);
		return -1;
	}
	buf_printf(entry, "%s:%d:", host, port);
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		int n = res_nquery(&st, host, ns_c_in, types[t], answer, sizeof(answer));
		ns_msg msg;

		if (n < 0) {
			if (h_errno == TRY_AGAIN || st.res_h_errno == TRY_AGAIN)
				tempfail = 1;
			continue;
		}
		if (ns_initparse(answer, n, &msg) < 0)
			continue;
		for (int i = 0; i < ns_msg_count(msg, ns_s_an) && naddr < MAX_ADDRS; i++) {
			ns_rr rr;
			char text[INET6_ADDRSTRLEN];

			if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
				break;
			if (ns_rr_type(rr) == ns_t_a && ns_rr_rdlen(rr) == 4)
				inet_ntop(AF_INET, ns_rr_rdata(rr), text, sizeof(text));
			else if (ns_rr_type(rr) == ns_t_aaaa && ns_rr_rdlen(rr) == 16)
				inet_ntop(AF_INET6, ns_rr_rdata(rr), text, sizeof(text));
			else
				continue;
			if (ns_rr_type(rr) == ns_t_aaaa)
				buf_printf(entry, "%s[%s]", naddr ? "," : "", text);
			else
				buf_printf(entry, "%s%s", naddr ? "," : "", text);
			naddr++;
		}
	}
	res_nclose(&st);
	if (naddr == 0 && tempfail)
		return -1;
	return entry->overflow ? -1 : naddr;
}

struct body {
	struct buf b;
	bool too_big;
	const struct sts_fetch_opts *o;
	char refused[160];	/* set when open_socket refused an address */
};

/* Every connection libcurl makes: refuse non-public addresses. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct body *body = arg;
	enum netcheck_class cls = netcheck_classify(&a->addr, (socklen_t)a->addrlen);
	int fd;

	(void)purpose;
	if (!netcheck_allowed(cls, body->o->allow_private, body->o->allow_loopback)) {
		char ip[INET6_ADDRSTRLEN];

		netcheck_addr_text(&a->addr, (socklen_t)a->addrlen, ip, sizeof(ip));
		snprintf(body->refused, sizeof(body->refused), "policy host address %s is %s (%s = no)",
			 ip, netcheck_name(cls), cls == NET_LOOPBACK ? "sts_allow_loopback_destinations"
								     : "sts_allow_private_destinations");
		return CURL_SOCKET_BAD;
	}
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body *body = arg;
	size_t n = size * nmemb;

	if (buf_add(&body->b, ptr, n) < 0) {
		body->too_big = true;
		return 0;	/* aborts the transfer */
	}
	return n;
}

/* Is this Content-Type text/plain (parameters ignored)? */
static bool is_text_plain(const char *ct)
{
	size_t n = strlen("text/plain");

	if (ct == NULL)
		return false;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, "text/plain", n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

static int webpki_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return 1;
	default:
		return 0;
	}
}

int sts_fetch(const char *domain, const struct sts_fetch_opts *o,
	      struct sts_fetch_result *r)
{
	char url[600], host[300];
	struct body body;
	struct buf resolve;
	struct curl_slist *rlist = NULL;
	CURL *h;
	CURLcode rc;
	char *ct = NULL;
	char perr[200], cerr[CURL_ERROR_SIZE] = "";

	memset(r, 0, sizeof(*r));
	snprintf(host, sizeof(host), "mta-sts.%s", domain);
	if (o->port == 443)
		snprintf(url, sizeof(url), "https://%s/.well-known/mta-sts.txt", host);
	else
		snprintf(url, sizeof(url), "https://%s:%d/.well-known/mta-sts.txt", host, o->port);

	buf_init(&resolve, 2048);
	if (o->resolver && *o->resolver) {
		int n = resolve_host(host, o->port, o->resolver, &resolve);

		if (n <= 0) {
			fail(r, RESULT_STS_POLICY_FETCH_ERROR, n == 0 ?
			     "policy host does not resolve" : "DNS lookup failed", host);
			buf_free(&resolve);
			return r->code;
		}
		rlist = curl_slist_append(NULL, resolve.data);
	}
	buf_free(&resolve);

	h = curl_easy_init();
	if (h == NULL) {
		curl_slist_free_all(rlist);
		fail(r, RESULT_STS_POLICY_FETCH_ERROR, "cannot create a curl handle", "");
		return r->code;
	}
	buf_init(&body.b, o->max_size);
	body.too_big = false;
	body.o = o;
	body.refused[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, o->timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o->timeout);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file && *o->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_size);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tlsrpt-policyd");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &body);
	if (rlist)
		curl_easy_setopt(h, CURLOPT_RESOLVE, rlist);

	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->http_status);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);

	if (body.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(r->err, sizeof(r->err), "policy larger than %zu bytes", o->max_size);
		r->code = RESULT_STS_POLICY_FETCH_ERROR;
	} else if (rc != CURLE_OK && body.refused[0]) {
		/* no address of the host may be contacted */
		r->code = RESULT_STS_POLICY_FETCH_ERROR;
		snprintf(r->err, sizeof(r->err), "%s: %s", host, body.refused);
	} else if (rc != CURLE_OK) {
		r->code = webpki_error(rc) ? RESULT_STS_WEBPKI_INVALID
					   : RESULT_STS_POLICY_FETCH_ERROR;
		snprintf(r->err, sizeof(r->err), "%s: %s", host,
			 cerr[0] ? cerr : curl_easy_strerror(rc));
	} else if (r->http_status != 200) {
		r->code = RESULT_STS_POLICY_FETCH_ERROR;
		snprintf(r->err, sizeof(r->err), "%s: HTTP status %ld", host, r->http_status);
	} else {
		r->body = buf_steal(&body.b, &r->len);
		if (r->body == NULL) {
			r->body = strdup("");
			r->len = 0;
		}
		if (!is_text_plain(ct)) {
			r->code = RESULT_STS_POLICY_INVALID;
			snprintf(r->err, sizeof(r->err), "media type is not text/plain");
		} else if (sts_policy_parse(r->body, r->len, o->max_size, &r->policy,
					    perr, sizeof(perr)) != STS_POLICY_OK) {
			r->code = RESULT_STS_POLICY_INVALID;
			snprintf(r->err, sizeof(r->err), "invalid policy: %s", perr);
		}
	}
	buf_free(&body.b);
	curl_easy_cleanup(h);
	curl_slist_free_all(rlist);
	return r->code;
}
