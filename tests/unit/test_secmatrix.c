/* test_secmatrix.c - the negative matrix of message security, through the
 * real utility role in process (workers, store, channel on 127.0.0.1, a
 * seeded marketing database): every flipped byte, truncations, a foreign
 * signing key, stale and future messages, replays inside the window, after
 * a restart and after a backward clock step, and 64 copies at once. Each
 * is refused with its reason and no service runs (requests_total does not
 * move); only genuine first copies are answered. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/rand.h"
#include "envelope/envelope.h"
#include "marketing/seed.h"
#include "pki/pki.h"
#include "transport/transport.h"
#include "utility/metrics.h"
#include "utility/worker.h"
#include "utility_fixture.h"

typedef struct fx {
    gg_test_pair d;         /* the utility and the portal's transport */
    char other[300];        /* a second deployment: keys nobody trusts */
    gg_env_keys *xkeys;     /* "portal" keys from the other deployment */
} fx;

static const char payload[] = "{\"account_no\":\"1\",\"from\":\"2024-01\",\"to\":\"2024-02\"}";

static int group_setup(void **state)
{
    gg_seed_opts so = { 3, 1, 7, "2024-06" };
    fx *f = calloc(1, sizeof *f);
    char why[256];

    if (f == NULL)
        return -1;
    *state = f;
    gg_log_set_level(GG_LOG_ERROR);
    if (gg_test_pair_prepare(&f->d, "secmatrix.", &so,
                             "[security]\nfreshness_ms = 300000\nclock_skew_ms = 30000\n") != 0)
        return -1;
    snprintf(f->other, sizeof f->other, "%s/other", f->d.s.dir);
    if (gg_pki_init(f->other, NULL) != GG_OK)
        return -1;
    if (gg_test_env_load(f->other, "portal", f->d.s.pki, "utility", "intl", &f->xkeys, why,
                         sizeof why) != GG_OK) {
        fprintf(stderr, "keys: %s\n", why);
        return -1;
    }
    return gg_test_pair_start(&f->d);
}

static int group_teardown(void **state)
{
    fx *f = *state;

    if (f == NULL)
        return 0;
    gg_clock_set_offset_ms(0);
    gg_env_keys_free(f->xkeys);
    gg_test_pair_free(&f->d);
    free(f);
    return 0;
}

/* seal - a bills.query request created at created_ms into b. */
static void seal(const gg_env_keys *k, int64_t created_ms, gg_buf *b)
{
    gg_env_hdr h = gg_test_env_request(created_ms);

    h.expiry_ms = gg_now_ms() + 3600000;
    gg_buf_reset(b);
    assert_int_equal(gg_env_seal(k, &h, payload, strlen(payload), b), GG_OK);
}

static void send_bytes(fx *f, const void *data, size_t len)
{
    assert_int_equal(gg_transport_send(f->d.p, GG_Q_REQUESTS, data, len, 0), GG_OK);
}

/* handled - everything the utility has done with messages: replies
 * (requests_total, all results) plus rejects. */
static int64_t answered(fx *f)
{
    gg_umetrics *m = gg_utility_metrics(f->d.u);
    int64_t n = 0;

    for (int r = 0; r < GG_UR_COUNT; r++)
        n += gg_umetrics_requests(m, "bills.query", (gg_um_result)r);
    return n;
}

static int64_t rejects(fx *f, gg_um_reject why)
{
    return gg_umetrics_rejects(gg_utility_metrics(f->d.u), why);
}

static int64_t all_rejects(fx *f)
{
    int64_t n = 0;

    for (int j = 0; j < GG_UJ_COUNT; j++)
        n += rejects(f, (gg_um_reject)j);
    return n;
}

/* settle - wait until answered + rejects reach want (15 s at most). */
static void settle(fx *f, int64_t want)
{
    int64_t end = gg_mono_us() + 15000000;

    while (gg_mono_us() < end && answered(f) + all_rejects(f) < want)
        usleep(10000);
    assert_int_equal(answered(f) + all_rejects(f), want);
}

/* drain_replies - ack every reply on the portal; returns how many. */
static int drain_replies(fx *f)
{
    gg_store *st = gg_transport_store(f->d.p);
    gg_msg *m = NULL;
    int n = 0;

    usleep(200000);
    while (gg_store_get(st, GG_Q_REPLIES, 30000, &m) == GG_OK) {
        assert_int_equal(gg_store_ack(st, m->id), GG_OK);
        gg_msg_free(m);
        n++;
    }
    return n;
}

static void test_every_flipped_byte_and_truncation_is_refused_before_any_service(void **state)
{
    fx *f = *state;
    gg_buf b = GG_BUF_INIT(0);
    int64_t a0 = answered(f), r0 = all_rejects(f), sent = 0;

    drain_replies(f);
    seal(f->d.pkeys, gg_now_ms(), &b);
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] ^= 0x80;
        send_bytes(f, b.data, b.len);
        b.data[i] ^= 0x80;
        sent++;
    }
    for (size_t n = 0; n < b.len; n += 13) {
        send_bytes(f, b.data, n);
        sent++;
    }
    settle(f, a0 + r0 + sent);
    assert_int_equal(answered(f), a0);          /* not one service call */
    assert_int_equal(all_rejects(f) - r0, sent);
    assert_int_equal(drain_replies(f), 0);
    gg_buf_free(&b);
}

static void test_foreign_signing_key_is_refused(void **state)
{
    fx *f = *state;
    gg_buf b = GG_BUF_INIT(0);
    int64_t a0 = answered(f), c0 = rejects(f, GG_UJ_CRYPTO), r0 = all_rejects(f);

    seal(f->xkeys, gg_now_ms(), &b);     /* unknown key id */
    send_bytes(f, b.data, b.len);
    settle(f, a0 + r0 + 1);
    assert_int_equal(rejects(f, GG_UJ_CRYPTO), c0 + 1);
    assert_int_equal(answered(f), a0);
    gg_buf_free(&b);
}

static void test_stale_message_is_dropped_and_future_one_answered_clock_skew(void **state)
{
    fx *f = *state;
    gg_buf b = GG_BUF_INIT(0);
    int64_t a0 = answered(f), r0 = all_rejects(f);
    int64_t s0 = rejects(f, GG_UJ_STALE), fu0 = rejects(f, GG_UJ_FUTURE);

    drain_replies(f);
    seal(f->d.pkeys, gg_now_ms() - 400000, &b);     /* older than 5 min + 30 s */
    send_bytes(f, b.data, b.len);
    settle(f, a0 + r0 + 1);
    assert_int_equal(rejects(f, GG_UJ_STALE), s0 + 1);
    assert_int_equal(drain_replies(f), 0);
    seal(f->d.pkeys, gg_now_ms() + 120000, &b);     /* two minutes ahead */
    send_bytes(f, b.data, b.len);
    settle(f, a0 + r0 + 2);
    assert_int_equal(rejects(f, GG_UJ_FUTURE), fu0 + 1);
    assert_int_equal(answered(f), a0);            /* counted as a reject, not a request */
    assert_int_equal(drain_replies(f), 1);        /* 502 clock_skew */
    gg_buf_free(&b);
}

static void test_replay_in_window_and_64_copies_get_one_answer(void **state)
{
    fx *f = *state;
    gg_buf b = GG_BUF_INIT(0);
    int64_t a0 = answered(f), r0 = all_rejects(f), p0 = rejects(f, GG_UJ_REPLAY);

    drain_replies(f);
    seal(f->d.pkeys, gg_now_ms(), &b);
    for (int i = 0; i < 64; i++)
        send_bytes(f, b.data, b.len);
    settle(f, a0 + r0 + 64);
    assert_int_equal(answered(f), a0 + 1);
    assert_int_equal(rejects(f, GG_UJ_REPLAY), p0 + 63);
    assert_int_equal(drain_replies(f), 1);
    /* later, still inside the window */
    gg_clock_set_offset_ms(240000);
    send_bytes(f, b.data, b.len);
    settle(f, a0 + r0 + 65);
    gg_clock_set_offset_ms(0);
    assert_int_equal(rejects(f, GG_UJ_REPLAY), p0 + 64);
    /* after the window it is stale */
    gg_clock_set_offset_ms(400000);
    send_bytes(f, b.data, b.len);
    settle(f, a0 + r0 + 66);
    gg_clock_set_offset_ms(0);
    assert_int_equal(answered(f), a0 + 1);
    assert_int_equal(drain_replies(f), 0);
    gg_buf_free(&b);
}

static void test_replay_is_refused_after_restart_and_backward_clock_step(void **state)
{
    fx *f = *state;
    gg_buf b = GG_BUF_INIT(0), late = GG_BUF_INIT(0);
    int64_t a0 = answered(f), r0 = all_rejects(f);

    drain_replies(f);
    seal(f->d.pkeys, gg_now_ms(), &b);
    send_bytes(f, b.data, b.len);
    settle(f, a0 + r0 + 1);
    assert_int_equal(answered(f), a0 + 1);
    /* restart the utility: the replay store is on disk */
    gg_utility_stop(f->d.u);
    f->d.u = NULL;
    assert_int_equal(gg_utility_start(f->d.ucfg, &f->d.u), GG_OK);
    send_bytes(f, b.data, b.len);
    settle(f, 1);
    assert_int_equal(rejects(f, GG_UJ_REPLAY), 1);
    assert_int_equal(answered(f), 0);
    /* the clock jumps an hour ahead: a message then lets the store forget b */
    gg_clock_set_offset_ms(3600000);
    seal(f->d.pkeys, gg_now_ms(), &late);
    send_bytes(f, late.data, late.len);
    settle(f, 2);
    assert_int_equal(answered(f), 1);
    /* and steps back: b is fresh by the clock again, but below the horizon */
    gg_clock_set_offset_ms(0);
    send_bytes(f, b.data, b.len);
    settle(f, 3);
    assert_int_equal(rejects(f, GG_UJ_STALE), 1);
    assert_int_equal(answered(f), 1);
    assert_int_equal(drain_replies(f), 2);
    gg_buf_free(&b);
    gg_buf_free(&late);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_flipped_byte_and_truncation_is_refused_before_any_service),
        cmocka_unit_test(test_foreign_signing_key_is_refused),
        cmocka_unit_test(test_stale_message_is_dropped_and_future_one_answered_clock_skew),
        cmocka_unit_test(test_replay_in_window_and_64_copies_get_one_answer),
        cmocka_unit_test(test_replay_is_refused_after_restart_and_backward_clock_step),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
