/* replay.h - freshness window and replay store for opened envelopes.
 *
 * Remembers the message id of every envelope accepted within the freshness
 * window, in tables of its own (replay_seen, replay_meta) in the site's
 * queue store file (store.h, "Side tables"). gg_replay_check says whether
 * an authentic envelope is fresh and new without waiting for the store's
 * writer: it reads the committed ids on a read-only connection of its own
 * and the ids accepted but not yet committed (claims) in memory, and
 * claims a fresh id at once. A hook the store runs before every COMMIT
 * writes the claims into that transaction; a claim stays in memory until
 * a COMMIT that wrote it succeeded. The caller's next store call (the ack
 * of the message, with its reply) therefore commits the record, and its
 * fsync makes it durable. It promises:
 *  - an id is refused as a replay for as long as an envelope with it could
 *    pass the freshness check, across restarts and backward clock steps
 *    (a persisted horizon: anything created before it is stale forever),
 *    once the message carrying it has been acked (or anything else
 *    durable was committed to the store after the check), and in this
 *    process from the check on;
 *  - a process crash or a power cut may lose the records of messages not
 *    yet acked, which are still in the store and are judged again when
 *    redelivered;
 *  - live entries (committed and claimed) are never evicted: when
 *    max_entries are live, new ids are refused (fail closed) until entries
 *    age out of the window;
 *  - the same message redelivered by the local store (same store id) is
 *    not a replay; two copies of one id, checked at the same time, are
 *    never both fresh (checks run one after the other, for microseconds).
 * A storage fault fails the store call whose COMMIT would write a record
 * (the ack), never the check. Thread-safe. Never logs message content.
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
 * read again at the next open, importing only ids still live), open its
 * reader connection on st's file and register its pre-COMMIT hook with st.
 * st is borrowed: close the replay store before st. GG_EINVAL on bad
 * numbers; GG_EIO (logged) if the tables or the old file cannot be read or
 * are of an unknown version; GG_EFULL if st has no room for another hook;
 * the store's error otherwise. */
gg_err gg_replay_open(const gg_replay_cfg *cfg, gg_store *st, gg_replay **out);

/* gg_replay_open_config - gg_replay_open from [security] of cfg, importing
 * security.replay_db, else replay.db in the directory of store.path (where
 * the separate replay file of earlier versions lived). */
struct gg_config;
gg_err gg_replay_open_config(const struct gg_config *cfg, gg_store *st, gg_replay **out);

/* gg_replay_close - write the claims still in memory in a durable store
 * call (logged if it fails: they were of messages not yet acked), remove
 * the hook, close the reader connection and release the statements it
 * keeps on the store's connection; NULL is fine. Call before closing the
 * store, when no check is running. */
void gg_replay_close(gg_replay *r);

/* gg_replay_check - decide on the envelope msg_id created at created_ms,
 * held in the local store under local_id, at wall-clock now_ms. Makes no
 * store call (a fresh id is claimed in memory, committed by the store's
 * next transaction), except when the replay store is full and a prune
 * would make room: then one store op, not fsynced. GG_OK with *v set; else
 * GG_EIO (the committed ids cannot be read), GG_ENOMEM, or the prune's
 * store error: nothing recorded, the caller must not process the message
 * now, and may retry later. */
gg_err gg_replay_check(gg_replay *r, const uint8_t msg_id[16], int64_t created_ms,
                       int64_t local_id, int64_t now_ms, gg_replay_verdict *v);

/* One envelope of a batch: msg_id, created_ms and local_id in, verdict out. */
typedef struct gg_replay_item {
    uint8_t msg_id[16];
    int64_t created_ms;
    int64_t local_id;
    gg_replay_verdict verdict;
} gg_replay_item;

/* gg_replay_check_batch - gg_replay_check of items[0..n) in order, as one
 * check: an id met twice in the batch is judged against the earlier one
 * (a replay, or a redelivery if the local id is the same), exactly as if
 * checked one by one. GG_OK with every verdict set, every GG_RV_FRESH
 * claimed (committed with the store's next transaction, durable with the
 * caller's next durable store call); on an error nothing of the batch is
 * recorded and no verdict may be used. */
gg_err gg_replay_check_batch(gg_replay *r, gg_replay_item *items, size_t n, int64_t now_ms);

/* gg_replay_count - live entries: committed rows plus claims (for metrics
 * and tests; rows below the horizon count until a prune deletes them). */
int64_t gg_replay_count(gg_replay *r);

/* gg_replay_verdict_name - "fresh", "redelivery", "stale", "future",
 * "replay", "replay_full". */
const char *gg_replay_verdict_name(gg_replay_verdict v);

#endif
