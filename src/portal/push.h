/* push.h - webhook delivery of the utility's events (portal role).
 *
 * Events arrive on the portal store's "events" queue as sealed EVENT
 * envelopes. The push module reads them in order without leasing
 * (gg_store_browse), verifies each (signature, kind, sender = site.peer),
 * and POSTs its JSON body to push.webhook_url with the header
 * X-Gridgate-Signature: sha256=<hex HMAC-SHA256 of the body under the
 * secret>. A 2xx answer acknowledges (removes) the event; a failure,
 * non-2xx answer or timeout is retried after an exponential backoff with
 * jitter; after push.max_attempts attempts the event is moved to the
 * store's dead-letter queue (`gridgate admin dlq`), as is an event that
 * fails verification. At most push.concurrency events are in delivery at
 * once, each on its own keep-alive connection. Attempts are counted in
 * memory: after a restart every event still queued is delivered again
 * (at least once; receivers drop repeats by event_id, docs/webhooks.md).
 * Only http:// URLs for now. Runs on the portal's loop thread; its store
 * calls (reads, acks, dead-letter moves) run on the portal's offload thread
 * (offload.h).
 */
#ifndef GG_PORTAL_PUSH_H
#define GG_PORTAL_PUSH_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"
#include "envelope/envelope.h"
#include "portal/offload.h"
#include "store/store.h"

#define GG_PUSH_SECRET_MIN 16
#define GG_PUSH_SECRET_MAX 256
#define GG_PUSH_SIG_LEN 72         /* "sha256=" + 64 hex + NUL, rounded */

typedef struct gg_push gg_push;

/* gg_push_start - read [push] and start delivering on base. With no
 * push.webhook_url, returns GG_OK and *out NULL (events stay queued).
 * GG_ECONFIG (logged) for a bad URL (not http://) or secret file. st,
 * keys, peer and off are borrowed; st, keys and peer must outlive the push.
 * off (NULL: store calls on the loop) must be stopped after gg_push_halt
 * and before gg_push_stop. */
gg_err gg_push_start(const gg_config *cfg, struct event_base *base, gg_store *st,
                     const gg_env_keys *keys, const char *peer, gg_offload *off,
                     gg_push **out);

/* gg_push_halt - start no delivery and no read any more (the first step of
 * the stop: then the offload thread, then gg_push_stop); NULL is fine. */
void gg_push_halt(gg_push *ps);

/* gg_push_stop - abandon deliveries in flight (their events stay queued)
 * and free; NULL is fine. */
void gg_push_stop(gg_push *ps);

/* gg_push_watch - store watcher for "events": wake the delivery (any thread). */
void gg_push_watch(void *arg, const char *queue);

/* gg_push_write_metrics - Prometheus lines of the push counters. */
void gg_push_write_metrics(const gg_push *ps, struct evbuffer *b);

/* gg_push_sign - "sha256=<64 hex>" of body under secret into out. */
void gg_push_sign(const uint8_t *secret, size_t secret_len, const void *body, size_t len,
                  char out[GG_PUSH_SIG_LEN]);

/* gg_push_backoff_ms - the wait after failures (>= 1) failed attempts:
 * base * 2^(failures-1) capped at cap, then "equal jitter": a value in
 * [d/2, d) chosen by r in [0, 1). */
int64_t gg_push_backoff_ms(int64_t base, int64_t cap, int failures, double r);

#endif
