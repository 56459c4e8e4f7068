/* marketing.h - the adapter to the utility's marketing system database.
 *
 * This is the only code that runs SQL against the marketing system. A
 * gg_mkt is one connection: use it from one thread at a time (each worker
 * opens its own). Reads never change data. Schema: docs/marketing-schema.md.
 * Two backends behind the one API: SQLite (gg_mkt_open, SQL built in) and
 * PostgreSQL (gg_mkt_open_pg, src/marketing/pg.c: every statement comes from
 * a queries file the utility may rewrite for its own schema,
 * docs/marketing-queries.md); a PostgreSQL connection that breaks is
 * re-opened and the read retried before an error is returned.
 */
#ifndef GG_MARKETING_MARKETING_H
#define GG_MARKETING_MARKETING_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "marketing/tariff.h"

/* The schema version this adapter reads (meta.schema_version). */
#define GG_MKT_SCHEMA_VERSION 1
/* The most bills one gg_mkt_bills call returns (100 years). */
#define GG_MKT_BILLS_MAX 1200

typedef struct gg_mkt gg_mkt;

typedef struct gg_account {
    char account_no[33];
    char holder_name[64];     /* UTF-8; personal data: mask before it leaves */
    char phone[24];           /* personal data */
    char id_no[24];           /* personal data */
    char address[256];        /* personal data */
    char district[32];
    char tariff_code[16];
    char status[16];          /* "active" | "closed" */
} gg_account;

typedef struct gg_bill {
    char bill_id[40];
    char period[8];           /* "YYYY-MM" */
    int64_t kwh;              /* whole kWh billed */
    int64_t kwh_peak;
    int64_t kwh_valley;
    int64_t amount_fen;
    char due_date[11];        /* "YYYY-MM-DD" */
    char status[10];          /* "paid" | "unpaid" | "overdue" */
} gg_bill;

/* The most rows one gg_mkt_usage call returns (a leap year of days). */
#define GG_MKT_USAGE_MAX 366

typedef struct gg_usage {
    char period[11];          /* "YYYY-MM-DD" (day) or "YYYY-MM" (month) */
    int64_t peak_centi;       /* kWh 08:00-21:00, in hundredths of a kWh */
    int64_t valley_centi;     /* kWh 21:00-08:00, in hundredths of a kWh */
} gg_usage;

/* gg_mkt_open - open the SQLite marketing database at path (must exist):
 * read-write, WAL, busy timeout. GG_ENOTFOUND if there is no file,
 * GG_EINVAL if it is not a marketing database of GG_MKT_SCHEMA_VERSION,
 * GG_EIO otherwise. */
gg_err gg_mkt_open(const char *path, gg_mkt **out);
void gg_mkt_close(gg_mkt *m);

/* gg_mkt_account - look up one account. GG_ENOTFOUND if there is none. */
gg_err gg_mkt_account(gg_mkt *m, const char *account_no, gg_account *out);

/* gg_mkt_bills - the account's bills with from <= period <= to ("YYYY-MM"),
 * oldest first. *out is malloc'd (free it; NULL when *n is 0); *n may be 0.
 * GG_ETOOBIG if more than GG_MKT_BILLS_MAX match. On error *out is NULL. */
gg_err gg_mkt_bills(gg_mkt *m, const char *account_no, const char *from, const char *to,
                    gg_bill **out, size_t *n);

/* gg_mkt_tariff - load one row of the tariffs table. GG_ENOTFOUND if there
 * is none, GG_EINVAL if the row is inconsistent (unknown kind, negative
 * price, tiers out of order). */
gg_err gg_mkt_tariff(gg_mkt *m, const char *code, gg_tariff *out);

/* gg_mkt_sample_account - an active account to try the demo with: the first
 * by number that has an unpaid bill, else the first active one.
 * GG_ENOTFOUND if the database has no active account. */
gg_err gg_mkt_sample_account(gg_mkt *m, gg_account *out);

/* gg_mkt_usage - the account's metered kWh per period, oldest first:
 * per day (month == 0; from, to "YYYY-MM-DD") or per calendar month summed
 * from the days (month != 0; from, to "YYYY-MM"), both bounds included;
 * periods without readings are absent. *out is malloc'd as for
 * gg_mkt_bills. GG_ETOOBIG above GG_MKT_USAGE_MAX rows. */
gg_err gg_mkt_usage(gg_mkt *m, const char *account_no, int month, const char *from,
                    const char *to, gg_usage **out, size_t *n);

/* gg_mkt_open_pg - connect to PostgreSQL with conninfo (libpq syntax) and
 * prepare every statement of the queries file at queries (NULL: the
 * built-in defaults, identical to etc/marketing-queries.pg.ini). The same
 * schema version check as gg_mkt_open. GG_ECONFIG for a bad queries file,
 * GG_EINVAL for a database that is not a marketing database (or a query
 * that does not prepare), GG_EIO when the server cannot be reached. */
gg_err gg_mkt_open_pg(const char *conninfo, const char *queries, gg_mkt **out);

/* gg_mkt_prepare_usage - data preparation: (re)build gg_usage_monthly, the
 * monthly sums of every account's readings for each month before the month
 * of the newest reading, and record that month in meta
 * (usage_monthly_through), all in one transaction. Monthly usage queries
 * then read the summaries for those months and the readings only for
 * later ones. *rows (may be NULL) gets the summaries written. */
gg_err gg_mkt_prepare_usage(gg_mkt *m, int64_t *rows);

/* gg_mkt_accounts - up to max active account numbers, in order (for load
 * tools: the capacity probe). *out is malloc'd (free it). */
gg_err gg_mkt_accounts(gg_mkt *m, size_t max, char (**out)[33], size_t *n);

/* gg_mkt_backend - "sqlite" or "pg". */
const char *gg_mkt_backend(const gg_mkt *m);

#endif
