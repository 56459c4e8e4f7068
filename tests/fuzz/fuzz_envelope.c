/* fuzz_envelope.c - libFuzzer entry for the envelope parser.
 *
 * Every input is given to gg_env_peek and gg_env_open (which must return an
 * error, never crash, for anything but a genuine envelope), and is also
 * sealed as a payload and opened again, which must round-trip; some inputs
 * are cut in up to three payloads sealed as one tree (gg_env_seal_batch),
 * each of which must open. Keys are the golden-vector keys
 * (tests/vectors/intl/ and gm/), so the corpus's sealed vectors, among them
 * a tree of three (batch_*), open and the fuzzer mutates genuine envelopes,
 * their tree positions and paths. Built by tests/fuzz/fuzz.cmake (make fuzz).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/rand.h"
#include "envelope/envelope.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gg_env_keys *portal_keys;
static gg_env_keys *utility_keys;
static gg_env_keys *gm_utility_keys;     /* suite gm, opens the gm vectors */

/* load - keys of self with peer's public keys, all from dir; aborts on failure. */
static gg_env_keys *load(const char *dir, const char *suite, const char *self, const char *peer)
{
    char sk[512], kk[512], ps[512], pk[512], err[256];
    gg_env_keys *k = NULL;

    snprintf(sk, sizeof sk, "%s/%s.sign.key", dir, self);
    snprintf(kk, sizeof kk, "%s/%s.kem.key", dir, self);
    snprintf(ps, sizeof ps, "%s/%s.sign.pub", dir, peer);
    snprintf(pk, sizeof pk, "%s/%s.kem.pub", dir, peer);
    gg_env_keys_cfg cfg = { suite, self, sk, kk, ps, pk };
    if (gg_env_keys_load(&cfg, &k, err, sizeof err) != GG_OK) {
        fprintf(stderr, "fuzz_envelope: %s\n", err);
        abort();
    }
    return k;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = GG_SOURCE_DIR "/tests/vectors/intl";

    (void)argc;
    (void)argv;
    gg_log_set_level(GG_LOG_ERROR);
    portal_keys = load(dir, "intl", "portal", "utility");
    utility_keys = load(dir, "intl", "utility", "portal");
    gm_utility_keys = load(GG_SOURCE_DIR "/tests/vectors/gm", "gm", "utility", "portal");
    return 0;
}

/* fuzz_tree - data cut in 1..3 payloads sealed as one tree: each opens. */
static void fuzz_tree(const uint8_t *data, size_t size)
{
    gg_env_hdr h[3], got;
    const void *p[3];
    size_t l[3], n = (size_t)data[size - 1] % 3 + 1, off = 0;
    gg_buf b[3] = { GG_BUF_INIT(0), GG_BUF_INIT(0), GG_BUF_INIT(0) };
    uint8_t *pt = NULL;
    size_t ptlen = 0;

    for (size_t i = 0; i < n; i++) {
        memset(&h[i], 0, sizeof h[i]);
        h[i].kind = GG_ENV_REQUEST;
        gg_new_id(h[i].msg_id);
        memcpy(h[i].corr_id, h[i].msg_id, 16);
        snprintf(h[i].txn, sizeof h[i].txn, "fuzz");
        snprintf(h[i].receiver, sizeof h[i].receiver, "utility");
        l[i] = i + 1 < n ? size / n : size - off;
        p[i] = data + off;
        off += l[i];
    }
    if (gg_env_seal_batch(portal_keys, n, h, p, l, NULL, b) == GG_OK) {
        for (size_t i = 0; i < n; i++) {
            if (gg_env_open(utility_keys, b[i].data, b[i].len, &got, &pt, &ptlen) != GG_OK ||
                ptlen != l[i] || (l[i] && memcmp(pt, p[i], l[i]) != 0))
                abort();
            free(pt);
            pt = NULL;
        }
    }
    for (size_t i = 0; i < 3; i++)
        gg_buf_free(&b[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gg_env_hdr hdr;
    gg_buf b = GG_BUF_INIT(0);
    uint8_t *pt = NULL;
    size_t ptlen = 0;

    if (!portal_keys)
        LLVMFuzzerInitialize(NULL, NULL);

    /* 1. arbitrary bytes as an envelope */
    (void)gg_env_peek(data, size, &hdr);
    if (gg_env_open(utility_keys, data, size, &hdr, &pt, &ptlen) == GG_OK) {
        /* only a real portal signature can get here */
        free(pt);
        pt = NULL;
    }
    if (gg_env_open(portal_keys, data, size, &hdr, &pt, &ptlen) == GG_OK) {
        free(pt);
        pt = NULL;
    }
    if (gg_env_open(gm_utility_keys, data, size, &hdr, &pt, &ptlen) == GG_OK) {
        free(pt);
        pt = NULL;
    }

    /* 2. arbitrary bytes as a payload: must round-trip (one input in eight:
     * a seal and an open cost two public-key operations) */
    if (size > 0 && data[0] % 8 == 1) {
        fuzz_tree(data, size);
        return 0;
    }
    if (size == 0 || data[0] % 8 != 0)
        return 0;
    memset(&hdr, 0, sizeof hdr);
    hdr.kind = GG_ENV_REQUEST;
    gg_new_id(hdr.msg_id);
    memcpy(hdr.corr_id, hdr.msg_id, 16);
    snprintf(hdr.txn, sizeof hdr.txn, "fuzz");
    snprintf(hdr.receiver, sizeof hdr.receiver, "utility");
    if (gg_env_seal(portal_keys, &hdr, data, size, &b) == GG_OK) {
        if (gg_env_open(utility_keys, b.data, b.len, &hdr, &pt, &ptlen) != GG_OK ||
            ptlen != size || (size && memcmp(pt, data, size) != 0))
            abort();
        free(pt);
    }
    gg_buf_free(&b);
    return 0;
}
