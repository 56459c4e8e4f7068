/* relay.c - requests out to the utility, replies back to the waiting calls.
 *
 * A validated request is sealed in an envelope (kind REQUEST, corr_id =
 * msg_id), put durably on the transmission queue for the utility's
 * "requests" queue, and its HTTP call parked in the pending table under
 * the correlation id with a timer of http.request_timeout_ms. Exactly one
 * of three things then answers and forgets the call: the matching reply
 * (status and body from the utility), the timer (504 timeout with the
 * transaction id), or the stop (503). If the client hangs up first, the
 * connection's close callback forgets the call and a later reply is just
 * acknowledged. Replies are drained from the local "replies" queue when
 * the store's watcher wakes ev_replies, once at start-up and every second:
 * a batch is read, each reply handled, then the batch removed in one commit,
 * whatever each outcome, because a reply that cannot be opened now never
 * will be. A reply is
 * refused (counted in gridgate_rejects_total{reason}, its call left to time
 * out) unless it opens, comes from the peer, is fresh and not a replay
 * (replay.h), and carries the hash of the request its call sent.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "audit/audit.h"
#include "core/rand.h"
#include "portal/portal_int.h"
#include "portal/shed.h"

/* reqinfo_of - the log facts of a parked call. */
static void reqinfo_of(const gg_pending *pd, gg_reqinfo *ri, char txid[33])
{
    memset(ri, 0, sizeof *ri);
    ri->start_us = pd->start_us;
    snprintf(ri->method, sizeof ri->method, "%s", pd->method);
    snprintf(ri->log_path, sizeof ri->log_path, "%s", pd->log_path);
    gg_hex(pd->corr_id, 16, txid);
    ri->txid = txid;
}

/* forget - release a parked call's timer and close callback and drop it.
 * The request itself is left to the caller (to answer, or not). */
static void forget(gg_portal *p, gg_pending *pd)
{
    if (pd->timer != NULL)
        event_free(pd->timer);
    if (pd->conn != NULL)
        evhttp_connection_set_closecb(pd->conn, NULL, NULL);
    gg_pending_remove(p->pending, pd);
}

/* on_timeout - no reply in time: 504 with the transaction id. */
static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    gg_pending *pd = arg;
    gg_portal *p = pd->owner;
    struct evhttp_request *req = pd->req;
    gg_reqinfo ri;
    gg_api_status st;
    char txid[33];

    (void)fd;
    (void)what;
    reqinfo_of(pd, &ri, txid);
    forget(p, pd);
    p->c.timeouts++;
    gg_api_fail(&st, 504, "timeout",
                "no reply from the utility within %lld ms; the transaction may still complete",
                (long long)p->timeout_ms);
    gg_portal_respond_error(p, req, &ri, &st, txid, 0);
}

/* on_close - the client's connection is going away while its call waits.
 * libevent has either detached the request (client EOF: then it is ours
 * to free) or will free it right after this callback. */
static void on_close(struct evhttp_connection *conn, void *arg)
{
    gg_pending *pd = arg;
    gg_portal *p = pd->owner;
    struct evhttp_request *req = pd->req;
    gg_reqinfo ri;
    char txid[33];

    (void)conn;
    reqinfo_of(pd, &ri, txid);
    pd->conn = NULL;  /* no need to clear the callback of a dying connection */
    forget(p, pd);
    p->c.clients_gone++;
    p->c.http[499]++;
    gg_portal_log_request(&ri, 499);
    if (req != NULL && evhttp_request_get_connection(req) == NULL)
        evhttp_request_free(req);
}

/* refuse - answer a request that could not be relayed. */
static void refuse(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri, int status,
                   const char *code, const char *message, int retry_after)
{
    gg_api_status st;

    gg_api_fail(&st, status, code, "%s", message);
    gg_portal_respond_error(p, req, ri, &st, NULL, retry_after);
}

/* gg_portal_relay - seal, queue and park one request. */
void gg_portal_relay(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                     const char *txn, json_t *payload)
{
    gg_buf env = GG_BUF_INIT(GG_ENV_MAX);
    struct timeval tv;
    gg_pending *pd = NULL;
    gg_env_hdr h;
    char *pt = NULL;
    char txid[33];
    int retry_after = 0;
    gg_err e;

    /* outstanding: relayed and not yet answered, whether or not the caller
     * still waits (a call that timed out is still queued at the utility) */
    uint64_t back = p->c.replies_answered + p->c.replies_no_caller + p->c.replies_rejected;
    size_t outstanding = p->c.relayed > back ? (size_t)(p->c.relayed - back) : 0;

    if (strcmp(gg_transport_request_queue(txn), GG_Q_REQUESTS) == 0 &&
        gg_shed_check(p->shed, outstanding, gg_mono_us(), &retry_after)) {
        /* more is waiting than the utility answers within the budget */
        refuse(p, req, ri, 503, "overloaded",
               "the utility is answering slower than requests arrive; retry after the "
               "indicated time", retry_after);
        return;
    }
    memset(&h, 0, sizeof h);
    h.kind = GG_ENV_REQUEST;
    gg_new_id(h.msg_id);
    memcpy(h.corr_id, h.msg_id, sizeof h.corr_id);
    snprintf(h.txn, sizeof h.txn, "%s", txn);
    snprintf(h.sender, sizeof h.sender, "%s", p->site);
    snprintf(h.receiver, sizeof h.receiver, "%s", p->peer);
    h.created_ms = gg_now_ms();
    h.expiry_ms = h.created_ms + p->ttl_ms;
    gg_hex(h.corr_id, 16, txid);

    pt = json_dumps(payload, JSON_COMPACT);
    if (pt == NULL) {
        refuse(p, req, ri, 500, "internal", "out of memory", 0);
        goto out;
    }
    e = gg_env_seal(p->keys, &h, pt, strlen(pt), &env);
    if (e != GG_OK) {
        p->c.relay_error++;
        gg_error("portal", "msg=\"cannot seal request\" txid=%s err=%s", txid, gg_errname(e));
        refuse(p, req, ri, 500, "internal", "the request could not be sealed", 0);
        goto out;
    }
    e = gg_pending_add(p->pending, h.corr_id, &pd);
    if (e == GG_OK && gg_env_hash(p->keys, env.data, env.len, pd->req_hash) != GG_OK) {
        gg_pending_remove(p->pending, pd);
        e = GG_ECRYPTO;
    }
    if (e == GG_EFULL) {
        p->c.relay_full++;
        refuse(p, req, ri, 503, "unavailable", "too many calls are waiting; retry shortly", 1);
        goto out;
    }
    if (e != GG_OK) {
        refuse(p, req, ri, 500, "internal", "the call could not be registered", 0);
        goto out;
    }
    pd->timer = evtimer_new(p->base, on_timeout, pd);
    if (pd->timer == NULL) {
        gg_pending_remove(p->pending, pd);
        refuse(p, req, ri, 500, "internal", "out of memory", 0);
        goto out;
    }
    e = gg_transport_send(p->t, gg_transport_request_queue(txn), env.data, env.len,
                          h.expiry_ms);
    if (e != GG_OK) {
        forget(p, pd);
        if (e == GG_EFULL) {
            p->c.relay_full++;
            gg_warn("portal", "msg=\"request queue full\" txid=%s", txid);
            refuse(p, req, ri, 503, "unavailable", "the request queue is full; retry shortly",
                   1);
        } else {
            p->c.relay_error++;
            gg_error("portal", "msg=\"cannot queue request\" txid=%s err=%s", txid,
                     gg_errname(e));
            refuse(p, req, ri, 503, "unavailable", "the request could not be queued", 0);
        }
        goto out;
    }
    pd->req = req;
    pd->owner = p;
    pd->start_us = ri->start_us;
    snprintf(pd->method, sizeof pd->method, "%s", ri->method);
    snprintf(pd->log_path, sizeof pd->log_path, "%s", ri->log_path);
    tv.tv_sec = (time_t)(p->timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)((p->timeout_ms % 1000) * 1000);
    evtimer_add(pd->timer, &tv);
    pd->conn = evhttp_request_get_connection(req);
    if (pd->conn != NULL)
        evhttp_connection_set_closecb(pd->conn, on_close, pd);
    p->c.relayed++;
    gg_audit_note(p->audit, "sent", h.msg_id, txn, NULL);
    gg_portal_tx_begun(p, txid, txn, h.created_ms, h.expiry_ms);  /* tx.c */
    gg_debug("portal", "msg=\"request queued\" txid=%s txn=%s bytes=%zu", txid, txn, env.len);
out:
    if (pt != NULL) {
        explicit_bzero(pt, strlen(pt));  /* holds the token and personal data */
        free(pt);
    }
    gg_buf_free(&env);
}

/* gg_portal_write_rejects - replies refused, by reason, and the audit log's state. */
void gg_portal_write_rejects(gg_portal *p, struct evbuffer *b)
{
    static const char *const names[GG_PREJ_COUNT] = {
        "malformed", "crypto", "not_for_us", "too_big", "wrong_kind", "wrong_sender", "stale",
        "future", "replay", "replay_full", "request_hash", "other",
    };
    int i;

    evbuffer_add_printf(b, "# HELP gridgate_rejects_total Replies refused before reaching a "
                        "call, by reason.\n# TYPE gridgate_rejects_total counter\n");
    for (i = 0; i < GG_PREJ_COUNT; i++)
        evbuffer_add_printf(b, "gridgate_rejects_total{reason=\"%s\"} %llu\n", names[i],
                            (unsigned long long)p->c.rejects[i]);
    if (p->audit != NULL) {
        gg_audit_stats as;

        gg_audit_get_stats(p->audit, &as);
        evbuffer_add_printf(b, "# TYPE gridgate_audit_records_total counter\n"
                            "gridgate_audit_records_total %lld\n"
                            "# TYPE gridgate_audit_dropped_total counter\n"
                            "gridgate_audit_dropped_total %lld\n"
                            "# TYPE gridgate_audit_queued gauge\n"
                            "gridgate_audit_queued %lld\n"
                            "# TYPE gridgate_audit_head gauge\n"
                            "gridgate_audit_head{hash=\"%s\"} %lld\n",
                            (long long)as.written, (long long)as.dropped, (long long)as.queued,
                            as.last_hash, (long long)as.last_seq);
    }
}

/* open_reason - the reject reason of an envelope open failure. */
static gg_portal_reject open_reason(gg_err e)
{
    switch (e) {
    case GG_EPROTO:
    case GG_EINVAL:
        return GG_PREJ_MALFORMED;
    case GG_ECRYPTO:
        return GG_PREJ_CRYPTO;
    case GG_EDENIED:
        return GG_PREJ_NOT_FOR_US;
    case GG_ETOOBIG:
        return GG_PREJ_TOO_BIG;
    default:
        return GG_PREJ_OTHER;
    }
}

/* refuse_reply - count, log and audit a refused reply. */
static void refuse_reply(gg_portal *p, const gg_msg *m, gg_portal_reject why, const char *name)
{
    gg_env_hdr h;
    char detail[64];

    p->c.replies_rejected++;
    p->c.rejects[why]++;
    snprintf(detail, sizeof detail, "reason=%s", name);
    gg_audit_note(p->audit, "rejected", gg_env_peek(m->data, m->len, &h) == GG_OK ? h.msg_id : NULL,
                  NULL, detail);   /* the id as claimed: for tracing, not trust */
    gg_warn("portal", "msg=\"reply rejected\" id=%lld reason=%s", (long long)m->id, name);
}

/* replay_reason - the reject reason of a replay verdict, or -1 to go on. */
static int replay_reason(gg_replay_verdict v)
{
    switch (v) {
    case GG_RV_STALE:
        return GG_PREJ_STALE;
    case GG_RV_FUTURE:
        return GG_PREJ_FUTURE;
    case GG_RV_REPLAY:
        return GG_PREJ_REPLAY;
    case GG_RV_FULL:
        return GG_PREJ_REPLAY_FULL;
    default:
        return -1;
    }
}

/* deliver - open one reply and answer its waiting call, if any. */
static void deliver(gg_portal *p, const gg_msg *m)
{
    struct evhttp_request *req;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    char *body = NULL;
    gg_pending *pd;
    gg_api_status st;
    gg_reqinfo ri;
    gg_env_hdr h;
    gg_replay_verdict rv;
    char detail[48];
    char txid[33];
    int status = 0;
    gg_err e;

    e = gg_env_open(p->keys, m->data, m->len, &h, &pt, &ptlen);
    if (e != GG_OK) {
        refuse_reply(p, m, open_reason(e), gg_errname(e));
        goto out;
    }
    gg_hex(h.corr_id, 16, txid);
    if (h.kind != GG_ENV_REPLY || strcmp(h.sender, p->peer) != 0) {
        refuse_reply(p, m, h.kind != GG_ENV_REPLY ? GG_PREJ_WRONG_KIND : GG_PREJ_WRONG_SENDER,
                     h.kind != GG_ENV_REPLY ? "wrong_kind" : "wrong_sender");
        goto out;
    }
    e = gg_replay_check(p->replay, h.msg_id, h.created_ms, m->id, gg_now_ms(), &rv);
    if (e != GG_OK) {
        refuse_reply(p, m, GG_PREJ_OTHER, "replay_store_error");
        goto out;
    }
    if (replay_reason(rv) >= 0) {
        refuse_reply(p, m, (gg_portal_reject)replay_reason(rv), gg_replay_verdict_name(rv));
        goto out;
    }
    pd = gg_pending_find(p->pending, h.corr_id);
    if (pd == NULL) {
        gg_portal_tx_reply(p, txid, h.txn, pt, ptlen);  /* tx.c: kept for its transaction id */
        p->c.replies_no_caller++;
        gg_audit_note(p->audit, "reply", h.msg_id, h.txn, "no_caller");
        gg_info("portal", "msg=\"reply without a waiting call\" txid=%s", txid);
        goto out;
    }
    if (CRYPTO_memcmp(pd->req_hash, h.req_hash, GG_ENV_HASH_LEN) != 0) {
        /* Not the reply to what this call sent: the call keeps waiting. */
        refuse_reply(p, m, GG_PREJ_REQUEST_HASH, "request_hash");
        goto out;
    }
    req = pd->req;
    reqinfo_of(pd, &ri, txid);
    forget(p, pd);
    p->c.replies_answered++;
    gg_api_parse_reply(pt, ptlen, &status, &body, &st);
    gg_portal_tx_done(p, txid, h.txn, st.code != NULL ? st.http : status,
                      st.code != NULL ? NULL : body);
    snprintf(detail, sizeof detail, "answered status=%d", st.code != NULL ? st.http : status);
    gg_audit_note(p->audit, "reply", h.msg_id, h.txn, detail);
    if (st.code != NULL) {
        gg_warn("portal", "msg=\"malformed reply\" txid=%s", txid);
        gg_portal_respond_error(p, req, &ri, &st, txid, 0);
        goto out;
    }
    gg_portal_respond(p, req, &ri, status, body, 0);
out:
    if (pt != NULL) {
        explicit_bzero(pt, ptlen);
        free(pt);
    }
    free(body);
}

/* gg_portal_watch - the store committed to "replies": wake the loop. */
void gg_portal_watch(void *arg, const char *queue)
{
    gg_portal *p = arg;

    (void)queue;
    event_active(p->ev_replies, EV_READ, 0);
}

/* gg_portal_on_replies - drain up to a batch of replies, then yield. */
void gg_portal_on_replies(evutil_socket_t fd, short what, void *arg)
{
    gg_portal *p = arg;
    gg_store *st = gg_transport_store(p->t);
    gg_msg **msgs = NULL;
    size_t i, n = 0;
    gg_err e;

    (void)fd;
    (void)what;
    /* This loop is the replies queue's only consumer: read a batch in id
     * order without leasing, answer each, then remove the whole batch in
     * one commit (not a lease and an ack, two commits, per reply). After a
     * crash in between, the batch is read again and finds no callers. */
    e = gg_store_browse(st, GG_Q_REPLIES, 0, GG_PORTAL_DRAIN_BATCH, 0, &msgs, &n);
    if (e != GG_OK) {
        gg_warn("portal", "msg=\"cannot read replies\" err=%s", gg_errname(e));
        return;  /* the periodic poll tries again */
    }
    for (i = 0; i < n; i++) {
        deliver(p, msgs[i]);
        gg_shed_reply(p->shed, gg_mono_us());
    }
    if (n > 0) {
        e = gg_store_delete_upto(st, GG_Q_REPLIES, msgs[n - 1]->id);
        if (e != GG_OK)
            gg_warn("portal", "msg=\"cannot remove answered replies\" upto=%lld err=%s",
                    (long long)msgs[n - 1]->id, gg_errname(e));
    }
    gg_msgs_free(msgs, n);
    if (n == GG_PORTAL_DRAIN_BATCH)
        event_active(p->ev_replies, EV_READ, 0);  /* more may wait: continue next turn */
}

/* gg_portal_fail_all - answer every waiting call 503 (the portal stops). */
void gg_portal_fail_all(gg_portal *p)
{
    gg_pending *pd;

    while ((pd = gg_pending_any(p->pending)) != NULL) {
        struct evhttp_request *req = pd->req;
        gg_api_status st;
        gg_reqinfo ri;
        char txid[33];

        reqinfo_of(pd, &ri, txid);
        forget(p, pd);
        gg_api_fail(&st, 503, "unavailable",
                    "the portal is shutting down; the transaction may still complete");
        gg_portal_respond_error(p, req, &ri, &st, txid, 1);
    }
}
