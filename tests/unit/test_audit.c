/* test_audit.c - the hash-chained audit log: written records verify, the
 * chain continues across reopen, and altered, removed, reordered or torn
 * records are found; a burst larger than the queue never blocks and leaves
 * an explicit gap record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir.h"
#include "audit/audit.h"
#include "core/log.h"
#include "core/rand.h"

typedef struct fx {
    char dir[512];
    char path[600];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);

    gg_log_set_level(GG_LOG_ERROR);
    assert_non_null(gg_test_mkdtemp(f->dir, sizeof f->dir, "audit"));
    snprintf(f->path, sizeof f->path, "%s/audit.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    gg_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* write_n - n records through a fresh open/close. */
static void write_n(fx *f, const char *suite, int n)
{
    gg_audit *a = NULL;
    uint8_t id[16];

    assert_int_equal(gg_audit_open(f->path, suite, &a), GG_OK);
    for (int i = 0; i < n; i++) {
        gg_new_id(id);
        gg_audit_note(a, i % 2 ? "replied" : "rejected", id, "bills.query",
                      i % 2 ? "status=200 result=ok" : "reason=crypto");
    }
    gg_audit_close(a);
}

static gg_err verify(fx *f, const char *suite, int64_t *n, char *why, size_t whysz)
{
    char head[65];

    return gg_audit_verify(f->path, suite, n, head, why, whysz);
}

/* read_lines - the file as an array of lines (caller frees each and the array). */
static char **read_lines(fx *f, int *count)
{
    FILE *fp = fopen(f->path, "r");
    char **lines = calloc(4096, sizeof *lines);
    char buf[1024];
    int n = 0;

    assert_non_null(fp);
    while (n < 4096 && fgets(buf, sizeof buf, fp) != NULL)
        lines[n++] = strdup(buf);
    fclose(fp);
    *count = n;
    return lines;
}

static void write_lines(fx *f, char **lines, int n)
{
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    for (int i = 0; i < n; i++) {
        if (lines[i] != NULL)
            fputs(lines[i], fp);
    }
    fclose(fp);
}

static void free_lines(char **lines, int n)
{
    for (int i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static void test_written_records_verify_and_continue_after_reopen(void **state)
{
    fx *f = *state;
    int64_t n = 0;
    char why[256];

    write_n(f, "intl", 10);
    assert_int_equal(verify(f, "intl", &n, why, sizeof why), GG_OK);
    assert_int_equal(n, 10);
    write_n(f, "intl", 5);
    assert_int_equal(verify(f, "intl", &n, why, sizeof why), GG_OK);
    assert_int_equal(n, 15);
    /* the chain hash is the suite's: SHA-256 does not verify as SM3 */
    assert_int_equal(verify(f, "gm", &n, why, sizeof why), GG_EPROTO);
}

static void test_gm_chain_uses_sm3(void **state)
{
    fx *f = *state;
    int64_t n = 0;
    char why[256];

    write_n(f, "gm", 7);
    assert_int_equal(verify(f, "gm", &n, why, sizeof why), GG_OK);
    assert_int_equal(n, 7);
    assert_int_equal(verify(f, "intl", &n, why, sizeof why), GG_EPROTO);
}

static void test_altered_removed_and_reordered_records_are_found(void **state)
{
    fx *f = *state;
    char why[256], *tmp;
    int64_t n;
    int count;
    char **lines;

    write_n(f, "intl", 8);
    /* altered: one character of a detail */
    lines = read_lines(f, &count);
    assert_int_equal(count, 8);
    tmp = strstr(lines[3], "status=200");
    assert_non_null(tmp);
    tmp[7] = '5';
    write_lines(f, lines, count);
    assert_int_equal(verify(f, "intl", &n, why, sizeof why), GG_EPROTO);
    assert_non_null(strstr(why, "line 4"));
    assert_non_null(strstr(why, "altered"));
    free_lines(lines, count);

    /* removed: a middle record */
    remove(f->path);
    write_n(f, "intl", 8);
    lines = read_lines(f, &count);
    free(lines[5]);
    lines[5] = NULL;
    write_lines(f, lines, count);
    assert_int_equal(verify(f, "intl", &n, why, sizeof why), GG_EPROTO);
    assert_non_null(strstr(why, "removed"));
    free_lines(lines, count);

    /* reordered: two records swapped */
    remove(f->path);
    write_n(f, "intl", 8);
    lines = read_lines(f, &count);
    tmp = lines[2];
    lines[2] = lines[3];
    lines[3] = tmp;
    write_lines(f, lines, count);
    assert_int_equal(verify(f, "intl", &n, why, sizeof why), GG_EPROTO);
    assert_non_null(strstr(why, "line 3"));
    free_lines(lines, count);

    /* a record inserted with a plausible seq breaks the link */
    remove(f->path);
    write_n(f, "intl", 4);
    lines = read_lines(f, &count);
    lines[count] = strdup(lines[count - 1]);
    write_lines(f, lines, count + 1);
    assert_int_equal(verify(f, "intl", &n, why, sizeof why), GG_EPROTO);
    free_lines(lines, count + 1);
}

static void test_torn_last_record_is_cut_and_noted_on_reopen(void **state)
{
    fx *f = *state;
    char why[256];
    int64_t n;
    FILE *fp;

    write_n(f, "intl", 3);
    fp = fopen(f->path, "a");
    assert_non_null(fp);
    fputs("4 1700000000000 replied 00", fp);     /* a crash mid-write */
    fclose(fp);
    assert_int_equal(verify(f, "intl", &n, why, sizeof why), GG_EPROTO);
    write_n(f, "intl", 1);
    assert_int_equal(verify(f, "intl", &n, why, sizeof why), GG_OK);
    assert_int_equal(n, 5);                      /* 3 + "recovered" + 1 */
}

static void test_burst_beyond_the_queue_never_blocks_and_leaves_a_gap_record(void **state)
{
    fx *f = *state;
    gg_audit *a = NULL;
    gg_audit_stats st;
    char why[256];
    int64_t n;
    const int burst = 3 * GG_AUDIT_QUEUE;

    assert_int_equal(gg_audit_open(f->path, "intl", &a), GG_OK);
    for (int i = 0; i < burst; i++)
        gg_audit_note(a, "replied", NULL, "bills.query", "status=200");
    gg_audit_note(a, "last", NULL, NULL, NULL);
    gg_audit_flush(a);
    gg_audit_get_stats(a, &st);
    gg_audit_close(a);
    assert_int_equal(verify(f, "intl", &n, why, sizeof why), GG_OK);
    /* every note is either written or counted as dropped, and drops are announced */
    if (st.dropped > 0) {
        FILE *fp = fopen(f->path, "r");
        char line[1024];
        int gaps = 0;

        assert_non_null(fp);
        while (fgets(line, sizeof line, fp) != NULL)
            gaps += strstr(line, " gap ") != NULL;
        fclose(fp);
        assert_true(gaps >= 1);
        assert_int_equal(n, burst + 1 - st.dropped + gaps);
    } else {
        assert_int_equal(n, burst + 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_written_records_verify_and_continue_after_reopen,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_gm_chain_uses_sm3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_altered_removed_and_reordered_records_are_found,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_last_record_is_cut_and_noted_on_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_burst_beyond_the_queue_never_blocks_and_leaves_a_gap_record, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
