/*
 * privs - the one way a tlsrptd daemon gives up root: after binding its
 * sockets and opening what needs root, before reading untrusted input.
 *
 * Order: look up the user, give it the daemon's state directory, drop
 * supplementary groups, then gid, then uid; check that root cannot be
 * regained; set no-new-privs. Not thread safe (call before threads that
 * read untrusted input exist; glibc applies setuid to every thread).
 */
#ifndef TLSRPT_PRIVS_H
#define TLSRPT_PRIVS_H

#include <stddef.h>

/*
 * Become 'user'; "" or NULL: stay as we are (0). 'own_dir', if not NULL, is
 * chowned to the user first (the daemon writes there). 0, or -1 with a
 * message in 'err'.
 */
int privs_drop(const char *user, const char *own_dir, char *err, size_t errsz);

#endif
