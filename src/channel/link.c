/* link.c - the channel protocol on one authenticated connection.
 *
 * After TLS: each side sends HELLO with its mark (the last peer seq it
 * committed); the peer's mark tells us what to delete and where to resume.
 * Then batches of xmit messages flow under a window of unacknowledged
 * batches, each acknowledged with the receiver's new mark once its store
 * transaction is durable; PING/PONG keep the link proven alive. The
 * numbered invariants are in docs/protocol.md ("Channel").
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "channel/chan_int.h"
#include "core/clock.h"
#include "core/log.h"

static const char COMP[] = "channel";

/* send_out - write the frames gathered in ch->out to c, then clear it. */
static gg_err send_out(gg_conn *c)
{
    gg_channel *ch = c->ch;
    size_t n = ch->out.len;
    gg_err e = GG_OK;
    if (n > 0 && bufferevent_write(c->bev, ch->out.data, n) != 0)
        e = GG_ENOMEM;
    else
        GG_STAT(ch, bytes_out += (int64_t)n);
    gg_buf_reset(&ch->out);
    return e;
}

gg_err gg_link_start(gg_conn *c)
{
    gg_channel *ch = c->ch;
    int64_t mark = 0;
    gg_err e = gg_store_mark(ch->st, ch->peer_name, &mark);
    if (e != GG_OK)
        return e;
    if (!c->inflight) {
        c->inflight = calloc((size_t)ch->cfg.window, sizeof *c->inflight);
        if (!c->inflight)
            return GG_ENOMEM;
    }
    c->ph = PH_HELLO;
    c->last_rx_us = gg_mono_us();
    e = gg_frame_put_hello(&ch->out, ch->local_name, mark);
    if (e == GG_OK)
        e = send_out(c);
    c->mark_in = mark;
    GG_STAT(ch, seq_in = mark);
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    gg_info(COMP, "msg=\"tls up\" peer=%s addr=%s version=%s cipher=%s mark_in=%lld",
            ch->peer_name, c->addr, SSL_get_version(ssl), SSL_get_cipher_name(ssl),
            (long long)mark);
    return e;
}

/* on_hello - the peer's mark: everything up to it arrived, so delete it
 * and resume after it. */
static gg_err on_hello(gg_conn *c, int64_t mark)
{
    gg_channel *ch = c->ch;
    gg_err e = gg_store_delete_upto(ch->st, GG_XMIT_QUEUE, mark);
    if (e != GG_OK)
        gg_warn(COMP, "msg=\"cannot delete delivered messages\" upto=%lld err=%s",
                (long long)mark, gg_errname(e));
    c->cursor = c->acked = mark;
    c->nin = c->head = 0;
    c->ph = PH_RUN;
    c->run_us = gg_mono_us();
    pthread_mutex_lock(&ch->mu);
    ch->stats.state = GG_CHANNEL_RUNNING;
    ch->stats.seq_out_acked = mark;
    ch->stats.batches_in_flight = 0;
    ch->stats.seq_out_sent = mark;
    ch->stats.up_since_ms = gg_now_ms();
    if (ch->ever_up)
        ch->stats.reconnects++;
    pthread_mutex_unlock(&ch->mu);
    ch->ever_up = 1;
    gg_info(COMP, "msg=\"link up\" peer=%s addr=%s mark_out=%lld", ch->peer_name, c->addr,
            (long long)mark);
    return gg_link_pump(c);
}

/* skip_msg - a message the channel cannot carry: log it and move past. */
static void skip_msg(gg_conn *c, const gg_msg *m, const char *why)
{
    gg_error(COMP, "msg=\"message not sent\" id=%lld len=%zu reason=\"%s\"",
             (long long)m->id, m->len, why);
    GG_STAT(c->ch, dropped++);
    c->cursor = m->id;
}

/* send_batch - frame msgs (in id order) as one BATCH, as many as fit, and
 * send it. Always moves the cursor past at least one message. */
static gg_err send_batch(gg_conn *c, gg_msg **msgs, size_t n)
{
    gg_channel *ch = c->ch;
    gg_frame_batch fb;
    int64_t last = 0;
    gg_err e = gg_frame_batch_begin(&ch->out, &fb);
    if (e != GG_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const gg_msg *m = msgs[i];
        if (m->len > GG_CHANNEL_MSG_MAX) {
            skip_msg(c, m, "larger than GG_CHANNEL_MSG_MAX");
            continue;
        }
        e = gg_frame_batch_add(&ch->out, &fb, m->id, m->dest, m->expiry_ms, m->data, m->len);
        if (e == GG_ETOOBIG && fb.count > 0) {
            e = GG_OK; /* the rest goes in the next batch */
            break;
        }
        if (e == GG_EINVAL || e == GG_ETOOBIG) {
            skip_msg(c, m, "no valid destination queue");
            e = GG_OK;
            continue;
        }
        if (e != GG_OK)
            goto out;
        c->cursor = last = m->id;
    }
    if (fb.count == 0)
        goto out;
    gg_frame_batch_end(&ch->out, &fb);
    e = send_out(c);
    if (e != GG_OK)
        goto out;
    c->inflight[(c->head + c->nin) % (size_t)ch->cfg.window] = last;
    c->nin++;
    pthread_mutex_lock(&ch->mu);
    ch->stats.batches_in_flight = (int64_t)c->nin;
    ch->stats.seq_out_sent = last;
    ch->stats.batches_out++;
    ch->stats.msgs_out += (int64_t)fb.count;
    pthread_mutex_unlock(&ch->mu);
out:
    gg_buf_reset(&ch->out);
    return e;
}

gg_err gg_link_pump(gg_conn *c)
{
    gg_channel *ch = c->ch;
    gg_err e = GG_OK;
    c->out_blocked = 0;
    while (c->ph == PH_RUN && c->nin < (size_t)ch->cfg.window) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) >= GG_CHAN_OUT_HIGH) {
            c->out_blocked = 1; /* gg_link_write_cb resumes */
            break;
        }
        gg_msg **msgs = NULL;
        size_t n = 0;
        e = gg_store_browse(ch->st, GG_XMIT_QUEUE, c->cursor, (size_t)ch->cfg.batch_max,
                            GG_CHAN_BATCH_BYTES, &msgs, &n);
        if (e != GG_OK) {
            /* The next tick or wake-up tries again. */
            gg_warn(COMP, "msg=\"cannot read xmit queue\" err=%s", gg_errname(e));
            e = GG_OK;
            break;
        }
        if (n == 0)
            break;
        e = send_batch(c, msgs, n);
        gg_msgs_free(msgs, n);
        if (e != GG_OK)
            break;
    }
    return e;
}

/* on_ack - the peer committed everything up to mark. */
static gg_err on_ack(gg_conn *c, int64_t mark, const char **why)
{
    gg_channel *ch = c->ch;
    /* Beyond the cursor would delete messages never sent: refuse. */
    if (mark < c->acked || mark > c->cursor) {
        *why = "ack outside the sent range";
        return GG_EPROTO;
    }
    size_t w = (size_t)ch->cfg.window;
    while (c->nin > 0 && c->inflight[c->head] <= mark) {
        c->head = (c->head + 1) % w;
        c->nin--;
    }
    c->acked = mark;
    pthread_mutex_lock(&ch->mu);
    ch->stats.seq_out_acked = mark;
    ch->stats.batches_in_flight = (int64_t)c->nin;
    pthread_mutex_unlock(&ch->mu);
    gg_err e = gg_store_delete_upto(ch->st, GG_XMIT_QUEUE, mark);
    if (e != GG_OK)
        gg_warn(COMP, "msg=\"cannot delete acknowledged messages\" upto=%lld err=%s",
                (long long)mark, gg_errname(e));
    return gg_link_pump(c);
}

/* store_wait - a receive error that goes away by itself (queue limits,
 * disk full, busy): hold the batch and retry rather than drop the link. */
static int store_wait(gg_err e)
{
    return e == GG_EFULL || e == GG_ENOSPC || e == GG_EBUSY;
}

/* commit_items - gg_store_receive the n items; when they do not fit, the
 * longest prefix of n/2, n/4, ... 1 items that does. *all tells whether
 * every item was committed; *mark is the new mark after any commit. */
static gg_err commit_items(gg_channel *ch, const gg_store_item *si, size_t n, int64_t *mark,
                           int *all)
{
    *all = 0;
    gg_err e = gg_store_receive(ch->st, ch->peer_name, si, n, mark);
    if (e == GG_OK)
        *all = 1;
    for (size_t k = n / 2; store_wait(e) && k >= 1; k /= 2)
        e = gg_store_receive(ch->st, ch->peer_name, si, k, mark);
    return e;
}

/* hold - keep the frame for a retry on full_ev, stop reading meanwhile. */
static gg_err hold(gg_conn *c, const uint8_t *frame, size_t total, int64_t first_seq, size_t n)
{
    gg_channel *ch = c->ch;
    if (!c->held) {
        c->held = malloc(total);
        if (!c->held)
            return GG_ENOMEM;
        memcpy(c->held, frame, total);
        c->held_len = total;
        c->full_ms = GG_CHAN_FULL_MIN_MS;
        bufferevent_disable(c->bev, EV_READ);
        GG_STAT(ch, held++);
        gg_warn(COMP, "msg=\"queue full, holding batch\" peer=%s first_seq=%lld count=%zu",
                ch->peer_name, (long long)first_seq, n);
    } else if (c->full_ms < GG_CHAN_FULL_MAX_MS) {
        c->full_ms *= 2;
    }
    struct timeval tv = { c->full_ms / 1000, (c->full_ms % 1000) * 1000 };
    evtimer_add(ch->full_ev, &tv);
    return GG_EFULL;
}

/* on_batch - commit an inbound batch (frame of total bytes) and ack it.
 * When it does not fit, commit and ack what does, hold the frame, stop
 * reading, arm full_ev and return GG_EFULL (not an error of the link);
 * the retry resubmits the whole frame and the store drops the items at or
 * below the mark. */
static gg_err on_batch(gg_conn *c, const uint8_t *frame, size_t total, const char **why)
{
    gg_channel *ch = c->ch;
    gg_frame_item *items = NULL;
    gg_store_item *si = NULL;
    size_t n = 0;
    int type, all = 0;
    const uint8_t *body;
    size_t blen;
    int64_t mark = -1;
    gg_frame_head(frame, total, &type, &body, &blen);
    gg_err e = gg_frame_get_batch(body, blen, &items, &n);
    if (e != GG_OK) {
        *why = "malformed batch";
        goto out;
    }
    si = calloc(n, sizeof *si);
    if (!si) {
        e = GG_ENOMEM;
        *why = "out of memory";
        goto out;
    }
    /* Items at or below the mark are resends (or a held batch's committed
     * prefix): the store would drop them, but left in they would also make
     * a prefix that fits look like progress. */
    size_t skip = 0;
    while (skip < n && items[skip].seq <= c->mark_in)
        skip++;
    for (size_t i = 0; i < n; i++) {
        si[i].seq = items[i].seq;
        si[i].queue = items[i].dest;
        si[i].expiry_ms = items[i].expiry_ms;
        si[i].data = items[i].data;
        si[i].len = items[i].len;
    }
    if (skip == n) {
        mark = c->mark_in;
        all = 1;
    } else {
        e = commit_items(ch, si + skip, n - skip, &mark, &all);
    }
    if (e != GG_OK && !store_wait(e)) {
        gg_error(COMP, "msg=\"cannot store batch\" first_seq=%lld count=%zu err=%s",
                 (long long)items[0].seq, n, gg_errname(e));
        *why = "store refused batch";
        goto out;
    }
    if (e == GG_OK) {
        /* All or a prefix is durable: acknowledge it. */
        size_t fresh = 0;
        for (size_t i = skip; i < n && items[i].seq <= mark; i++)
            fresh++;
        c->mark_in = mark;
        pthread_mutex_lock(&ch->mu);
        ch->stats.seq_in = mark;
        ch->stats.batches_in++;
        ch->stats.msgs_in += (int64_t)fresh;
        ch->stats.resends_dropped += (int64_t)skip;
        pthread_mutex_unlock(&ch->mu);
        e = gg_frame_put_ack(&ch->out, mark);
        if (e == GG_OK)
            e = send_out(c);
        if (e != GG_OK) {
            *why = "cannot send ack";
            goto out;
        }
    }
    if (!all) {
        e = hold(c, frame, total, items[0].seq, n);
        if (e == GG_ENOMEM)
            *why = "out of memory";
    }
out:
    free(si);
    free(items);
    return e;
}

/* on_frame - dispatch one complete frame (total bytes at p). */
static gg_err on_frame(gg_conn *c, const uint8_t *p, size_t total, const char **why)
{
    gg_channel *ch = c->ch;
    int type;
    const uint8_t *body;
    size_t len;
    gg_frame_head(p, total, &type, &body, &len);
    c->last_rx_us = gg_mono_us();
    pthread_mutex_lock(&ch->mu);
    ch->stats.bytes_in += (int64_t)total;
    ch->stats.last_rx_mono_us = c->last_rx_us;
    pthread_mutex_unlock(&ch->mu);
    *why = "malformed frame";
    switch (type) {
    case GG_FRAME_HELLO: {
        gg_frame_hello h;
        if (c->ph != PH_HELLO) {
            *why = "unexpected hello";
            return GG_EPROTO;
        }
        if (gg_frame_get_hello(body, len, &h) != GG_OK)
            return GG_EPROTO;
        if (h.version != GG_FRAME_VERSION) {
            *why = "unsupported protocol version";
            return GG_EPROTO;
        }
        if (strcmp(h.site, ch->peer_name) != 0) {
            *why = "hello names another site";
            return GG_EPROTO;
        }
        *why = "cannot send batch";
        return on_hello(c, h.mark);
    }
    case GG_FRAME_BATCH:
        if (c->ph != PH_RUN) {
            *why = "batch before hello";
            return GG_EPROTO;
        }
        return on_batch(c, p, total, why);
    case GG_FRAME_ACK: {
        int64_t mark;
        if (c->ph != PH_RUN) {
            *why = "ack before hello";
            return GG_EPROTO;
        }
        if (gg_frame_get_ack(body, len, &mark) != GG_OK)
            return GG_EPROTO;
        *why = "cannot send batch";
        return on_ack(c, mark, why);
    }
    case GG_FRAME_PING: {
        uint64_t stamp;
        if (gg_frame_get_ping(body, len, &stamp) != GG_OK)
            return GG_EPROTO;
        gg_err e = gg_frame_put_ping(&ch->out, GG_FRAME_PONG, stamp);
        if (e == GG_OK)
            e = send_out(c);
        *why = "cannot send pong";
        return e;
    }
    case GG_FRAME_PONG: {
        uint64_t stamp;
        if (gg_frame_get_ping(body, len, &stamp) != GG_OK)
            return GG_EPROTO;
        return GG_OK;
    }
    default:
        *why = "unknown frame type";
        return GG_EPROTO;
    }
}

void gg_link_read_cb(struct bufferevent *bev, void *arg)
{
    gg_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    const char *why = NULL;
    gg_err e = GG_OK;
    while (!c->held) {
        uint8_t hdr[GG_FRAME_HDR];
        size_t avail = evbuffer_get_length(in), total;
        if (avail < GG_FRAME_HDR)
            break;
        evbuffer_copyout(in, hdr, sizeof hdr);
        e = gg_frame_length(hdr, &total);
        if (e != GG_OK) {
            why = "frame length out of range";
            break;
        }
        if (avail < total)
            break;
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)total);
        if (!p) {
            e = GG_ENOMEM;
            why = "out of memory";
            break;
        }
        e = on_frame(c, p, total, &why);
        evbuffer_drain(in, total);
        if (e == GG_EFULL)
            e = GG_OK; /* held: c->held ends the loop */
        if (e != GG_OK)
            break;
    }
    if (e != GG_OK) {
        char reason[160];
        snprintf(reason, sizeof reason, "%s (%s)", why ? why : "error", gg_errname(e));
        gg_chan_close(c, reason);
    }
}

void gg_link_write_cb(struct bufferevent *bev, void *arg)
{
    gg_conn *c = arg;
    (void)bev;
    if (!c->out_blocked || c->ph != PH_RUN)
        return;
    if (gg_link_pump(c) != GG_OK)
        gg_chan_close(c, "cannot send batch");
}

gg_err gg_link_ping(gg_conn *c)
{
    gg_err e = gg_frame_put_ping(&c->ch->out, GG_FRAME_PING, (uint64_t)gg_mono_us());
    if (e == GG_OK)
        e = send_out(c);
    return e;
}

void gg_link_retry_held(gg_conn *c)
{
    const char *why = NULL;
    uint8_t *frame = c->held;
    gg_err e = on_batch(c, frame, c->held_len, &why);
    if (e == GG_EFULL)
        return; /* still full: full_ev is armed again */
    if (e != GG_OK) {
        char reason[160];
        snprintf(reason, sizeof reason, "%s (%s)", why ? why : "error", gg_errname(e));
        gg_chan_close(c, reason);
        return;
    }
    gg_info(COMP, "msg=\"held batch stored\" peer=%s", c->ch->peer_name);
    free(c->held);
    c->held = NULL;
    c->held_len = 0;
    bufferevent_enable(c->bev, EV_READ);
    gg_link_read_cb(c->bev, c); /* frames that arrived while held */
}

void gg_link_free(gg_conn *c)
{
    free(c->inflight);
    free(c->held);
    c->inflight = NULL;
    c->held = NULL;
}
