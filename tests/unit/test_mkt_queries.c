/* test_mkt_queries.c - the queries file of the PostgreSQL adapter.
 *
 * The shipped etc/marketing-queries.pg.ini holds exactly the built-in
 * statements; a rewritten file overrides by name; every malformed file
 * (unknown name, wrong parameters, duplicate, SQL outside a section, too
 * long) is refused with the line; parameter counting ignores quotes and
 * comments; an unreachable server is GG_EIO, not a crash or a hang.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "marketing/marketing.h"
#include "marketing/pg.h"
#include "marketing/queries.h"

/* squash - collapse runs of white space to one space, in place. */
static void squash(char *s)
{
    char *o = s;
    int sp = 0;

    for (; *s; s++) {
        if (*s == ' ' || *s == '\n' || *s == '\t') {
            sp = 1;
            continue;
        }
        if (sp && o != s && o[-1] != '\0')
            *o++ = ' ';
        sp = 0;
        *o++ = *s;
    }
    *o = '\0';
}

static void test_shipped_file_equals_builtin_statements(void **state)
{
    size_t n;
    const gg_mkt_qdef *d = gg_mkt_pg_defaults(&n);
    gg_mkt_queries *q = NULL;
    char why[256] = "";

    (void)state;
    assert_int_equal(gg_mkt_queries_load(GG_SOURCE_DIR "/etc/marketing-queries.pg.ini", d, n, &q,
                                         why, sizeof why),
                     GG_OK);
    for (size_t i = 0; i < n; i++) {
        char *a = strdup(gg_mkt_queries_sql(q, i)), *b = strdup(d[i].sql);

        squash(a);
        squash(b);
        if (strcmp(a, b) != 0)
            fail_msg("statement %s differs from the built-in one:\n%s\n%s", d[i].name, a, b);
        assert_true(gg_mkt_params_ok(d[i].sql, d[i].nparams));
        free(a);
        free(b);
    }
    gg_mkt_queries_free(q);
}

static const gg_mkt_qdef defs[] = {
    { "account", 1, "SELECT * FROM accounts WHERE account_no = $1" },
    { "bills", 3, "SELECT * FROM bills WHERE a = $1 AND b >= $2 AND b <= $3" },
};

static void test_file_overrides_by_name_and_keeps_the_rest(void **state)
{
    gg_mkt_queries *q = NULL;
    char why[256] = "";
    const char *text = "# ours\n[bills]\n  SELECT x FROM v_bills\n  WHERE k = $1 AND p BETWEEN $2 AND $3;\n\n";

    (void)state;
    assert_int_equal(gg_mkt_queries_parse(text, "t", defs, 2, &q, why, sizeof why), GG_OK);
    assert_string_equal(gg_mkt_queries_sql(q, 0), defs[0].sql);
    assert_string_equal(gg_mkt_queries_sql(q, 1),
                        "SELECT x FROM v_bills\nWHERE k = $1 AND p BETWEEN $2 AND $3");
    assert_null(gg_mkt_queries_sql(q, 2));
    gg_mkt_queries_free(q);
}

static void expect_refused(const char *text, const char *needle)
{
    gg_mkt_queries *q = NULL;
    char why[256] = "";

    assert_int_equal(gg_mkt_queries_parse(text, "f.ini", defs, 2, &q, why, sizeof why),
                     GG_ECONFIG);
    assert_null(q);
    if (strstr(why, needle) == NULL)
        fail_msg("reason '%s' lacks '%s'", why, needle);
}

static void test_malformed_files_are_refused_with_the_line(void **state)
{
    static char big[GG_MKT_SQL_MAX + 64];

    (void)state;
    expect_refused("[nosuch]\nSELECT 1\n", "f.ini:1: unknown statement");
    expect_refused("\n[account]\nSELECT 1\n", "f.ini:2: statement [account] must use");
    expect_refused("[account]\nSELECT $1, $2\n", "must use exactly the parameters $1..$1");
    expect_refused("[bills]\nSELECT $1, $3\n", "$1..$3");
    expect_refused("[account]\nSELECT $1\n[account]\nSELECT $1\n", "f.ini:3: statement [account] given twice");
    expect_refused("SELECT 1\n[account]\nSELECT $1\n", "f.ini:1: SQL before");
    expect_refused("[account]\n\n[bills]\nSELECT $1,$2,$3\n", "is empty");
    expect_refused("[account\nSELECT $1\n", "malformed section");
    memcpy(big, "[account]\nSELECT $1 ", 20);
    memset(big + 20, 'x', sizeof big - 21);
    big[sizeof big - 1] = '\0';
    expect_refused(big, "is over");
}

static void test_parameters_in_quotes_and_comments_do_not_count(void **state)
{
    (void)state;
    assert_true(gg_mkt_params_ok("SELECT '$2' FROM t WHERE a = $1 -- $3\n", 1));
    assert_true(gg_mkt_params_ok("SELECT \"$9\" FROM t WHERE a = $1 AND b = $2", 2));
    assert_false(gg_mkt_params_ok("SELECT 1", 1));
    assert_false(gg_mkt_params_ok("SELECT $0, $1", 1));
    assert_true(gg_mkt_params_ok("SELECT $2 || $1 || $2", 2));
    assert_true(gg_mkt_params_ok("SELECT 1", 0));
}

static void test_unreachable_server_is_an_io_error(void **state)
{
    gg_mkt *m = NULL;

    (void)state;
    assert_int_equal(gg_mkt_open_pg("host=127.0.0.1 port=1 connect_timeout=2 dbname=x user=x",
                                    NULL, &m),
                     GG_EIO);
    assert_null(m);
    assert_int_equal(gg_mkt_open_pg("host=127.0.0.1 port=1", "/nonexistent/q.ini", &m),
                     GG_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_file_equals_builtin_statements),
        cmocka_unit_test(test_file_overrides_by_name_and_keeps_the_rest),
        cmocka_unit_test(test_malformed_files_are_refused_with_the_line),
        cmocka_unit_test(test_parameters_in_quotes_and_comments_do_not_count),
        cmocka_unit_test(test_unreachable_server_is_an_io_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
