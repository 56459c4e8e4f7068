/* demo.c - `gridgate demo`: both roles on this machine.
 *
 * `demo init DIR` writes a PKI, one config per site and a seeded marketing
 * database; `demo [DIR]` initialises DIR if needed and runs the utility and
 * the portal role as two child processes of this one, until SIGINT or
 * SIGTERM (forwarded to both) or until either child exits.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "marketing/marketing.h"
#include "marketing/seed.h"
#include "pki/pki.h"

typedef struct demo_opts {
    const char *dir;
    long long port_base;
    long long accounts;
    long long months;
    const char *suite;
    const char *pg;         /* --pg CONNINFO: the utility reads PostgreSQL */
} demo_opts;

/* web_root - the web/ folder beside the build directory, else in the source tree. */
static void web_root(char *out, size_t outsz)
{
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", gg_cli_self_path());
    char *slash = strrchr(self, '/');
    if (slash) {
        *slash = '\0';
        char real[PATH_MAX];
        int n = snprintf(out, outsz, "%s/../web", self);
        if (n > 0 && (size_t)n < outsz && realpath(out, real) && access(real, R_OK) == 0) {
            snprintf(out, outsz, "%s", real);
            return;
        }
    }
    snprintf(out, outsz, "%s/web", GG_SOURCE_DIR);
}

/* write_file - create path with text, mode 0600; -1 with a message on failure. */
static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wx");
    if (!f) {
        fprintf(stderr, "gridgate demo init: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fchmod(fileno(f), 0600);
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad)
        fprintf(stderr, "gridgate demo init: %s: write failed\n", path);
    return bad ? -1 : 0;
}

/* write_configs - portal.conf and utility.conf for ports P..P+3. */
static int write_configs(const demo_opts *o)
{
    char path[PATH_MAX], text[3 * PATH_MAX], web[PATH_MAX];
    long long p = o->port_base;
    int n;

    web_root(web, sizeof web);
    n = snprintf(text, sizeof text,
             "# gridgate portal role (demo). Every key: docs/config.md\n"
             "[site]\nrole = portal\nname = portal\npeer = utility\n\n"
             "[http]\nlisten = 127.0.0.1:%lld\nweb_root = %s\nrequest_timeout_ms = 5000\n\n"
             "[admin]\nlisten = 127.0.0.1:%lld\n\n"
             "[channel]\nmode = connect\naddress = 127.0.0.1:%lld\npeer_name = utility\n"
             "ca = pki/ca.crt\ncert = pki/portal.crt\nkey = pki/portal.key\n\n"
             "[security]\nsuite = %s\nsign_key = pki/portal.sign.key\nkem_key = pki/portal.kem.key\n"
             "peer_sign_pub = pki/utility.sign.pub\npeer_kem_pub = pki/utility.kem.pub\n\n"
             "[store]\npath = portal/store.db\n",
             p, web, p + 2, p + 1, o->suite);
    if (n < 0 || (size_t)n >= sizeof text) {
        fprintf(stderr, "gridgate demo init: path of the web page too long\n");
        return -1;
    }
    snprintf(path, sizeof path, "%s/portal.conf", o->dir);
    if (write_file(path, text))
        return -1;
    snprintf(text, sizeof text,
             "# gridgate utility role (demo). Every key: docs/config.md\n"
             "[site]\nrole = utility\nname = utility\npeer = portal\n\n"
             "[admin]\nlisten = 127.0.0.1:%lld\n\n"
             "[channel]\nmode = listen\naddress = 127.0.0.1:%lld\npeer_name = portal\n"
             "allow = 127.0.0.1/32\nca = pki/ca.crt\ncert = pki/utility.crt\nkey = pki/utility.key\n\n"
             "[security]\nsuite = %s\nsign_key = pki/utility.sign.key\nkem_key = pki/utility.kem.key\n"
             "peer_sign_pub = pki/portal.sign.pub\npeer_kem_pub = pki/portal.kem.pub\n"
             "token_key = pki/token.key\n\n"
             "[store]\npath = utility/store.db\n\n"
             "# 32 workers overlap their waits on commits; at most 4 calls at a time\n"
             "# go into the marketing system (docs/capacity.md)\n"
             "[governor]\nmax_inflight = 4\n\n"
             "[utility]\nworkers = 32\nmarketing_db = marketing.db\n%s%s%s",
             p + 3, p + 1, o->suite, o->pg ? "marketing_pg = " : "", o->pg ? o->pg : "",
             o->pg ? "\n" : "");
    snprintf(path, sizeof path, "%s/utility.conf", o->dir);
    return write_file(path, text);
}

/* demo_init - create everything in o->dir. */
static int demo_init(const demo_opts *o)
{
    char path[PATH_MAX];
    gg_pki_opts pki = { o->suite, "portal", "utility", 825 };
    gg_seed_opts seed = { (int)o->accounts, (int)o->months, 1, NULL };
    gg_err e;

    if (mkdir(o->dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "gridgate demo init: %s: %s\n", o->dir, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/portal.conf", o->dir);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "gridgate demo init: %s is already initialised\n", o->dir);
        return 1;
    }
    const char *sub[] = { "portal", "utility" };
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", o->dir, sub[i]);
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "gridgate demo init: %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    snprintf(path, sizeof path, "%s/pki", o->dir);
    e = gg_pki_init(path, &pki);
    if (e != GG_OK) {
        fprintf(stderr, "gridgate demo init: pki in %s: %s\n", path, gg_strerror(e));
        return 1;
    }
    snprintf(path, sizeof path, "%s/marketing.db", o->dir);
    printf("seeding %s: %lld accounts x %lld months ...\n", path, o->accounts, o->months);
    fflush(stdout);
    e = gg_seed_sqlite(path, &seed);
    if (e != GG_OK) {
        fprintf(stderr, "gridgate demo init: seeding %s: %s\n", path, gg_strerror(e));
        return 1;
    }
    if (o->pg) {
        printf("copying %s into PostgreSQL ...\n", path);
        fflush(stdout);
        e = gg_seed_pg(path, o->pg);
        if (e != GG_OK) {
            fprintf(stderr, "gridgate demo init: seeding PostgreSQL: %s\n", gg_strerror(e));
            return 1;
        }
    }
    if (write_configs(o))
        return 1;
    printf("demo initialised in %s: portal http 127.0.0.1:%lld, channel %lld, admin %lld/%lld\n",
           o->dir, o->port_base, o->port_base + 1, o->port_base + 2, o->port_base + 3);
    return 0;
}

/* spawn - run `gridgate run -c DIR/NAME.conf` as a child. */
static pid_t spawn(const char *dir, const char *name)
{
    char conf[PATH_MAX];
    snprintf(conf, sizeof conf, "%s/%s.conf", dir, name);
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execl(gg_cli_self_path(), "gridgate", "run", "-c", conf, (char *)NULL);
        fprintf(stderr, "gridgate demo: exec %s: %s\n", gg_cli_self_path(), strerror(errno));
        _exit(127);
    }
    return pid;
}

/* print_demo_account - an account and its proof of ownership, to try the page. */
static void print_demo_account(const char *dir, long long port)
{
    char path[PATH_MAX];
    gg_mkt *m = NULL;
    gg_account a;
    snprintf(path, sizeof path, "%s/marketing.db", dir);
    if (gg_mkt_open(path, &m) == GG_OK && gg_mkt_sample_account(m, &a) == GG_OK) {
        size_t n = strlen(a.phone);
        printf("\n  portal:  http://127.0.0.1:%lld/\n"
               "  try:     account %s, holder %s, phone last 4 digits %s\n\n"
               "  Ctrl-C stops both roles.\n\n",
               port, a.account_no, a.holder_name, n >= 4 ? a.phone + n - 4 : a.phone);
    } else {
        printf("\n  portal:  http://127.0.0.1:%lld/\n\n", port);
    }
    fflush(stdout);
    gg_mkt_close(m);
}

/* read_port_base - the portal's HTTP port from DIR/portal.conf, or 8080. */
static long long read_port_base(const char *dir)
{
    char path[PATH_MAX], line[512];
    long long port = 8080;
    snprintf(path, sizeof path, "%s/portal.conf", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return port;
    int in_http = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '[')
            in_http = strncmp(line, "[http]", 6) == 0;
        else if (in_http && strncmp(line, "listen = 127.0.0.1:", 19) == 0)
            port = strtoll(line + 19, NULL, 10);
    }
    fclose(f);
    return port;
}

/* demo_run - both roles until a signal or a child's exit. */
static int demo_run(const char *dir)
{
    sigset_t set;
    int sig = 0, status, rc = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);

    pid_t util = spawn(dir, "utility");
    pid_t portal = util > 0 ? spawn(dir, "portal") : -1;
    if (util < 0 || portal < 0) {
        fprintf(stderr, "gridgate demo: fork failed: %s\n", strerror(errno));
        if (util > 0)
            kill(util, SIGTERM);
        return 1;
    }
    print_demo_account(dir, read_port_base(dir));
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig != SIGCHLD)
            break;
        pid_t dead = waitpid(-1, &status, WNOHANG);
        if (dead == util || dead == portal) {
            fprintf(stderr, "gridgate demo: the %s role exited (status %d); stopping\n",
                    dead == util ? "utility" : "portal", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            if (dead == util)
                util = -1;
            else
                portal = -1;
            rc = 1;
            break;
        }
    }
    if (portal > 0)
        kill(portal, SIGTERM);
    if (util > 0)
        kill(util, SIGTERM);
    if (portal > 0)
        waitpid(portal, &status, 0);
    if (util > 0)
        waitpid(util, &status, 0);
    fprintf(stderr, "gridgate demo: stopped\n");
    return rc;
}

int gg_cmd_demo(int argc, char **argv)
{
    demo_opts o = { NULL, 8080, 2000, 24, "intl", NULL };
    int init = argc > 0 && strcmp(argv[0], "init") == 0;
    char path[PATH_MAX];

    for (int i = init; i < argc; i++) {
        const char *a = argv[i];
        long long *target = strcmp(a, "--port-base") == 0  ? &o.port_base
                            : strcmp(a, "--accounts") == 0 ? &o.accounts
                            : strcmp(a, "--months") == 0   ? &o.months
                                                           : NULL;
        long long hi = target == &o.port_base ? 65532 : target == &o.months ? 120 : 10000000;
        if (target && i + 1 < argc) {
            if (gg_cli_parse_int(argv[++i], 1, hi, target)) {
                fprintf(stderr, "gridgate demo: bad value for %s: '%s' (1..%lld)\n", a, argv[i], hi);
                return 2;
            }
        } else if (strcmp(a, "--suite") == 0 && i + 1 < argc) {
            o.suite = argv[++i];
        } else if (strcmp(a, "--pg") == 0 && i + 1 < argc) {
            o.pg = argv[++i];
        } else if (!o.dir && a[0] != '-') {
            o.dir = a;
        } else {
            fprintf(stderr, "gridgate demo: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (init && !o.dir) {
        fprintf(stderr, "usage: gridgate demo init DIR [--port-base P] [--accounts N] [--months M] [--suite intl|gm] [--pg CONNINFO]\n");
        return 2;
    }
    if (!o.dir)
        o.dir = "demo";
    if (init)
        return demo_init(&o);
    snprintf(path, sizeof path, "%s/portal.conf", o.dir);
    if (access(path, F_OK) != 0 && demo_init(&o) != 0)
        return 1;
    return demo_run(o.dir);
}
