/* replay_fixture.h - the fixture of the replay unit tests: a queue store
 * in a private directory and the replay store in its tables. Static, for
 * the test_replay*.c files. */
#ifndef GG_TEST_REPLAY_FIXTURE_H
#define GG_TEST_REPLAY_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "envelope/replay.h"
#include "store/store.h"
#include "tmpdir.h"

#define WIN 300000
#define SKEW 30000
#define T0 1700000000000LL

typedef struct fx {
    char dir[512];
    char path[600];     /* the queue store */
    gg_store *st;
    gg_replay *r;
} fx;

/* open_max - the replay store in f->st with max entries. */
static gg_replay *open_max(fx *f, int64_t max)
{
    gg_replay_cfg c = { NULL, WIN, SKEW, max };
    gg_replay *r = NULL;

    assert_int_equal(gg_replay_open(&c, f->st, &r), GG_OK);
    return r;
}

/* restart - close the replay store and the queue store, open both again. */
static void restart(fx *f, int64_t max)
{
    gg_replay_close(f->r);
    gg_store_close(f->st);
    f->st = NULL;
    assert_int_equal(gg_store_open(f->path, NULL, &f->st), GG_OK);
    f->r = open_max(f, max);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);

    gg_log_set_level(GG_LOG_WARN);
    assert_non_null(gg_test_mkdtemp(f->dir, sizeof f->dir, "replay"));
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    assert_int_equal(gg_store_open(f->path, NULL, &f->st), GG_OK);
    f->r = open_max(f, 1000);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    gg_replay_close(f->r);
    gg_store_close(f->st);
    gg_test_rmtree(f->dir);
    free(f);
    return 0;
}

#endif
