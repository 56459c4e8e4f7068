/* store_int.h - internals shared by the files of the store (not a contract
 * for anyone else).
 *
 * schema.c owns the on-disk format: the tables, the schema version and the
 * cached SQL statements. store.c owns the operations: every mutation is an
 * op function run by gg_store_run() (commit.c), which queues it and lets one
 * caller at a time (the leader) run every queued op inside one BEGIN
 * IMMEDIATE ... COMMIT (group commit); an op runs under a savepoint of its
 * own only when the batch has to be redone because one failed half-way.
 * Ops must therefore be re-runnable: they start from their arguments and
 * overwrite (or free) their outputs.
 * The format has no triggers and no AUTOINCREMENT (schema.c): an op that
 * adds a messages row takes its id from gg_kept_next_id and binds it, and
 * an op that adds or removes messages rows reports each change of depth
 * and bytes with gg_kept_add, after the rows changed (store.c's insert_msg
 * and delete_msg do both); the runner writes them before the COMMIT.
 * vfs.c is the I/O seam (a pass-through SQLite VFS that tests can make
 * fail); metrics.c writes the Prometheus text. handoff.c is the op the
 * runner adds to each batch: messages leased to blocked takers in the
 * batch's transaction, given to them after its COMMIT.
 */
#ifndef GG_STORE_STORE_INT_H
#define GG_STORE_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>

#include "store/store.h"

/* Version of the on-disk format, kept in meta('schema_version'). A store
 * with another version is refused; see docs/store.md for upgrades. */
#define GG_STORE_SCHEMA_VERSION 3

enum gg_stmt {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_SP_RELEASE,
    S_SP_ROLLBACK,
    S_INSERT,      /* ?1 queue ?2 dest ?3 put_ms ?4 expiry_ms ?5 len ?6 prio ?7 flags ?8 id */
    S_INSERT_BODY, /* ?1 id ?2 data */
    S_QSTATS,      /* ?1 queue -> depth, bytes */
    S_QSTATS_ADD,  /* ?1 queue ?2 depth delta ?3 bytes delta */
    S_LAST_ID,     /* -> highest id ever given (meta last_id, or a row's) */
    S_LAST_ID_SET, /* ?1 last_id */
    S_READY,       /* ?1 queue ?2 limit -> id, dest, put_ms, expiry_ms, lease_until_ms,
                      backouts, prio, flags, data of ready messages; highest prio first,
                      then id */
    S_RUNOUT,      /* ?1 queue ?2 now ?3 limit -> id, backouts of leases that ran out */
    S_LEASE,       /* ?1 id ?2 lease_until_ms ?3 backouts */
    S_FIND,        /* ?1 id -> queue, backouts, lease_until_ms, len */
    S_RELEASE,     /* ?1 id ?2 backouts: back to ready */
    S_DELETE,      /* ?1 id */
    S_DELETE_BODY, /* ?1 id */
    S_TO_DEAD,     /* ?1 id ?2 reason ?3 dead_ms ?4 backouts */
    S_BROWSE,      /* ?1 queue ?2 after_id ?3 limit -> id, dest, put_ms, expiry_ms, backouts, data,
                      prio, flags */
    S_DEL_UPTO,    /* ?1 queue ?2 upto */
    S_UPTO_STATS,  /* ?1 queue ?2 upto -> count, sum of len */
    S_UPTO_BODIES, /* ?1 queue ?2 upto: delete their bodies */
    S_MARK_GET,    /* ?1 channel -> mark */
    S_MARK_SET,    /* ?1 channel ?2 mark */
    S_QUEUES,      /* ?1 limit -> queue, depth, bytes, oldest put_ms, dead letters */
    S_DEAD_LIST,   /* ?1 after_id ?2 limit -> id, queue, dest, reason, dead_ms, put_ms,
                      expiry_ms, backouts, len, prio, flags */
    S_DEAD_GET,    /* ?1 id -> queue, dest, expiry_ms, len, data, prio, flags */
    S_DEAD_DEL,    /* ?1 id */
    S_DEAD_COUNT,  /* -> count */
    S_DEAD_ONE,    /* ?1 id -> as S_DEAD_LIST, then data */
    S_DEAD_PURGE,  /* delete every dead letter */
    S_FREELIST,    /* -> free pages, pages */
    S_COUNT
};

/* Most calls one commit covers (bounds a batch's latency and size). */
/* (A *_many call counts as one call; GG_STORE_MANY_MAX bounds its items.) */
#define GG_STORE_BATCH_MAX 256
/* Run an incremental vacuum once this many pages are free and they are
 * more than 1/GG_STORE_VACUUM_SHARE of the file (moving live pages costs
 * CPU; a queue that grows and drains would move them back and forth)... */
#define GG_STORE_VACUUM_PAGES 256
#define GG_STORE_VACUUM_SHARE 4
/* ...checking every this many commits, and then after every commit until
 * they are not: each vacuum gives back at most GG_STORE_VACUUM_STEP pages,
 * so no commit waits behind more than one step (moving 8,000 pages at once
 * held every caller for 170-560 ms). */
#define GG_STORE_VACUUM_EVERY 128
#define GG_STORE_VACUUM_STEP 128
/* The checkpoint thread is asked at this many WAL pages (ckpt.c), and the
 * WAL truncated to GG_STORE_WAL_LIMIT bytes when it starts over: above the
 * size it can reach, so that it is not cut and grown again every cycle;
 * writes into blocks the file already has cost less, and their fdatasync
 * has no size to write. */
#define GG_STORE_WAL_PAGES 1000
#define GG_STORE_WAL_LIMIT (12 << 20)
/* Up to this many frames the checkpoint thread copies the WAL (ckpt.c);
 * from here the committer copies the rest so the WAL can start over
 * (GG_STORE_WAL_HARD frames and a batch stay under GG_STORE_WAL_LIMIT). */
#define GG_STORE_WAL_CATCHUP 1250
/* ...and from here it waits for a checkpoint of the thread's to end first. */
#define GG_STORE_WAL_HARD 2500
/* Commit latency histogram: upper bounds in microseconds (+Inf after). */
#define GG_STORE_LAT_BUCKETS 14

/* Queues whose emptiness waiting takers remember (notify.c), and for how
 * long: a lease that runs out makes a message ready with no commit, so a
 * take is not skipped for longer than this. */
#define GG_STORE_SEEN_MAX 128
#define GG_STORE_SEEN_US 50000

/* Rows examined per round when gg_store_get looks for a ready message. */
#define GG_STORE_GET_BATCH 64
/* Queues remembered per transaction for wake-ups and hand-offs; more wakes
 * every waiter to look again, and hands off nothing. A channel batch of
 * replies touches one queue per requester: at 32, 64 requesters overflowed
 * it on most batches (bench/rr: 4 in 5 takers woken to look, not handed). */
#define GG_STORE_TOUCH_MAX 128
/* Watchers (gg_store_watch) at most. */
#define GG_STORE_WATCH_MAX 8
/* Queues whose depth and bytes one transaction keeps in memory before it
 * writes them to queue_stats early. */
#define GG_STORE_KEPT_QUEUES 16

/* Counter deltas of one transaction: applied only when it commits. */
typedef struct gg_store_counts {
    int64_t puts, gets, acks, backouts, expired, dead, dropped;
    int64_t handoffs;   /* messages leased to blocked takers (handoff.c) */
} gg_store_counts;

/* What one transaction did, for the counters and the wake-ups after it. */
typedef struct gg_txn {
    gg_store_counts c;
    char touched[GG_STORE_TOUCH_MAX][GG_QUEUE_NAME_MAX];
    uint32_t hash[GG_STORE_TOUCH_MAX];    /* txn_hash(touched[i]) (notify.c) */
    uint32_t added[GG_STORE_TOUCH_MAX];   /* messages made ready in touched[i] */
    size_t ntouched;
    int touched_overflow;
    int lease_only;   /* set by an op that only leased messages: its commit
                       * needs no fsync (docs/store.md, loss windows) */
} gg_txn;

typedef struct gg_watch {
    char queue[GG_QUEUE_NAME_MAX];
    gg_store_watch_fn fn;
    void *arg;
} gg_watch;

typedef gg_err (*gg_txn_fn)(gg_store *st, gg_txn *t, void *arg);

/* One call waiting for a commit; lives on the caller's stack. */
typedef struct gg_req {
    const char *op;
    gg_txn_fn fn;
    void *arg;
    gg_txn t;
    gg_err err;
    int pseudo;                /* the batch's hand-off (handoff.c), not a caller */
    int done;                  /* set (under gmu) by whoever wakes this caller */
    pthread_cond_t cond;
    struct gg_req *next;
    /* Wake-up tree of a finished batch: the writer wakes the first caller,
     * each caller wakes these two (under gmu), so the writer does not
     * spend its time on futex calls. */
    struct gg_req *wake[2];
} gg_req;

/* A queue's queue_stats row as the open transaction sees it: the stored
 * values (once read) and what the transaction added, not yet written. */
typedef struct gg_kept_queue {
    char queue[GG_QUEUE_NAME_MAX];
    int known;                       /* depth, bytes read from queue_stats */
    int64_t depth, bytes;            /* stored values, when known */
    int64_t d_depth, d_bytes;        /* not yet written */
} gg_kept_queue;

/* What the open transaction keeps in memory and writes once, just before
 * its COMMIT (schema.c): queue_stats deltas and the highest id given. */
typedef struct gg_kept {
    gg_kept_queue q[GG_STORE_KEPT_QUEUES];
    size_t nq;
    int64_t last_id;                 /* highest id given, when id_known */
    int id_known, id_dirty;
} gg_kept;


/* One caller of gg_store_wait or a *_get_wait call while it is in that
 * call; lives on its stack, linked into st->waiters (under nmu). A commit
 * wakes a taker (a get_wait) only for a message it made ready in queue,
 * one taker per message, and a plain waiter (gg_store_wait) for any. */
typedef struct gg_waiter {
    const char *queue;
    const char *queue2;        /* a second queue (gg_store_get_wait_first), or NULL */
    int taker;                 /* 1: get_wait, woken one per message made ready */
    int woken;                 /* set by a commit (bit 1: for queue, 2: for
                                * queue2, GG_WOKEN_HANDED: messages handed
                                * in out), cleared by the waiter */
    int sleeping;              /* in waiter_sleep: woken first */
    /* A taker's get, for a hand-off (handoff.c): lease up to max messages
     * for lease_ms into out[0..got). */
    int64_t lease_ms;
    size_t max;
    gg_msg **out;
    size_t got;
    int pending;               /* reserved by a batch's hand-off: the taker
                                * sleeps on, past its deadline, until the
                                * batch is over (then got > 0 if handed) */
    pthread_cond_t cond;       /* CLOCK_MONOTONIC */
    struct gg_waiter *prev, *next;
} gg_waiter;

/* What waiting takers learned of a queue (notify.c): gen counts the
 * commits that touched it; a take that found it empty at gen records
 * empty_gen = gen, believed until empty_until_us. Under nmu. */
/* gg_waiter.woken: the commit leased messages to this taker (handoff.c). */
#define GG_WOKEN_HANDED 4

/* Takers one batch's hand-off serves at most. */
#define GG_STORE_HAND_MAX 128

/* The hand-off of one batch (handoff.c): the takers it reserved, with
 * the messages leased into their out arrays until gg_store_hand_finish. */
typedef struct gg_hand {
    gg_req *first;                   /* the batch, up to the hand-off's own req */
    gg_waiter *w[GG_STORE_HAND_MAX];
    size_t nw;
    /* Queues a take of the hand-off left with nothing ready (it got fewer
     * than it wanted), remembered as empty once committed (notify.c). */
    char drained[GG_STORE_TOUCH_MAX][GG_QUEUE_NAME_MAX];
    size_t ndrained;
} gg_hand;

typedef struct gg_qseen {
    char queue[GG_QUEUE_NAME_MAX];
    uint32_t hash;   /* txn_hash(queue) (notify.c) */
    uint64_t gen, empty_gen;
    int64_t empty_until_us;
} gg_qseen;

/* A side module's pre-COMMIT hook (side.c): ran = it has run in a
 * transaction, at = st->commits when it last ran. */
#define GG_STORE_HOOKS_MAX 8
typedef struct gg_side_hook {
    gg_store_hook_fn fn;
    void *arg;
    int ran;
    int64_t at;
} gg_side_hook;

struct gg_store {
    /* mu guards db, stmt and counts. Held for a whole transaction. */
    pthread_mutex_t mu;
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
    gg_store_opts opts;
    gg_store_counts counts;
    char *path;
    int64_t commits, batched, faults, reclaims;
    int reclaiming;           /* free pages over the mark: checked after each commit */
    atomic_int reclaim_due;   /* a vacuum step is due: the writer runs it (commit.c) */
    int64_t syncs;                   /* commits that fsynced the WAL */
    int64_t redos;                   /* batches run again under savepoints */
    atomic_int ckpt_due;             /* the WAL hook asks the committer for a checkpoint */
    int64_t ckpt_asked_at;           /* WAL frames when the thread was last asked (hook) */
    int64_t wal_frames;              /* WAL frames after the last commit (hook) */

    /* The checkpoint thread (ckpt.c), on its own connection; cmu guards
     * its flags. Taken under mu (the WAL hook, a pause), never the other
     * way round: the thread lets cmu go before it takes mu. */
    sqlite3 *ckdb;
    pthread_t ckpt;
    pthread_mutex_t cmu;
    pthread_cond_t ccond;
    int ckpt_started, ckpt_stop, ckpt_asked;
    atomic_int ckpt_running;         /* the thread is checkpointing (set under cmu) */
    atomic_llong checkpoints;        /* checkpoints completed (thread and committer) */
    gg_kept kept;                    /* the open transaction's kept values */
    int faulted;
    uint64_t lat_count[GG_STORE_LAT_BUCKETS + 1];
    double lat_sum_s;

    /* gmu guards the queue of calls waiting to commit and the writer's
     * state; never held while waiting for mu. */
    pthread_mutex_t gmu;
    pthread_cond_t wcond;            /* the writer waits here for work */
    pthread_t writer;
    int writer_started, stopping;
    int busy;                        /* a batch is being run (writer or a lone caller) */
    gg_req *head, *tail;

    /* nmu guards the wake-up state and watchers. Taken under mu only by
     * the hand-off op (handoff.c); mu is never taken under nmu. */
    pthread_mutex_t nmu;
    pthread_cond_t cond;             /* gg_store_unwatch waits here for calling == 0 */
    gg_waiter *waiters, *waiters_tail;
    int64_t wakeups;                 /* waiters woken by commits (gg_store_stats) */
    gg_watch watch[GG_STORE_WATCH_MAX];
    size_t nwatch;
    int calling;                     /* notifiers calling watchers now */
    gg_qseen seen[GG_STORE_SEEN_MAX]; /* queues a waiting taker found empty (notify.c) */
    size_t nseen;
    atomic_int closing;              /* gg_store_close began: no hand-offs, waiters leave */
    /* The side modules' pre-COMMIT hooks (side.c), under mu. */
    gg_side_hook hooks[GG_STORE_HOOKS_MAX];
    size_t nhooks;
};

extern const int64_t gg_store_lat_bounds_us[GG_STORE_LAT_BUCKETS];

/* gg_store_run - have the writer thread run fn(st, t, arg) in a
 * transaction shared with the other calls waiting at the time (group
 * commit). Returns fn's error, or the commit's; GG_OK only once the commit
 * covering it is durable. Counters and wake-ups are applied only after
 * that commit. GG_ECLOSED once the store is closing. */
gg_err gg_store_run(gg_store *st, const char *op, gg_txn_fn fn, void *arg);

/* gg_store_writer_start / stop - the writer thread that runs the batches;
 * stop commits what is queued, then joins it. */
gg_err gg_store_writer_start(gg_store *st);
void gg_store_writer_stop(gg_store *st);

/* gg_store_ckpt_start / stop / ask - the checkpoint thread (ckpt.c):
 * start after the schema is open (if it cannot start, the committer runs
 * every checkpoint); stop before the store's connection closes; ask (from
 * the WAL hook) for a checkpoint soon. */
void gg_store_ckpt_start(gg_store *st);
void gg_store_ckpt_stop(gg_store *st);
void gg_store_ckpt_ask(gg_store *st);
/* gg_store_ckpt_pause / resume - hold the thread between checkpoints
 * (pause waits for the one running); under mu. */
void gg_store_ckpt_pause(gg_store *st);
void gg_store_ckpt_resume(gg_store *st);

/* gg_store_fault - count a storage fault (err) of op; alarm once per
 * episode, which the next commit that succeeds ends. Under mu. */
void gg_store_fault(gg_store *st, const char *op, gg_err err);

/* gg_store_vfs_name - the name of the store's SQLite VFS (the fault seam),
 * registered on first use; NULL if it cannot be registered. */
const char *gg_store_vfs_name(void);

/* gg_store_vfs_skip_wal_sync - while on (this thread only), xSync of a
 * store's WAL file does nothing: set around the COMMIT of a lease-only
 * batch, never around a checkpoint. */
void gg_store_vfs_skip_wal_sync(int on);

/* gg_store_wal_hook - sqlite3_wal_hook of every store (in place of the
 * auto-checkpoint): notes that a checkpoint is due once the WAL holds
 * GG_STORE_WAL_PAGES pages; the committer runs it after the COMMIT. */
int gg_store_wal_hook(void *arg, sqlite3 *db, const char *name, int pages);

/* gg_store_sql_err - map a SQLite result code to gg_err and log the failure
 * of operation op (SQLITE_FULL -> GG_ENOSPC, BUSY -> GG_EBUSY, else GG_EIO). */
gg_err gg_store_sql_err(gg_store *st, const char *op, int rc);

/* gg_store_schema_open - set the pragmas, create or check the schema and
 * prepare every statement into st->stmt. Logs and returns on failure; the
 * caller closes st->db. */
gg_err gg_store_schema_open(gg_store *st);

/* gg_store_schema_close - finalize the prepared statements. */
void gg_store_schema_close(gg_store *st);

/* gg_kept_reset - forget what the transaction kept (at BEGIN, and after a
 * rollback: the values are read again from the database). Under mu. */
void gg_kept_reset(gg_store *st);

/* gg_kept_queue_stats - depth and bytes of queue as the open transaction
 * sees them (stored plus not yet written). Under mu, in a transaction. */
gg_err gg_kept_queue_stats(gg_store *st, const char *queue, int64_t *depth, int64_t *bytes);

/* gg_kept_add - the transaction added (or removed, negative) d_depth
 * messages of d_bytes to queue; written by gg_kept_flush. Call only after
 * the rows changed. Writes early (GG_STORE_KEPT_QUEUES); then a storage
 * error. Under mu, in a transaction. */
gg_err gg_kept_add(gg_store *st, const char *queue, int64_t d_depth, int64_t d_bytes);

/* gg_kept_next_id - a new message id, above every id ever given (ids are
 * never reused; written to meta as last_id by gg_kept_flush). */
gg_err gg_kept_next_id(gg_store *st, int64_t *id);

/* gg_kept_flush - write what the transaction kept (queue_stats deltas,
 * meta last_id) into it: before every COMMIT, and before releasing the
 * savepoint of an op in a redone batch. Under mu, in a transaction. */
gg_err gg_kept_flush(gg_store *st);

/* gg_sql_prep - cached statement id of st, reset and with no bindings. */
sqlite3_stmt *gg_sql_prep(gg_store *st, enum gg_stmt id);

/* gg_sql_done - step a statement that returns no rows and reset it;
 * SQLITE_OK or the SQLite error. */
int gg_sql_done(sqlite3_stmt *s);

/* gg_sql_bind_blob - bind len bytes (borrowed until the statement is
 * reset); an empty blob, never NULL, when len is 0. */
int gg_sql_bind_blob(sqlite3_stmt *s, int i, const void *p, size_t len);

/* gg_sql_col_text - copy text column i into out (size outsz), truncated;
 * "" for NULL. */
void gg_sql_col_text(sqlite3_stmt *s, int i, char *out, size_t outsz);

/* gg_store_valid_name - 1 if q is a queue or channel name:
 * 1..GG_QUEUE_NAME_MAX-1 bytes. */
int gg_store_valid_name(const char *q);

/* gg_store_check_data - GG_EINVAL for NULL data with len > 0, GG_ETOOBIG
 * past INT_MAX bytes, else GG_OK. */
gg_err gg_store_check_data(const void *data, size_t len);

/* gg_store_msg_alloc - a zeroed gg_msg owning a copy of len bytes; NULL if
 * out of memory. */
gg_msg *gg_store_msg_alloc(const void *data, size_t len);

/* gg_store_read_mark - the stored mark of channel (0 if none). Under mu. */
gg_err gg_store_read_mark(gg_store *st, const char *channel, int64_t *mark);

/* gg_txn_touch - note that transaction t made one message of queue ready
 * (added it, or returned it from a lease). */
void gg_txn_touch(gg_txn *t, const char *queue);

/* gg_txn_find - index of queue among the queues t touched, or -1 (also
 * for a NULL queue). */
int gg_txn_find(const gg_txn *t, const char *queue);

/* gg_txn_merge - add the queues from touched, with their counts (and its
 * overflow), to into: the union of several ops' transactions. */
void gg_txn_merge(gg_txn *into, const gg_txn *from);

/* gg_store_take_locked - inside the open transaction, as a get_many
 * would: take back queue's run-out leases, then lease up to want ready
 * messages into out[*n...]. On an error the messages in out stay the
 * caller's. Under mu. */
gg_err gg_store_take_locked(gg_store *st, gg_txn *t, const char *queue, int64_t lease_ms,
                            size_t want, gg_msg **out, size_t *n);

/* gg_store_any_ready - *any = 1 if queue has a ready message (an expired
 * one counts), else 0. Under mu, in a transaction. */
gg_err gg_store_any_ready(gg_store *st, const char *queue, int *any);

/* gg_store_hand_op - the op the runner adds at the end of each batch
 * (arg: a gg_hand): leases the messages the batch's ops made ready to the
 * takers blocked on those queues, reserving them. Under mu. */
gg_err gg_store_hand_op(gg_store *st, gg_txn *t, void *arg);

/* gg_store_hand_finish - after the batch: if committed, give each
 * reserved taker its messages and wake it, and take the messages handed
 * out of all's counts of messages made ready; else free them. Every
 * reserved taker is released. Call without mu. */
void gg_store_hand_finish(gg_store *st, gg_hand *h, int committed, gg_txn *all);

/* gg_store_hand_seen - after the notify of a batch whose hand-off
 * committed: remember the queues it drained as found empty now, as a
 * take that found them empty would (a taker's next wait sleeps at once).
 * Without mu. */
void gg_store_hand_seen(gg_store *st, gg_hand *h);

/* gg_store_waiters_close - wake every waiter for the close and wait until
 * all have left (they return GG_ECLOSED or at once). Without mu. */
void gg_store_waiters_close(gg_store *st);

/* gg_store_notify - after t committed: wake the waiters of the queues it
 * touched (one taker per message it made ready, every plain waiter), then
 * call the matching watchers with no lock held. Call without mu. */
void gg_store_notify(gg_store *st, const gg_txn *t);

/* side.c: the side modules' pre-COMMIT hooks (store.h, gg_store_side_hook),
 * run by commit.c in the transaction under mu, an error failing the COMMIT. */
gg_err gg_store_side_before_commit(gg_store *st);

#endif
