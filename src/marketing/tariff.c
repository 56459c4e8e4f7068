/* tariff.c - residential tariff arithmetic in integers of 0.0001 yuan.
 *
 * A month's kWh are numbered ytd+1 .. ytd+kwh within the year; kWh number
 * n is in tier 1 when n <= tier1_max, tier 2 when n <= tier2_max, tier 3
 * otherwise. The bill is summed exactly and rounded half up once:
 * fen = (amount + 50) / 100. Overflow is checked at every step.
 */
#include "marketing/tariff.h"

/* The default table. The numbers are data: this is what the seed writes
 * into a new database's tariffs table; bills read the database. */
static const gg_tariff default_tariffs[] = {
    {
        .code = GG_TARIFF_CODE_FLAT,
        .name = "江苏居民阶梯电价（一户一表）",
        .kind = GG_TARIFF_FLAT,
        .tier1_max_kwh = 2760,
        .tier2_max_kwh = 4800,
        .price = { 5283, 5783, 8283 },
        .peak_price = 0,
        .valley_price = 0,
        .surcharge = { 0, 0, 0 },
    },
    {
        .code = GG_TARIFF_CODE_PEAK_VALLEY,
        .name = "江苏居民峰谷分时阶梯电价（一户一表）",
        .kind = GG_TARIFF_PEAK_VALLEY,
        .tier1_max_kwh = 2760,
        .tier2_max_kwh = 4800,
        .price = { 0, 0, 0 },
        .peak_price = 5583,
        .valley_price = 3583,
        .surcharge = { 0, 500, 3000 },
    },
};

const gg_tariff *gg_tariff_defaults(size_t *n)
{
    *n = sizeof default_tariffs / sizeof default_tariffs[0];
    return default_tariffs;
}

/* clamp_span - how many of the kWh numbered (lo, hi] lie in (a, b]. */
static int64_t clamp_span(int64_t lo, int64_t hi, int64_t a, int64_t b)
{
    int64_t from = lo > a ? lo : a;
    int64_t to = hi < b ? hi : b;
    return to > from ? to - from : 0;
}

gg_err gg_tariff_split(const gg_tariff *t, int64_t ytd_kwh, int64_t kwh, int64_t tiers[3])
{
    int64_t end;

    if (!t || ytd_kwh < 0 || kwh < 0 || t->tier1_max_kwh < 0 ||
        t->tier2_max_kwh < t->tier1_max_kwh)
        return GG_EINVAL;
    if (__builtin_add_overflow(ytd_kwh, kwh, &end))
        return GG_EINVAL;
    tiers[0] = clamp_span(ytd_kwh, end, 0, t->tier1_max_kwh);
    tiers[1] = clamp_span(ytd_kwh, end, t->tier1_max_kwh, t->tier2_max_kwh);
    tiers[2] = clamp_span(ytd_kwh, end, t->tier2_max_kwh, INT64_MAX);
    return GG_OK;
}

/* add_product - *acc += kwh * price, GG_EINVAL on overflow. */
static gg_err add_product(int64_t *acc, int64_t kwh, int64_t price)
{
    int64_t p;

    if (__builtin_mul_overflow(kwh, price, &p))
        return GG_EINVAL;
    if (__builtin_add_overflow(*acc, p, acc))
        return GG_EINVAL;
    return GG_OK;
}

/* table_ok - every price non-negative and the kind known. */
static int table_ok(const gg_tariff *t)
{
    if (t->kind != GG_TARIFF_FLAT && t->kind != GG_TARIFF_PEAK_VALLEY)
        return 0;
    if (t->peak_price < 0 || t->valley_price < 0)
        return 0;
    for (int i = 0; i < 3; i++)
        if (t->price[i] < 0 || t->surcharge[i] < 0)
            return 0;
    return 1;
}

gg_err gg_tariff_month_fen(const gg_tariff *t, int64_t ytd_kwh, int64_t kwh_peak,
                           int64_t kwh_valley, int64_t *fen)
{
    int64_t kwh, tiers[3], amount = 0; /* 0.0001 yuan */
    gg_err err;

    if (!t || !fen || kwh_peak < 0 || kwh_valley < 0 || !table_ok(t))
        return GG_EINVAL;
    if (__builtin_add_overflow(kwh_peak, kwh_valley, &kwh))
        return GG_EINVAL;
    err = gg_tariff_split(t, ytd_kwh, kwh, tiers);
    if (err != GG_OK)
        return err;
    for (int i = 0; i < 3; i++) {
        int64_t per_kwh = t->surcharge[i];
        if (t->kind == GG_TARIFF_FLAT && __builtin_add_overflow(per_kwh, t->price[i], &per_kwh))
            return GG_EINVAL;
        err = add_product(&amount, tiers[i], per_kwh);
        if (err != GG_OK)
            return err;
    }
    if (t->kind == GG_TARIFF_PEAK_VALLEY) {
        err = add_product(&amount, kwh_peak, t->peak_price);
        if (err == GG_OK)
            err = add_product(&amount, kwh_valley, t->valley_price);
        if (err != GG_OK)
            return err;
    }
    if (amount > INT64_MAX - 50)
        return GG_EINVAL;
    *fen = (amount + 50) / 100;
    return GG_OK;
}
