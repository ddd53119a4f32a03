/*
 * sts_policy - the strict, bounded parsers of MTA-STS (RFC 8461): the
 * policy file (section 3.2), the "_mta-sts" TXT record (section 3.1), and the
 * MX host pattern matcher (section 4.1).
 *
 * Policy file rules, as RFC 8461 3.2 says:
 *   - lines end with LF or CRLF (errata 6253); the last terminator is
 *     optional; an empty line carries no field and is skipped (leniency);
 *   - a line is NAME ":" *WSP VALUE *WSP; NAME is (ALPHA/DIGIT) then up to 31
 *     of ALPHA/DIGIT/"_"/"-"/"."; keys are case-sensitive;
 *   - version: exactly "STSv1"; mode: "enforce", "testing" or "none";
 *     max_age: 1-10 digits, at most 31557600; mx: ["*."] Domain (RFC 5321
 *     sub-domains, labels 1-63, total <= 253, A-labels only);
 *   - of a duplicated non-mx key the first wins and the others are ignored
 *     unparsed; unknown keys are ignored but must be syntactically valid
 *     (printable UTF-8, no leading space);
 *   - version, mode and max_age are required; mx at least once unless mode
 *     is none.
 * Every line (after its terminator is removed) is kept in order for the
 * report's policy-string.
 *
 * Ownership: a parsed policy owns its memory; free with sts_policy_free.
 * Functions are thread safe (no global state).
 */
#ifndef TLSRPT_STS_POLICY_H
#define TLSRPT_STS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STS_MAX_AGE_LIMIT 31557600u	/* RFC 8461 3.2 */
#define STS_ID_MAX 32			/* RFC 8461 3.1 */
#define STS_TXT_MAX 4096		/* longest TXT record examined */

enum sts_mode { STS_MODE_NONE = 0, STS_MODE_TESTING, STS_MODE_ENFORCE };

struct sts_policy {
	enum sts_mode mode;
	uint32_t max_age;
	char **mx;		/* patterns as written ("*.example.net"), lower case */
	size_t nmx;
	char **lines;		/* every line, in order, without terminator */
	size_t nlines;
};

enum sts_policy_status {
	STS_POLICY_OK = 0,
	STS_POLICY_INVALID,	/* syntax or rule violated: sts-policy-invalid */
	STS_POLICY_TOO_BIG,	/* longer than the limit given */
	STS_POLICY_NOMEM,
};

/*
 * Parse 'len' bytes of a policy body of at most 'max' bytes. On
 * STS_POLICY_OK 'out' is filled; on anything else 'out' is empty (safe to
 * free) and 'err' says what is wrong ("line 3: mode: unknown value").
 */
enum sts_policy_status sts_policy_parse(const char *text, size_t len, size_t max,
					struct sts_policy *out, char *err,
					size_t errsz);
void sts_policy_free(struct sts_policy *p);

/* "enforce", "testing", "none". */
const char *sts_mode_name(enum sts_mode m);

/*
 * Parse one "_mta-sts" TXT record (strings already concatenated): it must
 * begin with "v=STSv1", fields separated by *WSP ";" *WSP, a trailing ";"
 * allowed, an "id=" of 1-32 ALPHA/DIGIT required (the first one counts),
 * extension fields checked against the ABNF. On success copies the id to
 * 'id' (size >= STS_ID_MAX + 1) and returns 0; else -1 and a reason.
 */
int sts_txt_parse(const char *rec, size_t len, char *id, size_t idsz,
		  char *err, size_t errsz);

/*
 * Pick the policy id from a TXT RRset: records that do not begin with
 * "v=STSv1" (followed by WSP, ";" or the end) are discarded; exactly one
 * must remain and be valid. Returns 0 with the id, or -1 with a reason
 * (the domain then has no available policy).
 */
int sts_txt_select(char *const *recs, const size_t *lens, size_t n, char *id,
		   size_t idsz, char *err, size_t errsz);

/*
 * RFC 8461 4.1: does 'host' match 'pattern'? Case-insensitive; one
 * trailing dot of host is ignored; "*.example.com" matches exactly one
 * non-empty leftmost label ("mx.example.com", not "example.com" nor
 * "a.b.example.com").
 */
bool sts_mx_match(const char *pattern, const char *host);
/* True if any mx pattern of 'p' matches 'host'. */
bool sts_policy_mx_match(const struct sts_policy *p, const char *host);

#endif
