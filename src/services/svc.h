/* svc.h - internal to the services: reply builders, field validation and
 * the service entry points that gg_svc_dispatch calls. */
#ifndef GG_SERVICES_SVC_H
#define GG_SERVICES_SVC_H

#include <jansson.h>
#include <stddef.h>

#include "core/err.h"
#include "services/services.h"

/* svc_reply - {"status":status,"body":body}; takes ownership of body. */
json_t *svc_reply(int status, json_t *body);

/* svc_invalid - 400 invalid_parameter naming field, with "field" set too. */
json_t *svc_invalid(const char *field, const char *message);

/* svc_backend_error - 503 backend_busy or 500 internal_error for a
 * marketing-system failure; logs op and err. */
json_t *svc_backend_error(gg_err err, const char *op);

/* svc_str - req[name] as a string of min..max bytes without control
 * characters; NULL if absent, not a string, or out of bounds. */
const char *svc_str(json_t *req, const char *name, size_t min, size_t max);

/* svc_period_ok - "YYYY-MM" with month 01..12. */
int svc_period_ok(const char *s);

/* svc_account_no_ok - 1..32 of [0-9A-Za-z-]. */
int svc_account_no_ok(const char *s);

/* svc_auth_account - check req's "binding_token" (present, valid, with
 * scope) and that req's "account_no" is the account it is bound to. NULL
 * when all holds (*acct then points into req), else the error reply: 401
 * missing_token / invalid_token / token_revoked, 503 unavailable (the
 * revocation list cannot be read: fail closed), 403 insufficient_scope / not_bound, 400
 * invalid_parameter (account_no). */
json_t *svc_auth_account(gg_svc_ctx *ctx, json_t *req, unsigned scope, const char **acct);

/* svc_month_range - "from" and "to" of req, months "YYYY-MM" with from
 * not after to, into *from and *to; NULL when fine, else the 400 reply. */
json_t *svc_month_range(json_t *req, const char **from, const char **to);

/* svc_account_known - NULL if account acct exists, else the reply: 404
 * not_found, or the backend error. */
json_t *svc_account_known(gg_svc_ctx *ctx, const char *acct);

/* svc_day_number - "YYYY-MM-DD" to days since 1970-01-01, -1 if invalid. */
long svc_day_number(const char *s);

#define SVC_USAGE_DAYS_MAX 366     /* longest usage range by day */
#define SVC_USAGE_MONTHS_MAX 120   /* longest usage range by month */

json_t *svc_bind(gg_svc_ctx *ctx, json_t *req);
json_t *svc_bills_query(gg_svc_ctx *ctx, json_t *req);
json_t *svc_usage_query(gg_svc_ctx *ctx, json_t *req);
json_t *svc_pay(gg_svc_ctx *ctx, json_t *req);
json_t *svc_unbind(gg_svc_ctx *ctx, json_t *req);   /* unbind.c */

/* --- inbox.c: exactly-once for state-changing services ---------------- */
typedef json_t *(*svc_fn)(gg_svc_ctx *ctx, json_t *req);

/* svc_once - run fn at most once per request message id (ctx->txid): in
 * one marketing transaction, answer a redelivery from the inbox, else run
 * fn and, if its reply is 2xx, record it under "msg:<txid>" and commit; a
 * non-2xx reply rolls everything back. fn runs INSIDE that open
 * transaction: it must not begin or commit one itself, and writes its
 * effect and its events (svc_event) on ctx->mkt. To protect a service,
 * set .once = 1 on its row in services.c (bind is; unbind is idempotent
 * by itself). */
json_t *svc_once(gg_svc_ctx *ctx, const char *txn, json_t *req, svc_fn fn);

/* svc_event - add an event (type e.g. "binding.revoked", data a JSON
 * object, taken) to the outbox in the open transaction; the utility's
 * publisher sends it to the portal after the commit. GG_EINVAL on a
 * backend without an outbox (PostgreSQL, for now). */
gg_err svc_event(gg_svc_ctx *ctx, const char *type, json_t *data);

/* svc_inbox_key - "<prefix>:<id>" into out; -1 if it does not fit. */
int svc_inbox_key(const char *prefix, const char *id, char *out, size_t outsz);

/* svc_stored_reply - the reply stored under key (new object), or NULL with
 * *err (GG_ENOTFOUND when none); hash (GG_MKT_HASH_MAX) may be NULL. */
json_t *svc_stored_reply(gg_svc_ctx *ctx, const char *key, char *hash, gg_err *err);

/* svc_store_reply - record rep under key in the open transaction. */
gg_err svc_store_reply(gg_svc_ctx *ctx, const char *key, const char *txn, const char *hash,
                       json_t *rep);

#endif
