/* offload.h - one worker thread for the portal's blocking calls that are
 * not requests: a call that would wait on the store (a read that queues
 * behind a commit and its fsync) runs there, and its continuation runs
 * back on the loop.
 *
 * A job is a pair: fn(arg) on the worker thread, then done(arg) on the
 * loop thread (or in gg_offload_stop's caller). Jobs run one at a time, in
 * submission order. fn must touch nothing the loop owns; done may. The
 * pool never frees arg: done does.
 */
#ifndef GG_PORTAL_OFFLOAD_H
#define GG_PORTAL_OFFLOAD_H

#include "core/err.h"

struct event_base;

typedef struct gg_offload gg_offload;
typedef void (*gg_offload_fn)(void *arg);

/* gg_offload_start - the worker, reporting through base's loop (which must
 * have evthread_use_pthreads). GG_ENOMEM / GG_EIO. */
gg_err gg_offload_start(struct event_base *base, gg_offload **out);

/* gg_offload_submit - run fn(arg) off the loop, then done(arg) on it (loop
 * thread). GG_EINVAL (nothing queued) once stopping or for NULL s. */
gg_err gg_offload_submit(gg_offload *s, gg_offload_fn fn, gg_offload_fn done, void *arg);

/* gg_offload_stop - run the queued fns, join the worker, run every done
 * not yet run (on the caller's thread), free. NULL is fine. */
void gg_offload_stop(gg_offload *s);

#endif
