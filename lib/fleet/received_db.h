/*
 * received_db - the reports others sent us, from every inbound MX host, in
 * the fleet database (schema step 3, tlsrpt.received).
 *
 * tlsrpt-milter stores each report in its host's local received store, as
 * in single-host mode: no database in the mail path, so the milter stays
 * thin, never waits on the network while Postfix waits on it, and loses
 * nothing when the database is down. `tlsrptctl push --received` (a timer,
 * every 5 minutes) then sends what the store's index holds since its last
 * push: each record under its class and id, which the store derives from
 * the report's identity with the authenticated signer part of it
 * (received.h), is the key. So a report that reached two MX hosts is one
 * row, and a report verified for one signer never shadows another's, as in
 * one host's store. How far each host's index was pushed is kept with the
 * rows in the same transaction: a push cut off at any point repeats
 * nothing and loses nothing; a new index (another inode, or shorter) is
 * pushed from its start (the key makes that harmless).
 *
 * Readers (tlsrptctl received summary / show / rejected / check, metrics,
 * the dashboard) open the database as a read-only received store
 * (received_open_backend): records come back with a bounded parser, a
 * cursor bounds memory.
 *
 * Not thread safe (one db handle).
 */
#ifndef TLSRPT_RECEIVED_DB_H
#define TLSRPT_RECEIVED_DB_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "db.h"
#include "received.h"

#define RECEIVED_DB_RECORD_MAX (64u * 1024 * 1024)

struct received_push_stats {
	size_t lines;		/* index lines read */
	size_t inserted;	/* new rows */
	size_t duplicates;	/* in the database already (another host, or again) */
	size_t missing;		/* index lines whose record is gone */
};

/* Push the local store 'local' for host 'host_id' (push_register). */
enum db_status received_db_push(struct db *db, int host_id, struct received_store *local,
				struct received_push_stats *st, char *err, size_t errsz);

/*
 * The fleet database as a read-only received store: connects with the
 * fleet_* settings ('app' = application_name) and checks the schema. The
 * connection is closed with the store. NULL with *st and 'err'.
 */
struct received_store *received_db_open_conf(const struct conf *c, const char *app,
					     enum db_status *st, char *err, size_t errsz);

#endif
