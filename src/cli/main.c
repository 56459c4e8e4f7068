/* main.c - gridgate: dispatch to subcommands. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sig.h"
#include "portal/portal.h"
#include "utility/utility.h"

static const char usage[] =
    "usage: gridgate COMMAND [ARGS]\n"
    "\n"
    "  run -c FILE                      run one role (portal or utility) from its config\n"
    "  demo [DIR]                       both roles on this machine (initialises DIR, default ./demo)\n"
    "  demo init DIR [--port-base P] [--accounts N] [--months M] [--suite intl|gm] [--pg CONNINFO]\n"
    "                                   write DIR/pki, DIR/portal.conf, DIR/utility.conf, DIR/marketing.db\n"
    "  pki init DIR [--suite intl|gm]   a CA and a certificate and keys for each site\n"
    "  seed --db FILE --accounts N --months M [--seed S] [--end YYYY-MM]\n"
    "                                   a deterministic synthetic marketing database (SQLite)\n"
    "  seed --pg CONNINFO (--accounts N --months M [--db FILE] | --db EXISTING)\n"
    "                                   the same data in PostgreSQL (COPY)\n"
    "  seed (--db FILE | --pg CONNINFO) --indexes-only\n"
    "                                   add the indexes a fresh seed has to an older database\n"
    "  bench http --url URL --db FILE [--concurrency C] [--duration S] [--mix query=80,usage=15,pay=5]\n"
    "                                   drive the portal API as bound citizens; latency and outcomes\n"
    "  bench baseline -c UTILITY.conf --listen HOST:PORT\n"
    "                                   the same API straight from the database (no gateway)\n"
    "  prepare -c UTILITY.conf          pre-compute monthly usage summaries (gg_usage_monthly)\n"
    "  config check -c FILE             validate a config and print the effective values\n"
    "  config docs                      the table of every config key (Markdown)\n"
    "  admin queues -c FILE             depth, oldest age, bytes, dead letters per queue\n"
    "  admin dlq list|show ID|replay ID|purge [ID] -c FILE\n"
    "                                   the dead-letter queue of the role's store\n"
    "  admin channel -c FILE            the running role's channel: state, seqs, in flight, bytes\n"
    "  admin probe-capacity -c UTILITY.conf [--seconds S] [--max C]\n"
    "                                   the marketing database's throughput by concurrency, and its knee\n"
    "  version                          print the version\n";

int gg_cli_parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

const char *gg_cli_self_path(void)
{
    static char path[PATH_MAX];
    if (!path[0]) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        if (n <= 0)
            snprintf(path, sizeof path, "gridgate");
        else
            path[n] = '\0';
    }
    return path;
}

/* load_config - parse -c FILE from argv; NULL (and a message) on failure. */
static gg_config *load_config(int argc, char **argv)
{
    const char *file = NULL;
    char err[512];
    gg_config *cfg = NULL;
    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            file = argv[++i];
        else {
            fprintf(stderr, "gridgate: unexpected argument '%s'\n", argv[i]);
            return NULL;
        }
    }
    if (!file) {
        fprintf(stderr, "gridgate: missing -c FILE\n");
        return NULL;
    }
    if (gg_config_load(file, &cfg, err, sizeof err) != GG_OK) {
        fprintf(stderr, "gridgate: %s\n", err);
        return NULL;
    }
    return cfg;
}

int gg_cmd_run(int argc, char **argv)
{
    sigset_t stop;
    gg_err rc;
    /* A SIGTERM that arrives while the role is still starting (a service
     * manager stopping a unit it has just restarted) must wait for the
     * role's own handling and a clean stop, not kill it half-way: block
     * the stop signals before anything else; each role takes them over. */
    gg_role_sigset(&stop);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    gg_config *cfg = load_config(argc, argv);
    if (!cfg)
        return 2;
    const char *level = gg_config_str(cfg, "log.level");
    gg_log_set_level(strcmp(level, "debug") == 0 ? GG_LOG_DEBUG
                     : strcmp(level, "warn") == 0 ? GG_LOG_WARN
                     : strcmp(level, "error") == 0 ? GG_LOG_ERROR
                                                   : GG_LOG_INFO);
    gg_log_set_site(gg_config_str(cfg, "site.name"));
    if (strcmp(gg_config_str(cfg, "site.role"), "portal") == 0)
        rc = gg_portal_run(cfg);
    else
        rc = gg_utility_run(cfg);
    gg_config_free(cfg);
    if (rc != GG_OK) {
        fprintf(stderr, "gridgate: stopped: %s\n", gg_strerror(rc));
        return 1;
    }
    return 0;
}

int gg_cmd_config(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "docs") == 0 && argc == 1) {
        gg_config_print_docs(stdout);
        return 0;
    }
    if (argc >= 1 && strcmp(argv[0], "check") == 0) {
        gg_config *cfg = load_config(argc - 1, argv + 1);
        if (!cfg)
            return 1;
        gg_config_dump(cfg, stdout);
        gg_config_free(cfg);
        return 0;
    }
    fputs(usage, stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return gg_cmd_run(argc - 2, argv + 2);
    if (strcmp(cmd, "demo") == 0)
        return gg_cmd_demo(argc - 2, argv + 2);
    if (strcmp(cmd, "pki") == 0)
        return gg_cmd_pki(argc - 2, argv + 2);
    if (strcmp(cmd, "seed") == 0)
        return gg_cmd_seed(argc - 2, argv + 2);
    if (strcmp(cmd, "config") == 0)
        return gg_cmd_config(argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0)
        return gg_cmd_bench(argc - 2, argv + 2);
    if (strcmp(cmd, "prepare") == 0)
        return gg_cmd_prepare(argc - 2, argv + 2);
    if (strcmp(cmd, "admin") == 0)
        return gg_cmd_admin(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        puts("gridgate 0.1.0");
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "gridgate: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
