/*
 * sstats - the spool of sent reports added up. See sstats.h.
 *
 * SECURITY: spool files are ours, but read defensively: every member's
 * type is checked and counts are summed with saturation.
 */
#include "sstats.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jget.h"
#include "spool.h"

static int64_t add(int64_t a, int64_t b)
{
	if (a < 0)
		a = 0;
	if (b < 0)
		b = 0;
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static void bump(struct json_object *m, const char *k, int64_t n)
{
	if (k == NULL || *k == '\0')
		return;
	json_object_object_add(m, k, json_object_new_int64(add(jget_int(m, k), n)));
}

static void set_int(struct json_object *m, const char *k, int64_t v)
{
	json_object_object_add(m, k, json_object_new_int64(v));
}

static int by_count(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;
	int64_t cx = jget_int(x, "count"), cy = jget_int(y, "count");
	const char *ux = jget_str(x, "uri"), *uy = jget_str(y, "uri");
	int r;

	if (cx != cy)
		return cx > cy ? -1 : 1;
	r = strcmp(ux ? ux : "", uy ? uy : "");
	if (r)
		return r;
	ux = jget_str(x, "reason");
	uy = jget_str(y, "reason");
	return strcmp(ux ? ux : "", uy ? uy : "");
}

static void add_dest(struct json_object *root, struct json_object *fails, struct json_object *d)
{
	const char *uri = jget_str(d, "uri"), *state = jget_str(d, "state"), *scheme = jget_str(d, "scheme");
	struct json_object *dm, *att = NULL, *at;

	if (uri == NULL)
		uri = "(unknown)";
	if (scheme == NULL || (strcmp(scheme, "mailto") != 0 && strcmp(scheme, "https") != 0))
		scheme = "other";
	if (state == NULL)
		state = "unknown";
	bump(jget_map(root, "dest_states"), state, 1);
	dm = jget_map(jget_map(root, "destinations"), uri);
	if (!json_object_object_get_ex(dm, "scheme", NULL)) {
		json_object_object_add(dm, "scheme", json_object_new_string(scheme));
		for (const char *const *k = (const char *const[]){ "reports", "delivered", "pending",
			"given-up", "suppressed", "rejected", "attempts_ok", "attempts_failed", "last_error_at",
			"last_delivered_at", NULL }; *k; k++)
			set_int(dm, *k, 0);
		json_object_object_add(dm, "last_error", json_object_new_string(""));
	}
	bump(dm, "reports", 1);
	if (strcmp(state, "delivered") == 0 || strcmp(state, "pending") == 0 ||
	    strcmp(state, "given-up") == 0 || strcmp(state, "suppressed") == 0 ||
	    strcmp(state, "rejected") == 0)
		bump(dm, state, 1);
	if (jget_int(d, "delivered-at") > jget_int(dm, "last_delivered_at"))
		set_int(dm, "last_delivered_at", jget_int(d, "delivered-at"));
	at = jget_map(jget_map(root, "attempts"), scheme);
	if (!json_object_object_get_ex(d, "attempts", &att) || !json_object_is_type(att, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(att); i++) {
		struct json_object *a = json_object_array_get_idx(att, i), *ok, *op, *f;
		bool good = json_object_object_get_ex(a, "ok", &ok) && json_object_get_boolean(ok);
		const char *detail = jget_str(a, "detail");
		char reason[201], key[4096];

		if (json_object_object_get_ex(a, "operator", &op) && json_object_get_boolean(op))
			continue;	/* an operator's note (spool retry), not an attempt */
		bump(at, good ? "ok" : "failed", 1);
		bump(dm, good ? "attempts_ok" : "attempts_failed", 1);
		if (good)
			continue;
		snprintf(reason, sizeof(reason), "%s", detail && *detail ? detail : "(no detail)");
		if (jget_int(a, "start") >= jget_int(dm, "last_error_at")) {
			set_int(dm, "last_error_at", jget_int(a, "start"));
			json_object_object_add(dm, "last_error", json_object_new_string(reason));
		}
		snprintf(key, sizeof(key), "%s\x1f%s", uri, reason);
		if (!json_object_object_get_ex(fails, key, &f)) {
			f = json_object_new_object();
			json_object_object_add(f, "uri", json_object_new_string(uri));
			json_object_object_add(f, "reason", json_object_new_string(reason));
			set_int(f, "count", 0);
			set_int(f, "last", 0);
			json_object_object_add(fails, key, f);
		}
		bump(f, "count", 1);
		if (jget_int(a, "start") > jget_int(f, "last"))
			set_int(f, "last", jget_int(a, "start"));
	}
}

struct json_object *sstats_build(struct spool *s, int64_t now)
{
	struct json_object *root = json_object_new_object(), *fails = json_object_new_object(), *arr;
	char **ids = NULL;
	size_t n = 0;

	if (root == NULL || fails == NULL) {
		json_object_put(root);
		json_object_put(fails);
		return NULL;
	}
	set_int(root, "reports", 0);
	set_int(root, "unreadable", 0);
	set_int(root, "last_created", 0);
	set_int(root, "oldest_pending_created", 0);
	for (const char *const *k = (const char *const[]){ "status", "dest_states", "attempts",
		"days", "destinations", NULL }; *k; k++)
		json_object_object_add(root, *k, json_object_new_object());
	for (const char *const *k = (const char *const[]){ "delivered", "pending", "failed",
		"no-destinations", NULL }; *k; k++)
		set_int(json_object_object_get(root, "status"), *k, 0);
	for (const char *const *k = (const char *const[]){ "pending", "delivered", "given-up",
		"suppressed", "rejected", NULL }; *k; k++)
		set_int(json_object_object_get(root, "dest_states"), *k, 0);
	if (spool_ids(s, &ids, &n) != 0)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = spool_entry(s, ids[i]), *meta = NULL, *dests = NULL, *day;
		const char *status, *dayname;
		int64_t created;
		bool pending = false;

		if (e == NULL) {
			bump(root, "unreadable", 1);
			continue;
		}
		json_object_object_get_ex(e, "meta", &meta);
		json_object_object_get_ex(e, "destinations", &dests);
		status = jget_str(e, "status") ? jget_str(e, "status") : "unknown";
		dayname = jget_str(meta, "day") ? jget_str(meta, "day") : "unknown";
		created = jget_int(meta, "created");
		bump(root, "reports", 1);
		bump(jget_map(root, "status"), status, 1);
		day = jget_map(jget_map(root, "days"), dayname);
		bump(day, "reports", 1);
		bump(day, status, 1);
		bump(day, "successes", jget_int(meta, "successes"));
		bump(day, "failures", jget_int(meta, "failures"));
		if (created > jget_int(root, "last_created"))
			set_int(root, "last_created", created);
		for (size_t k = 0; dests && json_object_is_type(dests, json_type_array) &&
		     k < json_object_array_length(dests); k++) {
			struct json_object *d = json_object_array_get_idx(dests, k);

			add_dest(root, fails, d);
			if (jget_str(d, "state") && strcmp(jget_str(d, "state"), "pending") == 0)
				pending = true;
		}
		if (pending && (jget_int(root, "oldest_pending_created") == 0 ||
				created < jget_int(root, "oldest_pending_created")))
			set_int(root, "oldest_pending_created", created);
		json_object_put(e);
	}
	spool_ids_free(ids, n);
	arr = json_object_new_array();
	json_object_object_foreach(fails, k, f) {
		(void)k;
		json_object_array_add(arr, json_object_get(f));
	}
	json_object_put(fails);
	json_object_array_sort(arr, by_count);
	json_object_object_add(root, "failures", arr);
	json_object_object_add(root, "suppressed", spool_suppressions(s, now));
	return root;
}
