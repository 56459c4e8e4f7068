/* channel.c - life cycle of the channel (see channel.h): configuration,
 * the TLS context, the listener with its allow-list or the reconnecting
 * connector, timers, the thread, stats. The protocol spoken on an
 * authenticated connection is in link.c, the durable writes (inbound
 * commits, deletes of what the peer acknowledged) on their own threads in
 * commit.c.
 *
 * Connection life: accepted or connected (PH_TLS) -> handshake done and
 * peer name checked -> active, HELLO sent (PH_HELLO) -> peer HELLO
 * received (PH_RUN) -> closed by error, EOF, silence past dead_ms,
 * replacement by a newer authenticated connection, or stop.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>
#include <event2/thread.h>
#include <openssl/err.h>

#include "channel/chan_int.h"
#include "channel/tls.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"

static const char COMP[] = "channel";

const char *gg_channel_state_name(gg_channel_state s)
{
    switch (s) {
    case GG_CHANNEL_STOPPED: return "stopped";
    case GG_CHANNEL_RETRYING: return "retrying";
    case GG_CHANNEL_RUNNING: return "running";
    default: return "unknown";
    }
}

/* ---- wake-ups from the store --------------------------------------------
 * Every commit that adds to xmit wakes the reader thread directly (no hop
 * through the loop); the reader browses and hands the loop what it found.
 * When the store refuses a watcher, the tick kicks the reader instead
 * (polling every heartbeat). */

/* waker_fn - store watcher: runs on the committing thread, only signals. */
static void waker_fn(void *arg, const char *queue)
{
    (void)queue;
    gg_read_kick(arg);
}

/* waker_attach - have the store wake ch's reader on commits to xmit. */
static void waker_attach(gg_channel *ch)
{
    gg_err e = gg_store_watch(ch->st, GG_XMIT_QUEUE, waker_fn, ch);
    if (e != GG_OK) {
        gg_warn(COMP, "msg=\"cannot watch xmit, polling every heartbeat\" err=%s",
                gg_errname(e));
        return;
    }
    ch->watching = 1;
}

/* waker_detach - stop the store's calls; when it returns none is running. */
static void waker_detach(gg_channel *ch)
{
    if (!ch->watching)
        return;
    gg_store_unwatch(ch->st, waker_fn, ch);
    ch->watching = 0;
}

/* ---- connections --------------------------------------------------------- */

/* addr_str - "ip:port" of sa into out (size >= 64). */
static void addr_str(const struct sockaddr *sa, char *out, size_t outsz)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        port = ntohs(s4->sin_port);
        snprintf(out, outsz, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
        snprintf(out, outsz, "[%s]:%u", ip, port);
    } else {
        snprintf(out, outsz, "unknown");
    }
}

/* set_nodelay - frames are small and acks are latency: no Nagle. */
static void set_nodelay(evutil_socket_t fd)
{
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* pending_count - handshakes in progress. */
static int pending_count(const gg_channel *ch)
{
    int n = 0;
    for (int i = 0; i < GG_CHAN_PENDING_MAX; i++)
        n += ch->pending[i] != NULL;
    return n;
}

/* pending_remove - forget c as a handshake in progress (if it is one). */
static void pending_remove(gg_channel *ch, gg_conn *c)
{
    for (int i = 0; i < GG_CHAN_PENDING_MAX; i++) {
        if (ch->pending[i] == c)
            ch->pending[i] = NULL;
    }
}

/* schedule_retry - connect mode: next attempt after the backoff with
 * jitter (half fixed, half random), then double the backoff. */
static void schedule_retry(gg_channel *ch)
{
    uint32_t r;
    int base = ch->backoff_ms;
    gg_random(&r, sizeof r);
    int delay = base / 2 + (int)(r % (uint32_t)(base / 2 + 1));
    struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
    evtimer_add(ch->retry_ev, &tv);
    ch->backoff_ms = base > ch->cfg.backoff_max_ms / 2 ? ch->cfg.backoff_max_ms : base * 2;
    gg_debug(COMP, "msg=\"reconnect scheduled\" delay_ms=%d", delay);
}

/* drop - close c; logged: the caller already logged why. */
static void drop(gg_conn *c, const char *reason, int logged)
{
    gg_channel *ch = c->ch;
    if (ch->active == c) {
        ch->active = NULL;
        pthread_mutex_lock(&ch->mu);
        ch->stats.state = ch->stopping ? GG_CHANNEL_STOPPED : GG_CHANNEL_RETRYING;
        ch->stats.batches_in_flight = 0;
        ch->stats.up_since_ms = 0;
        pthread_mutex_unlock(&ch->mu);
        if (ch->stopping)
            gg_info(COMP, "msg=\"link closed\" peer=%s addr=%s reason=\"%s\"", ch->peer_name,
                    c->addr, reason);
        else
            gg_warn(COMP, "msg=\"link down\" peer=%s addr=%s reason=\"%s\"", ch->peer_name,
                    c->addr, reason);
        /* A link that stayed up a while resets the backoff. */
        if (c->ph == PH_RUN && gg_mono_us() - c->run_us >= 1000000)
            ch->backoff_ms = GG_CHAN_RETRY_MIN_MS;
    } else {
        pending_remove(ch, c);
        if (!logged)
            gg_info(COMP, "msg=\"connection closed\" addr=%s reason=\"%s\"", c->addr, reason);
    }
    bufferevent_free(c->bev);
    gg_link_free(c);
    free(c);
    if (!ch->cfg.listen && !ch->stopping && !ch->active && pending_count(ch) == 0)
        schedule_retry(ch);
}

void gg_chan_close(gg_conn *c, const char *reason)
{
    drop(c, reason, 0);
}

/* refuse - count and log a peer that failed authentication (stage
 * "handshake" or "check"), close it. */
static void refuse(gg_conn *c, const char *stage, const char *why)
{
    pthread_mutex_lock(&c->ch->mu);
    c->ch->stats.refused++;
    if (strcmp(stage, "check") == 0)
        c->ch->stats.refused_check++;
    else
        c->ch->stats.refused_tls++;
    pthread_mutex_unlock(&c->ch->mu);
    gg_warn(COMP, "msg=\"peer refused\" stage=%s addr=%s reason=\"%s\"", stage, c->addr, why);
    drop(c, why, 1);
}

/* describe_failure - why a bufferevent reported what; *tls set if TLS
 * (not the network) said no. */
static void describe_failure(struct bufferevent *bev, short what, char *out, size_t outsz,
                             int *tls)
{
    unsigned long code;
    size_t off = 0;
    *tls = 0;
    out[0] = '\0';
    for (;;) {
        code = bufferevent_get_openssl_error(bev);
        if (code == 0)
            break;
        /* libevent also queues SSL_get_error() values (library 0): the
         * socket error below says more. */
        if (ERR_GET_LIB(code) == 0)
            continue;
        char one[200];
        *tls = 1;
        ERR_error_string_n(code, one, sizeof one);
        if (off + 2 < outsz) {
            int n = snprintf(out + off, outsz - off, "%s%s", off ? "; " : "", one);
            if (n > 0)
                off += (size_t)n < outsz - off ? (size_t)n : outsz - off - 1;
        }
    }
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (*tls && vr != X509_V_OK && off + 2 < outsz)
        snprintf(out + off, outsz - off, "; verify: %s", X509_verify_cert_error_string(vr));
    if (off > 0)
        return;
    if (what & BEV_EVENT_EOF)
        snprintf(out, outsz, "closed by peer");
    else if (what & BEV_EVENT_ERROR)
        snprintf(out, outsz, "socket: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    else
        snprintf(out, outsz, "event 0x%x", (unsigned)what);
}

/* on_connected - TLS is up on c: check the peer, replace any older link,
 * send HELLO. */
static void on_connected(gg_conn *c)
{
    gg_channel *ch = c->ch;
    char why[200];
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    if (gg_tls_check_peer(ssl, ch->peer_name, why, sizeof why) != GG_OK) {
        refuse(c, "check", why);
        return;
    }
    /* Close the old link while c is still pending, so no reconnect is
     * scheduled in between. */
    if (ch->active)
        gg_chan_close(ch->active, "replaced by a newer connection");
    pending_remove(ch, c);
    ch->active = c;
    gg_err e = gg_link_start(c);
    if (e != GG_OK) {
        snprintf(why, sizeof why, "cannot start link (%s)", gg_errname(e));
        gg_chan_close(c, why);
    }
}

/* event_cb - bufferevent events of a connection (arg = conn). */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    gg_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        on_connected(c);
        return;
    }
    char why[600];
    int tls;
    describe_failure(bev, what, why, sizeof why, &tls);
    if (c->ph == PH_TLS && tls)
        refuse(c, "handshake", why);
    else
        gg_chan_close(c, why);
}

/* new_ssl - an SSL from the current context (which gg_channel_reload may
 * swap from another thread: taken under mu, released once SSL_new holds
 * its own reference). */
static SSL *new_ssl(gg_channel *ch, int server)
{
    pthread_mutex_lock(&ch->mu);
    SSL_CTX *ctx = ch->ctx;
    SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&ch->mu);
    SSL *ssl = gg_tls_new(ctx, ch->peer_name, server);
    SSL_CTX_free(ctx);
    return ssl;
}

/* conn_add - wrap bev as a new pending connection. NULL (bev freed) when
 * there is no room or memory. */
static gg_conn *conn_add(gg_channel *ch, struct bufferevent *bev, const char *addr)
{
    int slot = -1;
    for (int i = 0; i < GG_CHAN_PENDING_MAX && slot < 0; i++) {
        if (!ch->pending[i])
            slot = i;
    }
    gg_conn *c = slot >= 0 ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        bufferevent_free(bev);
        return NULL;
    }
    c->ch = ch;
    c->bev = bev;
    c->ph = PH_TLS;
    c->born_us = c->last_rx_us = gg_mono_us();
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    ch->pending[slot] = c;
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    bufferevent_setcb(bev, gg_link_read_cb, gg_link_write_cb, event_cb, c);
    bufferevent_setwatermark(bev, EV_WRITE, GG_CHAN_OUT_LOW, 0);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    return c;
}

/* accept_cb - a TCP connection arrived: allow-list first, before any TLS
 * byte is read, then start the handshake. */
static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    gg_channel *ch = arg;
    char addr[64];
    (void)lis;
    (void)salen;
    addr_str(sa, addr, sizeof addr);
    if (ch->allow && !gg_allow_check(ch->allow, sa)) {
        pthread_mutex_lock(&ch->mu);
        ch->stats.refused++;
        ch->stats.refused_allow++;
        pthread_mutex_unlock(&ch->mu);
        gg_warn(COMP, "msg=\"peer refused\" stage=allow addr=%s reason=\"not in allow list\"", addr);
        evutil_closesocket(fd);
        return;
    }
    if (pending_count(ch) == GG_CHAN_PENDING_MAX) {
        pthread_mutex_lock(&ch->mu);
        ch->stats.refused++;
        ch->stats.refused_limit++;
        pthread_mutex_unlock(&ch->mu);
        gg_warn(COMP, "msg=\"peer refused\" stage=limit addr=%s reason=\"too many handshakes\"", addr);
        evutil_closesocket(fd);
        return;
    }
    set_nodelay(fd);
    SSL *ssl = new_ssl(ch, 1);
    struct bufferevent *bev = NULL;
    if (ssl)
        bev = bufferevent_openssl_socket_new(ch->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    /* If the bufferevent cannot be made, libevent has freed ssl
     * (CLOSE_ON_FREE) but the socket is still ours; conn_add frees the
     * bufferevent, and with it both, when it fails. */
    if (!bev) {
        evutil_closesocket(fd);
        gg_error(COMP, "msg=\"cannot set up connection\" addr=%s", addr);
        return;
    }
    if (!conn_add(ch, bev, addr)) {
        gg_error(COMP, "msg=\"cannot set up connection\" addr=%s", addr);
        return;
    }
    gg_debug(COMP, "msg=\"connection accepted\" addr=%s", addr);
}

/* accept_error_cb - accept() failed (e.g. out of descriptors): log, go on. */
static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
    (void)lis;
    (void)arg;
    gg_warn(COMP, "msg=\"accept failed\" err=\"%s\"",
            evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* resolve - getaddrinfo of ch->host:ch->port; caller frees *res. */
static int resolve(const gg_channel *ch, int passive, struct addrinfo **res)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    return getaddrinfo(ch->host, ch->port, &hints, res);
}

/* connect_start - connect mode: one attempt; failures schedule the next. */
static void connect_start(gg_channel *ch)
{
    struct addrinfo *res = NULL;
    char addr[64];
    if (ch->stopping || ch->active || pending_count(ch) > 0)
        return;
    int rc = resolve(ch, 0, &res);
    if (rc != 0) {
        gg_warn(COMP, "msg=\"cannot resolve peer\" address=%s err=\"%s\"", ch->address,
                gai_strerror(rc));
        schedule_retry(ch);
        goto out;
    }
    addr_str(res->ai_addr, addr, sizeof addr);
    SSL *ssl = new_ssl(ch, 0);
    struct bufferevent *bev = NULL;
    if (ssl)
        bev = bufferevent_openssl_socket_new(ch->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    gg_conn *c = bev ? conn_add(ch, bev, addr) : NULL;
    if (!c) {
        gg_error(COMP, "msg=\"cannot set up connection\" addr=%s", addr);
        schedule_retry(ch);
        goto out;
    }
    if (bufferevent_socket_connect(bev, res->ai_addr, (int)res->ai_addrlen) != 0) {
        gg_chan_close(c, "connect failed");
        goto out;
    }
    set_nodelay(bufferevent_getfd(bev));
    gg_debug(COMP, "msg=\"connecting\" addr=%s", addr);
out:
    if (res)
        freeaddrinfo(res);
}

/* ---- timers and the thread ------------------------------------------------ */

/* tick_cb - every heartbeat: time out handshakes and silent peers, PING,
 * and kick the reader (the fallback when no store wake-up arrives). */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    gg_channel *ch = arg;
    int64_t now = gg_mono_us(), dead = (int64_t)ch->cfg.dead_ms * 1000;
    (void)fd;
    (void)what;
    for (int i = 0; i < GG_CHAN_PENDING_MAX; i++) {
        gg_conn *c = ch->pending[i];
        if (c && now - c->born_us > dead)
            gg_chan_close(c, "handshake timed out");
    }
    gg_conn *c = ch->active;
    if (!c)
        return;
    /* While reading waits for the committer the peer's frames are not
     * read: no verdict. */
    if (!c->rx_paused && now - c->last_rx_us > dead) {
        gg_chan_close(c, "peer silent past dead_ms");
        return;
    }
    gg_read_kick(ch);
    gg_err e = gg_link_ping(c);
    if (e == GG_OK)
        e = gg_link_pump(c);
    if (e != GG_OK)
        gg_chan_close(c, "cannot send");
}

/* retry_cb - connect mode: the backoff ran out. */
static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_start(arg);
}

/* read_cb - the reader has the next messages of xmit. */
static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gg_link_read_done(arg);
}

/* done_cb - the committer finished inbound batches: acknowledge them. */
static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gg_link_done(arg);
}

/* reload_cb - new TLS material is in place: re-establish the link with it.
 * In connect mode the next attempt starts after the shortest backoff; in
 * listen mode the peer reconnects. Batches in flight are resent and the
 * receiver drops what it already committed. */
static void reload_cb(evutil_socket_t fd, short what, void *arg)
{
    gg_channel *ch = arg;
    (void)fd;
    (void)what;
    if (ch->stopping || !ch->active)
        return;
    ch->backoff_ms = GG_CHAN_RETRY_MIN_MS;
    gg_chan_close(ch->active, "certificates reloaded");
}

/* stop_cb - close everything and leave the loop (runs on the thread). */
static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    gg_channel *ch = arg;
    (void)fd;
    (void)what;
    ch->stopping = 1;
    for (int i = 0; i < GG_CHAN_PENDING_MAX; i++) {
        if (ch->pending[i])
            gg_chan_close(ch->pending[i], "channel stopping");
    }
    if (ch->active)
        gg_chan_close(ch->active, "channel stopping");
    if (ch->lis) {
        evconnlistener_free(ch->lis);
        ch->lis = NULL;
    }
    event_base_loopbreak(ch->base);
}

/* thread_main - the channel's event loop. */
static void *thread_main(void *arg)
{
    gg_channel *ch = arg;
    sigset_t set;
    pthread_setname_np(pthread_self(), "gg-chan-loop");
    /* A write to a closed socket must fail with EPIPE, not kill us. */
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    event_base_loop(ch->base, EVLOOP_NO_EXIT_ON_EMPTY);
    /* stop_cb freed the connections, but a bufferevent with a deferred
     * callback still queued is only finalised by a later loop pass
     * (event_base_free cancels, and so leaks, it): run the queue dry. */
    for (int i = 0; i < 4; i++)
        event_base_loop(ch->base, EVLOOP_NONBLOCK);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------ */

/* channel_free - release everything; the thread is not running. */
static void channel_free(gg_channel *ch)
{
    waker_detach(ch);
    gg_commit_stop(ch); /* before the base: the committer activates done_ev */
    if (ch->lis)
        evconnlistener_free(ch->lis);
    struct event *evs[] = { ch->tick_ev, ch->retry_ev, ch->done_ev,
                            ch->read_ev, ch->stop_ev,  ch->reload_ev };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
        if (evs[i])
            event_free(evs[i]);
    }
    if (ch->base)
        event_base_free(ch->base);
    SSL_CTX_free(ch->ctx);
    gg_allow_free(ch->allow);
    free(ch->address);
    free(ch->local_name);
    free(ch->peer_name);
    free(ch->allow_spec);
    free(ch->ca);
    free(ch->cert);
    free(ch->key);
    gg_buf_free(&ch->out);
    pthread_mutex_destroy(&ch->mu);
    free(ch);
}

/* check_cfg - defaults and bounds; a reason in err on failure. */
static gg_err check_cfg(gg_channel_cfg *c, char *err, size_t errsz)
{
    if (c->heartbeat_ms == 0)
        c->heartbeat_ms = 2000;
    if (c->dead_ms == 0)
        c->dead_ms = 10000;
    if (c->backoff_max_ms == 0)
        c->backoff_max_ms = 30000;
    if (c->batch_max == 0)
        c->batch_max = 256;
    if (c->window == 0)
        c->window = 8;
    const char *bad = NULL;
    if (!c->address || !*c->address)
        bad = "address is required";
    else if (!c->local_name || !*c->local_name || strlen(c->local_name) >= GG_FRAME_SITE_MAX)
        bad = "local_name must have 1..63 characters";
    else if (!c->peer_name || !*c->peer_name || strlen(c->peer_name) >= GG_FRAME_SITE_MAX)
        bad = "peer_name must have 1..63 characters";
    else if (c->heartbeat_ms < 10 || c->heartbeat_ms > 600000)
        bad = "heartbeat_ms must be 10..600000";
    else if (c->dead_ms <= c->heartbeat_ms || c->dead_ms > 3600000)
        bad = "dead_ms must exceed heartbeat_ms and be at most 3600000";
    else if (c->backoff_max_ms < GG_CHAN_RETRY_MIN_MS || c->backoff_max_ms > 3600000)
        bad = "backoff_max_ms must be 100..3600000";
    else if (c->batch_max < 1 || c->batch_max > 65536)
        bad = "batch_max must be 1..65536";
    else if (c->window < 1 || c->window > 1024)
        bad = "window must be 1..1024";
    if (bad) {
        snprintf(err, errsz, "%s", bad);
        return GG_ECONFIG;
    }
    return GG_OK;
}

/* split_address - "host:port" or "[v6]:port" into host and port. */
static gg_err split_address(gg_channel *ch, char *err, size_t errsz)
{
    const char *a = ch->address, *colon = strrchr(a, ':');
    size_t hl;
    const char *h = a;
    if (!colon || !colon[1] || strlen(colon + 1) >= sizeof ch->port)
        goto bad;
    hl = (size_t)(colon - a);
    if (hl >= 2 && a[0] == '[' && a[hl - 1] == ']') {
        h = a + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof ch->host)
        goto bad;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            goto bad;
    }
    memcpy(ch->host, h, hl);
    ch->host[hl] = '\0';
    snprintf(ch->port, sizeof ch->port, "%s", colon + 1);
    return GG_OK;
bad:
    snprintf(err, errsz, "address \"%s\" is not host:port", a);
    return GG_ECONFIG;
}

/* dup_or_null - strdup that keeps NULL; *fail set on allocation failure. */
static char *dup_or_null(const char *s, int *fail)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *fail = 1;
    return d;
}

/* start_listener - bind the listening socket and learn its port. */
static gg_err start_listener(gg_channel *ch, char *err, size_t errsz)
{
    struct addrinfo *res = NULL;
    gg_err e = GG_EIO;
    int rc = resolve(ch, 1, &res);
    if (rc != 0) {
        snprintf(err, errsz, "cannot resolve %s: %s", ch->address, gai_strerror(rc));
        e = GG_ECONFIG;
        goto out;
    }
    ch->lis = evconnlistener_new_bind(ch->base, accept_cb, ch,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                          LEV_OPT_CLOSE_ON_EXEC,
                                      16, res->ai_addr, (int)res->ai_addrlen);
    if (!ch->lis) {
        snprintf(err, errsz, "cannot listen on %s: %s", ch->address,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        goto out;
    }
    evconnlistener_set_error_cb(ch->lis, accept_error_cb);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evconnlistener_get_fd(ch->lis), (struct sockaddr *)&ss, &sl) == 0)
        ch->listen_port = ss.ss_family == AF_INET6
                              ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                              : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    e = GG_OK;
out:
    if (res)
        freeaddrinfo(res);
    return e;
}

gg_err gg_channel_start(const gg_channel_cfg *cfg, gg_store *st, gg_channel **out)
{
    char err[600] = "";
    int fail = 0;
    gg_err e = GG_ENOMEM;
    gg_channel *ch = calloc(1, sizeof *ch);
    if (!ch)
        return GG_ENOMEM;
    pthread_mutex_init(&ch->mu, NULL);
    ch->st = st;
    ch->cfg = *cfg;
    ch->out.max = GG_FRAME_HDR + GG_FRAME_MAX;
    ch->backoff_ms = GG_CHAN_RETRY_MIN_MS;
    ch->address = dup_or_null(cfg->address, &fail);
    ch->local_name = dup_or_null(cfg->local_name, &fail);
    ch->peer_name = dup_or_null(cfg->peer_name, &fail);
    ch->allow_spec = dup_or_null(cfg->allow, &fail);
    ch->ca = dup_or_null(cfg->ca_file, &fail);
    ch->cert = dup_or_null(cfg->cert_file, &fail);
    ch->key = dup_or_null(cfg->key_file, &fail);
    if (fail)
        goto out;
    ch->cfg.address = ch->address;
    ch->cfg.local_name = ch->local_name;
    ch->cfg.peer_name = ch->peer_name;
    ch->cfg.allow = ch->allow_spec;
    ch->cfg.ca_file = ch->ca;
    ch->cfg.cert_file = ch->cert;
    ch->cfg.key_file = ch->key;
    e = check_cfg(&ch->cfg, err, sizeof err);
    if (e == GG_OK)
        e = split_address(ch, err, sizeof err);
    if (e == GG_OK && ch->allow_spec)
        e = gg_allow_parse(ch->allow_spec, &ch->allow, err, sizeof err);
    if (e == GG_OK)
        e = gg_tls_ctx_new(ch->ca, ch->cert, ch->key, ch->cfg.tls12, &ch->ctx, err, sizeof err);
    if (e != GG_OK)
        goto out;

    e = GG_ENOMEM;
    evthread_use_pthreads(); /* before the base, so it gets a lock */
    ch->base = event_base_new();
    if (!ch->base)
        goto out;
    ch->tick_ev = event_new(ch->base, -1, EV_PERSIST, tick_cb, ch);
    ch->retry_ev = evtimer_new(ch->base, retry_cb, ch);
    ch->done_ev = event_new(ch->base, -1, 0, done_cb, ch);
    ch->read_ev = event_new(ch->base, -1, 0, read_cb, ch);
    ch->stop_ev = event_new(ch->base, -1, 0, stop_cb, ch);
    ch->reload_ev = event_new(ch->base, -1, 0, reload_cb, ch);
    if (!ch->tick_ev || !ch->retry_ev || !ch->done_ev || !ch->read_ev || !ch->stop_ev ||
        !ch->reload_ev)
        goto out;
    if (ch->cfg.listen) {
        e = start_listener(ch, err, sizeof err);
        if (e != GG_OK)
            goto out;
    }
    struct timeval hb = { ch->cfg.heartbeat_ms / 1000, (ch->cfg.heartbeat_ms % 1000) * 1000 };
    struct timeval now = { 0, 0 };
    evtimer_add(ch->tick_ev, &hb);
    if (!ch->cfg.listen)
        evtimer_add(ch->retry_ev, &now);
    e = gg_commit_init(ch);
    if (e == GG_OK)
        e = gg_commit_start(ch);
    if (e != GG_OK) {
        snprintf(err, sizeof err, "cannot create threads");
        goto out;
    }
    waker_attach(ch);
    ch->stats.state = GG_CHANNEL_RETRYING;
    if (pthread_create(&ch->thread, NULL, thread_main, ch) != 0) {
        e = GG_ENOMEM;
        snprintf(err, sizeof err, "cannot create thread");
        goto out;
    }
    ch->thread_started = 1;
    gg_info(COMP, "msg=\"started\" mode=%s address=%s local=%s peer=%s tls=%s",
            ch->cfg.listen ? "listen" : "connect", ch->address, ch->local_name, ch->peer_name,
            ch->cfg.tls12 ? "1.2+" : "1.3");
    *out = ch;
    ch = NULL;
    e = GG_OK;
out:
    if (ch) {
        gg_error(COMP, "msg=\"cannot start\" err=%s reason=\"%s\"", gg_errname(e),
                 err[0] ? err : "out of memory");
        channel_free(ch);
    }
    return e;
}

void gg_channel_stop(gg_channel *ch)
{
    if (!ch)
        return;
    if (ch->thread_started) {
        event_active(ch->stop_ev, EV_READ, 0);
        pthread_join(ch->thread, NULL);
    }
    gg_info(COMP, "msg=\"stopped\" peer=%s", ch->peer_name);
    channel_free(ch);
}

void gg_channel_get_stats(gg_channel *ch, gg_channel_stats *out)
{
    pthread_mutex_lock(&ch->mu);
    *out = ch->stats;
    pthread_mutex_unlock(&ch->mu);
}

gg_err gg_channel_reload(gg_channel *ch)
{
    char err[600] = "";
    SSL_CTX *ctx = NULL, *old;
    if (!ch)
        return GG_OK;
    gg_err e = gg_tls_ctx_new(ch->ca, ch->cert, ch->key, ch->cfg.tls12, &ctx, err, sizeof err);
    if (e != GG_OK) {
        GG_STAT(ch, reload_failures++);
        gg_error(COMP, "msg=\"reload failed, keeping the current certificates\" err=%s "
                       "reason=\"%s\"", gg_errname(e), err);
        return e;
    }
    pthread_mutex_lock(&ch->mu);
    old = ch->ctx;
    ch->ctx = ctx;
    ch->stats.reloads++;
    pthread_mutex_unlock(&ch->mu);
    SSL_CTX_free(old); /* connections still using it hold their own reference */
    gg_info(COMP, "msg=\"certificates reloaded\" cert=%s ca=%s", ch->cert, ch->ca);
    if (ch->thread_started)
        event_active(ch->reload_ev, EV_READ, 0);
    return GG_OK;
}

int gg_channel_listen_port(gg_channel *ch)
{
    return ch->listen_port;
}
