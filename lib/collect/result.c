/*
 * result - names of result codes and policy types. See result.h.
 */
#include "result.h"

#include <string.h>

static const struct {
	int code;
	const char *name;
} result_names[] = {
	{ RESULT_STARTTLS_NOT_SUPPORTED, "starttls-not-supported" },
	{ RESULT_CERTIFICATE_HOST_MISMATCH, "certificate-host-mismatch" },
	{ RESULT_CERTIFICATE_NOT_TRUSTED, "certificate-not-trusted" },
	{ RESULT_CERTIFICATE_EXPIRED, "certificate-expired" },
	{ RESULT_VALIDATION_FAILURE, "validation-failure" },
	{ RESULT_STS_POLICY_FETCH_ERROR, "sts-policy-fetch-error" },
	{ RESULT_STS_POLICY_INVALID, "sts-policy-invalid" },
	{ RESULT_STS_WEBPKI_INVALID, "sts-webpki-invalid" },
	{ RESULT_TLSA_INVALID, "tlsa-invalid" },
	{ RESULT_DNSSEC_INVALID, "dnssec-invalid" },
	{ RESULT_DANE_REQUIRED, "dane-required" },
};

const char *result_code_name(int code)
{
	for (size_t i = 0; i < sizeof(result_names) / sizeof(result_names[0]); i++)
		if (result_names[i].code == code)
			return result_names[i].name;
	return NULL;
}

int result_code_from_name(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(result_names) / sizeof(result_names[0]); i++) {
		const char *n = result_names[i].name;
		size_t j;

		if (strlen(n) != len)
			continue;
		for (j = 0; j < len; j++) {
			char c = name[j] == '_' ? '-' : name[j];
			if (c != n[j])
				break;
		}
		if (j == len)
			return result_names[i].code;
	}
	return 0;
}

const char *result_policy_type_name(int type)
{
	switch (type) {
	case POLICY_TLSA: return "tlsa";
	case POLICY_STS: return "sts";
	case POLICY_NONE: return "no-policy-found";
	default: return NULL;
	}
}
