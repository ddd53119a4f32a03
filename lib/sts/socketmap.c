/*
 * socketmap - netstring framing of Postfix's socketmap protocol. See
 * socketmap.h.
 *
 * SECURITY: the request bytes come from any local process that can reach
 * the socket. Every length is checked before use; the length field is
 * bounded to 6 digits so it cannot overflow.
 */
#include "socketmap.h"

#include <string.h>

#define MAX_DIGITS 6

enum socketmap_status socketmap_parse(const char *data, size_t len, size_t max,
				      const char **payload, size_t *plen,
				      size_t *used, const char **why)
{
	size_t i = 0, n = 0;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	while (i < len && data[i] >= '0' && data[i] <= '9') {
		if (i == MAX_DIGITS) {
			*why = "netstring length too long";
			return SOCKETMAP_BAD;
		}
		if (i == 1 && data[0] == '0') {
			*why = "netstring length with leading zero";
			return SOCKETMAP_BAD;
		}
		n = n * 10 + (size_t)(data[i] - '0');
		i++;
	}
	if (i == len) {
		if (i > MAX_DIGITS) {
			*why = "netstring length too long";
			return SOCKETMAP_BAD;
		}
		return SOCKETMAP_MORE;
	}
	if (i == 0 || data[i] != ':') {
		*why = "netstring length expected";
		return SOCKETMAP_BAD;
	}
	if (n > max) {
		*why = "netstring longer than allowed";
		return SOCKETMAP_BAD;
	}
	i++;			/* ':' */
	if (len - i < n + 1)
		return SOCKETMAP_MORE;
	if (data[i + n] != ',') {
		*why = "netstring without terminating comma";
		return SOCKETMAP_BAD;
	}
	*payload = data + i;
	*plen = n;
	*used = i + n + 1;
	return SOCKETMAP_OK;
}

int socketmap_split(const char *p, size_t len, const char **name, size_t *nlen,
		    const char **key, size_t *klen)
{
	const char *sp = memchr(p, ' ', len);

	if (sp == NULL || sp == p || (size_t)(sp - p) + 1 == len)
		return -1;
	*name = p;
	*nlen = (size_t)(sp - p);
	*key = sp + 1;
	*klen = len - *nlen - 1;
	return 0;
}

int socketmap_reply(struct buf *out, const char *status, const char *data,
		    size_t dlen)
{
	size_t slen = strlen(status), total;
	size_t before = out->len;

	if (data == NULL)
		dlen = 0;
	total = slen + 1 + dlen;
	if (total > SOCKETMAP_MAX_REPLY)
		return -1;
	if (buf_printf(out, "%zu:%s ", total, status) < 0 ||
	    (dlen && buf_add(out, data, dlen) < 0) || buf_addc(out, ',') < 0) {
		out->len = before;
		if (out->data)
			out->data[before] = '\0';
		return -1;
	}
	return 0;
}
