/* fault.h - the store's storage fault seam, for tests.
 *
 * Every store opens its database through a pass-through SQLite VFS
 * ("gg-fault"). Armed, it makes chosen writes or syncs of any store file in
 * this process fail as a full disk (SQLITE_FULL, the store's GG_ENOSPC) or
 * an I/O error (SQLITE_IOERR, GG_EIO) without touching the disk. Disarmed
 * (the default) it only passes calls through. Process-wide and thread-safe.
 */
#ifndef GG_STORE_FAULT_H
#define GG_STORE_FAULT_H

#include <stdint.h>

#include "core/err.h"

typedef enum gg_fault_kind {
    GG_FAULT_SYNC = 1,    /* xSync: the fsync of a commit or a checkpoint */
    GG_FAULT_WRITE = 2,   /* xWrite: any page or WAL frame write */
} gg_fault_kind;

/* gg_store_fault_arm - from now on, the nth call of kind (1 = the next one)
 * and the count-1 after it (count 0 = every one until disarmed) fail with
 * err: GG_ENOSPC or GG_EIO. GG_EINVAL for other arguments. */
gg_err gg_store_fault_arm(gg_fault_kind kind, int64_t nth, gg_err err, int64_t count);

/* gg_store_fault_disarm - stop failing; calls pass through again. */
void gg_store_fault_disarm(void);

/* gg_store_fault_hits - how many calls the seam has failed since start. */
int64_t gg_store_fault_hits(void);

#endif
