/*
 * sts_reply - socketmap replies for MTA-STS policies. See sts_reply.h.
 *
 * SECURITY: policy lines come from a remote policy file: they are printable
 * (sts_policy checks), and lines with braces, which would end Postfix's
 * "{ name = value }" early and let the file inject attributes, are left out.
 */
#include "sts_reply.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "result.h"

static bool sendable(const char *line)
{
	return strpbrk(line, "{}") == NULL;
}

size_t sts_reply_unsendable(const struct sts_policy *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->nlines; i++)
		n += !sendable(p->lines[i]);
	return n;
}

/* Postfix's match= syntax: "*.example.net" -> ".example.net". */
static void add_match(struct buf *b, const struct sts_policy *p)
{
	buf_adds(b, "secure match=");
	for (size_t i = 0; i < p->nmx; i++) {
		const char *m = p->mx[i];

		if (i)
			buf_addc(b, ':');
		buf_adds(b, m[0] == '*' ? m + 1 : m);
	}
	buf_adds(b, " servername=hostname");
}

static void add_tlsrpt(struct buf *b, const char *domain, const struct sts_policy *p)
{
	buf_printf(b, " policy_type=sts policy_domain=%s", domain);
	for (size_t i = 0; i < p->nmx; i++)
		buf_printf(b, " mx_host_pattern=%s", p->mx[i]);
	for (size_t i = 0; i < p->nlines; i++)
		if (sendable(p->lines[i]))
			buf_printf(b, " { policy_string = %s }", p->lines[i]);
}

const char *sts_reply_policy(enum sts_reply_gen gen, const char *level, const char *domain,
			     const struct sts_policy *p, struct buf *data)
{
	buf_reset(data);
	if (p->mode == STS_MODE_ENFORCE) {
		add_match(data, p);
		if (gen == STS_GEN_310) {
			add_tlsrpt(data, domain, p);
			if (data->overflow) {	/* too long: without the report data */
				log_warn("%s: reply too long, sent without policy strings", domain);
				buf_reset(data);
				add_match(data, p);
			}
		}
	} else if (p->mode == STS_MODE_TESTING && gen == STS_GEN_310 && level) {
		buf_adds(data, level);
		add_tlsrpt(data, domain, p);
		if (data->overflow) {
			buf_reset(data);
			buf_printf(data, "%s policy_type=sts policy_domain=%s", level, domain);
		}
	}
	if (data->len == 0 || data->overflow) {
		if (data->overflow)
			log_warn("%s: reply too long for socketmap", domain);
		buf_reset(data);
		return "NOTFOUND";
	}
	return "OK";
}

const char *sts_reply_entry(enum sts_reply_gen gen, const char *level,
			    const struct sts_entry *e, int64_t now, struct buf *data)
{
	struct sts_policy p;
	const char *status;
	char err[200];

	buf_reset(data);
	if (!sts_entry_valid(e, now) ||
	    sts_policy_parse(e->text, e->len, SIZE_MAX, &p, err, sizeof(err)) != STS_POLICY_OK)
		return "NOTFOUND";
	status = sts_reply_policy(gen, level, e->domain, &p, data);
	sts_policy_free(&p);
	return status;
}

void sts_reply_status(const struct sts_entry *e, int64_t since, int64_t now, struct buf *data)
{
	buf_reset(data);
	if (!e->txt_present && e->checked >= since)
		buf_printf(data, "no-policy no valid _mta-sts.%s TXT record", e->domain);
	else if (e->last_attempt >= since && e->last_error_code)
		buf_printf(data, "failed %s %s", result_code_name(e->last_error_code),
			   e->last_error);
	else if (e->last_attempt >= since && e->zero_age)
		buf_printf(data, "fetched id=%s max_age=0 (applied, not cached)", e->id);
	else if (e->last_attempt >= since && sts_entry_valid(e, now))
		buf_printf(data, "fetched id=%s expires=%lld", e->id, (long long)e->expires);
	else if (e->checked >= since)
		buf_printf(data, "unchanged id=%s", e->txt_id);
	else
		buf_printf(data, "pending");
}
