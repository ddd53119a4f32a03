/*
 * dbschema - the fleet database's schema and its migrations. See dbschema.h.
 *
 * A step, once released, is never edited: a change is a new step. Each
 * step's SQL runs inside the migration's transaction.
 */
#include "dbschema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_xact_lock key of migrations: "tlsr" */
#define MIGRATE_LOCK "1953264498"

struct step {
	int version;
	const char *description;
	const char *sql;
};

static const struct step steps[] = {
	{ 1, "fleet counters: hosts, policies, failure details, per-host day counts",
	  "CREATE TABLE tlsrpt.hosts (\n"
	  "  id serial PRIMARY KEY,\n"
	  "  name text NOT NULL UNIQUE,\n"
	  "  machine_id text NOT NULL DEFAULT '',\n"
	  "  first_push timestamptz NOT NULL DEFAULT now(),\n"
	  "  last_push timestamptz,\n"
	  /* every day up to this one is complete on the host and pushed (days
	   * without results included: the host has nothing more for them) */
	  "  final_through date);\n"
	  /* one row per distinct (TLSRPT domain, record, policy), shared by all hosts */
	  "CREATE TABLE tlsrpt.policies (\n"
	  "  id bigserial PRIMARY KEY,\n"
	  "  hash bytea NOT NULL UNIQUE CHECK (length(hash) = 32),\n"
	  "  d text NOT NULL,\n"
	  "  pr text NOT NULL,\n"
	  "  type smallint NOT NULL,\n"
	  "  pdomain text NOT NULL,\n"
	  "  strings text[] NOT NULL,\n"
	  "  mx text[] NOT NULL);\n"
	  "CREATE INDEX policies_d ON tlsrpt.policies (d);\n"
	  /* one row per distinct failure-detail tuple */
	  "CREATE TABLE tlsrpt.details (\n"
	  "  id bigserial PRIMARY KEY,\n"
	  "  hash bytea NOT NULL UNIQUE CHECK (length(hash) = 32),\n"
	  "  code integer NOT NULL,\n"
	  "  sending_ip text, mx_hostname text, mx_helo text,\n"
	  "  receiving_ip text, additional text, reason text);\n"
	  /* what each host pushed of each day */
	  "CREATE TABLE tlsrpt.host_days (\n"
	  "  day date NOT NULL,\n"
	  "  host_id integer NOT NULL REFERENCES tlsrpt.hosts (id),\n"
	  "  snapshot bytea NOT NULL,\n"
	  "  final boolean NOT NULL,\n"
	  "  first_push timestamptz NOT NULL DEFAULT now(),\n"
	  "  pushed_at timestamptz NOT NULL DEFAULT now(),\n"
	  "  pushes integer NOT NULL DEFAULT 1,\n"
	  "  sessions bigint NOT NULL,\n"
	  "  failures bigint NOT NULL,\n"
	  "  counters jsonb NOT NULL,\n"
	  "  PRIMARY KEY (day, host_id));\n"
	  "CREATE TABLE tlsrpt.policy_counts (\n"
	  "  day date NOT NULL,\n"
	  "  policy_id bigint NOT NULL REFERENCES tlsrpt.policies (id),\n"
	  "  host_id integer NOT NULL REFERENCES tlsrpt.hosts (id),\n"
	  "  successes bigint NOT NULL CHECK (successes >= 0),\n"
	  "  failures bigint NOT NULL CHECK (failures >= 0),\n"
	  "  PRIMARY KEY (day, policy_id, host_id));\n"
	  "CREATE INDEX policy_counts_host ON tlsrpt.policy_counts (host_id, day);\n"
	  "CREATE TABLE tlsrpt.detail_counts (\n"
	  "  day date NOT NULL,\n"
	  "  policy_id bigint NOT NULL REFERENCES tlsrpt.policies (id),\n"
	  "  detail_id bigint NOT NULL REFERENCES tlsrpt.details (id),\n"
	  "  host_id integer NOT NULL REFERENCES tlsrpt.hosts (id),\n"
	  "  count bigint NOT NULL CHECK (count > 0),\n"
	  "  PRIMARY KEY (day, policy_id, detail_id, host_id));\n"
	  "CREATE INDEX detail_counts_host ON tlsrpt.detail_counts (host_id, day);\n" },
	{ 2, "fleet reports: days, one work item per (day, domain, record), reports, "
	  "destinations with leases, suppressions",
	  /* a day some reporter began; done once every item is */
	  "CREATE TABLE tlsrpt.report_days (\n"
	  "  day date PRIMARY KEY,\n"
	  "  opened_at timestamptz NOT NULL DEFAULT now(),\n"
	  "  opened_by text NOT NULL,\n"
	  "  done_at timestamptz,\n"
	  "  mark jsonb);\n"
	  /* exactly one report per (day, TLSRPT domain, record): claimed with
	   * SELECT ... FOR UPDATE SKIP LOCKED, built and inserted in that transaction */
	  "CREATE TABLE tlsrpt.report_items (\n"
	  "  day date NOT NULL REFERENCES tlsrpt.report_days (day) ON DELETE CASCADE,\n"
	  "  d text NOT NULL,\n"
	  "  pr text NOT NULL,\n"
	  "  state text NOT NULL DEFAULT 'pending'\n"
	  "    CHECK (state IN ('pending', 'built', 'skipped')),\n"
	  "  late boolean NOT NULL DEFAULT false,\n"
	  "  retry_at timestamptz,\n"
	  "  report text,\n"
	  "  done_by text,\n"
	  "  done_at timestamptz,\n"
	  "  note text,\n"
	  "  PRIMARY KEY (day, d, pr));\n"
	  "CREATE TABLE tlsrpt.reports (\n"
	  "  id text PRIMARY KEY,\n"
	  "  day date NOT NULL,\n"
	  "  d text NOT NULL,\n"
	  "  pr text NOT NULL,\n"
	  "  meta jsonb NOT NULL,\n"
	  "  gz bytea NOT NULL,\n"
	  "  ndests integer NOT NULL CHECK (ndests >= 0),\n"
	  "  final boolean NOT NULL DEFAULT false,\n"
	  "  successes bigint NOT NULL,\n"
	  "  failures bigint NOT NULL,\n"
	  "  created_at timestamptz NOT NULL DEFAULT now(),\n"
	  "  built_by text NOT NULL,\n"
	  /* who delivers it now: a run's token, its database session (pid and
	   * start: alive while pg_stat_activity has it) and a time limit */
	  "  lease_token text,\n"
	  "  lease_host text,\n"
	  "  lease_pid integer,\n"
	  "  lease_start timestamptz,\n"
	  "  lease_until timestamptz,\n"
	  "  UNIQUE (day, d, pr));\n"
	  "CREATE INDEX reports_open ON tlsrpt.reports (id) WHERE NOT final;\n"
	  "CREATE TABLE tlsrpt.report_dests (\n"
	  "  report text NOT NULL REFERENCES tlsrpt.reports (id) ON DELETE CASCADE,\n"
	  "  idx integer NOT NULL CHECK (idx >= 0),\n"
	  "  rec jsonb NOT NULL,\n"
	  "  updated_at timestamptz NOT NULL DEFAULT now(),\n"
	  "  updated_by text,\n"
	  "  PRIMARY KEY (report, idx));\n"
	  "CREATE TABLE tlsrpt.suppressions (\n"
	  "  uri text PRIMARY KEY,\n"
	  "  rec jsonb NOT NULL,\n"
	  "  updated_by text);\n" },
	{ 3, "received reports of every inbound MX host, deduplicated on their identity",
	  /* a record as the received store keeps it (received.h): its class and
	   * id (the identity hash, the signer part of it) are the key, so the
	   * same report stored by two MX hosts is one row */
	  "CREATE TABLE tlsrpt.received (\n"
	  "  seq bigserial UNIQUE,\n"
	  "  class text NOT NULL CHECK (class IN ('verified', 'unverified', 'rejected')),\n"
	  "  id text NOT NULL CHECK (id ~ '^[0-9a-f]{24}$'),\n"
	  "  start_at bigint NOT NULL,\n"
	  "  end_at bigint NOT NULL,\n"
	  "  stored_at bigint NOT NULL,\n"
	  "  submitter text,\n"
	  "  domains text,\n"
	  /* json, not jsonb: the record's text as the milter wrote it */
	  "  rec json NOT NULL,\n"
	  "  host_id integer NOT NULL REFERENCES tlsrpt.hosts (id),\n"
	  "  pushed_at timestamptz NOT NULL DEFAULT now(),\n"
	  "  PRIMARY KEY (class, id));\n"
	  "CREATE INDEX received_end ON tlsrpt.received (end_at);\n"
	  "CREATE INDEX received_id ON tlsrpt.received (id);\n"
	  /* how far each host's index has been pushed */
	  "CREATE TABLE tlsrpt.received_push (\n"
	  "  host_id integer PRIMARY KEY REFERENCES tlsrpt.hosts (id),\n"
	  "  index_dev bigint NOT NULL,\n"
	  "  index_ino bigint NOT NULL,\n"
	  "  index_offset bigint NOT NULL,\n"
	  "  pushed_at timestamptz NOT NULL DEFAULT now());\n" },
};

#define NSTEPS (sizeof(steps) / sizeof(steps[0]))

int dbschema_latest(void)
{
	return steps[NSTEPS - 1].version;
}

const char *dbschema_description(int version)
{
	for (size_t i = 0; i < NSTEPS; i++)
		if (steps[i].version == version)
			return steps[i].description;
	return NULL;
}

enum db_status dbschema_version(struct db *db, int *version)
{
	struct db_res *r = NULL;
	enum db_status st;
	int64_t v = 0;

	*version = 0;
	st = db_exec(db, "SELECT to_regclass('tlsrpt.schema_version') IS NOT NULL", 0, NULL, &r);
	if (st != DB_OK)
		return st;
	if (strcmp(db_res_get(r, 0, 0) ? db_res_get(r, 0, 0) : "f", "t") != 0) {
		db_res_free(r);
		return DB_OK;
	}
	db_res_free(r);
	st = db_exec(db, "SELECT coalesce(max(version), 0) FROM tlsrpt.schema_version", 0, NULL, &r);
	if (st != DB_OK)
		return st;
	db_res_int(r, 0, 0, &v);
	db_res_free(r);
	*version = (int)v;
	return DB_OK;
}

/* Apply the steps (from, to] inside the open transaction. */
static enum db_status apply(struct db *db, int from, int to, char *err, size_t errsz)
{
	for (size_t i = 0; i < NSTEPS; i++) {
		char v[16];
		const char *params[2];
		enum db_status st;

		if (steps[i].version <= from || steps[i].version > to)
			continue;
		st = db_exec_script(db, steps[i].sql);
		if (st != DB_OK) {
			snprintf(err, errsz, "step %d (%s): %s", steps[i].version,
				 steps[i].description, db_errmsg(db));
			return st;
		}
		snprintf(v, sizeof(v), "%d", steps[i].version);
		params[0] = v;
		params[1] = steps[i].description;
		st = db_exec(db, "INSERT INTO tlsrpt.schema_version (version, description) "
			     "VALUES ($1, $2)", 2, params, NULL);
		if (st != DB_OK) {
			snprintf(err, errsz, "step %d: %s", steps[i].version, db_errmsg(db));
			return st;
		}
	}
	return DB_OK;
}

static enum db_status locked_begin(struct db *db, int *version, char *err, size_t errsz)
{
	enum db_status st = db_begin(db);

	if (st == DB_OK)
		st = db_exec(db, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", 0, NULL, NULL);
	if (st == DB_OK)
		st = dbschema_version(db, version);
	if (st != DB_OK) {
		snprintf(err, errsz, "%s", db_errmsg(db));
		db_rollback(db);
	}
	return st;
}

static enum db_status finish(struct db *db, enum db_status st, char *err, size_t errsz)
{
	if (st == DB_OK && (st = db_commit(db)) != DB_OK)
		snprintf(err, errsz, "%s", db_errmsg(db));
	if (st != DB_OK)
		db_rollback(db);
	return st;
}

static bool bad_target(int to, char *err, size_t errsz)
{
	if (to < 0 || to > dbschema_latest()) {
		snprintf(err, errsz, "no schema version %d (this build knows 1 to %d)", to,
			 dbschema_latest());
		return true;
	}
	return false;
}

enum db_status dbschema_init(struct db *db, int to, char *err, size_t errsz)
{
	int v = 0;
	enum db_status st;

	if (bad_target(to, err, errsz))
		return DB_ERROR;
	if (to == 0)
		to = dbschema_latest();
	if ((st = locked_begin(db, &v, err, errsz)) != DB_OK)
		return st;
	if (v > 0) {
		snprintf(err, errsz, "the tlsrpt schema exists already (version %d); "
			 "use tlsrptctl db migrate", v);
		db_rollback(db);
		return DB_ERROR;
	}
	st = db_exec_script(db,
		"CREATE SCHEMA IF NOT EXISTS tlsrpt;\n"
		"CREATE TABLE tlsrpt.schema_version (\n"
		"  version integer PRIMARY KEY,\n"
		"  description text NOT NULL,\n"
		"  applied_at timestamptz NOT NULL DEFAULT now(),\n"
		"  applied_by text NOT NULL DEFAULT current_user);\n");
	if (st != DB_OK)
		snprintf(err, errsz, "%s", db_errmsg(db));
	else
		st = apply(db, 0, to, err, errsz);
	return finish(db, st, err, errsz);
}

enum db_status dbschema_migrate(struct db *db, int to, int *from, int *now,
				char *err, size_t errsz)
{
	int v = 0;
	enum db_status st;

	*from = *now = 0;
	if (bad_target(to, err, errsz))
		return DB_ERROR;
	if (to == 0)
		to = dbschema_latest();
	if ((st = locked_begin(db, &v, err, errsz)) != DB_OK)
		return st;
	*from = *now = v;
	if (v == 0) {
		snprintf(err, errsz, "there is no tlsrpt schema in this database; "
			 "create it with tlsrptctl db init");
		db_rollback(db);
		return DB_SCHEMA;
	}
	if (v > dbschema_latest()) {
		snprintf(err, errsz, "the database has schema version %d, newer than this "
			 "program's %d: upgrade tlsrptd on this host", v, dbschema_latest());
		db_rollback(db);
		return DB_SCHEMA;
	}
	if (to < v) {
		snprintf(err, errsz, "the database has version %d already; migrations only go forward", v);
		db_rollback(db);
		return DB_ERROR;
	}
	st = apply(db, v, to, err, errsz);
	st = finish(db, st, err, errsz);
	if (st == DB_OK)
		*now = to;
	return st;
}

enum db_status dbschema_check(struct db *db, char *err, size_t errsz)
{
	int v = 0;
	enum db_status st = dbschema_version(db, &v);

	if (st != DB_OK) {
		snprintf(err, errsz, "%s", db_errmsg(db));
		return st;
	}
	if (v == dbschema_latest())
		return DB_OK;
	if (v == 0)
		snprintf(err, errsz, "the database has no tlsrpt schema: run tlsrptctl db init");
	else if (v < dbschema_latest())
		snprintf(err, errsz, "the database has schema version %d, this program needs %d: "
			 "run tlsrptctl db migrate", v, dbschema_latest());
	else
		snprintf(err, errsz, "the database has schema version %d, newer than this "
			 "program's %d: upgrade tlsrptd on this host", v, dbschema_latest());
	return DB_SCHEMA;
}
