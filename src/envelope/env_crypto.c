/* env_crypto.c - the primitives of suites intl and gm (env_int.h).
 *
 * intl: Ed25519 signatures, X25519 static agreement, HKDF-SHA256,
 *       AES-256-GCM (12-byte nonce, 16-byte tag).
 * gm:   SM2 signatures with SM3 and the distinguishing id
 *       "1234567812345678" (GM/T 0009 default), static ECDH on the SM2
 *       curve (x-coordinate of d*Q), HKDF-SM3, and encrypt-then-MAC:
 *       SM4-CTR (16-byte key, 16-byte IV = nonce) followed by
 *       HMAC-SM3 (32-byte key) over u32 len(aad) || aad || nonce || ct,
 *       32-byte tag, checked in constant time before anything is decrypted.
 *       OpenSSL 3.0 has no SM4-GCM; this is the construction
 *       docs/protocol.md specifies.
 * Every call makes its own contexts: these functions only read a gg_env_keys.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <string.h>

#include "envelope/env_int.h"

#define GM_ID "1234567812345678"
#define GM_ENC_KEY 16

static const env_suite suites[] = {
    { GG_SUITE_INTL, "intl", 12, 16, 64, 64, 32, "SHA256", "gridgate v1 intl", "ED25519",
      "X25519", "AES-256-GCM" },
    { GG_SUITE_GM, "gm", 16, 32, 8, 72, 48, "SM3", "gridgate v1 gm", "SM2", "SM2",
      "SM4-CTR" },
};

const env_suite *env_suite_by_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof suites / sizeof suites[0]; i++) {
        if (strcmp(suites[i].name, name) == 0)
            return &suites[i];
    }
    return NULL;
}

const env_suite *env_suite_by_id(unsigned id)
{
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        if ((unsigned)suites[i].id == id)
            return &suites[i];
    }
    return NULL;
}

gg_err env_key_id(const env_suite *s, EVP_PKEY *pk, uint32_t *id)
{
    uint8_t raw[133], md[EVP_MAX_MD_SIZE];
    size_t n = sizeof raw;
    unsigned int mdlen = 0;
    EVP_MD *dg = NULL;
    gg_err rc = GG_ECRYPTO;

    if (s->id == GG_SUITE_INTL) {
        if (EVP_PKEY_get_raw_public_key(pk, raw, &n) != 1)
            goto out;
    } else if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, raw, sizeof raw,
                                               &n) != 1) {
        goto out;
    }
    dg = EVP_MD_fetch(NULL, s->digest, NULL);
    if (dg == NULL || EVP_Digest(raw, n, md, &mdlen, dg, NULL) != 1 || mdlen < 4)
        goto out;
    *id = (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3];
    rc = GG_OK;
out:
    EVP_MD_free(dg);
    ERR_clear_error();
    return rc;
}

/* sm2_agree - x-coordinate of d(ours) * Q(peer) on the SM2 curve. */
static gg_err sm2_agree(EVP_PKEY *ours, EVP_PKEY *peer, uint8_t out[32])
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_sm2);
    EC_POINT *q = NULL, *r = NULL;
    BIGNUM *d = NULL, *x = BN_new();
    BN_CTX *bc = BN_CTX_new();
    uint8_t pub[133];
    size_t n = 0;
    gg_err rc = GG_ECRYPTO;

    if (!g || !x || !bc)
        goto out;
    if (EVP_PKEY_get_bn_param(ours, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 ||
        EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &n) != 1)
        goto out;
    q = EC_POINT_new(g);
    r = EC_POINT_new(g);
    if (!q || !r || EC_POINT_oct2point(g, q, pub, n, bc) != 1 ||
        EC_POINT_is_on_curve(g, q, bc) != 1 || EC_POINT_is_at_infinity(g, q))
        goto out;
    if (EC_POINT_mul(g, r, NULL, q, d, bc) != 1 || EC_POINT_is_at_infinity(g, r))
        goto out;
    if (EC_POINT_get_affine_coordinates(g, r, x, NULL, bc) != 1 || BN_bn2binpad(x, out, 32) != 32)
        goto out;
    rc = GG_OK;
out:
    BN_clear_free(d);
    BN_free(x);
    BN_CTX_free(bc);
    EC_POINT_free(q);
    EC_POINT_clear_free(r);
    EC_GROUP_free(g);
    ERR_clear_error();
    return rc;
}

gg_err env_agree(const env_suite *s, EVP_PKEY *ours, EVP_PKEY *peer, uint8_t out[32])
{
    EVP_PKEY_CTX *ctx = NULL;
    size_t n = 32;
    gg_err rc = GG_ECRYPTO;

    if (s->id == GG_SUITE_GM)
        return sm2_agree(ours, peer, out);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ours, NULL);
    if (!ctx)
        goto out;
    if (EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1)
        goto out;
    /* OpenSSL refuses an all-zero result (a low-order peer point). */
    if (EVP_PKEY_derive(ctx, out, &n) != 1 || n != 32)
        goto out;
    rc = GG_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

/* md_init - a digest-sign/verify context for pk (SM2: SM3 with the id). */
static gg_err md_init(const gg_env_keys *k, EVP_PKEY *pk, int sign, EVP_MD_CTX **md,
                      EVP_PKEY_CTX **pc)
{
    *pc = NULL;
    *md = EVP_MD_CTX_new();
    if (*md == NULL)
        return GG_ENOMEM;
    if (k->s->id == GG_SUITE_GM) {
        *pc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
        if (*pc == NULL || EVP_PKEY_CTX_set1_id(*pc, GM_ID, sizeof GM_ID - 1) != 1)
            return GG_ECRYPTO;
        EVP_MD_CTX_set_pkey_ctx(*md, *pc);
    }
    if (sign)
        return EVP_DigestSignInit(*md, NULL, k->s->id == GG_SUITE_GM ? k->md : NULL, NULL,
                                  pk) == 1 ? GG_OK : GG_ECRYPTO;
    return EVP_DigestVerifyInit(*md, NULL, k->s->id == GG_SUITE_GM ? k->md : NULL, NULL,
                                pk) == 1 ? GG_OK : GG_ECRYPTO;
}

gg_err env_sign(const gg_env_keys *k, const uint8_t *tbs, size_t n, uint8_t *sig,
                size_t *siglen)
{
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pc = NULL;
    size_t cap = *siglen;
    gg_err rc;

    rc = md_init(k, k->sign, 1, &md, &pc);
    if (rc != GG_OK)
        goto out;
    rc = GG_ECRYPTO;
    if (k->s->id == GG_SUITE_GM) {
        /* Update/Final: the one-shot call of OpenSSL 3.0 reports the
         * buffer size, not the DER length, for SM2. */
        if (EVP_DigestSignUpdate(md, tbs, n) != 1 || EVP_DigestSignFinal(md, sig, siglen) != 1)
            goto out;
    } else if (EVP_DigestSign(md, sig, siglen, tbs, n) != 1) {
        goto out;
    }
    if (*siglen < k->s->sig_min || *siglen > k->s->sig_max || *siglen > cap)
        goto out;
    rc = GG_OK;
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_CTX_free(pc);
    ERR_clear_error();
    return rc;
}

gg_err env_verify(const gg_env_keys *k, EVP_PKEY *pk, const uint8_t *tbs, size_t n,
                  const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pc = NULL;
    gg_err rc;

    rc = md_init(k, pk, 0, &md, &pc);
    if (rc != GG_OK)
        goto out;
    rc = EVP_DigestVerify(md, sig, siglen, tbs, n) == 1 ? GG_OK : GG_ECRYPTO;
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_CTX_free(pc);
    ERR_clear_error();
    return rc == GG_ENOMEM ? rc : (rc == GG_OK ? GG_OK : GG_ECRYPTO);
}

gg_err env_derive(const gg_env_keys *k, const uint8_t secret[32], const uint8_t msg_id[16],
                  const char *sender, const char *receiver, uint8_t key[ENV_KEY_MAX])
{
    uint8_t info[32 + 2 * GG_ENV_NAME_MAX + 2];
    size_t ilen, pl = strlen(k->s->info), sl = strlen(sender), rl = strlen(receiver);
    OSSL_PARAM params[5];
    EVP_KDF_CTX *kctx = NULL;
    gg_err rc = GG_ECRYPTO;

    if (sl >= GG_ENV_NAME_MAX || rl >= GG_ENV_NAME_MAX || pl > 32)
        return GG_EINVAL;
    memcpy(info, k->s->info, pl);
    ilen = pl;
    info[ilen++] = (uint8_t)sl;
    memcpy(info + ilen, sender, sl);
    ilen += sl;
    info[ilen++] = (uint8_t)rl;
    memcpy(info + ilen, receiver, rl);
    ilen += rl;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)k->s->digest, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, 32);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)msg_id, 16);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, ilen);
    params[4] = OSSL_PARAM_construct_end();
    kctx = EVP_KDF_CTX_new(k->hkdf);
    if (!kctx)
        goto out;
    if (EVP_KDF_derive(kctx, key, k->s->key_len, params) != 1)
        goto out;
    rc = GG_OK;
out:
    EVP_KDF_CTX_free(kctx);
    ERR_clear_error();
    return rc;
}

/* gm_mac - HMAC-SM3(mac_key, u32 len(aad) || aad || nonce || ct) into tag. */
static gg_err gm_mac(const gg_env_keys *k, const uint8_t *mac_key, const uint8_t *nonce,
                     const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t len,
                     uint8_t tag[32])
{
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(k->hmac);
    OSSL_PARAM params[2];
    uint8_t l[4] = { (uint8_t)(aadlen >> 24), (uint8_t)(aadlen >> 16), (uint8_t)(aadlen >> 8),
                     (uint8_t)aadlen };
    size_t out = 0;
    gg_err rc = GG_ECRYPTO;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SM3", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!c || EVP_MAC_init(c, mac_key, 32, params) != 1)
        goto out;
    if (EVP_MAC_update(c, l, sizeof l) != 1 || EVP_MAC_update(c, aad, aadlen) != 1 ||
        EVP_MAC_update(c, nonce, k->s->nonce_len) != 1 || EVP_MAC_update(c, ct, len) != 1)
        goto out;
    if (EVP_MAC_final(c, tag, &out, 32) != 1 || out != 32)
        goto out;
    rc = GG_OK;
out:
    EVP_MAC_CTX_free(c);
    ERR_clear_error();
    return rc;
}

/* cipher_run - one pass of k->cipher; GCM sets or checks tag. */
static gg_err cipher_run(const gg_env_keys *k, int enc, const uint8_t *key,
                         const uint8_t *nonce, const uint8_t *aad, size_t aadlen,
                         const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int gcm = k->s->id == GG_SUITE_INTL;
    int n = 0;
    gg_err rc = GG_ECRYPTO;

    if (!c || len > GG_ENV_MAX || aadlen > GG_ENV_MAX)
        goto out;
    if (EVP_CipherInit_ex2(c, k->cipher, key, nonce, enc, NULL) != 1)
        goto out;
    if (gcm && EVP_CipherUpdate(c, NULL, &n, aad, (int)aadlen) != 1)
        goto out;
    if (len > 0 && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1)
        goto out;
    if (gcm && !enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(c, out + (len > 0 ? (size_t)n : 0), &n) != 1)
        goto out;
    if (gcm && enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag) != 1)
        goto out;
    rc = GG_OK;
out:
    EVP_CIPHER_CTX_free(c);
    ERR_clear_error();
    return rc;
}

gg_err env_encrypt(const gg_env_keys *k, const uint8_t *key, const uint8_t *nonce,
                   const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t len,
                   uint8_t *out, uint8_t *tag)
{
    gg_err rc;

    if (k->s->id == GG_SUITE_INTL)
        return cipher_run(k, 1, key, nonce, aad, aadlen, pt, len, out, tag);
    rc = cipher_run(k, 1, key, nonce, NULL, 0, pt, len, out, NULL);
    if (rc != GG_OK)
        return rc;
    return gm_mac(k, key + GM_ENC_KEY, nonce, aad, aadlen, out, len, tag);
}

gg_err env_decrypt(const gg_env_keys *k, const uint8_t *key, const uint8_t *nonce,
                   const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t len,
                   uint8_t *out, const uint8_t *tag)
{
    uint8_t want[32];
    gg_err rc;

    if (k->s->id == GG_SUITE_INTL) {
        uint8_t t[16];

        memcpy(t, tag, sizeof t);
        return cipher_run(k, 0, key, nonce, aad, aadlen, ct, len, out, t);
    }
    rc = gm_mac(k, key + GM_ENC_KEY, nonce, aad, aadlen, ct, len, want);
    if (rc != GG_OK)
        return rc;
    if (CRYPTO_memcmp(want, tag, sizeof want) != 0)
        return GG_ECRYPTO;
    return cipher_run(k, 0, key, nonce, NULL, 0, ct, len, out, NULL);
}
