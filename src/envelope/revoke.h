/* revoke.h - the utility's list of revoked binding tokens.
 *
 * Owns one SQLite file (security.revoked_db, default revoked.db beside the
 * utility's store): token ids (token.h, 32 hex digits) revoked by the
 * citizen (DELETE /api/v1/bindings -> txn "unbind"), each kept until the
 * token's own expiry, after which the MAC check refuses it anyway; so the
 * list is bounded by the tokens alive. A revocation returns only once it
 * is durable; every account service asks gg_revoke_check before it reads.
 * Thread-safe (one connection behind a mutex). Deployments with several
 * utility processes must share one file (same host) -- see docs/api.md.
 */
#ifndef GG_ENVELOPE_REVOKE_H
#define GG_ENVELOPE_REVOKE_H

#include <stdint.h>

#include "core/err.h"

typedef struct gg_revoke gg_revoke;
struct gg_config;

/* gg_revoke_open - open or create the list at path. GG_EIO (logged). */
gg_err gg_revoke_open(const char *path, gg_revoke **out);

/* gg_revoke_open_config - path from security.revoked_db, else revoked.db
 * in the directory of store.path. */
gg_err gg_revoke_open_config(const struct gg_config *cfg, gg_revoke **out);

/* gg_revoke_close - close; NULL is fine. */
void gg_revoke_close(gg_revoke *r);

/* gg_revoke_add - revoke token_id (32 hex digits) until expiry_ms; tokens
 * expired before now_ms are forgotten in the same transaction. Revoking
 * twice is fine. GG_EINVAL bad id, GG_EIO. */
gg_err gg_revoke_add(gg_revoke *r, const char *token_id, int64_t expiry_ms, int64_t now_ms);

/* gg_revoke_check - *revoked = 1 if token_id is on the list. GG_EIO when
 * the list cannot be read: callers must refuse the token (fail closed). */
gg_err gg_revoke_check(gg_revoke *r, const char *token_id, int *revoked);

#endif
