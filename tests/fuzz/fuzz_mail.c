/*
 * fuzz_mail - mail_build() with untrusted report fields. The input is
 * "policy-domain\nsubmitter\nreport-id\nfilename\nrcpt\n" followed by the
 * gzip bytes. Whenever mail_build() accepts, the header block must consist
 * of exactly the 11 fields we write (no injected field) and every LF must
 * be part of a CRLF; otherwise abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "deliver.h"

static struct conf *fuzz_conf(void)
{
	static struct conf *c;
	char err[256];

	if (!c) {
		c = conf_new();
		if (!c || conf_set(c, "dkim_sign=no", err, sizeof(err)) < 0 ||
		    conf_set(c, "contact_info=tlsrpt@sender.example", err, sizeof(err)) < 0)
			abort();
	}
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *f[5], *p, err[512];
	struct report_file r;
	struct buf out;
	size_t i, fields = 0;
	int k;

	if (size > 65536)
		return 0;
	copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	p = copy;
	for (k = 0; k < 5; k++) {
		char *nl = memchr(p, '\n', size - (size_t)(p - copy));

		if (!nl) {
			free(copy);
			return 0;
		}
		*nl = '\0';
		f[k] = p;
		p = nl + 1;
	}
	memset(&r, 0, sizeof(r));
	r.policy_domain = f[0];
	r.submitter = f[1];
	r.report_id = f[2];
	r.filename = f[3];
	r.organization = "Fuzz \x01 Org";
	r.contact = "tlsrpt@sender.example";
	r.begin = 1747872000;
	r.end = r.begin + 86399;
	r.gz = (const unsigned char *)p;
	r.gzlen = size - (size_t)(p - copy);
	buf_init(&out, 1024 * 1024);
	if (mail_build(&r, f[4], fuzz_conf(), 1747970262, &out, err, sizeof(err)) == 0) {
		for (i = 0; i < out.len; i++) {
			if (out.data[i] == '\n' && (i == 0 || out.data[i - 1] != '\r'))
				abort();
			if (i >= 2 && out.data[i - 1] == '\n' && out.data[i] == '\r')
				break;	/* end of the header block */
			if ((i == 0 || out.data[i - 1] == '\n') && out.data[i] != ' ' &&
			    out.data[i] != '\t')
				fields++;
		}
		if (fields != 11)
			abort();
	}
	buf_free(&out);
	free(copy);
	return 0;
}
