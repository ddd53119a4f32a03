/*
 * dbschema - the fleet database's schema, versioned, and its migrations.
 *
 * All tables live in the PostgreSQL schema "tlsrpt", so the database may be
 * shared with other applications. tlsrpt.schema_version has one row per
 * applied step (version, description, when, by whom). Steps are applied in
 * order, all of one run in a single transaction under an advisory lock, so
 * two concurrent runs of `tlsrptctl db migrate` neither interleave nor
 * apply a step twice, and a failed run changes nothing.
 *
 * Programs check the version when they connect: a database older than the
 * program says "run tlsrptctl db migrate"; a newer one says to upgrade the
 * program. Not thread safe (uses one db handle).
 */
#ifndef TLSRPT_DBSCHEMA_H
#define TLSRPT_DBSCHEMA_H

#include <stddef.h>

#include "db.h"

/* The version this build needs (the last step). */
int dbschema_latest(void);
/* Description of step 'version', NULL if there is none. */
const char *dbschema_description(int version);

/* The database's version: 0 when the tlsrpt schema does not exist. */
enum db_status dbschema_version(struct db *db, int *version);

/*
 * Create the schema up to version 'to' (0: latest). Refused (DB_ERROR) when
 * the schema exists already: use dbschema_migrate.
 */
enum db_status dbschema_init(struct db *db, int to, char *err, size_t errsz);

/*
 * Apply the steps after the current version up to 'to' (0: latest).
 * *from and *now get the versions before and after. Refused when the
 * schema does not exist (init first) or is newer than this build.
 */
enum db_status dbschema_migrate(struct db *db, int to, int *from, int *now,
				char *err, size_t errsz);

/* DB_OK if the database has exactly dbschema_latest(); else DB_SCHEMA with
 * the message saying what to do (or another status if it cannot tell). */
enum db_status dbschema_check(struct db *db, char *err, size_t errsz);

#endif
