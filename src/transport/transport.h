/* transport.h - what a role uses to reach the other site.
 *
 * The embedded transport (this file's only one so far) is the site's own
 * durable store plus the channel to the peer, both built from the config
 * (sections [store] and [channel]). Sending puts the bytes on the
 * transmission queue, durably, addressed to a queue at the peer; receiving
 * is reading a local queue of the store. The roles never touch the channel.
 * The transport copies what it keeps of the config (the config need not
 * outlive it); send, reply and the getters are safe from any thread.
 */
#ifndef GG_TRANSPORT_TRANSPORT_H
#define GG_TRANSPORT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "channel/channel.h"
#include "core/config.h"
#include "core/err.h"
#include "store/store.h"

/* Queue names shared by both sites. */
#define GG_Q_REQUESTS "requests"   /* at the utility: requests from the portal */
#define GG_Q_REPLIES "replies"     /* at the portal: replies from the utility */
#define GG_Q_EVENTS "events"       /* at the portal: events pushed by the utility */
#define GG_Q_REQUESTS_PRIO "requests.priority"  /* at the utility: payments, bindings */

typedef struct gg_transport gg_transport;

/* gg_transport_open - open the store and start the channel. Logs and
 * returns GG_ECONFIG/GG_EIO on failure. */
gg_err gg_transport_open(const gg_config *cfg, gg_transport **out);
void gg_transport_close(gg_transport *t);

gg_store *gg_transport_store(gg_transport *t);
gg_channel *gg_transport_channel(gg_transport *t);

/* gg_transport_request_queue - the utility queue a request of txn goes to:
 * GG_Q_REQUESTS_PRIO for payments and bindings ("pay*", "bind", "unbind"),
 * which the utility's workers take first; GG_Q_REQUESTS for the rest. */
const char *gg_transport_request_queue(const char *txn);

/* gg_transport_send - durably queue data for queue dest at the peer. */
gg_err gg_transport_send(gg_transport *t, const char *dest, const void *data, size_t len,
                         int64_t expiry_ms);

/* A message for gg_transport_send_many. */
typedef struct gg_transport_msg {
    const char *dest;       /* queue at the peer */
    const void *data;
    size_t len;
    int64_t expiry_ms;
} gg_transport_msg;

/* gg_transport_send_many - gg_transport_send of n (1..GG_STORE_MANY_MAX)
 * messages in one commit, all or none: GG_EINVAL (nothing queued) if any
 * dest is one gg_transport_send would refuse, else the store's error. */
gg_err gg_transport_send_many(gg_transport *t, const gg_transport_msg *msgs, size_t n);

/* gg_transport_reply - in one transaction, ack local message ack_id and
 * queue data for dest at the peer. */
gg_err gg_transport_reply(gg_transport *t, int64_t ack_id, const char *dest, const void *data,
                          size_t len, int64_t expiry_ms);

#endif
