/* site.c - the two sites of a bench run (site.h). */
#include "site.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int bench_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

gg_err bench_site_start(const char *db, int listen, const char *pki, const char *me,
                        const char *peer, int port, gg_store **st, gg_channel **ch)
{
    char addr[64], ca[400], cert[400], key[400];
    gg_channel_cfg c;
    gg_err e;

    *st = NULL;
    *ch = NULL;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(ca, sizeof ca, "%s/ca.crt", pki);
    snprintf(cert, sizeof cert, "%s/%s.crt", pki, me);
    snprintf(key, sizeof key, "%s/%s.key", pki, me);
    memset(&c, 0, sizeof c);
    c.listen = listen;
    c.address = addr;
    c.local_name = me;
    c.peer_name = peer;
    c.allow = "127.0.0.1/32";
    c.ca_file = ca;
    c.cert_file = cert;
    c.key_file = key;
    e = gg_store_open(db, NULL, st);
    if (e != GG_OK)
        return e;
    e = gg_channel_start(&c, *st, ch);
    if (e != GG_OK) {
        gg_store_close(*st);
        *st = NULL;
    }
    return e;
}

void bench_wait_running(gg_channel *ch, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 100) {
        gg_channel_stats s;

        gg_channel_get_stats(ch, &s);
        if (s.state == GG_CHANNEL_RUNNING)
            return;
        usleep(100000);
    }
}

gg_err bench_put_request(gg_store *st, int64_t *prev, const char *dest, const void *data,
                         size_t len)
{
    gg_err e = *prev ? gg_store_ack_put(st, *prev, GG_XMIT_QUEUE, dest, data, len, 0)
                     : gg_store_put(st, GG_XMIT_QUEUE, dest, data, len, 0, NULL);

    if (e == GG_OK || (*prev && gg_store_ack(st, *prev) == GG_OK))
        *prev = 0;
    return e;
}
