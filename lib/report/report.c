/*
 * report - build one RFC 8460 report from one aggregated domain. See report.h.
 *
 * SECURITY: the domain, record and every policy string come from Postfix
 * datagrams, ultimately from DNS and remote servers. They reach the JSON
 * only through json-c (escaped); the domain also goes into the filename,
 * the report-id and mail headers, so it must pass report_domain_ok first.
 * A struct report must not be copied: 'file' points into it.
 */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "log.h"

bool report_domain_ok(const char *d)
{
	size_t len = d ? strlen(d) : 0, label = 0;

	if (len == 0 || len > REPORT_DOMAIN_MAX || d[0] == '.' || d[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = d[i];

		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return d[len - 1] != '-';
}

int report_identity_from_conf(const struct conf *c, struct report_identity *id,
			      char *err, size_t errsz)
{
	const char *org = conf_str(c, "organization_name");
	const char *contact = conf_str(c, "contact_info");
	const char *sub = conf_str(c, "submitter_domain");
	const char *at;

	memset(id, 0, sizeof(*id));
	if (org[0] == '\0') {
		snprintf(err, errsz, "organization_name is not set (required to send reports)");
		return -1;
	}
	if (contact[0] == '\0') {
		snprintf(err, errsz, "contact_info is not set (required: the address in every report)");
		return -1;
	}
	at = strrchr(contact, '@');
	if (at == NULL || at == contact || strchr(contact, ' ') || strchr(contact, '<') ||
	    strchr(contact, '>') || strchr(contact, '"')) {
		snprintf(err, errsz, "contact_info \"%s\" is not a plain address (local@domain)", contact);
		return -1;
	}
	if (sub[0] == '\0')
		sub = at + 1;
	if (strlen(org) >= sizeof(id->organization) || strlen(contact) >= sizeof(id->contact)) {
		snprintf(err, errsz, "organization_name or contact_info is too long");
		return -1;
	}
	for (const char *p = org; *p; p++)
		if ((unsigned char)*p < 0x20) {
			snprintf(err, errsz, "organization_name contains a control character");
			return -1;
		}
	/* the submitter goes into filenames and headers: lower-case A-labels */
	if (strlen(sub) >= sizeof(id->submitter)) {
		snprintf(err, errsz, "submitter domain is too long");
		return -1;
	}
	for (size_t i = 0; sub[i]; i++)
		id->submitter[i] = (sub[i] >= 'A' && sub[i] <= 'Z') ? (char)(sub[i] + 32) : sub[i];
	if (!report_domain_ok(id->submitter)) {
		snprintf(err, errsz, "submitter domain \"%s\" (%s) is not an A-label domain name",
			 sub, conf_str(c, "submitter_domain")[0] ? "submitter_domain" :
			 "domain of contact_info");
		return -1;
	}
	memcpy(id->organization, org, strlen(org) + 1);
	memcpy(id->contact, contact, strlen(contact) + 1);
	return 0;
}

enum day_fmt { DF_START, DF_END, DF_COMPACT };

static void fmt_day(int64_t day, enum day_fmt f, char *out, size_t outsz)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	if (f == DF_START)
		strftime(out, outsz, "%Y-%m-%dT00:00:00Z", &tm);
	else if (f == DF_END)
		strftime(out, outsz, "%Y-%m-%dT23:59:59Z", &tm);
	else
		strftime(out, outsz, "%Y%m%d", &tm);
}

void report_day_start(int64_t day, char *out, size_t outsz)
{
	fmt_day(day, DF_START, out, outsz);
}

void report_day_end(int64_t day, char *out, size_t outsz)
{
	fmt_day(day, DF_END, out, outsz);
}

void report_uid(int64_t day, const char *domain, const char *record,
		const char *submitter, char *uid)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char daybuf[24];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int n = snprintf(daybuf, sizeof(daybuf), "%lld", (long long)day);

	memset(md, 0, sizeof(md));
	/* fields separated by NUL so that no two inputs collide by shifting */
	if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, daybuf, (size_t)n + 1) ||
	    !EVP_DigestUpdate(ctx, domain, strlen(domain) + 1) ||
	    !EVP_DigestUpdate(ctx, record ? record : "", strlen(record ? record : "") + 1) ||
	    !EVP_DigestUpdate(ctx, submitter, strlen(submitter) + 1) ||
	    !EVP_DigestFinal_ex(ctx, md, &mdlen))
		memset(md, 0, sizeof(md));	/* cannot happen short of ENOMEM */
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < REPORT_UID_LEN / 2; i++) {
		uid[2 * i] = hex[md[i] >> 4];
		uid[2 * i + 1] = hex[md[i] & 15];
	}
	uid[REPORT_UID_LEN] = '\0';
}

int report_gzip(const void *in, size_t len, unsigned char **out, size_t *outlen)
{
	z_stream z;
	gz_header h;
	uLong bound;
	unsigned char *o;

	*out = NULL;
	*outlen = 0;
	memset(&z, 0, sizeof(z));
	if (len > 0x7fffffffu)
		return -1;
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	memset(&h, 0, sizeof(h));
	h.os = 3;		/* Unix, whatever the platform: same bytes everywhere */
	h.time = 0;
	if (deflateSetHeader(&z, &h) != Z_OK) {
		deflateEnd(&z);
		return -1;
	}
	bound = deflateBound(&z, (uLong)len) + 32;
	o = malloc(bound);
	if (o == NULL) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = o;
	z.avail_out = (uInt)bound;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(o);
		return -1;
	}
	*outlen = z.total_out;
	deflateEnd(&z);
	*out = o;
	return 0;
}

int report_gunzip(const unsigned char *in, size_t len, size_t max,
		  char **out, size_t *outlen)
{
	z_stream z;
	size_t cap = max < 64 * 1024 ? max : 64 * 1024, used = 0;
	char *o = malloc(cap + 1);
	int rc;

	*out = NULL;
	*outlen = 0;
	if (o == NULL || len > 0x7fffffffu) {
		free(o);
		return -1;
	}
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 16) != Z_OK) {
		free(o);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	do {
		if (used == cap) {
			char *n;

			if (cap >= max)
				break;
			cap = cap * 2 > max ? max : cap * 2;
			n = realloc(o, cap + 1);
			if (n == NULL)
				break;
			o = n;
		}
		z.next_out = (Bytef *)o + used;
		z.avail_out = (uInt)(cap - used);
		rc = inflate(&z, Z_NO_FLUSH);
		used = cap - z.avail_out;
		if (rc == Z_STREAM_END) {
			inflateEnd(&z);
			o[used] = '\0';
			*out = o;
			*outlen = used;
			return 0;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			break;
		if (rc == Z_BUF_ERROR && z.avail_in == 0)
			break;	/* truncated input */
	} while (1);
	inflateEnd(&z);
	free(o);
	return -1;
}

/* Every policy-domain in the policies array must be an A-label. */
static const char *check_policy_domains(struct json_object *policies)
{
	size_t n = json_object_array_length(policies);

	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(policies, i), *pol, *pd;

		if (!json_object_object_get_ex(p, "policy", &pol) ||
		    !json_object_object_get_ex(pol, "policy-domain", &pd) ||
		    !json_object_is_type(pd, json_type_string))
			return "(missing)";
		if (!report_domain_ok(json_object_get_string(pd)))
			return json_object_get_string(pd);
	}
	return NULL;
}

void report_free(struct report *r)
{
	if (r == NULL)
		return;
	free(r->record);
	free(r->json);
	free(r->gz);
	memset(r, 0, sizeof(*r));
}

int report_build(const struct agg_domain *d, int64_t day,
		 const struct report_identity *id, size_t max_details,
		 struct report *r, char *err, size_t errsz)
{
	char start[32], end[32], ymd[16], pbuf[128];
	struct json_object *o = NULL, *dr, *policies;
	const char *s, *bad;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->day = day;
	r->id = *id;
	if (d->domain == NULL || !report_domain_ok(d->domain)) {
		snprintf(err, errsz, "domain \"%s\" is not a lower-case A-label name; no report",
			 d->domain ? log_printable(pbuf, sizeof(pbuf), d->domain, strlen(d->domain)) : "");
		return -1;
	}
	if (d->saturated) {
		snprintf(err, errsz, "domain %s: session counts add up to more than 2^53-1 "
			 "(day files not plausible); no report", d->domain);
		return -1;
	}
	if (d->successes + d->failures == 0) {
		snprintf(err, errsz, "domain %s had no sessions; no report", d->domain);
		return -1;
	}
	memcpy(r->domain, d->domain, strlen(d->domain) + 1);
	r->record = strdup(d->record ? d->record : "");
	if (r->record == NULL)
		goto nomem;
	report_uid(day, r->domain, r->record, id->submitter, r->uid);
	fmt_day(day, DF_COMPACT, ymd, sizeof(ymd));
	snprintf(r->spool_id, sizeof(r->spool_id), "%s-%s", ymd, r->uid);
	snprintf(r->report_id, sizeof(r->report_id), "%s.%s.%s@%s", ymd, r->domain, r->uid,
		 id->submitter);
	snprintf(r->filename, sizeof(r->filename), "%s!%s!%lld!%lld!%s.json.gz", id->submitter,
		 r->domain, (long long)(day * 86400), (long long)(day * 86400 + 86399), r->uid);
	report_day_start(day, start, sizeof(start));
	report_day_end(day, end, sizeof(end));

	policies = agg_policies_json(d, max_details);
	if (policies == NULL)
		goto nomem;
	if ((bad = check_policy_domains(policies)) != NULL) {
		snprintf(err, errsz, "domain %s: policy-domain \"%s\" is not a lower-case A-label name; no report",
			 r->domain, log_printable(pbuf, sizeof(pbuf), bad, strlen(bad)));
		json_object_put(policies);
		return -1;
	}
	o = json_object_new_object();
	dr = json_object_new_object();
	if (o == NULL || dr == NULL) {
		json_object_put(dr);
		json_object_put(policies);
		goto nomem;
	}
	json_object_object_add(o, "organization-name", json_object_new_string(id->organization));
	json_object_object_add(dr, "start-datetime", json_object_new_string(start));
	json_object_object_add(dr, "end-datetime", json_object_new_string(end));
	json_object_object_add(o, "date-range", dr);
	json_object_object_add(o, "contact-info", json_object_new_string(id->contact));
	json_object_object_add(o, "report-id", json_object_new_string(r->report_id));
	json_object_object_add(o, "policies", policies);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s == NULL)
		goto nomem;
	r->jsonlen = strlen(s);
	r->json = strdup(s);
	if (r->json == NULL)
		goto nomem;
	if (report_gzip(r->json, r->jsonlen, &r->gz, &r->gzlen) < 0)
		goto nomem;
	if (r->gzlen > REPORT_MAX_GZ) {
		snprintf(err, errsz, "domain %s: compressed report is %zu bytes, above %u; lower max_failure_details",
			 r->domain, r->gzlen, REPORT_MAX_GZ);
		goto out;
	}
	r->file.policy_domain = r->domain;
	r->file.submitter = r->id.submitter;
	r->file.organization = r->id.organization;
	r->file.contact = r->id.contact;
	r->file.report_id = r->report_id;
	r->file.filename = r->filename;
	r->file.begin = day * 86400;
	r->file.end = day * 86400 + 86399;
	r->file.successes = d->successes;
	r->file.failures = d->failures;
	r->file.gz = r->gz;
	r->file.gzlen = r->gzlen;
	rc = 0;
	goto out;
nomem:
	snprintf(err, errsz, "out of memory building the report");
out:
	json_object_put(o);
	return rc;
}
