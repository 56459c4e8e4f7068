/* admin.h - the utility role's admin listener: GET /healthz and /metrics.
 *
 * A small libevent HTTP server on its own thread and event base, meant to
 * be bound to loopback. It answers only GET, with small header and body
 * limits. The page text comes from a callback that runs on the admin
 * thread and must be thread-safe with respect to the workers. Needs
 * evthread_use_pthreads() before gg_uadmin_start.
 */
#ifndef GG_UTILITY_ADMIN_H
#define GG_UTILITY_ADMIN_H

#include <stdio.h>

#include "core/err.h"

typedef struct gg_uadmin gg_uadmin;

/* gg_uadmin_render - write the page for path ("/healthz" or "/metrics") to
 * f; return the HTTP status. */
typedef int (*gg_uadmin_render)(void *arg, const char *path, FILE *f);

/* gg_uadmin_start - bind listen ("host:port", port 0 picks a free one) and
 * start the thread. GG_ECONFIG for a bad address, GG_EIO if it cannot bind. */
gg_err gg_uadmin_start(const char *listen, gg_uadmin_render render, void *arg,
                       gg_uadmin **out);

/* gg_uadmin_port - the port actually bound. */
int gg_uadmin_port(const gg_uadmin *a);

/* gg_uadmin_stop - stop the thread and free; NULL is fine. */
void gg_uadmin_stop(gg_uadmin *a);

#endif
