/*
 * ctl - subcommands of tlsrptctl, one file each; tlsrptctl.c dispatches.
 *
 * Each takes the arguments after its own name (argv[0] is the subcommand
 * name) and the loaded configuration, prints to stdout/stderr and returns an
 * exit status that scripts can rely on (sysexits.h where one fits):
 */
#ifndef TLSRPT_CTL_H
#define TLSRPT_CTL_H

#include <stdint.h>

#include "conf.h"

#define CTL_OK 0		/* done (also: listed, and the list is empty) */
#define CTL_EMPTY 1		/* nothing found (no such day, id, domain) */
#define CTL_ALERT 2		/* received check: something new to look at */
#define CTL_USAGE 64		/* bad command line (sysexits EX_USAGE) */
#define CTL_DATAERR 65		/* bad input data (a corrupt file) */
#define CTL_UNAVAILABLE 69	/* a service or lookup failed */
#define CTL_SOFTWARE 70		/* internal error */
#define CTL_IOERR 74		/* reading or writing failed */
#define CTL_NOPERM 77		/* permission denied (EX_NOPERM) */
#define CTL_CONFIG 78		/* the configuration is wrong (EX_CONFIG) */

/*
 * Each subcommand's usage: one line per form, "NAME ARGS" then two spaces
 * and what it does. tlsrptctl -h prints them all; "tlsrptctl NAME -h" (or
 * --help anywhere among its arguments) prints its own, on stdout, exit 0;
 * a usage error prints it on stderr (ctl_usage).
 */
extern const char ctl_stats_usage[], ctl_dump_usage[];	/* ctl_collector.c */
extern const char ctl_spool_usage[];			/* ctl_spool.c */
extern const char ctl_received_usage[];			/* ctl_received.c */
extern const char ctl_record_usage[];			/* ctl_record.c */
extern const char ctl_sts_usage[];			/* ctl_sts.c */
extern const char ctl_dkim_usage[];			/* ctl_dkim.c */
extern const char ctl_dashboard_usage[];		/* ctl_dashboard.c */
extern const char ctl_metrics_usage[];			/* ctl_metrics.c */
extern const char ctl_push_usage[];			/* ctl_push.c */
extern const char ctl_db_usage[];			/* ctl_db.c */

/* Print a subcommand's usage on stderr (after a usage error); CTL_USAGE. */
int ctl_usage(const char *usage);

/*
 * The exit status for a failure whose message 'err' (as the libraries
 * write them, with strerror) or errno 'e' says why: CTL_NOPERM for
 * "Permission denied" and "Operation not permitted", else 'otherwise'.
 */
int ctl_status_of(const char *err, int otherwise);
int ctl_errno_status(int e, int otherwise);

int ctl_stats(int argc, char **argv, const struct conf *c);	/* ctl_collector.c */
int ctl_dump(int argc, char **argv, const struct conf *c);	/* ctl_collector.c */
int ctl_spool(int argc, char **argv, const struct conf *c);	/* ctl_spool.c */
int ctl_received(int argc, char **argv, const struct conf *c);	/* ctl_received.c */
int ctl_record(int argc, char **argv, const struct conf *c);	/* ctl_record.c */
int ctl_sts(int argc, char **argv, const struct conf *c);	/* ctl_sts.c */
int ctl_dkim(int argc, char **argv, const struct conf *c);	/* ctl_dkim.c */
int ctl_dashboard(int argc, char **argv, const struct conf *c);	/* ctl_dashboard.c */
int ctl_check(int argc, char **argv, const struct conf *c);	/* ctl_check.c: received check */
int ctl_metrics(int argc, char **argv, const struct conf *c);	/* ctl_metrics.c */

/* --now arguments: "YYYY-MM-DD" (noon UTC) or RFC 3339; 0 or -1 (ctl_dashboard.c). */
int ctl_parse_now(const char *s, int64_t *out);
int ctl_db(int argc, char **argv, const struct conf *c);	/* ctl_db.c */
int ctl_push(int argc, char **argv, const struct conf *c);	/* ctl_push.c */

/* Fleet helpers (ctl_db.c): connect with the fleet_* settings (with the
 * schema version checked), printing why not and setting *rc (CTL_CONFIG
 * for settings, CTL_UNAVAILABLE for a database that cannot be reached or
 * has another schema version); the exit status of a db_status. */
#include "db.h"
struct db *ctl_db_open(const struct conf *c, const char *app, bool check_schema, int *rc);
int ctl_exit_db(enum db_status st);

/* What the readers (received summary/show/rejected/check, metrics, the
 * dashboard) read: in fleet mode the fleet database (every host's received
 * reports; the reports every reporter node built), else the local
 * received_directory and spool_directory. 0 / a spool, or -1 / NULL with
 * 'err'. *db is the spool's connection in fleet mode: close it after
 * spool_close (NULL otherwise). */
struct received_store;
struct spool;
int ctl_received_open(const struct conf *c, struct received_store **rs, char *err, size_t errsz);
struct spool *ctl_spool_open_read(const struct conf *c, struct db **db, char *err, size_t errsz);

#endif
