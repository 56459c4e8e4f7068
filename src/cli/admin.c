/* admin.c - `gridgate admin ...`: operator commands, and the dispatcher
 * other admin subcommands hang on (one line each in gg_cmd_admin, their
 * code in their own admin_*.c file).
 *
 * The queue commands work on the store file named by store.path in the
 * role's config, directly: SQLite in WAL mode lets another process read
 * and commit while the role runs (each commit takes the write lock for a
 * moment; a busy store is waited for up to 5 s). A message replayed here
 * is picked up by the running role at its next poll of the queue (within
 * a worker's wait time), not at once: the role's wake-ups are in-process.
 *   admin queues -c FILE            depth, oldest age, bytes, dead letters per queue
 *   admin dlq list -c FILE          the dead letters
 *   admin dlq show ID -c FILE       one dead letter, with a hex dump of its start
 *   admin dlq replay ID -c FILE     back onto its queue, exactly once (new id)
 *   admin dlq purge [ID] -c FILE    remove one dead letter, or all of them
 * Exit status: 0 done, 1 failed (unknown id, store error), 2 bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "store/store.h"

#define ADMIN_QUEUES_MAX 1024
#define DLQ_PAGE 256
#define SHOW_BYTES 512

static const char admin_usage[] =
    "usage: gridgate admin queues -c FILE\n"
    "       gridgate admin dlq list|show ID|replay ID|purge [ID] -c FILE\n"
    "       gridgate admin channel -c FILE\n"
    "       gridgate admin audit verify -c FILE\n"
    "       gridgate admin probe-capacity -c UTILITY.conf [--seconds S] [--max C]\n"
    "       gridgate admin publish-outage -c FILE --district D --start T --end T --reason TEXT\n";

/* open_from_config - parse "[ID] -c FILE" from argv, open the store of
 * FILE's store.path. *id gets ID (0 if absent; need_id makes it required).
 * Returns the exit status on failure, 0 on success. */
static int open_from_config(int argc, char **argv, int want_id, int need_id, int64_t *id,
                            gg_store **out)
{
    const char *file = NULL, *path;
    gg_config *cfg = NULL;
    char err[512];
    long long v;
    gg_err e;

    *out = NULL;
    if (id)
        *id = 0;
    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            file = argv[++i];
        } else if (want_id && id && *id == 0 &&
                   gg_cli_parse_int(argv[i], 1, INT64_MAX, &v) == 0) {
            *id = v;
        } else {
            fprintf(stderr, "gridgate: unexpected argument '%s'\n%s", argv[i], admin_usage);
            return 2;
        }
    }
    if (!file || (need_id && (!id || *id == 0))) {
        fputs(admin_usage, stderr);
        return 2;
    }
    if (gg_config_load(file, &cfg, err, sizeof err) != GG_OK) {
        fprintf(stderr, "gridgate: %s\n", err);
        return 1;
    }
    path = gg_config_str(cfg, "store.path");
    gg_log_set_level(GG_LOG_ERROR);
    e = path && path[0] ? gg_store_open(path, NULL, out) : GG_ECONFIG;
    if (e != GG_OK)
        fprintf(stderr, "gridgate: cannot open the store %s: %s\n", path ? path : "(unset)",
                gg_strerror(e));
    gg_config_free(cfg);
    return e == GG_OK ? 0 : 1;
}

/* fmt_time - ms since the epoch as UTC ISO 8601 ("-" for 0). */
static void fmt_time(int64_t ms, char *out, size_t outsz)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0 || !gmtime_r(&t, &tm)) {
        snprintf(out, outsz, "-");
        return;
    }
    strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* cmd_queues - one line per queue. */
static int cmd_queues(int argc, char **argv)
{
    gg_queue_info *q = calloc(ADMIN_QUEUES_MAX, sizeof *q);
    int64_t now = gg_now_ms();
    gg_store *st = NULL;
    size_t n = 0;
    int rc;

    if (!q)
        return 1;
    rc = open_from_config(argc, argv, 0, 0, NULL, &st);
    if (rc != 0)
        goto out;
    if (gg_store_queues(st, q, ADMIN_QUEUES_MAX, &n) != GG_OK) {
        fprintf(stderr, "gridgate: cannot list the queues\n");
        rc = 1;
        goto out;
    }
    printf("%-24s %10s %14s %14s %8s\n", "QUEUE", "DEPTH", "OLDEST_AGE_S", "BYTES", "DEAD");
    for (size_t i = 0; i < n; i++) {
        double age = q[i].depth > 0 && q[i].oldest_put_ms > 0 && now > q[i].oldest_put_ms
                         ? (double)(now - q[i].oldest_put_ms) / 1000.0
                         : 0.0;
        printf("%-24s %10lld %14.1f %14lld %8lld\n", q[i].name, (long long)q[i].depth, age,
               (long long)q[i].bytes, (long long)q[i].dead);
    }
out:
    gg_store_close(st);
    free(q);
    return rc;
}

/* dlq_list - every dead letter, a page at a time. */
static int dlq_list(gg_store *st)
{
    gg_dead_info *d = calloc(DLQ_PAGE, sizeof *d);
    int64_t after = 0;
    char when[32];
    size_t n = 0;

    if (!d)
        return 1;
    printf("%-10s %-20s %-20s %8s %8s  %s\n", "ID", "QUEUE", "DEAD_AT", "BACKOUTS", "BYTES",
           "REASON");
    do {
        if (gg_store_dead_list(st, after, d, DLQ_PAGE, &n) != GG_OK) {
            free(d);
            fprintf(stderr, "gridgate: cannot list the dead letters\n");
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            fmt_time(d[i].dead_ms, when, sizeof when);
            printf("%-10lld %-20s %-20s %8d %8zu  %s\n", (long long)d[i].id, d[i].queue, when,
                   d[i].backouts, d[i].len, d[i].reason);
            after = d[i].id;
        }
    } while (n == DLQ_PAGE);
    free(d);
    return 0;
}

/* dlq_show - one dead letter and the start of its bytes in hex. */
static int dlq_show(gg_store *st, int64_t id)
{
    gg_dead_info d;
    gg_msg *m = NULL;
    char t1[32], t2[32], t3[32];
    gg_err e = gg_store_dead_get(st, id, &d, &m);

    if (e != GG_OK) {
        fprintf(stderr, "gridgate: dead letter %lld: %s\n", (long long)id, gg_strerror(e));
        return 1;
    }
    fmt_time(d.dead_ms, t1, sizeof t1);
    fmt_time(d.put_ms, t2, sizeof t2);
    fmt_time(d.expiry_ms, t3, sizeof t3);
    printf("id:        %lld\nqueue:     %s\ndest:      %s\nreason:    %s\ndead_at:   %s\n"
           "put_at:    %s\nexpiry:    %s\nbackouts:  %d\npriority:  %d\nflags:     %u\n"
           "bytes:     %zu\n",
           (long long)d.id, d.queue, d.dest[0] ? d.dest : "-", d.reason, t1, t2, t3, d.backouts,
           d.prio, d.flags, m->len);
    for (size_t i = 0; i < m->len && i < SHOW_BYTES; i += 16) {
        printf("  %04zx ", i);
        for (size_t j = i; j < i + 16 && j < m->len; j++)
            printf(" %02x", m->data[j]);
        putchar('\n');
    }
    if (m->len > SHOW_BYTES)
        printf("  ... %zu more bytes\n", m->len - SHOW_BYTES);
    gg_msg_free(m);
    return 0;
}

/* cmd_dlq - list, show, replay or purge. */
static int cmd_dlq(int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "";
    int is_list = strcmp(sub, "list") == 0, is_show = strcmp(sub, "show") == 0;
    int is_replay = strcmp(sub, "replay") == 0, is_purge = strcmp(sub, "purge") == 0;
    gg_store *st = NULL;
    int64_t id = 0, n = 0;
    int rc;
    gg_err e;

    if (!is_list && !is_show && !is_replay && !is_purge) {
        fputs(admin_usage, stderr);
        return 2;
    }
    rc = open_from_config(argc - 1, argv + 1, !is_list, is_show || is_replay, &id, &st);
    if (rc != 0)
        return rc;
    if (is_list) {
        rc = dlq_list(st);
    } else if (is_show) {
        rc = dlq_show(st, id);
    } else if (is_replay) {
        e = gg_store_dead_replay(st, id, &n);
        if (e == GG_OK)
            printf("replayed dead letter %lld as message %lld\n", (long long)id, (long long)n);
        else
            fprintf(stderr, "gridgate: replay %lld: %s\n", (long long)id, gg_strerror(e));
        rc = e == GG_OK ? 0 : 1;
    } else {
        e = gg_store_dead_purge(st, id, &n);
        if (e == GG_OK)
            printf("purged %lld dead letter%s\n", (long long)n, n == 1 ? "" : "s");
        else
            fprintf(stderr, "gridgate: purge %lld: %s\n", (long long)id, gg_strerror(e));
        rc = e == GG_OK ? 0 : 1;
    }
    gg_store_close(st);
    return rc;
}

/* gg_cmd_admin - dispatch `admin SUBCOMMAND ...`. */
int gg_cmd_admin(int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "";

    if (strcmp(sub, "queues") == 0)
        return cmd_queues(argc - 1, argv + 1);
    if (strcmp(sub, "dlq") == 0)
        return cmd_dlq(argc - 1, argv + 1);
    if (strcmp(sub, "channel") == 0)
        return gg_cmd_admin_channel(argc - 1, argv + 1);
    if (strcmp(sub, "probe-capacity") == 0)
        return gg_cmd_admin_probe(argc - 1, argv + 1);
    if (strcmp(sub, "publish-outage") == 0)
        return gg_cmd_admin_publish_outage(argc - 1, argv + 1);
    if (strcmp(sub, "audit") == 0)
        return gg_cmd_admin_audit(argc - 1, argv + 1);
    fputs(admin_usage, stderr);
    return 2;
}
