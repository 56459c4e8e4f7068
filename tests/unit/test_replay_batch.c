/* test_replay_batch.c - gg_replay_check_batch: verdicts in one transaction,
 * replays inside a batch and across batches, limits, restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/rand.h"
#include "envelope/replay.h"

#define WIN 300000
#define SKEW 30000
#define T0 1700000000000LL

typedef struct fx {
    char dir[512];
    char path[600];
    gg_replay *r;
} fx;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static gg_replay *open_max(fx *f, int64_t max)
{
    gg_replay_cfg c = { f->path, WIN, SKEW, max };
    gg_replay *r = NULL;

    assert_int_equal(gg_replay_open(&c, &r), GG_OK);
    return r;
}

static int setup(void **state)
{
    const char *base = getenv("GG_TEST_TMP");
    fx *f = calloc(1, sizeof *f);

    gg_log_set_level(GG_LOG_WARN);
    if (!base)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(f->dir, sizeof f->dir, "%s/replaybXXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/replay.db", f->dir);
    f->r = open_max(f, 1000);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    gg_replay_close(f->r);
    nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* item - fill one batch item. */
static void item(gg_replay_item *it, const uint8_t id[16], int64_t created, int64_t local)
{
    memcpy(it->msg_id, id, 16);
    it->created_ms = created;
    it->local_id = local;
    it->verdict = (gg_replay_verdict)-1;
}

static void test_batch_gives_each_verdict(void **state)
{
    fx *f = *state;
    uint8_t a[16], b[16], c[16], d[16];
    gg_replay_item it[4];

    gg_new_id(a);
    gg_new_id(b);
    gg_new_id(c);
    gg_new_id(d);
    item(&it[0], a, T0, 1);
    item(&it[1], b, T0 - WIN - SKEW - 1, 2);   /* stale */
    item(&it[2], c, T0 + SKEW + 1, 3);         /* future */
    item(&it[3], d, T0 - 5, 4);
    assert_int_equal(gg_replay_check_batch(f->r, it, 4, T0), GG_OK);
    assert_int_equal(it[0].verdict, GG_RV_FRESH);
    assert_int_equal(it[1].verdict, GG_RV_STALE);
    assert_int_equal(it[2].verdict, GG_RV_FUTURE);
    assert_int_equal(it[3].verdict, GG_RV_FRESH);
    assert_int_equal(gg_replay_count(f->r), 2);
    assert_int_equal(gg_replay_check_batch(f->r, it, 0, T0), GG_OK);
}

static void test_replay_inside_a_batch_is_refused(void **state)
{
    fx *f = *state;
    uint8_t a[16], b[16];
    gg_replay_item it[4];

    gg_new_id(a);
    gg_new_id(b);
    item(&it[0], a, T0, 10);
    item(&it[1], b, T0, 11);
    item(&it[2], a, T0, 12);    /* a copy of it[0] under another store id */
    item(&it[3], b, T0, 11);    /* the same store message twice */
    assert_int_equal(gg_replay_check_batch(f->r, it, 4, T0), GG_OK);
    assert_int_equal(it[0].verdict, GG_RV_FRESH);
    assert_int_equal(it[1].verdict, GG_RV_FRESH);
    assert_int_equal(it[2].verdict, GG_RV_REPLAY);
    assert_int_equal(it[3].verdict, GG_RV_REDELIVERY);
    assert_int_equal(gg_replay_count(f->r), 2);
}

static void test_replay_across_batches_and_restart_is_refused(void **state)
{
    fx *f = *state;
    uint8_t a[16], b[16], c[16];
    gg_replay_item it[3];
    gg_replay_verdict v;

    gg_new_id(a);
    gg_new_id(b);
    gg_new_id(c);
    item(&it[0], a, T0, 1);
    item(&it[1], b, T0, 2);
    assert_int_equal(gg_replay_check_batch(f->r, it, 2, T0), GG_OK);
    /* next batch: b replayed, a redelivered, c new */
    item(&it[0], b, T0, 7);
    item(&it[1], a, T0, 1);
    item(&it[2], c, T0, 8);
    assert_int_equal(gg_replay_check_batch(f->r, it, 3, T0 + 100), GG_OK);
    assert_int_equal(it[0].verdict, GG_RV_REPLAY);
    assert_int_equal(it[1].verdict, GG_RV_REDELIVERY);
    assert_int_equal(it[2].verdict, GG_RV_FRESH);
    /* durable: a reopened store still knows all three; the single check agrees */
    gg_replay_close(f->r);
    f->r = open_max(f, 1000);
    item(&it[0], c, T0, 9);
    item(&it[1], a, T0, 9);
    assert_int_equal(gg_replay_check_batch(f->r, it, 2, T0 + 200), GG_OK);
    assert_int_equal(it[0].verdict, GG_RV_REPLAY);
    assert_int_equal(it[1].verdict, GG_RV_REPLAY);
    assert_int_equal(gg_replay_check(f->r, b, T0, 9, T0 + 300, &v), GG_OK);
    assert_int_equal(v, GG_RV_REPLAY);
    assert_int_equal(gg_replay_count(f->r), 3);
}

static void test_batch_fails_closed_at_the_limit(void **state)
{
    fx *f = *state;
    uint8_t ids[4][16];
    gg_replay_item it[4];
    int i;

    gg_replay_close(f->r);
    f->r = open_max(f, 2);
    for (i = 0; i < 4; i++) {
        gg_new_id(ids[i]);
        item(&it[i], ids[i], T0, i + 1);
    }
    assert_int_equal(gg_replay_check_batch(f->r, it, 4, T0), GG_OK);
    assert_int_equal(it[0].verdict, GG_RV_FRESH);
    assert_int_equal(it[1].verdict, GG_RV_FRESH);
    assert_int_equal(it[2].verdict, GG_RV_FULL);
    assert_int_equal(it[3].verdict, GG_RV_FULL);
    assert_int_equal(gg_replay_count(f->r), 2);
    /* once the first two age out, new ids are taken again */
    item(&it[0], ids[2], T0 + WIN + SKEW, 3);
    assert_int_equal(gg_replay_check_batch(f->r, it, 1, T0 + WIN + SKEW + 1), GG_OK);
    assert_int_equal(it[0].verdict, GG_RV_FRESH);
    assert_int_equal(gg_replay_count(f->r), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_gives_each_verdict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_inside_a_batch_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_across_batches_and_restart_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_fails_closed_at_the_limit, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
