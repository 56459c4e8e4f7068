/* gate.c - governor and cache around every service call (gate.h). */
#include "utility/gate.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "utility/cache.h"

#define SLOT_WAIT_MS 200         /* longest single wait, so stop is seen */

struct gg_gate {
    gg_governor *gov;
    gg_cache *cache;
    gg_umetrics *m;
    int64_t ttl_ms;
    int64_t stale_ms;
    atomic_llong hits_fresh, hits_stale, misses, invalidated, age_sum_ms;
    atomic_llong waited_expired, waited_backout;
};

gg_err gg_gate_new(const gg_config *cfg, int workers, gg_umetrics *m, gg_gate **out)
{
    gg_gate *g = calloc(1, sizeof *g);
    gg_gov_opts o;
    int64_t max = gg_config_int(cfg, "governor.max_inflight");
    gg_err e;

    *out = NULL;
    if (!g)
        return GG_ENOMEM;
    memset(&o, 0, sizeof o);
    o.adaptive = strcmp(gg_config_str(cfg, "governor.mode"), "adaptive") == 0;
    o.max_limit = max <= 0 || max > workers ? workers : (int)max;
    if (max > workers)
        gg_warn("utility", "msg=\"governor.max_inflight above utility.workers; using workers\" "
                "max_inflight=%lld workers=%d", (long long)max, workers);
    o.min_limit = (int)gg_config_int(cfg, "governor.min_inflight");
    if (o.min_limit > o.max_limit)
        o.min_limit = o.max_limit;
    o.tolerance_pct = (int)gg_config_int(cfg, "governor.tolerance_pct");
    e = gg_gov_new(&o, &g->gov);
    if (e == GG_OK)
        e = gg_cache_new((size_t)gg_config_int(cfg, "cache.entries"), &g->cache);
    if (e != GG_OK) {
        gg_gate_free(g);
        return e;
    }
    g->m = m;
    g->ttl_ms = gg_config_int(cfg, "cache.ttl_ms");
    g->stale_ms = gg_config_int(cfg, "cache.stale_ms");
    gg_info("utility", "msg=\"governor\" mode=%s limit=%d min=%d max=%d cache_entries=%lld "
            "cache_ttl_ms=%lld cache_stale_ms=%lld", o.adaptive ? "adaptive" : "fixed",
            gg_gov_limit(g->gov), o.min_limit, o.max_limit,
            (long long)gg_config_int(cfg, "cache.entries"), (long long)g->ttl_ms,
            (long long)g->stale_ms);
    *out = g;
    return GG_OK;
}

void gg_gate_free(gg_gate *g)
{
    if (!g)
        return;
    gg_gov_free(g->gov);
    gg_cache_free(g->cache);
    free(g);
}

void gg_gate_close(gg_gate *g)
{
    if (g)
        gg_gov_close(g->gov);
}

gg_governor *gg_gate_governor(gg_gate *g)
{
    return g->gov;
}

/* cached - the cached reply of key at most max_age old, as an object. */
static json_t *cached(gg_gate *g, const char *key, int64_t max_age, int64_t *age)
{
    char *text;
    json_t *rep;

    if (!key[0] || max_age <= 0)
        return NULL;
    text = gg_cache_get(g->cache, key, gg_now_ms(), max_age, age);
    if (!text)
        return NULL;
    rep = json_loads(text, 0, NULL);
    free(text);
    return rep;
}

/* hit - count a cache hit of age ms. */
static json_t *hit(gg_gate *g, json_t *rep, int stale, int64_t age)
{
    atomic_fetch_add(stale ? &g->hits_stale : &g->hits_fresh, 1);
    atomic_fetch_add(&g->age_sum_ms, age);
    return rep;
}

/* status_of - the reply's status, 500 if it has none. */
static int status_of(json_t *rep)
{
    json_t *s = json_object_get(rep, "status");

    return json_is_integer(s) ? (int)json_integer_value(s) : 500;
}

json_t *gg_gate_call(gg_gate *g, gg_svc_ctx *ctx, const char *txn, json_t *req,
                     int64_t expiry_ms, int64_t lease_until_ms, gg_gate_verdict *v)
{
    char key[GG_CACHE_KEY_MAX + 1], account[40];
    gg_lane lane = gg_lane_of(txn);
    json_t *rep;
    int64_t age = 0, t0 = gg_mono_us(), t1;
    gg_err e;

    *v = GG_GATE_RAN;
    rep = gg_svc_cache_key(ctx, txn, req, key, sizeof key, account, sizeof account);
    if (rep)
        return rep;  /* token refused: no backend call */
    rep = cached(g, key, g->ttl_ms, &age);
    t1 = gg_mono_us();
    gg_umetrics_phase(g->m, GG_UP_CHECK, t1 - t0);
    if (rep)
        return hit(g, rep, 0, age);
    e = gg_gov_acquire(g->gov, lane, 0);
    if (e == GG_ETIMEOUT) {
        rep = cached(g, key, g->stale_ms, &age);
        if (rep)
            return hit(g, rep, 1, age);
    }
    while (e == GG_ETIMEOUT) {
        int64_t now = gg_now_ms();
        int64_t until = expiry_ms < lease_until_ms ? expiry_ms : lease_until_ms;
        int64_t wait = until - now;

        if (now >= expiry_ms) {
            atomic_fetch_add(&g->waited_expired, 1);
            *v = GG_GATE_EXPIRED;
            return gg_svc_error(504, "expired", "the request expired waiting for the backend");
        }
        if (now >= lease_until_ms) {
            atomic_fetch_add(&g->waited_backout, 1);
            *v = GG_GATE_BACKOUT;
            return NULL;
        }
        e = gg_gov_acquire(g->gov, lane, (int)(wait < SLOT_WAIT_MS ? wait : SLOT_WAIT_MS));
    }
    t0 = gg_mono_us();
    gg_umetrics_phase(g->m, GG_UP_GOVERNOR, t0 - t1);
    if (e != GG_OK) {  /* closed: stopping */
        *v = GG_GATE_BACKOUT;
        return NULL;
    }
    if (key[0])
        atomic_fetch_add(&g->misses, 1);
    gg_umetrics_enter(g->m);
    rep = gg_svc_dispatch(ctx, txn, req);
    gg_umetrics_leave(g->m);
    t1 = gg_mono_us();
    gg_umetrics_phase(g->m, GG_UP_BACKEND, t1 - t0);
    gg_gov_release(g->gov, rep && status_of(rep) < 500 ? t1 - t0 : -1);
    if (rep && key[0] && status_of(rep) == 200) {
        char *text = json_dumps(rep, JSON_COMPACT | JSON_REAL_PRECISION(12));

        if (text)
            gg_cache_put(g->cache, key, account, text, gg_now_ms());
        free(text);
    } else if (rep && lane == GG_LANE_PRIORITY && status_of(rep) / 100 == 2) {
        json_t *a = json_object_get(req, "account_no");

        if (json_is_string(a))
            gg_gate_invalidate(g, json_string_value(a));
    }
    return rep;
}

size_t gg_gate_invalidate(gg_gate *g, const char *account)
{
    size_t n;

    if (g == NULL || account == NULL)
        return 0;
    n = gg_cache_invalidate(g->cache, account);
    atomic_fetch_add(&g->invalidated, (long long)n);
    return n;
}

void gg_gate_write_metrics(gg_gate *g, FILE *f)
{
    fprintf(f,
            "# HELP gridgate_governor_limit Most calls allowed in flight into the marketing system now.\n"
            "# TYPE gridgate_governor_limit gauge\n"
            "gridgate_governor_limit %d\n"
            "# HELP gridgate_governor_waiting Workers waiting for a governor slot, by lane.\n"
            "# TYPE gridgate_governor_waiting gauge\n"
            "gridgate_governor_waiting{lane=\"priority\"} %d\n"
            "gridgate_governor_waiting{lane=\"normal\"} %d\n"
            "# HELP gridgate_governor_gave_up_total Requests that waited for a slot until expiry (answered 504) or lease end (backed out).\n"
            "# TYPE gridgate_governor_gave_up_total counter\n"
            "gridgate_governor_gave_up_total{why=\"expired\"} %lld\n"
            "gridgate_governor_gave_up_total{why=\"lease\"} %lld\n"
            "# HELP gridgate_cache_hits_total Query answers served from the cache (stale: older than ttl, while the governor was saturated).\n"
            "# TYPE gridgate_cache_hits_total counter\n"
            "gridgate_cache_hits_total{kind=\"fresh\"} %lld\n"
            "gridgate_cache_hits_total{kind=\"stale\"} %lld\n"
            "# HELP gridgate_cache_misses_total Cacheable queries that went to the marketing system.\n"
            "# TYPE gridgate_cache_misses_total counter\n"
            "gridgate_cache_misses_total %lld\n"
            "# HELP gridgate_cache_hit_age_seconds_sum Summed age of the answers served from the cache.\n"
            "# TYPE gridgate_cache_hit_age_seconds_sum counter\n"
            "gridgate_cache_hit_age_seconds_sum %.3f\n"
            "# HELP gridgate_cache_invalidated_total Cached answers dropped by a payment or a bill sweep.\n"
            "# TYPE gridgate_cache_invalidated_total counter\n"
            "gridgate_cache_invalidated_total %lld\n"
            "# HELP gridgate_cache_entries Answers held in the cache.\n"
            "# TYPE gridgate_cache_entries gauge\n"
            "gridgate_cache_entries %zu\n",
            gg_gov_limit(g->gov), gg_gov_waiting(g->gov, GG_LANE_PRIORITY),
            gg_gov_waiting(g->gov, GG_LANE_NORMAL), (long long)atomic_load(&g->waited_expired),
            (long long)atomic_load(&g->waited_backout), (long long)atomic_load(&g->hits_fresh),
            (long long)atomic_load(&g->hits_stale), (long long)atomic_load(&g->misses),
            (double)atomic_load(&g->age_sum_ms) / 1000.0,
            (long long)atomic_load(&g->invalidated), gg_cache_size(g->cache));
}
