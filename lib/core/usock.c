/*
 * usock - safe unix socket binding. See usock.h.
 *
 * SECURITY: see usock.h. The only name-based calls are relative to a
 * directory descriptor we checked (root) or one only the process itself
 * and root can write to (not root: then nothing we do can hurt anyone
 * but ourselves).
 */
#include "usock.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Split 'path' into its directory (opened) and last component. */
static int open_dir_of(const char *path, char *name, size_t namesz, char *err, size_t errsz)
{
	const char *sl = strrchr(path, '/');
	char dir[4096];
	size_t dlen;
	int fd;

	if (path[0] != '/' || sl == NULL || sl[1] == '\0') {
		snprintf(err, errsz, "%s: need an absolute path to a socket", path);
		errno = EINVAL;
		return -1;
	}
	dlen = sl == path ? 1 : (size_t)(sl - path);
	if (dlen >= sizeof(dir) || strlen(sl + 1) >= namesz) {
		snprintf(err, errsz, "%s: path too long", path);
		errno = EINVAL;
		return -1;
	}
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	memcpy(name, sl + 1, strlen(sl + 1) + 1);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		snprintf(err, errsz, "socket directory %s: %s", dir, strerror(e));
		errno = e;
	}
	return fd;
}

/* As root: refuse a directory someone else could write to. */
static int check_dirfd(int dfd, const char *path, char *err, size_t errsz)
{
	struct stat st;

	if (geteuid() != 0)
		return 0;
	if (fstat(dfd, &st) != 0) {
		int e = errno;

		snprintf(err, errsz, "%s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	if (st.st_uid != 0 || (st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && st.st_gid != 0)) {
		snprintf(err, errsz, "the directory of %s is writable by %s (owner uid %u, "
			 "mode %04o): refusing to create a socket there as root; start the "
			 "daemon as the directory's owner, or make the directory root's",
			 path, st.st_uid != 0 ? "its owner" : "other users", (unsigned)st.st_uid,
			 (unsigned)(st.st_mode & 07777));
		errno = EPERM;
		return -1;
	}
	return 0;
}

int usock_check_dir(const char *path, char *err, size_t errsz)
{
	char name[256];
	int dfd, rc;

	if (geteuid() != 0)
		return 0;
	if ((dfd = open_dir_of(path, name, sizeof(name), err, errsz)) < 0)
		return -1;
	rc = check_dirfd(dfd, path, err, errsz);
	close(dfd);
	return rc;
}

static int lookup(const char *owner, const char *group, uid_t *uid, gid_t *gid,
		  char *err, size_t errsz)
{
	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (owner && *owner) {
		struct passwd *pw = getpwnam(owner);

		if (pw == NULL) {
			snprintf(err, errsz, "unknown user \"%s\"", owner);
			errno = EINVAL;
			return -1;
		}
		*uid = pw->pw_uid;
	}
	if (group && *group) {
		struct group *gr = getgrnam(group);

		if (gr == NULL) {
			snprintf(err, errsz, "unknown group \"%s\"", group);
			errno = EINVAL;
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

int usock_bind(const char *path, const struct usock_opts *o, struct usock *u,
	       char *err, size_t errsz)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char tmp[sizeof(u->name) + 24];
	struct stat st;
	uid_t uid;
	gid_t gid;
	mode_t old;
	int cwd = -1, rc, saved;

	u->fd = u->dirfd = -1;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errsz, "%s is too long for a unix socket (at most %zu bytes)", path,
			 sizeof(sun.sun_path) - 1);
		errno = EINVAL;
		return -1;
	}
	if (lookup(o->owner, o->group, &uid, &gid, err, errsz) < 0)
		return -1;
	if ((u->dirfd = open_dir_of(path, u->name, sizeof(u->name), err, errsz)) < 0)
		return -1;
	if (check_dirfd(u->dirfd, path, err, errsz) < 0)
		goto fail;
	if (fstatat(u->dirfd, u->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISSOCK(st.st_mode)) {
		snprintf(err, errsz, "%s exists and is not a socket", path);
		errno = EEXIST;
		goto fail;
	}
	rc = snprintf(tmp, sizeof(tmp), "%s.%d", u->name, (int)getpid());
	if (rc < 0 || (size_t)rc >= sizeof(sun.sun_path)) {
		snprintf(err, errsz, "%s: name too long", path);
		errno = EINVAL;
		goto fail;
	}
	memcpy(sun.sun_path, tmp, (size_t)rc + 1);
	unlinkat(u->dirfd, tmp, 0);	/* left by a crash of a process with our pid */
	u->fd = socket(AF_UNIX, o->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		goto fail;
	}
	if (o->rcvbuf > 0 &&
	    setsockopt(u->fd, SOL_SOCKET, SO_RCVBUFFORCE, &o->rcvbuf, sizeof(o->rcvbuf)) != 0)
		setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(o->rcvbuf));
	/* bind relative to the checked directory, created with its final mode */
	cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0 || fchdir(u->dirfd) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto fail;
	}
	old = umask(~o->mode & 0777);
	rc = bind(u->fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (fchdir(cwd) != 0 && rc == 0) {
		snprintf(err, errsz, "cannot return to the working directory: %s", strerror(errno));
		unlinkat(u->dirfd, tmp, 0);
		goto fail;
	}
	close(cwd);
	cwd = -1;
	if (rc != 0) {
		snprintf(err, errsz, "bind %s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstatat(u->dirfd, tmp, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode)) {
		snprintf(err, errsz, "%s: the socket we bound is gone", path);
		errno = ENOENT;
		goto fail;
	}
	if ((uid != (uid_t)-1 && uid != st.st_uid) || (gid != (gid_t)-1 && gid != st.st_gid)) {
		if (fchownat(u->dirfd, tmp, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
			snprintf(err, errsz, "%s: cannot give the socket to %s%s%s: %s", path,
				 o->owner && *o->owner ? o->owner : "", o->group && *o->group ? ":" : "",
				 o->group && *o->group ? o->group : "", strerror(errno));
			unlinkat(u->dirfd, tmp, 0);
			goto fail;
		}
	}
	if (o->type == SOCK_STREAM && listen(u->fd, o->backlog > 0 ? o->backlog : 128) != 0) {
		snprintf(err, errsz, "listen %s: %s", path, strerror(errno));
		unlinkat(u->dirfd, tmp, 0);
		goto fail;
	}
	if (renameat(u->dirfd, tmp, u->dirfd, u->name) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		unlinkat(u->dirfd, tmp, 0);
		goto fail;
	}
	u->dev = st.st_dev;	/* the inode we bound: usock_remove removes only it */
	u->ino = st.st_ino;
	return 0;
fail:
	saved = errno;
	if (cwd >= 0) {
		if (fchdir(cwd) != 0) { /* nothing better to do */ }
		close(cwd);
	}
	if (u->fd >= 0)
		close(u->fd);
	if (u->dirfd >= 0)
		close(u->dirfd);
	u->fd = u->dirfd = -1;
	errno = saved;
	return -1;
}

void usock_remove(struct usock *u)
{
	struct stat st;

	if (u->dirfd >= 0) {
		/* another instance may have renamed its own socket into place */
		if (fstatat(u->dirfd, u->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode) &&
		    st.st_dev == u->dev && st.st_ino == u->ino)
			unlinkat(u->dirfd, u->name, 0);
		close(u->dirfd);
	}
	if (u->fd >= 0)
		close(u->fd);
	u->fd = u->dirfd = -1;
}
