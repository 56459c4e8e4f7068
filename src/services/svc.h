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

json_t *svc_bind(gg_svc_ctx *ctx, json_t *req);
json_t *svc_bills_query(gg_svc_ctx *ctx, json_t *req);

#endif
