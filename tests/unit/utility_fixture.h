/* utility_fixture.h - a utility role and a portal-side transport to it, in
 * process on 127.0.0.1 (site_fixture.h), the utility answering from a
 * seeded marketing database in the site's directory. Static inline, for
 * any test file that includes cmocka first. gg_test_pair_free releases
 * whatever part was made, so a setup may stop half way. */
#ifndef GG_TEST_UTILITY_FIXTURE_H
#define GG_TEST_UTILITY_FIXTURE_H

#include <stdio.h>

#include "core/config.h"
#include "envelope/envelope.h"
#include "marketing/seed.h"
#include "transport/transport.h"
#include "utility/worker.h"
#include "env_fixture.h"
#include "site_fixture.h"

typedef struct gg_test_pair {
    gg_test_site s;
    char mkt[300];          /* s.dir/mkt.db */
    char utext[16384];      /* the utility's config text */
    gg_config *ucfg;        /* parsed utext */
    gg_config *pcfg;        /* the portal's config */
    gg_utility *u;          /* NULL until gg_test_pair_start */
    gg_transport *p;        /* the portal side; NULL until gg_test_pair_start */
    gg_env_keys *pkeys;     /* the portal's envelope keys */
} gg_test_pair;

/* gg_test_pair_prepare - the site (prefix names its directory), the
 * marketing database seeded with o, both configs (extra, or NULL, ends the
 * utility's) and the portal's keys; nothing started. -1 if any fails. */
static inline int gg_test_pair_prepare(gg_test_pair *d, const char *prefix, const gg_seed_opts *o,
                                       const char *extra)
{
    char text[16384];
    char why[256];

    if (gg_test_site_init(&d->s, prefix) != 0)
        return -1;
    snprintf(d->mkt, sizeof d->mkt, "%s/mkt.db", d->s.dir);
    if (gg_seed_sqlite(d->mkt, o) != GG_OK)
        return -1;
    gg_test_utility_text(&d->s, d->mkt, extra, d->utext, sizeof d->utext);
    gg_test_site_text(&d->s, "portal", "utility", 0, NULL, text, sizeof text);
    if (gg_test_site_parse(&d->s, d->utext, &d->ucfg) != GG_OK ||
        gg_test_site_parse(&d->s, text, &d->pcfg) != GG_OK)
        return -1;
    if (gg_test_env_load(d->s.pki, "portal", d->s.pki, "utility", "intl", &d->pkeys, why,
                         sizeof why) != GG_OK) {
        fprintf(stderr, "keys: %s\n", why);
        return -1;
    }
    return 0;
}

/* gg_test_pair_start - start the utility, then open the portal's
 * transport; -1 if either fails. */
static inline int gg_test_pair_start(gg_test_pair *d)
{
    if (gg_utility_start(d->ucfg, &d->u) != GG_OK || gg_transport_open(d->pcfg, &d->p) != GG_OK)
        return -1;
    return 0;
}

/* gg_test_pair_free - stop what runs, free keys and configs, remove the
 * directory; d itself is the caller's. */
static inline void gg_test_pair_free(gg_test_pair *d)
{
    gg_transport_close(d->p);
    gg_utility_stop(d->u);
    gg_env_keys_free(d->pkeys);
    gg_config_free(d->ucfg);
    gg_config_free(d->pcfg);
    gg_test_site_remove(&d->s);
}

#endif
