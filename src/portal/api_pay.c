/* api_pay.c - the payment and transaction-status parts of the portal API
 * (api.h): routing, validation and the transaction status body. Pure
 * functions like the rest of api.c; messages never echo values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "portal/api.h"

#define PAYMENTS_SUFFIX "/payments"

/* alnum - ASCII letter or digit. */
static int alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ident_ok - 1..max of [0-9A-Za-z._:-]. */
static int ident_ok(const char *s, size_t max)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (i = 0; i < n; i++)
        if (!alnum(s[i]) && strchr("._:-", s[i]) == NULL)
            return 0;
    return 1;
}

/* gg_api_route_payments - "{account_no}/payments". */
void gg_api_route_payments(gg_api_method m, const char *rest, gg_api_route *r,
                           gg_api_status *st)
{
    const char *slash = strchr(rest, '/');
    size_t n;

    if (slash == NULL || strcmp(slash, PAYMENTS_SUFFIX) != 0) {
        gg_api_fail(st, 404, "not_found", "no such resource");
        return;
    }
    n = (size_t)(slash - rest);
    if (!gg_api_valid_account(rest, n)) {
        gg_api_fail(st, 400, "invalid_parameter", "account_no must be 1 to %d letters or digits",
                    GG_API_ACCOUNT_MAX);
        return;
    }
    memcpy(r->account_no, rest, n);
    r->account_no[n] = '\0';
    r->allow = "POST";
    if (m != GG_M_POST) {
        gg_api_fail(st, 405, "method_not_allowed", "this path accepts only POST");
        return;
    }
    r->id = GG_ROUTE_PAYMENTS;
    gg_api_status_ok(st);
}

/* gg_api_route_transaction - "/api/v1/transactions/{32 hex}". */
void gg_api_route_transaction(gg_api_method m, const char *id, gg_api_route *r,
                              gg_api_status *st)
{
    size_t i;

    if (strlen(id) != 32) {
        gg_api_fail(st, 400, "invalid_parameter", "transaction_id must be 32 hex digits");
        return;
    }
    for (i = 0; i < 32; i++) {
        char c = id[i];

        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            gg_api_fail(st, 400, "invalid_parameter", "transaction_id must be 32 hex digits");
            return;
        }
        r->txid[i] = c;
    }
    r->txid[32] = '\0';
    r->allow = "GET, HEAD";
    if (m != GG_M_GET && m != GG_M_HEAD) {
        gg_api_fail(st, 405, "method_not_allowed", "this path accepts only GET, HEAD");
        return;
    }
    r->id = GG_ROUTE_TRANSACTION;
    gg_api_status_ok(st);
}

/* only_fields - every key of obj is bill_id, amount_fen or payment_ref. */
static int only_fields(json_t *obj, gg_api_status *st)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v) {
        (void)v;
        if (strcmp(key, "bill_id") != 0 && strcmp(key, "amount_fen") != 0 &&
            strcmp(key, "payment_ref") != 0) {
            gg_api_fail(st, 400, "invalid_parameter",
                        "unknown field; expected bill_id, amount_fen, payment_ref");
            return -1;
        }
    }
    return 0;
}

/* gg_api_parse_pay - validate a payment request. */
void gg_api_parse_pay(const char *account_no, const char *token, const char *body, size_t len,
                      size_t max_body, json_t **payload, gg_api_status *st)
{
    json_error_t jerr;
    json_t *root = NULL;
    json_t *amt;
    const char *bill, *ref;
    json_int_t amount;

    *payload = NULL;
    gg_api_check_token(token, st);
    if (st->code != NULL)
        return;
    if (account_no == NULL || !gg_api_valid_account(account_no, strlen(account_no))) {
        gg_api_fail(st, 400, "invalid_parameter", "account_no must be 1 to %d letters or digits",
                    GG_API_ACCOUNT_MAX);
        return;
    }
    if (len > max_body) {
        gg_api_fail(st, 413, "too_large", "request body exceeds %zu bytes", max_body);
        return;
    }
    if (body == NULL || len == 0) {
        gg_api_fail(st, 400, "invalid_parameter", "request body is empty; expected a JSON object");
        return;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        gg_api_fail(st, 400, "invalid_parameter", "request body must be a JSON object");
        goto out;
    }
    if (only_fields(root, st) != 0)
        goto out;
    bill = gg_api_field_str(root, "bill_id", st);
    if (bill == NULL)
        goto out;
    if (!ident_ok(bill, GG_API_BILL_ID_MAX)) {
        gg_api_fail(st, 400, "invalid_parameter", "bill_id must be 1 to %d of letters, digits "
                    "and ._:-", GG_API_BILL_ID_MAX);
        goto out;
    }
    amt = json_object_get(root, "amount_fen");
    if (amt == NULL) {
        gg_api_fail(st, 400, "invalid_parameter", "missing field amount_fen");
        goto out;
    }
    if (!json_is_integer(amt)) {
        gg_api_fail(st, 400, "invalid_parameter", "amount_fen must be a whole number of fen");
        goto out;
    }
    amount = json_integer_value(amt);
    if (amount <= 0 || amount > GG_API_AMOUNT_MAX) {
        gg_api_fail(st, 400, "invalid_amount", "amount_fen must be a positive number of fen "
                    "(at most %lld)", GG_API_AMOUNT_MAX);
        goto out;
    }
    ref = gg_api_field_str(root, "payment_ref", st);
    if (ref == NULL)
        goto out;
    if (!ident_ok(ref, GG_API_PAY_REF_MAX)) {
        gg_api_fail(st, 400, "invalid_parameter", "payment_ref must be 1 to %d of letters, "
                    "digits and ._:-", GG_API_PAY_REF_MAX);
        goto out;
    }
    *payload = json_pack("{s:s, s:s, s:s, s:I, s:s}", "binding_token", token, "account_no",
                         account_no, "bill_id", bill, "amount_fen", amount, "payment_ref", ref);
    if (*payload == NULL) {
        gg_api_fail(st, 500, "internal", "out of memory");
        goto out;
    }
    gg_api_status_ok(st);
out:
    json_decref(root);
}

/* iso - ms since the epoch as "YYYY-MM-DDTHH:MM:SSZ". */
static void iso(int64_t ms, char out[24])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 24, "1970-01-01T00:00:00Z");
}

/* is_expired_reply - the utility's 504 {"error":{"code":"expired"}}. */
static int is_expired_reply(int http_status, json_t *result)
{
    json_t *code = json_object_get(json_object_get(result, "error"), "code");

    return http_status == 504 && json_is_string(code) &&
           strcmp(json_string_value(code), "expired") == 0;
}

/* gg_api_tx_json - the transaction status body. */
char *gg_api_tx_json(const char *txid, const char *txn, int64_t created_ms, int64_t expiry_ms,
                     int http_status, int64_t done_ms, const char *result_json, int64_t now_ms,
                     int64_t grace_ms)
{
    json_t *root, *result = NULL;
    json_error_t jerr;
    const char *status;
    char at[24];
    char *s;

    if (result_json != NULL)
        result = json_loads(result_json, 0, &jerr);
    if (http_status == 0)
        status = now_ms < expiry_ms + grace_ms ? "pending" : "expired";
    else
        status = is_expired_reply(http_status, result) ? "expired" : "completed";
    iso(created_ms, at);
    root = json_pack("{s:s, s:s, s:s, s:s}", "transaction_id", txid, "txn", txn, "status",
                     status, "created_at", at);
    if (root == NULL) {
        json_decref(result);
        return NULL;
    }
    if (http_status != 0) {
        iso(done_ms, at);
        json_object_set_new(root, "completed_at", json_string(at));
        json_object_set_new(root, "http_status", json_integer(http_status));
        if (result != NULL)
            json_object_set(root, "result", result);
    }
    json_decref(result);
    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}
