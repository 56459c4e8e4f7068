/* governor.c - slots, lanes and the gradient limiter (governor.h). */
#include "utility/governor.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "transport/transport.h"

#define DEFAULT_WINDOW 32
#define PROBE_EVERY 100        /* windows between baseline probes */

struct gg_governor {
    pthread_mutex_t mu;
    pthread_cond_t cv[GG_LANE_COUNT];
    gg_gov_opts o;
    int limit;
    int inflight;
    int waiting[GG_LANE_COUNT];
    int closed;
    /* adaptive window */
    int64_t win_sum_us;
    int win_n;
    int win_peak;              /* most slots held during the window */
    double baseline_us;        /* best window mean since the last probe; 0 at first */
    int base_age;              /* windows since the baseline was set */
    int probing;               /* this window runs at half the limit */
    int saved_limit;           /* the limit to return to after the probe */
    int probe_skip;            /* completions still due from before the probe */
};

gg_err gg_gov_new(const gg_gov_opts *o, gg_governor **out)
{
    gg_governor *g;

    *out = NULL;
    if (o->min_limit < 1 || o->max_limit < o->min_limit || o->tolerance_pct < 100)
        return GG_EINVAL;
    g = calloc(1, sizeof *g);
    if (!g)
        return GG_ENOMEM;
    pthread_mutex_init(&g->mu, NULL);
    for (int i = 0; i < GG_LANE_COUNT; i++) {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&g->cv[i], &ca);
        pthread_condattr_destroy(&ca);
    }
    g->o = *o;
    if (g->o.window <= 0)
        g->o.window = DEFAULT_WINDOW;
    /* adaptive starts low, so its first windows see the no-load latency */
    g->limit = o->adaptive ? o->min_limit : o->max_limit;
    *out = g;
    return GG_OK;
}

void gg_gov_free(gg_governor *g)
{
    if (!g)
        return;
    for (int i = 0; i < GG_LANE_COUNT; i++)
        pthread_cond_destroy(&g->cv[i]);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* wake_next - signal the next waiter who may now get a slot: priority first. */
static void wake_next(gg_governor *g)
{
    if (g->inflight >= g->limit)
        return;
    if (g->waiting[GG_LANE_PRIORITY] > 0)
        pthread_cond_signal(&g->cv[GG_LANE_PRIORITY]);
    else if (g->waiting[GG_LANE_NORMAL] > 0)
        pthread_cond_signal(&g->cv[GG_LANE_NORMAL]);
}

/* may_take - lane may take a slot now: one is free and, for the normal
 * lane, no priority waiter is queued ahead. */
static int may_take(gg_governor *g, gg_lane lane)
{
    if (g->inflight >= g->limit)
        return 0;
    return lane == GG_LANE_PRIORITY || g->waiting[GG_LANE_PRIORITY] == 0;
}

gg_err gg_gov_acquire(gg_governor *g, gg_lane lane, int timeout_ms)
{
    struct timespec dl;
    gg_err e = GG_OK;

    if ((int)lane < 0 || lane >= GG_LANE_COUNT)
        lane = GG_LANE_NORMAL;
    dl = gg_mono_deadline_ms(timeout_ms);
    pthread_mutex_lock(&g->mu);
    g->waiting[lane]++;
    while (!g->closed && !may_take(g, lane)) {
        if (timeout_ms <= 0 || pthread_cond_timedwait(&g->cv[lane], &g->mu, &dl) == ETIMEDOUT) {
            if (!may_take(g, lane))
                e = GG_ETIMEOUT;
            break;
        }
    }
    g->waiting[lane]--;
    if (g->closed)
        e = GG_ECLOSED;
    if (e == GG_OK) {
        g->inflight++;
        if (g->inflight > g->win_peak)
            g->win_peak = g->inflight;
    }
    wake_next(g);  /* a slot may still be free for the next in line */
    pthread_mutex_unlock(&g->mu);
    return e;
}

/* adapt - one step of the gradient limiter at the end of a window. The
 * baseline is the best window mean seen; every PROBE_EVERY windows one
 * window runs at half the limit to measure it afresh (so a backend that
 * became slower for good moves the baseline, Vegas-style). */
static void adapt(gg_governor *g)
{
    double mean = (double)g->win_sum_us / g->win_n;
    int used = g->win_peak >= g->limit;

    g->win_sum_us = 0;
    g->win_n = 0;
    g->win_peak = g->inflight;
    if (g->probing) {
        g->probing = 0;
        g->baseline_us = mean;
        g->base_age = 0;
        g->limit = g->saved_limit;
        return;
    }
    if (g->baseline_us <= 0 || mean < g->baseline_us) {
        g->baseline_us = mean;
        g->base_age = 0;
    } else if (++g->base_age >= PROBE_EVERY) {
        g->probing = 1;
        g->saved_limit = g->limit;
        g->limit = g->limit / 2 > g->o.min_limit ? g->limit / 2 : g->o.min_limit;
        g->probe_skip = g->inflight;
        return;
    }
    if (mean * 100.0 > g->baseline_us * g->o.tolerance_pct) {
        int cut = g->limit / 10 > 0 ? g->limit / 10 : 1;
        g->limit -= cut;
    } else if (used) {
        g->limit++;
    }
    if (g->limit < g->o.min_limit)
        g->limit = g->o.min_limit;
    if (g->limit > g->o.max_limit)
        g->limit = g->o.max_limit;
}

void gg_gov_release(gg_governor *g, int64_t latency_us)
{
    pthread_mutex_lock(&g->mu);
    if (g->inflight > 0)
        g->inflight--;
    if (g->o.adaptive && latency_us >= 0 && g->probe_skip > 0) {
        g->probe_skip--;  /* started before the probe's lower limit: not its sample */
    } else if (g->o.adaptive && latency_us >= 0) {
        g->win_sum_us += latency_us;
        if (++g->win_n >= g->o.window)
            adapt(g);
    }
    wake_next(g);
    pthread_mutex_unlock(&g->mu);
}

void gg_gov_close(gg_governor *g)
{
    pthread_mutex_lock(&g->mu);
    g->closed = 1;
    for (int i = 0; i < GG_LANE_COUNT; i++)
        pthread_cond_broadcast(&g->cv[i]);
    pthread_mutex_unlock(&g->mu);
}

/* locked_int - read one field under the lock. */
static int locked_int(gg_governor *g, const int *field)
{
    int v;

    pthread_mutex_lock(&g->mu);
    v = *field;
    pthread_mutex_unlock(&g->mu);
    return v;
}

int gg_gov_limit(gg_governor *g)
{
    return locked_int(g, &g->limit);
}

int gg_gov_inflight(gg_governor *g)
{
    return locked_int(g, &g->inflight);
}

int gg_gov_waiting(gg_governor *g, gg_lane lane)
{
    if ((int)lane < 0 || lane >= GG_LANE_COUNT)
        return 0;
    return locked_int(g, &g->waiting[lane]);
}

int gg_gov_saturated(gg_governor *g)
{
    int s;

    pthread_mutex_lock(&g->mu);
    s = g->inflight >= g->limit;
    pthread_mutex_unlock(&g->mu);
    return s;
}

gg_lane gg_lane_of(const char *txn)
{
    return strcmp(gg_transport_request_queue(txn), GG_Q_REQUESTS_PRIO) == 0 ? GG_LANE_PRIORITY
                                                                             : GG_LANE_NORMAL;
}
