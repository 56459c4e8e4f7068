/* store_int.h - internals shared by the files of the store (not a contract
 * for anyone else).
 *
 * schema.c owns the on-disk format: the tables, the schema version and the
 * cached SQL statements. store.c owns the operations: every mutation is a
 * function run by run_txn() inside one BEGIN IMMEDIATE ... COMMIT, so a
 * later writer thread can batch several of them into one commit (group
 * commit) without touching the operations themselves.
 */
#ifndef GG_STORE_STORE_INT_H
#define GG_STORE_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

/* Version of the on-disk format, kept in meta('schema_version'). A store
 * with another version is refused; see docs/store.md for upgrades. */
#define GG_STORE_SCHEMA_VERSION 1

enum gg_stmt {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_INSERT,      /* ?1 queue ?2 dest ?3 put_ms ?4 expiry_ms ?5 len */
    S_INSERT_BODY, /* ?1 id ?2 data */
    S_QSTATS,      /* ?1 queue -> depth, bytes */
    S_READY,       /* ?1 queue ?2 now ?3 limit -> id, dest, put_ms, expiry_ms, lease_until_ms, backouts */
    S_DATA,        /* ?1 id -> data */
    S_LEASE,       /* ?1 id ?2 lease_until_ms ?3 backouts */
    S_FIND,        /* ?1 id -> queue, backouts */
    S_RELEASE,     /* ?1 id ?2 backouts: back to ready */
    S_DELETE,      /* ?1 id */
    S_TO_DEAD,     /* ?1 id ?2 reason ?3 dead_ms ?4 backouts */
    S_BROWSE,      /* ?1 queue ?2 after_id ?3 limit -> id, dest, put_ms, expiry_ms, backouts, data */
    S_DEL_UPTO,    /* ?1 queue ?2 upto */
    S_MARK_GET,    /* ?1 channel -> mark */
    S_MARK_SET,    /* ?1 channel ?2 mark */
    S_QUEUES,      /* ?1 limit -> queue, depth, bytes, oldest put_ms */
    S_DEAD_LIST,   /* ?1 after_id ?2 limit -> id, queue, dest, reason, dead_ms, put_ms,
                      expiry_ms, backouts, len */
    S_DEAD_GET,    /* ?1 id -> queue, dest, expiry_ms, len, data */
    S_DEAD_DEL,    /* ?1 id */
    S_DEAD_COUNT,  /* -> count */
    S_COUNT
};

/* Rows examined per round when gg_store_get looks for a ready message. */
#define GG_STORE_GET_BATCH 16
/* Queues remembered per transaction for wake-ups; more wakes everyone. */
#define GG_STORE_TOUCH_MAX 8
/* Queues with their own wake-up counter; more share one counter. */
#define GG_STORE_WAIT_SLOTS 32
#define GG_STORE_WATCH_MAX 8

/* Counter deltas of one transaction: applied only when it commits. */
typedef struct gg_store_counts {
    int64_t puts, gets, acks, backouts, expired, dead, dropped;
} gg_store_counts;

/* What one transaction did, for the counters and the wake-ups after it. */
typedef struct gg_txn {
    gg_store_counts c;
    char touched[GG_STORE_TOUCH_MAX][GG_QUEUE_NAME_MAX];
    size_t ntouched;
    int touched_overflow;
} gg_txn;

typedef struct gg_watch {
    char queue[GG_QUEUE_NAME_MAX];
    gg_store_watch_fn fn;
    void *arg;
} gg_watch;

typedef struct gg_wait_slot {
    char queue[GG_QUEUE_NAME_MAX];
    uint64_t gen;
} gg_wait_slot;

struct gg_store {
    /* mu guards db, stmt and counts. Held for a whole transaction. */
    pthread_mutex_t mu;
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
    gg_store_opts opts;
    gg_store_counts counts;
    char *path;

    /* nmu guards the wake-up state and watchers; never held with mu. */
    pthread_mutex_t nmu;
    pthread_cond_t cond;             /* CLOCK_MONOTONIC */
    gg_wait_slot slots[GG_STORE_WAIT_SLOTS];
    size_t nslots;
    uint64_t gen_all;                /* bumped when a wake-up has no slot */
    gg_watch watch[GG_STORE_WATCH_MAX];
    size_t nwatch;
};

/* gg_store_sql_err - map a SQLite result code to gg_err and log the failure
 * of operation op (SQLITE_FULL -> GG_ENOSPC, BUSY -> GG_EBUSY, else GG_EIO). */
gg_err gg_store_sql_err(gg_store *st, const char *op, int rc);

/* gg_store_schema_open - set the pragmas, create or check the schema and
 * prepare every statement into st->stmt. Logs and returns on failure; the
 * caller closes st->db. */
gg_err gg_store_schema_open(gg_store *st);

/* gg_store_schema_close - finalize the prepared statements. */
void gg_store_schema_close(gg_store *st);

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

/* gg_txn_touch - note that transaction t added a message to queue. */
void gg_txn_touch(gg_txn *t, const char *queue);

/* gg_store_notify - after t committed: bump the wake-up generations of the
 * queues it touched, wake waiters, then call the matching watchers with no
 * lock held. Call without mu. */
void gg_store_notify(gg_store *st, const gg_txn *t);

#endif
