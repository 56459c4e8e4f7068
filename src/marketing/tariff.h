/* tariff.h - residential tariff arithmetic, exact to the fen.
 *
 * Prices are integers in units of 0.0001 yuan per kWh; consumption is in
 * whole kWh; a month's kWh fall into annual tiers continuing from the
 * year-to-date total; the bill is summed in 0.0001 yuan and rounded half up
 * once to whole fen. No floating point. The numbers live in the marketing
 * database's tariff tables, never here (docs/marketing-schema.md; the
 * rules and worked examples: TARIFF.md in the design notes).
 */
#ifndef GG_MARKETING_TARIFF_H
#define GG_MARKETING_TARIFF_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef enum gg_tariff_kind {
    GG_TARIFF_FLAT = 1,
    GG_TARIFF_PEAK_VALLEY = 2,
} gg_tariff_kind;

typedef struct gg_tariff {
    char code[16];
    char name[96];              /* UTF-8, for people */
    gg_tariff_kind kind;
    int64_t tier1_max_kwh;      /* 2760: the last kWh of tier 1 */
    int64_t tier2_max_kwh;      /* 4800 */
    int64_t price[3];           /* flat: per tier, 0.0001 yuan/kWh */
    int64_t peak_price;         /* peak-valley: 0.0001 yuan/kWh */
    int64_t valley_price;
    int64_t surcharge[3];       /* peak-valley: added per kWh in tier 1, 2, 3 */
} gg_tariff;

/* gg_tariff_month_fen - the month's charge. ytd_kwh is the year's total
 * before the month. GG_EINVAL for negative input, an inconsistent table
 * (unknown kind, negative price, tier2_max < tier1_max) or overflow; *fen
 * is untouched on error. Every kWh pays its tier's surcharge; a flat
 * tariff adds price[tier] (kwh_peak + kwh_valley is the month's total), a
 * peak-valley one adds peak_price or valley_price. */
gg_err gg_tariff_month_fen(const gg_tariff *t, int64_t ytd_kwh, int64_t kwh_peak,
                           int64_t kwh_valley, int64_t *fen);

/* gg_tariff_split - how the month's kwh fall into the three tiers, given
 * the year's total before the month (a boundary kWh belongs to the lower
 * tier). GG_EINVAL for negative input or tier2_max < tier1_max. */
gg_err gg_tariff_split(const gg_tariff *t, int64_t ytd_kwh, int64_t kwh, int64_t tiers[3]);

/* gg_tariff_defaults - the default tariff table (Jiangsu residential,
 * 2012): the rows a new marketing database is seeded with, and nothing
 * else reads them (bills use the database's table). *n gets the count. */
const gg_tariff *gg_tariff_defaults(size_t *n);

/* Codes of the default rows. */
#define GG_TARIFF_CODE_FLAT "JS-RES-FLAT"
#define GG_TARIFF_CODE_PEAK_VALLEY "JS-RES-TOU"

#endif
