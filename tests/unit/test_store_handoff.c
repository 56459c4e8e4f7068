/* test_store_handoff.c - direct hand-off: a commit that makes messages
 * ready leases them to the takers blocked in gg_store_get_wait,
 * _get_many_wait and _get_wait_first inside its own transaction, and the
 * taker returns with them without a store call of its own (counted
 * through gg_store_stats: commits, gets, handoffs). Same order and
 * priority as a get; nothing is handed by a COMMIT that fails; a close
 * sends blocked takers away with GG_ECLOSED. Each test in its own
 * temporary directory. */
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

#define STORE_FIX_PREFIX "storehand-"
#include "store_fixture.h"

enum { WAIT_PLAIN, WAIT_MANY, WAIT_FIRST };

typedef struct taker {
    gg_store *st;
    const char *queue, *second;
    int kind;
    size_t max;
    int timeout_ms;
    gg_err err;
    gg_msg *m[8];
    size_t n;
    volatile int done;
    pthread_t th;
} taker;

static void *taker_main(void *arg)
{
    taker *t = arg;

    if (t->kind == WAIT_MANY) {
        t->err = gg_store_get_many_wait(t->st, t->queue, 60000, t->max, t->timeout_ms, t->m,
                                        &t->n);
    } else if (t->kind == WAIT_FIRST) {
        t->err = gg_store_get_wait_first(t->st, t->queue, t->second, 60000, t->timeout_ms,
                                         &t->m[0]);
        t->n = t->err == GG_OK;
    } else {
        t->err = gg_store_get_wait(t->st, t->queue, 60000, t->timeout_ms, &t->m[0]);
        t->n = t->err == GG_OK;
    }
    t->done = 1;
    return NULL;
}

/* launch - a taker thread, not waited for. */
static void launch(taker *t, gg_store *st, int kind, const char *queue, const char *second,
                   size_t max, int timeout_ms)
{
    memset(t, 0, sizeof *t);
    t->st = st;
    t->kind = kind;
    t->queue = queue;
    t->second = second;
    t->max = max;
    t->timeout_ms = timeout_ms;
    assert_int_equal(pthread_create(&t->th, NULL, taker_main, t), 0);
}

/* start - a taker thread, given time to make its first (empty) look and
 * fall asleep. */
static void start(taker *t, gg_store *st, int kind, const char *queue, const char *second,
                  size_t max, int timeout_ms)
{
    launch(t, st, kind, queue, second, max, timeout_ms);
    usleep(150000);
}

static void finish(taker *t)
{
    pthread_join(t->th, NULL);
}

static void free_taken(taker *t)
{
    for (size_t i = 0; i < t->n; i++)
        gg_msg_free(t->m[i]);
    t->n = 0;
}

static int64_t put_prio(gg_store *st, const char *q, int prio)
{
    int64_t id = 0;

    assert_int_equal(gg_store_put_prio(st, q, NULL, "x", 1, 0, prio, 0, &id), GG_OK);
    return id;
}

/* A blocked get_wait gets a message put afterwards inside the put's own
 * commit: one transaction in all, the lease counted as a get and a
 * hand-off, the message leased (not ready for anyone else) and ackable. */
static void test_blocked_taker_gets_put_in_the_same_commit(void **state)
{
    fix *f = *state;
    taker t;
    gg_store_stats s0, s1;
    gg_msg *m = NULL;
    int64_t id;

    start(&t, f->st, WAIT_PLAIN, "q", NULL, 1, 10000);
    s0 = stats(f);
    id = put_prio(f->st, "q", 0);
    finish(&t);
    s1 = stats(f);
    assert_int_equal(t.err, GG_OK);
    assert_int_equal(t.m[0]->id, id);
    assert_string_equal(t.m[0]->queue, "q");
    print_message("commits %lld, handoffs %lld\n", (long long)(s1.commits - s0.commits),
                  (long long)(s1.handoffs - s0.handoffs));
    assert_int_equal(s1.commits - s0.commits, 1);
    assert_int_equal(s1.handoffs - s0.handoffs, 1);
    assert_int_equal(s1.gets - s0.gets, 1);
    assert_int_equal(s1.batched - s0.batched, 1);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_EEMPTY);
    assert_int_equal(depth(f, "q"), 1);
    assert_int_equal(gg_store_ack(f->st, id), GG_OK);
    assert_int_equal(depth(f, "q"), 0);
    free_taken(&t);
}

/* A hand-off that drained the queue counts as a look that found it
 * empty: the taker's next wait, soon after, sleeps at once, with no
 * empty look (a transaction) of its own. (The memory lasts 50 ms, so
 * on a loaded machine the attempt may be repeated.) */
static void test_handed_taker_waits_again_without_an_empty_look(void **state)
{
    fix *f = *state;
    int64_t looks = -1;
    gg_msg *m = NULL;
    taker t;

    for (int attempt = 0; attempt < 5 && looks != 0; attempt++) {
        int64_t c0;

        start(&t, f->st, WAIT_PLAIN, "q", NULL, 1, 10000);
        put_prio(f->st, "q", 0);
        finish(&t);
        assert_int_equal(t.err, GG_OK);
        free_taken(&t);
        c0 = stats(f).commits;
        assert_int_equal(gg_store_get_wait(f->st, "q", 60000, 5, &m), GG_EEMPTY);
        looks = stats(f).commits - c0;
    }
    assert_int_equal(looks, 0);
}

/* One commit that puts on more queues than a transaction once remembered
 * (32; a channel batch of replies to 64 requesters) hands each blocked
 * taker its message: no taker is woken to look for itself (each look a
 * transaction), and every queue the hand-off drained is remembered as
 * empty, so that the takers' next waits, soon after, sleep with no look
 * (memory of 50 ms: on a loaded machine the attempt may be repeated; the
 * messages are acknowledged only after it). */
#define WIDE 64
static void test_a_commit_to_many_queues_hands_to_every_taker(void **state)
{
    fix *f = *state;
    static taker t[WIDE];
    static char names[WIDE][8];
    int64_t got[WIDE];
    gg_store_put_item it[WIDE];
    gg_store_stats s0, s1;
    int64_t looks = -1;

    memset(it, 0, sizeof it);
    for (int i = 0; i < WIDE; i++) {
        snprintf(names[i], sizeof names[i], "w%d", i);
        it[i].queue = names[i];
        it[i].data = names[i];
        it[i].len = strlen(names[i]);
    }
    for (int attempt = 0; attempt < 5 && looks != 0; attempt++) {
        for (int i = 0; i < WIDE; i++)
            launch(&t[i], f->st, WAIT_PLAIN, names[i], NULL, 1, 20000);
        usleep(300000);   /* all asleep after their first (empty) look */
        s0 = stats(f);
        assert_int_equal(gg_store_put_many(f->st, it, WIDE, NULL), GG_OK);
        for (int i = 0; i < WIDE; i++)
            finish(&t[i]);
        s1 = stats(f);
        for (int i = 0; i < WIDE; i++) {
            assert_int_equal(t[i].err, GG_OK);
            assert_string_equal(t[i].m[0]->queue, names[i]);
            got[i] = t[i].m[0]->id;
            free_taken(&t[i]);
        }
        print_message("attempt %d: commits %lld, handoffs %lld\n", attempt,
                      (long long)(s1.commits - s0.commits),
                      (long long)(s1.handoffs - s0.handoffs));
        assert_int_equal(s1.handoffs - s0.handoffs, WIDE);
        assert_int_equal(s1.commits - s0.commits, 1);
        /* Again at once, with nothing put: every wait sleeps unlooked. */
        s0 = stats(f);
        for (int i = 0; i < WIDE; i++)
            launch(&t[i], f->st, WAIT_PLAIN, names[i], NULL, 1, 20);
        for (int i = 0; i < WIDE; i++) {
            finish(&t[i]);
            assert_int_equal(t[i].err, GG_EEMPTY);
        }
        looks = stats(f).commits - s0.commits;
        print_message("attempt %d: looks %lld\n", attempt, (long long)looks);
        for (int i = 0; i < WIDE; i++)
            assert_int_equal(gg_store_ack(f->st, got[i]), GG_OK);
    }
    assert_int_equal(looks, 0);
}

/* get_many_wait is handed up to its max, in order; the rest stay ready. */
static void test_get_many_wait_is_handed_up_to_max(void **state)
{
    fix *f = *state;
    const char *qs = "jobs";
    gg_store_put_item items[5];
    int64_t ids[5];
    gg_msg *rest[8];
    size_t n = 0;
    taker t;
    int64_t c0;

    memset(items, 0, sizeof items);
    for (int i = 0; i < 5; i++) {
        items[i].queue = qs;
        items[i].data = "y";
        items[i].len = 1;
    }
    start(&t, f->st, WAIT_MANY, "jobs", NULL, 3, 10000);
    c0 = stats(f).commits;
    assert_int_equal(gg_store_put_many(f->st, items, 5, ids), GG_OK);
    finish(&t);
    assert_int_equal(stats(f).commits - c0, 1);
    assert_int_equal(t.err, GG_OK);
    assert_int_equal(t.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(t.m[i]->id, ids[i]);
    assert_int_equal(gg_store_get_many(f->st, "jobs", 1000, 8, rest, &n), GG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rest[0]->id, ids[3]);
    assert_int_equal(rest[1]->id, ids[4]);
    for (size_t i = 0; i < n; i++)
        gg_msg_free(rest[i]);
    free_taken(&t);
}

/* get_wait_first is handed from its first queue when one commit makes
 * messages ready on both. */
static void test_get_wait_first_is_handed_the_first_queue(void **state)
{
    fix *f = *state;
    gg_store_put_item items[2];
    int64_t ids[2];
    gg_msg *m = NULL;
    taker t;

    memset(items, 0, sizeof items);
    items[0].queue = "lane";
    items[1].queue = "lane.prio";
    for (int i = 0; i < 2; i++) {
        items[i].data = "z";
        items[i].len = 1;
    }
    start(&t, f->st, WAIT_FIRST, "lane.prio", "lane", 1, 10000);
    assert_int_equal(gg_store_put_many(f->st, items, 2, ids), GG_OK);
    finish(&t);
    assert_int_equal(t.err, GG_OK);
    assert_int_equal(t.m[0]->id, ids[1]);
    assert_string_equal(t.m[0]->queue, "lane.prio");
    assert_int_equal(gg_store_get(f->st, "lane", 1000, &m), GG_OK);
    assert_int_equal(m->id, ids[0]);
    gg_msg_free(m);
    free_taken(&t);

    /* Only the second queue filled: handed from it. */
    start(&t, f->st, WAIT_FIRST, "lane.prio", "lane", 1, 10000);
    ids[0] = put_prio(f->st, "lane", 0);
    finish(&t);
    assert_int_equal(t.err, GG_OK);
    assert_int_equal(t.m[0]->id, ids[0]);
    free_taken(&t);
}

/* A COMMIT that fails hands nothing: the taker sleeps on, and gets the
 * message of the next put that succeeds, once. */
static void test_failed_commit_hands_nothing(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;
    int64_t id = 0, h0;
    taker t;

    for (int kind = 0; kind < 2; kind++) {
        start(&t, f->st, WAIT_PLAIN, "q", NULL, 1, 10000);
        h0 = stats(f).handoffs;
        assert_int_equal(gg_store_fault_arm(kind == 0 ? GG_FAULT_SYNC : GG_FAULT_WRITE, 1,
                                            GG_EIO, 1), GG_OK);
        assert_int_equal(gg_store_put(f->st, "q", NULL, "a", 1, 0, NULL), GG_EIO);
        gg_store_fault_disarm();
        usleep(200000);
        assert_false(t.done);
        assert_int_equal(stats(f).handoffs, h0);
        assert_int_equal(gg_store_put(f->st, "q", NULL, "b", 1, 0, &id), GG_OK);
        finish(&t);
        assert_int_equal(t.err, GG_OK);
        assert_int_equal(t.m[0]->id, id);
        assert_memory_equal(t.m[0]->data, "b", 1);
        assert_int_equal(stats(f).handoffs, h0 + 1);
        assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_EEMPTY);
        assert_int_equal(gg_store_ack(f->st, id), GG_OK);
        assert_int_equal(depth(f, "q"), 0);
        free_taken(&t);
    }
}

/* Several takers, one commit of three messages: the oldest taker gets the
 * highest priority, then the others in id order. */
static void test_order_and_priority_kept_with_several_takers(void **state)
{
    fix *f = *state;
    gg_store_put_item items[3];
    int64_t ids[3], c0;
    taker t[4];

    memset(items, 0, sizeof items);
    for (int i = 0; i < 3; i++) {
        items[i].queue = "q";
        items[i].data = "p";
        items[i].len = 1;
    }
    items[1].prio = 5;
    for (int i = 0; i < 4; i++)
        start(&t[i], f->st, WAIT_PLAIN, "q", NULL, 1, i < 3 ? 10000 : 1500);
    c0 = stats(f).commits;
    assert_int_equal(gg_store_put_many(f->st, items, 3, ids), GG_OK);
    for (int i = 0; i < 4; i++)
        finish(&t[i]);
    assert_int_equal(t[0].err, GG_OK);
    assert_int_equal(t[0].m[0]->id, ids[1]);
    assert_int_equal(t[0].m[0]->prio, 5);
    assert_int_equal(t[1].err, GG_OK);
    assert_int_equal(t[1].m[0]->id, ids[0]);
    assert_int_equal(t[2].err, GG_OK);
    assert_int_equal(t[2].m[0]->id, ids[2]);
    assert_int_equal(t[3].err, GG_EEMPTY);
    /* One commit for the put and the three leases; the fourth taker's
     * timeout made none either (its queue was seen empty). */
    assert_true(stats(f).commits - c0 <= 2);
    for (int i = 0; i < 4; i++)
        free_taken(&t[i]);
}

/* A hand-off takes like a get: a lease that ran out while the taker
 * slept comes back first (backouts + 1), an expired message is removed,
 * never handed. */
static void test_handed_as_a_get_would(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;
    int64_t old = 0, id;
    taker t;

    assert_int_equal(gg_store_put(f->st, "q", NULL, "o", 1, 0, &old), GG_OK);
    assert_int_equal(gg_store_get(f->st, "q", 300, &m), GG_OK);   /* a 300 ms lease */
    gg_msg_free(m);
    m = NULL;
    start(&t, f->st, WAIT_PLAIN, "q", NULL, 1, 10000);
    usleep(400000);   /* the lease ran out; the taker sleeps on */
    assert_false(t.done);
    id = put_prio(f->st, "q", 0);
    finish(&t);
    assert_int_equal(t.err, GG_OK);
    assert_int_equal(t.m[0]->id, old);
    assert_int_equal(t.m[0]->backouts, 1);
    free_taken(&t);
    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_OK);
    assert_int_equal(m->id, id);
    gg_msg_free(m);

    start(&t, f->st, WAIT_PLAIN, "q", NULL, 1, 10000);
    assert_int_equal(gg_store_put(f->st, "q", NULL, "e", 1, gg_now_ms() - 1, NULL), GG_OK);
    usleep(100000);
    assert_false(t.done);   /* nothing handed */
    id = put_prio(f->st, "q", 0);
    finish(&t);
    assert_int_equal(t.err, GG_OK);
    assert_int_equal(t.m[0]->id, id);
    assert_true(stats(f).expired >= 1);
    free_taken(&t);
}

/* A close sends a blocked taker away with GG_ECLOSED at once (it used to
 * be left on a freed store). */
static void test_close_while_waiting(void **state)
{
    fix *f = *state;
    int64_t t0;
    taker t[2];

    start(&t[0], f->st, WAIT_PLAIN, "q", NULL, 1, 20000);
    start(&t[1], f->st, WAIT_MANY, "q", NULL, 4, 20000);
    t0 = gg_mono_us();
    gg_store_close(f->st);
    f->st = NULL;
    for (int i = 0; i < 2; i++) {
        finish(&t[i]);
        assert_int_equal(t[i].err, GG_ECLOSED);
        assert_int_equal(t[i].n, 0);
    }
    assert_true(gg_mono_us() - t0 < 5000000);
    reopen(f, NULL);
}

/* Many putters and takers through the writer thread, the takers now
 * looking, now asleep (handed): every message is taken exactly once. */
enum { PUTTERS = 4, PER_PUTTER = 150, TAKERS = 4 };

typedef struct loop_arg {
    gg_store *st;
    int64_t got;
    int64_t seen[PUTTERS * PER_PUTTER];
    volatile int *stop;
} loop_arg;

static void *put_loop(void *arg)
{
    gg_store *st = arg;

    for (int i = 0; i < PER_PUTTER; i++) {
        assert_int_equal(gg_store_put(st, "work", NULL, "w", 1, 0, NULL), GG_OK);
        if (i % 8 == 0)
            usleep(2000);   /* now and then let the takers fall asleep */
    }
    return NULL;
}

static void *take_loop(void *arg)
{
    loop_arg *a = arg;
    gg_msg *m[4];
    size_t n = 0;

    while (!*a->stop) {
        gg_err e = gg_store_get_many_wait(a->st, "work", 60000, (a->got & 1) + 1, 100, m, &n);
        if (e == GG_EEMPTY)
            continue;
        assert_int_equal(e, GG_OK);
        for (size_t i = 0; i < n; i++) {
            a->seen[a->got++] = m[i]->id;
            assert_int_equal(gg_store_ack(a->st, m[i]->id), GG_OK);
            gg_msg_free(m[i]);
        }
    }
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_every_message_taken_once_under_load(void **state)
{
    fix *f = *state;
    pthread_t pt[PUTTERS], tt[TAKERS];
    static loop_arg la[TAKERS];
    static int64_t all[PUTTERS * PER_PUTTER];
    volatile int stop = 0;
    size_t total = 0;
    int64_t t0 = gg_mono_us();

    for (int i = 0; i < TAKERS; i++) {
        memset(&la[i], 0, sizeof la[i]);
        la[i].st = f->st;
        la[i].stop = &stop;
        assert_int_equal(pthread_create(&tt[i], NULL, take_loop, &la[i]), 0);
    }
    usleep(100000);
    for (int i = 0; i < PUTTERS; i++)
        assert_int_equal(pthread_create(&pt[i], NULL, put_loop, f->st), 0);
    for (int i = 0; i < PUTTERS; i++)
        pthread_join(pt[i], NULL);
    while (depth(f, "work") > 0 && gg_mono_us() - t0 < 60000000)
        usleep(20000);
    stop = 1;
    for (int i = 0; i < TAKERS; i++) {
        pthread_join(tt[i], NULL);
        for (int64_t k = 0; k < la[i].got; k++)
            all[total++] = la[i].seen[k];
    }
    assert_int_equal(total, PUTTERS * PER_PUTTER);
    qsort(all, total, sizeof all[0], cmp_id);
    for (size_t i = 1; i < total; i++)
        assert_true(all[i] != all[i - 1]);
    print_message("handoffs %lld of %d messages\n", (long long)stats(f).handoffs,
                  PUTTERS * PER_PUTTER);
    assert_int_equal(depth(f, "work"), 0);
}

/* Bad arguments to a waiting get are refused before any wait. */
static void test_bad_wait_arguments(void **state)
{
    fix *f = *state;
    gg_msg *m[2] = { NULL, NULL };
    size_t n = 7;

    assert_int_equal(gg_store_get_wait(f->st, "q", 0, 10, m), GG_EINVAL);
    assert_int_equal(gg_store_get_wait(f->st, "q", 1000, 10, NULL), GG_EINVAL);
    assert_int_equal(gg_store_get_many_wait(f->st, "q", 1000, 0, 10, m, &n), GG_EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(gg_store_get_many_wait(f->st, "q", 1000, GG_STORE_MANY_MAX + 1, 10, m, &n),
                     GG_EINVAL);
    assert_int_equal(gg_store_get_many_wait(f->st, "q", -5, 2, 10, m, &n), GG_EINVAL);
    assert_int_equal(gg_store_get_wait_first(f->st, "a", "b", 0, 10, m), GG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_blocked_taker_gets_put_in_the_same_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_handed_taker_waits_again_without_an_empty_look,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_commit_to_many_queues_hands_to_every_taker, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_many_wait_is_handed_up_to_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_wait_first_is_handed_the_first_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_hands_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_and_priority_kept_with_several_takers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_handed_as_a_get_would, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_message_taken_once_under_load, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_wait_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
