/* cache.c - a bounded LRU hash table of query results (cache.h). */
#include "utility/cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct centry {
    struct centry *hnext;           /* hash chain */
    struct centry *prev, *next;     /* LRU list, most recent at head */
    uint64_t hash;
    int64_t stored_ms;
    char account[40];
    char *key;
    char *value;
} centry;

struct gg_cache {
    pthread_mutex_t mu;
    size_t max, n, nb;
    centry **buckets;
    centry *head, *tail;
};

/* fnv - FNV-1a of s. */
static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

gg_err gg_cache_new(size_t entries, gg_cache **out)
{
    gg_cache *c = calloc(1, sizeof *c);

    *out = NULL;
    if (!c)
        return GG_ENOMEM;
    c->max = entries;
    c->nb = entries > 0 ? entries * 2 + 1 : 1;
    c->buckets = calloc(c->nb, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return GG_ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return GG_OK;
}

/* unlink_lru - take e out of the LRU list. */
static void unlink_lru(gg_cache *c, centry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

/* push_head - make e the most recently used. */
static void push_head(gg_cache *c, centry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* drop - remove e from table and list and free it. */
static void drop(gg_cache *c, centry *e)
{
    centry **pp = &c->buckets[e->hash % c->nb];

    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    unlink_lru(c, e);
    free(e->key);
    free(e->value);
    free(e);
    c->n--;
}

/* find - the entry of key, or NULL. */
static centry *find(gg_cache *c, const char *key, uint64_t h)
{
    for (centry *e = c->buckets[h % c->nb]; e; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

void gg_cache_free(gg_cache *c)
{
    if (!c)
        return;
    while (c->head)
        drop(c, c->head);
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

char *gg_cache_get(gg_cache *c, const char *key, int64_t now_ms, int64_t max_age_ms,
                   int64_t *age_ms)
{
    uint64_t h = fnv(key);
    char *v = NULL;
    centry *e;

    pthread_mutex_lock(&c->mu);
    e = find(c, key, h);
    if (e && now_ms - e->stored_ms <= max_age_ms) {
        v = strdup(e->value);
        if (age_ms)
            *age_ms = now_ms - e->stored_ms;
        unlink_lru(c, e);
        push_head(c, e);
    }
    pthread_mutex_unlock(&c->mu);
    return v;
}

void gg_cache_put(gg_cache *c, const char *key, const char *account, const char *value,
                  int64_t now_ms)
{
    uint64_t h = fnv(key);
    centry *e;
    char *k, *v;

    if (c->max == 0 || strlen(key) > GG_CACHE_KEY_MAX || strlen(value) > GG_CACHE_VALUE_MAX ||
        strlen(account) >= sizeof e->account)
        return;
    k = strdup(key);
    v = strdup(value);
    e = calloc(1, sizeof *e);
    if (!k || !v || !e) {
        free(k);
        free(v);
        free(e);
        return;
    }
    e->key = k;
    e->value = v;
    e->hash = h;
    e->stored_ms = now_ms;
    strcpy(e->account, account);
    pthread_mutex_lock(&c->mu);
    {
        centry *old = find(c, key, h);

        if (old)
            drop(c, old);
    }
    while (c->n >= c->max && c->tail)
        drop(c, c->tail);
    e->hnext = c->buckets[h % c->nb];
    c->buckets[h % c->nb] = e;
    push_head(c, e);
    c->n++;
    pthread_mutex_unlock(&c->mu);
}

size_t gg_cache_invalidate(gg_cache *c, const char *account)
{
    size_t k = 0;

    pthread_mutex_lock(&c->mu);
    for (centry *e = c->head, *next; e; e = next) {
        next = e->next;
        if (strcmp(e->account, account) == 0) {
            drop(c, e);
            k++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return k;
}

size_t gg_cache_size(gg_cache *c)
{
    size_t n;

    pthread_mutex_lock(&c->mu);
    n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}
