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
 * between transactions. The store's own tables are never touched here.
 */
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
