/* test_channel_wire.c - one channel against a hand-driven TLS peer that
 * writes the frames itself: marks drop resends, batches sent back to back
 * are acknowledged in order, a burst of ACKs costs few deletes, out-of-range acks and
 * oversize frames close the link, silence is detected, a newer connection
 * replaces an older one, TLS 1.2 only when configured. */
#include "chan_fixture.h"

static void test_resent_batch_is_dropped_by_mark(void **state)
{
    fix *f = *state;
    raw r;
    start_portal(f, NULL);
    raw_open(&r, f->port);
    assert_int_equal(raw_hello(&r, 0), 0);
    raw_batch(&r, 1, 3);
    assert_int_equal(raw_ack_mark(&r), 3);
    raw_close(&r);
    /* The ack was "lost": the peer resends 2..3 with 4..5 after reconnecting. */
    raw_open(&r, f->port);
    assert_int_equal(raw_hello(&r, 0), 3);
    raw_batch(&r, 2, 5);
    assert_int_equal(raw_ack_mark(&r), 5);
    raw_batch(&r, 1, 5); /* a pure resend is acknowledged and dropped */
    assert_int_equal(raw_ack_mark(&r), 5);
    raw_close(&r);
    drain_expect(f->sa, "requests", "p2u", 5);
    int64_t mark = 0;
    assert_int_equal(gg_store_mark(f->sa, "utility", &mark), GG_OK);
    assert_int_equal(mark, 5);
}

static void test_batches_sent_back_to_back_are_acked_in_order_once(void **state)
{
    fix *f = *state;
    raw r;
    start_portal(f, NULL);
    raw_open(&r, f->port);
    assert_int_equal(raw_hello(&r, 0), 0);
    /* 40 batches of 5 without waiting: some arrive while others commit. */
    for (int b = 0; b < 40; b++)
        raw_batch(&r, b * 5 + 1, b * 5 + 5);
    raw_batch(&r, 1, 10); /* and a resend */
    int64_t last = 0;
    int acks = 0;
    while (last < 200) {
        int64_t m = raw_ack_mark(&r);
        assert_true(m >= last); /* never backwards, never past what was sent */
        assert_true(m <= 200);
        last = m;
        acks++;
    }
    assert_true(acks >= 1 && acks <= 41);
    raw_close(&r);
    drain_expect(f->sa, "requests", "p2u", 200);
    assert_int_equal(depth(f->sa, "requests"), 0);
    gg_channel_stats s = stats(f->ca);
    assert_int_equal(s.seq_in, 200);
    assert_int_equal(s.msgs_in, 200);
}

static void test_acks_in_a_burst_cost_few_deletes(void **state)
{
    fix *f = *state;
    raw r;
    gg_channel_cfg a = cfg_of(1, "portal", "utility", NULL);
    a.batch_max = 1;
    a.window = 256;
    put_n(f->sa, "requests", "p2u", 0, 200);
    start_portal(f, &a);
    raw_open(&r, f->port);
    assert_int_equal(raw_hello(&r, 0), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(raw_next(&r), GG_FRAME_BATCH);
    gg_store_stats s0, s1;
    assert_int_equal(gg_store_get_stats(f->sa, &s0), GG_OK);
    gg_buf b = GG_BUF_INIT(0);
    for (int64_t m = 1; m <= 200; m++)
        assert_int_equal(gg_frame_put_ack(&b, m), GG_OK);
    assert_int_equal(raw_send(&r, &b), 0); /* 200 ACKs in one write */
    gg_buf_free(&b);
    assert_true(wait_depth(f->sa, GG_XMIT_QUEUE, 0, 3000));
    assert_int_equal(stats(f->ca).seq_out_acked, 200);
    assert_int_equal(gg_store_get_stats(f->sa, &s1), GG_OK);
    /* The deletes of 200 ACKs: coalesced into a few commits, not 200. */
    assert_true(s1.commits - s0.commits >= 1);
    assert_true(s1.commits - s0.commits <= 10);
    raw_close(&r);
}

static void test_ack_beyond_sent_closes_link_and_keeps_messages(void **state)
{
    fix *f = *state;
    raw r;
    gg_frame_item *items = NULL;
    size_t n = 0;
    put_n(f->sa, "requests", "p2u", 0, 3);
    start_portal(f, NULL);
    raw_open(&r, f->port);
    assert_int_equal(raw_hello(&r, 0), 0);
    assert_int_equal(raw_next(&r), GG_FRAME_BATCH);
    assert_int_equal(gg_frame_get_batch(r.in.data + 5, r.in.len - 5, &items, &n), GG_OK);
    assert_int_equal(n, 3);
    assert_int_equal(items[0].seq, 1);
    assert_int_equal(items[2].seq, 3);
    assert_string_equal(items[2].dest, "requests");
    free(items);
    raw_send_ack(&r, 1000); /* never sent: would delete unsent messages */
    assert_int_equal(raw_next(&r), -1);
    raw_close(&r);
    assert_int_equal(depth(f->sa, GG_XMIT_QUEUE), 3);
    /* Reconnect having committed 1..2: the channel drops them, resends 3. */
    raw_open(&r, f->port);
    assert_int_equal(raw_hello(&r, 2), 0);
    assert_int_equal(raw_next(&r), GG_FRAME_BATCH);
    assert_int_equal(gg_frame_get_batch(r.in.data + 5, r.in.len - 5, &items, &n), GG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].seq, 3);
    free(items);
    /* HELLO(2) has 1..2 deleted, by the deleter thread: soon, not at once. */
    assert_true(wait_depth(f->sa, GG_XMIT_QUEUE, 1, 3000));
    raw_send_ack(&r, 3);
    assert_true(wait_depth(f->sa, GG_XMIT_QUEUE, 0, 3000));
    assert_int_equal(stats(f->ca).seq_out_acked, 3);
    raw_close(&r);
}

static void test_oversize_frame_closes_link(void **state)
{
    fix *f = *state;
    raw r;
    start_portal(f, NULL);
    raw_open(&r, f->port);
    raw_hello(&r, 0);
    assert_true(wait_running(f->ca, 3000));
    uint8_t big[] = { 0x00, 0x80, 0x00, 0x01, GG_FRAME_BATCH }; /* 8 MiB + 1 */
    assert_int_equal(SSL_write(r.ssl, big, sizeof big), (int)sizeof big);
    assert_int_equal(raw_next(&r), -1);
    raw_close(&r);
    assert_int_not_equal(stats(f->ca).state, GG_CHANNEL_RUNNING);
    /* The channel takes the next connection as usual. */
    raw_open(&r, f->port);
    raw_hello(&r, 0);
    assert_true(wait_running(f->ca, 3000));
    raw_close(&r);
}

static void test_silent_peer_is_declared_dead(void **state)
{
    fix *f = *state;
    raw r;
    gg_channel_cfg a = cfg_of(1, "portal", "utility", NULL);
    a.heartbeat_ms = 100;
    a.dead_ms = 500;
    start_portal(f, &a);
    raw_open(&r, f->port);
    raw_hello(&r, 0);
    assert_true(wait_running(f->ca, 3000));
    sleep_ms(1200); /* read nothing, answer no PING */
    assert_int_equal(stats(f->ca).state, GG_CHANNEL_RETRYING);
    int type;
    do
        type = raw_frame(&r);
    while (type > 0);
    assert_int_equal(type, -1);
    raw_close(&r);
}

static void test_newer_connection_replaces_older(void **state)
{
    fix *f = *state;
    raw r1, r2;
    start_portal(f, NULL);
    raw_open(&r1, f->port);
    raw_hello(&r1, 0);
    assert_true(wait_running(f->ca, 3000));
    raw_open(&r2, f->port);
    raw_hello(&r2, 0);
    assert_int_equal(raw_next(&r1), -1); /* the older one is closed */
    put_n(f->sa, "requests", "p2u", 0, 2);
    assert_int_equal(raw_next(&r2), GG_FRAME_BATCH);
    assert_int_equal(stats(f->ca).state, GG_CHANNEL_RUNNING);
    assert_int_equal(stats(f->ca).reconnects, 1);
    raw_close(&r1);
    raw_close(&r2);
}

static void test_tls12_only_when_configured(void **state)
{
    fix *f = *state;
    raw r;
    start_portal(f, NULL);
    /* A TLS 1.2 client against the default TLS 1.3-only channel. */
    assert_int_not_equal(raw_try(&r, f->port, TLS1_2_VERSION), 1);
    raw_close(&r);
    for (int t = 0; t < 2000 && stats(f->ca).refused < 1; t += 10)
        sleep_ms(10);
    assert_int_equal(stats(f->ca).refused, 1);
    gg_channel_stop(f->ca);
    f->ca = NULL;
    gg_channel_cfg a = cfg_of(1, "portal", "utility", NULL);
    a.tls12 = 1;
    start_portal(f, &a);
    assert_int_equal(raw_try(&r, f->port, TLS1_2_VERSION), 1);
    assert_string_equal(SSL_get_version(r.ssl), "TLSv1.2");
    assert_non_null(strstr(SSL_get_cipher_name(r.ssl), "ECDHE"));
    raw_hello(&r, 0);
    assert_true(wait_running(f->ca, 3000));
    raw_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resent_batch_is_dropped_by_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_sent_back_to_back_are_acked_in_order_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_in_a_burst_cost_few_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_beyond_sent_closes_link_and_keeps_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_frame_closes_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_peer_is_declared_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_connection_replaces_older, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls12_only_when_configured, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
