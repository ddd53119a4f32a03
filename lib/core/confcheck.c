/*
 * confcheck - the checks of "-n" beyond syntax. See confcheck.h.
 *
 * SECURITY: run by root, it forks a child per access test that gives up
 * root for good (groups, gid, uid) before touching the path, so a test
 * never grants what the user could not do. Paths come from the trusted
 * configuration.
 */
#include "confcheck.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

#define PATHSZ 4096

struct confcheck {
	const struct conf *c;
	const char *prog;
	char user[64];		/* the user the checks run as */
	uid_t uid;
	gid_t gid;
	bool switch_user;	/* we are root and the user is not: test in a child */
	bool starts_as_root;	/* 'user' is set: the service starts as root */
	int problems;
};

const char *confcheck_user_name(const struct confcheck *cc)
{
	return cc->user;
}

int confcheck_problems(const struct confcheck *cc)
{
	return cc->problems;
}

bool confcheck_starts_as_root(const struct confcheck *cc)
{
	return cc->starts_as_root;
}

static void vproblem(struct confcheck *cc, const char *key, const char *fmt, va_list ap)
{
	char origin[1200], what[1200];

	vsnprintf(what, sizeof(what), fmt, ap);
	log_err("%s: %s", conf_origin(cc->c, key, origin, sizeof(origin)), what);
	cc->problems++;
}

void confcheck_problem(struct confcheck *cc, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vproblem(cc, key, fmt, ap);
	va_end(ap);
}

struct confcheck *confcheck_new(const struct conf *c, const char *prog, const char *service_user,
				bool uses_user)
{
	struct confcheck *cc = calloc(1, sizeof(*cc));
	const char *user = uses_user ? conf_str(c, "user") : "";
	struct passwd *pw = NULL;

	if (cc == NULL)
		return NULL;
	cc->c = c;
	cc->prog = prog;
	cc->starts_as_root = *user != '\0';
	if (*user) {
		pw = getpwnam(user);
		if (pw == NULL)
			confcheck_problem(cc, "user", "unknown user \"%s\"", user);
	} else if (geteuid() == 0 && service_user) {
		pw = getpwnam(service_user);
	}
	if (pw == NULL)
		pw = getpwuid(geteuid());
	if (pw) {
		snprintf(cc->user, sizeof(cc->user), "%s", pw->pw_name);
		cc->uid = pw->pw_uid;
		cc->gid = pw->pw_gid;
	} else {
		snprintf(cc->user, sizeof(cc->user), "uid %d", (int)geteuid());
		cc->uid = geteuid();
		cc->gid = getegid();
	}
	cc->switch_user = cc->uid != geteuid();
	if (cc->switch_user && geteuid() != 0) {
		log_warn("cannot check access as user %s without root: checked as the caller", cc->user);
		cc->switch_user = false;
	}
	return cc;
}

/*
 * 0 if the check user may access 'path' with 'mode' (access(2) modes),
 * else the errno. As root for another user: in a child that becomes him.
 */
static int access_as(const struct confcheck *cc, const char *path, int mode)
{
	pid_t pid;
	int status;

	if (!cc->switch_user)
		return access(path, mode) == 0 ? 0 : errno;
	pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0) {
		if (initgroups(cc->user, cc->gid) != 0 || setgid(cc->gid) != 0 ||
		    setuid(cc->uid) != 0)
			_exit(EPERM);
		_exit(access(path, mode) == 0 ? 0 : (errno & 0xff));
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : EPERM;
}

void confcheck_user_exists(struct confcheck *cc, const char *key)
{
	const char *v = conf_str(cc->c, key);

	if (*v && getpwnam(v) == NULL)
		confcheck_problem(cc, key, "unknown user \"%s\"", v);
}

void confcheck_group_exists(struct confcheck *cc, const char *key)
{
	const char *v = conf_str(cc->c, key);

	if (*v && getgrnam(v) == NULL)
		confcheck_problem(cc, key, "unknown group \"%s\"", v);
}

void confcheck_required(struct confcheck *cc, const char *key, const char *why)
{
	if (*conf_str(cc->c, key) == '\0')
		confcheck_problem(cc, key, "not set (%s)", why);
}

void confcheck_address(struct confcheck *cc, const char *key)
{
	const char *v = conf_str(cc->c, key), *at = strrchr(v, '@');

	if (*v == '\0')
		return;
	if (at == NULL || at == v || at[1] == '\0' || strpbrk(v, " \t<>\"(),;") != NULL)
		confcheck_problem(cc, key, "\"%s\" is not a plain address (local@domain)", v);
}

static const char *who(const struct confcheck *cc, char *buf, size_t sz)
{
	snprintf(buf, sz, "user %s", cc->user);
	return buf;
}

void confcheck_dir(struct confcheck *cc, const char *key, const char *sub, enum confcheck_dir how)
{
	char path[PATHSZ], parent[PATHSZ], w[100];
	struct stat st;
	int e;

	if (sub)
		snprintf(path, sizeof(path), "%s/%s", conf_str(cc->c, key), sub);
	else
		snprintf(path, sizeof(path), "%s", conf_str(cc->c, key));
	if (stat(path, &st) != 0) {
		char *slash;

		if (errno != ENOENT) {
			confcheck_problem(cc, key, "%s: %s", path, strerror(errno));
			return;
		}
		/* it is created when the directory above exists and is writable */
		snprintf(parent, sizeof(parent), "%s", path);
		slash = strrchr(parent, '/');
		if (slash == parent)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		if (how == CC_DIR_READ || stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
			confcheck_problem(cc, key, "%s does not exist", path);
			return;
		}
		if (how == CC_DIR_OWNED)
			return;
		if ((e = access_as(cc, parent, W_OK | X_OK)) != 0)
			confcheck_problem(cc, key, "%s does not exist, and %s cannot create it in %s: %s",
					  path, who(cc, w, sizeof(w)), parent, strerror(e));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		confcheck_problem(cc, key, "%s is not a directory", path);
		return;
	}
	if (how == CC_DIR_OWNED)
		return;
	e = access_as(cc, path, how == CC_DIR_WRITE ? W_OK | X_OK : R_OK | X_OK);
	if (e != 0)
		confcheck_problem(cc, key, "%s: %s may not %s it: %s", path, who(cc, w, sizeof(w)),
				  how == CC_DIR_WRITE ? "write in" : "read", strerror(e));
}

void confcheck_parent_dir(struct confcheck *cc, const char *key, const char *path, bool as_root)
{
	char dir[PATHSZ], w[100];
	char *slash;
	struct stat st;
	int e;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return;		/* not a path (checked where it is parsed) */
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		confcheck_problem(cc, key, "the directory %s does not exist", dir);
		return;
	}
	if (!as_root && (e = access_as(cc, dir, W_OK | X_OK)) != 0)
		confcheck_problem(cc, key, "%s may not create files in %s: %s",
				  who(cc, w, sizeof(w)), dir, strerror(e));
}

void confcheck_readable(struct confcheck *cc, const char *key)
{
	confcheck_path_readable(cc, key, conf_str(cc->c, key));
}

void confcheck_path_readable(struct confcheck *cc, const char *key, const char *v)
{
	char w[100];
	struct stat st;
	int e;

	if (*v == '\0')
		return;
	if (stat(v, &st) != 0) {
		confcheck_problem(cc, key, "%s: %s", v, strerror(errno));
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		confcheck_problem(cc, key, "%s is a directory", v);
		return;
	}
	if ((e = access_as(cc, v, R_OK)) != 0)
		confcheck_problem(cc, key, "%s: %s may not read it: %s", v, who(cc, w, sizeof(w)),
				  strerror(e));
}

void confcheck_command(struct confcheck *cc, const char *key)
{
	const char *v = conf_str(cc->c, key);
	char prog[PATHSZ], w[100];
	size_t n = strcspn(v, " \t");
	int e;

	if (n == 0 || n >= sizeof(prog)) {
		confcheck_problem(cc, key, "no command");
		return;
	}
	memcpy(prog, v, n);
	prog[n] = '\0';
	if (prog[0] != '/') {
		confcheck_problem(cc, key, "%s: the program must be an absolute path", prog);
		return;
	}
	if (access(prog, F_OK) != 0) {
		confcheck_problem(cc, key, "%s: %s", prog, strerror(errno));
		return;
	}
	if ((e = access_as(cc, prog, X_OK)) != 0)
		confcheck_problem(cc, key, "%s: %s may not run it: %s", prog, who(cc, w, sizeof(w)),
				  strerror(e));
}

int confcheck_finish(struct confcheck *cc)
{
	int problems = cc->problems;

	if (problems == 0)
		printf("%s: configuration OK (checked as user %s)\n", cc->prog, cc->user);
	else
		log_fatal("the configuration has %d problem%s", problems, problems == 1 ? "" : "s");
	fflush(stdout);
	free(cc);
	return problems ? 78 : 0;
}
