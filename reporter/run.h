/*
 * run - what both ways of reporting share (tlsrpt-report.c for a single
 * host, report_fleet.c for a fleet through the database): the options of
 * `tlsrpt-report run`, the stable delay of a day, where a report goes
 * (rua_source), the archive copies, and the transport that delivers a
 * batch of attempts by mail and HTTPS.
 */
#ifndef TLSRPT_RUN_H
#define TLSRPT_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "buf.h"
#include "conf.h"
#include "report.h"
#include "spool.h"
#include "tlsrpt_record.h"

#define RUN_MAX_INPUTS 256

struct run_opts {
	const char *config;
	bool check_only, verbose, dry_run;
	int64_t day;		/* -1: all pending */
	int64_t now;
	const char *inputs[RUN_MAX_INPUTS];
	size_t ninputs;
};

/* A stable pseudo-random delay in [0, max] for 'day', so that hourly runs
 * (and every node of a fleet) agree on when a day goes out. */
int64_t run_day_delay(int64_t day, int64_t max);

enum run_resolve { RUN_OK, RUN_NONE, RUN_TEMPFAIL };

/* Where reports of 'd' go (rua_source); *source says which record was used;
 * 'rec' is filled on RUN_OK (tlsrpt_record_free it), 'why' says why not. */
enum run_resolve run_resolve(const struct conf *c, const struct agg_domain *d,
			     struct tlsrpt_record *rec, const char **source,
			     char *why, size_t whysz);

/* The destinations of 'rec' that delivery_mail / delivery_https allow;
 * returns how many were written to 'dests' (TLSRPT_MAX_RUA entries). */
size_t run_dests(const struct conf *c, const char *domain, const struct tlsrpt_record *rec,
		 struct spool_dest_spec *dests);

/* --dry-run: print one report with its destinations. */
void run_print_dry(const struct conf *c, const struct report *r, const struct agg_domain *d,
		   const struct spool_dest_spec *dests, size_t nd, const char *source,
		   const char *why);

/*
 * Archive copies (report_archive_address): the copies of the reports
 * stored since the last commit, mailed by run_archive_flush once the
 * commit has made their reports durable (or dropped when it failed).
 * At most RUN_ARCHIVE_MAX between two flushes.
 */
#define RUN_ARCHIVE_MAX 512
struct run_archive {
	const char *address;		/* report_archive_address */
	struct buf msg[RUN_ARCHIVE_MAX];
	char id[RUN_ARCHIVE_MAX][48];	/* spool ids, for the log */
	size_t n;
};
void run_archive_add(const struct conf *c, struct run_archive *q, const struct report *r,
		     int64_t now);
void run_archive_flush(const struct conf *c, struct run_archive *q, bool send);

/* The transport (spool.h): mail one message at a time in a thread of its
 * own, HTTPS posts beside it, each outcome handed to 'done' at once.
 * 'ctx' is the struct conf. */
void run_send_jobs(void *ctx, struct spool_job *jobs, size_t n, int64_t now,
		   spool_done_fn done, void *done_arg);

#endif
