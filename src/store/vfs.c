/* vfs.c - the store's I/O seam: a pass-through SQLite VFS ("gg-fault")
 * over the default one, whose files can be made to fail their writes or
 * syncs (contract in fault.h). Only xOpen is changed at the VFS level; the
 * files it opens get io_methods that count and maybe fail xWrite and xSync
 * and pass every other call to the real file, which lives right after the
 * wrapper in the memory SQLite allocates (szOsFile covers both).
 *
 * It is also where a lease-only commit skips its fsync: while the calling
 * thread has gg_store_vfs_skip_wal_sync(1) in force, xSync of a WAL file
 * returns at once (commit.c sets it around such a COMMIT only, with
 * checkpoints kept outside that window, so a checkpoint always syncs).
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>

#include "store/fault.h"
#include "store/store_int.h"

#define VFS_NAME "gg-fault"

typedef struct ff_file {
    sqlite3_file base;          /* must be first */
    sqlite3_file *real;         /* points just past this struct */
    sqlite3_io_methods methods; /* same version as the real file's */
    int wal;                    /* opened as a WAL file */
    long long pad;              /* keeps real 8-byte aligned */
} ff_file;

static sqlite3_vfs ff_vfs;
static sqlite3_vfs *ff_real_vfs;
static pthread_once_t ff_once = PTHREAD_ONCE_INIT;
static int ff_ok;

static atomic_int ff_kind;          /* 0 = disarmed */
static atomic_llong ff_seen;        /* calls of ff_kind since armed */
static atomic_llong ff_first;       /* first failing call (1-based) */
static atomic_llong ff_last;        /* last failing call; 0 = no end */
static atomic_int ff_rc;            /* the SQLite code to return */
static atomic_llong ff_hits;
static _Thread_local int ff_skip_wal_sync;   /* this thread is in a lease-only COMMIT */

/* ff_fail - 1 if this call of kind must fail now. */
static int ff_fail(gg_fault_kind kind)
{
    long long n, last;

    if (atomic_load(&ff_kind) != (int)kind)
        return 0;
    n = atomic_fetch_add(&ff_seen, 1) + 1;
    last = atomic_load(&ff_last);
    if (n < atomic_load(&ff_first) || (last != 0 && n > last))
        return 0;
    atomic_fetch_add(&ff_hits, 1);
    return 1;
}

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((ff_file *)f)->real;
}

static int ff_close(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
}

static int ff_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xRead(r, p, n, off);
}

static int ff_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    sqlite3_file *r = real_of(f);

    if (ff_fail(GG_FAULT_WRITE))
        return atomic_load(&ff_rc) == SQLITE_FULL ? SQLITE_FULL : SQLITE_IOERR_WRITE;
    return r->pMethods->xWrite(r, p, n, off);
}

static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xTruncate(r, size);
}

static int ff_sync(sqlite3_file *f, int flags)
{
    sqlite3_file *r = real_of(f);

    if (ff_skip_wal_sync && ((ff_file *)f)->wal)
        return SQLITE_OK;

    if (ff_fail(GG_FAULT_SYNC))
        return atomic_load(&ff_rc) == SQLITE_FULL ? SQLITE_FULL : SQLITE_IOERR_FSYNC;
    return r->pMethods->xSync(r, flags);
}

static int ff_size(sqlite3_file *f, sqlite3_int64 *size)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xFileSize(r, size);
}

static int ff_lock(sqlite3_file *f, int l)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xLock(r, l);
}

static int ff_unlock(sqlite3_file *f, int l)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xUnlock(r, l);
}

static int ff_check_lock(sqlite3_file *f, int *out)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xCheckReservedLock(r, out);
}

static int ff_fcntl(sqlite3_file *f, int op, void *arg)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xFileControl(r, op, arg);
}

static int ff_sector(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xSectorSize(r);
}

static int ff_devchar(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xDeviceCharacteristics(r);
}

static int ff_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xShmMap(r, pg, pgsz, extend, pp);
}

static int ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xShmLock(r, off, n, flags);
}

static void ff_shm_barrier(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    r->pMethods->xShmBarrier(r);
}

static int ff_shm_unmap(sqlite3_file *f, int del)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xShmUnmap(r, del);
}

static int ff_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xFetch(r, off, n, pp);
}

static int ff_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xUnfetch(r, off, p);
}

/* ff_open - open the real file after the wrapper and wrap its methods. */
static int ff_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                   int *out_flags)
{
    ff_file *w = (ff_file *)f;
    const sqlite3_io_methods *rm;
    int rc;

    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)(w + 1);
    w->wal = (flags & SQLITE_OPEN_WAL) != 0;
    rc = ff_real_vfs->xOpen(ff_real_vfs, name, w->real, flags, out_flags);
    rm = w->real->pMethods;
    if (rm == NULL)
        return rc;
    w->methods.iVersion = rm->iVersion > 3 ? 3 : rm->iVersion;
    w->methods.xClose = ff_close;
    w->methods.xRead = ff_read;
    w->methods.xWrite = ff_write;
    w->methods.xTruncate = ff_truncate;
    w->methods.xSync = ff_sync;
    w->methods.xFileSize = ff_size;
    w->methods.xLock = ff_lock;
    w->methods.xUnlock = ff_unlock;
    w->methods.xCheckReservedLock = ff_check_lock;
    w->methods.xFileControl = ff_fcntl;
    w->methods.xSectorSize = ff_sector;
    w->methods.xDeviceCharacteristics = ff_devchar;
    if (w->methods.iVersion >= 2) {
        w->methods.xShmMap = ff_shm_map;
        w->methods.xShmLock = ff_shm_lock;
        w->methods.xShmBarrier = ff_shm_barrier;
        w->methods.xShmUnmap = ff_shm_unmap;
    }
    if (w->methods.iVersion >= 3) {
        w->methods.xFetch = ff_fetch;
        w->methods.xUnfetch = ff_unfetch;
    }
    f->pMethods = &w->methods;
    return rc;
}

/* ff_register - build the VFS from the default one and register it. */
static void ff_register(void)
{
    ff_real_vfs = sqlite3_vfs_find(NULL);
    if (ff_real_vfs == NULL)
        return;
    ff_vfs = *ff_real_vfs;
    ff_vfs.szOsFile = (int)sizeof(ff_file) + ff_real_vfs->szOsFile;
    ff_vfs.zName = VFS_NAME;
    ff_vfs.pNext = NULL;
    ff_vfs.xOpen = ff_open;
    ff_ok = sqlite3_vfs_register(&ff_vfs, 0) == SQLITE_OK;
}

/* gg_store_vfs_name - the seam's VFS name, registered on first use. */
const char *gg_store_vfs_name(void)
{
    pthread_once(&ff_once, ff_register);
    return ff_ok ? VFS_NAME : NULL;
}

/* gg_store_vfs_skip_wal_sync - on this thread, make WAL syncs no-ops (on) or real again. */
void gg_store_vfs_skip_wal_sync(int on)
{
    ff_skip_wal_sync = on;
}

/* gg_store_fault_arm - fail calls nth..nth+count-1 of kind with err. */
gg_err gg_store_fault_arm(gg_fault_kind kind, int64_t nth, gg_err err, int64_t count)
{
    if ((kind != GG_FAULT_SYNC && kind != GG_FAULT_WRITE) || nth < 1 || count < 0 ||
        (err != GG_ENOSPC && err != GG_EIO))
        return GG_EINVAL;
    atomic_store(&ff_kind, 0);
    atomic_store(&ff_seen, 0);
    atomic_store(&ff_first, nth);
    atomic_store(&ff_last, count ? nth + count - 1 : 0);
    atomic_store(&ff_rc, err == GG_ENOSPC ? SQLITE_FULL : SQLITE_IOERR);
    atomic_store(&ff_kind, (int)kind);
    return GG_OK;
}

/* gg_store_fault_disarm - pass every call through again. */
void gg_store_fault_disarm(void)
{
    atomic_store(&ff_kind, 0);
}

/* gg_store_fault_hits - calls failed by the seam so far. */
int64_t gg_store_fault_hits(void)
{
    return atomic_load(&ff_hits);
}
