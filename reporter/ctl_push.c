/*
 * ctl_push - `tlsrptctl push`: send this host's day files to the fleet
 * database (lib/fleet/push.h). Run by tlsrpt-push.timer every 5 minutes.
 *
 *   push [--day YYYY-MM-DD] [--all] [--now UNIXTIME]
 *   push --received
 *
 * --day pushes one day only; --all also re-reads days the database already
 * has as final (after restoring the database from a backup); --now sets the
 * host's clock (tests).
 *
 * --received sends the local received store instead (run by
 * tlsrpt-push-received.timer as tlsrpt-milter's user on inbound MX hosts;
 * lib/fleet/received_db.h says why the milter does not write to the
 * database itself).
 *
 * Why a separate command and not a mode of tlsrptd: the collector keeps no
 * network access and its receiving thread never waits on anything but its
 * socket; the push reads the day files read-only, like any reader, and a
 * slow or unreachable database can only delay the push, never a datagram.
 *
 * Exit: 0 done; 69 the database is unreachable (nothing is lost: the day
 * files stay the source of truth and the next push sends them); 65 a day
 * file failed validation (the others were pushed); 64 usage; 78 fleet
 * settings; 70 other.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "db.h"
#include "log.h"
#include "push.h"
#include "received.h"
#include "received_db.h"
#include "store.h"

const char ctl_push_usage[] =
	"push [--day YYYY-MM-DD] [--all] [--now UNIXTIME]\n"
	"    send this host's day files to the fleet database (fleet_database); every\n"
	"    day not final there, or only --day; --all also the final ones; --now sets\n"
	"    the host's clock (tests)\n"
	"push --received\n"
	"    send the reports tlsrpt-milter stored here (received_directory) since the\n"
	"    last push\n";

/* push --received: the local received store, since the last push. */
static int push_received(const struct conf *c, struct db *db, const struct push_opts *o,
			 const char *host)
{
	struct received_push_stats st;
	struct received_store *rs;
	char err[1024];
	enum db_status s;
	int host_id = 0;

	if (received_open(conf_str(c, "received_directory"), &rs, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		return ctl_status_of(err, CTL_IOERR);
	}
	if ((s = push_register(db, host, o->machine_id, &host_id, err, sizeof(err))) == DB_OK)
		s = received_db_push(db, host_id, rs, &st, err, sizeof(err));
	received_close(rs);
	if (s != DB_OK) {
		fprintf(stderr, "tlsrptctl: push --received: %s\n", err);
		if (s == DB_UNAVAILABLE)
			fprintf(stderr, "tlsrptctl: push --received: nothing is lost: the reports stay in "
				"%s and the next push sends what is not in the database yet\n",
				conf_str(c, "received_directory"));
		return ctl_exit_db(s);
	}
	printf("host %s: %zu index line(s): %zu report(s) new in the database, %zu there already, "
	       "%zu whose file is gone\n", host, st.lines, st.inserted, st.duplicates, st.missing);
	return CTL_OK;
}

int ctl_push(int argc, char **argv, const struct conf *c)
{
	static const struct option opts[] = {
		{ "day", required_argument, NULL, 'd' },
		{ "all", no_argument, NULL, 'a' },
		{ "now", required_argument, NULL, 'n' },
		{ "received", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct push_opts o;
	struct push_stats st;
	char host[PUSH_HOST_MAX + 1], mid[40], err[1024];
	struct db *db;
	enum db_status rs;
	bool received = false;
	int opt, rc;

	memset(&o, 0, sizeof(o));
	o.day = -1;
	o.now = (int64_t)time(NULL);
	o.max_age = conf_int(c, "fleet_push_max_age");
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if ((o.day = store_parse_day(optarg)) < 0) {
				fprintf(stderr, "tlsrptctl: bad day \"%s\" (want YYYY-MM-DD)\n", optarg);
				return ctl_usage(ctl_push_usage);
			}
			break;
		case 'a': o.all = true; break;
		case 'r': received = true; break;
		case 'n': {
			char *end;
			long long v;

			errno = 0;
			v = strtoll(optarg, &end, 10);
			if (errno || *end || v < 0) {
				fprintf(stderr, "tlsrptctl: --now %s: want Unix seconds\n", optarg);
				return ctl_usage(ctl_push_usage);
			}
			o.now = v;
			break;
		}
		default:
			return ctl_usage(ctl_push_usage);
		}
	}
	if (optind < argc)
		return ctl_usage(ctl_push_usage);
	if (push_host_name(c, host, sizeof(host), err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		return CTL_CONFIG;
	}
	push_machine_id(mid, sizeof(mid));
	o.host = host;
	o.machine_id = mid;
	if ((db = ctl_db_open(c, "tlsrptctl push", true, &rc)) == NULL) {
		if (rc == CTL_UNAVAILABLE && received)
			fprintf(stderr, "tlsrptctl: push --received: nothing pushed; nothing is lost: the "
				"reports stay in %s and the next push sends them\n",
				conf_str(c, "received_directory"));
		else if (rc == CTL_UNAVAILABLE)
			fprintf(stderr, "tlsrptctl: push: nothing pushed; the day files in %s/days "
				"stay the source of truth and the next push sends them\n",
				conf_str(c, "state_directory"));
		return rc;
	}
	if (received) {
		rc = push_received(c, db, &o, host);
		db_close(db);
		return rc;
	}
	rs = push_run(db, conf_str(c, "state_directory"), &o, &st, err, sizeof(err));
	db_close(db);
	if (rs == DB_UNAVAILABLE) {
		fprintf(stderr, "tlsrptctl: push: %s\n", err);
		fprintf(stderr, "tlsrptctl: push: %zu day(s) pushed before the database went away; "
			"nothing is lost: the day files stay the source of truth and the next push "
			"sends the rest\n", st.pushed);
		return CTL_UNAVAILABLE;
	}
	printf("host %s: %zu day file(s): %zu pushed, %zu unchanged, %zu final already, "
	       "%zu unreadable (%llu policies, %llu failure details sent)\n", host, st.days,
	       st.pushed, st.unchanged, st.final_skipped, st.bad_files,
	       (unsigned long long)st.policies, (unsigned long long)st.details);
	if (rs != DB_OK) {
		fprintf(stderr, "tlsrptctl: push: %s\n", err);
		return ctl_exit_db(rs);
	}
	return st.bad_files ? CTL_DATAERR : CTL_OK;
}
