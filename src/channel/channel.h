/* channel.h - the site-to-site link: one TLS 1.3 connection carrying both
 * directions, once and only once.
 *
 * Outbound: messages put on the store queue GG_XMIT_QUEUE (with dest = the
 * peer's queue) are sent in framed, sequence-numbered batches; the sequence
 * number is the message's store id. Inbound: a batch is committed with
 * gg_store_receive (messages and the channel mark in one transaction), then
 * acknowledged; the sender deletes only acknowledged messages. On every
 * (re)connect each side announces its mark, so resends are dropped and
 * nothing is lost. Runs its own thread; start/stop from any one thread.
 */
#ifndef GG_CHANNEL_CHANNEL_H
#define GG_CHANNEL_CHANNEL_H

#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

#define GG_XMIT_QUEUE "xmit"

/* The largest message the channel carries (a frame is at most 8 MiB). Puts
 * onto GG_XMIT_QUEUE must stay below it; a bigger message found there is
 * skipped with an error and counted in stats.dropped, never sent. */
#define GG_CHANNEL_MSG_MAX (8 * 1024 * 1024 - 4096)

typedef struct gg_channel gg_channel;

typedef struct gg_channel_cfg {
    int listen;               /* 1: accept on address; 0: connect to it */
    const char *address;      /* "host:port" */
    const char *local_name;   /* our site name (mark key is the peer name) */
    const char *peer_name;    /* required CN/SAN of the peer certificate */
    const char *allow;        /* comma-separated CIDRs, checked before TLS; NULL = any */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    int tls12;                /* also allow TLS 1.2 (ECDHE+AEAD only) */
    int heartbeat_ms;         /* default 2000 */
    int dead_ms;              /* default 10000 */
    int backoff_max_ms;       /* default 30000 */
    int batch_max;            /* messages per batch, default 256 */
    int window;               /* unacknowledged batches, default 8 */
} gg_channel_cfg;

typedef enum gg_channel_state {
    GG_CHANNEL_STOPPED = 0,
    GG_CHANNEL_RETRYING = 1,
    GG_CHANNEL_RUNNING = 2,
} gg_channel_state;

typedef struct gg_channel_stats {
    gg_channel_state state;
    int64_t seq_out_acked;    /* highest of our seqs the peer has acknowledged */
    int64_t seq_in;           /* our mark: highest peer seq committed */
    int64_t batches_in_flight;
    int64_t bytes_out, bytes_in;
    int64_t reconnects;       /* links established after the first one */
    int64_t refused;          /* connections refused (allow-list, TLS) */
    int64_t dropped;          /* xmit messages skipped: too big or no dest */
    int64_t held;             /* inbound batches delayed because a queue was full */
} gg_channel_stats;

/* gg_channel_start - validate cfg, load TLS material, bind the listening
 * socket (listen mode), start the thread. Config errors (unreadable key,
 * bad CIDR) return GG_ECONFIG at once and log why; GG_EIO if the address
 * cannot be bound. cfg's strings are copied. The store must outlive the
 * channel. */
gg_err gg_channel_start(const gg_channel_cfg *cfg, gg_store *st, gg_channel **out);

/* gg_channel_stop - close the link, join the thread, free. NULL is fine. */
void gg_channel_stop(gg_channel *ch);

/* gg_channel_get_stats - a consistent snapshot; safe from any thread. */
void gg_channel_get_stats(gg_channel *ch, gg_channel_stats *out);

const char *gg_channel_state_name(gg_channel_state s);

/* gg_channel_listen_port - the TCP port a listening channel is bound to
 * (useful with address "127.0.0.1:0"); 0 in connect mode. */
int gg_channel_listen_port(gg_channel *ch);

#endif
