/* envelope.c - the envelope format: parse, seal and open (both suites).
 *
 * Wire layout (docs/protocol.md ("Envelope"), all integers big-endian):
 *   "GGE" version:u8 suite:u8 kind:u8 flags:u8 msg_id[16] corr_id[16]
 *   txn:str16 sender:str16 receiver:str16 created_ms:u64 expiry_ms:u64
 *   key_id:u32 req_hash[32]                     <- end of header (= AAD)
 *   nonce_len:u8 nonce  ct_len:u32 ct||tag      <- end of leaf bytes
 *   tree_size:u16 leaf_index:u16 path_len:u8 path[path_len][32]
 *   sig_len:u16 sig                             (signature of the tree root)
 *
 * Group signing: the leaf is H(0x00 || leaf bytes), a node H(0x01 || left
 * || right) (H = the suite digest); an odd last node of a level moves up
 * unchanged. The signature covers "gridgate v3 root" || suite:u8 ||
 * tree_size:u16 || root. Seals that arrive while a root is being signed
 * queue and are signed together by the next one to sign (like group
 * commit: no timer, a lone seal signs at once), up to ENV_BATCH_MAX; the
 * next signer first yields the CPU once and waits for the seals being
 * encrypted by then (seal_gather). A receiver remembers the root signatures
 * that verified (the verify cache), so the other envelopes of a tree cost
 * a walk up their path and no public-key operation.
 *
 * The cryptography of each suite is in env_crypto.c, key loading in
 * env_keys.c; this file is suite-blind.
 *
 * Invariants:
 *  1. gg_env_open trusts nothing it has not verified: the leaf is walked to
 *     the root and the root's signature checked (or found in the verify
 *     cache, which holds only signatures that verified) before any header
 *     field other than suite and key_id is acted on, and before decryption.
 *  2. The encryption key is per message: HKDF(ikm = the static agreement of
 *     our kem key and the peer's, salt = msg_id, info = suite label || u8
 *     len || sender || u8 len || receiver). The static secret is computed
 *     once, at load.
 *  3. A gg_env_keys is never written after gg_env_keys_load returns but for
 *     its signer queue and verify cache, each under its own mutex (the
 *     signer's count of begun seals is an atomic counter); every
 *     call makes its own EVP contexts (the signing ones copied from
 *     templates made at load), so any number of threads may share it.
 *  4. Parsing is exact: a field that does not fit, an unknown value, or a
 *     byte left over is GG_EPROTO; more than GG_ENV_MAX bytes is GG_ETOOBIG.
 *  5. Only a reply carries a request hash; in any other kind it is zero.
 */
#include "envelope/envelope.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "envelope/env_int.h"

#define ENV_MAGIC "GGE"
#define ENV_MAGIC_LEN 3
#define ENV_ROOT_LABEL "gridgate v3 root"
#define ENV_ROOT_LABEL_LEN 16
#define ENV_ROOT_TBS (ENV_ROOT_LABEL_LEN + 1 + 2 + GG_ENV_HASH_LEN)
#define ENV_TRAILER_FIXED (2 + 2 + 1 + 2)      /* size, index, path_len, sig_len */

/* A parsed, unverified envelope; pointers point into the input. */
typedef struct env_view {
    gg_env_hdr hdr;
    size_t hdr_len;             /* bytes of header = AAD */
    const uint8_t *nonce;
    uint8_t nonce_len;
    const uint8_t *ct;          /* ciphertext followed by tag */
    uint32_t ct_len;
    size_t signed_len;          /* bytes of the leaf */
    uint16_t tree_size;
    uint16_t leaf_index;
    uint8_t path_len;
    const uint8_t *path;        /* path_len hashes */
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

/* tree_path_len - siblings on the path of leaf index in a tree of size leaves. */
static unsigned tree_path_len(unsigned index, unsigned size)
{
    unsigned n = 0;

    for (unsigned cnt = size; cnt > 1; cnt = (cnt + 1) / 2, index >>= 1) {
        if ((index ^ 1u) < cnt)
            n++;
    }
    return n;
}

/* env_leaf - H(0x00 || p[0, n)): the tree leaf of an envelope's leaf bytes;
 * c is a scratch digest context. */
static gg_err env_leaf(const gg_env_keys *k, EVP_MD_CTX *c, const uint8_t *p, size_t n,
                       uint8_t out[GG_ENV_HASH_LEN])
{
    static const uint8_t tag = 0x00;
    const env_part parts[2] = { { &tag, 1 }, { p, n } };

    return env_hash(k, c, parts, 2, out);
}

/* env_node - H(0x01 || l || r): an inner node of the tree (out may be l or
 * r); c is a scratch digest context. */
static gg_err env_node(const gg_env_keys *k, EVP_MD_CTX *c, const uint8_t *l, const uint8_t *r,
                       uint8_t out[GG_ENV_HASH_LEN])
{
    static const uint8_t tag = 0x01;
    const env_part parts[3] = { { &tag, 1 }, { l, GG_ENV_HASH_LEN }, { r, GG_ENV_HASH_LEN } };

    return env_hash(k, c, parts, 3, out);
}

/* root_tbs - the bytes a root signature covers. */
static void root_tbs(const gg_env_keys *k, unsigned size, const uint8_t root[GG_ENV_HASH_LEN],
                     uint8_t tbs[ENV_ROOT_TBS])
{
    memcpy(tbs, ENV_ROOT_LABEL, ENV_ROOT_LABEL_LEN);
    tbs[ENV_ROOT_LABEL_LEN] = (uint8_t)k->s->id;
    tbs[ENV_ROOT_LABEL_LEN + 1] = (uint8_t)(size >> 8);
    tbs[ENV_ROOT_LABEL_LEN + 2] = (uint8_t)size;
    memcpy(tbs + ENV_ROOT_LABEL_LEN + 3, root, GG_ENV_HASH_LEN);
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
    if (gg_rd_u16(&r, &v->tree_size) != GG_OK || v->tree_size == 0 ||
        gg_rd_u16(&r, &v->leaf_index) != GG_OK || v->leaf_index >= v->tree_size)
        return GG_EPROTO;
    if (gg_rd_u8(&r, &v->path_len) != GG_OK ||
        v->path_len != tree_path_len(v->leaf_index, v->tree_size))
        return GG_EPROTO;
    if (gg_rd_bytes(&r, (size_t)v->path_len * GG_ENV_HASH_LEN, &v->path) != GG_OK)
        return GG_EPROTO;
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
                   s->tag_len + ENV_TRAILER_FIXED + ENV_SEAL_PATH_MAX * GG_ENV_HASH_LEN +
                   s->sig_max;
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

gg_err env_shared_init(gg_env_keys *k)
{
    k->signer = calloc(1, sizeof *k->signer);
    k->vcache = calloc(1, sizeof *k->vcache);
    if (k->signer == NULL || k->vcache == NULL) {
        free(k->signer);
        free(k->vcache);
        k->signer = NULL;
        k->vcache = NULL;
        return GG_ENOMEM;
    }
    pthread_mutex_init(&k->signer->mu, NULL);
    pthread_cond_init(&k->signer->room, NULL);
    pthread_cond_init(&k->signer->gather, NULL);
    pthread_mutex_init(&k->vcache->mu, NULL);
    pthread_cond_init(&k->vcache->cv, NULL);
    return GG_OK;
}

void env_shared_free(gg_env_keys *k)
{
    if (k->signer != NULL) {
        pthread_mutex_destroy(&k->signer->mu);
        pthread_cond_destroy(&k->signer->room);
        pthread_cond_destroy(&k->signer->gather);
        free(k->signer);
        k->signer = NULL;
    }
    if (k->vcache != NULL) {
        pthread_mutex_destroy(&k->vcache->mu);
        pthread_cond_destroy(&k->vcache->cv);
        free(k->vcache);
        k->vcache = NULL;
    }
}

/* seal_body - check hdr, reserve the whole envelope in out and append its
 * leaf bytes (header through ct||tag); their leaf hash into leaf. On error
 * out is left as it was. */
static gg_err seal_body(const gg_env_keys *k, const gg_env_hdr *hdr, const void *pt,
                        size_t ptlen, const uint8_t *fixed_nonce, gg_buf *out,
                        uint8_t leaf[GG_ENV_HASH_LEN])
{
    uint8_t key[ENV_KEY_MAX], nonce[ENV_NONCE_MAX], tag[64];
    EVP_MD_CTX *c = NULL;
    const env_suite *s;
    const char *sender;
    size_t start, total, hdr_len;
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

    c = EVP_MD_CTX_new();
    rc = c != NULL ? env_derive(k, c, k->shared, hdr->msg_id, sender, hdr->receiver, key)
                   : GG_ENOMEM;
    if (rc != GG_OK)
        goto out;
    if (fixed_nonce != NULL)
        memcpy(nonce, fixed_nonce, s->nonce_len);
    else
        gg_random(nonce, s->nonce_len);
    gg_buf_put_u8(out, (uint8_t)s->nonce_len);
    gg_buf_append(out, nonce, s->nonce_len);
    gg_buf_put_u32(out, (uint32_t)(ptlen + s->tag_len));
    rc = env_encrypt(k, c, key, nonce, out->data + start, hdr_len, pt, ptlen,
                     out->data + out->len, tag);
    if (rc != GG_OK)
        goto out;
    out->len += ptlen;
    gg_buf_append(out, tag, s->tag_len);
    rc = env_leaf(k, c, out->data + start, out->len - start, leaf);
out:
    EVP_MD_CTX_free(c);
    OPENSSL_cleanse(key, sizeof key);
    if (rc != GG_OK)
        out->len = start;
    return rc;
}

/* seal_trailer - append the tree position, path and root signature of r to
 * out (room was reserved by seal_body, so this cannot fail). */
static void seal_trailer(gg_buf *out, const env_sreq *r)
{
    gg_buf_put_u16(out, r->size);
    gg_buf_put_u16(out, r->index);
    gg_buf_put_u8(out, r->path_len);
    for (unsigned i = 0; i < r->path_len; i++)
        gg_buf_append(out, r->path[i], GG_ENV_HASH_LEN);
    gg_buf_put_u16(out, (uint16_t)r->sig_len);
    gg_buf_append(out, r->sig, r->sig_len);
}

/* sign_tree - build the tree of reqs[0, n) and sign its root once; every
 * request gets its index, the size, its path and the signature (and rc). */
static gg_err sign_tree(const gg_env_keys *k, env_sreq *const *reqs, size_t n)
{
    uint8_t nodes[2 * ENV_BATCH_MAX + ENV_SEAL_PATH_MAX + 2][GG_ENV_HASH_LEN];
    uint8_t tbs[ENV_ROOT_TBS], sig[ENV_SIG_MAX];
    size_t off[ENV_SEAL_PATH_MAX + 1], cnt[ENV_SEAL_PATH_MAX + 1];
    size_t levels = 0, top = n, siglen = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    gg_err rc = md != NULL ? GG_OK : GG_ENOMEM;

    GG_ASSERT(n >= 1 && n <= ENV_BATCH_MAX);
    for (size_t i = 0; i < n; i++)
        memcpy(nodes[i], reqs[i]->leaf, GG_ENV_HASH_LEN);
    off[0] = 0;
    cnt[0] = n;
    while (cnt[levels] > 1 && rc == GG_OK) {
        size_t c = cnt[levels], o = off[levels];

        GG_ASSERT(levels < ENV_SEAL_PATH_MAX);
        off[levels + 1] = top;
        cnt[levels + 1] = (c + 1) / 2;
        for (size_t j = 0; j + 1 < c && rc == GG_OK; j += 2)
            rc = env_node(k, md, nodes[o + j], nodes[o + j + 1], nodes[top++]);
        if (c & 1)
            memcpy(nodes[top++], nodes[o + c - 1], GG_ENV_HASH_LEN);
        levels++;
    }
    EVP_MD_CTX_free(md);
    if (rc == GG_OK) {
        root_tbs(k, (unsigned)n, nodes[top - 1], tbs);
        rc = env_sign(k, tbs, sizeof tbs, sig, &siglen);
    }
    for (size_t i = 0; i < n; i++) {
        env_sreq *r = reqs[i];
        size_t idx = i;

        r->rc = rc;
        if (rc != GG_OK)
            continue;
        r->path_len = 0;
        for (size_t l = 0; l < levels; l++, idx >>= 1) {
            if ((idx ^ 1u) < cnt[l])
                memcpy(r->path[r->path_len++], nodes[off[l] + (idx ^ 1u)], GG_ENV_HASH_LEN);
        }
        r->index = (uint16_t)i;
        r->size = (uint16_t)n;
        memcpy(r->sig, sig, siglen);
        r->sig_len = siglen;
    }
    return rc;
}

/* seal_settle - under g->mu: one begun seal is queued or has failed; wake
 * the gathering leader when it has all it waits for or a full queue. */
static void seal_settle(env_signer *g)
{
    g->settled++;
    if (g->gather_to != 0 && (g->settled >= g->gather_to || g->nq == ENV_BATCH_MAX))
        pthread_cond_signal(&g->gather);
}

/* seal_gather - under g->mu, as the new leader: yield the CPU once, so that
 * threads ready to run (typically the seals of the last tree, just woken)
 * begin their next seals, then wait until the seals begun before now are
 * queued or failed, or the queue is full. No timer: with nothing else
 * runnable the yield returns at once, and seals begun later wait for the
 * next tree. */
static void seal_gather(env_signer *g)
{
    pthread_mutex_unlock(&g->mu);
    sched_yield();
    pthread_mutex_lock(&g->mu);
    g->gather_to = atomic_load_explicit(&g->begun, memory_order_relaxed);
    while (g->settled < g->gather_to && g->nq < ENV_BATCH_MAX)
        pthread_cond_wait(&g->gather, &g->mu);
    g->gather_to = 0;
}

/* sreq_post - set r's state (ENV_SREQ_LEAD or _DONE) and wake it: one
 * sem_post, no lock (sem_post and sem_wait order the writes to r before
 * it). Once posted, r may be gone: its owner destroys the semaphore and
 * returns from gg_env_seal as soon as its sem_wait returns, which POSIX
 * allows and glibc's sem_post is safe against. */
static void sreq_post(env_sreq *r, int state)
{
    r->state = state;
    sem_post(&r->posted);
}

/* sreq_wait - sleep until r is posted; the state it was posted. */
static int sreq_wait(env_sreq *r)
{
    while (sem_wait(&r->posted) != 0)
        GG_ASSERT(errno == EINTR);          /* a signal handler ran */
    return r->state;
}

/* sign_lead - called with g->mu held and g->busy set for the caller, whose
 * me is queued: gather, take the whole queue, sign it as one tree, pass
 * the lead (busy still set) to the first seal queued meanwhile, if any,
 * then wake every seal signed but me. Returns with g->mu released. */
static void sign_lead(const gg_env_keys *k, env_signer *g, const env_sreq *me)
{
    env_sreq *batch[ENV_BATCH_MAX], *next = NULL;
    size_t n;

    seal_gather(g);
    n = g->nq;
    memcpy(batch, g->q, n * sizeof batch[0]);
    g->nq = 0;
    if (n == ENV_BATCH_MAX)
        pthread_cond_broadcast(&g->room);
    pthread_mutex_unlock(&g->mu);
    (void)sign_tree(k, batch, n);
    pthread_mutex_lock(&g->mu);
    if (g->nq > 0)
        next = g->q[0];
    else
        g->busy = 0;
    pthread_mutex_unlock(&g->mu);
    if (next != NULL)
        sreq_post(next, ENV_SREQ_LEAD);
    for (size_t i = 0; i < n; i++) {
        if (batch[i] != me)
            sreq_post(batch[i], ENV_SREQ_DONE);
    }
}

/* group_sign - sign me's leaf together with the seals queued meanwhile:
 * a seal that finds no leader leads at once (sign_lead); any other sleeps
 * on its own semaphore (me->posted, posted once) until a leader has signed
 * it, or passes it the lead. me was counted in g->begun (seal_begin). */
static gg_err group_sign(const gg_env_keys *k, env_sreq *me)
{
    env_signer *g = k->signer;

    me->state = ENV_SREQ_WAIT;
    pthread_mutex_lock(&g->mu);
    while (g->nq == ENV_BATCH_MAX)
        pthread_cond_wait(&g->room, &g->mu);
    g->q[g->nq++] = me;
    seal_settle(g);
    if (!g->busy) {
        g->busy = 1;
        sign_lead(k, g, me);
    } else {
        pthread_mutex_unlock(&g->mu);
        if (sreq_wait(me) == ENV_SREQ_LEAD) {
            pthread_mutex_lock(&g->mu);
            sign_lead(k, g, me);
        }
    }
    return me->rc;
}

/* seal_begin / seal_abandon - a seal's body is being made / failed: the
 * next leader waits for it (seal_gather) until it is queued or abandoned.
 * begun is atomic, so that beginning takes no lock: a leader that reads it
 * just before an increment treats that seal as begun later. */
static void seal_begin(env_signer *g)
{
    atomic_fetch_add_explicit(&g->begun, 1, memory_order_relaxed);
}

static void seal_abandon(env_signer *g)
{
    pthread_mutex_lock(&g->mu);
    seal_settle(g);
    pthread_mutex_unlock(&g->mu);
}

gg_err gg_env_seal(const gg_env_keys *k, const gg_env_hdr *hdr, const void *pt, size_t ptlen,
                   gg_buf *out)
{
    return gg_env_seal_nonce(k, hdr, pt, ptlen, NULL, out);
}

gg_err gg_env_seal_nonce(const gg_env_keys *k, const gg_env_hdr *hdr, const void *pt,
                         size_t ptlen, const uint8_t *fixed_nonce, gg_buf *out)
{
    env_sreq r;
    size_t start;
    gg_err rc;

    if (!k || !out)
        return GG_EINVAL;
    start = out->len;
    if (sem_init(&r.posted, 0, 0) != 0)
        return GG_ENOMEM;               /* not expected: value 0, not shared */
    seal_begin(k->signer);
    rc = seal_body(k, hdr, pt, ptlen, fixed_nonce, out, r.leaf);
    if (rc != GG_OK) {
        seal_abandon(k->signer);
        sem_destroy(&r.posted);
        return rc;
    }
    rc = group_sign(k, &r);
    sem_destroy(&r.posted);
    if (rc != GG_OK) {
        out->len = start;
        return rc;
    }
    seal_trailer(out, &r);
    return GG_OK;
}

gg_err gg_env_seal_batch(const gg_env_keys *k, size_t n, const gg_env_hdr *hdrs,
                         const void *const *pts, const size_t *ptlens,
                         const uint8_t *const *nonces, gg_buf *outs)
{
    env_sreq *reqs, *ptrs[ENV_BATCH_MAX];
    size_t starts[ENV_BATCH_MAX], done = 0;
    gg_err rc = GG_OK;

    if (!k || n == 0 || n > ENV_BATCH_MAX || !hdrs || !pts || !ptlens || !outs)
        return GG_EINVAL;
    reqs = calloc(n, sizeof *reqs);
    if (reqs == NULL)
        return GG_ENOMEM;
    for (; done < n && rc == GG_OK; done++) {
        starts[done] = outs[done].len;
        ptrs[done] = &reqs[done];
        rc = seal_body(k, &hdrs[done], pts[done], ptlens[done], nonces ? nonces[done] : NULL,
                       &outs[done], reqs[done].leaf);
    }
    if (rc == GG_OK)
        rc = sign_tree(k, ptrs, n);
    for (size_t i = 0; i < done; i++) {
        if (rc == GG_OK)
            seal_trailer(&outs[i], &reqs[i]);
        else
            outs[i].len = starts[i];
    }
    free(reqs);
    return rc;
}

/* vset - the verify-cache set of a root (a hash: its first bytes are uniform). */
static env_vent *vset(env_vcache *c, const uint8_t root[GG_ENV_HASH_LEN])
{
    uint32_t h = (uint32_t)root[0] << 24 | (uint32_t)root[1] << 16 | (uint32_t)root[2] << 8 |
                 root[3];

    return c->e[h % ENV_VCACHE_SETS];
}

/* vent_find - the slot of set holding exactly this root signature (in any
 * state), or NULL. */
static env_vent *vent_find(env_vent *set, uint32_t key_id, unsigned size,
                           const uint8_t root[GG_ENV_HASH_LEN], const uint8_t *sig,
                           size_t sig_len)
{
    for (size_t w = 0; w < ENV_VCACHE_WAYS; w++) {
        const env_vent *e = &set[w];

        if (e->state != ENV_VENT_EMPTY && e->key_id == key_id && e->size == size &&
            e->sig_len == sig_len && memcmp(e->root, root, GG_ENV_HASH_LEN) == 0 &&
            memcmp(e->sig, sig, sig_len) == 0)
            return &set[w];
    }
    return NULL;
}

/* vent_victim - the slot of set to claim for a new root: an empty one, else
 * the least recently used verified one; NULL if all are being verified. */
static env_vent *vent_victim(env_vent *set)
{
    env_vent *best = NULL;

    for (size_t w = 0; w < ENV_VCACHE_WAYS; w++) {
        env_vent *e = &set[w];

        if (e->state == ENV_VENT_EMPTY)
            return e;
        if (e->state == ENV_VENT_VERIFIED && (best == NULL || e->used < best->used))
            best = e;
    }
    return best;
}

/* verify_root - GG_OK if sig is the signature of the root statement by the
 * key of vctx. A signature that verified is remembered in k's cache; a
 * thread that finds the same signature being verified by another waits for
 * that result instead of repeating it (only a success is kept: after a
 * failure each waiter verifies for itself). */
static gg_err verify_root(const gg_env_keys *k, const EVP_MD_CTX *vctx, uint32_t key_id,
                          unsigned size, const uint8_t root[GG_ENV_HASH_LEN],
                          const uint8_t *sig, size_t sig_len)
{
    uint8_t tbs[ENV_ROOT_TBS];
    env_vcache *c = k->vcache;
    env_vent *set = vset(c, root), *e = NULL;
    gg_err rc;

    root_tbs(k, size, root, tbs);
    if (sig_len > ENV_VCACHE_SIG)
        return env_verify(vctx, tbs, sizeof tbs, sig, sig_len);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        e = vent_find(set, key_id, size, root, sig, sig_len);
        if (e == NULL || e->state == ENV_VENT_VERIFIED)
            break;
        pthread_cond_wait(&c->cv, &c->mu);          /* pending: another thread verifies */
    }
    if (e != NULL) {
        e->used = ++c->clock;
        pthread_mutex_unlock(&c->mu);
        return GG_OK;
    }
    e = vent_victim(set);
    if (e != NULL) {
        e->state = ENV_VENT_PENDING;                /* claim the slot */
        e->key_id = key_id;
        e->size = (uint16_t)size;
        e->sig_len = (uint8_t)sig_len;
        memcpy(e->root, root, GG_ENV_HASH_LEN);
        memcpy(e->sig, sig, sig_len);
    }
    pthread_mutex_unlock(&c->mu);
    rc = env_verify(vctx, tbs, sizeof tbs, sig, sig_len);
    if (e != NULL) {
        pthread_mutex_lock(&c->mu);
        e->state = rc == GG_OK ? ENV_VENT_VERIFIED : ENV_VENT_EMPTY;
        e->used = ++c->clock;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return rc;
}

/* verify_tree - walk v's leaf up its path to the root and check the root's
 * signature by the key of vctx (skipped if this exact signature verified
 * before); c is a scratch digest context. */
static gg_err verify_tree(const gg_env_keys *k, EVP_MD_CTX *c, const EVP_MD_CTX *vctx,
                          const uint8_t *in, const env_view *v)
{
    uint8_t h[GG_ENV_HASH_LEN];
    const uint8_t *p = v->path;
    unsigned idx = v->leaf_index;
    gg_err rc;

    rc = env_leaf(k, c, in, v->signed_len, h);
    for (unsigned cnt = v->tree_size; cnt > 1 && rc == GG_OK; cnt = (cnt + 1) / 2, idx >>= 1) {
        if ((idx ^ 1u) >= cnt)
            continue;               /* odd last node: moves up unchanged */
        rc = (idx & 1u) ? env_node(k, c, p, h, h) : env_node(k, c, h, p, h);
        p += GG_ENV_HASH_LEN;
    }
    if (rc != GG_OK)
        return rc;
    GG_ASSERT(p == v->path + (size_t)v->path_len * GG_ENV_HASH_LEN);
    return verify_root(k, vctx, v->hdr.key_id, v->tree_size, h, v->sig, v->sig_len);
}

/* peer_key - the verify context of the peer's key named by key_id, or
 * NULL: the current key, or the previous one while its overlap lasts. */
static const EVP_MD_CTX *peer_key(const gg_env_keys *k, uint32_t key_id)
{
    if (key_id == k->peer_key_id)
        return k->peer_vctx;
    if (k->peer_prev_vctx != NULL && key_id == k->peer_prev_key_id &&
        gg_now_ms() < k->peer_prev_until_ms)
        return k->peer_prev_vctx;
    return NULL;
}

gg_err gg_env_open(const gg_env_keys *k, const void *in, size_t len, gg_env_hdr *hdr,
                   uint8_t **pt, size_t *ptlen)
{
    uint8_t key[ENV_KEY_MAX];
    uint8_t *plain = NULL;
    const env_suite *s;
    const EVP_MD_CTX *vctx;
    EVP_MD_CTX *c = NULL;
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
    if (rc != GG_OK) {
        if (in != NULL && len > ENV_MAGIC_LEN && memcmp(in, ENV_MAGIC, ENV_MAGIC_LEN) == 0 &&
            ((const uint8_t *)in)[ENV_MAGIC_LEN] != GG_ENV_VERSION)
            gg_debug("envelope", "msg=\"rejected\" reason=version version=%u",
                     ((const uint8_t *)in)[ENV_MAGIC_LEN]);
        return rc;
    }
    if (v.hdr.suite != s->id) {
        gg_debug("envelope", "msg=\"rejected\" reason=suite suite=%u", v.hdr.suite);
        return GG_ECRYPTO;
    }
    if (v.nonce_len != s->nonce_len || v.sig_len < s->sig_min || v.sig_len > s->sig_max ||
        v.ct_len < s->tag_len)
        return GG_EPROTO;
    vctx = peer_key(k, v.hdr.key_id);
    if (vctx == NULL) {
        gg_debug("envelope", "msg=\"rejected\" reason=key_id key_id=%08x", v.hdr.key_id);
        return GG_ECRYPTO;
    }
    c = EVP_MD_CTX_new();
    if (c == NULL)
        return GG_ENOMEM;
    rc = verify_tree(k, c, vctx, in, &v);
    if (rc != GG_OK) {
        gg_debug("envelope", "msg=\"rejected\" reason=signature");
        goto out;
    }
    /* From here the header is the peer's own words. */
    if (strcmp(v.hdr.receiver, k->self_name) != 0) {
        gg_debug("envelope", "msg=\"rejected\" reason=receiver receiver=%s", v.hdr.receiver);
        rc = GG_EDENIED;
        goto out;
    }
    rc = env_derive(k, c, k->shared, v.hdr.msg_id, v.hdr.sender, v.hdr.receiver, key);
    if (rc != GG_OK)
        goto out;
    plen = v.ct_len - s->tag_len;
    plain = malloc(plen ? plen : 1);
    if (!plain) {
        rc = GG_ENOMEM;
        goto out;
    }
    rc = env_decrypt(k, c, key, v.nonce, in, v.hdr_len, v.ct, plen, plain, v.ct + plen);
    /* kem rotation: a sender that still encrypts for our previous kem key
     * is accepted until the overlap ends (the tag decides which key). */
    if (rc == GG_ECRYPTO && k->has_shared_prev && gg_now_ms() < k->kem_prev_until_ms) {
        rc = env_derive(k, c, k->shared_prev, v.hdr.msg_id, v.hdr.sender, v.hdr.receiver,
                        key);
        if (rc == GG_OK)
            rc = env_decrypt(k, c, key, v.nonce, in, v.hdr_len, v.ct, plen, plain,
                             v.ct + plen);
        if (rc == GG_OK)
            gg_debug("envelope", "msg=\"opened with the previous kem key\"");
    }
    if (rc != GG_OK) {
        gg_debug("envelope", "msg=\"rejected\" reason=tag");
        goto out;
    }
    *hdr = v.hdr;
    *pt = plain;
    *ptlen = plen;
    plain = NULL;
out:
    EVP_MD_CTX_free(c);
    OPENSSL_cleanse(key, sizeof key);
    if (plain) {
        OPENSSL_cleanse(plain, plen);
        free(plain);
    }
    return rc;
}
