/*
 * test_termesc - what reaches a terminal: every control, ESC/CSI sequence,
 * C1 control, direction override and invalid byte escaped, ordinary text
 * (also non-ASCII) untouched; as a field and through the stream filter,
 * whatever the write boundaries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "termesc.h"

static const struct {
	const char *in, *field, *stream;
} cases[] = {
	{ "Google Inc.", "Google Inc.", "Google Inc." },
	{ "b\xc3\xbc" "cher \xe2\x82\xac \xf0\x9f\x98\x80", "b\xc3\xbc" "cher \xe2\x82\xac \xf0\x9f\x98\x80",
	  "b\xc3\xbc" "cher \xe2\x82\xac \xf0\x9f\x98\x80" },
	{ "\x1b]0;owned\x07\x1b[2J\x1b[1;31mred", "\\u001b]0;owned\\u0007\\u001b[2J\\u001b[1;31mred",
	  "\\u001b]0;owned\\u0007\\u001b[2J\\u001b[1;31mred" },
	{ "a\rb\nc\td\\e", "a\\u000db\\u000ac\\u0009d\\\\e", "a\\u000db\nc\td\\e" },
	{ "csi8 \xc2\x9b" "31m del \x7f", "csi8 \\u009b31m del \\u007f", "csi8 \\u009b31m del \\u007f" },
	{ "rtl \xe2\x80\xae" "gnp.exe \xe2\x81\xa6 \xd8\x9c \xe2\x80\xa8", "rtl \\u202egnp.exe \\u2066 \\u061c \\u2028",
	  "rtl \\u202egnp.exe \\u2066 \\u061c \\u2028" },
	{ "raw \x9b bad \xc0\xaf \xed\xa0\x80 \xf5", "raw \\ufffd bad \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \\ufffd",
	  "raw \\ufffd bad \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \\ufffd" },
	{ "cut \xe2\x82", "cut \\ufffd\\ufffd", "cut \\ufffd" },
};

static void test_field(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(strcmp(termesc(cases[i].in), cases[i].field) == 0, "case %zu: got \"%s\", want \"%s\"",
		      i, termesc(cases[i].in), cases[i].field);
	CHECK_STR(termesc(NULL), "(null)");
	/* several in one printf: TERMESC_SLOTS results stay valid */
	{
		const char *a = termesc("\x1b" "a"), *b = termesc("\x1b" "b");
		char out[64];

		snprintf(out, sizeof(out), "%s %s", a, b);
		CHECK_STR(out, "\\u001ba \\u001bb");
	}
}

/* Every case through the filter, written in pieces of every size. */
static void test_stream(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);

		for (size_t piece = 1; piece <= len; piece++) {
			char path[] = "/tmp/test_termesc.XXXXXX", got[512];
			int fd = mkstemp(path);
			FILE *fp = fdopen(fd, "w");
			size_t n;

			CHECK(fp && termesc_stream(&fp) == 0, "termesc_stream");
			setvbuf(fp, NULL, _IONBF, 0);	/* each fwrite reaches the filter */
			for (size_t off = 0; off < len; off += piece)
				fwrite(cases[i].in + off, 1, off + piece > len ? len - off : piece, fp);
			fclose(fp);
			fp = fopen(path, "r");
			n = fread(got, 1, sizeof(got) - 1, fp);
			got[n] = '\0';
			fclose(fp);
			unlink(path);
			CHECK(strcmp(got, cases[i].stream) == 0, "case %zu in pieces of %zu: got \"%s\", want \"%s\"",
			      i, piece, got, cases[i].stream);
		}
	}
}

int main(void)
{
	test_field();
	test_stream();
	return check_done("termesc");
}
