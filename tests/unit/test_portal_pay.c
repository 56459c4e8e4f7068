/* test_portal_pay.c - the portal's side of payments: routing and validation
 * of POST .../payments and GET /api/v1/transactions/{id}, the transaction
 * status body, the transaction log, and the webhook signature and backoff. */
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
#include <jansson.h>

#include "portal/api.h"
#include "portal/push.h"
#include "portal/txlog.h"

#define TOKEN "gg1.abc.def"

static void test_payments_route_takes_post_only(void **state)
{
    gg_api_route r;
    gg_api_status st;

    (void)state;
    gg_api_match(GG_M_POST, "/api/v1/accounts/3201000001/payments", &r, &st);
    assert_null(st.code);
    assert_int_equal(r.id, GG_ROUTE_PAYMENTS);
    assert_string_equal(r.account_no, "3201000001");
    gg_api_match(GG_M_GET, "/api/v1/accounts/3201000001/payments", &r, &st);
    assert_int_equal(st.http, 405);
    assert_string_equal(r.allow, "POST");
    gg_api_match(GG_M_POST, "/api/v1/accounts/32-01/payments", &r, &st);
    assert_int_equal(st.http, 400);
}

static void test_transaction_route_wants_32_hex_digits(void **state)
{
    gg_api_route r;
    gg_api_status st;

    (void)state;
    gg_api_match(GG_M_GET, "/api/v1/transactions/0123456789ABCDEF0123456789abcdef", &r, &st);
    assert_null(st.code);
    assert_int_equal(r.id, GG_ROUTE_TRANSACTION);
    assert_string_equal(r.txid, "0123456789abcdef0123456789abcdef");
    gg_api_match(GG_M_GET, "/api/v1/transactions/0123", &r, &st);
    assert_int_equal(st.http, 400);
    gg_api_match(GG_M_GET, "/api/v1/transactions/0123456789abcdef0123456789abcdeg", &r, &st);
    assert_int_equal(st.http, 400);
    gg_api_match(GG_M_POST, "/api/v1/transactions/0123456789abcdef0123456789abcdef", &r, &st);
    assert_int_equal(st.http, 405);
}

/* parse - gg_api_parse_pay on body; returns the status (payload freed). */
static int parse(const char *token, const char *body, const char **code)
{
    json_t *payload = NULL;
    static gg_api_status st;

    gg_api_parse_pay("3201000001", token, body, body != NULL ? strlen(body) : 0, 65536,
                     &payload, &st);
    *code = st.code;
    json_decref(payload);
    return st.http;
}

static void test_payment_body_is_validated_field_by_field(void **state)
{
    const char *code;

    (void)state;
    assert_int_equal(parse(TOKEN, "{\"bill_id\":\"B-1\",\"amount_fen\":100,\"payment_ref\":\"r.1\"}",
                           &code), 200);
    assert_int_equal(parse(NULL, "{}", &code), 401);
    assert_string_equal(code, "missing_token");
    assert_int_equal(parse(TOKEN, "{\"bill_id\":\"B-1\",\"amount_fen\":0,\"payment_ref\":\"r\"}",
                           &code), 400);
    assert_string_equal(code, "invalid_amount");
    assert_int_equal(parse(TOKEN, "{\"bill_id\":\"B-1\",\"amount_fen\":-1,\"payment_ref\":\"r\"}",
                           &code), 400);
    assert_string_equal(code, "invalid_amount");
    assert_int_equal(parse(TOKEN, "{\"bill_id\":\"B-1\",\"amount_fen\":1.0,\"payment_ref\":\"r\"}",
                           &code), 400);
    assert_string_equal(code, "invalid_parameter");
    assert_int_equal(parse(TOKEN, "{\"bill_id\":\"B-1\",\"amount_fen\":\"1\",\"payment_ref\":\"r\"}",
                           &code), 400);
    assert_int_equal(parse(TOKEN, "{\"bill_id\":\"B 1\",\"amount_fen\":1,\"payment_ref\":\"r\"}",
                           &code), 400);
    assert_int_equal(parse(TOKEN, "{\"bill_id\":\"B-1\",\"amount_fen\":1,\"payment_ref\":\"\"}",
                           &code), 400);
    assert_int_equal(parse(TOKEN, "{\"bill_id\":\"B-1\",\"amount_fen\":1}", &code), 400);
    assert_int_equal(parse(TOKEN, "{\"bill_id\":\"B-1\",\"amount_fen\":1,\"payment_ref\":\"r\","
                                  "\"x\":1}", &code), 400);
    assert_int_equal(parse(TOKEN, "{\"bill_id\":\"B-1\",\"amount_fen\":100000000001,"
                                  "\"payment_ref\":\"r\"}", &code), 400);
    assert_string_equal(code, "invalid_amount");
    assert_int_equal(parse(TOKEN, "[1]", &code), 400);
    assert_int_equal(parse(TOKEN, NULL, &code), 400);
}

/* status_of_tx - the "status" of a transaction body. */
static char *tx(int http, const char *result, int64_t now)
{
    return gg_api_tx_json("0123456789abcdef0123456789abcdef", "pay", 1000, 31000, http, 2000,
                          result, now, 30000);
}

static void test_transaction_status_is_pending_completed_or_expired(void **state)
{
    char *s;
    json_t *j;

    (void)state;
    s = tx(0, NULL, 50000);
    j = json_loads(s, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "pending");
    json_decref(j);
    free(s);
    s = tx(0, NULL, 61000);  /* expiry + the reply's lifetime: no answer can come now */
    j = json_loads(s, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "expired");
    json_decref(j);
    free(s);
    s = tx(504, "{\"error\":{\"code\":\"expired\",\"message\":\"m\"}}", 5000);
    j = json_loads(s, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "expired");
    json_decref(j);
    free(s);
    s = tx(200, "{\"status\":\"posted\"}", 5000);
    j = json_loads(s, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "completed");
    assert_int_equal(json_integer_value(json_object_get(j, "http_status")), 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "result"),
                                                          "status")), "posted");
    json_decref(j);
    free(s);
}

static void test_txlog_keeps_the_first_outcome(void **state)
{
    char dir[] = "/tmp/gg-txlog.XXXXXX", path[64];
    gg_txlog *tl = NULL;
    gg_txrec r;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tx.db", dir);
    assert_int_equal(gg_txlog_open(path, &tl), GG_OK);
    assert_int_equal(gg_txlog_begin(tl, "aa", "pay", 10, 20), GG_OK);
    assert_int_equal(gg_txlog_get(tl, "aa", &r), GG_OK);
    assert_int_equal(r.http_status, 0);
    assert_null(r.body);
    assert_int_equal(gg_txlog_finish(tl, "aa", "pay", 200, "{\"a\":1}", 30), GG_OK);
    assert_int_equal(gg_txlog_finish(tl, "aa", "pay", 500, NULL, 40), GG_OK);  /* redelivery */
    assert_int_equal(gg_txlog_get(tl, "aa", &r), GG_OK);
    assert_int_equal(r.http_status, 200);
    assert_string_equal(r.body, "{\"a\":1}");
    assert_int_equal(r.created_ms, 10);
    gg_txrec_clear(&r);
    assert_int_equal(gg_txlog_finish(tl, "bb", "pay", 409, NULL, 50), GG_OK);  /* no begin */
    assert_int_equal(gg_txlog_get(tl, "bb", &r), GG_OK);
    assert_int_equal(r.http_status, 409);
    assert_int_equal(gg_txlog_get(tl, "cc", &r), GG_ENOTFOUND);
    gg_txlog_close(tl);
    assert_int_equal(gg_txlog_open(path, &tl), GG_OK);  /* survives a reopen */
    assert_int_equal(gg_txlog_get(tl, "aa", &r), GG_OK);
    gg_txrec_clear(&r);
    assert_int_equal(gg_txlog_prune(tl, 45, NULL), GG_OK);
    assert_int_equal(gg_txlog_get(tl, "aa", &r), GG_ENOTFOUND);
    assert_int_equal(gg_txlog_get(tl, "bb", &r), GG_OK);
    gg_txlog_close(tl);
    unlink(path);
    snprintf(path, sizeof path, "%s/tx.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/tx.db-shm", dir);
    unlink(path);
    rmdir(dir);
}

static void test_signature_is_hmac_sha256_of_the_body(void **state)
{
    char sig[GG_PUSH_SIG_LEN];
    const char *data = "what do ya want for nothing?";

    (void)state;
    /* RFC 4231, test case 2 */
    gg_push_sign((const uint8_t *)"Jefe", 4, data, strlen(data), sig);
    assert_string_equal(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    gg_push_sign((const uint8_t *)"Jeff", 4, data, strlen(data), sig);
    assert_string_not_equal(sig,
                            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_backoff_doubles_with_jitter_up_to_the_cap(void **state)
{
    (void)state;
    assert_int_equal(gg_push_backoff_ms(100, 10000, 1, 0.0), 50);
    assert_true(gg_push_backoff_ms(100, 10000, 1, 0.999) < 100);
    assert_int_equal(gg_push_backoff_ms(100, 10000, 2, 0.0), 100);
    assert_int_equal(gg_push_backoff_ms(100, 10000, 4, 0.0), 400);
    assert_int_equal(gg_push_backoff_ms(100, 1000, 30, 0.0), 500);
    assert_true(gg_push_backoff_ms(100, 1000, 1000, 0.999) < 1000);
    assert_int_equal(gg_push_backoff_ms(100, 1000, 3, 7.0), 200);  /* r out of range */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payments_route_takes_post_only),
        cmocka_unit_test(test_transaction_route_wants_32_hex_digits),
        cmocka_unit_test(test_payment_body_is_validated_field_by_field),
        cmocka_unit_test(test_transaction_status_is_pending_completed_or_expired),
        cmocka_unit_test(test_txlog_keeps_the_first_outcome),
        cmocka_unit_test(test_signature_is_hmac_sha256_of_the_body),
        cmocka_unit_test(test_backoff_doubles_with_jitter_up_to_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
