/*
 * store - the collector's counters: one memory-mapped file per UTC day.
 * See store.h for the format and the crash-safety argument.
 *
 * SECURITY: store_view_open() and the writer's reopen path both run every
 * byte of the file through store_walk(), which checks each offset, length
 * and reference before anything is dereferenced: a day file copied from
 * another host is untrusted input.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum rec_kind { REC_STR = 1, REC_LIST = 2, REC_POLICY = 3, REC_DETAIL = 4 };

struct store_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t file_size;
	int64_t day;
	uint64_t used;		/* end of the last complete record */
	uint64_t created;	/* Unix time the file was made */
	uint64_t counters[STC_MAX];
	char host[64];
};
_Static_assert(sizeof(struct store_header) <= STORE_HEADER_SIZE, "header too large");

struct rec {			/* common record header */
	uint32_t kind, size;
};
struct rec_str {
	struct rec h;
	uint32_t hash, len;
	char bytes[];
};
struct rec_list {
	struct rec h;
	uint32_t hash, n;
	uint32_t ref[];
};
struct rec_policy {
	struct rec h;
	uint32_t d, pr, type, domain, strings, mx;
	uint64_t ok, fail;
};
struct rec_detail {
	struct rec h;
	uint32_t policy;
	int32_t code;
	uint32_t f[6];		/* s n h r a f */
	uint64_t count;
};
_Static_assert(sizeof(struct rec_policy) == 48, "policy record layout");
_Static_assert(sizeof(struct rec_detail) == 48, "detail record layout");

static const char *const counter_names[] = {
	[STC_DATAGRAMS] = "datagrams",
	[STC_BYTES] = "bytes",
	[STC_SESSIONS] = "sessions",
	[STC_FAILURES] = "failed_sessions",
	[STC_MALFORMED] = "malformed_datagrams",
	[STC_WRONG_SHAPE] = "wrong_shape_datagrams",
	[STC_TRUNCATED] = "truncated_datagrams",
	[STC_INVALID_UTF8] = "invalid_utf8_repaired",
	[STC_STRINGS_CUT] = "strings_cut",
	[STC_UNKNOWN_RESULT] = "unknown_result_codes",
	[STC_UNKNOWN_POLICY] = "unknown_policy_types",
	[STC_COUNT_MISMATCH] = "count_mismatches",
	[STC_UNKNOWN_DPV] = "unknown_dpv",
	[STC_OVERFLOW] = "overflow_results",
	[STC_LOG_LINES] = "log_lines",
	[STC_LOG_SESSIONS] = "log_sessions",
	[STC_LOG_UNRECOGNISED] = "log_unrecognised",
	[STC_OWN_REPORTS] = "own_report_results_skipped",
	[STC_NO_TLSRPT] = "log_sessions_without_tlsrpt",
	[STC_LOG_CUT] = "log_lines_cut",
};

const char *store_counter_name(enum store_counter c)
{
	if ((unsigned)c >= sizeof(counter_names) / sizeof(counter_names[0]))
		return NULL;
	return counter_names[c];
}

/* ---- days ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void store_format_day(char *out, size_t outsz, int64_t day)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, outsz, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

int64_t store_parse_day(const char *s)
{
	unsigned y, m, d;
	char tail;
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
	    sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3)
		return -1;
	if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return -1;
	if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return -1;
	return days_from_civil(y, m, d);
}

int store_day_path(char *out, size_t outsz, const char *dir, int64_t day)
{
	char ds[16];
	int n;

	store_format_day(ds, sizeof(ds), day);
	n = snprintf(out, outsz, "%s/days/%s.tlsrpt", dir, ds);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* ---- hashing ---- */

static uint32_t hash_bytes(const void *data, size_t len, uint32_t seed)
{
	const unsigned char *p = data;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (seed * 0xff51afd7ed558ccdULL) ^ len;

	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		h = (h ^ v) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = 0;

		memcpy(&v, p, len);
		h = (h ^ v) * 0x94d049bb133111ebULL;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return (uint32_t)h;
}

/* ---- validation: shared by the writer's reopen and the reader ---- */

struct walk_rec {
	uint32_t off;
	uint32_t kind;
};

struct walk {
	const unsigned char *base;
	uint64_t used;
	struct walk_rec *recs;	/* every record, ascending offsets */
	size_t nrecs, cap;
	char why[160];		/* a reason that names a record */
};

/* Is 'ref' the offset of an earlier record of kind 'kind'? 0 allowed if 'opt'. */
static bool ref_ok(const struct walk *w, uint32_t ref, uint32_t kind, bool opt)
{
	size_t lo = 0, hi = w->nrecs;

	if (ref == 0)
		return opt;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->recs[mid].off == ref)
			return w->recs[mid].kind == kind;
		if (w->recs[mid].off < ref)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * Validate the header and every record of a mapped day file of 'size' bytes.
 * On success w->recs lists all records. Returns NULL or the reason.
 */
static const char *store_walk(struct walk *w, const unsigned char *base, uint64_t size)
{
	const struct store_header *hd = (const void *)base;
	uint64_t off;

	memset(w, 0, sizeof(*w));
	w->base = base;
	if (size < STORE_HEADER_SIZE)
		return "file shorter than the header";
	if (memcmp(hd->magic, STORE_MAGIC, 8) != 0)
		return "not a tlsrptd day file (bad magic)";
	if (hd->version != STORE_VERSION)
		return "unsupported day file version";
	if (hd->header_size != STORE_HEADER_SIZE)
		return "bad header size";
	w->used = __atomic_load_n(&hd->used, __ATOMIC_ACQUIRE);
	if (hd->file_size > size || hd->file_size > STORE_MAX_FILE)
		return "file size does not match the header";
	if (w->used < STORE_HEADER_SIZE || w->used > hd->file_size || w->used % 8)
		return "bad used size";
	if (hd->day < 0 || hd->day > 3000000)
		return "bad day";
	for (int i = 0; i < STC_MAX; i++) {
		uint64_t n = __atomic_load_n(&hd->counters[i], __ATOMIC_RELAXED);

		if (n > STORE_MAX_COUNT) {
			snprintf(w->why, sizeof(w->why), "header counter %s is %llu, above 2^53-1",
				 store_counter_name(i) ? store_counter_name(i) : "(unused)",
				 (unsigned long long)n);
			return w->why;
		}
	}

	for (off = STORE_HEADER_SIZE; off < w->used;) {
		const struct rec *r = (const void *)(base + off);
		uint32_t min;

		if (w->used - off < sizeof(*r))
			return "truncated record header";
		switch (r->kind) {
		case REC_STR: min = sizeof(struct rec_str); break;
		case REC_LIST: min = sizeof(struct rec_list); break;
		case REC_POLICY: min = sizeof(struct rec_policy); break;
		case REC_DETAIL: min = sizeof(struct rec_detail); break;
		default: return "unknown record kind";
		}
		if (r->size < min || r->size % 8 || r->size > w->used - off)
			return "bad record size";
		if (r->kind == REC_STR) {
			const struct rec_str *s = (const void *)r;

			if (s->len > r->size - min)
				return "string longer than its record";
		} else if (r->kind == REC_LIST) {
			const struct rec_list *l = (const void *)r;

			if (l->n > (r->size - min) / 4)
				return "list longer than its record";
			for (uint32_t i = 0; i < l->n; i++)
				if (!ref_ok(w, l->ref[i], REC_STR, false))
					return "list refers to a non-string";
		} else if (r->kind == REC_POLICY) {
			const struct rec_policy *p = (const void *)r;

			uint64_t ok = __atomic_load_n(&p->ok, __ATOMIC_RELAXED);
			uint64_t fail = __atomic_load_n(&p->fail, __ATOMIC_RELAXED);

			if (!ref_ok(w, p->d, REC_STR, false) || !ref_ok(w, p->pr, REC_STR, false) ||
			    !ref_ok(w, p->domain, REC_STR, false) ||
			    !ref_ok(w, p->strings, REC_LIST, true) || !ref_ok(w, p->mx, REC_LIST, true))
				return "policy with a bad reference";
			if (ok > STORE_MAX_COUNT || fail > STORE_MAX_COUNT) {
				snprintf(w->why, sizeof(w->why), "policy record at offset %llu: "
					 "%s session count %llu is above 2^53-1",
					 (unsigned long long)off, ok > STORE_MAX_COUNT ? "successful" : "failed",
					 (unsigned long long)(ok > STORE_MAX_COUNT ? ok : fail));
				return w->why;
			}
		} else {
			const struct rec_detail *dt = (const void *)r;

			if (!ref_ok(w, dt->policy, REC_POLICY, false))
				return "failure detail with a bad policy reference";
			uint64_t n = __atomic_load_n(&dt->count, __ATOMIC_RELAXED);

			for (int i = 0; i < 6; i++)
				if (!ref_ok(w, dt->f[i], REC_STR, true))
					return "failure detail with a bad string reference";
			if (n > STORE_MAX_COUNT) {
				snprintf(w->why, sizeof(w->why), "failure detail record at offset %llu: "
					 "failed-session-count %llu is above 2^53-1",
					 (unsigned long long)off, (unsigned long long)n);
				return w->why;
			}
		}
		if (w->nrecs == w->cap) {
			size_t cap = w->cap ? w->cap * 2 : 1024;
			struct walk_rec *n = realloc(w->recs, cap * sizeof(*n));

			if (n == NULL)
				return "out of memory";
			w->recs = n;
			w->cap = cap;
		}
		w->recs[w->nrecs].off = (uint32_t)off;
		w->recs[w->nrecs++].kind = r->kind;
		off += r->size;
	}
	return NULL;
}

/* ---- writer ---- */

struct slot {
	uint32_t off;		/* 0: empty */
	uint32_t hash;
};

struct store {
	int fd;
	unsigned char *base;
	uint64_t size;
	struct store_header *hd;
	int64_t day;
	size_t max_string;
	struct slot *index;	/* open addressing over all keyed records */
	size_t index_cap, index_n;
	uint64_t reserved;	/* [0, reserved) has disk blocks (posix_fallocate) */
	enum store_status full;	/* why the last new record did not fit */
	char path[4096];
};

static inline void *at(const struct store *s, uint32_t off)
{
	return s->base + off;
}

static inline void counter_add(uint64_t *p, uint64_t n)
{
	/* single writer: a plain atomic store is enough, readers never tear */
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

void store_bump(struct store *s, enum store_counter c, uint64_t n)
{
	if ((unsigned)c < STC_MAX)
		counter_add(&s->hd->counters[c], n);
}

uint64_t store_used(const struct store *s)
{
	return s->hd->used;
}

int64_t store_day(const struct store *s)
{
	return s->day;
}

/* Key equality of a candidate record with a probe record of the same kind. */
static bool rec_key_equal(const struct rec *a, const struct rec *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case REC_STR: {
		const struct rec_str *x = (const void *)a, *y = (const void *)b;
		return x->len == y->len && memcmp(x->bytes, y->bytes, x->len) == 0;
	}
	case REC_LIST: {
		const struct rec_list *x = (const void *)a, *y = (const void *)b;
		return x->n == y->n && memcmp(x->ref, y->ref, 4 * (size_t)x->n) == 0;
	}
	case REC_POLICY: {
		const struct rec_policy *x = (const void *)a, *y = (const void *)b;
		return memcmp(&x->d, &y->d, 6 * sizeof(uint32_t)) == 0;
	}
	default: {
		const struct rec_detail *x = (const void *)a, *y = (const void *)b;
		return memcmp(&x->policy, &y->policy, 8 * sizeof(uint32_t)) == 0;
	}
	}
}

static uint32_t rec_key_hash(const struct rec *r)
{
	switch (r->kind) {
	case REC_STR: {
		const struct rec_str *x = (const void *)r;
		return hash_bytes(x->bytes, x->len, REC_STR);
	}
	case REC_LIST: {
		const struct rec_list *x = (const void *)r;
		return hash_bytes(x->ref, 4 * (size_t)x->n, REC_LIST);
	}
	case REC_POLICY:
		return hash_bytes(&((const struct rec_policy *)r)->d, 24, REC_POLICY);
	default:
		return hash_bytes(&((const struct rec_detail *)r)->policy, 32, REC_DETAIL);
	}
}

static int index_grow(struct store *s)
{
	size_t cap = s->index_cap ? s->index_cap * 2 : 4096;
	struct slot *n = calloc(cap, sizeof(*n));

	if (n == NULL)
		return -1;
	for (size_t i = 0; i < s->index_cap; i++) {
		struct slot e = s->index[i];
		size_t j;

		if (e.off == 0)
			continue;
		for (j = e.hash & (cap - 1); n[j].off; j = (j + 1) & (cap - 1))
			;
		n[j] = e;
	}
	free(s->index);
	s->index = n;
	s->index_cap = cap;
	return 0;
}

/* Find the record equal to 'probe'; returns its offset or 0 and the slot. */
static uint32_t index_find(const struct store *s, const struct rec *probe,
			   uint32_t hash, size_t *slot)
{
	size_t j;

	for (j = hash & (s->index_cap - 1); s->index[j].off; j = (j + 1) & (s->index_cap - 1)) {
		if (s->index[j].hash == hash &&
		    rec_key_equal(at(s, s->index[j].off), probe))
			return s->index[j].off;
	}
	*slot = j;
	return 0;
}

static int index_insert(struct store *s, uint32_t off, uint32_t hash)
{
	size_t j;

	if ((s->index_n + 1) * 2 > s->index_cap && index_grow(s) < 0)
		return -1;
	for (j = hash & (s->index_cap - 1); s->index[j].off; j = (j + 1) & (s->index_cap - 1))
		;
	s->index[j].off = off;
	s->index[j].hash = hash;
	s->index_n++;
	return 0;
}

/*
 * Make sure [0, end) of the file has disk blocks before it is written
 * through the mapping: a write to a page of a sparse file that the file
 * system cannot allocate (disk full, quota) is a SIGBUS, not an error.
 * Reserves STORE_RESERVE_CHUNK at a time, or just the pages needed when a
 * whole chunk does not fit. 0, or -1 with errno (ENOSPC, EDQUOT, ...).
 */
static int reserve(struct store *s, uint64_t end)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), want;
	int rc;

	if (end <= s->reserved)
		return 0;
	if (end > s->size) {
		errno = EFBIG;
		return -1;
	}
	want = (end + STORE_RESERVE_CHUNK - 1) / STORE_RESERVE_CHUNK * STORE_RESERVE_CHUNK;
	if (want > s->size)
		want = s->size;
	rc = posix_fallocate(s->fd, (off_t)s->reserved, (off_t)(want - s->reserved));
	if (rc != 0) {
		want = (end + page - 1) / page * page;
		if (want > s->size)
			want = s->size;
		rc = posix_fallocate(s->fd, (off_t)s->reserved, (off_t)(want - s->reserved));
	}
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	s->reserved = want;
	return 0;
}

/*
 * Find 'probe' (a complete record built on the stack or in scratch memory)
 * or append a copy of it. Returns the offset, 0 when the file is full (at
 * store_max_size, or no disk space for it: s->full says which) or memory
 * ran out.
 */
static uint32_t intern(struct store *s, const struct rec *probe)
{
	uint32_t hash = rec_key_hash(probe), off;
	size_t slot;
	uint64_t used = s->hd->used;

	if ((s->index_n + 1) * 2 > s->index_cap && index_grow(s) < 0)
		return 0;
	off = index_find(s, probe, hash, &slot);
	if (off)
		return off;
	if (probe->size > s->size - used) {
		s->full = STORE_FULL;
		return 0;
	}
	if (reserve(s, used + probe->size) != 0) {
		s->full = STORE_NOSPACE;
		return 0;
	}
	memcpy(s->base + used, probe, probe->size);
	/* publish only after the whole record is in place */
	__atomic_store_n(&s->hd->used, used + probe->size, __ATOMIC_RELEASE);
	s->index[slot].off = (uint32_t)used;
	s->index[slot].hash = hash;
	s->index_n++;
	return (uint32_t)used;
}

/* Scratch space for building one probe record; large enough for any string. */
static _Thread_local unsigned char *scratch;
static _Thread_local size_t scratch_cap;

static void *scratch_get(size_t n)
{
	if (n > scratch_cap) {
		unsigned char *p = realloc(scratch, n);

		if (p == NULL)
			return NULL;
		scratch = p;
		scratch_cap = n;
	}
	return scratch;
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Intern a string (cut at max_string on a UTF-8 boundary). 0 on failure. */
static uint32_t intern_str(struct store *s, const char *p, size_t len, bool lower)
{
	struct rec_str *r;
	size_t size;

	if (len > s->max_string) {
		len = s->max_string;
		while (len > 0 && ((unsigned char)p[len] & 0xc0) == 0x80)
			len--;		/* do not split a UTF-8 sequence */
		store_bump(s, STC_STRINGS_CUT, 1);
	}
	if (lower && len > 0 && p[len - 1] == '.')
		len--;			/* domains: no trailing dot */
	size = pad8(sizeof(*r) + len);
	r = scratch_get(size);
	if (r == NULL)
		return 0;
	memset(r, 0, size);
	r->h.kind = REC_STR;
	r->h.size = (uint32_t)size;
	r->len = (uint32_t)len;
	memcpy(r->bytes, p, len);
	if (lower)
		for (size_t i = 0; i < len; i++)
			if (r->bytes[i] >= 'A' && r->bytes[i] <= 'Z')
				r->bytes[i] = (char)(r->bytes[i] + 32);
	return intern(s, &r->h);
}

static uint32_t intern_opt(struct store *s, struct result_str v, bool *fail)
{
	uint32_t off;

	if (v.p == NULL)
		return 0;
	off = intern_str(s, v.p, v.len, false);
	if (off == 0)
		*fail = true;
	return off;
}

/* Intern a list of strings; 0 for an empty list (and on failure, *fail). */
static uint32_t intern_list(struct store *s, const struct result_str *v, size_t n, bool *fail)
{
	uint32_t refs[256], *rp = refs;
	struct rec_list *r;
	size_t size;
	uint32_t off = 0;

	if (n == 0)
		return 0;
	if (n > UINT32_MAX / 8 || (n > 256 && (rp = malloc(n * sizeof(*rp))) == NULL)) {
		*fail = true;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		rp[i] = intern_str(s, v[i].p ? v[i].p : "", v[i].p ? v[i].len : 0, false);
		if (rp[i] == 0) {
			*fail = true;
			goto out;
		}
	}
	size = pad8(sizeof(*r) + 4 * n);
	r = scratch_get(size);
	if (r == NULL) {
		*fail = true;
		goto out;
	}
	memset(r, 0, size);
	r->h.kind = REC_LIST;
	r->h.size = (uint32_t)size;
	r->n = (uint32_t)n;
	memcpy(r->ref, rp, 4 * n);
	off = intern(s, &r->h);
	if (off == 0)
		*fail = true;
out:
	if (rp != refs)
		free(rp);
	return off;
}

enum store_status store_add(struct store *s, struct result_str d,
			    struct result_str pr, const struct result_policy *p0)
{
	struct result_policy pc, *p = &pc;
	struct rec_policy probe;
	struct rec_policy *pol;
	uint32_t poff;
	bool fail = false;

	/* keyed on what a report prints (result.h) */
	result_policy_canon(p0, &pc);
	s->full = STORE_FULL;
	memset(&probe, 0, sizeof(probe));
	probe.h.kind = REC_POLICY;
	probe.h.size = sizeof(probe);
	probe.d = intern_str(s, d.p ? d.p : "", d.p ? d.len : 0, true);
	probe.pr = intern_str(s, pr.p ? pr.p : "", pr.p ? pr.len : 0, false);
	probe.type = (uint32_t)p->type;
	probe.domain = p->domain.p && p->domain.len ?
		intern_str(s, p->domain.p, p->domain.len, true) : probe.d;
	probe.strings = intern_list(s, p->strings, p->nstrings, &fail);
	probe.mx = intern_list(s, p->mx, p->nmx, &fail);
	if (probe.d == 0 || probe.pr == 0 || probe.domain == 0 || fail ||
	    (poff = intern(s, &probe.h)) == 0) {
		store_bump(s, STC_OVERFLOW, 1);
		return s->full;
	}
	pol = at(s, poff);
	store_bump(s, STC_SESSIONS, 1);
	if (p->failed) {
		counter_add(&pol->fail, 1);
		store_bump(s, STC_FAILURES, 1);
	} else {
		counter_add(&pol->ok, 1);
	}

	for (size_t i = 0; i < p->ndetails; i++) {
		struct result_canon_buf cb;
		struct result_detail rdc, *rd = &rdc;
		struct rec_detail dp;
		uint32_t doff;

		result_detail_canon(&p->details[i], &rdc, &cb);

		memset(&dp, 0, sizeof(dp));
		dp.h.kind = REC_DETAIL;
		dp.h.size = sizeof(dp);
		dp.policy = poff;
		dp.code = rd->code;
		dp.f[0] = intern_opt(s, rd->sending_ip, &fail);
		dp.f[1] = intern_opt(s, rd->mx_hostname, &fail);
		dp.f[2] = intern_opt(s, rd->mx_helo, &fail);
		dp.f[3] = intern_opt(s, rd->receiving_ip, &fail);
		dp.f[4] = intern_opt(s, rd->additional, &fail);
		dp.f[5] = intern_opt(s, rd->reason, &fail);
		if (fail || (doff = intern(s, &dp.h)) == 0) {
			/* the session is counted; only this detail is lost */
			store_bump(s, STC_OVERFLOW, 1);
			return s->full;
		}
		counter_add(&((struct rec_detail *)at(s, doff))->count, 1);
	}
	return STORE_OK;
}

int store_sync(struct store *s)
{
	uint64_t used = s->hd->used;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = (used + page - 1) / page * page;

	if (msync(s->base, len, MS_SYNC) != 0) {
		log_err("msync %s: %s", s->path, strerror(errno));
		return -1;
	}
	return 0;
}

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	size_t len = strlen(dir);

	if (len >= sizeof(tmp))
		return -1;
	memcpy(tmp, dir, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

/* Rebuild the in-memory index of a validated file. */
static int store_reindex(struct store *s, const struct walk *w)
{
	for (size_t i = 0; i < w->nrecs; i++) {
		const struct rec *r = at(s, w->recs[i].off);

		if (index_insert(s, w->recs[i].off, rec_key_hash(r)) < 0)
			return -1;
	}
	return 0;
}

struct store *store_open(const char *dir, int64_t day, uint64_t max_size,
			 size_t max_string, char *err, size_t errsz)
{
	struct store *s = calloc(1, sizeof(*s));
	char days[4096];
	struct stat st;
	bool fresh;

	if (s == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	s->fd = -1;
	s->day = day;
	s->max_string = max_string;
	if (max_size > STORE_MAX_FILE)
		max_size = STORE_MAX_FILE;
	max_size &= ~(uint64_t)4095;
	snprintf(days, sizeof(days), "%s/days", dir);
	if (mkdir_p(days) != 0 || store_day_path(s->path, sizeof(s->path), dir, day) != 0) {
		snprintf(err, errsz, "%s: %s", days, strerror(errno));
		goto fail;
	}
reopen:
	s->reserved = 0;
	s->fd = open(s->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (s->fd < 0 || fstat(s->fd, &st) != 0) {
		snprintf(err, errsz, "%s: %s", s->path, strerror(errno));
		goto fail;
	}
	if (flock(s->fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errsz, "%s: another collector is writing this day file", s->path);
		goto fail;
	}
	/* a day file of an older version (0644): owner and group only */
	if ((st.st_mode & 07777) != 0640)
		(void)fchmod(s->fd, 0640);
	fresh = st.st_size == 0;
	if (fresh) {
		s->size = max_size;
		if (ftruncate(s->fd, (off_t)max_size) != 0) {
			snprintf(err, errsz, "%s: %s", s->path, strerror(errno));
			goto fail;
		}
		/* the header (and the first records) get their blocks now */
		if (reserve(s, STORE_HEADER_SIZE) != 0) {
			int e = errno;

			unlink(s->path);	/* ours (flock held): started again next time */
			snprintf(err, errsz, "%s: cannot reserve space: %s", s->path, strerror(e));
			errno = e;
			goto fail;
		}
	} else {
		s->size = (uint64_t)st.st_size;	/* keep an existing file's size */
	}
	s->base = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (s->base == MAP_FAILED) {
		s->base = NULL;
		snprintf(err, errsz, "%s: mmap: %s", s->path, strerror(errno));
		goto fail;
	}
	s->hd = (struct store_header *)s->base;
	if (fresh) {
		memcpy(s->hd->magic, STORE_MAGIC, 8);
		s->hd->version = STORE_VERSION;
		s->hd->header_size = STORE_HEADER_SIZE;
		s->hd->file_size = s->size;
		s->hd->day = day;
		s->hd->created = (uint64_t)time(NULL);
		gethostname(s->hd->host, sizeof(s->hd->host) - 1);
		__atomic_store_n(&s->hd->used, STORE_HEADER_SIZE, __ATOMIC_RELEASE);
	} else {
		struct walk w;
		const char *why = store_walk(&w, s->base, s->size);

		if (why == NULL && s->hd->day != day)
			why = "day file is for another day";
		if (why == NULL && store_reindex(s, &w) < 0)
			why = "out of memory";
		if (why == NULL) {
			/* what was written has its blocks (a write through the
			 * mapping allocated them); more is reserved when needed */
			uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

			s->reserved = (w.used + page - 1) / page * page;
			if (s->reserved > s->size)
				s->reserved = s->size;
		}
		free(w.recs);
		if (why) {
			char aside[4200];

			snprintf(aside, sizeof(aside), "%s.corrupt.%lld", s->path, (long long)time(NULL));
			log_err("%s: %s; moved aside to %s, starting a new day file",
				s->path, why, aside);
			munmap(s->base, s->size);
			s->base = NULL;
			if (rename(s->path, aside) != 0) {
				snprintf(err, errsz, "%s: %s, and cannot move it aside: %s",
					 s->path, why, strerror(errno));
				goto fail;
			}
			close(s->fd);
			s->fd = -1;
			free(s->index);
			s->index = NULL;
			s->index_cap = s->index_n = 0;
			goto reopen;
		}
	}
	if (s->index == NULL && index_grow(s) < 0) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	return s;
fail:
	{
		int e = errno;

		if (s->base)
			munmap(s->base, s->size);
		if (s->fd >= 0)
			close(s->fd);
		free(s->index);
		free(s);
		errno = e;
	}
	return NULL;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	store_sync(s);
	munmap(s->base, s->size);
	close(s->fd);
	free(s->index);
	free(s);
}

/* ---- reader ---- */

struct store_view {
	unsigned char *base;
	uint64_t size;
	struct store_view_info info;
	struct store_policy_view *policies;
	size_t npolicies;
	struct result_str *strs;	/* backing of all string arrays */
	struct store_detail_view *details;	/* backing of all detail arrays */
};

static struct result_str view_str(const unsigned char *base, uint32_t off)
{
	struct result_str r = { NULL, 0 };

	if (off) {
		const struct rec_str *s = (const void *)(base + off);

		r.p = s->bytes;
		r.len = s->len;
	}
	return r;
}

static int policy_cmp_off(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct store_view *store_view_open(const char *path, char *err, size_t errsz)
{
	struct store_view *v = calloc(1, sizeof(*v));
	struct walk w = { 0 };
	struct stat st;
	const char *why;
	int fd = -1;
	size_t nstr = 0, ndet = 0, np = 0, si = 0, di = 0;
	uint32_t *poffs = NULL;

	if (v == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);	/* readers may be root */
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < STORE_HEADER_SIZE) {
		snprintf(err, errsz, "%s: not a day file (too short)", path);
		goto fail;
	}
	v->size = (uint64_t)st.st_size;
	v->base = mmap(NULL, v->size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	fd = -1;
	if (v->base == MAP_FAILED) {
		v->base = NULL;
		snprintf(err, errsz, "%s: mmap: %s", path, strerror(errno));
		goto fail;
	}
	why = store_walk(&w, v->base, v->size);
	if (why) {
		snprintf(err, errsz, "%s: %s", path, why);
		goto fail;
	}
	{
		const struct store_header *hd = (const void *)v->base;

		v->info.day = hd->day;
		v->info.file_size = hd->file_size;
		v->info.used = w.used;
		for (int i = 0; i < STC_MAX; i++)
			v->info.counters[i] = __atomic_load_n(&hd->counters[i], __ATOMIC_RELAXED);
		memcpy(v->info.host, hd->host, sizeof(hd->host));
		v->info.host[64] = '\0';
		for (char *p = v->info.host; *p; p++)
			if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
				*p = '?';
	}
	/* size the arrays */
	for (size_t i = 0; i < w.nrecs; i++) {
		const struct rec *r = (const void *)(v->base + w.recs[i].off);

		if (r->kind == REC_POLICY) {
			const struct rec_policy *p = (const void *)r;

			np++;
			if (p->strings)
				nstr += ((const struct rec_list *)(v->base + p->strings))->n;
			if (p->mx)
				nstr += ((const struct rec_list *)(v->base + p->mx))->n;
		} else if (r->kind == REC_DETAIL) {
			ndet++;
		}
	}
	v->policies = calloc(np ? np : 1, sizeof(*v->policies));
	v->strs = calloc(nstr ? nstr : 1, sizeof(*v->strs));
	v->details = calloc(ndet ? ndet : 1, sizeof(*v->details));
	poffs = calloc(np ? np : 1, sizeof(*poffs));
	if (!v->policies || !v->strs || !v->details || !poffs) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	/* policies in file order; their offsets ascending for lookup */
	for (size_t i = 0; i < w.nrecs; i++) {
		const struct rec_policy *p = (const void *)(v->base + w.recs[i].off);
		struct store_policy_view *pv;

		if (p->h.kind != REC_POLICY)
			continue;
		pv = &v->policies[v->npolicies];
		poffs[v->npolicies++] = w.recs[i].off;
		pv->d = view_str(v->base, p->d);
		pv->pr = view_str(v->base, p->pr);
		pv->type = (int)p->type;
		pv->domain = view_str(v->base, p->domain);
		pv->successes = __atomic_load_n(&p->ok, __ATOMIC_RELAXED);
		pv->failures = __atomic_load_n(&p->fail, __ATOMIC_RELAXED);
		for (int k = 0; k < 2; k++) {
			uint32_t lo = k == 0 ? p->strings : p->mx;
			const struct rec_list *l = lo ? (const void *)(v->base + lo) : NULL;
			struct result_str *arr = &v->strs[si];
			size_t n = l ? l->n : 0;

			for (size_t j = 0; j < n; j++)
				v->strs[si++] = view_str(v->base, l->ref[j]);
			if (k == 0) {
				pv->strings = arr;
				pv->nstrings = n;
			} else {
				pv->mx = arr;
				pv->nmx = n;
			}
		}
	}
	/* count details per policy, then place them contiguously */
	for (size_t i = 0; i < w.nrecs; i++) {
		const struct rec_detail *d = (const void *)(v->base + w.recs[i].off);
		uint32_t *hit;

		if (d->h.kind != REC_DETAIL)
			continue;
		hit = bsearch(&d->policy, poffs, v->npolicies, sizeof(*poffs), policy_cmp_off);
		v->policies[hit - poffs].ndetails++;	/* ref_ok() proved it exists */
	}
	for (size_t i = 0; i < v->npolicies; i++) {
		v->policies[i].details = &v->details[di];
		di += v->policies[i].ndetails;
		v->policies[i].ndetails = 0;
	}
	for (size_t i = 0; i < w.nrecs; i++) {
		const struct rec_detail *d = (const void *)(v->base + w.recs[i].off);
		struct store_policy_view *pv;
		struct store_detail_view *dv;
		uint32_t *hit;

		if (d->h.kind != REC_DETAIL)
			continue;
		hit = bsearch(&d->policy, poffs, v->npolicies, sizeof(*poffs), policy_cmp_off);
		pv = &v->policies[hit - poffs];
		dv = &pv->details[pv->ndetails++];
		dv->code = d->code;
		dv->sending_ip = view_str(v->base, d->f[0]);
		dv->mx_hostname = view_str(v->base, d->f[1]);
		dv->mx_helo = view_str(v->base, d->f[2]);
		dv->receiving_ip = view_str(v->base, d->f[3]);
		dv->additional = view_str(v->base, d->f[4]);
		dv->reason = view_str(v->base, d->f[5]);
		dv->count = __atomic_load_n(&d->count, __ATOMIC_RELAXED);
	}
	free(poffs);
	free(w.recs);
	return v;
fail:
	if (fd >= 0)
		close(fd);
	free(poffs);
	free(w.recs);
	store_view_close(v);
	return NULL;
}

void store_view_close(struct store_view *v)
{
	if (v == NULL)
		return;
	if (v->base)
		munmap(v->base, v->size);
	free(v->policies);
	free(v->strs);
	free(v->details);
	free(v);
}

const struct store_view_info *store_view_info(const struct store_view *v)
{
	return &v->info;
}

size_t store_view_npolicies(const struct store_view *v)
{
	return v->npolicies;
}

const struct store_policy_view *store_view_policy(const struct store_view *v, size_t i)
{
	return i < v->npolicies ? &v->policies[i] : NULL;
}
