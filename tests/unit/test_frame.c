/* test_frame.c - the channel's wire framing: exact bytes, round trips, and
 * refusal of oversize, truncated, trailing and out-of-range input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channel/frame.h"

/* body_of - type and body of the single whole frame in b. */
static void body_of(const gg_buf *b, int *type, const uint8_t **body, size_t *len)
{
    size_t total;
    assert_int_equal(gg_frame_split(b->data, b->len, &total), GG_OK);
    assert_int_equal(total, b->len);
    gg_frame_head(b->data, total, type, body, len);
}

static void test_hello_has_the_documented_bytes(void **state)
{
    (void)state;
    /* The vector of docs/protocol.md ("Channel"). */
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x13,                         /* length 19 */
        0x01,                                           /* HELLO */
        0x00, 0x01,                                     /* version 1 */
        0x00, 0x06, 'p', 'o', 'r', 't', 'a', 'l',       /* site */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2c, /* mark 300 */
    };
    gg_buf b = GG_BUF_INIT(0);
    assert_int_equal(gg_frame_put_hello(&b, "portal", 300), GG_OK);
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    gg_buf_free(&b);
}

static void test_batch_has_the_documented_bytes(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x25,                         /* length 37 */
        0x02,                                           /* BATCH */
        0x00, 0x00, 0x00, 0x01,                         /* count 1 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, /* seq 42 */
        0x00, 0x08, 'r', 'e', 'q', 'u', 'e', 's', 't', 's',
        0x00, 0x00, 0x01, 0x8c, 0x00, 0x00, 0x00, 0x00, /* expiry_ms */
        0x00, 0x00, 0x00, 0x02, 'h', 'i',               /* len 2, data */
    };
    gg_buf b = GG_BUF_INIT(0);
    gg_frame_batch fb;
    assert_int_equal(gg_frame_batch_begin(&b, &fb), GG_OK);
    assert_int_equal(gg_frame_batch_add(&b, &fb, 42, "requests", 0x18c00000000LL, "hi", 2),
                     GG_OK);
    gg_frame_batch_end(&b, &fb);
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    gg_buf_free(&b);
}

static void test_hello_ack_ping_round_trip(void **state)
{
    (void)state;
    gg_buf b = GG_BUF_INIT(0);
    int type;
    const uint8_t *body;
    size_t len;
    gg_frame_hello h;
    int64_t mark;
    uint64_t stamp;

    assert_int_equal(gg_frame_put_hello(&b, "utility", INT64_MAX), GG_OK);
    body_of(&b, &type, &body, &len);
    assert_int_equal(type, GG_FRAME_HELLO);
    assert_int_equal(gg_frame_get_hello(body, len, &h), GG_OK);
    assert_int_equal(h.version, GG_FRAME_VERSION);
    assert_string_equal(h.site, "utility");
    assert_true(h.mark == INT64_MAX);

    gg_buf_reset(&b);
    assert_int_equal(gg_frame_put_ack(&b, 12345), GG_OK);
    body_of(&b, &type, &body, &len);
    assert_int_equal(type, GG_FRAME_ACK);
    assert_int_equal(gg_frame_get_ack(body, len, &mark), GG_OK);
    assert_int_equal(mark, 12345);

    gg_buf_reset(&b);
    assert_int_equal(gg_frame_put_ping(&b, GG_FRAME_PONG, 0xdeadbeefcafeULL), GG_OK);
    body_of(&b, &type, &body, &len);
    assert_int_equal(type, GG_FRAME_PONG);
    assert_int_equal(gg_frame_get_ping(body, len, &stamp), GG_OK);
    assert_true(stamp == 0xdeadbeefcafeULL);

    assert_int_equal(gg_frame_put_ping(&b, GG_FRAME_ACK, 1), GG_EINVAL);
    assert_int_equal(gg_frame_put_hello(&b, "", 0), GG_EINVAL);
    assert_int_equal(gg_frame_put_ack(&b, -1), GG_EINVAL);
    gg_buf_free(&b);
}

static void test_batch_round_trips(void **state)
{
    (void)state;
    gg_buf b = GG_BUF_INIT(0);
    gg_frame_batch fb;
    gg_frame_item *items = NULL;
    size_t n = 0;
    int type;
    const uint8_t *body;
    size_t len;

    assert_int_equal(gg_frame_batch_begin(&b, &fb), GG_OK);
    assert_int_equal(gg_frame_batch_add(&b, &fb, 5, "requests", 0, "abc", 3), GG_OK);
    assert_int_equal(gg_frame_batch_add(&b, &fb, 9, "events", 1700000000000LL, "", 0), GG_OK);
    assert_int_equal(gg_frame_batch_add(&b, &fb, 10, "replies", 7, "x", 1), GG_OK);
    gg_frame_batch_end(&b, &fb);
    body_of(&b, &type, &body, &len);
    assert_int_equal(type, GG_FRAME_BATCH);
    assert_int_equal(gg_frame_get_batch(body, len, &items, &n), GG_OK);
    assert_int_equal(n, 3);
    assert_int_equal(items[0].seq, 5);
    assert_string_equal(items[0].dest, "requests");
    assert_int_equal(items[0].len, 3);
    assert_memory_equal(items[0].data, "abc", 3);
    assert_int_equal(items[1].seq, 9);
    assert_string_equal(items[1].dest, "events");
    assert_true(items[1].expiry_ms == 1700000000000LL);
    assert_int_equal(items[1].len, 0);
    assert_int_equal(items[2].seq, 10);
    assert_memory_equal(items[2].data, "x", 1);
    free(items);
    gg_buf_free(&b);
}

static void test_frame_decode_rejects_oversize_frames(void **state)
{
    (void)state;
    size_t total = 99;
    uint8_t over[4] = { 0x00, 0x80, 0x00, 0x01 };   /* 8 MiB + 1 */
    uint8_t huge[4] = { 0xff, 0xff, 0xff, 0xff };
    uint8_t zero[4] = { 0, 0, 0, 0 };
    uint8_t max[4] = { 0x00, 0x80, 0x00, 0x00 };    /* exactly 8 MiB: allowed */
    assert_int_equal(gg_frame_split(over, sizeof over, &total), GG_EPROTO);
    assert_int_equal(gg_frame_length(huge, &total), GG_EPROTO);
    assert_int_equal(gg_frame_split(zero, sizeof zero, &total), GG_EPROTO);
    assert_int_equal(gg_frame_length(max, &total), GG_OK);
    assert_int_equal(total, GG_FRAME_HDR + GG_FRAME_MAX);
}

static void test_frame_split_waits_for_truncated_frames(void **state)
{
    (void)state;
    gg_buf b = GG_BUF_INIT(0);
    size_t total;
    assert_int_equal(gg_frame_put_hello(&b, "portal", 1), GG_OK);
    assert_int_equal(gg_frame_put_ack(&b, 2), GG_OK);
    for (size_t cut = 0; cut < 23; cut++) {
        total = 99;
        assert_int_equal(gg_frame_split(b.data, cut, &total), GG_OK);
        assert_int_equal(total, 0);
    }
    assert_int_equal(gg_frame_split(b.data, b.len, &total), GG_OK);
    assert_int_equal(total, 23); /* the first frame only */
    gg_buf_free(&b);
}

static void test_frame_decode_rejects_truncated_bodies(void **state)
{
    (void)state;
    gg_buf b = GG_BUF_INIT(0);
    gg_frame_batch fb;
    int type;
    const uint8_t *body;
    size_t len;
    gg_frame_hello h;
    int64_t mark;
    uint64_t stamp;
    gg_frame_item *items = NULL;
    size_t n;

    assert_int_equal(gg_frame_put_hello(&b, "portal", 1), GG_OK);
    body_of(&b, &type, &body, &len);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(gg_frame_get_hello(body, cut, &h), GG_EPROTO);

    assert_int_equal(gg_frame_get_ack(body, 7, &mark), GG_EPROTO);
    assert_int_equal(gg_frame_get_ping(body, 3, &stamp), GG_EPROTO);

    gg_buf_reset(&b);
    assert_int_equal(gg_frame_batch_begin(&b, &fb), GG_OK);
    assert_int_equal(gg_frame_batch_add(&b, &fb, 1, "requests", 0, "abcdef", 6), GG_OK);
    assert_int_equal(gg_frame_batch_add(&b, &fb, 2, "requests", 0, "ghij", 4), GG_OK);
    gg_frame_batch_end(&b, &fb);
    body_of(&b, &type, &body, &len);
    for (size_t cut = 0; cut < len; cut++) {
        items = NULL;
        assert_int_equal(gg_frame_get_batch(body, cut, &items, &n), GG_EPROTO);
        assert_null(items);
    }
    gg_buf_free(&b);
}

static void test_frame_decode_rejects_trailing_bytes(void **state)
{
    (void)state;
    uint8_t body[32] = { 0 };
    int64_t mark;
    uint64_t stamp;
    gg_frame_hello h;
    gg_frame_item *items = NULL;
    size_t n;
    assert_int_equal(gg_frame_get_ack(body, 9, &mark), GG_EPROTO);
    assert_int_equal(gg_frame_get_ping(body, 9, &stamp), GG_EPROTO);
    /* version 1, site "a", mark 0, one extra byte */
    uint8_t hello[] = { 0, 1, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0xff };
    assert_int_equal(gg_frame_get_hello(hello, sizeof hello - 1, &h), GG_OK);
    assert_int_equal(gg_frame_get_hello(hello, sizeof hello, &h), GG_EPROTO);
    /* count 1, seq 1, dest "q", expiry 0, len 0, one extra byte */
    uint8_t batch[] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 'q',
                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff };
    assert_int_equal(gg_frame_get_batch(batch, sizeof batch - 1, &items, &n), GG_OK);
    free(items);
    items = NULL;
    assert_int_equal(gg_frame_get_batch(batch, sizeof batch, &items, &n), GG_EPROTO);
    assert_null(items);
}

static void test_batch_rejects_bad_items(void **state)
{
    (void)state;
    gg_frame_item *items = NULL;
    size_t n;
    /* seqs 5 then 5: not strictly increasing */
    uint8_t dup[] = { 0, 0, 0, 2,
                      0, 0, 0, 0, 0, 0, 0, 5, 0, 1, 'q', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                      0, 0, 0, 0, 0, 0, 0, 5, 0, 1, 'q', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(gg_frame_get_batch(dup, sizeof dup, &items, &n), GG_EPROTO);
    /* seq 0 */
    uint8_t zero[] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'q',
                       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(gg_frame_get_batch(zero, sizeof zero, &items, &n), GG_EPROTO);
    /* seq above INT64_MAX */
    uint8_t big[] = { 0, 0, 0, 1, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 1, 'q',
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(gg_frame_get_batch(big, sizeof big, &items, &n), GG_EPROTO);
    /* empty dest, dest with a blank, dest with NUL */
    uint8_t nodest[] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
                         0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(gg_frame_get_batch(nodest, sizeof nodest, &items, &n), GG_EPROTO);
    uint8_t blank[] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 'q', ' ',
                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(gg_frame_get_batch(blank, sizeof blank, &items, &n), GG_EPROTO);
    uint8_t nul[] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 'q', 0,
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(gg_frame_get_batch(nul, sizeof nul, &items, &n), GG_EPROTO);
    /* count 0 */
    uint8_t none[] = { 0, 0, 0, 0 };
    assert_int_equal(gg_frame_get_batch(none, sizeof none, &items, &n), GG_EPROTO);
    /* a count far beyond what the body can hold: refused before allocating */
    uint8_t lie[] = { 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 'q',
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(gg_frame_get_batch(lie, sizeof lie, &items, &n), GG_EPROTO);
    /* an item length past the body */
    uint8_t longer[] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 'q',
                         0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'x' };
    assert_int_equal(gg_frame_get_batch(longer, sizeof longer, &items, &n), GG_EPROTO);
    assert_null(items);
}

static void test_hello_rejects_bad_fields(void **state)
{
    (void)state;
    gg_frame_hello h;
    /* empty site */
    uint8_t empty[] = { 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(gg_frame_get_hello(empty, sizeof empty, &h), GG_EPROTO);
    /* mark above INT64_MAX */
    uint8_t neg[] = { 0, 1, 0, 1, 'a', 0xff, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(gg_frame_get_hello(neg, sizeof neg, &h), GG_EPROTO);
    /* site of 64 bytes: one too long */
    uint8_t lng[2 + 2 + 64 + 8] = { 0, 1, 0, 64 };
    memset(lng + 4, 'a', 64);
    assert_int_equal(gg_frame_get_hello(lng, sizeof lng, &h), GG_EPROTO);
}

static void test_batch_add_stops_at_frame_max(void **state)
{
    (void)state;
    gg_buf b = GG_BUF_INIT(GG_FRAME_HDR + GG_FRAME_MAX);
    gg_frame_batch fb;
    size_t chunk = 1024 * 1024;
    uint8_t *data = calloc(1, chunk);
    assert_non_null(data);
    assert_int_equal(gg_frame_batch_begin(&b, &fb), GG_OK);
    int64_t seq = 1;
    gg_err e;
    for (;;) {
        e = gg_frame_batch_add(&b, &fb, seq, "requests", 0, data, chunk);
        if (e != GG_OK)
            break;
        seq++;
    }
    assert_int_equal(e, GG_ETOOBIG);
    assert_int_equal(fb.count, 7);
    size_t before = b.len;
    assert_int_equal(gg_frame_batch_add(&b, &fb, seq, "requests", 0, data, chunk), GG_ETOOBIG);
    assert_int_equal(b.len, before); /* unchanged */
    gg_frame_batch_end(&b, &fb);
    size_t total;
    assert_int_equal(gg_frame_split(b.data, b.len, &total), GG_OK);
    assert_int_equal(total, b.len);
    assert_int_equal(gg_frame_batch_add(&b, &fb, seq, "", 0, "", 0), GG_EINVAL);
    assert_int_equal(gg_frame_batch_add(&b, &fb, 0, "requests", 0, "", 0), GG_EINVAL);
    free(data);
    gg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_has_the_documented_bytes),
        cmocka_unit_test(test_batch_has_the_documented_bytes),
        cmocka_unit_test(test_hello_ack_ping_round_trip),
        cmocka_unit_test(test_batch_round_trips),
        cmocka_unit_test(test_frame_decode_rejects_oversize_frames),
        cmocka_unit_test(test_frame_split_waits_for_truncated_frames),
        cmocka_unit_test(test_frame_decode_rejects_truncated_bodies),
        cmocka_unit_test(test_frame_decode_rejects_trailing_bytes),
        cmocka_unit_test(test_batch_rejects_bad_items),
        cmocka_unit_test(test_hello_rejects_bad_fields),
        cmocka_unit_test(test_batch_add_stops_at_frame_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
