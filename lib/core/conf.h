/*
 * conf - the one configuration format of all tlsrptd programs.
 *
 * A file of "key = value" lines; '#' starts a comment line; blank lines are
 * ignored. Every key is declared once in the table in conf.c with its type,
 * default and bounds, so one file can configure the collector, the reporter,
 * the milter and the policy service together. Unknown keys, duplicate keys,
 * values of the wrong type and values out of bounds are errors with the file
 * name and line number.
 *
 * Types: string, path (absolute), int (decimal, bounded), bool (yes/no),
 * size (bytes, suffix k/K m/M g/G for 1024^n), duration (seconds, suffix
 * s m h d), mode (octal file mode).
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
 * Read 'path' over the defaults. Returns 0, or -1 with a message of the form
 * "PATH:LINE: what is wrong" in err. Size of the file is bounded (1 MiB).
 */
int conf_load(struct conf *c, const char *path, char *err, size_t errsz);
/* Parse configuration text (for tests and the embedded demo config);
 * 'name' is used in error messages. */
int conf_parse(struct conf *c, const char *name, const char *text, size_t len,
	       char *err, size_t errsz);
/* Set one key from "key=value" (command-line overrides). */
int conf_set(struct conf *c, const char *assignment, char *err, size_t errsz);

const char *conf_str(const struct conf *c, const char *key);
int64_t conf_int(const struct conf *c, const char *key);	/* int, size, duration, mode */
bool conf_bool(const struct conf *c, const char *key);

/* Write every key with its current value, "key = value" lines, to 'fp'
 * (for "-n -v" style display), each after a "# help" comment line; sizes
 * and durations with their largest exact suffix (64M, 10s, 1d). */
void conf_print(const struct conf *c, void *fp);

#endif
