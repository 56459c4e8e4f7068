/* err.h - the one error type of gridgate.
 *
 * Every fallible function returns gg_err: GG_OK (0) or a negative code. The
 * numbers are stable and never reused; gg_strerror() gives a short sentence
 * and gg_errname() the stable lower-case name. Broken invariants are not
 * errors: they call gg_panic() (log.h) and abort.
 */
#ifndef GG_CORE_ERR_H
#define GG_CORE_ERR_H

typedef enum gg_err {
    GG_OK = 0,
    GG_ENOMEM = -1,      /* allocation failed */
    GG_EINVAL = -2,      /* bad argument or malformed input */
    GG_EIO = -3,         /* I/O or storage error */
    GG_ENOTFOUND = -4,   /* no such object */
    GG_EEMPTY = -5,      /* queue has no ready message */
    GG_EFULL = -6,       /* queue depth or byte limit reached */
    GG_ETOOBIG = -7,     /* input exceeds a hard maximum */
    GG_ECRYPTO = -8,     /* cryptographic failure: bad signature, tag, key */
    GG_EEXPIRED = -9,    /* past its expiry */
    GG_EDENIED = -10,    /* not permitted: bad token, wrong proof, not bound */
    GG_ETIMEOUT = -11,   /* waited too long */
    GG_ECLOSED = -12,    /* peer or object closed */
    GG_ECONFIG = -13,    /* configuration is invalid */
    GG_EPROTO = -14,     /* peer violated the wire protocol */
    GG_EEXISTS = -15,    /* already exists */
    GG_EREPLAY = -16,    /* message seen before */
    GG_ENOSPC = -17,     /* storage full */
    GG_EBUSY = -18,      /* resource busy, try again */
    GG_ECONFLICT = -19,  /* same key, different content */
} gg_err;

/* gg_strerror - a short human sentence for err; never NULL. */
const char *gg_strerror(gg_err err);

/* gg_errname - the stable name of err ("enotfound"); never NULL. */
const char *gg_errname(gg_err err);

#endif
