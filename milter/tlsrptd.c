/*
 * tlsrptd - the collector: counts Postfix's outbound TLS results per
 * TLSRPT policy domain in per-day memory-mapped files (lib/collect/store.h).
 *
 * Sources: the libtlsrpt datagram socket (Postfix 3.10+), and optionally the
 * Postfix log (3.7-3.9, lib/collect/pflog.h) through the same counting path.
 *
 * Design: one thread receives and counts; nothing on that path touches the
 * disk (counting is a write to shared memory), so the socket is drained as
 * fast as the kernel delivers, in batches (recvmmsg) until EAGAIN. A second
 * thread msyncs the day file every sync_interval, which bounds what a power
 * loss can take; a SIGKILL takes nothing that was counted.
 *
 * SECURITY: systemd starts tlsrptd as its own user (tlsrptd.service), with
 * LimitRTPRIO for the receiving thread's SCHED_RR and no capabilities.
 * Started as root (user = NAME), it binds the socket only in a directory
 * no other user can write (lib/core/usock.h), creates the state directory,
 * and drops privileges (groups, gid, uid, no-new-privs) before it opens a
 * day file or reads the first datagram. Every datagram is
 * untrusted (lib/collect/dgram.c); a bad one is counted, logged (rate-limited) and
 * dropped, never fatal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "cmdline.h"
#include "conf.h"
#include "confcheck.h"
#include "dgram.h"
#include "log.h"
#include "privs.h"
#include "pflog.h"
#include "store.h"
#include "usock.h"

#define BATCH 32			/* datagrams per recvmmsg */
#define DGRAM_BUF (256 * 1024)		/* > the kernel's default maximum datagram */
#define DEFAULT_CONFIG SYSCONFDIR "/tlsrptd/tlsrptd.conf"

struct collector {
	const struct conf *conf;
	int sock;
	struct usock us;		/* the socket and its directory */
	struct store *store;		/* today's day file; NULL while none can be opened */
	pthread_mutex_t store_lock;	/* store pointer vs. the sync thread */
	int64_t open_failed_day;	/* the day whose file could not be opened, or -1 */
	int64_t open_retry_ms;		/* not tried again before (CLOCK_MONOTONIC) */
	int open_errno;			/* why it could not be opened */
	int64_t unstored_day;		/* what arrived while no day file was open */
	uint64_t unstored_dgrams, unstored_results;
	struct dgram_parser *parser;
	int64_t clock_offset;		/* tests only: TLSRPTD_TEST_CLOCK_OFFSET */
	volatile sig_atomic_t stop;
	struct pflog *pflog;		/* Postfix log follower (3.7-3.9), or NULL */
	pthread_t syncer;
	int sync_pipe[2];		/* closing the write end stops the syncer */
};

static int64_t now_seconds(const struct collector *col)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + col->clock_offset;
}

static int64_t day_of(int64_t t)
{
	return t >= 0 ? t / 86400 : (t - 86399) / 86400;
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Install 's' as the current day file (NULL: none) and close the old one. */
static void collector_swap(struct collector *col, struct store *s)
{
	struct store *old;

	pthread_mutex_lock(&col->store_lock);
	old = col->store;
	col->store = s;
	pthread_mutex_unlock(&col->store_lock);
	if (old) {
		char ds[16];

		store_format_day(ds, sizeof(ds), store_day(old));
		log_info("day %s closed", ds);
		store_close(old);
	}
}

/* What arrived while no day file could be opened, for a day now past. */
static void log_unstored_lost(const struct collector *col)
{
	char od[16];

	store_format_day(od, sizeof(od), col->unstored_day);
	log_err("%llu datagram(s) with %llu result(s) of %s were not counted: that day's file "
		"could not be opened", (unsigned long long)col->unstored_dgrams,
		(unsigned long long)col->unstored_results, od);
}

/*
 * Make sure the store is today's; open the new day at 00:00 UTC. When the
 * day file cannot be opened (a full disk: its header needs blocks), results
 * are not counted into another day's file: they are counted as unstored,
 * the open is tried again at most once a second, and once it succeeds they
 * go into the day's overflow_results (and datagrams). 0, or -1 (errno in
 * col->open_errno) while there is no day file for 'day'.
 */
static int collector_rollover(struct collector *col, int64_t day)
{
	static struct log_limit lim_open;
	char err[512], ds[16];
	struct store *s;

	if (col->store && store_day(col->store) == day)
		return 0;
	if (col->open_failed_day == day && monotonic_ms() < col->open_retry_ms)
		return -1;
	s = store_open(conf_str(col->conf, "state_directory"), day,
		       (uint64_t)conf_int(col->conf, "store_max_size"),
		       (size_t)conf_int(col->conf, "max_string_length"), err, sizeof(err));
	store_format_day(ds, sizeof(ds), day);
	if (s == NULL) {
		col->open_errno = errno;
		col->open_failed_day = day;
		col->open_retry_ms = monotonic_ms() + 1000;
		log_warn_limited(&lim_open, "cannot open the day file of %s: %s; results are counted "
				 "in overflow_results once it can be opened", ds, err);
		if (col->store)
			collector_swap(col, NULL);	/* never count into another day */
		return -1;
	}
	if (col->open_failed_day == day)
		log_info("day file of %s opened", ds);
	col->open_failed_day = -1;
	collector_swap(col, s);
	if (col->unstored_dgrams || col->unstored_results) {
		if (col->unstored_day == day) {
			store_bump(s, STC_DATAGRAMS, col->unstored_dgrams);
			store_bump(s, STC_OVERFLOW, col->unstored_results);
			log_warn("%llu datagram(s) with %llu result(s) that arrived while the day file "
				 "could not be opened are counted in overflow_results",
				 (unsigned long long)col->unstored_dgrams,
				 (unsigned long long)col->unstored_results);
		} else {
			log_unstored_lost(col);
		}
		col->unstored_dgrams = col->unstored_results = 0;
	}
	return 0;
}

/* Something arrived while there is no day file: remember how much. */
static void count_unstored(struct collector *col, uint64_t dgrams, uint64_t results)
{
	int64_t day = day_of(now_seconds(col));

	if (col->unstored_day != day) {
		if (col->unstored_dgrams || col->unstored_results)
			log_unstored_lost(col);
		col->unstored_day = day;
		col->unstored_dgrams = col->unstored_results = 0;
	}
	col->unstored_dgrams += dgrams;
	col->unstored_results += results;
}

static void log_full(enum store_status st)
{
	static struct log_limit lim_full, lim_nospace;

	if (st == STORE_NOSPACE)
		log_warn_limited(&lim_nospace, "day file full: no space left on the file system "
				 "for it: a result was counted in overflow_results only (known keys "
				 "go on counting; new ones again when there is space)");
	else
		log_warn_limited(&lim_full, "day file full (store_max_size): a result "
				 "was counted in overflow_results only");
}

static void count_datagram(struct collector *col, const char *data, size_t len)
{
	static struct log_limit lim_bad, lim_flags;
	struct store *s = col->store;
	struct dgram dg;
	const char *why;
	enum dgram_status st;

	if (s == NULL) {
		st = dgram_parse(col->parser, data, len, &dg, &why);
		count_unstored(col, 1, st == DGRAM_OK ? dg.npolicies : 0);
		return;
	}
	store_bump(s, STC_DATAGRAMS, 1);
	store_bump(s, STC_BYTES, len);
	st = dgram_parse(col->parser, data, len, &dg, &why);
	if (st != DGRAM_OK) {
		char shown[160];

		store_bump(s, st == DGRAM_MALFORMED ? STC_MALFORMED : STC_WRONG_SHAPE, 1);
		log_warn_limited(&lim_bad, "dropped a datagram of %zu bytes: %s: \"%s\"", len, why,
				 log_printable(shown, sizeof(shown), data, len));
		return;
	}
	if (dg.flags) {
		if (dg.flags & DGRAM_F_INVALID_UTF8)
			store_bump(s, STC_INVALID_UTF8, 1);
		if (dg.flags & DGRAM_F_UNKNOWN_DPV)
			store_bump(s, STC_UNKNOWN_DPV, 1);
		if (dg.flags & DGRAM_F_COUNT_MISMATCH)
			store_bump(s, STC_COUNT_MISMATCH, 1);
		if (dg.flags & DGRAM_F_UNKNOWN_POLICY)
			store_bump(s, STC_UNKNOWN_POLICY, 1);
		if (dg.flags & DGRAM_F_UNKNOWN_RESULT)
			store_bump(s, STC_UNKNOWN_RESULT, 1);
		if (dg.flags & (DGRAM_F_UNKNOWN_DPV | DGRAM_F_UNKNOWN_POLICY | DGRAM_F_UNKNOWN_RESULT)) {
			char shown[160];

			log_warn_limited(&lim_flags, "datagram for %s: %s%s%s; counted what is known",
				log_printable(shown, sizeof(shown), dg.d.p, dg.d.len),
				dg.flags & DGRAM_F_UNKNOWN_DPV ? "unknown protocol version " : "",
				dg.flags & DGRAM_F_UNKNOWN_POLICY ? "unknown policy-type dropped " : "",
				dg.flags & DGRAM_F_UNKNOWN_RESULT ? "unknown result code kept " : "");
		}
	}
	for (size_t i = 0; i < dg.npolicies; i++) {
		enum store_status r = store_add(s, dg.d, dg.pr, &dg.policies[i]);

		if (r != STORE_OK)
			log_full(r);
	}
}

/* The log follower's results: counted like datagrams, on the day they were read. */
static void log_sink(void *arg, int64_t when, struct result_str d, struct result_str pr,
		     const struct result_policy *p)
{
	struct collector *col = arg;
	enum store_status r;

	if (collector_rollover(col, day_of(when)) < 0) {
		count_unstored(col, 0, 1);
		return;
	}
	if ((r = store_add(col->store, d, pr, p)) != STORE_OK)
		log_full(r);
}

static void log_count(void *arg, int64_t when, enum store_counter c, uint64_t n)
{
	struct collector *col = arg;

	if (collector_rollover(col, day_of(when)) == 0)
		store_bump(col->store, c, n);
}

/* Receive until the socket is empty. */
static void drain(struct collector *col, char *bufs)
{
	static struct log_limit lim_trunc;
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];

	for (;;) {
		int n;
		int64_t day;

		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs + (size_t)i * DGRAM_BUF;
			iov[i].iov_len = DGRAM_BUF;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(col->sock, msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_err("receive: %s", strerror(errno));
			return;
		}
		/* the day of receipt; checked once per batch */
		day = day_of(now_seconds(col));
		collector_rollover(col, day);
		for (int i = 0; i < n; i++) {
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				if (col->store == NULL) {
					count_unstored(col, 1, 0);
					continue;
				}
				store_bump(col->store, STC_DATAGRAMS, 1);
				store_bump(col->store, STC_TRUNCATED, 1);
				log_warn_limited(&lim_trunc, "dropped a datagram larger than %d bytes",
						 DGRAM_BUF);
				continue;
			}
			count_datagram(col, bufs + (size_t)i * DGRAM_BUF, msgs[i].msg_len);
		}
		if (n < BATCH)
			return;
	}
}

static void *syncer_main(void *arg)
{
	struct collector *col = arg;
	int interval = (int)conf_int(col->conf, "sync_interval");
	struct pollfd pfd = { .fd = col->sync_pipe[0], .events = POLLIN };

	for (;;) {
		int rc = poll(&pfd, 1, interval > 0 ? interval * 1000 : -1);

		if (rc != 0)
			return NULL;	/* pipe closed: shutting down */
		pthread_mutex_lock(&col->store_lock);
		if (col->store)
			store_sync(col->store);
		pthread_mutex_unlock(&col->store_lock);
	}
}

/*
 * Bind the datagram socket (lib/core/usock.h): relative to its checked
 * directory, created with socket_mode under a umask (no chmod by name),
 * its group from a setgid directory or fchownat without following links,
 * under a temporary name renamed into place, so Postfix never sees a
 * socket with the wrong permissions. Started as root, a socket directory
 * another user can write is refused.
 * Returns 0 or the exit status (71, 77 permission denied, 78 configuration).
 */
static int bind_socket(struct collector *col)
{
	struct usock_opts o = {
		.type = SOCK_DGRAM,
		.mode = (mode_t)conf_int(col->conf, "socket_mode"),
		.owner = conf_str(col->conf, "socket_owner"),
		.group = conf_str(col->conf, "socket_group"),
		.rcvbuf = (int)conf_int(col->conf, "socket_receive_buffer"),
	};
	char err[512], origin[1200];

	/* a name that does not exist: the key and where it was set */
	if (*o.owner && getpwnam(o.owner) == NULL) {
		log_fatal("%s: unknown user \"%s\"",
			  conf_origin(col->conf, "socket_owner", origin, sizeof(origin)), o.owner);
		return 78;
	}
	if (*o.group && getgrnam(o.group) == NULL) {
		log_fatal("%s: unknown group \"%s\"",
			  conf_origin(col->conf, "socket_group", origin, sizeof(origin)), o.group);
		return 78;
	}
	if (usock_bind(conf_str(col->conf, "socket_path"), &o, &col->us, err, sizeof(err)) != 0) {
		int e = errno;

		log_fatal("%s", err);
		return e == EINVAL ? 78 : e == EACCES || e == EPERM ? 77 : 71;
	}
	col->sock = col->us.fd;
	return 0;
}

/* The first regular "*.journal" file of 'dir' into 'out' (0), or -1. */
static int journal_file_in(const char *dir, char *out, size_t outsz)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = -1;

	while (d && rc != 0 && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		struct stat st;
		int len;

		if (n <= 8 || strcmp(de->d_name + n - 8, ".journal") != 0)
			continue;
		len = snprintf(out, outsz, "%s/%s", dir, de->d_name);
		if (len > 0 && (size_t)len < outsz && stat(out, &st) == 0 && S_ISREG(st.st_mode))
			rc = 0;
	}
	if (d)
		closedir(d);
	return rc;
}

/*
 * log_source = journal[:DIR]: the follower reads the journal files of
 * /var/log/journal and /run/log/journal (or DIR), each in its machine-id
 * directory, and sd_journal shows a user only the files it may read (group
 * systemd-journal or adm for the system's): without them it would follow
 * nothing and say nothing. So one journal file of the machine must be
 * readable as the service user.
 */
static void check_journal(struct confcheck *cc, const char *dir)
{
	static const char *const roots[] = { "/var/log/journal", "/run/log/journal" };
	char mid[64] = "", sub[PATH_MAX], file[PATH_MAX];
	FILE *fp = fopen("/etc/machine-id", "re");
	size_t nroots = dir ? 1 : 2;

	if (fp) {
		if (fgets(mid, sizeof(mid), fp) == NULL)
			mid[0] = '\0';
		mid[strcspn(mid, "\n")] = '\0';
		fclose(fp);
	}
	if (dir && dir[0] != '/') {
		confcheck_problem(cc, "log_source", "journal:%s: want an absolute directory", dir);
		return;
	}
	for (size_t i = 0; i < nroots; i++) {
		const char *root = dir ? dir : roots[i];

		snprintf(sub, sizeof(sub), "%s/%s", root, mid);
		if ((*mid && journal_file_in(sub, file, sizeof(file)) == 0) ||
		    journal_file_in(root, file, sizeof(file)) == 0) {
			confcheck_path_readable(cc, "log_source", file);
			return;
		}
	}
	confcheck_problem(cc, "log_source", "no journal file in %s%s", dir ? dir : roots[0],
			  dir ? "" : " or /run/log/journal");
}

/*
 * -n: what the collector needs, as the user it runs as, and what the
 * reporter needs to turn its counts into reports (one file configures
 * both; tlsrpt-report -n checks the reporter's files as its own user).
 */
static int check_config(const struct conf *c)
{
	struct confcheck *cc = confcheck_new(c, "tlsrptd", "tlsrptd", true);
	const char *log = conf_str(c, "log_source");
	bool root = false;

	if (cc == NULL)
		return 70;
	root = confcheck_starts_as_root(cc);
	confcheck_user_exists(cc, "socket_owner");
	confcheck_group_exists(cc, "socket_group");
	/* bound before privileges are dropped: by root when 'user' is set */
	confcheck_parent_dir(cc, "socket_path", conf_str(c, "socket_path"), root);
	confcheck_dir(cc, "state_directory", NULL, root ? CC_DIR_OWNED : CC_DIR_WRITE);
	if (*log && strcmp(log, "-") != 0) {
		if (strcmp(log, "journal") == 0 || strncmp(log, "journal:", 8) == 0)
			check_journal(cc, log[7] == ':' ? log + 8 : NULL);
		else if (log[0] != '/')
			confcheck_problem(cc, "log_source", "want an absolute path, \"journal\", "
					  "\"journal:DIRECTORY\" or \"-\", not \"%s\"", log);
		else
			confcheck_readable(cc, "log_source");
		confcheck_parent_dir(cc, "log_position_file", conf_str(c, "log_position_file"), false);
	}
	confcheck_required(cc, "organization_name", "tlsrpt-report needs it for every report");
	confcheck_required(cc, "contact_info", "tlsrpt-report needs it for every report");
	confcheck_address(cc, "contact_info");
	return confcheck_finish(cc);
}

/* systemd Type=notify without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void notify_systemd(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';	/* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

int main(int argc, char **argv)
{
	struct cmdline cl;
	bool foreground;
	int verbose, sfd = -1, rc = 0;
	struct conf *conf = conf_new();
	struct collector col;
	char err[512];
	char *bufs = NULL;
	sigset_t mask;
	const char *offset;

	memset(&col, 0, sizeof(col));
	col.sock = -1;
	col.us.fd = col.us.dirfd = -1;
	if (conf == NULL)
		return 70;
	rc = cmdline_daemon(argc, argv, "tlsrptd", DEFAULT_CONFIG,
			    "check the configuration and exit (with -v: print every key)", conf, &cl);
	if (rc >= 0)
		goto out;
	rc = 0;
	foreground = cl.foreground;
	verbose = cl.verbose;
	if (cl.check) {
		if (verbose)
			conf_print(conf, stdout);
		rc = check_config(conf);
		goto out;
	}

	col.conf = conf;
	pthread_mutex_init(&col.store_lock, NULL);
	if ((offset = getenv("TLSRPTD_TEST_CLOCK_OFFSET")) != NULL)
		col.clock_offset = strtoll(offset, NULL, 10);
	col.parser = dgram_parser_new();
	bufs = malloc((size_t)BATCH * DGRAM_BUF);
	if (col.parser == NULL || bufs == NULL) {
		log_fatal("out of memory");
		rc = 70;
		goto out;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);	/* inherited by the syncer */
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);

	/* day files 0640 in 0750 directories: the collector's user and group only */
	umask(027);
	if (mkdir(conf_str(conf, "state_directory"), 0750) != 0 && errno != EEXIST) {
		int e = errno;

		log_fatal("%s: %s", conf_str(conf, "state_directory"), strerror(e));
		rc = e == EACCES || e == EPERM ? 77 : 73;
		goto out;
	}
	if ((rc = bind_socket(&col)) != 0)
		goto out;
	if (pipe2(col.sync_pipe, O_CLOEXEC) != 0 ||
	    pthread_create(&col.syncer, NULL, syncer_main, &col) != 0) {
		log_fatal("cannot start the sync thread");
		rc = 71;
		goto out;
	}
	/*
	 * The kernel queues only net.unix.max_dgram_qlen datagrams (10 by
	 * default) and Postfix sends without blocking: when many smtp(8)
	 * processes are runnable, a normally scheduled receiver does not run
	 * in time and results are lost. A real-time policy for this thread
	 * (not the syncer, created above) makes it run as soon as one arrives.
	 */
	if (conf_int(conf, "realtime_priority") > 0) {
		struct sched_param sp = { .sched_priority = (int)conf_int(conf, "realtime_priority") };
		int e = pthread_setschedparam(pthread_self(), SCHED_RR, &sp);

		if (e != 0)
			log_warn("cannot use real-time scheduling (%s): bursts may lose results; "
				 "see realtime_priority", strerror(e));
	}
	if (privs_drop(conf_str(conf, "user"), conf_str(conf, "state_directory"),
		       err, sizeof(err)) < 0) {
		char origin[1200];

		log_fatal("%s: %s", conf_origin(conf, "user", origin, sizeof(origin)), err);
		rc = strstr(err, "unknown user") ? 78 : cmdline_status_of(err, 71);
		goto stop;
	}
	col.open_failed_day = -1;
	if (collector_rollover(&col, day_of(now_seconds(&col))) < 0 &&
	    col.open_errno != ENOSPC && col.open_errno != EDQUOT) {
		log_fatal("cannot open the day file: %s", strerror(col.open_errno));
		rc = col.open_errno == EACCES || col.open_errno == EPERM ? 77 : 73;
		goto stop;
	}

	if (*conf_str(conf, "log_source")) {
		col.pflog = pflog_open(conf, log_sink, &col, err, sizeof(err));
		if (col.pflog == NULL) {
			log_fatal("log_source: %s", err);
			rc = cmdline_status_of(err, 78);
			goto stop;
		}
		pflog_set_counter(col.pflog, log_count);
		log_info("following the Postfix log %s", conf_str(conf, "log_source"));
	}
	log_info("collecting TLS results on %s, day files in %s/days",
		 conf_str(conf, "socket_path"), conf_str(conf, "state_directory"));
	notify_systemd("READY=1");
	while (!col.stop) {
		struct pollfd pfd[3] = {
			{ .fd = col.sock, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = col.pflog ? pflog_fd(col.pflog) : -1, .events = POLLIN },
		};
		int64_t now = now_seconds(&col);
		/* wake up at the next midnight at the latest */
		int timeout = (int)((86400 - now % 86400) * 1000);

		if (timeout > 60000)
			timeout = 60000;
		/* a followed file has no fd to wait on: look at it 5 times a second */
		if (col.pflog && pfd[2].fd < 0 && timeout > 200)
			timeout = 200;
		if (poll(pfd, 3, timeout + 10) < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			rc = 71;
			break;
		}
		if (pfd[0].revents & POLLIN)
			drain(&col, bufs);
		if (col.pflog)
			pflog_poll(col.pflog, now_seconds(&col));
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					log_init("tlsrptd", foreground ? LOG_TO_STDERR : LOG_TO_SYSLOG, verbose);
					log_info("logs reopened");
				} else {
					col.stop = 1;
				}
			}
		}
		collector_rollover(&col, day_of(now_seconds(&col)));
	}

	notify_systemd("STOPPING=1");
	/*
	 * Stop new datagrams before the last drain, or whatever a sender
	 * queues between that drain and close() is lost although its sendto()
	 * succeeded: after shutdown(SHUT_RD) the kernel refuses every sendto()
	 * to this socket (EPIPE, decided under the lock that queues datagrams).
	 * Then everything the kernel accepted is drained, to the last datagram;
	 * the socket's name goes below (ENOENT for senders from then on).
	 */
	if (shutdown(col.sock, SHUT_RD) != 0)
		log_warn("shutdown of the socket: %s", strerror(errno));
	drain(&col, bufs);		/* what is queued is ours; nothing more can come */
	if (col.pflog) {
		pflog_poll(col.pflog, now_seconds(&col));
		pflog_close(col.pflog);	/* writes the log position */
	}
stop:	/* also after a failed start once the sync thread runs */
	close(col.sync_pipe[1]);
	pthread_join(col.syncer, NULL);
	usock_remove(&col.us);
	store_close(col.store);
	if (col.unstored_dgrams || col.unstored_results)
		log_unstored_lost(&col);
	if (rc == 0)
		log_info("stopped");
out:
	usock_remove(&col.us);	/* a start that failed after binding (no-op after stop) */
	dgram_parser_free(col.parser);
	free(bufs);
	conf_free(conf);
	return rc;
}
