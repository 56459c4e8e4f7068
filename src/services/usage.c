/* usage.c - "usage.query": an account's metered kWh (peak and valley) per
 * day or per month, for the holder of a valid binding token.
 *
 * Order of checks as bills.query: the token (401/403), the account it is
 * bound to (403 not_bound), granularity and range (400 invalid_parameter),
 * then the account (404 not_found). A range spans at most
 * SVC_USAGE_DAYS_MAX days or SVC_USAGE_MONTHS_MAX months. Amounts are kWh
 * with two decimals (the meter's resolution), summed per month exactly.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "services/svc.h"

/* svc_day_number - "YYYY-MM-DD" (a real calendar date, year 1970..9999) to
 * days since 1970-01-01; -1 if it is not one. */
long svc_day_number(const char *s)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y = 0, m, d, leap;
    long yy, era, yoe, doy, doe;

    for (int i = 0; i < 10; i++) {
        if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return -1;
    }
    if (s[10] != '\0')
        return -1;
    for (int i = 0; i < 4; i++)
        y = y * 10 + (s[i] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap))
        return -1;
    /* days from civil (proleptic Gregorian) */
    yy = m <= 2 ? y - 1 : y;
    era = yy / 400;
    yoe = yy - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* usage_json - one period as the portal sees it. */
static json_t *usage_json(const gg_usage *u)
{
    return json_pack("{s:s, s:f, s:f, s:f}", "period", u->period, "kwh_peak",
                     (double)u->peak_centi / 100.0, "kwh_valley",
                     (double)u->valley_centi / 100.0, "kwh",
                     (double)(u->peak_centi + u->valley_centi) / 100.0);
}

/* check_range - granularity, from and to of req; NULL when fine. */
static json_t *check_range(json_t *req, int *month, const char **from, const char **to)
{
    const char *g = svc_str(req, "granularity", 3, 5);

    if (!g || (strcmp(g, "day") != 0 && strcmp(g, "month") != 0))
        return svc_invalid("granularity", "granularity must be \"day\" or \"month\"");
    *month = strcmp(g, "month") == 0;
    if (*month) {
        json_t *bad = svc_month_range(req, from, to);

        if (bad)
            return bad;
        if ((atoi(*to) * 12 + atoi(*to + 5)) - (atoi(*from) * 12 + atoi(*from + 5)) >=
            SVC_USAGE_MONTHS_MAX)
            return svc_invalid("from", "the range spans too many months");
        return NULL;
    }
    *from = svc_str(req, "from", 10, 10);
    if (!*from || svc_day_number(*from) < 0)
        return svc_invalid("from", "from must be a date \"YYYY-MM-DD\"");
    *to = svc_str(req, "to", 10, 10);
    if (!*to || svc_day_number(*to) < 0)
        return svc_invalid("to", "to must be a date \"YYYY-MM-DD\"");
    if (svc_day_number(*from) > svc_day_number(*to))
        return svc_invalid("to", "to must not be before from");
    if (svc_day_number(*to) - svc_day_number(*from) >= SVC_USAGE_DAYS_MAX)
        return svc_invalid("from", "the range spans too many days");
    return NULL;
}

json_t *svc_usage_query(gg_svc_ctx *ctx, json_t *req)
{
    json_t *list = NULL, *reply = NULL;
    const char *acct, *from = NULL, *to = NULL;
    gg_usage *rows = NULL;
    size_t n = 0;
    int month = 0;
    gg_err err;

    reply = svc_auth_account(ctx, req, GG_SCOPE_READ, &acct);
    if (!reply)
        reply = check_range(req, &month, &from, &to);
    if (!reply)
        reply = svc_account_known(ctx, acct);
    if (reply)
        return reply;
    err = gg_mkt_usage(ctx->mkt, acct, month, from, to, &rows, &n);
    if (err == GG_ETOOBIG)
        return svc_invalid("from", "the range holds too many periods; ask for fewer");
    if (err != GG_OK)
        return svc_backend_error(err, "usage");
    list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        if (json_array_append_new(list, usage_json(&rows[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (list)
        reply = svc_reply(200, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "account_no", acct,
                                         "granularity", month ? "month" : "day", "from", from,
                                         "to", to, "unit", "kWh", "usage", list));
    gg_debug("services", "msg=\"usage served\" granularity=%s n=%zu", month ? "month" : "day", n);
    free(rows);
    return reply;
}
