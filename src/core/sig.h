/* sig.h - the signals a role is controlled by.
 *
 * SIGINT and SIGTERM stop a role cleanly, SIGHUP reloads the channel's
 * certificates and keys. `gridgate run` blocks these before anything else
 * (so one that comes during start-up waits for the role's own handling);
 * the utility then takes them with sigwait, the portal lets them in to its
 * event loop's handlers. All three use this one set.
 */
#ifndef GG_CORE_SIG_H
#define GG_CORE_SIG_H

#include <signal.h>

/* gg_role_sigset - *set = { SIGINT, SIGTERM, SIGHUP }. */
void gg_role_sigset(sigset_t *set);

#endif
