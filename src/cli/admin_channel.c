/* admin_channel.c - `gridgate admin channel -c FILE`: the channel's state
 * as the running role sees it, in the spirit of MQ's DISPLAY CHSTATUS.
 *
 * Reads the role's config for admin.listen, fetches /metrics from that
 * loopback listener over plain HTTP (the role must be running), and prints
 * the gridgate_channel_* series as a short report: state, last sequence
 * numbers each way, batches in flight, bytes, messages, reconnects and
 * refusals. Exit status: 0 running, 3 the channel is not running
 * (retrying or stopped), 1 the role could not be asked, 2 bad usage.
 * Never talks to anything but a loopback address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"

#define PAGE_MAX (1u << 20)  /* the admin page is well below this */
#define IO_TIMEOUT_MS 5000

/* The series the report shows, in the order they are printed. */
typedef struct chan_view {
    char state[16];
    long long seq_out, seq_in, seq_sent, in_flight;
    long long bytes_out, bytes_in, msgs_out, msgs_in, batches_out, batches_in;
    long long resends, reconnects, dropped, held, reloads_ok, reloads_failed;
    long long ref_allow, ref_limit, ref_tls, ref_check;
    long long silence_ms, up_since_ms;
    int seen;             /* gridgate_channel_state lines found */
} chan_view;

/* split_hostport - "host:port" or "[v6]:port" into host and port strings. */
static int split_hostport(const char *a, char *host, size_t hostsz, char *port, size_t portsz)
{
    const char *colon = strrchr(a, ':');
    const char *h = a;
    size_t hl;
    if (!colon || !colon[1] || strlen(colon + 1) >= portsz)
        return -1;
    hl = (size_t)(colon - a);
    if (hl >= 2 && a[0] == '[' && a[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostsz)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, portsz, "%s", colon + 1);
    return 0;
}

/* is_loopback - sa is 127.0.0.0/8 or ::1. */
static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 0;
}

/* wait_fd - poll fd for events until the deadline; 0 ready, -1 timeout. */
static int wait_fd(int fd, short events, int64_t deadline_us)
{
    int64_t left = (deadline_us - gg_mono_us()) / 1000;
    struct pollfd p = { fd, events, 0 };
    if (left <= 0)
        return -1;
    return poll(&p, 1, (int)left) == 1 ? 0 : -1;
}

/* fetch_metrics - GET /metrics from listen; the body into *out (caller
 * frees). 0 on success, -1 with a message on stderr. */
static int fetch_metrics(const char *listen, char **out)
{
    char host[256], port[16], req[400];
    struct addrinfo hints, *res = NULL;
    char *buf = NULL;
    size_t len = 0;
    int fd = -1, rc = -1;
    int64_t deadline = gg_mono_us() + (int64_t)IO_TIMEOUT_MS * 1000;

    if (split_hostport(listen, host, sizeof host, port, sizeof port) != 0) {
        fprintf(stderr, "gridgate: admin.listen \"%s\" is not host:port\n", listen);
        return -1;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res) {
        fprintf(stderr, "gridgate: cannot resolve admin.listen %s\n", listen);
        goto out;
    }
    if (!is_loopback(res->ai_addr)) {
        fprintf(stderr, "gridgate: admin.listen %s is not a loopback address\n", listen);
        goto out;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        fprintf(stderr, "gridgate: cannot reach the admin listener at %s: %s (is the role "
                        "running?)\n", listen, strerror(errno));
        goto out;
    }
    int n = snprintf(req, sizeof req,
                     "GET /metrics HTTP/1.0\r\nHost: %s\r\nUser-Agent: gridgate-admin\r\n\r\n",
                     listen);
    if (n < 0 || (size_t)n >= sizeof req || wait_fd(fd, POLLOUT, deadline) != 0 ||
        send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        fprintf(stderr, "gridgate: cannot send to the admin listener at %s\n", listen);
        goto out;
    }
    buf = malloc(PAGE_MAX + 1);
    if (!buf)
        goto out;
    for (;;) {
        if (len == PAGE_MAX) {
            fprintf(stderr, "gridgate: admin page larger than %u bytes\n", PAGE_MAX);
            goto out;
        }
        if (wait_fd(fd, POLLIN, deadline) != 0) {
            fprintf(stderr, "gridgate: the admin listener at %s did not answer in time\n",
                    listen);
            goto out;
        }
        ssize_t r = recv(fd, buf + len, PAGE_MAX - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "gridgate: reading the admin page: %s\n", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) != 0 || len < 12 || strncmp(buf + 9, "200", 3) != 0) {
        fprintf(stderr, "gridgate: the admin listener at %s did not answer 200\n", listen);
        goto out;
    }
    char *body = strstr(buf, "\r\n\r\n");
    if (!body) {
        fprintf(stderr, "gridgate: malformed answer from the admin listener\n");
        goto out;
    }
    body += 4;
    memmove(buf, body, strlen(body) + 1);
    *out = buf;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    if (res)
        freeaddrinfo(res);
    return rc;
}

/* take - if line is series name with exactly labels (NULL: none), store its
 * value in *v and return 1. */
static int take(const char *line, const char *name, const char *labels, long long *v)
{
    size_t nl = strlen(name);
    const char *p = line + nl;
    if (strncmp(line, name, nl) != 0)
        return 0;
    if (labels) {
        size_t ll = strlen(labels);
        if (p[0] != '{' || strncmp(p + 1, labels, ll) != 0 || p[1 + ll] != '}')
            return 0;
        p += ll + 2;
    }
    if (*p != ' ')
        return 0;
    *v = strtoll(p + 1, NULL, 10);
    return 1;
}

/* parse_line - one line of the page into v. */
static void parse_line(const char *l, chan_view *v)
{
    static const char *const states[] = { "running", "retrying", "stopped" };
    long long x;
    for (size_t i = 0; i < 3; i++) {
        char lab[32];
        snprintf(lab, sizeof lab, "state=\"%s\"", states[i]);
        if (take(l, "gridgate_channel_state", lab, &x)) {
            v->seen++;
            if (x == 1)
                snprintf(v->state, sizeof v->state, "%s", states[i]);
            return;
        }
    }
    struct {
        const char *name, *labels;
        long long *dst;
    } t[] = {
        { "gridgate_channel_seq", "direction=\"out\"", &v->seq_out },
        { "gridgate_channel_seq", "direction=\"in\"", &v->seq_in },
        { "gridgate_channel_seq_sent", NULL, &v->seq_sent },
        { "gridgate_channel_batches_in_flight", NULL, &v->in_flight },
        { "gridgate_channel_bytes_total", "direction=\"out\"", &v->bytes_out },
        { "gridgate_channel_bytes_total", "direction=\"in\"", &v->bytes_in },
        { "gridgate_channel_messages_total", "direction=\"out\"", &v->msgs_out },
        { "gridgate_channel_messages_total", "direction=\"in\"", &v->msgs_in },
        { "gridgate_channel_batches_total", "direction=\"out\"", &v->batches_out },
        { "gridgate_channel_batches_total", "direction=\"in\"", &v->batches_in },
        { "gridgate_channel_resends_dropped_total", NULL, &v->resends },
        { "gridgate_channel_reconnects_total", NULL, &v->reconnects },
        { "gridgate_channel_dropped_total", NULL, &v->dropped },
        { "gridgate_channel_held_total", NULL, &v->held },
        { "gridgate_channel_reloads_total", "result=\"ok\"", &v->reloads_ok },
        { "gridgate_channel_reloads_total", "result=\"failed\"", &v->reloads_failed },
        { "gridgate_channel_refused_total", "stage=\"allow\"", &v->ref_allow },
        { "gridgate_channel_refused_total", "stage=\"limit\"", &v->ref_limit },
        { "gridgate_channel_refused_total", "stage=\"handshake\"", &v->ref_tls },
        { "gridgate_channel_refused_total", "stage=\"check\"", &v->ref_check },
        { "gridgate_channel_peer_silence_ms", NULL, &v->silence_ms },
        { "gridgate_channel_up_since_ms", NULL, &v->up_since_ms },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (take(l, t[i].name, t[i].labels, t[i].dst))
            return;
    }
}

/* report - the human-readable view. */
static void report(const gg_config *cfg, const chan_view *v)
{
    const char *mode = gg_config_str(cfg, "channel.mode");
    printf("channel     %s -> %s (%s %s)\n", gg_config_str(cfg, "site.name"),
           gg_config_str(cfg, "channel.peer_name"), mode ? mode : "?",
           gg_config_str(cfg, "channel.address"));
    if (strcmp(v->state, "running") == 0 && v->up_since_ms > 0)
        printf("state       running (up %lld s)\n",
               (long long)(gg_now_ms() - v->up_since_ms) / 1000);
    else
        printf("state       %s\n", v->state);
    printf("seq out     %lld acknowledged by the peer (%lld sent)\n", v->seq_out, v->seq_sent);
    printf("seq in      %lld committed here\n", v->seq_in);
    printf("in flight   %lld batches\n", v->in_flight);
    printf("bytes       out %lld  in %lld\n", v->bytes_out, v->bytes_in);
    printf("messages    out %lld  in %lld  (batches out %lld  in %lld, resends dropped %lld)\n",
           v->msgs_out, v->msgs_in, v->batches_out, v->batches_in, v->resends);
    printf("reconnects  %lld\n", v->reconnects);
    printf("refused     allow %lld  limit %lld  handshake %lld  check %lld\n", v->ref_allow,
           v->ref_limit, v->ref_tls, v->ref_check);
    if (v->silence_ms >= 0)
        printf("peer heard  %lld ms ago\n", v->silence_ms);
    else
        printf("peer heard  never\n");
    printf("unsendable  %lld  held (queue full) %lld  reloads %lld ok, %lld failed\n",
           v->dropped, v->held, v->reloads_ok, v->reloads_failed);
}

/* gg_cmd_admin_channel - `admin channel -c FILE`. */
int gg_cmd_admin_channel(int argc, char **argv)
{
    const char *file = NULL;
    gg_config *cfg = NULL;
    char err[512], *page = NULL;
    chan_view v;
    int rc = 1;

    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            file = argv[++i];
        } else {
            fprintf(stderr, "usage: gridgate admin channel -c FILE\n");
            return 2;
        }
    }
    if (!file) {
        fprintf(stderr, "usage: gridgate admin channel -c FILE\n");
        return 2;
    }
    if (gg_config_load(file, &cfg, err, sizeof err) != GG_OK) {
        fprintf(stderr, "gridgate: %s\n", err);
        return 2;
    }
    if (fetch_metrics(gg_config_str(cfg, "admin.listen"), &page) != 0)
        goto out;
    memset(&v, 0, sizeof v);
    snprintf(v.state, sizeof v.state, "unknown");
    v.silence_ms = -1;
    for (char *save = NULL, *l = strtok_r(page, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        parse_line(l, &v);
    if (v.seen == 0) {
        fprintf(stderr, "gridgate: the admin page has no channel series\n");
        goto out;
    }
    report(cfg, &v);
    rc = strcmp(v.state, "running") == 0 ? 0 : 3;
out:
    free(page);
    gg_config_free(cfg);
    return rc;
}
