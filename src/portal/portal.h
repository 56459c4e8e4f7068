/* portal.h - the portal role: the citizen-facing HTTP/JSON API.
 *
 * Serves the API and the web page with libevent's HTTP server, validates
 * input, seals each request for the utility and puts it on the
 * transmission queue, then answers the HTTP call when the reply with the
 * same correlation id arrives on the local queue "replies" (or 504 timeout
 * after http.request_timeout_ms). API: docs/api.md.
 */
#ifndef GG_PORTAL_PORTAL_H
#define GG_PORTAL_PORTAL_H

#include "core/config.h"
#include "core/err.h"

/* gg_portal_run - run until SIGINT or SIGTERM; GG_OK on a clean stop. */
gg_err gg_portal_run(const gg_config *cfg);

#endif
