/* store.h - the durable queue store of one site (SQLite in WAL mode).
 *
 * Owns one database file holding named queues of opaque messages, the
 * channel's inbound sequence marks and the dead-letter queue. Every call
 * that changes state returns GG_OK only after its transaction is durable
 * (synchronous=FULL in WAL mode); on any error nothing of the call is
 * applied. Thread-safe: any thread may call any function. The store never
 * looks inside message bytes.
 *
 * Message states: ready -> leased (gg_store_get) -> gone (gg_store_ack) or
 * ready again with backouts+1 (gg_store_backout, or the lease runs out), or
 * dead (dead-letter queue) when backouts reach the threshold. Storage errors
 * are GG_EIO, a full disk GG_ENOSPC, a locked database GG_EBUSY.
 * docs/store.md has the schema, states and invariants.
 */
#ifndef GG_STORE_STORE_H
#define GG_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define GG_QUEUE_NAME_MAX 64

typedef struct gg_store gg_store;

typedef struct gg_store_opts {
    int64_t max_depth;      /* per queue; 0 = unlimited */
    int64_t max_bytes;      /* per queue; 0 = unlimited */
    int backout_threshold;  /* dead-letter at this many backouts; 0 = never */
    int64_t max_db_bytes;   /* cap on the database file; past it writes fail
                             * GG_ENOSPC (a disk-full seam for tests); 0 = none */
} gg_store_opts;

/* A message as read from the store. Owned by the caller: gg_msg_free. */
typedef struct gg_msg {
    int64_t id;                        /* store-assigned, strictly increasing */
    char queue[GG_QUEUE_NAME_MAX];
    char dest[GG_QUEUE_NAME_MAX];      /* destination queue at the peer ("" if none) */
    int64_t put_ms;                    /* wall time of the put */
    int64_t expiry_ms;                 /* 0 = never expires */
    int backouts;
    size_t len;
    uint8_t *data;
} gg_msg;

void gg_msg_free(gg_msg *m);

/* One message of an inbound channel batch (borrowed pointers). */
typedef struct gg_store_item {
    int64_t seq;          /* sender's sequence number, strictly increasing */
    const char *queue;    /* local queue to put it on */
    int64_t expiry_ms;
    const void *data;
    size_t len;
} gg_store_item;

/* gg_store_open - open or create the store at path. opts may be NULL for
 * defaults (no limits, threshold 5). */
gg_err gg_store_open(const char *path, const gg_store_opts *opts, gg_store **out);

/* gg_store_close - close; NULL is fine. Callers must have stopped using it. */
void gg_store_close(gg_store *st);

/* gg_store_put - append a message to queue. dest may be NULL. expiry_ms 0 =
 * never. GG_EFULL if the queue's limits would be exceeded. id_out may be NULL. */
gg_err gg_store_put(gg_store *st, const char *queue, const char *dest,
                    const void *data, size_t len, int64_t expiry_ms, int64_t *id_out);

/* gg_store_get - lease the oldest ready, unexpired message of queue for
 * lease_ms. GG_EEMPTY if there is none. Expired messages met on the way are
 * removed and counted. */
gg_err gg_store_get(gg_store *st, const char *queue, int64_t lease_ms, gg_msg **out);

/* gg_store_ack - remove a leased message for good. GG_ENOTFOUND if unknown. */
gg_err gg_store_ack(gg_store *st, int64_t id);

/* gg_store_backout - return a leased message to ready with backouts+1, or to
 * the dead-letter queue when the threshold is reached. */
gg_err gg_store_backout(gg_store *st, int64_t id);

/* gg_store_ack_put - in one transaction: ack ack_id and put a new message
 * (a worker's reply replacing its request). */
gg_err gg_store_ack_put(gg_store *st, int64_t ack_id, const char *queue, const char *dest,
                        const void *data, size_t len, int64_t expiry_ms);

/* gg_store_browse - read up to max_msgs messages (and about max_bytes) of
 * queue with id > after_id, in id order, without leasing them. *out is an
 * array of *n messages; free with gg_msgs_free. GG_OK with *n == 0 if none.
 * The first message is returned whatever its size; max_bytes 0 = no bound. */
gg_err gg_store_browse(gg_store *st, const char *queue, int64_t after_id, size_t max_msgs,
                       size_t max_bytes, gg_msg ***out, size_t *n);
void gg_msgs_free(gg_msg **msgs, size_t n);

/* gg_store_delete_upto - remove every message of queue with id <= upto. */
gg_err gg_store_delete_upto(gg_store *st, const char *queue, int64_t upto);

/* gg_store_receive - channel receiver: in one transaction, put each item
 * whose seq is above the mark of channel onto its queue, and raise the mark
 * to the highest seq seen. Items at or below the mark are dropped
 * (resends). *mark_out gets the new mark. GG_EFULL (nothing applied) if a
 * queue limit would be exceeded. */
gg_err gg_store_receive(gg_store *st, const char *channel, const gg_store_item *items,
                        size_t n, int64_t *mark_out);

/* gg_store_mark - the last sequence number committed from channel (0 if none). */
gg_err gg_store_mark(gg_store *st, const char *channel, int64_t *mark);

/* gg_store_depth - ready plus leased messages on queue. */
gg_err gg_store_depth(gg_store *st, const char *queue, int64_t *depth);

/* gg_store_wait - block until a commit adds a message to queue (put,
 * receive, ack_put, backout, replay) after this call began, or timeout_ms
 * passes (spurious wake-ups are allowed). A put between a caller's
 * GG_EEMPTY and this call is not seen: consumers use gg_store_get_wait. */
void gg_store_wait(gg_store *st, const char *queue, int timeout_ms);

/* gg_store_get_wait - gg_store_get, waiting up to timeout_ms for a message
 * when the queue has none ready; never misses a put made meanwhile.
 * GG_EEMPTY when the time is up. */
gg_err gg_store_get_wait(gg_store *st, const char *queue, int64_t lease_ms, int timeout_ms,
                         gg_msg **out);

/* gg_store_watch - call fn(arg, queue) after every commit that adds a message
 * to queue. fn runs on the committing thread and must only signal (no store
 * calls). Up to 8 watchers. */
typedef void (*gg_store_watch_fn)(void *arg, const char *queue);
gg_err gg_store_watch(gg_store *st, const char *queue, gg_store_watch_fn fn, void *arg);

/* Counters since open (committed operations only), and one gauge. */
typedef struct gg_store_stats {
    int64_t puts;        /* messages added: put, ack_put, receive, replay */
    int64_t gets;        /* leases granted */
    int64_t acks;
    int64_t backouts;    /* gg_store_backout calls plus lease expiries */
    int64_t expired;     /* removed unread past their expiry */
    int64_t dead;        /* moved to the dead-letter queue */
    int64_t dropped;     /* received items at or below the mark (resends) */
    int64_t dead_depth;  /* gauge: messages now in the dead-letter queue */
} gg_store_stats;

/* gg_store_get_stats - a consistent snapshot of the counters. */
gg_err gg_store_get_stats(gg_store *st, gg_store_stats *out);

typedef struct gg_queue_info {
    char name[GG_QUEUE_NAME_MAX];
    int64_t depth;           /* ready plus leased */
    int64_t bytes;           /* sum of message lengths */
    int64_t oldest_put_ms;   /* put time of the first message */
} gg_queue_info;

/* gg_store_queues - the queues holding messages, by name, at most max into
 * out (caller's array); *n gets the count. */
gg_err gg_store_queues(gg_store *st, gg_queue_info *out, size_t max, size_t *n);

#define GG_DEAD_REASON_MAX 128

/* A dead letter, without its bytes. */
typedef struct gg_dead_info {
    int64_t id;                        /* the message's id when it died */
    char queue[GG_QUEUE_NAME_MAX];     /* the queue it died on */
    char dest[GG_QUEUE_NAME_MAX];
    char reason[GG_DEAD_REASON_MAX];   /* "backout threshold", or a caller's */
    int64_t dead_ms, put_ms, expiry_ms;
    int backouts;
    size_t len;
} gg_dead_info;

/* gg_store_dead_letter - move message id to the dead-letter queue at once
 * with reason (truncated to GG_DEAD_REASON_MAX-1; no personal data).
 * GG_ENOTFOUND if unknown. For a message a worker can never process. */
gg_err gg_store_dead_letter(gg_store *st, int64_t id, const char *reason);

/* gg_store_dead_list - dead letters with id > after_id in id order, at most
 * max into out (caller's array); *n gets the count. */
gg_err gg_store_dead_list(gg_store *st, int64_t after_id, gg_dead_info *out, size_t max,
                          size_t *n);

/* gg_store_dead_replay - in one transaction, put dead letter id back on its
 * queue as a new message (new id, backouts 0, same dest and expiry) and
 * remove it from the dead-letter queue. GG_ENOTFOUND if unknown, GG_EFULL
 * if the queue is full (nothing applied). new_id may be NULL. */
gg_err gg_store_dead_replay(gg_store *st, int64_t id, int64_t *new_id);

#endif
