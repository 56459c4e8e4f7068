/* commit.c - group commit: many callers, one transaction, one fsync.
 *
 * gg_store_run queues the caller's op (a gg_req on its stack) and waits.
 * The store's writer thread takes every queued op (up to
 * GG_STORE_BATCH_MAX), and under the store mutex runs BEGIN IMMEDIATE,
 * each op in turn, then one COMMIT, the one fsync that makes the whole
 * batch durable. Ops run without savepoints: an op that fails before
 * changing a row (sqlite3_total_changes64 unchanged) needs no undo, one
 * that fails after changing rows as first of its transaction is undone by
 * rolling the transaction back, and otherwise the transaction is rolled
 * back and the batch run again with each op under its own SAVEPOINT (an
 * op that fails is rolled back alone and gets its own error). Just
 * before the COMMIT, what the ops kept in memory (queue_stats deltas, the
 * highest id given: gg_kept_*, schema.c) is written into the transaction;
 * under savepoints each op writes its own before its RELEASE, and a
 * rollback forgets it. Only then
 * are the counters of the ops that succeeded applied, the waiters of the
 * queues they filled woken, and every caller of the batch told its result
 * (the writer wakes the first; each caller wakes two more, a tree, so the
 * writer goes back to work). While one batch commits the next one
 * gathers, so the busier the store, the bigger the batches. A failed
 * COMMIT fails every op of its batch: nothing is reported done that is
 * not durable. A batch whose successful ops only leased messages commits
 * without an fsync (the VFS skips the WAL sync for that COMMIT), and
 * checkpoints run after the COMMIT, never inside it (docs/store.md,
 * lease-only commits): once the callers of that COMMIT are woken, with
 * the vacuum steps (housekeep). (A writer thread rather than leader/follower:
 * handing leadership from thread to thread cost more than a commit on 2
 * cores.) When nobody is committing and nothing is queued, a caller runs
 * its own op at once (the busy flag keeps the writer out meanwhile), so a
 * lone caller pays one fsync and no thread switch. Each batch ends with
 * one more op, the hand-off (handoff.c): it leases the messages the batch
 * made ready to the takers blocked on their queues, and they get them
 * once the COMMIT succeeded (gg_store_hand_finish, before the wake-ups).
 *
 * Storage faults (GG_EIO, GG_ENOSPC from SQLite) are counted and logged as
 * an alarm once per episode; the next commit that succeeds ends the
 * episode (logged), with no restart. Space: every GG_STORE_VACUUM_EVERY
 * commits the committer checks the free pages, and once there are
 * GG_STORE_VACUUM_PAGES of them and they are more than
 * 1/GG_STORE_VACUUM_SHARE of the file, gives GG_STORE_VACUUM_STEP of them
 * back with an incremental vacuum after each commit until they are not.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "store/store_int.h"

const int64_t gg_store_lat_bounds_us[GG_STORE_LAT_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 5000000,
};

/* is_storage - err is a storage fault (not a caller's or a limit's error). */
static int is_storage(gg_err err)
{
    return err == GG_EIO || err == GG_ENOSPC;
}

/* gg_store_fault - count a storage fault; alarm once per episode. Under mu. */
void gg_store_fault(gg_store *st, const char *op, gg_err err)
{
    st->faults++;
    if (!st->faulted)
        gg_error("store", "msg=\"storage fault, failing closed\" alarm=storage_fault op=%s "
                 "err=%s path=%s", op, gg_errname(err), st->path);
    st->faulted = 1;
}

/* note_ok - a commit succeeded: end a fault episode. Under mu. */
static void note_ok(gg_store *st, int64_t dur_us)
{
    size_t b = 0;

    if (st->faulted)
        gg_info("store", "msg=\"storage recovered\" path=%s faults=%lld", st->path,
                (long long)st->faults);
    st->faulted = 0;
    while (b < GG_STORE_LAT_BUCKETS && dur_us > gg_store_lat_bounds_us[b])
        b++;
    st->lat_count[b]++;
    st->lat_sum_s += (double)dur_us / 1e6;
}

/* step_sp - run one savepoint statement; SQLITE_OK or the error. */
static int step_sp(gg_store *st, enum gg_stmt id)
{
    return gg_sql_done(gg_sql_prep(st, id));
}

/* fail_range - give err to the ops of the batch from first to (excluding)
 * stop that had succeeded so far (their transaction is gone). */
static void fail_range(gg_req *first, gg_req *stop, gg_err err)
{
    for (gg_req *r = first; r != stop; r = r->next)
        if (r->err == GG_OK)
            r->err = err;
}

/* begin_txn - BEGIN IMMEDIATE, with nothing kept yet; the gg_err. */
static gg_err begin_txn(gg_store *st, const char *op)
{
    int rc = gg_sql_done(gg_sql_prep(st, S_BEGIN));

    gg_kept_reset(st);
    return rc == SQLITE_OK ? GG_OK : gg_store_sql_err(st, op, rc);
}

/* rollback_txn - ROLLBACK the open transaction, if any (logged on failure). */
static void rollback_txn(gg_store *st)
{
    if (!sqlite3_get_autocommit(st->db)) {
        int rc = gg_sql_done(gg_sql_prep(st, S_ROLLBACK));
        if (rc != SQLITE_OK)
            gg_store_sql_err(st, "rollback", rc);
    }
}

/* in_writer - set in the writer thread: its commits are the contended
 * ones, whose next callers are already queued. */
static _Thread_local int in_writer;

/* gg_store_wal_hook - after a commit: from GG_STORE_WAL_PAGES frames the
 * checkpoint thread is asked (again every quarter of that), from
 * GG_STORE_WAL_CATCHUP the committer (ckpt.c). A lone caller's commit has
 * nobody queued behind it, so it checkpoints itself, as it did before the
 * thread: a checkpoint beside a stream of lone commits only competes with
 * their fsyncs for the disk (single-put p99 445-475 us with it inline,
 * 670-700 us beside it, in bench/store). Under mu. */
int gg_store_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    gg_store *st = arg;

    (void)db;
    (void)name;
    st->wal_frames = pages;
    if (pages < GG_STORE_WAL_PAGES) {
        st->ckpt_asked_at = 0;
    } else if (pages >= GG_STORE_WAL_CATCHUP || !st->ckpt_started || !in_writer) {
        atomic_store(&st->ckpt_due, 1);
    } else if (pages - st->ckpt_asked_at >= GG_STORE_WAL_PAGES / 4) {
        st->ckpt_asked_at = pages;
        gg_store_ckpt_ask(st);
    }
    return SQLITE_OK;
}

/* checkpoint - run the checkpoint the WAL hook asked the committer for:
 * passive, as the auto-checkpoint would, when there is no checkpoint
 * thread; else none while the thread's runs, until GG_STORE_WAL_HARD
 * frames (a later commit asks again), then a RESTART (ckpt.c). Its
 * failure fails no op: their commit is already durable; it is logged and
 * counted as a storage fault. Under mu. */
static void checkpoint(gg_store *st)
{
    int rc;

    if (!atomic_exchange(&st->ckpt_due, 0))
        return;
    if (!st->ckpt_started) {
        rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (atomic_load(&st->ckpt_running) && st->wal_frames < GG_STORE_WAL_HARD) {
        return;   /* the thread is at it; a later commit asks again (ckpt.c) */
    } else {
        /* RESTART, so that the next transaction starts the WAL over even
         * if the thread's connection was reading it just now. */
        gg_store_ckpt_pause(st);
        rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
        gg_store_ckpt_resume(st);
    }
    if (rc == SQLITE_OK)
        atomic_fetch_add(&st->checkpoints, 1);
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY) {
        gg_err err = gg_store_sql_err(st, "checkpoint", rc);
        if (is_storage(err))
            gg_store_fault(st, "checkpoint", err);
    }
}

/* needs_sync - 1 unless every op of the transaction (first to stop) that
 * succeeded only leased messages (gg_txn.lease_only): those commits need
 * no fsync (docs/store.md, loss windows). */
static int needs_sync(gg_req *first, gg_req *stop)
{
    for (gg_req *r = first; r != stop; r = r->next)
        if (r->err == GG_OK && !r->t.lease_only)
            return 1;
    return 0;
}

/* run_batch - run the ops from first to stop in one transaction and commit
 * it. Sets each op's err. Under mu. With use_sp each op runs under its own
 * savepoint. Without (the fast path), an op that fails before changing
 * anything needs no undo, and one that fails after changing rows while
 * first of its transaction is undone by rolling that transaction back;
 * otherwise the transaction is rolled back, nothing is committed and
 * *redo is set: the caller runs the batch again with savepoints. Returns
 * 1 if anything committed. */
static int run_batch(gg_store *st, gg_req *first, gg_req *stop, int use_sp, int *redo)
{
    gg_req *txn_first = first;
    int64_t t0 = gg_mono_us();
    gg_err err = begin_txn(st, first->op);
    int rc, any = 0, sync;

    if (err != GG_OK) {
        for (gg_req *r = first; r != stop; r = r->next)
            r->err = err;
        if (is_storage(err))
            gg_store_fault(st, first->op, err);
        return 0;
    }
    for (gg_req *r = first; r != stop; r = r->next) {
        int64_t changes;

        if (sqlite3_get_autocommit(st->db)) {
            /* An op's error ended the transaction: start another one. */
            err = begin_txn(st, r->op);
            if (err != GG_OK) {
                for (gg_req *q = r; q != stop; q = q->next)
                    q->err = err;
                if (is_storage(err))
                    gg_store_fault(st, r->op, err);
                return any;
            }
            txn_first = r;
        }
        if (use_sp) {
            rc = step_sp(st, S_SAVEPOINT);
            if (rc != SQLITE_OK) {
                r->err = gg_store_sql_err(st, r->op, rc);
                continue;
            }
        }
        changes = sqlite3_total_changes64(st->db);
        r->err = r->fn(st, &r->t, r->arg);
        if (r->err == GG_OK && use_sp) {
            /* What the op kept goes under its own savepoint. */
            r->err = gg_kept_flush(st);
            if (r->err == GG_OK) {
                rc = step_sp(st, S_SP_RELEASE);
                if (rc != SQLITE_OK)
                    r->err = gg_store_sql_err(st, r->op, rc);
            }
            if (r->err == GG_OK)
                continue;
        }
        if (r->err == GG_OK)
            continue;
        if (is_storage(r->err))
            gg_store_fault(st, r->op, r->err);
        if (sqlite3_get_autocommit(st->db)) {
            fail_range(txn_first, r, r->err);
            continue;
        }
        if (!use_sp) {
            /* A failed statement undoes itself; only earlier rows of this op
             * (counted by total_changes) need undoing. */
            if (sqlite3_total_changes64(st->db) == changes)
                continue;
            rollback_txn(st);
            if (r == txn_first && sqlite3_get_autocommit(st->db))
                continue;
            /* Behind others (or the rollback failed: the redo's BEGIN then
             * fails every op, closed). */
            *redo = 1;
            return any;
        }
        gg_kept_reset(st);   /* the op's kept values went with it */
        rc = step_sp(st, S_SP_ROLLBACK);
        if (rc == SQLITE_OK)
            rc = step_sp(st, S_SP_RELEASE);
        if (rc != SQLITE_OK) {
            gg_store_sql_err(st, "rollback", rc);
            /* Cannot tell what is left: drop the whole transaction. */
            fail_range(txn_first, r, GG_EIO);
            rollback_txn(st);
        }
    }
    if (sqlite3_get_autocommit(st->db))
        return any;
    err = gg_store_side_before_commit(st);
    if (err == GG_OK)
        err = gg_kept_flush(st);
    if (err == GG_OK) {
        sync = needs_sync(txn_first, stop) || st->opts.durability != GG_DURABLE_FULL;
        gg_store_vfs_skip_wal_sync(!sync);
        rc = gg_sql_done(gg_sql_prep(st, S_COMMIT));
        gg_store_vfs_skip_wal_sync(0);
        if (rc != SQLITE_OK)
            err = gg_store_sql_err(st, "commit", rc);
    }
    if (err != GG_OK) {
        fail_range(txn_first, stop, err);
        if (is_storage(err))
            gg_store_fault(st, "commit", err);
        rollback_txn(st);
        return any;
    }
    st->commits++;
    if (sync && st->opts.durability == GG_DURABLE_FULL)
        st->syncs++;
    note_ok(st, gg_mono_us() - t0);
    return 1;
}

/* apply - after the batch: counters of the ops that succeeded, and the
 * union of the queues they filled into *all. Under mu. */
static void apply(gg_store *st, gg_req *first, gg_req *stop, gg_txn *all)
{
    for (gg_req *r = first; r != stop; r = r->next) {
        if (r->err != GG_OK)
            continue;
        st->batched += !r->pseudo;
        st->counts.handoffs += r->t.c.handoffs;
        st->counts.puts += r->t.c.puts;
        st->counts.gets += r->t.c.gets;
        st->counts.acks += r->t.c.acks;
        st->counts.backouts += r->t.c.backouts;
        st->counts.expired += r->t.c.expired;
        st->counts.dead += r->t.c.dead;
        st->counts.dropped += r->t.c.dropped;
        gg_txn_merge(all, &r->t);
    }
}

/* check_reclaim - now and then (every commit while reclaiming), see if
 * free pages are due to go back; sets reclaim_due. Under mu, no txn. */
static void check_reclaim(gg_store *st)
{
    sqlite3_stmt *s;
    int64_t free_pages = 0, pages = 0;

    if (!st->reclaiming && st->commits % GG_STORE_VACUUM_EVERY != 0)
        return;
    s = gg_sql_prep(st, S_FREELIST);
    if (sqlite3_step(s) == SQLITE_ROW) {
        free_pages = sqlite3_column_int64(s, 0);
        pages = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    st->reclaiming = free_pages >= GG_STORE_VACUUM_PAGES &&
                     free_pages * GG_STORE_VACUUM_SHARE >= pages;
    if (st->reclaiming)
        atomic_store(&st->reclaim_due, 1);
}

/* reclaim_step - give GG_STORE_VACUUM_STEP free pages back, in a small
 * transaction of its own. Under mu, no txn. */
static void reclaim_step(gg_store *st)
{
    char sql[64];
    int rc;

    snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%d)", GG_STORE_VACUUM_STEP);
    rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        gg_store_sql_err(st, "reclaim", rc);
        st->reclaiming = 0;   /* tried again at the next check */
        return;
    }
    st->reclaims++;
    gg_debug("store", "msg=\"reclaimed\" pages=%d", GG_STORE_VACUUM_STEP);
}

/* exec_batch - run the ops from first to stop as one batch, with the
 * hand-off to blocked takers as its last op (handoff.c): commit, counters,
 * then the hand-off's takers and the wake-ups with no store lock held.
 * Called by whoever holds the busy flag, without gmu. */
static void exec_batch(gg_store *st, gg_req *first, gg_req *stop)
{
    gg_txn all;
    gg_hand h;
    gg_req hand, *last = first;
    int redo = 0;

    memset(&all, 0, sizeof all);
    memset(&hand, 0, sizeof hand);
    h.first = first;
    h.nw = 0;
    h.ndrained = 0;
    hand.op = "handoff";
    hand.fn = gg_store_hand_op;
    hand.arg = &h;
    hand.pseudo = 1;
    while (last->next != stop)
        last = last->next;
    hand.next = stop;
    last->next = &hand;   /* this batch's own list: nobody else links to last */
    pthread_mutex_lock(&st->mu);
    run_batch(st, first, stop, 0, &redo);
    if (redo) {
        /* An op failed half-way behind others: again, each op under a
         * savepoint (ops start from their arguments, so may run twice). */
        for (gg_req *r = first; r != stop; r = r->next) {
            memset(&r->t, 0, sizeof r->t);
            r->err = GG_OK;
        }
        st->redos++;
        run_batch(st, first, stop, 1, &redo);
    }
    apply(st, first, stop, &all);
    check_reclaim(st);
    pthread_mutex_unlock(&st->mu);
    last->next = stop;
    gg_store_hand_finish(st, &h, hand.err == GG_OK, &all);
    if (all.ntouched || all.touched_overflow)
        gg_store_notify(st, &all);
    gg_store_hand_seen(st, &h);
}

/* housekeep_due - a checkpoint or a vacuum step waits for the committer. */
static int housekeep_due(gg_store *st)
{
    return atomic_load(&st->ckpt_due) || atomic_load(&st->reclaim_due);
}

/* housekeep - run the checkpoint and the vacuum step that are due, as the
 * committer (busy keeps lone callers out meanwhile), once the callers of
 * the batch that made them due are woken: only later calls wait for them,
 * gathering into the next batch. Called and returns with gmu held. */
static void housekeep(gg_store *st)
{
    st->busy = 1;
    pthread_mutex_unlock(&st->gmu);
    pthread_mutex_lock(&st->mu);
    checkpoint(st);
    if (atomic_exchange(&st->reclaim_due, 0))
        reclaim_step(st);
    pthread_mutex_unlock(&st->mu);
    pthread_mutex_lock(&st->gmu);
    st->busy = 0;
}

/* writer_main - the writer thread: take the queued ops, commit them as
 * one batch, tell their callers; again until told to stop with nothing
 * left queued. It waits while a lone caller runs its own op (busy). A
 * checkpoint or vacuum step that is due runs once the batch's callers are
 * woken (a lone caller runs it after its own op). */
static void *writer_main(void *arg)
{
    gg_store *st = arg;

    in_writer = 1;
    pthread_mutex_lock(&st->gmu);
    for (;;) {
        gg_req *first, *stop, *r, *batch[GG_STORE_BATCH_MAX];
        size_t n = 0;

        while ((!st->head || st->busy) && !(st->stopping && !st->busy && !st->head))
            pthread_cond_wait(&st->wcond, &st->gmu);
        if (!st->head)
            break;
        st->busy = 1;
        first = st->head;
        for (stop = first; stop && n < GG_STORE_BATCH_MAX; stop = stop->next)
            n++;
        st->head = stop;
        if (!stop)
            st->tail = NULL;
        pthread_mutex_unlock(&st->gmu);

        exec_batch(st, first, stop);

        pthread_mutex_lock(&st->gmu);
        st->busy = 0;
        n = 0;
        for (r = first; r != stop; r = r->next)
            batch[n++] = r;
        for (size_t i = 0; i < n; i++) {
            batch[i]->wake[0] = 2 * i + 1 < n ? batch[2 * i + 1] : NULL;
            batch[i]->wake[1] = 2 * i + 2 < n ? batch[2 * i + 2] : NULL;
        }
        first->done = 1;
        pthread_cond_signal(&first->cond);
        if (housekeep_due(st))
            housekeep(st);   /* its callers are on their way: only later ones wait */
    }
    pthread_mutex_unlock(&st->gmu);
    return NULL;
}

/* gg_store_writer_start - start the writer thread. */
gg_err gg_store_writer_start(gg_store *st)
{
    pthread_cond_init(&st->wcond, NULL);
    if (pthread_create(&st->writer, NULL, writer_main, st) != 0) {
        pthread_cond_destroy(&st->wcond);
        gg_error("store", "msg=\"cannot start the writer thread\"");
        return GG_ENOMEM;
    }
    st->writer_started = 1;
    return GG_OK;
}

/* gg_store_writer_stop - commit what is queued, then join the writer. */
void gg_store_writer_stop(gg_store *st)
{
    if (!st->writer_started)
        return;
    pthread_mutex_lock(&st->gmu);
    st->stopping = 1;
    pthread_cond_signal(&st->wcond);
    pthread_mutex_unlock(&st->gmu);
    pthread_join(st->writer, NULL);
    pthread_cond_destroy(&st->wcond);
    st->writer_started = 0;
}

/* gg_store_run - queue an op for the next commit and wait for it. */
gg_err gg_store_run(gg_store *st, const char *op, gg_txn_fn fn, void *arg)
{
    gg_req me;

    memset(&me, 0, sizeof me);
    me.op = op;
    me.fn = fn;
    me.arg = arg;
    pthread_cond_init(&me.cond, NULL);
    pthread_mutex_lock(&st->gmu);
    if (st->stopping) {
        pthread_mutex_unlock(&st->gmu);
        pthread_cond_destroy(&me.cond);
        return GG_ECLOSED;
    }
    if (!st->busy && !st->head) {
        /* Nobody is committing: run our op ourselves, a batch of one,
         * and spare the two thread switches of a hand-over. */
        st->busy = 1;
        pthread_mutex_unlock(&st->gmu);
        exec_batch(st, &me, NULL);
        pthread_mutex_lock(&st->gmu);
        st->busy = 0;
        if (housekeep_due(st))
            housekeep(st);   /* after our own commit: only we waited for it */
        if (st->head || st->stopping)
            pthread_cond_signal(&st->wcond);
        pthread_mutex_unlock(&st->gmu);
        pthread_cond_destroy(&me.cond);
        return me.err;
    }
    if (st->tail) {
        st->tail->next = &me;
    } else {
        st->head = &me;
        pthread_cond_signal(&st->wcond);
    }
    st->tail = &me;
    while (!me.done)
        pthread_cond_wait(&me.cond, &st->gmu);
    /* Pass the wake-up on. A caller leaves only once its done is set, and
     * that happens here, under gmu: both are still waiting, so alive. */
    for (int i = 0; i < 2; i++) {
        if (me.wake[i]) {
            me.wake[i]->done = 1;
            pthread_cond_signal(&me.wake[i]->cond);
        }
    }
    pthread_mutex_unlock(&st->gmu);
    pthread_cond_destroy(&me.cond);
    return me.err;
}

/* gg_store_reclaim - incremental vacuum and a truncating checkpoint now. */
gg_err gg_store_reclaim(gg_store *st)
{
    gg_err err = GG_OK;
    int rc;

    if (!st)
        return GG_EINVAL;
    pthread_mutex_lock(&st->mu);
    gg_store_ckpt_pause(st);
    rc = sqlite3_exec(st->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    gg_store_ckpt_resume(st);
    if (rc != SQLITE_OK)
        err = gg_store_sql_err(st, "reclaim", rc);
    else
        st->reclaims++;
    pthread_mutex_unlock(&st->mu);
    return err;
}
