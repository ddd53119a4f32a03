/*
 * bench_report - how fast tlsrpt-report turns aggregated domains into
 * spooled reports: build the JSON (agg_policies_json + report_build),
 * gzip it, optionally build and DKIM-sign the mail (mail_build), and
 * spool it (spool_stage, spool_commit per 512 as tlsrpt-report does) for
 * 1k, 10k and 100k domains.
 *
 *   bench_report [--key PEM --selector SEL] [--sizes N,N,...] [--dir DIR]
 *                [--no-spool]
 *
 * The mix is deterministic: 40% sts, 30% tlsa, 30% no-policy-found;
 * every 4th domain has failures (1-4 failure-details). Each size runs in
 * a child process so that its peak RSS (getrusage) is its own. Prints one
 * table row per size.
 */
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "deliver.h"
#include "report.h"
#include "spool.h"

#define DAY 20230

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *xs(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

/* Domain i of the mix (heap memory, freed by free_domain). */
static void make_domain(size_t i, struct agg_domain *d)
{
	char b[512];
	int kind = (int)(i % 10);	/* 0-3 sts, 4-6 tlsa, 7-9 none */
	bool fails = i % 4 == 0;
	struct agg_policy *p = calloc(1, sizeof(*p));

	if (p == NULL)
		abort();
	memset(d, 0, sizeof(*d));
	snprintf(b, sizeof(b), "d%zu.example%zu.com", i, i % 97);
	d->domain = xs(b);
	snprintf(b, sizeof(b), "v=TLSRPTv1; rua=mailto:tlsrpt@example%zu.com,https://r.example%zu.com/tlsrpt", i % 97, i % 97);
	d->record = xs(b);
	d->policies = p;
	d->npolicies = 1;
	p->successes = 10 + i % 1000;
	if (kind <= 3) {
		p->type = 2;
		p->domain = xs(d->domain);
		p->nstrings = 5;
		p->strings = calloc(5, sizeof(char *));
		p->strings[0] = xs("version: STSv1");
		p->strings[1] = xs("mode: enforce");
		snprintf(b, sizeof(b), "mx: mx1.%s", d->domain);
		p->strings[2] = xs(b);
		snprintf(b, sizeof(b), "mx: mx2.%s", d->domain);
		p->strings[3] = xs(b);
		p->strings[4] = xs("max_age: 604800");
		p->nmx = 2;
		p->mx = calloc(2, sizeof(char *));
		p->mx[0] = xs(p->strings[2] + 4);
		p->mx[1] = xs(p->strings[3] + 4);
	} else if (kind <= 6) {
		p->type = 1;
		snprintf(b, sizeof(b), "mx.%s", d->domain);
		p->domain = xs(b);
		p->nstrings = 2;
		p->strings = calloc(2, sizeof(char *));
		p->strings[0] = xs("3 1 1 6007EEE553E85D8DF007A845D19EC343283D4E416E9A33F9EF3040C8B7C285BC");
		p->strings[1] = xs("2 1 1 76BB66711DA416433CA890A5B2E5A0533C6006478F7D10A4469A947ACC8399E1");
	} else {
		p->type = 9;
		p->domain = xs(d->domain);
	}
	if (fails) {
		static const int codes[] = { 204, 203, 202, 201 };
		size_t n = 1 + i % 4;

		p->details = calloc(n, sizeof(*p->details));
		p->ndetails = n;
		for (size_t k = 0; k < n; k++) {
			struct agg_detail *x = &p->details[k];

			x->code = p->type == 1 ? 304 - (int)(k % 2) * 99 : codes[k];
			snprintf(b, sizeof(b), "192.0.2.%zu", 1 + k);
			x->sending_ip = xs(b);
			snprintf(b, sizeof(b), "mx%zu.%s", k + 1, d->domain);
			x->mx_hostname = xs(b);
			snprintf(b, sizeof(b), "198.51.100.%zu", (i + k) % 250);
			x->receiving_ip = xs(b);
			if (x->code == 203)
				x->reason = xs("X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
			x->count = 1 + (i + k) % 7;
			p->failures += x->count;
		}
	}
	d->successes = p->successes;
	d->failures = p->failures;
}

static void free_domain(struct agg_domain *d)
{
	for (size_t j = 0; j < d->npolicies; j++) {
		struct agg_policy *p = &d->policies[j];

		for (size_t k = 0; k < p->nstrings; k++)
			free(p->strings[k]);
		for (size_t k = 0; k < p->nmx; k++)
			free(p->mx[k]);
		for (size_t k = 0; k < p->ndetails; k++) {
			free(p->details[k].sending_ip);
			free(p->details[k].mx_hostname);
			free(p->details[k].receiving_ip);
			free(p->details[k].reason);
		}
		free(p->strings);
		free(p->mx);
		free(p->details);
		free(p->domain);
	}
	free(d->policies);
	free(d->domain);
	free(d->record);
}

struct cfg {
	const char *key, *selector, *dir;
	bool spool;
};

static int run_size(size_t n, const struct cfg *cfg)
{
	struct conf *c = conf_new();
	struct report_identity id = { "Bench Org", "tlsrpt@sender.example", "sender.example" };
	struct spool *sp = NULL;
	char err[512], dir[1024], line[1200];
	double t0, t_build = 0, t_sign = 0, t_spool = 0;
	size_t gzbytes = 0, jsonbytes = 0, msgbytes = 0;
	struct rusage ru;
	struct buf msg;

	if (c == NULL)
		return 1;
	conf_set(c, "dkim_sign=no", err, sizeof(err));
	if (cfg->key) {
		snprintf(line, sizeof(line), "dkim_key_file=%s", cfg->key);
		if (conf_set(c, "dkim_sign=yes", err, sizeof(err)) || conf_set(c, line, err, sizeof(err))) {
			fprintf(stderr, "bench_report: %s\n", err);
			return 1;
		}
		snprintf(line, sizeof(line), "dkim_selector=%s", cfg->selector ? cfg->selector : "bench");
		conf_set(c, line, err, sizeof(err));
	}
	conf_set(c, "organization_name=Bench Org", err, sizeof(err));
	conf_set(c, "contact_info=tlsrpt@sender.example", err, sizeof(err));
	if (cfg->spool) {
		snprintf(dir, sizeof(dir), "%s/spool-%zu", cfg->dir, n);
		sp = spool_open(dir, true, err, sizeof(err));
		if (sp == NULL) {
			fprintf(stderr, "bench_report: %s\n", err);
			return 1;
		}
	}
	buf_init(&msg, 64u * 1024 * 1024);
	for (size_t i = 0; i < n; i++) {
		struct agg_domain d;
		struct report r;
		struct spool_dest_spec dests[2] = {
			{ RUA_MAILTO, "mailto:tlsrpt@example.com", "tlsrpt@example.com" },
			{ RUA_HTTPS, "https://r.example.com/tlsrpt", NULL },
		};
		bool existed;

		make_domain(i, &d);
		t0 = now_s();
		if (report_build(&d, DAY, &id, 1000, &r, err, sizeof(err)) != 0) {
			fprintf(stderr, "bench_report: %s\n", err);
			return 1;
		}
		t_build += now_s() - t0;
		gzbytes += r.gzlen;
		jsonbytes += r.jsonlen;
		if (cfg->key) {
			t0 = now_s();
			buf_reset(&msg);
			if (mail_build(&r.file, "tlsrpt@example.com", c, 1748000000, &msg, err, sizeof(err)) != 0) {
				fprintf(stderr, "bench_report: mail_build: %s\n", err);
				return 1;
			}
			t_sign += now_s() - t0;
			msgbytes += msg.len;
		}
		if (sp) {
			t0 = now_s();
			/* as tlsrpt-report does: stage, commit every 512 reports */
			if (spool_stage(sp, &r, dests, 2, "record", 1748000000, &existed, err, sizeof(err)) != 0 ||
			    ((i + 1) % 512 == 0 && spool_commit(sp, err, sizeof(err)) != 0)) {
				fprintf(stderr, "bench_report: %s\n", err);
				return 1;
			}
			t_spool += now_s() - t0;
		}
		report_free(&r);
		free_domain(&d);
	}
	if (sp) {
		t0 = now_s();
		if (spool_commit(sp, err, sizeof(err)) != 0) {
			fprintf(stderr, "bench_report: %s\n", err);
			return 1;
		}
		t_spool += now_s() - t0;
	}
	buf_free(&msg);
	spool_close(sp);
	getrusage(RUSAGE_SELF, &ru);
	{
		char sign[320] = "-", spool[320] = "-";

		if (cfg->key)
			snprintf(sign, sizeof(sign), "%.0f", (double)n / t_sign);
		if (cfg->spool)
			snprintf(spool, sizeof(spool), "%.0f", (double)n / t_spool);
		printf("%8zu %12.0f %12s %12s %12.0f %9.0f %9.0f %9.0f %8ld\n", n, (double)n / t_build,
		       sign, spool, (double)n / (t_build + t_sign + t_spool),
		       (double)jsonbytes / (double)n, (double)gzbytes / (double)n,
		       cfg->key ? (double)msgbytes / (double)n : 0.0, ru.ru_maxrss / 1024);
	}
	fflush(stdout);
	conf_free(c);
	return 0;
}

int main(int argc, char **argv)
{
	struct cfg cfg = { NULL, NULL, NULL, true };
	size_t sizes[16] = { 1000, 10000, 100000 }, nsizes = 3;
	char tmp[512];
	bool own_dir = false;

	/* Each report allocates and frees zlib's and the mail builder's buffers;
	 * without this glibc gives the heap top back and refaults it every time
	 * (measured: 35x slower report building once DKIM signing runs). */
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--key") && i + 1 < argc) {
			cfg.key = argv[++i];
		} else if (!strcmp(argv[i], "--selector") && i + 1 < argc) {
			cfg.selector = argv[++i];
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			cfg.dir = argv[++i];
		} else if (!strcmp(argv[i], "--no-spool")) {
			cfg.spool = false;
		} else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
			char *s = argv[++i], *e;

			nsizes = 0;
			while (*s && nsizes < 16) {
				sizes[nsizes++] = strtoul(s, &e, 10);
				s = *e == ',' ? e + 1 : e;
				if (e == s && *s)
					break;
			}
		} else {
			fprintf(stderr, "usage: bench_report [--key PEM [--selector SEL]] [--sizes N,...] "
				"[--dir DIR] [--no-spool]\n");
			return 64;
		}
	}
	if (cfg.dir == NULL) {
		snprintf(tmp, sizeof(tmp), "%s/bench_report.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (mkdtemp(tmp) == NULL) {
			perror("mkdtemp");
			return 1;
		}
		cfg.dir = tmp;
		own_dir = true;
	}
	printf("bench_report: build+gzip%s%s per domain (mix 40%% sts, 30%% tlsa, 30%% none; 25%% with failures)\n",
	       cfg.key ? ", DKIM-signed mail" : "", cfg.spool ? ", spool (syncfs per 512)" : "");
	printf("%8s %12s %12s %12s %12s %9s %9s %9s %8s\n", "domains", "build/s", "sign/s", "spool/s",
	       "total/s", "json B", "gz B", "mail B", "RSS MiB");
	for (size_t k = 0; k < nsizes; k++) {
		pid_t pid;
		int st = 0;

		fflush(stdout);
		pid = fork();
		if (pid == 0)
			_exit(run_size(sizes[k], &cfg));
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "bench_report: size %zu failed\n", sizes[k]);
			return 1;
		}
	}
	if (own_dir) {
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmp);
	}
	return 0;
}
