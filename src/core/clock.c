/* clock.c - wall and monotonic time behind one seam (see clock.h). */
#include "core/clock.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

static _Atomic int64_t offset_ms;
static atomic_int offset_loaded;

/* load_env_offset - read GG_CLOCK_OFFSET_MS once. */
static void load_env_offset(void)
{
    if (atomic_exchange(&offset_loaded, 1))
        return;
    const char *s = getenv("GG_CLOCK_OFFSET_MS");
    if (s && *s)
        atomic_fetch_add(&offset_ms, strtoll(s, NULL, 10));
}

int64_t gg_now_ms(void)
{
    struct timespec ts;
    load_env_offset();
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atomic_load(&offset_ms);
}

int64_t gg_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct timespec gg_mono_deadline_ms(int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void gg_clock_set_offset_ms(int64_t delta)
{
    load_env_offset();
    atomic_store(&offset_ms, delta);
}
