/*
 * fleetday - which node builds which report, in fleet mode.
 *
 * Any number of reporter nodes run at the same time. For a completed day:
 *   1. fleetday_ready: every host active around the day (a push since the
 *      day before it began) has pushed it final (its day file pushed after
 *      the day ended, or, without results that day, a complete push after
 *      it: hosts.final_through), or fleet_push_wait has passed since
 *      midnight UTC; hosts still missing are named.
 *   2. fleetday_open (idempotent, one transaction): the day's row and one
 *      work item per (day, TLSRPT domain, record) with sessions. Two nodes
 *      opening the same day at once create each item once (primary key).
 *   3. fleetday_claim: a transaction locks up to N pending items with
 *      SELECT ... FOR UPDATE SKIP LOCKED; the node builds their reports and
 *      inserts them (spool_db, same connection, same transaction), sets each
 *      item's outcome (fleetday_item_done / _later) and fleetday_finish
 *      writes the outcomes and commits. A node that dies holds nothing: its transaction is rolled
 *      back and the items are claimable at once. So exactly one report is
 *      built per item, by whichever node claimed it.
 *   4. fleetday_close: when no item is pending the day is done.
 *
 * Late results (the documented rule): a day's items are made when the day is
 * opened. A key (domain, record) that first appears in a later push gets an
 * item of its own, marked late, the next time a reporter looks at the day
 * (days within spool_retention that saw pushes after they were done), and
 * is reported like the others. Results added to a key whose report was built
 * already are kept and counted in the database (tlsrptctl db status shows
 * them as late sessions) but not sent: that report, with its report-id, is
 * out.
 *
 * Not thread safe (one db handle).
 */
#ifndef TLSRPT_FLEETDAY_H
#define TLSRPT_FLEETDAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

enum fleetday_outcome { FLEETDAY_UNSET, FLEETDAY_BUILT, FLEETDAY_SKIPPED, FLEETDAY_LATER };

struct fleetday_item {
	char *d, *pr;
	bool late;
	/* the outcome, set by the caller (fleetday_item_*), written by fleetday_finish */
	enum fleetday_outcome outcome;
	char report[48];	/* BUILT: its spool id */
	char note[256];
	int64_t retry_at;	/* LATER */
};

/*
 * Days in [from, to) (days since the epoch) that have pushed counts and are
 * not done, or are done but got pushes afterwards (late keys may have
 * appeared). Sorted; caller frees *days.
 */
enum db_status fleetday_candidates(struct db *db, int64_t from, int64_t to, int64_t **days,
				   size_t *n, char *err, size_t errsz);

/* Is the day done (every item built or skipped)? */
enum db_status fleetday_is_done(struct db *db, int64_t day, bool *done, char *err, size_t errsz);

/*
 * May day 'day' be reported at 'now' (Unix seconds, the reporter's clock)?
 * True when every active host has pushed it final or now is past midnight
 * + 'wait'. 'missing' gets the names of the hosts still waited for.
 */
enum db_status fleetday_ready(struct db *db, int64_t day, int64_t now, int64_t wait, bool *ready,
			      char *missing, size_t msz, char *err, size_t errsz);

/* Create the day and its items (new keys of a done day as late items and
 * the day open again). *added = items created now. */
enum db_status fleetday_open(struct db *db, int64_t day, const char *node, size_t *added,
			     char *err, size_t errsz);

/*
 * Begin a transaction and lock up to 'max' pending items of 'day' whose
 * retry time has come by 'now' (none: *n = 0 and the transaction is
 * closed). The transaction stays open for the caller's inserts until
 * fleetday_finish.
 */
enum db_status fleetday_claim(struct db *db, int64_t day, int64_t now, size_t max,
			      struct fleetday_item **items, size_t *n, char *err, size_t errsz);
void fleetday_items_free(struct fleetday_item *items, size_t n);

/* The outcome of a claimed item: 'built' (report = its spool id) or
 * 'skipped' (note says why); or pending again until 'retry_at'. */
void fleetday_item_done(struct fleetday_item *it, bool built, const char *report, const char *note);
void fleetday_item_later(struct fleetday_item *it, int64_t retry_at, const char *note);
/* Write the outcomes of the claimed items (one statement; items left
 * FLEETDAY_UNSET stay pending) and commit; or roll back ('commit' false,
 * nothing written). 'node' is recorded as done_by. */
enum db_status fleetday_finish(struct db *db, int64_t day, const struct fleetday_item *items,
			       size_t n, const char *node, bool commit, char *err, size_t errsz);

/*
 * If no item of 'day' is pending, mark the day done with 'mark' (a JSON
 * object text: when, how many reports) and set *done. Items pending for a
 * retry keep it open.
 */
enum db_status fleetday_close(struct db *db, int64_t day, const char *mark, bool *done,
			      char *err, size_t errsz);

#endif
