/* pg.h - internal to the marketing adapter: the PostgreSQL backend.
 *
 * marketing.c forwards every gg_mkt call to these when the gg_mkt was opened
 * with gg_mkt_open_pg; they keep the contracts of marketing.h. The SQL comes
 * from a queries file (queries.h) with the defaults below.
 */
#ifndef GG_MARKETING_PG_H
#define GG_MARKETING_PG_H

#include <libpq-fe.h>
#include <stddef.h>

#include "marketing/ledger.h"
#include "marketing/marketing.h"
#include "marketing/queries.h"

typedef struct mkt_pg mkt_pg;

/* The statements, in the order of the defaults table (pg.c). */
enum mkt_pg_q {
    Q_SCHEMA, Q_ACCOUNT, Q_BILLS, Q_TARIFF, Q_SAMPLE, Q_USAGE_DAY, Q_USAGE_MONTH,
    Q_LEDGER_INIT,                        /* DDL, run unprepared at open */
    Q_INBOX_GET, Q_INBOX_PUT, Q_INBOX_PRUNE, Q_BILL_DUE, Q_PAYMENT_INSERT, Q_BILL_STATUS,
    Q_BILL_SET_STATUS, Q_OVERDUE_LIST, Q_OUTBOX_PUT, Q_OUTBOX_LIST, Q_OUTBOX_DELETE,
    Q_PREPARE_USAGE,                      /* data preparation, run unprepared */
    Q_ACCOUNTS,                           /* active account numbers, for probes */
    Q_MARK_GET, Q_MARK_SET, Q_ISSUED_LIST, Q_ISSUED_LAST, Q_MARK_MOVE,
    Q_COUNT
};

/* mkt_pg_run - execute statement q with text params; *res (PQclear it) on
 * GG_OK. Outside a transaction a lost connection is re-opened and q run
 * again (up to PG_RETRY_MS); inside one the transaction is lost: GG_EBUSY.
 * A unique violation is GG_EEXISTS. */
gg_err mkt_pg_run(mkt_pg *pg, int q, const char *const *params, PGresult **res);

/* mkt_pg_list - run q and read its rows, each of size elem, into a new
 * array with read(r, i, row). More than max rows (max > 0) is GG_ETOOBIG.
 * On success *out and *n hold them (left as they were when there are
 * none); on any error nothing is kept: the array goes to drop(rows, count)
 * (free() when drop is NULL). */
gg_err mkt_pg_list(mkt_pg *pg, int q, const char *const *params, size_t elem, int max,
                   gg_err (*read)(const PGresult *r, int i, void *row),
                   void (*drop)(void *rows, size_t n), void **out, size_t *n);

/* mkt_pg_tx - "BEGIN", "COMMIT" or "ROLLBACK" on pg's connection. */
gg_err mkt_pg_tx(mkt_pg *pg, const char *verb);

/* mkt_pg_prepare_usage - statement prepare_usage in one transaction. */
gg_err mkt_pg_prepare_usage(mkt_pg *pg, int64_t *rows);

gg_err mkt_pg_accounts(mkt_pg *pg, size_t max, char (**out)[33], size_t *n);

/* gg_mkt_pg - the PostgreSQL backend of m, or NULL for SQLite. */
mkt_pg *gg_mkt_pg(gg_mkt *m);

/* The ledger (ledger.h) on PostgreSQL: pg_ledger.c. */
gg_err mkt_pgl_init(mkt_pg *pg);
gg_err mkt_pgl_inbox_get(mkt_pg *pg, const char *key, char *req_hash, char **result);
gg_err mkt_pgl_inbox_put(mkt_pg *pg, const char *key, const char *txn, const char *req_hash,
                         const char *result, int64_t now_ms);
gg_err mkt_pgl_inbox_prune(mkt_pg *pg, int64_t before_ms, int64_t *removed);
gg_err mkt_pgl_bill_due(mkt_pg *pg, const char *bill_id, gg_bill_due *out);
gg_err mkt_pgl_payment_post(mkt_pg *pg, const gg_payment *p, const char *bill_status);
gg_err mkt_pgl_bill_set_status(mkt_pg *pg, const char *bill_id, const char *from,
                               const char *to);
gg_err mkt_pgl_overdue_list(mkt_pg *pg, const char *today, size_t max, gg_bill_due **out,
                            size_t *n);
gg_err mkt_pgl_outbox_put(mkt_pg *pg, const char *event_id, const char *type,
                          const char *data, int64_t now_ms);
gg_err mkt_pgl_outbox_list(mkt_pg *pg, size_t max, gg_outbox_row **out, size_t *n);
gg_err mkt_pgl_outbox_delete(mkt_pg *pg, int64_t seq);
gg_err mkt_pgl_mark_get(mkt_pg *pg, const char *name, char *out, size_t outsz);
gg_err mkt_pgl_mark_move(mkt_pg *pg, const char *name, const char *expected, const char *value);
gg_err mkt_pgl_issued_list(mkt_pg *pg, const char *after_issued, const char *after_bill,
                           size_t max, gg_bill_issued **out, size_t *n);
gg_err mkt_pgl_issued_last(mkt_pg *pg, char *out, size_t outsz);

gg_err mkt_pg_open(const char *conninfo, const char *queries, mkt_pg **out);
void mkt_pg_close(mkt_pg *pg);
gg_err mkt_pg_account(mkt_pg *pg, const char *account_no, gg_account *out);
gg_err mkt_pg_bills(mkt_pg *pg, const char *account_no, const char *from, const char *to,
                    gg_bill **out, size_t *n);
gg_err mkt_pg_tariff(mkt_pg *pg, const char *code, gg_tariff *out);
gg_err mkt_pg_sample_account(mkt_pg *pg, gg_account *out);
gg_err mkt_pg_usage(mkt_pg *pg, const char *account_no, int month, const char *from,
                    const char *to, gg_usage **out, size_t *n);

/* gg_mkt_pg_defaults - the built-in PostgreSQL statements (n of them). */
const gg_mkt_qdef *gg_mkt_pg_defaults(size_t *n);

/* gg_mkt_centi - kWh to whole hundredths, half away from zero. */
int64_t gg_mkt_centi(double kwh);

#endif
