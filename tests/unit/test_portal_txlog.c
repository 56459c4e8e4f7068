/* test_portal_txlog.c - the transaction log's grouped writes (txlog.h):
 * held writes are read back at once, reach the file only at the flush (one
 * transaction), and are committed by a close; a flush with nothing held
 * does nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir.h"
#include "core/log.h"
#include "portal/txlog.h"

typedef struct fx {
    char dir[512];
    char path[600];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);

    gg_log_set_level(GG_LOG_ERROR);
    assert_non_null(gg_test_mkdtemp(f->dir, sizeof f->dir, "txlog"));
    snprintf(f->path, sizeof f->path, "%s/tx.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    gg_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* rows_outside - the rows another connection sees (committed ones). */
static int rows_outside(const fx *f)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int n = -1;

    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM tx", -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_held_writes_are_read_back_and_committed_at_the_flush(void **state)
{
    fx *f = *state;
    gg_txlog *tl = NULL;
    gg_txrec r;
    int opened = -1;

    assert_int_equal(gg_txlog_open(f->path, &tl), GG_OK);
    assert_int_equal(gg_txlog_flush(tl), GG_OK);           /* nothing held: nothing to do */
    assert_int_equal(gg_txlog_hold(tl, &opened), GG_OK);
    assert_int_equal(opened, 1);
    assert_int_equal(gg_txlog_hold(tl, &opened), GG_OK);   /* already held */
    assert_int_equal(opened, 0);
    assert_int_equal(gg_txlog_begin(tl, "aa", "bills.query", 10, 20), GG_OK);
    assert_int_equal(gg_txlog_begin(tl, "bb", "pay", 10, 20), GG_OK);
    assert_int_equal(gg_txlog_finish(tl, "aa", "bills.query", 200, NULL, 30), GG_OK);
    assert_int_equal(gg_txlog_get(tl, "aa", &r), GG_OK);   /* read back before the flush */
    assert_int_equal(r.http_status, 200);
    gg_txrec_clear(&r);
    assert_int_equal(rows_outside(f), 0);                  /* not committed yet */
    assert_int_equal(gg_txlog_flush(tl), GG_OK);
    assert_int_equal(rows_outside(f), 2);                  /* one commit for all three */
    /* after a flush, writes commit one by one again until the next hold */
    assert_int_equal(gg_txlog_begin(tl, "cc", "pay", 10, 20), GG_OK);
    assert_int_equal(rows_outside(f), 3);
    gg_txlog_close(tl);
}

static void test_close_commits_what_is_held(void **state)
{
    fx *f = *state;
    gg_txlog *tl = NULL;
    gg_txrec r;

    assert_int_equal(gg_txlog_open(f->path, &tl), GG_OK);
    assert_int_equal(gg_txlog_hold(tl, NULL), GG_OK);
    assert_int_equal(gg_txlog_begin(tl, "aa", "pay", 10, 20), GG_OK);
    gg_txlog_close(tl);
    assert_int_equal(rows_outside(f), 1);
    assert_int_equal(gg_txlog_open(f->path, &tl), GG_OK);
    assert_int_equal(gg_txlog_get(tl, "aa", &r), GG_OK);
    assert_string_equal(r.txn, "pay");
    gg_txrec_clear(&r);
    gg_txlog_close(tl);
    gg_txlog_flush(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_held_writes_are_read_back_and_committed_at_the_flush,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_commits_what_is_held, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
