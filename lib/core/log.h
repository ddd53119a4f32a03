/*
 * log - messages to stderr or syslog, with severities and rate limiting.
 *
 * Severities follow the project's rule: log_warn for bad input that was
 * dropped or repaired (the program goes on), log_err for an operation that
 * failed, log_fatal for setup that is impossible (main() exits after it).
 * Library code never exits; it logs and returns an error.
 *
 * Untrusted text must go through log_printable() (or the %s of a
 * log_warn_limited() call site passes it already cleaned) so that a remote
 * server cannot write control characters into the log.
 *
 * Thread safety: all functions may be called from any thread after
 * log_init(); rate-limit state is per call site and updated atomically.
 */
#ifndef TLSRPT_LOG_H
#define TLSRPT_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG };

/* Start logging as 'ident' (program name) to 'target'. 'verbose' enables
 * log_debug output. May be called again (SIGHUP) to reopen. */
void log_init(const char *ident, enum log_target target, int verbose);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Is log_debug output on (to skip building what it would print)? */
bool log_debug_on(void);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A rate-limited warning site: at most 'burst' lines per 'interval' seconds;
 * suppressed lines are counted and reported with the next line that passes.
 * Declare one static struct per call site, zero-initialised.
 */
struct log_limit {
	int64_t window_start;	/* seconds, monotonic */
	uint32_t in_window;	/* lines logged in this window */
	uint64_t suppressed;	/* lines dropped since the last logged one */
};
void log_warn_limited(struct log_limit *lim, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Copy at most 'len' bytes of untrusted 'in' into 'out' (size 'outsz',
 * always NUL terminated), replacing control characters and non-ASCII bytes
 * by \xHH escapes and cutting with "..." when it does not fit. Returns out.
 */
char *log_printable(char *out, size_t outsz, const char *in, size_t len);

#endif
