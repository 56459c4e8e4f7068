/* tools.c - the offline subcommands: pki init, seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/err.h"
#include "marketing/seed.h"
#include "pki/pki.h"

int gg_cmd_pki(int argc, char **argv)
{
    gg_pki_opts opts = { "intl", "portal", "utility", 825 };
    const char *dir = NULL;
    if (argc < 2 || strcmp(argv[0], "init") != 0) {
        fprintf(stderr, "usage: gridgate pki init DIR [--suite intl|gm]\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--suite") == 0 && i + 1 < argc)
            opts.suite = argv[++i];
        else if (!dir && argv[i][0] != '-')
            dir = argv[i];
        else {
            fprintf(stderr, "gridgate pki init: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "gridgate pki init: missing DIR\n");
        return 2;
    }
    gg_err e = gg_pki_init(dir, &opts);
    if (e != GG_OK) {
        fprintf(stderr, "gridgate pki init: %s: %s\n", dir, gg_strerror(e));
        return 1;
    }
    printf("pki written to %s (suite %s)\n", dir, opts.suite);
    return 0;
}

/* seed_indexes - `seed --db FILE --indexes-only` or `seed --pg CONNINFO
 * --indexes-only`: the indexes a fresh seed has, added to an existing
 * database (bench/e2e.sh runs it on its cached file). */
static int seed_indexes(const char *db, const char *pg)
{
    int64_t t0 = gg_mono_us();
    int created = 0;
    gg_err e = pg ? gg_seed_pg_indexes(pg, &created) : gg_seed_indexes(db, &created);

    if (e != GG_OK) {
        fprintf(stderr, "gridgate seed --indexes-only: %s: %s\n", pg ? "PostgreSQL" : db,
                gg_strerror(e));
        return 1;
    }
    printf("indexes of %s: %d built in %.1f s\n", pg ? "PostgreSQL" : db, created,
           (double)(gg_mono_us() - t0) / 1e6);
    return 0;
}

int gg_cmd_seed(int argc, char **argv)
{
    gg_seed_opts opts = { 0, 0, 1, NULL };
    const char *db = NULL, *pg = NULL;
    char tmp[64] = "";
    int indexes_only = 0;
    long long v;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--indexes-only") == 0) {
            indexes_only = 1;
            continue;
        }
        if (!val) {
            fprintf(stderr, "gridgate seed: '%s' needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--db") == 0)
            db = val;
        else if (strcmp(a, "--pg") == 0)
            pg = val;
        else if (strcmp(a, "--accounts") == 0 && gg_cli_parse_int(val, 1, 10000000, &v) == 0)
            opts.accounts = (int)v;
        else if (strcmp(a, "--months") == 0 && gg_cli_parse_int(val, 1, 120, &v) == 0)
            opts.months = (int)v;
        else if (strcmp(a, "--seed") == 0 && gg_cli_parse_int(val, 0, INT64_MAX, &v) == 0)
            opts.seed = (uint64_t)v;
        else if (strcmp(a, "--end") == 0)
            opts.end_period = val;
        else {
            fprintf(stderr, "gridgate seed: bad option or value '%s %s' (accounts 1..10000000, "
                            "months 1..120, seed >= 0)\n", a, val);
            return 2;
        }
    }
    if (indexes_only) {
        if ((db == NULL) == (pg == NULL) || opts.accounts || opts.months) {
            fprintf(stderr, "usage: gridgate seed (--db EXISTING_FILE | --pg CONNINFO) "
                            "--indexes-only\n");
            return 2;
        }
        if (db && access(db, F_OK) != 0) {
            fprintf(stderr, "gridgate seed --indexes-only: %s: no such file\n", db);
            return 1;
        }
        return seed_indexes(db, pg);
    }
    if (pg && db && access(db, F_OK) == 0 && !opts.accounts && !opts.months) {
        /* copy an existing SQLite database into PostgreSQL */
    } else if ((!db && !pg) || !opts.accounts || !opts.months) {
        fprintf(stderr, "usage: gridgate seed --db FILE --accounts N --months M [--seed S] [--end YYYY-MM]\n"
                        "       gridgate seed --pg CONNINFO --accounts N --months M [--db FILE] [...]\n"
                        "       gridgate seed --pg CONNINFO --db EXISTING_FILE\n"
                        "       gridgate seed (--db EXISTING_FILE | --pg CONNINFO) --indexes-only\n");
        return 2;
    }
    int64_t t0 = gg_mono_us();
    gg_err e = GG_OK;
    if (!db) {
        int fd;
        snprintf(tmp, sizeof tmp, "/tmp/gridgate-seed-XXXXXX");
        fd = mkstemp(tmp);
        if (fd < 0) {
            fprintf(stderr, "gridgate seed: cannot create a temporary file\n");
            return 1;
        }
        close(fd);
        unlink(tmp);
        db = tmp;
    }
    if (opts.accounts) {
        e = gg_seed_sqlite(db, &opts);
        if (e != GG_OK) {
            fprintf(stderr, "gridgate seed: %s: %s\n", db, gg_strerror(e));
            return 1;
        }
    }
    if (pg) {
        e = gg_seed_pg(db, pg);
        if (tmp[0]) {
            char side[80];
            unlink(tmp);
            snprintf(side, sizeof side, "%s-wal", tmp);
            unlink(side);
            snprintf(side, sizeof side, "%s-shm", tmp);
            unlink(side);
        }
        if (e != GG_OK) {
            fprintf(stderr, "gridgate seed: PostgreSQL: %s\n", gg_strerror(e));
            return 1;
        }
        printf("seeded PostgreSQL from %s in %.1f s\n", tmp[0] ? "a fresh database" : db,
               (double)(gg_mono_us() - t0) / 1e6);
        return 0;
    }
    printf("seeded %s: %d accounts x %d months in %.1f s\n", db, opts.accounts, opts.months,
           (double)(gg_mono_us() - t0) / 1e6);
    return 0;
}
