/* commit.c - the channel's store calls, off the event loop.
 *
 * Three threads per channel, beside the loop thread (chan_int.h):
 *
 * committer - takes the inbound batches the loop queued (gg_commit_submit),
 *   in arrival order, merges those queued together (up to about
 *   GG_CHAN_MERGE_BYTES) into one gg_store_receive, i.e. one durable
 *   transaction that stores the messages and raises the mark, and hands the
 *   jobs back (done list, done_ev) with the mark now durable; the loop then
 *   sends ACK(mark). Items at or below the mark are left out (resends).
 *   When the store has no room (GG_EFULL, GG_ENOSPC, GG_EBUSY) it commits
 *   the longest prefix of n/2, n/4, ... 1 items that fits, reports that
 *   mark (a progress note: the loop ACKs it), and retries the rest after
 *   GG_CHAN_FULL_MIN_MS doubling to GG_CHAN_FULL_MAX_MS, waiting on a
 *   condition (no busy loop). Meanwhile the loop keeps reading until
 *   GG_CHAN_RX_JOBS batches or GG_CHAN_RX_BYTES bytes await commit, then
 *   stops reading: the memory held is bounded whatever the peer does. Any
 *   other store error is reported on the failing job; the loop closes the
 *   connection, and the committer drops that connection's later jobs (they
 *   must not be committed past a batch that was not).
 *
 *   Jobs belong to a connection (gen); only jobs of live_gen are
 *   committed. gg_commit_cancel (connection closed) drops queued jobs;
 *   gg_commit_open (next connection) first waits for a store call in
 *   progress to end, so the mark the new HELLO announces is final and no
 *   ACK on the new connection can exceed what was sent on it.
 *
 * deleter - the peer's ACK or HELLO marks say which xmit messages arrived;
 *   the loop only raises del_target (gg_commit_delete_upto). The deleter
 *   deletes up to the highest target, then waits GG_CHAN_DELETE_MS before
 *   the next delete, so acks arriving meanwhile cost one commit (and no
 *   wake-up: the loop signals the deleter only while it waits idle). Deleting
 *   late is safe: a new connection resumes after the peer's HELLO mark, so
 *   acknowledged messages are never resent; they only stay on xmit (depth)
 *   until deleted. On stop it deletes up to the last target first.
 *
 * reader - gg_store_browse for the loop (the store's lock is held across
 *   every commit and its fsync, so the loop must not read the store
 *   itself). It keeps a position (connection, id) and a result slot: it
 *   browses after the position when asked (rd_req), hands a non-empty
 *   result over (slot, read_ev) and moves the position past it, so the
 *   loop, whose cursor normally follows, never has to ask again. rd_req is
 *   raised by the loop moving the position (gg_read_seek), by the store's
 *   watcher on every commit to xmit (gg_read_kick: no hop through the
 *   loop), by the tick (the fallback), and by the reader itself when a
 *   result was cut at its bounds (read ahead). An empty browse is not
 *   handed over: the reader sleeps until rd_req. rd_req is cleared before
 *   each browse, so a commit the browse did not see raises it again: no
 *   wake-up is lost. One result at a time: with the slot full the reader
 *   waits for the loop to take it (gg_read_take).
 *
 * Lock order: qmu, then mu (the held counter), never the reverse; qmu is
 * never held across a store call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel/chan_int.h"
#include "core/clock.h"
#include "core/log.h"

static const char COMP[] = "channel";

void gg_rx_job_free(gg_rx_job *j)
{
    if (!j)
        return;
    free(j->items);
    free(j->frame);
    free(j);
}

/* free_list - free a list of jobs. */
static void free_list(gg_rx_job *j)
{
    while (j) {
        gg_rx_job *next = j->next;
        gg_rx_job_free(j);
        j = next;
    }
}

/* passed - whether the monotonic clock reached ts. */
static int passed(const struct timespec *ts)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > ts->tv_sec || (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

/* store_wait - a receive error that goes away by itself (queue limits,
 * disk full, busy): hold the batches and retry rather than drop the link. */
static int store_wait(gg_err e)
{
    return e == GG_EFULL || e == GG_ENOSPC || e == GG_EBUSY;
}

/* push_done - append j to the done list (qmu held). */
static void push_done(gg_channel *ch, gg_rx_job *j)
{
    j->next = NULL;
    if (ch->done_tail)
        ch->done_tail->next = j;
    else
        ch->done_head = j;
    ch->done_tail = j;
}

/* drop_dead - free the jobs of cur that no longer belong to the live
 * connection (qmu held); returns what is left. */
static gg_rx_job *drop_dead(gg_channel *ch, gg_rx_job *cur)
{
    gg_rx_job *keep = NULL, **tail = &keep;
    while (cur) {
        gg_rx_job *next = cur->next;
        if (cur->gen == ch->live_gen) {
            cur->next = NULL;
            *tail = cur;
            tail = &cur->next;
        } else {
            gg_rx_job_free(cur);
        }
        cur = next;
    }
    return keep;
}

/* take_jobs - unlink the first queued jobs, about GG_CHAN_MERGE_BYTES of
 * them (at least one), as a list (qmu held). */
static gg_rx_job *take_jobs(gg_channel *ch)
{
    gg_rx_job *first = ch->rx_head, *last = first;
    size_t bytes = first->total;
    while (last->next && bytes + last->next->total <= GG_CHAN_MERGE_BYTES) {
        last = last->next;
        bytes += last->total;
    }
    ch->rx_head = last->next;
    if (!ch->rx_head)
        ch->rx_tail = NULL;
    last->next = NULL;
    return first;
}

/* requeue - put the list cur back at the front of the queue (qmu held). */
static void requeue(gg_channel *ch, gg_rx_job *cur)
{
    if (!cur)
        return;
    gg_rx_job *last = cur;
    while (last->next)
        last = last->next;
    last->next = ch->rx_head;
    if (!ch->rx_head)
        ch->rx_tail = last;
    ch->rx_head = cur;
}

/* gather - the items of the jobs in cur above mark, strictly increasing,
 * into si and the job each came from into from (room for all of them);
 * each job's skipped count grows by what was left out. Returns the number
 * of items. */
static size_t gather(gg_rx_job *cur, int64_t mark, gg_store_item *si, gg_rx_job **from)
{
    size_t k = 0;
    int64_t top = mark;
    for (gg_rx_job *j = cur; j; j = j->next) {
        for (size_t i = 0; i < j->n; i++) {
            const gg_frame_item *it = &j->items[i];
            if (it->seq <= top) {
                j->skipped++;
                continue;
            }
            memset(&si[k], 0, sizeof si[k]);
            si[k].seq = it->seq;
            si[k].queue = it->dest;
            si[k].expiry_ms = it->expiry_ms;
            si[k].data = it->data;
            si[k].len = it->len;
            from[k] = j;
            top = it->seq;
            k++;
        }
    }
    return k;
}

/* commit_items - gg_store_receive the n items; when they do not fit, the
 * longest prefix of n/2, n/4, ... 1 items that does. *mark is the new mark
 * after any commit. */
static gg_err commit_items(gg_channel *ch, const gg_store_item *si, size_t n, int64_t *mark)
{
    gg_err e = gg_store_receive(ch->st, ch->peer_name, si, n, mark);
    for (size_t k = n / 2; store_wait(e) && k >= 1; k /= 2)
        e = gg_store_receive(ch->st, ch->peer_name, si, k, mark);
    return e;
}

/* job_top - the highest seq of j. */
static int64_t job_top(const gg_rx_job *j)
{
    return j->n ? j->items[j->n - 1].seq : 0;
}

/* note_progress - a progress note (no frame) telling the loop to ACK mark
 * for gen; skipped when out of memory (a later ACK covers it). */
static void note_progress(gg_channel *ch, uint64_t gen, int64_t mark)
{
    gg_rx_job *p = calloc(1, sizeof *p);
    if (!p)
        return;
    p->gen = gen;
    p->mark = mark;
    push_done(ch, p);
}

/* commit_once - one attempt at the jobs of cur (qmu not held). Returns
 * GG_OK when all are durable, a store_wait error when only a prefix (or
 * nothing) is, another error when the store refused. *mark gets the mark. */
static gg_err commit_once(gg_channel *ch, gg_rx_job *cur, int64_t *mark)
{
    size_t total = 0;
    for (gg_rx_job *j = cur; j; j = j->next)
        total += j->n;
    gg_store_item *si = calloc(total ? total : 1, sizeof *si);
    gg_rx_job **from = calloc(total ? total : 1, sizeof *from);
    gg_err e = GG_ENOMEM;
    if (!si || !from)
        goto out;
    size_t k = gather(cur, *mark, si, from);
    e = GG_OK;
    if (k > 0) {
        int64_t m = *mark;
        e = commit_items(ch, si, k, &m);
        if (e == GG_OK) {
            for (size_t i = 0; i < k && si[i].seq <= m; i++)
                from[i]->fresh++;
            *mark = m;
        }
        /* GG_OK after halving is a prefix: the caller compares seqs. */
        if (e == GG_OK && m < si[k - 1].seq)
            e = GG_EFULL;
    }
out:
    free(from);
    free(si);
    return e;
}

/* committer_main - the committer thread (see the file comment). */
static void *committer_main(void *arg)
{
    gg_channel *ch = arg;
    pthread_setname_np(pthread_self(), "gg-chan-commit");
    int full_ms = GG_CHAN_FULL_MIN_MS;
    pthread_mutex_lock(&ch->qmu);
    while (!ch->q_stop) {
        if (!ch->rx_head) {
            pthread_cond_wait(&ch->rx_cv, &ch->qmu);
            continue;
        }
        gg_rx_job *cur = drop_dead(ch, take_jobs(ch));
        if (!cur)
            continue; /* of a connection that ended */
        uint64_t gen = cur->gen;
        ch->rx_busy = 1;
        pthread_mutex_unlock(&ch->qmu);

        gg_err e = GG_OK;
        if (ch->rx_mark < 0)
            e = gg_store_mark(ch->st, ch->peer_name, &ch->rx_mark);
        int64_t mark = ch->rx_mark;
        if (e == GG_OK)
            e = commit_once(ch, cur, &mark);

        pthread_mutex_lock(&ch->qmu);
        ch->rx_busy = 0;
        pthread_cond_broadcast(&ch->idle_cv);
        int64_t before = ch->rx_mark;
        if (mark > before)
            ch->rx_mark = mark;
        cur = drop_dead(ch, cur);
        if (!cur)
            continue; /* the connection ended meanwhile */
        if (e == GG_OK) {
            for (gg_rx_job *j = cur, *next; j; j = next) {
                next = j->next;
                j->mark = mark;
                push_done(ch, j);
            }
            if (ch->rx_full) {
                ch->rx_full = 0;
                gg_info(COMP, "msg=\"held batch stored\" peer=%s", ch->peer_name);
            }
            full_ms = GG_CHAN_FULL_MIN_MS;
            event_active(ch->done_ev, EV_READ, 0);
            continue;
        }
        if (!store_wait(e)) {
            gg_error(COMP, "msg=\"cannot store batch\" first_seq=%lld err=%s",
                     (long long)(cur->n ? cur->items[0].seq : 0), gg_errname(e));
            cur->err = e;
            gg_rx_job *rest = cur->next;
            push_done(ch, cur);
            free_list(rest);
            ch->live_gen = 0; /* nothing of this connection past the failure */
            event_active(ch->done_ev, EV_READ, 0);
            continue;
        }
        /* Held: the jobs wholly durable are done, the rest waits for room. */
        while (cur && job_top(cur) <= mark) {
            gg_rx_job *next = cur->next;
            cur->mark = mark;
            push_done(ch, cur);
            cur = next;
        }
        if (mark > before)
            note_progress(ch, gen, mark);
        event_active(ch->done_ev, EV_READ, 0);
        if (!ch->rx_full) {
            ch->rx_full = 1;
            full_ms = GG_CHAN_FULL_MIN_MS;
            pthread_mutex_lock(&ch->mu);
            ch->stats.held++;
            pthread_mutex_unlock(&ch->mu);
            gg_warn(COMP, "msg=\"queue full, holding batch\" peer=%s first_seq=%lld err=%s",
                    ch->peer_name, (long long)(cur && cur->n ? cur->items[0].seq : 0),
                    gg_errname(e));
        }
        requeue(ch, cur);
        struct timespec until = gg_mono_deadline_ms(full_ms);
        while (!ch->q_stop && ch->live_gen == gen && !passed(&until))
            pthread_cond_timedwait(&ch->rx_cv, &ch->qmu, &until);
        if (full_ms < GG_CHAN_FULL_MAX_MS)
            full_ms = full_ms * 2 > GG_CHAN_FULL_MAX_MS ? GG_CHAN_FULL_MAX_MS : full_ms * 2;
    }
    pthread_mutex_unlock(&ch->qmu);
    return NULL;
}

/* batch_bytes - the data bytes of msgs. */
static size_t batch_bytes(gg_msg **msgs, size_t n)
{
    size_t b = 0;
    for (size_t i = 0; i < n; i++)
        b += msgs[i]->len;
    return b;
}

/* reader_main - the reader thread (see the file comment). */
static void *reader_main(void *arg)
{
    gg_channel *ch = arg;
    pthread_setname_np(pthread_self(), "gg-chan-read");
    pthread_mutex_lock(&ch->qmu);
    for (;;) {
        while (!ch->q_stop && !(ch->rd_req && ch->rd_gen && !ch->rd_done))
            pthread_cond_wait(&ch->rd_cv, &ch->qmu);
        if (ch->q_stop)
            break;
        uint64_t gen = ch->rd_gen;
        int64_t after = ch->rd_after;
        size_t max = ch->rd_max;
        ch->rd_req = 0;
        pthread_mutex_unlock(&ch->qmu);
        gg_msg **msgs = NULL;
        size_t n = 0;
        gg_err e = gg_store_browse(ch->st, GG_XMIT_QUEUE, after, max, GG_CHAN_BATCH_BYTES,
                                   &msgs, &n);
        if (e != GG_OK)
            n = 0;
        pthread_mutex_lock(&ch->qmu);
        pthread_mutex_lock(&ch->mu);
        ch->stats.xmit_reads++;
        pthread_mutex_unlock(&ch->mu);
        if (ch->rd_gen != gen || ch->rd_after != after || (e == GG_OK && n == 0)) {
            gg_msgs_free(msgs, n); /* moved meanwhile (rd_req is up), or nothing yet */
            continue;
        }
        ch->rd_res_gen = gen;
        ch->rd_res_after = after;
        ch->rd_msgs = n ? msgs : NULL;
        ch->rd_n = n;
        ch->rd_err = e;
        ch->rd_done = 1;
        if (n > 0) {
            ch->rd_after = msgs[n - 1]->id;
            if (n >= max || batch_bytes(msgs, n) >= GG_CHAN_BATCH_BYTES)
                ch->rd_req = 1; /* cut at the bounds: more is waiting */
        } else {
            gg_msgs_free(msgs, 0);
        }
        event_active(ch->read_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&ch->qmu);
    return NULL;
}

/* deleter_main - the deleter thread (see the file comment). */
static void *deleter_main(void *arg)
{
    gg_channel *ch = arg;
    pthread_setname_np(pthread_self(), "gg-chan-delete");
    pthread_mutex_lock(&ch->qmu);
    for (;;) {
        ch->del_idle = 1;
        while (!ch->q_stop && ch->del_target <= ch->del_done)
            pthread_cond_wait(&ch->del_cv, &ch->qmu);
        ch->del_idle = 0;
        if (ch->del_target <= ch->del_done)
            break; /* stopping, nothing left */
        int64_t upto = ch->del_target;
        int stopping = ch->q_stop;
        pthread_mutex_unlock(&ch->qmu);
        gg_err e = gg_store_delete_upto(ch->st, GG_XMIT_QUEUE, upto);
        if (e != GG_OK)
            gg_warn(COMP, "msg=\"cannot delete acknowledged messages\" upto=%lld err=%s",
                    (long long)upto, gg_errname(e));
        pthread_mutex_lock(&ch->qmu);
        if (e == GG_OK && upto > ch->del_done)
            ch->del_done = upto;
        if (stopping && e != GG_OK)
            break; /* the next start's HELLO deletes them */
        /* Coalesce: acks arriving meanwhile are one delete later (on a
         * failure, a retry later). */
        struct timespec until =
            gg_mono_deadline_ms(e == GG_OK ? GG_CHAN_DELETE_MS : GG_CHAN_FULL_MIN_MS);
        while (!ch->q_stop && !passed(&until))
            pthread_cond_timedwait(&ch->del_cv, &ch->qmu, &until);
    }
    pthread_mutex_unlock(&ch->qmu);
    return NULL;
}

gg_err gg_commit_init(gg_channel *ch)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return GG_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int bad = pthread_mutex_init(&ch->qmu, NULL) != 0;
    bad |= pthread_cond_init(&ch->rx_cv, &ca) != 0;
    bad |= pthread_cond_init(&ch->idle_cv, &ca) != 0;
    bad |= pthread_cond_init(&ch->del_cv, &ca) != 0;
    bad |= pthread_cond_init(&ch->rd_cv, &ca) != 0;
    pthread_condattr_destroy(&ca);
    if (bad)
        return GG_ENOMEM;
    ch->rx_mark = -1;
    ch->q_init = 1;
    return GG_OK;
}

gg_err gg_commit_start(gg_channel *ch)
{
    if (pthread_create(&ch->rx_thread, NULL, committer_main, ch) != 0)
        return GG_ENOMEM;
    ch->rx_started = 1;
    if (pthread_create(&ch->del_thread, NULL, deleter_main, ch) != 0)
        return GG_ENOMEM;
    ch->del_started = 1;
    if (pthread_create(&ch->rd_thread, NULL, reader_main, ch) != 0)
        return GG_ENOMEM;
    ch->rd_started = 1;
    return GG_OK;
}

void gg_commit_stop(gg_channel *ch)
{
    if (!ch->q_init)
        return;
    pthread_mutex_lock(&ch->qmu);
    ch->q_stop = 1;
    ch->live_gen = 0;
    pthread_cond_broadcast(&ch->rx_cv);
    pthread_cond_broadcast(&ch->del_cv);
    pthread_cond_broadcast(&ch->rd_cv);
    pthread_mutex_unlock(&ch->qmu);
    if (ch->rd_started)
        pthread_join(ch->rd_thread, NULL);
    if (ch->rx_started)
        pthread_join(ch->rx_thread, NULL);
    if (ch->del_started)
        pthread_join(ch->del_thread, NULL);
    ch->rx_started = ch->del_started = ch->rd_started = 0;
    gg_msgs_free(ch->rd_msgs, ch->rd_n);
    ch->rd_msgs = NULL;
    ch->rd_n = 0;
    free_list(ch->rx_head);
    free_list(ch->done_head);
    ch->rx_head = ch->rx_tail = ch->done_head = ch->done_tail = NULL;
    pthread_cond_destroy(&ch->rx_cv);
    pthread_cond_destroy(&ch->idle_cv);
    pthread_cond_destroy(&ch->del_cv);
    pthread_cond_destroy(&ch->rd_cv);
    pthread_mutex_destroy(&ch->qmu);
    ch->q_init = 0;
}

void gg_commit_open(gg_channel *ch, uint64_t gen)
{
    pthread_mutex_lock(&ch->qmu);
    while (ch->rx_busy)
        pthread_cond_wait(&ch->idle_cv, &ch->qmu);
    ch->live_gen = gen;
    pthread_mutex_unlock(&ch->qmu);
}

void gg_commit_cancel(gg_channel *ch, uint64_t gen)
{
    gg_rx_job *drop = NULL;
    pthread_mutex_lock(&ch->qmu);
    if (ch->live_gen == gen) {
        ch->live_gen = 0;
        drop = ch->rx_head;
        ch->rx_head = ch->rx_tail = NULL;
        pthread_cond_broadcast(&ch->rx_cv); /* ends a wait for room */
    }
    pthread_mutex_unlock(&ch->qmu);
    free_list(drop);
}

void gg_commit_submit(gg_channel *ch, gg_rx_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&ch->qmu);
    if (ch->rx_tail)
        ch->rx_tail->next = job;
    else
        ch->rx_head = job;
    ch->rx_tail = job;
    pthread_cond_signal(&ch->rx_cv);
    pthread_mutex_unlock(&ch->qmu);
}

gg_rx_job *gg_commit_take_done(gg_channel *ch)
{
    pthread_mutex_lock(&ch->qmu);
    gg_rx_job *list = ch->done_head;
    ch->done_head = ch->done_tail = NULL;
    pthread_mutex_unlock(&ch->qmu);
    return list;
}

void gg_commit_delete_upto(gg_channel *ch, int64_t mark)
{
    pthread_mutex_lock(&ch->qmu);
    if (mark > ch->del_target) {
        ch->del_target = mark;
        if (ch->del_idle) /* a coalescing deleter looks at the target itself */
            pthread_cond_signal(&ch->del_cv);
    }
    pthread_mutex_unlock(&ch->qmu);
}

void gg_read_seek(gg_channel *ch, uint64_t gen, int64_t after, size_t max)
{
    pthread_mutex_lock(&ch->qmu);
    if (ch->rd_gen != gen || ch->rd_after != after || ch->rd_max != max) {
        ch->rd_gen = gen;
        ch->rd_after = after;
        ch->rd_max = max;
        ch->rd_req = 1;
        pthread_cond_signal(&ch->rd_cv);
    }
    pthread_mutex_unlock(&ch->qmu);
}

void gg_read_kick(gg_channel *ch)
{
    pthread_mutex_lock(&ch->qmu);
    if (ch->rd_gen && !ch->rd_req) {
        ch->rd_req = 1;
        pthread_cond_signal(&ch->rd_cv);
    }
    pthread_mutex_unlock(&ch->qmu);
}

void gg_read_reset(gg_channel *ch, uint64_t gen)
{
    gg_msg **msgs = NULL;
    size_t n = 0;
    pthread_mutex_lock(&ch->qmu);
    if (ch->rd_gen == gen) {
        ch->rd_gen = 0;
        ch->rd_req = 0;
    }
    if (ch->rd_done && ch->rd_res_gen == gen) {
        msgs = ch->rd_msgs;
        n = ch->rd_n;
        ch->rd_msgs = NULL;
        ch->rd_n = 0;
        ch->rd_done = 0;
        pthread_cond_signal(&ch->rd_cv);
    }
    pthread_mutex_unlock(&ch->qmu);
    gg_msgs_free(msgs, n);
}

int gg_read_take(gg_channel *ch, uint64_t *gen, int64_t *after, gg_msg ***msgs, size_t *n,
                 gg_err *err)
{
    pthread_mutex_lock(&ch->qmu);
    int done = ch->rd_done;
    if (done) {
        *gen = ch->rd_res_gen;
        *after = ch->rd_res_after;
        *msgs = ch->rd_msgs;
        *n = ch->rd_n;
        *err = ch->rd_err;
        ch->rd_msgs = NULL;
        ch->rd_n = 0;
        ch->rd_done = 0;
        if (ch->rd_req) /* the reader waits for the slot */
            pthread_cond_signal(&ch->rd_cv);
    }
    pthread_mutex_unlock(&ch->qmu);
    return done;
}
