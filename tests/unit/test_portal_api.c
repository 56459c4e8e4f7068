/* test_portal_api.c - the portal's routing, request validation, reply
 * parsing and pending-call table, in-process (no sockets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope/token.h"
#include "portal/api.h"
#include "portal/pending.h"
#include "portal/portal_int.h"

/* now_at - wall ms of the 15th of a month at noon UTC (safe in any zone). */
static int64_t now_at(int year, int mon)
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = 15;
    tm.tm_hour = 12;
    return (int64_t)timegm(&tm) * 1000;
}

/* route - match and return the status code (NULL when accepted). */
static const char *route(gg_api_method m, const char *path, gg_api_route *r, int *http)
{
    gg_api_status st;

    gg_api_match(m, path, r, &st);
    *http = st.http;
    return st.code;
}

static void test_api_paths_route_to_their_handlers(void **state)
{
    gg_api_route r;
    int http;

    (void)state;
    assert_null(route(GG_M_POST, "/api/v1/bindings", &r, &http));
    assert_int_equal(r.id, GG_ROUTE_BINDINGS);
    assert_null(route(GG_M_GET, "/api/v1/accounts/3200012345/bills", &r, &http));
    assert_int_equal(r.id, GG_ROUTE_BILLS);
    assert_string_equal(r.account_no, "3200012345");
    assert_null(route(GG_M_GET, "/healthz", &r, &http));
    assert_int_equal(r.id, GG_ROUTE_HEALTHZ);
    assert_null(route(GG_M_GET, "/", &r, &http));
    assert_int_equal(r.id, GG_ROUTE_STATIC);
    assert_string_equal(r.file, "index.html");
    assert_null(route(GG_M_HEAD, "/app.js", &r, &http));
    assert_string_equal(r.file, "app.js");
    assert_null(route(GG_M_GET, "/style.css", &r, &http));
    assert_string_equal(r.file, "style.css");
}

static void test_wrong_method_is_405_with_allow(void **state)
{
    gg_api_route r;
    int http;

    (void)state;
    assert_string_equal(route(GG_M_GET, "/api/v1/bindings", &r, &http), "method_not_allowed");
    assert_int_equal(http, 405);
    assert_string_equal(r.allow, "POST, DELETE");
    assert_int_equal(r.id, GG_ROUTE_NONE);
    assert_string_equal(route(GG_M_POST, "/api/v1/accounts/A1/bills", &r, &http),
                        "method_not_allowed");
    assert_string_equal(r.allow, "GET");
    assert_string_equal(route(GG_M_OTHER, "/", &r, &http), "method_not_allowed");
    assert_string_equal(route(GG_M_POST, "/healthz", &r, &http), "method_not_allowed");
}

static void test_delete_bindings_routes_to_unbind_with_the_token(void **state)
{
    gg_api_route r;
    gg_api_status st;
    json_t *payload = NULL;
    int http;

    (void)state;
    assert_null(route(GG_M_DELETE, "/api/v1/bindings", &r, &http));
    assert_int_equal(r.id, GG_ROUTE_UNBIND);
    assert_null(route(GG_M_POST, "/api/v1/bindings", &r, &http));
    assert_int_equal(r.id, GG_ROUTE_BINDINGS);
    gg_api_parse_unbind(NULL, &payload, &st);
    assert_string_equal(st.code, "missing_token");
    assert_int_equal(st.http, 401);
    assert_null(payload);
    gg_api_parse_unbind("gg1.bad token", &payload, &st);
    assert_string_equal(st.code, "invalid_token");
    assert_null(payload);
    gg_api_parse_unbind("gg1.AAAA.BBBB", &payload, &st);
    assert_null(st.code);
    assert_string_equal(json_string_value(json_object_get(payload, "binding_token")),
                        "gg1.AAAA.BBBB");
    json_decref(payload);
}

static void test_unknown_paths_are_404(void **state)
{
    static const char *const paths[] = {
        "/api/v1/binding", "/api/v1/bindings/", "/api/v2/bindings", "/api/v1/accounts/A1",
        "/api/v1/accounts/A1/bill", "/api/v1/accounts/A1/bills/x", "/metrics", "/nope.html",
        "/index.php", "/README", "/.env", "/.hidden.js", "", "*", "api/v1/bindings",
    };
    gg_api_route r;
    size_t i;
    int http;

    (void)state;
    for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const char *code = route(GG_M_GET, paths[i], &r, &http);

        /* "/nope.html" is a valid name: it routes, and the file is missing. */
        if (strcmp(paths[i], "/nope.html") == 0) {
            assert_null(code);
            continue;
        }
        assert_non_null(code);
        assert_string_equal(code, "not_found");
        assert_int_equal(http, 404);
    }
}

static void test_path_traversal_forms_are_refused(void **state)
{
    static const char *const paths[] = {
        "/../etc/passwd", "/..", "/%2e%2e/etc/passwd", "/%2E%2E/etc/passwd", "/.%2e/x.js",
        "/%2e./x.js", "/..%2fetc%2fpasswd", "/%2e%2e%2fapp.js", "/web/../index.html",
        "/sub/app.js", "/a\\b.js", "/%5c..%5capp.js", "//etc/passwd", "/%2fetc%2fpasswd",
        "/%252e%252e/app.js", "/api/v1/accounts/../bindings", "/api/v1/accounts/A1/../bills",
    };
    gg_api_route r;
    size_t i;
    int http;

    (void)state;
    for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const char *code = route(GG_M_GET, paths[i], &r, &http);

        assert_non_null(code);
        assert_int_equal(r.id, GG_ROUTE_NONE);
        assert_true(http == 404 || http == 400);
        assert_string_equal(r.file, "");
    }
}

static void test_encoded_nul_and_bad_escapes_are_400(void **state)
{
    gg_api_route r;
    int http;

    (void)state;
    assert_string_equal(route(GG_M_GET, "/index.html%00.js", &r, &http), "invalid_parameter");
    assert_int_equal(http, 400);
    assert_string_equal(route(GG_M_GET, "/%00", &r, &http), "invalid_parameter");
    assert_string_equal(route(GG_M_GET, "/app%zz.js", &r, &http), "invalid_parameter");
    assert_string_equal(route(GG_M_GET, "/app.js%2", &r, &http), "invalid_parameter");
}

static void test_bad_account_in_path_is_400(void **state)
{
    char path[128];
    gg_api_route r;
    int http;

    (void)state;
    snprintf(path, sizeof path, "/api/v1/accounts/%s/bills", "123456789012345678901234567890123");
    assert_string_equal(route(GG_M_GET, path, &r, &http), "invalid_parameter");
    assert_int_equal(http, 400);
    assert_string_equal(route(GG_M_GET, "/api/v1/accounts//bills", &r, &http), "not_found");
    assert_string_equal(route(GG_M_GET, "/api/v1/accounts/12-34/bills", &r, &http),
                        "invalid_parameter");
    assert_string_equal(route(GG_M_GET, "/api/v1/accounts/12%2034/bills", &r, &http),
                        "invalid_parameter");
    snprintf(path, sizeof path, "/api/v1/accounts/%s/bills", "12345678901234567890123456789012");
    assert_null(route(GG_M_GET, path, &r, &http));
    assert_string_equal(r.account_no, "12345678901234567890123456789012");
}

static void test_admin_routes_only_healthz_and_metrics(void **state)
{
    gg_api_status st;
    gg_api_route r;

    (void)state;
    gg_api_match_admin(GG_M_GET, "/metrics", &r, &st);
    assert_null(st.code);
    assert_int_equal(r.id, GG_ROUTE_METRICS);
    gg_api_match_admin(GG_M_GET, "/healthz", &r, &st);
    assert_int_equal(r.id, GG_ROUTE_HEALTHZ);
    gg_api_match_admin(GG_M_POST, "/metrics", &r, &st);
    assert_int_equal(st.http, 405);
    gg_api_match_admin(GG_M_GET, "/", &r, &st);
    assert_int_equal(st.http, 404);
    gg_api_match_admin(GG_M_GET, "/api/v1/bindings", &r, &st);
    assert_int_equal(st.http, 404);
}

static void test_query_values_are_found_and_decoded(void **state)
{
    char v[16];

    (void)state;
    assert_int_equal(gg_api_query_get("from=2024-01&to=2024-06", "to", v, sizeof v), 1);
    assert_string_equal(v, "2024-06");
    assert_int_equal(gg_api_query_get("from=2024%2D01", "from", v, sizeof v), 1);
    assert_string_equal(v, "2024-01");
    assert_int_equal(gg_api_query_get("a=b+c", "a", v, sizeof v), 1);
    assert_string_equal(v, "b c");
    assert_int_equal(gg_api_query_get("fromx=1&xfrom=2", "from", v, sizeof v), 0);
    assert_int_equal(gg_api_query_get(NULL, "from", v, sizeof v), 0);
    assert_int_equal(gg_api_query_get("", "from", v, sizeof v), 0);
    assert_int_equal(gg_api_query_get("from", "from", v, sizeof v), 1);
    assert_string_equal(v, "");
    assert_int_equal(gg_api_query_get("from=2024-01&from=1999-01", "from", v, sizeof v), 1);
    assert_string_equal(v, "2024-01");
    assert_int_equal(gg_api_query_get("from=%zz", "from", v, sizeof v), -1);
    assert_int_equal(gg_api_query_get("from=a%00", "from", v, sizeof v), -1);
    assert_int_equal(gg_api_query_get("from=0123456789abcdefXYZ", "from", v, sizeof v), -1);
}

static void test_months_parse_only_yyyy_mm(void **state)
{
    char out[8];
    int m;

    (void)state;
    assert_int_equal(gg_api_parse_month("2024-01", &m), 0);
    assert_int_equal(m, 2024 * 12);
    assert_int_equal(gg_api_parse_month("2024-12", &m), 0);
    assert_int_equal(m, 2024 * 12 + 11);
    gg_api_format_month(m, out);
    assert_string_equal(out, "2024-12");
    assert_int_equal(gg_api_parse_month("2024-13", &m), -1);
    assert_int_equal(gg_api_parse_month("2024-00", &m), -1);
    assert_int_equal(gg_api_parse_month("2024-1", &m), -1);
    assert_int_equal(gg_api_parse_month("2024-011", &m), -1);
    assert_int_equal(gg_api_parse_month("2024/01", &m), -1);
    assert_int_equal(gg_api_parse_month("20a4-01", &m), -1);
    assert_int_equal(gg_api_parse_month("1969-12", &m), -1);
    assert_int_equal(gg_api_parse_month("+024-01", &m), -1);
    assert_int_equal(gg_api_parse_month("", &m), -1);
    assert_int_equal(gg_api_parse_month(NULL, &m), -1);
}

static void test_token_header_missing_overlong_or_malformed_is_401(void **state)
{
    char tok[GG_TOKEN_MAX + 2];
    gg_api_status st;

    (void)state;
    gg_api_check_token(NULL, &st);
    assert_int_equal(st.http, 401);
    assert_string_equal(st.code, "missing_token");
    gg_api_check_token("", &st);
    assert_string_equal(st.code, "missing_token");
    memset(tok, 'a', GG_TOKEN_MAX);
    tok[GG_TOKEN_MAX] = '\0';
    gg_api_check_token(tok, &st);
    assert_null(st.code);
    tok[GG_TOKEN_MAX] = 'a';
    tok[GG_TOKEN_MAX + 1] = '\0';
    gg_api_check_token(tok, &st);
    assert_int_equal(st.http, 401);
    assert_string_equal(st.code, "invalid_token");
    gg_api_check_token("gg1.abc def.xyz", &st);
    assert_string_equal(st.code, "invalid_token");
    gg_api_check_token("gg1.abc\"x", &st);
    assert_string_equal(st.code, "invalid_token");
    gg_api_check_token("gg1.eyJhIjoxfQ.c2ln-_", &st);
    assert_null(st.code);
}

/* bind_body - run gg_api_parse_bind on a C string; returns the code. */
static const char *bind_body(const char *body, gg_api_status *st, json_t **payload)
{
    gg_api_parse_bind(body, body != NULL ? strlen(body) : 0, 65536, payload, st);
    return st->code;
}

static void test_valid_binding_gives_exactly_the_four_fields(void **state)
{
    gg_api_status st;
    json_t *pl = NULL;

    (void)state;
    assert_null(bind_body("{\"portal_user_id\":\"u-1f2e:ab@x.y\",\"account_no\":\"3200012345\","
                     "\"holder_name\":\"\xe5\xbc\xa0\xe4\xb8\x89\",\"phone_last4\":\"5678\"}",
                     &st, &pl));
    assert_int_equal(st.http, 200);
    assert_non_null(pl);
    assert_int_equal(json_object_size(pl), 4);
    assert_string_equal(json_string_value(json_object_get(pl, "account_no")), "3200012345");
    assert_string_equal(json_string_value(json_object_get(pl, "holder_name")),
                        "\xe5\xbc\xa0\xe4\xb8\x89");
    assert_string_equal(json_string_value(json_object_get(pl, "phone_last4")), "5678");
    json_decref(pl);
}

static void test_binding_body_that_is_not_a_json_object_is_400(void **state)
{
    static const char *const bodies[] = {
        "", "not json", "{", "[]", "\"x\"", "42", "null", "{\"a\":1} trailing",
        "{\"account_no\":\"1\",\"account_no\":\"2\"}",
    };
    gg_api_status st;
    json_t *pl = NULL;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        assert_string_equal(bind_body(bodies[i], &st, &pl), "invalid_parameter");
        assert_int_equal(st.http, 400);
        assert_null(pl);
    }
    bind_body("[1,2]", &st, &pl);
    assert_non_null(strstr(st.message, "JSON object"));
    bind_body("{oops", &st, &pl);
    assert_non_null(strstr(st.message, "not valid JSON"));
}

static void test_binding_field_errors_name_the_field(void **state)
{
    static const struct {
        const char *body;
        const char *field;
    } cases[] = {
        { "{\"account_no\":\"1\",\"holder_name\":\"a\",\"phone_last4\":\"1234\"}",
          "portal_user_id" },
        { "{\"portal_user_id\":7,\"account_no\":\"1\",\"holder_name\":\"a\","
          "\"phone_last4\":\"1234\"}", "portal_user_id" },
        { "{\"portal_user_id\":\"u 1\",\"account_no\":\"1\",\"holder_name\":\"a\","
          "\"phone_last4\":\"1234\"}", "portal_user_id" },
        { "{\"portal_user_id\":\"u\",\"account_no\":123,\"holder_name\":\"a\","
          "\"phone_last4\":\"1234\"}", "account_no" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"123456789012345678901234567890123\","
          "\"holder_name\":\"a\",\"phone_last4\":\"1234\"}", "account_no" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"12-3\",\"holder_name\":\"a\","
          "\"phone_last4\":\"1234\"}", "account_no" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"\",\"holder_name\":\"a\","
          "\"phone_last4\":\"1234\"}", "account_no" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"\","
          "\"phone_last4\":\"1234\"}", "holder_name" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"   \","
          "\"phone_last4\":\"1234\"}", "holder_name" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"a\\nb\","
          "\"phone_last4\":\"1234\"}", "holder_name" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":null,"
          "\"phone_last4\":\"1234\"}", "holder_name" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"a\","
          "\"phone_last4\":1234}", "phone_last4" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"a\","
          "\"phone_last4\":\"12a4\"}", "phone_last4" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"a\","
          "\"phone_last4\":\"12345\"}", "phone_last4" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"a\"}",
          "phone_last4" },
        { "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"a\","
          "\"phone_last4\":\"1234\",\"admin\":true}", "admin" },
    };
    gg_api_status st;
    json_t *pl = NULL;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_string_equal(bind_body(cases[i].body, &st, &pl), "invalid_parameter");
        assert_int_equal(st.http, 400);
        assert_null(pl);
        if (strstr(st.message, cases[i].field) == NULL)
            fail_msg("case %zu: message \"%s\" does not name %s", i, st.message,
                     cases[i].field);
    }
}

static void test_binding_holder_name_longer_than_63_bytes_is_400(void **state)
{
    char body[512], name[80];
    gg_api_status st;
    json_t *pl = NULL;

    (void)state;
    memset(name, 'x', 63);
    name[63] = '\0';
    snprintf(body, sizeof body,
             "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"%s\","
             "\"phone_last4\":\"1234\"}", name);
    assert_null(bind_body(body, &st, &pl));
    json_decref(pl);
    name[63] = 'x';
    name[64] = '\0';
    snprintf(body, sizeof body,
             "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"%s\","
             "\"phone_last4\":\"1234\"}", name);
    assert_string_equal(bind_body(body, &st, &pl), "invalid_parameter");
}

static void test_binding_messages_never_echo_values(void **state)
{
    gg_api_status st;
    json_t *pl = NULL;

    (void)state;
    bind_body("{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"SECRETNAME\\u0001\","
         "\"phone_last4\":\"1234\"}", &st, &pl);
    assert_non_null(st.code);
    assert_null(strstr(st.message, "SECRETNAME"));
    bind_body("{\"portal_user_id\":\"u\",\"account_no\":\"SECRET-ACCT\",\"holder_name\":\"a\","
         "\"phone_last4\":\"1234\"}", &st, &pl);
    assert_null(strstr(st.message, "SECRET"));
    bind_body("{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"a\","
         "\"phone_last4\":\"1234\",\"x\\\"y z\":1}", &st, &pl);
    assert_null(strchr(st.message, '"'));
}

static void test_binding_with_json_nul_escape_is_400(void **state)
{
    gg_api_status st;
    json_t *pl = NULL;

    (void)state;
    assert_string_equal(bind_body("{\"portal_user_id\":\"u\",\"account_no\":\"1\\u0000\","
                             "\"holder_name\":\"a\",\"phone_last4\":\"1234\"}", &st, &pl),
                        "invalid_parameter");
}

static void test_binding_body_over_max_is_413(void **state)
{
    const char *body = "{\"portal_user_id\":\"u\",\"account_no\":\"1\",\"holder_name\":\"a\","
                       "\"phone_last4\":\"1234\"}";
    gg_api_status st;
    json_t *pl = NULL;

    (void)state;
    gg_api_parse_bind(body, strlen(body), strlen(body) - 1, &pl, &st);
    assert_int_equal(st.http, 413);
    assert_string_equal(st.code, "too_large");
    assert_null(pl);
    gg_api_parse_bind(body, strlen(body), strlen(body), &pl, &st);
    assert_null(st.code);
    json_decref(pl);
}

/* bills - run gg_api_parse_bills at 2024-06-15; returns the code. */
static const char *bills(const char *acct, const char *query, const char *token,
                         gg_api_status *st, json_t **pl)
{
    gg_api_parse_bills(acct, query, token, now_at(2024, 6), pl, st);
    return st->code;
}

static void test_bills_default_to_the_last_12_months(void **state)
{
    gg_api_status st;
    json_t *pl = NULL;

    (void)state;
    assert_null(bills("3200012345", NULL, "gg1.a.b", &st, &pl));
    assert_string_equal(json_string_value(json_object_get(pl, "from")), "2023-07");
    assert_string_equal(json_string_value(json_object_get(pl, "to")), "2024-06");
    assert_string_equal(json_string_value(json_object_get(pl, "binding_token")), "gg1.a.b");
    assert_string_equal(json_string_value(json_object_get(pl, "account_no")), "3200012345");
    assert_int_equal(json_object_size(pl), 4);
    json_decref(pl);

    assert_null(bills("3200012345", "to=2024-02", "t", &st, &pl));
    assert_string_equal(json_string_value(json_object_get(pl, "from")), "2023-03");
    json_decref(pl);
    assert_null(bills("3200012345", "from=2024-03", "t", &st, &pl));
    assert_string_equal(json_string_value(json_object_get(pl, "to")), "2024-06");
    json_decref(pl);
    assert_null(bills("3200012345", "from=2024-01&to=2024-01", "t", &st, &pl));
    assert_string_equal(json_string_value(json_object_get(pl, "from")), "2024-01");
    assert_string_equal(json_string_value(json_object_get(pl, "to")), "2024-01");
    json_decref(pl);
}

static void test_bills_bad_dates_are_400(void **state)
{
    static const char *const queries[] = {
        "from=2024-13", "to=2024-00", "from=2024-1", "from=24-01", "from=2024-01-01",
        "from=2024-06&to=2024-05", "from=2010-01&to=2024-06", "to=", "from=%zz",
        "from=2025-01",  /* after the default "to" (the current month) */
    };
    gg_api_status st;
    json_t *pl = NULL;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        const char *code = bills("3200012345", queries[i], "t", &st, &pl);

        if (code == NULL)
            fail_msg("query %s was accepted", queries[i]);
        assert_string_equal(code, "invalid_parameter");
        assert_int_equal(st.http, 400);
        assert_null(pl);
    }
    bills("1", "from=2024-06&to=2024-05", "t", &st, &pl);
    assert_non_null(strstr(st.message, "from must not be after to"));
    bills("1", "to=2024-13", "t", &st, &pl);
    assert_non_null(strstr(st.message, "to must be"));
}

static void test_bills_check_the_token_before_the_dates(void **state)
{
    gg_api_status st;
    json_t *pl = NULL;

    (void)state;
    assert_string_equal(bills("1", "from=bad", NULL, &st, &pl), "missing_token");
    assert_int_equal(st.http, 401);
    assert_string_equal(bills("1", NULL, "bad token", &st, &pl), "invalid_token");
    assert_string_equal(bills("12-3", NULL, "t", &st, &pl), "invalid_parameter");
    assert_string_equal(bills(NULL, NULL, "t", &st, &pl), "invalid_parameter");
}

static void test_reply_payload_gives_status_and_body(void **state)
{
    const char *ok = "{\"status\":201,\"body\":{\"binding_token\":\"x\"}}";
    gg_api_status st;
    char *body = NULL;
    int status;

    (void)state;
    gg_api_parse_reply(ok, strlen(ok), &status, &body, &st);
    assert_null(st.code);
    assert_int_equal(status, 201);
    assert_string_equal(body, "{\"binding_token\":\"x\"}");
    free(body);
}

static void test_malformed_reply_payload_is_502(void **state)
{
    static const char *const bad[] = {
        "", "nope", "[]", "{\"status\":200}", "{\"body\":{}}", "{\"status\":\"200\",\"body\":{}}",
        "{\"status\":99,\"body\":{}}", "{\"status\":600,\"body\":{}}",
        "{\"status\":200,\"body\":[1]}",
    };
    gg_api_status st;
    char *body = NULL;
    size_t i;
    int status;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gg_api_parse_reply(bad[i], strlen(bad[i]), &status, &body, &st);
        assert_int_equal(st.http, 502);
        assert_string_equal(st.code, "bad_gateway");
        assert_null(body);
    }
}

static void test_error_body_has_code_message_and_optional_transaction(void **state)
{
    json_error_t jerr;
    json_t *j, *e;
    char *s;

    (void)state;
    s = gg_api_error_json("not_found", "no \"such\" thing", NULL);
    j = json_loads(s, 0, &jerr);
    assert_non_null(j);
    e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "not_found");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "no \"such\" thing");
    assert_null(json_object_get(e, "transaction_id"));
    json_decref(j);
    free(s);
    s = gg_api_error_json("timeout", "late", "00ff");
    j = json_loads(s, 0, &jerr);
    e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "transaction_id")), "00ff");
    json_decref(j);
    free(s);
}

static void test_static_content_types_are_an_allow_list(void **state)
{
    (void)state;
    assert_string_equal(gg_api_content_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(gg_api_content_type("app.js"), "text/javascript; charset=utf-8");
    assert_string_equal(gg_api_content_type("style.css"), "text/css; charset=utf-8");
    assert_string_equal(gg_api_content_type("logo.svg"), "image/svg+xml");
    assert_null(gg_api_content_type("app.js.bak"));
    assert_null(gg_api_content_type("Makefile"));
    assert_null(gg_api_content_type(".js"));
    assert_null(gg_api_content_type("x.php"));
}

static void test_log_path_masks_the_account_and_strips_odd_bytes(void **state)
{
    char out[96];

    (void)state;
    assert_string_equal(gg_api_log_path("/api/v1/accounts/3200012345/bills", out, sizeof out),
                        "/api/v1/accounts/******2345/bills");
    assert_string_equal(gg_api_log_path("/api/v1/accounts/12/bills", out, sizeof out),
                        "/api/v1/accounts/12/bills");
    assert_string_equal(gg_api_log_path("/a b\"c\n", out, sizeof out), "/a?b?c?");
    assert_string_equal(gg_api_log_path("/abcdef", out, 4), "/ab");
}

static void test_pending_table_finds_removes_and_bounds(void **state)
{
    gg_pending_table *t = gg_pending_new(2);
    uint8_t a[16] = { 1 }, b[16] = { 2 }, c[16] = { 3 };
    gg_pending *pa, *pb, *pc;

    (void)state;
    assert_non_null(t);
    assert_null(gg_pending_any(t));
    assert_int_equal(gg_pending_add(t, a, &pa), GG_OK);
    assert_int_equal(gg_pending_add(t, a, &pc), GG_EEXISTS);
    assert_int_equal(gg_pending_add(t, b, &pb), GG_OK);
    assert_int_equal(gg_pending_add(t, c, &pc), GG_EFULL);
    assert_null(pc);
    assert_int_equal(gg_pending_count(t), 2);
    assert_ptr_equal(gg_pending_find(t, a), pa);
    assert_ptr_equal(gg_pending_find(t, b), pb);
    assert_null(gg_pending_find(t, c));
    gg_pending_remove(t, pa);
    assert_null(gg_pending_find(t, a));
    assert_int_equal(gg_pending_count(t), 1);
    assert_ptr_equal(gg_pending_any(t), pb);
    assert_int_equal(gg_pending_add(t, c, &pc), GG_OK);
    gg_pending_free(t);  /* frees what is left */
}

static void test_pending_ids_sharing_a_bucket_stay_apart(void **state)
{
    gg_pending_table *t = gg_pending_new(100);
    uint8_t ids[50][16];
    gg_pending *p[50];
    int i;

    (void)state;
    for (i = 0; i < 50; i++) {
        memset(ids[i], 0, 16);  /* same first 4 bytes: same bucket */
        ids[i][15] = (uint8_t)i;
        assert_int_equal(gg_pending_add(t, ids[i], &p[i]), GG_OK);
    }
    for (i = 0; i < 50; i += 2)
        gg_pending_remove(t, p[i]);
    for (i = 0; i < 50; i++) {
        if (i % 2 == 0)
            assert_null(gg_pending_find(t, ids[i]));
        else
            assert_ptr_equal(gg_pending_find(t, ids[i]), p[i]);
    }
    assert_int_equal(gg_pending_count(t), 25);
    gg_pending_free(t);
}

static void test_admin_listen_must_be_loopback(void **state)
{
    (void)state;
    assert_true(gg_portal_is_loopback_host("127.0.0.1:8082"));
    assert_true(gg_portal_is_loopback_host("127.0.0.2:0"));
    assert_true(gg_portal_is_loopback_host("[::1]:8082"));
    assert_true(gg_portal_is_loopback_host("localhost:8082"));
    assert_false(gg_portal_is_loopback_host("0.0.0.0:8082"));
    assert_false(gg_portal_is_loopback_host("10.1.2.3:8082"));
    assert_false(gg_portal_is_loopback_host("[::]:8082"));
    assert_false(gg_portal_is_loopback_host("127.0.0.1"));
    assert_false(gg_portal_is_loopback_host("127.0.0.1:99999"));
    assert_false(gg_portal_is_loopback_host(":8082"));
    assert_false(gg_portal_is_loopback_host(NULL));
}

/* usage_case - parse a usage query; returns the HTTP status, *out the payload. */
static int usage_case(const char *query, json_t **out)
{
    gg_api_status st;
    int64_t now = 1751328000000LL;  /* 2025-07-01T00:00:00Z */

    gg_api_parse_usage("3200012345", query, "gg1.abc.def", now, out, &st);
    return st.http;
}

static void test_usage_route_defaults_and_limits(void **state)
{
    gg_api_route r;
    gg_api_status st;
    json_t *p = NULL;
    long d = 0;
    char day[11];

    (void)state;
    gg_api_match(GG_M_GET, "/api/v1/accounts/3200012345/usage", &r, &st);
    assert_int_equal(r.id, GG_ROUTE_USAGE);
    assert_string_equal(r.account_no, "3200012345");
    gg_api_match(GG_M_POST, "/api/v1/accounts/3200012345/usage", &r, &st);
    assert_int_equal(st.http, 405);
    assert_int_equal(usage_case(NULL, &p), 200);
    assert_string_equal(json_string_value(json_object_get(p, "granularity")), "month");
    json_decref(p);
    assert_int_equal(usage_case("granularity=day&from=2024-02-01&to=2024-02-29", &p), 200);
    assert_string_equal(json_string_value(json_object_get(p, "to")), "2024-02-29");
    json_decref(p);
    assert_int_equal(usage_case("granularity=day&to=2024-03-01", &p), 200);
    assert_string_equal(json_string_value(json_object_get(p, "from")), "2024-02-01");  /* 29 days back */
    json_decref(p);
    assert_int_equal(usage_case("granularity=day&from=2023-02-29", &p), 400);
    assert_int_equal(usage_case("granularity=day&from=2024-01-01&to=2024-12-31", &p), 200);
    json_decref(p);
    assert_int_equal(usage_case("granularity=day&from=2024-01-01&to=2025-01-01", &p), 400);
    assert_int_equal(usage_case("granularity=month&from=2015-01&to=2024-12", &p), 200);
    json_decref(p);
    assert_int_equal(usage_case("granularity=month&from=2014-12&to=2024-12", &p), 400);
    assert_int_equal(usage_case("granularity=hour", &p), 400);
    assert_int_equal(usage_case("granularity=day&from=2024-03-02&to=2024-03-01", &p), 400);
    assert_int_equal(gg_api_parse_day("1970-01-01", &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(gg_api_parse_day("2000-03-01", &d), 0);
    assert_int_equal(d, 11017);
    gg_api_format_day(11017, day);
    assert_string_equal(day, "2000-03-01");
    gg_api_format_day(19782, day);
    assert_string_equal(day, "2024-02-29");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_paths_route_to_their_handlers),
        cmocka_unit_test(test_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_delete_bindings_routes_to_unbind_with_the_token),
        cmocka_unit_test(test_unknown_paths_are_404),
        cmocka_unit_test(test_path_traversal_forms_are_refused),
        cmocka_unit_test(test_encoded_nul_and_bad_escapes_are_400),
        cmocka_unit_test(test_bad_account_in_path_is_400),
        cmocka_unit_test(test_admin_routes_only_healthz_and_metrics),
        cmocka_unit_test(test_query_values_are_found_and_decoded),
        cmocka_unit_test(test_months_parse_only_yyyy_mm),
        cmocka_unit_test(test_token_header_missing_overlong_or_malformed_is_401),
        cmocka_unit_test(test_valid_binding_gives_exactly_the_four_fields),
        cmocka_unit_test(test_binding_body_that_is_not_a_json_object_is_400),
        cmocka_unit_test(test_binding_field_errors_name_the_field),
        cmocka_unit_test(test_binding_holder_name_longer_than_63_bytes_is_400),
        cmocka_unit_test(test_binding_messages_never_echo_values),
        cmocka_unit_test(test_binding_with_json_nul_escape_is_400),
        cmocka_unit_test(test_binding_body_over_max_is_413),
        cmocka_unit_test(test_bills_default_to_the_last_12_months),
        cmocka_unit_test(test_bills_bad_dates_are_400),
        cmocka_unit_test(test_bills_check_the_token_before_the_dates),
        cmocka_unit_test(test_reply_payload_gives_status_and_body),
        cmocka_unit_test(test_malformed_reply_payload_is_502),
        cmocka_unit_test(test_error_body_has_code_message_and_optional_transaction),
        cmocka_unit_test(test_static_content_types_are_an_allow_list),
        cmocka_unit_test(test_log_path_masks_the_account_and_strips_odd_bytes),
        cmocka_unit_test(test_pending_table_finds_removes_and_bounds),
        cmocka_unit_test(test_pending_ids_sharing_a_bucket_stay_apart),
        cmocka_unit_test(test_admin_listen_must_be_loopback),
        cmocka_unit_test(test_usage_route_defaults_and_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
