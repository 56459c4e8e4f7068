/* test_services.c - "bind" and "bills.query" against a small seeded
 * marketing database, with real binding tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "marketing/seed.h"
#include "services/services.h"
#include "market_fixture.h"

#define TTL_MS (24LL * 3600 * 1000)

typedef struct fx {
    gg_test_mkt mk;
    uint8_t key[GG_TOKEN_KEY_LEN];
    gg_svc_ctx ctx;
    gg_account a, b; /* two active accounts */
} fx;

static int setup(void **state)
{
    gg_seed_opts o = { 20, 3, 77, "2025-03" };
    char a[16], b[16];
    fx *f = calloc(1, sizeof *f);

    *state = f;
    if (f == NULL || gg_test_mkt_seed(&f->mk, "test_services.", &o) != 0)
        return -1;
    /* the two lowest active account numbers */
    gg_test_mkt_text(f->mk.db, "SELECT account_no FROM accounts WHERE status = 'active'"
                     " ORDER BY account_no LIMIT 1", a, sizeof a);
    gg_test_mkt_text(f->mk.db, "SELECT account_no FROM accounts WHERE status = 'active'"
                     " ORDER BY account_no LIMIT 1 OFFSET 1", b, sizeof b);
    if (gg_test_mkt_ctx(f->mk.db, f->key, TTL_MS, &f->ctx) != GG_OK)
        return -1;
    if (gg_mkt_account(f->ctx.mkt, a, &f->a) != GG_OK ||
        gg_mkt_account(f->ctx.mkt, b, &f->b) != GG_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    if (f != NULL)
        gg_test_mkt_ctx_close(&f->mk, &f->ctx);
    free(f);
    return 0;
}

/* last4 - the last four digits of a phone. */
static const char *last4(const gg_account *a)
{
    return a->phone + strlen(a->phone) - 4;
}

/* bind_req - a bind request for account a with the right proof. */
static json_t *bind_req(const gg_account *a)
{
    json_t *r = json_pack("{s:s, s:s, s:s, s:s}", "portal_user_id", "citizen-42", "account_no",
                          a->account_no, "holder_name", a->holder_name, "phone_last4", last4(a));
    assert_non_null(r);
    return r;
}

static int status_of(json_t *reply)
{
    assert_non_null(reply);
    return (int)json_integer_value(json_object_get(reply, "status"));
}

static const char *error_code(json_t *reply)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(reply, "body"), "error"), "code"));
}

static const char *error_field(json_t *reply)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(reply, "body"), "error"), "field"));
}

/* expect_error - run txn on req (consumed) and check status and code. */
static json_t *expect_error(fx *f, const char *txn, json_t *req, int status, const char *code)
{
    json_t *reply = gg_svc_dispatch(&f->ctx, txn, req);
    json_decref(req);
    assert_int_equal(status_of(reply), status);
    assert_string_equal(error_code(reply), code);
    return reply;
}

/* bind_token - bind account a and return its token (static buffer). */
static const char *bind_token(fx *f, const gg_account *a)
{
    static char tok[GG_TOKEN_MAX];
    json_t *req = bind_req(a), *reply = gg_svc_dispatch(&f->ctx, "bind", req);
    assert_int_equal(status_of(reply), 201);
    snprintf(tok, sizeof tok, "%s",
             json_string_value(json_object_get(json_object_get(reply, "body"), "binding_token")));
    json_decref(reply);
    json_decref(req);
    return tok;
}

static json_t *bills_req(const char *token, const char *account_no, const char *from,
                         const char *to)
{
    json_t *r = json_object();
    if (token)
        json_object_set_new(r, "binding_token", json_string(token));
    if (account_no)
        json_object_set_new(r, "account_no", json_string(account_no));
    if (from)
        json_object_set_new(r, "from", json_string(from));
    if (to)
        json_object_set_new(r, "to", json_string(to));
    return r;
}

static void test_bind_with_right_proof_issues_token_and_masks_account(void **state)
{
    fx *f = *state;
    json_t *req = bind_req(&f->a), *reply = gg_svc_dispatch(&f->ctx, "bind", req);
    json_t *body = json_object_get(reply, "body"), *acct = json_object_get(body, "account");
    gg_token_claims c;
    char masked[128];

    assert_int_equal(status_of(reply), 201);
    assert_int_equal(gg_token_verify(f->key, json_string_value(json_object_get(body, "binding_token")),
                                     f->ctx.now_ms, &c),
                     GG_OK);
    assert_string_equal(c.account_no, f->a.account_no);
    assert_string_equal(c.portal_user_id, "citizen-42");
    assert_int_equal(c.scopes, GG_SCOPE_READ | GG_SCOPE_PAY);
    assert_int_equal(c.expiry_ms, f->ctx.now_ms + TTL_MS);
    assert_string_equal(json_string_value(json_object_get(acct, "account_no")), f->a.account_no);
    assert_string_equal(json_string_value(json_object_get(acct, "holder_name")),
                        gg_mask_name(f->a.holder_name, masked, sizeof masked));
    assert_string_not_equal(json_string_value(json_object_get(acct, "holder_name")),
                            f->a.holder_name);
    assert_string_equal(json_string_value(json_object_get(acct, "address")),
                        gg_mask_address(f->a.address, masked, sizeof masked));
    assert_null(strstr(json_string_value(json_object_get(acct, "address")), "路"));
    /* nothing else personal in the reply */
    assert_int_equal(json_object_size(acct), 3);
    json_decref(reply);
    json_decref(req);
}

static void test_bind_reply_never_contains_phone_or_id(void **state)
{
    fx *f = *state;
    json_t *req = bind_req(&f->a), *reply = gg_svc_dispatch(&f->ctx, "bind", req);
    char *text = json_dumps(reply, 0);

    assert_non_null(text);
    assert_null(strstr(text, f->a.phone));
    assert_null(strstr(text, f->a.id_no));
    assert_null(strstr(text, f->a.address));
    free(text);
    json_decref(reply);
    json_decref(req);
}

static void test_bind_rejects_each_malformed_field_by_name(void **state)
{
    fx *f = *state;
    char long_user[80] = { 0 };
    struct {
        const char *field;
        json_t *value; /* NULL = remove the field */
    } cases[] = {
        { "portal_user_id", NULL },
        { "portal_user_id", json_string("") },
        { "portal_user_id", NULL }, /* 65 bytes, set below */
        { "portal_user_id", json_integer(42) },
        { "portal_user_id", json_string("tab\there") },
        { "account_no", NULL },
        { "account_no", json_string("3201 00001") },
        { "account_no", json_string("123456789012345678901234567890123") },
        { "holder_name", NULL },
        { "holder_name", json_string("") },
        { "holder_name", json_null() },
        { "phone_last4", NULL },
        { "phone_last4", json_string("123") },
        { "phone_last4", json_string("12345") },
        { "phone_last4", json_string("12a4") },
        { "phone_last4", json_integer(1234) },
    };

    memset(long_user, 'u', 65);
    cases[2].value = json_string(long_user);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *req = bind_req(&f->a), *reply;
        if (cases[i].value)
            json_object_set_new(req, cases[i].field, cases[i].value);
        else
            json_object_del(req, cases[i].field);
        reply = expect_error(f, "bind", req, 400, "invalid_parameter");
        assert_string_equal(error_field(reply), cases[i].field);
        assert_non_null(strstr(json_string_value(json_object_get(
                                   json_object_get(json_object_get(reply, "body"), "error"),
                                   "message")),
                               cases[i].field));
        json_decref(reply);
    }
}

/* refused_body - the reply body of a bind of a with one field replaced. */
static json_t *refused_body(fx *f, const gg_account *a, const char *field, const char *value)
{
    json_t *req = bind_req(a), *reply, *body;
    json_object_set_new(req, field, json_string(value));
    reply = expect_error(f, "bind", req, 403, "ownership_not_proven");
    body = json_incref(json_object_get(reply, "body"));
    json_decref(reply);
    return body;
}

static void test_bind_unknown_account_is_ownership_not_proven(void **state)
{
    json_decref(refused_body(*state, &((fx *)*state)->a, "account_no", "3299999999"));
}

static void test_bind_wrong_name_is_ownership_not_proven(void **state)
{
    json_decref(refused_body(*state, &((fx *)*state)->a, "holder_name", "王小明明"));
}

static void test_bind_wrong_phone_is_ownership_not_proven(void **state)
{
    fx *f = *state;
    char wrong[5];
    memcpy(wrong, last4(&f->a), 5);
    wrong[3] = wrong[3] == '9' ? '0' : (char)(wrong[3] + 1);
    json_decref(refused_body(f, &f->a, "phone_last4", wrong));
}

static void test_bind_other_accounts_name_is_ownership_not_proven(void **state)
{
    fx *f = *state;
    json_decref(refused_body(f, &f->a, "holder_name", f->b.holder_name));
}

static void test_bind_closed_account_is_ownership_not_proven(void **state)
{
    fx *f = *state;
    sqlite3 *db = NULL;
    char sql[128];
    json_t *req;

    assert_int_equal(sqlite3_open(f->mk.db, &db), SQLITE_OK);
    snprintf(sql, sizeof sql, "UPDATE accounts SET status = 'closed' WHERE account_no = '%s'",
             f->a.account_no);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    req = bind_req(&f->a); /* otherwise a perfect proof */
    json_decref(expect_error(f, "bind", req, 403, "ownership_not_proven"));
}

/* All refusals look the same, so the portal cannot tell which part failed. */
static void test_bind_refusals_are_indistinguishable(void **state)
{
    fx *f = *state;
    json_t *unknown = refused_body(f, &f->a, "account_no", "3299999999");
    json_t *name = refused_body(f, &f->a, "holder_name", f->b.holder_name);
    json_t *phone = refused_body(f, &f->a, "phone_last4", strcmp(last4(&f->a), "0000") ? "0000" : "1111");

    assert_true(json_equal(unknown, name));
    assert_true(json_equal(unknown, phone));
    json_decref(unknown);
    json_decref(name);
    json_decref(phone);
}

static void test_bills_query_returns_bills_with_integer_amounts(void **state)
{
    fx *f = *state;
    const char *tok = bind_token(f, &f->a);
    json_t *req = bills_req(tok, f->a.account_no, "2025-01", "2025-03");
    json_t *reply = gg_svc_dispatch(&f->ctx, "bills.query", req);
    json_t *body = json_object_get(reply, "body"), *list = json_object_get(body, "bills");
    gg_bill *want = NULL;
    size_t n = 0;

    assert_int_equal(status_of(reply), 200);
    assert_string_equal(json_string_value(json_object_get(body, "account_no")), f->a.account_no);
    assert_int_equal(gg_mkt_bills(f->ctx.mkt, f->a.account_no, "2025-01", "2025-03", &want, &n),
                     GG_OK);
    assert_int_equal(n, 3);
    assert_int_equal(json_array_size(list), 3);
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_array_get(list, i);
        static const char *const ints[] = { "kwh", "kwh_peak", "kwh_valley", "amount_fen" };
        for (int k = 0; k < 4; k++)
            assert_true(json_is_integer(json_object_get(b, ints[k])));
        assert_string_equal(json_string_value(json_object_get(b, "bill_id")), want[i].bill_id);
        assert_string_equal(json_string_value(json_object_get(b, "period")), want[i].period);
        assert_int_equal(json_integer_value(json_object_get(b, "kwh")), want[i].kwh);
        assert_int_equal(json_integer_value(json_object_get(b, "kwh_peak")), want[i].kwh_peak);
        assert_int_equal(json_integer_value(json_object_get(b, "kwh_valley")), want[i].kwh_valley);
        assert_int_equal(json_integer_value(json_object_get(b, "amount_fen")), want[i].amount_fen);
        assert_string_equal(json_string_value(json_object_get(b, "due_date")), want[i].due_date);
        assert_string_equal(json_string_value(json_object_get(b, "status")), want[i].status);
        assert_int_equal(json_object_size(b), 8);
    }
    free(want);
    json_decref(reply);
    json_decref(req);
}

static void test_bills_query_empty_range_gives_empty_list(void **state)
{
    fx *f = *state;
    json_t *req = bills_req(bind_token(f, &f->a), f->a.account_no, "2030-01", "2030-02");
    json_t *reply = gg_svc_dispatch(&f->ctx, "bills.query", req);
    assert_int_equal(status_of(reply), 200);
    assert_int_equal(json_array_size(json_object_get(json_object_get(reply, "body"), "bills")), 0);
    assert_true(json_is_array(json_object_get(json_object_get(reply, "body"), "bills")));
    json_decref(reply);
    json_decref(req);
}

static void test_bills_query_without_token_is_missing_token(void **state)
{
    fx *f = *state;
    json_decref(expect_error(f, "bills.query", bills_req(NULL, f->a.account_no, "2025-01", "2025-03"),
                             401, "missing_token"));
    json_decref(expect_error(f, "bills.query", bills_req("", f->a.account_no, "2025-01", "2025-03"),
                             401, "missing_token"));
}

static void test_bills_query_with_bad_token_is_invalid_token(void **state)
{
    fx *f = *state;
    char tampered[GG_TOKEN_MAX];
    uint8_t other_key[GG_TOKEN_KEY_LEN];
    gg_svc_ctx saved = f->ctx;
    const char *tok = bind_token(f, &f->a);
    size_t n;

    json_decref(expect_error(f, "bills.query",
                             bills_req("not a token", f->a.account_no, "2025-01", "2025-03"), 401,
                             "invalid_token"));
    snprintf(tampered, sizeof tampered, "%s", tok);
    n = strlen(tampered);
    tampered[n - 2] = tampered[n - 2] == 'A' ? 'B' : 'A';
    json_decref(expect_error(f, "bills.query",
                             bills_req(tampered, f->a.account_no, "2025-01", "2025-03"), 401,
                             "invalid_token"));
    /* a token of another utility's key */
    gg_random(other_key, sizeof other_key);
    f->ctx.token_key = other_key;
    tok = bind_token(f, &f->a);
    f->ctx = saved;
    json_decref(expect_error(f, "bills.query", bills_req(tok, f->a.account_no, "2025-01", "2025-03"),
                             401, "invalid_token"));
    /* not a string */
    {
        json_t *req = bills_req(NULL, f->a.account_no, "2025-01", "2025-03");
        json_object_set_new(req, "binding_token", json_integer(5));
        json_decref(expect_error(f, "bills.query", req, 401, "invalid_token"));
    }
}

static void test_bills_query_with_expired_token_is_invalid_token(void **state)
{
    fx *f = *state;
    const char *tok = bind_token(f, &f->a);
    json_t *req = bills_req(tok, f->a.account_no, "2025-01", "2025-03");
    json_t *reply;

    f->ctx.now_ms += TTL_MS - 1; /* still valid one ms before expiry */
    reply = gg_svc_dispatch(&f->ctx, "bills.query", req);
    assert_int_equal(status_of(reply), 200);
    json_decref(reply);
    f->ctx.now_ms += 1;
    json_decref(expect_error(f, "bills.query", req, 401, "invalid_token"));
}

static void test_bills_query_token_for_other_account_is_not_bound(void **state)
{
    fx *f = *state;
    const char *tok = bind_token(f, &f->a);
    json_decref(expect_error(f, "bills.query", bills_req(tok, f->b.account_no, "2025-01", "2025-03"),
                             403, "not_bound"));
}

static void test_bills_query_rejects_bad_months_by_name(void **state)
{
    fx *f = *state;
    const char *tok = bind_token(f, &f->a);
    struct {
        const char *from, *to, *field;
    } cases[] = {
        { NULL, "2025-03", "from" },   { "2025-13", "2025-03", "from" },
        { "2025-00", "2025-03", "from" }, { "2025-1", "2025-03", "from" },
        { "202501", "2025-03", "from" }, { "2025-01", NULL, "to" },
        { "2025-01", "2025-3x", "to" }, { "2025-04", "2025-03", "to" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *reply = expect_error(f, "bills.query",
                                     bills_req(tok, f->a.account_no, cases[i].from, cases[i].to),
                                     400, "invalid_parameter");
        assert_string_equal(error_field(reply), cases[i].field);
        json_decref(reply);
    }
    json_decref(expect_error(f, "bills.query", bills_req(tok, NULL, "2025-01", "2025-03"), 400,
                             "invalid_parameter"));
}

static void test_bills_query_unknown_account_is_not_found(void **state)
{
    fx *f = *state;
    char tok[GG_TOKEN_MAX];

    assert_int_equal(gg_test_token(f->key, "citizen-42", "3299999999", GG_SCOPE_READ,
                                   gg_now_ms() + TTL_MS, tok, sizeof tok),
                     GG_OK);
    json_decref(expect_error(f, "bills.query", bills_req(tok, "3299999999", "2025-01", "2025-03"),
                             404, "not_found"));
}

static void test_bills_query_token_without_read_scope_is_refused(void **state)
{
    fx *f = *state;
    char tok[GG_TOKEN_MAX];

    assert_int_equal(gg_test_token(f->key, "citizen-42", f->a.account_no, GG_SCOPE_PAY,
                                   gg_now_ms() + TTL_MS, tok, sizeof tok),
                     GG_OK);
    json_decref(expect_error(f, "bills.query", bills_req(tok, f->a.account_no, "2025-01", "2025-03"),
                             403, "insufficient_scope"));
}

static void test_unknown_transaction_and_non_object_payload_are_400(void **state)
{
    fx *f = *state;
    json_decref(expect_error(f, "bills.delete", json_object(), 400, "unknown_transaction"));
    json_decref(expect_error(f, "bind", json_array(), 400, "invalid_parameter"));
}

static void test_svc_error_has_status_code_and_message(void **state)
{
    json_t *e = gg_svc_error(418, "teapot", "short and stout");
    (void)state;
    assert_int_equal(status_of(e), 418);
    assert_string_equal(error_code(e), "teapot");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(e, "body"), "error"), "message")),
                        "short and stout");
    json_decref(e);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_bind_with_right_proof_issues_token_and_masks_account),
        T(test_bind_reply_never_contains_phone_or_id),
        T(test_bind_rejects_each_malformed_field_by_name),
        T(test_bind_unknown_account_is_ownership_not_proven),
        T(test_bind_wrong_name_is_ownership_not_proven),
        T(test_bind_wrong_phone_is_ownership_not_proven),
        T(test_bind_other_accounts_name_is_ownership_not_proven),
        T(test_bind_closed_account_is_ownership_not_proven),
        T(test_bind_refusals_are_indistinguishable),
        T(test_bills_query_returns_bills_with_integer_amounts),
        T(test_bills_query_empty_range_gives_empty_list),
        T(test_bills_query_without_token_is_missing_token),
        T(test_bills_query_with_bad_token_is_invalid_token),
        T(test_bills_query_with_expired_token_is_invalid_token),
        T(test_bills_query_token_for_other_account_is_not_bound),
        T(test_bills_query_rejects_bad_months_by_name),
        T(test_bills_query_unknown_account_is_not_found),
        T(test_bills_query_token_without_read_scope_is_refused),
        T(test_unknown_transaction_and_non_object_payload_are_400),
        cmocka_unit_test(test_svc_error_has_status_code_and_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
