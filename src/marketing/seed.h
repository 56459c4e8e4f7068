/* seed.h - a deterministic, realistic synthetic marketing database.
 *
 * Creates the schema of docs/marketing-schema.md in a new SQLite file and
 * fills it: accounts in Nanjing's 11 districts with Chinese names, phone
 * and ID numbers; daily readings with a seasonal shape and household
 * variety; monthly bills computed from the readings by the tariff tables
 * (paid, unpaid, overdue). The same options always give the same bytes of
 * data.
 */
#ifndef GG_MARKETING_SEED_H
#define GG_MARKETING_SEED_H

#include <stdint.h>

#include "core/err.h"

typedef struct gg_seed_opts {
    int accounts;           /* >= 1 */
    int months;             /* 1..120 */
    uint64_t seed;          /* PRNG seed */
    const char *end_period; /* last billed month "YYYY-MM"; NULL = the month before now */
} gg_seed_opts;

/* gg_seed_sqlite - create and fill path; GG_EEXISTS if it exists, GG_EINVAL
 * for options out of range (nothing created). On any other failure the
 * partly written file is removed. accounts <= 1,000,000. */
gg_err gg_seed_sqlite(const char *path, const gg_seed_opts *opts);

/* gg_seed_indexes - add to the existing SQLite marketing database at path
 * the indexes a fresh seed has and it lacks (an older seed: those the bill
 * sweeps need, docs/marketing-schema.md), in one transaction; *created (may
 * be NULL) gets how many were built. Waits up to 10 s for the write lock
 * (GG_EIO after). Those present are left alone, so a second call is quick. */
gg_err gg_seed_indexes(const char *path, int *created);

/* gg_seed_pg_indexes - the same on the PostgreSQL database at conninfo
 * (then ANALYZE bills). GG_EIO if it cannot connect or a statement fails. */
gg_err gg_seed_pg_indexes(const char *conninfo, int *created);

/* gg_seed_index_sql - the seed's index statements (CREATE INDEX IF NOT
 * EXISTS ..., ';'-separated), which both backends accept. */
const char *gg_seed_index_sql(void);

/* gg_seed_pg - copy every table of the SQLite marketing database at
 * sqlite_path into the PostgreSQL database at conninfo (same columns, keys
 * and indexes; COPY, one transaction). GG_EEXISTS if one of the tables
 * already exists there (nothing written), GG_EIO for other failures. */
gg_err gg_seed_pg(const char *sqlite_path, const char *conninfo);

#endif
