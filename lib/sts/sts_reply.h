/*
 * sts_reply - the socketmap replies of tlsrpt-policyd for an MTA-STS policy
 * (the data after "OK "), and the one-line status of tlsrptctl sts refresh.
 *
 * Replies (generation 3.10):
 *   enforce:  secure match=P1:P2 servername=hostname policy_type=sts
 *             policy_domain=D mx_host_pattern=P... { policy_string = L }...
 *             ("*.example.net" is written ".example.net" in match=; 3.10.5+
 *             applies the exact RFC rule from mx_host_pattern).
 *   testing:  LEVEL policy_type=sts policy_domain=D mx_host_pattern=P...
 *             { policy_string = L }...   (LEVEL: may or encrypt, never
 *             enforcing, RFC 8461 5; NULL level: NOTFOUND)
 *   none, no valid policy: NOTFOUND.
 * Generation 3.7 (Postfix rejects the TLSRPT attributes): enforce gives
 * "secure match=... servername=hostname", everything else NOTFOUND.
 *
 * Postfix's attribute syntax cannot carry a value holding "{" or "}" inside
 * "{ name = value }": such policy lines (only extension lines can hold
 * them; RFC 8461 3.2 allows any printable UTF-8 there) are left out of the
 * policy_string attributes, and counted (sts_reply_unsendable). The
 * report's policy-string then lacks those lines.
 *
 * A reply longer than the buffer allows is sent without the policy
 * strings (enforce) or as NOTFOUND.
 *
 * Pure functions of their arguments; thread safe.
 */
#ifndef TLSRPT_STS_REPLY_H
#define TLSRPT_STS_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sts_cache.h"
#include "sts_policy.h"

enum sts_reply_gen { STS_GEN_37, STS_GEN_310 };

/*
 * The reply for policy 'p' of 'domain': returns "OK" with the data in
 * 'data' (reset first), or "NOTFOUND" with 'data' empty. 'level' is the
 * testing-mode level (may, encrypt) or NULL.
 */
const char *sts_reply_policy(enum sts_reply_gen gen, const char *level, const char *domain,
			     const struct sts_policy *p, struct buf *data);

/* The same for a cache entry at 'now' (NOTFOUND unless it holds a valid
 * policy). */
const char *sts_reply_entry(enum sts_reply_gen gen, const char *level,
			    const struct sts_entry *e, int64_t now, struct buf *data);

/* Lines of 'p' that cannot be sent as policy_string ("{" or "}" inside). */
size_t sts_reply_unsendable(const struct sts_policy *p);

/* tlsrptctl sts refresh: "fetched id=... expires=...", "failed CODE why",
 * "unchanged id=...", "no-policy ...", "pending"; 'since' is when the
 * refresh was asked. */
void sts_reply_status(const struct sts_entry *e, int64_t since, int64_t now, struct buf *data);

#endif
