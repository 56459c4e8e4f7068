/* rand.h - randomness and identifiers (OpenSSL's CSPRNG). */
#ifndef GG_CORE_RAND_H
#define GG_CORE_RAND_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* gg_random - fill buf with n cryptographically strong random bytes. Panics
 * if the generator fails (the process cannot operate safely without it). */
void gg_random(void *buf, size_t n);

/* gg_hex - write 2n lowercase hex chars plus NUL into out (size >= 2n+1). */
char *gg_hex(const uint8_t *in, size_t n, char *out);

/* gg_unhex - parse exactly 2n hex chars into out. GG_EINVAL otherwise. */
gg_err gg_unhex(const char *in, uint8_t *out, size_t n);

/* gg_new_id - a random 16-byte id. */
void gg_new_id(uint8_t id[16]);

/* gg_b64url_encode - unpadded base64url of in into out (size >= 4n/3+4).
 * Returns the length written (without NUL). */
size_t gg_b64url_encode(const uint8_t *in, size_t n, char *out);

/* gg_b64url_decode - decode unpadded base64url; GG_EINVAL on bad input,
 * GG_ETOOBIG if more than outmax bytes would result. */
gg_err gg_b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t outmax,
                        size_t *outlen);

#endif
