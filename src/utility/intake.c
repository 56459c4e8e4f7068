/* intake.c - priority-first taking of requests (intake.h): the store's
 * gg_store_get_wait_first on the two request queues, so a commit that
 * makes k requests ready wakes k sleeping workers, not all of them. */
#include "utility/intake.h"

#include <stdlib.h>

#include "transport/transport.h"

struct gg_intake {
    gg_store *st;
};

gg_err gg_intake_new(gg_store *st, gg_intake **out)
{
    gg_intake *in = calloc(1, sizeof *in);

    *out = NULL;
    if (!in)
        return GG_ENOMEM;
    in->st = st;
    *out = in;
    return GG_OK;
}

void gg_intake_free(gg_intake *in)
{
    free(in);
}

gg_err gg_intake_take(gg_intake *in, int64_t lease_ms, int wait_ms, gg_msg **out)
{
    return gg_store_get_wait_first(in->st, GG_Q_REQUESTS_PRIO, GG_Q_REQUESTS, lease_ms, wait_ms,
                                   out);
}
