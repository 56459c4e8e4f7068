/* metrics.h - the utility role's counters, rendered as Prometheus text.
 *
 * All counters are C11 atomics: workers bump them without locks and the
 * admin thread reads them at any time. Transaction codes come from the
 * peer, so the txn label is bounded: the first GG_UM_TXN_SLOTS distinct
 * codes get their own series; later ones, and codes with characters
 * outside [A-Za-z0-9._-], are counted under "other".
 * requests_total counts messages answered (or failed while answering);
 * rejects_total counts messages refused before any service ran: dropped
 * with no reply possible, or (future, replay_full) answered with an error.
 * request_phase_seconds_total splits the workers' time per request into
 * the phases of gg_um_phase (where a request's time at the utility goes).
 */
#ifndef GG_UTILITY_METRICS_H
#define GG_UTILITY_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "envelope/envelope.h"

#define GG_UM_TXN_SLOTS 32

typedef enum gg_um_result {
    GG_UR_OK = 0,          /* replied 2xx */
    GG_UR_CLIENT_ERROR,    /* replied 4xx (bad JSON, bad token, unknown txn) */
    GG_UR_SERVER_ERROR,    /* replied 5xx other than expired */
    GG_UR_EXPIRED,         /* replied 504 expired, service not run */
    GG_UR_FAILED,          /* reply could not be sealed or stored: backed out */
    GG_UR_COUNT
} gg_um_result;

typedef enum gg_um_reject {
    GG_UJ_MALFORMED = 0,   /* envelope unparsable (GG_EPROTO) */
    GG_UJ_CRYPTO,          /* signature, tag or key (GG_ECRYPTO) */
    GG_UJ_NOT_FOR_US,      /* receiver is not this site (GG_EDENIED) */
    GG_UJ_TOO_BIG,         /* envelope over GG_ENV_MAX */
    GG_UJ_WRONG_KIND,      /* not a request */
    GG_UJ_WRONG_SENDER,    /* sender is not site.peer */
    GG_UJ_STALE,           /* created before the freshness window (replay.h) */
    GG_UJ_FUTURE,          /* created after now + clock-skew allowance */
    GG_UJ_REPLAY,          /* message id seen within the window */
    GG_UJ_REPLAY_FULL,     /* replay store full: refused, fail closed */
    GG_UJ_OTHER,
    GG_UJ_COUNT
} gg_um_reject;

/* Where a worker's time on a request goes (request_phase_seconds_total). */
typedef enum gg_um_phase {
    GG_UP_OPEN = 0,        /* opening the envelope: decrypt and verify */
    GG_UP_REPLAY,          /* request hash, freshness and replay check */
    GG_UP_CHECK,           /* token check and cache lookup, before a slot */
    GG_UP_GOVERNOR,        /* waiting for a governor slot */
    GG_UP_BACKEND,         /* the service call in the marketing system */
    GG_UP_SEAL,            /* sealing the reply */
    GG_UP_STORE,           /* storing the reply with the ack (its commit) */
    GG_UP_COUNT
} gg_um_phase;

/* Upper bounds of the request duration histogram, in microseconds. */
#define GG_UM_BUCKETS 13

typedef struct gg_um_txn {
    char name[GG_ENV_TXN_MAX];
    atomic_llong count[GG_UR_COUNT];
    atomic_llong dur[GG_UM_BUCKETS + 1];      /* last: above every bound (+Inf) */
    atomic_llong dur_sum_us;
} gg_um_txn;

typedef struct gg_umetrics {
    pthread_mutex_t mu;                       /* only for adding a txn slot */
    atomic_int ntxn;                          /* slots published (names final) */
    gg_um_txn txn[GG_UM_TXN_SLOTS + 1];       /* last one is "other" */
    atomic_llong rejects[GG_UJ_COUNT];
    atomic_int workers;                       /* worker threads running */
    atomic_int inflight;                      /* workers inside gg_svc_dispatch */
    atomic_int inflight_max;
    atomic_llong phase_us[GG_UP_COUNT];       /* summed time per phase */
} gg_umetrics;

/* gg_umetrics_init - zero everything. */
void gg_umetrics_init(gg_umetrics *m);
void gg_umetrics_destroy(gg_umetrics *m);

/* gg_umetrics_request - count one answered request of txn with result r. */
void gg_umetrics_request(gg_umetrics *m, const char *txn, gg_um_result r);

/* gg_umetrics_duration - one answered request of txn took us microseconds
 * from taking it off the queue to storing its reply. */
void gg_umetrics_duration(gg_umetrics *m, const char *txn, int64_t us);

/* gg_umetrics_reject - count one rejected message. */
void gg_umetrics_reject(gg_umetrics *m, gg_um_reject why);

/* gg_umetrics_enter / leave - a worker enters / leaves the backend. */
void gg_umetrics_enter(gg_umetrics *m);
void gg_umetrics_leave(gg_umetrics *m);

/* gg_umetrics_phase - a worker spent us microseconds in phase p. */
void gg_umetrics_phase(gg_umetrics *m, gg_um_phase p, int64_t us);

/* gg_umetrics_phase_us - the summed microseconds of phase p. */
int64_t gg_umetrics_phase_us(gg_umetrics *m, gg_um_phase p);

/* gg_umetrics_requests / rejects - read one counter (for tests and logs);
 * txn "other" reads the overflow slot. */
int64_t gg_umetrics_requests(gg_umetrics *m, const char *txn, gg_um_result r);
int64_t gg_umetrics_rejects(gg_umetrics *m, gg_um_reject why);

/* gg_umetrics_write - the counters as Prometheus text to f. */
void gg_umetrics_write(gg_umetrics *m, FILE *f);

const char *gg_um_result_name(gg_um_result r);
const char *gg_um_reject_name(gg_um_reject j);

#endif
