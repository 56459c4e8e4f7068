/* chanprobe.c - test tool: traffic for the channel tests, through a
 * running role's own store.
 *
 *   gg_chanprobe put STORE DEST TAG FIRST COUNT [PAUSE_US]
 *       put COUNT messages "TAG <n> <padding>" (n = FIRST ..) on the
 *       store's transmission queue, addressed to queue DEST at the peer,
 *       one durable put each, PAUSE_US apart; the role's channel (another
 *       process on the same SQLite file) sends them.
 *   gg_chanprobe dump STORE QUEUE
 *       print "TAG n" of every message on QUEUE, in store order.
 *
 * The integration tests (tests/integration/test_channel_*.py) put a
 * numbered sequence on each side and read what arrived on the other to
 * count losses, duplicates and reorderings. Exit 0 on success, 1 on a
 * store error, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel/channel.h"
#include "store/store.h"

#define PAYLOAD 200   /* bytes of each message */

/* arg_ll - strict non-negative decimal, -1 on error. */
static long long arg_ll(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    return (*s && end && *end == '\0' && v >= 0) ? v : -1;
}

/* pause_us - sleep us microseconds. */
static void pause_us(long long us)
{
    struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };
    if (us > 0)
        nanosleep(&ts, NULL);
}

/* cmd_put - see the file comment. */
static int cmd_put(gg_store *st, const char *dest, const char *tag, long long first,
                   long long count, long long pause)
{
    char buf[PAYLOAD];
    for (long long n = first; n < first + count; n++) {
        memset(buf, '.', sizeof buf);
        int len = snprintf(buf, sizeof buf, "%s %lld ", tag, n);
        if (len < 0 || (size_t)len >= sizeof buf)
            return 2;
        gg_err e;
        /* A role being killed and restarted may hold the lock a while. */
        for (int tries = 0;; tries++) {
            e = gg_store_put(st, GG_XMIT_QUEUE, dest, buf, sizeof buf, 0, NULL);
            if (e != GG_EBUSY || tries == 50)
                break;
            pause_us(100000);
        }
        if (e != GG_OK) {
            fprintf(stderr, "chanprobe: put %lld: %s\n", n, gg_errname(e));
            return 1;
        }
        pause_us(pause);
    }
    printf("put %lld\n", count);
    return 0;
}

/* cmd_dump - see the file comment. */
static int cmd_dump(gg_store *st, const char *queue)
{
    int64_t after = 0;
    for (;;) {
        gg_msg **m = NULL;
        size_t n = 0;
        gg_err e = gg_store_browse(st, queue, after, 1000, 0, &m, &n);
        if (e != GG_OK) {
            fprintf(stderr, "chanprobe: browse: %s\n", gg_errname(e));
            return 1;
        }
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            const char *d = (const char *)m[i]->data;
            size_t len = m[i]->len, k = 0, words = 0;
            /* "TAG n" is everything before the second space. */
            while (k < len && words < 2) {
                if (d[k] == ' ')
                    words++;
                if (words < 2)
                    k++;
            }
            printf("%.*s\n", (int)k, d);
            after = m[i]->id;
        }
        gg_msgs_free(m, n);
    }
    return 0;
}

int main(int argc, char **argv)
{
    gg_store *st = NULL;
    int rc = 2;
    if (argc < 4)
        goto usage;
    if (strcmp(argv[1], "put") == 0 && (argc == 7 || argc == 8)) {
        long long first = arg_ll(argv[5]), count = arg_ll(argv[6]);
        long long pause = argc == 8 ? arg_ll(argv[7]) : 0;
        if (first < 0 || count < 0 || pause < 0 || strlen(argv[4]) > 32)
            goto usage;
        if (gg_store_open(argv[2], NULL, &st) != GG_OK) {
            fprintf(stderr, "chanprobe: cannot open %s\n", argv[2]);
            return 1;
        }
        rc = cmd_put(st, argv[3], argv[4], first, count, pause);
    } else if (strcmp(argv[1], "dump") == 0 && argc == 4) {
        if (gg_store_open(argv[2], NULL, &st) != GG_OK) {
            fprintf(stderr, "chanprobe: cannot open %s\n", argv[2]);
            return 1;
        }
        rc = cmd_dump(st, argv[3]);
    } else {
        goto usage;
    }
    gg_store_close(st);
    return rc;
usage:
    fprintf(stderr, "usage: gg_chanprobe put STORE DEST TAG FIRST COUNT [PAUSE_US]\n"
                    "       gg_chanprobe dump STORE QUEUE\n");
    return 2;
}
