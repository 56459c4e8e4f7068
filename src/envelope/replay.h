/* replay.h - freshness window and replay store for opened envelopes.
 *
 * Owns one SQLite file (by default replay.db beside the site's store) that
 * remembers the message id of every envelope accepted within the freshness
 * window. gg_replay_check says whether an authentic envelope is fresh and
 * new, and if so records it durably before it returns. It promises:
 *  - an id is refused as a replay for as long as an envelope with it could
 *    pass the freshness check, across restarts and backward clock steps
 *    (a persisted horizon: anything created before it is stale forever);
 *  - live entries are never evicted: when max_entries are live, new ids
 *    are refused (fail closed) until entries age out of the window;
 *  - the same message redelivered by the local store (same store id) is
 *    not a replay.
 * Thread-safe (one connection behind a mutex). Never logs message content.
 */
#ifndef GG_ENVELOPE_REPLAY_H
#define GG_ENVELOPE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct gg_replay gg_replay;

typedef struct gg_replay_cfg {
    const char *path;        /* the SQLite file; created if missing */
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

/* gg_replay_open - open or create the store. GG_EIO (logged) if the file
 * cannot be opened or its schema is wrong; GG_EINVAL on bad numbers. */
gg_err gg_replay_open(const gg_replay_cfg *cfg, gg_replay **out);

/* gg_replay_open_config - gg_replay_open from [security] of cfg: path
 * security.replay_db, else replay.db in the directory of store.path. */
struct gg_config;
gg_err gg_replay_open_config(const struct gg_config *cfg, gg_replay **out);

/* gg_replay_close - close; NULL is fine. */
void gg_replay_close(gg_replay *r);

/* gg_replay_check - decide on the envelope msg_id created at created_ms,
 * held in the local store under local_id, at wall-clock now_ms. Calls made
 * at the same time by several threads share one transaction and fsync
 * (judged at the latest of their now_ms), each with its own verdict. GG_OK with
 * *v set; GG_EIO when the database fails (nothing recorded: the caller must
 * not process the message now, and may retry later). */
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
 * one transaction (one fsync for the batch): an id met twice in the batch
 * is judged against the earlier one (a replay, or a redelivery if the
 * local id is the same), exactly as if checked one by one. GG_OK with
 * every verdict set, every GG_RV_FRESH durable when it returns; GG_EIO
 * when the database fails: nothing of the batch is recorded and no
 * verdict may be used. */
gg_err gg_replay_check_batch(gg_replay *r, gg_replay_item *items, size_t n, int64_t now_ms);

/* gg_replay_count - live entries (for metrics and tests). */
int64_t gg_replay_count(gg_replay *r);

/* gg_replay_verdict_name - "fresh", "redelivery", "stale", "future",
 * "replay", "replay_full". */
const char *gg_replay_verdict_name(gg_replay_verdict v);

#endif
