/* buf.c - growable buffer with a hard maximum, and a bounds-checked reader. */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

/* limit - the effective maximum of b. */
static size_t limit(const gg_buf *b)
{
    return b->max ? b->max : SIZE_MAX / 2;
}

gg_err gg_buf_reserve(gg_buf *b, size_t extra)
{
    if (extra > limit(b) || b->len > limit(b) - extra)
        return GG_ETOOBIG;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return GG_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 4 ? need : cap * 2;
    if (cap > limit(b))
        cap = limit(b);
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return GG_ENOMEM;
    b->data = p;
    b->cap = cap;
    return GG_OK;
}

gg_err gg_buf_append(gg_buf *b, const void *p, size_t n)
{
    gg_err e = gg_buf_reserve(b, n);
    if (e != GG_OK)
        return e;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return GG_OK;
}

gg_err gg_buf_put_u8(gg_buf *b, uint8_t v)
{
    return gg_buf_append(b, &v, 1);
}

gg_err gg_buf_put_u16(gg_buf *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    return gg_buf_append(b, x, 2);
}

gg_err gg_buf_put_u32(gg_buf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    return gg_buf_append(b, x, 4);
}

gg_err gg_buf_put_u64(gg_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (56 - 8 * i));
    return gg_buf_append(b, x, 8);
}

gg_err gg_buf_put_str16(gg_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT16_MAX)
        return GG_ETOOBIG;
    gg_err e = gg_buf_reserve(b, 2 + n);
    if (e != GG_OK)
        return e;
    gg_buf_put_u16(b, (uint16_t)n);
    return gg_buf_append(b, s, n);
}

void gg_buf_reset(gg_buf *b)
{
    b->len = 0;
}

void gg_buf_free(gg_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

gg_err gg_rd_bytes(gg_rd *r, size_t n, const uint8_t **p)
{
    if (n > r->len - r->off)
        return GG_EPROTO;
    *p = r->p + r->off;
    r->off += n;
    return GG_OK;
}

gg_err gg_rd_u8(gg_rd *r, uint8_t *v)
{
    const uint8_t *p;
    gg_err e = gg_rd_bytes(r, 1, &p);
    if (e == GG_OK)
        *v = p[0];
    return e;
}

gg_err gg_rd_u16(gg_rd *r, uint16_t *v)
{
    const uint8_t *p;
    gg_err e = gg_rd_bytes(r, 2, &p);
    if (e == GG_OK)
        *v = (uint16_t)(p[0] << 8 | p[1]);
    return e;
}

gg_err gg_rd_u32(gg_rd *r, uint32_t *v)
{
    const uint8_t *p;
    gg_err e = gg_rd_bytes(r, 4, &p);
    if (e == GG_OK)
        *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return e;
}

gg_err gg_rd_u64(gg_rd *r, uint64_t *v)
{
    const uint8_t *p;
    gg_err e = gg_rd_bytes(r, 8, &p);
    if (e != GG_OK)
        return e;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    *v = x;
    return GG_OK;
}

gg_err gg_rd_str16(gg_rd *r, char *out, size_t outsz)
{
    size_t save = r->off;
    uint16_t n;
    const uint8_t *p;
    gg_err e = gg_rd_u16(r, &n);
    if (e != GG_OK)
        return e;
    if ((size_t)n >= outsz || gg_rd_bytes(r, n, &p) != GG_OK || memchr(p, 0, n)) {
        r->off = save;
        return GG_EPROTO;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return GG_OK;
}
