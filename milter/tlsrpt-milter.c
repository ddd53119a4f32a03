/*
 * tlsrpt-milter - collects the TLS reports others send us (RFC 8460 section
 * 5.3) from the mail stream: a libmilter filter for Postfix or Sendmail.
 *
 * For a message with a recipient in milter_rua_addresses (case-insensitive)
 * it buffers the message (up to max_message_size; a larger one is accepted
 * untouched and not parsed), and at end of message extracts, parses and
 * stores the report in received_directory (lib/receive/received.h). The report
 * counts as DKIM-verified when an Authentication-Results header of our own
 * server (authserv-id = milter_authserv_id) says dkim=pass for a d= aligned
 * with TLS-Report-Submitter or the From domain. The MTA must remove
 * Authentication-Results headers with that id that arrive from outside
 * (OpenDKIM and Postfix setups normally do); otherwise anyone can forge it.
 *
 * After storing: milter_action accept (deliver the mail as usual) or
 * discard (drop it; only when every recipient is a rua address).
 *
 * SECURITY: fails open. Any internal error accepts the message: this
 * filter must never reject or delay ordinary mail. Per-message state lives
 * only in the context reached through smfi_getpriv; globals are set before
 * smfi_main and read-only afterwards; every callback tolerates a NULL
 * context and being called out of order.
 *
 * Usage: tlsrpt-milter [-c FILE] [-n] [-f] [-v]
 *   -c FILE  configuration (default SYSCONFDIR/tlsrptd/tlsrptd.conf)
 *   -n       check the configuration and exit
 *   -f       stay in the foreground, log to stderr
 *   -v       verbose (debug) logging
 */
#include <errno.h>
#include <grp.h>
#include <libmilter/mfapi.h>
#include <openssl/crypto.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cmdline.h"
#include "conf.h"
#include "confcheck.h"
#include "config.h"
#include "log.h"
#include "privs.h"
#include "usock.h"
#include "received.h"

#define DEFAULT_CONFIG SYSCONFDIR "/tlsrptd/tlsrptd.conf"
#define MAX_RUA 64

/* Read-only after main() has set them up (before smfi_main). */
static struct {
	char *rua[MAX_RUA];
	size_t nrua;
	const char *authserv_id;
	bool discard;
	size_t max_message;
	size_t max_report;
	struct received_store *store;
} g;

/* Per message, reached only through smfi_getpriv. */
struct mctx {
	struct buf msg;		/* the message as received: headers, blank line, body */
	bool rua;		/* a recipient is one of ours */
	bool other;		/* a recipient is not */
	bool skip;		/* too large: accepted without parsing */
};

static struct mctx *ctx_get(SMFICTX *ctx)
{
	return ctx ? smfi_getpriv(ctx) : NULL;
}

static void ctx_reset(struct mctx *m)
{
	buf_free(&m->msg);
	buf_init(&m->msg, g.max_message);
	m->rua = m->other = m->skip = false;
}

/* Is the (possibly <bracketed>) address one of the rua addresses? */
static bool is_rua(const char *arg)
{
	const char *s = arg, *e;

	if (s == NULL)
		return false;
	while (*s == ' ' || *s == '<')
		s++;
	e = s + strcspn(s, ">");
	for (size_t i = 0; i < g.nrua; i++)
		if (strlen(g.rua[i]) == (size_t)(e - s) && strncasecmp(g.rua[i], s, (size_t)(e - s)) == 0)
			return true;
	return false;
}

static sfsistat mf_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
	(void)ctx;
	(void)host;
	(void)addr;
	return SMFIS_CONTINUE;
}

static sfsistat mf_helo(SMFICTX *ctx, char *helo)
{
	(void)ctx;
	(void)helo;
	return SMFIS_CONTINUE;
}

static sfsistat mf_envfrom(SMFICTX *ctx, char **argv)
{
	struct mctx *m = ctx_get(ctx);

	(void)argv;
	if (m == NULL) {
		m = calloc(1, sizeof(*m));
		if (m == NULL || smfi_setpriv(ctx, m) != MI_SUCCESS) {
			free(m);
			log_err("out of memory: message accepted without looking");
			return SMFIS_ACCEPT;
		}
	}
	ctx_reset(m);
	return SMFIS_CONTINUE;
}

static sfsistat mf_envrcpt(SMFICTX *ctx, char **argv)
{
	struct mctx *m = ctx_get(ctx);

	if (m == NULL)
		return SMFIS_CONTINUE;
	if (argv && is_rua(argv[0]))
		m->rua = true;
	else
		m->other = true;
	return SMFIS_CONTINUE;
}

/* DATA: every recipient is known; mail not for a rua address is left alone. */
static sfsistat mf_data(SMFICTX *ctx)
{
	struct mctx *m = ctx_get(ctx);

	if (m == NULL || !m->rua)
		return SMFIS_ACCEPT;
	return SMFIS_CONTINUE;
}

/* Append; on passing the size limit, give up on this message. */
static bool add(struct mctx *m, const void *p, size_t n)
{
	if (m->skip)
		return false;
	if (buf_add(&m->msg, p, n) != 0) {
		log_warn("report mail larger than max_message_size (%zu bytes): accepted, not parsed",
			 g.max_message);
		buf_free(&m->msg);
		buf_init(&m->msg, g.max_message);
		m->skip = true;
		return false;
	}
	return true;
}

static sfsistat mf_header(SMFICTX *ctx, char *name, char *value)
{
	struct mctx *m = ctx_get(ctx);

	if (m == NULL || !m->rua)
		return SMFIS_ACCEPT;	/* not for us: leave the message alone */
	if (name == NULL || value == NULL)
		return SMFIS_CONTINUE;
	if (!add(m, name, strlen(name)) || !add(m, ": ", 2) || !add(m, value, strlen(value)) ||
	    !add(m, "\n", 1))
		return SMFIS_ACCEPT;
	return SMFIS_CONTINUE;
}

static sfsistat mf_eoh(SMFICTX *ctx)
{
	struct mctx *m = ctx_get(ctx);

	if (m == NULL || !m->rua)
		return SMFIS_ACCEPT;
	if (!add(m, "\n", 1))
		return SMFIS_ACCEPT;
	return SMFIS_CONTINUE;
}

static sfsistat mf_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct mctx *m = ctx_get(ctx);

	if (m == NULL || !m->rua)
		return SMFIS_ACCEPT;
	if (chunk && len && !add(m, chunk, len))
		return SMFIS_ACCEPT;
	return SMFIS_CONTINUE;
}

static sfsistat mf_eom(SMFICTX *ctx)
{
	struct mctx *m = ctx_get(ctx);
	struct received_input in = { 0 };
	char id[RECEIVED_ID_LEN + 2], reason[600], qid[64] = "-";
	const char *q;
	enum received_status st;
	sfsistat ret = SMFIS_ACCEPT;

	if (m == NULL || !m->rua || m->skip || g.store == NULL)
		goto out;
	q = smfi_getsymval(ctx, (char *)"i");
	if (q)
		log_printable(qid, sizeof(qid), q, strlen(q));
	in.data = m->msg.data ? m->msg.data : "";
	in.len = m->msg.len;
	in.is_message = true;
	in.source = "milter";
	in.authserv_id = g.authserv_id;
	in.max_report = g.max_report;
	st = received_ingest(g.store, &in, id, sizeof(id), reason, sizeof(reason));
	/* received_ingest uses OpenSSL, which keeps per-thread state (the
	 * error queue) until the thread exits; libmilter's pooled worker
	 * threads may never exit before the process does, so release it here
	 * (it is made again on demand). */
	OPENSSL_thread_stop();
	switch (st) {
	case RECEIVED_STORED:
	case RECEIVED_DUPLICATE:
		log_info("%s: TLS report stored as %s (%s)", qid, id, reason);
		if (g.discard && !m->other)
			ret = SMFIS_DISCARD;
		break;
	case RECEIVED_REJECTED: {
		char r[300];

		log_warn("%s: unusable TLS report mail, rejection record %s: %s", qid, id,
			 log_printable(r, sizeof(r), reason, strlen(reason)));
		break;
	}
	case RECEIVED_ERROR:
		log_err("%s: storing the TLS report failed: %s", qid, reason);
		break;
	}
out:
	if (m)
		ctx_reset(m);	/* the next message of this connection starts clean */
	return ret;
}

static sfsistat mf_abort(SMFICTX *ctx)
{
	struct mctx *m = ctx_get(ctx);

	if (m)
		ctx_reset(m);
	return SMFIS_CONTINUE;
}

static sfsistat mf_close(SMFICTX *ctx)
{
	struct mctx *m = ctx_get(ctx);

	if (m) {
		buf_free(&m->msg);
		free(m);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	.xxfi_name = (char *)"tlsrpt-milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = 0,
	.xxfi_connect = mf_connect,
	.xxfi_helo = mf_helo,
	.xxfi_envfrom = mf_envfrom,
	.xxfi_envrcpt = mf_envrcpt,
	.xxfi_header = mf_header,
	.xxfi_eoh = mf_eoh,
	.xxfi_body = mf_body,
	.xxfi_eom = mf_eom,
	.xxfi_abort = mf_abort,
	.xxfi_close = mf_close,
	.xxfi_data = mf_data,
};

/* Split the comma separated rua list into g.rua; -1 with a message. */
static int parse_rua(const char *list, char *err, size_t errsz)
{
	const char *p = list;

	while (*p) {
		const char *e = p + strcspn(p, ",");
		const char *s = p, *t = e;

		while (s < t && (*s == ' ' || *s == '\t'))
			s++;
		while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if (t > s) {
			if (t - s >= 7 && strncasecmp(s, "mailto:", 7) == 0)
				s += 7;
			if (memchr(s, '@', (size_t)(t - s)) == NULL) {
				char a[101];
				size_t n = (size_t)(t - s) < sizeof(a) - 1 ? (size_t)(t - s) : sizeof(a) - 1;

				memcpy(a, s, n);
				a[n] = '\0';
				snprintf(err, errsz, "\"%s\" is not an address", a);
				return -1;
			}
			if (g.nrua == MAX_RUA) {
				snprintf(err, errsz, "more than %d addresses", MAX_RUA);
				return -1;
			}
			g.rua[g.nrua] = strndup(s, (size_t)(t - s));
			if (g.rua[g.nrua] == NULL) {
				snprintf(err, errsz, "out of memory");
				return -1;
			}
			g.nrua++;
		}
		p = *e ? e + 1 : e;
	}
	if (g.nrua == 0) {
		snprintf(err, errsz, "empty: nothing to collect");
		return -1;
	}
	return 0;
}

/* The socket's path of a unix: or local: milter_socket, else NULL. */
static const char *socket_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	return NULL;
}

/* -n beyond syntax: what the milter needs, as the user it runs as. */
static int check_config(const struct conf *c)
{
	struct confcheck *cc = confcheck_new(c, "tlsrpt-milter", "tlsrpt-milter", true);
	const char *path = socket_path(conf_str(c, "milter_socket"));
	bool root;

	if (cc == NULL)
		return 70;
	root = confcheck_starts_as_root(cc);
	/* libmilter binds before privileges are dropped */
	if (path)
		confcheck_parent_dir(cc, "milter_socket", path, root);
	confcheck_dir(cc, "received_directory", NULL, root ? CC_DIR_OWNED : CC_DIR_WRITE);
	return confcheck_finish(cc);
}

static void cleanup(struct conf *conf)
{
	received_close(g.store);
	g.store = NULL;
	for (size_t i = 0; i < g.nrua; i++)
		free(g.rua[i]);
	g.nrua = 0;
	conf_free(conf);
}

int main(int argc, char **argv)
{
	const char *action, *sock;
	struct cmdline cl;
	struct conf *conf;
	char err[512], origin[1200];
	int rc = 0;

	conf = conf_new();
	if (conf == NULL) {
		fprintf(stderr, "tlsrpt-milter: out of memory\n");
		return 70;
	}
	rc = cmdline_daemon(argc, argv, "tlsrpt-milter", DEFAULT_CONFIG,
			    "check the configuration and exit", conf, &cl);
	if (rc >= 0)
		goto out;
	rc = 0;
	action = conf_str(conf, "milter_action");	/* accept or discard (conf.c) */
	if (parse_rua(conf_str(conf, "milter_rua_addresses"), err, sizeof(err)) != 0) {
		log_fatal("%s: %s", conf_origin(conf, "milter_rua_addresses", origin, sizeof(origin)),
			  err);
		rc = 78;
		goto out;
	}
	sock = conf_str(conf, "milter_socket");
	if (socket_path(sock) == NULL && strncmp(sock, "inet:", 5) != 0 &&
	    strncmp(sock, "inet6:", 6) != 0) {
		log_fatal("%s: want unix:PATH or inet:PORT@HOST, not \"%s\"",
			  conf_origin(conf, "milter_socket", origin, sizeof(origin)), sock);
		rc = 78;
		goto out;
	}
	if (*conf_str(conf, "milter_authserv_id") == '\0')
		log_warn("milter_authserv_id is empty: every report will be stored as unverified");
	if (cl.check) {
		rc = check_config(conf);
		goto out;
	}
	g.discard = strcmp(action, "discard") == 0;
	g.authserv_id = conf_str(conf, "milter_authserv_id");
	g.max_message = (size_t)conf_int(conf, "max_message_size");
	g.max_report = (size_t)conf_int(conf, "max_report_size");
	if (smfi_setconn((char *)sock) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS) {
		log_fatal("cannot set up libmilter on %s", sock);
		rc = 71;
		goto out;
	}
	/*
	 * libmilter removes a stale socket and binds by name: as root, only
	 * in a directory no other user can write (lib/core/usock.h). The
	 * umask gives the socket mode 0660 at creation; its group is the
	 * setgid socket directory's (postfix), so smtpd may connect.
	 */
	if ((strncmp(sock, "unix:", 5) == 0 || strncmp(sock, "local:", 6) == 0) &&
	    usock_check_dir(strchr(sock, ':') + 1, err, sizeof(err)) != 0) {
		log_fatal("milter_socket: %s", err);
		rc = cmdline_status_of(err, 71);
		goto out;
	}
	umask(0117);
	if (smfi_opensocket(1) != MI_SUCCESS) {
		log_fatal("cannot open milter socket %s", sock);
		rc = 71;
		goto out;
	}
	umask(027);
	/* started as root: the store directory is made (in a root directory
	 * such as /var/lib) and given to the user, who alone writes in it */
	if (geteuid() == 0 && *conf_str(conf, "user") &&
	    mkdir(conf_str(conf, "received_directory"), 0750) != 0 && errno != EEXIST) {
		int e = errno;

		log_fatal("%s: %s", conf_str(conf, "received_directory"), strerror(e));
		rc = e == EACCES || e == EPERM ? 77 : 73;
		goto out;
	}
	if (privs_drop(conf_str(conf, "user"), *conf_str(conf, "user") && geteuid() == 0 ?
		       conf_str(conf, "received_directory") : NULL, err, sizeof(err)) != 0) {
		log_fatal("%s: %s", conf_origin(conf, "user", origin, sizeof(origin)), err);
		rc = strstr(err, "unknown user") ? 78 : 77;
		goto out;
	}
	if (received_open(conf_str(conf, "received_directory"), &g.store, err, sizeof(err)) != 0) {
		log_fatal("%s", err);
		rc = cmdline_status_of(err, 73);
		goto out;
	}
	if (!cl.foreground && daemon(0, 0) != 0) {
		log_fatal("daemon: %s", strerror(errno));
		rc = 71;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	log_info("listening on %s for %zu rua address(es), action %s", sock, g.nrua, action);
	rc = smfi_main() == MI_SUCCESS ? 0 : 71;
	log_info("stopped");
out:
	cleanup(conf);		/* conf strings (authserv_id) lived until here */
	return rc;
}
