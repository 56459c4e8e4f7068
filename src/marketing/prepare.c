/* prepare.c - data preparation: monthly usage summaries (marketing.h,
 * gg_mkt_prepare_usage) on either backend.
 *
 * SQLite: the statements below. PostgreSQL: statement prepare_usage of the
 * queries file (pg.c), run as one transaction. Either way the result is the
 * table gg_usage_monthly(account_no, period, kwh_peak, kwh_valley, days)
 * holding every complete month (before the month of the newest reading) and
 * meta.usage_monthly_through = that newest month, which stays live.
 */
#include <sqlite3.h>
#include <stdlib.h>

#include "core/log.h"
#include "marketing/mkt_int.h"
#include "marketing/pg.h"

static const char sql_prepare[] =
    "BEGIN IMMEDIATE;"
    "CREATE TABLE IF NOT EXISTS gg_usage_monthly(account_no TEXT NOT NULL, period TEXT NOT NULL,"
    " kwh_peak REAL NOT NULL, kwh_valley REAL NOT NULL, days INTEGER NOT NULL,"
    " PRIMARY KEY (account_no, period)) WITHOUT ROWID;"
    "DELETE FROM gg_usage_monthly;"
    "INSERT OR REPLACE INTO meta(key, value) SELECT 'usage_monthly_through',"
    " coalesce(substr(max(day), 1, 7), '0000-00') FROM readings;"
    "INSERT INTO gg_usage_monthly SELECT account_no, substr(day, 1, 7), sum(kwh_peak),"
    " sum(kwh_valley), count(*) FROM readings WHERE day < (SELECT value FROM meta WHERE"
    " key = 'usage_monthly_through') || '-01' GROUP BY 1, 2;"
    "COMMIT;";

gg_err gg_mkt_prepare_usage(gg_mkt *m, int64_t *rows)
{
    sqlite3 *db;
    char *msg = NULL;
    int rc;

    if (gg_mkt_pg(m) != NULL)
        return mkt_pg_prepare_usage(gg_mkt_pg(m), rows);
    db = gg_mkt_sqlite(m);
    rc = sqlite3_exec(db, sql_prepare, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        gg_error("prepare", "msg=\"cannot build the usage summaries\" err=\"%s\"",
                 msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return (rc & 0xff) == SQLITE_BUSY ? GG_EBUSY : GG_EIO;
    }
    if (rows)
        *rows = sqlite3_changes64(db);
    return GG_OK;
}
