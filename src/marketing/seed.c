/* seed.c - create and fill a synthetic marketing database (seed.h).
 *
 * One pass over the accounts in account-number order, each with its own
 * PRNG stream (seed, account number), so an account's data does not depend
 * on the others. Per account: the holder (seed_people.c), the household
 * (seed_usage.c), its daily readings, and a bill per month computed from
 * the readings with the tariff rows this file writes into the database.
 * Everything goes in one transaction with the journal off; the indexes are
 * built after the load; the file is switched to WAL at the end. A failed
 * seed removes the file.
 *
 * Statuses are as of the 5th of the month after end_period (bills are
 * issued on the 3rd and due on the 15th of the month after their period),
 * never as of the wall clock, so the same options give the same data.
 */
#include "marketing/seed.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "marketing/marketing.h"
#include "marketing/seedgen.h"
#include "marketing/tariff.h"

#define SEED_MAX_ACCOUNTS 1000000 /* "3201" + 6 digits */

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE tariffs("
    " tariff_code TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " kind TEXT NOT NULL CHECK(kind IN ('flat','peak_valley')),"
    " tier1_max_kwh INTEGER NOT NULL, tier2_max_kwh INTEGER NOT NULL,"
    " price_t1 INTEGER NOT NULL, price_t2 INTEGER NOT NULL, price_t3 INTEGER NOT NULL,"
    " peak_price INTEGER NOT NULL, valley_price INTEGER NOT NULL,"
    " surcharge_t1 INTEGER NOT NULL, surcharge_t2 INTEGER NOT NULL,"
    " surcharge_t3 INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE accounts("
    " account_no TEXT PRIMARY KEY, holder_name TEXT NOT NULL, phone TEXT NOT NULL,"
    " id_no TEXT NOT NULL, address TEXT NOT NULL, district TEXT NOT NULL,"
    " tariff_code TEXT NOT NULL REFERENCES tariffs(tariff_code),"
    " status TEXT NOT NULL CHECK(status IN ('active','closed')),"
    " household_size INTEGER NOT NULL, opened_on TEXT NOT NULL, closed_on TEXT)"
    " WITHOUT ROWID;"
    "CREATE TABLE readings("
    " account_no TEXT NOT NULL, day TEXT NOT NULL,"
    " kwh_peak REAL NOT NULL, kwh_valley REAL NOT NULL,"
    " PRIMARY KEY(account_no, day)) WITHOUT ROWID;"
    "CREATE TABLE bills("
    " bill_id TEXT PRIMARY KEY, account_no TEXT NOT NULL, period TEXT NOT NULL,"
    " kwh INTEGER NOT NULL, kwh_peak INTEGER NOT NULL, kwh_valley INTEGER NOT NULL,"
    " ytd_kwh INTEGER NOT NULL, tariff_code TEXT NOT NULL, amount_fen INTEGER NOT NULL,"
    " issued_on TEXT NOT NULL, due_date TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK(status IN ('paid','unpaid','overdue'))) WITHOUT ROWID;"
    "CREATE TABLE payments("
    " payment_id TEXT PRIMARY KEY, account_no TEXT NOT NULL, bill_id TEXT NOT NULL,"
    " amount_fen INTEGER NOT NULL, payment_ref TEXT NOT NULL UNIQUE,"
    " posted_at TEXT NOT NULL);"
    "CREATE INDEX payments_bill ON payments(bill_id);";

/* Built after the load; gg_seed_indexes adds the missing ones to an older
 * file. bills_issued and bills_status_due serve the publisher's sweeps
 * (gg_mkt_issued_list, gg_mkt_overdue_list): without them each sweep reads
 * every bill. */
static const char index_sql[] =
    "CREATE INDEX IF NOT EXISTS bills_account_period ON bills(account_no, period);"
    "CREATE INDEX IF NOT EXISTS bills_issued ON bills(issued_on, bill_id);"
    "CREATE INDEX IF NOT EXISTS bills_status_due ON bills(status, due_date, bill_id);"
    "CREATE INDEX IF NOT EXISTS accounts_district ON accounts(district);";

/* How an account pays. */
enum payer { PAYER_AUTOPAY, PAYER_REGULAR, PAYER_ARREARS };

typedef struct seed_run {
    sqlite3 *db;
    sqlite3_stmt *ins_account, *ins_reading, *ins_bill;
    const gg_seed_opts *o;
    int start_y, start_m;       /* first billed period */
    int64_t first_day;          /* first stored reading, days since epoch */
    int64_t as_of;              /* statuses as of this day */
    char (*day_str)[11];        /* "YYYY-MM-DD" from first_day on */
    const gg_tariff *flat, *tou;
    int64_t n_readings, n_bills;
} seed_run;

/* db_err - log the SQLite error and map it to a gg_err. */
static gg_err db_err(sqlite3 *db, int rc, const char *what)
{
    gg_error("seed", "msg=\"sqlite failed\" op=%s rc=%d err=\"%s\"", what, rc,
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return rc == SQLITE_FULL ? GG_ENOSPC : rc == SQLITE_NOMEM ? GG_ENOMEM : GG_EIO;
}

/* exec - run SQL without results. */
static gg_err exec(sqlite3 *db, const char *sql, const char *what)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? GG_OK : db_err(db, rc, what);
}

/* step_done - step an insert and reset it. */
static gg_err step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? GG_OK : db_err(db, rc, what);
}

/* parse_period - "YYYY-MM" with a valid month. */
static gg_err parse_period(const char *s, int *y, int *m)
{
    for (int i = 0; i < 7; i++) {
        if (i == 4 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return GG_EINVAL;
    }
    if (s[7] != '\0')
        return GG_EINVAL;
    *y = atoi(s);
    *m = atoi(s + 5);
    return *y >= 1900 && *m >= 1 && *m <= 12 ? GG_OK : GG_EINVAL;
}

/* add_months - (y, m) moved by k months. */
static void add_months(int *y, int *m, int k)
{
    int idx = *y * 12 + (*m - 1) + k;
    *y = idx / 12;
    *m = idx % 12 + 1;
}

static void fmt_day(int64_t z, char out[11])
{
    int y, m, d;
    sg_civil_from_days(z, &y, &m, &d);
    char *o = sg_digits(out, (unsigned)y, 4);
    *o++ = '-';
    o = sg_digits(o, (unsigned)m, 2);
    *o++ = '-';
    o = sg_digits(o, (unsigned)d, 2);
    *o = '\0';
}

/* write_tariffs - the default table rows. */
static gg_err write_tariffs(seed_run *s)
{
    static const char sql[] =
        "INSERT INTO tariffs VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)";
    sqlite3_stmt *st = NULL;
    size_t n = 0;
    const gg_tariff *t = gg_tariff_defaults(&n);
    gg_err err = GG_OK;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK)
        return db_err(s->db, rc, "prepare_tariffs");
    for (size_t i = 0; i < n && err == GG_OK; i++) {
        sqlite3_bind_text(st, 1, t[i].code, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, t[i].kind == GG_TARIFF_FLAT ? "flat" : "peak_valley", -1,
                          SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, t[i].tier1_max_kwh);
        sqlite3_bind_int64(st, 5, t[i].tier2_max_kwh);
        for (int k = 0; k < 3; k++)
            sqlite3_bind_int64(st, 6 + k, t[i].price[k]);
        sqlite3_bind_int64(st, 9, t[i].peak_price);
        sqlite3_bind_int64(st, 10, t[i].valley_price);
        for (int k = 0; k < 3; k++)
            sqlite3_bind_int64(st, 11 + k, t[i].surcharge[k]);
        err = step_done(s->db, st, "insert_tariff");
        if (strcmp(t[i].code, GG_TARIFF_CODE_FLAT) == 0)
            s->flat = &t[i];
        if (strcmp(t[i].code, GG_TARIFF_CODE_PEAK_VALLEY) == 0)
            s->tou = &t[i];
    }
    sqlite3_finalize(st);
    if (err == GG_OK && (!s->flat || !s->tou))
        GG_PANIC("default tariff table lacks %s or %s", GG_TARIFF_CODE_FLAT,
                 GG_TARIFF_CODE_PEAK_VALLEY);
    return err;
}

/* write_meta - the schema version and how the data was made. */
static gg_err write_meta(seed_run *s, int end_y, int end_m)
{
    char v[7][40], as_of[11];
    const char *keys[7] = { "schema_version", "generator", "seed", "accounts", "months",
                            "start_period", "end_period" };
    sqlite3_stmt *st = NULL;
    gg_err err = GG_OK;
    int rc;

    snprintf(v[0], sizeof v[0], "%d", GG_MKT_SCHEMA_VERSION);
    snprintf(v[1], sizeof v[1], "gridgate seed");
    snprintf(v[2], sizeof v[2], "%" PRIu64, s->o->seed);
    snprintf(v[3], sizeof v[3], "%d", s->o->accounts);
    snprintf(v[4], sizeof v[4], "%d", s->o->months);
    snprintf(v[5], sizeof v[5], "%04d-%02d", s->start_y, s->start_m);
    snprintf(v[6], sizeof v[6], "%04d-%02d", end_y, end_m);
    fmt_day(s->as_of, as_of);
    rc = sqlite3_prepare_v2(s->db, "INSERT INTO meta VALUES(?1,?2)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_err(s->db, rc, "prepare_meta");
    for (int i = 0; i < 8 && err == GG_OK; i++) {
        sqlite3_bind_text(st, 1, i < 7 ? keys[i] : "status_as_of", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, i < 7 ? v[i] : as_of, -1, SQLITE_STATIC);
        err = step_done(s->db, st, "insert_meta");
    }
    sqlite3_finalize(st);
    return err;
}

/* account_numbers - n distinct 6-digit suffixes drawn from the seed,
 * ascending (the load is fastest in key order). Caller frees. */
static uint32_t *account_numbers(uint64_t seed, int n)
{
    sg_rng r;
    uint32_t *v = malloc((size_t)n * sizeof *v);
    uint8_t *used = calloc(SEED_MAX_ACCOUNTS / 8 + 1, 1);
    int k = 0;

    if (!v || !used) {
        free(v);
        free(used);
        return NULL;
    }
    sg_rng_seed(&r, seed, 0x5eed);
    while (k < n) {
        uint32_t x = sg_below(&r, SEED_MAX_ACCOUNTS);
        if (used[x / 8] & (1u << (x % 8)))
            continue;
        used[x / 8] |= (uint8_t)(1u << (x % 8));
        k++;
    }
    k = 0;
    for (uint32_t x = 0; x < SEED_MAX_ACCOUNTS; x++)
        if (used[x / 8] & (1u << (x % 8)))
            v[k++] = x;
    free(used);
    return v;
}

/* bill_status - paid, unpaid or overdue as of s->as_of. months_back is how
 * many months the period lies before end_period. */
static const char *bill_status(seed_run *s, sg_rng *r, enum payer payer, int arrears_months,
                               int closed, int months_back, int64_t due)
{
    if (closed || payer == PAYER_AUTOPAY)
        return "paid";
    if (due >= s->as_of) /* not yet due */
        return payer == PAYER_ARREARS || sg_below(r, 100) >= 30 ? "unpaid" : "paid";
    if (payer == PAYER_ARREARS)
        return months_back <= arrears_months ? "overdue" : "paid";
    if (months_back == 1)
        return sg_below(r, 100) < 5 ? "overdue" : "paid";
    return sg_below(r, 1000) < 2 ? "overdue" : "paid";
}

/* month_usage - simulate a month's days (centi-kWh sums); store them as
 * readings when store is set. */
static gg_err month_usage(seed_run *s, sg_rng *r, sg_house *h, const char *account_no, int y,
                          int m, int store, int64_t *peak_c, int64_t *valley_c)
{
    int64_t day0 = sg_days_from_civil(y, m, 1);
    int dim = sg_days_in_month(y, m);
    gg_err err = GG_OK;

    *peak_c = *valley_c = 0;
    for (int d = 0; d < dim && err == GG_OK; d++) {
        int64_t p, v;
        sg_house_day(r, h, day0 + d, &p, &v);
        *peak_c += p;
        *valley_c += v;
        if (!store)
            continue;
        sqlite3_stmt *st = s->ins_reading;
        sqlite3_bind_text(st, 1, account_no, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->day_str[day0 + d - s->first_day], 10, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, (double)p / 100.0);
        sqlite3_bind_double(st, 4, (double)v / 100.0);
        err = step_done(s->db, st, "insert_reading");
        s->n_readings++;
    }
    return err;
}

/* seed_account - one account, its readings and its bills. */
static gg_err seed_account(seed_run *s, uint32_t suffix)
{
    char account_no[11], opened_on[11], closed_on[11], bill_id[24], period[8], issued[11],
        due_str[11];
    int end_y = s->start_y, end_m = s->start_m, months = s->o->months, billed, arrears = 0;
    int closed, pv, y, m;
    enum payer payer;
    sg_person p;
    sg_house h;
    sg_rng r;
    int64_t ytd = 0, pc, vc;
    uint32_t u;
    gg_err err;
    sqlite3_stmt *st;

    add_months(&end_y, &end_m, months - 1);
    snprintf(account_no, sizeof account_no, "3201%06u", (unsigned)suffix);
    sg_rng_seed(&r, s->o->seed, 3201000000ull + suffix);
    sg_person_make(&r, end_y, &p);
    pv = sg_below(&r, 100) < 30;
    sg_house_make(&r, end_y - p.birth_year, pv, &h);
    u = sg_below(&r, 100);
    payer = u < 30 ? PAYER_AUTOPAY : u < 96 ? PAYER_REGULAR : PAYER_ARREARS;
    if (payer == PAYER_ARREARS)
        arrears = 1 + (int)sg_below(&r, 4);
    closed = months >= 3 && sg_below(&r, 1000) < 15;
    billed = months;
    if (closed) { /* closed on the 1st of one of the last months */
        int back = 1 + (int)sg_below(&r, (uint32_t)(months - 1 < 6 ? months - 1 : 6));
        billed = months - back;
        y = s->start_y;
        m = s->start_m;
        add_months(&y, &m, billed);
        fmt_day(sg_days_from_civil(y, m, 1), closed_on);
    }
    {
        int oy = 1995 + (int)sg_below(&r, (uint32_t)(s->start_y - 1995 > 1 ? s->start_y - 1995 : 1));
        int om = 1 + (int)sg_below(&r, 12);
        fmt_day(sg_days_from_civil(oy, om, 1 + (int)sg_below(&r, 28)), opened_on);
    }

    st = s->ins_account;
    sqlite3_bind_text(st, 1, account_no, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p.phone, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p.id_no, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p.address, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, sg_district_name(p.district), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, pv ? s->tou->code : s->flat->code, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, closed ? "closed" : "active", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, h.persons);
    sqlite3_bind_text(st, 10, opened_on, -1, SQLITE_STATIC);
    if (closed)
        sqlite3_bind_text(st, 11, closed_on, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 11);
    err = step_done(s->db, st, "insert_account");

    /* the year's consumption before the first billed month sets its tier */
    for (m = 1; m < s->start_m && err == GG_OK; m++) {
        err = month_usage(s, &r, &h, account_no, s->start_y, m, 0, &pc, &vc);
        ytd += (pc + 50) / 100 + (vc + 50) / 100;
    }

    y = s->start_y;
    m = s->start_m;
    for (int k = 0; k < billed && err == GG_OK; k++, add_months(&y, &m, 1)) {
        int ny = y, nm = m;
        int64_t kp, kv, fen, due;
        const char *status;

        if (m == 1)
            ytd = 0;
        err = month_usage(s, &r, &h, account_no, y, m, 1, &pc, &vc);
        if (err != GG_OK)
            break;
        kp = (pc + 50) / 100;
        kv = (vc + 50) / 100;
        err = gg_tariff_month_fen(pv ? s->tou : s->flat, ytd, kp, kv, &fen);
        if (err != GG_OK)
            break;
        add_months(&ny, &nm, 1);
        due = sg_days_from_civil(ny, nm, 15);
        fmt_day(due, due_str);
        fmt_day(sg_days_from_civil(ny, nm, 3), issued);
        status = bill_status(s, &r, payer, arrears, closed, months - 1 - k, due);
        sg_digits(period, (unsigned)y, 4);
        period[4] = '-';
        sg_digits(period + 5, (unsigned)m, 2);
        period[7] = '\0';
        memcpy(bill_id, account_no, 10);
        bill_id[10] = '-';
        sg_digits(bill_id + 11, (unsigned)y, 4);
        sg_digits(bill_id + 15, (unsigned)m, 2);
        bill_id[17] = '\0';

        st = s->ins_bill;
        sqlite3_bind_text(st, 1, bill_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, account_no, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, period, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, kp + kv);
        sqlite3_bind_int64(st, 5, kp);
        sqlite3_bind_int64(st, 6, kv);
        sqlite3_bind_int64(st, 7, ytd);
        sqlite3_bind_text(st, 8, pv ? s->tou->code : s->flat->code, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, fen);
        sqlite3_bind_text(st, 10, issued, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, due_str, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 12, status, -1, SQLITE_STATIC);
        err = step_done(s->db, st, "insert_bill");
        s->n_bills++;
        ytd += kp + kv;
    }
    return err;
}

/* check_opts - the options, and the first and last periods. */
static gg_err check_opts(const gg_seed_opts *o, int *end_y, int *end_m)
{
    if (!o || o->accounts < 1 || o->accounts > SEED_MAX_ACCOUNTS || o->months < 1 ||
        o->months > 120)
        return GG_EINVAL;
    if (o->end_period) {
        if (parse_period(o->end_period, end_y, end_m) != GG_OK)
            return GG_EINVAL;
    } else {
        time_t now = (time_t)(gg_now_ms() / 1000);
        struct tm tm;
        gmtime_r(&now, &tm);
        *end_y = tm.tm_year + 1900;
        *end_m = tm.tm_mon + 1;
        add_months(end_y, end_m, -1);
    }
    if (*end_y > 9999 || *end_y * 12 + *end_m - o->months < 1900 * 12)
        return GG_EINVAL;
    return GG_OK;
}

gg_err gg_seed_sqlite(const char *path, const gg_seed_opts *opts)
{
    seed_run s;
    uint32_t *suffixes = NULL;
    int end_y, end_m, fd, created = 0, rc;
    int64_t t0 = gg_mono_us(), last_day;
    gg_err err;

    memset(&s, 0, sizeof s);
    s.o = opts;
    err = check_opts(opts, &end_y, &end_m);
    if (err != GG_OK || !path)
        return GG_EINVAL;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = errno == EEXIST ? GG_EEXISTS : GG_EIO;
        gg_error("seed", "msg=\"cannot create database\" path=%s err=\"%s\"", path,
                 strerror(errno));
        return err;
    }
    close(fd);
    created = 1;

    s.start_y = end_y;
    s.start_m = end_m;
    add_months(&s.start_y, &s.start_m, -(opts->months - 1));
    s.first_day = sg_days_from_civil(s.start_y, s.start_m, 1);
    last_day = sg_days_from_civil(end_y, end_m, sg_days_in_month(end_y, end_m));
    {
        int ay = end_y, am = end_m;
        add_months(&ay, &am, 1);
        s.as_of = sg_days_from_civil(ay, am, 5);
    }
    s.day_str = malloc((size_t)(last_day - s.first_day + 1) * sizeof *s.day_str);
    suffixes = account_numbers(opts->seed, opts->accounts);
    if (!s.day_str || !suffixes) {
        err = GG_ENOMEM;
        goto out;
    }
    for (int64_t z = s.first_day; z <= last_day; z++)
        fmt_day(z, s.day_str[z - s.first_day]);

    rc = sqlite3_open_v2(path, &s.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err = db_err(s.db, rc, "open");
        goto out;
    }
    err = exec(s.db,
               "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA locking_mode=EXCLUSIVE;"
               "PRAGMA cache_size=-131072; PRAGMA temp_store=MEMORY;",
               "pragmas");
    if (err == GG_OK)
        err = exec(s.db, "BEGIN", "begin");
    if (err == GG_OK)
        err = exec(s.db, schema_sql, "schema");
    if (err == GG_OK)
        err = write_tariffs(&s);
    if (err == GG_OK)
        err = write_meta(&s, end_y, end_m);
    if (err != GG_OK)
        goto out;
    rc = sqlite3_prepare_v2(s.db, "INSERT INTO accounts VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                            -1, &s.ins_account, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s.db, "INSERT INTO readings VALUES(?1,?2,?3,?4)", -1,
                                &s.ins_reading, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s.db,
                                "INSERT INTO bills VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
                                -1, &s.ins_bill, NULL);
    if (rc != SQLITE_OK) {
        err = db_err(s.db, rc, "prepare");
        goto out;
    }
    for (int i = 0; i < opts->accounts && err == GG_OK; i++)
        err = seed_account(&s, suffixes[i]);
    if (err == GG_OK)
        err = exec(s.db, index_sql, "index");
    if (err == GG_OK)
        err = exec(s.db, "COMMIT", "commit");
    if (err == GG_OK) /* what every reader and writer of the file uses from now on */
        err = exec(s.db, "PRAGMA locking_mode=NORMAL; PRAGMA journal_mode=WAL;", "wal");
out:
    sqlite3_finalize(s.ins_account);
    sqlite3_finalize(s.ins_reading);
    sqlite3_finalize(s.ins_bill);
    if (s.db && sqlite3_close(s.db) != SQLITE_OK && err == GG_OK)
        err = GG_EIO;
    free(s.day_str);
    free(suffixes);
    if (err != GG_OK && created) {
        char side[4096];
        unlink(path);
        snprintf(side, sizeof side, "%s-wal", path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", path);
        unlink(side);
        gg_error("seed", "msg=\"seed failed, file removed\" path=%s err=%s", path,
                 gg_errname(err));
        return err;
    }
    gg_info("seed",
            "msg=\"seeded\" path=%s accounts=%d months=%d start=%04d-%02d end=%04d-%02d "
            "readings=%" PRId64 " bills=%" PRId64 " ms=%" PRId64,
            path, opts->accounts, opts->months, s.start_y, s.start_m, end_y, end_m,
            s.n_readings, s.n_bills, (gg_mono_us() - t0) / 1000);
    return GG_OK;
}

/* count_indexes - how many indexes db has (sqlite_master), or -1. */
static int count_indexes(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int n = -1;

    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index'", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

gg_err gg_seed_indexes(const char *path, int *created)
{
    sqlite3 *db = NULL;
    int before, after, rc;
    gg_err err;

    if (created != NULL)
        *created = 0;
    if (path == NULL)
        return GG_EINVAL;
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err = db_err(db, rc, "open");
        sqlite3_close(db);
        return err;
    }
    sqlite3_busy_timeout(db, 10000);
    before = count_indexes(db);
    err = exec(db, "PRAGMA cache_size=-131072; PRAGMA temp_store=MEMORY;", "pragmas");
    if (err == GG_OK)
        err = exec(db, "BEGIN IMMEDIATE", "begin");
    if (err == GG_OK)
        err = exec(db, index_sql, "index");
    if (err == GG_OK)
        err = exec(db, "COMMIT", "commit");
    else
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    after = count_indexes(db);
    if (err == GG_OK && created != NULL && before >= 0 && after >= before)
        *created = after - before;
    if (sqlite3_close(db) != SQLITE_OK && err == GG_OK)
        err = GG_EIO;
    return err;
}

const char *gg_seed_index_sql(void)
{
    return index_sql;
}
