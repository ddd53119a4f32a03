/*
 * test_tlsrpt_record - the RFC 8460 section 3 record parser, table driven.
 * Includes the records that sys4 tlsrpt-reporter mishandles
 * (peers-and-user-asks.md 2.3): space before ';', an extension before rua,
 * a space after the comma between URIs, a second rua field, a non-URI rua.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tlsrpt_record.h"

struct tcase {
	const char *in;
	bool ok;
	const char *uris;	/* decoded URIs joined by " ", "" for none */
	const char *addrs;	/* mailto addresses joined by " " (https: "-") */
	const char *diag;	/* substring of the first diagnostic, NULL: none */
};

static const struct tcase cases[] = {
	/* RFC 8460 examples */
	{ "v=TLSRPTv1;rua=mailto:reports@example.com", true,
	  "mailto:reports@example.com", "reports@example.com", NULL },
	{ "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", true,
	  "https://reporting.example.com/v1/tlsrpt", "-", NULL },
	/* sys4 failure cases: all valid per the ABNF */
	{ "v=TLSRPTv1 ;rua=mailto:a@example.com", true, "mailto:a@example.com", "a@example.com", NULL },
	{ "v=TLSRPTv1\t;\trua=mailto:a@example.com\t;", true, "mailto:a@example.com", "a@example.com", NULL },
	{ "v=TLSRPTv1; ext=1; rua=mailto:a@example.com", true, "mailto:a@example.com", "a@example.com", NULL },
	{ "v=TLSRPTv1; rua=mailto:a@example.com, mailto:b@example.org", true,
	  "mailto:a@example.com mailto:b@example.org", "a@example.com b@example.org", NULL },
	{ "v=TLSRPTv1; rua=mailto:a@example.com ,\tmailto:b@example.org", true,
	  "mailto:a@example.com mailto:b@example.org", "a@example.com b@example.org", NULL },
	{ "v=TLSRPTv1; rua=mailto:a@example.com; rua=https://r.example.net/x", true,
	  "mailto:a@example.com https://r.example.net/x", "a@example.com -", NULL },
	{ "v=TLSRPTv1; rua=a@example.com", false, "", "", "has no scheme" },
	/* trailing delimiter, duplicates, unknown fields, case of scheme */
	{ "v=TLSRPTv1;rua=mailto:a@example.com;", true, "mailto:a@example.com", "a@example.com", NULL },
	{ "v=TLSRPTv1;rua=mailto:a@example.com,mailto:a@example.com", true,
	  "mailto:a@example.com", "a@example.com", NULL },
	{ "v=TLSRPTv1;rua=MAILTO:a@example.com", true, "MAILTO:a@example.com", "a@example.com", NULL },
	{ "v=TLSRPTv1;rua=mailto:a@example.com;_xy=z", false, "mailto:a@example.com", "a@example.com",
	  "not a valid name" },
	{ "v=TLSRPTv1;rua=mailto:a@example.com;x_y=z", true, "mailto:a@example.com", "a@example.com", NULL },
	{ "v=TLSRPTv1;rua=mailto:a@example.com;x.y-z_1=a:b/c", true, "mailto:a@example.com", "a@example.com", NULL },
	/* URI value may contain '=' (split on the first '=') */
	{ "v=TLSRPTv1;rua=https://r.example.net/in?k=v&a=b", true,
	  "https://r.example.net/in?k=v&a=b", "-", NULL },
	/* percent-encoding */
	{ "v=TLSRPTv1;rua=mailto:tls%2Dreports@example.com", true,
	  "mailto:tls-reports@example.com", "tls-reports@example.com", NULL },
	{ "v=TLSRPTv1;rua=https://r.example.net/a%2Cb%21c%3Bd%2Fe", true,
	  "https://r.example.net/a,b!c;d%2Fe", "-", NULL },
	{ "v=TLSRPTv1;rua=mailto:a@example.com%", false, "", "", "bad percent-encoding" },
	{ "v=TLSRPTv1;rua=mailto:a@example.com%2", false, "", "", "bad percent-encoding" },
	{ "v=TLSRPTv1;rua=mailto:a@example.com%zz", false, "", "", "bad percent-encoding" },
	{ "v=TLSRPTv1;rua=mailto:a%0A@example.com", false, "", "", "percent-encoded control" },
	/* hfields dropped */
	{ "v=TLSRPTv1;rua=mailto:a@example.com?subject=tlsrpt", true,
	  "mailto:a@example.com?subject=tlsrpt", "a@example.com", NULL },
	/* unencoded , ! ; inside a URI */
	{ "v=TLSRPTv1;rua=mailto:a@example.com,b@example.com", false, "mailto:a@example.com",
	  "a@example.com", "unencoded ','" },
	{ "v=TLSRPTv1;rua=mailto:a!b@example.com", false, "", "", "'!' must be percent-encoded" },
	{ "v=TLSRPTv1;rua=https://r.example.net/a;b", false, "https://r.example.net/a", "-",
	  "unencoded ';'" },
	/* empty URIs */
	{ "v=TLSRPTv1;rua=", false, "", "", "rua= has no URI" },
	{ "v=TLSRPTv1;rua=mailto:a@example.com,", false, "mailto:a@example.com", "a@example.com", "empty URI" },
	{ "v=TLSRPTv1;rua=,mailto:a@example.com", false, "mailto:a@example.com", "a@example.com", "empty URI" },
	{ "v=TLSRPTv1;rua=mailto:", false, "", "", "without an address" },
	{ "v=TLSRPTv1;rua=https://", false, "", "", "has no host" },
	{ "v=TLSRPTv1;rua=https:r.example.net", false, "", "", "must start with https://" },
	{ "v=TLSRPTv1;rua=https://r.example.net:x/", false, "", "", "non-numeric port" },
	{ "v=TLSRPTv1;rua=https://[::1]:8443/r", true, "https://[::1]:8443/r", "-", NULL },
	/* unsupported schemes: skipped with a warning */
	{ "v=TLSRPTv1;rua=http://r.example.net/x,mailto:a@example.com", true,
	  "mailto:a@example.com", "a@example.com", "warning: skipped" },
	{ "v=TLSRPTv1;rua=http://r.example.net/x", false, "", "", "warning: skipped" },
	/* version */
	{ "v=TLSRPTv2;rua=mailto:a@example.com", false, "", "", "not a TLSRPT record" },
	{ "V=TLSRPTv1;rua=mailto:a@example.com", false, "", "", "case-sensitive" },
	{ "v=tlsrptv1;rua=mailto:a@example.com", false, "", "", "case-sensitive" },
	{ "v= TLSRPTv1;rua=mailto:a@example.com", false, "", "", "no spaces around '='" },
	{ "v = TLSRPTv1;rua=mailto:a@example.com", false, "", "", "no spaces around '='" },
	{ "v=TLSRPTv10;rua=mailto:a@example.com", false, "", "", "followed by ';'" },
	{ "v=TLSRPTv1 rua=mailto:a@example.com", false, "", "", "followed by ';'" },
	{ "rua=mailto:a@example.com;v=TLSRPTv1", false, "", "", "must be the first field" },
	{ " v=TLSRPTv1;rua=mailto:a@example.com", false, "", "", "starts with a space" },
	{ "v=spf1 -all", false, "", "", "not a TLSRPT record" },
	{ "v=TLSRPTv1", false, "", "", "no rua= field" },
	{ "v=TLSRPTv1;", false, "", "", "no rua= field" },
	{ "v=TLSRPTv1;ext=1", false, "", "", "no rua= field" },
	{ "v=TLSRPTv1;RUA=mailto:a@example.com", false, "", "", "lower-case" },
	{ "", false, "", "", "empty record" },
	/* field syntax */
	{ "v=TLSRPTv1;;rua=mailto:a@example.com", false, "mailto:a@example.com", "a@example.com", "empty field" },
	{ "v=TLSRPTv1;rua =mailto:a@example.com", false, "", "", "before '='" },
	{ "v=TLSRPTv1;rua= mailto:a@example.com", false, "", "", "after '='" },
	{ "v=TLSRPTv1;rua=mailto:a@example.com;ext=", false, "mailto:a@example.com", "a@example.com", "empty value" },
	{ "v=TLSRPTv1;rua=mailto:a@example.com;ext=a=b", false, "mailto:a@example.com", "a@example.com",
	  "not allowed in a value" },
	{ "v=TLSRPTv1;rua=mailto:a@example.com;=x", false, "mailto:a@example.com", "a@example.com", "empty name" },
	{ "v=TLSRPTv1;rua=mailto:a@example.com;v=TLSRPTv1", false, "mailto:a@example.com", "a@example.com",
	  "second v=" },
	/* characters */
	{ "v=TLSRPTv1;rua=mailto:a@example.com\n", false, "", "", "control character 0x0a at offset 35" },
	{ "v=TLSRPTv1;rua=mailto:a@exa\x01mple.com", false, "", "", "control character 0x01" },
	{ "v=TLSRPTv1;rua=mailto:a@b\xc3\xa4r.example", false, "", "", "non-ASCII byte 0xc3" },
	{ "v=TLSRPTv1;rua=mailto:a b@example.com", false, "", "", "contains a space" },
	{ "v=TLSRPTv1;rua=mailto:<a@example.com>", false, "", "", "character '<' is not allowed" },
	{ "v=TLSRPTv1;rua=mailto:a\"b@example.com", false, "", "", "character '\"' is not allowed" },
	/* mailto address checks */
	{ "v=TLSRPTv1;rua=mailto:example.com", false, "", "", "has no '@'" },
	{ "v=TLSRPTv1;rua=mailto:@example.com", false, "", "", "empty or too long local part" },
	{ "v=TLSRPTv1;rua=mailto:a@", false, "", "", "empty or too long domain" },
	{ "v=TLSRPTv1;rua=mailto:a@exa_mple.com", false, "", "", "not a host name" },
	{ "v=TLSRPTv1;rua=mailto:a..b@example.com", false, "", "", "misplaced '.'" },
	{ "v=TLSRPTv1;rua=mailto:a%2Cb@example.com", false, "", "", "not a dot-atom" },
	{ "v=TLSRPTv1;rua=mailto:a@example.com%0D%0ABcc:x@evil.example", false, "", "", "control" },
};

static void join(char *out, size_t outsz, const struct tlsrpt_record *r, bool addrs)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < r->nrua; i++) {
		const char *s = addrs ? (r->rua[i].address ? r->rua[i].address : "-") : r->rua[i].uri;
		int n = snprintf(out + o, outsz - o, "%s%s", i ? " " : "", s);
		if (n < 0 || (size_t)n >= outsz - o)
			return;
		o += (size_t)n;
	}
}

static void test_table(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *t = &cases[i];
		struct tlsrpt_record r;
		char got[1024];
		int rc = tlsrpt_record_parse(t->in, strlen(t->in), &r);

		CHECK(rc == 0, "case %zu \"%s\": parse returned %d", i, t->in, rc);
		CHECK(r.ok == t->ok, "case %zu \"%s\": ok got %d, want %d (diag: %s)", i, t->in,
		      r.ok, t->ok, r.ndiag ? r.diag[0] : "none");
		join(got, sizeof(got), &r, false);
		CHECK(strcmp(got, t->uris) == 0, "case %zu \"%s\": uris got \"%s\", want \"%s\"",
		      i, t->in, got, t->uris);
		join(got, sizeof(got), &r, true);
		CHECK(strcmp(got, t->addrs) == 0, "case %zu \"%s\": addresses got \"%s\", want \"%s\"",
		      i, t->in, got, t->addrs);
		if (t->diag == NULL)
			CHECK(r.ndiag == 0, "case %zu \"%s\": got diagnostic \"%s\", want none",
			      i, t->in, r.ndiag ? r.diag[0] : "");
		else
			CHECK(r.ndiag > 0 && strstr(r.diag[0], t->diag) != NULL,
			      "case %zu \"%s\": diagnostic got \"%s\", want it to contain \"%s\"",
			      i, t->in, r.ndiag ? r.diag[0] : "(none)", t->diag);
		for (size_t k = 0; k < r.nrua; k++)
			CHECK(r.rua[k].scheme == (strncasecmp(r.rua[k].uri, "mailto:", 7) == 0
						  ? RUA_MAILTO : RUA_HTTPS),
			      "case %zu: scheme of %s", i, r.rua[k].uri);
		tlsrpt_record_free(&r);
	}
}

static void test_candidate(void)
{
	static const struct {
		const char *in;
		bool want;
	} c[] = {
		{ "v=TLSRPTv1;rua=mailto:a@b.c", true },
		{ "v=TLSRPTv1 ;rua=mailto:a@b.c", true },
		{ "v=TLSRPTv1\t;", true },
		{ "v=TLSRPTv1", false },
		{ "v=TLSRPTv10;", false },
		{ "v=tlsrptv1;", false },
		{ "v=STSv1; id=1", false },
		{ "", false },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		CHECK(tlsrpt_record_is_candidate(c[i].in, strlen(c[i].in)) == c[i].want,
		      "candidate \"%s\": got %d, want %d", c[i].in, !c[i].want, c[i].want);
	CHECK(!tlsrpt_record_is_candidate(NULL, 0), "candidate NULL: got true, want false");
}

static void test_limits(void)
{
	struct tlsrpt_record r;
	char *big = malloc(TLSRPT_RECORD_MAX + 2);
	char line[64];
	size_t o;

	/* too long */
	memset(big, 'a', TLSRPT_RECORD_MAX + 1);
	memcpy(big, "v=TLSRPTv1;rua=mailto:", 22);
	big[TLSRPT_RECORD_MAX + 1] = '\0';
	CHECK_INT(tlsrpt_record_parse(big, TLSRPT_RECORD_MAX + 1, &r), 0);
	CHECK(!r.ok, "too long record: got ok, want not ok");
	CHECK(r.ndiag == 1 && strstr(r.diag[0], "too long") != NULL, "too long: diag got \"%s\"",
	      r.ndiag ? r.diag[0] : "(none)");
	tlsrpt_record_free(&r);

	/* 20 distinct destinations: 16 kept, one warning */
	o = (size_t)snprintf(big, TLSRPT_RECORD_MAX, "v=TLSRPTv1;rua=");
	for (int i = 0; i < 20; i++) {
		int n = snprintf(line, sizeof(line), "%smailto:r%d@example.com", i ? "," : "", i);
		memcpy(big + o, line, (size_t)n);
		o += (size_t)n;
	}
	CHECK_INT(tlsrpt_record_parse(big, o, &r), 0);
	CHECK(r.ok, "20 destinations: got not ok (%s)", r.ndiag ? r.diag[0] : "");
	CHECK_INT(r.nrua, TLSRPT_MAX_RUA);
	CHECK(r.ndiag == 1 && strstr(r.diag[0], "warning: more than 16") != NULL,
	      "20 destinations: diag got \"%s\"", r.ndiag ? r.diag[0] : "(none)");
	tlsrpt_record_free(&r);

	/* many problems: diagnostics bounded, the last says so */
	o = (size_t)snprintf(big, TLSRPT_RECORD_MAX, "v=TLSRPTv1;rua=mailto:a@example.com");
	for (int i = 0; i < 40; i++) {
		memcpy(big + o, ";;", 2);
		o += 2;
	}
	CHECK_INT(tlsrpt_record_parse(big, o, &r), 0);
	CHECK(!r.ok, "many problems: got ok");
	CHECK_INT(r.ndiag, TLSRPT_MAX_DIAG);
	CHECK_STR(r.diag[TLSRPT_MAX_DIAG - 1], "more problems not shown");
	tlsrpt_record_free(&r);

	/* NUL byte inside the length */
	CHECK_INT(tlsrpt_record_parse("v=TLSRPTv1;rua=mailto:a@b.c\0x", 29, &r), 0);
	CHECK(!r.ok && r.ndiag == 1 && strstr(r.diag[0], "control character 0x00 at offset 27"),
	      "NUL: diag got \"%s\"", r.ndiag ? r.diag[0] : "(none)");
	tlsrpt_record_free(&r);
	free(big);
}

int main(void)
{
	test_table();
	test_candidate();
	test_limits();
	return check_done("test_tlsrpt_record");
}
