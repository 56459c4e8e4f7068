/* envelope.h - the sealed message format that crosses between sites.
 *
 * An envelope is a versioned binary header (message id, correlation id,
 * transaction code, sender, receiver, created, expiry, key id) followed by
 * the payload encrypted for the receiving site, and the sending site's
 * signature over all of it: envelopes sealed at the same time are signed
 * together, one signature over the root of a hash tree of them, and each
 * carries its path to that root. gg_env_open verifies before it decrypts
 * and returns nothing but an error for any envelope that fails a check. The
 * byte layout is in docs/protocol.md. Keys are loaded once and shared by
 * threads (gg_env_keys is immutable after load but for its group-signing
 * queue and its cache of verified root signatures, each under a mutex).
 */
#ifndef GG_ENVELOPE_ENVELOPE_H
#define GG_ENVELOPE_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define GG_ENV_VERSION 3           /* 2: req_hash; 3: tree signatures (docs/protocol.md) */
#define GG_ENV_BATCH_MAX 64        /* most envelopes signed by one signature */
#define GG_ENV_HASH_LEN 32
#define GG_ENV_MAX (4u << 20)     /* largest envelope accepted, bytes */
#define GG_ENV_NAME_MAX 64
#define GG_ENV_TXN_MAX 32

typedef enum gg_env_suite {
    GG_SUITE_INTL = 1,  /* Ed25519, X25519, AES-256-GCM, SHA-256 */
    GG_SUITE_GM = 2,    /* SM2 (sign, ECDH), SM3, SM4-CTR + HMAC-SM3 */
} gg_env_suite;

typedef enum gg_env_kind {
    GG_ENV_REQUEST = 1,
    GG_ENV_REPLY = 2,
    GG_ENV_EVENT = 3,
} gg_env_kind;

typedef struct gg_env_hdr {
    uint8_t version;
    uint8_t suite;
    uint8_t kind;                    /* gg_env_kind */
    uint8_t msg_id[16];
    uint8_t corr_id[16];             /* request: = msg_id; reply: the request's msg_id */
    char txn[GG_ENV_TXN_MAX];        /* transaction code: "bind", "bills.query", ... */
    char sender[GG_ENV_NAME_MAX];
    char receiver[GG_ENV_NAME_MAX];
    int64_t created_ms;
    int64_t expiry_ms;
    uint32_t key_id;                 /* id of the signing key */
    uint8_t req_hash[GG_ENV_HASH_LEN];  /* reply: gg_env_hash of its request's
                                         * envelope; request, event: zero */
} gg_env_hdr;

typedef struct gg_env_keys gg_env_keys;

typedef struct gg_env_keys_cfg {
    const char *suite;          /* "intl" or "gm" */
    const char *self_name;      /* our site name; must match receiver on open */
    const char *sign_key;       /* our private signing key, PEM */
    const char *kem_key;        /* our private key-agreement key, PEM */
    const char *peer_sign_pub;  /* peer's public signing key, PEM */
    const char *peer_kem_pub;   /* peer's public key-agreement key, PEM */
} gg_env_keys_cfg;

/* gg_env_keys_load - read and check the key files. GG_ECONFIG with a reason
 * in err on a missing, unreadable or wrong-type key. */
gg_err gg_env_keys_load(const gg_env_keys_cfg *cfg, gg_env_keys **out, char *err,
                        size_t errsz);
void gg_env_keys_free(gg_env_keys *k);

/* gg_env_keys_add_prev - key rotation: also accept envelopes signed by
 * the peer's previous signing key (PEM at path) while gg_now_ms() <
 * until_ms. Call right after gg_env_keys_load, before k is shared.
 * GG_ECONFIG with a reason in err if the file is not a key of the suite. */
gg_err gg_env_keys_add_prev(gg_env_keys *k, const char *path, int64_t until_ms, char *err,
                            size_t errsz);

/* gg_env_keys_add_kem_prev - kem key rotation: also open envelopes
 * encrypted under the secret agreed between another pair of kem keys, our
 * private kem_key and the peer's public peer_kem_pub (PEM files; one of
 * them is normally the current one), while gg_now_ms() < until_ms. Seals
 * keep the current pair. docs/protocol.md "Keys and rotation" gives the
 * order of steps. Call right after gg_env_keys_load, before k is shared.
 * GG_ECONFIG with a reason in err if a file is not a key of the suite or
 * the pair gives the current secret. */
gg_err gg_env_keys_add_kem_prev(gg_env_keys *k, const char *kem_key, const char *peer_kem_pub,
                                int64_t until_ms, char *err, size_t errsz);

/* gg_env_keys_rotation_config - gg_env_keys_add_prev and
 * gg_env_keys_add_kem_prev from the config (each only if configured):
 * security.peer_sign_pub_prev accepted until security.peer_prev_until, and
 * the pair security.kem_key_prev (default kem_key) and
 * security.peer_kem_pub_prev (default peer_kem_pub), when either is set,
 * until security.kem_prev_until ("YYYY-MM-DDTHH:MM:SSZ", each time required
 * with its keys). */
struct gg_config;
gg_err gg_env_keys_rotation_config(gg_env_keys *k, const struct gg_config *cfg, char *err,
                                   size_t errsz);

/* gg_env_keys_suite - the suite the keys were loaded for. */
gg_env_suite gg_env_keys_suite(const gg_env_keys *k);

/* gg_env_seal - build a sealed envelope from hdr (version, suite and key_id
 * are filled in by seal) and plaintext payload, appended to out. Blocks
 * until the envelope is signed: a call made while another thread is
 * signing with k waits for it and is then signed in one tree with the
 * other calls that arrived meanwhile (at most GG_ENV_BATCH_MAX), and the
 * call that signs a tree first yields the CPU once and waits for the calls
 * encrypting by then (never on a timer); a lone call signs at once. An empty
 * hdr->sender means self_name; any other sender must equal it. req_hash
 * must be zero unless kind is GG_ENV_REPLY. txn, sender
 * and receiver are 1..max-1 characters of [A-Za-z0-9._-]. GG_EINVAL on a bad
 * header, GG_ETOOBIG if the envelope would exceed GG_ENV_MAX or out's max;
 * on any error out is left as it was. */
gg_err gg_env_seal(const gg_env_keys *k, const gg_env_hdr *hdr, const void *pt, size_t ptlen,
                   gg_buf *out);

/* gg_env_seal_nonce - gg_env_seal with a caller-chosen nonce (NULL: random).
 * Only for generating test vectors (tests/vectors/): a nonce must never be
 * used twice with one key. */
gg_err gg_env_seal_nonce(const gg_env_keys *k, const gg_env_hdr *hdr, const void *pt,
                         size_t ptlen, const uint8_t *fixed_nonce, gg_buf *out);

/* gg_env_seal_batch - seal n (1..GG_ENV_BATCH_MAX) envelopes as one tree
 * with one signature: hdrs[i], pts[i] (ptlens[i] bytes) into outs[i], each
 * as gg_env_seal; nonces NULL for random, else nonces[i] as in
 * gg_env_seal_nonce (test vectors only). On any error every out is left
 * as it was. */
gg_err gg_env_seal_batch(const gg_env_keys *k, size_t n, const gg_env_hdr *hdrs,
                         const void *const *pts, const size_t *ptlens,
                         const uint8_t *const *nonces, gg_buf *outs);

/* gg_env_hash - the suite's hash (SHA-256 intl, SM3 gm) of a whole sealed
 * envelope: what a reply carries in req_hash for its request. */
gg_err gg_env_hash(const gg_env_keys *k, const void *env, size_t len,
                   uint8_t out[GG_ENV_HASH_LEN]);

/* gg_env_open - verify and decrypt. On GG_OK *pt is a malloc'd copy of the
 * plaintext (the caller frees it) and hdr is filled in. Errors: GG_EPROTO
 * (malformed, or another version), GG_ECRYPTO (signature, tree path, tag
 * or key), GG_EDENIED (not for us), GG_ETOOBIG. expiry is not checked here:
 * callers compare hdr.expiry_ms. A root signature that verified is
 * remembered by k (up to 4096, least recently used out), so the other
 * envelopes of its tree skip the public-key check; their leaf and path are
 * always checked. */
gg_err gg_env_open(const gg_env_keys *k, const void *in, size_t len, gg_env_hdr *hdr,
                   uint8_t **pt, size_t *ptlen);

/* gg_env_peek - parse only the cleartext header (no verification): for
 * routing and logs, never for trust. */
gg_err gg_env_peek(const void *in, size_t len, gg_env_hdr *hdr);

#endif
