/* audit.c - hash-chained audit log: queue, writer thread, verify (audit.h).
 *
 * Invariants:
 *  1. Only the writer thread touches the file and the chain state (seq,
 *     prev) after open; callers only copy records into the ring under mu.
 *  2. A record is hashed with the previous record's hash, in the order the
 *     writer takes them; seq is assigned by the writer, so the file's seq
 *     is gap-free whatever the callers do.
 *  3. The queue is bounded (ring of GG_AUDIT_QUEUE); a full ring drops the
 *     new record (counted) and owes a "gap" record, queued first as soon as
 *     there is room: the chain never silently skips.
 *  4. A batch is appended with one write and one fsync; a failed write is
 *     counted and logged, and the file is cut back to its last good length
 *     so that the chain on disk stays whole.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/rand.h"

#define HASH_LEN 32
#define HEX_LEN 64
#define LINE_MAX_BYTES 512
#define TAIL_READ 4096
#define AUDIT_BATCH 1024        /* records per write and fsync, at most */

typedef struct rec {
    int64_t ts_ms;
    char event[24];
    char msg_id[33];
    char txn[GG_AUDIT_FIELD_MAX];
    char detail[GG_AUDIT_FIELD_MAX];
} rec;

struct gg_audit {
    pthread_mutex_t mu;
    pthread_cond_t more;       /* records queued or stop */
    pthread_cond_t done;       /* a batch became durable */
    pthread_t th;
    int started;
    int stop;
    int fd;
    char path[4096];
    EVP_MD *md;
    rec *ring;
    size_t head, count;        /* ring: oldest at head */
    int64_t owed_gap;          /* dropped records not yet announced */
    int64_t noted, durable;    /* records accepted / made durable (for flush) */
    int alarmed;
    /* writer-only chain state (invariant 1) */
    int64_t seq;
    uint8_t prev[HASH_LEN];
    off_t size;
    /* stats, under mu */
    gg_audit_stats st;
};

/* clean - copy s into out (size n) with '-' for empty and '_' for anything
 * outside printable ASCII without space. */
static void clean(const char *s, char *out, size_t n)
{
    size_t i = 0;

    if (s != NULL) {
        for (; s[i] != '\0' && i + 1 < n; i++)
            out[i] = (s[i] > ' ' && s[i] <= '~') ? s[i] : '_';
    }
    if (i == 0 && n > 1)
        out[i++] = '-';
    out[i] = '\0';
}

/* hex_of - lower-case hex of n bytes. */
static void hex_of(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* unhex - 64 hex digits to 32 bytes; -1 if malformed. */
static int unhex(const char *s, size_t len, uint8_t out[HASH_LEN])
{
    if (len != HEX_LEN)
        return -1;
    for (size_t i = 0; i < HASH_LEN; i++) {
        int v = 0;

        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + (size_t)k];

            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= c - '0';
            else if (c >= 'a' && c <= 'f')
                v |= c - 'a' + 10;
            else
                return -1;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* chain_hash - H(prev || body) into out. */
static int chain_hash(EVP_MD *md, const uint8_t prev[HASH_LEN], const char *body, size_t len,
                      uint8_t out[HASH_LEN])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok;

    ok = c != NULL && EVP_DigestInit_ex(c, md, NULL) == 1 &&
         EVP_DigestUpdate(c, prev, HASH_LEN) == 1 && EVP_DigestUpdate(c, body, len) == 1 &&
         EVP_DigestFinal_ex(c, out, &n) == 1 && n == HASH_LEN;
    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

/* md_for - the chain hash of suite, or NULL. */
static EVP_MD *md_for(const char *suite)
{
    if (suite != NULL && strcmp(suite, "gm") == 0)
        return EVP_MD_fetch(NULL, "SM3", NULL);
    if (suite == NULL || strcmp(suite, "intl") == 0)
        return EVP_MD_fetch(NULL, "SHA256", NULL);
    return NULL;
}

/* split - the 8 space-separated fields of line (len bytes, no newline):
 * start offsets and lengths. -1 unless exactly 8 non-empty fields. */
static int split(const char *line, size_t len, size_t off[8], size_t flen[8])
{
    size_t i = 0, f = 0;

    while (i < len) {
        size_t s = i;

        while (i < len && line[i] != ' ')
            i++;
        if (i == s || f == 8)
            return -1;
        off[f] = s;
        flen[f] = i - s;
        f++;
        if (i < len)
            i++;
        if (i == len && line[len - 1] == ' ')
            return -1;
    }
    return f == 8 ? 0 : -1;
}

/* parse_seq - a decimal >= 1 without sign or leading zero. */
static int parse_seq(const char *s, size_t n, int64_t *v)
{
    int64_t x = 0;

    if (n == 0 || n > 18 || s[0] == '0')
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

/* read_tail - the chain state from the last complete line of fd; a torn
 * last line is cut off (*torn = 1). */
static gg_err read_tail(gg_audit *a, int *torn)
{
    char buf[TAIL_READ + 1];
    struct stat sb;
    off_t from, cut;
    ssize_t n;
    size_t off[8], flen[8], len, start;
    char *nl;

    *torn = 0;
    a->seq = 0;
    memset(a->prev, 0, sizeof a->prev);
    if (fstat(a->fd, &sb) != 0)
        return GG_EIO;
    a->size = sb.st_size;
    if (sb.st_size == 0)
        return GG_OK;
    from = sb.st_size > TAIL_READ ? sb.st_size - TAIL_READ : 0;
    n = pread(a->fd, buf, (size_t)(sb.st_size - from), from);
    if (n != sb.st_size - from)
        return GG_EIO;
    buf[n] = '\0';
    len = (size_t)n;
    if (buf[len - 1] != '\n') {
        nl = memrchr(buf, '\n', len);
        cut = nl != NULL ? from + (nl - buf) + 1 : from;
        if (nl == NULL && from > 0)
            return GG_EPROTO;           /* a line longer than any we write */
        if (ftruncate(a->fd, cut) != 0)
            return GG_EIO;
        *torn = 1;
        a->size = cut;
        len = nl != NULL ? (size_t)(nl - buf) + 1 : 0;
        if (len == 0 && from == 0)
            return GG_OK;
    }
    /* buf[0, len) ends with '\n': find the start of the last line */
    buf[len - 1] = '\0';
    nl = memrchr(buf, '\n', len - 1);
    start = nl != NULL ? (size_t)(nl - buf) + 1 : 0;
    if (nl == NULL && from > 0)
        return GG_EPROTO;
    if (split(buf + start, len - 1 - start, off, flen) != 0 ||
        parse_seq(buf + start + off[0], flen[0], &a->seq) != 0 ||
        unhex(buf + start + off[7], flen[7], a->prev) != 0)
        return GG_EPROTO;
    return GG_OK;
}

/* format - append rec r as the next record of the chain to out. */
static int format(gg_audit *a, const rec *r, char *out, size_t outsz, size_t *n)
{
    char body[LINE_MAX_BYTES], ph[HEX_LEN + 1], hh[HEX_LEN + 1];
    uint8_t h[HASH_LEN];
    int bl, ll;

    bl = snprintf(body, sizeof body, "%lld %lld %s %s %s %s", (long long)(a->seq + 1),
                  (long long)r->ts_ms, r->event, r->msg_id, r->txn, r->detail);
    if (bl < 0 || (size_t)bl >= sizeof body || chain_hash(a->md, a->prev, body, (size_t)bl, h))
        return -1;
    hex_of(a->prev, HASH_LEN, ph);
    hex_of(h, HASH_LEN, hh);
    ll = snprintf(out, outsz, "%s %s %s\n", body, ph, hh);
    if (ll < 0 || (size_t)ll >= outsz)
        return -1;
    *n = (size_t)ll;
    a->seq++;
    memcpy(a->prev, h, HASH_LEN);
    return 0;
}

/* append - write buf (n bytes) and fsync; on failure cut back (invariant 4). */
static int append(gg_audit *a, const char *buf, size_t n)
{
    size_t done = 0;

    while (done < n) {
        ssize_t w = pwrite(a->fd, buf + done, n - done, a->size + (off_t)done);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        done += (size_t)w;
    }
    if (fdatasync(a->fd) != 0)
        goto fail;
    a->size += (off_t)n;
    return 0;
fail:
    if (ftruncate(a->fd, a->size) != 0)
        gg_error("audit", "msg=\"cannot cut back the audit log\" path=%s errno=%d", a->path,
                 errno);
    return -1;
}

/* writer_main - drain the ring in batches: hash, append, fsync. */
static void *writer_main(void *arg)
{
    gg_audit *a = arg;
    rec *batch = malloc(sizeof(rec) * (AUDIT_BATCH + 1));
    int last_failed = 0;        /* the last batch could not be written */
    char *out = malloc((AUDIT_BATCH + 1) * LINE_MAX_BYTES);

    if (batch == NULL || out == NULL) {
        gg_error("audit", "msg=\"audit writer out of memory\"");
        free(batch);
        free(out);
        return NULL;
    }
    for (;;) {
        size_t n = 0, len = 0, k;
        int64_t save_seq = a->seq;
        uint8_t save_prev[HASH_LEN];
        int bad = 0;

        pthread_mutex_lock(&a->mu);
        while (a->count == 0 && a->owed_gap == 0 && !a->stop)
            pthread_cond_wait(&a->more, &a->mu);
        /* at stop: write what is queued and owed, unless the disk just failed */
        if (a->count == 0 && (a->owed_gap == 0 || last_failed) && a->stop) {
            pthread_mutex_unlock(&a->mu);
            break;
        }
        while (a->count > 0 && n < AUDIT_BATCH) {
            batch[n++] = a->ring[a->head];
            a->head = (a->head + 1) % GG_AUDIT_QUEUE;
            a->count--;
        }
        if (a->owed_gap > 0 && a->count == 0) {
            /* drops after everything queued: announce them now (invariant 3) */
            memset(&batch[n], 0, sizeof batch[n]);
            batch[n].ts_ms = gg_now_ms();
            snprintf(batch[n].event, sizeof batch[n].event, "gap");
            clean(NULL, batch[n].msg_id, sizeof batch[n].msg_id);
            clean(NULL, batch[n].txn, sizeof batch[n].txn);
            snprintf(batch[n].detail, sizeof batch[n].detail, "dropped=%lld",
                     (long long)a->owed_gap);
            a->owed_gap = 0;
            n++;
        }
        pthread_mutex_unlock(&a->mu);

        memcpy(save_prev, a->prev, HASH_LEN);
        for (k = 0; k < n && !bad; k++) {
            size_t l = 0;

            bad = format(a, &batch[k], out + len, LINE_MAX_BYTES, &l) != 0;
            len += l;
        }
        if (bad || append(a, out, len) != 0) {
            a->seq = save_seq;          /* the chain goes on from what is on disk */
            memcpy(a->prev, save_prev, HASH_LEN);
            gg_error("audit", "msg=\"audit write failed; records lost\" records=%zu path=%s",
                     n, a->path);
        }
        pthread_mutex_lock(&a->mu);
        if (a->seq == save_seq) {
            a->st.io_errors++;
            last_failed = 1;
            a->st.dropped += (int64_t)n;
            a->owed_gap += (int64_t)n;
            pthread_mutex_unlock(&a->mu);
            usleep(100000);         /* a failing disk: do not spin */
            pthread_mutex_lock(&a->mu);
        } else {
            last_failed = 0;
            a->st.written += (int64_t)n;
        }
        a->st.last_seq = a->seq;
        hex_of(a->prev, HASH_LEN, a->st.last_hash);
        a->durable += (int64_t)n;
        pthread_cond_broadcast(&a->done);
        pthread_mutex_unlock(&a->mu);
    }
    free(batch);
    free(out);
    return NULL;
}

/* push - put r at the tail of the ring (caller holds mu, room checked). */
static void push(gg_audit *a, const rec *r)
{
    a->ring[(a->head + a->count) % GG_AUDIT_QUEUE] = *r;
    a->count++;
    a->noted++;
}

void gg_audit_note(gg_audit *a, const char *event, const uint8_t *msg_id, const char *txn,
                   const char *detail)
{
    rec r;

    if (a == NULL)
        return;
    memset(&r, 0, sizeof r);
    r.ts_ms = gg_now_ms();
    clean(event, r.event, sizeof r.event);
    if (msg_id != NULL)
        hex_of(msg_id, 16, r.msg_id);
    else
        clean(NULL, r.msg_id, sizeof r.msg_id);
    clean(txn, r.txn, sizeof r.txn);
    clean(detail, r.detail, sizeof r.detail);
    pthread_mutex_lock(&a->mu);
    if (a->owed_gap > 0 && a->count + 2 <= GG_AUDIT_QUEUE) {
        rec g;

        memset(&g, 0, sizeof g);
        g.ts_ms = r.ts_ms;
        snprintf(g.event, sizeof g.event, "gap");
        clean(NULL, g.msg_id, sizeof g.msg_id);
        clean(NULL, g.txn, sizeof g.txn);
        snprintf(g.detail, sizeof g.detail, "dropped=%lld", (long long)a->owed_gap);
        push(a, &g);
        a->owed_gap = 0;
    }
    if (a->count < GG_AUDIT_QUEUE && a->owed_gap == 0) {
        push(a, &r);
        pthread_cond_signal(&a->more);
        if (!a->alarmed && a->count > GG_AUDIT_QUEUE * 4 / 5) {
            a->alarmed = 1;
            gg_warn("audit", "msg=\"audit log falling behind\" queued=%zu", a->count);
        } else if (a->alarmed && a->count < GG_AUDIT_QUEUE / 2) {
            a->alarmed = 0;
        }
    } else {
        a->owed_gap++;
        a->st.dropped++;
        if (a->st.dropped == 1 || a->st.dropped % 1000 == 0)
            gg_error("audit", "msg=\"audit queue full, records dropped\" dropped=%lld",
                     (long long)a->st.dropped);
    }
    pthread_mutex_unlock(&a->mu);
}

void gg_audit_flush(gg_audit *a)
{
    int64_t want;

    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    want = a->noted;
    while (a->durable < want && a->started)
        pthread_cond_wait(&a->done, &a->mu);
    pthread_mutex_unlock(&a->mu);
}

gg_err gg_audit_open(const char *path, const char *suite, gg_audit **out)
{
    gg_audit *a;
    int torn = 0;
    gg_err rc;

    *out = NULL;
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return GG_ENOMEM;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->more, NULL);
    pthread_cond_init(&a->done, NULL);
    a->fd = -1;
    snprintf(a->path, sizeof a->path, "%s", path);
    a->md = md_for(suite);
    a->ring = malloc(sizeof(rec) * GG_AUDIT_QUEUE);
    if (a->md == NULL || a->ring == NULL) {
        rc = a->md == NULL ? GG_ECONFIG : GG_ENOMEM;
        goto fail;
    }
    a->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    rc = GG_EIO;
    if (a->fd < 0)
        goto fail;
    rc = read_tail(a, &torn);
    if (rc != GG_OK)
        goto fail;
    a->st.last_seq = a->seq;
    hex_of(a->prev, HASH_LEN, a->st.last_hash);
    if (pthread_create(&a->th, NULL, writer_main, a) != 0) {
        rc = GG_ENOMEM;
        goto fail;
    }
    a->started = 1;
    if (torn) {
        gg_warn("audit", "msg=\"torn last record cut off\" path=%s", path);
        gg_audit_note(a, "recovered", NULL, NULL, "torn_tail_cut");
    }
    gg_info("audit", "msg=\"audit log open\" path=%s records=%lld head=%s", path,
            (long long)a->seq, a->st.last_hash);
    *out = a;
    return GG_OK;
fail:
    gg_error("audit", "msg=\"cannot open audit log\" path=%s err=%s", path, gg_errname(rc));
    gg_audit_close(a);
    return rc;
}

gg_err gg_audit_open_config(const gg_config *cfg, gg_audit **out)
{
    char buf[4096];
    const char *path = gg_config_path_beside_store(cfg, "security.audit_log", "audit.log", buf,
                                                   sizeof buf);

    if (path == NULL)
        return GG_EINVAL;
    return gg_audit_open(path, gg_config_str(cfg, "security.suite"), out);
}

void gg_audit_close(gg_audit *a)
{
    if (a == NULL)
        return;
    if (a->started) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_signal(&a->more);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->th, NULL);
        gg_info("audit", "msg=\"audit log closed\" records=%lld head=%s", (long long)a->seq,
                a->st.last_hash);
    }
    if (a->fd >= 0)
        close(a->fd);
    EVP_MD_free(a->md);
    free(a->ring);
    pthread_cond_destroy(&a->more);
    pthread_cond_destroy(&a->done);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

void gg_audit_get_stats(gg_audit *a, gg_audit_stats *st)
{
    pthread_mutex_lock(&a->mu);
    *st = a->st;
    st->queued = (int64_t)a->count;
    pthread_mutex_unlock(&a->mu);
}

void gg_audit_write_metrics(gg_audit *a, FILE *f)
{
    gg_audit_stats st;

    if (a == NULL)
        return;
    gg_audit_get_stats(a, &st);
    fprintf(f,
            "# HELP gridgate_audit_records_total Audit records appended since start.\n"
            "# TYPE gridgate_audit_records_total counter\n"
            "gridgate_audit_records_total %lld\n"
            "# HELP gridgate_audit_dropped_total Audit records lost (queue full or write error).\n"
            "# TYPE gridgate_audit_dropped_total counter\n"
            "gridgate_audit_dropped_total %lld\n"
            "# HELP gridgate_audit_queued Audit records waiting for the writer.\n"
            "# TYPE gridgate_audit_queued gauge\n"
            "gridgate_audit_queued %lld\n"
            "# HELP gridgate_audit_head Sequence number of the chain's last record (label: its hash).\n"
            "# TYPE gridgate_audit_head gauge\n"
            "gridgate_audit_head{hash=\"%s\"} %lld\n",
            (long long)st.written, (long long)st.dropped, (long long)st.queued, st.last_hash,
            (long long)st.last_seq);
}

/* verify_line - check one line against the chain state. */
static int verify_line(EVP_MD *md, const char *line, size_t len, int64_t *seq,
                       uint8_t prev[HASH_LEN], const char **why)
{
    size_t off[8], flen[8];
    uint8_t p[HASH_LEN], h[HASH_LEN], want[HASH_LEN];
    int64_t s;

    if (split(line, len, off, flen) != 0 || parse_seq(line + off[0], flen[0], &s) != 0 ||
        unhex(line + off[6], flen[6], p) != 0 || unhex(line + off[7], flen[7], h) != 0) {
        *why = "malformed record";
        return -1;
    }
    if (s != *seq + 1) {
        *why = s <= *seq ? "sequence goes back: record reordered or repeated"
                         : "sequence gap: record removed";
        return -1;
    }
    if (memcmp(p, prev, HASH_LEN) != 0) {
        *why = "broken link: the previous record was removed, replaced or reordered";
        return -1;
    }
    if (chain_hash(md, prev, line, off[6] - 1, want) != 0 || memcmp(want, h, HASH_LEN) != 0) {
        *why = "hash mismatch: record altered";
        return -1;
    }
    *seq = s;
    memcpy(prev, h, HASH_LEN);
    return 0;
}

gg_err gg_audit_verify(const char *path, const char *suite, int64_t *records,
                       char last_hash[65], char *why, size_t whysz)
{
    EVP_MD *md = md_for(suite);
    FILE *f = NULL;
    char line[LINE_MAX_BYTES + 2];
    uint8_t prev[HASH_LEN];
    int64_t seq = 0, lineno = 0;
    const char *reason = NULL;
    gg_err rc = GG_EIO;

    memset(prev, 0, sizeof prev);
    *records = 0;
    if (md == NULL) {
        snprintf(why, whysz, "unknown suite");
        return GG_ECONFIG;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(why, whysz, "cannot open %s", path);
        goto out;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        size_t len = strlen(line);

        lineno++;
        if (len == 0 || line[len - 1] != '\n') {
            reason = "line too long or not terminated";
            break;
        }
        if (verify_line(md, line, len - 1, &seq, prev, &reason) != 0)
            break;
    }
    if (reason != NULL) {
        snprintf(why, whysz, "line %lld: %s", (long long)lineno, reason);
        rc = GG_EPROTO;
        goto out;
    }
    if (ferror(f)) {
        snprintf(why, whysz, "read error on %s", path);
        goto out;
    }
    *records = seq;
    hex_of(prev, HASH_LEN, last_hash);
    rc = GG_OK;
out:
    if (f != NULL)
        fclose(f);
    EVP_MD_free(md);
    return rc;
}
