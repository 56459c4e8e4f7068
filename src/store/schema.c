/* schema.c - the on-disk format of the store, its cached statements and
 * the values a transaction keeps in memory until its COMMIT.
 *
 * Format version 3 (meta.schema_version = '3'):
 *   meta           schema_version, and last_id: the highest message id ever
 *                  given, written by every commit that gives ids, so that
 *                  an id is never reused, even after the newest message is
 *                  deleted (the channel uses ids as sequence numbers).
 *   messages       one row per live message, without its bytes; its id is
 *                  given by the store (gg_kept_next_id: above last_id and
 *                  every row), prio (0..9, higher first) and flags (GG_MSG_*).
 *   bodies         the bytes of each message, apart, so leasing and backing
 *                  out rewrite a small row and never the blob (which would
 *                  need fresh pages, and fail on a full disk).
 *   queue_stats    depth and bytes per queue, so limit checks cost one
 *                  lookup, not a scan. Kept by the store in C: each
 *                  transaction adds up its changes per queue and writes
 *                  them once, before its COMMIT (gg_kept_flush).
 *   channel_marks  highest sequence number committed per inbound channel.
 *   dead_letters   messages taken out of service, with reason and time.
 * No triggers and no AUTOINCREMENT: a statement with a trigger needs a
 * statement journal (a copy of every page it changes) and AUTOINCREMENT
 * writes sqlite_sequence on every insert; both cost more than the message.
 * Version 1 lacked prio and flags; version 2 kept queue_stats by triggers
 * and ids by AUTOINCREMENT. Both are upgraded in place at open (1 to 2 to
 * 3). Any change to these tables raises GG_STORE_SCHEMA_VERSION and adds an
 * upgrade step here (see docs/store.md); a store of another version is
 * refused rather than guessed at. A new store is created with
 * auto_vacuum=INCREMENTAL so that freed pages can go back to the file
 * system (commit.c); an upgraded version 1 store keeps its pages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "store/store_int.h"

/* The messages table and its indexes of version 3 (ids given by the store). */
#define MESSAGES_V3(name)                                                                  \
    "CREATE TABLE " name "("                                                               \
    " id INTEGER PRIMARY KEY, queue TEXT NOT NULL, dest TEXT NOT NULL,"                    \
    " put_ms INTEGER NOT NULL, expiry_ms INTEGER NOT NULL,"                                \
    " lease_until_ms INTEGER NOT NULL, backouts INTEGER NOT NULL, len INTEGER NOT NULL,"   \
    " prio INTEGER NOT NULL DEFAULT 0, flags INTEGER NOT NULL DEFAULT 0);"
#define MESSAGES_V3_INDEXES                                                                \
    "CREATE INDEX messages_queue_id ON messages(queue, id);"                               \
    "CREATE INDEX messages_ready ON messages(queue, lease_until_ms, prio DESC, id);"

static const char schema_v3[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    MESSAGES_V3("messages")
    "CREATE TABLE bodies(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    MESSAGES_V3_INDEXES
    "CREATE TABLE queue_stats(queue TEXT PRIMARY KEY, depth INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE channel_marks(channel TEXT PRIMARY KEY, mark INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE dead_letters("
    " id INTEGER PRIMARY KEY, queue TEXT NOT NULL, dest TEXT NOT NULL,"
    " reason TEXT NOT NULL, dead_ms INTEGER NOT NULL, put_ms INTEGER NOT NULL,"
    " expiry_ms INTEGER NOT NULL, backouts INTEGER NOT NULL,"
    " len INTEGER NOT NULL, data BLOB NOT NULL,"
    " prio INTEGER NOT NULL DEFAULT 0, flags INTEGER NOT NULL DEFAULT 0);";

/* upgrade_v1 - version 1 to 2: priorities and flags. */
static const char upgrade_v1[] =
    "ALTER TABLE messages ADD COLUMN prio INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE dead_letters ADD COLUMN prio INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE dead_letters ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX messages_ready ON messages(queue, lease_until_ms, prio DESC, id);"
    "UPDATE meta SET value = '2' WHERE key = 'schema_version';";

/* upgrade_v2 - version 2 to 3: queue_stats kept by the store instead of
 * triggers (which also deleted the body), ids given by the store instead
 * of AUTOINCREMENT (the table is rebuilt without it; the highest id
 * sqlite_sequence or any row holds becomes meta last_id). */
static const char upgrade_v2[] =
    "DROP TRIGGER IF EXISTS messages_ins;"
    "DROP TRIGGER IF EXISTS messages_del;"
    "INSERT INTO meta(key, value) SELECT 'last_id', max("
    " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),"
    " coalesce((SELECT max(id) FROM messages), 0),"
    " coalesce((SELECT max(id) FROM dead_letters), 0));"
    MESSAGES_V3("messages_v3")
    "INSERT INTO messages_v3(id, queue, dest, put_ms, expiry_ms, lease_until_ms, backouts,"
    " len, prio, flags) SELECT id, queue, dest, put_ms, expiry_ms, lease_until_ms, backouts,"
    " len, prio, flags FROM messages;"
    "DROP TABLE messages;"
    "ALTER TABLE messages_v3 RENAME TO messages;"
    MESSAGES_V3_INDEXES
    "UPDATE meta SET value = '3' WHERE key = 'schema_version';";

/* The upgrade steps, in order: a store at version from is brought to to. */
static const struct {
    const char *from, *to, *sql;
} upgrades[] = {
    { "1", "2", upgrade_v1 },
    { "2", "3", upgrade_v2 },
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT op",
    [S_SP_RELEASE] = "RELEASE op",
    [S_SP_ROLLBACK] = "ROLLBACK TO op",
    [S_INSERT] = "INSERT INTO messages(id, queue, dest, put_ms, expiry_ms, lease_until_ms,"
                 " backouts, len, prio, flags) VALUES(?8, ?1, ?2, ?3, ?4, 0, 0, ?5, ?6, ?7)",
    [S_INSERT_BODY] = "INSERT INTO bodies(id, data) VALUES(?1, ?2)",
    [S_QSTATS] = "SELECT depth, bytes FROM queue_stats WHERE queue = ?1",
    [S_QSTATS_ADD] = "INSERT INTO queue_stats(queue, depth, bytes) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(queue) DO UPDATE SET depth = depth + excluded.depth,"
                     " bytes = bytes + excluded.bytes",
    [S_LAST_ID] = "SELECT max(coalesce((SELECT CAST(value AS INTEGER) FROM meta"
                  " WHERE key = 'last_id'), 0), coalesce((SELECT max(id) FROM messages), 0),"
                  " coalesce((SELECT max(id) FROM dead_letters), 0))",
    [S_LAST_ID_SET] = "INSERT INTO meta(key, value) VALUES('last_id', ?1)"
                      " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [S_READY] = "SELECT m.id, m.dest, m.put_ms, m.expiry_ms, m.lease_until_ms, m.backouts,"
                " m.prio, m.flags, b.data FROM messages m INDEXED BY messages_ready"
                " JOIN bodies b ON b.id = m.id WHERE m.queue = ?1 AND m.lease_until_ms = 0"
                " ORDER BY m.prio DESC, m.id LIMIT ?2",
    [S_RUNOUT] = "SELECT id, backouts FROM messages INDEXED BY messages_ready"
                 " WHERE queue = ?1 AND lease_until_ms > 0 AND lease_until_ms <= ?2 LIMIT ?3",
    [S_LEASE] = "UPDATE messages SET lease_until_ms = ?2, backouts = ?3 WHERE id = ?1",
    [S_FIND] = "SELECT queue, backouts, lease_until_ms, len FROM messages WHERE id = ?1",
    [S_RELEASE] = "UPDATE messages SET lease_until_ms = 0, backouts = ?2 WHERE id = ?1",
    [S_DELETE] = "DELETE FROM messages WHERE id = ?1",
    [S_DELETE_BODY] = "DELETE FROM bodies WHERE id = ?1",
    [S_TO_DEAD] = "INSERT INTO dead_letters(id, queue, dest, reason, dead_ms, put_ms,"
                  " expiry_ms, backouts, len, data, prio, flags) SELECT m.id, m.queue, m.dest,"
                  " ?2, ?3, m.put_ms, m.expiry_ms, ?4, m.len, b.data, m.prio, m.flags"
                  " FROM messages m"
                  " JOIN bodies b ON b.id = m.id WHERE m.id = ?1",
    [S_BROWSE] = "SELECT m.id, m.dest, m.put_ms, m.expiry_ms, m.backouts, b.data, m.prio,"
                 " m.flags FROM messages m INDEXED BY messages_queue_id"
                 " JOIN bodies b ON b.id = m.id"
                 " WHERE m.queue = ?1 AND m.id > ?2 ORDER BY m.id LIMIT ?3",
    [S_DEL_UPTO] = "DELETE FROM messages WHERE queue = ?1 AND id <= ?2",
    [S_UPTO_STATS] = "SELECT count(*), sum(len) FROM messages WHERE queue = ?1 AND id <= ?2",
    [S_UPTO_BODIES] = "DELETE FROM bodies WHERE id IN (SELECT id FROM messages"
                      " INDEXED BY messages_queue_id WHERE queue = ?1 AND id <= ?2)",
    [S_MARK_GET] = "SELECT mark FROM channel_marks WHERE channel = ?1",
    [S_MARK_SET] = "INSERT INTO channel_marks(channel, mark) VALUES(?1, ?2)"
                   " ON CONFLICT(channel) DO UPDATE SET mark = excluded.mark",
    [S_QUEUES] = "SELECT n.q, coalesce(s.depth, 0), coalesce(s.bytes, 0),"
                 " (SELECT m.put_ms FROM messages m INDEXED BY messages_queue_id"
                 " WHERE m.queue = n.q ORDER BY m.id LIMIT 1),"
                 " (SELECT count(*) FROM dead_letters d WHERE d.queue = n.q)"
                 " FROM (SELECT queue AS q FROM queue_stats UNION SELECT queue FROM dead_letters) n"
                 " LEFT JOIN queue_stats s ON s.queue = n.q ORDER BY n.q LIMIT ?1",
    [S_DEAD_LIST] = "SELECT id, queue, dest, reason, dead_ms, put_ms, expiry_ms, backouts, len,"
                    " prio, flags FROM dead_letters WHERE id > ?1 ORDER BY id LIMIT ?2",
    [S_DEAD_GET] = "SELECT queue, dest, expiry_ms, len, data, prio, flags FROM dead_letters"
                   " WHERE id = ?1",
    [S_DEAD_DEL] = "DELETE FROM dead_letters WHERE id = ?1",
    [S_DEAD_COUNT] = "SELECT count(*) FROM dead_letters",
    [S_DEAD_ONE] = "SELECT id, queue, dest, reason, dead_ms, put_ms, expiry_ms, backouts, len,"
                   " prio, flags, data FROM dead_letters WHERE id = ?1",
    [S_DEAD_PURGE] = "DELETE FROM dead_letters",
    [S_FREELIST] = "SELECT f.freelist_count, p.page_count FROM pragma_freelist_count f,"
                   " pragma_page_count p",
};

gg_err gg_store_sql_err(gg_store *st, const char *op, int rc)
{
    gg_err err;

    switch (rc & 0xff) {
    case SQLITE_FULL:
        err = GG_ENOSPC;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        err = GG_EBUSY;
        break;
    case SQLITE_NOMEM:
        err = GG_ENOMEM;
        break;
    case SQLITE_TOOBIG:
        err = GG_ETOOBIG;
        break;
    default:
        err = GG_EIO;
        break;
    }
    gg_error("store", "msg=\"sqlite failed\" op=%s rc=%d err=%s detail=\"%s\"", op, rc,
             gg_errname(err), st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
    return err;
}

/* pragma_text - run a PRAGMA and copy its first column of the first row. */
static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t outsz)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

    out[0] = '\0';
    if (rc != SQLITE_OK)
        goto out;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        snprintf(out, outsz, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
out:
    sqlite3_finalize(s);
    return rc;
}

/* check_or_create - inside one transaction: create a fresh store, or check
 * that an existing one is ours and of our version. */
static gg_err check_or_create(gg_store *st)
{
    char buf[64], tables[32];
    char version[32];
    gg_err err = GG_OK;
    int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, "open.begin", rc);
    rc = pragma_text(st->db, "SELECT count(*) FROM sqlite_master WHERE name = 'meta'", buf,
                     sizeof buf);
    if (rc == SQLITE_OK)
        rc = pragma_text(st->db, "SELECT count(*) FROM sqlite_master", tables, sizeof tables);
    if (rc != SQLITE_OK) {
        err = gg_store_sql_err(st, "open.inspect", rc);
        goto out;
    }
    if (strcmp(buf, "0") == 0 && strcmp(tables, "0") != 0) {
        gg_error("store", "msg=\"not a gridgate store\" path=%s", st->path);
        err = GG_EIO;
        goto out;
    }
    if (strcmp(buf, "0") == 0) {
        char sql[128];
        rc = sqlite3_exec(st->db, schema_v3, NULL, NULL, NULL);
        snprintf(sql, sizeof sql, "INSERT INTO meta(key, value) VALUES('schema_version', '%d')",
                 GG_STORE_SCHEMA_VERSION);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            err = gg_store_sql_err(st, "open.create", rc);
            goto out;
        }
        gg_info("store", "msg=\"created\" path=%s schema_version=%d", st->path,
                GG_STORE_SCHEMA_VERSION);
    }
    rc = pragma_text(st->db, "SELECT value FROM meta WHERE key = 'schema_version'", version,
                     sizeof version);
    if (rc != SQLITE_OK) {
        err = gg_store_sql_err(st, "open.version", rc);
        goto out;
    }
    for (size_t i = 0; i < sizeof upgrades / sizeof upgrades[0]; i++) {
        if (strcmp(version, upgrades[i].from) != 0)
            continue;
        rc = sqlite3_exec(st->db, upgrades[i].sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            err = gg_store_sql_err(st, "open.upgrade", rc);
            goto out;
        }
        gg_info("store", "msg=\"upgraded\" path=%s from=%s to=%s", st->path, upgrades[i].from,
                upgrades[i].to);
        snprintf(version, sizeof version, "%s", upgrades[i].to);
    }
    snprintf(buf, sizeof buf, "%d", GG_STORE_SCHEMA_VERSION);
    if (strcmp(version, buf) != 0) {
        gg_error("store", "msg=\"unsupported schema version\" path=%s found=\"%s\" want=%d",
                 st->path, version, GG_STORE_SCHEMA_VERSION);
        err = GG_EIO;
        goto out;
    }
    rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        err = gg_store_sql_err(st, "open.commit", rc);
out:
    if (err != GG_OK && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

gg_err gg_store_schema_open(gg_store *st)
{
    char mode[16];
    int rc;
    gg_err err;

    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, 5000);
    /* Only takes effect on a database with no tables yet, i.e. a new store. */
    rc = sqlite3_exec(st->db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, "open.auto_vacuum", rc);
    rc = pragma_text(st->db, "PRAGMA journal_mode=WAL", mode, sizeof mode);
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, "open.wal", rc);
    if (strcmp(mode, "wal") != 0) {
        gg_error("store", "msg=\"WAL mode refused\" path=%s mode=%s", st->path, mode);
        return GG_EIO;
    }
    /* Statement and savepoint journals in memory: on disk (the default)
     * they cost a temporary file write per page an op touches twice in a
     * transaction. A bigger page cache keeps a large batch from spilling
     * to the WAL before its COMMIT. Both bound by the batch size. */
    rc = sqlite3_exec(st->db, "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384", NULL, NULL,
                      NULL);
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, "open.temp_store", rc);
    rc = sqlite3_exec(st->db,
                      st->opts.durability == GG_DURABLE_NORMAL ? "PRAGMA synchronous=NORMAL"
                                                               : "PRAGMA synchronous=FULL",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return gg_store_sql_err(st, "open.synchronous", rc);
    {
        char sql[64], lim[32];
        snprintf(sql, sizeof sql, "PRAGMA journal_size_limit=%d", GG_STORE_WAL_LIMIT);
        rc = pragma_text(st->db, sql, lim, sizeof lim);
        if (rc == SQLITE_OK) {
            /* Checkpoints are run by the committer after the COMMIT, never
             * inside it (commit.c), so not by sqlite3_wal_autocheckpoint. */
            sqlite3_wal_hook(st->db, gg_store_wal_hook, st);
        }
        if (rc != SQLITE_OK)
            return gg_store_sql_err(st, "open.journal_size_limit", rc);
    }
    if (st->opts.max_db_bytes > 0) {
        char sql[64], psz[32];
        long long pages;
        rc = pragma_text(st->db, "PRAGMA page_size", psz, sizeof psz);
        if (rc != SQLITE_OK)
            return gg_store_sql_err(st, "open.page_size", rc);
        pages = st->opts.max_db_bytes / (atoll(psz) > 0 ? atoll(psz) : 4096);
        snprintf(sql, sizeof sql, "PRAGMA max_page_count=%lld", pages > 1 ? pages : 1);
        rc = pragma_text(st->db, sql, psz, sizeof psz);
        if (rc != SQLITE_OK)
            return gg_store_sql_err(st, "open.max_page_count", rc);
    }
    err = check_or_create(st);
    if (err != GG_OK)
        return err;
    for (int i = 0; i < S_COUNT; i++) {
        rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &st->stmt[i], NULL);
        if (rc != SQLITE_OK)
            return gg_store_sql_err(st, "open.prepare", rc);
    }
    return GG_OK;
}

void gg_store_schema_close(gg_store *st)
{
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(st->stmt[i]);
        st->stmt[i] = NULL;
    }
}

/* gg_sql_prep - a cached statement, reset and with no bindings. */
sqlite3_stmt *gg_sql_prep(gg_store *st, enum gg_stmt id)
{
    sqlite3_stmt *s = st->stmt[id];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

/* gg_sql_done - step a statement that returns no rows, reset it; SQLITE_OK or the error. */
int gg_sql_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* gg_sql_bind_blob - bind len bytes; an empty blob (never NULL) when len is 0. */
int gg_sql_bind_blob(sqlite3_stmt *s, int i, const void *p, size_t len)
{
    if (len == 0)
        return sqlite3_bind_zeroblob(s, i, 0);
    return sqlite3_bind_blob64(s, i, p, (sqlite3_uint64)len, SQLITE_STATIC);
}

/* gg_sql_col_text - copy text column i into out, truncated, "" for NULL. */
void gg_sql_col_text(sqlite3_stmt *s, int i, char *out, size_t outsz)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t n = t ? strnlen((const char *)t, outsz - 1) : 0;
    if (n)
        memcpy(out, t, n);
    out[n] = '\0';
}

/* ---- values the open transaction keeps until its COMMIT ---- */

/* gg_kept_reset - forget the kept values; they are read again when needed. */
void gg_kept_reset(gg_store *st)
{
    st->kept.nq = 0;
    st->kept.id_known = 0;
    st->kept.id_dirty = 0;
}

/* kept_find - the kept entry of queue, or NULL. */
static gg_kept_queue *kept_find(gg_store *st, const char *queue)
{
    for (size_t i = 0; i < st->kept.nq; i++)
        if (strcmp(st->kept.q[i].queue, queue) == 0)
            return &st->kept.q[i];
    return NULL;
}

/* kept_slot - the kept entry of queue, made (writing the others early if
 * every slot is taken); NULL with *err set on a storage error. */
static gg_kept_queue *kept_slot(gg_store *st, const char *queue, gg_err *err)
{
    gg_kept_queue *k = kept_find(st, queue);

    *err = GG_OK;
    if (k)
        return k;
    if (st->kept.nq == GG_STORE_KEPT_QUEUES) {
        *err = gg_kept_flush(st);
        if (*err != GG_OK)
            return NULL;
    }
    k = &st->kept.q[st->kept.nq++];
    memset(k, 0, sizeof *k);
    snprintf(k->queue, sizeof k->queue, "%s", queue);
    return k;
}

gg_err gg_kept_queue_stats(gg_store *st, const char *queue, int64_t *depth, int64_t *bytes)
{
    gg_err err;
    gg_kept_queue *k = kept_slot(st, queue, &err);
    sqlite3_stmt *s;
    int rc;

    if (!k)
        return err;
    if (!k->known) {
        s = gg_sql_prep(st, S_QSTATS);
        sqlite3_bind_text(s, 1, queue, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            k->depth = sqlite3_column_int64(s, 0);
            k->bytes = sqlite3_column_int64(s, 1);
            rc = SQLITE_DONE;
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
            return gg_store_sql_err(st, "queue_stats", rc);
        k->known = 1;
    }
    *depth = k->depth + k->d_depth;
    *bytes = k->bytes + k->d_bytes;
    return GG_OK;
}

gg_err gg_kept_add(gg_store *st, const char *queue, int64_t d_depth, int64_t d_bytes)
{
    gg_err err;
    gg_kept_queue *k = kept_slot(st, queue, &err);

    if (!k)
        return err;
    k->d_depth += d_depth;
    k->d_bytes += d_bytes;
    return GG_OK;
}

gg_err gg_kept_next_id(gg_store *st, int64_t *id)
{
    if (!st->kept.id_known) {
        sqlite3_stmt *s = gg_sql_prep(st, S_LAST_ID);
        int rc = sqlite3_step(s);

        if (rc == SQLITE_ROW)
            st->kept.last_id = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
            return gg_store_sql_err(st, "last_id", rc);
        st->kept.id_known = 1;
    }
    *id = ++st->kept.last_id;
    st->kept.id_dirty = 1;
    return GG_OK;
}

gg_err gg_kept_flush(gg_store *st)
{
    sqlite3_stmt *s;
    int rc;

    for (size_t i = 0; i < st->kept.nq; i++) {
        gg_kept_queue *k = &st->kept.q[i];
        if (k->d_depth == 0 && k->d_bytes == 0)
            continue;
        s = gg_sql_prep(st, S_QSTATS_ADD);
        sqlite3_bind_text(s, 1, k->queue, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, k->d_depth);
        sqlite3_bind_int64(s, 3, k->d_bytes);
        rc = gg_sql_done(s);
        if (rc != SQLITE_OK)
            return gg_store_sql_err(st, "queue_stats", rc);
    }
    st->kept.nq = 0;
    if (st->kept.id_dirty) {
        s = gg_sql_prep(st, S_LAST_ID_SET);
        sqlite3_bind_int64(s, 1, st->kept.last_id);
        rc = gg_sql_done(s);
        if (rc != SQLITE_OK)
            return gg_store_sql_err(st, "last_id", rc);
        st->kept.id_dirty = 0;
    }
    return GG_OK;
}
