/* api_usage.c - validation of GET /api/v1/accounts/{account_no}/usage and
 * the calendar-date helpers it needs (api.h). Pure functions, as api.c. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "portal/api.h"

/* gg_api_parse_day - "YYYY-MM-DD" to days since 1970-01-01. */
int gg_api_parse_day(const char *s, long *day)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int i, y = 0, m, d, leap;
    long yy, era, yoe, doy;

    if (s == NULL || strlen(s) != 10)
        return -1;
    for (i = 0; i < 10; i++) {
        if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return -1;
    }
    for (i = 0; i < 4; i++)
        y = y * 10 + (s[i] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap))
        return -1;
    yy = m <= 2 ? y - 1 : y;
    era = yy / 400;
    yoe = yy - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    *day = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    return 0;
}

/* gg_api_format_day - days since 1970-01-01 to "YYYY-MM-DD". */
void gg_api_format_day(long day, char out[11])
{
    long z = day + 719468, era = z / 146097, doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    long y = yoe + era * 400 + (m <= 2);

    if (y < 0 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31) {
        y = 0;
        m = 1;
        d = 1;
    }
    snprintf(out, 11, "%04d-%02d-%02d", (int)y, (int)m, (int)d);
}

/* day_param - read a date key of query. 1 present, 0 absent, -1 invalid. */
static int day_param(const char *query, const char *key, long *day, gg_api_status *st)
{
    char v[16];
    int r = gg_api_query_get(query, key, v, sizeof v);

    if (r == 0)
        return 0;
    if (r < 0 || gg_api_parse_day(v, day) != 0) {
        gg_api_fail(st, 400, "invalid_parameter", "%s must be a date as YYYY-MM-DD", key);
        return -1;
    }
    return 1;
}

/* gg_api_parse_usage - validate a usage query into a payload. */
void gg_api_parse_usage(const char *account_no, const char *query, const char *token,
                        int64_t now_ms, json_t **payload, gg_api_status *st)
{
    char gran[8], sfrom[11], sto[11];
    int g, month = 1, has_from, has_to;

    *payload = NULL;
    gg_api_check_token(token, st);
    if (st->code != NULL)
        return;
    if (account_no == NULL || !gg_api_valid_account(account_no, strlen(account_no))) {
        gg_api_fail(st, 400, "invalid_parameter", "account_no must be 1 to %d letters or digits",
                    GG_API_ACCOUNT_MAX);
        return;
    }
    g = gg_api_query_get(query, "granularity", gran, sizeof gran);
    if (g < 0 || (g == 1 && strcmp(gran, "day") != 0 && strcmp(gran, "month") != 0)) {
        gg_api_fail(st, 400, "invalid_parameter", "granularity must be day or month");
        return;
    }
    month = g == 0 || strcmp(gran, "month") == 0;
    if (month) {
        if (gg_api_month_range(query, now_ms, GG_API_USAGE_MONTHS_MAX, sfrom, sto, st) != 0)
            return;
    } else {
        long from = 0, to = 0;

        has_from = day_param(query, "from", &from, st);
        if (has_from < 0)
            return;
        has_to = day_param(query, "to", &to, st);
        if (has_to < 0)
            return;
        if (!has_to) {
            time_t t = (time_t)(now_ms / 1000);
            struct tm tm;
            char today[16];

            if (localtime_r(&t, &tm) == NULL ||
                strftime(today, sizeof today, "%Y-%m-%d", &tm) == 0 ||
                gg_api_parse_day(today, &to) != 0)
                to = 0;
        }
        if (!has_from)
            from = to - 29;
        if (from > to) {
            gg_api_fail(st, 400, "invalid_parameter", "from must not be after to");
            return;
        }
        if (to - from + 1 > GG_API_USAGE_DAYS_MAX) {
            gg_api_fail(st, 400, "invalid_parameter", "from..to must span at most %d days",
                        GG_API_USAGE_DAYS_MAX);
            return;
        }
        gg_api_format_day(from, sfrom);
        gg_api_format_day(to, sto);
    }
    *payload = json_pack("{s:s,s:s,s:s,s:s,s:s}", "binding_token", token, "account_no",
                         account_no, "granularity", month ? "month" : "day", "from", sfrom,
                         "to", sto);
    if (*payload == NULL) {
        gg_api_fail(st, 500, "internal", "out of memory");
        return;
    }
    gg_api_status_ok(st);
}

