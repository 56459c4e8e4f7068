/* ckpt.c - checkpoints beside the committer, not in its way.
 *
 * Once the WAL holds GG_STORE_WAL_PAGES frames, the WAL hook (on the
 * committer's connection, inside its COMMIT) asks this thread for a
 * checkpoint, again each time the WAL has grown by a quarter of that,
 * when the commit was the writer thread's (callers were queued; a lone
 * caller checkpoints itself after its commit, as before, commit.c). The
 * thread runs it on a second connection to the same file (passive: it
 * copies into the database the frames committed before it started and
 * syncs the database, while the committer goes on appending). So the
 * committer no longer copies and syncs a thousand pages every few
 * commits (7.5 ms each in bench/store, every caller of the next batch
 * waiting).
 *
 * A passive checkpoint beside a busy committer never copies the frames
 * appended meanwhile, and the WAL can start over only once every frame is
 * copied; so once it holds GG_STORE_WAL_CATCHUP frames the hook asks the
 * committer instead (commit.c, housekeep): after its callers are woken it
 * copies what is left with a RESTART checkpoint, which has the next
 * transaction start the WAL over. It does not wait for a checkpoint of the
 * thread's still running (SQLITE_BUSY; a later commit asks again) until
 * the WAL reaches GG_STORE_WAL_HARD frames: then it does (a checkpoint on
 * a slow disk took up to 330 ms, while commits went on filling the WAL).
 * If this thread cannot start, the committer runs every checkpoint, as
 * before. A failed checkpoint fails no call (their commits are already
 * durable): it is logged and counted as a storage fault (gg_store_fault);
 * SQLITE_BUSY, the other connection checkpointing at the time, is not a
 * failure; gg_store_reclaim waits for the thread's (gg_store_ckpt_pause).
 * Sync order is SQLite's own: a checkpoint syncs the WAL before it copies,
 * from any thread (the VFS skips WAL syncs only for the committing thread
 * of a lease-only commit, vfs.c).
 */
#include <string.h>

#include "core/log.h"
#include "store/store_int.h"

/* ckpt_main - wait to be asked, checkpoint, until stopped. */
static void *ckpt_main(void *arg)
{
    gg_store *st = arg;

    pthread_mutex_lock(&st->cmu);
    for (;;) {
        int rc;

        while (!st->ckpt_asked && !st->ckpt_stop)
            pthread_cond_wait(&st->ccond, &st->cmu);
        if (st->ckpt_stop)
            break;
        st->ckpt_asked = 0;
        atomic_store(&st->ckpt_running, 1);
        pthread_mutex_unlock(&st->cmu);
        rc = sqlite3_wal_checkpoint_v2(st->ckdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&st->cmu);
        atomic_store(&st->ckpt_running, 0);
        pthread_cond_broadcast(&st->ccond);   /* a gg_store_ckpt_pause may wait */
        pthread_mutex_unlock(&st->cmu);
        if (rc == SQLITE_OK) {
            atomic_fetch_add(&st->checkpoints, 1);
        } else if ((rc & 0xff) != SQLITE_BUSY) {
            /* mu only after cmu is let go: a pause waits under mu. */
            gg_error("store", "msg=\"checkpoint failed\" rc=%d detail=\"%s\"", rc,
                     sqlite3_errmsg(st->ckdb));
            pthread_mutex_lock(&st->mu);
            gg_store_fault(st, "checkpoint", (rc & 0xff) == SQLITE_FULL ? GG_ENOSPC : GG_EIO);
            pthread_mutex_unlock(&st->mu);
        }
        pthread_mutex_lock(&st->cmu);
    }
    pthread_mutex_unlock(&st->cmu);
    return NULL;
}

/* gg_store_ckpt_start - open the second connection and start the thread;
 * on failure (logged) the committer keeps running the checkpoints. */
void gg_store_ckpt_start(gg_store *st)
{
    int rc;

    rc = sqlite3_open_v2(st->path, &st->ckdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                         gg_store_vfs_name());
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->ckdb,
                          st->opts.durability == GG_DURABLE_NORMAL
                              ? "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;"
                                " SELECT count(*) FROM sqlite_master"
                              : "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;"
                                " SELECT count(*) FROM sqlite_master",
                          NULL, NULL, NULL);
    if (rc == SQLITE_OK && pthread_create(&st->ckpt, NULL, ckpt_main, st) == 0) {
        st->ckpt_started = 1;
        return;
    }
    gg_warn("store", "msg=\"no checkpoint thread: the committer checkpoints\" rc=%d path=%s",
            rc, st->path);
    sqlite3_close(st->ckdb);
    st->ckdb = NULL;
}

/* gg_store_ckpt_stop - stop and join the thread, close its connection
 * (before the store's own, which then checkpoints at its close). */
void gg_store_ckpt_stop(gg_store *st)
{
    if (st->ckpt_started) {
        pthread_mutex_lock(&st->cmu);
        st->ckpt_stop = 1;
        pthread_cond_signal(&st->ccond);
        pthread_mutex_unlock(&st->cmu);
        pthread_join(st->ckpt, NULL);
        st->ckpt_started = 0;
        if (sqlite3_close(st->ckdb) != SQLITE_OK)
            gg_error("store", "msg=\"cannot close the checkpoint connection\" path=%s", st->path);
        st->ckdb = NULL;
    }
}

/* gg_store_ckpt_ask - have the thread run a checkpoint soon. */
void gg_store_ckpt_ask(gg_store *st)
{
    pthread_mutex_lock(&st->cmu);
    st->ckpt_asked = 1;
    pthread_cond_signal(&st->ccond);
    pthread_mutex_unlock(&st->cmu);
}

/* gg_store_ckpt_pause - wait for the thread's checkpoint, if one runs, and
 * keep it from starting another until gg_store_ckpt_resume. Under mu (so
 * the WAL hook, which runs under mu, cannot ask meanwhile). */
void gg_store_ckpt_pause(gg_store *st)
{
    pthread_mutex_lock(&st->cmu);
    while (atomic_load(&st->ckpt_running))
        pthread_cond_wait(&st->ccond, &st->cmu);
}

void gg_store_ckpt_resume(gg_store *st)
{
    pthread_mutex_unlock(&st->cmu);
}
