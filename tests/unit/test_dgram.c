/*
 * test_dgram - the datagram parser against the verbatim libtlsrpt datagrams
 * of the reference and against bad input of every kind.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dgram.h"

static struct dgram_parser *P;

static enum dgram_status parse(const char *s, struct dgram *d)
{
	return dgram_parse(P, s, strlen(s), d, NULL);
}

static int str_eq(struct result_str r, const char *want)
{
	if (want == NULL)
		return r.p == NULL;
	return r.p && r.len == strlen(want) && memcmp(r.p, want, r.len) == 0;
}

#define CHECK_RSTR(got, want) CHECK(str_eq((got), (want)), "%s: got \"%.*s\", want \"%s\"", \
	#got, (int)(got).len, (got).p ? (got).p : "(null)", (want) ? (want) : "(null)")

static void test_verbatim(void)
{
	struct dgram d;

	/* libtlsrpt 0.5.1rc2, no policy found, success */
	CHECK_INT(parse("{\"dpv\": \"1\",\"d\": \"example.com\",\"pr\": \"v=TLSRPTv1;rua=mailto:reports@example.com\","
			"\"policies\":[{\"policy-type\":9,\"t\":0,\"f\":0}]}", &d), DGRAM_OK);
	CHECK_RSTR(d.d, "example.com");
	CHECK_RSTR(d.pr, "v=TLSRPTv1;rua=mailto:reports@example.com");
	CHECK_INT(d.npolicies, 1);
	CHECK_INT(d.policies[0].type, POLICY_NONE);
	CHECK_INT(d.policies[0].failed, 0);
	CHECK_INT(d.policies[0].ndetails, 0);
	CHECK_INT(d.flags, 0);

	/* Debian 13's 0.5.0rc1: no dpv */
	CHECK_INT(parse("{\"d\": \"example.com\",\"pr\": \"v=TLSRPTv1;rua=mailto:reports@example.com\","
			"\"policies\":[{\"policy-type\":9,\"t\":0,\"f\":0}]}", &d), DGRAM_OK);
	CHECK_INT(d.flags, 0);

	/* DANE failure 204 with every field */
	CHECK_INT(parse("{\"dpv\": \"1\",\"d\": \"example.com\",\"pr\": \"v=TLSRPTv1;rua=mailto:reports@example.com\",\"policies\":[{\"policy-type\":1,\"policy-domain\": \"company-y.example\",\"policy-string\":[\"3 0 1 1F850A337E6DB9C609C522D136A475638CC43E1ED424F8EEC8513D747D1D085D\",\"3 0 1 12350A337E6DB9C6123522D136A475638CC43E1ED424F8EEC8513D747D1D1234\"],\"failure-details\":[{\"c\":204,\"s\": \"1.2.3.4\",\"n\": \"mailin.example.com\",\"h\": \"tes-ehlo.example.com\",\"r\": \"11.22.33.55\",\"a\": \"This is additional information\",\"f\": \"999 TEST ERROR\"}],\"t\":1,\"f\":1}]}", &d), DGRAM_OK);
	CHECK_INT(d.policies[0].type, POLICY_TLSA);
	CHECK_RSTR(d.policies[0].domain, "company-y.example");
	CHECK_INT(d.policies[0].nstrings, 2);
	CHECK_RSTR(d.policies[0].strings[1], "3 0 1 12350A337E6DB9C6123522D136A475638CC43E1ED424F8EEC8513D747D1D1234");
	CHECK_INT(d.policies[0].failed, 1);
	CHECK_INT(d.policies[0].ndetails, 1);
	CHECK_INT(d.policies[0].details[0].code, RESULT_CERTIFICATE_EXPIRED);
	CHECK_RSTR(d.policies[0].details[0].sending_ip, "1.2.3.4");
	CHECK_RSTR(d.policies[0].details[0].mx_hostname, "mailin.example.com");
	CHECK_RSTR(d.policies[0].details[0].mx_helo, "tes-ehlo.example.com");
	CHECK_RSTR(d.policies[0].details[0].receiving_ip, "11.22.33.55");
	CHECK_RSTR(d.policies[0].details[0].additional, "This is additional information");
	CHECK_RSTR(d.policies[0].details[0].reason, "999 TEST ERROR");

	/* two policies, STS failed with two details, TLSA succeeded */
	CHECK_INT(parse("{\"dpv\": \"1\",\"d\": \"example.com\",\"pr\": \"v=TLSRPTv1;rua=mailto:reports@example.com\",\"policies\":[{\"policy-type\":2,\"policy-domain\": \"company-y.example\",\"policy-string\":[\"version: STSv1\"],\"mx-host\":[\"*.mail.company-y.example\"],\"failure-details\":[{\"c\":302,\"s\": \"1.2.3.4\",\"n\": \"mailin.example.com\",\"h\": \"test-ehlo.example.com\",\"r\": \"11.22.33.44\",\"a\": \"x\",\"f\": \"999 TEST ERROR\"},{\"c\":303}],\"t\":2,\"f\":1},{\"policy-type\":1,\"policy-domain\": \"company-y.example\",\"policy-string\":[\"3 0 1 1F85\"],\"t\":0,\"f\":0}]}", &d), DGRAM_OK);
	CHECK_INT(d.npolicies, 2);
	CHECK_INT(d.policies[0].nmx, 1);
	CHECK_RSTR(d.policies[0].mx[0], "*.mail.company-y.example");
	CHECK_INT(d.policies[0].ndetails, 2);
	CHECK_INT(d.policies[0].details[1].code, RESULT_STS_WEBPKI_INVALID);
	CHECK_RSTR(d.policies[0].details[1].sending_ip, NULL);
	CHECK_INT(d.policies[1].type, POLICY_TLSA);
	CHECK_INT(d.policies[1].failed, 0);
	CHECK_RSTR(d.policies[1].strings[0], "3 0 1 1F85");

	/* the escaping test: raw UTF-8 passes, escapes decode */
	CHECK_INT(parse("{\"dpv\": \"1\",\"d\": \"Example.COM.\",\"pr\": \"v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.com/x\",\"policies\":[{\"policy-type\":2,\"policy-domain\": \"example.com\",\"failure-details\":[{\"c\":201,\"a\": \"q\\\"b\\\\s\\tt\\nn\\u0001 \xc3\xa4 \\u007f end\"}],\"t\":1,\"f\":1}]}", &d), DGRAM_OK);
	CHECK_RSTR(d.d, "Example.COM.");
	CHECK_RSTR(d.policies[0].details[0].additional, "q\"b\\s\tt\nn\x01 \xc3\xa4 \x7f end");
	CHECK_INT(d.flags, 0);
}

static void test_repairs(void)
{
	struct dgram d;

	/* invalid UTF-8 in the EHLO reply: replaced, flagged, still counted */
	CHECK_INT(parse("{\"d\": \"x.org\",\"pr\": \"v=TLSRPTv1;rua=mailto:a@x.org\",\"policies\":[{\"policy-type\":9,"
			"\"failure-details\":[{\"c\":201,\"h\": \"250 mx \xff\xfe ok\"}],\"t\":1,\"f\":1}]}", &d), DGRAM_OK);
	CHECK(d.flags & DGRAM_F_INVALID_UTF8, "invalid UTF-8 not flagged");
	CHECK_RSTR(d.policies[0].details[0].mx_helo, "250 mx \xef\xbf\xbd\xef\xbf\xbd ok");
	/* overlong encoding and a lone surrogate escape */
	CHECK_INT(parse("{\"d\": \"x.org\",\"pr\": \"p\",\"policies\":[{\"policy-type\":9,"
			"\"failure-details\":[{\"c\":201,\"h\": \"\xc0\xaf \\ud800 \\ud83d\\ude00\"}],\"t\":1,\"f\":1}]}", &d), DGRAM_OK);
	CHECK_RSTR(d.policies[0].details[0].mx_helo, "\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd \xf0\x9f\x98\x80");
	/* unknown dpv, t mismatch, unknown result code: flagged and kept */
	CHECK_INT(parse("{\"dpv\": \"2\",\"d\": \"x.org\",\"pr\": \"p\",\"policies\":[{\"policy-type\":9,"
			"\"failure-details\":[{\"c\":999}],\"t\":3,\"f\":1}]}", &d), DGRAM_OK);
	CHECK_INT(d.flags, DGRAM_F_UNKNOWN_DPV | DGRAM_F_COUNT_MISMATCH | DGRAM_F_UNKNOWN_RESULT);
	CHECK_INT(d.policies[0].details[0].code, 999);
	/* unknown policy type: dropped, the other policy stays */
	CHECK_INT(parse("{\"d\": \"x.org\",\"pr\": \"p\",\"policies\":[{\"policy-type\":7,\"t\":0,\"f\":0},"
			"{\"policy-type\":2,\"t\":0,\"f\":0}]}", &d), DGRAM_OK);
	CHECK_INT(d.npolicies, 1);
	CHECK_INT(d.policies[0].type, POLICY_STS);
	CHECK(d.flags & DGRAM_F_UNKNOWN_POLICY, "unknown policy not flagged");
	/* whitespace, member order, unknown members of any type are fine */
	CHECK_INT(parse(" {\n \"policies\" : [ { \"f\" : 1 , \"x\":{\"y\":[1,2.5e3,true,null,{\"z\":\"w\"}]}, \"policy-type\" : 1 } ] ,"
			" \"pr\":\"p\", \"extra\": [], \"d\" : \"x.org\" } \n", &d), DGRAM_OK);
	CHECK_INT(d.policies[0].failed, 1);
	/* f other than 0/1 means failure */
	CHECK_INT(parse("{\"d\": \"x.org\",\"pr\": \"p\",\"policies\":[{\"policy-type\":9,\"t\":0,\"f\":5}]}", &d), DGRAM_OK);
	CHECK_INT(d.policies[0].failed, 1);
}

static void test_rejects(void)
{
	static const struct {
		const char *in;
		enum dgram_status want;
	} cases[] = {
		{ "", DGRAM_MALFORMED },
		{ "garbage", DGRAM_MALFORMED },
		{ "5", DGRAM_WRONG_SHAPE },
		{ "[]", DGRAM_WRONG_SHAPE },
		{ "\"str\"", DGRAM_WRONG_SHAPE },
		{ "{}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"x\"}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"x\",\"pr\":\"p\"}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"policies\":[]}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"\",\"pr\":\"p\",\"policies\":[{\"policy-type\":9,\"f\":0}]}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":5,\"pr\":\"p\",\"policies\":[{\"policy-type\":9,\"f\":0}]}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":null,\"pr\":\"p\",\"policies\":[{\"policy-type\":9,\"f\":0}]}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"policies\":[{\"policy-type\":9}]}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"policies\":[{\"f\":0}]}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"policies\":[{\"policy-type\":\"9\",\"f\":0}]}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"policies\":[{\"policy-type\":9.5,\"f\":0}]}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"policies\":[{\"policy-type\":9,\"f\":0,\"failure-details\":[{}]}]}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"x\",\"d\":\"y\",\"pr\":\"p\",\"policies\":[{\"policy-type\":9,\"f\":0}]}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"policies\":[{\"policy-type\":9,\"f\":0}]} x", DGRAM_MALFORMED },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"policies\":[{\"policy-type\":9,\"f\":0}]", DGRAM_MALFORMED },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"policies\":[{\"policy-type\":9,\"f\":0}", DGRAM_MALFORMED },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"policies\":[{\"policy-type\":9,\"f\":0,", DGRAM_MALFORMED },
		{ "{\"d\":\"x", DGRAM_MALFORMED },
		{ "{\"d\":\"a\\qb\",\"pr\":\"p\",\"policies\":[{\"policy-type\":9,\"f\":0}]}", DGRAM_MALFORMED },
		{ "{\"d\":\"a\nb\",\"pr\":\"p\",\"policies\":[{\"policy-type\":9,\"f\":0}]}", DGRAM_MALFORMED },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"policies\":[{\"policy-type\":99999999999999999999,\"f\":0}]}", DGRAM_WRONG_SHAPE },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"z\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],"
		  "\"policies\":[{\"policy-type\":9,\"f\":0}]}", DGRAM_MALFORMED },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"z\":[1,],\"policies\":[{\"policy-type\":9,\"f\":0}]}", DGRAM_MALFORMED },
		{ "{\"d\":\"x\",\"pr\":\"p\",\"z\":{\"a\" 1},\"policies\":[{\"policy-type\":9,\"f\":0}]}", DGRAM_MALFORMED },
	};
	struct dgram d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum dgram_status got = parse(cases[i].in, &d);

		CHECK(got == cases[i].want, "case %zu \"%.60s\": got %d, want %d", i, cases[i].in,
		      got, cases[i].want);
	}
	/* a truncated prefix of a valid datagram is never accepted */
	{
		const char *full = "{\"dpv\": \"1\",\"d\": \"example.com\",\"pr\": \"v=TLSRPTv1;rua=mailto:r@example.com\",\"policies\":[{\"policy-type\":2,\"policy-domain\": \"c.example\",\"policy-string\":[\"version: STSv1\"],\"mx-host\":[\"*.c.example\"],\"failure-details\":[{\"c\":302,\"s\": \"1.2.3.4\"}],\"t\":1,\"f\":1}]}";
		size_t n = strlen(full);

		for (size_t k = 0; k < n; k++)
			CHECK(dgram_parse(P, full, k, &d, NULL) != DGRAM_OK, "prefix of %zu bytes accepted", k);
		CHECK_INT(dgram_parse(P, full, n, &d, NULL), DGRAM_OK);
	}
}

static void test_large(void)
{
	/* 1300 failure details: about the most that fits one kernel datagram */
	size_t n = 1300, cap = n * 200 + 1000, len = 0;
	char *buf = malloc(cap);
	struct dgram d;

	len += (size_t)snprintf(buf + len, cap - len, "{\"d\": \"big.example\",\"pr\": \"v=TLSRPTv1;rua=mailto:a@big.example\",\"policies\":[{\"policy-type\":9,\"failure-details\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s{\"c\":205,\"s\": \"192.0.2.%zu\",\"f\": \"reason-%zu\"}",
					i ? "," : "", i % 256, i);
	len += (size_t)snprintf(buf + len, cap - len, "],\"t\":%zu,\"f\":1}]}", n);
	CHECK_INT(dgram_parse(P, buf, len, &d, NULL), DGRAM_OK);
	CHECK_INT(d.policies[0].ndetails, n);
	CHECK_RSTR(d.policies[0].details[1299].reason, "reason-1299");
	free(buf);
}

int main(void)
{
	P = dgram_parser_new();
	test_verbatim();
	test_repairs();
	test_rejects();
	test_large();
	dgram_parser_free(P);
	return check_done("test_dgram");
}
