/* test_portal_sender.c - the portal's request puts off the loop (sender.h):
 * the loop keeps running while puts are slow, puts run concurrently, each
 * result (success or failure) reaches done on the loop, and stop reports
 * every job not yet reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "portal/sender.h"

#define SLOW_US 150000

typedef struct fx {
    struct event_base *base;
    struct event *tick;
    pthread_t loop_thread;
    int ticks;                /* loop timer ticks (loop thread) */
    int done;                 /* jobs reported */
    int failed;               /* of which with an error */
    int expect;               /* stop the loop after this many */
    int wrong_thread;         /* done ran off the loop thread */
    int data_ok;              /* every job carried its envelope */
    int next_seq;
} fx;

/* put_slow - a put that takes SLOW_US; dest "bad" fails with GG_EIO. */
static gg_err put_slow(void *ctx, const char *dest, const void *data, size_t len,
                       int64_t expiry_ms)
{
    (void)ctx;
    (void)data;
    (void)len;
    (void)expiry_ms;
    usleep(SLOW_US);
    return strcmp(dest, "bad") == 0 ? GG_EIO : GG_OK;
}

/* on_done - count, check the thread, stop the loop when all are in. */
static void on_done(void *arg, gg_psend_job *job)
{
    fx *f = arg;

    if (f->loop_thread != 0 && !pthread_equal(pthread_self(), f->loop_thread))
        f->wrong_thread++;
    f->done++;
    if (job->result != GG_OK)
        f->failed++;
    if (job->len != 4 || memcmp(job->data, "env", 4) != 0)
        f->data_ok = 0;
    if (f->done == f->expect)
        event_base_loopbreak(f->base);
}

/* on_tick - the loop is alive. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    fx *f = arg;

    (void)fd;
    (void)what;
    f->ticks++;
}

/* job_new - a job for dest carrying "env". */
static gg_psend_job *job_new(const char *dest)
{
    gg_psend_job *j = calloc(1, sizeof *j);

    assert_non_null(j);
    j->data = malloc(4);
    assert_non_null(j->data);
    memcpy(j->data, "env", 4);
    j->len = 4;
    strcpy(j->dest, dest);
    strcpy(j->txn, "bills.query");
    return j;
}

/* now_ms - monotonic ms. */
static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    struct timeval tv = { 0, 5000 };

    gg_log_set_level(GG_LOG_WARN);
    assert_int_equal(evthread_use_pthreads(), 0);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, f);
    assert_non_null(f->tick);
    assert_int_equal(event_add(f->tick, &tv), 0);
    f->data_ok = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    event_free(f->tick);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void test_loop_runs_while_puts_are_slow(void **state)
{
    fx *f = *state;
    gg_psend *s = NULL;
    int64_t t0;
    int i;

    assert_int_equal(gg_psend_start(f->base, 8, put_slow, NULL, on_done, f, &s), GG_OK);
    f->loop_thread = pthread_self();
    f->expect = 8;
    t0 = now_ms();
    for (i = 0; i < 8; i++)
        assert_int_equal(gg_psend_submit(s, job_new("requests")), GG_OK);
    assert_int_equal(gg_psend_inflight(s), 8);
    /* submit returned at once: nothing waited for a put */
    assert_true(now_ms() - t0 < SLOW_US / 1000);
    event_base_dispatch(f->base);
    assert_int_equal(f->done, 8);
    assert_int_equal(f->failed, 0);
    assert_int_equal(f->wrong_thread, 0);
    assert_true(f->data_ok);
    assert_int_equal(gg_psend_inflight(s), 0);
    /* the eight puts ran side by side (one after another would take 1.2 s),
     * and the loop kept ticking meanwhile */
    assert_true(now_ms() - t0 < 8 * SLOW_US / 1000);
    assert_true(f->ticks >= 5);
    gg_psend_stop(s);
}

static void test_failed_put_is_reported(void **state)
{
    fx *f = *state;
    gg_psend *s = NULL;

    assert_int_equal(gg_psend_start(f->base, 2, put_slow, NULL, on_done, f, &s), GG_OK);
    f->loop_thread = pthread_self();
    f->expect = 3;
    assert_int_equal(gg_psend_submit(s, job_new("bad")), GG_OK);
    assert_int_equal(gg_psend_submit(s, job_new("requests")), GG_OK);
    assert_int_equal(gg_psend_submit(s, job_new("bad")), GG_OK);
    event_base_dispatch(f->base);
    assert_int_equal(f->done, 3);
    assert_int_equal(f->failed, 2);
    gg_psend_stop(s);
}

static void test_stop_reports_every_job(void **state)
{
    fx *f = *state;
    gg_psend *s = NULL;
    int i;

    assert_int_equal(gg_psend_start(f->base, 1, put_slow, NULL, on_done, f, &s), GG_OK);
    f->expect = -1;
    for (i = 0; i < 3; i++)
        assert_int_equal(gg_psend_submit(s, job_new(i == 1 ? "bad" : "requests")), GG_OK);
    /* the loop never runs: stop finishes the queued puts and reports them */
    gg_psend_stop(s);
    assert_int_equal(f->done, 3);
    assert_int_equal(f->failed, 1);
}

static void test_bad_arguments_are_refused(void **state)
{
    fx *f = *state;
    gg_psend *s = (gg_psend *)1;

    assert_int_equal(gg_psend_start(f->base, 0, put_slow, NULL, on_done, f, &s), GG_EINVAL);
    assert_null(s);
    assert_int_equal(gg_psend_start(f->base, 2, NULL, NULL, on_done, f, &s), GG_EINVAL);
    gg_psend_stop(NULL);
    gg_psend_job_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loop_runs_while_puts_are_slow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_put_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_reports_every_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_are_refused, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
