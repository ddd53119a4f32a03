/*
 * pfjournal - the Postfix 3.7-3.9 log source "journal": Postfix's entries
 * in the systemd journal, fed line by line to the pflog parser and
 * pairing machine (pflog.h), as a mail log file would be.
 *
 * Debian 12 has no rsyslog by default; Postfix logs to the journal through
 * syslog(3). The entries read are those of facility mail
 * (SYSLOG_FACILITY=2: every Postfix program, whatever its syslog_name),
 * each turned into "TIMESTAMP HOST IDENTIFIER[PID]: MESSAGE". The
 * collector's user needs group systemd-journal (or adm) to read the
 * system journal.
 *
 * Position: log_position_file holds "pfjournal1 REPLAY DONE CURSOR": the
 * journal cursor of the last entry processed (DONE its realtime stamp in
 * microseconds), and REPLAY the realtime stamp of the oldest entry a
 * session still waiting for its delivery line came from. It is written
 * (temporary file + rename) after every batch, after the sink was called
 * for it. On restart the entries from REPLAY up to the cursor rebuild the
 * waiting sessions without counting anything, and counting resumes after
 * the cursor: a restart neither loses nor counts twice (except entries
 * processed after the last write, on a crash). Without a position file,
 * reading starts at the end of the journal (old entries are not today's).
 * A cursor that is gone (the journal was vacuumed) resumes after DONE.
 *
 * Not thread safe: one owner (the pflog that opened it).
 */
#ifndef TLSRPT_PFJOURNAL_H
#define TLSRPT_PFJOURNAL_H

#include <stddef.h>
#include <stdint.h>

struct pflog;
struct pfjournal;

/*
 * Open the local system journal (dir NULL) or the journal files in 'dir',
 * feeding 'pf'; 'pos_path' is the position file. NULL with 'err' when the
 * journal cannot be opened (permissions: the message names the group).
 */
struct pfjournal *pfjournal_open(struct pflog *pf, const char *dir, const char *pos_path,
				 char *err, size_t errsz);
/* Write the position and close; NULL is fine. */
void pfjournal_close(struct pfjournal *j);
/* -1: call pfjournal_poll on a timer (as for a followed file). */
int pfjournal_fd(const struct pfjournal *j);
/* Read and feed what is new (a bounded batch); write the position. 0, or
 * -1 on a read error (logged; the next call tries again). */
int pfjournal_poll(struct pfjournal *j, int64_t now);

#endif
