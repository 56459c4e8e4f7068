/* replay.c - freshness window and replay store, in the queue store's file
 * (contract in replay.h).
 *
 * Tables (version 1, in the store's file, written only inside the store's
 * transactions: by the ops of open, import and prune, and by this module's
 * pre-COMMIT hook, replay_hook):
 *   replay_seen(id BLOB PRIMARY KEY, created_ms, local_id)   one row per live id
 *   replay_meta(k TEXT PRIMARY KEY, v INTEGER)               'version', 'horizon'
 * (Earlier versions kept the same two tables, named seen and meta, in a
 * separate file, replay.db; gg_replay_open imports its live rows.)
 *
 * A check never waits for the store's writer. It decides from the claims
 * (ids judged fresh, in memory, not yet known committed) and the committed
 * rows, read on a read-only connection of its own (gg_store_side_reader:
 * WAL readers run beside the writer), and claims a fresh id at once. The
 * hook, which the store runs in every transaction just before its COMMIT,
 * writes the claims not yet written (and a prune that is due) into that
 * transaction; at its next run it learns whether that COMMIT succeeded:
 * if so the claims it wrote leave memory (their rows are committed), if
 * not they are written again.
 *
 * Claim states: new (gen 0) -> written (gen g: the hook run g wrote it)
 * -> gone (run g's COMMIT succeeded) or new again (it failed). A new claim
 * below the horizon is dropped (the horizon that makes it stale is
 * committed no later than anything else the store commits next).
 *
 * Invariants (cutoff(now) = now - window - skew):
 *  1. The stored horizon only grows, and is raised in the same transaction
 *     that deletes rows: every id with created_ms >= the stored horizon
 *     that was ever claimed and then committed is still in replay_seen.
 *  2. An envelope is fresh only if created_ms >= max(cutoff(now), horizon)
 *     and created_ms <= now + skew, horizon being the memory one (the
 *     stored one, raised at once by every prune asked for: it only refuses
 *     more). With 1, a timely id is a replay exactly when it is a claim or
 *     in replay_seen, whatever the clock did since (restart, backward
 *     step): a forward step raises the horizon, so the messages it let us
 *     forget stay stale after the clock comes back.
 *  3. Rows are deleted only below cutoff(now) of some check: a flood of new
 *     ids never evicts a live one; at max_entries live (committed rows
 *     plus claims) new ids are refused (GG_RV_FULL), after a prune in a
 *     store op of its own when rows below the horizon could be deleted.
 *  4. A claim is in memory from its check until the COMMIT that wrote it
 *     succeeded, and every store transaction writes the claims there are:
 *     so it is committed no later than the caller's next store call (the
 *     ack of the message, with its reply), made durable by that call's
 *     fsync. A process crash or a power cut before that ack loses the
 *     claim, and the message is still in the queue: it is delivered again
 *     and judged again, fresh once more, as after a crash before the check.
 *  5. All checks run under mu, which covers the claim lookup, the read of
 *     the committed rows and the claim: two copies of one id checked at
 *     the same time see each other, at most one is fresh. A claim leaves
 *     memory only after its row is committed, so a later read sees it.
 *
 * Lock order: the store's lock (the hook runs under it) before mu; a check
 * holds mu only, never a store lock (it calls the store, for a prune,
 * without mu).
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

/* Statements on the store's connection (ops and the hook, under its lock). */
enum rp_stmt { Q_INS, Q_DEL, Q_HORIZON, Q_N };

static const char *const stmt_sql[Q_N] = {
    [Q_INS] = "INSERT OR IGNORE INTO replay_seen(id, created_ms, local_id) VALUES (?1, ?2, ?3)",
    [Q_DEL] = "DELETE FROM replay_seen WHERE created_ms < ?1",
    [Q_HORIZON] = "UPDATE replay_meta SET v = max(v, ?1) WHERE k = 'horizon'",
};

/* Statements on the reader connection (checks, under mu). */
enum rd_stmt { R_FIND, R_BELOW, R_N };

static const char *const read_sql[R_N] = {
    [R_FIND] = "SELECT local_id FROM replay_seen WHERE id = ?1",
    [R_BELOW] = "SELECT 1 FROM replay_seen WHERE created_ms < ?1 LIMIT 1",
};

/* An id judged fresh, not yet known committed. */
typedef struct claim {
    uint8_t id[16];
    int64_t created_ms, local_id;
    uint64_t gen;                 /* 0: new; else the hook run that wrote it */
} claim;

struct gg_replay {
    gg_store *st;                 /* borrowed */
    sqlite3_stmt *q[Q_N];         /* on the store's connection */
    sqlite3 *rdb;                 /* the reader connection, used under mu */
    sqlite3_stmt *rq[R_N];
    int64_t window_ms, skew_ms, max_entries;
    int hooked;                   /* replay_hook is registered */
    pthread_mutex_t mu;           /* the fields below */
    int64_t horizon;              /* max(stored horizon, every prune asked for) */
    int64_t stored;               /* the horizon known committed */
    int64_t count;                /* committed rows, as far as known (see settle) */
    int64_t last_prune;
    claim *c;                     /* the claims, c[0..n) */
    size_t n, cap;
    uint32_t *slot;               /* hash index of c: index + 1, 0 = empty */
    size_t nslot;                 /* a power of two, >= 2 * cap */
    uint64_t gen;                 /* the last hook run that wrote */
    int w_open;                   /* run gen wrote; its COMMIT not yet known */
    int64_t w_added, w_deleted, w_horizon;   /* what run gen wrote */
    claim *wbuf;                  /* the hook's copy of the claims it writes */
    size_t wcap;
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
    if ((rc & 0xff) == SQLITE_NOMEM)
        return GG_ENOMEM;
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

/* step_done - step s (bound by the caller) to its end and reset it. */
static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- claims (under mu) -------------------------------------------------- */

/* id_hash - a hash of an id (ids are random, and authenticated). */
static size_t id_hash(const uint8_t id[16])
{
    uint64_t a, b, h;

    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    h = a ^ (b * 0x9E3779B97F4A7C15ull);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    return (size_t)h;
}

/* index_put - add claim i to the hash index (which has room). */
static void index_put(gg_replay *r, size_t i)
{
    size_t m = r->nslot - 1, k = id_hash(r->c[i].id) & m;

    while (r->slot[k] != 0)
        k = (k + 1) & m;
    r->slot[k] = (uint32_t)(i + 1);
}

/* index_build - the hash index of c[0..n) again, at least 2 * cap slots;
 * GG_ENOMEM (index unchanged) if it cannot grow. */
static gg_err index_build(gg_replay *r)
{
    size_t want = 16;

    while (want < 2 * r->cap)
        want *= 2;
    if (want != r->nslot) {
        uint32_t *s = calloc(want, sizeof *s);

        if (s == NULL)
            return GG_ENOMEM;
        free(r->slot);
        r->slot = s;
        r->nslot = want;
    } else {
        memset(r->slot, 0, r->nslot * sizeof *r->slot);
    }
    for (size_t i = 0; i < r->n; i++)
        index_put(r, i);
    return GG_OK;
}

/* claim_find - the claim of id, or NULL. */
static claim *claim_find(gg_replay *r, const uint8_t id[16])
{
    size_t m, k;

    if (r->n == 0)
        return NULL;
    m = r->nslot - 1;
    for (k = id_hash(id) & m; r->slot[k] != 0; k = (k + 1) & m) {
        claim *c = &r->c[r->slot[k] - 1];

        if (memcmp(c->id, id, 16) == 0)
            return c;
    }
    return NULL;
}

/* claim_add - claim a new id; GG_ENOMEM (nothing claimed) if out of memory. */
static gg_err claim_add(gg_replay *r, const gg_replay_item *it)
{
    claim *c;

    if (r->n == r->cap) {
        size_t ncap = r->cap ? 2 * r->cap : 64;
        claim *nc = realloc(r->c, ncap * sizeof *nc);

        if (nc == NULL)
            return GG_ENOMEM;
        r->c = nc;
        r->cap = ncap;
        if (index_build(r) != GG_OK) {
            r->cap = r->nslot / 2;   /* keep the index at least twice the claims */
            return GG_ENOMEM;
        }
    }
    c = &r->c[r->n];
    memcpy(c->id, it->msg_id, 16);
    c->created_ms = it->created_ms;
    c->local_id = it->local_id;
    c->gen = 0;
    index_put(r, r->n++);
    return GG_OK;
}

/* claims_keep - keep only the claims for which drop() is 0; reindex. */
static void claims_keep(gg_replay *r, int (*drop)(const gg_replay *, const claim *))
{
    size_t j = 0;

    for (size_t i = 0; i < r->n; i++) {
        if (!drop(r, &r->c[i]))
            r->c[j++] = r->c[i];
    }
    if (j == r->n)
        return;
    r->n = j;
    index_build(r);   /* same size: cannot fail */
}

/* stale_new - a new claim below the horizon (invariant 2: judged stale by
 * now; the horizon is committed no later than anything the store commits
 * next, so it need not be written). */
static int stale_new(const gg_replay *r, const claim *c)
{
    return c->gen == 0 && c->created_ms < r->horizon;
}

/* written_now - a claim the last hook run wrote, whose COMMIT succeeded. */
static int written_now(const gg_replay *r, const claim *c)
{
    return c->gen == r->gen;
}

/* raise_horizon - raise the memory horizon to h (a prune asked for, done
 * by the next store transaction's hook), forgetting new claims below it. */
static void raise_horizon(gg_replay *r, int64_t h)
{
    if (h <= r->horizon)
        return;
    r->horizon = h;
    claims_keep(r, stale_new);
}

/* ---- the pre-COMMIT hook ------------------------------------------------ */

/* settle - what hook run gen wrote: committed (its claims leave memory,
 * the count and the stored horizon follow) or not (written again). */
static void settle(gg_replay *r, int committed)
{
    if (!r->w_open)
        return;
    r->w_open = 0;
    if (committed) {
        r->count += r->w_added - r->w_deleted;
        if (r->w_horizon > r->stored)
            r->stored = r->w_horizon;
        claims_keep(r, written_now);
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (r->c[i].gen == r->gen)
            r->c[i].gen = 0;
    }
}

/* prune_rows - in the open transaction: raise the stored horizon to h and
 * delete the rows below it (invariant 1); *deleted gets how many. */
static gg_err prune_rows(sqlite3 *db, gg_replay *r, int64_t h, int64_t *deleted)
{
    int rc;

    sqlite3_bind_int64(r->q[Q_HORIZON], 1, h);
    rc = step_done(r->q[Q_HORIZON]);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(r->q[Q_DEL], 1, h);
        rc = step_done(r->q[Q_DEL]);
    }
    if (rc != SQLITE_OK)
        return sql_err(db, "prune", rc);
    *deleted = sqlite3_changes(db);
    return GG_OK;
}

/* insert_claims - in the open transaction: a row for each of w[0..k);
 * *added gets how many were new. */
static gg_err insert_claims(sqlite3 *db, gg_replay *r, const claim *w, size_t k,
                            int64_t *added)
{
    sqlite3_stmt *s = r->q[Q_INS];

    *added = 0;
    for (size_t i = 0; i < k; i++) {
        int rc;

        sqlite3_bind_blob(s, 1, w[i].id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, w[i].created_ms);
        sqlite3_bind_int64(s, 3, w[i].local_id);
        rc = step_done(s);
        if (rc != SQLITE_OK)
            return sql_err(db, "record", rc);
        *added += sqlite3_changes(db);
    }
    return GG_OK;
}

/* take_new - mark the new claims as written by run g and copy them into
 * r->wbuf; *k gets how many. GG_ENOMEM (nothing marked) if wbuf cannot
 * grow. Under mu. */
static gg_err take_new(gg_replay *r, uint64_t g, size_t *k)
{
    size_t m = 0;

    for (size_t i = 0; i < r->n; i++)
        m += r->c[i].gen == 0;
    if (m > r->wcap) {
        claim *w = realloc(r->wbuf, m * sizeof *w);

        if (w == NULL)
            return GG_ENOMEM;
        r->wbuf = w;
        r->wcap = m;
    }
    m = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->c[i].gen == 0) {
            r->c[i].gen = g;
            r->wbuf[m++] = r->c[i];
        }
    }
    *k = m;
    return GG_OK;
}

/* replay_hook - the store's pre-COMMIT hook: settle the last run, then
 * write the prune that is due and the new claims into this transaction.
 * The SQL runs without mu (checks go on meanwhile; what they claim is
 * written by the next transaction). Runs under the store's lock, so never
 * beside another run of itself. */
static gg_err replay_hook(sqlite3 *db, void *arg, int committed)
{
    gg_replay *r = arg;
    int64_t h, deleted = 0, added = 0;
    int do_prune;
    size_t k = 0;
    gg_err err;

    pthread_mutex_lock(&r->mu);
    settle(r, committed);
    claims_keep(r, stale_new);   /* claims a failed COMMIT gave back */
    h = r->horizon;
    do_prune = h > r->stored;
    err = take_new(r, r->gen + 1, &k);
    if (err == GG_OK && (do_prune || k > 0)) {
        r->gen++;
        r->w_open = 1;
        r->w_added = 0;
        r->w_deleted = 0;
        r->w_horizon = do_prune ? h : r->stored;
    }
    pthread_mutex_unlock(&r->mu);
    if (err != GG_OK || !(do_prune || k > 0))
        return err;
    if (do_prune)
        err = prune_rows(db, r, h, &deleted);
    if (err == GG_OK)
        err = insert_claims(db, r, r->wbuf, k, &added);
    /* On an error the COMMIT fails: the next run settles as not committed. */
    pthread_mutex_lock(&r->mu);
    r->w_added = added;
    r->w_deleted = deleted;
    pthread_mutex_unlock(&r->mu);
    return err;
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
    r->stored = r->horizon;
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

/* open_reader - the reader connection and its statements. */
static gg_err open_reader(gg_replay *r)
{
    gg_err err = gg_store_side_reader(r->st, &r->rdb);

    for (int i = 0; err == GG_OK && i < R_N; i++) {
        int rc = sqlite3_prepare_v3(r->rdb, read_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &r->rq[i], NULL);
        if (rc != SQLITE_OK)
            err = sql_err(r->rdb, "open.reader", rc);
    }
    return err;
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
    if (a.old_horizon > r->stored)
        r->stored = a.old_horizon;
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
    if (rc == GG_OK)
        rc = open_reader(r);
    if (rc == GG_OK) {
        rc = gg_store_side_hook(st, replay_hook, r);
        r->hooked = rc == GG_OK;
    }
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

/* op_flush - nothing: the transaction's hook writes what is in memory. */
static gg_err op_flush(sqlite3 *db, void *arg)
{
    (void)db;
    (void)arg;
    return GG_OK;
}

/* flush - before the hook goes: a durable store transaction, whose hook
 * writes the claims and the prune still in memory. */
static void flush(gg_replay *r)
{
    int due;
    gg_err err;

    pthread_mutex_lock(&r->mu);
    due = r->n > 0 || r->horizon > r->stored;
    pthread_mutex_unlock(&r->mu);
    if (!due)
        return;
    err = gg_store_exec(r->st, "replay_flush", op_flush, r, 1);
    if (err != GG_OK)
        gg_warn("replay", "msg=\"replay records of unacked messages not written at close\""
                " err=%s", gg_errname(err));
}

void gg_replay_close(gg_replay *r)
{
    if (r == NULL)
        return;
    if (r->hooked) {
        flush(r);
        gg_store_side_unhook(r->st, replay_hook, r);
    }
    for (int i = 0; i < R_N; i++)
        sqlite3_finalize(r->rq[i]);
    sqlite3_close(r->rdb);
    gg_store_side_locked(r->st, op_close, r);
    pthread_mutex_destroy(&r->mu);
    free(r->c);
    free(r->slot);
    free(r->wbuf);
    free(r);
}

/* ---- checks ------------------------------------------------------------- */

/* stored_find - 1 and *local_id if id is committed in replay_seen, 0 if
 * not; else the negated SQLite error. Under mu. */
static int stored_find(gg_replay *r, const uint8_t id[16], int64_t *local_id)
{
    sqlite3_stmt *s = r->rq[R_FIND];
    int rc, found;

    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *local_id = sqlite3_column_int64(s, 0);
        found = 1;
    } else {
        found = rc == SQLITE_DONE ? 0 : -rc;
    }
    sqlite3_reset(s);   /* ends the read transaction */
    sqlite3_clear_bindings(s);
    return found;
}

/* stored_below - 1 if a committed row lies below h (a prune would free
 * room), 0 if not; else the negated SQLite error. Under mu. */
static int stored_below(gg_replay *r, int64_t h)
{
    sqlite3_stmt *s = r->rq[R_BELOW];
    int rc;

    sqlite3_bind_int64(s, 1, h);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -rc;
}

/* timely - GG_RV_STALE or GG_RV_FUTURE for an item the clock and the
 * horizon refuse (invariant 2), else -1. Under mu. */
static int timely(gg_replay *r, const gg_replay_item *it, int64_t now_ms)
{
    int64_t low = cutoff(r, now_ms);

    if (r->horizon > low)
        low = r->horizon;
    if (it->created_ms < low)
        return GG_RV_STALE;
    if (now_ms <= INT64_MAX - r->skew_ms && it->created_ms > now_ms + r->skew_ms)
        return GG_RV_FUTURE;
    return -1;
}

/* ask_prune - if a prune is due (every PRUNE_EVERY_MS, after a backward
 * step, or when full), raise the horizon to cutoff(now): the next store
 * transaction writes it and deletes the rows below (replay_hook). */
static void ask_prune(gg_replay *r, int64_t now_ms)
{
    if (r->count + (int64_t)r->n < r->max_entries && now_ms - r->last_prune < PRUNE_EVERY_MS &&
        now_ms >= r->last_prune)
        return;
    r->last_prune = now_ms;
    raise_horizon(r, cutoff(r, now_ms));
}

/* judge - the verdict of one timely item; a fresh id is claimed (*mine
 * counts it). When full, *room is set if a store op would make room: rows
 * below the horizon to prune, or a prune not yet counted. Under mu. */
static gg_err judge(gg_replay *r, gg_replay_item *it, int64_t now_ms, size_t *mine, int *room)
{
    int64_t seen_local = 0;
    claim *c = claim_find(r, it->msg_id);
    int found;

    if (c != NULL) {
        it->verdict = c->local_id == it->local_id ? GG_RV_REDELIVERY : GG_RV_REPLAY;
        return GG_OK;
    }
    found = stored_find(r, it->msg_id, &seen_local);
    if (found < 0)
        return sql_err(r->rdb, "lookup", -found);
    if (found) {
        it->verdict = seen_local == it->local_id ? GG_RV_REDELIVERY : GG_RV_REPLAY;
        return GG_OK;
    }
    if (r->count + (int64_t)r->n >= r->max_entries) {
        ask_prune(r, now_ms);   /* drops no claim of this call: they are timely */
        if (r->count + (int64_t)r->n >= r->max_entries) {
            found = stored_below(r, r->horizon);
            if (found < 0)
                return sql_err(r->rdb, "lookup", -found);
            /* A store op also settles a prune the last hook run wrote,
             * which the count does not show yet. */
            *room |= found || (r->w_open && r->w_horizon > r->stored);
            it->verdict = GG_RV_FULL;
            return GG_OK;
        }
    }
    if (claim_add(r, it) != GG_OK)
        return GG_ENOMEM;
    (*mine)++;
    it->verdict = GG_RV_FRESH;
    return GG_OK;
}

/* judge_all - every verdict of items[0..n), in order. On an error, or when
 * retry is set and a prune would make room (*room), the claims of this
 * call (the last ones: a prune asked meanwhile drops only claims below
 * cutoff(now), older than every timely item) are dropped again. Under mu. */
static gg_err judge_all(gg_replay *r, gg_replay_item *items, size_t n, int64_t now_ms,
                        int retry, int *room)
{
    size_t mine = 0;
    int asked = 0;
    gg_err err = GG_OK;

    *room = 0;
    for (size_t i = 0; i < n && err == GG_OK; i++) {
        int t = timely(r, &items[i], now_ms);

        if (t >= 0) {
            items[i].verdict = (gg_replay_verdict)t;
            continue;
        }
        if (!asked) {
            /* Only for a timely item: one from far ahead must not make us forget. */
            ask_prune(r, now_ms);
            asked = 1;
        }
        err = judge(r, &items[i], now_ms, &mine, room);
    }
    if (mine > 0 && (err != GG_OK || (retry && *room))) {
        r->n -= mine;
        index_build(r);   /* same size: cannot fail */
    }
    return err;
}

struct prune_args {
    gg_replay *r;
    int64_t h;
    int64_t deleted;   /* out */
};

/* op_prune - raise the stored horizon to a->h and delete the rows below. */
static gg_err op_prune(sqlite3 *db, void *arg)
{
    struct prune_args *a = arg;

    return prune_rows(db, a->r, a->h, &a->deleted);
}

/* prune_now - the prune a full check needs, as a store op of its own (not
 * fsynced: what it deletes is only ever re-created by a power cut, and
 * the horizon it raises is already the memory one). */
static gg_err prune_now(gg_replay *r)
{
    struct prune_args a = { r, 0, 0 };
    gg_err err;

    pthread_mutex_lock(&r->mu);
    a.h = r->horizon;
    pthread_mutex_unlock(&r->mu);
    err = gg_store_exec(r->st, "replay_prune", op_prune, &a, 0);
    if (err != GG_OK)
        return err;
    pthread_mutex_lock(&r->mu);
    r->count -= a.deleted;
    if (a.h > r->stored)
        r->stored = a.h;
    pthread_mutex_unlock(&r->mu);
    return GG_OK;
}

/* gg_replay_check_batch - judge under mu from the claims and the committed
 * rows; only a full check whose room a prune would make calls the store
 * (once), and is judged again after it. */
gg_err gg_replay_check_batch(gg_replay *r, gg_replay_item *items, size_t n, int64_t now_ms)
{
    for (int round = 0;; round++) {
        int room = 0;
        gg_err err;

        pthread_mutex_lock(&r->mu);
        err = judge_all(r, items, n, now_ms, round == 0, &room);
        pthread_mutex_unlock(&r->mu);
        if (err != GG_OK || !room || round > 0)
            return err;
        err = prune_now(r);
        if (err != GG_OK)
            return err;
    }
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
    n = r->count + (int64_t)r->n;
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
