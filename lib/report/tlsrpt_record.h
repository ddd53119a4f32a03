/*
 * tlsrpt_record - the strict, bounded parser of RFC 8460 section 3 TLSRPT
 * TXT records ("v=TLSRPTv1; rua=mailto:a@example.com,https://...").
 *
 * Grammar as the ABNF says: "v=TLSRPTv1" first (case-sensitive), fields
 * separated by *WSP ";" *WSP, a trailing ";" allowed, several rua fields and
 * comma separated URIs (whitespace allowed around the comma) all taken,
 * unknown fields ignored, each URI percent-decoded; only mailto: and https:
 * destinations are kept (others are reported as skipped). Input length is
 * bounded (TLSRPT_RECORD_MAX); at most TLSRPT_MAX_RUA destinations.
 *
 * Every problem found is returned as a diagnostic so that `tlsrptctl record
 * check` can say precisely what is wrong; the reporter only needs 'ok'.
 */
#ifndef TLSRPT_RECORD_H
#define TLSRPT_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#define TLSRPT_RECORD_MAX 8192
#define TLSRPT_MAX_RUA 16
#define TLSRPT_MAX_DIAG 16

enum rua_scheme { RUA_MAILTO = 1, RUA_HTTPS = 2 };

struct tlsrpt_rua {
	enum rua_scheme scheme;
	char *uri;		/* decoded URI as given ("https://...") */
	char *address;		/* mailto: the decoded addr-spec, hfields dropped; https: NULL */
};

struct tlsrpt_record {
	bool ok;			/* a valid record with >= 1 usable rua */
	struct tlsrpt_rua rua[TLSRPT_MAX_RUA];
	size_t nrua;
	char *diag[TLSRPT_MAX_DIAG];	/* human-readable problems found */
	size_t ndiag;
};

/*
 * Parse 'len' bytes of a record (character-strings already concatenated).
 * Returns 0 when the record could be examined (check rec->ok), -1 on ENOMEM.
 * Always call tlsrpt_record_free afterwards.
 */
int tlsrpt_record_parse(const char *text, size_t len, struct tlsrpt_record *rec);
void tlsrpt_record_free(struct tlsrpt_record *rec);

/* True if 's' looks like a TLSRPT record at all ("v=TLSRPTv1" then WSP or ';'),
 * the RFC 8460 rule for picking records out of a TXT RRset. */
bool tlsrpt_record_is_candidate(const char *s, size_t len);

#endif
