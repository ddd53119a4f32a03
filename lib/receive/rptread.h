/*
 * rptread - the streaming reader behind rpt_parse_json (rptparse.h): JSON
 * text to the report model, token by token (jscan.h), never as a tree.
 * Use rptparse.h; this is its second half, apart because it is large.
 *
 * The text must be valid UTF-8 without a BOM (rpt_parse_json checks). The
 * model's budgets, tolerances and rejections are those rptparse.h lists.
 *
 * Thread safety: no shared state.
 */
#ifndef TLSRPT_RPTREAD_H
#define TLSRPT_RPTREAD_H

#include <stdbool.h>
#include <stddef.h>

#include "rptparse.h"

/*
 * Read 'len' bytes of report JSON into 'r' (zeroed by the caller, who also
 * frees it with rpt_free, whatever the result). 'fallback_domain' (may be
 * NULL) is the policy-domain of policies without one. Returns 0, or -1
 * with the reason in 'err'.
 */
int rptread_json(const char *json, size_t len, const char *fallback_domain,
		 struct rpt_report *r, char *err, size_t errsz);

/* Does 's' look like a domain name (letters, digits, '-', at least one
 * dot, not starting with '.' or '-')? */
bool rptread_domain_like(const char *s);

#endif
