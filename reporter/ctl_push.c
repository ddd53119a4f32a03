/*
 * ctl_push - `tlsrptctl push`: send this host's day files to the fleet
 * database (lib/fleet/push.h). Run by tlsrpt-push.timer every 5 minutes.
 *
 *   push [--day YYYY-MM-DD] [--all] [--now UNIXTIME]
 *
 * --day pushes one day only; --all also re-reads days the database already
 * has as final (after restoring the database from a backup); --now sets the
 * host's clock (tests).
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
#include "store.h"

const char ctl_push_usage[] =
	"push [--day YYYY-MM-DD] [--all] [--now UNIXTIME]\n"
	"    send this host's day files to the fleet database (fleet_database); every\n"
	"    day not final there, or only --day; --all also the final ones; --now sets\n"
	"    the host's clock (tests)\n";

int ctl_push(int argc, char **argv, const struct conf *c)
{
	static const struct option opts[] = {
		{ "day", required_argument, NULL, 'd' },
		{ "all", no_argument, NULL, 'a' },
		{ "now", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct push_opts o;
	struct push_stats st;
	char host[PUSH_HOST_MAX + 1], mid[40], err[1024];
	struct db *db;
	enum db_status rs;
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
		if (rc == CTL_UNAVAILABLE)
			fprintf(stderr, "tlsrptctl: push: nothing pushed; the day files in %s/days "
				"stay the source of truth and the next push sends them\n",
				conf_str(c, "state_directory"));
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
