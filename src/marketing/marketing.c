/* marketing.c - the SQLite adapter to the marketing system (marketing.h).
 *
 * One connection, opened read-write in WAL mode with a busy timeout, and
 * one prepared statement per query, reused. Values that do not fit the
 * fixed-size fields of gg_account / gg_bill are an error (GG_EIO), never
 * silently truncated. Personal data is never logged.
 */
#include "marketing/marketing.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "marketing/mkt_int.h"
#include "marketing/pg.h"

#define MKT_BUSY_TIMEOUT_MS 5000

struct gg_mkt {
    sqlite3 *db;
    sqlite3_stmt *st_account;
    sqlite3_stmt *st_bills;
    sqlite3_stmt *st_tariff;
    sqlite3_stmt *st_usage_day;   /* prepared on first use */
    sqlite3_stmt *st_usage_month;
    int usage_prepared;           /* st_usage_month reads gg_usage_monthly */
    int64_t usage_retry_ms;       /* when to look for gg_usage_monthly again */
    mkt_pg *pg;                   /* set: every call goes to pg.c instead */
};

static const char sql_account[] =
    "SELECT account_no, holder_name, phone, id_no, address, district, tariff_code, status"
    " FROM accounts WHERE account_no = ?1";
static const char sql_bills[] =
    "SELECT bill_id, period, kwh, kwh_peak, kwh_valley, amount_fen, due_date, status"
    " FROM bills WHERE account_no = ?1 AND period >= ?2 AND period <= ?3"
    " ORDER BY period, bill_id LIMIT ?4";
static const char sql_tariff[] =
    "SELECT tariff_code, name, kind, tier1_max_kwh, tier2_max_kwh, price_t1, price_t2,"
    " price_t3, peak_price, valley_price, surcharge_t1, surcharge_t2, surcharge_t3"
    " FROM tariffs WHERE tariff_code = ?1";

/* db_err - log an SQLite failure and map it. */
static gg_err db_err(sqlite3 *db, int rc, const char *what)
{
    int base = rc & 0xff;
    gg_error("marketing", "msg=\"sqlite failed\" op=%s rc=%d err=\"%s\"", what, rc,
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    if (base == SQLITE_BUSY || base == SQLITE_LOCKED)
        return GG_EBUSY;
    if (base == SQLITE_NOMEM)
        return GG_ENOMEM;
    if (base == SQLITE_FULL)
        return GG_ENOSPC;
    return GG_EIO;
}

/* copy_col - column col as text into out (size outsz); NULL is "". */
static gg_err copy_col(sqlite3_stmt *st, int col, char *out, size_t outsz, const char *what)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);

    if (!t) {
        out[0] = '\0';
        return GG_OK;
    }
    if (n >= outsz) {
        gg_error("marketing", "msg=\"value too long\" column=%s bytes=%zu max=%zu", what, n,
                 outsz - 1);
        return GG_EIO;
    }
    memcpy(out, t, n);
    out[n] = '\0';
    return GG_OK;
}

/* check_schema - meta.schema_version must be ours. */
static gg_err check_schema(gg_mkt *m, const char *path)
{
    sqlite3_stmt *st = NULL;
    gg_err err = GG_EINVAL;
    int rc = sqlite3_prepare_v2(m->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1,
                                &st, NULL);

    if (rc != SQLITE_OK) {
        gg_error("marketing", "msg=\"not a marketing database\" path=%s err=\"%s\"", path,
                 sqlite3_errmsg(m->db));
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (v && atoi(v) == GG_MKT_SCHEMA_VERSION)
            err = GG_OK;
        else
            gg_error("marketing", "msg=\"unsupported schema version\" path=%s version=%s want=%d",
                     path, v ? v : "null", GG_MKT_SCHEMA_VERSION);
    } else if (rc == SQLITE_DONE) {
        gg_error("marketing", "msg=\"no schema version\" path=%s", path);
    } else {
        err = db_err(m->db, rc, "schema_version");
    }
out:
    sqlite3_finalize(st);
    return err;
}

gg_err gg_mkt_open(const char *path, gg_mkt **out)
{
    gg_mkt *m = NULL;
    gg_err err = GG_OK;
    int rc;

    *out = NULL;
    if (!path)
        return GG_EINVAL;
    if (access(path, F_OK) != 0) {
        gg_error("marketing", "msg=\"no marketing database\" path=%s", path);
        return GG_ENOTFOUND;
    }
    m = calloc(1, sizeof *m);
    if (!m)
        return GG_ENOMEM;
    rc = sqlite3_open_v2(path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err = db_err(m->db, rc, "open");
        goto out;
    }
    sqlite3_busy_timeout(m->db, MKT_BUSY_TIMEOUT_MS);
    rc = sqlite3_exec(m->db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;", NULL, NULL,
                      NULL);
    if (rc != SQLITE_OK) {
        err = (rc & 0xff) == SQLITE_NOTADB ? GG_EINVAL : db_err(m->db, rc, "wal");
        goto out;
    }
    err = check_schema(m, path);
    if (err != GG_OK)
        goto out;
    rc = sqlite3_prepare_v3(m->db, sql_account, -1, SQLITE_PREPARE_PERSISTENT, &m->st_account,
                            NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(m->db, sql_bills, -1, SQLITE_PREPARE_PERSISTENT, &m->st_bills,
                                NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(m->db, sql_tariff, -1, SQLITE_PREPARE_PERSISTENT, &m->st_tariff,
                                NULL);
    if (rc != SQLITE_OK) {
        err = (rc & 0xff) == SQLITE_ERROR ? GG_EINVAL : db_err(m->db, rc, "prepare");
        if (err == GG_EINVAL)
            gg_error("marketing", "msg=\"schema mismatch\" path=%s err=\"%s\"", path,
                     sqlite3_errmsg(m->db));
        goto out;
    }
out:
    if (err != GG_OK) {
        gg_mkt_close(m);
        return err;
    }
    *out = m;
    return GG_OK;
}

/* gg_mkt_sqlite - the connection's SQLite handle, for the other files of
 * the SQLite adapter (ledger.c); see mkt_int.h. */
sqlite3 *gg_mkt_sqlite(gg_mkt *m)
{
    return m->db;
}

void gg_mkt_close(gg_mkt *m)
{
    if (!m)
        return;
    mkt_pg_close(m->pg);
    sqlite3_finalize(m->st_usage_day);
    sqlite3_finalize(m->st_usage_month);
    sqlite3_finalize(m->st_account);
    sqlite3_finalize(m->st_bills);
    sqlite3_finalize(m->st_tariff);
    sqlite3_close(m->db);
    free(m);
}

gg_err gg_mkt_account(gg_mkt *m, const char *account_no, gg_account *out)
{
    sqlite3_stmt *st = m->st_account;
    gg_err err = GG_OK;
    int rc;

    if (!account_no)
        return GG_EINVAL;
    if (m->pg)
        return mkt_pg_account(m->pg, account_no, out);
    sqlite3_bind_text(st, 1, account_no, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err = GG_ENOTFOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        err = db_err(m->db, rc, "account");
        goto out;
    }
    memset(out, 0, sizeof *out);
    err = copy_col(st, 0, out->account_no, sizeof out->account_no, "account_no");
    if (err == GG_OK)
        err = copy_col(st, 1, out->holder_name, sizeof out->holder_name, "holder_name");
    if (err == GG_OK)
        err = copy_col(st, 2, out->phone, sizeof out->phone, "phone");
    if (err == GG_OK)
        err = copy_col(st, 3, out->id_no, sizeof out->id_no, "id_no");
    if (err == GG_OK)
        err = copy_col(st, 4, out->address, sizeof out->address, "address");
    if (err == GG_OK)
        err = copy_col(st, 5, out->district, sizeof out->district, "district");
    if (err == GG_OK)
        err = copy_col(st, 6, out->tariff_code, sizeof out->tariff_code, "tariff_code");
    if (err == GG_OK)
        err = copy_col(st, 7, out->status, sizeof out->status, "status");
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

gg_err gg_mkt_sample_account(gg_mkt *m, gg_account *out)
{
    static const char *const sql[] = {
        "SELECT a.account_no FROM accounts a WHERE a.status = 'active' AND EXISTS "
        "(SELECT 1 FROM bills b WHERE b.account_no = a.account_no AND b.status <> 'paid') "
        "ORDER BY a.account_no LIMIT 1",
        "SELECT account_no FROM accounts WHERE status = 'active' ORDER BY account_no LIMIT 1",
    };
    gg_err err = GG_ENOTFOUND;
    if (m->pg)
        return mkt_pg_sample_account(m->pg, out);
    for (unsigned i = 0; i < 2 && err == GG_ENOTFOUND; i++) {
        sqlite3_stmt *st = NULL;
        char no[sizeof out->account_no];
        int rc = sqlite3_prepare_v2(m->db, sql[i], -1, &st, NULL);
        if (rc != SQLITE_OK)
            return db_err(m->db, rc, "sample account");
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            err = copy_col(st, 0, no, sizeof no, "account_no");
        else if (rc != SQLITE_DONE)
            err = db_err(m->db, rc, "sample account");
        sqlite3_finalize(st);
        if (rc == SQLITE_ROW && err == GG_OK)
            return gg_mkt_account(m, no, out);
    }
    return err;
}

/* read_bill - the current row of st_bills into b. */
static gg_err read_bill(sqlite3_stmt *st, gg_bill *b)
{
    gg_err err;

    memset(b, 0, sizeof *b);
    err = copy_col(st, 0, b->bill_id, sizeof b->bill_id, "bill_id");
    if (err == GG_OK)
        err = copy_col(st, 1, b->period, sizeof b->period, "period");
    if (err == GG_OK)
        err = copy_col(st, 6, b->due_date, sizeof b->due_date, "due_date");
    if (err == GG_OK)
        err = copy_col(st, 7, b->status, sizeof b->status, "status");
    b->kwh = sqlite3_column_int64(st, 2);
    b->kwh_peak = sqlite3_column_int64(st, 3);
    b->kwh_valley = sqlite3_column_int64(st, 4);
    b->amount_fen = sqlite3_column_int64(st, 5);
    return err;
}

gg_err gg_mkt_bills(gg_mkt *m, const char *account_no, const char *from, const char *to,
                    gg_bill **out, size_t *n)
{
    sqlite3_stmt *st = m->st_bills;
    gg_bill *v = NULL;
    size_t len = 0, cap = 0;
    gg_err err = GG_OK;
    int rc;

    *out = NULL;
    *n = 0;
    if (!account_no || !from || !to)
        return GG_EINVAL;
    if (m->pg)
        return mkt_pg_bills(m->pg, account_no, from, to, out, n);
    sqlite3_bind_text(st, 1, account_no, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, from, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, to, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, GG_MKT_BILLS_MAX + 1);
    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = db_err(m->db, rc, "bills");
            goto out;
        }
        if (len == GG_MKT_BILLS_MAX) {
            err = GG_ETOOBIG;
            goto out;
        }
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            gg_bill *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                err = GG_ENOMEM;
                goto out;
            }
            v = nv;
            cap = ncap;
        }
        err = read_bill(st, &v[len]);
        if (err != GG_OK)
            goto out;
        len++;
    }
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (err != GG_OK || len == 0) {
        free(v);
        return err;
    }
    *out = v;
    *n = len;
    return GG_OK;
}

gg_err gg_mkt_tariff(gg_mkt *m, const char *code, gg_tariff *out)
{
    sqlite3_stmt *st = m->st_tariff;
    const char *kind;
    gg_tariff t;
    gg_err err = GG_OK;
    int rc;

    if (!code)
        return GG_EINVAL;
    if (m->pg)
        return mkt_pg_tariff(m->pg, code, out);
    memset(&t, 0, sizeof t);
    sqlite3_bind_text(st, 1, code, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err = GG_ENOTFOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        err = db_err(m->db, rc, "tariff");
        goto out;
    }
    err = copy_col(st, 0, t.code, sizeof t.code, "tariff_code");
    if (err == GG_OK)
        err = copy_col(st, 1, t.name, sizeof t.name, "tariff_name");
    if (err != GG_OK)
        goto out;
    kind = (const char *)sqlite3_column_text(st, 2);
    if (kind && strcmp(kind, "flat") == 0) {
        t.kind = GG_TARIFF_FLAT;
    } else if (kind && strcmp(kind, "peak_valley") == 0) {
        t.kind = GG_TARIFF_PEAK_VALLEY;
    } else {
        err = GG_EINVAL;
        goto out;
    }
    t.tier1_max_kwh = sqlite3_column_int64(st, 3);
    t.tier2_max_kwh = sqlite3_column_int64(st, 4);
    for (int i = 0; i < 3; i++) {
        t.price[i] = sqlite3_column_int64(st, 5 + i);
        t.surcharge[i] = sqlite3_column_int64(st, 10 + i);
        if (t.price[i] < 0 || t.surcharge[i] < 0)
            err = GG_EINVAL;
    }
    t.peak_price = sqlite3_column_int64(st, 8);
    t.valley_price = sqlite3_column_int64(st, 9);
    if (t.tier1_max_kwh < 0 || t.tier2_max_kwh < t.tier1_max_kwh || t.peak_price < 0 ||
        t.valley_price < 0)
        err = GG_EINVAL;
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (err == GG_EINVAL)
        gg_error("marketing", "msg=\"inconsistent tariff row\" code=%s", code);
    if (err == GG_OK)
        *out = t;
    return err;
}

static const char sql_usage_day[] =
    "SELECT day, kwh_peak, kwh_valley FROM readings"
    " WHERE account_no = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day LIMIT ?4";
static const char sql_usage_month[] =
    "SELECT substr(day, 1, 7), sum(kwh_peak), sum(kwh_valley) FROM readings"
    " WHERE account_no = ?1 AND day >= ?2 || '-01' AND day <= ?3 || '-31'"
    " GROUP BY 1 ORDER BY 1 LIMIT ?4";
/* Months before meta.usage_monthly_through from the summaries of `gridgate
 * prepare` (prepare.c), the rest summed from the readings. */
static const char sql_usage_month_prep[] =
    "SELECT period, kwh_peak, kwh_valley FROM gg_usage_monthly"
    " WHERE account_no = ?1 AND period >= ?2 AND period <= ?3 AND period <"
    "  coalesce((SELECT value FROM meta WHERE key = 'usage_monthly_through'), '0000-00')"
    " UNION ALL "
    "SELECT substr(day, 1, 7), sum(kwh_peak), sum(kwh_valley) FROM readings"
    " WHERE account_no = ?1 AND day <= ?3 || '-31' AND day >= max(?2, coalesce((SELECT value"
    "  FROM meta WHERE key = 'usage_monthly_through'), '0000-00')) || '-01'"
    " GROUP BY 1 ORDER BY 1 LIMIT ?4";
#define USAGE_PREP_RETRY_MS 60000   /* how often to look for the summaries again */

/* gg_mkt_centi - kWh as a double to whole hundredths, half away from zero. */
int64_t gg_mkt_centi(double kwh)
{
    return (int64_t)llround(kwh * 100.0);
}

gg_err gg_mkt_usage(gg_mkt *m, const char *account_no, int month, const char *from,
                    const char *to, gg_usage **out, size_t *n)
{
    sqlite3_stmt **pst = month ? &m->st_usage_month : &m->st_usage_day;
    gg_usage *v = NULL;
    size_t len = 0;
    gg_err err = GG_OK;
    int rc;

    *out = NULL;
    *n = 0;
    if (!account_no || !from || !to)
        return GG_EINVAL;
    if (m->pg)
        return mkt_pg_usage(m->pg, account_no, month, from, to, out, n);
    if (month && !m->usage_prepared && gg_now_ms() >= m->usage_retry_ms) {
        /* summaries may have appeared since: use them from now on */
        sqlite3_stmt *p = NULL;

        m->usage_retry_ms = gg_now_ms() + USAGE_PREP_RETRY_MS;
        if (sqlite3_prepare_v3(m->db, sql_usage_month_prep, -1, SQLITE_PREPARE_PERSISTENT, &p,
                               NULL) == SQLITE_OK) {
            sqlite3_finalize(*pst);
            *pst = p;
            m->usage_prepared = 1;
        }
    }
    if (!*pst) {
        rc = sqlite3_prepare_v3(m->db, month ? sql_usage_month : sql_usage_day, -1,
                                SQLITE_PREPARE_PERSISTENT, pst, NULL);
        if (rc != SQLITE_OK)
            return db_err(m->db, rc, "prepare usage");
    }
    v = malloc((GG_MKT_USAGE_MAX) * sizeof *v);
    if (!v)
        return GG_ENOMEM;
    sqlite3_bind_text(*pst, 1, account_no, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(*pst, 2, from, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(*pst, 3, to, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(*pst, 4, GG_MKT_USAGE_MAX + 1);
    for (;;) {
        rc = sqlite3_step(*pst);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = db_err(m->db, rc, "usage");
            goto out;
        }
        if (len == GG_MKT_USAGE_MAX) {
            err = GG_ETOOBIG;
            goto out;
        }
        err = copy_col(*pst, 0, v[len].period, sizeof v[len].period, "period");
        if (err != GG_OK)
            goto out;
        v[len].peak_centi = gg_mkt_centi(sqlite3_column_double(*pst, 1));
        v[len].valley_centi = gg_mkt_centi(sqlite3_column_double(*pst, 2));
        len++;
    }
out:
    sqlite3_reset(*pst);
    sqlite3_clear_bindings(*pst);
    if (err != GG_OK || len == 0) {
        free(v);
        return err;
    }
    *out = v;
    *n = len;
    return GG_OK;
}

gg_err gg_mkt_open_pg(const char *conninfo, const char *queries, gg_mkt **out)
{
    gg_mkt *m;
    gg_err err;

    *out = NULL;
    if (!conninfo)
        return GG_EINVAL;
    m = calloc(1, sizeof *m);
    if (!m)
        return GG_ENOMEM;
    err = mkt_pg_open(conninfo, queries, &m->pg);
    if (err != GG_OK) {
        free(m);
        return err;
    }
    *out = m;
    return GG_OK;
}

mkt_pg *gg_mkt_pg(gg_mkt *m)
{
    return m ? m->pg : NULL;
}

const char *gg_mkt_backend(const gg_mkt *m)
{
    return m->pg ? "pg" : "sqlite";
}

gg_err gg_mkt_accounts(gg_mkt *m, size_t max, char (**out)[33], size_t *n)
{
    sqlite3_stmt *st = NULL;
    size_t len = 0;
    gg_err err = GG_OK;
    int rc;

    *out = NULL;
    *n = 0;
    if (m->pg)
        return mkt_pg_accounts(m->pg, max, out, n);
    rc = sqlite3_prepare_v2(m->db, "SELECT account_no FROM accounts WHERE status = 'active'"
                                   " ORDER BY account_no LIMIT ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_err(m->db, rc, "accounts");
    *out = calloc(max ? max : 1, sizeof **out);
    if (!*out) {
        sqlite3_finalize(st);
        return GG_ENOMEM;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
    while (err == GG_OK && len < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
        err = copy_col(st, 0, (*out)[len++], sizeof (*out)[0], "account_no");
    sqlite3_finalize(st);
    if (err != GG_OK) {
        free(*out);
        *out = NULL;
        return err;
    }
    *n = len;
    return GG_OK;
}
