/* sig.c - the signals a role is controlled by (sig.h). */
#include "core/sig.h"

void gg_role_sigset(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}
