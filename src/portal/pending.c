/* pending.c - hash table of waiting HTTP calls (see pending.h). */
#include "portal/pending.h"

#include <stdlib.h>
#include <string.h>

#define NBUCKETS 4096u   /* power of two */

struct gg_pending_table {
    gg_pending *buckets[NBUCKETS];
    size_t count;
    size_t max;
};

/* bucket_of - bucket index of a random 16-byte id. */
static size_t bucket_of(const uint8_t id[16])
{
    uint32_t h = ((uint32_t)id[0] << 24) | ((uint32_t)id[1] << 16) | ((uint32_t)id[2] << 8) |
                 (uint32_t)id[3];

    return h & (NBUCKETS - 1);
}

/* gg_pending_new - an empty table of at most max entries. */
gg_pending_table *gg_pending_new(size_t max)
{
    gg_pending_table *t = calloc(1, sizeof *t);

    if (t == NULL)
        return NULL;
    t->max = max;
    return t;
}

/* gg_pending_free - free the table and its entries. */
void gg_pending_free(gg_pending_table *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < NBUCKETS; i++) {
        gg_pending *p = t->buckets[i];

        while (p != NULL) {
            gg_pending *next = p->next;

            free(p);
            p = next;
        }
    }
    free(t);
}

/* gg_pending_find - the entry for corr_id, or NULL. */
gg_pending *gg_pending_find(gg_pending_table *t, const uint8_t corr_id[16])
{
    gg_pending *p;

    for (p = t->buckets[bucket_of(corr_id)]; p != NULL; p = p->next)
        if (memcmp(p->corr_id, corr_id, 16) == 0)
            return p;
    return NULL;
}

/* gg_pending_add - insert a new zeroed entry for corr_id. */
gg_err gg_pending_add(gg_pending_table *t, const uint8_t corr_id[16], gg_pending **out)
{
    size_t b = bucket_of(corr_id);
    gg_pending *p;

    *out = NULL;
    if (gg_pending_find(t, corr_id) != NULL)
        return GG_EEXISTS;
    if (t->count >= t->max)
        return GG_EFULL;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return GG_ENOMEM;
    memcpy(p->corr_id, corr_id, 16);
    p->next = t->buckets[b];
    t->buckets[b] = p;
    t->count++;
    *out = p;
    return GG_OK;
}

/* gg_pending_remove - unlink and free p. */
void gg_pending_remove(gg_pending_table *t, gg_pending *p)
{
    gg_pending **pp = &t->buckets[bucket_of(p->corr_id)];

    while (*pp != NULL) {
        if (*pp == p) {
            *pp = p->next;
            t->count--;
            free(p);
            return;
        }
        pp = &(*pp)->next;
    }
}

/* gg_pending_any - the first entry found, or NULL. */
gg_pending *gg_pending_any(gg_pending_table *t)
{
    size_t i;

    if (t->count == 0)
        return NULL;
    for (i = 0; i < NBUCKETS; i++)
        if (t->buckets[i] != NULL)
            return t->buckets[i];
    return NULL;
}

/* gg_pending_count - number of entries. */
size_t gg_pending_count(const gg_pending_table *t)
{
    return t->count;
}
