/*
 * tlsrptctl - the operator's view of tlsrptd: live counters, a day's data,
 * the spool of sent reports, received reports, TLSRPT records, MTA-STS.
 *
 * It only reads what the daemons write (day files, spool, caches); it never
 * needs a daemon to answer. Exit codes are in ctl.h.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "cmdline.h"
#include "conf.h"
#include "ctl.h"
#include "log.h"
#include "termesc.h"

#define DEFAULT_CONFIG SYSCONFDIR "/tlsrptd/tlsrptd.conf"

static const struct {
	const char *name;
	int (*fn)(int, char **, const struct conf *);
	const char *usage;
} commands[] = {
	{ "stats", ctl_stats, ctl_stats_usage },
	{ "dump", ctl_dump, ctl_dump_usage },
	{ "spool", ctl_spool, ctl_spool_usage },
	{ "received", ctl_received, ctl_received_usage },
	{ "record", ctl_record, ctl_record_usage },
	{ "sts", ctl_sts, ctl_sts_usage },
	{ "dkim", ctl_dkim, ctl_dkim_usage },
	{ "dashboard", ctl_dashboard, ctl_dashboard_usage },
	{ "metrics", ctl_metrics, ctl_metrics_usage },
	{ "push", ctl_push, ctl_push_usage },
	{ "db", ctl_db, ctl_db_usage },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* A usage text: synopsis lines get "prefix", description lines (indented) not. */
static void print_usage_lines(FILE *fp, const char *text, const char *prefix)
{
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);

		fprintf(fp, "%s%.*s\n", *text == ' ' ? "" : prefix, (int)n, text);
		text += n + (nl != NULL);
	}
}

static const char exit_codes[] =
	"Exit status: 0 done (a list may be empty); 1 nothing found (no such day, id\n"
	"or domain); 2 received check found something new; 64 usage; 65 bad data (a\n"
	"corrupt file, a rejected import, a record with problems); 69 a service or\n"
	"lookup failed; 70 internal error; 74 read or write error; 77 permission\n"
	"denied; 78 configuration error.\n";

static void usage(FILE *fp)
{
	fprintf(fp, "usage: tlsrptctl [-c FILE] COMMAND [ARGS]\n"
		"       tlsrptctl [-c FILE] COMMAND -h | --help\n"
		"  -c FILE     configuration (default " DEFAULT_CONFIG ")\n"
		"  -h, --help  this help\n"
		"Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		print_usage_lines(fp, commands[i].usage, "  ");
	fputs(exit_codes, fp);
}

int ctl_usage(const char *text)
{
	fputs("usage:\n", stderr);
	print_usage_lines(stderr, text, "  tlsrptctl ");
	return CTL_USAGE;
}

int ctl_errno_status(int e, int otherwise)
{
	return e == EACCES || e == EPERM ? CTL_NOPERM : otherwise;
}

int ctl_status_of(const char *err, int otherwise)
{
	if (strstr(err, strerror(EACCES)) || strstr(err, strerror(EPERM)))
		return CTL_NOPERM;
	return otherwise;
}

/* -h or --help among a subcommand's arguments (before a "--")? */
static bool wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = DEFAULT_CONFIG;
	bool config_given = false;
	struct conf *conf;
	char err[512];
	int opt, rc;
	size_t cmd;

	/* every byte printed passes termesc: text from reports, day files,
	 * DNS and remote servers can never drive the operator's terminal */
	if (termesc_stream(&stdout) != 0 || termesc_stream(&stderr) != 0)
		return CTL_SOFTWARE;
	log_init("tlsrptctl", LOG_TO_STDERR, 0);
	while ((opt = getopt_long(argc, argv, "+c:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'c': config = optarg; config_given = true; break;
		case 'h': usage(stdout); return CTL_OK;
		default: usage(stderr); return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_USAGE;
	}
	for (cmd = 0; cmd < NCOMMANDS; cmd++)
		if (strcmp(argv[optind], commands[cmd].name) == 0)
			break;
	if (cmd == NCOMMANDS) {
		fprintf(stderr, "tlsrptctl: unknown command \"%s\"\n", argv[optind]);
		usage(stderr);
		return CTL_USAGE;
	}
	if (wants_help(argc - optind - 1, argv + optind + 1)) {
		fputs("usage:\n", stdout);
		print_usage_lines(stdout, commands[cmd].usage, "  tlsrptctl [-c FILE] ");
		fputs(exit_codes, stdout);
		return CTL_OK;
	}
	conf = conf_new();
	if (conf == NULL)
		return CTL_SOFTWARE;
	if (config_given || access(config, F_OK) == 0) {
		if (conf_load(conf, config, err, sizeof(err)) < 0) {
			cmdline_log_conf_messages(conf);
			conf_free(conf);
			return ctl_status_of(err, CTL_CONFIG);
		}
		cmdline_log_conf_messages(conf);
	}
	/* each subcommand parses its own options from a fresh getopt */
	{
		int sub_argc = argc - optind;
		char **sub_argv = argv + optind;

		optind = 0;
		rc = commands[cmd].fn(sub_argc, sub_argv, conf);
	}
	conf_free(conf);
	return rc;
}
