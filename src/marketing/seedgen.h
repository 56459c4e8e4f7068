/* seedgen.h - internal to the seed: a deterministic PRNG, civil dates, and
 * the generators of people (names, IDs, phones, addresses) and of daily
 * consumption. Only seed*.c include this.
 *
 * Determinism: everything is integer or basic IEEE double arithmetic (no
 * libm transcendental functions), so one seed gives the same bytes on any
 * x86-64 or aarch64 build. Never rand().
 */
#ifndef GG_MARKETING_SEEDGEN_H
#define GG_MARKETING_SEEDGEN_H

#include <stdint.h>

/* xoshiro256** seeded through splitmix64. */
typedef struct sg_rng {
    uint64_t s[4];
} sg_rng;

/* sg_rng_seed - a stream determined by (seed, stream). */
void sg_rng_seed(sg_rng *r, uint64_t seed, uint64_t stream);
uint64_t sg_next(sg_rng *r);
/* sg_below - uniform in [0, n), n >= 1. */
uint32_t sg_below(sg_rng *r, uint32_t n);
/* sg_unit - uniform double in [0, 1). */
double sg_unit(sg_rng *r);
/* sg_range - uniform double in [lo, hi). */
double sg_range(sg_rng *r, double lo, double hi);

/* sg_digits - write v mod 10^width as exactly width decimal digits (no NUL);
 * returns out + width. */
char *sg_digits(char *out, unsigned v, int width);

/* Civil dates as days since 1970-01-01 (proleptic Gregorian). */
int64_t sg_days_from_civil(int y, int m, int d);
void sg_civil_from_days(int64_t z, int *y, int *m, int *d);
int sg_days_in_month(int y, int m);
/* sg_weekday - 0 = Monday .. 6 = Sunday. */
int sg_weekday(int64_t z);

/* The 11 districts of Nanjing. */
#define SG_DISTRICTS 11
/* sg_district_name - UTF-8 name ("玄武区") of district i. */
const char *sg_district_name(int i);
/* sg_district_code - its 6-digit administrative code ("320102"). */
const char *sg_district_code(int i);

typedef struct sg_person {
    char name[32];          /* 2-4 Chinese characters, UTF-8 */
    char phone[12];         /* 11 digits */
    char id_no[19];         /* 18 chars, GB 11643 check digit */
    char address[160];
    int district;           /* 0..SG_DISTRICTS-1 */
    int male;
    int birth_year;
} sg_person;

/* sg_person_make - a random Nanjing resident, born so as to be 22..88 in
 * as_of_year. */
void sg_person_make(sg_rng *r, int as_of_year, sg_person *p);

/* sg_id_check - the GB 11643 check character for the first 17 digits. */
char sg_id_check(const char *first17);

/* A household's consumption model. */
typedef struct sg_house {
    int persons;            /* 1..5 */
    int vacant;             /* a second home, mostly empty */
    int commuters;          /* weekday/weekend rhythm */
    double base_kwh;        /* daily kWh in a mild month */
    double season;          /* sensitivity to summer and winter (AC) */
    double peak_share;      /* typical share of kWh 08:00-21:00 */
    int away_days;          /* days left of an absence */
} sg_house;

/* sg_house_make - a household; age of the holder and the tariff (people on
 * peak-valley move some load to the night) shape it. */
void sg_house_make(sg_rng *r, int holder_age, int peak_valley, sg_house *h);

/* sg_house_day - one day's consumption in centi-kWh (0.01 kWh). */
void sg_house_day(sg_rng *r, sg_house *h, int64_t day, int64_t *peak_c, int64_t *valley_c);

#endif
