/* test_allow.c - the channel's CIDR allow-list: strict parsing, matching
 * by prefix, IPv4-mapped IPv6 peers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "channel/allow.h"

/* v4 - a sockaddr_in for ip. */
static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in s;
    memset(&s, 0, sizeof s);
    s.sin_family = AF_INET;
    s.sin_port = htons(4000);
    assert_int_equal(inet_pton(AF_INET, ip, &s.sin_addr), 1);
    return s;
}

/* v6 - a sockaddr_in6 for ip. */
static struct sockaddr_in6 v6(const char *ip)
{
    struct sockaddr_in6 s;
    memset(&s, 0, sizeof s);
    s.sin6_family = AF_INET6;
    s.sin6_port = htons(4000);
    assert_int_equal(inet_pton(AF_INET6, ip, &s.sin6_addr), 1);
    return s;
}

/* allows - whether list a lets ip in (either family). */
static int allows(const gg_allow *a, const char *ip)
{
    if (strchr(ip, ':')) {
        struct sockaddr_in6 s = v6(ip);
        return gg_allow_check(a, (struct sockaddr *)&s);
    }
    struct sockaddr_in s = v4(ip);
    return gg_allow_check(a, (struct sockaddr *)&s);
}

static void test_cidr_parse_accepts_good_entries(void **state)
{
    (void)state;
    gg_allow *a = NULL;
    char err[200];
    assert_int_equal(gg_allow_parse("127.0.0.1/32, 10.0.0.0/8,192.168.1.0/24 ,\t::1,"
                                    "2001:db8::/32,0.0.0.0/0,172.16.5.4",
                                    &a, err, sizeof err),
                     GG_OK);
    assert_int_equal(gg_allow_count(a), 7);
    gg_allow_free(a);
}

static void test_cidr_parse_rejects_bad_entries(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",              /* empty list */
        " ",             /* blank entry */
        "10.0.0.0/33",   /* prefix too long */
        "10.0.0.1/8",    /* host bits set */
        "abc",           /* not an address */
        "10.0.0.0/",     /* missing prefix */
        "10.0.0.0/08",   /* leading zero */
        "10.0.0.0/-1",   /* sign */
        "10.0.0.0/ 8",   /* blank in prefix */
        "1.2.3.4,",      /* trailing empty entry */
        ",1.2.3.4",      /* leading empty entry */
        "1.2.3.4,,5.6.7.8",
        "::1/129",
        "2001:db8::1/32", /* host bits set */
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.4/32/1",
        "fe80::1%eth0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gg_allow *a = NULL;
        char err[200] = "";
        gg_err e = gg_allow_parse(bad[i], &a, err, sizeof err);
        if (e != GG_ECONFIG)
            fail_msg("accepted bad allow list \"%s\"", bad[i]);
        assert_null(a);
        assert_true(strlen(err) > 0);
    }
    gg_allow *a = NULL;
    char err[64];
    assert_int_equal(gg_allow_parse(NULL, &a, err, sizeof err), GG_ECONFIG);
    assert_null(a);
}

static void test_parse_error_names_the_entry(void **state)
{
    (void)state;
    gg_allow *a = NULL;
    char err[200] = "";
    assert_int_equal(gg_allow_parse("127.0.0.1/32, 10.9.8.7/16", &a, err, sizeof err),
                     GG_ECONFIG);
    assert_non_null(strstr(err, "10.9.8.7"));
}

static void test_check_matches_by_prefix(void **state)
{
    (void)state;
    gg_allow *a = NULL;
    char err[200];
    assert_int_equal(gg_allow_parse("10.0.0.0/8,192.168.1.128/25,2001:db8::/32,127.0.0.1",
                                    &a, err, sizeof err),
                     GG_OK);
    assert_true(allows(a, "10.0.0.0"));
    assert_true(allows(a, "10.255.1.2"));
    assert_false(allows(a, "11.0.0.1"));
    assert_true(allows(a, "192.168.1.128"));
    assert_true(allows(a, "192.168.1.255"));
    assert_false(allows(a, "192.168.1.127"));
    assert_true(allows(a, "127.0.0.1"));
    assert_false(allows(a, "127.0.0.2"));
    assert_true(allows(a, "2001:db8:ffff::1"));
    assert_false(allows(a, "2001:db9::1"));
    assert_false(allows(a, "::1"));
    /* An IPv4 peer on a dual-stack socket. */
    assert_true(allows(a, "::ffff:10.1.2.3"));
    assert_false(allows(a, "::ffff:11.1.2.3"));
    /* Other families never match. */
    struct sockaddr sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_family = AF_UNIX;
    assert_false(gg_allow_check(a, &sa));
    gg_allow_free(a);
}

static void test_zero_prefix_matches_its_family_only(void **state)
{
    (void)state;
    gg_allow *a = NULL;
    char err[200];
    assert_int_equal(gg_allow_parse("0.0.0.0/0", &a, err, sizeof err), GG_OK);
    assert_true(allows(a, "203.0.113.9"));
    assert_false(allows(a, "2001:db8::1"));
    gg_allow_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_parse_accepts_good_entries),
        cmocka_unit_test(test_cidr_parse_rejects_bad_entries),
        cmocka_unit_test(test_parse_error_names_the_entry),
        cmocka_unit_test(test_check_matches_by_prefix),
        cmocka_unit_test(test_zero_prefix_matches_its_family_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
