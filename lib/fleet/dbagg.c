/*
 * dbagg - one day of the fleet read back from the database. See dbagg.h.
 *
 * SECURITY: rows may have been written by any host holding the fleet's
 * credentials: lengths and list sizes are checked before anything is
 * copied, and every string goes through agg_add_policy's UTF-8 repair.
 */
#include "dbagg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "log.h"
#include "store.h"

#define JSON_MAX ((size_t)DBAGG_LIST_MAX * 8 + (size_t)DBAGG_STRING_MAX * 8)

void dbagg_free_list(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

int dbagg_parse_list(const char *json, size_t len, char ***out, size_t *n)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t cnt;
	char **v;

	*out = NULL;
	*n = 0;
	if (len > JSON_MAX || (tok = json_tokener_new_ex(2)) == NULL)
		return -1;
	o = json_tokener_parse_ex(tok, json, (int)len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    tok->char_offset != (int)len || !json_object_is_type(o, json_type_array)) {
		json_object_put(o);
		json_tokener_free(tok);
		return -1;
	}
	json_tokener_free(tok);
	cnt = json_object_array_length(o);
	if (cnt > DBAGG_LIST_MAX) {
		json_object_put(o);
		return -1;
	}
	v = calloc(cnt ? cnt : 1, sizeof(*v));
	if (v == NULL) {
		json_object_put(o);
		return -1;
	}
	for (size_t i = 0; i < cnt; i++) {
		struct json_object *e = json_object_array_get_idx(o, i);
		size_t el;

		if (!json_object_is_type(e, json_type_string) ||
		    (el = (size_t)json_object_get_string_len(e)) > DBAGG_STRING_MAX ||
		    memchr(json_object_get_string(e), '\0', el) != NULL ||
		    (v[i] = strdup(json_object_get_string(e))) == NULL) {
			dbagg_free_list(v, cnt);
			json_object_put(o);
			return -1;
		}
	}
	json_object_put(o);
	*out = v;
	*n = cnt;
	return 0;
}

/* A text field within bounds; NULL if SQL NULL. *bad on violation. */
static const char *field(const struct db_res *r, size_t row, size_t col, bool nullable, bool *bad)
{
	if (db_res_null(r, row, col)) {
		if (!nullable)
			*bad = true;
		return NULL;
	}
	if (db_res_len(r, row, col) > DBAGG_STRING_MAX)
		*bad = true;
	return db_res_get(r, row, col);
}

/* A count within what a report can carry (a JSON integer, I-JSON: 2^53-1);
 * sums come as numeric text, so an overflow is a bad row, not an error. */
static bool count_ok(const struct db_res *r, size_t row, size_t col, uint64_t *out)
{
	int64_t v;

	if (!db_res_int(r, row, col, &v) || v < 0 || v > DBAGG_COUNT_MAX)
		return false;
	*out = (uint64_t)v;
	return true;
}

static const char *const policies_sql =
	"SELECT p.id, p.d, p.pr, p.type, p.pdomain, array_to_json(p.strings)::text,"
	" array_to_json(p.mx)::text, sum(c.successes), sum(c.failures)"
	" FROM tlsrpt.policy_counts c JOIN tlsrpt.policies p ON p.id = c.policy_id"
	" WHERE c.day = $1::date GROUP BY p.id ORDER BY p.id";

static const char *const details_sql =
	"SELECT c.policy_id, d.code, d.sending_ip, d.mx_hostname, d.mx_helo, d.receiving_ip,"
	" d.additional, d.reason, sum(c.count)"
	" FROM tlsrpt.detail_counts c JOIN tlsrpt.details d ON d.id = c.detail_id"
	" WHERE c.day = $1::date GROUP BY c.policy_id, d.id ORDER BY c.policy_id, d.id";

static const char *const hosts_sql =
	"SELECT count(*), count(*) FILTER (WHERE final) FROM tlsrpt.host_days WHERE day = $1::date";

static enum db_status read_day(struct db *db, const char *day, struct agg *a,
			       struct dbagg_info *info, char *err, size_t errsz)
{
	const char *p[1] = { day };
	struct db_res *pr = NULL, *dr = NULL, *hr = NULL;
	enum db_status rc;
	size_t di = 0, ndr;
	int64_t v;

	if ((rc = db_exec(db, hosts_sql, 1, p, &hr)) != DB_OK ||
	    (rc = db_exec(db, policies_sql, 1, p, &pr)) != DB_OK ||
	    (rc = db_exec(db, details_sql, 1, p, &dr)) != DB_OK) {
		snprintf(err, errsz, "%s", db_errmsg(db));
		goto out;
	}
	if (db_res_int(hr, 0, 0, &v))
		info->hosts = (size_t)v;
	if (db_res_int(hr, 0, 1, &v))
		info->final_hosts = (size_t)v;
	ndr = db_res_rows(dr);
	for (size_t i = 0; i < db_res_rows(pr); i++) {
		struct agg_policy pol;
		int64_t id = 0, type = 0, did = 0;
		bool bad = false;
		const char *d, *rec;
		size_t first;

		memset(&pol, 0, sizeof(pol));
		info->policies++;
		db_res_int(pr, i, 0, &id);
		d = field(pr, i, 1, false, &bad);
		rec = field(pr, i, 2, false, &bad);
		if (!db_res_int(pr, i, 3, &type) || type < 0 || type > 1000)
			bad = true;
		pol.type = (int)type;
		pol.domain = (char *)(uintptr_t)field(pr, i, 4, false, &bad);
		if (!bad && (dbagg_parse_list(db_res_get(pr, i, 5), db_res_len(pr, i, 5),
					      &pol.strings, &pol.nstrings) != 0 ||
			     dbagg_parse_list(db_res_get(pr, i, 6), db_res_len(pr, i, 6),
					      &pol.mx, &pol.nmx) != 0))
			bad = true;
		if (!count_ok(pr, i, 7, &pol.successes) || !count_ok(pr, i, 8, &pol.failures))
			bad = true;
		/* this policy's details: the rows with its id (both sorted by id) */
		while (di < ndr && db_res_int(dr, di, 0, &did) && did < id)
			di++;
		first = di;
		while (di < ndr && db_res_int(dr, di, 0, &did) && did == id)
			di++;
		if (!bad && di > first) {
			pol.details = calloc(di - first, sizeof(*pol.details));
			if (pol.details == NULL) {
				bad = true;
			} else {
				pol.ndetails = di - first;
				for (size_t k = first; k < di; k++) {
					struct agg_detail *x = &pol.details[k - first];
					int64_t code = 0;

					info->details++;
					if (!db_res_int(dr, k, 1, &code) || code < 0 || code > 100000)
						bad = true;
					x->code = (int)code;
					x->sending_ip = (char *)(uintptr_t)field(dr, k, 2, true, &bad);
					x->mx_hostname = (char *)(uintptr_t)field(dr, k, 3, true, &bad);
					x->mx_helo = (char *)(uintptr_t)field(dr, k, 4, true, &bad);
					x->receiving_ip = (char *)(uintptr_t)field(dr, k, 5, true, &bad);
					x->additional = (char *)(uintptr_t)field(dr, k, 6, true, &bad);
					x->reason = (char *)(uintptr_t)field(dr, k, 7, true, &bad);
					if (!count_ok(dr, k, 8, &x->count))
						bad = true;
				}
			}
		}
		if (bad) {
			info->bad_rows++;
		} else if (agg_add_policy(a, d, rec, &pol) != 0) {
			snprintf(err, errsz, "out of memory");
			rc = DB_ERROR;
		}
		dbagg_free_list(pol.strings, pol.nstrings);
		dbagg_free_list(pol.mx, pol.nmx);
		free(pol.details);
		if (rc != DB_OK)
			break;
	}
	if (info->bad_rows)
		log_err("day %s: %zu database row(s) out of bounds were skipped", day, info->bad_rows);
out:
	db_res_free(hr);
	db_res_free(pr);
	db_res_free(dr);
	return rc;
}

enum db_status dbagg_day(struct db *db, int64_t day, struct agg *a, struct dbagg_info *info,
			 char *err, size_t errsz)
{
	char d[16];
	enum db_status rc;

	memset(info, 0, sizeof(*info));
	store_format_day(d, sizeof(d), day);
	if ((rc = db_begin_snapshot(db)) != DB_OK) {
		snprintf(err, errsz, "%s", db_errmsg(db));
		return rc;
	}
	rc = read_day(db, d, a, info, err, errsz);
	if (rc == DB_OK && (rc = db_commit(db)) != DB_OK)
		snprintf(err, errsz, "%s", db_errmsg(db));
	if (rc != DB_OK)
		db_rollback(db);
	return rc;
}
