/* txlog.c - transaction outcomes in a small SQLite file (txlog.h). */
#include "portal/txlog.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define TX_BUSY_MS 2000
#define TX_BODY_MAX (1 << 20)

/* The statements, prepared once (the loop runs them for every call; the
 * transaction's BEGIN and COMMIT too, which sqlite3_exec would parse anew
 * each time). */
enum { Q_BEGIN, Q_FINISH, Q_GET, Q_PRUNE, Q_HOLD, Q_COMMIT, Q_COUNT };

struct gg_txlog {
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
};

static const char *const q_sql[Q_COUNT] = {
    [Q_BEGIN] = "INSERT OR IGNORE INTO tx(txid, txn, created_ms, expiry_ms) VALUES (?1, ?2, ?3, ?4)",
    [Q_FINISH] = "INSERT INTO tx(txid, txn, created_ms, expiry_ms, http_status, done_ms, body)"
                 " VALUES (?1, ?2, ?4, ?4, ?5, ?4, ?3)"
                 " ON CONFLICT(txid) DO UPDATE SET http_status = excluded.http_status,"
                 " done_ms = excluded.done_ms, body = excluded.body WHERE tx.http_status = 0",
    [Q_GET] = "SELECT txid, txn, created_ms, expiry_ms, http_status, done_ms, body FROM tx"
              " WHERE txid = ?1",
    [Q_PRUNE] = "DELETE FROM tx WHERE created_ms < ?1",
    [Q_HOLD] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
};

static const char sql_schema[] =
    "CREATE TABLE IF NOT EXISTS tx("
    " txid TEXT PRIMARY KEY, txn TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    " expiry_ms INTEGER NOT NULL, http_status INTEGER NOT NULL DEFAULT 0,"
    " done_ms INTEGER NOT NULL DEFAULT 0, body TEXT) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS tx_created ON tx(created_ms);";

/* terr - log and map an SQLite error. */
static gg_err terr(sqlite3 *db, int rc, const char *op)
{
    gg_error("portal", "msg=\"transaction log failed\" op=%s rc=%d err=\"%s\"", op, rc,
             db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    if ((rc & 0xff) == SQLITE_BUSY)
        return GG_EBUSY;
    if ((rc & 0xff) == SQLITE_FULL)
        return GG_ENOSPC;
    return GG_EIO;
}

/* gg_txlog_open - open, WAL, schema. */
gg_err gg_txlog_open(const char *path, gg_txlog **out)
{
    gg_txlog *tl;
    gg_err e = GG_OK;
    int rc;

    *out = NULL;
    tl = calloc(1, sizeof *tl);
    if (tl == NULL)
        return GG_ENOMEM;
    rc = sqlite3_open_v2(path, &tl->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(tl->db, TX_BUSY_MS);
        rc = sqlite3_exec(tl->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL,
                          NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(tl->db, sql_schema, NULL, NULL, NULL);
    for (int i = 0; rc == SQLITE_OK && i < Q_COUNT; i++)
        rc = sqlite3_prepare_v3(tl->db, q_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &tl->q[i], NULL);
    if (rc != SQLITE_OK) {
        e = terr(tl->db, rc, "open");
        gg_txlog_close(tl);
        return e;
    }
    *out = tl;
    return GG_OK;
}

/* exec_q - run prepared statement q (no arguments, no rows) once; an
 * SQLite result code as sqlite3_exec's (SQLITE_OK when done). */
static int exec_q(gg_txlog *tl, int q)
{
    int rc = sqlite3_step(tl->q[q]);

    sqlite3_reset(tl->q[q]);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* gg_txlog_hold - BEGIN unless a transaction is open. */
gg_err gg_txlog_hold(gg_txlog *tl, int *opened)
{
    int rc;

    if (opened != NULL)
        *opened = 0;
    if (!sqlite3_get_autocommit(tl->db))
        return GG_OK;
    rc = exec_q(tl, Q_HOLD);
    if (rc != SQLITE_OK)
        return terr(tl->db, rc, "hold");
    if (opened != NULL)
        *opened = 1;
    return GG_OK;
}

/* gg_txlog_flush - COMMIT the open transaction, if any. */
gg_err gg_txlog_flush(gg_txlog *tl)
{
    gg_err e;
    int rc;

    if (tl == NULL || sqlite3_get_autocommit(tl->db))
        return GG_OK;
    rc = exec_q(tl, Q_COMMIT);
    if (rc == SQLITE_OK)
        return GG_OK;
    e = terr(tl->db, rc, "flush");
    if (!sqlite3_get_autocommit(tl->db))
        sqlite3_exec(tl->db, "ROLLBACK", NULL, NULL, NULL);
    return e;
}

/* gg_txlog_close - commit what is held and close; NULL is fine. */
void gg_txlog_close(gg_txlog *tl)
{
    if (tl == NULL)
        return;
    gg_txlog_flush(tl);
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(tl->q[i]);
    sqlite3_close(tl->db);
    free(tl);
}

/* run - statement q: bind text/int arguments by a tiny format, step once,
 * reset. fmt: 's' text, 'i' int64; args in order. */
static gg_err run(gg_txlog *tl, int q, const char *op, const char *fmt,
                  const char *s1, const char *s2, const char *s3, int64_t i1, int64_t i2,
                  int64_t i3)
{
    const char *ss[3] = { s1, s2, s3 };
    int64_t is[3] = { i1, i2, i3 };
    sqlite3_stmt *st = tl->q[q];
    int rc, col = 1, ns = 0, ni = 0;
    gg_err e = GG_OK;

    for (const char *f = fmt; *f != '\0'; f++, col++) {
        if (*f == 's')
            sqlite3_bind_text(st, col, ss[ns++], -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, col, is[ni++]);
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        e = terr(tl->db, rc, op);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return e;
}

/* gg_txlog_begin - insert a pending record unless one exists. */
gg_err gg_txlog_begin(gg_txlog *tl, const char *txid, const char *txn, int64_t created_ms,
                      int64_t expiry_ms)
{
    return run(tl, Q_BEGIN, "begin", "ssii", txid, txn, NULL, created_ms, expiry_ms, 0);
}

/* gg_txlog_finish - record the first outcome. */
gg_err gg_txlog_finish(gg_txlog *tl, const char *txid, const char *txn, int http_status,
                       const char *body, int64_t now_ms)
{
    if (body != NULL && strlen(body) > TX_BODY_MAX)
        body = NULL;
    return run(tl, Q_FINISH, "finish", "sssii", txid, txn, body, now_ms, http_status, 0);
}

/* gg_txlog_get - read one record. */
gg_err gg_txlog_get(gg_txlog *tl, const char *txid, gg_txrec *out)
{
    sqlite3_stmt *st = tl->q[Q_GET];
    const unsigned char *t;
    gg_err e = GG_OK;
    int rc;

    memset(out, 0, sizeof *out);
    sqlite3_bind_text(st, 1, txid, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        e = GG_ENOTFOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        e = terr(tl->db, rc, "get");
        goto out;
    }
    t = sqlite3_column_text(st, 0);
    snprintf(out->txid, sizeof out->txid, "%s", t != NULL ? (const char *)t : "");
    t = sqlite3_column_text(st, 1);
    snprintf(out->txn, sizeof out->txn, "%s", t != NULL ? (const char *)t : "");
    out->created_ms = sqlite3_column_int64(st, 2);
    out->expiry_ms = sqlite3_column_int64(st, 3);
    out->http_status = sqlite3_column_int(st, 4);
    out->done_ms = sqlite3_column_int64(st, 5);
    t = sqlite3_column_text(st, 6);
    if (t != NULL) {
        out->body = strdup((const char *)t);
        if (out->body == NULL)
            e = GG_ENOMEM;
    }
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return e;
}

/* gg_txrec_clear - free what a record owns. */
void gg_txrec_clear(gg_txrec *r)
{
    free(r->body);
    r->body = NULL;
}

/* gg_txlog_prune - drop old records. */
gg_err gg_txlog_prune(gg_txlog *tl, int64_t before_ms, int64_t *removed)
{
    gg_err e = run(tl, Q_PRUNE, "prune", "i", NULL, NULL, NULL, before_ms, 0, 0);

    if (removed != NULL)
        *removed = e == GG_OK ? sqlite3_changes(tl->db) : 0;
    return e;
}
