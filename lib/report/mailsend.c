/*
 * mailsend - hand a built report message to the MTA: mail_send() of
 * deliver.h, by delivery_mail = sendmail (a local submission program) or
 * smtp (libcurl to smtp_relay), or refuse when delivery_mail = off.
 *
 * sendmail: sendmail_command is split on spaces and tabs (no shell, no
 * quoting) and run with "-f ENVELOPE -- RCPT" appended; the message goes to
 * its standard input (a socket pair, so a program that exits early cannot
 * raise SIGPIPE in our process). Its standard output and error are kept
 * (first 400 bytes) for the detail. The whole run is limited to
 * mail_timeout; then the program is killed.
 *
 * Outcome of the sendmail exit status (sysexits.h, as Postfix's sendmail
 * uses it; the classes are deliver.h's):
 *	0				ok
 *	67 EX_NOUSER, 68 EX_NOHOST	permanent, about the destination
 *	65 EX_DATAERR			permanent, about this report
 *	anything else (75 EX_TEMPFAIL,	temporary: queue full, daemon down,
 *	69, 70, 71, 73, 74, 77, 78,	misconfiguration, program missing,
 *	signals, timeout, spawn errors)	killed... all worth retrying within
 *					the retry period once fixed
 *
 * smtp: libcurl smtp:// or smtps:// to smtp_relay, STARTTLS per
 * smtp_starttls (required: CURLUSESSL_ALL, try: CURLUSESSL_TRY, off),
 * smtp_ca_file, MAIL FROM envelope, one RCPT. EHLO name: the URL path
 * (smtp://relay:587/host.example), else the envelope sender's domain.
 * status = the last SMTP reply
 * code. Where a 5xx came decides its class (deliver.h): at RCPT with
 * 5.1.x about the destination, otherwise at RCPT, DATA or after the
 * message about this report; before RCPT (about our relay or sender) and
 * every 4xx or connection failure temporary. The failing reply's text is
 * in the detail.
 *
 * delivery_mail = off: ok = false, permanent = true ("mail delivery is off").
 */
#include "deliver.h"
#include "mail.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"

#define SENDMAIL_MAX_ARGS 32
#define CAPTURE_MAX 400

extern char **environ;

/* Shared with https.c through deliver.h. */
void delivery_result_set(struct delivery_result *res, bool ok, bool permanent,
			 long status, const char *fmt, ...)
{
	va_list ap;

	res->ok = ok;
	res->permanent = permanent;
	res->destination = false;
	res->status = status;
	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
}

void delivery_result_dest(struct delivery_result *res, long status, const char *fmt, ...)
{
	va_list ap;

	res->ok = false;
	res->permanent = true;
	res->destination = true;
	res->status = status;
	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Captured program output as one printable line. */
static void summarise(char *out, size_t outsz, const char *in, size_t len)
{
	char tmp[CAPTURE_MAX + 1];
	size_t i, n = 0;

	for (i = 0; i < len && n < CAPTURE_MAX; i++)
		tmp[n++] = (in[i] == '\n' || in[i] == '\r') ? ' ' : in[i];
	while (n > 0 && tmp[n - 1] == ' ')
		n--;
	log_printable(out, outsz, tmp, n);
}

static bool exit_permanent(int code)
{
	return code == 65 || code == 67 || code == 68;
}

/* EX_NOUSER, EX_NOHOST: about the recipient, not the message */
static bool exit_destination(int code)
{
	return code == 67 || code == 68;
}

static void send_sendmail(const struct conf *c, const char *sender, const char *rcpt,
			  const char *msg, size_t len, struct delivery_result *res)
{
	char cmd[1024], *argv[SENDMAIL_MAX_ARGS + 5], *save = NULL, *tok;
	char cap[CAPTURE_MAX], sum[CAPTURE_MAX * 4 + 8];
	int argc = 0, sv[2] = { -1, -1 }, ep[2] = { -1, -1 }, rc, status = 0;
	size_t off = 0, caplen = 0;
	posix_spawn_file_actions_t fa;
	int64_t deadline = now_ms() + conf_int(c, "mail_timeout") * 1000;
	bool err_open = true, timed_out = false, reaped = false;
	pid_t pid;

	if (strlen(conf_str(c, "sendmail_command")) >= sizeof(cmd)) {
		delivery_result_set(res, false, false, 0, "sendmail_command longer than %zu bytes",
			   sizeof(cmd) - 1);
		return;
	}
	snprintf(cmd, sizeof(cmd), "%s", conf_str(c, "sendmail_command"));
	for (tok = strtok_r(cmd, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (argc == SENDMAIL_MAX_ARGS) {
			delivery_result_set(res, false, false, 0, "sendmail_command has more than %d words",
				   SENDMAIL_MAX_ARGS);
			return;
		}
		argv[argc++] = tok;
	}
	if (argc == 0) {
		delivery_result_set(res, false, false, 0, "sendmail_command is empty");
		return;
	}
	argv[argc++] = (char *)"-f";
	argv[argc++] = (char *)sender;
	argv[argc++] = (char *)"--";
	argv[argc++] = (char *)rcpt;
	argv[argc] = NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(ep, O_CLOEXEC) < 0) {
		delivery_result_set(res, false, false, 0, "sendmail: socketpair/pipe: %s", strerror(errno));
		goto close_fds;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 1);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		char pr[200];

		delivery_result_set(res, false, false, 0, "sendmail: cannot run %s: %s",
			   log_printable(pr, sizeof(pr), argv[0], strlen(argv[0])), strerror(rc));
		goto close_fds;
	}
	close(sv[1]);
	close(ep[1]);
	sv[1] = ep[1] = -1;
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(ep[0], F_SETFL, O_NONBLOCK);

	/* feed stdin and collect output until both are done or time is up */
	while (sv[0] >= 0 || err_open) {
		struct pollfd p[2];
		int np = 0, wait = (int)(deadline - now_ms());

		if (wait <= 0) {
			timed_out = true;
			break;
		}
		if (sv[0] >= 0)
			p[np++] = (struct pollfd){ .fd = sv[0], .events = POLLOUT };
		if (err_open)
			p[np++] = (struct pollfd){ .fd = ep[0], .events = POLLIN };
		if (poll(p, (nfds_t)np, wait) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (sv[0] >= 0 && p[0].revents) {
			ssize_t w = send(sv[0], msg + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

			if (w > 0)
				off += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || off == len) {
				close(sv[0]);	/* EOF for the program (or it went away) */
				sv[0] = -1;
			}
		}
		if (err_open && p[np - 1].revents) {
			char tmp[4096];
			ssize_t n = read(ep[0], tmp, sizeof(tmp));

			if (n > 0) {
				size_t k = (size_t)n;

				if (k > sizeof(cap) - caplen)
					k = sizeof(cap) - caplen;
				memcpy(cap + caplen, tmp, k);
				caplen += k;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				err_open = false;
			}
		}
	}
	/* wait for the exit, within the same deadline */
	while (!timed_out) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid) {
			reaped = true;
			break;
		}
		if (w < 0 && errno != EINTR)
			break;
		if (now_ms() >= deadline) {
			timed_out = true;
			break;
		}
		poll(NULL, 0, 10);
	}
	if (!reaped) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	summarise(sum, sizeof(sum), cap, caplen);
	if (timed_out) {
		delivery_result_set(res, false, false, 0, "sendmail: killed after %llds (mail_timeout)%s%s",
			   (long long)conf_int(c, "mail_timeout"), caplen ? ": " : "", sum);
	} else if (WIFSIGNALED(status)) {
		delivery_result_set(res, false, false, 0, "sendmail: killed by signal %d%s%s",
			   WTERMSIG(status), caplen ? ": " : "", sum);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (off < len)
			delivery_result_set(res, false, false, 0,
				   "sendmail exited 0 after reading %zu of %zu bytes", off, len);
		else
			delivery_result_set(res, true, false, 0, "handed to %s%s%s", argv[0],
				   caplen ? ": " : "", sum);
	} else {
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

		if (exit_destination(code))
			delivery_result_dest(res, code, "sendmail exit %d: %s", code,
					     caplen ? sum : "(no output)");
		else
			delivery_result_set(res, false, exit_permanent(code), code, "sendmail exit %d: %s",
					    code, caplen ? sum : "(no output)");
	}
close_fds:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (ep[0] >= 0)
		close(ep[0]);
	if (ep[1] >= 0)
		close(ep[1]);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct upload {
	const char *msg;
	size_t len, off;
};

static size_t upload_read(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nmemb;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(dst, u->msg + u->off, n);
	u->off += n;
	return n;
}

/*
 * The SMTP dialogue as libcurl's debug callback shows it: the verb of the
 * last command sent, and the last 4xx/5xx reply with the command (or the
 * message, after 354) it answered, so a failure can be told apart by
 * where it happened (deliver.h).
 */
struct smtp_trace {
	char cmd[12];		/* last command verb sent */
	bool in_message;	/* 354 seen: replies now answer the message */
	char fail_at[12];	/* what the last 4xx/5xx answered: RCPT, DATA, message, ... */
	char reply[200];	/* that reply, one printable line */
};

static int smtp_debug(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	struct smtp_trace *t = arg;
	size_t n = 0;

	(void)h;
	if (type == CURLINFO_HEADER_OUT) {
		while (n < size && n < sizeof(t->cmd) - 1 && data[n] >= 'A' && data[n] <= 'Z') {
			t->cmd[n] = data[n];
			n++;
		}
		t->cmd[n] = '\0';
		t->in_message = false;
	} else if (type == CURLINFO_HEADER_IN && size >= 3 &&
		   data[0] >= '2' && data[0] <= '5' && data[1] >= '0' && data[1] <= '9') {
		if (data[0] == '3' && data[1] == '5' && data[2] == '4') {
			t->in_message = true;
		} else if (data[0] == '4' || data[0] == '5') {
			while (n < size && data[n] != '\r' && data[n] != '\n')
				n++;
			snprintf(t->fail_at, sizeof(t->fail_at), "%s", t->in_message ? "message" : t->cmd);
			log_printable(t->reply, sizeof(t->reply), data, n);
		}
	}
	return 0;
}

/* "5.1.x" as the enhanced status code of a reply line ("550 5.1.1 ..."). */
static bool enhanced_5_1(const char *reply)
{
	return strlen(reply) >= 9 && (reply[3] == ' ' || reply[3] == '-') &&
	       strncmp(reply + 4, "5.1.", 4) == 0 && reply[8] >= '0' && reply[8] <= '9';
}

static void send_smtp(const struct conf *c, const char *sender, const char *rcpt,
		      const char *msg, size_t len, struct delivery_result *res)
{
	const char *relay = conf_str(c, "smtp_relay"), *tls = conf_str(c, "smtp_starttls");
	const char *ca = conf_str(c, "smtp_ca_file");
	char from[MAIL_ADDR_MAX + 3], to[MAIL_ADDR_MAX + 3], cerr[CURL_ERROR_SIZE] = "";
	char url[1024 + MAIL_DOMAIN_MAX + 2];
	struct curl_slist *rcpts = NULL;
	struct upload u = { msg, len, 0 };
	struct smtp_trace tr;
	long code = 0, usessl;
	int64_t timeout = conf_int(c, "mail_timeout");
	CURLcode rc;
	CURL *h;

	if (strncmp(relay, "smtp://", 7) != 0 && strncmp(relay, "smtps://", 8) != 0) {
		delivery_result_set(res, false, false, 0,
			   "smtp_relay must be smtp://host:port or smtps://host:port");
		return;
	}
	if (strcmp(tls, "required") == 0) {
		usessl = CURLUSESSL_ALL;
	} else if (strcmp(tls, "try") == 0) {
		usessl = CURLUSESSL_TRY;
	} else if (strcmp(tls, "off") == 0) {
		usessl = CURLUSESSL_NONE;
	} else {
		delivery_result_set(res, false, false, 0, "smtp_starttls must be required, try or off");
		return;
	}
	pthread_once(&curl_once, curl_init_once);
	h = curl_easy_init();
	if (!h) {
		delivery_result_set(res, false, false, 0, "smtp: curl_easy_init failed");
		return;
	}
	/* libcurl takes the EHLO name from the URL path; without one it would
	 * say "localhost", which relays may refuse: use the sender's domain */
	if (!strchr(strstr(relay, "://") + 3, '/')) {
		snprintf(url, sizeof(url), "%s/%s", relay, strchr(sender, '@') + 1);
		relay = url;
	}
	snprintf(from, sizeof(from), "<%s>", sender);
	snprintf(to, sizeof(to), "<%s>", rcpt);
	rcpts = curl_slist_append(NULL, to);
	curl_easy_setopt(h, CURLOPT_URL, relay);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_USE_SSL, usessl);
	if (*ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, upload_read);
	curl_easy_setopt(h, CURLOPT_READDATA, &u);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)(timeout < 30 ? timeout : 30));
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	memset(&tr, 0, sizeof(tr));
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, smtp_debug);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, &tr);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);	/* to the callback only */
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (rc == CURLE_OK) {
		delivery_result_set(res, true, false, code, "relay accepted (%ld)", code);
	} else {
		char pr[CURL_ERROR_SIZE + 16];

		bool perm = code >= 500 && code < 600, at_rcpt = strcmp(tr.fail_at, "RCPT") == 0;
		bool about_report = at_rcpt || strcmp(tr.fail_at, "DATA") == 0 ||
				    strcmp(tr.fail_at, "message") == 0;

		log_printable(pr, sizeof(pr), *cerr ? cerr : curl_easy_strerror(rc),
			      strlen(*cerr ? cerr : curl_easy_strerror(rc)));
		if (perm && at_rcpt && enhanced_5_1(tr.reply))
			delivery_result_dest(res, code, "smtp: %s (reply %ld): %s", pr, code, tr.reply);
		else
			/* a 5xx before RCPT is about our relay or sender: retried */
			delivery_result_set(res, false, perm && about_report, code, "smtp: %s%s (reply %ld)%s%s",
					    pr, rc == CURLE_USE_SSL_FAILED ? " (STARTTLS required)" : "", code,
					    tr.reply[0] ? ": " : "", tr.reply);
	}
	curl_slist_free_all(rcpts);
	curl_easy_cleanup(h);
}

void mail_send(const struct conf *c, const char *rcpt, const char *msg,
	       size_t len, struct delivery_result *res)
{
	const char *method = conf_str(c, "delivery_mail");
	char sender[MAIL_ADDR_MAX + 1], err[256];

	memset(res, 0, sizeof(*res));
	if (strcmp(method, "off") == 0) {
		delivery_result_set(res, false, true, 0, "mail delivery is off (delivery_mail = off)");
		return;
	}
	if (mail_check_addr(rcpt, "recipient", err, sizeof(err)) < 0) {
		delivery_result_dest(res, 0, "%s", err);
		return;
	}
	if (mail_envelope_sender(c, sender, sizeof(sender), err, sizeof(err)) < 0) {
		delivery_result_set(res, false, false, 0, "%s", err);
		return;
	}
	if (strcmp(method, "sendmail") == 0)
		send_sendmail(c, sender, rcpt, msg, len, res);
	else if (strcmp(method, "smtp") == 0)
		send_smtp(c, sender, rcpt, msg, len, res);
	else
		delivery_result_set(res, false, false, 0, "delivery_mail must be sendmail, smtp or off");
}
