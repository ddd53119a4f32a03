/*
 * fleetday - which node builds which report, in fleet mode. See fleetday.h.
 */
#include "fleetday.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "store.h"

static void daystr(int64_t day, char *out, size_t outsz)
{
	store_format_day(out, outsz, day);
}

static enum db_status fail(struct db *db, enum db_status st, char *err, size_t errsz)
{
	snprintf(err, errsz, "%s", db_errmsg(db));
	return st;
}

enum db_status fleetday_candidates(struct db *db, int64_t from, int64_t to, int64_t **days,
				   size_t *n, char *err, size_t errsz)
{
	char f[16], t[16];
	const char *p[2] = { f, t };
	struct db_res *r = NULL;
	enum db_status st;

	*days = NULL;
	*n = 0;
	daystr(from, f, sizeof(f));
	daystr(to, t, sizeof(t));
	st = db_exec(db, "SELECT h.day - date '1970-01-01' FROM tlsrpt.host_days h"
		     " LEFT JOIN tlsrpt.report_days r ON r.day = h.day"
		     " WHERE h.day >= $1::date AND h.day < $2::date"
		     " GROUP BY h.day, r.done_at"
		     " HAVING r.done_at IS NULL OR max(h.pushed_at) > r.done_at"
		     " ORDER BY 1", 2, p, &r);
	if (st != DB_OK)
		return fail(db, st, err, errsz);
	*days = calloc(db_res_rows(r) ? db_res_rows(r) : 1, sizeof(**days));
	if (*days == NULL) {
		db_res_free(r);
		snprintf(err, errsz, "out of memory");
		return DB_ERROR;
	}
	for (size_t i = 0; i < db_res_rows(r); i++)
		if (db_res_int(r, i, 0, &(*days)[*n]))
			(*n)++;
	db_res_free(r);
	return DB_OK;
}

enum db_status fleetday_is_done(struct db *db, int64_t day, bool *done, char *err, size_t errsz)
{
	char d[16];
	const char *p[1] = { d };
	struct db_res *r = NULL;
	enum db_status st;

	daystr(day, d, sizeof(d));
	st = db_exec(db, "SELECT done_at IS NOT NULL FROM tlsrpt.report_days WHERE day = $1::date",
		     1, p, &r);
	if (st != DB_OK)
		return fail(db, st, err, errsz);
	*done = db_res_rows(r) == 1 && strcmp(db_res_get(r, 0, 0), "t") == 0;
	db_res_free(r);
	return DB_OK;
}

enum db_status fleetday_ready(struct db *db, int64_t day, int64_t now, int64_t wait, bool *ready,
			      char *missing, size_t msz, char *err, size_t errsz)
{
	char d[16], since[24];
	const char *p[2] = { d, since };
	struct db_res *r = NULL;
	enum db_status st;
	size_t used = 0;

	*ready = false;
	if (msz)
		missing[0] = '\0';
	daystr(day, d, sizeof(d));
	snprintf(since, sizeof(since), "%lld", (long long)((day - 1) * 86400));
	st = db_exec(db, "SELECT h.name FROM tlsrpt.hosts h"
		     " LEFT JOIN tlsrpt.host_days d ON d.host_id = h.id AND d.day = $1::date"
		     " WHERE h.last_push >= to_timestamp($2::bigint) AND NOT coalesce(d.final, false)"
		     " AND NOT coalesce(h.final_through >= $1::date, false)"
		     " ORDER BY h.name", 2, p, &r);
	if (st != DB_OK)
		return fail(db, st, err, errsz);
	for (size_t i = 0; i < db_res_rows(r) && msz; i++) {
		int k = snprintf(missing + used, msz - used, "%s%s", i ? ", " : "", db_res_get(r, i, 0));

		if (k < 0 || (size_t)k >= msz - used) {
			used = msz - 1;
			break;
		}
		used += (size_t)k;
	}
	*ready = db_res_rows(r) == 0 || now >= (day + 1) * 86400 + wait;
	db_res_free(r);
	return DB_OK;
}

enum db_status fleetday_open(struct db *db, int64_t day, const char *node, size_t *added,
			     char *err, size_t errsz)
{
	char d[16];
	const char *p[2] = { d, node };
	struct db_res *r = NULL;
	enum db_status st;
	int64_t n = 0;

	*added = 0;
	daystr(day, d, sizeof(d));
	if ((st = db_begin(db)) != DB_OK ||
	    (st = db_exec(db, "INSERT INTO tlsrpt.report_days (day, opened_by) VALUES ($1::date, $2)"
			  " ON CONFLICT (day) DO NOTHING", 2, p, NULL)) != DB_OK ||
	    (st = db_exec(db, "WITH done AS (SELECT done_at IS NOT NULL AS late FROM tlsrpt.report_days"
			  "  WHERE day = $1::date FOR UPDATE),"
			  " ins AS (INSERT INTO tlsrpt.report_items (day, d, pr, late)"
			  "  SELECT $1::date, p.d, p.pr, (SELECT late FROM done)"
			  "  FROM tlsrpt.policy_counts c JOIN tlsrpt.policies p ON p.id = c.policy_id"
			  "  WHERE c.day = $1::date GROUP BY p.d, p.pr"
			  "  HAVING sum(c.successes) + sum(c.failures) > 0"
			  "  ON CONFLICT (day, d, pr) DO NOTHING RETURNING 1)"
			  " SELECT count(*) FROM ins", 1, p, &r)) != DB_OK)
		goto out;
	db_res_int(r, 0, 0, &n);
	db_res_free(r);
	r = NULL;
	if (n > 0 && (st = db_exec(db, "UPDATE tlsrpt.report_days SET done_at = NULL"
				   " WHERE day = $1::date AND done_at IS NOT NULL", 1, p, NULL)) != DB_OK)
		goto out;
	st = db_commit(db);
out:
	db_res_free(r);
	if (st != DB_OK) {
		fail(db, st, err, errsz);
		db_rollback(db);
		return st;
	}
	*added = (size_t)n;
	return DB_OK;
}

void fleetday_items_free(struct fleetday_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++) {
		free(items[i].d);
		free(items[i].pr);
	}
	free(items);
}

enum db_status fleetday_claim(struct db *db, int64_t day, int64_t now, size_t max,
			      struct fleetday_item **items, size_t *n, char *err, size_t errsz)
{
	char d[16], t[24], m[24];
	const char *p[3] = { d, t, m };
	struct db_res *r = NULL;
	enum db_status st;

	*items = NULL;
	*n = 0;
	daystr(day, d, sizeof(d));
	snprintf(t, sizeof(t), "%lld", (long long)now);
	snprintf(m, sizeof(m), "%zu", max);
	if ((st = db_begin(db)) != DB_OK ||
	    (st = db_exec(db, "SELECT d, pr, late FROM tlsrpt.report_items WHERE day = $1::date"
			  " AND state = 'pending' AND (retry_at IS NULL OR retry_at <= to_timestamp($2::bigint))"
			  " ORDER BY d, pr LIMIT $3::integer FOR UPDATE SKIP LOCKED", 3, p, &r)) != DB_OK) {
		fail(db, st, err, errsz);
		db_rollback(db);
		return st;
	}
	if (db_res_rows(r) == 0) {
		db_res_free(r);
		db_rollback(db);
		return DB_OK;
	}
	*items = calloc(db_res_rows(r), sizeof(**items));
	for (size_t i = 0; *items && i < db_res_rows(r); i++) {
		(*items)[i].d = strdup(db_res_get(r, i, 0));
		(*items)[i].pr = strdup(db_res_get(r, i, 1));
		(*items)[i].late = strcmp(db_res_get(r, i, 2), "t") == 0;
		*n = i + 1;
		if ((*items)[i].d == NULL || (*items)[i].pr == NULL)
			break;
	}
	if (*items == NULL || *n != db_res_rows(r) || (*items)[*n - 1].pr == NULL) {
		fleetday_items_free(*items, *n);
		*items = NULL;
		*n = 0;
		db_res_free(r);
		db_rollback(db);
		snprintf(err, errsz, "out of memory");
		return DB_ERROR;
	}
	db_res_free(r);
	return DB_OK;
}

void fleetday_item_done(struct fleetday_item *it, bool built, const char *report, const char *note)
{
	it->outcome = built ? FLEETDAY_BUILT : FLEETDAY_SKIPPED;
	snprintf(it->report, sizeof(it->report), "%s", report ? report : "");
	snprintf(it->note, sizeof(it->note), "%s", note ? note : "");
}

void fleetday_item_later(struct fleetday_item *it, int64_t retry_at, const char *note)
{
	it->outcome = FLEETDAY_LATER;
	it->retry_at = retry_at;
	snprintf(it->note, sizeof(it->note), "%s", note ? note : "");
}

/* The outcomes as six text[] literals: d, pr, state, report, note, retry. */
static int outcome_arrays(const struct fleetday_item *items, size_t n, struct buf *b)
{
	char **col = calloc(n ? n : 1, sizeof(*col));
	char (*retry)[24] = calloc(n ? n : 1, sizeof(*retry));
	int rc = 0;

	if (col == NULL || retry == NULL) {
		free(col);
		free(retry);
		return -1;
	}
	for (int c = 0; c < 6 && rc == 0; c++) {
		size_t k = 0;

		for (size_t i = 0; i < n; i++) {
			const struct fleetday_item *it = &items[i];
			static const char *const state[] = { "pending", "built", "skipped", "pending" };

			if (it->outcome == FLEETDAY_UNSET)
				continue;
			switch (c) {
			case 0: col[k] = it->d; break;
			case 1: col[k] = it->pr; break;
			case 2: col[k] = (char *)(uintptr_t)state[it->outcome]; break;
			case 3: col[k] = (char *)(uintptr_t)it->report; break;
			case 4: col[k] = (char *)(uintptr_t)it->note; break;
			default:
				snprintf(retry[i], sizeof(retry[i]), "%lld",
					 it->outcome == FLEETDAY_LATER ? (long long)it->retry_at : 0LL);
				col[k] = retry[i];
				break;
			}
			k++;
		}
		rc = db_array_literal(&b[c], col, k);
	}
	free(col);
	free(retry);
	return rc;
}

enum db_status fleetday_finish(struct db *db, int64_t day, const struct fleetday_item *items,
			       size_t n, const char *node, bool commit, char *err, size_t errsz)
{
	struct buf b[6];
	char d[16];
	enum db_status st = DB_OK;
	size_t set = 0;

	if (!commit) {
		db_rollback(db);
		return DB_OK;
	}
	for (size_t i = 0; i < n; i++)
		set += items[i].outcome != FLEETDAY_UNSET;
	for (int c = 0; c < 6; c++)
		buf_init(&b[c], 64u * 1024 * 1024);
	daystr(day, d, sizeof(d));
	if (set > 0) {
		if (outcome_arrays(items, n, b) != 0) {
			snprintf(err, errsz, "out of memory");
			st = DB_ERROR;
		} else {
			const char *p[8] = { d, node, b[0].data, b[1].data, b[2].data, b[3].data,
					     b[4].data, b[5].data };

			st = db_exec(db, "UPDATE tlsrpt.report_items i SET state = u.state,"
				     " report = NULLIF(u.report, ''), note = NULLIF(u.note, ''),"
				     " done_by = CASE WHEN u.state <> 'pending' THEN $2 END,"
				     " done_at = CASE WHEN u.state <> 'pending' THEN now() END,"
				     " retry_at = CASE WHEN u.retry::bigint > 0 THEN to_timestamp(u.retry::bigint) END"
				     " FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
				     " $8::text[]) AS u(d, pr, state, report, note, retry)"
				     " WHERE i.day = $1::date AND i.d = u.d AND i.pr = u.pr", 8, p, NULL);
			if (st != DB_OK)
				fail(db, st, err, errsz);
		}
	}
	for (int c = 0; c < 6; c++)
		buf_free(&b[c]);
	if (st == DB_OK && (st = db_commit(db)) != DB_OK)
		fail(db, st, err, errsz);
	if (st != DB_OK)
		db_rollback(db);
	return st;
}

enum db_status fleetday_close(struct db *db, int64_t day, const char *mark, bool *done,
			      char *err, size_t errsz)
{
	char d[16];
	const char *p[2] = { d, mark };
	struct db_res *r = NULL;
	enum db_status st;

	*done = false;
	daystr(day, d, sizeof(d));
	st = db_exec(db, "UPDATE tlsrpt.report_days SET done_at = now(), mark = $2::jsonb"
		     " WHERE day = $1::date AND done_at IS NULL AND NOT EXISTS"
		     " (SELECT 1 FROM tlsrpt.report_items i WHERE i.day = $1::date AND i.state = 'pending')"
		     " RETURNING 1", 2, p, &r);
	if (st != DB_OK)
		return fail(db, st, err, errsz);
	*done = db_res_rows(r) == 1;
	db_res_free(r);
	if (!*done)
		return fleetday_is_done(db, day, done, err, errsz);
	return DB_OK;
}
