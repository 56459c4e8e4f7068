/* tx.c - the portal's payment endpoint and transaction status.
 *
 * Every request the portal relays is recorded in the transaction log
 * (txlog.h) as pending under its transaction id (the envelope's
 * correlation id); every reply that comes back, whether its caller still
 * waits or has timed out or left, records the outcome. So GET
 * /api/v1/transactions/{id} can say pending, completed (with the reply) or
 * expired, and a citizen whose payment call timed out never has to guess.
 * What is kept of a reply: the body of state-changing transactions (pay,
 * unbind, bind without its binding token) and of every error; for reads
 * (bills, usage) only the status: ask again for the data. Runs on the
 * portal's loop thread.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "portal/portal_int.h"
#include "portal/txlog.h"

#define TX_PRUNE_EVERY_S 3600
#define TX_FLUSH_MS 5           /* longest a held record waits for its commit */

/* keeps_body - whether a 2xx body of txn is kept in the log. */
static int keeps_body(const char *txn)
{
    return strcmp(txn, "pay") == 0 || strcmp(txn, "unbind") == 0 || strcmp(txn, "bind") == 0;
}

/* on_flush - TX_FLUSH_MS after the first held record: commit them (if
 * a batch of replies has not done it already). */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gg_portal_tx_flush(arg);
}

/* hold - group records into one transaction (txlog.h), committed by the
 * next batch of replies (gg_portal_on_replies) or at the latest
 * TX_FLUSH_MS later: one commit per batch, not one per turn of the loop,
 * and a request's pending record and its outcome mostly in the same one. */
static void hold(gg_portal *p)
{
    struct timeval tv = { 0, TX_FLUSH_MS * 1000 };
    int opened = 0;

    if (gg_txlog_hold(p->txlog, &opened) == GG_OK && opened && p->ev_txflush != NULL &&
        !evtimer_pending(p->ev_txflush, NULL))
        evtimer_add(p->ev_txflush, &tv);
}

/* gg_portal_tx_flush - commit the held records now. */
void gg_portal_tx_flush(gg_portal *p)
{
    gg_err e;

    if (p->txlog == NULL)
        return;
    e = gg_txlog_flush(p->txlog);
    if (e != GG_OK)
        gg_warn("portal", "msg=\"cannot record transactions\" err=%s", gg_errname(e));
}

/* gg_portal_tx_begun - a pending record. */
void gg_portal_tx_begun(gg_portal *p, const char *txid, const char *txn, int64_t created_ms,
                        int64_t expiry_ms)
{
    gg_err e;

    if (p->txlog == NULL)
        return;
    hold(p);
    e = gg_txlog_begin(p->txlog, txid, txn, created_ms, expiry_ms);
    if (e != GG_OK)
        gg_warn("portal", "msg=\"cannot record transaction\" txid=%s err=%s", txid,
                gg_errname(e));
}

/* gg_portal_tx_done - the outcome, redacted as the file comment says. */
void gg_portal_tx_done(gg_portal *p, const char *txid, const char *txn, int status,
                       const char *body)
{
    json_t *obj = NULL;
    char *kept = NULL;
    json_error_t jerr;
    gg_err e;

    if (p->txlog == NULL)
        return;
    if (body != NULL && status >= 200 && status < 300) {
        if (!keeps_body(txn)) {
            body = NULL;
        } else if (strcmp(txn, "bind") == 0) {
            obj = json_loads(body, 0, &jerr);
            if (obj != NULL)
                json_object_del(obj, "binding_token");  /* the consent stays with the caller */
            kept = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
            body = kept;
        }
    }
    hold(p);
    e = gg_txlog_finish(p->txlog, txid, txn, status, body, gg_now_ms());
    if (e != GG_OK)
        gg_warn("portal", "msg=\"cannot record transaction outcome\" txid=%s err=%s", txid,
                gg_errname(e));
    json_decref(obj);
    free(kept);
}

/* gg_portal_handle_payment - validate and relay a payment. */
void gg_portal_handle_payment(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                              const gg_api_route *r)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    const char *cl = evhttp_find_header(in, "Content-Length");
    const char *token = evhttp_find_header(in, "X-Binding-Token");
    size_t len = evbuffer_get_length(buf);
    json_t *payload = NULL;
    gg_api_status st;

    if (cl != NULL && strtoull(cl, NULL, 10) > p->max_body)
        len = p->max_body + 1;
    gg_api_parse_pay(r->account_no, token,
                     len > 0 && len <= p->max_body ? (const char *)evbuffer_pullup(buf, -1)
                                                   : NULL,
                     len, p->max_body, &payload, &st);
    if (st.code != NULL) {
        gg_portal_respond_error(p, req, ri, &st, NULL, 0);
        return;
    }
    gg_portal_relay(p, req, ri, "pay", payload);
    json_decref(payload);
}

/* gg_portal_handle_transaction - the status of one transaction. */
void gg_portal_handle_transaction(gg_portal *p, struct evhttp_request *req,
                                  const gg_reqinfo *ri, const gg_api_route *r)
{
    gg_api_status st;
    gg_txrec rec;
    char *body;
    gg_err e;

    if (p->txlog == NULL) {
        gg_api_fail(&st, 503, "unavailable", "transaction status is not available");
        gg_portal_respond_error(p, req, ri, &st, NULL, 0);
        return;
    }
    e = gg_txlog_get(p->txlog, r->txid, &rec);
    if (e == GG_ENOTFOUND) {
        gg_api_fail(&st, 404, "not_found", "no such transaction (unknown, or older than the "
                    "retention of transaction records)");
        gg_portal_respond_error(p, req, ri, &st, NULL, 0);
        return;
    }
    if (e != GG_OK) {
        gg_api_fail(&st, 503, "unavailable", "the transaction record could not be read");
        gg_portal_respond_error(p, req, ri, &st, NULL, 1);
        return;
    }
    body = gg_api_tx_json(rec.txid, rec.txn, rec.created_ms, rec.expiry_ms, rec.http_status,
                          rec.done_ms, rec.body, gg_now_ms(), p->ttl_ms);
    gg_txrec_clear(&rec);
    if (body == NULL) {
        gg_api_fail(&st, 500, "internal", "out of memory");
        gg_portal_respond_error(p, req, ri, &st, NULL, 0);
        return;
    }
    gg_portal_respond(p, req, ri, 200, body, 0);
    free(body);
}

/* on_prune - drop transaction records past the retention. */
static void on_prune(evutil_socket_t fd, short what, void *arg)
{
    gg_portal *p = arg;
    int64_t removed = 0;
    gg_err e;

    (void)fd;
    (void)what;
    e = gg_txlog_prune(p->txlog, gg_now_ms() - p->tx_retention_ms, &removed);
    if (e == GG_OK && removed > 0)
        gg_info("portal", "msg=\"transaction records pruned\" removed=%lld", (long long)removed);
}

/* gg_portal_tx_open - the log and its pruning. */
gg_err gg_portal_tx_open(gg_portal *p)
{
    const char *path = gg_config_str(p->cfg, "portal.tx_db");
    struct timeval tv = { TX_PRUNE_EVERY_S, 0 };
    gg_err e;

    p->tx_retention_ms = gg_config_int(p->cfg, "portal.tx_retention_days") * 86400000LL;
    e = gg_txlog_open(path, &p->txlog);
    if (e != GG_OK) {
        gg_error("portal", "msg=\"cannot open the transaction log\" path=%s err=%s", path,
                 gg_errname(e));
        return e;
    }
    p->ev_txprune = event_new(p->base, -1, EV_PERSIST, on_prune, p);
    p->ev_txflush = evtimer_new(p->base, on_flush, p);
    if (p->ev_txprune == NULL || p->ev_txflush == NULL || event_add(p->ev_txprune, &tv) != 0)
        return GG_ENOMEM;
    on_prune(-1, 0, p);
    return GG_OK;
}

/* gg_portal_tx_close - release the log (committing what is held) and its
 * timers. */
void gg_portal_tx_close(gg_portal *p)
{
    if (p->ev_txprune != NULL)
        event_free(p->ev_txprune);
    p->ev_txprune = NULL;
    if (p->ev_txflush != NULL)
        event_free(p->ev_txflush);
    p->ev_txflush = NULL;
    gg_txlog_close(p->txlog);
    p->txlog = NULL;
}
