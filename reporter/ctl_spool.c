/*
 * ctl_spool - `tlsrptctl spool`: look at and nudge the reporter's spool.
 *
 *   spool list [--json]   one line per report: id, day, domain, status,
 *                         destinations delivered/total, next attempt; an
 *                         empty (or not yet created) spool says so, exit 0
 *   spool show ID         the report JSON (pretty) and every destination's
 *                         delivery history
 *   spool retry ID        make failed, given-up, suppressed and rejected destinations
 *                         due now (the next tlsrpt-report run delivers)
 *
 * list and show only read; retry takes the spool lock, so it fails while
 * tlsrpt-report is running (exit CTL_UNAVAILABLE; try again). A spool the
 * caller may not read (or, for retry, write) is CTL_NOPERM.
 *
 * In fleet mode (fleet_database set) the spool is the fleet database's
 * (lib/fleet/spool_db.h): every report of every reporter node; retry
 * leases the one report (CTL_UNAVAILABLE while a live node delivers it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>

#include "ctl.h"
#include "db.h"
#include "jget.h"
#include "privs.h"
#include "report.h"
#include "spool.h"
#include "spool_db.h"

const char ctl_spool_usage[] =
	"spool list [--json]\n"
	"    every report built: id, day, state, destinations delivered, next attempt\n"
	"spool show ID\n"
	"    one report's JSON and the delivery history of each destination\n"
	"spool retry ID\n"
	"    make its failed, given-up and suppressed destinations due now\n";

static void fmt_time(int64_t t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t < 0 || gmtime_r(&tt, &tm) == NULL) {
		snprintf(out, outsz, "-");
		return;
	}
	strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Earliest next-attempt of the pending destinations, -1 if none. */
static int64_t next_attempt(struct json_object *dests, size_t *delivered)
{
	int64_t next = -1;

	*delivered = 0;
	for (size_t i = 0; i < json_object_array_length(dests); i++) {
		struct json_object *d = json_object_array_get_idx(dests, i);
		const char *st = jget_str(d, "state");
		int64_t n = jget_int_or(d, "next-attempt", -1);

		if (st && strcmp(st, "delivered") == 0)
			(*delivered)++;
		if (st && strcmp(st, "pending") == 0 && n >= 0 && (next < 0 || n < next))
			next = n;
	}
	return next;
}

static int spool_list(struct spool *s, bool json)
{
	char **ids;
	size_t n;
	struct json_object *arr = json ? json_object_new_array() : NULL;

	if (spool_ids(s, &ids, &n) != 0) {
		int e = errno;

		fprintf(stderr, "tlsrptctl: cannot read the spool: %s\n", strerror(e));
		json_object_put(arr);
		return ctl_errno_status(e, CTL_IOERR);
	}
	if (!json && n == 0)
		printf("the spool is empty: no report has been built\n");
	if (!json && n > 0)
		printf("%-25s %-10s %-15s %-9s %-20s %s\n", "ID", "DAY", "STATUS", "DELIVERED",
		       "NEXT-ATTEMPT", "POLICY-DOMAIN");
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = spool_entry(s, ids[i]), *meta = NULL, *dests = NULL;
		size_t delivered;
		int64_t next;
		char nb[32];

		if (e == NULL) {
			fprintf(stderr, "tlsrptctl: spool entry %s is unreadable\n", ids[i]);
			continue;
		}
		json_object_object_get_ex(e, "meta", &meta);
		json_object_object_get_ex(e, "destinations", &dests);
		next = next_attempt(dests, &delivered);
		if (json) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "id", json_object_new_string(ids[i]));
			json_object_object_add(o, "day", json_object_new_string(jget_text(meta, "day")));
			json_object_object_add(o, "policy-domain", json_object_new_string(jget_text(meta, "policy-domain")));
			json_object_object_add(o, "report-id", json_object_new_string(jget_text(meta, "report-id")));
			json_object_object_add(o, "status", json_object_new_string(jget_str(e, "status")));
			json_object_object_add(o, "destinations", json_object_new_int64((int64_t)json_object_array_length(dests)));
			json_object_object_add(o, "delivered", json_object_new_int64((int64_t)delivered));
			json_object_object_add(o, "successes", json_object_new_int64(jget_int(meta, "successes")));
			json_object_object_add(o, "failures", json_object_new_int64(jget_int(meta, "failures")));
			json_object_object_add(o, "next-attempt", next >= 0 ? json_object_new_int64(next) : NULL);
			json_object_array_add(arr, o);
		} else {
			char dd[48];

			fmt_time(next, nb, sizeof(nb));
			snprintf(dd, sizeof(dd), "%zu/%zu", delivered, json_object_array_length(dests));
			printf("%-25s %-10s %-15s %-9s %-20s %s\n", ids[i],
			       jget_str(meta, "day") ? jget_str(meta, "day") : "?",
			       jget_str(e, "status"), dd, next >= 0 ? nb : "-",
			       jget_str(meta, "policy-domain") ? jget_str(meta, "policy-domain") : "?");
		}
		json_object_put(e);
	}
	if (json)
		printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
	spool_ids_free(ids, n);
	return CTL_OK;
}

static int spool_show(struct spool *s, const char *id)
{
	struct json_object *e = spool_entry(s, id), *meta = NULL, *dests = NULL, *rep;
	unsigned char *gz;
	size_t gzlen, jlen;
	char *json, t1[32], t2[32];

	if (e == NULL) {
		fprintf(stderr, "tlsrptctl: no report %s in the spool\n", id);
		return CTL_EMPTY;
	}
	json_object_object_get_ex(e, "meta", &meta);
	json_object_object_get_ex(e, "destinations", &dests);
	printf("id:            %s\n", id);
	printf("status:        %s\n", jget_str(e, "status"));
	printf("policy domain: %s\n", jget_str(meta, "policy-domain") ? jget_str(meta, "policy-domain") : "?");
	printf("day:           %s\n", jget_str(meta, "day") ? jget_str(meta, "day") : "?");
	printf("report-id:     %s\n", jget_str(meta, "report-id") ? jget_str(meta, "report-id") : "?");
	printf("filename:      %s\n", jget_str(meta, "filename") ? jget_str(meta, "filename") : "?");
	printf("record:        %s (destinations from: %s)\n",
	       jget_text(meta, "record"),
	       jget_str(meta, "destination-source") ? jget_str(meta, "destination-source") : "?");
	fmt_time(jget_int_or(meta, "created", -1), t1, sizeof(t1));
	printf("created:       %s\n", t1);
	printf("sessions:      %lld successful, %lld failed\n",
	       (long long)jget_int(meta, "successes"), (long long)jget_int(meta, "failures"));
	printf("\ndeliveries:\n");
	if (json_object_array_length(dests) == 0)
		printf("  (no destinations)\n");
	for (size_t i = 0; i < json_object_array_length(dests); i++) {
		struct json_object *d = json_object_array_get_idx(dests, i), *att;
		const char *uri = jget_str(d, "uri"), *state = jget_str(d, "state");

		printf("  %s: %s", uri ? uri : "?", state ? state : "?");
		if (jget_int_or(d, "next-attempt", -1) >= 0) {
			fmt_time(jget_int_or(d, "next-attempt", -1), t1, sizeof(t1));
			printf(", next attempt %s", t1);
		}
		if (jget_int_or(d, "delivered-at", -1) >= 0) {
			fmt_time(jget_int_or(d, "delivered-at", -1), t1, sizeof(t1));
			printf(" at %s by %s: %s", t1, jget_str(d, "delivered-by") ? jget_str(d, "delivered-by") : "?",
			       jget_text(d, "response"));
		}
		printf("\n");
		if (json_object_object_get_ex(d, "attempts", &att) && json_object_is_type(att, json_type_array))
			for (size_t k = 0; k < json_object_array_length(att); k++) {
				struct json_object *a = json_object_array_get_idx(att, k), *ok;

				fmt_time(jget_int_or(a, "start", -1), t1, sizeof(t1));
				fmt_time(jget_int_or(a, "end", -1), t2, sizeof(t2));
				printf("    %s  %s  status %lld  %s\n", t1,
				       json_object_object_get_ex(a, "ok", &ok) && json_object_get_boolean(ok)
				       ? "ok    " : "failed", (long long)jget_int(a, "status"),
				       jget_text(a, "detail"));
			}
	}
	json_object_put(e);
	printf("\nreport:\n");
	if (spool_report_gz(s, id, &gz, &gzlen) != 0) {
		printf("  (report.json.gz is missing)\n");
		return CTL_DATAERR;
	}
	if (report_gunzip(gz, gzlen, 64u * 1024 * 1024, &json, &jlen) != 0) {
		free(gz);
		printf("  (report.json.gz is corrupt)\n");
		return CTL_DATAERR;
	}
	free(gz);
	rep = json_tokener_parse(json);
	printf("%s\n", rep ? json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY |
							    JSON_C_TO_STRING_NOSLASHESCAPE) : json);
	json_object_put(rep);
	free(json);
	return CTL_OK;
}

/* The fleet database's spool; *db is its connection (close it after the
 * spool). NULL with the message printed and *rc set. */
static struct spool *open_fleet(const struct conf *c, bool write, struct db **db, int *rc)
{
	char err[1024];
	enum db_status st;
	struct spool *s = spool_db_open_conf(c, "tlsrptctl spool", write, db, &st, err, sizeof(err));

	if (s == NULL) {
		fprintf(stderr, "tlsrptctl: fleet spool: %s\n", err);
		*rc = st == DB_ERROR ? ctl_status_of(err, CTL_CONFIG) : CTL_UNAVAILABLE;
	}
	return s;
}

int ctl_spool(int argc, char **argv, const struct conf *c)
{
	const char *dir = conf_str(c, "spool_directory");
	struct spool *s;
	struct db *db = NULL;
	char err[512];
	int rc;

	if (argc < 2)
		return ctl_usage(ctl_spool_usage);
	if (strcmp(argv[1], "list") == 0) {
		bool json = false;
		struct stat st;

		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--json") == 0)
				json = true;
			else
				return ctl_usage(ctl_spool_usage);
		}
		if (db_configured(c)) {
			if ((s = open_fleet(c, false, &db, &rc)) == NULL)
				return rc;
		} else {
			if (stat(dir, &st) != 0 && errno == ENOENT) {
				/* no report built yet: tlsrpt-report creates the spool */
				printf(json ? "[]\n" : "the spool is empty: %s does not exist yet\n", dir);
				return CTL_OK;
			}
			s = spool_open(dir, false, err, sizeof(err));
			if (s == NULL) {
				fprintf(stderr, "tlsrptctl: spool %s\n", err);
				return ctl_status_of(err, CTL_IOERR);
			}
		}
		rc = spool_list(s, json);
		spool_close(s);
		db_close(db);
		return rc;
	}
	if ((strcmp(argv[1], "show") == 0 || strcmp(argv[1], "retry") == 0) && argc == 3) {
		bool retry = argv[1][0] == 'r';

		if (db_configured(c)) {
			if ((s = open_fleet(c, retry, &db, &rc)) == NULL)
				return rc;
		} else if (retry && privs_become_owner_of(dir, err, sizeof(err)) != 0) {
			/* run as root, write the spool as its owner: no root files in it */
			fprintf(stderr, "tlsrptctl: cannot act as the owner of the spool, "
				"refusing to write it as root: %s\n", err);
			return CTL_IOERR;
		} else if ((s = spool_open(dir, retry, err, sizeof(err))) == NULL) {
			fprintf(stderr, "tlsrptctl: spool %s\n", err);
			if (strstr(err, strerror(ENOENT)))
				return CTL_EMPTY;	/* no spool: no such report */
			return ctl_status_of(err, retry ? CTL_UNAVAILABLE : CTL_IOERR);
		}
		if (!retry) {
			rc = spool_show(s, argv[2]);
		} else if (!spool_has(s, argv[2])) {
			fprintf(stderr, "tlsrptctl: no report %s in the spool\n", argv[2]);
			rc = CTL_EMPTY;
		} else {
			size_t changed = 0;

			errno = 0;
			if (spool_retry(s, argv[2], (int64_t)time(NULL), &changed, err, sizeof(err)) != 0) {
				fprintf(stderr, "tlsrptctl: %s\n", err);
				rc = errno == EBUSY ? CTL_UNAVAILABLE : ctl_status_of(err, CTL_IOERR);
			} else {
				printf("%s: %zu destination(s) due now\n", argv[2], changed);
				rc = CTL_OK;
			}
		}
		spool_close(s);
		db_close(db);
		return rc;
	}
	return ctl_usage(ctl_spool_usage);
}
