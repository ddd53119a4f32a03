/*
 * rptparse - tolerant parsing of received TLS reports. See rptparse.h.
 *
 * The pipeline: unpack.c (gzip, zip or plain, bounded), the UTF-8 check,
 * rptread.c (tokens into the model, within the budgets); here also the
 * model's lifecycle, its normalized JSON and RFC 3339 times.
 *
 * SECURITY: all input is untrusted; see unpack.c, jscan.c and rptread.c.
 */
#include "rptparse.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rptread.h"
#include "unpack.h"

/* ---------- helpers ---------- */

/* Length of the valid UTF-8 prefix; == len when all is valid (RFC 3629). */
static size_t utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return i;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else
			return i;
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return i;
		i += n + 1;
	}
	return i;
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int rpt_parse_time(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p;

	while (*s == ' ')
		s++;
	if (strlen(s) < 19 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &se))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60 ||
	    y < 1970)
		return -1;
	p = s + 19;
	if (*p == '.') {		/* fractions: ignored */
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		p += 6;
	}
	while (*p == ' ')
		p++;
	if (*p)
		return -1;
	if (se == 60)
		se = 59;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
	       sign * (oh * 3600 + om * 60);
	return 0;
}

void rpt_format_time(int64_t t, char *out, size_t outsz)
{
	int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400, secs = t - days * 86400;
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;

	y += m <= 2;
	snprintf(out, outsz, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", (long long)y,
		 (long long)m, (long long)d, (long long)(secs / 3600),
		 (long long)(secs / 60 % 60), (long long)(secs % 60));
}

void rpt_domain_from_filename(const char *name, char *out, size_t outsz)
{
	const char *base = strrchr(name, '/'), *a, *b;
	size_t n;

	out[0] = '\0';
	base = base ? base + 1 : name;
	a = strchr(base, '!');
	b = a ? strchr(a + 1, '!') : NULL;
	if (b == NULL || (n = (size_t)(b - a - 1)) == 0 || n >= outsz)
		return;
	memcpy(out, a + 1, n);
	out[n] = '\0';
	if (!rptread_domain_like(out))
		out[0] = '\0';
}

int rpt_parse_json(const char *json, size_t len, const char *fallback_domain,
		   struct rpt_report **out, char *err, size_t errsz)
{
	struct rpt_report *r;
	size_t good;

	*out = NULL;
	if (len >= 3 && memcmp(json, "\xef\xbb\xbf", 3) == 0) {	/* BOM */
		json += 3;
		len -= 3;
	}
	good = utf8_valid((const unsigned char *)json, len);
	if (good != len) {
		snprintf(err, errsz, "report is not valid UTF-8 (bad byte 0x%02x at offset %zu)",
			 (unsigned char)json[good], good);
		return -1;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (rptread_json(json, len, fallback_domain, r, err, errsz) != 0) {
		rpt_free(r);
		return -1;
	}
	*out = r;
	return 0;
}

int rpt_parse(const unsigned char *data, size_t len, size_t max_out,
	      const char *fallback_domain, struct rpt_report **out,
	      char *err, size_t errsz)
{
	unsigned char *json;
	size_t jlen;
	int rc;

	*out = NULL;
	if (unpack_format_of(data, len) == UNPACK_JSON) {	/* parsed where it is, no copy */
		if (len > max_out) {
			snprintf(err, errsz, "report larger than the limit of %zu bytes", max_out);
			return -1;
		}
		return rpt_parse_json((const char *)data, len, fallback_domain, out, err, errsz);
	}
	if (unpack_report(data, len, max_out, &json, &jlen, NULL, err, errsz) != 0)
		return -1;
	rc = rpt_parse_json((const char *)json, jlen, fallback_domain, out, err, errsz);
	free(json);
	return rc;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void rpt_free(struct rpt_report *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->npolicies; i++) {
		struct rpt_policy *p = &r->policies[i];

		free(p->policy_type);
		free(p->policy_domain);
		free_strv(p->policy_string, p->nstrings);
		free_strv(p->mx_host, p->nmx);
		for (size_t k = 0; k < p->ndetails; k++) {
			struct rpt_detail *d = &p->details[k];

			free(d->result_type);
			free(d->sending_mta_ip);
			free(d->receiving_mx_hostname);
			free(d->receiving_mx_helo);
			free(d->receiving_ip);
			free(d->additional_information);
			free(d->failure_reason_code);
		}
		free(p->details);
	}
	free(r->policies);
	for (size_t i = 0; i < r->nwarn; i++)
		free(r->warnings[i]);
	free(r->organization_name);
	free(r->contact_info);
	free(r->report_id);
	free(r);
}

/* ---------- normalized JSON ---------- */

static int add_str(struct json_object *o, const char *key, const char *val)
{
	struct json_object *v;

	if (val == NULL)
		return 0;
	v = json_object_new_string(val);
	if (v == NULL)
		return -1;
	return json_object_object_add(o, key, v);
}

static int add_int(struct json_object *o, const char *key, int64_t val)
{
	struct json_object *v = json_object_new_int64(val);

	if (v == NULL)
		return -1;
	return json_object_object_add(o, key, v);
}

static int add_strv(struct json_object *o, const char *key, char **v, size_t n)
{
	struct json_object *a;

	if (n == 0)
		return 0;
	a = json_object_new_array();
	if (a == NULL || json_object_object_add(o, key, a) != 0) {
		json_object_put(a);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (json_object_array_add(a, json_object_new_string(v[i])) != 0)
			return -1;
	return 0;
}

struct json_object *rpt_to_json(const struct rpt_report *r)
{
	struct json_object *root = json_object_new_object(), *dr = json_object_new_object();
	struct json_object *pols = json_object_new_array();
	char t[32];
	int bad = 0;

	if (root == NULL || dr == NULL || pols == NULL) {
		json_object_put(root);
		json_object_put(dr);
		json_object_put(pols);
		return NULL;
	}
	bad |= add_str(root, "organization-name", r->organization_name);
	rpt_format_time(r->start, t, sizeof(t));
	bad |= add_str(dr, "start-datetime", t);
	rpt_format_time(r->end, t, sizeof(t));
	bad |= add_str(dr, "end-datetime", t);
	bad |= json_object_object_add(root, "date-range", dr);
	bad |= add_str(root, "contact-info", r->contact_info);
	bad |= add_str(root, "report-id", r->report_id);
	bad |= json_object_object_add(root, "policies", pols);
	for (size_t i = 0; i < r->npolicies && !bad; i++) {
		const struct rpt_policy *p = &r->policies[i];
		struct json_object *e = json_object_new_object(), *po = json_object_new_object();
		struct json_object *su = json_object_new_object(), *fd = NULL;

		if (e == NULL || po == NULL || su == NULL || json_object_array_add(pols, e) != 0) {
			json_object_put(e);
			json_object_put(po);
			json_object_put(su);
			bad = 1;
			break;
		}
		bad |= json_object_object_add(e, "policy", po);
		bad |= json_object_object_add(e, "summary", su);
		bad |= add_str(po, "policy-type", p->policy_type);
		bad |= add_strv(po, "policy-string", p->policy_string, p->nstrings);
		bad |= add_str(po, "policy-domain", p->policy_domain);
		bad |= add_strv(po, "mx-host", p->mx_host, p->nmx);
		bad |= add_int(su, "total-successful-session-count", p->success);
		bad |= add_int(su, "total-failure-session-count", p->failure);
		if (p->ndetails) {
			fd = json_object_new_array();
			if (fd == NULL || json_object_object_add(e, "failure-details", fd) != 0) {
				json_object_put(fd);
				bad = 1;
				break;
			}
		}
		for (size_t k = 0; k < p->ndetails && !bad; k++) {
			const struct rpt_detail *d = &p->details[k];
			struct json_object *o = json_object_new_object();

			if (o == NULL || json_object_array_add(fd, o) != 0) {
				json_object_put(o);
				bad = 1;
				break;
			}
			bad |= add_str(o, "result-type", d->result_type);
			bad |= add_str(o, "sending-mta-ip", d->sending_mta_ip);
			bad |= add_str(o, "receiving-mx-hostname", d->receiving_mx_hostname);
			bad |= add_str(o, "receiving-mx-helo", d->receiving_mx_helo);
			bad |= add_str(o, "receiving-ip", d->receiving_ip);
			bad |= add_int(o, "failed-session-count", d->failed_session_count);
			bad |= add_str(o, "additional-information", d->additional_information);
			bad |= add_str(o, "failure-reason-code", d->failure_reason_code);
		}
	}
	if (bad) {
		json_object_put(root);
		return NULL;
	}
	return root;
}
