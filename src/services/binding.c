/* binding.c - "bind": a citizen proves ownership of an account and the
 * utility issues a binding token (envelope/token.h) for the portal user.
 *
 * Ownership is proven by the holder's name and the last four digits of the
 * phone on record. Every way of failing (no such account, wrong name,
 * wrong digits, closed account) gives the same 403 reply, so the portal
 * cannot probe which part was wrong; the log says which, for operators.
 * The reply carries the account's name and address masked only.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "services/svc.h"

#define BIND_USER_MAX 64
#define BIND_NAME_MAX 63

/* refuse - the one reply for every failed proof. */
static json_t *refuse(const char *account_no, const char *reason)
{
    gg_warn("services", "msg=\"bind refused\" account=%s reason=%s", account_no, reason);
    return gg_svc_error(403, "ownership_not_proven",
                        "the account could not be bound with the details given");
}

json_t *svc_bind(gg_svc_ctx *ctx, json_t *req)
{
    const char *user, *acct, *name, *last4, *reason = NULL;
    char token[GG_TOKEN_MAX], masked_name[sizeof ((gg_account *)0)->holder_name * 2];
    char masked_addr[sizeof ((gg_account *)0)->address];
    gg_token_claims c;
    gg_account a;
    size_t plen;
    gg_err err;
    json_t *reply;

    user = svc_str(req, "portal_user_id", 1, BIND_USER_MAX);
    if (!user)
        return svc_invalid("portal_user_id", "portal_user_id must be a string of 1 to 64 bytes");
    acct = svc_str(req, "account_no", 1, sizeof c.account_no - 1);
    if (!acct || !svc_account_no_ok(acct))
        return svc_invalid("account_no", "account_no must be 1 to 32 letters, digits or '-'");
    name = svc_str(req, "holder_name", 1, BIND_NAME_MAX);
    if (!name)
        return svc_invalid("holder_name", "holder_name must be a string of 1 to 63 bytes");
    last4 = svc_str(req, "phone_last4", 4, 4);
    if (!last4 || strspn(last4, "0123456789") != 4)
        return svc_invalid("phone_last4", "phone_last4 must be exactly 4 digits");

    err = gg_mkt_account(ctx->mkt, acct, &a);
    if (err == GG_ENOTFOUND)
        return refuse(acct, "unknown_account");
    if (err != GG_OK)
        return svc_backend_error(err, "account");
    plen = strlen(a.phone);
    if (strcmp(a.status, "active") != 0)
        reason = "account_not_active";
    else if (strcmp(a.holder_name, name) != 0)
        reason = "name_mismatch";
    else if (plen < 4 || memcmp(a.phone + plen - 4, last4, 4) != 0)
        reason = "phone_mismatch";
    if (reason) {
        reply = refuse(acct, reason);
        goto out;
    }

    memset(&c, 0, sizeof c);
    snprintf(c.portal_user_id, sizeof c.portal_user_id, "%s", user);
    snprintf(c.account_no, sizeof c.account_no, "%s", a.account_no);
    c.scopes = GG_SCOPE_READ | GG_SCOPE_PAY;
    if (ctx->token_ttl_ms <= 0 || ctx->now_ms > INT64_MAX - ctx->token_ttl_ms) {
        gg_error("services", "msg=\"bad token lifetime\" token_ttl_ms=%lld",
                 (long long)ctx->token_ttl_ms);
        reply = gg_svc_error(500, "internal_error", "the request could not be completed");
        goto out;
    }
    c.expiry_ms = ctx->now_ms + ctx->token_ttl_ms;
    err = gg_token_issue(ctx->token_key, &c, token, sizeof token);
    if (err != GG_OK) {
        gg_error("services", "msg=\"token issue failed\" account=%s err=%s", acct,
                 gg_errname(err));
        reply = gg_svc_error(500, "internal_error", "the request could not be completed");
        goto out;
    }
    gg_mask_name(a.holder_name, masked_name, sizeof masked_name);
    gg_mask_address(a.address, masked_addr, sizeof masked_addr);
    reply = svc_reply(201, json_pack("{s:s, s:{s:s, s:s, s:s}}", "binding_token", token,
                                     "account", "account_no", a.account_no, "holder_name",
                                     masked_name, "address", masked_addr));
    gg_info("services", "msg=\"bound\" account=%s token_id=%s expiry_ms=%lld", a.account_no,
            c.token_id, (long long)c.expiry_ms);
out:
    memset(&a, 0, sizeof a);
    memset(token, 0, sizeof token);
    return reply;
}
