/*
 * tlsrptctl - the operator's view of tlsrptd: live counters, a day's data,
 * the spool of sent reports, received reports, TLSRPT records, MTA-STS.
 *
 * It only reads what the daemons write (day files, spool, caches); it never
 * needs a daemon to answer. Exit codes are in ctl.h.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "conf.h"
#include "ctl.h"
#include "log.h"

#define DEFAULT_CONFIG SYSCONFDIR "/tlsrptd/tlsrptd.conf"

/* Subcommands that another part of the build may leave out. */
int ctl_spool(int argc, char **argv, const struct conf *c) __attribute__((weak));
int ctl_received(int argc, char **argv, const struct conf *c) __attribute__((weak));
int ctl_record(int argc, char **argv, const struct conf *c) __attribute__((weak));
int ctl_sts(int argc, char **argv, const struct conf *c) __attribute__((weak));
int ctl_dkim(int argc, char **argv, const struct conf *c) __attribute__((weak));
int ctl_dashboard(int argc, char **argv, const struct conf *c) __attribute__((weak));
int ctl_metrics(int argc, char **argv, const struct conf *c) __attribute__((weak));

static const struct {
	const char *name;
	int (*fn)(int, char **, const struct conf *);
	const char *help;
} commands[] = {
	{ "stats", ctl_stats, "stats [--day YYYY-MM-DD] [--json]   counters of a day (default: today)" },
	{ "dump", ctl_dump, "dump [--day YYYY-MM-DD] [--json] [--input FILE...]   a day's results" },
	{ "spool", ctl_spool, "spool list [--json] | show ID | retry ID   reports built and sent" },
	{ "received", ctl_received, "received import FILE... | summary | show ID   reports others sent us" },
	{ "record", ctl_record, "record generate --rua URI[,URI] | check DOMAIN   _smtp._tls records" },
	{ "sts", ctl_sts, "sts show DOMAIN | refresh DOMAIN | stats   MTA-STS cache, policy service" },
	{ "dkim", ctl_dkim, "dkim generate [--selector S] [--algorithm A] | record   the reports' DKIM key" },
	{ "dashboard", ctl_dashboard, "dashboard --output DIR [--days N]   web pages of received and sent reports" },
	{ "metrics", ctl_metrics, "metrics [--output FILE] [--sending] [--receiving]   Prometheus text format" },
};

static void usage(void)
{
	fprintf(stderr, "usage: tlsrptctl [-c FILE] COMMAND [ARGS]\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].fn)
			fprintf(stderr, "  %s\n", commands[i].help);
}

int main(int argc, char **argv)
{
	const char *config = DEFAULT_CONFIG;
	bool config_given = false;
	struct conf *conf;
	char err[512];
	int opt, rc;

	log_init("tlsrptctl", LOG_TO_STDERR, 0);
	while ((opt = getopt(argc, argv, "+c:h")) != -1) {
		switch (opt) {
		case 'c': config = optarg; config_given = true; break;
		case 'h': usage(); return CTL_OK;
		default: usage(); return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		usage();
		return CTL_USAGE;
	}
	conf = conf_new();
	if (conf == NULL)
		return CTL_SOFTWARE;
	if ((config_given || access(config, F_OK) == 0) &&
	    conf_load(conf, config, err, sizeof(err)) < 0) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		conf_free(conf);
		return CTL_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		if (commands[i].fn == NULL) {
			fprintf(stderr, "tlsrptctl: %s is not part of this build\n", commands[i].name);
			conf_free(conf);
			return CTL_UNAVAILABLE;
		}
		optind++;
		/* each subcommand parses its own options from a fresh getopt */
		argv[optind - 1] = (char *)commands[i].name;
		{
			int sub_argc = argc - optind + 1;
			char **sub_argv = argv + optind - 1;

			optind = 0;
			rc = commands[i].fn(sub_argc, sub_argv, conf);
		}
		conf_free(conf);
		return rc;
	}
	fprintf(stderr, "tlsrptctl: unknown command \"%s\"\n", argv[optind]);
	usage();
	conf_free(conf);
	return CTL_USAGE;
}
