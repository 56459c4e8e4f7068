/* tls.h - TLS policy of the channel (internal to src/channel).
 *
 * One SSL_CTX per channel, used for both roles: TLS 1.3 only (or 1.2 and up
 * with ECDHE+AEAD suites only when tls12 is set), our certificate chain and
 * key, peer verification against the CA with a certificate required from
 * both sides, no session resumption, no renegotiation. Each connection is
 * pinned to the peer's name (CN or DNS SAN) during verification and checked
 * again after the handshake.
 */
#ifndef GG_CHANNEL_TLS_H
#define GG_CHANNEL_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "core/err.h"

/* gg_tls_ctx_new - build the context. GG_ECONFIG with a reason in err if a
 * file is unreadable, the key does not match the certificate, or the CA
 * cannot be loaded. */
gg_err gg_tls_ctx_new(const char *ca, const char *cert, const char *key, int tls12,
                      SSL_CTX **out, char *err, size_t errsz);

/* gg_tls_new - an SSL for one connection, verifying the peer as peer_name;
 * server is 1 on the accepting side. NULL on allocation failure. */
SSL *gg_tls_new(SSL_CTX *ctx, const char *peer_name, int server);

/* gg_tls_check_peer - after the handshake: the chain verified and the
 * peer certificate names peer_name. GG_EDENIED with a reason otherwise. */
gg_err gg_tls_check_peer(SSL *ssl, const char *peer_name, char *why, size_t whysz);

/* gg_tls_errors - drain this thread's OpenSSL error queue into buf as one
 * line (or "none"); returns buf. */
char *gg_tls_errors(char *buf, size_t bufsz);

#endif
