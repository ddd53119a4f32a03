/*
 * fuzz_pflog - the Postfix log line parser (pflog_parse), the pairing state
 * machine behind it (pflog_feed, with fake lookups that find a TLSRPT
 * record and an STS policy for every domain) and the policy table reply
 * parser (pflookup_parse_reply). Input: log lines separated by '\n'.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "pflog.h"
#include "pflookup.h"

static int fake_txt(void *arg, const char *name, struct pflookup_txt *out)
{
	out->rec[0] = strdup("v=TLSRPTv1; rua=mailto:r@example.com");
	out->len[0] = out->rec[0] ? strlen(out->rec[0]) : 0;
	out->n = out->rec[0] ? 1 : 0;
	return name[11] == 'x' ? PFLOOKUP_TEMPFAIL : PFLOOKUP_FOUND;
}

static int fake_policy(void *arg, const char *key, char **reply)
{
	if (key[0] == '.')
		return PFLOOKUP_NOTFOUND;
	*reply = strdup("secure match=a policy_type=sts policy_domain=example.com "
			"mx_host_pattern=*.example.com { policy_string = version: STSv1 }");
	return *reply ? PFLOOKUP_FOUND : PFLOOKUP_TEMPFAIL;
}

static uint64_t total;

static void sink(void *arg, int64_t when, struct result_str d, struct result_str pr,
		 const struct result_policy *p)
{
	/* touch every byte the sink gets, so ASan sees bad views */
	for (size_t i = 0; i < d.len; i++)
		total += (unsigned char)d.p[i];
	for (size_t i = 0; i < pr.len; i++)
		total += (unsigned char)pr.p[i];
	for (size_t i = 0; i < p->domain.len; i++)
		total += (unsigned char)p->domain.p[i];
	for (size_t j = 0; j < p->ndetails; j++) {
		const struct result_detail *x = &p->details[j];

		total += x->mx_hostname.len + x->receiving_ip.len + x->reason.len;
		for (size_t i = 0; i < x->reason.len; i++)
			total += (unsigned char)x->reason.p[i];
		for (size_t i = 0; i < x->mx_hostname.len; i++)
			total += (unsigned char)x->mx_hostname.p[i];
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conf *c;
	static const struct pflookup_ops ops = { .txt = fake_txt, .policy = fake_policy };
	struct pflog *pf;
	struct pflog_event ev;
	struct pflookup_reply r;
	char err[256];
	const char *p = (const char *)data, *e = p + size;
	int64_t now = 1795860000;

	if (c == NULL) {
		log_init("fuzz_pflog", LOG_TO_STDERR, 0);
		c = conf_new();
		if (c == NULL)
			return 0;
		conf_set(c, "report_sender=r@example.com", err, sizeof(err));
		conf_set(c, "log_policy_map=fake:map", err, sizeof(err));
		conf_set(c, "dns_cache_size=16", err, sizeof(err));
	}
	pflog_parse(p, size, &ev);
	pflookup_parse_reply(p, size, &r);
	pf = pflog_new(c, sink, NULL, err, sizeof(err));
	if (pf == NULL)
		return 0;
	pflog_set_ops(pf, &ops);
	while (p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *le = nl ? nl : e;

		pflog_feed(pf, p, (size_t)(le - p), now);
		now += (le - p) % 7 == 0 ? 400 : 1;	/* let states expire now and then */
		p = nl ? nl + 1 : e;
	}
	pflog_close(pf);
	return 0;
}
