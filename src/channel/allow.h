/* allow.h - the channel's IP allow-list (internal to src/channel).
 *
 * A list of CIDR blocks, IPv4 ("10.1.0.0/16", "192.0.2.7" = /32) and IPv6
 * ("2001:db8::/32", "::1" = /128), separated by commas with optional
 * blanks. Parsing is strict: an empty entry, a prefix out of range, bits set
 * past the prefix, or anything unparsable is an error naming the entry. An
 * IPv4-mapped IPv6 peer (::ffff:a.b.c.d) is matched against IPv4 blocks.
 * Immutable after parse; safe to read from any thread.
 */
#ifndef GG_CHANNEL_ALLOW_H
#define GG_CHANNEL_ALLOW_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/err.h"

#define GG_ALLOW_MAX_ENTRIES 256

typedef struct gg_allow gg_allow;

/* gg_allow_parse - parse spec. On error returns GG_ECONFIG and writes a
 * one-line reason to err (size errsz); *out is untouched. */
gg_err gg_allow_parse(const char *spec, gg_allow **out, char *err, size_t errsz);

/* gg_allow_check - 1 if the address sa (AF_INET or AF_INET6) lies in one of
 * the blocks, else 0 (also for any other family). */
int gg_allow_check(const gg_allow *a, const struct sockaddr *sa);

/* gg_allow_count - number of blocks. */
size_t gg_allow_count(const gg_allow *a);

/* gg_allow_free - NULL is fine. */
void gg_allow_free(gg_allow *a);

#endif
