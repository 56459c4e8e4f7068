/* rr.h - bench/rr: request/reply round trips, gridgate against RabbitMQ.
 *
 * Shared between rr.c (the driver and the gridgate side: two queue
 * managers and the channel between them, an echo responder on the utility
 * side) and rr_amqp.c (the same workload through a RabbitMQ broker).
 */
#ifndef GG_BENCH_RR_H
#define GG_BENCH_RR_H

#include <stddef.h>
#include <stdint.h>

#define RR_MSG_BYTES 1024       /* request and reply size */
#define RR_MAX_CONC 64

/* The outcome of one run at one concurrency. */
typedef struct rr_result {
    double rt_per_s;
    int64_t p50_us, p99_us;
    int64_t count, errors;
} rr_result;

/* rr_summarise - per-requester latency arrays into r (sorts them). */
void rr_summarise(int64_t **lat, const size_t *n, int conc, double secs, rr_result *r);

/* rr_amqp_run - conc requesters and one echo responder through the broker
 * on 127.0.0.1:port for secs seconds (after a short warm-up). 0 on
 * success, -1 (message on stderr) otherwise. */
int rr_amqp_run(int port, int conc, double secs, rr_result *out);

#endif
