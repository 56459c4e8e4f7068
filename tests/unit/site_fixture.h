/* site_fixture.h - two sites on 127.0.0.1 for in-process unit tests: a
 * private directory (tmpdir.h) with a PKI from gg_pki_init, a loopback
 * port, and the config text of a site that listens or connects on it,
 * plus a utility that answers from a marketing database. Static inline,
 * for any test file that includes cmocka first; nothing is started. */
#ifndef GG_TEST_SITE_FIXTURE_H
#define GG_TEST_SITE_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "pki/pki.h"
#include "tmpdir.h"

typedef struct gg_test_site {
    char dir[256];      /* private to the test; removed by gg_test_site_remove */
    char pki[300];      /* dir/pki: CA, certificates and keys of both sites */
    int port;           /* the channel's loopback port */
} gg_test_site;

/* gg_test_free_port - a loopback port that was free a moment ago; -1 if
 * none can be had. */
static inline int gg_test_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* gg_test_site_init - a new directory named prefix + 6 characters, the
 * PKI in it and a free port; -1 if any of them cannot be had. */
static inline int gg_test_site_init(gg_test_site *s, const char *prefix)
{
    if (gg_test_mkdtemp(s->dir, sizeof s->dir, prefix) == NULL)
        return -1;
    snprintf(s->pki, sizeof s->pki, "%s/pki", s->dir);
    if (gg_pki_init(s->pki, NULL) != GG_OK)
        return -1;
    s->port = gg_test_free_port();
    return s->port > 0 ? 0 : -1;
}

/* gg_test_site_remove - remove the directory and everything in it. */
static inline void gg_test_site_remove(gg_test_site *s)
{
    if (s->dir[0] != '\0')
        gg_test_rmtree(s->dir);
}

/* gg_test_site_text - into out, the config of site self (role and name)
 * talking to peer: the channel listens (listen != 0) or connects on the
 * port with the PKI's certificates, the store is dir/self.db, and extra
 * (NULL for none) follows, still in [store]. */
static inline void gg_test_site_text(const gg_test_site *s, const char *self, const char *peer,
                                     int listen, const char *extra, char *out, size_t outsz)
{
    snprintf(out, outsz,
             "[site]\nrole = %s\nname = %s\npeer = %s\n"
             "[channel]\nmode = %s\naddress = 127.0.0.1:%d\npeer_name = %s\n"
             "ca = %s/ca.crt\ncert = %s/%s.crt\nkey = %s/%s.key\n"
             "heartbeat_ms = 200\ndead_ms = 2000\nbackoff_max_ms = 200\n"
             "[store]\npath = %s/%s.db\n%s",
             self, self, peer, listen ? "listen" : "connect", s->port, peer, s->pki, s->pki, self,
             s->pki, self, s->dir, self, extra != NULL ? extra : "");
}

/* gg_test_utility_text - into out, the config of a utility that listens
 * for the portal, serves admin on a free port, has two workers, a 5 s
 * lease, the PKI's envelope and token keys and the marketing database
 * mkt; extra (NULL for none) follows. */
static inline void gg_test_utility_text(const gg_test_site *s, const char *mkt, const char *extra,
                                        char *out, size_t outsz)
{
    char more[4096];
    const char *p = s->pki;

    snprintf(more, sizeof more,
             "lease_ms = 5000\n"
             "[admin]\nlisten = 127.0.0.1:0\n"
             "[security]\nsign_key = %s/utility.sign.key\nkem_key = %s/utility.kem.key\n"
             "peer_sign_pub = %s/portal.sign.pub\npeer_kem_pub = %s/portal.kem.pub\n"
             "token_key = %s/token.key\n"
             "[utility]\nworkers = 2\nmarketing_db = %s\n%s",
             p, p, p, p, p, mkt, extra != NULL ? extra : "");
    gg_test_site_text(s, "utility", "portal", 1, more, out, outsz);
}

/* gg_test_site_parse - text parsed as a config of s into *out; the
 * reason goes to stderr if it does not parse. */
static inline gg_err gg_test_site_parse(const gg_test_site *s, const char *text, gg_config **out)
{
    char err[256] = "";
    gg_err e = gg_config_parse(text, s->dir, out, err, sizeof err);

    if (e != GG_OK)
        fprintf(stderr, "config: %s\n", err);
    return e;
}

#endif
