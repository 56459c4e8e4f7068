/* chan_fixture.h - shared by test_channel.c and test_channel_wire.c: a
 * PKI made once per test file, two stores per test, channel configs with
 * fast heartbeats, queue helpers, and a hand-driven TLS peer ("utility")
 * that writes frames itself. Functions are static inline so each test
 * file may use a subset. */
#ifndef GG_TEST_CHAN_FIXTURE_H
#define GG_TEST_CHAN_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "channel/channel.h"
#include "channel/frame.h"
#include "core/clock.h"
#include "core/log.h"
#include "pki/pki.h"

static char g_pki[512];   /* CA and the certificates of portal and utility */

typedef struct fix {
    char dir[512];
    gg_store *sa, *sb;    /* a: portal (listens), b: utility (connects) */
    gg_channel *ca, *cb;
    int port;
} fix;

/* pki_path - a file of the shared PKI directory (static buffers, 8 deep). */
static inline const char *pki_path(const char *name)
{
    static char bufs[8][700];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 700, "%s/%s", g_pki, name);
    return b;
}

/* make_dir - a fresh directory under $GG_TEST_TMP (or /tmp). */
static inline void make_dir(char *out, size_t outsz, const char *prefix)
{
    const char *base = getenv("GG_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(out, outsz, "%s/%s-XXXXXX", base, prefix);
    assert_non_null(mkdtemp(out));
}

static inline int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    gg_log_set_level(getenv("GG_TEST_VERBOSE") ? GG_LOG_DEBUG : GG_LOG_ERROR);
    make_dir(g_pki, sizeof g_pki, "chanpki");
    strcat(g_pki, "/pki");
    return gg_pki_init(g_pki, NULL) == GG_OK ? 0 : -1;
}

/* open_store - a store file in the test directory. */
static inline gg_store *open_store(fix *f, const char *name, const gg_store_opts *o)
{
    char p[700];
    gg_store *st = NULL;
    snprintf(p, sizeof p, "%s/%s.db", f->dir, name);
    assert_int_equal(gg_store_open(p, o, &st), GG_OK);
    return st;
}

static inline int setup(void **state)
{
    fix *f = calloc(1, sizeof *f);
    assert_non_null(f);
    make_dir(f->dir, sizeof f->dir, "channel");
    f->sa = open_store(f, "portal", NULL);
    f->sb = open_store(f, "utility", NULL);
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    fix *f = *state;
    gg_channel_stop(f->ca);
    gg_channel_stop(f->cb);
    gg_store_close(f->sa);
    gg_store_close(f->sb);
    free(f);
    return 0;
}

/* cfg_of - a fast-beating configuration for site me talking to peer. */
static inline gg_channel_cfg cfg_of(int listen, const char *me, const char *peer,
                                     const char *address)
{
    static char crt[2][700], key[2][700];
    static int next;
    int i = next++ % 2;
    snprintf(crt[i], sizeof crt[i], "%s/%s.crt", g_pki, me);
    snprintf(key[i], sizeof key[i], "%s/%s.key", g_pki, me);
    gg_channel_cfg c;
    memset(&c, 0, sizeof c);
    c.listen = listen;
    c.address = address;
    c.local_name = me;
    c.peer_name = peer;
    c.allow = "127.0.0.1/32";
    c.ca_file = pki_path("ca.crt");
    c.cert_file = crt[i];
    c.key_file = key[i];
    c.heartbeat_ms = 100;
    c.dead_ms = 2000;
    c.backoff_max_ms = 300;
    c.batch_max = 16;
    c.window = 4;
    return c;
}

/* start_portal - the listening side on a free port (f->port kept across
 * restarts). */
static inline void start_portal(fix *f, gg_channel_cfg *c)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->port);
    gg_channel_cfg d = c ? *c : cfg_of(1, "portal", "utility", NULL);
    d.address = addr;
    assert_int_equal(gg_channel_start(&d, f->sa, &f->ca), GG_OK);
    f->port = gg_channel_listen_port(f->ca);
    assert_true(f->port > 0);
}

/* start_utility - the connecting side. */
static inline void start_utility(fix *f, gg_channel_cfg *c)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->port);
    gg_channel_cfg d = c ? *c : cfg_of(0, "utility", "portal", NULL);
    d.address = addr;
    assert_int_equal(gg_channel_start(&d, f->sb, &f->cb), GG_OK);
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static inline int64_t depth(gg_store *st, const char *q)
{
    int64_t d = -1;
    assert_int_equal(gg_store_depth(st, q, &d), GG_OK);
    return d;
}

static inline gg_channel_stats stats(gg_channel *ch)
{
    gg_channel_stats s;
    gg_channel_get_stats(ch, &s);
    return s;
}

/* wait_depth - until queue q of st holds n messages; 0 on timeout. */
static inline int wait_depth(gg_store *st, const char *q, int64_t n, int ms)
{
    for (int t = 0; t < ms; t += 10) {
        if (depth(st, q) == n)
            return 1;
        sleep_ms(10);
    }
    return depth(st, q) == n;
}

/* wait_running - until ch is RUNNING; 0 on timeout. */
static inline int wait_running(gg_channel *ch, int ms)
{
    for (int t = 0; t < ms; t += 10) {
        if (stats(ch).state == GG_CHANNEL_RUNNING)
            return 1;
        sleep_ms(10);
    }
    return 0;
}

/* put_n - n messages "<tag>-<i>" on xmit for dest, i from first. */
static inline void put_n(gg_store *st, const char *dest, const char *tag, int first, int n)
{
    char body[64];
    for (int i = first; i < first + n; i++) {
        int len = snprintf(body, sizeof body, "%s-%06d", tag, i);
        assert_int_equal(gg_store_put(st, GG_XMIT_QUEUE, dest, body, (size_t)len, 0, NULL),
                         GG_OK);
    }
}

/* drain_expect - take every message of q: exactly "<tag>-<i>" for i in
 * 0..n-1, in order, and nothing more. */
static inline void drain_expect(gg_store *st, const char *q, const char *tag, int n)
{
    char want[64];
    for (int i = 0; i < n; i++) {
        gg_msg *m = NULL;
        gg_err e = gg_store_get(st, q, 30000, &m);
        if (e != GG_OK)
            fail_msg("%s: message %d of %d missing (%s)", q, i, n, gg_errname(e));
        int len = snprintf(want, sizeof want, "%s-%06d", tag, i);
        if (m->len != (size_t)len || memcmp(m->data, want, m->len) != 0)
            fail_msg("%s: message %d is \"%.*s\", want \"%s\"", q, i, (int)m->len,
                     (const char *)m->data, want);
        assert_int_equal(gg_store_ack(st, m->id), GG_OK);
        gg_msg_free(m);
    }
    gg_msg *extra = NULL;
    assert_int_equal(gg_store_get(st, q, 1000, &extra), GG_EEMPTY);
}

/* connect_from - a plain TCP connection from local address src to port. */
static inline int connect_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, src, &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* ---- a hand-driven peer: TLS as "utility", frames written by the test ---- */

typedef struct raw {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    gg_buf in;
} raw;

/* raw_try - TCP and TLS (up to max_version) to port; SSL_connect's result. */
static inline int raw_try(raw *r, int port, int max_version)
{
    memset(r, 0, sizeof *r);
    r->fd = connect_from("127.0.0.1", port);
    struct timeval tv = { 3, 0 };
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    r->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(r->ctx);
    SSL_CTX_set_min_proto_version(r->ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(r->ctx, max_version);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(r->ctx, pki_path("utility.crt")), 1);
    assert_int_equal(
        SSL_CTX_use_PrivateKey_file(r->ctx, pki_path("utility.key"), SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_load_verify_locations(r->ctx, pki_path("ca.crt"), NULL), 1);
    SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
    r->ssl = SSL_new(r->ctx);
    SSL_set1_host(r->ssl, "portal");
    SSL_set_fd(r->ssl, r->fd);
    return SSL_connect(r->ssl);
}

static inline void raw_open(raw *r, int port)
{
    assert_int_equal(raw_try(r, port, TLS1_3_VERSION), 1);
}

static inline void raw_close(raw *r)
{
    SSL_free(r->ssl);
    SSL_CTX_free(r->ctx);
    close(r->fd);
    gg_buf_free(&r->in);
}

/* raw_read - exactly n bytes: 0, -1 when closed, -2 on timeout. */
static inline int raw_read(raw *r, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        int k = SSL_read(r->ssl, p + got, (int)(n - got));
        if (k <= 0) {
            int err = SSL_get_error(r->ssl, k);
            if (err == SSL_ERROR_WANT_READ ||
                (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)))
                return -2;
            return -1;
        }
        got += (size_t)k;
    }
    return 0;
}

/* raw_frame - the next frame into r->in; its type, or -1 / -2. */
static inline int raw_frame(raw *r)
{
    uint8_t hdr[GG_FRAME_HDR];
    size_t total;
    int rc = raw_read(r, hdr, sizeof hdr);
    if (rc != 0)
        return rc;
    assert_int_equal(gg_frame_length(hdr, &total), GG_OK);
    gg_buf_reset(&r->in);
    assert_int_equal(gg_buf_append(&r->in, hdr, sizeof hdr), GG_OK);
    assert_int_equal(gg_buf_reserve(&r->in, total), GG_OK);
    rc = raw_read(r, r->in.data + GG_FRAME_HDR, total - GG_FRAME_HDR);
    if (rc != 0)
        return rc;
    r->in.len = total;
    return r->in.data[GG_FRAME_HDR];
}

static inline int raw_send(raw *r, gg_buf *b)
{
    int rc = SSL_write(r->ssl, b->data, (int)b->len) == (int)b->len ? 0 : -1;
    gg_buf_reset(b);
    return rc;
}

/* raw_next - the next frame that is not a heartbeat (PINGs answered);
 * -2 when none comes within 4 s. */
static inline int raw_next(raw *r)
{
    int64_t deadline = gg_mono_us() + 4000000;
    for (;;) {
        if (gg_mono_us() > deadline)
            return -2;
        int type = raw_frame(r);
        if (type == GG_FRAME_PING) {
            gg_buf b = GG_BUF_INIT(0);
            uint64_t stamp;
            assert_int_equal(gg_frame_get_ping(r->in.data + 5, r->in.len - 5, &stamp), GG_OK);
            assert_int_equal(gg_frame_put_ping(&b, GG_FRAME_PONG, stamp), GG_OK);
            raw_send(r, &b);
            gg_buf_free(&b);
            continue;
        }
        if (type != GG_FRAME_PONG)
            return type;
    }
}

/* raw_hello - take the channel's HELLO (returns its mark), send ours. */
static inline int64_t raw_hello(raw *r, int64_t mark)
{
    gg_frame_hello h;
    gg_buf b = GG_BUF_INIT(0);
    assert_int_equal(raw_next(r), GG_FRAME_HELLO);
    assert_int_equal(gg_frame_get_hello(r->in.data + 5, r->in.len - 5, &h), GG_OK);
    assert_string_equal(h.site, "portal");
    assert_int_equal(h.version, GG_FRAME_VERSION);
    assert_int_equal(gg_frame_put_hello(&b, "utility", mark), GG_OK);
    assert_int_equal(raw_send(r, &b), 0);
    gg_buf_free(&b);
    return h.mark;
}

/* raw_batch - send seqs from..to as one batch for "requests"; data of seq
 * s is "p2u-<s-1>" so drain_expect can check them. */
static inline void raw_batch(raw *r, int64_t from, int64_t to)
{
    gg_buf b = GG_BUF_INIT(0);
    gg_frame_batch fb;
    char body[64];
    assert_int_equal(gg_frame_batch_begin(&b, &fb), GG_OK);
    for (int64_t s = from; s <= to; s++) {
        int len = snprintf(body, sizeof body, "p2u-%06d", (int)(s - 1));
        assert_int_equal(gg_frame_batch_add(&b, &fb, s, "requests", 0, body, (size_t)len), GG_OK);
    }
    gg_frame_batch_end(&b, &fb);
    assert_int_equal(raw_send(r, &b), 0);
    gg_buf_free(&b);
}

/* raw_ack_mark - the next frame must be an ACK: its mark. */
static inline int64_t raw_ack_mark(raw *r)
{
    int64_t mark = -1;
    assert_int_equal(raw_next(r), GG_FRAME_ACK);
    assert_int_equal(gg_frame_get_ack(r->in.data + 5, r->in.len - 5, &mark), GG_OK);
    return mark;
}

/* raw_send_ack - send ACK(mark). */
static inline void raw_send_ack(raw *r, int64_t mark)
{
    gg_buf b = GG_BUF_INIT(0);
    assert_int_equal(gg_frame_put_ack(&b, mark), GG_OK);
    assert_int_equal(raw_send(r, &b), 0);
    gg_buf_free(&b);
}

#endif
