/* frame.c - encode and decode channel frames (see frame.h). */
#include "channel/frame.h"

#include <stdlib.h>
#include <string.h>

/* put_be32 - write v big-endian at p. */
static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* get_be32 - read a big-endian u32 at p. */
static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

gg_err gg_frame_length(const uint8_t hdr[GG_FRAME_HDR], size_t *total)
{
    uint32_t len = get_be32(hdr);
    if (len == 0 || len > GG_FRAME_MAX)
        return GG_EPROTO;
    *total = GG_FRAME_HDR + (size_t)len;
    return GG_OK;
}

gg_err gg_frame_split(const uint8_t *p, size_t avail, size_t *total)
{
    size_t need;
    *total = 0;
    if (avail < GG_FRAME_HDR)
        return GG_OK;
    gg_err e = gg_frame_length(p, &need);
    if (e != GG_OK)
        return e;
    if (avail >= need)
        *total = need;
    return GG_OK;
}

void gg_frame_head(const uint8_t *p, size_t total, int *type, const uint8_t **body,
                   size_t *len)
{
    *type = p[GG_FRAME_HDR];
    *body = p + GG_FRAME_HDR + 1;
    *len = total - GG_FRAME_HDR - 1;
}

/* put_small - append a frame of type with body (n bytes), all or nothing. */
static gg_err put_small(gg_buf *b, int type, const uint8_t *body, size_t n)
{
    gg_err e = gg_buf_reserve(b, GG_FRAME_HDR + 1 + n);
    if (e != GG_OK)
        return e;
    gg_buf_put_u32(b, (uint32_t)(1 + n));
    gg_buf_put_u8(b, (uint8_t)type);
    return gg_buf_append(b, body, n);
}

/* be64 - v big-endian into out[8]. */
static void be64(uint8_t *out, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

gg_err gg_frame_put_hello(gg_buf *b, const char *site, int64_t mark)
{
    size_t n = strlen(site);
    if (n == 0 || n >= GG_FRAME_SITE_MAX || mark < 0)
        return GG_EINVAL;
    uint8_t body[2 + 2 + GG_FRAME_SITE_MAX + 8];
    size_t off = 0;
    body[off++] = (uint8_t)(GG_FRAME_VERSION >> 8);
    body[off++] = (uint8_t)GG_FRAME_VERSION;
    body[off++] = (uint8_t)(n >> 8);
    body[off++] = (uint8_t)n;
    memcpy(body + off, site, n);
    off += n;
    be64(body + off, (uint64_t)mark);
    off += 8;
    return put_small(b, GG_FRAME_HELLO, body, off);
}

gg_err gg_frame_put_ack(gg_buf *b, int64_t mark)
{
    if (mark < 0)
        return GG_EINVAL;
    uint8_t body[8];
    be64(body, (uint64_t)mark);
    return put_small(b, GG_FRAME_ACK, body, sizeof body);
}

gg_err gg_frame_put_ping(gg_buf *b, int type, uint64_t stamp)
{
    if (type != GG_FRAME_PING && type != GG_FRAME_PONG)
        return GG_EINVAL;
    uint8_t body[8];
    be64(body, stamp);
    return put_small(b, type, body, sizeof body);
}

gg_err gg_frame_batch_begin(gg_buf *b, gg_frame_batch *fb)
{
    gg_err e = gg_buf_reserve(b, GG_FRAME_BATCH_FIXED);
    if (e != GG_OK)
        return e;
    fb->start = b->len;
    fb->count = 0;
    gg_buf_put_u32(b, 0);
    gg_buf_put_u8(b, GG_FRAME_BATCH);
    return gg_buf_put_u32(b, 0);
}

size_t gg_frame_item_size(const char *dest, size_t len)
{
    return GG_FRAME_ITEM_FIXED + strlen(dest) + len;
}

/* valid_name - a queue name a receiving store can use: non-empty, shorter
 * than GG_QUEUE_NAME_MAX, printable ASCII without spaces. */
static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n >= GG_QUEUE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] > '~')
            return 0;
    }
    return 1;
}

gg_err gg_frame_batch_add(gg_buf *b, gg_frame_batch *fb, int64_t seq, const char *dest,
                          int64_t expiry_ms, const void *data, size_t len)
{
    size_t dn = strlen(dest);
    if (seq <= 0 || !valid_name(dest, dn) || expiry_ms < 0)
        return GG_EINVAL;
    if (len > GG_FRAME_MAX)
        return GG_ETOOBIG;
    size_t item = gg_frame_item_size(dest, len);
    size_t used = b->len - fb->start - GG_FRAME_HDR;
    if (used + item > GG_FRAME_MAX || fb->count == UINT32_MAX)
        return GG_ETOOBIG;
    gg_err e = gg_buf_reserve(b, item);
    if (e != GG_OK)
        return e;
    gg_buf_put_u64(b, (uint64_t)seq);
    gg_buf_put_str16(b, dest);
    gg_buf_put_u64(b, (uint64_t)expiry_ms);
    gg_buf_put_u32(b, (uint32_t)len);
    gg_buf_append(b, data, len);
    fb->count++;
    return GG_OK;
}

void gg_frame_batch_end(gg_buf *b, const gg_frame_batch *fb)
{
    uint8_t *p = b->data + fb->start;
    put_be32(p, (uint32_t)(b->len - fb->start - GG_FRAME_HDR));
    put_be32(p + GG_FRAME_HDR + 1, fb->count);
}

/* get_i64 - a u64 that must fit in int64_t. */
static gg_err get_i64(gg_rd *r, int64_t *v)
{
    uint64_t u;
    gg_err e = gg_rd_u64(r, &u);
    if (e != GG_OK)
        return e;
    if (u > INT64_MAX)
        return GG_EPROTO;
    *v = (int64_t)u;
    return GG_OK;
}

gg_err gg_frame_get_hello(const uint8_t *body, size_t len, gg_frame_hello *h)
{
    gg_rd r = gg_rd_make(body, len);
    gg_err e = gg_rd_u16(&r, &h->version);
    if (e == GG_OK)
        e = gg_rd_str16(&r, h->site, sizeof h->site);
    if (e == GG_OK)
        e = get_i64(&r, &h->mark);
    if (e == GG_OK && (gg_rd_left(&r) != 0 || h->site[0] == '\0'))
        e = GG_EPROTO;
    return e;
}

gg_err gg_frame_get_ack(const uint8_t *body, size_t len, int64_t *mark)
{
    gg_rd r = gg_rd_make(body, len);
    gg_err e = get_i64(&r, mark);
    if (e == GG_OK && gg_rd_left(&r) != 0)
        e = GG_EPROTO;
    return e;
}

gg_err gg_frame_get_ping(const uint8_t *body, size_t len, uint64_t *stamp)
{
    gg_rd r = gg_rd_make(body, len);
    gg_err e = gg_rd_u64(&r, stamp);
    if (e == GG_OK && gg_rd_left(&r) != 0)
        e = GG_EPROTO;
    return e;
}

gg_err gg_frame_get_batch(const uint8_t *body, size_t len, gg_frame_item **items, size_t *n)
{
    gg_frame_item *arr = NULL;
    gg_rd r = gg_rd_make(body, len);
    uint32_t count;
    gg_err e = gg_rd_u32(&r, &count);
    if (e != GG_OK)
        goto out;
    /* Each item needs at least its fixed bytes plus one byte of name, so
     * the count is bounded by the body and cannot force a huge allocation. */
    if (count == 0 || count > gg_rd_left(&r) / (GG_FRAME_ITEM_FIXED + 1)) {
        e = GG_EPROTO;
        goto out;
    }
    arr = calloc(count, sizeof *arr);
    if (!arr) {
        e = GG_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < count; i++) {
        gg_frame_item *it = &arr[i];
        e = get_i64(&r, &it->seq);
        if (e == GG_OK)
            e = gg_rd_str16(&r, it->dest, sizeof it->dest);
        if (e == GG_OK)
            e = get_i64(&r, &it->expiry_ms);
        if (e == GG_OK)
            e = gg_rd_u32(&r, &it->len);
        if (e == GG_OK)
            e = gg_rd_bytes(&r, it->len, &it->data);
        if (e != GG_OK)
            goto out;
        if (it->seq <= 0 || (i > 0 && it->seq <= arr[i - 1].seq) ||
            !valid_name(it->dest, strlen(it->dest))) {
            e = GG_EPROTO;
            goto out;
        }
    }
    if (gg_rd_left(&r) != 0) {
        e = GG_EPROTO;
        goto out;
    }
    *items = arr;
    *n = count;
    arr = NULL;
out:
    free(arr);
    return e;
}

const char *gg_frame_type_name(int type)
{
    switch (type) {
    case GG_FRAME_HELLO: return "hello";
    case GG_FRAME_BATCH: return "batch";
    case GG_FRAME_ACK: return "ack";
    case GG_FRAME_PING: return "ping";
    case GG_FRAME_PONG: return "pong";
    default: return "unknown";
    }
}
