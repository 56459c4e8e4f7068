/* api_reply.c - the fast path of gg_api_parse_reply (api.h): a reply that
 * is already in canonical form needs no JSON tree.
 *
 * The utility writes its replies with jansson's compact dump (JSON_COMPACT,
 * JSON_REAL_PRECISION(12)), and gg_api_parse_reply answers with the body
 * dumped the same way. For such a reply, loading it into a tree and dumping
 * the body again gives back the very bytes of the body, so
 * gg_api_reply_scan checks, in one pass and without allocating (but for
 * reals), that the text is exactly what that dump would print, and gives the
 * body's span. Anything it is not sure of (whitespace, \u or \/ escapes,
 * duplicate keys, non-canonical numbers, very deep or wide objects, invalid
 * UTF-8, any syntax error) is "not canonical", and the caller takes the
 * jansson path, which also words every error. So the fast path never
 * decides an error and never changes an answer; the unit tests compare both
 * paths on generated replies (tests/unit/test_portal_reply.c).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "portal/api.h"

#define SCAN_DEPTH_MAX 16           /* deeper: not canonical (jansson's path) */
#define SCAN_KEYS_MAX 32            /* more keys in one object: likewise */
#define SCAN_NUM_MAX 40             /* longest real we reformat to compare */
#define SCAN_INT_DIGITS 18          /* integers always within json_int_t */

typedef struct scan {
    const unsigned char *s;
    size_t n;
    size_t i;
} scan;

typedef struct span {
    const unsigned char *p;
    size_t n;
} span;

static int sc_value(scan *c, int depth);

/* utf8_len - length of the valid UTF-8 sequence at s[0..left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned char b = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n, k;

    if (b >= 0xC2 && b <= 0xDF)
        n = 2;
    else if (b >= 0xE0 && b <= 0xEF)
        n = 3;
    else if (b >= 0xF0 && b <= 0xF4)
        n = 4;
    else
        return 0;
    if (b == 0xE0)
        lo = 0xA0;
    else if (b == 0xED)
        hi = 0x9F;          /* no surrogates */
    else if (b == 0xF0)
        lo = 0x90;
    else if (b == 0xF4)
        hi = 0x8F;          /* nothing above U+10FFFF */
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (k = 2; k < n; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return n;
}

/* sc_string - a string at c->i as jansson's dump writes it; its span
 * (quotes excluded) in *out. 0 or -1. */
static int sc_string(scan *c, span *out)
{
    size_t i = c->i + 1;

    if (c->i >= c->n || c->s[c->i] != '"')
        return -1;
    while (i < c->n) {
        unsigned char b = c->s[i];

        if (b == '"') {
            out->p = c->s + c->i + 1;
            out->n = i - c->i - 1;
            c->i = i + 1;
            return 0;
        }
        if (b < 0x20)
            return -1;
        if (b == '\\') {
            /* the escapes the dump writes for '"', '\\' and these controls */
            if (i + 1 >= c->n || strchr("\"\\bfnrt", c->s[i + 1]) == NULL || c->s[i + 1] == 0)
                return -1;
            i += 2;
        } else if (b < 0x80) {
            i++;
        } else {
            size_t k = utf8_len(c->s + i, c->n - i);

            if (k == 0)
                return -1;
            i += k;
        }
    }
    return -1;
}

/* real_canonical - the real text t (NUL-ended) is what the dump prints for
 * its value: compared with jansson's own output, so the rule is its rule. */
static int real_canonical(const char *t, size_t n)
{
    char *end = NULL;
    char *again;
    json_t *r;
    double v;
    int same;

    errno = 0;
    v = strtod(t, &end);
    if (end != t + n || errno != 0 || !isfinite(v))
        return 0;
    r = json_real(v);
    if (r == NULL)
        return 0;
    again = json_dumps(r, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(r);
    same = again != NULL && strlen(again) == n && memcmp(again, t, n) == 0;
    free(again);
    return same;
}

/* sc_number - a number as the dump writes it; *value for an integer.
 * *is_int tells which. 0 or -1. */
static int sc_number(scan *c, int *is_int, long long *value)
{
    size_t start = c->i, i = c->i, digits = 0;
    int neg = 0, real = 0;
    long long v = 0;
    char t[SCAN_NUM_MAX + 1];

    if (i < c->n && c->s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i >= c->n || c->s[i] < '0' || c->s[i] > '9')
        return -1;
    if (c->s[i] == '0' && i + 1 < c->n && c->s[i + 1] >= '0' && c->s[i + 1] <= '9')
        return -1;  /* leading zero: jansson refuses it */
    while (i < c->n && c->s[i] >= '0' && c->s[i] <= '9') {
        if (++digits > SCAN_INT_DIGITS)
            return -1;  /* checked first: 18 digits cannot overflow */
        v = v * 10 + (c->s[i] - '0');
        i++;
    }
    if (i < c->n && c->s[i] == '.') {
        real = 1;
        i++;
        if (i >= c->n || c->s[i] < '0' || c->s[i] > '9')
            return -1;
        while (i < c->n && c->s[i] >= '0' && c->s[i] <= '9')
            i++;
    }
    if (i < c->n && (c->s[i] == 'e' || c->s[i] == 'E')) {
        real = 1;
        i++;
        if (i < c->n && (c->s[i] == '+' || c->s[i] == '-'))
            i++;
        if (i >= c->n || c->s[i] < '0' || c->s[i] > '9')
            return -1;
        while (i < c->n && c->s[i] >= '0' && c->s[i] <= '9')
            i++;
    }
    c->i = i;
    *is_int = !real;
    if (!real) {
        if (neg && v == 0)
            return -1;  /* "-0" is dumped as "0" */
        *value = neg ? -v : v;
        return 0;
    }
    if (i - start > SCAN_NUM_MAX)
        return -1;
    memcpy(t, c->s + start, i - start);
    t[i - start] = '\0';
    return real_canonical(t, i - start) ? 0 : -1;
}

/* sc_literal - true, false or null. */
static int sc_literal(scan *c)
{
    static const char *const words[] = { "true", "false", "null" };
    size_t k;

    for (k = 0; k < sizeof words / sizeof words[0]; k++) {
        size_t n = strlen(words[k]);

        if (c->n - c->i >= n && memcmp(c->s + c->i, words[k], n) == 0) {
            c->i += n;
            return 0;
        }
    }
    return -1;
}

/* sc_array - "[v,v,...]" with nothing between the tokens. */
static int sc_array(scan *c, int depth)
{
    c->i++;
    if (c->i < c->n && c->s[c->i] == ']') {
        c->i++;
        return 0;
    }
    for (;;) {
        if (sc_value(c, depth + 1) != 0 || c->i >= c->n)
            return -1;
        if (c->s[c->i] == ']') {
            c->i++;
            return 0;
        }
        if (c->s[c->i] != ',')
            return -1;
        c->i++;
    }
}

/* member_fn - called for each member of an object with its key and the
 * span of its value (top level only). */
typedef void (*member_fn)(void *arg, const span *key, size_t vstart, size_t vend);

/* sc_object - "{"k":v,...}" with distinct keys and nothing between the
 * tokens; each member reported to fn (may be NULL). */
static int sc_object(scan *c, int depth, member_fn fn, void *arg)
{
    span keys[SCAN_KEYS_MAX];
    size_t nk = 0, k, vstart;

    c->i++;
    if (c->i < c->n && c->s[c->i] == '}') {
        c->i++;
        return 0;
    }
    for (;;) {
        if (nk == SCAN_KEYS_MAX || sc_string(c, &keys[nk]) != 0)
            return -1;
        for (k = 0; k < nk; k++)  /* a repeated key: jansson keeps the last value */
            if (keys[k].n == keys[nk].n && memcmp(keys[k].p, keys[nk].p, keys[k].n) == 0)
                return -1;
        if (c->i >= c->n || c->s[c->i] != ':')
            return -1;
        c->i++;
        vstart = c->i;
        if (sc_value(c, depth + 1) != 0)
            return -1;
        if (fn != NULL)
            fn(arg, &keys[nk], vstart, c->i);
        nk++;
        if (c->i >= c->n)
            return -1;
        if (c->s[c->i] == '}') {
            c->i++;
            return 0;
        }
        if (c->s[c->i] != ',')
            return -1;
        c->i++;
    }
}

/* sc_value - any value at c->i. */
static int sc_value(scan *c, int depth)
{
    span s;
    int is_int;
    long long v;

    if (depth > SCAN_DEPTH_MAX || c->i >= c->n)
        return -1;
    switch (c->s[c->i]) {
    case '{':
        return sc_object(c, depth, NULL, NULL);
    case '[':
        return sc_array(c, depth);
    case '"':
        return sc_string(c, &s);
    case 't':
    case 'f':
    case 'n':
        return sc_literal(c);
    default:
        return sc_number(c, &is_int, &v);
    }
}

typedef struct top {
    const unsigned char *s;
    size_t status_at, status_end;   /* 0, 0: not seen */
    size_t body_at, body_end;
} top;

/* on_top - remember where "status" and "body" are. */
static void on_top(void *arg, const span *key, size_t vstart, size_t vend)
{
    top *t = arg;

    if (key->n == 6 && memcmp(key->p, "status", 6) == 0) {
        t->status_at = vstart;
        t->status_end = vend;
    } else if (key->n == 4 && memcmp(key->p, "body", 4) == 0) {
        t->body_at = vstart;
        t->body_end = vend;
    }
}

/* gg_api_reply_scan - a canonical reply's status and body span. */
int gg_api_reply_scan(const void *pt, size_t len, int *status, const char **body,
                      size_t *body_len)
{
    scan c = { pt, len, 0 };
    top t;
    long long v = 0;
    int is_int = 0;

    memset(&t, 0, sizeof t);
    t.s = pt;
    if (pt == NULL || len == 0 || c.s[0] != '{' || sc_object(&c, 1, on_top, &t) != 0 ||
        c.i != len)
        return 0;
    if (t.status_end == 0 || t.body_end == 0 || c.s[t.body_at] != '{')
        return 0;
    c.i = t.status_at;
    if (sc_number(&c, &is_int, &v) != 0 || !is_int || v < 100 || v > 599)
        return 0;
    *status = (int)v;
    *body = (const char *)c.s + t.body_at;
    *body_len = t.body_end - t.body_at;
    return 1;
}
