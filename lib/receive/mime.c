/*
 * mime - bounded extraction of the TLS report part from a mail. See mime.h.
 *
 * SECURITY: the message comes from anyone on the Internet. Every scan is
 * bounded by the message length; header values kept are cut at
 * MIME_MAX_HEADER; multipart nesting is bounded by MIME_MAX_DEPTH (the only
 * recursion), leaf parts by MIME_MAX_PARTS, the decoded part by 'max_part'.
 */
#include "mime.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

/* An entity's headers as far as we need them. */
struct entity {
	char *ctype;		/* Content-Type value, or NULL */
	char *cte;		/* Content-Transfer-Encoding value, or NULL */
	char *disp;		/* Content-Disposition value, or NULL */
};

struct walk {
	size_t max_part;
	struct mime_report *out;
	int best;		/* rank of the part kept: 0 none, 1 sniff, 2 name, 3 type */
	enum mime_status st;	/* MIME_OK while going on */
	char *err;
	size_t errsz;
};

/* End of the line starting at p (pointing at '\r' or '\n' or end), and the
 * start of the next line in *next. */
static const char *line_end(const char *p, const char *end, const char **next)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *le;

	if (nl == NULL) {
		*next = end;
		return end;
	}
	*next = nl + 1;
	le = nl;
	if (le > p && le[-1] == '\r')
		le--;
	return le;
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

static bool name_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

/* Keep value 'v' into *slot unless already set. */
static int keep(char **slot, const struct buf *v)
{
	if (*slot != NULL)
		return 0;
	*slot = strdup(v->data ? v->data : "");
	return *slot ? 0 : -1;
}

/* Store one complete (unfolded) header into the entity / report. */
static int store_header(struct entity *en, struct mime_report *top,
			const char *name, size_t nlen, struct buf *v)
{
	const char *s = v->data ? v->data : "", *e = s + v->len;
	struct buf t;
	int rc = 0;

	trim(&s, &e);
	buf_init(&t, MIME_MAX_HEADER);
	buf_add(&t, s, (size_t)(e - s));
	if (t.data == NULL && buf_adds(&t, "") != 0)
		return -1;
	if (name_is(name, nlen, "content-type"))
		rc = keep(&en->ctype, &t);
	else if (name_is(name, nlen, "content-transfer-encoding"))
		rc = keep(&en->cte, &t);
	else if (name_is(name, nlen, "content-disposition"))
		rc = keep(&en->disp, &t);
	else if (top == NULL)
		;
	else if (name_is(name, nlen, "subject"))
		rc = keep(&top->subject, &t);
	else if (name_is(name, nlen, "from"))
		rc = keep(&top->from, &t);
	else if (name_is(name, nlen, "tls-report-domain"))
		rc = keep(&top->report_domain, &t);
	else if (name_is(name, nlen, "tls-report-submitter"))
		rc = keep(&top->report_submitter, &t);
	else if (name_is(name, nlen, "message-id"))
		rc = keep(&top->message_id, &t);
	else if (name_is(name, nlen, "authentication-results") && top->nauth < MIME_MAX_AR) {
		top->auth_results[top->nauth] = strdup(t.data);
		rc = top->auth_results[top->nauth] ? 0 : -1;
		if (rc == 0)
			top->nauth++;
	}
	buf_free(&t);
	return rc;
}

/*
 * Parse the header block at [p, end): fill 'en' (and 'top' if not NULL),
 * set *body to the first byte of the body. A line that is neither a header
 * field nor a continuation ends the headers (it belongs to the body).
 */
static enum mime_status parse_headers(const char *p, const char *end,
				      struct entity *en, struct mime_report *top,
				      const char **body)
{
	const char *name = NULL;
	size_t nlen = 0, nfields = 0;
	struct buf v;

	buf_init(&v, MIME_MAX_HEADER);
	while (p < end) {
		const char *next, *le = line_end(p, end, &next);
		const char *colon;

		if (le == p) {		/* empty line: end of headers */
			p = next;
			break;
		}
		if ((*p == ' ' || *p == '\t') && name != NULL) {
			buf_add(&v, p, (size_t)(le - p));	/* unfold: drop the line break */
			p = next;
			continue;
		}
		colon = memchr(p, ':', (size_t)(le - p));
		if (colon == NULL || colon == p || (*p == ' ' || *p == '\t'))
			break;		/* not a header: the body starts here */
		for (const char *q = p; q < colon; q++)
			if (!isalnum((unsigned char)*q) && *q != '-' && *q != '_' && *q != '.')
				goto body;	/* "From " lines, JSON, garbage: body */
		if (name && store_header(en, top, name, nlen, &v) != 0) {
			buf_free(&v);
			return MIME_NOMEM;
		}
		if (++nfields > MIME_MAX_HEADERS) {
			buf_free(&v);
			return MIME_LIMIT;
		}
		name = p;
		nlen = (size_t)(colon - p);
		buf_reset(&v);
		buf_add(&v, colon + 1, (size_t)(le - colon - 1));
		p = next;
	}
body:
	if (name && store_header(en, top, name, nlen, &v) != 0) {
		buf_free(&v);
		return MIME_NOMEM;
	}
	buf_free(&v);
	*body = p;
	return MIME_OK;
}

static void entity_free(struct entity *en)
{
	free(en->ctype);
	free(en->cte);
	free(en->disp);
}

bool mime_param(const char *value, const char *name, char *out, size_t outsz)
{
	const char *p = value ? strchr(value, ';') : NULL;
	size_t want = strlen(name);

	if (outsz == 0)
		return false;
	while (p && *p) {
		const char *ns, *ne;
		size_t o = 0;
		bool ext = false, quoted;

		p++;			/* skip ';' */
		while (*p == ' ' || *p == '\t')
			p++;
		ns = p;
		while (*p && *p != '=' && *p != ';')
			p++;
		ne = p;
		while (ne > ns && (ne[-1] == ' ' || ne[-1] == '\t'))
			ne--;
		if (*p != '=')
			continue;	/* a bare token: skip */
		if (ne > ns && ne[-1] == '*') {	/* RFC 2231 name*=charset'lang'value */
			ne--;
			ext = true;
		}
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		quoted = *p == '"';
		if ((size_t)(ne - ns) == want && strncasecmp(ns, name, want) == 0) {
			const char *vs;

			if (quoted) {
				p++;
				while (*p && *p != '"') {
					if (*p == '\\' && p[1])
						p++;
					if (o + 1 < outsz)
						out[o++] = *p;
					p++;
				}
			} else {
				vs = p;
				while (*p && *p != ';' && *p != ' ' && *p != '\t')
					p++;
				if (ext) {	/* drop charset'lang' and percent-decode */
					const char *q = memchr(vs, '\'', (size_t)(p - vs));
					const char *q2 = q ? memchr(q + 1, '\'', (size_t)(p - q - 1)) : NULL;
					if (q2)
						vs = q2 + 1;
				}
				for (const char *s = vs; s < p; s++) {
					char c = *s;

					if (ext && c == '%' && p - s >= 3 &&
					    isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
						char hex[3] = { s[1], s[2], 0 };
						c = (char)strtol(hex, NULL, 16);
						s += 2;
					}
					if (o + 1 < outsz)
						out[o++] = c;
				}
			}
			out[o] = '\0';
			return true;
		}
		/* skip this value */
		if (quoted) {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				p++;
			}
			if (*p == '"')
				p++;
		}
		p = strchr(p, ';');
	}
	return false;
}

/* Lower-case media type ("type/subtype") of a Content-Type value into out. */
static void media_type(const char *ct, char *out, size_t outsz)
{
	const char *s = ct ? ct : "", *e = strchr(s, ';');
	size_t n;

	if (e == NULL)
		e = s + strlen(s);
	trim(&s, &e);
	n = (size_t)(e - s) < outsz - 1 ? (size_t)(e - s) : outsz - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[n] = '\0';
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

long mime_decode_base64(const char *in, size_t len, size_t max, unsigned char **out)
{
	size_t cap = len / 4 * 3 + 4, o = 0;
	unsigned char *d;
	uint32_t acc = 0;
	int nbits = 0;

	if (cap > max + 4)
		cap = max + 4;
	d = malloc(cap + 1);
	if (d == NULL)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v;

		if (in[i] == '=')
			break;		/* padding: the end */
		v = b64val((unsigned char)in[i]);
		if (v < 0)
			continue;	/* whitespace, line breaks, junk */
		acc = (acc << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			if (o >= max || o >= cap) {
				free(d);
				return -1;
			}
			d[o++] = (unsigned char)(acc >> nbits);
			acc &= (1u << nbits) - 1;
		}
	}
	d[o] = '\0';
	*out = d;
	return (long)o;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

long mime_decode_qp(const char *in, size_t len, size_t max, unsigned char **out)
{
	size_t o = 0, cap = len < max ? len : max;
	unsigned char *d = malloc(cap + 1);

	if (d == NULL)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '=') {
			size_t j = i + 1;

			/* soft line break: '=' then optional blanks then CRLF/LF */
			while (j < len && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j < len && in[j] == '\r')
				j++;
			if (j >= len || in[j] == '\n') {
				i = j;
				continue;
			}
			if (i + 2 < len && hexval((unsigned char)in[i + 1]) >= 0 &&
			    hexval((unsigned char)in[i + 2]) >= 0) {
				c = (unsigned char)(hexval((unsigned char)in[i + 1]) * 16 +
						    hexval((unsigned char)in[i + 2]));
				i += 2;
			}
		}
		if (o >= cap) {
			free(d);
			return -1;
		}
		d[o++] = c;
	}
	d[o] = '\0';
	*out = d;
	return (long)o;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static void set_err(struct walk *w, enum mime_status st, const char *msg)
{
	if (w->st == MIME_OK) {
		w->st = st;
		snprintf(w->err, w->errsz, "%s", msg);
	}
}

/* Transfer-decode [p, end) per 'cte'; NULL with w->st set on failure. */
static unsigned char *decode_body(struct walk *w, const char *cte, const char *p,
				  const char *end, size_t *outlen)
{
	char enc[32];
	unsigned char *d = NULL;
	long n;

	media_type(cte, enc, sizeof(enc));	/* lower-cases the token */
	if (strcmp(enc, "base64") == 0)
		n = mime_decode_base64(p, (size_t)(end - p), w->max_part, &d);
	else if (strcmp(enc, "quoted-printable") == 0)
		n = mime_decode_qp(p, (size_t)(end - p), w->max_part, &d);
	else {
		n = (long)(end - p);
		if ((size_t)n > w->max_part) {
			n = -1;
		} else {
			d = malloc((size_t)n + 1);
			if (d) {
				memcpy(d, p, (size_t)n);
				d[n] = '\0';
			} else
				n = -1;
		}
	}
	if (n < 0) {
		set_err(w, MIME_LIMIT, "report part larger than the size limit");
		return NULL;
	}
	*outlen = (size_t)n;
	return d;
}

static bool sniff(const unsigned char *d, size_t n)
{
	size_t i = 0;

	if (n >= 2 && d[0] == 0x1f && d[1] == 0x8b)
		return true;
	if (n >= 4 && memcmp(d, "PK\3\4", 4) == 0)
		return true;
	if (n >= 3 && memcmp(d, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < n && isspace(d[i]))
		i++;
	return i < n && d[i] == '{';
}

/* A leaf part: keep it if it is a better report candidate than the one kept. */
static void leaf(struct walk *w, const struct entity *en, const char *type,
		 const char *p, const char *end)
{
	static const char *const types[] = {
		"application/tlsrpt+gzip", "application/tlsrpt+json",
		"application/tlsrpt+zip", "application/tlsrpt",
	};
	static const char *const exts[] = { ".json.gz", ".json", ".gz", ".zip" };
	char fname[512] = "";
	int rank = 0;
	unsigned char *d;
	size_t n;

	if (++w->out->nparts > MIME_MAX_PARTS) {
		set_err(w, MIME_LIMIT, "too many MIME parts");
		return;
	}
	if (!mime_param(en->disp, "filename", fname, sizeof(fname)))
		mime_param(en->ctype, "name", fname, sizeof(fname));
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i]) == 0)
			rank = 3;
	for (size_t i = 0; rank == 0 && fname[0] && i < sizeof(exts) / sizeof(exts[0]); i++)
		if (ends_with(fname, exts[i]))
			rank = 2;
	if (rank <= w->best && !(rank == 0 && w->best == 0))
		return;		/* the first of the best kind wins */
	if (rank == 0 && strcmp(type, "text/html") == 0)
		return;
	d = decode_body(w, en->cte, p, end, &n);
	if (d == NULL)
		return;
	if (rank == 0 && !sniff(d, n)) {
		free(d);
		return;
	}
	if (rank == 0)
		rank = 1;
	free(w->out->part);
	free(w->out->part_type);
	free(w->out->part_filename);
	w->out->part = d;
	w->out->part_len = n;
	w->out->part_type = strdup(type);
	w->out->part_filename = fname[0] ? strdup(fname) : NULL;
	w->out->found = rank == 3 ? MIME_BY_TYPE : rank == 2 ? MIME_BY_NAME : MIME_BY_SNIFF;
	w->best = rank;
	if (w->out->part_type == NULL || (fname[0] && w->out->part_filename == NULL))
		set_err(w, MIME_NOMEM, "out of memory");
}

/* Is the line [p, le) a delimiter of 'bnd'? Sets *close for "--bnd--". */
static bool is_delim(const char *p, const char *le, const char *bnd, size_t blen, bool *close)
{
	const char *q;

	if ((size_t)(le - p) < blen + 2 || p[0] != '-' || p[1] != '-' ||
	    memcmp(p + 2, bnd, blen) != 0)
		return false;
	q = p + 2 + blen;
	*close = le - q >= 2 && q[0] == '-' && q[1] == '-';
	if (*close)
		q += 2;
	while (q < le && (*q == ' ' || *q == '\t'))
		q++;
	return q == le;
}

static void walk_entity(struct walk *w, const char *p, const char *end, int depth, bool top)
{
	struct entity en = { 0 };
	const char *body;
	char type[128], bnd[256];
	enum mime_status st;

	st = parse_headers(p, end, &en, top ? w->out : NULL, &body);
	if (st != MIME_OK) {
		set_err(w, st, st == MIME_LIMIT ? "too many header fields" : "out of memory");
		goto out;
	}
	media_type(en.ctype, type, sizeof(type));
	if (type[0] == '\0')
		snprintf(type, sizeof(type), "text/plain");
	if (strncmp(type, "multipart/", 10) == 0 &&
	    mime_param(en.ctype, "boundary", bnd, sizeof(bnd)) && bnd[0]) {
		size_t blen = strlen(bnd);
		const char *q = body, *part = NULL, *prev_end = NULL;

		if (depth >= MIME_MAX_DEPTH) {
			set_err(w, MIME_LIMIT, "MIME nesting too deep");
			goto out;
		}
		while (q < end && w->st == MIME_OK) {
			const char *next, *le = line_end(q, end, &next);
			bool close = false;

			if (is_delim(q, le, bnd, blen, &close)) {
				if (part)	/* the line break before the delimiter belongs to it */
					walk_entity(w, part, prev_end ? prev_end : part, depth + 1, false);
				part = close ? NULL : next;
				if (close)
					break;
			}
			prev_end = le;	/* end of this line without its break */
			if (part == next)
				prev_end = NULL;
			q = next;
		}
		if (part && w->st == MIME_OK)	/* no closing boundary (Mail.ru) */
			walk_entity(w, part, end, depth + 1, false);
		goto out;
	}
	if (strcmp(type, "message/rfc822") == 0) {
		if (depth >= MIME_MAX_DEPTH)
			set_err(w, MIME_LIMIT, "MIME nesting too deep");
		else
			walk_entity(w, body, end, depth + 1, false);
		goto out;
	}
	leaf(w, &en, type, body, end);
out:
	entity_free(&en);
}

enum mime_status mime_extract(const char *msg, size_t len, size_t max_part,
			      struct mime_report *out, char *err, size_t errsz)
{
	struct walk w = { .max_part = max_part, .out = out, .st = MIME_OK,
			  .err = err, .errsz = errsz };

	memset(out, 0, sizeof(*out));
	if (errsz)
		err[0] = '\0';
	if (msg == NULL)
		len = 0;
	/* a mail saved in an mbox starts with its "From " separator line */
	if (msg && len >= 5 && memcmp(msg, "From ", 5) == 0) {
		const char *next;

		line_end(msg, msg + len, &next);
		len -= (size_t)(next - msg);
		msg = next;
		out->mbox_from = true;
	}
	walk_entity(&w, msg ? msg : "", (msg ? msg : "") + len, 0, true);
	if (w.st != MIME_OK)
		return w.st;
	if (out->part == NULL) {
		snprintf(err, errsz, "no report part found (%zu parts looked at)", out->nparts);
		return MIME_NOREPORT;
	}
	return MIME_OK;
}

void mime_report_free(struct mime_report *r)
{
	if (r == NULL)
		return;
	free(r->subject);
	free(r->from);
	free(r->report_domain);
	free(r->report_submitter);
	free(r->message_id);
	for (size_t i = 0; i < r->nauth; i++)
		free(r->auth_results[i]);
	free(r->part);
	free(r->part_type);
	free(r->part_filename);
	memset(r, 0, sizeof(*r));
}
