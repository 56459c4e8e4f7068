/* test_payment.c - the "pay" service and the inbox: exactly once per
 * payment_ref and per request message id, each refusal writing nothing,
 * effect + inbox + outbox in one transaction, pruning, events. Runs
 * against a small seeded marketing database with real binding tokens. */
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
#include "core/rand.h"
#include "marketing/ledger.h"
#include "marketing/seed.h"
#include "services/services.h"
#include "utility/publisher.h"
#include "market_fixture.h"

#define TTL_MS (24LL * 3600 * 1000)

typedef struct fx {
    gg_test_mkt mk;
    uint8_t key[GG_TOKEN_KEY_LEN];
    gg_svc_ctx ctx;
    char acct[33], other[33];       /* two active accounts with unpaid bills */
    char bill[40], other_bill[40], paid_bill[40];
    int64_t amount;
} fx;

/* count - SELECT count(*) ... as a number. */
static long count(fx *f, const char *sql)
{
    char v[32];

    gg_test_mkt_text(f->mk.db, sql, v, sizeof v);
    return atol(v);
}

static int setup(void **state)
{
    gg_seed_opts o = { 60, 3, 91, "2025-03" };
    char sql[256], v[32];
    fx *f = calloc(1, sizeof *f);

    *state = f;
    if (f == NULL || gg_test_mkt_seed(&f->mk, "test_payment.", &o) != 0)
        return -1;
    gg_test_mkt_text(f->mk.db, "SELECT b.bill_id FROM bills b JOIN accounts a USING(account_no) "
                     "WHERE b.status <> 'paid' AND a.status = 'active' ORDER BY b.bill_id LIMIT 1",
                     f->bill, sizeof f->bill);
    snprintf(sql, sizeof sql, "SELECT account_no FROM bills WHERE bill_id = '%s'", f->bill);
    gg_test_mkt_text(f->mk.db, sql, f->acct, sizeof f->acct);
    snprintf(sql, sizeof sql, "SELECT amount_fen FROM bills WHERE bill_id = '%s'", f->bill);
    gg_test_mkt_text(f->mk.db, sql, v, sizeof v);
    f->amount = atoll(v);
    snprintf(sql, sizeof sql, "SELECT b.bill_id FROM bills b JOIN accounts a USING(account_no) "
             "WHERE b.status <> 'paid' AND a.status = 'active' AND b.account_no <> '%s' "
             "ORDER BY b.bill_id LIMIT 1", f->acct);
    gg_test_mkt_text(f->mk.db, sql, f->other_bill, sizeof f->other_bill);
    snprintf(sql, sizeof sql, "SELECT account_no FROM bills WHERE bill_id = '%s'", f->other_bill);
    gg_test_mkt_text(f->mk.db, sql, f->other, sizeof f->other);
    snprintf(sql, sizeof sql, "SELECT bill_id FROM bills WHERE status = 'paid' AND "
             "account_no = '%s' LIMIT 1", f->acct);
    gg_test_mkt_text(f->mk.db, sql, f->paid_bill, sizeof f->paid_bill);
    if (!f->bill[0] || !f->other_bill[0] || !f->paid_bill[0] || f->amount <= 2)
        return -1;
    if (gg_test_mkt_ctx(f->mk.db, f->key, TTL_MS, &f->ctx) != GG_OK ||
        gg_mkt_ledger_init(f->ctx.mkt) != GG_OK)
        return -1;
    snprintf(f->ctx.txid, sizeof f->ctx.txid, "%032x", 1);
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

/* token - a token for account with scopes (static buffer). */
static const char *token(fx *f, const char *account, uint32_t scopes)
{
    static char tok[GG_TOKEN_MAX];

    assert_int_equal(gg_test_token(f->key, "citizen-1", account, scopes, f->ctx.now_ms + TTL_MS,
                                   tok, sizeof tok),
                     GG_OK);
    return tok;
}

/* pay_req - a pay payload. */
static json_t *pay_req(const char *tok, const char *acct, const char *bill, json_int_t amount,
                       const char *ref)
{
    json_t *r = json_pack("{s:s, s:s, s:s, s:I, s:s}", "binding_token", tok, "account_no", acct,
                          "bill_id", bill, "amount_fen", amount, "payment_ref", ref);

    assert_non_null(r);
    return r;
}

/* pay - dispatch "pay" as request id txid (1..); returns the reply. */
static json_t *pay(fx *f, int txid, json_t *req)
{
    json_t *rep;

    snprintf(f->ctx.txid, sizeof f->ctx.txid, "%032x", txid);
    rep = gg_svc_dispatch(&f->ctx, "pay", req);
    json_decref(req);
    assert_non_null(rep);
    return rep;
}

static int status_of(json_t *r)
{
    return (int)json_integer_value(json_object_get(r, "status"));
}

static const char *code_of(json_t *r)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(r, "body"), "error"), "code"));
}

static const char *body_str(json_t *r, const char *k)
{
    return json_string_value(json_object_get(json_object_get(r, "body"), k));
}

/* state_of - payments, inbox, outbox rows and the bill's status, as text. */
static void state_of(fx *f, char *out, size_t outsz)
{
    char sql[200], st[16];

    snprintf(sql, sizeof sql, "SELECT status FROM bills WHERE bill_id = '%s'", f->bill);
    gg_test_mkt_text(f->mk.db, sql, st, sizeof st);
    snprintf(out, outsz, "%ld/%ld/%ld/%s", count(f, "SELECT count(*) FROM payments"),
             count(f, "SELECT count(*) FROM gg_inbox"), count(f, "SELECT count(*) FROM gg_outbox"),
             st);
}

static void test_payment_posts_once_with_row_bill_inbox_and_event(void **state)
{
    fx *f = *state;
    json_t *r = pay(f, 1, pay_req(token(f, f->acct, GG_SCOPE_PAY), f->acct, f->bill, f->amount,
                                  "ref-1"));
    char sql[200], v[64];
    gg_outbox_row *rows = NULL;
    size_t n = 0;
    json_t *ev;
    char *text;

    assert_int_equal(status_of(r), 200);
    assert_string_equal(body_str(r, "status"), "posted");
    assert_string_equal(body_str(r, "bill_status"), "paid");
    assert_string_equal(body_str(r, "transaction_id"), f->ctx.txid);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "body"),
                                                        "amount_due_fen")), 0);
    snprintf(sql, sizeof sql, "SELECT amount_fen FROM payments WHERE payment_ref = 'ref-1'");
    gg_test_mkt_text(f->mk.db, sql, v, sizeof v);
    assert_int_equal(atoll(v), f->amount);
    snprintf(sql, sizeof sql, "SELECT status FROM bills WHERE bill_id = '%s'", f->bill);
    gg_test_mkt_text(f->mk.db, sql, v, sizeof v);
    assert_string_equal(v, "paid");
    assert_int_equal(count(f, "SELECT count(*) FROM gg_inbox"), 2);  /* pay: and msg: */
    assert_int_equal(gg_mkt_outbox_list(f->ctx.mkt, 10, &rows, &n), GG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].type, "payment.posted");
    text = gg_event_json(&rows[0], "utility");
    ev = json_loads(text, 0, NULL);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "event_id")), rows[0].event_id);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "data"),
                                                          "payment_ref")), "ref-1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "data"),
                                                          "payment_id")),
                        body_str(r, "payment_id"));
    json_decref(ev);
    free(text);
    assert_int_equal(gg_mkt_outbox_delete(f->ctx.mkt, rows[0].seq), GG_OK);
    gg_outbox_free(rows, n);
    assert_int_equal(count(f, "SELECT count(*) FROM gg_outbox"), 0);
    json_decref(r);
}

static void test_same_payment_ref_again_gets_the_same_answer_and_posts_nothing(void **state)
{
    fx *f = *state;
    const char *tok = token(f, f->acct, GG_SCOPE_PAY);
    json_t *r1 = pay(f, 1, pay_req(tok, f->acct, f->bill, f->amount, "ref-1"));
    json_t *r2 = pay(f, 2, pay_req(tok, f->acct, f->bill, f->amount, "ref-1"));
    json_t *r3 = pay(f, 1, pay_req(tok, f->acct, f->bill, f->amount, "ref-1"));

    assert_true(json_equal(r1, r2));  /* a resend: same answer, first transaction id */
    assert_true(json_equal(r1, r3));  /* a redelivery of the first request */
    assert_int_equal(count(f, "SELECT count(*) FROM payments"), 1);
    assert_int_equal(count(f, "SELECT count(*) FROM gg_outbox"), 1);
    json_decref(r1);
    json_decref(r2);
    json_decref(r3);
}

static void test_same_payment_ref_with_another_body_is_idempotency_conflict(void **state)
{
    fx *f = *state;
    const char *tok = token(f, f->acct, GG_SCOPE_PAY);
    json_t *r1 = pay(f, 1, pay_req(tok, f->acct, f->bill, f->amount - 1, "ref-1"));
    char before[128], after[128];
    json_t *r2;

    assert_int_equal(status_of(r1), 200);
    state_of(f, before, sizeof before);
    r2 = pay(f, 2, pay_req(tok, f->acct, f->bill, f->amount, "ref-1"));
    assert_int_equal(status_of(r2), 409);
    assert_string_equal(code_of(r2), "idempotency_conflict");
    state_of(f, after, sizeof after);
    assert_string_equal(before, after);
    json_decref(r1);
    json_decref(r2);
}

/* refused - pay req as a new request: status and code, nothing written. */
static void refused(fx *f, json_t *req, int status, const char *code)
{
    char before[128], after[128];
    json_t *r;

    state_of(f, before, sizeof before);
    r = pay(f, 77, req);
    assert_int_equal(status_of(r), status);
    assert_string_equal(code_of(r), code);
    state_of(f, after, sizeof after);
    assert_string_equal(before, after);
    json_decref(r);
}

static void test_each_refusal_has_its_code_and_writes_nothing(void **state)
{
    fx *f = *state;
    char tok[GG_TOKEN_MAX];
    json_t *req;

    snprintf(tok, sizeof tok, "%s", token(f, f->acct, GG_SCOPE_PAY));
    refused(f, pay_req(tok, f->acct, f->bill, 0, "r-0"), 400, "invalid_amount");
    refused(f, pay_req(tok, f->acct, f->bill, -5, "r-1"), 400, "invalid_amount");
    refused(f, pay_req(tok, f->acct, f->bill, f->amount + 1, "r-2"), 422, "amount_exceeds_due");
    refused(f, pay_req(tok, f->acct, f->paid_bill, 100, "r-3"), 409, "bill_already_paid");
    refused(f, pay_req(tok, f->acct, f->other_bill, 100, "r-4"), 403, "bill_not_on_account");
    refused(f, pay_req(tok, f->acct, "NOPE-1", 100, "r-5"), 404, "bill_not_found");
    refused(f, pay_req(tok, f->other, f->other_bill, 100, "r-6"), 403, "not_bound");
    refused(f, pay_req(token(f, f->acct, GG_SCOPE_READ), f->acct, f->bill, 100, "r-7"), 403,
            "insufficient_scope");
    refused(f, pay_req("gg1.bogus.bogus", f->acct, f->bill, 100, "r-8"), 401, "invalid_token");
    refused(f, pay_req(tok, f->acct, f->bill, 100, "bad ref"), 400, "invalid_parameter");
    req = pay_req(tok, f->acct, f->bill, 100, "r-9");
    json_object_del(req, "binding_token");
    refused(f, req, 401, "missing_token");
    req = pay_req(tok, f->acct, f->bill, 100, "r-10");
    json_object_set_new(req, "amount_fen", json_real(1.5));
    refused(f, req, 400, "invalid_parameter");
}

static void test_more_than_due_says_how_much_is_due(void **state)
{
    fx *f = *state;
    json_t *r = pay(f, 3, pay_req(token(f, f->acct, GG_SCOPE_PAY), f->acct, f->bill,
                                  f->amount + 1, "r-1"));

    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(r, "body"), "error"), "amount_due_fen")),
                     f->amount);
    json_decref(r);
}

static void test_partial_payments_leave_the_bill_open_until_covered(void **state)
{
    fx *f = *state;
    const char *tok = token(f, f->acct, GG_SCOPE_PAY);
    json_t *r1 = pay(f, 1, pay_req(tok, f->acct, f->bill, 1, "p-1"));
    json_t *r2, *r3;

    assert_int_equal(status_of(r1), 200);
    assert_string_not_equal(body_str(r1, "bill_status"), "paid");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r1, "body"),
                                                        "amount_due_fen")), f->amount - 1);
    r2 = pay(f, 2, pay_req(tok, f->acct, f->bill, f->amount, "p-2"));
    assert_int_equal(status_of(r2), 422);
    r3 = pay(f, 3, pay_req(tok, f->acct, f->bill, f->amount - 1, "p-2"));
    assert_int_equal(status_of(r3), 200);
    assert_string_equal(body_str(r3, "bill_status"), "paid");
    json_decref(r1);
    json_decref(r2);
    json_decref(r3);
}

static void test_a_failure_inside_the_transaction_writes_nothing(void **state)
{
    fx *f = *state;
    char before[128], after[128];
    sqlite3 *h = NULL;
    json_t *r;

    /* The outbox write fails after the payment row and the inbox records:
     * all of it must roll back. */
    assert_int_equal(sqlite3_open(f->mk.db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "CREATE TRIGGER no_events BEFORE INSERT ON gg_outbox "
                                     "BEGIN SELECT RAISE(FAIL, 'injected'); END;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    state_of(f, before, sizeof before);
    r = pay(f, 1, pay_req(token(f, f->acct, GG_SCOPE_PAY), f->acct, f->bill, f->amount, "x-1"));
    assert_true(status_of(r) >= 500);
    state_of(f, after, sizeof after);
    assert_string_equal(before, after);
    json_decref(r);
}

static void test_pruned_inbox_still_refuses_a_reused_payment_ref(void **state)
{
    fx *f = *state;
    const char *tok = token(f, f->acct, GG_SCOPE_PAY);
    json_t *r1 = pay(f, 1, pay_req(tok, f->acct, f->bill, 1, "old-1"));
    int64_t removed = 0;
    json_t *r2;

    assert_int_equal(status_of(r1), 200);
    assert_int_equal(gg_mkt_inbox_prune(f->ctx.mkt, gg_now_ms() + 1000, &removed), GG_OK);
    assert_int_equal(removed, 2);
    r2 = pay(f, 2, pay_req(tok, f->acct, f->bill, 1, "old-1"));
    assert_int_equal(status_of(r2), 409);
    assert_string_equal(code_of(r2), "idempotency_conflict");
    assert_int_equal(count(f, "SELECT count(*) FROM payments"), 1);
    json_decref(r1);
    json_decref(r2);
}

static void test_prune_keeps_records_inside_the_window(void **state)
{
    fx *f = *state;
    int64_t removed = 0;

    assert_int_equal(gg_mkt_begin(f->ctx.mkt), GG_OK);
    assert_int_equal(gg_mkt_inbox_put(f->ctx.mkt, "msg:a", "bind", "", "{}", 1000), GG_OK);
    assert_int_equal(gg_mkt_inbox_put(f->ctx.mkt, "msg:b", "bind", "", "{}", 5000), GG_OK);
    assert_int_equal(gg_mkt_inbox_put(f->ctx.mkt, "msg:b", "bind", "", "{}", 5000), GG_EEXISTS);
    assert_int_equal(gg_mkt_commit(f->ctx.mkt), GG_OK);
    assert_int_equal(gg_mkt_inbox_prune(f->ctx.mkt, 3000, &removed), GG_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(count(f, "SELECT count(*) FROM gg_inbox WHERE key = 'msg:b'"), 1);
}

static void test_redelivered_bind_returns_the_stored_token(void **state)
{
    fx *f = *state;
    gg_account a;
    json_t *req, *r1, *r2, *r3;

    assert_int_equal(gg_mkt_account(f->ctx.mkt, f->acct, &a), GG_OK);
    req = json_pack("{s:s, s:s, s:s, s:s}", "portal_user_id", "citizen-9", "account_no",
                    a.account_no, "holder_name", a.holder_name, "phone_last4",
                    a.phone + strlen(a.phone) - 4);
    snprintf(f->ctx.txid, sizeof f->ctx.txid, "%032x", 5);
    r1 = gg_svc_dispatch(&f->ctx, "bind", req);
    r2 = gg_svc_dispatch(&f->ctx, "bind", req);      /* the same message again */
    snprintf(f->ctx.txid, sizeof f->ctx.txid, "%032x", 6);
    r3 = gg_svc_dispatch(&f->ctx, "bind", req);      /* a new request */
    assert_int_equal(status_of(r1), 201);
    assert_true(json_equal(r1, r2));
    assert_false(json_equal(r1, r3));
    json_object_set_new(req, "phone_last4", json_string("0000"));
    snprintf(f->ctx.txid, sizeof f->ctx.txid, "%032x", 7);
    json_decref(r3);
    r3 = gg_svc_dispatch(&f->ctx, "bind", req);      /* a refusal is not recorded */
    assert_int_equal(status_of(r3), 403);
    assert_int_equal(count(f, "SELECT count(*) FROM gg_inbox"), 2);
    json_decref(req);
    json_decref(r1);
    json_decref(r2);
    json_decref(r3);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_payment_posts_once_with_row_bill_inbox_and_event),
        T(test_same_payment_ref_again_gets_the_same_answer_and_posts_nothing),
        T(test_same_payment_ref_with_another_body_is_idempotency_conflict),
        T(test_each_refusal_has_its_code_and_writes_nothing),
        T(test_more_than_due_says_how_much_is_due),
        T(test_partial_payments_leave_the_bill_open_until_covered),
        T(test_a_failure_inside_the_transaction_writes_nothing),
        T(test_pruned_inbox_still_refuses_a_reused_payment_ref),
        T(test_prune_keeps_records_inside_the_window),
        T(test_redelivered_bind_returns_the_stored_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
