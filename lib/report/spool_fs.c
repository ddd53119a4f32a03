/*
 * spool_fs - the spool's records in files under spool_directory. See
 * spool_fs.h for the layout and the atomicity of each operation.
 *
 * SECURITY: the spool belongs to the reporter's user (directories 0750,
 * files 0640). Every name built here comes from a validated ID, a day
 * number or a hash, never from a record's contents. Files are read with a
 * size limit and parsed as JSON objects; anything else reads as absent.
 */
#include "spool_fs.h"
#include "fsio.h"
#include "spool_store.h"

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

#define SPOOL_MAX_FILE (16u * 1024 * 1024)
#define PATHSZ 4096

void (*spool_fs_test_hook)(const char *point);

static void hook(const char *point)
{
	if (spool_fs_test_hook)
		spool_fs_test_hook(point);
}

struct spool_fs {
	char *dir;
	int lockfd;
	char **staged;		/* ids written to tmp/, not yet committed */
	size_t nstaged, capstaged;
};

/* ---- files ---- */

static int path(char *out, const struct spool_fs *fs, const char *a, const char *b, const char *c)
{
	int n = snprintf(out, PATHSZ, "%s/%s%s%s%s%s", fs->dir, a, b ? "/" : "", b ? b : "",
			 c ? "/" : "", c ? c : "");

	if (n < 0 || n >= PATHSZ) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
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
 * rename and fsync of the directory. Without: a plain write (the caller
 * makes it durable with syncfs). */
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
	if (fsio_write_all(fd, d, len) != 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
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
		return fsio_fsync_dir(dir);
	}
	return 0;
}

static const char *json_text(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
}

static int write_json(const char *p, struct json_object *o, bool atomic)
{
	const char *s = json_text(o);

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

/* syncfs of the spool's file system. */
static int sync_all(struct spool_fs *fs)
{
	int fd = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = syncfs(fd);
	close(fd);
	return rc;
}

/* ---- open / close ---- */

bool spool_fs_valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 40)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') || id[i] == '-'))
			return false;
	return true;
}

struct spool_fs *spool_fs_open(const char *dir, bool write, char *err, size_t errsz)
{
	struct spool_fs *fs = calloc(1, sizeof(*fs));
	static const char *const subs[] = { "reports", "days", "suppressed", "tmp" };
	char p[PATHSZ];

	if (fs == NULL || (fs->dir = strdup(dir)) == NULL) {
		free(fs);
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	fs->lockfd = -1;
	if (!write) {
		struct stat st;

		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errsz, "%s: %s", dir, errno ? strerror(errno) : "not a directory");
			spool_fs_close(fs);
			return NULL;
		}
		return fs;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (path(p, fs, subs[i], NULL, NULL) != 0 || mkdir_p(p) != 0) {
			snprintf(err, errsz, "%s: %s", p, strerror(errno));
			spool_fs_close(fs);
			return NULL;
		}
	}
	if (path(p, fs, "lock", NULL, NULL) != 0 ||
	    (fs->lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		snprintf(err, errsz, "%s: %s", p, strerror(errno));
		spool_fs_close(fs);
		return NULL;
	}
	if (flock(fs->lockfd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errsz, "%s: %s", p, errno == EWOULDBLOCK ?
			 "another tlsrpt-report (or spool retry) is running" : strerror(errno));
		spool_fs_close(fs);
		return NULL;
	}
	/* reports half-written by a crashed run: removed relative to tmp/,
	 * never through a link planted there */
	if (path(p, fs, "tmp", NULL, NULL) == 0) {
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
	return fs;
}

void spool_fs_close(struct spool_fs *fs)
{
	if (fs == NULL)
		return;
	if (fs->lockfd >= 0)
		close(fs->lockfd);
	for (size_t i = 0; i < fs->nstaged; i++)
		free(fs->staged[i]);
	free(fs->staged);
	free(fs->dir);
	free(fs);
}

/* ---- reports ---- */

bool spool_fs_has(struct spool_fs *fs, const char *id)
{
	char p[PATHSZ];

	return spool_fs_valid_id(id) && path(p, fs, "reports", id, NULL) == 0 && access(p, F_OK) == 0;
}

int spool_fs_stage(struct spool_fs *fs, const char *id, const unsigned char *gz, size_t gzlen,
		   struct json_object *meta, struct json_object *const *dests, size_t ndests,
		   bool *existed, char *err, size_t errsz)
{
	char tmpdir[PATHSZ], p[PATHSZ], name[32], tname[64];

	*existed = false;
	if (!spool_fs_valid_id(id)) {
		snprintf(err, errsz, "spool: invalid report id");
		return -1;
	}
	if (spool_fs_has(fs, id)) {
		*existed = true;
		return 0;
	}
	for (size_t i = 0; i < fs->nstaged; i++)
		if (strcmp(fs->staged[i], id) == 0) {
			*existed = true;
			return 0;
		}
	if (fs->nstaged == fs->capstaged) {
		size_t cap = fs->capstaged ? fs->capstaged * 2 : 64;
		char **n = realloc(fs->staged, cap * sizeof(*n));

		if (n == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		fs->staged = n;
		fs->capstaged = cap;
	}
	snprintf(tname, sizeof(tname), "%s.%ld", id, (long)getpid());
	if (path(tmpdir, fs, "tmp", tname, NULL) != 0)
		goto fail;
	rm_tree(tmpdir);
	if (mkdir(tmpdir, 0750) != 0)
		goto fail;
	/* no fsync per file: spool_fs_commit makes all staged reports durable at once */
	if (path(p, fs, "tmp", tname, "report.json.gz") != 0 || write_file(p, gz, gzlen, false) != 0)
		goto fail;
	if (path(p, fs, "tmp", tname, "meta.json") != 0 || write_json(p, meta, false) != 0)
		goto fail;
	for (size_t i = 0; i < ndests; i++) {
		snprintf(name, sizeof(name), "dest-%zu.json", i);
		if (path(p, fs, "tmp", tname, name) != 0 || write_json(p, dests[i], false) != 0)
			goto fail;
	}
	if ((fs->staged[fs->nstaged] = strdup(id)) == NULL)
		goto fail;
	fs->nstaged++;
	return 0;
fail:
	snprintf(err, errsz, "spool %s: %s", id, strerror(errno ? errno : ENOMEM));
	rm_tree(tmpdir);
	return -1;
}

int spool_fs_commit(struct spool_fs *fs, char *err, size_t errsz)
{
	char p[PATHSZ], from[PATHSZ], to[PATHSZ], tname[64];
	int rc = 0;

	if (fs->nstaged == 0)
		return 0;
	/* 1. everything staged (files and directory entries) durable at once */
	if (sync_all(fs) != 0) {
		snprintf(err, errsz, "spool: syncfs: %s", strerror(errno));
		rc = -1;
		goto out;
	}
	hook("add-tmp-written");
	/* 2. publish each complete report by one rename */
	for (size_t i = 0; i < fs->nstaged; i++) {
		snprintf(tname, sizeof(tname), "%s.%ld", fs->staged[i], (long)getpid());
		if (path(from, fs, "tmp", tname, NULL) != 0 || path(to, fs, "reports", fs->staged[i], NULL) != 0)
			continue;
		if (rename(from, to) != 0) {
			if (errno == EEXIST || errno == ENOTEMPTY) {
				rm_tree(from);
				continue;
			}
			snprintf(err, errsz, "spool %s: %s", fs->staged[i], strerror(errno));
			rc = -1;
			goto out;
		}
	}
	/* 3. the renames durable */
	if (path(p, fs, "reports", NULL, NULL) != 0 || fsio_fsync_dir(p) != 0) {
		snprintf(err, errsz, "spool: %s", strerror(errno));
		rc = -1;
		goto out;
	}
	hook("add-renamed");
out:
	for (size_t i = 0; i < fs->nstaged; i++)
		free(fs->staged[i]);
	fs->nstaged = 0;
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int spool_fs_ids(struct spool_fs *fs, char ***ids, size_t *n)
{
	char p[PATHSZ];
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t cnt = 0, cap = 0;

	*ids = NULL;
	*n = 0;
	if (path(p, fs, "reports", NULL, NULL) != 0)
		return -1;
	d = opendir(p);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (!spool_fs_valid_id(de->d_name))
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

void spool_fs_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

struct json_object *spool_fs_meta(struct spool_fs *fs, const char *id)
{
	char p[PATHSZ];

	if (!spool_fs_valid_id(id) || path(p, fs, "reports", id, "meta.json") != 0)
		return NULL;
	return read_json(p);
}

static int dest_path(char *out, const struct spool_fs *fs, const char *id, size_t i)
{
	char name[32];

	if (!spool_fs_valid_id(id)) {
		errno = EINVAL;
		return -1;
	}
	snprintf(name, sizeof(name), "dest-%zu.json", i);
	return path(out, fs, "reports", id, name);
}

struct json_object *spool_fs_dest(struct spool_fs *fs, const char *id, size_t i)
{
	char p[PATHSZ];

	return dest_path(p, fs, id, i) == 0 ? read_json(p) : NULL;
}

int spool_fs_gz(struct spool_fs *fs, const char *id, unsigned char **gz, size_t *len)
{
	char p[PATHSZ];

	*gz = NULL;
	*len = 0;
	if (!spool_fs_valid_id(id) || path(p, fs, "reports", id, "report.json.gz") != 0)
		return -1;
	return read_file(p, gz, len);
}

int spool_fs_put_dest(struct spool_fs *fs, const char *id, size_t i, struct json_object *rec)
{
	char p[PATHSZ];

	if (dest_path(p, fs, id, i) != 0)
		return -1;
	return write_json(p, rec, true);
}

int spool_fs_put_dests(struct spool_fs *fs, const struct spool_fs_ref *refs, size_t n)
{
	char p[PATHSZ], tmp[PATHSZ + 8];

	if (n == 1)
		return spool_fs_put_dest(fs, refs[0].id, refs[0].index, refs[0].rec);
	for (size_t i = 0; i < n; i++) {
		const char *txt = json_text(refs[i].rec);

		if (txt == NULL || dest_path(p, fs, refs[i].id, refs[i].index) != 0)
			return -1;
		snprintf(tmp, sizeof(tmp), "%s.tmp", p);
		if (write_file(tmp, txt, strlen(txt), false) != 0)
			return -1;
	}
	if (sync_all(fs) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (dest_path(p, fs, refs[i].id, refs[i].index) != 0)
			return -1;
		snprintf(tmp, sizeof(tmp), "%s.tmp", p);
		if (rename(tmp, p) != 0)
			return -1;
	}
	return sync_all(fs);
}

/* reports/ID/done: a hint that lets later runs skip the report without
 * reading its state; losing it in a crash only costs a re-read. */
bool spool_fs_final(struct spool_fs *fs, const char *id)
{
	char p[PATHSZ];

	return spool_fs_valid_id(id) && path(p, fs, "reports", id, "done") == 0 && access(p, F_OK) == 0;
}

void spool_fs_set_final(struct spool_fs *fs, const char *id, bool final)
{
	char p[PATHSZ];
	int fd;

	if (!spool_fs_valid_id(id) || path(p, fs, "reports", id, "done") != 0)
		return;
	if (!final)
		unlink(p);
	else if ((fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0640)) >= 0)
		close(fd);
}

int spool_fs_remove(struct spool_fs *fs, const char *id)
{
	char from[PATHSZ], to[PATHSZ], name[64];

	if (!spool_fs_valid_id(id)) {
		errno = EINVAL;
		return -1;
	}
	/* out of reports/ in one step, then delete */
	snprintf(name, sizeof(name), "prune-%s", id);
	if (path(from, fs, "reports", id, NULL) != 0 || path(to, fs, "tmp", name, NULL) != 0)
		return -1;
	if (rename(from, to) != 0)
		return -1;
	return rm_tree(to);
}

/* ---- day marks ---- */

static int day_path(char *out, const struct spool_fs *fs, int64_t day)
{
	char name[16];

	store_format_day(name, sizeof(name), day);
	return path(out, fs, "days", name, NULL);
}

bool spool_fs_day_exists(struct spool_fs *fs, int64_t day)
{
	char p[PATHSZ];

	return day_path(p, fs, day) == 0 && access(p, F_OK) == 0;
}

int spool_fs_day_put(struct spool_fs *fs, int64_t day, struct json_object *rec)
{
	char p[PATHSZ];

	if (day_path(p, fs, day) != 0)
		return -1;
	return write_json(p, rec, true);
}

static int cmp_day(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int spool_fs_days(struct spool_fs *fs, int64_t **days, size_t *n)
{
	char p[PATHSZ];
	DIR *d;
	struct dirent *de;
	int64_t *v = NULL;
	size_t cnt = 0, cap = 0;

	*days = NULL;
	*n = 0;
	if (path(p, fs, "days", NULL, NULL) != 0)
		return -1;
	if ((d = opendir(p)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		int64_t day = store_parse_day(de->d_name);

		if (day < 0)
			continue;
		if (cnt == cap) {
			int64_t *nv = realloc(v, (cap ? cap * 2 : 64) * sizeof(*v));

			if (nv == NULL)
				break;
			v = nv;
			cap = cap ? cap * 2 : 64;
		}
		v[cnt++] = day;
	}
	closedir(d);
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), cmp_day);
	*days = v;
	*n = cnt;
	return 0;
}

int spool_fs_day_remove(struct spool_fs *fs, int64_t day)
{
	char p[PATHSZ];

	return day_path(p, fs, day) == 0 ? unlink(p) : -1;
}

/* ---- suppression records ---- */

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

static int suppressed_path(char *out, const struct spool_fs *fs, const char *uri)
{
	char name[40];

	uri_hash(uri, name);
	return path(out, fs, "suppressed", name, NULL);
}

struct json_object *spool_fs_suppression(struct spool_fs *fs, const char *uri)
{
	char p[PATHSZ];
	struct json_object *o, *u;

	if (suppressed_path(p, fs, uri) != 0 || (o = read_json(p)) == NULL)
		return NULL;
	if (!json_object_object_get_ex(o, "uri", &u) || !json_object_is_type(u, json_type_string) ||
	    strcmp(json_object_get_string(u), uri) != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int spool_fs_suppression_put(struct spool_fs *fs, const char *uri, struct json_object *rec)
{
	char p[PATHSZ];

	if (suppressed_path(p, fs, uri) != 0)
		return -1;
	return write_json(p, rec, true);
}

int spool_fs_suppression_remove(struct spool_fs *fs, const char *uri)
{
	char p[PATHSZ];

	if (suppressed_path(p, fs, uri) != 0)
		return -1;
	return unlink(p) == 0 || errno == ENOENT ? 0 : -1;
}

int spool_fs_suppressions_filter(struct spool_fs *fs,
				 enum spool_fs_verdict (*check)(void *arg, struct json_object *rec),
				 void *arg)
{
	char p[PATHSZ], f[PATHSZ];
	DIR *d;
	struct dirent *de;

	if (path(p, fs, "suppressed", NULL, NULL) != 0)
		return -1;
	if ((d = opendir(p)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		struct json_object *o;

		if (de->d_name[0] == '.' || path(f, fs, "suppressed", de->d_name, NULL) != 0)
			continue;
		o = read_json(f);
		switch (check(arg, o)) {
		case SPOOL_FS_REMOVE:
			unlink(f);
			break;
		case SPOOL_FS_REWRITE:
			if (o && write_json(f, o, true) != 0)
				log_err("spool: cannot rewrite %s: %s", f, strerror(errno));
			break;
		case SPOOL_FS_KEEP:
			break;
		}
		json_object_put(o);
	}
	closedir(d);
	return 0;
}

/* ---- the table spool.c calls (spool_store.h) ---- */

static void fs_close(void *h) { spool_fs_close(h); }
static bool fs_has(void *h, const char *id) { return spool_fs_has(h, id); }
static int fs_stage(void *h, const char *id, const unsigned char *gz, size_t gzlen,
		    struct json_object *meta, struct json_object *const *dests, size_t ndests,
		    bool *existed, char *err, size_t errsz)
{
	return spool_fs_stage(h, id, gz, gzlen, meta, dests, ndests, existed, err, errsz);
}
static int fs_commit(void *h, char *err, size_t errsz) { return spool_fs_commit(h, err, errsz); }
static int fs_ids(void *h, char ***ids, size_t *n) { return spool_fs_ids(h, ids, n); }
static struct json_object *fs_meta(void *h, const char *id) { return spool_fs_meta(h, id); }
static struct json_object *fs_dest(void *h, const char *id, size_t i) { return spool_fs_dest(h, id, i); }
static int fs_gz(void *h, const char *id, unsigned char **gz, size_t *len)
{
	return spool_fs_gz(h, id, gz, len);
}
static int fs_put_dest(void *h, const char *id, size_t i, struct json_object *rec)
{
	return spool_fs_put_dest(h, id, i, rec);
}
static int fs_put_dests(void *h, const struct spool_fs_ref *refs, size_t n)
{
	return spool_fs_put_dests(h, refs, n);
}
static bool fs_final(void *h, const char *id) { return spool_fs_final(h, id); }
static void fs_set_final(void *h, const char *id, bool final) { spool_fs_set_final(h, id, final); }
static int fs_remove(void *h, const char *id) { return spool_fs_remove(h, id); }
static bool fs_day_exists(void *h, int64_t day) { return spool_fs_day_exists(h, day); }
static int fs_day_put(void *h, int64_t day, struct json_object *rec) { return spool_fs_day_put(h, day, rec); }
static int fs_days(void *h, int64_t **days, size_t *n) { return spool_fs_days(h, days, n); }
static int fs_day_remove(void *h, int64_t day) { return spool_fs_day_remove(h, day); }
static struct json_object *fs_suppression(void *h, const char *uri) { return spool_fs_suppression(h, uri); }
static int fs_suppression_put(void *h, const char *uri, struct json_object *rec)
{
	return spool_fs_suppression_put(h, uri, rec);
}
static int fs_suppression_remove(void *h, const char *uri) { return spool_fs_suppression_remove(h, uri); }
static int fs_suppressions_filter(void *h, enum spool_fs_verdict (*check)(void *, struct json_object *),
				  void *arg)
{
	return spool_fs_suppressions_filter(h, check, arg);
}

const struct spool_store_ops spool_fs_ops = {
	.name = "files",
	.close = fs_close, .has = fs_has, .stage = fs_stage, .commit = fs_commit,
	.ids = fs_ids, .ids_free = spool_fs_ids_free, .claim = NULL, .ids_due = NULL,
	.meta = fs_meta, .dest = fs_dest, .gz = fs_gz,
	.put_dest = fs_put_dest, .put_dests = fs_put_dests,
	.final = fs_final, .set_final = fs_set_final, .remove = fs_remove,
	.day_exists = fs_day_exists, .day_put = fs_day_put, .days = fs_days, .day_remove = fs_day_remove,
	.suppression = fs_suppression, .suppression_put = fs_suppression_put,
	.suppression_remove = fs_suppression_remove, .suppressions_filter = fs_suppressions_filter,
};
