/* env_keys.c - load and check the message keys of one site (envelope.h).
 *
 * Both suites: our signing key and kem key (private), the peer's signing
 * and kem keys (public), each of the suite's key type; key ids are
 * computed here; the static shared secret is agreed once. During a key
 * rotation the peer's previous signing key is also loaded and accepted
 * until a configured time (envelope.h, docs/protocol.md "Keys"). The
 * cipher and digest are fetched and the signing and verifying contexts
 * built here, once; the group signer and the verify cache (envelope.c) are
 * made here too.
 */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include <time.h>
#include "envelope/env_int.h"

/* seterr - format a reason into err (may be NULL). */
static void seterr(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;

    if (!err || errsz == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

/* no_passphrase - PEM password callback: keys are never encrypted, and we
 * must never prompt on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* load_pem - read a private (priv=1) or public key of type want from path. */
static gg_err load_pem(const char *what, const char *path, int priv, const char *want,
                       EVP_PKEY **out, char *err, size_t errsz)
{
    EVP_PKEY *pk = NULL;
    FILE *f = NULL;
    gg_err rc = GG_ECONFIG;

    *out = NULL;
    if (!path || !*path) {
        seterr(err, errsz, "%s: no file configured", what);
        goto out;
    }
    f = fopen(path, "r");
    if (!f) {
        seterr(err, errsz, "%s: cannot open %s", what, path);
        goto out;
    }
    pk = priv ? PEM_read_PrivateKey(f, NULL, no_passphrase, NULL)
              : PEM_read_PUBKEY(f, NULL, no_passphrase, NULL);
    ERR_clear_error();
    if (!pk) {
        seterr(err, errsz, "%s: %s is not a PEM %s key", what, path,
               priv ? "private" : "public");
        goto out;
    }
    if (!EVP_PKEY_is_a(pk, want)) {
        const char *got = EVP_PKEY_get0_type_name(pk);
        seterr(err, errsz, "%s: %s holds a %s key, expected %s", what, path,
               got ? got : "unknown", want);
        goto out;
    }
    *out = pk;
    pk = NULL;
    rc = GG_OK;
out:
    EVP_PKEY_free(pk);
    if (f)
        fclose(f);
    return rc;
}

/* load_all - the four key files (and the previous peer key, if any). */
static gg_err load_all(const gg_env_keys_cfg *cfg, gg_env_keys *k, EVP_PKEY **kem,
                       EVP_PKEY **peer_kem, char *err, size_t errsz)
{
    const env_suite *s = k->s;
    gg_err rc;

    rc = load_pem("security.sign_key", cfg->sign_key, 1, s->sign_type, &k->sign, err, errsz);
    if (rc == GG_OK)
        rc = load_pem("security.kem_key", cfg->kem_key, 1, s->kem_type, kem, err, errsz);
    if (rc == GG_OK)
        rc = load_pem("security.peer_sign_pub", cfg->peer_sign_pub, 0, s->sign_type,
                      &k->peer_sign, err, errsz);
    if (rc == GG_OK)
        rc = load_pem("security.peer_kem_pub", cfg->peer_kem_pub, 0, s->kem_type, peer_kem,
                      err, errsz);
    return rc;
}

gg_err gg_env_keys_load(const gg_env_keys_cfg *cfg, gg_env_keys **out, char *err,
                        size_t errsz)
{
    gg_env_keys *k = NULL;
    EVP_PKEY *kem = NULL, *peer_kem = NULL;
    const env_suite *s;
    gg_err rc = GG_ECONFIG;

    if (out)
        *out = NULL;
    if (!cfg || !out) {
        seterr(err, errsz, "no key configuration");
        return GG_EINVAL;
    }
    s = env_suite_by_name(cfg->suite);
    if (s == NULL) {
        seterr(err, errsz, "security.suite: unknown suite \"%.16s\" (intl or gm)",
               cfg->suite ? cfg->suite : "");
        return GG_ECONFIG;
    }
    if (!cfg->self_name || !env_name_ok(cfg->self_name, GG_ENV_NAME_MAX)) {
        seterr(err, errsz, "site.name: must be 1..%d characters of [A-Za-z0-9._-]",
               GG_ENV_NAME_MAX - 1);
        return GG_ECONFIG;
    }
    k = calloc(1, sizeof *k);
    if (!k) {
        rc = GG_ENOMEM;
        goto out;
    }
    k->s = s;
    rc = env_shared_init(k);
    if (rc != GG_OK)
        goto out;
    snprintf(k->self_name, sizeof k->self_name, "%s", cfg->self_name);
    rc = load_all(cfg, k, &kem, &peer_kem, err, errsz);
    if (rc != GG_OK)
        goto out;
    rc = GG_ECONFIG;
    if (env_key_id(s, k->sign, &k->self_key_id) != GG_OK ||
        env_key_id(s, k->peer_sign, &k->peer_key_id) != GG_OK) {
        seterr(err, errsz, "security: cannot read the signing public keys");
        goto out;
    }
    if (env_agree(s, kem, peer_kem, k->shared) != GG_OK) {
        seterr(err, errsz, "security: key agreement with peer_kem_pub failed");
        goto out;
    }
    k->cipher = EVP_CIPHER_fetch(NULL, s->cipher, NULL);
    k->md = EVP_MD_fetch(NULL, s->digest, NULL);
    if (!k->cipher || !k->md) {
        seterr(err, errsz, "security: OpenSSL lacks %s or %s", s->cipher, s->digest);
        goto out;
    }
    if (env_sig_ctx(s, k->md, k->sign, 1, &k->sign_ctx) != GG_OK ||
        env_sig_ctx(s, k->md, k->peer_sign, 0, &k->peer_vctx) != GG_OK) {
        seterr(err, errsz, "security: cannot make %s signing contexts", s->sign_type);
        goto out;
    }
    gg_info("envelope", "msg=\"keys loaded\" suite=%s self=%s self_key_id=%08x "
            "peer_key_id=%08x", s->name, k->self_name, k->self_key_id, k->peer_key_id);
    *out = k;
    k = NULL;
    rc = GG_OK;
out:
    EVP_PKEY_free(kem);
    EVP_PKEY_free(peer_kem);
    gg_env_keys_free(k);
    ERR_clear_error();
    return rc;
}

gg_err gg_env_keys_add_prev(gg_env_keys *k, const char *path, int64_t until_ms, char *err,
                            size_t errsz)
{
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *vctx = NULL;
    uint32_t id = 0;
    gg_err rc;

    rc = load_pem("security.peer_sign_pub_prev", path, 0, k->s->sign_type, &pk, err, errsz);
    if (rc != GG_OK)
        return rc;
    if (env_key_id(k->s, pk, &id) != GG_OK || id == k->peer_key_id ||
        env_sig_ctx(k->s, k->md, pk, 0, &vctx) != GG_OK) {
        seterr(err, errsz, "security.peer_sign_pub_prev: unreadable, or the same key as "
               "peer_sign_pub");
        EVP_PKEY_free(pk);
        return GG_ECONFIG;
    }
    EVP_PKEY_free(k->peer_sign_prev);
    EVP_MD_CTX_free(k->peer_prev_vctx);
    k->peer_sign_prev = pk;
    k->peer_prev_vctx = vctx;
    k->peer_prev_key_id = id;
    k->peer_prev_until_ms = until_ms;
    gg_info("envelope", "msg=\"previous peer key accepted\" peer_prev_key_id=%08x "
            "until_ms=%lld", id, (long long)until_ms);
    return GG_OK;
}

gg_err gg_env_keys_add_kem_prev(gg_env_keys *k, const char *kem_key, const char *peer_kem_pub,
                                int64_t until_ms, char *err, size_t errsz)
{
    EVP_PKEY *prev = NULL, *peer = NULL;
    uint8_t secret[32];
    gg_err rc;

    rc = load_pem("security.kem_key_prev", kem_key, 1, k->s->kem_type, &prev, err, errsz);
    if (rc == GG_OK)
        rc = load_pem("security.peer_kem_pub_prev", peer_kem_pub, 0, k->s->kem_type, &peer, err,
                      errsz);
    if (rc == GG_OK && env_agree(k->s, prev, peer, secret) != GG_OK) {
        seterr(err, errsz, "security.kem_key_prev: key agreement failed");
        rc = GG_ECONFIG;
    }
    if (rc == GG_OK && CRYPTO_memcmp(secret, k->shared, sizeof secret) == 0) {
        seterr(err, errsz, "security.kem_key_prev, peer_kem_pub_prev: the same pair as "
               "kem_key and peer_kem_pub");
        rc = GG_ECONFIG;
    }
    if (rc == GG_OK) {
        memcpy(k->shared_prev, secret, sizeof secret);
        k->has_shared_prev = 1;
        k->kem_prev_until_ms = until_ms;
        gg_info("envelope", "msg=\"previous kem key accepted\" until_ms=%lld",
                (long long)until_ms);
    }
    OPENSSL_cleanse(secret, sizeof secret);
    EVP_PKEY_free(prev);
    EVP_PKEY_free(peer);
    ERR_clear_error();
    return rc;
}

/* parse_until - "YYYY-MM-DDTHH:MM:SSZ" (config key name) into *ms. */
static gg_err parse_until(const char *until, const char *name, const char *with, int64_t *ms,
                          char *err, size_t errsz)
{
    struct tm tm;
    const char *end;

    memset(&tm, 0, sizeof tm);
    end = until != NULL ? strptime(until, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (end == NULL || *end != '\0') {
        seterr(err, errsz, "%s: must be set as YYYY-MM-DDTHH:MM:SSZ with %s", name, with);
        return GG_ECONFIG;
    }
    *ms = (int64_t)timegm(&tm) * 1000;
    return GG_OK;
}

gg_err gg_env_keys_rotation_config(gg_env_keys *k, const gg_config *cfg, char *err,
                                   size_t errsz)
{
    const char *path = gg_config_str(cfg, "security.peer_sign_pub_prev");
    const char *kem = gg_config_str(cfg, "security.kem_key_prev");
    const char *peer_kem = gg_config_str(cfg, "security.peer_kem_pub_prev");
    int64_t until = 0;
    gg_err rc = GG_OK;

    if (path != NULL && path[0] != '\0') {
        rc = parse_until(gg_config_str(cfg, "security.peer_prev_until"),
                         "security.peer_prev_until", "security.peer_sign_pub_prev", &until, err,
                         errsz);
        if (rc == GG_OK)
            rc = gg_env_keys_add_prev(k, path, until, err, errsz);
    }
    if (rc == GG_OK && ((kem != NULL && kem[0] != '\0') ||
                        (peer_kem != NULL && peer_kem[0] != '\0'))) {
        rc = parse_until(gg_config_str(cfg, "security.kem_prev_until"),
                         "security.kem_prev_until",
                         "security.kem_key_prev or security.peer_kem_pub_prev", &until, err,
                         errsz);
        if (kem == NULL || kem[0] == '\0')
            kem = gg_config_str(cfg, "security.kem_key");
        if (peer_kem == NULL || peer_kem[0] == '\0')
            peer_kem = gg_config_str(cfg, "security.peer_kem_pub");
        if (rc == GG_OK)
            rc = gg_env_keys_add_kem_prev(k, kem, peer_kem, until, err, errsz);
    }
    return rc;
}

void gg_env_keys_free(gg_env_keys *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->sign);
    EVP_PKEY_free(k->peer_sign);
    EVP_PKEY_free(k->peer_sign_prev);
    EVP_MD_CTX_free(k->sign_ctx);
    EVP_MD_CTX_free(k->peer_vctx);
    EVP_MD_CTX_free(k->peer_prev_vctx);
    EVP_CIPHER_free(k->cipher);
    EVP_MD_free(k->md);
    OPENSSL_cleanse(k->shared, sizeof k->shared);
    OPENSSL_cleanse(k->shared_prev, sizeof k->shared_prev);
    env_shared_free(k);
    free(k);
}

gg_env_suite gg_env_keys_suite(const gg_env_keys *k)
{
    return k->s->id;
}
