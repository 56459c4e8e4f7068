/* offload.c - the portal's worker for blocking calls (offload.h).
 *
 * Two locked FIFO lists as in sender.c: todo (submitted, fn not yet run)
 * and done (fn run, done not yet run). The worker takes one job, runs fn
 * without the lock, appends it to done and activates ev_done, whose
 * callback runs done for the whole list on the loop.
 */
#include "portal/offload.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/log.h"

typedef struct job {
    gg_offload_fn fn;
    gg_offload_fn done;
    void *arg;
    struct job *next;
} job;

struct gg_offload {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *todo_head, *todo_tail;
    job *done_head, *done_tail;
    int stopping;
    int started;
    struct event *ev_done;
    pthread_t th;
};

/* push - append j to a list. */
static void push(job **head, job **tail, job *j)
{
    j->next = NULL;
    if (*tail != NULL)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

/* report - run done for each job of list, in order, and free them. */
static void report(job *list)
{
    while (list != NULL) {
        job *next = list->next;

        list->done(list->arg);
        free(list);
        list = next;
    }
}

/* on_done - loop callback: the continuations of every finished job. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    gg_offload *s = arg;
    job *list;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&s->mu);
    list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    report(list);
}

/* worker - run jobs until stopping and none is left. */
static void *worker(void *arg)
{
    gg_offload *s = arg;
    job *j;

    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (s->todo_head == NULL && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        j = s->todo_head;
        if (j == NULL) {
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        s->todo_head = j->next;
        if (s->todo_head == NULL)
            s->todo_tail = NULL;
        pthread_mutex_unlock(&s->mu);

        j->fn(j->arg);

        pthread_mutex_lock(&s->mu);
        push(&s->done_head, &s->done_tail, j);
        if (!s->stopping)
            event_active(s->ev_done, EV_READ, 0);
        pthread_mutex_unlock(&s->mu);
    }
}

/* gg_offload_start - the worker thread. */
gg_err gg_offload_start(struct event_base *base, gg_offload **out)
{
    gg_offload *s = calloc(1, sizeof *s);

    *out = NULL;
    if (s == NULL)
        return GG_ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->ev_done = event_new(base, -1, 0, on_done, s);
    if (s->ev_done == NULL) {
        gg_offload_stop(s);
        return GG_ENOMEM;
    }
    if (pthread_create(&s->th, NULL, worker, s) != 0) {
        gg_error("portal", "msg=\"cannot start the offload thread\"");
        gg_offload_stop(s);
        return GG_EIO;
    }
    s->started = 1;
    *out = s;
    return GG_OK;
}

/* gg_offload_submit - queue fn, then done. */
gg_err gg_offload_submit(gg_offload *s, gg_offload_fn fn, gg_offload_fn done, void *arg)
{
    job *j;

    if (s == NULL || fn == NULL || done == NULL)
        return GG_EINVAL;
    j = calloc(1, sizeof *j);
    if (j == NULL)
        return GG_ENOMEM;
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        free(j);
        return GG_EINVAL;
    }
    push(&s->todo_head, &s->todo_tail, j);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return GG_OK;
}

/* gg_offload_stop - finish, join, run the continuations left, free. */
void gg_offload_stop(gg_offload *s)
{
    job *list;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->th, NULL);
    if (s->ev_done != NULL)
        event_free(s->ev_done);
    list = s->done_head;
    s->done_head = s->done_tail = NULL;
    report(list);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
