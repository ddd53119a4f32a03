/*
 * fuzz_dane_rr - DNS replies as the DANE lookups get them from the resolver
 * (lib/dane/dane_rr.h): each input is parsed as the reply to an MX, a
 * TLSA and an A question (with its CNAME chain), under the names the corpus files use; every kept
 * TLSA record is checked for usability and formatted.
 */
#include <stdint.h>
#include <string.h>

#include "dane_rr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dane_mx mx;
	static struct dane_tlsa t;
	static char s[2 * DANE_TLSA_DATA_MAX + 32], target[DANE_HOST_MAX + 1];
	struct dane_reply r;
	static const char *names[] = { "example.com", "_25._tcp.mx.example.com", "a" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (dane_rr_mx(data, size, names[i], &mx, &r) == DANE_RR_OK)
			for (size_t k = 0; k < mx.n; k++)
				(void)strlen(mx.host[k]);
		if (dane_rr_tlsa(data, size, names[i], &t, &r) == DANE_RR_OK)
			for (size_t k = 0; k < t.n; k++) {
				(void)dane_tlsa_usable(&t.rr[k]);
				(void)dane_tlsa_format(&t.rr[k], s, sizeof(s));
			}
		(void)dane_rr_addr(data, size, names[i], 1, target, sizeof(target), &r);
	}
	return 0;
}
