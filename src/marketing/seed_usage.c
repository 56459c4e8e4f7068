/* seed_usage.c - daily household consumption for the synthetic database.
 *
 * Nanjing has hot summers and cold, damp winters, and homes heat and cool
 * with split air conditioners, so consumption peaks in July-August and
 * December-January. A household's day = base (size and habits) x season
 * (scaled by the household's sensitivity) x weekly rhythm x noise, with
 * occasional absences. 60-70% of it falls in the peak hours 08:00-21:00.
 * Basic double arithmetic only (see seedgen.h).
 */
#include "marketing/seedgen.h"

/* Mid-month seasonal factors, January first; the mean is about 1.12. */
static const double season_mid[12] = {
    1.40, 1.20, 0.92, 0.80, 0.84, 1.02, 1.55, 1.62, 1.12, 0.84, 0.90, 1.28,
};

/* season_factor - the factor for a day, interpolated between mid-months. */
static double season_factor(int m, int d, int dim)
{
    double t = ((double)d - 0.5) / (double)dim; /* 0..1 through the month */
    int i = m - 1, j;
    double w;

    if (t < 0.5) {
        j = (i + 11) % 12;
        w = 0.5 - t; /* weight of the previous month */
    } else {
        j = (i + 1) % 12;
        w = t - 0.5; /* weight of the next month */
    }
    return season_mid[i] * (1.0 - w) + season_mid[j] * w;
}

void sg_house_make(sg_rng *r, int holder_age, int peak_valley, sg_house *h)
{
    static const int size_weight[5] = { 16, 30, 29, 15, 10 }; /* 1..5 persons */
    uint32_t u = sg_below(r, 100);

    h->persons = 1;
    for (int i = 0; i < 5; i++) {
        if (u < (uint32_t)size_weight[i]) {
            h->persons = i + 1;
            break;
        }
        u -= (uint32_t)size_weight[i];
    }
    h->vacant = sg_below(r, 100) < 4;
    h->commuters = holder_age < 62 ? sg_below(r, 100) < 85 : sg_below(r, 100) < 20;
    h->base_kwh = (1.5 + 1.55 * h->persons) * sg_range(r, 0.70, 1.35);
    h->season = sg_range(r, 0.45, 1.55);
    if (h->vacant) {
        h->base_kwh = sg_range(r, 0.4, 1.5);
        h->season = 0.15;
    }
    h->peak_share = peak_valley ? sg_range(r, 0.58, 0.66) : sg_range(r, 0.61, 0.70);
    h->away_days = 0;
}

void sg_house_day(sg_rng *r, sg_house *h, int64_t day, int64_t *peak_c, int64_t *valley_c)
{
    int y, m, d, wd = sg_weekday(day);
    int weekend = wd >= 5;
    double kwh, share, week = 1.0;
    int64_t total, peak;

    sg_civil_from_days(day, &y, &m, &d);
    if (h->away_days == 0) {
        /* trips: more around the Spring Festival and the October holiday */
        uint32_t per_10k = (m <= 2 || (m == 10 && d <= 7)) ? 120 : 40;
        if (!h->vacant && sg_below(r, 10000) < per_10k)
            h->away_days = 2 + (int)sg_below(r, 9);
    }
    if (h->commuters)
        week = weekend ? 1.15 : 0.96;
    kwh = h->base_kwh * (1.0 + h->season * (season_factor(m, d, sg_days_in_month(y, m)) - 1.0));
    kwh *= week * (0.8 + 0.2 * (sg_unit(r) + sg_unit(r)));
    if (h->away_days > 0) {
        kwh *= 0.12; /* the refrigerator and standby */
        h->away_days--;
    }
    share = h->peak_share + 0.08 * (sg_unit(r) - 0.5) + (weekend ? 0.02 : 0.0);
    if (share < 0.40)
        share = 0.40;
    if (share > 0.85)
        share = 0.85;
    total = (int64_t)(kwh * 100.0 + 0.5);
    if (total < 0)
        total = 0;
    peak = (int64_t)((double)total * share + 0.5);
    *peak_c = peak;
    *valley_c = total - peak;
}
