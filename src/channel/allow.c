/* allow.c - CIDR allow-list parsing and matching (see allow.h). */
#include "channel/allow.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One block, stored as 16 bytes: IPv4 blocks use the first 4. */
typedef struct block {
    int family;        /* AF_INET or AF_INET6 */
    unsigned prefix;   /* bits */
    unsigned char addr[16];
} block;

struct gg_allow {
    size_t n;
    block b[];
};

/* prefix_match - whether the first bits of x and y agree. */
static int prefix_match(const unsigned char *x, const unsigned char *y, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(x, y, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char m = (unsigned char)(0xFFu << (8 - rest));
    return (x[full] & m) == (y[full] & m);
}

/* host_bits_clear - whether every bit of a past prefix (of total bits) is 0. */
static int host_bits_clear(const unsigned char *a, unsigned prefix, unsigned total)
{
    for (unsigned i = prefix; i < total; i++) {
        if (a[i / 8] & (0x80u >> (i % 8)))
            return 0;
    }
    return 1;
}

/* parse_prefix - a decimal 0..max without sign or leading zeros. */
static int parse_prefix(const char *s, unsigned max, unsigned *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* parse_entry - one trimmed CIDR entry into bl; a reason on failure. */
static const char *parse_entry(char *s, block *bl)
{
    char *slash = strchr(s, '/');
    if (slash)
        *slash = '\0';
    memset(bl, 0, sizeof *bl);
    if (strchr(s, ':')) {
        if (inet_pton(AF_INET6, s, bl->addr) != 1)
            return "not an IPv6 address";
        bl->family = AF_INET6;
        bl->prefix = 128;
    } else {
        if (inet_pton(AF_INET, s, bl->addr) != 1)
            return "not an IPv4 address";
        bl->family = AF_INET;
        bl->prefix = 32;
    }
    unsigned total = bl->family == AF_INET ? 32 : 128;
    if (slash && parse_prefix(slash + 1, total, &bl->prefix) != 0)
        return "bad prefix length";
    if (!host_bits_clear(bl->addr, bl->prefix, total))
        return "address has bits set past the prefix";
    return NULL;
}

/* trim - strip blanks at both ends, in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

gg_err gg_allow_parse(const char *spec, gg_allow **out, char *err, size_t errsz)
{
    gg_err e = GG_ECONFIG;
    gg_allow *a = NULL;
    char *copy = NULL;
    if (!spec || strlen(spec) > 16384) {
        snprintf(err, errsz, "allow list missing or too long");
        goto out;
    }
    copy = strdup(spec);
    a = calloc(1, sizeof *a + GG_ALLOW_MAX_ENTRIES * sizeof(block));
    if (!copy || !a) {
        e = GG_ENOMEM;
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    char *p = copy;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        char *ent = trim(p);
        if (*ent == '\0') {
            snprintf(err, errsz, "allow list has an empty entry");
            goto out;
        }
        if (a->n == GG_ALLOW_MAX_ENTRIES) {
            snprintf(err, errsz, "allow list has more than %d entries", GG_ALLOW_MAX_ENTRIES);
            goto out;
        }
        char shown[64];
        snprintf(shown, sizeof shown, "%s", ent);
        const char *why = parse_entry(ent, &a->b[a->n]);
        if (why) {
            snprintf(err, errsz, "allow entry \"%s\": %s", shown, why);
            goto out;
        }
        a->n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = a;
    a = NULL;
    e = GG_OK;
out:
    free(copy);
    free(a);
    return e;
}

int gg_allow_check(const gg_allow *a, const struct sockaddr *sa)
{
    unsigned char addr[16];
    int family;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        memcpy(addr, &s4->sin_addr, 4);
        family = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (memcmp(&s6->sin6_addr, mapped, 12) == 0) {
            memcpy(addr, (const unsigned char *)&s6->sin6_addr + 12, 4);
            family = AF_INET;
        } else {
            memcpy(addr, &s6->sin6_addr, 16);
            family = AF_INET6;
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (a->b[i].family == family && prefix_match(a->b[i].addr, addr, a->b[i].prefix))
            return 1;
    }
    return 0;
}

size_t gg_allow_count(const gg_allow *a)
{
    return a->n;
}

void gg_allow_free(gg_allow *a)
{
    free(a);
}
