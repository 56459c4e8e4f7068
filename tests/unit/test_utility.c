/* test_utility.c - the utility role in process: a portal-like transport
 * sends sealed requests over a real channel on 127.0.0.1, the utility's
 * workers answer them from a seeded marketing database, and the sealed
 * replies come back on "replies". One deployment is shared by the tests
 * of the group (counters are compared as deltas). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/rand.h"
#include "envelope/envelope.h"
#include "envelope/token.h"
#include "marketing/seed.h"
#include "pki/pki.h"
#include "transport/transport.h"
#include "utility/utility.h"
#include "utility/worker.h"
#include "market_fixture.h"
#include "utility_fixture.h"

typedef struct fx {
    gg_test_pair d;         /* the utility and the portal's transport */
    gg_env_keys *mkeys;     /* the portal's key files under the name "mallory" */
    uint8_t token_key[GG_TOKEN_KEY_LEN];
    char account[33];
} fx;

/* prepare - the pair (nothing started), the token key, an account of the
 * database and the portal's keys under another name. */
static int prepare(fx *f)
{
    gg_seed_opts so = { 5, 2, 42, "2024-06" };
    const char *pki = f->d.s.pki;
    char path[700], sk[700], kk[700], ps[700], pk[700];
    gg_env_keys_cfg kc = { "intl", "mallory", sk, kk, ps, pk };
    char why[256];

    if (gg_test_pair_prepare(&f->d, "utility.", &so, NULL) != 0)
        return -1;
    gg_test_mkt_text(f->d.mkt, "SELECT account_no FROM accounts ORDER BY account_no LIMIT 1",
                     f->account, sizeof f->account);
    if (f->account[0] == '\0')
        return -1;
    snprintf(path, sizeof path, "%s/token.key", pki);
    if (gg_token_key_load(path, f->token_key) != GG_OK)
        return -1;
    snprintf(sk, sizeof sk, "%s/portal.sign.key", pki);
    snprintf(kk, sizeof kk, "%s/portal.kem.key", pki);
    snprintf(ps, sizeof ps, "%s/utility.sign.pub", pki);
    snprintf(pk, sizeof pk, "%s/utility.kem.pub", pki);
    if (gg_env_keys_load(&kc, &f->mkeys, why, sizeof why) != GG_OK)
        return -1;
    return 0;
}

static int group_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    *state = f;
    if (prepare(f) != 0)
        return -1;
    return gg_test_pair_start(&f->d);
}

static int group_teardown(void **state)
{
    fx *f = *state;

    if (f == NULL)
        return 0;
    gg_env_keys_free(f->mkeys);
    gg_test_pair_free(&f->d);
    free(f);
    return 0;
}

/* counted - the requests counter of txn and result once it reaches want,
 * or after 3 s: a worker counts a request after its reply is stored, and
 * the reply may reach the test first. */
static int64_t counted(gg_umetrics *m, const char *txn, gg_um_result r, int64_t want)
{
    int64_t n = gg_umetrics_requests(m, txn, r);

    for (int i = 0; i < 300 && n < want; i++) {
        usleep(10000);
        n = gg_umetrics_requests(m, txn, r);
    }
    return n;
}

/* send_as - seal payload with keys (signed by the portal's key, naming
 * sender) as a message of kind and send it to "requests"; msg_id gets its id. */
static void send_as(fx *f, const gg_env_keys *keys, const char *sender, int kind, const char *txn,
                    const char *payload, int64_t expiry_ms, uint8_t msg_id[16])
{
    gg_buf out = GG_BUF_INIT(GG_ENV_MAX);
    gg_env_hdr h;

    memset(&h, 0, sizeof h);
    h.kind = (uint8_t)kind;
    gg_new_id(h.msg_id);
    memcpy(h.corr_id, h.msg_id, 16);
    snprintf(h.txn, sizeof h.txn, "%s", txn);
    snprintf(h.sender, sizeof h.sender, "%s", sender);
    snprintf(h.receiver, sizeof h.receiver, "utility");
    h.created_ms = gg_now_ms();
    h.expiry_ms = expiry_ms;
    assert_int_equal(gg_env_seal(keys, &h, payload, strlen(payload), &out), GG_OK);
    assert_int_equal(gg_transport_send(f->d.p, GG_Q_REQUESTS, out.data, out.len, 0), GG_OK);
    memcpy(msg_id, h.msg_id, 16);
    gg_buf_free(&out);
}

/* send_request - send_as from "portal". */
static void send_request(fx *f, int kind, const char *txn, const char *payload,
                         int64_t expiry_ms, uint8_t msg_id[16])
{
    send_as(f, f->d.pkeys, "portal", kind, txn, payload, expiry_ms, msg_id);
}

/* take_reply - wait up to 15 s for a reply on the portal, open it, check it
 * answers msg_id, and return its JSON payload. */
static json_t *take_reply(fx *f, const uint8_t msg_id[16])
{
    gg_store *st = gg_transport_store(f->d.p);
    int64_t end = gg_mono_us() + 15000000;
    gg_msg *m = NULL;
    gg_env_hdr h;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    json_t *j;
    gg_err e = GG_EEMPTY;

    while (gg_mono_us() < end) {
        e = gg_store_get(st, GG_Q_REPLIES, 30000, &m);
        if (e != GG_EEMPTY)
            break;
        gg_store_wait(st, GG_Q_REPLIES, 100);
    }
    assert_int_equal(e, GG_OK);
    assert_int_equal(gg_env_open(f->d.pkeys, m->data, m->len, &h, &pt, &ptlen), GG_OK);
    assert_int_equal(h.kind, GG_ENV_REPLY);
    assert_memory_equal(h.corr_id, msg_id, 16);
    assert_string_equal(h.sender, "utility");
    assert_string_equal(h.receiver, "portal");
    assert_true(h.expiry_ms > gg_now_ms());
    j = json_loadb((const char *)pt, ptlen, 0, NULL);
    assert_non_null(j);
    free(pt);
    assert_int_equal(gg_store_ack(st, m->id), GG_OK);
    gg_msg_free(m);
    return j;
}

/* ask - send a request for txn with payload, expiring at expiry_ms, and
 * take its reply payload (the caller's to decref). */
static json_t *ask(fx *f, const char *txn, const char *payload, int64_t expiry_ms)
{
    uint8_t id[16];

    send_request(f, GG_ENV_REQUEST, txn, payload, expiry_ms, id);
    return take_reply(f, id);
}

/* ask_bills - a bills.query of citizen-1 for its account, from..to, with a
 * fresh read token; the reply as ask gives it. */
static json_t *ask_bills(fx *f, const char *from, const char *to)
{
    char token[GG_TOKEN_MAX];
    char payload[1024];

    assert_int_equal(gg_test_token(f->token_key, "citizen-1", f->account, GG_SCOPE_READ,
                                   gg_now_ms() + 3600000, token, sizeof token),
                     GG_OK);
    snprintf(payload, sizeof payload,
             "{\"binding_token\":\"%s\",\"account_no\":\"%s\",\"from\":\"%s\","
             "\"to\":\"%s\"}", token, f->account, from, to);
    return ask(f, "bills.query", payload, gg_now_ms() + 30000);
}

/* status_of - the "status" of a reply payload. */
static int status_of(json_t *rep)
{
    return (int)json_integer_value(json_object_get(rep, "status"));
}

/* error_code_of - body.error.code of a reply payload, or "". */
static const char *error_code_of(json_t *rep)
{
    const char *c = json_string_value(
        json_object_get(json_object_get(json_object_get(rep, "body"), "error"), "code"));

    return c != NULL ? c : "";
}

static void test_bills_query_gets_sealed_reply(void **state)
{
    fx *f = *state;
    gg_umetrics *m = gg_utility_metrics(f->d.u);
    int64_t ok0 = gg_umetrics_requests(m, "bills.query", GG_UR_OK);
    json_t *rep;
    json_t *bills;

    rep = ask_bills(f, "2024-01", "2024-12");
    assert_int_equal(status_of(rep), 200);
    bills = json_object_get(json_object_get(rep, "body"), "bills");
    assert_true(json_is_array(bills));
    assert_int_equal(json_array_size(bills), 2);
    json_decref(rep);
    assert_int_equal(counted(m, "bills.query", GG_UR_OK, ok0 + 1), ok0 + 1);
    assert_true(atomic_load(&m->inflight_max) >= 1);
    assert_true(atomic_load(&m->inflight_max) <= 2);
}

static void test_answered_query_time_split_by_phase(void **state)
{
    fx *f = *state;
    gg_umetrics *m = gg_utility_metrics(f->d.u);
    int64_t ok0 = gg_umetrics_requests(m, "bills.query", GG_UR_OK);
    int64_t before[GG_UP_COUNT];
    json_t *rep;
    int p;

    for (p = 0; p < GG_UP_COUNT; p++)
        before[p] = gg_umetrics_phase_us(m, (gg_um_phase)p);
    /* a range no other test asks for: a cache miss, so the backend runs */
    rep = ask_bills(f, "2023-07", "2024-11");
    assert_int_equal(status_of(rep), 200);
    json_decref(rep);
    /* counted after the reply's commit, so every phase is recorded by then */
    assert_int_equal(counted(m, "bills.query", GG_UR_OK, ok0 + 1), ok0 + 1);
    assert_true(gg_umetrics_phase_us(m, GG_UP_OPEN) > before[GG_UP_OPEN]);
    assert_true(gg_umetrics_phase_us(m, GG_UP_BACKEND) > before[GG_UP_BACKEND]);
    assert_true(gg_umetrics_phase_us(m, GG_UP_SEAL) > before[GG_UP_SEAL]);
    assert_true(gg_umetrics_phase_us(m, GG_UP_STORE) > before[GG_UP_STORE]);
    for (p = 0; p < GG_UP_COUNT; p++)
        assert_true(gg_umetrics_phase_us(m, (gg_um_phase)p) >= before[p]);
    gg_umetrics_phase(m, GG_UP_COUNT, 5);       /* out of range: ignored */
    gg_umetrics_phase(m, GG_UP_OPEN, -5);       /* negative: ignored */
    assert_int_equal(gg_umetrics_phase_us(m, GG_UP_COUNT), 0);
}

static void test_expired_request_answered_without_service(void **state)
{
    fx *f = *state;
    gg_umetrics *m = gg_utility_metrics(f->d.u);
    int64_t ex0 = gg_umetrics_requests(m, "bills.query", GG_UR_EXPIRED);
    json_t *rep = ask(f, "bills.query", "{}", gg_now_ms() - 1);

    assert_int_equal(status_of(rep), 504);
    assert_string_equal(error_code_of(rep), "expired");
    json_decref(rep);
    assert_int_equal(counted(m, "bills.query", GG_UR_EXPIRED, ex0 + 1), ex0 + 1);
}

static void test_bad_json_answered_400(void **state)
{
    fx *f = *state;
    json_t *rep = ask(f, "bills.query", "{\"account_no\":", gg_now_ms() + 30000);

    assert_int_equal(status_of(rep), 400);
    assert_string_equal(error_code_of(rep), "invalid_parameter");
    json_decref(rep);
}

static void test_unknown_transaction_answered_400(void **state)
{
    fx *f = *state;
    json_t *rep = ask(f, "no.such.txn", "{}", gg_now_ms() + 30000);

    assert_int_equal(status_of(rep), 400);
    json_decref(rep);
}

/* wait_reject - wait up to 15 s until the reject counter why exceeds before. */
static int64_t wait_reject(fx *f, gg_um_reject why, int64_t before)
{
    gg_umetrics *m = gg_utility_metrics(f->d.u);
    int64_t end = gg_mono_us() + 15000000;
    int64_t v = before;

    while (gg_mono_us() < end) {
        v = gg_umetrics_rejects(m, why);
        if (v > before)
            break;
        usleep(20000);
    }
    return v;
}

/* assert_no_reply - the portal has no reply waiting. */
static void assert_no_reply(fx *f)
{
    int64_t depth = -1;

    usleep(300000);
    assert_int_equal(gg_store_depth(gg_transport_store(f->d.p), GG_Q_REPLIES, &depth), GG_OK);
    assert_int_equal(depth, 0);
}

static void test_garbage_rejected_and_removed_without_reply(void **state)
{
    fx *f = *state;
    gg_umetrics *m = gg_utility_metrics(f->d.u);
    int64_t r0 = gg_umetrics_rejects(m, GG_UJ_MALFORMED) + gg_umetrics_rejects(m, GG_UJ_CRYPTO);
    gg_store *ust = gg_transport_store(gg_utility_transport(f->d.u));
    int64_t end = gg_mono_us() + 15000000;
    int64_t depth = -1;
    int64_t r1 = r0;

    assert_int_equal(gg_transport_send(f->d.p, GG_Q_REQUESTS, "not an envelope", 15, 0), GG_OK);
    while (gg_mono_us() < end && r1 == r0) {
        r1 = gg_umetrics_rejects(m, GG_UJ_MALFORMED) + gg_umetrics_rejects(m, GG_UJ_CRYPTO);
        usleep(20000);
    }
    assert_int_equal(r1, r0 + 1);
    assert_int_equal(gg_store_depth(ust, GG_Q_REQUESTS, &depth), GG_OK);
    assert_int_equal(depth, 0);
    assert_no_reply(f);
}

static void test_reply_kind_from_portal_rejected(void **state)
{
    fx *f = *state;
    gg_umetrics *m = gg_utility_metrics(f->d.u);
    int64_t r0 = gg_umetrics_rejects(m, GG_UJ_WRONG_KIND);
    uint8_t id[16];

    send_request(f, GG_ENV_REPLY, "bills.query", "{}", gg_now_ms() + 30000, id);
    assert_int_equal(wait_reject(f, GG_UJ_WRONG_KIND, r0), r0 + 1);
    assert_no_reply(f);
}

static void test_request_naming_other_sender_rejected(void **state)
{
    fx *f = *state;
    gg_umetrics *m = gg_utility_metrics(f->d.u);
    int64_t r0 = gg_umetrics_rejects(m, GG_UJ_WRONG_SENDER);
    uint8_t id[16];

    send_as(f, f->mkeys, "mallory", GG_ENV_REQUEST, "bills.query", "{}", gg_now_ms() + 30000, id);
    assert_int_equal(wait_reject(f, GG_UJ_WRONG_SENDER, r0), r0 + 1);
    assert_no_reply(f);
}

/* http_get - GET path from the admin port; the whole response in out. */
static void http_get(int port, const char *path, char *out, size_t outsz)
{
    struct sockaddr_in sa;
    char req[256];
    size_t got = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    for (;;) {
        n = read(fd, out + got, outsz - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got + 1 >= outsz)
            break;
    }
    out[got] = '\0';
    close(fd);
}

static void test_admin_serves_health_and_metrics(void **state)
{
    fx *f = *state;
    int port = gg_utility_admin_port(f->d.u);
    static char page[65536];

    assert_true(port > 0);
    http_get(port, "/healthz", page, sizeof page);
    assert_non_null(strstr(page, " 200 "));
    assert_non_null(strstr(page, "ok"));
    http_get(port, "/metrics", page, sizeof page);
    assert_non_null(strstr(page, " 200 "));
    assert_non_null(strstr(page, "gridgate_workers 2\n"));
    assert_non_null(strstr(page, "gridgate_requests_total{txn=\"bills.query\",result=\"ok\"}"));
    assert_non_null(strstr(page, "gridgate_rejects_total{reason=\"wrong_kind\"}"));
    assert_non_null(strstr(page, "gridgate_backend_inflight_max"));
    assert_non_null(strstr(page, "gridgate_request_phase_seconds_total{phase=\"governor\"} "));
    assert_non_null(strstr(page, "gridgate_request_phase_seconds_total{phase=\"store\"} "));
    assert_non_null(strstr(page, "gridgate_channel_state{state="));
    http_get(port, "/nope", page, sizeof page);
    assert_non_null(strstr(page, " 404 "));
}

static void test_many_requests_answered_within_worker_limit(void **state)
{
    enum { N = 24 };
    fx *f = *state;
    gg_umetrics *m = gg_utility_metrics(f->d.u);
    gg_store *st = gg_transport_store(f->d.p);
    uint8_t ids[N][16];
    int seen[N] = { 0 };
    int got = 0;
    int64_t end;
    int i;

    for (i = 0; i < N; i++)
        send_request(f, GG_ENV_REQUEST, "no.such.txn", "{}", gg_now_ms() + 30000, ids[i]);
    end = gg_mono_us() + 20000000;
    while (got < N && gg_mono_us() < end) {
        gg_msg *msg = NULL;
        gg_env_hdr h;
        uint8_t *pt = NULL;
        size_t ptlen = 0;

        if (gg_store_get(st, GG_Q_REPLIES, 30000, &msg) != GG_OK) {
            gg_store_wait(st, GG_Q_REPLIES, 100);
            continue;
        }
        assert_int_equal(gg_env_open(f->d.pkeys, msg->data, msg->len, &h, &pt, &ptlen), GG_OK);
        for (i = 0; i < N; i++) {
            if (memcmp(ids[i], h.corr_id, 16) == 0) {
                assert_int_equal(seen[i], 0);
                seen[i] = 1;
                got++;
            }
        }
        free(pt);
        assert_int_equal(gg_store_ack(st, msg->id), GG_OK);
        gg_msg_free(msg);
    }
    assert_int_equal(got, N);
    assert_true(atomic_load(&m->inflight_max) <= 2);
    assert_int_equal(atomic_load(&m->inflight), 0);
}

static int run_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    *state = f;
    return prepare(f);
}

/* assert_start_refused - the utility's config with the line key = dir/file
 * added to section parses, but the utility will not start on it. */
static void assert_start_refused(fx *f, const char *section, const char *key, const char *file)
{
    char text[17000];
    gg_config *cfg = NULL;
    gg_utility *u = NULL;

    snprintf(text, sizeof text, "%s[%s]\n%s = %s/%s\n", f->d.utext, section, key, f->d.s.dir, file);
    assert_int_equal(gg_test_site_parse(&f->d.s, text, &cfg), GG_OK);
    assert_int_equal(gg_utility_start(cfg, &u), GG_ECONFIG);
    assert_null(u);
    gg_config_free(cfg);
}

static void test_start_fails_on_missing_marketing_db(void **state)
{
    assert_start_refused(*state, "utility", "marketing_db", "none.db");
}

static void test_start_fails_on_missing_token_key(void **state)
{
    assert_start_refused(*state, "security", "token_key", "none.key");
}

/* This runs before any thread of the test exists, so fork is safe. */
static void test_run_stops_cleanly_on_sigterm(void **state)
{
    fx *f = *state;
    char store[700];
    struct stat sb;
    int64_t end;
    int status = 0;
    pid_t pid;
    pid_t w = 0;

    snprintf(store, sizeof store, "%s/utility.db", f->d.s.dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(gg_utility_run(f->d.ucfg) == GG_OK ? 0 : 3);
    /* The store is opened after the signals are blocked. */
    end = gg_mono_us() + 15000000;
    while (stat(store, &sb) != 0 && gg_mono_us() < end)
        usleep(20000);
    usleep(200000);
    assert_int_equal(kill(pid, SIGTERM), 0);
    end = gg_mono_us() + 15000000;
    while (w == 0 && gg_mono_us() < end) {
        w = waitpid(pid, &status, WNOHANG);
        if (w == 0)
            usleep(20000);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("gg_utility_run did not stop on SIGTERM");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest run_tests[] = {
        cmocka_unit_test(test_start_fails_on_missing_marketing_db),
        cmocka_unit_test(test_start_fails_on_missing_token_key),
        cmocka_unit_test(test_run_stops_cleanly_on_sigterm),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bills_query_gets_sealed_reply),
        cmocka_unit_test(test_answered_query_time_split_by_phase),
        cmocka_unit_test(test_expired_request_answered_without_service),
        cmocka_unit_test(test_bad_json_answered_400),
        cmocka_unit_test(test_unknown_transaction_answered_400),
        cmocka_unit_test(test_garbage_rejected_and_removed_without_reply),
        cmocka_unit_test(test_reply_kind_from_portal_rejected),
        cmocka_unit_test(test_request_naming_other_sender_rejected),
        cmocka_unit_test(test_admin_serves_health_and_metrics),
        cmocka_unit_test(test_many_requests_answered_within_worker_limit),
    };
    int failed = cmocka_run_group_tests_name("startup", run_tests, run_setup, group_teardown);

    return failed + cmocka_run_group_tests_name("exchange", tests, group_setup, group_teardown);
}
