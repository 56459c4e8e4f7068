/* tls.c - TLS context and per-connection peer checks (see tls.h). */
#include "channel/tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* TLS 1.2 suites allowed with tls12: forward secret key exchange and AEAD. */
static const char TLS12_CIPHERS[] =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";

static const unsigned HOST_FLAGS = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;

char *gg_tls_errors(char *buf, size_t bufsz)
{
    size_t off = 0;
    unsigned long code;
    buf[0] = '\0';
    for (;;) {
        code = ERR_get_error();
        if (code == 0)
            break;
        if (off + 2 < bufsz) {
            char one[256];
            ERR_error_string_n(code, one, sizeof one);
            int n = snprintf(buf + off, bufsz - off, "%s%s", off ? "; " : "", one);
            if (n > 0)
                off += (size_t)n < bufsz - off ? (size_t)n : bufsz - off - 1;
        }
    }
    if (off == 0)
        snprintf(buf, bufsz, "none");
    return buf;
}

gg_err gg_tls_ctx_new(const char *ca, const char *cert, const char *key, int tls12,
                      SSL_CTX **out, char *err, size_t errsz)
{
    gg_err e = GG_ECONFIG;
    char ossl[512];
    SSL_CTX *ctx = NULL;
    if (!ca || !cert || !key || !*ca || !*cert || !*key) {
        snprintf(err, errsz, "ca, cert and key are all required");
        goto out;
    }
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_method());
    if (!ctx) {
        e = GG_ENOMEM;
        snprintf(err, errsz, "SSL_CTX_new: %s", gg_tls_errors(ossl, sizeof ossl));
        goto out;
    }
    int minv = tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    if (SSL_CTX_set_min_proto_version(ctx, minv) != 1 ||
        (tls12 && SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1)) {
        snprintf(err, errsz, "TLS version policy: %s", gg_tls_errors(ossl, sizeof ossl));
        goto out;
    }
    /* Frames are length-prefixed and only whole frames are acted on, so a
     * TCP close without close_notify can truncate nothing: treat it as EOF. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errsz, "cannot load certificate %s: %s", cert,
                 gg_tls_errors(ossl, sizeof ossl));
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errsz, "cannot load key %s: %s", key, gg_tls_errors(ossl, sizeof ossl));
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errsz, "key %s does not match certificate %s", key, cert);
        ERR_clear_error();
        goto out;
    }
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        snprintf(err, errsz, "cannot load CA %s: %s", ca, gg_tls_errors(ossl, sizeof ossl));
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, 4);
    *out = ctx;
    ctx = NULL;
    e = GG_OK;
out:
    SSL_CTX_free(ctx);
    return e;
}

SSL *gg_tls_new(SSL_CTX *ctx, const char *peer_name, int server)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    SSL_set_hostflags(ssl, HOST_FLAGS);
    /* The name is checked in chain verification for both roles, so a
     * server refuses a client certificate of the wrong name in the
     * handshake, not after it. */
    if (SSL_set1_host(ssl, peer_name) != 1 ||
        (!server && SSL_set_tlsext_host_name(ssl, peer_name) != 1)) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

gg_err gg_tls_check_peer(SSL *ssl, const char *peer_name, char *why, size_t whysz)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    long vr = SSL_get_verify_result(ssl);
    if (!peer) {
        snprintf(why, whysz, "no peer certificate");
        return GG_EDENIED;
    }
    if (vr != X509_V_OK) {
        snprintf(why, whysz, "verify: %s", X509_verify_cert_error_string(vr));
        return GG_EDENIED;
    }
    if (X509_check_host(peer, peer_name, 0, HOST_FLAGS, NULL) != 1) {
        snprintf(why, whysz, "certificate does not name the peer");
        return GG_EDENIED;
    }
    return GG_OK;
}
