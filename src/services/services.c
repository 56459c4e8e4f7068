/* services.c - dispatch by transaction code, and the reply helpers every
 * service shares (services.h, svc.h). */
#include "services/services.h"

#include <string.h>

#include "core/log.h"
#include "services/svc.h"

/* once: run under svc_once (inbox by request message id, inbox.c). pay
 * keeps its own inbox by payment_ref as well (payment.c). */
static const struct {
    const char *txn;
    svc_fn fn;
    int once;
} services[] = {
    { "bind", svc_bind, 1 },
    { "bills.query", svc_bills_query, 0 },
    { "usage.query", svc_usage_query, 0 },
    { "pay", svc_pay, 0 },
    { "unbind", svc_unbind, 1 },
};

json_t *gg_svc_dispatch(gg_svc_ctx *ctx, const char *txn, json_t *req)
{
    for (size_t i = 0; txn && i < sizeof services / sizeof services[0]; i++) {
        if (strcmp(txn, services[i].txn) != 0)
            continue;
        if (!json_is_object(req))
            return gg_svc_error(400, "invalid_parameter", "the payload must be a JSON object");
        if (services[i].once)
            return svc_once(ctx, txn, req, services[i].fn);
        return services[i].fn(ctx, req);
    }
    return gg_svc_error(400, "unknown_transaction", "no such transaction code");
}

json_t *svc_reply(int status, json_t *body)
{
    if (!body)
        return NULL;
    return json_pack("{s:i, s:o}", "status", status, "body", body);
}

json_t *gg_svc_error(int status, const char *code, const char *message)
{
    return svc_reply(status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
                                       message));
}

json_t *svc_invalid(const char *field, const char *message)
{
    return svc_reply(400, json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid_parameter",
                                    "message", message, "field", field));
}

json_t *svc_backend_error(gg_err err, const char *op)
{
    gg_error("services", "msg=\"marketing system failed\" op=%s err=%s", op, gg_errname(err));
    if (err == GG_EBUSY)
        return gg_svc_error(503, "backend_busy", "the marketing system is busy; try again");
    return gg_svc_error(500, "internal_error", "the request could not be completed");
}

const char *svc_str(json_t *req, const char *name, size_t min, size_t max)
{
    json_t *v = json_object_get(req, name);
    const char *s;
    size_t n;

    if (!json_is_string(v))
        return NULL;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n < min || n > max || strlen(s) != n) /* no embedded NUL */
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return NULL;
    }
    return s;
}

int svc_period_ok(const char *s)
{
    for (int i = 0; i < 7; i++) {
        if (i == 4 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return 0;
    }
    if (s[7] != '\0')
        return 0;
    int month = (s[5] - '0') * 10 + (s[6] - '0');
    return month >= 1 && month <= 12 && memcmp(s, "0000", 4) != 0;
}

json_t *svc_month_range(json_t *req, const char **from, const char **to)
{
    *from = svc_str(req, "from", 7, 7);
    if (!*from || !svc_period_ok(*from))
        return svc_invalid("from", "from must be a month \"YYYY-MM\"");
    *to = svc_str(req, "to", 7, 7);
    if (!*to || !svc_period_ok(*to))
        return svc_invalid("to", "to must be a month \"YYYY-MM\"");
    if (strcmp(*from, *to) > 0)
        return svc_invalid("to", "to must not be before from");
    return NULL;
}

json_t *svc_account_known(gg_svc_ctx *ctx, const char *acct)
{
    gg_account a;
    gg_err err = gg_mkt_account(ctx->mkt, acct, &a);

    memset(&a, 0, sizeof a); /* no personal data left on the stack */
    if (err == GG_ENOTFOUND)
        return gg_svc_error(404, "not_found", "no such account");
    if (err != GG_OK)
        return svc_backend_error(err, "account");
    return NULL;
}

int svc_account_no_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 32 &&
           strspn(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") == n;
}
