/* transport.c - the embedded transport: the site's store plus its channel.
 *
 * Open reads [store] and opens the store, then reads [channel] and [site]
 * and starts the channel on that store. The strings handed to the channel
 * are copied here so they live exactly as long as the transport. Close
 * stops the channel first (it uses the store), then closes the store.
 */
#include "transport/transport.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

struct gg_transport {
    gg_store *st;
    gg_channel *ch;
    /* Owned copies of the strings in the channel's configuration. */
    char *address;
    char *local_name;
    char *peer_name;
    char *allow;
    char *ca_file;
    char *cert_file;
    char *key_file;
};

/* dup_or_null - strdup that keeps NULL as NULL; *ok becomes 0 on ENOMEM. */
static char *dup_or_null(const char *s, int *ok)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *ok = 0;
    return d;
}

/* int_in - a config int narrowed to int, clamped to [lo, hi]. */
static int int_in(const gg_config *cfg, const char *name, int lo, int hi)
{
    int64_t v = gg_config_int(cfg, name);

    if (v < lo)
        return lo;
    if (v > hi)
        return hi;
    return (int)v;
}

/* free_strings - release the owned channel strings. */
static void free_strings(gg_transport *t)
{
    free(t->address);
    free(t->local_name);
    free(t->peer_name);
    free(t->allow);
    free(t->ca_file);
    free(t->cert_file);
    free(t->key_file);
}

/* open_store - [store] section to an open gg_store. */
static gg_err open_store(const gg_config *cfg, gg_store **out)
{
    gg_store_opts o;
    const char *path = gg_config_str(cfg, "store.path");
    gg_err e;

    if (path == NULL || path[0] == '\0') {
        gg_error("transport", "msg=\"store.path is not set\"");
        return GG_ECONFIG;
    }
    memset(&o, 0, sizeof o);
    o.max_depth = gg_config_int(cfg, "store.max_depth");
    o.max_bytes = gg_config_int(cfg, "store.max_bytes");
    o.backout_threshold = int_in(cfg, "store.backout_threshold", 0, 1000000);
    o.durability = strcmp(gg_config_str(cfg, "store.durability"), "normal") == 0
                       ? GG_DURABLE_NORMAL
                       : GG_DURABLE_FULL;
    e = gg_store_open(path, &o, out);
    if (e != GG_OK) {
        gg_error("transport", "msg=\"cannot open store\" path=%s err=%s", path, gg_errname(e));
        return e == GG_ECONFIG ? GG_ECONFIG : GG_EIO;
    }
    return GG_OK;
}

/* channel_cfg - [channel] and [site] into cc, strings copied into t. */
static gg_err channel_cfg(const gg_config *cfg, gg_transport *t, gg_channel_cfg *cc)
{
    const char *mode = gg_config_str(cfg, "channel.mode");
    int ok = 1;

    memset(cc, 0, sizeof *cc);
    if (mode != NULL && strcmp(mode, "listen") == 0) {
        cc->listen = 1;
    } else if (mode != NULL && strcmp(mode, "connect") == 0) {
        cc->listen = 0;
    } else {
        gg_error("transport", "msg=\"channel.mode must be listen or connect\" value=%s",
                 mode != NULL ? mode : "(unset)");
        return GG_ECONFIG;
    }
    t->address = dup_or_null(gg_config_str(cfg, "channel.address"), &ok);
    t->local_name = dup_or_null(gg_config_str(cfg, "site.name"), &ok);
    t->peer_name = dup_or_null(gg_config_str(cfg, "channel.peer_name"), &ok);
    t->allow = dup_or_null(gg_config_str(cfg, "channel.allow"), &ok);
    t->ca_file = dup_or_null(gg_config_str(cfg, "channel.ca"), &ok);
    t->cert_file = dup_or_null(gg_config_str(cfg, "channel.cert"), &ok);
    t->key_file = dup_or_null(gg_config_str(cfg, "channel.key"), &ok);
    if (!ok)
        return GG_ENOMEM;
    cc->address = t->address;
    cc->local_name = t->local_name;
    cc->peer_name = t->peer_name;
    cc->allow = t->allow;
    cc->ca_file = t->ca_file;
    cc->cert_file = t->cert_file;
    cc->key_file = t->key_file;
    cc->tls12 = gg_config_bool(cfg, "channel.tls12");
    cc->heartbeat_ms = int_in(cfg, "channel.heartbeat_ms", 1, 1 << 30);
    cc->dead_ms = int_in(cfg, "channel.dead_ms", 1, 1 << 30);
    cc->backoff_max_ms = int_in(cfg, "channel.backoff_max_ms", 1, 1 << 30);
    cc->batch_max = int_in(cfg, "channel.batch_max", 1, 1 << 20);
    cc->window = int_in(cfg, "channel.window", 1, 1 << 16);
    return GG_OK;
}

/* gg_transport_open - open the store and start the channel. */
gg_err gg_transport_open(const gg_config *cfg, gg_transport **out)
{
    gg_transport *t = NULL;
    gg_channel_cfg cc;
    gg_err e;

    t = calloc(1, sizeof *t);
    if (t == NULL)
        return GG_ENOMEM;
    e = channel_cfg(cfg, t, &cc);
    if (e != GG_OK)
        goto out;
    e = open_store(cfg, &t->st);
    if (e != GG_OK)
        goto out;
    e = gg_channel_start(&cc, t->st, &t->ch);
    if (e != GG_OK) {
        gg_error("transport", "msg=\"cannot start channel\" address=%s err=%s",
                 cc.address != NULL ? cc.address : "(unset)", gg_errname(e));
        if (e != GG_ECONFIG && e != GG_ENOMEM)
            e = GG_EIO;
        goto out;
    }
    gg_info("transport", "msg=\"opened\" mode=%s address=%s peer=%s",
            cc.listen ? "listen" : "connect", cc.address != NULL ? cc.address : "(unset)",
            cc.peer_name != NULL ? cc.peer_name : "(unset)");
    *out = t;
    t = NULL;
out:
    if (t != NULL) {
        gg_store_close(t->st);
        free_strings(t);
        free(t);
    }
    return e;
}

/* gg_transport_close - stop the channel, then close the store; NULL is fine. */
void gg_transport_close(gg_transport *t)
{
    if (t == NULL)
        return;
    gg_channel_stop(t->ch);
    gg_store_close(t->st);
    free_strings(t);
    free(t);
}

/* gg_transport_store - the site's store (owned by t). */
gg_store *gg_transport_store(gg_transport *t)
{
    return t->st;
}

/* gg_transport_channel - the channel (owned by t). */
gg_channel *gg_transport_channel(gg_transport *t)
{
    return t->ch;
}

/* gg_transport_send - put data on the transmission queue for dest. */
/* dest_ok - dest names a queue at the peer. */
static int dest_ok(const char *dest)
{
    return dest != NULL && dest[0] != '\0' && strlen(dest) < GG_QUEUE_NAME_MAX;
}

gg_err gg_transport_send(gg_transport *t, const char *dest, const void *data, size_t len,
                         int64_t expiry_ms)
{
    if (!dest_ok(dest))
        return GG_EINVAL;
    return gg_store_put(t->st, GG_XMIT_QUEUE, dest, data, len, expiry_ms, NULL);
}

/* gg_transport_send_many - n sends in one commit, all or none. */
gg_err gg_transport_send_many(gg_transport *t, const gg_transport_msg *msgs, size_t n)
{
    gg_store_put_item *items;
    gg_err e;

    if (t == NULL || msgs == NULL || n == 0 || n > GG_STORE_MANY_MAX)
        return GG_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!dest_ok(msgs[i].dest))
            return GG_EINVAL;
    items = calloc(n, sizeof *items);
    if (items == NULL)
        return GG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        items[i].queue = GG_XMIT_QUEUE;
        items[i].dest = msgs[i].dest;
        items[i].data = msgs[i].data;
        items[i].len = msgs[i].len;
        items[i].expiry_ms = msgs[i].expiry_ms;
    }
    e = gg_store_put_many(t->st, items, n, NULL);
    free(items);
    return e;
}

/* gg_transport_reply - ack ack_id and queue data for dest, atomically. */
gg_err gg_transport_reply(gg_transport *t, int64_t ack_id, const char *dest, const void *data,
                          size_t len, int64_t expiry_ms)
{
    if (!dest_ok(dest))
        return GG_EINVAL;
    return gg_store_ack_put(t->st, ack_id, GG_XMIT_QUEUE, dest, data, len, expiry_ms);
}

/* gg_transport_request_queue - the priority lane for state changes. */
const char *gg_transport_request_queue(const char *txn)
{
    if (txn != NULL && (strcmp(txn, "bind") == 0 || strcmp(txn, "unbind") == 0 ||
                        strncmp(txn, "pay", 3) == 0))
        return GG_Q_REQUESTS_PRIO;
    return GG_Q_REQUESTS;
}
