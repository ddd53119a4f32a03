/*
 * push - write one host's day files into the fleet database.
 *
 * What is pushed is the day file's current state, not a delta, and as the
 * day file holds it (made valid UTF-8, cut at a NUL, which the collector
 * never writes): readers put it through the same agg_add_* path as
 * `--input` puts day files, so both build the same reports. For each
 * day, the host's rows are made equal to its day file in one transaction
 * (counts that changed are updated, keys that are gone deleted, new ones
 * inserted; unchanged rows are not touched). Pushing the same day again, or
 * every few minutes while the day fills, therefore never counts a result
 * twice, and a push interrupted at any point (database outage, kill) leaves
 * the previous push in place: the day file stays the source of truth and
 * the next push sends it whole. A host that could not reach the database
 * catches up with its next successful push (every day file not older than
 * fleet_push_max_age).
 *
 * Each day's content is summarised in a SHA-256 "snapshot" (over the rows
 * and the ingest counters); a push whose snapshot equals the one in
 * the database writes nothing. A day is "final" once a push was made after
 * the day ended on the host's clock (plus one minute for the collector's
 * rollover); days the database has as final, and that are over by the
 * host's clock, are not read again (unless 'all'). A clock that went back
 * makes a final day current again: it is pushed and marked not final, so
 * nothing the collector still counts into it is left behind.
 *
 * Policies and failure-detail tuples are stored once for the whole fleet,
 * keyed by SHA-256 of their content (push_policy_hash, push_detail_hash);
 * a row whose content does not match its key is an error, never used.
 *
 * Host identity: fleet_host_name (default: the system's host name). The
 * first push registers the name with the machine's /etc/machine-id; a push
 * under that name from another machine is refused, so two hosts configured
 * with the same name cannot overwrite each other's counts.
 *
 * Not thread safe (one db handle).
 */
#ifndef TLSRPT_PUSH_H
#define TLSRPT_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "conf.h"
#include "db.h"
#include "store.h"

#define PUSH_HASH_LEN 32
#define PUSH_HOST_MAX 64

struct push_opts {
	const char *host;	/* host name (push_host_name) */
	const char *machine_id;	/* "" if unknown */
	int64_t now;		/* the host's clock, Unix seconds */
	int64_t max_age;	/* push day files at most this old (seconds) */
	int64_t day;		/* only this day (-1: all) */
	bool all;		/* also re-read days the database has as final */
};

struct push_stats {
	size_t days;		/* day files looked at */
	size_t pushed;		/* days whose rows changed */
	size_t unchanged;	/* same snapshot as in the database */
	size_t final_skipped;	/* final in the database, not read */
	size_t bad_files;	/* day files that failed validation */
	uint64_t policies, details;	/* rows sent in changed days */
};

/* fleet_host_name, or the system's host name; -1 with 'err' if unusable. */
int push_host_name(const struct conf *c, char *out, size_t outsz, char *err, size_t errsz);
/* /etc/machine-id (32 hex digits) or "". */
void push_machine_id(char *out, size_t outsz);

/* The content keys. */
void push_policy_hash(const char *d, const char *pr, const struct agg_policy *p,
		      unsigned char out[PUSH_HASH_LEN]);
void push_detail_hash(const struct agg_detail *d, unsigned char out[PUSH_HASH_LEN]);

/* Register (or find) the host; *host_id gets its id. */
enum db_status push_register(struct db *db, const char *name, const char *machine_id,
			     int *host_id, char *err, size_t errsz);

/*
 * Push one validated day file view for 'host_id'. *changed says whether
 * anything was written. DB_RETRY means: run it again.
 */
enum db_status push_day(struct db *db, int host_id, const struct store_view *v, int64_t now,
			bool *changed, struct push_stats *st, char *err, size_t errsz);

/*
 * Push every day file of the state directory that needs it (see above),
 * oldest first, each day in its own transaction (retried on DB_RETRY).
 * Stops at the first DB_UNAVAILABLE (what was committed stays). A day file
 * that fails validation is logged, counted in st->bad_files and skipped.
 */
enum db_status push_run(struct db *db, const char *state_dir, const struct push_opts *o,
			struct push_stats *st, char *err, size_t errsz);

#endif
