/* governor.h - the concurrency governor in front of the marketing system.
 *
 * Every service call into the marketing system holds one slot; at most
 * `limit` slots are held at once, across all workers and services. The
 * limit is fixed (mode fixed: max_inflight) or found by a gradient limiter
 * (mode adaptive): per window of completed calls it compares their mean
 * latency with the best recent one (the backend's no-load latency, probed
 * afresh now and then by one window at half the limit); above
 * tolerance_pct percent of it the backend is queueing and the limit shrinks
 * by a tenth, otherwise, if the window used the whole limit, it grows by
 * one; always within [min, max]. Two lanes: waiters of the priority lane
 * (payments, bindings) get a freed slot before any waiter of the normal
 * lane (queries, analysis). Thread-safe; never blocks longer than asked.
 */
#ifndef GG_UTILITY_GOVERNOR_H
#define GG_UTILITY_GOVERNOR_H

#include <stdint.h>

#include "core/err.h"

typedef enum gg_lane {
    GG_LANE_PRIORITY = 0,   /* payments, bindings: state changes a citizen waits on */
    GG_LANE_NORMAL = 1,     /* queries and analysis */
    GG_LANE_COUNT
} gg_lane;

typedef struct gg_gov_opts {
    int adaptive;           /* 0 fixed, 1 adaptive */
    int min_limit;          /* >= 1 */
    int max_limit;          /* >= min_limit; the fixed limit */
    int tolerance_pct;      /* >= 100 */
    int window;             /* completed calls per adaptive step; 0 = default 32 */
} gg_gov_opts;

typedef struct gg_governor gg_governor;

/* gg_gov_new - a governor starting at max_limit (fixed) or at min_limit
 * (adaptive: it climbs from there). GG_EINVAL for bounds out of order. */
gg_err gg_gov_new(const gg_gov_opts *o, gg_governor **out);
void gg_gov_free(gg_governor *g);

/* gg_gov_acquire - take a slot in lane, waiting up to timeout_ms (0: do
 * not wait). GG_OK (the caller must gg_gov_release), GG_ETIMEOUT, or
 * GG_ECLOSED after gg_gov_close. */
gg_err gg_gov_acquire(gg_governor *g, gg_lane lane, int timeout_ms);

/* gg_gov_release - give the slot back; latency_us is how long the call
 * took (feeds the adaptive limiter; < 0: do not count it). */
void gg_gov_release(gg_governor *g, int64_t latency_us);

/* gg_gov_close - wake every waiter with GG_ECLOSED; later acquires fail. */
void gg_gov_close(gg_governor *g);

/* Readings for metrics and tests. */
int gg_gov_limit(gg_governor *g);
int gg_gov_inflight(gg_governor *g);
int gg_gov_waiting(gg_governor *g, gg_lane lane);
/* gg_gov_saturated - every slot is held (a new call would wait). */
int gg_gov_saturated(gg_governor *g);

/* gg_lane_of - the lane of a transaction code: priority for the codes the
 * portal queues on the priority queue (gg_transport_request_queue: "pay*",
 * "bind", "unbind"), normal for everything else. */
gg_lane gg_lane_of(const char *txn);

#endif
