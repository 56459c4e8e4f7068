/* test_store.c - the durable queue store: behaviour of store.h, each test
 * in its own temporary directory with its own database file. */
#include <errno.h>
#include <pthread.h>
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

#define STORE_FIX_PREFIX "store-"
#include "store_fixture.h"

static int64_t put_str(fix *f, const char *q, const char *s)
{
    int64_t id = 0;
    assert_int_equal(gg_store_put(f->st, q, NULL, s, strlen(s), 0, &id), GG_OK);
    assert_true(id > 0);
    return id;
}

static void test_put_get_ack_roundtrip(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;
    int64_t id = 0;

    assert_int_equal(gg_store_put(f->st, "requests", "replies", "hello", 5, 0, &id), GG_OK);
    assert_int_equal(depth(f, "requests"), 1);
    assert_int_equal(gg_store_get(f->st, "requests", 30000, &m), GG_OK);
    assert_int_equal(m->id, id);
    assert_string_equal(m->queue, "requests");
    assert_string_equal(m->dest, "replies");
    assert_int_equal(m->len, 5);
    assert_memory_equal(m->data, "hello", 5);
    assert_int_equal(m->backouts, 0);
    assert_int_equal(m->expiry_ms, 0);
    assert_true(m->put_ms > 0);
    assert_int_equal(depth(f, "requests"), 1); /* leased still counts */
    assert_int_equal(gg_store_ack(f->st, m->id), GG_OK);
    gg_msg_free(m);
    assert_int_equal(depth(f, "requests"), 0);
    assert_int_equal(gg_store_get(f->st, "requests", 30000, &m), GG_EEMPTY);
    assert_null(m);
    assert_int_equal(stats(f).puts, 1);
    assert_int_equal(stats(f).gets, 1);
    assert_int_equal(stats(f).acks, 1);
}

static void test_empty_message_roundtrip(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;

    assert_int_equal(gg_store_put(f->st, "q", NULL, NULL, 0, 0, NULL), GG_OK);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->len, 0);
    assert_string_equal(m->dest, "");
    gg_msg_free(m);
}

static void test_put_survives_reopen(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;
    int64_t id1 = put_str(f, "q", "one");

    put_str(f, "q", "two");
    reopen(f, NULL);
    assert_int_equal(depth(f, "q"), 2);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->id, id1);
    assert_memory_equal(m->data, "one", 3);
    gg_msg_free(m);
}

static void test_ids_never_reused_after_reopen(void **state)
{
    fix *f = *state;
    int64_t id1 = put_str(f, "q", "a");
    int64_t id2;

    assert_int_equal(gg_store_delete_upto(f->st, "q", id1), GG_OK);
    reopen(f, NULL);
    id2 = put_str(f, "q", "b");
    assert_true(id2 > id1);
}

static void test_ids_never_reused_after_newest_acked_or_purged(void **state)
{
    fix *f = *state;
    int64_t id1 = put_str(f, "q", "a");
    int64_t id2 = put_str(f, "q", "b");
    int64_t id3, id4;

    assert_int_equal(gg_store_ack(f->st, id2), GG_OK);
    reopen(f, NULL);
    id3 = put_str(f, "q", "c");
    assert_true(id3 > id2);
    assert_int_equal(gg_store_dead_letter(f->st, id3, "test"), GG_OK);
    assert_int_equal(gg_store_dead_purge(f->st, 0, NULL), GG_OK);
    reopen(f, NULL);
    id4 = put_str(f, "q", "d");
    assert_true(id4 > id3);
    assert_true(id1 < id2);
}

static void test_order_within_queue_is_put_order(void **state)
{
    fix *f = *state;
    int64_t a[5], b[5];
    gg_msg *m = NULL;

    for (int i = 0; i < 5; i++) {
        a[i] = put_str(f, "qa", "a");
        b[i] = put_str(f, "qb", "b");
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(gg_store_get(f->st, "qb", 1000, &m), GG_OK);
        assert_int_equal(m->id, b[i]);
        assert_string_equal(m->queue, "qb");
        gg_msg_free(m);
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(gg_store_get(f->st, "qa", 1000, &m), GG_OK);
        assert_int_equal(m->id, a[i]);
        gg_msg_free(m);
    }
}

static void test_get_empty_returns_eempty(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;

    assert_int_equal(gg_store_get(f->st, "nothing", 1000, &m), GG_EEMPTY);
    put_str(f, "q", "x");
    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_OK);
    gg_msg_free(m);
    /* the only message is leased: nothing ready */
    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_EEMPTY);
    assert_null(m);
}

static void test_bad_arguments_are_einval(void **state)
{
    fix *f = *state;
    char longname[GG_QUEUE_NAME_MAX + 1];
    gg_msg *m = NULL;

    memset(longname, 'q', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(gg_store_put(f->st, "", NULL, "x", 1, 0, NULL), GG_EINVAL);
    assert_int_equal(gg_store_put(f->st, NULL, NULL, "x", 1, 0, NULL), GG_EINVAL);
    assert_int_equal(gg_store_put(f->st, longname, NULL, "x", 1, 0, NULL), GG_EINVAL);
    assert_int_equal(gg_store_put(f->st, "q", longname, "x", 1, 0, NULL), GG_EINVAL);
    assert_int_equal(gg_store_put(f->st, "q", NULL, NULL, 1, 0, NULL), GG_EINVAL);
    assert_int_equal(gg_store_get(f->st, "q", 0, &m), GG_EINVAL);
    assert_int_equal(depth(f, "q"), 0);
}

static void test_lease_expiry_redelivers_with_backout_count(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;
    int64_t id = put_str(f, "q", "x");

    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    gg_msg_free(m);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_EEMPTY);
    gg_clock_set_offset_ms(2000);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->id, id);
    assert_int_equal(m->backouts, 1);
    gg_msg_free(m);
    assert_int_equal(stats(f).backouts, 1);
}

static void test_lease_survives_reopen(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;

    put_str(f, "q", "x");
    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_OK);
    gg_msg_free(m);
    reopen(f, NULL);
    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_EEMPTY);
    gg_clock_set_offset_ms(61000);
    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_OK);
    assert_int_equal(m->backouts, 1);
    gg_msg_free(m);
}

static void test_backout_returns_message_with_count(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;
    int64_t id = put_str(f, "q", "x");

    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_OK);
    gg_msg_free(m);
    assert_int_equal(gg_store_backout(f->st, id), GG_OK);
    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_OK);
    assert_int_equal(m->id, id);
    assert_int_equal(m->backouts, 1);
    gg_msg_free(m);
}

static void test_backout_threshold_moves_to_dead_letters(void **state)
{
    fix *f = *state;
    gg_store_opts o = { 0, 0, 2, 0, 0 };
    gg_dead_info d[4];
    gg_msg *m = NULL;
    size_t n = 0;
    int64_t id;

    reopen(f, &o);
    id = put_str(f, "q", "poison");
    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_OK);
    gg_msg_free(m);
    assert_int_equal(gg_store_backout(f->st, id), GG_OK);
    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_OK);
    gg_msg_free(m);
    assert_int_equal(gg_store_backout(f->st, id), GG_OK);
    assert_int_equal(gg_store_get(f->st, "q", 60000, &m), GG_EEMPTY);
    assert_int_equal(depth(f, "q"), 0);
    assert_int_equal(gg_store_dead_list(f->st, 0, d, 4, &n), GG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].id, id);
    assert_string_equal(d[0].queue, "q");
    assert_string_equal(d[0].reason, "backout threshold");
    assert_int_equal(d[0].backouts, 2);
    assert_int_equal(d[0].len, 6);
    assert_int_equal(stats(f).dead, 1);
    assert_int_equal(stats(f).dead_depth, 1);
}

static void test_lease_expiry_at_threshold_dead_letters(void **state)
{
    fix *f = *state;
    gg_store_opts o = { 0, 0, 1, 0, 0 };
    gg_dead_info d[2];
    gg_msg *m = NULL;
    size_t n = 0;

    reopen(f, &o);
    put_str(f, "q", "crashes-the-worker");
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    gg_msg_free(m);
    gg_clock_set_offset_ms(5000);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_EEMPTY);
    /* the move to the dead letters was committed, not rolled back with EEMPTY */
    reopen(f, &o);
    assert_int_equal(depth(f, "q"), 0);
    assert_int_equal(gg_store_dead_list(f->st, 0, d, 2, &n), GG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].backouts, 1);
}

static void test_dead_letter_replay_returns_message_to_queue(void **state)
{
    fix *f = *state;
    gg_dead_info d[2];
    gg_msg *m = NULL;
    size_t n = 9;
    int64_t id, id2 = 0;

    id = put_str(f, "q", "bad");
    assert_int_equal(gg_store_dead_letter(f->st, id, "bad signature"), GG_OK);
    assert_int_equal(depth(f, "q"), 0);
    assert_int_equal(gg_store_dead_letter(f->st, id, "again"), GG_ENOTFOUND);
    assert_int_equal(gg_store_dead_list(f->st, 0, d, 2, &n), GG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].reason, "bad signature");
    assert_int_equal(gg_store_dead_replay(f->st, id, &id2), GG_OK);
    assert_true(id2 > id);
    assert_int_equal(gg_store_dead_replay(f->st, id, NULL), GG_ENOTFOUND);
    assert_int_equal(gg_store_dead_list(f->st, 0, d, 2, &n), GG_OK);
    assert_int_equal(n, 0);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->id, id2);
    assert_int_equal(m->backouts, 0);
    assert_memory_equal(m->data, "bad", 3);
    gg_msg_free(m);
}

static void test_expired_message_never_delivered(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;
    int64_t now = gg_now_ms(), keep;

    assert_int_equal(gg_store_put(f->st, "q", NULL, "old", 3, now + 1000, NULL), GG_OK);
    keep = put_str(f, "q", "fresh");
    gg_clock_set_offset_ms(2000);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->id, keep);
    gg_msg_free(m);
    assert_int_equal(depth(f, "q"), 1);
    assert_int_equal(stats(f).expired, 1);
}

static void test_expired_alone_is_removed_and_eempty(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;

    assert_int_equal(gg_store_put(f->st, "q", NULL, "old", 3, gg_now_ms() + 1000, NULL), GG_OK);
    gg_clock_set_offset_ms(2000);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_EEMPTY);
    assert_int_equal(depth(f, "q"), 0);
    assert_int_equal(stats(f).expired, 1);
}

static void test_get_skips_more_expired_than_one_batch(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;
    int64_t exp = gg_now_ms() + 1000, keep;

    for (int i = 0; i < 40; i++)
        assert_int_equal(gg_store_put(f->st, "q", NULL, "o", 1, exp, NULL), GG_OK);
    keep = put_str(f, "q", "live");
    gg_clock_set_offset_ms(2000);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->id, keep);
    gg_msg_free(m);
    assert_int_equal(stats(f).expired, 40);
}

static void test_depth_limit_fails_put_with_efull(void **state)
{
    fix *f = *state;
    gg_store_opts o = { 2, 0, 5, 0, 0 };
    gg_msg *m = NULL;

    reopen(f, &o);
    put_str(f, "q", "1");
    put_str(f, "q", "2");
    assert_int_equal(gg_store_put(f->st, "q", NULL, "3", 1, 0, NULL), GG_EFULL);
    assert_int_equal(depth(f, "q"), 2);
    put_str(f, "other", "limits are per queue");
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(gg_store_ack(f->st, m->id), GG_OK);
    gg_msg_free(m);
    put_str(f, "q", "3");
}

static void test_byte_limit_fails_put_with_efull(void **state)
{
    fix *f = *state;
    gg_store_opts o = { 0, 10, 5, 0, 0 };

    reopen(f, &o);
    put_str(f, "q", "123456");
    assert_int_equal(gg_store_put(f->st, "q", NULL, "12345", 5, 0, NULL), GG_EFULL);
    put_str(f, "q", "1234");
    assert_int_equal(depth(f, "q"), 2);
}

static void test_full_disk_fails_put_with_enospc_and_keeps_data(void **state)
{
    fix *f = *state;
    gg_store_opts o = { 0, 0, 5, 256 * 1024, 0 };
    static uint8_t big[64 * 1024];
    int64_t first = 0;
    gg_msg *m = NULL;
    gg_err err = GG_OK;
    int puts = 0;

    reopen(f, &o);
    memset(big, 0xab, sizeof big);
    for (int i = 0; i < 50 && err == GG_OK; i++) {
        err = gg_store_put(f->st, "q", NULL, big, sizeof big, 0, first ? NULL : &first);
        if (err == GG_OK)
            puts++;
    }
    assert_int_equal(err, GG_ENOSPC);
    assert_true(puts > 0);
    assert_int_equal(depth(f, "q"), puts);
    /* still usable: read and ack what is there, then put again */
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->id, first);
    assert_int_equal(m->len, sizeof big);
    assert_int_equal(gg_store_ack(f->st, m->id), GG_OK);
    gg_msg_free(m);
    assert_int_equal(depth(f, "q"), puts - 1);
    put_str(f, "q", "small");
}

static void test_receive_drops_resent_sequences(void **state)
{
    fix *f = *state;
    gg_store_item b1[3] = {
        { 1, "requests", 0, "a", 1, 0, 0 }, { 2, "events", 0, "b", 1, 0, 0 }, { 3, "requests", 0, "c", 1, 0, 0 }
    };
    gg_store_item b2[3] = {
        { 2, "events", 0, "b", 1, 0, 0 }, { 3, "requests", 0, "c", 1, 0, 0 }, { 4, "requests", 0, "d", 1, 0, 0 }
    };
    int64_t mark = 0;
    gg_msg *m = NULL;

    assert_int_equal(gg_store_mark(f->st, "utility", &mark), GG_OK);
    assert_int_equal(mark, 0);
    assert_int_equal(gg_store_receive(f->st, "utility", b1, 3, &mark), GG_OK);
    assert_int_equal(mark, 3);
    assert_int_equal(gg_store_receive(f->st, "utility", b2, 3, &mark), GG_OK);
    assert_int_equal(mark, 4);
    assert_int_equal(depth(f, "requests"), 3);
    assert_int_equal(depth(f, "events"), 1);
    assert_int_equal(stats(f).dropped, 2);
    /* a whole batch resent: nothing applied, mark unchanged */
    assert_int_equal(gg_store_receive(f->st, "utility", b2, 3, &mark), GG_OK);
    assert_int_equal(mark, 4);
    assert_int_equal(depth(f, "requests"), 3);
    /* marks are per channel */
    assert_int_equal(gg_store_mark(f->st, "other", &mark), GG_OK);
    assert_int_equal(mark, 0);
    reopen(f, NULL);
    assert_int_equal(gg_store_mark(f->st, "utility", &mark), GG_OK);
    assert_int_equal(mark, 4);
    assert_int_equal(gg_store_get(f->st, "requests", 1000, &m), GG_OK);
    assert_memory_equal(m->data, "a", 1);
    assert_string_equal(m->dest, "");
    gg_msg_free(m);
}

static void test_receive_is_atomic_with_mark(void **state)
{
    fix *f = *state;
    gg_store_opts o = { 2, 0, 5, 0, 0 };
    gg_store_item b[3] = {
        { 1, "q", 0, "a", 1, 0, 0 }, { 2, "q", 0, "b", 1, 0, 0 }, { 3, "q", 0, "c", 1, 0, 0 }
    };
    int64_t mark = -1;

    reopen(f, &o);
    assert_int_equal(gg_store_receive(f->st, "peer", b, 3, &mark), GG_EFULL);
    assert_int_equal(mark, -1);
    assert_int_equal(depth(f, "q"), 0);
    assert_int_equal(gg_store_mark(f->st, "peer", &mark), GG_OK);
    assert_int_equal(mark, 0);
    assert_int_equal(gg_store_receive(f->st, "peer", b, 2, &mark), GG_OK);
    assert_int_equal(mark, 2);
    assert_int_equal(depth(f, "q"), 2);
}

static void test_ack_put_is_one_transaction(void **state)
{
    fix *f = *state;
    gg_store_opts o = { 1, 0, 5, 0, 0 };
    gg_msg *m = NULL, **v = NULL;
    size_t n = 0;

    put_str(f, "requests", "req");
    assert_int_equal(gg_store_get(f->st, "requests", 60000, &m), GG_OK);
    assert_int_equal(gg_store_ack_put(f->st, m->id, "xmit", "replies", "rep", 3, 0), GG_OK);
    gg_msg_free(m);
    assert_int_equal(depth(f, "requests"), 0);
    assert_int_equal(gg_store_browse(f->st, "xmit", 0, 10, 0, &v, &n), GG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0]->dest, "replies");
    assert_memory_equal(v[0]->data, "rep", 3);
    gg_msgs_free(v, n);

    /* the put fails (xmit full): the ack is not applied either */
    reopen(f, &o);
    put_str(f, "requests", "req2");
    assert_int_equal(gg_store_get(f->st, "requests", 60000, &m), GG_OK);
    assert_int_equal(gg_store_ack_put(f->st, m->id, "xmit", "replies", "r", 1, 0), GG_EFULL);
    assert_int_equal(depth(f, "requests"), 1);
    assert_int_equal(depth(f, "xmit"), 1);
    /* the ack fails (unknown id): nothing is put */
    assert_int_equal(gg_store_ack_put(f->st, m->id + 100, "other", NULL, "r", 1, 0),
                     GG_ENOTFOUND);
    assert_int_equal(depth(f, "other"), 0);
    gg_msg_free(m);
}

static void test_browse_and_delete_upto(void **state)
{
    fix *f = *state;
    int64_t id[5];
    gg_msg **v = NULL, *m = NULL;
    size_t n = 0;

    for (int i = 0; i < 5; i++)
        id[i] = put_str(f, "xmit", "0123456789");
    assert_int_equal(gg_store_browse(f->st, "xmit", 0, 3, 0, &v, &n), GG_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(v[i]->id, id[i]);
    gg_msgs_free(v, n);
    assert_int_equal(gg_store_browse(f->st, "xmit", id[2], 10, 0, &v, &n), GG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0]->id, id[3]);
    gg_msgs_free(v, n);
    /* byte bound: stops once about max_bytes are read, but at least one */
    assert_int_equal(gg_store_browse(f->st, "xmit", 0, 10, 15, &v, &n), GG_OK);
    assert_int_equal(n, 2);
    gg_msgs_free(v, n);
    assert_int_equal(gg_store_browse(f->st, "xmit", 0, 10, 1, &v, &n), GG_OK);
    assert_int_equal(n, 1);
    gg_msgs_free(v, n);
    /* browsing leases nothing */
    assert_int_equal(gg_store_get(f->st, "xmit", 1000, &m), GG_OK);
    assert_int_equal(m->id, id[0]);
    gg_msg_free(m);
    assert_int_equal(gg_store_delete_upto(f->st, "xmit", id[2]), GG_OK);
    assert_int_equal(depth(f, "xmit"), 2);
    {
        /* Their bytes and their bodies went with them. */
        gg_queue_info qi[4];
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        size_t nq = 0;

        assert_int_equal(gg_store_queues(f->st, qi, 4, &nq), GG_OK);
        assert_int_equal(nq, 1);
        assert_int_equal(qi[0].bytes, 20);
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM bodies", -1, &s, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(s, 0), 2);
        sqlite3_finalize(s);
        sqlite3_close(db);
    }
    assert_int_equal(gg_store_browse(f->st, "xmit", 0, 10, 0, &v, &n), GG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0]->id, id[3]);
    assert_int_equal(v[1]->id, id[4]);
    gg_msgs_free(v, n);
    assert_int_equal(gg_store_browse(f->st, "empty", 0, 10, 0, &v, &n), GG_OK);
    assert_int_equal(n, 0);
    gg_msgs_free(v, n);
}

static void test_ack_unknown_id_is_enotfound(void **state)
{
    fix *f = *state;
    gg_msg *m = NULL;

    assert_int_equal(gg_store_ack(f->st, 12345), GG_ENOTFOUND);
    assert_int_equal(gg_store_backout(f->st, 12345), GG_ENOTFOUND);
    put_str(f, "q", "x");
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(gg_store_ack(f->st, m->id), GG_OK);
    assert_int_equal(gg_store_ack(f->st, m->id), GG_ENOTFOUND);
    gg_msg_free(m);
    assert_int_equal(stats(f).acks, 1);
}

static void test_queues_lists_depth_bytes_and_oldest(void **state)
{
    fix *f = *state;
    gg_queue_info q[4];
    size_t n = 0;

    put_str(f, "b", "xyz");
    put_str(f, "a", "1");
    put_str(f, "a", "22");
    assert_int_equal(gg_store_queues(f->st, q, 4, &n), GG_OK);
    assert_int_equal(n, 2);
    assert_string_equal(q[0].name, "a");
    assert_int_equal(q[0].depth, 2);
    assert_int_equal(q[0].bytes, 3);
    assert_true(q[0].oldest_put_ms > 0);
    assert_string_equal(q[1].name, "b");
    assert_int_equal(q[1].bytes, 3);
}

struct waiter {
    gg_store *st;
    int64_t waited_us;
    gg_msg *msg;
    gg_err err;
};

static void *wait_thread(void *p)
{
    struct waiter *w = p;
    int64_t t0 = gg_mono_us();
    gg_store_wait(w->st, "q", 10000);
    w->waited_us = gg_mono_us() - t0;
    return NULL;
}

static void test_wait_wakes_on_put(void **state)
{
    fix *f = *state;
    struct waiter w = { f->st, 0, NULL, GG_OK };
    pthread_t th;

    assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
    usleep(100 * 1000);
    put_str(f, "other", "not this queue"); /* may wake it spuriously; fine */
    put_str(f, "q", "x");
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(w.waited_us < 5 * 1000000);
}

static void test_wait_times_out_without_put(void **state)
{
    fix *f = *state;
    int64_t t0 = gg_mono_us();

    gg_store_wait(f->st, "q", 150);
    assert_true(gg_mono_us() - t0 >= 140 * 1000);
}

static void *get_wait_thread(void *p)
{
    struct waiter *w = p;
    int64_t t0 = gg_mono_us();
    w->err = gg_store_get_wait(w->st, "q", 1000, 10000, &w->msg);
    w->waited_us = gg_mono_us() - t0;
    return NULL;
}

static void test_get_wait_returns_message_put_meanwhile(void **state)
{
    fix *f = *state;
    struct waiter w = { f->st, 0, NULL, GG_OK };
    pthread_t th;

    assert_int_equal(pthread_create(&th, NULL, get_wait_thread, &w), 0);
    usleep(100 * 1000);
    put_str(f, "q", "late");
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.err, GG_OK);
    assert_non_null(w.msg);
    assert_memory_equal(w.msg->data, "late", 4);
    assert_true(w.waited_us < 5 * 1000000);
    gg_msg_free(w.msg);
    assert_int_equal(gg_store_get_wait(f->st, "q", 1000, 50, &w.msg), GG_EEMPTY);
}

struct seen {
    int calls;
    char queue[GG_QUEUE_NAME_MAX];
};

static void on_add(void *arg, const char *queue)
{
    struct seen *s = arg;
    s->calls++;
    snprintf(s->queue, sizeof s->queue, "%s", queue);
}

static void test_watch_called_after_commit_that_adds(void **state)
{
    fix *f = *state;
    struct seen s = { 0, "" };
    gg_store_item it = { 1, "xmit", 0, "r", 1, 0, 0 };
    gg_msg *m = NULL;

    assert_int_equal(gg_store_watch(f->st, "xmit", on_add, &s), GG_OK);
    put_str(f, "other", "x");
    assert_int_equal(s.calls, 0);
    put_str(f, "xmit", "x");
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.queue, "xmit");
    assert_int_equal(gg_store_receive(f->st, "peer", &it, 1, NULL), GG_OK);
    assert_int_equal(s.calls, 2);
    assert_int_equal(gg_store_get(f->st, "xmit", 1000, &m), GG_OK);
    assert_int_equal(s.calls, 2); /* a get adds nothing */
    assert_int_equal(gg_store_backout(f->st, m->id), GG_OK);
    assert_int_equal(s.calls, 3); /* ready again */
    gg_msg_free(m);
    /* a failed put calls nobody */
    assert_int_equal(gg_store_put(f->st, "xmit", NULL, NULL, 1, 0, NULL), GG_EINVAL);
    assert_int_equal(s.calls, 3);
    for (int i = 1; i < 8; i++)
        assert_int_equal(gg_store_watch(f->st, "xmit", on_add, &s), GG_OK);
    assert_int_equal(gg_store_watch(f->st, "xmit", on_add, &s), GG_EFULL);
}

static void test_open_refuses_other_schema_version(void **state)
{
    fix *f = *state;
    gg_store *st = NULL;
    sqlite3 *db = NULL;

    gg_store_close(f->st);
    f->st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value='99' WHERE key='schema_version'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(gg_store_open(f->path, NULL, &st), GG_EIO);
    assert_null(st);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value='3' WHERE key='schema_version'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(gg_store_open(f->path, NULL, &f->st), GG_OK);
}

static void test_open_refuses_foreign_database(void **state)
{
    fix *f = *state;
    char path[700];
    gg_store *st = NULL;
    sqlite3 *db = NULL;

    snprintf(path, sizeof path, "%s/other.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(gg_store_open(path, NULL, &st), GG_EIO);
    assert_null(st);
    unlink(path);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_put_get_ack_roundtrip),
        T(test_empty_message_roundtrip),
        T(test_put_survives_reopen),
        T(test_ids_never_reused_after_reopen),
        T(test_ids_never_reused_after_newest_acked_or_purged),
        T(test_order_within_queue_is_put_order),
        T(test_get_empty_returns_eempty),
        T(test_bad_arguments_are_einval),
        T(test_lease_expiry_redelivers_with_backout_count),
        T(test_lease_survives_reopen),
        T(test_backout_returns_message_with_count),
        T(test_backout_threshold_moves_to_dead_letters),
        T(test_lease_expiry_at_threshold_dead_letters),
        T(test_dead_letter_replay_returns_message_to_queue),
        T(test_expired_message_never_delivered),
        T(test_expired_alone_is_removed_and_eempty),
        T(test_get_skips_more_expired_than_one_batch),
        T(test_depth_limit_fails_put_with_efull),
        T(test_byte_limit_fails_put_with_efull),
        T(test_full_disk_fails_put_with_enospc_and_keeps_data),
        T(test_receive_drops_resent_sequences),
        T(test_receive_is_atomic_with_mark),
        T(test_ack_put_is_one_transaction),
        T(test_browse_and_delete_upto),
        T(test_ack_unknown_id_is_enotfound),
        T(test_queues_lists_depth_bytes_and_oldest),
        T(test_wait_wakes_on_put),
        T(test_wait_times_out_without_put),
        T(test_get_wait_returns_message_put_meanwhile),
        T(test_watch_called_after_commit_that_adds),
        T(test_open_refuses_other_schema_version),
        T(test_open_refuses_foreign_database),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
