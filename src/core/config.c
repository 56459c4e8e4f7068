/* config.c - the one table of configuration keys, and the INI parser.
 *
 * To add a key: add a row to keytab. Its type, default, bounds and
 * sentence drive parsing, checking, `gridgate admin config check` and
 * docs/config.md (`gridgate config docs`).
 */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

typedef enum { T_STR, T_INT, T_BOOL, T_PATH, T_ENUM } ktype;

typedef struct key {
    const char *name;    /* "section.key" */
    ktype type;
    const char *def;     /* default, as text; NULL = none */
    int64_t min, max;    /* T_INT bounds */
    const char *choices; /* T_ENUM: "a|b|c" */
    const char *doc;
} key;

static const key keytab[] = {
    { "site.role", T_ENUM, NULL, 0, 0, "portal|utility", "Which role this process runs." },
    { "site.name", T_STR, NULL, 0, 0, NULL, "This site's name; default the role. Must match its certificate name." },
    { "site.peer", T_STR, NULL, 0, 0, NULL, "The other site's name (receiver of our messages)." },
    { "http.listen", T_STR, "127.0.0.1:8080", 0, 0, NULL, "Portal API and web page address (portal role)." },
    { "http.web_root", T_PATH, NULL, 0, 0, NULL, "Directory of the citizen web page; unset serves no page." },
    { "http.request_timeout_ms", T_INT, "5000", 100, 600000, NULL,
      "How long an API call waits for the utility's reply before 504 timeout." },
    { "http.shed", T_BOOL, "true", 0, 0, NULL,
      "Answer 503 overloaded with Retry-After at once when the calls already waiting cannot be answered within request_timeout_ms at the measured reply rate." },
    { "http.max_body", T_INT, "65536", 256, 16777216, NULL, "Largest request body accepted, bytes (413 above)." },
    { "admin.listen", T_STR, "127.0.0.1:8082", 0, 0, NULL, "Admin listener (/metrics, /healthz); keep it on loopback." },
    { "channel.mode", T_ENUM, NULL, 0, 0, "listen|connect", "Whether this site listens on or connects to channel.address." },
    { "channel.address", T_STR, NULL, 0, 0, NULL, "host:port of the channel's single TCP port." },
    { "channel.peer_name", T_STR, NULL, 0, 0, NULL, "Name the peer's certificate must carry (pinned)." },
    { "channel.allow", T_STR, "127.0.0.1/32", 0, 0, NULL,
      "Comma-separated CIDRs allowed to connect; checked before any TLS byte is read." },
    { "channel.ca", T_PATH, NULL, 0, 0, NULL, "CA certificate that signs both sites' certificates (PEM)." },
    { "channel.cert", T_PATH, NULL, 0, 0, NULL, "This site's TLS certificate (PEM)." },
    { "channel.key", T_PATH, NULL, 0, 0, NULL, "This site's TLS private key (PEM)." },
    { "channel.tls12", T_BOOL, "false", 0, 0, NULL, "Also allow TLS 1.2 (ECDHE with AEAD suites only)." },
    { "channel.heartbeat_ms", T_INT, "2000", 100, 60000, NULL, "Interval of heartbeats on an idle link." },
    { "channel.dead_ms", T_INT, "10000", 500, 600000, NULL, "Silence after which the peer is declared dead." },
    { "channel.backoff_max_ms", T_INT, "30000", 100, 3600000, NULL, "Cap of the reconnect backoff." },
    { "channel.batch_max", T_INT, "256", 1, 65536, NULL, "Most messages in one batch." },
    { "channel.window", T_INT, "8", 1, 1024, NULL, "Most unacknowledged batches in flight." },
    { "security.suite", T_ENUM, "intl", 0, 0, "intl|gm", "Message security suite." },
    { "security.sign_key", T_PATH, NULL, 0, 0, NULL, "This site's private message-signing key (PEM)." },
    { "security.kem_key", T_PATH, NULL, 0, 0, NULL, "This site's private key-agreement key (PEM)." },
    { "security.peer_sign_pub", T_PATH, NULL, 0, 0, NULL, "The peer's public signing key (PEM)." },
    { "security.peer_kem_pub", T_PATH, NULL, 0, 0, NULL, "The peer's public key-agreement key (PEM)." },
    { "security.token_key", T_PATH, NULL, 0, 0, NULL, "Binding-token key, 64 hex chars (utility role only)." },
    { "security.message_ttl_ms", T_INT, "30000", 1000, 86400000, NULL,
      "Lifetime of a message: past it the utility answers expired instead of running it." },
    { "security.token_ttl_days", T_INT, "365", 1, 3650, NULL, "Lifetime of a binding token." },
    { "security.freshness_ms", T_INT, "300000", 1000, 86400000, NULL,
      "Messages created longer ago than this (plus the skew allowance) are refused as stale; keep it above message_ttl_ms." },
    { "security.clock_skew_ms", T_INT, "30000", 0, 3600000, NULL,
      "Allowed difference between the two sites' clocks, either way." },
    { "security.replay_db", T_PATH, NULL, 0, 0, NULL,
      "Old separate replay file (before the replay ids moved into the queue store): its live ids are imported at start if it exists; default replay.db beside store.path." },
    { "security.peer_sign_pub_prev", T_PATH, NULL, 0, 0, NULL,
      "Key rotation: the peer's previous public signing key, accepted until peer_prev_until." },
    { "security.peer_prev_until", T_STR, NULL, 0, 0, NULL,
      "End of the rotation overlap, UTC, YYYY-MM-DDTHH:MM:SSZ." },
    { "security.kem_key_prev", T_PATH, NULL, 0, 0, NULL,
      "Kem key rotation: another private kem key of ours (default kem_key); envelopes encrypted for it and peer_kem_pub_prev open until kem_prev_until." },
    { "security.peer_kem_pub_prev", T_PATH, NULL, 0, 0, NULL,
      "Kem key rotation: another public kem key of the peer (default peer_kem_pub), paired with kem_key_prev." },
    { "security.kem_prev_until", T_STR, NULL, 0, 0, NULL,
      "End of the kem key overlap, UTC, YYYY-MM-DDTHH:MM:SSZ." },
    { "security.audit_log", T_PATH, NULL, 0, 0, NULL,
      "Hash-chained audit log of every message's fate; default audit.log beside store.path." },
    { "security.revoked_db", T_PATH, NULL, 0, 0, NULL,
      "Revoked binding tokens (SQLite, utility role); default revoked.db beside store.path." },
    { "security.replay_max", T_INT, "1000000", 16, 100000000, NULL,
      "Most message ids remembered; when that many are live, new messages are refused (fail closed)." },
    { "store.path", T_PATH, "store.db", 0, 0, NULL, "The site's durable queue store (SQLite)." },
    { "store.backout_threshold", T_INT, "5", 0, 1000, NULL,
      "Deliveries after which a message goes to the dead-letter queue; 0 never." },
    { "store.max_depth", T_INT, "100000", 0, INT64_MAX, NULL, "Most messages per queue; 0 unlimited." },
    { "store.max_bytes", T_INT, "1073741824", 0, INT64_MAX, NULL, "Most payload bytes per queue; 0 unlimited." },
    { "store.lease_ms", T_INT, "30000", 100, 3600000, NULL,
      "How long a taken message stays invisible before it is delivered again." },
    { "store.durability", T_ENUM, "full", 0, 0, "full|normal",
      "full: every commit is fsynced; normal: a power cut may lose the last commits (docs/store.md)." },
    { "utility.workers", T_INT, "4", 1, 256, NULL,
      "Worker threads, and so the most calls in flight into the marketing system." },
    { "utility.marketing_db", T_PATH, NULL, 0, 0, NULL, "The marketing system's SQLite database." },
    { "utility.marketing_pg", T_STR, NULL, 0, 0, NULL,
      "PostgreSQL connection string (libpq conninfo) of the marketing system; when set it is used instead of marketing_db. Keep passwords in ~/.pgpass, not here." },
    { "utility.marketing_queries", T_PATH, NULL, 0, 0, NULL,
      "Queries file of the PostgreSQL adapter (docs/marketing-queries.md); unset uses the built-in statements." },
    { "utility.prepare_interval_s", T_INT, "0", 0, 604800, NULL,
      "Data preparation schedule: rebuild the monthly usage summaries (as gridgate prepare) every this many seconds, the first time at start; 0 never." },
    { "governor.max_inflight", T_INT, "0", 0, 256, NULL,
      "Most calls in flight into the marketing system, all services together; 0 means utility.workers (the upper bound in adaptive mode)." },
    { "governor.mode", T_ENUM, "fixed", 0, 0, "fixed|adaptive",
      "fixed: the limit is max_inflight; adaptive: a gradient limiter moves it between min_inflight and max_inflight from the observed latency." },
    { "governor.min_inflight", T_INT, "1", 1, 256, NULL, "Lowest limit the adaptive mode may choose." },
    { "governor.tolerance_pct", T_INT, "150", 100, 1000, NULL,
      "Adaptive mode: latency this many percent of the best recent latency counts as queueing in the backend, and the limit shrinks." },
    { "cache.entries", T_INT, "10000", 0, 10000000, NULL,
      "Query results kept in the utility's read-through cache; 0 disables the cache." },
    { "cache.ttl_ms", T_INT, "2000", 0, 86400000, NULL,
      "How long a cached query result is served as fresh." },
    { "cache.stale_ms", T_INT, "60000", 0, 86400000, NULL,
      "When the governor is saturated, cached results up to this old are served instead of waiting; 0 never." },
    { "utility.inbox_retention_days", T_INT, "30", 1, 3650, NULL,
      "How long the inbox keeps the answer of a payment or binding: a resend within this window gets the same answer and acts no second time (the window of exactly-once)." },
    { "utility.bill_sweep_s", T_INT, "3600", 0, 86400, NULL,
      "Interval of the bill sweep: bill.issued for bills issued since the last sweep, and unpaid bills past their due date marked overdue with bill.overdue; 0 off." },
    { "push.webhook_url", T_STR, NULL, 0, 0, NULL,
      "http:// URL the portal POSTs each event to (government internal server); unset keeps events queued." },
    { "push.secret_file", T_PATH, NULL, 0, 0, NULL,
      "File holding the webhook HMAC-SHA256 secret (one line, 16 to 256 bytes); required with push.webhook_url." },
    { "push.max_attempts", T_INT, "10", 1, 1000, NULL,
      "Deliveries of one event before it goes to the dead-letter queue (counted since the portal started)." },
    { "push.backoff_ms", T_INT, "500", 10, 600000, NULL,
      "Wait before the second attempt; doubles per attempt, with jitter, up to push.backoff_max_ms." },
    { "push.backoff_max_ms", T_INT, "60000", 10, 3600000, NULL, "Longest wait between two attempts." },
    { "push.timeout_ms", T_INT, "10000", 100, 600000, NULL,
      "How long one webhook POST may take before it counts as failed." },
    { "push.concurrency", T_INT, "4", 1, 64, NULL, "Events being delivered at once (one connection each)." },
    { "portal.tx_db", T_PATH, "transactions.db", 0, 0, NULL,
      "The portal's SQLite file of transaction outcomes (GET /api/v1/transactions/{id})." },
    { "portal.tx_retention_days", T_INT, "30", 1, 3650, NULL,
      "How long a transaction's outcome stays retrievable by its id." },
    { "log.level", T_ENUM, "info", 0, 0, "debug|info|warn|error", "Least severe log level written." },
};

#define NKEYS (sizeof keytab / sizeof keytab[0])

struct gg_config {
    char *val[NKEYS];  /* resolved value, or NULL = default */
    int set[NKEYS];
    char *base_dir;
    char *defpath[NKEYS]; /* resolved default paths */
};

/* find_key - index of name in keytab, or -1. */
static int find_key(const char *name)
{
    for (unsigned i = 0; i < NKEYS; i++)
        if (strcmp(keytab[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* must_key - as find_key, but an undeclared name is a programming error. */
static int must_key(const char *name)
{
    int i = find_key(name);
    if (i < 0)
        GG_PANIC("config key %s is not declared in keytab", name);
    return i;
}

/* resolve - an absolute copy of path, relative to base. */
static char *resolve(const char *base, const char *path)
{
    if (path[0] == '/' || !base)
        return strdup(path);
    size_t n = strlen(base) + strlen(path) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", base, path);
    return s;
}

/* parse_int - strict decimal int64. */
static int parse_int(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *v = x;
    return 0;
}

/* parse_bool - true/false/yes/no/on/off/1/0. */
static int parse_bool(const char *s, int *v)
{
    static const char *const t[] = { "true", "yes", "on", "1" }, *const f[] = { "false", "no", "off", "0" };
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, t[i]) == 0) {
            *v = 1;
            return 0;
        }
        if (strcasecmp(s, f[i]) == 0) {
            *v = 0;
            return 0;
        }
    }
    return -1;
}

/* in_choices - whether v is one of the |-separated choices. */
static int in_choices(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t k = bar ? (size_t)(bar - p) : strlen(p);
        if (k == n && strncmp(p, v, n) == 0)
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

/* check_value - type and bounds of v for key k; writes a reason on failure. */
static int check_value(const key *k, const char *v, char *why, size_t whysz)
{
    int64_t x;
    int b;
    switch (k->type) {
    case T_INT:
        if (parse_int(v, &x)) {
            snprintf(why, whysz, "is not a whole number");
            return -1;
        }
        if (x < k->min || x > k->max) {
            snprintf(why, whysz, "must be between %lld and %lld", (long long)k->min, (long long)k->max);
            return -1;
        }
        return 0;
    case T_BOOL:
        if (parse_bool(v, &b)) {
            snprintf(why, whysz, "must be true or false");
            return -1;
        }
        return 0;
    case T_ENUM:
        if (!in_choices(k->choices, v)) {
            snprintf(why, whysz, "must be one of %s", k->choices);
            return -1;
        }
        return 0;
    default:
        if (!*v && k->type == T_PATH) {
            snprintf(why, whysz, "must not be empty");
            return -1;
        }
        return 0;
    }
}

/* trim - strip ASCII white space at both ends, in place. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

void gg_config_free(gg_config *cfg)
{
    if (!cfg)
        return;
    for (unsigned i = 0; i < NKEYS; i++) {
        free(cfg->val[i]);
        free(cfg->defpath[i]);
    }
    free(cfg->base_dir);
    free(cfg);
}

gg_err gg_config_parse(const char *text, const char *base_dir, gg_config **out, char *err,
                       size_t errsz)
{
    gg_err rc = GG_ECONFIG;
    char section[64] = "";
    char *copy = strdup(text);
    gg_config *cfg = calloc(1, sizeof *cfg);
    int lineno = 0;

    if (!copy || !cfg) {
        rc = GG_ENOMEM;
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    cfg->base_dir = strdup(base_dir ? base_dir : ".");
    if (!cfg->base_dir) {
        rc = GG_ENOMEM;
        goto out;
    }
    for (char *line = copy, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e || e[1] || e - s - 1 <= 0 || (size_t)(e - s) >= sizeof section) {
                snprintf(err, errsz, "line %d: malformed section header", lineno);
                goto out;
            }
            *e = '\0';
            snprintf(section, sizeof section, "%s", trim(s + 1));
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errsz, "line %d: expected key = value", lineno);
            goto out;
        }
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        size_t vn = strlen(v);
        if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
            v[vn - 1] = '\0';
            v++;
        }
        char name[160];
        if (!section[0]) {
            snprintf(err, errsz, "line %d: key %s outside any [section]", lineno, k);
            goto out;
        }
        snprintf(name, sizeof name, "%s.%s", section, k);
        int i = find_key(name);
        if (i < 0) {
            snprintf(err, errsz, "line %d: unknown key %s", lineno, name);
            goto out;
        }
        char why[128];
        if (check_value(&keytab[i], v, why, sizeof why)) {
            snprintf(err, errsz, "line %d: %s %s", lineno, name, why);
            goto out;
        }
        free(cfg->val[i]);
        cfg->val[i] = keytab[i].type == T_PATH ? resolve(cfg->base_dir, v) : strdup(v);
        if (!cfg->val[i]) {
            rc = GG_ENOMEM;
            goto out;
        }
        cfg->set[i] = 1;
    }
    for (unsigned i = 0; i < NKEYS; i++) {
        if (keytab[i].type == T_PATH && keytab[i].def) {
            cfg->defpath[i] = resolve(cfg->base_dir, keytab[i].def);
            if (!cfg->defpath[i]) {
                rc = GG_ENOMEM;
                goto out;
            }
        }
    }
    if (!cfg->set[must_key("site.role")]) {
        snprintf(err, errsz, "site.role is required");
        goto out;
    }
    *out = cfg;
    cfg = NULL;
    rc = GG_OK;
out:
    free(copy);
    gg_config_free(cfg);
    return rc;
}

gg_err gg_config_load(const char *path, gg_config **out, char *err, size_t errsz)
{
    gg_err rc;
    char *text = NULL, *dircopy = NULL, real[PATH_MAX];
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return GG_EIO;
    }
    if (fseek(f, 0, SEEK_END) || ftell(f) < 0 || ftell(f) > (1 << 20)) {
        snprintf(err, errsz, "%s: unreadable or larger than 1 MiB", path);
        rc = GG_ECONFIG;
        goto out;
    }
    long n = ftell(f);
    rewind(f);
    text = malloc((size_t)n + 1);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, errsz, "%s: read failed", path);
        rc = GG_EIO;
        goto out;
    }
    text[n] = '\0';
    if (memchr(text, '\0', (size_t)n)) {
        snprintf(err, errsz, "%s: contains a NUL byte", path);
        rc = GG_ECONFIG;
        goto out;
    }
    dircopy = strdup(realpath(path, real) ? real : path);
    if (!dircopy) {
        rc = GG_ENOMEM;
        goto out;
    }
    char inner[256];
    rc = gg_config_parse(text, dirname(dircopy), out, inner, sizeof inner);
    if (rc != GG_OK)
        snprintf(err, errsz, "%s: %s", path, inner);
out:
    fclose(f);
    free(text);
    free(dircopy);
    return rc;
}

const char *gg_config_str(const gg_config *cfg, const char *name)
{
    int i = must_key(name);
    if (cfg->val[i])
        return cfg->val[i];
    if (cfg->defpath[i])
        return cfg->defpath[i];
    if (strcmp(name, "site.name") == 0)
        return gg_config_str(cfg, "site.role");
    return keytab[i].def;
}

int64_t gg_config_int(const gg_config *cfg, const char *name)
{
    int64_t v = 0;
    const char *s = gg_config_str(cfg, name);
    if (keytab[must_key(name)].type != T_INT)
        GG_PANIC("config key %s is not an integer", name);
    if (s)
        parse_int(s, &v);
    return v;
}

int gg_config_bool(const gg_config *cfg, const char *name)
{
    int v = 0;
    const char *s = gg_config_str(cfg, name);
    if (keytab[must_key(name)].type != T_BOOL)
        GG_PANIC("config key %s is not a boolean", name);
    if (s)
        parse_bool(s, &v);
    return v;
}

int gg_config_is_set(const gg_config *cfg, const char *name)
{
    return cfg->set[must_key(name)];
}

const char *gg_config_path_beside_store(const gg_config *cfg, const char *name, const char *file,
                                        char *buf, size_t bufsz)
{
    const char *path = gg_config_str(cfg, name);
    const char *store = gg_config_str(cfg, "store.path");
    const char *slash = store != NULL ? strrchr(store, '/') : NULL;
    int n;

    if (path != NULL && path[0] != '\0')
        return path;
    if (slash == NULL)
        n = snprintf(buf, bufsz, "%s", file);
    else
        n = snprintf(buf, bufsz, "%.*s/%s", (int)(slash - store), store, file);
    return n >= 0 && (size_t)n < bufsz ? buf : NULL;
}

void gg_config_print_docs(FILE *f)
{
    static const char *const tn[] = { "string", "integer", "boolean", "path", "choice" };
    fprintf(f, "| key | type | default | bounds | meaning |\n|---|---|---|---|---|\n");
    for (unsigned i = 0; i < NKEYS; i++) {
        const key *k = &keytab[i];
        char bounds[64] = "";
        if (k->type == T_INT)
            snprintf(bounds, sizeof bounds, "%lld..%lld", (long long)k->min, (long long)k->max);
        else if (k->type == T_ENUM) {
            snprintf(bounds, sizeof bounds, "%s", k->choices);
            for (char *p = bounds; *p; p++)
                if (*p == '|')
                    *p = '/'; /* a '|' would split the Markdown cell */
        }
        fprintf(f, "| `%s` | %s | %s | %s | %s |\n", k->name, tn[k->type], k->def ? k->def : "",
                bounds, k->doc);
    }
}

void gg_config_dump(const gg_config *cfg, FILE *f)
{
    for (unsigned i = 0; i < NKEYS; i++) {
        const char *v = gg_config_str(cfg, keytab[i].name);
        fprintf(f, "%s = %s%s\n", keytab[i].name, v ? v : "", cfg->set[i] ? "" : "  # default");
    }
}
