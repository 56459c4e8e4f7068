/* replay.h - freshness window and replay store for opened envelopes.
 *
 * Remembers the message id of every envelope accepted within the freshness
 * window, in tables of its own (replay_seen, replay_meta) in the site's
 * queue store file, changed in the store's group commit (store.h, "Side
 * tables"). gg_replay_check says whether an authentic envelope is fresh
 * and new, and if so records it (committed, not yet fsynced) before it
 * returns; the caller's next durable store call (the ack of the message,
 * with its reply) makes the record durable with its own fsync. It
 * promises:
 *  - an id is refused as a replay for as long as an envelope with it could
 *    pass the freshness check, across restarts and backward clock steps
 *    (a persisted horizon: anything created before it is stale forever),
 *    once the message carrying it has been acked (or anything else
 *    durable was committed to the store after the check);
 *  - a power cut may undo records not yet made durable: only those of
 *    messages not yet acked, which are still in the store and are judged
 *    again when redelivered (a process crash undoes nothing);
 *  - live entries are never evicted: when max_entries are live, new ids
 *    are refused (fail closed) until entries age out of the window;
 *  - the same message redelivered by the local store (same store id) is
 *    not a replay; two copies of one id, checked at the same time, are
 *    never both fresh (the store runs the checks one after the other).
 * Thread-safe. Never logs message content.
 */
#ifndef GG_ENVELOPE_REPLAY_H
#define GG_ENVELOPE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

typedef struct gg_replay gg_replay;

typedef struct gg_replay_cfg {
    const char *import_path; /* a replay file of the old separate kind: its live ids
                              * are imported at open if it exists; NULL = none */
    int64_t window_ms;       /* freshness window (security.freshness_ms) */
    int64_t skew_ms;         /* clock-skew allowance (security.clock_skew_ms) */
    int64_t max_entries;     /* live ids kept at most (security.replay_max) */
} gg_replay_cfg;

typedef enum gg_replay_verdict {
    GG_RV_FRESH = 0,         /* new and fresh: recorded */
    GG_RV_REDELIVERY,        /* seen before under the same local store id */
    GG_RV_STALE,             /* created before now - window - skew, or before the horizon */
    GG_RV_FUTURE,            /* created after now + skew */
    GG_RV_REPLAY,            /* id already seen within the window */
    GG_RV_FULL,              /* max_entries live ids: refused, fail closed */
} gg_replay_verdict;

/* gg_replay_open - open the replay tables in st (created if missing, in a
 * durable commit), importing the live ids of cfg->import_path if that file
 * exists (durably, before GG_OK; the old file is left as it was and is
 * read again at the next open, importing only ids still live). st is
 * borrowed: close the replay store before st. GG_EINVAL on bad numbers;
 * GG_EIO (logged) if the tables or the old file cannot be read or are of
 * an unknown version; the store's error otherwise. */
gg_err gg_replay_open(const gg_replay_cfg *cfg, gg_store *st, gg_replay **out);

/* gg_replay_open_config - gg_replay_open from [security] of cfg, importing
 * security.replay_db, else replay.db in the directory of store.path (where
 * the separate replay file of earlier versions lived). */
struct gg_config;
gg_err gg_replay_open_config(const struct gg_config *cfg, gg_store *st, gg_replay **out);

/* gg_replay_close - release the statements it keeps on the store's
 * connection; NULL is fine. Call before closing the store, when no check
 * is running. */
void gg_replay_close(gg_replay *r);

/* gg_replay_check - decide on the envelope msg_id created at created_ms,
 * held in the local store under local_id, at wall-clock now_ms. Concurrent
 * calls share the store's commits (no fsync of their own). GG_OK with *v
 * set; else the store's error (GG_EIO, GG_ENOSPC, GG_ECLOSED...): nothing
 * recorded, the caller must not process the message now, and may retry
 * later. */
gg_err gg_replay_check(gg_replay *r, const uint8_t msg_id[16], int64_t created_ms,
                       int64_t local_id, int64_t now_ms, gg_replay_verdict *v);

/* One envelope of a batch: msg_id, created_ms and local_id in, verdict out. */
typedef struct gg_replay_item {
    uint8_t msg_id[16];
    int64_t created_ms;
    int64_t local_id;
    gg_replay_verdict verdict;
} gg_replay_item;

/* gg_replay_check_batch - gg_replay_check of items[0..n) in order, all in
 * one store operation: an id met twice in the batch is judged against the
 * earlier one (a replay, or a redelivery if the local id is the same),
 * exactly as if checked one by one. GG_OK with every verdict set, every
 * GG_RV_FRESH committed (durable with the caller's next durable store
 * call); on an error nothing of the batch is recorded and no verdict may
 * be used. */
gg_err gg_replay_check_batch(gg_replay *r, gg_replay_item *items, size_t n, int64_t now_ms);

/* gg_replay_count - live entries (for metrics and tests; may count checks
 * in flight). */
int64_t gg_replay_count(gg_replay *r);

/* gg_replay_verdict_name - "fresh", "redelivery", "stale", "future",
 * "replay", "replay_full". */
const char *gg_replay_verdict_name(gg_replay_verdict v);

#endif
