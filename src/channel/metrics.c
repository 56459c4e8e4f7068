/* metrics.c - the channel's Prometheus text (see channel.h). Both roles
 * serve exactly this block on their admin listener, so a dashboard or
 * `gridgate admin channel` reads the same series from either site. The
 * series are listed in docs/protocol.md ("Channel", "Liveness").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/channel.h"
#include "core/clock.h"

/* help - the HELP and TYPE lines of one series. */
static void help(FILE *f, const char *name, const char *type, const char *text)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* value - one sample; labels may be NULL. */
static void value(FILE *f, const char *name, const char *labels, long long v)
{
    if (labels)
        fprintf(f, "%s{%s} %lld\n", name, labels, v);
    else
        fprintf(f, "%s %lld\n", name, v);
}

/* write_all - every series from the snapshot s. */
static void write_all(FILE *f, const gg_channel_stats *s)
{
    int64_t now_us = gg_mono_us();
    help(f, "gridgate_channel_state", "gauge",
         "1 for the channel's current state (running, retrying, stopped), 0 for the others.");
    for (int st = GG_CHANNEL_STOPPED; st <= GG_CHANNEL_RUNNING; st++) {
        char lab[32];
        snprintf(lab, sizeof lab, "state=\"%s\"", gg_channel_state_name((gg_channel_state)st));
        value(f, "gridgate_channel_state", lab, s->state == (gg_channel_state)st);
    }
    help(f, "gridgate_channel_seq", "gauge",
         "Last sequence number each way: out = highest of ours the peer acknowledged, "
         "in = highest of the peer's committed here (our mark).");
    value(f, "gridgate_channel_seq", "direction=\"out\"", s->seq_out_acked);
    value(f, "gridgate_channel_seq", "direction=\"in\"", s->seq_in);
    help(f, "gridgate_channel_seq_sent", "gauge",
         "Highest of our sequence numbers sent on the current link.");
    value(f, "gridgate_channel_seq_sent", NULL, s->seq_out_sent);
    help(f, "gridgate_channel_batches_in_flight", "gauge",
         "Batches sent and not yet acknowledged (at most channel.window).");
    value(f, "gridgate_channel_batches_in_flight", NULL, s->batches_in_flight);
    help(f, "gridgate_channel_bytes_total", "counter", "Bytes of frames sent and received.");
    value(f, "gridgate_channel_bytes_total", "direction=\"out\"", s->bytes_out);
    value(f, "gridgate_channel_bytes_total", "direction=\"in\"", s->bytes_in);
    help(f, "gridgate_channel_batches_total", "counter",
         "Batches sent (out, resends included) and committed and acknowledged (in).");
    value(f, "gridgate_channel_batches_total", "direction=\"out\"", s->batches_out);
    value(f, "gridgate_channel_batches_total", "direction=\"in\"", s->batches_in);
    help(f, "gridgate_channel_messages_total", "counter",
         "Messages sent (out, resends included) and newly committed (in).");
    value(f, "gridgate_channel_messages_total", "direction=\"out\"", s->msgs_out);
    value(f, "gridgate_channel_messages_total", "direction=\"in\"", s->msgs_in);
    help(f, "gridgate_channel_resends_dropped_total", "counter",
         "Received messages at or below our mark, recognised as resends and dropped.");
    value(f, "gridgate_channel_resends_dropped_total", NULL, s->resends_dropped);
    help(f, "gridgate_channel_reconnects_total", "counter",
         "Links established after the first one.");
    value(f, "gridgate_channel_reconnects_total", NULL, s->reconnects);
    help(f, "gridgate_channel_refused_total", "counter",
         "Connections refused, by stage: allow (allow-list, before any TLS byte), limit "
         "(too many handshakes), handshake (TLS), check (peer name after TLS).");
    value(f, "gridgate_channel_refused_total", "stage=\"allow\"", s->refused_allow);
    value(f, "gridgate_channel_refused_total", "stage=\"limit\"", s->refused_limit);
    value(f, "gridgate_channel_refused_total", "stage=\"handshake\"", s->refused_tls);
    value(f, "gridgate_channel_refused_total", "stage=\"check\"", s->refused_check);
    help(f, "gridgate_channel_dropped_total", "counter",
         "Outbound messages never sent: larger than the channel carries or without a valid "
         "destination.");
    value(f, "gridgate_channel_dropped_total", NULL, s->dropped);
    help(f, "gridgate_channel_held_total", "counter",
         "Times inbound batches were held back because a local queue was full.");
    value(f, "gridgate_channel_held_total", NULL, s->held);
    help(f, "gridgate_channel_reloads_total", "counter",
         "Certificate and key reloads (SIGHUP), by result.");
    value(f, "gridgate_channel_reloads_total", "result=\"ok\"", s->reloads);
    value(f, "gridgate_channel_reloads_total", "result=\"failed\"", s->reload_failures);
    help(f, "gridgate_channel_peer_silence_ms", "gauge",
         "Milliseconds since the last frame from the peer; -1 if none ever arrived.");
    value(f, "gridgate_channel_peer_silence_ms", NULL,
          s->last_rx_mono_us ? (now_us - s->last_rx_mono_us) / 1000 : -1);
    help(f, "gridgate_channel_up_since_ms", "gauge",
         "Wall time (ms since the epoch) the current link came up; 0 when not running.");
    value(f, "gridgate_channel_up_since_ms", NULL, s->up_since_ms);
}

char *gg_channel_metrics_text(gg_channel *ch)
{
    gg_channel_stats s;
    char *text = NULL;
    size_t len = 0;
    memset(&s, 0, sizeof s);
    s.state = GG_CHANNEL_STOPPED;
    if (ch)
        gg_channel_get_stats(ch, &s);
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    write_all(f, &s);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
