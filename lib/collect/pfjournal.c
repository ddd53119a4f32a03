/*
 * pfjournal - Postfix's journal entries for the log follower. See
 * pfjournal.h.
 *
 * SECURITY: journal fields are untrusted text (any local process can log
 * with facility mail): each is bounded before it is copied, control
 * characters become spaces, and the line goes through pflog's bounded
 * parser like a log file line.
 */
#include "pfjournal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"
#include "pflog.h"

#define POS_MAGIC "pfjournal1"
#define BATCH 20000		/* entries per pfjournal_poll */
#define CURSOR_MAX 1024

struct pfjournal {
	sd_journal *j;
	struct pflog *pf;
	char *pos_path;
	char done_cursor[CURSOR_MAX];	/* last entry processed ("" none yet) */
	uint64_t done_usec;
	bool replaying;			/* before the saved cursor: rebuild only */
	bool dirty;
	int fd;
};

/* Append field 'name' of the current entry to 'out' (at most 'max' bytes,
 * control characters as spaces); false when the entry has no such field. */
static bool field(sd_journal *j, const char *name, char *out, size_t outsz, size_t *len)
{
	const void *data;
	size_t n, nl = strlen(name);

	if (sd_journal_get_data(j, name, &data, &n) < 0 || n <= nl || ((const char *)data)[nl] != '=')
		return false;
	data = (const char *)data + nl + 1;
	n -= nl + 1;
	for (size_t i = 0; i < n && *len + 1 < outsz; i++) {
		unsigned char c = ((const unsigned char *)data)[i];

		out[(*len)++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	out[*len] = '\0';
	return true;
}

/* "2026-12-05T03:23:44.123456+00:00 HOST IDENT[PID]: MESSAGE" */
static size_t make_line(sd_journal *j, uint64_t usec, char *line, size_t sz)
{
	time_t t = (time_t)(usec / 1000000);
	struct tm tm;
	size_t len;

	gmtime_r(&t, &tm);
	len = strftime(line, sz, "%Y-%m-%dT%H:%M:%S", &tm);
	len += (size_t)snprintf(line + len, sz - len, ".%06u+00:00 ", (unsigned)(usec % 1000000));
	if (!field(j, "_HOSTNAME", line, sz, &len))
		len += (size_t)snprintf(line + len, sz - len, "localhost");
	line[len++] = ' ';
	line[len] = '\0';
	if (!field(j, "SYSLOG_IDENTIFIER", line, sz, &len))
		return 0;
	line[len++] = '[';
	line[len] = '\0';
	if (!field(j, "SYSLOG_PID", line, sz, &len) && !field(j, "_PID", line, sz, &len))
		len += (size_t)snprintf(line + len, sz - len, "0");
	if (len + 4 >= sz)
		return 0;
	memcpy(line + len, "]: ", 4);
	len += 3;
	if (!field(j, "MESSAGE", line, sz, &len))
		return 0;
	return len;
}

static void write_pos(struct pfjournal *pj)
{
	static struct log_limit lim;
	char tmp[4200], text[CURSOR_MAX + 128];
	int fd, len;

	pj->dirty = false;
	if (pj->pos_path == NULL || pj->done_cursor[0] == '\0')
		return;
	len = snprintf(text, sizeof(text), POS_MAGIC " %" PRIu64 " %" PRIu64 " %s\n",
		       pflog_replay_from(pj->pf, pj->done_usec), pj->done_usec, pj->done_cursor);
	if (len < 0 || len >= (int)sizeof(text) ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", pj->pos_path) >= (int)sizeof(tmp))
		return;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0 || write(fd, text, (size_t)len) != len || close(fd) != 0 ||
	    rename(tmp, pj->pos_path) != 0) {
		log_warn_limited(&lim, "log follower: cannot write %s: %s", pj->pos_path,
				 strerror(errno));
		if (fd >= 0)
			unlink(tmp);
	}
}

/* Where to start: after the saved cursor (replaying from REPLAY), or at
 * the end of the journal. */
static void seek_start(struct pfjournal *pj)
{
	FILE *fp = pj->pos_path ? fopen(pj->pos_path, "re") : NULL;
	char magic[16], cursor[CURSOR_MAX];
	uint64_t replay = 0, done = 0;
	int n = 0;

	if (fp) {
		n = fscanf(fp, "%15s %" SCNu64 " %" SCNu64 " %1023s", magic, &replay, &done, cursor);
		fclose(fp);
	}
	if (n == 4 && strcmp(magic, POS_MAGIC) == 0 && replay <= done) {
		snprintf(pj->done_cursor, sizeof(pj->done_cursor), "%s", cursor);
		pj->done_usec = done;
		pj->replaying = true;
		if (sd_journal_seek_realtime_usec(pj->j, replay) >= 0)
			return;
	} else if (fp || n) {
		log_warn("log follower: %s is not a journal position file; reading from the end",
			 pj->pos_path);
	}
	pj->replaying = false;
	pj->done_cursor[0] = '\0';
	sd_journal_seek_tail(pj->j);
	sd_journal_previous(pj->j);	/* at the last entry: next() gives new ones */
}

struct pfjournal *pfjournal_open(struct pflog *pf, const char *dir, const char *pos_path,
				 char *err, size_t errsz)
{
	struct pfjournal *pj = calloc(1, sizeof(*pj));
	int r;

	if (pj == NULL || (pos_path && (pj->pos_path = strdup(pos_path)) == NULL)) {
		free(pj);
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	pj->pf = pf;
	pj->fd = -1;
	r = dir ? sd_journal_open_directory(&pj->j, dir, 0)
		: sd_journal_open(&pj->j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
	if (r < 0) {
		snprintf(err, errsz, "cannot open the journal%s%s: %s", dir ? " in " : "", dir ? dir : "",
			 strerror(-r));
		free(pj->pos_path);
		free(pj);
		return NULL;
	}
	if (sd_journal_add_match(pj->j, "SYSLOG_FACILITY=2", 0) < 0) {
		snprintf(err, errsz, "journal: cannot add the match for facility mail");
		pfjournal_close(pj);
		return NULL;
	}
	/* readable files: without the group, the system journal shows only
	 * the user's own entries, which is never Postfix */
	if (!dir && sd_journal_has_persistent_files(pj->j) == 0 &&
	    sd_journal_has_runtime_files(pj->j) == 0) {
		snprintf(err, errsz, "no journal files readable: the collector's user needs group "
			 "systemd-journal (adduser tlsrptd systemd-journal)");
		pfjournal_close(pj);
		return NULL;
	}
	pj->fd = sd_journal_get_fd(pj->j);
	seek_start(pj);
	return pj;
}

void pfjournal_close(struct pfjournal *pj)
{
	if (pj == NULL)
		return;
	if (pj->j && !pj->replaying)
		write_pos(pj);
	if (pj->j)
		sd_journal_close(pj->j);
	free(pj->pos_path);
	free(pj);
}

/*
 * -1: poll on the caller's timer (200 ms). The journal's inotify fd does
 * not fire for entries that were there before we started, and a timer
 * covers both; the fd is still set up (sd_journal_get_fd at open) so that
 * sd_journal_process notices new and rotated journal files.
 */
int pfjournal_fd(const struct pfjournal *pj)
{
	(void)pj;
	return -1;
}

int pfjournal_poll(struct pfjournal *pj, int64_t now)
{
	static struct log_limit lim;
	char line[PFLOG_MAX_LINE + 1];
	int r = 0;

	if (pj->fd >= 0)
		sd_journal_process(pj->j);
	for (int n = 0; n < BATCH; n++) {
		uint64_t usec = 0;
		size_t len;
		bool at_done = false;
		char *cur = NULL;

		r = sd_journal_next(pj->j);
		if (r <= 0)
			break;
		if (sd_journal_get_realtime_usec(pj->j, &usec) < 0)
			continue;
		if (pj->replaying) {
			at_done = sd_journal_test_cursor(pj->j, pj->done_cursor) > 0;
			if (!at_done && usec > pj->done_usec) {
				/* the saved entry is gone (vacuumed): count from here */
				pj->replaying = false;
				log_info("log follower: the saved journal position is gone; "
					 "reading on from its time");
			}
		}
		len = make_line(pj->j, usec, line, sizeof(line));
		if (len > 0)
			pflog_feed_at(pj->pf, line, len, now, usec, pj->replaying);
		if (at_done) {
			pj->replaying = false;	/* the next entry is new */
			continue;
		}
		if (pj->replaying)
			continue;
		if (sd_journal_get_cursor(pj->j, &cur) >= 0 && strlen(cur) < sizeof(pj->done_cursor)) {
			memcpy(pj->done_cursor, cur, strlen(cur) + 1);
			pj->done_usec = usec;
			pj->dirty = true;
		}
		free(cur);
	}
	if (r < 0)
		log_warn_limited(&lim, "log follower: reading the journal: %s", strerror(-r));
	if (pj->dirty)
		write_pos(pj);
	return r < 0 ? -1 : 0;
}
