/*
 * store - the collector's counters: one memory-mapped file per UTC day.
 *
 * File <dir>/days/YYYY-MM-DD.tlsrpt holds, for one UTC day of receipt,
 * every distinct (TLSRPT domain, record, policy) with its successful and
 * failed session counts, and every distinct failure-detail tuple of each
 * policy with its failed-session-count: exactly what an RFC 8460 report
 * needs. It also holds the day's ingest counters (datagrams, bad input).
 *
 * Writer (the collector, one process, one thread): the file is created at
 * its maximum size (sparse) and mapped shared. Disk blocks are reserved
 * (posix_fallocate, STORE_RESERVE_CHUNK at a time) before a record is
 * written into a page, so a full file system makes store_add() return
 * STORE_NOSPACE (and count STC_OVERFLOW) instead of the SIGBUS that a write
 * to an unallocatable page of a sparse mapping raises; when space is freed
 * the next new record gets its blocks. Counting is a memory write;
 * the kernel owns the dirty pages, so a result counted survives SIGKILL of
 * the collector. store_sync() (msync) bounds what a power loss can take.
 * New records are appended completely and then published by advancing the
 * header's 'used' offset, so a reader or a restarted writer never sees half
 * a record. A second writer on the same file is refused (flock).
 *
 * Readers (reporter, tlsrptctl, files copied from other hosts): map the file
 * read-only and validate it like untrusted input (magic, version, every
 * offset and length, every reference, every count) before anything is used.
 *
 * Format (little-endian, 8-byte aligned records after a 4096-byte header):
 *   header: magic "TLSRPTDY", version, sizes, day, used, counters, host
 *   record: u32 kind, u32 size, then by kind
 *     STR    u32 hash, u32 len, bytes          interned string
 *     LIST   u32 hash, u32 n, u32 ref[n]       interned list of STR refs
 *     POLICY u32 d, pr, type, pdomain, strings(LIST), mx(LIST); u64 ok, fail
 *     DETAIL u32 policy, i32 code, u32 s, n, h, r, a, f; u64 count
 *   References are file offsets of earlier records; 0 means absent.
 */
#ifndef TLSRPT_STORE_H
#define TLSRPT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "result.h"

#define STORE_MAGIC "TLSRPTDY"
#define STORE_VERSION 1
#define STORE_HEADER_SIZE 4096
#define STORE_MAX_FILE (3ULL << 30)	/* offsets are 32 bits */
/* Every count (sessions, failed-session-count, header counters) is at most
 * this: report counts are JSON integers (I-JSON, RFC 7493). A file with a
 * larger one is rejected as a whole, naming the record. */
#define STORE_MAX_COUNT ((1ULL << 53) - 1)
#define STORE_RESERVE_CHUNK (256ULL << 10)	/* disk blocks reserved at a time */

/* Per-day ingest counters, kept in the day file's header. */
enum store_counter {
	STC_DATAGRAMS,		/* datagrams received */
	STC_BYTES,		/* their bytes */
	STC_SESSIONS,		/* policy results counted */
	STC_FAILURES,		/* of which failed */
	STC_MALFORMED,		/* not JSON, or truncated JSON */
	STC_WRONG_SHAPE,	/* JSON, but not the libtlsrpt format */
	STC_TRUNCATED,		/* larger than the receive buffer (MSG_TRUNC) */
	STC_INVALID_UTF8,	/* strings with invalid UTF-8, repaired */
	STC_STRINGS_CUT,	/* strings cut at max_string_length */
	STC_UNKNOWN_RESULT,	/* failure details with an unknown result code */
	STC_UNKNOWN_POLICY,	/* policies with an unknown policy-type, dropped */
	STC_COUNT_MISMATCH,	/* t differs from the number of details */
	STC_UNKNOWN_DPV,	/* dpv other than "1" (still processed) */
	STC_OVERFLOW,		/* results not stored: the day file was full */
	STC_LOG_LINES,		/* log follower: lines read */
	STC_LOG_SESSIONS,	/* log follower: sessions counted */
	STC_LOG_UNRECOGNISED,	/* log follower: TLS lines not understood */
	STC_OWN_REPORTS,	/* results of our own report mail, skipped */
	STC_NO_TLSRPT,		/* log follower: sessions to domains without TLSRPT */
	STC_LOG_CUT,		/* log follower: lines longer than its limit, cut */
	STC_MAX = 32
};

/* Name of a counter ("datagrams"), NULL past the last one. */
const char *store_counter_name(enum store_counter c);

/* "<dir>/days/YYYY-MM-DD.tlsrpt" for day 'day' (days since 1970-01-01). */
int store_day_path(char *out, size_t outsz, const char *dir, int64_t day);
/* Parse "YYYY-MM-DD" into days since the epoch; -1 if invalid. */
int64_t store_parse_day(const char *s);
/* Format days since the epoch as "YYYY-MM-DD" (out >= 11 bytes). */
void store_format_day(char *out, size_t outsz, int64_t day);

/* ---- writer ---- */

struct store;

/* STORE_FULL: the day file is at its maximum size (store_max_size);
 * STORE_NOSPACE: the file system has no blocks for it (disk full, quota). */
enum store_status { STORE_OK = 0, STORE_FULL = 1, STORE_NOSPACE = 2, STORE_ERROR = -1 };

/*
 * Open (or create) the day file of 'day' under 'dir' (dir/days is created).
 * An existing file is validated; one that fails validation is renamed to
 * *.corrupt.<time> and a new one started (logged). 'max_size' bounds the
 * file; 'max_string' bounds each stored string. NULL with 'err' (and errno:
 * ENOSPC or EDQUOT when a new file's header cannot get disk blocks; the
 * file is then removed, to be started again) on failure.
 */
struct store *store_open(const char *dir, int64_t day, uint64_t max_size,
			 size_t max_string, char *err, size_t errsz);
void store_close(struct store *s);	/* syncs */
int64_t store_day(const struct store *s);

/*
 * Count one session under one policy for TLSRPT domain 'd' with record 'pr'.
 * Domains are stored lower-case without a trailing dot; an absent policy
 * domain is taken to be 'd'. The policy and its failure details are first
 * normalized to what a report prints (result_policy_canon,
 * result_detail_canon), so rows that a report would show alike are one row.
 * Strings longer than max_string are cut (and STC_STRINGS_CUT counted).
 * Returns STORE_FULL or STORE_NOSPACE (and counts STC_OVERFLOW) when a new
 * record does not fit; counting what exists never needs new space.
 */
enum store_status store_add(struct store *s, struct result_str d,
			    struct result_str pr, const struct result_policy *p);
void store_bump(struct store *s, enum store_counter c, uint64_t n);
uint64_t store_used(const struct store *s);
/* msync the used part; 0 or -1. */
int store_sync(struct store *s);

/* ---- reader ---- */

struct store_detail_view {
	int code;
	struct result_str sending_ip, mx_hostname, mx_helo, receiving_ip,
		additional, reason;
	uint64_t count;
};

struct store_policy_view {
	struct result_str d, pr;
	int type;
	struct result_str domain;
	struct result_str *strings;
	size_t nstrings;
	struct result_str *mx;
	size_t nmx;
	uint64_t successes, failures;
	struct store_detail_view *details;
	size_t ndetails;
};

struct store_view_info {
	int64_t day;
	uint64_t file_size, used;
	uint64_t counters[STC_MAX];
	char host[65];
};

struct store_view;

/*
 * Map 'path' read-only and validate all of it. Counts are a snapshot taken
 * at open. Strings point into the mapping and live until store_view_close.
 */
struct store_view *store_view_open(const char *path, char *err, size_t errsz);
void store_view_close(struct store_view *v);
const struct store_view_info *store_view_info(const struct store_view *v);
size_t store_view_npolicies(const struct store_view *v);
const struct store_policy_view *store_view_policy(const struct store_view *v, size_t i);

#endif
