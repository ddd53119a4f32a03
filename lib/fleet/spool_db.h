/*
 * spool_db - how the spool keeps what it records, in the fleet database:
 * the same functions as spool_fs (spool_fs.h), over the tables of schema
 * step 2. spool.c decides what the records mean; this module stores them
 * and, because several reporter nodes share one database, adds who may
 * change them:
 *
 * Leases. A reporter that opens the spool for writing gets a token; the
 * reports it may deliver are leased to it (reports.lease_*): its token,
 * its database session (pid and start time, as pg_stat_activity shows them)
 * and a time limit (fleet_lease). spool_db_ids_due() leases every
 * report that is not final and has a destination due at 'now' or an
 * attempt in flight, and that no live node holds: a lease whose session is
 * gone (the node crashed, was killed, lost its connection) or whose time ran
 * out is taken over at once. A holder connected as another database role
 * shows its pid but not its start time: it counts as alive while a session
 * with its pid exists, so its lease ends with the session or the time limit. Every write renews the node's leases, so a
 * node that keeps working keeps them; the lease only needs to be longer than
 * the longest single delivery attempt. A destination record is written only
 * while the report's lease is ours (else -1 with errno ESTALE: another node
 * took it over, and its record wins). Closing releases the leases.
 *
 * Reports are inserted with ON CONFLICT DO NOTHING on their id and on
 * (day, domain, record), so a report exists once whoever builds it; with a
 * transaction open on the connection (fleetday_claim) the insert belongs to
 * it, otherwise each report is inserted in a transaction of its own.
 *
 * Day marks are tlsrpt.report_days (done_at, mark); suppressions are
 * tlsrpt.suppressions, shared by the fleet.
 *
 * Errors: -1 with errno (EIO for a database failure, ESTALE for a lost
 * lease, ENOENT for an absent record) and the database's message logged.
 * Not thread safe; the db handle is the caller's and outlives the spool_db.
 */
#ifndef TLSRPT_SPOOL_DB_H
#define TLSRPT_SPOOL_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "spool_fs.h"
#include "spool_store.h"

struct json_object;
struct spool_db;

/*
 * A spool on the open connection 'db'. 'node' names this host in the
 * records (built_by, lease_host); 'lease' is fleet_lease in seconds. With
 * 'write' the node gets a lease token. NULL with 'err' on failure.
 */
struct spool_db *spool_db_open(struct db *db, const char *node, int64_t lease,
			       bool write, char *err, size_t errsz);
/* Release this node's leases and free. */
void spool_db_close(struct spool_db *s);

bool spool_db_has(struct spool_db *s, const char *id);
int spool_db_stage(struct spool_db *s, const char *id, const unsigned char *gz, size_t gzlen,
		   struct json_object *meta, struct json_object *const *dests, size_t ndests,
		   bool *existed, char *err, size_t errsz);
int spool_db_commit(struct spool_db *s, char *err, size_t errsz);

/* Every report, sorted. Their records are read in the same query and kept
 * until the next change, so that spool_db_meta of each (pruning, listing)
 * costs no query. */
int spool_db_ids(struct spool_db *s, char ***ids, size_t *n);
/* Write mode: lease and return the reports this node may deliver at 'now'
 * (see above), sorted. */
int spool_db_ids_due(struct spool_db *s, int64_t now, char ***ids, size_t *n);
void spool_db_ids_free(char **ids, size_t n);
/* Lease one report for an operator's change (tlsrptctl spool retry): 0, or
 * -1 with errno EBUSY when a live node holds it, ENOENT when absent. */
int spool_db_claim(struct spool_db *s, const char *id);

struct json_object *spool_db_meta(struct spool_db *s, const char *id);
struct json_object *spool_db_dest(struct spool_db *s, const char *id, size_t i);
int spool_db_gz(struct spool_db *s, const char *id, unsigned char **gz, size_t *len);

int spool_db_put_dest(struct spool_db *s, const char *id, size_t i, struct json_object *rec);
int spool_db_put_dests(struct spool_db *s, const struct spool_fs_ref *refs, size_t n);

bool spool_db_final(struct spool_db *s, const char *id);
void spool_db_set_final(struct spool_db *s, const char *id, bool final);
int spool_db_remove(struct spool_db *s, const char *id);

bool spool_db_day_exists(struct spool_db *s, int64_t day);
int spool_db_day_put(struct spool_db *s, int64_t day, struct json_object *rec);
int spool_db_days(struct spool_db *s, int64_t **days, size_t *n);
int spool_db_day_remove(struct spool_db *s, int64_t day);

struct json_object *spool_db_suppression(struct spool_db *s, const char *uri);
int spool_db_suppression_put(struct spool_db *s, const char *uri, struct json_object *rec);
int spool_db_suppression_remove(struct spool_db *s, const char *uri);
int spool_db_suppressions_filter(struct spool_db *s,
				 enum spool_fs_verdict (*check)(void *arg, struct json_object *rec),
				 void *arg);

/*
 * Everything a program needs for the spool in fleet mode: connect with the
 * fleet_* settings ('app' = application_name), check the schema, open a
 * spool_db (node = fleet_host_name) and a struct spool over it. *dbp gets
 * the connection: close it after spool_close. NULL with 'err' and *st
 * (DB_UNAVAILABLE: try later; other: a setting or the schema).
 */
struct spool;
struct spool *spool_db_open_conf(const struct conf *c, const char *app, bool write,
				 struct db **dbp, enum db_status *st, char *err, size_t errsz);

/* The table for spool_open_store (spool_store.h); the handle is a struct
 * spool_db, closed (leases released) by spool_close. */
extern const struct spool_store_ops spool_db_ops;

#endif
