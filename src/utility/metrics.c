/* metrics.c - the utility role's lock-free counters and their text form. */
#include "utility/metrics.h"

#include <string.h>

static const char *const result_names[GG_UR_COUNT] = {
    "ok", "client_error", "server_error", "expired", "failed",
};

static const char *const reject_names[GG_UJ_COUNT] = {
    "malformed", "crypto", "not_for_us", "too_big", "wrong_kind", "wrong_sender", "stale",
    "future", "replay", "replay_full", "other",
};

static const int64_t bucket_us[GG_UM_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
    10000000,
};

/* gg_um_result_name - the label value of r. */
const char *gg_um_result_name(gg_um_result r)
{
    if ((int)r < 0 || r >= GG_UR_COUNT)
        return "unknown";
    return result_names[r];
}

/* gg_um_reject_name - the label value of j. */
const char *gg_um_reject_name(gg_um_reject j)
{
    if ((int)j < 0 || j >= GG_UJ_COUNT)
        return "unknown";
    return reject_names[j];
}

/* gg_umetrics_init - zero everything. */
void gg_umetrics_init(gg_umetrics *m)
{
    int i, r;

    pthread_mutex_init(&m->mu, NULL);
    atomic_init(&m->ntxn, 0);
    for (i = 0; i <= GG_UM_TXN_SLOTS; i++) {
        memset(m->txn[i].name, 0, sizeof m->txn[i].name);
        for (r = 0; r < GG_UR_COUNT; r++)
            atomic_init(&m->txn[i].count[r], 0);
        for (r = 0; r <= GG_UM_BUCKETS; r++)
            atomic_init(&m->txn[i].dur[r], 0);
        atomic_init(&m->txn[i].dur_sum_us, 0);
    }
    strcpy(m->txn[GG_UM_TXN_SLOTS].name, "other");
    for (i = 0; i < GG_UJ_COUNT; i++)
        atomic_init(&m->rejects[i], 0);
    atomic_init(&m->workers, 0);
    atomic_init(&m->inflight, 0);
    atomic_init(&m->inflight_max, 0);
    for (i = 0; i < GG_UP_COUNT; i++)
        atomic_init(&m->phase_us[i], 0);
}

/* gg_umetrics_destroy - release the mutex. */
void gg_umetrics_destroy(gg_umetrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

/* find_slot - the published slot named txn, or NULL. */
static gg_um_txn *find_slot(gg_umetrics *m, const char *txn)
{
    int n = atomic_load_explicit(&m->ntxn, memory_order_acquire);
    int i;

    for (i = 0; i < n; i++) {
        if (strcmp(m->txn[i].name, txn) == 0)
            return &m->txn[i];
    }
    return NULL;
}

/* label_safe - txn is non-empty, short and of [A-Za-z0-9._-] only. */
static int label_safe(const char *txn)
{
    size_t i;

    if (txn == NULL || txn[0] == '\0')
        return 0;
    for (i = 0; txn[i] != '\0'; i++) {
        char c = txn[i];

        if (i + 1 >= GG_ENV_TXN_MAX)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* slot_for - the slot of txn, adding one if there is room, else "other". */
static gg_um_txn *slot_for(gg_umetrics *m, const char *txn)
{
    gg_um_txn *s;
    int n;

    if (!label_safe(txn) || strcmp(txn, "other") == 0)
        return &m->txn[GG_UM_TXN_SLOTS];
    s = find_slot(m, txn);
    if (s != NULL)
        return s;
    pthread_mutex_lock(&m->mu);
    s = find_slot(m, txn);
    if (s == NULL) {
        n = atomic_load_explicit(&m->ntxn, memory_order_relaxed);
        if (n < GG_UM_TXN_SLOTS) {
            s = &m->txn[n];
            strcpy(s->name, txn);
            atomic_store_explicit(&m->ntxn, n + 1, memory_order_release);
        } else {
            s = &m->txn[GG_UM_TXN_SLOTS];
        }
    }
    pthread_mutex_unlock(&m->mu);
    return s;
}

/* gg_umetrics_request - count one answered request. */
void gg_umetrics_request(gg_umetrics *m, const char *txn, gg_um_result r)
{
    if ((int)r < 0 || r >= GG_UR_COUNT)
        return;
    atomic_fetch_add_explicit(&slot_for(m, txn)->count[r], 1, memory_order_relaxed);
}

/* gg_umetrics_duration - one observation of the duration histogram. */
void gg_umetrics_duration(gg_umetrics *m, const char *txn, int64_t us)
{
    gg_um_txn *s = slot_for(m, txn);
    int b = 0;

    while (b < GG_UM_BUCKETS && us > bucket_us[b])
        b++;
    atomic_fetch_add_explicit(&s->dur[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->dur_sum_us, us > 0 ? us : 0, memory_order_relaxed);
}

/* write_hist - the duration histogram of one txn slot, if it has any. */
static void write_hist(FILE *f, gg_um_txn *s)
{
    long long cum = 0;
    int b;

    for (b = 0; b <= GG_UM_BUCKETS; b++)
        cum += atomic_load(&s->dur[b]);
    if (cum == 0)
        return;
    cum = 0;
    for (b = 0; b < GG_UM_BUCKETS; b++) {
        cum += atomic_load(&s->dur[b]);
        fprintf(f, "gridgate_request_duration_seconds_bucket{txn=\"%s\",le=\"%g\"} %lld\n",
                s->name, (double)bucket_us[b] / 1e6, cum);
    }
    cum += atomic_load(&s->dur[GG_UM_BUCKETS]);
    fprintf(f, "gridgate_request_duration_seconds_bucket{txn=\"%s\",le=\"+Inf\"} %lld\n"
            "gridgate_request_duration_seconds_sum{txn=\"%s\"} %.6f\n"
            "gridgate_request_duration_seconds_count{txn=\"%s\"} %lld\n",
            s->name, cum, s->name, (double)atomic_load(&s->dur_sum_us) / 1e6, s->name, cum);
}

/* gg_umetrics_reject - count one rejected message. */
void gg_umetrics_reject(gg_umetrics *m, gg_um_reject why)
{
    if ((int)why < 0 || why >= GG_UJ_COUNT)
        why = GG_UJ_OTHER;
    atomic_fetch_add_explicit(&m->rejects[why], 1, memory_order_relaxed);
}

/* gg_umetrics_enter - one more worker in the backend; raise the maximum. */
void gg_umetrics_enter(gg_umetrics *m)
{
    int now = atomic_fetch_add(&m->inflight, 1) + 1;
    int max = atomic_load(&m->inflight_max);

    while (now > max && !atomic_compare_exchange_weak(&m->inflight_max, &max, now))
        ;
}

/* gg_umetrics_leave - one worker fewer in the backend. */
void gg_umetrics_leave(gg_umetrics *m)
{
    atomic_fetch_sub(&m->inflight, 1);
}

static const char *const phase_names[GG_UP_COUNT] = {
    "open", "replay", "check", "governor", "backend", "seal", "store",
};

/* gg_umetrics_phase - add us (if not negative) to phase p. */
void gg_umetrics_phase(gg_umetrics *m, gg_um_phase p, int64_t us)
{
    if ((int)p < 0 || p >= GG_UP_COUNT || us < 0)
        return;
    atomic_fetch_add(&m->phase_us[p], (long long)us);
}

/* gg_umetrics_phase_us - read one phase's summed microseconds. */
int64_t gg_umetrics_phase_us(gg_umetrics *m, gg_um_phase p)
{
    if ((int)p < 0 || p >= GG_UP_COUNT)
        return 0;
    return atomic_load(&m->phase_us[p]);
}

/* gg_umetrics_requests - read one request counter. */
int64_t gg_umetrics_requests(gg_umetrics *m, const char *txn, gg_um_result r)
{
    gg_um_txn *s;

    if ((int)r < 0 || r >= GG_UR_COUNT)
        return 0;
    if (strcmp(txn, "other") == 0)
        s = &m->txn[GG_UM_TXN_SLOTS];
    else
        s = find_slot(m, txn);
    return s != NULL ? (int64_t)atomic_load(&s->count[r]) : 0;
}

/* gg_umetrics_rejects - read one reject counter. */
int64_t gg_umetrics_rejects(gg_umetrics *m, gg_um_reject why)
{
    if ((int)why < 0 || why >= GG_UJ_COUNT)
        return 0;
    return (int64_t)atomic_load(&m->rejects[why]);
}

/* write_txn - the series of one txn slot, skipping a never-used "other". */
static void write_txn(FILE *f, gg_um_txn *s, int always)
{
    long long v[GG_UR_COUNT];
    long long sum = 0;
    int r;

    for (r = 0; r < GG_UR_COUNT; r++) {
        v[r] = atomic_load(&s->count[r]);
        sum += v[r];
    }
    if (!always && sum == 0)
        return;
    for (r = 0; r < GG_UR_COUNT; r++)
        fprintf(f, "gridgate_requests_total{txn=\"%s\",result=\"%s\"} %lld\n", s->name,
                result_names[r], v[r]);
}

/* gg_umetrics_write - the counters as Prometheus text to f. */
void gg_umetrics_write(gg_umetrics *m, FILE *f)
{
    int n = atomic_load_explicit(&m->ntxn, memory_order_acquire);
    int i;

    fputs("# HELP gridgate_requests_total Requests taken by the utility workers, by "
          "transaction code and result.\n"
          "# TYPE gridgate_requests_total counter\n", f);
    for (i = 0; i < n; i++)
        write_txn(f, &m->txn[i], 1);
    write_txn(f, &m->txn[GG_UM_TXN_SLOTS], 0);
    fputs("# HELP gridgate_request_duration_seconds Time from taking a request off the queue "
          "to storing its reply, by transaction code.\n"
          "# TYPE gridgate_request_duration_seconds histogram\n", f);
    for (i = 0; i < n; i++)
        write_hist(f, &m->txn[i]);
    write_hist(f, &m->txn[GG_UM_TXN_SLOTS]);
    fputs("# HELP gridgate_rejects_total Messages refused before any service ran, by reason.\n"
          "# TYPE gridgate_rejects_total counter\n", f);
    for (i = 0; i < GG_UJ_COUNT; i++)
        fprintf(f, "gridgate_rejects_total{reason=\"%s\"} %lld\n", reject_names[i],
                (long long)atomic_load(&m->rejects[i]));
    fprintf(f,
            "# HELP gridgate_workers Worker threads running.\n"
            "# TYPE gridgate_workers gauge\n"
            "gridgate_workers %d\n"
            "# HELP gridgate_backend_inflight Workers inside a service call now.\n"
            "# TYPE gridgate_backend_inflight gauge\n"
            "gridgate_backend_inflight %d\n"
            "# HELP gridgate_backend_inflight_max Most workers ever inside service calls at once.\n"
            "# TYPE gridgate_backend_inflight_max gauge\n"
            "gridgate_backend_inflight_max %d\n",
            atomic_load(&m->workers), atomic_load(&m->inflight), atomic_load(&m->inflight_max));
    fputs("# HELP gridgate_request_phase_seconds_total Workers' time on requests, by phase "
          "(open, replay, check: token and cache, governor: waiting for a slot, backend, seal, "
          "store: the reply's commit).\n"
          "# TYPE gridgate_request_phase_seconds_total counter\n", f);
    for (i = 0; i < GG_UP_COUNT; i++)
        fprintf(f, "gridgate_request_phase_seconds_total{phase=\"%s\"} %.6f\n", phase_names[i],
                (double)atomic_load(&m->phase_us[i]) / 1e6);
}
