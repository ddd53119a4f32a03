/*
 * conf_doc - writes tlsrptd.conf(5) from its template and the key table of
 * lib/core/conf.c: the template's line ".\" @KEYS@" becomes one entry per
 * key, under one subsection per program. The conf-man test compares the
 * result with conf/man/tlsrptd.conf.5; after changing the table:
 *
 *   build/tests/conf_doc conf/man/tlsrptd.conf.5.in > conf/man/tlsrptd.conf.5
 *
 * conf_doc --check FILE loads FILE and prints every error and warning
 * (exit 1 if there is any): the conf-sample test uses it on the sample
 * configuration with each of its commented-out settings switched on.
 */
#include <stdio.h>
#include <string.h>

#include "conf.h"

/* Text as roff: backslashes escaped, no line starting with a control character. */
static void roff(FILE *fp, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", fp);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", fp);
		else if (*s == '-')
			fputs("\\-", fp);
		else
			fputc(*s, fp);
	}
}

/* Text as roff, in lines of at most about 72 bytes (mandoc's style check
 * wants input lines within 80): broken at spaces. */
static void roff_wrapped(FILE *fp, const char *s)
{
	char line[4096];
	size_t col = 0;

	while (*s) {
		size_t n = strcspn(s, " ");

		if (n >= sizeof(line))
			n = sizeof(line) - 1;
		memcpy(line, s, n);
		line[n] = '\0';
		if (col > 0 && col + 1 + n > 72) {
			fputc('\n', fp);
			col = 0;
		} else if (col > 0) {
			fputc(' ', fp);
			col++;
		}
		roff(fp, line);
		col += n;
		s += n;
		while (*s == ' ')
			s++;
	}
}

static void keys(FILE *fp)
{
	struct conf_info k;
	char line[600];

	for (size_t i = 0; conf_describe(i, &k) == 0; i++) {
		if (k.section) {
			fputs(".SS \"", fp);
			roff(fp, k.name);
			fputs("\"\n", fp);
			continue;
		}
		fputs(".TP\n.B ", fp);
		roff(fp, k.name);
		fputs("\n", fp);
		roff_wrapped(fp, k.help);
		fputs(".\n.br\n", fp);
		/* "Type, bounds; default D." (the default quoted, as one word) */
		if (strcmp(k.type, "one of") == 0)
			snprintf(line, sizeof(line), "One of: %s", k.bounds);
		else
			snprintf(line, sizeof(line), "%c%s%s%s", k.type[0] - 'a' + 'A', k.type + 1,
				 k.bounds[0] ? ", " : "", k.bounds);
		roff_wrapped(fp, line);
		if (k.def[0]) {	/* its own line: a long default is one word */
			fputs(";\ndefault \\(lq", fp);
			roff(fp, k.def);
			fputs("\\(rq.\n", fp);
		} else {
			fputs(";\ndefault empty.\n", fp);
		}
	}
}

int main(int argc, char **argv)
{
	char line[4096];
	FILE *in;
	int found = 0;

	if (argc == 3 && strcmp(argv[1], "--check") == 0) {
		struct conf *c = conf_new();
		char err[512];
		int rc;

		if (c == NULL)
			return 70;
		rc = conf_load(c, argv[2], err, sizeof(err)) == 0 && conf_nmessages(c) == 0 ? 0 : 1;
		for (size_t i = 0; i < conf_nmessages(c); i++)
			printf("%s\n", conf_message(c, i, NULL));
		conf_free(c);
		return rc;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: conf_doc TEMPLATE > tlsrptd.conf.5\n"
			"       conf_doc --check FILE\n");
		return 64;
	}
	in = fopen(argv[1], "r");
	if (in == NULL) {
		perror(argv[1]);
		return 66;
	}
	while (fgets(line, sizeof(line), in)) {
		if (strcmp(line, ".\\\" @KEYS@\n") == 0) {
			keys(stdout);
			found++;
		} else {
			fputs(line, stdout);
		}
	}
	fclose(in);
	if (found != 1) {
		fprintf(stderr, "conf_doc: %s: want exactly one line .\\\" @KEYS@\n", argv[1]);
		return 65;
	}
	return 0;
}
