/*
 * report_fleet - `tlsrpt-report run` in fleet mode (fleet_database set):
 * the reports of every host's results, from the database, built and
 * delivered by whichever reporter node gets to them, each exactly once.
 *
 * A run, on any number of nodes at the same time:
 *   1. the completed days that are due (midnight UTC + the day's stable
 *      delay up to report_delay, the same on every node) and ready (every
 *      active host pushed the day final, or fleet_push_wait has passed);
 *   2. for each, the work items (day, TLSRPT domain, record) are claimed 64
 *      at a time with FOR UPDATE SKIP LOCKED; each report is built from the
 *      day as the database has it (byte for byte what `--input` of the same
 *      day files builds: the same merge, report-id and gzip) and inserted in
 *      the claim's transaction (fleetday.h);
 *   3. delivery (spool.c over spool_db): the reports with work due are
 *      leased to this node; each attempt is recorded in flight before it is
 *      made and its outcome as soon as it is known, as in single-host mode.
 *      A node that dies is taken over by the next run of any node: the
 *      attempts it had in flight are recorded as interrupted and made again
 *      (at-least-once: only those can arrive twice, as in single-host mode).
 *   4. pruning: spool records, and counts older than spool_retention.
 * A database that goes away ends the run with exit 75: what was committed
 * stays, the rest is done by the next run.
 */
#ifndef TLSRPT_REPORT_FLEET_H
#define TLSRPT_REPORT_FLEET_H

#include "conf.h"
#include "report.h"
#include "run.h"

/* The run; returns the exit status (sysexits). */
int fleet_run(const struct conf *c, const struct run_opts *o, const struct report_identity *id);

#endif
