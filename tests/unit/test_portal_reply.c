/* test_portal_reply.c - the fast path of reply parsing (api_reply.c)
 * against jansson: the same answer for every reply, canonical or not, and
 * the fast path taken for what the utility really writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portal/api.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))  /* as the utility writes */

typedef struct verdict {
    int status;
    char *body;
    int http;
    char code[32];
    char message[GG_API_MSG_MAX];
} verdict;

/* oracle - the reply parsed through a jansson tree, as before the fast path. */
static void oracle(const char *pt, size_t len, verdict *v)
{
    json_error_t jerr;
    json_t *root = json_loadb(pt, len, 0, &jerr);
    json_t *s, *b;

    memset(v, 0, sizeof *v);
    v->http = 502;
    snprintf(v->code, sizeof v->code, "bad_gateway");
    if (root == NULL || !json_is_object(root)) {
        snprintf(v->message, sizeof v->message, "the utility's reply is not a JSON object");
        goto out;
    }
    s = json_object_get(root, "status");
    b = json_object_get(root, "body");
    if (!json_is_integer(s) || !json_is_object(b)) {
        snprintf(v->message, sizeof v->message, "the utility's reply lacks status or body");
        goto out;
    }
    if (json_integer_value(s) < 100 || json_integer_value(s) > 599) {
        snprintf(v->message, sizeof v->message, "the utility's reply has an invalid status");
        goto out;
    }
    v->body = json_dumps(b, DUMP_FLAGS);
    v->status = (int)json_integer_value(s);
    v->http = 200;
    v->code[0] = '\0';
out:
    json_decref(root);
}

/* parsed - the reply through gg_api_parse_reply. */
static void parsed(const char *pt, size_t len, verdict *v)
{
    gg_api_status st;

    memset(v, 0, sizeof *v);
    gg_api_parse_reply(pt, len, &v->status, &v->body, &st);
    v->http = st.http;
    snprintf(v->code, sizeof v->code, "%s", st.code != NULL ? st.code : "");
    if (st.code != NULL)
        snprintf(v->message, sizeof v->message, "%s", st.message);
}

/* same_answer - gg_api_parse_reply agrees with the oracle on pt; returns
 * whether the fast path took it. */
static int same_answer(const char *pt, size_t len)
{
    verdict a, b;
    const char *span = NULL;
    size_t slen = 0;
    int st = 0;
    int fast = gg_api_reply_scan(pt, len, &st, &span, &slen);

    oracle(pt, len, &a);
    parsed(pt, len, &b);
    if (a.http != b.http || strcmp(a.code, b.code) != 0 || strcmp(a.message, b.message) != 0 ||
        a.status != b.status || (a.body == NULL) != (b.body == NULL) ||
        (a.body != NULL && strcmp(a.body, b.body) != 0)) {
        print_message("differs on [%.*s]: oracle %d %s [%s], parsed %d %s [%s]\n", (int)len, pt,
                      a.http, a.code, a.body ? a.body : "-", b.http, b.code,
                      b.body ? b.body : "-");
        fail();
    }
    if (fast) {  /* the fast path only ever answers what jansson would */
        assert_int_equal(a.http, 200);
        assert_int_equal(st, a.status);
        assert_int_equal(slen, strlen(a.body));
        assert_memory_equal(span, a.body, slen);
    }
    free(a.body);
    free(b.body);
    return fast;
}

/* rnd - a small reproducible generator. */
static uint64_t rnd_state = 88172645463325252ull;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state >> 11);
}

/* rnd_text - a string with ASCII, escapes-to-be and multi-byte UTF-8. */
static void rnd_text(char *out, size_t outsz)
{
    static const char *const parts[] = { "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\x01",
                                         "\x1f", "\x7f", "\xc3\xa9", "\xe4\xb8\xad",
                                         "\xf0\x9f\x98\x80", "bill_id", "-", "." };
    size_t n = rnd() % 8, i, o = 0;

    for (i = 0; i < n; i++) {
        const char *p = parts[rnd() % (sizeof parts / sizeof parts[0])];
        size_t k = strlen(p);

        if (o + k + 1 > outsz)
            break;
        memcpy(out + o, p, k);
        o += k;
    }
    out[o] = '\0';
}

/* rnd_value - a random tree of at most depth levels. */
static json_t *rnd_value(int depth)
{
    static const double reals[] = { 0.0, -0.0, 1.5, 0.1, 123.456, 1e-7, 2.5e20, -3.25, 1.0 / 3,
                                    1234567.891011, 6.02214076e23 };
    char s[64];
    json_t *v;
    int i, n;

    switch (depth > 0 ? rnd() % 8 : 2 + rnd() % 6) {
    case 0:
        v = json_object();
        n = (int)(rnd() % 6);
        for (i = 0; i < n; i++) {
            rnd_text(s, sizeof s);
            json_object_set_new(v, s, rnd_value(depth - 1));
        }
        return v;
    case 1:
        v = json_array();
        n = (int)(rnd() % 5);
        for (i = 0; i < n; i++)
            json_array_append_new(v, rnd_value(depth - 1));
        return v;
    case 2:
        rnd_text(s, sizeof s);
        return json_string(s);
    case 3:
        return json_integer((json_int_t)rnd() - (json_int_t)(rnd() % 3 == 0 ? 2000000000 : 0));
    case 4:
        return json_integer(rnd() % 2 ? (json_int_t)9007199254740993LL * (rnd() % 100)
                                      : -(json_int_t)(rnd() % 1000));
    case 5:
        return json_real(reals[rnd() % (sizeof reals / sizeof reals[0])] * (double)(rnd() % 7));
    case 6:
        return rnd() % 2 ? json_true() : json_false();
    default:
        return json_null();
    }
}

/* reply_text - {"status":status,"body":body} as the utility writes it
 * (takes body). */
static char *reply_text(int status, json_t *body)
{
    json_t *r = json_pack("{s:i, s:o}", "status", status, "body", body);
    char *t = json_dumps(r, DUMP_FLAGS);

    json_decref(r);
    return t;
}

static void test_what_the_utility_writes_takes_the_fast_path(void **state)
{
    json_t *bills = json_array();
    json_t *usage = json_array();
    char *t;
    int i;

    (void)state;
    for (i = 0; i < 12; i++) {
        json_array_append_new(bills, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s}",
                                               "bill_id", "B000123-2025-01", "period", "2025-01",
                                               "kwh", (json_int_t)312, "amount_fen",
                                               (json_int_t)18744, "paid_fen", (json_int_t)0,
                                               "due_fen", (json_int_t)18744, "status", "unpaid",
                                               "due_date", "2025-02-20"));
        json_array_append_new(usage, json_pack("{s:s, s:f, s:f, s:f}", "period", "2025-01",
                                               "kwh_peak", 101.25 + i, "kwh_valley", 80.5 / (i + 1),
                                               "kwh_total", 0.1 * i));
    }
    t = reply_text(200, json_pack("{s:s, s:o}", "account_no", "A0001234", "bills", bills));
    assert_true(same_answer(t, strlen(t)));
    free(t);
    t = reply_text(200, json_pack("{s:s, s:o}", "account_no", "A0001234", "usage", usage));
    assert_true(same_answer(t, strlen(t)));
    free(t);
    t = reply_text(201, json_pack("{s:s, s:{s:s, s:s}}", "binding_token", "tok.en_-x", "account",
                                  "account_no", "A1", "holder_name", "\xe5\xbc\xa0\xe4\xb8\x89"));
    assert_true(same_answer(t, strlen(t)));
    free(t);
    t = reply_text(404, json_pack("{s:{s:s, s:s}}", "error", "code", "not_found", "message",
                                  "no \"such\" account\n"));
    assert_true(same_answer(t, strlen(t)));
    free(t);
    t = reply_text(200, json_object());
    assert_true(same_answer(t, strlen(t)));
    free(t);
}

static void test_generated_replies_agree_with_jansson(void **state)
{
    int i, fast = 0;

    (void)state;
    for (i = 0; i < 3000; i++) {
        json_t *body = json_object();
        char key[64];
        char *t;
        int k, n = (int)(rnd() % 6);

        for (k = 0; k < n; k++) {
            rnd_text(key, sizeof key);
            json_object_set_new(body, key, rnd_value(4));
        }
        t = reply_text(100 + (int)(rnd() % 500), body);
        assert_non_null(t);
        /* not canonical: a control character the dump writes as \u00XX or
         * an integer of 19 digits or more (the fast path stops at 18) */
        if (same_answer(t, strlen(t))) {
            fast++;
        } else if (strstr(t, "\\u00") == NULL) {
            size_t run = 0, j;

            for (j = 0; t[j] != '\0' && run < 19; j++)
                run = t[j] >= '0' && t[j] <= '9' ? run + 1 : 0;
            if (run < 19) {
                print_message("not taken fast: %s\n", t);
                fail();
            }
        }
        free(t);
    }
    assert_true(fast > 1000);
}

static void test_mutated_replies_agree_with_jansson(void **state)
{
    static const char *const inserts[] = { " ", "\n", ",", "\"", "\\", "\\u00e9", "\\/", "-0",
                                           "01", "1.50", "1E5", "1e+05", "}", "]", "{", "\x80",
                                           "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                           "\x00", "99999999999999999999", "null", "tru" };
    int i;

    (void)state;
    for (i = 0; i < 20000; i++) {
        json_t *body = json_object();
        char buf[8192];
        char *t;
        size_t n, at;
        int k;

        for (k = 0; k < 3; k++) {
            char key[64];

            rnd_text(key, sizeof key);
            json_object_set_new(body, key, rnd_value(3));
        }
        t = reply_text(200 + (int)(rnd() % 300), body);
        n = strlen(t);
        if (n + 32 > sizeof buf) {
            free(t);
            continue;
        }
        memcpy(buf, t, n);
        free(t);
        at = rnd() % (n + 1);
        switch (rnd() % 4) {
        case 0: {  /* insert a token */
            const char *ins = inserts[rnd() % (sizeof inserts / sizeof inserts[0])];
            size_t k2 = ins[0] == '\0' ? 1 : strlen(ins);

            memmove(buf + at + k2, buf + at, n - at);
            memcpy(buf + at, ins, k2);
            n += k2;
            break;
        }
        case 1:  /* change a byte */
            if (at < n)
                buf[at] = (char)(rnd() % 256);
            break;
        case 2:  /* cut */
            n = at;
            break;
        default:  /* drop a byte */
            if (at < n) {
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
            }
            break;
        }
        same_answer(buf, n);
    }
}

static void test_non_canonical_replies_still_parse(void **state)
{
    static const char *const texts[] = {
        "{ \"status\": 200, \"body\": {\"a\": 1} }",
        "{\"status\":200,\"body\":{\"a\":1,\"a\":2}}",
        "{\"status\":200,\"status\":201,\"body\":{}}",
        "{\"status\":200,\"body\":{\"n\":\"caf\\u00e9\",\"p\":\"a\\/b\"}}",
        "{\"status\":200,\"body\":{\"x\":1.50,\"y\":1E5,\"z\":-0}}",
        "{\"status\":200,\"body\":{},\"body\":{\"late\":true}}",
        "{\"status\":200,\"body\":{\"deep\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}}",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof texts / sizeof texts[0]; i++)
        assert_false(same_answer(texts[i], strlen(texts[i])));
}

static void test_malformed_replies_are_502_on_both_paths(void **state)
{
    static const char *const bad[] = {
        "", "{", "{}", "nope", "[]", "{\"status\":200}", "{\"body\":{}}",
        "{\"status\":\"200\",\"body\":{}}", "{\"status\":99,\"body\":{}}",
        "{\"status\":600,\"body\":{}}", "{\"status\":200,\"body\":[1]}",
        "{\"status\":200,\"body\":{}}x", "{\"status\":200,\"body\":{\"a\":01}}",
        "{\"status\":200.0,\"body\":{}}", "{\"status\":-200,\"body\":{}}",
        "{\"status\":200,\"body\":{\"s\":\"\xff\"}}",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(same_answer(bad[i], strlen(bad[i])));
    assert_false(same_answer("{\"status\":200,\"body\":{\"s\":\"a\0b\"}}", 33));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_what_the_utility_writes_takes_the_fast_path),
        cmocka_unit_test(test_generated_replies_agree_with_jansson),
        cmocka_unit_test(test_mutated_replies_agree_with_jansson),
        cmocka_unit_test(test_non_canonical_replies_still_parse),
        cmocka_unit_test(test_malformed_replies_are_502_on_both_paths),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
