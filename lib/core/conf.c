/*
 * conf - the one configuration format of all tlsrptd programs. See conf.h.
 *
 * SECURITY: the configuration is trusted (root writes it) but still parsed
 * strictly, so a typo is an error and not a silently ignored setting.
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum conf_type { T_STR, T_PATH, T_INT, T_BOOL, T_SIZE, T_DURATION, T_MODE };

struct conf_key {
	const char *name;
	enum conf_type type;
	const char *def;	/* default, in file syntax */
	int64_t min, max;	/* for numeric types */
	const char *help;
};

#define KB 1024LL
#define MB (1024LL * 1024)
#define GB (1024LL * 1024 * 1024)
#define DAY 86400LL

/*
 * The table of every key. Keep it sorted by program, then name; the help
 * text is what conf/tlsrptd.conf and the man page say about the key.
 */
static const struct conf_key conf_keys[] = {
	/* shared */
	{ "state_directory", T_PATH, "/var/lib/tlsrptd", 0, 0,
	  "the collector's directory: day files (days/), log position" },
	{ "user", T_STR, "", 0, 0,
	  "started as root: become this user after binding sockets (empty: stay; under "
	  "systemd each daemon is started as its own user and this stays empty)" },

	/* tlsrptd: the collector */
	{ "socket_path", T_PATH, "/var/spool/postfix/run/tlsrpt/tlsrpt.sock", 0, 0,
	  "unix datagram socket that Postfix's smtp_tlsrpt_socket_name points at" },
	{ "socket_owner", T_STR, "", 0, 0, "owner of the socket file (empty: the daemon's user)" },
	{ "socket_group", T_STR, "", 0, 0,
	  "group of the socket file (empty: the directory's group if it is setgid, else the daemon's)" },
	{ "socket_mode", T_MODE, "0660", 0, 0777, "mode of the socket file" },
	{ "socket_receive_buffer", T_SIZE, "4M", 64 * KB, 1 * GB,
	  "SO_RCVBUF of the socket" },
	{ "realtime_priority", T_INT, "10", 0, 99,
	  "SCHED_RR priority of the receiving thread (0: normal scheduling); lets it "
	  "drain the socket while many smtp processes are runnable" },
	{ "store_max_size", T_SIZE, "64M", 1 * MB, 16 * GB,
	  "maximum size of one day file; new keys beyond it go to the overflow counter" },
	{ "max_string_length", T_INT, "2048", 64, 65536,
	  "longer strings from datagrams are cut (and counted) at this many bytes" },
	{ "sync_interval", T_DURATION, "10s", 0, DAY,
	  "msync day files this often (0: only at exit); bounds what a power loss can take" },
	{ "report_sender", T_STR, "", 0, 0,
	  "envelope sender of our own report mail: never counted (log source)" },

	/* tlsrptd: the Postfix log source (Postfix 3.7-3.9) */
	{ "log_source", T_STR, "", 0, 0,
	  "Postfix log to follow: a file path, or '-' for standard input (empty: off)" },
	{ "log_position_file", T_PATH, "/var/lib/tlsrptd/logpos", 0, 0,
	  "where the log follower remembers how far it has read" },
	{ "log_ignore_syslog_names", T_STR, "postfix/tlsrpt-out", 0, 0,
	  "comma separated syslog names whose lines are never counted (report transport)" },
	{ "log_policy_map", T_STR, "", 0, 0,
	  "Postfix table (type:name) giving the TLS policy per domain, queried with postmap -q" },
	{ "log_tls_security_level", T_STR, "may", 0, 0,
	  "your Postfix smtp_tls_security_level; with dane or dane-only, sessions the table has no policy for are reported under their MX host's DNSSEC-validated TLSA records" },
	{ "dns_cache_size", T_INT, "10000", 16, 10000000, "TLSRPT records cached by the log follower" },
	{ "dns_cache_ttl", T_DURATION, "1h", 1, 7 * DAY, "how long a looked-up TLSRPT record is kept" },
	{ "dns_resolver", T_STR, "", 0, 0, "resolver address[:port] for lookups (empty: system)" },

	/* tlsrpt-report: the daily reporter */
	{ "organization_name", T_STR, "", 0, 0, "organization-name of the reports" },
	{ "contact_info", T_STR, "", 0, 0,
	  "contact-info address; its domain is the submitter" },
	{ "submitter_domain", T_STR, "", 0, 0, "submitter (default: domain of contact_info)" },
	{ "from_address", T_STR, "", 0, 0,
	  "From: of report mail, may have a display name (default: contact_info)" },
	{ "envelope_sender", T_STR, "", 0, 0, "MAIL FROM of report mail (default: from address)" },
	{ "spool_directory", T_PATH, "/var/lib/tlsrpt-report", 0, 0, "every report built, and its delivery state" },
	{ "spool_retention", T_DURATION, "30d", DAY, 3650 * DAY, "prune spool entries older than this" },
	{ "report_delay", T_DURATION, "1h", 0, DAY,
	  "reports of a day go out after midnight UTC plus a random delay up to this" },
	{ "retry_period", T_DURATION, "24h", 60, 7 * DAY, "retry failed deliveries this long (RFC 8460 5.5)" },
	{ "retry_initial", T_DURATION, "5m", 1, DAY, "first retry delay; doubles each attempt" },
	{ "suppress_period", T_DURATION, "7d", 0, 365 * DAY, "a destination whose delivery failed permanently (e.g. SMTP 5xx) is skipped by later reports this long (0: never)" },
	{ "rua_source", T_STR, "record", 0, 0,
	  "where destinations come from: record (the one Postfix saw), dns (look up again), dns-then-record" },
	{ "max_failure_details", T_INT, "1000", 1, 100000, "failure-details entries per policy in a report" },
	{ "delivery_mail", T_STR, "sendmail", 0, 0, "mail delivery: sendmail, smtp or off" },
	{ "sendmail_command", T_STR, "/usr/sbin/sendmail -i -oi", 0, 0,
	  "command that takes a message on stdin; -f SENDER and -- RCPT are appended" },
	{ "mail_timeout", T_DURATION, "120s", 1, 3600,
	  "time limit of one report mail hand-over (sendmail run or SMTP session)" },
	{ "smtp_relay", T_STR, "", 0, 0, "smtp://host:port for delivery_mail = smtp" },
	{ "smtp_starttls", T_STR, "required", 0, 0, "STARTTLS to the relay: required, try, off" },
	{ "smtp_ca_file", T_STR, "", 0, 0, "CA bundle for the relay (empty: system store)" },
	{ "dkim_sign", T_BOOL, "yes", 0, 0, "sign report mail (no: the MTA's DKIM milter signs)" },
	{ "dkim_domain", T_STR, "", 0, 0, "d= of the signature (default: submitter domain)" },
	{ "dkim_selector", T_STR, "", 0, 0, "s= of the signature" },
	{ "dkim_key_file", T_STR, "", 0, 0, "PEM private key (RSA or Ed25519)" },
	{ "dkim_algorithm", T_STR, "rsa-sha256", 0, 0, "rsa-sha256 or ed25519-sha256" },
	{ "delivery_https", T_BOOL, "yes", 0, 0, "deliver to https: rua destinations" },
	{ "https_verify", T_BOOL, "yes", 0, 0, "verify HTTPS certificates (RFC 8460 allows not to)" },
	{ "https_ca_file", T_STR, "", 0, 0, "CA bundle for HTTPS delivery (empty: system store)" },
	{ "https_connect_timeout", T_DURATION, "30s", 1, 600, "connect timeout per HTTPS delivery" },
	{ "https_timeout", T_DURATION, "120s", 1, 3600, "total timeout per HTTPS delivery" },
	{ "https_concurrency", T_INT, "16", 1, 1024, "parallel HTTPS deliveries" },
	{ "allow_private_destinations", T_BOOL, "no", 0, 0,
	  "deliver to rua hosts on loopback, private or link-local addresses" },
	{ "allow_loopback_destinations", T_BOOL, "no", 0, 0,
	  "deliver to rua hosts on loopback addresses only (tests)" },

	/* tlsrpt-milter: reports others send us */
	{ "milter_socket", T_STR, "unix:/var/spool/postfix/run/tlsrpt-milter/milter.sock", 0, 0,
	  "libmilter socket (unix:PATH or inet:PORT@HOST)" },
	{ "milter_rua_addresses", T_STR, "", 0, 0,
	  "comma separated recipient addresses that receive TLS reports" },
	{ "milter_action", T_STR, "accept", 0, 0, "after storing a report: accept or discard" },
	{ "milter_authserv_id", T_STR, "", 0, 0,
	  "authserv-id whose Authentication-Results dkim=pass is trusted" },
	{ "received_directory", T_PATH, "/var/lib/tlsrpt-milter", 0, 0,
	  "store of received reports" },
	{ "max_message_size", T_SIZE, "20M", 64 * KB, 1 * GB, "report mail larger than this is not parsed" },
	{ "max_report_size", T_SIZE, "20M", 64 * KB, 1 * GB, "decompressed report size limit" },

	/* tlsrptctl: dashboard, alerts (received check) and metrics */
	{ "dashboard_chartjs", T_PATH, "/usr/share/javascript/chart.js/chart.min.js", 0, 0,
	  "Chart.js copied into the dashboard (Debian package libjs-chart.js)" },
	{ "dashboard_days", T_INT, "30", 0, 3650,
	  "days the dashboard covers, ending today (0: all reports)" },
	{ "alert_window", T_DURATION, "2d", DAY, 365 * DAY,
	  "received check: the failure rate and new failures are taken over the reports of this many last days" },
	{ "alert_failure_rate", T_INT, "5", 0, 100,
	  "received check: alert when a domain's failed sessions in the window reach this percentage" },
	{ "alert_min_sessions", T_INT, "10", 1, 1000000000,
	  "received check: the failure rate counts only with at least this many sessions in the window" },
	{ "alert_silence", T_DURATION, "3d", DAY, 365 * DAY,
	  "received check: alert when a usual reporter sent no report for a domain this long" },
	{ "alert_usual_days", T_INT, "5", 1, 3650,
	  "received check: a reporter is usual for a domain after reports on this many days of the last 30" },
	{ "alert_unverified", T_BOOL, "no", 0, 0,
	  "received check: also look at reports without a verified DKIM signature (RFC 8460: ignore them)" },
	{ "alert_state_file", T_STR, "", 0, 0,
	  "received check: what was seen already (empty: check-state.json in received_directory)" },
	{ "alert_mail_to", T_STR, "", 0, 0,
	  "received check: mail what changed to this address through sendmail_command (empty: no mail)" },
	{ "metrics_max_domains", T_INT, "1000", 1, 1000000,
	  "metrics: per-domain series for at most this many domains (by sessions); the rest are summed as domain=\"_other\"" },

	/* tlsrpt-policyd: DANE and MTA-STS for smtp_tls_policy_maps */
	{ "policy_socket", T_STR, "unix:/var/spool/postfix/run/tlsrpt-policyd/policy.sock", 0, 0,
	  "socketmap socket (unix:PATH or inet:HOST:PORT)" },
	{ "postfix_generation", T_STR, "3.10", 0, 0,
	  "3.10 (reply with TLSRPT attributes) or 3.7 (plain replies)" },
	{ "sts_cache_file", T_PATH, "/var/lib/tlsrpt-policyd/sts-cache", 0, 0, "persistent MTA-STS policy cache" },
	{ "sts_fetch_timeout", T_DURATION, "20s", 1, 120, "policy fetch time limit" },
	{ "sts_reply_budget", T_DURATION, "5s", 1, 90,
	  "answer Postfix within this; then use the fallback while the fetch goes on" },
	{ "sts_max_policy_size", T_SIZE, "64K", 1 * KB, 1 * MB, "largest policy file accepted" },
	{ "sts_refresh_interval", T_DURATION, "1d", 60, 365 * DAY, "proactive refresh of cached policies" },
	{ "sts_ca_file", T_STR, "", 0, 0, "CA bundle for policy hosts (empty: system store; tests)" },
	{ "sts_https_port", T_INT, "443", 1, 65535, "policy host port (tests)" },
	{ "policy_default_level", T_STR, "may", 0, 0, "your smtp_tls_security_level (may, encrypt or dane): level of 3.10 replies for STS testing-mode policies, which must not enforce (dane: NOTFOUND)" },
	{ "policy_dane", T_BOOL, "yes", 0, 0,
	  "DANE first: destinations with DNSSEC-validated TLSA records get a dane level, not MTA-STS (dns_resolver must validate DNSSEC and be local)" },
	{ "policy_dane_level", T_STR, "dane-only", 0, 0,
	  "level for destinations with usable TLSA records: dane-only (mandatory DANE) or dane" },
	{ "dane_cache_size", T_INT, "100000", 16, 10000000, "DANE verdicts cached by tlsrpt-policyd (for their DNS TTLs)" },
};

#define NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

struct conf_value {
	char *str;		/* string and path values */
	int64_t num;		/* numeric and bool values */
	bool set;		/* set by the file (for duplicates and printing) */
};

struct conf {
	struct conf_value v[NKEYS];
};

static int key_index(const char *name, size_t len)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strlen(conf_keys[i].name) == len &&
		    memcmp(conf_keys[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

/* Parse 'val' for key 'k' into 'out'. Returns NULL or an error text. */
static const char *parse_value(const struct conf_key *k, const char *val,
			       struct conf_value *out)
{
	char *end;
	long long n;
	int64_t mult = 1;

	switch (k->type) {
	case T_STR:
	case T_PATH:
		if (k->type == T_PATH && val[0] != '/')
			return "must be an absolute path";
		free(out->str);
		out->str = strdup(val);
		return out->str ? NULL : "out of memory";
	case T_BOOL:
		if (!strcmp(val, "yes") || !strcmp(val, "true") || !strcmp(val, "on") || !strcmp(val, "1"))
			out->num = 1;
		else if (!strcmp(val, "no") || !strcmp(val, "false") || !strcmp(val, "off") || !strcmp(val, "0"))
			out->num = 0;
		else
			return "must be yes or no";
		return NULL;
	case T_MODE:
		errno = 0;
		n = strtoll(val, &end, 8);
		if (errno || end == val || *end)
			return "must be an octal mode";
		break;
	default:
		errno = 0;
		if (!isdigit((unsigned char)val[0]))
			return "must be a non-negative number";
		n = strtoll(val, &end, 10);
		if (errno)
			return "number too large";
		if (k->type == T_SIZE && *end) {
			switch (*end++) {
			case 'k': case 'K': mult = KB; break;
			case 'm': case 'M': mult = MB; break;
			case 'g': case 'G': mult = GB; break;
			default: return "bad size suffix (use k, M or G)";
			}
		} else if (k->type == T_DURATION && *end) {
			switch (*end++) {
			case 's': mult = 1; break;
			case 'm': mult = 60; break;
			case 'h': mult = 3600; break;
			case 'd': mult = DAY; break;
			default: return "bad duration suffix (use s, m, h or d)";
			}
		}
		if (*end)
			return "trailing characters after the number";
		if (n > INT64_MAX / mult)
			return "number too large";
		n *= mult;
		break;
	}
	if (n < k->min || n > k->max)
		return "out of range";
	out->num = n;
	return NULL;
}

struct conf *conf_new(void)
{
	struct conf *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	for (size_t i = 0; i < NKEYS; i++) {
		const char *e = parse_value(&conf_keys[i], conf_keys[i].def, &c->v[i]);
		if (e) {		/* a broken default is a bug in the table */
			fprintf(stderr, "panic: default of %s: %s\n", conf_keys[i].name, e);
			abort();
		}
	}
	return c;
}

void conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		free(c->v[i].str);
	free(c);
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

/* One "key = value" line; returns NULL or an error text. */
static const char *parse_line(struct conf *c, const char *s, const char *e,
			      bool from_file, char *detail, size_t dsz)
{
	const char *eq = memchr(s, '=', (size_t)(e - s));
	const char *ks = s, *ke, *vs, *ve = e;
	char val[4096];
	int idx;
	const char *err;

	if (eq == NULL)
		return "expected \"key = value\"";
	ke = eq;
	vs = eq + 1;
	trim(&ks, &ke);
	trim(&vs, &ve);
	idx = key_index(ks, (size_t)(ke - ks));
	if (idx < 0) {
		char name[65];
		size_t n = (size_t)(ke - ks) < sizeof(name) - 1 ? (size_t)(ke - ks) : sizeof(name) - 1;

		memcpy(name, ks, n);
		name[n] = '\0';
		snprintf(detail, dsz, "unknown key \"%s\"", name);
		return detail;
	}
	if (from_file && c->v[idx].set) {
		snprintf(detail, dsz, "duplicate key \"%s\"", conf_keys[idx].name);
		return detail;
	}
	if ((size_t)(ve - vs) >= sizeof(val))
		return "value too long";
	memcpy(val, vs, (size_t)(ve - vs));
	val[ve - vs] = '\0';
	for (const char *p = val; *p; p++)
		if ((unsigned char)*p < 0x20)
			return "control character in value";
	err = parse_value(&conf_keys[idx], val, &c->v[idx]);
	if (err) {
		snprintf(detail, dsz, "%s: %s", conf_keys[idx].name, err);
		return detail;
	}
	c->v[idx].set = true;
	return NULL;
}

int conf_parse(struct conf *c, const char *name, const char *text, size_t len,
	       char *err, size_t errsz)
{
	const char *p = text, *end = text + len;
	char detail[256];
	int lineno = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *ls = p;
		const char *e;

		lineno++;
		p = nl ? nl + 1 : end;
		trim(&ls, &le);
		if (ls == le || *ls == '#')
			continue;
		if (memchr(ls, '\0', (size_t)(le - ls))) {
			snprintf(err, errsz, "%s:%d: NUL byte", name, lineno);
			return -1;
		}
		e = parse_line(c, ls, le, true, detail, sizeof(detail));
		if (e) {
			snprintf(err, errsz, "%s:%d: %s", name, lineno, e);
			return -1;
		}
	}
	return 0;
}

int conf_load(struct conf *c, const char *path, char *err, size_t errsz)
{
	FILE *fp = fopen(path, "r");
	char *text;
	size_t n;
	int rc;

	if (fp == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	text = malloc(1 * MB + 1);
	if (text == NULL) {
		fclose(fp);
		snprintf(err, errsz, "%s: out of memory", path);
		return -1;
	}
	n = fread(text, 1, 1 * MB + 1, fp);
	if (ferror(fp) || n > 1 * MB) {
		snprintf(err, errsz, "%s: %s", path, ferror(fp) ? "read error" : "larger than 1 MiB");
		free(text);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	rc = conf_parse(c, path, text, n, err, errsz);
	free(text);
	return rc;
}

int conf_set(struct conf *c, const char *assignment, char *err, size_t errsz)
{
	char detail[256];
	const char *e = parse_line(c, assignment, assignment + strlen(assignment),
				   false, detail, sizeof(detail));

	if (e) {
		snprintf(err, errsz, "%s", e);
		return -1;
	}
	return 0;
}

static int must_key(const char *key, int want_str)
{
	int i = key_index(key, strlen(key));
	int is_str;

	if (i < 0) {
		fprintf(stderr, "panic: undeclared configuration key %s\n", key);
		abort();
	}
	is_str = conf_keys[i].type == T_STR || conf_keys[i].type == T_PATH;
	if (is_str != want_str) {
		fprintf(stderr, "panic: configuration key %s read with the wrong type\n", key);
		abort();
	}
	return i;
}

const char *conf_str(const struct conf *c, const char *key)
{
	return c->v[must_key(key, 1)].str;
}

int64_t conf_int(const struct conf *c, const char *key)
{
	return c->v[must_key(key, 0)].num;
}

bool conf_bool(const struct conf *c, const char *key)
{
	return conf_int(c, key) != 0;
}

/* A size or duration with the largest suffix that divides it exactly. */
static void print_scaled(FILE *fp, const struct conf_key *k, int64_t v)
{
	static const struct { int64_t unit; char suffix; } sizes[] = {
		{ GB, 'G' }, { MB, 'M' }, { KB, 'K' },
	}, durations[] = {
		{ DAY, 'd' }, { 3600, 'h' }, { 60, 'm' },
	};
	const bool size = k->type == T_SIZE;

	for (size_t i = 0; v != 0 && i < 3; i++) {
		int64_t unit = size ? sizes[i].unit : durations[i].unit;

		if (v % unit == 0) {
			fprintf(fp, "%s = %lld%c\n\n", k->name, (long long)(v / unit),
				size ? sizes[i].suffix : durations[i].suffix);
			return;
		}
	}
	fprintf(fp, "%s = %lld%s\n\n", k->name, (long long)v, size ? "" : "s");
}

void conf_print(const struct conf *c, void *fpv)
{
	FILE *fp = fpv;

	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		fprintf(fp, "# %s\n", k->help);
		if (k->type == T_STR || k->type == T_PATH)
			fprintf(fp, "%s = %s\n\n", k->name, c->v[i].str);
		else if (k->type == T_BOOL)
			fprintf(fp, "%s = %s\n\n", k->name, c->v[i].num ? "yes" : "no");
		else if (k->type == T_MODE)
			fprintf(fp, "%s = %04llo\n\n", k->name, (unsigned long long)c->v[i].num);
		else if (k->type == T_SIZE || k->type == T_DURATION)
			print_scaled(fp, k, c->v[i].num);
		else
			fprintf(fp, "%s = %lld\n\n", k->name, (long long)c->v[i].num);
	}
}
