/* ledger.c - payments, inbox and outbox on the SQLite marketing database
 * (ledger.h).
 *
 * Each function holds its SQL in one constant and prepares it per call
 * (these are writes, a few per payment: the prepare is cheap beside the
 * commit's fsync). Transactions are BEGIN IMMEDIATE, so a writer waits for
 * the lock up to the connection's busy timeout at the start instead of
 * failing at its first write.
 */
#include "marketing/ledger.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "marketing/mkt_int.h"
#include "marketing/pg.h"

static const char sql_init[] =
    "CREATE TABLE IF NOT EXISTS gg_inbox("
    " key TEXT PRIMARY KEY, txn TEXT NOT NULL, req_hash TEXT NOT NULL,"
    " result TEXT NOT NULL, created_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS gg_inbox_created ON gg_inbox(created_ms);"
    "CREATE TABLE IF NOT EXISTS gg_outbox("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,"
    " type TEXT NOT NULL, data TEXT NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS gg_marks(name TEXT PRIMARY KEY, value TEXT NOT NULL)"
    " WITHOUT ROWID;";

/* lerr - log an SQLite failure of op and map it to gg_err. */
static gg_err lerr(sqlite3 *db, int rc, const char *op)
{
    int base = rc & 0xff;

    if (base == SQLITE_CONSTRAINT)
        return GG_EEXISTS;
    gg_error("marketing", "msg=\"sqlite failed\" op=%s rc=%d err=\"%s\"", op, rc,
             db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    if (base == SQLITE_BUSY || base == SQLITE_LOCKED)
        return GG_EBUSY;
    if (base == SQLITE_NOMEM)
        return GG_ENOMEM;
    if (base == SQLITE_FULL)
        return GG_ENOSPC;
    return GG_EIO;
}

/* db_of - the SQLite handle, or NULL (logged) for another backend. */
static sqlite3 *db_of(gg_mkt *m, const char *op)
{
    sqlite3 *db = m != NULL ? gg_mkt_sqlite(m) : NULL;

    if (db == NULL)
        gg_error("marketing", "msg=\"not supported by this backend\" op=%s", op);
    return db;
}

/* prep - prepare sql on db; GG_OK or the mapped error. */
static gg_err prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *op)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);

    if (rc != SQLITE_OK) {
        *st = NULL;
        return lerr(db, rc, op);
    }
    return GG_OK;
}

/* prep_bound - prepare sql and bind ?1.. from the arguments, one per
 * letter of types: 's' a string (const char *), 'i' an int64_t. */
static gg_err prep_bound(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *op,
                         const char *types, ...)
{
    gg_err e = prep(db, sql, st, op);
    va_list ap;

    if (e != GG_OK)
        return e;
    va_start(ap, types);
    for (int i = 0; types[i] != '\0'; i++) {
        if (types[i] == 's')
            sqlite3_bind_text(*st, i + 1, va_arg(ap, const char *), -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(*st, i + 1, (sqlite3_int64)va_arg(ap, int64_t));
    }
    va_end(ap);
    return GG_OK;
}

/* step_done - run a bound write to its end and finalize it; *changed (may
 * be NULL) gets the rows it changed. GG_OK or the database error. */
static gg_err step_done(sqlite3 *db, sqlite3_stmt *st, const char *op, int64_t *changed)
{
    int rc = sqlite3_step(st);
    gg_err e = rc == SQLITE_DONE ? GG_OK : lerr(db, rc, op);

    if (e == GG_OK && changed != NULL)
        *changed = sqlite3_changes(db);
    sqlite3_finalize(st);
    return e;
}

/* list_rows - step a prepared, bound query (finalized here) and read up to
 * max rows of size elem into a new array with read(st, row). On success
 * *out and *n hold the rows (*out NULL and *n 0 when there are none); on
 * any error nothing is kept: the rows read so far go to drop(rows, count)
 * (free() when drop is NULL). */
static gg_err list_rows(sqlite3 *db, sqlite3_stmt *st, const char *op, size_t max, size_t elem,
                        gg_err (*read)(sqlite3_stmt *st, void *row),
                        void (*drop)(void *rows, size_t n), void **out, size_t *n)
{
    char *v = calloc(max, elem);
    size_t len = 0;
    gg_err e = v != NULL ? GG_OK : GG_ENOMEM;

    while (e == GG_OK && len < max) {
        int rc = sqlite3_step(st);

        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            e = lerr(db, rc, op);
            break;
        }
        e = read(st, v + elem * len++);
    }
    sqlite3_finalize(st);
    if (e != GG_OK || len == 0) {
        if (drop != NULL && v != NULL)
            drop(v, len);
        else
            free(v);
        return e;
    }
    *out = v;
    *n = len;
    return GG_OK;
}

/* lookup - prepare sql, bind key to ?1 and step. GG_OK with *st on the
 * row (the caller reads it, then finalizes *st); GG_ENOTFOUND when there
 * is none, or the database error; on anything but GG_OK *st is NULL. */
static gg_err lookup(sqlite3 *db, const char *sql, const char *key, sqlite3_stmt **st,
                     const char *op)
{
    gg_err e = prep(db, sql, st, op);
    int rc;

    if (e != GG_OK)
        return e;
    sqlite3_bind_text(*st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(*st);
    if (rc == SQLITE_ROW)
        return GG_OK;
    e = rc == SQLITE_DONE ? GG_ENOTFOUND : lerr(db, rc, op);
    sqlite3_finalize(*st);
    *st = NULL;
    return e;
}

/* step_one_change - run a bound write that must change exactly one row and
 * finalize it: GG_ENOTFOUND when it changed none, or the database error. */
static gg_err step_one_change(sqlite3 *db, sqlite3_stmt *st, const char *op)
{
    int rc = sqlite3_step(st);
    gg_err e = GG_OK;

    if (rc != SQLITE_DONE)
        e = lerr(db, rc, op);
    else if (sqlite3_changes(db) != 1)
        e = GG_ENOTFOUND;
    sqlite3_finalize(st);
    return e;
}

/* copy_text - text column col into out (size outsz); too long is GG_EIO. */
static gg_err copy_text(sqlite3_stmt *st, int col, char *out, size_t outsz)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);

    if (t == NULL) {
        out[0] = '\0';
        return GG_OK;
    }
    if (n >= outsz)
        return GG_EIO;
    memcpy(out, t, n);
    out[n] = '\0';
    return GG_OK;
}

/* exec - run one statement without rows. */
static gg_err exec(gg_mkt *m, const char *sql, const char *op)
{
    sqlite3 *db = db_of(m, op);
    int rc;

    if (db == NULL)
        return GG_EINVAL;
    rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? GG_OK : lerr(db, rc, op);
}

/* gg_mkt_has_ledger - both backends have the ledger (PostgreSQL: pg_ledger.c). */
int gg_mkt_has_ledger(gg_mkt *m)
{
    return m != NULL && (gg_mkt_sqlite(m) != NULL || gg_mkt_pg(m) != NULL);
}

/* gg_mkt_ledger_init - the inbox and outbox tables. */
gg_err gg_mkt_ledger_init(gg_mkt *m)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_init(gg_mkt_pg(m));
    return exec(m, sql_init, "ledger init");
}

/* gg_mkt_begin - BEGIN IMMEDIATE. */
gg_err gg_mkt_begin(gg_mkt *m)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pg_tx(gg_mkt_pg(m), "BEGIN");
    return exec(m, "BEGIN IMMEDIATE", "begin");
}

/* gg_mkt_commit - COMMIT, rolling back on failure. */
gg_err gg_mkt_commit(gg_mkt *m)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pg_tx(gg_mkt_pg(m), "COMMIT");
    gg_err e = exec(m, "COMMIT", "commit");

    if (e != GG_OK)
        gg_mkt_rollback(m);
    return e;
}

/* gg_mkt_rollback - ROLLBACK if a transaction is open. */
void gg_mkt_rollback(gg_mkt *m)
{
    if (gg_mkt_pg(m) != NULL) {
        mkt_pg_tx(gg_mkt_pg(m), "ROLLBACK");
        return;
    }
    sqlite3 *db = m != NULL ? gg_mkt_sqlite(m) : NULL;

    if (db != NULL && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* gg_mkt_inbox_get - look up one inbox record. */
gg_err gg_mkt_inbox_get(gg_mkt *m, const char *key, char *req_hash, char **result)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_inbox_get(gg_mkt_pg(m), key, req_hash, result);
    static const char sql[] = "SELECT req_hash, result FROM gg_inbox WHERE key = ?1";
    sqlite3 *db = db_of(m, "inbox get");
    sqlite3_stmt *st = NULL;
    const unsigned char *r;
    gg_err e;

    *result = NULL;
    if (db == NULL || key == NULL)
        return GG_EINVAL;
    e = lookup(db, sql, key, &st, "inbox get");
    if (e != GG_OK)
        return e;
    e = copy_text(st, 0, req_hash, GG_MKT_HASH_MAX);
    if (e != GG_OK)
        goto out;
    r = sqlite3_column_text(st, 1);
    *result = strdup(r != NULL ? (const char *)r : "");
    if (*result == NULL)
        e = GG_ENOMEM;
out:
    sqlite3_finalize(st);
    return e;
}

/* gg_mkt_inbox_put - insert one inbox record. */
gg_err gg_mkt_inbox_put(gg_mkt *m, const char *key, const char *txn, const char *req_hash,
                        const char *result, int64_t now_ms)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_inbox_put(gg_mkt_pg(m), key, txn, req_hash, result, now_ms);
    static const char sql[] =
        "INSERT INTO gg_inbox(key, txn, req_hash, result, created_ms) VALUES (?1,?2,?3,?4,?5)";
    sqlite3 *db = db_of(m, "inbox put");
    sqlite3_stmt *st = NULL;
    gg_err e;

    if (db == NULL || key == NULL || txn == NULL || req_hash == NULL || result == NULL)
        return GG_EINVAL;
    if (strlen(result) > GG_MKT_RESULT_MAX)
        return GG_ETOOBIG;
    e = prep_bound(db, sql, &st, "inbox put", "ssssi", key, txn, req_hash, result, now_ms);
    return e != GG_OK ? e : step_done(db, st, "inbox put", NULL);
}

/* gg_mkt_inbox_prune - drop records older than before_ms. */
gg_err gg_mkt_inbox_prune(gg_mkt *m, int64_t before_ms, int64_t *removed)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_inbox_prune(gg_mkt_pg(m), before_ms, removed);
    static const char sql[] = "DELETE FROM gg_inbox WHERE created_ms < ?1";
    sqlite3 *db = db_of(m, "inbox prune");
    sqlite3_stmt *st = NULL;
    gg_err e;

    if (removed != NULL)
        *removed = 0;
    if (db == NULL)
        return GG_EINVAL;
    e = prep_bound(db, sql, &st, "inbox prune", "i", before_ms);
    return e != GG_OK ? e : step_done(db, st, "inbox prune", removed);
}

/* read_due - the current row (bill_id, account_no, status, amount, paid)
 * into the gg_bill_due at row. */
static gg_err read_due(sqlite3_stmt *st, void *row)
{
    gg_bill_due *b = row;
    gg_err e;

    memset(b, 0, sizeof *b);
    e = copy_text(st, 0, b->bill_id, sizeof b->bill_id);
    if (e == GG_OK)
        e = copy_text(st, 1, b->account_no, sizeof b->account_no);
    if (e == GG_OK)
        e = copy_text(st, 2, b->status, sizeof b->status);
    b->amount_fen = sqlite3_column_int64(st, 3);
    b->paid_fen = sqlite3_column_int64(st, 4);
    return e;
}

/* gg_mkt_bill_due - one bill with the sum of its payments. */
gg_err gg_mkt_bill_due(gg_mkt *m, const char *bill_id, gg_bill_due *out)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_bill_due(gg_mkt_pg(m), bill_id, out);
    static const char sql[] =
        "SELECT b.bill_id, b.account_no, b.status, b.amount_fen,"
        " (SELECT coalesce(sum(p.amount_fen), 0) FROM payments p WHERE p.bill_id = b.bill_id)"
        " FROM bills b WHERE b.bill_id = ?1";
    sqlite3 *db = db_of(m, "bill due");
    sqlite3_stmt *st = NULL;
    gg_err e;

    if (db == NULL || bill_id == NULL)
        return GG_EINVAL;
    e = lookup(db, sql, bill_id, &st, "bill due");
    if (e != GG_OK)
        return e;
    e = read_due(st, out);
    sqlite3_finalize(st);
    return e;
}

/* gg_mkt_payment_post - the payment row and the bill's new status. */
gg_err gg_mkt_payment_post(gg_mkt *m, const gg_payment *p, const char *bill_status)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_payment_post(gg_mkt_pg(m), p, bill_status);
    static const char sql_ins[] =
        "INSERT INTO payments(payment_id, account_no, bill_id, amount_fen, payment_ref,"
        " posted_at) VALUES (?1,?2,?3,?4,?5,?6)";
    static const char sql_upd[] = "UPDATE bills SET status = ?2 WHERE bill_id = ?1";
    sqlite3 *db = db_of(m, "payment post");
    sqlite3_stmt *st = NULL;
    gg_err e;

    if (db == NULL || p == NULL || bill_status == NULL)
        return GG_EINVAL;
    e = prep_bound(db, sql_ins, &st, "payment insert", "sssiss", p->payment_id, p->account_no,
                   p->bill_id, (int64_t)p->amount_fen, p->payment_ref, p->posted_at);
    if (e == GG_OK)
        e = step_done(db, st, "payment insert", NULL);
    if (e == GG_OK)
        e = prep_bound(db, sql_upd, &st, "bill status", "ss", p->bill_id, bill_status);
    return e != GG_OK ? e : step_one_change(db, st, "bill status");
}

/* gg_mkt_bill_set_status - compare-and-set a bill's status. */
gg_err gg_mkt_bill_set_status(gg_mkt *m, const char *bill_id, const char *from, const char *to)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_bill_set_status(gg_mkt_pg(m), bill_id, from, to);
    static const char sql[] = "UPDATE bills SET status = ?3 WHERE bill_id = ?1 AND status = ?2";
    sqlite3 *db = db_of(m, "bill set status");
    sqlite3_stmt *st = NULL;
    gg_err e;

    if (db == NULL || bill_id == NULL || from == NULL || to == NULL)
        return GG_EINVAL;
    e = prep_bound(db, sql, &st, "bill set status", "sss", bill_id, from, to);
    return e != GG_OK ? e : step_one_change(db, st, "bill set status");
}

/* gg_mkt_overdue_list - unpaid bills past their due date. */
gg_err gg_mkt_overdue_list(gg_mkt *m, const char *today, size_t max, gg_bill_due **out,
                           size_t *n)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_overdue_list(gg_mkt_pg(m), today, max, out, n);
    static const char sql[] =
        "SELECT b.bill_id, b.account_no, b.status, b.amount_fen,"
        " (SELECT coalesce(sum(p.amount_fen), 0) FROM payments p WHERE p.bill_id = b.bill_id)"
        " FROM bills b WHERE b.status = 'unpaid' AND b.due_date < ?1"
        " ORDER BY b.due_date, b.bill_id LIMIT ?2";
    sqlite3 *db = db_of(m, "overdue list");
    sqlite3_stmt *st = NULL;
    gg_err e;

    *out = NULL;
    *n = 0;
    if (db == NULL || today == NULL || max == 0)
        return GG_EINVAL;
    e = prep_bound(db, sql, &st, "overdue list", "si", today, (int64_t)max);
    if (e != GG_OK)
        return e;
    return list_rows(db, st, "overdue list", max, sizeof **out, read_due, NULL, (void **)out, n);
}

/* gg_mkt_outbox_put - insert one event. */
gg_err gg_mkt_outbox_put(gg_mkt *m, const char *event_id, const char *type, const char *data,
                         int64_t now_ms)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_outbox_put(gg_mkt_pg(m), event_id, type, data, now_ms);
    static const char sql[] =
        "INSERT INTO gg_outbox(event_id, type, data, created_ms) VALUES (?1,?2,?3,?4)";
    sqlite3 *db = db_of(m, "outbox put");
    sqlite3_stmt *st = NULL;
    gg_err e;

    if (db == NULL || event_id == NULL || type == NULL || data == NULL ||
        strlen(type) >= GG_MKT_EVENT_TYPE_MAX)
        return GG_EINVAL;
    if (strlen(data) > GG_MKT_EVENT_DATA_MAX)
        return GG_ETOOBIG;
    e = prep_bound(db, sql, &st, "outbox put", "sssi", event_id, type, data, now_ms);
    return e != GG_OK ? e : step_done(db, st, "outbox put", NULL);
}

/* gg_outbox_free - free rows from gg_mkt_outbox_list. */
void gg_outbox_free(gg_outbox_row *rows, size_t n)
{
    for (size_t i = 0; rows != NULL && i < n; i++)
        free(rows[i].data);
    free(rows);
}

/* drop_outbox - list_rows' drop for outbox rows. */
static void drop_outbox(void *rows, size_t n)
{
    gg_outbox_free(rows, n);
}

/* read_outbox - the current row (seq, event_id, type, created_ms, data)
 * into the gg_outbox_row at row. */
static gg_err read_outbox(sqlite3_stmt *st, void *row)
{
    gg_outbox_row *r = row;
    const unsigned char *d = sqlite3_column_text(st, 4);
    gg_err e;

    r->seq = sqlite3_column_int64(st, 0);
    e = copy_text(st, 1, r->event_id, sizeof r->event_id);
    if (e == GG_OK)
        e = copy_text(st, 2, r->type, sizeof r->type);
    r->created_ms = sqlite3_column_int64(st, 3);
    r->data = strdup(d != NULL ? (const char *)d : "{}");
    if (e == GG_OK && r->data == NULL)
        e = GG_ENOMEM;
    return e;
}

/* gg_mkt_outbox_list - the oldest rows of the outbox. */
gg_err gg_mkt_outbox_list(gg_mkt *m, size_t max, gg_outbox_row **out, size_t *n)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_outbox_list(gg_mkt_pg(m), max, out, n);
    static const char sql[] =
        "SELECT seq, event_id, type, created_ms, data FROM gg_outbox ORDER BY seq LIMIT ?1";
    sqlite3 *db = db_of(m, "outbox list");
    sqlite3_stmt *st = NULL;
    gg_err e;

    *out = NULL;
    *n = 0;
    if (db == NULL || max == 0)
        return GG_EINVAL;
    e = prep_bound(db, sql, &st, "outbox list", "i", (int64_t)max);
    if (e != GG_OK)
        return e;
    return list_rows(db, st, "outbox list", max, sizeof **out, read_outbox, drop_outbox,
                     (void **)out, n);
}

/* gg_mkt_outbox_delete - remove one row. */
gg_err gg_mkt_outbox_delete(gg_mkt *m, int64_t seq)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_outbox_delete(gg_mkt_pg(m), seq);
    static const char sql[] = "DELETE FROM gg_outbox WHERE seq = ?1";
    sqlite3 *db = db_of(m, "outbox delete");
    sqlite3_stmt *st = NULL;
    gg_err e;

    if (db == NULL)
        return GG_EINVAL;
    e = prep_bound(db, sql, &st, "outbox delete", "i", seq);
    return e != GG_OK ? e : step_done(db, st, "outbox delete", NULL);
}

/* gg_mkt_mark_get - read a named mark. */
gg_err gg_mkt_mark_get(gg_mkt *m, const char *name, char *out, size_t outsz)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_mark_get(gg_mkt_pg(m), name, out, outsz);
    static const char sql[] = "SELECT value FROM gg_marks WHERE name = ?1";
    sqlite3 *db = db_of(m, "mark get");
    sqlite3_stmt *st = NULL;
    gg_err e;

    if (db == NULL || name == NULL)
        return GG_EINVAL;
    e = lookup(db, sql, name, &st, "mark get");
    if (e != GG_OK)
        return e;
    e = copy_text(st, 0, out, outsz);
    sqlite3_finalize(st);
    return e;
}

/* gg_mkt_mark_move - compare-and-set a named mark. */
gg_err gg_mkt_mark_move(gg_mkt *m, const char *name, const char *expected, const char *value)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_mark_move(gg_mkt_pg(m), name, expected, value);
    /* inserts a missing mark (expected "" never matches a stored value,
     * so a mark that exists but was not expected is left alone) */
    static const char sql[] =
        "INSERT INTO gg_marks(name, value) VALUES (?1, ?3)"
        " ON CONFLICT(name) DO UPDATE SET value = excluded.value WHERE gg_marks.value = ?2";
    sqlite3 *db = db_of(m, "mark move");
    sqlite3_stmt *st = NULL;
    gg_err e;

    if (db == NULL || name == NULL || expected == NULL || value == NULL || value[0] == '\0')
        return GG_EINVAL;
    e = prep_bound(db, sql, &st, "mark move", "sss", name, expected, value);
    return e != GG_OK ? e : step_one_change(db, st, "mark move");
}

/* read_issued - the current row (bill_id, account_no, period, issued_on,
 * due_date, amount) into the gg_bill_issued at row. */
static gg_err read_issued(sqlite3_stmt *st, void *row)
{
    gg_bill_issued *b = row;
    gg_err e = copy_text(st, 0, b->bill_id, sizeof b->bill_id);

    if (e == GG_OK)
        e = copy_text(st, 1, b->account_no, sizeof b->account_no);
    if (e == GG_OK)
        e = copy_text(st, 2, b->period, sizeof b->period);
    if (e == GG_OK)
        e = copy_text(st, 3, b->issued_on, sizeof b->issued_on);
    if (e == GG_OK)
        e = copy_text(st, 4, b->due_date, sizeof b->due_date);
    b->amount_fen = sqlite3_column_int64(st, 5);
    return e;
}

/* gg_mkt_issued_list - bills after a cursor, in issue order. */
gg_err gg_mkt_issued_list(gg_mkt *m, const char *after_issued, const char *after_bill,
                          size_t max, gg_bill_issued **out, size_t *n)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_issued_list(gg_mkt_pg(m), after_issued, after_bill, max, out, n);
    static const char sql[] =
        "SELECT bill_id, account_no, period, issued_on, due_date, amount_fen FROM bills"
        " WHERE (issued_on, bill_id) > (?1, ?2)"  /* a row value: the index can seek */
        " ORDER BY issued_on, bill_id LIMIT ?3";
    sqlite3 *db = db_of(m, "issued list");
    sqlite3_stmt *st = NULL;
    gg_err e;

    *out = NULL;
    *n = 0;
    if (db == NULL || after_issued == NULL || after_bill == NULL || max == 0)
        return GG_EINVAL;
    e = prep_bound(db, sql, &st, "issued list", "ssi", after_issued, after_bill, (int64_t)max);
    if (e != GG_OK)
        return e;
    return list_rows(db, st, "issued list", max, sizeof **out, read_issued, NULL, (void **)out,
                     n);
}

/* gg_mkt_issued_last - the newest (issued_on, bill_id). */
gg_err gg_mkt_issued_last(gg_mkt *m, char *out, size_t outsz)
{
    if (gg_mkt_pg(m) != NULL) /* PostgreSQL: pg_ledger.c */
        return mkt_pgl_issued_last(gg_mkt_pg(m), out, outsz);
    static const char sql[] =
        "SELECT issued_on || '|' || bill_id FROM bills ORDER BY issued_on DESC, bill_id DESC"
        " LIMIT 1";
    sqlite3 *db = db_of(m, "issued last");
    sqlite3_stmt *st = NULL;
    gg_err e;
    int rc;

    if (db == NULL)
        return GG_EINVAL;
    e = prep(db, sql, &st, "issued last");
    if (e != GG_OK)
        return e;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        e = copy_text(st, 0, out, outsz);
    else if (rc == SQLITE_DONE)
        snprintf(out, outsz, "|");
    else
        e = lerr(db, rc, "issued last");
    sqlite3_finalize(st);
    return e;
}
