/* ledger.h - what gridgate writes into the marketing database: payments,
 * the inbox of state-changing requests and the outbox of events.
 *
 * The inbox (gg_inbox) and the outbox (gg_outbox) live in the marketing
 * database itself so that a service can write its business effect, its
 * inbox record and its events in ONE transaction (gg_mkt_begin ..
 * gg_mkt_commit on the same gg_mkt): either all of them are durable or
 * none is. gg_mkt_ledger_init creates the two tables if missing (the
 * payments table belongs to the marketing system, see
 * docs/marketing-schema.md). Every function runs on the caller's
 * connection; none logs personal data. The SQLite adapter implements them
 * (ledger.c); on a PostgreSQL connection each forwards to pg_ledger.c
 * (SQL from the queries file, docs/marketing-queries.md).
 */
#ifndef GG_MARKETING_LEDGER_H
#define GG_MARKETING_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "marketing/marketing.h"

#define GG_MKT_KEY_MAX 96          /* inbox key: "pay:<ref>" or "msg:<hex id>" */
#define GG_MKT_HASH_MAX 65         /* request hash, 64 hex digits */
#define GG_MKT_RESULT_MAX 16384    /* a stored result, bytes of JSON */
#define GG_MKT_EVENT_TYPE_MAX 32
#define GG_MKT_EVENT_DATA_MAX 8192
#define GG_MKT_MARK_MAX 64

/* A bill as a payment sees it. */
typedef struct gg_bill_due {
    char bill_id[40];
    char account_no[33];
    char status[10];               /* "paid" | "unpaid" | "overdue" */
    int64_t amount_fen;            /* billed */
    int64_t paid_fen;              /* sum of the payments posted against it */
} gg_bill_due;

/* A payment row, as posted. */
typedef struct gg_payment {
    char payment_id[40];
    char account_no[33];
    char bill_id[40];
    int64_t amount_fen;
    char payment_ref[65];
    char posted_at[24];            /* "YYYY-MM-DDTHH:MM:SSZ" */
} gg_payment;

/* One outbox row. */
typedef struct gg_outbox_row {
    int64_t seq;                   /* order of writing */
    char event_id[33];             /* 32 hex digits, fixed at write time */
    char type[GG_MKT_EVENT_TYPE_MAX];
    int64_t created_ms;
    char *data;                    /* JSON text, malloc'd: gg_outbox_free */
} gg_outbox_row;

/* gg_mkt_has_ledger - whether this connection's backend implements the
 * functions below (SQLite: yes; PostgreSQL: not yet). */
int gg_mkt_has_ledger(gg_mkt *m);

/* gg_mkt_ledger_init - create gg_inbox and gg_outbox if missing. */
gg_err gg_mkt_ledger_init(gg_mkt *m);

/* gg_mkt_begin - start a write transaction (it takes the write lock at
 * once, waiting up to the busy timeout: GG_EBUSY). */
gg_err gg_mkt_begin(gg_mkt *m);
/* gg_mkt_commit - commit; on error the transaction is rolled back. */
gg_err gg_mkt_commit(gg_mkt *m);
/* gg_mkt_rollback - roll back the open transaction, if any. */
void gg_mkt_rollback(gg_mkt *m);

/* gg_mkt_inbox_get - the inbox record under key: req_hash (size
 * GG_MKT_HASH_MAX) and *result (malloc'd JSON text, caller frees).
 * GG_ENOTFOUND if none. */
gg_err gg_mkt_inbox_get(gg_mkt *m, const char *key, char *req_hash, char **result);

/* gg_mkt_inbox_put - record result under key. GG_EEXISTS if key is taken,
 * GG_ETOOBIG if result is over GG_MKT_RESULT_MAX. */
gg_err gg_mkt_inbox_put(gg_mkt *m, const char *key, const char *txn, const char *req_hash,
                        const char *result, int64_t now_ms);

/* gg_mkt_inbox_prune - delete inbox records created before before_ms;
 * *removed (may be NULL) gets the count. Its own transaction. */
gg_err gg_mkt_inbox_prune(gg_mkt *m, int64_t before_ms, int64_t *removed);

/* gg_mkt_bill_due - a bill with the sum already paid. GG_ENOTFOUND. */
gg_err gg_mkt_bill_due(gg_mkt *m, const char *bill_id, gg_bill_due *out);

/* gg_mkt_payment_post - insert the payment row and set its bill's status
 * to bill_status. GG_EEXISTS if payment_ref or payment_id is taken. Call
 * inside gg_mkt_begin .. gg_mkt_commit. */
gg_err gg_mkt_payment_post(gg_mkt *m, const gg_payment *p, const char *bill_status);

/* gg_mkt_outbox_put - add an event (data: a JSON object as text). Call
 * inside the transaction whose effect the event announces. */
gg_err gg_mkt_outbox_put(gg_mkt *m, const char *event_id, const char *type, const char *data,
                         int64_t now_ms);

/* gg_mkt_outbox_list - the oldest max rows, in seq order; *out malloc'd
 * (free with gg_outbox_free), NULL when *n is 0. */
gg_err gg_mkt_outbox_list(gg_mkt *m, size_t max, gg_outbox_row **out, size_t *n);
void gg_outbox_free(gg_outbox_row *rows, size_t n);

/* gg_mkt_outbox_delete - remove the row seq (after its event was queued). */
gg_err gg_mkt_outbox_delete(gg_mkt *m, int64_t seq);

/* gg_mkt_overdue_list - up to max unpaid bills with due_date < today
 * ("YYYY-MM-DD"), for the overdue sweep, oldest due first. *out malloc'd
 * (free). Reads through an index on bills(status, due_date, bill_id). */
gg_err gg_mkt_overdue_list(gg_mkt *m, const char *today, size_t max, gg_bill_due **out,
                           size_t *n);

/* gg_mkt_bill_set_status - set a bill's status if it is still from.
 * GG_ENOTFOUND if it was not (someone else changed it). */
gg_err gg_mkt_bill_set_status(gg_mkt *m, const char *bill_id, const char *from,
                              const char *to);

/* A bill as the bill.issued event announces it. */
typedef struct gg_bill_issued {
    char bill_id[40];
    char account_no[33];
    char period[8];
    char issued_on[11];
    char due_date[11];
    int64_t amount_fen;
} gg_bill_issued;

/* gg_mkt_mark_get - gridgate's named mark (gg_marks) into out; GG_ENOTFOUND. */
gg_err gg_mkt_mark_get(gg_mkt *m, const char *name, char *out, size_t outsz);
/* gg_mkt_mark_move - set the named mark to value only if it is still
 * expected ("" for a mark that must not exist yet), in the caller's
 * transaction. GG_ENOTFOUND if it was not (someone else moved it: roll
 * back). On PostgreSQL the row lock makes a concurrent move wait. */
gg_err gg_mkt_mark_move(gg_mkt *m, const char *name, const char *expected, const char *value);

/* gg_mkt_issued_list - up to max bills after (issued_on, bill_id) in that
 * order; both "" for the very first. *out malloc'd (free), NULL if *n 0.
 * Reads through an index on bills(issued_on, bill_id) when there is one
 * (the seed makes it: docs/marketing-schema.md). */
gg_err gg_mkt_issued_list(gg_mkt *m, const char *after_issued, const char *after_bill,
                          size_t max, gg_bill_issued **out, size_t *n);

/* gg_mkt_issued_last - the greatest (issued_on, bill_id) as
 * "issued_on|bill_id", "|" when there are no bills (out >= 64 bytes). */
gg_err gg_mkt_issued_last(gg_mkt *m, char *out, size_t outsz);

#endif
