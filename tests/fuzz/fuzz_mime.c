/*
 * fuzz_mime - MIME extraction of the report part from any bytes, and the
 * DKIM verdict from the Authentication-Results headers found.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mime.h"
#include "received.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_report m;
	char err[256];
	enum mime_status st = mime_extract((const char *)data, size, 1 << 20, &m, err, sizeof(err));

	if (st == MIME_OK && (m.part == NULL || m.part_type == NULL))
		__builtin_trap();
	if (m.nauth > MIME_MAX_AR)
		__builtin_trap();
	{	/* the DKIM verdict parses the Authentication-Results values */
		const char *dkim;
		char dom[256];

		received_dkim_verdict(m.auth_results, m.nauth, "mx.example", m.report_submitter,
				      m.from, &dkim, dom, sizeof(dom));
	}
	mime_report_free(&m);
	return 0;
}
