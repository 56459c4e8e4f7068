/* services.h - the utility's business services, dispatched by transaction code.
 *
 * A service reads the request payload (JSON, from the portal) and returns
 * the reply payload: {"status": <http status>, "body": <json>}, where body
 * is either the result or {"error":{"code","message"}} with a stable code.
 * Services check binding tokens themselves and never reveal an account
 * without a valid one; personal data leaves only masked. They know nothing
 * of queues, channels or envelopes.
 *
 * Transaction codes and payloads (docs/protocol.md, "Payloads"):
 *   "bind"         {"portal_user_id","account_no","holder_name","phone_last4"}
 *                  -> 201 {"binding_token","account":{"account_no","holder_name","address"}}
 *   "bills.query"  {"binding_token","account_no","from","to"}
 *                  -> 200 {"account_no","bills":[{"bill_id","period","kwh","kwh_peak",
 *                     "kwh_valley","amount_fen","due_date","status"}]}  (integers as such)
 *   "pay"          {"binding_token","account_no","bill_id","amount_fen","payment_ref"}
 *                  -> 200 {"transaction_id","status":"posted","payment_id","payment_ref",
 *                     "bill_id","bill_status","amount_fen","amount_due_fen","posted_at"}
 *                  (payment.c: exactly once per payment_ref, see docs/payments.md)
 *   "usage.query"  {"binding_token","account_no","granularity":"day"|"month","from","to"}
 *                  -> 200 {"account_no","granularity","from","to","unit":"kWh",
 *                     "usage":[{"period","kwh_peak","kwh_valley","kwh"}]}  (kWh, 2 decimals)
 * Error codes: 400 invalid_parameter (error.field names the field),
 * 400 unknown_transaction; bind: 403 ownership_not_proven (one reply for
 * unknown account, wrong name or digits, closed account); bills.query:
 * 401 missing_token, 401 invalid_token (also expired), 403
 * insufficient_scope, 403 not_bound, 404 not_found; 500 internal_error,
 * 503 backend_busy when the marketing system fails or is locked.
 */
#ifndef GG_SERVICES_SERVICES_H
#define GG_SERVICES_SERVICES_H

#include <jansson.h>
#include <stdint.h>

#include "envelope/token.h"
#include "marketing/marketing.h"

typedef struct gg_svc_ctx {
    gg_mkt *mkt;                               /* this worker's connection */
    const uint8_t *token_key;                  /* GG_TOKEN_KEY_LEN bytes */
    int64_t token_ttl_ms;                      /* lifetime of issued tokens */
    int64_t now_ms;
    struct gg_revoke *revoked;                 /* revoked tokens (envelope/revoke.h);
                                                * NULL: no list, nothing is revoked */
    char txid[33];                             /* the request's message id, hex ("" if none):
                                                * the inbox key of a redelivery and the
                                                * payment's transaction_id */
} gg_svc_ctx;

/* gg_svc_dispatch - run txn on req. Always returns a new reply object
 * (never NULL unless out of memory); unknown txn gives 400
 * "unknown_transaction". Does not take ownership of req. */
json_t *gg_svc_dispatch(gg_svc_ctx *ctx, const char *txn, json_t *req);

/* gg_svc_cache_key - for a cacheable read ("bills.query", "usage.query"):
 * check req's binding token exactly as the service would and, when it
 * holds, write the cache key (the txn and every field but the token) to key
 * and the account to account and return NULL; when it does not, return the
 * service's error reply (new object). For any other txn (or a key that does
 * not fit keysz) key[0] is '\0' and NULL is returned: do not cache. */
json_t *gg_svc_cache_key(gg_svc_ctx *ctx, const char *txn, json_t *req, char *key,
                         size_t keysz, char *account, size_t accsz);

/* gg_svc_error - helper: {"status":status,"body":{"error":{"code","message"}}}. */
json_t *gg_svc_error(int status, const char *code, const char *message);

#endif
