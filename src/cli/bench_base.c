/* bench_base.c - `gridgate bench baseline`: the baseline of bench-e2e.
 *
 *   gridgate bench baseline -c UTILITY.conf --listen HOST:PORT [--threads N]
 *
 * Serves the portal's API straight from the marketing database the utility
 * config names, behind the same HTTP front (libevent evhttp, the portal's
 * own request parsing and the utility's own services) but with no queue,
 * no channel and no message crypto: N threads (default utility.workers),
 * each with its own event loop, listener (SO_REUSEPORT) and marketing
 * connection, answer each request in place. Runs until SIGINT/SIGTERM.
 * What the gateway costs is the difference to `gridgate run`.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/rand.h"
#include "envelope/token.h"
#include "marketing/marketing.h"
#include "portal/api.h"
#include "services/services.h"

#define MAX_THREADS 64

typedef struct bworker {
    pthread_t th;
    struct event_base *base;
    struct evhttp *http;
    gg_mkt *mkt;
    gg_svc_ctx ctx;
    struct sockaddr_in sin;
    size_t max_body;
} bworker;

static uint8_t token_key[GG_TOKEN_KEY_LEN];
static volatile sig_atomic_t stopping;

/* reply - status and body of a service reply, or an API error. */
static void reply(struct evhttp_request *req, int status, const char *body)
{
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json; charset=utf-8");
    if (b && body)
        evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, status, gg_api_reason(status), b);
    if (b)
        evbuffer_free(b);
}

/* run - call txn directly and answer with its reply. */
static void run(bworker *w, struct evhttp_request *req, const char *txn, json_t *payload)
{
    uint8_t id[16];
    json_t *rep, *s, *body;
    char *text = NULL;

    gg_random(id, sizeof id);
    gg_hex(id, sizeof id, w->ctx.txid);
    w->ctx.now_ms = gg_now_ms();
    rep = gg_svc_dispatch(&w->ctx, txn, payload);
    s = json_object_get(rep, "status");
    body = json_object_get(rep, "body");
    if (body)
        text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(12));
    reply(req, json_is_integer(s) ? (int)json_integer_value(s) : 500, text);
    free(text);
    json_decref(rep);
}

/* on_request - the portal's routes, answered in place. */
static void on_request(struct evhttp_request *req, void *arg)
{
    bworker *w = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    const char *query = u ? evhttp_uri_get_query(u) : NULL;
    const char *tok = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Binding-Token");
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    gg_api_method m = cmd == EVHTTP_REQ_GET ? GG_M_GET : cmd == EVHTTP_REQ_POST ? GG_M_POST
                                                                                : GG_M_OTHER;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    json_t *payload = NULL;
    const char *txn = NULL;
    gg_api_status st;
    gg_api_route r;

    gg_api_match(m, path, &r, &st);
    if (st.code == NULL) {
        switch (r.id) {
        case GG_ROUTE_HEALTHZ:
            reply(req, 200, "{\"status\":\"ok\"}");
            return;
        case GG_ROUTE_BINDINGS:
            gg_api_parse_bind(body, len, w->max_body, &payload, &st);
            txn = "bind";
            break;
        case GG_ROUTE_BILLS:
            gg_api_parse_bills(r.account_no, query, tok, gg_now_ms(), &payload, &st);
            txn = "bills.query";
            break;
        case GG_ROUTE_USAGE:
            gg_api_parse_usage(r.account_no, query, tok, gg_now_ms(), &payload, &st);
            txn = "usage.query";
            break;
        case GG_ROUTE_PAYMENTS:
            gg_api_parse_pay(r.account_no, tok, body, len, w->max_body, &payload, &st);
            txn = "pay";
            break;
        default:
            gg_api_fail(&st, 404, "not_found", "no such resource");
            break;
        }
    }
    if (st.code != NULL) {
        char *e = gg_api_error_json(st.code, st.message, NULL);

        reply(req, st.http, e);
        free(e);
        json_decref(payload);
        return;
    }
    run(w, req, txn, payload);
    json_decref(payload);
}

/* worker_main - one thread: its own loop and listener on the shared port. */
static void *worker_main(void *arg)
{
    bworker *w = arg;
    struct evconnlistener *l;

    l = evconnlistener_new_bind(w->base, NULL, NULL,
                                LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT |
                                    LEV_OPT_CLOSE_ON_FREE,
                                1024, (struct sockaddr *)&w->sin, sizeof w->sin);
    if (!l || !evhttp_bind_listener(w->http, l)) {
        fprintf(stderr, "gridgate bench baseline: cannot listen\n");
        return NULL;
    }
    while (!stopping) {
        struct timeval tv = { 0, 200000 };

        event_base_loopexit(w->base, &tv);
        event_base_dispatch(w->base);
    }
    return NULL;
}

/* on_signal - stop every thread within 200 ms. */
static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

int gg_cmd_bench_baseline(int argc, char **argv)
{
    const char *file = NULL, *listen = NULL;
    long long nth = 0;
    char err[512], host[64];
    gg_config *cfg = NULL;
    bworker *w = NULL;
    int port = 0, rc = 1, n = 0;
    const char *pg, *db;

    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-c") == 0)
            file = argv[i + 1];
        else if (strcmp(argv[i], "--listen") == 0)
            listen = argv[i + 1];
        else if (strcmp(argv[i], "--threads") == 0 &&
                 gg_cli_parse_int(argv[i + 1], 1, MAX_THREADS, &nth) == 0)
            ;
        else
            goto usage;
    }
    if (!file || !listen || argc % 2 || sscanf(listen, "%63[^:]:%d", host, &port) != 2)
        goto usage;
    if (gg_config_load(file, &cfg, err, sizeof err) != GG_OK) {
        fprintf(stderr, "gridgate bench baseline: %s\n", err);
        return 1;
    }
    gg_log_set_level(GG_LOG_WARN);
    if (gg_token_key_load(gg_config_str(cfg, "security.token_key"), token_key) != GG_OK) {
        fprintf(stderr, "gridgate bench baseline: cannot load security.token_key\n");
        goto out;
    }
    n = nth ? (int)nth : (int)gg_config_int(cfg, "utility.workers");
    w = calloc((size_t)n, sizeof *w);
    if (!w)
        goto out;
    pg = gg_config_str(cfg, "utility.marketing_pg");
    db = gg_config_str(cfg, "utility.marketing_db");
    for (int i = 0; i < n; i++) {
        gg_err e = pg && pg[0] ? gg_mkt_open_pg(pg, gg_config_str(cfg, "utility.marketing_queries"),
                                                &w[i].mkt)
                               : gg_mkt_open(db, &w[i].mkt);

        if (e != GG_OK) {
            fprintf(stderr, "gridgate bench baseline: cannot open the marketing database: %s\n",
                    gg_strerror(e));
            goto out;
        }
        w[i].ctx.mkt = w[i].mkt;
        w[i].ctx.token_key = token_key;
        w[i].ctx.token_ttl_ms = gg_config_int(cfg, "security.token_ttl_days") * 86400000LL;
        w[i].max_body = (size_t)gg_config_int(cfg, "http.max_body");
        w[i].base = event_base_new();
        w[i].http = w[i].base ? evhttp_new(w[i].base) : NULL;
        if (!w[i].http)
            goto out;
        evhttp_set_gencb(w[i].http, on_request, &w[i]);
        w[i].sin.sin_family = AF_INET;
        w[i].sin.sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, host, &w[i].sin.sin_addr);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < n; i++)
        pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    fprintf(stderr, "bench baseline: %d threads on %s:%d (%s)\n", n, host, port,
            gg_mkt_backend(w[0].mkt));
    for (int i = 0; i < n; i++)
        pthread_join(w[i].th, NULL);
    rc = 0;
out:
    for (int i = 0; w && i < n; i++) {
        if (w[i].http)
            evhttp_free(w[i].http);
        if (w[i].base)
            event_base_free(w[i].base);
        gg_mkt_close(w[i].mkt);
    }
    free(w);
    gg_config_free(cfg);
    return rc;
usage:
    fprintf(stderr, "usage: gridgate bench baseline -c UTILITY.conf --listen HOST:PORT "
                    "[--threads N]\n");
    return 2;
}
