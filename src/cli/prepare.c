/* prepare.c - `gridgate prepare -c UTILITY.conf`: data preparation.
 *
 * Opens the marketing database the utility config names (SQLite or
 * PostgreSQL) and rebuilds the monthly usage summaries
 * (gg_mkt_prepare_usage), so that monthly usage queries read prepared data.
 * The utility can do the same on a schedule (utility.prepare_interval_s).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "marketing/marketing.h"

int gg_cmd_prepare(int argc, char **argv)
{
    gg_config *cfg = NULL;
    gg_mkt *m = NULL;
    char err[512];
    const char *pg;
    int64_t rows = 0, t0;
    gg_err e;
    int rc = 1;

    if (argc != 2 || strcmp(argv[0], "-c") != 0) {
        fprintf(stderr, "usage: gridgate prepare -c UTILITY.conf\n");
        return 2;
    }
    if (gg_config_load(argv[1], &cfg, err, sizeof err) != GG_OK) {
        fprintf(stderr, "gridgate prepare: %s\n", err);
        return 1;
    }
    pg = gg_config_str(cfg, "utility.marketing_pg");
    if (pg && pg[0])
        e = gg_mkt_open_pg(pg, gg_config_str(cfg, "utility.marketing_queries"), &m);
    else
        e = gg_mkt_open(gg_config_str(cfg, "utility.marketing_db"), &m);
    if (e != GG_OK) {
        fprintf(stderr, "gridgate prepare: cannot open the marketing database: %s\n",
                gg_strerror(e));
        goto out;
    }
    t0 = gg_mono_us();
    e = gg_mkt_prepare_usage(m, &rows);
    if (e != GG_OK) {
        fprintf(stderr, "gridgate prepare: %s\n", gg_strerror(e));
        goto out;
    }
    printf("prepared %lld monthly usage summaries (%s) in %.1f s\n", (long long)rows,
           gg_mkt_backend(m), (double)(gg_mono_us() - t0) / 1e6);
    rc = 0;
out:
    gg_mkt_close(m);
    gg_config_free(cfg);
    return rc;
}
