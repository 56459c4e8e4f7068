/* test_channel.c - the site-to-site channel end to end, in one process: two
 * stores and two channels on 127.0.0.1 moving messages both ways once and
 * in order across restarts, refusing wrong peers, holding batches for a
 * full queue while the other direction flows, deleting acknowledged
 * messages later without resending them, reading each new message of xmit
 * once, woken by the store (also after many restarts on one store). Wire-level tests with a hand-driven peer are in
 * test_channel_wire.c. */
#include "chan_fixture.h"

static void test_messages_cross_both_ways_once(void **state)
{
    fix *f = *state;
    put_n(f->sa, "requests", "p2u", 0, 300);
    put_n(f->sb, "replies", "u2p", 0, 200);
    start_portal(f, NULL);
    start_utility(f, NULL);
    assert_true(wait_running(f->ca, 5000));
    assert_true(wait_running(f->cb, 5000));
    assert_true(wait_depth(f->sb, "requests", 300, 10000));
    assert_true(wait_depth(f->sa, "replies", 200, 10000));
    /* Acknowledged messages leave the senders' xmit. */
    assert_true(wait_depth(f->sa, GG_XMIT_QUEUE, 0, 5000));
    assert_true(wait_depth(f->sb, GG_XMIT_QUEUE, 0, 5000));
    sleep_ms(300);
    drain_expect(f->sb, "requests", "p2u", 300);
    drain_expect(f->sa, "replies", "u2p", 200);
    gg_channel_stats a = stats(f->ca), b = stats(f->cb);
    assert_int_equal(a.seq_out_acked, 300);
    assert_int_equal(b.seq_out_acked, 200);
    assert_int_equal(a.seq_in, 200);
    assert_int_equal(b.seq_in, 300);
    assert_int_equal(a.refused, 0);
    assert_int_equal(b.reconnects, 0);
    assert_true(a.bytes_in > 0 && a.bytes_out > 0);
    int64_t mark = 0;
    assert_int_equal(gg_store_mark(f->sb, "portal", &mark), GG_OK);
    assert_int_equal(mark, 300);
    assert_string_equal(gg_channel_state_name(a.state), "running");
}

static void test_new_messages_are_sent_without_waiting_for_a_tick(void **state)
{
    fix *f = *state;
    gg_channel_cfg a = cfg_of(1, "portal", "utility", NULL);
    gg_channel_cfg b = cfg_of(0, "utility", "portal", NULL);
    a.heartbeat_ms = b.heartbeat_ms = 5000;
    a.dead_ms = b.dead_ms = 20000;
    start_portal(f, &a);
    start_utility(f, &b);
    assert_true(wait_running(f->ca, 5000));
    assert_true(wait_running(f->cb, 5000));
    put_n(f->sa, "requests", "p2u", 0, 40);
    /* Well before the next heartbeat tick: the store watch woke the channel. */
    assert_true(wait_depth(f->sb, "requests", 40, 3000));
    drain_expect(f->sb, "requests", "p2u", 40);
}

/* slow_ticks - a pair of configs whose heartbeat never comes during a test:
 * whatever crosses was woken by the store. */
static void slow_ticks(gg_channel_cfg *a, gg_channel_cfg *b)
{
    *a = cfg_of(1, "portal", "utility", NULL);
    *b = cfg_of(0, "utility", "portal", NULL);
    a->heartbeat_ms = b->heartbeat_ms = 30000;
    a->dead_ms = b->dead_ms = 60000;
}

static void test_each_put_is_read_once_and_sent_without_a_tick(void **state)
{
    fix *f = *state;
    gg_channel_cfg a, b;
    slow_ticks(&a, &b);
    start_portal(f, &a);
    start_utility(f, &b);
    assert_true(wait_running(f->ca, 5000));
    assert_true(wait_running(f->cb, 5000));
    int64_t reads0 = stats(f->ca).xmit_reads;
    /* One at a time: each put must wake the reader (no lost wake-up) ... */
    for (int i = 0; i < 30; i++) {
        put_n(f->sa, "requests", "p2u", i, 1);
        assert_true(wait_depth(f->sb, "requests", i + 1, 2000));
    }
    for (int t = 0; t < 2000 && stats(f->ca).seq_out_acked < 30; t += 5)
        sleep_ms(5);
    assert_int_equal(stats(f->ca).seq_out_acked, 30);
    /* ... and costs one read of xmit: none after sending it (read-ahead)
     * or after its ACK, which found nothing new. */
    int64_t reads = stats(f->ca).xmit_reads - reads0;
    assert_true(reads >= 30);
    assert_true(reads <= 36); /* 30, the first look after HELLO, and slack */
    drain_expect(f->sb, "requests", "p2u", 30);
}

static void test_restarted_channel_is_still_woken_by_the_store(void **state)
{
    fix *f = *state;
    gg_channel_cfg a, b;
    slow_ticks(&a, &b);
    /* More starts than the store has watcher slots: each stop gives its
     * slot back. */
    for (int i = 0; i < 10; i++) {
        start_portal(f, &a);
        gg_channel_stop(f->ca);
        f->ca = NULL;
    }
    start_portal(f, &a);
    start_utility(f, &b);
    assert_true(wait_running(f->ca, 5000));
    assert_true(wait_running(f->cb, 5000));
    put_n(f->sa, "requests", "p2u", 0, 5);
    assert_true(wait_depth(f->sb, "requests", 5, 3000));
    drain_expect(f->sb, "requests", "p2u", 5);
}

static void test_resend_after_reconnect_is_dropped(void **state)
{
    fix *f = *state;
    const int n = 1200, m = 400;
    gg_channel_cfg a = cfg_of(1, "portal", "utility", NULL);
    gg_channel_cfg b = cfg_of(0, "utility", "portal", NULL);
    a.batch_max = b.batch_max = 4;
    a.window = b.window = 3;
    put_n(f->sa, "requests", "p2u", 0, n);
    put_n(f->sb, "replies", "u2p", 0, m);
    start_portal(f, &a);
    start_utility(f, &b);
    /* Cut the link mid-stream from each side in turn, batches in flight. */
    for (int round = 1; round <= 4; round++) {
        int64_t goal = n * round / 5;
        for (int t = 0; t < 10000 && depth(f->sb, "requests") < goal; t += 5)
            sleep_ms(5);
        if (round % 2) {
            gg_channel_stop(f->cb);
            f->cb = NULL;
            start_utility(f, &b);
        } else {
            gg_channel_stop(f->ca);
            f->ca = NULL;
            start_portal(f, &a);
        }
    }
    assert_true(wait_depth(f->sb, "requests", n, 15000));
    assert_true(wait_depth(f->sa, "replies", m, 15000));
    assert_true(wait_depth(f->sa, GG_XMIT_QUEUE, 0, 5000));
    sleep_ms(300);
    drain_expect(f->sb, "requests", "p2u", n);
    drain_expect(f->sa, "replies", "u2p", m);
}

static void test_peer_with_wrong_name_is_refused(void **state)
{
    fix *f = *state;
    char crt[700], key[700];
    snprintf(crt, sizeof crt, "%s/mallory.crt", f->dir);
    snprintf(key, sizeof key, "%s/mallory.key", f->dir);
    assert_int_equal(gg_pki_issue_cert(pki_path("ca.crt"), pki_path("ca.key"), "mallory", -60,
                                       3600, crt, key),
                     GG_OK);
    put_n(f->sb, "replies", "u2p", 0, 5);
    put_n(f->sa, "requests", "p2u", 0, 5);

    /* A client whose certificate names another site: the server refuses. */
    gg_channel_cfg b = cfg_of(0, "utility", "portal", NULL);
    b.cert_file = crt;
    b.key_file = key;
    start_portal(f, NULL);
    start_utility(f, &b);
    sleep_ms(1200);
    assert_true(stats(f->ca).refused >= 1);
    assert_int_not_equal(stats(f->ca).state, GG_CHANNEL_RUNNING);
    assert_int_not_equal(stats(f->cb).state, GG_CHANNEL_RUNNING);
    assert_int_equal(depth(f->sa, "replies"), 0);
    assert_int_equal(depth(f->sb, "requests"), 0);
    gg_channel_stop(f->cb);
    gg_channel_stop(f->ca);
    f->ca = f->cb = NULL;

    /* A server whose certificate names another site: the client refuses. */
    gg_channel_cfg a = cfg_of(1, "portal", "utility", NULL);
    a.cert_file = crt;
    a.key_file = key;
    start_portal(f, &a);
    start_utility(f, NULL);
    sleep_ms(1200);
    assert_true(stats(f->cb).refused >= 1);
    assert_int_not_equal(stats(f->cb).state, GG_CHANNEL_RUNNING);
    assert_int_equal(depth(f->sa, "replies"), 0);
    assert_int_equal(depth(f->sb, "requests"), 0);
}

static void test_expired_peer_certificate_is_refused(void **state)
{
    fix *f = *state;
    char crt[700], key[700];
    snprintf(crt, sizeof crt, "%s/old.crt", f->dir);
    snprintf(key, sizeof key, "%s/old.key", f->dir);
    assert_int_equal(gg_pki_issue_cert(pki_path("ca.crt"), pki_path("ca.key"), "utility",
                                       -7200, -3600, crt, key),
                     GG_OK);
    gg_channel_cfg b = cfg_of(0, "utility", "portal", NULL);
    b.cert_file = crt;
    b.key_file = key;
    start_portal(f, NULL);
    start_utility(f, &b);
    sleep_ms(1000);
    assert_true(stats(f->ca).refused >= 1);
    assert_int_not_equal(stats(f->ca).state, GG_CHANNEL_RUNNING);
}

/* closed_within - whether the server closes fd within ms (reading only). */
static int closed_within(int fd, int ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, ms) <= 0)
        return 0;
    char c;
    ssize_t r = recv(fd, &c, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

static void test_allow_list_refuses_before_tls(void **state)
{
    fix *f = *state;
    gg_channel_cfg a = cfg_of(1, "portal", "utility", NULL);
    a.dead_ms = 20000; /* no handshake timeout during the test */
    start_portal(f, &a);
    /* From 127.0.0.2, not in 127.0.0.1/32: closed without a byte sent. */
    int bad = connect_from("127.0.0.2", f->port);
    assert_true(closed_within(bad, 2000));
    close(bad);
    assert_int_equal(stats(f->ca).refused, 1);
    /* From 127.0.0.1, silent: kept open, waiting for a ClientHello. */
    int good = connect_from("127.0.0.1", f->port);
    assert_false(closed_within(good, 500));
    close(good);
    assert_int_equal(stats(f->ca).refused, 1);
}

static void test_bad_config_is_refused_at_start(void **state)
{
    fix *f = *state;
    gg_channel *ch = NULL;
    gg_channel_cfg c = cfg_of(1, "portal", "utility", "127.0.0.1:0");
    c.allow = "127.0.0.1/33";
    assert_int_equal(gg_channel_start(&c, f->sa, &ch), GG_ECONFIG);
    c = cfg_of(1, "portal", "utility", "127.0.0.1:0");
    c.key_file = pki_path("missing.key");
    assert_int_equal(gg_channel_start(&c, f->sa, &ch), GG_ECONFIG);
    c = cfg_of(1, "portal", "utility", "127.0.0.1:0");
    c.key_file = pki_path("utility.key"); /* not the key of portal.crt */
    assert_int_equal(gg_channel_start(&c, f->sa, &ch), GG_ECONFIG);
    c = cfg_of(1, "portal", "utility", "127.0.0.1");
    assert_int_equal(gg_channel_start(&c, f->sa, &ch), GG_ECONFIG);
    c = cfg_of(1, "portal", "utility", "127.0.0.1:0");
    c.dead_ms = c.heartbeat_ms;
    assert_int_equal(gg_channel_start(&c, f->sa, &ch), GG_ECONFIG);
    assert_null(ch);
    gg_channel_stop(NULL);
}

static void test_full_queue_holds_batch_until_room(void **state)
{
    fix *f = *state;
    gg_store_opts o = { .max_depth = 5, .backout_threshold = 5 };
    gg_store_close(f->sb);
    f->sb = open_store(f, "utility-small", &o);
    put_n(f->sa, "requests", "p2u", 0, 12);
    start_portal(f, NULL);
    start_utility(f, NULL);
    char want[64];
    int got = 0;
    for (int t = 0; got < 12 && t < 10000;) {
        gg_msg *m = NULL;
        if (gg_store_get(f->sb, "requests", 30000, &m) != GG_OK) {
            sleep_ms(20);
            t += 20;
            continue;
        }
        int len = snprintf(want, sizeof want, "p2u-%06d", got);
        assert_int_equal(m->len, (size_t)len);
        assert_memory_equal(m->data, want, m->len);
        assert_int_equal(gg_store_ack(f->sb, m->id), GG_OK);
        gg_msg_free(m);
        got++;
    }
    assert_int_equal(got, 12);
    assert_true(stats(f->cb).held >= 1);
    assert_true(wait_depth(f->sa, GG_XMIT_QUEUE, 0, 3000));
    sleep_ms(300);
    assert_int_equal(depth(f->sb, "requests"), 0);
}

static void test_full_queue_does_not_stop_the_other_direction(void **state)
{
    fix *f = *state;
    gg_store_opts o = { .max_depth = 5, .backout_threshold = 5 };
    gg_channel_cfg a = cfg_of(1, "portal", "utility", NULL);
    gg_channel_cfg b = cfg_of(0, "utility", "portal", NULL);
    a.batch_max = b.batch_max = 4;
    a.window = b.window = 2;
    gg_store_close(f->sb);
    f->sb = open_store(f, "utility-small", &o);
    put_n(f->sa, "requests", "p2u", 0, 12);
    start_portal(f, &a);
    start_utility(f, &b);
    assert_true(wait_depth(f->sb, "requests", 5, 5000));
    /* The utility holds requests for room, yet keeps reading the portal's
     * ACKs, so its 300 replies (its xmit holds 5 at a time too, so each
     * needs ACKs read meanwhile) all get through. */
    for (int i = 0; i < 300; i++) {
        char body[32];
        int len = snprintf(body, sizeof body, "u2p-%06d", i);
        gg_err e;
        int t = 0;
        while ((e = gg_store_put(f->sb, GG_XMIT_QUEUE, "replies", body, (size_t)len, 0,
                                 NULL)) == GG_EFULL && t < 10000) {
            sleep_ms(2);
            t += 2;
        }
        assert_int_equal(e, GG_OK);
    }
    assert_true(wait_depth(f->sa, "replies", 300, 10000));
    assert_int_equal(depth(f->sb, "requests"), 5);
    assert_true(stats(f->cb).held >= 1);
    drain_expect(f->sa, "replies", "u2p", 300);
    /* Room again: the held requests follow, once each and in order. */
    char want[64];
    int got = 0;
    for (int t = 0; got < 12 && t < 10000;) {
        gg_msg *m = NULL;
        if (gg_store_get(f->sb, "requests", 30000, &m) != GG_OK) {
            sleep_ms(20);
            t += 20;
            continue;
        }
        int len = snprintf(want, sizeof want, "p2u-%06d", got);
        assert_int_equal(m->len, (size_t)len);
        assert_memory_equal(m->data, want, m->len);
        assert_int_equal(gg_store_ack(f->sb, m->id), GG_OK);
        gg_msg_free(m);
        got++;
    }
    assert_int_equal(got, 12);
    assert_true(wait_depth(f->sa, GG_XMIT_QUEUE, 0, 3000));
}

static void test_acknowledged_but_undeleted_messages_are_not_sent_again(void **state)
{
    fix *f = *state;
    /* As after a crash between the peer's ACK and the deletion: 1..3 are
     * still on the portal's xmit, and the utility committed them. */
    put_n(f->sa, "requests", "p2u", 0, 3);
    gg_store_item it[3];
    char body[3][16];
    memset(it, 0, sizeof it);
    for (int i = 0; i < 3; i++) {
        int len = snprintf(body[i], sizeof body[i], "p2u-%06d", i);
        it[i].seq = i + 1;
        it[i].queue = "requests";
        it[i].data = body[i];
        it[i].len = (size_t)len;
    }
    int64_t mark = 0;
    assert_int_equal(gg_store_receive(f->sb, "portal", it, 3, &mark), GG_OK);
    assert_int_equal(mark, 3);
    put_n(f->sa, "requests", "p2u", 3, 2);
    start_portal(f, NULL);
    start_utility(f, NULL);
    assert_true(wait_depth(f->sb, "requests", 5, 5000));
    /* The HELLO mark has 1..3 deleted unsent; only 4..5 cross. */
    assert_true(wait_depth(f->sa, GG_XMIT_QUEUE, 0, 3000));
    sleep_ms(300);
    drain_expect(f->sb, "requests", "p2u", 5);
    gg_channel_stats a = stats(f->ca), b = stats(f->cb);
    assert_int_equal(a.msgs_out, 2);
    assert_int_equal(a.seq_out_acked, 5);
    assert_int_equal(b.resends_dropped, 0);
}

static void test_acknowledged_messages_leave_xmit_by_stop(void **state)
{
    fix *f = *state;
    gg_channel_cfg a = cfg_of(1, "portal", "utility", NULL);
    a.batch_max = 1; /* one ACK per message */
    put_n(f->sa, "requests", "p2u", 0, 200);
    start_portal(f, &a);
    start_utility(f, NULL);
    assert_true(wait_depth(f->sb, "requests", 200, 10000));
    for (int t = 0; t < 5000 && stats(f->ca).seq_out_acked < 200; t += 5)
        sleep_ms(5);
    assert_int_equal(stats(f->ca).seq_out_acked, 200);
    /* Stopping right after the last ACK still deletes up to it. */
    gg_channel_stop(f->ca);
    f->ca = NULL;
    assert_int_equal(depth(f->sa, GG_XMIT_QUEUE), 0);
    drain_expect(f->sb, "requests", "p2u", 200);
}

static void test_message_without_dest_or_too_big_is_skipped(void **state)
{
    fix *f = *state;
    size_t big = (size_t)GG_CHANNEL_MSG_MAX + 1;
    uint8_t *data = calloc(1, big);
    assert_non_null(data);
    put_n(f->sa, "requests", "p2u", 0, 1);
    assert_int_equal(gg_store_put(f->sa, GG_XMIT_QUEUE, NULL, "x", 1, 0, NULL), GG_OK);
    assert_int_equal(gg_store_put(f->sa, GG_XMIT_QUEUE, "requests", data, big, 0, NULL), GG_OK);
    free(data);
    put_n(f->sa, "requests", "p2u", 1, 1);
    start_portal(f, NULL);
    start_utility(f, NULL);
    assert_true(wait_depth(f->sb, "requests", 2, 5000));
    assert_true(wait_depth(f->sa, GG_XMIT_QUEUE, 0, 3000));
    drain_expect(f->sb, "requests", "p2u", 2);
    assert_int_equal(stats(f->ca).dropped, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_messages_cross_both_ways_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_messages_are_sent_without_waiting_for_a_tick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_put_is_read_once_and_sent_without_a_tick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restarted_channel_is_still_woken_by_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resend_after_reconnect_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_with_wrong_name_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_peer_certificate_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_list_refuses_before_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config_is_refused_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_holds_batch_until_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_without_dest_or_too_big_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_does_not_stop_the_other_direction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acknowledged_but_undeleted_messages_are_not_sent_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acknowledged_messages_leave_xmit_by_stop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
