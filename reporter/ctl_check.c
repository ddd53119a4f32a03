/*
 * ctl_check - `tlsrptctl received check`: alerts for cron or a monitoring
 * system about the reports others sent us.
 *
 *   received check [--now TIME] [--unverified] [--no-state] [--dry-run]
 *                  [--mail ADDRESS] [--json]
 *
 * Over the reports of the last alert_window (by the UTC day a report's
 * range starts, as everywhere), per policy domain, it finds:
 *   rate      failed sessions reached alert_failure_rate percent (with at
 *             least alert_min_sessions sessions in the window)
 *   type      a result type that no report had in the 30 days before the
 *             window
 *   mx        a failing MX host that no report had in those 30 days
 *   silent    an organization that sent reports for the domain on at
 *             least alert_usual_days of the last 30 days sent none for
 *             alert_silence
 * Only reports with a verified DKIM signature count, unless --unverified
 * or alert_unverified = yes.
 *
 * What was found is remembered in the state file (alert_state_file,
 * default received_directory/check-state.json), so each finding is told
 * once: rate and silent when the condition starts (and, as information,
 * when it ends), type and mx when they first appear. --no-state tells
 * every condition that holds now and writes nothing; --dry-run reads the
 * state but does not write it.
 *
 * Exit: 0 nothing new, CTL_ALERT (2) something new (each printed as one
 * line "ALERT class domain kind: text"), or an error code (ctl.h). Report
 * text is printed with control characters replaced. With --mail or
 * alert_mail_to the new findings also go by mail (sendmail_command or
 * smtp_relay, as report mail); a failed hand-over is CTL_UNAVAILABLE.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"
#include "deliver.h"
#include "jget.h"
#include "received.h"
#include "rptparse.h"
#include "rstats.h"

#define HISTORY_DAYS 30
#define STATE_MAX (64u << 20)

/* the usage of received check is in ctl_received_usage (ctl_received.c) */
static void check_usage(void)
{
	ctl_usage(ctl_received_usage);
}

/* Report text for a terminal or a mail: control characters become '?'
 * (also U+0080..U+009F, the C1 controls, in their UTF-8 form). */
static void safe(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			buf_addc(b, '?');
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			buf_addc(b, '?');
			p++;
		} else
			buf_addc(b, (char)*p);
	}
}

struct finding {
	const char *cls, *domain, *kind;
	bool alert;		/* new trouble (else: information, e.g. recovered) */
	char key[1200];		/* state key */
	struct buf text;
};

struct check {
	struct json_object *state_in, *state_out;	/* {"seen": {key: since}} */
	bool stateless;
	int64_t now;
	struct finding *f;
	size_t nf, capf;
};

static struct finding *add_finding(struct check *ck, const char *cls, const char *domain,
				   const char *kind, bool alert)
{
	struct finding *f;

	if (ck->nf == ck->capf) {
		size_t cap = ck->capf ? ck->capf * 2 : 16;
		struct finding *n = realloc(ck->f, cap * sizeof(*n));

		if (n == NULL)
			return NULL;
		ck->f = n;
		ck->capf = cap;
	}
	f = &ck->f[ck->nf++];
	memset(f, 0, sizeof(*f));
	f->cls = cls;
	f->domain = domain;
	f->kind = kind;
	f->alert = alert;
	buf_init(&f->text, 8192);
	return f;
}

/* Was condition 'key' known before? Keep it in the new state either way. */
static bool seen_before(struct check *ck, const char *key)
{
	struct json_object *seen = jget_obj(ck->state_in, "seen"), *v = NULL;
	int64_t since = ck->now;
	bool known = seen && json_object_object_get_ex(seen, key, &v);

	if (known && json_object_is_type(v, json_type_int))
		since = json_object_get_int64(v);
	json_object_object_add(jget_obj(ck->state_out, "seen"), key, json_object_new_int64(since));
	return known && !ck->stateless;
}

static bool was_seen(struct check *ck, const char *key)
{
	struct json_object *seen = jget_obj(ck->state_in, "seen");

	return !ck->stateless && seen && json_object_object_get_ex(seen, key, NULL);
}

static void key_of(char *out, size_t outsz, const char *kind, const char *cls, const char *dom,
		   const char *what)
{
	snprintf(out, outsz, "%s\x1f%s\x1f%s\x1f%s", kind, cls, dom, what ? what : "");
}

static void check_domain(struct check *ck, const struct conf *c, const char *cls,
			 struct json_object *d, struct json_object *hist)
{
	const char *dom = jget_text(d, "domain");
	int64_t ok = jget_int(d, "successful"), failed = jget_int(d, "failed"), total = rstats_add(ok, failed);
	int64_t pct = conf_int(c, "alert_failure_rate"), min = conf_int(c, "alert_min_sessions");
	int64_t silence = conf_int(c, "alert_silence"), usual = conf_int(c, "alert_usual_days");
	char key[1200];
	struct finding *f;
	struct json_object *orgs = jget_obj(d, "organizations");

	/* failure rate */
	key_of(key, sizeof(key), "rate", cls, dom, NULL);
	if (total >= min && total > 0 && (double)failed * 100.0 >= (double)pct * (double)total) {
		if (!seen_before(ck, key) && (f = add_finding(ck, cls, dom, "rate", true)) != NULL) {
			buf_printf(&f->text, "failure rate %.2f %% (%lld of %lld sessions) reached "
				   "alert_failure_rate %lld %%", 100.0 * (double)failed / (double)total,
				   (long long)failed, (long long)total, (long long)pct);
			snprintf(f->key, sizeof(f->key), "%s", key);
		}
	} else if (total < min || total == 0) {
		if (was_seen(ck, key))
			seen_before(ck, key);	/* too few sessions to judge: as it was */
	} else if (was_seen(ck, key) && (f = add_finding(ck, cls, dom, "rate", false)) != NULL) {
		buf_printf(&f->text, "failure rate back below %lld %% (%lld of %lld sessions)",
			   (long long)pct, (long long)failed, (long long)total);
	}
	/* new result types and failing MX hosts */
	for (int k = 0; k < 2; k++) {
		const char *field = k ? "failing_mx" : "result_types", *kind = k ? "mx" : "type";
		struct json_object *now = jget_obj(d, field), *before = jget_obj(hist, field);

		if (now == NULL)
			continue;
		json_object_object_foreach(now, name, v) {
			if (before && json_object_object_get_ex(before, name, NULL))
				continue;	/* seen in the 30 days before the window */
			key_of(key, sizeof(key), kind, cls, dom, name);
			if (seen_before(ck, key) || (f = add_finding(ck, cls, dom, kind, true)) == NULL)
				continue;
			buf_adds(&f->text, k ? "new failing MX host " : "new result type ");
			safe(&f->text, name);
			buf_printf(&f->text, " (%lld failed sessions; none in the %d days before)",
				   (long long)json_object_get_int64(v), HISTORY_DAYS);
		}
	}
	/* usual reporters gone silent */
	if (orgs == NULL)
		return;
	json_object_object_foreach(orgs, org, o) {
		int64_t last = jget_int(o, "last_end");

		if (jget_int(o, "history_days") < usual)
			continue;
		key_of(key, sizeof(key), "silent", cls, dom, org);
		if (last + silence <= ck->now) {
			char t[32];

			if (seen_before(ck, key) || (f = add_finding(ck, cls, dom, "silent", true)) == NULL)
				continue;
			rpt_format_time(last, t, sizeof(t));
			buf_adds(&f->text, "no report from ");
			safe(&f->text, org);
			buf_printf(&f->text, " since %s (it reported on %lld of the last %d days)", t,
				   (long long)jget_int(o, "history_days"), HISTORY_DAYS);
		} else if (was_seen(ck, key) && (f = add_finding(ck, cls, dom, "silent", false)) != NULL) {
			buf_adds(&f->text, "reports again: ");
			safe(&f->text, org);
		}
	}
}

static int write_state(const char *path, struct json_object *st)
{
	char tmp[8300];
	const char *text = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = text ? strlen(text) : 0;
	int fd;

	if (text == NULL || snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0 || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		int e = errno;

		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

static struct json_object *read_state(const char *path)
{
	struct json_object *o = NULL;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char *d;
	ssize_t n;

	if (fd < 0)
		return NULL;
	d = malloc(STATE_MAX + 1);
	if (d && (n = read(fd, d, STATE_MAX + 1)) >= 0 && n <= (ssize_t)STATE_MAX) {
		d[n] = '\0';
		o = json_tokener_parse(d);
		if (o && !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			o = NULL;
		}
	}
	free(d);
	close(fd);
	return o;
}

static int send_mail(const struct conf *c, const char *to, struct check *ck, size_t nalerts)
{
	struct buf m;
	struct delivery_result res;
	char date[64], host[256] = "localhost";
	time_t t = (time_t)ck->now;
	struct tm tm;

	gethostname(host, sizeof(host) - 1);
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_init(&m, 4u << 20);
	buf_printf(&m, "From: %s\r\nTo: %s\r\nDate: %s\r\nSubject: TLS reports: %zu new alert%s on ",
		   *conf_str(c, "contact_info") ? conf_str(c, "contact_info") : to, to, date,
		   nalerts, nalerts == 1 ? "" : "s");
	safe(&m, host);
	buf_printf(&m, "\r\nMessage-ID: <%lld.%ld.tlsrpt-check@", (long long)ck->now, (long)getpid());
	safe(&m, host);
	buf_adds(&m, ">\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
		 "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
		 "tlsrptctl received check found:\r\n\r\n");
	for (size_t i = 0; i < ck->nf; i++) {
		struct finding *f = &ck->f[i];

		buf_printf(&m, "%s %s ", f->alert ? "ALERT" : "INFO", f->cls);
		safe(&m, f->domain);
		buf_printf(&m, " %s: %s\r\n", f->kind, f->text.data ? f->text.data : "");
	}
	buf_adds(&m, "\r\nDetails: tlsrptctl dashboard, tlsrptctl received summary.\r\n");
	if (m.overflow) {
		buf_free(&m);
		fprintf(stderr, "tlsrptctl: the alert mail is too large\n");
		return -1;
	}
	mail_send(c, to, m.data, m.len, &res);
	buf_free(&m);
	if (!res.ok) {
		fprintf(stderr, "tlsrptctl: alert mail to %s: %s\n", to, res.detail);
		return -1;
	}
	return 0;
}

int ctl_check(int argc, char **argv, const struct conf *c)
{
	struct check ck = { 0 };
	struct rstats_opts ro = { 0 }, ho = { 0 };
	struct received_store *rs;
	struct json_object *cur, *hist, *json = NULL;
	const char *mail = conf_str(c, "alert_mail_to"), *statefile = conf_str(c, "alert_state_file");
	bool unverified = conf_bool(c, "alert_unverified"), dry = false, as_json = false;
	char err[512], defstate[4200];
	size_t nalerts = 0;
	int rc = CTL_OK, window = (int)(conf_int(c, "alert_window") / 86400);

	ck.now = (int64_t)time(NULL);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) {
			if (ctl_parse_now(argv[++i], &ck.now) != 0) {
				fprintf(stderr, "tlsrptctl: --now: not a date: %s\n", argv[i]);
				return CTL_USAGE;
			}
		} else if (strcmp(argv[i], "--unverified") == 0) {
			unverified = true;
		} else if (strcmp(argv[i], "--no-state") == 0) {
			ck.stateless = true;
		} else if (strcmp(argv[i], "--dry-run") == 0) {
			dry = true;
		} else if (strcmp(argv[i], "--mail") == 0 && i + 1 < argc) {
			mail = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else {
			check_usage();
			return CTL_USAGE;
		}
	}
	if (*statefile == '\0') {
		snprintf(defstate, sizeof(defstate), "%s/check-state.json", conf_str(c, "received_directory"));
		statefile = defstate;
	}
	if (ctl_received_open(c, &rs, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		return ctl_status_of(err, CTL_IOERR);
	}
	/* the window, and the 30 days before it */
	ro.now = ck.now;
	ro.days = window > 0 ? window : 1;
	ro.lookback_days = HISTORY_DAYS;
	ho.now = ck.now - (int64_t)ro.days * 86400;
	ho.days = HISTORY_DAYS;
	cur = rstats_build(rs, &ro, err, sizeof(err));
	hist = cur ? rstats_build(rs, &ho, err, sizeof(err)) : NULL;
	received_close(rs);
	if (cur == NULL || hist == NULL) {
		fprintf(stderr, "tlsrptctl: %s\n", err);
		json_object_put(cur);
		return ctl_status_of(err, CTL_IOERR);
	}
	ck.state_in = ck.stateless ? NULL : read_state(statefile);
	ck.state_out = json_object_new_object();
	json_object_object_add(ck.state_out, "version", json_object_new_int(1));
	json_object_object_add(ck.state_out, "checked", json_object_new_int64(ck.now));
	json_object_object_add(ck.state_out, "seen", json_object_new_object());
	for (int k = 0; k < 2; k++) {
		const char *cls = k ? "unverified" : "verified";
		struct json_object *m = jget_obj(cur, cls);

		if ((k == 1 && !unverified) || m == NULL)
			continue;
		json_object_object_foreach(m, dom, d)
			check_domain(&ck, c, cls, d, jget_obj(jget_obj(hist, cls), dom));
	}
	if (as_json)
		json = json_object_new_array();
	for (size_t i = 0; i < ck.nf; i++) {
		struct finding *f = &ck.f[i];
		struct buf line;

		if (f->alert)
			nalerts++;
		if (json) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "level", json_object_new_string(f->alert ? "alert" : "info"));
			json_object_object_add(o, "class", json_object_new_string(f->cls));
			json_object_object_add(o, "domain", json_object_new_string(f->domain));
			json_object_object_add(o, "kind", json_object_new_string(f->kind));
			json_object_object_add(o, "text", json_object_new_string(f->text.data ? f->text.data : ""));
			json_object_array_add(json, o);
			continue;
		}
		buf_init(&line, 16384);
		buf_printf(&line, "%s %s ", f->alert ? "ALERT" : "INFO", f->cls);
		safe(&line, *f->domain ? f->domain : "(no domain)");
		buf_printf(&line, " %s: %s", f->kind, f->text.data ? f->text.data : "");
		printf("%s\n", line.data);
		buf_free(&line);
	}
	if (json)
		printf("%s\n", json_object_to_json_string_ext(json, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (ck.nf == 0)
		printf("nothing new (window %d day%s ending %.10s)\n", ro.days, ro.days == 1 ? "" : "s",
		       jget_text(cur, "last"));
	if (!ck.stateless && !dry && write_state(statefile, ck.state_out) != 0) {
		int e = errno;

		fprintf(stderr, "tlsrptctl: %s: %s\n", statefile, strerror(e));
		rc = ctl_errno_status(e, CTL_IOERR);
	}
	if (rc == CTL_OK && nalerts > 0 && *mail && !dry && send_mail(c, mail, &ck, nalerts) != 0)
		rc = CTL_UNAVAILABLE;
	if (rc == CTL_OK && nalerts > 0)
		rc = CTL_ALERT;
	for (size_t i = 0; i < ck.nf; i++)
		buf_free(&ck.f[i].text);
	free(ck.f);
	json_object_put(json);
	json_object_put(ck.state_in);
	json_object_put(ck.state_out);
	json_object_put(cur);
	json_object_put(hist);
	return rc;
}
