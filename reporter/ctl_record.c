/*
 * ctl_record - `tlsrptctl record`: write and check _smtp._tls TXT records
 * (RFC 8460 section 3).
 *
 *   record generate --rua URI[,URI] [--rua URI] [--domain D]
 *         validate the destinations (mailto: with an address, https: with
 *         a host), percent-encode ',', '!' and ';' inside each URI, and
 *         print the zone line
 *           _smtp._tls.D. IN TXT "v=TLSRPTv1; rua=..."
 *         (D defaults to the placeholder example.com; strings longer than
 *         255 bytes are split). Exit CTL_USAGE for an unusable URI.
 *   record check DOMAIN
 *         look up TXT at _smtp._tls.DOMAIN (resolver: dns_resolver) and say
 *         precisely what is wrong: no record (then also look at the usual
 *         wrong names smtp.tls., _smtp._tcp., _tls._smtp. and the domain
 *         itself), several records, v= not first, no rua, bad schemes,
 *         unencoded commas... with the diagnostics of tlsrpt_record_parse.
 *         Exit CTL_OK (one valid record), CTL_EMPTY (none), CTL_DATAERR
 *         (a record with problems, or several), CTL_UNAVAILABLE (lookup
 *         failed).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "ctl.h"
#include "dns.h"
#include "log.h"
#include "tlsrpt_record.h"

const char ctl_record_usage[] =
	"record generate --rua URI[,URI...] [--rua URI]... [--domain DOMAIN]\n"
	"    print the _smtp._tls TXT record line for these report destinations\n"
	"record check DOMAIN\n"
	"    look up _smtp._tls.DOMAIN and say precisely what is wrong with it\n";

static void record_usage(void)
{
	ctl_usage(ctl_record_usage);
}

static bool valid_domain(const char *d)
{
	size_t n = strlen(d), label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

/* Append one URI to 'out' with ',', '!', ';' (and characters that a zone
 * file or the record grammar cannot carry) percent-encoded. Returns NULL
 * or what is wrong with the URI. */
static const char *add_uri(struct buf *out, const char *uri)
{
	const char *colon = strchr(uri, ':');
	size_t slen = colon ? (size_t)(colon - uri) : 0;

	if (colon == NULL || slen == 0)
		return "has no scheme (use mailto:ADDRESS or https://HOST/PATH)";
	if (!(slen == 6 && strncasecmp(uri, "mailto", 6) == 0) &&
	    !(slen == 5 && strncasecmp(uri, "https", 5) == 0))
		return "uses a scheme other than mailto: or https: (RFC 8460 supports only these two)";
	if (slen == 6) {
		const char *at = strchr(colon + 1, '@');

		if (at == NULL || at == colon + 1 || at[1] == '\0' || at[1] == '?')
			return "is not mailto:LOCAL@DOMAIN";
	} else if (strncmp(colon + 1, "//", 2) != 0 || colon[3] == '\0' || colon[3] == '/')
		return "is not https://HOST/...";
	for (const unsigned char *p = (const unsigned char *)uri; *p; p++) {
		if (*p <= ' ' || *p >= 0x7f)
			return "contains a space, control or non-ASCII character";
		if (*p == ',' || *p == '!' || *p == ';' || *p == '"' || *p == '\\')
			buf_printf(out, "%%%02X", *p);
		else
			buf_addc(out, (char)*p);
	}
	return NULL;
}

/* Does 's' start with a URI scheme and ':' ("mailto:", "https:")? */
static bool starts_with_scheme(const char *s)
{
	while (*s == ' ')
		s++;
	if (!isalpha((unsigned char)*s))
		return false;
	while (isalnum((unsigned char)*s) || *s == '+' || *s == '-' || *s == '.')
		s++;
	return *s == ':';
}

/*
 * strtok_r-like split of a URI list on the commas that start another URI;
 * a comma not followed by "scheme:" belongs to the URI (and is encoded).
 */
static char *next_uri(char *list, char **save)
{
	char *s = list ? list : *save, *p;

	if (s == NULL || *s == '\0')
		return NULL;
	for (p = s; *p; p++)
		if (*p == ',' && starts_with_scheme(p + 1))
			break;
	if (*p) {
		*p = '\0';
		*save = p + 1;
	} else
		*save = p;
	return s;
}

static int cmd_generate(int argc, char **argv)
{
	const char *domain = "example.com";
	struct buf rec, uris;
	struct tlsrpt_record parsed;
	int n = 0, rc = CTL_OK;

	buf_init(&rec, TLSRPT_RECORD_MAX);
	buf_init(&uris, TLSRPT_RECORD_MAX);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc) {
			domain = argv[++i];
		} else if (strcmp(argv[i], "--rua") == 0 && i + 1 < argc) {
			char *list = strdup(argv[++i]), *save = NULL;


			if (list == NULL) {
				rc = CTL_SOFTWARE;
				goto out;
			}
			for (char *u = next_uri(list, &save); u; u = next_uri(NULL, &save)) {
				const char *why;

				while (*u == ' ')
					u++;
				if (*u == '\0')
					continue;
				if (n++)
					buf_addc(&uris, ',');
				why = add_uri(&uris, u);
				if (why) {
					fprintf(stderr, "tlsrptctl: rua URI \"%s\" %s\n", u, why);
					rc = CTL_USAGE;
				}
			}
			free(list);
		} else {
			record_usage();
			rc = CTL_USAGE;
			goto out;
		}
	}
	if (rc != CTL_OK)
		goto out;
	if (n == 0) {
		fprintf(stderr, "tlsrptctl: record generate needs --rua URI\n");
		record_usage();
		rc = CTL_USAGE;
		goto out;
	}
	if (!valid_domain(domain)) {
		fprintf(stderr, "tlsrptctl: \"%s\" is not a domain name\n", domain);
		rc = CTL_USAGE;
		goto out;
	}
	buf_printf(&rec, "v=TLSRPTv1; rua=%s", uris.data);
	if (rec.overflow) {
		fprintf(stderr, "tlsrptctl: the record would be longer than %d bytes\n", TLSRPT_RECORD_MAX);
		rc = CTL_USAGE;
		goto out;
	}
	/* our own output must pass our own parser */
	memset(&parsed, 0, sizeof(parsed));
	if (tlsrpt_record_parse(rec.data, rec.len, &parsed) != 0 || !parsed.ok) {
		fprintf(stderr, "tlsrptctl: the generated record is not valid:\n");
		for (size_t i = 0; i < parsed.ndiag; i++)
			fprintf(stderr, "  %s\n", parsed.diag[i]);
		tlsrpt_record_free(&parsed);
		rc = CTL_USAGE;
		goto out;
	}
	tlsrpt_record_free(&parsed);
	printf("_smtp._tls.%s%s IN TXT ", domain, domain[strlen(domain) - 1] == '.' ? "" : ".");
	for (size_t off = 0; off < rec.len; off += 255)	/* character-strings of <= 255 bytes */
		printf("%s\"%.*s\"", off ? " " : "", (int)(rec.len - off > 255 ? 255 : rec.len - off),
		       rec.data + off);
	printf("\n");
	if (strcmp(domain, "example.com") == 0)
		fprintf(stderr, "note: replace example.com with your domain (or use --domain)\n");
out:
	buf_free(&rec);
	buf_free(&uris);
	return rc;
}

/* Print the TXT records at 'name' that look like TLSRPT records at all. */
static int wrong_name(const char *name, const char *resolver, const char *right)
{
	struct dns_txt t;
	char err[256];
	int found = 0;

	if (dns_lookup_txt(name, resolver, &t, err, sizeof(err)) != DNS_OK)
		return 0;
	for (size_t i = 0; i < t.n; i++) {
		char p[300];

		if (t.len[i] >= 10 && strncasecmp(t.rec[i], "v=TLSRPTv1", 10) == 0) {
			printf("error: a TLSRPT record is published at the wrong name %s: \"%s\"; "
			       "it belongs at %s\n", name,
			       log_printable(p, sizeof(p), t.rec[i], t.len[i]), right);
			found++;
		}
	}
	dns_txt_free(&t);
	return found;
}

static bool mentions_tlsrpt(const char *s, size_t n)
{
	for (size_t i = 0; i + 6 <= n; i++)
		if (strncasecmp(s + i, "tlsrpt", 6) == 0)
			return true;
	return false;
}

static int cmd_check(int argc, char **argv, const struct conf *c)
{
	const char *domain, *resolver = conf_str(c, "dns_resolver");
	char name[300], err[256], p[600];
	struct dns_txt t;
	enum dns_status st;
	size_t cand = 0, which = 0;
	int rc = CTL_OK;

	if (argc != 3) {
		record_usage();
		return CTL_USAGE;
	}
	domain = argv[2];
	if (!valid_domain(domain)) {
		fprintf(stderr, "tlsrptctl: \"%s\" is not a domain name\n", domain);
		return CTL_USAGE;
	}
	snprintf(name, sizeof(name), "_smtp._tls.%s", domain);
	st = dns_lookup_txt(name, resolver, &t, err, sizeof(err));
	if (st == DNS_TEMPFAIL || st == DNS_ERROR) {
		printf("error: looking up TXT %s failed: %s\n", name, err);
		return CTL_UNAVAILABLE;
	}
	if (st == DNS_OK) {
		for (size_t i = 0; i < t.n; i++) {
			if (tlsrpt_record_is_candidate(t.rec[i], t.len[i])) {
				cand++;
				which = i;
			}
		}
	}
	if (cand == 0) {
		int wrong = 0;
		char alt[300];
		static const char *const prefixes[] = { "smtp.tls.", "_smtp._tcp.", "_tls._smtp.", "" };

		printf("error: no TLSRPT record at %s (no TXT record there starts with \"v=TLSRPTv1;\")\n",
		       name);
		/* near misses at the right name: say what is wrong with them */
		for (size_t i = 0; st == DNS_OK && i < t.n; i++) {
			struct tlsrpt_record r;

			if (!mentions_tlsrpt(t.rec[i], t.len[i]))
				continue;
			printf("  TXT \"%s\" is not taken as a TLSRPT record:\n",
			       log_printable(p, sizeof(p), t.rec[i], t.len[i]));
			memset(&r, 0, sizeof(r));
			if (tlsrpt_record_parse(t.rec[i], t.len[i], &r) == 0)
				for (size_t k = 0; k < r.ndiag; k++)
					printf("    %s\n", r.diag[k]);
			tlsrpt_record_free(&r);
			rc = CTL_DATAERR;
		}
		for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
			snprintf(alt, sizeof(alt), "%s%s", prefixes[i], domain);
			wrong += wrong_name(alt, resolver, name);
		}
		if (st == DNS_OK)
			dns_txt_free(&t);
		return wrong || rc == CTL_DATAERR ? CTL_DATAERR : CTL_EMPTY;
	}
	if (cand > 1) {
		printf("error: %zu TXT records at %s start with \"v=TLSRPTv1\"; with more than one, "
		       "senders must assume the domain has no TLSRPT (RFC 8460 section 3)\n", cand, name);
		for (size_t i = 0; i < t.n; i++)
			if (tlsrpt_record_is_candidate(t.rec[i], t.len[i]))
				printf("  \"%s\"\n", log_printable(p, sizeof(p), t.rec[i], t.len[i]));
		dns_txt_free(&t);
		return CTL_DATAERR;
	}
	{
		struct tlsrpt_record r;

		memset(&r, 0, sizeof(r));
		printf("record at %s: \"%s\"\n", name, log_printable(p, sizeof(p), t.rec[which], t.len[which]));
		if (t.truncated)
			printf("warning: the answer was truncated; more records may exist\n");
		if (tlsrpt_record_parse(t.rec[which], t.len[which], &r) != 0) {
			dns_txt_free(&t);
			return CTL_SOFTWARE;
		}
		for (size_t k = 0; k < r.ndiag; k++)
			printf("%s%s\n", strncmp(r.diag[k], "warning: ", 9) == 0 ? "" : "error: ", r.diag[k]);
		for (size_t k = 0; k < r.nrua; k++)
			printf("destination: %s%s\n", r.rua[k].uri,
			       r.rua[k].scheme == RUA_MAILTO ? " (mail)" : " (HTTPS POST)");
		if (r.ok)
			printf("ok: %s has a valid TLSRPT record with %zu destination(s)\n", domain, r.nrua);
		else
			rc = CTL_DATAERR;
		tlsrpt_record_free(&r);
	}
	dns_txt_free(&t);
	return rc;
}

int ctl_record(int argc, char **argv, const struct conf *c)
{
	if (argc < 2) {
		record_usage();
		return CTL_USAGE;
	}
	if (strcmp(argv[1], "generate") == 0)
		return cmd_generate(argc, argv);
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(argc, argv, c);
	record_usage();
	return CTL_USAGE;
}
