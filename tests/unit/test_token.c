/* test_token.c - binding tokens: issue, verify, tamper, expiry, key file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "envelope/token.h"

typedef struct fx {
    char dir[512];
    uint8_t key[GG_TOKEN_KEY_LEN];
    gg_token_claims c;
    char tok[GG_TOKEN_MAX];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);

    assert_non_null(gg_test_mkdtemp(f->dir, sizeof f->dir, "tok"));
    gg_random(f->key, sizeof f->key);
    snprintf(f->c.portal_user_id, sizeof f->c.portal_user_id, "citizen-000123");
    snprintf(f->c.account_no, sizeof f->c.account_no, "3201000001");
    f->c.scopes = GG_SCOPE_READ | GG_SCOPE_PAY;
    f->c.expiry_ms = gg_now_ms() + 365LL * 86400 * 1000;
    assert_int_equal(gg_token_issue(f->key, &f->c, f->tok, sizeof f->tok), GG_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    gg_test_rmtree(f->dir);
    free(f);
    return 0;
}

static void test_issued_token_verifies_with_same_claims(void **state)
{
    fx *f = *state;
    gg_token_claims got;

    assert_int_equal(strncmp(f->tok, "gg1.", 4), 0);
    assert_true(strlen(f->tok) < GG_TOKEN_MAX);
    assert_int_equal(strlen(f->c.token_id), 32);
    assert_true(f->c.issued_ms > 0 && f->c.issued_ms <= gg_now_ms());
    assert_int_equal(gg_token_verify(f->key, f->tok, gg_now_ms(), &got), GG_OK);
    assert_string_equal(got.token_id, f->c.token_id);
    assert_string_equal(got.portal_user_id, "citizen-000123");
    assert_string_equal(got.account_no, "3201000001");
    assert_int_equal(got.scopes, GG_SCOPE_READ | GG_SCOPE_PAY);
    assert_true(got.issued_ms == f->c.issued_ms);
    assert_true(got.expiry_ms == f->c.expiry_ms);
}

static void test_two_issues_have_distinct_ids(void **state)
{
    fx *f = *state;
    gg_token_claims c2 = f->c;
    char tok2[GG_TOKEN_MAX];

    assert_int_equal(gg_token_issue(f->key, &c2, tok2, sizeof tok2), GG_OK);
    assert_string_not_equal(c2.token_id, f->c.token_id);
    assert_string_not_equal(tok2, f->tok);
}

/* A different base64url character at position i. */
static char other_b64(char c)
{
    return c == 'A' ? 'B' : 'A';
}

static void test_any_altered_character_is_rejected(void **state)
{
    fx *f = *state;
    gg_token_claims got;
    size_t n = strlen(f->tok);
    char t[GG_TOKEN_MAX];

    for (size_t i = 0; i < n; i++) {
        memcpy(t, f->tok, n + 1);
        t[i] = t[i] == '.' ? 'A' : other_b64(t[i]);
        memset(&got, 0x5a, sizeof got);
        gg_err e = gg_token_verify(f->key, t, gg_now_ms(), &got);
        if (e == GG_OK)
            fail_msg("token altered at %zu accepted", i);
        assert_true(e == GG_EINVAL || e == GG_EDENIED);
        assert_int_equal(((uint8_t *)&got)[0], 0x5a);      /* untouched on failure */
    }
}

static void test_altered_mac_is_denied(void **state)
{
    fx *f = *state;
    gg_token_claims got;
    char t[GG_TOKEN_MAX];
    char *mac;

    memcpy(t, f->tok, sizeof t);
    mac = strrchr(t, '.') + 1;
    mac[3] = other_b64(mac[3]);
    assert_int_equal(gg_token_verify(f->key, t, gg_now_ms(), &got), GG_EDENIED);
}

static void test_claims_moved_to_another_token_are_denied(void **state)
{
    fx *f = *state;
    gg_token_claims other = f->c, got;
    char tok2[GG_TOKEN_MAX], mix[GG_TOKEN_MAX];

    snprintf(other.account_no, sizeof other.account_no, "3201000002");
    assert_int_equal(gg_token_issue(f->key, &other, tok2, sizeof tok2), GG_OK);
    /* claims of tok2 (another account), MAC of the original token */
    snprintf(mix, sizeof mix, "%.*s%s", (int)(strrchr(tok2, '.') - tok2), tok2,
             strrchr(f->tok, '.'));
    assert_int_equal(gg_token_verify(f->key, mix, gg_now_ms(), &got), GG_EDENIED);
}

static void test_wrong_key_is_denied(void **state)
{
    fx *f = *state;
    uint8_t k2[GG_TOKEN_KEY_LEN];
    gg_token_claims got;

    memcpy(k2, f->key, sizeof k2);
    k2[31] ^= 1;
    assert_int_equal(gg_token_verify(k2, f->tok, gg_now_ms(), &got), GG_EDENIED);
}

static void test_expired_token_is_expired(void **state)
{
    fx *f = *state;
    gg_token_claims got;

    assert_int_equal(gg_token_verify(f->key, f->tok, f->c.expiry_ms - 1, &got), GG_OK);
    assert_int_equal(gg_token_verify(f->key, f->tok, f->c.expiry_ms, &got), GG_EEXPIRED);
    assert_int_equal(gg_token_verify(f->key, f->tok, f->c.expiry_ms + 86400000, &got),
                     GG_EEXPIRED);
}

static void test_garbage_strings_are_malformed(void **state)
{
    fx *f = *state;
    static const char *bad[] = {
        "", "g", "gg1", "gg1.", "gg1..", "gg1...", "gg2.AAAA.AAAA", "GG1.AAAA.AAAA",
        "gg1.AAAA", "gg1.!!!!.AAAA", "gg1.AAAA.====", "gg1.AAAA.AAAA.AAAA",
        "gg1.A.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "gg1.AAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",      /* claims too short */
        "gg1.AAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",     /* non-canonical mac */
        "gg1. AAAA.AAAA", "gg1.AAAA.AAAA\n", "\xff\xfe\xfd",
    };
    gg_token_claims got;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gg_err e = gg_token_verify(f->key, bad[i], gg_now_ms(), &got);
        if (e != GG_EINVAL)
            fail_msg("garbage %zu gave %s", i, gg_errname(e));
    }
    assert_int_equal(gg_token_verify(f->key, NULL, 0, &got), GG_EINVAL);
    assert_int_equal(gg_token_verify(f->key, f->tok, 0, NULL), GG_EINVAL);

    /* random bytes after a valid prefix */
    for (int i = 0; i < 200; i++) {
        char t[GG_TOKEN_MAX];
        uint8_t r[200];
        gg_random(r, sizeof r);
        memcpy(t, "gg1.", 4);
        size_t n = 4 + (r[0] % 190);
        for (size_t j = 4; j < n; j++)
            t[j] = (char)(r[j] ? r[j] : 'x');
        t[n] = '\0';
        assert_int_not_equal(gg_token_verify(f->key, t, gg_now_ms(), &got), GG_OK);
    }
}

static void test_overlong_token_is_too_big(void **state)
{
    fx *f = *state;
    char *t = malloc(4096);
    gg_token_claims got;

    memset(t, 'A', 4095);
    t[4095] = '\0';
    memcpy(t, f->tok, strlen(f->tok));     /* a valid token with trailing junk */
    assert_int_equal(gg_token_verify(f->key, t, gg_now_ms(), &got), GG_ETOOBIG);
    t[GG_TOKEN_MAX] = '\0';
    assert_int_equal(gg_token_verify(f->key, t, gg_now_ms(), &got), GG_ETOOBIG);
    t[GG_TOKEN_MAX - 1] = '\0';
    assert_int_equal(gg_token_verify(f->key, t, gg_now_ms(), &got), GG_EINVAL);
    free(t);
}

static void test_issue_rejects_bad_claims(void **state)
{
    fx *f = *state;
    gg_token_claims c;
    char t[GG_TOKEN_MAX];

    c = f->c;
    c.account_no[0] = '\0';
    assert_int_equal(gg_token_issue(f->key, &c, t, sizeof t), GG_EINVAL);
    c = f->c;
    snprintf(c.portal_user_id, sizeof c.portal_user_id, "a\nb");
    assert_int_equal(gg_token_issue(f->key, &c, t, sizeof t), GG_EINVAL);
    c = f->c;
    memset(c.account_no, '1', sizeof c.account_no);        /* not terminated */
    assert_int_equal(gg_token_issue(f->key, &c, t, sizeof t), GG_EINVAL);
    c = f->c;
    c.expiry_ms = gg_now_ms() - 1;
    assert_int_equal(gg_token_issue(f->key, &c, t, sizeof t), GG_EINVAL);
    c = f->c;
    assert_int_equal(gg_token_issue(f->key, &c, t, 20), GG_ETOOBIG);
}

static void test_longest_claims_fit_in_max(void **state)
{
    fx *f = *state;
    gg_token_claims c = f->c, got;
    char t[GG_TOKEN_MAX];

    memset(c.portal_user_id, 'u', 64);
    c.portal_user_id[64] = '\0';
    memset(c.account_no, '9', 32);
    c.account_no[32] = '\0';
    c.scopes = 0xffffffffu;
    assert_int_equal(gg_token_issue(f->key, &c, t, sizeof t), GG_OK);
    assert_int_equal(strlen(t), 228);       /* docs/protocol.md ("Envelope") */
    assert_int_equal(gg_token_verify(f->key, t, gg_now_ms(), &got), GG_OK);
    assert_string_equal(got.portal_user_id, c.portal_user_id);
    assert_string_equal(got.account_no, c.account_no);
    assert_int_equal(got.scopes, 0xffffffffu);
}

/* write_file - text into dir/name with mode. */
static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, mode);
}

static void test_key_file_loads_and_bad_files_are_config_errors(void **state)
{
    fx *f = *state;
    uint8_t k[GG_TOKEN_KEY_LEN], want[GG_TOKEN_KEY_LEN];
    char path[600], hex[2 * GG_TOKEN_KEY_LEN + 2];

    gg_random(want, sizeof want);
    gg_hex(want, sizeof want, hex);
    strcat(hex, "\n");
    snprintf(path, sizeof path, "%s/token.key", f->dir);
    write_file(path, hex, 0600);
    assert_int_equal(gg_token_key_load(path, k), GG_OK);
    assert_memory_equal(k, want, sizeof k);

    write_file(path, "abcd\n", 0600);
    assert_int_equal(gg_token_key_load(path, k), GG_ECONFIG);
    hex[10] = 'z';
    write_file(path, hex, 0600);
    assert_int_equal(gg_token_key_load(path, k), GG_ECONFIG);
    write_file(path, "0011223344556677889900112233445566778899001122334455667788990011ff", 0600);
    assert_int_equal(gg_token_key_load(path, k), GG_ECONFIG);
    snprintf(path, sizeof path, "%s/missing.key", f->dir);
    assert_int_equal(gg_token_key_load(path, k), GG_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_issued_token_verifies_with_same_claims, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_issues_have_distinct_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_any_altered_character_is_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_altered_mac_is_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claims_moved_to_another_token_are_denied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_is_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_token_is_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_strings_are_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_token_is_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_rejects_bad_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_longest_claims_fit_in_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_loads_and_bad_files_are_config_errors,
                                        setup, teardown),
    };
    gg_log_set_level(GG_LOG_ERROR + 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
