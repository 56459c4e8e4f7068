/* side.c - another module's tables in the store's file, changed in the
 * store's group commit (contract in store.h, "Side tables").
 *
 * gg_store_exec queues the caller's function as an ordinary op
 * (gg_store_run, store_int.h): it runs inside the shared transaction, with
 * the store's lock held, on the store's connection. A non-durable call
 * marks its op as one whose commit needs no fsync (gg_txn.lease_only, the
 * flag a lease sets): commit.c then skips the WAL fsync when no other op
 * of the batch needs one, and the next fsynced commit covers it, WAL
 * frames being synced in order. gg_store_side_locked takes the store's
 * mutex (which a batch holds from BEGIN to COMMIT) and runs the function
 * between transactions. gg_store_side_hook registers a function that the
 * committer runs in every transaction just before its COMMIT
 * (gg_store_side_before_commit, called by commit.c), and
 * gg_store_side_reader opens a read-only connection of the caller's own on
 * the store's file (WAL: its reads never wait for the writer). The store's
 * own tables are never touched here.
 */
#include <string.h>

#include "core/log.h"
#include "store/store_int.h"

struct exec_args {
    gg_store_side_fn fn;
    void *arg;
    int durable;
};

/* op_exec - the side function as a store op. */
static gg_err op_exec(gg_store *st, gg_txn *t, void *arg)
{
    struct exec_args *a = arg;

    t->lease_only = !a->durable;
    return a->fn(st->db, a->arg);
}

/* gg_store_exec - run fn in the group commit, fsynced or not. */
gg_err gg_store_exec(gg_store *st, const char *op, gg_store_side_fn fn, void *arg, int durable)
{
    struct exec_args a = { fn, arg, durable };

    if (st == NULL || fn == NULL)
        return GG_EINVAL;
    return gg_store_run(st, op != NULL ? op : "side", op_exec, &a);
}

/* gg_store_side_locked - run fn under the store's lock, between commits. */
gg_err gg_store_side_locked(gg_store *st, gg_store_side_fn fn, void *arg)
{
    gg_err err;

    if (st == NULL || fn == NULL)
        return GG_EINVAL;
    pthread_mutex_lock(&st->mu);
    err = fn(st->db, arg);
    pthread_mutex_unlock(&st->mu);
    return err;
}

/* ---- pre-COMMIT hooks ------------------------------------------------------
 * The hooks live in a small table of this file's, keyed by store (struct
 * gg_store is not widened for them): hooks_mu guards it, and a hook is
 * added or removed with the store's lock held too, so that the committer,
 * which runs them under that lock, never sees one come or go half-way. A
 * hook learns whether the transaction it last ran in committed from the
 * store's commit counter: st->commits grows only right after a COMMIT that
 * ran the hooks (commit.c), and one transaction runs at a time. */

#define SIDE_HOOKS_MAX 16

struct side_hook {
    gg_store *st;          /* NULL: a free slot */
    gg_store_hook_fn fn;
    void *arg;
    int ran;               /* fn has run in a transaction of st */
    int64_t at;            /* st->commits when it last ran */
};

static pthread_mutex_t hooks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct side_hook hooks[SIDE_HOOKS_MAX];
static atomic_int hooks_n;   /* slots in use, for a quick "none" */

/* gg_store_side_hook - add fn(db, arg, committed) to st's pre-COMMIT hooks. */
gg_err gg_store_side_hook(gg_store *st, gg_store_hook_fn fn, void *arg)
{
    gg_err err = GG_EFULL;

    if (st == NULL || fn == NULL)
        return GG_EINVAL;
    pthread_mutex_lock(&st->mu);
    pthread_mutex_lock(&hooks_mu);
    for (size_t i = 0; i < SIDE_HOOKS_MAX; i++) {
        if (hooks[i].st == NULL) {
            hooks[i] = (struct side_hook){ st, fn, arg, 0, 0 };
            atomic_fetch_add(&hooks_n, 1);
            err = GG_OK;
            break;
        }
    }
    pthread_mutex_unlock(&hooks_mu);
    pthread_mutex_unlock(&st->mu);
    return err;
}

/* gg_store_side_unhook - remove st's hooks registered with fn and arg. */
gg_err gg_store_side_unhook(gg_store *st, gg_store_hook_fn fn, void *arg)
{
    gg_err err = GG_ENOTFOUND;

    if (st == NULL || fn == NULL)
        return GG_EINVAL;
    pthread_mutex_lock(&st->mu);
    pthread_mutex_lock(&hooks_mu);
    for (size_t i = 0; i < SIDE_HOOKS_MAX; i++) {
        if (hooks[i].st == st && hooks[i].fn == fn && hooks[i].arg == arg) {
            memset(&hooks[i], 0, sizeof hooks[i]);
            atomic_fetch_sub(&hooks_n, 1);
            err = GG_OK;
        }
    }
    pthread_mutex_unlock(&hooks_mu);
    pthread_mutex_unlock(&st->mu);
    return err;
}

/* gg_store_side_drop - forget every hook of st (its close): a store
 * allocated later at the same address must not inherit them. */
void gg_store_side_drop(gg_store *st)
{
    pthread_mutex_lock(&hooks_mu);
    for (size_t i = 0; i < SIDE_HOOKS_MAX; i++) {
        if (hooks[i].st == st) {
            memset(&hooks[i], 0, sizeof hooks[i]);
            atomic_fetch_sub(&hooks_n, 1);
        }
    }
    pthread_mutex_unlock(&hooks_mu);
}

/* gg_store_side_before_commit - run st's hooks in the open transaction,
 * just before its COMMIT (commit.c); the first error, which fails the
 * COMMIT. Under mu. */
gg_err gg_store_side_before_commit(gg_store *st)
{
    struct side_hook run[SIDE_HOOKS_MAX];
    int committed[SIDE_HOOKS_MAX];
    size_t n = 0;
    gg_err err = GG_OK;

    if (atomic_load(&hooks_n) == 0)
        return GG_OK;
    pthread_mutex_lock(&hooks_mu);
    for (size_t i = 0; i < SIDE_HOOKS_MAX; i++) {
        if (hooks[i].st != st)
            continue;
        committed[n] = hooks[i].ran && st->commits > hooks[i].at;
        hooks[i].ran = 1;
        hooks[i].at = st->commits;
        run[n++] = hooks[i];
    }
    pthread_mutex_unlock(&hooks_mu);
    /* Unhooking takes mu, which we hold: run[] stays registered. */
    for (size_t i = 0; i < n && err == GG_OK; i++)
        err = run[i].fn(st->db, run[i].arg, committed[i]);
    return err;
}

/* ---- reader connections ---------------------------------------------------- */

/* gg_store_side_reader - a read-only connection of the caller's own. */
gg_err gg_store_side_reader(gg_store *st, struct sqlite3 **out)
{
    sqlite3 *db = NULL;
    int rc;

    if (st == NULL || out == NULL)
        return GG_EINVAL;
    *out = NULL;
    rc = sqlite3_open_v2(st->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                         gg_store_vfs_name());
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        rc = sqlite3_exec(db, "PRAGMA query_only=1", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        gg_error("store", "msg=\"cannot open a reader connection\" path=%s err=\"%s\"",
                 st->path, db != NULL ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return (rc & 0xff) == SQLITE_NOMEM ? GG_ENOMEM : GG_EIO;
    }
    *out = db;
    return GG_OK;
}
