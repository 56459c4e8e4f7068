/* push.c - webhook delivery of events (push.h).
 *
 * Slot states: FREE -> POSTING (request in flight) -> FREE on 2xx (event
 * acknowledged) or when dead-lettered; POSTING -> WAITING (backoff timer)
 * on failure -> POSTING when the timer fires. Invariants:
 *  1. An event leaves the "events" queue only by an ack after a 2xx answer
 *     or by a move to the dead-letter queue.
 *  2. An event is in at most one slot: the cursor (highest id read) only
 *     grows while the portal runs.
 *  3. The store is never called on the loop while the offload thread runs
 *     (offload.h): reads (at most one at a time; a fill asked for meanwhile
 *     runs after it), acks and dead-letter moves go there, and their
 *     continuations come back to the loop. A slot is free again as soon as
 *     its ack or move is queued: the cursor is past its event (2).
 */
#include "portal/push.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rand.h"
#include "portal/offload.h"

#define PUSH_POLL_MS 1000
#define PUSH_HOST_MAX 256
#define PUSH_PATH_MAX 1024

enum slot_state { SLOT_FREE = 0, SLOT_POSTING, SLOT_WAITING };

typedef struct push_slot {
    struct gg_push *ps;
    enum slot_state state;
    struct evhttp_connection *conn;
    struct event *timer;
    int64_t msg_id;
    char event_id[33];
    char type[GG_ENV_TXN_MAX];
    char *body;
    size_t len;
    int attempts;
    int answered;                        /* on_done ran for the current attempt */
    char last[48];                       /* last failure, for the dead-letter reason */
} push_slot;

struct gg_push {
    struct event_base *base;
    gg_store *st;
    const gg_env_keys *keys;
    const char *peer;
    char host[PUSH_HOST_MAX];
    char hosthdr[PUSH_HOST_MAX + 8];
    int port;
    char path[PUSH_PATH_MAX];
    uint8_t secret[GG_PUSH_SECRET_MAX];
    size_t secret_len;
    int max_attempts;
    int64_t backoff_ms, backoff_max_ms, timeout_ms;
    int nslots;
    push_slot *slots;
    int64_t cursor;
    struct event *ev_wake;
    struct event *ev_poll;
    gg_offload *off;                     /* store calls off the loop (borrowed) */
    int reading;                         /* a browse is with the offload thread */
    int again;                           /* a fill was asked for meanwhile */
    int stopping;
    uint64_t delivered, failures, dead, rejected;
};

static void attempt(push_slot *s);
static void fill(gg_push *ps);

/* gg_push_sign - the signature header value. */
void gg_push_sign(const uint8_t *secret, size_t secret_len, const void *body, size_t len,
                  char out[GG_PUSH_SIG_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (HMAC(EVP_sha256(), secret, (int)secret_len, body, len, md, &mdlen) == NULL ||
        mdlen != 32) {
        snprintf(out, GG_PUSH_SIG_LEN, "sha256=");
        return;
    }
    memcpy(out, "sha256=", 7);
    gg_hex(md, 32, out + 7);
}

/* gg_push_backoff_ms - exponential backoff with equal jitter. */
int64_t gg_push_backoff_ms(int64_t base, int64_t cap, int failures, double r)
{
    int64_t d = base;
    int i;

    for (i = 1; i < failures && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    if (r < 0 || r >= 1)
        r = 0;
    return d / 2 + (int64_t)((double)(d - d / 2) * r);
}

/* unit_random - a uniform double in [0, 1). */
static double unit_random(void)
{
    uint32_t v;

    gg_random(&v, sizeof v);
    return (double)v / 4294967296.0;
}

/* release - the slot is free again. */
static void release(push_slot *s)
{
    if (s->body != NULL) {
        OPENSSL_cleanse(s->body, s->len);
        free(s->body);
    }
    s->body = NULL;
    s->len = 0;
    s->state = SLOT_FREE;
    s->attempts = 0;
    s->last[0] = '\0';
}

/* One ack or dead-letter move, made off the loop. */
typedef struct push_op {
    gg_store *st;
    int dead;                            /* 1 move to the dead-letter queue, 0 ack */
    int64_t id;
    char event_id[33];
    char reason[GG_DEAD_REASON_MAX];
    gg_err e;
} push_op;

/* op_run - offload thread (or the loop, if it cannot take it): the store call. */
static void op_run(void *arg)
{
    push_op *op = arg;

    op->e = op->dead ? gg_store_dead_letter(op->st, op->id, op->reason)
                     : gg_store_ack(op->st, op->id);
}

/* op_done - loop: log the outcome, free. */
static void op_done(void *arg)
{
    push_op *op = arg;

    if (op->dead)
        gg_warn("push", "msg=\"event dead-lettered\" event_id=%s id=%lld reason=\"%s\" err=%s",
                op->event_id, (long long)op->id, op->reason, gg_errname(op->e));
    else if (op->e != GG_OK && op->e != GG_ENOTFOUND)
        gg_warn("push", "msg=\"cannot ack delivered event\" event_id=%s err=%s", op->event_id,
                gg_errname(op->e));
    free(op);
}

/* store_op - ack (dead 0) or dead-letter event id, off the loop when the
 * offload thread takes it, else at once. */
static void store_op(gg_push *ps, int dead, int64_t id, const char *event_id,
                     const char *reason)
{
    push_op *op = calloc(1, sizeof *op);

    if (op == NULL) {
        gg_err e = dead ? gg_store_dead_letter(ps->st, id, reason) : gg_store_ack(ps->st, id);

        gg_warn("push", "msg=\"out of memory; store call made on the loop\" event_id=%s err=%s",
                event_id, gg_errname(e));
        return;
    }
    op->st = ps->st;
    op->dead = dead;
    op->id = id;
    snprintf(op->event_id, sizeof op->event_id, "%s", event_id);
    snprintf(op->reason, sizeof op->reason, "%s", reason != NULL ? reason : "");
    if (gg_offload_submit(ps->off, op_run, op_done, op) != GG_OK) {
        op_run(op);
        op_done(op);
    }
}

/* dead_letter - take an event out of service with a reason. */
static void dead_letter(gg_push *ps, int64_t id, const char *event_id, const char *reason)
{
    ps->dead++;
    store_op(ps, 1, id, event_id, reason);
}

/* on_timer - the backoff is over: try again. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    push_slot *s = arg;

    (void)fd;
    (void)what;
    if (!s->ps->stopping)
        attempt(s);
}

/* failed - one attempt failed: wait and retry, or dead-letter. */
static void failed(push_slot *s, const char *why)
{
    gg_push *ps = s->ps;
    struct timeval tv;
    int64_t wait;
    char reason[GG_DEAD_REASON_MAX];

    ps->failures++;
    snprintf(s->last, sizeof s->last, "%s", why);
    if (s->attempts >= ps->max_attempts) {
        snprintf(reason, sizeof reason, "webhook: %d attempts, last: %s", s->attempts, why);
        dead_letter(ps, s->msg_id, s->event_id, reason);
        release(s);
        fill(ps);
        return;
    }
    wait = gg_push_backoff_ms(ps->backoff_ms, ps->backoff_max_ms, s->attempts, unit_random());
    gg_info("push", "msg=\"delivery failed; will retry\" event_id=%s attempt=%d why=\"%s\" "
            "wait_ms=%lld", s->event_id, s->attempts, why, (long long)wait);
    s->state = SLOT_WAITING;
    tv.tv_sec = (time_t)(wait / 1000);
    tv.tv_usec = (suseconds_t)((wait % 1000) * 1000);
    evtimer_add(s->timer, &tv);
}

/* on_done - the webhook answered (or the attempt failed). */
static void on_done(struct evhttp_request *req, void *arg)
{
    push_slot *s = arg;
    gg_push *ps = s->ps;
    int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
    char why[48];

    s->answered = 1;
    if (ps->stopping || s->state != SLOT_POSTING)
        return;
    if (code >= 200 && code < 300) {
        store_op(ps, 0, s->msg_id, s->event_id, NULL);
        ps->delivered++;
        gg_debug("push", "msg=\"event delivered\" event_id=%s type=%s attempt=%d status=%d",
                 s->event_id, s->type, s->attempts, code);
        release(s);
        fill(ps);
        return;
    }
    if (code == 0)
        snprintf(why, sizeof why, "no answer (connection failed or timed out)");
    else
        snprintf(why, sizeof why, "http %d", code);
    failed(s, why);
}

/* attempt - POST the slot's event once. */
static void attempt(push_slot *s)
{
    gg_push *ps = s->ps;
    struct evhttp_request *req;
    struct evkeyvalq *h;
    char sig[GG_PUSH_SIG_LEN];
    char n[16];

    s->attempts++;
    s->state = SLOT_POSTING;
    s->answered = 0;
    req = evhttp_request_new(on_done, s);
    if (req == NULL) {
        failed(s, "out of memory");
        return;
    }
    gg_push_sign(ps->secret, ps->secret_len, s->body, s->len, sig);
    snprintf(n, sizeof n, "%d", s->attempts);
    h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", ps->hosthdr);
    evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8");
    evhttp_add_header(h, "User-Agent", "gridgate-push/1");
    evhttp_add_header(h, "X-Gridgate-Event-Id", s->event_id);
    evhttp_add_header(h, "X-Gridgate-Event-Type", s->type);
    evhttp_add_header(h, "X-Gridgate-Delivery-Attempt", n);
    evhttp_add_header(h, "X-Gridgate-Signature", sig);
    evbuffer_add(evhttp_request_get_output_buffer(req), s->body, s->len);
    /* On a failure libevent may already have run on_done (a connect that
     * fails at once): count the attempt's failure only once. */
    if (evhttp_make_request(s->conn, req, EVHTTP_REQ_POST, ps->path) != 0 && !s->answered)
        failed(s, "request could not be sent");
}

/* open_event - verify an event envelope; on success the slot gets its
 * body. Returns 0, or -1 with a reason for the dead-letter queue. */
static int open_event(gg_push *ps, const gg_msg *m, push_slot *s, char *why, size_t whysz)
{
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    json_error_t jerr;
    json_t *obj = NULL;
    gg_env_hdr h;
    gg_err e;
    int rc = -1;

    e = gg_env_open(ps->keys, m->data, m->len, &h, &pt, &ptlen);
    if (e != GG_OK) {
        snprintf(why, whysz, "event rejected: %s", gg_errname(e));
        goto out;
    }
    h.sender[sizeof h.sender - 1] = '\0';
    h.txn[sizeof h.txn - 1] = '\0';
    if (h.kind != GG_ENV_EVENT || strcmp(h.sender, ps->peer) != 0) {
        snprintf(why, whysz, "event rejected: %s",
                 h.kind != GG_ENV_EVENT ? "not an event" : "wrong sender");
        goto out;
    }
    obj = json_loadb((const char *)pt, ptlen, 0, &jerr);
    if (obj == NULL || !json_is_string(json_object_get(obj, "event_id"))) {
        snprintf(why, whysz, "event rejected: body is not an event object");
        goto out;
    }
    gg_hex(h.msg_id, 16, s->event_id);
    snprintf(s->type, sizeof s->type, "%s", h.txn);
    s->body = (char *)pt;
    s->len = ptlen;
    pt = NULL;
    rc = 0;
out:
    json_decref(obj);
    if (pt != NULL) {
        OPENSSL_cleanse(pt, ptlen);
        free(pt);
    }
    return rc;
}

/* A browse of the events queue, made off the loop. */
typedef struct push_read {
    gg_push *ps;
    int64_t cursor;
    size_t max;
    gg_msg **msgs;
    size_t n;
    gg_err e;
} push_read;

/* take_events - give the n events read to free slots, in order (each
 * moves the cursor); one that fails verification is dead-lettered. */
static void take_events(gg_push *ps, gg_msg **msgs, size_t n)
{
    size_t i;
    int k;

    for (i = 0; i < n; i++) {
        push_slot *s = NULL;
        char why[GG_DEAD_REASON_MAX];

        ps->cursor = msgs[i]->id;
        for (k = 0; k < ps->nslots && s == NULL; k++)
            if (ps->slots[k].state == SLOT_FREE)
                s = &ps->slots[k];
        if (s == NULL)
            break;  /* cannot happen: n <= the free slots when the read began */
        if (open_event(ps, msgs[i], s, why, sizeof why) != 0) {
            ps->rejected++;
            dead_letter(ps, msgs[i]->id, "-", why);
            continue;
        }
        s->msg_id = msgs[i]->id;
        attempt(s);
    }
}

/* read_run - offload thread: browse the events after the cursor. */
static void read_run(void *arg)
{
    push_read *r = arg;

    r->e = gg_store_browse(r->ps->st, "events", r->cursor, r->max, 0, &r->msgs, &r->n);
}

/* read_done - loop: deliver what the browse found; read on while it found
 * some or another fill was asked for. */
static void read_done(void *arg)
{
    push_read *r = arg;
    gg_push *ps = r->ps;
    int more = 0;

    ps->reading = 0;
    if (r->e != GG_OK) {
        if (!ps->stopping)
            gg_warn("push", "msg=\"cannot read events\" err=%s", gg_errname(r->e));
    } else if (!ps->stopping) {
        take_events(ps, r->msgs, r->n);
        more = r->n > 0 || ps->again;
    }
    if (r->e == GG_OK)
        gg_msgs_free(r->msgs, r->n);
    ps->again = 0;
    free(r);
    if (more)
        fill(ps);
}

/* fill - give every free slot the next queued event: one browse at a
 * time, off the loop (at once if the offload thread cannot take it). */
static void fill(gg_push *ps)
{
    push_read *r;
    size_t nfree = 0;
    int k;

    if (ps->stopping)
        return;
    if (ps->reading) {
        ps->again = 1;
        return;
    }
    for (k = 0; k < ps->nslots; k++)
        nfree += ps->slots[k].state == SLOT_FREE;
    if (nfree == 0)
        return;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return;  /* the poll tries again */
    r->ps = ps;
    r->cursor = ps->cursor;
    r->max = nfree;
    ps->reading = 1;
    if (gg_offload_submit(ps->off, read_run, read_done, r) != GG_OK) {
        read_run(r);
        read_done(r);
    }
}

/* on_wake - the store has new events, or the periodic poll. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fill(arg);
}

/* gg_push_watch - wake the loop from the committing thread. */
void gg_push_watch(void *arg, const char *queue)
{
    gg_push *ps = arg;

    (void)queue;
    event_active(ps->ev_wake, EV_READ, 0);
}

/* read_secret - the secret file: one line, GG_PUSH_SECRET_MIN..MAX bytes. */
static gg_err read_secret(gg_push *ps, const char *path)
{
    char buf[GG_PUSH_SECRET_MAX + 4];
    size_t n;
    FILE *f;

    if (path == NULL) {
        gg_error("push", "msg=\"push.secret_file is required with push.webhook_url\"");
        return GG_ECONFIG;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        gg_error("push", "msg=\"cannot read push.secret_file\" path=%s", path);
        return GG_ECONFIG;
    }
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n < GG_PUSH_SECRET_MIN || n > GG_PUSH_SECRET_MAX) {
        OPENSSL_cleanse(buf, sizeof buf);
        gg_error("push", "msg=\"push.secret_file must hold %d to %d bytes\" path=%s",
                 GG_PUSH_SECRET_MIN, GG_PUSH_SECRET_MAX, path);
        return GG_ECONFIG;
    }
    memcpy(ps->secret, buf, n);
    ps->secret_len = n;
    OPENSSL_cleanse(buf, sizeof buf);
    return GG_OK;
}

/* parse_url - push.webhook_url into host, port and path (http:// only). */
static gg_err parse_url(gg_push *ps, const char *url)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *scheme, *host, *path, *query;
    gg_err e = GG_ECONFIG;
    int n;

    if (u == NULL) {
        gg_error("push", "msg=\"push.webhook_url is not a URL\"");
        return GG_ECONFIG;
    }
    scheme = evhttp_uri_get_scheme(u);
    host = evhttp_uri_get_host(u);
    path = evhttp_uri_get_path(u);
    query = evhttp_uri_get_query(u);
    if (scheme == NULL || strcmp(scheme, "http") != 0) {
        gg_error("push", "msg=\"push.webhook_url must be http:// (https is not supported yet)\"");
        goto out;
    }
    if (host == NULL || host[0] == '\0' || strlen(host) >= sizeof ps->host) {
        gg_error("push", "msg=\"push.webhook_url has no host\"");
        goto out;
    }
    snprintf(ps->host, sizeof ps->host, "%s", host);
    ps->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
    snprintf(ps->hosthdr, sizeof ps->hosthdr, "%s:%d", host, ps->port);
    n = snprintf(ps->path, sizeof ps->path, "%s%s%s",
                 path != NULL && path[0] != '\0' ? path : "/", query != NULL ? "?" : "",
                 query != NULL ? query : "");
    if (n < 0 || (size_t)n >= sizeof ps->path) {
        gg_error("push", "msg=\"push.webhook_url path too long\"");
        goto out;
    }
    e = GG_OK;
out:
    evhttp_uri_free(u);
    return e;
}

/* setup_slots - a connection and a timer per slot. */
static gg_err setup_slots(gg_push *ps)
{
    struct timeval tmo;
    int i;

    tmo.tv_sec = (time_t)(ps->timeout_ms / 1000);
    tmo.tv_usec = (suseconds_t)((ps->timeout_ms % 1000) * 1000);
    ps->slots = calloc((size_t)ps->nslots, sizeof *ps->slots);
    if (ps->slots == NULL)
        return GG_ENOMEM;
    for (i = 0; i < ps->nslots; i++) {
        push_slot *s = &ps->slots[i];

        s->ps = ps;
        s->conn = evhttp_connection_base_new(ps->base, NULL, ps->host, (unsigned short)ps->port);
        s->timer = evtimer_new(ps->base, on_timer, s);
        if (s->conn == NULL || s->timer == NULL)
            return GG_ENOMEM;
        evhttp_connection_set_timeout_tv(s->conn, &tmo);
        evhttp_connection_set_retries(s->conn, 0);
        evhttp_connection_set_max_body_size(s->conn, 65536);
        evhttp_connection_set_max_headers_size(s->conn, 16384);
    }
    return GG_OK;
}

/* gg_push_start - config, slots, wake-ups. */
gg_err gg_push_start(const gg_config *cfg, struct event_base *base, gg_store *st,
                     const gg_env_keys *keys, const char *peer, gg_offload *off,
                     gg_push **out)
{
    const char *url = gg_config_str(cfg, "push.webhook_url");
    struct timeval poll = { PUSH_POLL_MS / 1000, (PUSH_POLL_MS % 1000) * 1000 };
    gg_push *ps;
    gg_err e;

    *out = NULL;
    if (url == NULL || url[0] == '\0') {
        gg_info("push", "msg=\"push.webhook_url not set; events stay queued\"");
        return GG_OK;
    }
    ps = calloc(1, sizeof *ps);
    if (ps == NULL)
        return GG_ENOMEM;
    ps->base = base;
    ps->st = st;
    ps->keys = keys;
    ps->peer = peer;
    ps->off = off;
    ps->max_attempts = (int)gg_config_int(cfg, "push.max_attempts");
    ps->backoff_ms = gg_config_int(cfg, "push.backoff_ms");
    ps->backoff_max_ms = gg_config_int(cfg, "push.backoff_max_ms");
    ps->timeout_ms = gg_config_int(cfg, "push.timeout_ms");
    ps->nslots = (int)gg_config_int(cfg, "push.concurrency");
    e = parse_url(ps, url);
    if (e == GG_OK)
        e = read_secret(ps, gg_config_str(cfg, "push.secret_file"));
    if (e == GG_OK)
        e = setup_slots(ps);
    if (e != GG_OK)
        goto fail;
    ps->ev_wake = event_new(base, -1, 0, on_wake, ps);
    ps->ev_poll = event_new(base, -1, EV_PERSIST, on_wake, ps);
    if (ps->ev_wake == NULL || ps->ev_poll == NULL || event_add(ps->ev_poll, &poll) != 0) {
        e = GG_ENOMEM;
        goto fail;
    }
    e = gg_store_watch(st, "events", gg_push_watch, ps);
    if (e != GG_OK)
        goto fail;
    event_active(ps->ev_wake, EV_READ, 0);  /* events left from a previous run */
    gg_info("push", "msg=\"delivering events\" host=%s port=%d concurrency=%d max_attempts=%d",
            ps->host, ps->port, ps->nslots, ps->max_attempts);
    *out = ps;
    return GG_OK;
fail:
    gg_push_stop(ps);
    return e;
}

/* gg_push_halt - no new deliveries or reads from now on. */
void gg_push_halt(gg_push *ps)
{
    if (ps != NULL)
        ps->stopping = 1;
}

/* gg_push_stop - drop connections and timers; queued events stay. */
void gg_push_stop(gg_push *ps)
{
    int i;

    if (ps == NULL)
        return;
    ps->stopping = 1;
    for (i = 0; ps->slots != NULL && i < ps->nslots; i++) {
        push_slot *s = &ps->slots[i];

        if (s->conn != NULL)
            evhttp_connection_free(s->conn);
        if (s->timer != NULL)
            event_free(s->timer);
        release(s);
    }
    free(ps->slots);
    if (ps->ev_wake != NULL)
        event_free(ps->ev_wake);
    if (ps->ev_poll != NULL)
        event_free(ps->ev_poll);
    OPENSSL_cleanse(ps->secret, sizeof ps->secret);
    free(ps);
}

/* gg_push_write_metrics - the push counters. */
void gg_push_write_metrics(const gg_push *ps, struct evbuffer *b)
{
    int i, busy = 0;

    if (ps == NULL)
        return;
    for (i = 0; i < ps->nslots; i++)
        busy += ps->slots[i].state != SLOT_FREE;
    evbuffer_add_printf(b,
                        "# HELP gridgate_push_events_total Events by outcome of delivery.\n"
                        "# TYPE gridgate_push_events_total counter\n"
                        "gridgate_push_events_total{result=\"delivered\"} %llu\n"
                        "gridgate_push_events_total{result=\"dead\"} %llu\n"
                        "gridgate_push_events_total{result=\"rejected\"} %llu\n"
                        "# HELP gridgate_push_failed_attempts_total Webhook attempts that "
                        "failed.\n# TYPE gridgate_push_failed_attempts_total counter\n"
                        "gridgate_push_failed_attempts_total %llu\n"
                        "# HELP gridgate_push_in_flight Events being delivered or waiting to "
                        "retry.\n# TYPE gridgate_push_in_flight gauge\n"
                        "gridgate_push_in_flight %d\n",
                        (unsigned long long)ps->delivered, (unsigned long long)ps->dead,
                        (unsigned long long)ps->rejected, (unsigned long long)ps->failures,
                        busy);
}
