/* audit.h - the hash-chained, append-only audit log of one site.
 *
 * Owns one text file (security.audit_log, default audit.log beside the
 * site's store) of one record per line, each chained to the one before by
 * the suite's hash (SHA-256 under intl, SM3 under gm):
 *
 *   <seq> <ts_ms> <event> <msg_id|-> <txn|-> <detail|-> <prev> <hash>
 *   hash = H(prev_bytes || "<seq> <ts_ms> <event> <msg_id> <txn> <detail>")
 *
 * seq counts from 1 and prev of record 1 is 64 zeros. gg_audit_verify finds
 * any altered, removed, inserted or reordered record (removing records at
 * the end needs the last hash kept elsewhere: it is logged and published
 * as a metric). Records hold ids, transaction codes, statuses and reasons:
 * never payloads, tokens or personal data.
 *
 * Writing never stops traffic: gg_audit_note only copies the record into a
 * bounded queue; a writer thread hashes, appends and fsyncs. When the queue
 * is full the record is dropped, counted, alarmed in the log, and a "gap"
 * record with the count is written as soon as there is room, so the chain
 * states what it lost. Thread-safe.
 */
#ifndef GG_AUDIT_AUDIT_H
#define GG_AUDIT_AUDIT_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

struct gg_config;
typedef struct gg_audit gg_audit;

#define GG_AUDIT_QUEUE 8192            /* records waiting for the writer, at most */
#define GG_AUDIT_FIELD_MAX 96          /* event, txn, detail: longer is cut */

typedef struct gg_audit_stats {
    int64_t written;                   /* records appended since open */
    int64_t dropped;                   /* records lost to a full queue */
    int64_t queued;                    /* records waiting now */
    int64_t io_errors;                 /* failed writes or fsyncs */
    int64_t last_seq;
    char last_hash[65];
} gg_audit_stats;

/* gg_audit_open - open (or create) the log at path for suite ("intl" or
 * "gm"), read its last record to continue the chain (a torn last line is
 * cut off and a "recovered" record appended), start the writer. GG_EIO
 * (logged) if the file cannot be opened, GG_EPROTO if its last complete
 * record does not parse, GG_ECONFIG for an unknown suite. */
gg_err gg_audit_open(const char *path, const char *suite, gg_audit **out);

/* gg_audit_open_config - path from security.audit_log, else audit.log in
 * the directory of store.path; suite from security.suite. */
gg_err gg_audit_open_config(const struct gg_config *cfg, gg_audit **out);

/* gg_audit_close - write what is queued, fsync, stop; NULL is fine. */
void gg_audit_close(gg_audit *a);

/* gg_audit_note - queue one record. msg_id (16 bytes) may be NULL; txn and
 * detail may be NULL; characters outside [!-~] become '_' and fields are
 * cut at GG_AUDIT_FIELD_MAX. Never blocks on I/O. a == NULL is a no-op. */
void gg_audit_note(gg_audit *a, const char *event, const uint8_t *msg_id, const char *txn,
                   const char *detail);

/* gg_audit_flush - wait until everything queued so far is durable. */
void gg_audit_flush(gg_audit *a);

/* gg_audit_get_stats - counters and the head of the chain. */
void gg_audit_get_stats(gg_audit *a, gg_audit_stats *st);

/* gg_audit_write_metrics - gridgate_audit_* as Prometheus text. */
void gg_audit_write_metrics(gg_audit *a, FILE *f);

/* gg_audit_verify - check the whole chain of the file at path under suite.
 * GG_OK with *records and last_hash (65 bytes) set when intact; GG_EPROTO
 * with a one-line reason naming the line in why (altered record, broken
 * link, sequence gap or reorder, malformed line); GG_EIO if unreadable. */
gg_err gg_audit_verify(const char *path, const char *suite, int64_t *records,
                       char last_hash[65], char *why, size_t whysz);

#endif
