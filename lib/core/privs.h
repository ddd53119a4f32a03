/*
 * privs - the one way a tlsrptd daemon gives up root: after binding its
 * sockets and opening what needs root, before reading untrusted input.
 *
 * Under systemd each daemon is started as its own user (User=), and then
 * there is nothing to give up: 'user' stays empty, or names the user we
 * already are (a no-op). Started as root with 'user' set (by hand, in the
 * tests): look up the user, give it the daemon's own directory (by
 * descriptor, never through a symlink), drop supplementary groups, then
 * gid, then uid; check that root cannot be regained; set no-new-privs.
 * Started as any other user with 'user' set: an error, never a silent
 * run as the wrong user. Not thread safe (call before threads that read
 * untrusted input exist; glibc applies setuid to every thread).
 */
#ifndef TLSRPT_PRIVS_H
#define TLSRPT_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Become 'user'; "" or NULL: stay as we are (0). Already running as 'user'
 * (not root): nothing to do (0). 'own_dir', if not NULL, is given to the
 * user first when we are root and it is not the user's yet. 0, or -1 with
 * a message in 'err'.
 */
int privs_drop(const char *user, const char *own_dir, char *err, size_t errsz);

/*
 * Act as the owner of directory 'dir' (tlsrptctl run as root on a store
 * the service owns): if we are root and 'dir' belongs to another user,
 * switch groups, gid and uid to its owner and group, so that every file we
 * write there is the service's. The directory is opened without following
 * a symlink at its last component. Not root, or already the owner: nothing
 * to do; 'dir' owned by root, or missing (the caller creates it as
 * itself; the packages make the stores, so this is a store of the
 * operator's own): 0. -1 with a message in 'err' when 'dir' cannot be
 * opened (a symlink, not a directory) or the switch fails.
 */
int privs_become_owner_of(const char *dir, char *err, size_t errsz);

#endif
