/* rr_amqp.c - the RabbitMQ side of bench/rr, through rabbitmq-c.
 *
 * The same round trip as the gridgate side, the way RabbitMQ is meant to
 * be used for it: a durable classic queue "rr.requests" and one durable
 * reply queue per requester; every message persistent (delivery_mode 2)
 * and published on a channel in confirm mode; consumers with manual
 * acknowledgements and prefetch 100. A requester publishes, waits for its
 * publisher confirm and its reply, then acknowledges the reply. The echo
 * responder pipelines: it publishes each reply as the request arrives and
 * acknowledges requests once their replies are confirmed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "rr.h"
#include "core/clock.h"

#define REQ_Q "rr.requests"
#define PREFETCH 100
#define WARMUP_US 1000000
#define PENDING_MAX 4096

static atomic_int a_stop;
static int64_t a_from, a_to;

/* rpc_ok - a synchronous call's reply was normal. */
static int rpc_ok(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 1;
    fprintf(stderr, "bench_rr: amqp %s failed (reply type %d)\n", what, (int)r.reply_type);
    return 0;
}

/* open_conn - connection, channel 1 in confirm mode, prefetch, queue. */
static amqp_connection_state_t open_conn(int port, const char *queue)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (!s || amqp_socket_open(s, "127.0.0.1", port) != AMQP_STATUS_OK)
        goto fail;
    if (!rpc_ok(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
                "login"))
        goto fail;
    amqp_channel_open(c, 1);
    if (!rpc_ok(amqp_get_rpc_reply(c), "channel.open"))
        goto fail;
    amqp_confirm_select(c, 1);
    if (!rpc_ok(amqp_get_rpc_reply(c), "confirm.select"))
        goto fail;
    amqp_basic_qos(c, 1, 0, PREFETCH, 0);
    if (!rpc_ok(amqp_get_rpc_reply(c), "basic.qos"))
        goto fail;
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    if (!rpc_ok(amqp_get_rpc_reply(c), "queue.declare"))
        goto fail;
    return c;
fail:
    amqp_destroy_connection(c);
    return NULL;
}

static void close_conn(amqp_connection_state_t c)
{
    if (!c)
        return;
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* publish - a persistent message to queue, reply_to set if given. */
static int publish(amqp_connection_state_t c, const char *queue, const char *reply_to,
                   amqp_bytes_t body)
{
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = 2;
    if (reply_to) {
        p._flags |= AMQP_BASIC_REPLY_TO_FLAG;
        p.reply_to = amqp_cstring_bytes(reply_to);
    }
    return amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &p,
                              body);
}

typedef struct areq {
    int port, idx;
    int64_t *lat;
    size_t n, cap;
    int64_t errors;
} areq;

/* requester_main - publish, await confirm and reply, ack; repeat. */
static void *requester_main(void *arg)
{
    areq *r = arg;
    char q[32], buf[RR_MSG_BYTES];
    snprintf(q, sizeof q, "rr.reply.%d", r->idx);
    amqp_connection_state_t c = open_conn(r->port, q);
    if (!c) {
        r->errors++;
        return NULL;
    }
    amqp_queue_purge(c, 1, amqp_cstring_bytes(q));
    amqp_basic_consume(c, 1, amqp_cstring_bytes(q), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (!rpc_ok(amqp_get_rpc_reply(c), "basic.consume")) {
        r->errors++;
        goto out;
    }
    memset(buf, 'x', sizeof buf);
    amqp_bytes_t body = { sizeof buf, buf };
    while (!atomic_load(&a_stop)) {
        int64_t t0 = gg_mono_us();
        int confirmed = 0, replied = 0;
        if (publish(c, REQ_Q, q, body) != AMQP_STATUS_OK) {
            r->errors++;
            break;
        }
        while (!(confirmed && replied)) {
            amqp_frame_t f;
            struct timeval tv = { 1, 0 };
            int st = amqp_simple_wait_frame_noblock(c, &f, &tv);
            if (st == AMQP_STATUS_TIMEOUT) {
                if (atomic_load(&a_stop))
                    goto out;
                continue;
            }
            if (st != AMQP_STATUS_OK || f.frame_type != AMQP_FRAME_METHOD) {
                r->errors++;
                goto out;
            }
            if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
                confirmed = 1;
            } else if (f.payload.method.id == AMQP_BASIC_DELIVER_METHOD) {
                amqp_basic_deliver_t *d = f.payload.method.decoded;
                uint64_t tag = d->delivery_tag;
                amqp_message_t m;
                if (!rpc_ok(amqp_read_message(c, 1, &m, 0), "read reply")) {
                    r->errors++;
                    goto out;
                }
                if (m.body.len != sizeof buf)
                    r->errors++;
                amqp_destroy_message(&m);
                amqp_basic_ack(c, 1, tag, 0);
                replied = 1;
            } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
                r->errors++;
                confirmed = 1;
            }
            amqp_maybe_release_buffers(c);
        }
        int64_t t1 = gg_mono_us();
        if (t0 >= a_from && t1 <= a_to && r->n < r->cap)
            r->lat[r->n++] = t1 - t0;
    }
out:
    close_conn(c);
    return NULL;
}

/* responder_main - echo each request to its reply_to; ack requests whose
 * replies are confirmed. */
static void *responder_main(void *arg)
{
    int port = *(int *)arg;
    amqp_connection_state_t c = open_conn(port, REQ_Q);
    uint64_t *tags = calloc(PENDING_MAX, sizeof *tags);
    uint64_t pub_seq = 0, acked_seq = 0;
    if (!c || !tags)
        goto out;
    amqp_basic_consume(c, 1, amqp_cstring_bytes(REQ_Q), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (!rpc_ok(amqp_get_rpc_reply(c), "basic.consume"))
        goto out;
    while (!atomic_load(&a_stop)) {
        amqp_frame_t f;
        struct timeval tv = { 0, 200000 };
        int st = amqp_simple_wait_frame_noblock(c, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT)
            continue;
        if (st != AMQP_STATUS_OK)
            break;
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_DELIVER_METHOD) {
            amqp_basic_deliver_t *d = f.payload.method.decoded;
            uint64_t tag = d->delivery_tag;
            amqp_message_t m;
            char rt[128];
            if (!rpc_ok(amqp_read_message(c, 1, &m, 0), "read request"))
                break;
            size_t l = m.properties.reply_to.len < sizeof rt - 1 ? m.properties.reply_to.len
                                                                 : sizeof rt - 1;
            memcpy(rt, m.properties.reply_to.bytes, l);
            rt[l] = '\0';
            publish(c, rt, NULL, m.body);
            amqp_destroy_message(&m);
            tags[++pub_seq % PENDING_MAX] = tag;
        } else if (f.payload.method.id == AMQP_BASIC_ACK_METHOD ||
                   f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            /* Confirms of one classic queue arrive in order: everything up
             * to this publish sequence number is settled. */
            uint64_t upto = f.payload.method.id == AMQP_BASIC_ACK_METHOD
                                ? ((amqp_basic_ack_t *)f.payload.method.decoded)->delivery_tag
                                : ((amqp_basic_nack_t *)f.payload.method.decoded)->delivery_tag;
            if (upto > acked_seq) {
                amqp_basic_ack(c, 1, tags[upto % PENDING_MAX], 1);
                acked_seq = upto;
            }
        }
        amqp_maybe_release_buffers(c);
    }
out:
    free(tags);
    close_conn(c);
    return NULL;
}

int rr_amqp_run(int port, int conc, double secs, rr_result *out)
{
    areq rq[RR_MAX_CONC];
    pthread_t th[RR_MAX_CONC], resp;
    int64_t *lat[RR_MAX_CONC];
    size_t n[RR_MAX_CONC];
    int64_t errors = 0;
    memset(rq, 0, sizeof rq);
    atomic_store(&a_stop, 0);
    amqp_connection_state_t c = open_conn(port, REQ_Q);
    if (!c)
        return -1;
    amqp_queue_purge(c, 1, amqp_cstring_bytes(REQ_Q));
    close_conn(c);
    pthread_create(&resp, NULL, responder_main, &port);
    a_from = gg_mono_us() + WARMUP_US;
    a_to = a_from + (int64_t)(secs * 1e6);
    for (int i = 0; i < conc; i++) {
        rq[i].port = port;
        rq[i].idx = i;
        rq[i].cap = 400000 / (size_t)conc + 1000;
        rq[i].lat = malloc(rq[i].cap * sizeof(int64_t));
        if (!rq[i].lat)
            return -1;
        pthread_create(&th[i], NULL, requester_main, &rq[i]);
    }
    while (gg_mono_us() < a_to)
        usleep(50000);
    atomic_store(&a_stop, 1);
    for (int i = 0; i < conc; i++) {
        pthread_join(th[i], NULL);
        lat[i] = rq[i].lat;
        n[i] = rq[i].n;
        errors += rq[i].errors;
    }
    pthread_join(resp, NULL);
    rr_summarise(lat, n, conc, secs, out);
    out->errors = errors;
    for (int i = 0; i < conc; i++)
        free(rq[i].lat);
    return 0;
}
