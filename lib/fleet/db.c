/*
 * db - the one wrapper around libpq. See db.h.
 *
 * SECURITY: the password is read from a file whose permissions are
 * checked (db_read_password), kept only in this struct and wiped on
 * close; it never appears in a message. Server messages can carry data
 * from rows (constraint details): they are made printable before they are
 * stored or logged. Everything is sent as parameters or COPY data, escaped
 * here; no caller builds SQL text from data.
 */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "buf.h"
#include "log.h"

#define COPY_CHUNK (256u * 1024)

struct db {
	PGconn *conn;
	char *conninfo;
	char password[DB_PASSWORD_MAX];
	bool has_password;
	char app[64];
	char target[256];
	char err[1024];
	bool in_copy, copy_failed;
	enum db_status copy_st;		/* why copy_failed */
	struct buf copy;
};

struct db_res {
	PGresult *r;
};

bool db_configured(const struct conf *c)
{
	return conf_str(c, "fleet_database")[0] != '\0';
}

const char *db_status_name(enum db_status st)
{
	switch (st) {
	case DB_OK: return "ok";
	case DB_UNAVAILABLE: return "unavailable";
	case DB_RETRY: return "retry";
	case DB_SCHEMA: return "schema";
	case DB_ERROR: return "error";
	}
	return "?";
}

int db_read_password(const char *path, unsigned uid, char *out, size_t outsz,
		     char *err, size_t errsz)
{
	char tmp[DB_PASSWORD_MAX + 2];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd;

	out[0] = '\0';
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errsz, "fleet_password_file %s: %s%s", path, strerror(errno),
			 errno == ELOOP ? " (a symlink is not accepted)" : "");
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "fleet_password_file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH | S_IXOTH | S_IWGRP)) {
		snprintf(err, errsz, "fleet_password_file %s: mode %04o lets others read or change "
			 "it (want 0600 or 0640, e.g. root:tlsrpt-report 0640)", path,
			 (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != uid) {
		snprintf(err, errsz, "fleet_password_file %s: owned by uid %u, want root or uid %u",
			 path, (unsigned)st.st_uid, uid);
		close(fd);
		return -1;
	}
	while (len < sizeof(tmp) && (n = read(fd, tmp + len, sizeof(tmp) - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errsz, "fleet_password_file %s: %s", path, strerror(errno));
			close(fd);
			explicit_bzero(tmp, sizeof(tmp));
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	{
		size_t end = 0;

		while (end < len && tmp[end] != '\n' && tmp[end] != '\r')
			end++;
		if (end == len && len == sizeof(tmp)) {
			snprintf(err, errsz, "fleet_password_file %s: password longer than %d bytes",
				 path, DB_PASSWORD_MAX - 1);
			explicit_bzero(tmp, sizeof(tmp));
			return -1;
		}
		if (end == 0 || end >= outsz || memchr(tmp, '\0', end)) {
			snprintf(err, errsz, "fleet_password_file %s: %s", path,
				 end == 0 ? "the first line is empty" :
				 end >= outsz ? "password too long" : "NUL byte in the password");
			explicit_bzero(tmp, sizeof(tmp));
			return -1;
		}
		memcpy(out, tmp, end);
		out[end] = '\0';
	}
	explicit_bzero(tmp, sizeof(tmp));
	return 0;
}

/* Keep 'msg' (from the server or libpq) printable in db->err. */
static void set_err(struct db *db, const char *prefix, const char *msg, const char *sqlstate)
{
	char clean[800];
	size_t len = msg ? strlen(msg) : 0;

	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	log_printable(clean, sizeof(clean), msg ? msg : "", len);
	/* bounded parts: 200 + 2 + 799 + 12 + 5 + 1 < sizeof(db->err), never cut */
	snprintf(db->err, sizeof(db->err), "%.200s%s%s%s%.5s%s", prefix ? prefix : "",
		 prefix ? ": " : "", clean[0] ? clean : "unknown error",
		 sqlstate ? " (SQLSTATE " : "", sqlstate ? sqlstate : "", sqlstate ? ")" : "");
}

/* The one place where PostgreSQL's errors become ours. */
static enum db_status map_state(const char *sqlstate)
{
	if (sqlstate == NULL)
		return DB_UNAVAILABLE;
	if (strncmp(sqlstate, "08", 2) == 0 ||	/* connection exception */
	    strncmp(sqlstate, "53", 2) == 0 ||	/* insufficient resources */
	    strcmp(sqlstate, "57P01") == 0 ||	/* admin shutdown */
	    strcmp(sqlstate, "57P02") == 0 ||	/* crash shutdown */
	    strcmp(sqlstate, "57P03") == 0 ||	/* cannot connect now */
	    strcmp(sqlstate, "57014") == 0 ||	/* statement or lock timeout, cancel */
	    strcmp(sqlstate, "58030") == 0)	/* I/O error */
		return DB_UNAVAILABLE;
	if (strcmp(sqlstate, "40001") == 0 ||	/* serialization failure */
	    strcmp(sqlstate, "40P01") == 0 ||	/* deadlock */
	    strcmp(sqlstate, "55P03") == 0)	/* lock not available */
		return DB_RETRY;
	if (strcmp(sqlstate, "42P01") == 0 ||	/* undefined table */
	    strcmp(sqlstate, "3F000") == 0 ||	/* invalid schema name */
	    strcmp(sqlstate, "42703") == 0)	/* undefined column */
		return DB_SCHEMA;
	return DB_ERROR;
}

static enum db_status map_result(struct db *db, PGresult *r)
{
	ExecStatusType t = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	const char *state;
	enum db_status st;

	if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK || t == PGRES_COPY_IN ||
	    t == PGRES_EMPTY_QUERY)
		return DB_OK;
	state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (PQstatus(db->conn) == CONNECTION_BAD)
		st = DB_UNAVAILABLE;
	else
		st = map_state(state);
	if (r && PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)) {
		const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
		char msg[900];

		snprintf(msg, sizeof(msg), "%s%s%s", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY),
			 detail ? ": " : "", detail ? detail : "");
		set_err(db, st == DB_UNAVAILABLE ? "database unavailable" : NULL, msg, state);
	} else {
		set_err(db, st == DB_UNAVAILABLE ? "database unavailable" : NULL,
			PQerrorMessage(db->conn), state);
	}
	return st;
}

/* Is the server we talk to on this machine (no network to protect)? */
static bool local_server(PGconn *conn)
{
	const char *h = PQhost(conn);

	return h == NULL || h[0] == '\0' || h[0] == '/' || h[0] == '@' ||
	       strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0;
}

static const char *conn_option(PGconn *conn, const char *key, char *out, size_t outsz)
{
	PQconninfoOption *opts = PQconninfo(conn), *o;

	out[0] = '\0';
	for (o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, key) == 0 && o->val)
			snprintf(out, outsz, "%s", o->val);
	PQconninfoFree(opts);
	return out;
}

/* Server notices (e.g. "relation exists, skipping") go to the debug log,
 * not to stderr as libpq would print them. */
static void notice(void *arg, const char *msg)
{
	char clean[300];

	(void)arg;
	log_debug("database: %s", log_printable(clean, sizeof(clean), msg, strcspn(msg, "\n")));
}

static enum db_status open_conn(struct db *db)
{
	const char *kw[12], *val[12];
	int n = 0;
	char sslmode[32];
	static bool warned;

	/* defaults first: the conninfo (dbname, expanded) may override them */
	kw[n] = "connect_timeout"; val[n++] = "10";
	kw[n] = "keepalives"; val[n++] = "1";
	kw[n] = "keepalives_idle"; val[n++] = "60";
	kw[n] = "keepalives_interval"; val[n++] = "10";
	kw[n] = "keepalives_count"; val[n++] = "6";
	kw[n] = "application_name"; val[n++] = db->app;
	kw[n] = "dbname"; val[n++] = db->conninfo;
	/* then what we insist on */
	if (db->has_password) {
		kw[n] = "password"; val[n++] = db->password;
	}
	kw[n] = "client_encoding"; val[n++] = "UTF8";
	kw[n] = NULL; val[n] = NULL;
	db->conn = PQconnectdbParams(kw, val, 1);
	if (db->conn == NULL) {
		snprintf(db->err, sizeof(db->err), "database: out of memory");
		return DB_ERROR;
	}
	snprintf(db->target, sizeof(db->target), "host=%s port=%s dbname=%s user=%s",
		 PQhost(db->conn) ? PQhost(db->conn) : "", PQport(db->conn) ? PQport(db->conn) : "",
		 PQdb(db->conn) ? PQdb(db->conn) : "", PQuser(db->conn) ? PQuser(db->conn) : "");
	if (PQstatus(db->conn) != CONNECTION_OK) {
		char pre[400];

		snprintf(pre, sizeof(pre), "database unavailable (%s)", db->target);
		set_err(db, pre, PQerrorMessage(db->conn), NULL);
		return DB_UNAVAILABLE;
	}
	PQsetNoticeProcessor(db->conn, notice, NULL);
	if (!local_server(db->conn)) {
		conn_option(db->conn, "sslmode", sslmode, sizeof(sslmode));
		if (strcmp(sslmode, "verify-full") != 0 && strcmp(sslmode, "verify-ca") != 0 && !warned) {
			warned = true;
			log_warn("fleet_database: sslmode=%s does not check the server's certificate; "
				 "use sslmode=verify-full with sslrootcert for a database on the network",
				 sslmode[0] ? sslmode : "prefer");
		}
	}
	{
		/* a statement waiting on a lock, or running, longer than this gives up */
		PGresult *r = PQexec(db->conn, "SET lock_timeout = '120s'; SET statement_timeout = '600s'");
		enum db_status st = map_result(db, r);

		PQclear(r);
		return st;
	}
}

/* The conninfo parses and carries no password. */
static int check_conninfo(const char *ci, char *err, size_t errsz)
{
	PQconninfoOption *opts;
	char *perr = NULL;

	opts = PQconninfoParse(ci, &perr);
	if (opts == NULL) {
		char clean[300];

		snprintf(err, errsz, "fleet_database: %s",
			 perr ? log_printable(clean, sizeof(clean), perr, strcspn(perr, "\n")) : "out of memory");
		PQfreemem(perr);
		return -1;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0]) {
			PQconninfoFree(opts);
			snprintf(err, errsz, "fleet_database: a password in the conninfo is not accepted "
				 "(the configuration file is world-readable); use fleet_password_file");
			return -1;
		}
	PQconninfoFree(opts);
	return 0;
}

int db_check_conf(const struct conf *c, char *err, size_t errsz)
{
	const char *pwf = conf_str(c, "fleet_password_file");
	char pw[DB_PASSWORD_MAX];
	int rc;

	if (!db_configured(c))
		return 0;
	if (check_conninfo(conf_str(c, "fleet_database"), err, errsz) != 0)
		return -1;
	if (pwf[0] == '\0')
		return 0;
	rc = db_read_password(pwf, (unsigned)geteuid(), pw, sizeof(pw), err, errsz);
	explicit_bzero(pw, sizeof(pw));
	return rc;
}

struct db *db_connect(const struct conf *c, const char *app, enum db_status *st,
		      char *err, size_t errsz)
{
	const char *ci = conf_str(c, "fleet_database");
	const char *pwf = conf_str(c, "fleet_password_file");
	struct db *db;

	*st = DB_ERROR;
	if (ci[0] == '\0') {
		snprintf(err, errsz, "fleet_database is not set (single-host mode)");
		return NULL;
	}
	if (check_conninfo(ci, err, errsz) != 0)
		return NULL;
	db = calloc(1, sizeof(*db));
	if (db == NULL || (db->conninfo = strdup(ci)) == NULL) {
		free(db);
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	buf_init(&db->copy, 64u * 1024 * 1024);
	snprintf(db->app, sizeof(db->app), "%s", app ? app : "tlsrptd");
	if (pwf[0]) {
		if (db_read_password(pwf, (unsigned)geteuid(), db->password, sizeof(db->password),
				     err, errsz) != 0) {
			db_close(db);
			return NULL;
		}
		db->has_password = true;
	}
	*st = open_conn(db);
	if (*st != DB_OK) {
		snprintf(err, errsz, "%s", db->err);
		db_close(db);
		return NULL;
	}
	return db;
}

void db_close(struct db *db)
{
	if (db == NULL)
		return;
	if (db->conn)
		PQfinish(db->conn);
	explicit_bzero(db->password, sizeof(db->password));
	buf_free(&db->copy);
	free(db->conninfo);
	free(db);
}

enum db_status db_reconnect(struct db *db)
{
	if (db->conn)
		PQfinish(db->conn);
	db->conn = NULL;
	db->in_copy = db->copy_failed = false;
	buf_reset(&db->copy);
	return open_conn(db);
}

const char *db_errmsg(const struct db *db)
{
	return db->err;
}

const char *db_target(const struct db *db)
{
	return db->target;
}

enum db_status db_exec(struct db *db, const char *sql, int nparams,
		       const char *const *params, struct db_res **res)
{
	PGresult *r;
	enum db_status st;

	if (res)
		*res = NULL;
	db->err[0] = '\0';
	r = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	st = map_result(db, r);
	if (st != DB_OK || res == NULL) {
		PQclear(r);
		return st;
	}
	*res = malloc(sizeof(**res));
	if (*res == NULL) {
		PQclear(r);
		snprintf(db->err, sizeof(db->err), "out of memory");
		return DB_ERROR;
	}
	(*res)->r = r;
	return DB_OK;
}

enum db_status db_exec_script(struct db *db, const char *sql)
{
	PGresult *r = PQexec(db->conn, sql);
	enum db_status st = map_result(db, r);

	PQclear(r);
	return st;
}

enum db_status db_begin(struct db *db)
{
	return db_exec(db, "BEGIN", 0, NULL, NULL);
}

enum db_status db_begin_snapshot(struct db *db)
{
	return db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL);
}

enum db_status db_commit(struct db *db)
{
	PGresult *r = PQexec(db->conn, "COMMIT");
	enum db_status st = map_result(db, r);

	/* COMMIT of a failed transaction answers ROLLBACK without an error */
	if (st == DB_OK && r && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
		snprintf(db->err, sizeof(db->err), "the transaction was rolled back");
		st = DB_ERROR;
	}
	PQclear(r);
	return st;
}

void db_rollback(struct db *db)
{
	if (db->conn && PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		PQclear(PQexec(db->conn, "ROLLBACK"));
}

bool db_in_transaction(const struct db *db)
{
	PGTransactionStatusType t = db->conn ? PQtransactionStatus(db->conn) : PQTRANS_UNKNOWN;

	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

size_t db_res_rows(const struct db_res *r)
{
	return r ? (size_t)PQntuples(r->r) : 0;
}

size_t db_res_cols(const struct db_res *r)
{
	return r ? (size_t)PQnfields(r->r) : 0;
}

const char *db_res_get(const struct db_res *r, size_t row, size_t col)
{
	if (r == NULL || row >= db_res_rows(r) || col >= db_res_cols(r))
		return NULL;
	return PQgetvalue(r->r, (int)row, (int)col);
}

size_t db_res_len(const struct db_res *r, size_t row, size_t col)
{
	if (r == NULL || row >= db_res_rows(r) || col >= db_res_cols(r))
		return 0;
	return (size_t)PQgetlength(r->r, (int)row, (int)col);
}

bool db_res_null(const struct db_res *r, size_t row, size_t col)
{
	if (r == NULL || row >= db_res_rows(r) || col >= db_res_cols(r))
		return true;
	return PQgetisnull(r->r, (int)row, (int)col) != 0;
}

bool db_res_int(const struct db_res *r, size_t row, size_t col, int64_t *out)
{
	const char *s = db_res_get(r, row, col);
	char *end;
	long long v;

	*out = 0;
	if (s == NULL || db_res_null(r, row, col) || s[0] == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

void db_res_free(struct db_res *r)
{
	if (r == NULL)
		return;
	PQclear(r->r);
	free(r);
}

/* ---- COPY ---- */

int db_copy_escape(struct buf *b, const char *s, size_t len)
{
	static const char oct[] = "01234567";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[4];

		switch (c) {
		case '\\': if (buf_add(b, "\\\\", 2)) return -1; continue;
		case '\t': if (buf_add(b, "\\t", 2)) return -1; continue;
		case '\n': if (buf_add(b, "\\n", 2)) return -1; continue;
		case '\r': if (buf_add(b, "\\r", 2)) return -1; continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7f) {
			e[0] = '\\';
			e[1] = oct[(c >> 6) & 7];
			e[2] = oct[(c >> 3) & 7];
			e[3] = oct[c & 7];
			if (buf_add(b, e, 4))
				return -1;
		} else if (buf_addc(b, (char)c)) {
			return -1;
		}
	}
	return 0;
}

int db_array_literal(struct buf *b, char *const *v, size_t n)
{
	if (buf_addc(b, '{'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if ((i && buf_addc(b, ',')) || buf_addc(b, '"'))
			return -1;
		for (const char *p = v[i]; *p; p++)
			if (((*p == '"' || *p == '\\') && buf_addc(b, '\\')) || buf_addc(b, *p))
				return -1;
		if (buf_addc(b, '"'))
			return -1;
	}
	return buf_addc(b, '}');
}

static enum db_status copy_flush(struct db *db)
{
	if (db->copy.len == 0)
		return DB_OK;
	if (PQputCopyData(db->conn, db->copy.data, (int)db->copy.len) != 1) {
		set_err(db, "database unavailable", PQerrorMessage(db->conn), NULL);
		db->copy_failed = true;
		db->copy_st = DB_UNAVAILABLE;
		return DB_UNAVAILABLE;
	}
	buf_reset(&db->copy);
	return DB_OK;
}

enum db_status db_copy_begin(struct db *db, const char *sql)
{
	PGresult *r = PQexec(db->conn, sql);
	enum db_status st = map_result(db, r);

	if (st == DB_OK && PQresultStatus(r) != PGRES_COPY_IN) {
		snprintf(db->err, sizeof(db->err), "not a COPY FROM STDIN statement");
		st = DB_ERROR;
	}
	PQclear(r);
	db->in_copy = st == DB_OK;
	db->copy_failed = false;
	buf_reset(&db->copy);
	return st;
}

enum db_status db_copy_row(struct db *db, size_t n, const char *const *fields)
{
	if (!db->in_copy || db->copy_failed)
		return DB_ERROR;
	for (size_t i = 0; i < n; i++) {
		if (i && buf_addc(&db->copy, '\t'))
			goto full;
		if (fields[i] == NULL) {
			if (buf_add(&db->copy, "\\N", 2))
				goto full;
		} else if (db_copy_escape(&db->copy, fields[i], strlen(fields[i]))) {
			goto full;
		}
	}
	if (buf_addc(&db->copy, '\n'))
		goto full;
	return db->copy.len >= COPY_CHUNK ? copy_flush(db) : DB_OK;
full:
	snprintf(db->err, sizeof(db->err), "COPY row too large or out of memory");
	db->copy_failed = true;
	db->copy_st = DB_ERROR;
	return DB_ERROR;
}

enum db_status db_copy_end(struct db *db)
{
	enum db_status st = DB_OK, rst;
	PGresult *r;
	char saved[sizeof(db->err)];

	if (!db->in_copy)
		return DB_ERROR;
	db->in_copy = false;
	if (!db->copy_failed)
		st = copy_flush(db);
	snprintf(saved, sizeof(saved), "%s", db->err);
	if (PQputCopyEnd(db->conn, db->copy_failed ? "client gave up" : NULL) != 1) {
		set_err(db, "database unavailable", PQerrorMessage(db->conn), NULL);
		buf_reset(&db->copy);
		return DB_UNAVAILABLE;
	}
	buf_reset(&db->copy);
	while ((r = PQgetResult(db->conn)) != NULL) {
		rst = map_result(db, r);
		if (st == DB_OK)
			st = rst;
		PQclear(r);
		if (PQstatus(db->conn) == CONNECTION_BAD) {
			st = DB_UNAVAILABLE;
			break;
		}
	}
	if (db->copy_failed) {
		/* our own failure, not the server's answer to "client gave up" */
		snprintf(db->err, sizeof(db->err), "%s", saved);
		return db->copy_st;
	}
	return st;
}
