/*
 * libtlsrpt_client - drives tlsrptd through the real libtlsrpt C API, the
 * way Postfix 3.10 does: a new connection per delivery request.
 *
 * usage: libtlsrpt_client SOCKET < requests.jsonl
 * Each input line: {"d": ..., "pr": ..., "policies": [{"type": N, "domain": ...,
 *   "strings": [...], "mx": [...], "failed": bool, "details": [{"c": N,
 *   "s": ..., "n": ..., "h": ..., "r": ..., "a": ..., "f": ...}]}]}
 * Prints "sent N" at the end; exits non-zero on the first library error.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tlsrpt.h>

static const char *opt_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return json_object_get_string(v);
}

static int send_request(const char *sock, struct json_object *req)
{
	struct tlsrpt_connection_t *con = NULL;
	struct tlsrpt_dr_t *dr = NULL;
	struct json_object *pols, *v;
	int rc;

	if ((rc = tlsrpt_open(&con, sock)) != 0)
		goto fail;
	if ((rc = tlsrpt_init_delivery_request(&dr, con, opt_str(req, "d"), opt_str(req, "pr"))) != 0)
		goto fail;
	json_object_object_get_ex(req, "policies", &pols);
	for (size_t i = 0; i < json_object_array_length(pols); i++) {
		struct json_object *p = json_object_array_get_idx(pols, i);

		json_object_object_get_ex(p, "type", &v);
		if ((rc = tlsrpt_init_policy(dr, (tlsrpt_policy_type_t)json_object_get_int(v),
					     opt_str(p, "domain"))) != 0)
			goto fail;
		if (json_object_object_get_ex(p, "strings", &v))
			for (size_t k = 0; k < json_object_array_length(v); k++)
				if ((rc = tlsrpt_add_policy_string(dr,
					json_object_get_string(json_object_array_get_idx(v, k)))) != 0)
					goto fail;
		if (json_object_object_get_ex(p, "mx", &v))
			for (size_t k = 0; k < json_object_array_length(v); k++)
				if ((rc = tlsrpt_add_mx_host_pattern(dr,
					json_object_get_string(json_object_array_get_idx(v, k)))) != 0)
					goto fail;
		if (json_object_object_get_ex(p, "details", &v)) {
			for (size_t k = 0; k < json_object_array_length(v); k++) {
				struct json_object *d = json_object_array_get_idx(v, k), *c;

				json_object_object_get_ex(d, "c", &c);
				rc = tlsrpt_add_delivery_request_failure(dr,
					(tlsrpt_failure_t)json_object_get_int(c), opt_str(d, "s"),
					opt_str(d, "n"), opt_str(d, "h"), opt_str(d, "r"),
					opt_str(d, "a"), opt_str(d, "f"));
				if (rc != 0)
					goto fail;
			}
		}
		v = NULL;
		json_object_object_get_ex(p, "failed", &v);
		if ((rc = tlsrpt_finish_policy(dr, v && json_object_get_boolean(v) ?
					       TLSRPT_FINAL_FAILURE : TLSRPT_FINAL_SUCCESS)) != 0)
			goto fail;
	}
	if ((rc = tlsrpt_finish_delivery_request(&dr)) != 0)
		goto fail;
	tlsrpt_close(&con);
	return 0;
fail:
	fprintf(stderr, "libtlsrpt error %d: %s\n", rc, tlsrpt_strerror(rc));
	if (dr)
		tlsrpt_cancel_delivery_request(&dr);
	if (con)
		tlsrpt_close(&con);
	return -1;
}

int main(int argc, char **argv)
{
	char line[65536];
	int sent = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: libtlsrpt_client SOCKET < requests.jsonl\n");
		return 2;
	}
	tlsrpt_set_blocking();	/* a test must not lose datagrams to a full queue */
	while (fgets(line, sizeof(line), stdin)) {
		struct json_object *req = json_tokener_parse(line);

		if (req == NULL) {
			fprintf(stderr, "bad request line\n");
			return 2;
		}
		if (send_request(argv[1], req) != 0)
			return 1;
		json_object_put(req);
		sent++;
	}
	printf("sent %d\n", sent);
	return 0;
}
