/* handoff.c - direct hand-off: a commit that makes messages ready leases
 * them to the takers blocked on their queues inside its own transaction,
 * so that a taker returns with its message(s) without a store call.
 *
 * The runner (commit.c) adds one op to the end of every batch,
 * gg_store_hand_op. It looks at the queues the batch's ops that succeeded
 * made messages ready on; if takers sleep on them
 * (gg_store_get_wait, _get_many_wait, _get_wait_first: notify.c), it
 * reserves them, oldest first, at most one per message made ready on a
 * queue, and leases each its messages with the get's own code
 * (gg_store_take_locked: run-out leases taken back, then priority and id
 * order, expired ones removed; a get_wait_first taker from its first queue
 * first) into the taker's out array, with the taker's lease_ms and max.
 * A reserved taker sleeps on, past its deadline, until the batch is over.
 * After the batch, gg_store_hand_finish either gives each taker its
 * messages and wakes it (the COMMIT succeeded) or frees them (the COMMIT
 * or the hand-off failed, or the batch was redone and the op ran again):
 * a handed lease is never seen by a taker unless its COMMIT succeeded.
 * The batch's callers learn "done" only after the same COMMIT.
 * The op runs as any op: re-runnable (it starts by dropping what an
 * earlier run of it leased), and a failure that changed rows makes the
 * batch run again under savepoints, where it is undone alone. A batch
 * that makes messages ready is fsynced anyway, so hand-offs add no fsync.
 * Lock order: the op takes nmu under mu (nobody takes mu under nmu).
 * No hand-off once the store is closing.
 */
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"

/* drop - free the messages leased to the reserved takers (an earlier run
 * of the op, or a failure), keeping the reservations. Under mu, or after
 * the batch while they are still reserved (no one else touches them). */
static void drop(gg_hand *h)
{
    for (size_t i = 0; i < h->nw; i++) {
        gg_waiter *w = h->w[i];
        for (size_t k = 0; k < w->got; k++) {
            gg_msg_free(w->out[k]);
            w->out[k] = NULL;
        }
        w->got = 0;
    }
}

/* ready_union - the queues the ops of the open transaction made messages
 * ready on, with how many (the ops from h->first that succeeded, up to
 * the hand-off's own req: an op that failed is out, and so is each op
 * failed with an earlier transaction). */
static void ready_union(const gg_hand *h, gg_txn *u)
{
    memset(u, 0, sizeof *u);
    for (const gg_req *r = h->first; r && !r->pseudo; r = r->next) {
        if (r->err != GG_OK)
            continue;
        gg_txn_merge(u, &r->t);
    }
}

/* reserve - reserve the sleeping takers of the queues in u, oldest first,
 * at most u->added[i] for queue i (each taker takes at least one). Under
 * mu; takes nmu. */
static void reserve(gg_store *st, gg_hand *h, gg_txn *u)
{
    pthread_mutex_lock(&st->nmu);
    for (gg_waiter *w = st->waiters; w && h->nw < GG_STORE_HAND_MAX; w = w->next) {
        int i;

        if (!w->taker || !w->sleeping || w->woken || w->pending)
            continue;
        i = gg_txn_find(u, w->queue);
        if (i < 0 || u->added[i] == 0)
            i = gg_txn_find(u, w->queue2);
        if (i < 0 || u->added[i] == 0)
            continue;
        u->added[i]--;
        w->pending = 1;
        w->got = 0;
        h->w[h->nw++] = w;
    }
    pthread_mutex_unlock(&st->nmu);
}

/* note_drained - queue had nothing more ready for a take of the hand-off. */
static void note_drained(gg_hand *h, const char *queue)
{
    for (size_t i = 0; i < h->ndrained; i++)
        if (strcmp(h->drained[i], queue) == 0)
            return;
    if (h->ndrained < GG_STORE_TOUCH_MAX)
        snprintf(h->drained[h->ndrained++], GG_QUEUE_NAME_MAX, "%s", queue);
}

/* serve - lease each reserved taker its messages: its first queue, then
 * its second when the first has none; a queue found drained is not looked
 * at again. Under mu. */
static gg_err serve(gg_store *st, gg_txn *t, gg_hand *h, gg_txn *u)
{
    int drained[GG_STORE_TOUCH_MAX] = { 0 };

    for (size_t k = 0; k < h->nw; k++) {
        gg_waiter *w = h->w[k];
        const char *q[2] = { w->queue, w->queue2 };

        for (int j = 0; j < 2 && q[j] && w->got == 0; j++) {
            int i = gg_txn_find(u, q[j]);
            gg_err err;

            if (i >= 0 && drained[i])
                continue;
            err = gg_store_take_locked(st, t, q[j], w->lease_ms, w->max, w->out, &w->got);
            if (err != GG_OK)
                return err;
            if (w->got < w->max) {
                note_drained(h, q[j]);
                if (i >= 0)
                    drained[i] = 1;
            }
        }
        t->c.handoffs += (int64_t)w->got;
    }
    return GG_OK;
}

/* note_full_takes - a queue whose last take got all it wanted may still
 * hold ready messages: one row read tells whether it was drained. */
static gg_err note_full_takes(gg_store *st, gg_hand *h)
{
    for (size_t k = 0; k < h->nw; k++) {
        gg_waiter *w = h->w[k];
        const char *q = w->got > 0 && w->got == w->max ? w->out[0]->queue : NULL;
        int any = 1, seen = 0;
        gg_err err;

        for (size_t i = 0; q && i < h->ndrained && !seen; i++)
            seen = strcmp(h->drained[i], q) == 0;
        if (!q || seen)
            continue;
        err = gg_store_any_ready(st, q, &any);
        if (err != GG_OK)
            return err;
        if (!any)
            note_drained(h, q);
    }
    return GG_OK;
}

/* gg_store_hand_op - lease the messages the batch made ready to its
 * blocked takers. Run again (a redone batch), it serves the takers it
 * reserved the first time, and no others. On an error nothing stays
 * leased to anyone (the runner undoes the rows). */
gg_err gg_store_hand_op(gg_store *st, gg_txn *t, void *arg)
{
    gg_hand *h = arg;
    gg_txn u;
    gg_err err;

    drop(h);   /* a redone batch runs the op again */
    h->ndrained = 0;
    t->lease_only = 1;
    if (atomic_load(&st->closing))
        return GG_OK;
    ready_union(h, &u);
    if (u.touched_overflow)
        return GG_OK;   /* lost count of which queues: the wake-ups do it */
    if (h->nw == 0 && u.ntouched > 0)
        reserve(st, h, &u);
    if (h->nw == 0)
        return GG_OK;
    err = serve(st, t, h, &u);
    if (err == GG_OK)
        err = note_full_takes(st, h);
    if (err != GG_OK) {
        drop(h);
        t->c.handoffs = 0;
    }
    return err;
}

/* gg_store_hand_finish - deliver (committed) or free the handed messages,
 * and release every reserved taker. */
void gg_store_hand_finish(gg_store *st, gg_hand *h, int committed, gg_txn *all)
{
    if (!committed)
        h->ndrained = 0;   /* what it saw was rolled back */
    if (h->nw == 0)
        return;
    if (!committed)
        drop(h);
    pthread_mutex_lock(&st->nmu);
    for (size_t k = 0; k < h->nw; k++) {
        gg_waiter *w = h->w[k];

        if (w->got > 0) {
            /* Served: no longer waiting for a message; its messages are
             * no longer ready for anyone that the commit would wake. */
            for (size_t m = 0; m < w->got; m++) {
                int i = gg_txn_find(all, w->out[m]->queue);
                if (i >= 0 && all->added[i] > 0)
                    all->added[i]--;
            }
            w->woken |= GG_WOKEN_HANDED;
            st->wakeups++;
        }
        w->pending = 0;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&st->nmu);
    h->nw = 0;
}
