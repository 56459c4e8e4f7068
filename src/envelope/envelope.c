/* envelope.c - the envelope format: parse, seal and open (both suites).
 *
 * Wire layout (docs/protocol.md ("Envelope"), all integers big-endian):
 *   "GGE" version:u8 suite:u8 kind:u8 flags:u8 msg_id[16] corr_id[16]
 *   txn:str16 sender:str16 receiver:str16 created_ms:u64 expiry_ms:u64
 *   key_id:u32 req_hash[32]                     <- end of header (= AAD)
 *   nonce_len:u8 nonce  ct_len:u32 ct||tag      <- end of signed bytes
 *   sig_len:u16 sig
 *
 * The cryptography of each suite is in env_crypto.c, key loading in
 * env_keys.c; this file is suite-blind.
 *
 * Invariants:
 *  1. gg_env_open trusts nothing it has not verified: the signature is checked
 *     before any header field other than suite and key_id is acted on, and
 *     before decryption.
 *  2. The encryption key is per message: HKDF(ikm = the static agreement of
 *     our kem key and the peer's, salt = msg_id, info = suite label || u8
 *     len || sender || u8 len || receiver). The static secret is computed
 *     once, at load.
 *  3. A gg_env_keys is never written after gg_env_keys_load returns; every
 *     call makes its own EVP contexts, so any number of threads may share it.
 *  4. Parsing is exact: a field that does not fit, an unknown value, or a
 *     byte left over is GG_EPROTO; more than GG_ENV_MAX bytes is GG_ETOOBIG.
 *  5. Only a reply carries a request hash; in any other kind it is zero.
 */
#include "envelope/envelope.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "envelope/env_int.h"

#define ENV_MAGIC "GGE"
#define ENV_MAGIC_LEN 3

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

/* env_name_ok - 1 if s is a valid name of at most max-1 bytes: [A-Za-z0-9._-]+. */
int env_name_ok(const char *s, size_t max)
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

/* zero_hash - 1 if h is all zero. */
static int zero_hash(const uint8_t h[GG_ENV_HASH_LEN])
{
    uint8_t acc = 0;

    for (size_t i = 0; i < GG_ENV_HASH_LEN; i++)
        acc |= h[i];
    return acc == 0;
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
        !env_name_ok(v->hdr.txn, sizeof v->hdr.txn))
        return GG_EPROTO;
    if (gg_rd_str16(&r, v->hdr.sender, sizeof v->hdr.sender) != GG_OK ||
        !env_name_ok(v->hdr.sender, sizeof v->hdr.sender))
        return GG_EPROTO;
    if (gg_rd_str16(&r, v->hdr.receiver, sizeof v->hdr.receiver) != GG_OK ||
        !env_name_ok(v->hdr.receiver, sizeof v->hdr.receiver))
        return GG_EPROTO;
    if (gg_rd_u64(&r, &u) != GG_OK)
        return GG_EPROTO;
    v->hdr.created_ms = (int64_t)u;
    if (gg_rd_u64(&r, &u) != GG_OK)
        return GG_EPROTO;
    v->hdr.expiry_ms = (int64_t)u;
    if (gg_rd_u32(&r, &v->hdr.key_id) != GG_OK)
        return GG_EPROTO;
    if (gg_rd_bytes(&r, GG_ENV_HASH_LEN, &p) != GG_OK)
        return GG_EPROTO;
    memcpy(v->hdr.req_hash, p, GG_ENV_HASH_LEN);
    if (v->hdr.kind != GG_ENV_REPLY && !zero_hash(v->hdr.req_hash))
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

/* sealed_max - most bytes of an envelope of suite s, or 0 if over GG_ENV_MAX. */
static size_t sealed_max(const env_suite *s, const gg_env_hdr *h, const char *sender,
                         size_t ptlen)
{
    size_t fixed = ENV_MAGIC_LEN + 4 + 32 + 6 + strlen(h->txn) + strlen(sender) +
                   strlen(h->receiver) + 8 + 8 + 4 + GG_ENV_HASH_LEN + 1 + s->nonce_len + 4 +
                   s->tag_len + 2 + s->sig_max;
    if (ptlen > GG_ENV_MAX || fixed + ptlen > GG_ENV_MAX)
        return 0;
    return fixed + ptlen;
}

gg_err gg_env_hash(const gg_env_keys *k, const void *env, size_t len,
                   uint8_t out[GG_ENV_HASH_LEN])
{
    unsigned int n = 0;

    if (!k || (!env && len > 0))
        return GG_EINVAL;
    if (EVP_Digest(env, len, out, &n, k->md, NULL) != 1 || n != GG_ENV_HASH_LEN) {
        ERR_clear_error();
        return GG_ECRYPTO;
    }
    return GG_OK;
}

gg_err gg_env_seal(const gg_env_keys *k, const gg_env_hdr *hdr, const void *pt, size_t ptlen,
                   gg_buf *out)
{
    return gg_env_seal_nonce(k, hdr, pt, ptlen, NULL, out);
}

gg_err gg_env_seal_nonce(const gg_env_keys *k, const gg_env_hdr *hdr, const void *pt,
                         size_t ptlen, const uint8_t *fixed_nonce, gg_buf *out)
{
    uint8_t key[ENV_KEY_MAX], nonce[ENV_NONCE_MAX], tag[64], sig[ENV_SIG_MAX];
    const env_suite *s;
    const char *sender;
    size_t start, total, hdr_len, siglen = sizeof sig;
    gg_err rc = GG_EINVAL;

    if (!k || !hdr || !out || (!pt && ptlen > 0))
        return GG_EINVAL;
    s = k->s;
    start = out->len;
    if (hdr->kind < GG_ENV_REQUEST || hdr->kind > GG_ENV_EVENT)
        return GG_EINVAL;
    if (hdr->kind != GG_ENV_REPLY && !zero_hash(hdr->req_hash))
        return GG_EINVAL;
    sender = hdr->sender[0] ? hdr->sender : k->self_name;
    if (!env_name_ok(hdr->txn, sizeof hdr->txn) ||
        !env_name_ok(hdr->receiver, sizeof hdr->receiver) ||
        !env_name_ok(sender, GG_ENV_NAME_MAX) || strcmp(sender, k->self_name) != 0)
        return GG_EINVAL;
    total = sealed_max(s, hdr, sender, ptlen);
    if (total == 0)
        return GG_ETOOBIG;
    rc = gg_buf_reserve(out, total);
    if (rc != GG_OK)
        return rc;

    /* Header: cannot fail after the reserve above. */
    gg_buf_append(out, ENV_MAGIC, ENV_MAGIC_LEN);
    gg_buf_put_u8(out, GG_ENV_VERSION);
    gg_buf_put_u8(out, (uint8_t)s->id);
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
    gg_buf_append(out, hdr->req_hash, GG_ENV_HASH_LEN);
    hdr_len = out->len - start;

    rc = env_derive(k, hdr->msg_id, sender, hdr->receiver, key);
    if (rc != GG_OK)
        goto out;
    if (fixed_nonce != NULL)
        memcpy(nonce, fixed_nonce, s->nonce_len);
    else
        gg_random(nonce, s->nonce_len);
    gg_buf_put_u8(out, (uint8_t)s->nonce_len);
    gg_buf_append(out, nonce, s->nonce_len);
    gg_buf_put_u32(out, (uint32_t)(ptlen + s->tag_len));
    rc = env_encrypt(k, key, nonce, out->data + start, hdr_len, pt, ptlen,
                     out->data + out->len, tag);
    if (rc != GG_OK)
        goto out;
    out->len += ptlen;
    gg_buf_append(out, tag, s->tag_len);

    rc = env_sign(k, out->data + start, out->len - start, sig, &siglen);
    if (rc != GG_OK)
        goto out;
    gg_buf_put_u16(out, (uint16_t)siglen);
    gg_buf_append(out, sig, siglen);
    GG_ASSERT(out->len - start <= total);
    rc = GG_OK;
out:
    OPENSSL_cleanse(key, sizeof key);
    if (rc != GG_OK)
        out->len = start;
    return rc;
}

/* peer_key - the peer's verification key named by key_id, or NULL: the
 * current key, or the previous one while its overlap lasts. */
static EVP_PKEY *peer_key(const gg_env_keys *k, uint32_t key_id)
{
    if (key_id == k->peer_key_id)
        return k->peer_sign;
    if (k->peer_sign_prev != NULL && key_id == k->peer_prev_key_id &&
        gg_now_ms() < k->peer_prev_until_ms)
        return k->peer_sign_prev;
    return NULL;
}

gg_err gg_env_open(const gg_env_keys *k, const void *in, size_t len, gg_env_hdr *hdr,
                   uint8_t **pt, size_t *ptlen)
{
    uint8_t key[ENV_KEY_MAX];
    uint8_t *plain = NULL;
    const env_suite *s;
    EVP_PKEY *pk;
    size_t plen = 0;
    env_view v;
    gg_err rc;

    if (pt)
        *pt = NULL;
    if (ptlen)
        *ptlen = 0;
    if (!k || !hdr || !pt || !ptlen)
        return GG_EINVAL;
    s = k->s;
    rc = env_parse(in, len, &v);
    if (rc != GG_OK)
        return rc;
    if (v.hdr.suite != s->id) {
        gg_debug("envelope", "msg=\"rejected\" reason=suite suite=%u", v.hdr.suite);
        return GG_ECRYPTO;
    }
    if (v.nonce_len != s->nonce_len || v.sig_len < s->sig_min || v.sig_len > s->sig_max ||
        v.ct_len < s->tag_len)
        return GG_EPROTO;
    pk = peer_key(k, v.hdr.key_id);
    if (pk == NULL) {
        gg_debug("envelope", "msg=\"rejected\" reason=key_id key_id=%08x", v.hdr.key_id);
        return GG_ECRYPTO;
    }
    rc = env_verify(k, pk, in, v.signed_len, v.sig, v.sig_len);
    if (rc != GG_OK) {
        gg_debug("envelope", "msg=\"rejected\" reason=signature");
        return rc;
    }
    /* From here the header is the peer's own words. */
    if (strcmp(v.hdr.receiver, k->self_name) != 0) {
        gg_debug("envelope", "msg=\"rejected\" reason=receiver receiver=%s", v.hdr.receiver);
        return GG_EDENIED;
    }
    rc = env_derive(k, v.hdr.msg_id, v.hdr.sender, v.hdr.receiver, key);
    if (rc != GG_OK)
        goto out;
    plen = v.ct_len - s->tag_len;
    plain = malloc(plen ? plen : 1);
    if (!plain) {
        rc = GG_ENOMEM;
        goto out;
    }
    rc = env_decrypt(k, key, v.nonce, in, v.hdr_len, v.ct, plen, plain, v.ct + plen);
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
