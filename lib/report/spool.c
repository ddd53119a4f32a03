/*
 * spool - reports and their delivery state on disk. See spool.h.
 *
 * SECURITY: the spool belongs to the reporter's user (directories 0750,
 * files 0640). Its JSON files are our own output, but they are still read
 * defensively: a missing or mistyped member is treated as absent, and a
 * report whose files cannot be read is skipped with an error, never fatal.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "log.h"
#include "store.h"

#define SPOOL_BATCH 256		/* destinations per transport call */
#define SPOOL_MAX_ATTEMPTS 64	/* attempts kept per destination */
#define SPOOL_MAX_FILE (16u * 1024 * 1024)
#define PATHSZ 4096

void (*spool_test_hook)(const char *point);

static void hook(const char *point)
{
	if (spool_test_hook)
		spool_test_hook(point);
}

struct spool {
	char *dir;
	int lockfd;
	bool write;
	char **staged;		/* ids written to tmp/, not yet committed */
	size_t nstaged, capstaged;
};

void spool_policy_from_conf(const struct conf *c, struct spool_policy *p)
{
	p->retry_initial = conf_int(c, "retry_initial");
	p->retry_period = conf_int(c, "retry_period");
	p->suppress_period = conf_int(c, "suppress_period");
	p->retention = conf_int(c, "spool_retention");
}

/* ---- files ---- */

static int path(char *out, const struct spool *s, const char *a, const char *b, const char *c)
{
	int n = snprintf(out, PATHSZ, "%s/%s%s%s%s%s", s->dir, a, b ? "/" : "", b ? b : "",
			 c ? "/" : "", c ? c : "");

	if (n < 0 || n >= PATHSZ) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static void parent_of(const char *p, char *out)
{
	const char *sl = strrchr(p, '/');
	size_t n = sl ? (size_t)(sl - p) : 0;

	memcpy(out, p, n);
	out[n] = '\0';
	if (n == 0) {
		out[0] = '/';
		out[1] = '\0';
	}
}

/* Write 'len' bytes to 'p'. With 'atomic': durably, via p.tmp, fsync,
 * rename and fsync of the directory. Without: a plain write (staging; the
 * caller makes it durable with syncfs). */
static int write_file(const char *p, const void *data, size_t len, bool atomic)
{
	char tmp[PATHSZ], dir[PATHSZ];
	const char *target = p;
	const unsigned char *d = data;
	int fd;

	if (atomic) {
		int n = snprintf(tmp, sizeof(tmp), "%s.tmp", p);
		if (n < 0 || n >= (int)sizeof(tmp)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		target = tmp;
	}
	fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	while (len > 0) {
		ssize_t w = write(fd, d, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		d += w;
		len -= (size_t)w;
	}
	if (atomic && fsync(fd) != 0) {
		close(fd);
		return -1;
	}
	if (close(fd) != 0)
		return -1;
	if (atomic) {
		if (rename(tmp, p) != 0)
			return -1;
		parent_of(p, dir);
		return fsync_dir(dir);
	}
	return 0;
}

static int write_json(const char *p, struct json_object *o, bool atomic)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE);

	if (s == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return write_file(p, s, strlen(s), atomic);
}

static int read_file(const char *p, unsigned char **out, size_t *len)
{
	int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);	/* readers may be root */
	struct stat st;
	unsigned char *b;
	size_t got = 0;

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > SPOOL_MAX_FILE) {
		close(fd);
		errno = EFBIG;
		return -1;
	}
	b = malloc((size_t)st.st_size + 1);
	if (b == NULL) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	b[got] = '\0';
	*out = b;
	*len = got;
	return 0;
}

static struct json_object *read_json(const char *p)
{
	unsigned char *b;
	size_t len;
	struct json_object *o;

	if (read_file(p, &b, &len) != 0)
		return NULL;
	o = json_tokener_parse((const char *)b);
	free(b);
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/*
 * Remove entry 'name' of directory 'dfd' without following any link: a
 * file or a symlink is unlinked itself; a directory (a report's, which is
 * flat) is opened with O_NOFOLLOW, its entries unlinked relative to it,
 * and then removed. A nested directory is left (and reported as -1).
 */
static int rm_entry_at(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR)	/* a link or a file: the name goes */
			return unlinkat(dfd, name, 0);
		return -1;
	}
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(fd, de->d_name, 0) != 0)
			rc = -1;
	}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) != 0)
		rc = -1;
	return rc;
}

/* rm_entry_at on the last component of 'p', relative to its directory. */
static int rm_tree(const char *p)
{
	char dir[PATHSZ];
	const char *name = strrchr(p, '/');
	int dfd, rc;

	if (name == NULL || name[1] == '\0') {
		errno = EINVAL;
		return -1;
	}
	parent_of(p, dir);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -1;
	rc = rm_entry_at(dfd, name + 1);
	close(dfd);
	return rc;
}

/* ---- json helpers ---- */

static int64_t jint(struct json_object *o, const char *k, int64_t def)
{
	struct json_object *v;

	if (o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int))
		return json_object_get_int64(v);
	return def;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

static void jset_int(struct json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void jset_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static bool valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 40)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') || id[i] == '-'))
			return false;
	return true;
}

/* ---- open / close ---- */

static int mkdir_p(const char *p)
{
	char buf[PATHSZ];
	size_t n = strlen(p);

	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, p, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] == '/' || buf[i] == '\0') {
			char c = buf[i];
			buf[i] = '\0';
			if (mkdir(buf, 0750) != 0 && errno != EEXIST)
				return -1;
			buf[i] = c;
		}
	}
	return 0;
}

struct spool *spool_open(const char *dir, bool write, char *err, size_t errsz)
{
	struct spool *s = calloc(1, sizeof(*s));
	static const char *const subs[] = { "reports", "days", "suppressed", "tmp" };
	char p[PATHSZ];

	if (s == NULL || (s->dir = strdup(dir)) == NULL) {
		free(s);
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	s->lockfd = -1;
	s->write = write;
	if (write) {
		for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
			if (path(p, s, subs[i], NULL, NULL) != 0 || mkdir_p(p) != 0) {
				snprintf(err, errsz, "%s: %s", p, strerror(errno));
				spool_close(s);
				return NULL;
			}
		}
		if (path(p, s, "lock", NULL, NULL) != 0 ||
		    (s->lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
			snprintf(err, errsz, "%s: %s", p, strerror(errno));
			spool_close(s);
			return NULL;
		}
		if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
			snprintf(err, errsz, "%s: %s", p, errno == EWOULDBLOCK ?
				 "another tlsrpt-report (or spool retry) is running" : strerror(errno));
			spool_close(s);
			return NULL;
		}
		/* reports half-written by a crashed run: removed relative to tmp/,
		 * never through a link planted there */
		if (path(p, s, "tmp", NULL, NULL) == 0) {
			int tfd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			DIR *d = tfd >= 0 ? fdopendir(tfd) : NULL;
			struct dirent *de;

			if (tfd >= 0 && d == NULL)
				close(tfd);
			while (d && (de = readdir(d)) != NULL) {
				if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
					continue;
				if (rm_entry_at(tfd, de->d_name) != 0)
					log_warn("spool: cannot remove %s/%s: %s", p, de->d_name,
						 strerror(errno));
			}
			if (d)
				closedir(d);
		}
	} else {
		struct stat st;

		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errsz, "%s: %s", dir, errno ? strerror(errno) : "not a directory");
			spool_close(s);
			return NULL;
		}
	}
	return s;
}

void spool_close(struct spool *s)
{
	if (s == NULL)
		return;
	if (s->lockfd >= 0)
		close(s->lockfd);
	for (size_t i = 0; i < s->nstaged; i++)
		free(s->staged[i]);
	free(s->staged);
	free(s->dir);
	free(s);
}

/* ---- days ---- */

static int day_path(char *out, const struct spool *s, int64_t day)
{
	char name[16];

	store_format_day(name, sizeof(name), day);
	return path(out, s, "days", name, NULL);
}

bool spool_day_done(struct spool *s, int64_t day)
{
	char p[PATHSZ];

	return day_path(p, s, day) == 0 && access(p, F_OK) == 0;
}

int spool_day_mark(struct spool *s, int64_t day, int64_t now, size_t nreports,
		   char *err, size_t errsz)
{
	char p[PATHSZ];
	struct json_object *o = json_object_new_object();
	int rc;

	if (o == NULL || day_path(p, s, day) != 0) {
		json_object_put(o);
		snprintf(err, errsz, "day mark: %s", strerror(errno ? errno : ENOMEM));
		return -1;
	}
	jset_int(o, "reported", now);
	jset_int(o, "reports", (int64_t)nreports);
	rc = write_json(p, o, true);
	json_object_put(o);
	if (rc != 0)
		snprintf(err, errsz, "%s: %s", p, strerror(errno));
	return rc;
}

/* ---- suppression list ---- */

static void uri_hash(const char *uri, char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	memset(md, 0, sizeof(md));
	EVP_Digest(uri, strlen(uri), md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 16; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	memcpy(out + 32, ".json", 6);
}

static int suppressed_path(char *out, const struct spool *s, const char *uri)
{
	char name[40];

	uri_hash(uri, name);
	return path(out, s, "suppressed", name, NULL);
}

/* Suppressed until when (0: not suppressed); 'why' gets the reason. */
static int64_t suppressed_until(struct spool *s, const char *uri, int64_t now,
				char *why, size_t whysz)
{
	char p[PATHSZ];
	struct json_object *o;
	int64_t until = 0;

	if (suppressed_path(p, s, uri) != 0 || (o = read_json(p)) == NULL)
		return 0;
	if (jstr(o, "uri") && strcmp(jstr(o, "uri"), uri) == 0 && jint(o, "until", 0) > now) {
		until = jint(o, "until", 0);
		snprintf(why, whysz, "%s", jstr(o, "reason") ? jstr(o, "reason") : "");
	}
	json_object_put(o);
	return until;
}

static int suppress(struct spool *s, const char *uri, int64_t until, const char *reason)
{
	char p[PATHSZ];
	struct json_object *o = json_object_new_object();
	int rc = -1;

	if (o && suppressed_path(p, s, uri) == 0) {
		jset_str(o, "uri", uri);
		jset_int(o, "until", until);
		jset_str(o, "reason", reason);
		rc = write_json(p, o, true);
	}
	json_object_put(o);
	return rc;
}

static void unsuppress(struct spool *s, const char *uri)
{
	char p[PATHSZ];

	if (suppressed_path(p, s, uri) == 0)
		unlink(p);
}

/* ---- adding ---- */

bool spool_has(struct spool *s, const char *id)
{
	char p[PATHSZ];

	return valid_id(id) && path(p, s, "reports", id, NULL) == 0 && access(p, F_OK) == 0;
}

static struct json_object *new_dest(const struct spool_dest_spec *d, int64_t now)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	jset_str(o, "uri", d->uri);
	jset_str(o, "scheme", d->scheme == RUA_MAILTO ? "mailto" : "https");
	if (d->address)
		jset_str(o, "address", d->address);
	jset_str(o, "state", "pending");
	jset_int(o, "next-attempt", now);
	json_object_object_add(o, "attempts", json_object_new_array());
	return o;
}

int spool_stage(struct spool *s, const struct report *r,
		const struct spool_dest_spec *dests, size_t ndests,
		const char *source, int64_t now, bool *existed,
		char *err, size_t errsz)
{
	char tmpdir[PATHSZ], p[PATHSZ], name[32], day[16], tname[64];
	struct json_object *meta = NULL;

	*existed = false;
	if (spool_has(s, r->spool_id)) {
		*existed = true;
		return 0;
	}
	for (size_t i = 0; i < s->nstaged; i++)
		if (strcmp(s->staged[i], r->spool_id) == 0) {
			*existed = true;
			return 0;
		}
	if (s->nstaged == s->capstaged) {
		size_t cap = s->capstaged ? s->capstaged * 2 : 64;
		char **n = realloc(s->staged, cap * sizeof(*n));

		if (n == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		s->staged = n;
		s->capstaged = cap;
	}
	snprintf(tname, sizeof(tname), "%s.%ld", r->spool_id, (long)getpid());
	if (path(tmpdir, s, "tmp", tname, NULL) != 0)
		goto fail;
	rm_tree(tmpdir);
	if (mkdir(tmpdir, 0750) != 0)
		goto fail;
	/* no fsync per file: spool_commit makes all staged reports durable at once */
	if (path(p, s, "tmp", tname, "report.json.gz") != 0 || write_file(p, r->gz, r->gzlen, false) != 0)
		goto fail;
	meta = json_object_new_object();
	if (meta == NULL)
		goto fail;
	store_format_day(day, sizeof(day), r->day);
	jset_str(meta, "id", r->spool_id);
	jset_str(meta, "report-id", r->report_id);
	jset_str(meta, "policy-domain", r->domain);
	jset_str(meta, "day", day);
	jset_int(meta, "begin", r->file.begin);
	jset_int(meta, "end", r->file.end);
	jset_str(meta, "record", r->record);
	jset_str(meta, "filename", r->filename);
	jset_str(meta, "submitter", r->id.submitter);
	jset_str(meta, "organization", r->id.organization);
	jset_str(meta, "contact", r->id.contact);
	jset_int(meta, "successes", (int64_t)r->file.successes);
	jset_int(meta, "failures", (int64_t)r->file.failures);
	jset_int(meta, "created", now);
	jset_str(meta, "destination-source", source);
	jset_int(meta, "destinations", (int64_t)ndests);
	if (path(p, s, "tmp", tname, "meta.json") != 0 || write_json(p, meta, false) != 0)
		goto fail;
	for (size_t i = 0; i < ndests; i++) {
		struct json_object *d = new_dest(&dests[i], now);
		int rc;

		snprintf(name, sizeof(name), "dest-%zu.json", i);
		if (d == NULL || path(p, s, "tmp", tname, name) != 0) {
			json_object_put(d);
			goto fail;
		}
		rc = write_json(p, d, false);
		json_object_put(d);
		if (rc != 0)
			goto fail;
	}
	if ((s->staged[s->nstaged] = strdup(r->spool_id)) == NULL)
		goto fail;
	s->nstaged++;
	json_object_put(meta);
	return 0;
fail:
	snprintf(err, errsz, "spool %s: %s", r->spool_id, strerror(errno ? errno : ENOMEM));
	json_object_put(meta);
	rm_tree(tmpdir);
	return -1;
}

int spool_commit(struct spool *s, char *err, size_t errsz)
{
	char p[PATHSZ], from[PATHSZ], to[PATHSZ], tname[64];
	int fd, rc = 0;

	if (s->nstaged == 0)
		return 0;
	/* 1. everything staged (files and directory entries) durable at once */
	if (path(p, s, "tmp", NULL, NULL) != 0 || (fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errsz, "spool: %s", strerror(errno));
		rc = -1;
		goto out;
	}
	if (syncfs(fd) != 0) {
		snprintf(err, errsz, "spool: syncfs: %s", strerror(errno));
		close(fd);
		rc = -1;
		goto out;
	}
	close(fd);
	hook("add-tmp-written");
	/* 2. publish each complete report by one rename */
	for (size_t i = 0; i < s->nstaged; i++) {
		snprintf(tname, sizeof(tname), "%s.%ld", s->staged[i], (long)getpid());
		if (path(from, s, "tmp", tname, NULL) != 0 || path(to, s, "reports", s->staged[i], NULL) != 0)
			continue;
		if (rename(from, to) != 0) {
			if (errno == EEXIST || errno == ENOTEMPTY) {
				rm_tree(from);
				continue;
			}
			snprintf(err, errsz, "spool %s: %s", s->staged[i], strerror(errno));
			rc = -1;
			goto out;
		}
	}
	/* 3. the renames durable */
	if (path(p, s, "reports", NULL, NULL) != 0 || fsync_dir(p) != 0) {
		snprintf(err, errsz, "spool: %s", strerror(errno));
		rc = -1;
		goto out;
	}
	hook("add-renamed");
out:
	for (size_t i = 0; i < s->nstaged; i++)
		free(s->staged[i]);
	s->nstaged = 0;
	return rc;
}

int spool_add(struct spool *s, const struct report *r,
	      const struct spool_dest_spec *dests, size_t ndests,
	      const char *source, int64_t now, bool *existed,
	      char *err, size_t errsz)
{
	if (spool_stage(s, r, dests, ndests, source, now, existed, err, errsz) != 0)
		return -1;
	return spool_commit(s, err, errsz);
}

/* ---- one report loaded for delivery ---- */

struct loaded {
	char id[48];
	struct json_object *meta;
	struct report_file file;
	unsigned char *gz;
	size_t ndest;
	struct json_object *dest[TLSRPT_MAX_RUA];
};

static void loaded_free(struct loaded *l)
{
	if (l == NULL)
		return;
	json_object_put(l->meta);
	free(l->gz);
	for (size_t i = 0; i < l->ndest; i++)
		json_object_put(l->dest[i]);
	free(l);
}

static struct loaded *load(struct spool *s, const char *id, bool with_gz)
{
	struct loaded *l = calloc(1, sizeof(*l));
	char p[PATHSZ], name[32];
	int64_t n;

	if (l == NULL || !valid_id(id)) {
		free(l);
		return NULL;
	}
	snprintf(l->id, sizeof(l->id), "%s", id);
	if (!spool_has(s, id)) {
		free(l);
		return NULL;
	}
	if (path(p, s, "reports", id, "meta.json") != 0 || (l->meta = read_json(p)) == NULL)
		goto bad;
	n = jint(l->meta, "destinations", 0);
	if (n < 0 || n > TLSRPT_MAX_RUA)
		goto bad;
	for (int64_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "dest-%lld.json", (long long)i);
		if (path(p, s, "reports", id, name) != 0 ||
		    (l->dest[l->ndest] = read_json(p)) == NULL)
			goto bad;
		l->ndest++;
	}
	if (with_gz) {
		if (path(p, s, "reports", id, "report.json.gz") != 0 ||
		    read_file(p, &l->gz, &l->file.gzlen) != 0)
			goto bad;
		l->file.gz = l->gz;
	}
	l->file.policy_domain = jstr(l->meta, "policy-domain");
	l->file.submitter = jstr(l->meta, "submitter");
	l->file.organization = jstr(l->meta, "organization");
	l->file.contact = jstr(l->meta, "contact");
	l->file.report_id = jstr(l->meta, "report-id");
	l->file.filename = jstr(l->meta, "filename");
	l->file.begin = jint(l->meta, "begin", 0);
	l->file.end = jint(l->meta, "end", 0);
	l->file.successes = (uint64_t)jint(l->meta, "successes", 0);
	l->file.failures = (uint64_t)jint(l->meta, "failures", 0);
	if (!l->file.policy_domain || !l->file.submitter || !l->file.organization ||
	    !l->file.contact || !l->file.report_id || !l->file.filename)
		goto bad;
	return l;
bad:
	log_err("spool: report %s is unreadable or incomplete; skipped", id);
	loaded_free(l);
	return NULL;
}

static int save_dest(struct spool *s, const struct loaded *l, size_t i)
{
	char p[PATHSZ], name[32];

	snprintf(name, sizeof(name), "dest-%zu.json", i);
	if (path(p, s, "reports", l->id, name) != 0)
		return -1;
	return write_json(p, l->dest[i], true);
}

/* No destination of 'l' is pending any more. */
static bool all_final(const struct loaded *l)
{
	for (size_t i = 0; i < l->ndest; i++) {
		const char *st = jstr(l->dest[i], "state");

		if (st == NULL || strcmp(st, "pending") == 0 || jint(l->dest[i], "in-flight", -1) >= 0)
			return false;
	}
	return true;
}

/* reports/ID/done: a hint that lets later runs skip the report without
 * reading its state; losing it in a crash only costs a re-read. */
static int done_path(char *out, const struct spool *s, const char *id)
{
	return path(out, s, "reports", id, "done");
}

static void mark_done(struct spool *s, const char *id)
{
	char p[PATHSZ];
	int fd;

	if (done_path(p, s, id) == 0 && (fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0640)) >= 0)
		close(fd);
}

static struct json_object *attempts_of(struct json_object *d)
{
	struct json_object *a;

	if (json_object_object_get_ex(d, "attempts", &a) && json_object_is_type(a, json_type_array))
		return a;
	a = json_object_new_array();
	json_object_object_add(d, "attempts", a);
	return a;
}

static void add_attempt(struct json_object *d, int64_t start, int64_t end, bool ok,
			long status, const char *detail)
{
	struct json_object *a = attempts_of(d), *e = json_object_new_object();

	if (e == NULL)
		return;
	jset_int(e, "start", start);
	jset_int(e, "end", end);
	json_object_object_add(e, "ok", json_object_new_boolean(ok));
	jset_int(e, "status", status);
	jset_str(e, "detail", detail);
	if (json_object_array_length(a) >= SPOOL_MAX_ATTEMPTS)
		json_object_array_del_idx(a, 0, 1);
	json_object_array_add(a, e);
}

/* Failed attempts of the current retry period (operator notes excluded). */
static size_t failed_attempts(struct json_object *d)
{
	struct json_object *a = attempts_of(d);
	int64_t first = jint(d, "first-attempt", INT64_MIN);
	size_t n = 0;

	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *e = json_object_array_get_idx(a, i), *ok, *op;

		if (json_object_object_get_ex(e, "operator", &op) && json_object_get_boolean(op))
			continue;
		if (jint(e, "start", 0) < first)
			continue;
		if (json_object_object_get_ex(e, "ok", &ok) && !json_object_get_boolean(ok))
			n++;
	}
	return n;
}

/* Record a failure and decide what comes next. */
static void fail_dest(struct spool *s, struct json_object *d, int64_t now,
		      const struct spool_policy *p, bool permanent, const char *detail,
		      struct spool_stats *st)
{
	int64_t first = jint(d, "first-attempt", now), delay, last = first + p->retry_period;
	size_t k = failed_attempts(d);
	const char *uri = jstr(d, "uri");

	if (permanent) {
		jset_str(d, "state", "suppressed");
		json_object_object_del(d, "next-attempt");
		if (p->suppress_period > 0 && uri)
			suppress(s, uri, now + p->suppress_period, detail);
		st->suppressed++;
		return;
	}
	delay = p->retry_initial;
	for (size_t i = 1; i < k && delay < p->retry_period; i++)
		delay *= 2;
	if (now >= last) {
		jset_str(d, "state", "given-up");
		json_object_object_del(d, "next-attempt");
		st->given_up++;
		return;
	}
	jset_int(d, "next-attempt", now + delay < last ? now + delay : last);
	st->failed++;
}

/* Attempts that were begun but never recorded: a crash. */
static int recover_in_flight(struct spool *s, struct loaded *l, size_t i, int64_t now,
			     const struct spool_policy *p, struct spool_stats *st)
{
	struct json_object *d = l->dest[i];
	int64_t start = jint(d, "in-flight", -1);

	if (start < 0)
		return 0;
	add_attempt(d, start, now, false, 0, "interrupted: the outcome is unknown (crash during the attempt)");
	json_object_object_del(d, "in-flight");
	st->interrupted++;
	fail_dest(s, d, now, p, false, "interrupted", st);
	/* at-least-once: due again now, unless given up */
	if (strcmp(jstr(d, "state"), "pending") == 0)
		jset_int(d, "next-attempt", now);
	return save_dest(s, l, i);
}

struct job_ref {
	struct loaded *l;
	size_t dest;
};

/* Attempt one batch: record in-flight, send, record outcomes. */
/* syncfs of the spool's file system. */
static int spool_syncfs(struct spool *s)
{
	int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = syncfs(fd);
	close(fd);
	return rc;
}

/*
 * Write the state of every destination in 'refs' at once, durably and each
 * atomically: all dest-N.json.tmp written, one syncfs, all renamed, one
 * syncfs. Two syncs per batch instead of two fsyncs per destination.
 */
static int save_dests(struct spool *s, const struct job_ref *refs, size_t n)
{
	char p[PATHSZ], tmp[PATHSZ + 8], name[32];

	for (size_t i = 0; i < n; i++) {
		const char *txt = json_object_to_json_string_ext(refs[i].l->dest[refs[i].dest],
			JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);

		snprintf(name, sizeof(name), "dest-%zu.json", refs[i].dest);
		if (txt == NULL || path(p, s, "reports", refs[i].l->id, name) != 0)
			return -1;
		snprintf(tmp, sizeof(tmp), "%s.tmp", p);
		if (write_file(tmp, txt, strlen(txt), false) != 0)
			return -1;
	}
	if (spool_syncfs(s) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "dest-%zu.json", refs[i].dest);
		if (path(p, s, "reports", refs[i].l->id, name) != 0)
			return -1;
		snprintf(tmp, sizeof(tmp), "%s.tmp", p);
		if (rename(tmp, p) != 0)
			return -1;
	}
	return spool_syncfs(s);
}

/* Attempt one batch: record in-flight, send, record outcomes. */
static int run_batch(struct spool *s, struct spool_job *jobs, struct job_ref *refs, size_t n,
		     int64_t now, const struct spool_policy *p,
		     const struct spool_transport *t, struct spool_stats *st)
{
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = refs[i].l->dest[refs[i].dest];

		if (jint(d, "first-attempt", -1) < 0)
			jset_int(d, "first-attempt", now);
		jset_int(d, "in-flight", now);
	}
	if (save_dests(s, refs, n) != 0) {
		/* nothing was sent; attempts recorded so far are recovered next run */
		log_err("spool: cannot record the attempts: %s", strerror(errno));
		return -1;
	}
	hook("attempt-begun");
	t->send(t->ctx, jobs, n, now);
	hook("attempt-sent");
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = refs[i].l->dest[refs[i].dest];
		const struct delivery_result *r = &jobs[i].res;
		char pd[600];

		log_printable(pd, sizeof(pd), r->detail, strnlen(r->detail, sizeof(r->detail)));
		json_object_object_del(d, "in-flight");
		add_attempt(d, now, now, r->ok, r->status, pd);
		st->attempted++;
		if (r->ok) {
			jset_str(d, "state", "delivered");
			jset_int(d, "delivered-at", now);
			jset_str(d, "delivered-by", jobs[i].scheme == RUA_MAILTO ? "mail" : "https");
			jset_str(d, "response", pd);
			json_object_object_del(d, "next-attempt");
			st->delivered++;
			log_info("report %s delivered to %s: %s", refs[i].l->id, jobs[i].uri, pd);
		} else {
			fail_dest(s, d, now, p, r->permanent, pd, st);
			log_warn("report %s to %s failed%s: %s (%s)", refs[i].l->id, jobs[i].uri,
				 r->permanent ? " permanently" : "", pd, jstr(d, "state"));
		}
	}
	if (save_dests(s, refs, n) != 0) {
		log_err("spool: cannot record the outcomes: %s", strerror(errno));
		return -1;
	}
	hook("attempt-recorded");
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int spool_ids(struct spool *s, char ***ids, size_t *n)
{
	char p[PATHSZ];
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t cnt = 0, cap = 0;

	*ids = NULL;
	*n = 0;
	if (path(p, s, "reports", NULL, NULL) != 0)
		return -1;
	d = opendir(p);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (!valid_id(de->d_name))
			continue;
		if (cnt == cap) {
			char **nv = realloc(v, (cap ? cap * 2 : 64) * sizeof(*v));
			if (nv == NULL)
				break;
			v = nv;
			cap = cap ? cap * 2 : 64;
		}
		if ((v[cnt] = strdup(de->d_name)) == NULL)
			break;
		cnt++;
	}
	closedir(d);
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), cmp_str);
	*ids = v;
	*n = cnt;
	return 0;
}

void spool_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* Is destination 'd' due at 'now'? Marks it suppressed when the list says so. */
static bool due(struct spool *s, struct loaded *l, size_t i, int64_t now, struct spool_stats *st)
{
	struct json_object *d = l->dest[i];
	const char *state = jstr(d, "state"), *uri = jstr(d, "uri");
	char why[300];
	int64_t until;

	if (state == NULL || uri == NULL || strcmp(state, "pending") != 0 ||
	    jint(d, "next-attempt", 0) > now)
		return false;
	until = suppressed_until(s, uri, now, why, sizeof(why));
	if (until > 0) {
		char msg[400];

		snprintf(msg, sizeof(msg), "not attempted: suppressed until %lld after a permanent failure: %s",
			 (long long)until, why);
		add_attempt(d, now, now, false, 0, msg);
		jset_str(d, "state", "suppressed");
		json_object_object_del(d, "next-attempt");
		st->suppressed++;
		if (save_dest(s, l, i) != 0)
			log_err("spool %s: %s", l->id, strerror(errno));
		return false;
	}
	return true;
}

int spool_deliver_due(struct spool *s, int64_t now, const struct spool_policy *p,
		      const struct spool_transport *t, struct spool_stats *st)
{
	char **ids;
	size_t nids, njobs = 0, nloaded = 0;
	struct spool_job *jobs = calloc(SPOOL_BATCH, sizeof(*jobs));
	struct job_ref *refs = calloc(SPOOL_BATCH, sizeof(*refs));
	struct loaded **batch = calloc(SPOOL_BATCH, sizeof(*batch));
	int rc = 0;

	memset(st, 0, sizeof(*st));
	if (jobs == NULL || refs == NULL || batch == NULL || spool_ids(s, &ids, &nids) != 0) {
		free(jobs);
		free(refs);
		free(batch);
		return -1;
	}
	for (size_t r = 0; r < nids && rc == 0; r++) {
		struct loaded *l;
		bool any = false;
		char dp[PATHSZ];

		if (done_path(dp, s, ids[r]) == 0 && access(dp, F_OK) == 0)
			continue;
		l = load(s, ids[r], false);
		if (l == NULL)
			continue;
		for (size_t i = 0; i < l->ndest; i++) {
			if (recover_in_flight(s, l, i, now, p, st) != 0) {
				rc = -1;
				break;
			}
			if (due(s, l, i, now, st))
				any = true;
		}
		if (!any || rc != 0) {
			if (rc == 0 && all_final(l))
				mark_done(s, l->id);
			loaded_free(l);
			continue;
		}
		/* a batch has room for every destination of this report */
		if (njobs + l->ndest > SPOOL_BATCH || nloaded == SPOOL_BATCH) {
			rc = run_batch(s, jobs, refs, njobs, now, p, t, st);
			for (size_t k = 0; k < nloaded; k++) {
				if (rc == 0 && all_final(batch[k]))
					mark_done(s, batch[k]->id);
				loaded_free(batch[k]);
			}
			njobs = nloaded = 0;
			memset(jobs, 0, SPOOL_BATCH * sizeof(*jobs));
			if (rc != 0) {
				loaded_free(l);
				break;
			}
		}
		loaded_free(l);
		l = load(s, ids[r], true);
		if (l == NULL)
			continue;
		batch[nloaded++] = l;
		for (size_t i = 0; i < l->ndest; i++) {
			struct json_object *d = l->dest[i];
			const char *state = jstr(d, "state");

			if (state == NULL || strcmp(state, "pending") != 0 ||
			    jint(d, "next-attempt", 0) > now)
				continue;
			jobs[njobs].file = &l->file;
			jobs[njobs].scheme = strcmp(jstr(d, "scheme") ? jstr(d, "scheme") : "", "mailto") == 0
				? RUA_MAILTO : RUA_HTTPS;
			jobs[njobs].uri = jstr(d, "uri");
			jobs[njobs].address = jstr(d, "address");
			if (jobs[njobs].scheme == RUA_MAILTO && jobs[njobs].address == NULL)
				continue;
			refs[njobs].l = l;
			refs[njobs].dest = i;
			njobs++;
		}
	}
	if (rc == 0 && njobs > 0)
		rc = run_batch(s, jobs, refs, njobs, now, p, t, st);
	for (size_t k = 0; k < nloaded; k++) {
		if (rc == 0 && all_final(batch[k]))
			mark_done(s, batch[k]->id);
		loaded_free(batch[k]);
	}
	spool_ids_free(ids, nids);
	free(jobs);
	free(refs);
	free(batch);
	return rc;
}

int spool_retry(struct spool *s, const char *id, int64_t now, size_t *changed,
		char *err, size_t errsz)
{
	struct loaded *l = load(s, id, false);

	char dp[PATHSZ];

	*changed = 0;
	if (l == NULL) {
		snprintf(err, errsz, "no report %s in the spool", id);
		return -1;
	}
	if (done_path(dp, s, id) == 0)
		unlink(dp);
	for (size_t i = 0; i < l->ndest; i++) {
		struct json_object *d = l->dest[i];
		const char *state = jstr(d, "state");
		bool failed_pending = state && strcmp(state, "pending") == 0 && failed_attempts(d) > 0;

		if (state == NULL || (strcmp(state, "given-up") != 0 && strcmp(state, "suppressed") != 0 &&
				      !failed_pending))
			continue;
		if (jstr(d, "uri"))
			unsuppress(s, jstr(d, "uri"));
		jset_str(d, "state", "pending");
		jset_int(d, "next-attempt", 0);		/* due at once, whatever the clock */
		json_object_object_del(d, "first-attempt");	/* a fresh retry period */
		add_attempt(d, now, now, false, 0, "operator: spool retry");
		json_object_object_add(json_object_array_get_idx(attempts_of(d),
			json_object_array_length(attempts_of(d)) - 1), "operator", json_object_new_boolean(1));
		if (save_dest(s, l, i) != 0) {
			snprintf(err, errsz, "spool %s: %s", id, strerror(errno));
			loaded_free(l);
			return -1;
		}
		(*changed)++;
	}
	loaded_free(l);
	return 0;
}

int spool_prune(struct spool *s, int64_t now, const struct spool_policy *p, size_t *removed)
{
	char **ids, pth[PATHSZ];
	size_t n;
	int64_t keep = p->retention > p->retry_period + 86400 ? p->retention : p->retry_period + 86400;
	DIR *d;
	struct dirent *de;

	*removed = 0;
	if (spool_ids(s, &ids, &n) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct json_object *meta;
		int64_t created;

		if (path(pth, s, "reports", ids[i], "meta.json") != 0)
			continue;
		meta = read_json(pth);
		created = jint(meta, "created", -1);
		json_object_put(meta);
		if (created < 0 || created >= now - keep)
			continue;	/* an unreadable report stays for the operator */
		/* move it out of reports/ in one step, then delete */
		{
			char from[PATHSZ], to[PATHSZ], name[64];

			snprintf(name, sizeof(name), "prune-%s", ids[i]);
			if (path(from, s, "reports", ids[i], NULL) != 0 || path(to, s, "tmp", name, NULL) != 0)
				continue;
			if (rename(from, to) != 0 || rm_tree(to) != 0) {
				log_err("spool: cannot prune %s: %s", ids[i], strerror(errno));
				continue;
			}
		}
		(*removed)++;
	}
	spool_ids_free(ids, n);
	/* day marks: kept 2 days longer than the reporter looks back */
	if (path(pth, s, "days", NULL, NULL) == 0 && (d = opendir(pth)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			int64_t day = store_parse_day(de->d_name);
			char f[PATHSZ];

			if (day >= 0 && (day + 2) * 86400 + p->retention < now &&
			    path(f, s, "days", de->d_name, NULL) == 0)
				unlink(f);
		}
		closedir(d);
	}
	/* expired suppressions */
	if (path(pth, s, "suppressed", NULL, NULL) == 0 && (d = opendir(pth)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char f[PATHSZ];
			struct json_object *o;

			if (de->d_name[0] == '.' || path(f, s, "suppressed", de->d_name, NULL) != 0)
				continue;
			o = read_json(f);
			if (o == NULL || jint(o, "until", 0) <= now)
				unlink(f);
			json_object_put(o);
		}
		closedir(d);
	}
	return 0;
}

struct json_object *spool_entry(struct spool *s, const char *id)
{
	struct loaded *l = load(s, id, false);
	struct json_object *o, *arr;
	size_t delivered = 0, pending = 0;
	const char *status;

	if (l == NULL)
		return NULL;
	o = json_object_new_object();
	arr = json_object_new_array();
	if (o == NULL || arr == NULL) {
		json_object_put(o);
		json_object_put(arr);
		loaded_free(l);
		return NULL;
	}
	for (size_t i = 0; i < l->ndest; i++) {
		const char *st = jstr(l->dest[i], "state");

		if (st && strcmp(st, "delivered") == 0)
			delivered++;
		else if (st && strcmp(st, "pending") == 0)
			pending++;
		json_object_array_add(arr, json_object_get(l->dest[i]));
	}
	status = l->ndest == 0 ? "no-destinations" : delivered ? "delivered" : pending ? "pending" : "failed";
	jset_str(o, "id", l->id);
	jset_str(o, "status", status);
	json_object_object_add(o, "meta", json_object_get(l->meta));
	json_object_object_add(o, "destinations", arr);
	loaded_free(l);
	return o;
}

int spool_report_gz(struct spool *s, const char *id, unsigned char **gz, size_t *len)
{
	char p[PATHSZ];

	if (!valid_id(id) || path(p, s, "reports", id, "report.json.gz") != 0)
		return -1;
	return read_file(p, gz, len);
}

struct json_object *spool_suppressions(struct spool *s, int64_t now)
{
	struct json_object *arr = json_object_new_array();
	char p[PATHSZ], f[PATHSZ];
	struct dirent *de;
	DIR *d;

	if (arr == NULL || path(p, s, "suppressed", NULL, NULL) != 0 || (d = opendir(p)) == NULL)
		return arr;
	while ((de = readdir(d)) != NULL) {
		struct json_object *o, *e;
		const char *uri;

		if (de->d_name[0] == '.' || path(f, s, "suppressed", de->d_name, NULL) != 0 ||
		    (o = read_json(f)) == NULL)
			continue;
		uri = jstr(o, "uri");
		if (uri && jint(o, "until", 0) > now && (e = json_object_new_object()) != NULL) {
			jset_str(e, "uri", uri);
			jset_int(e, "until", jint(o, "until", 0));
			jset_str(e, "reason", jstr(o, "reason") ? jstr(o, "reason") : "");
			json_object_array_add(arr, e);
		}
		json_object_put(o);
	}
	closedir(d);
	return arr;
}
