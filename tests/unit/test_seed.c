/* test_seed.c - the synthetic marketing database and the SQLite adapter.
 *
 * Seeds small databases in a fresh temp directory and checks them with
 * plain SQL and with the adapter: counts, determinism, bills recomputed
 * from the readings, valid ID numbers, Nanjing districts, statuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/clock.h"
#include "marketing/marketing.h"
#include "marketing/seed.h"
#include "marketing/tariff.h"
#include "market_fixture.h"

#define N_ACCOUNTS 60
#define N_MONTHS 14
#define END "2025-10" /* start 2024-09: an opening year-to-date and a new year */

static const char *const districts[11] = {
    "玄武区", "秦淮区", "建邺区", "鼓楼区", "浦口区", "栖霞区",
    "雨花台区", "江宁区", "六合区", "溧水区", "高淳区",
};

typedef gg_test_mkt fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);

    if (!f)
        return -1;
    *state = f;
    return gg_test_mkt_dir(f, "test_seed.");
}

static int teardown(void **state)
{
    fx *f = *state;

    if (f != NULL)
        gg_test_mkt_remove(f);
    free(f);
    gg_clock_set_offset_ms(0);
    return 0;
}

/* seed_small - the standard small database at path. */
static void seed_small(const char *path, uint64_t seed)
{
    gg_seed_opts o = { N_ACCOUNTS, N_MONTHS, seed, END };
    assert_int_equal(gg_seed_sqlite(path, &o), GG_OK);
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return db;
}

/* open_seeded - the standard small database seeded with seed at f->db,
 * opened; the caller closes it. */
static sqlite3 *open_seeded(fx *f, uint64_t seed)
{
    seed_small(f->db, seed);
    return open_db(f->db);
}

/* prepare - sql prepared on db; the caller finalizes it. */
static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    return st;
}

/* q_row - sql prepared and stepped to its first row, which must exist;
 * the caller finalizes it. */
static sqlite3_stmt *q_row(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = prepare(db, sql);

    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    return st;
}

/* q_int - first column of the first row, as an integer. */
static int64_t q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = q_row(db, sql);
    int64_t v = sqlite3_column_int64(st, 0);

    sqlite3_finalize(st);
    return v;
}

/* q_real - first column of the first row, as a double. */
static double q_real(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = q_row(db, sql);
    double v = sqlite3_column_double(st, 0);

    sqlite3_finalize(st);
    return v;
}

/* q_text - first column of the first row, copied into out. */
static void q_text(sqlite3 *db, const char *sql, char *out, size_t outsz)
{
    sqlite3_stmt *st = q_row(db, sql);

    snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

/* data_hash - FNV-1a over every row of every table, in key order. */
static uint64_t data_hash(const char *path)
{
    static const char *const sql[] = {
        "SELECT * FROM meta ORDER BY key",
        "SELECT * FROM tariffs ORDER BY tariff_code",
        "SELECT * FROM accounts ORDER BY account_no",
        "SELECT * FROM readings ORDER BY account_no, day",
        "SELECT * FROM bills ORDER BY bill_id",
    };
    sqlite3 *db = open_db(path);
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        sqlite3_stmt *st = prepare(db, sql[i]);

        while (sqlite3_step(st) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                const unsigned char *t = sqlite3_column_text(st, c);
                for (const unsigned char *p = t ? t : (const unsigned char *)"\1"; *p; p++)
                    h = (h ^ *p) * 0x100000001b3ull;
                h = (h ^ 0x1f) * 0x100000001b3ull;
            }
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return h;
}

static void test_seed_has_expected_counts(void **state)
{
    fx *f = *state;
    sqlite3 *db;
    char v[32];

    gg_seed_opts o = { 200, N_MONTHS, 8, END };

    assert_int_equal(gg_seed_sqlite(f->db, &o), GG_OK);
    db = open_db(f->db);
    assert_int_equal(q_int(db, "SELECT count(*) FROM accounts"), 200);
    assert_true(q_int(db, "SELECT count(*) FROM accounts WHERE status = 'closed'") > 0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM tariffs"), 2);
    assert_int_equal(q_int(db, "SELECT count(*) FROM payments"), 0);
    /* 2024-09-01 .. 2025-10-31 is 426 days; closed accounts stop at closure */
    assert_int_equal(q_int(db, "SELECT count(*) FROM (SELECT account_no, count(*) n FROM readings"
                               " JOIN accounts USING(account_no) WHERE status = 'active'"
                               " GROUP BY account_no HAVING n = 426)"),
                     q_int(db, "SELECT count(*) FROM accounts WHERE status = 'active'"));
    assert_int_equal(q_int(db, "SELECT count(*) FROM readings r JOIN accounts a USING(account_no)"
                               " WHERE a.closed_on IS NOT NULL AND r.day >= a.closed_on"),
                     0);
    /* one bill per account and month that has readings */
    assert_int_equal(q_int(db, "SELECT count(*) FROM bills"),
                     q_int(db, "SELECT count(DISTINCT account_no || substr(day, 1, 7)) FROM readings"));
    assert_int_equal(q_int(db, "SELECT max(n) FROM (SELECT count(*) n FROM bills GROUP BY account_no)"),
                     N_MONTHS);
    q_text(db, "SELECT value FROM meta WHERE key = 'schema_version'", v, sizeof v);
    assert_int_equal(atoi(v), GG_MKT_SCHEMA_VERSION);
    q_text(db, "SELECT min(period) FROM bills", v, sizeof v);
    assert_string_equal(v, "2024-09");
    q_text(db, "SELECT max(period) FROM bills", v, sizeof v);
    assert_string_equal(v, END);
    q_text(db, "PRAGMA journal_mode", v, sizeof v);
    assert_string_equal(v, "wal");
    sqlite3_close(db);
}

static void test_same_seed_gives_same_data(void **state)
{
    fx *f = *state;
    char other[700];

    seed_small(f->db, 99);
    snprintf(other, sizeof other, "%s/again.db", f->dir);
    seed_small(other, 99);
    assert_true(data_hash(f->db) == data_hash(other));
}

static void test_different_seed_gives_different_data(void **state)
{
    fx *f = *state;
    char other[700];

    seed_small(f->db, 1);
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    seed_small(other, 2);
    assert_true(data_hash(f->db) != data_hash(other));
}

/* The tariffs table holds exactly the default rows. */
static void test_seeded_tariffs_are_the_default_table(void **state)
{
    fx *f = *state;
    gg_mkt *m = NULL;
    size_t n = 0;
    const gg_tariff *d = gg_tariff_defaults(&n);
    gg_tariff t;

    seed_small(f->db, 3);
    assert_int_equal(gg_mkt_open(f->db, &m), GG_OK);
    for (size_t i = 0; i < n; i++) {
        memset(&t, 0, sizeof t);
        assert_int_equal(gg_mkt_tariff(m, d[i].code, &t), GG_OK);
        assert_string_equal(t.code, d[i].code);
        assert_string_equal(t.name, d[i].name);
        assert_int_equal(t.kind, d[i].kind);
        assert_int_equal(t.tier1_max_kwh, d[i].tier1_max_kwh);
        assert_int_equal(t.tier2_max_kwh, d[i].tier2_max_kwh);
        assert_int_equal(t.peak_price, d[i].peak_price);
        assert_int_equal(t.valley_price, d[i].valley_price);
        for (int k = 0; k < 3; k++) {
            assert_int_equal(t.price[k], d[i].price[k]);
            assert_int_equal(t.surcharge[k], d[i].surcharge[k]);
        }
    }
    assert_int_equal(gg_mkt_tariff(m, "NO-SUCH", &t), GG_ENOTFOUND);
    gg_mkt_close(m);
}

/* Every bill: kWh are the month's readings rounded half up, the year to
 * date continues from the previous bill, and the amount is the tariff's. */
static void test_every_bill_matches_tariff_recomputed_from_readings(void **state)
{
    static const char sql[] =
        "SELECT b.account_no, b.period, b.kwh, b.kwh_peak, b.kwh_valley, b.ytd_kwh,"
        " b.amount_fen, a.tariff_code, b.tariff_code,"
        " (SELECT sum(CAST(round(kwh_peak * 100) AS INTEGER)) FROM readings r"
        "   WHERE r.account_no = b.account_no AND substr(r.day, 1, 7) = b.period),"
        " (SELECT sum(CAST(round(kwh_valley * 100) AS INTEGER)) FROM readings r"
        "   WHERE r.account_no = b.account_no AND substr(r.day, 1, 7) = b.period)"
        " FROM bills b JOIN accounts a USING(account_no) ORDER BY b.account_no, b.period";
    fx *f = *state;
    gg_mkt *m = NULL;
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    char prev_acct[33] = "", prev_period[8] = "";
    int64_t prev_ytd = 0, prev_kwh = 0, n = 0, tier2 = 0;

    db = open_seeded(f, 11);
    assert_int_equal(gg_mkt_open(f->db, &m), GG_OK);
    st = prepare(db, sql);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *acct = (const char *)sqlite3_column_text(st, 0);
        const char *period = (const char *)sqlite3_column_text(st, 1);
        int64_t kwh = sqlite3_column_int64(st, 2), kp = sqlite3_column_int64(st, 3);
        int64_t kv = sqlite3_column_int64(st, 4), ytd = sqlite3_column_int64(st, 5);
        int64_t amount = sqlite3_column_int64(st, 6), fen = -1;
        int64_t pc = sqlite3_column_int64(st, 9), vc = sqlite3_column_int64(st, 10);
        gg_tariff t;

        assert_string_equal(sqlite3_column_text(st, 7), sqlite3_column_text(st, 8));
        assert_int_equal(kp, (pc + 50) / 100);
        assert_int_equal(kv, (vc + 50) / 100);
        assert_int_equal(kwh, kp + kv);
        if (strcmp(period + 5, "01") == 0)
            assert_int_equal(ytd, 0);
        else if (strcmp(acct, prev_acct) == 0)
            assert_int_equal(ytd, prev_ytd + prev_kwh);
        else
            assert_true(ytd > 0); /* the first bill: the year so far, before the data */
        if (strcmp(acct, prev_acct) == 0 && strcmp(period + 5, "01") != 0)
            assert_memory_equal(period, prev_period, 4); /* same year */
        assert_int_equal(gg_mkt_tariff(m, (const char *)sqlite3_column_text(st, 7), &t), GG_OK);
        assert_int_equal(gg_tariff_month_fen(&t, ytd, kp, kv, &fen), GG_OK);
        assert_int_equal(amount, fen);
        if (ytd + kwh > t.tier1_max_kwh)
            tier2++;
        snprintf(prev_acct, sizeof prev_acct, "%s", acct);
        snprintf(prev_period, sizeof prev_period, "%s", period);
        prev_ytd = ytd;
        prev_kwh = kwh;
        n++;
    }
    sqlite3_finalize(st);
    assert_int_equal(n, q_int(db, "SELECT count(*) FROM bills"));
    assert_true(tier2 > 0); /* the data exercises the tiers */
    sqlite3_close(db);
    gg_mkt_close(m);
}

/* id_check - GB 11643: weights 2^(17-i) mod 11, check "10X98765432". */
static char id_check(const char *id)
{
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        int w = 1;
        for (int k = 0; k < 17 - i; k++)
            w = w * 2 % 11;
        sum += (id[i] - '0') * w;
    }
    return "10X98765432"[sum % 11];
}

static void test_id_numbers_have_valid_check_digits(void **state)
{
    fx *f = *state;
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int n = 0;

    db = open_seeded(f, 5);
    st = prepare(db, "SELECT id_no FROM accounts");
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        int year = 0, month = 0, day = 0;
        assert_int_equal(strlen(id), 18);
        assert_memory_equal(id, "3201", 4);
        for (int i = 0; i < 17; i++)
            assert_true(id[i] >= '0' && id[i] <= '9');
        assert_int_equal(id[17], id_check(id));
        assert_int_equal(sscanf(id + 6, "%4d%2d%2d", &year, &month, &day), 3);
        assert_true(year >= 1930 && year <= 2005);
        assert_true(month >= 1 && month <= 12 && day >= 1 && day <= 31);
        n++;
    }
    sqlite3_finalize(st);
    assert_int_equal(n, N_ACCOUNTS);
    /* the checker itself: a published example */
    assert_int_equal(id_check("11010519491231002X"), 'X');
    sqlite3_close(db);
}

/* utf8_chars - number of code points. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void test_people_are_in_nanjing_districts(void **state)
{
    fx *f = *state;
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int n = 0;

    db = open_seeded(f, 5);
    st = prepare(db, "SELECT account_no, holder_name, phone, address, district FROM accounts");
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *acct = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *phone = (const char *)sqlite3_column_text(st, 2);
        const char *addr = (const char *)sqlite3_column_text(st, 3);
        const char *district = (const char *)sqlite3_column_text(st, 4);
        char prefix[64];
        int known = 0;

        assert_int_equal(strlen(acct), 10);
        assert_memory_equal(acct, "32", 2);
        assert_true(strspn(acct, "0123456789") == 10);
        assert_true(utf8_chars(name) >= 2 && utf8_chars(name) <= 4);
        assert_int_equal(strlen(phone), 11);
        assert_true(strspn(phone, "0123456789") == 11);
        assert_true(phone[0] == '1' && phone[1] >= '3' && phone[1] <= '9');
        for (int i = 0; i < 11; i++)
            known |= strcmp(district, districts[i]) == 0;
        assert_true(known);
        snprintf(prefix, sizeof prefix, "南京市%s", district);
        assert_memory_equal(addr, prefix, strlen(prefix));
        assert_non_null(strstr(addr, "路"));
        assert_non_null(strstr(addr, "号"));
        assert_non_null(strstr(addr, "栋"));
        assert_non_null(strstr(addr, "室"));
        n++;
    }
    sqlite3_finalize(st);
    assert_int_equal(n, N_ACCOUNTS);
    /* about 30% on peak-valley */
    assert_in_range(q_int(db, "SELECT count(*) FROM accounts WHERE tariff_code = '"
                              GG_TARIFF_CODE_PEAK_VALLEY "'"),
                    N_ACCOUNTS / 10, N_ACCOUNTS / 2);
    sqlite3_close(db);
}

static void test_readings_have_seasonal_shape_and_peak_share(void **state)
{
    fx *f = *state;
    sqlite3 *db;
    double share, jul_aug, apr, jan, weekend, weekday;

    db = open_seeded(f, 8);
    share = q_real(db, "SELECT sum(kwh_peak) / sum(kwh_peak + kwh_valley) FROM readings");
    assert_true(share > 0.60 && share < 0.70);
    jul_aug = q_real(db, "SELECT avg(kwh_peak + kwh_valley) FROM readings"
                         " WHERE substr(day, 6, 2) IN ('07', '08')");
    apr = q_real(db, "SELECT avg(kwh_peak + kwh_valley) FROM readings WHERE substr(day, 6, 2) = '04'");
    jan = q_real(db, "SELECT avg(kwh_peak + kwh_valley) FROM readings WHERE substr(day, 6, 2) = '01'");
    assert_true(jul_aug > 1.4 * apr);
    assert_true(jan > 1.2 * apr);
    weekend = q_real(db, "SELECT avg(kwh_peak + kwh_valley) FROM readings"
                         " WHERE strftime('%w', day) IN ('0', '6')");
    weekday = q_real(db, "SELECT avg(kwh_peak + kwh_valley) FROM readings"
                         " WHERE strftime('%w', day) NOT IN ('0', '6')");
    assert_true(weekend > weekday);
    /* two decimals */
    assert_int_equal(q_int(db, "SELECT count(*) FROM readings"
                               " WHERE abs(kwh_peak * 100 - round(kwh_peak * 100)) > 1e-6"),
                     0);
    /* household variety */
    assert_true(q_int(db, "SELECT count(DISTINCT household_size) FROM accounts") >= 4);
    sqlite3_close(db);
}

static void test_bill_statuses_agree_with_due_dates(void **state)
{
    fx *f = *state;
    sqlite3 *db;
    char as_of[16];

    db = open_seeded(f, 21);
    q_text(db, "SELECT value FROM meta WHERE key = 'status_as_of'", as_of, sizeof as_of);
    assert_string_equal(as_of, "2025-11-05");
    assert_int_equal(q_int(db, "SELECT count(*) FROM bills WHERE status = 'overdue'"
                               " AND due_date >= '2025-11-05'"),
                     0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM bills WHERE status = 'unpaid'"
                               " AND due_date < '2025-11-05'"),
                     0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM bills WHERE due_date <> "
                               "date(period || '-01', '+1 month', '+14 days')"),
                     0);
    /* older bills mostly paid; the latest a mix */
    assert_true(q_real(db, "SELECT avg(status = 'paid') FROM bills WHERE period < '2025-06'") > 0.95);
    assert_true(q_int(db, "SELECT count(*) FROM bills WHERE period = '" END "' AND status = 'unpaid'") > 0);
    assert_true(q_int(db, "SELECT count(*) FROM bills WHERE period = '" END "' AND status = 'paid'") > 0);
    sqlite3_close(db);
}

static void test_seeded_database_is_private_to_its_owner(void **state)
{
    fx *f = *state;
    gg_seed_opts o = { 5, 2, 1, END };
    struct stat sb;

    /* It holds names, phones, ID numbers and addresses: 0600 whatever the umask. */
    mode_t old = umask(0);
    assert_int_equal(gg_seed_sqlite(f->db, &o), GG_OK);
    umask(old);
    assert_int_equal(stat(f->db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_seed_refuses_existing_file(void **state)
{
    fx *f = *state;
    gg_seed_opts o = { 5, 2, 1, END };
    FILE *fp = fopen(f->db, "w");
    struct stat sb;

    assert_non_null(fp);
    fputs("precious", fp);
    fclose(fp);
    assert_int_equal(gg_seed_sqlite(f->db, &o), GG_EEXISTS);
    assert_int_equal(stat(f->db, &sb), 0);
    assert_int_equal(sb.st_size, 8);
}

static void test_seed_rejects_bad_options_without_creating_a_file(void **state)
{
    fx *f = *state;
    gg_seed_opts o[] = {
        { 0, 2, 1, END }, { 5, 0, 1, END }, { 5, 121, 1, END },
        { 5, 2, 1, "2025-13" }, { 5, 2, 1, "2025-1" }, { 5, 2, 1, "25-01x" },
    };
    for (size_t i = 0; i < sizeof o / sizeof o[0]; i++) {
        assert_int_equal(gg_seed_sqlite(f->db, &o[i]), GG_EINVAL);
        assert_int_equal(access(f->db, F_OK), -1);
    }
}

/* Without end_period the last billed month is the one before now (UTC). */
static void test_default_end_period_is_the_month_before_now(void **state)
{
    fx *f = *state;
    gg_seed_opts o = { 3, 2, 1, NULL };
    sqlite3 *db;
    char v[16];
    int64_t jan10 = 1736467200000; /* 2025-01-10T00:00:00Z */

    gg_clock_set_offset_ms(0);
    gg_clock_set_offset_ms(jan10 - gg_now_ms());
    assert_int_equal(gg_seed_sqlite(f->db, &o), GG_OK);
    db = open_db(f->db);
    q_text(db, "SELECT value FROM meta WHERE key = 'end_period'", v, sizeof v);
    assert_string_equal(v, "2024-12");
    q_text(db, "SELECT min(period) FROM bills", v, sizeof v);
    assert_string_equal(v, "2024-11");
    sqlite3_close(db);
}

static void test_adapter_reads_accounts_and_bills(void **state)
{
    fx *f = *state;
    gg_mkt *m = NULL;
    gg_account a;
    gg_bill *b = NULL;
    size_t n = 99;
    sqlite3 *db;
    char acct[16];

    db = open_seeded(f, 4);
    q_text(db, "SELECT min(account_no) FROM accounts WHERE status = 'active'", acct, sizeof acct);
    sqlite3_close(db);

    assert_int_equal(gg_mkt_open(f->db, &m), GG_OK);
    assert_int_equal(gg_mkt_account(m, acct, &a), GG_OK);
    assert_string_equal(a.account_no, acct);
    assert_string_equal(a.status, "active");
    assert_int_equal(strlen(a.id_no), 18);
    assert_int_equal(gg_mkt_account(m, "3299999999", &a), GG_ENOTFOUND);

    assert_int_equal(gg_mkt_bills(m, acct, "2024-12", "2025-03", &b, &n), GG_OK);
    assert_int_equal(n, 4);
    assert_string_equal(b[0].period, "2024-12");
    assert_string_equal(b[3].period, "2025-03");
    assert_string_equal(b[0].due_date, "2025-01-15");
    assert_int_equal(b[1].kwh, b[1].kwh_peak + b[1].kwh_valley);
    assert_true(b[1].amount_fen > 0);
    free(b);
    assert_int_equal(gg_mkt_bills(m, acct, "2030-01", "2030-12", &b, &n), GG_OK);
    assert_int_equal(n, 0);
    assert_null(b);
    gg_mkt_close(m);
}

static void test_sample_account_is_active_with_an_unpaid_bill(void **state)
{
    fx *f = *state;
    gg_mkt *m = NULL;
    gg_account a;
    sqlite3 *db;
    char want[16];

    db = open_seeded(f, 4);
    q_text(db, "SELECT min(a.account_no) FROM accounts a JOIN bills b USING (account_no) "
               "WHERE a.status = 'active' AND b.status <> 'paid'", want, sizeof want);
    assert_int_equal(gg_mkt_open(f->db, &m), GG_OK);
    assert_int_equal(gg_mkt_sample_account(m, &a), GG_OK);
    assert_string_equal(a.account_no, want);
    assert_string_equal(a.status, "active");
    /* With every account closed there is nothing to offer. */
    assert_int_equal(sqlite3_exec(db, "UPDATE accounts SET status = 'closed'", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(gg_mkt_sample_account(m, &a), GG_ENOTFOUND);
    sqlite3_close(db);
    gg_mkt_close(m);
}

static void test_adapter_refuses_missing_or_foreign_database(void **state)
{
    fx *f = *state;
    gg_mkt *m = (gg_mkt *)1;
    sqlite3 *db;

    assert_int_equal(gg_mkt_open(f->db, &m), GG_ENOTFOUND);
    assert_null(m);
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(gg_mkt_open(f->db, &m), GG_EINVAL);
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seed_has_expected_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_seed_gives_same_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_different_seed_gives_different_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seeded_tariffs_are_the_default_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_bill_matches_tariff_recomputed_from_readings,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_numbers_have_valid_check_digits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_people_are_in_nanjing_districts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readings_have_seasonal_shape_and_peak_share, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bill_statuses_agree_with_due_dates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seeded_database_is_private_to_its_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_refuses_existing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_rejects_bad_options_without_creating_a_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_end_period_is_the_month_before_now, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_adapter_reads_accounts_and_bills, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sample_account_is_active_with_an_unpaid_bill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adapter_refuses_missing_or_foreign_database, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
