/*
 * nbcache.c - the neighbor-list cache (see include/attnkv/nbcache.h): an
 * open-addressing hash table from (word, metric) to an immutable list.
 *
 * Threading: `mu` guards the table and the count; lists are written before
 * they are published under mu and never change or move afterwards, so a
 * reader may use one after unlocking.
 */
#include "attnkv/nbcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct akv_nbcache {
    pthread_mutex_t mu;
    struct akv_nblist **slots; /* cap entries, NULL where empty */
    size_t cap;                /* a power of two, at least twice max */
    size_t max, count;
};

static size_t slot_of(const struct akv_nbcache *c, uint32_t word, enum akv_metric m)
{
    uint64_t h = ((uint64_t)word << 2 | (uint64_t)m) * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (c->cap - 1);
}

int akv_nbcache_create(struct akv_nbcache **out, size_t max_lists)
{
    struct akv_nbcache *c;
    size_t cap = 16;

    *out = NULL;
    if (max_lists == 0 || max_lists > SIZE_MAX / 4)
        return -EINVAL;
    while (cap < 2 * max_lists)
        cap *= 2;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->slots = calloc(cap, sizeof *c->slots);
    if (c->slots == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->slots);
        free(c);
        return -ENOMEM;
    }
    c->cap = cap;
    c->max = max_lists;
    *out = c;
    return 0;
}

void akv_nbcache_destroy(struct akv_nbcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->cap; i++)
        free(c->slots[i]);
    free(c->slots);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Under mu: the slot holding (word, m), or the empty slot where it would
 * go. The table is never more than half full, so the probe ends. */
static size_t find(const struct akv_nbcache *c, uint32_t word, enum akv_metric m)
{
    size_t i = slot_of(c, word, m);

    while (c->slots[i] != NULL && (c->slots[i]->word != word || c->slots[i]->metric != m))
        i = (i + 1) & (c->cap - 1);
    return i;
}

const struct akv_nblist *akv_nbcache_get(struct akv_nbcache *c, uint32_t word,
                                         enum akv_metric metric)
{
    const struct akv_nblist *l;

    pthread_mutex_lock(&c->mu);
    l = c->slots[find(c, word, metric)];
    pthread_mutex_unlock(&c->mu);
    return l;
}

int akv_nbcache_put(struct akv_nbcache *c, const struct akv_nblist *l)
{
    struct akv_nblist *copy = malloc(sizeof *copy);
    int rc = 0;
    size_t i;

    if (copy == NULL)
        return -ENOMEM;
    *copy = *l;
    pthread_mutex_lock(&c->mu);
    i = find(c, l->word, l->metric);
    if (c->slots[i] == NULL && c->count < c->max) {
        c->slots[i] = copy;
        c->count++;
        copy = NULL;
    } else if (c->slots[i] == NULL) {
        rc = -ENOSPC;
    }
    pthread_mutex_unlock(&c->mu);
    free(copy);
    return rc;
}

size_t akv_nbcache_count(struct akv_nbcache *c)
{
    size_t n;

    pthread_mutex_lock(&c->mu);
    n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}

size_t akv_nbcache_memory(struct akv_nbcache *c)
{
    size_t n;

    pthread_mutex_lock(&c->mu);
    n = sizeof(*c) + c->cap * sizeof(*c->slots) + c->count * sizeof(struct akv_nblist);
    pthread_mutex_unlock(&c->mu);
    return n;
}
