/* prepjob.c - the data preparation schedule (prepjob.h). */
#include "utility/prepjob.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "marketing/marketing.h"

struct gg_prepjob {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int64_t interval_s;
    gg_mkt *m;
};

/* job_main - prepare, sleep, repeat. */
static void *job_main(void *arg)
{
    gg_prepjob *j = arg;

    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        struct timespec dl;
        int64_t rows = 0, t0 = gg_mono_us();
        gg_err e;

        pthread_mutex_unlock(&j->mu);
        e = gg_mkt_prepare_usage(j->m, &rows);
        if (e == GG_OK)
            gg_info("prepare", "msg=\"usage summaries rebuilt\" rows=%lld ms=%lld",
                    (long long)rows, (long long)((gg_mono_us() - t0) / 1000));
        else
            gg_warn("prepare", "msg=\"usage summaries not rebuilt\" err=%s", gg_errname(e));
        pthread_mutex_lock(&j->mu);
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += (time_t)j->interval_s;
        while (!j->stop && pthread_cond_timedwait(&j->cv, &j->mu, &dl) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

gg_err gg_prepjob_start(const gg_config *cfg, gg_prepjob **out)
{
    int64_t iv = gg_config_int(cfg, "utility.prepare_interval_s");
    const char *pg = gg_config_str(cfg, "utility.marketing_pg");
    pthread_condattr_t ca;
    gg_prepjob *j;
    gg_err e;

    *out = NULL;
    if (iv <= 0)
        return GG_OK;
    j = calloc(1, sizeof *j);
    if (!j)
        return GG_ENOMEM;
    j->interval_s = iv;
    if (pg && pg[0])
        e = gg_mkt_open_pg(pg, gg_config_str(cfg, "utility.marketing_queries"), &j->m);
    else
        e = gg_mkt_open(gg_config_str(cfg, "utility.marketing_db"), &j->m);
    if (e != GG_OK) {
        free(j);
        return e;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&j->th, NULL, job_main, j) != 0) {
        gg_mkt_close(j->m);
        free(j);
        return GG_ENOMEM;
    }
    gg_info("prepare", "msg=\"data preparation scheduled\" interval_s=%lld", (long long)iv);
    *out = j;
    return GG_OK;
}

void gg_prepjob_stop(gg_prepjob *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stop = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->th, NULL);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    gg_mkt_close(j->m);
    free(j);
}
