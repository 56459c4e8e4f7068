/* envprobe.c - test tool: look at and forge envelopes in a role's store,
 * for the message-security integration tests (test_security_e2e.py).
 *
 *   gg_envprobe ids STORE QUEUE
 *       print "<msg_id hex> <kind> <txn>" of every envelope on QUEUE (peek
 *       only: nothing is verified or removed).
 *   gg_envprobe reply STORE KEYDIR SUITE CORR_ID_HEX HASH_HEX PAYLOAD
 *       seal PAYLOAD as the utility's reply to CORR_ID with req_hash HASH
 *       (64 hex digits) using the utility's keys in KEYDIR, and put it on
 *       STORE's transmission queue for the portal's "replies" queue; the
 *       running utility's channel sends it.
 *   gg_envprobe copy STORE QUEUE DEST
 *       put a byte-for-byte copy of every envelope on QUEUE onto STORE's
 *       transmission queue for DEST at the peer (a replay).
 * Exit 0 on success, 1 on failure, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/channel.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "envelope/envelope.h"
#include "store/store.h"

/* unhex - n bytes from 2n hex digits; -1 if malformed. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;

        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* cmd_ids - list the envelopes of a queue. */
static int cmd_ids(gg_store *st, const char *queue)
{
    gg_msg **msgs = NULL;
    size_t n = 0;
    char hex[33];

    if (gg_store_browse(st, queue, 0, 100000, 0, &msgs, &n) != GG_OK)
        return 1;
    for (size_t i = 0; i < n; i++) {
        gg_env_hdr h;

        if (gg_env_peek(msgs[i]->data, msgs[i]->len, &h) != GG_OK)
            continue;
        gg_hex(h.msg_id, 16, hex);
        printf("%s %u %s\n", hex, h.kind, h.txn);
    }
    gg_msgs_free(msgs, n);
    return 0;
}

/* cmd_reply - seal and queue a forged reply. */
static int cmd_reply(gg_store *st, char **a)
{
    char sk[600], kk[600], ps[600], pk[600], err[256];
    gg_env_keys *k = NULL;
    gg_buf b = GG_BUF_INIT(0);
    gg_env_hdr h;
    int rc = 1;

    snprintf(sk, sizeof sk, "%s/utility.sign.key", a[0]);
    snprintf(kk, sizeof kk, "%s/utility.kem.key", a[0]);
    snprintf(ps, sizeof ps, "%s/portal.sign.pub", a[0]);
    snprintf(pk, sizeof pk, "%s/portal.kem.pub", a[0]);
    gg_env_keys_cfg c = { a[1], "utility", sk, kk, ps, pk };
    if (gg_env_keys_load(&c, &k, err, sizeof err) != GG_OK) {
        fprintf(stderr, "gg_envprobe: %s\n", err);
        return 1;
    }
    memset(&h, 0, sizeof h);
    h.kind = GG_ENV_REPLY;
    gg_new_id(h.msg_id);
    if (unhex(a[2], h.corr_id, 16) != 0 || unhex(a[3], h.req_hash, GG_ENV_HASH_LEN) != 0)
        goto out;
    snprintf(h.txn, sizeof h.txn, "bills.query");
    snprintf(h.receiver, sizeof h.receiver, "portal");
    h.created_ms = gg_now_ms();
    h.expiry_ms = h.created_ms + 30000;
    if (gg_env_seal(k, &h, a[4], strlen(a[4]), &b) != GG_OK ||
        gg_store_put(st, GG_XMIT_QUEUE, "replies", b.data, b.len, 0, NULL) != GG_OK)
        goto out;
    rc = 0;
out:
    gg_buf_free(&b);
    gg_env_keys_free(k);
    return rc;
}

/* cmd_copy - queue a copy of every message of queue for dest. */
static int cmd_copy(gg_store *st, const char *queue, const char *dest)
{
    gg_msg **msgs = NULL;
    size_t n = 0;
    int rc = 0;

    if (gg_store_browse(st, queue, 0, 100000, 0, &msgs, &n) != GG_OK)
        return 1;
    for (size_t i = 0; i < n; i++) {
        if (gg_store_put(st, GG_XMIT_QUEUE, dest, msgs[i]->data, msgs[i]->len, 0, NULL) != GG_OK)
            rc = 1;
    }
    printf("%zu\n", n);
    gg_msgs_free(msgs, n);
    return rc;
}

int main(int argc, char **argv)
{
    gg_store *st = NULL;
    int rc = 2;

    gg_log_set_level(GG_LOG_ERROR);
    if (argc < 3)
        goto usage;
    if (gg_store_open(argv[2], NULL, &st) != GG_OK) {
        fprintf(stderr, "gg_envprobe: cannot open %s\n", argv[2]);
        return 1;
    }
    if (strcmp(argv[1], "ids") == 0 && argc == 4)
        rc = cmd_ids(st, argv[3]);
    else if (strcmp(argv[1], "reply") == 0 && argc == 8)
        rc = cmd_reply(st, argv + 3);
    else if (strcmp(argv[1], "copy") == 0 && argc == 5)
        rc = cmd_copy(st, argv[3], argv[4]);
    gg_store_close(st);
    if (rc != 2)
        return rc;
usage:
    fprintf(stderr, "usage: gg_envprobe ids STORE QUEUE | reply STORE KEYDIR SUITE CORR HASH "
                    "PAYLOAD | copy STORE QUEUE DEST\n");
    return 2;
}
