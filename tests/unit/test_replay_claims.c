/* test_replay_claims.c - a replay check claims a fresh id in memory and
 * never waits for a store transaction; the claim is written by the
 * store's next transaction (the ack of the message at the latest) and
 * survives a reopen; copies checked at once while the store commits give
 * one fresh; a failed COMMIT keeps the claim for the next one; claims not
 * yet written count toward max_entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>

#include "core/rand.h"
#include "store/fault.h"
#include "replay_fixture.h"

static gg_replay_verdict check(gg_replay *r, const uint8_t id[16], int64_t local, int64_t now)
{
    gg_replay_verdict v = (gg_replay_verdict)-1;

    assert_int_equal(gg_replay_check(r, id, T0, local, now, &v), GG_OK);
    return v;
}

static gg_store_stats stats(gg_store *st)
{
    gg_store_stats s;

    assert_int_equal(gg_store_get_stats(st, &s), GG_OK);
    return s;
}

/* rows_of - committed rows of id in replay_seen, read on a connection of
 * the test's own. */
static int rows_of(const fx *f, const uint8_t id[16])
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int n;

    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM replay_seen WHERE id = ?1", -1,
                                        &s, NULL), SQLITE_OK);
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* No commit, no batch, no fsync for a check: fresh, replay or redelivery. */
static void test_check_makes_no_store_transaction(void **state)
{
    fx *f = *state;
    uint8_t id[16];
    gg_store_stats before, after;

    gg_new_id(id);
    assert_int_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, NULL), GG_OK);
    before = stats(f->st);
    assert_int_equal(check(f->r, id, 1, T0), GG_RV_FRESH);
    assert_int_equal(check(f->r, id, 2, T0 + 1), GG_RV_REPLAY);
    assert_int_equal(check(f->r, id, 1, T0 + 2), GG_RV_REDELIVERY);
    after = stats(f->st);
    assert_int_equal(after.commits, before.commits);
    assert_int_equal(after.batched, before.batched);
    assert_int_equal(after.syncs, before.syncs);
    assert_int_equal(gg_replay_count(f->r), 1);
}

/* The record is not in replay_seen after the check, is after the ack (the
 * next store call), and a reopened store still refuses the id. */
static void test_record_is_committed_by_the_ack_and_survives_reopen(void **state)
{
    fx *f = *state;
    uint8_t id[16];
    gg_msg *m = NULL;
    int64_t req = 0;

    gg_new_id(id);
    assert_int_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, &req), GG_OK);
    assert_int_equal(gg_store_get(f->st, "requests", 60000, &m), GG_OK);
    assert_int_equal(check(f->r, id, m->id, T0), GG_RV_FRESH);
    assert_int_equal(rows_of(f, id), 0);
    assert_int_equal(gg_store_ack(f->st, m->id), GG_OK);
    assert_int_equal(rows_of(f, id), 1);
    assert_int_equal(check(f->r, id, req + 1, T0 + 5), GG_RV_REPLAY);
    assert_int_equal(check(f->r, id, m->id, T0 + 6), GG_RV_REDELIVERY);
    gg_msg_free(m);
    restart(f, 1000);
    assert_int_equal(gg_replay_count(f->r), 1);
    assert_int_equal(check(f->r, id, req + 2, T0 + 10), GG_RV_REPLAY);
}

/* ---- copies at once, while the store commits ------------------------- */

#define COPIES 64
#define ROUNDS 20

typedef struct copy {
    gg_replay *r;
    pthread_barrier_t *go;
    const uint8_t *id;
    int64_t local;
    gg_replay_verdict v;
    gg_err err;
} copy;

static void *copy_main(void *arg)
{
    copy *c = arg;

    pthread_barrier_wait(c->go);
    c->err = gg_replay_check(c->r, c->id, T0, c->local, T0, &c->v);
    return NULL;
}

typedef struct churn {
    gg_store *st;
    atomic_int stop;
    int commits;
} churn;

/* churn_main - commit store transactions (put, get, ack) until stopped:
 * claims are written and settled while the copies are judged. */
static void *churn_main(void *arg)
{
    churn *c = arg;

    while (!atomic_load(&c->stop)) {
        gg_msg *m = NULL;

        if (gg_store_put(c->st, "noise", NULL, "n", 1, 0, NULL) == GG_OK)
            c->commits++;
        if (gg_store_get(c->st, "noise", 60000, &m) == GG_OK) {
            gg_store_ack(c->st, m->id);
            gg_msg_free(m);
        }
    }
    return NULL;
}

/* 64 threads check one id at once, ROUNDS times with a new id each time,
 * while another thread keeps the store committing: exactly one fresh per
 * id, every other copy a replay; afterwards every id is in replay_seen. */
static void test_copies_checked_at_once_during_commits_give_one_fresh(void **state)
{
    fx *f = *state;
    uint8_t ids[ROUNDS][16];
    churn ch = { .st = f->st };
    pthread_t ct;

    restart(f, 100000);
    ch.st = f->st;
    assert_int_equal(pthread_create(&ct, NULL, churn_main, &ch), 0);
    for (int k = 0; k < ROUNDS; k++) {
        pthread_t th[COPIES];
        copy c[COPIES];
        pthread_barrier_t go;
        int fresh = 0, replay = 0;

        gg_new_id(ids[k]);
        pthread_barrier_init(&go, NULL, COPIES);
        for (int i = 0; i < COPIES; i++) {
            c[i] = (copy){ .r = f->r, .go = &go, .id = ids[k], .local = 1000 * k + i + 1 };
            assert_int_equal(pthread_create(&th[i], NULL, copy_main, &c[i]), 0);
        }
        for (int i = 0; i < COPIES; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(c[i].err, GG_OK);
            fresh += c[i].v == GG_RV_FRESH;
            replay += c[i].v == GG_RV_REPLAY;
        }
        pthread_barrier_destroy(&go);
        assert_int_equal(fresh, 1);
        assert_int_equal(replay, COPIES - 1);
    }
    atomic_store(&ch.stop, 1);
    pthread_join(ct, NULL);
    assert_true(ch.commits > 0);
    assert_int_equal(gg_replay_count(f->r), ROUNDS);
    assert_int_equal(gg_store_put(f->st, "noise", NULL, "n", 1, 0, NULL), GG_OK);
    for (int k = 0; k < ROUNDS; k++)
        assert_int_equal(rows_of(f, ids[k]), 1);
}

/* A COMMIT that fails (a WAL write fault) keeps the claim: the id is still
 * a replay meanwhile, and the next commit writes it. A check while the
 * fault is armed still works: it writes nothing. */
static void test_failed_commit_keeps_the_claim_and_the_next_commit_writes_it(void **state)
{
    fx *f = *state;
    uint8_t id[16], other[16];
    int64_t faults;

    gg_new_id(id);
    gg_new_id(other);
    assert_int_equal(check(f->r, id, 1, T0), GG_RV_FRESH);
    gg_log_set_level(GG_LOG_ERROR + 1);
    faults = gg_store_fault_hits();
    assert_int_equal(gg_store_fault_arm(GG_FAULT_WRITE, 1, GG_EIO, 0), GG_OK);
    assert_int_equal(check(f->r, other, 2, T0 + 1), GG_RV_FRESH);
    assert_int_not_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, NULL), GG_OK);
    gg_store_fault_disarm();
    gg_log_set_level(GG_LOG_WARN);
    assert_true(gg_store_fault_hits() > faults);
    assert_int_equal(rows_of(f, id), 0);
    assert_int_equal(check(f->r, id, 3, T0 + 2), GG_RV_REPLAY);
    assert_int_equal(check(f->r, other, 4, T0 + 2), GG_RV_REPLAY);
    assert_int_equal(gg_replay_count(f->r), 2);
    assert_int_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, NULL), GG_OK);
    assert_int_equal(rows_of(f, id), 1);
    assert_int_equal(rows_of(f, other), 1);
    assert_int_equal(gg_replay_count(f->r), 2);
    restart(f, 1000);
    assert_int_equal(check(f->r, id, 5, T0 + 3), GG_RV_REPLAY);
    assert_int_equal(check(f->r, other, 6, T0 + 3), GG_RV_REPLAY);
}

/* Claims not yet written count toward max_entries: a flood fails closed
 * before any commit, and still after the claims are written. */
static void test_claims_not_yet_written_count_toward_the_limit(void **state)
{
    fx *f = *state;
    uint8_t ids[4][16];
    gg_store_stats before;
    gg_replay_verdict v = (gg_replay_verdict)-1;

    restart(f, 3);
    before = stats(f->st);
    for (int i = 0; i < 4; i++)
        gg_new_id(ids[i]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(check(f->r, ids[i], i + 1, T0 + i), GG_RV_FRESH);
    assert_int_equal(check(f->r, ids[3], 4, T0 + 3), GG_RV_FULL);
    assert_int_equal(stats(f->st).commits, before.commits);
    assert_int_equal(gg_replay_count(f->r), 3);
    assert_int_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, NULL), GG_OK);
    assert_int_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, NULL), GG_OK);
    assert_int_equal(gg_replay_count(f->r), 3);
    assert_int_equal(check(f->r, ids[3], 4, T0 + 4), GG_RV_FULL);
    assert_int_equal(check(f->r, ids[0], 9, T0 + 4), GG_RV_REPLAY);
    /* once they age out, a prune (a store op of the check's own) makes room */
    assert_int_equal(gg_replay_check(f->r, ids[3], T0 + WIN + SKEW + 10, 4, T0 + WIN + SKEW + 10,
                                     &v), GG_OK);
    assert_int_equal(v, GG_RV_FRESH);
    assert_int_equal(gg_replay_count(f->r), 1);
    assert_int_equal(rows_of(f, ids[0]), 0);
}

/* A prune the last commit wrote (its rows gone) but not yet counted does
 * not make a check fail closed: the check's own store op settles it. */
static void test_prune_committed_but_not_yet_counted_frees_room(void **state)
{
    fx *f = *state;
    uint8_t a[16], b[16], c[16], d[16];
    int64_t later = T0 + WIN + SKEW + 10;
    gg_replay_verdict v = (gg_replay_verdict)-1;

    restart(f, 3);
    gg_new_id(a);
    gg_new_id(b);
    gg_new_id(c);
    gg_new_id(d);
    assert_int_equal(check(f->r, a, 1, T0), GG_RV_FRESH);
    assert_int_equal(check(f->r, b, 2, T0), GG_RV_FRESH);
    assert_int_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, NULL), GG_OK);
    assert_int_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, NULL), GG_OK);
    /* later: a and b age out; c is claimed, the next commit prunes them */
    assert_int_equal(gg_replay_check(f->r, c, later, 3, later, &v), GG_OK);
    assert_int_equal(v, GG_RV_FRESH);
    assert_int_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, NULL), GG_OK);
    assert_int_equal(rows_of(f, a), 0);
    assert_int_equal(gg_replay_check(f->r, d, later, 4, later + 1, &v), GG_OK);
    assert_int_equal(v, GG_RV_FRESH);
    assert_int_equal(gg_replay_count(f->r), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_check_makes_no_store_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_is_committed_by_the_ack_and_survives_reopen,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_copies_checked_at_once_during_commits_give_one_fresh,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_failed_commit_keeps_the_claim_and_the_next_commit_writes_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claims_not_yet_written_count_toward_the_limit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_committed_but_not_yet_counted_frees_room,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
