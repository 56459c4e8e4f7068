/* revoke.c - revoked binding tokens (SQLite).
 *
 * Schema: revoked(token_id TEXT PRIMARY KEY, expiry_ms INTEGER, revoked_ms
 * INTEGER). Invariant: a row is deleted only after its expiry_ms, when
 * gg_token_verify refuses the token by itself (GG_EEXPIRED).
 */
#include "envelope/revoke.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"

struct gg_revoke {
    pthread_mutex_t mu;
    sqlite3 *db;
    sqlite3_stmt *find;
    sqlite3_stmt *ins;
    sqlite3_stmt *prune;
};

/* id_ok - 32 lower-case hex digits. */
static int id_ok(const char *id)
{
    size_t n = strnlen(id, 33);

    return n == 32 && strspn(id, "0123456789abcdef") == 32;
}

gg_err gg_revoke_open(const char *path, gg_revoke **out)
{
    gg_revoke *r = calloc(1, sizeof *r);
    gg_err rc = GG_EIO;

    *out = NULL;
    if (r == NULL)
        return GG_ENOMEM;
    pthread_mutex_init(&r->mu, NULL);
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(r->db, 5000);
    if (sqlite3_exec(r->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE IF NOT EXISTS revoked(token_id TEXT PRIMARY KEY,"
                     " expiry_ms INTEGER NOT NULL, revoked_ms INTEGER NOT NULL) WITHOUT ROWID;",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_prepare_v2(r->db, "SELECT 1 FROM revoked WHERE token_id = ?1", -1, &r->find,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "INSERT OR IGNORE INTO revoked(token_id, expiry_ms, revoked_ms)"
                           " VALUES (?1, ?2, ?3)", -1, &r->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "DELETE FROM revoked WHERE expiry_ms < ?1", -1, &r->prune,
                           NULL) != SQLITE_OK)
        goto out;
    rc = GG_OK;
out:
    if (rc != GG_OK) {
        gg_error("revoke", "msg=\"cannot open revocation list\" path=%s err=\"%s\"", path,
                 r->db ? sqlite3_errmsg(r->db) : "open");
        gg_revoke_close(r);
        return rc;
    }
    *out = r;
    return GG_OK;
}

gg_err gg_revoke_open_config(const gg_config *cfg, gg_revoke **out)
{
    char buf[4096];
    const char *path = gg_config_path_beside_store(cfg, "security.revoked_db", "revoked.db",
                                                   buf, sizeof buf);

    if (path == NULL)
        return GG_EINVAL;
    return gg_revoke_open(path, out);
}

void gg_revoke_close(gg_revoke *r)
{
    if (r == NULL)
        return;
    sqlite3_finalize(r->find);
    sqlite3_finalize(r->ins);
    sqlite3_finalize(r->prune);
    sqlite3_close(r->db);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* step_done - run a prepared statement to completion and reset it. */
static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE;
}

gg_err gg_revoke_add(gg_revoke *r, const char *token_id, int64_t expiry_ms, int64_t now_ms)
{
    gg_err rc = GG_EIO;

    if (token_id == NULL || !id_ok(token_id))
        return GG_EINVAL;
    pthread_mutex_lock(&r->mu);
    if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(r->prune, 1, now_ms);
    if (!step_done(r->prune))
        goto rollback;
    sqlite3_bind_text(r->ins, 1, token_id, 32, SQLITE_STATIC);
    sqlite3_bind_int64(r->ins, 2, expiry_ms);
    sqlite3_bind_int64(r->ins, 3, now_ms);
    if (!step_done(r->ins))
        goto rollback;
    if (sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
        rc = GG_OK;
        goto out;
    }
rollback:
    gg_error("revoke", "msg=\"cannot record revocation\" err=\"%s\"", sqlite3_errmsg(r->db));
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

gg_err gg_revoke_check(gg_revoke *r, const char *token_id, int *revoked)
{
    gg_err rc = GG_OK;
    int s;

    *revoked = 1;   /* fail closed */
    if (token_id == NULL || !id_ok(token_id))
        return GG_EINVAL;
    pthread_mutex_lock(&r->mu);
    sqlite3_bind_text(r->find, 1, token_id, 32, SQLITE_STATIC);
    s = sqlite3_step(r->find);
    if (s == SQLITE_ROW)
        *revoked = 1;
    else if (s == SQLITE_DONE)
        *revoked = 0;
    else
        rc = GG_EIO;
    sqlite3_reset(r->find);
    sqlite3_clear_bindings(r->find);
    pthread_mutex_unlock(&r->mu);
    return rc;
}
