/* mkt_int.h - shared by the files of the SQLite marketing adapter (not a
 * public API): marketing.c owns the connection, ledger.c (payments, inbox,
 * outbox) runs its own SQL on it. A PostgreSQL adapter provides the same
 * gg_mkt_* functions over its own connection instead. */
#ifndef GG_MARKETING_MKT_INT_H
#define GG_MARKETING_MKT_INT_H

#include <sqlite3.h>

#include "marketing/marketing.h"

/* gg_mkt_sqlite - the connection's SQLite handle (borrowed). */
sqlite3 *gg_mkt_sqlite(gg_mkt *m);

#endif
