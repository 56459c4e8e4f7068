/* admin_audit.c - `gridgate admin audit verify -c FILE`: check the site's
 * hash-chained audit log (src/audit/audit.h) from its first record to its
 * last. Prints `audit ok records=N head=HASH` and exits 0, or names the
 * first bad line and exits 1 (altered, removed, inserted or reordered
 * records; a torn or malformed line). Compare HASH with the head the
 * running site logs and publishes (gridgate_audit_head) to detect records
 * cut off the end. 2 on bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "cli/cli.h"
#include "core/config.h"

int gg_cmd_admin_audit(int argc, char **argv)
{
    const char *file = NULL;
    gg_config *cfg = NULL;
    char err[512], buf[4096], head[65], why[256];
    const char *path;
    int64_t n = 0;
    gg_err e;
    int rc = 1;

    if (argc < 1 || strcmp(argv[0], "verify") != 0)
        goto usage;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            file = argv[++i];
        else
            goto usage;
    }
    if (file == NULL)
        goto usage;
    e = gg_config_load(file, &cfg, err, sizeof err);
    if (e != GG_OK) {
        fprintf(stderr, "gridgate admin audit: %s\n", err);
        return 1;
    }
    /* the file the roles write: security.audit_log, else beside store.path */
    path = gg_config_path_beside_store(cfg, "security.audit_log", "audit.log", buf, sizeof buf);
    if (path == NULL) {
        fprintf(stderr, "gridgate admin audit: the audit log's path is too long\n");
        gg_config_free(cfg);
        return 1;
    }
    e = gg_audit_verify(path, gg_config_str(cfg, "security.suite"), &n, head, why, sizeof why);
    if (e == GG_OK) {
        printf("audit ok records=%lld head=%s file=%s\n", (long long)n, head, path);
        rc = 0;
    } else {
        printf("audit BROKEN file=%s: %s\n", path, why);
    }
    gg_config_free(cfg);
    return rc;
usage:
    fprintf(stderr, "usage: gridgate admin audit verify -c FILE\n");
    return 2;
}
