/* frame.h - the channel's wire framing (internal to src/channel).
 *
 * A frame is [u32 length][u8 type][body], big-endian, where length counts
 * the type byte and the body (so length >= 1) and never exceeds
 * GG_FRAME_MAX. Encoders append whole frames to a gg_buf or fail leaving it
 * unchanged; decoders read a body they do not own, check every field and
 * bound, and reject trailing bytes. The layout is specified byte for byte in
 * docs/protocol.md ("Channel"); changing it means bumping GG_FRAME_VERSION.
 */
#ifndef GG_CHANNEL_FRAME_H
#define GG_CHANNEL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/store.h"

#define GG_FRAME_VERSION 1
#define GG_FRAME_MAX (8u * 1024u * 1024u)  /* type byte + body */
#define GG_FRAME_HDR 4u                     /* the u32 length */
#define GG_FRAME_SITE_MAX 64                /* site name, with NUL */
/* Fixed bytes of one BATCH item besides its dest name and data. */
#define GG_FRAME_ITEM_FIXED (8u + 2u + 8u + 4u)
/* Bytes of a BATCH frame besides its items: length, type, count. */
#define GG_FRAME_BATCH_FIXED (GG_FRAME_HDR + 1u + 4u)

enum gg_frame_type {
    GG_FRAME_HELLO = 1,
    GG_FRAME_BATCH = 2,
    GG_FRAME_ACK = 3,
    GG_FRAME_PING = 4,
    GG_FRAME_PONG = 5,
};

typedef struct gg_frame_hello {
    uint16_t version;
    char site[GG_FRAME_SITE_MAX];
    int64_t mark;
} gg_frame_hello;

/* One decoded BATCH item; data points into the frame body. */
typedef struct gg_frame_item {
    int64_t seq;
    char dest[GG_QUEUE_NAME_MAX];
    int64_t expiry_ms;
    const uint8_t *data;
    uint32_t len;
} gg_frame_item;

/* gg_frame_split - look for one whole frame at the start of p (avail bytes).
 * GG_OK with *total = header + length when complete, GG_OK with *total = 0
 * when more bytes are needed, GG_EPROTO when the length is 0 or above
 * GG_FRAME_MAX (the stream cannot be resynchronised: close it). */
gg_err gg_frame_split(const uint8_t *p, size_t avail, size_t *total);

/* gg_frame_length - from the 4 header bytes alone: *total = header + length,
 * or GG_EPROTO as gg_frame_split. */
gg_err gg_frame_length(const uint8_t hdr[GG_FRAME_HDR], size_t *total);

/* gg_frame_put_hello - append HELLO {version, site, mark}. */
gg_err gg_frame_put_hello(gg_buf *b, const char *site, int64_t mark);

/* gg_frame_put_ack - append ACK {mark}. */
gg_err gg_frame_put_ack(gg_buf *b, int64_t mark);

/* gg_frame_put_ping - append PING or PONG (type) {u64 stamp}. */
gg_err gg_frame_put_ping(gg_buf *b, int type, uint64_t stamp);

/* A BATCH under construction inside a gg_buf: begin, add items, end. */
typedef struct gg_frame_batch {
    size_t start;     /* offset of the frame in the buffer */
    uint32_t count;
} gg_frame_batch;

/* gg_frame_batch_begin - append an empty BATCH frame header. */
gg_err gg_frame_batch_begin(gg_buf *b, gg_frame_batch *fb);

/* gg_frame_item_size - encoded bytes of one item. */
size_t gg_frame_item_size(const char *dest, size_t len);

/* gg_frame_batch_add - append one item. GG_ETOOBIG (buffer unchanged) if the
 * frame would pass GG_FRAME_MAX; GG_EINVAL for a seq <= 0, an empty or too
 * long dest. */
gg_err gg_frame_batch_add(gg_buf *b, gg_frame_batch *fb, int64_t seq, const char *dest,
                          int64_t expiry_ms, const void *data, size_t len);

/* gg_frame_batch_end - patch the frame's length and count. */
void gg_frame_batch_end(gg_buf *b, const gg_frame_batch *fb);

/* gg_frame_head - type and body of the complete frame at p (total bytes,
 * as returned by gg_frame_split). */
void gg_frame_head(const uint8_t *p, size_t total, int *type, const uint8_t **body,
                   size_t *len);

/* Decoders: GG_EPROTO on any short, over-long or out-of-range field. */
gg_err gg_frame_get_hello(const uint8_t *body, size_t len, gg_frame_hello *h);
gg_err gg_frame_get_ack(const uint8_t *body, size_t len, int64_t *mark);
gg_err gg_frame_get_ping(const uint8_t *body, size_t len, uint64_t *stamp);

/* gg_frame_get_batch - decode a BATCH body. *items (array of *n, n >= 1) is
 * allocated here and freed by the caller with free(); it points into body.
 * Seqs must be positive and strictly increasing; dest names non-empty,
 * printable and shorter than GG_QUEUE_NAME_MAX. */
gg_err gg_frame_get_batch(const uint8_t *body, size_t len, gg_frame_item **items, size_t *n);

/* gg_frame_type_name - "hello", "batch", ... or "unknown". */
const char *gg_frame_type_name(int type);

#endif
