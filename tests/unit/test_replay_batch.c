/* test_replay_batch.c - gg_replay_check_batch: verdicts in one store
 * operation, replays inside a batch and across batches, limits, restart of
 * the store; and concurrent gg_replay_check calls, which share commits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rand.h"
#include "envelope/replay.h"

#include "replay_fixture.h"

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
    restart(f, 1000);
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

    restart(f, 2);
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

/* ---- concurrent gg_replay_check ------------------------------------- */

#define COPIES 64
#define THREADS 8
#define PER_THREAD 150

typedef struct conc {
    gg_replay *r;
    pthread_barrier_t *go;
    int idx;
    int n;                          /* ids to check */
    int same;                       /* 1: every thread checks the one id */
    int64_t local_base;             /* local store ids start here */
    int fresh, replay, other, errors;
} conc;

/* conc_main - check n ids (or the shared one) after the barrier. */
static void *conc_main(void *arg)
{
    conc *c = arg;

    pthread_barrier_wait(c->go);
    for (int i = 0; i < c->n; i++) {
        uint8_t id[16] = { 0 };
        gg_replay_verdict v;

        if (!c->same) {
            id[0] = (uint8_t)c->idx;
            id[1] = (uint8_t)(i >> 8);
            id[2] = (uint8_t)i;
        }
        if (gg_replay_check(c->r, id, T0, c->local_base + 1000 * (c->idx + 1) + i, T0, &v) !=
            GG_OK)
            c->errors++;
        else if (v == GG_RV_FRESH)
            c->fresh++;
        else if (v == GG_RV_REPLAY)
            c->replay++;
        else
            c->other++;
    }
    return NULL;
}

/* run_conc - nthreads threads of conc_main; the sums in *sum. */
static void run_conc(gg_replay *r, int nthreads, int n, int same, int64_t local_base, conc *sum)
{
    pthread_t th[COPIES];
    conc c[COPIES];
    pthread_barrier_t go;

    pthread_barrier_init(&go, NULL, (unsigned)nthreads);
    memset(sum, 0, sizeof *sum);
    for (int i = 0; i < nthreads; i++) {
        c[i] = (conc){ .r = r, .go = &go, .idx = i, .n = n, .same = same,
                       .local_base = local_base };
        assert_int_equal(pthread_create(&th[i], NULL, conc_main, &c[i]), 0);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        sum->fresh += c[i].fresh;
        sum->replay += c[i].replay;
        sum->other += c[i].other;
        sum->errors += c[i].errors;
    }
    pthread_barrier_destroy(&go);
}

/* 64 copies of one envelope at once (the negative matrix's flood): one is
 * fresh, every other copy a replay, whichever checks group together. */
static void test_concurrent_copies_of_one_id_give_one_fresh(void **state)
{
    fx *f = *state;
    conc sum;

    run_conc(f->r, COPIES, 1, 1, 0, &sum);
    assert_int_equal(sum.errors, 0);
    assert_int_equal(sum.fresh, 1);
    assert_int_equal(sum.replay, COPIES - 1);
    assert_int_equal(sum.other, 0);
    assert_int_equal(gg_replay_count(f->r), 1);
}

/* Concurrent checks of distinct ids, grouped into shared transactions:
 * each is fresh once, all durable (replays after a reopen). */
static void test_concurrent_checks_are_each_judged_and_durable(void **state)
{
    fx *f = *state;
    conc sum;

    restart(f, 100000);
    run_conc(f->r, THREADS, PER_THREAD, 0, 0, &sum);
    assert_int_equal(sum.errors, 0);
    assert_int_equal(sum.fresh, THREADS * PER_THREAD);
    assert_int_equal(sum.replay + sum.other, 0);
    assert_int_equal(gg_replay_count(f->r), THREADS * PER_THREAD);
    restart(f, 100000);
    /* the same envelopes again under other local store ids: replays */
    run_conc(f->r, THREADS, PER_THREAD, 0, 1000000, &sum);
    assert_int_equal(sum.errors, 0);
    assert_int_equal(sum.fresh, 0);
    assert_int_equal(sum.replay, THREADS * PER_THREAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_gives_each_verdict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_inside_a_batch_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_across_batches_and_restart_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_fails_closed_at_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_copies_of_one_id_give_one_fresh, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_checks_are_each_judged_and_durable, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
