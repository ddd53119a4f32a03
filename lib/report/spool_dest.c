/*
 * spool_dest - one destination's delivery record and its rules. See
 * spool_dest.h.
 *
 * SECURITY: records are our own output, read defensively: a member that
 * is missing or of the wrong type counts as absent.
 */
#include "spool_dest.h"
#include "jget.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

static const char *const state_names[] = {
	[SPOOL_DEST_PENDING] = "pending",
	[SPOOL_DEST_DELIVERED] = "delivered",
	[SPOOL_DEST_GIVEN_UP] = "given-up",
	[SPOOL_DEST_SUPPRESSED] = "suppressed",
	[SPOOL_DEST_REJECTED] = "rejected",
	[SPOOL_DEST_UNKNOWN] = "unknown",
};

static void jset_int(struct json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void jset_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

struct json_object *spool_dest_new(const struct spool_dest_spec *d, int64_t now)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	jset_str(o, "uri", d->uri);
	jset_str(o, "scheme", d->scheme == RUA_MAILTO ? "mailto" : "https");
	if (d->address)
		jset_str(o, "address", d->address);
	jset_str(o, "state", "pending");
	jset_int(o, "next-attempt", now);
	json_object_object_add(o, "attempts", json_object_new_array());
	return o;
}

const char *spool_dest_state_name(enum spool_dest_state st)
{
	return (unsigned)st <= SPOOL_DEST_UNKNOWN ? state_names[st] : "unknown";
}

enum spool_dest_state spool_dest_state(struct json_object *d)
{
	const char *s = jget_str(d, "state");

	for (int i = 0; s && i < SPOOL_DEST_UNKNOWN; i++)
		if (strcmp(s, state_names[i]) == 0)
			return (enum spool_dest_state)i;
	return SPOOL_DEST_UNKNOWN;
}

static void set_state(struct json_object *d, enum spool_dest_state st)
{
	jset_str(d, "state", spool_dest_state_name(st));
	if (st != SPOOL_DEST_PENDING)
		json_object_object_del(d, "next-attempt");
}

static struct json_object *attempts_of(struct json_object *d)
{
	struct json_object *a;

	if (json_object_object_get_ex(d, "attempts", &a) && json_object_is_type(a, json_type_array))
		return a;
	a = json_object_new_array();
	json_object_object_add(d, "attempts", a);
	return a;
}

static struct json_object *add_attempt(struct json_object *d, int64_t start, int64_t end, bool ok,
				       long status, const char *detail)
{
	struct json_object *a = attempts_of(d), *e = json_object_new_object();

	if (e == NULL || a == NULL) {
		json_object_put(e);
		return NULL;
	}
	jset_int(e, "start", start);
	jset_int(e, "end", end);
	json_object_object_add(e, "ok", json_object_new_boolean(ok));
	jset_int(e, "status", status);
	jset_str(e, "detail", detail);
	if (json_object_array_length(a) >= SPOOL_DEST_MAX_ATTEMPTS)
		json_object_array_del_idx(a, 0, 1);
	json_object_array_add(a, e);
	return e;
}

/* Failed attempts of the current retry period (operator notes excluded). */
static size_t failed_attempts(struct json_object *d)
{
	struct json_object *a = attempts_of(d);
	int64_t first = jget_int_or(d, "first-attempt", INT64_MIN);
	size_t n = 0;

	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		struct json_object *e = json_object_array_get_idx(a, i), *ok, *op;

		if (json_object_object_get_ex(e, "operator", &op) && json_object_get_boolean(op))
			continue;
		if (jget_int(e, "start") < first)
			continue;
		if (json_object_object_get_ex(e, "ok", &ok) && !json_object_get_boolean(ok))
			n++;
	}
	return n;
}

/* The delay after the k-th failed attempt: retry_initial doubling, at most
 * retry_period (so a next-attempt is never further ahead than that). */
static int64_t retry_delay(const struct spool_policy *p, size_t k)
{
	int64_t delay = p->retry_initial > 0 ? p->retry_initial : 1;

	for (size_t i = 1; i < k && delay < p->retry_period; i++)
		delay *= 2;
	return delay < p->retry_period ? delay : p->retry_period;
}

/* How many attempts the schedule makes in one retry period when each is
 * made when due: the first, then one after each delay, the last at
 * first-attempt + retry_period. */
static size_t schedule_attempts(const struct spool_policy *p)
{
	int64_t t = 0;
	size_t k = 1;

	while (t < p->retry_period && k < 1000) {
		int64_t next = t + retry_delay(p, k);

		t = next < p->retry_period ? next : p->retry_period;
		k++;
	}
	return k;
}

/*
 * The time stamps of the record against the clock (issue 10 item 10). A
 * next-attempt more than retry_period ahead was set by a clock that was
 * ahead (no delay is longer): the attempt is due now. A first-attempt that
 * far ahead starts a fresh retry period now.
 */
static void clock_check(struct json_object *d, int64_t now, const struct spool_policy *p)
{
	int64_t next = jget_int_or(d, "next-attempt", -1), first = jget_int_or(d, "first-attempt", -1);

	if (next > now + p->retry_period)
		jset_int(d, "next-attempt", now);
	if (first > now + p->retry_period)
		jset_int(d, "first-attempt", now);
}

bool spool_dest_due(struct json_object *d, int64_t now, const struct spool_policy *p)
{
	if (spool_dest_state(d) != SPOOL_DEST_PENDING || jget_str(d, "uri") == NULL)
		return false;
	clock_check(d, now, p);
	return jget_int(d, "next-attempt") <= now;
}

bool spool_dest_final(struct json_object *d)
{
	enum spool_dest_state st = spool_dest_state(d);

	return st != SPOOL_DEST_PENDING && st != SPOOL_DEST_UNKNOWN && jget_int_or(d, "in-flight", -1) < 0;
}

void spool_dest_begin(struct json_object *d, int64_t now)
{
	if (jget_int_or(d, "first-attempt", -1) < 0)
		jset_int(d, "first-attempt", now);
	jset_int(d, "in-flight", now);
}

/* What a failure is about (deliver.h). */
enum failure { FAIL_TEMPORARY, FAIL_REPORT, FAIL_DESTINATION };

/*
 * Record a failure and decide what comes next: a failure about the
 * destination suppresses it; one about this report ends this report's
 * delivery there ("rejected") and nothing else; a temporary one is retried
 * with backoff, or given up (see spool_dest.h).
 */
static enum spool_dest_state fail(struct json_object *d, int64_t now,
				  const struct spool_policy *p, enum failure why)
{
	int64_t first = jget_int_or(d, "first-attempt", now), last = first + p->retry_period;
	int64_t scheduled = jget_int_or(d, "next-attempt", now);	/* when this attempt was due */
	size_t k = failed_attempts(d);
	int64_t delay = retry_delay(p, k);

	if (why == FAIL_DESTINATION) {
		set_state(d, SPOOL_DEST_SUPPRESSED);
		return SPOOL_DEST_SUPPRESSED;
	}
	if (why == FAIL_REPORT) {
		set_state(d, SPOOL_DEST_REJECTED);
		return SPOOL_DEST_REJECTED;
	}
	/*
	 * Given up only when the retry period is over by the clock AND the
	 * clock agrees with the schedule: this attempt was made when it was due,
	 * or the schedule's full number of attempts has been made. A clock that
	 * jumped ahead (or a reporter that did not run for longer than the
	 * slack) makes the attempt a retry, not the last one.
	 */
	if (now >= last && (now <= scheduled + SPOOL_DEST_LATE_SLACK || k >= schedule_attempts(p))) {
		set_state(d, SPOOL_DEST_GIVEN_UP);
		return SPOOL_DEST_GIVEN_UP;
	}
	jset_int(d, "next-attempt", last > now && now + delay > last ? last : now + delay);
	return SPOOL_DEST_PENDING;
}

enum spool_dest_state spool_dest_outcome(struct json_object *d, int64_t now,
					 const struct spool_policy *p,
					 const struct delivery_result *r, const char *by,
					 const char *detail)
{
	json_object_object_del(d, "in-flight");
	add_attempt(d, now, now, r->ok, r->status, detail);
	if (r->ok) {
		set_state(d, SPOOL_DEST_DELIVERED);
		jset_int(d, "delivered-at", now);
		jset_str(d, "delivered-by", by);
		jset_str(d, "response", detail);
		return SPOOL_DEST_DELIVERED;
	}
	return fail(d, now, p, !r->permanent ? FAIL_TEMPORARY : r->destination ? FAIL_DESTINATION
										: FAIL_REPORT);
}

bool spool_dest_interrupted(struct json_object *d, int64_t now, const struct spool_policy *p)
{
	int64_t start = jget_int_or(d, "in-flight", -1);

	if (start < 0)
		return false;
	add_attempt(d, start, now, false, 0, "interrupted: the outcome is unknown (crash during the attempt)");
	json_object_object_del(d, "in-flight");
	/* at-least-once: due again now, unless given up */
	if (fail(d, now, p, FAIL_TEMPORARY) == SPOOL_DEST_PENDING)
		jset_int(d, "next-attempt", now);
	return true;
}

void spool_dest_skip_suppressed(struct json_object *d, int64_t now, int64_t until, const char *why)
{
	char msg[400];

	snprintf(msg, sizeof(msg), "not attempted: suppressed until %lld after a permanent failure: %s",
		 (long long)until, why);
	add_attempt(d, now, now, false, 0, msg);
	set_state(d, SPOOL_DEST_SUPPRESSED);
}

bool spool_dest_retry(struct json_object *d, int64_t now)
{
	enum spool_dest_state st = spool_dest_state(d);
	struct json_object *e;

	if (st != SPOOL_DEST_GIVEN_UP && st != SPOOL_DEST_SUPPRESSED && st != SPOOL_DEST_REJECTED &&
	    !(st == SPOOL_DEST_PENDING && failed_attempts(d) > 0))
		return false;
	set_state(d, SPOOL_DEST_PENDING);
	jset_int(d, "next-attempt", 0);		/* due at once, whatever the clock */
	json_object_object_del(d, "first-attempt");	/* a fresh retry period */
	e = add_attempt(d, now, now, false, 0, "operator: spool retry");
	if (e)
		json_object_object_add(e, "operator", json_object_new_boolean(1));
	return true;
}
