/* intake.h - how workers take requests: the priority lane first.
 *
 * The portal queues payments and bindings on "requests.priority" and
 * everything else on "requests" (gg_transport_request_queue). A worker
 * asks gg_intake_take, which leases from the priority queue if it holds a
 * ready message, else from the normal one, else sleeps until a commit adds
 * a message to either or wait_ms passes (gg_store_get_wait_first: a
 * commit that adds k requests wakes k sleeping workers). So a flood of
 * queries delays a payment by at most one service call per worker. A
 * worker sees a stop within wait_ms.
 */
#ifndef GG_UTILITY_INTAKE_H
#define GG_UTILITY_INTAKE_H

#include "core/err.h"
#include "store/store.h"

typedef struct gg_intake gg_intake;

/* gg_intake_new - take from the request queues of st. */
gg_err gg_intake_new(gg_store *st, gg_intake **out);
void gg_intake_free(gg_intake *in);

/* gg_intake_take - lease the next request (priority first) for lease_ms;
 * GG_EEMPTY after wait_ms without one; store errors as gg_store_get. */
gg_err gg_intake_take(gg_intake *in, int64_t lease_ms, int wait_ms, gg_msg **out);

#endif
