/*
 * fuzz_sts_policy - the MTA-STS policy parser, the TXT record parser and
 * the MX matcher on the same untrusted bytes. A parsed policy's patterns
 * are matched against each of its own lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sts_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sts_policy p;
	char err[256], id[STS_ID_MAX + 1];
	char *rec = (char *)data;
	size_t len = size;

	if (sts_policy_parse((const char *)data, size, 65536, &p, err, sizeof(err)) ==
	    STS_POLICY_OK) {
		for (size_t i = 0; i < p.nlines; i++)
			(void)sts_policy_mx_match(&p, p.lines[i]);
		for (size_t i = 0; i < p.nmx; i++)
			(void)sts_mx_match(p.mx[i], p.mx[i]);
	}
	sts_policy_free(&p);
	(void)sts_txt_parse((const char *)data, size, id, sizeof(id), err, sizeof(err));
	(void)sts_txt_select(&rec, &len, 1, id, sizeof(id), err, sizeof(err));
	if (size < 600) {
		char s[600];

		memcpy(s, data, size);
		s[size] = '\0';
		(void)sts_mx_match(s, s + strlen(s) / 2);
		(void)sts_mx_match("*.example.com", s);
	}
	return 0;
}
