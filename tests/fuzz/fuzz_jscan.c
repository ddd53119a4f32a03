/*
 * fuzz_jscan - the bounded JSON tokenizer over any bytes, with small
 * limits so that they are reached: every token is read (and every other
 * container skipped), and the invariants hold: depth within its bound,
 * decoded strings within the buffer, NUL terminated, values counted.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jscan s;
	char sb[32];
	enum jscan_tok t;
	unsigned n = 0;

	jscan_init(&s, (const char *)data, size, 8, 500, sb, sizeof(sb));
	do {
		t = jscan_next(&s);
		if (s.depth < 0 || s.depth > 8 || s.nvalues > 501)
			__builtin_trap();
		if ((t == JSCAN_STRING || t == JSCAN_KEY) &&
		    (s.str_len >= sizeof(sb) || s.str[s.str_len] != '\0' || s.str_full < s.str_len))
			__builtin_trap();
		if ((t == JSCAN_OBJECT || t == JSCAN_ARRAY) && (++n & 1) && jscan_skip(&s, t) != 0)
			t = JSCAN_ERROR;
		if (t == JSCAN_ERROR && s.err[0] == '\0')
			__builtin_trap();
	} while (t != JSCAN_EOF && t != JSCAN_ERROR);
	return 0;
}
