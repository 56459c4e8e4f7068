/* replay.c - freshness window and replay store, in the queue store's file
 * (contract in replay.h).
 *
 * Tables (version 1, in the store's file, changed only through
 * gg_store_exec, so always inside the store's group commit):
 *   replay_seen(id BLOB PRIMARY KEY, created_ms, local_id)   one row per live id
 *   replay_meta(k TEXT PRIMARY KEY, v INTEGER)               'version', 'horizon'
 * (Earlier versions kept the same two tables, named seen and meta, in a
 * separate file, replay.db; gg_replay_open imports its live rows.)
 *
 * Invariants (cutoff(now) = now - window - skew):
 *  1. The horizon only grows, and is raised in the same transaction that
 *     deletes rows: every id with created_ms >= horizon that was ever
 *     accepted (and committed) is still in replay_seen.
 *  2. An envelope is fresh only if created_ms >= max(cutoff(now), horizon)
 *     and created_ms <= now + skew. With 1, a fresh id is a replay exactly
 *     when it is in replay_seen, whatever the clock did since (restart,
 *     backward step): a forward step raises the horizon, so the messages it
 *     let us forget stay stale after the clock comes back.
 *  3. Rows are deleted only below cutoff(now): a flood of new ids never
 *     evicts a live one; at max_entries new ids are refused (GG_RV_FULL).
 *  4. GG_RV_FRESH is returned only after the row is committed, by a commit
 *     that skips its own fsync (gg_store_exec, durable 0). The caller acts
 *     on the message and then acks it (with its reply) in a later, fsynced
 *     commit of the same store, which makes the row durable too (the WAL is
 *     synced in commit order). So a row can be lost only by a power cut
 *     before that ack, and then its message is still in the queue: it is
 *     delivered again and judged again, fresh once more, exactly as a
 *     redelivery after a crash before the check. A process crash loses no
 *     row: the redelivered message is a GG_RV_REDELIVERY (same store id).
 *  5. Checks run one after the other (store ops run serially under the
 *     store's lock) and read the table inside the transaction, so two
 *     copies of one id checked at the same time see each other: at most
 *     one is fresh, without any reservation held outside the database.
 *
 * In-memory state, under mu: the horizon (raised as soon as an op raises
 * it in the database: a higher horizon in memory only refuses more, and a
 * failed commit leaves the rows it did not delete), the committed live
 * count plus the rows of checks still in flight (`inflight`, so the limit
 * of 3 holds while commits are pending; deletions count only once
 * committed), and the time of the last prune.
 */
#include "envelope/replay.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

#define PRUNE_EVERY_MS 1000

enum rp_stmt { Q_FIND, Q_INS, Q_DEL, Q_HORIZON, Q_N };

static const char *const stmt_sql[Q_N] = {
    [Q_FIND] = "SELECT local_id FROM replay_seen WHERE id = ?1",
    [Q_INS] = "INSERT OR IGNORE INTO replay_seen(id, created_ms, local_id) VALUES (?1, ?2, ?3)",
    [Q_DEL] = "DELETE FROM replay_seen WHERE created_ms < ?1",
    [Q_HORIZON] = "UPDATE replay_meta SET v = max(v, ?1) WHERE k = 'horizon'",
};

struct gg_replay {
    gg_store *st;                 /* borrowed */
    sqlite3_stmt *q[Q_N];         /* on the store's connection; used only inside ops */
    int64_t window_ms, skew_ms, max_entries;
    pthread_mutex_t mu;           /* the fields below */
    int64_t horizon;
    int64_t count;                /* committed live rows */
    int64_t inflight;             /* rows inserted by ops not yet known committed */
    int64_t last_prune;
};

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS replay_seen(id BLOB PRIMARY KEY, created_ms INTEGER NOT NULL,"
    " local_id INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS replay_seen_created ON replay_seen(created_ms);"
    "CREATE TABLE IF NOT EXISTS replay_meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO replay_meta(k, v) VALUES ('version', 1),"
    " ('horizon', -9223372036854775807);";

/* cutoff - now - window - skew, saturating. */
static int64_t cutoff(const gg_replay *r, int64_t now_ms)
{
    int64_t span = r->window_ms + r->skew_ms;

    if (now_ms < INT64_MIN + 1 + span)
        return INT64_MIN + 1;
    return now_ms - span;
}

/* sql_err - the gg_err of a failed SQLite call on db (logged). */
static gg_err sql_err(sqlite3 *db, const char *what, int rc)
{
    gg_error("replay", "msg=\"replay store failed\" op=%s err=\"%s\"", what, sqlite3_errmsg(db));
    return (rc & 0xff) == SQLITE_FULL ? GG_ENOSPC : GG_EIO;
}

/* read_int - the first column of the first row of sql, or GG_EIO. */
static gg_err read_int(sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *s = NULL;
    gg_err rc = GG_EIO;

    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(s) != SQLITE_ROW)
        goto out;
    *v = sqlite3_column_int64(s, 0);
    rc = GG_OK;
out:
    sqlite3_finalize(s);
    return rc;
}

/* ---- open, import, close ------------------------------------------------ */

/* op_open - create or check the tables, read the horizon and the count,
 * prepare the statements (once). */
static gg_err op_open(sqlite3 *db, void *arg)
{
    gg_replay *r = arg;
    int64_t version = 0;
    int rc = sqlite3_exec(db, schema, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return sql_err(db, "open.schema", rc);
    if (read_int(db, "SELECT v FROM replay_meta WHERE k = 'version'", &version) != GG_OK ||
        version != 1 ||
        read_int(db, "SELECT v FROM replay_meta WHERE k = 'horizon'", &r->horizon) != GG_OK ||
        read_int(db, "SELECT count(*) FROM replay_seen", &r->count) != GG_OK) {
        gg_error("replay", "msg=\"replay tables unreadable or of another version\" version=%lld",
                 (long long)version);
        return GG_EIO;
    }
    for (int i = 0; i < Q_N; i++) {
        if (r->q[i] == NULL) {
            rc = sqlite3_prepare_v3(db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &r->q[i],
                                    NULL);
            if (rc != SQLITE_OK)
                return sql_err(db, "open.prepare", rc);
        }
    }
    return GG_OK;
}

/* op_close - finalize the statements (under the store's lock). */
static gg_err op_close(sqlite3 *db, void *arg)
{
    gg_replay *r = arg;

    (void)db;
    for (int i = 0; i < Q_N; i++) {
        sqlite3_finalize(r->q[i]);
        r->q[i] = NULL;
    }
    return GG_OK;
}

struct import_args {
    gg_replay *r;
    sqlite3 *old;          /* the old file, open */
    int64_t old_horizon;
    int64_t imported;      /* out */
};

/* op_import - copy the old file's rows at or above both horizons, raise
 * the horizon to the old one. Ids already present keep their row. */
static gg_err op_import(sqlite3 *db, void *arg)
{
    struct import_args *a = arg;
    gg_replay *r = a->r;
    int64_t low = a->old_horizon > r->horizon ? a->old_horizon : r->horizon;
    sqlite3_stmt *s = NULL, *ins = r->q[Q_INS], *h = r->q[Q_HORIZON];
    gg_err err = GG_OK;
    int rc;

    a->imported = 0;
    rc = sqlite3_prepare_v2(a->old, "SELECT id, created_ms, local_id FROM seen"
                            " WHERE created_ms >= ?1 AND length(id) = 16", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return sql_err(a->old, "import.read", rc);
    sqlite3_bind_int64(s, 1, low);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        sqlite3_reset(ins);
        sqlite3_bind_blob(ins, 1, sqlite3_column_blob(s, 0), 16, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 2, sqlite3_column_int64(s, 1));
        sqlite3_bind_int64(ins, 3, sqlite3_column_int64(s, 2));
        rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE) {
            err = sql_err(db, "import.insert", rc);
            goto out;
        }
        a->imported += sqlite3_changes(db);
    }
    if (rc != SQLITE_DONE) {
        err = sql_err(a->old, "import.read", rc);
        goto out;
    }
    sqlite3_reset(h);
    sqlite3_bind_int64(h, 1, low);
    rc = sqlite3_step(h);
    sqlite3_reset(h);
    if (rc != SQLITE_DONE)
        err = sql_err(db, "import.horizon", rc);
out:
    sqlite3_clear_bindings(ins);
    sqlite3_finalize(s);
    return err;
}

/* import_old - import the live ids of the replay file at path, if there
 * is one. */
static gg_err import_old(gg_replay *r, const char *path)
{
    struct import_args a = { r, NULL, 0, 0 };
    int64_t version = 0;
    gg_err err = GG_EIO;

    if (path == NULL || (access(path, F_OK) != 0 && errno == ENOENT))
        return GG_OK;
    if (sqlite3_open_v2(path, &a.old, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(a.old, 5000);
    if (read_int(a.old, "SELECT v FROM meta WHERE k = 'version'", &version) != GG_OK ||
        version != 1 ||
        read_int(a.old, "SELECT v FROM meta WHERE k = 'horizon'", &a.old_horizon) != GG_OK)
        goto out;
    err = gg_store_exec(r->st, "replay_import", op_import, &a, 1);
    if (err != GG_OK)
        goto out;
    pthread_mutex_lock(&r->mu);
    r->count += a.imported;
    if (a.old_horizon > r->horizon)
        r->horizon = a.old_horizon;
    pthread_mutex_unlock(&r->mu);
    gg_info("replay", "msg=\"imported the live ids of an old replay file; it may be deleted\""
            " path=%s imported=%lld", path, (long long)a.imported);
out:
    if (err != GG_OK)
        gg_error("replay", "msg=\"cannot import the old replay file\" path=%s err=\"%s\"", path,
                 a.old != NULL ? sqlite3_errmsg(a.old) : "open");
    sqlite3_close(a.old);
    return err == GG_OK || err == GG_ENOSPC || err == GG_ECLOSED ? err : GG_EIO;
}

gg_err gg_replay_open(const gg_replay_cfg *cfg, gg_store *st, gg_replay **out)
{
    gg_replay *r = NULL;
    gg_err rc;

    *out = NULL;
    if (cfg == NULL || st == NULL || cfg->window_ms < 1 || cfg->skew_ms < 0 ||
        cfg->max_entries < 1)
        return GG_EINVAL;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return GG_ENOMEM;
    pthread_mutex_init(&r->mu, NULL);
    r->st = st;
    r->window_ms = cfg->window_ms;
    r->skew_ms = cfg->skew_ms;
    r->max_entries = cfg->max_entries;
    rc = gg_store_exec(st, "replay_open", op_open, r, 1);
    if (rc == GG_OK)
        rc = import_old(r, cfg->import_path);
    if (rc != GG_OK) {
        gg_error("replay", "msg=\"cannot open the replay tables\" err=%s", gg_errname(rc));
        gg_replay_close(r);
        return rc;
    }
    gg_info("replay", "msg=\"replay store open\" live=%lld window_ms=%lld skew_ms=%lld max=%lld",
            (long long)r->count, (long long)r->window_ms, (long long)r->skew_ms,
            (long long)r->max_entries);
    *out = r;
    return GG_OK;
}

gg_err gg_replay_open_config(const gg_config *cfg, gg_store *st, gg_replay **out)
{
    char buf[4096];
    gg_replay_cfg rc;

    rc.import_path = gg_config_path_beside_store(cfg, "security.replay_db", "replay.db", buf,
                                                 sizeof buf);
    if (rc.import_path == NULL)
        return GG_EINVAL;
    rc.window_ms = gg_config_int(cfg, "security.freshness_ms");
    rc.skew_ms = gg_config_int(cfg, "security.clock_skew_ms");
    rc.max_entries = gg_config_int(cfg, "security.replay_max");
    return gg_replay_open(&rc, st, out);
}

void gg_replay_close(gg_replay *r)
{
    if (r == NULL)
        return;
    gg_store_side_locked(r->st, op_close, r);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- checks ----------------------------------------------------------- */

struct check_args {
    gg_replay *r;
    gg_replay_item *items;
    size_t n;
    int64_t now_ms;
    int64_t added, deleted;   /* out: rows this run inserted / pruned */
};

/* step_done - step s (bound by the caller) to its end and reset it. */
static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* lookup - 1 and *local_id if id is in replay_seen, 0 if not; else the
 * negated SQLite error. */
static int lookup(gg_replay *r, const uint8_t id[16], int64_t *local_id)
{
    sqlite3_stmt *s = r->q[Q_FIND];
    int rc, found;

    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *local_id = sqlite3_column_int64(s, 0);
        found = 1;
    } else {
        found = rc == SQLITE_DONE ? 0 : -rc;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return found;
}

/* prune - delete rows below cutoff(now) and raise the horizon to it, in
 * the op's transaction (invariant 1); the memory horizon follows at once
 * (it only refuses more). */
static gg_err prune(sqlite3 *db, struct check_args *a)
{
    gg_replay *r = a->r;
    int64_t c = cutoff(r, a->now_ms);
    int rc;

    sqlite3_bind_int64(r->q[Q_HORIZON], 1, c);
    rc = step_done(r->q[Q_HORIZON]);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(r->q[Q_DEL], 1, c);
        rc = step_done(r->q[Q_DEL]);
    }
    if (rc != SQLITE_OK)
        return sql_err(db, "prune", rc);
    a->deleted = sqlite3_changes(db);
    pthread_mutex_lock(&r->mu);
    if (c > r->horizon)
        r->horizon = c;
    pthread_mutex_unlock(&r->mu);
    return GG_OK;
}

/* timely - GG_RV_STALE or GG_RV_FUTURE for an item the clock and the
 * horizon refuse (invariant 2), else -1: it must be looked up. */
static int timely(gg_replay *r, const gg_replay_item *it, int64_t now_ms)
{
    int64_t low;

    pthread_mutex_lock(&r->mu);
    low = cutoff(r, now_ms);
    if (r->horizon > low)
        low = r->horizon;
    pthread_mutex_unlock(&r->mu);
    if (it->created_ms < low)
        return GG_RV_STALE;
    if (now_ms <= INT64_MAX - r->skew_ms && it->created_ms > now_ms + r->skew_ms)
        return GG_RV_FUTURE;
    return -1;
}

/* judge - the verdict of one timely item, inside the transaction; a fresh
 * new id is inserted and counted in flight. */
static gg_err judge(sqlite3 *db, struct check_args *a, gg_replay_item *it)
{
    gg_replay *r = a->r;
    int64_t live, seen_local = 0;
    int found, rc;

    found = lookup(r, it->msg_id, &seen_local);
    if (found < 0)
        return sql_err(db, "lookup", -found);
    if (found) {
        it->verdict = seen_local == it->local_id ? GG_RV_REDELIVERY : GG_RV_REPLAY;
        return GG_OK;
    }
    pthread_mutex_lock(&r->mu);
    live = r->count + r->inflight - a->deleted;
    pthread_mutex_unlock(&r->mu);
    if (live >= r->max_entries) {
        it->verdict = GG_RV_FULL;
        return GG_OK;
    }
    sqlite3_bind_blob(r->q[Q_INS], 1, it->msg_id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(r->q[Q_INS], 2, it->created_ms);
    sqlite3_bind_int64(r->q[Q_INS], 3, it->local_id);
    rc = step_done(r->q[Q_INS]);
    if (rc != SQLITE_OK)
        return sql_err(db, "insert", rc);
    it->verdict = GG_RV_FRESH;
    a->added++;
    pthread_mutex_lock(&r->mu);
    r->inflight++;
    pthread_mutex_unlock(&r->mu);
    return GG_OK;
}

/* settle - forget this op's rows in flight (a rerun starts again; the
 * caller settles after the commit). */
static void settle(struct check_args *a, int committed)
{
    gg_replay *r = a->r;

    pthread_mutex_lock(&r->mu);
    r->inflight -= a->added;
    if (committed)
        r->count += a->added - a->deleted;
    pthread_mutex_unlock(&r->mu);
    a->added = 0;
    a->deleted = 0;
}

/* op_check - judge the clock of every item; if any is timely, prune if
 * due (or full) and look each timely one up, in order. The database is
 * not touched, nor the horizon raised, for a batch of stale or future
 * items only (a message from far ahead must not make the store forget). */
static gg_err op_check(sqlite3 *db, void *arg)
{
    struct check_args *a = arg;
    gg_replay *r = a->r;
    int do_prune, any = 0;
    gg_err err = GG_OK;

    settle(a, 0);
    for (size_t i = 0; i < a->n; i++) {
        int t = timely(r, &a->items[i], a->now_ms);

        a->items[i].verdict = t < 0 ? GG_RV_FRESH : (gg_replay_verdict)t;
        any |= t < 0;
    }
    if (!any)
        return GG_OK;
    pthread_mutex_lock(&r->mu);
    do_prune = r->count + r->inflight >= r->max_entries ||
               a->now_ms - r->last_prune >= PRUNE_EVERY_MS || a->now_ms < r->last_prune;
    if (do_prune)
        r->last_prune = a->now_ms;
    pthread_mutex_unlock(&r->mu);
    if (do_prune)
        err = prune(db, a);
    for (size_t i = 0; err == GG_OK && i < a->n; i++) {
        if (a->items[i].verdict == GG_RV_FRESH)
            err = judge(db, a, &a->items[i]);
    }
    return err;
}

/* gg_replay_check_batch - the clock first, without the store: a batch of
 * stale or future items only is decided here; else one store op. */
gg_err gg_replay_check_batch(gg_replay *r, gg_replay_item *items, size_t n, int64_t now_ms)
{
    struct check_args a = { r, items, n, now_ms, 0, 0 };
    gg_err err;
    size_t i;

    for (i = 0; i < n; i++) {
        int t = timely(r, &items[i], now_ms);

        if (t < 0)
            break;
        items[i].verdict = (gg_replay_verdict)t;
    }
    if (i == n)
        return GG_OK;
    err = gg_store_exec(r->st, "replay_check", op_check, &a, 0);
    settle(&a, err == GG_OK);
    return err;
}

gg_err gg_replay_check(gg_replay *r, const uint8_t msg_id[16], int64_t created_ms,
                       int64_t local_id, int64_t now_ms, gg_replay_verdict *v)
{
    gg_replay_item it;
    gg_err err;

    memset(&it, 0, sizeof it);
    memcpy(it.msg_id, msg_id, sizeof it.msg_id);
    it.created_ms = created_ms;
    it.local_id = local_id;
    err = gg_replay_check_batch(r, &it, 1, now_ms);
    if (err == GG_OK)
        *v = it.verdict;
    return err;
}

int64_t gg_replay_count(gg_replay *r)
{
    int64_t n;

    pthread_mutex_lock(&r->mu);
    n = r->count + r->inflight;
    pthread_mutex_unlock(&r->mu);
    return n;
}

const char *gg_replay_verdict_name(gg_replay_verdict v)
{
    static const char *const names[] = { "fresh", "redelivery", "stale", "future", "replay",
                                          "replay_full" };

    if ((unsigned)v < sizeof names / sizeof names[0])
        return names[v];
    return "unknown";
}
