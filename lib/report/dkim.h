/*
 * dkim - DKIM signer (RFC 6376) for our own report mail, with OpenSSL.
 *
 * Algorithms rsa-sha256 and ed25519-sha256 (RFC 8463), canonicalization
 * relaxed/relaxed, never an l= tag (RFC 8460 3). The signed header list is
 * fixed: every one of DKIM_HEADERS that the message has, in that order.
 *
 * A signer owns its private key (loaded once from a PEM file) and is
 * read-only after dkim_signer_new(); dkim_sign() may be called from several
 * threads on the same signer.
 */
#ifndef TLSRPT_DKIM_H
#define TLSRPT_DKIM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define DKIM_HEADERS "from:to:subject:date:message-id:tls-report-domain:" \
	"tls-report-submitter:tls-required:mime-version:content-type:auto-submitted"

struct dkim_signer;

/*
 * Load the PEM private key in 'key_file' (RSA of at least 1024 bits, or
 * Ed25519) for 'algorithm' ("rsa-sha256" or "ed25519-sha256"; the key type
 * must match), signing as d='domain', s='selector' (both checked as domain
 * syntax). Returns NULL with 'err' on any problem.
 */
struct dkim_signer *dkim_signer_new(const char *key_file, const char *algorithm,
				    const char *domain, const char *selector,
				    char *err, size_t errsz);
void dkim_signer_free(struct dkim_signer *s);

/*
 * Sign the complete message 'msg' (CRLF line endings, headers then an empty
 * line then the body) and append the whole "DKIM-Signature: ...\r\n" field,
 * folded, to 'out'. 'now' becomes t=. Returns 0, or -1 with 'err' (headers
 * missing their end, OpenSSL failure, 'out' overflow).
 */
int dkim_sign(const struct dkim_signer *s, const char *msg, size_t len,
	      int64_t now, struct buf *out, char *err, size_t errsz);

#endif
