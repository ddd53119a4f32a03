/*
 * result - names of result codes and policy types. See result.h.
 */
#include "result.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const struct {
	int code;
	const char *name;
} result_names[] = {
	{ RESULT_STARTTLS_NOT_SUPPORTED, "starttls-not-supported" },
	{ RESULT_CERTIFICATE_HOST_MISMATCH, "certificate-host-mismatch" },
	{ RESULT_CERTIFICATE_NOT_TRUSTED, "certificate-not-trusted" },
	{ RESULT_CERTIFICATE_EXPIRED, "certificate-expired" },
	{ RESULT_VALIDATION_FAILURE, "validation-failure" },
	{ RESULT_STS_POLICY_FETCH_ERROR, "sts-policy-fetch-error" },
	{ RESULT_STS_POLICY_INVALID, "sts-policy-invalid" },
	{ RESULT_STS_WEBPKI_INVALID, "sts-webpki-invalid" },
	{ RESULT_TLSA_INVALID, "tlsa-invalid" },
	{ RESULT_DNSSEC_INVALID, "dnssec-invalid" },
	{ RESULT_DANE_REQUIRED, "dane-required" },
};

const char *result_code_name(int code)
{
	for (size_t i = 0; i < sizeof(result_names) / sizeof(result_names[0]); i++)
		if (result_names[i].code == code)
			return result_names[i].name;
	return NULL;
}

int result_code_from_name(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(result_names) / sizeof(result_names[0]); i++) {
		const char *n = result_names[i].name;
		size_t j;

		if (strlen(n) != len)
			continue;
		for (j = 0; j < len; j++) {
			char c = name[j] == '_' ? '-' : name[j];
			if (c != n[j])
				break;
		}
		if (j == len)
			return result_names[i].code;
	}
	return 0;
}

const char *result_policy_type_name(int type)
{
	switch (type) {
	case POLICY_TLSA: return "tlsa";
	case POLICY_STS: return "sts";
	case POLICY_NONE: return "no-policy-found";
	default: return NULL;
	}
}

bool result_is_uri(struct result_str s)
{
	size_t i = 0;
	char c;

	if (s.p == NULL || s.len == 0)
		return false;
	c = s.p[0];
	if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
		return false;
	for (; i < s.len && s.p[i] != ':'; i++) {
		c = s.p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '-' || c == '.'))
			return false;
	}
	if (i >= s.len - 1)	/* no ':' or nothing after it */
		return false;
	for (; i < s.len; i++) {
		unsigned char u = (unsigned char)s.p[i];

		if (u <= 0x20 || u == 0x7f || u == '"' || u == '<' || u == '>')
			return false;
	}
	return true;
}

struct result_str result_helo_name(struct result_str reply)
{
	struct result_str none = { NULL, 0 };
	const char *p = reply.p, *end = reply.p ? reply.p + reply.len : NULL;
	const char *w;

	if (p == NULL)
		return none;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	/* "250-" or "250 " (RFC 5321 ehlo-ok-rsp); another reply code: no
	 * greeting name; no code at all: the name as given */
	if (end - p >= 3 && p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' &&
	    p[2] >= '0' && p[2] <= '9' && (end - p == 3 || p[3] == '-' || p[3] == ' ' ||
					   p[3] == '\r' || p[3] == '\n')) {
		if (memcmp(p, "250", 3) != 0 || end - p == 3 || p[3] == '\r' || p[3] == '\n')
			return none;
		p += 4;
	}
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	for (w = p; w < end && (unsigned char)*w > 0x20 && *w != 0x7f; w++)
		;
	if (w == p || (size_t)(w - p) > RESULT_HELO_MAX)
		return none;
	return (struct result_str){ p, (size_t)(w - p) };
}

/* Lower case, no trailing dot, into 'out' (RESULT_HELO_MAX + 1 bytes). */
static struct result_str host_lower(struct result_str s, char *out)
{
	size_t n = s.len;

	if (s.p == NULL || n == 0 || n > RESULT_HELO_MAX)
		return s;
	for (size_t i = 0; i < n; i++)
		out[i] = (s.p[i] >= 'A' && s.p[i] <= 'Z') ? (char)(s.p[i] + 32) : s.p[i];
	if (n > 1 && out[n - 1] == '.')
		n--;
	out[n] = '\0';
	return (struct result_str){ out, n };
}

/* An IP address in canonical text form (into 'out', >= 46 bytes), else s. */
static struct result_str ip_canon(struct result_str s, char *out)
{
	char tmp[64];
	unsigned char a[16];

	if (s.p == NULL || s.len == 0 || s.len >= sizeof(tmp))
		return s;
	memcpy(tmp, s.p, s.len);
	tmp[s.len] = '\0';
	if (inet_pton(AF_INET, tmp, a) == 1) {
		if (inet_ntop(AF_INET, a, out, 46) == NULL)
			return s;
	} else if (inet_pton(AF_INET6, tmp, a) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (memcmp(a, mapped, 12) == 0 ? inet_ntop(AF_INET, a + 12, out, 46) == NULL
					       : inet_ntop(AF_INET6, a, out, 46) == NULL)
			return s;
	} else {
		return s;
	}
	return (struct result_str){ out, strlen(out) };
}

static struct result_str nonempty(struct result_str s)
{
	if (s.p && s.len == 0)
		s.p = NULL;
	return s;
}

void result_detail_canon(const struct result_detail *in, struct result_detail *out,
			 struct result_canon_buf *buf)
{
	*out = *in;
	out->sending_ip = ip_canon(nonempty(in->sending_ip), buf->sending_ip);
	out->receiving_ip = ip_canon(nonempty(in->receiving_ip), buf->receiving_ip);
	out->mx_hostname = host_lower(nonempty(in->mx_hostname), buf->mx_hostname);
	out->mx_helo = host_lower(result_helo_name(in->mx_helo), buf->mx_helo);
	out->additional = result_is_uri(in->additional) ? in->additional
							 : (struct result_str){ NULL, 0 };
	out->reason = nonempty(in->reason);
	if (result_code_name(in->code) == NULL) {
		int n = snprintf(buf->reason, sizeof(buf->reason), "unknown-result-code-%d", in->code);

		out->code = RESULT_VALIDATION_FAILURE;
		out->reason = (struct result_str){ buf->reason, n > 0 ? (size_t)n : 0 };
	}
}

void result_policy_canon(const struct result_policy *in, struct result_policy *out)
{
	*out = *in;
	if (result_policy_type_name(in->type) == NULL)
		out->type = POLICY_NONE;
	if (out->type == POLICY_NONE) {
		out->strings = NULL;
		out->nstrings = 0;
	}
	if (out->type != POLICY_STS) {
		out->mx = NULL;
		out->nmx = 0;
	}
}
