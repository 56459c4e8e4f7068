/* unbind.c - "unbind": the citizen withdraws consent; the binding token
 * sent with the request is revoked (envelope/revoke.h) and refused by every
 * account service from then on (401 token_revoked, auth.c).
 *
 * Holding the token is the proof: whoever may use it may also end it. The
 * revocation is idempotent (revoking twice answers 200 both times), so the
 * service needs no inbox record. A token that has already expired is
 * answered 200 as well: it can never be used again either way.
 */
#include <string.h>

#include "core/log.h"
#include "envelope/revoke.h"
#include "services/svc.h"

json_t *svc_unbind(gg_svc_ctx *ctx, json_t *req)
{
    json_t *tok = json_object_get(req, "binding_token");
    gg_token_claims c;
    gg_err err;

    if (!json_is_string(tok) || json_string_length(tok) == 0)
        return gg_svc_error(401, "missing_token", "a binding token is required");
    err = gg_token_verify(ctx->token_key, json_string_value(tok), ctx->now_ms, &c);
    if (err == GG_EEXPIRED)
        return svc_reply(200, json_pack("{s:b}", "revoked", 1));
    if (err != GG_OK) {
        gg_info("services", "msg=\"unbind refused\" err=%s", gg_errname(err));
        return gg_svc_error(401, "invalid_token", "the binding token is not valid");
    }
    if (ctx->revoked == NULL) {
        gg_error("services", "msg=\"no revocation list configured\"");
        return gg_svc_error(500, "internal_error", "the request could not be completed");
    }
    err = gg_revoke_add(ctx->revoked, c.token_id, c.expiry_ms, ctx->now_ms);
    if (err != GG_OK)
        return svc_backend_error(err == GG_EIO ? GG_EBUSY : err, "revoke");
    /* The binding.revoked event (payments helper): svc_once runs this in a
     * marketing transaction, so the event commits with the inbox record; a
     * redelivery revokes again (idempotent) and writes it then. GG_EINVAL:
     * a backend without an outbox (PostgreSQL, for now). */
    err = svc_event(ctx, "binding.revoked",
                    json_pack("{s:s, s:s, s:s}", "account_no", c.account_no, "portal_user_id",
                              c.portal_user_id, "token_id", c.token_id));
    if (err != GG_OK && err != GG_EINVAL)
        return svc_backend_error(err, "event");
    gg_info("services", "msg=\"binding revoked\" account=%s token_id=%s", c.account_no,
            c.token_id);
    return svc_reply(200, json_pack("{s:b, s:s}", "revoked", 1, "account_no", c.account_no));
}
