/* crypto.c - `make bench-crypto`: the cost of message security.
 *
 * For each suite (intl, gm):
 *  1. seal of distinct 1 KiB requests on one thread for --micro seconds,
 *     then one open of each: seal_per_s, open_per_s (one thread: every
 *     envelope is a tree of one, so the verify cache never helps); then the
 *     same at --conc threads sealing at once (seals are signed together, as
 *     in production) and --conc threads each opening what it sealed: a
 *     "concurrent" line with the mean tree size;
 *  2. request/reply round trips at --conc concurrent requesters (default
 *     64) through two real queue stores and the TLS channel, the utility
 *     side in a separate process with echo responders (as bench/rr.c),
 *     twice: security off (1 KiB raw messages) and on (the requester seals
 *     the request; the responder opens it, checks freshness and replay in
 *     the replay tables of its queue store (no store call: the id is
 *     claimed in memory and written by the next commit, the ack with the
 *     reply at the latest, whose fsync makes it durable), seals the
 *     reply bound to the request hash; the requester opens the reply,
 *     checks it and the hash, and checks the reply in the replay tables of
 *     its own store, and acks it in the transaction that puts its next
 *     request, as bench/rr.c does) - what the roles do per message.
 * For every seal and open (and, in a secure rr, every replay check), the
 * thread's CPU time, wall time and voluntary context switches (getrusage
 * RUSAGE_THREAD) are summed: the "cost" lines give them per call (micro,
 * concurrent, and the rr requester and responder sides), with the mean
 * tree size of the seals; each rr run also prints the CPU both processes
 * used, in cores (cpu_cores).
 * Prints a line per measurement and, last for each suite:
 *   crypto suite=S seal_per_s=… open_per_s=… rr_secure_over_plain=…
 * Usage: bench_crypto [--secs S] [--micro S] [--conc N] [--responders N (64)]
 *                     [--suite intl|gm (default both)]
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "channel/channel.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "envelope/envelope.h"
#include "envelope/replay.h"
#include "pki/pki.h"
#include "store/store.h"
#include "site.h"

#define MSG_BYTES 1024
#define MAX_CONC 64
#define REQ_QUEUE "requests"
#define WARMUP_US 1000000

static char g_dir[256];
static int g_port;
static int g_secure;              /* this run: 1 security on */
static const char *g_suite;
static atomic_int g_stop;
static int64_t g_from, g_to;

/* keys_of - self's keys with peer's public keys, from g_dir/<suite>. */
static gg_env_keys *keys_of(const char *suite, const char *self, const char *peer)
{
    char sk[400], kk[400], ps[400], pk[400], err[256];
    gg_env_keys *k = NULL;

    snprintf(sk, sizeof sk, "%s/%s/%s.sign.key", g_dir, suite, self);
    snprintf(kk, sizeof kk, "%s/%s/%s.kem.key", g_dir, suite, self);
    snprintf(ps, sizeof ps, "%s/%s/%s.sign.pub", g_dir, suite, peer);
    snprintf(pk, sizeof pk, "%s/%s/%s.kem.pub", g_dir, suite, peer);
    gg_env_keys_cfg c = { suite, self, sk, kk, ps, pk };
    if (gg_env_keys_load(&c, &k, err, sizeof err) != GG_OK)
        fprintf(stderr, "bench_crypto: %s\n", err);
    return k;
}

/* replay_of - the replay store in the tables of st. */
static gg_replay *replay_of(gg_store *st)
{
    gg_replay_cfg c = { NULL, 300000, 30000, 10000000 };
    gg_replay *r = NULL;

    if (gg_replay_open(&c, st, &r) != GG_OK)
        return NULL;
    return r;
}

/* hdr_for - a header of kind to receiver. */
static void hdr_for(gg_env_hdr *h, int kind, const char *receiver)
{
    memset(h, 0, sizeof *h);
    h->kind = (uint8_t)kind;
    gg_new_id(h->msg_id);
    memcpy(h->corr_id, h->msg_id, 16);
    snprintf(h->txn, sizeof h->txn, "bench");
    snprintf(h->receiver, sizeof h->receiver, "%s", receiver);
    h->created_ms = gg_now_ms();
    h->expiry_ms = h->created_ms + 30000;
}

/* Cost of one kind of call (seal or open) summed over calls. */
typedef struct op_cost {
    int64_t n;
    int64_t cpu_ns, wall_ns;
    int64_t csw;                    /* voluntary context switches */
    int64_t trees;                  /* seal: sum of tree sizes */
} op_cost;

/* op_mark - what op_add subtracts: the thread's CPU time, wall time and
 * voluntary context switches now. */
typedef struct op_mark {
    int64_t cpu_ns, wall_ns, csw;
} op_mark;

static op_mark op_now(void)
{
    struct timespec ts;
    struct rusage ru;
    op_mark m;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    m.cpu_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    m.wall_ns = gg_mono_us() * 1000;
    getrusage(RUSAGE_THREAD, &ru);
    m.csw = ru.ru_nvcsw;
    return m;
}

/* op_add - one call begun at from into c. */
static void op_add(op_cost *c, op_mark from)
{
    op_mark to = op_now();

    c->n++;
    c->cpu_ns += to.cpu_ns - from.cpu_ns;
    c->wall_ns += to.wall_ns - from.wall_ns;
    c->csw += to.csw - from.csw;
}

/* op_merge - b into a. */
static void op_merge(op_cost *a, const op_cost *b)
{
    a->n += b->n;
    a->cpu_ns += b->cpu_ns;
    a->wall_ns += b->wall_ns;
    a->csw += b->csw;
    a->trees += b->trees;
}

/* op_print - one "cost" line for the seal, open and (rr only, else NULL)
 * replay check costs of a run, per call. */
static void op_print(const char *what, const op_cost *seal, const op_cost *open,
                     const op_cost *replay)
{
    double sn = seal->n > 0 ? (double)seal->n : 1, on = open->n > 0 ? (double)open->n : 1;

    printf("crypto suite=%s cost %s seal_cpu_us=%.1f seal_wall_us=%.1f seal_csw=%.2f "
           "tree=%.1f open_cpu_us=%.1f open_wall_us=%.1f open_csw=%.2f", g_suite, what,
           (double)seal->cpu_ns / 1e3 / sn, (double)seal->wall_ns / 1e3 / sn,
           (double)seal->csw / sn, (double)seal->trees / sn, (double)open->cpu_ns / 1e3 / on,
           (double)open->wall_ns / 1e3 / on, (double)open->csw / on);
    if (replay != NULL) {
        double rn = replay->n > 0 ? (double)replay->n : 1;

        printf(" replay_cpu_us=%.1f replay_wall_us=%.1f", (double)replay->cpu_ns / 1e3 / rn,
               (double)replay->wall_ns / 1e3 / rn);
    }
    printf("\n");
    fflush(stdout);
}

#define MICRO_MAX 65536          /* most envelopes one micro thread keeps */

/* micro_ctx - one thread of a micro run: what it sealed, opened once each. */
typedef struct micro_ctx {
    gg_env_keys *p, *u;
    double secs;
    gg_buf *env;
    size_t n, cap;
    op_cost seal, open;
    int failed;
} micro_ctx;

/* tree_size_of - the tree_size field of a sealed envelope (0 if unreadable). */
static size_t tree_size_of(const gg_buf *b)
{
    size_t o = 39;

    for (int i = 0; i < 3; i++) {
        if (o + 2 > b->len)
            return 0;
        o += 2 + ((size_t)b->data[o] << 8 | b->data[o + 1]);
    }
    o += 8 + 8 + 4 + GG_ENV_HASH_LEN;
    if (o >= b->len)
        return 0;
    o += 1 + b->data[o];
    if (o + 4 > b->len)
        return 0;
    o += 4 + ((size_t)b->data[o] << 24 | (size_t)b->data[o + 1] << 16 |
              (size_t)b->data[o + 2] << 8 | b->data[o + 3]);
    return o + 2 <= b->len ? ((size_t)b->data[o] << 8 | b->data[o + 1]) : 0;
}

/* micro_seal - seal distinct 1 KiB requests for secs, keeping each. */
static void *micro_seal(void *arg)
{
    micro_ctx *m = arg;
    uint8_t pt[MSG_BYTES];
    int64_t end = gg_mono_us() + (int64_t)(m->secs * 1e6);
    gg_env_hdr h;

    memset(pt, 'x', sizeof pt);
    while (gg_mono_us() < end && m->n < MICRO_MAX) {
        op_mark t;

        if (m->n == m->cap) {
            size_t cap = m->cap ? 2 * m->cap : 256;
            gg_buf *e = realloc(m->env, cap * sizeof *e);

            if (e == NULL)
                break;
            m->env = e;
            m->cap = cap;
        }
        m->env[m->n] = (gg_buf)GG_BUF_INIT(0);
        hdr_for(&h, GG_ENV_REQUEST, "utility");
        t = op_now();
        if (gg_env_seal(m->p, &h, pt, sizeof pt, &m->env[m->n]) != GG_OK) {
            m->failed = 1;
            break;
        }
        op_add(&m->seal, t);
        m->seal.trees += (int64_t)tree_size_of(&m->env[m->n]);
        m->n++;
    }
    return NULL;
}

/* micro_open - open each envelope this thread sealed, once, in order (as
 * a receiver gets them). */
static void *micro_open(void *arg)
{
    micro_ctx *m = arg;
    uint8_t *out = NULL;
    size_t outlen;
    gg_env_hdr got;

    for (size_t i = 0; i < m->n; i++) {
        op_mark t = op_now();

        if (gg_env_open(m->u, m->env[i].data, m->env[i].len, &got, &out, &outlen) != GG_OK) {
            m->failed = 1;
            break;
        }
        op_add(&m->open, t);
        free(out);
    }
    return NULL;
}

/* micro - seal and open per second of 1 KiB at threads threads; *tree:
 * mean tree size of the seals. Every envelope is distinct and opened once. */
static void micro(const char *suite, double secs, int threads, double *seal_ps, double *open_ps,
                  double *tree)
{
    gg_env_keys *p = keys_of(suite, "portal", "utility"), *u = keys_of(suite, "utility", "portal");
    micro_ctx *m = calloc((size_t)threads, sizeof *m);
    pthread_t th[MAX_CONC];
    op_cost seal = { 0 }, open = { 0 };
    int64_t t0;
    int failed = 0;

    *seal_ps = *open_ps = *tree = 0;
    if (p == NULL || u == NULL || m == NULL)
        goto done;
    for (int i = 0; i < threads; i++)
        m[i] = (micro_ctx){ .p = p, .u = u, .secs = secs };
    t0 = gg_mono_us();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, micro_seal, &m[i]);
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        op_merge(&seal, &m[i].seal);
        failed |= m[i].failed;
    }
    *seal_ps = (double)seal.n * 1e6 / (double)(gg_mono_us() - t0);
    *tree = seal.n > 0 ? (double)seal.trees / (double)seal.n : 0;
    t0 = gg_mono_us();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, micro_open, &m[i]);
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        op_merge(&open, &m[i].open);
        failed |= m[i].failed;
    }
    *open_ps = (double)open.n * 1e6 / (double)(gg_mono_us() - t0);
    op_print(threads > 1 ? "concurrent" : "micro", &seal, &open, NULL);
    if (failed)
        fprintf(stderr, "bench_crypto: a micro seal or open failed\n");
done:
    for (int i = 0; m != NULL && i < threads; i++) {
        for (size_t j = 0; j < m[i].n; j++)
            gg_buf_free(&m[i].env[j]);
        free(m[i].env);
    }
    free(m);
    gg_env_keys_free(p);
    gg_env_keys_free(u);
}

/* ---- utility side (child process) --------------------------------------- */

typedef struct echo_ctx {
    gg_store *st;
    gg_env_keys *k;
    gg_replay *rp;
} echo_ctx;

/* One responder thread: the shared context and its own costs. */
typedef struct echo_thr {
    echo_ctx *e;
    op_cost seal, open, replay;
} echo_thr;

/* echo_one - the reply to m into out and its destination; -1 to drop. */
static int echo_one(echo_thr *t, const gg_msg *m, gg_buf *out, char dest[GG_QUEUE_NAME_MAX])
{
    echo_ctx *e = t->e;
    const uint8_t *data = m->data;
    size_t len = m->len;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    gg_env_hdr h, rh;
    gg_replay_verdict v;
    const char *bar;
    int rc = -1;

    if (g_secure) {
        op_mark t0 = op_now();

        if (gg_env_open(e->k, m->data, m->len, &h, &pt, &ptlen) != GG_OK)
            return -1;
        op_add(&t->open, t0);
        t0 = op_now();
        if (gg_replay_check(e->rp, h.msg_id, h.created_ms, m->id, gg_now_ms(), &v) != GG_OK ||
            (v != GG_RV_FRESH && v != GG_RV_REDELIVERY))
            goto out;
        op_add(&t->replay, t0);
        data = pt;
        len = ptlen;
    }
    bar = memchr(data, '|', len < GG_QUEUE_NAME_MAX ? len : GG_QUEUE_NAME_MAX - 1);
    if (bar == NULL)
        goto out;
    memcpy(dest, data, (size_t)(bar - (const char *)data));
    dest[bar - (const char *)data] = '\0';
    if (g_secure) {
        op_mark t0;

        hdr_for(&rh, GG_ENV_REPLY, "portal");
        memcpy(rh.corr_id, h.msg_id, 16);
        if (gg_env_hash(e->k, m->data, m->len, rh.req_hash) != GG_OK)
            goto out;
        t0 = op_now();
        if (gg_env_seal(e->k, &rh, data, len, out) != GG_OK)
            goto out;
        op_add(&t->seal, t0);
        t->seal.trees += (int64_t)tree_size_of(out);
    } else if (gg_buf_append(out, data, len) != GG_OK) {
        goto out;
    }
    rc = 0;
out:
    free(pt);
    return rc;
}

static void *echo_main(void *arg)
{
    echo_thr *t = arg;
    echo_ctx *e = t->e;
    gg_buf out = GG_BUF_INIT(0);

    while (!atomic_load(&g_stop)) {
        char dest[GG_QUEUE_NAME_MAX];
        gg_msg *m = NULL;

        if (gg_store_get_wait(e->st, REQ_QUEUE, 60000, 200, &m) != GG_OK)
            continue;
        gg_buf_reset(&out);
        if (echo_one(t, m, &out, dest) != 0 ||
            gg_store_ack_put(e->st, m->id, GG_XMIT_QUEUE, dest, out.data, out.len, 0) != GG_OK)
            gg_store_ack(e->st, m->id);
        gg_msg_free(m);
    }
    gg_buf_free(&out);
    return NULL;
}

static int utility_main(int responders)
{
    char path[400], pki[400];
    gg_store *st = NULL;
    gg_channel *ch = NULL;
    pthread_t th[64];
    echo_thr et[64];
    op_cost seal = { 0 }, open = { 0 }, replay = { 0 };
    echo_ctx ec;
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    snprintf(path, sizeof path, "%s/utility-%s-%d.db", g_dir, g_suite, g_secure);
    snprintf(pki, sizeof pki, "%s/intl", g_dir);
    ec.k = keys_of(g_suite, "utility", "portal");
    if (ec.k == NULL ||
        bench_site_start(path, 1, pki, "utility", "portal", g_port, &st, &ch) != GG_OK)
        return 1;
    ec.rp = replay_of(st);
    if (ec.rp == NULL)
        return 1;
    ec.st = st;
    for (int i = 0; i < responders; i++) {
        et[i] = (echo_thr){ .e = &ec };
        pthread_create(&th[i], NULL, echo_main, &et[i]);
    }
    sigwait(&set, &sig);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < responders; i++) {
        pthread_join(th[i], NULL);
        op_merge(&seal, &et[i].seal);
        op_merge(&open, &et[i].open);
        op_merge(&replay, &et[i].replay);
    }
    if (g_secure)
        op_print("rr_responder", &seal, &open, &replay);
    gg_channel_stop(ch);
    gg_replay_close(ec.rp);
    gg_store_close(st);
    gg_env_keys_free(ec.k);
    return 0;
}

/* ---- portal side ---------------------------------------------------------- */

typedef struct req_ctx {
    gg_store *st;
    gg_env_keys *k;
    gg_replay *rp;
    int idx;
    int64_t n, errors;
    op_cost seal, open, replay;
} req_ctx;

/* check_reply - open and check a secure reply to the request in req. */
static int check_reply(req_ctx *r, const gg_msg *m, const gg_buf *req, const uint8_t *want,
                       size_t wantlen)
{
    uint8_t hash[GG_ENV_HASH_LEN], *pt = NULL;
    size_t ptlen = 0;
    gg_env_hdr h;
    gg_replay_verdict v;
    op_mark t0 = op_now();
    int ok;

    if (gg_env_open(r->k, m->data, m->len, &h, &pt, &ptlen) != GG_OK)
        return -1;
    op_add(&r->open, t0);
    ok = gg_env_hash(r->k, req->data, req->len, hash) == GG_OK &&
         memcmp(hash, h.req_hash, sizeof hash) == 0 && ptlen == wantlen &&
         memcmp(pt, want, wantlen) == 0;
    t0 = op_now();
    ok = ok && gg_replay_check(r->rp, h.msg_id, h.created_ms, m->id, gg_now_ms(), &v) == GG_OK &&
         v == GG_RV_FRESH;
    op_add(&r->replay, t0);
    free(pt);
    return ok ? 0 : -1;
}

/* requester_main - round trips until stopped. A reply is acknowledged in
 * the transaction that puts the next request, as in bench/rr.c (its
 * replay record goes with that commit). */
static void *requester_main(void *arg)
{
    req_ctx *r = arg;
    int64_t prev = 0; /* the reply not yet acknowledged, 0 if none */
    char q[32];
    uint8_t buf[MSG_BYTES];
    gg_buf env = GG_BUF_INIT(0);
    gg_env_hdr h;

    snprintf(q, sizeof q, "r%d", r->idx);
    memset(buf, 'x', sizeof buf);
    memcpy(buf, q, strlen(q));
    buf[strlen(q)] = '|';
    while (!atomic_load(&g_stop)) {
        int64_t t0 = gg_mono_us();
        const void *out = buf;
        size_t outlen = sizeof buf;
        gg_msg *m = NULL;
        gg_err e;

        if (g_secure) {
            op_mark t1;

            hdr_for(&h, GG_ENV_REQUEST, "utility");
            gg_buf_reset(&env);
            t1 = op_now();
            if (gg_env_seal(r->k, &h, buf, sizeof buf, &env) != GG_OK) {
                r->errors++;
                continue;
            }
            op_add(&r->seal, t1);
            r->seal.trees += (int64_t)tree_size_of(&env);
            out = env.data;
            outlen = env.len;
        }
        e = bench_put_request(r->st, &prev, REQ_QUEUE, out, outlen);
        if (e != GG_OK) {
            r->errors++;
            continue;
        }
        do {
            e = gg_store_get_wait(r->st, q, 60000, 1000, &m);
        } while (e == GG_EEMPTY && !atomic_load(&g_stop));
        if (e != GG_OK)
            continue;
        if (g_secure ? check_reply(r, m, &env, buf, sizeof buf) != 0
                     : (m->len != sizeof buf || memcmp(m->data, buf, sizeof buf) != 0))
            r->errors++;
        prev = m->id;
        gg_msg_free(m);
        if (t0 >= g_from && gg_mono_us() <= g_to)
            r->n++;
    }
    if (prev && gg_store_ack(r->st, prev) != GG_OK)
        r->errors++;
    gg_buf_free(&env);
    return NULL;
}

/* cpu_ns - CPU time (user + system) of this process and its waited-for
 * children so far. */
static int64_t cpu_ns(void)
{
    struct rusage a, b;

    getrusage(RUSAGE_SELF, &a);
    getrusage(RUSAGE_CHILDREN, &b);
    return ((int64_t)a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec +
            b.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec +
            b.ru_stime.tv_usec) * 1000;
}

/* rr - one round-trip run (security g_secure); round trips per second.
 * Prints the CPU the run used (both processes, start to stop) in cores. */
static double rr(int conc, double secs, int responders, int64_t *errors)
{
    char path[400], pki[400];
    gg_store *st = NULL;
    gg_channel *ch = NULL;
    req_ctx rc[MAX_CONC];
    pthread_t th[MAX_CONC];
    gg_env_keys *k = NULL;
    gg_replay *rp = NULL;
    op_cost seal = { 0 }, open = { 0 }, replay = { 0 };
    int64_t total = 0, cpu0 = cpu_ns(), wall0 = gg_mono_us();
    pid_t child;

    *errors = 0;
    atomic_store(&g_stop, 0);
    g_port = bench_free_port();
    child = fork();
    if (child == 0)
        _exit(utility_main(responders));
    snprintf(path, sizeof path, "%s/portal-%s-%d.db", g_dir, g_suite, g_secure);
    snprintf(pki, sizeof pki, "%s/intl", g_dir);
    k = keys_of(g_suite, "portal", "utility");
    if (k == NULL ||
        bench_site_start(path, 0, pki, "portal", "utility", g_port, &st, &ch) != GG_OK)
        goto out;
    rp = replay_of(st);
    if (rp == NULL)
        goto out;
    bench_wait_running(ch, 20000);
    memset(rc, 0, sizeof rc);
    g_from = gg_mono_us() + WARMUP_US;
    g_to = g_from + (int64_t)(secs * 1e6);
    for (int i = 0; i < conc; i++) {
        rc[i] = (req_ctx){ .st = st, .k = k, .rp = rp, .idx = i };
        pthread_create(&th[i], NULL, requester_main, &rc[i]);
    }
    while (gg_mono_us() < g_to)
        usleep(50000);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < conc; i++) {
        pthread_join(th[i], NULL);
        total += rc[i].n;
        *errors += rc[i].errors;
        op_merge(&seal, &rc[i].seal);
        op_merge(&open, &rc[i].open);
        op_merge(&replay, &rc[i].replay);
    }
    if (g_secure)
        op_print("rr_requester", &seal, &open, &replay);
out:
    if (ch != NULL)
        gg_channel_stop(ch);
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
    gg_replay_close(rp);
    gg_store_close(st);
    gg_env_keys_free(k);
    printf("crypto suite=%s rr secure=%d cpu_cores=%.2f\n", g_suite, g_secure,
           (double)(cpu_ns() - cpu0) / 1e3 / (double)(gg_mono_us() - wall0));
    fflush(stdout);
    return (double)total / secs;
}

int main(int argc, char **argv)
{
    static const char *const suites[] = { "intl", "gm" };
    double secs = 5, msecs = 2;
    int conc = 64, responders = 64;   /* as bench_rr: one in-flight request each */
    const char *only = NULL;
    char path[400];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--secs") == 0 && i + 1 < argc)
            secs = atof(argv[++i]);
        else if (strcmp(argv[i], "--micro") == 0 && i + 1 < argc)
            msecs = atof(argv[++i]);
        else if (strcmp(argv[i], "--conc") == 0 && i + 1 < argc)
            conc = atoi(argv[++i]);
        else if (strcmp(argv[i], "--responders") == 0 && i + 1 < argc)
            responders = atoi(argv[++i]);
        else if (strcmp(argv[i], "--suite") == 0 && i + 1 < argc &&
                 (strcmp(argv[i + 1], "intl") == 0 || strcmp(argv[i + 1], "gm") == 0))
            only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_crypto [--secs S] [--micro S] [--conc N] "
                            "[--responders N] [--suite intl|gm]\n");
            return 2;
        }
    }
    if (secs <= 0 || msecs <= 0 || conc < 1 || conc > MAX_CONC || responders < 1 ||
        responders > 64)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    gg_log_set_level(GG_LOG_WARN);
    snprintf(g_dir, sizeof g_dir, "/tmp/ggcrypto-XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    for (size_t s = 0; s < 2; s++) {
        gg_pki_opts o = { suites[s], "portal", "utility", 30 };

        snprintf(path, sizeof path, "%s/%s", g_dir, suites[s]);
        if (gg_pki_init(path, &o) != GG_OK) {
            fprintf(stderr, "bench_crypto: pki init %s failed\n", suites[s]);
            return 1;
        }
    }
    printf("crypto payload_bytes=%d conc=%d secs=%.1f responders=%d dir=%s\n", MSG_BYTES, conc,
           secs, responders, g_dir);
    for (size_t s = 0; s < 2; s++) {
        double seal_ps, open_ps, cseal_ps, copen_ps, tree, plain, secure;
        int64_t e_plain, e_secure;

        if (only != NULL && strcmp(only, suites[s]) != 0)
            continue;
        g_suite = suites[s];
        micro(g_suite, msecs, 1, &seal_ps, &open_ps, &tree);
        printf("crypto suite=%s micro seal_per_s=%.0f open_per_s=%.0f\n", g_suite, seal_ps,
               open_ps);
        micro(g_suite, msecs, conc, &cseal_ps, &copen_ps, &tree);
        printf("crypto suite=%s concurrent threads=%d seal_per_s=%.0f open_per_s=%.0f "
               "mean_tree=%.1f\n", g_suite, conc, cseal_ps, copen_ps, tree);
        fflush(stdout);
        g_secure = 0;
        plain = rr(conc, secs, responders, &e_plain);
        g_secure = 1;
        secure = rr(conc, secs, responders, &e_secure);
        printf("crypto suite=%s rr plain_rt_per_s=%.0f secure_rt_per_s=%.0f errors=%lld/%lld\n",
               g_suite, plain, secure, (long long)e_plain, (long long)e_secure);
        printf("crypto suite=%s seal_per_s=%.0f open_per_s=%.0f rr_secure_over_plain=%.2f\n",
               g_suite, seal_ps, open_ps, plain > 0 ? secure / plain : 0.0);
        fflush(stdout);
    }
    snprintf(path, sizeof path, "rm -rf '%s'", g_dir);
    if (system(path) != 0)
        return 1;
    return 0;
}
