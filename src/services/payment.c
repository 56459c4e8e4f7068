/* payment.c - "pay": post a payment the portal has collected against a
 * bill, exactly once per payment_ref.
 *
 * Order of checks: the token (401 missing_token / invalid_token, 403
 * insufficient_scope without the PAY scope, 403 not_bound for another
 * account), the fields (400 invalid_parameter, 400 invalid_amount for a
 * zero or negative amount). Then, in ONE transaction of the marketing
 * database:
 *   1. the inbox by request message id: a redelivery gets the stored reply;
 *   2. the inbox by payment_ref: the same request gets the stored reply, a
 *      different one (account, bill or amount) 409 idempotency_conflict;
 *   3. the bill: 404 bill_not_found, 403 bill_not_on_account, 409
 *      bill_already_paid, 422 amount_exceeds_due (more than is still due);
 *   4. the payment row, the bill's new status (paid once the payments
 *      cover the bill; partial payments leave it unpaid or overdue), both
 *      inbox records and the payment.posted event; commit.
 * Any refusal rolls back: nothing is written. A storage failure rolls back
 * and answers 503 backend_busy or 500 internal_error; the portal's retry
 * then runs the whole decision again.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/rand.h"
#include "marketing/ledger.h"
#include "services/svc.h"

#define PAY_AMOUNT_MAX 100000000000LL   /* 1e9 yuan in fen: beyond is a typo */
#define PAY_REF_MAX 64
#define PAY_BILL_MAX 39

/* id_ok - 1..max of [A-Za-z0-9._:-] (extra may add characters). */
static int id_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    return n >= 1 && n <= max &&
           strspn(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._:-") == n;
}

/* check_token - verify req's token for account acct with the PAY scope.
 * NULL when it is good, else the error reply. */
static json_t *check_token(gg_svc_ctx *ctx, json_t *req, gg_token_claims *c)
{
    json_t *tok = json_object_get(req, "binding_token");
    gg_err err;

    if (tok == NULL || json_is_null(tok) ||
        (json_is_string(tok) && json_string_length(tok) == 0))
        return gg_svc_error(401, "missing_token", "a binding token is required");
    if (!json_is_string(tok))
        return gg_svc_error(401, "invalid_token", "the binding token is not valid");
    err = gg_token_verify(ctx->token_key, json_string_value(tok), ctx->now_ms, c);
    if (err != GG_OK) {
        gg_info("services", "msg=\"token rejected\" err=%s", gg_errname(err));
        return gg_svc_error(401, "invalid_token",
                            err == GG_EEXPIRED ? "the binding token has expired"
                                               : "the binding token is not valid");
    }
    if (!(c->scopes & GG_SCOPE_PAY))
        return gg_svc_error(403, "insufficient_scope",
                            "the binding token does not allow payments");
    return NULL;
}

/* request_hash - SHA-256 hex of what makes two payments the same. */
static void request_hash(const char *acct, const char *bill, long long amount, const char *ref,
                         char out[GG_MKT_HASH_MAX])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    char text[256];
    int n = snprintf(text, sizeof text, "pay\n%s\n%s\n%lld\n%s", acct, bill, amount, ref);

    if (n < 0 || (size_t)n >= sizeof text ||
        EVP_Digest(text, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        snprintf(out, GG_MKT_HASH_MAX, "unhashable");
        return;
    }
    gg_hex(md, sizeof md, out);
}

/* iso_time - now_ms as "YYYY-MM-DDTHH:MM:SSZ". */
static void iso_time(int64_t now_ms, char *out, size_t outsz)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outsz, "1970-01-01T00:00:00Z");
}

/* refuse - a 4xx reply; the caller rolls back. */
static json_t *refuse(int status, const char *code, const char *message)
{
    return gg_svc_error(status, code, message);
}

/* decide - steps 3 and 4 inside the open transaction: refuse, or post and
 * return the reply (NULL with *err on a storage failure). */
static json_t *decide(gg_svc_ctx *ctx, const char *acct, const char *bill, long long amount,
                      const char *ref, const char *hash, gg_err *err)
{
    char kmsg[GG_MKT_KEY_MAX], kref[GG_MKT_KEY_MAX];
    const char *status;
    gg_bill_due b;
    gg_payment p;
    uint8_t id[16];
    int64_t due;
    json_t *rep = NULL;
    json_t *rep2;

    *err = gg_mkt_bill_due(ctx->mkt, bill, &b);
    if (*err == GG_ENOTFOUND) {
        *err = GG_OK;
        return refuse(404, "bill_not_found", "no such bill");
    }
    if (*err != GG_OK)
        return NULL;
    if (strcmp(b.account_no, acct) != 0)
        return refuse(403, "bill_not_on_account", "the bill belongs to another account");
    due = b.amount_fen - b.paid_fen;
    if (strcmp(b.status, "paid") == 0 || due <= 0)
        return refuse(409, "bill_already_paid", "the bill is already paid");
    if (amount > due) {
        rep = refuse(422, "amount_exceeds_due", "amount_fen is more than the amount due");
        json_object_set_new(json_object_get(json_object_get(rep, "body"), "error"),
                            "amount_due_fen", json_integer(due));
        return rep;
    }
    memset(&p, 0, sizeof p);
    gg_new_id(id);
    memcpy(p.payment_id, "PAY", 3);
    gg_hex(id, 16, p.payment_id + 3);
    snprintf(p.account_no, sizeof p.account_no, "%s", acct);
    snprintf(p.bill_id, sizeof p.bill_id, "%s", bill);
    p.amount_fen = amount;
    snprintf(p.payment_ref, sizeof p.payment_ref, "%s", ref);
    iso_time(ctx->now_ms, p.posted_at, sizeof p.posted_at);
    status = amount == due ? "paid" : b.status;
    *err = gg_mkt_payment_post(ctx->mkt, &p, status);
    if (*err == GG_EEXISTS) {
        /* The payments table remembers every payment_ref for ever; the
         * inbox only for its retention: a reuse after that is refused. */
        *err = GG_OK;
        return refuse(409, "idempotency_conflict",
                      "payment_ref was used before, longer ago than the inbox keeps answers");
    }
    if (*err != GG_OK)
        return NULL;
    rep = svc_reply(200, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s}",
                                   "transaction_id", ctx->txid, "status", "posted",
                                   "payment_id", p.payment_id, "payment_ref", ref, "bill_id",
                                   bill, "bill_status", status, "amount_fen",
                                   (json_int_t)amount, "amount_due_fen",
                                   (json_int_t)(due - amount), "posted_at", p.posted_at));
    if (rep == NULL) {
        *err = GG_ENOMEM;
        return NULL;
    }
    svc_inbox_key("pay", ref, kref, sizeof kref);
    *err = svc_store_reply(ctx, kref, "pay", hash, rep);
    if (*err == GG_OK && ctx->txid[0] != '\0' &&
        svc_inbox_key("msg", ctx->txid, kmsg, sizeof kmsg) == 0)
        *err = svc_store_reply(ctx, kmsg, "pay", hash, rep);
    if (*err == GG_OK) {
        rep2 = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:s}", "payment_id",
                         p.payment_id, "payment_ref", ref, "account_no", acct, "bill_id", bill,
                         "amount_fen", (json_int_t)amount, "bill_status", status,
                         "amount_due_fen", (json_int_t)(due - amount), "posted_at",
                         p.posted_at, "transaction_id", ctx->txid);
        *err = svc_event(ctx, "payment.posted", rep2);
    }
    if (*err != GG_OK) {
        json_decref(rep);
        return NULL;
    }
    return rep;
}

/* lookup - steps 1 and 2: a stored reply for this request, a conflict, or
 * NULL to go on (*err set on a storage failure). */
static json_t *lookup(gg_svc_ctx *ctx, const char *ref, const char *hash, gg_err *err)
{
    char key[GG_MKT_KEY_MAX], stored[GG_MKT_HASH_MAX];
    json_t *rep;

    if (ctx->txid[0] != '\0' && svc_inbox_key("msg", ctx->txid, key, sizeof key) == 0) {
        rep = svc_stored_reply(ctx, key, NULL, err);
        if (rep != NULL || *err != GG_ENOTFOUND)
            return rep;
    }
    svc_inbox_key("pay", ref, key, sizeof key);
    rep = svc_stored_reply(ctx, key, stored, err);
    if (rep == NULL)
        return NULL;
    if (strcmp(stored, hash) != 0) {
        json_decref(rep);
        gg_warn("services", "msg=\"payment_ref reused with another request\" txid=%s",
                ctx->txid);
        *err = GG_OK;
        return refuse(409, "idempotency_conflict",
                      "payment_ref was already used for a different payment");
    }
    return rep;
}

json_t *svc_pay(gg_svc_ctx *ctx, json_t *req)
{
    const char *acct, *bill, *ref;
    char hash[GG_MKT_HASH_MAX];
    gg_token_claims c;
    json_t *amt, *rep, *body;
    long long amount;
    gg_err err = GG_OK;

    rep = check_token(ctx, req, &c);
    if (rep != NULL)
        return rep;
    acct = svc_str(req, "account_no", 1, sizeof c.account_no - 1);
    if (acct == NULL || !svc_account_no_ok(acct))
        return svc_invalid("account_no", "account_no must be 1 to 32 letters, digits or '-'");
    if (strcmp(acct, c.account_no) != 0) {
        gg_warn("services", "msg=\"token for another account\" token_id=%s", c.token_id);
        return gg_svc_error(403, "not_bound", "the binding token is not for this account");
    }
    bill = svc_str(req, "bill_id", 1, PAY_BILL_MAX);
    if (bill == NULL || !id_ok(bill, PAY_BILL_MAX))
        return svc_invalid("bill_id", "bill_id must be 1 to 39 of letters, digits and ._:-");
    ref = svc_str(req, "payment_ref", 1, PAY_REF_MAX);
    if (ref == NULL || !id_ok(ref, PAY_REF_MAX))
        return svc_invalid("payment_ref",
                           "payment_ref must be 1 to 64 of letters, digits and ._:-");
    amt = json_object_get(req, "amount_fen");
    if (!json_is_integer(amt))
        return svc_invalid("amount_fen", "amount_fen must be a whole number of fen");
    amount = (long long)json_integer_value(amt);
    if (amount <= 0 || amount > PAY_AMOUNT_MAX)
        return gg_svc_error(400, "invalid_amount",
                            "amount_fen must be a positive number of fen");
    request_hash(acct, bill, amount, ref, hash);

    err = gg_mkt_begin(ctx->mkt);
    if (err != GG_OK)
        return svc_backend_error(err, "begin");
    rep = lookup(ctx, ref, hash, &err);
    if (rep == NULL && err == GG_ENOTFOUND)
        rep = decide(ctx, acct, bill, amount, ref, hash, &err);
    if (rep == NULL) {
        gg_mkt_rollback(ctx->mkt);
        return svc_backend_error(err, "pay");
    }
    if (json_integer_value(json_object_get(rep, "status")) != 200) {
        gg_mkt_rollback(ctx->mkt);  /* a refusal: nothing is written */
        return rep;
    }
    /* A new posting, or a stored answer (then the commit writes nothing). */
    err = gg_mkt_commit(ctx->mkt);
    if (err != GG_OK) {
        json_decref(rep);
        return svc_backend_error(err, "commit");
    }
    body = json_object_get(rep, "body");
    if (strcmp(json_string_value(json_object_get(body, "transaction_id")) != NULL
                   ? json_string_value(json_object_get(body, "transaction_id"))
                   : "",
               ctx->txid) == 0)
        gg_info("services", "msg=\"payment posted\" account=%s bill=%s amount_fen=%lld "
                "txid=%s", acct, bill, amount, ctx->txid);
    else
        gg_info("services", "msg=\"payment answered from the inbox\" account=%s txid=%s",
                acct, ctx->txid);
    return rep;
}
