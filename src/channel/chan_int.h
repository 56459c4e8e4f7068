/* chan_int.h - internals shared by channel.c (life cycle: threads, sockets,
 * reconnects, timers) and link.c (the protocol on one authenticated
 * connection). Not a contract for anyone outside src/channel.
 *
 * Everything here is touched only by the channel's own thread, except
 * `stats` and `ctx` (under `mu`) and the events made active from other
 * threads (wake_ev by the store watcher, stop_ev by gg_channel_stop,
 * reload_ev by gg_channel_reload).
 */
#ifndef GG_CHANNEL_CHAN_INT_H
#define GG_CHANNEL_CHAN_INT_H

#include <pthread.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "channel/allow.h"
#include "channel/channel.h"
#include "channel/frame.h"
#include "core/buf.h"

#define GG_CHAN_PENDING_MAX 4          /* handshakes in progress at once */
#define GG_CHAN_BATCH_BYTES (1u << 20) /* data bytes per outbound batch, about */
#define GG_CHAN_OUT_HIGH (4u << 20)    /* stop filling the socket buffer here */
#define GG_CHAN_OUT_LOW (1u << 20)     /* ... and resume below this */
#define GG_CHAN_RETRY_MIN_MS 100       /* first reconnect delay */
#define GG_CHAN_FULL_MIN_MS 100        /* first retry of a batch refused as full */
#define GG_CHAN_FULL_MAX_MS 2000

/* Phases of one connection: TLS handshake, HELLO exchange, running. */
typedef enum gg_phase { PH_TLS, PH_HELLO, PH_RUN } gg_phase;

typedef struct gg_conn {
    struct gg_channel *ch;
    struct bufferevent *bev;
    gg_phase ph;
    char addr[64];            /* peer "ip:port", for logs */
    int64_t born_us;          /* TCP accepted or connect started */
    int64_t last_rx_us;       /* last frame received */
    int64_t run_us;           /* when the peer's HELLO arrived */
    /* outbound: reset from the peer's HELLO on every connection */
    int64_t cursor;           /* highest seq sent (or skipped) */
    int64_t acked;            /* highest seq the peer acknowledged */
    int64_t *inflight;        /* ring (size cfg.window): last seq of each batch */
    size_t nin, head;
    int out_blocked;          /* pump stopped at GG_CHAN_OUT_HIGH */
    /* inbound */
    int64_t mark_in;          /* our mark for the peer: highest seq committed */
    /* a BATCH the store refused as full, retried by full_ev */
    uint8_t *held;
    size_t held_len;
    int full_ms;
} gg_conn;

struct gg_channel {
    gg_channel_cfg cfg;       /* strings point into the owned copies below */
    char *address, *local_name, *peer_name, *allow_spec, *ca, *cert, *key;
    char host[256], port[16]; /* address split */
    gg_store *st;
    gg_allow *allow;          /* NULL: any address */
    SSL_CTX *ctx;             /* swapped by gg_channel_reload under mu */
    struct event_base *base;
    struct evconnlistener *lis;
    int listen_port;
    struct event *tick_ev, *retry_ev, *full_ev, *wake_ev, *stop_ev, *reload_ev;
    pthread_t thread;
    int thread_started;
    void *waker;              /* store watch registration (channel.c) */

    gg_conn *active;          /* the authenticated connection, if any */
    gg_conn *pending[GG_CHAN_PENDING_MAX];
    int backoff_ms;
    int ever_up;
    int stopping;
    gg_buf out;               /* scratch for outgoing frames */

    pthread_mutex_t mu;       /* guards stats and the ctx pointer */
    gg_channel_stats stats;
};

/* Stats updates under the mutex: GG_STAT(ch, bytes_in += n). */
#define GG_STAT(ch, expr)              \
    do {                               \
        pthread_mutex_lock(&(ch)->mu); \
        (ch)->stats.expr;              \
        pthread_mutex_unlock(&(ch)->mu); \
    } while (0)

/* channel.c */
/* gg_chan_close - drop c (any phase), log why, update state and schedule
 * a reconnect in connect mode. c is freed. */
void gg_chan_close(gg_conn *c, const char *reason);

/* link.c */
/* gg_link_start - c is authenticated and active: send our HELLO. The
 * caller closes c on error. */
gg_err gg_link_start(gg_conn *c);
/* gg_link_read_cb, gg_link_write_cb - bufferevent callbacks (arg = conn). */
void gg_link_read_cb(struct bufferevent *bev, void *arg);
void gg_link_write_cb(struct bufferevent *bev, void *arg);
/* gg_link_pump - send batches while the window and socket buffer allow. */
gg_err gg_link_pump(gg_conn *c);
/* gg_link_ping - send a PING. */
gg_err gg_link_ping(gg_conn *c);
/* gg_link_retry_held - retry the batch held for store room (full_ev); may
 * close c. */
void gg_link_retry_held(gg_conn *c);
/* gg_link_free - release what link.c hung on c (not the bufferevent). */
void gg_link_free(gg_conn *c);

#endif
