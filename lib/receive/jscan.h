/*
 * jscan - a bounded pull tokenizer for JSON text (RFC 8259), for inputs
 * that must not be turned into a tree first (received reports: a 20 MB
 * report of "[{},{},...]" would cost json-c several GB).
 *
 * The caller pulls one token at a time and keeps only what it wants; the
 * scanner itself allocates nothing: it works on the caller's buffer and a
 * caller-supplied string buffer. Everything is bounded before it is read:
 *   depth     containers nested deeper than 'max_depth' (<= JSCAN_MAX_DEPTH)
 *             are an error, found when the opening bracket is read;
 *   values    more than 'max_values' values (scalars and containers, keys
 *             not counted) are an error, found when the value starts;
 *   strings   decoded into 'strbuf' up to its size; the rest is validated,
 *             counted in 'str_full' and dropped ('str_cut' set);
 *   numbers   an integer outside int64 is flagged, never wrapped.
 * Time is linear in the input. The syntax is strict JSON with two
 * tolerances real senders need: raw control characters inside strings are
 * kept, and "\u" escapes of lone surrogates become U+FFFD. Input text must
 * be valid UTF-8 (the caller checks once); '\0' is not allowed outside
 * strings.
 *
 * Errors: JSCAN_ERROR with a reason in 'err' (an offset included); after
 * an error every call returns JSCAN_ERROR again.
 *
 * Thread safety: a scanner is used by one thread; no global state.
 */
#ifndef TLSRPT_JSCAN_H
#define TLSRPT_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSCAN_MAX_DEPTH 64

enum jscan_tok {
	JSCAN_ERROR = -1,
	JSCAN_EOF = 0,		/* the top-level value is complete and only space follows */
	JSCAN_OBJECT,		/* '{' */
	JSCAN_OBJECT_END,	/* '}' */
	JSCAN_ARRAY,		/* '[' */
	JSCAN_ARRAY_END,	/* ']' */
	JSCAN_KEY,		/* a member name (in str/str_len); its ':' is consumed */
	JSCAN_STRING,		/* a string value (in str/str_len) */
	JSCAN_NUMBER,		/* a number (num_is_int, num_int, num_text/num_len) */
	JSCAN_TRUE,
	JSCAN_FALSE,
	JSCAN_NULL,
};

struct jscan {
	/* the token just returned */
	char *str;		/* == strbuf: decoded string or key, NUL terminated */
	size_t str_len;		/* bytes in str */
	size_t str_full;	/* decoded length of the whole string */
	bool str_cut;		/* str_full > str_len */
	bool num_is_int;	/* no fraction, no exponent */
	bool num_range;		/* num_is_int and it fits int64 (num_int) */
	int64_t num_int;
	const char *num_text;	/* the number as written */
	size_t num_len;
	/* where and how far */
	size_t tok_off;		/* input offset of the token */
	int depth;		/* containers open after the token */
	size_t nvalues;		/* values started so far */
	char err[160];
	/* private */
	const char *buf;
	size_t len, pos;
	char *strbuf;
	size_t strcap;
	int max_depth;
	size_t max_values;
	uint64_t kinds;		/* bit d set: container at depth d+1 is an object */
	int state;
};

/*
 * Start scanning 'len' bytes at 'buf'. 'strbuf' of 'strcap' (>= 8) bytes
 * receives decoded strings (strcap - 1 bytes at most, then NUL).
 */
void jscan_init(struct jscan *s, const char *buf, size_t len, int max_depth,
		size_t max_values, char *strbuf, size_t strcap);

/* The next token. */
enum jscan_tok jscan_next(struct jscan *s);

/*
 * Skip the rest of the value whose first token 't' was just returned (for
 * JSCAN_OBJECT or JSCAN_ARRAY: up to and including the matching end; for a
 * scalar: nothing). Returns 0, or -1 on an error (in err).
 */
int jscan_skip(struct jscan *s, enum jscan_tok t);

/* "an object", "a string", ... for messages. */
const char *jscan_tok_name(enum jscan_tok t);

#endif
