/*
 * test_jscan - the bounded JSON tokenizer: token streams of valid input,
 * exact errors for invalid input, and the bounds (depth, number of values,
 * string buffer, int64 range) enforced where the input reaches them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "jscan.h"

/* The token stream as text: { } [ ] K:key S:str N:num T F 0 $ (EOF), E:err. */
static void stream(const char *in, size_t len, int depth, size_t values, size_t strcap,
		   char *out, size_t outsz)
{
	struct jscan s;
	char *sb = malloc(strcap);
	struct buf b;
	enum jscan_tok t;

	buf_init(&b, 1 << 16);
	buf_adds(&b, "");
	jscan_init(&s, in, len, depth, values, sb, strcap);
	do {
		t = jscan_next(&s);
		if (b.len)
			buf_addc(&b, ' ');
		switch (t) {
		case JSCAN_OBJECT: buf_adds(&b, "{"); break;
		case JSCAN_OBJECT_END: buf_adds(&b, "}"); break;
		case JSCAN_ARRAY: buf_adds(&b, "["); break;
		case JSCAN_ARRAY_END: buf_adds(&b, "]"); break;
		case JSCAN_KEY: buf_printf(&b, "K:%s", s.str); break;
		case JSCAN_STRING:
			buf_printf(&b, "S:%s", s.str);
			if (s.str_cut)
				buf_printf(&b, "(cut %zu/%zu)", s.str_len, s.str_full);
			break;
		case JSCAN_NUMBER:
			if (s.num_is_int && s.num_range)
				buf_printf(&b, "N:%lld", (long long)s.num_int);
			else
				buf_printf(&b, "N:%s%.*s", s.num_is_int ? "big:" : "real:",
					   (int)s.num_len, s.num_text);
			break;
		case JSCAN_TRUE: buf_adds(&b, "T"); break;
		case JSCAN_FALSE: buf_adds(&b, "F"); break;
		case JSCAN_NULL: buf_adds(&b, "0"); break;
		case JSCAN_EOF: buf_adds(&b, "$"); break;
		case JSCAN_ERROR: buf_printf(&b, "E:%s", s.err); break;
		}
	} while (t != JSCAN_EOF && t != JSCAN_ERROR);
	snprintf(out, outsz, "%s", b.data);
	buf_free(&b);
	free(sb);
}

static void test_streams(void)
{
	static const struct {
		const char *in, *want;
	} c[] = {
		{ "{}", "{ } $" },
		{ " { \"a\" : [1, -2, 3.5, 1e3, true, false, null, \"x\"] } \n", "{ K:a [ N:1 N:-2 N:real:3.5 N:real:1e3 T F 0 S:x ] } $" },
		{ "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e4\\u20ac\\ud83d\\ude00\"", "S:\"\\/\b\f\n\r\t\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80 $" },
		{ "\"\\ud800x\\udc00\"", "S:\xef\xbf\xbdx\xef\xbf\xbd $" },
		{ "\"raw\ttab\"", "S:raw\ttab $" },
		{ "9223372036854775807", "N:9223372036854775807 $" },
		{ "-9223372036854775808", "N:-9223372036854775808 $" },
		{ "9223372036854775808", "N:big:9223372036854775808 $" },
		{ "99999999999999999999999", "N:big:99999999999999999999999 $" },
		{ "[[],[{}],{\"k\":{}}]", "[ [ ] [ { } ] { K:k { } } ] $" },
		{ "", "E:unexpected end of input at offset 0" },
		{ "{", "{ E:unexpected end of input at offset 1" },
		{ "{\"a\"}", "{ E:expected ':' at offset 4" },
		{ "{\"a\":1,}", "{ K:a N:1 E:expected a member name at offset 7" },
		{ "[1,]", "[ N:1 E:unexpected character at offset 3" },
		{ "[1 2]", "[ N:1 E:expected ',' or the end of a container at offset 3" },
		{ "[}", "[ E:unexpected character at offset 1" },
		{ "{\"a\":1]", "{ K:a N:1 E:mismatched bracket at offset 6" },
		{ "{} x", "{ } E:data after the JSON value at offset 3" },
		{ "01", "N:0 E:data after the JSON value at offset 1" },
		{ "1.", "E:bad number at offset 2" },
		{ "-", "E:bad number at offset 0" },
		{ "\"abc", "E:unterminated string at offset 4" },
		{ "\"\\x\"", "E:bad escape in a string at offset 1" },
		{ "\"\\u12g4\"", "E:bad \\u escape in a string at offset 3" },
		{ "tru", "E:unexpected character at offset 0" },
		{ "nulls", "0 E:data after the JSON value at offset 4" },
		{ "[\"a\"\"b\"]", "[ S:a E:expected ',' or the end of a container at offset 4" },
	};
	char got[4096];

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		stream(c[i].in, strlen(c[i].in), 16, 1000, 256, got, sizeof(got));
		CHECK(strcmp(got, c[i].want) == 0, "case %zu %s: got \"%s\", want \"%s\"", i, c[i].in,
		      got, c[i].want);
	}
}

static void test_bounds(void)
{
	char got[4096], in[256];
	struct buf b;
	struct jscan s;
	char sb[16];

	/* depth: 3 allowed, the 4th bracket is refused where it stands */
	stream("[[[1]]]", 7, 3, 100, 64, got, sizeof(got));
	CHECK_STR(got, "[ [ [ N:1 ] ] ] $");
	stream("[[[[1]]]]", 9, 3, 100, 64, got, sizeof(got));
	CHECK_STR(got, "[ [ [ E:nested deeper than 3 levels at offset 3");
	/* values: containers and scalars count, keys do not */
	stream("{\"a\":[1,2]}", 11, 8, 4, 64, got, sizeof(got));
	CHECK_STR(got, "{ K:a [ N:1 N:2 ] } $");
	stream("{\"a\":[1,2,3]}", 13, 8, 4, 64, got, sizeof(got));
	CHECK_STR(got, "{ K:a [ N:1 N:2 E:more than 4 JSON values at offset 10");
	/* strings longer than the buffer: cut on a character, fully counted */
	snprintf(in, sizeof(in), "\"abcdefgh\xc3\xa4\xc3\xa4\xc3\xa4xyz\"");
	stream(in, strlen(in), 8, 10, 12, got, sizeof(got));
	CHECK_STR(got, "S:abcdefgh\xc3\xa4(cut 10/17) $");
	/* skipping a large value costs nothing but time, and counts */
	buf_init(&b, 1 << 22);
	buf_adds(&b, "{\"x\":[");
	for (int i = 0; i < 100000; i++)
		buf_adds(&b, i ? ",{}" : "{}");
	buf_adds(&b, "],\"y\":1}");
	jscan_init(&s, b.data, b.len, 8, 200000, sb, sizeof(sb));
	CHECK_INT(jscan_next(&s), JSCAN_OBJECT);
	CHECK_INT(jscan_next(&s), JSCAN_KEY);
	CHECK_INT(jscan_skip(&s, jscan_next(&s)), 0);
	CHECK_INT(s.nvalues, 100002);
	CHECK_INT(jscan_next(&s), JSCAN_KEY);
	CHECK_STR(s.str, "y");
	CHECK_INT(jscan_next(&s), JSCAN_NUMBER);
	CHECK_INT(jscan_next(&s), JSCAN_OBJECT_END);
	CHECK_INT(jscan_next(&s), JSCAN_EOF);
	jscan_init(&s, b.data, b.len, 8, 1000, sb, sizeof(sb));
	jscan_next(&s);
	jscan_next(&s);
	CHECK_INT(jscan_skip(&s, jscan_next(&s)), -1);
	CHECK(strstr(s.err, "more than 1000 JSON values") != NULL, "skip bound: %s", s.err);
	CHECK_INT(jscan_next(&s), JSCAN_ERROR);	/* stays failed */
	buf_free(&b);
}

int main(void)
{
	test_streams();
	test_bounds();
	return check_done("test_jscan");
}
