/* sender.h - the portal's request seals and puts, off the event-loop thread.
 *
 * A small pool of threads that seal requests and put them on the store for
 * the portal's loop. The loop submits a job (the request's header and
 * payload text, and what it needs to park the call) and goes on serving; a
 * sender thread runs prep on it (the portal seals the envelope there:
 * concurrent seals of the pool share one signature, envelope.h), then
 * makes the put durable (concurrent puts of the pool share one group
 * commit in the store) and posts the job back, with its result, to the
 * loop, where done runs. So the loop never waits for a signature or a
 * disk, and still learns of a put only after it is durable (or failed):
 * done is the earliest the call may be counted as relayed. Jobs complete
 * on the loop in the order their puts finished. What prep made (the
 * envelope's hash) the loop may read before done with gg_psend_prepared.
 * With gg_psend_set_batch a thread takes every job waiting (up to a
 * maximum) at once and prepares and puts them together (one signature, one
 * commit, one wake-up of the loop), falling back to prep and put job by
 * job whenever the batch call fails, so each job's result is what it would
 * have been alone.
 *
 * Threads: gg_psend_start, gg_psend_submit, gg_psend_inflight,
 * gg_psend_prepared and gg_psend_stop on the loop thread only; prep and
 * put run on the sender threads (they must be thread-safe); done runs on
 * the loop thread (or in gg_psend_stop's caller).
 */
#ifndef GG_PORTAL_SENDER_H
#define GG_PORTAL_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "envelope/envelope.h"

struct event_base;

#define GG_PSEND_DEST_MAX 64

/* One request to seal and put. The caller fills hdr, dest, pt and ptlen
 * (or data and len when the pool has no prep); the pool owns the job (and
 * pt, data) from gg_psend_submit until done returns. */
typedef struct gg_psend_job {
    gg_env_hdr hdr;                 /* the request's header (prep seals it) */
    char dest[GG_PSEND_DEST_MAX];   /* the queue at the peer */
    char *pt;                       /* malloc'd payload text; zeroed and freed
                                     * with the job (or by prep) */
    size_t ptlen;
    uint8_t *data;                  /* malloc'd envelope (made by prep); freed
                                     * with the job */
    size_t len;
    uint8_t req_hash[GG_ENV_HASH_LEN];  /* set by prep: the envelope's hash */
    gg_err result;                  /* set by the pool: prep's error, else the put's */
    int prepared;                   /* set by the pool: prep succeeded, the put ran */
    struct gg_psend_job *next;      /* pool-private */
} gg_psend_job;

/* prep - make job->data, job->len and job->req_hash from the rest (sender
 * thread), before the put. An error skips the put and is the job's result. */
typedef gg_err (*gg_psend_prep_fn)(void *ctx, gg_psend_job *job);
/* put - make data durable for dest (sender thread). */
typedef gg_err (*gg_psend_put_fn)(void *ctx, const char *dest, const void *data, size_t len,
                                  int64_t expiry_ms);
/* done - a put finished (loop thread); the job is freed after it returns. */
typedef void (*gg_psend_done_fn)(void *arg, gg_psend_job *job);
/* prep_many - prep n (2..max) jobs together (sender thread). GG_OK: every
 * job made as prep makes it; any error: no job changed (prep then runs on
 * each, to find the one at fault). */
typedef gg_err (*gg_psend_prep_many_fn)(void *ctx, gg_psend_job **jobs, size_t n);
/* put_many - put n (2..max) prepared jobs durably in one commit, all or
 * nothing (sender thread). Any error: none put (put then runs on each). */
typedef gg_err (*gg_psend_put_many_fn)(void *ctx, gg_psend_job **jobs, size_t n);

typedef struct gg_psend gg_psend;

/* gg_psend_start - threads sender threads preparing with prep(ctx, job)
 * (NULL: the caller made data), putting with put(ctx, ...) and reporting
 * through done(done_arg, job) on base's loop (which must have
 * evthread_use_pthreads). GG_EINVAL / GG_ENOMEM / GG_EIO on failure. */
gg_err gg_psend_start(struct event_base *base, size_t threads, gg_psend_prep_fn prep,
                      gg_psend_put_fn put, void *ctx, gg_psend_done_fn done, void *done_arg,
                      gg_psend **out);

/* gg_psend_set_batch - let each thread take up to max (1..GG_PSEND_BATCH_MAX)
 * waiting jobs at once, prepared with prep_many and put with put_many
 * (either may be NULL: job by job). Before the first submit. */
#define GG_PSEND_BATCH_MAX 64
void gg_psend_set_batch(gg_psend *s, size_t max, gg_psend_prep_many_fn prep_many,
                        gg_psend_put_many_fn put_many);

/* gg_psend_submit - queue job for prep and put; the pool owns it from now
 * on. GG_EINVAL (job not taken) once the pool is stopping. */
gg_err gg_psend_submit(gg_psend *s, gg_psend_job *job);

/* gg_psend_inflight - jobs submitted and not yet done. */
size_t gg_psend_inflight(const gg_psend *s);

/* gg_psend_prepared - for a job submitted and not yet done: 1 and its
 * req_hash copied to hash once prep succeeded (its put may still run),
 * else 0. */
int gg_psend_prepared(gg_psend *s, const gg_psend_job *job, uint8_t hash[GG_ENV_HASH_LEN]);

/* gg_psend_stop - let the threads finish every queued job, join them, run
 * done for every job not yet reported (on the caller's thread), free the
 * pool. NULL is fine. */
void gg_psend_stop(gg_psend *s);

/* gg_psend_job_free - free a job, its envelope and (zeroed) its payload
 * text; NULL is fine. */
void gg_psend_job_free(gg_psend_job *job);

#endif
