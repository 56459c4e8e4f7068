/* portal.c - the portal role's life cycle, routing and responses.
 *
 * gg_portal_run builds one libevent base holding: the public HTTP listener
 * (http.listen: the API and the web page), the admin listener
 * (admin.listen, loopback only), the replies drain event that the store's
 * watcher wakes, SIGINT/SIGTERM handlers and a SIGHUP handler (reload of
 * the channel's certificates). Everything runs on the one loop thread, so
 * no locks. Every request gets one log line (method, path
 * without query with the account masked, status, duration) and never the
 * token or personal data. Stop: close listeners, answer waiting calls 503,
 * let the answers flush, then close the transport.
 */
#include "portal/portal.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "audit/audit.h"
#include "core/log.h"
#include "core/sig.h"
#include "portal/offload.h"
#include "portal/portal_int.h"
#include "portal/sender.h"
#include "portal/shed.h"
#include "portal/push.h"

#define HEADERS_MAX 16384           /* request line plus headers, bytes */
#define BODY_SLACK (1u << 20)       /* bodies this much over max_body still get a JSON 413 */
#define STOP_FLUSH_MS 200           /* time given to answers in flight at stop */

/* gg_portal_log_request - one line per answered request. */
void gg_portal_log_request(const gg_reqinfo *ri, int status)
{
    long long us = (long long)(gg_mono_us() - ri->start_us);

    if (ri->txid != NULL)
        gg_info("http", "msg=\"request\" method=%s path=%s status=%d duration_us=%lld txid=%s",
                ri->method, ri->log_path, status, us, ri->txid);
    else
        gg_info("http", "msg=\"request\" method=%s path=%s status=%d duration_us=%lld",
                ri->method, ri->log_path, status, us);
}

/* gg_portal_respond - send a JSON answer, log and count it. */
void gg_portal_respond(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                       int status, const char *body, int retry_after)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();
    char ra[16];

    evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (retry_after > 0) {
        snprintf(ra, sizeof ra, "%d", retry_after);
        evhttp_add_header(h, "Retry-After", ra);
    }
    if (ri->txid != NULL)
        evhttp_add_header(h, "X-Transaction-Id", ri->txid);
    if (b != NULL && body != NULL)
        evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, status, gg_api_reason(status), b);
    if (b != NULL)
        evbuffer_free(b);
    if (status > 0 && status < GG_PORTAL_STATUS_MAX)
        p->c.http[status]++;
    gg_portal_log_request(ri, status);
}

/* gg_portal_respond_error - {"error":{...}} for st. */
void gg_portal_respond_error(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                             const gg_api_status *st, const char *txid, int retry_after)
{
    char *body = gg_api_error_json(st->code, st->message, txid);

    gg_portal_respond(p, req, ri, st->http, body, retry_after);
    free(body);
}

/* gg_portal_channel_state - "running", "retrying" or "stopped". */
const char *gg_portal_channel_state(gg_portal *p)
{
    gg_channel *ch = p->t != NULL ? gg_transport_channel(p->t) : NULL;
    gg_channel_stats s;

    if (ch == NULL)
        return "stopped";
    memset(&s, 0, sizeof s);
    gg_channel_get_stats(ch, &s);
    switch (s.state) {
    case GG_CHANNEL_RUNNING: return "running";
    case GG_CHANNEL_RETRYING: return "retrying";
    default: return "stopped";
    }
}

/* method_of - libevent's command as a routing method plus its name. */
static gg_api_method method_of(struct evhttp_request *req, char name[8])
{
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET: strcpy(name, "GET"); return GG_M_GET;
    case EVHTTP_REQ_HEAD: strcpy(name, "HEAD"); return GG_M_HEAD;
    case EVHTTP_REQ_POST: strcpy(name, "POST"); return GG_M_POST;
    case EVHTTP_REQ_PUT: strcpy(name, "PUT"); break;
    case EVHTTP_REQ_DELETE: strcpy(name, "DELETE"); return GG_M_DELETE;
    case EVHTTP_REQ_OPTIONS: strcpy(name, "OPTIONS"); break;
    case EVHTTP_REQ_TRACE: strcpy(name, "TRACE"); break;
    case EVHTTP_REQ_CONNECT: strcpy(name, "CONNECT"); break;
    case EVHTTP_REQ_PATCH: strcpy(name, "PATCH"); break;
    default: strcpy(name, "OTHER"); break;
    }
    return GG_M_OTHER;
}

/* handle_bind - POST /api/v1/bindings. */
static void handle_bind(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    const char *cl = evhttp_find_header(in, "Content-Length");
    size_t len = evbuffer_get_length(buf);
    json_t *payload = NULL;
    gg_api_status st;

    if (cl != NULL && strtoull(cl, NULL, 10) > p->max_body)
        len = p->max_body + 1;  /* declared too large: refuse whatever arrived */
    if (len > p->max_body) {
        gg_api_fail(&st, 413, "too_large", "request body exceeds %zu bytes", p->max_body);
        gg_portal_respond_error(p, req, ri, &st, NULL, 0);
        return;
    }
    gg_api_parse_bind(len > 0 ? (const char *)evbuffer_pullup(buf, -1) : NULL, len, p->max_body,
                      &payload, &st);
    if (st.code != NULL) {
        gg_portal_respond_error(p, req, ri, &st, NULL, 0);
        return;
    }
    gg_portal_relay(p, req, ri, "bind", payload);
    json_decref(payload);
}

/* handle_unbind - DELETE /api/v1/bindings: revoke the X-Binding-Token. */
static void handle_unbind(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    json_t *payload = NULL;
    gg_api_status st;

    gg_api_parse_unbind(evhttp_find_header(in, "X-Binding-Token"), &payload, &st);
    if (st.code != NULL) {
        gg_portal_respond_error(p, req, ri, &st, NULL, 0);
        return;
    }
    gg_portal_relay(p, req, ri, "unbind", payload);
    json_decref(payload);
}

/* handle_bills - GET /api/v1/accounts/{account_no}/bills. */
static void handle_bills(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                         const gg_api_route *r, const char *query)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *token = evhttp_find_header(in, "X-Binding-Token");
    json_t *payload = NULL;
    gg_api_status st;

    gg_api_parse_bills(r->account_no, query, token, gg_now_ms(), &payload, &st);
    if (st.code != NULL) {
        gg_portal_respond_error(p, req, ri, &st, NULL, 0);
        return;
    }
    gg_portal_relay(p, req, ri, "bills.query", payload);
    json_decref(payload);
}

/* handle_usage - GET /api/v1/accounts/{account_no}/usage. */
static void handle_usage(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                         const gg_api_route *r, const char *query)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *token = evhttp_find_header(in, "X-Binding-Token");
    json_t *payload = NULL;
    gg_api_status st;

    gg_api_parse_usage(r->account_no, query, token, gg_now_ms(), &payload, &st);
    if (st.code != NULL) {
        gg_portal_respond_error(p, req, ri, &st, NULL, 0);
        return;
    }
    gg_portal_relay(p, req, ri, "usage.query", payload);
    json_decref(payload);
}

/* on_request - the public listener's callback for every request. */
static void on_request(struct evhttp_request *req, void *arg)
{
    gg_portal *p = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
    const char *query = u != NULL ? evhttp_uri_get_query(u) : NULL;
    gg_reqinfo ri;
    gg_api_route r;
    gg_api_status st;
    gg_api_method m;
    char body[128];

    memset(&ri, 0, sizeof ri);
    ri.start_us = gg_mono_us();
    m = method_of(req, ri.method);
    gg_api_log_path(path != NULL ? path : "-", ri.log_path, sizeof ri.log_path);
    if (p->stopping) {
        gg_api_fail(&st, 503, "unavailable", "the portal is shutting down");
        gg_portal_respond_error(p, req, &ri, &st, NULL, 1);
        return;
    }
    gg_api_match(m, path, &r, &st);
    if (st.code != NULL) {
        if (st.http == 405 && r.allow != NULL)
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", r.allow);
        gg_portal_respond_error(p, req, &ri, &st, NULL, 0);
        return;
    }
    switch (r.id) {
    case GG_ROUTE_HEALTHZ:
        snprintf(body, sizeof body, "{\"status\":\"ok\",\"channel\":\"%s\"}",
                 gg_portal_channel_state(p));
        gg_portal_respond(p, req, &ri, 200, body, 0);
        break;
    case GG_ROUTE_STATIC:
        gg_portal_static(p, req, &ri, &r);
        break;
    case GG_ROUTE_BINDINGS:
        handle_bind(p, req, &ri);
        break;
    case GG_ROUTE_UNBIND:
        handle_unbind(p, req, &ri);
        break;
    case GG_ROUTE_BILLS:
        handle_bills(p, req, &ri, &r, query);
        break;
    case GG_ROUTE_USAGE:
        handle_usage(p, req, &ri, &r, query);
        break;
    case GG_ROUTE_PAYMENTS:
        gg_portal_handle_payment(p, req, &ri, &r);  /* tx.c */
        break;
    case GG_ROUTE_TRANSACTION:
        gg_portal_handle_transaction(p, req, &ri, &r);
        break;
    default:
        gg_api_fail(&st, 404, "not_found", "no such resource");
        gg_portal_respond_error(p, req, &ri, &st, NULL, 0);
        break;
    }
}

/* on_signal - SIGINT/SIGTERM: stop accepting, answer waiting calls, exit
 * the loop once the answers had a moment to flush. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    gg_portal *p = arg;
    struct timeval tv = { 0, STOP_FLUSH_MS * 1000 };

    (void)what;
    if (p->stopping)
        return;
    p->stopping = 1;
    gg_info("portal", "msg=\"stopping\" signal=%d pending=%zu", (int)sig,
            gg_pending_count(p->pending));
    if (p->http_sock != NULL) {
        evhttp_del_accept_socket(p->http, p->http_sock);
        p->http_sock = NULL;
    }
    if (p->admin_sock != NULL) {
        evhttp_del_accept_socket(p->admin, p->admin_sock);
        p->admin_sock = NULL;
    }
    gg_portal_fail_all(p);
    event_base_loopexit(p->base, &tv);
}

/* on_hup - SIGHUP: reload the channel's certificates and keys. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    gg_portal *p = arg;

    (void)sig;
    (void)what;
    gg_channel_reload(p->t != NULL ? gg_transport_channel(p->t) : NULL);
}

/* split_listen - "host:port" or "[v6]:port" into host and port. */
static int split_listen(const char *listen, char *host, size_t hostsz, int *port)
{
    const char *colon;
    const char *h = listen;
    size_t hlen;
    char *end = NULL;
    long v;

    if (listen == NULL)
        return -1;
    colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen)
        return -1;
    hlen = (size_t)(colon - listen);
    if (h[0] == '[') {
        if (hlen < 2 || h[hlen - 1] != ']')
            return -1;
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= hostsz)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    v = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || v < 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* gg_portal_is_loopback_host - the host part of listen is a loopback address. */
int gg_portal_is_loopback_host(const char *listen)
{
    char host[256];
    int port;

    if (split_listen(listen, host, sizeof host, &port) != 0)
        return 0;
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/* bound_port - the local port of a bound listener (for the log). */
static int bound_port(struct evhttp_bound_socket *s)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(s);

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* bind_listener - a new evhttp on p's base bound to listen. */
static gg_err bind_listener(gg_portal *p, const char *what, const char *listen,
                            struct evhttp **out, struct evhttp_bound_socket **sock)
{
    char host[256];
    int port;

    *out = NULL;
    *sock = NULL;
    if (split_listen(listen, host, sizeof host, &port) != 0) {
        gg_error("portal", "msg=\"bad listen address\" key=%s.listen", what);
        return GG_ECONFIG;
    }
    *out = evhttp_new(p->base);
    if (*out == NULL)
        return GG_ENOMEM;
    *sock = evhttp_bind_socket_with_handle(*out, host, (ev_uint16_t)port);
    if (*sock == NULL) {
        gg_error("portal", "msg=\"cannot bind\" key=%s.listen address=%s", what, listen);
        return GG_EIO;
    }
    gg_info("portal", "msg=\"listening\" what=%s host=%s port=%d", what, host, bound_port(*sock));
    return GG_OK;
}

/* setup_http - the public listener with its limits. */
static gg_err setup_http(gg_portal *p)
{
    int64_t tmo_s = p->timeout_ms / 1000 + 30;
    gg_err e;

    e = bind_listener(p, "http", gg_config_str(p->cfg, "http.listen"), &p->http, &p->http_sock);
    if (e != GG_OK)
        return e;
    evhttp_set_max_headers_size(p->http, HEADERS_MAX);
    evhttp_set_max_body_size(p->http, (ev_ssize_t)(p->max_body + BODY_SLACK));
    evhttp_set_timeout(p->http, (int)tmo_s);
    evhttp_set_allowed_methods(p->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_flags(p->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_gencb(p->http, on_request, p);
    return GG_OK;
}

/* setup_admin - the admin listener, refused unless on loopback. */
static gg_err setup_admin(gg_portal *p)
{
    const char *listen = gg_config_str(p->cfg, "admin.listen");
    gg_err e;

    if (!gg_portal_is_loopback_host(listen)) {
        gg_error("portal", "msg=\"admin.listen must be a loopback address\"");
        return GG_ECONFIG;
    }
    e = bind_listener(p, "admin", listen, &p->admin, &p->admin_sock);
    if (e != GG_OK)
        return e;
    evhttp_set_max_headers_size(p->admin, 8192);
    evhttp_set_max_body_size(p->admin, 0);
    evhttp_set_timeout(p->admin, 10);
    evhttp_set_gencb(p->admin, gg_portal_admin_cb, p);
    return GG_OK;
}

/* load_keys - the envelope keys of this site from [security]. */
static gg_err load_keys(gg_portal *p)
{
    gg_env_keys_cfg kc;
    char err[256];
    gg_err e;

    memset(&kc, 0, sizeof kc);
    kc.suite = gg_config_str(p->cfg, "security.suite");
    kc.self_name = p->site;
    kc.sign_key = gg_config_str(p->cfg, "security.sign_key");
    kc.kem_key = gg_config_str(p->cfg, "security.kem_key");
    kc.peer_sign_pub = gg_config_str(p->cfg, "security.peer_sign_pub");
    kc.peer_kem_pub = gg_config_str(p->cfg, "security.peer_kem_pub");
    err[0] = '\0';
    e = gg_env_keys_load(&kc, &p->keys, err, sizeof err);
    if (e == GG_OK)
        e = gg_env_keys_rotation_config(p->keys, p->cfg, err, sizeof err);
    if (e != GG_OK)
        gg_error("portal", "msg=\"cannot load envelope keys\" err=%s reason=\"%s\"",
                 gg_errname(e), err);
    return e;
}

/* read_settings - names, limits and timers from the config. */
static gg_err read_settings(gg_portal *p)
{
    const char *web_root = gg_config_str(p->cfg, "http.web_root");

    p->site = gg_config_str(p->cfg, "site.name");
    p->peer = gg_config_str(p->cfg, "site.peer");
    if (p->site == NULL || p->site[0] == '\0' || strlen(p->site) >= GG_ENV_NAME_MAX ||
        p->peer == NULL || p->peer[0] == '\0' || strlen(p->peer) >= GG_ENV_NAME_MAX) {
        gg_error("portal", "msg=\"site.name and site.peer must be set (1 to %d bytes)\"",
                 GG_ENV_NAME_MAX - 1);
        return GG_ECONFIG;
    }
    p->timeout_ms = gg_config_int(p->cfg, "http.request_timeout_ms");
    p->ttl_ms = gg_config_int(p->cfg, "security.message_ttl_ms");
    p->lease_ms = gg_config_int(p->cfg, "store.lease_ms");
    p->max_body = (size_t)gg_config_int(p->cfg, "http.max_body");
    p->web_fd = -1;
    if (web_root != NULL && web_root[0] != '\0') {
        p->web_fd = open(web_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (p->web_fd < 0)
            gg_warn("portal", "msg=\"cannot open http.web_root; serving no page\" path=%s",
                    web_root);
    } else {
        gg_info("portal", "msg=\"http.web_root not set; serving no page\"");
    }
    return GG_OK;
}

/* setup_events - signals, the request senders and the replies drain. */
static gg_err setup_events(gg_portal *p)
{
    gg_err e;

    p->ev_int = evsignal_new(p->base, SIGINT, on_signal, p);
    p->ev_term = evsignal_new(p->base, SIGTERM, on_signal, p);
    p->ev_hup = evsignal_new(p->base, SIGHUP, on_hup, p);
    p->ev_replies = event_new(p->base, -1, 0, gg_portal_on_replies, p);
    if (p->ev_int == NULL || p->ev_term == NULL || p->ev_hup == NULL || p->ev_replies == NULL)
        return GG_ENOMEM;
    if (event_add(p->ev_int, NULL) != 0 || event_add(p->ev_term, NULL) != 0 ||
        event_add(p->ev_hup, NULL) != 0)
        return GG_EIO;
    e = gg_psend_start(p->base, GG_PORTAL_SENDERS, gg_portal_seal, gg_portal_put, p,
                       gg_portal_on_sent, p, &p->sender);
    if (e != GG_OK) {
        gg_error("portal", "msg=\"cannot start the sender threads\" err=%s", gg_errname(e));
        return e;
    }
    gg_psend_set_batch(p->sender, GG_PORTAL_SEND_BATCH, gg_portal_seal_many, gg_portal_put_many);
    e = gg_offload_start(p->base, &p->offload);
    if (e != GG_OK)
        return e;
    e = gg_portal_drain_start(p);  /* drain.c: it drains what a previous run left at once */
    if (e != GG_OK)
        return e;
    e = gg_store_watch(gg_transport_store(p->t), GG_Q_REPLIES, gg_portal_watch, p);
    if (e != GG_OK) {
        gg_error("portal", "msg=\"cannot watch the replies queue\" err=%s", gg_errname(e));
        return e;
    }
    return GG_OK;
}

/* teardown - release everything setup made, in reverse order. */
static void teardown(gg_portal *p)
{
    gg_pending *pd;

    /* Finish the puts under way (their calls are answered below), then
     * stop the drain (a batch not yet answered stays in the store). */
    gg_psend_stop(p->sender);
    p->sender = NULL;
    gg_push_halt(p->push);
    gg_offload_stop(p->offload);  /* answers the scrapes under way; push's last calls */
    p->offload = NULL;
    if (p->t != NULL && p->drain != NULL)
        gg_store_unwatch(gg_transport_store(p->t), gg_portal_watch, p);
    gg_portal_drain_stop(p);
    if (p->pending != NULL)
        gg_portal_fail_all(p);
    if (p->http != NULL)
        evhttp_free(p->http);
    if (p->admin != NULL)
        evhttp_free(p->admin);
    /* Entries left only if a close callback never came; their requests
     * went with their connections above. */
    while (p->pending != NULL && (pd = gg_pending_any(p->pending)) != NULL) {
        if (pd->timer != NULL)
            event_free(pd->timer);
        gg_pending_remove(p->pending, pd);
    }
    gg_replay_close(p->replay);  /* before its store; the drain is stopped */
    p->replay = NULL;
    /* The transport first: its threads may still activate ev_replies. */
    gg_transport_close(p->t);
    gg_push_stop(p->push);  /* after the transport: its watcher may still wake push */
    gg_portal_tx_close(p);
    if (p->ev_int != NULL)
        event_free(p->ev_int);
    if (p->ev_term != NULL)
        event_free(p->ev_term);
    if (p->ev_hup != NULL)
        event_free(p->ev_hup);
    if (p->ev_replies != NULL)
        event_free(p->ev_replies);
    gg_pending_free(p->pending);
    gg_shed_free(p->shed);
    gg_env_keys_free(p->keys);
    gg_audit_close(p->audit);
    if (p->web_fd >= 0)
        close(p->web_fd);
    if (p->base != NULL)
        event_base_free(p->base);
}

/* gg_portal_run - run the portal role until SIGINT or SIGTERM. */
gg_err gg_portal_run(const gg_config *cfg)
{
    gg_portal *p = calloc(1, sizeof *p);
    gg_err e;

    if (p == NULL)
        return GG_ENOMEM;
    p->cfg = cfg;
    p->web_fd = -1;
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        e = GG_ENOMEM;
        goto out;
    }
    e = read_settings(p);
    if (e != GG_OK)
        goto out;
    e = load_keys(p);
    if (e != GG_OK)
        goto out;
    e = gg_audit_open_config(cfg, &p->audit);
    if (e != GG_OK) {
        e = e == GG_ENOMEM ? e : GG_ECONFIG;
        goto out;
    }
    p->pending = gg_pending_new(GG_PORTAL_MAX_PENDING);
    p->shed = gg_shed_new(gg_config_bool(cfg, "http.shed"), p->timeout_ms);
    p->base = event_base_new();
    if (p->pending == NULL || p->base == NULL || p->shed == NULL) {
        e = GG_ENOMEM;
        goto out;
    }
    e = setup_http(p);
    if (e != GG_OK)
        goto out;
    e = setup_admin(p);
    if (e != GG_OK)
        goto out;
    e = gg_transport_open(cfg, &p->t);
    if (e != GG_OK) {
        gg_error("portal", "msg=\"cannot open the transport\" err=%s", gg_errname(e));
        goto out;
    }
    e = gg_replay_open_config(cfg, gg_transport_store(p->t), &p->replay);  /* tables in the store */
    if (e != GG_OK) {
        e = e == GG_ENOMEM ? e : GG_ECONFIG;
        goto out;
    }
    e = setup_events(p);
    if (e != GG_OK)
        goto out;
    e = gg_portal_tx_open(p);  /* tx.c: transaction outcomes */
    if (e != GG_OK)
        goto out;
    e = gg_push_start(cfg, p->base, gg_transport_store(p->t), p->keys, p->peer, p->offload,
                      &p->push);
    if (e != GG_OK)
        goto out;
    gg_info("portal", "msg=\"running\" site=%s peer=%s timeout_ms=%lld", p->site, p->peer,
            (long long)p->timeout_ms);
    /* gg_cmd_run blocked the stop signals; the handlers are in place now,
     * so let them in (one that came during start-up is taken here). */
    sigset_t stop;
    gg_role_sigset(&stop);
    pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
    if (event_base_dispatch(p->base) < 0) {
        gg_error("portal", "msg=\"event loop failed\"");
        e = GG_EIO;
        goto out;
    }
    gg_info("portal", "msg=\"stopped\"");
out:
    teardown(p);
    free(p);
    return e;
}
