/*
 * cmdline - the command line every tlsrptd daemon takes, and loading its
 * configuration:
 *
 *   PROG [-c FILE] [-f] [-n] [-v] [-o key=value]... [-h | --help]
 *
 * -c names the configuration file (default: 'default_config' if it exists,
 * else the built-in defaults); -o sets keys after the file; -f runs in the
 * foreground with logs on stderr; -n checks the configuration; -v is verbose;
 * -h and --help print the usage on stdout. Logging is started (log_init)
 * before the configuration is read, so every error has its program's name.
 * Every error and warning of the configuration is logged (all of them, not
 * only the first).
 */
#ifndef TLSRPT_CMDLINE_H
#define TLSRPT_CMDLINE_H

#include <stdbool.h>

#include "conf.h"

struct cmdline {
	const char *config;	/* the file read, or NULL: defaults only */
	bool foreground;	/* -f */
	bool check;		/* -n */
	int verbose;		/* number of -v */
};

/*
 * Parse argv and load the configuration into 'conf'. Returns -1 when the
 * program should go on, else the exit status to return from main(): 0 for
 * -h, 64 for a usage error, 78 for a configuration error (the reasons are
 * logged). 'check_help' describes what -n does for this program.
 */
int cmdline_daemon(int argc, char **argv, const char *prog, const char *default_config,
		   const char *check_help, struct conf *conf, struct cmdline *out);

/*
 * The exit status for a failure described by 'err' (a message with the
 * strerror text, as the libraries write them): 77 (EX_NOPERM) for
 * "Permission denied" and "Operation not permitted", else 'otherwise'.
 */
int cmdline_status_of(const char *err, int otherwise);

/* Log the errors (fatal) and warnings of loading 'c' (conf_message). */
void cmdline_log_conf_messages(const struct conf *c);

#endif
