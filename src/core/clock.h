/* clock.h - the time seam. All of gridgate reads time through here so tests
 * can move it. Wall time is for message timestamps and expiry; monotonic
 * time is for timeouts and latency.
 */
#ifndef GG_CORE_CLOCK_H
#define GG_CORE_CLOCK_H

#include <stdint.h>

/* gg_now_ms - wall clock, milliseconds since the Unix epoch (plus test offset). */
int64_t gg_now_ms(void);

/* gg_mono_us - monotonic clock in microseconds. */
int64_t gg_mono_us(void);

/* gg_mono_deadline_ms - the CLOCK_MONOTONIC time ms (>= 0) from now, as
 * an absolute time for pthread_cond_timedwait on a condition variable set
 * to CLOCK_MONOTONIC. */
struct timespec;
struct timespec gg_mono_deadline_ms(int64_t ms);

/* gg_clock_set_offset_ms - tests only: shift gg_now_ms by delta. Also read
 * from the environment variable GG_CLOCK_OFFSET_MS at first use. */
void gg_clock_set_offset_ms(int64_t delta);

#endif
