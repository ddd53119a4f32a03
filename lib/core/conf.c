/*
 * conf - the one configuration format of all tlsrptd programs. See conf.h.
 *
 * SECURITY: the configuration is trusted (root writes it) but still parsed
 * strictly, so a typo is an error and not a silently ignored setting.
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum conf_type {
	T_STR, T_PATH, T_INT, T_BOOL, T_SIZE, T_DURATION, T_MODE,
	T_ENUM,			/* one of 'choices' */
	T_OPTPATH,		/* empty, or an absolute path */
	T_SECTION,		/* not a key: the heading of the keys after it */
};

struct conf_key {
	const char *name;
	enum conf_type type;
	const char *def;	/* default, in file syntax */
	int64_t min, max;	/* for numeric types */
	const char *help;
	const char *choices;	/* T_ENUM: the values, separated by spaces */
};

#define SECTION(title) { title, T_SECTION, NULL, 0, 0, NULL, NULL }

#define KB 1024LL
#define MB (1024LL * 1024)
#define GB (1024LL * 1024 * 1024)
#define DAY 86400LL

/*
 * The table of every key. Keep it sorted by program, then name; the help
 * text is what conf/tlsrptd.conf and the man page say about the key.
 */
#pragma GCC diagnostic push	/* only T_ENUM entries have 'choices' */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const struct conf_key conf_keys[] = {
	SECTION("all programs"),
	{ "state_directory", T_PATH, "/var/lib/tlsrptd", 0, 0,
	  "the collector's directory: day files (days/), log position" },
	{ "user", T_STR, "", 0, 0,
	  "started as root: become this user after binding sockets (empty: stay; under "
	  "systemd each daemon is started as its own user and this stays empty)" },

	SECTION("tlsrptd: the collector"),
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

	SECTION("tlsrptd: the Postfix log follower (Postfix 3.7-3.9)"),
	{ "log_source", T_STR, "", 0, 0,
	  "Postfix log to follow: a file path, 'journal' (the systemd journal; "
	  "'journal:DIRECTORY' reads the journal files there), or '-' for standard input (empty: off)" },
	{ "log_position_file", T_PATH, "/var/lib/tlsrptd/logpos", 0, 0,
	  "where the log follower remembers how far it has read" },
	{ "log_ignore_syslog_names", T_STR, "postfix/tlsrpt-out", 0, 0,
	  "comma separated syslog names whose lines are never counted (report transport)" },
	{ "log_policy_map", T_STR, "", 0, 0,
	  "Postfix table (type:name) giving the TLS policy per domain, queried with postmap -q" },
	{ "log_tls_security_level", T_ENUM, "may", 0, 0,
	  "your Postfix smtp_tls_security_level; with dane or dane-only, sessions the table has no policy for are reported under their MX host's DNSSEC-validated TLSA records",
	  "none may encrypt dane dane-only fingerprint verify secure" },
	{ "dns_cache_size", T_INT, "10000", 16, 10000000, "TLSRPT records cached by the log follower" },
	{ "dns_cache_ttl", T_DURATION, "1h", 1, 7 * DAY, "how long a looked-up TLSRPT record is kept" },
	{ "dns_resolver", T_STR, "", 0, 0, "resolver address[:port] for lookups (empty: system)" },

	SECTION("tlsrpt-report: the daily reporter"),
	{ "organization_name", T_STR, "", 0, 0, "organization-name of the reports" },
	{ "contact_info", T_STR, "", 0, 0,
	  "contact-info address; its domain is the submitter" },
	{ "submitter_domain", T_STR, "", 0, 0, "submitter (default: domain of contact_info)" },
	{ "from_address", T_STR, "", 0, 0,
	  "From: of report mail, may have a display name (default: contact_info)" },
	{ "envelope_sender", T_STR, "", 0, 0,
	  "MAIL FROM of report mail (default: the address of from_address, else contact_info); "
	  "the log follower never counts mail from it (old name: report_sender)" },
	{ "report_archive_address", T_STR, "", 0, 0,
	  "also mail a copy of every report sent to this address (empty: none); "
	  "never retried, never a destination of the report" },
	{ "spool_directory", T_PATH, "/var/lib/tlsrpt-report", 0, 0, "every report built, and its delivery state" },
	{ "spool_retention", T_DURATION, "30d", DAY, 3650 * DAY, "prune spool entries older than this" },
	{ "report_delay", T_DURATION, "1h", 0, DAY,
	  "reports of a day go out after midnight UTC plus a random delay up to this" },
	{ "retry_period", T_DURATION, "24h", 60, 7 * DAY, "retry failed deliveries this long (RFC 8460 5.5)" },
	{ "retry_initial", T_DURATION, "5m", 1, DAY, "first retry delay; doubles each attempt" },
	{ "suppress_period", T_DURATION, "7d", 0, 365 * DAY, "a destination that failed permanently for a reason about itself (unknown mailbox or domain, HTTP 410; see deliver.h) is skipped by later reports this long (0: never)" },
	{ "rua_source", T_ENUM, "record", 0, 0,
	  "where destinations come from: record (the one Postfix saw), dns (look up again), dns-then-record",
	  "record dns dns-then-record" },
	{ "max_failure_details", T_INT, "1000", 1, 100000, "failure-details entries per policy in a report" },
	{ "delivery_mail", T_ENUM, "sendmail", 0, 0, "mail delivery: sendmail, smtp or off",
	  "sendmail smtp off" },
	{ "sendmail_command", T_STR, "/usr/sbin/sendmail -i -oi", 0, 0,
	  "command that takes a message on stdin; -f SENDER and -- RCPT are appended" },
	{ "mail_timeout", T_DURATION, "120s", 1, 3600,
	  "time limit of one report mail hand-over (sendmail run or SMTP session)" },
	{ "smtp_relay", T_STR, "", 0, 0, "smtp://host:port for delivery_mail = smtp" },
	{ "smtp_starttls", T_ENUM, "required", 0, 0, "STARTTLS to the relay: required, try, off",
	  "required try off" },
	{ "smtp_ca_file", T_OPTPATH, "", 0, 0, "CA bundle for the relay (empty: system store)" },
	{ "dkim_sign", T_BOOL, "yes", 0, 0, "sign report mail (no: the MTA's DKIM milter signs)" },
	{ "dkim_domain", T_STR, "", 0, 0, "d= of the signature (default: submitter domain)" },
	{ "dkim_selector", T_STR, "", 0, 0, "s= of the signature" },
	{ "dkim_key_file", T_OPTPATH, "", 0, 0, "PEM private key (RSA or Ed25519)" },
	{ "dkim_algorithm", T_ENUM, "rsa-sha256", 0, 0, "rsa-sha256 or ed25519-sha256",
	  "rsa-sha256 ed25519-sha256" },
	{ "delivery_https", T_BOOL, "yes", 0, 0, "deliver to https: rua destinations" },
	{ "https_verify", T_BOOL, "yes", 0, 0, "verify HTTPS certificates (RFC 8460 allows not to)" },
	{ "https_ca_file", T_OPTPATH, "", 0, 0, "CA bundle for HTTPS delivery (empty: system store)" },
	{ "https_connect_timeout", T_DURATION, "30s", 1, 600, "connect timeout per HTTPS delivery" },
	{ "https_timeout", T_DURATION, "120s", 1, 3600, "total timeout per HTTPS delivery" },
	{ "https_concurrency", T_INT, "16", 1, 1024, "parallel HTTPS deliveries" },
	{ "allow_private_destinations", T_BOOL, "no", 0, 0,
	  "deliver to rua hosts on loopback, private or link-local addresses" },
	{ "allow_loopback_destinations", T_BOOL, "no", 0, 0,
	  "deliver to rua hosts on loopback addresses only (tests)" },

	SECTION("tlsrpt-milter: reports others send us"),
	{ "milter_socket", T_STR, "unix:/var/spool/postfix/run/tlsrpt-milter/milter.sock", 0, 0,
	  "libmilter socket (unix:PATH or inet:PORT@HOST)" },
	{ "milter_rua_addresses", T_STR, "", 0, 0,
	  "comma separated recipient addresses that receive TLS reports" },
	{ "milter_action", T_ENUM, "accept", 0, 0, "after storing a report: accept or discard",
	  "accept discard" },
	{ "milter_authserv_id", T_STR, "", 0, 0,
	  "authserv-id whose Authentication-Results dkim=pass is trusted" },
	{ "received_directory", T_PATH, "/var/lib/tlsrpt-milter", 0, 0,
	  "store of received reports" },
	{ "max_message_size", T_SIZE, "20M", 64 * KB, 1 * GB, "report mail larger than this is not parsed" },
	{ "max_report_size", T_SIZE, "20M", 64 * KB, 1 * GB, "decompressed report size limit" },

	SECTION("tlsrptctl: dashboard, alerts (received check) and metrics"),
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

	SECTION("tlsrpt-policyd: DANE and MTA-STS for smtp_tls_policy_maps"),
	{ "policy_socket", T_STR, "unix:/var/spool/postfix/run/tlsrpt-policyd/policy.sock", 0, 0,
	  "socketmap socket (unix:PATH or inet:HOST:PORT)" },
	{ "postfix_generation", T_ENUM, "3.10", 0, 0,
	  "3.10 (reply with TLSRPT attributes) or 3.7 (plain replies)", "3.10 3.7" },
	{ "sts_cache_file", T_PATH, "/var/lib/tlsrpt-policyd/sts-cache", 0, 0, "persistent MTA-STS policy cache" },
	{ "sts_fetch_timeout", T_DURATION, "20s", 1, 120, "policy fetch time limit" },
	{ "sts_reply_budget", T_DURATION, "5s", 1, 90,
	  "answer Postfix within this; then use the fallback while the fetch goes on" },
	{ "sts_max_policy_size", T_SIZE, "64K", 1 * KB, 1 * MB, "largest policy file accepted" },
	{ "sts_refresh_interval", T_DURATION, "1d", 60, 365 * DAY, "proactive refresh of cached policies" },
	{ "sts_ca_file", T_OPTPATH, "", 0, 0, "CA bundle for policy hosts (empty: system store; tests)" },
	{ "sts_https_port", T_INT, "443", 1, 65535, "policy host port (tests)" },
	{ "sts_allow_private_destinations", T_BOOL, "no", 0, 0,
	  "fetch policies from hosts on loopback, private or link-local addresses" },
	{ "sts_allow_loopback_destinations", T_BOOL, "no", 0, 0,
	  "fetch policies from hosts on loopback addresses only (tests)" },
	{ "policy_default_level", T_ENUM, "may", 0, 0, "your smtp_tls_security_level (may, encrypt or dane): level of 3.10 replies for STS testing-mode policies, which must not enforce (dane: NOTFOUND)",
	  "may encrypt dane" },
	{ "policy_dane", T_BOOL, "yes", 0, 0,
	  "DANE first: destinations with DNSSEC-validated TLSA records get a dane level, not MTA-STS (dns_resolver must validate DNSSEC and be local)" },
	{ "policy_dane_level", T_ENUM, "dane-only", 0, 0,
	  "level for destinations with usable TLSA records: dane-only (mandatory DANE) or dane",
	  "dane-only dane" },
	{ "dane_cache_size", T_INT, "100000", 16, 10000000, "DANE verdicts cached by tlsrpt-policyd (for their DNS TTLs)" },

	SECTION("fleet: several hosts report as one organization (PostgreSQL)"),
	{ "fleet_database", T_STR, "", 0, 0,
	  "libpq conninfo of the fleet database, e.g. \"host=db.example dbname=tlsrpt user=tlsrpt "
	  "sslmode=verify-full sslrootcert=/etc/tlsrptd/db-ca.pem\" (empty: single host, no database)" },
	{ "fleet_password_file", T_OPTPATH, "", 0, 0,
	  "file holding the database password on its first line: mode 0600 or 0640, owner root "
	  "or the program's user (empty: none, or libpq's ~/.pgpass)" },
	{ "fleet_host_name", T_STR, "", 0, 0,
	  "this host's name in the fleet, unique per host (empty: the system's host name)" },
	{ "fleet_push_max_age", T_DURATION, "30d", DAY, 3650 * DAY,
	  "tlsrptctl push sends day files up to this old: how far a host that was cut off catches up" },
	{ "fleet_push_wait", T_DURATION, "4h", 0, 2 * DAY,
	  "a day is reported once every active host pushed it after midnight UTC, or this long after "
	  "midnight whatever is missing (results pushed later are counted, and reported only for "
	  "domains without a report yet)" },
	{ "fleet_lease", T_DURATION, "10m", 60, DAY,
	  "a reporter node holds the reports it delivers this long past its last write; a node that "
	  "crashed is taken over at once, one that hangs after this; must exceed mail_timeout and "
	  "https_timeout" },
};

#pragma GCC diagnostic pop

#define NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

/* Old names still read, with a warning: { old name, key }. */
static const struct {
	const char *old, *key;
} conf_aliases[] = {
	/* the collector's name for the same address: one key since issue 11 */
	{ "report_sender", "envelope_sender" },
};
#define MAX_MESSAGES 64		/* errors and warnings kept from loading */

struct conf_value {
	char *str;		/* string and path values */
	int64_t num;		/* numeric and bool values */
	bool set;		/* set by the file (for duplicates and printing) */
	char *where;		/* "PATH:LINE" or "-o" once set, else NULL */
};

struct conf_msg {
	bool error;
	char *text;
};

struct conf {
	struct conf_value v[NKEYS];
	struct conf_msg msgs[MAX_MESSAGES];
	size_t nmsgs;
	size_t dropped;		/* messages beyond MAX_MESSAGES */
};

static bool is_key(const struct conf_key *k)
{
	return k->type != T_SECTION;
}

static bool is_str_type(enum conf_type t)
{
	return t == T_STR || t == T_PATH || t == T_ENUM || t == T_OPTPATH;
}

static int key_index(const char *name, size_t len)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (is_key(&conf_keys[i]) && strlen(conf_keys[i].name) == len &&
		    memcmp(conf_keys[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

/* Is 'val' one of the space separated 'choices'? */
static bool enum_has(const char *choices, const char *val)
{
	size_t n = strlen(val);

	for (const char *p = choices; *p; ) {
		const char *e = strchr(p, ' ');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && memcmp(p, val, n) == 0)
			return true;
		p += len;
		while (*p == ' ')
			p++;
	}
	return false;
}

/* "a, b, c" of the choices, into out. */
static const char *enum_list(const char *choices, char *out, size_t outsz)
{
	size_t o = 0;

	for (const char *p = choices; *p && o + 1 < outsz; p++) {
		if (*p == ' ') {
			if (o + 3 >= outsz)
				break;
			out[o++] = ',';
			out[o++] = ' ';
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	return out;
}

/* Parse 'val' for key 'k' into 'out'. Returns NULL or an error text
 * (static, or written into 'detail'). */
static const char *parse_value(const struct conf_key *k, const char *val,
			       struct conf_value *out, char *detail, size_t dsz)
{
	char *end;
	long long n;
	int64_t mult = 1;

	switch (k->type) {
	case T_ENUM:
		if (!enum_has(k->choices, val)) {
			char list[160], shown[100];	/* fits the 512 of the callers */

			snprintf(detail, dsz, "\"%s\" is not one of: %s",
				 log_printable(shown, sizeof(shown), val, strlen(val)),
				 enum_list(k->choices, list, sizeof(list)));
			return detail;
		}
		/* fall through */
	case T_STR:
	case T_PATH:
	case T_OPTPATH:
		if (k->type == T_PATH && val[0] != '/')
			return "must be an absolute path";
		if (k->type == T_OPTPATH && val[0] != '\0' && val[0] != '/')
			return "must be an absolute path (or empty)";
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
	case T_SECTION:
		return "not a key";
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
	char detail[512];

	if (c == NULL)
		return NULL;
	for (size_t i = 0; i < NKEYS; i++) {
		const char *e;

		if (!is_key(&conf_keys[i]))
			continue;
		e = parse_value(&conf_keys[i], conf_keys[i].def, &c->v[i], detail, sizeof(detail));
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
	for (size_t i = 0; i < NKEYS; i++) {
		free(c->v[i].str);
		free(c->v[i].where);
	}
	for (size_t i = 0; i < c->nmsgs; i++)
		free(c->msgs[i].text);
	free(c);
}

static void add_msg(struct conf *c, bool error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_msg(struct conf *c, bool error, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	if (c->nmsgs == MAX_MESSAGES) {
		c->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	c->msgs[c->nmsgs].error = error;
	c->msgs[c->nmsgs].text = strdup(text);
	if (c->msgs[c->nmsgs].text)
		c->nmsgs++;
}

size_t conf_nmessages(const struct conf *c)
{
	return c->nmsgs;
}

const char *conf_message(const struct conf *c, size_t i, bool *is_error)
{
	if (i >= c->nmsgs)
		return NULL;
	if (is_error)
		*is_error = c->msgs[i].error;
	return c->msgs[i].text;
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

/* The text from a '#' that starts the value or follows white space, or NULL. */
static const char *trailing_comment(const char *val)
{
	for (const char *p = val; *p; p++)
		if (*p == '#' && (p == val || p[-1] == ' ' || p[-1] == '\t'))
			return p;
	return NULL;
}

static bool quoted(const char *val)
{
	size_t n = strlen(val);

	return n >= 2 && (val[0] == '"' || val[0] == '\'') && val[n - 1] == val[0];
}

/*
 * One "key = value" line; returns NULL or an error text. 'where' is
 * "PATH:LINE" (a file) or "-o" (the command line), 'prefix' what messages
 * start with ("PATH:LINE: " or "-o ").
 */
static const char *parse_line(struct conf *c, const char *s, const char *e,
			      const char *where, const char *prefix, bool from_file,
			      char *detail, size_t dsz)
{
	const char *eq = memchr(s, '=', (size_t)(e - s));
	const char *ks = s, *ke, *vs, *ve = e;
	const struct conf_key *k;
	char val[4096], why[512];
	int idx;
	const char *err, *hash;

	if (eq == NULL)
		return "expected \"key = value\"";
	ke = eq;
	vs = eq + 1;
	trim(&ks, &ke);
	trim(&vs, &ve);
	idx = key_index(ks, (size_t)(ke - ks));
	for (size_t i = 0; idx < 0 && i < sizeof(conf_aliases) / sizeof(conf_aliases[0]); i++) {
		if (strlen(conf_aliases[i].old) == (size_t)(ke - ks) &&
		    memcmp(conf_aliases[i].old, ks, (size_t)(ke - ks)) == 0) {
			idx = key_index(conf_aliases[i].key, strlen(conf_aliases[i].key));
			if (from_file && c->v[idx].set) {
				snprintf(detail, dsz, "duplicate key \"%s\" (%s is its old name)",
					 conf_aliases[i].key, conf_aliases[i].old);
				return detail;
			}
			add_msg(c, false, "%s%s is the old name of %s: it works, but write %s",
				prefix, conf_aliases[i].old, conf_aliases[i].key, conf_aliases[i].key);
		}
	}
	if (idx < 0) {
		char name[65];
		size_t n = (size_t)(ke - ks) < sizeof(name) - 1 ? (size_t)(ke - ks) : sizeof(name) - 1;

		memcpy(name, ks, n);
		name[n] = '\0';
		snprintf(detail, dsz, "unknown key \"%s\"", log_printable(why, 100, name, n));
		return detail;
	}
	k = &conf_keys[idx];
	if (from_file && c->v[idx].set) {
		snprintf(detail, dsz, "duplicate key \"%s\"", k->name);
		return detail;
	}
	if ((size_t)(ve - vs) >= sizeof(val))
		return "value too long";
	memcpy(val, vs, (size_t)(ve - vs));
	val[ve - vs] = '\0';
	for (const char *p = val; *p; p++)
		if ((unsigned char)*p < 0x20)
			return "control character in value";
	/*
	 * Values are taken as written: no quotes are removed, and '#' starts a
	 * comment only at the start of a line (as in Postfix's main.cf). What
	 * looks like quoting or a trailing comment is an error where the type
	 * lets us be sure (everything but free text), else a warning.
	 */
	hash = trailing_comment(val);
	if (hash && k->type != T_STR) {
		snprintf(detail, dsz, "%s: \"%s\" in the value: comments go on lines of their own",
			 k->name, log_printable(why, 64, hash, strlen(hash)));
		return detail;
	}
	if (quoted(val) && k->type != T_STR) {
		snprintf(detail, dsz, "%s: value in quotes: values are taken as written, without quotes",
			 k->name);
		return detail;
	}
	err = parse_value(k, val, &c->v[idx], why, sizeof(why));
	if (err) {
		snprintf(detail, dsz, "%s: %s", k->name, err);
		return detail;
	}
	if (hash)
		add_msg(c, false, "%s%s: \"%s\" is part of the value: comments go on lines of their own",
			prefix, k->name, log_printable(why, 64, hash, strlen(hash)));
	if (quoted(val))
		add_msg(c, false, "%s%s: the quotes are part of the value: values are taken as written",
			prefix, k->name);
	free(c->v[idx].where);
	c->v[idx].where = strdup(where);
	c->v[idx].set = true;
	return NULL;
}

int conf_parse(struct conf *c, const char *name, const char *text, size_t len,
	       char *err, size_t errsz)
{
	const char *p = text, *end = text + len;
	char detail[512], where[1100], prefix[1104];
	int lineno = 0, errors = 0;

	if (errsz)
		err[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *ls = p;
		const char *e;

		lineno++;
		p = nl ? nl + 1 : end;
		trim(&ls, &le);
		if (ls == le || *ls == '#')
			continue;
		snprintf(where, sizeof(where), "%s:%d", name, lineno);
		snprintf(prefix, sizeof(prefix), "%s: ", where);
		if (memchr(ls, '\0', (size_t)(le - ls)))
			e = "NUL byte";
		else
			e = parse_line(c, ls, le, where, prefix, true, detail, sizeof(detail));
		if (e) {
			/* go on: every mistake of the file is reported at once */
			if (errors++ == 0)
				snprintf(err, errsz, "%s%s", prefix, e);
			add_msg(c, true, "%s%s", prefix, e);
		}
	}
	return errors ? -1 : 0;
}

int conf_load(struct conf *c, const char *path, char *err, size_t errsz)
{
	FILE *fp = fopen(path, "r");
	char *text;
	size_t n;
	int rc;

	if (fp == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		add_msg(c, true, "%s", err);
		return -1;
	}
	text = malloc(1 * MB + 1);
	if (text == NULL) {
		fclose(fp);
		snprintf(err, errsz, "%s: out of memory", path);
		add_msg(c, true, "%s", err);
		return -1;
	}
	n = fread(text, 1, 1 * MB + 1, fp);
	if (ferror(fp) || n > 1 * MB) {
		snprintf(err, errsz, "%s: %s", path, ferror(fp) ? "read error" : "larger than 1 MiB");
		add_msg(c, true, "%s", err);
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
	char detail[512];
	const char *e = parse_line(c, assignment, assignment + strlen(assignment),
				   "-o", "-o ", false, detail, sizeof(detail));
	const char *eq = strchr(assignment, '=');
	size_t klen = eq ? strcspn(assignment, " \t=") : 0;

	if (e) {
		/* "-o KEY: what" for a value, "-o ASSIGNMENT: what" otherwise */
		if (klen && strncmp(e, assignment, klen) == 0 && e[klen] == ':')
			snprintf(err, errsz, "-o %s", e);
		else
			snprintf(err, errsz, "-o %s: %s", assignment, e);
		add_msg(c, true, "%s", err);
		return -1;
	}
	return 0;
}

static int must_key(const char *key, int want_str)
{
	int i = key_index(key, strlen(key));

	if (i < 0) {
		fprintf(stderr, "panic: undeclared configuration key %s\n", key);
		abort();
	}
	if (is_str_type(conf_keys[i].type) != (want_str != 0)) {
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

bool conf_is_set(const struct conf *c, const char *key)
{
	int i = key_index(key, strlen(key));

	if (i < 0) {
		fprintf(stderr, "panic: undeclared configuration key %s\n", key);
		abort();
	}
	return c->v[i].where != NULL;
}

const char *conf_origin(const struct conf *c, const char *key, char *buf, size_t bufsz)
{
	int i = key_index(key, strlen(key));

	if (i < 0) {
		fprintf(stderr, "panic: undeclared configuration key %s\n", key);
		abort();
	}
	if (c->v[i].where == NULL)
		snprintf(buf, bufsz, "%s (default)", key);
	else if (strcmp(c->v[i].where, "-o") == 0)
		snprintf(buf, bufsz, "-o %s", key);
	else
		snprintf(buf, bufsz, "%s: %s", c->v[i].where, key);
	return buf;
}

/* A size or duration with the largest suffix that divides it exactly. */
static void format_scaled(char *out, size_t outsz, const struct conf_key *k, int64_t v)
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
			snprintf(out, outsz, "%lld%c", (long long)(v / unit),
				 size ? sizes[i].suffix : durations[i].suffix);
			return;
		}
	}
	snprintf(out, outsz, "%lld%s", (long long)v, size ? "" : "s");
}

/* A value of key 'k' in file syntax. */
static void format_value(char *out, size_t outsz, const struct conf_key *k,
			 const struct conf_value *v)
{
	if (is_str_type(k->type))
		snprintf(out, outsz, "%s", v->str);
	else if (k->type == T_BOOL)
		snprintf(out, outsz, "%s", v->num ? "yes" : "no");
	else if (k->type == T_MODE)
		snprintf(out, outsz, "%04llo", (unsigned long long)v->num);
	else if (k->type == T_SIZE || k->type == T_DURATION)
		format_scaled(out, outsz, k, v->num);
	else
		snprintf(out, outsz, "%lld", (long long)v->num);
}

void conf_print(const struct conf *c, void *fpv)
{
	FILE *fp = fpv;
	char val[4200];

	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (!is_key(k)) {
			fprintf(fp, "# --- %s ---\n\n", k->name);
			continue;
		}
		format_value(val, sizeof(val), k, &c->v[i]);
		fprintf(fp, "# %s\n%s = %s\n\n", k->help, k->name, val);
	}
}

size_t conf_nkeys(void)
{
	return NKEYS;
}

int conf_describe(size_t i, struct conf_info *out)
{
	static const char *const types[] = {
		[T_STR] = "text", [T_PATH] = "path", [T_INT] = "number", [T_BOOL] = "yes or no",
		[T_SIZE] = "size", [T_DURATION] = "duration", [T_MODE] = "mode",
		[T_ENUM] = "one of", [T_OPTPATH] = "path or empty", [T_SECTION] = "section",
	};
	const struct conf_key *k;
	struct conf_value v = { 0 };
	char detail[512];

	if (i >= NKEYS)
		return -1;
	k = &conf_keys[i];
	memset(out, 0, sizeof(*out));
	out->name = k->name;
	out->section = !is_key(k);
	out->type = types[k->type];
	out->help = k->help;
	if (out->section)
		return 0;
	if (k->type == T_ENUM)
		enum_list(k->choices, out->bounds, sizeof(out->bounds));
	if (parse_value(k, k->def, &v, detail, sizeof(detail)) == NULL)
		format_value(out->def, sizeof(out->def), k, &v);
	free(v.str);
	if (k->type == T_INT || k->type == T_SIZE || k->type == T_DURATION) {
		char lo[32], hi[32];
		struct conf_value a = { .num = k->min }, b = { .num = k->max };

		format_value(lo, sizeof(lo), k, &a);
		format_value(hi, sizeof(hi), k, &b);
		snprintf(out->bounds, sizeof(out->bounds), "%s to %s", lo, hi);
	}
	return 0;
}
