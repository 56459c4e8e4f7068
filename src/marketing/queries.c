/* queries.c - named SQL statements from a queries file (queries.h). */
#include "marketing/queries.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gg_mkt_queries {
    const gg_mkt_qdef *defs;
    size_t n;
    char **sql;          /* NULL: the default */
};

/* gg_mkt_params_ok - which $k appear outside '...', "..." and -- comments. */
int gg_mkt_params_ok(const char *sql, int n)
{
    unsigned char seen[100] = { 0 };
    const char *p = sql;

    if (n < 0 || n >= 100)
        return 0;
    while (*p) {
        if (*p == '\'' || *p == '"') {
            char q = *p++;
            while (*p && *p != q)
                p++;
            if (*p)
                p++;
        } else if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
            long k = strtol(p + 1, (char **)&p, 10);
            if (k < 1 || k > n)
                return 0;
            seen[k] = 1;
        } else {
            p++;
        }
    }
    for (int k = 1; k <= n; k++)
        if (!seen[k])
            return 0;
    return 1;
}

/* find_def - index of name in defs, or -1. */
static long find_def(const gg_mkt_qdef *defs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* finish - trim the statement collected for index cur and check it. */
static gg_err finish(gg_mkt_queries *q, long cur, char *buf, size_t len, const char *name,
                     int line, char *why, size_t whysz)
{
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\t' ||
                       buf[len - 1] == '\r' || buf[len - 1] == ';'))
        len--;
    buf[len] = '\0';
    if (len == 0) {
        snprintf(why, whysz, "%s:%d: statement [%s] is empty", name, line, q->defs[cur].name);
        return GG_ECONFIG;
    }
    if (!gg_mkt_params_ok(buf, q->defs[cur].nparams)) {
        snprintf(why, whysz, "%s:%d: statement [%s] must use exactly the parameters $1..$%d",
                 name, line, q->defs[cur].name, q->defs[cur].nparams);
        return GG_ECONFIG;
    }
    free(q->sql[cur]);
    q->sql[cur] = strdup(buf);
    return q->sql[cur] ? GG_OK : GG_ENOMEM;
}

gg_err gg_mkt_queries_parse(const char *text, const char *name, const gg_mkt_qdef *defs,
                            size_t n, gg_mkt_queries **out, char *why, size_t whysz)
{
    gg_mkt_queries *q = calloc(1, sizeof *q);
    char *buf = malloc(GG_MKT_SQL_MAX + 2);
    size_t len = 0;
    long cur = -1;
    int line = 0, start = 0;
    gg_err e = GG_OK;
    const char *p = text;

    *out = NULL;
    if (!q || !buf || !(q->sql = calloc(n, sizeof *q->sql))) {
        e = GG_ENOMEM;
        goto out;
    }
    q->defs = defs;
    q->n = n;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        const char *s = p;
        size_t sl = ll;

        line++;
        p = nl ? nl + 1 : NULL;
        while (sl > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            sl--;
        }
        while (sl > 0 && (s[sl - 1] == ' ' || s[sl - 1] == '\t' || s[sl - 1] == '\r'))
            sl--;
        if (sl > 0 && s[0] == '#')
            continue;
        if (sl > 0 && s[0] == '[') {
            char nm[64];
            if (sl < 3 || s[sl - 1] != ']' || sl - 2 >= sizeof nm) {
                snprintf(why, whysz, "%s:%d: malformed section header", name, line);
                e = GG_ECONFIG;
                goto out;
            }
            if (cur >= 0)
                e = finish(q, cur, buf, len, name, start, why, whysz);
            if (e != GG_OK)
                goto out;
            memcpy(nm, s + 1, sl - 2);
            nm[sl - 2] = '\0';
            cur = find_def(defs, n, nm);
            if (cur < 0) {
                snprintf(why, whysz, "%s:%d: unknown statement [%.40s]", name, line, nm);
                e = GG_ECONFIG;
                goto out;
            }
            if (q->sql[cur]) {
                snprintf(why, whysz, "%s:%d: statement [%s] given twice", name, line, nm);
                e = GG_ECONFIG;
                goto out;
            }
            len = 0;
            start = line;
            continue;
        }
        if (cur < 0) {
            if (sl == 0)
                continue;
            snprintf(why, whysz, "%s:%d: SQL before the first [name]", name, line);
            e = GG_ECONFIG;
            goto out;
        }
        if (len + ll + 1 > GG_MKT_SQL_MAX) {
            snprintf(why, whysz, "%s:%d: statement [%s] is over %d bytes", name, line,
                     defs[cur].name, GG_MKT_SQL_MAX);
            e = GG_ECONFIG;
            goto out;
        }
        memcpy(buf + len, s, sl);
        len += sl;
        buf[len++] = '\n';
    }
    if (cur >= 0)
        e = finish(q, cur, buf, len, name, start, why, whysz);
out:
    free(buf);
    if (e != GG_OK) {
        if (e == GG_ENOMEM)
            snprintf(why, whysz, "out of memory");
        gg_mkt_queries_free(q);
        return e;
    }
    *out = q;
    return GG_OK;
}

gg_err gg_mkt_queries_load(const char *path, const gg_mkt_qdef *defs, size_t n,
                           gg_mkt_queries **out, char *why, size_t whysz)
{
    FILE *f;
    char *text;
    size_t len;
    gg_err e;

    if (!path)
        return gg_mkt_queries_parse("", "(defaults)", defs, n, out, why, whysz);
    f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whysz, "%s: cannot open", path);
        return GG_EIO;
    }
    text = malloc(GG_MKT_QFILE_MAX + 1);
    if (!text) {
        fclose(f);
        return GG_ENOMEM;
    }
    len = fread(text, 1, GG_MKT_QFILE_MAX + 1, f);
    fclose(f);
    if (len > GG_MKT_QFILE_MAX) {
        snprintf(why, whysz, "%s: larger than %d bytes", path, GG_MKT_QFILE_MAX);
        free(text);
        return GG_ECONFIG;
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        snprintf(why, whysz, "%s: contains a NUL byte", path);
        free(text);
        return GG_ECONFIG;
    }
    e = gg_mkt_queries_parse(text, path, defs, n, out, why, whysz);
    free(text);
    return e;
}

const char *gg_mkt_queries_sql(const gg_mkt_queries *q, size_t i)
{
    if (i >= q->n)
        return NULL;
    return q->sql[i] ? q->sql[i] : q->defs[i].sql;
}

void gg_mkt_queries_free(gg_mkt_queries *q)
{
    if (!q)
        return;
    for (size_t i = 0; q->sql && i < q->n; i++)
        free(q->sql[i]);
    free(q->sql);
    free(q);
}
