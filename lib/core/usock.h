/*
 * usock - bind a unix socket safely, for a daemon that may run as root.
 *
 * The socket's directory is opened once and everything else happens
 * relative to that descriptor: no name in it is ever followed as root.
 *   - Started as root, the directory must be root's and writable by no
 *     other user (a service user who can write there could plant a link
 *     where we chmod or chown): otherwise usock_bind refuses.
 *   - The socket is bound under a temporary name with a umask that gives it
 *     'mode' when it is created (no chmod by name), given its owner/group
 *     with fchownat(AT_SYMLINK_NOFOLLOW) only when asked and needed (a
 *     setgid directory already gives the socket its group), and renamed
 *     into place: clients never see it with the wrong permissions. A stale
 *     socket at the path is replaced; any other kind of file is refused.
 * Not thread safe (umask and the working directory are per process).
 */
#ifndef TLSRPT_USOCK_H
#define TLSRPT_USOCK_H

#include <stddef.h>
#include <sys/types.h>

struct usock {
	int fd;			/* the bound socket (listening, for SOCK_STREAM) */
	int dirfd;		/* the socket's directory, kept for usock_remove */
	char name[108];		/* the socket's name in that directory */
	dev_t dev;		/* the socket file we bound (usock_remove removes only it) */
	ino_t ino;
};

struct usock_opts {
	int type;		/* SOCK_DGRAM or SOCK_STREAM (NONBLOCK, CLOEXEC are added) */
	mode_t mode;		/* 0660 */
	const char *owner;	/* user name or "" / NULL: the process's */
	const char *group;	/* group name or "" / NULL: the directory's (setgid) or ours */
	int rcvbuf;		/* SO_RCVBUF(FORCE) before binding; 0: the kernel's */
	int backlog;		/* listen() backlog (SOCK_STREAM) */
};

/*
 * Check, as root, that the directory of socket path 'path' is root's and
 * writable by no one else. Not root: 0. 0, or -1 with the reason in 'err'.
 */
int usock_check_dir(const char *path, char *err, size_t errsz);

/* Bind 'path'. 0 and *u filled, or -1 with a message in 'err' and errno:
 * EINVAL for a configuration error (path, unknown user or group), EPERM for
 * a directory refused as root, else the failing call's. */
int usock_bind(const char *path, const struct usock_opts *o, struct usock *u,
	       char *err, size_t errsz);

/* Remove our socket by its name in the directory opened at bind time (it is
 * left alone if it is no longer the socket file we bound: another instance's
 * socket renamed into place stays), close everything. */
void usock_remove(struct usock *u);

#endif
