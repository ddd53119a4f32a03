/*
 * privs - give up root in a fixed order. See privs.h.
 */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int privs_drop(const char *user, const char *own_dir, char *err, size_t errsz)
{
	struct passwd *pw;

	if (user == NULL || *user == '\0')
		return 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, errsz, "unknown user \"%s\"", user);
		return -1;
	}
	if (own_dir && chown(own_dir, pw->pw_uid, pw->pw_gid) != 0) {
		snprintf(err, errsz, "chown %s: %s", own_dir, strerror(errno));
		return -1;
	}
	if (initgroups(user, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		snprintf(err, errsz, "cannot become user %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		snprintf(err, errsz, "privileges could be regained after dropping them");
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errsz, "no-new-privs: %s", strerror(errno));
		return -1;
	}
	return 0;
}
