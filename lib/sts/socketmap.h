/*
 * socketmap - the netstring framing of Postfix's socketmap protocol
 * (socketmap_table(5)), server side.
 *
 * A request is one netstring "LEN:NAME KEY," and a reply one netstring
 * "LEN:STATUS DATA," where STATUS is OK, NOTFOUND, TEMP, TIMEOUT or PERM and
 * a space always follows it. Several requests travel over one connection,
 * and a read may end anywhere inside a netstring, so the parser works on
 * whatever bytes have arrived and says how many it used.
 *
 * Limits: a request payload is at most SOCKETMAP_MAX_QUERY bytes (Postfix
 * 3.12 socketmap_max_query_size), a reply payload at most
 * SOCKETMAP_MAX_REPLY (Postfix 3.10 socketmap_max_reply_size default).
 *
 * All functions but socketmap_listen are pure (no global state); all are
 * thread safe.
 */
#ifndef TLSRPT_SOCKETMAP_H
#define TLSRPT_SOCKETMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "usock.h"

#define SOCKETMAP_MAX_QUERY 10000
#define SOCKETMAP_MAX_REPLY 100000

enum socketmap_status {
	SOCKETMAP_OK = 0,	/* one complete netstring */
	SOCKETMAP_MORE,		/* a prefix of a valid netstring: read more */
	SOCKETMAP_BAD,		/* not a netstring, or longer than 'max' */
};

/*
 * Look for one netstring at the start of 'data' ('len' bytes, untrusted).
 * On SOCKETMAP_OK, '*payload'/'*plen' is the content (points into data) and
 * '*used' the bytes taken including the framing. On SOCKETMAP_BAD, 'why'
 * (if not NULL) gets a static reason; the connection should be closed.
 * The length field has at most 6 digits and no leading zeros.
 */
enum socketmap_status socketmap_parse(const char *data, size_t len, size_t max,
				      const char **payload, size_t *plen,
				      size_t *used, const char **why);

/*
 * Split a request payload "NAME KEY" at the first space. Both parts are
 * views into 'p'. Returns 0, or -1 when there is no space, the name is empty
 * or the key is empty.
 */
int socketmap_split(const char *p, size_t len, const char **name, size_t *nlen,
		    const char **key, size_t *klen);

/*
 * Append one reply netstring "LEN:STATUS DATA," to 'out'. 'status' is one
 * of "OK", "NOTFOUND", "TEMP", "TIMEOUT", "PERM"; 'data' may be NULL for
 * none. Returns 0, or -1 when the payload would exceed SOCKETMAP_MAX_REPLY
 * or 'out' refused it (nothing is appended then).
 */
int socketmap_reply(struct buf *out, const char *status, const char *data,
		    size_t dlen);

/*
 * Listen on 'spec': "unix:/ABSOLUTE/PATH" (bound with usock_bind, mode 0660:
 * a stale socket is replaced, and as root only in a directory no other
 * user can write; *us is filled for usock_remove) or "inet:HOST:PORT"
 * (HOST may be empty: all addresses). Non-blocking, close-on-exec, backlog
 * 128. Returns the descriptor with *is_unix set, or -1 with 'err'.
 */
int socketmap_listen(const char *spec, bool *is_unix, struct usock *us, char *err, size_t errsz);

#endif
