/*
 * received - the store of TLS reports others sent us. See received.h.
 *
 * SECURITY: inputs are untrusted and pass through mime.c and rptparse.c
 * (both bounded). File names are made only of hex ids chosen here, never
 * of input text. Writes are atomic (tmp file, fsync, link, fsync of the
 * directory); link(2) fails when the name exists, which makes dedupe safe
 * between threads and processes without a lock. The index is appended
 * under flock(2).
 */
#include "received.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsio.h"
#include "rptparse.h"

#define INDEX_LINE_MAX 4096

/* snprintf for messages and paths whose cut is harmless or checked. */
static void say(char *out, size_t outsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *out, size_t outsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
}

struct received_store {
	char *dir;
	const struct received_backend *be;	/* another home of the records, or NULL */
	void *h;				/* its handle */
};

static const char *const classes[] = { "verified", "unverified", "rejected", "tmp" };

const char *received_dir(const struct received_store *s)
{
	return s->be ? s->be->name : s->dir;
}

int received_open_backend(const struct received_backend *be, void *h, struct received_store **out)
{
	struct received_store *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (s == NULL)
		return -1;
	s->be = be;
	s->h = h;
	*out = s;
	return 0;
}

int received_open(const char *dir, struct received_store **out, char *err, size_t errsz)
{
	struct received_store *s;
	char path[4096];

	*out = NULL;
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		say(err, errsz, "%s: %s", dir, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		say(path, sizeof(path), "%s/%s", dir, classes[i]);
		if (mkdir(path, 0750) != 0 && errno != EEXIST) {
			say(err, errsz, "%s: %s", path, strerror(errno));
			return -1;
		}
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->dir = strdup(dir)) == NULL) {
		free(s);
		say(err, errsz, "out of memory");
		return -1;
	}
	*out = s;
	return 0;
}

void received_close(struct received_store *s)
{
	if (s == NULL)
		return;
	if (s->be)
		s->be->close(s->h);
	free(s->dir);
	free(s);
}

/* ---------- DKIM verdict ---------- */

/* Copy 'in' without RFC 5322 comments (nesting bounded) into out. */
static void strip_comments(const char *in, char *out, size_t outsz)
{
	int depth = 0;
	size_t o = 0;
	bool quoted = false;

	for (; *in && o + 1 < outsz; in++) {
		if (*in == '\\' && in[1]) {
			if (depth == 0) {
				out[o++] = in[0];
				if (o + 1 < outsz)
					out[o++] = in[1];
			}
			in++;
			continue;
		}
		if (*in == '"' && depth == 0)
			quoted = !quoted;
		if (!quoted && *in == '(') {
			depth++;
			continue;
		}
		if (!quoted && *in == ')' && depth > 0) {
			depth--;
			out[o++] = ' ';
			continue;
		}
		if (depth == 0)
			out[o++] = *in;
	}
	out[o] = '\0';
}

/* The domain of an address in a From or similar value ("" if none). */
static void addr_domain(const char *v, char *out, size_t outsz)
{
	const char *at = v ? strrchr(v, '@') : NULL;
	size_t n = 0;

	out[0] = '\0';
	if (at == NULL)
		return;
	for (at++; *at && *at != '>' && *at != ' ' && *at != '\t' && *at != '"' &&
		   *at != ';' && *at != ',' && n + 1 < outsz; at++)
		out[n++] = (char)tolower((unsigned char)*at);
	out[n] = '\0';
}

static bool domain_aligned(const char *d, const char *dom)
{
	size_t a = strlen(d), b = strlen(dom);

	if (a == 0 || b == 0)
		return false;
	if (a == b)
		return strcasecmp(d, dom) == 0;
	if (a < b)		/* dom is a subdomain of d */
		return dom[b - a - 1] == '.' && strcasecmp(dom + b - a, d) == 0;
	return d[a - b - 1] == '.' && strcasecmp(d + a - b, dom) == 0;
}

bool received_dkim_verdict(char *const *ar, size_t nar, const char *authserv_id,
			   const char *submitter, const char *from,
			   const char **dkim, char *dom, size_t domsz)
{
	char target[256], other[256] = "";
	bool seen = false;

	*dkim = "none";
	if (domsz)
		dom[0] = '\0';
	if (authserv_id == NULL || authserv_id[0] == '\0')
		return false;
	/* whom the signature must be by: the report's submitter, else From */
	say(target, sizeof(target), "%s", submitter ? submitter : "");
	for (char *p = target; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == ';') {
			*p = '\0';
			break;
		}
	if (target[0] == '\0')
		addr_domain(from, target, sizeof(target));
	for (size_t i = 0; i < nar; i++) {
		char v[MIME_MAX_HEADER + 1], *save = NULL, *res;
		size_t idlen;
		const char *p;

		strip_comments(ar[i], v, sizeof(v));
		p = v;
		while (*p == ' ' || *p == '\t')
			p++;
		idlen = strcspn(p, "; \t");
		if (idlen != strlen(authserv_id) || strncasecmp(p, authserv_id, idlen) != 0)
			continue;
		p = strchr(p, ';');
		if (p == NULL)
			continue;
		for (res = strtok_r((char *)p + 1, ";", &save); res; res = strtok_r(NULL, ";", &save)) {
			char *tsave = NULL, *tok = strtok_r(res, " \t\r\n", &tsave);
			bool pass;

			if (tok == NULL || strncasecmp(tok, "dkim=", 5) != 0)
				continue;
			seen = true;
			pass = strcasecmp(tok + 5, "pass") == 0;
			while ((tok = strtok_r(NULL, " \t\r\n", &tsave)) != NULL) {
				char d[256];
				size_t n;

				if (strncasecmp(tok, "header.d=", 9) == 0)
					say(d, sizeof(d), "%s", tok + 9);
				else if (strncasecmp(tok, "header.i=", 9) == 0)
					addr_domain(tok + 9, d, sizeof(d));
				else
					continue;
				n = strlen(d);	/* unquote */
				if (n >= 2 && d[0] == '"' && d[n - 1] == '"') {
					memmove(d, d + 1, n - 2);
					d[n - 2] = '\0';
				}
				for (char *c = d; *c; c++)
					*c = (char)tolower((unsigned char)*c);
				if (pass && domain_aligned(d, target)) {
					*dkim = "pass";
					say(dom, domsz, "%s", d);
					return true;
				}
				if (pass && other[0] == '\0' && d[0])
					say(other, sizeof(other), "%s", d);
			}
		}
	}
	if (other[0]) {		/* signed, but by someone else than the submitter */
		*dkim = "unaligned";
		say(dom, domsz, "%s", other);
		return false;
	}
	*dkim = seen ? "fail" : "none";
	return false;
}

/* ---------- writing ---------- */

static void hex_sha256(const void *data, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char hx[] = "0123456789abcdef";

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		memset(md, 0, sizeof(md));
	for (int i = 0; i < RECEIVED_ID_LEN / 2; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[RECEIVED_ID_LEN] = '\0';
}

/*
 * Write 'data' to DIR/CLASS/NAME atomically. Returns 0 (written), 1 (the
 * name exists already: nothing changed) or -1 (errno-style failure; err).
 */
static int write_new(struct received_store *s, const char *cls, const char *name,
		     const void *data, size_t len, char *err, size_t errsz)
{
	char tmp[4096], final[4096], dir[4096];
	int fd, rc;

	say(tmp, sizeof(tmp), "%s/tmp/%s.XXXXXX", s->dir, name);
	say(dir, sizeof(dir), "%s/%s", s->dir, cls);
	say(final, sizeof(final), "%s/%s", dir, name);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		say(err, errsz, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (fsio_write_all(fd, data, len) != 0) {
		say(err, errsz, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (fchmod(fd, 0640) != 0 || fsync(fd) != 0 || close(fd) != 0) {
		say(err, errsz, "%s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	rc = link(tmp, final);
	if (rc != 0 && errno == EEXIST) {
		unlink(tmp);
		return 1;
	}
	if (rc != 0) {
		say(err, errsz, "%s: %s", final, strerror(errno));
		unlink(tmp);
		return -1;
	}
	unlink(tmp);
	fsio_fsync_dir(dir);
	return 0;
}

static void index_field(struct buf *b, const char *s)
{
	if (s == NULL || *s == '\0') {
		buf_addc(b, '-');
		return;
	}
	for (; *s; s++)
		buf_addc(b, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static int index_append(struct received_store *s, const char *cls, const char *id,
			int64_t start, int64_t end, int64_t stored, const char *submitter,
			const char *domains, char *err, size_t errsz)
{
	char path[4096];
	struct buf b;
	int fd, rc = 0;

	buf_init(&b, INDEX_LINE_MAX);
	buf_printf(&b, "%s\t%s\t%lld\t%lld\t%lld\t", cls, id, (long long)start, (long long)end,
		   (long long)stored);
	index_field(&b, submitter);
	buf_addc(&b, '\t');
	index_field(&b, domains);
	if (b.overflow) {	/* cut a long reason, keep the line whole */
		b.overflow = false;
		b.len = INDEX_LINE_MAX - 2;
	}
	buf_addc(&b, '\n');
	say(path, sizeof(path), "%s/index", s->dir);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0 || flock(fd, LOCK_EX) != 0 || write(fd, b.data, b.len) != (ssize_t)b.len ||
	    fsync(fd) != 0) {
		say(err, errsz, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	if (fd >= 0)
		close(fd);	/* releases the lock */
	buf_free(&b);
	return rc;
}

static void add_s(struct json_object *o, const char *k, const char *v)
{
	if (v)
		json_object_object_add(o, k, json_object_new_string(v));
}

static struct json_object *headers_json(const struct mime_report *m)
{
	struct json_object *h = json_object_new_object(), *ar;

	if (h == NULL || m == NULL)
		return h;
	add_s(h, "subject", m->subject);
	add_s(h, "from", m->from);
	add_s(h, "tls-report-domain", m->report_domain);
	add_s(h, "tls-report-submitter", m->report_submitter);
	add_s(h, "message-id", m->message_id);
	ar = json_object_new_array();
	for (size_t i = 0; ar && i < m->nauth; i++)
		json_object_array_add(ar, json_object_new_string(m->auth_results[i]));
	json_object_object_add(h, "authentication-results", ar);
	return h;
}

static void fmt_now(int64_t t, char *out, size_t outsz)
{
	rpt_format_time(t, out, outsz);
}

static enum received_status reject(struct received_store *s, const struct received_input *in,
				   const struct mime_report *m, const char *why, char *id,
				   size_t idsz, char *reason, size_t rsz)
{
	char rid[RECEIVED_ID_LEN + 1], name[64], now[32], err[512];
	struct json_object *rec = json_object_new_object();
	const char *text;
	int rc;

	hex_sha256(in->data, in->len, rid);
	say(id, idsz, "%s", rid);
	say(reason, rsz, "%s", why);
	if (rec == NULL) {
		say(reason, rsz, "out of memory");
		return RECEIVED_ERROR;
	}
	fmt_now(in->now, now, sizeof(now));
	add_s(rec, "id", rid);
	add_s(rec, "class", "rejected");
	add_s(rec, "stored", now);
	add_s(rec, "source", in->source);
	add_s(rec, "filename", in->filename);
	add_s(rec, "reason", why);
	json_object_object_add(rec, "size", json_object_new_int64((int64_t)in->len));
	if (m)
		json_object_object_add(rec, "headers", headers_json(m));
	say(name, sizeof(name), "%s.raw", rid);
	rc = write_new(s, "rejected", name, in->data, in->len, err, sizeof(err));
	if (rc == 0) {
		text = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PRETTY |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
		say(name, sizeof(name), "%s.json", rid);
		rc = write_new(s, "rejected", name, text, strlen(text), err, sizeof(err));
		if (rc == 0)
			rc = index_append(s, "rejected", rid, 0, 0, in->now, NULL, why, err, sizeof(err));
	}
	json_object_put(rec);
	if (rc < 0) {
		say(reason, rsz, "storing the rejection failed: %s", err);
		return RECEIVED_ERROR;
	}
	return RECEIVED_REJECTED;	/* a second copy of the same bytes: same record */
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, unique, lower-case policy domains, comma separated. */
static int domains_of(const struct rpt_report *r, struct buf *out)
{
	char **v = calloc(r->npolicies ? r->npolicies : 1, sizeof(char *));
	size_t n = 0;

	if (v == NULL)
		return -1;
	for (size_t i = 0; i < r->npolicies; i++)
		v[n++] = r->policies[i].policy_domain;
	qsort(v, n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcasecmp(v[i], v[i - 1]) == 0)
			continue;
		if (out->len)
			buf_addc(out, ',');
		for (const char *p = v[i]; *p; p++)
			buf_addc(out, (char)tolower((unsigned char)*p));
	}
	free(v);
	return out->overflow ? -1 : 0;
}

static void hash_str(EVP_MD_CTX *h, const char *v)
{
	uint64_t n = v ? strlen(v) + 1 : 0;	/* NULL and "" differ; no field runs into the next */

	EVP_DigestUpdate(h, &n, sizeof(n));
	if (v)
		EVP_DigestUpdate(h, v, n - 1);
}

static void hash_int(EVP_MD_CTX *h, int64_t v)
{
	EVP_DigestUpdate(h, &v, sizeof(v));
}

/*
 * 24 hex digits of SHA-256 over the normalized report (every field of the
 * model, length-prefixed), without building its JSON a second time: the
 * content part of an unverified report's identity. 0 or -1.
 */
static int content_hash(const struct rpt_report *r, char *out)
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char hx[] = "0123456789abcdef";

	if (h == NULL || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h);
		return -1;
	}
	hash_str(h, r->organization_name);
	hash_str(h, r->contact_info);
	hash_str(h, r->report_id);
	hash_int(h, r->start);
	hash_int(h, r->end);
	hash_int(h, (int64_t)r->npolicies);
	for (size_t i = 0; i < r->npolicies; i++) {
		const struct rpt_policy *p = &r->policies[i];

		hash_str(h, p->policy_type);
		hash_str(h, p->policy_domain);
		hash_int(h, (int64_t)p->nstrings);
		for (size_t k = 0; k < p->nstrings; k++)
			hash_str(h, p->policy_string[k]);
		hash_int(h, (int64_t)p->nmx);
		for (size_t k = 0; k < p->nmx; k++)
			hash_str(h, p->mx_host[k]);
		hash_int(h, p->success);
		hash_int(h, p->failure);
		hash_int(h, (int64_t)p->ndetails);
		for (size_t k = 0; k < p->ndetails; k++) {
			const struct rpt_detail *d = &p->details[k];

			hash_str(h, d->result_type);
			hash_str(h, d->sending_mta_ip);
			hash_str(h, d->receiving_mx_hostname);
			hash_str(h, d->receiving_mx_helo);
			hash_str(h, d->receiving_ip);
			hash_str(h, d->additional_information);
			hash_str(h, d->failure_reason_code);
			hash_int(h, d->failed_session_count);
		}
	}
	if (EVP_DigestFinal_ex(h, md, &mdlen) != 1) {
		EVP_MD_CTX_free(h);
		return -1;
	}
	EVP_MD_CTX_free(h);
	for (int i = 0; i < RECEIVED_ID_LEN / 2; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[RECEIVED_ID_LEN] = '\0';
	return 0;
}

/* The report's submitter domain, lower case: contact-info's (RFC 8460
 * 5.6: the body is authoritative), else TLS-Report-Submitter; "" if none. */
static void report_submitter(const struct rpt_report *r, const struct mime_report *m,
			     char *out, size_t outsz)
{
	addr_domain(r->contact_info, out, outsz);
	if (out[0] == '\0' && m && m->report_submitter) {
		size_t n = strcspn(m->report_submitter, " \t;");

		say(out, outsz, "%.*s", (int)n, m->report_submitter);
	}
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

static enum received_status store_report(struct received_store *s,
					 const struct received_input *in,
					 const struct mime_report *m, const struct rpt_report *r,
					 const char *dkim, bool verified, const char *dkim_domain,
					 char *id, size_t idsz, char *reason, size_t rsz)
{
	char rid[RECEIVED_ID_LEN + 1], name[64], now[32], err[512], submitter[256];
	const char *cls = verified ? "verified" : "unverified";
	struct json_object *rec = NULL, *w, *rep;
	struct buf key, doms;
	enum received_status st = RECEIVED_ERROR;
	const char *text;
	int rc;

	buf_init(&key, 1 << 20);
	buf_init(&doms, 1 << 16);
	/* The submitter: contact-info's domain (the body is authoritative),
	 * else TLS-Report-Submitter, else the organization name. */
	report_submitter(r, m, submitter, sizeof(submitter));
	if (submitter[0] == '\0') {
		say(submitter, sizeof(submitter), "%s", r->organization_name);
		for (char *p = submitter; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	if (domains_of(r, &doms) != 0) {
		say(reason, rsz, "out of memory");
		goto out;
	}
	/*
	 * The identity. Verified: who signed (the aligned d=, or for --trusted
	 * the submitter the operator vouches for), the submitter, report-id,
	 * domains and range: a resend is a duplicate, a report verified for
	 * another domain never is. Unverified: who (if anyone) signed, and the
	 * normalized content too, so that a forgery claiming someone's
	 * contact-info and report-id can never pre-empt the real report.
	 */
	buf_printf(&key, "%s\n%s\n%s\n%s\n%s\n%lld\n%lld", cls,
		   verified ? (dkim_domain && dkim_domain[0] ? dkim_domain : submitter)
			    : (dkim_domain ? dkim_domain : ""),
		   submitter, r->report_id, doms.data ? doms.data : "", (long long)r->start,
		   (long long)r->end);
	if (!verified) {
		char ch[RECEIVED_ID_LEN + 1];

		if (content_hash(r, ch) != 0) {
			say(reason, rsz, "out of memory");
			goto out;
		}
		buf_printf(&key, "\n%s", ch);
	}
	if (key.overflow) {
		say(reason, rsz, "out of memory");
		goto out;
	}
	hex_sha256(key.data, key.len, rid);
	say(id, idsz, "%s", rid);
	fmt_now(in->now, now, sizeof(now));
	rec = json_object_new_object();
	w = json_object_new_array();
	rep = rpt_to_json(r);
	if (rec == NULL || w == NULL || rep == NULL) {
		json_object_put(w);
		json_object_put(rep);
		say(reason, rsz, "out of memory");
		goto out;
	}
	add_s(rec, "id", rid);
	add_s(rec, "class", cls);
	add_s(rec, "stored", now);
	add_s(rec, "source", in->source);
	add_s(rec, "filename", in->filename ? in->filename : m ? m->part_filename : NULL);
	add_s(rec, "dkim", dkim);
	json_object_object_add(rec, "dkim_verified", json_object_new_boolean(verified));
	add_s(rec, "dkim_domain", dkim_domain && dkim_domain[0] ? dkim_domain : NULL);
	add_s(rec, "submitter", submitter);
	if (m)
		json_object_object_add(rec, "headers", headers_json(m));
	for (size_t i = 0; i < r->nwarn; i++)
		json_object_array_add(w, json_object_new_string(r->warnings[i]));
	if (m && m->mbox_from)
		json_object_array_add(w, json_object_new_string(
			"the mail starts with an mbox \"From \" line: skipped"));
	json_object_object_add(rec, "warnings", w);
	/* what was tolerated: the sender's deviations from RFC 8460 */
	json_object_object_add(rec, "deviations", json_object_new_int((int)json_object_array_length(w)));
	json_object_object_add(rec, "report", rep);
	text = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text == NULL) {
		say(reason, rsz, "out of memory");
		goto out;
	}
	say(name, sizeof(name), "%s.json", rid);
	rc = write_new(s, cls, name, text, strlen(text), err, sizeof(err));
	if (rc == 1) {
		st = RECEIVED_DUPLICATE;
		say(reason, rsz, "%s, duplicate", cls);
		goto out;
	}
	if (rc == 0 && index_append(s, cls, rid, r->start, r->end, in->now, submitter,
				    doms.data ? doms.data : "", err, sizeof(err)) != 0) {
		/* no record without its index line: take it back, a resend retries */
		char path[4096];

		say(path, sizeof(path), "%s/%s/%s", s->dir, cls, name);
		unlink(path);
		rc = -1;
	}
	if (rc < 0) {
		say(reason, rsz, "storing the report failed: %s", err);
		goto out;
	}
	say(reason, rsz, "%s", cls);
	st = RECEIVED_STORED;
out:
	json_object_put(rec);
	buf_free(&key);
	buf_free(&doms);
	return st;
}

enum received_status received_ingest(struct received_store *s, const struct received_input *in0,
				     char *id, size_t idsz, char *reason, size_t rsz)
{
	struct received_input in = *in0;
	struct mime_report m;
	struct rpt_report *r = NULL;
	char err[512], fb[256] = "", dkim_dom[256] = "";

	if (s->be) {
		say(reason, rsz, "the %s is read-only here: reports are stored locally and pushed",
		    s->be->name);
		if (idsz)
			id[0] = '\0';
		return RECEIVED_ERROR;
	}
	const unsigned char *data;
	size_t len;
	const char *dkim = "unknown";
	bool verified = false, have_mime = false;
	enum received_status st;

	if (idsz)
		id[0] = '\0';
	if (in.now == 0)
		in.now = (int64_t)time(NULL);
	if (in.data == NULL) {
		in.data = "";
		in.len = 0;
	}
	data = in.data;
	len = in.len;
	if (in.is_message) {
		enum mime_status ms = mime_extract(in.data, in.len, in.max_report, &m, err, sizeof(err));

		have_mime = true;
		if (ms != MIME_OK) {
			st = reject(s, &in, &m, err, id, idsz, reason, rsz);
			mime_report_free(&m);
			return st;
		}
		data = m.part;
		len = m.part_len;
		if (m.report_domain)
			say(fb, sizeof(fb), "%s", m.report_domain);
		else if (m.part_filename)
			rpt_domain_from_filename(m.part_filename, fb, sizeof(fb));
	} else if (in.filename) {
		rpt_domain_from_filename(in.filename, fb, sizeof(fb));
	}
	if (rpt_parse(data, len, in.max_report, fb[0] ? fb : NULL, &r, err, sizeof(err)) != 0) {
		st = reject(s, &in, have_mime ? &m : NULL, err, id, idsz, reason, rsz);
	} else {
		if (in.trusted) {
			verified = true;
			dkim = "trusted";
		} else if (have_mime && in.authserv_id && in.authserv_id[0]) {
			char sub[256];

			/* the signature must be the submitter's own (a forger signs
			 * with their domain and claims Google's contact-info) */
			report_submitter(r, &m, sub, sizeof(sub));
			verified = received_dkim_verdict(m.auth_results, m.nauth, in.authserv_id,
							 sub, m.from, &dkim, dkim_dom, sizeof(dkim_dom));
		}
		st = store_report(s, &in, have_mime ? &m : NULL, r, dkim, verified, dkim_dom,
				  id, idsz, reason, rsz);
		rpt_free(r);
	}
	if (have_mime)
		mime_report_free(&m);
	return st;
}

/* ---------- reading ---------- */

/* Readers may be root (tlsrptctl received show): never through a link. */
static struct json_object *load_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct json_object *o = fd >= 0 ? json_object_from_fd(fd) : NULL;

	if (fd >= 0)
		close(fd);

	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static bool valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n != RECEIVED_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)id[i]) || isupper((unsigned char)id[i]))
			return false;
	return true;
}

int received_load(struct received_store *s, const char *id, struct json_object **rec)
{
	char path[4096];

	*rec = NULL;
	if (!valid_id(id))
		return -1;
	if (s->be)
		return s->be->load(s->h, id, rec);
	for (int i = 0; i < 3; i++) {
		say(path, sizeof(path), "%s/%s/%s.json", s->dir, classes[i], id);
		if (access(path, F_OK) == 0) {
			*rec = load_file(path);
			return *rec ? 0 : -1;
		}
	}
	return -1;
}

int received_foreach(struct received_store *s, int64_t since,
		     int (*cb)(const char *cls, const char *id, struct json_object *rec, void *arg),
		     void *arg)
{
	char path[4096], line[INDEX_LINE_MAX + 2];
	FILE *fp;
	int rc = 0;
	struct json_object *seen;

	if (s->be)
		return s->be->foreach(s->h, since, cb, arg);
	seen = json_object_new_object();
	say(path, sizeof(path), "%s/index", s->dir);
	{
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

		fp = fd >= 0 ? fdopen(fd, "r") : NULL;
		if (fd >= 0 && fp == NULL)
			close(fd);
	}
	if (fp == NULL || seen == NULL) {
		json_object_put(seen);
		if (fp)
			fclose(fp);
		return 0;
	}
	while (rc == 0 && fgets(line, sizeof(line), fp)) {
		char *f[7], *save = NULL, *p = line;
		int nf = 0;
		struct json_object *rec;
		char key[64];

		line[strcspn(line, "\n")] = '\0';
		for (char *t = strtok_r(p, "\t", &save); t && nf < 7; t = strtok_r(NULL, "\t", &save))
			f[nf++] = t;
		if (nf < 5 || !valid_id(f[1]))
			continue;
		if (strcmp(f[0], "rejected") != 0 && strtoll(f[3], NULL, 10) < since)
			continue;
		if (strcmp(f[0], "verified") != 0 && strcmp(f[0], "unverified") != 0 &&
		    strcmp(f[0], "rejected") != 0)
			continue;
		say(key, sizeof(key), "%s/%s", f[0], f[1]);
		if (json_object_object_get_ex(seen, key, NULL))
			continue;
		json_object_object_add(seen, key, NULL);
		say(path, sizeof(path), "%s/%s/%s.json", s->dir, f[0], f[1]);
		rec = load_file(path);
		if (rec == NULL)
			continue;
		rc = cb(f[0], f[1], rec, arg);
		json_object_put(rec);
	}
	fclose(fp);
	json_object_put(seen);
	return rc;
}

int received_index_identity(struct received_store *s, uint64_t *dev, uint64_t *ino, uint64_t *size)
{
	char path[4096];
	struct stat st;

	if (s->be)
		return -1;
	say(path, sizeof(path), "%s/index", s->dir);
	if (stat(path, &st) != 0)
		return -1;
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
	*size = (uint64_t)st.st_size;
	return 0;
}

int received_scan(struct received_store *s, int64_t offset,
		  int (*cb)(const struct received_entry *e, struct json_object *rec, void *arg),
		  void *arg)
{
	char path[4096], line[INDEX_LINE_MAX + 2];
	FILE *fp;
	int rc = 0;

	if (s->be || offset < 0)
		return -1;
	say(path, sizeof(path), "%s/index", s->dir);
	if ((fp = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : -1;
	if (offset > 0 && fseeko(fp, (off_t)offset, SEEK_SET) != 0) {
		fclose(fp);
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), fp)) {
		size_t len = strlen(line);
		char *f[7], *save = NULL;
		int nf = 0;
		struct received_entry e;
		struct json_object *rec;

		if (len == 0 || line[len - 1] != '\n')
			break;		/* a line still being written: next time */
		memset(&e, 0, sizeof(e));
		e.next = (int64_t)ftello(fp);
		line[len - 1] = '\0';
		for (char *t = strtok_r(line, "\t", &save); t && nf < 7; t = strtok_r(NULL, "\t", &save))
			f[nf++] = t;
		if (nf < 5 || !valid_id(f[1]) || (strcmp(f[0], "verified") != 0 &&
		    strcmp(f[0], "unverified") != 0 && strcmp(f[0], "rejected") != 0)) {
			rc = cb(&e, NULL, arg);		/* skipped, but the offset moves on */
			continue;
		}
		e.cls = f[0];
		e.id = f[1];
		e.start = strtoll(f[2], NULL, 10);
		e.end = strtoll(f[3], NULL, 10);
		e.stored = strtoll(f[4], NULL, 10);
		e.submitter = nf > 5 && strcmp(f[5], "-") != 0 ? f[5] : NULL;
		e.domains = nf > 6 && strcmp(f[6], "-") != 0 ? f[6] : NULL;
		say(path, sizeof(path), "%s/%s/%s.json", s->dir, f[0], f[1]);
		rec = load_file(path);
		rc = cb(&e, rec, arg);
		json_object_put(rec);
	}
	fclose(fp);
	return rc;
}
