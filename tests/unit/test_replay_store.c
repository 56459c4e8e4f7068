/* test_replay_store.c - the replay record rides in the queue store's
 * commits: a check costs no fsync and the ack's fsync covers it; a process
 * killed between the check and the ack leaves its request to be redelivered
 * and processed once; killed before the check, the request is fresh once;
 * a storage fault fails the commit, not the check, and the record is kept
 * for the next commit; the live ids of an old separate replay
 * file are imported at open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/rand.h"
#include "store/fault.h"
#include "replay_fixture.h"

#define LEASE_MS 100

static gg_replay_verdict check(gg_replay *r, const uint8_t id[16], int64_t local, int64_t now)
{
    gg_replay_verdict v = (gg_replay_verdict)-1;

    assert_int_equal(gg_replay_check(r, id, T0, local, now, &v), GG_OK);
    return v;
}

static int64_t syncs(gg_store *st)
{
    gg_store_stats s;

    assert_int_equal(gg_store_get_stats(st, &s), GG_OK);
    return s.syncs;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* lease_again - wait for the lease of a dead process to run out and lease
 * the request again. */
static gg_msg *lease_again(gg_store *st)
{
    gg_msg *m = NULL;

    sleep_ms(2 * LEASE_MS);
    assert_int_equal(gg_store_get(st, "requests", 60000, &m), GG_OK);
    return m;
}

static void test_check_has_no_fsync_and_the_ack_makes_it_durable(void **state)
{
    fx *f = *state;
    uint8_t id[16];
    int64_t before, req;
    gg_msg *m = NULL;

    gg_new_id(id);
    assert_int_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, &req), GG_OK);
    assert_int_equal(gg_store_get(f->st, "requests", 60000, &m), GG_OK);
    before = syncs(f->st);
    assert_int_equal(check(f->r, id, m->id, T0), GG_RV_FRESH);
    assert_int_equal(syncs(f->st), before);
    assert_int_equal(gg_store_ack_put(f->st, m->id, "replies", NULL, "a", 1, 0), GG_OK);
    assert_int_equal(syncs(f->st), before + 1);
    gg_msg_free(m);
    restart(f, 1000);
    assert_int_equal(check(f->r, id, req + 100, T0 + 10), GG_RV_REPLAY);
}

/* child_crash - in a child: open the store, put a request (or find the one
 * there), lease it, check it if told to, and die by SIGKILL before any ack.
 * The child's request id comes back through the pipe. */
static void child_crash(fx *f, const uint8_t id[16], int do_check, int64_t *req)
{
    int fds[2];
    pid_t pid;
    int status;

    assert_int_equal(pipe(fds), 0);
    gg_replay_close(f->r);
    gg_store_close(f->st);
    f->r = NULL;
    f->st = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        gg_store *st = NULL;
        gg_replay *r = NULL;
        gg_replay_cfg c = { NULL, WIN, SKEW, 1000 };
        gg_replay_verdict v;
        gg_msg *m = NULL;

        if (gg_store_open(f->path, NULL, &st) != GG_OK || gg_replay_open(&c, st, &r) != GG_OK ||
            gg_store_put(st, "requests", NULL, "q", 1, 0, NULL) != GG_OK ||
            gg_store_get(st, "requests", LEASE_MS, &m) != GG_OK)
            _exit(1);
        if (do_check && (gg_replay_check(r, id, T0, m->id, T0, &v) != GG_OK || v != GG_RV_FRESH))
            _exit(2);
        if (write(fds[1], &m->id, sizeof m->id) != (ssize_t)sizeof m->id)
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], req, sizeof *req), (ssize_t)sizeof *req);
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(gg_store_open(f->path, NULL, &f->st), GG_OK);
    f->r = open_max(f, 1000);
}

/* Killed after the check, before the ack: the claim died with the process
 * (no store transaction followed it), the request comes back (same store
 * id) and is judged fresh again, processed; then acked, any other copy is
 * a replay, across a restart too. */
static void test_killed_between_check_and_ack_the_request_is_processed_once(void **state)
{
    fx *f = *state;
    uint8_t id[16];
    int64_t req = 0;
    gg_msg *m;

    gg_new_id(id);
    child_crash(f, id, 1, &req);
    m = lease_again(f->st);
    assert_int_equal(m->id, req);
    assert_int_equal(check(f->r, id, m->id, T0 + 500), GG_RV_FRESH);
    assert_int_equal(check(f->r, id, m->id, T0 + 550), GG_RV_REDELIVERY);
    assert_int_equal(gg_store_ack_put(f->st, m->id, "replies", NULL, "a", 1, 0), GG_OK);
    gg_msg_free(m);
    assert_int_equal(check(f->r, id, req + 1, T0 + 600), GG_RV_REPLAY);
    restart(f, 1000);
    assert_int_equal(check(f->r, id, req + 2, T0 + 700), GG_RV_REPLAY);
}

/* Killed after the lease, before the check: nothing was recorded; the
 * request comes back fresh, once. */
static void test_killed_before_check_the_request_is_fresh_once(void **state)
{
    fx *f = *state;
    uint8_t id[16];
    int64_t req = 0;
    gg_msg *m;

    gg_new_id(id);
    child_crash(f, id, 0, &req);
    assert_int_equal(gg_replay_count(f->r), 0);
    m = lease_again(f->st);
    assert_int_equal(m->id, req);
    assert_int_equal(check(f->r, id, m->id, T0 + 500), GG_RV_FRESH);
    assert_int_equal(check(f->r, id, req + 1, T0 + 600), GG_RV_REPLAY);
    gg_msg_free(m);
}

/* A write failure fails the store call whose COMMIT would have written
 * the record, never the check (it writes nothing): the claim stays, a copy
 * is still a replay, and the next commit that succeeds writes it
 * (test_replay_claims.c has the row-level test). */
static void test_storage_fault_fails_the_commit_and_keeps_the_record(void **state)
{
    fx *f = *state;
    uint8_t id[16];

    gg_new_id(id);
    gg_log_set_level(GG_LOG_ERROR + 1);
    assert_int_equal(gg_store_fault_arm(GG_FAULT_WRITE, 1, GG_EIO, 0), GG_OK);
    assert_int_equal(check(f->r, id, 1, T0), GG_RV_FRESH);
    assert_int_not_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, NULL), GG_OK);
    gg_store_fault_disarm();
    gg_log_set_level(GG_LOG_WARN);
    assert_int_equal(gg_replay_count(f->r), 1);
    assert_int_equal(check(f->r, id, 2, T0 + 20), GG_RV_REPLAY);
    assert_int_equal(gg_store_put(f->st, "requests", NULL, "q", 1, 0, NULL), GG_OK);
    restart(f, 1000);
    assert_int_equal(check(f->r, id, 3, T0 + 30), GG_RV_REPLAY);
}

/* old_file - a replay file as earlier versions wrote it: horizon h, one
 * live row (live, local 5) and one below the horizon (dead). */
static void old_file(const char *path, int64_t h, const uint8_t live[16], const uint8_t dead[16])
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char sql[256];

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE seen(id BLOB PRIMARY KEY, created_ms INTEGER NOT NULL,"
        " local_id INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
        "INSERT INTO meta(k, v) VALUES ('version', 1);", NULL, NULL, NULL), SQLITE_OK);
    snprintf(sql, sizeof sql, "INSERT INTO meta(k, v) VALUES ('horizon', %lld)", (long long)h);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO seen VALUES (?1, ?2, ?3)", -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(s, 1, live, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, T0);
    sqlite3_bind_int64(s, 3, 5);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_reset(s);
    sqlite3_bind_blob(s, 1, dead, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, h - 1);
    sqlite3_bind_int64(s, 3, 6);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* An upgrade from a separate replay.db forgets no live id and keeps its
 * horizon; opening again imports nothing twice. */
static void test_live_ids_of_an_old_replay_file_are_imported(void **state)
{
    fx *f = *state;
    char old[700];
    uint8_t live[16], dead[16], fresh[16];
    gg_replay_cfg c = { old, WIN, SKEW, 1000 };
    gg_replay_verdict v;
    int64_t h = T0 - 1000;

    gg_new_id(live);
    gg_new_id(dead);
    gg_new_id(fresh);
    snprintf(old, sizeof old, "%s/replay.db", f->dir);
    old_file(old, h, live, dead);
    for (int round = 0; round < 2; round++) {
        gg_replay_close(f->r);
        f->r = NULL;
        assert_int_equal(gg_replay_open(&c, f->st, &f->r), GG_OK);
        assert_int_equal(gg_replay_count(f->r), 1);
        assert_int_equal(check(f->r, live, 5, T0 + 10), GG_RV_REDELIVERY);
        assert_int_equal(check(f->r, live, 9, T0 + 10), GG_RV_REPLAY);
        /* the old horizon holds: created before it is stale though in the window */
        assert_int_equal(gg_replay_check(f->r, dead, h - 1, 6, T0 + 10, &v), GG_OK);
        assert_int_equal(v, GG_RV_STALE);
    }
    assert_int_equal(check(f->r, fresh, 7, T0 + 20), GG_RV_FRESH);
    /* durable: after a restart of the store, without the old file */
    unlink(old);
    restart(f, 1000);
    assert_int_equal(check(f->r, live, 9, T0 + 30), GG_RV_REPLAY);
    assert_int_equal(check(f->r, fresh, 8, T0 + 30), GG_RV_REPLAY);
    assert_int_equal(gg_replay_count(f->r), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_check_has_no_fsync_and_the_ack_makes_it_durable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_killed_between_check_and_ack_the_request_is_processed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_before_check_the_request_is_fresh_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_fault_fails_the_commit_and_keeps_the_record,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_ids_of_an_old_replay_file_are_imported, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
