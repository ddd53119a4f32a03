/*
 * spool_db - the spool's records in the fleet database. See spool_db.h.
 *
 * The records are spool.c's JSON objects, stored as jsonb. This module
 * reads four of their members itself, and says so here: the report
 * record's "day", "policy-domain", "record", "successes" and "failures"
 * (columns for the uniqueness of (day, domain, record) and for late
 * counts), and a destination record's "state", "next-attempt" and
 * "in-flight" (to lease only reports with work due).
 *
 * SECURITY: rows come from a database every node of the fleet writes:
 * records are parsed with a size bound and must be JSON objects; report
 * bytes are bounded by REPORT_MAX_GZ; ids are checked like spool_fs's.
 */
#include "spool_db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <json-c/json.h>

#include "dbschema.h"
#include "jget.h"
#include "log.h"
#include "push.h"
#include "report.h"
#include "spool.h"
#include "store.h"

#define RECORD_MAX (16u * 1024 * 1024)
#define MAX_IDS 100000

struct meta_cache {
	char *id;
	char *text;		/* NULL once removed */
	size_t len;
};

struct spool_db {
	struct db *db;
	char node[80];
	char token[40];		/* "" when read-only */
	char lease[24];		/* seconds, as text */
	int64_t lease_s;
	time_t renewed;		/* last lease renewal (monotonic seconds) */
	struct meta_cache *cache;	/* sorted by id, from spool_db_ids */
	size_t ncache;
	struct staged *staged;		/* reports staged in the caller's transaction */
	size_t nstaged, capstaged;
};

/* A report waiting for spool_db_commit: the row's fields as text. */
struct staged {
	char id[48], day[16], nd[24], ok[24], fail[24];
	char *d, *pr, *meta, *gz, *dests;
};

static void staged_drop(struct spool_db *s)
{
	for (size_t i = 0; i < s->nstaged; i++) {
		free(s->staged[i].d);
		free(s->staged[i].pr);
		free(s->staged[i].meta);
		free(s->staged[i].gz);
		free(s->staged[i].dests);
	}
	s->nstaged = 0;
}

static void cache_drop(struct spool_db *s)
{
	for (size_t i = 0; i < s->ncache; i++) {
		free(s->cache[i].id);
		free(s->cache[i].text);
	}
	free(s->cache);
	s->cache = NULL;
	s->ncache = 0;
}

static int cmp_cache(const void *k, const void *e)
{
	return strcmp(k, ((const struct meta_cache *)e)->id);
}

static struct meta_cache *cache_find(struct spool_db *s, const char *id)
{
	return s->cache ? bsearch(id, s->cache, s->ncache, sizeof(*s->cache), cmp_cache) : NULL;
}

static bool valid_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > 40)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') || id[i] == '-'))
			return false;
	return true;
}

static time_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Log the database's message and set errno for spool.c. */
static int dberr(struct spool_db *s, const char *what)
{
	log_err("fleet spool: %s: %s", what, db_errmsg(s->db));
	errno = EIO;
	return -1;
}

static struct json_object *parse_record(const char *text, size_t len)
{
	return jget_parse_object(text, len, RECORD_MAX, 32);
}

static const char *rec_text(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

struct spool_db *spool_db_open(struct db *db, const char *node, int64_t lease,
			       bool write, char *err, size_t errsz)
{
	struct spool_db *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	s->db = db;
	snprintf(s->node, sizeof(s->node), "%s", node);
	s->lease_s = lease;
	snprintf(s->lease, sizeof(s->lease), "%lld", (long long)lease);
	if (write) {
		unsigned char r[16];
		static const char hex[] = "0123456789abcdef";

		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
			snprintf(err, errsz, "getrandom: %s", strerror(errno));
			free(s);
			return NULL;
		}
		for (size_t i = 0; i < sizeof(r); i++) {
			s->token[2 * i] = hex[r[i] >> 4];
			s->token[2 * i + 1] = hex[r[i] & 15];
		}
		s->token[2 * sizeof(r)] = '\0';
	}
	s->renewed = mono();
	return s;
}

void spool_db_close(struct spool_db *s)
{
	if (s == NULL)
		return;
	if (s->token[0]) {
		const char *p[1] = { s->token };

		if (db_exec(s->db, "UPDATE tlsrpt.reports SET lease_token = NULL, lease_host = NULL,"
			    " lease_pid = NULL, lease_start = NULL, lease_until = NULL"
			    " WHERE lease_token = $1", 1, p, NULL) != DB_OK)
			log_warn("fleet spool: leases not released (they expire): %s", db_errmsg(s->db));
	}
	cache_drop(s);
	staged_drop(s);
	free(s->staged);
	free(s);
}

/* Keep this node's leases alive while it works (at most every lease/10). */
static void renew(struct spool_db *s)
{
	const char *p[2] = { s->token, s->lease };
	int64_t every = s->lease_s / 10 > 1 ? s->lease_s / 10 : 1;

	if (s->token[0] == '\0' || mono() - s->renewed < every)
		return;
	if (db_exec(s->db, "UPDATE tlsrpt.reports SET lease_until = now() + make_interval(secs => $2::bigint)"
		    " WHERE lease_token = $1", 2, p, NULL) == DB_OK)
		s->renewed = mono();
}

bool spool_db_has(struct spool_db *s, const char *id)
{
	const char *p[1] = { id };
	struct db_res *r = NULL;
	bool has;

	if (!valid_id(id) || db_exec(s->db, "SELECT 1 FROM tlsrpt.reports WHERE id = $1", 1, p, &r) != DB_OK)
		return false;
	has = db_res_rows(r) == 1;
	db_res_free(r);
	return has;
}

/* "\x<hex>" text of a bytea parameter; caller frees. */
static char *bytea_param(const unsigned char *b, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *o = malloc(2 * n + 3);

	if (o == NULL)
		return NULL;
	o[0] = '\\';
	o[1] = 'x';
	for (size_t i = 0; i < n; i++) {
		o[2 + 2 * i] = hex[b[i] >> 4];
		o[3 + 2 * i] = hex[b[i] & 15];
	}
	o[2 + 2 * n] = '\0';
	return o;
}

/* The report and its destinations in one statement: a data-modifying CTE
 * inserts the destinations only if the report row was new. */
static int stage_rows(struct spool_db *s, const char *id, const unsigned char *gz, size_t gzlen,
		      struct json_object *meta, struct json_object *const *dests, size_t ndests,
		      bool *existed, char *err, size_t errsz)
{
	char nd[24], ok[24], fail[24];
	char *gzp = bytea_param(gz, gzlen);
	struct json_object *arr = json_object_new_array();
	const char *p[11];
	struct db_res *r = NULL;
	enum db_status st;
	int64_t inserted = 0;

	if (gzp == NULL || arr == NULL) {
		free(gzp);
		json_object_put(arr);
		snprintf(err, errsz, "spool %s: out of memory", id);
		return -1;
	}
	for (size_t i = 0; i < ndests; i++)
		json_object_array_add(arr, json_object_get(dests[i]));
	snprintf(nd, sizeof(nd), "%zu", ndests);
	snprintf(ok, sizeof(ok), "%lld", (long long)jget_int(meta, "successes"));
	snprintf(fail, sizeof(fail), "%lld", (long long)jget_int(meta, "failures"));
	p[0] = id; p[1] = jget_str(meta, "day"); p[2] = jget_str(meta, "policy-domain");
	p[3] = jget_text(meta, "record"); p[4] = rec_text(meta);
	p[5] = gzp; p[6] = nd; p[7] = ok; p[8] = fail; p[9] = s->node; p[10] = rec_text(arr);
	if (p[1] == NULL || p[2] == NULL) {
		free(gzp);
		json_object_put(arr);
		snprintf(err, errsz, "spool %s: the record lacks day or policy-domain", id);
		return -1;
	}
	st = db_exec(s->db, "WITH r AS (INSERT INTO tlsrpt.reports (id, day, d, pr, meta, gz, ndests,"
		     " successes, failures, built_by) VALUES ($1, $2::date, $3, $4, $5::jsonb, $6::bytea,"
		     " $7::integer, $8::bigint, $9::bigint, $10) ON CONFLICT DO NOTHING RETURNING id),"
		     " d AS (INSERT INTO tlsrpt.report_dests (report, idx, rec, updated_by)"
		     " SELECT r.id, e.n - 1, e.rec, $10 FROM r,"
		     " jsonb_array_elements($11::jsonb) WITH ORDINALITY AS e(rec, n) RETURNING 1)"
		     " SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM d)", 11, p, &r);
	free(gzp);
	json_object_put(arr);
	if (st != DB_OK) {
		snprintf(err, errsz, "spool %s: %s", id, db_errmsg(s->db));
		return -1;
	}
	db_res_int(r, 0, 0, &inserted);
	db_res_free(r);
	*existed = inserted == 0;
	return 0;
}

/* Keep a report for the batch insert of spool_db_commit. */
static int stage_later(struct spool_db *s, const char *id, const unsigned char *gz, size_t gzlen,
		       struct json_object *meta, struct json_object *const *dests, size_t ndests,
		       char *err, size_t errsz)
{
	struct json_object *arr = json_object_new_array();
	struct staged *x;
	const char *day = jget_str(meta, "day"), *d = jget_str(meta, "policy-domain");
	const char *pr = jget_text(meta, "record");

	if (day == NULL || d == NULL) {
		json_object_put(arr);
		snprintf(err, errsz, "spool %s: the record lacks day or policy-domain", id);
		return -1;
	}
	if (s->nstaged == s->capstaged) {
		size_t cap = s->capstaged ? 2 * s->capstaged : 64;
		struct staged *n = realloc(s->staged, cap * sizeof(*n));

		if (n == NULL)
			goto oom;
		s->staged = n;
		s->capstaged = cap;
	}
	x = &s->staged[s->nstaged];
	memset(x, 0, sizeof(*x));
	snprintf(x->id, sizeof(x->id), "%s", id);
	snprintf(x->day, sizeof(x->day), "%s", day);
	snprintf(x->nd, sizeof(x->nd), "%zu", ndests);
	snprintf(x->ok, sizeof(x->ok), "%lld", (long long)jget_int(meta, "successes"));
	snprintf(x->fail, sizeof(x->fail), "%lld", (long long)jget_int(meta, "failures"));
	for (size_t i = 0; arr && i < ndests; i++)
		json_object_array_add(arr, json_object_get(dests[i]));
	x->d = strdup(d);
	x->pr = strdup(pr);
	x->meta = strdup(rec_text(meta));
	x->gz = bytea_param(gz, gzlen);
	x->dests = arr ? strdup(rec_text(arr)) : NULL;
	s->nstaged++;
	json_object_put(arr);
	if (!x->d || !x->pr || !x->meta || !x->gz || !x->dests)
		goto oom2;
	return 0;
oom:
	json_object_put(arr);
oom2:
	snprintf(err, errsz, "spool %s: out of memory", id);
	return -1;
}

int spool_db_stage(struct spool_db *s, const char *id, const unsigned char *gz, size_t gzlen,
		   struct json_object *meta, struct json_object *const *dests, size_t ndests,
		   bool *existed, char *err, size_t errsz)
{
	bool own = !db_in_transaction(s->db);
	int rc;

	*existed = false;
	cache_drop(s);
	if (!valid_id(id)) {
		snprintf(err, errsz, "spool: invalid report id");
		return -1;
	}
	/* in the caller's transaction (fleetday_claim): inserted together by
	 * spool_db_commit; *existed stays false, the insert skips one that is */
	if (!own)
		return stage_later(s, id, gz, gzlen, meta, dests, ndests, err, errsz);
	if (db_begin(s->db) != DB_OK) {
		snprintf(err, errsz, "spool %s: %s", id, db_errmsg(s->db));
		return -1;
	}
	rc = stage_rows(s, id, gz, gzlen, meta, dests, ndests, existed, err, errsz);
	if (rc == 0 && db_commit(s->db) != DB_OK) {
		snprintf(err, errsz, "spool %s: %s", id, db_errmsg(s->db));
		rc = -1;
	}
	if (rc != 0)
		db_rollback(s->db);
	return rc;
}

/* The staged reports in one COPY and two statements; part of the open
 * transaction. */
int spool_db_commit(struct spool_db *s, char *err, size_t errsz)
{
	enum db_status st;

	if (s->nstaged == 0)
		return 0;
	st = db_exec_script(s->db,
		"CREATE TEMP TABLE IF NOT EXISTS stage_reports (id text, day date, d text, pr text,"
		" meta jsonb, gz bytea, ndests integer, successes bigint, failures bigint, dests jsonb)"
		" ON COMMIT DELETE ROWS");
	if (st == DB_OK && (st = db_copy_begin(s->db, "COPY pg_temp.stage_reports FROM STDIN")) == DB_OK) {
		enum db_status e;

		for (size_t i = 0; st == DB_OK && i < s->nstaged; i++) {
			const struct staged *x = &s->staged[i];
			const char *f[10] = { x->id, x->day, x->d, x->pr, x->meta, x->gz, x->nd, x->ok,
					      x->fail, x->dests };

			st = db_copy_row(s->db, 10, f);
		}
		e = db_copy_end(s->db);
		if (st == DB_OK)
			st = e;
	}
	if (st == DB_OK) {
		const char *p[1] = { s->node };

		st = db_exec(s->db, "WITH r AS (INSERT INTO tlsrpt.reports (id, day, d, pr, meta, gz, ndests,"
			     " successes, failures, built_by) SELECT id, day, d, pr, meta, gz, ndests,"
			     " successes, failures, $1 FROM pg_temp.stage_reports ON CONFLICT DO NOTHING"
			     " RETURNING id)"
			     " INSERT INTO tlsrpt.report_dests (report, idx, rec, updated_by)"
			     " SELECT r.id, e.n - 1, e.rec, $1 FROM r JOIN pg_temp.stage_reports t ON t.id = r.id,"
			     " jsonb_array_elements(t.dests) WITH ORDINALITY AS e(rec, n)", 1, p, NULL);
	}
	staged_drop(s);
	if (st != DB_OK) {
		snprintf(err, errsz, "spool: %s", db_errmsg(s->db));
		return -1;
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * SQL: the holder of report x's lease is gone (its session ended). A session
 * is its pid and start time. pg_stat_activity shows the pid of every session
 * but the start time only of sessions of the viewer's own roles: a holder
 * that connects with another role (one role per node) shows a NULL start
 * time and is taken for alive (a reused pid is too); its lease then ends
 * with lease_until, never while it may still deliver.
 */
#define LEASE_HOLDER_GONE "NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = x.lease_pid" \
	" AND (a.backend_start = x.lease_start OR a.backend_start IS NULL))"

static const char *const lease_sql =
	"UPDATE tlsrpt.reports r SET lease_token = $1, lease_host = $2, lease_pid = pg_backend_pid(),"
	" lease_start = (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()),"
	" lease_until = now() + make_interval(secs => $3::bigint)"
	" WHERE r.id IN (SELECT x.id FROM tlsrpt.reports x WHERE NOT x.final"
	"  AND (x.lease_token IS NULL OR x.lease_token = $1 OR x.lease_until < now()"
	"   OR " LEASE_HOLDER_GONE ")"
	"  AND EXISTS (SELECT 1 FROM tlsrpt.report_dests d WHERE d.report = x.id AND (d.rec ? 'in-flight'"
	"   OR (d.rec->>'state' = 'pending' AND CASE WHEN jsonb_typeof(d.rec->'next-attempt') = 'number'"
	"    THEN (d.rec->>'next-attempt')::numeric <= $4::numeric ELSE true END)))"
	"  ORDER BY x.id LIMIT $5::integer FOR UPDATE SKIP LOCKED)"
	" RETURNING r.id";

/* The ids of column 0 of 'r', sorted; with 'meta' the cache from column 1. */
static int ids_of(struct spool_db *s, struct db_res *r, bool meta, char ***ids, size_t *n)
{
	size_t rows = db_res_rows(r);

	*ids = calloc(rows ? rows : 1, sizeof(**ids));
	if (meta) {
		cache_drop(s);
		s->cache = calloc(rows ? rows : 1, sizeof(*s->cache));
	}
	if (*ids == NULL || (meta && s->cache == NULL)) {
		free(*ids);
		*ids = NULL;
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < rows; i++) {
		const char *id = db_res_get(r, i, 0);

		if (!valid_id(id))
			continue;
		if (((*ids)[*n] = strdup(id)) == NULL)
			goto oom;
		if (meta) {
			struct meta_cache *c = &s->cache[s->ncache];

			c->id = strdup(id);
			c->len = db_res_len(r, i, 1);
			c->text = c->len <= RECORD_MAX ? strdup(db_res_get(r, i, 1)) : NULL;
			s->ncache++;
			if (c->id == NULL || (c->len <= RECORD_MAX && c->text == NULL))
				goto oom;
		}
		(*n)++;
	}
	qsort(*ids, *n, sizeof(**ids), cmp_str);
	return 0;
oom:
	spool_db_ids_free(*ids, *n);
	*ids = NULL;
	*n = 0;
	cache_drop(s);
	errno = ENOMEM;
	return -1;
}

int spool_db_ids(struct spool_db *s, char ***ids, size_t *n)
{
	struct db_res *r = NULL;
	int rc;

	*ids = NULL;
	*n = 0;
	/* ORDER BY id COLLATE "C": the byte order that strcmp and bsearch use */
	if (db_exec(s->db, "SELECT id, meta::text FROM tlsrpt.reports ORDER BY id COLLATE \"C\"",
		    0, NULL, &r) != DB_OK)
		return dberr(s, "listing reports");
	rc = ids_of(s, r, true, ids, n);
	db_res_free(r);
	return rc;
}

int spool_db_ids_due(struct spool_db *s, int64_t now, char ***ids, size_t *n)
{
	struct db_res *r = NULL;
	char max[16], t[24];
	const char *p[5] = { s->token, s->node, s->lease, t, max };
	int rc;

	*ids = NULL;
	*n = 0;
	if (s->token[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	snprintf(max, sizeof(max), "%d", MAX_IDS);
	snprintf(t, sizeof(t), "%lld", (long long)now);
	if (db_exec(s->db, lease_sql, 5, p, &r) != DB_OK)
		return dberr(s, "leasing reports");
	s->renewed = mono();
	rc = ids_of(s, r, false, ids, n);
	db_res_free(r);
	return rc;
}

void spool_db_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; ids && i < n; i++)
		free(ids[i]);
	free(ids);
}

int spool_db_claim(struct spool_db *s, const char *id)
{
	const char *p[4] = { s->token, s->node, s->lease, id };
	struct db_res *r = NULL;
	bool got;

	if (s->token[0] == '\0' || !valid_id(id)) {
		errno = EINVAL;
		return -1;
	}
	if (db_exec(s->db, "UPDATE tlsrpt.reports x SET lease_token = $1, lease_host = $2,"
		    " lease_pid = pg_backend_pid(), lease_start = (SELECT backend_start FROM pg_stat_activity"
		    "  WHERE pid = pg_backend_pid()), lease_until = now() + make_interval(secs => $3::bigint)"
		    " WHERE x.id = $4 AND (x.lease_token IS NULL OR x.lease_token = $1 OR x.lease_until < now()"
		    "  OR " LEASE_HOLDER_GONE ") RETURNING 1",
		    4, p, &r) != DB_OK)
		return dberr(s, "leasing a report");
	got = db_res_rows(r) == 1;
	db_res_free(r);
	if (got)
		return 0;
	errno = spool_db_has(s, id) ? EBUSY : ENOENT;
	return -1;
}

static struct json_object *one_record(struct spool_db *s, const char *sql, int n, const char *const *p)
{
	struct db_res *r = NULL;
	struct json_object *o = NULL;

	if (db_exec(s->db, sql, n, p, &r) != DB_OK) {
		dberr(s, "reading a record");
		return NULL;
	}
	if (db_res_rows(r) == 1 && !db_res_null(r, 0, 0))
		o = parse_record(db_res_get(r, 0, 0), db_res_len(r, 0, 0));
	db_res_free(r);
	return o;
}

struct json_object *spool_db_meta(struct spool_db *s, const char *id)
{
	const char *p[1] = { id };
	struct meta_cache *c;

	if (!valid_id(id))
		return NULL;
	if ((c = cache_find(s, id)) != NULL)
		return c->text ? parse_record(c->text, c->len) : NULL;
	return one_record(s, "SELECT meta::text FROM tlsrpt.reports WHERE id = $1", 1, p);
}

struct json_object *spool_db_dest(struct spool_db *s, const char *id, size_t i)
{
	char idx[24];
	const char *p[2] = { id, idx };

	if (!valid_id(id))
		return NULL;
	snprintf(idx, sizeof(idx), "%zu", i);
	return one_record(s, "SELECT rec::text FROM tlsrpt.report_dests WHERE report = $1"
			  " AND idx = $2::integer", 2, p);
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int spool_db_gz(struct spool_db *s, const char *id, unsigned char **gz, size_t *len)
{
	char max[24];
	const char *p[2] = { id, max };
	struct db_res *r = NULL;
	const char *t;
	size_t tl, n;

	*gz = NULL;
	*len = 0;
	if (!valid_id(id)) {
		errno = EINVAL;
		return -1;
	}
	snprintf(max, sizeof(max), "%u", (unsigned)REPORT_MAX_GZ);
	if (db_exec(s->db, "SELECT gz FROM tlsrpt.reports WHERE id = $1 AND octet_length(gz) <= $2::integer",
		    2, p, &r) != DB_OK)
		return dberr(s, "reading a report");
	if (db_res_rows(r) != 1) {
		db_res_free(r);
		errno = ENOENT;
		return -1;
	}
	t = db_res_get(r, 0, 0);
	tl = db_res_len(r, 0, 0);
	if (tl < 2 || t[0] != '\\' || t[1] != 'x' || (tl - 2) % 2 || (tl - 2) / 2 > REPORT_MAX_GZ) {
		db_res_free(r);
		errno = EINVAL;
		return -1;
	}
	n = (tl - 2) / 2;
	*gz = malloc(n ? n : 1);
	if (*gz == NULL) {
		db_res_free(r);
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int hi = unhex(t[2 + 2 * i]), lo = unhex(t[3 + 2 * i]);

		if (hi < 0 || lo < 0) {
			free(*gz);
			*gz = NULL;
			db_res_free(r);
			errno = EINVAL;
			return -1;
		}
		(*gz)[i] = (unsigned char)(hi << 4 | lo);
	}
	*len = n;
	db_res_free(r);
	return 0;
}

/* One destination record, only while the report's lease is ours. */
static int put_one(struct spool_db *s, const char *id, size_t i, struct json_object *rec)
{
	char idx[24];
	const char *p[5] = { id, idx, rec_text(rec), s->node, s->token };
	struct db_res *r = NULL;
	bool ok;

	snprintf(idx, sizeof(idx), "%zu", i);
	if (db_exec(s->db, "UPDATE tlsrpt.report_dests d SET rec = $3::jsonb, updated_at = now(),"
		    " updated_by = $4 FROM tlsrpt.reports r WHERE d.report = $1 AND d.idx = $2::integer"
		    " AND r.id = d.report AND r.lease_token = $5 RETURNING 1", 5, p, &r) != DB_OK)
		return dberr(s, "writing a destination record");
	ok = db_res_rows(r) == 1;
	db_res_free(r);
	if (!ok) {
		log_warn("fleet spool: report %s is now leased by another node; its record stands", id);
		errno = ESTALE;
		return -1;
	}
	return 0;
}

int spool_db_put_dest(struct spool_db *s, const char *id, size_t i, struct json_object *rec)
{
	if (!valid_id(id) || s->token[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if (put_one(s, id, i, rec) != 0)
		return -1;
	renew(s);
	return 0;
}

int spool_db_put_dests(struct spool_db *s, const struct spool_fs_ref *refs, size_t n)
{
	bool own = !db_in_transaction(s->db);
	int rc = 0;

	if (s->token[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if (own && db_begin(s->db) != DB_OK)
		return dberr(s, "beginning a transaction");
	for (size_t k = 0; k < n && rc == 0; k++)
		if (!valid_id(refs[k].id) || put_one(s, refs[k].id, refs[k].index, refs[k].rec) != 0)
			rc = -1;
	if (own) {
		int e = errno;

		if (rc == 0 && db_commit(s->db) != DB_OK) {
			rc = dberr(s, "committing destination records");
			e = errno;
		}
		if (rc != 0)
			db_rollback(s->db);
		errno = e;	/* the rollback's libpq calls change errno */
	}
	if (rc == 0)
		renew(s);
	return rc;
}

bool spool_db_final(struct spool_db *s, const char *id)
{
	const char *p[1] = { id };
	struct db_res *r = NULL;
	bool f;

	if (!valid_id(id) || db_exec(s->db, "SELECT final FROM tlsrpt.reports WHERE id = $1", 1, p, &r) != DB_OK)
		return false;
	f = db_res_rows(r) == 1 && strcmp(db_res_get(r, 0, 0), "t") == 0;
	db_res_free(r);
	return f;
}

void spool_db_set_final(struct spool_db *s, const char *id, bool final)
{
	const char *p[2] = { id, final ? "t" : "f" };

	if (valid_id(id) && db_exec(s->db, "UPDATE tlsrpt.reports SET final = $2::boolean WHERE id = $1",
				    2, p, NULL) != DB_OK)
		dberr(s, "marking a report");
}

int spool_db_remove(struct spool_db *s, const char *id)
{
	const char *p[1] = { id };

	if (!valid_id(id)) {
		errno = EINVAL;
		return -1;
	}
	if (db_exec(s->db, "DELETE FROM tlsrpt.reports WHERE id = $1", 1, p, NULL) != DB_OK)
		return dberr(s, "removing a report");
	{
		struct meta_cache *c = cache_find(s, id);

		if (c) {
			free(c->text);
			c->text = NULL;
		}
	}
	return 0;
}

/* ---- day marks ---- */

bool spool_db_day_exists(struct spool_db *s, int64_t day)
{
	char d[16];
	const char *p[1] = { d };
	struct db_res *r = NULL;
	bool e;

	store_format_day(d, sizeof(d), day);
	if (db_exec(s->db, "SELECT 1 FROM tlsrpt.report_days WHERE day = $1::date AND done_at IS NOT NULL",
		    1, p, &r) != DB_OK)
		return false;
	e = db_res_rows(r) == 1;
	db_res_free(r);
	return e;
}

int spool_db_day_put(struct spool_db *s, int64_t day, struct json_object *rec)
{
	char d[16];
	const char *p[3] = { d, s->node, rec_text(rec) };

	store_format_day(d, sizeof(d), day);
	if (db_exec(s->db, "INSERT INTO tlsrpt.report_days (day, opened_by, done_at, mark)"
		    " VALUES ($1::date, $2, now(), $3::jsonb) ON CONFLICT (day) DO UPDATE"
		    " SET done_at = now(), mark = EXCLUDED.mark", 3, p, NULL) != DB_OK)
		return dberr(s, "marking a day");
	return 0;
}

int spool_db_days(struct spool_db *s, int64_t **days, size_t *n)
{
	struct db_res *r = NULL;

	*days = NULL;
	*n = 0;
	if (db_exec(s->db, "SELECT day - date '1970-01-01' FROM tlsrpt.report_days"
		    " WHERE done_at IS NOT NULL ORDER BY 1", 0, NULL, &r) != DB_OK)
		return dberr(s, "listing days");
	*days = calloc(db_res_rows(r) ? db_res_rows(r) : 1, sizeof(**days));
	if (*days == NULL) {
		db_res_free(r);
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < db_res_rows(r); i++)
		if (db_res_int(r, i, 0, &(*days)[*n]))
			(*n)++;
	db_res_free(r);
	return 0;
}

int spool_db_day_remove(struct spool_db *s, int64_t day)
{
	char d[16];
	const char *p[1] = { d };

	store_format_day(d, sizeof(d), day);
	if (db_exec(s->db, "DELETE FROM tlsrpt.report_days WHERE day = $1::date", 1, p, NULL) != DB_OK)
		return dberr(s, "removing a day");
	return 0;
}

/* ---- suppressions ---- */

struct json_object *spool_db_suppression(struct spool_db *s, const char *uri)
{
	const char *p[1] = { uri };
	struct json_object *o = one_record(s, "SELECT rec::text FROM tlsrpt.suppressions WHERE uri = $1",
					   1, p);

	if (o && (jget_str(o, "uri") == NULL || strcmp(jget_str(o, "uri"), uri) != 0)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int spool_db_suppression_put(struct spool_db *s, const char *uri, struct json_object *rec)
{
	const char *p[3] = { uri, rec_text(rec), s->node };

	if (db_exec(s->db, "INSERT INTO tlsrpt.suppressions (uri, rec, updated_by) VALUES ($1, $2::jsonb, $3)"
		    " ON CONFLICT (uri) DO UPDATE SET rec = EXCLUDED.rec, updated_by = EXCLUDED.updated_by",
		    3, p, NULL) != DB_OK)
		return dberr(s, "writing a suppression");
	return 0;
}

int spool_db_suppression_remove(struct spool_db *s, const char *uri)
{
	const char *p[1] = { uri };

	if (db_exec(s->db, "DELETE FROM tlsrpt.suppressions WHERE uri = $1", 1, p, NULL) != DB_OK)
		return dberr(s, "removing a suppression");
	return 0;
}

int spool_db_suppressions_filter(struct spool_db *s,
				 enum spool_fs_verdict (*check)(void *arg, struct json_object *rec),
				 void *arg)
{
	struct db_res *r = NULL;
	int rc = 0;

	if (db_exec(s->db, "SELECT uri, rec::text FROM tlsrpt.suppressions", 0, NULL, &r) != DB_OK)
		return dberr(s, "listing suppressions");
	for (size_t i = 0; i < db_res_rows(r); i++) {
		struct json_object *o = parse_record(db_res_get(r, i, 1), db_res_len(r, i, 1));

		switch (check(arg, o)) {
		case SPOOL_FS_KEEP:
			break;
		case SPOOL_FS_REMOVE:
			if (spool_db_suppression_remove(s, db_res_get(r, i, 0)) != 0)
				rc = -1;
			break;
		case SPOOL_FS_REWRITE:
			if (o && spool_db_suppression_put(s, db_res_get(r, i, 0), o) != 0)
				rc = -1;
			break;
		}
		json_object_put(o);
	}
	db_res_free(r);
	return rc;
}

/* ---- the table spool.c calls (spool_store.h) ---- */

static void t_close(void *h) { spool_db_close(h); }
static bool t_has(void *h, const char *id) { return spool_db_has(h, id); }
static int t_stage(void *h, const char *id, const unsigned char *gz, size_t gzlen,
		   struct json_object *meta, struct json_object *const *dests, size_t ndests,
		   bool *existed, char *err, size_t errsz)
{
	return spool_db_stage(h, id, gz, gzlen, meta, dests, ndests, existed, err, errsz);
}
static int t_commit(void *h, char *err, size_t errsz) { return spool_db_commit(h, err, errsz); }
static int t_ids(void *h, char ***ids, size_t *n) { return spool_db_ids(h, ids, n); }
static int t_claim(void *h, const char *id) { return spool_db_claim(h, id); }
static int t_ids_due(void *h, int64_t now, char ***ids, size_t *n) { return spool_db_ids_due(h, now, ids, n); }
static struct json_object *t_meta(void *h, const char *id) { return spool_db_meta(h, id); }
static struct json_object *t_dest(void *h, const char *id, size_t i) { return spool_db_dest(h, id, i); }
static int t_gz(void *h, const char *id, unsigned char **gz, size_t *len) { return spool_db_gz(h, id, gz, len); }
static int t_put_dest(void *h, const char *id, size_t i, struct json_object *rec)
{
	return spool_db_put_dest(h, id, i, rec);
}
static int t_put_dests(void *h, const struct spool_fs_ref *refs, size_t n)
{
	return spool_db_put_dests(h, refs, n);
}
static bool t_final(void *h, const char *id) { return spool_db_final(h, id); }
static void t_set_final(void *h, const char *id, bool final) { spool_db_set_final(h, id, final); }
static int t_remove(void *h, const char *id) { return spool_db_remove(h, id); }
static bool t_day_exists(void *h, int64_t day) { return spool_db_day_exists(h, day); }
static int t_day_put(void *h, int64_t day, struct json_object *rec) { return spool_db_day_put(h, day, rec); }
static int t_days(void *h, int64_t **days, size_t *n) { return spool_db_days(h, days, n); }
static int t_day_remove(void *h, int64_t day) { return spool_db_day_remove(h, day); }
static struct json_object *t_suppression(void *h, const char *uri) { return spool_db_suppression(h, uri); }
static int t_suppression_put(void *h, const char *uri, struct json_object *rec)
{
	return spool_db_suppression_put(h, uri, rec);
}
static int t_suppression_remove(void *h, const char *uri) { return spool_db_suppression_remove(h, uri); }
static int t_suppressions_filter(void *h, enum spool_fs_verdict (*check)(void *, struct json_object *),
				 void *arg)
{
	return spool_db_suppressions_filter(h, check, arg);
}

const struct spool_store_ops spool_db_ops = {
	.name = "database",
	.close = t_close, .has = t_has, .stage = t_stage, .commit = t_commit,
	.ids = t_ids, .ids_free = spool_db_ids_free, .claim = t_claim, .ids_due = t_ids_due,
	.meta = t_meta, .dest = t_dest, .gz = t_gz,
	.put_dest = t_put_dest, .put_dests = t_put_dests,
	.final = t_final, .set_final = t_set_final, .remove = t_remove,
	.day_exists = t_day_exists, .day_put = t_day_put, .days = t_days, .day_remove = t_day_remove,
	.suppression = t_suppression, .suppression_put = t_suppression_put,
	.suppression_remove = t_suppression_remove, .suppressions_filter = t_suppressions_filter,
};

struct spool *spool_db_open_conf(const struct conf *c, const char *app, bool write,
				 struct db **dbp, enum db_status *st, char *err, size_t errsz)
{
	char node[PUSH_HOST_MAX + 1];
	struct spool_db *sdb;
	struct spool *sp;
	struct db *db;

	*dbp = NULL;
	*st = DB_ERROR;
	if (push_host_name(c, node, sizeof(node), err, errsz) != 0)
		return NULL;
	if ((db = db_connect(c, app, st, err, errsz)) == NULL)
		return NULL;
	if ((*st = dbschema_check(db, err, errsz)) != DB_OK) {
		db_close(db);
		return NULL;
	}
	sdb = spool_db_open(db, node, conf_int(c, "fleet_lease"), write, err, errsz);
	if (sdb == NULL || (sp = spool_open_store(&spool_db_ops, sdb)) == NULL) {
		if (sdb)
			snprintf(err, errsz, "out of memory");
		spool_db_close(sdb);
		db_close(db);
		*st = DB_ERROR;
		return NULL;
	}
	*dbp = db;
	*st = DB_OK;
	return sp;
}
