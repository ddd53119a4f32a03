/*
 * check - the smallest test harness: CHECK(cond, fmt...) records a failure
 * with "file:line: message" and goes on; check_done() prints a summary and
 * returns the exit status for main().
 */
#ifndef TLSRPT_CHECK_H
#define TLSRPT_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond, ...) do {						\
	check_count++;							\
	if (!(cond)) {							\
		check_failures++;					\
		fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);	\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

/* got/want for integers and strings */
#define CHECK_INT(got, want) do {					\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	CHECK(g_ == w_, "%s: got %lld, want %lld", #got, g_, w_);	\
} while (0)
#define CHECK_STR(got, want) do {					\
	const char *g_ = (got), *w_ = (want);				\
	CHECK((g_ == NULL && w_ == NULL) ||				\
	      (g_ && w_ && strcmp(g_, w_) == 0),			\
	      "%s: got \"%s\", want \"%s\"", #got,			\
	      g_ ? g_ : "(null)", w_ ? w_ : "(null)");			\
} while (0)

static inline int check_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
	return check_failures ? 1 : 0;
}

#endif
