/* env_int.h - internal to src/envelope: the loaded keys and the two
 * suites' primitives (env_crypto.c), shared by envelope.c and env_keys.c.
 *
 * A suite is a table row (env_suite): its wire id, nonce, tag and
 * signature sizes, the KDF digest and the key types. env_crypto.c holds
 * the only code that differs by suite; envelope.c is suite-blind.
 */
#ifndef GG_ENVELOPE_ENV_INT_H
#define GG_ENVELOPE_ENV_INT_H

#include <openssl/evp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope/envelope.h"

#define ENV_NONCE_MAX 32        /* any suite, on the wire */
#define ENV_SIG_MAX 256         /* any suite, on the wire */
#define ENV_TAG_MIN 16          /* any suite, on the wire */
#define ENV_KEY_MAX 64          /* derived key material, bytes */
#define ENV_BATCH_MAX GG_ENV_BATCH_MAX  /* envelopes under one root signature */
#define ENV_SEAL_PATH_MAX 6     /* auth path of a tree of ENV_BATCH_MAX leaves */
#define ENV_VCACHE_WAYS 4       /* verify cache: slots per set */
#define ENV_VCACHE_SETS 1024    /* verify cache: sets (ways * sets roots remembered) */
#define ENV_VCACHE_SIG 72       /* longest signature the cache holds (both suites) */

typedef struct env_suite {
    gg_env_suite id;
    const char *name;           /* "intl", "gm" */
    size_t nonce_len;           /* intl 12 (GCM), gm 16 (SM4-CTR IV) */
    size_t tag_len;             /* intl 16 (GCM), gm 32 (HMAC-SM3) */
    size_t sig_min, sig_max;    /* intl 64..64, gm 8..72 (DER) */
    size_t key_len;             /* derived: intl 32, gm 16 (SM4) + 32 (HMAC) */
    const char *digest;         /* "SHA256", "SM3": HKDF, key ids, req_hash */
    const char *info;           /* HKDF info prefix */
    const char *sign_type;      /* "ED25519", "SM2" */
    const char *kem_type;       /* "X25519", "SM2" */
    const char *cipher;         /* "AES-256-GCM", "SM4-CTR" */
} env_suite;

/* One seal waiting for a root signature (envelope.c group signing). */
typedef struct env_sreq {
    uint8_t leaf[GG_ENV_HASH_LEN];      /* in: leaf hash of the signed bytes */
    uint16_t index, size;               /* out: leaf index, tree size */
    uint8_t path_len;                   /* out: siblings in path */
    uint8_t path[ENV_SEAL_PATH_MAX][GG_ENV_HASH_LEN];
    uint8_t sig[ENV_SIG_MAX];           /* out: signature of the root */
    size_t sig_len;
    gg_err rc;                          /* out */
    int state;                          /* ENV_SREQ_*: written before posted */
    sem_t posted;                       /* the waiter's own: posted once, when
                                         * state is LEAD or DONE */
} env_sreq;

enum { ENV_SREQ_WAIT = 0, ENV_SREQ_LEAD = 1, ENV_SREQ_DONE = 2 };

/* Group signing state: seals that arrive while a batch is being signed
 * queue here and are signed together by the next leader (no timer). A
 * leader first gathers: it yields the CPU once, then waits until every
 * seal begun by then is queued (or failed), or the queue is full; never
 * for seals begun later. Each waiter sleeps on its own semaphore
 * (env_sreq.posted): a leader, once it has released this mu, passes the
 * lead to the first seal queued meanwhile (busy stays set) and wakes each
 * seal it signed, one by one, so that no woken seal then waits for this
 * mu or any other lock (which would cost it a second sleep). */
typedef struct env_signer {
    pthread_mutex_t mu;
    pthread_cond_t room;                /* the queue was full and no longer is */
    pthread_cond_t gather;              /* wakes the gathering leader */
    int busy;                           /* a leader is gathering or signing, or
                                         * the lead is being passed on */
    _Atomic uint64_t begun;             /* seals that began their body (no lock) */
    uint64_t settled;                   /* of those, queued or failed */
    uint64_t gather_to;                 /* leader waits for settled >= this; 0 none */
    size_t nq;
    env_sreq *q[ENV_BATCH_MAX];
} env_signer;

enum { ENV_VENT_EMPTY = 0, ENV_VENT_PENDING = 1, ENV_VENT_VERIFIED = 2 };

/* One root signature: verified, or being verified by one thread. */
typedef struct env_vent {
    uint8_t state;                      /* ENV_VENT_* */
    uint8_t sig_len;
    uint16_t size;
    uint32_t key_id;
    uint32_t used;                      /* env_vcache.clock at the last use (it
                                         * wraps: then only the choice of the
                                         * slot to replace suffers) */
    uint8_t root[GG_ENV_HASH_LEN];
    uint8_t sig[ENV_VCACHE_SIG];
} env_vent;

/* Roots whose signature verified: a set-associative table under a mutex
 * (the set from the root's first bytes, the least recently used slot of
 * the set replaced); a slot being verified is not replaced, and cv
 * announces each outcome. */
typedef struct env_vcache {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t clock;                     /* counts hits and inserts */
    env_vent e[ENV_VCACHE_SETS][ENV_VCACHE_WAYS];
} env_vcache;

struct gg_env_keys {
    const env_suite *s;
    char self_name[GG_ENV_NAME_MAX];
    EVP_PKEY *sign;             /* our signing key (private) */
    EVP_PKEY *peer_sign;        /* peer's verification key */
    EVP_PKEY *peer_sign_prev;   /* peer's previous key during a rotation, or NULL */
    int64_t peer_prev_until_ms; /* the previous key is accepted before this */
    uint32_t self_key_id;
    uint32_t peer_key_id;
    uint32_t peer_prev_key_id;
    uint8_t shared[32];         /* static-static agreement of our kem and peer kem */
    uint8_t shared_prev[32];    /* kem rotation: our previous kem key with the peer's */
    int has_shared_prev;
    int64_t kem_prev_until_ms;  /* shared_prev is tried before this (open only) */
    EVP_CIPHER *cipher;         /* fetched once */
    EVP_MD *md;                 /* suite digest, fetched once */
    EVP_MD_CTX *sign_ctx;       /* env_sig_ctx templates, built at load and */
    EVP_MD_CTX *peer_vctx;      /* only copied after: sign, verify with */
    EVP_MD_CTX *peer_prev_vctx; /* peer_sign, verify with peer_sign_prev */
    env_signer *signer;         /* mutable, own mutex: group signing */
    env_vcache *vcache;         /* mutable, own mutex: verified roots */
};

/* env_shared_init / env_shared_free - the signer and verify cache of k
 * (envelope.c); init returns GG_ENOMEM or GG_OK. */
gg_err env_shared_init(gg_env_keys *k);
void env_shared_free(gg_env_keys *k);

/* env_name_ok - 1 if s is 1..max-1 bytes of [A-Za-z0-9._-] (envelope.c). */
int env_name_ok(const char *s, size_t max);

/* env_suite_by_name / env_suite_by_id - the row, or NULL. */
const env_suite *env_suite_by_name(const char *name);
const env_suite *env_suite_by_id(unsigned id);

/* env_key_id - first 4 bytes (big-endian) of the suite digest of pk's
 * public key: raw 32 bytes (Ed25519) or the uncompressed point (SM2). */
gg_err env_key_id(const env_suite *s, EVP_PKEY *pk, uint32_t *id);

/* env_agree - the 32-byte static shared secret of our kem key and the
 * peer's: X25519, or the x-coordinate of d*Q on the SM2 curve. */
gg_err env_agree(const env_suite *s, EVP_PKEY *ours, EVP_PKEY *peer, uint8_t out[32]);

/* env_sig_ctx - a digest-sign (sign = 1) or digest-verify context for pk
 * with the suite's settings (gm: SM3 and the SM2 id; md is the fetched
 * SM3), never used itself: env_sign and env_verify copy it per call, which
 * costs far less than an init. The caller frees *out (EVP_MD_CTX_free). */
gg_err env_sig_ctx(const env_suite *s, const EVP_MD *md, EVP_PKEY *pk, int sign,
                   EVP_MD_CTX **out);

/* env_sign - sign tbs with our key (k->sign_ctx); *siglen: in capacity,
 * out length. */
gg_err env_sign(const gg_env_keys *k, const uint8_t *tbs, size_t n, uint8_t *sig,
                size_t *siglen);

/* env_verify - GG_OK when sig is a signature of tbs by the key of vctx (a
 * verify template of env_sig_ctx). */
gg_err env_verify(const EVP_MD_CTX *vctx, const uint8_t *tbs, size_t n, const uint8_t *sig,
                  size_t siglen);

/* One piece of the bytes env_hash hashes. */
typedef struct env_part {
    const void *p;
    size_t len;
} env_part;

/* env_hash - the suite digest of parts[0, n) concatenated, into out; c is
 * a scratch context of the caller's, reused from one call to the next. */
gg_err env_hash(const gg_env_keys *k, EVP_MD_CTX *c, const env_part *parts, size_t n,
                uint8_t out[GG_ENV_HASH_LEN]);

/* env_derive - the per-message key material (s->key_len bytes) from the
 * static shared secret `secret` (k->shared, or k->shared_prev); c is a
 * scratch digest context of the caller's (as for env_hash). */
gg_err env_derive(const gg_env_keys *k, EVP_MD_CTX *c, const uint8_t secret[32],
                  const uint8_t msg_id[16], const char *sender, const char *receiver,
                  uint8_t key[ENV_KEY_MAX]);

/* env_encrypt - pt (len) to out (len) and tag (s->tag_len), binding aad;
 * c is a scratch digest context (gm's HMAC). */
gg_err env_encrypt(const gg_env_keys *k, EVP_MD_CTX *c, const uint8_t *key,
                   const uint8_t *nonce, const uint8_t *aad, size_t aadlen, const uint8_t *pt,
                   size_t len, uint8_t *out, uint8_t *tag);

/* env_decrypt - check tag, then ct (len) to out (len); c as env_encrypt.
 * GG_ECRYPTO on a bad tag (nothing written to out for gm; GCM output is
 * discarded by callers). */
gg_err env_decrypt(const gg_env_keys *k, EVP_MD_CTX *c, const uint8_t *key,
                   const uint8_t *nonce, const uint8_t *aad, size_t aadlen, const uint8_t *ct,
                   size_t len, uint8_t *out, const uint8_t *tag);

#endif
