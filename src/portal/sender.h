/* sender.h - the portal's request puts, off the event-loop thread.
 *
 * A small pool of threads that put sealed requests on the store for the
 * portal's loop. The loop submits a job (the envelope and what it needs to
 * park the call) and goes on serving; a sender thread makes the put durable
 * (concurrent puts of the pool share one group commit in the store) and
 * posts the job back, with the put's result, to the loop, where done runs.
 * So the loop never waits for a disk, and still learns of a put only after
 * it is durable (or failed): done is the earliest the call may be counted
 * as relayed. Jobs complete on the loop in the order their puts finished.
 *
 * Threads: gg_psend_start, gg_psend_submit and gg_psend_stop on the loop
 * thread only; put runs on the sender threads (it must be thread-safe);
 * done runs on the loop thread (or in gg_psend_stop's caller).
 */
#ifndef GG_PORTAL_SENDER_H
#define GG_PORTAL_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct event_base;

#define GG_PSEND_DEST_MAX 64
#define GG_PSEND_TXN_MAX 32

/* One request to put. The caller fills every field but result; the pool
 * owns the job (and data) from gg_psend_submit until done returns. */
typedef struct gg_psend_job {
    uint8_t corr_id[16];
    uint8_t msg_id[16];
    char txn[GG_PSEND_TXN_MAX];
    char dest[GG_PSEND_DEST_MAX];   /* the queue at the peer */
    int64_t created_ms;
    int64_t expiry_ms;
    uint8_t *data;                  /* malloc'd envelope; freed with the job */
    size_t len;
    gg_err result;                  /* set by the pool: the put's result */
    struct gg_psend_job *next;      /* pool-private */
} gg_psend_job;

/* put - make data durable for dest (sender thread). */
typedef gg_err (*gg_psend_put_fn)(void *ctx, const char *dest, const void *data, size_t len,
                                  int64_t expiry_ms);
/* done - a put finished (loop thread); the job is freed after it returns. */
typedef void (*gg_psend_done_fn)(void *arg, gg_psend_job *job);

typedef struct gg_psend gg_psend;

/* gg_psend_start - threads sender threads putting with put(put_ctx, ...)
 * and reporting through done(done_arg, job) on base's loop (which must
 * have evthread_use_pthreads). GG_ENOMEM / GG_EIO on failure. */
gg_err gg_psend_start(struct event_base *base, size_t threads, gg_psend_put_fn put,
                      void *put_ctx, gg_psend_done_fn done, void *done_arg, gg_psend **out);

/* gg_psend_submit - queue job for a put; the pool owns it from now on.
 * GG_EINVAL (job not taken) once the pool is stopping. */
gg_err gg_psend_submit(gg_psend *s, gg_psend_job *job);

/* gg_psend_inflight - jobs submitted and not yet done. */
size_t gg_psend_inflight(const gg_psend *s);

/* gg_psend_stop - let the threads finish every queued put, join them, run
 * done for every job not yet reported (on the caller's thread), free the
 * pool. NULL is fine. */
void gg_psend_stop(gg_psend *s);

/* gg_psend_job_free - free a job and its data; NULL is fine. */
void gg_psend_job_free(gg_psend_job *job);

#endif
