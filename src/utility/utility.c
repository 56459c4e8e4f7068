/* utility.c - gg_utility_run: the utility role under signal control.
 *
 * SIGINT, SIGTERM and SIGHUP are blocked before any thread exists, so every
 * thread inherits the mask and only the main thread, in sigwait(), ever
 * sees them.
 * SIGPIPE is ignored: a peer closing a socket is an error return, not death.
 */
#include "utility/utility.h"

#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>

#include "core/log.h"
#include "core/sig.h"
#include "utility/worker.h"

/* gg_utility_run - run until SIGINT or SIGTERM (SIGHUP reloads the
 * channel's certificates and keys); GG_OK on a clean stop. */
gg_err gg_utility_run(const gg_config *cfg)
{
    sigset_t set;
    sigset_t old;
    gg_utility *u = NULL;
    int sig = 0;
    gg_err e;

    if (evthread_use_pthreads() != 0) {
        gg_error("utility", "msg=\"cannot enable libevent threading\"");
        return GG_EIO;
    }
    signal(SIGPIPE, SIG_IGN);
    gg_role_sigset(&set);
    if (pthread_sigmask(SIG_BLOCK, &set, &old) != 0) {
        gg_error("utility", "msg=\"cannot block signals\"");
        return GG_EIO;
    }
    e = gg_utility_start(cfg, &u);
    if (e != GG_OK)
        goto out;
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            break;
        /* SIGHUP: new certificates and keys for the channel. */
        gg_channel_reload(gg_transport_channel(gg_utility_transport(u)));
    }
    gg_info("utility", "msg=\"stopping\" signal=%d", sig);
    gg_utility_stop(u);
out:
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}
