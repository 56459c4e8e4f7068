/* test_store_durable.c - the store under concurrency and faults: group
 * commit, priorities, storage faults through the VFS seam, space coming
 * back, dead-letter replay and purge, expiry reports, metrics, unwatch and
 * the format upgrade. Each test in its own temporary directory.
 * GG_STORE_SPACE_N=1000000 runs only the space test with that many
 * messages (the `slow` CTest label does). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#define STORE_FIX_PREFIX "storedur-"
#include "store_fixture.h"

/* ---- group commit ---- */

#define PUTTERS 16
#define PUTS_EACH 100

struct putter {
    gg_store *st;
    int idx;
    int ok;
    int64_t ids[PUTS_EACH];
};

static void *put_thread(void *p)
{
    struct putter *w = p;
    char body[32];

    for (int i = 0; i < PUTS_EACH; i++) {
        int n = snprintf(body, sizeof body, "%d:%d", w->idx, i);
        if (gg_store_put(w->st, "q", NULL, body, (size_t)n, 0, &w->ids[i]) == GG_OK)
            w->ok++;
    }
    return NULL;
}

static void test_group_commit_shares_one_commit_among_concurrent_puts(void **state)
{
    fix *f = *state;
    struct putter w[PUTTERS];
    pthread_t th[PUTTERS];
    gg_store_stats s;
    gg_msg **msgs = NULL;
    size_t n = 0;
    int last[PUTTERS];

    for (int i = 0; i < PUTTERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].st = f->st;
        w[i].idx = i;
        assert_int_equal(pthread_create(&th[i], NULL, put_thread, &w[i]), 0);
    }
    for (int i = 0; i < PUTTERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, PUTS_EACH);
    }
    s = stats(f);
    assert_int_equal(s.puts, PUTTERS * PUTS_EACH);
    assert_int_equal(s.batched, PUTTERS * PUTS_EACH);
    /* Sixteen callers at once must share commits. */
    assert_true(s.commits < s.batched);
    assert_int_equal(depth(f, "q"), PUTTERS * PUTS_EACH);
    /* Each thread's puts come out in the order it made them. */
    assert_int_equal(gg_store_browse(f->st, "q", 0, 100000, 0, &msgs, &n), GG_OK);
    assert_int_equal(n, PUTTERS * PUTS_EACH);
    for (int i = 0; i < PUTTERS; i++)
        last[i] = -1;
    for (size_t i = 0; i < n; i++) {
        int t = -1, k = -1;
        char body[32];
        memcpy(body, msgs[i]->data, msgs[i]->len);
        body[msgs[i]->len] = '\0';
        assert_int_equal(sscanf(body, "%d:%d", &t, &k), 2);
        assert_true(k > last[t]);
        last[t] = k;
    }
    gg_msgs_free(msgs, n);
}

struct mixer {
    gg_store *st;
    int puts_ok, bad_acks;
};

static void *mix_thread(void *p)
{
    struct mixer *m = p;

    for (int i = 0; i < 50; i++) {
        if (gg_store_put(m->st, "q", NULL, "x", 1, 0, NULL) == GG_OK)
            m->puts_ok++;
        if (gg_store_ack(m->st, 1000000 + i) == GG_ENOTFOUND)
            m->bad_acks++;
    }
    return NULL;
}

static void test_failing_call_in_a_shared_commit_fails_alone(void **state)
{
    fix *f = *state;
    struct mixer m[8];
    pthread_t th[8];

    for (int i = 0; i < 8; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].st = f->st;
        assert_int_equal(pthread_create(&th[i], NULL, mix_thread, &m[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(m[i].puts_ok, 50);
        assert_int_equal(m[i].bad_acks, 50);
    }
    assert_int_equal(depth(f, "q"), 400);
}

/* ---- priorities ---- */

static void test_priority_higher_first_same_priority_in_put_order(void **state)
{
    fix *f = *state;
    static const int prio[] = { 0, 5, 0, 9, 5, 0 };
    static const int64_t want[] = { 3, 1, 4, 0, 2, 5 };
    int64_t ids[6];
    gg_msg *m = NULL;

    for (int i = 0; i < 6; i++)
        assert_int_equal(gg_store_put_prio(f->st, "q", NULL, "p", 1, 0, prio[i], 0, &ids[i]),
                         GG_OK);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(gg_store_get(f->st, "q", 30000, &m), GG_OK);
        assert_int_equal(m->id, ids[want[i]]);
        assert_int_equal(m->prio, prio[want[i]]);
        gg_msg_free(m);
    }
    assert_int_equal(gg_store_put_prio(f->st, "q", NULL, "p", 1, 0, GG_PRIO_MAX + 1, 0, NULL),
                     GG_EINVAL);
    assert_int_equal(gg_store_put_prio(f->st, "q", NULL, "p", 1, 0, -1, 0, NULL), GG_EINVAL);
    assert_int_equal(gg_store_put_prio(f->st, "q", NULL, "p", 1, 0, 0, 0x80, NULL), GG_EINVAL);
}

static void test_backed_out_message_keeps_its_priority_place(void **state)
{
    fix *f = *state;
    int64_t lo, hi;
    gg_msg *m = NULL;

    assert_int_equal(gg_store_put_prio(f->st, "q", NULL, "lo", 2, 0, 0, 0, &lo), GG_OK);
    assert_int_equal(gg_store_put_prio(f->st, "q", NULL, "hi", 2, 0, 7, 0, &hi), GG_OK);
    assert_int_equal(gg_store_get(f->st, "q", 30000, &m), GG_OK);
    assert_int_equal(m->id, hi);
    assert_int_equal(gg_store_backout(f->st, m->id), GG_OK);
    gg_msg_free(m);
    assert_int_equal(gg_store_get(f->st, "q", 30000, &m), GG_OK);
    assert_int_equal(m->id, hi);
    assert_int_equal(m->backouts, 1);
    gg_msg_free(m);
}

/* ---- storage faults ---- */

/* tag_present - 1 if a message with body tag is on queue q. */
static int tag_present(fix *f, const char *q, const char *tag)
{
    gg_msg **msgs = NULL;
    size_t n = 0;
    int hit = 0;

    assert_int_equal(gg_store_browse(f->st, q, 0, 100000, 0, &msgs, &n), GG_OK);
    for (size_t i = 0; i < n; i++)
        if (msgs[i]->len == strlen(tag) && memcmp(msgs[i]->data, tag, msgs[i]->len) == 0)
            hit = 1;
    gg_msgs_free(msgs, n);
    return hit;
}

#define FAULT_PUTS 6

/* fault_round - arm the seam at the nth call of kind, put FAULT_PUTS
 * messages and ack one, then check that exactly the calls reported done
 * happened (also after a reopen), and that the store works again with no
 * restart. */
static void fault_round(fix *f, gg_fault_kind kind, gg_err err, int nth, int *failures)
{
    char tags[FAULT_PUTS][32];
    int ok[FAULT_PUTS];
    int64_t ack_id = 0, faults0 = stats(f).faults, id;
    gg_err ack_err;
    gg_msg *m = NULL;

    /* A message to acknowledge while the fault is armed. */
    assert_int_equal(gg_store_put(f->st, "acks", NULL, "a", 1, 0, &ack_id), GG_OK);
    assert_int_equal(gg_store_get(f->st, "acks", 60000, &m), GG_OK);
    gg_msg_free(m);
    assert_int_equal(gg_store_fault_arm(kind, nth, err, 1), GG_OK);
    for (int i = 0; i < FAULT_PUTS; i++) {
        gg_err e;
        snprintf(tags[i], sizeof tags[i], "k%d-e%d-n%d-%d", (int)kind, (int)err, nth, i);
        e = gg_store_put(f->st, "q", NULL, tags[i], strlen(tags[i]), 0, &id);
        assert_true(e == GG_OK || e == err);
        ok[i] = e == GG_OK;
        *failures += !ok[i];
    }
    ack_err = gg_store_ack(f->st, ack_id);
    assert_true(ack_err == GG_OK || ack_err == err);
    *failures += ack_err != GG_OK;
    gg_store_fault_disarm();
    /* Recovery without a restart: the next commit succeeds. */
    assert_int_equal(gg_store_put(f->st, "q", NULL, "after", 5, 0, NULL), GG_OK);
    assert_int_equal(stats(f).faulted, 0);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < FAULT_PUTS; i++)
            assert_int_equal(tag_present(f, "q", tags[i]), ok[i]);
        assert_int_equal(depth(f, "acks"), ack_err == GG_OK ? 0 : 1);
        if (pass == 0)
            reopen(f, NULL);
    }
    if (ack_err != GG_OK)
        assert_int_equal(gg_store_ack(f->st, ack_id), GG_OK);
    if (*failures)
        assert_true(stats(f).faults >= 0 && faults0 >= 0);
}

static void run_faults(fix *f, gg_fault_kind kind)
{
    static const gg_err errs[] = { GG_ENOSPC, GG_EIO };
    int64_t hits0 = gg_store_fault_hits();

    for (size_t e = 0; e < 2; e++) {
        int failures = 0;
        for (int nth = 1; nth <= 12; nth++)
            fault_round(f, kind, errs[e], nth, &failures);
        /* Over the range, some calls must actually have failed. */
        assert_true(failures > 0);
    }
    assert_true(gg_store_fault_hits() > hits0);
}

static void test_commit_sync_fault_enospc_then_eio_fails_closed_and_recovers(void **state)
{
    fix *f = *state;
    run_faults(f, GG_FAULT_SYNC);
}

static void test_write_fault_enospc_then_eio_fails_closed_and_recovers(void **state)
{
    fix *f = *state;
    run_faults(f, GG_FAULT_WRITE);
}

static void test_storage_fault_is_counted_and_cleared(void **state)
{
    fix *f = *state;
    gg_store_stats s;

    assert_int_equal(gg_store_fault_arm(GG_FAULT_SYNC, 1, GG_EIO, 0), GG_OK);
    assert_int_equal(gg_store_put(f->st, "q", NULL, "x", 1, 0, NULL), GG_EIO);
    assert_int_equal(gg_store_put(f->st, "q", NULL, "y", 1, 0, NULL), GG_EIO);
    s = stats(f);
    assert_true(s.faults >= 2);
    assert_int_equal(s.faulted, 1);
    gg_store_fault_disarm();
    assert_int_equal(gg_store_put(f->st, "q", NULL, "z", 1, 0, NULL), GG_OK);
    s = stats(f);
    assert_int_equal(s.faulted, 0);
    assert_int_equal(depth(f, "q"), 1);
    assert_int_equal(gg_store_fault_arm(GG_FAULT_SYNC, 0, GG_EIO, 1), GG_EINVAL);
    assert_int_equal(gg_store_fault_arm(GG_FAULT_SYNC, 1, GG_EFULL, 1), GG_EINVAL);
}

/* ---- space ---- */

static long long files_size(fix *f)
{
    const char *sfx[] = { "", "-wal" };
    long long total = 0;
    char p[700];
    struct stat sb;

    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
        if (stat(p, &sb) == 0)
            total += (long long)sb.st_size;
    }
    return total;
}

#define SPACE_THREADS 8

struct spacer {
    gg_store *st;
    long n;
    int bad;
};

static void *space_thread(void *p)
{
    struct spacer *s = p;
    char body[1024];
    gg_msg *m = NULL;

    memset(body, 'x', sizeof body);
    for (long i = 0; i < s->n; i++) {
        if (gg_store_put(s->st, "space", NULL, body, sizeof body, 0, NULL) != GG_OK ||
            gg_store_get(s->st, "space", 60000, &m) != GG_OK || gg_store_ack(s->st, m->id) != GG_OK)
            s->bad++;
        gg_msg_free(m);
        m = NULL;
    }
    return NULL;
}

static void test_space_comes_back_after_put_and_ack(void **state)
{
    fix *f = *state;
    const char *env = getenv("GG_STORE_SPACE_N");
    long total = env && atol(env) > 0 ? atol(env) : 100000;
    gg_store_opts o = { .backout_threshold = 5, .durability = GG_DURABLE_NORMAL };
    struct spacer s[SPACE_THREADS];
    pthread_t th[SPACE_THREADS];
    long long start, peak = 0, end;

    /* Durability does not matter for space; NORMAL keeps the test short. */
    reopen(f, &o);
    assert_int_equal(gg_store_put(f->st, "space", NULL, "warm", 4, 0, NULL), GG_OK);
    start = files_size(f);
    for (int i = 0; i < SPACE_THREADS; i++) {
        s[i].st = f->st;
        s[i].n = total / SPACE_THREADS;
        s[i].bad = 0;
        assert_int_equal(pthread_create(&th[i], NULL, space_thread, &s[i]), 0);
    }
    for (int i = 0; i < SPACE_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(s[i].bad, 0);
    }
    peak = files_size(f);
    /* Without any call: the WAL is held under its 12 MiB limit (the
     * committer copies what the checkpoint thread has not from 1,250
     * frames on) and free pages are given back as the store goes. */
    end = files_size(f);
    print_message("space: n=%ld start=%lld end=%lld bytes\n", total, start, end);
    assert_true(end <= start + (12LL << 20));
    assert_true(stats(f).checkpoints > 0);
    assert_int_equal(depth(f, "space"), 1);
    /* An explicit reclaim returns to within 256 KiB of the start. */
    assert_int_equal(gg_store_reclaim(f->st), GG_OK);
    end = files_size(f);
    print_message("space: after reclaim %lld bytes (peak %lld)\n", end, peak);
    assert_true(end <= start + (256LL << 10));
}

/* db_pages - free and total pages of the store file, read beside the store. */
static void db_pages(fix *f, int64_t *free_pages, int64_t *pages)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;

    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT f.freelist_count, p.page_count FROM"
                                        " pragma_freelist_count f, pragma_page_count p",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    *free_pages = sqlite3_column_int64(s, 0);
    *pages = sqlite3_column_int64(s, 1);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* small_commits - n commits of one put or ack each on queue "tick". */
static void small_commits(fix *f, int n)
{
    for (int i = 0; i < n; i += 2) {
        int64_t id;
        assert_int_equal(gg_store_put(f->st, "tick", NULL, "t", 1, 0, &id), GG_OK);
        assert_int_equal(gg_store_ack(f->st, id), GG_OK);
    }
}

#define BIG_N (8 * GG_STORE_MANY_MAX)

/* fill_big - reopen with durability normal and put BIG_N messages of
 * 1,000 bytes on queue "big"; their ids into ids. */
static void fill_big(fix *f, int64_t *ids)
{
    gg_store_opts o = { .backout_threshold = 5, .durability = GG_DURABLE_NORMAL };
    static uint8_t body[1000];
    gg_store_put_item items[GG_STORE_MANY_MAX];

    reopen(f, &o);
    memset(items, 0, sizeof items);
    for (size_t i = 0; i < GG_STORE_MANY_MAX; i++) {
        items[i].queue = "big";
        items[i].data = body;
        items[i].len = sizeof body;
    }
    for (size_t n = 0; n < BIG_N; n += GG_STORE_MANY_MAX)
        assert_int_equal(gg_store_put_many(f->st, items, GG_STORE_MANY_MAX, &ids[n]), GG_OK);
}

static void test_free_pages_kept_while_a_small_share_of_a_big_store(void **state)
{
    fix *f = *state;
    static int64_t ids[BIG_N];
    int64_t free_pages, pages, before;
    size_t n = BIG_N;

    fill_big(f, ids);
    /* Acknowledge 3/16: more than 256 pages free, less than a quarter. */
    for (size_t i = 0; i < 3 * n / 16; i += 256)
        assert_int_equal(gg_store_ack_many(f->st, &ids[i], 256), GG_OK);
    db_pages(f, &before, &pages);
    print_message("vacuum: free %lld of %lld pages\n", (long long)before, (long long)pages);
    assert_true(before >= 256 && before * 4 < pages);
    small_commits(f, 260);
    db_pages(f, &free_pages, &pages);
    /* Not moved back and forth: kept for the next puts. */
    assert_true(free_pages >= before - 8);
    /* Acknowledge the rest: now most of the file is free, and given back. */
    for (size_t i = 3 * n / 16; i < n; i += 256)
        assert_int_equal(gg_store_ack_many(f->st, &ids[i], 256), GG_OK);
    small_commits(f, 260);
    db_pages(f, &free_pages, &pages);
    print_message("vacuum: free %lld of %lld pages after the rest\n", (long long)free_pages,
                  (long long)pages);
    assert_true(free_pages < 256);
    assert_int_equal(depth(f, "big"), 0);
}

/* After a big queue drains, its pages go back a bounded step per commit
 * (128, store_int.h), not all in one vacuum that every caller waits for. */
static void test_free_pages_go_back_a_step_per_commit(void **state)
{
    fix *f = *state;
    static int64_t ids[BIG_N];
    int64_t free0, free_pages, pages;
    int commits = 0, steps = 0;

    fill_big(f, ids);
    for (size_t i = 0; i < BIG_N; i += GG_STORE_MANY_MAX)
        assert_int_equal(gg_store_ack_many(f->st, &ids[i], GG_STORE_MANY_MAX), GG_OK);
    db_pages(f, &free0, &pages);
    assert_true(free0 >= 1000);
    /* Two commits at a time (a put, an ack): each may run one step. */
    free_pages = free0;
    while (free_pages >= 256 && commits < 400) {
        int64_t was = free_pages;
        small_commits(f, 2);
        commits += 2;
        db_pages(f, &free_pages, &pages);
        if (free_pages < was) {
            assert_true(was - free_pages <= 2 * 128 + 2);
            steps++;
        }
    }
    print_message("vacuum: %lld free pages given back in %d steps within %d commits\n",
                  (long long)(free0 - free_pages), steps, commits);
    assert_true(free_pages < 256);
    assert_true(steps >= (int)((free0 - 256) / (2 * 128 + 2)));
}

/* ---- dead letters ---- */

static void test_dead_letter_replay_moves_back_exactly_once(void **state)
{
    fix *f = *state;
    gg_dead_info d;
    gg_msg *m = NULL, *dm = NULL;
    int64_t id, new_id = 0;

    assert_int_equal(gg_store_put_prio(f->st, "q", "peerq", "poison", 6, 0, 3, 0, &id), GG_OK);
    assert_int_equal(gg_store_get(f->st, "q", 30000, &m), GG_OK);
    assert_int_equal(gg_store_dead_letter(f->st, m->id, "cannot parse"), GG_OK);
    gg_msg_free(m);
    assert_int_equal(gg_store_dead_get(f->st, id, &d, &dm), GG_OK);
    assert_string_equal(d.reason, "cannot parse");
    assert_string_equal(d.queue, "q");
    assert_string_equal(dm->dest, "peerq");
    assert_int_equal(dm->len, 6);
    assert_memory_equal(dm->data, "poison", 6);
    assert_int_equal(d.prio, 3);
    gg_msg_free(dm);
    assert_int_equal(gg_store_dead_replay(f->st, id, &new_id), GG_OK);
    assert_true(new_id > id);
    assert_int_equal(gg_store_dead_replay(f->st, id, NULL), GG_ENOTFOUND);
    assert_int_equal(gg_store_dead_get(f->st, id, NULL, &dm), GG_ENOTFOUND);
    assert_int_equal(depth(f, "q"), 1);
    assert_int_equal(gg_store_get(f->st, "q", 30000, &m), GG_OK);
    assert_int_equal(m->id, new_id);
    assert_int_equal(m->prio, 3);
    assert_memory_equal(m->data, "poison", 6);
    gg_msg_free(m);
}

static void test_dead_letter_purge_one_and_all(void **state)
{
    fix *f = *state;
    int64_t ids[3], n = -1;
    gg_msg *m = NULL;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(gg_store_put(f->st, "q", NULL, "d", 1, 0, &ids[i]), GG_OK);
        assert_int_equal(gg_store_dead_letter(f->st, ids[i], "test"), GG_OK);
    }
    assert_int_equal(gg_store_dead_purge(f->st, ids[1], &n), GG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(gg_store_dead_purge(f->st, ids[1], &n), GG_ENOTFOUND);
    assert_int_equal(gg_store_dead_get(f->st, ids[0], NULL, &m), GG_OK);
    gg_msg_free(m);
    assert_int_equal(gg_store_dead_purge(f->st, 0, &n), GG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(stats(f).dead_depth, 0);
}

/* ---- expiry ---- */

static void test_expired_message_asking_for_report_goes_to_dead_letters(void **state)
{
    fix *f = *state;
    gg_dead_info d[4];
    size_t n = 0;
    gg_msg *m = NULL;
    int64_t id;

    assert_int_equal(gg_store_put_prio(f->st, "q", NULL, "tell", 4, gg_now_ms() + 1000, 0,
                                       GG_MSG_REPORT_EXPIRY, &id),
                     GG_OK);
    assert_int_equal(gg_store_put(f->st, "q", NULL, "quiet", 5, gg_now_ms() + 1000, NULL), GG_OK);
    gg_clock_set_offset_ms(2000);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_EEMPTY);
    assert_int_equal(stats(f).expired, 2);
    assert_int_equal(gg_store_dead_list(f->st, 0, d, 4, &n), GG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].id, id);
    assert_string_equal(d[0].reason, "expired");
    assert_int_equal(d[0].flags, GG_MSG_REPORT_EXPIRY);
    /* Replayed, it comes back without the expiry that killed it. */
    assert_int_equal(gg_store_dead_replay(f->st, id, NULL), GG_OK);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->expiry_ms, 0);
    gg_msg_free(m);
}

/* ---- watchers ---- */

static void on_add(void *arg, const char *queue)
{
    (*(int *)arg)++;
}

static void test_unwatch_stops_calls(void **state)
{
    fix *f = *state;
    int a = 0, b = 0;

    assert_int_equal(gg_store_watch(f->st, "q", on_add, &a), GG_OK);
    assert_int_equal(gg_store_watch(f->st, "q", on_add, &b), GG_OK);
    assert_int_equal(gg_store_put(f->st, "q", NULL, "1", 1, 0, NULL), GG_OK);
    assert_int_equal(gg_store_unwatch(f->st, on_add, &a), GG_OK);
    assert_int_equal(gg_store_unwatch(f->st, on_add, &a), GG_ENOTFOUND);
    assert_int_equal(gg_store_put(f->st, "q", NULL, "2", 1, 0, NULL), GG_OK);
    assert_int_equal(a, 1);
    assert_int_equal(b, 2);
    /* The freed slot can be used again. */
    for (int i = 0; i < 7; i++)
        assert_int_equal(gg_store_watch(f->st, "q", on_add, &a), GG_OK);
    assert_int_equal(gg_store_watch(f->st, "q", on_add, &a), GG_EFULL);
    assert_int_equal(gg_store_unwatch(f->st, on_add, &a), GG_OK);
}

/* ---- metrics ---- */

static void test_metrics_text_has_queue_gauges_counters_and_histogram(void **state)
{
    fix *f = *state;
    gg_buf b = GG_BUF_INIT(1 << 20);
    gg_msg *m = NULL;
    char *text;

    assert_int_equal(gg_store_put(f->st, "requests", NULL, "abc", 3, 0, NULL), GG_OK);
    assert_int_equal(gg_store_put(f->st, "we\"ird", NULL, "d", 1, 0, NULL), GG_OK);
    assert_int_equal(gg_store_get(f->st, "we\"ird", 1000, &m), GG_OK);
    assert_int_equal(gg_store_ack(f->st, m->id), GG_OK);
    gg_msg_free(m);
    static const char *const always[] = { "requests", "xmit" };

    assert_int_equal(gg_store_metrics(f->st, always, 2, &b), GG_OK);
    assert_int_equal(gg_buf_append(&b, "", 1), GG_OK);
    text = (char *)b.data;
    assert_non_null(strstr(text, "gridgate_queue_depth{queue=\"requests\"} 1\n"));
    assert_non_null(strstr(text, "gridgate_queue_depth{queue=\"we\\\"ird\"} 0\n"));
    assert_non_null(strstr(text, "gridgate_queue_bytes{queue=\"requests\"} 3\n"));
    assert_non_null(strstr(text, "gridgate_queue_depth{queue=\"xmit\"} 0\n"));
    assert_null(strstr(text, "queue=\"requests\"} 1\ngridgate_queue_depth{queue=\"requests\"}"));
    assert_non_null(strstr(text, "gridgate_queue_oldest_age_seconds{queue=\"requests\"} "));
    assert_non_null(strstr(text, "gridgate_store_puts_total 2\n"));
    assert_non_null(strstr(text, "gridgate_store_acks_total 1\n"));
    assert_non_null(strstr(text, "gridgate_store_expired_total 0\n"));
    assert_non_null(strstr(text, "gridgate_store_storage_faults_total 0\n"));
    assert_non_null(strstr(text, "# TYPE gridgate_store_commit_seconds histogram\n"));
    assert_non_null(strstr(text, "gridgate_store_commit_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(text, "gridgate_store_commit_seconds_count 4\n"));
    gg_buf_free(&b);
}

/* ---- format upgrade ---- */

static void test_version_1_store_is_upgraded_keeping_messages(void **state)
{
    fix *f = *state;
    static const char v1[] =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE messages(id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL,"
        " dest TEXT NOT NULL, put_ms INTEGER NOT NULL, expiry_ms INTEGER NOT NULL,"
        " lease_until_ms INTEGER NOT NULL, backouts INTEGER NOT NULL, len INTEGER NOT NULL);"
        "CREATE TABLE bodies(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
        "CREATE INDEX messages_queue_id ON messages(queue, id);"
        "CREATE TABLE queue_stats(queue TEXT PRIMARY KEY, depth INTEGER NOT NULL,"
        " bytes INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE channel_marks(channel TEXT PRIMARY KEY, mark INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE dead_letters(id INTEGER PRIMARY KEY, queue TEXT NOT NULL, dest TEXT NOT NULL,"
        " reason TEXT NOT NULL, dead_ms INTEGER NOT NULL, put_ms INTEGER NOT NULL,"
        " expiry_ms INTEGER NOT NULL, backouts INTEGER NOT NULL, len INTEGER NOT NULL,"
        " data BLOB NOT NULL);"
        "INSERT INTO meta VALUES('schema_version', '1');"
        "INSERT INTO messages VALUES(7, 'q', '', 1, 0, 0, 0, 3);"
        "INSERT INTO bodies VALUES(7, x'6f6c64');"
        "INSERT INTO queue_stats VALUES('q', 1, 3);";
    sqlite3 *db = NULL;
    gg_msg *m = NULL;
    int64_t id;

    gg_store_close(f->st);
    f->st = NULL;
    unlink(f->path);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(gg_store_open(f->path, NULL, &f->st), GG_OK);
    assert_int_equal(gg_store_put_prio(f->st, "q", NULL, "new", 3, 0, 2, 0, &id), GG_OK);
    assert_true(id > 7);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->id, id);
    gg_msg_free(m);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->id, 7);
    assert_memory_equal(m->data, "old", 3);
    gg_msg_free(m);
}

static void test_version_2_store_is_upgraded_keeping_messages_and_ids(void **state)
{
    fix *f = *state;
    /* A version 2 store as the code before format 3 made it: AUTOINCREMENT
     * ids (12 given, 10..12 since deleted), queue_stats kept by triggers. */
    static const char v2[] =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE messages("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, dest TEXT NOT NULL,"
        " put_ms INTEGER NOT NULL, expiry_ms INTEGER NOT NULL,"
        " lease_until_ms INTEGER NOT NULL, backouts INTEGER NOT NULL, len INTEGER NOT NULL,"
        " prio INTEGER NOT NULL DEFAULT 0, flags INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE bodies(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
        "CREATE INDEX messages_queue_id ON messages(queue, id);"
        "CREATE INDEX messages_ready ON messages(queue, lease_until_ms, prio DESC, id);"
        "CREATE TABLE queue_stats(queue TEXT PRIMARY KEY, depth INTEGER NOT NULL,"
        " bytes INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TRIGGER messages_ins AFTER INSERT ON messages BEGIN"
        " INSERT INTO queue_stats(queue, depth, bytes) VALUES(NEW.queue, 1, NEW.len)"
        " ON CONFLICT(queue) DO UPDATE SET depth = depth + 1, bytes = bytes + NEW.len; END;"
        "CREATE TRIGGER messages_del AFTER DELETE ON messages BEGIN"
        " UPDATE queue_stats SET depth = depth - 1, bytes = bytes - OLD.len"
        " WHERE queue = OLD.queue; DELETE FROM bodies WHERE id = OLD.id; END;"
        "CREATE TABLE channel_marks(channel TEXT PRIMARY KEY, mark INTEGER NOT NULL)"
        " WITHOUT ROWID;"
        "CREATE TABLE dead_letters("
        " id INTEGER PRIMARY KEY, queue TEXT NOT NULL, dest TEXT NOT NULL,"
        " reason TEXT NOT NULL, dead_ms INTEGER NOT NULL, put_ms INTEGER NOT NULL,"
        " expiry_ms INTEGER NOT NULL, backouts INTEGER NOT NULL,"
        " len INTEGER NOT NULL, data BLOB NOT NULL,"
        " prio INTEGER NOT NULL DEFAULT 0, flags INTEGER NOT NULL DEFAULT 0);"
        "INSERT INTO meta VALUES('schema_version', '2');"
        "INSERT INTO messages VALUES(7, 'q', '', 1, 0, 0, 0, 3, 0, 0);"
        "INSERT INTO bodies VALUES(7, x'6f6c64');"
        "INSERT INTO messages VALUES(12, 'q', '', 1, 0, 0, 0, 5, 0, 0);"
        "INSERT INTO bodies VALUES(12, x'676f6e6521');"
        "DELETE FROM messages WHERE id = 12;"
        "INSERT INTO dead_letters VALUES(9, 'q', '', 'r', 1, 1, 0, 0, 2, x'6464', 0, 0);";
    sqlite3 *db = NULL;
    gg_msg *m = NULL;
    int64_t id, id2;

    gg_store_close(f->st);
    f->st = NULL;
    unlink(f->path);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v2, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(gg_store_open(f->path, NULL, &f->st), GG_OK);
    assert_int_equal(depth(f, "q"), 1);
    assert_int_equal(gg_store_put(f->st, "q", NULL, "new", 3, 0, &id), GG_OK);
    assert_true(id > 12);   /* the highest id ever given, not the highest row */
    assert_int_equal(depth(f, "q"), 2);
    assert_int_equal(gg_store_get(f->st, "q", 1000, &m), GG_OK);
    assert_int_equal(m->id, 7);
    assert_memory_equal(m->data, "old", 3);
    assert_int_equal(gg_store_ack(f->st, m->id), GG_OK);
    gg_msg_free(m);
    /* Counted once (the old triggers are gone), and the body went with it. */
    assert_int_equal(depth(f, "q"), 1);
    assert_int_equal(gg_store_ack(f->st, id), GG_OK);
    assert_int_equal(depth(f, "q"), 0);
    reopen(f, NULL);
    assert_int_equal(gg_store_put(f->st, "q", NULL, "next", 4, 0, &id2), GG_OK);
    assert_true(id2 > id);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    {
        sqlite3_stmt *s = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM bodies),"
                                            " (SELECT count(*) FROM sqlite_master"
                                            " WHERE type = 'trigger'),"
                                            " (SELECT value FROM meta"
                                            " WHERE key = 'schema_version')",
                                            -1, &s, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(s, 0), 1);
        assert_int_equal(sqlite3_column_int(s, 1), 0);
        assert_string_equal((const char *)sqlite3_column_text(s, 2), "3");
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest all[] = {
        T(test_group_commit_shares_one_commit_among_concurrent_puts),
        T(test_failing_call_in_a_shared_commit_fails_alone),
        T(test_priority_higher_first_same_priority_in_put_order),
        T(test_backed_out_message_keeps_its_priority_place),
        T(test_commit_sync_fault_enospc_then_eio_fails_closed_and_recovers),
        T(test_write_fault_enospc_then_eio_fails_closed_and_recovers),
        T(test_storage_fault_is_counted_and_cleared),
        T(test_space_comes_back_after_put_and_ack),
        T(test_dead_letter_replay_moves_back_exactly_once),
        T(test_dead_letter_purge_one_and_all),
        T(test_expired_message_asking_for_report_goes_to_dead_letters),
        T(test_unwatch_stops_calls),
        T(test_metrics_text_has_queue_gauges_counters_and_histogram),
        T(test_version_1_store_is_upgraded_keeping_messages),
        T(test_version_2_store_is_upgraded_keeping_messages_and_ids),
        T(test_free_pages_kept_while_a_small_share_of_a_big_store),
        T(test_free_pages_go_back_a_step_per_commit),
    };
    const struct CMUnitTest space[] = {
        T(test_space_comes_back_after_put_and_ack),
    };

    if (getenv("GG_STORE_SPACE_N"))
        return cmocka_run_group_tests_name("store_space", space, NULL, NULL);
    return cmocka_run_group_tests_name("store_durable", all, NULL, NULL);
}
