/* pki.h - generate the keys and certificates of a two-site deployment.
 *
 * gg_pki_init writes into dir (created if missing, 0700):
 *   ca.crt ca.key                       the site CA (self-signed)
 *   <site>.crt <site>.key               TLS certificate (CN and SAN = site name)
 *   <site>.sign.key <site>.sign.pub     message signing key pair
 *   <site>.kem.key <site>.kem.pub       message key-agreement key pair
 *   token.key                           the utility's binding-token key (hex)
 * for each of the two sites. Private keys are written 0600, public files
 * 0644. It refuses to overwrite any existing file, ca.key included
 * (GG_EEXISTS), and writes all files or none. Suite "gm" makes SM2 message
 * keys (TLS stays P-256); an unknown suite is GG_ECONFIG; bad site names
 * or days are GG_EINVAL.
 */
#ifndef GG_PKI_PKI_H
#define GG_PKI_PKI_H

#include "core/err.h"

typedef struct gg_pki_opts {
    const char *suite;      /* "intl" (default) or "gm" */
    const char *site_a;     /* default "portal" */
    const char *site_b;     /* default "utility" */
    int days;               /* certificate validity, default 825 */
} gg_pki_opts;

gg_err gg_pki_init(const char *dir, const gg_pki_opts *opts);

/* gg_pki_issue_cert - for tests: a certificate for name signed by the CA in
 * dir, valid from not_before to not_after (seconds relative to now, may be
 * negative), written to out_crt and out_key (GG_EEXISTS if either exists;
 * GG_EIO if the CA files cannot be read, GG_EINVAL if they do not match). */
gg_err gg_pki_issue_cert(const char *ca_crt, const char *ca_key, const char *name,
                         long not_before, long not_after, const char *out_crt,
                         const char *out_key);

#endif
