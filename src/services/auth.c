/* auth.c - the binding-token checks every account query shares. */
#include <string.h>

#include "core/log.h"
#include "envelope/revoke.h"
#include "services/svc.h"

/* svc_auth_account - check req's binding_token for reading req's account_no
 * (see svc.h). */
json_t *svc_auth_account(gg_svc_ctx *ctx, json_t *req, unsigned scope, const char **acct)
{
    json_t *tok = json_object_get(req, "binding_token");
    gg_token_claims c;
    const char *a;
    gg_err err;

    *acct = NULL;
    if (!tok || json_is_null(tok) || (json_is_string(tok) && json_string_length(tok) == 0))
        return gg_svc_error(401, "missing_token", "a binding token is required");
    if (!json_is_string(tok))
        return gg_svc_error(401, "invalid_token", "the binding token is not valid");
    err = gg_token_verify(ctx->token_key, json_string_value(tok), ctx->now_ms, &c);
    if (err != GG_OK) {
        gg_info("services", "msg=\"token rejected\" err=%s", gg_errname(err));
        return gg_svc_error(401, "invalid_token",
                            err == GG_EEXPIRED ? "the binding token has expired"
                                               : "the binding token is not valid");
    }
    if (ctx->revoked != NULL) {
        int revoked = 1;

        if (gg_revoke_check(ctx->revoked, c.token_id, &revoked) != GG_OK)
            return gg_svc_error(503, "unavailable", "the request could not be checked; retry");
        if (revoked) {
            gg_info("services", "msg=\"revoked token refused\" token_id=%s", c.token_id);
            return gg_svc_error(401, "token_revoked", "the binding token has been revoked");
        }
    }
    if (!(c.scopes & scope))
        return gg_svc_error(403, "insufficient_scope",
                            "the binding token does not allow this operation");
    a = svc_str(req, "account_no", 1, sizeof c.account_no - 1);
    if (!a || !svc_account_no_ok(a))
        return svc_invalid("account_no", "account_no must be 1 to 32 letters, digits or '-'");
    if (strcmp(a, c.account_no) != 0) {
        gg_warn("services", "msg=\"token for another account\" token_id=%s", c.token_id);
        return gg_svc_error(403, "not_bound", "the binding token is not for this account");
    }
    *acct = a;
    return NULL;
}

/* gg_svc_cache_key - the token check and cache key of a cacheable read
 * (services.h). */
json_t *gg_svc_cache_key(gg_svc_ctx *ctx, const char *txn, json_t *req, char *key,
                         size_t keysz, char *account, size_t accsz)
{
    static const char *const fields[] = { "granularity", "from", "to" };
    const char *acct = NULL;
    json_t *rep;
    size_t n;
    int k;

    key[0] = '\0';
    account[0] = '\0';
    if (!txn || !json_is_object(req) ||
        (strcmp(txn, "bills.query") != 0 && strcmp(txn, "usage.query") != 0))
        return NULL;
    rep = svc_auth_account(ctx, req, GG_SCOPE_READ, &acct);
    if (rep)
        return rep;
    if (strlen(acct) >= accsz)
        return NULL;
    strcpy(account, acct);
    k = snprintf(key, keysz, "%s|%s", txn, acct);
    for (size_t i = 0; k > 0 && (size_t)k < keysz && i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = svc_str(req, fields[i], 0, 16);

        n = (size_t)k;
        k += snprintf(key + n, keysz - n, "|%s", v ? v : "-");
    }
    if (k < 0 || (size_t)k >= keysz)
        key[0] = '\0';  /* too long to cache: served uncached */
    return NULL;
}
