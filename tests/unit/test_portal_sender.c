/* test_portal_sender.c - the portal's request seals and puts off the loop
 * (sender.h): the loop keeps running while preps (seals) and puts are
 * slow, both run concurrently on the sender threads, each result (success
 * or failure, of the prep or the put) reaches done on the loop, what prep
 * made is visible to the loop before the put is reported, and stop
 * reports every job not yet reported; in batches, the jobs waiting are
 * sealed and put together, and a batch that fails falls back to one job
 * at a time, so each job gets its own result. */
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
    int prep_on_loop;         /* prep ran on the loop thread */
    pthread_mutex_t gate_mu;  /* holds puts back while closed */
    pthread_cond_t gate_cv;
    int gate_open;
    int at_gate;              /* puts waiting at the gate */
    size_t prep_batches[8];   /* sizes of the prep_many calls */
    size_t put_batches[8];    /* sizes of the put_many calls */
    int nprep, nput;
    int bad_eio;              /* jobs for "bad" that failed with the put's own GG_EIO */
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

/* prep_slow - sealing that takes SLOW_US: "env" as the envelope, its
 * hash all 0xab; txn "unsealable" fails with GG_ETOOBIG. */
static gg_err prep_slow(void *ctx, gg_psend_job *job)
{
    fx *f = ctx;

    if (f->loop_thread != 0 && pthread_equal(pthread_self(), f->loop_thread))
        f->prep_on_loop++;
    usleep(SLOW_US);
    if (strcmp(job->hdr.txn, "unsealable") == 0)
        return GG_ETOOBIG;
    job->data = malloc(4);
    if (job->data == NULL)
        return GG_ENOMEM;
    memcpy(job->data, "env", 4);
    job->len = 4;
    memset(job->req_hash, 0xab, sizeof job->req_hash);
    return GG_OK;
}

/* put_gated - a put that waits until the test opens the gate. */
static gg_err put_gated(void *ctx, const char *dest, const void *data, size_t len,
                        int64_t expiry_ms)
{
    fx *f = ctx;

    (void)dest;
    (void)data;
    (void)len;
    (void)expiry_ms;
    pthread_mutex_lock(&f->gate_mu);
    f->at_gate++;
    while (!f->gate_open)
        pthread_cond_wait(&f->gate_cv, &f->gate_mu);
    f->at_gate--;
    pthread_mutex_unlock(&f->gate_mu);
    return strcmp(dest, "bad") == 0 ? GG_EIO : GG_OK;
}

/* wait_at_gate - until a put waits at the closed gate. */
static void wait_at_gate(fx *f)
{
    int n;

    do {
        usleep(1000);
        pthread_mutex_lock(&f->gate_mu);
        n = f->at_gate;
        pthread_mutex_unlock(&f->gate_mu);
    } while (n == 0);
}

/* prep_many_fx - seals as prep_slow does, all or none: any "unsealable"
 * fails the batch. Records the batch size. */
static gg_err prep_many_fx(void *ctx, gg_psend_job **jobs, size_t n)
{
    fx *f = ctx;
    size_t i;

    if (f->nprep < 8)
        f->prep_batches[f->nprep++] = n;
    for (i = 0; i < n; i++)
        if (strcmp(jobs[i]->hdr.txn, "unsealable") == 0)
            return GG_ETOOBIG;
    for (i = 0; i < n; i++) {
        jobs[i]->data = malloc(4);
        assert_non_null(jobs[i]->data);
        memcpy(jobs[i]->data, "env", 4);
        jobs[i]->len = 4;
        memset(jobs[i]->req_hash, 0xab, sizeof jobs[i]->req_hash);
    }
    return GG_OK;
}

/* put_many_fx - all or none: a "bad" destination fails the batch. */
static gg_err put_many_fx(void *ctx, gg_psend_job **jobs, size_t n)
{
    fx *f = ctx;
    size_t i;

    if (f->nput < 8)
        f->put_batches[f->nput++] = n;
    for (i = 0; i < n; i++)
        if (strcmp(jobs[i]->dest, "bad") == 0)
            return GG_EFULL;
    return GG_OK;
}

/* open_gate - let every gated put finish. */
static void open_gate(fx *f)
{
    pthread_mutex_lock(&f->gate_mu);
    f->gate_open = 1;
    pthread_cond_broadcast(&f->gate_cv);
    pthread_mutex_unlock(&f->gate_mu);
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
    if (strcmp(job->dest, "bad") == 0 && job->result == GG_EIO)
        f->bad_eio++;
    if (job->result == GG_OK && (job->len != 4 || memcmp(job->data, "env", 4) != 0))
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
    strcpy(j->hdr.txn, "bills.query");
    return j;
}

/* job_unsealed - a job for "requests" of txn carrying payload text only. */
static gg_psend_job *job_unsealed(const char *txn)
{
    gg_psend_job *j = calloc(1, sizeof *j);

    assert_non_null(j);
    j->pt = strdup("{\"token\":\"secret\"}");
    assert_non_null(j->pt);
    j->ptlen = strlen(j->pt);
    strcpy(j->dest, "requests");
    strcpy(j->hdr.txn, txn);
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
    pthread_mutex_init(&f->gate_mu, NULL);
    pthread_cond_init(&f->gate_cv, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    event_free(f->tick);
    event_base_free(f->base);
    pthread_cond_destroy(&f->gate_cv);
    pthread_mutex_destroy(&f->gate_mu);
    free(f);
    return 0;
}

static void test_loop_runs_while_puts_are_slow(void **state)
{
    fx *f = *state;
    gg_psend *s = NULL;
    int64_t t0;
    int i;

    assert_int_equal(gg_psend_start(f->base, 8, NULL, put_slow, NULL, on_done, f, &s), GG_OK);
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

    assert_int_equal(gg_psend_start(f->base, 2, NULL, put_slow, NULL, on_done, f, &s), GG_OK);
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

    assert_int_equal(gg_psend_start(f->base, 1, NULL, put_slow, NULL, on_done, f, &s), GG_OK);
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

    assert_int_equal(gg_psend_start(f->base, 0, NULL, put_slow, NULL, on_done, f, &s),
                     GG_EINVAL);
    assert_null(s);
    assert_int_equal(gg_psend_start(f->base, 2, prep_slow, NULL, f, on_done, f, &s), GG_EINVAL);
    gg_psend_stop(NULL);
    gg_psend_job_free(NULL);
}

static void test_seals_run_side_by_side_off_the_loop(void **state)
{
    fx *f = *state;
    gg_psend *s = NULL;
    int64_t t0;
    int i;

    assert_int_equal(gg_psend_start(f->base, 8, prep_slow, put_slow, f, on_done, f, &s), GG_OK);
    f->loop_thread = pthread_self();
    f->expect = 8;
    t0 = now_ms();
    for (i = 0; i < 8; i++)
        assert_int_equal(gg_psend_submit(s, job_unsealed("bills.query")), GG_OK);
    assert_true(now_ms() - t0 < SLOW_US / 1000);  /* the loop sealed nothing */
    assert_int_equal(gg_psend_inflight(s), 8);
    event_base_dispatch(f->base);
    assert_int_equal(f->done, 8);
    assert_int_equal(f->failed, 0);
    assert_int_equal(f->prep_on_loop, 0);
    assert_true(f->data_ok);
    /* eight seals and eight puts one after another would take 2.4 s */
    assert_true(now_ms() - t0 < 8 * SLOW_US / 1000);
    assert_true(f->ticks >= 5);
    gg_psend_stop(s);
}

/* on_done_unsealed - a failed prep skipped its put; the others ran both. */
static void on_done_unsealed(void *arg, gg_psend_job *job)
{
    fx *f = arg;

    if (strcmp(job->hdr.txn, "unsealable") == 0 &&
        (job->result != GG_ETOOBIG || job->prepared || job->data != NULL))
        f->data_ok = 0;
    if (strcmp(job->hdr.txn, "unsealable") != 0 && (job->result != GG_OK || !job->prepared))
        f->data_ok = 0;
    on_done(arg, job);
}

static void test_failed_seal_skips_the_put_and_is_reported(void **state)
{
    fx *f = *state;
    gg_psend *s = NULL;

    f->gate_open = 1;
    assert_int_equal(gg_psend_start(f->base, 2, prep_slow, put_gated, f, on_done_unsealed, f,
                                     &s), GG_OK);
    f->loop_thread = pthread_self();
    f->expect = 2;
    assert_int_equal(gg_psend_submit(s, job_unsealed("unsealable")), GG_OK);
    assert_int_equal(gg_psend_submit(s, job_unsealed("bills.query")), GG_OK);
    event_base_dispatch(f->base);
    assert_int_equal(f->done, 2);
    assert_int_equal(f->failed, 1);
    assert_true(f->data_ok);
    gg_psend_stop(s);
}

/* on_poll - until the job's prep is seen: check gg_psend_prepared. */
typedef struct poll_arg {
    fx *f;
    gg_psend *s;
    gg_psend_job *job;
    int seen;          /* prepared seen, with the right hash, before done */
    int polls;
} poll_arg;

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    poll_arg *pa = arg;
    uint8_t hash[GG_ENV_HASH_LEN];
    uint8_t want[GG_ENV_HASH_LEN];

    (void)fd;
    (void)what;
    pa->polls++;
    memset(hash, 0, sizeof hash);
    memset(want, 0xab, sizeof want);
    if (!pa->seen && gg_psend_prepared(pa->s, pa->job, hash)) {
        if (memcmp(hash, want, sizeof hash) == 0)
            pa->seen = 1;
        open_gate(pa->f);  /* now let the put finish */
    }
    if (pa->polls > 2000)
        open_gate(pa->f);  /* never seen: fail, but do not hang */
}

static void test_prepared_hash_is_seen_before_the_put_is_done(void **state)
{
    fx *f = *state;
    gg_psend *s = NULL;
    struct event *poll;
    struct timeval tv = { 0, 2000 };
    poll_arg pa;
    uint8_t hash[GG_ENV_HASH_LEN];

    memset(&pa, 0, sizeof pa);
    assert_int_equal(gg_psend_start(f->base, 1, prep_slow, put_gated, f, on_done, f, &s),
                     GG_OK);
    f->loop_thread = pthread_self();
    f->expect = 1;
    pa.f = f;
    pa.s = s;
    pa.job = job_unsealed("bills.query");
    assert_int_equal(gg_psend_submit(s, pa.job), GG_OK);
    assert_int_equal(gg_psend_prepared(s, pa.job, hash), 0);  /* still sealing */
    poll = event_new(f->base, -1, EV_PERSIST, on_poll, &pa);
    assert_non_null(poll);
    assert_int_equal(event_add(poll, &tv), 0);
    event_base_dispatch(f->base);   /* the put waits for the gate: done comes after */
    event_free(poll);
    assert_int_equal(f->done, 1);
    assert_int_equal(f->failed, 0);
    assert_true(pa.seen);
    gg_psend_stop(s);
}

/* job_to - an unsealed job of txn for dest. */
static gg_psend_job *job_to(const char *txn, const char *dest)
{
    gg_psend_job *j = job_unsealed(txn);

    strcpy(j->dest, dest);
    return j;
}

static void test_waiting_jobs_are_sealed_and_put_together(void **state)
{
    fx *f = *state;
    gg_psend *s = NULL;
    int i;

    assert_int_equal(gg_psend_start(f->base, 1, prep_slow, put_gated, f, on_done_unsealed, f,
                                     &s), GG_OK);
    gg_psend_set_batch(s, 2, prep_many_fx, put_many_fx);
    f->loop_thread = pthread_self();
    f->expect = 5;
    assert_int_equal(gg_psend_submit(s, job_unsealed("bills.query")), GG_OK);
    wait_at_gate(f);  /* the one thread holds the first job alone */
    for (i = 0; i < 4; i++)
        assert_int_equal(gg_psend_submit(s, job_unsealed("bills.query")), GG_OK);
    open_gate(f);
    event_base_dispatch(f->base);
    assert_int_equal(f->done, 5);
    assert_int_equal(f->failed, 0);
    assert_true(f->data_ok);
    /* the four that waited went two by two (the batch maximum) */
    assert_int_equal(f->nprep, 2);
    assert_int_equal(f->prep_batches[0], 2);
    assert_int_equal(f->prep_batches[1], 2);
    assert_int_equal(f->nput, 2);
    assert_int_equal(f->put_batches[0], 2);
    assert_int_equal(f->put_batches[1], 2);
    gg_psend_stop(s);
}

static void test_failed_batch_gives_each_job_its_own_result(void **state)
{
    fx *f = *state;
    gg_psend *s = NULL;

    assert_int_equal(gg_psend_start(f->base, 1, prep_slow, put_gated, f, on_done_unsealed, f,
                                     &s), GG_OK);
    gg_psend_set_batch(s, 64, prep_many_fx, put_many_fx);
    f->loop_thread = pthread_self();
    f->expect = 5;
    assert_int_equal(gg_psend_submit(s, job_unsealed("bills.query")), GG_OK);
    wait_at_gate(f);
    assert_int_equal(gg_psend_submit(s, job_unsealed("bills.query")), GG_OK);
    assert_int_equal(gg_psend_submit(s, job_unsealed("unsealable")), GG_OK);
    assert_int_equal(gg_psend_submit(s, job_to("bills.query", "bad")), GG_OK);
    assert_int_equal(gg_psend_submit(s, job_unsealed("bills.query")), GG_OK);
    open_gate(f);
    event_base_dispatch(f->base);
    assert_int_equal(f->done, 5);
    /* the unsealable one failed its seal alone (ETOOBIG, checked by
     * on_done_unsealed), the bad one its put alone; the others went through */
    assert_int_equal(f->failed, 2);
    assert_int_equal(f->bad_eio, 1);
    assert_int_equal(f->nprep, 1);
    assert_int_equal(f->prep_batches[0], 4);
    assert_int_equal(f->nput, 1);
    assert_int_equal(f->put_batches[0], 3);
    gg_psend_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loop_runs_while_puts_are_slow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_put_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_reports_every_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seals_run_side_by_side_off_the_loop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_seal_skips_the_put_and_is_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prepared_hash_is_seen_before_the_put_is_done,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiting_jobs_are_sealed_and_put_together, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch_gives_each_job_its_own_result, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
