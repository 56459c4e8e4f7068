/* store_torture.c - crash test of the store: kill -9 at random moments.
 *
 * usage: store_torture --kills N [--dir DIR] [--seed S]
 *
 * Each round forks a child that opens the store in DIR and, from several
 * threads at full speed, puts self-checking messages, gets, acknowledges
 * and backs them out (half the workers one message per call, half with
 * gg_store_put_many / get_many / ack_many), and receives numbered channel
 * batches; after each
 * call returns it writes one record of what was done to a pipe (one
 * write of less than PIPE_BUF each, so records are whole). The parent
 * reads the pipe, kills the child with SIGKILL after a random delay,
 * reads what is left, and checks the store:
 *   - PRAGMA integrity_check is "ok";
 *   - every message reported put and not reported acknowledged is there,
 *     with the bytes reported, unless an acknowledgement of it was in
 *     flight; every message reported acknowledged is gone;
 *   - no message is half-written: every body matches its own checksum
 *     (messages found unreported are puts that were in flight);
 *   - the channel mark is at least the last one reported, and the received
 *     queue holds exactly the sequence numbers 1..mark, once each;
 *   - the depth kept by the store equals the messages it holds.
 * Exit 0 when every round passed; prints a summary line.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "store/store.h"

#define WORKERS 4
#define MAX_IDS (1 << 20)
#define BODY_MAX 1024
#define MAGIC 0x67677431u

typedef struct rec {
    char op;          /* P put, L leased, A acked, B backed out, R receive mark */
    char pad[3];
    uint32_t hash;
    int64_t id;       /* message id, or the mark for R */
} rec;

static int g_fd = -1;
static char g_path[4096];

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint32_t fnv(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* make_body - header (magic, length, seed) then bytes from the seed. */
static size_t make_body(uint8_t *b, uint64_t seed)
{
    uint64_t s = seed | 1;
    size_t len = 16 + (size_t)(xs(&s) % (BODY_MAX - 16));
    uint32_t magic = MAGIC, l32 = (uint32_t)len;

    memcpy(b, &magic, 4);
    memcpy(b + 4, &l32, 4);
    memcpy(b + 8, &seed, 8);
    for (size_t i = 16; i < len; i++)
        b[i] = (uint8_t)xs(&s);
    return len;
}

/* body_ok - 1 if b is a whole body as make_body wrote it. */
static int body_ok(const uint8_t *b, size_t len)
{
    uint8_t want[BODY_MAX];
    uint64_t seed;
    uint32_t magic, l32;

    if (len < 16 || len > BODY_MAX)
        return 0;
    memcpy(&magic, b, 4);
    memcpy(&l32, b + 4, 4);
    memcpy(&seed, b + 8, 8);
    if (magic != MAGIC || l32 != len)
        return 0;
    return make_body(want, seed) == len && memcmp(want, b, len) == 0;
}

static void emit(char op, int64_t id, uint32_t hash)
{
    rec r;
    memset(&r, 0, sizeof r);
    r.op = op;
    r.id = id;
    r.hash = hash;
    if (write(g_fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(3);
}

struct child_arg {
    gg_store *st;
    int idx;
};

/* worker - put, get, then ack (or now and then back out), for ever. */
static void *worker(void *p)
{
    struct child_arg *a = p;
    uint64_t rnd = ((uint64_t)getpid() << 20) ^ (uint64_t)a->idx ^ (uint64_t)gg_mono_us();
    uint8_t body[BODY_MAX];

    for (;;) {
        int64_t id = 0;
        size_t len = make_body(body, xs(&rnd));
        gg_msg *m = NULL;

        if (gg_store_put(a->st, "t", NULL, body, len, 0, &id) == GG_OK)
            emit('P', id, fnv(body, len));
        if (gg_store_get(a->st, "t", 100, &m) != GG_OK)
            continue;
        emit('L', m->id, 0);
        if (xs(&rnd) % 8 == 0) {
            if (gg_store_backout(a->st, m->id) == GG_OK)
                emit('B', m->id, 0);
        } else if (gg_store_ack(a->st, m->id) == GG_OK) {
            emit('A', m->id, 0);
        }
        gg_msg_free(m);
    }
    return NULL;
}

/* batch_worker - put_many up to 4, get_many up to 5, then ack_many them
 * (or now and then back one out and ack the rest), for ever. */
static void *batch_worker(void *p)
{
    struct child_arg *a = p;
    uint64_t rnd = ((uint64_t)getpid() << 20) ^ (uint64_t)a->idx ^ (uint64_t)gg_mono_us();
    static _Thread_local uint8_t body[4][BODY_MAX];

    for (;;) {
        gg_store_put_item it[4];
        int64_t ids[5];
        gg_msg *m[5];
        size_t k = 1 + xs(&rnd) % 4, n = 0, nack = 0;

        memset(it, 0, sizeof it);
        for (size_t i = 0; i < k; i++) {
            it[i].queue = "t";
            it[i].data = body[i];
            it[i].len = make_body(body[i], xs(&rnd));
        }
        if (gg_store_put_many(a->st, it, k, ids) == GG_OK)
            for (size_t i = 0; i < k; i++)
                emit('P', ids[i], fnv(body[i], it[i].len));
        if (gg_store_get_many(a->st, "t", 100, 1 + xs(&rnd) % 5, m, &n) != GG_OK)
            continue;
        for (size_t i = 0; i < n; i++)
            emit('L', m[i]->id, 0);
        for (size_t i = 0; i < n; i++) {
            if (xs(&rnd) % 8 == 0 && gg_store_backout(a->st, m[i]->id) == GG_OK)
                emit('B', m[i]->id, 0);
            else
                ids[nack++] = m[i]->id;
        }
        if (nack && gg_store_ack_many(a->st, ids, nack) == GG_OK)
            for (size_t i = 0; i < nack; i++)
                emit('A', ids[i], 0);
        for (size_t i = 0; i < n; i++)
            gg_msg_free(m[i]);
    }
    return NULL;
}

/* receiver - channel batches of three numbered items, for ever. */
static void *receiver(void *p)
{
    struct child_arg *a = p;
    int64_t mark = 0;

    if (gg_store_mark(a->st, "peer", &mark) != GG_OK)
        _exit(4);
    for (;;) {
        gg_store_item it[3];
        int64_t seqs[3], got = 0;
        memset(it, 0, sizeof it);
        for (int i = 0; i < 3; i++) {
            seqs[i] = mark + 1 + i;
            it[i].seq = seqs[i];
            it[i].queue = "r";
            it[i].data = &seqs[i];
            it[i].len = sizeof seqs[i];
        }
        if (gg_store_receive(a->st, "peer", it, 3, &got) == GG_OK) {
            mark = got;
            emit('R', mark, 0);
        }
    }
    return NULL;
}

static void child(void)
{
    gg_store_opts o = { .backout_threshold = 0 };
    struct child_arg a[WORKERS + 1];
    pthread_t th[WORKERS + 1];
    gg_store *st = NULL;

    gg_log_set_level(GG_LOG_ERROR);
    if (gg_store_open(g_path, &o, &st) != GG_OK)
        _exit(2);
    for (int i = 0; i <= WORKERS; i++) {
        a[i].st = st;
        a[i].idx = i;
        pthread_create(&th[i], NULL,
                       i == WORKERS ? receiver : i % 2 ? batch_worker : worker, &a[i]);
    }
    for (;;)
        pause();
}

/* What the parent knows, across rounds. */
static uint32_t *g_hash;       /* by id: reported hash, 0 = not known present */
static uint8_t *g_state;       /* by id: 0 none, 1 present, 2 leased, 3 gone */
static int64_t g_mark;
static long long g_confirmed, g_inflight_puts, g_inflight_acks, g_failures;

static void fail(int round, const char *what, long long id)
{
    fprintf(stderr, "store_torture: round %d: %s (id %lld)\n", round, what, id);
    g_failures++;
}

static void apply_rec(int round, const rec *r)
{
    if (r->op == 'R') {
        if (r->id < g_mark)
            fail(round, "reported mark went down", r->id);
        g_mark = r->id;
        g_confirmed++;
        return;
    }
    if (r->id <= 0 || r->id >= MAX_IDS) {
        fail(round, "id out of range", r->id);
        return;
    }
    g_confirmed++;
    switch (r->op) {
    case 'P':
        /* Another worker may have leased (even acknowledged) the message
         * and reported it before this put's own record came through. */
        g_hash[r->id] = r->hash;
        if (g_state[r->id] == 0)
            g_state[r->id] = 1;
        break;
    case 'L':
        /* A lease that ran out lets a second worker lease the message
         * while the first acknowledges it: their records may come in
         * either order, so a lease of a gone message changes nothing. */
        if (g_state[r->id] != 3)
            g_state[r->id] = 2;
        break;
    case 'B':
        /* A backout says nothing we can rely on: another worker may have
         * leased the message again before this record came through. It
         * stays "leased" (maybe acknowledged in flight) until the next
         * check finds it. */
        break;
    case 'A':
        g_state[r->id] = 3;
        break;
    default:
        fail(round, "bad record", r->id);
    }
}

/* integrity - PRAGMA integrity_check on the file. */
static int integrity(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    struct stat sb;
    int ok = 0;

    if (stat(g_path, &sb) != 0)
        return 1;   /* killed before it created the file: nothing to check */
    if (sqlite3_open_v2(g_path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        ok = t && strcmp(t, "ok") == 0;
        if (!ok)
            fprintf(stderr, "store_torture: integrity_check: %s\n", t ? t : "(null)");
    } else {
        fprintf(stderr, "store_torture: integrity_check could not run: %s\n",
                db ? sqlite3_errmsg(db) : "no database");
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ok;
}

static void verify(int round)
{
    static uint8_t *seen;
    gg_store_opts o = { .backout_threshold = 0 };
    gg_store *st = NULL;
    gg_msg **msgs = NULL;
    size_t n = 0;
    int64_t depth = -1, mark = 0;

    if (!seen)
        seen = malloc(MAX_IDS);
    memset(seen, 0, MAX_IDS);
    if (!integrity())
        fail(round, "integrity_check is not ok", 0);
    if (gg_store_open(g_path, &o, &st) != GG_OK) {
        fail(round, "cannot reopen the store", 0);
        return;
    }
    if (gg_store_browse(st, "t", 0, MAX_IDS, 0, &msgs, &n) != GG_OK)
        fail(round, "browse failed", 0);
    for (size_t i = 0; i < n; i++) {
        int64_t id = msgs[i]->id;
        if (!body_ok(msgs[i]->data, msgs[i]->len))
            fail(round, "half-written or corrupt message", id);
        if (id <= 0 || id >= MAX_IDS)
            continue;
        seen[id] = 1;
        if (g_state[id] == 3) {
            fail(round, "acknowledged message is back", id);
        } else if (g_state[id] == 0) {
            g_inflight_puts++;      /* a put in flight that committed */
            g_state[id] = 1;
            g_hash[id] = fnv(msgs[i]->data, msgs[i]->len);
        } else if (g_hash[id] != fnv(msgs[i]->data, msgs[i]->len)) {
            fail(round, "message bytes differ from those reported", id);
        } else {
            g_state[id] = 1;        /* here now: from now on it may only go by an ack */
        }
    }
    for (int64_t id = 1; id < MAX_IDS; id++) {
        if (seen[id] || (g_state[id] != 1 && g_state[id] != 2))
            continue;
        if (g_state[id] == 2) {
            g_inflight_acks++;      /* an ack in flight that committed */
            g_state[id] = 3;
        } else {
            fail(round, "message reported put is lost", id);
            g_state[id] = 3;
        }
    }
    if (gg_store_depth(st, "t", &depth) != GG_OK || depth != (int64_t)n)
        fail(round, "kept depth differs from the messages held", depth);
    gg_msgs_free(msgs, n);
    msgs = NULL;
    if (gg_store_mark(st, "peer", &mark) != GG_OK || mark < g_mark)
        fail(round, "channel mark below the one reported", mark);
    if (gg_store_browse(st, "r", 0, MAX_IDS, 0, &msgs, &n) != GG_OK || (int64_t)n != mark)
        fail(round, "received items are not exactly 1..mark", (long long)n);
    for (size_t i = 0; i < n; i++) {
        int64_t seq = 0;
        if (msgs[i]->len == sizeof seq)
            memcpy(&seq, msgs[i]->data, sizeof seq);
        if (seq != (int64_t)i + 1) {
            fail(round, "received item out of place", seq);
            break;
        }
    }
    gg_msgs_free(msgs, n);
    g_mark = mark;
    gg_store_close(st);
}

/* read_some - read whatever the pipe has into buf; apply whole records. */
static int read_some(int round, int fd, uint8_t *buf, size_t *have, int timeout_ms)
{
    struct pollfd pf = { fd, POLLIN, 0 };
    ssize_t r;

    if (poll(&pf, 1, timeout_ms) <= 0)
        return 0;
    r = read(fd, buf + *have, 65536 - *have);
    if (r <= 0)
        return r == 0 ? -1 : 0;
    *have += (size_t)r;
    while (*have >= sizeof(rec)) {
        rec rr;
        memcpy(&rr, buf, sizeof rr);
        apply_rec(round, &rr);
        memmove(buf, buf + sizeof rr, *have - sizeof rr);
        *have -= sizeof rr;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    long kills = 50;
    unsigned seed = (unsigned)time(NULL);
    char tmpl[4096];
    static uint8_t buf[65536];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--kills") == 0 && i + 1 < argc)
            kills = atol(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = (unsigned)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: store_torture --kills N [--dir DIR] [--seed S]\n");
            return 2;
        }
    }
    if (!dir) {
        const char *base = getenv("GG_TEST_TMP");
        if (!base || !*base)
            base = "/tmp";
        mkdir(base, 0700);
        snprintf(tmpl, sizeof tmpl, "%s/torture-XXXXXX", base);
        dir = mkdtemp(tmpl);
        if (!dir)
            return 1;
    }
    snprintf(g_path, sizeof g_path, "%s/store.db", dir);
    g_hash = calloc(MAX_IDS, sizeof *g_hash);
    g_state = calloc(MAX_IDS, 1);
    if (!g_hash || !g_state)
        return 1;
    srand(seed);
    gg_log_set_level(GG_LOG_ERROR);
    printf("store_torture: dir=%s kills=%ld seed=%u\n", dir, kills, seed);
    for (long round = 1; round <= kills; round++) {
        int fds[2], status = 0;
        size_t have = 0;
        int64_t deadline;
        pid_t pid;

        if (pipe(fds) != 0)
            return 1;
        fflush(NULL);
        pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            close(fds[0]);
            g_fd = fds[1];
            child();
        }
        close(fds[1]);
        deadline = gg_mono_us() + 1000 * (1 + rand() % 120);
        while (gg_mono_us() < deadline)
            if (read_some((int)round, fds[0], buf, &have, 1) < 0)
                break;
        kill(pid, SIGKILL);
        while (read_some((int)round, fds[0], buf, &have, 1000) == 0)
            ;
        close(fds[0]);
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail((int)round, "child ended before the kill", status);
        verify((int)round);
        if (g_failures)
            break;
    }
    printf("store_torture: kills=%ld confirmed_ops=%lld inflight_puts_found=%lld "
           "inflight_acks_applied=%lld mark=%lld failures=%lld\n",
           kills, g_confirmed, g_inflight_puts, g_inflight_acks, (long long)g_mark, g_failures);
    if (!g_failures) {
        char p[4200];
        const char *sfx[] = { "", "-wal", "-shm" };
        for (size_t i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s%s", g_path, sfx[i]);
            unlink(p);
        }
        rmdir(dir);
    }
    return g_failures ? 1 : 0;
}
