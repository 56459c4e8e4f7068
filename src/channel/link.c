/* link.c - the channel protocol on one authenticated connection.
 *
 * After TLS: each side sends HELLO with its mark (the last peer seq it
 * committed); the peer's mark tells us what to delete and where to resume.
 * Then batches of xmit messages flow under a window of unacknowledged
 * batches, each acknowledged with the receiver's new mark once its store
 * transaction is durable; PING/PONG keep the link proven alive. The
 * numbered invariants are in docs/protocol.md ("Channel").
 *
 * Runs on the loop thread. Inbound batches are parsed here and handed to
 * the committer thread (commit.c); gg_link_done sends the ACK when the
 * committer reports them durable, in arrival order. Deleting what the peer
 * acknowledged is the deleter thread's (gg_commit_delete_upto).
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
    /* After any commit of an earlier connection: the mark is final. */
    c->gen = ++ch->next_gen;
    gg_commit_open(ch, c->gen);
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

/* on_hello - the peer's mark: everything up to it arrived, so have it
 * deleted and resume after it. */
static gg_err on_hello(gg_conn *c, int64_t mark)
{
    gg_channel *ch = c->ch;
    gg_commit_delete_upto(ch, mark);
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

/* drop_pre - forget the messages read ahead. */
static void drop_pre(gg_conn *c)
{
    gg_msgs_free(c->pre, c->npre);
    c->pre = NULL;
    c->npre = 0;
}

/* take_read - the reader's result for the cursor into c->pre: 1 if there
 * is one. Otherwise (results of an earlier connection or cursor are
 * dropped) make sure the reader is reading after the cursor and 0. */
static int take_read(gg_conn *c)
{
    gg_channel *ch = c->ch;
    uint64_t gen;
    int64_t after;
    gg_msg **msgs = NULL;
    size_t n = 0;
    gg_err e;
    while (gg_read_take(ch, &gen, &after, &msgs, &n, &e)) {
        if (gen == c->gen && after == c->cursor && e != GG_OK) {
            /* The next tick kicks the reader to try again. */
            gg_warn(COMP, "msg=\"cannot read xmit queue\" err=%s", gg_errname(e));
            gg_msgs_free(msgs, n);
            return 0;
        }
        if (gen == c->gen && after == c->cursor && n > 0) {
            c->pre = msgs;
            c->npre = n;
            return 1;
        }
        gg_msgs_free(msgs, n); /* read for an earlier connection or cursor */
    }
    gg_read_seek(ch, c->gen, c->cursor, (size_t)ch->cfg.batch_max);
    return 0;
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
        if (!c->pre && !take_read(c))
            break; /* gg_link_read_done goes on */
        e = send_batch(c, c->pre, c->npre);
        drop_pre(c); /* what did not fit is read again after the cursor */
        if (e != GG_OK)
            break;
    }
    return e;
}

void gg_link_read_done(gg_channel *ch)
{
    gg_conn *c = ch->active;
    if (!c || c->ph != PH_RUN) {
        uint64_t gen;
        int64_t after;
        gg_msg **msgs = NULL;
        size_t n = 0;
        gg_err e;
        while (gg_read_take(ch, &gen, &after, &msgs, &n, &e))
            gg_msgs_free(msgs, n); /* for a connection that is gone */
        return;
    }
    if (gg_link_pump(c) != GG_OK)
        gg_chan_close(c, "cannot send batch");
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
    gg_commit_delete_upto(ch, mark);
    return gg_link_pump(c);
}

/* on_batch - parse an inbound batch (frame of total bytes) and hand a copy
 * to the committer; gg_link_done acknowledges it once durable. Reading
 * stops while GG_CHAN_RX_JOBS batches or GG_CHAN_RX_BYTES await commit. */
static gg_err on_batch(gg_conn *c, const uint8_t *frame, size_t total, const char **why)
{
    gg_channel *ch = c->ch;
    int type;
    const uint8_t *body;
    size_t blen;
    gg_rx_job *j = calloc(1, sizeof *j);
    gg_err e = GG_ENOMEM;
    *why = "out of memory";
    if (!j)
        goto out;
    j->frame = malloc(total);
    if (!j->frame)
        goto out;
    memcpy(j->frame, frame, total);
    j->total = total;
    j->gen = c->gen;
    gg_frame_head(j->frame, total, &type, &body, &blen);
    e = gg_frame_get_batch(body, blen, &j->items, &j->n);
    if (e != GG_OK) {
        *why = "malformed batch";
        goto out;
    }
    c->rx_jobs++;
    c->rx_bytes += total;
    gg_commit_submit(ch, j);
    j = NULL;
    if (c->rx_jobs >= GG_CHAN_RX_JOBS || c->rx_bytes >= GG_CHAN_RX_BYTES) {
        c->rx_paused = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
out:
    gg_rx_job_free(j);
    return e;
}

void gg_link_done(gg_channel *ch)
{
    gg_rx_job *list = gg_commit_take_done(ch);
    gg_conn *c = ch->active;
    int64_t mark = -1;
    gg_err fail = GG_OK;
    while (list) {
        gg_rx_job *j = list;
        list = j->next;
        if (c && c->ph == PH_RUN && j->gen == c->gen && fail == GG_OK) {
            if (j->frame) {
                c->rx_jobs--;
                c->rx_bytes -= j->total;
            }
            if (j->err != GG_OK) {
                fail = j->err;
            } else {
                mark = j->mark;
                pthread_mutex_lock(&ch->mu);
                ch->stats.seq_in = mark;
                ch->stats.batches_in += j->frame != NULL;
                ch->stats.msgs_in += (int64_t)j->fresh;
                ch->stats.resends_dropped += (int64_t)j->skipped;
                pthread_mutex_unlock(&ch->mu);
            }
        }
        gg_rx_job_free(j);
    }
    if (!c || c->ph != PH_RUN)
        return;
    gg_err e = GG_OK;
    if (mark >= 0) {
        /* One ACK covers every batch committed up to mark. */
        c->mark_in = mark;
        e = gg_frame_put_ack(&ch->out, mark);
        if (e == GG_OK)
            e = send_out(c);
    }
    if (fail != GG_OK || e != GG_OK) {
        char reason[160];
        snprintf(reason, sizeof reason, "%s (%s)",
                 fail != GG_OK ? "store refused batch" : "cannot send ack",
                 gg_errname(fail != GG_OK ? fail : e));
        gg_chan_close(c, reason);
        return;
    }
    if (c->rx_paused && c->rx_jobs < GG_CHAN_RX_JOBS / 2 && c->rx_bytes < GG_CHAN_RX_BYTES / 2) {
        c->rx_paused = 0;
        bufferevent_enable(c->bev, EV_READ);
        gg_link_read_cb(c->bev, c); /* frames that arrived meanwhile */
    }
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
    while (!c->rx_paused) {
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

void gg_link_free(gg_conn *c)
{
    if (c->gen) {
        gg_commit_cancel(c->ch, c->gen);
        gg_read_reset(c->ch, c->gen);
    }
    drop_pre(c);
    free(c->inflight);
    c->inflight = NULL;
}
