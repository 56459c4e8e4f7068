/* replay_main.c - run a fuzz harness over saved inputs, without libFuzzer.
 *
 * Linked with one fuzz_<name>.c in the normal and ASan builds, so the seed
 * corpus and every regression input (tests/fuzz/regress/<name>/, one file
 * per crash ever found) are replayed by `make test` under gcc as well.
 * Usage: replay_<name> DIR|FILE...; exit 0 when every input ran, 1 if a
 * path cannot be read. A crash is an abort or a sanitizer report.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX (8u << 20)

/* run_file - feed one file to the harness; -1 if unreadable. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;
    int rc = -1;

    if (f == NULL)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0)
        goto out;
    n = ftell(f);
    if (n < 0 || (unsigned long)n > REPLAY_MAX || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto out;
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* run_path - a file, or every regular file directly in a directory. */
static int run_path(const char *path, int *count)
{
    struct stat sb;
    DIR *d;
    struct dirent *e;
    char full[4096];
    int bad = 0;

    if (stat(path, &sb) != 0)
        return 0;   /* an absent directory holds no inputs */
    if (!S_ISDIR(sb.st_mode)) {
        (*count)++;
        return run_file(path) == 0 ? 0 : 1;
    }
    d = opendir(path);
    if (d == NULL)
        return 1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        if (stat(full, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        (*count)++;
        if (run_file(full) != 0) {
            fprintf(stderr, "replay: cannot read %s\n", full);
            bad = 1;
        }
    }
    closedir(d);
    return bad;
}

int main(int argc, char **argv)
{
    int bad = 0, count = 0;

    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        bad |= run_path(argv[i], &count);
    printf("replay: %d inputs, %s\n", count, bad ? "some unreadable" : "all ran");
    return bad;
}
