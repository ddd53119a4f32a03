/*
 * push - write one host's day files into the fleet database. See push.h.
 *
 * One day, one transaction:
 *   lock the host's row (two pushes of one host take turns)
 *   compare the snapshot; equal: done, nothing written
 *   COPY the merged policies and details into session temp tables
 *   add new policies/details to the shared dictionaries, check that
 *     existing rows with the same key have the same content
 *   upsert the host's counts where they differ, delete keys it no longer has
 *   record the snapshot in host_days
 *
 * SECURITY: day files are validated by store_view_open before anything is
 * read; their strings reach the database only as COPY data escaped by db.c.
 */
#include "push.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "buf.h"
#include "dbagg.h"
#include "log.h"

#define ROLLOVER_MARGIN 60	/* seconds after midnight before a day counts as final */
#define MAX_TRIES 5
#define FIELD_MAX (16u * 1024 * 1024)

int push_host_name(const struct conf *c, char *out, size_t outsz, char *err, size_t errsz)
{
	const char *h = conf_str(c, "fleet_host_name");
	char sys[256];
	size_t len;

	if (h[0] == '\0') {
		if (gethostname(sys, sizeof(sys) - 1) != 0) {
			snprintf(err, errsz, "gethostname: %s; set fleet_host_name", strerror(errno));
			return -1;
		}
		sys[sizeof(sys) - 1] = '\0';
		h = sys;
	}
	len = strlen(h);
	if (len == 0 || len > PUSH_HOST_MAX || len >= outsz) {
		snprintf(err, errsz, "host name \"%.80s\" is empty or longer than %d characters; "
			 "set fleet_host_name", h, PUSH_HOST_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		char ch = h[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '.' || ch == '_')) {
			snprintf(err, errsz, "host name \"%.80s\": only letters, digits, '-', '.' and '_' "
				 "are allowed; set fleet_host_name", h);
			return -1;
		}
	}
	memcpy(out, h, len + 1);
	return 0;
}

void push_machine_id(char *out, size_t outsz)
{
	char b[64];
	ssize_t n;
	int fd = open("/etc/machine-id", O_RDONLY | O_CLOEXEC);

	out[0] = '\0';
	if (fd < 0)
		return;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n < 32)
		return;
	for (int i = 0; i < 32; i++)
		if (!((b[i] >= '0' && b[i] <= '9') || (b[i] >= 'a' && b[i] <= 'f')))
			return;
	if (outsz > 32) {
		memcpy(out, b, 32);
		out[32] = '\0';
	}
}

/* ---- content keys ---- */

/* A field: presence byte, 4-byte length, bytes (so no two inputs collide). */
static void h_field(EVP_MD_CTX *ctx, const char *s)
{
	unsigned char hdr[5];
	size_t len = s ? strlen(s) : 0;

	hdr[0] = s != NULL;
	hdr[1] = (unsigned char)(len >> 24);
	hdr[2] = (unsigned char)(len >> 16);
	hdr[3] = (unsigned char)(len >> 8);
	hdr[4] = (unsigned char)len;
	EVP_DigestUpdate(ctx, hdr, sizeof(hdr));
	if (len)
		EVP_DigestUpdate(ctx, s, len);
}

static void h_u64(EVP_MD_CTX *ctx, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (56 - 8 * i));
	EVP_DigestUpdate(ctx, b, sizeof(b));
}

static EVP_MD_CTX *h_begin(const char *tag)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx && !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return NULL;
	}
	if (ctx)
		h_field(ctx, tag);
	return ctx;
}

static void h_end(EVP_MD_CTX *ctx, unsigned char out[PUSH_HASH_LEN])
{
	unsigned int n = 0;

	memset(out, 0, PUSH_HASH_LEN);
	if (ctx == NULL)
		return;		/* ENOMEM: an all-zero key never matches content */
	EVP_DigestFinal_ex(ctx, out, &n);
	EVP_MD_CTX_free(ctx);
}

static void h_policy(EVP_MD_CTX *ctx, const char *d, const char *pr, const struct agg_policy *p)
{
	h_field(ctx, d);
	h_field(ctx, pr);
	h_u64(ctx, (uint64_t)(int64_t)p->type);
	h_field(ctx, p->domain);
	h_u64(ctx, p->nstrings);
	for (size_t i = 0; i < p->nstrings; i++)
		h_field(ctx, p->strings[i]);
	h_u64(ctx, p->nmx);
	for (size_t i = 0; i < p->nmx; i++)
		h_field(ctx, p->mx[i]);
}

static void h_detail(EVP_MD_CTX *ctx, const struct agg_detail *d)
{
	h_u64(ctx, (uint64_t)(int64_t)d->code);
	h_field(ctx, d->sending_ip);
	h_field(ctx, d->mx_hostname);
	h_field(ctx, d->mx_helo);
	h_field(ctx, d->receiving_ip);
	h_field(ctx, d->additional);
	h_field(ctx, d->reason);
}

void push_policy_hash(const char *d, const char *pr, const struct agg_policy *p,
		      unsigned char out[PUSH_HASH_LEN])
{
	EVP_MD_CTX *ctx = h_begin("tlsrpt-policy-1");

	if (ctx)
		h_policy(ctx, d, pr, p);
	h_end(ctx, out);
}

void push_detail_hash(const struct agg_detail *d, unsigned char out[PUSH_HASH_LEN])
{
	EVP_MD_CTX *ctx = h_begin("tlsrpt-detail-1");

	if (ctx)
		h_detail(ctx, d);
	h_end(ctx, out);
}

/* ---- the rows of a day file ---- */

/* One policy of a day file as pushed: its strings as the file holds them,
 * made valid UTF-8 (PostgreSQL text) and cut at a NUL. */
struct push_row {
	char *d, *pr;
	struct agg_policy p;
};

struct push_rows {
	struct push_row *v;
	size_t n;
};

static char *row_str(struct result_str s, bool *oom)
{
	char *r;

	if (s.p == NULL)
		return NULL;
	if ((r = agg_utf8(s.p, s.len)) == NULL)
		*oom = true;
	return r;
}

static void rows_free(struct push_rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct push_row *x = &r->v[i];

		free(x->d);
		free(x->pr);
		agg_policy_free(&x->p);
	}
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

static int rows_from_view(const struct store_view *v, struct push_rows *out, char *err, size_t errsz)
{
	size_t n = store_view_npolicies(v);
	bool oom = false;

	out->n = 0;
	out->v = calloc(n ? n : 1, sizeof(*out->v));
	if (out->v == NULL)
		goto nomem;
	for (size_t i = 0; i < n && !oom; i++) {
		const struct store_policy_view *pv = store_view_policy(v, i);
		struct push_row *x = &out->v[out->n++];

		x->d = row_str(pv->d, &oom);
		x->pr = row_str(pv->pr, &oom);
		x->p.type = pv->type;
		x->p.domain = row_str(pv->domain, &oom);
		if (!oom && (x->d == NULL || x->pr == NULL || x->p.domain == NULL)) {
			snprintf(err, errsz, "a policy without domain, record or policy domain; "
				 "the day file is not usable");
			rows_free(out);
			return -1;
		}
		if (pv->successes > DBAGG_COUNT_MAX || pv->failures > DBAGG_COUNT_MAX) {
			snprintf(err, errsz, "a count above 2^53-1 (a corrupt day file?)");
			rows_free(out);
			return -1;
		}
		x->p.successes = pv->successes;
		x->p.failures = pv->failures;
		if (pv->nstrings && (x->p.strings = calloc(pv->nstrings, sizeof(char *))) == NULL)
			oom = true;
		for (size_t k = 0; x->p.strings && k < pv->nstrings; k++, x->p.nstrings++)
			if ((x->p.strings[k] = agg_utf8(pv->strings[k].p ? pv->strings[k].p : "",
							pv->strings[k].len)) == NULL)
				oom = true;
		if (pv->nmx && (x->p.mx = calloc(pv->nmx, sizeof(char *))) == NULL)
			oom = true;
		for (size_t k = 0; x->p.mx && k < pv->nmx; k++, x->p.nmx++)
			if ((x->p.mx[k] = agg_utf8(pv->mx[k].p ? pv->mx[k].p : "", pv->mx[k].len)) == NULL)
				oom = true;
		if (pv->ndetails && (x->p.details = calloc(pv->ndetails, sizeof(*x->p.details))) == NULL)
			oom = true;
		for (size_t k = 0; x->p.details && k < pv->ndetails; k++, x->p.ndetails++) {
			const struct store_detail_view *dv = &pv->details[k];
			struct agg_detail *d = &x->p.details[k];

			if (dv->count > DBAGG_COUNT_MAX) {
				snprintf(err, errsz, "a count above 2^53-1 (a corrupt day file?)");
				x->p.ndetails++;
				rows_free(out);
				return -1;
			}
			d->code = dv->code;
			d->sending_ip = row_str(dv->sending_ip, &oom);
			d->mx_hostname = row_str(dv->mx_hostname, &oom);
			d->mx_helo = row_str(dv->mx_helo, &oom);
			d->receiving_ip = row_str(dv->receiving_ip, &oom);
			d->additional = row_str(dv->additional, &oom);
			d->reason = row_str(dv->reason, &oom);
			d->count = dv->count;
		}
	}
	if (!oom)
		return 0;
	rows_free(out);
nomem:
	snprintf(err, errsz, "out of memory");
	return -1;
}

/* The snapshot of a day file's rows plus its ingest counters. */
static void push_snapshot(const struct push_rows *r, const uint64_t counters[STC_MAX],
			  unsigned char out[PUSH_HASH_LEN])
{
	EVP_MD_CTX *ctx = h_begin("tlsrpt-snapshot-2");

	if (ctx == NULL) {
		h_end(NULL, out);
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct push_row *x = &r->v[i];

		h_policy(ctx, x->d, x->pr, &x->p);
		h_u64(ctx, x->p.successes);
		h_u64(ctx, x->p.failures);
		h_u64(ctx, x->p.ndetails);
		for (size_t j = 0; j < x->p.ndetails; j++) {
			h_detail(ctx, &x->p.details[j]);
			h_u64(ctx, x->p.details[j].count);
		}
	}
	for (int c = 0; c < STC_MAX; c++)
		h_u64(ctx, counters[c]);
	h_end(ctx, out);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[b[i] >> 4];
		out[2 * i + 1] = x[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* "\x<hex>": a bytea in text form */
static void bytea_text(const unsigned char h[PUSH_HASH_LEN], char out[2 * PUSH_HASH_LEN + 3])
{
	out[0] = '\\';
	out[1] = 'x';
	hex(h, PUSH_HASH_LEN, out + 2);
}

/* ---- host ---- */

enum db_status push_register(struct db *db, const char *name, const char *machine_id,
			     int *host_id, char *err, size_t errsz)
{
	const char *p[2] = { name, machine_id };
	struct db_res *r = NULL;
	enum db_status st;
	int64_t id = 0;
	char known[64];

	st = db_exec(db, "INSERT INTO tlsrpt.hosts (name, machine_id) VALUES ($1, $2) "
		     "ON CONFLICT (name) DO NOTHING", 2, p, NULL);
	if (st == DB_OK)
		st = db_exec(db, "SELECT id, machine_id FROM tlsrpt.hosts WHERE name = $1", 1, p, &r);
	if (st != DB_OK) {
		snprintf(err, errsz, "%s", db_errmsg(db));
		return st;
	}
	if (db_res_rows(r) != 1 || !db_res_int(r, 0, 0, &id)) {
		snprintf(err, errsz, "host %s: not registered", name);
		db_res_free(r);
		return DB_ERROR;
	}
	snprintf(known, sizeof(known), "%s", db_res_get(r, 0, 1));
	db_res_free(r);
	if (known[0] && machine_id[0] && strcmp(known, machine_id) != 0) {
		snprintf(err, errsz, "host name %s is registered to another machine (machine-id %.32s, "
			 "this one is %.32s): give each host its own fleet_host_name", name, known,
			 machine_id);
		return DB_ERROR;
	}
	if (known[0] == '\0' && machine_id[0]) {
		const char *q[2] = { machine_id, name };

		st = db_exec(db, "UPDATE tlsrpt.hosts SET machine_id = $1 WHERE name = $2 "
			     "AND machine_id = ''", 2, q, NULL);
		if (st != DB_OK) {
			snprintf(err, errsz, "%s", db_errmsg(db));
			return st;
		}
	}
	*host_id = (int)id;
	return DB_OK;
}

/* ---- one day ---- */

static const char *const create_temps =
	"CREATE TEMP TABLE IF NOT EXISTS push_pol (hash bytea, d text, pr text, type smallint,"
	" pdomain text, strings text[], mx text[], successes bigint, failures bigint, id bigint)"
	" ON COMMIT DELETE ROWS;\n"
	"CREATE TEMP TABLE IF NOT EXISTS push_det (phash bytea, dhash bytea, code integer,"
	" sending_ip text, mx_hostname text, mx_helo text, receiving_ip text, additional text,"
	" reason text, count bigint, pid bigint, did bigint) ON COMMIT DELETE ROWS;\n"
	/* the anti-joins of the deletes look keys up here (the planner cannot
	 * know how many rows of the host a transaction has just written) */
	"CREATE INDEX IF NOT EXISTS push_pol_id ON pg_temp.push_pol (id);\n"
	"CREATE INDEX IF NOT EXISTS push_det_ids ON pg_temp.push_det (pid, did);\n";

static enum db_status copy_policies(struct db *db, const struct push_rows *r, struct push_stats *st)
{
	struct buf strs, mxs;
	enum db_status rc = db_copy_begin(db, "COPY pg_temp.push_pol (hash, d, pr, type, pdomain,"
					  " strings, mx, successes, failures) FROM STDIN");

	if (rc != DB_OK)
		return rc;
	buf_init(&strs, FIELD_MAX);
	buf_init(&mxs, FIELD_MAX);
	for (size_t i = 0; i < r->n && rc == DB_OK; i++) {
		const struct push_row *x = &r->v[i];
		unsigned char h[PUSH_HASH_LEN];
		char hx[2 * PUSH_HASH_LEN + 3], type[16], ok[24], fail[24];
		const char *f[9];

		push_policy_hash(x->d, x->pr, &x->p, h);
		bytea_text(h, hx);
		snprintf(type, sizeof(type), "%d", x->p.type);
		snprintf(ok, sizeof(ok), "%llu", (unsigned long long)x->p.successes);
		snprintf(fail, sizeof(fail), "%llu", (unsigned long long)x->p.failures);
		buf_reset(&strs);
		buf_reset(&mxs);
		if (db_array_literal(&strs, x->p.strings, x->p.nstrings) ||
		    db_array_literal(&mxs, x->p.mx, x->p.nmx)) {
			rc = DB_ERROR;
			break;
		}
		f[0] = hx; f[1] = x->d; f[2] = x->pr; f[3] = type;
		f[4] = x->p.domain; f[5] = strs.data; f[6] = mxs.data; f[7] = ok; f[8] = fail;
		rc = db_copy_row(db, 9, f);
		st->policies++;
	}
	buf_free(&strs);
	buf_free(&mxs);
	{
		enum db_status end = db_copy_end(db);

		return rc != DB_OK ? (end != DB_OK ? end : rc) : end;
	}
}

static enum db_status copy_details(struct db *db, const struct push_rows *r, struct push_stats *st)
{
	enum db_status rc = db_copy_begin(db, "COPY pg_temp.push_det (phash, dhash, code, sending_ip,"
					  " mx_hostname, mx_helo, receiving_ip, additional, reason, count)"
					  " FROM STDIN");

	if (rc != DB_OK)
		return rc;
	for (size_t i = 0; i < r->n && rc == DB_OK; i++) {
		const struct push_row *x = &r->v[i];
		unsigned char ph[PUSH_HASH_LEN];
		char phx[2 * PUSH_HASH_LEN + 3];

		if (x->p.ndetails == 0)
			continue;
		push_policy_hash(x->d, x->pr, &x->p, ph);
		bytea_text(ph, phx);
		for (size_t j = 0; j < x->p.ndetails && rc == DB_OK; j++) {
			const struct agg_detail *d = &x->p.details[j];
			unsigned char dh[PUSH_HASH_LEN];
			char dhx[2 * PUSH_HASH_LEN + 3], code[16], count[24];
			const char *f[10];

			push_detail_hash(d, dh);
			bytea_text(dh, dhx);
			snprintf(code, sizeof(code), "%d", d->code);
			snprintf(count, sizeof(count), "%llu", (unsigned long long)d->count);
			f[0] = phx; f[1] = dhx; f[2] = code; f[3] = d->sending_ip;
			f[4] = d->mx_hostname; f[5] = d->mx_helo; f[6] = d->receiving_ip;
			f[7] = d->additional; f[8] = d->reason; f[9] = count;
			rc = db_copy_row(db, 10, f);
			st->details++;
		}
	}
	{
		enum db_status end = db_copy_end(db);

		return rc != DB_OK ? (end != DB_OK ? end : rc) : end;
	}
}

/*
 * The statements after the COPYs. First (no parameters): statistics for the
 * planner (without them it chose a nested loop that took 28 s for 10,000
 * keys), new dictionary rows, every key's id. Then ($1 day, $2 host id):
 * counts upserted where they differ, keys the host no longer has deleted.
 */
static const char *const dict_sql[] = {
	"ANALYZE pg_temp.push_pol",
	"ANALYZE pg_temp.push_det",
	"INSERT INTO tlsrpt.policies (hash, d, pr, type, pdomain, strings, mx)"
	" SELECT DISTINCT ON (hash) hash, d, pr, type, pdomain, strings, mx FROM pg_temp.push_pol"
	" ON CONFLICT (hash) DO NOTHING",
	"INSERT INTO tlsrpt.details (hash, code, sending_ip, mx_hostname, mx_helo, receiving_ip,"
	" additional, reason)"
	" SELECT DISTINCT ON (dhash) dhash, code, sending_ip, mx_hostname, mx_helo, receiving_ip,"
	" additional, reason FROM pg_temp.push_det ON CONFLICT (hash) DO NOTHING",
	"UPDATE pg_temp.push_pol t SET id = p.id FROM tlsrpt.policies p WHERE p.hash = t.hash",
	"UPDATE pg_temp.push_det t SET pid = p.id FROM tlsrpt.policies p WHERE p.hash = t.phash",
	"UPDATE pg_temp.push_det t SET did = d.id FROM tlsrpt.details d WHERE d.hash = t.dhash",
};

static const char *const counts_sql[] = {
	/* a key twice in one day file (a file from elsewhere) adds up, as in agg */
	"INSERT INTO tlsrpt.policy_counts (day, policy_id, host_id, successes, failures)"
	" SELECT $1::date, t.id, $2::integer, sum(t.successes)::bigint, sum(t.failures)::bigint"
	" FROM pg_temp.push_pol t GROUP BY t.id"
	" ON CONFLICT (day, policy_id, host_id) DO UPDATE"
	" SET successes = EXCLUDED.successes, failures = EXCLUDED.failures"
	" WHERE (tlsrpt.policy_counts.successes, tlsrpt.policy_counts.failures)"
	"   IS DISTINCT FROM (EXCLUDED.successes, EXCLUDED.failures)",
	"DELETE FROM tlsrpt.policy_counts c WHERE c.day = $1::date AND c.host_id = $2::integer"
	" AND NOT EXISTS (SELECT 1 FROM pg_temp.push_pol t WHERE t.id = c.policy_id)",
	"INSERT INTO tlsrpt.detail_counts (day, policy_id, detail_id, host_id, count)"
	" SELECT $1::date, t.pid, t.did, $2::integer, sum(t.count)::bigint FROM pg_temp.push_det t"
	" GROUP BY t.pid, t.did ON CONFLICT (day, policy_id, detail_id, host_id) DO UPDATE SET count = EXCLUDED.count"
	" WHERE tlsrpt.detail_counts.count IS DISTINCT FROM EXCLUDED.count",
	"DELETE FROM tlsrpt.detail_counts c WHERE c.day = $1::date AND c.host_id = $2::integer"
	" AND NOT EXISTS (SELECT 1 FROM pg_temp.push_det t"
	"   WHERE t.pid = c.policy_id AND t.did = c.detail_id)",
};

/* Rows of the dictionaries whose content differs from their key's. */
static const char *const verify_sql =
	"SELECT (SELECT count(*) FROM pg_temp.push_pol t JOIN tlsrpt.policies p ON p.hash = t.hash"
	"  WHERE (p.d, p.pr, p.type, p.pdomain, p.strings, p.mx)"
	"   IS DISTINCT FROM (t.d, t.pr, t.type, t.pdomain, t.strings, t.mx))"
	" + (SELECT count(*) FROM pg_temp.push_det t JOIN tlsrpt.details d ON d.hash = t.dhash"
	"  WHERE (d.code, d.sending_ip, d.mx_hostname, d.mx_helo, d.receiving_ip, d.additional,"
	"   d.reason) IS DISTINCT FROM (t.code, t.sending_ip, t.mx_hostname, t.mx_helo,"
	"   t.receiving_ip, t.additional, t.reason))";

static char *counters_json(const uint64_t *c)
{
	struct json_object *o = json_object_new_object();
	char *s;

	for (int i = 0; i < STC_MAX; i++) {
		const char *name = store_counter_name((enum store_counter)i);

		if (name == NULL)
			break;
		json_object_object_add(o, name, json_object_new_int64((int64_t)c[i]));
	}
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

/* The transaction of one day; the caller rolls back on failure. */
static enum db_status day_tx(struct db *db, int host_id, const struct store_view *v,
			     const struct push_rows *a, int64_t now, bool *changed,
			     struct push_stats *st, char *err, size_t errsz)
{
	const struct store_view_info *info = store_view_info(v);
	unsigned char snap[PUSH_HASH_LEN];
	char snaphex[2 * PUSH_HASH_LEN + 1], day[16], host[16], sessions[24], failures[24];
	const char *p[2] = { day, host };
	bool final = now >= (info->day + 1) * 86400 + ROLLOVER_MARGIN;
	struct db_res *r = NULL;
	enum db_status rc;
	uint64_t ok = 0, fail = 0;
	int64_t bad = 0;
	char *cj;

	*changed = false;
	store_format_day(day, sizeof(day), info->day);
	snprintf(host, sizeof(host), "%d", host_id);
	push_snapshot(a, info->counters, snap);
	hex(snap, sizeof(snap), snaphex);
	if ((rc = db_begin(db)) != DB_OK ||
	    (rc = db_exec(db, "SELECT 1 FROM tlsrpt.hosts WHERE id = $1 FOR UPDATE", 1, p + 1, NULL)) != DB_OK ||
	    (rc = db_exec(db, "SELECT encode(snapshot, 'hex'), final FROM tlsrpt.host_days"
			  " WHERE day = $1::date AND host_id = $2::integer", 2, p, &r)) != DB_OK)
		goto dberr;
	if (db_res_rows(r) == 1 && strcmp(db_res_get(r, 0, 0), snaphex) == 0) {
		bool was_final = strcmp(db_res_get(r, 0, 1), "t") == 0;

		db_res_free(r);
		st->unchanged++;
		if (was_final == final) {
			db_rollback(db);
			return DB_OK;
		}
		/* same content, but now known to be complete (or, after the clock
		 * went back, not complete after all) */
		if ((rc = db_exec(db, final ? "UPDATE tlsrpt.host_days SET final = true, pushed_at = now(),"
				  " pushes = pushes + 1 WHERE day = $1::date AND host_id = $2::integer" :
				  "UPDATE tlsrpt.host_days SET final = false, pushed_at = now(),"
				  " pushes = pushes + 1 WHERE day = $1::date AND host_id = $2::integer",
				  2, p, NULL)) != DB_OK ||
		    (rc = db_commit(db)) != DB_OK)
			goto dberr;
		return DB_OK;
	}
	db_res_free(r);
	r = NULL;
	if ((rc = db_exec_script(db, create_temps)) != DB_OK ||
	    (rc = copy_policies(db, a, st)) != DB_OK ||
	    (rc = copy_details(db, a, st)) != DB_OK)
		goto dberr;
	for (size_t i = 0; i < sizeof(dict_sql) / sizeof(dict_sql[0]); i++)
		if ((rc = db_exec(db, dict_sql[i], 0, NULL, NULL)) != DB_OK)
			goto dberr;
	if ((rc = db_exec(db, verify_sql, 0, NULL, &r)) != DB_OK)
		goto dberr;
	db_res_int(r, 0, 0, &bad);
	db_res_free(r);
	r = NULL;
	if (bad != 0) {
		snprintf(err, errsz, "%lld dictionary row(s) in the database do not match their key "
			 "(tlsrpt.policies/details changed by hand or corrupt); nothing pushed",
			 (long long)bad);
		return DB_ERROR;
	}
	for (size_t i = 0; i < sizeof(counts_sql) / sizeof(counts_sql[0]); i++)
		if ((rc = db_exec(db, counts_sql[i], 2, p, NULL)) != DB_OK)
			goto dberr;
	for (size_t i = 0; i < a->n; i++) {
		ok += a->v[i].p.successes;
		fail += a->v[i].p.failures;
	}
	snprintf(sessions, sizeof(sessions), "%llu", (unsigned long long)(ok + fail));
	snprintf(failures, sizeof(failures), "%llu", (unsigned long long)fail);
	if ((cj = counters_json(info->counters)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return DB_ERROR;
	}
	{
		const char *q[7] = { day, host, snaphex, final ? "t" : "f", sessions, failures, cj };

		rc = db_exec(db, "INSERT INTO tlsrpt.host_days (day, host_id, snapshot, final, sessions,"
			     " failures, counters) VALUES ($1::date, $2::integer, decode($3, 'hex'),"
			     " $4::boolean, $5::bigint, $6::bigint, $7::jsonb)"
			     " ON CONFLICT (day, host_id) DO UPDATE SET snapshot = EXCLUDED.snapshot,"
			     " final = EXCLUDED.final, pushed_at = now(),"
			     " pushes = tlsrpt.host_days.pushes + 1, sessions = EXCLUDED.sessions,"
			     " failures = EXCLUDED.failures, counters = EXCLUDED.counters", 7, q, NULL);
	}
	free(cj);
	if (rc != DB_OK ||
	    (rc = db_exec(db, "UPDATE tlsrpt.hosts SET last_push = now() WHERE id = $1::integer",
			  1, p + 1, NULL)) != DB_OK ||
	    (rc = db_commit(db)) != DB_OK)
		goto dberr;
	*changed = true;
	st->pushed++;
	return DB_OK;
dberr:
	db_res_free(r);
	snprintf(err, errsz, "%s", db_errmsg(db));
	return rc;
}

enum db_status push_day(struct db *db, int host_id, const struct store_view *v, int64_t now,
			bool *changed, struct push_stats *st, char *err, size_t errsz)
{
	struct push_rows r;
	enum db_status rc;

	*changed = false;
	if (rows_from_view(v, &r, err, errsz) != 0)
		return DB_ERROR;
	rc = day_tx(db, host_id, v, &r, now, changed, st, err, errsz);
	if (rc != DB_OK)
		db_rollback(db);
	rows_free(&r);
	return rc;
}

/* ---- all days ---- */

struct known_day {
	int64_t day;
	bool final;
};

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return a < b ? -1 : a > b;
}

/* Local day files, sorted; *n of at most 'max'. */
static int list_days(const char *state_dir, int64_t *days, size_t max, size_t *n,
		     char *err, size_t errsz)
{
	char p[4096];
	DIR *dir;
	struct dirent *de;

	*n = 0;
	snprintf(p, sizeof(p), "%s/days", state_dir);
	if ((dir = opendir(p)) == NULL) {
		if (errno == ENOENT)
			return 0;	/* no day yet */
		snprintf(err, errsz, "%s: %s", p, strerror(errno));
		return -1;
	}
	while ((de = readdir(dir)) != NULL && *n < max) {
		char d[11];
		int64_t day;

		if (strlen(de->d_name) != 17 || strcmp(de->d_name + 10, ".tlsrpt") != 0)
			continue;
		memcpy(d, de->d_name, 10);
		d[10] = '\0';
		if ((day = store_parse_day(d)) >= 0)
			days[(*n)++] = day;
	}
	closedir(dir);
	qsort(days, *n, sizeof(*days), cmp_i64);
	return 0;
}

#define MAX_LOCAL_DAYS 4096

enum db_status push_run(struct db *db, const char *state_dir, const struct push_opts *o,
			struct push_stats *st, char *err, size_t errsz)
{
	int64_t *days = calloc(MAX_LOCAL_DAYS, sizeof(*days));
	struct known_day *known = NULL;
	size_t ndays = 0, nknown = 0;
	struct db_res *r = NULL;
	enum db_status rc;
	int host_id = 0;
	int64_t complete;
	char host[16];
	const char *p[1] = { host };

	memset(st, 0, sizeof(*st));
	if (days == NULL) {
		snprintf(err, errsz, "out of memory");
		return DB_ERROR;
	}
	if (list_days(state_dir, days, MAX_LOCAL_DAYS, &ndays, err, errsz) != 0) {
		free(days);
		return DB_ERROR;
	}
	if ((rc = push_register(db, o->host, o->machine_id, &host_id, err, errsz)) != DB_OK) {
		free(days);
		return rc;
	}
	snprintf(host, sizeof(host), "%d", host_id);
	rc = db_exec(db, "SELECT (day - date '1970-01-01'), final FROM tlsrpt.host_days"
		     " WHERE host_id = $1::integer", 1, p, &r);
	if (rc != DB_OK) {
		snprintf(err, errsz, "%s", db_errmsg(db));
		free(days);
		return rc;
	}
	nknown = db_res_rows(r);
	known = calloc(nknown ? nknown : 1, sizeof(*known));
	for (size_t i = 0; known && i < nknown; i++) {
		db_res_int(r, i, 0, &known[i].day);
		known[i].final = strcmp(db_res_get(r, i, 1), "t") == 0;
	}
	db_res_free(r);
	if (known == NULL) {
		free(days);
		snprintf(err, errsz, "out of memory");
		return DB_ERROR;
	}
	rc = DB_OK;
	/* the last day that is over on this host; lowered below a day whose
	 * file could not be read or pushed */
	complete = (o->now - ROLLOVER_MARGIN) / 86400 - 1;
	for (size_t i = 0; i < ndays && rc != DB_UNAVAILABLE; i++) {
		int64_t day = days[i];
		char path[4096], verr[512], dname[16];
		struct store_view *v;
		bool final_in_db = false, changed = false;
		enum db_status drc = DB_OK;

		if (o->day >= 0 && day != o->day)
			continue;
		if (o->now - (day + 1) * 86400 > o->max_age)
			continue;
		st->days++;
		for (size_t k = 0; k < nknown; k++)
			if (known[k].day == day)
				final_in_db = known[k].final;
		/* final in the database and over by our clock: the file cannot
		 * change any more. (A clock that went back makes the day current
		 * again: then it is pushed, and marked not final.) */
		if (final_in_db && !o->all && o->now >= (day + 1) * 86400 + ROLLOVER_MARGIN) {
			st->final_skipped++;
			continue;
		}
		store_format_day(dname, sizeof(dname), day);
		if (store_day_path(path, sizeof(path), state_dir, day) != 0 ||
		    (v = store_view_open(path, verr, sizeof(verr))) == NULL) {
			log_err("%s: %s; day %s not pushed", path, verr, dname);
			st->bad_files++;
			if (day <= complete)
				complete = day - 1;
			continue;
		}
		for (int t = 0; t < MAX_TRIES; t++) {
			drc = push_day(db, host_id, v, o->now, &changed, st, err, errsz);
			if (drc != DB_RETRY)
				break;
			log_info("day %s: %s; trying again", dname, err);
		}
		store_view_close(v);
		if (drc == DB_OK) {
			if (changed)
				log_info("day %s pushed", dname);
			else
				log_debug("day %s unchanged", dname);
			continue;
		}
		if (day <= complete)
			complete = day - 1;
		if (drc == DB_UNAVAILABLE) {
			rc = drc;
			break;
		}
		log_err("day %s: %s", dname, err);
		rc = drc;
	}
	free(days);
	free(known);
	if (rc == DB_UNAVAILABLE || o->day >= 0)
		return rc;
	{
		/* every day up to 'complete' is pushed: the reporters need not
		 * wait for this host for any of them, with or without results */
		char fd[16];
		const char *q[2] = { host, fd };
		enum db_status frc;

		store_format_day(fd, sizeof(fd), complete);
		frc = db_exec(db, "UPDATE tlsrpt.hosts SET final_through = $2::date WHERE id = $1::integer",
			      2, q, NULL);
		if (frc != DB_OK) {
			snprintf(err, errsz, "%s", db_errmsg(db));
			return frc;
		}
	}
	return rc;
}
