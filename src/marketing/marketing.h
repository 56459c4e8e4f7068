/* marketing.h - the adapter to the utility's marketing system database.
 *
 * This is the only code that runs SQL against the marketing system. A
 * gg_mkt is one connection: use it from one thread at a time (each worker
 * opens its own). Reads never change data. Schema: docs/marketing-schema.md.
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

#endif
