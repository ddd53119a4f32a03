/*
 * conf - the one configuration format of all tlsrptd programs.
 *
 * A file of "key = value" lines; '#' starts a comment line; blank lines are
 * ignored. Every key is declared once in the table in conf.c with its type,
 * default and bounds, so one file can configure the collector, the reporter,
 * the milter and the policy service together. Unknown keys, duplicate keys,
 * values of the wrong type and values out of bounds are errors with the file
 * name and line number; loading goes on after an error, so that every
 * mistake of a file is reported at once (conf_message).
 *
 * Values are taken as written, as in Postfix's main.cf: there is no quoting,
 * and '#' starts a comment only at the start of a line. A value in quotes,
 * or with a '#' after white space, is an error for every type but free
 * text; in free text it is kept and a warning says so.
 *
 * Types: text, path (absolute), path or empty, one of a list (enumerated,
 * exact spelling), int (decimal, bounded), bool (yes/no), size (bytes,
 * suffix k/K m/M g/G for 1024^n), duration (seconds, suffix s m h d), mode
 * (octal file mode).
 *
 * Accessors take the key name; asking for an undeclared key or with the
 * wrong accessor is a programming error and aborts.
 *
 * Not thread safe while loading; read-only use afterwards is.
 */
#ifndef TLSRPT_CONF_H
#define TLSRPT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;

/* A configuration holding every key's default. NULL on ENOMEM. */
struct conf *conf_new(void);
void conf_free(struct conf *c);

/*
 * Read 'path' over the defaults. Returns 0, or -1 with the first error, of
 * the form "PATH:LINE: what is wrong", in err (all of them, and the
 * warnings, are kept: conf_message). Size of the file is bounded (1 MiB).
 */
int conf_load(struct conf *c, const char *path, char *err, size_t errsz);
/* Parse configuration text (for tests and the embedded demo config);
 * 'name' is used in error messages. */
int conf_parse(struct conf *c, const char *name, const char *text, size_t len,
	       char *err, size_t errsz);
/* Set one key from "key=value" (command-line overrides). Messages start
 * with "-o KEY: " (or "-o ASSIGNMENT: " when there is no such key) and are
 * kept like those of a file. */
int conf_set(struct conf *c, const char *assignment, char *err, size_t errsz);

/* The messages of loading, in order: errors ("PATH:LINE: key: what") and
 * warnings (a value that looks quoted or commented). Owned by 'c'. */
size_t conf_nmessages(const struct conf *c);
const char *conf_message(const struct conf *c, size_t i, bool *is_error);

/*
 * Where 'key' got its value, to begin a message about it: "PATH:LINE: key",
 * "-o key" or "key (default)", written into buf (returned).
 */
const char *conf_origin(const struct conf *c, const char *key, char *buf, size_t bufsz);
/* Was 'key' set by a file or -o (not its default)? */
bool conf_is_set(const struct conf *c, const char *key);

const char *conf_str(const struct conf *c, const char *key);
int64_t conf_int(const struct conf *c, const char *key);	/* int, size, duration, mode */
bool conf_bool(const struct conf *c, const char *key);

/* Write every key with its current value, "key = value" lines, to 'fp'
 * (for "-n -v" style display), each after a "# help" comment line; sizes
 * and durations with their largest exact suffix (64M, 10s, 1d); each
 * program's keys after a "# --- section ---" line. */
void conf_print(const struct conf *c, void *fp);

/* The table, for generated documentation (tlsrptd.conf(5)). */
struct conf_info {
	const char *name;	/* key, or the section's title */
	bool section;		/* a heading, not a key */
	const char *type;	/* "text", "path", "one of", "duration", ... */
	const char *help;
	char def[256];		/* the default in file syntax ("" if empty) */
	char bounds[256];	/* "1 to 65535", or the choices "a, b, c", or "" */
};
size_t conf_nkeys(void);
/* Entry i (0 <= i < conf_nkeys()) in table order; -1 past the end. */
int conf_describe(size_t i, struct conf_info *out);

#endif
