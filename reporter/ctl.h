/*
 * ctl - subcommands of tlsrptctl, one file each; tlsrptctl.c dispatches.
 *
 * Each takes the arguments after its own name (argv[0] is the subcommand
 * name) and the loaded configuration, prints to stdout/stderr and returns an
 * exit status that scripts can rely on:
 */
#ifndef TLSRPT_CTL_H
#define TLSRPT_CTL_H

#include <stdint.h>

#include "conf.h"

#define CTL_OK 0		/* done */
#define CTL_EMPTY 1		/* nothing found (no such day, id, domain) */
#define CTL_ALERT 2		/* received check: something new to look at */
#define CTL_USAGE 64		/* bad command line (sysexits EX_USAGE) */
#define CTL_DATAERR 65		/* bad input data (a corrupt file) */
#define CTL_UNAVAILABLE 69	/* a service or lookup failed */
#define CTL_SOFTWARE 70		/* internal error */
#define CTL_IOERR 74		/* reading or writing failed */

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

#endif
