/* test_shed.c - the portal's shedding rule (src/portal/shed.c).
 *
 * Below the minimum nothing is shed; with a measured reply rate a backlog
 * that drains within three quarters of the budget is accepted and a deeper
 * one refused with Retry-After the seconds the excess needs at that rate;
 * with no reply measured only a blind backlog is refused; replies age out
 * of the window; disabled sheds nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "portal/shed.h"

#define SEC 1000000LL

/* replies - n replies spread evenly over [t0, t0 + span_us). */
static void replies(gg_shed *s, int n, int64_t t0, int64_t span_us)
{
    for (int i = 0; i < n; i++)
        gg_shed_reply(s, t0 + span_us * i / n);
}

static void test_backlog_within_budget_is_accepted_deeper_is_refused(void **state)
{
    gg_shed *s = gg_shed_new(1, 2000);  /* budget 2 s: 1.5 s of queue */
    int64_t t0 = 100 * SEC;
    int ra = -1;

    (void)state;
    replies(s, 200, t0, 2 * SEC);        /* 100 replies/s */
    assert_true(gg_shed_rate(s, t0 + 2 * SEC) > 80 && gg_shed_rate(s, t0 + 2 * SEC) < 120);
    assert_int_equal(gg_shed_check(s, 5, t0 + 2 * SEC, &ra), 0);     /* under the minimum */
    assert_int_equal(gg_shed_check(s, 140, t0 + 2 * SEC, &ra), 0);   /* 1.4 s: fine */
    assert_int_equal(gg_shed_count(s), 0);
    assert_int_equal(gg_shed_check(s, 600, t0 + 2 * SEC, &ra), 1);   /* 6 s of queue */
    assert_true(ra >= 4 && ra <= 5);                                  /* 6 - 1.5 s */
    assert_int_equal(gg_shed_count(s), 1);
    gg_shed_free(s);
}

static void test_without_replies_only_a_blind_backlog_is_refused(void **state)
{
    gg_shed *s = gg_shed_new(1, 3000);
    int ra = -1;

    (void)state;
    assert_int_equal(gg_shed_check(s, SHED_BLIND_PENDING - 1, 10 * SEC, &ra), 0);
    assert_int_equal(gg_shed_check(s, SHED_BLIND_PENDING, 10 * SEC, &ra), 1);
    assert_int_equal(ra, 3);
    replies(s, 50, 10 * SEC, SEC);
    assert_true(gg_shed_rate(s, 12 * SEC) > 0);
    assert_true(gg_shed_rate(s, 20 * SEC) == 0);                       /* aged out */
    gg_shed_free(s);
}

static void test_disabled_sheds_nothing(void **state)
{
    gg_shed *s = gg_shed_new(0, 1000);
    int ra = -1;

    (void)state;
    assert_int_equal(gg_shed_check(s, 100000, 10 * SEC, &ra), 0);
    gg_shed_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backlog_within_budget_is_accepted_deeper_is_refused),
        cmocka_unit_test(test_without_replies_only_a_blind_backlog_is_refused),
        cmocka_unit_test(test_disabled_sheds_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
