/* drain.c - replies in, off the event-loop thread.
 *
 * One drain thread is the replies queue's only consumer. Woken by the
 * store's watcher (or every second, in case a wake-up was missed, and once
 * at start for replies left from a previous run), it reads a batch in id
 * order without leasing (gg_store_browse), opens every reply, checks the
 * authentic ones from the peer against the replay store in one store
 * operation (committed without an fsync of its own: the commit that removes
 * the batch makes the records durable), parses the payloads of the replies
 * that passed (status and body, gg_api_parse_reply), and hands the opened
 * batch to the loop (ev_replies). The loop answers the waiting calls and
 * records the outcomes (gg_portal_deliver, then the transaction log's
 * flush) and hands the batch back; only then does the drain thread remove
 * the whole batch from the store in one commit, whatever each outcome,
 * because a reply that cannot be opened now never will be. So the loop
 * never waits for a disk or spends its time on decryption or JSON, and a
 * reply is recorded before it is removed: after a crash in between, the
 * batch is read again, its replies are redeliveries (same store ids) and
 * find no callers.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "portal/portal_int.h"
#include "portal/shed.h"

#define DRAIN_POLL_MS 1000

typedef struct gg_pdrain {
    gg_portal *p;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* wake-ups, hand-backs and the stop */
    int wake;                   /* the watcher saw a commit to "replies" */
    int stopping;
    int handed;                 /* a batch is with the loop */
    gg_reply_slot *slots;       /* the handed batch */
    size_t n;
} gg_pdrain;

/* open_reason - the reject reason of an envelope open failure. */
static gg_portal_reject open_reason(gg_err e)
{
    switch (e) {
    case GG_EPROTO:
    case GG_EINVAL:
        return GG_PREJ_MALFORMED;
    case GG_ECRYPTO:
        return GG_PREJ_CRYPTO;
    case GG_EDENIED:
        return GG_PREJ_NOT_FOR_US;
    case GG_ETOOBIG:
        return GG_PREJ_TOO_BIG;
    default:
        return GG_PREJ_OTHER;
    }
}

/* replay_reason - the reject reason of a replay verdict, or -1 to go on. */
static int replay_reason(gg_replay_verdict v)
{
    switch (v) {
    case GG_RV_STALE:
        return GG_PREJ_STALE;
    case GG_RV_FUTURE:
        return GG_PREJ_FUTURE;
    case GG_RV_REPLAY:
        return GG_PREJ_REPLAY;
    case GG_RV_FULL:
        return GG_PREJ_REPLAY_FULL;
    default:
        return -1;
    }
}

/* open_batch - open each of n replies and check the fresh, authentic ones
 * from the peer against the replay store in one call (claims, written by
 * the store's next transaction: replay.h). Touches no
 * loop state (keys and replay store are thread-safe). */
static void open_batch(gg_portal *p, gg_msg **msgs, size_t n, gg_reply_slot *sl)
{
    gg_replay_item *items = calloc(n > 0 ? n : 1, sizeof *items);
    size_t *of = calloc(n > 0 ? n : 1, sizeof *of);
    size_t i, k = 0;
    gg_err e;

    for (i = 0; i < n; i++) {
        memset(&sl[i], 0, sizeof sl[i]);
        sl[i].m = msgs[i];
        sl[i].reject = -1;
        e = gg_env_open(p->keys, msgs[i]->data, msgs[i]->len, &sl[i].h, &sl[i].pt,
                        &sl[i].ptlen);
        if (e != GG_OK) {
            sl[i].reject = open_reason(e);
            sl[i].why = gg_errname(e);
        } else if (sl[i].h.kind != GG_ENV_REPLY) {
            sl[i].reject = GG_PREJ_WRONG_KIND;
            sl[i].why = "wrong_kind";
        } else if (strcmp(sl[i].h.sender, p->peer) != 0) {
            sl[i].reject = GG_PREJ_WRONG_SENDER;
            sl[i].why = "wrong_sender";
        } else if (items != NULL && of != NULL) {
            memcpy(items[k].msg_id, sl[i].h.msg_id, 16);
            items[k].created_ms = sl[i].h.created_ms;
            items[k].local_id = msgs[i]->id;
            of[k++] = i;
        } else {
            sl[i].reject = GG_PREJ_OTHER;
            sl[i].why = "out_of_memory";
        }
    }
    e = k > 0 ? gg_replay_check_batch(p->replay, items, k, gg_now_ms()) : GG_OK;
    for (i = 0; i < k; i++) {
        gg_reply_slot *r = &sl[of[i]];

        if (e != GG_OK) {
            r->reject = GG_PREJ_OTHER;
            r->why = "replay_store_error";
        } else if (replay_reason(items[i].verdict) >= 0) {
            r->reject = replay_reason(items[i].verdict);
            r->why = gg_replay_verdict_name(items[i].verdict);
        }
    }
    free(items);
    free(of);
}

/* gg_portal_slot_clear - wipe and free a slot's plaintext and body. */
void gg_portal_slot_clear(gg_reply_slot *r)
{
    if (r->pt != NULL) {
        explicit_bzero(r->pt, r->ptlen);
        free(r->pt);
        r->pt = NULL;
    }
    if (r->body != NULL) {
        explicit_bzero(r->body, strlen(r->body));  /* personal data, as pt */
        free(r->body);
        r->body = NULL;
    }
}

/* free_slots - free a batch's plaintexts and bodies (wiped) and the array. */
static void free_slots(gg_reply_slot *sl, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        gg_portal_slot_clear(&sl[i]);
    free(sl);
}

/* parse_batch - parse the payload of each reply to deliver (the loop only
 * sends the result). Pure, so doing it here for a reply that later finds
 * no caller or a wrong request hash changes nothing. */
static void parse_batch(gg_reply_slot *sl, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (sl[i].reject < 0)
            gg_api_parse_reply(sl[i].pt, sl[i].ptlen, &sl[i].status, &sl[i].body, &sl[i].pst);
}

/* hand - give the opened batch to the loop and wait until it is handled.
 * 0 when handled, -1 if the portal stops first (the batch stays in the
 * store, to be read again at the next start). */
static int hand(gg_pdrain *d, gg_reply_slot *sl, size_t n)
{
    int rc = 0;

    pthread_mutex_lock(&d->mu);
    d->slots = sl;
    d->n = n;
    d->handed = 1;
    event_active(d->p->ev_replies, EV_READ, 0);
    while (d->handed && !d->stopping)
        pthread_cond_wait(&d->cv, &d->mu);
    if (d->handed) {
        d->handed = 0;
        d->slots = NULL;
        rc = -1;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* drain_once - read, open, hand over and remove one batch. The number of
 * replies it held, or -1 to stop. */
static long drain_once(gg_pdrain *d)
{
    gg_store *st = gg_transport_store(d->p->t);
    gg_reply_slot *sl;
    gg_msg **msgs = NULL;
    size_t n = 0;
    long rc;
    gg_err e;

    e = gg_store_browse(st, GG_Q_REPLIES, 0, GG_PORTAL_DRAIN_BATCH, 0, &msgs, &n);
    if (e != GG_OK) {
        gg_warn("portal", "msg=\"cannot read replies\" err=%s", gg_errname(e));
        return 0;  /* the periodic poll tries again */
    }
    if (n == 0)
        return 0;
    sl = calloc(n, sizeof *sl);
    if (sl == NULL) {
        gg_msgs_free(msgs, n);
        return 0;
    }
    open_batch(d->p, msgs, n, sl);
    parse_batch(sl, n);
    rc = (long)n;
    if (hand(d, sl, n) != 0) {
        rc = -1;
    } else {
        e = gg_store_delete_upto(st, GG_Q_REPLIES, msgs[n - 1]->id);
        if (e != GG_OK)
            gg_warn("portal", "msg=\"cannot remove answered replies\" upto=%lld err=%s",
                    (long long)msgs[n - 1]->id, gg_errname(e));
    }
    free_slots(sl, n);
    gg_msgs_free(msgs, n);
    return rc;
}

/* drain_main - wait for a wake-up or the poll, drain until a short batch. */
static void *drain_main(void *arg)
{
    gg_pdrain *d = arg;
    struct timespec until;
    long got;

    for (;;) {
        pthread_mutex_lock(&d->mu);
        if (!d->wake && !d->stopping) {
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += DRAIN_POLL_MS / 1000;
            pthread_cond_timedwait(&d->cv, &d->mu, &until);
        }
        d->wake = 0;
        if (d->stopping) {
            pthread_mutex_unlock(&d->mu);
            return NULL;
        }
        pthread_mutex_unlock(&d->mu);
        do {
            got = drain_once(d);
        } while (got == GG_PORTAL_DRAIN_BATCH);
        if (got < 0)
            return NULL;
    }
}

/* gg_portal_watch - the store committed to "replies": wake the drain. */
void gg_portal_watch(void *arg, const char *queue)
{
    gg_portal *p = arg;
    gg_pdrain *d = p->drain;

    (void)queue;
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    d->wake = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* gg_portal_on_replies - loop: answer the handed batch, record the
 * outcomes, hand it back for removal. */
void gg_portal_on_replies(evutil_socket_t fd, short what, void *arg)
{
    gg_portal *p = arg;
    gg_pdrain *d = p->drain;
    gg_reply_slot *sl;
    size_t i, n;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&d->mu);
    sl = d->handed ? d->slots : NULL;
    n = d->handed ? d->n : 0;
    pthread_mutex_unlock(&d->mu);
    if (sl == NULL)
        return;
    for (i = 0; i < n; i++) {
        gg_portal_deliver(p, &sl[i]);
        gg_shed_reply(p->shed, gg_mono_us());
    }
    gg_portal_tx_flush(p);  /* tx.c: outcomes recorded before the replies go */
    pthread_mutex_lock(&d->mu);
    d->handed = 0;
    d->slots = NULL;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* gg_portal_drain_start - the drain thread; it drains once at once. */
gg_err gg_portal_drain_start(gg_portal *p)
{
    gg_pdrain *d = calloc(1, sizeof *d);

    if (d == NULL)
        return GG_ENOMEM;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->p = p;
    d->wake = 1;  /* replies left from a previous run */
    p->drain = d;
    if (pthread_create(&d->th, NULL, drain_main, d) != 0) {
        gg_error("portal", "msg=\"cannot start the drain thread\"");
        return GG_EIO;
    }
    d->started = 1;
    return GG_OK;
}

/* gg_portal_drain_stop - stop and join the drain thread (a batch with the
 * loop and not yet handled stays in the store); free it. NULL is fine. */
void gg_portal_drain_stop(gg_portal *p)
{
    gg_pdrain *d = p->drain;

    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (d->started)
        pthread_join(d->th, NULL);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
    p->drain = NULL;
}
