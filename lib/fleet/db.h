/*
 * db - the one wrapper around libpq (PostgreSQL) for fleet mode.
 *
 * Every libpq call of the project is in db.c, and every PostgreSQL error is
 * mapped here, once, to a db_status:
 *
 *   DB_OK           done
 *   DB_UNAVAILABLE  the server cannot be reached or went away (connection
 *                   refused or lost, shutdown, too many connections, disk
 *                   full): nothing was committed by the failed statement;
 *                   try again later (programs exit 69 / EX_UNAVAILABLE)
 *   DB_RETRY        serialization failure or deadlock: run the whole
 *                   transaction again
 *   DB_SCHEMA       the tlsrpt schema is missing or of another version
 *                   (tlsrptctl db init / migrate)
 *   DB_ERROR        anything else (a bug, a constraint, bad data): the
 *                   message says which
 *
 * The message of the last failure is db_errmsg(): printable ASCII, with the
 * server's primary message and its SQLSTATE, never the password.
 *
 * Configuration (conf.c, "fleet" keys):
 *   fleet_database       a libpq conninfo ("host=db.example dbname=tlsrpt
 *                        user=tlsrpt sslmode=verify-full") or URI; empty
 *                        means single-host mode: no database at all.
 *   fleet_password_file  the password, first line of a file that must be a
 *                        regular file (not a symlink), owned by root or by
 *                        the user running the program, and not readable or
 *                        writable by others (group read is allowed, for
 *                        root:tlsrpt-report 0640). A password inside the
 *                        conninfo is refused: the configuration file is
 *                        world-readable. libpq's own ~/.pgpass also works.
 * libpq defaults that we set unless the conninfo says otherwise:
 * connect_timeout=10, TCP keepalives (idle 60 s), application_name. Each
 * session waits at most 120 s for a lock and runs a statement at most
 * 600 s (DB_UNAVAILABLE after that), so a stuck database cannot hang a
 * timer-driven run forever. Use a direct connection (or session pooling):
 * the reporters' leases name the database session.
 * client_encoding is always UTF8. A server that is neither local (unix
 * socket, localhost, 127.0.0.0/8, ::1) nor reached with sslmode=verify-ca
 * or verify-full gets a warning: its identity is not checked.
 *
 * A struct db is one connection; not thread safe (one thread per handle).
 * After DB_UNAVAILABLE the handle only fails; db_reconnect() makes a new
 * connection with the same settings.
 */
#ifndef TLSRPT_DB_H
#define TLSRPT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct buf;
struct db;
struct db_res;

enum db_status {
	DB_OK = 0,
	DB_UNAVAILABLE = -1,
	DB_RETRY = -2,
	DB_SCHEMA = -3,
	DB_ERROR = -4,
};

#define DB_PASSWORD_MAX 1024

/* True when fleet_database is set (fleet mode). */
bool db_configured(const struct conf *c);

/* The fleet settings without connecting (for -n): the conninfo parses and
 * holds no password, the password file passes db_read_password. 0, or -1
 * with 'err'. Nothing to check (0) in single-host mode. */
int db_check_conf(const struct conf *c, char *err, size_t errsz);

/* "unavailable", "retry", ... for messages. */
const char *db_status_name(enum db_status st);

/*
 * Connect with the fleet_* settings. 'app' becomes application_name (what
 * pg_stat_activity shows). On failure NULL is returned with the status in
 * *st (DB_UNAVAILABLE for an unreachable server, DB_ERROR for bad settings
 * such as a password in the conninfo or a password file with loose
 * permissions) and a message in 'err'.
 */
struct db *db_connect(const struct conf *c, const char *app, enum db_status *st,
		      char *err, size_t errsz);
void db_close(struct db *db);
/* Drop the connection and connect again with the same settings. */
enum db_status db_reconnect(struct db *db);

/* Message of the last failure ("" if none). Valid until the next call. */
const char *db_errmsg(const struct db *db);
/* "host=... port=... dbname=..." of the connection, for messages. */
const char *db_target(const struct db *db);

/*
 * Run one statement with text parameters $1..$n (NULL entries are SQL NULL).
 * With 'res' non-NULL the result rows are returned (db_res_free them; NULL
 * on failure). Statements are one at a time: no ';'-separated lists with
 * parameters (db_exec_script runs a parameterless script).
 */
enum db_status db_exec(struct db *db, const char *sql, int nparams,
		       const char *const *params, struct db_res **res);
enum db_status db_exec_script(struct db *db, const char *sql);

enum db_status db_begin(struct db *db);		/* READ COMMITTED */
enum db_status db_begin_snapshot(struct db *db);	/* REPEATABLE READ, read only */
enum db_status db_commit(struct db *db);
/* Roll back if a transaction is open; never fails (a dead connection has
 * rolled back already). */
void db_rollback(struct db *db);
/* Is a transaction open on the connection? */
bool db_in_transaction(const struct db *db);

size_t db_res_rows(const struct db_res *r);
size_t db_res_cols(const struct db_res *r);
/* The text of a field; "" for NULL (check db_res_null); NULL out of range. */
const char *db_res_get(const struct db_res *r, size_t row, size_t col);
size_t db_res_len(const struct db_res *r, size_t row, size_t col);
bool db_res_null(const struct db_res *r, size_t row, size_t col);
/* A bigint field; 0 and false for NULL or not a number. */
bool db_res_int(const struct db_res *r, size_t row, size_t col, int64_t *out);
void db_res_free(struct db_res *r);

/*
 * COPY ... FROM STDIN in text format: db_copy_begin runs the COPY
 * statement; each db_copy_row sends one row of 'n' fields (NULL entries are
 * SQL NULL; every other field is escaped here, so any bytes but NUL may
 * be in it); db_copy_end finishes and returns the COPY's status. After a
 * failed db_copy_row, still call db_copy_end (it reports the error).
 */
enum db_status db_copy_begin(struct db *db, const char *sql);
enum db_status db_copy_row(struct db *db, size_t n, const char *const *fields);
enum db_status db_copy_end(struct db *db);

/* ---- helpers exposed for tests and callers ---- */

/*
 * Read the password file 'path' (first line, without its line end) into
 * 'out' (DB_PASSWORD_MAX bytes). Refused: a symlink, not a regular file,
 * mode bits for others, group write, an owner that is neither root nor
 * 'uid', an empty or over-long password, NUL bytes. 0, or -1 with 'err'.
 */
int db_read_password(const char *path, unsigned uid, char *out, size_t outsz,
		     char *err, size_t errsz);

/* Append 's' escaped for a COPY text-format field (\\ \t \n \r, other
 * control bytes as \ooo). 0, or -1 if the buffer refused. */
int db_copy_escape(struct buf *b, const char *s, size_t len);

/* Append a PostgreSQL array literal {"a","b"} of 'n' strings (elements
 * quoted, '"' and '\' backslash-escaped). 0, or -1. */
int db_array_literal(struct buf *b, char *const *v, size_t n);

#endif
