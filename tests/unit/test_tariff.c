/* test_tariff.c - the worked examples of TARIFF.md, to the fen.
 *
 * The tariff numbers come from the default table (the rows the seed
 * writes); the expected fen are the hand-worked results of TARIFF.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "marketing/tariff.h"

/* row - the default row with this code; fails the test if missing. */
static gg_tariff row(const char *code)
{
    size_t n = 0;
    const gg_tariff *t = gg_tariff_defaults(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].code, code) == 0)
            return t[i];
    fail_msg("no default tariff %s", code);
    gg_tariff none = { 0 };
    return none;
}

/* fen - the month's charge, asserting success. */
static int64_t fen(const char *code, int64_t ytd, int64_t peak, int64_t valley)
{
    gg_tariff t = row(code);
    int64_t f = -1;
    assert_int_equal(gg_tariff_month_fen(&t, ytd, peak, valley, &f), GG_OK);
    return f;
}

static void test_flat_crossing_into_tier2_is_16549_fen(void **state)
{
    (void)state;
    assert_int_equal(fen(GG_TARIFF_CODE_FLAT, 2600, 300, 0), 16549);
}

static void test_peak_valley_all_tier1_is_14749_fen(void **state)
{
    (void)state;
    assert_int_equal(fen(GG_TARIFF_CODE_PEAK_VALLEY, 0, 200, 100), 14749);
}

static void test_peak_valley_crossing_tiers_2_and_3_is_13666_fen(void **state)
{
    (void)state;
    assert_int_equal(fen(GG_TARIFF_CODE_PEAK_VALLEY, 4700, 150, 50), 13666);
}

static void test_flat_deep_in_tier3_is_10188_fen(void **state)
{
    (void)state;
    assert_int_equal(fen(GG_TARIFF_CODE_FLAT, 5000, 123, 0), 10188);
}

static void test_flat_rounds_half_up_264_then_792_fen(void **state)
{
    (void)state;
    assert_int_equal(fen(GG_TARIFF_CODE_FLAT, 0, 5, 0), 264);
    assert_int_equal(fen(GG_TARIFF_CODE_FLAT, 5, 15, 0), 792);
}

static void test_flat_spanning_all_three_tiers_is_129426_fen(void **state)
{
    (void)state;
    assert_int_equal(fen(GG_TARIFF_CODE_FLAT, 2700, 2200, 0), 129426);
}

static void test_flat_counts_peak_and_valley_kwh_together(void **state)
{
    (void)state;
    assert_int_equal(fen(GG_TARIFF_CODE_FLAT, 2600, 200, 100), 16549);
}

static void test_tier_boundary_kwh_belongs_to_lower_tier(void **state)
{
    gg_tariff t = row(GG_TARIFF_CODE_FLAT);
    int64_t tiers[3];
    (void)state;
    /* the 2,760th kWh is tier 1, the 2,761st tier 2 */
    assert_int_equal(gg_tariff_split(&t, 2759, 1, tiers), GG_OK);
    assert_int_equal(tiers[0], 1);
    assert_int_equal(tiers[1], 0);
    assert_int_equal(gg_tariff_split(&t, 2760, 1, tiers), GG_OK);
    assert_int_equal(tiers[0], 0);
    assert_int_equal(tiers[1], 1);
    assert_int_equal(gg_tariff_split(&t, 4800, 1, tiers), GG_OK);
    assert_int_equal(tiers[2], 1);
    /* 0.5283 and 0.5783 yuan: one kWh each side of the boundary */
    assert_int_equal(fen(GG_TARIFF_CODE_FLAT, 2759, 1, 0), 53);
    assert_int_equal(fen(GG_TARIFF_CODE_FLAT, 2760, 1, 0), 58);
}

static void test_zero_consumption_costs_nothing(void **state)
{
    (void)state;
    assert_int_equal(fen(GG_TARIFF_CODE_PEAK_VALLEY, 3000, 0, 0), 0);
}

static void test_negative_input_is_rejected(void **state)
{
    gg_tariff t = row(GG_TARIFF_CODE_FLAT);
    int64_t f = 7, tiers[3];
    (void)state;
    assert_int_equal(gg_tariff_month_fen(&t, -1, 10, 0, &f), GG_EINVAL);
    assert_int_equal(gg_tariff_month_fen(&t, 0, -10, 0, &f), GG_EINVAL);
    assert_int_equal(gg_tariff_month_fen(&t, 0, 10, -1, &f), GG_EINVAL);
    assert_int_equal(gg_tariff_split(&t, 0, -1, tiers), GG_EINVAL);
    assert_int_equal(f, 7);
    t.price[1] = -5783;
    assert_int_equal(gg_tariff_month_fen(&t, 0, 10, 0, &f), GG_EINVAL);
}

static void test_overflow_is_rejected(void **state)
{
    gg_tariff t = row(GG_TARIFF_CODE_PEAK_VALLEY);
    int64_t f = 7;
    (void)state;
    assert_int_equal(gg_tariff_month_fen(&t, 0, INT64_MAX / 2, 0, &f), GG_EINVAL);
    assert_int_equal(gg_tariff_month_fen(&t, INT64_MAX, 1, 0, &f), GG_EINVAL);
    assert_int_equal(f, 7);
}

static void test_inconsistent_table_is_rejected(void **state)
{
    gg_tariff t = row(GG_TARIFF_CODE_FLAT);
    int64_t f = 7;
    (void)state;
    t.tier2_max_kwh = t.tier1_max_kwh - 1;
    assert_int_equal(gg_tariff_month_fen(&t, 0, 10, 0, &f), GG_EINVAL);
    t = row(GG_TARIFF_CODE_FLAT);
    t.kind = (gg_tariff_kind)9;
    assert_int_equal(gg_tariff_month_fen(&t, 0, 10, 0, &f), GG_EINVAL);
    assert_int_equal(f, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_crossing_into_tier2_is_16549_fen),
        cmocka_unit_test(test_peak_valley_all_tier1_is_14749_fen),
        cmocka_unit_test(test_peak_valley_crossing_tiers_2_and_3_is_13666_fen),
        cmocka_unit_test(test_flat_deep_in_tier3_is_10188_fen),
        cmocka_unit_test(test_flat_rounds_half_up_264_then_792_fen),
        cmocka_unit_test(test_flat_spanning_all_three_tiers_is_129426_fen),
        cmocka_unit_test(test_flat_counts_peak_and_valley_kwh_together),
        cmocka_unit_test(test_tier_boundary_kwh_belongs_to_lower_tier),
        cmocka_unit_test(test_zero_consumption_costs_nothing),
        cmocka_unit_test(test_negative_input_is_rejected),
        cmocka_unit_test(test_overflow_is_rejected),
        cmocka_unit_test(test_inconsistent_table_is_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
