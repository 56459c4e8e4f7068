/* market_fixture.h - a seeded marketing database for unit tests: a private
 * directory (tmpdir.h) holding mkt.db, the services context over it, SQL
 * probes into the file and binding tokens for its accounts. Static inline,
 * for any test file that includes cmocka first. Setup helpers return a
 * status for a cmocka setup; probes fail the test instead. */
#ifndef GG_TEST_MARKET_FIXTURE_H
#define GG_TEST_MARKET_FIXTURE_H

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/rand.h"
#include "envelope/token.h"
#include "marketing/marketing.h"
#include "marketing/seed.h"
#include "services/services.h"
#include "tmpdir.h"

typedef struct gg_test_mkt {
    char dir[512];      /* private to the test; removed by gg_test_mkt_remove */
    char db[600];       /* dir/mkt.db */
} gg_test_mkt;

/* gg_test_mkt_dir - a new directory named prefix + 6 characters and the
 * database path in it (no file yet); -1 if the directory cannot be made. */
static inline int gg_test_mkt_dir(gg_test_mkt *m, const char *prefix)
{
    if (gg_test_mkdtemp(m->dir, sizeof m->dir, prefix) == NULL)
        return -1;
    snprintf(m->db, sizeof m->db, "%s/mkt.db", m->dir);
    return 0;
}

/* gg_test_mkt_seed - gg_test_mkt_dir, then the database seeded with o;
 * -1 if either fails. */
static inline int gg_test_mkt_seed(gg_test_mkt *m, const char *prefix, const gg_seed_opts *o)
{
    if (gg_test_mkt_dir(m, prefix) != 0 || gg_seed_sqlite(m->db, o) != GG_OK)
        return -1;
    return 0;
}

/* gg_test_mkt_remove - remove the directory and everything in it. */
static inline void gg_test_mkt_remove(gg_test_mkt *m)
{
    if (m->dir[0] != '\0')
        gg_test_rmtree(m->dir);
}

/* gg_test_mkt_ctx - a services context on db: a fresh random token key
 * into key, tokens valid ttl_ms, the clock read now; ctx->mkt is the
 * caller's to close. The open's error if it fails. */
static inline gg_err gg_test_mkt_ctx(const char *db, uint8_t key[GG_TOKEN_KEY_LEN], int64_t ttl_ms,
                                     gg_svc_ctx *ctx)
{
    gg_random(key, GG_TOKEN_KEY_LEN);
    ctx->token_key = key;
    ctx->token_ttl_ms = ttl_ms;
    ctx->now_ms = gg_now_ms();
    return gg_mkt_open(db, &ctx->mkt);
}

/* gg_test_mkt_ctx_close - close ctx's marketing connection (if open) and
 * remove m's directory. */
static inline void gg_test_mkt_ctx_close(gg_test_mkt *m, gg_svc_ctx *ctx)
{
    gg_mkt_close(ctx->mkt);
    ctx->mkt = NULL;
    gg_test_mkt_remove(m);
}

/* gg_test_mkt_text - the first column of the first row of sql on db, as
 * text into out ("" if there is none); fails the test if sql is bad. */
static inline void gg_test_mkt_text(const char *db, const char *sql, char *out, size_t outsz)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;

    out[0] = '\0';
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/* gg_test_token - a binding token signed with key for user and account,
 * with scopes, expiring at expiry_ms, into out; gg_token_issue's result. */
static inline gg_err gg_test_token(const uint8_t *key, const char *user, const char *account,
                                   uint32_t scopes, int64_t expiry_ms, char *out, size_t outsz)
{
    gg_token_claims c;

    memset(&c, 0, sizeof c);
    snprintf(c.portal_user_id, sizeof c.portal_user_id, "%s", user);
    snprintf(c.account_no, sizeof c.account_no, "%s", account);
    c.scopes = scopes;
    c.expiry_ms = expiry_ms;
    return gg_token_issue(key, &c, out, outsz);
}

#endif
