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
 *     the replay tables of its queue store (committed without an fsync of
 *     their own; the ack with the reply makes them durable), seals the
 *     reply bound to the request hash; the requester opens the reply,
 *     checks it and the hash, and checks the reply in the replay tables of
 *     its own store before acking it) - what the roles do per message.
 * Prints a line per measurement and, last for each suite:
 *   crypto suite=S seal_per_s=… open_per_s=… rr_secure_over_plain=…
 * Usage: bench_crypto [--secs S] [--micro S] [--conc N] [--responders N (64)]
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

#define MICRO_MAX 65536          /* most envelopes one micro thread keeps */

/* micro_ctx - one thread of a micro run: what it sealed, opened once each. */
typedef struct micro_ctx {
    gg_env_keys *p, *u;
    double secs;
    gg_buf *env;
    size_t n, cap;
    int64_t trees;                  /* sum of the tree sizes of its seals */
    int64_t opens;
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
        if (gg_env_seal(m->p, &h, pt, sizeof pt, &m->env[m->n]) != GG_OK) {
            m->failed = 1;
            break;
        }
        m->trees += (int64_t)tree_size_of(&m->env[m->n]);
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
        if (gg_env_open(m->u, m->env[i].data, m->env[i].len, &got, &out, &outlen) != GG_OK) {
            m->failed = 1;
            break;
        }
        free(out);
        m->opens++;
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
    int64_t t0, seals = 0, opens = 0, trees = 0;
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
        seals += (int64_t)m[i].n;
        trees += m[i].trees;
        failed |= m[i].failed;
    }
    *seal_ps = (double)seals * 1e6 / (double)(gg_mono_us() - t0);
    *tree = seals > 0 ? (double)trees / (double)seals : 0;
    t0 = gg_mono_us();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, micro_open, &m[i]);
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        opens += m[i].opens;
        failed |= m[i].failed;
    }
    *open_ps = (double)opens * 1e6 / (double)(gg_mono_us() - t0);
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

/* echo_one - the reply to m into out and its destination; -1 to drop. */
static int echo_one(echo_ctx *e, const gg_msg *m, gg_buf *out, char dest[GG_QUEUE_NAME_MAX])
{
    const uint8_t *data = m->data;
    size_t len = m->len;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    gg_env_hdr h, rh;
    gg_replay_verdict v;
    const char *bar;
    int rc = -1;

    if (g_secure) {
        if (gg_env_open(e->k, m->data, m->len, &h, &pt, &ptlen) != GG_OK)
            return -1;
        if (gg_replay_check(e->rp, h.msg_id, h.created_ms, m->id, gg_now_ms(), &v) != GG_OK ||
            (v != GG_RV_FRESH && v != GG_RV_REDELIVERY))
            goto out;
        data = pt;
        len = ptlen;
    }
    bar = memchr(data, '|', len < GG_QUEUE_NAME_MAX ? len : GG_QUEUE_NAME_MAX - 1);
    if (bar == NULL)
        goto out;
    memcpy(dest, data, (size_t)(bar - (const char *)data));
    dest[bar - (const char *)data] = '\0';
    if (g_secure) {
        hdr_for(&rh, GG_ENV_REPLY, "portal");
        memcpy(rh.corr_id, h.msg_id, 16);
        if (gg_env_hash(e->k, m->data, m->len, rh.req_hash) != GG_OK ||
            gg_env_seal(e->k, &rh, data, len, out) != GG_OK)
            goto out;
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
    echo_ctx *e = arg;
    gg_buf out = GG_BUF_INIT(0);

    while (!atomic_load(&g_stop)) {
        char dest[GG_QUEUE_NAME_MAX];
        gg_msg *m = NULL;

        if (gg_store_get_wait(e->st, REQ_QUEUE, 60000, 200, &m) != GG_OK)
            continue;
        gg_buf_reset(&out);
        if (echo_one(e, m, &out, dest) != 0 ||
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
    for (int i = 0; i < responders; i++)
        pthread_create(&th[i], NULL, echo_main, &ec);
    sigwait(&set, &sig);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < responders; i++)
        pthread_join(th[i], NULL);
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
} req_ctx;

/* check_reply - open and check a secure reply to the request in req. */
static int check_reply(req_ctx *r, const gg_msg *m, const gg_buf *req, const uint8_t *want,
                       size_t wantlen)
{
    uint8_t hash[GG_ENV_HASH_LEN], *pt = NULL;
    size_t ptlen = 0;
    gg_env_hdr h;
    gg_replay_verdict v;
    int ok;

    if (gg_env_open(r->k, m->data, m->len, &h, &pt, &ptlen) != GG_OK)
        return -1;
    ok = gg_env_hash(r->k, req->data, req->len, hash) == GG_OK &&
         memcmp(hash, h.req_hash, sizeof hash) == 0 && ptlen == wantlen &&
         memcmp(pt, want, wantlen) == 0 &&
         gg_replay_check(r->rp, h.msg_id, h.created_ms, m->id, gg_now_ms(), &v) == GG_OK &&
         v == GG_RV_FRESH;
    free(pt);
    return ok ? 0 : -1;
}

static void *requester_main(void *arg)
{
    req_ctx *r = arg;
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
            hdr_for(&h, GG_ENV_REQUEST, "utility");
            gg_buf_reset(&env);
            if (gg_env_seal(r->k, &h, buf, sizeof buf, &env) != GG_OK) {
                r->errors++;
                continue;
            }
            out = env.data;
            outlen = env.len;
        }
        if (gg_store_put(r->st, GG_XMIT_QUEUE, REQ_QUEUE, out, outlen, 0, NULL) != GG_OK) {
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
        gg_store_ack(r->st, m->id);
        gg_msg_free(m);
        if (t0 >= g_from && gg_mono_us() <= g_to)
            r->n++;
    }
    gg_buf_free(&env);
    return NULL;
}

/* rr - one round-trip run (security g_secure); round trips per second. */
static double rr(int conc, double secs, int responders, int64_t *errors)
{
    char path[400], pki[400];
    gg_store *st = NULL;
    gg_channel *ch = NULL;
    req_ctx rc[MAX_CONC];
    pthread_t th[MAX_CONC];
    gg_env_keys *k = NULL;
    gg_replay *rp = NULL;
    int64_t total = 0;
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
        rc[i] = (req_ctx){ st, k, rp, i, 0, 0 };
        pthread_create(&th[i], NULL, requester_main, &rc[i]);
    }
    while (gg_mono_us() < g_to)
        usleep(50000);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < conc; i++) {
        pthread_join(th[i], NULL);
        total += rc[i].n;
        *errors += rc[i].errors;
    }
out:
    if (ch != NULL)
        gg_channel_stop(ch);
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
    gg_replay_close(rp);
    gg_store_close(st);
    gg_env_keys_free(k);
    return (double)total / secs;
}

int main(int argc, char **argv)
{
    static const char *const suites[] = { "intl", "gm" };
    double secs = 5, msecs = 2;
    int conc = 64, responders = 64;   /* as bench_rr: one in-flight request each */
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
        else {
            fprintf(stderr, "usage: bench_crypto [--secs S] [--micro S] [--conc N] "
                            "[--responders N]\n");
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
