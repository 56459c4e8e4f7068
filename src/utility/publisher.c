/* publisher.c - outbox to the portal's "events" queue (publisher.h).
 *
 * Invariants:
 *  1. An outbox row is deleted only after the put of its sealed event on
 *     the transmission queue has returned GG_OK (durable).
 *  2. An event keeps the id it got when its row was written, on every
 *     resend.
 *  3. An overdue transition and its bill.overdue event commit together.
 *  4. No sweep reads a list inside its write transaction: the lists are
 *     plain reads; the transaction re-checks (conditional writes) and
 *     drops what another writer moved meanwhile.
 */
#include "utility/publisher.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"

#define PUB_BATCH 64
#define PUB_IDLE_MS 100                  /* poll of an empty outbox */
#define PUB_PRUNE_EVERY_MS 3600000LL     /* inbox pruning */
#define PUB_SWEEP_MAX 200                /* bills made overdue per pass */
#define PUB_EVENT_TTL_MS (30LL * 86400000LL)

struct gg_publisher {
    gg_mkt *mkt;
    gg_transport *t;
    const gg_env_keys *keys;
    const char *site;
    const char *peer;
    gg_gate *gate;                       /* its cache is invalidated by the sweeps */
    int64_t retention_ms;
    int64_t sweep_ms;
    pthread_t th;
    int started;
    atomic_bool stop;
};

/* iso_time - ms since the epoch as "YYYY-MM-DDTHH:MM:SSZ". */
static void iso_time(int64_t ms, char *out, size_t outsz)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outsz, "1970-01-01T00:00:00Z");
}

/* gg_event_json - the body the portal posts to the webhook. */
char *gg_event_json(const gg_outbox_row *row, const char *source)
{
    json_error_t jerr;
    json_t *data = json_loads(row->data, 0, &jerr);
    json_t *ev;
    char at[24];
    char *text;

    if (data == NULL || !json_is_object(data)) {
        json_decref(data);
        return NULL;
    }
    iso_time(row->created_ms, at, sizeof at);
    ev = json_pack("{s:s, s:s, s:s, s:s, s:o}", "event_id", row->event_id, "type", row->type,
                   "occurred_at", at, "source", source, "data", data);
    if (ev == NULL)
        return NULL;
    text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return text;
}

/* publish_row - seal one outbox row and queue it for the portal. */
static gg_err publish_row(gg_transport *t, const gg_env_keys *keys, const char *site,
                          const char *peer, const gg_outbox_row *row)
{
    gg_buf env = GG_BUF_INIT(GG_ENV_MAX);
    gg_env_hdr h;
    char *body = gg_event_json(row, site);
    gg_err e;

    if (body == NULL) {
        gg_error("utility", "msg=\"outbox row unreadable; dropped\" event_id=%s type=%s",
                 row->event_id, row->type);
        return GG_EINVAL;
    }
    memset(&h, 0, sizeof h);
    h.kind = GG_ENV_EVENT;
    e = gg_unhex(row->event_id, h.msg_id, sizeof h.msg_id);
    if (e != GG_OK)
        gg_new_id(h.msg_id);
    memcpy(h.corr_id, h.msg_id, sizeof h.corr_id);
    snprintf(h.txn, sizeof h.txn, "%s", row->type);
    snprintf(h.sender, sizeof h.sender, "%s", site);
    snprintf(h.receiver, sizeof h.receiver, "%s", peer);
    h.created_ms = gg_now_ms();
    h.expiry_ms = h.created_ms + PUB_EVENT_TTL_MS;
    e = gg_env_seal(keys, &h, body, strlen(body), &env);
    free(body);
    if (e == GG_OK)
        e = gg_transport_send(t, GG_Q_EVENTS, env.data, env.len, 0);
    gg_buf_free(&env);
    return e;
}

/* gg_publish_once - one pass over the outbox. */
gg_err gg_publish_once(gg_mkt *m, gg_transport *t, const gg_env_keys *keys, const char *site,
                       const char *peer, size_t max, size_t *sent)
{
    gg_outbox_row *rows = NULL;
    size_t n = 0, i;
    gg_err e;

    *sent = 0;
    e = gg_mkt_outbox_list(m, max, &rows, &n);
    if (e != GG_OK)
        return e;
    for (i = 0; i < n; i++) {
        e = publish_row(t, keys, site, peer, &rows[i]);
        if (e == GG_EINVAL) {
            e = GG_OK;  /* unreadable: logged; deleting it is all we can do */
        } else if (e != GG_OK) {
            gg_warn("utility", "msg=\"cannot queue event; will retry\" event_id=%s err=%s",
                    rows[i].event_id, gg_errname(e));
            break;
        } else {
            (*sent)++;
            gg_debug("utility", "msg=\"event queued\" event_id=%s type=%s", rows[i].event_id,
                     rows[i].type);
        }
        e = gg_mkt_outbox_delete(m, rows[i].seq);
        if (e != GG_OK)
            break;  /* the event goes again later, with the same id */
    }
    gg_outbox_free(rows, n);
    return e;
}

/* today - the current UTC date as "YYYY-MM-DD". */
static void today(char out[11])
{
    time_t t = (time_t)(gg_now_ms() / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, 11, "%Y-%m-%d", &tm) == 0)
        snprintf(out, 11, "1970-01-01");
}

/* put_event - an outbox row of type with data (a JSON object, taken), in
 * m's open transaction. */
static gg_err put_event(gg_mkt *m, const char *type, json_t *data)
{
    uint8_t id[16];
    char hex[33];
    char *text;
    gg_err e;

    if (data == NULL)
        return GG_ENOMEM;
    text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(data);
    if (text == NULL)
        return GG_ENOMEM;
    gg_new_id(id);
    gg_hex(id, sizeof id, hex);
    e = gg_mkt_outbox_put(m, hex, type, text, gg_now_ms());
    free(text);
    return e;
}

/* finish - commit or roll back the sweep's transaction on m; log the
 * outcome. GG_OK if it committed. */
static gg_err finish(gg_mkt *m, gg_err e, const char *what, size_t n)
{
    if (e == GG_OK)
        e = gg_mkt_commit(m);
    else
        gg_mkt_rollback(m);
    if (e != GG_OK)
        gg_warn("utility", "msg=\"bill sweep failed\" what=%s err=%s", what, gg_errname(e));
    else if (n > 0)
        gg_info("utility", "msg=\"bill events published\" what=%s count=%zu", what, n);
    return e;
}

/* sweep_overdue - unpaid bills past due become overdue, with their events.
 * The list is a plain read; the transaction only moves each bill still
 * unpaid (conditional) and writes its event. *moved gets the count. */
static gg_err sweep_overdue(gg_mkt *m, gg_gate *gate, size_t *moved)
{
    gg_bill_due *v = NULL;
    size_t n = 0, i;
    char day[11];
    gg_err e;

    *moved = 0;
    today(day);
    e = gg_mkt_overdue_list(m, day, PUB_SWEEP_MAX, &v, &n);
    if (e != GG_OK || n == 0) {
        if (e != GG_OK)
            gg_warn("utility", "msg=\"bill sweep failed\" what=bill.overdue err=%s",
                    gg_errname(e));
        free(v);
        return e;
    }
    e = gg_mkt_begin(m);
    for (i = 0; e == GG_OK && i < n; i++) {
        e = gg_mkt_bill_set_status(m, v[i].bill_id, "unpaid", "overdue");
        if (e == GG_ENOTFOUND) {
            e = GG_OK;  /* paid (or moved) since the list: nothing to announce */
            continue;
        }
        if (e == GG_OK)  /* what is due now: a part may have been paid since the list */
            e = gg_mkt_bill_due(m, v[i].bill_id, &v[i]);
        if (e == GG_OK)
            e = put_event(m, "bill.overdue",
                          json_pack("{s:s, s:s, s:I, s:s}", "bill_id", v[i].bill_id,
                                    "account_no", v[i].account_no, "amount_due_fen",
                                    (json_int_t)(v[i].amount_fen - v[i].paid_fen),
                                    "bill_status", "overdue"));
        *moved += e == GG_OK;
    }
    e = finish(m, e, "bill.overdue", *moved);
    if (e == GG_OK) {
        for (i = 0; i < n; i++)
            gg_gate_invalidate(gate, v[i].account_no);
    } else {
        *moved = 0;
    }
    free(v);
    return e;
}

/* first_mark - the first sweep: the mark at the newest bill, so history is
 * not announced (read outside the transaction, set only if still unset). */
static gg_err first_mark(gg_mkt *m)
{
    char last[GG_MKT_MARK_MAX];
    gg_err e = gg_mkt_issued_last(m, last, sizeof last);

    if (e == GG_OK)
        e = gg_mkt_begin(m);
    if (e != GG_OK) {
        gg_warn("utility", "msg=\"bill sweep failed\" what=\"bill.issued mark\" err=%s",
                gg_errname(e));
        return e;
    }
    e = gg_mkt_mark_move(m, "bill_issued", "", last);
    if (e == GG_ENOTFOUND) {  /* another utility node set it meanwhile */
        gg_mkt_rollback(m);
        return GG_OK;
    }
    return finish(m, e, "bill.issued mark", 0);
}

/* announce - in one transaction, a bill.issued event for each of the n
 * bills of v (listed after mark) and the mark moved to the last of them,
 * only if it is still mark; else (another node moved it) nothing is kept
 * and *sent stays 0: the next sweep lists again from the new mark. */
static gg_err announce(gg_mkt *m, gg_gate *gate, const char *mark, const gg_bill_issued *v,
                       size_t n, size_t *sent)
{
    char next[GG_MKT_MARK_MAX];
    size_t i;
    gg_err e = gg_mkt_begin(m);

    for (i = 0; e == GG_OK && i < n; i++)
        e = put_event(m, "bill.issued",
                      json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "bill_id", v[i].bill_id,
                                "account_no", v[i].account_no, "period", v[i].period,
                                "issued_on", v[i].issued_on, "due_date", v[i].due_date,
                                "amount_fen", (json_int_t)v[i].amount_fen));
    snprintf(next, sizeof next, "%s|%s", v[n - 1].issued_on, v[n - 1].bill_id);
    if (e == GG_OK)
        e = gg_mkt_mark_move(m, "bill_issued", mark, next);
    if (e == GG_ENOTFOUND) {
        gg_info("utility", "msg=\"bill.issued mark moved by another node; round dropped\"");
        gg_mkt_rollback(m);
        return GG_OK;
    }
    e = finish(m, e, "bill.issued", n);
    if (e == GG_OK) {
        *sent = n;
        for (i = 0; i < n; i++)
            gg_gate_invalidate(gate, v[i].account_no);
    }
    return e;
}

/* sweep_issued - a bill.issued event for each bill issued since the mark
 * (the first sweep only sets the mark: history is not announced). The mark
 * and the list are plain reads; announce writes. *sent gets the events
 * written. */
static gg_err sweep_issued(gg_mkt *m, gg_gate *gate, size_t *sent)
{
    gg_bill_issued *v = NULL;
    char mark[GG_MKT_MARK_MAX], after[GG_MKT_MARK_MAX], *bar;
    size_t n = 0;
    gg_err e;

    *sent = 0;
    e = gg_mkt_mark_get(m, "bill_issued", mark, sizeof mark);
    if (e == GG_ENOTFOUND)
        return first_mark(m);
    memcpy(after, mark, sizeof after);
    bar = e == GG_OK ? strchr(after, '|') : NULL;
    if (bar != NULL) {
        *bar = '\0';
        e = gg_mkt_issued_list(m, after, bar + 1, PUB_SWEEP_MAX, &v, &n);
    } else if (e == GG_OK) {
        e = GG_EINVAL;  /* not a mark this code wrote */
    }
    if (e != GG_OK)
        gg_warn("utility", "msg=\"bill sweep failed\" what=bill.issued err=%s", gg_errname(e));
    else if (n > 0)
        e = announce(m, gate, mark, v, n, sent);
    free(v);
    return e;
}

/* gg_bill_sweep - both sweeps, announced bills first. */
gg_err gg_bill_sweep(gg_mkt *m, gg_gate *gate, size_t *issued, size_t *overdue)
{
    size_t a = 0, b = 0;
    gg_err e = sweep_issued(m, gate, &a);
    gg_err e2 = sweep_overdue(m, gate, &b);

    if (issued != NULL)
        *issued = a;
    if (overdue != NULL)
        *overdue = b;
    return e != GG_OK ? e : e2;
}

/* prune - drop inbox records past the retention (the guarantee's window). */
static void prune(gg_publisher *p)
{
    int64_t removed = 0;
    gg_err e = gg_mkt_inbox_prune(p->mkt, gg_now_ms() - p->retention_ms, &removed);

    if (e != GG_OK)
        gg_warn("utility", "msg=\"inbox prune failed\" err=%s", gg_errname(e));
    else if (removed > 0)
        gg_info("utility", "msg=\"inbox pruned\" removed=%lld", (long long)removed);
}

/* nap - sleep ms unless asked to stop. */
static void nap(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* pub_main - the publisher thread. */
static void *pub_main(void *arg)
{
    gg_publisher *p = arg;
    int64_t next_prune = 0, next_sweep = p->sweep_ms > 0 ? gg_mono_us() / 1000 : INT64_MAX;

    while (!atomic_load(&p->stop)) {
        int64_t now = gg_mono_us() / 1000;
        size_t sent = 0;
        gg_err e;

        if (now >= next_prune) {
            prune(p);
            next_prune = now + PUB_PRUNE_EVERY_MS;
        }
        if (now >= next_sweep) {
            (void)gg_bill_sweep(p->mkt, p->gate, NULL, NULL);  /* logs its failures */
            next_sweep = now + p->sweep_ms;
        }
        e = gg_publish_once(p->mkt, p->t, p->keys, p->site, p->peer, PUB_BATCH, &sent);
        if (e != GG_OK || sent < PUB_BATCH)
            nap(PUB_IDLE_MS);
    }
    return NULL;
}

/* gg_publisher_start - connection and thread. */
gg_err gg_publisher_start(const gg_config *cfg, gg_transport *t, const gg_env_keys *keys,
                          const char *site, const char *peer, gg_gate *gate,
                          gg_publisher **out)
{
    const char *db = gg_config_str(cfg, "utility.marketing_db");
    gg_publisher *p;
    gg_err e;

    *out = NULL;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return GG_ENOMEM;
    atomic_init(&p->stop, false);
    p->t = t;
    p->keys = keys;
    p->site = site;
    p->peer = peer;
    p->gate = gate;
    p->retention_ms = gg_config_int(cfg, "utility.inbox_retention_days") * 86400000LL;
    p->sweep_ms = gg_config_int(cfg, "utility.bill_sweep_s") * 1000LL;
    const char *pg = gg_config_str(cfg, "utility.marketing_pg");
    if (pg != NULL && pg[0] != '\0')  /* PostgreSQL adapter (pg.c) */
        e = gg_mkt_open_pg(pg, gg_config_str(cfg, "utility.marketing_queries"), &p->mkt);
    else
        e = db != NULL ? gg_mkt_open(db, &p->mkt) : GG_ECONFIG;
    if (e == GG_OK)
        e = gg_mkt_ledger_init(p->mkt);
    if (e != GG_OK) {
        gg_error("utility", "msg=\"publisher cannot open the marketing database\" err=%s",
                 gg_errname(e));
        goto fail;
    }
    if (pthread_create(&p->th, NULL, pub_main, p) != 0) {
        e = GG_ENOMEM;
        goto fail;
    }
    p->started = 1;
    *out = p;
    return GG_OK;
fail:
    gg_publisher_stop(p);
    return e;
}

/* gg_publisher_stop - join and free. */
void gg_publisher_stop(gg_publisher *p)
{
    if (p == NULL)
        return;
    atomic_store(&p->stop, true);
    if (p->started)
        pthread_join(p->th, NULL);
    gg_mkt_close(p->mkt);
    free(p);
}
