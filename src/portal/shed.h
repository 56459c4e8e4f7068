/* shed.h - load shedding at the portal: refuse at once what cannot be
 * answered in time.
 *
 * The portal cannot see the utility's queue, but it knows how many of its
 * requests are outstanding (relayed and not yet answered, whether or not
 * the caller still waits: a call that timed out is still queued over
 * there) and how fast answers come back (replies taken per second over the
 * last SHED_WINDOW_MS). A new normal-lane request would wait about
 * outstanding / rate seconds; when that is more than three quarters of
 * the call's budget (http.request_timeout_ms; the rest is for the channel
 * and the service itself) it is answered 503
 * overloaded at once, with Retry-After = the seconds the excess needs to
 * drain at the measured rate (at least 1). While no reply has come back in
 * the window, more than SHED_BLIND_PENDING outstanding requests count as
 * overloaded (Retry-After: the budget). Fewer than SHED_MIN_PENDING
 * outstanding never shed. Payments and bindings (the priority lane) are never
 * shed: the utility takes them first. Used only on the portal's loop thread.
 */
#ifndef GG_PORTAL_SHED_H
#define GG_PORTAL_SHED_H

#include <stddef.h>
#include <stdint.h>

#define SHED_WINDOW_MS 2000
#define SHED_MIN_PENDING 8
#define SHED_BLIND_PENDING 256

typedef struct gg_shed gg_shed;

gg_shed *gg_shed_new(int enabled, int64_t budget_ms);
void gg_shed_free(gg_shed *s);

/* gg_shed_reply - one reply came back at now_us (monotonic). */
void gg_shed_reply(gg_shed *s, int64_t now_us);

/* gg_shed_check - whether to refuse a new request now; *retry_after gets
 * seconds for the Retry-After header when it returns 1. */
int gg_shed_check(gg_shed *s, size_t pending, int64_t now_us, int *retry_after);

/* gg_shed_rate - replies per second over the window (for metrics). */
double gg_shed_rate(gg_shed *s, int64_t now_us);

/* gg_shed_count - requests refused so far. */
uint64_t gg_shed_count(const gg_shed *s);

#endif
