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
 * Nothing is fetched by name per message: the cipher and digest are fetched
 * at load, and the signing and verifying contexts are built at load
 * (env_sig_ctx) and copied per call. HKDF (RFC 5869) and HMAC (RFC 2104)
 * are computed here over the fetched digest, as the same bytes as OpenSSL's
 * EVP_KDF "HKDF" and EVP_MAC "HMAC" (tests/vectors check it). Digest
 * work runs in a scratch context the caller passes in (one per seal or
 * open, reused from step to step); the others are made per call. These
 * functions only read a gg_env_keys.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <string.h>

#include "envelope/env_int.h"

#define GM_ID "1234567812345678"
#define GM_ENC_KEY 16
#define HMAC_BLOCK 64           /* block of SHA-256 and SM3, bytes */

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

gg_err env_sig_ctx(const env_suite *s, const EVP_MD *md, EVP_PKEY *pk, int sign,
                   EVP_MD_CTX **out)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new(), *t = NULL;
    EVP_PKEY_CTX *pc = NULL;
    const EVP_MD *dg = s->id == GG_SUITE_GM ? md : NULL;
    gg_err rc = GG_ECRYPTO;
    int ok;

    *out = NULL;
    if (c == NULL)
        return GG_ENOMEM;
    if (s->id == GG_SUITE_GM) {
        pc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
        if (pc == NULL || EVP_PKEY_CTX_set1_id(pc, GM_ID, sizeof GM_ID - 1) != 1)
            goto out;
        EVP_MD_CTX_set_pkey_ctx(c, pc);
    }
    if (sign)
        ok = EVP_DigestSignInit(c, NULL, dg, NULL, pk);
    else
        ok = EVP_DigestVerifyInit(c, NULL, dg, NULL, pk);
    if (ok != 1)
        goto out;
    /* The copy owns a duplicate of pc, so the template is one object. */
    t = EVP_MD_CTX_new();
    if (t == NULL || EVP_MD_CTX_copy_ex(t, c) != 1)
        goto out;
    *out = t;
    t = NULL;
    rc = GG_OK;
out:
    EVP_MD_CTX_free(t);
    EVP_MD_CTX_free(c);
    EVP_PKEY_CTX_free(pc);
    ERR_clear_error();
    return rc;
}

gg_err env_sign(const gg_env_keys *k, const uint8_t *tbs, size_t n, uint8_t *sig,
                size_t *siglen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t cap = *siglen;
    gg_err rc = GG_ECRYPTO;

    if (md == NULL)
        return GG_ENOMEM;
    if (EVP_MD_CTX_copy_ex(md, k->sign_ctx) != 1)
        goto out;
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
    ERR_clear_error();
    return rc;
}

gg_err env_verify(const EVP_MD_CTX *vctx, const uint8_t *tbs, size_t n, const uint8_t *sig,
                  size_t siglen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    gg_err rc = GG_ECRYPTO;

    if (md == NULL)
        return GG_ENOMEM;
    if (EVP_MD_CTX_copy_ex(md, vctx) == 1 && EVP_DigestVerify(md, sig, siglen, tbs, n) == 1)
        rc = GG_OK;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return rc;
}

gg_err env_hash(const gg_env_keys *k, EVP_MD_CTX *c, const env_part *parts, size_t n,
                uint8_t out[GG_ENV_HASH_LEN])
{
    unsigned int len = 0;
    int ok = EVP_DigestInit_ex2(c, k->md, NULL) == 1;

    for (size_t i = 0; ok && i < n; i++)
        ok = parts[i].len == 0 || EVP_DigestUpdate(c, parts[i].p, parts[i].len) == 1;
    ok = ok && EVP_DigestFinal_ex(c, out, &len) == 1 && len == GG_ENV_HASH_LEN;
    if (!ok)
        ERR_clear_error();
    return ok ? GG_OK : GG_ECRYPTO;
}

/* hmac - HMAC (RFC 2104) with the suite digest under key (klen <= one
 * block: every key here is 16 or 32 bytes) of the concatenation of
 * parts[0, n) (at most 4) into out; c is the caller's scratch context. */
static gg_err hmac(const gg_env_keys *k, EVP_MD_CTX *c, const uint8_t *key, size_t klen,
                   const env_part *parts, size_t n, uint8_t out[GG_ENV_HASH_LEN])
{
    uint8_t pad[HMAC_BLOCK], inner[GG_ENV_HASH_LEN];
    env_part p[5];
    gg_err rc;

    if (klen > sizeof pad || n > 4 || EVP_MD_get_block_size(k->md) != HMAC_BLOCK)
        return GG_ECRYPTO;
    memset(pad, 0x36, sizeof pad);
    for (size_t i = 0; i < klen; i++)
        pad[i] ^= key[i];
    p[0] = (env_part){ pad, sizeof pad };
    memcpy(p + 1, parts, n * sizeof parts[0]);
    rc = env_hash(k, c, p, n + 1, inner);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    p[1] = (env_part){ inner, sizeof inner };
    if (rc == GG_OK)
        rc = env_hash(k, c, p, 2, out);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner, sizeof inner);
    return rc;
}

gg_err env_derive(const gg_env_keys *k, EVP_MD_CTX *c, const uint8_t secret[32],
                  const uint8_t msg_id[16], const char *sender, const char *receiver,
                  uint8_t key[ENV_KEY_MAX])
{
    uint8_t info[32 + 2 * GG_ENV_NAME_MAX + 2], prk[GG_ENV_HASH_LEN], t[GG_ENV_HASH_LEN];
    size_t ilen, pl = strlen(k->s->info), sl = strlen(sender), rl = strlen(receiver);
    gg_err rc;

    if (sl >= GG_ENV_NAME_MAX || rl >= GG_ENV_NAME_MAX || pl > 32 ||
        k->s->key_len > 2 * sizeof t)
        return GG_EINVAL;
    memcpy(info, k->s->info, pl);
    ilen = pl;
    info[ilen++] = (uint8_t)sl;
    memcpy(info + ilen, sender, sl);
    ilen += sl;
    info[ilen++] = (uint8_t)rl;
    memcpy(info + ilen, receiver, rl);
    ilen += rl;
    /* extract: PRK = HMAC(salt, IKM); expand: T(i) = HMAC(PRK, T(i-1) || info || i) */
    rc = hmac(k, c, msg_id, 16, &(env_part){ secret, 32 }, 1, prk);
    for (size_t off = 0, i = 1; rc == GG_OK && off < k->s->key_len; off += sizeof t, i++) {
        uint8_t ctr = (uint8_t)i;
        env_part p[3] = { { t, i > 1 ? sizeof t : 0 }, { info, ilen }, { &ctr, 1 } };
        size_t take = k->s->key_len - off < sizeof t ? k->s->key_len - off : sizeof t;

        rc = hmac(k, c, prk, sizeof prk, p, 3, t);
        if (rc == GG_OK)
            memcpy(key + off, t, take);
    }
    OPENSSL_cleanse(prk, sizeof prk);
    OPENSSL_cleanse(t, sizeof t);
    return rc;
}

/* gm_mac - HMAC-SM3(mac_key, u32 len(aad) || aad || nonce || ct) into tag;
 * c is the caller's scratch context. */
static gg_err gm_mac(const gg_env_keys *k, EVP_MD_CTX *c, const uint8_t *mac_key,
                     const uint8_t *nonce, const uint8_t *aad, size_t aadlen, const uint8_t *ct,
                     size_t len, uint8_t tag[32])
{
    uint8_t l[4] = { (uint8_t)(aadlen >> 24), (uint8_t)(aadlen >> 16), (uint8_t)(aadlen >> 8),
                     (uint8_t)aadlen };
    env_part p[4] = { { l, sizeof l }, { aad, aadlen }, { nonce, k->s->nonce_len }, { ct, len } };

    return hmac(k, c, mac_key, 32, p, 4, tag);
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

gg_err env_encrypt(const gg_env_keys *k, EVP_MD_CTX *c, const uint8_t *key,
                   const uint8_t *nonce, const uint8_t *aad, size_t aadlen, const uint8_t *pt,
                   size_t len, uint8_t *out, uint8_t *tag)
{
    gg_err rc;

    if (k->s->id == GG_SUITE_INTL)
        return cipher_run(k, 1, key, nonce, aad, aadlen, pt, len, out, tag);
    rc = cipher_run(k, 1, key, nonce, NULL, 0, pt, len, out, NULL);
    if (rc != GG_OK)
        return rc;
    return gm_mac(k, c, key + GM_ENC_KEY, nonce, aad, aadlen, out, len, tag);
}

gg_err env_decrypt(const gg_env_keys *k, EVP_MD_CTX *c, const uint8_t *key,
                   const uint8_t *nonce, const uint8_t *aad, size_t aadlen, const uint8_t *ct,
                   size_t len, uint8_t *out, const uint8_t *tag)
{
    uint8_t want[32];
    gg_err rc;

    if (k->s->id == GG_SUITE_INTL) {
        uint8_t t[16];

        memcpy(t, tag, sizeof t);
        return cipher_run(k, 0, key, nonce, aad, aadlen, ct, len, out, t);
    }
    rc = gm_mac(k, c, key + GM_ENC_KEY, nonce, aad, aadlen, ct, len, want);
    if (rc != GG_OK)
        return rc;
    if (CRYPTO_memcmp(want, tag, sizeof want) != 0)
        return GG_ECRYPTO;
    return cipher_run(k, 0, key, nonce, NULL, 0, ct, len, out, NULL);
}
