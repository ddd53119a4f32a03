/*
 * socketmap - netstring framing of Postfix's socketmap protocol. See
 * socketmap.h.
 *
 * SECURITY: the request bytes come from any local process that can reach
 * the socket. Every length is checked before use; the length field is
 * bounded to 6 digits so it cannot overflow.
 */
#include "socketmap.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

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

int socketmap_listen(const char *spec, bool *is_unix, struct usock *us, char *err, size_t errsz)
{
	int fd = -1;

	*is_unix = false;
	us->fd = us->dirfd = -1;
	if (strncmp(spec, "unix:", 5) == 0) {
		/* mode 0660: Postfix (group postfix, from the setgid socket
		 * directory) connects; bound safely as root (lib/core/usock.h) */
		struct usock_opts o = { .type = SOCK_STREAM, .mode = 0660, .backlog = 128 };
		char e[400];

		*is_unix = true;
		if (usock_bind(spec + 5, &o, us, e, sizeof(e)) != 0) {
			snprintf(err, errsz, "policy_socket: %s", e);
			return -1;
		}
		return us->fd;
	}
	if (strncmp(spec, "inet:", 5) == 0) {
		char host[256];
		const char *colon = strrchr(spec + 5, ':');
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
		struct addrinfo *ai;
		int one = 1, rc;

		if (colon == NULL || (size_t)(colon - spec - 5) >= sizeof(host)) {
			snprintf(err, errsz, "policy_socket %s: want inet:HOST:PORT", spec);
			return -1;
		}
		memcpy(host, spec + 5, (size_t)(colon - spec - 5));
		host[colon - spec - 5] = '\0';
		if ((rc = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &ai)) != 0) {
			snprintf(err, errsz, "policy_socket %s: %s", spec, gai_strerror(rc));
			return -1;
		}
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
			snprintf(err, errsz, "%s: %s", spec, strerror(errno));
			if (fd >= 0)
				close(fd);
			fd = -1;
		}
		freeaddrinfo(ai);
		return fd;
	}
	snprintf(err, errsz, "policy_socket %s: want unix:PATH or inet:HOST:PORT", spec);
	return -1;
}
