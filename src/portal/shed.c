/* shed.c - the portal's drain-rate estimate and shedding rule (shed.h). */
#include "portal/shed.h"

#include <stdlib.h>

#define SLOTS 8                               /* buckets of the window */
#define SLOT_US ((int64_t)SHED_WINDOW_MS * 1000 / SLOTS)

struct gg_shed {
    int enabled;
    int64_t budget_ms;
    int64_t slot_start[SLOTS];                /* start of the bucket's period */
    uint32_t count[SLOTS];
    uint64_t shed;
};

gg_shed *gg_shed_new(int enabled, int64_t budget_ms)
{
    gg_shed *s = calloc(1, sizeof *s);

    if (s) {
        s->enabled = enabled;
        s->budget_ms = budget_ms > 0 ? budget_ms : 1000;
    }
    return s;
}

void gg_shed_free(gg_shed *s)
{
    free(s);
}

void gg_shed_reply(gg_shed *s, int64_t now_us)
{
    int64_t period = now_us / SLOT_US;
    int i = (int)(period % SLOTS);

    if (s->slot_start[i] != period) {
        s->slot_start[i] = period;
        s->count[i] = 0;
    }
    s->count[i]++;
}

double gg_shed_rate(gg_shed *s, int64_t now_us)
{
    int64_t period = now_us / SLOT_US;
    uint64_t n = 0;

    /* the current, partial bucket is left out: whole buckets only */
    for (int k = 1; k < SLOTS; k++) {
        int64_t p = period - k;
        int i = (int)(((p % SLOTS) + SLOTS) % SLOTS);

        if (p >= 0 && s->slot_start[i] == p)
            n += s->count[i];
    }
    return (double)n * 1e6 / (double)(SLOT_US * (SLOTS - 1));
}

int gg_shed_check(gg_shed *s, size_t pending, int64_t now_us, int *retry_after)
{
    /* three quarters of the budget: the rest is for the way there and back */
    double rate, wait_s, budget_s = (double)s->budget_ms * 0.75 / 1000.0;

    *retry_after = 0;
    if (!s->enabled || pending < SHED_MIN_PENDING)
        return 0;
    rate = gg_shed_rate(s, now_us);
    if (rate <= 0.0) {
        if (pending < SHED_BLIND_PENDING)
            return 0;
        *retry_after = (int)(budget_s + 0.999);
    } else {
        wait_s = (double)pending / rate;
        if (wait_s <= budget_s)
            return 0;
        /* the excess over what drains within the budget, at the same rate */
        *retry_after = (int)((double)pending / rate - budget_s + 0.999);
    }
    if (*retry_after < 1)
        *retry_after = 1;
    s->shed++;
    return 1;
}

uint64_t gg_shed_count(const gg_shed *s)
{
    return s->shed;
}
