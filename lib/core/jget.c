/* jget - typed members of json-c objects (jget.h). */
#include "jget.h"

#include <limits.h>

static struct json_object *member(struct json_object *o, const char *key, json_type t)
{
	struct json_object *v;

	if (o != NULL && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, t))
		return v;
	return NULL;
}

const char *jget_str(struct json_object *o, const char *key)
{
	struct json_object *v = member(o, key, json_type_string);

	return v != NULL ? json_object_get_string(v) : NULL;
}

const char *jget_text(struct json_object *o, const char *key)
{
	const char *s = jget_str(o, key);

	return s != NULL ? s : "";
}

int64_t jget_int_or(struct json_object *o, const char *key, int64_t def)
{
	struct json_object *v = member(o, key, json_type_int);

	return v != NULL ? json_object_get_int64(v) : def;
}

int64_t jget_int(struct json_object *o, const char *key)
{
	return jget_int_or(o, key, 0);
}

struct json_object *jget_obj(struct json_object *o, const char *key)
{
	return member(o, key, json_type_object);
}

static struct json_object *child(struct json_object *o, const char *key, json_type t)
{
	struct json_object *v = member(o, key, t);

	if (v != NULL)
		return v;
	v = t == json_type_array ? json_object_new_array() : json_object_new_object();
	json_object_object_add(o, key, v);
	return v;
}

struct json_object *jget_map(struct json_object *o, const char *key)
{
	return child(o, key, json_type_object);
}

struct json_object *jget_list(struct json_object *o, const char *key)
{
	return child(o, key, json_type_array);
}

struct json_object *jget_parse_object(const char *text, size_t len, size_t max, int depth)
{
	struct json_tokener *tok;
	struct json_object *o;

	if (text == NULL || len > max || len > INT_MAX || (tok = json_tokener_new_ex(depth)) == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
			  !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}
