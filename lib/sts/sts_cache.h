/*
 * sts_cache - the MTA-STS policy cache of tlsrpt-policyd: per domain, the
 * last valid policy (its body, id, fetch time and expiry), what discovery
 * last found, and the last fetch error, kept in memory and persisted to
 * sts_cache_file.
 *
 * Rules it implements (RFC 8461 3.3, 5.1, 10.2), as pure functions of the
 * entry and an injected clock:
 *   - a policy is valid until fetched + max_age (sts_entry_valid);
 *   - a valid cached policy stays in use when discovery or a refresh fails,
 *     and a missing TXT record does not remove it;
 *   - a policy is fetched again when the TXT id differs from the cached
 *     one, when it is older than the refresh interval, or when there is
 *     none; never twice within STS_RETRY_DELAY after a failure for the same
 *     id (sts_should_fetch);
 *   - discovery is repeated in the background after STS_CHECK_INTERVAL
 *     (sts_needs_check).
 *
 * Persistence: one JSON object per line, whole file rewritten atomically
 * (temporary file, fsync, rename) by sts_cache_save. Only the daemon writes
 * it; readers (tlsrptctl sts show) load it like untrusted input: bounded
 * size, every field type checked, bodies re-parsed, bad lines skipped.
 * Entries without a policy and without an error are not persisted.
 *
 * Thread safety: all sts_cache_* functions lock the cache; entries handed
 * out are copies owned by the caller (free with sts_entry_free).
 */
#ifndef TLSRPT_STS_CACHE_H
#define TLSRPT_STS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sts_policy.h"

#define STS_RETRY_DELAY 300		/* s between failed fetches per id (RFC 8461 3.3) */
#define STS_CHECK_INTERVAL 300		/* s between background TXT checks of a domain */
#define STS_CACHE_MAX_ENTRIES 100000
#define STS_CACHE_FILE_MAX (256u * 1024 * 1024)
#define STS_DOMAIN_MAX 253

struct sts_entry {
	char domain[STS_DOMAIN_MAX + 1];
	/* the cached policy */
	bool have_policy;
	char id[STS_ID_MAX + 1];	/* TXT id it was fetched under */
	char *text;			/* original body, NUL terminated */
	size_t len;
	int64_t fetched;		/* unix time of the fetch */
	int64_t expires;		/* fetched + max_age */
	bool zero_age;			/* the last policy fetched had max_age 0: it applied
					 * to the lookup that fetched it and was not kept;
					 * every lookup fetches again */
	/* discovery */
	int64_t checked;		/* last TXT lookup done (0: never) */
	bool txt_present;		/* it found exactly one valid record */
	char txt_id[STS_ID_MAX + 1];	/* the id it found */
	/* fetch attempts */
	int64_t last_attempt;		/* last fetch attempt (0: never) */
	int64_t last_failure;		/* last failed attempt */
	int last_error_code;		/* result code of the last attempt: 0 ok, 301-303 */
	char last_error[256];		/* printable reason of the last failure */
	char failed_id[STS_ID_MAX + 1];	/* id whose fetch failed last */
};

struct sts_cache;

struct sts_cache *sts_cache_new(void);
void sts_cache_free(struct sts_cache *c);

/* Read 'path' (a missing file is an empty cache). Returns the number of
 * entries loaded, or -1 with 'err' (unreadable, too big). Bad lines are
 * skipped and counted in '*skipped' (may be NULL). */
long sts_cache_load(struct sts_cache *c, const char *path, size_t max_policy,
		    size_t *skipped, char *err, size_t errsz);
/* Write the cache to 'path' atomically; clears the dirty flag. 0 or -1. */
int sts_cache_save(struct sts_cache *c, const char *path, char *err, size_t errsz);
bool sts_cache_dirty(struct sts_cache *c);
size_t sts_cache_count(struct sts_cache *c);

/* Copy the entry of 'domain' (lower case) to 'out': 1, or 0 if absent
 * ('out' then holds an empty entry for that domain), -1 on ENOMEM. */
int sts_cache_get(struct sts_cache *c, const char *domain, struct sts_entry *out);
/* Insert or replace the entry (deep copy). 0, or -1 (ENOMEM, full). */
int sts_cache_put(struct sts_cache *c, const struct sts_entry *e);
void sts_entry_free(struct sts_entry *e);

/*
 * Up to 'max' domains whose entry needs a background check at 'now'
 * (sts_needs_check), copied to 'out'. Returns how many.
 */
size_t sts_cache_due(struct sts_cache *c, int64_t now, int64_t refresh,
		     char (*out)[STS_DOMAIN_MAX + 1], size_t max);

/*
 * Forget entries that hold nothing worth keeping at 'now': no policy (or
 * one expired a day ago) and last checked more than STS_CHECK_INTERVAL ago
 * (negative entries), or a failure older than a day. Returns how many.
 */
size_t sts_cache_prune(struct sts_cache *c, int64_t now);

/* Entry updates, applied to a copy before sts_cache_put. */
void sts_entry_discovered(struct sts_entry *e, int64_t now, bool present, const char *id);
/* A valid policy was fetched: takes ownership of 'text'. With max_age 0 the
 * text is freed, not kept, and zero_age is set (the caller applies its own
 * copy to the lookup at hand). */
void sts_entry_fetched(struct sts_entry *e, int64_t now, const char *id,
		       char *text, size_t len, uint32_t max_age);
void sts_entry_failed(struct sts_entry *e, int64_t now, const char *id, int code,
		      const char *why);

/* Policy present and not expired at 'now'. */
bool sts_entry_valid(const struct sts_entry *e, int64_t now);
/* Should a fetch for TXT id 'id' happen now? */
bool sts_should_fetch(const struct sts_entry *e, const char *id, int64_t now,
		      int64_t refresh, bool force);
/* Should discovery run again in the background? */
bool sts_needs_check(const struct sts_entry *e, int64_t now, int64_t refresh);
/* Did the most recent fetch attempt for the current TXT id fail, with no
 * valid policy to fall back on? Returns the result code, or 0. */
int sts_entry_failure(const struct sts_entry *e, int64_t now);

#endif
