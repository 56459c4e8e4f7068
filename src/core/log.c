/* log.c - key=value log lines on stderr, and masking of personal data. */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = GG_LOG_INFO;
static char site_tag[32];

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void gg_log_set_level(gg_log_level level)
{
    atomic_store(&min_level, (int)level);
}

void gg_log_set_site(const char *site)
{
    snprintf(site_tag, sizeof site_tag, "%s", site ? site : "");
}

/* vlog_line - format one line and write it with a single write(2). */
static void vlog_line(const char *level, const char *comp, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vlog_line(const char *level, const char *comp, const char *fmt, va_list ap)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "ts=%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ level=%s", ts.tv_nsec / 1000000,
                          level);
    if (site_tag[0])
        n += (size_t)snprintf(line + n, sizeof line - n, " site=%s", site_tag);
    n += (size_t)snprintf(line + n, sizeof line - n, " comp=%s ", comp);
    if (n < sizeof line) {
        int k = vsnprintf(line + n, sizeof line - n, fmt, ap);
        if (k > 0)
            n += (size_t)k;
    }
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void gg_log(gg_log_level level, const char *comp, const char *fmt, ...)
{
    va_list ap;
    if ((int)level < atomic_load(&min_level))
        return;
    va_start(ap, fmt);
    vlog_line(level_names[level], comp, fmt, ap);
    va_end(ap);
}

void gg_panic(const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gg_log(GG_LOG_ERROR, "panic", "msg=\"%s\" file=%s line=%d", msg, file, line);
    abort();
}

/* utf8_len - byte length of the UTF-8 sequence starting at s (1 on bad input). */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 1;
    return n;
}

/* put - append n bytes to out if they fit with a NUL after them. */
static int put(char *out, size_t outsz, size_t *o, const char *p, size_t n)
{
    if (*o + n + 1 > outsz)
        return -1;
    memcpy(out + *o, p, n);
    *o += n;
    out[*o] = '\0';
    return 0;
}

char *gg_mask_name(const char *in, char *out, size_t outsz)
{
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)in;
    if (!outsz)
        return out;
    out[0] = '\0';
    if (!*s)
        return out;
    size_t first = utf8_len(s);
    if (put(out, outsz, &o, in, first))
        return out;
    for (s += first; *s; s += utf8_len(s))
        if (put(out, outsz, &o, "*", 1))
            break;
    if (first == strlen(in)) /* one-character name: hide it anyway */
        put(out, outsz, &o, "*", 1);
    return out;
}

/* mask_keep - keep the first `head` and last `tail` bytes of an ASCII
 * string, '*' in between; all '*' when it is too short to keep both. */
static char *mask_keep(const char *in, size_t head, size_t tail, char *out, size_t outsz)
{
    size_t n = strlen(in), o = 0;
    if (!outsz)
        return out;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int keep = n > head + tail && (i < head || i >= n - tail);
        if (put(out, outsz, &o, keep ? in + i : "*", 1))
            break;
    }
    return out;
}

char *gg_mask_phone(const char *in, char *out, size_t outsz)
{
    return mask_keep(in, 3, 4, out, outsz);
}

char *gg_mask_id_no(const char *in, char *out, size_t outsz)
{
    return mask_keep(in, 6, 4, out, outsz);
}

char *gg_mask_address(const char *in, char *out, size_t outsz)
{
    static const char *const marks[] = { "区", "县" };
    const char *end = NULL;
    size_t o = 0;

    if (!outsz)
        return out;
    out[0] = '\0';
    for (unsigned i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        const char *p = strstr(in, marks[i]);
        if (p && (!end || p < end))
            end = p + strlen(marks[i]);
    }
    if (!end) { /* no district: keep the first two characters */
        end = in;
        for (int k = 0; k < 2 && *end; k++)
            end += utf8_len((const unsigned char *)end);
    }
    if (put(out, outsz, &o, in, (size_t)(end - in)))
        return out;
    if (*end)
        put(out, outsz, &o, "****", 4);
    return out;
}
