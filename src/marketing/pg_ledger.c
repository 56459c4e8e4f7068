/* pg_ledger.c - payments, inbox and outbox (ledger.h) on PostgreSQL.
 *
 * The same contracts as the SQLite ledger.c, with the SQL from the queries
 * file (statements inbox_get .. outbox_delete, pg.c). gg_inbox and
 * gg_outbox are created when a connection opens (statement ledger_init).
 * These run inside the caller's transaction (gg_mkt_begin): a connection
 * lost there loses the transaction, which is GG_EBUSY, never retried here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "marketing/pg.h"

/* cp - value (row, col) into out (size outsz); too long is GG_EIO. */
static gg_err cp(const PGresult *r, int row, int col, char *out, size_t outsz)
{
    size_t n;

    if (col >= PQnfields(r))
        return GG_EIO;
    n = (size_t)PQgetlength(r, row, col);
    if (n >= outsz)
        return GG_EIO;
    memcpy(out, PQgetvalue(r, row, col), n);
    out[n] = '\0';
    return GG_OK;
}

/* i64 - value (row, col) as an integer. */
static int64_t i64(const PGresult *r, int row, int col)
{
    return col < PQnfields(r) ? strtoll(PQgetvalue(r, row, col), NULL, 10) : 0;
}

/* affected - rows changed by a command result. */
static long affected(PGresult *r)
{
    return strtol(PQcmdTuples(r), NULL, 10);
}

/* one - run a command and report its changed rows. */
static gg_err one(mkt_pg *pg, int q, const char *const *params, long *changed)
{
    PGresult *r;
    gg_err e = mkt_pg_run(pg, q, params, &r);

    if (e != GG_OK)
        return e;
    if (changed)
        *changed = affected(r);
    PQclear(r);
    return GG_OK;
}

gg_err mkt_pgl_init(mkt_pg *pg)
{
    (void)pg;  /* done at connect */
    return GG_OK;
}

gg_err mkt_pgl_inbox_get(mkt_pg *pg, const char *key, char *req_hash, char **result)
{
    const char *params[1] = { key };
    PGresult *r;
    gg_err e = mkt_pg_run(pg, Q_INBOX_GET, params, &r);

    *result = NULL;
    if (e != GG_OK)
        return e;
    if (PQntuples(r) == 0) {
        e = GG_ENOTFOUND;
        goto out;
    }
    e = cp(r, 0, 0, req_hash, GG_MKT_HASH_MAX);
    if (e == GG_OK) {
        *result = strdup(PQgetvalue(r, 0, 1));
        if (!*result)
            e = GG_ENOMEM;
    }
out:
    PQclear(r);
    return e;
}

gg_err mkt_pgl_inbox_put(mkt_pg *pg, const char *key, const char *txn, const char *req_hash,
                         const char *result, int64_t now_ms)
{
    char ms[24];
    const char *params[5] = { key, txn, req_hash, result, ms };

    if (strlen(result) > GG_MKT_RESULT_MAX)
        return GG_ETOOBIG;
    snprintf(ms, sizeof ms, "%lld", (long long)now_ms);
    return one(pg, Q_INBOX_PUT, params, NULL);
}

gg_err mkt_pgl_inbox_prune(mkt_pg *pg, int64_t before_ms, int64_t *removed)
{
    char ms[24];
    const char *params[1] = { ms };
    long n = 0;
    gg_err e;

    snprintf(ms, sizeof ms, "%lld", (long long)before_ms);
    e = one(pg, Q_INBOX_PRUNE, params, &n);
    if (removed)
        *removed = e == GG_OK ? n : 0;
    return e;
}

/* read_due - row of a bill_due / overdue_list result into the gg_bill_due at b. */
static gg_err read_due(const PGresult *r, int row, void *bp)
{
    gg_bill_due *b = bp;
    gg_err e;

    memset(b, 0, sizeof *b);
    e = cp(r, row, 0, b->bill_id, sizeof b->bill_id);
    if (e == GG_OK)
        e = cp(r, row, 1, b->account_no, sizeof b->account_no);
    if (e == GG_OK)
        e = cp(r, row, 2, b->status, sizeof b->status);
    b->amount_fen = i64(r, row, 3);
    b->paid_fen = i64(r, row, 4);
    return e;
}

gg_err mkt_pgl_bill_due(mkt_pg *pg, const char *bill_id, gg_bill_due *out)
{
    const char *params[1] = { bill_id };
    PGresult *r;
    gg_err e = mkt_pg_run(pg, Q_BILL_DUE, params, &r);

    if (e != GG_OK)
        return e;
    e = PQntuples(r) == 0 ? GG_ENOTFOUND : read_due(r, 0, out);
    PQclear(r);
    return e;
}

gg_err mkt_pgl_payment_post(mkt_pg *pg, const gg_payment *p, const char *bill_status)
{
    char amount[24];
    const char *ins[6] = { p->payment_id, p->account_no, p->bill_id, amount, p->payment_ref,
                           p->posted_at };
    const char *upd[2] = { p->bill_id, bill_status };
    long n = 0;
    gg_err e;

    snprintf(amount, sizeof amount, "%lld", (long long)p->amount_fen);
    e = one(pg, Q_PAYMENT_INSERT, ins, NULL);
    if (e == GG_OK)
        e = one(pg, Q_BILL_STATUS, upd, &n);
    if (e == GG_OK && n != 1)
        e = GG_ENOTFOUND;
    return e;
}

gg_err mkt_pgl_bill_set_status(mkt_pg *pg, const char *bill_id, const char *from,
                               const char *to)
{
    const char *params[3] = { bill_id, from, to };
    long n = 0;
    gg_err e = one(pg, Q_BILL_SET_STATUS, params, &n);

    return e == GG_OK && n != 1 ? GG_ENOTFOUND : e;
}

gg_err mkt_pgl_overdue_list(mkt_pg *pg, const char *today, size_t max, gg_bill_due **out,
                            size_t *n)
{
    char lim[24];
    const char *params[2] = { today, lim };

    *out = NULL;
    *n = 0;
    snprintf(lim, sizeof lim, "%zu", max);
    return mkt_pg_list(pg, Q_OVERDUE_LIST, params, sizeof **out, 0, read_due, NULL,
                       (void **)out, n);
}

gg_err mkt_pgl_outbox_put(mkt_pg *pg, const char *event_id, const char *type,
                          const char *data, int64_t now_ms)
{
    char ms[24];
    const char *params[4] = { event_id, type, data, ms };

    if (strlen(type) >= GG_MKT_EVENT_TYPE_MAX)
        return GG_EINVAL;
    if (strlen(data) > GG_MKT_EVENT_DATA_MAX)
        return GG_ETOOBIG;
    snprintf(ms, sizeof ms, "%lld", (long long)now_ms);
    return one(pg, Q_OUTBOX_PUT, params, NULL);
}

/* read_outbox - row i of an outbox_list result into the gg_outbox_row at row. */
static gg_err read_outbox(const PGresult *r, int i, void *row)
{
    gg_outbox_row *o = row;
    gg_err e;

    o->seq = i64(r, i, 0);
    e = cp(r, i, 1, o->event_id, sizeof o->event_id);
    if (e == GG_OK)
        e = cp(r, i, 2, o->type, sizeof o->type);
    o->created_ms = i64(r, i, 3);
    if (e == GG_OK) {
        o->data = strdup(PQgetvalue(r, i, 4));
        if (!o->data)
            e = GG_ENOMEM;
    }
    return e;
}

/* drop_outbox - mkt_pg_list's drop for outbox rows. */
static void drop_outbox(void *rows, size_t n)
{
    gg_outbox_free(rows, n);
}

gg_err mkt_pgl_outbox_list(mkt_pg *pg, size_t max, gg_outbox_row **out, size_t *n)
{
    char lim[24];
    const char *params[1] = { lim };

    *out = NULL;
    *n = 0;
    snprintf(lim, sizeof lim, "%zu", max);
    return mkt_pg_list(pg, Q_OUTBOX_LIST, params, sizeof **out, 0, read_outbox, drop_outbox,
                       (void **)out, n);
}

gg_err mkt_pgl_outbox_delete(mkt_pg *pg, int64_t seq)
{
    char s[24];
    const char *params[1] = { s };

    snprintf(s, sizeof s, "%lld", (long long)seq);
    return one(pg, Q_OUTBOX_DELETE, params, NULL);
}

gg_err mkt_pgl_mark_get(mkt_pg *pg, const char *name, char *out, size_t outsz)
{
    const char *params[1] = { name };
    PGresult *r;
    gg_err e = mkt_pg_run(pg, Q_MARK_GET, params, &r);

    if (e != GG_OK)
        return e;
    e = PQntuples(r) == 0 ? GG_ENOTFOUND : cp(r, 0, 0, out, outsz);
    PQclear(r);
    return e;
}

gg_err mkt_pgl_mark_move(mkt_pg *pg, const char *name, const char *expected, const char *value)
{
    const char *params[3] = { name, expected, value };
    long n = 0;
    gg_err e;

    if (!name || !expected || !value || value[0] == '\0')
        return GG_EINVAL;
    e = one(pg, Q_MARK_MOVE, params, &n);
    return e == GG_OK && n != 1 ? GG_ENOTFOUND : e;
}

/* read_issued - row i of an issued_list result into the gg_bill_issued at row. */
static gg_err read_issued(const PGresult *r, int i, void *row)
{
    gg_bill_issued *b = row;
    gg_err e = cp(r, i, 0, b->bill_id, sizeof b->bill_id);

    if (e == GG_OK)
        e = cp(r, i, 1, b->account_no, sizeof b->account_no);
    if (e == GG_OK)
        e = cp(r, i, 2, b->period, sizeof b->period);
    if (e == GG_OK)
        e = cp(r, i, 3, b->issued_on, sizeof b->issued_on);
    if (e == GG_OK)
        e = cp(r, i, 4, b->due_date, sizeof b->due_date);
    b->amount_fen = i64(r, i, 5);
    return e;
}

gg_err mkt_pgl_issued_list(mkt_pg *pg, const char *after_issued, const char *after_bill,
                           size_t max, gg_bill_issued **out, size_t *n)
{
    char lim[24];
    const char *params[3] = { after_issued, after_bill, lim };

    *out = NULL;
    *n = 0;
    if (!after_issued || !after_bill || max == 0)
        return GG_EINVAL;
    snprintf(lim, sizeof lim, "%zu", max);
    return mkt_pg_list(pg, Q_ISSUED_LIST, params, sizeof **out, 0, read_issued, NULL,
                       (void **)out, n);
}

gg_err mkt_pgl_issued_last(mkt_pg *pg, char *out, size_t outsz)
{
    PGresult *r;
    gg_err e = mkt_pg_run(pg, Q_ISSUED_LAST, NULL, &r);

    if (e != GG_OK)
        return e;
    if (PQntuples(r) == 0)
        snprintf(out, outsz, "|");
    else
        e = cp(r, 0, 0, out, outsz);
    PQclear(r);
    return e;
}
