/* inbox.c - exactly-once for state-changing services (svc.h: svc_once,
 * svc_event, svc_stored_reply, svc_store_reply).
 *
 * A state-changing service writes its effect, its inbox record and its
 * events in one transaction of the marketing database. The inbox record
 * maps the request's message id ("msg:<hex>", and for payments also
 * "pay:<payment_ref>") to the reply it produced, so a redelivered or resent
 * request gets the stored reply and acts no second time. Only successful
 * replies (2xx) are recorded: a refusal writes nothing and is simply
 * decided again. Records older than utility.inbox_retention_days are
 * pruned by the utility's publisher thread: that is the window of the
 * guarantee (docs/payments.md).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rand.h"
#include "marketing/ledger.h"
#include "services/svc.h"

/* svc_inbox_key - "<prefix>:<id>" into out; -1 if it does not fit. */
int svc_inbox_key(const char *prefix, const char *id, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s:%s", prefix, id);

    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* svc_stored_reply - the stored reply under key as a new object; NULL
 * with *err GG_ENOTFOUND when there is none, or another error. hash (size
 * GG_MKT_HASH_MAX, may be NULL) gets the stored request hash. */
json_t *svc_stored_reply(gg_svc_ctx *ctx, const char *key, char *hash, gg_err *err)
{
    char h[GG_MKT_HASH_MAX];
    char *text = NULL;
    json_t *rep = NULL;
    json_error_t jerr;

    *err = gg_mkt_inbox_get(ctx->mkt, key, h, &text);
    if (*err != GG_OK)
        return NULL;
    rep = json_loads(text, 0, &jerr);
    free(text);
    if (rep == NULL || !json_is_object(rep)) {
        gg_error("services", "msg=\"stored reply unreadable\" key_kind=%.3s", key);
        json_decref(rep);
        *err = GG_EIO;
        return NULL;
    }
    if (hash != NULL)
        memcpy(hash, h, GG_MKT_HASH_MAX);
    return rep;
}

/* svc_store_reply - record rep under key (inside the open transaction). */
gg_err svc_store_reply(gg_svc_ctx *ctx, const char *key, const char *txn, const char *hash,
                       json_t *rep)
{
    char *text = json_dumps(rep, JSON_COMPACT);  /* order kept: the same bytes again */
    gg_err e;

    if (text == NULL)
        return GG_ENOMEM;
    e = gg_mkt_inbox_put(ctx->mkt, key, txn, hash != NULL ? hash : "", text, ctx->now_ms);
    free(text);
    return e;
}

/* svc_event - add an event to the outbox inside the open transaction.
 * Takes data (a JSON object). */
gg_err svc_event(gg_svc_ctx *ctx, const char *type, json_t *data)
{
    uint8_t id[16];
    char hex[33];
    char *text;
    gg_err e;

    if (data == NULL)
        return GG_ENOMEM;
    if (!gg_mkt_has_ledger(ctx->mkt)) {
        json_decref(data);
        return GG_EINVAL;  /* no outbox on this backend (yet) */
    }
    text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(data);
    if (text == NULL)
        return GG_ENOMEM;
    gg_new_id(id);
    gg_hex(id, sizeof id, hex);
    e = gg_mkt_outbox_put(ctx->mkt, hex, type, text, ctx->now_ms);
    free(text);
    return e;
}

/* reply_status - the "status" of a reply object, 500 if missing. */
static int reply_status(json_t *rep)
{
    json_t *s = json_object_get(rep, "status");

    return json_is_integer(s) ? (int)json_integer_value(s) : 500;
}

/* svc_once - run fn at most once per request message id. */
json_t *svc_once(gg_svc_ctx *ctx, const char *txn, json_t *req, svc_fn fn)
{
    char key[GG_MKT_KEY_MAX];
    json_t *rep = NULL;
    gg_err e;

    if (ctx->txid[0] == '\0' || svc_inbox_key("msg", ctx->txid, key, sizeof key) != 0 ||
        !gg_mkt_has_ledger(ctx->mkt))
        return fn(ctx, req);  /* no message id (in-process callers) or no ledger: no inbox */
    e = gg_mkt_begin(ctx->mkt);
    if (e != GG_OK)
        return svc_backend_error(e, "begin");
    rep = svc_stored_reply(ctx, key, NULL, &e);
    if (rep != NULL) {
        gg_mkt_rollback(ctx->mkt);
        gg_info("services", "msg=\"redelivered request answered from the inbox\" txn=%s "
                "txid=%s", txn, ctx->txid);
        return rep;
    }
    if (e != GG_ENOTFOUND) {
        gg_mkt_rollback(ctx->mkt);
        return svc_backend_error(e, "inbox get");
    }
    rep = fn(ctx, req);
    if (rep == NULL || reply_status(rep) < 200 || reply_status(rep) > 299) {
        gg_mkt_rollback(ctx->mkt);  /* a refusal writes nothing */
        return rep;
    }
    e = svc_store_reply(ctx, key, txn, NULL, rep);
    if (e == GG_OK)
        e = gg_mkt_commit(ctx->mkt);
    if (e != GG_OK) {
        gg_mkt_rollback(ctx->mkt);
        json_decref(rep);
        return svc_backend_error(e, "inbox put");
    }
    return rep;
}
