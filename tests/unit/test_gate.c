/* test_gate.c - the gate into the marketing system: governor and cache
 * around real services on a small seeded SQLite database.
 *
 * A bill query is cached after its first answer and served fresh within
 * the TTL; past the TTL, while every governor slot is held, the stale
 * answer is served at once instead of waiting; a bad token never gets a
 * cached answer; a request waiting for a slot is answered 504 expired at
 * its expiry and backed out at the end of its lease, never run late; a
 * payment-lane success drops the account's cached answers; the metrics
 * carry the limit and the hits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/rand.h"
#include "envelope/token.h"
#include "marketing/marketing.h"
#include "marketing/seed.h"
#include "utility/gate.h"
#include "market_fixture.h"

typedef struct fx {
    gg_test_mkt mk;
    gg_mkt *m;
    gg_config *cfg;
    gg_umetrics um;
    gg_gate *g;
    uint8_t key[GG_TOKEN_KEY_LEN];
    char token[GG_TOKEN_MAX];
    char acct[33];
    gg_svc_ctx ctx;
} fx;

static int setup(void **state)
{
    gg_seed_opts o = { 20, 3, 7, "2025-10" };
    gg_account a;
    char err[256];
    fx *f = calloc(1, sizeof *f);

    if (!f)
        return -1;
    if (gg_test_mkt_seed(&f->mk, "test_gate.", &o) != 0 || gg_mkt_open(f->mk.db, &f->m) != GG_OK ||
        gg_mkt_sample_account(f->m, &a) != GG_OK)
        return -1;
    snprintf(f->acct, sizeof f->acct, "%s", a.account_no);
    if (gg_config_parse("[site]\nrole = utility\n[governor]\nmax_inflight = 1\n"
                        "[cache]\nttl_ms = 100\nstale_ms = 60000\n",
                        f->mk.dir, &f->cfg, err, sizeof err) != GG_OK)
        return -1;
    gg_umetrics_init(&f->um);
    if (gg_gate_new(f->cfg, 4, &f->um, &f->g) != GG_OK)
        return -1;
    gg_random(f->key, sizeof f->key);
    if (gg_test_token(f->key, "u1", f->acct, GG_SCOPE_READ | GG_SCOPE_PAY, gg_now_ms() + 3600000,
                      f->token, sizeof f->token) != GG_OK)
        return -1;
    f->ctx.mkt = f->m;
    f->ctx.token_key = f->key;
    f->ctx.token_ttl_ms = 3600000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    gg_gate_free(f->g);
    gg_umetrics_destroy(&f->um);
    gg_config_free(f->cfg);
    gg_mkt_close(f->m);
    gg_test_mkt_remove(&f->mk);
    free(f);
    return 0;
}

/* query - one bills.query through the gate; returns its status. */
static int query(fx *f, const char *token, int64_t expiry_in, int64_t lease_in,
                 gg_gate_verdict *v)
{
    json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "binding_token", token, "account_no",
                            f->acct, "from", "2025-08", "to", "2025-10");
    json_t *rep;
    int st = -1;

    f->ctx.now_ms = gg_now_ms();
    rep = gg_gate_call(f->g, &f->ctx, "bills.query", req, gg_now_ms() + expiry_in,
                       gg_now_ms() + lease_in, v);
    if (rep)
        st = (int)json_integer_value(json_object_get(rep, "status"));
    json_decref(rep);
    json_decref(req);
    return st;
}

/* metric - the value of one series in the gate's metrics text. */
static long long metric(fx *f, const char *series)
{
    char *text = NULL, *p;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    long long v = -1;

    char pat[160];

    gg_gate_write_metrics(f->g, m);
    fclose(m);
    snprintf(pat, sizeof pat, "\n%s ", series);  /* the sample line, not its # HELP */
    p = strstr(text, pat);
    if (p)
        v = atoll(p + strlen(pat));
    free(text);
    return v;
}

static void test_fresh_then_stale_when_saturated(void **state)
{
    fx *f = *state;
    gg_governor *gov = gg_gate_governor(f->g);
    gg_gate_verdict v;

    assert_int_equal(query(f, f->token, 10000, 10000, &v), 200);    /* miss */
    assert_int_equal(query(f, f->token, 10000, 10000, &v), 200);    /* fresh hit */
    assert_int_equal(metric(f, "gridgate_cache_misses_total"), 1);
    assert_int_equal(metric(f, "gridgate_cache_hits_total{kind=\"fresh\"}"), 1);
    usleep(150 * 1000);                                              /* past the TTL */
    assert_int_equal(gg_gov_acquire(gov, GG_LANE_PRIORITY, 0), GG_OK);  /* saturate */
    {
        int64_t t0 = gg_mono_us();
        assert_int_equal(query(f, f->token, 10000, 10000, &v), 200);
        assert_true(gg_mono_us() - t0 < 100000);                     /* at once */
    }
    assert_int_equal(metric(f, "gridgate_cache_hits_total{kind=\"stale\"}"), 1);
    gg_gov_release(gov, -1);
    assert_int_equal(metric(f, "gridgate_governor_limit"), 1);
    assert_int_equal(atomic_load(&f->um.inflight_max), 1);
}

static void test_bad_token_never_gets_the_cached_answer(void **state)
{
    fx *f = *state;
    gg_gate_verdict v;

    assert_int_equal(query(f, f->token, 10000, 10000, &v), 200);
    assert_int_equal(query(f, "gg1.bogus.token", 10000, 10000, &v), 401);
}

static void test_waiting_ends_at_expiry_or_lease_never_runs_late(void **state)
{
    fx *f = *state;
    gg_governor *gov = gg_gate_governor(f->g);
    json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "binding_token", f->token, "account_no",
                            f->acct, "from", "2025-01", "to", "2025-02");  /* not cached */
    gg_gate_verdict v;
    json_t *rep;
    int64_t t0;

    assert_int_equal(gg_gov_acquire(gov, GG_LANE_PRIORITY, 0), GG_OK);
    f->ctx.now_ms = gg_now_ms();
    t0 = gg_mono_us();
    rep = gg_gate_call(f->g, &f->ctx, "bills.query", req, gg_now_ms() + 150,
                       gg_now_ms() + 10000, &v);
    assert_int_equal(v, GG_GATE_EXPIRED);
    assert_int_equal(json_integer_value(json_object_get(rep, "status")), 504);
    assert_true(gg_mono_us() - t0 >= 140000);
    json_decref(rep);
    rep = gg_gate_call(f->g, &f->ctx, "bills.query", req, gg_now_ms() + 10000,
                       gg_now_ms() + 150, &v);
    assert_int_equal(v, GG_GATE_BACKOUT);
    assert_null(rep);
    assert_int_equal(metric(f, "gridgate_governor_gave_up_total{why=\"expired\"}"), 1);
    assert_int_equal(metric(f, "gridgate_governor_gave_up_total{why=\"lease\"}"), 1);
    gg_gov_release(gov, -1);
    assert_int_equal(atomic_load(&f->um.inflight_max), 0);  /* the service never ran */
    json_decref(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_then_stale_when_saturated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_token_never_gets_the_cached_answer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_waiting_ends_at_expiry_or_lease_never_runs_late,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
