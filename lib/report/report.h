/*
 * report - build one RFC 8460 report (JSON, gzip, filename, ids) from one
 * aggregated domain of one UTC day.
 *
 * Everything is a pure function of (day, domain, record, counts, identity):
 * the report-id, the filename's unique-id, the JSON text and the gzip bytes
 * (header mtime 0, no name, fixed OS byte) are the same on every run, so a
 * re-run after a crash produces the identical file.
 *
 *   report-id  "<YYYYMMDD>.<domain>.<uid>@<submitter>"  (RFC 5322 dot-atom
 *              on both sides, no ':', so it also fits Subject/Message-ID)
 *   uid        16 lower-case hex digits of SHA-256(day, domain, record,
 *              submitter): alphanumeric, as RFC 8460 5.1 wants
 *   filename   "<submitter>!<domain>!<begin>!<end>!<uid>.json.gz"
 *   spool id   "<YYYYMMDD>-<uid>"
 *
 * Domains must be A-labels: a report domain or policy-domain that is not
 * plain lower-case ASCII LDH is refused with an error (never sent).
 *
 * Not thread safe per struct report; independent reports may be built in
 * parallel.
 */
#ifndef TLSRPT_REPORT_H
#define TLSRPT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "conf.h"
#include "deliver.h"

#define REPORT_DOMAIN_MAX 253
#define REPORT_UID_LEN 16
#define REPORT_MAX_GZ (10u * 1024 * 1024)	/* RFC 8460 5.2: common receiver limit */

/* Who we are, from the configuration. */
struct report_identity {
	char organization[256];		/* organization-name */
	char contact[320];		/* contact-info (addr-spec) */
	char submitter[REPORT_DOMAIN_MAX + 1];	/* submitter domain */
};

/*
 * Fill 'id' from organization_name, contact_info and submitter_domain
 * (default: the domain of contact_info). Returns 0, or -1 with a message
 * naming the key that is missing or wrong.
 */
int report_identity_from_conf(const struct conf *c, struct report_identity *id,
			      char *err, size_t errsz);

/* True if 'd' is a lower-case A-label host name ('_' allowed in labels). */
bool report_domain_ok(const char *d);

struct report {
	struct report_file file;	/* points into the members below */
	int64_t day;			/* days since the epoch */
	char domain[REPORT_DOMAIN_MAX + 1];
	char uid[REPORT_UID_LEN + 1];
	char spool_id[48];
	char report_id[REPORT_DOMAIN_MAX * 2 + 64];
	char filename[REPORT_DOMAIN_MAX * 2 + 128];
	struct report_identity id;
	char *record;			/* the TLSRPT record (may be "") */
	char *json;			/* the report, NUL terminated */
	size_t jsonlen;
	unsigned char *gz;		/* its gzip */
	size_t gzlen;
};

/*
 * Build the report of domain 'd' for 'day'. 'max_details' bounds the
 * failure-details per policy. Returns 0, or -1 with 'err' (bad domain,
 * no sessions, too large, ENOMEM). Free with report_free in any case.
 */
int report_build(const struct agg_domain *d, int64_t day,
		 const struct report_identity *id, size_t max_details,
		 struct report *r, char *err, size_t errsz);
void report_free(struct report *r);

/* Stable id pieces, exposed for the spool and tests. 'uid' gets
 * REPORT_UID_LEN + 1 bytes. */
void report_uid(int64_t day, const char *domain, const char *record,
		const char *submitter, char *uid);

/* Deterministic gzip (mtime 0). 0, or -1 on ENOMEM / zlib error. */
int report_gzip(const void *in, size_t len, unsigned char **out, size_t *outlen);
/* Decompress at most 'max' bytes of output; -1 if larger or corrupt.
 * The result is NUL terminated (not counted). */
int report_gunzip(const unsigned char *in, size_t len, size_t max,
		  char **out, size_t *outlen);

/* "YYYY-MM-DDT00:00:00Z" style times of a day; out >= 21 bytes. */
void report_day_start(int64_t day, char *out, size_t outsz);
void report_day_end(int64_t day, char *out, size_t outsz);

#endif
