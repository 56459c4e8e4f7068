/* intake.c - priority-first taking of requests (intake.h). */
#include "utility/intake.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "transport/transport.h"

struct gg_intake {
    gg_store *st;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t gen;            /* bumped by every commit onto either queue */
};

/* on_commit - store watcher: a request arrived. */
static void on_commit(void *arg, const char *queue)
{
    gg_intake *in = arg;

    (void)queue;
    pthread_mutex_lock(&in->mu);
    in->gen++;
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
}

gg_err gg_intake_new(gg_store *st, gg_intake **out)
{
    gg_intake *in = calloc(1, sizeof *in);
    pthread_condattr_t ca;
    gg_err e;

    *out = NULL;
    if (!in)
        return GG_ENOMEM;
    in->st = st;
    pthread_mutex_init(&in->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&in->cv, &ca);
    pthread_condattr_destroy(&ca);
    e = gg_store_watch(st, GG_Q_REQUESTS_PRIO, on_commit, in);
    if (e == GG_OK)
        e = gg_store_watch(st, GG_Q_REQUESTS, on_commit, in);
    if (e != GG_OK) {
        gg_intake_free(in);
        return e;
    }
    *out = in;
    return GG_OK;
}

void gg_intake_free(gg_intake *in)
{
    if (!in)
        return;
    pthread_cond_destroy(&in->cv);
    pthread_mutex_destroy(&in->mu);
    free(in);
}

gg_err gg_intake_take(gg_intake *in, int64_t lease_ms, int wait_ms, gg_msg **out)
{
    struct timespec dl;
    uint64_t gen;
    gg_err e;

    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    for (;;) {
        pthread_mutex_lock(&in->mu);
        gen = in->gen;
        pthread_mutex_unlock(&in->mu);
        e = gg_store_get(in->st, GG_Q_REQUESTS_PRIO, lease_ms, out);
        if (e == GG_EEMPTY)
            e = gg_store_get(in->st, GG_Q_REQUESTS, lease_ms, out);
        if (e != GG_EEMPTY)
            return e;
        pthread_mutex_lock(&in->mu);
        while (in->gen == gen) {
            if (pthread_cond_timedwait(&in->cv, &in->mu, &dl) == ETIMEDOUT)
                break;
        }
        if (in->gen == gen) {
            pthread_mutex_unlock(&in->mu);
            return GG_EEMPTY;
        }
        pthread_mutex_unlock(&in->mu);
    }
}

void gg_intake_wake(gg_intake *in)
{
    if (in)
        on_commit(in, NULL);
}
