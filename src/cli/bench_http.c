/* bench_http.c - `gridgate bench http`: drive the portal API as a
 * population of bound citizens and measure it.
 *
 *   gridgate bench http --url http://HOST:PORT --db MARKETING.db
 *        [--concurrency C] [--duration S] [--mix query=80,usage=15,pay=5]
 *        [--population N] [--same-range]
 *
 * First binds N active accounts of the marketing database (their holder
 * name and phone digits are the proof), C at a time. Then C keep-alive
 * connections (libevent, one loop) each send requests back to back for S
 * seconds, chosen by the mix: a bill query, a usage query (by month) or a
 * payment of an unpaid bill of the account (each bill at most once, a
 * fresh payment_ref). Query ranges vary per request unless --same-range
 * (so a cache does not answer everything). A progress line goes to stderr
 * every second. At the end: throughput, latency p50/p90/p99/p99.9, answers
 * by status code, and every payment's outcome: one answered 2xx must be in
 * the payments table (read from --db when it is the SQLite database the
 * utility uses), one answered otherwise is looked up by its transaction id
 * (GET /api/v1/transactions/{id}) after the run. Exit status 1 if a
 * payment is missing or doubled, or nothing succeeded.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/clock.h"

#define MAX_CONC 4096
#define MAX_POP 100000
#define MAX_CODES 600

typedef struct acct {
    char no[33];
    char name[64];
    char last4[5];
    char token[600];
    char bill[40];          /* an unpaid bill to pay, "" if none (or paid) */
    long long amount;
} acct;

typedef struct pay_rec {
    char ref[48];
    char account[33];
    char txid[40];
    int status;
} pay_rec;

typedef struct bench {
    struct event_base *base;
    char host[256];
    int port;
    acct *pop;
    int npop;
    int conc;
    int mix[3];             /* query, usage, pay: cumulative percent */
    int same_range;
    int phase;              /* 0 bind, 1 run */
    int64_t t_end_us, t_start_us;
    int bind_next, bind_done, bind_ok;
    long long bind_codes[MAX_CODES]; /* failed bindings by status (0: no answer) */
    char bind_why[160];     /* the first failed binding's answer, for the report */
    int idle;               /* clients done after the run's end */
    /* results */
    int64_t *lat;           /* microseconds of answered requests */
    size_t nlat, caplat;
    long long codes[MAX_CODES];
    long long conn_errors;
    long long win_n, win_err;
    pay_rec *pays;
    size_t npays, cappays;
    unsigned long long rnd;
    struct event *tick;
} bench;

typedef struct client {
    bench *b;
    struct evhttp_connection *conn;
    int idx;
    int64_t start_us;
    int kind;               /* 0 query, 1 usage, 2 pay, 3 bind */
    int who;
    int pay_slot;
} client;

/* rnd - xorshift64*. */
static unsigned long long rnd(bench *b)
{
    b->rnd ^= b->rnd >> 12;
    b->rnd ^= b->rnd << 25;
    b->rnd ^= b->rnd >> 27;
    return b->rnd * 2685821657736338717ULL;
}

static void issue(client *c);

/* record - one answered request. */
static void record(bench *b, int64_t us, int code)
{
    if (b->nlat == b->caplat) {
        size_t n = b->caplat ? b->caplat * 2 : 65536;
        int64_t *v = realloc(b->lat, n * sizeof *v);
        if (!v)
            return;
        b->lat = v;
        b->caplat = n;
    }
    b->lat[b->nlat++] = us;
    if (code > 0 && code < MAX_CODES)
        b->codes[code]++;
    b->win_n++;
    if (code >= 400)
        b->win_err++;
}

/* body_str - the response body as a NUL-ended string (static, cut). */
static const char *body_str(struct evhttp_request *req, char *buf, size_t sz)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);

    if (n >= sz)
        n = sz - 1;
    evbuffer_copyout(in, buf, n);
    buf[n] = '\0';
    return buf;
}

/* json_field - the string value of "key" in a flat JSON text, into out. */
static int json_field(const char *text, const char *key, char *out, size_t outsz)
{
    char pat[64];
    const char *p, *q;

    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    p = strstr(text, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    q = strchr(p, '"');
    if (!q || (size_t)(q - p) >= outsz)
        return -1;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return 0;
}

/* on_done - a response (or a failure) for client c. */
static void on_done(struct evhttp_request *req, void *arg)
{
    client *c = arg;
    bench *b = c->b;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    int64_t now = gg_mono_us();
    char buf[4096];

    if (code == 0) {
        b->conn_errors++;
        b->win_err++;
        evhttp_connection_free(c->conn);
        c->conn = NULL;
    }
    if (c->kind == 3) {
        const char *body = req ? body_str(req, buf, sizeof buf) : "";

        b->bind_done++;
        if (code == 201 && json_field(body, "binding_token", b->pop[c->who].token,
                                      sizeof b->pop[c->who].token) == 0) {
            b->bind_ok++;
        } else {
            b->bind_codes[code >= 0 && code < MAX_CODES ? code : 0]++;
            if (b->bind_why[0] == '\0' &&
                (size_t)snprintf(b->bind_why, sizeof b->bind_why, "%d %s", code,
                                 code ? body : "no answer") >= sizeof b->bind_why)
                memcpy(b->bind_why + sizeof b->bind_why - 4, "...", 4);  /* cut */
        }
    } else if (b->phase == 1) {
        record(b, now - c->start_us, code);
        if (c->kind == 2 && c->pay_slot >= 0) {
            pay_rec *p = &b->pays[c->pay_slot];
            const char *tx = req ? evhttp_find_header(evhttp_request_get_input_headers(req),
                                                       "X-Transaction-Id") : NULL;
            p->status = code;
            if (tx)
                snprintf(p->txid, sizeof p->txid, "%s", tx);
        }
    }
    issue(c);
}

/* pick - the next kind of request by the mix. */
static int pick(bench *b)
{
    int r = (int)(rnd(b) % 100);

    return r < b->mix[0] ? 0 : r < b->mix[1] ? 1 : 2;
}

/* issue - send c's next request, or stop when the phase is over. */
static void issue(client *c)
{
    bench *b = c->b;
    struct evhttp_request *req;
    struct evkeyvalq *h;
    char path[256], body[512];
    acct *a;
    enum evhttp_cmd_type cmd = EVHTTP_REQ_GET;

    body[0] = '\0';
    c->pay_slot = -1;
    if (b->phase == 0) {
        if (b->bind_next >= b->npop) {
            if (b->bind_done >= b->npop)
                event_base_loopbreak(b->base);
            return;
        }
        c->kind = 3;
        c->who = b->bind_next++;
        a = &b->pop[c->who];
        snprintf(path, sizeof path, "/api/v1/bindings");
        snprintf(body, sizeof body,
                 "{\"portal_user_id\":\"bench-%d\",\"account_no\":\"%s\",\"holder_name\":\"%s\","
                 "\"phone_last4\":\"%s\"}", c->who, a->no, a->name, a->last4);
        cmd = EVHTTP_REQ_POST;
    } else {
        if (gg_mono_us() >= b->t_end_us) {
            if (++b->idle >= b->conc)
                event_base_loopbreak(b->base);  /* the last one went idle */
            return;
        }
        c->kind = pick(b);
        c->who = (int)(rnd(b) % (unsigned long long)b->npop);
        a = &b->pop[c->who];
        if (a->token[0] == '\0') {
            c->kind = 0;  /* not bound: the query shows 401 */
        }
        if (c->kind == 2 && a->bill[0] == '\0')
            c->kind = 0;  /* nothing left to pay for this one */
        if (c->kind == 0 || c->kind == 1) {
            /* from: 0..11 months before this month ("to" is the current one) */
            int back = b->same_range ? 11 : (int)(rnd(b) % 12);
            time_t t = time(NULL);
            struct tm tm;
            int y, m;

            localtime_r(&t, &tm);
            y = tm.tm_year + 1900;
            m = tm.tm_mon + 1 - back;
            while (m < 1) {
                m += 12;
                y--;
            }
            if (c->kind == 0)
                snprintf(path, sizeof path, "/api/v1/accounts/%s/bills?from=%04d-%02d", a->no,
                         y, m);
            else
                snprintf(path, sizeof path,
                         "/api/v1/accounts/%s/usage?granularity=month&from=%04d-%02d", a->no, y,
                         m);
        } else {
            pay_rec *p;

            if (b->npays == b->cappays) {
                size_t n = b->cappays ? b->cappays * 2 : 1024;
                pay_rec *v = realloc(b->pays, n * sizeof *v);
                if (!v)
                    return;
                b->pays = v;
                b->cappays = n;
            }
            c->pay_slot = (int)b->npays++;
            p = &b->pays[c->pay_slot];
            memset(p, 0, sizeof *p);
            snprintf(p->ref, sizeof p->ref, "bench-%lld-%d", (long long)b->t_start_us,
                     c->pay_slot);
            snprintf(p->account, sizeof p->account, "%s", a->no);
            snprintf(path, sizeof path, "/api/v1/accounts/%s/payments", a->no);
            snprintf(body, sizeof body,
                     "{\"bill_id\":\"%s\",\"amount_fen\":%lld,\"payment_ref\":\"%s\"}", a->bill,
                     a->amount, p->ref);
            a->bill[0] = '\0';  /* each bill once */
            cmd = EVHTTP_REQ_POST;
        }
    }
    if (!c->conn) {
        c->conn = evhttp_connection_base_new(b->base, NULL, b->host, (ev_uint16_t)b->port);
        if (!c->conn)
            return;
        evhttp_connection_set_timeout(c->conn, 60);
    }
    req = evhttp_request_new(on_done, c);
    if (!req)
        return;
    h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", b->host);
    if (c->kind != 3 && a->token[0])
        evhttp_add_header(h, "X-Binding-Token", a->token);
    if (body[0]) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    }
    c->start_us = gg_mono_us();
    if (evhttp_make_request(c->conn, req, cmd, path) != 0) {
        b->conn_errors++;
        evhttp_connection_free(c->conn);
        c->conn = NULL;
    }
}

/* cmp64 - qsort order of int64_t. */
static int cmp64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

    return a < b ? -1 : a > b;
}

/* pctl - the p-th percentile of sorted v, in ms. */
static double pctl(const int64_t *v, size_t n, double p)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)ceil(p / 100.0 * (double)n);
    if (i > 0)
        i--;
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1000.0;
}

/* on_tick - the progress line, once a second. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    bench *b = arg;
    int64_t now = gg_mono_us();

    (void)fd;
    (void)what;
    if (b->phase != 1)
        return;
    fprintf(stderr, "bench http: t=%2.0fs rps=%lld errors=%lld total=%zu\n",
            (double)(now - b->t_start_us) / 1e6, b->win_n, b->win_err, b->nlat);
    b->win_n = 0;
    b->win_err = 0;
    if (now >= b->t_end_us + 60000000LL)
        event_base_loopbreak(b->base);  /* stragglers: give up a minute after the end */
}

/* load_population - N active accounts with an unpaid bill each if any. */
static int load_population(bench *b, const char *db, int n)
{
    sqlite3 *d = NULL;
    sqlite3_stmt *st = NULL;
    int k = 0;

    if (sqlite3_open_v2(db, &d, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d,
                           "SELECT a.account_no, a.holder_name, a.phone,"
                           " (SELECT b.bill_id FROM bills b WHERE b.account_no = a.account_no AND"
                           "  b.status <> 'paid' AND NOT EXISTS (SELECT 1 FROM payments p WHERE"
                           "  p.bill_id = b.bill_id) ORDER BY b.period LIMIT 1),"
                           " (SELECT b.amount_fen FROM bills b WHERE b.account_no = a.account_no"
                           "  AND b.status <> 'paid' AND NOT EXISTS (SELECT 1 FROM payments p"
                           "  WHERE p.bill_id = b.bill_id) ORDER BY b.period LIMIT 1)"
                           " FROM accounts a WHERE a.status = 'active' ORDER BY a.account_no"
                           " LIMIT ?1", -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "gridgate bench http: %s: %s\n", db, d ? sqlite3_errmsg(d) : "cannot open");
        sqlite3_close(d);
        return -1;
    }
    b->pop = calloc((size_t)n, sizeof *b->pop);
    sqlite3_bind_int(st, 1, n);
    while (b->pop && k < n && sqlite3_step(st) == SQLITE_ROW) {
        acct *a = &b->pop[k];
        const char *ph = (const char *)sqlite3_column_text(st, 2);
        const char *bill = (const char *)sqlite3_column_text(st, 3);
        size_t pl = ph ? strlen(ph) : 0;

        snprintf(a->no, sizeof a->no, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(a->name, sizeof a->name, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(a->last4, sizeof a->last4, "%s", pl >= 4 ? ph + pl - 4 : "0000");
        if (bill) {
            snprintf(a->bill, sizeof a->bill, "%s", bill);
            a->amount = sqlite3_column_int64(st, 4);
        }
        k++;
    }
    sqlite3_finalize(st);
    sqlite3_close(d);
    b->npop = k;
    return k > 0 ? 0 : -1;
}

/* check_payments - every payment's outcome; returns the number of problems. */
static int check_payments(bench *b, const char *db)
{
    sqlite3 *d = NULL;
    sqlite3_stmt *st = NULL;
    long ok = 0, missing = 0, doubled = 0, refused = 0, unknown = 0, later = 0;
    int have_db = sqlite3_open_v2(db, &d, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
                  sqlite3_prepare_v2(d, "SELECT count(*) FROM payments WHERE payment_ref = ?1",
                                     -1, &st, NULL) == SQLITE_OK;

    for (size_t i = 0; i < b->npays; i++) {
        pay_rec *p = &b->pays[i];
        int rows = -1;

        if (have_db) {
            sqlite3_bind_text(st, 1, p->ref, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                rows = sqlite3_column_int(st, 0);
            sqlite3_reset(st);
        }
        if (p->status / 100 == 2) {
            if (rows == 0)
                missing++;
            else if (rows > 1)
                doubled++;
            else
                ok++;
        } else if (p->status >= 400 && p->status < 500) {
            refused++;
            if (rows > 0)
                doubled++;  /* refused yet posted */
        } else if (rows > 1) {
            doubled++;
        } else if (rows == 1) {
            later++;        /* 5xx/timeout at the portal, posted in the end */
        } else {
            unknown++;      /* not posted (yet): the transaction id tells */
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(d);
    printf("payments: %zu sent, %ld posted and confirmed, %ld refused (4xx), %ld posted after "
           "a 5xx/timeout, %ld not posted after a 5xx/timeout, %ld missing, %ld doubled%s\n",
           b->npays, ok, refused, later, unknown, missing, doubled,
           have_db ? "" : " (no SQLite database to check against: outcomes unverified)");
    return (int)(missing + doubled);
}

/* parse_url - "http://host:port[/]". */
static int parse_url(const char *url, char *host, size_t hostsz, int *port)
{
    const char *p = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
    const char *colon = strrchr(p, ':');
    size_t hl;

    if (!colon || colon == p)
        return -1;
    hl = (size_t)(colon - p);
    if (hl >= hostsz)
        return -1;
    memcpy(host, p, hl);
    host[hl] = '\0';
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

/* parse_mix - "query=80,usage=15,pay=5" into cumulative percents. */
static int parse_mix(const char *s, int mix[3])
{
    int q = 0, u = 0, p = 0, v;
    char name[16];
    const char *x = s;

    while (*x) {
        int n = 0;

        if (sscanf(x, "%15[a-z]=%d%n", name, &v, &n) != 2 || v < 0)
            return -1;
        if (strcmp(name, "query") == 0)
            q = v;
        else if (strcmp(name, "usage") == 0)
            u = v;
        else if (strcmp(name, "pay") == 0)
            p = v;
        else
            return -1;
        x += n;
        if (*x == ',')
            x++;
    }
    if (q + u + p != 100)
        return -1;
    mix[0] = q;
    mix[1] = q + u;
    mix[2] = 100;
    return 0;
}

int gg_cmd_bench_http(int argc, char **argv)
{
    bench b;
    client *cl = NULL;
    const char *url = NULL, *db = NULL, *mix = "query=100";
    long long conc = 16, dur = 10, pop = 1000;
    struct timeval one = { 1, 0 };
    int rc = 1;

    memset(&b, 0, sizeof b);
    b.rnd = 0x9e3779b97f4a7c15ULL ^ (unsigned long long)gg_mono_us();
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--same-range") == 0) {
            b.same_range = 1;
            continue;
        }
        if (!v)
            goto usage;
        i++;
        if (strcmp(a, "--url") == 0)
            url = v;
        else if (strcmp(a, "--db") == 0)
            db = v;
        else if (strcmp(a, "--mix") == 0)
            mix = v;
        else if (strcmp(a, "--concurrency") == 0 && gg_cli_parse_int(v, 1, MAX_CONC, &conc) == 0)
            ;
        else if (strcmp(a, "--duration") == 0 && gg_cli_parse_int(v, 1, 86400, &dur) == 0)
            ;
        else if (strcmp(a, "--population") == 0 && gg_cli_parse_int(v, 1, MAX_POP, &pop) == 0)
            ;
        else
            goto usage;
    }
    if (!url || !db || parse_url(url, b.host, sizeof b.host, &b.port) != 0 ||
        parse_mix(mix, b.mix) != 0)
        goto usage;
    if (load_population(&b, db, (int)pop) != 0) {
        fprintf(stderr, "gridgate bench http: no active accounts in %s\n", db);
        return 1;
    }
    b.conc = (int)conc;
    b.base = event_base_new();
    cl = calloc((size_t)b.conc, sizeof *cl);
    if (!b.base || !cl)
        goto out;
    /* phase 0: bind the population */
    fprintf(stderr, "bench http: binding %d citizens at %s:%d ...\n", b.npop, b.host, b.port);
    for (int i = 0; i < b.conc; i++) {
        cl[i].b = &b;
        cl[i].idx = i;
        issue(&cl[i]);
    }
    event_base_dispatch(b.base);
    fprintf(stderr, "bench http: %d of %d bound\n", b.bind_ok, b.npop);
    if (b.bind_ok < b.npop) {
        fprintf(stderr, "bench http: failed bindings by status:");
        for (int i = 0; i < MAX_CODES; i++)
            if (b.bind_codes[i])
                fprintf(stderr, " %d=%lld", i, b.bind_codes[i]);
        fprintf(stderr, "; the first: %s\n", b.bind_why);
    }
    {
        int payable = 0;

        for (int i = 0; i < b.npop; i++)
            payable += b.pop[i].bill[0] != '\0';
        if (b.mix[2] > b.mix[1] && payable == 0)
            fprintf(stderr, "bench http: no unpaid bills in the population: pay is skipped\n");
    }
    /* phase 1: the run */
    b.phase = 1;
    b.t_start_us = gg_mono_us();
    b.t_end_us = b.t_start_us + dur * 1000000LL;
    b.tick = event_new(b.base, -1, EV_PERSIST, on_tick, &b);
    event_add(b.tick, &one);
    for (int i = 0; i < b.conc; i++)
        issue(&cl[i]);
    /* the loop ends when every client went idle after t_end (or a minute
     * later, on_tick) */
    event_base_dispatch(b.base);
    {
        double secs = (double)(gg_mono_us() - b.t_start_us) / 1e6;
        double s_run = secs < (double)dur ? secs : (double)dur;
        long long ok2 = 0, errs = 0;

        qsort(b.lat, b.nlat, sizeof *b.lat, cmp64);
        for (int i = 200; i < 300; i++)
            ok2 += b.codes[i];
        for (int i = 0; i < MAX_CODES; i++)
            if (i < 200 || i >= 300)
                errs += b.codes[i];
        printf("bench http: %d clients, %lld s, mix %s, population %d (%d bound)\n", b.conc, dur,
               mix, b.npop, b.bind_ok);
        printf("requests: %zu answered (%lld 2xx), %lld connection errors\n", b.nlat, ok2,
               b.conn_errors);
        printf("throughput: %.0f req/s (2xx %.0f/s)\n", (double)b.nlat / s_run,
               (double)ok2 / s_run);
        printf("latency ms: p50=%.2f p90=%.2f p99=%.2f p99.9=%.2f max=%.2f\n",
               pctl(b.lat, b.nlat, 50), pctl(b.lat, b.nlat, 90), pctl(b.lat, b.nlat, 99),
               pctl(b.lat, b.nlat, 99.9), b.nlat ? (double)b.lat[b.nlat - 1] / 1000.0 : 0.0);
        printf("codes:");
        for (int i = 0; i < MAX_CODES; i++)
            if (b.codes[i])
                printf(" %d=%lld", i, b.codes[i]);
        printf("\n");
        if (b.mix[2] > b.mix[1])
            rc = check_payments(&b, db) != 0;
        else
            rc = 0;
        if (ok2 == 0)
            rc = 1;
        /* one machine-readable line for scripts (bench/e2e.sh) */
        printf("result rps=%.0f p50_ms=%.2f p99_ms=%.2f ok=%lld errors=%lld\n",
               (double)b.nlat / s_run, pctl(b.lat, b.nlat, 50), pctl(b.lat, b.nlat, 99), ok2,
               errs + b.conn_errors);
    }
out:
    for (int i = 0; cl && i < b.conc; i++)
        if (cl[i].conn)
            evhttp_connection_free(cl[i].conn);
    if (b.tick)
        event_free(b.tick);
    if (b.base)
        event_base_free(b.base);
    free(cl);
    free(b.pop);
    free(b.lat);
    free(b.pays);
    return rc;
usage:
    fprintf(stderr, "usage: gridgate bench http --url http://HOST:PORT --db MARKETING.db "
                    "[--concurrency C] [--duration S] [--mix query=80,usage=15,pay=5] "
                    "[--population N] [--same-range]\n");
    return 2;
}

int gg_cmd_bench(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "http") == 0)
        return gg_cmd_bench_http(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "baseline") == 0)
        return gg_cmd_bench_baseline(argc - 1, argv + 1);
    fprintf(stderr, "usage: gridgate bench http --url URL --db FILE [...]\n"
                    "       gridgate bench baseline -c UTILITY.conf --listen HOST:PORT\n");
    return 2;
}
