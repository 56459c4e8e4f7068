/* read.c - the store's reads (browse, marks, depth, lists, stats) and the
 * small helpers every file of the store shares: name and size checks and
 * message allocation. Reads hold the store mutex for one statement each.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "store/store_int.h"

/* gg_store_valid_name - a queue or channel name: 1..GG_QUEUE_NAME_MAX-1 bytes. */
int gg_store_valid_name(const char *q)
{
    return q && q[0] && strnlen(q, GG_QUEUE_NAME_MAX) < GG_QUEUE_NAME_MAX;
}

/* gg_store_check_data - data may be NULL only when len is 0; len fits SQLite. */
gg_err gg_store_check_data(const void *data, size_t len)
{
    if (!data && len)
        return GG_EINVAL;
    return len > (size_t)INT_MAX ? GG_ETOOBIG : GG_OK;
}

/* gg_store_msg_alloc - a message owning a copy of len bytes; NULL if out of memory. */
gg_msg *gg_store_msg_alloc(const void *data, size_t len)
{
    gg_msg *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->data = malloc(len ? len : 1);
    if (!m->data) {
        free(m);
        return NULL;
    }
    if (len)
        memcpy(m->data, data, len);
    m->len = len;
    return m;
}

void gg_msg_free(gg_msg *m)
{
    if (!m)
        return;
    free(m->data);
    free(m);
}

void gg_msgs_free(gg_msg **msgs, size_t n)
{
    if (!msgs)
        return;
    for (size_t i = 0; i < n; i++)
        gg_msg_free(msgs[i]);
    free(msgs);
}

/* gg_store_read_mark - the stored mark of channel, 0 if none. */
gg_err gg_store_read_mark(gg_store *st, const char *channel, int64_t *mark)
{
    sqlite3_stmt *s = gg_sql_prep(st, S_MARK_GET);
    int rc;

    sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    *mark = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return gg_store_sql_err(st, "mark", rc);
    return GG_OK;
}

gg_err gg_store_browse(gg_store *st, const char *queue, int64_t after_id, size_t max_msgs,
                       size_t max_bytes, gg_msg ***out, size_t *n)
{
    gg_msg **v = NULL;
    size_t cnt = 0, cap = 0, bytes = 0;
    sqlite3_stmt *s;
    gg_err err = GG_OK;
    int rc;

    if (!st || !gg_store_valid_name(queue) || !out || !n)
        return GG_EINVAL;
    *out = NULL;
    *n = 0;
    if (max_msgs == 0)
        return GG_OK;
    pthread_mutex_lock(&st->mu);
    s = gg_sql_prep(st, S_BROWSE);
    sqlite3_bind_text(s, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, after_id);
    sqlite3_bind_int64(s, 3, max_msgs > INT_MAX ? INT_MAX : (int64_t)max_msgs);
    while (max_bytes == 0 || bytes < max_bytes) {
        gg_msg *m;
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
            if (rc != SQLITE_DONE)
                err = gg_store_sql_err(st, "browse", rc);
            break;
        }
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            gg_msg **nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                err = GG_ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        m = gg_store_msg_alloc(sqlite3_column_blob(s, 5), (size_t)sqlite3_column_bytes(s, 5));
        if (!m) {
            err = GG_ENOMEM;
            break;
        }
        m->id = sqlite3_column_int64(s, 0);
        snprintf(m->queue, sizeof m->queue, "%s", queue);
        gg_sql_col_text(s, 1, m->dest, sizeof m->dest);
        m->put_ms = sqlite3_column_int64(s, 2);
        m->expiry_ms = sqlite3_column_int64(s, 3);
        m->backouts = sqlite3_column_int(s, 4);
        m->prio = sqlite3_column_int(s, 6);
        m->flags = (unsigned)sqlite3_column_int64(s, 7);
        bytes += m->len;
        v[cnt++] = m;
    }
    sqlite3_reset(s);
    pthread_mutex_unlock(&st->mu);
    if (err != GG_OK) {
        gg_msgs_free(v, cnt);
        return err;
    }
    *out = v;
    *n = cnt;
    return GG_OK;
}

gg_err gg_store_mark(gg_store *st, const char *channel, int64_t *mark)
{
    gg_err err;

    if (!st || !gg_store_valid_name(channel) || !mark)
        return GG_EINVAL;
    pthread_mutex_lock(&st->mu);
    err = gg_store_read_mark(st, channel, mark);
    pthread_mutex_unlock(&st->mu);
    return err;
}

gg_err gg_store_depth(gg_store *st, const char *queue, int64_t *depth)
{
    sqlite3_stmt *s;
    int rc;

    if (!st || !gg_store_valid_name(queue) || !depth)
        return GG_EINVAL;
    pthread_mutex_lock(&st->mu);
    s = gg_sql_prep(st, S_QSTATS);
    sqlite3_bind_text(s, 1, queue, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    *depth = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    pthread_mutex_unlock(&st->mu);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return gg_store_sql_err(st, "depth", rc);
    return GG_OK;
}

gg_err gg_store_get_stats(gg_store *st, gg_store_stats *out)
{
    sqlite3_stmt *s;
    int rc;

    if (!st || !out)
        return GG_EINVAL;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    out->puts = st->counts.puts;
    out->gets = st->counts.gets;
    out->acks = st->counts.acks;
    out->backouts = st->counts.backouts;
    out->expired = st->counts.expired;
    out->dead = st->counts.dead;
    out->dropped = st->counts.dropped;
    out->handoffs = st->counts.handoffs;
    out->commits = st->commits;
    out->batched = st->batched;
    out->faults = st->faults;
    out->faulted = st->faulted;
    out->syncs = st->syncs;
    out->checkpoints = atomic_load(&st->checkpoints);
    s = gg_sql_prep(st, S_DEAD_COUNT);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        out->dead_depth = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    pthread_mutex_unlock(&st->mu);
    pthread_mutex_lock(&st->nmu);
    out->wakeups = st->wakeups;
    pthread_mutex_unlock(&st->nmu);
    if (rc != SQLITE_ROW)
        return gg_store_sql_err(st, "stats", rc);
    return GG_OK;
}

gg_err gg_store_queues(gg_store *st, gg_queue_info *out, size_t max, size_t *n)
{
    sqlite3_stmt *s;
    gg_err err = GG_OK;
    int rc;

    if (!st || (max && !out) || !n)
        return GG_EINVAL;
    *n = 0;
    pthread_mutex_lock(&st->mu);
    s = gg_sql_prep(st, S_QUEUES);
    sqlite3_bind_int64(s, 1, max > INT_MAX ? INT_MAX : (int64_t)max);
    for (;;) {
        gg_queue_info *q;
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
            break;
        q = &out[*n];
        gg_sql_col_text(s, 0, q->name, sizeof q->name);
        q->depth = sqlite3_column_int64(s, 1);
        q->bytes = sqlite3_column_int64(s, 2);
        q->oldest_put_ms = sqlite3_column_int64(s, 3);
        q->dead = sqlite3_column_int64(s, 4);
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        err = gg_store_sql_err(st, "queues", rc);
    sqlite3_reset(s);
    pthread_mutex_unlock(&st->mu);
    return err;
}

/* dead_row - fill d from a row of S_DEAD_LIST or S_DEAD_ONE. */
static void dead_row(sqlite3_stmt *s, gg_dead_info *d)
{
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(s, 0);
    gg_sql_col_text(s, 1, d->queue, sizeof d->queue);
    gg_sql_col_text(s, 2, d->dest, sizeof d->dest);
    gg_sql_col_text(s, 3, d->reason, sizeof d->reason);
    d->dead_ms = sqlite3_column_int64(s, 4);
    d->put_ms = sqlite3_column_int64(s, 5);
    d->expiry_ms = sqlite3_column_int64(s, 6);
    d->backouts = sqlite3_column_int(s, 7);
    d->len = (size_t)sqlite3_column_int64(s, 8);
    d->prio = sqlite3_column_int(s, 9);
    d->flags = (unsigned)sqlite3_column_int64(s, 10);
}

/* gg_store_dead_get - one dead letter with its bytes. */
gg_err gg_store_dead_get(gg_store *st, int64_t id, gg_dead_info *info, gg_msg **out)
{
    gg_dead_info d;
    sqlite3_stmt *s;
    gg_msg *m = NULL;
    gg_err err = GG_OK;
    int rc;

    if (!st || !out)
        return GG_EINVAL;
    *out = NULL;
    pthread_mutex_lock(&st->mu);
    s = gg_sql_prep(st, S_DEAD_ONE);
    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        err = rc == SQLITE_DONE ? GG_ENOTFOUND : gg_store_sql_err(st, "dead_get", rc);
        goto out;
    }
    dead_row(s, &d);
    m = gg_store_msg_alloc(sqlite3_column_blob(s, 11), (size_t)sqlite3_column_bytes(s, 11));
    if (!m) {
        err = GG_ENOMEM;
        goto out;
    }
    m->id = d.id;
    memcpy(m->queue, d.queue, sizeof m->queue);
    memcpy(m->dest, d.dest, sizeof m->dest);
    m->put_ms = d.put_ms;
    m->expiry_ms = d.expiry_ms;
    m->backouts = d.backouts;
    m->prio = d.prio;
    m->flags = d.flags;
    if (info)
        *info = d;
    *out = m;
out:
    sqlite3_reset(s);
    pthread_mutex_unlock(&st->mu);
    return err;
}

gg_err gg_store_dead_list(gg_store *st, int64_t after_id, gg_dead_info *out, size_t max,
                          size_t *n)
{
    sqlite3_stmt *s;
    gg_err err = GG_OK;
    int rc;

    if (!st || (max && !out) || !n)
        return GG_EINVAL;
    *n = 0;
    pthread_mutex_lock(&st->mu);
    s = gg_sql_prep(st, S_DEAD_LIST);
    sqlite3_bind_int64(s, 1, after_id);
    sqlite3_bind_int64(s, 2, max > INT_MAX ? INT_MAX : (int64_t)max);
    for (;;) {
        gg_dead_info *d;
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
            break;
        d = &out[*n];
        dead_row(s, d);
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        err = gg_store_sql_err(st, "dead_list", rc);
    sqlite3_reset(s);
    pthread_mutex_unlock(&st->mu);
    return err;
}
