/*
 * cmdline - the daemons' common command line. See cmdline.h.
 */
#include "cmdline.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define MAX_OVERRIDES 64

static void usage(FILE *fp, const char *prog, const char *default_config, const char *check_help)
{
	fprintf(fp, "usage: %s [-c FILE] [-f] [-n] [-v] [-o key=value]... [-h]\n"
		"  -c FILE       configuration (default %s)\n"
		"  -f            foreground, log to stderr (default: syslog)\n"
		"  -n            %s\n"
		"  -o KEY=VALUE  set a configuration key (after the file; repeatable)\n"
		"  -v            verbose logging (with -n: also print every key)\n"
		"  -h, --help    this help (%s(8) has the details)\n",
		prog, default_config, check_help, prog);
}

int cmdline_status_of(const char *err, int otherwise)
{
	if (strstr(err, strerror(EACCES)) || strstr(err, strerror(EPERM)))
		return 77;
	return otherwise;
}

void cmdline_log_conf_messages(const struct conf *c)
{
	for (size_t i = 0; i < conf_nmessages(c); i++) {
		bool error;
		const char *m = conf_message(c, i, &error);

		if (error)
			log_fatal("%s", m);
		else
			log_warn("%s", m);
	}
}

int cmdline_daemon(int argc, char **argv, const char *prog, const char *default_config,
		   const char *check_help, struct conf *conf, struct cmdline *out)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *overrides[MAX_OVERRIDES];
	const char *config = default_config;
	bool config_given = false;
	int noverrides = 0, opt, bad = 0;
	char err[512];

	memset(out, 0, sizeof(*out));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:fhno:v", lopts, NULL)) != -1) {
		switch (opt) {
		case 'c': config = optarg; config_given = true; break;
		case 'f': out->foreground = true; break;
		case 'h': usage(stdout, prog, default_config, check_help); return 0;
		case 'n': out->check = true; break;
		case 'o':
			if (noverrides == MAX_OVERRIDES) {
				fprintf(stderr, "%s: at most %d -o options\n", prog, MAX_OVERRIDES);
				usage(stderr, prog, default_config, check_help);
				return 64;
			}
			overrides[noverrides++] = optarg;
			break;
		case 'v': out->verbose++; break;
		default: usage(stderr, prog, default_config, check_help); return 64;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog, argv[optind]);
		usage(stderr, prog, default_config, check_help);
		return 64;
	}
	log_init(prog, out->foreground || out->check ? LOG_TO_STDERR : LOG_TO_SYSLOG,
		 out->verbose);
	if (config_given || access(config, F_OK) == 0) {
		if (conf_load(conf, config, err, sizeof(err)) < 0)
			bad = cmdline_status_of(err, 78);
		out->config = config;
	}
	for (int i = 0; i < noverrides; i++)
		if (conf_set(conf, overrides[i], err, sizeof(err)) < 0)
			bad = 78;
	cmdline_log_conf_messages(conf);
	return bad ? bad : -1;
}
