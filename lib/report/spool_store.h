/*
 * spool_store - where spool.c keeps its records: the functions of
 * spool_fs.h as a table, so that another backend can take the files'
 * place. Two exist: spool_fs_ops (files under spool_directory, one writer
 * holding a lock) and spool_db_ops (lib/fleet/spool_db.h: the fleet
 * database, several reporter nodes at once, each report leased to one).
 * Each function has the contract of its spool_fs_* namesake, with the
 * backend's handle 'h' in place of the struct spool_fs.
 *
 * claim: NULL for a backend with a single writer. Otherwise spool.c calls
 * it before an operator's change to one report (spool retry): 0, or -1
 * with errno EBUSY (another node is delivering it) or ENOENT.
 * ids_due: NULL for a backend with a single writer (delivery looks at
 * every report, ids). Otherwise the reports this writer may deliver at
 * 'now', which the backend reserves for it (leases); delivery looks at
 * those only.
 */
#ifndef TLSRPT_SPOOL_STORE_H
#define TLSRPT_SPOOL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool_fs.h"

struct json_object;

struct spool_store_ops {
	const char *name;
	void (*close)(void *h);
	bool (*has)(void *h, const char *id);
	int (*stage)(void *h, const char *id, const unsigned char *gz, size_t gzlen,
		     struct json_object *meta, struct json_object *const *dests, size_t ndests,
		     bool *existed, char *err, size_t errsz);
	int (*commit)(void *h, char *err, size_t errsz);
	int (*ids)(void *h, char ***ids, size_t *n);
	void (*ids_free)(char **ids, size_t n);
	int (*claim)(void *h, const char *id);
	int (*ids_due)(void *h, int64_t now, char ***ids, size_t *n);
	struct json_object *(*meta)(void *h, const char *id);
	struct json_object *(*dest)(void *h, const char *id, size_t i);
	int (*gz)(void *h, const char *id, unsigned char **gz, size_t *len);
	int (*put_dest)(void *h, const char *id, size_t i, struct json_object *rec);
	int (*put_dests)(void *h, const struct spool_fs_ref *refs, size_t n);
	bool (*final)(void *h, const char *id);
	void (*set_final)(void *h, const char *id, bool final);
	int (*remove)(void *h, const char *id);
	bool (*day_exists)(void *h, int64_t day);
	int (*day_put)(void *h, int64_t day, struct json_object *rec);
	int (*days)(void *h, int64_t **days, size_t *n);
	int (*day_remove)(void *h, int64_t day);
	struct json_object *(*suppression)(void *h, const char *uri);
	int (*suppression_put)(void *h, const char *uri, struct json_object *rec);
	int (*suppression_remove)(void *h, const char *uri);
	int (*suppressions_filter)(void *h,
				   enum spool_fs_verdict (*check)(void *arg, struct json_object *rec),
				   void *arg);
};

/* The files (spool_fs.c); its handle is a struct spool_fs. */
extern const struct spool_store_ops spool_fs_ops;

#endif
