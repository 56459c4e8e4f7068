/* api.c - routing and validation of the portal's HTTP API (see api.h).
 *
 * Pure functions over bytes: no I/O, no globals, no libevent. Error
 * messages name the field and the rule, never the value that was sent
 * (values may be personal data and messages end up in logs and pages).
 */
#include "portal/api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "envelope/token.h"

#define PATH_MAX_DECODED 1024

#define BILLS_PREFIX "/api/v1/accounts/"
#define BILLS_SUFFIX "/bills"
#define USAGE_SUFFIX "/usage"

/* gg_api_status_ok - set st to "acceptable". */
void gg_api_status_ok(gg_api_status *st)
{
    st->http = 200;
    st->code = NULL;
    st->message[0] = '\0';
}

/* gg_api_fail - set st to an error with a formatted message. */
void gg_api_fail(gg_api_status *st, int http, const char *code, const char *fmt, ...)
{
    va_list ap;

    st->http = http;
    st->code = code;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof st->message, fmt, ap);
    va_end(ap);
}

/* hexval - value of one hex digit, or -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* pct_decode - percent-decode n bytes of s into out (size outsz, NUL
 * added). '+' becomes a space when plus_space. Returns the decoded length,
 * -1 for a bad escape or an encoded NUL, -2 when it does not fit. */
static int pct_decode(const char *s, size_t n, char *out, size_t outsz, int plus_space)
{
    size_t i = 0;
    size_t o = 0;

    while (i < n) {
        char c = s[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= n)
                return -1;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            if (c == '\0')
                return -1;
            i += 3;
        } else {
            if (c == '+' && plus_space)
                c = ' ';
            i++;
        }
        if (o + 1 >= outsz)
            return -2;
        out[o++] = c;
    }
    out[o] = '\0';
    return (int)o;
}

/* is_alnum - ASCII letter or digit (locale-independent). */
static int is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int gg_api_valid_account(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > GG_API_ACCOUNT_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_alnum(s[i]))
            return 0;
    return 1;
}

/* valid_file - a static file name: 1..GG_API_FILE_MAX of [A-Za-z0-9._-],
 * not starting with a dot, no "..", with an extension we serve. */
static int valid_file(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > GG_API_FILE_MAX || s[0] == '.' || strstr(s, "..") != NULL)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return gg_api_content_type(s) != NULL;
}

/* method_in - whether m is one of the allowed bits. */
static int method_in(gg_api_method m, unsigned allowed)
{
    return ((unsigned)m & allowed) != 0;
}

/* set_route - accept r as id if m is allowed, else 405 with Allow. */
static void set_route(gg_api_route *r, gg_api_route_id id, gg_api_method m, unsigned allowed,
                      const char *allow, gg_api_status *st)
{
    r->allow = allow;
    if (!method_in(m, allowed)) {
        gg_api_fail(st, 405, "method_not_allowed", "this path accepts only %s", allow);
        return;
    }
    r->id = id;
    gg_api_status_ok(st);
}

/* decode_path - percent-decode path and refuse the forms that try to
 * leave a directory. Returns 0 with out filled, or -1 with st set. */
static int decode_path(const char *path, char *out, size_t outsz, gg_api_status *st)
{
    int n;

    if (path == NULL || path[0] != '/') {
        gg_api_fail(st, 404, "not_found", "no such resource");
        return -1;
    }
    n = pct_decode(path, strlen(path), out, outsz, 0);
    if (n == -1) {
        if (strstr(path, "%00") != NULL)
            gg_api_fail(st, 400, "invalid_parameter", "path contains an encoded NUL byte");
        else
            gg_api_fail(st, 400, "invalid_parameter", "path has a malformed percent escape");
        return -1;
    }
    if (n < 0 || strstr(out, "..") != NULL || strchr(out, '\\') != NULL ||
        strstr(out, "//") != NULL) {
        gg_api_fail(st, 404, "not_found", "no such resource");
        return -1;
    }
    return 0;
}

/* route_bills - "/api/v1/accounts/{account_no}/bills" after the prefix. */
static void route_bills(gg_api_method m, const char *rest, gg_api_route *r,
                        gg_api_status *st)
{
    const char *slash = strchr(rest, '/');
    size_t n;

    if (slash != NULL && strcmp(slash, "/payments") == 0) {
        gg_api_route_payments(m, rest, r, st);  /* api_pay.c */
        return;
    }
    if (slash == NULL ||
        (strcmp(slash, BILLS_SUFFIX) != 0 && strcmp(slash, USAGE_SUFFIX) != 0)) {
        gg_api_fail(st, 404, "not_found", "no such resource");
        return;
    }
    n = (size_t)(slash - rest);
    if (!gg_api_valid_account(rest, n)) {
        gg_api_fail(st, 400, "invalid_parameter",
                    "account_no must be 1 to %d letters or digits", GG_API_ACCOUNT_MAX);
        return;
    }
    memcpy(r->account_no, rest, n);
    r->account_no[n] = '\0';
    set_route(r, strcmp(slash, BILLS_SUFFIX) == 0 ? GG_ROUTE_BILLS : GG_ROUTE_USAGE, m,
              GG_M_GET, "GET", st);
}

/* gg_api_match - match the public listener's routes. */
void gg_api_match(gg_api_method m, const char *path, gg_api_route *r, gg_api_status *st)
{
    char p[PATH_MAX_DECODED];

    memset(r, 0, sizeof *r);
    r->id = GG_ROUTE_NONE;
    if (decode_path(path, p, sizeof p, st) != 0)
        return;
    if (strcmp(p, "/api/v1/bindings") == 0) {
        set_route(r, m == GG_M_DELETE ? GG_ROUTE_UNBIND : GG_ROUTE_BINDINGS, m,
                  GG_M_POST | GG_M_DELETE, "POST, DELETE", st);
        return;
    }
    if (strncmp(p, BILLS_PREFIX, strlen(BILLS_PREFIX)) == 0) {
        route_bills(m, p + strlen(BILLS_PREFIX), r, st);
        return;
    }
    if (strncmp(p, "/api/v1/transactions/", 21) == 0) {
        gg_api_route_transaction(m, p + 21, r, st);  /* api_pay.c */
        return;
    }
    if (strcmp(p, "/healthz") == 0) {
        set_route(r, GG_ROUTE_HEALTHZ, m, GG_M_GET | GG_M_HEAD, "GET, HEAD", st);
        return;
    }
    if (strcmp(p, "/") == 0) {
        strcpy(r->file, "index.html");
        set_route(r, GG_ROUTE_STATIC, m, GG_M_GET | GG_M_HEAD, "GET, HEAD", st);
        return;
    }
    if (strchr(p + 1, '/') == NULL && valid_file(p + 1)) {
        snprintf(r->file, sizeof r->file, "%s", p + 1);
        set_route(r, GG_ROUTE_STATIC, m, GG_M_GET | GG_M_HEAD, "GET, HEAD", st);
        return;
    }
    gg_api_fail(st, 404, "not_found", "no such resource");
}

/* gg_api_match_admin - the admin listener's routes. */
void gg_api_match_admin(gg_api_method m, const char *path, gg_api_route *r,
                        gg_api_status *st)
{
    memset(r, 0, sizeof *r);
    r->id = GG_ROUTE_NONE;
    if (path != NULL && strcmp(path, "/healthz") == 0) {
        set_route(r, GG_ROUTE_HEALTHZ, m, GG_M_GET | GG_M_HEAD, "GET, HEAD", st);
        return;
    }
    if (path != NULL && strcmp(path, "/metrics") == 0) {
        set_route(r, GG_ROUTE_METRICS, m, GG_M_GET | GG_M_HEAD, "GET, HEAD", st);
        return;
    }
    gg_api_fail(st, 404, "not_found", "no such resource");
}

/* gg_api_query_get - the first value of key in query, decoded. */
int gg_api_query_get(const char *query, const char *key, char *out, size_t outsz)
{
    const char *p = query;
    size_t klen = strlen(key);

    if (query == NULL)
        return 0;
    while (*p != '\0') {
        const char *end = strchr(p, '&');
        const char *eq;
        size_t n;

        if (end == NULL)
            end = p + strlen(p);
        n = (size_t)(end - p);
        eq = memchr(p, '=', n);
        if (eq != NULL && (size_t)(eq - p) == klen && memcmp(p, key, klen) == 0) {
            if (pct_decode(eq + 1, (size_t)(end - eq - 1), out, outsz, 1) < 0)
                return -1;
            return 1;
        }
        if (eq == NULL && n == klen && memcmp(p, key, klen) == 0) {
            if (outsz == 0)
                return -1;
            out[0] = '\0';
            return 1;
        }
        p = (*end == '&') ? end + 1 : end;
    }
    return 0;
}

/* gg_api_parse_month - "YYYY-MM" to year*12+month-1. */
int gg_api_parse_month(const char *s, int *month)
{
    int i, year = 0, mon;

    if (s == NULL || strlen(s) != 7 || s[4] != '-')
        return -1;
    for (i = 0; i < 7; i++) {
        if (i == 4)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return -1;
    }
    for (i = 0; i < 4; i++)
        year = year * 10 + (s[i] - '0');
    mon = (s[5] - '0') * 10 + (s[6] - '0');
    if (year < 1970 || mon < 1 || mon > 12)
        return -1;
    *month = year * 12 + mon - 1;
    return 0;
}

/* gg_api_format_month - month number to "YYYY-MM". */
void gg_api_format_month(int month, char out[8])
{
    int year = month / 12;
    int mon = month % 12 + 1;

    if (year < 0 || year > 9999) {
        year = 0;
        mon = 1;
    }
    out[0] = (char)('0' + year / 1000);
    out[1] = (char)('0' + year / 100 % 10);
    out[2] = (char)('0' + year / 10 % 10);
    out[3] = (char)('0' + year % 10);
    out[4] = '-';
    out[5] = (char)('0' + mon / 10);
    out[6] = (char)('0' + mon % 10);
    out[7] = '\0';
}

/* gg_api_current_month - month number of now_ms, local time. */
int gg_api_current_month(int64_t now_ms)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL)
        return 1970 * 12;
    return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

/* gg_api_check_token - presence, length and alphabet of a binding token. */
void gg_api_check_token(const char *token, gg_api_status *st)
{
    size_t i, n;

    if (token == NULL || token[0] == '\0') {
        gg_api_fail(st, 401, "missing_token", "the X-Binding-Token header is required");
        return;
    }
    n = strnlen(token, GG_TOKEN_MAX + 1);
    if (n > GG_TOKEN_MAX) {
        gg_api_fail(st, 401, "invalid_token", "the binding token is longer than %d bytes",
                    GG_TOKEN_MAX);
        return;
    }
    for (i = 0; i < n; i++) {
        if (!is_alnum(token[i]) && token[i] != '.' && token[i] != '_' && token[i] != '-') {
            gg_api_fail(st, 401, "invalid_token", "the binding token is malformed");
            return;
        }
    }
    gg_api_status_ok(st);
}

const char *gg_api_field_str(json_t *obj, const char *name, gg_api_status *st)
{
    json_t *v = json_object_get(obj, name);

    if (v == NULL) {
        gg_api_fail(st, 400, "invalid_parameter", "missing field %s", name);
        return NULL;
    }
    if (!json_is_string(v)) {
        gg_api_fail(st, 400, "invalid_parameter", "%s must be a string", name);
        return NULL;
    }
    return json_string_value(v);
}

/* valid_user_id - 1..GG_API_USER_MAX of [0-9A-Za-z._:@-]. */
static int valid_user_id(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > GG_API_USER_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_alnum(s[i]) && strchr("._:@-", s[i]) == NULL)
            return 0;
    return 1;
}

/* valid_name - 1..GG_API_NAME_MAX bytes, no control characters, not blank.
 * (jansson has already checked that the text is valid UTF-8 without NUL.) */
static int valid_name(const char *s)
{
    size_t i, n = strlen(s);
    int blank = 1;

    if (n == 0 || n > GG_API_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c != ' ')
            blank = 0;
    }
    return !blank;
}

/* valid_last4 - exactly four ASCII digits. */
static int valid_last4(const char *s)
{
    int i;

    if (strlen(s) != 4)
        return 0;
    for (i = 0; i < 4; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* check_known_fields - every key of obj is one of names (NULL-ended). */
static int check_known_fields(json_t *obj, const char *const *names, gg_api_status *st)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v) {
        int i, known = 0;

        (void)v;
        for (i = 0; names[i] != NULL; i++)
            if (strcmp(key, names[i]) == 0)
                known = 1;
        if (!known) {
            char safe[33];
            size_t j;

            for (j = 0; key[j] != '\0' && j < sizeof safe - 1; j++)
                safe[j] = (is_alnum(key[j]) || key[j] == '_') ? key[j] : '?';
            safe[j] = '\0';
            gg_api_fail(st, 400, "invalid_parameter", "unknown field %s", safe);
            return -1;
        }
    }
    return 0;
}

/* gg_api_parse_unbind - the token of a DELETE /api/v1/bindings. */
void gg_api_parse_unbind(const char *token, json_t **payload, gg_api_status *st)
{
    *payload = NULL;
    gg_api_check_token(token, st);
    if (st->code != NULL)
        return;
    *payload = json_pack("{s:s}", "binding_token", token);
    if (*payload == NULL)
        gg_api_fail(st, 500, "internal", "out of memory");
}

/* gg_api_parse_bind - validate a bindings body into a clean payload. */
void gg_api_parse_bind(const char *body, size_t len, size_t max_body, json_t **payload,
                       gg_api_status *st)
{
    static const char *const fields[] = { "portal_user_id", "account_no", "holder_name",
                                          "phone_last4", NULL };
    json_error_t jerr;
    json_t *root = NULL;
    json_t *out = NULL;
    const char *user, *acct, *name, *last4;

    *payload = NULL;
    if (len > max_body) {
        gg_api_fail(st, 413, "too_large", "request body exceeds %zu bytes", max_body);
        goto out;
    }
    if (body == NULL || len == 0) {
        gg_api_fail(st, 400, "invalid_parameter", "request body is empty; expected a JSON object");
        goto out;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        gg_api_fail(st, 400, "invalid_parameter",
                    "request body is not valid JSON (line %d, column %d)", jerr.line,
                    jerr.column);
        goto out;
    }
    if (!json_is_object(root)) {
        gg_api_fail(st, 400, "invalid_parameter", "request body must be a JSON object");
        goto out;
    }
    if (check_known_fields(root, fields, st) != 0)
        goto out;
    user = gg_api_field_str(root, "portal_user_id", st);
    if (user == NULL)
        goto out;
    if (!valid_user_id(user)) {
        gg_api_fail(st, 400, "invalid_parameter",
                    "portal_user_id must be 1 to %d of letters, digits and ._:@-",
                    GG_API_USER_MAX);
        goto out;
    }
    acct = gg_api_field_str(root, "account_no", st);
    if (acct == NULL)
        goto out;
    if (!gg_api_valid_account(acct, strlen(acct))) {
        gg_api_fail(st, 400, "invalid_parameter", "account_no must be 1 to %d letters or digits",
                    GG_API_ACCOUNT_MAX);
        goto out;
    }
    name = gg_api_field_str(root, "holder_name", st);
    if (name == NULL)
        goto out;
    if (!valid_name(name)) {
        gg_api_fail(st, 400, "invalid_parameter",
                    "holder_name must be 1 to %d bytes of text without control characters",
                    GG_API_NAME_MAX);
        goto out;
    }
    last4 = gg_api_field_str(root, "phone_last4", st);
    if (last4 == NULL)
        goto out;
    if (!valid_last4(last4)) {
        gg_api_fail(st, 400, "invalid_parameter", "phone_last4 must be exactly 4 digits");
        goto out;
    }
    out = json_pack("{s:s,s:s,s:s,s:s}", "portal_user_id", user, "account_no", acct,
                    "holder_name", name, "phone_last4", last4);
    if (out == NULL) {
        gg_api_fail(st, 500, "internal", "out of memory");
        goto out;
    }
    *payload = out;
    gg_api_status_ok(st);
out:
    json_decref(root);
}

/* month_param - read month key of query into *month (if present). Returns
 * 1 present and valid, 0 absent, -1 invalid (st set). */
static int month_param(const char *query, const char *key, int *month, gg_api_status *st)
{
    char v[16];
    int r = gg_api_query_get(query, key, v, sizeof v);

    if (r == 0)
        return 0;
    if (r < 0 || gg_api_parse_month(v, month) != 0) {
        gg_api_fail(st, 400, "invalid_parameter",
                    "%s must be a month as YYYY-MM (month 01-12)", key);
        return -1;
    }
    return 1;
}

int gg_api_month_range(const char *query, int64_t now_ms, int max_months, char sfrom[8],
                       char sto[8], gg_api_status *st)
{
    int from = 0, to = 0, has_from, has_to;

    has_from = month_param(query, "from", &from, st);
    if (has_from < 0)
        return -1;
    has_to = month_param(query, "to", &to, st);
    if (has_to < 0)
        return -1;
    if (!has_to)
        to = gg_api_current_month(now_ms);
    if (!has_from)
        from = to - 11;
    if (from > to) {
        gg_api_fail(st, 400, "invalid_parameter", "from must not be after to");
        return -1;
    }
    if (to - from + 1 > max_months) {
        gg_api_fail(st, 400, "invalid_parameter", "from..to must span at most %d months",
                    max_months);
        return -1;
    }
    gg_api_format_month(from, sfrom);
    gg_api_format_month(to, sto);
    return 0;
}

/* gg_api_parse_bills - validate a bills query into a payload. */
void gg_api_parse_bills(const char *account_no, const char *query, const char *token,
                        int64_t now_ms, json_t **payload, gg_api_status *st)
{
    char sfrom[8], sto[8];

    *payload = NULL;
    gg_api_check_token(token, st);
    if (st->code != NULL)
        return;
    if (account_no == NULL || !gg_api_valid_account(account_no, strlen(account_no))) {
        gg_api_fail(st, 400, "invalid_parameter", "account_no must be 1 to %d letters or digits",
                    GG_API_ACCOUNT_MAX);
        return;
    }
    if (gg_api_month_range(query, now_ms, GG_API_RANGE_MAX, sfrom, sto, st) != 0)
        return;
    *payload = json_pack("{s:s,s:s,s:s,s:s}", "binding_token", token, "account_no", account_no,
                         "from", sfrom, "to", sto);
    if (*payload == NULL) {
        gg_api_fail(st, 500, "internal", "out of memory");
        return;
    }
    gg_api_status_ok(st);
}

/* gg_api_parse_reply - {"status":N,"body":{...}} from the utility: the
 * canonical reply by its span (api_reply.c), any other through jansson. */
void gg_api_parse_reply(const void *pt, size_t len, int *status, char **body,
                        gg_api_status *st)
{
    json_error_t jerr;
    json_t *root = NULL;
    json_t *s, *b;
    json_int_t n;
    const char *fast;
    size_t fast_len;
    int n_fast;

    *body = NULL;
    *status = 0;
    if (gg_api_reply_scan(pt, len, &n_fast, &fast, &fast_len)) {  /* api_reply.c */
        *body = malloc(fast_len + 1);
        if (*body == NULL) {
            gg_api_fail(st, 500, "internal", "out of memory");
            return;
        }
        memcpy(*body, fast, fast_len);
        (*body)[fast_len] = '\0';
        *status = n_fast;
        gg_api_status_ok(st);
        return;
    }
    root = json_loadb(pt, len, 0, &jerr);
    if (root == NULL || !json_is_object(root)) {
        gg_api_fail(st, 502, "bad_gateway", "the utility's reply is not a JSON object");
        goto out;
    }
    s = json_object_get(root, "status");
    b = json_object_get(root, "body");
    if (!json_is_integer(s) || !json_is_object(b)) {
        gg_api_fail(st, 502, "bad_gateway", "the utility's reply lacks status or body");
        goto out;
    }
    n = json_integer_value(s);
    if (n < 100 || n > 599) {
        gg_api_fail(st, 502, "bad_gateway", "the utility's reply has an invalid status");
        goto out;
    }
    *body = json_dumps(b, JSON_COMPACT | JSON_REAL_PRECISION(12));
    if (*body == NULL) {
        gg_api_fail(st, 500, "internal", "out of memory");
        goto out;
    }
    *status = (int)n;
    gg_api_status_ok(st);
out:
    json_decref(root);
}

/* gg_api_error_json - the error body as a malloc'd string. */
char *gg_api_error_json(const char *code, const char *message, const char *transaction_id)
{
    json_t *err, *root;
    char *s = NULL;

    err = json_pack("{s:s,s:s}", "code", code, "message", message);
    if (err == NULL)
        return NULL;
    if (transaction_id != NULL &&
        json_object_set_new(err, "transaction_id", json_string(transaction_id)) != 0)
        goto out_err;
    root = json_pack("{s:o}", "error", err);
    if (root == NULL)
        return NULL;  /* json_pack's "o" steals err even on failure */
    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
out_err:
    json_decref(err);
    return NULL;
}

/* gg_api_content_type - Content-Type by extension; NULL for others. */
const char *gg_api_content_type(const char *file)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".json", "application/json; charset=utf-8" },
        { ".txt", "text/plain; charset=utf-8" },
        { ".svg", "image/svg+xml" },
        { ".png", "image/png" },
        { ".ico", "image/x-icon" },
    };
    const char *dot = strrchr(file, '.');
    size_t i;

    if (dot == NULL || dot == file)
        return NULL;
    for (i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

/* gg_api_reason - the reason phrase of an HTTP status. */
const char *gg_api_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: break;
    }
    if (status >= 200 && status < 300)
        return "OK";
    if (status >= 400 && status < 500)
        return "Client Error";
    return "Server Error";
}

/* gg_api_log_path - a path made safe for one log line. */
char *gg_api_log_path(const char *path, char *out, size_t outsz)
{
    size_t plen = strlen(BILLS_PREFIX);
    size_t i, o = 0, mask_from = 0, mask_to = 0;

    if (outsz == 0)
        return out;
    if (path == NULL)
        path = "";
    if (strncmp(path, BILLS_PREFIX, plen) == 0) {
        const char *slash = strchr(path + plen, '/');
        size_t seg = slash != NULL ? (size_t)(slash - path) - plen : strlen(path + plen);

        mask_from = plen;
        mask_to = plen + (seg > 4 ? seg - 4 : 0);
    }
    for (i = 0; path[i] != '\0' && o + 1 < outsz; i++) {
        unsigned char c = (unsigned char)path[i];

        if (i >= mask_from && i < mask_to)
            c = '*';
        else if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            c = '?';
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}
