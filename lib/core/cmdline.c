/*
 * cmdline - the daemons' common command line. See cmdline.h.
 */
#include "cmdline.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define MAX_OVERRIDES 64

static void usage(const char *prog, const char *default_config, const char *check_help)
{
	fprintf(stderr, "usage: %s [-c FILE] [-f] [-n] [-v] [-o key=value]...\n"
		"  -c FILE  configuration (default %s)\n"
		"  -f       foreground, log to stderr (default: syslog)\n"
		"  -n       %s\n"
		"  -o K=V   set a configuration key (after the file)\n"
		"  -v       verbose logging\n", prog, default_config, check_help);
}

int cmdline_daemon(int argc, char **argv, const char *prog, const char *default_config,
		   const char *check_help, struct conf *conf, struct cmdline *out)
{
	const char *overrides[MAX_OVERRIDES];
	const char *config = default_config;
	bool config_given = false;
	int noverrides = 0, opt;
	char err[512];

	memset(out, 0, sizeof(*out));
	optind = 1;
	while ((opt = getopt(argc, argv, "c:fhno:v")) != -1) {
		switch (opt) {
		case 'c': config = optarg; config_given = true; break;
		case 'f': out->foreground = true; break;
		case 'h': usage(prog, default_config, check_help); return 0;
		case 'n': out->check = true; break;
		case 'o':
			if (noverrides == MAX_OVERRIDES) {
				usage(prog, default_config, check_help);
				return 64;
			}
			overrides[noverrides++] = optarg;
			break;
		case 'v': out->verbose++; break;
		default: usage(prog, default_config, check_help); return 64;
		}
	}
	if (optind != argc) {
		usage(prog, default_config, check_help);
		return 64;
	}
	log_init(prog, out->foreground || out->check ? LOG_TO_STDERR : LOG_TO_SYSLOG,
		 out->verbose);
	if (config_given || access(config, F_OK) == 0) {
		if (conf_load(conf, config, err, sizeof(err)) < 0) {
			log_fatal("%s", err);
			return 78;
		}
		out->config = config;
	}
	for (int i = 0; i < noverrides; i++) {
		if (conf_set(conf, overrides[i], err, sizeof(err)) < 0) {
			log_fatal("-o %s: %s", overrides[i], err);
			return 78;
		}
	}
	return -1;
}
