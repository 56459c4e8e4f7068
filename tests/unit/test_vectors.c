/* test_vectors.c - the golden envelopes in tests/vectors/<suite>/ open (or
 * fail) exactly as tests/vectors/<suite>/vectors.json says.
 *
 * Each suite directory holds the keys of both sites (PEM, test keys only),
 * the sealed envelopes (*.env, raw bytes) and vectors.json: for each vector
 * its file, the site that opens it, the expected result (gg_errname, "ok"
 * for success) and, on success, the plaintext. For suite intl
 * (deterministic Ed25519, fixed nonces) sealing the same inputs again must
 * give the same bytes; SM2 signatures are randomised, so gm vectors are
 * checked by opening only. batch_<i> are three requests sealed as one tree
 * (one root signature, each with its path), for checking path handling;
 * the tree_* vectors are made from them.
 *
 * GG_VECTORS_WRITE=1 regenerates the vectors (keys are kept if present):
 *   GG_VECTORS_WRITE=1 build/test_vectors
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/rand.h"
#include "envelope/envelope.h"
#include "pki/pki.h"
#include "env_fixture.h"

#define VEC_DIR GG_SOURCE_DIR "/tests/vectors"

static const char req_payload[] =
    "{\"binding_token\":\"gg1.test\",\"account_no\":\"3201000001\",\"from\":\"2024-01\","
    "\"to\":\"2024-06\"}";
static const char rep_payload[] = "{\"status\":200,\"body\":{\"bills\":[]}}";


/* read_all - a whole file into a malloc'd buffer. */
static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* write_all - bytes to path. */
static void write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* fixed_hdr - the header of vector number i (deterministic ids and times). */
static gg_env_hdr fixed_hdr(int kind, const char *receiver, uint8_t seed)
{
    gg_env_hdr h;

    memset(&h, 0, sizeof h);
    h.kind = (uint8_t)kind;
    for (int i = 0; i < 16; i++)
        h.msg_id[i] = (uint8_t)(seed * 16 + i);
    memcpy(h.corr_id, h.msg_id, 16);
    snprintf(h.txn, sizeof h.txn, "bills.query");
    snprintf(h.receiver, sizeof h.receiver, "%s", receiver);
    h.created_ms = 1700000000000LL + seed;
    h.expiry_ms = h.created_ms + 30000;
    return h;
}

/* fixed_nonce - the nonce of vector seed. */
static void fixed_nonce(uint8_t n[32], uint8_t seed)
{
    for (int i = 0; i < 32; i++)
        n[i] = (uint8_t)(0xa0 + seed + i);
}

/* add_vec - record one vector: write bytes, describe it in arr. */
static void add_vec(json_t *arr, const char *dir, const char *name, const char *opener,
                    const gg_buf *b, const char *expect, const char *pt)
{
    char path[700];
    json_t *v;

    snprintf(path, sizeof path, "%s/%s.env", dir, name);
    write_all(path, b->data, b->len);
    v = json_pack("{s:s,s:s,s:s}", "file", name, "opener", opener, "expect", expect);
    assert_non_null(v);
    if (pt != NULL)
        json_object_set_new(v, "plaintext", json_string(pt));
    json_array_append_new(arr, v);
}

/* leaf_end - offset of the tree trailer (tree_size) of envelope d. */
static size_t leaf_end(const uint8_t *d)
{
    size_t o = 39;

    for (int i = 0; i < 3; i++)
        o += 2 + ((size_t)d[o] << 8 | d[o + 1]);
    o += 8 + 8 + 4 + 32;
    o += 1 + d[o];
    return o + 4 + ((size_t)d[o] << 24 | (size_t)d[o + 1] << 16 | (size_t)d[o + 2] << 8 |
                    d[o + 3]);
}

#define VEC_BATCH 3

static const char *const batch_pts[VEC_BATCH] = { "{\"n\":0}", "{\"n\":1}", "{\"n\":2}" };

/* seal_batch3 - batch_0..2: three requests sealed as one tree into out. */
static void seal_batch3(gg_env_keys *portal, gg_buf out[VEC_BATCH])
{
    gg_env_hdr h[VEC_BATCH];
    const void *p[VEC_BATCH];
    size_t l[VEC_BATCH];
    uint8_t nonces[VEC_BATCH][32];
    const uint8_t *np[VEC_BATCH];

    for (int i = 0; i < VEC_BATCH; i++) {
        h[i] = fixed_hdr(GG_ENV_REQUEST, "utility", (uint8_t)(4 + i));
        fixed_nonce(nonces[i], (uint8_t)(4 + i));
        np[i] = nonces[i];
        p[i] = batch_pts[i];
        l[i] = strlen(batch_pts[i]);
        out[i] = (gg_buf)GG_BUF_INIT(0);
    }
    assert_int_equal(gg_env_seal_batch(portal, VEC_BATCH, h, p, l, np, out), GG_OK);
}

/* batch_vectors - batch_0..2: one tree of three requests; tree_*: each
 * made from them by one change. */
static void batch_vectors(json_t *arr, const char *dir, gg_env_keys *portal)
{
    gg_buf out[VEC_BATCH], b = GG_BUF_INIT(0);
    char name[32];
    size_t o;

    seal_batch3(portal, out);
    for (int i = 0; i < VEC_BATCH; i++) {
        snprintf(name, sizeof name, "batch_%d", i);
        add_vec(arr, dir, name, "utility", &out[i], "ok", batch_pts[i]);
    }
    /* leaf 0 of 3: path = [leaf 1, leaf 2] */
    gg_buf_append(&b, out[0].data, out[0].len);
    o = leaf_end(b.data);
    b.data[o + 5 + 40] ^= 0x01;                  /* second path element */
    add_vec(arr, dir, "tree_altered_path", "utility", &b, "ecrypto", NULL);
    b.data[o + 5 + 40] ^= 0x01;
    b.data[o + 3] = 1;                           /* leaf index 0 -> 1 (same path length) */
    add_vec(arr, dir, "tree_wrong_index", "utility", &b, "ecrypto", NULL);
    b.data[o + 3] = 0;
    b.data[o + 1] = 4;                           /* tree size 3 -> 4 (same path length) */
    add_vec(arr, dir, "tree_wrong_size", "utility", &b, "ecrypto", NULL);
    b.data[o + 1] = 2;                           /* tree size 3 -> 2: path too long */
    add_vec(arr, dir, "tree_bad_path_len", "utility", &b, "eproto", NULL);
    /* leaf bytes of batch_0 with the trailer (index, path) of batch_1 */
    gg_buf_reset(&b);
    gg_buf_append(&b, out[0].data, leaf_end(out[0].data));
    o = leaf_end(out[1].data);
    gg_buf_append(&b, out[1].data + o, out[1].len - o);
    add_vec(arr, dir, "tree_path_of_sibling", "utility", &b, "ecrypto", NULL);
    gg_buf_free(&b);
    for (int i = 0; i < VEC_BATCH; i++)
        gg_buf_free(&out[i]);
}

/* generate - write the vectors of suite into VEC_DIR/suite. */
static void generate(const char *suite)
{
    char dir[600], path[700], probe[700];
    gg_env_keys *portal, *utility;
    gg_buf req = GG_BUF_INIT(0), rep = GG_BUF_INIT(0), b = GG_BUF_INIT(0);
    gg_env_hdr h;
    uint8_t nonce[32];
    json_t *arr = json_array();
    json_t *doc;
    struct stat sb;
    gg_pki_opts o = { suite, "portal", "utility", 3650 };

    snprintf(dir, sizeof dir, "%s/%s", VEC_DIR, suite);
    snprintf(probe, sizeof probe, "%s/portal.sign.key", dir);
    if (stat(probe, &sb) != 0) {
        static const char *const unused[] = { "ca.crt", "ca.key", "portal.crt", "portal.key",
                                              "utility.crt", "utility.key", "token.key" };

        assert_int_equal(gg_pki_init(dir, &o), GG_OK);
        for (size_t i = 0; i < sizeof unused / sizeof unused[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, unused[i]);
            remove(path);   /* only the message keys belong to the vectors */
        }
    }
    portal = gg_test_env_keys(dir, suite, "portal", "utility");
    utility = gg_test_env_keys(dir, suite, "utility", "portal");

    /* 1: a request, and 2: its reply carrying the request's hash. */
    h = fixed_hdr(GG_ENV_REQUEST, "utility", 1);
    fixed_nonce(nonce, 1);
    assert_int_equal(gg_env_seal_nonce(portal, &h, req_payload, strlen(req_payload), nonce,
                                       &req), GG_OK);
    add_vec(arr, dir, "request_ok", "utility", &req, "ok", req_payload);
    h = fixed_hdr(GG_ENV_REPLY, "portal", 2);
    memcpy(h.corr_id, req.data + 7, 16);
    assert_int_equal(gg_env_hash(utility, req.data, req.len, h.req_hash), GG_OK);
    fixed_nonce(nonce, 2);
    assert_int_equal(gg_env_seal_nonce(utility, &h, rep_payload, strlen(rep_payload), nonce,
                                       &rep), GG_OK);
    add_vec(arr, dir, "reply_ok", "portal", &rep, "ok", rep_payload);

    /* Failures, each made from the request. */
    gg_buf_reset(&b);
    gg_buf_append(&b, req.data, req.len);
    b.data[b.len - 80] ^= 0x01;                  /* inside the ciphertext/tag */
    add_vec(arr, dir, "flipped_ciphertext", "utility", &b, "ecrypto", NULL);
    b.data[b.len - 80] ^= 0x01;
    b.data[39 + 2] ^= 0x20;                      /* txn "bills.query" -> "Bills.query" */
    add_vec(arr, dir, "altered_header", "utility", &b, "ecrypto", NULL);
    b.data[39 + 2] ^= 0x20;
    b.data[b.len - 1] ^= 0x01;                   /* last signature byte */
    add_vec(arr, dir, "flipped_signature", "utility", &b, "ecrypto", NULL);
    b.data[b.len - 1] ^= 0x01;
    b.data[4] = b.data[4] == GG_SUITE_INTL ? GG_SUITE_GM : GG_SUITE_INTL;
    add_vec(arr, dir, "suite_downgrade", "utility", &b, "ecrypto", NULL);
    b.data[4] = req.data[4];
    b.data[3] = 1;
    add_vec(arr, dir, "old_version", "utility", &b, "eproto", NULL);
    b.data[3] = req.data[3];
    b.len -= 1;
    add_vec(arr, dir, "truncated", "utility", &b, "eproto", NULL);
    b.len += 1;
    add_vec(arr, dir, "request_opened_by_its_sender", "portal", &b, "ecrypto", NULL);
    b.data[3] = 2;                               /* per-message signatures: no downgrade */
    add_vec(arr, dir, "version_2", "utility", &b, "eproto", NULL);
    b.data[3] = req.data[3];
    gg_buf_reset(&b);
    h = fixed_hdr(GG_ENV_REQUEST, "elsewhere", 3);
    fixed_nonce(nonce, 3);
    assert_int_equal(gg_env_seal_nonce(portal, &h, req_payload, strlen(req_payload), nonce,
                                       &b), GG_OK);
    add_vec(arr, dir, "wrong_receiver", "utility", &b, "edenied", NULL);

    batch_vectors(arr, dir, portal);

    doc = json_pack("{s:s,s:s,s:o}", "suite", suite, "note",
                    "test keys only; see docs/protocol.md (Envelope) and tests/unit/test_vectors.c",
                    "vectors", arr);
    snprintf(path, sizeof path, "%s/vectors.json", dir);
    assert_int_equal(json_dump_file(doc, path, JSON_INDENT(2) | JSON_SORT_KEYS), 0);
    json_decref(doc);
    gg_buf_free(&req);
    gg_buf_free(&rep);
    gg_buf_free(&b);
    gg_env_keys_free(portal);
    gg_env_keys_free(utility);
}

/* check_suite - open every vector of suite and compare with vectors.json. */
static void check_suite(const char *suite)
{
    char dir[600], path[700];
    gg_env_keys *portal, *utility;
    json_t *doc, *arr, *v;
    json_error_t jerr;
    size_t i, n = 0;

    snprintf(dir, sizeof dir, "%s/%s", VEC_DIR, suite);
    snprintf(path, sizeof path, "%s/vectors.json", dir);
    doc = json_load_file(path, 0, &jerr);
    if (doc == NULL)
        fail_msg("%s: %s", path, jerr.text);
    portal = gg_test_env_keys(dir, suite, "portal", "utility");
    utility = gg_test_env_keys(dir, suite, "utility", "portal");
    arr = json_object_get(doc, "vectors");
    assert_true(json_array_size(arr) >= 17);
    json_array_foreach(arr, i, v) {
        const char *file = json_string_value(json_object_get(v, "file"));
        const char *opener = json_string_value(json_object_get(v, "opener"));
        const char *expect = json_string_value(json_object_get(v, "expect"));
        const char *want_pt = json_string_value(json_object_get(v, "plaintext"));
        uint8_t *env, *pt = NULL;
        size_t len, ptlen = 0;
        gg_env_hdr h;
        gg_err e;

        assert_non_null(file);
        assert_non_null(opener);
        assert_non_null(expect);
        snprintf(path, sizeof path, "%s/%s.env", dir, file);
        env = read_all(path, &len);
        e = gg_env_open(strcmp(opener, "portal") == 0 ? portal : utility, env, len, &h, &pt,
                        &ptlen);
        if (strcmp(expect, "ok") == 0) {
            if (e != GG_OK)
                fail_msg("%s/%s: expected ok, got %s", suite, file, gg_errname(e));
            assert_non_null(want_pt);
            assert_int_equal(ptlen, strlen(want_pt));
            assert_memory_equal(pt, want_pt, ptlen);
        } else if (strcmp(gg_errname(e), expect) != 0) {
            fail_msg("%s/%s: expected %s, got %s", suite, file, expect, gg_errname(e));
        }
        free(pt);
        free(env);
        n++;
    }
    assert_true(n >= 17);
    json_decref(doc);
    gg_env_keys_free(portal);
    gg_env_keys_free(utility);
}

/* the reply vector's req_hash is the hash of the request vector's bytes */
static void check_reply_binding(const char *suite)
{
    char dir[600], path[700];
    uint8_t *req, *rep, want[GG_ENV_HASH_LEN];
    size_t rql, rpl;
    gg_env_keys *utility;
    gg_env_hdr h;

    snprintf(dir, sizeof dir, "%s/%s", VEC_DIR, suite);
    utility = gg_test_env_keys(dir, suite, "utility", "portal");
    snprintf(path, sizeof path, "%s/request_ok.env", dir);
    req = read_all(path, &rql);
    snprintf(path, sizeof path, "%s/reply_ok.env", dir);
    rep = read_all(path, &rpl);
    assert_int_equal(gg_env_peek(rep, rpl, &h), GG_OK);
    assert_int_equal(gg_env_hash(utility, req, rql, want), GG_OK);
    assert_memory_equal(h.req_hash, want, GG_ENV_HASH_LEN);
    assert_memory_equal(h.corr_id, req + 7, 16);
    free(req);
    free(rep);
    gg_env_keys_free(utility);
}

static void test_intl_vectors_open_as_documented(void **state)
{
    (void)state;
    check_suite("intl");
    check_reply_binding("intl");
}

static void test_gm_vectors_open_as_documented(void **state)
{
    (void)state;
    check_suite("gm");
    check_reply_binding("gm");
}

static void test_intl_sealing_is_reproducible(void **state)
{
    char dir[600], path[700];
    gg_env_keys *portal;
    gg_buf b = GG_BUF_INIT(0);
    gg_env_hdr h = fixed_hdr(GG_ENV_REQUEST, "utility", 1);
    uint8_t nonce[32], *want;
    size_t len;

    (void)state;
    snprintf(dir, sizeof dir, "%s/intl", VEC_DIR);
    portal = gg_test_env_keys(dir, "intl", "portal", "utility");
    fixed_nonce(nonce, 1);
    assert_int_equal(gg_env_seal_nonce(portal, &h, req_payload, strlen(req_payload), nonce, &b),
                     GG_OK);
    snprintf(path, sizeof path, "%s/request_ok.env", dir);
    want = read_all(path, &len);
    assert_int_equal(b.len, len);
    assert_memory_equal(b.data, want, len);
    free(want);
    gg_buf_free(&b);
    gg_env_keys_free(portal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intl_vectors_open_as_documented),
        cmocka_unit_test(test_intl_sealing_is_reproducible),
        cmocka_unit_test(test_gm_vectors_open_as_documented),
    };
    const char *w = getenv("GG_VECTORS_WRITE");

    gg_log_set_level(GG_LOG_ERROR);
    if (w != NULL && strcmp(w, "1") == 0) {
        generate("intl");
        generate("gm");
        printf("vectors written to %s\n", VEC_DIR);
        return 0;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
