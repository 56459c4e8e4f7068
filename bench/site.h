/* site.h - bench/: setting up the two sites of a request/reply run on this
 * machine, shared by bench_rr (rr.c) and bench_crypto (crypto.c): a free
 * loopback port, and one site (its queue store and its channel, listening
 * for the utility, connecting for the portal) started from a PKI directory
 * made by gg_pki_init; and a requester's put.
 */
#ifndef GG_BENCH_SITE_H
#define GG_BENCH_SITE_H

#include "channel/channel.h"
#include "core/err.h"
#include "store/store.h"

/* bench_free_port - a free TCP port on 127.0.0.1 (0 if none was found). */
int bench_free_port(void);

/* bench_site_start - open the store at db and start the channel of site me
 * (peer: the other site; pki: its certificates and keys as
 * pki/ca.crt, pki/<me>.crt, pki/<me>.key) on 127.0.0.1:port, listening if
 * listen, allowing 127.0.0.1 only. On failure nothing stays open. */
gg_err bench_site_start(const char *db, int listen, const char *pki, const char *me,
                        const char *peer, int port, gg_store **st, gg_channel **ch);

/* bench_put_request - put a request (data, len) on st's xmit queue for
 * dest, acknowledging the reply *prev (if not 0) in the same transaction,
 * as a requester of both benchmarks does; *prev becomes 0 once acked. If
 * the put fails, *prev is acked alone if it can be. The put's gg_err. */
gg_err bench_put_request(gg_store *st, int64_t *prev, const char *dest, const void *data,
                         size_t len);

/* bench_wait_running - wait up to timeout_ms for ch to be running. */
void bench_wait_running(gg_channel *ch, int timeout_ms);

#endif
