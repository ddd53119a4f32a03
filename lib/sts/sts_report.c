/*
 * sts_report - fetch failures as libtlsrpt datagrams. See sts_report.h.
 *
 * SECURITY: the TLSRPT record and the fetched lines are untrusted: the
 * record is made printable, every string is JSON-escaped, the datagram is
 * bounded (DGRAM_MAX) and dropped with a warning when longer.
 */
#include "sts_report.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "dns.h"
#include "log.h"
#include "result.h"
#include "sts_policy.h"

#define DGRAM_MAX (200 * 1024)

static void json_str(struct buf *b, const char *s, size_t n)
{
	buf_addc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			buf_addc(b, '\\');
			buf_addc(b, (char)c);
		} else if (c < 0x20 || c == 0x7f) {
			buf_printf(b, "\\u%04x", c);
		} else {
			buf_addc(b, (char)c);
		}
	}
	buf_addc(b, '"');
}

/* The one TLSRPT record of 'domain' (printable), or -1. */
static int tlsrpt_record(const char *resolver, const char *domain, struct buf *pr)
{
	struct dns_txt t;
	char name[STS_DOMAIN_MAX + 16], err[200];
	int found = 0, which = 0;

	snprintf(name, sizeof(name), "_smtp._tls.%s", domain);
	if (dns_lookup_txt(name, resolver, &t, err, sizeof(err)) != DNS_OK)
		return -1;
	for (size_t i = 0; i < t.n; i++) {
		const char *r = t.rec[i];
		size_t k = 10;

		if (t.len[i] < 10 || memcmp(r, "v=TLSRPTv1", 10) != 0)
			continue;
		while (k < t.len[i] && (r[k] == ' ' || r[k] == '\t'))
			k++;
		if (k < t.len[i] && r[k] == ';') {
			found++;
			which = (int)i;
		}
	}
	if (found == 1) {
		for (size_t k = 0; k < t.len[which]; k++) {
			unsigned char c = (unsigned char)t.rec[which][k];

			buf_addc(pr, c < 0x20 || c == 0x7f ? ' ' : (char)c);
		}
	}
	dns_txt_free(&t);
	return found == 1 ? 0 : -1;
}

static void add_lines(struct buf *b, const char *key, char **v, size_t n)
{
	if (n == 0)
		return;
	buf_printf(b, ",\"%s\":[", key);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addc(b, ',');
		json_str(b, v[i], strlen(v[i]));
	}
	buf_addc(b, ']');
}

/* Send datagram 'd' about 'domain' to the collector at 'path'. */
static void send_dgram(const char *path, const char *domain, int code, const struct buf *d)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (d->overflow || strlen(path) >= sizeof(sun.sun_path)) {
		log_warn("%s: failure datagram not sent (too long)", domain);
		return;
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, d->data, d->len, MSG_DONTWAIT | MSG_NOSIGNAL,
			     (struct sockaddr *)&sun, sizeof(sun)) < 0)
		log_warn("%s: cannot send the failure to %s: %s", domain, path, strerror(errno));
	else
		log_debug("%s: reported %s to the collector", domain, result_code_name(code));
	if (fd >= 0)
		close(fd);
}

void sts_report_failure(const char *path, const char *resolver, const struct sts_entry *e,
			int code, const char *body, size_t blen)
{
	struct buf pr, d;
	struct sts_policy cached;
	bool have_cached = false;
	char err[200];

	buf_init(&pr, 8192);
	if (tlsrpt_record(resolver, e->domain, &pr) < 0) {
		log_debug("%s: no TLSRPT record, failure not reported", e->domain);
		buf_free(&pr);
		return;
	}
	if (e->have_policy && sts_policy_parse(e->text, e->len, SIZE_MAX, &cached, err,
					       sizeof(err)) == STS_POLICY_OK)
		have_cached = true;
	if (have_cached && cached.mode == STS_MODE_NONE && sts_entry_valid(e, time(NULL))) {
		sts_policy_free(&cached);	/* RFC 8461 6: not for mode none */
		buf_free(&pr);
		return;
	}
	buf_init(&d, DGRAM_MAX);
	buf_adds(&d, "{\"d\": ");
	json_str(&d, e->domain, strlen(e->domain));
	buf_adds(&d, ",\"pr\": ");
	json_str(&d, pr.data ? pr.data : "", pr.len);
	buf_adds(&d, ",\"policies\":[{\"policy-type\":2,\"policy-domain\": ");
	json_str(&d, e->domain, strlen(e->domain));
	if (have_cached) {
		add_lines(&d, "policy-string", cached.lines, cached.nlines);
		add_lines(&d, "mx-host", cached.mx, cached.nmx);
	} else if (code == RESULT_STS_POLICY_INVALID && body) {
		/* the lines fetched, including their errors */
		char **lines = NULL;
		size_t n = 0;
		const char *p = body, *end = body + blen;

		while (p < end && n < 1000) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			char **nv = realloc(lines, (n + 1) * sizeof(*lines));

			if (nv == NULL)
				break;
			lines = nv;
			if (le > p && le[-1] == '\r')
				le--;
			lines[n] = strndup(p, (size_t)(le - p));
			if (lines[n] == NULL)
				break;
			n++;
			p = nl ? nl + 1 : end;
		}
		add_lines(&d, "policy-string", lines, n);
		for (size_t i = 0; i < n; i++)
			free(lines[i]);
		free(lines);
	}
	buf_printf(&d, ",\"failure-details\":[{\"c\":%d}],\"t\":1,\"f\":1}]}", code);
	if (have_cached)
		sts_policy_free(&cached);
	buf_free(&pr);
	send_dgram(path, e->domain, code, &d);
	buf_free(&d);
}


void sts_report_dane_failure(const char *path, const char *resolver, const char *domain,
			     const char *host, int code)
{
	struct buf pr, d;

	buf_init(&pr, 8192);
	if (tlsrpt_record(resolver, domain, &pr) < 0) {
		log_debug("%s: no TLSRPT record, DANE failure not reported", domain);
		buf_free(&pr);
		return;
	}
	buf_init(&d, 16384);
	buf_adds(&d, "{\"d\": ");
	json_str(&d, domain, strlen(domain));
	buf_adds(&d, ",\"pr\": ");
	json_str(&d, pr.data ? pr.data : "", pr.len);
	buf_adds(&d, ",\"policies\":[{\"policy-type\":1,\"policy-domain\": ");
	json_str(&d, host, strlen(host));
	buf_printf(&d, ",\"failure-details\":[{\"c\":%d,\"n\": ", code);
	json_str(&d, host, strlen(host));
	buf_adds(&d, "}],\"t\":1,\"f\":1}]}");
	buf_free(&pr);
	send_dgram(path, domain, code, &d);
	buf_free(&d);
}
