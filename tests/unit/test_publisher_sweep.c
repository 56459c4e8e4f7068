/* test_publisher_sweep.c - the publisher's bill sweeps (gg_bill_sweep) on a
 * seeded SQLite marketing database.
 *
 * The sweep never holds the write lock while it lists: every list of
 * bills it runs (a SELECT on bills with an ORDER BY) is watched
 * (sqlite3_trace_v2 on its connection) and, at that moment, a second
 * connection with busy_timeout 0 must be able to BEGIN IMMEDIATE. The plans of the statements it runs read bills through
 * an index (no bare SCAN, no temporary b-tree for the order; the issued
 * list seeks on (issued_on, bill_id) together). bill.issued
 * is announced once per new bill; a round whose mark another writer moved
 * meanwhile is dropped whole (exactly once); a mark that is not one is an
 * error, not a crash; unpaid bills past due move to overdue once each, and
 * a bill.overdue event tells what is due when it commits, not when listed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "market_fixture.h"
#include "marketing/ledger.h"
#include "marketing/mkt_int.h"
#include "utility/publisher.h"

#define PROBE_MAX 32

typedef struct sweep_fx {
    gg_test_mkt tm;
    gg_mkt *mkt;                 /* the sweep's connection */
    sqlite3 *other;              /* another writer, busy_timeout 0 */
    int probes, blocked;         /* list statements seen; how many found the lock taken */
    char sql[PROBE_MAX][1024];   /* the SELECTs on bills the sweep ran */
    int nsql;
    const char *move_to;         /* non-NULL: the other writer moves the mark at the list */
    int pay_at_list;             /* 1: the other writer pays 100 fen of the first overdue
                                  * bill after the list (2: listed), before the sweep's BEGIN */
} sweep_fx;

/* exec_other - run sql on the other connection; its result code. */
static int exec_other(sweep_fx *f, const char *sql)
{
    return sqlite3_exec(f->other, sql, NULL, NULL, NULL);
}

/* on_stmt - trace hook on the sweep's connection: at each SELECT on bills,
 * try to take the write lock from the other connection (and, when asked,
 * move the mark as another utility node would). */
static int on_stmt(unsigned type, void *ctx, void *p, void *x)
{
    sweep_fx *f = ctx;
    const char *sql = x;

    (void)p;
    if (type == SQLITE_TRACE_STMT && f->pay_at_list == 2 && sql != NULL &&
        strcmp(sql, "BEGIN IMMEDIATE") == 0) {
        /* after the overdue list, before its transaction */
        assert_int_equal(exec_other(f, "INSERT INTO payments SELECT 'p1', account_no, bill_id,"
                                       " 100, 'ref-p1', '2026-01-01T00:00:00Z' FROM bills"
                                       " WHERE status = 'unpaid' AND due_date < '2099-01-01'"
                                       " ORDER BY due_date, bill_id LIMIT 1"),
                         SQLITE_OK);
        f->pay_at_list = 0;
        return 0;
    }
    if (type != SQLITE_TRACE_STMT || sql == NULL || strncmp(sql, "SELECT", 6) != 0 ||
        strstr(sql, "FROM bills") == NULL)
        return 0;
    if (f->nsql < PROBE_MAX)
        snprintf(f->sql[f->nsql++], sizeof f->sql[0], "%s", sql);
    if (strstr(sql, "ORDER BY") == NULL)
        return 0;  /* one bill by its key, inside the write transaction: not a list */
    f->probes++;
    if (exec_other(f, "BEGIN IMMEDIATE") != SQLITE_OK) {
        f->blocked++;
        return 0;
    }
    if (f->move_to != NULL && strstr(sql, "issued_on, bill_id) >") != NULL) {
        char upd[256];

        snprintf(upd, sizeof upd, "UPDATE gg_marks SET value = '%s' WHERE name = 'bill_issued'",
                 f->move_to);
        assert_int_equal(exec_other(f, upd), SQLITE_OK);
        assert_int_equal(exec_other(f, "COMMIT"), SQLITE_OK);
        return 0;
    }
    exec_other(f, "ROLLBACK");
    if (f->pay_at_list == 1 && strstr(sql, "status = 'unpaid'") != NULL)
        f->pay_at_list = 2;  /* the overdue list ran */
    return 0;
}

static int setup(void **state)
{
    /* bills up to 2025-06: every unpaid one is past due by the wall clock */
    gg_seed_opts o = { 30, 6, 7, "2025-06" };
    sweep_fx *f = calloc(1, sizeof *f);

    if (f == NULL || gg_test_mkt_seed(&f->tm, "sweep", &o) != 0 ||
        gg_mkt_open(f->tm.db, &f->mkt) != GG_OK || gg_mkt_ledger_init(f->mkt) != GG_OK ||
        sqlite3_open_v2(f->tm.db, &f->other, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(f->other, 0);
    sqlite3_trace_v2(gg_mkt_sqlite(f->mkt), SQLITE_TRACE_STMT, on_stmt, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    sweep_fx *f = *state;

    gg_mkt_close(f->mkt);
    sqlite3_close(f->other);
    gg_test_mkt_remove(&f->tm);
    free(f);
    return 0;
}

/* count - the integer sql returns on the other connection. */
static int64_t count(sweep_fx *f, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;

    assert_int_equal(sqlite3_prepare_v2(f->other, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* issue_bill - the marketing system issues a bill on 2099-01-03 for an
 * account of the seed (suffix makes the id). */
static void issue_bill(sweep_fx *f, const char *suffix)
{
    char sql[512];

    snprintf(sql, sizeof sql,
             "INSERT INTO bills SELECT account_no || '-2099%s', account_no, '2098-12', 100, 60,"
             " 40, 100, tariff_code, 5500, '2099-01-03', '2099-01-15', 'unpaid'"
             " FROM accounts ORDER BY account_no LIMIT 1", suffix);
    assert_int_equal(exec_other(f, sql), SQLITE_OK);
}

/* mark - the bill_issued mark into out. */
static void mark(sweep_fx *f, char *out, size_t outsz)
{
    gg_test_mkt_text(f->tm.db, "SELECT value FROM gg_marks WHERE name = 'bill_issued'", out,
                     outsz);
}

static void test_sweep_lists_without_holding_the_write_lock(void **state)
{
    sweep_fx *f = *state;
    size_t issued = 9, overdue = 0;

    assert_int_equal(gg_bill_sweep(f->mkt, NULL, &issued, &overdue), GG_OK);  /* sets the mark */
    issue_bill(f, "01");
    assert_int_equal(gg_bill_sweep(f->mkt, NULL, &issued, &overdue), GG_OK);
    assert_int_equal(issued, 1);
    /* issued_last and the overdue list, then the issued list and the overdue list again */
    assert_true(f->probes >= 4);
    assert_int_equal(f->blocked, 0);
}

/* plan - the EXPLAIN QUERY PLAN lines of sql (on the other connection),
 * joined with '\n', into out. */
static void plan(sweep_fx *f, const char *sql, char *out, size_t outsz)
{
    char q[1200];
    sqlite3_stmt *st = NULL;
    size_t len = 0;

    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
    assert_int_equal(sqlite3_prepare_v2(f->other, q, -1, &st, NULL), SQLITE_OK);
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW && len < outsz)
        len += (size_t)snprintf(out + len, outsz - len, "%s\n",
                                (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
}

/* bare_scan - whether a plan line reads a whole table ("SCAN t" with no
 * index after it). */
static int bare_scan(const char *p)
{
    char copy[2048];

    snprintf(copy, sizeof copy, "%s", p);
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save))
        if (strncmp(l, "SCAN ", 5) == 0 && strstr(l, " INDEX ") == NULL)
            return 1;
    return 0;
}

static void test_seeded_schema_plans_read_bills_through_an_index(void **state)
{
    sweep_fx *f = *state;
    char p[2048];
    int lists = 0, issued_list = -1;

    assert_int_equal(gg_bill_sweep(f->mkt, NULL, NULL, NULL), GG_OK);
    issue_bill(f, "01");
    assert_int_equal(gg_bill_sweep(f->mkt, NULL, NULL, NULL), GG_OK);
    assert_true(f->nsql >= 4);
    for (int i = 0; i < f->nsql; i++) {
        plan(f, f->sql[i], p, sizeof p);
        if (bare_scan(p) || strstr(p, "TEMP B-TREE") != NULL)
            fail_msg("the sweep reads every bill:\n%s\nplan:\n%s", f->sql[i], p);
        if (strstr(f->sql[i], "LIMIT ?3") != NULL) {   /* the issued list */
            /* a seek on both columns: a month's bills share one issued_on,
             * so a seek on issued_on alone would step over a whole month */
            assert_non_null(strstr(p, "USING INDEX bills_issued ((issued_on,bill_id)>(?,?))"));
            issued_list = i;
            lists++;
        } else if (strstr(f->sql[i], "status = 'unpaid'") != NULL) {  /* the overdue list */
            assert_non_null(strstr(p, "USING INDEX bills_status_due"));
            lists++;
        }
    }
    assert_true(lists >= 2 && issued_list >= 0);
    /* and an older file without them is what the bench's cached one was */
    assert_int_equal(exec_other(f, "DROP INDEX bills_issued; DROP INDEX bills_status_due"),
                     SQLITE_OK);
    plan(f, f->sql[issued_list], p, sizeof p);
    assert_true(bare_scan(p) || strstr(p, "TEMP B-TREE") != NULL);
}

static void test_seed_indexes_adds_the_missing_ones_once(void **state)
{
    sweep_fx *f = *state;
    int created = -1;

    assert_int_equal(exec_other(f, "DROP INDEX bills_issued; DROP INDEX bills_status_due"),
                     SQLITE_OK);
    assert_int_equal(gg_seed_indexes(f->tm.db, &created), GG_OK);
    assert_int_equal(created, 2);
    assert_int_equal(count(f, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
                              " name IN ('bills_issued', 'bills_status_due')"), 2);
    assert_int_equal(gg_seed_indexes(f->tm.db, &created), GG_OK);
    assert_int_equal(created, 0);
    assert_int_not_equal(gg_seed_indexes("/nonexistent/dir/mkt.db", &created), GG_OK);
}

static void test_a_new_bill_is_announced_once_and_history_never(void **state)
{
    sweep_fx *f = *state;
    size_t issued = 9;
    char m[64];

    assert_int_equal(gg_bill_sweep(f->mkt, NULL, &issued, NULL), GG_OK);
    assert_int_equal(issued, 0);                     /* the first sweep only sets the mark */
    mark(f, m, sizeof m);
    assert_non_null(strchr(m, '|'));
    assert_int_equal(count(f, "SELECT count(*) FROM gg_outbox WHERE type = 'bill.issued'"), 0);
    issue_bill(f, "01");
    issue_bill(f, "02");
    assert_int_equal(gg_bill_sweep(f->mkt, NULL, &issued, NULL), GG_OK);
    assert_int_equal(issued, 2);
    assert_int_equal(gg_bill_sweep(f->mkt, NULL, &issued, NULL), GG_OK);
    assert_int_equal(issued, 0);
    assert_int_equal(count(f, "SELECT count(*) FROM gg_outbox WHERE type = 'bill.issued'"), 2);
    mark(f, m, sizeof m);
    assert_non_null(strstr(m, "2099-01-03|"));
    assert_non_null(strstr(m, "-209902"));
}

static void test_a_round_whose_mark_moved_meanwhile_is_dropped_whole(void **state)
{
    sweep_fx *f = *state;
    size_t issued = 9;
    char m[64], other_mark[64];

    assert_int_equal(gg_bill_sweep(f->mkt, NULL, &issued, NULL), GG_OK);
    issue_bill(f, "01");
    issue_bill(f, "02");
    /* another node announces both while this one lists them */
    gg_test_mkt_text(f->tm.db, "SELECT issued_on || '|' || bill_id FROM bills"
                               " ORDER BY issued_on DESC, bill_id DESC LIMIT 1",
                     other_mark, sizeof other_mark);
    f->move_to = other_mark;
    assert_int_equal(gg_bill_sweep(f->mkt, NULL, &issued, NULL), GG_OK);
    f->move_to = NULL;
    assert_int_equal(issued, 0);
    assert_int_equal(count(f, "SELECT count(*) FROM gg_outbox WHERE type = 'bill.issued'"), 0);
    mark(f, m, sizeof m);
    assert_string_equal(m, other_mark);
    /* the next round starts from the other node's mark */
    issue_bill(f, "03");
    assert_int_equal(gg_bill_sweep(f->mkt, NULL, &issued, NULL), GG_OK);
    assert_int_equal(issued, 1);
    assert_int_equal(count(f, "SELECT count(*) FROM gg_outbox WHERE type = 'bill.issued'"), 1);
}

static void test_a_mark_that_is_not_one_is_an_error_and_writes_nothing(void **state)
{
    sweep_fx *f = *state;
    size_t issued = 9;

    assert_int_equal(exec_other(f, "INSERT INTO gg_marks VALUES('bill_issued', 'garbage')"),
                     SQLITE_OK);
    issue_bill(f, "01");
    assert_int_equal(gg_bill_sweep(f->mkt, NULL, &issued, NULL), GG_EINVAL);
    assert_int_equal(issued, 0);
    assert_int_equal(count(f, "SELECT count(*) FROM gg_outbox WHERE type = 'bill.issued'"), 0);
}

static void test_unpaid_bills_past_due_move_to_overdue_once_each(void **state)
{
    sweep_fx *f = *state;
    int64_t unpaid = count(f, "SELECT count(*) FROM bills WHERE status = 'unpaid'");
    size_t overdue = 0, total = 0;

    assert_true(unpaid > 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(gg_bill_sweep(f->mkt, NULL, NULL, &overdue), GG_OK);
        total += overdue;
        if (overdue == 0)
            break;
    }
    assert_int_equal((int64_t)total, unpaid);
    assert_int_equal(count(f, "SELECT count(*) FROM bills WHERE status = 'unpaid'"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM gg_outbox WHERE type = 'bill.overdue'"),
                     unpaid);
    assert_int_equal(f->blocked, 0);
}

static void test_overdue_event_says_what_is_due_at_its_commit(void **state)
{
    sweep_fx *f = *state;
    char want[64], got[64];

    f->pay_at_list = 1;  /* a part paid between the list and the transaction */
    assert_int_equal(gg_bill_sweep(f->mkt, NULL, NULL, NULL), GG_OK);
    f->pay_at_list = 0;
    gg_test_mkt_text(f->tm.db, "SELECT b.amount_fen - 100 FROM bills b JOIN payments p"
                               " USING(bill_id) WHERE p.payment_id = 'p1'", want, sizeof want);
    gg_test_mkt_text(f->tm.db, "SELECT json_extract(o.data, '$.amount_due_fen') FROM gg_outbox o"
                               " JOIN payments p ON json_extract(o.data, '$.bill_id') = p.bill_id"
                               " WHERE p.payment_id = 'p1' AND o.type = 'bill.overdue'",
                     got, sizeof got);
    assert_true(want[0] != '\0');
    assert_string_equal(got, want);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_sweep_lists_without_holding_the_write_lock),
        T(test_seeded_schema_plans_read_bills_through_an_index),
        T(test_seed_indexes_adds_the_missing_ones_once),
        T(test_a_new_bill_is_announced_once_and_history_never),
        T(test_a_round_whose_mark_moved_meanwhile_is_dropped_whole),
        T(test_a_mark_that_is_not_one_is_an_error_and_writes_nothing),
        T(test_unpaid_bills_past_due_move_to_overdue_once_each),
        T(test_overdue_event_says_what_is_due_at_its_commit),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
