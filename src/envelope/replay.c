/* replay.c - freshness window and replay store (SQLite).
 *
 * Schema (version 1):
 *   seen(id BLOB PRIMARY KEY, created_ms, local_id)   one row per live id
 *   meta(k TEXT PRIMARY KEY, v INTEGER)               'version', 'horizon'
 *
 * Invariants (cutoff(now) = now - window - skew):
 *  1. The horizon only grows, and is raised in the same transaction that
 *     deletes rows: every id with created_ms >= horizon that was ever
 *     accepted is still in `seen`.
 *  2. An envelope is fresh only if created_ms >= max(cutoff(now), horizon)
 *     and created_ms <= now + skew. With 1, a fresh id is a replay exactly
 *     when it is in `seen`, whatever the clock did since (restart, backward
 *     step): a forward step raises the horizon, so the messages it let us
 *     forget stay stale after the clock comes back.
 *  3. Rows are deleted only below cutoff(now): a flood of new ids never
 *     evicts a live one; at max_entries new ids are refused (GG_RV_FULL).
 *  4. GG_RV_FRESH is returned only after the row is durable
 *     (synchronous=FULL, WAL).
 *
 * Group check: concurrent gg_replay_check callers (the utility's workers)
 * queue their item; whoever finds no check running takes the queue (up to
 * GROUP_MAX items) and runs it as one gg_replay_check_batch, one
 * transaction and one fsync, judged at the latest of the callers' clocks
 * (they differ by the time spent queueing). Each caller gets its own
 * verdict, or the batch's error. A lone caller runs at once.
 */
#include "envelope/replay.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include <stdio.h>

#define PRUNE_EVERY_MS 1000
#define GROUP_MAX 64

/* One queued gg_replay_check (on its caller's stack). */
typedef struct rp_wait {
    gg_replay_item it;
    int64_t now_ms;
    gg_err rc;
    int done;
    struct rp_wait *next;
} rp_wait;

struct gg_replay {
    pthread_mutex_t gmu;     /* the group queue below */
    pthread_cond_t gcv;
    rp_wait *head, *tail;
    int leading;             /* a group check is running */
    pthread_mutex_t mu;
    sqlite3 *db;
    sqlite3_stmt *find;
    sqlite3_stmt *ins;
    sqlite3_stmt *del;
    sqlite3_stmt *set_horizon;
    int64_t window_ms, skew_ms, max_entries;
    int64_t horizon;
    int64_t count;
    int64_t last_prune;
};

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS seen(id BLOB PRIMARY KEY, created_ms INTEGER NOT NULL,"
    " local_id INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS seen_created ON seen(created_ms);"
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO meta(k, v) VALUES ('version', 1), ('horizon', -9223372036854775807);";

/* cutoff - now - window - skew, saturating. */
static int64_t cutoff(const gg_replay *r, int64_t now_ms)
{
    int64_t span = r->window_ms + r->skew_ms;

    if (now_ms < INT64_MIN + 1 + span)
        return INT64_MIN + 1;
    return now_ms - span;
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

gg_err gg_replay_open(const gg_replay_cfg *cfg, gg_replay **out)
{
    gg_replay *r = NULL;
    int64_t version = 0;
    gg_err rc = GG_EIO;

    *out = NULL;
    if (cfg == NULL || cfg->path == NULL || cfg->window_ms < 1 || cfg->skew_ms < 0 ||
        cfg->max_entries < 1)
        return GG_EINVAL;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return GG_ENOMEM;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->gmu, NULL);
    pthread_cond_init(&r->gcv, NULL);
    r->window_ms = cfg->window_ms;
    r->skew_ms = cfg->skew_ms;
    r->max_entries = cfg->max_entries;
    if (sqlite3_open_v2(cfg->path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(r->db, 5000);
    if (sqlite3_exec(r->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                     NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_exec(r->db, schema, NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    if (read_int(r->db, "SELECT v FROM meta WHERE k = 'version'", &version) != GG_OK ||
        version != 1)
        goto out;
    if (read_int(r->db, "SELECT v FROM meta WHERE k = 'horizon'", &r->horizon) != GG_OK ||
        read_int(r->db, "SELECT count(*) FROM seen", &r->count) != GG_OK)
        goto out;
    if (sqlite3_prepare_v2(r->db, "SELECT local_id FROM seen WHERE id = ?1", -1, &r->find,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "INSERT INTO seen(id, created_ms, local_id) VALUES (?1, ?2, ?3)",
                           -1, &r->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "DELETE FROM seen WHERE created_ms < ?1", -1, &r->del,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "UPDATE meta SET v = ?1 WHERE k = 'horizon'", -1,
                           &r->set_horizon, NULL) != SQLITE_OK)
        goto out;
    rc = GG_OK;
out:
    if (rc != GG_OK) {
        gg_error("replay", "msg=\"cannot open replay store\" path=%s err=%s", cfg->path,
                 r->db ? sqlite3_errmsg(r->db) : "open");
        gg_replay_close(r);
        return rc;
    }
    gg_info("replay", "msg=\"replay store open\" path=%s live=%lld window_ms=%lld skew_ms=%lld "
            "max=%lld", cfg->path, (long long)r->count, (long long)r->window_ms,
            (long long)r->skew_ms, (long long)r->max_entries);
    *out = r;
    return GG_OK;
}

gg_err gg_replay_open_config(const gg_config *cfg, gg_replay **out)
{
    char buf[4096];
    gg_replay_cfg rc;

    rc.path = gg_config_path_beside_store(cfg, "security.replay_db", "replay.db", buf,
                                          sizeof buf);
    if (rc.path == NULL)
        return GG_EINVAL;
    rc.window_ms = gg_config_int(cfg, "security.freshness_ms");
    rc.skew_ms = gg_config_int(cfg, "security.clock_skew_ms");
    rc.max_entries = gg_config_int(cfg, "security.replay_max");
    return gg_replay_open(&rc, out);
}

void gg_replay_close(gg_replay *r)
{
    if (r == NULL)
        return;
    sqlite3_finalize(r->find);
    sqlite3_finalize(r->ins);
    sqlite3_finalize(r->del);
    sqlite3_finalize(r->set_horizon);
    sqlite3_close(r->db);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->gmu);
    pthread_cond_destroy(&r->gcv);
    free(r);
}

/* lookup - 1 and *local_id if id is in seen, 0 if not, -1 on error. */
static int lookup(gg_replay *r, const uint8_t id[16], int64_t *local_id)
{
    int rc, found = -1;

    sqlite3_reset(r->find);
    sqlite3_bind_blob(r->find, 1, id, 16, SQLITE_STATIC);
    rc = sqlite3_step(r->find);
    if (rc == SQLITE_ROW) {
        *local_id = sqlite3_column_int64(r->find, 0);
        found = 1;
    } else if (rc == SQLITE_DONE) {
        found = 0;
    }
    sqlite3_reset(r->find);
    sqlite3_clear_bindings(r->find);
    return found;
}

/* prune - inside a transaction: delete rows below cutoff(now), raise the
 * horizon to it (invariant 1). *deleted gets the row count. */
static gg_err prune(gg_replay *r, int64_t now_ms, int64_t *deleted)
{
    int64_t c = cutoff(r, now_ms);

    *deleted = 0;
    if (c <= r->horizon)
        return GG_OK;
    sqlite3_reset(r->set_horizon);
    sqlite3_bind_int64(r->set_horizon, 1, c);
    if (sqlite3_step(r->set_horizon) != SQLITE_DONE) {
        sqlite3_reset(r->set_horizon);
        return GG_EIO;
    }
    sqlite3_reset(r->set_horizon);
    sqlite3_reset(r->del);
    sqlite3_bind_int64(r->del, 1, c);
    if (sqlite3_step(r->del) != SQLITE_DONE) {
        sqlite3_reset(r->del);
        return GG_EIO;
    }
    sqlite3_reset(r->del);
    *deleted = sqlite3_changes(r->db);
    return GG_OK;
}

/* judge - the verdict of one fresh item inside the open transaction: the seen table (which holds this batch's
 * earlier inserts), then the entry limit; a fresh id is inserted. *added
 * counts inserts. GG_EIO on a database error. */
static gg_err judge(gg_replay *r, gg_replay_item *it, int64_t live, int64_t *added)
{
    int64_t seen_local = 0;
    int found;

    found = lookup(r, it->msg_id, &seen_local);
    if (found < 0)
        return GG_EIO;
    if (found) {
        it->verdict = seen_local == it->local_id ? GG_RV_REDELIVERY : GG_RV_REPLAY;
        return GG_OK;
    }
    if (live + *added >= r->max_entries) {
        it->verdict = GG_RV_FULL;
        return GG_OK;
    }
    sqlite3_reset(r->ins);
    sqlite3_bind_blob(r->ins, 1, it->msg_id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(r->ins, 2, it->created_ms);
    sqlite3_bind_int64(r->ins, 3, it->local_id);
    if (sqlite3_step(r->ins) != SQLITE_DONE) {
        sqlite3_reset(r->ins);
        return GG_EIO;
    }
    sqlite3_reset(r->ins);
    it->verdict = GG_RV_FRESH;
    (*added)++;
    return GG_OK;
}

/* gg_replay_check_batch - freshness first (no database), then one
 * transaction, opened only if some item is fresh enough to look up: prune
 * if due (or full), judge each item, commit. Memory state changes only
 * after the commit. */
gg_err gg_replay_check_batch(gg_replay *r, gg_replay_item *items, size_t n, int64_t now_ms)
{
    int64_t low, deleted = 0, added = 0;
    int do_prune, in_tx = 0;
    gg_err rc = GG_OK;
    size_t i;

    pthread_mutex_lock(&r->mu);
    low = cutoff(r, now_ms);
    if (r->horizon > low)
        low = r->horizon;
    do_prune = r->count >= r->max_entries || now_ms - r->last_prune >= PRUNE_EVERY_MS ||
               now_ms < r->last_prune;
    for (i = 0; i < n; i++) {
        gg_replay_item *it = &items[i];

        if (it->created_ms < low) {
            it->verdict = GG_RV_STALE;
            continue;
        }
        if (now_ms <= INT64_MAX - r->skew_ms && it->created_ms > now_ms + r->skew_ms) {
            it->verdict = GG_RV_FUTURE;
            continue;
        }
        if (!in_tx) {
            if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
                rc = GG_EIO;
                goto out;
            }
            in_tx = 1;
            if (do_prune && prune(r, now_ms, &deleted) != GG_OK) {
                rc = GG_EIO;
                goto out;
            }
        }
        rc = judge(r, it, r->count - deleted, &added);
        if (rc != GG_OK)
            goto out;
    }
    if (in_tx && sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = GG_EIO;
        goto out;
    }
    if (in_tx) {
        in_tx = 0;
        if (do_prune) {
            r->last_prune = now_ms;
            if (cutoff(r, now_ms) > r->horizon)
                r->horizon = cutoff(r, now_ms);
            r->count -= deleted;
        }
        r->count += added;
    }
out:
    if (rc != GG_OK) {
        if (in_tx)
            sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        gg_error("replay", "msg=\"replay store write failed\" err=\"%s\"", sqlite3_errmsg(r->db));
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* lead - run up to GROUP_MAX queued checks as one batch and hand each
 * caller its verdict. Called with gmu held and leading set; returns so. */
static void lead(gg_replay *r)
{
    gg_replay_item items[GROUP_MAX];
    rp_wait *taken[GROUP_MAX];
    int64_t now = INT64_MIN;
    size_t n = 0;
    gg_err rc;

    while (r->head != NULL && n < GROUP_MAX) {
        rp_wait *w = r->head;

        r->head = w->next;
        taken[n] = w;
        items[n] = w->it;
        if (w->now_ms > now)
            now = w->now_ms;
        n++;
    }
    if (r->head == NULL)
        r->tail = NULL;
    pthread_mutex_unlock(&r->gmu);
    rc = gg_replay_check_batch(r, items, n, now);
    pthread_mutex_lock(&r->gmu);
    for (size_t i = 0; i < n; i++) {
        taken[i]->it.verdict = items[i].verdict;
        taken[i]->rc = rc;
        taken[i]->done = 1;
    }
}

gg_err gg_replay_check(gg_replay *r, const uint8_t msg_id[16], int64_t created_ms,
                       int64_t local_id, int64_t now_ms, gg_replay_verdict *v)
{
    rp_wait w;

    memset(&w, 0, sizeof w);
    memcpy(w.it.msg_id, msg_id, sizeof w.it.msg_id);
    w.it.created_ms = created_ms;
    w.it.local_id = local_id;
    w.now_ms = now_ms;
    pthread_mutex_lock(&r->gmu);
    if (r->tail != NULL)
        r->tail->next = &w;
    else
        r->head = &w;
    r->tail = &w;
    while (!w.done) {
        if (r->leading) {
            pthread_cond_wait(&r->gcv, &r->gmu);
            continue;
        }
        r->leading = 1;
        lead(r);
        r->leading = 0;
        pthread_cond_broadcast(&r->gcv);
    }
    pthread_mutex_unlock(&r->gmu);
    if (w.rc == GG_OK)
        *v = w.it.verdict;
    return w.rc;
}

int64_t gg_replay_count(gg_replay *r)
{
    int64_t n;

    pthread_mutex_lock(&r->mu);
    n = r->count;
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
