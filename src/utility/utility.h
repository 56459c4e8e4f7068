/* utility.h - the utility role: open requests, run services, seal replies.
 *
 * A fixed pool of `utility.workers` threads takes requests from the local
 * store queue "requests" under a lease, verifies and opens each envelope,
 * rejects expired ones, runs the service against the marketing database
 * (one connection per worker) and, in one store transaction, acknowledges
 * the request and puts the sealed reply on the transmission queue. So at
 * most `workers` calls are ever in flight into the marketing system.
 */
#ifndef GG_UTILITY_UTILITY_H
#define GG_UTILITY_UTILITY_H

#include "core/config.h"
#include "core/err.h"

/* gg_utility_run - run until SIGINT or SIGTERM; GG_OK on a clean stop. */
gg_err gg_utility_run(const gg_config *cfg);

#endif
