/* pg_seed.c - copy a seeded SQLite marketing database into PostgreSQL
 * (gg_seed_pg, seed.h), so both backends hold the same rows.
 *
 * Generic over the tables: each table of the SQLite file becomes a table of
 * the same name and columns (INTEGER -> bigint, REAL -> double precision,
 * anything else -> text) with the same primary key, filled by COPY in text
 * form, then the same indexes (explicit ones by their own SQL, UNIQUE
 * constraints as unique indexes), then ANALYZE; all in one transaction, so
 * a failure leaves nothing behind.
 */
#include "marketing/seed.h"

#include <libpq-fe.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"

#define COPY_CHUNK (1u << 20)
#define DDL_MAX 8192

/* pg_exec - run one statement; GG_EIO (logged) on failure. */
static gg_err pg_exec(PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    gg_err e = GG_OK;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        gg_error("seed", "msg=\"PostgreSQL statement failed\" what=%s err=\"%s\"", what,
                 PQresultErrorMessage(r));
        e = GG_EIO;
    }
    PQclear(r);
    return e;
}

/* pg_type - the PostgreSQL type for an SQLite declared type. */
static const char *pg_type(const char *decl)
{
    if (decl && strcasestr(decl, "INT"))
        return "bigint";
    if (decl && (strcasestr(decl, "REAL") || strcasestr(decl, "FLOA") || strcasestr(decl, "DOUB")))
        return "double precision";
    return "text";
}

/* append - concatenate the strings (NULL-ended) onto buf (size DDL_MAX);
 * -1 if they do not fit. */
static int append(char *buf, ...)
{
    size_t n = strlen(buf);
    const char *s;
    va_list ap;
    int rc = 0;

    va_start(ap, buf);
    while ((s = va_arg(ap, const char *)) != NULL) {
        size_t k = strlen(s);

        if (n + k + 1 > DDL_MAX) {
            rc = -1;
            break;
        }
        memcpy(buf + n, s, k + 1);
        n += k;
    }
    va_end(ap);
    return rc;
}

/* table_ddl - CREATE TABLE for t, and its column list for COPY. */
static gg_err table_ddl(sqlite3 *db, const char *t, char *ddl, char *cols)
{
    char sql[256], pk[DDL_MAX] = "";
    sqlite3_stmt *st = NULL;
    int n = 0, npk = 0, rc;
    gg_err e = GG_OK;

    snprintf(sql, sizeof sql, "SELECT name, type, pk FROM pragma_table_info('%s') ORDER BY cid",
             t);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return GG_EIO;
    snprintf(ddl, DDL_MAX, "CREATE TABLE \"%s\" (", t);
    cols[0] = '\0';
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *type = (const char *)sqlite3_column_text(st, 1);

        if (append(ddl, n ? ", \"" : "\"", name, "\" ", pg_type(type), (char *)NULL) ||
            append(cols, n ? ", \"" : "\"", name, "\"", (char *)NULL)) {
            e = GG_ETOOBIG;
            goto out;
        }
        if (sqlite3_column_int(st, 2) > 0) {
            if (append(pk, npk ? ", \"" : "\"", name, "\"", (char *)NULL)) {
                e = GG_ETOOBIG;
                goto out;
            }
            npk++;
        }
        n++;
    }
    if (rc != SQLITE_DONE || n == 0) {
        e = GG_EIO;
        goto out;
    }
    if ((npk && append(ddl, ", PRIMARY KEY (", pk, ")", (char *)NULL)) ||
        append(ddl, ")", (char *)NULL))
        e = GG_ETOOBIG;
out:
    sqlite3_finalize(st);
    return e;
}

/* copy_field - one value in COPY text form onto b. */
static gg_err copy_field(gg_buf *b, sqlite3_stmt *st, int col)
{
    const unsigned char *v;
    int n;

    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return gg_buf_append(b, "\\N", 2);
    v = sqlite3_column_text(st, col);
    n = sqlite3_column_bytes(st, col);
    if (strcspn((const char *)v, "\\\t\n\r") == (size_t)n)
        return gg_buf_append(b, v, (size_t)n);
    for (int i = 0; i < n; i++) {
        char esc[2] = { '\\', 0 };
        gg_err e;

        switch (v[i]) {
        case '\\': esc[1] = '\\'; break;
        case '\t': esc[1] = 't'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        default: break;
        }
        e = esc[1] ? gg_buf_append(b, esc, 2) : gg_buf_append(b, &v[i], 1);
        if (e != GG_OK)
            return e;
    }
    return GG_OK;
}

/* copy_table - every row of t through COPY. *rows gets the count. */
static gg_err copy_table(sqlite3 *db, PGconn *c, const char *t, const char *cols, long *rows)
{
    char sql[DDL_MAX + 128];
    gg_buf b = GG_BUF_INIT(COPY_CHUNK * 2);
    sqlite3_stmt *st = NULL;
    PGresult *r;
    gg_err e = GG_OK;
    int rc, ncol;

    *rows = 0;
    snprintf(sql, sizeof sql, "SELECT %s FROM \"%s\"", cols, t);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return GG_EIO;
    ncol = sqlite3_column_count(st);
    snprintf(sql, sizeof sql, "COPY \"%s\" (%s) FROM STDIN", t, cols);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        gg_error("seed", "msg=\"COPY refused\" table=%s err=\"%s\"", t, PQresultErrorMessage(r));
        PQclear(r);
        e = GG_EIO;
        goto out;
    }
    PQclear(r);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; e == GG_OK && i < ncol; i++) {
            if (i)
                e = gg_buf_append(&b, "\t", 1);
            if (e == GG_OK)
                e = copy_field(&b, st, i);
        }
        if (e == GG_OK)
            e = gg_buf_append(&b, "\n", 1);
        if (e != GG_OK)
            break;
        (*rows)++;
        if (b.len >= COPY_CHUNK) {
            if (PQputCopyData(c, (const char *)b.data, (int)b.len) != 1) {
                e = GG_EIO;
                break;
            }
            gg_buf_reset(&b);
        }
    }
    if (e == GG_OK && rc != SQLITE_DONE)
        e = GG_EIO;
    if (e == GG_OK && b.len && PQputCopyData(c, (const char *)b.data, (int)b.len) != 1)
        e = GG_EIO;
    if (PQputCopyEnd(c, e == GG_OK ? NULL : "source failed") != 1)
        e = GG_EIO;
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        if (e == GG_OK)
            gg_error("seed", "msg=\"COPY failed\" table=%s err=\"%s\"", t,
                     PQresultErrorMessage(r));
        e = GG_EIO;
    }
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
out:
    gg_buf_free(&b);
    sqlite3_finalize(st);
    return e;
}

/* unique_indexes - UNIQUE constraints of t (autoindexes) as unique indexes. */
static gg_err unique_indexes(sqlite3 *db, PGconn *c, const char *t)
{
    char sql[512], ddl[DDL_MAX];
    sqlite3_stmt *st = NULL, *ci = NULL;
    gg_err e = GG_OK;

    snprintf(sql, sizeof sql,
             "SELECT name FROM pragma_index_list('%s') WHERE origin = 'u'", t);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return GG_EIO;
    while (e == GG_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *ix = (const char *)sqlite3_column_text(st, 0);
        int n = 0;

        snprintf(sql, sizeof sql, "SELECT name FROM pragma_index_info('%s') ORDER BY seqno", ix);
        if (sqlite3_prepare_v2(db, sql, -1, &ci, NULL) != SQLITE_OK) {
            e = GG_EIO;
            break;
        }
        snprintf(ddl, sizeof ddl, "CREATE UNIQUE INDEX \"%s\" ON \"%s\" (", ix, t);
        while (sqlite3_step(ci) == SQLITE_ROW) {
            if (append(ddl, n++ ? ", \"" : "\"", (const char *)sqlite3_column_text(ci, 0),
                       "\"", (char *)NULL)) {
                e = GG_ETOOBIG;
                break;
            }
        }
        sqlite3_finalize(ci);
        ci = NULL;
        if (e == GG_OK && append(ddl, ")", (char *)NULL))
            e = GG_ETOOBIG;
        if (e == GG_OK)
            e = pg_exec(c, ddl, "unique index");
    }
    sqlite3_finalize(st);
    return e;
}

/* exists_pg - whether table t exists in c's search path. */
static int exists_pg(PGconn *c, const char *t)
{
    const char *params[1] = { t };
    PGresult *r = PQexecParams(c, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, params, NULL,
                               NULL, 0);
    int yes = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
              strcmp(PQgetvalue(r, 0, 0), "t") == 0;

    PQclear(r);
    return yes;
}

gg_err gg_seed_pg(const char *sqlite_path, const char *conninfo)
{
    char tables[32][64], ddl[DDL_MAX], cols[DDL_MAX];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    PGconn *c = NULL;
    size_t nt = 0;
    long rows;
    gg_err e = GG_OK;

    if (sqlite3_open_v2(sqlite_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        gg_error("seed", "msg=\"cannot open the SQLite database\" path=%s", sqlite_path);
        e = GG_EIO;
        goto out;
    }
    c = PQconnectdb(conninfo);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        gg_error("seed", "msg=\"cannot connect to PostgreSQL\" err=\"%s\"",
                 c ? PQerrorMessage(c) : "out of memory");
        e = GG_EIO;
        goto out;
    }
    pg_exec(c, "SET client_min_messages = warning", "settings");
    if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name "
                               "NOT LIKE 'sqlite_%' ORDER BY rowid", -1, &st, NULL) != SQLITE_OK) {
        e = GG_EIO;
        goto out;
    }
    while (sqlite3_step(st) == SQLITE_ROW && nt < 32) {
        snprintf(tables[nt], sizeof tables[nt], "%s", (const char *)sqlite3_column_text(st, 0));
        if (exists_pg(c, tables[nt])) {
            gg_error("seed", "msg=\"table exists in PostgreSQL; refusing to overwrite\" table=%s",
                     tables[nt]);
            e = GG_EEXISTS;
            goto out;
        }
        nt++;
    }
    sqlite3_finalize(st);
    st = NULL;
    e = pg_exec(c, "BEGIN", "begin");
    for (size_t i = 0; e == GG_OK && i < nt; i++) {
        e = table_ddl(db, tables[i], ddl, cols);
        if (e == GG_OK)
            e = pg_exec(c, ddl, "create table");
        if (e == GG_OK)
            e = copy_table(db, c, tables[i], cols, &rows);
        if (e == GG_OK)
            e = unique_indexes(db, c, tables[i]);
        if (e == GG_OK)
            gg_info("seed", "msg=\"copied\" table=%s rows=%ld", tables[i], rows);
    }
    if (e == GG_OK &&
        sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS "
                               "NOT NULL", -1, &st, NULL) != SQLITE_OK)
        e = GG_EIO;
    while (e == GG_OK && sqlite3_step(st) == SQLITE_ROW)
        e = pg_exec(c, (const char *)sqlite3_column_text(st, 0), "create index");
    if (e == GG_OK)
        e = pg_exec(c, "COMMIT", "commit");
    else
        pg_exec(c, "ROLLBACK", "rollback");
    for (size_t i = 0; e == GG_OK && i < nt; i++) {
        snprintf(ddl, sizeof ddl, "ANALYZE \"%s\"", tables[i]);
        e = pg_exec(c, ddl, "analyze");
    }
out:
    sqlite3_finalize(st);
    if (c)
        PQfinish(c);
    sqlite3_close(db);
    return e;
}

/* pg_index_count - indexes in c's current schema, or -1. */
static long pg_index_count(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema()");
    long n = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                 ? strtol(PQgetvalue(r, 0, 0), NULL, 10)
                 : -1;

    PQclear(r);
    return n;
}

gg_err gg_seed_pg_indexes(const char *conninfo, int *created)
{
    PGconn *c = PQconnectdb(conninfo);
    long before, after;
    gg_err e;

    if (created)
        *created = 0;
    if (!c || PQstatus(c) != CONNECTION_OK) {
        gg_error("seed", "msg=\"cannot connect to PostgreSQL\" err=\"%s\"",
                 c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return GG_EIO;
    }
    pg_exec(c, "SET client_min_messages = warning", "settings");
    before = pg_index_count(c);
    e = pg_exec(c, gg_seed_index_sql(), "create index");  /* one implicit transaction */
    if (e == GG_OK)
        e = pg_exec(c, "ANALYZE bills", "analyze");
    after = pg_index_count(c);
    if (e == GG_OK && created && before >= 0 && after >= before)
        *created = (int)(after - before);
    PQfinish(c);
    return e;
}
