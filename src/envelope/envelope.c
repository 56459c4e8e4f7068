/* envelope.c - seal and open envelopes, suite "intl".
 *
 * Wire layout (docs/protocol.md ("Envelope"), all integers big-endian):
 *   "GGE" version:u8 suite:u8 kind:u8 flags:u8 msg_id[16] corr_id[16]
 *   txn:str16 sender:str16 receiver:str16 created_ms:u64 expiry_ms:u64
 *   key_id:u32                                  <- end of header (= AEAD AAD)
 *   nonce_len:u8 nonce  ct_len:u32 ct||tag      <- end of signed bytes
 *   sig_len:u16 sig
 *
 * Invariants:
 *  1. gg_env_open trusts nothing it has not verified: the signature is checked
 *     before any header field other than suite and key_id is acted on, and
 *     before decryption.
 *  2. The AEAD key is per message: HKDF-SHA256(ikm = X25519(our kem, peer kem),
 *     salt = msg_id, info = "gridgate v1 intl" || u8 len || sender || u8 len
 *     || receiver). The static shared secret is computed once, at load.
 *  3. A gg_env_keys is never written after gg_env_keys_load returns; every
 *     call makes its own EVP contexts, so any number of threads may share it.
 *  4. Parsing is exact: a field that does not fit, an unknown value, or a
 *     byte left over is GG_EPROTO; more than GG_ENV_MAX bytes is GG_ETOOBIG.
 */
#include "envelope/envelope.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rand.h"

#define ENV_MAGIC "GGE"
#define ENV_MAGIC_LEN 3
#define ENV_NONCE_MAX 32        /* any suite */
#define ENV_SIG_MAX 256         /* any suite */
#define ENV_TAG_MIN 16          /* any suite */
#define INTL_NONCE_LEN 12
#define INTL_TAG_LEN 16
#define INTL_SIG_LEN 64
#define INTL_KEY_LEN 32
#define INTL_INFO "gridgate v1 intl"

struct gg_env_keys {
    gg_env_suite suite;
    char self_name[GG_ENV_NAME_MAX];
    EVP_PKEY *sign;             /* our signing key (private) */
    EVP_PKEY *peer_sign;        /* peer's verification key */
    uint32_t self_key_id;
    uint32_t peer_key_id;
    uint8_t shared[32];         /* X25519(our kem, peer kem) */
    EVP_CIPHER *aead;           /* fetched once: AES-256-GCM */
    EVP_KDF *hkdf;              /* fetched once: HKDF */
};

/* A parsed, unverified envelope; pointers point into the input. */
typedef struct env_view {
    gg_env_hdr hdr;
    size_t hdr_len;             /* bytes of header = AAD */
    const uint8_t *nonce;
    uint8_t nonce_len;
    const uint8_t *ct;          /* ciphertext followed by tag */
    uint32_t ct_len;
    size_t signed_len;          /* bytes covered by the signature */
    const uint8_t *sig;
    uint16_t sig_len;
} env_view;

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

/* name_ok - 1 if s is a valid name of at most max-1 bytes: [A-Za-z0-9._-]+. */
static int name_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    if (n == 0 || n >= max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
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

/* key_id_of - first 4 bytes of SHA-256 of the raw public key, big-endian. */
static gg_err key_id_of(EVP_PKEY *pk, uint32_t *id)
{
    uint8_t raw[64], md[32];
    size_t n = sizeof raw;
    unsigned int mdlen = 0;

    if (EVP_PKEY_get_raw_public_key(pk, raw, &n) != 1)
        return GG_ECRYPTO;
    if (EVP_Digest(raw, n, md, &mdlen, EVP_sha256(), NULL) != 1)
        return GG_ECRYPTO;
    *id = (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3];
    return GG_OK;
}

/* x25519_shared - the static shared secret of our private and peer public key. */
static gg_err x25519_shared(EVP_PKEY *ours, EVP_PKEY *peer, uint8_t out[32])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ours, NULL);
    size_t n = 32;
    gg_err rc = GG_ECRYPTO;

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

gg_err gg_env_keys_load(const gg_env_keys_cfg *cfg, gg_env_keys **out, char *err,
                        size_t errsz)
{
    gg_env_keys *k = NULL;
    EVP_PKEY *kem = NULL, *peer_kem = NULL;
    gg_err rc = GG_ECONFIG;

    if (out)
        *out = NULL;
    if (!cfg || !out) {
        seterr(err, errsz, "no key configuration");
        return GG_EINVAL;
    }
    if (!cfg->suite || strcmp(cfg->suite, "intl") != 0) {
        if (cfg->suite && strcmp(cfg->suite, "gm") == 0)
            seterr(err, errsz, "security.suite: suite gm not implemented yet");
        else
            seterr(err, errsz, "security.suite: unknown suite \"%.16s\" (intl or gm)",
                   cfg->suite ? cfg->suite : "");
        return GG_ECONFIG;
    }
    if (!cfg->self_name || !name_ok(cfg->self_name, GG_ENV_NAME_MAX)) {
        seterr(err, errsz, "site.name: must be 1..%d characters of [A-Za-z0-9._-]",
               GG_ENV_NAME_MAX - 1);
        return GG_ECONFIG;
    }
    k = calloc(1, sizeof *k);
    if (!k) {
        rc = GG_ENOMEM;
        goto out;
    }
    k->suite = GG_SUITE_INTL;
    snprintf(k->self_name, sizeof k->self_name, "%s", cfg->self_name);

    rc = load_pem("security.sign_key", cfg->sign_key, 1, "ED25519", &k->sign, err, errsz);
    if (rc != GG_OK)
        goto out;
    rc = load_pem("security.kem_key", cfg->kem_key, 1, "X25519", &kem, err, errsz);
    if (rc != GG_OK)
        goto out;
    rc = load_pem("security.peer_sign_pub", cfg->peer_sign_pub, 0, "ED25519", &k->peer_sign,
                  err, errsz);
    if (rc != GG_OK)
        goto out;
    rc = load_pem("security.peer_kem_pub", cfg->peer_kem_pub, 0, "X25519", &peer_kem, err,
                  errsz);
    if (rc != GG_OK)
        goto out;

    rc = GG_ECONFIG;
    if (key_id_of(k->sign, &k->self_key_id) != GG_OK ||
        key_id_of(k->peer_sign, &k->peer_key_id) != GG_OK) {
        seterr(err, errsz, "security: cannot read raw signing public keys");
        goto out;
    }
    if (x25519_shared(kem, peer_kem, k->shared) != GG_OK) {
        seterr(err, errsz, "security: key agreement with peer_kem_pub failed");
        goto out;
    }
    k->aead = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    k->hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (!k->aead || !k->hkdf) {
        seterr(err, errsz, "security: OpenSSL lacks AES-256-GCM or HKDF");
        goto out;
    }
    gg_info("envelope", "msg=\"keys loaded\" suite=intl self=%s self_key_id=%08x "
            "peer_key_id=%08x", k->self_name, k->self_key_id, k->peer_key_id);
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

void gg_env_keys_free(gg_env_keys *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->sign);
    EVP_PKEY_free(k->peer_sign);
    EVP_CIPHER_free(k->aead);
    EVP_KDF_free(k->hkdf);
    OPENSSL_cleanse(k->shared, sizeof k->shared);
    free(k);
}

/* derive_key - the per-message AES key for (msg_id, sender, receiver). */
static gg_err derive_key(const gg_env_keys *k, const uint8_t msg_id[16], const char *sender,
                         const char *receiver, uint8_t key[INTL_KEY_LEN])
{
    uint8_t info[sizeof INTL_INFO + 2 * GG_ENV_NAME_MAX + 2];
    size_t ilen = 0, sl = strlen(sender), rl = strlen(receiver);
    OSSL_PARAM params[5];
    EVP_KDF_CTX *kctx = NULL;
    gg_err rc = GG_ECRYPTO;

    if (sl >= GG_ENV_NAME_MAX || rl >= GG_ENV_NAME_MAX)
        return GG_EINVAL;
    memcpy(info, INTL_INFO, sizeof INTL_INFO - 1);
    ilen = sizeof INTL_INFO - 1;
    info[ilen++] = (uint8_t)sl;
    memcpy(info + ilen, sender, sl);
    ilen += sl;
    info[ilen++] = (uint8_t)rl;
    memcpy(info + ilen, receiver, rl);
    ilen += rl;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)k->shared,
                                                  sizeof k->shared);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)msg_id, 16);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, ilen);
    params[4] = OSSL_PARAM_construct_end();
    kctx = EVP_KDF_CTX_new(k->hkdf);
    if (!kctx)
        goto out;
    if (EVP_KDF_derive(kctx, key, INTL_KEY_LEN, params) != 1)
        goto out;
    rc = GG_OK;
out:
    EVP_KDF_CTX_free(kctx);
    return rc;
}

/* gcm - AES-256-GCM one shot. enc=1: out = ct, tag written to tag.
 * enc=0: out = pt, tag checked. in and out are len bytes. */
static gg_err gcm(const gg_env_keys *k, int enc, const uint8_t key[INTL_KEY_LEN],
                  const uint8_t nonce[INTL_NONCE_LEN], const uint8_t *aad, size_t aadlen,
                  const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[INTL_TAG_LEN])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0;
    gg_err rc = GG_ECRYPTO;

    if (!c || len > GG_ENV_MAX || aadlen > GG_ENV_MAX)
        goto out;
    if (EVP_CipherInit_ex2(c, k->aead, key, nonce, enc, NULL) != 1)
        goto out;
    if (EVP_CipherUpdate(c, NULL, &n, aad, (int)aadlen) != 1)
        goto out;
    if (len > 0 && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, INTL_TAG_LEN, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(c, out + (len > 0 ? (size_t)n : 0), &n) != 1)
        goto out;
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, INTL_TAG_LEN, tag) != 1)
        goto out;
    rc = GG_OK;
out:
    EVP_CIPHER_CTX_free(c);
    ERR_clear_error();
    return rc;
}

/* env_parse - exact structural parse of in, no cryptography. */
static gg_err env_parse(const void *in, size_t len, env_view *v)
{
    gg_rd r;
    const uint8_t *p;
    uint8_t version, flags;
    uint64_t u;

    memset(v, 0, sizeof *v);
    if (!in)
        return len ? GG_EINVAL : GG_EPROTO;
    if (len > GG_ENV_MAX)
        return GG_ETOOBIG;
    r = gg_rd_make(in, len);
    if (gg_rd_bytes(&r, ENV_MAGIC_LEN, &p) != GG_OK)
        return GG_EPROTO;
    if (memcmp(p, ENV_MAGIC, ENV_MAGIC_LEN) != 0)
        return GG_EPROTO;
    if (gg_rd_u8(&r, &version) != GG_OK || version != GG_ENV_VERSION)
        return GG_EPROTO;
    v->hdr.version = version;
    if (gg_rd_u8(&r, &v->hdr.suite) != GG_OK ||
        (v->hdr.suite != GG_SUITE_INTL && v->hdr.suite != GG_SUITE_GM))
        return GG_EPROTO;
    if (gg_rd_u8(&r, &v->hdr.kind) != GG_OK || v->hdr.kind < GG_ENV_REQUEST ||
        v->hdr.kind > GG_ENV_EVENT)
        return GG_EPROTO;
    if (gg_rd_u8(&r, &flags) != GG_OK || flags != 0)   /* reserved in v1 */
        return GG_EPROTO;
    if (gg_rd_bytes(&r, 16, &p) != GG_OK)
        return GG_EPROTO;
    memcpy(v->hdr.msg_id, p, 16);
    if (gg_rd_bytes(&r, 16, &p) != GG_OK)
        return GG_EPROTO;
    memcpy(v->hdr.corr_id, p, 16);
    if (gg_rd_str16(&r, v->hdr.txn, sizeof v->hdr.txn) != GG_OK ||
        !name_ok(v->hdr.txn, sizeof v->hdr.txn))
        return GG_EPROTO;
    if (gg_rd_str16(&r, v->hdr.sender, sizeof v->hdr.sender) != GG_OK ||
        !name_ok(v->hdr.sender, sizeof v->hdr.sender))
        return GG_EPROTO;
    if (gg_rd_str16(&r, v->hdr.receiver, sizeof v->hdr.receiver) != GG_OK ||
        !name_ok(v->hdr.receiver, sizeof v->hdr.receiver))
        return GG_EPROTO;
    if (gg_rd_u64(&r, &u) != GG_OK)
        return GG_EPROTO;
    v->hdr.created_ms = (int64_t)u;
    if (gg_rd_u64(&r, &u) != GG_OK)
        return GG_EPROTO;
    v->hdr.expiry_ms = (int64_t)u;
    if (gg_rd_u32(&r, &v->hdr.key_id) != GG_OK)
        return GG_EPROTO;
    v->hdr_len = r.off;

    if (gg_rd_u8(&r, &v->nonce_len) != GG_OK || v->nonce_len == 0 ||
        v->nonce_len > ENV_NONCE_MAX)
        return GG_EPROTO;
    if (gg_rd_bytes(&r, v->nonce_len, &v->nonce) != GG_OK)
        return GG_EPROTO;
    if (gg_rd_u32(&r, &v->ct_len) != GG_OK || v->ct_len < ENV_TAG_MIN)
        return GG_EPROTO;
    if (gg_rd_bytes(&r, v->ct_len, &v->ct) != GG_OK)
        return GG_EPROTO;
    v->signed_len = r.off;
    if (gg_rd_u16(&r, &v->sig_len) != GG_OK || v->sig_len == 0 || v->sig_len > ENV_SIG_MAX)
        return GG_EPROTO;
    if (gg_rd_bytes(&r, v->sig_len, &v->sig) != GG_OK)
        return GG_EPROTO;
    if (gg_rd_left(&r) != 0)
        return GG_EPROTO;
    return GG_OK;
}

gg_err gg_env_peek(const void *in, size_t len, gg_env_hdr *hdr)
{
    env_view v;
    gg_err e;

    if (!hdr)
        return GG_EINVAL;
    e = env_parse(in, len, &v);
    if (e != GG_OK)
        return e;
    *hdr = v.hdr;
    return GG_OK;
}

/* sig_sign - Ed25519 signature of tbs into sig (INTL_SIG_LEN bytes). */
static gg_err sig_sign(const gg_env_keys *k, const uint8_t *tbs, size_t n, uint8_t *sig)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t siglen = INTL_SIG_LEN;
    gg_err rc = GG_ECRYPTO;

    if (!md)
        goto out;
    if (EVP_DigestSignInit(md, NULL, NULL, NULL, k->sign) != 1)
        goto out;
    if (EVP_DigestSign(md, sig, &siglen, tbs, n) != 1 || siglen != INTL_SIG_LEN)
        goto out;
    rc = GG_OK;
out:
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return rc;
}

/* sig_verify - GG_OK when sig is the peer's Ed25519 signature of tbs. */
static gg_err sig_verify(const gg_env_keys *k, const uint8_t *tbs, size_t n, const uint8_t *sig,
                         size_t siglen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    gg_err rc = GG_ECRYPTO;

    if (!md)
        goto out;
    if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, k->peer_sign) != 1)
        goto out;
    if (EVP_DigestVerify(md, sig, siglen, tbs, n) != 1)
        goto out;
    rc = GG_OK;
out:
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return rc;
}

/* sealed_size - total bytes of an intl envelope, or 0 if it exceeds GG_ENV_MAX. */
static size_t sealed_size(const gg_env_hdr *h, const char *sender, size_t ptlen)
{
    size_t fixed = ENV_MAGIC_LEN + 4 + 32 + 6 + strlen(h->txn) + strlen(sender) +
                   strlen(h->receiver) + 8 + 8 + 4 + 1 + INTL_NONCE_LEN + 4 + INTL_TAG_LEN +
                   2 + INTL_SIG_LEN;
    if (ptlen > GG_ENV_MAX || fixed + ptlen > GG_ENV_MAX)
        return 0;
    return fixed + ptlen;
}

gg_err gg_env_seal(const gg_env_keys *k, const gg_env_hdr *hdr, const void *pt, size_t ptlen,
                   gg_buf *out)
{
    uint8_t key[INTL_KEY_LEN], nonce[INTL_NONCE_LEN], tag[INTL_TAG_LEN], sig[INTL_SIG_LEN];
    const char *sender;
    size_t start, total, hdr_len;
    gg_err rc = GG_EINVAL;

    if (!k || !hdr || !out || (!pt && ptlen > 0))
        return GG_EINVAL;
    start = out->len;
    if (hdr->kind < GG_ENV_REQUEST || hdr->kind > GG_ENV_EVENT)
        return GG_EINVAL;
    sender = hdr->sender[0] ? hdr->sender : k->self_name;
    if (!name_ok(hdr->txn, sizeof hdr->txn) || !name_ok(hdr->receiver, sizeof hdr->receiver) ||
        !name_ok(sender, GG_ENV_NAME_MAX) || strcmp(sender, k->self_name) != 0)
        return GG_EINVAL;
    total = sealed_size(hdr, sender, ptlen);
    if (total == 0)
        return GG_ETOOBIG;
    rc = gg_buf_reserve(out, total);
    if (rc != GG_OK)
        return rc;

    /* Header: cannot fail after the reserve above. */
    gg_buf_append(out, ENV_MAGIC, ENV_MAGIC_LEN);
    gg_buf_put_u8(out, GG_ENV_VERSION);
    gg_buf_put_u8(out, (uint8_t)k->suite);
    gg_buf_put_u8(out, hdr->kind);
    gg_buf_put_u8(out, 0);
    gg_buf_append(out, hdr->msg_id, 16);
    gg_buf_append(out, hdr->corr_id, 16);
    gg_buf_put_str16(out, hdr->txn);
    gg_buf_put_str16(out, sender);
    gg_buf_put_str16(out, hdr->receiver);
    gg_buf_put_u64(out, (uint64_t)hdr->created_ms);
    gg_buf_put_u64(out, (uint64_t)hdr->expiry_ms);
    gg_buf_put_u32(out, k->self_key_id);
    hdr_len = out->len - start;

    rc = derive_key(k, hdr->msg_id, sender, hdr->receiver, key);
    if (rc != GG_OK)
        goto out;
    gg_random(nonce, sizeof nonce);
    gg_buf_put_u8(out, INTL_NONCE_LEN);
    gg_buf_append(out, nonce, sizeof nonce);
    gg_buf_put_u32(out, (uint32_t)(ptlen + INTL_TAG_LEN));
    rc = gcm(k, 1, key, nonce, out->data + start, hdr_len, pt, ptlen, out->data + out->len,
             tag);
    if (rc != GG_OK)
        goto out;
    out->len += ptlen;
    gg_buf_append(out, tag, sizeof tag);

    rc = sig_sign(k, out->data + start, out->len - start, sig);
    if (rc != GG_OK)
        goto out;
    gg_buf_put_u16(out, INTL_SIG_LEN);
    gg_buf_append(out, sig, sizeof sig);
    GG_ASSERT(out->len - start == total);
    rc = GG_OK;
out:
    OPENSSL_cleanse(key, sizeof key);
    if (rc != GG_OK)
        out->len = start;
    return rc;
}

gg_err gg_env_open(const gg_env_keys *k, const void *in, size_t len, gg_env_hdr *hdr,
                   uint8_t **pt, size_t *ptlen)
{
    uint8_t key[INTL_KEY_LEN], tag[INTL_TAG_LEN];
    uint8_t *plain = NULL;
    size_t plen;
    env_view v;
    gg_err rc;

    if (pt)
        *pt = NULL;
    if (ptlen)
        *ptlen = 0;
    if (!k || !hdr || !pt || !ptlen)
        return GG_EINVAL;
    rc = env_parse(in, len, &v);
    if (rc != GG_OK)
        return rc;
    if (v.hdr.suite != k->suite) {
        gg_debug("envelope", "msg=\"rejected\" reason=suite suite=%u", v.hdr.suite);
        return GG_ECRYPTO;
    }
    if (v.nonce_len != INTL_NONCE_LEN || v.sig_len != INTL_SIG_LEN)
        return GG_EPROTO;
    if (v.hdr.key_id != k->peer_key_id) {
        gg_debug("envelope", "msg=\"rejected\" reason=key_id key_id=%08x", v.hdr.key_id);
        return GG_ECRYPTO;
    }
    rc = sig_verify(k, in, v.signed_len, v.sig, v.sig_len);
    if (rc != GG_OK) {
        gg_debug("envelope", "msg=\"rejected\" reason=signature");
        return rc;
    }
    /* From here the header is the peer's own words. */
    if (strcmp(v.hdr.receiver, k->self_name) != 0) {
        gg_debug("envelope", "msg=\"rejected\" reason=receiver receiver=%s", v.hdr.receiver);
        return GG_EDENIED;
    }
    rc = derive_key(k, v.hdr.msg_id, v.hdr.sender, v.hdr.receiver, key);
    if (rc != GG_OK)
        goto out;
    plen = v.ct_len - INTL_TAG_LEN;
    plain = malloc(plen ? plen : 1);
    if (!plain) {
        rc = GG_ENOMEM;
        goto out;
    }
    memcpy(tag, v.ct + plen, INTL_TAG_LEN);
    rc = gcm(k, 0, key, v.nonce, in, v.hdr_len, v.ct, plen, plain, tag);
    if (rc != GG_OK) {
        gg_debug("envelope", "msg=\"rejected\" reason=tag");
        goto out;
    }
    *hdr = v.hdr;
    *pt = plain;
    *ptlen = plen;
    plain = NULL;
out:
    OPENSSL_cleanse(key, sizeof key);
    if (plain) {
        OPENSSL_cleanse(plain, plen);
        free(plain);
    }
    return rc;
}
