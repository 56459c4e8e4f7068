/* relay.c - requests out to the utility, replies back to the waiting calls.
 *
 * A validated request is sealed in an envelope (kind REQUEST, corr_id =
 * msg_id), its HTTP call parked in the pending table under the correlation
 * id, and the envelope handed to the sender threads (sender.h), which put
 * it durably on the transmission queue for the utility's "requests" queue
 * while the loop serves other calls. When the put is durable
 * (gg_portal_on_sent) the request is counted and recorded as relayed and
 * the call's timer of http.request_timeout_ms started; a put that failed
 * is answered 503. Exactly one of three things then answers and forgets
 * the call: the matching reply (status and body from the utility), the
 * timer (504 timeout with the transaction id), or the stop (503). If the
 * client hangs up first, the connection's close callback forgets the call
 * and a later reply is just recorded. Replies come from the drain thread
 * (drain.c), opened and checked; gg_portal_deliver answers or refuses each
 * one. A reply is refused (counted in gridgate_rejects_total{reason}, its
 * call left to time out) unless it opens, comes from the peer, is fresh and
 * not a replay (replay.h), and carries the hash of the request its call
 * sent.
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
#include "portal/sender.h"
#include "portal/shed.h"

_Static_assert(GG_PSEND_TXN_MAX >= GG_ENV_TXN_MAX, "a job holds any transaction code");
_Static_assert(GG_PSEND_DEST_MAX >= GG_QUEUE_NAME_MAX, "a job holds any queue name");

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
    gg_psend_job *job = NULL;
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

    outstanding += gg_psend_inflight(p->sender);  /* being put: counted as waiting too */

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
    pd->timer = evtimer_new(p->base, on_timeout, pd);  /* armed once the put is durable */
    job = calloc(1, sizeof *job);
    if (pd->timer == NULL || job == NULL) {
        forget(p, pd);
        refuse(p, req, ri, 500, "internal", "out of memory", 0);
        goto out;
    }
    memcpy(job->corr_id, h.corr_id, sizeof job->corr_id);
    memcpy(job->msg_id, h.msg_id, sizeof job->msg_id);
    snprintf(job->txn, sizeof job->txn, "%s", txn);
    snprintf(job->dest, sizeof job->dest, "%s", gg_transport_request_queue(txn));
    job->created_ms = h.created_ms;
    job->expiry_ms = h.expiry_ms;
    job->data = env.data;        /* the job takes the envelope */
    job->len = env.len;
    env.data = NULL;
    env.len = env.cap = 0;
    pd->req = req;
    pd->owner = p;
    pd->start_us = ri->start_us;
    snprintf(pd->method, sizeof pd->method, "%s", ri->method);
    snprintf(pd->log_path, sizeof pd->log_path, "%s", ri->log_path);
    pd->conn = evhttp_request_get_connection(req);
    if (pd->conn != NULL)
        evhttp_connection_set_closecb(pd->conn, on_close, pd);
    /* The call waits, unanswered and untimed, until the put is durable
     * (gg_portal_on_sent); a client that leaves meanwhile is forgotten. */
    if (gg_psend_submit(p->sender, job) != GG_OK) {
        gg_psend_job_free(job);
        forget(p, pd);
        refuse(p, req, ri, 503, "unavailable", "the portal is shutting down", 1);
        goto out;
    }
out:
    if (pt != NULL) {
        explicit_bzero(pt, strlen(pt));  /* holds the token and personal data */
        free(pt);
    }
    gg_buf_free(&env);
}

/* gg_portal_put - sender thread: put one sealed request (sender.h). */
gg_err gg_portal_put(void *ctx, const char *dest, const void *data, size_t len,
                     int64_t expiry_ms)
{
    return gg_transport_send(ctx, dest, data, len, expiry_ms);
}

/* gg_portal_on_sent - a request's put finished: count and record it and
 * start its call's timer, or answer the call 503 if the put failed. */
void gg_portal_on_sent(void *arg, gg_psend_job *job)
{
    gg_portal *p = arg;
    gg_pending *pd = gg_pending_find(p->pending, job->corr_id);
    struct timeval tv;
    gg_reqinfo ri;
    char txid[33];

    gg_hex(job->corr_id, 16, txid);
    if (job->result != GG_OK) {
        int full = job->result == GG_EFULL;

        if (full) {
            p->c.relay_full++;
            gg_warn("portal", "msg=\"request queue full\" txid=%s", txid);
        } else {
            p->c.relay_error++;
            gg_error("portal", "msg=\"cannot queue request\" txid=%s err=%s", txid,
                     gg_errname(job->result));
        }
        if (pd == NULL)
            return;  /* the caller left already */
        struct evhttp_request *req = pd->req;

        reqinfo_of(pd, &ri, txid);
        ri.txid = NULL;
        forget(p, pd);
        refuse(p, req, &ri, 503, "unavailable",
               full ? "the request queue is full; retry shortly"
                    : "the request could not be queued", full ? 1 : 0);
        return;
    }
    p->c.relayed++;
    gg_audit_note(p->audit, "sent", job->msg_id, job->txn, NULL);
    gg_portal_tx_begun(p, txid, job->txn, job->created_ms, job->expiry_ms);  /* tx.c */
    gg_debug("portal", "msg=\"request queued\" txid=%s txn=%s bytes=%zu", txid, job->txn,
             job->len);
    if (pd == NULL)
        return;  /* the caller left (or was answered at stop) while the put ran */
    tv.tv_sec = (time_t)(p->timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)((p->timeout_ms % 1000) * 1000);
    evtimer_add(pd->timer, &tv);
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

/* gg_portal_deliver - answer the waiting call of one opened reply, if
 * any, or count, log and audit its refusal. Frees its plaintext. */
void gg_portal_deliver(gg_portal *p, gg_reply_slot *r)
{
    const gg_env_hdr *hp = &r->h;
    struct evhttp_request *req;
    char *body = NULL;
    gg_pending *pd;
    gg_api_status st;
    gg_reqinfo ri;
    char detail[48];
    char txid[33];
    int status = 0;

    if (r->reject >= 0) {
        refuse_reply(p, r->m, (gg_portal_reject)r->reject, r->why);
        goto out;
    }
    gg_hex(hp->corr_id, 16, txid);
    pd = gg_pending_find(p->pending, hp->corr_id);
    if (pd == NULL) {
        gg_portal_tx_reply(p, txid, hp->txn, r->pt, r->ptlen);  /* tx.c: kept for its id */
        p->c.replies_no_caller++;
        gg_audit_note(p->audit, "reply", hp->msg_id, hp->txn, "no_caller");
        gg_info("portal", "msg=\"reply without a waiting call\" txid=%s", txid);
        goto out;
    }
    if (CRYPTO_memcmp(pd->req_hash, hp->req_hash, GG_ENV_HASH_LEN) != 0) {
        /* Not the reply to what this call sent: the call keeps waiting. */
        refuse_reply(p, r->m, GG_PREJ_REQUEST_HASH, "request_hash");
        goto out;
    }
    req = pd->req;
    reqinfo_of(pd, &ri, txid);
    forget(p, pd);
    p->c.replies_answered++;
    gg_api_parse_reply(r->pt, r->ptlen, &status, &body, &st);
    gg_portal_tx_done(p, txid, hp->txn, st.code != NULL ? st.http : status,
                      st.code != NULL ? NULL : body);
    snprintf(detail, sizeof detail, "answered status=%d", st.code != NULL ? st.http : status);
    gg_audit_note(p->audit, "reply", hp->msg_id, hp->txn, detail);
    if (st.code != NULL) {
        gg_warn("portal", "msg=\"malformed reply\" txid=%s", txid);
        gg_portal_respond_error(p, req, &ri, &st, txid, 0);
        goto out;
    }
    gg_portal_respond(p, req, &ri, status, body, 0);
out:
    if (r->pt != NULL) {
        explicit_bzero(r->pt, r->ptlen);
        free(r->pt);
        r->pt = NULL;
    }
    free(body);
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
