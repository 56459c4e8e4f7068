/* err.c - names and sentences for gg_err, one table. */
#include "core/err.h"

static const struct {
    gg_err err;
    const char *name;
    const char *text;
} errtab[] = {
    { GG_OK, "ok", "success" },
    { GG_ENOMEM, "enomem", "out of memory" },
    { GG_EINVAL, "einval", "invalid argument or malformed input" },
    { GG_EIO, "eio", "input/output or storage error" },
    { GG_ENOTFOUND, "enotfound", "not found" },
    { GG_EEMPTY, "eempty", "queue is empty" },
    { GG_EFULL, "efull", "queue is full" },
    { GG_ETOOBIG, "etoobig", "too large" },
    { GG_ECRYPTO, "ecrypto", "cryptographic check failed" },
    { GG_EEXPIRED, "eexpired", "expired" },
    { GG_EDENIED, "edenied", "not permitted" },
    { GG_ETIMEOUT, "etimeout", "timed out" },
    { GG_ECLOSED, "eclosed", "closed" },
    { GG_ECONFIG, "econfig", "invalid configuration" },
    { GG_EPROTO, "eproto", "protocol violation" },
    { GG_EEXISTS, "eexists", "already exists" },
    { GG_EREPLAY, "ereplay", "replayed message" },
    { GG_ENOSPC, "enospc", "storage full" },
    { GG_EBUSY, "ebusy", "busy" },
    { GG_ECONFLICT, "econflict", "conflicting content for the same key" },
};

/* lookup - the table row of err, or NULL. */
static int lookup(gg_err err)
{
    for (unsigned i = 0; i < sizeof errtab / sizeof errtab[0]; i++)
        if (errtab[i].err == err)
            return (int)i;
    return -1;
}

const char *gg_strerror(gg_err err)
{
    int i = lookup(err);
    return i < 0 ? "unknown error" : errtab[i].text;
}

const char *gg_errname(gg_err err)
{
    int i = lookup(err);
    return i < 0 ? "eunknown" : errtab[i].name;
}
