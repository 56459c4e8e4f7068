/* token.h - binding tokens: the citizen's consent, issued by the utility.
 *
 * A token binds a portal user id to an account number with scopes and an
 * expiry, and is authenticated with HMAC-SHA256 under the utility's token
 * key, so it cannot be forged, altered or moved to another account.
 * Format: "gg1." base64url(claims) "." base64url(mac); at most
 * GG_TOKEN_MAX bytes. The token never appears in logs.
 */
#ifndef GG_ENVELOPE_TOKEN_H
#define GG_ENVELOPE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define GG_TOKEN_MAX 512
#define GG_TOKEN_KEY_LEN 32

typedef struct gg_token_claims {
    char token_id[33];          /* 16 random bytes, hex */
    char portal_user_id[65];
    char account_no[33];
    uint32_t scopes;            /* GG_SCOPE_* bits */
    int64_t issued_ms;
    int64_t expiry_ms;
} gg_token_claims;

#define GG_SCOPE_READ 1u        /* bills, usage, analysis, advice */
#define GG_SCOPE_PAY 2u         /* payments */

/* gg_token_key_load - read a 32-byte key stored as 64 hex chars in path
 * (trailing newline allowed). GG_ECONFIG, logged, if missing or malformed. */
gg_err gg_token_key_load(const char *path, uint8_t key[GG_TOKEN_KEY_LEN]);

/* gg_token_issue - fill in token_id and issued_ms of c, write the token to
 * out (size >= GG_TOKEN_MAX). portal_user_id (1..64 bytes) and account_no
 * (1..32) must hold no control characters and expiry_ms must be after now:
 * GG_EINVAL otherwise. */
gg_err gg_token_issue(const uint8_t key[GG_TOKEN_KEY_LEN], gg_token_claims *c, char *out,
                      size_t outsz);

/* gg_token_verify - check format and MAC, then expiry against now_ms.
 * GG_EINVAL malformed, GG_ETOOBIG longer than GG_TOKEN_MAX-1 bytes,
 * GG_EDENIED bad MAC, GG_EEXPIRED expired (now_ms >= expiry_ms). On GG_OK
 * fills c (untouched otherwise). Callers still compare c->account_no and
 * portal_user_id. */
gg_err gg_token_verify(const uint8_t key[GG_TOKEN_KEY_LEN], const char *token, int64_t now_ms,
                       gg_token_claims *c);

#endif
