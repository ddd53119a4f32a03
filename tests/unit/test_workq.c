/*
 * test_workq - lib/core/workq: keyed jobs are merged while queued, not
 * repeated while running (unless forced), bounded, and handed back through
 * the wake-up pipe with their results.
 */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "workq.h"

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static int runs;

static void fn(void *arg, struct workq_job *j)
{
	(void)arg;
	pthread_mutex_lock(&gate);	/* held by the test to keep jobs running */
	runs++;
	pthread_mutex_unlock(&gate);
	j->result = strdup(j->key);
	j->result_len = strlen(j->key);
}

static size_t collect(struct workq *q, size_t want, unsigned *flags_of_a)
{
	size_t n = 0;

	for (int tries = 0; tries < 200 && n < want; tries++) {
		struct pollfd p = { .fd = workq_fd(q), .events = POLLIN };
		struct workq_job *j;

		poll(&p, 1, 50);
		j = workq_take_done(q);
		while (j) {
			struct workq_job *next = j->next;

			CHECK(j->result && strcmp(j->result, j->key) == 0, "result of %s", j->key);
			if (strcmp(j->key, "a") == 0 && flags_of_a)
				*flags_of_a |= j->flags;
			n++;
			workq_job_free(j);
			j = next;
		}
	}
	return n;
}

int main(void)
{
	char err[100];
	unsigned fa = 0;
	struct workq *q;

	/* one worker, held: "a" runs, then "b" and "a" wait; a second "b"
	 * merges its flags; "a" while running and queued: merged too */
	pthread_mutex_lock(&gate);
	q = workq_new(1, 2, fn, NULL, err, sizeof(err));
	CHECK(q != NULL, "workq_new: %s", err);
	CHECK_INT(workq_add(q, "a", 0), 1);
	usleep(100000);			/* the worker took "a" and waits at the gate */
	CHECK_INT(workq_add(q, "a", 4), 1);	/* running: not queued again */
	CHECK_INT(workq_add(q, "b", 1 << 3), 1);
	CHECK_INT(workq_add(q, "b", 1 << 4), 1);	/* merged */
	CHECK_INT(workq_add(q, "a", WORKQ_FORCE | 8), 1);	/* forced: queued */
	CHECK_INT(workq_add(q, "c", 0), 0);	/* two waiting: full */
	pthread_mutex_unlock(&gate);
	CHECK_INT(collect(q, 3, &fa), 3);
	CHECK_INT(runs, 3);
	CHECK_INT(fa, WORKQ_FORCE | 8);
	{
		char big[WORKQ_KEY_MAX + 2];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		CHECK_INT(workq_add(q, big, 0), 0);	/* key too long */
	}
	/* jobs still queued when the queue is freed are freed with it */
	pthread_mutex_lock(&gate);
	workq_add(q, "d", 0);
	workq_add(q, "e", 0);
	pthread_mutex_unlock(&gate);
	workq_free(q);
	return check_done("test_workq");
}
