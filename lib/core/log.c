/*
 * log - messages to stderr or syslog, with severities and rate limiting.
 * See log.h for the contract.
 */
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define LIMIT_BURST 10		/* lines per window and call site */
#define LIMIT_INTERVAL 60	/* seconds */

static enum log_target log_target = LOG_TO_STDERR;
static int log_verbose;
static char log_ident[64] = "tlsrptd";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(const char *ident, enum log_target target, int verbose)
{
	pthread_mutex_lock(&log_lock);
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	if (log_target == LOG_TO_SYSLOG)
		closelog();
	log_target = target;
	log_verbose = verbose;
	if (target == LOG_TO_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	pthread_mutex_unlock(&log_lock);
}

static void log_vemit(int prio, const char *tag, const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_target == LOG_TO_SYSLOG) {
		syslog(prio, "%s%s", tag, line);
		return;
	}
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s: %s%s\n", log_ident, tag, line);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

#define LOG_FN(name, prio, tag, cond)			\
void name(const char *fmt, ...)				\
{							\
	va_list ap;					\
	if (!(cond))					\
		return;					\
	va_start(ap, fmt);				\
	log_vemit(prio, tag, fmt, ap);			\
	va_end(ap);					\
}

LOG_FN(log_debug, LOG_DEBUG, "debug: ", log_verbose)

bool log_debug_on(void)
{
	return log_verbose != 0;
}
LOG_FN(log_info, LOG_INFO, "", 1)
LOG_FN(log_warn, LOG_WARNING, "warning: ", 1)
LOG_FN(log_err, LOG_ERR, "error: ", 1)
LOG_FN(log_fatal, LOG_CRIT, "fatal: ", 1)

static int64_t monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

void log_warn_limited(struct log_limit *lim, const char *fmt, ...)
{
	char line[1800];
	va_list ap;
	int64_t now = monotonic_seconds();
	uint64_t suppressed;

	pthread_mutex_lock(&log_lock);
	if (now - lim->window_start >= LIMIT_INTERVAL) {
		lim->window_start = now;
		lim->in_window = 0;
	}
	if (lim->in_window >= LIMIT_BURST) {
		lim->suppressed++;
		pthread_mutex_unlock(&log_lock);
		return;
	}
	lim->in_window++;
	suppressed = lim->suppressed;
	lim->suppressed = 0;
	pthread_mutex_unlock(&log_lock);

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (suppressed)
		log_warn("%s (%llu similar warnings suppressed)", line,
			 (unsigned long long)suppressed);
	else
		log_warn("%s", line);
}

char *log_printable(char *out, size_t outsz, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (outsz == 0)
		return out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;

		if (o + need + 4 > outsz) {	/* room for "..." and NUL */
			if (o + 4 <= outsz) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}
