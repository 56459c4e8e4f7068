/* admin.c - the utility role's admin HTTP listener on its own thread. */
#include "utility/admin.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"

#define ADMIN_HOST_MAX 256
#define ADMIN_PAGE_MAX (1u << 20)

struct gg_uadmin {
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;      /* activated by gg_uadmin_stop */
    gg_uadmin_render render;
    void *arg;
    pthread_t th;
    int started;
    int port;
};

/* split_address - "host:port" or "[v6]:port" into host and port. */
static gg_err split_address(const char *addr, char *host, size_t hostsz, int *port)
{
    const char *colon;
    const char *h = addr;
    size_t hlen;
    char *end = NULL;
    long p;

    if (addr == NULL)
        return GG_ECONFIG;
    colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr)
        return GG_ECONFIG;
    hlen = (size_t)(colon - addr);
    if (addr[0] == '[') {
        if (hlen < 3 || addr[hlen - 1] != ']')
            return GG_ECONFIG;
        h = addr + 1;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= hostsz)
        return GG_ECONFIG;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || end == NULL || *end != '\0' || p < 0 || p > 65535)
        return GG_ECONFIG;
    *port = (int)p;
    return GG_OK;
}

/* on_request - render the page for a GET and send it. */
static void on_request(struct evhttp_request *req, void *arg)
{
    gg_uadmin *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    struct evbuffer *body = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = NULL;
    int status;

    if (path == NULL || (strcmp(path, "/healthz") != 0 && strcmp(path, "/metrics") != 0)) {
        evhttp_send_error(req, HTTP_NOTFOUND, NULL);
        return;
    }
    f = open_memstream(&text, &len);
    if (f == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    status = a->render(a->arg, path, f);
    if (fclose(f) != 0 || len > ADMIN_PAGE_MAX) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        goto out;
    }
    body = evbuffer_new();
    if (body == NULL || evbuffer_add(body, text, len) != 0) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        goto out;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      strcmp(path, "/metrics") == 0 ? "text/plain; version=0.0.4"
                                                    : "text/plain; charset=utf-8");
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", body);
out:
    if (body != NULL)
        evbuffer_free(body);
    free(text);
}

/* on_stop - runs on the admin thread: leave the loop. An activated event
 * is kept until the loop runs, so a stop right after start is not lost
 * (a bare loopbreak before the loop starts would be). */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    gg_uadmin *a = arg;

    event_base_loopbreak(a->base);
}

/* admin_main - the admin thread: run the event loop until stopped. */
static void *admin_main(void *arg)
{
    gg_uadmin *a = arg;

    event_base_dispatch(a->base);
    return NULL;
}

/* bound_port - the local port of the listener's socket. */
static int bound_port(struct evhttp_bound_socket *bs)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(bs);

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* gg_uadmin_start - bind and start the admin thread. */
gg_err gg_uadmin_start(const char *listen, gg_uadmin_render render, void *arg,
                       gg_uadmin **out)
{
    char host[ADMIN_HOST_MAX];
    struct evhttp_bound_socket *bs;
    gg_uadmin *a = NULL;
    int port = 0;
    gg_err e;

    e = split_address(listen, host, sizeof host, &port);
    if (e != GG_OK) {
        gg_error("admin", "msg=\"bad admin.listen\" value=%s", listen != NULL ? listen : "(unset)");
        return e;
    }
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return GG_ENOMEM;
    a->render = render;
    a->arg = arg;
    a->base = event_base_new();
    if (a->base == NULL) {
        e = GG_ENOMEM;
        goto out;
    }
    a->stop_ev = event_new(a->base, -1, 0, on_stop, a);
    if (a->stop_ev == NULL) {
        e = GG_ENOMEM;
        goto out;
    }
    a->http = evhttp_new(a->base);
    if (a->http == NULL) {
        e = GG_ENOMEM;
        goto out;
    }
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET);
    evhttp_set_max_headers_size(a->http, 8192);
    evhttp_set_max_body_size(a->http, 1024);
    evhttp_set_timeout(a->http, 10);
    evhttp_set_gencb(a->http, on_request, a);
    bs = evhttp_bind_socket_with_handle(a->http, host, (ev_uint16_t)port);
    if (bs == NULL) {
        gg_error("admin", "msg=\"cannot bind admin listener\" address=%s", listen);
        e = GG_EIO;
        goto out;
    }
    a->port = bound_port(bs);
    if (pthread_create(&a->th, NULL, admin_main, a) != 0) {
        e = GG_ENOMEM;
        goto out;
    }
    a->started = 1;
    gg_info("admin", "msg=\"listening\" host=%s port=%d", host, a->port);
    *out = a;
    a = NULL;
    e = GG_OK;
out:
    gg_uadmin_stop(a);
    return e;
}

/* gg_uadmin_port - the port actually bound. */
int gg_uadmin_port(const gg_uadmin *a)
{
    return a->port;
}

/* gg_uadmin_stop - break the loop, join, free; NULL is fine. */
void gg_uadmin_stop(gg_uadmin *a)
{
    if (a == NULL)
        return;
    if (a->started) {
        event_active(a->stop_ev, EV_READ, 0);
        pthread_join(a->th, NULL);
    }
    if (a->http != NULL)
        evhttp_free(a->http);
    if (a->stop_ev != NULL)
        event_free(a->stop_ev);
    if (a->base != NULL)
        event_base_free(a->base);
    free(a);
}
