/* test_pki.c - generated CA, certificates and keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir.h"
#include "core/log.h"
#include "pki/pki.h"

typedef struct fx {
    char base[512];
    char dir[600];      /* base/pki: does not exist before the test */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);

    assert_non_null(gg_test_mkdtemp(f->base, sizeof f->base, "pki"));
    snprintf(f->dir, sizeof f->dir, "%s/pki", f->base);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    gg_test_rmtree(f->base);
    free(f);
    return 0;
}

/* in - dir/name in a static buffer (one at a time). */
static const char *in(const char *dir, const char *name)
{
    static char p[800];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p)
        fail_msg("path too long");
    return p;
}

static X509 *read_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    X509 *x;
    assert_non_null(fp);
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    return x;
}

static EVP_PKEY *read_key(const char *path, int priv)
{
    FILE *fp = fopen(path, "r");
    EVP_PKEY *k;
    assert_non_null(fp);
    k = priv ? PEM_read_PrivateKey(fp, NULL, NULL, NULL) : PEM_read_PUBKEY(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(k);
    return k;
}

/* verify - X509_verify_cert of leaf against ca for purpose; returns the
 * verify error (X509_V_OK on success). */
static int verify(const char *ca_path, const char *leaf_path, int purpose)
{
    X509 *ca = read_cert(ca_path), *leaf = read_cert(leaf_path);
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int err;

    assert_int_equal(X509_STORE_add_cert(st, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, NULL), 1);
    if (purpose)
        X509_STORE_CTX_set_purpose(ctx, purpose);
    err = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    X509_free(ca);
    X509_free(leaf);
    return err;
}

static const char *const private_files[] = {
    "ca.key", "portal.key", "portal.sign.key", "portal.kem.key",
    "utility.key", "utility.sign.key", "utility.kem.key", "token.key",
};
static const char *const public_files[] = {
    "ca.crt", "portal.crt", "portal.sign.pub", "portal.kem.pub",
    "utility.crt", "utility.sign.pub", "utility.kem.pub",
};

static void test_init_writes_all_files_with_private_modes(void **state)
{
    fx *f = *state;
    struct stat st;

    assert_int_equal(gg_pki_init(f->dir, NULL), GG_OK);
    assert_int_equal(stat(f->dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    for (size_t i = 0; i < sizeof private_files / sizeof *private_files; i++) {
        assert_int_equal(stat(in(f->dir, private_files[i]), &st), 0);
        if ((st.st_mode & 0777) != 0600)
            fail_msg("%s has mode %o", private_files[i], st.st_mode & 0777);
        assert_true(st.st_size > 0);
    }
    for (size_t i = 0; i < sizeof public_files / sizeof *public_files; i++) {
        assert_int_equal(stat(in(f->dir, public_files[i]), &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);
        assert_true(st.st_size > 0);
    }
}

static void test_site_certs_verify_against_ca_for_tls(void **state)
{
    fx *f = *state;
    char ca[800], crt[800];
    X509 *x;

    assert_int_equal(gg_pki_init(f->dir, NULL), GG_OK);
    snprintf(ca, sizeof ca, "%s", in(f->dir, "ca.crt"));
    static const char *const sites[] = { "portal", "utility" };
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.crt", sites[i]);
        snprintf(crt, sizeof crt, "%s", in(f->dir, name));
        assert_int_equal(verify(ca, crt, 0), X509_V_OK);
        assert_int_equal(verify(ca, crt, X509_PURPOSE_SSL_SERVER), X509_V_OK);
        assert_int_equal(verify(ca, crt, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
        x = read_cert(crt);
        assert_int_equal(X509_check_host(x, sites[i], 0, 0, NULL), 1);
        assert_int_not_equal(X509_check_host(x, sites[1 - i], 0, 0, NULL), 1);
        assert_int_equal(X509_check_ca(x), 0);
        EVP_PKEY *pub = X509_get0_pubkey(x);
        assert_true(EVP_PKEY_is_a(pub, "EC"));
        EVP_PKEY *priv = read_key(in(f->dir, sites[i][0] == 'p' ? "portal.key" : "utility.key"), 1);
        assert_int_equal(X509_check_private_key(x, priv), 1);
        EVP_PKEY_free(priv);
        X509_free(x);
    }
    x = read_cert(ca);
    assert_true(X509_check_ca(x) >= 1);
    assert_true(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
    X509_free(x);
    /* a site cert cannot act as a CA for the other */
    assert_int_not_equal(verify(in(f->dir, "portal.crt"), crt, 0), X509_V_OK);
}

static void test_message_keys_have_right_types_and_match(void **state)
{
    fx *f = *state;
    static const char *const sites[] = { "portal", "utility" };
    char name[64];

    assert_int_equal(gg_pki_init(f->dir, NULL), GG_OK);
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s.sign.key", sites[i]);
        EVP_PKEY *sk = read_key(in(f->dir, name), 1);
        snprintf(name, sizeof name, "%s.sign.pub", sites[i]);
        EVP_PKEY *sp = read_key(in(f->dir, name), 0);
        snprintf(name, sizeof name, "%s.kem.key", sites[i]);
        EVP_PKEY *kk = read_key(in(f->dir, name), 1);
        snprintf(name, sizeof name, "%s.kem.pub", sites[i]);
        EVP_PKEY *kp = read_key(in(f->dir, name), 0);
        assert_true(EVP_PKEY_is_a(sk, "ED25519"));
        assert_true(EVP_PKEY_is_a(kk, "X25519"));
        assert_int_equal(EVP_PKEY_eq(sk, sp), 1);
        assert_int_equal(EVP_PKEY_eq(kk, kp), 1);
        EVP_PKEY_free(sk);
        EVP_PKEY_free(sp);
        EVP_PKEY_free(kk);
        EVP_PKEY_free(kp);
    }
    /* token.key: 64 lowercase hex characters and a newline */
    char text[128] = { 0 };
    FILE *fp = fopen(in(f->dir, "token.key"), "r");
    assert_non_null(fp);
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    assert_int_equal(n, 65);
    assert_int_equal(strspn(text, "0123456789abcdef"), 64);
    assert_int_equal(text[64], '\n');
}

static void test_init_refuses_to_overwrite(void **state)
{
    fx *f = *state;
    char before[4096] = { 0 }, after[4096] = { 0 };
    FILE *fp;
    struct stat st;

    assert_int_equal(gg_pki_init(f->dir, NULL), GG_OK);
    fp = fopen(in(f->dir, "ca.crt"), "r");
    assert_non_null(fp);
    assert_true(fread(before, 1, sizeof before, fp) > 0);
    fclose(fp);
    assert_int_equal(gg_pki_init(f->dir, NULL), GG_EEXISTS);
    fp = fopen(in(f->dir, "ca.crt"), "r");
    assert_non_null(fp);
    assert_true(fread(after, 1, sizeof after, fp) > 0);
    fclose(fp);
    assert_memory_equal(before, after, sizeof before);

    /* one stray file is enough to refuse, and nothing else is created */
    char other[800];
    snprintf(other, sizeof other, "%s/other", f->base);
    assert_int_equal(mkdir(other, 0700), 0);
    fp = fopen(in(other, "utility.kem.pub"), "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(gg_pki_init(other, NULL), GG_EEXISTS);
    assert_int_not_equal(stat(in(other, "ca.key"), &st), 0);
    assert_int_not_equal(stat(in(other, "portal.crt"), &st), 0);
}

static void test_issue_cert_with_past_window_is_expired(void **state)
{
    fx *f = *state;
    char ca[800], cakey[800], crt[800], key[800];
    struct stat st;

    assert_int_equal(gg_pki_init(f->dir, NULL), GG_OK);
    snprintf(ca, sizeof ca, "%s", in(f->dir, "ca.crt"));
    snprintf(cakey, sizeof cakey, "%s", in(f->dir, "ca.key"));

    snprintf(crt, sizeof crt, "%s", in(f->base, "old.crt"));
    snprintf(key, sizeof key, "%s", in(f->base, "old.key"));
    assert_int_equal(gg_pki_issue_cert(ca, cakey, "portal", -7200, -3600, crt, key), GG_OK);
    assert_int_equal(verify(ca, crt, 0), X509_V_ERR_CERT_HAS_EXPIRED);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    snprintf(crt, sizeof crt, "%s", in(f->base, "future.crt"));
    snprintf(key, sizeof key, "%s", in(f->base, "future.key"));
    assert_int_equal(gg_pki_issue_cert(ca, cakey, "portal", 3600, 7200, crt, key), GG_OK);
    assert_int_equal(verify(ca, crt, 0), X509_V_ERR_CERT_NOT_YET_VALID);

    snprintf(crt, sizeof crt, "%s", in(f->base, "now.crt"));
    snprintf(key, sizeof key, "%s", in(f->base, "now.key"));
    assert_int_equal(gg_pki_issue_cert(ca, cakey, "wrong-name", -60, 3600, crt, key), GG_OK);
    assert_int_equal(verify(ca, crt, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    X509 *x = read_cert(crt);
    assert_int_equal(X509_check_host(x, "wrong-name", 0, 0, NULL), 1);
    X509_free(x);

    /* refuses to overwrite, and a CA key that does not match is refused */
    assert_int_equal(gg_pki_issue_cert(ca, cakey, "again", -60, 3600, crt, key), GG_EEXISTS);
    char wrongkey[800];
    snprintf(wrongkey, sizeof wrongkey, "%s", in(f->dir, "portal.key"));
    assert_int_equal(gg_pki_issue_cert(ca, wrongkey, "x", -60, 3600, in(f->base, "x.crt"),
                                       "/tmp/unused.key"),
                     GG_EINVAL);
    assert_int_not_equal(stat(in(f->base, "x.crt"), &st), 0);
}

static void test_init_rejects_bad_options(void **state)
{
    fx *f = *state;
    struct stat st;
    gg_pki_opts unknown = { "rot13", NULL, NULL, 0 };
    gg_pki_opts same = { "intl", "site", "site", 0 };
    gg_pki_opts slash = { "intl", "../x", "utility", 0 };
    gg_pki_opts ca = { "intl", "ca", "utility", 0 };
    gg_pki_opts days = { "intl", NULL, NULL, -1 };
    gg_pki_opts named = { "intl", "gov-portal", "grid.utility", 30 };

    assert_int_equal(gg_pki_init(f->dir, &unknown), GG_ECONFIG);
    assert_int_equal(gg_pki_init(f->dir, &same), GG_EINVAL);
    assert_int_equal(gg_pki_init(f->dir, &slash), GG_EINVAL);
    assert_int_equal(gg_pki_init(f->dir, &ca), GG_EINVAL);
    assert_int_equal(gg_pki_init(f->dir, &days), GG_EINVAL);
    assert_int_not_equal(stat(f->dir, &st), 0);        /* nothing made */
    assert_int_equal(gg_pki_init(f->dir, &named), GG_OK);
    assert_int_equal(stat(in(f->dir, "gov-portal.sign.key"), &st), 0);
    assert_int_equal(stat(in(f->dir, "grid.utility.crt"), &st), 0);
    char ca_path[800];
    snprintf(ca_path, sizeof ca_path, "%s", in(f->dir, "ca.crt"));
    assert_int_equal(verify(ca_path, in(f->dir, "grid.utility.crt"), 0), X509_V_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_writes_all_files_with_private_modes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_site_certs_verify_against_ca_for_tls, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_message_keys_have_right_types_and_match, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_refuses_to_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_cert_with_past_window_is_expired, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_options, setup, teardown),
    };
    gg_log_set_level(GG_LOG_ERROR + 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
