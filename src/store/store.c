/* store.c - the durable queue store (contract in store.h, design in
 * docs/store.md).
 *
 * Every mutation is an op_* function run by gg_store_run() (commit.c)
 * inside a transaction it may share with other callers' ops (group
 * commit): the op reads and writes through the cached statements and
 * notes in a gg_txn what it did. An op may be run twice (commit.c redoes a
 * batch under savepoints when an op fails half-way), so it starts from its
 * arguments and overwrites or frees its outputs. The runner
 * commits, applies the counters and then, with the store mutex released,
 * wakes waiters and calls watchers. Ops never commit and never wake anyone
 * themselves. Reads (read.c) take the mutex and run single statements.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "store/store_int.h"

#define REASON_BACKOUT "backout threshold"
#define REASON_EXPIRED "expired"

/* insert_msg - check queue's limits, then add one message. GG_EFULL if a
 * limit would be exceeded. */
static gg_err insert_msg(gg_store *st, gg_txn *t, const char *op, const char *queue,
                         const char *dest, const void *data, size_t len, int64_t expiry_ms,
                         int prio, unsigned flags, int64_t *id_out)
{
    sqlite3_stmt *s;
    int64_t depth = 0, bytes = 0, id;
    gg_err err;
    int rc;

    if (st->opts.max_depth > 0 || st->opts.max_bytes > 0) {
        err = gg_kept_queue_stats(st, queue, &depth, &bytes);
        if (err != GG_OK)
            return err;
        if (st->opts.max_depth > 0 && depth + 1 > st->opts.max_depth)
            return GG_EFULL;
        if (st->opts.max_bytes > 0 && bytes + (int64_t)len > st->opts.max_bytes)
            return GG_EFULL;
    }
    err = gg_kept_next_id(st, &id);
    if (err != GG_OK)
        return err;
    s = gg_sql_prep(st, S_INSERT);
    sqlite3_bind_text(s, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, dest ? dest : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, gg_now_ms());
    sqlite3_bind_int64(s, 4, expiry_ms);
    sqlite3_bind_int64(s, 5, (int64_t)len);
    sqlite3_bind_int(s, 6, prio);
    sqlite3_bind_int64(s, 7, (int64_t)flags);
    sqlite3_bind_int64(s, 8, id);
    rc = gg_sql_done(s);
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, op, rc);
    s = gg_sql_prep(st, S_INSERT_BODY);
    sqlite3_bind_int64(s, 1, id);
    rc = gg_sql_bind_blob(s, 2, data, len);
    if (rc == SQLITE_OK)
        rc = gg_sql_done(s);
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, op, rc);
    err = gg_kept_add(st, queue, 1, (int64_t)len);
    if (err != GG_OK)
        return err;
    if (id_out)
        *id_out = id;
    t->c.puts++;
    gg_txn_touch(t, queue);
    return GG_OK;
}

/* find_msg - queue, backouts and len of message id; GG_ENOTFOUND if none.
 * backouts and len may be NULL. */
static gg_err find_msg(gg_store *st, const char *op, int64_t id, char *queue, int *backouts,
                       int64_t *len)
{
    sqlite3_stmt *s = gg_sql_prep(st, S_FIND);
    gg_err err = GG_ENOTFOUND;
    int rc;

    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        gg_sql_col_text(s, 0, queue, GG_QUEUE_NAME_MAX);
        if (backouts)
            *backouts = sqlite3_column_int(s, 1);
        if (len)
            *len = sqlite3_column_int64(s, 3);
        err = GG_OK;
    } else if (rc != SQLITE_DONE) {
        err = gg_store_sql_err(st, op, rc);
    }
    sqlite3_reset(s);
    return err;
}

/* delete_msg - remove message id and its body, and count it out of its
 * queue; GG_ENOTFOUND if there is none. */
static gg_err delete_msg(gg_store *st, const char *op, int64_t id)
{
    char queue[GG_QUEUE_NAME_MAX];
    int64_t len = 0;
    gg_err err = find_msg(st, op, id, queue, NULL, &len);
    sqlite3_stmt *s;
    int rc;

    if (err != GG_OK)
        return err;
    s = gg_sql_prep(st, S_DELETE);
    sqlite3_bind_int64(s, 1, id);
    rc = gg_sql_done(s);
    if (rc == SQLITE_OK) {
        s = gg_sql_prep(st, S_DELETE_BODY);
        sqlite3_bind_int64(s, 1, id);
        rc = gg_sql_done(s);
    }
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, op, rc);
    return gg_kept_add(st, queue, -1, -len);
}

/* to_dead - move message id to the dead-letter queue with reason. */
static gg_err to_dead(gg_store *st, gg_txn *t, const char *op, int64_t id, int backouts,
                      const char *reason)
{
    sqlite3_stmt *s = gg_sql_prep(st, S_TO_DEAD);
    int rc;

    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, gg_now_ms());
    sqlite3_bind_int(s, 4, backouts);
    rc = gg_sql_done(s);
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, op, rc);
    if (sqlite3_changes(st->db) == 0)
        return GG_ENOTFOUND;
    t->c.dead++;
    gg_warn("store", "msg=\"dead-lettered\" id=%lld backouts=%d reason=\"%s\"", (long long)id,
            backouts, reason);
    return delete_msg(st, op, id);
}

struct get_args {
    const char *queue;
    int64_t lease_ms;
    gg_msg *msg;        /* the leased message, NULL if none was ready */
};

/* release_runout - every message of queue whose lease ran out goes back to
 * ready with backouts+1, or to the dead letters at the threshold. */
static gg_err release_runout(gg_store *st, gg_txn *t, const char *queue, int64_t now)
{
    int64_t ids[GG_STORE_GET_BATCH];
    int backouts[GG_STORE_GET_BATCH];
    int thr = st->opts.backout_threshold;

    for (;;) {
        sqlite3_stmt *s = gg_sql_prep(st, S_RUNOUT);
        size_t n = 0;
        int rc;

        sqlite3_bind_text(s, 1, queue, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, now);
        sqlite3_bind_int(s, 3, GG_STORE_GET_BATCH);
        for (;;) {
            rc = sqlite3_step(s);
            if (rc != SQLITE_ROW || n == GG_STORE_GET_BATCH)
                break;
            ids[n] = sqlite3_column_int64(s, 0);
            backouts[n] = sqlite3_column_int(s, 1) + 1;
            n++;
        }
        if (rc == SQLITE_ROW)
            rc = SQLITE_DONE;
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
            return gg_store_sql_err(st, "get", rc);
        for (size_t i = 0; i < n; i++) {
            gg_err err;
            t->lease_only = 0;
            t->c.backouts++;
            if (thr > 0 && backouts[i] >= thr) {
                err = to_dead(st, t, "get", ids[i], backouts[i], REASON_BACKOUT);
                if (err != GG_OK)
                    return err;
                continue;
            }
            s = gg_sql_prep(st, S_RELEASE);
            sqlite3_bind_int64(s, 1, ids[i]);
            sqlite3_bind_int(s, 2, backouts[i]);
            rc = gg_sql_done(s);
            if (rc != SQLITE_OK)
                return gg_store_sql_err(st, "get", rc);
            gg_txn_touch(t, queue);
        }
        if (n < GG_STORE_GET_BATCH)
            return GG_OK;
    }
}

/* lease_some - lease ready, unexpired messages of queue (highest priority
 * first, then id) for lease_ms into out[*n...] until *n reaches want or
 * none is left; the expired met on the way are removed (or dead-lettered).
 * Reads only as many rows as it still wants. On an error the messages in
 * out stay the caller's to free. */
static gg_err lease_some(gg_store *st, gg_txn *t, const char *queue, int64_t lease_ms,
                         size_t want, gg_msg **out, size_t *n, int64_t now)
{
    while (*n < want) {
        sqlite3_stmt *s = gg_sql_prep(st, S_READY);
        int64_t exp_id[GG_STORE_GET_BATCH];
        int exp_backouts[GG_STORE_GET_BATCH];
        unsigned exp_flags[GG_STORE_GET_BATCH];
        size_t limit = want - *n, rows = 0, nexp = 0, first = *n;
        gg_err err = GG_OK;
        int rc;

        if (limit > GG_STORE_GET_BATCH)
            limit = GG_STORE_GET_BATCH;
        sqlite3_bind_text(s, 1, queue, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, (int)limit);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(s, 0), expiry_ms = sqlite3_column_int64(s, 3);
            gg_msg *m;

            rows++;
            if (expiry_ms != 0 && expiry_ms <= now) {
                exp_id[nexp] = id;
                exp_backouts[nexp] = sqlite3_column_int(s, 5);
                exp_flags[nexp++] = (unsigned)sqlite3_column_int64(s, 7);
                continue;
            }
            m = gg_store_msg_alloc(sqlite3_column_blob(s, 8), (size_t)sqlite3_column_bytes(s, 8));
            if (!m) {
                err = GG_ENOMEM;
                break;
            }
            m->id = id;
            snprintf(m->queue, sizeof m->queue, "%s", queue);
            gg_sql_col_text(s, 1, m->dest, sizeof m->dest);
            m->put_ms = sqlite3_column_int64(s, 2);
            m->expiry_ms = expiry_ms;
            m->backouts = sqlite3_column_int(s, 5);
            m->prio = sqlite3_column_int(s, 6);
            m->flags = (unsigned)sqlite3_column_int64(s, 7);
            out[(*n)++] = m;
        }
        sqlite3_reset(s);
        if (err != GG_OK)
            return err;
        if (rc != SQLITE_DONE)
            return gg_store_sql_err(st, "get", rc);
        for (size_t i = first; i < *n; i++) {
            s = gg_sql_prep(st, S_LEASE);
            sqlite3_bind_int64(s, 1, out[i]->id);
            sqlite3_bind_int64(s, 2, now + lease_ms);
            sqlite3_bind_int(s, 3, out[i]->backouts);
            rc = gg_sql_done(s);
            if (rc != SQLITE_OK)
                return gg_store_sql_err(st, "get", rc);
            t->c.gets++;
        }
        for (size_t i = 0; i < nexp; i++) {
            t->lease_only = 0;
            if (exp_flags[i] & GG_MSG_REPORT_EXPIRY)
                err = to_dead(st, t, "get", exp_id[i], exp_backouts[i], REASON_EXPIRED);
            else
                err = delete_msg(st, "get", exp_id[i]);
            if (err != GG_OK)
                return err;
            t->c.expired++;
            gg_debug("store", "msg=\"expired\" id=%lld queue=%s", (long long)exp_id[i], queue);
        }
        if (rows < limit)
            return GG_OK;
    }
    return GG_OK;
}

/* op_get - put back the messages whose lease ran out, then lease the next
 * ready one. GG_OK with a->msg NULL if none. Marks the transaction
 * lease-only unless it released, removed or dead-lettered anything. */
static gg_err op_get(gg_store *st, gg_txn *t, void *arg)
{
    struct get_args *a = arg;
    int64_t now = gg_now_ms();
    size_t n = 0;
    gg_err err;

    gg_msg_free(a->msg);   /* a redone batch runs the op again */
    a->msg = NULL;
    t->lease_only = 1;
    err = release_runout(st, t, a->queue, now);
    if (err == GG_OK)
        err = lease_some(st, t, a->queue, a->lease_ms, 1, &a->msg, &n, now);
    return err;
}

/* gg_store_take_locked - release run-out leases, then lease up to want
 * (the hand-off's get, as op_get_many's). */
gg_err gg_store_take_locked(gg_store *st, gg_txn *t, const char *queue, int64_t lease_ms,
                            size_t want, gg_msg **out, size_t *n)
{
    int64_t now = gg_now_ms();
    gg_err err = release_runout(st, t, queue, now);

    if (err == GG_OK)
        err = lease_some(st, t, queue, lease_ms, want, out, n, now);
    return err;
}

/* gg_store_any_ready - whether queue has a ready row (expired ones too). */
gg_err gg_store_any_ready(gg_store *st, const char *queue, int *any)
{
    sqlite3_stmt *s = gg_sql_prep(st, S_READY);
    int rc;

    sqlite3_bind_text(s, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, 1);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    *any = rc == SQLITE_ROW;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? GG_OK : gg_store_sql_err(st, "get", rc);
}

struct get_many_args {
    const char *queue;
    int64_t lease_ms;
    size_t max;
    gg_msg **out;       /* caller's array of max */
    size_t n;           /* leased so far */
};

/* free_leased - free the messages a get_many op has read so far. */
static void free_leased(struct get_many_args *a)
{
    for (size_t i = 0; i < a->n; i++) {
        gg_msg_free(a->out[i]);
        a->out[i] = NULL;
    }
    a->n = 0;
}

/* op_get_many - as op_get, leasing up to a->max messages. */
static gg_err op_get_many(gg_store *st, gg_txn *t, void *arg)
{
    struct get_many_args *a = arg;
    int64_t now = gg_now_ms();
    gg_err err;

    free_leased(a);        /* a redone batch runs the op again */
    t->lease_only = 1;
    err = release_runout(st, t, a->queue, now);
    if (err == GG_OK)
        err = lease_some(st, t, a->queue, a->lease_ms, a->max, a->out, &a->n, now);
    return err;
}

struct id_args {
    int64_t id;
    const char *reason;
    int64_t new_id;
};

/* op_ack - remove message id. */
static gg_err op_ack(gg_store *st, gg_txn *t, void *arg)
{
    struct id_args *a = arg;
    gg_err err = delete_msg(st, "ack", a->id);
    if (err == GG_OK)
        t->c.acks++;
    return err;
}

/* op_backout - message id back to ready with backouts+1, or dead at the threshold. */
static gg_err op_backout(gg_store *st, gg_txn *t, void *arg)
{
    struct id_args *a = arg;
    char queue[GG_QUEUE_NAME_MAX];
    int backouts = 0, thr = st->opts.backout_threshold;
    sqlite3_stmt *s;
    gg_err err = find_msg(st, "backout", a->id, queue, &backouts, NULL);
    int rc;

    if (err != GG_OK)
        return err;
    backouts++;
    t->c.backouts++;
    if (thr > 0 && backouts >= thr)
        return to_dead(st, t, "backout", a->id, backouts, REASON_BACKOUT);
    s = gg_sql_prep(st, S_RELEASE);
    sqlite3_bind_int64(s, 1, a->id);
    sqlite3_bind_int(s, 2, backouts);
    rc = gg_sql_done(s);
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, "backout", rc);
    gg_txn_touch(t, queue);
    return GG_OK;
}

/* op_dead_letter - message id to the dead-letter queue with a->reason. */
static gg_err op_dead_letter(gg_store *st, gg_txn *t, void *arg)
{
    struct id_args *a = arg;
    char queue[GG_QUEUE_NAME_MAX];
    int backouts = 0;
    gg_err err = find_msg(st, "dead_letter", a->id, queue, &backouts, NULL);

    if (err != GG_OK)
        return err;
    return to_dead(st, t, "dead_letter", a->id, backouts, a->reason);
}

/* op_replay - dead letter a->id back onto its queue as a new message. */
static gg_err op_replay(gg_store *st, gg_txn *t, void *arg)
{
    struct id_args *a = arg;
    sqlite3_stmt *s = gg_sql_prep(st, S_DEAD_GET);
    char queue[GG_QUEUE_NAME_MAX], dest[GG_QUEUE_NAME_MAX];
    int64_t expiry_ms;
    gg_err err;
    int rc;

    sqlite3_bind_int64(s, 1, a->id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        err = rc == SQLITE_DONE ? GG_ENOTFOUND : gg_store_sql_err(st, "replay", rc);
        goto out;
    }
    gg_sql_col_text(s, 0, queue, sizeof queue);
    gg_sql_col_text(s, 1, dest, sizeof dest);
    /* The blob stays valid until s is stepped or reset, after the insert. */
    /* An expired message comes back without its expiry, or it would only
     * expire again: replaying is a deliberate "deliver it anyway". */
    expiry_ms = sqlite3_column_int64(s, 2);
    if (expiry_ms != 0 && expiry_ms <= gg_now_ms())
        expiry_ms = 0;
    err = insert_msg(st, t, "replay", queue, dest, sqlite3_column_blob(s, 4),
                     (size_t)sqlite3_column_bytes(s, 4), expiry_ms, sqlite3_column_int(s, 5),
                     (unsigned)sqlite3_column_int64(s, 6), &a->new_id);
    if (err != GG_OK)
        goto out;
    sqlite3_reset(s);
    s = gg_sql_prep(st, S_DEAD_DEL);
    sqlite3_bind_int64(s, 1, a->id);
    rc = gg_sql_done(s);
    if (rc != SQLITE_OK)
        err = gg_store_sql_err(st, "replay", rc);
out:
    sqlite3_reset(s);
    return err;
}

struct put_args {
    int64_t ack_id;     /* 0: plain put */
    const char *queue, *dest;
    const void *data;
    size_t len;
    int64_t expiry_ms;
    int64_t id;
    int prio;
    unsigned flags;
};

/* op_put - optionally ack a->ack_id, then add one message. */
static gg_err op_put(gg_store *st, gg_txn *t, void *arg)
{
    struct put_args *a = arg;

    if (a->ack_id) {
        gg_err err = delete_msg(st, "ack_put", a->ack_id);
        if (err != GG_OK)
            return err;
        t->c.acks++;
    }
    return insert_msg(st, t, a->ack_id ? "ack_put" : "put", a->queue, a->dest, a->data, a->len,
                      a->expiry_ms, a->prio, a->flags, &a->id);
}

struct many_args {
    const gg_store_put_item *items;   /* put_many */
    const int64_t *ids;               /* ack_many */
    size_t n;
    int64_t *ids_out;                 /* put_many; may be NULL */
};

/* op_put_many - add every item, in order. */
static gg_err op_put_many(gg_store *st, gg_txn *t, void *arg)
{
    struct many_args *a = arg;

    for (size_t i = 0; i < a->n; i++) {
        const gg_store_put_item *it = &a->items[i];
        gg_err err = insert_msg(st, t, "put_many", it->queue, it->dest, it->data, it->len,
                                it->expiry_ms, it->prio, it->flags,
                                a->ids_out ? &a->ids_out[i] : NULL);
        if (err != GG_OK)
            return err;
    }
    return GG_OK;
}

/* op_ack_many - remove every message of a->ids; GG_ENOTFOUND at the first unknown. */
static gg_err op_ack_many(gg_store *st, gg_txn *t, void *arg)
{
    struct many_args *a = arg;

    for (size_t i = 0; i < a->n; i++) {
        gg_err err = delete_msg(st, "ack_many", a->ids[i]);
        if (err != GG_OK)
            return err;
        t->c.acks++;
    }
    return GG_OK;
}

struct recv_args {
    const char *channel;
    const gg_store_item *items;
    size_t n;
    int64_t mark;
};

/* op_receive - put every item above the mark and raise the mark. */
static gg_err op_receive(gg_store *st, gg_txn *t, void *arg)
{
    struct recv_args *a = arg;
    int64_t mark, old;
    sqlite3_stmt *s;
    gg_err err = gg_store_read_mark(st, a->channel, &mark);
    int rc;

    if (err != GG_OK)
        return err;
    old = mark;
    for (size_t i = 0; i < a->n; i++) {
        const gg_store_item *it = &a->items[i];
        if (it->seq <= mark) {
            t->c.dropped++;
            continue;
        }
        err = insert_msg(st, t, "receive", it->queue, "", it->data, it->len, it->expiry_ms,
                         it->prio, it->flags, NULL);
        if (err != GG_OK)
            return err;
        mark = it->seq;
    }
    a->mark = mark;
    if (mark == old)
        return GG_OK;
    s = gg_sql_prep(st, S_MARK_SET);
    sqlite3_bind_text(s, 1, a->channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, mark);
    rc = gg_sql_done(s);
    return rc == SQLITE_OK ? GG_OK : gg_store_sql_err(st, "receive", rc);
}

struct upto_args {
    const char *queue;
    int64_t upto;
};

/* op_delete_upto - remove the messages of queue with id <= upto, with
 * their bodies, and count them out of the queue. */
static gg_err op_delete_upto(gg_store *st, gg_txn *t, void *arg)
{
    struct upto_args *a = arg;
    sqlite3_stmt *s = gg_sql_prep(st, S_UPTO_STATS);
    int64_t n = 0, bytes = 0;
    int rc;

    (void)t;
    sqlite3_bind_text(s, 1, a->queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, a->upto);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        n = sqlite3_column_int64(s, 0);
        bytes = sqlite3_column_int64(s, 1);
        rc = SQLITE_OK;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, "delete_upto", rc);
    if (n == 0)
        return GG_OK;
    for (int i = 0; i < 2 && rc == SQLITE_OK; i++) {
        s = gg_sql_prep(st, i == 0 ? S_UPTO_BODIES : S_DEL_UPTO);
        sqlite3_bind_text(s, 1, a->queue, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, a->upto);
        rc = gg_sql_done(s);
    }
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, "delete_upto", rc);
    return gg_kept_add(st, a->queue, -n, -bytes);
}

/* op_purge - remove dead letter a->id, or all of them when it is 0. */
static gg_err op_purge(gg_store *st, gg_txn *t, void *arg)
{
    struct id_args *a = arg;
    sqlite3_stmt *s = gg_sql_prep(st, a->id ? S_DEAD_DEL : S_DEAD_PURGE);
    int rc;

    if (a->id)
        sqlite3_bind_int64(s, 1, a->id);
    rc = gg_sql_done(s);
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, "dead_purge", rc);
    a->new_id = sqlite3_changes64(st->db);
    return a->id && a->new_id == 0 ? GG_ENOTFOUND : GG_OK;
}

gg_err gg_store_open(const char *path, const gg_store_opts *opts, gg_store **out)
{
    pthread_condattr_t ca;
    gg_store *st;
    gg_err err = GG_OK;
    int rc;

    if (!path || !out)
        return GG_EINVAL;
    if (opts && (opts->max_depth < 0 || opts->max_bytes < 0 || opts->backout_threshold < 0 ||
                 opts->max_db_bytes < 0 || opts->durability < GG_DURABLE_FULL ||
                 opts->durability > GG_DURABLE_NORMAL))
        return GG_EINVAL;
    st = calloc(1, sizeof *st);
    if (!st)
        return GG_ENOMEM;
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->nmu, NULL);
    pthread_mutex_init(&st->gmu, NULL);
    pthread_mutex_init(&st->cmu, NULL);
    pthread_cond_init(&st->ccond, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (opts) {
        st->opts = *opts;
    } else {
        st->opts.backout_threshold = 5;
    }
    st->path = strdup(path);
    if (!st->path) {
        err = GG_ENOMEM;
        goto out;
    }
    rc = sqlite3_open_v2(path, &st->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         gg_store_vfs_name());
    if (rc != SQLITE_OK) {
        err = gg_store_sql_err(st, "open", rc);
        goto out;
    }
    err = gg_store_schema_open(st);
    if (err == GG_OK)
        gg_store_ckpt_start(st);
    if (err == GG_OK)
        err = gg_store_writer_start(st);
out:
    if (err != GG_OK) {
        gg_error("store", "msg=\"open failed\" path=%s err=%s", path, gg_errname(err));
        gg_store_close(st);
        return err;
    }
    gg_info("store", "msg=\"opened\" path=%s max_depth=%lld max_bytes=%lld backout_threshold=%d "
            "durability=%s", path, (long long)st->opts.max_depth, (long long)st->opts.max_bytes,
            st->opts.backout_threshold,
            st->opts.durability == GG_DURABLE_NORMAL ? "normal" : "full");
    *out = st;
    return GG_OK;
}

void gg_store_close(gg_store *st)
{
    int rc;

    if (!st)
        return;
    atomic_store(&st->closing, 1);   /* no hand-off to a taker from here on */
    gg_store_writer_stop(st);
    gg_store_waiters_close(st);
    gg_store_ckpt_stop(st);
    gg_store_schema_close(st);
    rc = sqlite3_close(st->db);
    if (rc != SQLITE_OK)
        gg_store_sql_err(st, "close", rc);
    pthread_cond_destroy(&st->cond);
    pthread_cond_destroy(&st->ccond);
    pthread_mutex_destroy(&st->cmu);
    pthread_mutex_destroy(&st->gmu);
    pthread_mutex_destroy(&st->nmu);
    pthread_mutex_destroy(&st->mu);
    free(st->path);
    free(st);
}

gg_err gg_store_put(gg_store *st, const char *queue, const char *dest, const void *data,
                    size_t len, int64_t expiry_ms, int64_t *id_out)
{
    return gg_store_put_prio(st, queue, dest, data, len, expiry_ms, 0, 0, id_out);
}

/* gg_store_put_prio - a put with a priority and flags. */
gg_err gg_store_put_prio(gg_store *st, const char *queue, const char *dest, const void *data,
                         size_t len, int64_t expiry_ms, int prio, unsigned flags,
                         int64_t *id_out)
{
    struct put_args a = { 0, queue, dest, data, len, expiry_ms, 0, prio, flags };
    gg_err err = gg_store_check_data(data, len);

    if (!st || !gg_store_valid_name(queue) || (dest && dest[0] && !gg_store_valid_name(dest)) ||
        expiry_ms < 0 || prio < 0 || prio > GG_PRIO_MAX || (flags & ~GG_MSG_FLAGS_ALL))
        return GG_EINVAL;
    if (err != GG_OK)
        return err;
    err = gg_store_run(st, "put", op_put, &a);
    if (err == GG_OK && id_out)
        *id_out = a.id;
    return err;
}

/* valid_put - the arguments of one put are acceptable (GG_OK), else GG_EINVAL / GG_ETOOBIG. */
static gg_err valid_put(const char *queue, const char *dest, const void *data, size_t len,
                        int64_t expiry_ms, int prio, unsigned flags)
{
    if (!gg_store_valid_name(queue) || (dest && dest[0] && !gg_store_valid_name(dest)) ||
        expiry_ms < 0 || prio < 0 || prio > GG_PRIO_MAX || (flags & ~GG_MSG_FLAGS_ALL))
        return GG_EINVAL;
    return gg_store_check_data(data, len);
}

/* gg_store_put_many - n puts in one transaction, all or nothing. */
gg_err gg_store_put_many(gg_store *st, const gg_store_put_item *items, size_t n,
                         int64_t *ids_out)
{
    struct many_args a = { items, NULL, n, ids_out };

    if (!st || !items || n == 0 || n > GG_STORE_MANY_MAX)
        return GG_EINVAL;
    for (size_t i = 0; i < n; i++) {
        gg_err err = valid_put(items[i].queue, items[i].dest, items[i].data, items[i].len,
                               items[i].expiry_ms, items[i].prio, items[i].flags);
        if (err != GG_OK)
            return err;
    }
    return gg_store_run(st, "put_many", op_put_many, &a);
}

/* gg_store_ack_many - n acks in one transaction, all or nothing. */
gg_err gg_store_ack_many(gg_store *st, const int64_t *ids, size_t n)
{
    struct many_args a = { NULL, ids, n, NULL };

    if (!st || !ids || n == 0 || n > GG_STORE_MANY_MAX)
        return GG_EINVAL;
    return gg_store_run(st, "ack_many", op_ack_many, &a);
}

/* gg_store_get_many - lease up to max messages in one transaction. */
gg_err gg_store_get_many(gg_store *st, const char *queue, int64_t lease_ms, size_t max,
                         gg_msg **out, size_t *n)
{
    struct get_many_args a = { queue, lease_ms, max, out, 0 };
    gg_err err;

    if (n)
        *n = 0;
    if (!st || !gg_store_valid_name(queue) || lease_ms <= 0 || !out || !n || max == 0 ||
        max > GG_STORE_MANY_MAX)
        return GG_EINVAL;
    err = gg_store_run(st, "get_many", op_get_many, &a);
    if (err != GG_OK) {
        free_leased(&a);
        return err;
    }
    *n = a.n;
    return a.n ? GG_OK : GG_EEMPTY;
}

gg_err gg_store_ack_put(gg_store *st, int64_t ack_id, const char *queue, const char *dest,
                        const void *data, size_t len, int64_t expiry_ms)
{
    struct put_args a = { ack_id, queue, dest, data, len, expiry_ms, 0, 0, 0 };
    gg_err err = gg_store_check_data(data, len);

    if (!st || ack_id <= 0 || !gg_store_valid_name(queue) || (dest && dest[0] && !gg_store_valid_name(dest)) ||
        expiry_ms < 0)
        return GG_EINVAL;
    if (err != GG_OK)
        return err;
    return gg_store_run(st, "ack_put", op_put, &a);
}

gg_err gg_store_get(gg_store *st, const char *queue, int64_t lease_ms, gg_msg **out)
{
    struct get_args a = { queue, lease_ms, NULL };
    gg_err err;

    if (!st || !gg_store_valid_name(queue) || lease_ms <= 0 || !out)
        return GG_EINVAL;
    *out = NULL;
    err = gg_store_run(st, "get", op_get, &a);
    if (err != GG_OK) {
        gg_msg_free(a.msg);
        return err;
    }
    if (!a.msg)
        return GG_EEMPTY;
    *out = a.msg;
    return GG_OK;
}

gg_err gg_store_ack(gg_store *st, int64_t id)
{
    struct id_args a = { id, NULL, 0 };
    if (!st)
        return GG_EINVAL;
    return gg_store_run(st, "ack", op_ack, &a);
}

gg_err gg_store_backout(gg_store *st, int64_t id)
{
    struct id_args a = { id, NULL, 0 };
    if (!st)
        return GG_EINVAL;
    return gg_store_run(st, "backout", op_backout, &a);
}

gg_err gg_store_dead_letter(gg_store *st, int64_t id, const char *reason)
{
    char r[GG_DEAD_REASON_MAX];
    struct id_args a = { id, r, 0 };

    if (!st || !reason || !reason[0])
        return GG_EINVAL;
    snprintf(r, sizeof r, "%s", reason);
    return gg_store_run(st, "dead_letter", op_dead_letter, &a);
}

gg_err gg_store_dead_replay(gg_store *st, int64_t id, int64_t *new_id)
{
    struct id_args a = { id, NULL, 0 };
    gg_err err;

    if (!st)
        return GG_EINVAL;
    err = gg_store_run(st, "replay", op_replay, &a);
    if (err == GG_OK) {
        gg_info("store", "msg=\"replayed\" id=%lld new_id=%lld", (long long)id,
                (long long)a.new_id);
        if (new_id)
            *new_id = a.new_id;
    }
    return err;
}

gg_err gg_store_receive(gg_store *st, const char *channel, const gg_store_item *items, size_t n,
                        int64_t *mark_out)
{
    struct recv_args a = { channel, items, n, 0 };
    gg_err err;

    if (!st || !gg_store_valid_name(channel) || (n && !items))
        return GG_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!gg_store_valid_name(items[i].queue) || items[i].expiry_ms < 0 ||
            items[i].prio < 0 || items[i].prio > GG_PRIO_MAX ||
            (items[i].flags & ~GG_MSG_FLAGS_ALL))
            return GG_EINVAL;
        err = gg_store_check_data(items[i].data, items[i].len);
        if (err != GG_OK)
            return err;
    }
    err = gg_store_run(st, "receive", op_receive, &a);
    if (err == GG_OK && mark_out)
        *mark_out = a.mark;
    return err;
}

gg_err gg_store_delete_upto(gg_store *st, const char *queue, int64_t upto)
{
    struct upto_args a = { queue, upto };
    if (!st || !gg_store_valid_name(queue))
        return GG_EINVAL;
    return gg_store_run(st, "delete_upto", op_delete_upto, &a);
}

/* gg_store_dead_purge - remove one dead letter, or all of them. */
gg_err gg_store_dead_purge(gg_store *st, int64_t id, int64_t *n)
{
    struct id_args a = { id, NULL, 0 };
    gg_err err;

    if (!st || id < 0)
        return GG_EINVAL;
    err = gg_store_run(st, "dead_purge", op_purge, &a);
    if (err == GG_OK) {
        gg_warn("store", "msg=\"dead letters purged\" id=%lld count=%lld", (long long)id,
                (long long)a.new_id);
        if (n)
            *n = a.new_id;
    }
    return err;
}
