/*
 * mail - the syntax checks and address helpers behind mail_build() and
 * mail_send() (deliver.h). Every value that reaches a header line of report
 * mail and may have come from DNS, a datagram or a configuration file passes
 * one of these checks first, so no header can be injected.
 *
 * All functions are pure (no global state) and thread safe. 'what' names the
 * value in the error message ("policy domain", "recipient", ...). Each check
 * returns 0, or -1 with a one-line printable message in 'err' that quotes
 * the offending value through log_printable().
 */
#ifndef TLSRPT_MAIL_H
#define TLSRPT_MAIL_H

#include <stddef.h>

#include "conf.h"

#define MAIL_DOMAIN_MAX 253	/* RFC 1035 presentation form, no trailing dot */
#define MAIL_ADDR_MAX 254	/* RFC 5321 path limit minus the brackets */
#define MAIL_REPORT_ID_MAX 200	/* our bound; real ids are < 100 bytes */
#define MAIL_FILENAME_MAX 255

/* Domain name: 1-63 byte labels of letters, digits, '-' (not first/last)
 * and '_', at most 253 bytes, no trailing dot. A-labels only. */
int mail_check_domain(const char *s, const char *what, char *err, size_t errsz);

/* addr-spec with a dot-atom local part (max 64) and a domain as above.
 * Quoted local parts are refused (they never occur in rua URIs we send to). */
int mail_check_addr(const char *s, const char *what, char *err, size_t errsz);

/* Report-ID: dot-atom "@" dot-atom (RFC 8460 5.3 id-left "@" id-right). */
int mail_check_report_id(const char *s, char *err, size_t errsz);

/* Attachment filename: letters, digits, '.', '!', '-', '_' only, ending in
 * ".json.gz" (RFC 8460 5.1), at most 255 bytes. */
int mail_check_filename(const char *s, char *err, size_t errsz);

/*
 * The addr-spec of a From-style value: "addr", "<addr>" or
 * "Display Name <addr>", optionally "mailto:addr". Copies the address into
 * 'out' (size 'outsz') and checks it with mail_check_addr().
 */
int mail_addr_of(const char *value, const char *what, char *out, size_t outsz,
		 char *err, size_t errsz);

/*
 * MAIL FROM of report mail: envelope_sender, else the address of
 * from_address, else contact_info. Checked like any address.
 */
int mail_envelope_sender(const struct conf *c, char *out, size_t outsz,
			 char *err, size_t errsz);

#endif
