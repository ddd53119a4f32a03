/*
 * received_db - received reports in the fleet database. See received_db.h.
 *
 * SECURITY: the local store's records are our own output (the milter wrote
 * them after its bounded parse); rows read back were written by whichever
 * host of the fleet, so they are parsed with a size and depth bound and
 * must be JSON objects; ids are checked before they reach a caller.
 */
#include "received_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "dbschema.h"
#include "jget.h"
#include "log.h"

#define BATCH_ROWS 500
#define BATCH_BYTES (32u * 1024 * 1024)
#define FETCH_ROWS 500

/* ---- push ---- */

struct staged {
	char cls[16], id[32], start[24], end[24], stored[24];
	char *submitter, *domains, *rec;
};

struct pusher {
	struct db *db;
	char host[16], dev[24], ino[24];
	struct staged *rows;
	size_t n, bytes;
	int64_t next;		/* index offset after the last line seen */
	int64_t flushed;	/* offset recorded in the database */
	struct received_push_stats *st;
	enum db_status rc;
	char *err;
	size_t errsz;
};

static void staged_free(struct pusher *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->rows[i].submitter);
		free(p->rows[i].domains);
		free(p->rows[i].rec);
	}
	p->n = 0;
	p->bytes = 0;
}

/* The staged rows and the new offset, in one transaction. */
static enum db_status flush(struct pusher *p)
{
	char off[24];
	const char *q[4] = { p->host, p->dev, p->ino, off };
	struct db_res *r = NULL;
	enum db_status st;
	int64_t ins = 0;

	if (p->n == 0 && p->next == p->flushed)
		return DB_OK;
	snprintf(off, sizeof(off), "%lld", (long long)p->next);
	if ((st = db_begin(p->db)) != DB_OK)
		goto fail;
	if (p->n > 0) {
		if ((st = db_exec_script(p->db, "CREATE TEMP TABLE IF NOT EXISTS received_stage (class text,"
					 " id text, start_at bigint, end_at bigint, stored_at bigint,"
					 " submitter text, domains text, rec json) ON COMMIT DELETE ROWS")) != DB_OK ||
		    (st = db_copy_begin(p->db, "COPY pg_temp.received_stage FROM STDIN")) != DB_OK)
			goto fail;
		for (size_t i = 0; i < p->n && st == DB_OK; i++) {
			const struct staged *x = &p->rows[i];
			const char *f[8] = { x->cls, x->id, x->start, x->end, x->stored, x->submitter,
					     x->domains, x->rec };

			st = db_copy_row(p->db, 8, f);
		}
		{
			enum db_status e = db_copy_end(p->db);

			if (st == DB_OK)
				st = e;
		}
		if (st != DB_OK ||
		    (st = db_exec(p->db, "WITH i AS (INSERT INTO tlsrpt.received (class, id, start_at, end_at,"
				  " stored_at, submitter, domains, rec, host_id)"
				  " SELECT DISTINCT ON (class, id) class, id, start_at, end_at, stored_at,"
				  " submitter, domains, rec, $1::integer FROM pg_temp.received_stage"
				  " ON CONFLICT (class, id) DO NOTHING RETURNING 1) SELECT count(*) FROM i",
				  1, q, &r)) != DB_OK)
			goto fail;
		db_res_int(r, 0, 0, &ins);
		db_res_free(r);
		r = NULL;
	}
	if ((st = db_exec(p->db, "INSERT INTO tlsrpt.received_push (host_id, index_dev, index_ino,"
			  " index_offset) VALUES ($1::integer, $2::bigint, $3::bigint, $4::bigint)"
			  " ON CONFLICT (host_id) DO UPDATE SET index_dev = EXCLUDED.index_dev,"
			  " index_ino = EXCLUDED.index_ino, index_offset = EXCLUDED.index_offset,"
			  " pushed_at = now()", 4, q, NULL)) != DB_OK ||
	    (st = db_commit(p->db)) != DB_OK)
		goto fail;
	p->st->inserted += (size_t)ins;
	p->st->duplicates += p->n - (size_t)ins;
	p->flushed = p->next;
	staged_free(p);
	return DB_OK;
fail:
	db_res_free(r);
	snprintf(p->err, p->errsz, "%s", db_errmsg(p->db));
	db_rollback(p->db);
	return st;
}

static char *dupnull(const char *s, bool *oom)
{
	char *r;

	if (s == NULL)
		return NULL;
	if ((r = strdup(s)) == NULL)
		*oom = true;
	return r;
}

static int push_cb(const struct received_entry *e, struct json_object *rec, void *arg)
{
	struct pusher *p = arg;
	struct staged *x;
	const char *text;
	bool oom = false;

	p->st->lines++;
	p->next = e->next;
	if (e->cls == NULL)
		return 0;		/* not a record line */
	if (rec == NULL) {
		p->st->missing++;
		return 0;
	}
	text = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	x = &p->rows[p->n];
	memset(x, 0, sizeof(*x));
	snprintf(x->cls, sizeof(x->cls), "%s", e->cls);
	snprintf(x->id, sizeof(x->id), "%s", e->id);
	snprintf(x->start, sizeof(x->start), "%lld", (long long)e->start);
	snprintf(x->end, sizeof(x->end), "%lld", (long long)e->end);
	snprintf(x->stored, sizeof(x->stored), "%lld", (long long)e->stored);
	x->submitter = dupnull(e->submitter, &oom);
	x->domains = dupnull(e->domains, &oom);
	x->rec = dupnull(text, &oom);
	p->n++;
	p->bytes += strlen(text);
	if (oom) {
		snprintf(p->err, p->errsz, "out of memory");
		p->rc = DB_ERROR;
		return 1;
	}
	if (p->n == BATCH_ROWS || p->bytes >= BATCH_BYTES) {
		p->rc = flush(p);
		return p->rc == DB_OK ? 0 : 1;
	}
	return 0;
}

enum db_status received_db_push(struct db *db, int host_id, struct received_store *local,
				struct received_push_stats *st, char *err, size_t errsz)
{
	struct pusher p;
	struct db_res *r = NULL;
	uint64_t dev, ino, size;
	enum db_status rc;
	int64_t start = 0;

	memset(st, 0, sizeof(*st));
	memset(&p, 0, sizeof(p));
	if (received_index_identity(local, &dev, &ino, &size) != 0)
		return DB_OK;		/* nothing stored yet */
	p.db = db;
	p.st = st;
	p.err = err;
	p.errsz = errsz;
	snprintf(p.host, sizeof(p.host), "%d", host_id);
	snprintf(p.dev, sizeof(p.dev), "%llu", (unsigned long long)dev);
	snprintf(p.ino, sizeof(p.ino), "%llu", (unsigned long long)ino);
	{
		const char *q[1] = { p.host };

		rc = db_exec(db, "SELECT index_dev::text, index_ino::text, index_offset"
			     " FROM tlsrpt.received_push WHERE host_id = $1::integer", 1, q, &r);
	}
	if (rc != DB_OK) {
		snprintf(err, errsz, "%s", db_errmsg(db));
		return rc;
	}
	/* the same index, not shorter: go on from where the last push ended */
	if (db_res_rows(r) == 1 && strcmp(db_res_get(r, 0, 0), p.dev) == 0 &&
	    strcmp(db_res_get(r, 0, 1), p.ino) == 0 && db_res_int(r, 0, 2, &start) &&
	    start >= 0 && (uint64_t)start <= size)
		p.flushed = p.next = start;
	else
		start = 0;
	db_res_free(r);
	if ((p.rows = calloc(BATCH_ROWS, sizeof(*p.rows))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return DB_ERROR;
	}
	p.rc = DB_OK;
	if (received_scan(local, start, push_cb, &p) < 0 && p.rc == DB_OK) {
		snprintf(err, errsz, "%s/index: cannot be read", received_dir(local));
		p.rc = DB_ERROR;
	}
	if (p.rc == DB_OK)
		p.rc = flush(&p);
	staged_free(&p);
	free(p.rows);
	return p.rc;
}

/* ---- reading ---- */

struct reader {
	struct db *db;
};

static struct json_object *parse_record(const char *text, size_t len)
{
	return jget_parse_object(text, len, RECEIVED_DB_RECORD_MAX, 64);
}

static bool valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n != RECEIVED_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

static int r_load(void *h, const char *id, struct json_object **rec)
{
	struct reader *rd = h;
	const char *p[1] = { id };
	struct db_res *r = NULL;

	*rec = NULL;
	/* the classes in the order the local store looks */
	if (db_exec(rd->db, "SELECT rec::text FROM tlsrpt.received WHERE id = $1 ORDER BY CASE class"
		    " WHEN 'verified' THEN 0 WHEN 'unverified' THEN 1 ELSE 2 END LIMIT 1", 1, p, &r) != DB_OK) {
		log_err("fleet database: %s", db_errmsg(rd->db));
		return -1;
	}
	if (db_res_rows(r) == 1)
		*rec = parse_record(db_res_get(r, 0, 0), db_res_len(r, 0, 0));
	db_res_free(r);
	return *rec ? 0 : -1;
}

static int r_foreach(void *h, int64_t since,
		     int (*cb)(const char *cls, const char *id, struct json_object *rec, void *arg),
		     void *arg)
{
	struct reader *rd = h;
	char sql[400];
	int rc = 0;

	/* a cursor: a year of reports is read a batch at a time */
	snprintf(sql, sizeof(sql), "DECLARE received_cur NO SCROLL CURSOR FOR SELECT class, id, rec::text"
		 " FROM tlsrpt.received WHERE class = 'rejected' OR end_at >= %lld ORDER BY seq",
		 (long long)since);
	if (db_begin_snapshot(rd->db) != DB_OK || db_exec(rd->db, sql, 0, NULL, NULL) != DB_OK) {
		log_err("fleet database: %s", db_errmsg(rd->db));
		db_rollback(rd->db);
		return 0;
	}
	while (rc == 0) {
		struct db_res *r = NULL;
		size_t n;

		if (db_exec(rd->db, "FETCH 500 FROM received_cur", 0, NULL, &r) != DB_OK) {
			log_err("fleet database: %s", db_errmsg(rd->db));
			break;
		}
		n = db_res_rows(r);
		for (size_t i = 0; i < n && rc == 0; i++) {
			const char *cls = db_res_get(r, i, 0), *id = db_res_get(r, i, 1);
			struct json_object *rec;

			if (!valid_id(id))
				continue;
			rec = parse_record(db_res_get(r, i, 2), db_res_len(r, i, 2));
			if (rec == NULL)
				continue;	/* as the local store skips an unreadable file */
			rc = cb(cls, id, rec, arg);
			json_object_put(rec);
		}
		db_res_free(r);
		if (n < FETCH_ROWS)
			break;
	}
	db_rollback(rd->db);	/* read only: nothing to commit */
	return rc;
}

static void r_close(void *h)
{
	struct reader *rd = h;

	if (rd == NULL)
		return;
	db_close(rd->db);
	free(rd);
}

static const struct received_backend reader_ops = {
	.name = "fleet database", .load = r_load, .foreach = r_foreach, .close = r_close,
};

struct received_store *received_db_open_conf(const struct conf *c, const char *app,
					     enum db_status *st, char *err, size_t errsz)
{
	struct reader *rd = calloc(1, sizeof(*rd));
	struct received_store *s = NULL;

	if (rd == NULL) {
		*st = DB_ERROR;
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if ((rd->db = db_connect(c, app, st, err, errsz)) == NULL ||
	    (*st = dbschema_check(rd->db, err, errsz)) != DB_OK ||
	    received_open_backend(&reader_ops, rd, &s) != 0) {
		if (rd->db && *st == DB_OK) {
			*st = DB_ERROR;
			snprintf(err, errsz, "out of memory");
		}
		r_close(rd);
		return NULL;
	}
	return s;
}
