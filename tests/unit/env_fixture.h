/* env_fixture.h - envelope keys and headers for unit tests: the keys a
 * site loads from a directory made by gg_pki_init, and a typical request
 * header. Static inline, for any test file that includes cmocka first. */
#ifndef GG_TEST_ENV_FIXTURE_H
#define GG_TEST_ENV_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "core/rand.h"
#include "envelope/envelope.h"

/* gg_test_env_load - suite keys for self: its own keys from sdir, peer's
 * public keys from pdir (as a role loads them); err gets the reason. */
static inline gg_err gg_test_env_load(const char *sdir, const char *self, const char *pdir,
                                      const char *peer, const char *suite, gg_env_keys **out,
                                      char *err, size_t errsz)
{
    char sk[1024], kk[1024], ps[1024], pk[1024];

    if ((size_t)snprintf(sk, sizeof sk, "%s/%s.sign.key", sdir, self) >= sizeof sk ||
        (size_t)snprintf(kk, sizeof kk, "%s/%s.kem.key", sdir, self) >= sizeof kk ||
        (size_t)snprintf(ps, sizeof ps, "%s/%s.sign.pub", pdir, peer) >= sizeof ps ||
        (size_t)snprintf(pk, sizeof pk, "%s/%s.kem.pub", pdir, peer) >= sizeof pk) {
        snprintf(err, errsz, "key path too long");
        return GG_EINVAL;
    }
    gg_env_keys_cfg cfg = { suite, self, sk, kk, ps, pk };
    return gg_env_keys_load(&cfg, out, err, errsz);
}

/* gg_test_env_keys - gg_test_env_load from one directory; fails the test
 * if the keys do not load. */
static inline gg_env_keys *gg_test_env_keys(const char *dir, const char *suite, const char *self,
                                            const char *peer)
{
    char err[256];
    gg_env_keys *k = NULL;

    if (gg_test_env_load(dir, self, dir, peer, suite, &k, err, sizeof err) != GG_OK)
        fail_msg("cannot load %s keys of %s: %s", suite, self, err);
    return k;
}

/* gg_test_env_request - a bills.query request header from portal to
 * utility, created at created_ms and valid for 30 s. */
static inline gg_env_hdr gg_test_env_request(int64_t created_ms)
{
    gg_env_hdr h;

    memset(&h, 0, sizeof h);
    h.kind = GG_ENV_REQUEST;
    gg_new_id(h.msg_id);
    memcpy(h.corr_id, h.msg_id, 16);
    snprintf(h.txn, sizeof h.txn, "bills.query");
    snprintf(h.receiver, sizeof h.receiver, "utility");
    h.created_ms = created_ms;
    h.expiry_ms = created_ms + 30000;
    return h;
}

#endif
