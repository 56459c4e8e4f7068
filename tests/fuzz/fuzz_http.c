/* fuzz_http.c - libFuzzer entry for the portal's HTTP request validation.
 *
 * Input layout: one byte of method (mod 5: GET, HEAD, POST, other, DELETE),
 * then four NUL-separated fields, any of which may be missing:
 *   path \0 query \0 X-Binding-Token \0 body
 * Each goes through the pure functions of src/portal/api.h exactly as the
 * portal hands them outside bytes: route matching (public and admin),
 * query decoding, token header check, bind body, bills query, and the body
 * also as a reply payload from the utility. Every verdict must be
 * consistent: ok with a payload, or an error code with no payload. A reply
 * the fast path accepts (gg_api_reply_scan) must be one jansson accepts with
 * the same status and whose body it dumps to the very same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "portal/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* field - the next NUL-terminated field from *p (len *n), as a new string;
 * NULL when the input is used up. */
static char *field(const uint8_t **p, size_t *n, size_t *flen)
{
    const uint8_t *end;
    size_t len;
    char *s;

    if (*n == 0) {
        *flen = 0;
        return NULL;
    }
    end = memchr(*p, 0, *n);
    len = end ? (size_t)(end - *p) : *n;
    s = malloc(len + 1);
    if (s == NULL)
        abort();
    memcpy(s, *p, len);
    s[len] = '\0';
    *flen = len;
    *p += end ? len + 1 : len;
    *n -= end ? len + 1 : len;
    return s;
}

/* verdict - a payload exactly when the status is acceptable. */
static void verdict(const gg_api_status *st, json_t *payload)
{
    if ((st->code == NULL) != (payload != NULL))
        abort();
    if (st->code == NULL && st->http != 200)
        abort();
    json_decref(payload);
}

/* same_as_jansson - abort unless jansson reads reply pt as the fast path
 * did: an object with an integer status equal to status, and a body that
 * dumps (compact, 12 digits) to exactly body[0..body_len). */
static void same_as_jansson(const char *pt, size_t len, int status, const char *body,
                            size_t body_len)
{
    json_error_t jerr;
    json_t *root = json_loadb(pt, len, 0, &jerr);
    json_t *s = json_object_get(root, "status"), *b = json_object_get(root, "body");
    char *dump;

    if (!json_is_integer(s) || json_integer_value(s) != status || !json_is_object(b))
        abort();
    dump = json_dumps(b, JSON_COMPACT | JSON_REAL_PRECISION(12));
    if (dump == NULL || strlen(dump) != body_len || memcmp(dump, body, body_len) != 0)
        abort();
    free(dump);
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const gg_api_method methods[] = { GG_M_GET, GG_M_HEAD, GG_M_POST, GG_M_OTHER,
                                             GG_M_DELETE };
    const uint8_t *p = data;
    size_t n = size, plen, qlen, tlen, blen;
    char *path, *query, *token, *body;
    char val[128], logp[256];
    gg_api_route r;
    gg_api_status st;
    json_t *payload = NULL;
    char *rbody = NULL;
    int status = 0, month;
    gg_api_method m;

    gg_log_set_level(GG_LOG_ERROR);
    if (size < 1)
        return 0;
    m = methods[data[0] % 5];
    p++;
    n--;
    path = field(&p, &n, &plen);
    query = field(&p, &n, &qlen);
    token = field(&p, &n, &tlen);
    body = field(&p, &n, &blen);

    if (path != NULL) {
        gg_api_match(m, path, &r, &st);
        if ((r.id == GG_ROUTE_NONE) == (st.code == NULL))
            abort();
        gg_api_match_admin(m, path, &r, &st);
        (void)gg_api_log_path(path, logp, sizeof logp);
        if (strlen(logp) >= sizeof logp)
            abort();
        (void)gg_api_parse_month(path, &month);
    }
    (void)gg_api_query_get(query, "from", val, sizeof val);
    (void)gg_api_query_get(query, "to", val, 4);
    gg_api_check_token(token, &st);
    gg_api_parse_unbind(token, &payload, &st);
    verdict(&st, payload);
    payload = NULL;
    gg_api_parse_bills(path ? path : "", query, token, 1700000000000LL, &payload, &st);
    verdict(&st, payload);
    payload = NULL;
    if (body != NULL) {
        gg_api_parse_bind(body, blen, 65536, &payload, &st);
        verdict(&st, payload);
        payload = NULL;
        gg_api_parse_reply(body, blen, &status, &rbody, &st);
        if ((st.code == NULL) != (rbody != NULL))
            abort();
        free(rbody);
        {
            const char *span;
            size_t span_len;
            int s2;

            if (gg_api_reply_scan(body, blen, &s2, &span, &span_len))
                same_as_jansson(body, blen, s2, span, span_len);
        }
    }
    free(path);
    free(query);
    free(token);
    free(body);
    return 0;
}
