/*
 * pflog_tool - command-line access to lib/collect/pflog.h for integration tests:
 * follows log_source like the collector does and prints every result as a
 * JSON line on stdout, or counts it into the day files of a directory.
 *
 *   pflog_tool [-c CONF] [-o key=value]... [--from-start] [--once]
 *              [--store DIR] [--interval MS]
 *
 * Output lines (stdout, line-buffered):
 *   {"ready":true}                              after pflog_open
 *   {"result":{...}}                            each session (not with --store)
 *   {"lines":N}                                 after each poll that read lines
 *   {"counters":{"log_lines":N,...}}            at exit (SIGTERM, SIGINT,
 *                                               end of stdin, or --once)
 * --once: read until a poll finds nothing new, then exit. --from-start: read the file from 0.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "conf.h"
#include "log.h"
#include "pflog.h"
#include "store.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct tool {
	const struct conf *c;
	const char *store_dir;
	struct store *store;
	uint64_t counters[STC_MAX];
};

static json_object *jstr(struct result_str s)
{
	return s.p ? json_object_new_string_len(s.p, (int)s.len) : NULL;
}

static json_object *jarr(const struct result_str *v, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, jstr(v[i]));
	return a;
}

static struct store *store_for(struct tool *t, int64_t when)
{
	char err[512];
	int64_t day = when / 86400;

	if (t->store && store_day(t->store) == day)
		return t->store;
	store_close(t->store);
	t->store = store_open(t->store_dir, day, (uint64_t)conf_int(t->c, "store_max_size"),
			      (size_t)conf_int(t->c, "max_string_length"), err, sizeof(err));
	if (t->store == NULL)
		fprintf(stderr, "pflog_tool: %s\n", err);
	return t->store;
}

static void sink(void *arg, int64_t when, struct result_str d, struct result_str pr,
		 const struct result_policy *p)
{
	struct tool *t = arg;
	json_object *o, *r;

	if (t->store_dir) {
		struct store *s = store_for(t, when);

		if (s)
			store_add(s, d, pr, p);	/* counts sessions and failures */
		return;
	}
	o = json_object_new_object();
	r = json_object_new_object();
	json_object_object_add(r, "when", json_object_new_int64(when));
	json_object_object_add(r, "d", jstr(d));
	json_object_object_add(r, "pr", jstr(pr));
	json_object_object_add(r, "policy-type",
			       json_object_new_string(result_policy_type_name(p->type)));
	json_object_object_add(r, "policy-domain", jstr(p->domain));
	json_object_object_add(r, "policy-string", jarr(p->strings, p->nstrings));
	json_object_object_add(r, "mx-host", jarr(p->mx, p->nmx));
	json_object_object_add(r, "failed", json_object_new_boolean(p->failed));
	if (p->ndetails) {
		const struct result_detail *x = &p->details[0];
		const char *name = result_code_name(x->code);

		json_object_object_add(r, "result-type", name ? json_object_new_string(name) : NULL);
		json_object_object_add(r, "receiving-mx-hostname", jstr(x->mx_hostname));
		json_object_object_add(r, "receiving-ip", jstr(x->receiving_ip));
		json_object_object_add(r, "failure-reason-code", jstr(x->reason));
	}
	json_object_object_add(o, "result", r);
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

static void counter(void *arg, int64_t when, enum store_counter c, uint64_t n)
{
	struct tool *t = arg;

	t->counters[c] += n;
	if (t->store_dir) {
		struct store *s = store_for(t, when);

		if (s)
			store_bump(s, c, n);
	}
}

static void print_counters(const struct tool *t)
{
	json_object *o = json_object_new_object(), *c = json_object_new_object();

	for (int i = 0; i < STC_MAX; i++) {
		const char *name = store_counter_name((enum store_counter)i);

		if (name && t->counters[i])
			json_object_object_add(c, name, json_object_new_int64((int64_t)t->counters[i]));
	}
	json_object_object_add(o, "counters", c);
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

static int usage(void)
{
	fprintf(stderr, "usage: pflog_tool [-c CONF] [-o key=value]... [--from-start] "
		"[--once] [--store DIR] [--interval MS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct conf *c = conf_new();
	struct tool t;
	struct pflog *pf;
	char err[512];
	bool from_start = false, once = false;
	int interval = 100;
	uint64_t last_lines = 0;
	struct sigaction sa;

	memset(&t, 0, sizeof(t));
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("pflog_tool", LOG_TO_STDERR, 0);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			if (conf_load(c, argv[++i], err, sizeof(err)) != 0) {
				fprintf(stderr, "pflog_tool: %s\n", err);
				return 1;
			}
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			if (conf_set(c, argv[++i], err, sizeof(err)) != 0) {
				fprintf(stderr, "pflog_tool: %s: %s\n", argv[i], err);
				return 1;
			}
		} else if (!strcmp(argv[i], "--from-start")) {
			from_start = true;
		} else if (!strcmp(argv[i], "--once")) {
			once = true;
		} else if (!strcmp(argv[i], "--store") && i + 1 < argc) {
			t.store_dir = argv[++i];
		} else if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
			interval = atoi(argv[++i]);
		} else {
			return usage();
		}
	}
	t.c = c;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	pf = pflog_open(c, sink, &t, err, sizeof(err));
	if (pf == NULL) {
		fprintf(stderr, "pflog_tool: %s\n", err);
		return 1;
	}
	pflog_set_counter(pf, counter);
	if (from_start)
		pflog_rewind(pf);
	printf("{\"ready\":true}\n");
	while (!stop) {
		struct pollfd p = { .fd = pflog_fd(pf), .events = POLLIN };
		uint64_t lines;

		if (!once && poll(&p, p.fd >= 0 ? 1 : 0, interval) < 0 && errno != EINTR)
			break;
		pflog_poll(pf, (int64_t)time(NULL));
		lines = pflog_stats(pf)->lines;
		if (lines == last_lines && once)
			break;	/* --once: until a poll reads nothing more */
		if (lines != last_lines) {
			printf("{\"lines\":%llu}\n", (unsigned long long)lines);
			last_lines = lines;
		}
		if (pflog_eof(pf))
			break;
	}
	pflog_close(pf);
	store_close(t.store);
	print_counters(&t);
	conf_free(c);
	return 0;
}
