/*
 * ctl_db - `tlsrptctl db`: the fleet database's schema and state.
 *
 *   db init [--to N]       create the tlsrpt schema (the latest version, or N)
 *   db migrate [--to N]    apply the missing schema steps, in order
 *   db status [--json]     schema version, hosts and their last push, the
 *                          recent days: hosts that pushed, final pushes,
 *                          sessions
 *
 * Needs fleet_database. Exit: 0, 64 usage, 69 database unreachable or of
 * the wrong version, 70 other database errors, 78 fleet settings.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ctl.h"
#include "db.h"
#include "dbschema.h"
#include "received.h"
#include "received_db.h"
#include "spool.h"
#include "spool_db.h"

const char ctl_db_usage[] =
	"db init [--to VERSION]\n"
	"    create the fleet database's schema (the latest version, or VERSION)\n"
	"db migrate [--to VERSION]\n"
	"    apply the schema steps a newer version adds, in one transaction\n"
	"db status [--json]\n"
	"    schema version, hosts and their last push, the recent days (reports,\n"
	"    late sessions), reports with deliveries still to make\n";

static int db_usage(void)
{
	return ctl_usage(ctl_db_usage);
}

int ctl_exit_db(enum db_status st)
{
	switch (st) {
	case DB_OK: return CTL_OK;
	case DB_UNAVAILABLE: case DB_SCHEMA: case DB_RETRY: return CTL_UNAVAILABLE;
	default: return CTL_SOFTWARE;
	}
}

struct db *ctl_db_open(const struct conf *c, const char *app, bool check_schema, int *rc)
{
	char err[1024];
	enum db_status st;
	struct db *db;

	if (!db_configured(c)) {
		fprintf(stderr, "tlsrptctl: fleet_database is not set: this host is in single-host mode\n");
		*rc = CTL_CONFIG;
		return NULL;
	}
	db = db_connect(c, app, &st, err, sizeof(err));
	if (db == NULL) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		*rc = st == DB_UNAVAILABLE ? CTL_UNAVAILABLE : ctl_status_of(err, CTL_CONFIG);
		return NULL;
	}
	if (check_schema && (st = dbschema_check(db, err, sizeof(err))) != DB_OK) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		db_close(db);
		*rc = ctl_exit_db(st);
		return NULL;
	}
	*rc = CTL_OK;
	return db;
}

int ctl_received_open(const struct conf *c, struct received_store **rs, char *err, size_t errsz)
{
	enum db_status st;

	if (!db_configured(c))
		return received_open(conf_str(c, "received_directory"), rs, err, errsz);
	*rs = received_db_open_conf(c, "tlsrptctl", &st, err, errsz);
	return *rs ? 0 : -1;
}

struct spool *ctl_spool_open_read(const struct conf *c, struct db **db, char *err, size_t errsz)
{
	enum db_status st;

	*db = NULL;
	if (!db_configured(c))
		return spool_open(conf_str(c, "spool_directory"), false, err, errsz);
	return spool_db_open_conf(c, "tlsrptctl", false, db, &st, err, errsz);
}

static int parse_to(int argc, char **argv, int *to, bool *json)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*to = 0;
	if (json)
		*json = false;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 1 || v > 1000000)
				return CTL_USAGE;
			*to = (int)v;
			break;
		}
		case 'j':
			if (json == NULL)
				return CTL_USAGE;
			*json = true;
			break;
		default:
			return CTL_USAGE;
		}
	}
	return optind < argc ? CTL_USAGE : CTL_OK;
}

static int cmd_init(int argc, char **argv, const struct conf *c)
{
	char err[1024];
	int to, rc;
	struct db *db;
	enum db_status st;

	if (parse_to(argc, argv, &to, NULL) != CTL_OK)
		return db_usage();
	if ((db = ctl_db_open(c, "tlsrptctl db", false, &rc)) == NULL)
		return rc;
	st = dbschema_init(db, to, err, sizeof(err));
	if (st == DB_OK)
		printf("created the tlsrpt schema, version %d\n", to ? to : dbschema_latest());
	else
		fprintf(stderr, "tlsrptctl: db init: %s\n", err);
	db_close(db);
	return ctl_exit_db(st);
}

static int cmd_migrate(int argc, char **argv, const struct conf *c)
{
	char err[1024];
	int to, from = 0, now = 0, rc;
	struct db *db;
	enum db_status st;

	if (parse_to(argc, argv, &to, NULL) != CTL_OK)
		return db_usage();
	if ((db = ctl_db_open(c, "tlsrptctl db", false, &rc)) == NULL)
		return rc;
	st = dbschema_migrate(db, to, &from, &now, err, sizeof(err));
	if (st != DB_OK) {
		fprintf(stderr, "tlsrptctl: db migrate: %s\n", err);
	} else if (from == now) {
		printf("schema version %d: nothing to do\n", now);
	} else {
		for (int v = from + 1; v <= now; v++)
			printf("applied step %d: %s\n", v, dbschema_description(v));
		printf("schema version %d (was %d)\n", now, from);
	}
	db_close(db);
	return ctl_exit_db(st);
}

static const char *const hosts_sql =
	"SELECT h.name, coalesce(to_char(h.last_push AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'), count(d.day),"
	" coalesce(max(d.day)::text, '-'), coalesce(h.final_through::text, '-')"
	" FROM tlsrpt.hosts h LEFT JOIN tlsrpt.host_days d ON d.host_id = h.id"
	" GROUP BY h.id ORDER BY h.name";

/* The 14 newest days: hosts that pushed, final pushes, sessions; reports
 * built; late sessions: pushed for a (domain, record) after its report was
 * built (counted here, never sent). */
static const char *const days_sql =
	"WITH days AS (SELECT day, count(*) AS hosts, count(*) FILTER (WHERE final) AS final,"
	"  sum(sessions) AS sessions, sum(failures) AS failures FROM tlsrpt.host_days"
	"  GROUP BY day ORDER BY day DESC LIMIT 14),"
	" keys AS (SELECT c.day, p.d, p.pr, sum(c.successes) + sum(c.failures) AS s"
	"  FROM tlsrpt.policy_counts c JOIN tlsrpt.policies p ON p.id = c.policy_id"
	"  WHERE c.day IN (SELECT day FROM days) GROUP BY 1, 2, 3),"
	" rep AS (SELECT r.day, count(*) AS reports,"
	"  sum(greatest(k.s - r.successes - r.failures, 0)) AS late"
	"  FROM tlsrpt.reports r LEFT JOIN keys k ON k.day = r.day AND k.d = r.d AND k.pr = r.pr"
	"  WHERE r.day IN (SELECT day FROM days) GROUP BY r.day)"
	" SELECT d.day::text, d.hosts, d.final, d.sessions, d.failures, coalesce(rep.reports, 0),"
	"  coalesce(rep.late, 0), (SELECT done_at IS NOT NULL FROM tlsrpt.report_days x WHERE x.day = d.day)"
	" FROM days d LEFT JOIN rep ON rep.day = d.day ORDER BY d.day DESC";

/* Reporter nodes holding reports right now (leases), and what waits. */
static const char *const leases_sql =
	"SELECT coalesce(lease_host, '-'), count(*),"
	" coalesce(to_char(max(lease_until) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-')"
	" FROM tlsrpt.reports WHERE NOT final GROUP BY lease_host ORDER BY 1";

static int cmd_status(int argc, char **argv, const struct conf *c)
{
	struct db_res *hr = NULL, *dr = NULL, *lr = NULL;
	bool json;
	int to, rc, version = 0;
	struct db *db;
	enum db_status st;

	if (parse_to(argc, argv, &to, &json) != CTL_OK || to != 0)
		return db_usage();
	if ((db = ctl_db_open(c, "tlsrptctl db", true, &rc)) == NULL)
		return rc;
	if ((st = dbschema_version(db, &version)) != DB_OK ||
	    (st = db_exec(db, hosts_sql, 0, NULL, &hr)) != DB_OK ||
	    (st = db_exec(db, days_sql, 0, NULL, &dr)) != DB_OK ||
	    (st = db_exec(db, leases_sql, 0, NULL, &lr)) != DB_OK) {
		fprintf(stderr, "tlsrptctl: %s\n", db_errmsg(db));
		db_res_free(hr);
		db_res_free(dr);
		db_close(db);
		return ctl_exit_db(st);
	}
	if (json) {
		struct json_object *o = json_object_new_object(), *ha = json_object_new_array(),
				   *da = json_object_new_array();

		json_object_object_add(o, "schema_version", json_object_new_int(version));
		for (size_t i = 0; i < db_res_rows(hr); i++) {
			struct json_object *h = json_object_new_object();
			int64_t n = 0;

			db_res_int(hr, i, 2, &n);
			json_object_object_add(h, "name", json_object_new_string(db_res_get(hr, i, 0)));
			json_object_object_add(h, "last_push", json_object_new_string(db_res_get(hr, i, 1)));
			json_object_object_add(h, "days", json_object_new_int64(n));
			json_object_object_add(h, "last_day", json_object_new_string(db_res_get(hr, i, 3)));
			json_object_object_add(h, "final_through", json_object_new_string(db_res_get(hr, i, 4)));
			json_object_array_add(ha, h);
		}
		for (size_t i = 0; i < db_res_rows(dr); i++) {
			static const char *const keys[] = { "hosts", "final_hosts", "sessions", "failures",
							    "reports", "late_sessions" };
			struct json_object *d = json_object_new_object();

			json_object_object_add(d, "day", json_object_new_string(db_res_get(dr, i, 0)));
			for (int k = 0; k < 6; k++) {
				int64_t v = 0;

				db_res_int(dr, i, (size_t)k + 1, &v);
				json_object_object_add(d, keys[k], json_object_new_int64(v));
			}
			json_object_object_add(d, "reported",
					       json_object_new_boolean(strcmp(db_res_get(dr, i, 7), "t") == 0));
			json_object_array_add(da, d);
		}
		json_object_object_add(o, "hosts", ha);
		json_object_object_add(o, "days", da);
		{
			struct json_object *la = json_object_new_array();

			for (size_t i = 0; i < db_res_rows(lr); i++) {
				struct json_object *l = json_object_new_object();
				int64_t n = 0;

				db_res_int(lr, i, 1, &n);
				json_object_object_add(l, "node", json_object_new_string(db_res_get(lr, i, 0)));
				json_object_object_add(l, "reports", json_object_new_int64(n));
				json_object_object_add(l, "until", json_object_new_string(db_res_get(lr, i, 2)));
				json_object_array_add(la, l);
			}
			json_object_object_add(o, "undelivered", la);
		}
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		printf("database %s, schema version %d\n", db_target(db), version);
		printf("%-32s %-21s %6s  %-10s  %s\n", "host", "last push (UTC)", "days", "last day",
		       "complete through");
		for (size_t i = 0; i < db_res_rows(hr); i++)
			printf("%-32s %-21s %6s  %-10s  %s\n", db_res_get(hr, i, 0), db_res_get(hr, i, 1),
			       db_res_get(hr, i, 2), db_res_get(hr, i, 3), db_res_get(hr, i, 4));
		printf("\n%-10s %6s %6s %12s %12s %8s %8s  %s\n", "day", "hosts", "final", "sessions",
		       "failed", "reports", "late", "reported");
		for (size_t i = 0; i < db_res_rows(dr); i++)
			printf("%-10s %6s %6s %12s %12s %8s %8s  %s\n", db_res_get(dr, i, 0),
			       db_res_get(dr, i, 1), db_res_get(dr, i, 2), db_res_get(dr, i, 3),
			       db_res_get(dr, i, 4), db_res_get(dr, i, 5), db_res_get(dr, i, 6),
			       strcmp(db_res_get(dr, i, 7), "t") == 0 ? "yes" : "no");
		printf("\nreports with deliveries still to make: by node delivering them (- for none)\n");
		for (size_t i = 0; i < db_res_rows(lr); i++)
			printf("  %-32s %8s  lease until %s\n", db_res_get(lr, i, 0), db_res_get(lr, i, 1),
			       db_res_get(lr, i, 2));
	}
	db_res_free(hr);
	db_res_free(dr);
	db_res_free(lr);
	db_close(db);
	return CTL_OK;
}

int ctl_db(int argc, char **argv, const struct conf *c)
{
	if (argc < 2)
		return db_usage();
	optind = 0;	/* a fresh getopt over "VERB ARGS..." */
	if (strcmp(argv[1], "init") == 0)
		return cmd_init(argc - 1, argv + 1, c);
	if (strcmp(argv[1], "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1, c);
	if (strcmp(argv[1], "status") == 0)
		return cmd_status(argc - 1, argv + 1, c);
	return db_usage();
}
