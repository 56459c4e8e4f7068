/* admin_probe.c - `gridgate admin probe-capacity -c UTILITY.conf`: find the
 * marketing system's concurrency knee, as the original operators did by hand.
 *
 *   gridgate admin probe-capacity -c UTILITY.conf [--seconds S] [--max C]
 *
 * Opens C connections to the marketing database the config names (SQLite
 * or PostgreSQL, through the same adapter the workers use) and, at
 * concurrency 1, 2, 4, ... up to C, runs for S seconds (default 3) as many
 * bill queries as it can (an account lookup plus twelve months of bills,
 * random active accounts, exactly what a worker does for bills.query). Each
 * level prints throughput and latency p50/p99. The knee is the lowest
 * concurrency reaching 90% of the best throughput: beyond it more
 * concurrency only adds queueing inside the database. The last line,
 * `knee=C rps=R p99_ms=L`, is the suggested governor.max_inflight.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "marketing/marketing.h"

#define PROBE_MAX 256
#define PROBE_ACCOUNTS 5000

typedef struct prober {
    pthread_t th;
    gg_mkt *m;
    char (*accts)[33];
    size_t naccts;
    int64_t until_us;
    unsigned long long seed;
    int64_t *lat;
    size_t n, cap;
    long errors;
    char from[8], to[8];
} prober;

/* probe_main - bill queries until the level's time is up. */
static void *probe_main(void *arg)
{
    prober *p = arg;

    while (gg_mono_us() < p->until_us) {
        gg_account a;
        gg_bill *bills = NULL;
        size_t nb = 0;
        int64_t t0 = gg_mono_us();
        const char *no;
        gg_err e;

        p->seed = p->seed * 6364136223846793005ULL + 1442695040888963407ULL;
        no = p->accts[(p->seed >> 33) % p->naccts];
        e = gg_mkt_account(p->m, no, &a);
        if (e == GG_OK)
            e = gg_mkt_bills(p->m, no, p->from, p->to, &bills, &nb);
        free(bills);
        if (e != GG_OK) {
            p->errors++;
            continue;
        }
        if (p->n == p->cap) {
            size_t c = p->cap ? p->cap * 2 : 4096;
            int64_t *v = realloc(p->lat, c * sizeof *v);
            if (!v)
                break;
            p->lat = v;
            p->cap = c;
        }
        p->lat[p->n++] = gg_mono_us() - t0;
    }
    return NULL;
}

static int cmp64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

    return a < b ? -1 : a > b;
}

int gg_cmd_admin_probe(int argc, char **argv)
{
    const char *file = NULL, *pg;
    long long secs = 3, maxc = 32;
    char err[512];
    gg_config *cfg = NULL;
    prober *p = NULL;
    char (*accts)[33] = NULL;
    size_t naccts = 0;
    double best = 0, rps[16] = { 0 }, p50[16], p99[16];
    int levels[16], nlev = 0, rc = 1;
    time_t now = time(NULL);
    struct tm tm;

    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-c") == 0)
            file = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0 &&
                 gg_cli_parse_int(argv[i + 1], 1, 600, &secs) == 0)
            ;
        else if (strcmp(argv[i], "--max") == 0 &&
                 gg_cli_parse_int(argv[i + 1], 1, PROBE_MAX, &maxc) == 0)
            ;
        else
            goto usage;
    }
    if (!file || argc % 2)
        goto usage;
    if (gg_config_load(file, &cfg, err, sizeof err) != GG_OK) {
        fprintf(stderr, "gridgate admin probe-capacity: %s\n", err);
        return 1;
    }
    gg_log_set_level(GG_LOG_WARN);
    p = calloc((size_t)maxc, sizeof *p);
    if (!p)
        goto out;
    pg = gg_config_str(cfg, "utility.marketing_pg");
    for (int i = 0; i < maxc; i++) {
        gg_err e = pg && pg[0]
                       ? gg_mkt_open_pg(pg, gg_config_str(cfg, "utility.marketing_queries"), &p[i].m)
                       : gg_mkt_open(gg_config_str(cfg, "utility.marketing_db"), &p[i].m);
        if (e != GG_OK) {
            fprintf(stderr, "gridgate admin probe-capacity: cannot open connection %d: %s\n", i,
                    gg_strerror(e));
            goto out;
        }
    }
    if (gg_mkt_accounts(p[0].m, PROBE_ACCOUNTS, &accts, &naccts) != GG_OK || naccts == 0) {
        fprintf(stderr, "gridgate admin probe-capacity: no active accounts\n");
        goto out;
    }
    localtime_r(&now, &tm);
    printf("probe-capacity: %s, %zu accounts, %lld s per level; bill queries (account + 12 months)\n",
           gg_mkt_backend(p[0].m), naccts, secs);
    for (int c = 1; c <= maxc && nlev < 16; c = c * 2 > maxc && c < maxc ? (int)maxc : c * 2) {
        int64_t until = gg_mono_us() + secs * 1000000LL;
        int64_t *all = NULL;
        size_t n = 0;
        long errors = 0;

        for (int i = 0; i < c; i++) {
            p[i].accts = accts;
            p[i].naccts = naccts;
            p[i].until_us = until;
            p[i].seed = (unsigned long long)(i + 1) * 0x9e3779b97f4a7c15ULL ^ (unsigned long long)c;
            p[i].n = 0;
            p[i].errors = 0;
            /* the twelve months ending with this one */
            strftime(p[i].to, sizeof p[i].to, "%Y-%m", &tm);
            {
                struct tm f = tm;

                f.tm_mon -= 11;
                f.tm_mday = 1;
                mktime(&f);
                strftime(p[i].from, sizeof p[i].from, "%Y-%m", &f);
            }
            pthread_create(&p[i].th, NULL, probe_main, &p[i]);
        }
        for (int i = 0; i < c; i++) {
            pthread_join(p[i].th, NULL);
            n += p[i].n;
            errors += p[i].errors;
        }
        all = malloc((n ? n : 1) * sizeof *all);
        if (!all)
            goto out;
        n = 0;
        for (int i = 0; i < c; i++) {
            memcpy(all + n, p[i].lat, p[i].n * sizeof *all);
            n += p[i].n;
        }
        qsort(all, n, sizeof *all, cmp64);
        levels[nlev] = c;
        rps[nlev] = (double)n / (double)secs;
        p50[nlev] = n ? (double)all[n / 2] / 1000.0 : 0;
        p99[nlev] = n ? (double)all[(size_t)((double)n * 0.99)] / 1000.0 : 0;
        printf("concurrency %3d: %8.0f queries/s  p50 %7.2f ms  p99 %7.2f ms  errors %ld\n", c,
               rps[nlev], p50[nlev], p99[nlev], errors);
        fflush(stdout);
        if (rps[nlev] > best)
            best = rps[nlev];
        nlev++;
        free(all);
        if (c == maxc)
            break;
    }
    for (int i = 0; i < nlev; i++) {
        if (rps[i] >= 0.9 * best) {
            printf("knee=%d rps=%.0f p99_ms=%.2f (best %.0f queries/s; suggested "
                   "governor.max_inflight = %d)\n", levels[i], rps[i], p99[i], best, levels[i]);
            rc = 0;
            break;
        }
    }
out:
    for (int i = 0; p && i < maxc; i++) {
        gg_mkt_close(p[i].m);
        free(p[i].lat);
    }
    free(p);
    free(accts);
    gg_config_free(cfg);
    return rc;
usage:
    fprintf(stderr, "usage: gridgate admin probe-capacity -c UTILITY.conf [--seconds S] [--max C]\n");
    return 2;
}
