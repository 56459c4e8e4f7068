/* pending.h - the portal's HTTP calls waiting for a reply, by correlation id.
 *
 * A bounded hash table owned by the event-loop thread (no locks). The table
 * allocates and frees the entries; what an entry points at (the request,
 * its timer) belongs to the caller, who must release it before removing
 * the entry. Correlation ids are random 16-byte ids, so the first bytes
 * hash well enough.
 */
#ifndef GG_PORTAL_PENDING_H
#define GG_PORTAL_PENDING_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct evhttp_request;
struct evhttp_connection;
struct event;
struct gg_psend_job;

typedef struct gg_pending {
    uint8_t corr_id[16];
    struct evhttp_request *req;      /* the waiting call */
    struct evhttp_connection *conn;  /* its connection (close callback set on it) */
    struct event *timer;             /* answers 504 when it fires */
    void *owner;                     /* the portal */
    int64_t start_us;                /* gg_mono_us at arrival, for the log line */
    char method[8];
    char log_path[96];               /* already masked (gg_api_log_path) */
    uint8_t req_hash[32];            /* gg_env_hash of the request sent; the
                                      * reply must carry it (set once job is
                                      * reported) */
    struct gg_psend_job *job;        /* its seal and put while the sender pool
                                      * has it (sender.h), else NULL */
    struct gg_pending *next;         /* hash chain; table-private */
} gg_pending;

typedef struct gg_pending_table gg_pending_table;

/* gg_pending_new - a table holding at most max entries; NULL on ENOMEM. */
gg_pending_table *gg_pending_new(size_t max);

/* gg_pending_free - free the table and any entries left (not what they
 * point at). NULL is fine. */
void gg_pending_free(gg_pending_table *t);

/* gg_pending_add - a new zeroed entry for corr_id (copied in). GG_EEXISTS
 * if the id is already waiting, GG_EFULL at max entries, GG_ENOMEM. */
gg_err gg_pending_add(gg_pending_table *t, const uint8_t corr_id[16], gg_pending **out);

/* gg_pending_find - the entry for corr_id, or NULL. */
gg_pending *gg_pending_find(gg_pending_table *t, const uint8_t corr_id[16]);

/* gg_pending_remove - unlink and free p (which must be in t). */
void gg_pending_remove(gg_pending_table *t, gg_pending *p);

/* gg_pending_any - some entry, or NULL when empty (for draining at stop). */
gg_pending *gg_pending_any(gg_pending_table *t);

/* gg_pending_count - entries in the table. */
size_t gg_pending_count(const gg_pending_table *t);

#endif
