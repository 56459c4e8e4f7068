/* store.c - bench/store: what group commit buys.
 *
 * In one run, on one file system (the directory given with --dir):
 *   1. raw: a write(1 KiB)+fdatasync loop, one at a time: the physical
 *      limit for commits made one after another (raw_fsync_per_s);
 *   2. latency: one producer putting 1 KiB messages one after another
 *      (put_p50_us, put_p99_us: each put is a durable commit);
 *   3. throughput: 64 producers put and 64 consumers get and acknowledge
 *      1 KiB messages at once (durable_msgs_per_s: messages put, got and
 *      acknowledged per second, every step durable).
 *      --mode batch (the default): producers use gg_store_put_many and
 *      consumers gg_store_get_many_wait + gg_store_ack_many, --batch
 *      messages per call (as RabbitMQ publishers use confirms with many
 *      messages outstanding); every message is still put, leased and acked
 *      individually, and counted only once the ack_many covering it has
 *      returned (durable). --mode single: one message per call
 *      (gg_store_put, gg_store_get_wait, gg_store_ack).
 * Before the last line it prints the mode, the average commit batch,
 * the fsyncs per second, the CPU time per message and the bytes written
 * per message (handed to write calls, and sent to the disk: WAL frames
 * plus checkpoints) of phase 3.
 * The last line is
 *   store durable_msgs_per_s=N raw_fsync_per_s=N ratio=R put_p50_us=N put_p99_us=N
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "store/store.h"

#define MSG_LEN 1024
#define PRODUCERS 64
#define CONSUMERS 64

static int64_t g_total;               /* messages in the throughput phase */
static int g_batch = 32;              /* messages per call in batch mode; 1 = single mode */
static atomic_llong g_acked;
static atomic_int g_errors;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* cpu_us - user plus system CPU time of the process so far, in us. */
static int64_t cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

/* io_bytes - from /proc/self/io: bytes handed to write calls (wchar) and
 * bytes sent to the disk (write_bytes); 0 where unreadable. */
static void io_bytes(int64_t *wchar, int64_t *disk)
{
    char line[128];
    FILE *f = fopen("/proc/self/io", "r");

    *wchar = *disk = 0;
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        long long v;
        if (sscanf(line, "wchar: %lld", &v) == 1)
            *wchar = v;
        else if (sscanf(line, "write_bytes: %lld", &v) == 1)
            *disk = v;
    }
    fclose(f);
}

static int64_t pct(int64_t *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i];
}

/* raw_fsync - write+fdatasync one at a time for about secs; per second. */
static double raw_fsync(const char *dir, double secs, int64_t *p50)
{
    char path[4096], buf[MSG_LEN];
    int64_t t0, *lat;
    size_t n = 0, cap = 200000;
    int fd;

    snprintf(path, sizeof path, "%s/raw.dat", dir);
    memset(buf, 'r', sizeof buf);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    lat = malloc(cap * sizeof *lat);
    if (fd < 0 || !lat) {
        fprintf(stderr, "bench: cannot open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    t0 = gg_mono_us();
    while (n < cap && gg_mono_us() - t0 < (int64_t)(secs * 1e6)) {
        int64_t s = gg_mono_us();
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fdatasync(fd) != 0) {
            fprintf(stderr, "bench: write/fdatasync: %s\n", strerror(errno));
            exit(1);
        }
        lat[n++] = gg_mono_us() - s;
    }
    double per_s = (double)n / ((double)(gg_mono_us() - t0) / 1e6);
    qsort(lat, n, sizeof *lat, cmp_i64);
    *p50 = pct(lat, n, 0.5);
    free(lat);
    close(fd);
    unlink(path);
    return per_s;
}

/* single_put - n puts one after another; p50 and p99 latency in us. */
static void single_put(gg_store *st, int n, int64_t *p50, int64_t *p99)
{
    static uint8_t body[MSG_LEN];
    int64_t *lat = malloc((size_t)n * sizeof *lat);

    if (!lat)
        exit(1);
    for (int i = 0; i < n; i++) {
        int64_t s = gg_mono_us();
        if (gg_store_put(st, "lat", NULL, body, sizeof body, 0, NULL) != GG_OK)
            atomic_fetch_add(&g_errors, 1);
        lat[i] = gg_mono_us() - s;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_i64);
    *p50 = pct(lat, (size_t)n, 0.5);
    *p99 = pct(lat, (size_t)n, 0.99);
    free(lat);
    gg_store_delete_upto(st, "lat", INT64_MAX);
}

struct worker {
    gg_store *st;
    int64_t count;
};

/* producer - put w->count messages, one per call or g_batch per put_many. */
static void *producer(void *arg)
{
    struct worker *w = arg;
    uint8_t body[MSG_LEN];
    gg_store_put_item items[GG_STORE_MANY_MAX];

    memset(body, 'p', sizeof body);
    memset(items, 0, sizeof items);
    for (int i = 0; i < g_batch; i++) {
        items[i].queue = "work";
        items[i].data = body;
        items[i].len = sizeof body;
    }
    for (int64_t i = 0; i < w->count;) {
        int64_t k = w->count - i < g_batch ? w->count - i : g_batch;
        gg_err e = g_batch == 1 ? gg_store_put(w->st, "work", NULL, body, sizeof body, 0, NULL)
                                : gg_store_put_many(w->st, items, (size_t)k, NULL);
        if (e != GG_OK)
            atomic_fetch_add(&g_errors, 1);
        i += k;
    }
    return NULL;
}

/* consumer - lease and ack until every message is acked; count a message
 * only once the ack covering it has returned. */
static void *consumer(void *arg)
{
    struct worker *w = arg;
    gg_msg *m[GG_STORE_MANY_MAX];
    int64_t ids[GG_STORE_MANY_MAX];

    while (atomic_load(&g_acked) < g_total) {
        size_t n = 0;
        gg_err e;

        if (g_batch == 1) {
            e = gg_store_get_wait(w->st, "work", 60000, 200, &m[0]);
            n = e == GG_OK ? 1 : 0;
        } else {
            e = gg_store_get_many_wait(w->st, "work", 60000, (size_t)g_batch, 200, m, &n);
        }
        if (e == GG_EEMPTY)
            continue;
        if (e != GG_OK) {
            atomic_fetch_add(&g_errors, 1);
            continue;
        }
        for (size_t i = 0; i < n; i++)
            ids[i] = m[i]->id;
        e = n == 1 ? gg_store_ack(w->st, ids[0]) : gg_store_ack_many(w->st, ids, n);
        if (e == GG_OK)
            atomic_fetch_add(&g_acked, (long long)n);
        else
            atomic_fetch_add(&g_errors, 1);
        for (size_t i = 0; i < n; i++)
            gg_msg_free(m[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *dir = "bench-store.tmp";
    int64_t per_producer = 500, raw_p50 = 0, p50 = 0, p99 = 0, t0, us, cpu0;
    int64_t wchar0, disk0, wchar1, disk1;
    struct worker pw[PRODUCERS], cw[CONSUMERS];
    pthread_t pt[PRODUCERS], ct[CONSUMERS];
    char path[4096];
    gg_store_stats s0, s1;
    gg_store *st = NULL;
    double raw, durable;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--per-producer") == 0 && i + 1 < argc)
            per_producer = atoll(argv[++i]);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            g_batch = atoi(argv[++i]);
        else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc && strcmp(argv[i + 1], "single") == 0)
            g_batch = 1, i++;
        else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc && strcmp(argv[i + 1], "batch") == 0)
            i++;
        else {
            fprintf(stderr, "usage: bench_store [--dir DIR] [--per-producer N] "
                    "[--mode batch|single] [--batch N]\n");
            return 2;
        }
    }
    if (g_batch < 1 || g_batch > GG_STORE_MANY_MAX) {
        fprintf(stderr, "bench: --batch must be 1..%d\n", GG_STORE_MANY_MAX);
        return 2;
    }
    gg_log_set_level(GG_LOG_WARN);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/bench.db", dir);
    unlink(path);
    raw = raw_fsync(dir, 2.0, &raw_p50);
    printf("raw write+fdatasync: %.0f per s, p50 %lld us\n", raw, (long long)raw_p50);
    if (gg_store_open(path, NULL, &st) != GG_OK) {
        fprintf(stderr, "bench: cannot open store %s\n", path);
        return 1;
    }
    single_put(st, 2000, &p50, &p99);
    printf("single producer put (1 KiB, durable): p50 %lld us, p99 %lld us (%.2fx raw p50)\n",
           (long long)p50, (long long)p99, raw_p50 > 0 ? (double)p50 / (double)raw_p50 : 0.0);

    g_total = per_producer * PRODUCERS;
    gg_store_get_stats(st, &s0);
    io_bytes(&wchar0, &disk0);
    t0 = gg_mono_us();
    cpu0 = cpu_us();
    for (int i = 0; i < CONSUMERS; i++) {
        cw[i].st = st;
        cw[i].count = 0;
        pthread_create(&ct[i], NULL, consumer, &cw[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pw[i].st = st;
        pw[i].count = per_producer;
        pthread_create(&pt[i], NULL, producer, &pw[i]);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(ct[i], NULL);
    us = gg_mono_us() - t0;
    cpu0 = cpu_us() - cpu0;
    io_bytes(&wchar1, &disk1);
    gg_store_get_stats(st, &s1);
    durable = (double)atomic_load(&g_acked) / ((double)us / 1e6);
    printf("64 producers + 64 consumers: %lld messages put, got and acked in %.2f s\n",
           (long long)atomic_load(&g_acked), (double)us / 1e6);
    {
        int64_t commits = s1.commits - s0.commits, syncs = s1.syncs - s0.syncs;
        if (g_batch == 1)
            printf("api mode: single (gg_store_put, gg_store_get_wait, gg_store_ack; "
                   "1 message per call)\n");
        else
            printf("api mode: batch (gg_store_put_many, gg_store_get_many_wait, "
                   "gg_store_ack_many; up to %d messages per call)\n", g_batch);
        printf("commits %lld covering %lld calls (average commit batch %.1f calls, "
               "%.1f messages acked per commit)\n",
               (long long)commits, (long long)(s1.batched - s0.batched),
               commits ? (double)(s1.batched - s0.batched) / (double)commits : 0.0,
               commits ? (double)atomic_load(&g_acked) / (double)commits : 0.0);
        printf("fsyncs %lld (%.0f per s; %lld lease-only commits without one), "
               "%.1f messages acked per fsync\n",
               (long long)syncs, (double)syncs / ((double)us / 1e6),
               (long long)(commits - syncs),
               syncs ? (double)atomic_load(&g_acked) / (double)syncs : 0.0);
    }
    printf("cpu %.2f s for %.2f s (%.1f us of CPU per message put, got and acked)\n",
           (double)cpu0 / 1e6, (double)us / 1e6,
           atomic_load(&g_acked) ? (double)cpu0 / (double)atomic_load(&g_acked) : 0.0);
    if (atomic_load(&g_acked))
        printf("written %.1f KiB per message (%.1f KiB of it reached the disk)\n",
               (double)(wchar1 - wchar0) / 1024.0 / (double)atomic_load(&g_acked),
               (double)(disk1 - disk0) / 1024.0 / (double)atomic_load(&g_acked));
    if (atomic_load(&g_errors))
        printf("errors: %d\n", atomic_load(&g_errors));
    gg_store_close(st);
    unlink(path);
    snprintf(path, sizeof path, "%s/bench.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/bench.db-shm", dir);
    unlink(path);
    printf("store durable_msgs_per_s=%.0f raw_fsync_per_s=%.0f ratio=%.1f put_p50_us=%lld "
           "put_p99_us=%lld\n",
           durable, raw, raw > 0 ? durable / raw : 0.0, (long long)p50, (long long)p99);
    return atomic_load(&g_errors) ? 1 : 0;
}
