/* test_governor.c - the concurrency governor and the query cache.
 *
 * The governor never lets more than its limit hold slots, even with many
 * threads hammering it; a priority waiter gets a freed slot before normal
 * waiters queued earlier; a saturated governor refuses at once when asked
 * not to wait, and close wakes every waiter; the adaptive limiter settles
 * near a simulated backend's knee and stays within its bounds. The cache
 * evicts least recently used first, honours ages and drops an account's
 * answers on invalidation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "utility/cache.h"
#include "utility/governor.h"

static gg_governor *mk(int adaptive, int min, int max)
{
    gg_gov_opts o = { adaptive, min, max, 150, 0 };
    gg_governor *g = NULL;

    assert_int_equal(gg_gov_new(&o, &g), GG_OK);
    return g;
}

typedef struct hammer {
    gg_governor *g;
    atomic_int in, max;
} hammer;

static void *hammer_main(void *arg)
{
    hammer *h = arg;

    for (int i = 0; i < 300; i++) {
        gg_lane lane = (i % 5 == 0) ? GG_LANE_PRIORITY : GG_LANE_NORMAL;
        if (gg_gov_acquire(h->g, lane, 2000) != GG_OK)
            continue;
        int now = atomic_fetch_add(&h->in, 1) + 1;
        int m = atomic_load(&h->max);
        while (now > m && !atomic_compare_exchange_weak(&h->max, &m, now))
            ;
        usleep(50);
        atomic_fetch_sub(&h->in, 1);
        gg_gov_release(h->g, 50);
    }
    return NULL;
}

static void test_inflight_never_exceeds_the_limit(void **state)
{
    hammer h;
    pthread_t th[16];

    (void)state;
    h.g = mk(0, 1, 3);
    atomic_init(&h.in, 0);
    atomic_init(&h.max, 0);
    for (int i = 0; i < 16; i++)
        pthread_create(&th[i], NULL, hammer_main, &h);
    for (int i = 0; i < 16; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&h.max), 3);
    assert_int_equal(gg_gov_inflight(h.g), 0);
    gg_gov_free(h.g);
}

typedef struct waiter {
    gg_governor *g;
    gg_lane lane;
    atomic_int *order;
    int got;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;

    if (gg_gov_acquire(w->g, w->lane, 5000) == GG_OK) {
        w->got = atomic_fetch_add(w->order, 1) + 1;
        gg_gov_release(w->g, -1);
    }
    return NULL;
}

static void test_priority_waiter_goes_before_earlier_normal_waiters(void **state)
{
    gg_governor *g = mk(0, 1, 1);
    atomic_int order;
    waiter n1 = { g, GG_LANE_NORMAL, &order, 0 }, n2 = n1, p = { g, GG_LANE_PRIORITY, &order, 0 };
    pthread_t t1, t2, t3;

    (void)state;
    atomic_init(&order, 0);
    assert_int_equal(gg_gov_acquire(g, GG_LANE_NORMAL, 0), GG_OK);
    pthread_create(&t1, NULL, waiter_main, &n1);
    pthread_create(&t2, NULL, waiter_main, &n2);
    while (gg_gov_waiting(g, GG_LANE_NORMAL) < 2)
        usleep(1000);
    pthread_create(&t3, NULL, waiter_main, &p);
    while (gg_gov_waiting(g, GG_LANE_PRIORITY) < 1)
        usleep(1000);
    gg_gov_release(g, -1);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_join(t3, NULL);
    assert_int_equal(p.got, 1);
    assert_true(n1.got > 1 && n2.got > 1);
    gg_gov_free(g);
}

static void test_saturated_refuses_at_once_and_close_wakes(void **state)
{
    gg_governor *g = mk(0, 1, 1);
    waiter w;
    atomic_int order;
    pthread_t t;

    (void)state;
    atomic_init(&order, 0);
    assert_int_equal(gg_gov_acquire(g, GG_LANE_PRIORITY, 0), GG_OK);
    assert_true(gg_gov_saturated(g));
    assert_int_equal(gg_gov_acquire(g, GG_LANE_PRIORITY, 0), GG_ETIMEOUT);
    assert_int_equal(gg_gov_acquire(g, GG_LANE_NORMAL, 30), GG_ETIMEOUT);
    w = (waiter){ g, GG_LANE_NORMAL, &order, 0 };
    pthread_create(&t, NULL, waiter_main, &w);
    while (gg_gov_waiting(g, GG_LANE_NORMAL) < 1)
        usleep(1000);
    gg_gov_close(g);
    pthread_join(t, NULL);
    assert_int_equal(w.got, 0);
    assert_int_equal(gg_gov_acquire(g, GG_LANE_NORMAL, 0), GG_ECLOSED);
    gg_gov_free(g);
}

/* simulate - run the adaptive governor against a backend that serves knee
 * calls at once in base_us; more queue (latency grows with concurrency). */
static int simulate(gg_governor *g, int knee, int steps)
{
    for (int s = 0; s < steps; s++) {
        int conc = gg_gov_limit(g);
        int64_t lat = 2000 * (conc > knee ? conc : knee) / knee;

        for (int i = 0; i < conc; i++)
            assert_int_equal(gg_gov_acquire(g, GG_LANE_NORMAL, 0), GG_OK);
        for (int i = 0; i < conc; i++)
            gg_gov_release(g, lat + (i % 3) * 10);
    }
    return gg_gov_limit(g);
}

static void test_adaptive_limit_settles_near_the_knee(void **state)
{
    (void)state;
    for (int knee = 4; knee <= 32; knee *= 2) {
        gg_governor *g = mk(1, 1, 64);
        int lim = simulate(g, knee, 2000);

        if (lim < knee * 7 / 10 || lim > knee * 3 / 2 + 1) /* tolerance 150% */
            fail_msg("knee %d: limit settled at %d", knee, lim);
        gg_gov_free(g);
    }
    {
        gg_governor *g = mk(1, 3, 5);  /* bounds hold */
        int lim = simulate(g, 32, 500);
        assert_int_equal(lim, 5);
        gg_gov_free(g);
        g = mk(1, 3, 5);
        lim = simulate(g, 1, 500);
        assert_true(lim >= 3 && lim <= 4);
        gg_gov_free(g);
    }
}

static void test_cache_lru_age_and_invalidation(void **state)
{
    gg_cache *c = NULL;
    char *v;
    int64_t age = -1;

    (void)state;
    assert_int_equal(gg_cache_new(3, &c), GG_OK);
    gg_cache_put(c, "k1", "A", "v1", 1000);
    gg_cache_put(c, "k2", "A", "v2", 1000);
    gg_cache_put(c, "k3", "B", "v3", 1000);
    v = gg_cache_get(c, "k1", 1500, 1000, &age);  /* k1 now most recent */
    assert_string_equal(v, "v1");
    assert_int_equal(age, 500);
    free(v);
    gg_cache_put(c, "k4", "B", "v4", 1600);       /* evicts k2, the least recent */
    assert_null(gg_cache_get(c, "k2", 1600, 10000, NULL));
    assert_int_equal(gg_cache_size(c), 3);
    assert_null(gg_cache_get(c, "k3", 2500, 1000, NULL));  /* too old for this caller */
    v = gg_cache_get(c, "k3", 2500, 2000, NULL);           /* fine for a staler one */
    assert_string_equal(v, "v3");
    free(v);
    gg_cache_put(c, "k1", "A", "v1b", 3000);               /* replace */
    v = gg_cache_get(c, "k1", 3000, 0, NULL);
    assert_string_equal(v, "v1b");
    free(v);
    assert_int_equal(gg_cache_invalidate(c, "B"), 2);
    assert_int_equal(gg_cache_size(c), 1);
    assert_null(gg_cache_get(c, "k4", 3000, 10000, NULL));
    gg_cache_free(c);
    assert_int_equal(gg_cache_new(0, &c), GG_OK);          /* disabled */
    gg_cache_put(c, "k", "A", "v", 0);
    assert_null(gg_cache_get(c, "k", 0, 1000, NULL));
    gg_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inflight_never_exceeds_the_limit),
        cmocka_unit_test(test_priority_waiter_goes_before_earlier_normal_waiters),
        cmocka_unit_test(test_saturated_refuses_at_once_and_close_wakes),
        cmocka_unit_test(test_adaptive_limit_settles_near_the_knee),
        cmocka_unit_test(test_cache_lru_age_and_invalidation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
