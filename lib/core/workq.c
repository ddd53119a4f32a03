/*
 * workq - keyed jobs for a pool of worker threads. See workq.h.
 */
#include "workq.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

struct workq {
	pthread_mutex_t lock;		/* everything below */
	pthread_cond_t cond;
	struct workq_job *qhead, *qtail;
	size_t queued, max_queued;
	struct workq_job *done;
	bool stop;
	int wake[2];
	workq_fn fn;
	void *arg;
	size_t nthreads;
	pthread_t *threads;
	char (*busy)[WORKQ_KEY_MAX + 1];	/* key each worker works on */
};

struct start {
	struct workq *q;
	size_t me;
};

static void *worker_main(void *p)
{
	struct start *st = p;
	struct workq *q = st->q;
	size_t me = st->me;

	free(st);
	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct workq_job *j;

		while (!q->stop && q->qhead == NULL)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->stop)
			break;
		j = q->qhead;
		q->qhead = j->next;
		if (q->qhead == NULL)
			q->qtail = NULL;
		q->queued--;
		j->next = NULL;
		memcpy(q->busy[me], j->key, sizeof(j->key));
		pthread_mutex_unlock(&q->lock);

		q->fn(q->arg, j);

		pthread_mutex_lock(&q->lock);
		q->busy[me][0] = '\0';
		j->next = q->done;
		q->done = j;
		if (write(q->wake[1], "x", 1) < 0 && errno != EAGAIN)
			log_err("wake-up pipe: %s", strerror(errno));
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

struct workq *workq_new(size_t threads, size_t max_queued, workq_fn fn, void *arg,
			char *err, size_t errsz)
{
	struct workq *q = calloc(1, sizeof(*q));

	if (q == NULL || (q->threads = calloc(threads, sizeof(*q->threads))) == NULL ||
	    (q->busy = calloc(threads, sizeof(*q->busy))) == NULL) {
		snprintf(err, errsz, "out of memory");
		if (q) {
			free(q->threads);
			free(q);
		}
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->max_queued = max_queued;
	q->fn = fn;
	q->arg = arg;
	if (pipe2(q->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		snprintf(err, errsz, "pipe: %s", strerror(errno));
		free(q->busy);
		free(q->threads);
		free(q);
		return NULL;
	}
	for (size_t i = 0; i < threads; i++) {
		struct start *st = malloc(sizeof(*st));

		if (st == NULL) {
			snprintf(err, errsz, "out of memory");
			workq_free(q);
			return NULL;
		}
		st->q = q;
		st->me = i;
		if (pthread_create(&q->threads[i], NULL, worker_main, st) != 0) {
			free(st);
			snprintf(err, errsz, "cannot start worker threads");
			workq_free(q);
			return NULL;
		}
		q->nthreads++;
	}
	return q;
}

static void free_list(struct workq_job *j)
{
	while (j) {
		struct workq_job *next = j->next;

		workq_job_free(j);
		j = next;
	}
}

void workq_free(struct workq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (size_t i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	free_list(q->qhead);
	free_list(q->done);
	close(q->wake[0]);
	close(q->wake[1]);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q->busy);
	free(q->threads);
	free(q);
}

int workq_add(struct workq *q, const char *key, unsigned flags)
{
	struct workq_job *j;
	int rc = 1;

	if (strlen(key) > WORKQ_KEY_MAX)
		return 0;
	pthread_mutex_lock(&q->lock);
	for (j = q->qhead; j; j = j->next)
		if (strcmp(j->key, key) == 0) {
			j->flags |= flags;
			goto out;
		}
	if (!(flags & WORKQ_FORCE))
		for (size_t i = 0; i < q->nthreads; i++)
			if (strcmp(q->busy[i], key) == 0)
				goto out;
	if (q->queued >= q->max_queued || (j = calloc(1, sizeof(*j))) == NULL) {
		rc = 0;
		goto out;
	}
	memcpy(j->key, key, strlen(key) + 1);
	j->flags = flags;
	if (q->qtail)
		q->qtail->next = j;
	else
		q->qhead = j;
	q->qtail = j;
	q->queued++;
	pthread_cond_signal(&q->cond);
out:
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int workq_fd(const struct workq *q)
{
	return q->wake[0];
}

struct workq_job *workq_take_done(struct workq *q)
{
	char drain[256];
	struct workq_job *done;

	while (read(q->wake[0], drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&q->lock);
	done = q->done;
	q->done = NULL;
	pthread_mutex_unlock(&q->lock);
	return done;
}

void workq_job_free(struct workq_job *j)
{
	if (j) {
		free(j->result);
		free(j);
	}
}
