/* bills.c - "bills.query": an account's bills for a range of months, for
 * the holder of a valid binding token for that account.
 *
 * Order of checks: the token (401 missing_token, 401 invalid_token, 403
 * insufficient_scope), the account it is bound to (403 not_bound), the
 * range (400 invalid_parameter), then the account (404 not_found). The
 * month range and account checks are shared with usage.query (services.c).
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "services/svc.h"

/* bill_json - one bill as the portal sees it. */
static json_t *bill_json(const gg_bill *b)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s}", "bill_id", b->bill_id, "period",
                     b->period, "kwh", (json_int_t)b->kwh, "kwh_peak", (json_int_t)b->kwh_peak,
                     "kwh_valley", (json_int_t)b->kwh_valley, "amount_fen",
                     (json_int_t)b->amount_fen, "due_date", b->due_date, "status", b->status);
}

json_t *svc_bills_query(gg_svc_ctx *ctx, json_t *req)
{
    json_t *list = NULL, *reply = NULL;
    const char *acct, *from = NULL, *to = NULL;
    gg_bill *bills = NULL;
    size_t n = 0;
    gg_err err;

    reply = svc_auth_account(ctx, req, GG_SCOPE_READ, &acct);
    if (!reply)
        reply = svc_month_range(req, &from, &to);
    if (!reply)
        reply = svc_account_known(ctx, acct);
    if (reply)
        return reply;
    err = gg_mkt_bills(ctx->mkt, acct, from, to, &bills, &n);
    if (err == GG_ETOOBIG)
        return svc_invalid("from", "the range holds too many bills; ask for fewer months");
    if (err != GG_OK)
        return svc_backend_error(err, "bills");

    list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        if (json_array_append_new(list, bill_json(&bills[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (list)
        reply = svc_reply(200, json_pack("{s:s, s:o}", "account_no", acct, "bills", list));
    gg_debug("services", "msg=\"bills served\" account=%s from=%s to=%s n=%zu", acct, from, to,
             n);
    free(bills);
    return reply;
}
