/* buf.h - a growable byte buffer with a hard maximum.
 *
 * Every buffer fed from outside has a maximum; growing past it fails with
 * GG_ETOOBIG and leaves the buffer unchanged. The buffer owns its memory;
 * gg_buf_free releases it and leaves an empty buffer.
 */
#ifndef GG_CORE_BUF_H
#define GG_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct gg_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max; /* 0 means SIZE_MAX/2 */
} gg_buf;

#define GG_BUF_INIT(maxbytes) { NULL, 0, 0, (maxbytes) }

gg_err gg_buf_reserve(gg_buf *b, size_t extra);
gg_err gg_buf_append(gg_buf *b, const void *p, size_t n);
gg_err gg_buf_put_u8(gg_buf *b, uint8_t v);
gg_err gg_buf_put_u16(gg_buf *b, uint16_t v);   /* big-endian */
gg_err gg_buf_put_u32(gg_buf *b, uint32_t v);   /* big-endian */
gg_err gg_buf_put_u64(gg_buf *b, uint64_t v);   /* big-endian */
/* gg_buf_put_str16 - u16 big-endian length, then the bytes of s (no NUL). */
gg_err gg_buf_put_str16(gg_buf *b, const char *s);
void gg_buf_reset(gg_buf *b);
void gg_buf_free(gg_buf *b);

/* A bounds-checked reader over bytes it does not own. Every get fails with
 * GG_EPROTO when fewer bytes remain than asked for, and moves nothing. */
typedef struct gg_rd {
    const uint8_t *p;
    size_t len;
    size_t off;
} gg_rd;

static inline gg_rd gg_rd_make(const void *p, size_t len)
{
    gg_rd r = { (const uint8_t *)p, len, 0 };
    return r;
}
gg_err gg_rd_u8(gg_rd *r, uint8_t *v);
gg_err gg_rd_u16(gg_rd *r, uint16_t *v);
gg_err gg_rd_u32(gg_rd *r, uint32_t *v);
gg_err gg_rd_u64(gg_rd *r, uint64_t *v);
gg_err gg_rd_bytes(gg_rd *r, size_t n, const uint8_t **p);
/* gg_rd_str16 - u16 length then bytes, copied with NUL into out (size outsz);
 * GG_EPROTO if it does not fit or contains a NUL byte. */
gg_err gg_rd_str16(gg_rd *r, char *out, size_t outsz);
static inline size_t gg_rd_left(const gg_rd *r) { return r->len - r->off; }

#endif
