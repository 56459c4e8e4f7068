/* notify.c - wake-ups after commits: per-queue generations with a condition
 * variable (CLOCK_MONOTONIC) for gg_store_wait and gg_store_get_wait, and
 * the watchers. Runs under nmu only, never under the store mutex, so a
 * waiting thread never holds up a commit.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"

/* gg_txn_touch - remember that this transaction added a message to queue. */
void gg_txn_touch(gg_txn *t, const char *queue)
{
    for (size_t i = 0; i < t->ntouched; i++)
        if (strcmp(t->touched[i], queue) == 0)
            return;
    if (t->ntouched == GG_STORE_TOUCH_MAX) {
        t->touched_overflow = 1;
        return;
    }
    snprintf(t->touched[t->ntouched++], GG_QUEUE_NAME_MAX, "%s", queue);
}

/* wait_gen - the wake-up generation of queue; changes on every add. Under nmu. */
static uint64_t wait_gen(gg_store *st, const char *queue)
{
    for (size_t i = 0; i < st->nslots; i++)
        if (strcmp(st->slots[i].queue, queue) == 0)
            return st->slots[i].gen + st->gen_all;
    return st->gen_all;
}

/* bump_gen - advance queue's generation (or everyone's when slots ran out). Under nmu. */
static void bump_gen(gg_store *st, const char *queue)
{
    for (size_t i = 0; i < st->nslots; i++) {
        if (strcmp(st->slots[i].queue, queue) == 0) {
            st->slots[i].gen++;
            return;
        }
    }
    if (st->nslots == GG_STORE_WAIT_SLOTS) {
        st->gen_all++;
        return;
    }
    snprintf(st->slots[st->nslots].queue, GG_QUEUE_NAME_MAX, "%s", queue);
    st->slots[st->nslots++].gen = 1;
}

/* gg_store_notify - after a commit that added messages: wake waiters, then call the
 * matching watchers with no store lock held. */
void gg_store_notify(gg_store *st, const gg_txn *t)
{
    gg_watch calls[GG_STORE_WATCH_MAX];
    size_t ncalls = 0;

    pthread_mutex_lock(&st->nmu);
    for (size_t i = 0; i < t->ntouched; i++)
        bump_gen(st, t->touched[i]);
    if (t->touched_overflow)
        st->gen_all++;
    for (size_t w = 0; w < st->nwatch; w++) {
        int hit = t->touched_overflow;
        for (size_t i = 0; !hit && i < t->ntouched; i++)
            hit = strcmp(st->watch[w].queue, t->touched[i]) == 0;
        if (hit)
            calls[ncalls++] = st->watch[w];
    }
    if (ncalls)
        st->calling++;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->nmu);
    if (!ncalls)
        return;
    for (size_t i = 0; i < ncalls; i++)
        calls[i].fn(calls[i].arg, calls[i].queue);
    pthread_mutex_lock(&st->nmu);
    st->calling--;
    if (st->calling == 0)
        pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->nmu);
}

/* deadline_after - the CLOCK_MONOTONIC time timeout_ms from now. */
static struct timespec deadline_after(int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    return dl;
}

/* wait_change - sleep until queue's generation moves past gen or the
 * deadline passes; 0 on a change, ETIMEDOUT otherwise. Takes nmu. */
static int wait_change(gg_store *st, const char *queue, uint64_t gen, const struct timespec *dl)
{
    int rc = 0;

    pthread_mutex_lock(&st->nmu);
    while (rc == 0 && wait_gen(st, queue) == gen)
        rc = pthread_cond_timedwait(&st->cond, &st->nmu, dl);
    if (wait_gen(st, queue) != gen)
        rc = 0;
    pthread_mutex_unlock(&st->nmu);
    return rc;
}

/* current_gen - queue's generation now. */
static uint64_t current_gen(gg_store *st, const char *queue)
{
    uint64_t g;
    pthread_mutex_lock(&st->nmu);
    g = wait_gen(st, queue);
    pthread_mutex_unlock(&st->nmu);
    return g;
}

void gg_store_wait(gg_store *st, const char *queue, int timeout_ms)
{
    struct timespec dl;

    if (!st || !gg_store_valid_name(queue) || timeout_ms <= 0)
        return;
    dl = deadline_after(timeout_ms);
    (void)wait_change(st, queue, current_gen(st, queue), &dl);
}

gg_err gg_store_get_wait(gg_store *st, const char *queue, int64_t lease_ms, int timeout_ms,
                         gg_msg **out)
{
    struct timespec dl = deadline_after(timeout_ms > 0 ? timeout_ms : 0);

    if (!st || !gg_store_valid_name(queue))
        return GG_EINVAL;
    for (;;) {
        /* Take the generation before looking, so a put after the look wakes us. */
        uint64_t gen = current_gen(st, queue);
        gg_err err = gg_store_get(st, queue, lease_ms, out);
        if (err != GG_EEMPTY || timeout_ms <= 0)
            return err;
        if (wait_change(st, queue, gen, &dl) != 0)
            return GG_EEMPTY;
    }
}

/* gg_store_get_many_wait - gg_store_get_many, waiting for a put when empty. */
gg_err gg_store_get_many_wait(gg_store *st, const char *queue, int64_t lease_ms, size_t max,
                              int timeout_ms, gg_msg **out, size_t *n)
{
    struct timespec dl = deadline_after(timeout_ms > 0 ? timeout_ms : 0);

    if (!st || !gg_store_valid_name(queue)) {
        if (n)
            *n = 0;
        return GG_EINVAL;
    }
    for (;;) {
        /* Take the generation before looking, so a put after the look wakes us. */
        uint64_t gen = current_gen(st, queue);
        gg_err err = gg_store_get_many(st, queue, lease_ms, max, out, n);
        if (err != GG_EEMPTY || timeout_ms <= 0)
            return err;
        if (wait_change(st, queue, gen, &dl) != 0)
            return GG_EEMPTY;
    }
}

gg_err gg_store_watch(gg_store *st, const char *queue, gg_store_watch_fn fn, void *arg)
{
    gg_err err = GG_OK;

    if (!st || !gg_store_valid_name(queue) || !fn)
        return GG_EINVAL;
    pthread_mutex_lock(&st->nmu);
    if (st->nwatch == GG_STORE_WATCH_MAX) {
        err = GG_EFULL;
    } else {
        gg_watch *w = &st->watch[st->nwatch++];
        snprintf(w->queue, sizeof w->queue, "%s", queue);
        w->fn = fn;
        w->arg = arg;
    }
    pthread_mutex_unlock(&st->nmu);
    return err;
}

/* gg_store_unwatch - remove fn/arg watchers and wait out calls in flight. */
gg_err gg_store_unwatch(gg_store *st, gg_store_watch_fn fn, void *arg)
{
    size_t kept = 0, removed = 0;

    if (!st || !fn)
        return GG_EINVAL;
    pthread_mutex_lock(&st->nmu);
    for (size_t w = 0; w < st->nwatch; w++) {
        if (st->watch[w].fn == fn && st->watch[w].arg == arg)
            removed++;
        else
            st->watch[kept++] = st->watch[w];
    }
    st->nwatch = kept;
    /* A notifier may have copied the watcher before we removed it: wait
     * until no notifier is calling watchers. */
    while (removed && st->calling > 0)
        pthread_cond_wait(&st->cond, &st->nmu);
    pthread_mutex_unlock(&st->nmu);
    return removed ? GG_OK : GG_ENOTFOUND;
}
