/* tmpdir.h - a private temporary directory per unit test: made under
 * $GG_TEST_TMP (CTest sets it to the build's tmp/; /tmp otherwise) and
 * removed with everything in it. Static inline, for any test file. */
#ifndef GG_TEST_TMPDIR_H
#define GG_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* gg_test_mkdtemp - a new directory named prefix + 6 random characters
 * into out (size n); NULL if it cannot be made. */
static inline char *gg_test_mkdtemp(char *out, size_t n, const char *prefix)
{
    const char *base = getenv("GG_TEST_TMP");

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    mkdir(base, 0700);
    if ((size_t)snprintf(out, n, "%s/%sXXXXXX", base, prefix) >= n)
        return NULL;
    return mkdtemp(out);
}

/* gg_test_rm_one - nftw callback: remove one entry. */
static inline int gg_test_rm_one(const char *p, const struct stat *sb, int flag,
                                 struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* gg_test_rmtree - remove dir and everything below it. */
static inline void gg_test_rmtree(const char *dir)
{
    nftw(dir, gg_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
