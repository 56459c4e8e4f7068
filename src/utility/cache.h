/* cache.h - the utility's read-through cache of query results.
 *
 * Keys are text (transaction code and the request's fields but the token:
 * the caller checks the token first, a cached answer is never a way around
 * it); values are reply payloads as JSON text, tagged with the account
 * they describe. At most `entries` values are kept, least recently used
 * first out; a value is fresh for ttl_ms, and callers may accept older
 * ones (stale, when the governor is saturated). gg_cache_invalidate drops
 * every value of an account (after a payment for it). Thread-safe: one
 * mutex, held only for table operations, never during I/O.
 */
#ifndef GG_UTILITY_CACHE_H
#define GG_UTILITY_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define GG_CACHE_KEY_MAX 512
#define GG_CACHE_VALUE_MAX (256u * 1024u)   /* bigger replies are not cached */

typedef struct gg_cache gg_cache;

/* gg_cache_new - a cache of up to entries values (0: a cache that keeps
 * nothing). */
gg_err gg_cache_new(size_t entries, gg_cache **out);
void gg_cache_free(gg_cache *c);

/* gg_cache_get - a malloc'd copy of the value of key if it is at most
 * max_age_ms old (*age_ms gets its age), else NULL. */
char *gg_cache_get(gg_cache *c, const char *key, int64_t now_ms, int64_t max_age_ms,
                   int64_t *age_ms);

/* gg_cache_put - store value (copied) under key for account. Values over
 * GG_CACHE_VALUE_MAX and keys over GG_CACHE_KEY_MAX are ignored. */
void gg_cache_put(gg_cache *c, const char *key, const char *account, const char *value,
                  int64_t now_ms);

/* gg_cache_invalidate - drop every value of account; returns how many. */
size_t gg_cache_invalidate(gg_cache *c, const char *account);

/* gg_cache_size - values held now. */
size_t gg_cache_size(gg_cache *c);

#endif
