/* queries.h - named SQL statements read from a queries file.
 *
 * A queries file lets a utility run gridgate against its own schema: each
 * statement the adapter needs is a named section whose SQL the utility may
 * rewrite, as long as it takes the same numbered parameters ($1..$n, always
 * bound, never interpolated) and returns the same columns in the same order
 * (docs/marketing-queries.md). Format: "[name]" on a line of its own starts
 * a statement; the lines up to the next "[" line are its SQL; lines starting
 * with '#' are comments. A name not in the file keeps its built-in default;
 * an unknown name, a statement over GG_MKT_SQL_MAX bytes, or one using other
 * parameters than $1..$n (each at least once) is an error naming the line.
 */
#ifndef GG_MARKETING_QUERIES_H
#define GG_MARKETING_QUERIES_H

#include <stddef.h>

#include "core/err.h"

#define GG_MKT_SQL_MAX 8192        /* bytes of one statement */
#define GG_MKT_QFILE_MAX (1 << 20) /* bytes of a queries file */

/* One statement the adapter needs: its name, parameter count and default. */
typedef struct gg_mkt_qdef {
    const char *name;
    int nparams;
    const char *sql;
} gg_mkt_qdef;

typedef struct gg_mkt_queries gg_mkt_queries;

/* gg_mkt_queries_load - the n definitions of defs, overridden by the file at
 * path (NULL: defaults only). defs must outlive the result. On failure
 * writes one line to why and returns GG_ECONFIG (bad file), GG_EIO (cannot
 * read) or GG_ENOMEM. */
gg_err gg_mkt_queries_load(const char *path, const gg_mkt_qdef *defs, size_t n,
                           gg_mkt_queries **out, char *why, size_t whysz);

/* gg_mkt_queries_parse - as load, from text (name is used in messages). */
gg_err gg_mkt_queries_parse(const char *text, const char *name, const gg_mkt_qdef *defs,
                            size_t n, gg_mkt_queries **out, char *why, size_t whysz);

/* gg_mkt_queries_sql - the SQL of statement i (index into defs). */
const char *gg_mkt_queries_sql(const gg_mkt_queries *q, size_t i);

void gg_mkt_queries_free(gg_mkt_queries *q);

/* gg_mkt_params_ok - sql uses exactly $1..$n outside quotes and comments. */
int gg_mkt_params_ok(const char *sql, int n);

#endif
