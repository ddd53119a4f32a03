/*
 * confcheck - what "-n" checks beyond the syntax of the configuration:
 * that the service will find what it needs, as the user it will run as.
 *
 * A check runs as the user the service will run as: the configuration's
 * 'user' when set (for the daemons, which drop to it); else, when the
 * check runs as root, the program's own system user of the privilege
 * layout (tlsrptd, tlsrpt-report, ...) if it exists; else the caller. Access is tested for real: as root in a child
 * process that has become that user (groups, gid, uid), otherwise with
 * access(2) as the caller.
 *
 * Every problem is logged at once as an error that begins with where the
 * key got its value (conf_origin: "PATH:LINE: key", "key (default)"), and
 * counted; confcheck_finish() prints the one line "PROG: configuration OK
 * (checked as user U)" or returns 78. Only for main() of a program's -n,
 * before threads exist (it forks). Not thread safe.
 */
#ifndef TLSRPT_CONFCHECK_H
#define TLSRPT_CONFCHECK_H

#include <stdarg.h>
#include <stdbool.h>

#include "conf.h"

struct confcheck;

/* NULL on ENOMEM. 'service_user' is the program's user in the layout;
 * 'uses_user': the program drops privileges to the 'user' key itself. */
struct confcheck *confcheck_new(const struct conf *c, const char *prog, const char *service_user,
				bool uses_user);

/* The name of the user the checks run as. */
const char *confcheck_user_name(const struct confcheck *cc);

/* A problem with 'key' (logged: "ORIGIN: what"). */
void confcheck_problem(struct confcheck *cc, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The key names a user / a group that must exist (empty: nothing to check). */
void confcheck_user_exists(struct confcheck *cc, const char *key);
void confcheck_group_exists(struct confcheck *cc, const char *key);

/* The key must not be empty; 'why' says who needs it. */
void confcheck_required(struct confcheck *cc, const char *key, const char *why);

/* The key holds a plain address local@domain (empty: skipped). */
void confcheck_address(struct confcheck *cc, const char *key);

enum confcheck_dir {
	CC_DIR_READ,		/* exists; the user may list and read it */
	CC_DIR_WRITE,		/* exists, or can be created; the user may write in it */
	CC_DIR_OWNED,		/* exists or can be created: root creates it and
				 * gives it to the user at start (privs_drop) */
};
/* The key's value (or that value + "/" + 'sub' when sub is not NULL) is a
 * directory the user may read or write. */
void confcheck_dir(struct confcheck *cc, const char *key, const char *sub, enum confcheck_dir how);

/* The key names a file the service creates or replaces: its directory
 * exists and the user may write in it. 'as_root': root does it (a socket
 * bound before privileges are dropped): the directory must only exist. */
void confcheck_parent_dir(struct confcheck *cc, const char *key, const char *path, bool as_root);

/* The key names a file (empty: skipped) the user must be able to read. */
void confcheck_readable(struct confcheck *cc, const char *key);
/* The same for a file the key leads to ('path', derived from its value). */
void confcheck_path_readable(struct confcheck *cc, const char *key, const char *path);

/* The key is a command line whose program must exist and be executable. */
void confcheck_command(struct confcheck *cc, const char *key);

/* The number of problems so far. */
int confcheck_problems(const struct confcheck *cc);

/* True when the service will start as root (it drops to 'user' itself). */
bool confcheck_starts_as_root(const struct confcheck *cc);

/* Log the verdict; 0 (and the OK line on stdout) or 78. Frees cc. */
int confcheck_finish(struct confcheck *cc);

#endif
