/* test_store_wake.c - who a commit wakes: gg_store_get_wait and
 * gg_store_get_many_wait callers (takers) only for messages made ready in
 * their own queue, one taker per message; gg_store_wait callers for any
 * message of their queue; and a taker that got a message without using its
 * wake-up hands it on, so no ready message waits for a timeout; and
 * gg_store_get_wait_first, which takes from two queues. Counted
 * through gg_store_stats.wakeups. Each test in its own temporary
 * directory. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define STORE_FIX_PREFIX "storewake-"
#include "store_fixture.h"

#define TAKERS 16

static int64_t wakeups(gg_store *st)
{
    gg_store_stats s;

    assert_int_equal(gg_store_get_stats(st, &s), GG_OK);
    return s.wakeups;
}

typedef struct taker {
    gg_store *st;
    char queue[32];
    int timeout_ms;
    int many;              /* use gg_store_get_many_wait */
    gg_err err;
    int64_t waited_ms;
    pthread_t th;
} taker;

static void *taker_main(void *arg)
{
    taker *t = arg;
    int64_t t0 = (gg_mono_us() / 1000);
    gg_msg *m = NULL, *ms[4];
    size_t n = 0;

    if (t->many) {
        t->err = gg_store_get_many_wait(t->st, t->queue, 60000, 4, t->timeout_ms, ms, &n);
        for (size_t i = 0; i < n; i++)
            gg_msg_free(ms[i]);
    } else {
        t->err = gg_store_get_wait(t->st, t->queue, 60000, t->timeout_ms, &m);
        gg_msg_free(m);
    }
    t->waited_ms = (gg_mono_us() / 1000) - t0;
    return NULL;
}

static void start(taker *t, gg_store *st, const char *queue, int timeout_ms, int many)
{
    memset(t, 0, sizeof *t);
    t->st = st;
    snprintf(t->queue, sizeof t->queue, "%s", queue);
    t->timeout_ms = timeout_ms;
    t->many = many;
    assert_int_equal(pthread_create(&t->th, NULL, taker_main, t), 0);
}

static void put(gg_store *st, const char *queue)
{
    assert_int_equal(gg_store_put(st, queue, NULL, "x", 1, 0, NULL), GG_OK);
}

/* Takers on sixteen queues: sixteen puts, one to each, wake each taker
 * once (the old single condition variable woke all sixteen on every put). */
static void test_puts_wake_only_their_queue(void **state)
{
    fix *f = *state;
    taker t[TAKERS];
    char q[32];
    int64_t w0 = wakeups(f->st);

    for (int i = 0; i < TAKERS; i++) {
        snprintf(q, sizeof q, "reply.%d", i);
        start(&t[i], f->st, q, 10000, i % 2);
    }
    usleep(200000);   /* all asleep */
    for (int i = 0; i < TAKERS; i++) {
        snprintf(q, sizeof q, "reply.%d", i);
        put(f->st, q);
    }
    for (int i = 0; i < TAKERS; i++) {
        pthread_join(t[i].th, NULL);
        assert_int_equal(t[i].err, GG_OK);
        assert_true(t[i].waited_ms < 5000);
    }
    assert_true(wakeups(f->st) - w0 <= TAKERS);
}

/* Sixteen takers on one queue: one put wakes one of them, not sixteen;
 * the others time out empty. */
static void test_one_message_wakes_one_taker(void **state)
{
    fix *f = *state;
    taker t[TAKERS];
    int got = 0;
    int64_t w0 = wakeups(f->st);

    for (int i = 0; i < TAKERS; i++)
        start(&t[i], f->st, "requests", 1500, i % 2);
    usleep(200000);
    put(f->st, "requests");
    for (int i = 0; i < TAKERS; i++) {
        pthread_join(t[i].th, NULL);
        if (t[i].err == GG_OK) {
            got++;
            assert_true(t[i].waited_ms < 1000);
        } else {
            assert_int_equal(t[i].err, GG_EEMPTY);
        }
    }
    assert_int_equal(got, 1);
    assert_int_equal(wakeups(f->st) - w0, 1);
}

/* k messages, in one commit or in k, reach k sleeping takers at once:
 * none waits for its timeout. */
static void test_k_messages_reach_k_takers(void **state)
{
    fix *f = *state;
    taker t[8];
    const char *items_q[4] = { "work", "work", "work", "work" };
    gg_store_put_item items[4];

    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 8; i++)
            start(&t[i], f->st, "work", 8000, 0);
        usleep(200000);
        if (round == 0) {
            memset(items, 0, sizeof items);
            for (int i = 0; i < 4; i++) {
                items[i].queue = items_q[i];
                items[i].data = "y";
                items[i].len = 1;
            }
            assert_int_equal(gg_store_put_many(f->st, items, 4, NULL), GG_OK);
            for (int i = 0; i < 4; i++)
                put(f->st, "work");
        } else {
            for (int i = 0; i < 8; i++)
                put(f->st, "work");
        }
        for (int i = 0; i < 8; i++) {
            pthread_join(t[i].th, NULL);
            assert_int_equal(t[i].err, GG_OK);
            assert_true(t[i].waited_ms < 4000);
        }
    }
}

/* A taker that gets a message on a look it made while a second message's
 * wake-up was already set for it hands that wake-up on: with takers
 * arriving while messages are put one by one, every taker gets its
 * message within a short time, never after its timeout. */
static void test_unused_wakeup_is_handed_on(void **state)
{
    fix *f = *state;
    enum { ROUNDS = 200 };
    taker t[4];
    int64_t worst = 0;

    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < 4; i++)
            start(&t[i], f->st, "burst", 8000, 0);
        for (int i = 0; i < 4; i++)
            put(f->st, "burst");
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i].th, NULL);
            assert_int_equal(t[i].err, GG_OK);
            if (t[i].waited_ms > worst)
                worst = t[i].waited_ms;
        }
    }
    assert_true(worst < 4000);
}

static void *put_later(void *arg)
{
    usleep(100000);
    put(arg, "mine");
    return NULL;
}

/* gg_store_wait: woken by a put to its queue, not by puts elsewhere. */
static void test_plain_wait(void **state)
{
    fix *f = *state;
    int64_t t0 = (gg_mono_us() / 1000);
    pthread_t th;

    for (int i = 0; i < 5; i++)
        put(f->st, "elsewhere");
    gg_store_wait(f->st, "mine", 300);
    assert_true((gg_mono_us() / 1000) - t0 >= 250);
    t0 = (gg_mono_us() / 1000);
    assert_int_equal(pthread_create(&th, NULL, put_later, f->st), 0);
    gg_store_wait(f->st, "mine", 5000);
    assert_true((gg_mono_us() / 1000) - t0 < 2500);
    pthread_join(th, NULL);
}

typedef struct first_taker {
    gg_store *st;
    gg_err err;
    char queue[GG_QUEUE_NAME_MAX];
    pthread_t th;
} first_taker;

static void *first_main(void *arg)
{
    first_taker *t = arg;
    gg_msg *m = NULL;

    t->err = gg_store_get_wait_first(t->st, "lane.prio", "lane", 60000, 3000, &m);
    if (m)
        snprintf(t->queue, sizeof t->queue, "%s", m->queue);
    gg_msg_free(m);
    return NULL;
}

/* gg_store_get_wait_first: the first queue before the second; asleep, a
 * put to either wakes it, one taker per message. */
static void test_get_wait_first(void **state)
{
    fix *f = *state;
    first_taker t[4];
    gg_msg *m = NULL;
    int prio = 0, normal = 0;
    int64_t w0;

    put(f->st, "lane");
    put(f->st, "lane.prio");
    assert_int_equal(gg_store_get_wait_first(f->st, "lane.prio", "lane", 60000, 100, &m), GG_OK);
    assert_string_equal(m->queue, "lane.prio");
    gg_msg_free(m);
    assert_int_equal(gg_store_get_wait_first(f->st, "lane.prio", "lane", 60000, 100, &m), GG_OK);
    assert_string_equal(m->queue, "lane");
    gg_msg_free(m);
    m = NULL;
    assert_int_equal(gg_store_get_wait_first(f->st, "lane.prio", "lane", 60000, 50, &m), GG_EEMPTY);
    assert_int_equal(gg_store_get_wait_first(f->st, "lane.prio", "", 60000, 50, &m),
                     GG_EINVAL);

    w0 = wakeups(f->st);
    for (int i = 0; i < 4; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].st = f->st;
        assert_int_equal(pthread_create(&t[i].th, NULL, first_main, &t[i]), 0);
    }
    usleep(200000);
    put(f->st, "lane.prio");
    put(f->st, "lane");
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i].th, NULL);
        if (t[i].err == GG_OK) {
            prio += strcmp(t[i].queue, "lane.prio") == 0;
            normal += strcmp(t[i].queue, "lane") == 0;
        } else {
            assert_int_equal(t[i].err, GG_EEMPTY);
        }
    }
    assert_int_equal(prio, 1);
    assert_int_equal(normal, 1);
    assert_int_equal(wakeups(f->st) - w0, 2);
}

/* A waiting taker does not look again (a store transaction) at a queue a
 * take found empty, until a commit touches it; a put is still taken at
 * once. */
static void test_empty_queue_is_not_looked_at_twice(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;
    int64_t c0, c1, c2, id = 0;

    c0 = stats(f).commits;
    assert_int_equal(gg_store_get_wait(f->st, "q", 30000, 10, &m), GG_EEMPTY);
    c1 = stats(f).commits;
    assert_int_equal(gg_store_get_wait(f->st, "q", 30000, 10, &m), GG_EEMPTY);
    c2 = stats(f).commits;
    print_message("commits: first empty wait %lld, second %lld\n", (long long)(c1 - c0),
                  (long long)(c2 - c1));
    assert_true(c1 - c0 >= 1);
    assert_int_equal(c2 - c1, 0);
    assert_int_equal(gg_store_put(f->st, "q", NULL, "x", 1, 0, &id), GG_OK);
    assert_int_equal(gg_store_get_wait(f->st, "q", 30000, 10, &m), GG_OK);
    assert_int_equal(m->id, id);
    gg_msg_free(m);
}

/* A lease that runs out makes its message ready with no commit: a taker
 * that keeps waiting still gets it back, soon after. */
static void test_run_out_lease_reaches_a_waiting_taker(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;
    int64_t id = 0, t0;
    gg_err e = GG_EEMPTY;

    assert_int_equal(gg_store_put(f->st, "q", NULL, "x", 1, 0, &id), GG_OK);
    assert_int_equal(gg_store_get(f->st, "q", 30, &m), GG_OK);   /* a 30 ms lease */
    gg_msg_free(m);
    m = NULL;
    t0 = gg_mono_us();
    while (e == GG_EEMPTY && gg_mono_us() - t0 < 2000000)
        e = gg_store_get_wait(f->st, "q", 30000, 20, &m);
    assert_int_equal(e, GG_OK);
    assert_int_equal(m->id, id);
    assert_int_equal(m->backouts, 1);
    print_message("back after %lld ms\n", (long long)((gg_mono_us() - t0) / 1000));
    assert_true(gg_mono_us() - t0 < 500000);
    gg_msg_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_puts_wake_only_their_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_message_wakes_one_taker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_k_messages_reach_k_takers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unused_wakeup_is_handed_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_wait_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_queue_is_not_looked_at_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_out_lease_reaches_a_waiting_taker, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
