/*
 * workq - a bounded queue of keyed jobs for a fixed pool of worker
 * threads, with the finished jobs handed back to one event loop through a
 * pipe (tlsrpt-policyd: DANE lookups and MTA-STS fetches off the loop).
 *
 * A job is identified by its key: while a job for a key is queued, adding
 * the same key merges the flags into it (bitwise OR); while one is
 * running, adding it again does nothing unless WORKQ_FORCE is among the
 * flags (then a second job is queued). At most 'max_queued' jobs wait.
 *
 * Finished jobs: the worker function runs without the lock, may set
 * job->result (malloc'ed, owned by the job, freed by workq_job_free), and
 * the job goes to the done list; one byte is written to the wake-up pipe.
 * The loop polls workq_fd(), then takes the whole done list with
 * workq_take_done and frees each job when done with it.
 *
 * Thread safety: workq_add, workq_take_done and workq_fd may be called
 * from any thread; workq_new and workq_free from the owner only
 * (workq_free stops and joins the workers; queued and done jobs are freed).
 */
#ifndef TLSRPT_WORKQ_H
#define TLSRPT_WORKQ_H

#include <stdbool.h>
#include <stddef.h>

#define WORKQ_KEY_MAX 300
#define WORKQ_FORCE 1u		/* queue even while one for the key is running */

struct workq_job {
	struct workq_job *next;		/* done list */
	char key[WORKQ_KEY_MAX + 1];
	unsigned flags;
	void *result;			/* set by the worker function, or NULL */
	size_t result_len;
};

typedef void (*workq_fn)(void *arg, struct workq_job *job);

struct workq;

/* Start 'threads' workers running fn(arg, job). NULL with 'err' on failure. */
struct workq *workq_new(size_t threads, size_t max_queued, workq_fn fn, void *arg,
			char *err, size_t errsz);
void workq_free(struct workq *q);

/* Queue 'key' (at most WORKQ_KEY_MAX bytes) with 'flags'. Returns 1 when a
 * job for it is (now) pending, 0 when the queue is full or out of memory. */
int workq_add(struct workq *q, const char *key, unsigned flags);

/* The read end of the wake-up pipe (non-blocking): readable when jobs are
 * done. */
int workq_fd(const struct workq *q);

/* Drain the pipe and return the done list (NULL if empty). */
struct workq_job *workq_take_done(struct workq *q);

void workq_job_free(struct workq_job *j);

#endif
