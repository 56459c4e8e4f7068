/* rr.c - bench/rr driver and its gridgate side (`make bench-rr`).
 *
 * Request/reply round trips with 1 KiB persistent messages:
 *   gridgate: requester threads put a request on the portal store's xmit
 *   queue (dest "requests", a durable commit), the channel carries it over
 *   TLS 1.3 to the utility store (committed with the batch's mark, then
 *   acknowledged), an echo responder process takes it under a lease and,
 *   in one transaction, acknowledges it and puts the reply on the utility's
 *   xmit queue (dest = the requester's own reply queue); the channel carries
 *   it back and the requester takes it, and acknowledges it in the
 *   transaction that puts its next request (gg_store_ack_put; RabbitMQ's
 *   basic.ack is not confirmed at all). The utility side is a separate
 *   process (fork), as in production.
 *   rabbitmq: the same through a broker started by bench/rr.sh (rr_amqp.c).
 * At 1, 16 and 64 concurrent requesters, each for --secs seconds after a
 * warm-up; prints a line per system and concurrency and last:
 *   rr concurrency=64 gridgate_rt_per_s=… rabbitmq_rt_per_s=… ratio=…
 *      gridgate_p99_us=… rabbitmq_p99_us=…
 * Also prints, per concurrency, the portal store's commits per round trip,
 * and what a round trip costs both processes inside the measured window:
 *   rr cost concurrency=C vcsw_per_rt=… ivcsw_per_rt=… cpu_us_per_rt=…
 *      portal_vcsw_per_rt=… utility_vcsw_per_rt=… portal_cpu_us_per_rt=…
 *      utility_cpu_us_per_rt=…
 * (voluntary / involuntary context switches and user+system CPU; the portal
 * from getrusage(RUSAGE_SELF), the utility child from /proc/PID/stat and
 * the sum over /proc/PID/task/<tid>/status, its threads living throughout).
 * Usage: bench_rr [--amqp-port P] [--secs S] [--responders N (64)] [--only C]
 * (--only: that one concurrency, gridgate only, for quick A/B runs).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rr.h"
#include "site.h"
#include "channel/channel.h"
#include "core/clock.h"
#include "core/log.h"
#include "pki/pki.h"
#include "store/store.h"

#define REQ_QUEUE "requests"
#define WARMUP_US 1000000

static char g_dir[256];
static int g_port;
static atomic_int g_stop;
static int64_t g_measure_from, g_measure_to;
static pid_t g_child;

/* What the two processes spent: context switches and CPU. */
typedef struct rr_usage {
    int64_t vcsw, ivcsw, cpu_us;       /* portal (this process) */
    int64_t c_vcsw, c_ivcsw, c_cpu_us; /* utility (the child) */
} rr_usage;

typedef struct req_ctx {
    gg_store *st;
    int idx;
    int64_t *lat;
    size_t n, cap;
    int64_t errors;
} req_ctx;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void rr_summarise(int64_t **lat, const size_t *n, int conc, double secs, rr_result *r)
{
    size_t total = 0, k = 0;
    for (int i = 0; i < conc; i++)
        total += n[i];
    int64_t *all = malloc((total + 1) * sizeof *all);
    memset(r, 0, sizeof *r);
    if (!all)
        return;
    for (int i = 0; i < conc; i++) {
        memcpy(all + k, lat[i], n[i] * sizeof *all);
        k += n[i];
    }
    qsort(all, total, sizeof *all, cmp_i64);
    r->count = (int64_t)total;
    r->rt_per_s = (double)total / secs;
    r->p50_us = total ? all[total / 2] : 0;
    r->p99_us = total ? all[(size_t)((double)total * 0.99)] : 0;
    free(all);
}

/* ---- cost per round trip ----------------------------------------------- */

/* child_cpu_us - user+system CPU of process pid (all threads), 0 if unknown. */
static int64_t child_cpu_us(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, stt = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &stt) != 2)
        return 0;
    return (int64_t)((ut + stt) * 1000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
}

/* child_csw - the context switches of every thread of pid, summed. */
static void child_csw(pid_t pid, int64_t *vol, int64_t *invol)
{
    char path[300], line[128];
    *vol = *invol = 0;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    for (struct dirent *de = readdir(d); de; de = readdir(d)) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/status", (int)pid, de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        long long v;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1)
                *vol += v;
            else if (sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1)
                *invol += v;
        }
        fclose(f);
    }
    closedir(d);
}

/* usage_now - a snapshot of both processes. */
static void usage_now(rr_usage *u)
{
    struct rusage ru;
    memset(u, 0, sizeof *u);
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        u->vcsw = ru.ru_nvcsw;
        u->ivcsw = ru.ru_nivcsw;
        u->cpu_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
                    (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    }
    if (g_child > 0) {
        u->c_cpu_us = child_cpu_us(g_child);
        child_csw(g_child, &u->c_vcsw, &u->c_ivcsw);
    }
}

/* print_cost - the usage between a and b per round trip measured. */
static void print_cost(int conc, const rr_usage *a, const rr_usage *b, int64_t count)
{
    double n = count > 0 ? (double)count : 1.0;
    double pv = (double)(b->vcsw - a->vcsw), uv = (double)(b->c_vcsw - a->c_vcsw);
    double pi = (double)(b->ivcsw - a->ivcsw), ui = (double)(b->c_ivcsw - a->c_ivcsw);
    double pc = (double)(b->cpu_us - a->cpu_us), uc = (double)(b->c_cpu_us - a->c_cpu_us);
    printf("rr cost concurrency=%d vcsw_per_rt=%.2f ivcsw_per_rt=%.2f cpu_us_per_rt=%.0f "
           "portal_vcsw_per_rt=%.2f utility_vcsw_per_rt=%.2f portal_cpu_us_per_rt=%.0f "
           "utility_cpu_us_per_rt=%.0f\n", conc, (pv + uv) / n, (pi + ui) / n, (pc + uc) / n,
           pv / n, uv / n, pc / n, uc / n);
    fflush(stdout);
}

/* ---- utility side: a separate process ------------------------------------ */

typedef struct echo_ctx {
    gg_store *st;
} echo_ctx;

/* echo_main - take a request, reply with the same bytes to the queue named
 * before its first '|', in the transaction that acknowledges it. */
static void *echo_main(void *arg)
{
    echo_ctx *e = arg;
    pthread_setname_np(pthread_self(), "rr-echo");
    while (!atomic_load(&g_stop)) {
        gg_msg *m = NULL;
        if (gg_store_get_wait(e->st, REQ_QUEUE, 60000, 200, &m) != GG_OK)
            continue;
        char dest[GG_QUEUE_NAME_MAX] = "";
        const char *bar = memchr(m->data, '|', m->len < sizeof dest ? m->len : sizeof dest - 1);
        if (bar)
            memcpy(dest, m->data, (size_t)(bar - (const char *)m->data));
        if (!bar || gg_store_ack_put(e->st, m->id, GG_XMIT_QUEUE, dest, m->data, m->len, 0) != GG_OK)
            gg_store_ack(e->st, m->id);
        gg_msg_free(m);
    }
    return NULL;
}

/* utility_main - the child: store, listening channel, echo responders,
 * until SIGTERM. */
static int utility_main(int responders)
{
    char path[300], pki[300];
    gg_store *st = NULL;
    gg_channel *ch = NULL;
    sigset_t set;
    int sig;
    pthread_t th[64];
    echo_ctx ec;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    snprintf(path, sizeof path, "%s/utility.db", g_dir);
    snprintf(pki, sizeof pki, "%s/pki", g_dir);
    if (bench_site_start(path, 1, pki, "utility", "portal", g_port, &st, &ch) != GG_OK)
        return 1;
    ec.st = st;
    for (int i = 0; i < responders; i++)
        pthread_create(&th[i], NULL, echo_main, &ec);
    sigwait(&set, &sig);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < responders; i++)
        pthread_join(th[i], NULL);
    gg_channel_stop(ch);
    gg_store_close(st);
    return 0;
}

/* ---- portal side ---------------------------------------------------------- */

/* requester_main - round trips until stopped; latencies inside the window.
 * A reply is acknowledged in the transaction that puts the next request
 * (bench_put_request), the last one on its own after the stop: durable no
 * later than the next request, where RabbitMQ's basic.ack is fire-and-forget.
 * A round trip runs from that put to the reply in hand, as on RabbitMQ from
 * the publish to the reply delivered. */
static void *requester_main(void *arg)
{
    req_ctx *r = arg;
    char q[32], buf[RR_MSG_BYTES];
    int64_t prev = 0; /* the reply not yet acknowledged, 0 if none */
    pthread_setname_np(pthread_self(), "rr-req");
    snprintf(q, sizeof q, "r%d", r->idx);
    memset(buf, 'x', sizeof buf);
    memcpy(buf, q, strlen(q));
    buf[strlen(q)] = '|';
    while (!atomic_load(&g_stop)) {
        int64_t t0 = gg_mono_us();
        gg_msg *m = NULL;
        gg_err e = bench_put_request(r->st, &prev, REQ_QUEUE, buf, sizeof buf);
        if (e != GG_OK) {
            r->errors++;
            continue;
        }
        do {
            e = gg_store_get_wait(r->st, q, 60000, 1000, &m);
        } while (e == GG_EEMPTY && !atomic_load(&g_stop));
        if (e != GG_OK) {
            r->errors += e != GG_EEMPTY;
            continue;
        }
        if (m->len != sizeof buf || memcmp(m->data, buf, sizeof buf) != 0)
            r->errors++;
        prev = m->id;
        gg_msg_free(m);
        int64_t t1 = gg_mono_us();
        if (t0 >= g_measure_from && t1 <= g_measure_to && r->n < r->cap)
            r->lat[r->n++] = t1 - t0;
    }
    if (prev && gg_store_ack(r->st, prev) != GG_OK)
        r->errors++;
    return NULL;
}

/* sleep_until - until gg_mono_us() reaches t (few wake-ups: they count). */
static void sleep_until(int64_t t)
{
    for (int64_t now = gg_mono_us(); now < t; now = gg_mono_us())
        usleep((useconds_t)(t - now < 1000000 ? t - now : 1000000));
}

/* run_gridgate - conc requesters for secs seconds after the warm-up. */
static int run_gridgate(gg_store *st, int conc, double secs, rr_result *out)
{
    req_ctx rc[RR_MAX_CONC];
    pthread_t th[RR_MAX_CONC];
    int64_t *lat[RR_MAX_CONC];
    size_t n[RR_MAX_CONC];
    memset(rc, 0, sizeof rc);
    atomic_store(&g_stop, 0);
    g_measure_from = gg_mono_us() + WARMUP_US;
    g_measure_to = g_measure_from + (int64_t)(secs * 1e6);
    for (int i = 0; i < conc; i++) {
        rc[i].st = st;
        rc[i].idx = i;
        rc[i].cap = 400000 / (size_t)conc + 1000;
        rc[i].lat = malloc(rc[i].cap * sizeof(int64_t));
        if (!rc[i].lat)
            return -1;
        pthread_create(&th[i], NULL, requester_main, &rc[i]);
    }
    rr_usage u0, u1;
    sleep_until(g_measure_from);
    usage_now(&u0);
    sleep_until(g_measure_to);
    usage_now(&u1);
    atomic_store(&g_stop, 1);
    int64_t errors = 0;
    for (int i = 0; i < conc; i++) {
        pthread_join(th[i], NULL);
        lat[i] = rc[i].lat;
        n[i] = rc[i].n;
        errors += rc[i].errors;
    }
    rr_summarise(lat, n, conc, secs, out);
    out->errors = errors;
    /* The round trips finished inside the window: those counted. */
    print_cost(conc, &u0, &u1, out->count);
    for (int i = 0; i < conc; i++)
        free(rc[i].lat);
    /* Replies of requests cut off by the stop: take them out of the way. */
    for (int i = 0; i < conc; i++) {
        char q[32];
        gg_msg *m = NULL;
        snprintf(q, sizeof q, "r%d", i);
        while (gg_store_get_wait(st, q, 60000, 300, &m) == GG_OK) {
            gg_store_ack(st, m->id);
            gg_msg_free(m);
        }
    }
    return 0;
}

static void print_line(const char *sys, int conc, const rr_result *r)
{
    printf("rr system=%s concurrency=%d rt_per_s=%.0f p50_us=%lld p99_us=%lld round_trips=%lld "
           "errors=%lld\n", sys, conc, r->rt_per_s, (long long)r->p50_us, (long long)r->p99_us,
           (long long)r->count, (long long)r->errors);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    /* 64 echo responders: RabbitMQ's one responder keeps up to 100 requests
     * in flight (prefetch 100, confirms awaited asynchronously); ours are
     * synchronous, one request each, so they need threads to match. */
    int amqp_port = 0, responders = 64, only = 0;
    double secs = 5;
    int concs[] = { 1, 16, 64 };
    rr_result g[3], a[3];
    char path[300], pki[300];
    gg_store *st = NULL;
    gg_channel *ch = NULL;
    memset(g, 0, sizeof g);
    memset(a, 0, sizeof a);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--amqp-port") == 0 && i + 1 < argc)
            amqp_port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--secs") == 0 && i + 1 < argc)
            secs = atof(argv[++i]);
        else if (strcmp(argv[i], "--responders") == 0 && i + 1 < argc)
            responders = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_rr [--amqp-port P] [--secs S] [--responders N] "
                            "[--only C]\n");
            return 2;
        }
    }
    if (secs <= 0 || responders < 1 || responders > 64 || only < 0 || only > RR_MAX_CONC)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    gg_log_set_level(GG_LOG_WARN);
    snprintf(g_dir, sizeof g_dir, "/tmp/ggrr-XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    snprintf(path, sizeof path, "%s/pki", g_dir);
    if (gg_pki_init(path, NULL) != GG_OK) {
        fprintf(stderr, "bench_rr: pki init failed\n");
        return 1;
    }
    g_port = bench_free_port();
    pid_t child = fork();
    if (child == 0)
        _exit(utility_main(responders));
    g_child = child;
    snprintf(path, sizeof path, "%s/portal.db", g_dir);
    snprintf(pki, sizeof pki, "%s/pki", g_dir);
    if (bench_site_start(path, 0, pki, "portal", "utility", g_port, &st, &ch) != GG_OK)
        goto out;
    bench_wait_running(ch, 20000);
    printf("rr payload_bytes=%d secs=%.1f responders=%d dir=%s\n", RR_MSG_BYTES, secs,
           responders, g_dir);
    for (int i = 0; i < 3; i++) {
        gg_store_stats s0, s1;
        if (only > 0 && i > 0)
            break;
        if (only > 0)
            concs[i] = only;
        gg_store_get_stats(st, &s0);
        run_gridgate(st, concs[i], secs, &g[i]);
        gg_store_get_stats(st, &s1);
        print_line("gridgate", concs[i], &g[i]);
        /* The portal store's fsyncs and the calls they covered (warm-up and
         * drain included), per round trip measured. */
        double rts = g[i].count > 0 ? (double)g[i].count : 1.0;
        printf("rr store=portal concurrency=%d commits_per_rt=%.2f calls_per_commit=%.1f\n",
               concs[i], (double)(s1.commits - s0.commits) / rts,
               s1.commits > s0.commits
                   ? (double)(s1.batched - s0.batched) / (double)(s1.commits - s0.commits)
                   : 0.0);
        fflush(stdout);
    }
    gg_channel_stop(ch);
    ch = NULL;
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
    child = 0;
    if (only > 0)
        goto out;
    for (int i = 0; amqp_port > 0 && i < 3; i++) {
        if (rr_amqp_run(amqp_port, concs[i], secs, &a[i]) != 0)
            break;
        print_line("rabbitmq", concs[i], &a[i]);
    }
    printf("rr concurrency=1 gridgate_p50_us=%lld rabbitmq_p50_us=%lld\n", (long long)g[0].p50_us,
           (long long)a[0].p50_us);
    printf("rr concurrency=64 gridgate_rt_per_s=%.0f rabbitmq_rt_per_s=%.0f ratio=%.2f "
           "gridgate_p99_us=%lld rabbitmq_p99_us=%lld\n", g[2].rt_per_s, a[2].rt_per_s,
           a[2].rt_per_s > 0 ? g[2].rt_per_s / a[2].rt_per_s : 0.0, (long long)g[2].p99_us,
           (long long)a[2].p99_us);
out:
    gg_channel_stop(ch);
    if (child > 0) {
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
    }
    gg_store_close(st);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_rr: could not remove %s\n", g_dir);
    return 0;
}
