/* notify.c - wake-ups after commits and the watchers. Each caller of
 * gg_store_wait or a *_get_wait call links a gg_waiter with a condition
 * variable of its own (CLOCK_MONOTONIC) into st->waiters while it is in
 * the call. A commit wakes only the waiters of the queues it touched: for
 * each message it made ready, one taker (a get_wait caller) that is not
 * already woken, oldest first; and every plain waiter of the queue. So 64
 * threads waiting on 64 reply queues, or 64 workers on one request queue,
 * are not all woken by each commit (a thundering herd that used to cost
 * more CPU than the commits). A woken taker always looks again before it
 * returns; one that leaves with a wake-up it did not use (it got a message
 * on an earlier look) passes it to the next taker of its queue, so a ready
 * message never waits for a timeout while a taker sleeps.
 * A waiting taker does not look at a queue that a take found empty, with
 * no commit touching the queue since, within the last GG_STORE_SEEN_US:
 * it goes to sleep at once. Each look is a store operation (a transaction
 * and, under load, two thread switches through the committer), and the
 * first look of a caller that has just put a request and now waits for its
 * reply always finds nothing. A message becomes ready only by a commit
 * (which counts in gen, below, before it wakes anyone) or by a lease
 * running out, which a later look finds, at most GG_STORE_SEEN_US later.
 * A commit may also lease its messages straight to sleeping takers
 * (handoff.c): such a taker is woken with GG_WOKEN_HANDED and returns
 * them without looking. So that the commit can, a taker records its
 * lease_ms, max and out array when it enters. A taker reserved by a
 * commit's hand-off (pending) sleeps on until that commit is over, even
 * past its deadline. At close every waiter is woken and leaves (takers
 * with GG_ECLOSED), and the close waits for the last to go.
 * Runs under nmu only, never under the store mutex, so a waiting thread
 * never holds up a commit.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "store/store_int.h"

/* txn_hash - FNV-1a of a queue name: most names differ in it, so a
 * lookup compares strings only on a match. */
static uint32_t txn_hash(const char *queue)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)queue; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* find_hashed - index of queue (hash h) in t, -1 if absent. */
static int find_hashed(const gg_txn *t, const char *queue, uint32_t h)
{
    for (size_t i = 0; i < t->ntouched; i++)
        if (t->hash[i] == h && strcmp(t->touched[i], queue) == 0)
            return (int)i;
    return -1;
}

int gg_txn_find(const gg_txn *t, const char *queue)
{
    return queue ? find_hashed(t, queue, txn_hash(queue)) : -1;
}

/* touch_hashed - note n messages of queue (hash h) made ready in t. */
static void touch_hashed(gg_txn *t, const char *queue, uint32_t h, uint32_t n)
{
    int i = find_hashed(t, queue, h);

    if (i >= 0) {
        t->added[i] += n;
        return;
    }
    if (t->ntouched == GG_STORE_TOUCH_MAX) {
        t->touched_overflow = 1;
        return;
    }
    snprintf(t->touched[t->ntouched], GG_QUEUE_NAME_MAX, "%s", queue);
    t->hash[t->ntouched] = h;
    t->added[t->ntouched++] = n;
}

void gg_txn_touch(gg_txn *t, const char *queue)
{
    touch_hashed(t, queue, txn_hash(queue), 1);
}

void gg_txn_merge(gg_txn *into, const gg_txn *from)
{
    for (size_t i = 0; i < from->ntouched; i++)
        touch_hashed(into, from->touched[i], from->hash[i], from->added[i]);
    if (from->touched_overflow)
        into->touched_overflow = 1;
}

/* wake - wake waiter w for its queue (bit 1) or queue2 (bit 2). Under nmu. */
static void wake(gg_store *st, gg_waiter *w, int bit)
{
    w->woken |= bit;
    st->wakeups++;
    pthread_cond_signal(&w->cond);
}

/* match - which of w's queues is queue: 1 (queue), 2 (queue2) or 0; any
 * (1) when queue is NULL. */
static int match(const gg_waiter *w, const char *queue)
{
    if (!queue || strcmp(w->queue, queue) == 0)
        return 1;
    return w->queue2 && strcmp(w->queue2, queue) == 0 ? 2 : 0;
}

/* wake_queue - wake every plain waiter of queue (NULL: of any) and up to n
 * takers that are not woken yet (every one when n is UINT32_MAX): sleeping
 * ones first, then ones that are looking (they look once more). Under nmu. */
static void wake_queue(gg_store *st, const char *queue, uint32_t n)
{
    for (int pass = 0; pass < 2; pass++) {
        for (gg_waiter *w = st->waiters; w; w = w->next) {
            int bit = w->woken ? 0 : match(w, queue);

            if (!bit || (w->taker && (n == 0 || w->sleeping != (pass == 0))))
                continue;
            wake(st, w, bit);
            if (w->taker && n != UINT32_MAX)
                n--;
        }
    }
}

/* seen_slot - queue's gg_qseen, made if make and there is room; NULL
 * otherwise. Under nmu. */
static gg_qseen *seen_slot(gg_store *st, const char *queue, int make)
{
    uint32_t h = txn_hash(queue);

    for (size_t i = 0; i < st->nseen; i++)
        if (st->seen[i].hash == h && strcmp(st->seen[i].queue, queue) == 0)
            return &st->seen[i];
    if (!make || st->nseen == GG_STORE_SEEN_MAX)
        return NULL;
    memset(&st->seen[st->nseen], 0, sizeof st->seen[0]);
    snprintf(st->seen[st->nseen].queue, GG_QUEUE_NAME_MAX, "%s", queue);
    st->seen[st->nseen].hash = h;
    return &st->seen[st->nseen++];
}

/* seen_touch - a commit touched queue (NULL: maybe any). Under nmu. */
static void seen_touch(gg_store *st, const char *queue)
{
    gg_qseen *q;

    if (!queue) {
        for (size_t i = 0; i < st->nseen; i++)
            st->seen[i].gen++;
        return;
    }
    q = seen_slot(st, queue, 0);
    if (q)
        q->gen++;
}

/* gg_store_hand_seen - the queues the batch's hand-off drained, as found
 * empty now: batches and their notifies run one at a time, so no commit
 * touched them since the one that drained them. */
void gg_store_hand_seen(gg_store *st, gg_hand *h)
{
    int64_t now = gg_mono_us();

    if (h->ndrained == 0)
        return;
    pthread_mutex_lock(&st->nmu);
    for (size_t i = 0; i < h->ndrained; i++) {
        gg_qseen *q = seen_slot(st, h->drained[i], 1);
        if (q) {
            q->empty_gen = q->gen;
            q->empty_until_us = now + GG_STORE_SEEN_US;
        }
    }
    pthread_mutex_unlock(&st->nmu);
}

/* gg_store_notify - after a commit that made messages ready: wake waiters,
 * then call the matching watchers with no store lock held. */
void gg_store_notify(gg_store *st, const gg_txn *t)
{
    gg_watch calls[GG_STORE_WATCH_MAX];
    size_t ncalls = 0;

    pthread_mutex_lock(&st->nmu);
    if (t->touched_overflow)
        seen_touch(st, NULL);
    else
        for (size_t i = 0; i < t->ntouched; i++)
            seen_touch(st, t->touched[i]);
    if (t->touched_overflow)
        wake_queue(st, NULL, UINT32_MAX);   /* lost count of which: wake everyone */
    else
        for (size_t i = 0; i < t->ntouched; i++)
            wake_queue(st, t->touched[i], t->added[i]);
    for (size_t w = 0; w < st->nwatch; w++) {
        int hit = t->touched_overflow;
        for (size_t i = 0; !hit && i < t->ntouched; i++)
            hit = strcmp(st->watch[w].queue, t->touched[i]) == 0;
        if (hit)
            calls[ncalls++] = st->watch[w];
    }
    if (ncalls)
        st->calling++;
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

/* waiter_enter - link w (for queue, and queue2 unless NULL; taker or
 * plain) into st->waiters. From then on a commit that makes a message of
 * its queues ready wakes it, so enter before looking at them. A taker's
 * lease_ms, max and out are set by the caller before (for a hand-off). */
static void waiter_enter(gg_store *st, gg_waiter *w, const char *queue, const char *queue2,
                         int taker)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    w->queue = queue;
    w->queue2 = queue2;
    w->taker = taker;
    w->woken = 0;
    w->sleeping = 0;
    w->pending = 0;
    w->got = 0;
    w->next = NULL;
    pthread_mutex_lock(&st->nmu);
    w->prev = st->waiters_tail;
    if (st->waiters_tail)
        st->waiters_tail->next = w;
    else
        st->waiters = w;
    st->waiters_tail = w;
    pthread_mutex_unlock(&st->nmu);
}

/* waiter_leave - unlink w; a taker's unused wake-up goes to the next
 * taker of its queue. */
static void waiter_leave(gg_store *st, gg_waiter *w)
{
    pthread_mutex_lock(&st->nmu);
    if (w->prev)
        w->prev->next = w->next;
    else
        st->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        st->waiters_tail = w->prev;
    if (w->taker && (w->woken & 1))
        wake_queue(st, w->queue, 1);
    if (w->taker && (w->woken & 2))
        wake_queue(st, w->queue2, 1);
    if (!st->waiters && atomic_load(&st->closing))
        pthread_cond_broadcast(&st->cond);   /* gg_store_waiters_close */
    pthread_mutex_unlock(&st->nmu);
    pthread_cond_destroy(&w->cond);
}

/* waiter_sleep - sleep until w is woken, the deadline passes or the
 * store closes, but while a hand-off holds w (pending) until it is done;
 * returns the wake-up bits (0 on the deadline or the close). A wake-up
 * for a look is used up; one that came with handed messages is left in
 * w->woken, for waiter_leave to pass on. */
static int waiter_sleep(gg_store *st, gg_waiter *w, const struct timespec *dl)
{
    int rc = 0, woken;

    pthread_mutex_lock(&st->nmu);
    w->sleeping = 1;
    for (;;) {
        if (w->pending)
            pthread_cond_wait(&w->cond, &st->nmu);
        else if (w->woken || rc != 0 || atomic_load(&st->closing))
            break;
        else
            rc = pthread_cond_timedwait(&w->cond, &st->nmu, dl);
    }
    w->sleeping = 0;
    woken = w->woken;
    w->woken = (woken & GG_WOKEN_HANDED) ? (woken & 3) : 0;
    pthread_mutex_unlock(&st->nmu);
    return woken;
}

/* gg_store_waiters_close - wake every waiter and wait until none is left. */
void gg_store_waiters_close(gg_store *st)
{
    pthread_mutex_lock(&st->nmu);
    for (gg_waiter *w = st->waiters; w; w = w->next)
        pthread_cond_signal(&w->cond);
    while (st->waiters)
        pthread_cond_wait(&st->cond, &st->nmu);
    pthread_mutex_unlock(&st->nmu);
}

void gg_store_wait(gg_store *st, const char *queue, int timeout_ms)
{
    struct timespec dl;
    gg_waiter w;

    if (!st || !gg_store_valid_name(queue) || timeout_ms <= 0)
        return;
    dl = gg_mono_deadline_ms(timeout_ms);
    memset(&w, 0, sizeof w);
    waiter_enter(st, &w, queue, NULL, 0);
    (void)waiter_sleep(st, &w, &dl);
    waiter_leave(st, &w);
}

/* take_one - gg_store_get (n NULL) or gg_store_get_many at queue, unless
 * a take found it empty lately with no commit to it since (GG_EEMPTY at
 * once); remembers when it finds it empty. */
static gg_err take_one(gg_store *st, const char *queue, int64_t lease_ms, size_t max,
                       gg_msg **out, size_t *n)
{
    int64_t now = gg_mono_us();
    uint64_t gen = 0;
    gg_qseen *q;
    gg_err err;

    pthread_mutex_lock(&st->nmu);
    q = seen_slot(st, queue, 1);
    if (q && q->empty_gen == q->gen && now < q->empty_until_us) {
        pthread_mutex_unlock(&st->nmu);
        if (n)
            *n = 0;
        return GG_EEMPTY;
    }
    if (q)
        gen = q->gen;
    pthread_mutex_unlock(&st->nmu);
    err = n != NULL ? gg_store_get_many(st, queue, lease_ms, max, out, n)
                    : gg_store_get(st, queue, lease_ms, out);
    if (err == GG_EEMPTY) {
        pthread_mutex_lock(&st->nmu);
        q = seen_slot(st, queue, 0);
        if (q && q->gen == gen) {   /* no commit to it since the look began */
            q->empty_gen = gen;
            q->empty_until_us = now + GG_STORE_SEEN_US;
        }
        pthread_mutex_unlock(&st->nmu);
    }
    return err;
}

/* take - one look at queue, and at second (n NULL only) if queue has
 * nothing ready. */
static gg_err take(gg_store *st, const char *queue, const char *second, int64_t lease_ms,
                   size_t max, gg_msg **out, size_t *n)
{
    gg_err err = take_one(st, queue, lease_ms, max, out, n);

    if (err == GG_EEMPTY && second && n == NULL)
        err = take_one(st, second, lease_ms, max, out, NULL);
    return err;
}

/* take_wait - look, and while the queues are empty sleep as a taker until
 * a commit makes a message of them ready (and looks again), hands it
 * messages (returned as they are), the deadline passes or the store
 * closes (GG_ECLOSED). */
static gg_err take_wait(gg_store *st, const char *queue, const char *second, int64_t lease_ms,
                        size_t max, int timeout_ms, gg_msg **out, size_t *n)
{
    struct timespec dl;
    gg_waiter w;
    gg_err err;
    int woken;

    if (timeout_ms <= 0)
        return take(st, queue, second, lease_ms, max, out, n);
    dl = gg_mono_deadline_ms(timeout_ms);
    memset(&w, 0, sizeof w);
    w.lease_ms = lease_ms;
    w.max = n ? max : 1;
    w.out = out;
    waiter_enter(st, &w, queue, second, 1);
    for (;;) {
        err = take(st, queue, second, lease_ms, max, out, n);
        if (err != GG_EEMPTY)
            break;
        woken = waiter_sleep(st, &w, &dl);
        if (woken & GG_WOKEN_HANDED) {
            if (n)
                *n = w.got;   /* out[0..got) are the caller's now */
            err = GG_OK;
            break;
        }
        if (atomic_load(&st->closing)) {
            err = GG_ECLOSED;
            break;
        }
        if (!woken)
            break;
    }
    waiter_leave(st, &w);
    return err;
}

gg_err gg_store_get_wait(gg_store *st, const char *queue, int64_t lease_ms, int timeout_ms,
                         gg_msg **out)
{
    if (!st || !gg_store_valid_name(queue) || lease_ms <= 0 || !out)
        return GG_EINVAL;
    return take_wait(st, queue, NULL, lease_ms, 1, timeout_ms, out, NULL);
}

/* gg_store_get_many_wait - gg_store_get_many, waiting for a put when empty. */
gg_err gg_store_get_many_wait(gg_store *st, const char *queue, int64_t lease_ms, size_t max,
                              int timeout_ms, gg_msg **out, size_t *n)
{
    if (n)
        *n = 0;
    if (!st || !gg_store_valid_name(queue) || lease_ms <= 0 || !out || !n || max == 0 ||
        max > GG_STORE_MANY_MAX)
        return GG_EINVAL;
    return take_wait(st, queue, NULL, lease_ms, max, timeout_ms, out, n);
}

gg_err gg_store_get_wait_first(gg_store *st, const char *first, const char *second,
                               int64_t lease_ms, int timeout_ms, gg_msg **out)
{
    if (!st || !gg_store_valid_name(first) || !gg_store_valid_name(second) || lease_ms <= 0 ||
        !out)
        return GG_EINVAL;
    return take_wait(st, first, second, lease_ms, 1, timeout_ms, out, NULL);
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
