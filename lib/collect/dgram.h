/*
 * dgram - the bounded parser of libtlsrpt datagrams (Postfix 3.10+).
 *
 * Input is one datagram: untrusted bytes, any length up to the kernel's
 * maximum. The parser is a real JSON parser (any whitespace, any member
 * order, unknown members skipped) restricted to the libtlsrpt shape:
 *
 *   {"dpv": "1"?, "d": str, "pr": str, "policies": [ policy... ]}
 *   policy = {"policy-type": int, "policy-domain": str?,
 *             "policy-string": [str]?, "mx-host": [str]?,
 *             "failure-details": [ {"c": int, "s" "n" "h" "r" "a" "f": str?} ]?,
 *             "t": int, "f": int}
 *
 * Strings are unescaped into the parser's own memory; invalid UTF-8 (which
 * libtlsrpt passes through from remote EHLO text) is replaced by U+FFFD and
 * flagged, never rejected. Nesting depth, string length and element counts
 * are bounded by the datagram size itself; no recursion on untrusted depth.
 *
 * Not thread safe: one parser per thread; reuses its memory between calls.
 */
#ifndef TLSRPT_DGRAM_H
#define TLSRPT_DGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

enum dgram_status {
	DGRAM_OK = 0,
	DGRAM_MALFORMED,	/* not (complete) JSON */
	DGRAM_WRONG_SHAPE,	/* JSON, not the libtlsrpt format */
	DGRAM_NOMEM,
};

/* Things repaired or noticed in an accepted datagram (bit flags). */
enum dgram_flag {
	DGRAM_F_INVALID_UTF8 = 1 << 0,	/* some string had invalid UTF-8 */
	DGRAM_F_UNKNOWN_DPV = 1 << 1,	/* dpv present and not "1" */
	DGRAM_F_COUNT_MISMATCH = 1 << 2,/* a policy's t != number of details */
	DGRAM_F_UNKNOWN_POLICY = 1 << 3,/* a policy with unknown type was dropped */
	DGRAM_F_UNKNOWN_RESULT = 1 << 4,/* a detail has an unknown result code */
};

struct dgram {
	struct result_str d;		/* TLSRPT policy domain, as sent */
	struct result_str pr;		/* raw TLSRPT record */
	const struct result_policy *policies;	/* with a known policy type */
	size_t npolicies;
	unsigned flags;			/* dgram_flag */
};

struct dgram_parser;

struct dgram_parser *dgram_parser_new(void);
void dgram_parser_free(struct dgram_parser *p);

/*
 * Parse 'len' bytes at 'data'. On DGRAM_OK, 'out' describes the datagram;
 * it points into the parser and stays valid until the next call. On error,
 * 'why' (if not NULL) is set to a static description.
 */
enum dgram_status dgram_parse(struct dgram_parser *p, const char *data,
			      size_t len, struct dgram *out, const char **why);

#endif
