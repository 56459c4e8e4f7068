/* portal_int.h - what the files of the portal role share (not a public API).
 *
 * One gg_portal per gg_portal_run. Everything in it is used only by the
 * event-loop thread, except ev_replies, which the store's watcher activates
 * from the committing thread (event_active is thread-safe once
 * evthread_use_pthreads has run), and what the sender threads (sender.h)
 * and the drain thread (drain.c) use: t, keys, replay, peer (thread-safe
 * or immutable). Files: portal.c (life cycle, routing, responses), relay.c
 * (requests out, calls answered), sender.c (request seals and puts), drain.c
 * (replies in), web.c (static page, admin listener, metrics).
 */
#ifndef GG_PORTAL_PORTAL_INT_H
#define GG_PORTAL_PORTAL_INT_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdint.h>

#include "core/config.h"
#include "envelope/envelope.h"
#include "envelope/replay.h"
#include "portal/api.h"
#include "portal/pending.h"
#include "transport/transport.h"

#define GG_PORTAL_MAX_PENDING 10000     /* waiting calls; 503 above */
#define GG_PORTAL_DRAIN_BATCH 256       /* replies per turn of the loop */
#define GG_PORTAL_STATUS_MAX 600
#define GG_PORTAL_SENDERS 4             /* threads sealing and putting requests (sender.h) */
#define GG_PORTAL_SEND_BATCH 64         /* requests one of them seals and puts at once */

/* Why a reply was refused (gridgate_rejects_total{reason}), relay.c. */
typedef enum gg_portal_reject {
    GG_PREJ_MALFORMED = 0, GG_PREJ_CRYPTO, GG_PREJ_NOT_FOR_US, GG_PREJ_TOO_BIG,
    GG_PREJ_WRONG_KIND, GG_PREJ_WRONG_SENDER, GG_PREJ_STALE, GG_PREJ_FUTURE, GG_PREJ_REPLAY,
    GG_PREJ_REPLAY_FULL, GG_PREJ_REQUEST_HASH, GG_PREJ_OTHER, GG_PREJ_COUNT
} gg_portal_reject;

typedef struct gg_portal_counters {
    uint64_t http[GG_PORTAL_STATUS_MAX];  /* answers by status (public listener) */
    uint64_t relayed;                     /* requests queued for the utility */
    uint64_t relay_full;                  /* refused: queue full (503) */
    uint64_t relay_error;                 /* refused: seal or store error (5xx) */
    uint64_t timeouts;                    /* answered 504 */
    uint64_t replies_answered;            /* replies matched to a waiting call */
    uint64_t replies_no_caller;           /* replies whose call was gone */
    uint64_t replies_rejected;            /* replies that failed to open or parse */
    uint64_t rejects[GG_PREJ_COUNT];      /* replies refused, by reason */
    uint64_t clients_gone;                /* callers that hung up while waiting */
} gg_portal_counters;

/* Per-request facts kept for the log line. */
typedef struct gg_reqinfo {
    int64_t start_us;
    char method[8];
    char log_path[96];
    const char *txid;                     /* transaction id, or NULL */
} gg_reqinfo;

typedef struct gg_portal {
    const gg_config *cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp *admin;
    struct evhttp_bound_socket *http_sock;
    struct evhttp_bound_socket *admin_sock;
    struct event *ev_int;
    struct event *ev_term;
    struct event *ev_hup;                 /* SIGHUP: reload channel certificates */
    struct event *ev_replies;             /* activated by the drain thread: a batch is ready */
    struct event *ev_exit;
    gg_transport *t;
    gg_env_keys *keys;
    struct gg_replay *replay;             /* freshness and replay of replies */
    struct gg_audit *audit;               /* every message's fate (audit/audit.h) */
    gg_pending_table *pending;
    int web_fd;                           /* directory fd of http.web_root, or -1 */
    const char *site;
    const char *peer;
    int64_t timeout_ms;
    int64_t ttl_ms;
    int64_t lease_ms;
    size_t max_body;
    int stopping;
    gg_portal_counters c;
    struct gg_txlog *txlog;               /* transaction outcomes (txlog.h) */
    struct event *ev_txprune;             /* hourly pruning of txlog */
    int64_t tx_retention_ms;
    struct gg_push *push;                 /* webhook delivery of events (push.h) */
    struct gg_shed *shed;                 /* load shedding (shed.h) */
    struct gg_psend *sender;              /* request puts off the loop (sender.h) */
    struct gg_pdrain *drain;              /* replies in, off the loop (drain.c) */
    struct event *ev_txflush;             /* commits the transaction log's writes */
    struct gg_offload *offload;           /* store reads off the loop (offload.h) */
} gg_portal;

/* One reply of a drained batch, opened, checked and parsed off the loop
 * (drain.c). */
typedef struct gg_reply_slot {
    const gg_msg *m;
    gg_env_hdr h;
    uint8_t *pt;              /* plaintext (malloc'd) when opened */
    size_t ptlen;
    int reject;               /* a gg_portal_reject, or -1: deliver it */
    const char *why;          /* the reject's log name */
    int status;               /* when delivered: gg_api_parse_reply of pt, */
    char *body;               /* its body (malloc'd) */
    gg_api_status pst;        /* and its verdict (pst.code NULL: well formed) */
} gg_reply_slot;

/* portal.c */
/* gg_portal_respond - send a JSON answer (body may be NULL for none), log
 * the request line, count it. retry_after > 0 adds Retry-After. */
void gg_portal_respond(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                       int status, const char *body, int retry_after);
/* gg_portal_respond_error - the error body for st (code, message). */
void gg_portal_respond_error(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                             const gg_api_status *st, const char *txid, int retry_after);
/* gg_portal_log_request - the one log line of an answered request. */
void gg_portal_log_request(const gg_reqinfo *ri, int status);
/* gg_portal_channel_state - the channel's state name. */
const char *gg_portal_channel_state(gg_portal *p);

/* relay.c */
/* gg_portal_relay - seal payload as a request of txn, queue it for the
 * utility and park req until the reply or the timeout. Answers req itself
 * on any failure. Does not take payload. */
void gg_portal_relay(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                     const char *txn, json_t *payload);
struct gg_psend_job;
/* gg_portal_seal - sender thread: seal a request and hash it (sender.h
 * prep; ctx: the portal, of which it uses keys only). */
gg_err gg_portal_seal(void *ctx, struct gg_psend_job *job);
/* gg_portal_put - sender thread: put a sealed request (ctx: the portal, of
 * which it uses t only). */
gg_err gg_portal_put(void *ctx, const char *dest, const void *data, size_t len,
                     int64_t expiry_ms);
/* gg_portal_seal_many - sender thread: seal n requests with one signature
 * (sender.h prep_many). */
gg_err gg_portal_seal_many(void *ctx, struct gg_psend_job **jobs, size_t n);
/* gg_portal_put_many - sender thread: put n sealed requests in one commit
 * (sender.h put_many; ctx: the portal, of which it uses t only). */
gg_err gg_portal_put_many(void *ctx, struct gg_psend_job **jobs, size_t n);
/* gg_portal_on_sent - loop: a request's seal and put finished (sender.h done). */
void gg_portal_on_sent(void *arg, struct gg_psend_job *job);
/* gg_portal_write_rejects - gridgate_rejects_total{reason} as Prometheus text. */
void gg_portal_write_rejects(gg_portal *p, struct evbuffer *b);
/* gg_portal_deliver - answer the call of one opened reply, or refuse it;
 * clears the slot (gg_portal_slot_clear). */
void gg_portal_deliver(gg_portal *p, gg_reply_slot *r);
/* gg_portal_fail_all - answer every waiting call 503 (at stop). */
void gg_portal_fail_all(gg_portal *p);

/* drain.c - replies in, off the loop */
/* gg_portal_slot_clear - wipe and free a slot's plaintext and body. */
void gg_portal_slot_clear(gg_reply_slot *r);
/* gg_portal_drain_start - start the drain thread (needs t and ev_replies). */
gg_err gg_portal_drain_start(gg_portal *p);
/* gg_portal_drain_stop - stop and free it; NULL drain is fine. Unwatch first. */
void gg_portal_drain_stop(gg_portal *p);
/* gg_portal_on_replies - ev_replies: answer the batch the drain handed over. */
void gg_portal_on_replies(evutil_socket_t fd, short what, void *arg);
/* gg_portal_watch - store watcher: wake the drain thread (any thread). */
void gg_portal_watch(void *arg, const char *queue);

/* tx.c - payments and transaction status */
/* gg_portal_tx_flush - commit the transaction log's pending writes now. */
void gg_portal_tx_flush(gg_portal *p);
/* gg_portal_tx_begun - record a relayed request as pending. */
void gg_portal_tx_begun(gg_portal *p, const char *txid, const char *txn, int64_t created_ms,
                        int64_t expiry_ms);
/* gg_portal_tx_done - record a reply's outcome (body may be NULL). */
void gg_portal_tx_done(gg_portal *p, const char *txid, const char *txn, int status,
                       const char *body);
/* gg_portal_handle_payment - POST /api/v1/accounts/{account_no}/payments. */
void gg_portal_handle_payment(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                              const gg_api_route *r);
/* gg_portal_handle_transaction - GET /api/v1/transactions/{id}. */
void gg_portal_handle_transaction(gg_portal *p, struct evhttp_request *req,
                                  const gg_reqinfo *ri, const gg_api_route *r);
/* gg_portal_tx_open - open portal.tx_db and its pruning timer. */
gg_err gg_portal_tx_open(gg_portal *p);
/* gg_portal_tx_close - close both; safe if never opened. */
void gg_portal_tx_close(gg_portal *p);

/* web.c */
/* gg_portal_static - serve r->file from web_root. */
void gg_portal_static(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                      const gg_api_route *r);
/* gg_portal_admin_cb - the admin listener's request callback. */
void gg_portal_admin_cb(struct evhttp_request *req, void *arg);
/* gg_portal_is_loopback_host - host of "host:port" is loopback. */
int gg_portal_is_loopback_host(const char *listen);

#endif
