/* web.c - the citizen web page (static files) and the admin listener.
 *
 * Static files: only names that gg_api_match accepted (a plain file name
 * directly in http.web_root with a known extension) are opened, relative
 * to the web_root directory fd, without following symlinks, and only
 * regular files up to STATIC_MAX bytes are served. No directory listing.
 * Admin: GET /healthz and GET /metrics (Prometheus text) for loopback
 * clients only; its requests are logged at debug level (scrapes are many).
 * /metrics writes the loop's own counters at once and reads the store's
 * families on the offload thread (offload.h: a store read may wait behind
 * a commit and its fsync), answering when they are in; a scraper that
 * hangs up meanwhile is forgotten.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "portal/portal_int.h"
#include "portal/offload.h"
#include "portal/shed.h"
#include "portal/push.h"

#define STATIC_MAX (4u << 20)

/* not_found - the JSON 404. */
static void not_found(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri)
{
    gg_api_status st;

    gg_api_fail(&st, 404, "not_found", "no such resource");
    gg_portal_respond_error(p, req, ri, &st, NULL, 0);
}

/* read_file - the whole regular file at name under dir into a new evbuffer,
 * or NULL (missing, not regular, too large, unreadable). */
static struct evbuffer *read_file(int dir, const char *name)
{
    struct evbuffer *b = NULL;
    struct stat sb;
    char chunk[16384];
    size_t total = 0;
    int fd;

    fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > STATIC_MAX)
        goto fail;
    b = evbuffer_new();
    if (b == NULL)
        goto fail;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        total += (size_t)n;
        if (total > STATIC_MAX || evbuffer_add(b, chunk, (size_t)n) != 0)
            goto fail;
    }
    close(fd);
    return b;
fail:
    if (b != NULL)
        evbuffer_free(b);
    close(fd);
    return NULL;
}

/* gg_portal_static - serve one file of the web page. */
void gg_portal_static(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                      const gg_api_route *r)
{
    const char *ctype = gg_api_content_type(r->file);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b;

    if (p->web_fd < 0 || ctype == NULL) {
        not_found(p, req, ri);
        return;
    }
    b = read_file(p->web_fd, r->file);
    if (b == NULL) {
        not_found(p, req, ri);
        return;
    }
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    if (strncmp(ctype, "text/html", 9) == 0)
        evhttp_add_header(h, "Content-Security-Policy",
                          "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                          "base-uri 'none'; form-action 'self'");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
    p->c.http[200]++;
    gg_portal_log_request(ri, 200);
}

/* metric - one sample line. */
static void metric(struct evbuffer *b, const char *name, const char *labels, long long v)
{
    if (labels != NULL)
        evbuffer_add_printf(b, "%s{%s} %lld\n", name, labels, v);
    else
        evbuffer_add_printf(b, "%s %lld\n", name, v);
}

/* help - the HELP and TYPE lines of a family. */
static void help(struct evbuffer *b, const char *name, const char *type, const char *text)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* write_metrics - the portal's counters and the channel and queues. */
static void write_metrics(gg_portal *p, struct evbuffer *b)
{
    gg_channel *ch = p->t != NULL ? gg_transport_channel(p->t) : NULL;
    char *chtext;
    char lab[64];
    size_t i;

    help(b, "gridgate_http_requests_total", "counter",
         "Requests answered by the portal API, by HTTP status (499: client left).");
    for (i = 0; i < GG_PORTAL_STATUS_MAX; i++) {
        if (p->c.http[i] == 0)
            continue;
        snprintf(lab, sizeof lab, "code=\"%zu\"", i);
        metric(b, "gridgate_http_requests_total", lab, (long long)p->c.http[i]);
    }
    help(b, "gridgate_shed_total", "counter",
         "Requests answered 503 overloaded at once (load shedding).");
    metric(b, "gridgate_shed_total", NULL, (long long)gg_shed_count(p->shed));
    help(b, "gridgate_reply_rate", "gauge",
         "Replies from the utility per second, over the shedding window.");
    metric(b, "gridgate_reply_rate", NULL, (long long)(gg_shed_rate(p->shed, gg_mono_us()) + 0.5));
    help(b, "gridgate_pending_calls", "gauge", "HTTP calls waiting for the utility's reply.");
    metric(b, "gridgate_pending_calls", NULL, (long long)gg_pending_count(p->pending));
    help(b, "gridgate_requests_relayed_total", "counter", "Requests queued for the utility.");
    metric(b, "gridgate_requests_relayed_total", NULL, (long long)p->c.relayed);
    help(b, "gridgate_requests_refused_total", "counter",
         "Requests that could not be queued, by reason.");
    metric(b, "gridgate_requests_refused_total", "reason=\"full\"", (long long)p->c.relay_full);
    metric(b, "gridgate_requests_refused_total", "reason=\"error\"",
           (long long)p->c.relay_error);
    help(b, "gridgate_request_timeouts_total", "counter", "Calls answered 504 timeout.");
    metric(b, "gridgate_request_timeouts_total", NULL, (long long)p->c.timeouts);
    help(b, "gridgate_clients_gone_total", "counter", "Callers that left while waiting.");
    metric(b, "gridgate_clients_gone_total", NULL, (long long)p->c.clients_gone);
    help(b, "gridgate_replies_total", "counter", "Replies taken from the replies queue.");
    metric(b, "gridgate_replies_total", "result=\"answered\"", (long long)p->c.replies_answered);
    metric(b, "gridgate_replies_total", "result=\"no_caller\"",
           (long long)p->c.replies_no_caller);
    metric(b, "gridgate_replies_total", "result=\"rejected\"", (long long)p->c.replies_rejected);
    gg_portal_write_rejects(p, b);
    gg_push_write_metrics(p->push, b);  /* push.c */

    chtext = gg_channel_metrics_text(ch);
    if (chtext != NULL)
        evbuffer_add(b, chtext, strlen(chtext));
    free(chtext);
}

/* A /metrics answer waiting for the store's families (offload thread). */
typedef struct metrics_job {
    gg_portal *p;
    struct evhttp_request *req;   /* NULL once the scraper left */
    struct evhttp_connection *conn;
    struct evbuffer *b;           /* the loop's part, written already */
    gg_store *st;
    gg_buf sb;                    /* the store's part */
    gg_err e;
    gg_reqinfo ri;
} metrics_job;

/* store_metrics - the store's own families: queue gauges, counters, commit
 * latency (any thread). */
static gg_err store_metrics(gg_store *st, gg_buf *sb)
{
    static const char *const queues[] = { GG_Q_REPLIES, GG_Q_EVENTS, GG_XMIT_QUEUE };

    return gg_store_metrics(st, queues, sizeof queues / sizeof queues[0], sb);
}

/* metrics_read - offload thread: read the store's part. */
static void metrics_read(void *arg)
{
    metrics_job *j = arg;

    j->e = store_metrics(j->st, &j->sb);
}

/* metrics_gone - the scraper's connection closes before the answer; as in
 * relay.c, a request libevent detached is ours to free. */
static void metrics_gone(struct evhttp_connection *conn, void *arg)
{
    metrics_job *j = arg;
    struct evhttp_request *req = j->req;

    (void)conn;
    j->req = NULL;
    j->conn = NULL;
    if (req != NULL && evhttp_request_get_connection(req) == NULL)
        evhttp_request_free(req);
}

/* peer_is_loopback - the admin client connects from a loopback address. */
static int peer_is_loopback(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;

    if (conn == NULL)
        return 0;
    evhttp_connection_get_peer(conn, &addr, &port);
    if (addr == NULL)
        return 0;
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
           strncmp(addr, "::ffff:127.", 11) == 0;
}

/* admin_send - answer an admin request. */
static void admin_send(struct evhttp_request *req, const gg_reqinfo *ri, int status,
                       const char *ctype, struct evbuffer *b)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, status, gg_api_reason(status), b);
    gg_debug("admin", "msg=\"request\" method=%s path=%s status=%d duration_us=%lld",
             ri->method, ri->log_path, status, (long long)(gg_mono_us() - ri->start_us));
}

/* metrics_done - loop: the store's part is in; answer and free the job. */
static void metrics_done(void *arg)
{
    metrics_job *j = arg;

    if (j->req != NULL) {
        if (j->conn != NULL)
            evhttp_connection_set_closecb(j->conn, NULL, NULL);
        if (j->e == GG_OK)
            evbuffer_add(j->b, j->sb.data, j->sb.len);
        admin_send(j->req, &j->ri, 200, "text/plain; version=0.0.4; charset=utf-8", j->b);
    }
    gg_buf_free(&j->sb);
    evbuffer_free(j->b);
    free(j);
}

/* send_metrics - answer /metrics: the loop's part now, the store's part
 * from the offload thread (inline if it cannot take the job). Takes b. */
static void send_metrics(gg_portal *p, struct evhttp_request *req, const gg_reqinfo *ri,
                         struct evbuffer *b)
{
    metrics_job *j;

    write_metrics(p, b);
    if (p->t == NULL) {
        admin_send(req, ri, 200, "text/plain; version=0.0.4; charset=utf-8", b);
        evbuffer_free(b);
        return;
    }
    j = calloc(1, sizeof *j);
    if (j != NULL) {
        j->p = p;
        j->req = req;
        j->b = b;
        j->st = gg_transport_store(p->t);
        j->sb = (gg_buf)GG_BUF_INIT(1u << 20);
        j->ri = *ri;
        j->conn = evhttp_request_get_connection(req);
        if (j->conn != NULL)
            evhttp_connection_set_closecb(j->conn, metrics_gone, j);
        if (gg_offload_submit(p->offload, metrics_read, metrics_done, j) == GG_OK)
            return;
        if (j->conn != NULL)
            evhttp_connection_set_closecb(j->conn, NULL, NULL);
        free(j);
    }
    {
        gg_buf sb = GG_BUF_INIT(1u << 20);

        if (store_metrics(gg_transport_store(p->t), &sb) == GG_OK)
            evbuffer_add(b, sb.data, sb.len);
        gg_buf_free(&sb);
    }
    admin_send(req, ri, 200, "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

/* gg_portal_admin_cb - GET /healthz and /metrics on the admin listener. */
void gg_portal_admin_cb(struct evhttp_request *req, void *arg)
{
    gg_portal *p = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    gg_api_method m = cmd == EVHTTP_REQ_GET ? GG_M_GET
                      : cmd == EVHTTP_REQ_HEAD ? GG_M_HEAD : GG_M_OTHER;
    struct evbuffer *b = evbuffer_new();
    gg_api_status st;
    gg_api_route r;
    gg_reqinfo ri;
    char *err = NULL;

    memset(&ri, 0, sizeof ri);
    ri.start_us = gg_mono_us();
    snprintf(ri.method, sizeof ri.method, "%s",
             m == GG_M_GET ? "GET" : m == GG_M_HEAD ? "HEAD" : "OTHER");
    gg_api_log_path(path != NULL ? path : "-", ri.log_path, sizeof ri.log_path);
    if (b == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    if (!peer_is_loopback(req)) {
        gg_api_fail(&st, 403, "forbidden", "the admin listener answers loopback clients only");
    } else {
        gg_api_match_admin(m, path, &r, &st);
        if (st.code == NULL && r.id == GG_ROUTE_METRICS) {
            send_metrics(p, req, &ri, b);  /* takes b */
            return;
        }
        if (st.code == NULL) {
            evbuffer_add_printf(b, "{\"status\":\"ok\",\"channel\":\"%s\"}",
                                gg_portal_channel_state(p));
            admin_send(req, &ri, 200, "application/json; charset=utf-8", b);
            goto out;
        }
        if (st.http == 405 && r.allow != NULL)
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", r.allow);
    }
    err = gg_api_error_json(st.code, st.message, NULL);
    if (err != NULL)
        evbuffer_add(b, err, strlen(err));
    admin_send(req, &ri, st.http, "application/json; charset=utf-8", b);
out:
    free(err);
    evbuffer_free(b);
}
