/* test_revoke.c - revoked binding tokens: the list (envelope/revoke.h) and
 * the services that use it: "unbind" revokes, account services refuse. */
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

#include "tmpdir.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "envelope/revoke.h"
#include "envelope/token.h"
#include "services/services.h"

typedef struct fx {
    char dir[512];
    char path[600];
    gg_revoke *r;
    uint8_t key[GG_TOKEN_KEY_LEN];
    gg_svc_ctx ctx;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);

    gg_log_set_level(GG_LOG_ERROR);
    assert_non_null(gg_test_mkdtemp(f->dir, sizeof f->dir, "revoke"));
    snprintf(f->path, sizeof f->path, "%s/revoked.db", f->dir);
    assert_int_equal(gg_revoke_open(f->path, &f->r), GG_OK);
    gg_random(f->key, sizeof f->key);
    f->ctx.token_key = f->key;
    f->ctx.token_ttl_ms = 86400000;
    f->ctx.now_ms = gg_now_ms();
    f->ctx.revoked = f->r;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    gg_revoke_close(f->r);
    gg_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* token - a fresh token for account into out; claims into c. */
static void token(fx *f, const char *account, int64_t expiry_ms, char out[GG_TOKEN_MAX],
                  gg_token_claims *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->portal_user_id, sizeof c->portal_user_id, "citizen-1");
    snprintf(c->account_no, sizeof c->account_no, "%s", account);
    c->scopes = GG_SCOPE_READ | GG_SCOPE_PAY;
    c->expiry_ms = expiry_ms;
    assert_int_equal(gg_token_issue(f->key, c, out, GG_TOKEN_MAX), GG_OK);
}

/* call - dispatch txn with {"binding_token": tok, ...}; returns status, code in *code. */
static int call(fx *f, const char *txn, const char *tok, const char **code, json_t **keep)
{
    json_t *req = json_pack("{s:s,s:s,s:s,s:s}", "binding_token", tok, "account_no", "3201000001",
                            "from", "2024-01", "to", "2024-02");
    json_t *rep = gg_svc_dispatch(&f->ctx, txn, req);
    int st;

    assert_non_null(rep);
    st = (int)json_integer_value(json_object_get(rep, "status"));
    *code = json_string_value(
        json_object_get(json_object_get(json_object_get(rep, "body"), "error"), "code"));
    json_decref(req);
    *keep = rep;
    return st;
}

static void test_revoked_id_is_listed_and_survives_reopen(void **state)
{
    fx *f = *state;
    const char *id = "00112233445566778899aabbccddeeff";
    int rv = -1;

    assert_int_equal(gg_revoke_check(f->r, id, &rv), GG_OK);
    assert_int_equal(rv, 0);
    assert_int_equal(gg_revoke_add(f->r, id, f->ctx.now_ms + 60000, f->ctx.now_ms), GG_OK);
    assert_int_equal(gg_revoke_add(f->r, id, f->ctx.now_ms + 60000, f->ctx.now_ms), GG_OK);
    assert_int_equal(gg_revoke_check(f->r, id, &rv), GG_OK);
    assert_int_equal(rv, 1);
    gg_revoke_close(f->r);
    assert_int_equal(gg_revoke_open(f->path, &f->r), GG_OK);
    f->ctx.revoked = f->r;
    assert_int_equal(gg_revoke_check(f->r, id, &rv), GG_OK);
    assert_int_equal(rv, 1);
    /* forgotten once the token itself has expired */
    assert_int_equal(gg_revoke_add(f->r, "ffeeddccbbaa99887766554433221100",
                                   f->ctx.now_ms + 999999, f->ctx.now_ms + 120000), GG_OK);
    assert_int_equal(gg_revoke_check(f->r, id, &rv), GG_OK);
    assert_int_equal(rv, 0);
    assert_int_equal(gg_revoke_add(f->r, "not-hex", 1, 0), GG_EINVAL);
    assert_int_equal(gg_revoke_check(f->r, "ABC", &rv), GG_EINVAL);
    assert_int_equal(rv, 1);      /* fail closed */
}

static void test_unbind_revokes_and_account_services_refuse_the_token(void **state)
{
    fx *f = *state;
    char tok[GG_TOKEN_MAX], other[GG_TOKEN_MAX];
    gg_token_claims c, c2;
    const char *code;
    json_t *rep;
    int rv;

    token(f, "3201000001", f->ctx.now_ms + 86400000, tok, &c);
    token(f, "3201000001", f->ctx.now_ms + 86400000, other, &c2);
    assert_int_equal(call(f, "unbind", tok, &code, &rep), 200);
    assert_true(json_is_true(json_object_get(json_object_get(rep, "body"), "revoked")));
    json_decref(rep);
    assert_int_equal(gg_revoke_check(f->r, c.token_id, &rv), GG_OK);
    assert_int_equal(rv, 1);
    assert_int_equal(call(f, "unbind", tok, &code, &rep), 200);    /* idempotent */
    json_decref(rep);
    assert_int_equal(call(f, "bills.query", tok, &code, &rep), 401);
    assert_string_equal(code, "token_revoked");
    json_decref(rep);
    assert_int_equal(call(f, "usage.query", tok, &code, &rep), 401);
    assert_string_equal(code, "token_revoked");
    json_decref(rep);
    /* another token of the same binding is not affected */
    assert_int_equal(gg_revoke_check(f->r, c2.token_id, &rv), GG_OK);
    assert_int_equal(rv, 0);
}

static void test_unbind_refuses_missing_or_forged_tokens(void **state)
{
    fx *f = *state;
    char tok[GG_TOKEN_MAX];
    gg_token_claims c;
    const char *code;
    json_t *rep;
    size_t n;

    token(f, "3201000001", f->ctx.now_ms + 86400000, tok, &c);
    assert_int_equal(call(f, "unbind", "", &code, &rep), 401);
    assert_string_equal(code, "missing_token");
    json_decref(rep);
    n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(call(f, "unbind", tok, &code, &rep), 401);
    assert_string_equal(code, "invalid_token");
    json_decref(rep);
    /* an expired token can no longer be used anyway: 200 */
    token(f, "3201000001", f->ctx.now_ms + 10, tok, &c);
    f->ctx.now_ms += 20;
    assert_int_equal(call(f, "unbind", tok, &code, &rep), 200);
    json_decref(rep);
    /* without a revocation list unbind cannot promise anything */
    token(f, "3201000001", f->ctx.now_ms + 86400000, tok, &c);
    f->ctx.revoked = NULL;
    assert_int_equal(call(f, "unbind", tok, &code, &rep), 500);
    json_decref(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_revoked_id_is_listed_and_survives_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_unbind_revokes_and_account_services_refuse_the_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbind_refuses_missing_or_forged_tokens, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
