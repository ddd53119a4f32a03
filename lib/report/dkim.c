/*
 * dkim - DKIM signer (RFC 6376, RFC 8463) for report mail. See dkim.h.
 *
 * SECURITY
 *	The message is ours (built by mail.c from checked values); the key
 *	file is read once with no passphrase prompt. Signing state lives on
 *	the stack, so one signer serves many threads.
 */
#include "dkim.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "log.h"
#include "mail.h"

#define DKIM_MSG_MAX (64u * 1024 * 1024)	/* canonical copies are bounded too */

enum dkim_alg { DKIM_RSA_SHA256, DKIM_ED25519_SHA256 };

struct dkim_signer {
	EVP_PKEY *key;
	enum dkim_alg alg;
	char domain[MAIL_DOMAIN_MAX + 1];
	char selector[MAIL_DOMAIN_MAX + 1];
};

/* Append OpenSSL's last error (or "unknown error") to a message. */
static void ssl_error(char *err, size_t errsz, const char *what)
{
	char e[256];
	unsigned long code = ERR_get_error();

	if (code)
		ERR_error_string_n(code, e, sizeof(e));
	else
		snprintf(e, sizeof(e), "unknown error");
	ERR_clear_error();
	snprintf(err, errsz, "%s: %s", what, e);
}

/* Passphrase callback: never prompt on a terminal. */
static int no_passphrase(char *b, int size, int rwflag, void *u)
{
	(void)b; (void)size; (void)rwflag; (void)u;
	return -1;
}

struct dkim_signer *dkim_signer_new(const char *key_file, const char *algorithm,
				    const char *domain, const char *selector,
				    char *err, size_t errsz)
{
	struct dkim_signer *s;
	char pr[128];
	BIO *bio;
	int type;

	if (!key_file || !*key_file) {
		snprintf(err, errsz, "dkim_sign = yes needs dkim_key_file");
		return NULL;
	}
	if (!selector || !*selector) {
		snprintf(err, errsz, "dkim_sign = yes needs dkim_selector");
		return NULL;
	}
	if (mail_check_domain(domain, "DKIM domain (d=)", err, errsz) < 0 ||
	    mail_check_domain(selector, "DKIM selector (s=)", err, errsz) < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if (strcmp(algorithm, "rsa-sha256") == 0) {
		s->alg = DKIM_RSA_SHA256;
	} else if (strcmp(algorithm, "ed25519-sha256") == 0) {
		s->alg = DKIM_ED25519_SHA256;
	} else {
		snprintf(err, errsz, "dkim_algorithm \"%s\": want rsa-sha256 or ed25519-sha256",
			 log_printable(pr, sizeof(pr), algorithm, strlen(algorithm)));
		free(s);
		return NULL;
	}
	bio = BIO_new_file(key_file, "r");
	if (!bio) {
		ssl_error(err, errsz, key_file);
		free(s);
		return NULL;
	}
	s->key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (!s->key) {
		ssl_error(err, errsz, key_file);
		free(s);
		return NULL;
	}
	type = EVP_PKEY_get_base_id(s->key);
	if (s->alg == DKIM_RSA_SHA256 && type != EVP_PKEY_RSA) {
		snprintf(err, errsz, "%s: not an RSA key (dkim_algorithm = rsa-sha256)", key_file);
		goto fail;
	}
	if (s->alg == DKIM_ED25519_SHA256 && type != EVP_PKEY_ED25519) {
		snprintf(err, errsz, "%s: not an Ed25519 key (dkim_algorithm = ed25519-sha256)",
			 key_file);
		goto fail;
	}
	if (s->alg == DKIM_RSA_SHA256 && EVP_PKEY_get_bits(s->key) < 1024) {
		snprintf(err, errsz, "%s: RSA key of %d bits, verifiers need >= 1024 (RFC 8301)",
			 key_file, EVP_PKEY_get_bits(s->key));
		goto fail;
	}
	snprintf(s->domain, sizeof(s->domain), "%s", domain);
	snprintf(s->selector, sizeof(s->selector), "%s", selector);
	return s;
fail:
	EVP_PKEY_free(s->key);
	free(s);
	return NULL;
}

void dkim_signer_free(struct dkim_signer *s)
{
	if (!s)
		return;
	EVP_PKEY_free(s->key);
	free(s);
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Relaxed header canonicalization (RFC 6376 3.4.2) of one raw field
 * f[0..n) without its final CRLF: lower-case name, no WSP around the colon,
 * unfolded, WSP runs to one SP, no WSP at either end of the value.
 * Appends "name:value" and, if 'crlf', CRLF.
 */
static void canon_header(struct buf *out, const char *f, size_t n, bool crlf)
{
	const char *colon = memchr(f, ':', n);
	size_t nl, i;
	bool wsp = false, started = false;

	if (!colon)
		return;
	nl = (size_t)(colon - f);
	while (nl > 0 && is_wsp(f[nl - 1]))
		nl--;
	for (i = 0; i < nl; i++) {
		char c = f[i];
		buf_addc(out, (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c);
	}
	buf_addc(out, ':');
	for (i = (size_t)(colon - f) + 1; i < n; i++) {
		char c = f[i];

		if (c == '\r' || c == '\n')
			continue;
		if (is_wsp(c)) {
			wsp = true;
			continue;
		}
		if (wsp && started)
			buf_addc(out, ' ');
		wsp = false;
		started = true;
		buf_addc(out, c);
	}
	if (crlf)
		buf_add(out, "\r\n", 2);
}

/* Relaxed body canonicalization (RFC 6376 3.4.4) of b[0..n): WSP runs to
 * one SP, no WSP at line ends, no empty lines at the end, CRLF endings. */
static void canon_body(struct buf *out, const char *b, size_t n)
{
	struct buf line;
	size_t i = 0, empty = 0;

	buf_init(&line, n + 1);
	while (i < n) {
		const char *eol = memchr(b + i, '\n', n - i);
		size_t end = eol ? (size_t)(eol - b) : n, next = eol ? end + 1 : n, j;
		bool wsp = false;

		if (end > i && b[end - 1] == '\r')
			end--;
		buf_reset(&line);
		for (j = i; j < end; j++) {
			if (is_wsp(b[j])) {
				wsp = true;
				continue;
			}
			if (wsp)
				buf_addc(&line, ' ');
			wsp = false;
			buf_addc(&line, b[j]);
		}
		if (line.len == 0) {
			empty++;
		} else {
			for (; empty; empty--)
				buf_add(out, "\r\n", 2);
			buf_add(out, line.data, line.len);
			buf_add(out, "\r\n", 2);
		}
		i = next;
	}
	buf_free(&line);
}

/* The last field named 'name' in the header block h[0..n). */
static bool find_header(const char *h, size_t n, const char *name,
			const char **fs, size_t *fn)
{
	size_t i = 0, nl = strlen(name);
	bool found = false;

	while (i < n) {
		size_t e = i;

		/* field ends at a CRLF not followed by WSP */
		for (;;) {
			const char *p = memchr(h + e, '\n', n - e);

			if (!p) {
				e = n;
				break;
			}
			e = (size_t)(p - h) + 1;
			if (e >= n || !is_wsp(h[e]))
				break;
		}
		{
			size_t k = nl;
			while (i + k < e && is_wsp(h[i + k]))
				k++;
			if (e - i > nl && strncasecmp(h + i, name, nl) == 0 &&
			    i + k < e && h[i + k] == ':') {
				size_t len = e - i;

				while (len > 0 && (h[i + len - 1] == '\n' || h[i + len - 1] == '\r'))
					len--;
				*fs = h + i;
				*fn = len;
				found = true;
			}
		}
		i = e;
	}
	return found;
}

/* Base64 of in[0..n) appended to 'out'. */
static void add_base64(struct buf *out, const unsigned char *in, size_t n)
{
	unsigned char enc[4 * ((1024 + 2) / 3) + 1];

	while (n > 0) {
		size_t chunk = n > 1023 ? 1023 : n;	/* multiple of 3 */
		int m = EVP_EncodeBlock(enc, in, (int)chunk);

		buf_add(out, enc, (size_t)m);
		in += chunk;
		n -= chunk;
	}
}

int dkim_sign(const struct dkim_signer *s, const char *msg, size_t len,
	      int64_t now, struct buf *out, char *err, size_t errsz)
{
	static const char *const names[] = {
		"from", "to", "subject", "date", "message-id", "tls-report-domain",
		"tls-report-submitter", "tls-required", "mime-version",
		"content-type", "auto-submitted",
	};
	struct buf hlist, field, data, body;
	unsigned char bh[SHA256_DIGEST_LENGTH], hash[SHA256_DIGEST_LENGTH];
	unsigned char sig[1024];
	size_t hlen, siglen = sizeof(sig), i, linelen;
	const char *sep;
	EVP_MD_CTX *ctx = NULL;
	int rc = -1;

	sep = NULL;
	for (i = 0; i + 3 < len; i++)
		if (memcmp(msg + i, "\r\n\r\n", 4) == 0) {
			sep = msg + i;
			break;
		}
	if (!sep) {
		snprintf(err, errsz, "DKIM: message has no end of headers");
		return -1;
	}
	hlen = (size_t)(sep - msg) + 2;
	buf_init(&hlist, 1024);
	buf_init(&field, DKIM_MSG_MAX);
	buf_init(&data, DKIM_MSG_MAX);
	buf_init(&body, DKIM_MSG_MAX);

	/* body hash */
	canon_body(&body, sep + 4, len - hlen - 2);
	if (body.overflow) {
		snprintf(err, errsz, "DKIM: message too large");
		goto out;
	}
	SHA256((const unsigned char *)(body.data ? body.data : ""), body.len, bh);

	/* signed header fields, in DKIM_HEADERS order, folded h= list */
	linelen = 3;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *fs;
		size_t fn, nl = strlen(names[i]);

		if (!find_header(msg, hlen, names[i], &fs, &fn))
			continue;
		canon_header(&data, fs, fn, true);
		if (hlist.len) {
			buf_addc(&hlist, ':');
			linelen++;
			if (linelen + nl > 72) {
				buf_adds(&hlist, "\r\n\t");
				linelen = 1;
			}
		}
		buf_adds(&hlist, names[i]);
		linelen += nl;
	}

	buf_printf(&field, "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed;\r\n"
		   "\td=%s; s=%s; t=%lld;\r\n\th=%s;\r\n\tbh=",
		   s->alg == DKIM_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256",
		   s->domain, s->selector, (long long)now, hlist.data ? hlist.data : "");
	add_base64(&field, bh, sizeof(bh));
	buf_adds(&field, ";\r\n\tb=");
	canon_header(&data, field.data, field.len, false);
	if (data.overflow || field.overflow || hlist.overflow) {
		snprintf(err, errsz, "DKIM: message too large");
		goto out;
	}

	ctx = EVP_MD_CTX_new();
	if (!ctx) {
		snprintf(err, errsz, "DKIM: out of memory");
		goto out;
	}
	if (s->alg == DKIM_RSA_SHA256) {
		if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->key) != 1 ||
		    EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)data.data,
				   data.len) != 1) {
			ssl_error(err, errsz, "DKIM rsa-sha256 signing");
			goto out;
		}
	} else {
		/* RFC 8463: PureEdDSA over the SHA-256 of the data */
		SHA256((const unsigned char *)data.data, data.len, hash);
		if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) != 1 ||
		    EVP_DigestSign(ctx, sig, &siglen, hash, sizeof(hash)) != 1) {
			ssl_error(err, errsz, "DKIM ed25519-sha256 signing");
			goto out;
		}
	}

	/* b= folded into lines of at most 74 base64 characters */
	{
		struct buf b64;
		size_t off;

		buf_init(&b64, 2048);
		add_base64(&b64, sig, siglen);
		for (off = 0; off < b64.len; off += 74) {
			size_t n = b64.len - off > 74 ? 74 : b64.len - off;

			if (off)
				buf_adds(&field, "\r\n\t ");
			buf_add(&field, b64.data + off, n);
		}
		buf_free(&b64);
	}
	buf_adds(&field, "\r\n");
	if (field.overflow || buf_add(out, field.data, field.len) < 0) {
		snprintf(err, errsz, "DKIM: signature does not fit the message buffer");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	buf_free(&hlist);
	buf_free(&field);
	buf_free(&data);
	buf_free(&body);
	return rc;
}
