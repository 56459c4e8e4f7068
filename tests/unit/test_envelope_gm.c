/* test_envelope_gm.c - suite gm: SM2 signatures (SM3, distinguishing id),
 * SM2-curve key agreement, SM4-CTR + HMAC-SM3; cross-suite refusal; key
 * rotation overlap (both suites). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "envelope/envelope.h"
#include "pki/pki.h"
#include "env_fixture.h"

typedef struct fx {
    char dir[512];
    char old[600];            /* a second gm deployment: the "previous" keys */
    gg_env_keys *portal;
    gg_env_keys *utility;
} fx;

static const char payload[] = "{\"account_no\":\"3201000001\",\"from\":\"2024-01\"}";

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* load - self's keys from sdir with the peer's public keys from pdir. */
static gg_err load(const char *sdir, const char *self, const char *pdir, const char *peer,
                   const char *suite, gg_env_keys **out)
{
    char err[256];
    gg_err e = gg_test_env_load(sdir, self, pdir, peer, suite, out, err, sizeof err);

    if (e != GG_OK)
        fprintf(stderr, "load: %s\n", err);
    return e;
}

static int setup(void **state)
{
    const char *base = getenv("GG_TEST_TMP");
    fx *f = calloc(1, sizeof *f);
    gg_pki_opts gm = { "gm", NULL, NULL, 0 };

    gg_log_set_level(GG_LOG_WARN);
    if (!base)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(f->dir, sizeof f->dir, "%s/envgmXXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(gg_pki_init(f->dir, &gm), GG_OK);
    snprintf(f->old, sizeof f->old, "%s/old", f->dir);
    assert_int_equal(gg_pki_init(f->old, &gm), GG_OK);
    assert_int_equal(load(f->dir, "portal", f->dir, "utility", "gm", &f->portal), GG_OK);
    assert_int_equal(load(f->dir, "utility", f->dir, "portal", "gm", &f->utility), GG_OK);
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

static gg_env_hdr request(void)
{
    return gg_test_env_request(gg_now_ms());
}

static void test_gm_seal_open_roundtrip(void **state)
{
    fx *f = *state;
    gg_env_hdr h = request(), got;
    gg_buf b = GG_BUF_INIT(0);
    uint8_t *pt = NULL;
    size_t ptlen = 0;

    assert_int_equal(gg_env_keys_suite(f->portal), GG_SUITE_GM);
    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(b.data[4], GG_SUITE_GM);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_OK);
    assert_int_equal(ptlen, strlen(payload));
    assert_memory_equal(pt, payload, ptlen);
    assert_memory_equal(got.msg_id, h.msg_id, 16);
    assert_string_equal(got.sender, "portal");
    free(pt);
    /* the plaintext is not in the envelope */
    assert_null(memmem(b.data, b.len, "3201000001", 10));
    gg_buf_free(&b);
}

static void test_gm_layout_has_16_byte_nonce_32_byte_tag_and_der_signature(void **state)
{
    fx *f = *state;
    gg_env_hdr h = request();
    gg_buf b = GG_BUF_INIT(0);
    size_t o = 7 + 32 + 2 + 11 + 2 + 6 + 2 + 7 + 8 + 8 + 4 + 32, ct, sl;

    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(b.data[o], 16);
    o += 1 + 16;
    ct = (size_t)b.data[o] << 24 | (size_t)b.data[o + 1] << 16 | (size_t)b.data[o + 2] << 8 |
         b.data[o + 3];
    assert_int_equal(ct, strlen(payload) + 32);
    o += 4 + ct;
    /* a lone seal: tree of one, leaf 0, no path */
    assert_memory_equal(b.data + o, "\x00\x01\x00\x00\x00", 5);
    o += 5;
    sl = (size_t)b.data[o] << 8 | b.data[o + 1];
    assert_true(sl >= 8 && sl <= 72);
    assert_int_equal(b.data[o + 2], 0x30);              /* DER SEQUENCE */
    assert_int_equal(o + 2 + sl, b.len);
    gg_buf_free(&b);
}

static void test_gm_every_flipped_byte_is_refused(void **state)
{
    fx *f = *state;
    gg_env_hdr h = request(), got;
    gg_buf b = GG_BUF_INIT(0);
    uint8_t *pt = NULL;
    size_t ptlen;

    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &b), GG_OK);
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] ^= 0x01;
        gg_err e = gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen);
        if (e == GG_OK)
            fail_msg("flipped byte %zu was accepted", i);
        assert_null(pt);
        b.data[i] ^= 0x01;
    }
    for (size_t n = 0; n < b.len; n += 7)
        assert_int_not_equal(gg_env_open(f->utility, b.data, n, &got, &pt, &ptlen), GG_OK);
    gg_buf_free(&b);
}

static void test_intl_keys_cannot_open_gm_and_back(void **state)
{
    fx *f = *state;
    char idir[700];
    gg_env_keys *ip = NULL, *iu = NULL;
    gg_env_hdr h = request(), got;
    gg_buf b = GG_BUF_INIT(0);
    uint8_t *pt = NULL;
    size_t ptlen;

    snprintf(idir, sizeof idir, "%s/intl", f->dir);
    assert_int_equal(gg_pki_init(idir, NULL), GG_OK);
    assert_int_equal(load(idir, "portal", idir, "utility", "intl", &ip), GG_OK);
    assert_int_equal(load(idir, "utility", idir, "portal", "intl", &iu), GG_OK);
    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(gg_env_open(iu, b.data, b.len, &got, &pt, &ptlen), GG_ECRYPTO);
    gg_buf_reset(&b);
    assert_int_equal(gg_env_seal(ip, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_ECRYPTO);
    b.data[4] = GG_SUITE_GM;      /* relabelled: still refused (signature) */
    assert_int_not_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_OK);
    gg_buf_free(&b);
    gg_env_keys_free(ip);
    gg_env_keys_free(iu);
}

static void test_reply_hash_is_sm3_of_the_request(void **state)
{
    fx *f = *state;
    gg_env_hdr h = request(), got;
    gg_buf req = GG_BUF_INIT(0), rep = GG_BUF_INIT(0);
    uint8_t a[GG_ENV_HASH_LEN], c[GG_ENV_HASH_LEN], *pt = NULL;
    size_t ptlen;

    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &req), GG_OK);
    assert_int_equal(gg_env_hash(f->portal, req.data, req.len, a), GG_OK);
    assert_int_equal(gg_env_hash(f->utility, req.data, req.len, c), GG_OK);
    assert_memory_equal(a, c, sizeof a);
    /* a request must not carry a hash */
    memcpy(h.req_hash, a, sizeof a);
    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &rep), GG_EINVAL);
    h.kind = GG_ENV_REPLY;
    snprintf(h.receiver, sizeof h.receiver, "portal");
    assert_int_equal(gg_env_seal(f->utility, &h, "{}", 2, &rep), GG_OK);
    assert_int_equal(gg_env_open(f->portal, rep.data, rep.len, &got, &pt, &ptlen), GG_OK);
    assert_memory_equal(got.req_hash, a, sizeof a);
    free(pt);
    gg_buf_free(&req);
    gg_buf_free(&rep);
}

static void test_previous_peer_key_is_accepted_only_until_the_overlap_ends(void **state)
{
    fx *f = *state;
    gg_env_keys *old_portal = NULL;
    gg_env_hdr h = request(), got;
    gg_buf b = GG_BUF_INIT(0), old = GG_BUF_INIT(0);
    uint8_t *pt = NULL;
    size_t ptlen;
    char prev[700], err[256];
    char sk[700], kk[700], ps[700], pk[700];

    /* The portal's old signing key (kem keys stay: rotation is of signing keys). */
    snprintf(sk, sizeof sk, "%s/portal.sign.key", f->old);
    snprintf(kk, sizeof kk, "%s/portal.kem.key", f->dir);
    snprintf(ps, sizeof ps, "%s/utility.sign.pub", f->dir);
    snprintf(pk, sizeof pk, "%s/utility.kem.pub", f->dir);
    gg_env_keys_cfg oc = { "gm", "portal", sk, kk, ps, pk };
    assert_int_equal(gg_env_keys_load(&oc, &old_portal, err, sizeof err), GG_OK);
    assert_int_equal(gg_env_seal(old_portal, &h, payload, strlen(payload), &b), GG_OK);
    /* unknown key id without the overlap */
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_ECRYPTO);
    snprintf(prev, sizeof prev, "%s/portal.sign.pub", f->old);
    assert_int_equal(gg_env_keys_add_prev(f->utility, prev, gg_now_ms() + 60000, err,
                                          sizeof err), GG_OK);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_OK);
    free(pt);
    pt = NULL;
    gg_buf_append(&old, b.data, b.len);     /* verified, so its root is cached */
    /* the current key still works meanwhile */
    gg_buf_reset(&b);
    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_OK);
    free(pt);
    pt = NULL;
    /* after the overlap the old key is refused */
    gg_buf_reset(&b);
    assert_int_equal(gg_env_seal(old_portal, &h, payload, strlen(payload), &b), GG_OK);
    gg_clock_set_offset_ms(120000);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_ECRYPTO);
    /* the verify cache does not outlive the key: the envelope that opened
     * during the overlap is refused too */
    assert_int_equal(gg_env_open(f->utility, old.data, old.len, &got, &pt, &ptlen),
                     GG_ECRYPTO);
    gg_clock_set_offset_ms(0);
    /* a previous key equal to the current one is a configuration error */
    snprintf(prev, sizeof prev, "%s/portal.sign.pub", f->dir);
    assert_int_equal(gg_env_keys_add_prev(f->utility, prev, 1, err, sizeof err), GG_ECONFIG);
    gg_buf_free(&b);
    gg_buf_free(&old);
    gg_env_keys_free(old_portal);
}

/* The utility rotated its kem key; the portal still encrypts for the old
 * one. With the old kem key as kem_key_prev, the utility opens such
 * envelopes until the overlap ends, and the new key's envelopes all along. */
static void test_previous_kem_key_opens_only_until_the_overlap_ends(void **state)
{
    fx *f = *state;
    gg_env_keys *stale_portal = NULL;
    gg_env_hdr h = request(), got;
    gg_buf b = GG_BUF_INIT(0);
    uint8_t *pt = NULL;
    size_t ptlen;
    char sk[700], kk[700], ps[700], pk[700], prev[700], peer[700], err[256];

    snprintf(sk, sizeof sk, "%s/portal.sign.key", f->dir);
    snprintf(kk, sizeof kk, "%s/portal.kem.key", f->dir);
    snprintf(ps, sizeof ps, "%s/utility.sign.pub", f->dir);
    snprintf(pk, sizeof pk, "%s/utility.kem.pub", f->old);   /* the utility's old kem key */
    gg_env_keys_cfg sc = { "gm", "portal", sk, kk, ps, pk };
    assert_int_equal(gg_env_keys_load(&sc, &stale_portal, err, sizeof err), GG_OK);
    assert_int_equal(gg_env_seal(stale_portal, &h, payload, strlen(payload), &b), GG_OK);
    /* without the overlap: the tag does not check */
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_ECRYPTO);
    assert_null(pt);
    snprintf(prev, sizeof prev, "%s/utility.kem.key", f->old);
    snprintf(peer, sizeof peer, "%s/portal.kem.pub", f->dir);
    assert_int_equal(gg_env_keys_add_kem_prev(f->utility, prev, peer, gg_now_ms() + 60000, err,
                                              sizeof err), GG_OK);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_OK);
    assert_int_equal(ptlen, strlen(payload));
    assert_memory_equal(pt, payload, ptlen);
    free(pt);
    pt = NULL;
    /* the current kem key opens meanwhile */
    gg_buf_reset(&b);
    h = request();
    assert_int_equal(gg_env_seal(f->portal, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_OK);
    free(pt);
    pt = NULL;
    /* after the overlap the old kem key's envelopes are refused */
    gg_buf_reset(&b);
    h = request();
    assert_int_equal(gg_env_seal(stale_portal, &h, payload, strlen(payload), &b), GG_OK);
    gg_clock_set_offset_ms(120000);
    assert_int_equal(gg_env_open(f->utility, b.data, b.len, &got, &pt, &ptlen), GG_ECRYPTO);
    gg_clock_set_offset_ms(0);
    assert_null(pt);
    /* the current kem key as the previous one, or a missing file: refused */
    snprintf(prev, sizeof prev, "%s/utility.kem.key", f->dir);
    assert_int_equal(gg_env_keys_add_kem_prev(f->utility, prev, peer, 1, err, sizeof err),
                     GG_ECONFIG);
    snprintf(prev, sizeof prev, "%s/utility.kem.missing", f->old);
    assert_int_equal(gg_env_keys_add_kem_prev(f->utility, prev, peer, 1, err, sizeof err),
                     GG_ECONFIG);
    /* step 1 of the procedure: the portal, still sealing for the old key,
     * opens what the utility seals with its new one once it holds the new
     * public key as peer_kem_pub_prev */
    gg_buf_reset(&b);
    h = request();
    snprintf(h.receiver, sizeof h.receiver, "portal");
    assert_int_equal(gg_env_seal(f->utility, &h, payload, strlen(payload), &b), GG_OK);
    assert_int_equal(gg_env_open(stale_portal, b.data, b.len, &got, &pt, &ptlen), GG_ECRYPTO);
    snprintf(prev, sizeof prev, "%s/portal.kem.key", f->dir);
    snprintf(peer, sizeof peer, "%s/utility.kem.pub", f->dir);
    assert_int_equal(gg_env_keys_add_kem_prev(stale_portal, prev, peer, gg_now_ms() + 60000,
                                              err, sizeof err), GG_OK);
    assert_int_equal(gg_env_open(stale_portal, b.data, b.len, &got, &pt, &ptlen), GG_OK);
    free(pt);
    gg_buf_free(&b);
    gg_env_keys_free(stale_portal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gm_seal_open_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_gm_layout_has_16_byte_nonce_32_byte_tag_and_der_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gm_every_flipped_byte_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intl_keys_cannot_open_gm_and_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_hash_is_sm3_of_the_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_previous_kem_key_opens_only_until_the_overlap_ends,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_previous_peer_key_is_accepted_only_until_the_overlap_ends, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
