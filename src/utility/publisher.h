/* publisher.h - the utility's event publisher: outbox to the portal.
 *
 * One thread with its own marketing connection drains the outbox
 * (marketing/ledger.h), which services fill in the same transaction as
 * the effect an event announces. Each row is sealed as an EVENT envelope
 * (msg_id = the event id, txn = the event type) and put durably on the
 * transmission queue for the portal's "events" queue; only then is the
 * row deleted. A crash between the two sends the event again with the
 * same event_id (at least once; the receiver drops repeats). The same
 * thread prunes the inbox past utility.inbox_retention_days and, every
 * utility.bill_sweep_s, publishes bill.issued for bills issued since its
 * mark (gg_marks "bill_issued", advanced in the same transaction) and marks
 * unpaid bills past their due date overdue, each with a bill.overdue event
 * in the same transaction. A sweep never holds the marketing database's
 * write lock while it reads: it lists outside any transaction, then writes
 * in a short one that re-checks (the mark still the one it read, each bill
 * still unpaid) and drops what moved meanwhile. Once a sweep has committed,
 * the cached answers of every account it touched are dropped
 * (gg_gate_invalidate), so that a bill the marketing system issued, or one
 * the sweep made overdue, is not hidden by a cached answer (fresh or, under
 * saturation, stale).
 */
#ifndef GG_UTILITY_PUBLISHER_H
#define GG_UTILITY_PUBLISHER_H

#include <stdint.h>

#include "core/config.h"
#include "core/err.h"
#include "envelope/envelope.h"
#include "marketing/ledger.h"
#include "transport/transport.h"
#include "utility/gate.h"

typedef struct gg_publisher gg_publisher;

/* gg_publisher_start - open a marketing connection (utility.marketing_db)
 * and start the thread. t, keys, site, peer and gate (whose cache the
 * sweeps invalidate; may be NULL) are borrowed and must outlive the
 * publisher. */
gg_err gg_publisher_start(const gg_config *cfg, gg_transport *t, const gg_env_keys *keys,
                          const char *site, const char *peer, gg_gate *gate,
                          gg_publisher **out);

/* gg_publisher_stop - stop the thread (within about 100 ms) and free; NULL
 * is fine. */
void gg_publisher_stop(gg_publisher *p);

/* gg_event_json - the event body the portal delivers, as malloc'd compact
 * JSON: {"event_id","type","occurred_at","source","data":{...}}. NULL on
 * ENOMEM or when row->data is not a JSON object. */
char *gg_event_json(const gg_outbox_row *row, const char *source);

/* gg_publish_once - one pass of the publisher on m: seal and queue up to
 * max outbox rows, deleting each after its put; *sent gets the count. For
 * tests and `gridgate admin publish-outage`. */
gg_err gg_publish_once(gg_mkt *m, gg_transport *t, const gg_env_keys *keys, const char *site,
                       const char *peer, size_t max, size_t *sent);

/* gg_bill_sweep - one bill sweep on m, as the thread runs it: bill.issued
 * for up to 200 bills issued since the mark (the first sweep only sets the
 * mark), then up to 200 unpaid bills past due made overdue with
 * bill.overdue. gate (may be NULL) loses the touched accounts' cached
 * answers. *issued and *overdue (each may be NULL) get the events written.
 * Failures are logged; the first is returned (a round dropped because
 * another node moved the mark is GG_OK with *issued 0). For the thread and
 * tests. */
gg_err gg_bill_sweep(gg_mkt *m, gg_gate *gate, size_t *issued, size_t *overdue);

#endif
