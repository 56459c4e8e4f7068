/* relay.c - requests out to the utility, replies back to the waiting calls.
 *
 * A validated request gets an envelope header (kind REQUEST, corr_id =
 * msg_id) and its payload text, its HTTP call is parked in the pending
 * table under the correlation id, and both are handed to the sender
 * threads (sender.h), which seal the envelope (gg_portal_seal, or with the
 * other requests waiting under one signature: gg_portal_seal_many) and put
 * it durably on the transmission queue for the utility's "requests" queue
 * (gg_portal_put, or in one commit with them: gg_portal_put_many) while the
 * loop serves other calls.
 * The loop never signs. When the put is durable (gg_portal_on_sent) the
 * request is counted and recorded as relayed and the call's timer of
 * http.request_timeout_ms started; a seal that failed is answered 500, a
 * put that failed 503. Exactly one of three things then answers and forgets
 * the call: the matching reply (status and body from the utility), the
 * timer (504 timeout with the transaction id), or the stop (503). If the
 * client hangs up first, the connection's close callback forgets the call
 * and a later reply is just recorded. Replies come from the drain thread
 * (drain.c), opened and checked; gg_portal_deliver answers or refuses each
 * one. A reply is refused (counted in gridgate_rejects_total{reason}, its
 * call left to time out) unless it opens, comes from the peer, is fresh and
 * not a replay (replay.h), and carries the hash of the request its call
 * sent. The drain thread has parsed the payload too, so the loop only
 * sends the body it got.
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

/* shed - answer 503 if more is waiting than the utility answers within
 * the budget (requests for the "requests" queue only); 1 if answered. */
static int shed(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri, const char *txn)
{
    /* outstanding: relayed and not yet answered, whether or not the caller
     * still waits (a call that timed out is still queued at the utility) */
    uint64_t back = p->c.replies_answered + p->c.replies_no_caller + p->c.replies_rejected;
    size_t outstanding = p->c.relayed > back ? (size_t)(p->c.relayed - back) : 0;
    int retry_after = 0;

    outstanding += gg_psend_inflight(p->sender);  /* being sealed or put: waiting too */
    if (strcmp(gg_transport_request_queue(txn), GG_Q_REQUESTS) != 0 ||
        !gg_shed_check(p->shed, outstanding, gg_mono_us(), &retry_after))
        return 0;
    refuse(p, req, ri, 503, "overloaded",
           "the utility is answering slower than requests arrive; retry after the "
           "indicated time", retry_after);
    return 1;
}

/* job_new - a job for a request of txn carrying payload's text, or NULL
 * (out of memory). The header gets a new id; seal fills in the rest. */
static gg_psend_job *job_new(gg_portal *p, const char *txn, json_t *payload)
{
    gg_psend_job *job = calloc(1, sizeof *job);
    gg_env_hdr *h;

    if (job == NULL)
        return NULL;
    h = &job->hdr;
    h->kind = GG_ENV_REQUEST;
    gg_new_id(h->msg_id);
    memcpy(h->corr_id, h->msg_id, sizeof h->corr_id);
    snprintf(h->txn, sizeof h->txn, "%s", txn);
    snprintf(h->sender, sizeof h->sender, "%s", p->site);
    snprintf(h->receiver, sizeof h->receiver, "%s", p->peer);
    h->created_ms = gg_now_ms();
    h->expiry_ms = h->created_ms + p->ttl_ms;
    snprintf(job->dest, sizeof job->dest, "%s", gg_transport_request_queue(txn));
    job->pt = json_dumps(payload, JSON_COMPACT);
    if (job->pt == NULL) {
        free(job);
        return NULL;
    }
    job->ptlen = strlen(job->pt);
    return job;
}

/* gg_portal_relay - park one request and hand it to the sender threads,
 * which seal and queue it. */
void gg_portal_relay(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                     const char *txn, json_t *payload)
{
    gg_psend_job *job;
    gg_pending *pd = NULL;
    gg_err e;

    if (shed(p, req, ri, txn))
        return;
    job = job_new(p, txn, payload);
    if (job == NULL) {
        refuse(p, req, ri, 500, "internal", "out of memory", 0);
        return;
    }
    e = gg_pending_add(p->pending, job->hdr.corr_id, &pd);
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
    if (pd->timer == NULL) {
        forget(p, pd);
        refuse(p, req, ri, 500, "internal", "out of memory", 0);
        goto out;
    }
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
        forget(p, pd);
        refuse(p, req, ri, 503, "unavailable", "the portal is shutting down", 1);
        goto out;
    }
    pd->job = job;  /* the pool's now; valid here until gg_portal_on_sent */
    job = NULL;
out:
    gg_psend_job_free(job);
}

/* gg_portal_seal - sender thread: seal one request and hash the envelope
 * (sender.h prep); the payload text is wiped as soon as it is sealed. */
gg_err gg_portal_seal(void *ctx, gg_psend_job *job)
{
    gg_portal *p = ctx;
    gg_buf env = GG_BUF_INIT(GG_ENV_MAX);
    gg_err e;

    e = gg_env_seal(p->keys, &job->hdr, job->pt, job->ptlen, &env);
    if (e == GG_OK)
        e = gg_env_hash(p->keys, env.data, env.len, job->req_hash);
    explicit_bzero(job->pt, job->ptlen);  /* holds the token and personal data */
    free(job->pt);
    job->pt = NULL;
    if (e != GG_OK) {
        gg_buf_free(&env);
        return e;
    }
    job->data = env.data;  /* the job takes the envelope */
    job->len = env.len;
    return GG_OK;
}

/* gg_portal_seal_many - sender thread: seal n requests as one tree (one
 * signature) and hash them; on any error no job is changed (sender.h). */
gg_err gg_portal_seal_many(void *ctx, gg_psend_job **jobs, size_t n)
{
    gg_portal *p = ctx;
    gg_env_hdr hdrs[GG_PSEND_BATCH_MAX];
    const void *pts[GG_PSEND_BATCH_MAX];
    size_t lens[GG_PSEND_BATCH_MAX];
    gg_buf envs[GG_PSEND_BATCH_MAX];
    uint8_t hashes[GG_PSEND_BATCH_MAX][GG_ENV_HASH_LEN];
    size_t i;
    gg_err e = GG_OK;

    if (n < 2 || n > GG_PSEND_BATCH_MAX || n > GG_ENV_BATCH_MAX)
        return GG_EINVAL;
    for (i = 0; i < n; i++) {
        hdrs[i] = jobs[i]->hdr;
        pts[i] = jobs[i]->pt;
        lens[i] = jobs[i]->ptlen;
        envs[i] = (gg_buf)GG_BUF_INIT(GG_ENV_MAX);
    }
    e = gg_env_seal_batch(p->keys, n, hdrs, pts, lens, NULL, envs);
    for (i = 0; e == GG_OK && i < n; i++)
        e = gg_env_hash(p->keys, envs[i].data, envs[i].len, hashes[i]);
    if (e != GG_OK) {
        for (i = 0; i < n; i++)
            gg_buf_free(&envs[i]);
        return e;
    }
    for (i = 0; i < n; i++) {
        explicit_bzero(jobs[i]->pt, jobs[i]->ptlen);  /* holds the token and personal data */
        free(jobs[i]->pt);
        jobs[i]->pt = NULL;
        memcpy(jobs[i]->req_hash, hashes[i], GG_ENV_HASH_LEN);
        jobs[i]->data = envs[i].data;  /* the job takes the envelope */
        jobs[i]->len = envs[i].len;
    }
    return GG_OK;
}

/* gg_portal_put_many - sender thread: put n sealed requests in one commit,
 * all or none (sender.h, gg_transport_send_many); a destination
 * gg_transport_send would refuse fails the batch, so that request alone
 * gets the refusal. */
gg_err gg_portal_put_many(void *ctx, gg_psend_job **jobs, size_t n)
{
    gg_portal *p = ctx;
    gg_transport_msg msgs[GG_PSEND_BATCH_MAX];

    if (n > GG_PSEND_BATCH_MAX)
        return GG_EINVAL;
    for (size_t i = 0; i < n; i++)
        msgs[i] = (gg_transport_msg){ jobs[i]->dest, jobs[i]->data, jobs[i]->len,
                                      jobs[i]->hdr.expiry_ms };
    return gg_transport_send_many(p->t, msgs, n);
}

/* gg_portal_put - sender thread: put one sealed request (sender.h). */
gg_err gg_portal_put(void *ctx, const char *dest, const void *data, size_t len,
                     int64_t expiry_ms)
{
    gg_portal *p = ctx;

    return gg_transport_send(p->t, dest, data, len, expiry_ms);
}

/* unsent - answer the call of a request that could not be sealed or put,
 * if it still waits: 500 for a seal, 503 for a put. */
static void unsent(gg_portal *p, gg_psend_job *job, const char *txid)
{
    gg_pending *pd = gg_pending_find(p->pending, job->hdr.corr_id);
    int full = job->prepared && job->result == GG_EFULL;
    struct evhttp_request *req;
    gg_reqinfo ri;
    char tx[33];

    if (!job->prepared) {
        p->c.relay_error++;
        gg_error("portal", "msg=\"cannot seal request\" txid=%s err=%s", txid,
                 gg_errname(job->result));
    } else if (full) {
        p->c.relay_full++;
        gg_warn("portal", "msg=\"request queue full\" txid=%s", txid);
    } else {
        p->c.relay_error++;
        gg_error("portal", "msg=\"cannot queue request\" txid=%s err=%s", txid,
                 gg_errname(job->result));
    }
    if (pd == NULL)
        return;  /* the caller left already */
    req = pd->req;
    reqinfo_of(pd, &ri, tx);
    ri.txid = NULL;
    forget(p, pd);
    if (!job->prepared)
        refuse(p, req, &ri, 500, "internal", "the request could not be sealed", 0);
    else
        refuse(p, req, &ri, 503, "unavailable",
               full ? "the request queue is full; retry shortly"
                    : "the request could not be queued", full ? 1 : 0);
}

/* gg_portal_on_sent - a request's seal and put finished: count and record
 * it and start its call's timer, or answer the call if either failed. */
void gg_portal_on_sent(void *arg, gg_psend_job *job)
{
    gg_portal *p = arg;
    gg_pending *pd;
    struct timeval tv;
    char txid[33];

    gg_hex(job->hdr.corr_id, 16, txid);
    if (job->result != GG_OK) {
        unsent(p, job, txid);
        return;
    }
    p->c.relayed++;
    gg_audit_note(p->audit, "sent", job->hdr.msg_id, job->hdr.txn, NULL);
    gg_portal_tx_begun(p, txid, job->hdr.txn, job->hdr.created_ms,
                       job->hdr.expiry_ms);  /* tx.c */
    gg_debug("portal", "msg=\"request queued\" txid=%s txn=%s bytes=%zu", txid, job->hdr.txn,
             job->len);
    pd = gg_pending_find(p->pending, job->hdr.corr_id);
    if (pd == NULL)
        return;  /* the caller left (or was answered at stop) while the put ran */
    memcpy(pd->req_hash, job->req_hash, sizeof pd->req_hash);
    pd->job = NULL;  /* freed when this returns */
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

/* sent_hash - 1 with pd->req_hash the hash of the envelope its call sent,
 * 0 while that is not sealed yet (so no reply to it can exist). A reply
 * may overtake the report of its request's put (gg_portal_on_sent), never
 * the seal: the put that let it be made came after the seal. */
static int sent_hash(gg_portal *p, gg_pending *pd)
{
    if (pd->job == NULL)
        return 1;  /* reported: gg_portal_on_sent copied it */
    return gg_psend_prepared(p->sender, pd->job, pd->req_hash);
}

/* gg_portal_deliver - answer the waiting call of one opened reply, if
 * any, or count, log and audit its refusal. Frees its plaintext and body. */
void gg_portal_deliver(gg_portal *p, gg_reply_slot *r)
{
    const gg_env_hdr *hp = &r->h;
    const gg_api_status *st = &r->pst;
    int status = st->code != NULL ? st->http : r->status;
    struct evhttp_request *req;
    gg_pending *pd;
    gg_reqinfo ri;
    char detail[48];
    char txid[33];

    if (r->reject >= 0) {
        refuse_reply(p, r->m, (gg_portal_reject)r->reject, r->why);
        goto out;
    }
    gg_hex(hp->corr_id, 16, txid);
    pd = gg_pending_find(p->pending, hp->corr_id);
    if (pd == NULL) {
        gg_portal_tx_done(p, txid, hp->txn, status, st->code != NULL ? NULL : r->body);
        p->c.replies_no_caller++;
        gg_audit_note(p->audit, "reply", hp->msg_id, hp->txn, "no_caller");
        gg_info("portal", "msg=\"reply without a waiting call\" txid=%s", txid);
        goto out;
    }
    if (!sent_hash(p, pd) || CRYPTO_memcmp(pd->req_hash, hp->req_hash, GG_ENV_HASH_LEN) != 0) {
        /* Not the reply to what this call sent: the call keeps waiting. */
        refuse_reply(p, r->m, GG_PREJ_REQUEST_HASH, "request_hash");
        goto out;
    }
    req = pd->req;
    reqinfo_of(pd, &ri, txid);
    forget(p, pd);
    p->c.replies_answered++;
    gg_portal_tx_done(p, txid, hp->txn, status, st->code != NULL ? NULL : r->body);
    snprintf(detail, sizeof detail, "answered status=%d", status);
    gg_audit_note(p->audit, "reply", hp->msg_id, hp->txn, detail);
    if (st->code != NULL) {
        gg_warn("portal", "msg=\"malformed reply\" txid=%s", txid);
        gg_portal_respond_error(p, req, &ri, st, txid, 0);
        goto out;
    }
    gg_portal_respond(p, req, &ri, status, r->body, 0);
out:
    gg_portal_slot_clear(r);
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
