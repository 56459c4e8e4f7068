/* store_fixture.h - the fixture of the store unit tests: a store opened
 * with default options in a private temporary directory, closed and
 * removed after each test, and the helpers every store test uses.
 * Functions are static inline so each test_store*.c file takes what it
 * needs. A file defines STORE_FIX_PREFIX (its directories' name prefix)
 * before including this header. teardown also disarms the fault seam and
 * resets the clock offset, which some tests set. */
#ifndef GG_TEST_STORE_FIXTURE_H
#define GG_TEST_STORE_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "store/fault.h"
#include "store/store.h"
#include "tmpdir.h"

#ifndef STORE_FIX_PREFIX
#error "define STORE_FIX_PREFIX before including store_fixture.h"
#endif

typedef struct fix {
    char dir[512];
    char path[600];     /* store.db in dir */
    gg_store *st;
} fix;

static inline int setup(void **state)
{
    fix *f = calloc(1, sizeof *f);

    assert_non_null(f);
    assert_non_null(gg_test_mkdtemp(f->dir, sizeof f->dir, STORE_FIX_PREFIX));
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    assert_int_equal(gg_store_open(f->path, NULL, &f->st), GG_OK);
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    fix *f = *state;

    gg_store_fault_disarm();
    gg_clock_set_offset_ms(0);
    gg_store_close(f->st);
    gg_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* reopen - close the store and open it again with o (NULL: defaults). */
static inline void reopen(fix *f, const gg_store_opts *o)
{
    gg_store_close(f->st);
    f->st = NULL;
    assert_int_equal(gg_store_open(f->path, o, &f->st), GG_OK);
}

static inline gg_store_stats stats(fix *f)
{
    gg_store_stats s;

    assert_int_equal(gg_store_get_stats(f->st, &s), GG_OK);
    return s;
}

static inline int64_t depth(fix *f, const char *q)
{
    int64_t d = -1;

    assert_int_equal(gg_store_depth(f->st, q, &d), GG_OK);
    return d;
}

#endif
