/* pki.c - a CA, TLS certificates and message keys for two sites (OpenSSL 3).
 *
 * Everything is generated in memory first; only then are the files written,
 * each created with O_EXCL (never overwriting) and fsync'd, private files
 * 0600 and public ones 0644. If any write fails, the files this call made
 * are removed again, so a failed init leaves the directory as it found it.
 *
 * Certificates: the CA is EC P-256, self-signed, basicConstraints
 * CA:TRUE,pathlen:0 and keyUsage keyCertSign,cRLSign (both critical). A
 * site certificate is EC P-256 signed by the CA with CN = site name,
 * subjectAltName DNS:site name, extendedKeyUsage serverAuth,clientAuth,
 * keyUsage digitalSignature, basicConstraints CA:FALSE. Validity starts
 * five minutes in the past to tolerate clock skew.
 *
 * Message keys: suite intl, Ed25519 (sign) and X25519 (kem); suite gm, SM2
 * for both. TLS stays EC P-256 under either suite (docs/protocol.md).
 */
#include "pki/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/rand.h"

#define PKI_NAME_MAX 63
#define PKI_DAYS_DEFAULT 825
#define PKI_DAYS_MAX 36500
#define PKI_SKEW_S 300
#define PKI_FILES_MAX 16
#define CA_CN "gridgate CA"

/* One file to write: contents held until every file is ready. */
typedef struct pki_file {
    char path[PATH_MAX];
    char *data;
    size_t len;
    mode_t mode;
    int written;
} pki_file;

typedef struct pki_files {
    pki_file f[PKI_FILES_MAX];
    int n;
} pki_files;

/* no_passphrase - PEM password callback: never prompt on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* site_name_ok - 1..63 of [A-Za-z0-9._-], starting with a letter or digit,
 * and not a name that collides with the CA or token files. */
static int site_name_ok(const char *s)
{
    size_t n = strnlen(s, PKI_NAME_MAX + 1);
    if (n == 0 || n > PKI_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return strcmp(s, "ca") != 0 && strcmp(s, "token") != 0;
}

/* files_free - release the held contents (private keys are wiped). */
static void files_free(pki_files *fs)
{
    for (int i = 0; i < fs->n; i++) {
        if (fs->f[i].data) {
            OPENSSL_cleanse(fs->f[i].data, fs->f[i].len);
            free(fs->f[i].data);
        }
    }
    fs->n = 0;
}

/* files_add_bio - take the contents of a memory BIO as file dir/name. */
static gg_err files_add_bio(pki_files *fs, const char *dir, const char *name, BIO *bio,
                            mode_t mode)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    pki_file *f;

    if (fs->n >= PKI_FILES_MAX)
        GG_PANIC("pki: more than %d files", PKI_FILES_MAX);
    if (n <= 0 || !p)
        return GG_ECRYPTO;
    f = &fs->f[fs->n];
    if (snprintf(f->path, sizeof f->path, "%s/%s", dir, name) >= (int)sizeof f->path)
        return GG_EINVAL;
    f->data = malloc((size_t)n);
    if (!f->data)
        return GG_ENOMEM;
    memcpy(f->data, p, (size_t)n);
    f->len = (size_t)n;
    f->mode = mode;
    f->written = 0;
    fs->n++;
    return GG_OK;
}

/* files_add_key - PEM of the private (priv=1) or public half of pk. */
static gg_err files_add_key(pki_files *fs, const char *dir, const char *name, EVP_PKEY *pk,
                            int priv)
{
    BIO *bio = BIO_new(BIO_s_mem());
    gg_err rc = GG_ECRYPTO;
    int ok;

    if (!bio)
        return GG_ENOMEM;
    ok = priv ? PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL)
              : PEM_write_bio_PUBKEY(bio, pk);
    if (ok == 1)
        rc = files_add_bio(fs, dir, name, bio, priv ? 0600 : 0644);
    BIO_free(bio);
    return rc;
}

/* files_add_cert - PEM of x. */
static gg_err files_add_cert(pki_files *fs, const char *dir, const char *name, X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    gg_err rc = GG_ECRYPTO;

    if (!bio)
        return GG_ENOMEM;
    if (PEM_write_bio_X509(bio, x) == 1)
        rc = files_add_bio(fs, dir, name, bio, 0644);
    BIO_free(bio);
    return rc;
}

/* files_add_text - a plain text file. */
static gg_err files_add_text(pki_files *fs, const char *dir, const char *name, const char *text,
                             mode_t mode)
{
    BIO *bio = BIO_new(BIO_s_mem());
    gg_err rc = GG_ECRYPTO;

    if (!bio)
        return GG_ENOMEM;
    if (BIO_puts(bio, text) == (int)strlen(text))
        rc = files_add_bio(fs, dir, name, bio, mode);
    BIO_free(bio);
    return rc;
}

/* files_check_absent - GG_EEXISTS if any target already exists. */
static gg_err files_check_absent(const pki_files *fs)
{
    struct stat st;
    for (int i = 0; i < fs->n; i++) {
        if (lstat(fs->f[i].path, &st) == 0 || errno != ENOENT) {
            gg_error("pki", "msg=\"refusing to overwrite\" path=%s", fs->f[i].path);
            return GG_EEXISTS;
        }
    }
    return GG_OK;
}

/* write_one - create path exclusively with mode, write, fsync. */
static gg_err write_one(pki_file *f)
{
    size_t off = 0;
    int fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, f->mode);
    gg_err rc = GG_EIO;

    if (fd < 0) {
        if (errno == EEXIST) {
            gg_error("pki", "msg=\"refusing to overwrite\" path=%s", f->path);
            return GG_EEXISTS;
        }
        gg_error("pki", "msg=\"cannot create\" path=%s errno=%d", f->path, errno);
        return GG_EIO;
    }
    f->written = 1;
    if (fchmod(fd, f->mode) != 0)       /* exact mode whatever the umask */
        goto out;
    while (off < f->len) {
        ssize_t w = write(fd, f->data + off, f->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto out;
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto out;
    rc = GG_OK;
out:
    if (rc != GG_OK)
        gg_error("pki", "msg=\"write failed\" path=%s errno=%d", f->path, errno);
    close(fd);
    return rc;
}

/* sync_parent - fsync the directory holding path so its new name is durable. */
static void sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd;

    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* files_write - write all files or none (removing what this call wrote). */
static gg_err files_write(pki_files *fs)
{
    gg_err rc = files_check_absent(fs);
    int i;

    for (i = 0; rc == GG_OK && i < fs->n; i++)
        rc = write_one(&fs->f[i]);
    if (rc != GG_OK) {
        for (i = 0; i < fs->n; i++) {
            if (fs->f[i].written)
                unlink(fs->f[i].path);
            fs->f[i].written = 0;
        }
    }
    for (i = 0; i < fs->n; i++)
        sync_parent(fs->f[i].path);
    return rc;
}

/* add_ext - add one extension written in openssl.cnf syntax. */
static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1;
}

/* make_cert - a v3 certificate for cn with key pub, signed by issuer_key
 * (issuer NULL: self-signed CA), valid from now+nb to now+na seconds. */
static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key,
                       long nb, long na)
{
    uint8_t serial[16];
    char san[PKI_NAME_MAX + 8];
    BIGNUM *bn = NULL;
    X509_NAME *name = NULL;
    X509 *x = X509_new();
    int ok = 0;

    if (!x)
        goto out;
    gg_random(serial, sizeof serial);
    serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);      /* positive, 16 bytes */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto out;
    if (X509_set_version(x, X509_VERSION_3) != 1)
        goto out;
    if (!X509_gmtime_adj(X509_getm_notBefore(x), nb) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), na))
        goto out;
    name = X509_NAME_new();
    if (!name)
        goto out;
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"gridgate",
                                   -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1)
        goto out;
    if (X509_set_subject_name(x, name) != 1)
        goto out;
    if (X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1)
        goto out;
    if (X509_set_pubkey(x, pub) != 1)
        goto out;
    if (!add_ext(x, issuer, NID_subject_key_identifier, "hash"))
        goto out;
    if (!issuer) {
        if (!add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
            !add_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign"))
            goto out;
    } else {
        snprintf(san, sizeof san, "DNS:%s", cn);
        if (!add_ext(x, issuer, NID_authority_key_identifier, "keyid:always") ||
            !add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
            !add_ext(x, issuer, NID_key_usage, "critical,digitalSignature") ||
            !add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth") ||
            !add_ext(x, issuer, NID_subject_alt_name, san))
            goto out;
    }
    if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
        goto out;
    ok = 1;
out:
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* add_site - TLS key and certificate, signing and kem key pairs for site. */
static gg_err add_site(pki_files *fs, const char *dir, const char *site, X509 *ca,
                       EVP_PKEY *ca_key, long days, int gm)
{
    char name[PKI_NAME_MAX + 16];
    EVP_PKEY *tls = NULL, *sign = NULL, *kem = NULL;
    X509 *crt = NULL;
    gg_err rc = GG_ECRYPTO;

    tls = EVP_EC_gen("P-256");
    sign = EVP_PKEY_Q_keygen(NULL, NULL, gm ? "SM2" : "ED25519");
    kem = EVP_PKEY_Q_keygen(NULL, NULL, gm ? "SM2" : "X25519");
    if (!tls || !sign || !kem)
        goto out;
    crt = make_cert(site, tls, ca, ca_key, -PKI_SKEW_S, days * 86400L);
    if (!crt)
        goto out;
#define ADD(expr)                   \
    do {                            \
        rc = (expr);                \
        if (rc != GG_OK)            \
            goto out;               \
    } while (0)
    snprintf(name, sizeof name, "%s.crt", site);
    ADD(files_add_cert(fs, dir, name, crt));
    snprintf(name, sizeof name, "%s.key", site);
    ADD(files_add_key(fs, dir, name, tls, 1));
    snprintf(name, sizeof name, "%s.sign.key", site);
    ADD(files_add_key(fs, dir, name, sign, 1));
    snprintf(name, sizeof name, "%s.sign.pub", site);
    ADD(files_add_key(fs, dir, name, sign, 0));
    snprintf(name, sizeof name, "%s.kem.key", site);
    ADD(files_add_key(fs, dir, name, kem, 1));
    snprintf(name, sizeof name, "%s.kem.pub", site);
    ADD(files_add_key(fs, dir, name, kem, 0));
#undef ADD
    rc = GG_OK;
out:
    EVP_PKEY_free(tls);
    EVP_PKEY_free(sign);
    EVP_PKEY_free(kem);
    X509_free(crt);
    return rc;
}

/* ensure_dir - create dir 0700, or accept an existing directory. */
static gg_err ensure_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) == 0)
        return chmod(dir, 0700) == 0 ? GG_OK : GG_EIO;
    if (errno != EEXIST || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        gg_error("pki", "msg=\"cannot create directory\" path=%s errno=%d", dir, errno);
        return GG_EIO;
    }
    if (st.st_mode & 077)
        gg_warn("pki", "msg=\"directory is readable by group or others\" path=%s mode=%03o",
                dir, (unsigned)(st.st_mode & 0777));
    return GG_OK;
}

gg_err gg_pki_init(const char *dir, const gg_pki_opts *opts)
{
    static const gg_pki_opts defaults = { "intl", "portal", "utility", PKI_DAYS_DEFAULT };
    const char *suite, *a, *b;
    uint8_t tk[32];
    char tkhex[2 * sizeof tk + 2];
    EVP_PKEY *ca_key = NULL;
    X509 *ca = NULL;
    pki_files fs;
    long days;
    gg_err rc = GG_EINVAL;

    memset(&fs, 0, sizeof fs);
    if (!opts)
        opts = &defaults;
    suite = opts->suite ? opts->suite : "intl";
    a = opts->site_a ? opts->site_a : "portal";
    b = opts->site_b ? opts->site_b : "utility";
    days = opts->days ? opts->days : PKI_DAYS_DEFAULT;
    if (!dir || !*dir)
        return GG_EINVAL;
    if (strcmp(suite, "intl") != 0 && strcmp(suite, "gm") != 0) {
        gg_error("pki", "msg=\"unknown suite\" suite=%.16s", suite);
        return GG_ECONFIG;
    }
    if (!site_name_ok(a) || !site_name_ok(b) || strcmp(a, b) == 0) {
        gg_error("pki", "msg=\"site names must be distinct, 1..%d of [A-Za-z0-9._-]\"",
                 PKI_NAME_MAX);
        return GG_EINVAL;
    }
    if (days < 1 || days > PKI_DAYS_MAX)
        return GG_EINVAL;
    rc = ensure_dir(dir);
    if (rc != GG_OK)
        return rc;

    rc = GG_ECRYPTO;
    ca_key = EVP_EC_gen("P-256");
    if (!ca_key)
        goto out;
    ca = make_cert(CA_CN, ca_key, NULL, ca_key, -PKI_SKEW_S, days * 86400L);
    if (!ca)
        goto out;
    rc = files_add_cert(&fs, dir, "ca.crt", ca);
    if (rc == GG_OK)
        rc = files_add_key(&fs, dir, "ca.key", ca_key, 1);
    if (rc == GG_OK)
        rc = add_site(&fs, dir, a, ca, ca_key, days, strcmp(suite, "gm") == 0);
    if (rc == GG_OK)
        rc = add_site(&fs, dir, b, ca, ca_key, days, strcmp(suite, "gm") == 0);
    if (rc != GG_OK)
        goto out;
    gg_random(tk, sizeof tk);
    gg_hex(tk, sizeof tk, tkhex);
    strcat(tkhex, "\n");
    rc = files_add_text(&fs, dir, "token.key", tkhex, 0600);
    if (rc != GG_OK)
        goto out;
    rc = files_write(&fs);
    if (rc != GG_OK)
        goto out;
    gg_info("pki", "msg=\"initialised\" dir=%s suite=%s sites=%s,%s days=%ld files=%d", dir,
            suite, a, b, days, fs.n);
out:
    if (rc == GG_ECRYPTO)
        gg_error("pki", "msg=\"key or certificate generation failed\" dir=%s", dir);
    OPENSSL_cleanse(tk, sizeof tk);
    OPENSSL_cleanse(tkhex, sizeof tkhex);
    files_free(&fs);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
    ERR_clear_error();
    return rc;
}

gg_err gg_pki_issue_cert(const char *ca_crt, const char *ca_key, const char *name,
                         long not_before, long not_after, const char *out_crt,
                         const char *out_key)
{
    EVP_PKEY *cakey = NULL, *key = NULL;
    X509 *ca = NULL, *crt = NULL;
    BIO *in = NULL;
    pki_files fs;
    pki_file *f;
    gg_err rc = GG_EINVAL;

    memset(&fs, 0, sizeof fs);
    if (!ca_crt || !ca_key || !name || !out_crt || !out_key || !site_name_ok(name))
        return GG_EINVAL;
    in = BIO_new_file(ca_crt, "r");
    if (!in) {
        rc = GG_EIO;
        goto out;
    }
    ca = PEM_read_bio_X509(in, NULL, no_passphrase, NULL);
    BIO_free(in);
    in = BIO_new_file(ca_key, "r");
    if (!in) {
        rc = GG_EIO;
        goto out;
    }
    cakey = PEM_read_bio_PrivateKey(in, NULL, no_passphrase, NULL);
    if (!ca || !cakey || X509_check_private_key(ca, cakey) != 1)
        goto out;
    rc = GG_ECRYPTO;
    key = EVP_EC_gen("P-256");
    if (!key)
        goto out;
    crt = make_cert(name, key, ca, cakey, not_before, not_after);
    if (!crt)
        goto out;
    rc = files_add_cert(&fs, ".", "crt", crt);
    if (rc == GG_OK)
        rc = files_add_key(&fs, ".", "key", key, 1);
    if (rc != GG_OK)
        goto out;
    /* The two files go where the caller said, not into one directory. */
    rc = GG_EINVAL;
    f = &fs.f[0];
    if (snprintf(f->path, sizeof f->path, "%s", out_crt) >= (int)sizeof f->path)
        goto out;
    f = &fs.f[1];
    if (snprintf(f->path, sizeof f->path, "%s", out_key) >= (int)sizeof f->path)
        goto out;
    rc = files_write(&fs);
out:
    BIO_free(in);
    files_free(&fs);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    X509_free(ca);
    X509_free(crt);
    ERR_clear_error();
    return rc;
}
