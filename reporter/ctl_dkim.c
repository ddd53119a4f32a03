/*
 * ctl_dkim - tlsrptctl dkim: make the reporter's DKIM key and say what to
 * publish.
 *
 *   tlsrptctl dkim generate [--selector S] [--algorithm rsa-sha256|ed25519-sha256]
 *                           [--domain D] [--key-file PATH] [--bits N]
 *                           [--group G] [--service-tlsrpt] [--force]
 *   tlsrptctl dkim record [--selector S] [--domain D] [--key-file PATH]
 *
 * generate writes a new private key (PEM, PKCS#8) to dkim_key_file (with
 * --selector S other than dkim_selector: /etc/tlsrptd/dkim/S.pem), owner
 * root, group tlsrpt-report (the reporter reads it), mode 0640, and prints
 * the DNS TXT record of its public key and the configuration lines. An
 * existing key is kept unless --force. record prints the TXT record of an
 * existing key.
 *
 * The record has no s= tag by default: a key with s=tlsrpt alone is ignored
 * by ordinary DKIM (DMARC) verifiers, and s=email:tlsrpt is rejected by
 * dkimpy (README "DKIM key record"); --service-tlsrpt adds s=tlsrpt for
 * receivers known to verify in tlsrpt mode.
 *
 * SECURITY: the key is written to a temporary file made with O_EXCL and
 * mode 0600 in the key's directory, given its group and mode on the
 * descriptor, synced and only then renamed (or linked, without --force)
 * into place: no moment where another user could read it, and no name is
 * followed. As root the key directory must be root's and writable by no
 * one else.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "ctl.h"
#include "dkim.h"
#include "report.h"

#define KEY_DIR "/etc/tlsrptd/dkim"
#define KEY_GROUP "tlsrpt-report"

struct dkim_args {
	const char *selector, *algorithm, *domain, *key_file, *group;
	int bits;
	bool force, service;
	char keypath[4096];
	char domainbuf[REPORT_DOMAIN_MAX + 1];
};

const char ctl_dkim_usage[] =
	"dkim generate [--selector S] [--algorithm rsa-sha256|ed25519-sha256] [--domain D]\n"
	"              [--key-file PATH] [--bits N] [--group G] [--service-tlsrpt] [--force]\n"
	"    write the reporter's DKIM key (root:tlsrpt-report 0640; kept unless --force)\n"
	"    and print its DNS TXT record and the configuration lines\n"
	"dkim record [--selector S] [--domain D] [--key-file PATH] [--service-tlsrpt]\n"
	"    print the DNS TXT record of an existing key\n";

static int dkim_usage(void)
{
	return ctl_usage(ctl_dkim_usage);
}

/* Options and their defaults from the configuration. 0, or CTL_USAGE. */
static int parse_args(int argc, char **argv, const struct conf *c, struct dkim_args *a)
{
	const char *sel_conf = conf_str(c, "dkim_selector");

	memset(a, 0, sizeof(*a));
	a->algorithm = conf_str(c, "dkim_algorithm");
	a->group = KEY_GROUP;
	a->bits = 2048;
	for (int i = 2; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--force")) {
			a->force = true;
			continue;
		}
		if (!strcmp(argv[i], "--service-tlsrpt")) {
			a->service = true;
			continue;
		}
		if (v == NULL)
			return dkim_usage();
		if (!strcmp(argv[i], "--selector"))
			a->selector = v;
		else if (!strcmp(argv[i], "--algorithm"))
			a->algorithm = v;
		else if (!strcmp(argv[i], "--domain"))
			a->domain = v;
		else if (!strcmp(argv[i], "--key-file"))
			a->key_file = v;
		else if (!strcmp(argv[i], "--group"))
			a->group = v;
		else if (!strcmp(argv[i], "--bits"))
			a->bits = atoi(v);
		else
			return dkim_usage();
		i++;
	}
	if (strcmp(a->algorithm, "rsa-sha256") && strcmp(a->algorithm, "ed25519-sha256")) {
		fprintf(stderr, "tlsrptctl: --algorithm must be rsa-sha256 or ed25519-sha256, not \"%s\"\n",
			a->algorithm);
		return CTL_USAGE;
	}
	if (a->bits < 1024 || a->bits > 8192) {
		fprintf(stderr, "tlsrptctl: --bits must be between 1024 and 8192\n");
		return CTL_USAGE;
	}
	/* the key file: given; the configured one for the configured selector;
	 * else KEY_DIR/SELECTOR.pem */
	if (a->selector == NULL)
		a->selector = *sel_conf ? sel_conf : "tlsrpt";
	if (a->key_file == NULL) {
		if (!strcmp(a->selector, sel_conf) && *conf_str(c, "dkim_key_file"))
			a->key_file = conf_str(c, "dkim_key_file");
		else {
			snprintf(a->keypath, sizeof(a->keypath), "%s/%s.pem", KEY_DIR, a->selector);
			a->key_file = a->keypath;
		}
	}
	if (!report_domain_ok(a->selector)) {
		fprintf(stderr, "tlsrptctl: selector \"%s\" is not a valid DNS label sequence\n",
			a->selector);
		return CTL_USAGE;
	}
	if (a->domain == NULL) {
		struct report_identity id;
		char err[256];

		if (*conf_str(c, "dkim_domain")) {
			a->domain = conf_str(c, "dkim_domain");
		} else if (report_identity_from_conf(c, &id, err, sizeof(err)) == 0) {
			snprintf(a->domainbuf, sizeof(a->domainbuf), "%s", id.submitter);
			a->domain = a->domainbuf;
		} else {
			fprintf(stderr, "tlsrptctl: no signing domain: give --domain, or set dkim_domain "
				"or contact_info (%s)\n", err);
			return CTL_USAGE;
		}
	}
	if (!report_domain_ok(a->domain)) {
		fprintf(stderr, "tlsrptctl: domain \"%s\" is not a valid domain name\n", a->domain);
		return CTL_USAGE;
	}
	return 0;
}

/* The public key's DKIM p= value (base64 of SubjectPublicKeyInfo for RSA,
 * of the raw 32 bytes for Ed25519, RFC 8463). */
static int public_b64(EVP_PKEY *k, struct buf *out)
{
	unsigned char raw[64], *der = NULL;
	size_t rawlen = sizeof(raw);
	int len;
	unsigned char *b64;
	int n;

	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(k, raw, &rawlen) != 1)
			return -1;
		der = raw;
		len = (int)rawlen;
	} else {
		len = i2d_PUBKEY(k, &der);
		if (len <= 0)
			return -1;
	}
	b64 = malloc((size_t)len * 2 + 4);
	n = b64 ? EVP_EncodeBlock(b64, der, len) : -1;
	if (n > 0)
		buf_add(out, b64, (size_t)n);
	free(b64);
	if (der != raw)
		OPENSSL_free(der);
	return n > 0 ? 0 : -1;
}

/* Print the TXT record, split into strings of at most 255 bytes. */
static int print_record(EVP_PKEY *k, const struct dkim_args *a)
{
	struct buf v;
	bool ed = EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519;

	buf_init(&v, 16384);
	buf_printf(&v, "v=DKIM1; k=%s; %sp=", ed ? "ed25519" : "rsa", a->service ? "s=tlsrpt; " : "");
	if (public_b64(k, &v) != 0 || v.len == 0) {
		buf_free(&v);
		fprintf(stderr, "tlsrptctl: cannot encode the public key\n");
		return CTL_SOFTWARE;
	}
	printf("%s._domainkey.%s. IN TXT (", a->selector, a->domain);
	for (size_t off = 0; off < v.len; off += 255) {
		size_t n = v.len - off < 255 ? v.len - off : 255;

		printf("%s\"%.*s\"", off ? "\n        " : " ", (int)n, v.data + off);
	}
	printf(" )\n");
	buf_free(&v);
	return CTL_OK;
}

static EVP_PKEY *load_key(const char *path)
{
	FILE *fp = fopen(path, "re");
	EVP_PKEY *k;

	if (fp == NULL)
		return NULL;
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	return k;
}

/* Open the key's directory; as root it must be root's and not writable by
 * others. The last path component goes to 'name'. */
static int open_key_dir(const char *path, const char **name)
{
	char dir[4096];
	const char *sl = strrchr(path, '/');
	struct stat st;
	int fd;

	if (path[0] != '/' || sl == NULL || sl[1] == '\0' || (size_t)(sl - path) >= sizeof(dir)) {
		fprintf(stderr, "tlsrptctl: the key file must be an absolute path: %s\n", path);
		return -1;
	}
	memcpy(dir, path, (size_t)(sl - path));
	dir[sl == path ? 1 : sl - path] = '\0';
	*name = sl + 1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && !strcmp(dir, KEY_DIR)) {
		/* the package makes it (tmpfiles.d); without the package, here */
		struct group *gr = getgrnam(KEY_GROUP);

		if (mkdir(dir, 0750) == 0)
			fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0 && geteuid() == 0 && gr && fchown(fd, 0, gr->gr_gid) != 0)
			fprintf(stderr, "tlsrptctl: %s: %s\n", dir, strerror(errno));
	}
	if (fd < 0) {
		fprintf(stderr, "tlsrptctl: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (geteuid() == 0 && (fstat(fd, &st) != 0 || st.st_uid != 0 ||
			       (st.st_mode & (S_IWGRP | S_IWOTH)))) {
		fprintf(stderr, "tlsrptctl: %s must be root's and writable by root only to hold a "
			"private key\n", dir);
		close(fd);
		return -1;
	}
	return fd;
}

/* Write 'k' as KEY_FILE: tmp (0600, O_EXCL), group and 0640 on the
 * descriptor, fsync, then link (no --force) or rename into place. */
static int write_key(EVP_PKEY *k, const struct dkim_args *a)
{
	const char *name;
	char tmp[300];
	struct group *gr = getgrnam(a->group);
	gid_t gid = (gid_t)-1;
	int dfd, fd = -1, rc = CTL_IOERR;
	BIO *mem = NULL;
	char *pem;
	long len;

	if ((dfd = open_key_dir(a->key_file, &name)) < 0)
		return CTL_IOERR;
	if (gr)
		gid = gr->gr_gid;
	else if (strcmp(a->group, KEY_GROUP) != 0) {
		fprintf(stderr, "tlsrptctl: unknown group \"%s\"\n", a->group);
		goto out;
	} else
		fprintf(stderr, "tlsrptctl: note: no group %s (the tlsrptd package makes it): "
			"the key keeps your group\n", KEY_GROUP);
	if (snprintf(tmp, sizeof(tmp), ".%s.%d.tmp", name, (int)getpid()) >= (int)sizeof(tmp)) {
		fprintf(stderr, "tlsrptctl: key file name too long\n");
		goto out;
	}
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL || PEM_write_bio_PrivateKey(mem, k, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (len = BIO_get_mem_data(mem, &pem)) <= 0) {
		fprintf(stderr, "tlsrptctl: cannot encode the private key\n");
		rc = CTL_SOFTWARE;
		goto out;
	}
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, pem, (size_t)len) != len ||
	    (gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) != 0) ||
	    fchmod(fd, 0640) != 0 || fsync(fd) != 0) {
		fprintf(stderr, "tlsrptctl: writing the key next to %s: %s\n", a->key_file,
			strerror(errno));
		goto out_unlink;
	}
	if (a->force ? renameat(dfd, tmp, dfd, name) != 0 : linkat(dfd, tmp, dfd, name, 0) != 0) {
		if (errno == EEXIST)
			fprintf(stderr, "tlsrptctl: %s exists: keeping it (--force replaces it; "
				"tlsrptctl dkim record prints its DNS record)\n", a->key_file);
		else
			fprintf(stderr, "tlsrptctl: %s: %s\n", a->key_file, strerror(errno));
		goto out_unlink;
	}
	if (!a->force)
		unlinkat(dfd, tmp, 0);
	fsync(dfd);
	rc = CTL_OK;
	goto out;
out_unlink:
	unlinkat(dfd, tmp, 0);
out:
	if (fd >= 0)
		close(fd);
	BIO_free(mem);
	close(dfd);
	return rc;
}

static int cmd_generate(const struct dkim_args *a)
{
	bool ed = !strcmp(a->algorithm, "ed25519-sha256");
	EVP_PKEY *k = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
			 : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)a->bits);
	char err[256];
	struct dkim_signer *s;
	int rc;

	if (k == NULL) {
		fprintf(stderr, "tlsrptctl: key generation failed\n");
		return CTL_SOFTWARE;
	}
	rc = write_key(k, a);
	if (rc == CTL_OK) {
		/* what the reporter will do with it */
		s = dkim_signer_new(a->key_file, a->algorithm, a->domain, a->selector, err, sizeof(err));
		if (s == NULL) {
			fprintf(stderr, "tlsrptctl: the new key does not load: %s\n", err);
			rc = CTL_SOFTWARE;
		}
		dkim_signer_free(s);
	}
	if (rc == CTL_OK) {
		printf("; private key: %s (%s, mode 0640, group %s)\n", a->key_file,
		       a->algorithm, getgrnam(a->group) ? a->group : "yours");
		printf("; tlsrptd.conf:\n;   dkim_selector = %s\n;   dkim_key_file = %s\n"
		       ";   dkim_algorithm = %s\n", a->selector, a->key_file, a->algorithm);
		printf("; publish in DNS:\n");
		rc = print_record(k, a);
	}
	EVP_PKEY_free(k);
	return rc;
}

static int cmd_record(const struct dkim_args *a)
{
	EVP_PKEY *k = load_key(a->key_file);
	int rc;

	if (k == NULL) {
		fprintf(stderr, "tlsrptctl: cannot read the key %s: %s\n", a->key_file,
			errno ? strerror(errno) : "not a PEM private key");
		return CTL_IOERR;
	}
	rc = print_record(k, a);
	EVP_PKEY_free(k);
	return rc;
}

int ctl_dkim(int argc, char **argv, const struct conf *c)
{
	struct dkim_args a;
	int rc;

	if (argc < 2 || (strcmp(argv[1], "generate") && strcmp(argv[1], "record")))
		return dkim_usage();
	if ((rc = parse_args(argc, argv, c, &a)) != 0)
		return rc;
	return argv[1][0] == 'g' ? cmd_generate(&a) : cmd_record(&a);
}
