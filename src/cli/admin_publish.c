/* admin_publish.c - `gridgate admin publish-outage -c FILE --district D
 * --start T --end T --reason TEXT`: announce a planned outage.
 *
 * Writes one outage.planned event into the outbox of the utility's
 * marketing database (utility.marketing_db of the utility config FILE);
 * the running utility role's publisher seals it and sends it to the
 * portal, which delivers it to the webhook. Works while the utility runs
 * or not (the event waits in the outbox). Prints the event id.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/rand.h"
#include "marketing/ledger.h"

#define OUT_DISTRICT_MAX 32
#define OUT_REASON_MAX 200

static const char usage_publish[] =
    "usage: gridgate admin publish-outage -c UTILITY.CONF --district D --start T --end T "
    "--reason TEXT\n"
    "  T is a UTC time YYYY-MM-DDTHH:MM[:SS]Z; end after start; district 1 to 32 bytes,\n"
    "  reason 1 to 200 bytes, no control characters\n";

/* text_ok - 1..max bytes without control characters. */
static int text_ok(const char *s, size_t max)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* time_ok - "YYYY-MM-DDTHH:MM" optionally ":SS", then "Z". Comparable as text. */
static int time_ok(const char *s)
{
    static const char pat16[] = "dddd-dd-ddTdd:dd";
    size_t i, n = strlen(s);

    if (n != 17 && n != 20)
        return 0;
    for (i = 0; i < 16; i++) {
        if (pat16[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat16[i])
            return 0;
    }
    if (n == 20 && (s[16] != ':' || s[17] < '0' || s[17] > '5' || s[18] < '0' || s[18] > '9'))
        return 0;
    return s[n - 1] == 'Z';
}

/* write_event - the outage.planned row in one transaction. */
static int write_event(const char *db, json_t *data, char event_id[33])
{
    uint8_t id[16];
    gg_mkt *m = NULL;
    char *text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
    gg_err e;

    if (text == NULL)
        return 1;
    gg_new_id(id);
    gg_hex(id, sizeof id, event_id);
    e = gg_mkt_open(db, &m);
    if (e == GG_OK)
        e = gg_mkt_ledger_init(m);
    if (e == GG_OK)
        e = gg_mkt_begin(m);
    if (e == GG_OK) {
        e = gg_mkt_outbox_put(m, event_id, "outage.planned", text, gg_now_ms());
        if (e == GG_OK)
            e = gg_mkt_commit(m);
        else
            gg_mkt_rollback(m);
    }
    gg_mkt_close(m);
    free(text);
    if (e != GG_OK) {
        fprintf(stderr, "gridgate admin publish-outage: cannot write the event: %s\n",
                gg_strerror(e));
        return 1;
    }
    return 0;
}

/* gg_cmd_admin_publish_outage - see the file comment. */
int gg_cmd_admin_publish_outage(int argc, char **argv)
{
    const char *file = NULL, *district = NULL, *start = NULL, *end = NULL, *reason = NULL;
    gg_config *cfg = NULL;
    json_t *data = NULL;
    char err[512], event_id[33];
    const char *db;
    int i, rc = 2;

    for (i = 0; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];

        if (strcmp(k, "-c") == 0 || strcmp(k, "--config") == 0)
            file = v;
        else if (strcmp(k, "--district") == 0)
            district = v;
        else if (strcmp(k, "--start") == 0)
            start = v;
        else if (strcmp(k, "--end") == 0)
            end = v;
        else if (strcmp(k, "--reason") == 0)
            reason = v;
        else
            break;
    }
    if (i != argc || file == NULL || district == NULL || start == NULL || end == NULL ||
        reason == NULL) {
        fputs(usage_publish, stderr);
        return 2;
    }
    if (!text_ok(district, OUT_DISTRICT_MAX) || !text_ok(reason, OUT_REASON_MAX) ||
        !time_ok(start) || !time_ok(end) || strcmp(start, end) >= 0) {
        fputs("gridgate admin publish-outage: bad value\n", stderr);
        fputs(usage_publish, stderr);
        return 2;
    }
    if (gg_config_load(file, &cfg, err, sizeof err) != GG_OK) {
        fprintf(stderr, "gridgate: %s\n", err);
        return 1;
    }
    db = gg_config_str(cfg, "utility.marketing_db");
    if (db == NULL) {
        fprintf(stderr, "gridgate admin publish-outage: utility.marketing_db is not set in %s\n",
                file);
        rc = 1;
        goto out;
    }
    data = json_pack("{s:s, s:s, s:s, s:s}", "district", district, "start", start, "end", end,
                     "reason", reason);
    rc = data != NULL ? write_event(db, data, event_id) : 1;
    if (rc == 0)
        printf("outage.planned event %s queued\n", event_id);
out:
    json_decref(data);
    gg_config_free(cfg);
    return rc;
}
