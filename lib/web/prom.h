/*
 * prom - metrics in the Prometheus text exposition format (version 0.0.4),
 * as node_exporter's textfile collector reads them.
 *
 * A family is declared once (prom_family: # HELP and # TYPE lines), then
 * its samples follow (prom_sample); families must not interleave. Label
 * values are untrusted text: backslash, double quote and newline are
 * escaped as the format says, invalid UTF-8 becomes U+FFFD, and values
 * are cut at PROM_LABEL_MAX bytes. Names are ours (not checked).
 * prom_write_file replaces a file atomically (temporary file in the same
 * directory, fsync, rename), so the collector never reads half a file.
 *
 * Not thread safe: one owner.
 */
#ifndef TLSRPT_PROM_H
#define TLSRPT_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PROM_LABEL_MAX 256

/* 'help' is ours; type is "counter" or "gauge". */
void prom_family(struct buf *b, const char *name, const char *type, const char *help);

/* One sample: name{k1="v1",...} value. 'labels' are name/value pairs
 * ending with NULL (may be NULL for none). */
void prom_sample(struct buf *b, const char *name, const char *const *labels, double value);

/* Write 'b' to 'path' atomically, mode 0644. 0, or -1 with 'err'. */
int prom_write_file(const struct buf *b, const char *path, char *err, size_t errsz);

#endif
