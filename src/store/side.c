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
 * The hooks are kept in the store (st->hooks), under its lock: the
 * committer runs them holding it, so none comes or goes half-way through
 * a transaction. A hook learns whether the transaction it last ran in
 * committed from the store's commit counter: st->commits grows only right
 * after a COMMIT that ran the hooks (commit.c), and one transaction runs
 * at a time. They go with the store at its close. */

/* gg_store_side_hook - add fn(db, arg, committed) to st's pre-COMMIT hooks. */
gg_err gg_store_side_hook(gg_store *st, gg_store_hook_fn fn, void *arg)
{
    gg_err err = GG_EFULL;

    if (st == NULL || fn == NULL)
        return GG_EINVAL;
    pthread_mutex_lock(&st->mu);
    if (st->nhooks < GG_STORE_HOOKS_MAX) {
        st->hooks[st->nhooks++] = (gg_side_hook){ fn, arg, 0, 0 };
        err = GG_OK;
    }
    pthread_mutex_unlock(&st->mu);
    return err;
}

/* gg_store_side_unhook - remove st's hooks registered with fn and arg. */
gg_err gg_store_side_unhook(gg_store *st, gg_store_hook_fn fn, void *arg)
{
    gg_err err = GG_ENOTFOUND;
    size_t k = 0;

    if (st == NULL || fn == NULL)
        return GG_EINVAL;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->nhooks; i++) {
        if (st->hooks[i].fn == fn && st->hooks[i].arg == arg)
            err = GG_OK;
        else
            st->hooks[k++] = st->hooks[i];
    }
    st->nhooks = k;
    pthread_mutex_unlock(&st->mu);
    return err;
}

/* gg_store_side_before_commit - run st's hooks in the open transaction,
 * just before its COMMIT (commit.c); the first error, which fails the
 * COMMIT. Under mu. */
gg_err gg_store_side_before_commit(gg_store *st)
{
    gg_err err = GG_OK;

    for (size_t i = 0; i < st->nhooks && err == GG_OK; i++) {
        gg_side_hook *h = &st->hooks[i];
        int committed = h->ran && st->commits > h->at;

        h->ran = 1;
        h->at = st->commits;
        err = h->fn(st->db, h->arg, committed);
    }
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
