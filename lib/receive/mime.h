/*
 * mime - bounded extraction of the TLS report part from a whole RFC 5322
 * message (a TLS report mail as RFC 8460 section 5.3 describes it, and what
 * real senders make of it).
 *
 * The message may use LF or CRLF line endings (even mixed), and may start
 * with the "From " separator line of an mbox (skipped, noted). Headers are
 * unfolded. Multipart entities are walked to MIME_MAX_DEPTH levels; at most
 * MIME_MAX_PARTS leaf parts are looked at; a missing closing boundary ends
 * the last part at the end of the message (Mail.ru). Content-Type and
 * Content-Disposition parameters may be quoted or not, in any order.
 *
 * The report part is chosen in this order of preference (the first part of
 * the best kind wins):
 *   1. by media type: application/tlsrpt+gzip, +json, +zip, application/tlsrpt;
 *   2. by file name (filename= or name=): .json.gz .json .gz .zip;
 *   3. by content after transfer decoding: gzip magic 1f 8b, zip "PK\3\4",
 *      or JSON ('{' after optional whitespace), never for text/html parts;
 * and a message that is not multipart at all is itself a candidate (mox).
 * Transfer encodings: base64, quoted-printable, 7bit/8bit/binary.
 *
 * The part is returned transfer-decoded but still compressed; rptparse.h
 * decompresses and parses it.
 *
 * Thread safety: no shared state; one mime_report per caller.
 */
#ifndef TLSRPT_MIME_H
#define TLSRPT_MIME_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_MAX_DEPTH 8	/* nesting of multiparts */
#define MIME_MAX_PARTS 64	/* leaf parts examined */
#define MIME_MAX_AR 16		/* Authentication-Results headers kept */
#define MIME_MAX_HEADER 4096	/* bytes of one kept header value (longer: cut) */
#define MIME_MAX_HEADERS 1000	/* header fields per entity */

enum mime_status {
	MIME_OK = 0,		/* a report part was found */
	MIME_NOREPORT,		/* a well-enough formed message without one */
	MIME_LIMIT,		/* a size, part or depth limit was hit */
	MIME_NOMEM,
};

enum mime_found {
	MIME_BY_TYPE = 1,
	MIME_BY_NAME,
	MIME_BY_SNIFF,
};

struct mime_report {
	/* Top-level header values, unfolded and trimmed, NUL terminated;
	 * NULL when absent. The first instance of each is kept. */
	char *subject;
	char *from;
	char *report_domain;		/* TLS-Report-Domain */
	char *report_submitter;		/* TLS-Report-Submitter */
	char *message_id;
	char *auth_results[MIME_MAX_AR];	/* every Authentication-Results */
	size_t nauth;

	/* The report part (MIME_OK only): transfer-decoded bytes, owned. */
	unsigned char *part;
	size_t part_len;
	char *part_type;		/* lower-case media type, "" if none */
	char *part_filename;		/* filename= or name=, NULL if none */
	enum mime_found found;
	size_t nparts;			/* leaf parts seen */
	bool mbox_from;			/* an mbox "From " first line was skipped */
};

/*
 * Look for the report in 'msg' ('len' bytes, no NUL needed). 'max_part'
 * bounds the decoded size of the part (larger: MIME_LIMIT). 'out' is
 * always initialised (free it with mime_report_free whatever the status);
 * the kept headers are filled in even when no report is found. 'err' gets a
 * short reason for anything but MIME_OK.
 */
enum mime_status mime_extract(const char *msg, size_t len, size_t max_part,
			      struct mime_report *out, char *err, size_t errsz);
void mime_report_free(struct mime_report *r);

/* Decoders, exposed for tests. Output is at most 'max' bytes; return the
 * decoded length, or -1 when the output would exceed 'max' or on ENOMEM.
 * '*out' is malloc'd (NUL terminated) on success. */
long mime_decode_base64(const char *in, size_t len, size_t max, unsigned char **out);
long mime_decode_qp(const char *in, size_t len, size_t max, unsigned char **out);

/*
 * Get parameter 'name' (case-insensitive) of a structured header value
 * such as "multipart/report; boundary=\"x\"; report-type=tlsrpt" into 'out'
 * (unquoted, NUL terminated, cut to outsz - 1). Returns true if present.
 */
bool mime_param(const char *value, const char *name, char *out, size_t outsz);

#endif
