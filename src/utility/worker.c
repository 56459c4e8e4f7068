/* worker.c - the utility role's worker pool: request in, sealed reply out.
 *
 * Invariants:
 *  1. A request leaves the "requests" queue only by an ack that is in the
 *     same store transaction as its reply (gg_transport_reply), or by an
 *     ack alone when it can never be answered (unverifiable, not a request,
 *     wrong sender).
 *  2. At most `utility.workers` service calls run at once: one per thread.
 *  3. Nothing about a request's content is logged but its transaction
 *     code, status, duration and ids.
 *  4. A request's replay record (replay.h) is claimed before its service
 *     runs and committed by the store's next transaction, the ack of
 *     invariant 1 at the latest, whose fsync makes it durable.
 */
#include "utility/worker.h"

#include <event2/thread.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "audit/audit.h"
#include "envelope/envelope.h"
#include "envelope/replay.h"
#include "envelope/revoke.h"
#include "envelope/token.h"
#include "marketing/marketing.h"
#include "services/services.h"
#include "utility/admin.h"
#include "utility/gate.h"
#include "utility/intake.h"
#include "utility/prepjob.h"
#include "utility/publisher.h"

#define WAIT_MS 200                      /* how soon a worker notices stop */
#define REQ_JSON_MAX (1u << 20)          /* largest request payload parsed */

typedef struct gg_uworker {
    struct gg_utility *u;
    int idx;
    pthread_t th;
    int started;
    gg_mkt *mkt;
    gg_svc_ctx ctx;
    int64_t taken_ms;                    /* when the current request was leased */
    gg_gate_verdict verdict;             /* of the current request's gate call */
} gg_uworker;

struct gg_utility {
    const gg_config *cfg;
    char site[GG_ENV_NAME_MAX];
    char peer[GG_ENV_NAME_MAX];
    int64_t lease_ms;
    int64_t ttl_ms;
    gg_env_keys *keys;
    gg_replay *replay;                   /* freshness and replay (replay.h) */
    gg_revoke *revoked;                  /* revoked binding tokens (revoke.h) */
    gg_audit *audit;                     /* every message's fate (audit.h) */
    uint8_t token_key[GG_TOKEN_KEY_LEN];
    gg_transport *t;
    gg_store *st;
    int nworkers;
    gg_uworker *w;
    atomic_bool stop;
    gg_umetrics m;
    gg_uadmin *admin;
    gg_publisher *pub;                   /* outbox to the portal (publisher.h) */
    gg_gate *gate;                       /* governor and cache (gate.h) */
    gg_intake *intake;                   /* priority-first taking (intake.h) */
    gg_prepjob *prep;                    /* scheduled data preparation (prepjob.h) */
};

/* safe_txn - copy txn for logs: only [A-Za-z0-9._-], others become '?'. */
static void safe_txn(const char *txn, char *out, size_t outsz)
{
    size_t i;

    for (i = 0; i + 1 < outsz && txn[i] != '\0'; i++) {
        char c = txn[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

        out[i] = ok ? c : '?';
    }
    out[i] = '\0';
}

/* reject_reason - the metrics reason for an envelope open failure. */
static gg_um_reject reject_reason(gg_err e)
{
    switch (e) {
    case GG_EPROTO:
    case GG_EINVAL:
        return GG_UJ_MALFORMED;
    case GG_ECRYPTO:
        return GG_UJ_CRYPTO;
    case GG_EDENIED:
        return GG_UJ_NOT_FOR_US;
    case GG_ETOOBIG:
        return GG_UJ_TOO_BIG;
    default:
        return GG_UJ_OTHER;
    }
}

/* reject - count, log and ack a message that can never be answered. */
static void reject(gg_utility *u, const gg_msg *m, gg_um_reject why, gg_err e)
{
    gg_err ae;

    gg_env_hdr h;
    char detail[64];

    gg_umetrics_reject(&u->m, why);
    ae = gg_store_ack(u->st, m->id);
    snprintf(detail, sizeof detail, "reason=%s", gg_um_reject_name(why));
    gg_audit_note(u->audit, "rejected", gg_env_peek(m->data, m->len, &h) == GG_OK ? h.msg_id : NULL,
                  NULL, detail);   /* the id as claimed: for tracing, not trust */
    gg_warn("utility", "msg=\"request rejected\" reason=%s err=%s store_id=%lld len=%zu ack=%s",
            gg_um_reject_name(why), gg_errname(e), (long long)m->id, m->len, gg_errname(ae));
}

/* result_of - the metrics result for a reply status. */
static gg_um_result result_of(int status, int expired)
{
    if (expired)
        return GG_UR_EXPIRED;
    if (status >= 200 && status < 300)
        return GG_UR_OK;
    if (status >= 400 && status < 500)
        return GG_UR_CLIENT_ERROR;
    return GG_UR_SERVER_ERROR;
}

/* seal_reply - seal rep (as compact JSON) as the reply to req into out. */
static gg_err seal_reply(gg_utility *u, const gg_env_hdr *req, json_t *rep, gg_env_hdr *rh,
                         gg_buf *out)
{
    char *text = json_dumps(rep, JSON_COMPACT | JSON_REAL_PRECISION(12));
    gg_err e;

    if (text == NULL)
        return GG_ENOMEM;
    memset(rh, 0, sizeof *rh);
    rh->kind = GG_ENV_REPLY;
    gg_new_id(rh->msg_id);
    memcpy(rh->corr_id, req->msg_id, sizeof rh->corr_id);
    memcpy(rh->req_hash, req->req_hash, sizeof rh->req_hash);  /* set by handle */
    memcpy(rh->txn, req->txn, sizeof rh->txn);
    rh->txn[sizeof rh->txn - 1] = '\0';
    snprintf(rh->sender, sizeof rh->sender, "%s", u->site);
    memcpy(rh->receiver, req->sender, sizeof rh->receiver);
    rh->receiver[sizeof rh->receiver - 1] = '\0';
    rh->created_ms = gg_now_ms();
    rh->expiry_ms = rh->created_ms + u->ttl_ms;
    e = gg_env_seal(u->keys, rh, text, strlen(text), out);
    free(text);
    return e;
}

/* send_reply - seal rep and store it with the ack of m. A reply too big to
 * seal is replaced by a 500 error reply. *status gets the status sent. */
static gg_err send_reply(gg_utility *u, const gg_msg *m, const gg_env_hdr *req, json_t *rep,
                         int *status)
{
    gg_buf out = GG_BUF_INIT(GG_ENV_MAX);
    json_t *small = NULL;
    gg_env_hdr rh;
    int64_t t0 = gg_mono_us(), t1;
    gg_err e;

    e = seal_reply(u, req, rep, &rh, &out);
    if (e == GG_ETOOBIG) {
        gg_buf_reset(&out);
        small = gg_svc_error(500, "internal", "the reply was too large to send");
        if (small == NULL) {
            e = GG_ENOMEM;
            goto out;
        }
        *status = 500;
        e = seal_reply(u, req, small, &rh, &out);
    }
    if (e != GG_OK) {
        gg_error("utility", "msg=\"cannot seal reply\" err=%s store_id=%lld", gg_errname(e),
                 (long long)m->id);
        goto out;
    }
    t1 = gg_mono_us();
    gg_umetrics_phase(&u->m, GG_UP_SEAL, t1 - t0);
    e = gg_transport_reply(u->t, m->id, GG_Q_REPLIES, out.data, out.len, rh.expiry_ms);
    gg_umetrics_phase(&u->m, GG_UP_STORE, gg_mono_us() - t1);
    if (e != GG_OK)
        gg_error("utility", "msg=\"cannot store reply\" err=%s store_id=%lld", gg_errname(e),
                 (long long)m->id);
out:
    json_decref(small);
    gg_buf_free(&out);
    return e;
}

/* run_service - parse the payload and dispatch; always a reply or NULL on ENOMEM. */
static json_t *run_service(gg_uworker *w, const gg_env_hdr *hdr, const uint8_t *pt,
                           size_t ptlen, int64_t now)
{
    json_error_t jerr;
    json_t *req = NULL;
    json_t *rep = NULL;

    if (ptlen > REQ_JSON_MAX)
        return gg_svc_error(400, "invalid_parameter", "the request payload is too large");
    req = json_loadb((const char *)pt, ptlen, JSON_REJECT_DUPLICATES, &jerr);
    if (req == NULL || !json_is_object(req)) {
        json_decref(req);
        return gg_svc_error(400, "invalid_parameter", "the request payload is not a JSON object");
    }
    w->ctx.now_ms = now;
    gg_hex(hdr->msg_id, sizeof hdr->msg_id, w->ctx.txid);  /* inbox key, transaction id */
    /* governor and cache; stop waiting for a slot well before the lease ends
     * (a second before, or half way for leases under two seconds) */
    rep = gg_gate_call(w->u->gate, &w->ctx, hdr->txn, req, hdr->expiry_ms,
                       w->taken_ms + (w->u->lease_ms >= 2000 ? w->u->lease_ms - 1000
                                                            : w->u->lease_ms / 2),
                       &w->verdict);
    json_decref(req);
    return rep;
}

/* audit_replied - the audit record of an answered request. */
static void audit_replied(gg_utility *u, const uint8_t msg_id[16], const char *txn, int status,
                          const char *result)
{
    char detail[64];

    snprintf(detail, sizeof detail, "status=%d result=%s", status, result);
    gg_audit_note(u->audit, "replied", msg_id, txn, detail);
}

/* fresh - freshness and replay check of an opened request (replay.h). On
 * GG_OK: *dropped set when it was stale or replayed (counted, acked, no
 * reply: the genuine copy was answered); else *rep is NULL (go on) or an
 * error reply (future: clock skew; replay store full: fail closed).
 * GG_EIO: nothing decided. */
static gg_err fresh(gg_utility *u, const gg_msg *m, const gg_env_hdr *hdr, int64_t now,
                    json_t **rep, int *dropped)
{
    gg_replay_verdict v;
    gg_err e;

    *rep = NULL;
    *dropped = 0;
    e = gg_replay_check(u->replay, hdr->msg_id, hdr->created_ms, m->id, now, &v);
    if (e != GG_OK)
        return e;
    switch (v) {
    case GG_RV_FRESH:
    case GG_RV_REDELIVERY:
        return GG_OK;
    case GG_RV_STALE:
        reject(u, m, GG_UJ_STALE, GG_EEXPIRED);
        *dropped = 1;
        return GG_OK;
    case GG_RV_REPLAY:
        reject(u, m, GG_UJ_REPLAY, GG_EREPLAY);
        *dropped = 1;
        return GG_OK;
    case GG_RV_FUTURE:
        gg_umetrics_reject(&u->m, GG_UJ_FUTURE);
        gg_warn("utility", "msg=\"request from the future\" skew_ms=%lld store_id=%lld",
                (long long)(hdr->created_ms - now), (long long)m->id);
        *rep = gg_svc_error(502, "clock_skew",
                            "the request was created ahead of the utility's clock");
        break;
    case GG_RV_FULL:
        gg_umetrics_reject(&u->m, GG_UJ_REPLAY_FULL);
        gg_warn("utility", "msg=\"replay store full, request refused\" store_id=%lld",
                (long long)m->id);
        *rep = gg_svc_error(503, "unavailable", "too many recent requests; retry shortly");
        break;
    }
    return *rep != NULL ? GG_OK : GG_ENOMEM;
}

/* handle - take one leased request from receipt to reply (or reject). */
static void handle(gg_uworker *w, const gg_msg *m)
{
    gg_utility *u = w->u;
    int64_t t0 = gg_mono_us(), t1;
    char idhex[33];
    char txn[GG_ENV_TXN_MAX];
    gg_env_hdr hdr;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    json_t *rep = NULL;
    json_t *st;
    int64_t now;
    int expired = 0;
    int dropped = 0;
    int refused = 0;
    int status = 0;
    gg_um_result res;
    gg_err e;

    e = gg_env_open(u->keys, m->data, m->len, &hdr, &pt, &ptlen);
    t1 = gg_mono_us();
    gg_umetrics_phase(&u->m, GG_UP_OPEN, t1 - t0);
    if (e == GG_ENOMEM) {
        /* Transient: the message may well be good; try it again later. */
        gg_err be = gg_store_backout(u->st, m->id);

        gg_error("utility", "msg=\"out of memory opening request\" store_id=%lld backout=%s",
                 (long long)m->id, gg_errname(be));
        goto out;
    }
    if (e != GG_OK) {
        reject(u, m, reject_reason(e), e);
        goto out;
    }
    if (hdr.kind != GG_ENV_REQUEST) {
        reject(u, m, GG_UJ_WRONG_KIND, GG_EPROTO);
        goto out;
    }
    hdr.sender[sizeof hdr.sender - 1] = '\0';
    hdr.txn[sizeof hdr.txn - 1] = '\0';
    if (strcmp(hdr.sender, u->peer) != 0) {
        reject(u, m, GG_UJ_WRONG_SENDER, GG_EDENIED);
        goto out;
    }
    now = gg_now_ms();
    e = gg_env_hash(u->keys, m->data, m->len, hdr.req_hash);  /* the reply carries it */
    if (e == GG_OK)
        e = fresh(u, m, &hdr, now, &rep, &dropped);
    gg_umetrics_phase(&u->m, GG_UP_REPLAY, gg_mono_us() - t1);
    if (e != GG_OK) {
        /* The replay store failed: fail closed, try the message later. */
        gg_err be = gg_store_backout(u->st, m->id);

        gg_error("utility", "msg=\"replay check failed\" store_id=%lld err=%s backout=%s",
                 (long long)m->id, gg_errname(e), gg_errname(be));
        goto out;
    }
    if (dropped)
        goto out;
    refused = rep != NULL;  /* refused before the service, answered with the reason */
    if (!refused && hdr.expiry_ms <= now) {
        expired = 1;
        rep = gg_svc_error(504, "expired", "the request expired before it could be processed");
    } else if (!refused) {
        rep = run_service(w, &hdr, pt, ptlen, now);
        expired = w->verdict == GG_GATE_EXPIRED;
    }
    safe_txn(hdr.txn, txn, sizeof txn);
    gg_hex(hdr.msg_id, sizeof hdr.msg_id, idhex);
    if (rep == NULL && w->verdict == GG_GATE_BACKOUT) {
        /* no governor slot before the lease ends (or stopping): not run,
         * back on the queue for the next free worker */
        gg_err be = gg_store_backout(u->st, m->id);

        gg_info("utility", "msg=\"request waits for the backend; backed out\" txn=%s "
                "msg_id=%s backout=%s", txn, idhex, gg_errname(be));
        goto out;
    }
    if (rep == NULL) {
        e = GG_ENOMEM;
    } else {
        st = json_object_get(rep, "status");
        status = json_is_integer(st) ? (int)json_integer_value(st) : 500;
        e = send_reply(u, m, &hdr, rep, &status);
    }
    if (e != GG_OK) {
        gg_err be = gg_store_backout(u->st, m->id);

        gg_umetrics_request(&u->m, txn, GG_UR_FAILED);
        gg_audit_note(u->audit, "backed_out", hdr.msg_id, txn, gg_errname(e));
        gg_error("utility", "msg=\"request backed out\" txn=%s msg_id=%s store_id=%lld "
                 "err=%s backout=%s", txn, idhex, (long long)m->id, gg_errname(e),
                 gg_errname(be));
        goto out;
    }
    res = result_of(status, expired);
    if (!refused)           /* a refusal is counted once, in rejects_total */
        gg_umetrics_request(&u->m, txn, res);
    gg_umetrics_duration(&u->m, txn, gg_mono_us() - t0);
    gg_info("utility", "msg=\"request\" txn=%s status=%d result=%s duration_us=%lld msg_id=%s",
            txn, status, gg_um_result_name(res), (long long)(gg_mono_us() - t0), idhex);
    audit_replied(u, hdr.msg_id, txn, status, refused ? "refused" : gg_um_result_name(res));
out:
    json_decref(rep);
    if (pt != NULL) {
        OPENSSL_cleanse(pt, ptlen);
        free(pt);
    }
}

/* pause_ms - sleep a little after a store error, so a broken store does
 * not make a worker spin. */
static void pause_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* worker_main - lease requests until asked to stop. */
static void *worker_main(void *arg)
{
    gg_uworker *w = arg;
    gg_utility *u = w->u;
    gg_msg *m = NULL;
    gg_err e;

    atomic_fetch_add(&u->m.workers, 1);
    while (!atomic_load(&u->stop)) {
        /* priority queue first; sleeps until a commit onto either queue */
        e = gg_intake_take(u->intake, u->lease_ms, WAIT_MS, &m);
        if (e == GG_EEMPTY)
            continue;
        if (e != GG_OK) {
            gg_error("utility", "msg=\"cannot take request\" worker=%d err=%s", w->idx,
                     gg_errname(e));
            pause_ms(WAIT_MS);
            continue;
        }
        w->taken_ms = gg_now_ms();
        w->verdict = GG_GATE_RAN;
        handle(w, m);
        gg_msg_free(m);
        m = NULL;
    }
    atomic_fetch_sub(&u->m.workers, 1);
    return NULL;
}

/* render - the admin pages. */
static int render(void *arg, const char *path, FILE *f)
{
    gg_utility *u = arg;

    if (strcmp(path, "/healthz") == 0) {
        fputs("ok\n", f);
        return 200;
    }
    gg_utility_write_metrics(u, f);
    return 200;
}

/* gg_utility_write_metrics - counters, queue depths and channel state. */
void gg_utility_write_metrics(gg_utility *u, FILE *f)
{
    static const char *const queues[] = { GG_Q_REQUESTS, GG_Q_REQUESTS_PRIO, GG_XMIT_QUEUE };
    gg_buf sb = GG_BUF_INIT(1u << 20);
    char *text;

    gg_umetrics_write(&u->m, f);
    gg_audit_write_metrics(u->audit, f);
    if (u->gate != NULL)
        gg_gate_write_metrics(u->gate, f);
    /* The store's own families: queue gauges, counters, commit latency. */
    if (gg_store_metrics(u->st, queues, sizeof queues / sizeof queues[0], &sb) == GG_OK)
        fwrite(sb.data, 1, sb.len, f);
    gg_buf_free(&sb);
    text = gg_channel_metrics_text(gg_transport_channel(u->t));
    if (text != NULL)
        fputs(text, f);
    free(text);
}

/* load_keys - envelope keys and the token key from [security]. */
static gg_err load_keys(gg_utility *u)
{
    const gg_config *cfg = u->cfg;
    gg_env_keys_cfg kc;
    char why[256] = "";
    const char *tk = gg_config_str(cfg, "security.token_key");
    gg_err e;

    memset(&kc, 0, sizeof kc);
    kc.suite = gg_config_str(cfg, "security.suite");
    kc.self_name = u->site;
    kc.sign_key = gg_config_str(cfg, "security.sign_key");
    kc.kem_key = gg_config_str(cfg, "security.kem_key");
    kc.peer_sign_pub = gg_config_str(cfg, "security.peer_sign_pub");
    kc.peer_kem_pub = gg_config_str(cfg, "security.peer_kem_pub");
    e = gg_env_keys_load(&kc, &u->keys, why, sizeof why);
    if (e == GG_OK)
        e = gg_env_keys_rotation_config(u->keys, cfg, why, sizeof why);
    if (e != GG_OK) {
        gg_error("utility", "msg=\"cannot load message keys\" err=%s reason=\"%s\"",
                 gg_errname(e), why);
        return GG_ECONFIG;
    }
    if (tk == NULL) {
        gg_error("utility", "msg=\"security.token_key is not set\"");
        return GG_ECONFIG;
    }
    e = gg_token_key_load(tk, u->token_key);
    if (e != GG_OK) {
        gg_error("utility", "msg=\"cannot load token key\" path=%s err=%s", tk, gg_errname(e));
        return GG_ECONFIG;
    }
    return GG_OK;
}

/* open_workers - allocate workers, each with its marketing connection. */
static gg_err open_workers(gg_utility *u)
{
    const char *db = gg_config_str(u->cfg, "utility.marketing_db");
    const char *pg = gg_config_str(u->cfg, "utility.marketing_pg");
    const char *queries = gg_config_str(u->cfg, "utility.marketing_queries");
    int64_t ttl_days = gg_config_int(u->cfg, "security.token_ttl_days");
    int i;
    gg_err e;

    if (pg != NULL && pg[0] == '\0')
        pg = NULL;
    if (db == NULL && pg == NULL) {
        gg_error("utility", "msg=\"utility.marketing_db or utility.marketing_pg must be set\"");
        return GG_ECONFIG;
    }
    u->w = calloc((size_t)u->nworkers, sizeof *u->w);
    if (u->w == NULL)
        return GG_ENOMEM;
    for (i = 0; i < u->nworkers; i++) {
        gg_uworker *w = &u->w[i];

        w->u = u;
        w->idx = i;
        if (pg != NULL)
            e = gg_mkt_open_pg(pg, queries, &w->mkt);
        else
            e = gg_mkt_open(db, &w->mkt);
        if (e != GG_OK) {
            gg_error("utility", "msg=\"cannot open marketing database\" backend=%s err=%s",
                     pg != NULL ? "pg" : "sqlite", gg_errname(e));
            return e == GG_ENOMEM ? e : GG_ECONFIG;
        }
        if (i == 0 && strcmp(gg_mkt_backend(w->mkt), "sqlite") == 0) {
            e = gg_mkt_ledger_init(w->mkt);  /* inbox and outbox tables */
            if (e != GG_OK)
                return e;
        }
        w->ctx.mkt = w->mkt;
        w->ctx.token_key = u->token_key;
        w->ctx.revoked = u->revoked;
        w->ctx.token_ttl_ms = ttl_days * 86400000LL;
    }
    return GG_OK;
}

/* start_workers - start the threads. */
static gg_err start_workers(gg_utility *u)
{
    int i;

    for (i = 0; i < u->nworkers; i++) {
        if (pthread_create(&u->w[i].th, NULL, worker_main, &u->w[i]) != 0) {
            gg_error("utility", "msg=\"cannot start worker\" worker=%d", i);
            return GG_ENOMEM;
        }
        u->w[i].started = 1;
    }
    return GG_OK;
}

/* gg_utility_start - start the role (see worker.h). */
gg_err gg_utility_start(const gg_config *cfg, gg_utility **out)
{
    gg_utility *u = NULL;
    const char *site = gg_config_str(cfg, "site.name");
    const char *peer = gg_config_str(cfg, "site.peer");
    const char *admin = gg_config_str(cfg, "admin.listen");
    gg_err e;

    evthread_use_pthreads();
    if (peer == NULL || peer[0] == '\0')
        peer = gg_config_str(cfg, "channel.peer_name");
    if (site == NULL || peer == NULL || strlen(site) >= GG_ENV_NAME_MAX ||
        strlen(peer) >= GG_ENV_NAME_MAX || peer[0] == '\0') {
        gg_error("utility", "msg=\"site.name and site.peer must be set (under %d bytes)\"",
                 GG_ENV_NAME_MAX);
        return GG_ECONFIG;
    }
    u = calloc(1, sizeof *u);
    if (u == NULL)
        return GG_ENOMEM;
    u->cfg = cfg;
    atomic_init(&u->stop, false);
    gg_umetrics_init(&u->m);
    snprintf(u->site, sizeof u->site, "%s", site);
    snprintf(u->peer, sizeof u->peer, "%s", peer);
    u->lease_ms = gg_config_int(cfg, "store.lease_ms");
    u->ttl_ms = gg_config_int(cfg, "security.message_ttl_ms");
    u->nworkers = (int)gg_config_int(cfg, "utility.workers");
    if (u->nworkers < 1)
        u->nworkers = 1;
    e = load_keys(u);
    if (e != GG_OK)
        goto out;
    e = gg_revoke_open_config(cfg, &u->revoked);
    if (e == GG_OK)
        e = gg_audit_open_config(cfg, &u->audit);
    if (e != GG_OK) {
        e = e == GG_ENOMEM ? e : GG_ECONFIG;
        goto out;
    }
    e = open_workers(u);
    if (e != GG_OK)
        goto out;
    e = gg_transport_open(cfg, &u->t);
    if (e != GG_OK)
        goto out;
    u->st = gg_transport_store(u->t);
    e = gg_replay_open_config(cfg, u->st, &u->replay);  /* its tables are in the store */
    if (e != GG_OK) {
        e = e == GG_ENOMEM ? e : GG_ECONFIG;
        goto out;
    }
    e = gg_gate_new(cfg, u->nworkers, &u->m, &u->gate);
    if (e == GG_OK)
        e = gg_intake_new(u->st, &u->intake);
    if (e == GG_OK)
        e = gg_prepjob_start(cfg, &u->prep);
    if (e != GG_OK)
        goto out;
    if (admin != NULL && admin[0] != '\0') {
        e = gg_uadmin_start(admin, render, u, &u->admin);
        if (e != GG_OK)
            goto out;
    }
    e = gg_publisher_start(cfg, u->t, u->keys, u->site, u->peer, u->gate, &u->pub);
    if (e != GG_OK)
        goto out;
    e = start_workers(u);
    if (e != GG_OK)
        goto out;
    gg_info("utility", "msg=\"started\" site=%s peer=%s workers=%d", u->site, u->peer,
            u->nworkers);
    *out = u;
    u = NULL;
out:
    gg_utility_stop(u);
    return e;
}

/* gg_utility_stop - stop and free everything, in reverse order of start. */
void gg_utility_stop(gg_utility *u)
{
    int i;

    if (u == NULL)
        return;
    atomic_store(&u->stop, true);
    gg_gate_close(u->gate);
    gg_prepjob_stop(u->prep);
    for (i = 0; u->w != NULL && i < u->nworkers; i++) {
        if (u->w[i].started)
            pthread_join(u->w[i].th, NULL);
    }
    gg_uadmin_stop(u->admin);
    gg_publisher_stop(u->pub);
    gg_replay_close(u->replay);  /* before its store */
    gg_transport_close(u->t);
    gg_intake_free(u->intake);
    gg_gate_free(u->gate);
    for (i = 0; u->w != NULL && i < u->nworkers; i++) {
        if (u->w[i].mkt != NULL)
            gg_mkt_close(u->w[i].mkt);
    }
    free(u->w);
    if (u->keys != NULL)
        gg_env_keys_free(u->keys);
    gg_revoke_close(u->revoked);
    gg_audit_close(u->audit);
    OPENSSL_cleanse(u->token_key, sizeof u->token_key);
    gg_umetrics_destroy(&u->m);
    gg_info("utility", "msg=\"stopped\"");
    free(u);
}

/* gg_utility_transport - the role's transport (borrowed). */
gg_transport *gg_utility_transport(gg_utility *u)
{
    return u->t;
}

/* gg_utility_metrics - the role's counters (borrowed). */
gg_umetrics *gg_utility_metrics(gg_utility *u)
{
    return &u->m;
}

/* gg_utility_admin_port - port of the admin listener, -1 if none. */
int gg_utility_admin_port(const gg_utility *u)
{
    return u->admin != NULL ? gg_uadmin_port(u->admin) : -1;
}
