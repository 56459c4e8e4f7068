/* metrics.c - the store's Prometheus text (gg_store_metrics).
 *
 * Per queue gauges come from gg_store_queues (at most METRICS_QUEUES
 * queues, by name); the counters and the commit latency histogram from
 * the store's own counters, read under its mutex. Queue names can come
 * from the peer, so label values are escaped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "store/store_int.h"

#define METRICS_QUEUES 64

/* bprintf - append formatted text to b. */
__attribute__((format(printf, 2, 3)))
static gg_err bprintf(gg_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return GG_EINVAL;
    return gg_buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* family - the HELP and TYPE lines. */
static gg_err family(gg_buf *b, const char *name, const char *type, const char *help)
{
    return bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* escape_label - q as a Prometheus label value (\\, \" and \n escaped). */
static void escape_label(const char *q, char *out, size_t outsz)
{
    size_t o = 0;

    for (; *q && o + 3 < outsz; q++) {
        if (*q == '\\' || *q == '"') {
            out[o++] = '\\';
            out[o++] = *q;
        } else if (*q == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *q;
        }
    }
    out[o] = '\0';
}

/* queue_metrics - the per queue gauges; the names in always at 0 if absent. */
static gg_err queue_metrics(gg_store *st, const char *const *always, size_t nalways, gg_buf *b)
{
    gg_queue_info *q = calloc(METRICS_QUEUES, sizeof *q);
    char lab[2 * GG_QUEUE_NAME_MAX + 4];
    int64_t now = gg_now_ms();
    size_t n = 0, i;
    gg_err err;

    if (!q)
        return GG_ENOMEM;
    err = gg_store_queues(st, q, METRICS_QUEUES, &n);
    if (err != GG_OK)
        goto out;
    for (size_t a = 0; always && a < nalways && n < METRICS_QUEUES; a++) {
        int known = !gg_store_valid_name(always[a]);
        for (i = 0; !known && i < n; i++)
            known = strcmp(q[i].name, always[a]) == 0;
        if (!known)
            snprintf(q[n++].name, sizeof q[0].name, "%s", always[a]);
    }
    err = family(b, "gridgate_queue_depth", "gauge", "Messages ready or leased on a local queue.");
    for (i = 0; err == GG_OK && i < n; i++) {
        escape_label(q[i].name, lab, sizeof lab);
        err = bprintf(b, "gridgate_queue_depth{queue=\"%s\"} %lld\n", lab, (long long)q[i].depth);
    }
    if (err == GG_OK)
        err = family(b, "gridgate_queue_oldest_age_seconds", "gauge",
                     "Age of the oldest message on a local queue (0 when empty).");
    for (i = 0; err == GG_OK && i < n; i++) {
        double age = q[i].depth > 0 && q[i].oldest_put_ms > 0 && now > q[i].oldest_put_ms
                         ? (double)(now - q[i].oldest_put_ms) / 1000.0
                         : 0.0;
        escape_label(q[i].name, lab, sizeof lab);
        err = bprintf(b, "gridgate_queue_oldest_age_seconds{queue=\"%s\"} %.3f\n", lab, age);
    }
    if (err == GG_OK)
        err = family(b, "gridgate_queue_bytes", "gauge", "Payload bytes on a local queue.");
    for (i = 0; err == GG_OK && i < n; i++) {
        escape_label(q[i].name, lab, sizeof lab);
        err = bprintf(b, "gridgate_queue_bytes{queue=\"%s\"} %lld\n", lab, (long long)q[i].bytes);
    }
    if (err == GG_OK)
        err = family(b, "gridgate_queue_dead_letters", "gauge",
                     "Messages of a queue now in the dead-letter queue.");
    for (i = 0; err == GG_OK && i < n; i++) {
        escape_label(q[i].name, lab, sizeof lab);
        err = bprintf(b, "gridgate_queue_dead_letters{queue=\"%s\"} %lld\n", lab,
                      (long long)q[i].dead);
    }
out:
    free(q);
    return err;
}

/* counter - one counter family with one sample. */
static gg_err counter(gg_buf *b, const char *name, const char *help, long long v)
{
    gg_err err = family(b, name, "counter", help);
    return err == GG_OK ? bprintf(b, "%s %lld\n", name, v) : err;
}

/* file_size - bytes of path plus suffix, 0 if missing. */
static long long file_size(const char *path, const char *sfx)
{
    char p[4096];
    struct stat sb;

    snprintf(p, sizeof p, "%s%s", path, sfx);
    return stat(p, &sb) == 0 ? (long long)sb.st_size : 0;
}

/* gg_store_metrics - the store's Prometheus text appended to b. */
gg_err gg_store_metrics(gg_store *st, const char *const *always, size_t nalways, gg_buf *b)
{
    uint64_t lat[GG_STORE_LAT_BUCKETS + 1], cum = 0;
    gg_store_stats s;
    double lat_sum;
    gg_err err;

    if (!st || !b)
        return GG_EINVAL;
    err = queue_metrics(st, always, nalways, b);
    if (err == GG_OK)
        err = gg_store_get_stats(st, &s);
    if (err != GG_OK)
        return err;
    pthread_mutex_lock(&st->mu);
    memcpy(lat, st->lat_count, sizeof lat);
    lat_sum = st->lat_sum_s;
    pthread_mutex_unlock(&st->mu);

    err = counter(b, "gridgate_store_puts_total", "Messages added (put, reply, receive, replay).",
                  (long long)s.puts);
    if (err == GG_OK)
        err = counter(b, "gridgate_store_gets_total", "Leases granted.", (long long)s.gets);
    if (err == GG_OK)
        err = counter(b, "gridgate_store_acks_total", "Messages acknowledged (removed).",
                      (long long)s.acks);
    if (err == GG_OK)
        err = counter(b, "gridgate_store_backouts_total",
                      "Returns to ready: backouts and leases that ran out.", (long long)s.backouts);
    if (err == GG_OK)
        err = counter(b, "gridgate_store_dead_letters_total",
                      "Messages moved to the dead-letter queue.", (long long)s.dead);
    if (err == GG_OK)
        err = counter(b, "gridgate_store_expired_total",
                      "Messages past their expiry, never delivered.", (long long)s.expired);
    if (err == GG_OK)
        err = counter(b, "gridgate_store_resends_dropped_total",
                      "Received items at or below the channel mark (resends).",
                      (long long)s.dropped);
    if (err == GG_OK)
        err = counter(b, "gridgate_store_commits_total",
                      "Transactions committed (lease-only ones without an fsync).",
                      (long long)s.commits);
    if (err == GG_OK)
        err = counter(b, "gridgate_store_fsyncs_total",
                      "Commits that fsynced the WAL (durability full).", (long long)s.syncs);
    if (err == GG_OK)
        err = counter(b, "gridgate_store_handoffs_total",
                      "Messages a commit leased straight to a waiting taker.",
                      (long long)s.handoffs);
    if (err == GG_OK)
        err = counter(b, "gridgate_store_committed_calls_total",
                      "Calls made durable by those commits (group commit).", (long long)s.batched);
    if (err == GG_OK)
        err = counter(b, "gridgate_store_storage_faults_total",
                      "Storage faults (I/O error, disk full) that failed a commit.",
                      (long long)s.faults);
    if (err == GG_OK)
        err = family(b, "gridgate_store_faulted", "gauge",
                     "1 while the last commit attempt failed on storage.");
    if (err == GG_OK)
        err = bprintf(b, "gridgate_store_faulted %d\n", s.faulted);
    if (err == GG_OK)
        err = family(b, "gridgate_store_dead_letter_depth", "gauge",
                     "Messages now in the dead-letter queue.");
    if (err == GG_OK)
        err = bprintf(b, "gridgate_store_dead_letter_depth %lld\n", (long long)s.dead_depth);
    if (err == GG_OK)
        err = family(b, "gridgate_store_file_bytes", "gauge", "Size of the store's files.");
    if (err == GG_OK)
        err = bprintf(b, "gridgate_store_file_bytes{file=\"db\"} %lld\n"
                         "gridgate_store_file_bytes{file=\"wal\"} %lld\n",
                      file_size(st->path, ""), file_size(st->path, "-wal"));
    if (err == GG_OK)
        err = family(b, "gridgate_store_commit_seconds", "histogram",
                     "Time from BEGIN to the end of COMMIT (its fsync included).");
    for (size_t i = 0; err == GG_OK && i < GG_STORE_LAT_BUCKETS; i++) {
        cum += lat[i];
        err = bprintf(b, "gridgate_store_commit_seconds_bucket{le=\"%g\"} %llu\n",
                      (double)gg_store_lat_bounds_us[i] / 1e6, (unsigned long long)cum);
    }
    cum += lat[GG_STORE_LAT_BUCKETS];
    if (err == GG_OK)
        err = bprintf(b, "gridgate_store_commit_seconds_bucket{le=\"+Inf\"} %llu\n"
                         "gridgate_store_commit_seconds_sum %.6f\n"
                         "gridgate_store_commit_seconds_count %llu\n",
                      (unsigned long long)cum, lat_sum, (unsigned long long)cum);
    return err;
}
