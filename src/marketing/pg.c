/* pg.c - the PostgreSQL backend of the marketing adapter (pg.h).
 *
 * One libpq connection per gg_mkt (so one per utility worker: the pool is
 * the workers, bounded by the governor). Every statement is prepared once
 * per connection from the queries file (queries.h) and run with bound text
 * parameters, results in text form. A failure that leaves the connection
 * bad (server restart, network) is met by reconnecting, re-preparing and
 * running the read again, with backoff, for up to PG_RETRY_MS; only then is
 * GG_EBUSY returned (the service answers 503 backend_busy, retryable).
 * Errors the server reports on a good connection are not retried: SQLSTATE
 * classes 40 (serialization), 53 (resources), 55P03 and 57014 (lock,
 * cancel) map to GG_EBUSY, the rest to GG_EIO. Personal data is never logged.
 */
#include "marketing/pg.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"

#define PG_RETRY_MS 8000        /* how long a read keeps trying across reconnects */

static const gg_mkt_qdef pg_defs[Q_COUNT] = {
    { "schema_version", 0, "SELECT value FROM meta WHERE key = 'schema_version'" },
    { "account", 1,
      "SELECT account_no, holder_name, phone, id_no, address, district, tariff_code, status\n"
      "  FROM accounts WHERE account_no = $1" },
    { "bills", 4,
      "SELECT bill_id, period, kwh, kwh_peak, kwh_valley, amount_fen, due_date, status\n"
      "  FROM bills WHERE account_no = $1 AND period >= $2 AND period <= $3\n"
      "  ORDER BY period, bill_id LIMIT $4" },
    { "tariff", 1,
      "SELECT tariff_code, name, kind, tier1_max_kwh, tier2_max_kwh, price_t1, price_t2,\n"
      "       price_t3, peak_price, valley_price, surcharge_t1, surcharge_t2, surcharge_t3\n"
      "  FROM tariffs WHERE tariff_code = $1" },
    { "sample_account", 0,
      "SELECT a.account_no FROM accounts a WHERE a.status = 'active'\n"
      "  ORDER BY NOT EXISTS (SELECT 1 FROM bills b WHERE b.account_no = a.account_no\n"
      "                       AND b.status <> 'paid'), a.account_no LIMIT 1" },
    { "usage_day", 4,
      "SELECT day, kwh_peak, kwh_valley FROM readings\n"
      "  WHERE account_no = $1 AND day >= $2 AND day <= $3 ORDER BY day LIMIT $4" },
    { "usage_month", 4,
      "SELECT period, kwh_peak, kwh_valley FROM gg_usage_monthly\n"
      "  WHERE account_no = $1 AND period >= $2 AND period <= $3 AND period <\n"
      "    coalesce((SELECT value FROM meta WHERE key = 'usage_monthly_through'), '0000-00')\n"
      "UNION ALL\n"
      "SELECT substr(day, 1, 7), sum(kwh_peak), sum(kwh_valley) FROM readings\n"
      "  WHERE account_no = $1 AND day <= $3 || '-31' AND day >= greatest($2,\n"
      "    coalesce((SELECT value FROM meta WHERE key = 'usage_monthly_through'), '0000-00'))\n"
      "    || '-01'\n"
      "  GROUP BY 1 ORDER BY 1 LIMIT $4" },
    { "ledger_init", 0,
      "CREATE TABLE IF NOT EXISTS gg_inbox(key text PRIMARY KEY, txn text NOT NULL,\n"
      "  req_hash text NOT NULL, result text NOT NULL, created_ms bigint NOT NULL);\n"
      "CREATE INDEX IF NOT EXISTS gg_inbox_created ON gg_inbox(created_ms);\n"
      "CREATE TABLE IF NOT EXISTS gg_outbox(seq bigserial PRIMARY KEY,\n"
      "  event_id text NOT NULL UNIQUE, type text NOT NULL, data text NOT NULL,\n"
      "  created_ms bigint NOT NULL);\n"
      "CREATE TABLE IF NOT EXISTS gg_marks(name text PRIMARY KEY, value text NOT NULL);\n"
      "CREATE TABLE IF NOT EXISTS gg_usage_monthly(account_no text NOT NULL,\n"
      "  period text NOT NULL, kwh_peak double precision NOT NULL,\n"
      "  kwh_valley double precision NOT NULL, days bigint NOT NULL,\n"
      "  PRIMARY KEY (account_no, period))" },
    { "inbox_get", 1, "SELECT req_hash, result FROM gg_inbox WHERE key = $1" },
    { "inbox_put", 5,
      "INSERT INTO gg_inbox(key, txn, req_hash, result, created_ms) VALUES ($1, $2, $3, $4, $5)" },
    { "inbox_prune", 1, "DELETE FROM gg_inbox WHERE created_ms < $1" },
    { "bill_due", 1,
      "SELECT b.bill_id, b.account_no, b.status, b.amount_fen,\n"
      "       (SELECT coalesce(sum(p.amount_fen), 0) FROM payments p WHERE p.bill_id = b.bill_id)\n"
      "  FROM bills b WHERE b.bill_id = $1" },
    { "payment_insert", 6,
      "INSERT INTO payments(payment_id, account_no, bill_id, amount_fen, payment_ref, posted_at)\n"
      "  VALUES ($1, $2, $3, $4, $5, $6)" },
    { "bill_status", 2, "UPDATE bills SET status = $2 WHERE bill_id = $1" },
    { "bill_set_status", 3, "UPDATE bills SET status = $3 WHERE bill_id = $1 AND status = $2" },
    { "overdue_list", 2,
      "SELECT b.bill_id, b.account_no, b.status, b.amount_fen,\n"
      "       (SELECT coalesce(sum(p.amount_fen), 0) FROM payments p WHERE p.bill_id = b.bill_id)\n"
      "  FROM bills b WHERE b.status = 'unpaid' AND b.due_date < $1\n"
      "  ORDER BY b.due_date, b.bill_id LIMIT $2" },
    { "outbox_put", 4,
      "INSERT INTO gg_outbox(event_id, type, data, created_ms) VALUES ($1, $2, $3, $4)" },
    { "outbox_list", 1,
      "SELECT seq, event_id, type, created_ms, data FROM gg_outbox ORDER BY seq LIMIT $1" },
    { "outbox_delete", 1, "DELETE FROM gg_outbox WHERE seq = $1" },
    { "prepare_usage", 0,
      "DELETE FROM gg_usage_monthly;\n"
      "INSERT INTO meta(key, value)\n"
      "  SELECT 'usage_monthly_through', coalesce(substr(max(day), 1, 7), '0000-00') FROM readings\n"
      "  ON CONFLICT (key) DO UPDATE SET value = excluded.value;\n"
      "INSERT INTO gg_usage_monthly\n"
      "  SELECT account_no, substr(day, 1, 7), sum(kwh_peak), sum(kwh_valley), count(*)\n"
      "  FROM readings WHERE day < (SELECT value FROM meta\n"
      "                             WHERE key = 'usage_monthly_through') || '-01'\n"
      "  GROUP BY 1, 2" },
    { "accounts", 1,
      "SELECT account_no FROM accounts WHERE status = 'active' ORDER BY account_no LIMIT $1" },
    { "mark_get", 1, "SELECT value FROM gg_marks WHERE name = $1" },
    /* no longer run (the sweep moves its mark with mark_move); still
     * known, so that a queries file written for an earlier version loads */
    { "mark_set", 2,
      "INSERT INTO gg_marks(name, value) VALUES ($1, $2)\n"
      "  ON CONFLICT (name) DO UPDATE SET value = excluded.value" },
    { "issued_list", 3,
      "SELECT bill_id, account_no, period, issued_on, due_date, amount_fen FROM bills\n"
      "  WHERE (issued_on, bill_id) > ($1, $2)\n"
      "  ORDER BY issued_on, bill_id LIMIT $3" },
    { "issued_last", 0,
      "SELECT issued_on || '|' || bill_id FROM bills\n"
      "  ORDER BY issued_on DESC, bill_id DESC LIMIT 1" },
    { "mark_move", 3,
      "INSERT INTO gg_marks(name, value) VALUES ($1, $3)\n"
      "  ON CONFLICT (name) DO UPDATE SET value = excluded.value WHERE gg_marks.value = $2" },
};

struct mkt_pg {
    PGconn *conn;
    char *conninfo;
    gg_mkt_queries *q;
    int in_tx;               /* between BEGIN and COMMIT/ROLLBACK */
};

const gg_mkt_qdef *gg_mkt_pg_defaults(size_t *n)
{
    *n = Q_COUNT;
    return pg_defs;
}

/* stmt_name - the prepared statement's name for query i. */
static void stmt_name(size_t i, char out[48])
{
    snprintf(out, 48, "gg_%s", pg_defs[i].name);
}

/* sleep_ms - pause between reconnect attempts. */
static void sleep_ms(int64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* first_line - the first line of a libpq message, for one log line. */
static void first_line(const char *msg, char *out, size_t outsz)
{
    size_t i;

    for (i = 0; msg && msg[i] && msg[i] != '\n' && i + 1 < outsz; i++)
        out[i] = msg[i] == '"' ? '\'' : msg[i];
    out[i] = '\0';
}

/* quiet_notice - server notices ("relation exists, skipping") go to the
 * debug log, not to stderr. */
static void quiet_notice(void *arg, const char *message)
{
    char msg[256];

    (void)arg;
    first_line(message, msg, sizeof msg);
    gg_debug("marketing", "msg=\"PostgreSQL notice\" notice=\"%s\"", msg);
}

/* connect_pg - a new connection with every statement prepared. GG_EIO when
 * the server cannot be reached, GG_EINVAL when a statement does not
 * prepare (schema or queries file mismatch). */
static gg_err connect_pg(mkt_pg *pg)
{
    char name[48], msg[256];
    gg_err e = GG_OK;

    if (pg->conn)
        PQfinish(pg->conn);
    pg->conn = PQconnectdb(pg->conninfo);
    if (!pg->conn)
        return GG_ENOMEM;
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        first_line(PQerrorMessage(pg->conn), msg, sizeof msg);
        gg_warn("marketing", "msg=\"cannot connect to PostgreSQL\" err=\"%s\"", msg);
        e = GG_EIO;
        goto out;
    }
    PQsetNoticeProcessor(pg->conn, quiet_notice, NULL);
    for (size_t k = 0; k < Q_COUNT; k++) {
        /* the tables gridgate owns first: later statements read them */
        size_t i = k == 0 ? Q_LEDGER_INIT : k <= Q_LEDGER_INIT ? k - 1 : k;
        PGresult *r;

        stmt_name(i, name);
        if (i == Q_PREPARE_USAGE)
            continue;  /* several statements: run by mkt_pg_prepare_usage */
        if (i == Q_LEDGER_INIT)
            r = PQexec(pg->conn, gg_mkt_queries_sql(pg->q, i));
        else
            r = PQprepare(pg->conn, name, gg_mkt_queries_sql(pg->q, i), pg_defs[i].nparams,
                          NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            first_line(PQresultErrorMessage(r), msg, sizeof msg);
            e = PQstatus(pg->conn) == CONNECTION_OK ? GG_EINVAL : GG_EIO;
            gg_error("marketing", "msg=\"cannot prepare statement\" name=%s err=\"%s\"",
                     pg_defs[i].name, msg);
            PQclear(r);
            goto out;
        }
        PQclear(r);
    }
out:
    if (e != GG_OK) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    return e;
}

/* sqlstate_err - the gg_err for an error the server reported. */
static gg_err sqlstate_err(const PGresult *r)
{
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);

    if (!s)
        return GG_EIO;
    if (strcmp(s, "23505") == 0)
        return GG_EEXISTS;
    if (strncmp(s, "40", 2) == 0 || strncmp(s, "53", 2) == 0 || strcmp(s, "55P03") == 0 ||
        strcmp(s, "57014") == 0)
        return GG_EBUSY;
    return GG_EIO;
}

/* run - execute query i with params; *res a tuples result on GG_OK. */
static gg_err run(mkt_pg *pg, size_t i, const char *const *params, PGresult **res)
{
    return mkt_pg_run(pg, (int)i, params, res);
}

gg_err mkt_pg_run(mkt_pg *pg, int i, const char *const *params, PGresult **res)
{
    int64_t deadline = gg_mono_us() + (int64_t)PG_RETRY_MS * 1000;
    int64_t backoff = 50;
    char name[48], msg[256];
    int attempt = 0;
    gg_err e;

    *res = NULL;
    stmt_name(i, name);
    for (;;) {
        PGresult *r;

        if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
            if (pg->in_tx)
                return GG_EBUSY;  /* the transaction went with the connection */
            e = connect_pg(pg);
            if (e == GG_OK && attempt > 0)
                gg_info("marketing", "msg=\"reconnected to PostgreSQL\" attempt=%d", attempt);
            if (e != GG_OK && e != GG_EIO)
                return e;
            if (e == GG_EIO)
                goto retry;
        }
        r = PQexecPrepared(pg->conn, name, pg_defs[i].nparams, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK) {
            *res = r;
            return GG_OK;
        }
        first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn), msg, sizeof msg);
        if (PQstatus(pg->conn) == CONNECTION_OK) {
            e = r ? sqlstate_err(r) : GG_ENOMEM;
            if (e != GG_EEXISTS)
                gg_error("marketing", "msg=\"query failed\" name=%s err=\"%s\"", pg_defs[i].name,
                     msg);
            PQclear(r);
            return e;
        }
        PQclear(r);
        gg_warn("marketing", "msg=\"PostgreSQL connection lost\" name=%s err=\"%s\"",
                pg_defs[i].name, msg);
        if (pg->in_tx)
            return GG_EBUSY;
retry:
        attempt++;
        if (gg_mono_us() + backoff * 1000 > deadline) {
            gg_error("marketing", "msg=\"PostgreSQL unavailable\" attempts=%d", attempt);
            return GG_EBUSY;
        }
        sleep_ms(backoff);
        backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
    }
}

gg_err mkt_pg_open(const char *conninfo, const char *queries, mkt_pg **out)
{
    mkt_pg *pg = calloc(1, sizeof *pg);
    char why[256] = "";
    PGresult *r = NULL;
    gg_err e;

    *out = NULL;
    if (!pg)
        return GG_ENOMEM;
    pg->conninfo = strdup(conninfo);
    if (!pg->conninfo) {
        e = GG_ENOMEM;
        goto out;
    }
    e = gg_mkt_queries_load(queries, pg_defs, Q_COUNT, &pg->q, why, sizeof why);
    if (e != GG_OK) {
        gg_error("marketing", "msg=\"bad queries file\" reason=\"%s\"", why);
        e = e == GG_ENOMEM ? e : GG_ECONFIG;
        goto out;
    }
    e = connect_pg(pg);
    if (e != GG_OK)
        goto out;
    r = PQexecPrepared(pg->conn, "gg_schema_version", 0, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
        atoi(PQgetvalue(r, 0, 0)) != GG_MKT_SCHEMA_VERSION) {
        gg_error("marketing", "msg=\"not a marketing database of schema version %d\"",
                 GG_MKT_SCHEMA_VERSION);
        e = GG_EINVAL;
        goto out;
    }
out:
    PQclear(r);
    if (e != GG_OK) {
        mkt_pg_close(pg);
        return e;
    }
    *out = pg;
    return GG_OK;
}

void mkt_pg_close(mkt_pg *pg)
{
    if (!pg)
        return;
    if (pg->conn)
        PQfinish(pg->conn);
    gg_mkt_queries_free(pg->q);
    free(pg->conninfo);
    free(pg);
}

/* copy_val - field (row, col) of r into out (size outsz); NULL is "". */
static gg_err copy_val(const PGresult *r, int row, int col, char *out, size_t outsz,
                       const char *what)
{
    size_t n;

    if (col >= PQnfields(r)) {
        gg_error("marketing", "msg=\"query returns too few columns\" column=%s", what);
        return GG_EIO;
    }
    if (PQgetisnull(r, row, col)) {
        out[0] = '\0';
        return GG_OK;
    }
    n = (size_t)PQgetlength(r, row, col);
    if (n >= outsz) {
        gg_error("marketing", "msg=\"value too long\" column=%s bytes=%zu max=%zu", what, n,
                 outsz - 1);
        return GG_EIO;
    }
    memcpy(out, PQgetvalue(r, row, col), n);
    out[n] = '\0';
    return GG_OK;
}

/* int_val - field (row, col) as an integer; NULL is 0. */
static int64_t int_val(const PGresult *r, int row, int col)
{
    if (col >= PQnfields(r) || PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* num_val - field (row, col) as a number; NULL is 0. */
static double num_val(const PGresult *r, int row, int col)
{
    if (col >= PQnfields(r) || PQgetisnull(r, row, col))
        return 0;
    return strtod(PQgetvalue(r, row, col), NULL);
}

gg_err mkt_pg_account(mkt_pg *pg, const char *account_no, gg_account *out)
{
    const char *params[1] = { account_no };
    PGresult *r;
    gg_err e = run(pg, Q_ACCOUNT, params, &r);
    static const struct {
        size_t off, sz;
        const char *name;
    } cols[] = {
        { offsetof(gg_account, account_no), sizeof out->account_no, "account_no" },
        { offsetof(gg_account, holder_name), sizeof out->holder_name, "holder_name" },
        { offsetof(gg_account, phone), sizeof out->phone, "phone" },
        { offsetof(gg_account, id_no), sizeof out->id_no, "id_no" },
        { offsetof(gg_account, address), sizeof out->address, "address" },
        { offsetof(gg_account, district), sizeof out->district, "district" },
        { offsetof(gg_account, tariff_code), sizeof out->tariff_code, "tariff_code" },
        { offsetof(gg_account, status), sizeof out->status, "status" },
    };

    if (e != GG_OK)
        return e;
    if (PQntuples(r) == 0) {
        e = GG_ENOTFOUND;
        goto out;
    }
    memset(out, 0, sizeof *out);
    for (size_t i = 0; e == GG_OK && i < sizeof cols / sizeof cols[0]; i++)
        e = copy_val(r, 0, (int)i, (char *)out + cols[i].off, cols[i].sz, cols[i].name);
out:
    PQclear(r);
    return e;
}

gg_err mkt_pg_sample_account(mkt_pg *pg, gg_account *out)
{
    char no[sizeof out->account_no];
    PGresult *r;
    gg_err e = run(pg, Q_SAMPLE, NULL, &r);

    if (e != GG_OK)
        return e;
    if (PQntuples(r) == 0)
        e = GG_ENOTFOUND;
    else
        e = copy_val(r, 0, 0, no, sizeof no, "account_no");
    PQclear(r);
    return e == GG_OK ? mkt_pg_account(pg, no, out) : e;
}

/* read_bill - row i of a bills result into the gg_bill at row. */
static gg_err read_bill(const PGresult *r, int i, void *row)
{
    gg_bill *b = row;
    gg_err e = copy_val(r, i, 0, b->bill_id, sizeof b->bill_id, "bill_id");

    if (e == GG_OK)
        e = copy_val(r, i, 1, b->period, sizeof b->period, "period");
    if (e == GG_OK)
        e = copy_val(r, i, 6, b->due_date, sizeof b->due_date, "due_date");
    if (e == GG_OK)
        e = copy_val(r, i, 7, b->status, sizeof b->status, "status");
    b->kwh = int_val(r, i, 2);
    b->kwh_peak = int_val(r, i, 3);
    b->kwh_valley = int_val(r, i, 4);
    b->amount_fen = int_val(r, i, 5);
    return e;
}

gg_err mkt_pg_bills(mkt_pg *pg, const char *account_no, const char *from, const char *to,
                    gg_bill **out, size_t *n)
{
    char limit[16];
    const char *params[4] = { account_no, from, to, limit };

    snprintf(limit, sizeof limit, "%d", GG_MKT_BILLS_MAX + 1);
    return mkt_pg_list(pg, Q_BILLS, params, sizeof **out, GG_MKT_BILLS_MAX, read_bill, NULL,
                       (void **)out, n);
}

gg_err mkt_pg_tariff(mkt_pg *pg, const char *code, gg_tariff *out)
{
    const char *params[1] = { code };
    const char *kind;
    gg_tariff t;
    PGresult *r;
    gg_err e = run(pg, Q_TARIFF, params, &r);

    if (e != GG_OK)
        return e;
    memset(&t, 0, sizeof t);
    if (PQntuples(r) == 0) {
        e = GG_ENOTFOUND;
        goto out;
    }
    e = copy_val(r, 0, 0, t.code, sizeof t.code, "tariff_code");
    if (e == GG_OK)
        e = copy_val(r, 0, 1, t.name, sizeof t.name, "tariff_name");
    if (e != GG_OK)
        goto out;
    kind = PQgetvalue(r, 0, 2);
    if (strcmp(kind, "flat") == 0) {
        t.kind = GG_TARIFF_FLAT;
    } else if (strcmp(kind, "peak_valley") == 0) {
        t.kind = GG_TARIFF_PEAK_VALLEY;
    } else {
        e = GG_EINVAL;
        goto out;
    }
    t.tier1_max_kwh = int_val(r, 0, 3);
    t.tier2_max_kwh = int_val(r, 0, 4);
    for (int i = 0; i < 3; i++) {
        t.price[i] = int_val(r, 0, 5 + i);
        t.surcharge[i] = int_val(r, 0, 10 + i);
        if (t.price[i] < 0 || t.surcharge[i] < 0)
            e = GG_EINVAL;
    }
    t.peak_price = int_val(r, 0, 8);
    t.valley_price = int_val(r, 0, 9);
    if (t.tier1_max_kwh < 0 || t.tier2_max_kwh < t.tier1_max_kwh || t.peak_price < 0 ||
        t.valley_price < 0)
        e = GG_EINVAL;
out:
    PQclear(r);
    if (e == GG_EINVAL)
        gg_error("marketing", "msg=\"inconsistent tariff row\" code=%s", code);
    if (e == GG_OK)
        *out = t;
    return e;
}

/* read_usage - row i of a usage result into the gg_usage at row. */
static gg_err read_usage(const PGresult *r, int i, void *row)
{
    gg_usage *u = row;
    gg_err e = copy_val(r, i, 0, u->period, sizeof u->period, "period");

    u->peak_centi = gg_mkt_centi(num_val(r, i, 1));
    u->valley_centi = gg_mkt_centi(num_val(r, i, 2));
    return e;
}

gg_err mkt_pg_usage(mkt_pg *pg, const char *account_no, int month, const char *from,
                    const char *to, gg_usage **out, size_t *n)
{
    char limit[16];
    const char *params[4] = { account_no, from, to, limit };

    snprintf(limit, sizeof limit, "%d", GG_MKT_USAGE_MAX + 1);
    return mkt_pg_list(pg, month ? Q_USAGE_MONTH : Q_USAGE_DAY, params, sizeof **out,
                       GG_MKT_USAGE_MAX, read_usage, NULL, (void **)out, n);
}

gg_err mkt_pg_list(mkt_pg *pg, int q, const char *const *params, size_t elem, int max,
                   gg_err (*read)(const PGresult *r, int i, void *row),
                   void (*drop)(void *rows, size_t n), void **out, size_t *n)
{
    char *v = NULL;
    PGresult *r;
    int rows;
    gg_err e = mkt_pg_run(pg, q, params, &r);

    if (e != GG_OK)
        return e;
    rows = PQntuples(r);
    if (max > 0 && rows > max)
        e = GG_ETOOBIG;
    else if (rows > 0 && (v = calloc((size_t)rows, elem)) == NULL)
        e = GG_ENOMEM;
    for (int i = 0; e == GG_OK && i < rows; i++)
        e = read(r, i, v + elem * (size_t)i);
    PQclear(r);
    if (e != GG_OK || rows == 0) {
        if (drop != NULL && v != NULL)
            drop(v, (size_t)rows);
        else
            free(v);
        return e;
    }
    *out = v;
    *n = (size_t)rows;
    return GG_OK;
}

gg_err mkt_pg_tx(mkt_pg *pg, const char *verb)
{
    PGresult *r;
    gg_err e = GG_OK;
    char msg[256];

    if (strcmp(verb, "BEGIN") == 0 && (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK)) {
        /* a fresh transaction may start on a fresh connection */
        PGresult *probe = NULL;

        e = mkt_pg_run(pg, Q_SCHEMA, NULL, &probe);
        PQclear(probe);
        if (e != GG_OK)
            return e;
    }
    if (!pg->conn) {
        pg->in_tx = 0;
        return GG_EBUSY;
    }
    if (strcmp(verb, "ROLLBACK") == 0 && !pg->in_tx)
        return GG_OK;
    r = PQexec(pg->conn, verb);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        first_line(PQresultErrorMessage(r), msg, sizeof msg);
        gg_error("marketing", "msg=\"transaction control failed\" verb=%s err=\"%s\"", verb,
                 msg);
        e = PQstatus(pg->conn) == CONNECTION_OK ? sqlstate_err(r) : GG_EBUSY;
    }
    else if (strcmp(verb, "COMMIT") == 0 && strcmp(PQcmdStatus(r), "ROLLBACK") == 0)
        e = GG_EIO;  /* the transaction had failed: the server rolled it back */
    PQclear(r);
    pg->in_tx = strcmp(verb, "BEGIN") == 0 && e == GG_OK;
    return e;
}

gg_err mkt_pg_prepare_usage(mkt_pg *pg, int64_t *rows)
{
    PGresult *r = NULL, *probe = NULL;
    char msg[256];
    gg_err e;

    e = mkt_pg_run(pg, Q_SCHEMA, NULL, &probe);  /* a live connection */
    PQclear(probe);
    if (e != GG_OK)
        return e;
    e = mkt_pg_tx(pg, "BEGIN");
    if (e != GG_OK)
        return e;
    r = PQexec(pg->conn, gg_mkt_queries_sql(pg->q, Q_PREPARE_USAGE));
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        first_line(PQresultErrorMessage(r), msg, sizeof msg);
        gg_error("prepare", "msg=\"cannot build the usage summaries\" err=\"%s\"", msg);
        PQclear(r);
        mkt_pg_tx(pg, "ROLLBACK");
        return GG_EIO;
    }
    if (rows)
        *rows = strtoll(PQcmdTuples(r), NULL, 10);  /* the last statement's: the INSERT */
    PQclear(r);
    return mkt_pg_tx(pg, "COMMIT");
}

gg_err mkt_pg_accounts(mkt_pg *pg, size_t max, char (**out)[33], size_t *n)
{
    char lim[24];
    const char *params[1] = { lim };
    PGresult *r;
    int rows;
    gg_err e;

    *out = NULL;
    *n = 0;
    snprintf(lim, sizeof lim, "%zu", max);
    e = run(pg, Q_ACCOUNTS, params, &r);
    if (e != GG_OK)
        return e;
    rows = PQntuples(r);
    if (rows > 0) {
        *out = calloc((size_t)rows, sizeof **out);
        if (!*out)
            e = GG_ENOMEM;
    }
    for (int i = 0; e == GG_OK && i < rows; i++)
        e = copy_val(r, i, 0, (*out)[i], sizeof (*out)[i], "account_no");
    PQclear(r);
    if (e != GG_OK) {
        free(*out);
        *out = NULL;
        return e;
    }
    *n = (size_t)rows;
    return GG_OK;
}
