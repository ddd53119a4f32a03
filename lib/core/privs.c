/*
 * privs - give up root in a fixed order. See privs.h.
 *
 * SECURITY: the only file operation done as root is on the daemon's own
 * directory, through a descriptor opened with O_NOFOLLOW.
 */
#include "privs.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Drop groups, gid, uid in that order; check; no-new-privs. */
static int become(uid_t uid, gid_t gid, const char *name, char *err, size_t errsz)
{
	int rc = name ? initgroups(name, gid) : setgroups(0, NULL);

	if (rc != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		snprintf(err, errsz, "cannot become %s%s%s (uid %u): %s", name ? "user " : "",
			 name ? name : "", name ? "" : "the owner", (unsigned)uid, strerror(errno));
		return -1;
	}
	if (uid != 0 && setuid(0) == 0) {
		snprintf(err, errsz, "privileges could be regained after dropping them");
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errsz, "no-new-privs: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int privs_drop(const char *user, const char *own_dir, char *err, size_t errsz)
{
	struct passwd *pw;
	uid_t me = geteuid();

	if (user == NULL || *user == '\0')
		return 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, errsz, "unknown user \"%s\"", user);
		return -1;
	}
	if (me != 0) {
		struct passwd *mine;

		if (me == pw->pw_uid)
			return 0;	/* started as the user (systemd User=) */
		mine = getpwuid(me);
		snprintf(err, errsz, "running as %s (uid %u), but user = %s: start as root or "
			 "as %s, or leave user empty", mine ? mine->pw_name : "?", (unsigned)me,
			 user, user);
		return -1;
	}
	if (own_dir) {
		int fd = open(own_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;

		if (fd < 0 || fstat(fd, &st) != 0 ||
		    ((st.st_uid != pw->pw_uid || st.st_gid != pw->pw_gid) &&
		     fchown(fd, pw->pw_uid, pw->pw_gid) != 0)) {
			snprintf(err, errsz, "%s: %s", own_dir, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	return become(pw->pw_uid, pw->pw_gid, user, err, errsz);
}

int privs_become_owner_of(const char *dir, char *err, size_t errsz)
{
	struct stat st;
	struct passwd *pw;
	int fd;

	if (geteuid() != 0)
		return 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;	/* nobody's yet: the caller makes it, as itself */
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errsz, "%s: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (st.st_uid == 0)
		return 0;
	pw = getpwuid(st.st_uid);
	if (become(st.st_uid, st.st_gid, pw ? pw->pw_name : NULL, err, errsz) != 0)
		return -1;
	return 0;
}
