/* token.c - binding tokens: compact binary claims, HMAC-SHA256.
 *
 * token = "gg1." base64url(claims) "." base64url(HMAC-SHA256(key, "gg1." base64url(claims)))
 * claims (big-endian), docs/protocol.md ("Envelope"):
 *   version:u8 (=1) token_id[16] user_len:u8 portal_user_id account_len:u8
 *   account_no scopes:u32 issued_ms:u64 expiry_ms:u64
 * Strings are 1..64 (user) and 1..32 (account) bytes with no control
 * characters. The MAC covers the text exactly as sent, and base64url is
 * decoded canonically, so one set of claims has exactly one token text.
 */
#include "envelope/token.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"

#define TOKEN_PREFIX "gg1."
#define TOKEN_PREFIX_LEN 4
#define CLAIMS_VERSION 1
#define USER_MAX 64
#define ACCOUNT_MAX 32
#define CLAIMS_MAX (1 + 16 + 1 + USER_MAX + 1 + ACCOUNT_MAX + 4 + 8 + 8)
#define MAC_LEN 32

/* str_ok - 1 if s is 1..max bytes (NUL within max+1) without control characters. */
static int str_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* mac - HMAC-SHA256 of data under key. */
static gg_err mac(const uint8_t key[GG_TOKEN_KEY_LEN], const void *data, size_t len,
                  uint8_t out[MAC_LEN])
{
    size_t outlen = 0;
    unsigned char *r = EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, GG_TOKEN_KEY_LEN,
                                 data, len, out, MAC_LEN, &outlen);
    ERR_clear_error();
    return r && outlen == MAC_LEN ? GG_OK : GG_ECRYPTO;
}

/* claims_encode - serialise c into b (max CLAIMS_MAX). */
static gg_err claims_encode(const gg_token_claims *c, const uint8_t tid[16], gg_buf *b)
{
    size_t ul = strlen(c->portal_user_id), al = strlen(c->account_no);
    gg_err e = gg_buf_put_u8(b, CLAIMS_VERSION);

    if (e == GG_OK)
        e = gg_buf_append(b, tid, 16);
    if (e == GG_OK)
        e = gg_buf_put_u8(b, (uint8_t)ul);
    if (e == GG_OK)
        e = gg_buf_append(b, c->portal_user_id, ul);
    if (e == GG_OK)
        e = gg_buf_put_u8(b, (uint8_t)al);
    if (e == GG_OK)
        e = gg_buf_append(b, c->account_no, al);
    if (e == GG_OK)
        e = gg_buf_put_u32(b, c->scopes);
    if (e == GG_OK)
        e = gg_buf_put_u64(b, (uint64_t)c->issued_ms);
    if (e == GG_OK)
        e = gg_buf_put_u64(b, (uint64_t)c->expiry_ms);
    return e;
}

/* rd_str8 - u8 length then 1..max bytes into out (size max+1), checked. */
static gg_err rd_str8(gg_rd *r, char *out, size_t max)
{
    uint8_t n;
    const uint8_t *p;

    if (gg_rd_u8(r, &n) != GG_OK || n == 0 || n > max)
        return GG_EINVAL;
    if (gg_rd_bytes(r, n, &p) != GG_OK)
        return GG_EINVAL;
    memcpy(out, p, n);
    out[n] = '\0';
    return str_ok(out, max) ? GG_OK : GG_EINVAL;
}

/* claims_decode - strict parse of the binary claims. */
static gg_err claims_decode(const uint8_t *p, size_t len, gg_token_claims *c)
{
    gg_rd r = gg_rd_make(p, len);
    const uint8_t *tid;
    uint8_t version;
    uint64_t u;

    memset(c, 0, sizeof *c);
    if (gg_rd_u8(&r, &version) != GG_OK || version != CLAIMS_VERSION)
        return GG_EINVAL;
    if (gg_rd_bytes(&r, 16, &tid) != GG_OK)
        return GG_EINVAL;
    gg_hex(tid, 16, c->token_id);
    if (rd_str8(&r, c->portal_user_id, USER_MAX) != GG_OK)
        return GG_EINVAL;
    if (rd_str8(&r, c->account_no, ACCOUNT_MAX) != GG_OK)
        return GG_EINVAL;
    if (gg_rd_u32(&r, &c->scopes) != GG_OK)
        return GG_EINVAL;
    if (gg_rd_u64(&r, &u) != GG_OK)
        return GG_EINVAL;
    c->issued_ms = (int64_t)u;
    if (gg_rd_u64(&r, &u) != GG_OK)
        return GG_EINVAL;
    c->expiry_ms = (int64_t)u;
    if (gg_rd_left(&r) != 0)
        return GG_EINVAL;
    return GG_OK;
}

gg_err gg_token_key_load(const char *path, uint8_t key[GG_TOKEN_KEY_LEN])
{
    char text[2 * GG_TOKEN_KEY_LEN + 8];
    struct stat st;
    ssize_t n;
    int fd = -1;
    gg_err rc = GG_ECONFIG;

    if (!path || !key)
        return GG_EINVAL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        gg_error("token", "msg=\"cannot open token key\" path=%s errno=%d", path, errno);
        goto out;
    }
    if (fstat(fd, &st) == 0 && (st.st_mode & 077))
        gg_warn("token", "msg=\"token key readable by group or others\" path=%s mode=%03o",
                path, (unsigned)(st.st_mode & 0777));
    n = read(fd, text, sizeof text - 1);
    if (n < 0) {
        gg_error("token", "msg=\"cannot read token key\" path=%s errno=%d", path, errno);
        goto out;
    }
    text[n] = '\0';
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        text[--n] = '\0';
    if (gg_unhex(text, key, GG_TOKEN_KEY_LEN) != GG_OK) {
        gg_error("token", "msg=\"token key must be %d hex characters\" path=%s",
                 2 * GG_TOKEN_KEY_LEN, path);
        OPENSSL_cleanse(key, GG_TOKEN_KEY_LEN);
        goto out;
    }
    rc = GG_OK;
out:
    OPENSSL_cleanse(text, sizeof text);
    if (fd >= 0)
        close(fd);
    return rc;
}

gg_err gg_token_issue(const uint8_t key[GG_TOKEN_KEY_LEN], gg_token_claims *c, char *out,
                      size_t outsz)
{
    uint8_t tid[16], m[MAC_LEN];
    gg_buf b = GG_BUF_INIT(CLAIMS_MAX);
    char text[GG_TOKEN_MAX];
    size_t n;
    gg_err rc = GG_EINVAL;

    if (!key || !c || !out)
        return GG_EINVAL;
    if (!str_ok(c->portal_user_id, USER_MAX) || !str_ok(c->account_no, ACCOUNT_MAX))
        return GG_EINVAL;
    gg_random(tid, sizeof tid);
    c->issued_ms = gg_now_ms();
    if (c->expiry_ms <= c->issued_ms)
        return GG_EINVAL;
    gg_hex(tid, sizeof tid, c->token_id);

    rc = claims_encode(c, tid, &b);
    if (rc != GG_OK)
        goto out;
    memcpy(text, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
    n = TOKEN_PREFIX_LEN;
    n += gg_b64url_encode(b.data, b.len, text + n);
    rc = mac(key, text, n, m);
    if (rc != GG_OK)
        goto out;
    text[n++] = '.';
    n += gg_b64url_encode(m, sizeof m, text + n);
    if (n + 1 > outsz) {
        rc = GG_ETOOBIG;
        goto out;
    }
    memcpy(out, text, n + 1);
    rc = GG_OK;
out:
    OPENSSL_cleanse(m, sizeof m);
    gg_buf_free(&b);
    return rc;
}

gg_err gg_token_verify(const uint8_t key[GG_TOKEN_KEY_LEN], const char *token, int64_t now_ms,
                       gg_token_claims *c)
{
    uint8_t cbuf[CLAIMS_MAX], got[MAC_LEN + 1], want[MAC_LEN];
    gg_token_claims tmp;
    const char *dot;
    size_t n, clen, mlen;
    gg_err rc;

    if (!key || !token || !c)
        return GG_EINVAL;
    n = strnlen(token, GG_TOKEN_MAX);
    if (n >= GG_TOKEN_MAX)
        return GG_ETOOBIG;
    if (n < TOKEN_PREFIX_LEN || memcmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
        return GG_EINVAL;
    dot = memchr(token + TOKEN_PREFIX_LEN, '.', n - TOKEN_PREFIX_LEN);
    if (!dot)
        return GG_EINVAL;
    if (gg_b64url_decode(token + TOKEN_PREFIX_LEN, (size_t)(dot - token) - TOKEN_PREFIX_LEN,
                         cbuf, sizeof cbuf, &clen) != GG_OK)
        return GG_EINVAL;
    if (gg_b64url_decode(dot + 1, n - (size_t)(dot + 1 - token), got, sizeof got, &mlen) !=
            GG_OK ||
        mlen != MAC_LEN)
        return GG_EINVAL;
    if (claims_decode(cbuf, clen, &tmp) != GG_OK)
        return GG_EINVAL;
    rc = mac(key, token, (size_t)(dot - token), want);
    if (rc != GG_OK)
        return rc;
    if (CRYPTO_memcmp(got, want, MAC_LEN) != 0)
        return GG_EDENIED;
    if (now_ms >= tmp.expiry_ms)
        return GG_EEXPIRED;
    *c = tmp;
    return GG_OK;
}
