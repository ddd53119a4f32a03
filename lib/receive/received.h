/*
 * received - the store of TLS reports others sent us (received_directory).
 *
 * Layout under the directory:
 *   verified/ID.json    reports from mail with a trusted DKIM pass
 *                        (or imported with --trusted)
 *   unverified/ID.json  all others: RFC 8460 section 3 says reports without
 *                        a valid DKIM signature MUST be ignored, so they are
 *                        kept apart and summaries show them separately
 *   rejected/ID.json    why an input could not be used, and
 *   rejected/ID.raw     the input, byte for byte
 *   tmp/                files being written
 *   index               one line per stored item, appended (see below)
 *
 * A record file is one JSON object: "id", "class", "stored" (RFC 3339),
 * "source", "filename", "dkim" (pass, unaligned, fail, none, unknown,
 * trusted), "dkim_verified", "dkim_domain" (who signed: the passing d=,
 * also an unaligned one), "submitter", "headers" (subject, from,
 * tls-report-domain, tls-report-submitter, message-id,
 * authentication-results[]), "warnings"[] (every deviation from RFC 8460
 * that was tolerated), "deviations" (their number) and "report" (the normalized
 * report, rptparse.h); a rejection has "reason" and "size" instead of
 * "report".
 *
 * ID: 24 hex digits of SHA-256 over the identity of a report, over the raw
 * bytes for rejections, so a resent report is found as a duplicate by the
 * atomic creation of its file (write to tmp/, fsync, link(2) to the final
 * name). The identity of a verified report is (class, signer, submitter,
 * report-id, policy domains, date range), the signer being the aligned
 * dkim=pass domain (for --trusted, the submitter): a report verified for
 * one domain can never shadow or be merged with one verified for another.
 * An unverified report's identity adds the signer if any (an unaligned
 * pass) and a hash of its normalized content: an unauthenticated copy can
 * not pre-empt a different report that claims the same names.
 *
 * Index lines: "CLASS\tID\tSTART\tEND\tSTORED\tSUBMITTER\tDOMAINS\n" with
 * Unix seconds and DOMAINS comma separated (for rejections: 0 0, "-" and
 * the reason); fields have tabs and control characters replaced by '?'.
 * Lines are appended under flock(2) in one write; a report whose index
 * line cannot be written is removed again (RECEIVED_ERROR).
 *
 * Thread safety: a store handle is read-only after received_open; any
 * number of threads and processes may add to one directory at once.
 */
#ifndef TLSRPT_RECEIVED_H
#define TLSRPT_RECEIVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mime.h"

struct json_object;
struct received_store;

#define RECEIVED_ID_LEN 24

enum received_status {
	RECEIVED_STORED = 0,	/* a new report was stored */
	RECEIVED_DUPLICATE,	/* the same report is already there */
	RECEIVED_REJECTED,	/* unusable input; a rejection record was stored */
	RECEIVED_ERROR,		/* storing failed (I/O, ENOMEM) */
};

struct received_input {
	const void *data;	/* the input bytes */
	size_t len;
	bool is_message;	/* an RFC 5322 mail (else a report file) */
	const char *source;	/* "milter", "import" */
	const char *filename;	/* file name of an imported file, or NULL */
	const char *authserv_id;/* trust Authentication-Results of this id (NULL: none) */
	bool trusted;		/* import --trusted: take it as verified */
	size_t max_report;	/* decompressed size limit (max_report_size) */
	int64_t now;		/* Unix seconds (0: time(NULL)) */
};

/* Create the directories if needed. Returns 0, or -1 with 'err' set. */
int received_open(const char *dir, struct received_store **out, char *err, size_t errsz);
void received_close(struct received_store *s);

/*
 * Extract, parse and store one input. 'id' (>= RECEIVED_ID_LEN + 2 bytes)
 * gets the record's id ("" on RECEIVED_ERROR); 'reason' the rejection or
 * error reason, or for RECEIVED_STORED/DUPLICATE a short description
 * ("verified"/"unverified").
 */
enum received_status received_ingest(struct received_store *s, const struct received_input *in,
				     char *id, size_t idsz, char *reason, size_t rsz);

/*
 * The DKIM verdict from a message's Authentication-Results values: true if
 * one whose authserv-id equals 'authserv_id' (case-insensitive; NULL or ""
 * never matches) has dkim=pass with header.d (or the domain of header.i)
 * equal to, a parent of, or a subdomain of 'submitter' (the report's
 * submitter domain: contact-info's, else TLS-Report-Submitter), or of the
 * domain of the From address 'from' when there is no submitter. A pass for
 * any other domain never verifies a report (a forger signs with their own
 * domain and claims someone else's contact-info). 'dkim' gets "pass",
 * "unaligned" (a signature passed, but for another domain: 'dom' names
 * it), "fail" (our server saw signatures, none passed) or "none"; 'dom'
 * the passing d= ("" if none).
 */
bool received_dkim_verdict(char *const *ar, size_t nar, const char *authserv_id,
			   const char *submitter, const char *from,
			   const char **dkim, char *dom, size_t domsz);

/* Load the record with 'id' from any class. 0 and '*rec' (caller puts), or
 * -1 if there is none. */
int received_load(struct received_store *s, const char *id, struct json_object **rec);

/*
 * Call 'cb' for each record in the index whose END >= 'since' (rejections
 * always), each id once, in index order; stops when cb returns non-zero
 * and returns that value. Records whose file is gone are skipped.
 */
int received_foreach(struct received_store *s, int64_t since,
		     int (*cb)(const char *cls, const char *id, struct json_object *rec, void *arg),
		     void *arg);

/* The directory of the store. */
const char *received_dir(const struct received_store *s);

#endif
