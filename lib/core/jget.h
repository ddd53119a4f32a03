/*
 * jget - typed members of json-c objects that came from files or peers.
 *
 * The spool's records, the received store's index and statistics, and the
 * database's JSON columns are read back as json-c trees that someone may
 * have edited or damaged. Every reader wants the same thing of a member:
 * the value when it has the expected type, else a default of the caller's
 * choosing, never a crash on a NULL object or a wrong type. These are
 * those few lines, once.
 */
#ifndef TLSRPT_JGET_H
#define TLSRPT_JGET_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

/* Member 'key' of 'o' if it is a string, else NULL; jget_text: else ""
 * (for output). 'o' may be NULL in all of these. */
const char *jget_str(struct json_object *o, const char *key);
const char *jget_text(struct json_object *o, const char *key);

/* Member 'key' of 'o' if it is an integer, else 0 (jget_int) or 'def'. */
int64_t jget_int(struct json_object *o, const char *key);
int64_t jget_int_or(struct json_object *o, const char *key, int64_t def);

/* Member 'key' of 'o' if it is an object, else NULL. */
struct json_object *jget_obj(struct json_object *o, const char *key);

/* Member 'key' of object 'o' (not NULL) as an object (jget_map) or an
 * array (jget_list); a new empty one takes its place when it is missing or
 * of another type. For building tallies. */
struct json_object *jget_map(struct json_object *o, const char *key);
struct json_object *jget_list(struct json_object *o, const char *key);

/* The JSON object in 'text' (not NUL-terminated, 'len' bytes): NULL when
 * 'text' is NULL, longer than 'max', nested deeper than 'depth', not valid
 * JSON or not an object. For records read back from a store or database
 * that someone may have altered; the caller puts the result. */
struct json_object *jget_parse_object(const char *text, size_t len, size_t max, int depth);

#endif
