/*
 * deliver_tool - command-line access to lib/report/deliver.h for the Python
 * integration tests and the HTTPS benchmark. Not installed.
 *
 * deliver_tool [-c CONF] [-o key=value]... COMMAND ARGS
 *   build RCPT [REPORT]      print the message mail_build() makes
 *   mail RCPT [REPORT]       mail_build() + mail_send(); one result line
 *   send RCPT                mail_send() of the message on standard input
 *   post URL FILE [URL FILE]...
 *                            https_post_all() of the files; one result line
 *                            per job, in order
 *   bench URLFILE N FILE     POST FILE N times, round robin over the URLs in
 *                            URLFILE (one a line); prints "N reports in S s:
 *                            R reports/s, F failed"
 * REPORT options: --domain D --submitter S --org O --contact C
 *   --report-id ID --filename F --begin T --successes N --failures N
 *   --gz FILE (default: a small built-in report, gzipped) --now T
 *
 * Result line: "ok=1 permanent=0 destination=0 status=200 detail=TEXT".
 * Exit status: 0 all ok, 1 some delivery failed, 2 usage or build error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "buf.h"
#include "conf.h"
#include "deliver.h"

static void usage(void)
{
	fprintf(stderr, "usage: deliver_tool [-c CONF] [-o key=value]... "
		"build|mail|send|post|bench ARGS (see the source)\n");
	exit(2);
}

static unsigned char *read_all(FILE *fp, size_t *len)
{
	struct buf b;
	char tmp[65536];
	size_t n;

	buf_init(&b, 256u * 1024 * 1024);
	while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
		if (buf_add(&b, tmp, n) < 0)
			break;
	if (b.overflow || ferror(fp)) {
		buf_free(&b);
		return NULL;
	}
	if (!b.data)
		buf_add(&b, "", 0);
	return (unsigned char *)buf_steal(&b, len);
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *d;

	if (!fp) {
		fprintf(stderr, "deliver_tool: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	d = read_all(fp, len);
	fclose(fp);
	if (!d) {
		fprintf(stderr, "deliver_tool: %s: read error or too large\n", path);
		exit(2);
	}
	return d;
}

/* gzip (single member) of s. */
static unsigned char *gzip_str(const char *s, size_t *len)
{
	z_stream z;
	size_t cap = strlen(s) + 128;
	unsigned char *out = malloc(cap);

	memset(&z, 0, sizeof(z));
	if (!out || deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		exit(2);
	z.next_in = (unsigned char *)(uintptr_t)s;
	z.avail_in = (uInt)strlen(s);
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		exit(2);
	*len = z.total_out;
	deflateEnd(&z);
	return out;
}

static void print_result(const struct delivery_result *r)
{
	printf("ok=%d permanent=%d destination=%d status=%ld detail=%s\n", r->ok, r->permanent,
	       r->destination, r->status, r->detail);
}

static const char *opt_value(int *i, int argc, char **argv)
{
	if (*i + 1 >= argc)
		usage();
	return argv[++*i];
}

/* Run one command; returns the exit status. */
static int command(struct conf *c, const char *cmd, int i, int argc, char **argv)
{
	char err[512], fname[600];


	if (strcmp(cmd, "build") == 0 || strcmp(cmd, "mail") == 0) {
		struct report_file r = {
			.policy_domain = "example.com",
			.submitter = "sender.example",
			.organization = "Sender Example Ltd",
			.contact = "tlsrpt@sender.example",
			.report_id = "2025-05-22T00.00.00Z.example.com@sender.example",
			.filename = NULL,
			.begin = 1747872000,
			.successes = 42,
			.failures = 3,
		};
		const char *rcpt, *gzfile = NULL;
		int64_t now = 1747970262;
		int rc = 0;
		struct buf msg;
		size_t gzlen;
		unsigned char *gz;

		if (i >= argc)
			usage();
		rcpt = argv[i++];
		for (; i < argc; i++) {
			const char *o = argv[i];

			if (strcmp(o, "--domain") == 0) r.policy_domain = opt_value(&i, argc, argv);
			else if (strcmp(o, "--submitter") == 0) r.submitter = opt_value(&i, argc, argv);
			else if (strcmp(o, "--org") == 0) r.organization = opt_value(&i, argc, argv);
			else if (strcmp(o, "--contact") == 0) r.contact = opt_value(&i, argc, argv);
			else if (strcmp(o, "--report-id") == 0) r.report_id = opt_value(&i, argc, argv);
			else if (strcmp(o, "--filename") == 0) r.filename = opt_value(&i, argc, argv);
			else if (strcmp(o, "--begin") == 0) r.begin = strtoll(opt_value(&i, argc, argv), NULL, 10);
			else if (strcmp(o, "--successes") == 0) r.successes = strtoull(opt_value(&i, argc, argv), NULL, 10);
			else if (strcmp(o, "--failures") == 0) r.failures = strtoull(opt_value(&i, argc, argv), NULL, 10);
			else if (strcmp(o, "--gz") == 0) gzfile = opt_value(&i, argc, argv);
			else if (strcmp(o, "--now") == 0) now = strtoll(opt_value(&i, argc, argv), NULL, 10);
			else usage();
		}
		r.end = r.begin + 86399;
		if (!r.filename) {
			snprintf(fname, sizeof(fname), "%s!%s!%lld!%lld.json.gz", r.submitter,
				 r.policy_domain, (long long)r.begin, (long long)r.end);
			r.filename = fname;
		}
		gz = gzfile ? read_file(gzfile, &gzlen)
			    : gzip_str("{\"organization-name\":\"Sender Example Ltd\","
				       "\"report-id\":\"test\",\"policies\":[]}\n", &gzlen);
		r.gz = gz;
		r.gzlen = gzlen;
		buf_init(&msg, 64u * 1024 * 1024);
		if (mail_build(&r, rcpt, c, now, &msg, err, sizeof(err)) < 0) {
			fprintf(stderr, "deliver_tool: %s\n", err);
			rc = 2;
		} else if (strcmp(cmd, "build") == 0) {
			fwrite(msg.data, 1, msg.len, stdout);
		} else {
			struct delivery_result res;

			mail_send(c, rcpt, msg.data, msg.len, &res);
			print_result(&res);
			rc = res.ok ? 0 : 1;
		}
		buf_free(&msg);
		free(gz);
		return rc;
	} else if (strcmp(cmd, "send") == 0) {
		struct delivery_result res;
		unsigned char *m;
		size_t len;

		if (i + 1 != argc)
			usage();
		m = read_all(stdin, &len);
		if (!m)
			return 2;
		mail_send(c, argv[i], (const char *)m, len, &res);
		print_result(&res);
		free(m);
		return res.ok ? 0 : 1;
	} else if (strcmp(cmd, "post") == 0) {
		size_t n = (size_t)(argc - i) / 2, k;
		struct https_job *jobs;
		int rc = 0;

		if (n == 0 || (argc - i) % 2)
			usage();
		jobs = calloc(n, sizeof(*jobs));
		if (!jobs)
			return 2;
		for (k = 0; k < n; k++) {
			jobs[k].url = argv[i + 2 * (int)k];
			jobs[k].body = read_file(argv[i + 2 * (int)k + 1], &jobs[k].len);
		}
		https_post_all(c, jobs, n, NULL, NULL);
		for (k = 0; k < n; k++) {
			print_result(&jobs[k].res);
			if (!jobs[k].res.ok)
				rc = 1;
			free((void *)(uintptr_t)jobs[k].body);
		}
		free(jobs);
		return rc;
	} else if (strcmp(cmd, "bench") == 0) {
		unsigned char *urls, *body;
		size_t ulen, blen, n, nurl = 0, k, failed = 0;
		char **list, *save = NULL, *tok;
		struct https_job *jobs;
		struct timespec t0, t1;
		double secs;

		if (i + 3 != argc)
			usage();
		urls = read_file(argv[i], &ulen);
		n = strtoull(argv[i + 1], NULL, 10);
		body = read_file(argv[i + 2], &blen);
		list = calloc(ulen + 1, sizeof(*list));
		jobs = calloc(n ? n : 1, sizeof(*jobs));
		if (!list || !jobs)
			return 2;
		for (tok = strtok_r((char *)urls, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
			list[nurl++] = tok;
		if (nurl == 0)
			usage();
		for (k = 0; k < n; k++) {
			jobs[k].url = list[k % nurl];
			jobs[k].body = body;
			jobs[k].len = blen;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		https_post_all(c, jobs, n, NULL, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		for (k = 0; k < n; k++)
			if (!jobs[k].res.ok) {
				if (failed++ == 0)
					fprintf(stderr, "first failure: %s: %s\n", jobs[k].url,
						jobs[k].res.detail);
			}
		printf("%zu reports to %zu URLs in %.3f s: %.1f reports/s, %zu failed\n", n, nurl,
		       secs, secs > 0 ? (double)n / secs : 0.0, failed);
		free(list);
		free(jobs);
		free(urls);
		free(body);
		return failed ? 1 : 0;
	} else {
		usage();
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct conf *c = conf_new();
	char err[512];
	int rc;
	int i = 1;
	const char *cmd;

	if (!c)
		return 2;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0) {
			if (conf_load(c, opt_value(&i, argc, argv), err, sizeof(err)) < 0) {
				fprintf(stderr, "deliver_tool: %s\n", err);
				conf_free(c);
				return 2;
			}
		} else if (strcmp(argv[i], "-o") == 0) {
			if (conf_set(c, opt_value(&i, argc, argv), err, sizeof(err)) < 0) {
				fprintf(stderr, "deliver_tool: %s\n", err);
				conf_free(c);
				return 2;
			}
		} else {
			usage();
		}
	}
	if (i >= argc)
		usage();
	cmd = argv[i++];
	rc = command(c, cmd, i, argc, argv);
	conf_free(c);
	return rc;
}
