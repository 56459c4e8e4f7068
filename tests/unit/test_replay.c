/* test_replay.c - freshness window and replay store (in the queue store's
 * file): stale, future, replay, redelivery, restart of the store, backward
 * clock step, fail closed when full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/rand.h"
#include "envelope/replay.h"

#include "replay_fixture.h"

static gg_replay_verdict check(gg_replay *r, const uint8_t id[16], int64_t created,
                               int64_t local, int64_t now)
{
    gg_replay_verdict v = GG_RV_FRESH;

    assert_int_equal(gg_replay_check(r, id, created, local, now, &v), GG_OK);
    return v;
}

static void test_new_id_is_fresh_and_a_second_copy_is_a_replay(void **state)
{
    fx *f = *state;
    uint8_t id[16];

    gg_new_id(id);
    assert_int_equal(check(f->r, id, T0, 1, T0), GG_RV_FRESH);
    assert_int_equal(check(f->r, id, T0, 2, T0 + 10), GG_RV_REPLAY);
    assert_int_equal(check(f->r, id, T0, 2, T0 + WIN), GG_RV_REPLAY);
    assert_int_equal(gg_replay_count(f->r), 1);
}

static void test_same_store_message_redelivered_is_not_a_replay(void **state)
{
    fx *f = *state;
    uint8_t id[16];

    gg_new_id(id);
    assert_int_equal(check(f->r, id, T0, 7, T0), GG_RV_FRESH);
    assert_int_equal(check(f->r, id, T0, 7, T0 + 5000), GG_RV_REDELIVERY);
}

static void test_old_and_future_messages_are_refused(void **state)
{
    fx *f = *state;
    uint8_t id[16];

    gg_new_id(id);
    assert_int_equal(check(f->r, id, T0 - WIN - SKEW - 1, 1, T0), GG_RV_STALE);
    assert_int_equal(check(f->r, id, T0 + SKEW + 1, 1, T0), GG_RV_FUTURE);
    /* within the allowance both ways */
    assert_int_equal(check(f->r, id, T0 + SKEW, 1, T0), GG_RV_FRESH);
    gg_new_id(id);
    assert_int_equal(check(f->r, id, T0 - WIN - SKEW, 1, T0), GG_RV_FRESH);
}

static void test_replay_is_refused_after_restart(void **state)
{
    fx *f = *state;
    uint8_t id[16];

    gg_new_id(id);
    assert_int_equal(check(f->r, id, T0, 1, T0), GG_RV_FRESH);
    restart(f, 1000);
    assert_int_equal(gg_replay_count(f->r), 1);
    assert_int_equal(check(f->r, id, T0, 2, T0 + 1000), GG_RV_REPLAY);
}

static void test_replay_is_refused_after_backward_clock_step(void **state)
{
    fx *f = *state;
    uint8_t id[16], other[16];

    gg_new_id(id);
    assert_int_equal(check(f->r, id, T0, 1, T0), GG_RV_FRESH);
    /* the clock jumps an hour ahead: pruning forgets id */
    gg_new_id(other);
    assert_int_equal(check(f->r, other, T0 + 3600000, 2, T0 + 3600000), GG_RV_FRESH);
    assert_int_equal(gg_replay_count(f->r), 1);
    /* and back: id would be fresh by the clock, but is below the horizon */
    assert_int_equal(check(f->r, id, T0, 3, T0 + 10), GG_RV_STALE);
    /* also after a restart */
    restart(f, 1000);
    assert_int_equal(check(f->r, id, T0, 3, T0 + 10), GG_RV_STALE);
}

static void test_full_store_refuses_new_ids_and_keeps_live_ones(void **state)
{
    fx *f = *state;
    uint8_t ids[4][16], id[16];
    int i;

    restart(f, 4);
    for (i = 0; i < 4; i++) {
        gg_new_id(ids[i]);
        assert_int_equal(check(f->r, ids[i], T0, i + 1, T0 + i), GG_RV_FRESH);
    }
    for (i = 0; i < 20; i++) {
        gg_new_id(id);
        assert_int_equal(check(f->r, id, T0, 100 + i, T0 + 10), GG_RV_FULL);
    }
    for (i = 0; i < 4; i++)
        assert_int_equal(check(f->r, ids[i], T0, 50, T0 + 20), GG_RV_REPLAY);
    /* once the window has passed, the old entries go and new ids fit */
    gg_new_id(id);
    assert_int_equal(check(f->r, id, T0 + WIN + SKEW + 10, 200, T0 + WIN + SKEW + 10),
                     GG_RV_FRESH);
    assert_int_equal(gg_replay_count(f->r), 1);
}

static void test_bad_configuration_is_refused(void **state)
{
    fx *f = *state;
    char junk[700];
    gg_replay_cfg c = { NULL, 0, SKEW, 10 };
    gg_replay_cfg d = { junk, WIN, SKEW, 10 };
    gg_replay *r = NULL;
    FILE *fp;

    gg_log_set_level(GG_LOG_ERROR);
    assert_int_equal(gg_replay_open(&c, f->st, &r), GG_EINVAL);
    c.window_ms = WIN;
    assert_int_equal(gg_replay_open(&c, NULL, &r), GG_EINVAL);
    /* an old replay file that is not one: refused, not ignored */
    snprintf(junk, sizeof junk, "%s/replay.db", f->dir);
    fp = fopen(junk, "w");
    assert_non_null(fp);
    fputs("this is not a database, only some text long enough to be looked at\n", fp);
    fclose(fp);
    assert_int_equal(gg_replay_open(&d, f->st, &r), GG_EIO);
    assert_null(r);
    gg_log_set_level(GG_LOG_WARN);
    assert_string_equal(gg_replay_verdict_name(GG_RV_FULL), "replay_full");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_id_is_fresh_and_a_second_copy_is_a_replay,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_store_message_redelivered_is_not_a_replay,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_and_future_messages_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replay_is_refused_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_is_refused_after_backward_clock_step, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_full_store_refuses_new_ids_and_keeps_live_ones,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_configuration_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
