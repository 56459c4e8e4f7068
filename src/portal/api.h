/* api.h - the portal's HTTP API as pure functions: routing, validation of
 * every request field, reply parsing and error bodies.
 *
 * Nothing here does I/O or touches libevent: each function takes bytes and
 * returns a verdict (gg_api_status: HTTP status, stable error code and a
 * message naming the problem), so all of it is unit-tested in-process
 * (tests/unit/test_portal_api.c). A request that fails here is answered at
 * once and never queued. Messages never echo field values (personal data).
 * The API itself is documented in docs/api.md.
 */
#ifndef GG_PORTAL_API_H
#define GG_PORTAL_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define GG_API_ACCOUNT_MAX 32      /* account_no: 1..32 of [0-9A-Za-z] */
#define GG_API_USER_MAX 64         /* portal_user_id: 1..64 of [0-9A-Za-z._:@-] */
#define GG_API_NAME_MAX 63         /* holder_name: 1..63 bytes of UTF-8 */
#define GG_API_FILE_MAX 64         /* static file name */
#define GG_API_RANGE_MAX 120       /* longest bills range, months */
#define GG_API_MSG_MAX 160
#define GG_API_USAGE_DAYS_MAX 366  /* longest usage range by day */
#define GG_API_USAGE_MONTHS_MAX 120 /* longest usage range by month */

typedef struct gg_api_status {
    int http;                      /* 200 when the request is acceptable */
    const char *code;              /* stable error code; NULL when acceptable */
    char message[GG_API_MSG_MAX];  /* for people; names the field, never its value */
} gg_api_status;

/* Request methods as routing sees them. */
typedef enum gg_api_method {
    GG_M_GET = 1,
    GG_M_HEAD = 2,
    GG_M_POST = 4,
    GG_M_OTHER = 8,                /* PUT, OPTIONS, ... */
    GG_M_DELETE = 16,
} gg_api_method;

typedef enum gg_api_route_id {
    GG_ROUTE_NONE = 0,             /* no route: status says why */
    GG_ROUTE_BINDINGS,             /* POST /api/v1/bindings */
    GG_ROUTE_BILLS,                /* GET /api/v1/accounts/{account_no}/bills */
    GG_ROUTE_HEALTHZ,              /* GET /healthz */
    GG_ROUTE_STATIC,               /* GET / and files directly in web_root */
    GG_ROUTE_METRICS,              /* GET /metrics (admin listener only) */
    GG_ROUTE_USAGE,                /* GET /api/v1/accounts/{account_no}/usage */
    GG_ROUTE_PAYMENTS,             /* POST /api/v1/accounts/{account_no}/payments (api_pay.c) */
    GG_ROUTE_TRANSACTION,          /* GET /api/v1/transactions/{transaction_id} (api_pay.c) */
    GG_ROUTE_UNBIND,               /* DELETE /api/v1/bindings (X-Binding-Token) */
} gg_api_route_id;

typedef struct gg_api_route {
    gg_api_route_id id;
    const char *allow;                          /* methods for the Allow header */
    char account_no[GG_API_ACCOUNT_MAX + 1];    /* GG_ROUTE_BILLS, GG_ROUTE_USAGE */
    char file[GG_API_FILE_MAX + 1];             /* GG_ROUTE_STATIC: name in web_root */
    char txid[33];                              /* GG_ROUTE_TRANSACTION: 32 lower-case hex */
} gg_api_route;

/* gg_api_status_ok - set st to "acceptable" (200, no code). */
void gg_api_status_ok(gg_api_status *st);

/* gg_api_fail - set st to an error; printf-style message. */
void gg_api_fail(gg_api_status *st, int http, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* gg_api_match - match the public listener's routes. path is the raw,
 * still percent-encoded path without the query string. On a match st is
 * ok and r filled in; otherwise r->id is GG_ROUTE_NONE and st is 404
 * not_found (also for any ".." or encoded dot-dot, a backslash or a
 * subdirectory), 405 method_not_allowed (r->allow set) or 400
 * invalid_parameter (an encoded NUL, a bad account number). */
void gg_api_match(gg_api_method m, const char *path, gg_api_route *r, gg_api_status *st);

/* gg_api_match_admin - the admin listener's routes: /healthz, /metrics. */
void gg_api_match_admin(gg_api_method m, const char *path, gg_api_route *r,
                        gg_api_status *st);

/* gg_api_query_get - the first value of key in query (the part after '?',
 * may be NULL), percent-decoded ('+' is a space) into out (size outsz).
 * Returns 1 found, 0 absent, -1 malformed or longer than outsz-1 or
 * containing NUL. */
int gg_api_query_get(const char *query, const char *key, char *out, size_t outsz);

/* gg_api_parse_month - "YYYY-MM" (year 1970..9999, month 01..12) to a
 * month number year*12+month-1. Returns 0 or -1. */
int gg_api_parse_month(const char *s, int *month);

/* gg_api_format_month - month number to "YYYY-MM" (out size >= 8). */
void gg_api_format_month(int month, char out[8]);

/* gg_api_current_month - the month number of now_ms in local time. */
int gg_api_current_month(int64_t now_ms);

/* gg_api_valid_account - whether the n bytes at s are 1..GG_API_ACCOUNT_MAX
 * ASCII letters or digits (s need not be NUL-terminated). */
int gg_api_valid_account(const char *s, size_t n);

/* gg_api_field_str - obj[name] as a string (owned by obj), or NULL with st
 * set to 400 invalid_parameter: "missing field NAME" or "NAME must be a
 * string". */
const char *gg_api_field_str(json_t *obj, const char *name, gg_api_status *st);

/* gg_api_month_range - the from and to months of query ("YYYY-MM"):
 * a missing "to" is the current month of now_ms, a missing "from" 11
 * months before "to"; from must not be after to, and the range spans at
 * most max_months. Writes "YYYY-MM" into sfrom and sto and returns 0, or
 * sets st to 400 invalid_parameter naming the problem and returns -1. */
int gg_api_month_range(const char *query, int64_t now_ms, int max_months, char sfrom[8],
                       char sto[8], gg_api_status *st);

/* gg_api_check_token - the X-Binding-Token header value (NULL when absent):
 * 401 missing_token if absent or empty, 401 invalid_token if longer than
 * GG_TOKEN_MAX or holding characters a token never has. */
void gg_api_check_token(const char *token, gg_api_status *st);

/* gg_api_parse_bind - validate a POST /api/v1/bindings body of len bytes
 * (max_body the limit). On success *payload is a new object holding
 * exactly portal_user_id, account_no, holder_name, phone_last4 (caller
 * json_decrefs). Errors: 413 too_large, 400 invalid_parameter. */
void gg_api_parse_bind(const char *body, size_t len, size_t max_body, json_t **payload,
                       gg_api_status *st);

/* gg_api_parse_unbind - DELETE /api/v1/bindings: the X-Binding-Token
 * header value (NULL when absent), checked as gg_api_check_token. On
 * success *payload is a new {"binding_token"} (caller json_decrefs). */
void gg_api_parse_unbind(const char *token, json_t **payload, gg_api_status *st);

/* gg_api_parse_bills - validate a bills query: token (header value or
 * NULL), query string (may be NULL), now_ms for the default range (the 12
 * months ending with the current one; a missing "to" is the current month,
 * a missing "from" 11 months before "to"). On success *payload is a new
 * {"binding_token","account_no","from","to"} (caller json_decrefs). */
void gg_api_parse_bills(const char *account_no, const char *query, const char *token,
                        int64_t now_ms, json_t **payload, gg_api_status *st);

/* gg_api_parse_usage - validate a usage query: token as for bills; query
 * granularity=day|month (default month), from and to as YYYY-MM-DD (day)
 * or YYYY-MM (month). Defaults: to is today / the current month (local
 * time of now_ms), from 29 days / 11 months before to. At most
 * GG_API_USAGE_DAYS_MAX days or GG_API_USAGE_MONTHS_MAX months. On success
 * *payload is a new {"binding_token","account_no","granularity","from","to"}. */
void gg_api_parse_usage(const char *account_no, const char *query, const char *token,
                        int64_t now_ms, json_t **payload, gg_api_status *st);

/* gg_api_parse_day - "YYYY-MM-DD", a real date of year 1970..9999, to days
 * since 1970-01-01. Returns 0 or -1. */
int gg_api_parse_day(const char *s, long *day);

/* gg_api_format_day - days since 1970-01-01 to "YYYY-MM-DD" (out >= 11). */
void gg_api_format_day(long day, char out[11]);

/* --- api_pay.c: payments and transaction status -------------------- */
#define GG_API_PAY_REF_MAX 64      /* payment_ref: 1..64 of [0-9A-Za-z._:-] */
#define GG_API_BILL_ID_MAX 39      /* bill_id: 1..39 of [0-9A-Za-z._:-] */
#define GG_API_AMOUNT_MAX 100000000000LL  /* amount_fen upper bound (1e9 yuan) */

/* gg_api_route_payments - rest is "{account_no}/payments" (after the
 * accounts prefix): GG_ROUTE_PAYMENTS, POST only. */
void gg_api_route_payments(gg_api_method m, const char *rest, gg_api_route *r,
                           gg_api_status *st);

/* gg_api_route_transaction - id is what follows "/api/v1/transactions/":
 * exactly 32 hex digits (any case; r->txid gets lower case), GET/HEAD. Else
 * 400 invalid_parameter. */
void gg_api_route_transaction(gg_api_method m, const char *id, gg_api_route *r,
                              gg_api_status *st);

/* gg_api_parse_pay - validate a payment: token as for bills, body of len
 * bytes {"bill_id","amount_fen","payment_ref"} (exactly these; amount_fen
 * a JSON integer). 400 invalid_amount for zero or negative or above
 * GG_API_AMOUNT_MAX, 400 invalid_parameter for the rest, 413 too_large. On
 * success *payload is a new {"binding_token","account_no","bill_id",
 * "amount_fen","payment_ref"} (caller json_decrefs). */
void gg_api_parse_pay(const char *account_no, const char *token, const char *body, size_t len,
                      size_t max_body, json_t **payload, gg_api_status *st);

/* gg_api_tx_json - the body of GET /api/v1/transactions/{id} as malloc'd
 * JSON: status "pending" while no reply came and now_ms is before
 * expiry_ms + grace_ms, "expired" after that or when the utility answered
 * 504 expired, else "completed" with http_status and result (the reply
 * body, parsed). result_json may be NULL. */
char *gg_api_tx_json(const char *txid, const char *txn, int64_t created_ms, int64_t expiry_ms,
                     int http_status, int64_t done_ms, const char *result_json, int64_t now_ms,
                     int64_t grace_ms);

/* gg_api_parse_reply - a reply payload {"status":N,"body":{...}} from the
 * utility: *status gets N (100..599) and *body a malloc'd compact JSON
 * text of body (caller frees). Errors: 502 bad_gateway. */
void gg_api_parse_reply(const void *pt, size_t len, int *status, char **body,
                        gg_api_status *st);

/* gg_api_reply_scan - 1 if the reply payload is exactly what jansson's
 * compact dump (JSON_REAL_PRECISION(12)) writes and its status and body
 * are acceptable: *status gets it and *body, *body_len the span of the body
 * inside pt (nothing allocated). 0 otherwise, which decides nothing: the
 * reply must then be parsed in full (gg_api_parse_reply does both;
 * api_reply.c). */
int gg_api_reply_scan(const void *pt, size_t len, int *status, const char **body,
                      size_t *body_len);

/* gg_api_error_json - {"error":{"code","message"[,"transaction_id"]}} as a
 * malloc'd string (caller frees); NULL only when out of memory.
 * transaction_id may be NULL. */
char *gg_api_error_json(const char *code, const char *message, const char *transaction_id);

/* gg_api_content_type - the Content-Type for a static file name, or NULL
 * when its extension is not one the page is allowed to serve. */
const char *gg_api_content_type(const char *file);

/* gg_api_reason - the HTTP reason phrase of status ("Not Found"). */
const char *gg_api_reason(int status);

/* gg_api_log_path - path made safe for a log line: the account number in a
 * bills path masked (all but the last 4 characters), anything outside
 * printable ASCII or a quote or space replaced by '?', cut to outsz-1. */
char *gg_api_log_path(const char *path, char *out, size_t outsz);

#endif
