/* chan_int.h - internals shared by channel.c (life cycle: threads, sockets,
 * reconnects, timers) and link.c (the protocol on one authenticated
 * connection). Not a contract for anyone outside src/channel.
 *
 * Threads of one channel (commit.c has the details):
 *   loop      - the libevent thread (channel.c, link.c): sockets, TLS,
 *               frames. It makes no store call that can wait for a commit,
 *               except once per connection start (gg_commit_open and
 *               gg_store_mark for the HELLO).
 *   reader    - reads the next messages of xmit (gg_store_browse) from a
 *               position the loop sets, woken directly by the store's
 *               watcher, and reads ahead on its own; the loop sends what
 *               it hands over as a batch. (The store holds its lock across
 *               a commit's fsync, so even a read can wait that long.)
 *   committer - commits inbound batches (gg_store_receive) in arrival
 *               order, merging the batches queued meanwhile into one
 *               transaction; the loop acknowledges each when it is durable.
 *   deleter   - deletes acknowledged messages from xmit
 *               (gg_store_delete_upto), coalesced: at most one delete every
 *               GG_CHAN_DELETE_MS, up to the highest mark acknowledged.
 *
 * Everything here is touched only by the loop thread, except `stats` and
 * `ctx` (under `mu`), the commit.c state (under `qmu`) and the events made
 * active from other threads (read_ev by the reader, done_ev by the
 * committer, stop_ev by gg_channel_stop, reload_ev by gg_channel_reload).
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
#define GG_CHAN_RX_JOBS 64             /* inbound batches awaiting commit: stop reading here */
#define GG_CHAN_RX_BYTES (8u << 20)    /* ... or at this many frame bytes */
#define GG_CHAN_MERGE_BYTES (4u << 20) /* batches merged into one receive, about */
#define GG_CHAN_DELETE_MS 25           /* at most one xmit delete commit this often */

/* An inbound BATCH on its way through the committer (commit.c). */
typedef struct gg_rx_job {
    struct gg_rx_job *next;
    uint64_t gen;             /* the connection it arrived on (gg_conn.gen) */
    uint8_t *frame;           /* owned copy of the frame; NULL: a progress note */
    size_t total;             /* frame bytes */
    gg_frame_item *items;     /* parsed, pointing into frame */
    size_t n;
    size_t fresh, skipped;    /* items newly committed / dropped at or below the mark */
    int64_t mark;             /* the mark once durable: what the ACK carries */
    gg_err err;               /* GG_OK, or the store error that ends the link */
} gg_rx_job;

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
    uint64_t gen;             /* this connection's number for the committer (0: none) */
    int64_t mark_in;          /* our mark for the peer: highest seq acknowledged */
    size_t rx_jobs, rx_bytes; /* batches handed to the committer, not yet done */
    int rx_paused;            /* reading stopped at GG_CHAN_RX_JOBS / _BYTES */
    /* outbound: messages the reader found after cursor, not yet sent */
    gg_msg **pre;
    size_t npre;
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
    struct event *tick_ev, *retry_ev, *done_ev, *read_ev, *stop_ev, *reload_ev;
    pthread_t thread;
    int thread_started;
    int watching;             /* the store wakes the reader on xmit commits */

    gg_conn *active;          /* the authenticated connection, if any */
    gg_conn *pending[GG_CHAN_PENDING_MAX];
    int backoff_ms;
    int ever_up;
    int stopping;
    gg_buf out;               /* scratch for outgoing frames */

    pthread_mutex_t mu;       /* guards stats and the ctx pointer */
    gg_channel_stats stats;

    /* commit.c: committer, deleter and reader threads, all under qmu */
    uint64_t next_gen;        /* loop only: the last connection number given */
    pthread_mutex_t qmu;
    pthread_cond_t rx_cv;     /* committer: jobs queued, live_gen changed, stop */
    pthread_cond_t idle_cv;   /* loop: the committer left its store call */
    pthread_cond_t del_cv;    /* deleter: target raised, stop */
    gg_rx_job *rx_head, *rx_tail;     /* queued for the committer */
    gg_rx_job *done_head, *done_tail; /* finished, for done_ev */
    uint64_t live_gen;        /* jobs of other connections are dropped */
    int64_t rx_mark;          /* committer's mark for the peer (-1: not read yet) */
    int rx_busy;              /* committer inside gg_store_receive */
    int rx_full;              /* committer waiting for room (a held episode) */
    int64_t del_target, del_done; /* highest mark acknowledged / deleted up to */
    int del_idle;             /* deleter waiting for a target (not coalescing) */
    int q_stop;
    pthread_t rx_thread, del_thread;
    int rx_started, del_started, q_init;
    /* the reader: a position, a browse wanted, one result slot */
    pthread_cond_t rd_cv;     /* reader: browse wanted, slot emptied, stop */
    uint64_t rd_gen;          /* position: connection (0: none, the reader idles) */
    int64_t rd_after;         /* position: the next browse reads after this id */
    size_t rd_max;            /* messages per browse */
    int rd_req;               /* browse at the position: moved, xmit grew, read-ahead */
    int rd_done;              /* the slot holds a result */
    uint64_t rd_res_gen;      /* the slot: position it was read at, messages, error */
    int64_t rd_res_after;
    gg_msg **rd_msgs;
    size_t rd_n;
    gg_err rd_err;
    pthread_t rd_thread;
    int rd_started;
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
/* gg_link_done - apply the committer's finished jobs (done_ev): ACK what
 * is durable, resume reading; may close the active connection. */
void gg_link_done(gg_channel *ch);
/* gg_link_read_done - the reader's result is ready (read_ev): send it. */
void gg_link_read_done(gg_channel *ch);
/* gg_link_free - release what link.c hung on c (not the bufferevent). */
void gg_link_free(gg_conn *c);

/* commit.c */
/* gg_commit_init - the locks and conditions; GG_ENOMEM on failure. */
gg_err gg_commit_init(gg_channel *ch);
/* gg_commit_start - start the committer, deleter and reader threads. */
gg_err gg_commit_start(gg_channel *ch);
/* gg_commit_stop - stop the three threads (the deleter first deletes what
 * is acknowledged), join them and free every job and result left; safe if
 * never started. */
void gg_commit_stop(gg_channel *ch);
/* gg_commit_open - a new connection gen starts: wait until the committer is
 * out of any store call (so the store's mark is final for the HELLO), then
 * accept jobs of gen only. */
void gg_commit_open(gg_channel *ch, uint64_t gen);
/* gg_commit_cancel - connection gen ends: drop its queued jobs; one in a
 * store call completes and is dropped after. */
void gg_commit_cancel(gg_channel *ch, uint64_t gen);
/* gg_commit_submit - queue job (owned by the committer from now on). */
void gg_commit_submit(gg_channel *ch, gg_rx_job *job);
/* gg_commit_take_done - the finished jobs, in order; the caller frees them
 * with gg_rx_job_free. */
gg_rx_job *gg_commit_take_done(gg_channel *ch);
/* gg_rx_job_free - free one job (not the list after it). */
void gg_rx_job_free(gg_rx_job *j);
/* gg_read_seek - have the reader deliver the messages of xmit after
 * `after` (at most max, about GG_CHAN_BATCH_BYTES, per result) for
 * connection gen: at once if there are some, else when a commit adds some
 * (gg_read_kick). After each result it moves on past it by itself, so the
 * loop calls this only when its cursor differs from where the reader is
 * (a new connection, a batch that did not take all it was given); a call
 * at the reader's position does nothing. read_ev tells a result is ready. */
void gg_read_seek(gg_channel *ch, uint64_t gen, int64_t after, size_t max);
/* gg_read_kick - xmit may have grown: browse again at the position (the
 * store watcher; the tick, as a fallback). Never waits for the store. */
void gg_read_kick(gg_channel *ch);
/* gg_read_reset - connection gen ends: the reader idles and a result read
 * for gen is dropped. */
void gg_read_reset(gg_channel *ch, uint64_t gen);
/* gg_read_take - the result, if one is ready: 1 and the fields (msgs owned
 * by the caller: gg_msgs_free), else 0. Empty reads are never handed over;
 * a result with err != GG_OK has no messages. */
int gg_read_take(gg_channel *ch, uint64_t *gen, int64_t *after, gg_msg ***msgs, size_t *n,
                 gg_err *err);
/* gg_commit_delete_upto - the peer acknowledged mark: have the deleter
 * remove xmit messages up to it, soon (never waits). */
void gg_commit_delete_upto(gg_channel *ch, int64_t mark);

#endif
