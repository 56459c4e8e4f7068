/* test_transport.c - the embedded transport: store plus channel from config. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "pki/pki.h"
#include "transport/transport.h"
#include "site_fixture.h"

typedef gg_test_site fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    *state = f;
    return gg_test_site_init(f, "transport.");
}

static int teardown(void **state)
{
    fx *f = *state;

    if (f != NULL)
        gg_test_site_remove(f);
    free(f);
    return 0;
}

/* site_config - config text for site self (listen or connect) with extra
 * lines appended; parsed into *out. */
static gg_err site_config(fx *f, const char *self, const char *peer, int listen,
                          const char *extra, gg_config **out)
{
    char text[16384];

    gg_test_site_text(f, self, peer, listen, extra, text, sizeof text);
    return gg_test_site_parse(f, text, out);
}

/* open_site - site_config then gg_transport_open, asserting success. */
static gg_transport *open_site(fx *f, const char *self, const char *peer, int listen)
{
    gg_config *cfg = NULL;
    gg_transport *t = NULL;

    assert_int_equal(site_config(f, self, peer, listen, NULL, &cfg), GG_OK);
    assert_int_equal(gg_transport_open(cfg, &t), GG_OK);
    gg_config_free(cfg); /* the transport must not depend on it */
    return t;
}

/* xmit_depth - the messages waiting on t's transmission queue. */
static int64_t xmit_depth(gg_transport *t)
{
    int64_t depth = -1;

    assert_int_equal(gg_store_depth(gg_transport_store(t), GG_XMIT_QUEUE, &depth), GG_OK);
    return depth;
}

/* assert_open_refused - gg_transport_open refuses cfg (then freed) as a
 * config error and gives no transport. */
static void assert_open_refused(gg_config *cfg)
{
    gg_transport *t = NULL;

    assert_int_equal(gg_transport_open(cfg, &t), GG_ECONFIG);
    assert_null(t);
    gg_config_free(cfg);
}

static void test_send_puts_on_xmit_with_dest(void **state)
{
    fx *f = *state;
    gg_transport *t = open_site(f, "utility", "portal", 1);
    gg_msg **msgs = NULL;
    size_t n = 0;

    assert_int_equal(gg_transport_send(t, GG_Q_REPLIES, "hello", 5, 0), GG_OK);
    assert_int_equal(gg_store_browse(gg_transport_store(t), GG_XMIT_QUEUE, 0, 10, 1 << 20,
                                     &msgs, &n), GG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(msgs[0]->dest, GG_Q_REPLIES);
    assert_int_equal(msgs[0]->len, 5);
    assert_memory_equal(msgs[0]->data, "hello", 5);
    gg_msgs_free(msgs, n);
    gg_transport_close(t);
}

static void test_send_refuses_missing_dest(void **state)
{
    fx *f = *state;
    gg_transport *t = open_site(f, "utility", "portal", 1);

    assert_int_equal(gg_transport_send(t, NULL, "x", 1, 0), GG_EINVAL);
    assert_int_equal(gg_transport_send(t, "", "x", 1, 0), GG_EINVAL);
    assert_int_equal(xmit_depth(t), 0);
    gg_transport_close(t);
}

static void test_send_many_puts_all_in_order_or_none(void **state)
{
    fx *f = *state;
    gg_transport *t = open_site(f, "portal", "utility", 0);
    gg_transport_msg ok[3] = { { GG_Q_REQUESTS, "a", 1, 0 }, { GG_Q_REQUESTS_PRIO, "bb", 2, 0 },
                               { GG_Q_REQUESTS, "ccc", 3, 0 } };
    gg_transport_msg bad[2] = { { GG_Q_REQUESTS, "x", 1, 0 }, { "", "y", 1, 0 } };
    gg_msg **msgs = NULL;
    size_t n = 0;

    assert_int_equal(gg_transport_send_many(t, bad, 2), GG_EINVAL);
    assert_int_equal(gg_transport_send_many(t, ok, 0), GG_EINVAL);
    assert_int_equal(xmit_depth(t), 0);
    assert_int_equal(gg_transport_send_many(t, ok, 3), GG_OK);
    assert_int_equal(gg_store_browse(gg_transport_store(t), GG_XMIT_QUEUE, 0, 10, 1 << 20,
                                     &msgs, &n), GG_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(msgs[i]->dest, ok[i].dest);
        assert_int_equal(msgs[i]->len, ok[i].len);
        assert_memory_equal(msgs[i]->data, ok[i].data, ok[i].len);
    }
    gg_msgs_free(msgs, n);
    gg_transport_close(t);
}

static void test_reply_acks_request_and_queues_reply(void **state)
{
    fx *f = *state;
    gg_transport *t = open_site(f, "utility", "portal", 1);
    gg_store *st = gg_transport_store(t);
    gg_msg *m = NULL;
    gg_msg **msgs = NULL;
    size_t n = 0;
    int64_t depth = -1;

    assert_int_equal(gg_store_put(st, GG_Q_REQUESTS, NULL, "req", 3, 0, NULL), GG_OK);
    assert_int_equal(gg_store_get(st, GG_Q_REQUESTS, 30000, &m), GG_OK);
    assert_int_equal(gg_transport_reply(t, m->id, GG_Q_REPLIES, "rep", 3, 0), GG_OK);
    assert_int_equal(gg_store_depth(st, GG_Q_REQUESTS, &depth), GG_OK);
    assert_int_equal(depth, 0);
    assert_int_equal(gg_store_browse(st, GG_XMIT_QUEUE, 0, 10, 1 << 20, &msgs, &n), GG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(msgs[0]->dest, GG_Q_REPLIES);
    assert_memory_equal(msgs[0]->data, "rep", 3);
    gg_msgs_free(msgs, n);
    gg_msg_free(m);
    gg_transport_close(t);
}

static void test_reply_to_unknown_request_queues_nothing(void **state)
{
    fx *f = *state;
    gg_transport *t = open_site(f, "utility", "portal", 1);

    assert_int_not_equal(gg_transport_reply(t, 424242, GG_Q_REPLIES, "rep", 3, 0), GG_OK);
    assert_int_equal(xmit_depth(t), 0);
    gg_transport_close(t);
}

static void test_queued_message_survives_reopen(void **state)
{
    fx *f = *state;
    gg_transport *t = open_site(f, "utility", "portal", 1);

    assert_int_equal(gg_transport_send(t, GG_Q_EVENTS, "ev", 2, 0), GG_OK);
    gg_transport_close(t);
    t = open_site(f, "utility", "portal", 1);
    assert_int_equal(xmit_depth(t), 1);
    gg_transport_close(t);
}

static void test_open_fails_on_missing_certificate(void **state)
{
    fx *f = *state;
    gg_config *cfg = NULL;
    char extra[700];

    /* a second [channel] section overrides cert */
    snprintf(extra, sizeof extra, "[channel]\ncert = %s/nope.crt\n", f->dir);
    assert_int_equal(site_config(f, "utility", "portal", 1, extra, &cfg), GG_OK);
    assert_open_refused(cfg);
}

static void test_open_fails_without_channel_mode(void **state)
{
    fx *f = *state;
    gg_config *cfg = NULL;
    char text[1024];

    snprintf(text, sizeof text, "[site]\nrole = utility\n[store]\npath = %s/u.db\n", f->dir);
    assert_int_equal(gg_test_site_parse(f, text, &cfg), GG_OK);
    assert_open_refused(cfg);
}

/* wait_depth - poll queue until it holds want messages or timeout_ms passes. */
static int64_t wait_depth(gg_store *st, const char *queue, int64_t want, int timeout_ms)
{
    int64_t end = gg_mono_us() + (int64_t)timeout_ms * 1000;
    int64_t depth = -1;

    while (gg_mono_us() < end) {
        assert_int_equal(gg_store_depth(st, queue, &depth), GG_OK);
        if (depth == want)
            break;
        gg_store_wait(st, queue, 50);
    }
    return depth;
}

static void test_send_arrives_on_peer_queue(void **state)
{
    fx *f = *state;
    gg_transport *u = open_site(f, "utility", "portal", 1);
    gg_transport *p = open_site(f, "portal", "utility", 0);
    gg_msg *m = NULL;

    assert_int_equal(gg_transport_send(p, GG_Q_REQUESTS, "ping", 4, 0), GG_OK);
    assert_int_equal(wait_depth(gg_transport_store(u), GG_Q_REQUESTS, 1, 10000), 1);
    assert_int_equal(gg_store_get(gg_transport_store(u), GG_Q_REQUESTS, 30000, &m), GG_OK);
    assert_int_equal(m->len, 4);
    assert_memory_equal(m->data, "ping", 4);
    assert_int_equal(gg_transport_reply(u, m->id, GG_Q_REPLIES, "pong", 4, 0), GG_OK);
    gg_msg_free(m);
    m = NULL;
    assert_int_equal(wait_depth(gg_transport_store(p), GG_Q_REPLIES, 1, 10000), 1);
    assert_int_equal(gg_store_get(gg_transport_store(p), GG_Q_REPLIES, 30000, &m), GG_OK);
    assert_memory_equal(m->data, "pong", 4);
    gg_msg_free(m);
    assert_int_equal(wait_depth(gg_transport_store(u), GG_XMIT_QUEUE, 0, 10000), 0);
    gg_transport_close(p);
    gg_transport_close(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_send_puts_on_xmit_with_dest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_refuses_missing_dest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_many_puts_all_in_order_or_none, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reply_acks_request_and_queues_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_to_unknown_request_queues_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queued_message_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails_on_missing_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails_without_channel_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_arrives_on_peer_queue, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
