/* store.h - the durable queue store of one site (SQLite in WAL mode).
 *
 * Owns one database file holding named queues of opaque messages, the
 * channel's inbound sequence marks and the dead-letter queue. Every call
 * that changes state returns GG_OK only after its transaction is durable
 * (synchronous=FULL in WAL mode: the WAL is fsynced); on any error nothing
 * of the call is applied. Concurrent calls share commits (group commit): a
 * caller blocks until the one commit and fsync covering its change are done.
 * Thread-safe: any thread may call any function. The store never looks
 * inside message bytes. One exception to "durable before GG_OK": a commit
 * that only leases messages (gg_store_get*, nothing else) is not fsynced;
 * the next fsynced commit covers it. After a power cut such a lease may be
 * undone (the message is ready again, backouts unchanged); a process crash
 * undoes nothing. Puts, acks, backouts and everything else are durable.
 * The *_many calls do many messages in one call and one transaction, all
 * or nothing, sparing a thread round trip and a commit per message. A
 * caller blocked in a *_get_wait call is handed its message(s) by the
 * commit that makes them ready (leased in that same transaction, as a get
 * would lease them), and returns without another store call.
 *
 * Message states: ready -> leased (gg_store_get) -> gone (gg_store_ack) or
 * ready again with backouts+1 (gg_store_backout, or the lease runs out), or
 * dead (dead-letter queue) when backouts reach the threshold. A message past
 * its expiry is never delivered: it is removed and counted (or dead-lettered
 * with reason "expired" if it was put with GG_MSG_REPORT_EXPIRY). Storage
 * errors are GG_EIO, a full disk GG_ENOSPC (both counted as storage faults
 * and logged as an alarm; the store resumes by itself on the next commit
 * that succeeds), a locked database GG_EBUSY, a queue limit GG_EFULL.
 * docs/store.md has the schema, states, invariants and loss windows.
 */
#ifndef GG_STORE_STORE_H
#define GG_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define GG_QUEUE_NAME_MAX 64

/* Priorities: 0 (default, lowest) .. GG_PRIO_MAX; higher comes out first,
 * the same priority in put order. */
#define GG_PRIO_MAX 9

/* Message flags (gg_store_put_prio). */
#define GG_MSG_REPORT_EXPIRY 1u   /* on expiry, dead-letter with reason "expired"
                                   * (the sender can be told) instead of removing */
#define GG_MSG_FLAGS_ALL 1u

typedef struct gg_store gg_store;

typedef struct gg_store_opts {
    int64_t max_depth;      /* per queue; 0 = unlimited */
    int64_t max_bytes;      /* per queue; 0 = unlimited */
    int backout_threshold;  /* dead-letter at this many backouts; 0 = never */
    int64_t max_db_bytes;   /* cap on the database file; past it writes fail
                             * GG_ENOSPC (a disk-full seam for tests); 0 = none */
    int durability;         /* GG_DURABLE_FULL (0, default) or GG_DURABLE_NORMAL */
} gg_store_opts;

/* Durability settings (docs/store.md states the loss window of each). */
#define GG_DURABLE_FULL 0     /* every commit fsyncs the WAL: nothing acknowledged is lost */
#define GG_DURABLE_NORMAL 1   /* fsync at checkpoints only: a power cut may lose the
                               * last commits; a process crash loses nothing */

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
    int prio;                          /* 0..GG_PRIO_MAX */
    unsigned flags;                    /* GG_MSG_* */
} gg_msg;

void gg_msg_free(gg_msg *m);

/* One message of an inbound channel batch (borrowed pointers). */
typedef struct gg_store_item {
    int64_t seq;          /* sender's sequence number, strictly increasing */
    const char *queue;    /* local queue to put it on */
    int64_t expiry_ms;
    const void *data;
    size_t len;
    int prio;             /* 0..GG_PRIO_MAX (zero-initialise the item) */
    unsigned flags;       /* GG_MSG_* */
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

/* gg_store_put_prio - gg_store_put with a priority (0..GG_PRIO_MAX, higher
 * is got first) and flags (GG_MSG_*). GG_EINVAL if either is out of range. */
gg_err gg_store_put_prio(gg_store *st, const char *queue, const char *dest, const void *data,
                         size_t len, int64_t expiry_ms, int prio, unsigned flags,
                         int64_t *id_out);

/* gg_store_get - lease the oldest ready, unexpired message of the highest
 * priority on queue for lease_ms. GG_EEMPTY if there is none. Expired
 * messages met on the way are removed (or dead-lettered) and counted. */
gg_err gg_store_get(gg_store *st, const char *queue, int64_t lease_ms, gg_msg **out);

/* gg_store_ack - remove a leased message for good. GG_ENOTFOUND if unknown. */
gg_err gg_store_ack(gg_store *st, int64_t id);

/* gg_store_backout - return a leased message to ready with backouts+1, or to
 * the dead-letter queue when the threshold is reached. */
gg_err gg_store_backout(gg_store *st, int64_t id);

/* Most items of one gg_store_put_many / get_many / ack_many call. */
#define GG_STORE_MANY_MAX 1024

/* One message of a gg_store_put_many batch (borrowed pointers; zero-initialise). */
typedef struct gg_store_put_item {
    const char *queue;    /* queue to put it on */
    const char *dest;     /* NULL or "" = none */
    const void *data;
    size_t len;
    int64_t expiry_ms;    /* 0 = never */
    int prio;             /* 0..GG_PRIO_MAX */
    unsigned flags;       /* GG_MSG_* */
} gg_store_put_item;

/* gg_store_put_many - put the n items (1..GG_STORE_MANY_MAX, in order, ids
 * increasing) in one transaction: all or nothing, GG_OK once one commit
 * has made all of them durable. ids_out (NULL, or room for n) gets their
 * ids. GG_EINVAL (nothing done) if any item is invalid as for
 * gg_store_put_prio; GG_EFULL (nothing applied) if any queue limit would
 * be exceeded, the batch's own earlier items counted; a storage fault
 * fails the whole batch. */
gg_err gg_store_put_many(gg_store *st, const gg_store_put_item *items, size_t n,
                         int64_t *ids_out);

/* gg_store_get_many - lease up to max (1..GG_STORE_MANY_MAX) messages of
 * queue for lease_ms in one transaction, in the order n gg_store_get calls
 * would (expired ones met are removed or dead-lettered as there). out is
 * the caller's array of max pointers; *n gets how many were leased (each
 * freed with gg_msg_free). GG_EEMPTY with *n == 0 if none was ready; on an
 * error nothing is leased and *n is 0. */
gg_err gg_store_get_many(gg_store *st, const char *queue, int64_t lease_ms, size_t max,
                         gg_msg **out, size_t *n);

/* gg_store_get_many_wait - gg_store_get_many, waiting up to timeout_ms for
 * a message when none is ready (as gg_store_get_wait: a commit may hand
 * it up to max messages). */
gg_err gg_store_get_many_wait(gg_store *st, const char *queue, int64_t lease_ms, size_t max,
                              int timeout_ms, gg_msg **out, size_t *n);

/* gg_store_ack_many - remove the n (1..GG_STORE_MANY_MAX) messages ids in
 * one transaction: all or nothing, GG_OK once durable. GG_ENOTFOUND
 * (nothing applied) if any id is unknown or appears twice. */
gg_err gg_store_ack_many(gg_store *st, const int64_t *ids, size_t n);

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
 * GG_EEMPTY when the time is up, GG_ECLOSED if the store is closed
 * meanwhile (gg_store_close waits for it to leave), GG_EINVAL for a bad
 * name, lease_ms <= 0 or a NULL out. A commit that makes k messages of
 * the queue ready serves at most k such waiters (not all of them): it
 * leases them the messages in its own transaction (hand-off, after its
 * COMMIT succeeded) or wakes them to look; a waiter that got a message
 * without using its wake-up hands it on. */
gg_err gg_store_get_wait(gg_store *st, const char *queue, int64_t lease_ms, int timeout_ms,
                         gg_msg **out);

/* gg_store_get_wait_first - lease from first if it holds a ready message,
 * else from second (as gg_store_get); when neither does, wait up to
 * timeout_ms for a message on either, as gg_store_get_wait. GG_EINVAL on
 * a bad name. For a priority lane: a message on first never waits behind
 * second's. */
gg_err gg_store_get_wait_first(gg_store *st, const char *first, const char *second,
                               int64_t lease_ms, int timeout_ms, gg_msg **out);

/* gg_store_watch - call fn(arg, queue) after every commit that adds a message
 * to queue. fn runs on the store's writer thread and must only signal (no store
 * calls). Up to 8 watchers. */
typedef void (*gg_store_watch_fn)(void *arg, const char *queue);
gg_err gg_store_watch(gg_store *st, const char *queue, gg_store_watch_fn fn, void *arg);

/* gg_store_unwatch - remove every watcher registered with fn and arg (any
 * queue). When it returns, fn is not running with arg and will not be
 * called with it again. GG_ENOTFOUND if there was none. Must not be called
 * from a watcher, nor while holding a lock a watcher takes. */
gg_err gg_store_unwatch(gg_store *st, gg_store_watch_fn fn, void *arg);

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
    int64_t commits;     /* transactions committed */
    int64_t batched;     /* calls those commits covered (batched / commits = batch size;
                          * a *_many call counts once) */
    int64_t faults;      /* storage faults: commits failed with GG_EIO or GG_ENOSPC */
    int faulted;         /* 1 while the last commit attempt failed on storage */
    int64_t syncs;       /* commits that fsynced the WAL (all but lease-only ones
                          * under GG_DURABLE_FULL; none under NORMAL) */
    int64_t wakeups;     /* callers of gg_store_wait / *_get_wait woken by a commit:
                          * one taker per message made ready, every plain waiter */
    int64_t checkpoints; /* WAL checkpoints completed: by the checkpoint thread, and
                          * by the committer once the WAL is long (docs/store.md) */
    int64_t handoffs;    /* messages a commit leased straight to a blocked taker
                          * (*_get_wait), which then made no store call of its own */
} gg_store_stats;

/* gg_store_get_stats - a consistent snapshot of the counters. */
gg_err gg_store_get_stats(gg_store *st, gg_store_stats *out);

typedef struct gg_queue_info {
    char name[GG_QUEUE_NAME_MAX];
    int64_t depth;           /* ready plus leased */
    int64_t bytes;           /* sum of message lengths */
    int64_t oldest_put_ms;   /* put time of the first message; 0 if empty */
    int64_t dead;            /* its messages in the dead-letter queue */
} gg_queue_info;

/* gg_store_queues - the queues the store knows (ever put to, or holding
 * dead letters), by name, at most max into out (caller's array); *n gets
 * the count. */
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
    int prio;
    unsigned flags;
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

/* gg_store_dead_get - one dead letter with its bytes: *info (may be NULL)
 * and *out (the bytes as a gg_msg with id, queue, dest, times and prio;
 * free with gg_msg_free). GG_ENOTFOUND if unknown. */
gg_err gg_store_dead_get(gg_store *st, int64_t id, gg_dead_info *info, gg_msg **out);

/* gg_store_dead_purge - remove dead letter id for good, or every dead
 * letter when id is 0. *n (may be NULL) gets how many. GG_ENOTFOUND if id
 * is unknown. */
gg_err gg_store_dead_purge(gg_store *st, int64_t id, int64_t *n);

/* gg_store_metrics - append the store's Prometheus text to b: per queue
 * gridgate_queue_depth, _oldest_age_seconds, _bytes and _dead_letters (for
 * every queue the store knows, and each of the n names in always, at 0 if
 * the store has never seen it; always may be NULL), the operation
 * counters, the dead-letter depth, the commit latency histogram, the
 * storage faults and the file sizes. */
gg_err gg_store_metrics(gg_store *st, const char *const *always, size_t n, gg_buf *b);

/* gg_store_reclaim - give free pages back to the file system now (an
 * incremental vacuum and a WAL checkpoint with truncation). The store also
 * does this by itself when enough pages are free. */
gg_err gg_store_reclaim(gg_store *st);

/* ---- Side tables (side.c) -------------------------------------------------
 * Another module may keep tables of its own in the store's file and change
 * them in the store's group commit, ordered with the store's own changes:
 * what it commits is made durable by the same fsync as the queue changes
 * it precedes. The side module owns its tables (prefix their names with
 * the module's name) and never touches the store's own tables. */
struct sqlite3;

/* gg_store_side_fn - the side module's change, run inside the store's
 * transaction on its connection (the only use of db allowed: never commit,
 * begin or roll back, nor keep db beyond close of the side module). Runs
 * with the store's lock held: no store call from inside. May be run twice
 * for one call (a batch redone under savepoints), so it starts from its
 * arguments and overwrites its outputs. Returns GG_OK, or an error that
 * undoes this call's changes alone (GG_EIO, GG_ENOSPC for SQLite errors). */
typedef gg_err (*gg_store_side_fn)(struct sqlite3 *db, void *arg);

/* gg_store_exec - run fn(db, arg) as one operation of the store's group
 * commit; its error, or the commit's. durable 1: GG_OK once the commit is
 * durable, as for every other call. durable 0: GG_OK once committed but
 * not fsynced (its own commit skips the fsync when nothing else in it
 * needs one): a process crash loses nothing, a power cut may undo it, and
 * the next durable call of the store (put, ack, ...) makes it durable with
 * its own fsync, never after: for a record that only has to be durable by
 * the time a later ack is. Under GG_DURABLE_NORMAL both behave as every
 * commit does. GG_EINVAL for NULL st or fn; GG_ECLOSED once closing. */
gg_err gg_store_exec(gg_store *st, const char *op, gg_store_side_fn fn, void *arg, int durable);

/* gg_store_side_locked - run fn(db, arg) with the store's lock held, outside
 * any transaction and between commits: for work on the connection that
 * changes no row (finalizing a side module's statements at its close).
 * Works while the store is closing, until gg_store_close returns. fn's
 * error is returned; GG_EINVAL for NULL st or fn. */
gg_err gg_store_side_locked(gg_store *st, gg_store_side_fn fn, void *arg);

/* gg_store_hook_fn - a side module's pre-COMMIT hook: run in every
 * transaction of the store that reaches its COMMIT (whatever its ops),
 * last, just before the COMMIT, on the store's connection with its lock
 * held (the rules of gg_store_side_fn; it is not run twice for one
 * transaction). committed is 1 if the transaction this hook last ran in
 * committed, 0 if that COMMIT failed and was rolled back, or on the hook's
 * first run: what it wrote then is known durable-ordered only once
 * committed is 1 (what it writes is committed with the store's own
 * changes of the same transaction, and made durable by the same or the
 * next fsynced commit). An error fails the COMMIT and so every op of the
 * transaction (fail closed: use it for records that must be committed no
 * later than the changes they guard). Must be quick: every commit waits. */
typedef gg_err (*gg_store_hook_fn)(struct sqlite3 *db, void *arg, int committed);

/* gg_store_side_hook - register fn(db, arg, committed) as a pre-COMMIT hook
 * of st, from the next transaction on. At most 8 hooks per store:
 * GG_EFULL past that; GG_EINVAL for NULL st or fn. */
gg_err gg_store_side_hook(gg_store *st, gg_store_hook_fn fn, void *arg);

/* gg_store_side_unhook - remove st's hooks registered with fn and arg;
 * when it returns, fn is not running and will not run again with arg.
 * Call before freeing arg (closing st also forgets st's hooks, after its
 * writer has stopped, so no hook runs once gg_store_close began its
 * teardown). GG_ENOTFOUND if there was none; never from
 * inside a hook or a store op. */
gg_err gg_store_side_unhook(gg_store *st, gg_store_hook_fn fn, void *arg);

/* gg_store_side_reader - open a read-only connection of the caller's own on
 * st's file (same VFS, busy timeout 5 s). In WAL mode its reads never wait
 * for the store's writer, and each read transaction sees every COMMIT that
 * returned before it began. The caller owns *out (one thread at a time):
 * keep each read short (reset statements at once, a held read stops
 * checkpoints), sqlite3_close it before closing st. GG_EIO (logged) or
 * GG_ENOMEM on failure, *out NULL. */
gg_err gg_store_side_reader(gg_store *st, struct sqlite3 **out);

#endif
