/* worker.h - the utility role without its signal handling: start and stop.
 *
 * gg_utility_start loads the envelope and token keys, opens one marketing
 * connection per worker, opens the transport, starts `utility.workers`
 * threads and the admin listener. gg_utility_stop asks the workers to
 * stop (each notices within about 200 ms), joins them, and closes
 * everything in reverse order. gg_utility_run (utility.h) is these two
 * around a sigwait(); tests call them directly.
 *
 * Per request: open the envelope (any failure, a non-request or a sender
 * other than site.peer is logged, counted and acknowledged: no reply is
 * possible), answer expired ones 504 without running the service, parse
 * the JSON payload (bad JSON: 400), dispatch, seal the reply and store it
 * with the acknowledgement in one transaction; if that fails the request
 * is backed out.
 */
#ifndef GG_UTILITY_WORKER_H
#define GG_UTILITY_WORKER_H

#include <stdio.h>

#include "core/config.h"
#include "core/err.h"
#include "transport/transport.h"
#include "utility/metrics.h"

typedef struct gg_utility gg_utility;

/* gg_utility_start - start the role. cfg must outlive u. On failure logs
 * why, frees everything and returns GG_ECONFIG, GG_EIO or GG_ENOMEM. */
gg_err gg_utility_start(const gg_config *cfg, gg_utility **out);

/* gg_utility_stop - stop workers and admin, close transport; NULL is fine. */
void gg_utility_stop(gg_utility *u);

/* Borrowed views for tests and the admin page. */
gg_transport *gg_utility_transport(gg_utility *u);
gg_umetrics *gg_utility_metrics(gg_utility *u);

/* gg_utility_admin_port - port of the admin listener, -1 if none. */
int gg_utility_admin_port(const gg_utility *u);

/* gg_utility_write_metrics - the whole /metrics page to f. */
void gg_utility_write_metrics(gg_utility *u, FILE *f);

#endif
