/* fuzz_frame.c - libFuzzer entry for the channel's frame decoders.
 *
 * The input is treated as bytes read from a peer: split into frames with
 * gg_frame_split, and each complete frame's body handed to the decoder of
 * its type and to every other decoder too (a decoder must refuse, never
 * crash, on another type's body). A decoded BATCH is re-encoded and must
 * decode to the same items.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channel/frame.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check_batch - re-encode decoded items and compare. */
static void check_batch(const gg_frame_item *it, size_t n)
{
    gg_buf b = GG_BUF_INIT(0);
    gg_frame_batch fb;
    gg_frame_item *again = NULL;
    size_t m = 0, total = 0, blen = 0, i;
    const uint8_t *body;
    int type = 0;

    if (gg_frame_batch_begin(&b, &fb) != GG_OK)
        goto out;
    for (i = 0; i < n; i++) {
        if (gg_frame_batch_add(&b, &fb, it[i].seq, it[i].dest, it[i].expiry_ms, it[i].data,
                               it[i].len) != GG_OK)
            abort();
    }
    gg_frame_batch_end(&b, &fb);
    if (gg_frame_split(b.data, b.len, &total) != GG_OK || total != b.len)
        abort();
    gg_frame_head(b.data, total, &type, &body, &blen);
    if (type != GG_FRAME_BATCH || gg_frame_get_batch(body, blen, &again, &m) != GG_OK || m != n)
        abort();
    for (i = 0; i < n; i++) {
        if (again[i].seq != it[i].seq || again[i].len != it[i].len ||
            strcmp(again[i].dest, it[i].dest) != 0 ||
            (it[i].len && memcmp(again[i].data, it[i].data, it[i].len) != 0))
            abort();
    }
out:
    free(again);
    gg_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    gg_log_set_level(GG_LOG_ERROR);
    while (off < size) {
        size_t total = 0, blen = 0, n = 0;
        const uint8_t *body;
        gg_frame_item *items = NULL;
        gg_frame_hello h;
        int64_t mark;
        uint64_t stamp;
        int type = 0;

        if (gg_frame_split(data + off, size - off, &total) != GG_OK || total == 0)
            break;
        gg_frame_head(data + off, total, &type, &body, &blen);
        (void)gg_frame_get_hello(body, blen, &h);
        (void)gg_frame_get_ack(body, blen, &mark);
        (void)gg_frame_get_ping(body, blen, &stamp);
        if (gg_frame_get_batch(body, blen, &items, &n) == GG_OK) {
            if (n == 0 || items == NULL)
                abort();
            check_batch(items, n);
            free(items);
        }
        (void)gg_frame_type_name(type);
        off += total;
    }
    return 0;
}
