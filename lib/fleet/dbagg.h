/*
 * dbagg - one UTC day of the whole fleet, read back from the database into
 * an agg (agg.h), so that the reporter and `tlsrptctl dump --fleet` build
 * exactly what `--input` builds from the same hosts' day files: the same
 * merge, the same order, the same report bytes.
 *
 * The rows are read in one REPEATABLE READ transaction, so a push running
 * at the same time is seen completely or not at all. The database is shared
 * by every host of the fleet, so its rows are input like a copied day file:
 * every string and list is bounded, every count (and every sum over the
 * hosts) checked against DBAGG_COUNT_MAX; a row that fails is skipped,
 * counted in 'bad_rows' and logged.
 *
 * Not thread safe (one db handle).
 */
#ifndef TLSRPT_DBAGG_H
#define TLSRPT_DBAGG_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "db.h"

#define DBAGG_STRING_MAX 65536	/* max_string_length's upper bound */
#define DBAGG_LIST_MAX 4096
#define DBAGG_COUNT_MAX 9007199254740991LL	/* 2^53-1: the largest count a report carries */

struct dbagg_info {
	size_t hosts;		/* hosts with rows for the day */
	size_t final_hosts;	/* of which pushed after the day ended */
	size_t policies, details;	/* rows read */
	size_t bad_rows;	/* rows skipped (out of bounds) */
};

/* Add day 'day' of every host to 'a' (not yet agg_finish'ed). */
enum db_status dbagg_day(struct db *db, int64_t day, struct agg *a, struct dbagg_info *info,
			 char *err, size_t errsz);

/* Parse a JSON array of strings (array_to_json output) of at most
 * DBAGG_LIST_MAX entries of at most DBAGG_STRING_MAX bytes. 0, or -1.
 * Free with dbagg_free_list. (Exposed for the tests.) */
int dbagg_parse_list(const char *json, size_t len, char ***out, size_t *n);
void dbagg_free_list(char **v, size_t n);

#endif
