/* gate.h - the way into the marketing system: governor and cache.
 *
 * Every service call a worker makes goes through gg_gate_call:
 *  1. A cacheable read (bills.query, usage.query) has its token checked
 *     first (gg_svc_cache_key); a fresh cached answer (cache.ttl_ms) is
 *     served without touching the backend.
 *  2. Otherwise the call needs a governor slot in its lane (governor.h).
 *     When none is free at once and a cached answer at most cache.stale_ms
 *     old exists, that is served instead of waiting.
 *  3. Else the worker waits for a slot, but never past the request's
 *     expiry (answered 504 expired, not run) nor past its lease (the
 *     request is backed out, to be taken again: not lost).
 *  4. The service runs holding the slot; a 200 read is cached; a 2xx
 *     payment drops the account's cached answers.
 * Metrics: backend in-flight (gg_umetrics), the governor's limit and
 * waiters, cache hits (fresh, stale), misses, invalidations, hit ages.
 */
#ifndef GG_UTILITY_GATE_H
#define GG_UTILITY_GATE_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "core/config.h"
#include "core/err.h"
#include "services/services.h"
#include "utility/governor.h"
#include "utility/metrics.h"

typedef struct gg_gate gg_gate;

typedef enum gg_gate_verdict {
    GG_GATE_RAN = 0,       /* the reply comes from the service or the cache */
    GG_GATE_EXPIRED,       /* expired waiting for a slot: 504 reply */
    GG_GATE_BACKOUT,       /* no reply: lease ending or stopping; back it out */
} gg_gate_verdict;

/* gg_gate_new - governor and cache from [governor] and [cache]; workers is
 * utility.workers (the default and ceiling of max_inflight). m is borrowed. */
gg_err gg_gate_new(const gg_config *cfg, int workers, gg_umetrics *m, gg_gate **out);
void gg_gate_free(gg_gate *g);

/* gg_gate_close - wake every worker waiting for a slot (stop). */
void gg_gate_close(gg_gate *g);

/* gg_gate_call - run txn on req (see above). Returns a reply (new object),
 * or NULL with *v = GG_GATE_BACKOUT, or NULL when out of memory. */
json_t *gg_gate_call(gg_gate *g, gg_svc_ctx *ctx, const char *txn, json_t *req,
                     int64_t expiry_ms, int64_t lease_until_ms, gg_gate_verdict *v);

gg_governor *gg_gate_governor(gg_gate *g);

/* gg_gate_invalidate - drop every cached answer of account (its bills or
 * status changed outside a payment: a bill sweep); counted in
 * gridgate_cache_invalidated_total. Thread-safe; g NULL is fine. Returns
 * how many answers were dropped. */
size_t gg_gate_invalidate(gg_gate *g, const char *account);

/* gg_gate_write_metrics - governor and cache metrics as Prometheus text. */
void gg_gate_write_metrics(gg_gate *g, FILE *f);

#endif
