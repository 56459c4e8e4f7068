/* test_store_batch.c - the store's batch calls (gg_store_put_many,
 * gg_store_get_many, gg_store_ack_many), lease-only commits that skip the
 * fsync, and ops that fail half-way inside a shared commit. Each test in
 * its own temporary directory. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define STORE_FIX_PREFIX "storebatch-"
#include "store_fixture.h"

/* item - a put_many item of queue q with body text (borrowed). */
static gg_store_put_item item(const char *q, const char *text)
{
    gg_store_put_item it;
    memset(&it, 0, sizeof it);
    it.queue = q;
    it.data = text;
    it.len = strlen(text);
    return it;
}

/* put_n - put n one-byte messages on q one by one; their ids into ids (may be NULL). */
static void put_n(fix *f, const char *q, int n, int64_t *ids)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(gg_store_put(f->st, q, NULL, "x", 1, 0, ids ? &ids[i] : NULL), GG_OK);
}

/* ---- put_many ---- */

static void test_put_many_puts_every_item_in_order_with_one_commit(void **state)
{
    fix *f = *state;
    gg_store_put_item it[5] = { item("a", "a0"), item("b", "b0"), item("a", "a1"),
                                item("a", "a2"), item("b", "b1") };
    int64_t ids[5] = { 0 };
    gg_store_stats s0 = stats(f), s1;
    gg_msg *m[8];
    size_t n = 0;

    it[1].dest = "peer.q";
    assert_int_equal(gg_store_put_many(f->st, it, 5, ids), GG_OK);
    s1 = stats(f);
    assert_int_equal(s1.commits - s0.commits, 1);
    assert_int_equal(s1.syncs - s0.syncs, 1);
    assert_int_equal(s1.puts - s0.puts, 5);
    for (int i = 1; i < 5; i++)
        assert_true(ids[i] > ids[i - 1]);
    assert_int_equal(depth(f, "a"), 3);
    assert_int_equal(depth(f, "b"), 2);
    assert_int_equal(gg_store_get_many(f->st, "a", 60000, 8, m, &n), GG_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        char want[3] = { 'a', (char)('0' + i), 0 };
        assert_int_equal(m[i]->len, 2);
        assert_memory_equal(m[i]->data, want, 2);
        gg_msg_free(m[i]);
    }
    assert_int_equal(gg_store_get_many(f->st, "b", 60000, 1, m, &n), GG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(m[0]->id, ids[1]);
    assert_string_equal(m[0]->dest, "peer.q");
    gg_msg_free(m[0]);
}

static void test_put_many_over_a_queue_limit_applies_nothing(void **state)
{
    fix *f = *state;
    gg_store_opts o = { .max_depth = 5, .backout_threshold = 5 };
    gg_store_put_item it[4] = { item("other", "o"), item("q", "1"), item("q", "2"),
                                item("q", "3") };

    reopen(f, &o);
    put_n(f, "q", 3, NULL);
    /* The batch's own earlier items count: 3 + 3 > 5 though each fits alone. */
    assert_int_equal(gg_store_put_many(f->st, it, 4, NULL), GG_EFULL);
    assert_int_equal(depth(f, "q"), 3);
    assert_int_equal(depth(f, "other"), 0);
    assert_int_equal(gg_store_put_many(f->st, it, 3, NULL), GG_OK);
    assert_int_equal(depth(f, "q"), 5);
    assert_int_equal(depth(f, "other"), 1);
}

static void test_put_many_rejects_a_bad_item_or_count_and_does_nothing(void **state)
{
    fix *f = *state;
    gg_store_put_item it[2] = { item("q", "ok"), item("q", "bad") };
    static gg_store_put_item big[GG_STORE_MANY_MAX + 1];

    it[1].prio = GG_PRIO_MAX + 1;
    assert_int_equal(gg_store_put_many(f->st, it, 2, NULL), GG_EINVAL);
    it[1].prio = 0;
    it[1].queue = "";
    assert_int_equal(gg_store_put_many(f->st, it, 2, NULL), GG_EINVAL);
    assert_int_equal(gg_store_put_many(f->st, it, 0, NULL), GG_EINVAL);
    for (size_t i = 0; i <= GG_STORE_MANY_MAX; i++)
        big[i] = item("q", "x");
    assert_int_equal(gg_store_put_many(f->st, big, GG_STORE_MANY_MAX + 1, NULL), GG_EINVAL);
    assert_int_equal(depth(f, "q"), 0);
    assert_int_equal(gg_store_put_many(f->st, big, GG_STORE_MANY_MAX, NULL), GG_OK);
    assert_int_equal(depth(f, "q"), GG_STORE_MANY_MAX);
}

/* fault_fails_batch - with kind armed to fail from now on, put_many and
 * ack_many fail whole; disarmed, nothing of them was applied. */
static void fault_fails_batch(fix *f, gg_fault_kind kind, gg_err err)
{
    gg_store_put_item it[3] = { item("q", "1"), item("q", "2"), item("q", "3") };
    int64_t ids[2];
    gg_store_stats s0;

    put_n(f, "q", 2, ids);
    s0 = stats(f);
    assert_int_equal(gg_store_fault_arm(kind, 1, err, 0), GG_OK);
    assert_int_equal(gg_store_put_many(f->st, it, 3, NULL), err);
    assert_int_equal(gg_store_ack_many(f->st, ids, 2), err);
    gg_store_fault_disarm();
    assert_int_equal(depth(f, "q"), 2);
    assert_int_equal(stats(f).puts, s0.puts);
    assert_int_equal(stats(f).acks, s0.acks);
    assert_true(stats(f).faults > s0.faults);
    /* Nothing was half-applied: the same calls now succeed whole. */
    assert_int_equal(gg_store_ack_many(f->st, ids, 2), GG_OK);
    assert_int_equal(gg_store_put_many(f->st, it, 3, NULL), GG_OK);
    assert_int_equal(depth(f, "q"), 3);
    reopen(f, NULL);
    assert_int_equal(depth(f, "q"), 3);
}

static void test_sync_fault_fails_every_item_of_a_batch(void **state)
{
    fault_fails_batch(*state, GG_FAULT_SYNC, GG_EIO);
}

static void test_write_fault_enospc_fails_every_item_of_a_batch(void **state)
{
    fault_fails_batch(*state, GG_FAULT_WRITE, GG_ENOSPC);
}

/* ---- get_many ---- */

static void test_get_many_leases_up_to_max_in_get_order(void **state)
{
    fix *f = *state;
    static const int prio[] = { 0, 5, 0, 9, 5 };
    static const size_t want[] = { 3, 1, 4, 0, 2 };
    int64_t ids[5];
    gg_msg *m[8];
    size_t n = 99;

    for (int i = 0; i < 5; i++)
        assert_int_equal(gg_store_put_prio(f->st, "q", NULL, "x", 1, 0, prio[i], 0, &ids[i]),
                         GG_OK);
    assert_int_equal(gg_store_get_many(f->st, "q", 60000, 3, m, &n), GG_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(m[i]->id, ids[want[i]]);
    for (size_t i = 0; i < 3; i++)
        gg_msg_free(m[i]);
    assert_int_equal(gg_store_get_many(f->st, "q", 60000, 8, m, &n), GG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(m[0]->id, ids[want[3]]);
    assert_int_equal(m[1]->id, ids[want[4]]);
    gg_msg_free(m[0]);
    gg_msg_free(m[1]);
    assert_int_equal(stats(f).gets, 5);
    assert_int_equal(gg_store_get_many(f->st, "q", 60000, 8, m, &n), GG_EEMPTY);
    assert_int_equal(n, 0);
    assert_int_equal(depth(f, "q"), 5);
    assert_int_equal(gg_store_get_many(f->st, "q", 0, 8, m, &n), GG_EINVAL);
    assert_int_equal(gg_store_get_many(f->st, "q", 1000, 0, m, &n), GG_EINVAL);
}

static void test_get_many_removes_expired_and_leases_the_rest(void **state)
{
    fix *f = *state;
    int64_t now = gg_now_ms();
    gg_msg *m[8];
    size_t n = 0;

    for (int i = 0; i < 6; i++)
        assert_int_equal(gg_store_put(f->st, "q", NULL, "x", 1, i % 2 ? now + 1000 : 0, NULL),
                         GG_OK);
    gg_clock_set_offset_ms(5000);
    assert_int_equal(gg_store_get_many(f->st, "q", 60000, 8, m, &n), GG_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(m[i]->expiry_ms, 0);
        gg_msg_free(m[i]);
    }
    assert_int_equal(stats(f).expired, 3);
    assert_int_equal(depth(f, "q"), 3);
}

static void test_get_many_wait_wakes_on_a_put(void **state)
{
    fix *f = *state;
    gg_msg *m[4];
    size_t n = 0;
    int64_t t0 = gg_mono_us();

    assert_int_equal(gg_store_get_many_wait(f->st, "q", 60000, 4, 50, m, &n), GG_EEMPTY);
    assert_int_equal(n, 0);
    assert_true(gg_mono_us() - t0 >= 40000);
    put_n(f, "q", 2, NULL);
    assert_int_equal(gg_store_get_many_wait(f->st, "q", 60000, 4, 1000, m, &n), GG_OK);
    assert_int_equal(n, 2);
    gg_msg_free(m[0]);
    gg_msg_free(m[1]);
}

/* ---- ack_many ---- */

static void test_ack_many_is_all_or_nothing(void **state)
{
    fix *f = *state;
    int64_t ids[4], bad[3], dup[2];

    put_n(f, "q", 4, ids);
    bad[0] = ids[0];
    bad[1] = ids[1];
    bad[2] = ids[3] + 1000;
    assert_int_equal(gg_store_ack_many(f->st, bad, 3), GG_ENOTFOUND);
    assert_int_equal(depth(f, "q"), 4);
    dup[0] = ids[2];
    dup[1] = ids[2];
    assert_int_equal(gg_store_ack_many(f->st, dup, 2), GG_ENOTFOUND);
    assert_int_equal(depth(f, "q"), 4);
    assert_int_equal(stats(f).acks, 0);
    assert_int_equal(gg_store_ack_many(f->st, ids, 3), GG_OK);
    assert_int_equal(depth(f, "q"), 1);
    assert_int_equal(stats(f).acks, 3);
    assert_int_equal(gg_store_ack_many(f->st, ids, 0), GG_EINVAL);
}

/* ---- lease-only commits ---- */

static void test_lease_only_commit_needs_no_fsync(void **state)
{
    fix *f = *state;
    gg_store_stats s0, s1;
    gg_msg *m = NULL, *mm[4];
    size_t n = 0;

    put_n(f, "q", 3, NULL);
    s0 = stats(f);
    /* Every fsync fails from now on: a lease must not need one. */
    assert_int_equal(gg_store_fault_arm(GG_FAULT_SYNC, 1, GG_EIO, 0), GG_OK);
    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_OK);
    assert_int_equal(gg_store_get_many(f->st, "q", 60000, 4, mm, &n), GG_OK);
    assert_int_equal(n, 2);
    s1 = stats(f);
    assert_int_equal(s1.commits - s0.commits, 2);
    assert_int_equal(s1.syncs, s0.syncs);
    assert_int_equal(s1.faults, s0.faults);
    /* An ack must be durable: it needs the fsync, and fails without it. */
    assert_int_equal(gg_store_ack(f->st, m->id), GG_EIO);
    gg_store_fault_disarm();
    assert_int_equal(gg_store_ack(f->st, m->id), GG_OK);
    assert_int_equal(stats(f).syncs, s1.syncs + 1);
    gg_msg_free(m);
    gg_msg_free(mm[0]);
    gg_msg_free(mm[1]);
}

static void test_get_that_releases_a_run_out_lease_is_fsynced(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;

    put_n(f, "q", 1, NULL);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    gg_msg_free(m);
    m = NULL;
    gg_clock_set_offset_ms(5000);
    /* This get raises the backout count of the run-out lease: durable. */
    assert_int_equal(gg_store_fault_arm(GG_FAULT_SYNC, 1, GG_EIO, 0), GG_OK);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_EIO);
    assert_null(m);
    gg_store_fault_disarm();
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->backouts, 1);
    gg_msg_free(m);
}

static void test_lease_is_kept_after_a_process_crash(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;
    pid_t pid;
    int status = 0;

    gg_store_close(f->st);
    f->st = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        gg_store *st = NULL;
        gg_msg *cm = NULL;
        if (gg_store_open(f->path, NULL, &st) != GG_OK ||
            gg_store_put(st, "q", NULL, "x", 1, 0, NULL) != GG_OK ||
            gg_store_get(st, "q", 600000, &cm) != GG_OK)
            _exit(1);
        _exit(0);   /* a crash: no close, no checkpoint */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    reopen(f, NULL);
    assert_int_equal(depth(f, "q"), 1);
    /* The unsynced lease survived the crash: nothing is ready. */
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_EEMPTY);
}

/* ---- ops failing half-way in a shared commit ---- */

struct halfway {
    gg_store *st;
    int idx;
    int puts_ok, full;
};

/* halfway_thread - receives that fail after their first insert (the
 * second item's queue is full) mixed with puts that succeed. */
static void *halfway_thread(void *p)
{
    struct halfway *h = p;
    char q[32], ch[32], pq[32];

    snprintf(q, sizeof q, "r%d", h->idx);
    snprintf(ch, sizeof ch, "ch%d", h->idx);
    for (int i = 0; i < 30; i++) {
        gg_store_item it[2];
        memset(it, 0, sizeof it);
        it[0].seq = 1;
        it[0].queue = q;
        it[0].data = "a";
        it[0].len = 1;
        it[1] = it[0];
        it[1].seq = 2;
        it[1].queue = "full";
        if (gg_store_receive(h->st, ch, it, 2, NULL) == GG_EFULL)
            h->full++;
        snprintf(pq, sizeof pq, "p%d.%d", h->idx, i);
        if (gg_store_put(h->st, pq, NULL, "x", 1, 0, NULL) == GG_OK)
            h->puts_ok++;
    }
    return NULL;
}

static void test_call_failing_half_way_in_a_shared_commit_is_undone_alone(void **state)
{
    fix *f = *state;
    gg_store_opts o = { .max_depth = 1, .backout_threshold = 5 };
    struct halfway h[8];
    pthread_t th[8];
    int64_t mark = -1;

    reopen(f, &o);
    put_n(f, "full", 1, NULL);
    for (int i = 0; i < 8; i++) {
        memset(&h[i], 0, sizeof h[i]);
        h[i].st = f->st;
        h[i].idx = i;
        assert_int_equal(pthread_create(&th[i], NULL, halfway_thread, &h[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        char q[32], ch[32];
        pthread_join(th[i], NULL);
        assert_int_equal(h[i].full, 30);
        assert_int_equal(h[i].puts_ok, 30);
        snprintf(q, sizeof q, "r%d", i);
        snprintf(ch, sizeof ch, "ch%d", i);
        assert_int_equal(depth(f, q), 0);
        assert_int_equal(gg_store_mark(f->st, ch, &mark), GG_OK);
        assert_int_equal(mark, 0);
        for (int k = 0; k < 30; k++) {
            char pq[32];
            snprintf(pq, sizeof pq, "p%d.%d", i, k);
            assert_int_equal(depth(f, pq), 1);
        }
    }
    assert_int_equal(depth(f, "full"), 1);
    assert_int_equal(stats(f).puts, 1 + 8 * 30);
}

static void test_put_many_over_many_queues_counts_each_and_fails_whole(void **state)
{
    fix *f = *state;
    gg_store_opts o = { .max_depth = 2, .backout_threshold = 5 };
    static char names[41][16];
    gg_store_put_item it[41];
    gg_queue_info q[64];
    size_t n = 0;

    reopen(f, &o);
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "m%02d", i);
        it[i] = item(names[i], "abc");
    }
    /* The 41st item is a third on m00: over the limit after 40 queues. */
    it[40] = item(names[0], "abc");
    assert_int_equal(gg_store_put_many(f->st, it, 40, NULL), GG_OK);
    assert_int_equal(gg_store_put_many(f->st, it, 41, NULL), GG_EFULL);
    for (int i = 0; i < 40; i++)
        assert_int_equal(depth(f, names[i]), 1);
    assert_int_equal(gg_store_put_many(f->st, it, 40, NULL), GG_OK);
    assert_int_equal(gg_store_queues(f->st, q, 64, &n), GG_OK);
    assert_int_equal(n, 40);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(q[i].depth, 2);
        assert_int_equal(q[i].bytes, 6);
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_put_many_puts_every_item_in_order_with_one_commit),
        T(test_put_many_over_a_queue_limit_applies_nothing),
        T(test_put_many_over_many_queues_counts_each_and_fails_whole),
        T(test_put_many_rejects_a_bad_item_or_count_and_does_nothing),
        T(test_sync_fault_fails_every_item_of_a_batch),
        T(test_write_fault_enospc_fails_every_item_of_a_batch),
        T(test_get_many_leases_up_to_max_in_get_order),
        T(test_get_many_removes_expired_and_leases_the_rest),
        T(test_get_many_wait_wakes_on_a_put),
        T(test_ack_many_is_all_or_nothing),
        T(test_lease_only_commit_needs_no_fsync),
        T(test_get_that_releases_a_run_out_lease_is_fsynced),
        T(test_lease_is_kept_after_a_process_crash),
        T(test_call_failing_half_way_in_a_shared_commit_is_undone_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
