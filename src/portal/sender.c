/* sender.c - request seals and puts on a small thread pool (sender.h).
 *
 * Two locked FIFO lists: todo (submitted, not yet taken by a thread) and
 * done (put finished, not yet reported). A thread takes the jobs waiting
 * (one, or up to batch_max), runs prep and put on them without holding the
 * lock (the batch functions first, job by job if they fail), appends them
 * to done and activates ev_done, whose callback reports the whole list on
 * the loop. Several threads seal and put at once, so the envelope module
 * signs their seals with one signature and the store merges their changes
 * into one commit; a thread's own batch is one seal and one put besides.
 * A job's prepared flag is written under the lock after prep returns, so
 * the loop may read what prep made once it sees the flag under the lock.
 */
#include "portal/sender.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define PSEND_THREADS_MAX 64

struct gg_psend {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gg_psend_job *todo_head, *todo_tail;
    gg_psend_job *done_head, *done_tail;
    size_t inflight;            /* loop thread only */
    int stopping;
    gg_psend_prep_fn prep;
    gg_psend_put_fn put;
    void *ctx;
    gg_psend_done_fn done;
    void *done_arg;
    size_t batch_max;           /* jobs a thread takes at once (1: no batches) */
    gg_psend_prep_many_fn prep_many;
    gg_psend_put_many_fn put_many;
    struct event *ev_done;
    pthread_t th[PSEND_THREADS_MAX];
    size_t nth;
};

/* push - append job to a list. */
static void push(gg_psend_job **head, gg_psend_job **tail, gg_psend_job *job)
{
    job->next = NULL;
    if (*tail != NULL)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

/* report - run done for each job of list, in order, and free them. */
static void report(gg_psend *s, gg_psend_job *list)
{
    while (list != NULL) {
        gg_psend_job *next = list->next;

        s->inflight--;
        s->done(s->done_arg, list);
        gg_psend_job_free(list);
        list = next;
    }
}

/* on_done - loop callback: report every finished put. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    gg_psend *s = arg;
    gg_psend_job *list;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&s->mu);
    list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    report(s, list);
}

/* prep_all - prep the n jobs (together if the pool can), mark the ones
 * made as prepared; their results are set for the ones that failed. */
static void prep_all(gg_psend *s, gg_psend_job **jobs, size_t n)
{
    size_t i;
    int together = n > 1 && s->prep_many != NULL && s->prep_many(s->ctx, jobs, n) == GG_OK;

    for (i = 0; i < n; i++)
        jobs[i]->result = together || s->prep == NULL ? GG_OK : s->prep(s->ctx, jobs[i]);
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < n; i++)
        jobs[i]->prepared = jobs[i]->result == GG_OK;
    pthread_mutex_unlock(&s->mu);
}

/* run - prep and put n jobs (sender thread), setting each result. */
static void run(gg_psend *s, gg_psend_job **jobs, size_t n)
{
    gg_psend_job *ready[GG_PSEND_BATCH_MAX];
    size_t i, m = 0;

    prep_all(s, jobs, n);
    for (i = 0; i < n; i++)
        if (jobs[i]->prepared)
            ready[m++] = jobs[i];
    if (m > 1 && s->put_many != NULL && s->put_many(s->ctx, ready, m) == GG_OK)
        return;  /* results stay GG_OK */
    for (i = 0; i < m; i++)
        ready[i]->result = s->put(s->ctx, ready[i]->dest, ready[i]->data, ready[i]->len,
                                  ready[i]->hdr.expiry_ms);
}

/* take - up to max jobs off todo into jobs (lock held); how many. */
static size_t take(gg_psend *s, gg_psend_job **jobs, size_t max)
{
    size_t n = 0;

    while (n < max && s->todo_head != NULL) {
        jobs[n] = s->todo_head;
        s->todo_head = jobs[n]->next;
        jobs[n]->next = NULL;
        n++;
    }
    if (s->todo_head == NULL)
        s->todo_tail = NULL;
    return n;
}

/* worker - take jobs until stopping and none is left; run them. */
static void *worker(void *arg)
{
    gg_psend *s = arg;
    gg_psend_job *jobs[GG_PSEND_BATCH_MAX];
    size_t i, n;

    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (s->todo_head == NULL && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        n = take(s, jobs, s->batch_max);
        pthread_mutex_unlock(&s->mu);
        if (n == 0)
            return NULL;

        run(s, jobs, n);

        pthread_mutex_lock(&s->mu);
        for (i = 0; i < n; i++)
            push(&s->done_head, &s->done_tail, jobs[i]);
        if (!s->stopping)
            event_active(s->ev_done, EV_READ, 0);
        pthread_mutex_unlock(&s->mu);
    }
}

/* gg_psend_start - the pool and its threads. */
gg_err gg_psend_start(struct event_base *base, size_t threads, gg_psend_prep_fn prep,
                      gg_psend_put_fn put, void *ctx, gg_psend_done_fn done, void *done_arg,
                      gg_psend **out)
{
    gg_psend *s;

    *out = NULL;
    if (base == NULL || put == NULL || done == NULL || threads == 0 ||
        threads > PSEND_THREADS_MAX)
        return GG_EINVAL;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return GG_ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->prep = prep;
    s->put = put;
    s->ctx = ctx;
    s->done = done;
    s->done_arg = done_arg;
    s->batch_max = 1;
    s->ev_done = event_new(base, -1, 0, on_done, s);
    if (s->ev_done == NULL) {
        gg_psend_stop(s);
        return GG_ENOMEM;
    }
    for (s->nth = 0; s->nth < threads; s->nth++) {
        if (pthread_create(&s->th[s->nth], NULL, worker, s) != 0) {
            gg_error("portal", "msg=\"cannot start a sender thread\"");
            gg_psend_stop(s);
            return GG_EIO;
        }
    }
    *out = s;
    return GG_OK;
}

/* gg_psend_set_batch - batches of up to max jobs per thread. */
void gg_psend_set_batch(gg_psend *s, size_t max, gg_psend_prep_many_fn prep_many,
                        gg_psend_put_many_fn put_many)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->batch_max = max < 1 ? 1 : max > GG_PSEND_BATCH_MAX ? GG_PSEND_BATCH_MAX : max;
    s->prep_many = prep_many;
    s->put_many = put_many;
    pthread_mutex_unlock(&s->mu);
}

/* gg_psend_submit - hand a job to the threads. */
gg_err gg_psend_submit(gg_psend *s, gg_psend_job *job)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return GG_EINVAL;
    }
    push(&s->todo_head, &s->todo_tail, job);
    s->inflight++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return GG_OK;
}

/* gg_psend_inflight - submitted and not yet reported. */
size_t gg_psend_inflight(const gg_psend *s)
{
    return s != NULL ? s->inflight : 0;
}

/* gg_psend_prepared - has prep finished well; its hash if so. */
int gg_psend_prepared(gg_psend *s, const gg_psend_job *job, uint8_t hash[GG_ENV_HASH_LEN])
{
    int ok;

    pthread_mutex_lock(&s->mu);
    ok = job->prepared;
    pthread_mutex_unlock(&s->mu);
    if (ok)
        memcpy(hash, job->req_hash, GG_ENV_HASH_LEN);
    return ok;
}

/* gg_psend_stop - finish, join, report the rest, free. */
void gg_psend_stop(gg_psend *s)
{
    gg_psend_job *list;
    size_t i;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (i = 0; i < s->nth; i++)
        pthread_join(s->th[i], NULL);
    if (s->ev_done != NULL)
        event_free(s->ev_done);
    list = s->done_head;
    s->done_head = s->done_tail = NULL;
    report(s, list);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* gg_psend_job_free - the job, its envelope and its payload text. */
void gg_psend_job_free(gg_psend_job *job)
{
    if (job == NULL)
        return;
    if (job->pt != NULL) {
        explicit_bzero(job->pt, job->ptlen);  /* holds the token and personal data */
        free(job->pt);
    }
    free(job->data);
    free(job);
}
