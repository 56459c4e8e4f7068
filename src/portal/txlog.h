/* txlog.h - the portal's record of transaction outcomes, by transaction id.
 *
 * One SQLite file (portal.tx_db) with one row per request the portal
 * relayed: its transaction code, when it was created and when its envelope
 * expires, and, once the utility's reply arrived (in time for the caller
 * or not), the reply's status and body. GET /api/v1/transactions/{id}
 * reads it. Writes may be grouped: after gg_txlog_hold, they join one
 * transaction that gg_txlog_flush commits (the portal holds them until its
 * next batch of replies, at most 5 ms: tx.c). Durability: WAL with
 * synchronous=NORMAL, so a power cut may lose the last moments of records,
 * and a killed process loses the writes held and not yet flushed (at most
 * 5 ms of them; a lost pending record reads as unknown; a reply is recorded and flushed
 * before it is removed from the store, so a lost outcome is written again
 * when the reply is redelivered). Used only from the portal's loop thread.
 */
#ifndef GG_PORTAL_TXLOG_H
#define GG_PORTAL_TXLOG_H

#include <stdint.h>

#include "core/err.h"

typedef struct gg_txlog gg_txlog;

typedef struct gg_txrec {
    char txid[33];
    char txn[32];
    int64_t created_ms;
    int64_t expiry_ms;
    int http_status;          /* 0 while pending */
    int64_t done_ms;
    char *body;               /* reply body (JSON text) or NULL; malloc'd: gg_txrec_clear */
} gg_txrec;

/* gg_txlog_open - open or create the file at path. */
gg_err gg_txlog_open(const char *path, gg_txlog **out);
void gg_txlog_close(gg_txlog *tl);

/* gg_txlog_begin - a pending record (kept if one exists already). */
gg_err gg_txlog_begin(gg_txlog *tl, const char *txid, const char *txn, int64_t created_ms,
                      int64_t expiry_ms);

/* gg_txlog_finish - the outcome; creates the record if it is missing. The
 * first outcome stays (a redelivered reply changes nothing). body may be
 * NULL. */
gg_err gg_txlog_finish(gg_txlog *tl, const char *txid, const char *txn, int http_status,
                       const char *body, int64_t now_ms);

/* gg_txlog_hold - group the writes that follow into one transaction,
 * until gg_txlog_flush; reads see them. *opened (may be NULL) is 1 if
 * this call started the group, 0 if one was open already. */
gg_err gg_txlog_hold(gg_txlog *tl, int *opened);

/* gg_txlog_flush - commit the held writes (nothing if none). On failure
 * they are rolled back (logged) and GG_EIO / GG_ENOSPC returned. */
gg_err gg_txlog_flush(gg_txlog *tl);

/* gg_txlog_get - the record of txid; GG_ENOTFOUND if none. */
gg_err gg_txlog_get(gg_txlog *tl, const char *txid, gg_txrec *out);
void gg_txrec_clear(gg_txrec *r);

/* gg_txlog_prune - delete records created before before_ms. */
gg_err gg_txlog_prune(gg_txlog *tl, int64_t before_ms, int64_t *removed);

#endif
