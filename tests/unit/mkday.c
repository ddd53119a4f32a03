/*
 * mkday - test tool: count libtlsrpt datagrams into a day file.
 *
 *   mkday --dir STATE_DIR --day YYYY-MM-DD [--max-size BYTES] < lines
 *
 * Each input line is one datagram (JSON, as libtlsrpt sends it); it is
 * parsed with dgram.c and every policy is counted with store_add, exactly
 * as the collector would. Prints "N datagrams, M sessions, K rejected".
 * Exit 0, or 1 on a setup error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgram.h"
#include "store.h"

int main(int argc, char **argv)
{
	const char *dir = NULL, *dayname = NULL;
	uint64_t max_size = 64u * 1024 * 1024;
	struct dgram_parser *p;
	struct store *s;
	char err[512], *line = NULL;
	size_t cap = 0, ndg = 0, nsess = 0, nbad = 0;
	ssize_t n;
	int64_t day;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--dir") == 0)
			dir = argv[i + 1];
		else if (strcmp(argv[i], "--day") == 0)
			dayname = argv[i + 1];
		else if (strcmp(argv[i], "--max-size") == 0)
			max_size = strtoull(argv[i + 1], NULL, 10);
		else
			break;
	}
	if (dir == NULL || dayname == NULL || (day = store_parse_day(dayname)) < 0) {
		fprintf(stderr, "usage: mkday --dir STATE_DIR --day YYYY-MM-DD [--max-size BYTES] < datagrams\n");
		return 1;
	}
	s = store_open(dir, day, max_size, 2048, err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "mkday: %s\n", err);
		return 1;
	}
	p = dgram_parser_new();
	if (p == NULL) {
		store_close(s);
		return 1;
	}
	while ((n = getline(&line, &cap, stdin)) > 0) {
		struct dgram d;
		const char *why = NULL;

		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (n == 0)
			continue;
		ndg++;
		store_bump(s, STC_DATAGRAMS, 1);
		store_bump(s, STC_BYTES, (uint64_t)n);
		if (dgram_parse(p, line, (size_t)n, &d, &why) != DGRAM_OK) {
			fprintf(stderr, "mkday: datagram %zu rejected: %s\n", ndg, why ? why : "?");
			nbad++;
			continue;
		}
		for (size_t i = 0; i < d.npolicies; i++) {
			if (store_add(s, d.d, d.pr, &d.policies[i]) != STORE_OK) {
				fprintf(stderr, "mkday: day file full\n");
				break;
			}
			nsess++;	/* store_add counts sessions and failures */
		}
	}
	free(line);
	dgram_parser_free(p);
	store_close(s);
	printf("%zu datagrams, %zu sessions, %zu rejected\n", ndg, nsess, nbad);
	return 0;
}
