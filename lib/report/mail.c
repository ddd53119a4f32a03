/*
 * mail - build the report message (RFC 5322, MIME multipart/report,
 * RFC 8460 5.3) and the syntax checks that guard its header lines.
 * See deliver.h (mail_build) and mail.h.
 *
 * The message uses CRLF line endings throughout: that is what DKIM signs
 * and what SMTP carries. Postfix's sendmail(1) accepts CRLF input and
 * strips the CR (the message as queued is identical); libcurl sends it as is.
 *
 * SECURITY
 *	Policy domain, recipient, report-id and filename may come from DNS or
 *	from datagrams written by other programs. Each is checked against a
 *	strict syntax (no CR, LF, NUL, controls, 8-bit, specials, length
 *	bounds) before it is used, and mail_build() refuses the report with a
 *	clear error otherwise: nothing is repaired, nothing is injected.
 *	Configuration values placed in headers (From) are checked the same
 *	way. Free text in the human-readable part is made printable.
 */
#include "deliver.h"
#include "mail.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "dkim.h"
#include "log.h"

#define MAIL_LINE_SOFT 78	/* RFC 5322 2.1.1 SHOULD */
#define MAIL_B64_LINE 57	/* input bytes per 76-column base64 line */

/* Quote an untrusted value for an error message. */
static const char *pq(char *out, size_t outsz, const char *s)
{
	return log_printable(out, outsz, s, strnlen(s, 1024));
}

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 atext */
static bool is_atext(int c)
{
	return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* dot-atom-text of s[0..n): atext runs separated by single dots. */
static bool is_dot_atom(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/* Only printable ASCII (0x20-0x7e) in s[0..n)? Reports the first bad byte. */
static bool printable(const char *s, size_t n, size_t *bad)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e) {
			*bad = i;
			return false;
		}
	}
	return true;
}

/* Domain syntax of s[0..n) as in mail_check_domain; why on failure. */
static const char *domain_problem(const char *s, size_t n)
{
	size_t i, label = 0;

	if (n == 0)
		return "empty";
	if (n > MAIL_DOMAIN_MAX)
		return "longer than 253 bytes";
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return "empty label";
			if (s[i - 1] == '-')
				return "label ends with '-'";
			label = 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
			return "character not allowed in a domain name";
		if (c == '-' && label == 0)
			return "label starts with '-'";
		if (++label > 63)
			return "label longer than 63 bytes";
	}
	if (label == 0)
		return "empty label (trailing dot)";
	if (s[n - 1] == '-')
		return "label ends with '-'";
	return NULL;
}

int mail_check_domain(const char *s, const char *what, char *err, size_t errsz)
{
	char pr[300];
	const char *why;

	if (!s) {
		snprintf(err, errsz, "%s missing", what);
		return -1;
	}
	why = domain_problem(s, strnlen(s, MAIL_DOMAIN_MAX + 1));
	if (!why && strlen(s) > MAIL_DOMAIN_MAX)
		why = "longer than 253 bytes";
	if (why) {
		snprintf(err, errsz, "%s \"%s\" refused: %s", what, pq(pr, sizeof(pr), s), why);
		return -1;
	}
	return 0;
}

int mail_check_addr(const char *s, const char *what, char *err, size_t errsz)
{
	char pr[300];
	const char *at, *why = NULL;
	size_t n;

	if (!s) {
		snprintf(err, errsz, "%s missing", what);
		return -1;
	}
	n = strnlen(s, MAIL_ADDR_MAX + 1);
	at = memchr(s, '@', n);
	if (n > MAIL_ADDR_MAX)
		why = "longer than 254 bytes";
	else if (!at)
		why = "no '@'";
	else if (at - s > 64)
		why = "local part longer than 64 bytes";
	else if (!is_dot_atom(s, (size_t)(at - s)))
		why = "local part is not a dot-atom";
	else
		why = domain_problem(at + 1, n - (size_t)(at - s) - 1);
	if (why) {
		snprintf(err, errsz, "%s \"%s\" refused: %s", what, pq(pr, sizeof(pr), s), why);
		return -1;
	}
	return 0;
}

int mail_check_report_id(const char *s, char *err, size_t errsz)
{
	char pr[300];
	const char *at, *why = NULL;
	size_t n;

	if (!s) {
		snprintf(err, errsz, "report-id missing");
		return -1;
	}
	n = strnlen(s, MAIL_REPORT_ID_MAX + 1);
	at = memchr(s, '@', n);
	if (n > MAIL_REPORT_ID_MAX)
		why = "longer than 200 bytes";
	else if (!at)
		why = "no '@'";
	else if (!is_dot_atom(s, (size_t)(at - s)) ||
		 !is_dot_atom(at + 1, n - (size_t)(at - s) - 1))
		why = "not dot-atom \"@\" dot-atom";
	if (why) {
		snprintf(err, errsz, "report-id \"%s\" refused: %s", pq(pr, sizeof(pr), s), why);
		return -1;
	}
	return 0;
}

int mail_check_filename(const char *s, char *err, size_t errsz)
{
	static const char ext[] = ".json.gz";
	char pr[300];
	const char *why = NULL;
	size_t n, i;

	if (!s) {
		snprintf(err, errsz, "filename missing");
		return -1;
	}
	n = strnlen(s, MAIL_FILENAME_MAX + 1);
	if (n > MAIL_FILENAME_MAX)
		why = "longer than 255 bytes";
	else if (n <= sizeof(ext) - 1 || strcmp(s + n - (sizeof(ext) - 1), ext) != 0)
		why = "does not end in .json.gz";
	for (i = 0; !why && i < n; i++)
		if (!is_alpha((unsigned char)s[i]) && !is_digit((unsigned char)s[i]) &&
		    !strchr(".!-_", s[i]))
			why = "character other than letters, digits, . ! - _";
	if (why) {
		snprintf(err, errsz, "filename \"%s\" refused: %s", pq(pr, sizeof(pr), s), why);
		return -1;
	}
	return 0;
}

/*
 * Split a From-style value into display name and address (both views into
 * 'value'). Returns 0 or -1 with err.
 */
static int split_mailbox(const char *value, const char *what,
			 const char **name, size_t *namelen,
			 const char **addr, size_t *addrlen, char *err, size_t errsz)
{
	char pr[300];
	size_t n = strnlen(value, 1024), bad;
	const char *lt, *gt, *p;

	if (n >= 1024 || !printable(value, n, &bad)) {
		snprintf(err, errsz, "%s \"%s\" refused: %s", what, pq(pr, sizeof(pr), value),
			 n >= 1024 ? "too long" : "control or non-ASCII character");
		return -1;
	}
	while (n > 0 && value[n - 1] == ' ')
		n--;
	while (n > 0 && *value == ' ') {
		value++;
		n--;
	}
	lt = memchr(value, '<', n);
	if (lt) {
		gt = memchr(lt, '>', n - (size_t)(lt - value));
		if (!gt || gt != value + n - 1) {
			snprintf(err, errsz, "%s \"%s\" refused: want \"Name <addr>\"", what,
				 pq(pr, sizeof(pr), value));
			return -1;
		}
		*addr = lt + 1;
		*addrlen = (size_t)(gt - lt - 1);
		p = lt;
		while (p > value && p[-1] == ' ')
			p--;
		*name = value;
		*namelen = (size_t)(p - value);
		return 0;
	}
	if (n > 7 && strncasecmp(value, "mailto:", 7) == 0) {
		value += 7;
		n -= 7;
	}
	*name = value;
	*namelen = 0;
	*addr = value;
	*addrlen = n;
	return 0;
}

int mail_addr_of(const char *value, const char *what, char *out, size_t outsz,
		 char *err, size_t errsz)
{
	const char *name, *addr;
	size_t namelen, addrlen;

	if (split_mailbox(value, what, &name, &namelen, &addr, &addrlen, err, errsz) < 0)
		return -1;
	if (addrlen >= outsz || addrlen > MAIL_ADDR_MAX) {
		snprintf(err, errsz, "%s refused: address longer than 254 bytes", what);
		return -1;
	}
	memcpy(out, addr, addrlen);
	out[addrlen] = '\0';
	return mail_check_addr(out, what, err, errsz);
}

int mail_envelope_sender(const struct conf *c, char *out, size_t outsz,
			 char *err, size_t errsz)
{
	const char *v = conf_str(c, "envelope_sender");

	if (*v)
		return mail_addr_of(v, "envelope_sender", out, outsz, err, errsz);
	v = conf_str(c, "from_address");
	if (*v)
		return mail_addr_of(v, "from_address", out, outsz, err, errsz);
	v = conf_str(c, "contact_info");
	if (*v)
		return mail_addr_of(v, "contact_info", out, outsz, err, errsz);
	snprintf(err, errsz, "no sender address: set contact_info (or from_address)");
	return -1;
}

/*
 * Append "Name: value" CRLF, folding at spaces so that lines stay within
 * 78 columns where the words allow. 'value' has been checked printable.
 */
static void add_header(struct buf *b, const char *name, const char *value)
{
	size_t col = strlen(name) + 1;
	const char *p = value;
	bool first = true;

	buf_adds(b, name);
	buf_addc(b, ':');
	while (*p) {
		const char *sp = strchr(p, ' ');
		size_t wl = sp ? (size_t)(sp - p) : strlen(p);

		if (wl == 0) {	/* collapse runs of spaces */
			p++;
			continue;
		}
		if (!first && col + 1 + wl > MAIL_LINE_SOFT) {
			buf_adds(b, "\r\n");
			col = 0;
		}
		buf_addc(b, ' ');
		buf_add(b, p, wl);
		col += 1 + wl;
		first = false;
		p += wl;
	}
	buf_adds(b, "\r\n");
}

/* "Sat, 28 Nov 2026 14:31:23 +0000" (RFC 5322 3.3, UTC, locale free) */
static void format_date(char *out, size_t outsz, int64_t t)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm)) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	snprintf(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
		 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/* "2025-05-22T00:00:00Z" */
static void format_iso(char *out, size_t outsz, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm)) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Free text (configuration) for the human-readable part: printable ASCII,
 * bounded; anything else becomes '?'. */
static void add_text(struct buf *b, const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		buf_addc(b, (c >= 0x20 && c <= 0x7e) ? (char)c : '?');
	}
}

/* The From: header from from_address (or contact_info). */
static int add_from(struct buf *b, const struct conf *c, char *err, size_t errsz)
{
	const char *v = conf_str(c, "from_address"), *what = "from_address";
	const char *name, *addr;
	size_t namelen, addrlen, i;
	char a[MAIL_ADDR_MAX + 1], pr[300];
	bool plain = true;
	struct buf h;

	if (!*v) {
		v = conf_str(c, "contact_info");
		what = "contact_info";
	}
	if (!*v) {
		snprintf(err, errsz, "no From address: set from_address or contact_info");
		return -1;
	}
	if (mail_addr_of(v, what, a, sizeof(a), err, errsz) < 0 ||
	    split_mailbox(v, what, &name, &namelen, &addr, &addrlen, err, errsz) < 0)
		return -1;
	if (namelen >= 2 && name[0] == '"' && name[namelen - 1] == '"') {
		name++;
		namelen -= 2;
	}
	for (i = 0; i < namelen; i++) {
		if (name[i] == '"' || name[i] == '\\') {
			snprintf(err, errsz, "%s \"%s\" refused: quote or backslash in the display name",
				 what, pq(pr, sizeof(pr), v));
			return -1;
		}
		if (name[i] != ' ' && !is_atext((unsigned char)name[i]))
			plain = false;
	}
	buf_init(&h, 1024);
	if (namelen)
		buf_printf(&h, plain ? "%.*s <%s>" : "\"%.*s\" <%s>", (int)namelen, name, a);
	else
		buf_adds(&h, a);
	add_header(b, "From", h.data ? h.data : "");
	buf_free(&h);
	return 0;
}

/* A boundary that occurs nowhere in 'text' (base64 has no '=' inside
 * lines nor '_', so "=_" cannot clash with the attachment). */
static int make_boundary(char *out, size_t outsz, const char *text)
{
	unsigned char rnd[12];
	int tries, i;

	for (tries = 0; tries < 8; tries++) {
		size_t off;

		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return -1;
		off = (size_t)snprintf(out, outsz, "=_tlsrpt_");
		for (i = 0; i < (int)sizeof(rnd) && off + 2 < outsz; i++)
			off += (size_t)snprintf(out + off, outsz - off, "%02x", rnd[i]);
		if (!strstr(text, out))
			return 0;
	}
	return -1;
}

/* The DKIM signer for this configuration, created once and kept. */
static pthread_mutex_t signer_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dkim_signer *signer;
static char signer_id[4096];

/* Sign 'msg' and append the DKIM-Signature to 'out' (under the lock). */
static int sign_message(const struct conf *c, const char *submitter, const char *msg,
			size_t len, int64_t now, struct buf *out, char *err, size_t errsz)
{
	const char *domain = conf_str(c, "dkim_domain");
	char id[sizeof(signer_id)];
	int rc = -1;

	if (!*domain)
		domain = submitter;
	snprintf(id, sizeof(id), "%s\n%s\n%s\n%s", conf_str(c, "dkim_key_file"),
		 conf_str(c, "dkim_algorithm"), domain, conf_str(c, "dkim_selector"));
	pthread_mutex_lock(&signer_lock);
	if (!signer || strcmp(id, signer_id) != 0) {
		dkim_signer_free(signer);
		signer_id[0] = '\0';
		signer = dkim_signer_new(conf_str(c, "dkim_key_file"),
					 conf_str(c, "dkim_algorithm"), domain,
					 conf_str(c, "dkim_selector"), err, errsz);
		if (signer)
			snprintf(signer_id, sizeof(signer_id), "%s", id);
	}
	if (signer)
		rc = dkim_sign(signer, msg, len, now, out, err, errsz);
	pthread_mutex_unlock(&signer_lock);
	return rc;
}

/* The human-readable first part. */
static void add_text_part(struct buf *t, const struct report_file *r)
{
	char b[80], e[80];

	format_iso(b, sizeof(b), r->begin);
	format_iso(e, sizeof(e), r->end);
	buf_adds(t, "This is an aggregate SMTP TLS report (RFC 8460).\r\n\r\n");
	buf_printf(t, "Submitter:     %s\r\n", r->submitter);
	if (r->organization && *r->organization) {
		buf_adds(t, "Organization:  ");
		add_text(t, r->organization, 200);
		buf_adds(t, "\r\n");
	}
	buf_printf(t, "Policy domain: %s\r\n", r->policy_domain);
	buf_printf(t, "Period:        %s to %s\r\n", b, e);
	buf_printf(t, "Report-ID:     %s\r\n\r\n", r->report_id);
	buf_printf(t, "Successful sessions: %llu\r\n", (unsigned long long)r->successes);
	buf_printf(t, "Failed sessions:     %llu\r\n\r\n", (unsigned long long)r->failures);
	buf_printf(t,
		   "The counts are SMTP sessions from our mail servers to the mail servers\r\n"
		   "of %s. A successful session negotiated TLS and met the policy\r\n"
		   "published for the domain (MTA-STS, DANE, or none); a failed session\r\n"
		   "could not establish TLS as the policy requires. The attached file\r\n"
		   "%s\r\n"
		   "is the report itself (gzip-compressed JSON, application/tlsrpt+gzip);\r\n"
		   "it lists the failures by type and is authoritative.\r\n",
		   r->policy_domain, r->filename);
	if (r->contact && *r->contact) {
		buf_adds(t, "\r\nContact: ");
		add_text(t, r->contact, 200);
		buf_adds(t, "\r\n");
	}
}

int mail_build(const struct report_file *r, const char *rcpt,
	       const struct conf *c, int64_t now, struct buf *out,
	       char *err, size_t errsz)
{
	char date[128], boundary[64], hash[SHA256_DIGEST_LENGTH];
	struct buf m, text, v;
	const char *at;
	size_t off;
	int rc = -1;

	if (!r || !rcpt || !r->gz || r->gzlen == 0) {
		snprintf(err, errsz, "mail_build: report or recipient missing");
		return -1;
	}
	if (mail_check_domain(r->policy_domain, "policy domain", err, errsz) < 0 ||
	    mail_check_domain(r->submitter, "submitter", err, errsz) < 0 ||
	    mail_check_report_id(r->report_id, err, errsz) < 0 ||
	    mail_check_filename(r->filename, err, errsz) < 0 ||
	    mail_check_addr(rcpt, "recipient", err, errsz) < 0)
		return -1;

	buf_init(&m, out->max);
	buf_init(&text, 64 * 1024);
	buf_init(&v, 4096);

	if (add_from(&m, c, err, errsz) < 0)
		goto done;
	add_header(&m, "To", rcpt);
	format_date(date, sizeof(date), now);
	add_header(&m, "Date", date);

	/* Message-ID: the report-id's left part, a hash of the recipient (one
	 * message per rua address; the same on every retry), the submitter */
	SHA256((const unsigned char *)rcpt, strlen(rcpt), (unsigned char *)hash);
	at = strchr(r->report_id, '@');
	buf_printf(&v, "<%.*s.%02x%02x%02x%02x@%s>", (int)(at - r->report_id), r->report_id,
		   (unsigned char)hash[0], (unsigned char)hash[1], (unsigned char)hash[2],
		   (unsigned char)hash[3], r->submitter);
	add_header(&m, "Message-ID", v.data);
	buf_reset(&v);
	buf_printf(&v, "Report Domain: %s Submitter: %s Report-ID: <%s>", r->policy_domain,
		   r->submitter, r->report_id);
	add_header(&m, "Subject", v.data);
	add_header(&m, "TLS-Report-Domain", r->policy_domain);
	add_header(&m, "TLS-Report-Submitter", r->submitter);
	add_header(&m, "TLS-Required", "No");
	add_header(&m, "Auto-Submitted", "auto-generated");
	add_header(&m, "MIME-Version", "1.0");

	add_text_part(&text, r);
	if (text.overflow) {
		snprintf(err, errsz, "human-readable part too large");
		goto done;
	}
	if (make_boundary(boundary, sizeof(boundary), text.data) < 0) {
		snprintf(err, errsz, "no MIME boundary (random source failed)");
		goto done;
	}
	buf_printf(&m, "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
		   " boundary=\"%s\"\r\n\r\n", boundary);
	buf_adds(&m, "This is a multi-part message in MIME format.\r\n\r\n");
	buf_printf(&m, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n"
		   "Content-Transfer-Encoding: 7bit\r\n\r\n", boundary);
	buf_add(&m, text.data, text.len);
	buf_printf(&m, "--%s\r\nContent-Type: application/tlsrpt+gzip;\r\n"
		   " name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n"
		   "Content-Disposition: attachment;\r\n filename=\"%s\"\r\n\r\n",
		   boundary, r->filename, r->filename);
	for (off = 0; off < r->gzlen; off += MAIL_B64_LINE) {
		unsigned char line[80];
		size_t n = r->gzlen - off > MAIL_B64_LINE ? MAIL_B64_LINE : r->gzlen - off;
		int k = EVP_EncodeBlock(line, r->gz + off, (int)n);

		buf_add(&m, line, (size_t)k);
		buf_adds(&m, "\r\n");
	}
	buf_printf(&m, "--%s--\r\n", boundary);
	if (m.overflow) {
		snprintf(err, errsz, "report message larger than %zu bytes", out->max);
		goto done;
	}

	if (conf_bool(c, "dkim_sign")) {
		struct buf signed_msg;

		buf_init(&signed_msg, out->max);
		if (sign_message(c, r->submitter, m.data, m.len, now, &signed_msg, err, errsz) < 0 ||
		    buf_add(&signed_msg, m.data, m.len) < 0) {
			if (signed_msg.overflow)
				snprintf(err, errsz, "signed report message larger than %zu bytes",
					 out->max);
			buf_free(&signed_msg);
			goto done;
		}
		if (buf_add(out, signed_msg.data, signed_msg.len) < 0) {
			snprintf(err, errsz, "report message does not fit the output buffer");
			buf_free(&signed_msg);
			goto done;
		}
		buf_free(&signed_msg);
	} else if (buf_add(out, m.data, m.len) < 0) {
		snprintf(err, errsz, "report message does not fit the output buffer");
		goto done;
	}
	rc = 0;
done:
	buf_free(&m);
	buf_free(&text);
	buf_free(&v);
	return rc;
}
