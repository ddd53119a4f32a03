/*
 * spool_fs - how the spool keeps what it records: files under
 * spool_directory. spool.c decides what a report, a destination's delivery
 * state, a day mark and a suppression are (JSON objects whose members it
 * defines); this module stores and returns them, atomically and durably,
 * and never interprets them beyond the keys named here. Another backend
 * (a database for fleets) implements the same functions.
 *
 * Layout under the directory:
 *   lock                    flock: one writer (tlsrpt-report, spool retry)
 *   reports/ID/meta.json    the report's record
 *   reports/ID/report.json.gz   the exact bytes sent
 *   reports/ID/dest-N.json  destination N's record (N = 0 .. ndests-1)
 *   reports/ID/done         a hint: no destination is pending (runs skip it)
 *   days/YYYY-MM-DD         day mark: the day was reported
 *   suppressed/HASH.json    suppression record of one destination URI
 *                           (HASH: SHA-256 of the URI; the record holds
 *                           "uri", compared on read)
 *   tmp/                    reports being written; emptied on open
 * IDs are lower-case letters, digits and '-', 1-40 characters.
 *
 * Atomicity and durability:
 *   - A report is written completely into tmp/ (spool_fs_stage), then
 *     spool_fs_commit makes every staged report durable with one syncfs,
 *     renames each into reports/ and fsyncs reports/: a report exists
 *     completely or not at all. Staged reports not committed are gone
 *     after the next open.
 *   - spool_fs_put_dest replaces one record atomically and durably (temp
 *     file, fsync, rename, fsync of the directory) before it returns.
 *     spool_fs_put_dests does the same for several records with one
 *     syncfs before and one after their renames.
 *   - Day marks and suppressions are replaced like put_dest.
 *   - The "done" hint is not synced: losing it costs a re-read.
 * A crash at any point leaves every record either old or new, never torn.
 *
 * Errors: -1 with errno (and 'err' where there is one). Records are our
 * own output but are still read defensively: a file that is missing, too
 * large (16 MiB) or not a JSON object reads as NULL.
 * Not thread safe.
 */
#ifndef TLSRPT_SPOOL_FS_H
#define TLSRPT_SPOOL_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct spool_fs;

/*
 * Open the spool at 'dir'. With 'write': create the directories, take the
 * lock (fails at once, with a message saying another run holds it) and
 * empty tmp/. Without: 'dir' must exist. NULL with 'err' on failure.
 */
struct spool_fs *spool_fs_open(const char *dir, bool write, char *err, size_t errsz);
void spool_fs_close(struct spool_fs *fs);

/* Test hook: called at "add-tmp-written" and "add-renamed" of a commit. */
extern void (*spool_fs_test_hook)(const char *point);

/* ---- reports ---- */

bool spool_fs_valid_id(const char *id);
/* Is report 'id' committed? */
bool spool_fs_has(struct spool_fs *fs, const char *id);

/*
 * Write report 'id' (its bytes, its record 'meta' and its destinations'
 * records) into tmp/. *existed is set (and nothing written) when 'id' is
 * committed or staged already. The records are not kept. 0 or -1.
 */
int spool_fs_stage(struct spool_fs *fs, const char *id, const unsigned char *gz, size_t gzlen,
		   struct json_object *meta, struct json_object *const *dests, size_t ndests,
		   bool *existed, char *err, size_t errsz);
/* Make every staged report durable and visible (see above). 0 or -1. */
int spool_fs_commit(struct spool_fs *fs, char *err, size_t errsz);

/* Sorted IDs of the committed reports; free with spool_fs_ids_free. */
int spool_fs_ids(struct spool_fs *fs, char ***ids, size_t *n);
void spool_fs_ids_free(char **ids, size_t n);

/* The report's record, destination i's record (caller puts), its bytes
 * (caller frees). NULL / -1 when absent or unreadable. */
struct json_object *spool_fs_meta(struct spool_fs *fs, const char *id);
struct json_object *spool_fs_dest(struct spool_fs *fs, const char *id, size_t i);
int spool_fs_gz(struct spool_fs *fs, const char *id, unsigned char **gz, size_t *len);

/* Replace destination records: one, or several with one sync (each ref
 * names a report, a destination index and the record). Durable on return. */
int spool_fs_put_dest(struct spool_fs *fs, const char *id, size_t i, struct json_object *rec);
struct spool_fs_ref {
	const char *id;
	size_t index;
	struct json_object *rec;
};
int spool_fs_put_dests(struct spool_fs *fs, const struct spool_fs_ref *refs, size_t n);

/* The "no destination pending" hint of a report. */
bool spool_fs_final(struct spool_fs *fs, const char *id);
void spool_fs_set_final(struct spool_fs *fs, const char *id, bool final);

/* Remove a report completely (first out of reports/ in one step). */
int spool_fs_remove(struct spool_fs *fs, const char *id);

/* ---- day marks (days since 1970-01-01) ---- */

bool spool_fs_day_exists(struct spool_fs *fs, int64_t day);
int spool_fs_day_put(struct spool_fs *fs, int64_t day, struct json_object *rec);
/* Sorted days that have a mark; caller frees *days. */
int spool_fs_days(struct spool_fs *fs, int64_t **days, size_t *n);
int spool_fs_day_remove(struct spool_fs *fs, int64_t day);

/* ---- suppression records, one per destination URI ---- */

/* The record of 'uri' (its "uri" member checked), NULL if none. */
struct json_object *spool_fs_suppression(struct spool_fs *fs, const char *uri);
/* 'rec' must hold "uri": 'uri'. */
int spool_fs_suppression_put(struct spool_fs *fs, const char *uri, struct json_object *rec);
int spool_fs_suppression_remove(struct spool_fs *fs, const char *uri);
/* Call 'check' for every record (NULL for an unreadable one): it returns
 * SPOOL_FS_KEEP, SPOOL_FS_REMOVE, or SPOOL_FS_REWRITE (it changed the
 * record, which is then written back). */
enum spool_fs_verdict { SPOOL_FS_KEEP, SPOOL_FS_REMOVE, SPOOL_FS_REWRITE };
int spool_fs_suppressions_filter(struct spool_fs *fs,
				 enum spool_fs_verdict (*check)(void *arg, struct json_object *rec),
				 void *arg);

#endif
