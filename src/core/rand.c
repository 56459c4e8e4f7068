/* rand.c - random bytes, ids, hex and base64url. */
#include "core/rand.h"

#include <openssl/rand.h>
#include <string.h>

#include "core/log.h"

void gg_random(void *buf, size_t n)
{
    if (n > 0 && RAND_bytes(buf, (int)n) != 1)
        GG_PANIC("RAND_bytes failed: no safe randomness");
}

void gg_new_id(uint8_t id[16])
{
    gg_random(id, 16);
}

char *gg_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

/* hexval - value of one hex digit, or -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

gg_err gg_unhex(const char *in, uint8_t *out, size_t n)
{
    if (strlen(in) != 2 * n)
        return GG_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return GG_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return GG_OK;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t gg_b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* b64val - value of a base64url character, or -1. */
static int b64val(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

gg_err gg_b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t outmax,
                        size_t *outlen)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (inlen % 4 == 1)
        return GG_EINVAL;
    for (size_t i = 0; i < inlen; i++) {
        int v = b64val(in[i]);
        if (v < 0)
            return GG_EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outmax)
                return GG_ETOOBIG;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero for a canonical encoding. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return GG_EINVAL;
    *outlen = o;
    return GG_OK;
}
