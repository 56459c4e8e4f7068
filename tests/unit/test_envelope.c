/* test_envelope.c - sealing, opening and strict parsing of envelopes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/rand.h"
#include "envelope/envelope.h"
#include "pki/pki.h"
#include "env_fixture.h"

typedef struct fx {
    char dir[512];
    char other[600];
    gg_env_keys *portal;
    gg_env_keys *utility;
} fx;

/* rm_cb - nftw callback removing one entry. */
static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* path_in - dir/name into a static-free buffer owned by the caller. */
static void path_in(char *out, size_t outsz, const char *dir, const char *name)
{
    snprintf(out, outsz, "%s/%s", dir, name);
}

static int setup(void **state)
{
    const char *base = getenv("GG_TEST_TMP");
    fx *f = calloc(1, sizeof *f);
    char err[256];

    if (!base)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(f->dir, sizeof f->dir, "%s/envXXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(gg_pki_init(f->dir, NULL), GG_OK);
    assert_int_equal(
        gg_test_env_load(f->dir, "portal", f->dir, "utility", "intl", &f->portal, err, sizeof err),
        GG_OK);
    assert_int_equal(
        gg_test_env_load(f->dir, "utility", f->dir, "portal", "intl", &f->utility, err, sizeof err),
        GG_OK);
    snprintf(f->other, sizeof f->other, "%s/other", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    gg_env_keys_free(f->portal);
    gg_env_keys_free(f->utility);
    nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* request - a typical request header from portal to utility. */
static gg_env_hdr request(void)
{
    return gg_test_env_request(1700000000000);
}

static const char payload[] = "{\"account_no\":\"3201000001\",\"month\":\"2024-05\"}";

/* seal_request - a sealed request with payload into b. */
static void seal_request(fx *f, gg_buf *b)
{
    gg_env_hdr h = request();
    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), b), GG_OK);
}

static void test_seal_open_roundtrip_keeps_header_and_payload(void **state)
{
    fx *f = *state;
    gg_env_hdr h = request(), got;
    gg_buf b = GG_BUF_INIT(0);
    uint8_t *pt = NULL;
    size_t ptlen = 0;

    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_OK);
    assert_int_equal(ptlen, strlen(payload));
    assert_memory_equal(pt, payload, ptlen);
    assert_int_equal(got.version, GG_ENV_VERSION);
    assert_int_equal(got.suite, GG_SUITE_INTL);
    assert_int_equal(got.kind, GG_ENV_REQUEST);
    assert_memory_equal(got.msg_id, h.msg_id, 16);
    assert_memory_equal(got.corr_id, h.corr_id, 16);
    assert_string_equal(got.txn, "bills.query");
    assert_string_equal(got.sender, "portal");
    assert_string_equal(got.receiver, "utility");
    assert_true(got.created_ms == h.created_ms);
    assert_true(got.expiry_ms == h.expiry_ms);
    free(pt);
    gg_buf_free(&b);
}

static void test_reply_direction_and_empty_payload_roundtrip(void **state)
{
    fx *f = *state;
    gg_env_hdr h = request(), got;
    gg_buf b = GG_BUF_INIT(0);
    uint8_t *pt = NULL;
    size_t ptlen = 99;

    h.kind = GG_ENV_REPLY;
    gg_new_id(h.msg_id);
    snprintf(h.receiver, sizeof h.receiver, "portal");
    h.created_ms = -5;          /* negative times survive the u64 encoding */
    assert_int_equal(gg_env_seal(f->utility, &h, NULL, 0, &b), GG_OK);
    assert_int_equal(gg_env_open(f->portal, b.data, b.len, &got, &pt, &ptlen), GG_OK);
    assert_non_null(pt);
    assert_int_equal(ptlen, 0);
    assert_int_equal(got.kind, GG_ENV_REPLY);
    assert_string_equal(got.sender, "utility");
    assert_true(got.created_ms == -5);
    free(pt);
    /* The sender cannot open its own message: it is not the receiver and
     * the signature is not the peer's. */
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_ECRYPTO);
    assert_null(pt);
    gg_buf_free(&b);
}

static void test_layout_matches_the_documented_bytes(void **state)
{
    fx *f = *state;
    gg_env_hdr h = request();
    gg_buf b = GG_BUF_INIT(0);
    size_t o, hdr_end;

    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &b), GG_OK);
    assert_memory_equal(b.data, "GGE", 3);
    assert_int_equal(b.data[3], 3);                     /* version */
    assert_int_equal(b.data[4], GG_SUITE_INTL);
    assert_int_equal(b.data[5], GG_ENV_REQUEST);
    assert_int_equal(b.data[6], 0);                     /* flags */
    assert_memory_equal(b.data + 7, h.msg_id, 16);
    assert_memory_equal(b.data + 23, h.corr_id, 16);
    o = 39;
    assert_int_equal(b.data[o] << 8 | b.data[o + 1], 11);
    assert_memory_equal(b.data + o + 2, "bills.query", 11);
    o += 2 + 11;
    assert_int_equal(b.data[o] << 8 | b.data[o + 1], 6);
    assert_memory_equal(b.data + o + 2, "portal", 6);
    o += 2 + 6;
    assert_int_equal(b.data[o] << 8 | b.data[o + 1], 7);
    assert_memory_equal(b.data + o + 2, "utility", 7);
    o += 2 + 7;
    assert_int_equal(b.data[o + 7], (uint8_t)(h.created_ms & 0xff));
    o += 16 + 4;
    assert_true(memcmp(b.data + o, (uint8_t[32]){ 0 }, 32) == 0);  /* req_hash */
    o += 32;
    hdr_end = o;
    assert_int_equal(b.data[o], 12);                    /* nonce_len */
    o += 1 + 12;
    assert_int_equal((size_t)b.data[o] << 24 | (size_t)b.data[o + 1] << 16 |
                         (size_t)b.data[o + 2] << 8 | b.data[o + 3],
                     strlen(payload) + 16);
    o += 4 + strlen(payload) + 16;
    assert_int_equal(b.data[o] << 8 | b.data[o + 1], 1);    /* tree_size: a lone seal */
    assert_int_equal(b.data[o + 2] << 8 | b.data[o + 3], 0);    /* leaf_index */
    assert_int_equal(b.data[o + 4], 0);                 /* path_len */
    o += 5;
    assert_int_equal(b.data[o] << 8 | b.data[o + 1], 64);
    o += 2 + 64;
    assert_int_equal(o, b.len);
    assert_int_equal(hdr_end, 97 + 11 + 6 + 7);                     /* H in the doc */
    assert_int_equal(b.len, 201 + 11 + 6 + 7 + strlen(payload));    /* size in the doc */
    gg_buf_free(&b);
}

static void test_key_id_is_sha256_prefix_of_signing_key(void **state)
{
    fx *f = *state;
    gg_buf b = GG_BUF_INIT(0);
    gg_env_hdr got;
    char path[700];
    uint8_t raw[32], md[32];
    size_t n = sizeof raw;
    unsigned int mdlen;
    FILE *fp;
    EVP_PKEY *pk;

    seal_request(f, &b);
    assert_int_equal(gg_env_peek(b.data, b.len, &got), GG_OK);
    path_in(path, sizeof path, f->dir, "portal.sign.pub");
    fp = fopen(path, "r");
    assert_non_null(fp);
    pk = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(pk);
    assert_int_equal(EVP_PKEY_get_raw_public_key(pk, raw, &n), 1);
    assert_int_equal(EVP_Digest(raw, n, md, &mdlen, EVP_sha256(), NULL), 1);
    assert_int_equal(got.key_id,
                     (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3]);
    EVP_PKEY_free(pk);
    gg_buf_free(&b);
}

static void test_every_single_byte_flip_is_rejected(void **state)
{
    fx *f = *state;
    gg_buf b = GG_BUF_INIT(0);
    static const uint8_t masks[] = { 0x01, 0x80, 0xff };
    gg_env_hdr got;
    uint8_t *pt;
    size_t ptlen;

    seal_request(f, &b);
    for (size_t i = 0; i < b.len; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            b.data[i] ^= masks[m];
            pt = NULL;
            gg_err e = gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen);
            if (e == GG_OK)
                fail_msg("flip of byte %zu by %02x was accepted", i, masks[m]);
            assert_true(e == GG_EPROTO || e == GG_ECRYPTO);
            assert_null(pt);
            b.data[i] ^= masks[m];
        }
    }
    pt = NULL;
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_OK);
    free(pt);
    gg_buf_free(&b);
}

static void test_truncation_at_every_length_is_rejected(void **state)
{
    fx *f = *state;
    gg_buf b = GG_BUF_INIT(0);
    gg_env_hdr got;
    uint8_t *pt, *copy;
    size_t ptlen;

    seal_request(f, &b);
    for (size_t n = 0; n < b.len; n++) {
        /* A fresh allocation of exactly n bytes lets ASan see any overread. */
        copy = malloc(n ? n : 1);
        memcpy(copy, b.data, n);
        pt = NULL;
        assert_int_equal(gg_env_peek(copy, n, &got), GG_EPROTO);
        assert_int_equal(gg_env_open(f->utility, copy, n, &got, &pt, &ptlen), GG_EPROTO);
        assert_null(pt);
        free(copy);
    }
    /* and one byte too many */
    assert_int_equal(gg_buf_put_u8(&b, 0), GG_OK);
    assert_int_equal(gg_env_peek(b.data, b.len, &got), GG_EPROTO);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_EPROTO);
    gg_buf_free(&b);
}

static void test_wrong_receiver_is_denied(void **state)
{
    fx *f = *state;
    gg_env_hdr h = request(), got;
    gg_buf b = GG_BUF_INIT(0);
    uint8_t *pt = NULL;
    size_t ptlen;

    snprintf(h.receiver, sizeof h.receiver, "utility-2");
    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_EDENIED);
    assert_null(pt);
    gg_buf_free(&b);
}

static void test_message_from_a_third_key_is_rejected(void **state)
{
    fx *f = *state;
    gg_pki_opts o = { "intl", "mallory", "utility", 0 };
    gg_env_keys *mallory = NULL, *thief = NULL;
    gg_env_hdr h = request(), got;
    gg_buf b = GG_BUF_INIT(0);
    uint8_t *pt = NULL;
    size_t ptlen;
    char err[256], sk[700], kk[700], ps[700], pk[700];

    assert_int_equal(gg_pki_init(f->other, &o), GG_OK);
    /* mallory: own keys and the utility's real public keys */
    assert_int_equal(
        gg_test_env_load(f->other, "mallory", f->dir, "utility", "intl", &mallory, err, sizeof err),
        GG_OK);
    snprintf(h.sender, sizeof h.sender, "portal");
    assert_int_equal(gg_env_seal(mallory, &h, payload, strlen(payload), &b), GG_EINVAL);
    h.sender[0] = '\0';        /* = mallory */
    assert_int_equal(gg_env_seal(mallory, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_ECRYPTO);
    assert_null(pt);

    /* thief: the portal's signing key but another kem key: the signature
     * passes and the AEAD tag must fail. */
    gg_buf_reset(&b);
    path_in(sk, sizeof sk, f->dir, "portal.sign.key");
    path_in(kk, sizeof kk, f->other, "mallory.kem.key");
    path_in(ps, sizeof ps, f->dir, "utility.sign.pub");
    path_in(pk, sizeof pk, f->dir, "utility.kem.pub");
    gg_env_keys_cfg cfg = { "intl", "portal", sk, kk, ps, pk };
    assert_int_equal(gg_env_keys_load(&cfg, &thief, err, sizeof err), GG_OK);
    h = request();
    assert_int_equal(gg_env_seal(thief, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_ECRYPTO);
    assert_null(pt);

    gg_env_keys_free(mallory);
    gg_env_keys_free(thief);
    gg_buf_free(&b);
}

static void test_suite_downgrade_and_version_change_are_rejected(void **state)
{
    fx *f = *state;
    gg_buf b = GG_BUF_INIT(0);
    gg_env_hdr got;
    uint8_t *pt = NULL;
    size_t ptlen;

    seal_request(f, &b);
    b.data[4] = GG_SUITE_GM;
    assert_int_equal(gg_env_peek(b.data, b.len, &got), GG_OK);
    assert_int_equal(got.suite, GG_SUITE_GM);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_ECRYPTO);
    b.data[4] = 7;
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_EPROTO);
    b.data[4] = GG_SUITE_INTL;
    b.data[3] = 1;          /* version 1 had no req_hash */
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_EPROTO);
    b.data[3] = 2;          /* version 2 was signed per message: no downgrade */
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_EPROTO);
    assert_int_equal(gg_env_peek(b.data, b.len, &got), GG_EPROTO);
    b.data[3] = 4;
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_EPROTO);
    b.data[3] = 3;
    b.data[6] = 1;          /* reserved flags */
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_EPROTO);
    assert_null(pt);
    gg_buf_free(&b);
}

static void test_peek_reads_header_without_keys(void **state)
{
    fx *f = *state;
    gg_env_hdr h = request(), got;
    gg_buf b = GG_BUF_INIT(0);

    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &b), GG_OK);
    memset(&got, 0xaa, sizeof got);
    assert_int_equal(gg_env_peek(b.data, b.len, &got), GG_OK);
    assert_memory_equal(got.msg_id, h.msg_id, 16);
    assert_string_equal(got.txn, "bills.query");
    assert_string_equal(got.sender, "portal");
    assert_string_equal(got.receiver, "utility");
    assert_true(got.expiry_ms == h.expiry_ms);
    assert_int_equal(gg_env_peek(b.data, b.len, NULL), GG_EINVAL);
    assert_int_equal(gg_env_peek("GGX", 3, &got), GG_EPROTO);
    assert_int_equal(gg_env_peek(NULL, 0, &got), GG_EPROTO);
    gg_buf_free(&b);
}

static void test_oversize_is_too_big(void **state)
{
    fx *f = *state;
    gg_env_hdr h = request(), got;
    gg_buf b = GG_BUF_INIT(0);
    gg_buf small = GG_BUF_INIT(100);
    uint8_t *big = calloc(1, GG_ENV_MAX + 1), *pt = NULL;
    size_t ptlen;

    assert_non_null(big);
    memcpy(big, "GGE\3", 4);
    assert_int_equal(gg_env_peek(big, GG_ENV_MAX + 1, &got), GG_ETOOBIG);
    assert_int_equal(gg_env_open(f->utility, big, GG_ENV_MAX + 1, &got, &pt, &ptlen),
                     GG_ETOOBIG);
    assert_int_equal(gg_env_seal(f->portal, &h, big, GG_ENV_MAX, &b), GG_ETOOBIG);
    assert_int_equal(gg_env_seal(f->portal, &h, big, GG_ENV_MAX - 100, &b), GG_ETOOBIG);
    assert_int_equal(b.len, 0);
    /* the largest payload that fits still round-trips */
    assert_int_equal(gg_env_seal(f->portal, &h, big, GG_ENV_MAX - 500, &b), GG_OK);
    assert_true(b.len <= GG_ENV_MAX);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_OK);
    assert_int_equal(ptlen, GG_ENV_MAX - 500);
    free(pt);
    /* an output buffer with a small max is left untouched */
    assert_int_equal(gg_buf_append(&small, "x", 1), GG_OK);
    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &small), GG_ETOOBIG);
    assert_int_equal(small.len, 1);
    gg_buf_free(&small);
    gg_buf_free(&b);
    free(big);
}

static void test_seal_rejects_bad_headers_and_leaves_out_unchanged(void **state)
{
    fx *f = *state;
    gg_buf b = GG_BUF_INIT(0);
    gg_env_hdr h;

    assert_int_equal(gg_buf_append(&b, "keep", 4), GG_OK);
    h = request();
    h.kind = 9;
    assert_int_equal(gg_env_seal(f->portal, &h, "x", 1, &b), GG_EINVAL);
    h = request();
    h.txn[0] = '\0';
    assert_int_equal(gg_env_seal(f->portal, &h, "x", 1, &b), GG_EINVAL);
    h = request();
    snprintf(h.receiver, sizeof h.receiver, "util ity");
    assert_int_equal(gg_env_seal(f->portal, &h, "x", 1, &b), GG_EINVAL);
    h = request();
    memset(h.txn, 'a', sizeof h.txn);   /* not terminated */
    assert_int_equal(gg_env_seal(f->portal, &h, "x", 1, &b), GG_EINVAL);
    h = request();
    snprintf(h.sender, sizeof h.sender, "utility");
    assert_int_equal(gg_env_seal(f->portal, &h, "x", 1, &b), GG_EINVAL);
    assert_int_equal(gg_env_seal(f->portal, &h, NULL, 1, &b), GG_EINVAL);
    assert_int_equal(b.len, 4);
    /* appending after existing bytes works, and the envelope starts there */
    h = request();
    assert_int_equal(gg_env_seal(f->portal, &h, "x", 1, &b), GG_OK);
    assert_memory_equal(b.data, "keep", 4);
    assert_int_equal(gg_env_peek(b.data + 4, b.len - 4, &h), GG_OK);
    gg_buf_free(&b);
}

static void test_same_message_sealed_twice_differs(void **state)
{
    fx *f = *state;
    gg_env_hdr h = request();
    gg_buf a = GG_BUF_INIT(0), b = GG_BUF_INIT(0);

    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &a), GG_OK);
    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(a.len, b.len);
    assert_memory_not_equal(a.data, b.data, a.len);
    gg_buf_free(&a);
    gg_buf_free(&b);
}

static void test_keys_load_rejects_wrong_or_missing_keys(void **state)
{
    fx *f = *state;
    gg_env_keys *k = (gg_env_keys *)1;
    char err[256], sk[700], kk[700], ps[700], pk[700], tls[700];

    path_in(sk, sizeof sk, f->dir, "portal.sign.key");
    path_in(kk, sizeof kk, f->dir, "portal.kem.key");
    path_in(ps, sizeof ps, f->dir, "utility.sign.pub");
    path_in(pk, sizeof pk, f->dir, "utility.kem.pub");
    path_in(tls, sizeof tls, f->dir, "portal.key");

    gg_env_keys_cfg swapped = { "intl", "portal", kk, sk, ps, pk };
    assert_int_equal(gg_env_keys_load(&swapped, &k, err, sizeof err), GG_ECONFIG);
    assert_null(k);
    assert_non_null(strstr(err, "sign_key"));
    assert_non_null(strstr(err, "X25519"));

    gg_env_keys_cfg ec = { "intl", "portal", tls, kk, ps, pk };
    assert_int_equal(gg_env_keys_load(&ec, &k, err, sizeof err), GG_ECONFIG);
    assert_non_null(strstr(err, "EC"));

    gg_env_keys_cfg pubpriv = { "intl", "portal", ps, kk, ps, pk };
    assert_int_equal(gg_env_keys_load(&pubpriv, &k, err, sizeof err), GG_ECONFIG);
    assert_non_null(strstr(err, "private"));

    gg_env_keys_cfg peerkem = { "intl", "portal", sk, kk, ps, ps };
    assert_int_equal(gg_env_keys_load(&peerkem, &k, err, sizeof err), GG_ECONFIG);
    assert_non_null(strstr(err, "peer_kem_pub"));

    gg_env_keys_cfg missing = { "intl", "portal", "/nonexistent/x.key", kk, ps, pk };
    assert_int_equal(gg_env_keys_load(&missing, &k, err, sizeof err), GG_ECONFIG);
    assert_non_null(strstr(err, "cannot open"));

    gg_env_keys_cfg gm = { "gm", "portal", sk, kk, ps, pk };
    assert_int_equal(gg_env_keys_load(&gm, &k, err, sizeof err), GG_ECONFIG);
    assert_non_null(strstr(err, "expected SM2"));     /* intl key files under suite gm */

    gg_env_keys_cfg badname = { "intl", "por tal", sk, kk, ps, pk };
    assert_int_equal(gg_env_keys_load(&badname, &k, NULL, 0), GG_ECONFIG);
    assert_null(k);
}

/* Threads share one keys object, each sealing and opening its own messages. */
typedef struct thr_arg {
    fx *f;
    int failures;
} thr_arg;

static void *thr_main(void *p)
{
    thr_arg *a = p;
    for (int i = 0; i < 100; i++) {
        gg_env_hdr h = request(), got;
        gg_buf b = GG_BUF_INIT(0);
        uint8_t *pt = NULL;
        size_t ptlen = 0;
        if (gg_env_seal(a->f->portal, &h, payload, strlen(payload), &b) != GG_OK ||
            gg_env_open(a->f->utility, b.data, b.len, &got, &pt, &ptlen) != GG_OK ||
            ptlen != strlen(payload) || memcmp(got.msg_id, h.msg_id, 16) != 0)
            a->failures++;
        free(pt);
        gg_buf_free(&b);
    }
    return NULL;
}

static void test_keys_are_shared_safely_by_threads(void **state)
{
    pthread_t t[4];
    thr_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i].f = *state;
        a[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, thr_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].failures, 0);
    }
}


/* ---- group signing: trees of envelopes ---------------------------------- */

#define NB 5

/* be16 - a big-endian u16 at p. */
static size_t be16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

/* leaf_end - offset of the tree trailer (end of the leaf bytes) of env d. */
static size_t leaf_end(const uint8_t *d)
{
    size_t o = 39;

    for (int i = 0; i < 3; i++)
        o += 2 + be16(d + o);
    o += 8 + 8 + 4 + 32;
    o += 1 + d[o];
    return o + 4 + ((size_t)d[o] << 24 | (size_t)d[o + 1] << 16 | (size_t)d[o + 2] << 8 |
                    d[o + 3]);
}

/* seal_tree - NB requests sealed as one tree into b[]; payload i is "p<i>". */
static void seal_tree(fx *f, gg_buf b[NB], gg_env_hdr h[NB], char pts[NB][8])
{
    const void *p[NB];
    size_t l[NB];

    for (int i = 0; i < NB; i++) {
        h[i] = request();
        snprintf(pts[i], 8, "p%d", i);
        p[i] = pts[i];
        l[i] = strlen(pts[i]);
        b[i] = (gg_buf)GG_BUF_INIT(0);
    }
    assert_int_equal(gg_env_seal_batch(f->portal, NB, h, p, l, NULL, b), GG_OK);
}

/* splice - leaf bytes of a followed by the trailer of t, into out. */
static void splice(const gg_buf *a, const gg_buf *t, gg_buf *out)
{
    size_t ea = leaf_end(a->data), et = leaf_end(t->data);

    gg_buf_reset(out);
    assert_int_equal(gg_buf_append(out, a->data, ea), GG_OK);
    assert_int_equal(gg_buf_append(out, t->data + et, t->len - et), GG_OK);
}

/* opens_as - gg_env_open's result for buf by k (plaintext freed). */
static gg_err opens_as(gg_env_keys *k, const gg_buf *b)
{
    gg_env_hdr got;
    uint8_t *pt = NULL;
    size_t ptlen;
    gg_err e = gg_env_open(k, b->data, b->len, &got, &pt, &ptlen);

    if (e != GG_OK)
        assert_null(pt);
    free(pt);
    return e;
}

static void test_a_tree_of_envelopes_opens_each_with_its_own_path(void **state)
{
    fx *f = *state;
    gg_buf b[NB];
    gg_env_hdr h[NB], got;
    char pts[NB][8];
    /* odd last nodes move up: paths of a tree of 5 are 3,3,3,3,1 long */
    static const uint8_t want_path[NB] = { 3, 3, 3, 3, 1 };
    const uint8_t *sig0 = NULL;

    seal_tree(f, b, h, pts);
    for (int i = 0; i < NB; i++) {
        size_t o = leaf_end(b[i].data), sl;
        uint8_t *pt = NULL;
        size_t ptlen = 0;

        assert_int_equal(be16(b[i].data + o), NB);
        assert_int_equal(be16(b[i].data + o + 2), i);
        assert_int_equal(b[i].data[o + 4], want_path[i]);
        o += 5 + 32 * (size_t)want_path[i];
        sl = be16(b[i].data + o);
        assert_int_equal(sl, 64);
        assert_int_equal(o + 2 + sl, b[i].len);
        if (sig0 == NULL)
            sig0 = b[i].data + o + 2;
        assert_memory_equal(b[i].data + o + 2, sig0, 64);      /* one signature */
        assert_int_equal(gg_env_open(f->utility, b[i].data, b[i].len, &got, &pt, &ptlen),
                         GG_OK);
        assert_int_equal(ptlen, strlen(pts[i]));
        assert_memory_equal(pt, pts[i], ptlen);
        assert_memory_equal(got.msg_id, h[i].msg_id, 16);
        free(pt);
    }
    /* leaf 0's first path element is leaf 1: SHA-256(0x00 || its leaf bytes) */
    {
        uint8_t md[32], zero = 0;
        unsigned int mdlen = 0;
        EVP_MD_CTX *c = EVP_MD_CTX_new();

        assert_non_null(c);
        assert_int_equal(EVP_DigestInit_ex(c, EVP_sha256(), NULL), 1);
        assert_int_equal(EVP_DigestUpdate(c, &zero, 1), 1);
        assert_int_equal(EVP_DigestUpdate(c, b[1].data, leaf_end(b[1].data)), 1);
        assert_int_equal(EVP_DigestFinal_ex(c, md, &mdlen), 1);
        EVP_MD_CTX_free(c);
        assert_memory_equal(b[0].data + leaf_end(b[0].data) + 5, md, 32);
    }
    for (int i = 0; i < NB; i++)
        gg_buf_free(&b[i]);
}

/* forged_tree_cases - every way of misusing a tree's trailer is refused by k. */
static void forged_tree_cases(fx *f, gg_env_keys *k, gg_buf b[NB])
{
    gg_buf x = GG_BUF_INIT(0), lone = GG_BUF_INIT(0);
    size_t o;
    gg_err e;

    /* altered authentication path */
    for (size_t j = 0; j < 3 * 32; j += 31) {
        gg_buf_reset(&x);
        gg_buf_append(&x, b[1].data, b[1].len);
        x.data[leaf_end(x.data) + 5 + j] ^= 0x04;
        assert_int_equal(opens_as(k, &x), GG_ECRYPTO);
    }
    /* wrong leaf index (same path length): 1 -> 2, 0 -> 3 */
    gg_buf_reset(&x);
    gg_buf_append(&x, b[1].data, b[1].len);
    x.data[leaf_end(x.data) + 3] = 2;
    assert_int_equal(opens_as(k, &x), GG_ECRYPTO);
    x.data[leaf_end(x.data) + 3] = 1;
    assert_int_equal(opens_as(k, &x), GG_OK);
    x.data[leaf_end(x.data) + 3] = 4;           /* path of 1, not 3 */
    assert_int_equal(opens_as(k, &x), GG_EPROTO);
    x.data[leaf_end(x.data) + 3] = 5;           /* index >= size */
    assert_int_equal(opens_as(k, &x), GG_EPROTO);
    x.data[leaf_end(x.data) + 3] = 1;
    /* tree size mismatch: 5 -> 6 (same path length for leaf 1: the signature
     * covers the size) and 5 -> 2 (another path length) */
    o = leaf_end(x.data);
    x.data[o + 1] = 6;
    assert_int_equal(opens_as(k, &x), GG_ECRYPTO);
    x.data[o + 1] = 2;
    assert_int_equal(opens_as(k, &x), GG_EPROTO);
    x.data[o + 1] = 0;
    assert_int_equal(opens_as(k, &x), GG_EPROTO);
    x.data[o + 1] = NB;
    assert_int_equal(opens_as(k, &x), GG_OK);
    /* a valid root signature and path with a leaf that is not in the tree */
    seal_request(f, &lone);
    splice(&lone, &b[2], &x);
    assert_int_equal(opens_as(k, &x), GG_ECRYPTO);
    /* and a lone envelope's signature under a leaf of the tree */
    splice(&b[2], &lone, &x);
    assert_int_equal(opens_as(k, &x), GG_ECRYPTO);
    /* a path valid for another envelope of the same tree */
    for (int i = 0; i < NB; i++) {
        for (int j = 0; j < NB; j++) {
            if (i == j)
                continue;
            splice(&b[i], &b[j], &x);
            e = opens_as(k, &x);
            if (e == GG_OK)
                fail_msg("envelope %d opened with the trailer of %d", i, j);
            assert_true(e == GG_ECRYPTO || e == GG_EPROTO);
        }
    }
    /* ... even with its own index */
    splice(&b[0], &b[1], &x);
    x.data[leaf_end(x.data) + 3] = 0;
    assert_int_equal(opens_as(k, &x), GG_ECRYPTO);
    /* a flipped root signature */
    gg_buf_reset(&x);
    gg_buf_append(&x, b[3].data, b[3].len);
    x.data[x.len - 1] ^= 0x01;
    assert_int_equal(opens_as(k, &x), GG_ECRYPTO);
    assert_int_equal(opens_as(k, &x), GG_ECRYPTO);     /* a failure is not cached */
    gg_buf_free(&x);
    gg_buf_free(&lone);
}

static void test_forged_tree_trailers_are_refused_cold_and_with_the_root_cached(void **state)
{
    fx *f = *state;
    gg_buf b[NB];
    gg_env_hdr h[NB];
    char pts[NB][8];

    seal_tree(f, b, h, pts);
    forged_tree_cases(f, f->utility, b);        /* nothing verified yet */
    for (int i = 0; i < NB; i++)
        assert_int_equal(opens_as(f->utility, &b[i]), GG_OK);
    forged_tree_cases(f, f->utility, b);        /* the root's signature is cached */
    for (int i = 0; i < NB; i++)
        assert_int_equal(opens_as(f->utility, &b[i]), GG_OK);
    for (int i = 0; i < NB; i++)
        gg_buf_free(&b[i]);
}

static void test_seal_batch_checks_its_arguments_and_is_all_or_nothing(void **state)
{
    fx *f = *state;
    gg_env_hdr h[3] = { request(), request(), request() };
    const void *p[3] = { "a", "b", "c" };
    size_t l[3] = { 1, 1, 1 };
    gg_buf b[3] = { GG_BUF_INIT(0), GG_BUF_INIT(0), GG_BUF_INIT(0) };

    assert_int_equal(gg_env_seal_batch(f->portal, 0, h, p, l, NULL, b), GG_EINVAL);
    assert_int_equal(gg_env_seal_batch(f->portal, GG_ENV_BATCH_MAX + 1, h, p, l, NULL, b),
                     GG_EINVAL);
    snprintf(h[2].receiver, sizeof h[2].receiver, "bad name");
    assert_int_equal(gg_env_seal_batch(f->portal, 3, h, p, l, NULL, b), GG_EINVAL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(b[i].len, 0);
    assert_int_equal(gg_env_seal_batch(f->portal, 2, h, p, l, NULL, b), GG_OK);
    assert_int_equal(be16(b[0].data + leaf_end(b[0].data)), 2);
    assert_int_equal(opens_as(f->utility, &b[1]), GG_OK);
    for (int i = 0; i < 3; i++)
        gg_buf_free(&b[i]);
}

/* Many threads seal at once: the seals are signed together. */
typedef struct grp_arg {
    fx *f;
    int failures;
    size_t max_tree;
} grp_arg;

static void *grp_main(void *p)
{
    grp_arg *a = p;

    for (int i = 0; i < 40; i++) {
        gg_env_hdr h = request();
        gg_buf b = GG_BUF_INIT(0);
        size_t n;

        if (gg_env_seal(a->f->portal, &h, payload, strlen(payload), &b) != GG_OK ||
            opens_as(a->f->utility, &b) != GG_OK) {
            a->failures++;
        } else {
            n = be16(b.data + leaf_end(b.data));
            if (n > a->max_tree)
                a->max_tree = n;
            if (n > GG_ENV_BATCH_MAX)
                a->failures++;
        }
        gg_buf_free(&b);
    }
    return NULL;
}

static void test_concurrent_seals_are_signed_together(void **state)
{
    pthread_t t[16];
    grp_arg a[16];
    size_t most = 0;

    for (int i = 0; i < 16; i++) {
        a[i] = (grp_arg){ *state, 0, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, grp_main, &a[i]), 0);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].failures, 0);
        if (a[i].max_tree > most)
            most = a[i].max_tree;
    }
    /* 640 seals from 16 threads: some must have waited for a signer */
    assert_true(most > 1);
}


/* Seals keep working when their threads are interrupted by signals while
 * they wait for a signer (a handler installed without SA_RESTART makes a
 * blocking wait return EINTR): each still gets its own signed tree. */
static atomic_int sig_seen, sig_stop;

static void on_sigusr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&sig_seen, 1);
}

/* sig_main - grp_main's seals, over and over until sig_stop. */
static void *sig_main(void *p)
{
    grp_arg *a = p;

    while (!atomic_load(&sig_stop) && a->failures == 0)
        grp_main(a);
    return NULL;
}

static void test_seals_interrupted_by_signals_are_still_signed(void **state)
{
    struct sigaction sa, old;
    pthread_t t[8];
    grp_arg a[8];

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;                            /* no SA_RESTART */
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&sig_seen, 0);
    atomic_store(&sig_stop, 0);
    for (int i = 0; i < 8; i++) {
        a[i] = (grp_arg){ *state, 0, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, sig_main, &a[i]), 0);
    }
    /* signal the sealing threads over and over while they run */
    for (int round = 0; round < 300; round++) {
        for (int i = 0; i < 8; i++)
            pthread_kill(t[i], SIGUSR1);
        usleep(300);
    }
    atomic_store(&sig_stop, 1);
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].failures, 0);
    }
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    assert_true(atomic_load(&sig_seen) > 0);
}

/* Threads open the same envelope at once against an empty verify cache. */
typedef struct same_arg {
    gg_env_keys *k;
    const gg_buf *b;
    gg_err want;
    int failures;
} same_arg;

static void *same_main(void *p)
{
    same_arg *a = p;

    for (int i = 0; i < 5; i++) {
        if (opens_as(a->k, a->b) != a->want)
            a->failures++;
    }
    return NULL;
}

static void test_concurrent_opens_of_one_tree_agree_and_failures_stay_failures(void **state)
{
    fx *f = *state;
    gg_buf b[NB], bad = GG_BUF_INIT(0);
    gg_env_hdr h[NB];
    char pts[NB][8], err[256];
    pthread_t t[8];
    same_arg a[8];

    seal_tree(f, b, h, pts);
    gg_buf_append(&bad, b[2].data, b[2].len);
    bad.data[bad.len - 3] ^= 0x10;              /* same root, bad signature */
    for (int round = 0; round < 4; round++) {
        gg_env_keys *k = NULL;

        assert_int_equal(
            gg_test_env_load(f->dir, "utility", f->dir, "portal", "intl", &k, err, sizeof err),
            GG_OK);
        for (int i = 0; i < 8; i++) {
            /* half open the forgery first, half a genuine envelope of the tree */
            int forged = (i + round) % 2 == 0;

            a[i] = (same_arg){ k, forged ? &bad : &b[i % NB], forged ? GG_ECRYPTO : GG_OK, 0 };
            assert_int_equal(pthread_create(&t[i], NULL, same_main, &a[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
            pthread_join(t[i], NULL);
            assert_int_equal(a[i].failures, 0);
        }
        assert_int_equal(opens_as(k, &bad), GG_ECRYPTO);
        gg_env_keys_free(k);
    }
    gg_buf_free(&bad);
    for (int i = 0; i < NB; i++)
        gg_buf_free(&b[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seal_open_roundtrip_keeps_header_and_payload, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reply_direction_and_empty_payload_roundtrip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_layout_matches_the_documented_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_key_id_is_sha256_prefix_of_signing_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_every_single_byte_flip_is_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_truncation_at_every_length_is_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_receiver_is_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_from_a_third_key_is_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_suite_downgrade_and_version_change_are_rejected,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_peek_reads_header_without_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_is_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_rejects_bad_headers_and_leaves_out_unchanged,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_message_sealed_twice_differs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_keys_load_rejects_wrong_or_missing_keys, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_seals_interrupted_by_signals_are_still_signed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_are_shared_safely_by_threads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_tree_of_envelopes_opens_each_with_its_own_path,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_forged_tree_trailers_are_refused_cold_and_with_the_root_cached, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_seal_batch_checks_its_arguments_and_is_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_seals_are_signed_together, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_concurrent_opens_of_one_tree_agree_and_failures_stay_failures, setup, teardown),
    };
    gg_log_set_level(GG_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
