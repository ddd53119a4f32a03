/*
 * ctl_received - `tlsrptctl received`: the TLS reports others sent us.
 *
 *   received import [--trusted] FILE...
 *         store report files (.json, .json.gz, .gz, .zip) or mails (.eml,
 *         or anything else that is not a report by its first bytes). The
 *         DKIM state of imports is unknown, so they are stored as
 *         unverified, unless --trusted. Exit CTL_DATAERR if any input was
 *         rejected (its rejection record is stored), CTL_IOERR on I/O.
 *   received summary [--days N] [--domain D] [--json] [--html FILE]
 *         per policy domain and day (UTC day of the report's start):
 *         sessions ok/failed per reporting organization, failure result
 *         types, failing MX hosts, receiving and sending IPs, policy types.
 *         Totals add up the report's policy entries; a session under both
 *         DANE and MTA-STS may be in two entries, so the split by policy
 *         type is shown too.
 *         Reports without a trusted DKIM pass are listed apart. Who signed
 *         what an organization claims is shown with it ("signed_by" in
 *         --json: organization -> signer -> counts), an unaligned signer
 *         as "DOMAIN, not the submitter". Sums saturate at INT64_MAX.
 *         --days N keeps reports whose range ends within the last N days.
 *   received show ID
 *         the stored record (JSON); CTL_EMPTY if there is none.
 *   received rejected [--json]
 *         the inputs that could not be used: id, when, source, file name
 *         and reason, oldest first (CTL_OK, also when there are none).
 *
 * Reads and writes only received_directory (lib/receive/received.h). A
 * store the caller may not read is CTL_NOPERM.
 */
#include <fcntl.h>
#include <limits.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"
#include "db.h"
#include "jget.h"
#include "log.h"
#include "privs.h"
#include "received.h"
#include "rptparse.h"
#include "rstats.h"
#include "termesc.h"

const char ctl_received_usage[] =
	"received import [--trusted] FILE...\n"
	"    store reports fetched by other means (.eml, .json, .json.gz, .zip);\n"
	"    --trusted: as DKIM-verified\n"
	"received summary [--days N] [--domain DOMAIN] [--json] [--html FILE]\n"
	"    per policy domain and day: sessions per reporting organization, failure\n"
	"    types, failing MX hosts and IPs; --html FILE writes a page with a chart\n"
	"received show ID\n"
	"    one stored report, or one rejected input and why\n"
	"received rejected [--json]\n"
	"    the inputs that could not be used: id, when, source, file and reason\n"
	"received check [--now TIME] [--unverified] [--no-state] [--dry-run] [--mail ADDRESS]\n"
	"               [--json]\n"
	"    alerts: failure rate, new result types or failing MX hosts, a usual\n"
	"    reporter gone silent; exit 2 when something new was found\n";

static int received_usage(void)
{
	return ctl_usage(ctl_received_usage);
}

static int open_store(const struct conf *c, struct received_store **s)
{
	char err[512];

	if (received_open(conf_str(c, "received_directory"), s, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		return ctl_status_of(err, CTL_IOERR);
	}
	return CTL_OK;
}

/* For reading: the fleet database in fleet mode, else as open_store. */
static int open_reader(const struct conf *c, struct received_store **s)
{
	char err[1024];

	if (ctl_received_open(c, s, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		return ctl_status_of(err, db_configured(c) ? CTL_UNAVAILABLE : CTL_IOERR);
	}
	return CTL_OK;
}

#define OPEN_LATER INT_MIN	/* cmd_import: the file is opened when its turn comes */

/* Read at most 'max' bytes of open file 'fd' (closed); NULL with an
 * errno-ish message in err. */
static unsigned char *read_bounded(int fd, size_t max, size_t *len, char *err, size_t errsz)
{
	FILE *fp = fd >= 0 ? fdopen(fd, "rb") : NULL;
	unsigned char *d;
	size_t n;

	if (fp == NULL) {
		snprintf(err, errsz, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	d = malloc(max + 1);
	if (d == NULL) {
		fclose(fp);
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	n = fread(d, 1, max + 1, fp);
	if (ferror(fp) || n > max) {
		snprintf(err, errsz, "%s", ferror(fp) ? "read error" : "larger than the size limit");
		fclose(fp);
		free(d);
		return NULL;
	}
	fclose(fp);
	*len = n;
	return d;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* Is the file a report file (else a mail)? By name, then by first bytes. */
static bool is_report_file(const char *path, const unsigned char *d, size_t n)
{
	size_t i = 0;

	if (ends_with(path, ".eml") || ends_with(path, ".msg"))
		return false;
	if (ends_with(path, ".json") || ends_with(path, ".gz") || ends_with(path, ".zip"))
		return true;
	if (n >= 2 && ((d[0] == 0x1f && d[1] == 0x8b) || (d[0] == 'P' && d[1] == 'K')))
		return true;
	while (i < n && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t'))
		i++;
	return i < n && d[i] == '{';
}

static int cmd_import(int argc, char **argv, const struct conf *c)
{
	struct received_store *s;
	bool trusted = false;
	int rc = CTL_OK, nfiles = 0, i, fd0 = 0;
	int *fds = NULL;
	size_t max = (size_t)conf_int(c, "max_message_size");

	if ((size_t)conf_int(c, "max_report_size") > max)
		max = (size_t)conf_int(c, "max_report_size");
	for (i = 2; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		if (strcmp(argv[i], "--trusted") == 0)
			trusted = true;
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			return received_usage();
		}
	}
	if (i >= argc) {
		return received_usage();
	}
	/*
	 * The files are opened as the caller (root can read the operator's
	 * files); the store is written as its owner: run as root on a store
	 * that belongs to another user, we open every file first and then
	 * become the owner of received_directory, so that no file in it is
	 * root's and the milter can go on writing there. Otherwise each file
	 * is opened when its turn comes (OPEN_LATER).
	 */
	{
		char err[512];
		int first = i, n = argc - i;
		struct stat st;
		bool switching = geteuid() == 0 &&
			lstat(conf_str(c, "received_directory"), &st) == 0 && st.st_uid != 0;

		fds = malloc(sizeof(*fds) * (size_t)n);
		if (fds == NULL)
			return CTL_SOFTWARE;
		for (int j = 0; j < n; j++)
			fds[j] = OPEN_LATER;
		if (switching) {
			struct rlimit rl;

			if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
				rl.rlim_cur = rl.rlim_max;
				setrlimit(RLIMIT_NOFILE, &rl);
			}
			if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)n + 32 > rl.rlim_cur) {
				fprintf(stderr, "tlsrptctl: as root, import at most %ld files at a time "
					"(they are opened before switching to the store's owner), or run "
					"it as the owner of %s\n", (long)rl.rlim_cur - 32,
					conf_str(c, "received_directory"));
				free(fds);
				return CTL_USAGE;
			}
			for (int j = 0; j < n; j++) {
				fds[j] = open(argv[first + j], O_RDONLY | O_CLOEXEC);
				if (fds[j] < 0)
					fds[j] = -errno - 1;
			}
		}
		if (privs_become_owner_of(conf_str(c, "received_directory"), err, sizeof(err)) != 0) {
			fprintf(stderr, "tlsrptctl: cannot act as the owner of the received store, "
				"refusing to write it as root: %s\n", err);
			for (int j = 0; j < n; j++)
				if (fds[j] >= 0)
					close(fds[j]);
			free(fds);
			return CTL_IOERR;
		}
		fd0 = first;
	}
	if ((rc = open_store(c, &s)) != CTL_OK) {
		for (int j = 0; j < argc - fd0; j++)
			if (fds[j] >= 0)
				close(fds[j]);
		free(fds);
		return rc;
	}
	for (; i < argc; i++) {
		char err[512], id[RECEIVED_ID_LEN + 2], reason[600];
		size_t len = 0;
		int fd = fds[i - fd0];
		unsigned char *d;

		if (fd == OPEN_LATER && (fd = open(argv[i], O_RDONLY | O_CLOEXEC)) < 0)
			fd = -errno - 1;
		if (fd < 0)
			errno = -fd - 1;
		d = read_bounded(fd, max, &len, err, sizeof(err));
		struct received_input in = { 0 };
		const char *base = strrchr(argv[i], '/');

		nfiles++;
		if (d == NULL) {
			fprintf(stderr, "%s: %s\n", argv[i], err);
			rc = CTL_IOERR;
			continue;
		}
		in.data = d;
		in.len = len;
		in.is_message = !is_report_file(argv[i], d, len);
		in.source = "import";
		in.filename = base ? base + 1 : argv[i];
		in.trusted = trusted;
		in.max_report = (size_t)conf_int(c, "max_report_size");
		switch (received_ingest(s, &in, id, sizeof(id), reason, sizeof(reason))) {
		case RECEIVED_STORED:
			printf("%s: stored %s (%s)\n", termesc(argv[i]), id, termesc(reason));
			break;
		case RECEIVED_DUPLICATE:
			printf("%s: duplicate %s (%s)\n", termesc(argv[i]), id, termesc(reason));
			break;
		case RECEIVED_REJECTED:
			printf("%s: rejected %s: %s\n", termesc(argv[i]), id, termesc(reason));
			if (rc == CTL_OK)
				rc = CTL_DATAERR;
			break;
		case RECEIVED_ERROR:
			fprintf(stderr, "%s: %s\n", argv[i], reason);
			rc = CTL_IOERR;
			break;
		}
		free(d);
	}
	received_close(s);
	free(fds);
	return rc;
}

/* ---------- summary ---------- */

struct summary {
	struct json_object *groups;	/* "class\tdomain\tday" -> group */
	const char *domain;		/* filter, or NULL */
	int rejected;
};

static void bump(struct json_object *map, const char *key, int64_t n)
{
	if (key == NULL || *key == '\0')
		return;
	/* counts from outside: saturating, never wrapped (issue 10 item 4) */
	json_object_object_add(map, key, json_object_new_int64(rstats_add(jget_int(map, key), n)));
}

static void add_policy(struct summary *sm, const char *cls, const char *org, const char *signer,
		       const char *day, struct json_object *pol)
{
	struct json_object *p = NULL, *su = NULL, *fd = NULL, *g, *o, *types;
	const char *domain, *ptype;
	char key[1024];
	int64_t ok, failed;

	json_object_object_get_ex(pol, "policy", &p);
	json_object_object_get_ex(pol, "summary", &su);
	domain = jget_str(p, "policy-domain");
	ptype = jget_str(p, "policy-type");
	if (domain == NULL)
		domain = "";
	if (sm->domain && strcasecmp(sm->domain, domain) != 0)
		return;
	snprintf(key, sizeof(key), "%s\t%s\t%s", cls, domain, day);
	if (!json_object_object_get_ex(sm->groups, key, &g)) {
		g = json_object_new_object();
		json_object_object_add(g, "domain", json_object_new_string(domain));
		json_object_object_add(g, "day", json_object_new_string(day));
		json_object_object_add(g, "class", json_object_new_string(cls));
		json_object_object_add(sm->groups, key, g);
	}
	ok = jget_int(su, "total-successful-session-count");
	failed = jget_int(su, "total-failure-session-count");
	bump(g, "successful", ok);
	bump(g, "failed", failed);
	bump(g, "policies", 1);
	o = jget_map(jget_map(g, "organizations"), org);
	bump(o, "successful", ok);
	bump(o, "failed", failed);
	/* who signed what each organization claims (issue 10 item 7) */
	if (signer) {
		o = jget_map(jget_map(jget_map(g, "signed_by"), org), signer);
		bump(o, "successful", ok);
		bump(o, "failed", failed);
	}
	types = jget_map(g, "policy_types");
	bump(types, ptype && *ptype ? ptype : "(none)", 1);
	/* A session under both DANE and MTA-STS may be counted in a tlsa and an
	 * sts entry (RFC 8460 section 4): the totals add policy entries up, so
	 * keep the split by policy type too. */
	o = jget_map(jget_map(g, "by_policy_type"), ptype && *ptype ? ptype : "(none)");
	bump(o, "successful", ok);
	bump(o, "failed", failed);
	if (json_object_object_get_ex(pol, "failure-details", &fd) &&
	    json_object_is_type(fd, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(fd); i++) {
			struct json_object *d = json_object_array_get_idx(fd, i);
			int64_t n = jget_int(d, "failed-session-count");
			const char *rt = jget_str(d, "result-type");

			bump(jget_map(g, "result_types"), rt && *rt ? rt : "(none)", n);
			bump(jget_map(g, "failing_mx_hosts"), jget_str(d, "receiving-mx-hostname"), n);
			bump(jget_map(g, "failing_receiving_ips"), jget_str(d, "receiving-ip"), n);
			bump(jget_map(g, "sending_ips"), jget_str(d, "sending-mta-ip"), n);
		}
	}
}

/* Who signed a stored report, as summaries say it; NULL if nobody did. */
static const char *signer_of(struct json_object *rec, char *out, size_t outsz)
{
	const char *dkim = jget_str(rec, "dkim"), *dom = jget_str(rec, "dkim_domain");

	if (dkim && strcmp(dkim, "trusted") == 0)
		return "trusted import";
	if (dom == NULL || *dom == '\0')
		return NULL;
	if (dkim && strcmp(dkim, "pass") == 0)
		return dom;
	snprintf(out, outsz, "%s, not the submitter", dom);
	return out;
}

static int summary_cb(const char *cls, const char *id, struct json_object *rec, void *arg)
{
	struct summary *sm = arg;
	struct json_object *rep, *pols;
	const char *org, *start;
	char day[16], signer[300];
	int64_t t;

	(void)id;
	if (strcmp(cls, "rejected") == 0) {
		sm->rejected++;
		return 0;
	}
	if (!json_object_object_get_ex(rec, "report", &rep) ||
	    !json_object_object_get_ex(rep, "policies", &pols) ||
	    !json_object_is_type(pols, json_type_array))
		return 0;
	org = jget_str(rep, "organization-name");
	if (org == NULL || *org == '\0')
		org = "(unnamed)";
	{
		struct json_object *dr = NULL;

		json_object_object_get_ex(rep, "date-range", &dr);
		start = jget_str(dr, "start-datetime");
	}
	if (start == NULL || rpt_parse_time(start, &t) != 0)
		return 0;
	snprintf(day, sizeof(day), "%.10s", start);
	for (size_t i = 0; i < json_object_array_length(pols); i++)
		add_policy(sm, cls, org, signer_of(rec, signer, sizeof(signer)), day,
			   json_object_array_get_idx(pols, i));
	return 0;
}

static int cmp_group(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;
	int r = strcmp(jget_str(x, "domain"), jget_str(y, "domain"));

	return r ? r : strcmp(jget_str(x, "day"), jget_str(y, "day"));
}

/* The groups of one class, sorted by domain and day, as a new array. */
static struct json_object *class_groups(struct summary *sm, const char *cls)
{
	struct json_object *arr = json_object_new_array();

	json_object_object_foreach(sm->groups, k, g) {
		(void)k;
		if (strcmp(jget_str(g, "class"), cls) == 0)
			json_object_array_add(arr, json_object_get(g));
	}
	json_object_array_sort(arr, cmp_group);
	return arr;
}

/* "key (n), key (n)" of a map, largest first. */
static void print_map(FILE *fp, const char *label, struct json_object *g, const char *k)
{
	struct json_object *m, *arr;

	if (!json_object_object_get_ex(g, k, &m) || json_object_object_length(m) == 0)
		return;
	fprintf(fp, "    %s:", label);
	arr = json_object_new_array();
	json_object_object_foreach(m, key, v) {
		struct json_object *pair = json_object_new_object();

		json_object_object_add(pair, "k", json_object_new_string(key));
		json_object_object_add(pair, "n", json_object_get(v));
		json_object_array_add(arr, pair);
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		size_t best = i;

		for (size_t j = i + 1; j < json_object_array_length(arr); j++)
			if (jget_int(json_object_array_get_idx(arr, j), "n") >
			    jget_int(json_object_array_get_idx(arr, best), "n"))
				best = j;
		if (best != i) {
			struct json_object *a = json_object_get(json_object_array_get_idx(arr, i));
			struct json_object *b = json_object_get(json_object_array_get_idx(arr, best));

			json_object_array_put_idx(arr, i, b);
			json_object_array_put_idx(arr, best, a);
		}
		fprintf(fp, "%s %s (%lld)", i ? "," : "", termesc(jget_str(json_object_array_get_idx(arr, i), "k")),
			(long long)jget_int(json_object_array_get_idx(arr, i), "n"));
	}
	fprintf(fp, "\n");
	json_object_put(arr);
}

static void print_text(FILE *fp, struct json_object *arr, const char *title)
{
	fprintf(fp, "%s\n", title);
	if (json_object_array_length(arr) == 0)
		fprintf(fp, "  (none)\n");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *g = json_object_array_get_idx(arr, i), *orgs, *types;
		bool first = true;

		fprintf(fp, "  %s %s: %lld ok, %lld failed; policies:", termesc(jget_str(g, "domain")),
			termesc(jget_str(g, "day")),
			(long long)jget_int(g, "successful"), (long long)jget_int(g, "failed"));
		if (json_object_object_get_ex(g, "policy_types", &types)) {
			json_object_object_foreach(types, k, v) {
				(void)v;
				fprintf(fp, "%s %s", first ? "" : ",", termesc(k));
				first = false;
			}
		}
		fprintf(fp, "\n");
		if (json_object_object_get_ex(g, "by_policy_type", &types) &&
		    json_object_object_length(types) > 1) {
			fprintf(fp, "    by policy type (a session may count under several):");
			first = true;
			json_object_object_foreach(types, k, v) {
				fprintf(fp, "%s %s %lld ok, %lld failed", first ? "" : ";", termesc(k),
					(long long)jget_int(v, "successful"), (long long)jget_int(v, "failed"));
				first = false;
			}
			fprintf(fp, "\n");
		}
		if (json_object_object_get_ex(g, "organizations", &orgs)) {
			struct json_object *sb = NULL, *sig;

			json_object_object_get_ex(g, "signed_by", &sb);
			json_object_object_foreach(orgs, k, v) {
				fprintf(fp, "    %s: %lld ok, %lld failed", termesc(k),
					(long long)jget_int(v, "successful"), (long long)jget_int(v, "failed"));
				if (sb == NULL || !json_object_object_get_ex(sb, k, &sig)) {
					fprintf(fp, "\n");
					continue;
				}
				/* one signer for all of it: on the line; else one line each */
				if (json_object_object_length(sig) == 1) {
					json_object_object_foreach(sig, who, n) {
						if (jget_int(n, "successful") == jget_int(v, "successful") &&
						    jget_int(n, "failed") == jget_int(v, "failed")) {
							fprintf(fp, " (signed by %s)\n", termesc(who));
							sig = NULL;
						}
						break;
					}
					if (sig == NULL)
						continue;
				}
				fprintf(fp, "\n");
				json_object_object_foreach(sig, who2, n2)
					fprintf(fp, "      signed by %s: %lld ok, %lld failed\n", termesc(who2),
						(long long)jget_int(n2, "successful"), (long long)jget_int(n2, "failed"));
			}
		}
		print_map(fp, "result types", g, "result_types");
		print_map(fp, "failing MX hosts", g, "failing_mx_hosts");
		print_map(fp, "failing receiving IPs", g, "failing_receiving_ips");
		print_map(fp, "sending IPs", g, "sending_ips");
	}
}

static void html_esc(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': buf_adds(b, "&lt;"); break;
		case '>': buf_adds(b, "&gt;"); break;
		case '&': buf_adds(b, "&amp;"); break;
		case '"': buf_adds(b, "&quot;"); break;
		case '\'': buf_adds(b, "&#39;"); break;
		default: buf_addc(b, *s);
		}
	}
}

static void html_map(struct buf *b, struct json_object *g, const char *k)
{
	struct json_object *m;
	bool first = true;

	if (!json_object_object_get_ex(g, k, &m))
		return;
	json_object_object_foreach(m, key, v) {
		buf_adds(b, first ? "" : ", ");
		html_esc(b, key);
		buf_printf(b, " (%lld)", (long long)json_object_get_int64(v));
		first = false;
	}
}

/* An inline SVG: one stacked bar (ok green, failed red) per day. */
static void html_chart(struct buf *b, struct json_object *arr)
{
	struct json_object *days = json_object_new_object(), *keys;
	int64_t max = 1;
	size_t n, w;

	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *g = json_object_array_get_idx(arr, i);
		struct json_object *d = jget_map(days, jget_str(g, "day"));

		bump(d, "ok", jget_int(g, "successful"));
		bump(d, "failed", jget_int(g, "failed"));
	}
	keys = json_object_new_array();
	json_object_object_foreach(days, k, v) {
		int64_t t = rstats_add(jget_int(v, "ok"), jget_int(v, "failed"));

		json_object_array_add(keys, json_object_new_string(k));
		if (t > max)
			max = t;
	}
	for (size_t i = 0; i < json_object_array_length(keys); i++)	/* sort strings */
		for (size_t j = i + 1; j < json_object_array_length(keys); j++)
			if (strcmp(json_object_get_string(json_object_array_get_idx(keys, j)),
				   json_object_get_string(json_object_array_get_idx(keys, i))) < 0) {
				struct json_object *a = json_object_get(json_object_array_get_idx(keys, i));
				struct json_object *c = json_object_get(json_object_array_get_idx(keys, j));

				json_object_array_put_idx(keys, i, c);
				json_object_array_put_idx(keys, j, a);
			}
	n = json_object_array_length(keys);
	w = n ? (n * 24 + 40) : 100;
	buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%zu\" height=\"140\" "
		   "role=\"img\" aria-label=\"sessions per day\">\n", w);
	for (size_t i = 0; i < n; i++) {
		const char *day = json_object_get_string(json_object_array_get_idx(keys, i));
		struct json_object *d = NULL;
		int64_t ok, failed, hok, hf;

		json_object_object_get_ex(days, day, &d);
		ok = jget_int(d, "ok");
		failed = jget_int(d, "failed");
		/* heights 0..100 from counts up to INT64_MAX: never overflows */
		hok = (int64_t)((double)ok * 100.0 / (double)max);
		hf = (int64_t)((double)failed * 100.0 / (double)max);
		if (hok + hf > 100)
			hf = 100 - hok;
		if (ok > 0 && hok == 0)
			hok = 1;
		if (failed > 0 && hf == 0)
			hf = 1;
		buf_printf(b, "<rect x=\"%zu\" y=\"%lld\" width=\"18\" height=\"%lld\" fill=\"#3a3\">"
			   "<title>", 20 + i * 24, (long long)(110 - hok), (long long)hok);
		html_esc(b, day);
		buf_printf(b, ": %lld ok</title></rect>\n", (long long)ok);
		buf_printf(b, "<rect x=\"%zu\" y=\"%lld\" width=\"18\" height=\"%lld\" fill=\"#c33\">"
			   "<title>", 20 + i * 24, (long long)(110 - hok - hf), (long long)hf);
		html_esc(b, day);
		buf_printf(b, ": %lld failed</title></rect>\n", (long long)failed);
	}
	buf_adds(b, "<line x1=\"15\" y1=\"110\" x2=\"100%\" y2=\"110\" stroke=\"#888\"/>\n</svg>\n");
	json_object_put(keys);
	json_object_put(days);
}

static void html_table(struct buf *b, struct json_object *arr, const char *title, const char *note)
{
	buf_adds(b, "<h2>");
	html_esc(b, title);
	buf_adds(b, "</h2>\n");
	if (note) {
		buf_adds(b, "<p class=\"note\">");
		html_esc(b, note);
		buf_adds(b, "</p>\n");
	}
	if (json_object_array_length(arr) == 0) {
		buf_adds(b, "<p>None.</p>\n");
		return;
	}
	html_chart(b, arr);
	buf_adds(b, "<table>\n<tr><th>Domain</th><th>Day</th><th>OK</th><th>Failed</th>"
		 "<th>Organizations</th><th>Result types</th><th>Failing MX hosts</th>"
		 "<th>Receiving IPs</th><th>Sending IPs</th><th>Policy types</th></tr>\n");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *g = json_object_array_get_idx(arr, i), *orgs;
		bool first = true;

		buf_printf(b, "<tr%s><td>", jget_int(g, "failed") ? " class=\"fail\"" : "");
		html_esc(b, jget_str(g, "domain"));
		buf_adds(b, "</td><td>");
		html_esc(b, jget_str(g, "day"));
		buf_printf(b, "</td><td>%lld</td><td>%lld</td><td>", (long long)jget_int(g, "successful"),
			   (long long)jget_int(g, "failed"));
		if (json_object_object_get_ex(g, "organizations", &orgs)) {
			struct json_object *sb = NULL, *sig;

			json_object_object_get_ex(g, "signed_by", &sb);
			json_object_object_foreach(orgs, k, v) {
				buf_adds(b, first ? "" : "<br>");
				html_esc(b, k);
				buf_printf(b, ": %lld/%lld", (long long)jget_int(v, "successful"),
					   (long long)jget_int(v, "failed"));
				if (sb && json_object_object_get_ex(sb, k, &sig)) {
					bool one = true;

					buf_adds(b, " (signed by ");
					json_object_object_foreach(sig, who, n) {
						(void)n;
						buf_adds(b, one ? "" : ", ");
						html_esc(b, who);
						one = false;
					}
					buf_adds(b, ")");
				}
				first = false;
			}
		}
		buf_adds(b, "</td><td>");
		html_map(b, g, "result_types");
		buf_adds(b, "</td><td>");
		html_map(b, g, "failing_mx_hosts");
		buf_adds(b, "</td><td>");
		html_map(b, g, "failing_receiving_ips");
		buf_adds(b, "</td><td>");
		html_map(b, g, "sending_ips");
		buf_adds(b, "</td><td>");
		html_map(b, g, "policy_types");
		buf_adds(b, "</td></tr>\n");
	}
	buf_adds(b, "</table>\n");
}

static int write_html(const char *path, struct json_object *ver, struct json_object *unv, int rejected)
{
	struct buf b;
	FILE *fp;
	int rc = CTL_OK;

	buf_init(&b, 256u << 20);
	buf_adds(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		 "<title>TLS reports received</title>\n<style>\n"
		 "body{font-family:sans-serif;margin:1em 2em;color:#222}\n"
		 "table{border-collapse:collapse;margin:1em 0}\n"
		 "th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top;font-size:90%}\n"
		 "th{background:#eee}tr.fail td{background:#fee}.note{color:#855}\n"
		 "</style></head><body>\n<h1>TLS reports received</h1>\n");
	html_table(&b, ver, "Reports with a trusted DKIM signature", NULL);
	html_table(&b, unv, "Reports without a verified DKIM signature",
		   "RFC 8460 says reports without a valid DKIM signature must be ignored; "
		   "they are shown apart and may be forged.");
	buf_printf(&b, "<p>Rejected inputs: %d (list them with <code>tlsrptctl received rejected</code>, "
		   "see one with <code>tlsrptctl received show ID</code>).</p>\n", rejected);
	buf_adds(&b, "</body></html>\n");
	if (b.overflow) {
		fprintf(stderr, "tlsrptctl: the HTML page is too large\n");
		buf_free(&b);
		return CTL_SOFTWARE;
	}
	fp = fopen(path, "w");
	if (fp == NULL || fwrite(b.data, 1, b.len, fp) != b.len || fclose(fp) != 0) {
		fprintf(stderr, "tlsrptctl: %s: %s\n", path, strerror(errno));
		rc = CTL_IOERR;
	}
	buf_free(&b);
	return rc;
}

static int cmd_summary(int argc, char **argv, const struct conf *c)
{
	struct summary sm = { 0 };
	struct received_store *s;
	struct json_object *ver, *unv;
	const char *html = NULL;
	bool json = false;
	int64_t since = INT64_MIN;
	int rc;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
			char *end;
			long long d = strtoll(argv[++i], &end, 10);

			if (*end || d < 0 || d > 100000) {
				return received_usage();
			}
			since = (int64_t)time(NULL) - d * 86400;
		} else if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc)
			sm.domain = argv[++i];
		else if (strcmp(argv[i], "--html") == 0 && i + 1 < argc)
			html = argv[++i];
		else {
			return received_usage();
		}
	}
	if ((rc = open_reader(c, &s)) != CTL_OK)
		return rc;
	sm.groups = json_object_new_object();
	received_foreach(s, since, summary_cb, &sm);
	received_close(s);
	ver = class_groups(&sm, "verified");
	unv = class_groups(&sm, "unverified");
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "verified", json_object_get(ver));
		json_object_object_add(o, "unverified", json_object_get(unv));
		json_object_object_add(o, "rejected", json_object_new_int(sm.rejected));
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else if (html == NULL) {
		print_text(stdout, ver, "Reports with a trusted DKIM signature:");
		print_text(stdout, unv, "Reports without a verified DKIM signature (RFC 8460: to be ignored):");
		if (sm.rejected)
			printf("Rejected inputs: %d (list them with tlsrptctl received rejected, "
			       "see one with tlsrptctl received show ID)\n", sm.rejected);
		else
			printf("Rejected inputs: 0\n");
	}
	if (html)
		rc = write_html(html, ver, unv, sm.rejected);
	if (rc == CTL_OK && json_object_array_length(ver) + json_object_array_length(unv) == 0 &&
	    sm.rejected == 0)
		rc = CTL_EMPTY;
	json_object_put(ver);
	json_object_put(unv);
	json_object_put(sm.groups);
	return rc;
}

static int cmd_show(int argc, char **argv, const struct conf *c)
{
	struct received_store *s;
	struct json_object *rec;
	int rc;

	if (argc != 3) {
		return received_usage();
	}
	if ((rc = open_reader(c, &s)) != CTL_OK)
		return rc;
	if (received_load(s, argv[2], &rec) != 0) {
		fprintf(stderr, "tlsrptctl: no received report or rejection with id %s\n", argv[2]);
		received_close(s);
		return CTL_EMPTY;
	}
	printf("%s\n", json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PRETTY |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	if (strcmp(jget_text(rec, "class"), "rejected") == 0)
		printf("raw input: %s/rejected/%s.raw\n", received_dir(s), argv[2]);
	json_object_put(rec);
	received_close(s);
	return CTL_OK;
}

struct rejected_list {
	struct json_object *arr;	/* --json, else NULL */
	size_t n;
};

static int rejected_cb(const char *cls, const char *id, struct json_object *rec, void *arg)
{
	struct rejected_list *l = arg;
	struct json_object *arr = l->arr;
	char f[200], r[600];
	const char *fn = jget_str(rec, "filename"), *why = jget_str(rec, "reason");

	if (strcmp(cls, "rejected") != 0)
		return 0;
	if (l->n++ == 0 && arr == NULL)
		printf("%-24s  %-20s  %-6s  %s: %s\n", "ID", "STORED", "SOURCE", "FILE", "REASON");
	if (arr) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "id", json_object_new_string(id));
		json_object_object_add(o, "stored", json_object_new_string(jget_text(rec, "stored")));
		json_object_object_add(o, "source", json_object_new_string(jget_text(rec, "source")));
		json_object_object_add(o, "filename", fn ? json_object_new_string(fn) : NULL);
		json_object_object_add(o, "reason", json_object_new_string(why ? why : ""));
		json_object_array_add(arr, o);
		return 0;
	}
	/* file names and reasons come from the input: printable only */
	printf("%-24s  %-20s  %-6s  %s: %s\n", id, jget_str(rec, "stored") ? jget_str(rec, "stored") : "-",
	       jget_str(rec, "source") ? jget_str(rec, "source") : "-",
	       fn ? log_printable(f, sizeof(f), fn, strlen(fn)) : "-",
	       why ? log_printable(r, sizeof(r), why, strlen(why)) : "-");
	return 0;
}

static int cmd_rejected(int argc, char **argv, const struct conf *c)
{
	struct received_store *s;
	struct rejected_list l = { NULL, 0 };
	int rc;

	if (argc == 3 && strcmp(argv[2], "--json") == 0)
		l.arr = json_object_new_array();
	else if (argc != 2)
		return received_usage();
	if ((rc = open_reader(c, &s)) != CTL_OK) {
		json_object_put(l.arr);
		return rc;
	}
	received_foreach(s, INT64_MIN, rejected_cb, &l);
	received_close(s);
	if (l.arr) {
		printf("%s\n", json_object_to_json_string_ext(l.arr, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(l.arr);
	} else if (l.n == 0) {
		printf("no rejected inputs\n");
	}
	return CTL_OK;
}

int ctl_received(int argc, char **argv, const struct conf *c)
{
	if (argc < 2) {
		return received_usage();
	}
	if (strcmp(argv[1], "import") == 0)
		return cmd_import(argc, argv, c);
	if (strcmp(argv[1], "summary") == 0)
		return cmd_summary(argc, argv, c);
	if (strcmp(argv[1], "show") == 0)
		return cmd_show(argc, argv, c);
	if (strcmp(argv[1], "rejected") == 0)
		return cmd_rejected(argc, argv, c);
	if (strcmp(argv[1], "check") == 0)	/* ctl_check.c */
		return ctl_check(argc, argv, c);
	return received_usage();
}
