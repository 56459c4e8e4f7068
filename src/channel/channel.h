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
    int64_t refused;          /* connections refused: the sum of the four below */
    int64_t refused_allow;    /* ... by the allow-list, before any TLS byte */
    int64_t refused_limit;    /* ... because GG_CHAN_PENDING_MAX handshakes ran */
    int64_t refused_tls;      /* ... by the TLS handshake (version, CA, expiry, name) */
    int64_t refused_check;    /* ... by the peer check after the handshake */
    int64_t dropped;          /* xmit messages skipped: too big or no dest */
    int64_t held;             /* times inbound batches waited because a queue was full */
    int64_t seq_out_sent;     /* highest of our seqs sent on the current link */
    int64_t batches_out, batches_in; /* batches sent / committed and acknowledged */
    int64_t msgs_out, msgs_in;       /* messages acknowledged by the peer / committed */
    int64_t resends_dropped;  /* inbound items at or below our mark (resends) */
    int64_t reloads, reload_failures; /* gg_channel_reload outcomes */
    int64_t xmit_reads;       /* reads of xmit by the channel (gg_store_browse calls) */
    int64_t last_rx_mono_us;  /* gg_mono_us() of the last frame from the peer; 0 = none */
    int64_t up_since_ms;      /* wall time the current link came up; 0 = not running */
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

/* gg_channel_reload - re-read the CA, certificate and key files named in
 * the config (SIGHUP). On success new handshakes use them at once and the
 * current link, if any, is closed and re-established with them; nothing
 * queued is lost (the resume protocol covers the batches in flight). On
 * failure (GG_ECONFIG, reason logged) the old material stays in use and
 * the link is untouched. Safe from any thread; NULL is a no-op (GG_OK). */
gg_err gg_channel_reload(gg_channel *ch);

/* gg_channel_metrics_text - the channel's Prometheus text (every
 * gridgate_channel_* series, the same in both roles; docs/protocol.md
 * lists them). ch NULL reads as stopped with zero counters. Returns a
 * string the caller frees, NULL if out of memory. */
char *gg_channel_metrics_text(gg_channel *ch);

/* gg_channel_listen_port - the TCP port a listening channel is bound to
 * (useful with address "127.0.0.1:0"); 0 in connect mode. */
int gg_channel_listen_port(gg_channel *ch);

#endif
